"""Markdown sections on traffic and detection: header, headline, traffic and actions per actor kind,
detection quality, cold start and warm state, time to detect and campaigns.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from loadtest.report._analysis import STATES, ReportSummary, StateFigures, _Analysis, _detect, ratio
from loadtest.report._codes import (
    HOUR_MS,
    KIND_SPAN,
    OTHER_ACTION,
    STATUS_ORDER,
    IntArray,
    kind_name,
    status_name,
)
from loadtest.report._format import _fmt_ms, _fmt_num, _fmt_pct, _fmt_s, _image, _table
from loadtest.report._reading import _Calls, scored_from_ms
from loadtest.supervision import SUPERVISION_RECORD, restarts_text
from training.dataset import Manifest

TABLE_ROWS = 40


def _header(dataset: Path, manifest: Manifest | None) -> list[str]:
    lines = ["# fraudmesh replay report", ""]
    if manifest is None:
        lines.append(f"Dataset `{dataset}` (manifest.json missing or unreadable).")
    else:
        scored_from = scored_from_ms(manifest)
        start = datetime.fromtimestamp(scored_from / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        lead_in_h = (scored_from - manifest.start_ms) / HOUR_MS
        hours = manifest.duration_s / 3600 - lead_in_h
        lines.append(
            f"Dataset `{dataset}`: scenario `{manifest.scenario}`, seed {manifest.seed}, "
            f"{hours:,.1f} simulated hours from {start}"
            + (
                f" after a {lead_in_h:,.4g} h lead-in (folded by reputation before the first scored "
                "call, never scored)."
                if lead_in_h > 0
                else "."
            )
        )
    return [*lines, *_offered_load(dataset), *_restarts(dataset), ""]


def _offered_load(dataset: Path) -> list[str]:
    """How hard the replay drove Decide (from replay.json): a paced rate, or flat out."""
    try:
        record = json.loads((dataset / "replay.json").read_text())
    except (OSError, ValueError):
        return []
    if not record.get("decide"):
        return []
    rate = float(record.get("offered_calls_per_s") or 0.0)
    in_flight = record.get("concurrency")
    cap = f", at most {in_flight} in flight" if in_flight else ""
    if rate > 0:
        return ["", f"Decide was offered {rate:,.0f} calls/s on average, paced at the dataset's timing{cap}."]
    return [
        "",
        f"Decide was replayed flat out{cap}: a saturation run: degraded decisions measure the overload.",
    ]


def _restarts(dataset: Path) -> list[str]:
    """Services the mesh's supervisor restarted during the run, or gave up on (supervision.json)."""
    try:
        record = json.loads((dataset / SUPERVISION_RECORD).read_text())
    except (OSError, ValueError):
        return []
    lines = []
    if record.get("restarts"):
        lines += [
            "",
            f"Restarted by the mesh's supervisor during the run: {restarts_text(record['restarts'])}.",
        ]
    if record.get("failure"):
        lines += ["", f"**The mesh broke for good:** {record['failure']}."]
    return lines


