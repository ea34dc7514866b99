"""Replay report: detection quality, time to detect, emergency safety and Decide latency.

Reads a dataset folder — ground truth in ``calls.fmds`` (and ``numbers.fmds`` when present) plus
the replay's ``outcomes.fmds`` — joins outcomes to calls by call_id, and writes ``report.md``,
PNG plots and ``summary.json`` to an output folder. Calls without an outcome are reported as
"not decided", never dropped. Without ``outcomes.fmds`` (a Kafka-only replay) the report describes
the traffic alone and says that no decisions were recorded. Per-call state lives in numpy arrays
so datasets of a few million calls fit in memory; files are read as streams.
"""

from __future__ import annotations

import argparse
import json
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, PercentFormatter, ScalarFormatter
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fraudmesh.v1 import common_pb2, dataset_pb2
from training.dataset import AUDIO_RUN, CALLS, NUMBERS, OUTCOMES, DatasetError, Manifest, read_records

matplotlib.use("Agg")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Method = Literal["linear", "inverted_cdf"]

REPORT = "report.md"
SUMMARY = "summary.json"
SERVER_BUDGET_MS = 5.0
HOUR_MS = 3_600_000
KIND_SPAN = 1 << 16
EMERGENCY = int(dataset_pb2.ACTOR_KIND_EMERGENCY)

NOT_DECIDED = 0
ALLOW = int(common_pb2.ACTION_ALLOW)
LABEL = int(common_pb2.ACTION_LABEL)
CHALLENGE = int(common_pb2.ACTION_CHALLENGE)
BLOCK = int(common_pb2.ACTION_BLOCK)
ERROR = 5
OTHER_ACTION = 6
N_STATUS = 7
FLAGGED = (LABEL, CHALLENGE, BLOCK)
DECIDED = (ALLOW, LABEL, CHALLENGE, BLOCK, OTHER_ACTION)
NOT_ALLOWED = (*FLAGGED, OTHER_ACTION)
STATUS_ORDER = (ALLOW, LABEL, CHALLENGE, BLOCK, OTHER_ACTION, ERROR, NOT_DECIDED)
STATUS_COLOURS = {
    ALLOW: "#4caf50",
    LABEL: "#fbc02d",
    CHALLENGE: "#fb8c00",
    BLOCK: "#d32f2f",
    OTHER_ACTION: "#795548",
    ERROR: "#7b1fa2",
    NOT_DECIDED: "#bdbdbd",
}
TABLE_ROWS = 40
CALL_TICKS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 100_000, 1_000_000)
TOP_CODES = 15
LISTED_EMERGENCY_FAILURES = 50

console = Console(stderr=True)


def action_name(value: int) -> str:
    """An Action value's name without its ACTION_ prefix (e.g. "BLOCK")."""
    try:
        return common_pb2.Action.Name(common_pb2.Action.ValueType(value)).removeprefix("ACTION_")
    except ValueError:
        return f"ACTION_{value}"


def kind_name(value: int) -> str:
    """An ActorKind value's name without its ACTOR_KIND_ prefix (e.g. "ROBOCALL")."""
    try:
        return dataset_pb2.ActorKind.Name(dataset_pb2.ActorKind.ValueType(value)).removeprefix("ACTOR_KIND_")
    except ValueError:
        return f"KIND_{value}"


def status_name(status: int) -> str:
    """Display name of a per-call outcome status: an action, "error", "other action" or "not decided"."""
    if status == NOT_DECIDED:
        return "not decided"
    if status == ERROR:
        return "error"
    if status == OTHER_ACTION:
        return "other action"
    return action_name(status)


