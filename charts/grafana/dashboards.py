"""The dashboards fraudmesh ships: an overview, one per service, and a fraud view.

Sections come from the modules in ``charts.grafana.services`` (one per service, found
automatically), so adding a service's panels never touches this file.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

from charts.grafana import services
from charts.grafana.model import Dashboard, Panel, Query, Row, Section, sel

OUT_DIR = Path(__file__).resolve().parents[1] / "dashboards"
RATE = "[$__rate_interval]"


def sections() -> tuple[Section, ...]:
    """Every service's section, in display order."""
    found: list[Section] = []
    for module in pkgutil.iter_modules(services.__path__):
        section = getattr(importlib.import_module(f"{services.__name__}.{module.name}"), "SECTION", None)
        if not isinstance(section, Section):
            raise TypeError(f"charts.grafana.services.{module.name} must define SECTION = Section(...)")
        found.append(section)
    return tuple(sorted(found, key=lambda s: (s.order, s.service)))


def _process_row(service: str) -> Row:
    """CPU and memory per pod, from prometheus_client's process collector, for any service."""
    scope = f'service="{service}"'
    return Row(
        "Process",
        (
            Panel(
                "CPU (cores) by pod",
                (Query(f"sum by (pod) (rate({sel('process_cpu_seconds_total', scope)}{RATE}))", "{{pod}}"),),
                unit="short",
                width=12,
                description="The HPA scales on CPU against the pod's request.",
            ),
            Panel(
                "Resident memory by pod",
                (Query(f"sum by (pod) ({sel('process_resident_memory_bytes', scope)})", "{{pod}}"),),
                unit="bytes",
                width=12,
            ),
        ),
    )


def _fleet_row(all_sections: tuple[Section, ...]) -> Row:
    scope = 'service=~"' + "|".join(s.service for s in all_sections) + '"'
    return Row(
        "Fleet",
        (
            Panel(
                "Pods up by service",
                (Query(f"sum by (service) ({sel('up', scope)})", "{{service}}"),),
                unit="short",
                width=12,
                description="Scraped pods answering /metrics, per component.",
            ),
            Panel(
                "Redis memory used / maxmemory",
                (
                    Query(
                        "max by (instance) (redis_memory_used_bytes / (redis_memory_max_bytes > 0))",
                        "{{instance}}",
                    ),
                ),
                unit="percentunit",
                width=12,
                description="From redis_exporter (not fraudmesh): near 100 % the LRU evicts features.",
            ),
        ),
    )


def overview(all_sections: tuple[Section, ...]) -> Dashboard:
    """Fleet health plus each service's golden signals, one row per service."""
    return Dashboard(
        uid="fraudmesh-overview",
        title="fraudmesh / Overview",
        description="Fleet health and each service's key signals; drill down into the service dashboards.",
        rows=(_fleet_row(all_sections), *(Row(s.title, s.overview) for s in all_sections)),
        links=("fraudmesh",),
    )


def service_dashboard(section: Section) -> Dashboard:
    """One service's own dashboard: its rows plus process CPU and memory."""
    return Dashboard(
        uid=f"fraudmesh-{section.service}",
        title=f"fraudmesh / {section.title}",
        description=f"The {section.service} service in detail.",
        rows=(*section.rows, _process_row(section.service)),
        links=("fraudmesh",),
    )


def fraud_view(all_sections: tuple[Section, ...]) -> Dashboard:
    """What fraud the mesh sees, one row per service that contributes fraud panels."""
    return Dashboard(
        uid="fraudmesh-fraud",
        title="fraudmesh / Fraud",
        description="Fraud across the mesh: actions and reasons, spoofed caller IDs, campaigns, complaints.",
        rows=tuple(Row(s.title, s.fraud) for s in all_sections if s.fraud),
        links=("fraudmesh",),
    )


def build_all() -> dict[str, str]:
    """File name → JSON text of every dashboard, stable byte for byte."""
    all_sections = sections()
    boards = [overview(all_sections), fraud_view(all_sections)]
    boards += [service_dashboard(s) for s in all_sections]
    return {f"{b.uid}.json": json.dumps(b.to_json(), indent=2, sort_keys=True) + "\n" for b in boards}
