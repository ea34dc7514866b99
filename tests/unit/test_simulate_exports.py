"""The public surface of ``loadtest.simulate`` and the size of its private modules."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from loadtest import simulate

EXPORTS = [
    "HOUR_WEIGHTS_BUSINESS",
    "Simulation",
    "simulate",
    "trunk_id",
    "write_dataset",
]
MAX_MODULE_LINES = 600


def test_all_is_pinned() -> None:
    """The package exports exactly the names its callers import, no more and no fewer."""
    assert sorted(simulate.__all__) == EXPORTS
    assert len(simulate.__all__) == len(set(simulate.__all__))


@pytest.mark.parametrize("name", EXPORTS)
def test_every_export_is_importable(name: str) -> None:
    """Each exported name resolves on a fresh import of the package."""
    module = importlib.import_module("loadtest.simulate")
    assert getattr(module, name) is not None


def test_private_modules_stay_small() -> None:
    """No module of the package exceeds the project's module size limit."""
    package = Path(simulate.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) > 1
    for module in modules:
        lines = len(module.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_MODULE_LINES, f"{module.name} has {lines} lines"
