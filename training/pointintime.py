"""Point-in-time training features: replay a dataset through reputation's and origination's own code.

Events are folded into a scratch Redis database in simulated-time order by the same Lua scripts the
reputation service runs (``NumberStore``), and each call setup is read by the same one-round-trip
read script the decision service uses (``featurestore``). Reads and folds of thousands of events
share one pipeline, queued in event order — the read of a call before its own fold and after every
earlier event's — and Redis runs a pipeline's commands in the order sent, so every row holds exactly
what production would have known at that moment: no second implementation of any feature, no
leakage from the future, and one round trip per batch instead of two per call. The per-event work
that needs no Redis (decoding, number normalisation, SHAKEN verification, context features, building
the update) is a pure function of the event, so worker processes do it in order-preserving chunks
while this process feeds Redis; the rows are identical with any number of workers.

Each call is read under the identity serving reads it by (``services.common.identity``: PAI, else
From, a withheld caller its trunk's bucket) and folded by reputation's own ``Folding`` under the
same key. Origination features come from the origination core itself: its STIR/SHAKEN ``Verifier`` (at the
call's own time, against the dataset's STI-CA and carrier chains, as a warm certificate cache) and
its caller-ID checks (``cli_findings`` is the number of findings).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import multiprocessing
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

import hiredis
import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from cryptography import x509

from fraudmesh.v1 import call_pb2, dataset_pb2
from services.common import features
from services.common.context import ContextRules, fill_context, fill_origination
from services.common.featurestore import READ_FEATURES, fill, parse, read_request
from services.common.identity import CallerIdentity, attribute_setup
from services.common.phone import InvalidNumberError, NormalizedNumber, normalize
from services.common.reasons import Reason
from services.origination.callerid import TenantRules, check_caller_id
from services.origination.certs import CachedChain, ChainValidator
from services.origination.failures import Failure
from services.origination.passport import Verifier
from services.origination.settings import ShakenSettings
from services.origination.verdict import origination_verdict
from services.reputation.folding import Folding
from services.reputation.numbers import NumberStore, Update, VerdictUpdate
from services.reputation.settings import ReputationSettings
from training.audioverdicts import DETECTOR_VERSION, AudioBehaviour, VerdictSynthesiser
from training.dataset import CALLS, EVENTS, Manifest, read_records
from training.pki import ROOT_FILE, read_chains
from training.train import FeatureSet

BATCH_SETUPS: Final[int] = 1_000
PREPARE_CHUNK: Final[int] = 2_000

_SHAKEN: Final[int] = features.INDEX["shaken_status"]
_ATTESTATION: Final[int] = features.INDEX["attestation"]
_CLI_FINDINGS: Final[int] = features.INDEX["cli_findings"]
# Origination's rule for NEIGHBOR_SPOOFING (services.origination.checks): a caller first seen this
# long ago is a real neighbour, and the finding is dropped.
NEIGHBOR_HISTORY_MS: Final[float] = ShakenSettings.neighbor_history_days * 86_400_000


class ScratchDatabaseError(ValueError):
    """The scratch Redis database is not safe to wipe."""


class DatasetChains:
    """A warm certificate cache holding exactly the chains a dataset's simulated carriers publish."""

    def __init__(self, chains: dict[str, CachedChain]) -> None:
        self._chains = chains

    @classmethod
    def load(cls, pki: Path, now: float) -> DatasetChains:
        """Validate every carrier chain under ``pki`` against its STI-CA root, as of ``now``."""
        validator = ChainValidator(x509.load_pem_x509_certificates((pki / ROOT_FILE).read_bytes()))
        return cls({x5u: validator.validate(x5u, certs, now) for x5u, certs in read_chains(pki).items()})

    def get(self, x5u: str, now: float | None = None) -> CachedChain | None:
        """The chain published at ``x5u``, if a carrier of the dataset publishes one there."""
        return self._chains.get(x5u)

    def failure(self, x5u: str, now: float | None = None) -> Failure | None:
        """Any other x5u cannot be fetched (there is no network in a replay)."""
        return None if x5u in self._chains else Failure.CERT_UNAVAILABLE


