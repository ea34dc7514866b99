"""The public surface of ``loadtest.report``, where matplotlib is imported and the size of its modules."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from loadtest import report

EXPORTS = [
    "ReportSummary",
    "build_report",
    "group_calls",
    "kind_name",
    "main",
]
PLOTS_MODULE = "_plots.py"
MAX_MODULE_LINES = 600
PACKAGE = Path(report.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """The top-level package names a module's source imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_all_is_pinned() -> None:
    """The package exports exactly the names its callers import, no more and no fewer."""
    assert sorted(report.__all__) == EXPORTS
    assert len(report.__all__) == len(set(report.__all__))


@pytest.mark.parametrize("name", EXPORTS)
def test_every_export_is_importable(name: str) -> None:
    """Each exported name resolves on a fresh import of the package."""
    module = importlib.import_module("loadtest.report")
    assert getattr(module, name) is not None


def test_only_the_plots_module_imports_matplotlib() -> None:
    """matplotlib is imported by the plots module and by no other module of the package."""
    modules = sorted(PACKAGE.glob("*.py"))
    importers = [module.name for module in modules if "matplotlib" in imported_modules(module)]
    assert importers == [PLOTS_MODULE]


def test_modules_stay_small() -> None:
    """No module of the package exceeds the project's module size limit."""
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 1
    for module in modules:
        lines = len(module.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_MODULE_LINES, f"{module.name} has {lines} lines"
