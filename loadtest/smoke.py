"""Smoke pipeline: simulated call setups → Kafka → reputation worker → Redis, checked end to end.

Produces a burst of call setups from a small caller population (some callers far busier than
others, as robocallers are), re-sends a share of them (duplicates must count once), adds poison
records (they must land on the dead-letter topic with a reason), runs a real reputation worker,
and verifies every caller's count in Redis, every key's TTL, and every dead letter. Exits non-zero
on any mismatch. Later issues replace the population with the full traffic simulator.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from loadtest.kafkaio import SetupProducer, call_setup, end_offsets, pseudonyms_of, read_dead_letters
from loadtest.processes import REPO_ROOT, ServiceProcess
from services.common import keys
from services.common.featurestore import held_counts
from services.common.phone import InvalidNumberError, normalize
from services.common.progress import progress_bar
from services.common.pseudonym import Pseudonymizer
from services.common.redisstore import make_sync_redis
from services.common.settings import CommonSettings, SettingsError, load
from services.common.topics import CALLS_SETUP, dead_letter_topic, ensure_topics

console = Console(stderr=True)


def random_number(rng: random.Random, region: str) -> str:
    """A valid, randomly drawn number in one of the styles real callers present."""
    styles = {
        "CN": [
            lambda: "1" + rng.choice(["38", "39", "50", "86", "70", "71"]) + f"{rng.randrange(10**8):08d}",
            lambda: "010" + f"{rng.randrange(2 * 10**7, 9 * 10**7):08d}",
            lambda: "+86 21 " + f"{rng.randrange(2 * 10**7, 9 * 10**7):08d}",
        ],
        "US": [lambda: "+1 650 " + f"{rng.randrange(200, 999)}{rng.randrange(10**4):04d}"],
    }
    while True:
        candidate = rng.choice(styles[region])()
        try:
            normalize(candidate, "CN")
            return candidate
        except InvalidNumberError:
            continue


def main(argv: list[str] | None = None) -> int:
    """Run the smoke pipeline; 0 when every check passes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--callers", type=int, default=60)
    parser.add_argument("--duplicate-share", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        settings = load(CommonSettings)
    except SettingsError as exc:
        console.print(f"[red]{exc}")
        return 2
    rng = random.Random(args.seed)
    run_id = uuid.uuid4().hex[:8]
    pseudonymize = Pseudonymizer(settings.pseudonym_key)

    console.print(f"[bold]fraudmesh smoke run {run_id}[/]: topics on {settings.kafka_bootstrap}")
    ensure_topics(settings.kafka_bootstrap)
    dlq_start = end_offsets(settings.kafka_bootstrap, dead_letter_topic("reputation"))

    worker = ServiceProcess(
        "services.reputation",
        {"FRAUDMESH_METRICS_PORT": "0"},
        REPO_ROOT / ".stack" / "logs" / "reputation-smoke.log",
    )
    try:
        return _run(args, settings, rng, run_id, pseudonymize, worker, dlq_start)
    finally:
        worker.stop()


def _run(
    args: argparse.Namespace,
    settings: CommonSettings,
    rng: random.Random,
    run_id: str,
    pseudonymize: Pseudonymizer,
    worker: ServiceProcess,
    dlq_start: dict[int, int],
) -> int:
    callers = [random_number(rng, "US" if i % 10 == 9 else "CN") for i in range(args.callers)]
    weights = [1.0 / (rank + 1) for rank in range(len(callers))]
    callees = [random_number(rng, "CN") for _ in range(args.calls // 4 + 1)]
    producer = SetupProducer.connect(settings.kafka_bootstrap, pseudonymize, settings.default_region)
    expected: Counter[str] = Counter()
    duplicates = 0
    started = time.monotonic()
    with progress_bar(console) as progress:
        task = progress.add_task("producing call setups", total=args.calls)
        for _ in range(args.calls):
            caller = rng.choices(callers, weights)[0]
            record = call_setup(caller, rng.choice(callees), tenant="demo-cn")
            producer.send(record)
            expected[caller] += 1
            if rng.random() < args.duplicate_share:
                producer.send(record)
                duplicates += 1
            progress.advance(task)
        poison = [
            (f"smoke-{run_id}-garbage".encode(), b"\x08\x96\x01\xff\xff not protobuf"),
            (f"smoke-{run_id}-empty".encode(), b""),
            (
                f"smoke-{run_id}-badnumber".encode(),
                CALLS_SETUP.codec().encode(call_setup("not-a-number", callees[0], tenant="demo-cn")),
            ),
        ]
        for key, value in poison:
            producer.send_raw(CALLS_SETUP, key, value)
        producer.flush()
        produced_s = time.monotonic() - started

        client = make_sync_redis(settings)
        pseudonyms = pseudonyms_of(callers, pseudonymize, settings.default_region)
        total = sum(expected.values())
        wait = progress.add_task("waiting for Redis to reflect every setup", total=total)
        deadline = time.monotonic() + args.timeout

        def read_counts() -> dict[str, int]:
            held = held_counts(client, [pseudonyms[c] for c in callers], ["setups"])
            return {c: counts[0] for c, counts in zip(callers, held, strict=True)}

        seen: dict[str, int] = {}
        while time.monotonic() < deadline:
            seen = read_counts()
            progress.update(wait, completed=min(sum(seen.values()), total))
            if all(seen[c] >= expected[c] for c in callers) or not worker.alive():
                break
            time.sleep(0.25)
        visible_s = time.monotonic() - started
        time.sleep(1.0)  # a duplicate re-sent after a caller's last call would land now, if counted
        seen = read_counts()

    letters = read_dead_letters(
        settings.kafka_bootstrap, "reputation", dlq_start, [key for key, _ in poison], timeout_s=30
    )
    ours = {key: letter.reason for key, letter in letters.items()}
    poison_ok = all(key in ours for key, _ in poison)
    mismatched = [c for c in callers if seen.get(c, 0) != expected[c]]
    # a number called once lives in its slot's probation bucket, one called more in its own keys
    ttl_missing = [
        pseudonyms[c]
        for c in callers
        if expected[c]
        and client.ttl((keys.number_key if expected[c] > 1 else keys.probation_key)(pseudonyms[c])) <= 0
    ]

    table = Table(title=f"smoke run {run_id}")
    table.add_column("check")
    table.add_column("value", justify="right")
    table.add_column("ok")
    mark = {True: "[green]✓", False: "[red]✗"}
    table.add_row("call setups produced (distinct)", str(total), "")
    table.add_row("duplicates re-sent (must count once)", str(duplicates), "")
    table.add_row("produce rate", f"{(total + duplicates) / produced_s:,.0f}/s", "")
    table.add_row(
        "callers whose Redis count matches",
        f"{len(callers) - len(mismatched)}/{len(callers)}",
        mark[not mismatched],
    )
    table.add_row("setups counted in Redis", str(sum(seen.values())), mark[sum(seen.values()) == total])
    table.add_row("time until all visible in Redis", f"{visible_s:.1f} s", "")
    table.add_row("number keys without TTL", str(len(ttl_missing)), mark[not ttl_missing])
    table.add_row("poison records dead-lettered", f"{len(ours)}/{len(poison)}", mark[poison_ok])
    for key, reason in sorted(ours.items()):
        table.add_row(f"  {key.decode().rsplit('-', 1)[-1]}", reason, "")
    console.print(table)
    if not worker.alive():
        console.print(f"[red]reputation worker exited early:[/]\n{worker.tail()}")
    ok = not mismatched and not ttl_missing and poison_ok and worker.alive()
    console.print(
        "[bold green]smoke pipeline OK"
        if ok
        else f"[bold red]smoke pipeline FAILED; worker log: {Path(worker.log_path).relative_to(REPO_ROOT)}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