@dataclass(frozen=True)
class Origination:
    """The origination core as the trainer runs it: SHAKEN verification and caller-ID checks."""

    verifier: Verifier
    rules: TenantRules
    region: str

    def fill(self, vector: npt.NDArray[np.float32], setup: call_pb2.CallSetup) -> bool:
        """Write shaken_status, attestation and cli_findings for one call, verified at its own time,
        through the verdict and ``fill_origination`` the decision service uses. True when the verdict
        counts NEIGHBOR_SPOOFING, which serving drops once the caller's history shows it established
        (``_Batch.flush`` does the same with the point-in-time read)."""
        now = setup.event_time.seconds + setup.event_time.nanos / 1e9
        shaken = self.verifier.verify(setup, self.region, now=now)
        caller_id = check_caller_id(setup, self.rules)
        fill_origination(vector, origination_verdict(shaken, caller_id))
        return Reason.NEIGHBOR_SPOOFING in caller_id.reason_codes


def _number(raw: str, region: str) -> NormalizedNumber | None:
    try:
        return normalize(raw, region, allow_unallocated=True)
    except InvalidNumberError:
        return None


def _identity(setup: call_pb2.CallSetup, region: str) -> CallerIdentity | None:
    try:
        return attribute_setup(setup, region)
    except InvalidNumberError:
        return None


class _CPackedConnection(aioredis.Connection):
    """An asyncio connection that packs commands with hiredis' C packer, as redis-py's sync one does.

    Packing in pure Python is the largest cost of a replay (about 17 arguments per script call);
    the bytes on the wire are the same.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        """One command in RESP, its first argument split on spaces like redis-py does ("SCRIPT LOAD")."""
        head = args[0]
        if isinstance(head, str) and " " in head:
            args = (*head.split(), *args[1:])
        return [hiredis.pack_command(args)]


def scratch_client(url: str) -> aioredis.Redis:
    """An asyncio client for the scratch database, packing commands in C."""
    pool = aioredis.ConnectionPool.from_url(url, connection_class=_CPackedConnection)
    return aioredis.Redis(connection_pool=pool)


class _Batch:
    """One pipeline of folds and reads in event order, with where each read's reply will be."""

    def __init__(self, client: aioredis.Redis, store: NumberStore, read_script: Any) -> None:
        self._client = client
        self._store = store
        self._read = read_script
        self._start()

    def _start(self) -> None:
        self.pipe = self._client.pipeline(transaction=False)
        self.replies = 0
        self.reads: list[tuple[int, int, int, bool]] = []  # (reply position, row, now_ms, neighbor)

    async def fold(self, update: Update) -> None:
        """Queue one event's fold, exactly as NumberStore.apply queues it."""
        # NumberStore.apply would send this on its own pipeline; sharing ours keeps event order.
        self.replies += self._store.queue(self.pipe, update)

    async def read(self, row: int, caller: str, callee: str, now_ms: int, neighbor: bool = False) -> None:
        """Queue the decision service's read of a caller at ``now_ms`` (before the call's own fold)."""
        script_keys, args = read_request(caller, callee, now_ms)
        await self._read(keys=script_keys, args=args, client=self.pipe)
        self.reads.append((self.replies, row, now_ms, neighbor))
        self.replies += 1

    async def fold_linking(self, update: Update, X: npt.NDArray[np.float32]) -> None:  # noqa: N803
        """Fold an audio verdict that names campaigns as the service does: its script, then the
        campaign links and sizes (NumberStore.apply), after everything queued before it."""
        await self.flush(X)
        await self._store.apply([update])

    async def flush(self, X: npt.NDArray[np.float32]) -> None:  # noqa: N803
        """Run the pipeline and write each read's features into its row of ``X``."""
        if self.replies:
            results = await self.pipe.execute()
            for position, row, now_ms, neighbor in self.reads:
                read = parse(results[position], now_ms)
                fill(X[row], read, now_ms)
                if neighbor and read.seen and now_ms - read.first_seen_ms >= NEIGHBOR_HISTORY_MS:
                    X[row, _CLI_FINDINGS] -= 1  # an established caller: not a neighbour spoofer
        self._start()


class Prepared(NamedTuple):
    """One event after the work that needs no Redis: its fold and, for a setup, its row so far."""

    time_ms: int
    update: Update | None  # None: production would dead-letter the record (or it is not folded)
    call_id: str = ""  # set for setups only
    vector: bytes = b""  # the setup's float32 row with context and origination features filled
    caller: str = ""  # pseudonym of the attributed identity; '' when the caller ID is unusable (no read)
    callee: str = ""
    neighbor: bool = False  # the row's cli_findings counts NEIGHBOR_SPOOFING
    audio: bytes = b""  # a captured segment's AudioSegmentMeta (its verdict is synthesised in order)


