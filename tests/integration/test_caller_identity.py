"""One identity for one caller: on a trunk that sends a PAI other than From, the second call sees the first.

Reputation (a real worker on calls.setup.v1), training (point-in-time rows) and decision (a real
gRPC server whose audit records a real reputation worker folds) all key the caller by the rule of
``services.common.identity``: PAI unless absent or a placeholder, else From. A withheld caller is
normal traffic, folded under its trunk's withheld bucket rather than dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from confluent_kafka import TopicPartition

from fraudmesh.v1 import admin_pb2, call_pb2, common_pb2, dataset_pb2, events_pb2
from loadtest.kafkaio import SetupProducer, call_setup, end_offsets
from loadtest.stipki import CarrierSpec, build_pki
from services.common import features
from services.common.context import ContextRules
from services.common.featurestore import FeatureReader
from services.common.identity import withheld_key
from services.common.kafka import make_consumer
from services.common.phone import normalize
from services.common.pseudonym import Pseudonymizer
from services.common.topics import CALLS_SETUP
from services.reputation.settings import ReputationSettings
from services.scoring.model import Scorer
from training.dataset import CALLS, EVENTS, Manifest, RecordWriter
from training.pointintime import build_sync

from .conftest import Stack, Worker
from .test_decision_service import (  # noqa: F401 - fixtures
    BEARER,
    decide,
    decision_settings,
    model_dir,
    policy_file,
    running,
    scorer,
)
from .test_reputation_pipeline import WAIT_S, fresh_cn_mobile, wait_for

pytestmark = pytest.mark.integration

TENANT = "demo-cn"
SCRATCH_DB = 13  # test_pointintime and the audio tests use 14, the main job 15
RULES = ContextRules("CN", ("+86138", "+86139", "+86150", "+86188"), ("+86170", "+86171"), 8.0)
WITHHELD_FROM = '"Anonymous" <sip:anonymous@anonymous.invalid>'


def e164(national: str) -> str:
    return normalize(national, "CN").canonical


def pbx_call(pai: str, trunk: str, event_ms: int | None = None) -> events_pb2.CallSetupEvent:
    """A call from a PBX extension: the line's DDI in PAI, a main number of its own in From."""
    record = call_setup(fresh_cn_mobile(), fresh_cn_mobile(), pai=f"<sip:{pai}@ims.example;user=phone>")
    record.setup.ingress_trunk_id = trunk
    if event_ms is not None:
        record.setup.event_time.FromMilliseconds(event_ms)
    return record


def setups(client: redis.Redis, pseudonym: str) -> int:
    return FeatureReader(client).read_sync(pseudonym, "", int(time.time() * 1000)).setups


def test_reputation_folds_a_pai_caller_under_its_pai(
    reputation_worker: Worker, producer: SetupProducer, redis_client: redis.Redis, pseudonymize: Pseudonymizer
) -> None:
    pai = e164(fresh_cn_mobile())
    trunk = f"trunk-{uuid.uuid4().hex[:8]}"
    calls = [pbx_call(pai, trunk) for _ in range(2)]
    assert calls[0].setup.calling_number != calls[1].setup.calling_number
    for record in calls:
        producer.send(record)
    producer.flush()
    wait_for(
        lambda: setups(redis_client, pseudonymize(pai)) == 2, "both calls under the PAI", reputation_worker
    )
    for record in calls:
        assert setups(redis_client, pseudonymize(e164(record.setup.calling_number))) == 0


def test_a_withheld_call_is_folded_under_its_trunks_bucket(
    reputation_worker: Worker, producer: SetupProducer, redis_client: redis.Redis, pseudonymize: Pseudonymizer
) -> None:
    trunk = f"trunk-{uuid.uuid4().hex[:8]}"
    for calling in ("", WITHHELD_FROM, "anonymous"):
        producer.send(call_setup(calling, fresh_cn_mobile(), trunk=trunk))
    producer.send(call_setup(WITHHELD_FROM, fresh_cn_mobile(), trunk=f"{trunk}-other"))
    producer.flush()
    bucket = pseudonymize(withheld_key(TENANT, trunk))
    wait_for(
        lambda: setups(redis_client, bucket) == 3, "three withheld calls in the bucket", reputation_worker
    )
    other = pseudonymize(withheld_key(TENANT, f"{trunk}-other"))
    wait_for(lambda: setups(redis_client, other) == 1, "the other trunk's bucket", reputation_worker)


