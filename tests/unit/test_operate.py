"""Dashboards and alert rules query only metrics the services export, and stay generated; the
Helm chart sets only settings its services read.

Every ``services/<name>/metrics.py`` is imported (new services are picked up automatically) and
the names prometheus_client would expose are compared with every metric a dashboard panel, a
dashboard variable or an alert rule selects; exporter metrics must be declared in
``charts.promql.EXTERNAL_METRICS``. Every FRAUDMESH_* name the chart can set is compared with the
fields of the services' settings classes, and each Deployment of the checked-in rendering with the
settings of the module it runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import services
from charts.grafana.dashboards import OUT_DIR, build_all, sections
from charts.grafana.model import GRID_WIDTH
from charts.promql import EXTERNAL_METRICS, metric_names
from services.common.settings import CommonSettings, Secret, env_name
from services.switchfront.answer import Cause

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "charts" / "alerts"
CHART = ROOT / "deploy" / "helm" / "fraudmesh"
VALUES = CHART / "values.yaml"
RENDERED = ROOT / "deploy" / "helm" / "rendered" / "default.yaml"
# Kafka security the chart passes on but no service reads yet (deploy/helm/README.md, Secrets).
PROPOSED_ENV = frozenset(
    {
        "FRAUDMESH_KAFKA_SECURITY_PROTOCOL",
        "FRAUDMESH_KAFKA_SASL_MECHANISM",
        "FRAUDMESH_KAFKA_SASL_USERNAME",
        "FRAUDMESH_KAFKA_SASL_PASSWORD_FILE",
        "FRAUDMESH_KAFKA_CA_FILE",
    }
)

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
}


def _metrics_modules() -> list[str]:
    return [
        f"services.{m.name}.metrics"
        for m in pkgutil.iter_modules(services.__path__)
        if m.ispkg and (ROOT / "services" / m.name / "metrics.py").is_file()
    ]


def exported_names() -> set[str]:
    """Every series name the services' registry exposes, with each type's suffixes."""
    for module in _metrics_modules():
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def dashboard_queries() -> dict[str, str]:
    """'file: panel' → PromQL, for every panel target and query variable of every dashboard."""
    queries: dict[str, str] = {}
    for path in sorted(OUT_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                queries[f"{path.name}: {panel['title']} {target['refId']}"] = target["expr"]
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                queries[f"{path.name}: ${variable['name']}"] = variable["definition"]
    return queries


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in sorted(ALERTS.glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += group["rules"]
    return rules


def test_every_metric_a_dashboard_or_alert_queries_is_exported() -> None:
    exported = exported_names()
    assert "fraudmesh_reputation_events_total" in exported
    queries = dashboard_queries()
    queries.update({f"alert {r['alert']}": r["expr"] for r in alert_rules()})
    assert len(queries) > 20
    unknown = {
        where: sorted(metric_names(expr) - exported - EXTERNAL_METRICS.keys())
        for where, expr in queries.items()
        if metric_names(expr) - exported - EXTERNAL_METRICS.keys()
    }
    assert unknown == {}, "queries over metrics no service exports (or declared exporter provides)"


def test_every_declared_external_metric_is_used() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_queries().values()))
    used |= set().union(*(metric_names(r["expr"]) for r in alert_rules()))
    assert set(EXTERNAL_METRICS) <= used


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le, topic) (rate(a_bucket{x="y", z=~"$v"}[$__rate_interval]))', {"a_bucket"}),
        ("histogram_quantile(0.99, sum by (le) (rate(b_bucket[5m]))) > 0.1", {"b_bucket"}),
        ("x / on (namespace) group_left(pod) y and z offset 5m", {"x", "y", "z"}),
        ("label_values(python_info, namespace)", {"python_info"}),
        ('1000 * sum(rate(c_total{topic="calls.setup.v1"}[1m])) / clamp_min(d, 1e-9)', {"c_total", "d"}),
    ],
)
def test_metric_names_reads_selectors_not_functions_or_labels(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_checked_in_dashboards_match_the_builder() -> None:
    built = build_all()
    assert {p.name for p in OUT_DIR.glob("*.json")} == set(built)
    for name, text in built.items():
        assert (OUT_DIR / name).read_text() == text, f"{name} is stale: run `make dashboards`"


def test_panels_fit_the_grid_and_ids_are_unique() -> None:
    for text in build_all().values():
        board = json.loads(text)
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= GRID_WIDTH
            area = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
            assert not cells & area, f"{panel['title']} overlaps another panel"
            cells |= area


def test_every_dashboard_section_is_a_chart_component() -> None:
    components = yaml.safe_load(VALUES.read_text())["components"]
    assert {s.service for s in sections()} <= set(components)


def test_every_chart_component_has_a_dashboard_and_a_down_alert() -> None:
    components = set(yaml.safe_load(VALUES.read_text())["components"])
    assert "switchfront" in components
    assert {s.service for s in sections()} == components
    down = {
        component
        for component in components
        for rule in alert_rules()
        if f'up{{service="{component}"}}' in rule["expr"] and "== 0" in rule["expr"]
    }
    assert down == components, f"components without an alert on up == 0: {components - down}"


def test_switch_front_fail_open_excludes_exactly_decided_and_emergency() -> None:
    excluded = f'cause!~"{Cause.DECIDED}|{Cause.EMERGENCY}"'
    rule = next(r for r in alert_rules() if r["alert"] == "FraudmeshSwitchFrontFailingOpen")
    assert excluded in rule["expr"]
    panels = [e for where, e in dashboard_queries().items() if where.startswith("fraudmesh-switchfront.json")]
    assert sum(excluded in expr for expr in panels) >= 2  # the fail-open share and the causes


def test_alerts_are_labelled_documented_and_unit_tested() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
    tested = set()
    for path in (ALERTS / "tests").glob("*_test.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert set(names) <= tested, f"alerts never shown firing in a promtool test: {set(names) - tested}"


def _services_with_settings() -> list[str]:
    return [
        f"services.{m.name}"
        for m in pkgutil.iter_modules(services.__path__)
        if m.ispkg and m.name != "common" and (ROOT / "services" / m.name / "settings.py").is_file()
    ]


def _settings_class(module: str) -> type[CommonSettings]:
    """The settings a service module runs with: the most derived class in its settings.py."""
    settings = importlib.import_module(f"{module}.settings")
    own = [
        cls
        for cls in vars(settings).values()
        if isinstance(cls, type) and issubclass(cls, CommonSettings) and cls.__module__ == settings.__name__
    ]
    leaves = [cls for cls in own if not any(other is not cls and issubclass(other, cls) for other in own)]
    assert len(leaves) == 1, f"{module}.settings: expected one settings class, found {leaves}"
    return leaves[0]


def settings_env(cls: type[CommonSettings]) -> set[str]:
    """Every FRAUDMESH_* name a settings class reads (a secret also as <NAME>_FILE)."""
    hints = typing.get_type_hints(cls)
    names: set[str] = set()
    for field in dataclasses.fields(cls):
        names.add(env_name(field.name))
        kinds = (hints[field.name], *typing.get_args(hints[field.name]))
        if any(isinstance(kind, type) and issubclass(kind, Secret) for kind in kinds):
            names.add(env_name(field.name) + "_FILE")
    return names


def test_every_setting_the_chart_can_set_is_read_by_a_service() -> None:
    read = set().union(*(settings_env(_settings_class(module)) for module in _services_with_settings()))
    sources = [*CHART.glob("templates/*"), VALUES, *CHART.glob("ci/*.yaml")]
    named = {name for path in sources for name in re.findall(r"FRAUDMESH_[A-Z0-9_]+", path.read_text())}
    assert {"FRAUDMESH_HEALTH_PORT", "FRAUDMESH_DECISION_TARGET"} <= named
    assert named - read - PROPOSED_ENV == set(), "the chart sets names no service reads (a typo?)"


def test_each_rendered_deployment_gets_only_settings_its_module_reads() -> None:
    deployments = [d for d in yaml.safe_load_all(RENDERED.read_text()) if d and d["kind"] == "Deployment"]
    assert len(deployments) >= 5
    for deployment in deployments:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        module = container["command"][2]
        given = {env["name"] for env in container["env"] if env["name"].startswith("FRAUDMESH_")}
        unread = given - settings_env(_settings_class(module)) - PROPOSED_ENV
        assert unread == set(), f"{deployment['metadata']['name']} ({module}) gets settings it never reads"
