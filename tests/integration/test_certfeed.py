"""Origination's certificate feed through the real Kafka, with a real origination and real followers.

Real Kafka (sti.certs.v1, sti.certs.misses.v1, dlq.origination.v1), real Redis (origination's shared
copy), a real x5u HTTPS server and the test PKI; the follower is the one decision processes run:

* a chain origination provisions while a follower runs reaches it;
* a follower started after the chains were published holds them when ``start`` returns;
* a miss reported for an unknown x5u makes origination fetch it, and the follower then holds it; a
  burst of misses for one URL costs one fetch;
* a URL origination refuses reaches the follower as a refusal;
* a chain under a CA the follower does not trust, and bytes that are no record, are refused there,
  and the follower keeps following;
* a miss that does not decode goes to dlq.origination.v1 with its reason.

Every test uses its own x5u URLs and consumer group, so earlier runs' records on the compacted topic
never answer for this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fraudmesh.v1 import events_pb2
from loadtest.kafkaio import end_offsets, read_dead_letters
from services.common.kafka import make_producer
from services.common.settings import load
from services.common.topics import STI_CERT_MISSES, STI_CERTS, dead_letter_topic
from services.origination.certfeed import CertificateFollower, chain_record
from services.origination.certs import ChainValidator, load_trust_anchors
from services.origination.failures import Failure
from services.origination.fetch import parse_pem_chain
from services.origination.service import Origination, build, start
from services.origination.settings import OriginationSettings
from tests.integration.conftest import Stack
from tests.integration.origination_pki import (
    OTHER_HOST,
    Pki,
    X5uServer,
    build_pki,
    loopback_fetcher,
    x5u_server,
)
from tests.unit.vectors import simpki

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pki, bytes, Path]:
    folder = tmp_path_factory.mktemp("sti-feed")
    pki, other_chain = build_pki(folder)
    return pki, other_chain, folder


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def origination(
    stack: Stack, pki: Pki, *, prewarm: Path | None = None, server: X5uServer | None = None
) -> AsyncIterator[Origination]:
    """A real origination (gRPC server, feed publisher, miss follower in its own group)."""
    env = {
        **stack.env,
        "FRAUDMESH_GRPC_PORT": "0",
        "FRAUDMESH_STI_TRUST_ANCHORS": str(pki.anchor_file),
        "FRAUDMESH_X5U_ALLOW_HOSTS": OTHER_HOST if server is not None else "",
        "FRAUDMESH_CERT_MISS_GROUP": unique("fraudmesh-origination-certificates-test"),
    }
    if prewarm is not None:
        env["FRAUDMESH_X5U_PREWARM_FILE"] = str(prewarm)
    settings = load(OriginationSettings, env)
    fetcher = loopback_fetcher(server) if server is not None else None
    handle, core = await start(settings, build(settings, fetcher=fetcher))
    try:
        yield core
    finally:
        await handle.stop(0.5)
        await core.redis.aclose()


@dataclass
class Followed:
    """A running follower and the outcomes it reported."""

    follower: CertificateFollower
    events: list[str] = field(default_factory=list)
    held_at_start: int = 0


@contextlib.asynccontextmanager
async def follower(stack: Stack, pki: Pki, *, miss_interval_s: float = 0.5) -> AsyncIterator[Followed]:
    """A certificate follower trusting only the test PKI's root, as a decision process runs it."""
    events: list[str] = []
    followed = Followed(
        CertificateFollower(
            stack.settings.kafka_bootstrap,
            ChainValidator(load_trust_anchors([pki.anchor_file])),
            client_id=unique("certfeed-test"),
            miss_interval_s=miss_interval_s,
            on_event=events.append,
        ),
        events,
    )
    followed.held_at_start = await followed.follower.start(catch_up_timeout_s=30.0)
    try:
        yield followed
    finally:
        await followed.follower.close()


