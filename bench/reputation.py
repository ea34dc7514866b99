"""Benchmark (not a test): reputation worker throughput and freshness beside a raw consumer.

1. Pre-produces N call setups, then drains them with a bare confluent-kafka consumer (the
   baseline) and with one reputation worker process, each in a fresh group from the same offsets;
   reports events/s and the ratio.
2. With the worker caught up, produces setups at a fixed rate and measures, per event, the time
   from produce to its effect being readable in Redis: p50 / p99 freshness.

Needs the local stack (`make up`). Prints figures; never fails on a timing.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import time
import uuid

import redis
from confluent_kafka import TopicPartition
from rich.console import Console
from rich.table import Table

from loadtest.kafkaio import SetupProducer, call_setup, end_offsets, start_group_at_end
from loadtest.processes import REPO_ROOT, ServiceProcess
from services.common import keys
from services.common.featurestore import held_counts
from services.common.kafka import make_consumer
from services.common.progress import progress_bar
from services.common.pseudonym import Pseudonymizer
from services.common.settings import CommonSettings, Secret, load
from services.common.topics import CALLS_SETUP, REPUTATION_INPUTS
from services.reputation.hotpath import consumer_group

console = Console()


def raw_drain_rate(bootstrap: str, start: dict[int, int], count: int) -> float:
    """Records/s for a bare consumer reading ``count`` records of calls.setup.v1 from ``start``."""
    consumer = make_consumer(bootstrap, f"bench-raw-{uuid.uuid4().hex[:8]}", **{"fetch.min.bytes": 1})
    consumer.assign([TopicPartition(CALLS_SETUP.name, p, o) for p, o in start.items()])
    seen = 0
    started = time.perf_counter()
    while seen < count:
        batch = consumer.consume(num_messages=10_000, timeout=1.0)
        seen += sum(1 for m in batch if m.error() is None)
        if time.perf_counter() - started > 120:
            break
    rate = seen / (time.perf_counter() - started)
    consumer.close()
    return rate


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--callers", type=int, default=2_000)
    parser.add_argument("--fresh-rate", type=float, default=1_000.0, help="events/s for the freshness run")
    parser.add_argument("--fresh-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    settings = load(CommonSettings)
    key_hex = secrets.token_hex(32)
    pseudonymize = Pseudonymizer(Secret(bytes.fromhex(key_hex)))
    app_id = f"bench-reputation-{uuid.uuid4().hex[:8]}"
    for topic in REPUTATION_INPUTS:
        start_group_at_end(settings.kafka_bootstrap, consumer_group(app_id, topic), topic)
    start = end_offsets(settings.kafka_bootstrap, CALLS_SETUP)
    producer = SetupProducer.connect(settings.kafka_bootstrap, pseudonymize)
    callers = list({f"+86139{random.randrange(10**8):08d}": None for _ in range(args.callers)})
    callees = [f"+86138{random.randrange(10**8):08d}" for _ in range(5_000)]
    expected = dict.fromkeys(callers, 0)
    with progress_bar(console) as progress:
        task = progress.add_task("pre-producing setups", total=args.events)
        for i in range(args.events):
            caller = random.choice(callers)
            expected[caller] += 1
            producer.send(call_setup(caller, random.choice(callees), call_id=f"{app_id}-{i}"))
            if i % 5_000 == 0:
                progress.update(task, completed=i)
        producer.flush()
        progress.update(task, completed=args.events)
    raw = raw_drain_rate(settings.kafka_bootstrap, start, args.events)

    client = redis.Redis.from_url(settings.redis_url)
    worker = ServiceProcess(
        "services.reputation",
        {
            "FRAUDMESH_PSEUDONYM_KEY": key_hex,
            "FRAUDMESH_APP_ID": app_id,
            "FRAUDMESH_LOG_LEVEL": "WARNING",
            "FRAUDMESH_METRICS_PORT": "0",
        },
        REPO_ROOT / ".stack" / "logs" / f"{app_id}.log",
    )
    pseudonyms = [pseudonymize(c) for c in callers]

    def per_caller() -> list[int]:
        return [counts[0] for counts in held_counts(client, pseudonyms, ["setups"])]

    def counted() -> int:
        return sum(per_caller())

    try:
        first_at = None
        done_at = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            n = counted()
            if n and first_at is None:
                first_at, first_n = time.monotonic(), n
            if n >= args.events:
                done_at = time.monotonic()
                break
            time.sleep(0.1)
        worker_rate = (
            (args.events - first_n) / (done_at - first_at)
            if first_at and done_at and done_at > first_at
            else 0.0
        )
        time.sleep(1.0)  # anything still arriving would be a double count
        folded = per_caller()
        wrong = sum(1 for c, n in zip(callers, folded, strict=True) if n != expected[c])

        # Records built beforehand (distinct new callers), so the paced loop only hands bytes to
        # librdkafka and the generator takes as little of the shared CPU as it can.
        total = int(args.fresh_rate * args.fresh_seconds)
        fresh = list({f"+86137{random.randrange(10**8):08d}": None for _ in range(total)})
        codec = CALLS_SETUP.codec()
        prepared = []
        for i, caller in enumerate(fresh):
            record = call_setup(caller, random.choice(callees), call_id=f"{app_id}-fresh-{i}")
            pseudonym = pseudonymize(caller)
            prepared.append((pseudonymize.kafka_key(caller), codec.encode(record), pseudonym))
        delays: list[float] = []
        pending: dict[str, float] = {}
        started = time.monotonic()
        sent = 0
        while sent < len(prepared) or pending:
            now = time.monotonic()
            due = min(len(prepared), int((now - started) * args.fresh_rate) + 1)
            for key, value, pseudonym in prepared[sent:due]:
                producer.send_raw(CALLS_SETUP, key, value)
                pending[pseudonym] = now
            sent = max(sent, due)
            producer.producer.poll(0)
            if pending:
                names = list(pending)[:2000]  # the oldest: a partition folds in order
                pipe = client.pipeline(transaction=False)
                for p in names:
                    pipe.hexists(keys.probation_key(p), keys.digest(p))
                    pipe.exists(keys.number_key(p))
                replies = pipe.execute()
                seen_at = time.monotonic()
                for p, held, full in zip(names, replies[::2], replies[1::2], strict=True):
                    if held or full:
                        delays.append(seen_at - pending.pop(p))
            if time.monotonic() - started > args.fresh_seconds + 30:
                break
            time.sleep(0.01)
    finally:
        worker.stop()
    delays.sort()
    table = Table(title="reputation worker (one process) vs a raw confluent-kafka consumer, this machine")
    for column in ("what", "figure", "baseline", "ratio"):
        table.add_column(column)
    table.add_row(
        "setups folded into Redis",
        f"{worker_rate:,.0f} events/s",
        f"raw consumer {raw:,.0f} records/s",
        f"{worker_rate / raw:.2f}",
    )
    if delays:
        p50 = statistics.median(delays)
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        table.add_row(
            f"freshness at {args.fresh_rate:,.0f} events/s ({len(delays)} events)",
            f"p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms",
            "budget p99 ≤ 1 s",
            f"{p99:.2f}",
        )
    table.add_row(
        "exact counts after the run",
        f"{len(callers) - wrong:,} of {len(callers):,} callers exact",
        f"{args.events:,} setups sent",
        "exact" if wrong == 0 else f"{wrong} callers wrong",
    )
    if pending:
        table.add_row("events never visible", str(len(pending)), "", "")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
