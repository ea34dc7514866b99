"""The replay report on small hand-built datasets: every headline number is checked by hand."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudmesh.v1 import common_pb2, dataset_pb2, verdicts_pb2
from loadtest.report import ReportSummary, build_report, group_calls, main
from training.dataset import CALLS, NUMBERS, OUTCOMES, Manifest, RecordWriter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
START_MS = 1_750_000_000_000
HOUR_MS = 3_600_000
K = dataset_pb2.ActorKind
A = common_pb2.Action


@dataclass(frozen=True)
class Call:
    call_id: str
    kind: dataset_pb2.ActorKind.ValueType
    unwanted: bool = False
    number: str = "+8613800000000"
    at_s: float = 0.0
    campaign: str = ""
    roaming: bool = False
    on_net: bool = False


@dataclass(frozen=True)
class Outcome:
    call_id: str
    action: common_pb2.Action.ValueType | None = None
    error: str = ""
    latency_us: int = 1_000
    reasons: tuple[str, ...] = ()
    degraded: tuple[str, ...] = ()
    label: str = ""


def write_dataset(
    folder: Path,
    calls: Sequence[Call],
    outcomes: Sequence[Outcome] | None,
    numbers: Sequence[dataset_pb2.NumberTruth] = (),
    lead_in_hours: float = 0.0,
) -> Path:
    """A dataset whose scored window starts at START_MS (after ``lead_in_hours`` of lead-in)."""
    folder.mkdir(parents=True, exist_ok=True)
    if numbers:
        with RecordWriter(folder / NUMBERS) as writer:
            for number in numbers:
                writer.write(dataset_pb2.DatasetRecord(time_ms=number.first_used_ms, number_truth=number))
    with RecordWriter(folder / CALLS) as writer:
        for call in calls:
            at_ms = START_MS + int(call.at_s * 1000)
            writer.write(
                dataset_pb2.DatasetRecord(
                    time_ms=at_ms,
                    call_truth=dataset_pb2.CallTruth(
                        call_id=call.call_id,
                        tenant="demo-cn",
                        actor_kind=call.kind,
                        actor_id=call.campaign or f"actor-{call.number}",
                        campaign_id=call.campaign,
                        unwanted=call.unwanted,
                        presented_number=call.number,
                        called_number="+8613900000000",
                        setup_time_ms=at_ms,
                        roaming=call.roaming,
                        presented_on_net=call.on_net,
                    ),
                )
            )
    if outcomes is not None:
        with RecordWriter(folder / OUTCOMES) as writer:
            for outcome in outcomes:
                record = dataset_pb2.ReplayOutcome(
                    call_id=outcome.call_id, client_latency_us=outcome.latency_us, error=outcome.error
                )
                if outcome.action is not None:
                    record.decision.CopyFrom(
                        verdicts_pb2.Decision(
                            call_id=outcome.call_id,
                            action=outcome.action,
                            reason_codes=outcome.reasons,
                            degraded=bool(outcome.degraded),
                            degraded_reasons=outcome.degraded,
                            latency_us=outcome.latency_us // 2,
                            label=outcome.label,
                        )
                    )
                writer.write(dataset_pb2.DatasetRecord(time_ms=START_MS, outcome=record))
    Manifest(
        scenario="unit",
        seed=7,
        start_ms=START_MS - round(lead_in_hours * HOUR_MS),
        duration_s=3600.0 * (1 + lead_in_hours),
        generator={"lead_in_hours": lead_in_hours} if lead_in_hours else {},
    ).write(folder)
    return folder


def report(
    tmp_path: Path,
    calls: Sequence[Call],
    outcomes: Sequence[Outcome] | None,
    *,
    plots: bool = False,
    lead_in_hours: float = 0.0,
) -> tuple[ReportSummary, str]:
    dataset = write_dataset(tmp_path / "dataset", calls, outcomes, lead_in_hours=lead_in_hours)
    summary = build_report(dataset, tmp_path / "out", plots=plots)
    return summary, (tmp_path / "out" / "report.md").read_text()


def section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def row(markdown: str, first_cell: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starting with {first_cell!r}")


MIXED_CALLS = [
    Call("r1", K.ACTOR_KIND_ROBOCALL, True, "+8617000000001", 0),
    Call("r2", K.ACTOR_KIND_ROBOCALL, True, "+8617000000002", 1),
    Call("r3", K.ACTOR_KIND_ROBOCALL, True, "+8617000000003", 2),
    Call("r4", K.ACTOR_KIND_ROBOCALL, True, "+8617000000004", 3),
    Call("c1", K.ACTOR_KIND_COURIER, False, "+8613800000001", 4),
    Call("c2", K.ACTOR_KIND_COURIER, False, "+8613800000001", 5),
    Call("c3", K.ACTOR_KIND_COURIER, False, "+8613800000001", 6),
    Call("c4", K.ACTOR_KIND_COURIER, False, "+8613800000001", 7),
    Call("s1", K.ACTOR_KIND_SUBSCRIBER, False, "+8613800000002", 8),
    Call("s2", K.ACTOR_KIND_SUBSCRIBER, False, "+8613800000003", 9),
]
MIXED_OUTCOMES = [
    Outcome("r1", A.ACTION_BLOCK, reasons=("VELOCITY_1M_HIGH",)),
    Outcome("r2", A.ACTION_LABEL, reasons=("VELOCITY_1M_HIGH",)),
    Outcome("r3", A.ACTION_ALLOW),
    Outcome("r4", A.ACTION_ALLOW),
    Outcome("c1", A.ACTION_LABEL, reasons=("MANY_CALLEES",)),
    Outcome("c2", A.ACTION_BLOCK, reasons=("MANY_CALLEES",), degraded=("REDIS_TIMEOUT",)),
    Outcome("c3", A.ACTION_ALLOW),
    Outcome("c4", A.ACTION_ALLOW),
    Outcome("s1", A.ACTION_ALLOW),
    Outcome("s2", A.ACTION_CHALLENGE, reasons=("SHAKEN_SIGNATURE_INVALID",)),
]


def test_precision_recall_and_false_positives_match_hand_counts(tmp_path: Path) -> None:
    summary, markdown = report(tmp_path, MIXED_CALLS, MIXED_OUTCOMES)
    assert (summary.calls, summary.decided, summary.flagged) == (10, 10, 5)
    assert summary.precision == pytest.approx(2 / 5)
    assert summary.recall == pytest.approx(2 / 4)
    assert summary.block_precision == pytest.approx(1 / 2)
    assert summary.block_recall == pytest.approx(1 / 4)
    assert summary.legit_fp_rate == pytest.approx(3 / 6)
    assert summary.legit_block_rate == pytest.approx(1 / 6)
    assert summary.degraded_share == pytest.approx(1 / 10)
    quality = section(markdown, "Detection quality")
    assert row(quality, "ROBOCALL")[:4] == ["ROBOCALL", "4", "50.00%", "25.00%"]
    assert row(quality, "COURIER")[4:7] == ["4", "50.00%", "25.00%"]
    assert row(markdown, "REDIS_TIMEOUT")[1] == "1"
    assert row(markdown, "MANY_CALLEES")[1:] == ["2", "20.00%", "2"]


def test_latency_percentiles_come_from_successful_decisions(tmp_path: Path) -> None:
    calls = [Call(f"s{i}", K.ACTOR_KIND_SUBSCRIBER, number=f"+861380000000{i}") for i in range(6)]
    outcomes = [Outcome(f"s{i}", A.ACTION_ALLOW, latency_us=1_000 * (i + 1)) for i in range(5)]
    outcomes.append(Outcome("s5", error="DEADLINE_EXCEEDED", latency_us=50_000))
    summary, markdown = report(tmp_path, calls, outcomes)
    assert summary.latency_count == 5
    assert summary.latency_p50_ms == pytest.approx(3.0)
    assert summary.latency_max_ms == pytest.approx(5.0)
    assert summary.errors == 1
    assert summary.decided == 5
    assert row(markdown, "DEADLINE_EXCEEDED")[1] == "1"


def test_number_detected_at_third_call_and_a_never_detected_number(tmp_path: Path) -> None:
    hot, cold = "+8617000000001", "+8617000000002"
    calls = [
        Call("legit", K.ACTOR_KIND_SUBSCRIBER, False, hot, -100),
        Call("h1", K.ACTOR_KIND_ROBOCALL, True, hot, 0),
        Call("h2", K.ACTOR_KIND_ROBOCALL, True, hot, 60),
        Call("h3", K.ACTOR_KIND_ROBOCALL, True, hot, 150),
        Call("h4", K.ACTOR_KIND_ROBOCALL, True, hot, 200),
        Call("n1", K.ACTOR_KIND_ROBOCALL, True, cold, 10),
        Call("n2", K.ACTOR_KIND_ROBOCALL, True, cold, 20),
    ]
    outcomes = [
        Outcome("legit", A.ACTION_LABEL),
        Outcome("h1", A.ACTION_ALLOW),
        Outcome("h2", A.ACTION_ALLOW),
        Outcome("h3", A.ACTION_LABEL),
        Outcome("h4", A.ACTION_BLOCK),
        Outcome("n1", A.ACTION_ALLOW),
        Outcome("n2", A.ACTION_ALLOW),
    ]
    summary, markdown = report(tmp_path, calls, outcomes)
    assert summary.unwanted_numbers == 2
    assert summary.never_detected_numbers == 1
    assert summary.never_detected_share == pytest.approx(0.5)
    assert summary.calls_to_detect_p50 == 3
    assert summary.calls_to_detect_p90 == 3
    assert summary.seconds_to_detect_p50 == pytest.approx(150.0)
    detect = row(section(markdown, "Time to detect"), "ROBOCALL")
    assert detect[1:6] == ["2", "1", "1 (50.00%)", "3 / 3", "150.0 s / 150.0 s"]


def test_campaign_with_four_rotated_numbers(tmp_path: Path) -> None:
    calls = [
        Call(f"k{i}", K.ACTOR_KIND_ROBOCALL, True, f"+861700000000{i % 4}", 30 * i, "camp-rotating")
        for i in range(8)
    ]
    outcomes = [Outcome(f"k{i}", A.ACTION_BLOCK if i >= 4 else A.ACTION_ALLOW) for i in range(8)]
    summary, markdown = report(tmp_path, calls, outcomes)
    assert summary.campaigns == 1
    campaign = row(markdown, "camp-rotating")
    assert campaign[1:7] == ["ROBOCALL", "8", "4", "2", "0.03", "0.06"]
    assert campaign[7:11] == ["50.00%", "5", "120.0 s", "0 of 4"]
    assert summary.unwanted_numbers == 4
    assert summary.calls_to_detect_p50 == 2
    assert summary.seconds_to_detect_p50 == pytest.approx(120.0)


def test_calls_without_outcomes_are_not_missed_detections(tmp_path: Path) -> None:
    early, late = "+8617000000001", "+8617000000002"
    calls = [
        Call("a1", K.ACTOR_KIND_ROBOCALL, True, early, 0),
        Call("a2", K.ACTOR_KIND_ROBOCALL, True, early, 60),
        Call("a3", K.ACTOR_KIND_ROBOCALL, True, early, 7_200),
        Call("b1", K.ACTOR_KIND_ROBOCALL, True, late, 7_300),
    ]
    outcomes = [Outcome("a1", A.ACTION_ALLOW), Outcome("a2", A.ACTION_LABEL)]
    summary, markdown = report(tmp_path, calls, outcomes)
    assert (summary.unwanted_numbers, summary.never_detected_numbers) == (1, 0)
    assert summary.calls_to_detect_p50 == 2
    assert summary.not_decided == 2
    assert (
        "Outcomes cover calls set up from 0.00 h to 0.02 h of the dataset's 2.03 simulated hours" in markdown
    )


def test_blocked_emergency_call_fails_loudly(tmp_path: Path) -> None:
    calls = [
        Call("e1", K.ACTOR_KIND_EMERGENCY, number="+8613800000001"),
        Call("e2", K.ACTOR_KIND_EMERGENCY, number="+8613800000002"),
        Call("e3", K.ACTOR_KIND_EMERGENCY, number="+8613800000003"),
    ]
    outcomes = [
        Outcome("e1", A.ACTION_BLOCK, reasons=("VELOCITY_1M_HIGH",)),
        Outcome("e2", A.ACTION_ALLOW),
        Outcome("e3", error="UNAVAILABLE"),
    ]
    dataset = write_dataset(tmp_path / "dataset", calls, outcomes)
    out = tmp_path / "out"
    assert main(["--dataset", str(dataset), "--out", str(out), "--no-plots"]) == 1
    markdown = (out / "report.md").read_text()
    summary = ReportSummary.from_json((out / "summary.json").read_text())
    assert (summary.emergency_calls, summary.emergency_non_allow) == (3, 1)
    assert "**FAILURE" in markdown.split("## Headline")[0]
    assert "- **FAILURE**: emergency call `e1` got BLOCK (reasons: VELOCITY_1M_HIGH)" in markdown
    assert "WARNING: 1 emergency calls have no decision" in markdown


def test_allowed_emergency_calls_pass(tmp_path: Path) -> None:
    dataset = write_dataset(
        tmp_path / "dataset", [Call("e1", K.ACTOR_KIND_EMERGENCY)], [Outcome("e1", A.ACTION_ALLOW)]
    )
    assert main(["--dataset", str(dataset), "--out", str(tmp_path / "out"), "--no-plots"]) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "FAILURE" not in markdown
    assert "_No action mix plot: plots were disabled._" in markdown
    assert "Every decided emergency call was allowed." in markdown


def test_calls_without_outcomes_are_reported_as_not_decided(tmp_path: Path) -> None:
    calls = [Call(f"s{i}", K.ACTOR_KIND_SUBSCRIBER, number=f"+861380000000{i}") for i in range(3)]
    summary, markdown = report(tmp_path, calls, [Outcome("s0", A.ACTION_ALLOW)])
    assert (summary.calls, summary.decided, summary.not_decided, summary.errors) == (3, 1, 2, 0)
    actions = section(markdown, "Actions per actor kind")
    header = row(actions, "actor kind")
    subscriber = dict(zip(header, row(actions, "SUBSCRIBER"), strict=True))
    assert subscriber["ALLOW"] == "33.33%"
    assert subscriber["not decided"] == "66.67%"


def test_errored_outcome_counts_as_error_not_decision(tmp_path: Path) -> None:
    calls = [Call("r1", K.ACTOR_KIND_ROBOCALL, True, "+8617000000001"), Call("s1", K.ACTOR_KIND_SUBSCRIBER)]
    outcomes = [Outcome("r1", error="DEADLINE_EXCEEDED", latency_us=20_000), Outcome("s1", A.ACTION_ALLOW)]
    summary, markdown = report(tmp_path, calls, outcomes)
    assert (summary.errors, summary.decided, summary.latency_count) == (1, 1, 1)
    assert summary.recall is None
    assert row(markdown, "DEADLINE_EXCEEDED")[1:] == ["1", "50.00%"]
    actions = section(markdown, "Actions per actor kind")
    robocall = dict(zip(row(actions, "actor kind"), row(actions, "ROBOCALL"), strict=True))
    assert robocall["error"] == "100.00%"


def test_without_outcomes_the_report_describes_traffic_only(tmp_path: Path) -> None:
    calls = [
        *(
            Call(f"k{i}", K.ACTOR_KIND_ROBOCALL, True, f"+861700000000{i % 4}", 60 * i, "camp-1")
            for i in range(8)
        ),
        Call("s1", K.ACTOR_KIND_SUBSCRIBER, at_s=30),
        Call("e1", K.ACTOR_KIND_EMERGENCY, at_s=40),
    ]
    numbers = [
        dataset_pb2.NumberTruth(
            number=f"+861700000000{i}",
            actor_kind=K.ACTOR_KIND_ROBOCALL,
            campaign_id="camp-1",
            unwanted=True,
            first_used_ms=START_MS + 60_000 * i,
            last_used_ms=START_MS + 60_000 * (i + 4),
            calls=2,
        )
        for i in range(4)
    ]
    dataset = write_dataset(tmp_path / "dataset", calls, None, numbers)
    out = tmp_path / "out"
    assert main(["--dataset", str(dataset), "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    summary = ReportSummary.from_json((out / "summary.json").read_text())
    assert not summary.has_outcomes
    assert (summary.calls, summary.decided, summary.not_decided) == (10, 0, 10)
    assert summary.precision is None
    assert summary.latency_p50_ms is None
    assert "**No decisions were recorded**" in markdown
    assert "there is no outcomes.fmds" in markdown
    assert row(markdown, "ROBOCALL")[1:3] == ["unwanted", "8"]
    assert row(markdown, "camp-1")[1:5] == ["ROBOCALL", "8", "4", "2"]
    assert "## Actions per actor kind" not in markdown
    assert "action_mix.png (no decisions were recorded)" in markdown
    numbers_section = section(markdown, "Presented numbers (numbers.fmds)")
    assert row(numbers_section, "ROBOCALL")[1:6] == ["4", "4", "2", "2", "0.07"]
    assert "calls.fmds presents 5 distinct ones" in numbers_section
    assert summary.plots == ("traffic.png",)
    assert not (out / "action_mix.png").exists()
    assert (out / "traffic.png").read_bytes().startswith(PNG_MAGIC)


def test_empty_outcomes_file_means_no_decisions(tmp_path: Path) -> None:
    summary, markdown = report(tmp_path, [Call("s1", K.ACTOR_KIND_SUBSCRIBER)], [])
    assert not summary.has_outcomes
    assert "**No decisions were recorded**: outcomes.fmds holds no outcome records" in markdown


def test_plots_are_valid_pngs_and_linked(tmp_path: Path) -> None:
    summary, markdown = report(tmp_path, MIXED_CALLS, MIXED_OUTCOMES, plots=True)
    expected = {"traffic.png", "action_mix.png", "latency.png", "time_to_detect.png", "flagged_over_time.png"}
    assert set(summary.plots) == expected
    for name in expected:
        assert (tmp_path / "out" / name).read_bytes().startswith(PNG_MAGIC)
        assert f"]({name})" in markdown


def test_latency_plot_is_skipped_when_every_call_failed(tmp_path: Path) -> None:
    summary, markdown = report(
        tmp_path, [Call("s1", K.ACTOR_KIND_SUBSCRIBER)], [Outcome("s1", error="UNAVAILABLE")], plots=True
    )
    assert "latency.png" not in summary.plots
    assert "_No latency plot: no successful Decide calls were recorded._" in markdown


def test_summary_json_round_trips(tmp_path: Path) -> None:
    summary, _ = report(tmp_path, MIXED_CALLS, MIXED_OUTCOMES)
    text = (tmp_path / "out" / "summary.json").read_text()
    assert ReportSummary.from_json(text) == summary
    assert json.loads(text)["precision"] == pytest.approx(0.4)


def test_unknown_and_duplicate_outcomes_are_noted(tmp_path: Path) -> None:
    outcomes = [
        Outcome("s1", error="UNAVAILABLE"),
        Outcome("s1", A.ACTION_ALLOW),
        Outcome("ghost", A.ACTION_BLOCK),
    ]
    summary, markdown = report(tmp_path, [Call("s1", K.ACTOR_KIND_SUBSCRIBER)], outcomes)
    assert (summary.decided, summary.errors, summary.flagged) == (1, 0, 0)
    assert "1 calls have more than one outcome; the last one counts." in markdown
    assert "1 outcomes name a call_id that is not in calls.fmds; ignored." in markdown


COURIER, SUBSCRIBER = "+8613800000001", "+8613800000009"
OLD_ROBO, NEW_ROBO = "+8617000000001", "+8617000000002"
LEAD_IN_CALLS = [
    Call("li-c", K.ACTOR_KIND_COURIER, False, COURIER, -1800),
    Call("li-r", K.ACTOR_KIND_ROBOCALL, True, OLD_ROBO, -900),
]
SCORED_CALLS = [
    Call("c1", K.ACTOR_KIND_COURIER, False, COURIER, 10),
    Call("c2", K.ACTOR_KIND_COURIER, False, COURIER, 20),
    Call("r1", K.ACTOR_KIND_ROBOCALL, True, OLD_ROBO, 30),
    Call("s1", K.ACTOR_KIND_SUBSCRIBER, False, SUBSCRIBER, 40),
    Call("s2", K.ACTOR_KIND_SUBSCRIBER, False, SUBSCRIBER, 50),
    Call("r2", K.ACTOR_KIND_ROBOCALL, True, NEW_ROBO, 60),
    Call("r3", K.ACTOR_KIND_ROBOCALL, True, NEW_ROBO, 70),
]
SCORED_OUTCOMES = [
    Outcome("c1", A.ACTION_ALLOW),
    Outcome("c2", A.ACTION_ALLOW, degraded=("REDIS_UNAVAILABLE",)),
    Outcome("r1", A.ACTION_BLOCK),
    Outcome("s1", A.ACTION_LABEL),
    Outcome("s2", A.ACTION_ALLOW, degraded=("ORIGINATION_DEGRADED",)),
    Outcome("r2", A.ACTION_ALLOW),
    Outcome("r3", A.ACTION_LABEL),
]


def test_a_lead_in_is_not_scored_and_the_headline_is_the_warm_state(tmp_path: Path) -> None:
    summary, markdown = report(tmp_path, LEAD_IN_CALLS + SCORED_CALLS, SCORED_OUTCOMES, lead_in_hours=1.0)
    assert (summary.calls, summary.decided, summary.not_decided) == (7, 7, 0)
    assert (summary.lead_in_hours, summary.lead_in_calls, summary.lead_in_callers) == (1.0, 2, 2)
    assert summary.headline_state == "warm"
    warm, cold, first, every = (summary.states[n] for n in ("warm", "cold", "cold_first_call", "all"))
    assert (warm.calls, warm.callers, cold.calls, cold.callers, first.calls, every.calls) == (
        3,
        2,
        4,
        2,
        2,
        7,
    )
    assert (warm.precision, warm.recall, warm.legit_fp_rate) == (1.0, 1.0, 0.0)
    assert (cold.precision, cold.recall, cold.legit_fp_rate) == (0.5, 0.5, 0.5)
    assert (first.precision, first.recall, first.legit_fp_rate) == (0.0, 0.0, 1.0)
    assert every.precision == pytest.approx(2 / 3)
    assert every.legit_fp_rate == pytest.approx(1 / 4)
    assert (summary.precision, summary.recall, summary.legit_fp_rate) == (1.0, 1.0, 0.0)
    assert (summary.block_precision, summary.legit_block_rate) == (1.0, 0.0)
    assert summary.flagged == every.flagged == 3
    assert "3.0 simulated hours" not in markdown
    assert "after a 1 h lead-in" in markdown.split("## Headline")[0]
    headline = section(markdown, "Headline")
    assert row(headline, "precision (flagged = LABEL, CHALLENGE or BLOCK) — warm state")[1] == "100.00%"
    assert row(headline, "lead-in (folded, not scored)")[1] == "1 h: 2 calls from 2 callers"
    assert row(headline, "scored calls warm / cold")[1].startswith("3 / 4")
    figures = ": precision / recall / legitimate flagged / legitimate blocked"
    assert row(headline, "cold start" + figures)[1] == "50.00% / 50.00% / 50.00% / 0.00%"
    assert row(headline, "warm state, reputation read" + figures)[1] == "100.00% / 100.00% / 0.00% / 0.00%"
    quality = section(markdown, "Detection quality")
    overall = ["3", "2", "66.67%", "66.67%", "25.00%"]
    assert row(quality, "flagged (LABEL, CHALLENGE or BLOCK)")[1:6] == overall
    states = section(markdown, "Cold start and warm state")
    warm_row = ["2", "3", "33.33%", "33.33%", "100.00%", "100.00%"]
    assert row(states, "warm (caller has lead-in history)")[1:7] == warm_row
    assert row(states, "cold (caller has none)")[1:7] == ["2", "4", "50.00%", "0.00%", "50.00%", "50.00%"]
    assert (warm.without_reputation, cold.without_reputation) == (1, 0)
    assert row(states, "cold, the caller's first call")[1:3] == ["2", "2"]
    robocall = ["1", "1", "100.00%", "100.00%", "100.00%", "2", "50.00%", "0.00%", "50.00%"]
    assert row(states, "ROBOCALL")[1:] == robocall
    assert row(states, "COURIER")[1:6] == ["1", "2", "0.00%", "0.00%", "0.00%"]
    assert row(states, "warm, reputation read")[1:4] == ["2", "2", "50.00%"]
    assert (summary.states["warm_read"].calls, summary.states["cold_read"].calls) == (2, 4)
    assert row(section(markdown, "Traffic by actor kind"), "ROBOCALL")[2] == "3"
    assert ReportSummary.from_json((tmp_path / "out" / "summary.json").read_text()) == summary


def test_outcomes_of_lead_in_calls_are_ignored_and_noted(tmp_path: Path) -> None:
    outcomes = [Outcome("li-c", A.ACTION_BLOCK), *SCORED_OUTCOMES]
    summary, markdown = report(tmp_path, LEAD_IN_CALLS + SCORED_CALLS, outcomes, lead_in_hours=1.0)
    assert (summary.outcomes, summary.decided, summary.states["warm"].legit_block_rate) == (8, 7, 0.0)
    assert "1 outcomes are for lead-in calls, which are never scored; ignored." in markdown
    assert "name a call_id that is not in calls.fmds" not in markdown


def test_without_a_lead_in_every_caller_is_cold_and_the_headline_covers_all_calls(tmp_path: Path) -> None:
    summary, markdown = report(tmp_path, MIXED_CALLS, MIXED_OUTCOMES)
    assert summary.headline_state == "all"
    assert set(summary.states) == {"all"}
    assert summary.precision == summary.states["all"].precision
    assert "This dataset has no lead-in" in section(markdown, "Cold start and warm state")
    assert "warm state" not in section(markdown, "Headline")


def test_missing_dataset_exits_2(tmp_path: Path) -> None:
    assert main(["--dataset", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2


def naive_groups(
    keys: list[int], times: list[int], flags: list[bool]
) -> dict[int, tuple[int, int, float | None]]:
    result: dict[int, tuple[int, int, float | None]] = {}
    for key in sorted(set(keys)):
        members = sorted((times[i], i) for i, k in enumerate(keys) if k == key)
        rank = next((r for r, (_, i) in enumerate(members, 1) if flags[i]), 0)
        seconds = (members[rank - 1][0] - members[0][0]) / 1000 if rank else None
        result[key] = (len(members), rank, seconds)
    return result


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10_000), st.booleans()), min_size=0, max_size=60))
def test_group_calls_matches_a_naive_reference(calls: list[tuple[int, int, bool]]) -> None:
    keys = [k for k, _, _ in calls]
    times = [t for _, t, _ in calls]
    flags = [f for _, _, f in calls]
    groups = group_calls(
        np.array(keys, dtype=np.int64), np.array(times, dtype=np.int64), np.array(flags, dtype=np.bool_)
    )
    got = {
        int(k): (int(n), int(r), None if np.isnan(s) else float(s))
        for k, n, r, s in zip(groups.key, groups.size, groups.detect_calls, groups.detect_s, strict=True)
    }
    assert got == naive_groups(keys, times, flags)


def test_presence_proofs_by_actor_kind_roamers_and_impersonators(tmp_path: Path) -> None:
    home, busy, contact = "ONNET_NUMBER_NOT_ROAMING", "CALLER_BUSY_ELSEWHERE", "IMPERSONATES_CONTACT"
    calls = [
        Call("o1", K.ACTOR_KIND_ONNET_SPOOFER, True, "+8613800000001", 0, on_net=True),
        Call("o2", K.ACTOR_KIND_ONNET_SPOOFER, True, "+8613800000002", 1, on_net=True),
        Call("i1", K.ACTOR_KIND_AI_IMPERSONATOR, True, "+8613800000003", 2, on_net=True),
        Call("i2", K.ACTOR_KIND_AI_IMPERSONATOR, True, "+8613000000004", 3),
        Call("d1", K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER, True, "+8613800000005", 4, on_net=True),
        Call("r1", K.ACTOR_KIND_SUBSCRIBER, False, "+8613800000006", 5, roaming=True, on_net=True),
        Call("r2", K.ACTOR_KIND_SUBSCRIBER, False, "+8613800000006", 6, roaming=True, on_net=True),
        Call("r3", K.ACTOR_KIND_SUBSCRIBER, False, "+8613100000007", 7, roaming=True),
        Call("s1", K.ACTOR_KIND_SUBSCRIBER, False, "+8613800000008", 8, on_net=True),
    ]
    outcomes = [
        Outcome("o1", A.ACTION_BLOCK, reasons=("ONNET_CLI_OFFNET_INGRESS", home)),
        Outcome("o2", A.ACTION_LABEL, reasons=("ONNET_CLI_OFFNET_INGRESS",)),
        Outcome("i1", A.ACTION_BLOCK, reasons=(home, contact)),
        Outcome("i2", A.ACTION_LABEL, reasons=("NO_ROAMING_INDICATION",)),
        Outcome("d1", A.ACTION_BLOCK, reasons=(busy,)),
        Outcome("r1", A.ACTION_ALLOW, reasons=("INTL_INGRESS_DOMESTIC_CLI",)),
        Outcome("r2", A.ACTION_LABEL),
        Outcome("r3", A.ACTION_ALLOW, label="国际来电"),
        Outcome("s1", A.ACTION_CHALLENGE, reasons=(home,)),
    ]
    _summary, markdown = report(tmp_path, calls, outcomes)
    proofs = section(markdown, "Presence proofs")
    assert row(proofs, "ONNET_SPOOFER")[1:7] == ["unwanted", "2", "1 (50.00%)", "0", "0", "1 of 1"]
    assert row(proofs, "AI_IMPERSONATOR")[2:7] == ["2", "1 (50.00%)", "0", "1 (50.00%)", "1 of 1"]
    assert row(proofs, "INTL_DOMESTIC_SPOOFER")[3:7] == ["0", "1 (100.00%)", "0", "1 of 1"]
    assert row(proofs, "SUBSCRIBER")[1:7] == ["legitimate", "4", "1 (25.00%)", "0", "0", "0 of 1"]
    assert row(proofs, "**all**")[2:7] == ["9", "3 (33.33%)", "1 (11.11%)", "1 (11.11%)", "3 of 4"]
    assert "**1 legitimate calls carried a proof code**" in proofs
    zero = "0.00%"
    assert row(proofs, "legitimate roamers, on-net number")[1:] == [
        "2",
        "2",
        "50.00%",
        zero,
        zero,
        zero,
        zero,
    ]
    off_net_roamer = ["1", "1", zero, zero, zero, zero, "100.00%"]  # allowed, shown as an international call
    assert row(proofs, "legitimate roamers, off-net number")[1:] == off_net_roamer
    assert row(proofs, "AI impersonators, on-net number")[1:] == ["1", "1", *["100.00%"] * 3, zero, zero]
    assert row(proofs, "AI impersonators, off-net number")[1:] == [
        "1",
        "1",
        "100.00%",
        zero,
        zero,
        "100.00%",
        zero,
    ]
    assert row(proofs, "intl-domestic spoofers, on-net number")[1:] == [
        "1",
        "1",
        *["100.00%"] * 3,
        zero,
        zero,
    ]
    assert row(proofs, "intl-domestic spoofers, off-net number")[1:] == ["0", "0", *["—"] * 5]


def test_without_decisions_there_is_no_presence_section(tmp_path: Path) -> None:
    _summary, markdown = report(tmp_path, MIXED_CALLS, None)
    assert "## Presence proofs" not in markdown


def test_campaigns_after_their_first_audio_link(tmp_path: Path) -> None:
    calls = [
        Call("a1", K.ACTOR_KIND_ROBOCALL, True, "+8617000000001", 0, campaign="c"),
        Call("a2", K.ACTOR_KIND_ROBOCALL, True, "+8617000000001", 100, campaign="c"),  # after the link
        Call("a3", K.ACTOR_KIND_ROBOCALL, True, "+8617000000002", 200, campaign="c"),  # a new number
        Call("a4", K.ACTOR_KIND_ROBOCALL, True, "+8617000000003", 300, campaign="c"),  # a new number
        Call("b1", K.ACTOR_KIND_ROBOCALL, True, "+8617000000009", 400, campaign="never-linked"),
    ]
    outcomes = [
        Outcome("a1", A.ACTION_ALLOW),
        Outcome("a2", A.ACTION_BLOCK, reasons=("CAMPAIGN_LINKED",)),
        Outcome("a3", A.ACTION_LABEL, reasons=("MODEL_SCORE",)),
        Outcome("a4", A.ACTION_ALLOW),
        Outcome("b1", A.ACTION_ALLOW),
    ]
    dataset = write_dataset(tmp_path / "dataset", calls, outcomes)
    audio = {"numbers": 3, "numbers_with_audio": 1, "numbers_linked": 1, "audio_campaigns": ["ac-x"]}
    linked = {
        "c": {**audio, "first_linked_ms": START_MS + 50_000},
        "never-linked": {**audio, "first_linked_ms": None},
    }
    figures = {
        "segments_published": 1,
        "verdicts": 1,
        "verdicts_folded_by_reputation": 1,
        "by_kind": {},
        "audio_campaigns_matched": [],
        "audio_campaigns_discovered_this_run": [],
        "audio_campaigns_known_before": [],
        "false_links_by_kind": {},
        "simulated_campaigns": linked,
    }
    (dataset / "audio.json").write_text(json.dumps(figures))
    build_report(dataset, tmp_path / "out", plots=False)
    after = section((tmp_path / "out" / "report.md").read_text(), "Campaigns after their first audio link")
    assert row(after, "c")[1:] == ["3", "66.67%", "33.33%", "2", "50.00%"]
    assert "never-linked" not in after


def test_no_audio_link_no_after_link_section(tmp_path: Path) -> None:
    _summary, markdown = report(tmp_path, MIXED_CALLS, [Outcome("r1", A.ACTION_ALLOW)])
    assert "## Campaigns after their first audio link" not in markdown
