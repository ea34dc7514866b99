"""The simulator's plain jobs: write a scenario's dataset; replay a dataset into Kafka (and Decide)."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import timedelta

from loadtest.audio.render import AudioRender
from loadtest.console import console
from loadtest.replay import ReplayConfig, ReplayStats, replay
from loadtest.scenario import load
from loadtest.simulate import simulate, write_dataset
from services.common import eventloop
from services.common.progress import progress_bar
from services.common.pseudonym import Pseudonymizer
from services.common.settings import CommonSettings
from services.common.settings import load as load_settings
from training.dataset import Manifest


def generate(args: argparse.Namespace) -> int:
    """Simulate a scenario and write the dataset folder."""
    scenario = load(args.scenario)
    if args.seed is not None:
        scenario = dataclasses.replace(scenario, seed=args.seed)
    lead_in = getattr(args, "lead_in_hours", 0.0)
    if lead_in:
        scenario = dataclasses.replace(
            scenario,
            start=scenario.start - timedelta(hours=lead_in),
            duration_hours=scenario.duration_hours + lead_in,
        )
    console.print(f"simulating scenario [bold]{scenario.name}[/] (seed {scenario.seed}) ...")
    sim = simulate(scenario)
    calls = len(sim.calls)
    console.print(f"  {calls:,} calls simulated in {sim.generate_s:.2f} s")
    with progress_bar(console, rate=True) as progress:
        task = progress.add_task("writing events", total=calls * 2, rate="")
        manifest = write_dataset(sim, args.out, lambda step: progress.update(task, completed=step))
        progress.update(task, completed=calls * 2)
    if lead_in:
        manifest.generator["lead_in_hours"] = lead_in
        manifest.write(args.out)
    total_s = manifest.generator["simulate_s"] + manifest.generator["write_s"]
    console.print(
        f"wrote {args.out}: {manifest.counts} in {total_s:.1f} s "
        f"({calls / total_s:,.0f} calls/s; simulate {manifest.generator['simulate_s']} s, "
        f"emit+sign+write {manifest.generator['write_s']} s)"
    )
    return 0


def replay_dataset(args: argparse.Namespace) -> int:
    """Publish a dataset to Kafka (and Decide) in compressed time."""
    settings = load_settings(CommonSettings)
    manifest = Manifest.read(args.dataset)
    config = ReplayConfig(
        bootstrap=settings.kafka_bootstrap,
        pseudonymize=Pseudonymizer(settings.pseudonym_key),
        default_region=settings.default_region,
        speed=args.speed,
        max_events=args.max_events,
        max_seconds=args.max_seconds,
        decide=args.decide,
        decide_timeout_s=args.decide_timeout_ms / 1000,
        concurrency=args.concurrency,
        audio=AudioRender(args.dataset, manifest.seed, args.max_audio_segments).wait() if args.audio else {},
    )
    published = {"setups", "cdrs", "complaints", "audio_segments", "presence"}
    total = sum(v for k, v in manifest.counts.items() if k in published)
    if args.max_events:
        total = min(total, args.max_events)
    with progress_bar(console, rate=True) as progress:
        task = progress.add_task("replaying", total=total, rate="")

        def update(stats: ReplayStats) -> None:
            progress.update(
                task, completed=stats.events + stats.skipped_audio, rate=f"sim {stats.simulated_s:,.0f} s"
            )

        stats = eventloop.run(replay(args.dataset, config, update))
        progress.update(task, completed=stats.events + stats.skipped_audio)
    console.print(
        f"replayed {stats.events:,} events in {stats.wall_s:.1f} s "
        f"({stats.events / max(stats.wall_s, 1e-9):,.0f}/s), "
        f"{stats.simulated_s / 3600:.2f} simulated hours; stopped by {stats.stopped_by}"
    )
    console.print(f"  published: {stats.published}")
    if stats.skipped_audio:
        console.print(f"  audio metadata without rendered audio (not published): {stats.skipped_audio:,}")
    if args.decide:
        console.print(f"  decided: {stats.decided:,}; errors: {stats.decide_errors or 'none'}")
    if stats.unkeyable:
        console.print(
            f"  {stats.unkeyable:,} records had an unusable number and were published without a key"
        )
    return 0
