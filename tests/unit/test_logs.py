"""Logs are JSON lines and never carry anything that looks like a phone number."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.logs import REDACTED, JsonFormatter, scrub


@pytest.mark.parametrize(
    "text",
    [
        "+8613800138000",
        "13800138000",
        "010-6552-9988",
        "(212) 555-0123",
        "+1 650 253 0000",
        "0086 138 0013 8000",
    ],
)
def test_phone_numbers_are_scrubbed(text: str) -> None:
    assert scrub(f"caller {text} blocked") == f"caller {REDACTED} blocked"


def test_short_numbers_and_words_survive() -> None:
    assert scrub("partition 3 offset 12 of 110 retries") == "partition 3 offset 12 of 110 retries"


@given(st.from_regex(r"\+?[1-9][0-9]{6,14}", fullmatch=True))
def test_no_digit_run_survives(number: str) -> None:
    assert number.lstrip("+") not in scrub(f"x {number} y")


def test_json_formatter_scrubs_message_args_and_extras() -> None:
    record = logging.makeLogRecord(
        {
            "name": "t",
            "levelname": "INFO",
            "msg": "call from %s",
            "args": ("+8613800138000",),
            "callee": "13900139000",
            "offset": 12345678,
        }
    )
    line = JsonFormatter("test").format(record)
    entry = json.loads(line)
    assert entry["msg"] == f"call from {REDACTED}"
    assert entry["callee"] == REDACTED
    assert entry["offset"] == 12345678
    assert "13800138000" not in line
    assert "13900139000" not in line
