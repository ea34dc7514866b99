"""Presence reports through Kafka change the next Decide: an own subscriber's number over the
international gateway is proven false while they are attached at home — and only then.

Real reputation worker (folds the reports), real Redis, the decision core with in-process
verification (the proof rides the call's one round trip), the shipped policy.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
import redis
from google.protobuf.timestamp_pb2 import Timestamp

from fraudmesh.v1 import call_pb2, common_pb2, events_pb2
from loadtest.kafkaio import SetupProducer, end_offsets, read_matching
from services.common import keys
from services.common.pseudonym import Pseudonymizer
from services.common.topics import SUBSCRIBERS_NOTICES
from services.scoring.model import Scorer
from tests.integration.origination_pki import Pki
from tests.integration.test_inprocess_verification import (
    BUDGET_S,
    decide,
    decision,
    model_dir,
    pki_and_chain,
    scorer,
)
from tests.integration.test_presence import HOME, ROAMING, Subscriber, presence_of

from .conftest import Stack, Worker
from .test_reputation_pipeline import wait_for

pytestmark = pytest.mark.integration
__all__ = ["model_dir", "pki_and_chain", "scorer"]  # fixtures shared with test_inprocess_verification

PROOF = "ONNET_NUMBER_NOT_ROAMING"


def _call(subscriber: Subscriber) -> call_pb2.CallSetup:
    now = time.time()
    return call_pb2.CallSetup(
        call_id=uuid.uuid4().hex,
        event_time=Timestamp(seconds=int(now), nanos=int(now % 1 * 1e9)),
        tenant="demo-cn",
        calling_number=subscriber.number,
        called_number="+8613900139000",
        ingress_kind=common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY,
        ingress_trunk_id="intl-gw",
    )


async def test_presence_reports_prove_a_spoofed_own_number_and_out_of_order_ones_do_not(
    stack: Stack,
    pki_and_chain: tuple[Pki, bytes, Path],
    scorer: Scorer,
    reputation_worker: Worker,
    producer: SetupProducer,
    pseudonymize: Pseudonymizer,
    redis_client: redis.Redis,
) -> None:
    pki, _, folder = pki_and_chain
    subscriber = Subscriber(producer, pseudonymize)
    now_ms = int(time.time() * 1000)
    async with decision(stack, pki, scorer, folder) as server:
        unknown = await decide(server, _call(subscriber))
        assert unknown.origination is not None
        assert "ONNET_CLI_OFFNET_INGRESS" in unknown.origination.reason_codes  # suspicious, not proven
        assert PROOF not in unknown.origination.reason_codes

        subscriber.report(HOME, now_ms - 60_000)
        producer.flush()
        wait_for(
            lambda: presence_of(redis_client, subscriber.pseudonym).state == 1, "home", reputation_worker
        )
        proven = await decide(server, _call(subscriber))
        assert proven.origination is not None
        assert PROOF in proven.origination.reason_codes
        assert proven.decision.action == common_pb2.ACTION_BLOCK
        assert "EVIDENCE_PROOF" in proven.decision.reason_codes

        subscriber.report(ROAMING, now_ms - 30_000, country="FR")
        producer.flush()
        wait_for(
            lambda: presence_of(redis_client, subscriber.pseudonym).state == 2, "roaming", reputation_worker
        )
        roaming = await decide(server, _call(subscriber))
        assert roaming.origination is not None
        assert PROOF not in roaming.origination.reason_codes  # a real roamer calls home this way
        assert "ROAMING_VERIFIED" in roaming.origination.reason_codes
        assert "NO_ROAMING_INDICATION" not in roaming.origination.reason_codes
        if roaming.decision.action == common_pb2.ACTION_ALLOW:  # demo-cn wants the label
            assert roaming.decision.label == "国际来电"

        subscriber.report(HOME, now_ms - 45_000)  # older than the roaming report, delivered after it
        producer.flush()
        await asyncio.sleep(3.0)  # the worker has had ample time to fold it
        assert presence_of(redis_client, subscriber.pseudonym).state == 2
        late = await decide(server, _call(subscriber))
        assert late.origination is not None
        assert PROOF not in late.origination.reason_codes


async def test_a_redis_without_presence_state_proves_nothing(
    stack: Stack,
    pki_and_chain: tuple[Pki, bytes, Path],
    scorer: Scorer,
    producer: SetupProducer,
    pseudonymize: Pseudonymizer,
) -> None:
    pki, _, folder = pki_and_chain
    async with decision(stack, pki, scorer, folder) as server:
        outcome = await decide(server, _call(Subscriber(producer, pseudonymize)))
    assert outcome.origination is not None
    assert not {PROOF, "CALLER_BUSY_ELSEWHERE"} & set(outcome.origination.reason_codes)
    assert "EVIDENCE_PROOF" not in outcome.decision.reason_codes
    # a domestic mobile from the international gateway with no roaming indication: labelled, no more
    assert "NO_ROAMING_INDICATION" in outcome.origination.reason_codes
    assert outcome.decision.action in (common_pb2.ACTION_LABEL, common_pb2.ACTION_CHALLENGE)


async def test_a_proven_spoof_of_someone_the_callee_called_says_it_impersonates_a_contact(
    stack: Stack,
    pki_and_chain: tuple[Pki, bytes, Path],
    scorer: Scorer,
    reputation_worker: Worker,
    producer: SetupProducer,
    pseudonymize: Pseudonymizer,
    redis_client: redis.Redis,
) -> None:
    pki, _, folder = pki_and_chain
    relative = Subscriber(producer, pseudonymize)
    victim = Subscriber(producer, pseudonymize)
    earlier = _call(victim)  # the victim called their relative, on-net, an hour ago
    earlier.called_number = relative.number
    earlier.ingress_kind = common_pb2.INGRESS_KIND_ON_NET
    earlier.event_time.FromMilliseconds(int(time.time() * 1000) - 3_600_000)
    producer.send(events_pb2.CallSetupEvent(setup=earlier))
    relative.report(HOME, int(time.time() * 1000) - 60_000)
    producer.flush()
    wait_for(lambda: presence_of(redis_client, relative.pseudonym).state == 1, "home", reputation_worker)
    wait_for(
        lambda: bool(redis_client.exists(keys.inbound_key(relative.pseudonym))),
        "the earlier call",
        reputation_worker,
    )
    spoofed = _call(relative)
    spoofed.called_number = victim.number
    since = end_offsets(stack.settings.kafka_bootstrap, SUBSCRIBERS_NOTICES)
    async with decision(stack, pki, scorer, folder) as server:
        outcome = await server.decider.decide(spoofed, BUDGET_S, record=True)  # audit and notice
        assert server.decider.audit is not None
        await server.decider.audit.drain()
    assert outcome.origination is not None
    assert {PROOF, "IMPERSONATES_CONTACT"} <= set(outcome.origination.reason_codes)
    # demo-cn notifies the real subscriber: pseudonyms only, the proof that fired
    notices = read_matching(
        stack.settings.kafka_bootstrap,
        SUBSCRIBERS_NOTICES,
        since,
        lambda notice: notice.notice_id,
        [spoofed.call_id],
        timeout_s=20,
    )
    notice = notices[spoofed.call_id]
    assert notice.subscriber_pseudonym == relative.pseudonym
    assert notice.callee_pseudonym == victim.pseudonym
    assert list(notice.proof_codes) == [PROOF]
    assert relative.number not in str(notice)
    assert victim.number not in str(notice)
