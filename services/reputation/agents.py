"""Faust agents of the reputation service: fold call events into per-number state in Redis.

Today: calls.setup.v1 → setups count, first/last seen per calling number. Every record ends in
exactly one place: applied, recognised as a duplicate, or dead-lettered with its reason.
"""

from __future__ import annotations

import logging

import faust
from faust.types import EventT, StreamT

from services.common.codec import DecodeError
from services.common.phone import InvalidNumberError, normalize
from services.common.pseudonym import Pseudonymizer
from services.common.redisstore import make_async_redis
from services.common.streams import DeadLetterWriter, make_faust_app, raw_topic
from services.common.topics import CALLS_SETUP
from services.reputation import metrics
from services.reputation.numbers import NumberStore
from services.reputation.settings import ReputationSettings

log = logging.getLogger(__name__)

CONSUMER = "reputation"


def build_app(settings: ReputationSettings) -> faust.App:
    """The reputation faust app with its agents registered."""
    app = make_faust_app(settings, settings.app_id)
    pseudonymize = Pseudonymizer(settings.pseudonym_key)
    store = NumberStore(
        make_async_redis(settings),
        dedupe_ttl_s=settings.dedupe_ttl_s,
        number_ttl_s=settings.number_ttl_s,
        retry_max_backoff_s=settings.redis_retry_max_backoff_s,
    )
    dead_letters = DeadLetterWriter(app, CONSUMER)
    setup_codec = CALLS_SETUP.codec()

    async def fold_setup(event: EventT[bytes]) -> str:
        """Apply one calls.setup.v1 record; returns the outcome label."""
        try:
            setup = setup_codec.decode(event.message.value).setup
            caller = normalize(
                setup.calling_number, settings.region_for(setup.tenant), allow_unallocated=True
            )
        except DecodeError as exc:
            await dead_letters.send(event, exc.reason, exc)
            metrics.DEAD_LETTERS.labels(exc.reason).inc()
            return "dead_lettered"
        except InvalidNumberError as exc:
            await dead_letters.send(event, "invalid_calling_number", exc)
            metrics.DEAD_LETTERS.labels("invalid_calling_number").inc()
            return "dead_lettered"
        event_ms = setup.event_time.ToMilliseconds() if setup.HasField("event_time") else 0
        if event_ms <= 0:
            event_ms = int(event.message.timestamp * 1000)
        applied = await store.apply_setup(
            pseudonymize(caller.canonical), setup.tenant, setup.call_id, event_ms
        )
        return "applied" if applied else "duplicate"

    @app.agent(raw_topic(app, CALLS_SETUP), name="reputation.setups")
    async def setups(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                outcome = await fold_setup(event)
            except Exception as exc:  # a bug must not kill the agent silently or lose the record
                log.exception("setup processing failed; dead-lettering the record")
                await dead_letters.send(event, "processing_error", exc)
                metrics.DEAD_LETTERS.labels("processing_error").inc()
                outcome = "dead_lettered"
            metrics.EVENTS.labels(CALLS_SETUP.name, outcome).inc()

    return app