@dataclass(frozen=True)
class ReportSummary:
    """Headline numbers of one report; also written as summary.json for CI and dashboards."""

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

    def to_json(self) -> str:
        """The summary as indented, key-sorted JSON (undefined rates are null)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ReportSummary:
        """Load a summary written by to_json."""
        data: dict[str, Any] = json.loads(text)
        data["plots"] = tuple(data.get("plots", ()))
        return cls(**data)


@dataclass
class _Calls:
    """Ground truth of every call, one array slot per call in file order."""

    ids: dict[str, int]
    kind: IntArray
    unwanted: BoolArray
    spoofed: BoolArray
    synthetic: BoolArray
    time_ms: IntArray
    number: IntArray
    campaign: IntArray
    actor: IntArray
    numbers: int
    actors: int
    campaign_names: list[str]
    emergency: dict[int, str]
    duplicates: int
    other_records: int

    def __len__(self) -> int:
        return len(self.kind)


@dataclass
class _Outcomes:
    """What replay recorded, folded per call (status) and in aggregate."""

    status: npt.NDArray[np.int8]
    records: int = 0
    duplicates: int = 0
    unknown_calls: int = 0
    other_records: int = 0
    client_us: FloatArray = field(default_factory=lambda: np.zeros(0))
    server_us: FloatArray = field(default_factory=lambda: np.zeros(0))
    decisions: int = 0
    degraded: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    degraded_reasons: Counter[str] = field(default_factory=Counter)
    reason_codes: Counter[str] = field(default_factory=Counter)
    flagged_reason_codes: Counter[str] = field(default_factory=Counter)
    emergency: dict[int, tuple[int, str]] = field(default_factory=dict)


@dataclass
class _NumberStats:
    """Aggregates of numbers.fmds per actor kind."""

    records: int
    per_kind: dict[int, tuple[int, int, FloatArray, FloatArray]]


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


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} records"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _stream(path: Path, progress: Progress, total: int | None) -> Iterator[dataset_pb2.DatasetRecord]:
    task = progress.add_task(f"reading {path.name}", total=total)
    count = 0
    for record in read_records(path):
        yield record
        count += 1
        if count & 0x3FFF == 0:
            progress.update(task, completed=count)
    progress.update(task, completed=count, total=count)


def _expected(manifest: Manifest | None, name: str) -> int | None:
    if manifest is None:
        return None
    for key in (name, name.removesuffix(".fmds")):
        value = manifest.counts.get(key)
        if isinstance(value, int):
            return value
    return None


def _read_calls(path: Path, progress: Progress, total: int | None) -> _Calls:
    ids: dict[str, int] = {}
    numbers: dict[str, int] = {}
    actors: dict[str, int] = {}
    campaigns: dict[str, int] = {}
    kind = array("H")
    flags = bytearray()
    time_ms = array("q")
    number = array("l")
    campaign = array("l")
    actor = array("l")
    emergency: dict[int, str] = {}
    duplicates = 0
    other = 0
    for record in _stream(path, progress, total):
        if record.WhichOneof("record") != "call_truth":
            other += 1
            continue
        truth = record.call_truth
        if truth.call_id in ids:
            duplicates += 1
            continue
        index = len(ids)
        ids[truth.call_id] = index
        kind.append(truth.actor_kind)
        flags.append(truth.unwanted | truth.spoofed << 1 | truth.synthetic_voice << 2)
        time_ms.append(truth.setup_time_ms or record.time_ms)
        number.append(numbers.setdefault(truth.presented_number, len(numbers)))
        actor.append(actors.setdefault(truth.actor_id, len(actors)))
        campaign.append(campaigns.setdefault(truth.campaign_id, len(campaigns)) if truth.campaign_id else -1)
        if truth.actor_kind == EMERGENCY:
            emergency[index] = truth.call_id
    bits = np.frombuffer(bytes(flags), dtype=np.uint8)
    return _Calls(
        ids=ids,
        kind=np.array(kind, dtype=np.int64),
        unwanted=(bits & 1).astype(np.bool_),
        spoofed=(bits & 2).astype(np.bool_),
        synthetic=(bits & 4).astype(np.bool_),
        time_ms=np.array(time_ms, dtype=np.int64),
        number=np.array(number, dtype=np.int64),
        campaign=np.array(campaign, dtype=np.int64),
        actor=np.array(actor, dtype=np.int64),
        numbers=len(numbers),
        actors=len(actors),
        campaign_names=list(campaigns),
        emergency=emergency,
        duplicates=duplicates,
        other_records=other,
    )


def _read_outcomes(path: Path, calls: _Calls, progress: Progress, total: int | None) -> _Outcomes:
    status = bytearray(len(calls))
    result = _Outcomes(status=np.zeros(0, dtype=np.int8))
    client = array("d")
    server = array("d")
    for record in _stream(path, progress, total):
        if record.WhichOneof("record") != "outcome":
            result.other_records += 1
            continue
        outcome = record.outcome
        result.records += 1
        index = calls.ids.get(outcome.call_id)
        if index is None:
            result.unknown_calls += 1
            continue
        if outcome.error:
            code = ERROR
            result.errors[outcome.error] += 1
        elif outcome.HasField("decision"):
            decision = outcome.decision
            code = decision.action if decision.action in (ALLOW, LABEL, CHALLENGE, BLOCK) else OTHER_ACTION
            result.decisions += 1
            client.append(outcome.client_latency_us)
            server.append(decision.latency_us)
            result.reason_codes.update(decision.reason_codes)
            if code in FLAGGED:
                result.flagged_reason_codes.update(decision.reason_codes)
            if decision.degraded:
                result.degraded += 1
                result.degraded_reasons.update(decision.degraded_reasons or ["(unspecified)"])
        else:
            code = ERROR
            result.errors["(no decision, no error)"] += 1
        if status[index] != NOT_DECIDED:
            result.duplicates += 1
        status[index] = code
        if index in calls.emergency:
            detail = outcome.error or ", ".join(outcome.decision.reason_codes)
            result.emergency[index] = (code, detail)
    result.status = np.frombuffer(bytes(status), dtype=np.int8)
    result.client_us = np.array(client, dtype=np.float64)
    result.server_us = np.array(server, dtype=np.float64)
    return result


def _read_numbers(path: Path, progress: Progress, total: int | None) -> _NumberStats:
    kinds = array("H")
    unwanted = bytearray()
    per_number_calls = array("d")
    lifetime_h = array("d")
    for record in _stream(path, progress, total):
        if record.WhichOneof("record") != "number_truth":
            continue
        truth = record.number_truth
        kinds.append(truth.actor_kind)
        unwanted.append(truth.unwanted)
        per_number_calls.append(truth.calls)
        lifetime_h.append(max(0, truth.last_used_ms - truth.first_used_ms) / HOUR_MS)
    kind = np.array(kinds, dtype=np.int64)
    bad = np.frombuffer(bytes(unwanted), dtype=np.uint8).astype(np.bool_)
    count_arr = np.array(per_number_calls, dtype=np.float64)
    life_arr = np.array(lifetime_h, dtype=np.float64)
    per_kind: dict[int, tuple[int, int, FloatArray, FloatArray]] = {}
    for value in np.unique(kind):
        mask = kind == value
        per_kind[int(value)] = (int(mask.sum()), int(bad[mask].sum()), count_arr[mask], life_arr[mask])
    return _NumberStats(records=len(kind), per_kind=per_kind)


@dataclass
class _Analysis:
    """Everything derived from calls and outcomes that the markdown, plots and summary need.

    Detection groups (numbers, campaign_detect, campaign_number_detect) cover replayed calls only —
    those with an outcome — so a replay stopped early does not count its unreplayed tail as misses.
    """

    status: npt.NDArray[np.int8]
    replayed: BoolArray
    decided: BoolArray
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


def _analyse(calls: _Calls, outcomes: _Outcomes | None) -> _Analysis:
    n = len(calls)
    status = outcomes.status if outcomes is not None else np.zeros(n, dtype=np.int8)
    replayed = status != NOT_DECIDED
    decided = np.isin(status, DECIDED)
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
    )


def _fmt_int(value: int | float) -> str:
    return f"{int(value):,}"


def _fmt_pct(value: float | None) -> str:
    if value is None:
        return "—"
    percent = 100.0 * value
    if 0 < percent < 0.01:
        return f"{percent:.2g}%"
    return f"{percent:.2f}%"


def _fmt_num(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:
        return "—"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def _fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.3f} ms"


def _fmt_s(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    if value >= 3600:
        return f"{value:,.0f} s ({value / 3600:.1f} h)"
    return f"{value:,.1f} s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return [*lines, ""]


def _plot_traffic(path: Path, calls: _Calls, analysis: _Analysis) -> None:
    hours = (calls.time_ms - analysis.t0_ms) // HOUR_MS
    size = int(hours.max()) + 1
    legit = np.bincount(hours[~calls.unwanted], minlength=size)
    bad = np.bincount(hours[calls.unwanted], minlength=size)
    x = np.arange(size)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    ax.bar(x, legit, width=1.0, align="edge", color="#4c72b0", label="legitimate calls")
    ax.bar(x, bad, width=1.0, align="edge", bottom=legit, color="#c44e52", label="unwanted calls")
    ax.set_title("Offered traffic per simulated hour")
    ax.set_xlabel("simulated hours since the first call")
    ax.set_ylabel("calls per hour")
    ax.legend(loc="upper right")
    fig.savefig(path, dpi=110)


def _plot_action_mix(path: Path, analysis: _Analysis) -> None:
    legit = [k for k in analysis.kinds if k not in analysis.unwanted_kinds]
    bad = [k for k in analysis.kinds if k in analysis.unwanted_kinds]
    positions = [float(i) for i in range(len(legit))] + [len(legit) + 1.0 + i for i in range(len(bad))]
    ordered = legit + bad
    fig = Figure(figsize=(10, 1.6 + 0.45 * len(positions)), layout="constrained")
    ax = fig.subplots()
    left = np.zeros(len(ordered))
    totals = np.array([max(int(analysis.status_counts[k].sum()), 1) for k in ordered], dtype=np.float64)
    for status in STATUS_ORDER:
        share = np.array([analysis.status_counts[k, status] for k in ordered], dtype=np.float64) / totals
        if not share.any():
            continue
        ax.barh(
            positions, share, left=left, height=0.8, color=STATUS_COLOURS[status], label=status_name(status)
        )
        left += share
    ax.set_yticks(
        positions, [f"{kind_name(k)} ({_fmt_int(analysis.status_counts[k].sum())})" for k in ordered]
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    if legit and bad:
        ax.axhline(len(legit), color="black", linewidth=0.8, linestyle="--")
    transform = ax.get_yaxis_transform()
    if legit:
        ax.text(1.01, (len(legit) - 1) / 2, "legitimate", rotation=270, va="center", transform=transform)
    if bad:
        ax.text(
            1.01,
            len(legit) + 1 + (len(bad) - 1) / 2,
            "unwanted",
            rotation=270,
            va="center",
            transform=transform,
        )
    ax.set_title("Action mix per actor kind (share of the kind's calls)")
    ax.set_xlabel("share of calls")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(STATUS_ORDER), frameon=False)
    fig.savefig(path, dpi=110)


def _plot_latency(path: Path, client_us: FloatArray) -> None:
    values = client_us / 1000.0
    p50, p99 = quantiles(values, (50, 99))
    low = max(float(values.min()), 1e-3)
    high = max(float(values.max()), low * 1.5, SERVER_BUDGET_MS * 1.2)
    bins = np.logspace(np.log10(low), np.log10(high), 60)
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.hist(np.clip(values, low, None), bins=bins.tolist(), color="#4c72b0")
    ax.set_xscale("log")
    ax.axvline(p50 or low, color="#2ca02c", linestyle="-", label=f"p50 {_fmt_ms(p50)}")
    ax.axvline(p99 or low, color="#ff7f0e", linestyle="-", label=f"p99 {_fmt_ms(p99)}")
    ax.axvline(
        SERVER_BUDGET_MS, color="#d62728", linestyle="--", label=f"server budget {SERVER_BUDGET_MS:g} ms"
    )
    ax.set_title(f"Decide client latency ({_fmt_int(len(values))} decisions)")
    ax.set_xlabel("client-measured latency (ms, log scale)")
    ax.set_ylabel("decisions")
    ax.legend(loc="upper right")
    fig.savefig(path, dpi=110)


def _plot_time_to_detect(path: Path, analysis: _Analysis) -> None:
    groups = analysis.numbers
    kinds = groups.key % KIND_SPAN
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.subplots()
    longest = max(int(groups.detect_calls.max()), 2)
    for value in np.unique(kinds):
        mask = kinds == value
        total = int(mask.sum())
        found = np.sort(groups.detect_calls[mask & groups.detected])
        xs = np.r_[1, found, longest]
        ys = np.r_[0.0, np.arange(1, len(found) + 1) / total, len(found) / total]
        never = 1 - len(found) / total
        ax.step(xs, ys, where="post", label=f"{kind_name(int(value))} ({total:,} numbers, {never:.0%} never)")
    ax.set_xscale("log")
    ax.set_xlim(1, longest)
    ax.set_xticks([t for t in CALL_TICKS if t <= longest])
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Calls to detect per unwanted presented number (CDF; plateau = share ever flagged)")
    ax.set_xlabel("calls from the number until its first flagged call (log scale)")
    ax.set_ylabel("share of numbers detected")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small", frameon=False)
    fig.savefig(path, dpi=110)


def _plot_flagged_over_time(path: Path, calls: _Calls, analysis: _Analysis) -> None:
    hours = (calls.time_ms - analysis.t0_ms) // HOUR_MS
    size = int(hours.max()) + 1
    bad = calls.unwanted
    legit = ~calls.unwanted
    x = np.arange(size)
    marker = "o" if size <= 48 else None

    def per_hour(mask: BoolArray) -> IntArray:
        return np.bincount(hours[mask], minlength=size).astype(np.int64)

    fig = Figure(figsize=(10, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(x, per_hour(bad), marker=marker, color="#c44e52", label="unwanted calls")
    top.plot(
        x, per_hour(bad & analysis.flagged), marker=marker, color="#2ca02c", label="unwanted calls flagged"
    )
    top.plot(
        x,
        per_hour(bad & analysis.blocked),
        marker=marker,
        color="#1f77b4",
        linestyle="--",
        label="unwanted calls blocked",
    )
    top.set_title("Unwanted calls caught per simulated hour")
    top.set_ylabel("calls per hour")
    top.legend(loc="upper right", fontsize="small")
    bottom.plot(
        x,
        per_hour(legit & analysis.flagged),
        marker=marker,
        color="#ff7f0e",
        label="legitimate calls flagged (FP)",
    )
    bottom.plot(
        x,
        per_hour(legit & analysis.blocked),
        marker=marker,
        color="#d62728",
        label="legitimate calls blocked",
    )
    bottom.set_title("Legitimate calls flagged per simulated hour (false positives)")
    bottom.set_xlabel("simulated hours since the first call")
    bottom.set_ylabel("calls per hour")
    bottom.legend(loc="upper right", fontsize="small")
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=110)


def _write_plots(
    out: Path, calls: _Calls, outcomes: _Outcomes | None, analysis: _Analysis, enabled: bool
) -> tuple[list[str], dict[str, str]]:
    decided = outcomes is not None and bool(analysis.decided.any() or outcomes.errors)
    latency = outcomes.client_us if outcomes is not None else np.zeros(0)
    plans: list[tuple[str, str | None, Callable[[Path], None]]] = [
        ("traffic.png", None if len(calls) else "no calls", lambda p: _plot_traffic(p, calls, analysis)),
        (
            "action_mix.png",
            None if decided else "no decisions were recorded",
            lambda p: _plot_action_mix(p, analysis),
        ),
        (
            "latency.png",
            None if len(latency) else "no successful Decide calls were recorded",
            lambda p: _plot_latency(p, latency),
        ),
        (
            "time_to_detect.png",
            None if decided and len(analysis.numbers.key) else "no decisions on unwanted numbers",
            lambda p: _plot_time_to_detect(p, analysis),
        ),
        (
            "flagged_over_time.png",
            None if decided else "no decisions were recorded",
            lambda p: _plot_flagged_over_time(p, calls, analysis),
        ),
    ]
    written: list[str] = []
    skipped: dict[str, str] = {}
    for name, reason, draw in plans:
        if not enabled:
            reason = "plots were disabled"
        if reason is None:
            draw(out / name)
            written.append(name)
        else:
            (out / name).unlink(missing_ok=True)
            skipped[name] = reason
    return written, skipped


def _image(name: str, title: str, written: list[str], skipped: dict[str, str]) -> list[str]:
    if name in written:
        return [f"![{title}]({name})", ""]
    return [f"_No {title.lower()} plot: {skipped.get(name, 'no data')}._", ""]


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
    legit = ~unwanted
    decided_bad = int((a.decided & unwanted).sum())
    decided_legit = int((a.decided & legit).sum())
    flagged = int(a.flagged.sum())
    blocked = int(a.blocked.sum())
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
        legit_calls=int(legit.sum()),
        has_outcomes=has_outcomes,
        outcomes=outcomes.records if outcomes is not None else 0,
        decided=int(a.decided.sum()),
        errors=int((a.status == ERROR).sum()),
        not_decided=int((a.status == NOT_DECIDED).sum()),
        flagged=flagged,
        precision=ratio(int((a.flagged & unwanted).sum()), flagged),
        recall=ratio(int((a.flagged & unwanted).sum()), decided_bad),
        block_precision=ratio(int((a.blocked & unwanted).sum()), blocked),
        block_recall=ratio(int((a.blocked & unwanted).sum()), decided_bad),
        legit_fp_rate=ratio(int((a.flagged & legit).sum()), decided_legit),
        legit_block_rate=ratio(int((a.blocked & legit).sum()), decided_legit),
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
    )


def _header(dataset: Path, manifest: Manifest | None) -> list[str]:
    lines = ["# fraudmesh replay report", ""]
    if manifest is None:
        lines.append(f"Dataset `{dataset}` (manifest.json missing or unreadable).")
    else:
        start = datetime.fromtimestamp(manifest.start_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(
            f"Dataset `{dataset}`: scenario `{manifest.scenario}`, seed {manifest.seed}, "
            f"{manifest.duration_s / 3600:,.1f} simulated hours from {start}."
        )
    return [*lines, ""]


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
    rows = [
        ["calls", f"{s.calls:,} ({_fmt_pct(ratio(s.unwanted_calls, s.calls))} unwanted)"],
        ["campaigns", f"{s.campaigns:,}"],
        ["emergency calls", f"{s.emergency_calls:,}"],
    ]
    if s.has_outcomes:
        rows += [
            [
                "decided",
                f"{s.decided:,} ({_fmt_pct(ratio(s.decided, s.calls))}); errors {s.errors:,}; "
                f"not decided {s.not_decided:,}",
            ],
            ["precision (flagged = LABEL, CHALLENGE or BLOCK)", _fmt_pct(s.precision)],
            ["recall (flagged)", _fmt_pct(s.recall)],
            ["precision / recall at BLOCK", f"{_fmt_pct(s.block_precision)} / {_fmt_pct(s.block_recall)}"],
            ["legitimate calls flagged (false-positive rate)", _fmt_pct(s.legit_fp_rate)],
            ["legitimate calls blocked", _fmt_pct(s.legit_block_rate)],
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
            [
                "Decide client latency p50 / p99 / p99.9",
                f"{_fmt_ms(s.latency_p50_ms)} / {_fmt_ms(s.latency_p99_ms)} / {_fmt_ms(s.latency_p999_ms)}",
            ],
            ["degraded decisions", _fmt_pct(s.degraded_share)],
        ]
    lines += _table(["metric", "value"], rows)
    if s.has_outcomes:
        lines += [
            "Precision, recall and false-positive rates are over decided calls; errored and "
            "undecided calls are counted separately (see *Actions per actor kind*). " + coverage,
            "",
        ]
    return lines


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
    overall = [
        [
            "flagged (LABEL, CHALLENGE or BLOCK)",
            f"{summary.flagged:,}",
            f"{tp:,}",
            _fmt_pct(summary.precision),
            _fmt_pct(summary.recall),
            _fmt_pct(summary.legit_fp_rate),
        ],
        [
            "BLOCK only",
            f"{int(a.blocked.sum()):,}",
            f"{tp_block:,}",
            _fmt_pct(summary.block_precision),
            _fmt_pct(summary.block_recall),
            _fmt_pct(summary.legit_block_rate),
        ],
    ]
    return [
        "## Detection quality",
        "",
        "Against the ground-truth label `unwanted`, over decided calls. Blocking a legitimate caller "
        "(a courier, a bank alert) is far worse than labelling one, so BLOCK is scored on its own.",
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
    if stats.records != calls.numbers:
        lines += [
            f"numbers.fmds lists {stats.records:,} numbers; calls.fmds presents {calls.numbers:,} "
            "distinct ones.",
            "",
        ]
    return lines


def _fmt_score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


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
        f"audio.segments.v1; {_fmt_int(audio['verdicts'])} verdicts came back on audio.verdicts.v1, "
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
        if outcomes.unknown_calls:
            notes.append(
                f"{outcomes.unknown_calls:,} outcomes name a call_id that is not in calls.fmds; ignored."
            )
        if outcomes.other_records:
            notes.append(f"{outcomes.other_records:,} records in outcomes.fmds were not outcomes; ignored.")
    if not notes:
        return []
    return ["## Data notes", "", *(f"- {n}" for n in notes), ""]


def build_report(dataset: Path, out: Path, *, plots: bool = True) -> ReportSummary:
    """Join ground truth with replay outcomes and write report.md, PNG plots and summary.json to out.

    plots=False skips the PNGs (the slowest part on small datasets); the markdown says so.
    """
    if not (dataset / CALLS).exists():
        raise DatasetError(f"{dataset}: no {CALLS}; not a dataset folder")
    try:
        manifest: Manifest | None = Manifest.read(dataset)
    except DatasetError:
        manifest = None
    outcomes_path = dataset / OUTCOMES
    with _progress() as progress:
        calls = _read_calls(dataset / CALLS, progress, _expected(manifest, CALLS))
        outcomes = (
            _read_outcomes(outcomes_path, calls, progress, _expected(manifest, OUTCOMES))
            if outcomes_path.exists()
            else None
        )
        numbers = (
            _read_numbers(dataset / NUMBERS, progress, _expected(manifest, NUMBERS))
            if (dataset / NUMBERS).exists()
            else None
        )
    analysis = _analyse(calls, outcomes)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = _write_plots(out, calls, outcomes, analysis, plots)
    summary = _summarise(dataset, manifest, calls, outcomes, analysis, written)
    decided = outcomes if outcomes is not None and outcomes.records else None
    lines = [
        *_header(dataset, manifest),
        *_emergency_failures(decided),
        *_headline(summary, outcomes_path.exists(), _coverage(calls, analysis)),
        *_traffic_section(calls, analysis, written, skipped),
    ]
    if decided is not None:
        lines += [
            *_actions_section(analysis, written, skipped),
            *_quality_section(calls, analysis, summary),
            *_detect_section(analysis, written, skipped),
        ]
    if decided is None and skipped:
        lines += [f"_Plots omitted: {', '.join(f'{n} ({r})' for n, r in skipped.items())}._", ""]
    lines += _campaign_section(calls, analysis, decided is not None)
    lines += _emergency_section(calls, decided, analysis)
    if decided is not None:
        lines += [
            *_latency_section(decided, written, skipped),
            *_codes_section(decided),
            "## Over simulated time",
            "",
            *_image("flagged_over_time.png", "Flagged over time", written, skipped),
        ]
    lines += _audio_section(dataset)
    if numbers is not None:
        lines += _numbers_section(numbers, calls)
    lines += _notes(calls, outcomes)
    (out / REPORT).write_text("\n".join(lines).rstrip() + "\n")
    (out / SUMMARY).write_text(summary.to_json())
    return summary


def main(argv: list[str] | None = None) -> int:
    """CLI: write the report for --dataset into --out; exit 1 when an emergency call was not allowed."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtest report",
        description="Detection quality, time to detect, emergency safety and Decide latency of a replay.",
    )
    parser.add_argument(
        "--dataset", type=Path, required=True, help="dataset folder (calls.fmds, outcomes.fmds)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for report.md, PNG plots, summary.json"
    )
    parser.add_argument("--no-plots", action="store_true", help="write report.md and summary.json only")
    args = parser.parse_args(argv)
    try:
        summary = build_report(args.dataset, args.out, plots=not args.no_plots)
    except DatasetError as exc:
        console.print(str(exc), style="red", markup=False, soft_wrap=True)
        return 2
    console.print(f"report written to {args.out / REPORT}", markup=False, soft_wrap=True)
    if not summary.has_outcomes:
        console.print("[yellow]no decisions were recorded; the report describes the traffic only")
    else:
        console.print(
            f"precision {_fmt_pct(summary.precision)}, recall {_fmt_pct(summary.recall)}, "
            f"legitimate FP {_fmt_pct(summary.legit_fp_rate)}, "
            f"legitimate BLOCK {_fmt_pct(summary.legit_block_rate)}, "
            f"Decide p99 {_fmt_ms(summary.latency_p99_ms)}",
            soft_wrap=True,
        )
    if summary.emergency_non_allow:
        console.print(
            f"[bold red]FAILURE: {summary.emergency_non_allow:,} emergency call(s) were not allowed"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
