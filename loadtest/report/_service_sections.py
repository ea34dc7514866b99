"""Markdown sections on emergency safety, Decide latency, degraded decisions and reason codes, audio,
presented numbers and data notes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.report._analysis import _Analysis, quantiles, ratio
from loadtest.report._codes import (
    EMERGENCY,
    ERROR,
    N_STATUS,
    NOT_ALLOWED,
    NOT_DECIDED,
    SERVER_BUDGET_MS,
    STATUS_ORDER,
    kind_name,
    status_name,
)
from loadtest.report._format import _fmt_int, _fmt_ms, _fmt_num, _fmt_pct, _image, _table
from loadtest.report._reading import _Calls, _NumberStats, _Outcomes
from training.dataset import AUDIO_RUN

TOP_CODES = 15

LISTED_EMERGENCY_FAILURES = 50


def _emergency_failures(outcomes: _Outcomes | None) -> list[str]:
    if outcomes is None:
        return []
    failing = sorted(i for i, (code, _) in outcomes.emergency.items() if code in NOT_ALLOWED)
    if not failing:
        return []
    counts = Counter(status_name(outcomes.emergency[i][0]) for i in failing)
    mix = ", ".join(f"{name} {count:,}" for name, count in counts.most_common())
    return [
        f"> **FAILURE: {len(failing):,} emergency call(s) were not allowed ({mix}).** "
        "Emergency calls must never be blocked, challenged or labelled.",
        "",
    ]


def _emergency_section(calls: _Calls, outcomes: _Outcomes | None, analysis: _Analysis) -> list[str]:
    lines = ["## Emergency calls", ""]
    total = len(calls.emergency)
    if not total:
        return [*lines, "No emergency calls in this dataset.", ""]
    if outcomes is None or not outcomes.records:
        return [*lines, f"{total:,} emergency calls; no decisions were recorded.", ""]
    counts = (
        analysis.status_counts[EMERGENCY] if len(analysis.status_counts) > EMERGENCY else np.zeros(N_STATUS)
    )
    lines += _table(
        ["outcome", "calls"], [[status_name(s), f"{int(counts[s]):,}"] for s in STATUS_ORDER if counts[s]]
    )
    failing = sorted(i for i, (code, _) in outcomes.emergency.items() if code in NOT_ALLOWED)
    for index in failing[:LISTED_EMERGENCY_FAILURES]:
        code, reasons = outcomes.emergency[index]
        lines.append(
            f"- **FAILURE**: emergency call `{calls.emergency[index]}` got {status_name(code)}"
            f" (reasons: {reasons or 'none given'})"
        )
    if len(failing) > LISTED_EMERGENCY_FAILURES:
        lines.append(
            f"- **FAILURE**: {len(failing) - LISTED_EMERGENCY_FAILURES:,} more emergency calls not allowed"
        )
    if not failing:
        lines += ["Every decided emergency call was allowed.", ""]
    unresolved = int(counts[ERROR] + counts[NOT_DECIDED])
    if unresolved:
        lines.append(
            f"- WARNING: {unresolved:,} emergency calls have no decision (Decide failed or has no outcome); "
            "they are not counted as failures, but the switch's fallback must let them through."
        )
    return [*lines, ""]


def _latency_section(outcomes: _Outcomes, written: list[str], skipped: dict[str, str]) -> list[str]:
    qs = (50, 90, 99, 99.9)
    rows = []
    for label, values in (
        ("client (replay)", outcomes.client_us),
        ("server (Decision.latency_us)", outcomes.server_us[outcomes.server_us > 0]),
    ):
        ms = values / 1000.0
        rows.append(
            [
                label,
                f"{len(ms):,}",
                *(_fmt_ms(v) for v in quantiles(ms, qs)),
                _fmt_ms(float(ms.max()) if len(ms) else None),
                _fmt_pct(ratio(int((ms > SERVER_BUDGET_MS).sum()), len(ms))),
            ]
        )
    lines = [
        "## Decide latency",
        "",
        f"Successful Decide calls only (server: those that report latency_us). The server budget is "
        f"{SERVER_BUDGET_MS:g} ms; client latency adds the network and the replaying client.",
        "",
        *_table(
            ["measured by", "decisions", "p50", "p90", "p99", "p99.9", "max", f"> {SERVER_BUDGET_MS:g} ms"],
            rows,
        ),
    ]
    if outcomes.errors:
        lines += _table(
            ["error (gRPC status)", "calls", "share of outcomes"],
            [
                [code, f"{n:,}", _fmt_pct(ratio(n, outcomes.records))]
                for code, n in outcomes.errors.most_common()
            ],
        )
    else:
        lines += ["No Decide call failed.", ""]
    return [*lines, *_image("latency.png", "Latency", written, skipped)]


def _codes_section(outcomes: _Outcomes) -> list[str]:
    lines = [
        "## Degraded decisions and reason codes",
        "",
        f"{outcomes.degraded:,} of {outcomes.decisions:,} decisions were degraded "
        f"({_fmt_pct(ratio(outcomes.degraded, outcomes.decisions))}).",
        "",
    ]
    if outcomes.degraded_reasons:
        lines += _table(
            ["degraded reason", "decisions"],
            [[r, f"{n:,}"] for r, n in outcomes.degraded_reasons.most_common(TOP_CODES)],
        )
    if outcomes.reason_codes:
        lines += _table(
            ["reason code", "decisions", "share of decisions", "on flagged decisions"],
            [
                [r, f"{n:,}", _fmt_pct(ratio(n, outcomes.decisions)), f"{outcomes.flagged_reason_codes[r]:,}"]
                for r, n in outcomes.reason_codes.most_common(TOP_CODES)
            ],
        )
    else:
        lines += ["No decision carried a reason code.", ""]
    return lines


def _numbers_section(stats: _NumberStats, calls: _Calls) -> list[str]:
    rows = []
    for kind, (count, bad, per_number, life) in sorted(stats.per_kind.items()):
        rows.append(
            [
                kind_name(kind),
                f"{count:,}",
                f"{bad:,}",
                _fmt_num(float(np.median(per_number)) if count else None),
                _fmt_num(float(per_number.max()) if count else None),
                _fmt_num(float(np.median(life)) if count else None, 2),
            ]
        )
    lines = [
        "## Presented numbers (numbers.fmds)",
        "",
        *_table(["actor kind", "numbers", "unwanted", "calls per number p50", "max", "life p50 (h)"], rows),
    ]
    presented = calls.numbers + (calls.lead_in.only_numbers if calls.lead_in is not None else 0)
    if calls.lead_in is not None:
        lines += ["Lead-in included: a number's calls and life count its lead-in calls too.", ""]
    if stats.records != presented:
        lines += [
            f"numbers.fmds lists {stats.records:,} numbers; calls.fmds presents {presented:,} distinct ones.",
            "",
        ]
    return lines


def _fmt_score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _lead_in_share(audio: dict[str, Any]) -> str:
    """How many of the published segments belong to the lead-in (their verdicts were folded first)."""
    count = audio.get("segments_published_in_lead_in", 0)
    return f" ({_fmt_int(count)} of them in the lead-in, verdicts folded before scoring)" if count else ""


def _audio_section(dataset: Path) -> list[str]:
    """What the run's audio became (audio.json, written by the main job when it published audio)."""
    path = dataset / AUDIO_RUN
    if not path.exists():
        return []
    audio = json.loads(path.read_text())
    lines = [
        "## Audio",
        "",
        f"{_fmt_int(audio['segments_published'])} segments rendered at replay time and published to "
        f"audio.segments.v1{_lead_in_share(audio)}; {_fmt_int(audio['verdicts'])} verdicts came back on "
        "audio.verdicts.v1, "
        f"{_fmt_int(audio['verdicts_folded_by_reputation'])} of them folded in by reputation. Every voice "
        "is TTS, the simulated people's too (no real speech offline): synthetic-voice scores here do not "
        "measure the detector.",
        "",
        *_table(
            [
                "caller kind",
                "segments",
                "verdicts",
                "campaign-linked",
                "bot scored",
                "mean bot",
                "synthetic scored",
                "mean synthetic",
            ],
            [
                [
                    kind,
                    _fmt_int(row["segments"]),
                    _fmt_int(row["verdicts"]),
                    _fmt_int(row["campaign_linked"]),
                    _fmt_int(row["bot_scored"]),
                    _fmt_score(row["bot_mean"]),
                    _fmt_int(row["synthetic_scored"]),
                    _fmt_score(row["synthetic_mean"]),
                ]
                for kind, row in audio["by_kind"].items()
            ],
        ),
        f"Audio campaigns: {len(audio['audio_campaigns_discovered_this_run'])} discovered during this run, "
        f"{len(audio['audio_campaigns_matched'])} matched by its segments. A number is linked by its own "
        "verdicts from the campaign's discovery on, and by the discovering verdict if its audio was heard "
        "before (within the discovery window); numbers whose audio was never captured stay unlinked, and "
        "one recording first heard in separate parts can become several campaigns.",
        "",
        *_table(
            [
                "simulated campaign",
                "numbers used",
                "numbers with audio",
                "linked in reputation",
                "audio campaigns",
            ],
            [
                [
                    name,
                    _fmt_int(row["numbers"]),
                    _fmt_int(row["numbers_with_audio"]),
                    _fmt_int(row["numbers_linked"]),
                    ", ".join(row["audio_campaigns"]) or "none",
                ]
                for name, row in audio["simulated_campaigns"].items()
            ],
        ),
    ]
    false_links = audio["false_links_by_kind"]
    lines += [
        "Numbers linked to an audio campaign outside any simulated campaign: "
        + (", ".join(f"{k} {v}" for k, v in sorted(false_links.items())) if false_links else "none")
        + " (reminders share one fixed recording: five or more reminder numbers make a false campaign).",
        "",
    ]
    return lines


def _notes(calls: _Calls, outcomes: _Outcomes | None) -> list[str]:
    notes = []
    if calls.duplicates:
        notes.append(f"{calls.duplicates:,} duplicate call_ids in calls.fmds were ignored (first kept).")
    if calls.other_records:
        notes.append(f"{calls.other_records:,} records in calls.fmds were not call_truth and were ignored.")
    if outcomes is not None:
        if outcomes.duplicates:
            notes.append(f"{outcomes.duplicates:,} calls have more than one outcome; the last one counts.")
        if outcomes.lead_in_calls:
            notes.append(
                f"{outcomes.lead_in_calls:,} outcomes are for lead-in calls, which are never scored; ignored."
            )
        if outcomes.unknown_calls:
            notes.append(
                f"{outcomes.unknown_calls:,} outcomes name a call_id that is not in calls.fmds; ignored."
            )
        if outcomes.other_records:
            notes.append(f"{outcomes.other_records:,} records in outcomes.fmds were not outcomes; ignored.")
    if not notes:
        return []
    return ["## Data notes", "", *(f"- {n}" for n in notes), ""]
