"""The public surface of ``services.origination.passport`` and the size of its private modules."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from services.origination import passport

EXPORTS = [
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
]
MAX_MODULE_LINES = 600


def test_all_is_pinned() -> None:
    """The package exports exactly the names its callers import, no more and no fewer."""
    assert sorted(passport.__all__) == EXPORTS
    assert len(passport.__all__) == len(set(passport.__all__))


@pytest.mark.parametrize("name", EXPORTS)
def test_every_export_is_importable(name: str) -> None:
    """Each exported name resolves on a fresh import of the package."""
    module = importlib.import_module("services.origination.passport")
    assert getattr(module, name) is not None


def test_private_modules_stay_small() -> None:
    """No module of the package exceeds the project's module size limit."""
    package = Path(passport.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) > 1
    for module in modules:
        lines = len(module.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_MODULE_LINES, f"{module.name} has {lines} lines"
