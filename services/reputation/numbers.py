"""Per-number state in Redis, folded in idempotently: an event delivered twice counts once.

Each event is one Lua script on the number's own slot that sets the event's idempotency marker and
applies every update atomically, so a crash can neither lose nor double an event. Scripts for many
events are sent in one round trip per batch (``services.common.redisbatch``: packed by hiredis, no
``SCRIPT EXISTS`` round trip). The same code folds a dataset for the trainer, so training features
are computed exactly as production computes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common import keys, redisbatch
from services.common.pseudonym import opaque_id
from services.common.windows import DISTINCT_1H, DISTINCT_24H
from services.reputation.scripts import (
    CDRS_BODY,
    COMPLAINT_BODY,
    INBOUND_BODY,
    LINK_BODY,
    MERGE_BODY,
    PRESENCE_BODY,
    RAISE_BODY,
    SETUPS_BODY,
    VERDICT_BODY,
    Retention,
    compile_script,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


MAX_MERGE_HOPS = 8
DEFAULT_RETENTION = Retention()

Position = tuple[int, int]
"""A record's (partition, offset) on its Kafka topic: what makes folding it idempotent."""


@dataclass(frozen=True)
class SetupUpdate:
    """One call setup to fold in: caller, callee (digest, may be empty), time, identity."""

    caller: str
    callee: str
    tenant: str
    call_id: str
    t_ms: int
    summary: str = ""  # the audited decision for the caller's recent list (services.common.recent)
    at: Position | None = None  # (partition, offset) on its topic; None folds unconditionally
    on_net: bool = False  # the carrier's own authenticated subscriber: full state from its first call


@dataclass(frozen=True)
class CdrUpdate:
    """One CDR to fold in for the calling number."""

    caller: str
    tenant: str
    call_id: str
    setup_ms: int
    end_ms: int
    answered: bool
    duration_ms: int
    at: Position | None = None  # (partition, offset) on its topic; None folds unconditionally


@dataclass(frozen=True)
class ComplaintUpdate:
    """One complaint about the reported number."""

    reported: str
    tenant: str
    complaint_id: str
    t_ms: int
    fraud: bool
    honeypot: bool
    at: Position | None = None  # (partition, offset) on its topic; None folds unconditionally


@dataclass(frozen=True)
class VerdictUpdate:
    """One audio verdict about the calling number."""

    caller: str
    tenant: str
    segment_id: str
    synthetic: float | None
    bot: float | None
    campaign_ids: tuple[str, ...]
    earlier_members: tuple[str, ...] = ()  # pseudonyms heard playing the campaign before discovery
    at: Position | None = None  # (partition, offset) on its topic; None folds unconditionally


@dataclass(frozen=True)
class PresenceUpdate:
    """One presence report about a home subscriber (``state``: a PresenceState value, 1 to 5)."""

    number: str
    tenant: str
    event_id: str
    t_ms: int
    state: int
    country: str = ""  # ROAMING only
    call_id: str = ""  # IN_CALL and CALL_ENDED only


Update = SetupUpdate | CdrUpdate | ComplaintUpdate | VerdictUpdate | PresenceUpdate


