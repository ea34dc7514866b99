"""Reading a dataset folder: calls.fmds, outcomes.fmds and numbers.fmds streamed into per-call arrays.

Only the scored window's calls become array slots; a lead-in's calls (before ``scored_from_ms``)
were folded by reputation and never scored, so they are only counted, and their callers mark the
scored calls that meet a warm reputation (``_Calls.warm``).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress

from fraudmesh.v1 import dataset_pb2
from loadtest.report._codes import (
    ALLOW,
    BLOCK,
    CHALLENGE,
    EMERGENCY,
    ERROR,
    FLAGGED,
    HOUR_MS,
    LABEL,
    NOT_DECIDED,
    OTHER_ACTION,
    BoolArray,
    FloatArray,
    IntArray,
)
from services.common.progress import progress_bar
from services.common.reasons import Reason
from services.decision.degraded import Degraded
from training.dataset import Manifest, read_records

console = Console(stderr=True)
WITHOUT_REPUTATION = frozenset(
    {Degraded.REDIS_TIMEOUT, Degraded.REDIS_UNAVAILABLE, Degraded.REDIS_SKIPPED_LATE, Degraded.DECISION_ERROR}
)  # degraded causes of a decision made without the caller's reputation
PROOF_CODES = (
    Reason.ONNET_NUMBER_NOT_ROAMING,
    Reason.CALLER_BUSY_ELSEWHERE,
    Reason.IMPERSONATES_CONTACT,
)  # the presence proof rules' reason codes; bit i of ``_Outcomes.proofs`` is PROOF_CODES[i]


def lead_in_hours(manifest: Manifest) -> float:
    """The hours of history a dataset was generated with before its scenario (``--lead-in-hours``)."""
    return float(manifest.generator.get("lead_in_hours", 0.0))


def scored_from_ms(manifest: Manifest) -> int:
    """The first scored moment of a dataset: its start plus its lead-in."""
    return manifest.start_ms + round(lead_in_hours(manifest) * HOUR_MS)


@dataclass
class _LeadIn:
    """The history before the scored window: folded by reputation, never scored."""

    hours: float
    calls: int = 0
    unwanted: int = 0
    callers: int = 0
    only_numbers: int = 0  # callers of the lead-in that made no scored call
    per_kind: Counter[int] = field(default_factory=Counter)
    call_ids: set[str] = field(default_factory=set)


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
    warm: BoolArray  # the caller made a call in the lead-in (all False without one)
    lead_in: _LeadIn | None = None
    roaming: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))  # placed abroad
    presented_on_net: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))

    def __len__(self) -> int:
        return len(self.kind)


@dataclass
class _Outcomes:
    """What replay recorded, folded per call (status) and in aggregate."""

    status: npt.NDArray[np.int8]
    records: int = 0
    duplicates: int = 0
    unknown_calls: int = 0
    lead_in_calls: int = 0  # outcomes of lead-in calls (a replay that scored its lead-in); ignored
    other_records: int = 0
    client_us: FloatArray = field(default_factory=lambda: np.zeros(0))
    server_us: FloatArray = field(default_factory=lambda: np.zeros(0))
    decisions: int = 0
    degraded: int = 0
    no_reputation: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))  # per call
    proofs: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, dtype=np.uint8))  # per call
    # per call: NO_ROAMING_INDICATION among the reasons; an ALLOW that carried a label ("International call")
    no_roaming: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    allow_labelled: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
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


def _progress() -> Progress:
    return progress_bar(console, transient=True, terminal_only=True)


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


def _read_calls(
    path: Path, progress: Progress, total: int | None, manifest: Manifest | None = None
) -> _Calls:
    """Ground truth of the scored calls. With a lead-in (in the manifest), calls set up before
    ``scored_from_ms`` are counted into ``_Calls.lead_in`` instead, and their callers make scored
    calls warm."""
    hours = lead_in_hours(manifest) if manifest is not None else 0.0
    lead_in = _LeadIn(hours) if hours > 0 else None
    scored_from = scored_from_ms(manifest) if manifest is not None else 0
    history: set[str] = set()
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
        setup_ms = truth.setup_time_ms or record.time_ms
        if lead_in is not None and setup_ms < scored_from:
            if truth.call_id not in lead_in.call_ids:
                lead_in.call_ids.add(truth.call_id)
                lead_in.calls += 1
                lead_in.unwanted += truth.unwanted
                lead_in.per_kind[truth.actor_kind] += 1
                history.add(truth.presented_number)
            else:
                duplicates += 1
            continue
        index = len(ids)
        ids[truth.call_id] = index
        kind.append(truth.actor_kind)
        flags.append(
            truth.unwanted
            | truth.spoofed << 1
            | truth.synthetic_voice << 2
            | truth.roaming << 3
            | truth.presented_on_net << 4
        )
        time_ms.append(setup_ms)
        number.append(numbers.setdefault(truth.presented_number, len(numbers)))
        actor.append(actors.setdefault(truth.actor_id, len(actors)))
        campaign.append(campaigns.setdefault(truth.campaign_id, len(campaigns)) if truth.campaign_id else -1)
        if truth.actor_kind == EMERGENCY:
            emergency[index] = truth.call_id
    bits = np.frombuffer(bytes(flags), dtype=np.uint8)
    number_arr = np.array(number, dtype=np.int64)
    warm = np.isin(number_arr, np.array([numbers[n] for n in history if n in numbers], dtype=np.int64))
    if lead_in is not None:
        lead_in.callers = len(history)
        lead_in.only_numbers = len(history - numbers.keys())
    return _Calls(
        ids=ids,
        kind=np.array(kind, dtype=np.int64),
        unwanted=(bits & 1).astype(np.bool_),
        spoofed=(bits & 2).astype(np.bool_),
        synthetic=(bits & 4).astype(np.bool_),
        time_ms=np.array(time_ms, dtype=np.int64),
        number=number_arr,
        campaign=np.array(campaign, dtype=np.int64),
        actor=np.array(actor, dtype=np.int64),
        numbers=len(numbers),
        actors=len(actors),
        campaign_names=list(campaigns),
        emergency=emergency,
        duplicates=duplicates,
        other_records=other,
        warm=warm,
        lead_in=lead_in,
        roaming=(bits & 8).astype(np.bool_),
        presented_on_net=(bits & 16).astype(np.bool_),
    )


def _read_outcomes(path: Path, calls: _Calls, progress: Progress, total: int | None) -> _Outcomes:
    status = bytearray(len(calls))
    no_reputation = bytearray(len(calls))
    proofs = bytearray(len(calls))
    no_roaming = bytearray(len(calls))
    allow_labelled = bytearray(len(calls))
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
        proof = 0
        if index is None:
            if calls.lead_in is not None and outcome.call_id in calls.lead_in.call_ids:
                result.lead_in_calls += 1
            else:
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
            if decision.reason_codes:
                held = decision.reason_codes
                proof = sum(1 << bit for bit, reason in enumerate(PROOF_CODES) if reason in held)
                no_roaming[index] = Reason.NO_ROAMING_INDICATION in held
            allow_labelled[index] = code == ALLOW and bool(decision.label)
            if decision.degraded:
                result.degraded += 1
                result.degraded_reasons.update(decision.degraded_reasons or ["(unspecified)"])
        else:
            code = ERROR
            result.errors["(no decision, no error)"] += 1
        if status[index] != NOT_DECIDED:
            result.duplicates += 1
        status[index] = code
        proofs[index] = proof
        no_reputation[index] = code != ERROR and not WITHOUT_REPUTATION.isdisjoint(
            outcome.decision.degraded_reasons
        )
        if index in calls.emergency:
            detail = outcome.error or ", ".join(outcome.decision.reason_codes)
            result.emergency[index] = (code, detail)
    result.status = np.frombuffer(bytes(status), dtype=np.int8)
    result.no_reputation = np.frombuffer(bytes(no_reputation), dtype=np.bool_)
    result.proofs = np.frombuffer(bytes(proofs), dtype=np.uint8)
    result.no_roaming = np.frombuffer(bytes(no_roaming), dtype=np.bool_)
    result.allow_labelled = np.frombuffer(bytes(allow_labelled), dtype=np.bool_)
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
