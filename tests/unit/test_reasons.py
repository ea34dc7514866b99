"""The closed vocabularies a Decision carries: reason codes and degraded causes."""

from __future__ import annotations

import re

from services.common.features import FEATURES
from services.common.reasons import REASONS, RETIRED, Reason
from services.decision.degraded import DEGRADED_TEXT, Degraded


def test_every_reason_code_has_its_text_and_is_its_own_wire_string() -> None:
    assert list(REASONS) == list(Reason)
    for code in Reason:
        assert code.value == code.name
        assert re.fullmatch(r"[A-Z][A-Z0-9_]+", code.value)
        assert REASONS[code].strip()


def test_retired_codes_are_said_to_be_retired_and_no_feature_pushes_them() -> None:
    assert all(REASONS[code].startswith("RETIRED") for code in RETIRED)
    assert not RETIRED & {feature.reason for feature in FEATURES}


def test_every_degraded_cause_has_its_text() -> None:
    assert set(DEGRADED_TEXT) == set(Degraded)
    assert all(cause.value == cause.name for cause in Degraded)
    assert not {cause.value for cause in Degraded} & {code.value for code in Reason}
