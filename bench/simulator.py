"""Benchmark (not a test): simulator generation rate and replay rate, each beside its baseline.

- Generation: calls/s for a scenario, split into simulate / emit / sign, beside the bare
  ``cryptography`` deterministic ES256 sign rate in this process (signing bounds the total).
- Replay: events/s published flat out to the local Kafka, beside a raw confluent-kafka producer
  sending the same number of records of the same sizes to a scratch topic on the same broker.

Prints figures and ratios; never fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console
from rich.table import Table

from loadtest.replay import ReplayConfig, replay
from loadtest.scenario import load
from loadtest.simulate import simulate, write_dataset
from services.common.kafka import make_producer
from services.common.pseudonym import Pseudonymizer
from services.common.settings import CommonSettings
from services.common.settings import load as load_settings
from training.dataset import EVENTS, read_records

console = Console()


def bare_sign_rate(seconds: float = 2.0) -> float:
    """Deterministic ES256 signatures per second with cryptography alone (the signing floor)."""
    key = ec.derive_private_key(
        int.from_bytes(hashlib.sha256(b"bench").digest(), "big") % (2**255), ec.SECP256R1()
    )
    algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        key.sign(b"header.claims-%d" % count, algorithm)
        count += 1
    return count / (time.perf_counter() - started)


def raw_producer_rate(bootstrap: str, sizes: list[int]) -> float:
    """Records/s for a bare confluent-kafka producer sending ``sizes``-byte records to a scratch topic."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    topic = f"fraudmesh.bench.{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 8, 1)])[topic].result()
    try:
        producer = make_producer(bootstrap, "fraudmesh-bench-raw", **{"linger.ms": 20, "batch.size": 1 << 20})
        payloads = [b"x" * size for size in sizes]
        started = time.perf_counter()
        for i, payload in enumerate(payloads):
            while True:
                try:
                    producer.produce(topic, key=b"%026d" % (i % 50_000), value=payload)
                    break
                except BufferError:
                    producer.poll(0.01)
            if i % 2000 == 0:
                producer.poll(0)
        producer.flush(60)
        return len(sizes) / (time.perf_counter() - started)
    finally:
        admin.delete_topics([topic])[topic].result()


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="ci")
    parser.add_argument("--replay-events", type=int, default=50_000)
    parser.add_argument("--no-replay", action="store_true", help="skip the Kafka part (no stack needed)")
    args = parser.parse_args(argv)
    table = Table(title="loadtest benchmark (this machine, this run)")
    for column in ("what", "figure", "baseline", "baseline figure", "ratio"):
        table.add_column(
            column, justify="right" if column in {"figure", "baseline figure", "ratio"} else "left"
        )

    with tempfile.TemporaryDirectory(prefix="fraudmesh-bench-") as tmp:
        folder = Path(tmp) / "dataset"
        scenario = load(args.scenario)
        sim = simulate(scenario)
        manifest = write_dataset(sim, folder)
        calls = manifest.counts["calls"]
        total_s = manifest.generator["simulate_s"] + manifest.generator["write_s"]
        sign_rate = bare_sign_rate()
        signed = sum(
            1
            for r in read_records(folder / EVENTS)
            if r.WhichOneof("record") == "setup" and r.setup.setup.identity_headers
        )
        sign_s = signed / sign_rate
        table.add_row(
            f"generate '{scenario.name}' ({calls:,} calls, {signed:,} signed)",
            f"{calls / total_s:,.0f} calls/s",
            "bare ES256 sign",
            f"{sign_rate:,.0f} sig/s",
            f"{(calls / total_s) / sign_rate:.2f}",
        )
        unsigned_rate = calls / max(total_s - sign_s, 1e-9)
        table.add_row("  generation without signing (estimate)", f"{unsigned_rate:,.0f} calls/s", "", "", "")
        table.add_row(
            "  simulate (numpy, all actors)",
            f"{calls / manifest.generator['simulate_s']:,.0f} calls/s",
            "",
            "",
            "",
        )

        if not args.no_replay:
            settings = load_settings(CommonSettings)
            config = ReplayConfig(
                bootstrap=settings.kafka_bootstrap,
                pseudonymize=Pseudonymizer(settings.pseudonym_key),
                speed=0,
                max_events=args.replay_events,
            )
            stats = asyncio.run(replay(folder, config))
            replayed = stats.events
            sizes = [
                r.ByteSize() for _, r in zip(range(replayed), read_records(folder / EVENTS), strict=False)
            ]
            raw = raw_producer_rate(settings.kafka_bootstrap, sizes)
            rate = replayed / stats.wall_s
            table.add_row(
                f"replay to Kafka ({replayed:,} events, flat out)",
                f"{rate:,.0f} events/s",
                "raw confluent-kafka producer",
                f"{raw:,.0f} records/s",
                f"{rate / raw:.2f}",
            )
    console.print(table)
    console.print(
        "Signing every PASSporT bounds generation on one core; the ratio to bare ES256 shows how close "
        "the rest of the pipeline keeps to that floor. Replay normalises and pseudonymises every key "
        "the way the services do, which the raw producer does not."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
