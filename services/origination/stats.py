"""Per-number and per-trunk STIR/SHAKEN statistics in Redis, kept by an agent on calls.setup.v1.

Every call setup is verified again off the call path (same ``Verifier``, the certificate cache
may fetch here, no replay check — a redelivered event is not a replayed PASSporT) at the setup's
own event time, and its outcome is counted in bucketed rings (services.common.windows) over the
last hour and day:

* per caller (``fm:v1:{<pseudonym>}:att``), keyed by the identity the call is attributed to
  (``services.common.identity``: PAI, else From; a withheld caller its trunk's withheld bucket):
  all setups, unsigned, verified A/B/C, failed, pending (certificate unavailable here),
  unsupported — e.g. "share of this caller's calls that arrive unsigned or fail verification";
* per ingress trunk (``fm:v1:{trunk:<digest>}:att``): the same outcomes, withheld callers, and
  calls presenting one of the tenant's own (on-net) numbers from an off-net trunk — so a trunk
  that suddenly starts presenting on-net numbers stands out against its own day.

Each event's two writes are idempotent Lua scripts with their own marker (an event delivered twice
counts once), sent for a whole batch in one pipeline. Records that do not decode go to
``dlq.origination.v1`` with the reason; an unusable (neither a number nor withheld) caller ID
still counts for its trunk.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import faust
import redis.asyncio as aioredis
from faust.types import EventT, StreamT
from redis.exceptions import RedisError

from fraudmesh.v1 import call_pb2, common_pb2, verdicts_pb2
from services.common import keys, windows
from services.common.codec import DecodeError
from services.common.identity import attribute_setup
from services.common.phone import InvalidNumberError
from services.common.pseudonym import Pseudonymizer
from services.common.reasons import Reason
from services.common.streams import DeadLetterWriter, make_faust_app, raw_topic
from services.common.topics import CALLS_SETUP
from services.common.windows import HOUR, MINUTE, Window
from services.origination import metrics
from services.origination.callerid import TenantRules, check_caller_id
from services.origination.passport import ShakenResult, Verifier
from services.origination.settings import OriginationSettings, ShakenSettings

log = logging.getLogger(__name__)

CONSUMER: Final = "origination"
STATS_1H: Final = Window("h", 5 * MINUTE, 12)
STATS_24H: Final = Window("d", HOUR, 24)
STATS_WINDOWS: Final = (STATS_1H, STATS_24H)


class Outcome(enum.Enum):
    """A counter of the statistics hashes; the value is its field prefix."""

    CALLS = "n"
    UNSIGNED = "u"
    ATTEST_A = "a"
    ATTEST_B = "b"
    ATTEST_C = "c"
    FAILED = "f"
    PENDING = "p"
    UNSUPPORTED = "x"
    WITHHELD = "w"  # trunk only: the caller was withheld (counted in its bucket too)
    ONNET_OFFNET = "o"  # trunk only: a tenant's own number presented from an off-net trunk


_ATTEST: Final = {
    common_pb2.ATTESTATION_A: Outcome.ATTEST_A,
    common_pb2.ATTESTATION_B: Outcome.ATTEST_B,
    common_pb2.ATTESTATION_C: Outcome.ATTEST_C,
}
_STATUS: Final = {
    verdicts_pb2.SHAKEN_STATUS_ABSENT: Outcome.UNSIGNED,
    verdicts_pb2.SHAKEN_STATUS_FAILED: Outcome.FAILED,
    verdicts_pb2.SHAKEN_STATUS_PENDING: Outcome.PENDING,
    verdicts_pb2.SHAKEN_STATUS_UNSUPPORTED: Outcome.UNSUPPORTED,
}


def shaken_outcome(result: ShakenResult) -> Outcome:
    """The counter one verification result goes to."""
    if result.status == verdicts_pb2.SHAKEN_STATUS_VERIFIED:
        return _ATTEST.get(result.attestation, Outcome.FAILED)
    return _STATUS.get(result.status, Outcome.FAILED)


# KEYS: marker, stats hash; ARGV: t_ms, then the outcome prefixes to count once each.
COUNT_BODY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', MARKER_TTL) then return 0 end
local t = tonumber(ARGV[1])
for i = 2, #ARGV do
  local p = ARGV[i]
  ring_add(KEYS[2], {{p .. 'h', H_MS, H_SLOTS}, {p .. 'd', D_MS, D_SLOTS}}, t, 1)
end
redis.call('EXPIRE', KEYS[2], STATS_TTL)
return 1
"""


def compile_count_script(marker_ttl_s: int, stats_ttl_s: int) -> str:
    """The counting script with the windows and retention baked in."""
    prelude = (
        f"local MARKER_TTL = {marker_ttl_s}\nlocal STATS_TTL = {stats_ttl_s}\n"
        f"local H_MS = {STATS_1H.bucket_ms}\nlocal H_SLOTS = {STATS_1H.slots}\n"
        f"local D_MS = {STATS_24H.bucket_ms}\nlocal D_SLOTS = {STATS_24H.slots}\n"
    )
    return prelude + windows.RING_ADD + COUNT_BODY


