"""Dashboards: generated files are current, valid against Grafana's schemas, and lint-clean."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from dashboards import build
from dashboards.expressions import load_dashboards, panels
from tests.observability.conftest import DASHBOARDS

SCHEMA_DIR = DASHBOARDS / "schema"
DATASOURCE_UID = "${datasource}"
RANGE_FUNCTIONS = re.compile(r"\b(rate|irate|increase)\(")
DASHBOARD_NAMES = sorted(load_dashboards())


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.jsonschema.json").read_text())
    return loaded


@cache
def _definition_validator(panel_type: str, definition: str) -> Draft7Validator | None:
    path = SCHEMA_DIR / f"{panel_type}.jsonschema.json"
    if not path.exists():
        return None
    schema = _schema(panel_type)
    if definition not in schema["definitions"]:
        return None
    return Draft7Validator({"$ref": f"#/definitions/{definition}", **schema})


@cache
def _units() -> frozenset[str]:
    definitions = _schema("units")["definitions"]
    return frozenset(d["const"] for d in definitions.values() if "const" in d)


def _errors(validator: Draft7Validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def test_checked_in_files_match_generator() -> None:
    """The checked-in dashboards and rule files are exactly what `dashboards/build.py` writes."""
    assert build.stale_files() == [], "run: python -m dashboards.build"


def test_vendored_schema_keeps_its_notice() -> None:
    """The vendored Grafana schemas ship with their Apache-2.0 license and a README."""
    assert "Apache License" in (SCHEMA_DIR / "LICENSE").read_text()
    assert "grafana-foundation-sdk" in (SCHEMA_DIR / "README.md").read_text()


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_dashboard_matches_grafana_schema(name: str) -> None:
    """Each dashboard validates against the foundation-sdk dashboard JSON Schema."""
    validator = Draft7Validator(_schema("dashboard"))
    assert _errors(validator, load_dashboards()[name]) == []


def test_schema_validation_rejects_a_broken_dashboard() -> None:
    """The schema check is not vacuous: a mutated dashboard gives errors."""
    broken = copy.deepcopy(load_dashboards()["finance.json"])
    broken["refresh"] = 5
    broken["panels"][1]["gridPos"]["w"] = 30
    assert len(_errors(Draft7Validator(_schema("dashboard")), broken)) >= 2


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_panel_options_match_panel_schemas(name: str) -> None:
    """Panel options and custom field config validate against the per-panel schemas."""
    errors: list[str] = []
    for panel in panels(load_dashboards()[name]):
        options = _definition_validator(panel["type"], "Options")
        assert options is not None, f"no vendored schema for panel type {panel['type']}"
        errors += [f"{panel['title']}: {e}" for e in _errors(options, panel["options"])]
        custom = panel["fieldConfig"]["defaults"].get("custom")
        field_config = _definition_validator(panel["type"], "FieldConfig")
        if custom is not None and field_config is not None:
            errors += [f"{panel['title']}: {e}" for e in _errors(field_config, custom)]
    assert errors == []


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_template_variables(name: str) -> None:
    """One `datasource` variable labelled "Data source"; query variables use it and refresh."""
    variables = load_dashboards()[name]["templating"]["list"]
    datasources = [v for v in variables if v["type"] == "datasource"]
    assert [(v["name"], v["label"]) for v in datasources] == [("datasource", "Data source")]
    for variable in variables:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == DATASOURCE_UID
            assert variable["refresh"] == 2, "refresh on time range change"


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_panels_follow_lint_rules(name: str) -> None:
    """Every panel has a title, description, valid unit, targets, and the datasource variable."""
    dashboard = load_dashboards()[name]
    assert dashboard["editable"] is False
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        title = panel.get("title", "")
        assert title, f"title missing: {panel['id']}"
        assert panel.get("description"), f"description missing: {title}"
        assert panel["fieldConfig"]["defaults"].get("unit") in _units(), title
        assert panel.get("targets"), f"{title}: no targets"
        assert panel["datasource"]["uid"] == DATASOURCE_UID, title
        assert all(t["datasource"]["uid"] == DATASOURCE_UID for t in panel["targets"]), title


def _range_windows(expr: str) -> list[str]:
    """The range of every rate/irate/increase call (the first `[...]` inside it)."""
    windows = []
    for match in RANGE_FUNCTIONS.finditer(expr):
        start = expr.index("[", match.end())
        windows.append(expr[start + 1 : expr.index("]", start)])
    return windows


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_rate_functions_use_rate_interval(name: str) -> None:
    """rate/irate/increase use `$__rate_interval`; only instant queries may use `$__range`."""
    checked = 0
    for panel in panels(load_dashboards()[name]):
        for target in panel["targets"]:
            allowed = {"$__rate_interval"} | ({"$__range"} if target["instant"] else set())
            for window in _range_windows(target["expr"]):
                assert window in allowed, f"{panel['title']}: [{window}] in {target['expr']}"
                checked += 1
    assert checked, f"{name}: no rate/irate/increase window found to check"


@pytest.mark.parametrize("name", DASHBOARD_NAMES)
def test_counters_only_inside_rate_or_increase(name: str) -> None:
    """Series ending in `_total` appear only as the argument of rate, irate or increase."""
    checked = 0
    for panel in panels(load_dashboards()[name]):
        for target in panel["targets"]:
            expr = target["expr"]
            for match in re.finditer(r"\b\w+_total\b", expr):
                before = expr[: match.start()]
                assert re.search(r"\b(rate|irate|increase)\(\s*$", before), (
                    f"{panel['title']}: {match.group()} outside rate/increase"
                )
                checked += 1
    assert checked, f"{name}: no counter found to check"


def test_lint_helpers_flag_violations() -> None:
    """The window extractor sees every rate-like call, so the lint rules can fail."""
    expr = 'sum(rate(a_total[5m])) / increase(b_total{x="y"}[$__range])'
    assert _range_windows(expr) == ["5m", "$__range"]


def test_provisioning_files() -> None:
    """Grafana provisioning points at the generated dashboards and a fixed-uid Prometheus."""
    prov = DASHBOARDS / "provisioning"
    datasources = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())
    assert datasources["datasources"][0]["uid"] == "prometheus"
    assert datasources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((prov / "dashboards" / "modellix-proxy.yml").read_text())
    assert providers["providers"][0]["type"] == "file"
    assert providers["providers"][0]["allowUiUpdates"] is False
    for dashboard in load_dashboards().values():
        current = dashboard["templating"]["list"][0]["current"]
        assert current["value"] == datasources["datasources"][0]["uid"]


def test_alertmanager_example_routes_every_severity() -> None:
    """The Alertmanager example names a receiver for every route and the default."""
    config = yaml.safe_load((DASHBOARDS / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in config["receivers"]}
    routes = [config["route"], *config["route"]["routes"]]
    assert {r["receiver"] for r in routes} <= receivers