def _headline(summary: ReportSummary, outcomes_present: bool, coverage: str) -> list[str]:
    s = summary
    lines = ["## Headline", ""]
    if not s.has_outcomes:
        why = (
            "outcomes.fmds holds no outcome records"
            if outcomes_present
            else "there is no outcomes.fmds (replay ran without a decision service, Kafka only)"
        )
        lines += [
            f"> **No decisions were recorded**: {why}. This report describes the traffic only.",
            "",
        ]
    warm = s.headline_state == "warm"
    rows = [
        ["calls", f"{s.calls:,} ({_fmt_pct(ratio(s.unwanted_calls, s.calls))} unwanted)"],
        ["campaigns", f"{s.campaigns:,}"],
        ["emergency calls", f"{s.emergency_calls:,}"],
    ]
    if warm:
        rows += [
            [
                "lead-in (folded, not scored)",
                f"{s.lead_in_hours:,.4g} h: {s.lead_in_calls:,} calls from {s.lead_in_callers:,} callers",
            ],
            [
                "scored calls warm / cold",
                f"{s.states['warm'].calls:,} / {s.states['cold'].calls:,} "
                "(caller with / without lead-in history)",
            ],
        ]
    if s.has_outcomes:
        rows += [
            [
                "decided",
                f"{s.decided:,} ({_fmt_pct(ratio(s.decided, s.calls))}); errors {s.errors:,}; "
                f"not decided {s.not_decided:,}",
            ],
            *_rate_rows(s, " — warm state" if warm else ""),
            [
                "unwanted numbers never detected",
                f"{s.never_detected_numbers:,} of {s.unwanted_numbers:,} "
                f"({_fmt_pct(s.never_detected_share)})",
            ],
            [
                "calls to detect p50 / p90",
                f"{_fmt_num(s.calls_to_detect_p50)} / {_fmt_num(s.calls_to_detect_p90)}",
            ],
            [
                "time to detect p50 / p90",
                f"{_fmt_s(s.seconds_to_detect_p50)} / {_fmt_s(s.seconds_to_detect_p90)}",
            ],
            ["emergency calls not allowed", f"{s.emergency_non_allow:,} of {s.emergency_calls:,}"],
            ["Decide server-side p99 (Decision.latency_us)", _fmt_ms(s.server_latency_p99_ms)],
            [
                "Decide client latency p50 / p99 / p99.9",
                f"{_fmt_ms(s.latency_p50_ms)} / {_fmt_ms(s.latency_p99_ms)} / {_fmt_ms(s.latency_p999_ms)}",
            ],
            ["degraded decisions", _fmt_pct(s.degraded_share)],
        ]
    lines += _table(["metric", "value"], rows)
    if s.has_outcomes:
        where = (
            "The rows marked *warm state* are over scored calls whose caller has lead-in history, the "
            "state production lives in; cold start and all scored calls are in *Cold start and warm "
            "state*. "
            if warm
            else ""
        )
        lines += [
            where + "Precision, recall and false-positive rates are over decided calls; errored and "
            "undecided calls are counted separately (see *Actions per actor kind*). " + coverage,
            "",
        ]
    return lines


def _rate_rows(s: ReportSummary, state: str) -> list[list[str]]:
    """The headline's detection rates (the warm state's with a lead-in) and, beside them, cold start's."""
    rows = [
        [f"precision (flagged = LABEL, CHALLENGE or BLOCK){state}", _fmt_pct(s.precision)],
        [f"recall (flagged){state}", _fmt_pct(s.recall)],
        [
            f"precision / recall at BLOCK{state}",
            f"{_fmt_pct(s.block_precision)} / {_fmt_pct(s.block_recall)}",
        ],
        [f"legitimate calls flagged (false-positive rate){state}", _fmt_pct(s.legit_fp_rate)],
        [f"legitimate calls blocked{state}", _fmt_pct(s.legit_block_rate)],
    ]
    for name, label in (("warm_read", "warm state, reputation read"), ("cold", "cold start")):
        figures = s.states.get(name)
        if figures is not None:
            rows.append(
                [
                    f"{label}: precision / recall / legitimate flagged / legitimate blocked",
                    f"{_fmt_pct(figures.precision)} / {_fmt_pct(figures.recall)} / "
                    f"{_fmt_pct(figures.legit_fp_rate)} / {_fmt_pct(figures.legit_block_rate)}",
                ]
            )
    return rows


def _coverage(calls: _Calls, analysis: _Analysis) -> str:
    missing = int((~analysis.replayed).sum())
    if not missing or not analysis.replayed.any():
        return ""
    hours = (calls.time_ms[analysis.replayed] - analysis.t0_ms) / HOUR_MS
    total = (int(calls.time_ms.max()) - analysis.t0_ms) / HOUR_MS
    return (
        f"Outcomes cover calls set up from {float(hours.min()):,.2f} h to {float(hours.max()):,.2f} h "
        f"of the dataset's {total:,.2f} simulated hours; {missing:,} calls have none."
    )


def _distinct_pairs(kind: IntArray, value: IntArray, values: int) -> IntArray:
    span = max(values, 1)
    return np.unique(kind * span + value) // span


