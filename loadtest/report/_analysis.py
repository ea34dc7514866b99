"""The report's figures: calls grouped by number and campaign, detection, time to detect, detection per
reputation state (warm, cold), the summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loadtest.report._codes import (
    BLOCK,
    DECIDED,
    EMERGENCY,
    ERROR,
    FLAGGED,
    KIND_SPAN,
    N_STATUS,
    NOT_ALLOWED,
    NOT_DECIDED,
    BoolArray,
    FloatArray,
    IntArray,
    Method,
)
from loadtest.report._reading import _Calls, _Outcomes
from training.dataset import Manifest

STATES: dict[str, str] = {  # name in summary.json → row label in the report
    "warm": "warm (caller has lead-in history)",
    "warm_read": "warm, reputation read",
    "cold": "cold (caller has none)",
    "cold_read": "cold, reputation read",
    "cold_first_call": "cold, the caller's first call",
    "all": "all scored calls",
}


@dataclass(frozen=True)
class StateFigures:
    """Detection figures over one set of scored calls (one of ``STATES``); rates over decided calls."""

    calls: int
    callers: int
    unwanted_calls: int
    decided: int
    without_reputation: int  # decided without the caller's reputation (Redis did not answer in time)
    flagged: int
    precision: float | None
    recall: float | None
    block_precision: float | None
    block_recall: float | None
    legit_fp_rate: float | None
    legit_block_rate: float | None


@dataclass(frozen=True)
class ReportSummary:
    """Headline numbers of one report; also written as summary.json for CI and dashboards.

    Counts cover the scored window (a lead-in's calls are in ``lead_in_calls`` only). The detection
    rates (precision … legit_block_rate) are the ``headline_state``'s: ``warm`` when the dataset has
    a lead-in — the state production lives in — else ``all``; ``states`` holds every state's figures.
    """

    dataset: str
    scenario: str
    calls: int
    unwanted_calls: int
    legit_calls: int
    has_outcomes: bool
    outcomes: int
    decided: int
    errors: int
    not_decided: int
    flagged: int
    precision: float | None
    recall: float | None
    block_precision: float | None
    block_recall: float | None
    legit_fp_rate: float | None
    legit_block_rate: float | None
    emergency_calls: int
    emergency_non_allow: int
    campaigns: int
    unwanted_numbers: int
    never_detected_numbers: int
    never_detected_share: float | None
    calls_to_detect_p50: float | None
    calls_to_detect_p90: float | None
    seconds_to_detect_p50: float | None
    seconds_to_detect_p90: float | None
    latency_count: int
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    latency_p999_ms: float | None
    latency_max_ms: float | None
    server_latency_p99_ms: float | None
    degraded_share: float | None
    plots: tuple[str, ...] = ()
    headline_state: str = "all"
    lead_in_hours: float = 0.0
    lead_in_calls: int = 0
    lead_in_callers: int = 0
    states: dict[str, StateFigures] = field(default_factory=dict)

    def to_json(self) -> str:
        """The summary as indented, key-sorted JSON (undefined rates are null)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ReportSummary:
        """Load a summary written by to_json."""
        data: dict[str, Any] = json.loads(text)
        data["plots"] = tuple(data.get("plots", ()))
        data["states"] = {name: StateFigures(**v) for name, v in data.get("states", {}).items()}
        return cls(**data)


@dataclass(frozen=True)
class _Groups:
    """Calls grouped by a key: per group its size, time span and first flagged call."""

    key: IntArray
    size: IntArray
    first_ms: IntArray
    last_ms: IntArray
    detect_calls: IntArray
    detect_s: FloatArray

    @property
    def detected(self) -> BoolArray:
        """Groups with at least one flagged call."""
        return self.detect_calls > 0


def group_calls(key: IntArray, time_ms: IntArray, flagged: BoolArray) -> _Groups:
    """Group calls by key in setup-time order; rank and delay of each group's first flagged call.

    detect_calls is the 1-based rank of the first flagged call (0 when none was flagged) and
    detect_s the simulated seconds from the group's first call to it (NaN when none).
    """
    order = np.lexsort((time_ms, key))
    k = key[order]
    t = time_ms[order]
    f = flagged[order]
    n = len(k)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Groups(empty, empty, empty, empty, empty, np.zeros(0))
    start = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    end = np.r_[start[1:], n]
    gid = np.repeat(np.arange(len(start)), end - start)
    rank = np.arange(n) - start[gid] + 1
    hits = np.flatnonzero(f)
    hit_groups, first_hit = np.unique(gid[hits], return_index=True)
    position = hits[first_hit]
    detect_calls = np.zeros(len(start), dtype=np.int64)
    detect_calls[hit_groups] = rank[position]
    detect_s = np.full(len(start), np.nan)
    detect_s[hit_groups] = (t[position] - t[start[hit_groups]]) / 1000.0
    return _Groups(
        key=k[start].astype(np.int64),
        size=(end - start).astype(np.int64),
        first_ms=t[start].astype(np.int64),
        last_ms=t[end - 1].astype(np.int64),
        detect_calls=detect_calls,
        detect_s=detect_s,
    )


def quantiles(values: npt.NDArray[Any], qs: Sequence[float], method: Method = "linear") -> list[float | None]:
    """Percentiles (0-100) of values as floats, None for each when there are no values."""
    if len(values) == 0:
        return [None for _ in qs]
    result = np.percentile(values, list(qs), method=method)
    return [float(v) for v in np.atleast_1d(result)]


def ratio(numerator: int, denominator: int) -> float | None:
    """numerator / denominator, None when the denominator is zero."""
    return numerator / denominator if denominator else None


@dataclass
class _Analysis:
    """Everything derived from calls and outcomes that the markdown, plots and summary need.

    Detection groups (numbers, campaign_detect, campaign_number_detect) cover replayed calls only —
    those with an outcome — so a replay stopped early does not count its unreplayed tail as misses.
    """

    status: npt.NDArray[np.int8]
    replayed: BoolArray
    decided: BoolArray
    without_reputation: BoolArray
    flagged: BoolArray
    blocked: BoolArray
    kinds: list[int]
    unwanted_kinds: set[int]
    status_counts: IntArray
    numbers: _Groups
    campaigns: _Groups
    campaign_numbers: _Groups
    campaign_detect: _Groups
    campaign_number_detect: _Groups
    campaign_kind: dict[int, int]
    t0_ms: int
    states: dict[str, BoolArray]


def _state_masks(calls: _Calls, read: BoolArray) -> dict[str, BoolArray]:
    """Scored calls per reputation state: with a lead-in warm (the caller made a call in it), cold
    (it did not: its reputation starts empty in the scored window), each also where the decision
    read the caller's reputation (``read``), and the cold callers' first calls; always all."""
    every = np.ones(len(calls), dtype=np.bool_)
    if calls.lead_in is None:
        return {"all": every}
    order = np.lexsort((calls.time_ms, calls.number))
    ordered = calls.number[order]
    first = np.zeros(len(calls), dtype=np.bool_)
    if len(order):
        first[order[np.r_[True, ordered[1:] != ordered[:-1]]]] = True
    cold = ~calls.warm
    return {
        "warm": calls.warm.copy(),
        "warm_read": calls.warm & read,
        "cold": cold,
        "cold_read": cold & read,
        "cold_first_call": cold & first,
        "all": every,
    }


def _analyse(calls: _Calls, outcomes: _Outcomes | None) -> _Analysis:
    n = len(calls)
    status = outcomes.status if outcomes is not None else np.zeros(n, dtype=np.int8)
    replayed = status != NOT_DECIDED
    decided = np.isin(status, DECIDED)
    without_reputation = outcomes.no_reputation & decided if outcomes is not None else np.zeros(n, np.bool_)
    flagged = np.isin(status, FLAGGED)
    kinds = [int(k) for k in np.unique(calls.kind)]
    top = max(kinds, default=0) + 1
    per_kind = np.bincount(calls.kind, minlength=top)
    unwanted_per_kind = np.bincount(calls.kind[calls.unwanted], minlength=top)
    status_counts = np.bincount(calls.kind * N_STATUS + status.astype(np.int64), minlength=top * N_STATUS)
    bad = np.flatnonzero(calls.unwanted & replayed)
    span = max(calls.numbers, 1)
    campaign_calls = calls.campaign >= 0
    every = np.flatnonzero(campaign_calls)
    tried = np.flatnonzero(campaign_calls & replayed)
    pairs, pair_counts = np.unique(calls.campaign[every] * KIND_SPAN + calls.kind[every], return_counts=True)
    ranked = pairs[np.lexsort((-pair_counts, pairs // KIND_SPAN))]
    owners, first = np.unique(ranked // KIND_SPAN, return_index=True)
    return _Analysis(
        status=status,
        replayed=replayed,
        decided=decided,
        without_reputation=without_reputation,
        flagged=flagged,
        blocked=status == BLOCK,
        kinds=kinds,
        unwanted_kinds={k for k in kinds if 2 * int(unwanted_per_kind[k]) > int(per_kind[k])},
        status_counts=status_counts.reshape(top, N_STATUS).astype(np.int64),
        numbers=group_calls(
            calls.number[bad] * KIND_SPAN + calls.kind[bad], calls.time_ms[bad], flagged[bad]
        ),
        campaigns=group_calls(calls.campaign[every], calls.time_ms[every], flagged[every]),
        campaign_numbers=group_calls(
            calls.campaign[every] * span + calls.number[every], calls.time_ms[every], flagged[every]
        ),
        campaign_detect=group_calls(calls.campaign[tried], calls.time_ms[tried], flagged[tried]),
        campaign_number_detect=group_calls(
            calls.campaign[tried] * span + calls.number[tried], calls.time_ms[tried], flagged[tried]
        ),
        campaign_kind={int(c): int(k) for c, k in zip(owners, ranked[first] % KIND_SPAN, strict=True)},
        t0_ms=int(calls.time_ms.min()) if n else 0,
        states=_state_masks(calls, decided & ~without_reputation),
    )


@dataclass(frozen=True)
class _Detect:
    """Time-to-detect figures over a set of unwanted numbers."""

    numbers: int
    detected: int
    calls_p50: float | None
    calls_p90: float | None
    seconds_p50: float | None
    seconds_p90: float | None

    @property
    def never(self) -> int:
        """Numbers never flagged."""
        return self.numbers - self.detected


def _detect(groups: _Groups, mask: BoolArray) -> _Detect:
    found = mask & groups.detected
    calls_p50, calls_p90 = quantiles(groups.detect_calls[found], (50, 90), "inverted_cdf")
    seconds_p50, seconds_p90 = quantiles(groups.detect_s[found], (50, 90), "inverted_cdf")
    return _Detect(int(mask.sum()), int(found.sum()), calls_p50, calls_p90, seconds_p50, seconds_p90)


def _state_figures(calls: _Calls, analysis: _Analysis, mask: BoolArray) -> StateFigures:
    a = analysis
    unwanted = calls.unwanted & mask
    legit = ~calls.unwanted & mask
    decided_bad = int((a.decided & unwanted).sum())
    decided_legit = int((a.decided & legit).sum())
    flagged = int((a.flagged & mask).sum())
    blocked = int((a.blocked & mask).sum())
    return StateFigures(
        calls=int(mask.sum()),
        callers=len(np.unique(calls.number[mask])),
        unwanted_calls=int(unwanted.sum()),
        decided=int((a.decided & mask).sum()),
        without_reputation=int((a.without_reputation & mask).sum()),
        flagged=flagged,
        precision=ratio(int((a.flagged & unwanted).sum()), flagged),
        recall=ratio(int((a.flagged & unwanted).sum()), decided_bad),
        block_precision=ratio(int((a.blocked & unwanted).sum()), blocked),
        block_recall=ratio(int((a.blocked & unwanted).sum()), decided_bad),
        legit_fp_rate=ratio(int((a.flagged & legit).sum()), decided_legit),
        legit_block_rate=ratio(int((a.blocked & legit).sum()), decided_legit),
    )


def _summarise(
    dataset: Path,
    manifest: Manifest | None,
    calls: _Calls,
    outcomes: _Outcomes | None,
    analysis: _Analysis,
    plots: list[str],
) -> ReportSummary:
    a = analysis
    unwanted = calls.unwanted
    states = {name: _state_figures(calls, a, mask) for name, mask in a.states.items()}
    headline_state = "warm" if "warm" in states else "all"
    headline = states[headline_state]
    emergency = calls.kind == EMERGENCY
    detect = _detect(a.numbers, np.ones(len(a.numbers.key), dtype=np.bool_))
    client = outcomes.client_us / 1000.0 if outcomes is not None else np.zeros(0)
    server = outcomes.server_us[outcomes.server_us > 0] / 1000.0 if outcomes is not None else np.zeros(0)
    p50, p90, p99, p999 = quantiles(client, (50, 90, 99, 99.9))
    (server_p99,) = quantiles(server, (99,))
    has_outcomes = outcomes is not None and outcomes.records > 0
    return ReportSummary(
        dataset=str(dataset),
        scenario=manifest.scenario if manifest is not None else "",
        calls=len(calls),
        unwanted_calls=int(unwanted.sum()),
        legit_calls=int((~unwanted).sum()),
        has_outcomes=has_outcomes,
        outcomes=outcomes.records if outcomes is not None else 0,
        decided=int(a.decided.sum()),
        errors=int((a.status == ERROR).sum()),
        not_decided=int((a.status == NOT_DECIDED).sum()),
        flagged=states["all"].flagged,
        precision=headline.precision,
        recall=headline.recall,
        block_precision=headline.block_precision,
        block_recall=headline.block_recall,
        legit_fp_rate=headline.legit_fp_rate,
        legit_block_rate=headline.legit_block_rate,
        emergency_calls=int(emergency.sum()),
        emergency_non_allow=int((emergency & np.isin(a.status, NOT_ALLOWED)).sum()),
        campaigns=len(calls.campaign_names),
        unwanted_numbers=detect.numbers,
        never_detected_numbers=detect.never,
        never_detected_share=ratio(detect.never, detect.numbers),
        calls_to_detect_p50=detect.calls_p50,
        calls_to_detect_p90=detect.calls_p90,
        seconds_to_detect_p50=detect.seconds_p50,
        seconds_to_detect_p90=detect.seconds_p90,
        latency_count=len(client),
        latency_p50_ms=p50,
        latency_p90_ms=p90,
        latency_p99_ms=p99,
        latency_p999_ms=p999,
        latency_max_ms=float(client.max()) if len(client) else None,
        server_latency_p99_ms=server_p99,
        degraded_share=ratio(outcomes.degraded, outcomes.decisions) if outcomes is not None else None,
        plots=tuple(plots),
        headline_state=headline_state,
        lead_in_hours=calls.lead_in.hours if calls.lead_in is not None else 0.0,
        lead_in_calls=calls.lead_in.calls if calls.lead_in is not None else 0,
        lead_in_callers=calls.lead_in.callers if calls.lead_in is not None else 0,
        states=states,
    )