class Preparer:
    """Everything per event that is a pure function of the event: decode, normalise, pseudonymise,
    context and origination features, the update to fold. Runs in worker processes."""

    def __init__(self, settings: ReputationSettings, rules: ContextRules, pki: Path, start_s: float) -> None:
        self.settings = settings
        self.rules = rules
        self.folding = Folding(settings)
        self.origination = Origination(
            verifier=Verifier(DatasetChains.load(pki, start_s), replay=None),
            rules=TenantRules(rules.region, rules.home_ranges, rules.risky_ranges),
            region=rules.region,
        )

    def prepare(self, raw: bytes) -> Prepared | None:
        """The prepared form of one serialised DatasetRecord (None for records nothing folds)."""
        record = dataset_pb2.DatasetRecord.FromString(raw)
        kind = record.WhichOneof("record")
        if kind == "setup":
            return self._setup(record)
        if kind == "audio":
            try:
                caller = self.folding.caller(record.audio.segment)
            except Exception:  # an unusable caller ID: the service dead-letters its verdict too
                caller = ""
            return Prepared(record.time_ms, None, caller=caller, audio=record.audio.SerializeToString())
        if kind in ("cdr", "complaint"):
            to_update = self.folding.cdr if kind == "cdr" else self.folding.complaint
            try:
                update = to_update(getattr(record, kind).SerializeToString(), record.time_ms)
            except Exception:  # production dead-letters these
                return None
            return Prepared(record.time_ms, update)
        return None

    def _setup(self, record: dataset_pb2.DatasetRecord) -> Prepared:
        setup = record.setup.setup
        region = self.settings.region_for(setup.tenant)
        identity = _identity(setup, region)
        callee = _number(setup.called_number, region)
        vector = features.empty_vector()
        fill_context(vector, setup, identity.number if identity else None, callee, self.rules)
        neighbor = self.origination.fill(vector, setup)
        caller_p = callee_p = ""
        if identity is not None:
            caller_p = self.folding.pseudonymize(identity.key)
            callee_p = self.folding.pseudonymize(callee.canonical) if callee is not None else ""
        try:
            update: Update | None = self.folding.setup(record.setup.SerializeToString(), record.time_ms)
        except Exception:  # production dead-letters these; the row still counts
            update = None
        return Prepared(record.time_ms, update, setup.call_id, vector.tobytes(), caller_p, callee_p, neighbor)


_PREPARER: Preparer | None = None


def _start_worker(settings: ReputationSettings, rules: ContextRules, pki: Path, start_s: float) -> None:
    global _PREPARER  # one Preparer per worker process
    _PREPARER = Preparer(settings, rules, pki, start_s)


def _prepare_chunk(chunk: list[bytes]) -> list[Prepared | None]:
    assert _PREPARER is not None
    return [_PREPARER.prepare(raw) for raw in chunk]


async def _prepared(
    dataset: Path,
    preparer: Preparer,
    settings: ReputationSettings,
    rules: ContextRules,
    start_s: float,
    workers: int,
) -> AsyncIterator[Prepared | None]:
    """Every event of the dataset prepared, in file order; ``workers`` processes share the work."""
    records = (record.SerializeToString() for record in read_records(dataset / EVENTS))
    if workers <= 0:
        for raw in records:
            yield preparer.prepare(raw)
        return
    context = multiprocessing.get_context("fork")
    # A forked worker must never run the destructors of what it inherited (a librdkafka client whose
    # threads it does not have segfaults there): collect now, freeze the survivors for the pool's life.
    gc.collect()
    gc.freeze()
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(settings, rules, dataset / "pki", start_s),
        ) as pool:
            in_flight: deque[asyncio.Future[list[Prepared | None]]] = deque()
            while True:
                chunk = list(itertools.islice(records, PREPARE_CHUNK))
                if chunk:
                    in_flight.append(asyncio.wrap_future(pool.submit(_prepare_chunk, chunk)))
                if in_flight and (not chunk or len(in_flight) > 2 * workers):
                    for prepared in await in_flight.popleft():
                        yield prepared
                if not chunk and not in_flight:
                    return
    finally:
        gc.unfreeze()