class NumberStore:
    """Folds events into per-number state; batches share one pipeline (one round trip)."""

    def __init__(
        self,
        client: aioredis.Redis,
        retention: Retention = DEFAULT_RETENTION,
        retry_max_backoff_s: float = 5.0,
        on_retry: Any = None,
    ) -> None:
        self._client = client
        self.retention = retention
        self._retry_max_backoff_s = retry_max_backoff_s
        self._on_retry = on_retry
        self.forgotten = 0  # probation entries forgotten to make room (counted, never silent)

        def script(body: str) -> Any:
            return client.register_script(compile_script(body, retention))

        def folding(body: str) -> str:
            source = compile_script(body, retention)
            sha = redisbatch.script_sha(source)
            self._scripts[sha] = source
            return sha

        self._scripts: dict[str, str] = {}
        self._setup = folding(SETUPS_BODY)
        self._inbound = folding(INBOUND_BODY)
        self._cdr = folding(CDRS_BODY)
        self._complaint = folding(COMPLAINT_BODY)
        self._verdict = folding(VERDICT_BODY)
        self._presence = folding(PRESENCE_BODY)
        self._link = script(LINK_BODY)
        self._merge = script(MERGE_BODY)
        self._raise = script(RAISE_BODY)

    async def load_scripts(self) -> None:
        """Load the fold scripts into Redis (``apply`` reloads them itself after a NOSCRIPT)."""
        for source in self._scripts.values():
            await self._client.script_load(source)

    def queue(self, pipe: Any, update: Update) -> int:
        """Queue one update's fold on a redis-py pipeline (the trainer's, shared with its reads, in
        event order); returns how many results it adds. The scripts must be loaded."""
        commands = [command for command, _ in self.plan([update], inline_inbound=True)]
        for command in commands:
            pipe.execute_command(*command)
        return len(commands)

    def plan(
        self, updates: Sequence[Update], inline_inbound: bool = False
    ) -> list[tuple[tuple[Any, ...], list[int] | None]]:
        """The EVALSHA commands folding ``updates``, each with the indices of the updates its reply
        answers (an aggregate's per-update flags, or one update's 0/1; None: nothing to map).

        Setups and CDRs are aggregated per caller and partition, in order: one script call per
        caller per batch. A setup folded into full state adds its caller to the callee's inbound
        set: ``apply`` sends those adds once the replies say which were (the callee's set is on
        another slot); ``inline_inbound`` lets the setup's own script do it, on a single-node Redis.
        """
        planned: list[tuple[tuple[Any, ...], list[int] | None]] = []
        groups: dict[tuple[type, str, int | None], list[int]] = {}
        for index, update in enumerate(updates):
            if isinstance(update, SetupUpdate | CdrUpdate):
                partition = update.at[0] if update.at is not None else None
                groups.setdefault((type(update), update.caller, partition), []).append(index)
            else:
                planned.append((self._single(update), [index]))
        for (kind, caller, partition), indices in groups.items():
            members = [updates[i] for i in indices]
            if kind is SetupUpdate:
                command = self._setups(caller, partition, members, inline_inbound)  # type: ignore[arg-type]
                planned.append((command, indices))
            else:
                planned.append((self._cdrs(caller, partition, members), indices))  # type: ignore[arg-type]
        return planned

    def _setups(
        self, caller: str, partition: int | None, setups: Sequence[SetupUpdate], inline_inbound: bool
    ) -> tuple[Any, ...]:
        script_keys = [
            keys.number_key(caller),
            keys.window_key(caller),
            keys.outbound_key(caller),
            keys.decisions_key(caller),
            keys.probation_key(caller),
        ]
        index: dict[str, int] = {}
        args: list[Any] = ["" if partition is None else partition, keys.digest(caller)]
        for setup in setups:
            hll = [0, 0]
            callee = keys.digest(setup.callee) if setup.callee else ""
            if callee:
                for n, window in enumerate((DISTINCT_1H, DISTINCT_24H)):
                    name = keys.hll_key(caller, window.prefix, window.bucket(setup.t_ms))
                    if name not in index:
                        script_keys.append(name)
                        index[name] = len(script_keys)
                    hll[n] = index[name]
            offset = setup.at[1] if setup.at is not None else ""
            event_id = _id(setup.tenant, setup.call_id)
            inbound = 0
            if inline_inbound and callee:
                script_keys.append(keys.inbound_key(setup.callee))
                inbound = len(script_keys)
            on_net = int(setup.on_net)
            args += [offset, setup.t_ms, callee, hll[0], hll[1], setup.summary, event_id, inbound, on_net]
        return _evalsha(self._setup, script_keys, args)

    def _cdrs(self, caller: str, partition: int | None, cdrs: Sequence[CdrUpdate]) -> tuple[Any, ...]:
        script_keys = [keys.number_key(caller), keys.active_key(caller), keys.probation_key(caller)]
        args: list[Any] = ["" if partition is None else partition, keys.digest(caller)]
        for cdr in cdrs:
            args += [
                cdr.at[1] if cdr.at is not None else "",
                cdr.setup_ms,
                cdr.end_ms,
                int(cdr.answered),
                cdr.duration_ms,
                opaque_id(cdr.tenant + chr(0) + cdr.call_id)[:16],
            ]
        return _evalsha(self._cdr, script_keys, args)

    def _single(self, update: Update) -> tuple[Any, ...]:
        """A complaint's, verdict's or presence report's script call."""
        if isinstance(update, PresenceUpdate):
            presence = [
                keys.seen_key(update.number, "presence", update.tenant, update.event_id),
                keys.presence_key(update.number),
            ]
            if update.call_id:
                presence.append(keys.seen_key(update.number, "call-end", update.tenant, update.call_id))
            args = [update.state, update.t_ms, update.country, update.call_id]
            return _evalsha(self._presence, presence, args)
        position: list[Any] = ["", ""]
        if isinstance(update, ComplaintUpdate | VerdictUpdate) and update.at is not None:
            position = [update.at[0], update.at[1]]
        if isinstance(update, ComplaintUpdate):
            number = update.reported
            return _evalsha(
                self._complaint,
                [
                    keys.number_key(number),
                    keys.window_key(number),
                    keys.outbound_key(number),
                    keys.probation_key(number),
                ],
                [
                    *position,
                    keys.digest(number),
                    update.t_ms,
                    int(update.fraud),
                    int(update.honeypot),
                    _id(update.tenant, update.complaint_id),
                ],
            )
        assert isinstance(update, VerdictUpdate)
        number = update.caller
        return _evalsha(
            self._verdict,
            [
                keys.number_key(number),
                keys.campaigns_key(number),
                keys.window_key(number),
                keys.outbound_key(number),
                keys.probation_key(number),
            ],
            [
                *position,
                keys.digest(number),
                _id(update.tenant, update.segment_id),
                "" if update.synthetic is None else repr(update.synthetic),
                "" if update.bot is None else repr(update.bot),
                *update.campaign_ids,
            ],
        )

    async def apply(self, updates: Sequence[Update]) -> list[bool]:
        """Fold a batch of updates in one round trip; True for each update applied (not a duplicate).

        Redis errors are retried with capped exponential backoff for as long as it takes: the
        partition waits rather than skip or lose events. Re-sending after a partial failure is safe
        because every script is idempotent.
        """
        planned = self.plan(updates)
        commands = [command for command, _ in planned]
        results = await self._retrying("write", lambda: self._send(commands))
        applied = [False] * len(updates)
        full: list[SetupUpdate] = []  # setups folded into full state: their callees' inbound sets
        for (_command, indices), reply in zip(planned, results, strict=True):
            if indices is None:
                continue
            if isinstance(reply, list):  # an aggregate: {forgotten, flag per update}
                self.forgotten += int(reply[0])
                for index, flag in zip(indices, reply[1:], strict=True):
                    applied[index] = flag > 0
                    update = updates[index]
                    if flag in (1, -1) and isinstance(update, SetupUpdate) and update.callee:
                        full.append(update)
            else:
                applied[indices[0]] = bool(reply)
        if full:
            await self._add_inbound(full)
        verdicts = [u for u, ok in zip(updates, applied, strict=True) if ok and isinstance(u, VerdictUpdate)]
        if verdicts:  # idempotent (PFADD, raise-to-max): safe to repeat
            await self._retrying("campaign link", lambda: self._link_campaigns(verdicts))
        return applied

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, retried after Redis errors with capped exponential backoff until it succeeds."""
        backoff = 0.05
        while True:
            try:
                return await attempt()
            except RedisError as exc:
                if self._on_retry is not None:
                    self._on_retry()
                log.warning("redis write failed; retrying", extra={"step": what, "error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._retry_max_backoff_s)

    async def _send(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Every command's reply, in one round trip; the first error reply raised."""
        results = await redisbatch.send(self._client, commands, self._scripts)
        failed = next((reply for reply in results if isinstance(reply, Exception)), None)
        if failed is not None:
            raise failed
        return results

    async def _add_inbound(self, setups: Sequence[SetupUpdate]) -> None:
        """Add each caller to its callee's inbound set (idempotent: a set), retried like the folds."""
        commands = [
            _evalsha(self._inbound, [keys.inbound_key(s.callee)], [keys.digest(s.caller)]) for s in setups
        ]
        await self._retrying("inbound write", lambda: self._send(commands))

    async def _link_campaigns(self, verdicts: Sequence[VerdictUpdate]) -> None:
        """Link each number to its campaign and tell the campaign's numbers its size as it grows.

        A verdict's first campaign id is the one its recording belongs to; further ids are campaigns
        the audio service found to be the same one and merged into the first: their numbers join it
        and links to their ids go to it from now on.
        """
        links: list[tuple[str, list[str]]] = []
        for verdict in verdicts:
            if not verdict.campaign_ids:
                continue
            first, *merged = verdict.campaign_ids
            links.append((first, [verdict.caller, *verdict.earlier_members]))
            for other in merged:
                if other != first:
                    numbers = await self._merge(
                        keys=[keys.campaign_numbers_key(other), keys.campaign_meta_key(other)],
                        args=[first],
                    )
                    links.append((first, [n.decode() for n in numbers]))
        for _ in range(MAX_MERGE_HOPS):
            if not links:
                return
            pipe = self._client.pipeline(transaction=False)
            for campaign, numbers in links:
                await self._link(
                    keys=[
                        keys.campaign_members_key(campaign),
                        keys.campaign_numbers_key(campaign),
                        keys.campaign_meta_key(campaign),
                    ],
                    args=[part for n in numbers for part in (keys.digest(n), n)],
                    client=pipe,
                )
            replies = await pipe.execute()
            pipe = self._client.pipeline(transaction=False)
            redirected: list[tuple[str, list[str]]] = []
            for (campaign, numbers), reply in zip(links, replies, strict=True):
                kind, value, *told = (part.decode() for part in reply)
                if kind == "into":
                    redirected.append((value, numbers))
                    continue
                for number in dict.fromkeys([*numbers, *told]):
                    await self._raise(
                        keys=[keys.number_key(number), keys.campaigns_key(number)],
                        args=[int(value), campaign],
                        client=pipe,
                    )
            await pipe.execute()
            links = redirected
        log.warning("campaign merges form a chain too long to follow", extra={"links": len(links)})


def now_ms() -> int:
    """Wall-clock milliseconds (events carry their own time; this is for fallbacks)."""
    return int(time.time() * 1000)


def _id(tenant: str, event_id: str) -> str:
    """An event's id as the scripts remember it among a number's recent ones (12 characters)."""
    return opaque_id(tenant + chr(0) + event_id)[:12]


def _evalsha(sha: str, script_keys: list[str], args: list[Any]) -> tuple[Any, ...]:
    return ("EVALSHA", sha, len(script_keys), *script_keys, *args)
