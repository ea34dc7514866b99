"""The metric names a PromQL expression reads, and the metrics fraudmesh reads from exporters.

Dashboards and alert rules may query only metrics the services export (checked by a test against
prometheus_client's registry) or one of ``EXTERNAL_METRICS``, which name the exporter that must
run beside fraudmesh for the panel or rule to show data.
"""

from __future__ import annotations

import re

EXTERNAL_METRICS: dict[str, str] = {
    "up": "Prometheus itself (one series per scraped pod)",
    "redis_memory_used_bytes": "oliver006/redis_exporter on the Redis fraudmesh uses",
    "redis_memory_max_bytes": "oliver006/redis_exporter (0 when maxmemory is unset)",
    "kafka_consumergroup_lag": "danielqsj/kafka_exporter on the Kafka cluster",
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_LABEL_VALUES = re.compile(r"\blabel_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^)]*\)")
_IDENT = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
     "offset", "inf", "nan", "atan2"}
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Every metric name an expression (or a Grafana ``label_values`` query) selects."""
    names = set(_LABEL_VALUES.findall(expr))
    text = _LABEL_VALUES.sub(" ", expr)
    text = _STRING.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    for name, call in _IDENT.findall(text):
        if call or name.lower() in _KEYWORDS or re.fullmatch(r"\d\w*", name):
            continue
        names.add(name)
    return names
