"""The main job offers Decide a stated load: a rate in calls/s becomes the replay's speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.report._sections import _offered_load
from loadtest.run import _speed_for


def test_a_rate_becomes_the_speed_that_offers_it_on_average() -> None:
    # 6,000 calls over 3 simulated hours at 100 calls/s last 60 wall seconds: 180 simulated s a second
    assert _speed_for(100.0, 6_000, 3 * 3_600) == pytest.approx(180.0)


@pytest.mark.parametrize(
    ("rate", "calls", "window_s"), [(0.0, 6_000, 10_800), (100.0, 0, 10_800), (100.0, 10, 0)]
)
def test_rate_zero_or_an_empty_window_is_flat_out(rate: float, calls: int, window_s: float) -> None:
    assert _speed_for(rate, calls, window_s) == 0.0


def test_the_report_says_how_hard_decide_was_driven(tmp_path: Path) -> None:
    record = {"decide": "127.0.0.1:1", "offered_calls_per_s": 100.0, "concurrency": 4}
    (tmp_path / "replay.json").write_text(json.dumps(record))
    assert "offered 100 calls/s" in " ".join(_offered_load(tmp_path))
    (tmp_path / "replay.json").write_text(json.dumps({**record, "offered_calls_per_s": 0.0}))
    assert "flat out" in " ".join(_offered_load(tmp_path))
    (tmp_path / "replay.json").write_text(json.dumps({**record, "decide": ""}))
    assert _offered_load(tmp_path) == []
    (tmp_path / "replay.json").unlink()
    assert _offered_load(tmp_path) == []
