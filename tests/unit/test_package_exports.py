"""The public face of each package that hides private modules behind its ``__init__``.

Each ``__init__`` only imports and lists ``__all__`` (pinned here: exactly what callers use); the
private modules are ``_name.py``. Module sizes are checked for the whole tree by test_layers.py.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

EXPORTS: dict[str, list[str]] = {
    "services.origination.passport": [
        "ChainSource",
        "CompactFormError",
        "DEFAULT_FRESHNESS_S",
        "IdentityHeader",
        "MAX_HEADER_BYTES",
        "MAX_IDENTITY_HEADERS",
        "MAX_JSON_DEPTH",
        "MAX_JSON_INT",
        "MAX_JSON_ITEMS",
        "MemoryReplayStore",
        "P256_ORDER",
        "PENDING",
        "Passport",
        "PassportError",
        "ReplayStore",
        "ShakenResult",
        "ShakenStatus",
        "VERIFICATION_ERROR",
        "Verifier",
        "parse_passport",
        "replay_key",
        "split_identity",
        "tn_digits",
    ],
    "loadtest.simulate": ["HOUR_WEIGHTS_BUSINESS", "Simulation", "simulate", "trunk_id", "write_dataset"],
    "loadtest.report": [
        "ReportSummary",
        "build_report",
        "group_calls",
        "kind_name",
        "main",
        "scored_from_ms",
    ],
}


def _folder(package: str) -> Path:
    return Path(importlib.import_module(package).__file__ or "").parent


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_all_is_pinned_and_every_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == EXPORTS[package]
    assert len(module.__all__) == len(set(module.__all__))
    assert all(getattr(module, name) is not None for name in EXPORTS[package])


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_the_init_only_imports_and_the_rest_is_private(package: str) -> None:
    folder = _folder(package)
    tree = ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        assignment = isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        assert isinstance(node, ast.Import | ast.ImportFrom) or assignment or docstring, ast.unparse(node)
    modules = {p.name for p in folder.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert len(modules) > 1
    assert all(name.startswith("_") for name in modules), sorted(modules)


def test_only_the_report_plots_import_matplotlib() -> None:
    folder = _folder("loadtest.report")
    importers = sorted(p.name for p in folder.glob("*.py") if "matplotlib" in _imported(p))
    assert importers == ["_plots.py"]