def _traffic_section(
    calls: _Calls, analysis: _Analysis, written: list[str], skipped: dict[str, str]
) -> list[str]:
    total = len(calls)
    in_campaign = calls.campaign >= 0
    actor_pairs = _distinct_pairs(calls.kind, calls.actor, calls.actors)
    number_pairs = _distinct_pairs(calls.kind, calls.number, calls.numbers)
    campaign_pairs = _distinct_pairs(
        calls.kind[in_campaign], calls.campaign[in_campaign], len(calls.campaign_names)
    )
    rows = []
    for kind in analysis.kinds:
        mask = calls.kind == kind
        count = int(mask.sum())
        rows.append(
            [
                kind_name(kind),
                "unwanted" if kind in analysis.unwanted_kinds else "legitimate",
                f"{count:,}",
                _fmt_pct(ratio(count, total)),
                _fmt_pct(ratio(int(calls.unwanted[mask].sum()), count)),
                _fmt_pct(ratio(int(calls.spoofed[mask].sum()), count)),
                _fmt_pct(ratio(int(calls.synthetic[mask].sum()), count)),
                f"{int((actor_pairs == kind).sum()):,}",
                f"{int((number_pairs == kind).sum()):,}",
                f"{int((campaign_pairs == kind).sum()):,}",
            ]
        )
    return [
        "## Traffic by actor kind",
        "",
        *_table(
            [
                "actor kind",
                "group",
                "calls",
                "share",
                "unwanted",
                "spoofed",
                "synthetic voice",
                "actors",
                "presented numbers",
                "campaigns",
            ],
            rows,
        ),
        *_image("traffic.png", "Traffic", written, skipped),
    ]


def _actions_section(analysis: _Analysis, written: list[str], skipped: dict[str, str]) -> list[str]:
    shown = [s for s in STATUS_ORDER if s != OTHER_ACTION or analysis.status_counts[:, OTHER_ACTION].any()]
    rows = []
    for kind in analysis.kinds:
        counts = analysis.status_counts[kind]
        total = int(counts.sum())
        rows.append([kind_name(kind), f"{total:,}", *(_fmt_pct(ratio(int(counts[s]), total)) for s in shown)])
    totals = analysis.status_counts.sum(axis=0)
    total = int(totals.sum())
    rows.append(["**all**", f"{total:,}", *(_fmt_pct(ratio(int(totals[s]), total)) for s in shown)])
    return [
        "## Actions per actor kind",
        "",
        "Share of each kind's calls by outcome; *error* is a failed Decide call, *not decided* a call "
        "with no outcome record.",
        "",
        *_table(["actor kind", "calls", *(status_name(s) for s in shown)], rows),
        *_image("action_mix.png", "Action mix", written, skipped),
    ]


def _quality_section(calls: _Calls, analysis: _Analysis, summary: ReportSummary) -> list[str]:
    a = analysis
    unwanted = calls.unwanted
    rows = []
    for kind in a.kinds:
        mask = (calls.kind == kind) & a.decided
        bad = mask & unwanted
        good = mask & ~unwanted
        n_bad = int(bad.sum())
        n_good = int(good.sum())
        rows.append(
            [
                kind_name(kind),
                f"{n_bad:,}",
                _fmt_pct(ratio(int((bad & a.flagged).sum()), n_bad)),
                _fmt_pct(ratio(int((bad & a.blocked).sum()), n_bad)),
                f"{n_good:,}",
                _fmt_pct(ratio(int((good & a.flagged).sum()), n_good)),
                _fmt_pct(ratio(int((good & a.blocked).sum()), n_good)),
            ]
        )
    tp = int((a.flagged & unwanted).sum())
    tp_block = int((a.blocked & unwanted).sum())
    every = summary.states["all"]
    overall = [
        [
            "flagged (LABEL, CHALLENGE or BLOCK)",
            f"{every.flagged:,}",
            f"{tp:,}",
            _fmt_pct(every.precision),
            _fmt_pct(every.recall),
            _fmt_pct(every.legit_fp_rate),
        ],
        [
            "BLOCK only",
            f"{int(a.blocked.sum()):,}",
            f"{tp_block:,}",
            _fmt_pct(every.block_precision),
            _fmt_pct(every.block_recall),
            _fmt_pct(every.legit_block_rate),
        ],
    ]
    scope = " All scored calls, warm and cold together." if summary.headline_state == "warm" else ""
    return [
        "## Detection quality",
        "",
        "Against the ground-truth label `unwanted`, over decided calls. Blocking a legitimate caller "
        "(a courier, a bank alert) is far worse than labelling one, so BLOCK is scored on its own." + scope,
        "",
        *_table(
            ["level", "calls", "of which unwanted", "precision", "recall", "legitimate calls hit"], overall
        ),
        "Per actor kind: recall over the kind's unwanted calls, false positives over its legitimate calls.",
        "",
        *_table(
            [
                "actor kind",
                "unwanted decided",
                "recall (flagged)",
                "recall (BLOCK)",
                "legitimate decided",
                "FP rate (flagged)",
                "BLOCK rate",
            ],
            rows,
        ),
    ]


