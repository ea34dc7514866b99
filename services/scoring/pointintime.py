"""Point-in-time training features: replay a dataset through reputation's own update code.

Events are folded into a scratch Redis database in simulated-time order by the same Lua scripts the
reputation service runs (services.reputation.numbers), and each call setup is read, just before its
own fold, by the same one-round-trip read the decision service uses (services.common.featurestore).
So every training row holds exactly what production would have known at that moment — no second
implementation of any feature, no leakage from the future.

Origination features come from a provisional stand-in until the origination service's verifier
exists: a call carrying an Identity header counts as VERIFIED with the attestation its claims state
(the simulator's chain is valid), one without counts as ABSENT; caller-ID findings stay unknown.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from fraudmesh.v1 import call_pb2, common_pb2, verdicts_pb2
from loadtest.dataset import CALLS, EVENTS, Manifest, read_records
from services.common import features
from services.common.context import ContextRules, fill_context
from services.common.featurestore import FeatureReader, fill
from services.common.phone import InvalidNumberError, NormalizedNumber, normalize
from services.reputation.agents import Folding
from services.reputation.numbers import NumberStore, Update
from services.reputation.settings import ReputationSettings
from services.scoring.train import FeatureSet

ATTEST = {"A": common_pb2.ATTESTATION_A, "B": common_pb2.ATTESTATION_B, "C": common_pb2.ATTESTATION_C}


class ScratchDatabaseError(ValueError):
    """The scratch Redis database is not safe to wipe."""


def provisional_origination(setup: call_pb2.CallSetup, vector: npt.NDArray[np.float32]) -> None:
    """Fill shaken_status and attestation from the Identity header's claims (see module doc)."""
    if not setup.identity_headers:
        vector[features.INDEX["shaken_status"]] = verdicts_pb2.SHAKEN_STATUS_ABSENT
        vector[features.INDEX["attestation"]] = common_pb2.ATTESTATION_UNSPECIFIED
        return
    try:
        claims_b64 = setup.identity_headers[0].split(";", 1)[0].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4)))
        attest = ATTEST.get(str(claims.get("attest")), common_pb2.ATTESTATION_UNSPECIFIED)
    except (IndexError, ValueError):
        vector[features.INDEX["shaken_status"]] = verdicts_pb2.SHAKEN_STATUS_FAILED
        return
    vector[features.INDEX["shaken_status"]] = verdicts_pb2.SHAKEN_STATUS_VERIFIED
    vector[features.INDEX["attestation"]] = attest


def _number(raw: str, region: str) -> NormalizedNumber | None:
    try:
        return normalize(raw, region, allow_unallocated=True)
    except InvalidNumberError:
        return None


async def build(
    dataset: Path,
    scratch_url: str,
    settings: ReputationSettings,
    rules: ContextRules,
    progress: Callable[[int], None] | None = None,
) -> FeatureSet:
    """Replay ``dataset`` through reputation into the scratch database and collect one row per setup."""
    client = aioredis.Redis.from_url(scratch_url)
    db = int(client.connection_pool.connection_kwargs.get("db", 0))
    if db == 0:
        raise ScratchDatabaseError("refusing to wipe Redis database 0; give a dedicated scratch db, e.g. /15")
    await client.flushdb()
    store = NumberStore(client)
    reader = FeatureReader(client)
    folding = Folding(settings)
    truth = {r.call_truth.call_id: r.call_truth for r in read_records(dataset / CALLS)}
    rows: list[npt.NDArray[np.float32]] = []
    labels: list[bool] = []
    times: list[int] = []
    kinds: list[int] = []
    pending: list[Update] = []
    started = time.perf_counter()
    try:
        for step, record in enumerate(read_records(dataset / EVENTS)):
            kind = record.WhichOneof("record")
            if kind == "setup":
                setup = record.setup.setup
                if pending:
                    await store.apply(pending)
                    pending.clear()
                region = settings.region_for(setup.tenant)
                caller = _number(setup.calling_number, region)
                callee = _number(setup.called_number, region)
                vector = features.empty_vector()
                fill_context(vector, setup, caller, callee, rules)
                provisional_origination(setup, vector)
                if caller is not None:
                    caller_p = folding.pseudonymize(caller.canonical)
                    callee_p = folding.pseudonymize(callee.canonical) if callee is not None else ""
                    fill(vector, await reader.read(caller_p, callee_p, record.time_ms), record.time_ms)
                call = truth[setup.call_id]
                rows.append(vector)
                labels.append(call.unwanted)
                times.append(record.time_ms)
                kinds.append(call.actor_kind)
                value = record.setup.SerializeToString()
                try:
                    pending.append(folding.setup(value, record.time_ms))
                except Exception:  # noqa: S112 - production dead-letters these; the row still counts
                    continue
            elif kind in ("cdr", "complaint"):
                message = getattr(record, kind)
                to_update = folding.cdr if kind == "cdr" else folding.complaint
                try:
                    pending.append(to_update(message.SerializeToString(), record.time_ms))
                except Exception:  # noqa: S112 - production dead-letters these
                    continue
            if progress is not None and step % 5_000 == 0:
                progress(step)
        if pending:
            await store.apply(pending)
    finally:
        await client.flushdb()
        await client.aclose()
    manifest = Manifest.read(dataset)
    return FeatureSet(
        X=np.vstack(rows) if rows else np.zeros((0, features.WIDTH), np.float32),
        y=np.asarray(labels, dtype=np.bool_),
        t_ms=np.asarray(times, dtype=np.int64),
        kinds=np.asarray(kinds, dtype=np.int32),
        manifest={
            "dataset": str(dataset),
            "scenario": manifest.scenario,
            "seed": manifest.seed,
            "files": manifest.files,
            "rows": len(rows),
            "schema_hash": features.SCHEMA_HASH,
            "build_s": round(time.perf_counter() - started, 2),
            "origination": "provisional: header presence and claimed attestation",
        },
    )


def build_sync(
    dataset: Path,
    scratch_url: str,
    settings: ReputationSettings,
    rules: ContextRules,
    progress: Callable[[int], None] | None = None,
) -> FeatureSet:
    """``build`` for callers without an event loop."""
    return asyncio.run(build(dataset, scratch_url, settings, rules, progress))
