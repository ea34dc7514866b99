"""Scenario files load strictly: defaults fill gaps, typos and bad values are named errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.scenario import SCENARIO_DIR, ScenarioError, from_dict, load


@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
def test_bundled_scenarios_load(name: str) -> None:
    scenario = load(name)
    assert scenario.name == name
    assert scenario.duration_ms > 0


def test_defaults_fill_what_a_file_leaves_out() -> None:
    scenario = from_dict({"subscribers": {"count": 100}})
    assert scenario.subscribers.count == 100
    assert scenario.subscribers.calls_per_day == 3.0
    assert scenario.robocalls.campaigns == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"subscriber": {}}, "unknown key"),
        ({"subscribers": {"cuont": 5}}, r"scenario\.subscribers: unknown key"),
        ({"subscribers": {"count": "many"}}, r"scenario\.subscribers\.count: expected int"),
        ({"robocalls": {"answer_rate": 1.5}}, r"answer_rate must be within \[0, 1\]"),
        ({"robocalls": {"pool_size": 5, "active_numbers": 10}}, "must not exceed"),
        ({"start": "2026-11-02T00:00:00"}, "needs a UTC offset"),
        ({"duration_hours": -1}, "duration_hours must be positive"),
        (
            {"capture": {"audio": True, "max_audio_segments": 0}},
            r"capture\.max_audio_segments must be at least 1",
        ),
        ({"capture": {"audio": "yes"}}, r"scenario\.capture\.audio: expected bool"),
        ({"robocalls": {"honeypot_share": 2.0}}, r"honeypot_share must be within \[0, 1\]"),
        ({"network": {"gateways": [{"name": "home", "ocn": "X001"}]}}, "carrier names must be unique"),
        ({"network": {"mvno_share": 1.5}}, r"mvno_share must be within \[0, 1\]"),
        ({"network": {"mvno_share": 0.1, "virtual_ranges": []}}, "virtual_ranges must not be empty"),
        ({"enterprise": {"unsigned_share": 0.7, "c_share": 0.5}}, "must not exceed 1"),
        ({"complaints": {"malicious_rate": -0.1}}, "must not be negative"),
        ({"adaptive": {"spread_numbers": 0}}, "spread_numbers must be at least 1"),
        ({"adaptive": {"max_calls_per_number_hour": 2.5}}, "expected int"),
        ({"subscribers": {"new_number_share": 0.5}, "duration_hours": 72}, "new_number_share times the days"),
        (
            {"presence": {"enabled": True, "reregistration_hours": 0}},
            r"presence\.reregistration_hours and presence\.roaming_days must be positive",
        ),
        ({"presence": {"gateway_share": 1.5}}, r"gateway_share must be within \[0, 1\]"),
        ({"impersonators": {"onnet_share": -0.5}}, "onnet_share must not be negative"),
        (
            {
                "legit": {
                    "couriers": {"count": -1, "calls_per_day": 1, "answer_rate": 0.5, "mean_duration_s": 1}
                }
            },
            "must not be negative",
        ),
    ],
)
def test_bad_scenarios_are_named_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        from_dict(data)


def test_unreadable_files_are_scenario_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("subscribers: [unclosed")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load(bad)


def test_the_holdout_scenario_is_another_operators_day() -> None:
    holdout = load("holdout")
    others = [load(p.stem) for p in SCENARIO_DIR.glob("*.yaml") if p.stem != "holdout"]
    assert all(holdout.seed != other.seed for other in others)
    default = load("default")
    assert holdout.network.mvno_share > default.network.mvno_share
    assert holdout.adaptive.campaigns > default.adaptive.campaigns
    assert holdout.start != default.start