def _states_section(calls: _Calls, analysis: _Analysis, summary: ReportSummary) -> list[str]:
    lines = ["## Cold start and warm state", ""]
    lead_in = calls.lead_in
    if lead_in is None:
        return [
            *lines,
            "This dataset has no lead-in: reputation started empty, so every caller met a cold "
            "reputation and every figure above is cold start's (`python -m loadtest run` replays a "
            "lead-in first: `--lead-in-hours`).",
            "",
        ]
    lines += [
        f"The dataset's first {lead_in.hours:,.4g} simulated hours are a lead-in: replayed straight to "
        "Kafka (setups as audit records, CDRs, complaints, audio segments) and folded by reputation "
        "before the first scored call, never sent to Decide and counted nowhere else in this report "
        f"({lead_in.calls:,} calls, {_fmt_pct(ratio(lead_in.unwanted, lead_in.calls))} unwanted, from "
        f"{lead_in.callers:,} callers). A scored call is *warm* when its caller (the identity calls are "
        "attributed to: PAI, else From, a withheld caller's trunk bucket) made a call in the lead-in, "
        "so reputation held its history as it holds a long-lived number's in production; *cold* when it "
        "did not (a number new to the network, a freshly rotated robocall number), its history starting "
        "with its first scored call; *first call* is a cold caller's first scored call, when nothing at "
        "all was known. The split is by caller, not by time: a cold caller's later calls stay cold. "
        "The headline's detection rates are the warm state's. A call *decided without reputation* "
        "(degraded REDIS_*: Redis did not answer within the production sub-deadline or its breaker "
        "was open) was scored without the history it would have read, warm or cold alike; the "
        "*reputation read* rows keep only the calls whose decision read it, where the lead-in's "
        "history could count.",
        "",
    ]
    rows = []
    for name, label in STATES.items():
        figures: StateFigures = summary.states[name]
        rows.append(
            [
                label,
                f"{figures.callers:,}",
                f"{figures.calls:,}",
                _fmt_pct(ratio(figures.unwanted_calls, figures.calls)),
                _fmt_pct(ratio(figures.without_reputation, figures.decided)),
                _fmt_pct(figures.precision),
                _fmt_pct(figures.recall),
                f"{_fmt_pct(figures.block_precision)} / {_fmt_pct(figures.block_recall)}",
                _fmt_pct(figures.legit_fp_rate),
                _fmt_pct(figures.legit_block_rate),
            ]
        )
    lines += _table(
        [
            "scored calls",
            "callers",
            "calls",
            "unwanted",
            "decided without reputation",
            "precision",
            "recall",
            "BLOCK precision / recall",
            "legitimate flagged",
            "legitimate blocked",
        ],
        rows,
    )
    a = analysis
    per_kind = []
    for kind in sorted(set(a.kinds) | set(lead_in.per_kind)):
        cells = [kind_name(kind), f"{lead_in.per_kind[kind]:,}"]
        for state in (calls.warm, ~calls.warm):
            decided = (calls.kind == kind) & state & a.decided
            read = decided & ~a.without_reputation
            n = int(decided.sum())
            cells += [
                f"{n:,}",
                _fmt_pct(ratio(int((decided & a.flagged).sum()), n)),
                _fmt_pct(ratio(int((decided & a.blocked).sum()), n)),
                _fmt_pct(ratio(int((read & a.flagged).sum()), int(read.sum()))),
            ]
        per_kind.append(cells)
    return [
        *lines,
        "Per actor kind, over decided calls: for an unwanted kind *flagged* is its recall, for a "
        "legitimate one its false-positive rate.",
        "",
        *_table(
            [
                "actor kind",
                "lead-in calls",
                "warm decided",
                "warm flagged",
                "warm BLOCK",
                "warm flagged, reputation read",
                "cold decided",
                "cold flagged",
                "cold BLOCK",
                "cold flagged, reputation read",
            ],
            per_kind,
        ),
    ]