def _write_dataset(folder: Path, records: Iterable[dataset_pb2.DatasetRecord], start_ms: int) -> None:
    """A minimal dataset: events, one truth record per call, an (empty) simulated PKI, a manifest."""
    events = sorted(records, key=lambda r: r.time_ms)
    with RecordWriter(folder / EVENTS) as writer:
        for record in events:
            writer.write(record)
    with RecordWriter(folder / CALLS) as writer:
        for record in events:
            if record.WhichOneof("record") == "setup":
                truth = dataset_pb2.CallTruth(call_id=record.setup.setup.call_id, tenant=TENANT)
                writer.write(dataset_pb2.DatasetRecord(time_ms=record.time_ms, call_truth=truth))
    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    build_pki(1, [CarrierSpec("home", "H001", True)], start - timedelta(days=1)).write(folder / "pki")
    Manifest(scenario="identity", seed=1, start_ms=start_ms, duration_s=3600).write(folder)


def test_training_rows_see_the_callers_earlier_calls(stack: Stack, tmp_path: Path) -> None:
    start_ms = 1_790_000_000_000
    pai = e164(fresh_cn_mobile())
    trunk = "trunk-ic-north"
    setups_in: list[call_pb2.CallSetup] = []
    records: list[dataset_pb2.DatasetRecord] = []
    for offset_s, caller in ((0, pai), (60, pai), (120, ""), (180, "")):
        if caller:
            event = pbx_call(caller, trunk, start_ms + offset_s * 1000)
        else:
            event = call_setup(
                WITHHELD_FROM, fresh_cn_mobile(), event_ms=start_ms + offset_s * 1000, trunk=trunk
            )
        setups_in.append(event.setup)
        records.append(dataset_pb2.DatasetRecord(time_ms=start_ms + offset_s * 1000, setup=event))
    first = setups_in[0]
    cdr = events_pb2.Cdr(
        call_id=first.call_id,
        tenant=TENANT,
        calling_number=e164(first.calling_number),  # mediation records From and the asserted identity
        p_asserted_identity=pai,
        ingress_trunk_id=trunk,
        answered=True,
        duration_ms=20_000,
    )
    cdr.setup_time.FromMilliseconds(start_ms)
    cdr.end_time.FromMilliseconds(start_ms + 30_000)
    records.append(dataset_pb2.DatasetRecord(time_ms=start_ms + 30_000, cdr=cdr))
    _write_dataset(tmp_path, records, start_ms)

    settings = ReputationSettings(
        pseudonym_key=stack.settings.pseudonym_key, tenant_regions=(f"{TENANT}=CN",)
    )
    url = urllib.parse.urlparse(stack.settings.redis_url)._replace(path=f"/{SCRATCH_DB}").geturl()
    rows = build_sync(tmp_path, url, settings, RULES)
    total = rows.X[:, features.INDEX["setups_total"]].tolist()
    cdrs = rows.X[:, features.INDEX["cdrs_total"]].tolist()
    assert total == [0.0, 1.0, 0.0, 1.0], (
        "the PAI caller's and the trunk bucket's second calls see their first"
    )
    assert cdrs[:2] == [0.0, 1.0], "the CDR, recorded with the PAI, is folded under the caller too"
    valid = rows.X[:, features.INDEX["caller_valid"]].tolist()
    assert valid == [1.0, 1.0, 0.0, 0.0]


async def _wait(condition: Callable[[], bool], what: str, worker: Worker) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline or not worker.process.alive():
            pytest.fail(f"timed out waiting for {what}:\n{worker.process.tail()}")
        await asyncio.sleep(0.2)


