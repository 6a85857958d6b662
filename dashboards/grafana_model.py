"""Small builders for Grafana dashboard JSON (classic schema, Grafana 10+).

Each builder returns plain dicts shaped by the vendored foundation-sdk JSON Schemas in
``schema/``. Panels always read the ``datasource`` variable, carry a unit and a description,
and are laid out left to right in rows of 24 grid columns by :class:`Layout`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 41


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel."""

    expr: str
    legend: str = "__auto"
    instant: bool = False
    table: bool = False


@dataclass(frozen=True)
class Panel:
    """What a panel shows; the layout and ids are filled in by :class:`Layout`."""

    kind: str  # timeseries | stat | bargauge | table
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    width: int = 12
    height: int = 8
    time_from: str | None = None  # e.g. "now/d" for "today so far"
    stack: str | None = None  # "normal" | "percent" for stacked time series
    thresholds: tuple[tuple[float, str], ...] = ()
    min_value: float | None = None


@dataclass
class Layout:
    """Places rows and panels on the 24-column grid and numbers them."""

    panels: list[Json] = field(default_factory=list)
    x: int = 0
    y: int = 0
    row_height: int = 0
    next_id: int = 1

    def row(self, title: str) -> None:
        """Start a new (expanded) row."""
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._id(),
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            }
        )
        self.y += 1

    def add(self, panel: Panel) -> None:
        """Place a panel after the previous one, wrapping to a new line when full."""
        if self.x + panel.width > 24:
            self._newline()
        grid = {"h": panel.height, "w": panel.width, "x": self.x, "y": self.y}
        self.panels.append(render_panel(panel, self._id(), grid))
        self.x += panel.width
        self.row_height = max(self.row_height, panel.height)

    def _newline(self) -> None:
        self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _target(query: Query, ref: str) -> Json:
    return {
        "refId": ref,
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": query.expr,
        "legendFormat": query.legend,
        "instant": query.instant,
        "range": not query.instant,
        "format": "table" if query.table else "time_series",
    }


def _thresholds(steps: tuple[tuple[float, str], ...]) -> Json:
    rendered: list[Json] = [{"value": None, "color": "green"}]
    rendered += [{"value": value, "color": color} for value, color in steps]
    return {"mode": "absolute", "steps": rendered}


def _options(panel: Panel) -> Json:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    legend = {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []}
    if panel.kind == "timeseries":
        return {"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}}
    if panel.kind == "stat":
        return {
            "graphMode": "none",
            "colorMode": "value",
            "justifyMode": "auto",
            "textMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
            "reduceOptions": reduce,
            "percentChangeColorMode": "standard",
            "orientation": "auto",
        }
    if panel.kind == "bargauge":
        return {
            "displayMode": "gradient",
            "valueMode": "color",
            "namePlacement": "auto",
            "showUnfilled": True,
            "sizing": "auto",
            "minVizWidth": 8,
            "minVizHeight": 16,
            "maxVizHeight": 300,
            "legend": dict(legend, showLegend=False),
            "reduceOptions": reduce,
            "orientation": "horizontal",
        }
    if panel.kind == "table":
        return {"frameIndex": 0, "showHeader": True, "cellHeight": "sm"}
    raise ValueError(f"unsupported panel kind {panel.kind!r}")


def _custom(panel: Panel) -> Json | None:
    if panel.kind == "timeseries":
        custom: Json = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
        }
        custom["stacking"] = {"mode": panel.stack or "none", "group": "A"}
        return custom
    if panel.kind == "table":
        return {"align": "auto", "inspect": False}
    return None


def render_panel(panel: Panel, panel_id: int, grid: Json) -> Json:
    """Render one panel as Grafana JSON."""
    refs = "ABCDEFGHIJ"
    defaults: Json = {"unit": panel.unit, "color": {"mode": "palette-classic"}}
    if panel.thresholds:
        defaults["thresholds"] = _thresholds(panel.thresholds)
        defaults["color"] = {"mode": "thresholds"}
    if panel.min_value is not None:
        defaults["min"] = panel.min_value
    custom = _custom(panel)
    if custom is not None:
        defaults["custom"] = custom
    rendered: Json = {
        "type": panel.kind,
        "id": panel_id,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": [_target(q, refs[i]) for i, q in enumerate(panel.queries)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": _options(panel),
    }
    if panel.time_from is not None:
        rendered["timeFrom"] = panel.time_from
    return rendered


def datasource_variable() -> Json:
    """The one data source variable every panel reads (dashboard-linter's template rule)."""
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "current": {"text": "Prometheus", "value": "prometheus"},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def label_variable(name: str, label: str, metric: str) -> Json:
    """A multi-select label filter fed by ``label_values`` that refreshes on time change."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": f"Filter by {label.lower()}.",
        "datasource": DATASOURCE,
        "query": f"label_values({metric}, {name})",
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"text": ["All"], "value": ["$__all"]},
        "options": [],
    }


def dashboard(
    uid: str, title: str, description: str, tags: list[str], variables: list[Json], layout: Layout
) -> Json:
    """Assemble a provisioned (read-only) dashboard."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "templating": {"list": [datasource_variable(), *variables]},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "panels": layout.panels,
    }
