"""Dashboard, row, panel and query types that render to Grafana's JSON model.

The JSON follows one pinned Grafana schema version, and panels are laid out on Grafana's 24-column
grid automatically, so a service module only says what to plot.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 39  # Grafana 10.4 / 11.x dashboard JSON model
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24
NAMESPACE_MATCHER = 'namespace=~"$namespace"'

PanelKind = Literal["timeseries", "stat"]
StatText = Literal["auto", "value", "name", "value_and_name"]


def sel(metric: str, *matchers: str) -> str:
    """A series selector scoped to the dashboard's namespace: ``metric{namespace=~"$namespace",…}``."""
    return metric + "{" + ",".join((NAMESPACE_MATCHER, *matchers)) + "}"


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and how its series are named in the legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Threshold:
    """A value at which a panel turns a colour (drawn as a line on time series)."""

    value: float
    color: str = "red"


@dataclass(frozen=True)
class Panel:
    """A time series or single-stat panel."""

    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    kind: PanelKind = "timeseries"
    width: int = 8
    height: int = 8
    thresholds: tuple[Threshold, ...] = ()
    stacked: bool = False
    decimals: int | None = None
    text_mode: StatText = "auto"  # stat panels: "name" shows the legend (e.g. a version label)

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        """Grafana's JSON for this panel at grid position (x, y)."""
        steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
        steps += [{"color": t.color, "value": t.value} for t in self.thresholds]
        defaults: dict[str, Any] = {
            "unit": self.unit,
            "thresholds": {"mode": "absolute", "steps": steps},
            "color": {"mode": "palette-classic" if self.kind == "timeseries" else "thresholds"},
        }
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        options: dict[str, Any]
        if self.kind == "timeseries":
            defaults["custom"] = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10,
                "showPoints": "never",
                "spanNulls": False,
                "stacking": {"mode": "normal" if self.stacked else "none", "group": "A"},
                "thresholdsStyle": {"mode": "line" if self.thresholds else "off"},
            }
            options = {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        else:
            options = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value",
                "graphMode": "area",
                "justifyMode": "auto",
                "orientation": "auto",
                "textMode": self.text_mode,
            }
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options,
            "targets": [
                {
                    "refId": string.ascii_uppercase[i],
                    "datasource": DATASOURCE,
                    "expr": query.expr,
                    "legendFormat": query.legend or "__auto",
                    "range": True,
                }
                for i, query in enumerate(self.queries)
            ],
        }


@dataclass(frozen=True)
class Row:
    """A titled row of panels, laid out left to right and wrapped at the grid's width."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: rows of panels plus the data source and namespace variables."""

    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = ("fraudmesh",)
    links: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """Grafana's JSON model of the dashboard (ids and grid positions assigned in order)."""
        panels: list[dict[str, Any]] = []
        next_id = 1
        y = 0
        for row in self.rows:
            panels.append(
                {
                    "id": next_id,
                    "type": "row",
                    "title": row.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                    "panels": [],
                }
            )
            next_id += 1
            y += 1
            x = 0
            line_height = 0
            for panel in row.panels:
                if panel.width > GRID_WIDTH:
                    raise ValueError(f"panel {panel.title!r} is wider than the grid")
                if x + panel.width > GRID_WIDTH:
                    y += line_height
                    x = 0
                    line_height = 0
                panels.append(panel.to_json(next_id, x, y))
                next_id += 1
                x += panel.width
                line_height = max(line_height, panel.height)
            y += line_height
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"},
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "links": [
                {"type": "dashboards", "tags": list(self.links), "title": "fraudmesh", "asDropdown": True}
            ]
            if self.links
            else [],
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
            "templating": {"list": _variables()},
            "panels": panels,
        }


NAMESPACE_QUERY = "label_values(python_info, namespace)"


def _variables() -> list[dict[str, Any]]:
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
        },
        {
            "name": "namespace",
            "label": "Namespace",
            "type": "query",
            "datasource": DATASOURCE,
            "definition": NAMESPACE_QUERY,
            "query": {"query": NAMESPACE_QUERY, "refId": "namespace"},
            "current": {},
            "hide": 0,
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "refresh": 2,
            "sort": 1,
            "regex": "",
        },
    ]


@dataclass(frozen=True)
class Section:
    """What one service contributes: overview panels, its own dashboard's rows, fraud-view panels.

    ``service`` is the component name, which is also the ``service`` label Prometheus puts on the
    service's series (the chart's PodMonitor relabels it from the pod's component label).
    """

    service: str
    title: str
    order: int
    overview: tuple[Panel, ...]
    rows: tuple[Row, ...]
    fraud: tuple[Panel, ...] = ()
