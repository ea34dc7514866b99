"""The house's import directions, measured from the source: serving never reaches up into training,
the simulator or the benchmarks, and each deployable stands on services/common alone.

Top-level packages, bottom up: ``fraudmesh`` (generated contracts) → ``services`` → ``training`` →
``loadtest`` → ``bench`` / ``fuzz`` (peers nobody imports); ``charts`` and ``deploy`` stand apart.
Inside services/, ``common`` imports no service, ``scoring`` is a library only decision loads, and
no deployable imports another (they talk over gRPC and Kafka). Lazy imports inside functions count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("fraudmesh", "services", "training", "loadtest", "bench", "fuzz", "charts", "deploy")

ALLOWED: dict[str, set[str]] = {
    "services": {"fraudmesh", "services"},
    "training": {"fraudmesh", "services", "training"},
    "loadtest": {"fraudmesh", "services", "training", "loadtest"},
    "bench": {"fraudmesh", "services", "training", "loadtest", "bench"},
    "fuzz": {"fraudmesh", "services", "training", "loadtest", "fuzz"},
    "charts": {"charts"},
}
# Decision verifies SHAKEN in-process with origination's library (issue 15); origination never
# imports decision, so the library stays the one origination's own Verify runs.
SERVICES_ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "scoring": {"common"},
    "decision": {"common", "scoring", "origination"},
    "origination": {"common"},
    "reputation": {"common"},
    "audio": {"common"},
    "switchfront": {"common", "decision"},
}
TRAINING_ONLY = ("lightgbm", "sklearn", "matplotlib", "treelite", "tl2cgen", "hypothesis")
MAX_MODULE_LINES = 600


def _sources(package: str) -> Iterator[Path]:
    for path in sorted((ROOT / package).rglob("*.py")):
        if not path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
            yield path


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_top_level_packages_import_only_downwards(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources(package)
        for name in _imports(path)
        if name.split(".")[0] in FIRST_PARTY and name.split(".")[0] not in ALLOWED[package]
    }
    assert not wrong, sorted(wrong)


def test_every_service_folder_is_listed() -> None:
    folders = {p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(SERVICES_ALLOWED)


@pytest.mark.parametrize("service", sorted(SERVICES_ALLOWED))
def test_deployables_stand_on_common_alone(service: str) -> None:
    wrong = set()
    for path in _sources(f"services/{service}"):
        for name in _imports(path):
            parts = name.split(".")
            if (
                parts[0] == "services"
                and len(parts) > 1
                and parts[1] not in {service, *SERVICES_ALLOWED[service]}
            ):
                wrong.add(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, sorted(wrong)


def test_serving_imports_no_training_or_plotting_library() -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources("services")
        for name in _imports(path)
        if name.split(".")[0] in TRAINING_ONLY
    }
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize("package", ["services", "training", "loadtest"])
def test_no_module_is_over_the_size_a_reader_can_hold(package: str) -> None:
    long = {
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in _sources(package)
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, sorted(long)