@dataclass(frozen=True, slots=True)
class Observation:
    """One call setup's contribution to the statistics."""

    tenant: str
    call_id: str
    t_ms: int
    caller: str  # pseudonym of the attributed identity (a withheld bucket's too); '' when unusable
    trunk_id: str
    outcome: Outcome
    onnet_offnet: bool
    withheld: bool = False


class AttestationStore:
    """Writes observations idempotently (one pipeline per batch) and reads the counters back."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        marker_ttl_s: int,
        stats_ttl_s: int,
        retry_max_backoff_s: float = 5.0,
    ) -> None:
        self._client = client
        self._count = client.register_script(compile_count_script(marker_ttl_s, stats_ttl_s))
        self._retry_max_backoff_s = retry_max_backoff_s

    async def apply(self, observations: Sequence[Observation]) -> list[bool]:
        """Count a batch in one round trip; True per observation newly counted (not a duplicate).

        Redis errors are retried with capped backoff until they succeed: the partition waits rather
        than skip events, and re-sending is safe because the scripts are idempotent.
        """
        backoff = 0.05
        while True:
            try:
                pipe = self._client.pipeline(transaction=False)
                shape = [await self._queue(pipe, obs) for obs in observations]
                results = await pipe.execute()
                break
            except RedisError as exc:
                log.warning("attestation stats write failed; retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max_backoff_s)
        applied: list[bool] = []
        position = 0
        for size in shape:
            applied.append(any(bool(r) for r in results[position : position + size]))
            position += size
        return applied

    async def _queue(self, pipe: Any, obs: Observation) -> int:
        """Queue the number's and the trunk's scripts; returns how many results they add."""
        queued = 0
        if obs.caller:
            await self._count(
                keys=[
                    keys.seen_key(obs.caller, "att", obs.tenant, obs.call_id),
                    keys.attestation_key(obs.caller),
                ],
                args=[obs.t_ms, Outcome.CALLS.value, obs.outcome.value],
                client=pipe,
            )
            queued += 1
        if obs.trunk_id:
            trunk_outcomes = [Outcome.CALLS.value, obs.outcome.value]
            if obs.withheld:
                trunk_outcomes.append(Outcome.WITHHELD.value)
            if obs.onnet_offnet:
                trunk_outcomes.append(Outcome.ONNET_OFFNET.value)
            await self._count(
                keys=[
                    keys.trunk_seen_key(obs.tenant, obs.trunk_id, obs.call_id),
                    keys.trunk_key(obs.tenant, obs.trunk_id),
                ],
                args=[obs.t_ms, *trunk_outcomes],
                client=pipe,
            )
            queued += 1
        return queued

    async def number_counts(self, pseudonym: str, now_ms: int) -> Counts:
        """A number's counters over the last hour and day."""
        return Counts.of(await self._client.hgetall(keys.attestation_key(pseudonym)), now_ms)

    async def trunk_counts(self, tenant: str, trunk_id: str, now_ms: int) -> Counts:
        """A trunk's counters over the last hour and day."""
        return Counts.of(await self._client.hgetall(keys.trunk_key(tenant, trunk_id)), now_ms)


@dataclass(frozen=True, slots=True)
class Counts:
    """Counters of one number or trunk: {Outcome: (last hour, last day)}."""

    hour: Mapping[Outcome, int]
    day: Mapping[Outcome, int]

    @classmethod
    def of(cls, held: Mapping[Any, Any], now_ms: int) -> Counts:
        """Counts from an HGETALL of a statistics hash as seen at now_ms."""
        hour = {o: windows.ring_count(held, STATS_1H, now_ms, o.value) for o in Outcome}
        day = {o: windows.ring_count(held, STATS_24H, now_ms, o.value) for o in Outcome}
        return cls(hour, day)

    def share(self, outcome: Outcome, last_hour: bool = False) -> float | None:
        """The share of calls with this outcome over the window, None with no calls."""
        counts = self.hour if last_hour else self.day
        calls = counts[Outcome.CALLS]
        return counts[outcome] / calls if calls else None

    def onnet_surge(self, min_calls: int = 20, factor: float = 3.0, floor: float = 0.05) -> bool:
        """True when the last hour's on-net-presented share jumps well above the day's.

        Compares the last hour against the rest of the day (the hour itself excluded), so a trunk
        that always carried such calls (e.g. a ported-out range) does not alarm, and a quiet one
        that suddenly starts does.
        """
        hour_calls = self.hour[Outcome.CALLS]
        if hour_calls < min_calls:
            return False
        hour_share = self.hour[Outcome.ONNET_OFFNET] / hour_calls
        rest_calls = self.day[Outcome.CALLS] - hour_calls
        rest = self.day[Outcome.ONNET_OFFNET] - self.hour[Outcome.ONNET_OFFNET]
        baseline = rest / rest_calls if rest_calls > 0 else 0.0
        return hour_share >= max(floor, factor * baseline)


