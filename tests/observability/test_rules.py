"""Alert and recording rules: promtool-clean, unit-tested, annotated, and using real metrics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest

from dashboards.expressions import RULE_FILES, all_expressions, load_rule_groups
from proxy.telemetry.metrics import Metrics
from tests.observability.conftest import DASHBOARDS, REPO, run_promtool

RULE_TESTS = sorted((DASHBOARDS / "rules" / "tests").glob("*.yml"))
PROMETHEUS_SERIES = {"up"}
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "info": ("_info",),
    "gauge": ("",),
}


def _rules() -> list[dict[str, Any]]:
    return [r for groups in load_rule_groups().values() for g in groups for r in g["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [r for r in _rules() if "alert" in r]


def _exported_names() -> set[str]:
    """Every series name a fresh Metrics() can expose."""
    names = set()
    for family in Metrics(CollectorRegistry()).registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def _runbook_anchors() -> set[str]:
    text = (REPO / "docs" / "runbooks.md").read_text()
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_alert_is_annotated_with_a_runbook() -> None:
    """Each alert has severity, summary, description and a runbook_url whose anchor exists."""
    anchors = _runbook_anchors()
    assert _alerts(), "no alert rules found"
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, name
        summary = alert["annotations"]["summary"]
        assert summary[0].isupper(), name
        assert summary.endswith("."), name
        assert alert["annotations"]["description"], name
        url = alert["annotations"]["runbook_url"]
        assert url.split("#")[0].endswith("docs/runbooks.md"), name
        assert url.split("#")[1] in anchors, f"{name}: no runbook section"


def test_required_alerts_exist() -> None:
    """The issue's alert list is covered."""
    names = {a["alert"] for a in _alerts()}
    assert names >= {
        "ModellixProxyBudgetNearlyExhausted",
        "ModellixProxyBudgetExhausted",
        "ModellixProxyBudgetForecastExhaustion",
        "ModellixProxyJobCostP95Rising",
        "ModellixProxyJobErrorBudgetBurn",
        "ModellixProxyUpstreamErrorRatioHigh",
        "ModellixProxyJobsStuck",
        "ModellixProxyRetryStorm",
        "ModellixProxyWatcherBacklog",
        "ModellixProxyDown",
        "ModellixProxyJobsWithoutCredential",
        "ModellixProxySubmitOutcomesUnknown",
        "ModellixProxyUnknownOutcomesHoldBudget",
    }


def test_recording_rule_names_follow_convention() -> None:
    """Recording rules are named level:metric:operations."""
    records = [rule["record"] for rule in _rules() if "record" in rule]
    assert records, "no recording rules found"
    for record in records:
        assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", record), record


def test_every_alert_has_a_firing_unit_test() -> None:
    """Each alert name appears with expected firing alerts in a promtool test file."""
    tested = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {
                t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")
            }
    assert {a["alert"] for a in _alerts()} <= tested


def test_expressions_use_only_defined_metrics() -> None:
    """Every series named in dashboards and rules is exported by Metrics or recorded by a rule."""
    known = _exported_names() | PROMETHEUS_SERIES | {r["record"] for r in _rules() if "record" in r}
    expressions = list(all_expressions())
    assert expressions, "no dashboard or rule expressions found"
    for expression in expressions:
        unquoted = re.sub(r'"[^"]*"', '""', expression.expr)
        unquoted = re.sub(r"\b(by|without|on|ignoring|group_left)\s*\([^)]*\)", "", unquoted)
        names = re.findall(r"\b(modellix_proxy_\w+|\w+:\w+:\w+|up)\b", unquoted)
        missing = set(names) - known
        assert not missing, f"{expression.source}: unknown series {missing}"


@pytest.mark.prometheus
def test_promtool_check_rules(promtool: str) -> None:
    """`promtool check rules` accepts the rule files."""
    run_promtool(promtool, "check", "rules", *map(str, RULE_FILES))


@pytest.mark.prometheus
def test_promtool_unit_tests(promtool: str) -> None:
    """`promtool test rules` passes for every test file."""
    run_promtool(promtool, "test", "rules", *map(str, RULE_TESTS))


@pytest.mark.prometheus
def test_promtool_check_config(promtool: str) -> None:
    """The example Prometheus configuration and the rules it loads are valid."""
    run_promtool(promtool, "check", "config", str(DASHBOARDS / "prometheus" / "prometheus.yml"))


@pytest.mark.prometheus
def test_every_expression_parses(promtool: str, tmp_path: Path) -> None:
    """Each dashboard and rule expression, variables substituted, parses in promtool."""
    rules = [
        {"record": f"check:expression:n{i}", "expr": e.expr, "labels": {"source": e.source}}
        for i, e in enumerate(all_expressions())
    ]
    path = tmp_path / "expressions.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "parse", "rules": rules}]}))
    run_promtool(promtool, "check", "rules", str(path))


def _observe_everything(metrics: Metrics) -> None:
    for metric in vars(metrics).values():
        if not isinstance(metric, Counter | Gauge | Histogram | Info):
            continue
        names: tuple[str, ...] = metric._labelnames
        child = metric.labels(**{n: "x" for n in names}) if names else metric
        if isinstance(child, Counter):
            child.inc()
        elif isinstance(child, Gauge):
            child.set(1)
        elif isinstance(child, Histogram):
            child.observe(1)
        elif isinstance(child, Info):
            child.info({"version": "0.1.0", "revision": "abc"})


@pytest.mark.prometheus
def test_promtool_check_metrics(promtool: str) -> None:
    """`promtool check metrics` finds no naming problem in the exposition."""
    metrics = Metrics(CollectorRegistry())
    _observe_everything(metrics)
    exposition = generate_latest(metrics.registry).decode()
    assert "modellix_proxy_build_info" in exposition
    run_promtool(promtool, "check", "metrics", stdin=exposition)