async def eventually(
    check: Callable[[], bool], what: str, timeout_s: float = 30.0, tick: Callable[[], None] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        if tick is not None:
            tick()
        await asyncio.sleep(0.1)


def provision(folder: Path, url: str) -> Path:
    """A pre-warm file provisioning the home carrier's chain (a local PEM) at url."""
    path = folder / f"{unique('prewarm')}.txt"
    path.write_text(f"{url} home.pem\n")
    return path


def produce(bootstrap: str, records: Sequence[tuple[str, bytes, bytes]]) -> None:
    """Write raw records (topic, key, value) the way anyone with write access to the topic could."""
    producer = make_producer(bootstrap, unique("certfeed-test-writer"))
    for topic, key, value in records:
        producer.produce(topic, value, key=key)
    assert producer.flush(30) == 0


async def test_a_chain_origination_publishes_reaches_a_running_follower(
    stack: Stack, pki_files: tuple[Pki, bytes, Path]
) -> None:
    pki, _, folder = pki_files
    url = f"https://cert.home.test/{unique('H001')}.pem"
    async with follower(stack, pki) as followed:
        assert followed.follower.chains.get(url) is None
        async with origination(stack, pki, prewarm=provision(folder, url)) as core:
            assert core.cache.get(url) is not None
            await eventually(
                lambda: followed.follower.chains.get(url) is not None, "the chain reached the follower"
            )
    chain = followed.follower.chains.get(url)
    assert chain is not None
    assert chain.spcs == ("H001",)
    assert chain.chain[-1] == pki.root.cert
    assert "loaded" in followed.events


async def test_a_follower_started_after_publication_holds_the_chains_when_start_returns(
    stack: Stack, pki_files: tuple[Pki, bytes, Path]
) -> None:
    pki, _, folder = pki_files
    url = f"https://cert.home.test/{unique('H001')}.pem"
    async with origination(stack, pki, prewarm=provision(folder, url)) as core:
        expires_at = core.cache.get(url).expires_at  # type: ignore[union-attr]
        async with follower(stack, pki) as followed:
            chain = followed.follower.chains.get(url)  # no waiting: start() loaded the topic to its end
            assert chain is not None
            assert chain.expires_at == pytest.approx(expires_at, abs=0.001), "origination's cache expiry"
            assert followed.held_at_start == len(followed.follower.chains) >= 1


async def test_a_reported_miss_is_fetched_by_origination_and_reaches_the_follower(
    stack: Stack, pki_files: tuple[Pki, bytes, Path]
) -> None:
    pki, other_chain, folder = pki_files
    async with x5u_server(folder, other_chain) as server:
        url = f"https://{OTHER_HOST}:{server.port}/{unique('O002')}.pem"
        async with origination(stack, pki, server=server) as core, follower(stack, pki) as followed:
            chains = followed.follower.chains
            assert chains.get(url) is None
            # the miss consumer may still be joining its group: the follower asks again each interval
            await eventually(
                lambda: chains.get(url) is not None,
                "the miss was answered",
                tick=lambda: followed.follower.report_miss(url),
            )
            assert core.cache.get(url) is not None
            assert "/" + url.rsplit("/", 1)[1] in server.paths, "origination fetched the reported x5u"
            assert "miss_reported" in followed.events
            # the group is listening now: a burst of misses for a new URL costs one fetch
            burst = f"https://{OTHER_HOST}:{server.port}/{unique('O002')}.pem"
            before = server.connections
            miss = events_pb2.CertificateMiss(x5u=burst, seen_ms=int(time.time() * 1000)).SerializeToString()
            await asyncio.to_thread(
                produce, stack.settings.kafka_bootstrap, [(STI_CERT_MISSES.name, burst.encode(), miss)] * 5
            )
            await eventually(lambda: chains.get(burst) is not None, "the burst was answered")
            await asyncio.sleep(1.0)
            assert server.connections == before + 1


async def test_a_refused_url_reaches_the_follower_as_a_refusal(
    stack: Stack, pki_files: tuple[Pki, bytes, Path]
) -> None:
    pki, _, _ = pki_files
    url = f"https://evil.example/{unique('x')}.pem"  # on no allow-list
    async with origination(stack, pki) as core, follower(stack, pki) as followed:
        chains = followed.follower.chains
        await eventually(
            lambda: chains.failure(url) is not None,
            "the refusal arrived",
            tick=lambda: followed.follower.report_miss(url),
        )
        assert chains.failure(url) is Failure.CERT_UNAVAILABLE
        assert chains.get(url) is None
        assert core.cache.failure(url) is Failure.CERT_UNAVAILABLE


async def test_an_untrusted_chain_and_garbage_on_the_topic_are_refused_and_following_goes_on(
    stack: Stack, pki_files: tuple[Pki, bytes, Path]
) -> None:
    pki, _, folder = pki_files
    now = time.time()
    valid_from = datetime.now(UTC) - timedelta(days=1)
    rogue_root = simpki.issue(9901, "rogue-ca", None, valid_from, valid_from + timedelta(days=30), ca=True)
    rogue_leaf = simpki.issue(
        9901, "rogue-leaf", rogue_root, valid_from, valid_from + timedelta(days=30), spcs=["H001"]
    )
    rogue_url = f"https://cert.home.test/{unique('rogue')}.pem"
    good_url = f"https://cert.home.test/{unique('good')}.pem"
    rogue = ChainValidator([rogue_root.cert]).validate(rogue_url, [rogue_leaf.cert], now)
    good = ChainValidator([pki.root.cert]).validate(
        good_url, parse_pem_chain((folder / "home.pem").read_bytes()), now
    )
    records = [
        (
            STI_CERTS.name,
            rogue_url.encode(),
            chain_record(replace(rogue, expires_at=now + 600), 0).SerializeToString(),
        ),
        (STI_CERTS.name, b"garbage", b"\xff\xff\xff\xff"),
        (
            STI_CERTS.name,
            good_url.encode(),
            chain_record(replace(good, expires_at=now + 600), 0).SerializeToString(),
        ),
    ]
    async with follower(stack, pki) as followed:
        await asyncio.to_thread(produce, stack.settings.kafka_bootstrap, records)
        chains = followed.follower.chains
        await eventually(lambda: chains.get(good_url) is not None, "the trusted chain after the bad ones")
        assert chains.get(rogue_url) is None, "Kafka is never trusted for validity"
        assert chains.failure(rogue_url) is None
        assert followed.events.count("refused") >= 2


async def test_a_miss_that_does_not_decode_is_dead_lettered(
    stack: Stack, pki_files: tuple[Pki, bytes, Path]
) -> None:
    pki, _, _ = pki_files
    bootstrap = stack.settings.kafka_bootstrap
    since = await asyncio.to_thread(end_offsets, bootstrap, dead_letter_topic("origination"))
    keys = []
    async with origination(stack, pki):
        found: dict[bytes, events_pb2.DeadLetter] = {}
        deadline = time.monotonic() + 60
        while not found and time.monotonic() < deadline:  # until the miss consumer has joined its group
            key = unique("bad-miss").encode()
            keys.append(key)
            await asyncio.to_thread(produce, bootstrap, [(STI_CERT_MISSES.name, key, b"\xff\xff\xff\xff")])
            found = await asyncio.to_thread(read_dead_letters, bootstrap, "origination", since, keys, 2.0)
    assert found, "no dead letter for an undecodable miss"
    letter = next(iter(found.values()))
    assert letter.source_topic == STI_CERT_MISSES.name
    assert letter.reason == "decode_error"
    assert letter.value == b"\xff\xff\xff\xff"
    assert letter.consumer == "origination"
