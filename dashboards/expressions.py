"""Every PromQL expression the checked-in dashboards and rules use, ready to evaluate.

Grafana variables are replaced by values Prometheus accepts (``$__rate_interval`` by ``5m``,
``$__range`` by ``1h``, label filters by ``.*``), so the expressions can go through
``promtool check rules`` or a live Prometheus's ``/api/v1/query``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent
DASHBOARD_FILES = tuple(sorted((ROOT / "json").glob("*.json")))
RULE_FILES = tuple(sorted((ROOT / "rules").glob("*.yml")))

DEFAULT_SUBSTITUTIONS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it comes from."""

    source: str  # "finance.json: Spend today [A]" or "modellix-proxy.yml: ModellixProxyDown"
    raw: str  # as written, Grafana variables included
    expr: str  # variables substituted


def substitute(expr: str, substitutions: dict[str, str] | None = None) -> str:
    """Replace Grafana's built-in and dashboard variables by evaluable values."""
    subs = DEFAULT_SUBSTITUTIONS if substitutions is None else substitutions
    for name in sorted(subs, key=len, reverse=True):
        expr = expr.replace(name, subs[name])
    return _VARIABLE.sub(".*", expr)


def load_dashboards() -> dict[str, dict[str, Any]]:
    """The checked-in dashboards by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in DASHBOARD_FILES}


def load_rule_groups() -> dict[str, list[dict[str, Any]]]:
    """The checked-in rule groups by file name."""
    return {p.name: yaml.safe_load(p.read_text(encoding="utf-8"))["groups"] for p in RULE_FILES}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every non-row panel, including panels nested in collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def dashboard_expressions(substitutions: dict[str, str] | None = None) -> list[Expression]:
    """Every panel target and query variable of the dashboards."""
    found = []
    for name, dashboard in load_dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                raw = target["expr"]
                source = f"{name}: {panel['title']} [{target['refId']}]"
                found.append(Expression(source, raw, substitute(raw, substitutions)))
        for variable in dashboard["templating"]["list"]:
            query = variable.get("query", "")
            if variable["type"] == "query" and isinstance(query, str):
                match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
                if match:
                    source = f"{name}: variable {variable['name']}"
                    found.append(Expression(source, query, substitute(match.group(1))))
    return found


def rule_expressions() -> list[Expression]:
    """Every recording and alert rule expression."""
    found = []
    for name, groups in load_rule_groups().items():
        for group in groups:
            for rule in group["rules"]:
                label = rule.get("alert") or rule["record"]
                found.append(Expression(f"{name}: {label}", rule["expr"], rule["expr"]))
    return found


def all_expressions(substitutions: dict[str, str] | None = None) -> list[Expression]:
    """Dashboard and rule expressions together."""
    return dashboard_expressions(substitutions) + rule_expressions()