class Observer:
    """Turns call setups into observations: normalise, pseudonymise, verify at event time, check CLI."""

    def __init__(self, settings: OriginationSettings, verifier: Verifier, rules: RulesByTenant) -> None:
        self._settings = settings
        self._verifier = verifier
        self._rules = rules
        self._pseudonymize = Pseudonymizer(settings.pseudonym_key)

    def observe(self, setup: call_pb2.CallSetup, t_ms: int) -> tuple[Observation, ShakenResult]:
        """The observation for one setup, and the verification result it was counted from."""
        region = self._settings.region_for(setup.tenant)
        shaken = self._verifier.verify(setup, region, now=t_ms / 1000)
        caller, withheld = "", False
        try:
            identity = attribute_setup(setup, region)
            caller, withheld = self._pseudonymize(identity.key), identity.withheld
        except InvalidNumberError:
            pass
        found = check_caller_id(setup, self._rules.get(setup.tenant))
        return (
            Observation(
                tenant=setup.tenant,
                call_id=setup.call_id,
                t_ms=t_ms,
                caller=caller,
                trunk_id=setup.ingress_trunk_id,
                outcome=shaken_outcome(shaken),
                onnet_offnet=Reason.ONNET_CLI_OFFNET_INGRESS in found.reason_codes,
                withheld=withheld,
            ),
            shaken,
        )


class RulesByTenant:
    """TenantRules per tenant, built once from settings (region per tenant, shared ranges and lists)."""

    def __init__(self, settings: ShakenSettings, dno: frozenset[str] = frozenset()) -> None:
        self._settings = settings
        self._dno = dno
        self._rules: dict[str, TenantRules] = {}

    def get(self, tenant: str) -> TenantRules:
        """The rules of one tenant."""
        rules = self._rules.get(tenant)
        if rules is None:
            settings = self._settings
            rules = TenantRules(
                region=settings.region_for(tenant),
                home_ranges=settings.home_ranges,
                risky_ranges=settings.risky_ranges,
                neighbor_digits=settings.neighbor_digits,
                dno=self._dno,
            )
            if len(self._rules) < 10_000:
                self._rules[tenant] = rules
        return rules


def build_stats_app(
    settings: OriginationSettings, observer: Observer, store: AttestationStore, cache: Any
) -> faust.App:
    """The faust app of the attestation statistics agent (one batching agent on calls.setup.v1)."""
    app = make_faust_app(settings, settings.stats_app_id)
    dead_letters = DeadLetterWriter(app, CONSUMER)
    codec = CALLS_SETUP.codec()

    async def to_observation(event: EventT[bytes]) -> Observation | None:
        message = event.message
        try:
            setup = codec.decode(message.value or b"").setup
            stamp = setup.event_time
            t_ms = int(stamp.ToMilliseconds()) if stamp.ByteSize() else int(message.timestamp * 1000)
            observation, shaken = observer.observe(setup, t_ms)
            if shaken.status == verdicts_pb2.SHAKEN_STATUS_PENDING and shaken.x5u:
                await cache.warm([shaken.x5u])  # off the call path: fetch now, then count the real outcome
                observation, _ = observer.observe(setup, t_ms)
            return observation
        except DecodeError as exc:
            await dead_letter(event, exc.reason, exc)
        except Exception as exc:  # a bug must not kill the agent silently or lose the record
            log.exception("call setup could not be counted; dead-lettering it")
            await dead_letter(event, "processing_error", exc)
        return None

    async def dead_letter(event: EventT[bytes], reason: str, error: BaseException) -> None:
        await dead_letters.send(event, reason, error)
        metrics.STATS_DEAD_LETTERS.labels(reason).inc()
        metrics.STATS_EVENTS.labels("dead_lettered").inc()

    @app.agent(raw_topic(app, CALLS_SETUP), name="origination.stats")
    async def setups(stream: StreamT[bytes]) -> None:
        batches = stream.noack_take(settings.stats_batch_size, within=settings.stats_batch_wait_s)  # type: ignore[attr-defined]
        async for batch in batches:
            events: list[EventT[bytes]] = list(batch)
            now = time.time()
            observations: list[Observation] = []
            for event in events:
                metrics.STATS_LAG.observe(max(0.0, now - event.message.timestamp))
                found = await to_observation(event)
                if found is not None:
                    observations.append(found)
            if observations:
                started = time.perf_counter()
                applied = await store.apply(observations)
                metrics.STATS_WRITE_SECONDS.observe(time.perf_counter() - started)
                for ok in applied:
                    metrics.STATS_EVENTS.labels("applied" if ok else "duplicate").inc()
            for event in events:
                await stream.ack(event)

    return app
