"""docs/scenarios.md documents every scenario key, so an operator can write their own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from loadtest.scenario import SCENARIO_DIR, Scenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"


def _keys(cls: type) -> set[str]:
    found: set[str] = set()
    for field in dataclasses.fields(cls):
        found.add(field.name)
        default = field.default
        if dataclasses.is_dataclass(default) and not isinstance(default, tuple):
            found |= _keys(type(default))
    return found


def test_every_key_is_documented() -> None:
    text = DOC.read_text()
    missing = sorted(key for key in _keys(Scenario) if f"`{key}`" not in text and f"`{key}." not in text)
    assert not missing, f"undocumented scenario keys: {missing}"


def test_every_bundled_scenario_is_documented() -> None:
    text = DOC.read_text()
    missing = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml") if f"`{p.stem}`" not in text)
    assert not missing, f"undocumented bundled scenarios: {missing}"