def _detect_section(analysis: _Analysis, written: list[str], skipped: dict[str, str]) -> list[str]:
    groups = analysis.numbers
    kinds = groups.key % KIND_SPAN
    rows = []
    for kind in [int(k) for k in np.unique(kinds)] + [-1]:
        stats = _detect(groups, kinds == kind if kind >= 0 else np.ones(len(kinds), dtype=np.bool_))
        rows.append(
            [
                kind_name(kind) if kind >= 0 else "**all**",
                f"{stats.numbers:,}",
                f"{stats.detected:,}",
                f"{stats.never:,} ({_fmt_pct(ratio(stats.never, stats.numbers))})",
                f"{_fmt_num(stats.calls_p50)} / {_fmt_num(stats.calls_p90)}",
                f"{_fmt_s(stats.seconds_p50)} / {_fmt_s(stats.seconds_p90)}",
            ]
        )
    return [
        "## Time to detect",
        "",
        "Per unwanted presented number (a caller ID with one unwanted actor kind, counting only that "
        "kind's replayed unwanted calls, in setup-time order): *calls to detect* is the rank of its "
        "first flagged call, *time to detect* the simulated time from its first call to that call. "
        "Calls with no outcome are left out (a replay stopped early has no tail of false misses); errored "
        "calls count as not flagged. Percentiles are over the numbers that were detected.",
        "",
        *_table(
            [
                "actor kind",
                "numbers",
                "detected",
                "never detected",
                "calls to detect p50 / p90",
                "time to detect p50 / p90",
            ],
            rows,
        ),
        *_image("time_to_detect.png", "Time to detect", written, skipped),
    ]


def _campaign_section(calls: _Calls, analysis: _Analysis, has_outcomes: bool) -> list[str]:
    groups = analysis.campaigns
    lines = ["## Campaigns", ""]
    if not len(groups.key):
        return [*lines, "No call carries a campaign_id.", ""]
    span = max(calls.numbers, 1)
    size = len(calls.campaign_names)
    owner = analysis.campaign_numbers.key // span
    numbers = np.bincount(owner, minlength=size)
    lifetimes = (analysis.campaign_numbers.last_ms - analysis.campaign_numbers.first_ms) / HOUR_MS
    in_campaign = calls.campaign >= 0
    decided = np.bincount(calls.campaign[in_campaign], weights=analysis.decided[in_campaign], minlength=size)
    flagged = np.bincount(calls.campaign[in_campaign], weights=analysis.flagged[in_campaign], minlength=size)
    tried = analysis.campaign_number_detect
    tried_owner = tried.key // span
    tried_numbers = np.bincount(tried_owner, minlength=size)
    never = np.bincount(tried_owner, weights=~tried.detected, minlength=size)
    detect = {int(c): g for g, c in enumerate(analysis.campaign_detect.key)}
    order = sorted(
        range(len(groups.key)), key=lambda g: (-int(groups.size[g]), calls.campaign_names[groups.key[g]])
    )
    rows = []
    for g in order[:TABLE_ROWS]:
        c = int(groups.key[g])
        count = int(groups.size[g])
        row = [
            calls.campaign_names[c],
            kind_name(analysis.campaign_kind.get(c, 0)),
            f"{count:,}",
            f"{int(numbers[c]):,}",
            _fmt_num(count / max(int(numbers[c]), 1)),
            _fmt_num(float(np.median(lifetimes[owner == c])), 2),
            _fmt_num((int(groups.last_ms[g]) - int(groups.first_ms[g])) / HOUR_MS, 2),
        ]
        if has_outcomes:
            d = detect.get(c)
            row += [
                _fmt_pct(ratio(int(flagged[c]), int(decided[c]))),
                "—" if d is None else _fmt_num(float(analysis.campaign_detect.detect_calls[d]) or None),
                "—" if d is None else _fmt_s(float(analysis.campaign_detect.detect_s[d])),
                f"{int(never[c]):,} of {int(tried_numbers[c]):,}",
            ]
        rows.append(row)
    headers = [
        "campaign",
        "actor kind",
        "calls",
        "numbers (rotation)",
        "calls per number",
        "number life p50 (h)",
        "active span (h)",
    ]
    explain = (
        f"{len(groups.key):,} campaigns. *Numbers* counts the distinct caller IDs a campaign presented; "
        "*number life* is the simulated time between a number's first and last call in the campaign."
    )
    if has_outcomes:
        headers += ["flagged", "calls to first flag", "time to first flag", "numbers never flagged"]
        explain += (
            " *Flagged* is the share of its decided calls; the first flag is counted over its replayed "
            "calls from the first one; *numbers never flagged* is out of its replayed numbers."
        )
    lines += [explain, "", *_table(headers, rows)]
    if len(order) > TABLE_ROWS:
        lines += [f"_{len(order) - TABLE_ROWS:,} smaller campaigns not listed._", ""]
    return lines