def _audit_keys(stack: Stack, since: dict[int, int], call_ids: set[str]) -> dict[str, bytes | None]:
    """The Kafka key of each call's audit record on calls.setup.v1."""
    found: dict[str, bytes | None] = {}
    consumer = make_consumer(stack.settings.kafka_bootstrap, f"it-identity-{uuid.uuid4().hex[:8]}")
    consumer.assign([TopicPartition(CALLS_SETUP.name, p, o) for p, o in since.items()])
    deadline = time.monotonic() + 30
    try:
        while call_ids - set(found) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            record = CALLS_SETUP.codec().decode(message.value())
            if record.setup.call_id in call_ids and record.HasField("decision"):
                found[record.setup.call_id] = message.key()
    finally:
        consumer.close()
    return found


def _decided(pai: str, trunk: str, calling: str | None = None) -> call_pb2.CallSetup:
    setup = call_pb2.CallSetup(
        call_id=f"it-{uuid.uuid4()}",
        tenant=TENANT,
        calling_number=calling if calling is not None else fresh_cn_mobile(),
        p_asserted_identity=f"<tel:{pai}>" if pai else "",
        called_number="+8613912345678",
        ingress_trunk_id=trunk,
        ingress_kind=common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
    )
    setup.event_time.GetCurrentTime()
    return setup


async def test_decision_reads_and_audits_a_pai_caller_under_its_pai(
    stack: Stack,
    scorer: Scorer,  # noqa: F811
    policy_file: Path,  # noqa: F811
    reputation_worker: Worker,
    redis_client: redis.Redis,
    pseudonymize: Pseudonymizer,
) -> None:
    pai = e164(fresh_cn_mobile())
    trunk = f"trunk-{uuid.uuid4().hex[:8]}"
    since = end_offsets(stack.settings.kafka_bootstrap, CALLS_SETUP)
    first, second, third = (_decided(pai, trunk) for _ in range(3))
    async with running(decision_settings(stack, policy_file, ""), scorer) as (_server, stub, admin):
        await decide(stub, first)
        await _wait(
            lambda: setups(redis_client, pseudonymize(pai)) == 1, "the first audit record", reputation_worker
        )
        await decide(stub, second)  # reads the features the first call's audit record folded in
        deny = admin_pb2.PutListEntryRequest(
            tenant=TENANT, number=pai, kind=admin_pb2.LIST_KIND_DENY, ttl_s=600, reason="test", actor="it"
        )
        await admin.PutListEntry(deny, metadata=BEARER, timeout=2.0)
        denied = (await decide(stub, third)).decision
    assert denied.reason_codes == ["DENY_LISTED", "EVIDENCE_PROOF"], (
        "decision looks the caller up by the PAI, not From"
    )
    keys = _audit_keys(stack, since, {first.call_id, second.call_id, third.call_id})
    assert set(keys.values()) == {pseudonymize.kafka_key(pai)}
    await _wait(
        lambda: setups(redis_client, pseudonymize(pai)) == 3, "all three under the PAI", reputation_worker
    )
    for setup in (first, second, third):
        assert setups(redis_client, pseudonymize(e164(setup.calling_number))) == 0


async def test_decision_reads_and_audits_a_withheld_caller_under_its_trunks_bucket(
    stack: Stack,
    scorer: Scorer,  # noqa: F811
    policy_file: Path,  # noqa: F811
    reputation_worker: Worker,
    redis_client: redis.Redis,
    pseudonymize: Pseudonymizer,
) -> None:
    trunk = f"trunk-{uuid.uuid4().hex[:8]}"
    bucket = withheld_key(TENANT, trunk)
    since = end_offsets(stack.settings.kafka_bootstrap, CALLS_SETUP)
    calls = [_decided("", trunk, WITHHELD_FROM), _decided("", trunk, "")]
    async with running(decision_settings(stack, policy_file, ""), scorer) as (_server, stub, _admin):
        for setup in calls:
            reply = await decide(stub, setup)
            assert not reply.decision.degraded, reply.decision.degraded_reasons
    keys = _audit_keys(stack, since, {setup.call_id for setup in calls})
    assert set(keys.values()) == {pseudonymize.kafka_key(bucket)}
    await _wait(
        lambda: setups(redis_client, pseudonymize(bucket)) == 2, "both in the bucket", reputation_worker
    )
