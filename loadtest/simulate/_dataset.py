"""``write_dataset``: a simulation's events (presence reports included) in time order, its per-call
and per-number truth, the manifest and the simulated PKI, written as a dataset folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from fraudmesh.v1 import dataset_pb2
from loadtest.simulate._emit import Emitter
from loadtest.simulate._model import Simulation, actor_name, identity_keys, identity_name
from training.dataset import CALLS, EVENTS, NUMBERS, UNWANTED_KINDS, Manifest, RecordWriter

GENERATOR_VERSION = "5"
SETUP, CDR, COMPLAINT, AUDIO, PRESENCE = 0, 1, 2, 3, 4


def write_dataset(sim: Simulation, folder: Path, progress: Callable[[int], None] | None = None) -> Manifest:
    """Emit a simulation as a dataset folder (events, per-call and per-number truth, manifest)."""
    folder.mkdir(parents=True, exist_ok=True)
    s = sim.scenario
    c = sim.calls
    n = len(c)
    started = time.perf_counter()
    emit = Emitter(sim)
    tapped = np.random.default_rng(s.seed + 1).random(n) < s.capture.tap_share
    if s.capture.suspect_tap_share > 0:  # a draw of its own, so scenarios without it keep their bytes
        suspect = np.isin(c.kind, list(UNWANTED_KINDS))
        tapped |= suspect & (np.random.default_rng(s.seed + 2).random(n) < s.capture.suspect_tap_share)
    captured = c.answered & (c.honeypot | tapped)
    complaint_t = np.where(c.complaint_delay_ms >= 0, emit.end_ms + c.complaint_delay_ms, -1)
    complaint_t = np.where(c.honeypot & (complaint_t < 0), c.t + 60_000, complaint_t)
    complaint_t = np.where(emit.keys < 0, -1, complaint_t)  # a withheld caller showed no number
    audio_t = c.t + c.ring_ms + np.minimum(c.duration_ms, 30_000)
    has_complaint = np.flatnonzero(complaint_t >= 0)
    has_audio = np.flatnonzero(captured)
    presence_t = sim.presence.t if sim.presence is not None else np.zeros(0, np.int64)
    all_t = np.concatenate([c.t, emit.end_ms, complaint_t[has_complaint], audio_t[has_audio], presence_t])
    all_kind = np.concatenate(
        [
            np.full(n, SETUP),
            np.full(n, CDR),
            np.full(len(has_complaint), COMPLAINT),
            np.full(len(has_audio), AUDIO),
            np.full(len(presence_t), PRESENCE),
        ]
    )
    all_index = np.concatenate(
        [np.arange(n), np.arange(n), has_complaint, has_audio, np.arange(len(presence_t))]
    )
    order = np.lexsort((all_index, all_kind, all_t))
    kinds = all_kind[order].tolist()
    rows = all_index[order].tolist()
    complaint_at = complaint_t.tolist()
    audio_at = audio_t.tolist()
    counts = {"setups": n, "cdrs": n, "complaints": len(has_complaint), "audio_segments": len(has_audio)}
    if sim.presence is not None:
        counts["presence"] = len(presence_t)
    with RecordWriter(folder / EVENTS) as events:
        write = events.write_bytes
        for step, (kind, i) in enumerate(zip(kinds, rows, strict=True)):
            if kind == SETUP:
                write(emit.setup(i))
            elif kind == CDR:
                write(emit.cdr(i))
            elif kind == COMPLAINT:
                write(emit.complaint(i, complaint_at[i]))
            elif kind == AUDIO:
                write(emit.audio(i, audio_at[i]))
            else:
                write(emit.presence(i))
            if progress is not None and step % 10_000 == 0:
                progress(step)
    with RecordWriter(folder / CALLS) as truth:
        for i in range(n):
            truth.write_bytes(emit.truth(i))
    counts["numbers"] = _write_number_truth(sim, folder / NUMBERS)
    manifest = Manifest(
        scenario=s.name,
        seed=s.seed,
        start_ms=s.start_ms,
        duration_s=s.duration_ms / 1000,
        counts={"calls": n, **counts},
        generator={
            "version": GENERATOR_VERSION,
            "simulate_s": round(sim.generate_s, 3),
            "write_s": round(time.perf_counter() - started, 3),
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        },
    )
    manifest.write(folder)
    sim.pki.write(folder / "pki")
    return manifest


def _write_number_truth(sim: Simulation, path: Path) -> int:
    c = sim.calls
    numbers, first_index, inverse, calls = np.unique(
        identity_keys(sim), return_index=True, return_inverse=True, return_counts=True
    )
    unwanted_kind = np.isin(c.kind, list(UNWANTED_KINDS))
    any_unwanted = np.zeros(len(numbers), np.bool_)
    np.logical_or.at(any_unwanted, inverse, unwanted_kind)
    last_t = np.zeros(len(numbers), np.int64)
    np.maximum.at(last_t, inverse, c.t)
    first_unwanted = np.full(len(numbers), -1, np.int64)
    unwanted_rows = np.flatnonzero(unwanted_kind)[::-1]
    first_unwanted[inverse[unwanted_rows]] = unwanted_rows
    representative = np.where(first_unwanted >= 0, first_unwanted, first_index)
    with RecordWriter(path) as writer:
        for k in range(len(numbers)):
            row = int(representative[k])
            writer.write(
                dataset_pb2.DatasetRecord(
                    time_ms=int(c.t[first_index[k]]),
                    number_truth=dataset_pb2.NumberTruth(
                        number=identity_name(int(numbers[k]), sim),
                        actor_kind=dataset_pb2.ActorKind.ValueType(int(c.kind[row])),
                        actor_id=actor_name(sim.names, int(c.actor[row])),
                        campaign_id=sim.names[int(c.campaign[row])] if c.campaign[row] >= 0 else "",
                        unwanted=bool(any_unwanted[k]),
                        first_used_ms=int(c.t[first_index[k]]),
                        last_used_ms=int(last_t[k]),
                        calls=int(calls[k]),
                    ),
                )
            )
    return len(numbers)