async def build(
    dataset: Path,
    scratch_url: str,
    settings: ReputationSettings,
    rules: ContextRules,
    progress: Callable[[int], None] | None = None,
    *,
    batch_setups: int = BATCH_SETUPS,
    workers: int = 0,
) -> FeatureSet:
    """Replay ``dataset`` through reputation into the scratch database and collect one row per setup.

    ``workers`` processes do the per-event work that needs no Redis (0: all in this process); the
    rows are the same either way.
    """
    client = scratch_client(scratch_url)
    db = int(client.connection_pool.connection_kwargs.get("db", 0))
    if db == 0:
        raise ScratchDatabaseError("refusing to wipe Redis database 0; give a dedicated scratch db, e.g. /15")
    manifest = Manifest.read(dataset)
    start_s = manifest.start_ms / 1000
    await client.flushdb()
    store = NumberStore(client)
    await store.load_scripts()  # the folds go out on the batch's own pipeline, as plain EVALSHAs
    batch = _Batch(client, store, client.register_script(READ_FEATURES))
    preparer = Preparer(settings, rules, dataset / "pki", start_s)
    truth = {r.call_truth.call_id: r.call_truth for r in read_records(dataset / CALLS)}
    n = len(truth)
    X = np.full((n, features.WIDTH), np.nan, dtype=np.float32)  # noqa: N806
    labels = np.zeros(n, dtype=np.bool_)
    times = np.zeros(n, dtype=np.int64)
    kinds = np.zeros(n, dtype=np.int32)
    row = 0
    audio = VerdictSynthesiser(AudioBehaviour(), manifest.seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        step = 0
        async for event in _prepared(dataset, preparer, settings, rules, start_s, workers):
            step += 1
            if event is None:
                continue
            for due_ms, verdict in audio.due(event.time_ms):  # folded when the service would have
                await _fold_verdict(batch, preparer.folding, verdict, due_ms, X)
            if event.audio:
                meta = dataset_pb2.AudioSegmentMeta.FromString(event.audio)
                audio.add(meta, event.time_ms, event.caller)
                continue
            if event.call_id:
                X[row] = np.frombuffer(event.vector, dtype=np.float32)
                if event.caller:
                    await batch.read(row, event.caller, event.callee, event.time_ms, event.neighbor)
                call = truth[event.call_id]
                labels[row] = call.unwanted
                times[row] = event.time_ms
                kinds[row] = call.actor_kind
                row += 1
            if event.update is not None:
                await batch.fold(event.update)
            if len(batch.reads) >= batch_setups:
                await batch.flush(X)
                if progress is not None:
                    progress(step)
        for due_ms, verdict in audio.due(2**62):
            await _fold_verdict(batch, preparer.folding, verdict, due_ms, X)
        await batch.flush(X)
    finally:
        await client.flushdb()
        await client.aclose()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return FeatureSet(
        X=X[:row],
        y=labels[:row],
        t_ms=times[:row],
        kinds=kinds[:row],
        manifest={
            "dataset": str(dataset),
            "scenario": manifest.scenario,
            "seed": manifest.seed,
            "files": manifest.files,
            "rows": row,
            "start_ms": manifest.start_ms,
            "duration_s": manifest.duration_s,
            **_holdout_from(manifest),
            "schema_hash": features.SCHEMA_HASH,
            "build_s": round(seconds, 2),
            "rows_per_s": round(row / seconds) if seconds > 0 else 0,
            "cpu_s": round(cpu_seconds, 2),
            "origination": "origination core: SHAKEN Verifier at call time + caller-ID checks",
            "audio": f"verdicts synthesised from segment metadata ({DETECTOR_VERSION}), folded when due",
            "workers": workers,
        },
    )


async def _fold_verdict(
    batch: _Batch,
    folding: Folding,
    verdict: bytes,
    due_ms: int,
    X: npt.NDArray[np.float32],  # noqa: N803
) -> None:
    """Fold one synthesised audio verdict as reputation folds the service's (dead letters skipped)."""
    try:
        update = folding.verdict(verdict, due_ms)
    except Exception:  # production dead-letters it
        return
    if isinstance(update, VerdictUpdate) and update.campaign_ids:
        await batch.fold_linking(update, X)
    else:
        await batch.fold(update)


def _holdout_from(manifest: Manifest) -> dict[str, int]:
    """A dataset generated with a lead-in holds out the scenario's own window (see train.split_by_time)."""
    lead_in_hours = float(manifest.generator.get("lead_in_hours", 0.0))
    if lead_in_hours <= 0:
        return {}
    return {"holdout_from_ms": manifest.start_ms + round(lead_in_hours * 3_600_000)}


def build_sync(
    dataset: Path,
    scratch_url: str,
    settings: ReputationSettings,
    rules: ContextRules,
    progress: Callable[[int], None] | None = None,
    *,
    workers: int = 0,
) -> FeatureSet:
    """``build`` for callers without an event loop."""
    return asyncio.run(build(dataset, scratch_url, settings, rules, progress, workers=workers))
