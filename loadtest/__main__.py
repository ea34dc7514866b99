"""``python -m loadtest generate|replay|report|run``: the traffic simulator's command line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import secrets
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from fraudmesh.v1 import events_pb2
from loadtest import audiorun, report
from loadtest.audio import attach
from loadtest.kafkaio import end_offsets
from loadtest.mesh import Mesh, MeshError, fresh_group
from loadtest.processes import REPO_ROOT, ServiceProcess
from loadtest.replay import ReplayConfig, ReplayError, ReplayStats, replay
from loadtest.scenario import ScenarioError, load
from loadtest.simulate import simulate, write_dataset
from services.common import keys
from services.common.progress import progress_bar
from services.common.pseudonym import Pseudonymizer
from services.common.redisstore import make_sync_redis
from services.common.settings import CommonSettings, SettingsError
from services.common.settings import load as load_settings
from services.common.topics import AUDIO_VERDICTS, ensure_topics
from training.dataset import AUDIO_RUN, CALLS, EVENTS, Manifest, read_records

console = Console(stderr=True)
MAX_DECIDE_ERROR_SHARE = 0.01  # client deadlines missed under CPU contention; more fails the run


def cmd_generate(args: argparse.Namespace) -> int:
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


def cmd_replay(args: argparse.Namespace) -> int:
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
        audio=_AudioRender(args.dataset, manifest.seed, args.max_audio_segments).wait() if args.audio else {},
    )
    total = sum(
        v for k, v in manifest.counts.items() if k in {"setups", "cdrs", "complaints", "audio_segments"}
    )
    if args.max_events:
        total = min(total, args.max_events)
    with progress_bar(console, rate=True) as progress:
        task = progress.add_task("replaying", total=total, rate="")

        def update(stats: ReplayStats) -> None:
            progress.update(
                task, completed=stats.events + stats.skipped_audio, rate=f"sim {stats.simulated_s:,.0f} s"
            )

        stats = asyncio.run(replay(args.dataset, config, update))
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


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: generate a scenario, replay it through the real mesh, check it, report.

    Setups go to DecisionService.Decide (which verifies with origination, reads reputation, scores,
    and publishes the audit record that reputation folds back in); CDRs and complaints go to Kafka.
    With ``--kafka-only`` setups go straight to Kafka and only reputation runs.
    """
    # A pseudonym key of its own (test-only, never stored) isolates this run's Redis state from
    # earlier runs of the same numbers, so "exactly its call count" stays exact on a reused stack.
    run_key = secrets.token_hex(32)
    settings = load_settings(CommonSettings, {**os.environ, "FRAUDMESH_PSEUDONYM_KEY": run_key})
    pseudonymize = Pseudonymizer(settings.pseudonym_key)
    run_env = {"FRAUDMESH_PSEUDONYM_KEY": run_key}
    ensure_topics(settings.kafka_bootstrap)
    dataset = args.data / args.scenario
    capture = load(args.scenario).capture
    if cmd_generate(argparse.Namespace(scenario=args.scenario, out=dataset, seed=None)) != 0:
        return 1
    (dataset / AUDIO_RUN).unlink(missing_ok=True)
    render: _AudioRender | None = None
    if capture.audio and not args.no_audio:
        render = _AudioRender(dataset, Manifest.read(dataset).seed, capture.max_audio_segments)
    audio_env: dict[str, str] | None = None
    audio_store: Any = None
    if render is not None and render.chosen:
        audio_url, audio_store = audiorun.fresh_audio_store(settings)
        audio_env = {"FRAUDMESH_REDIS_URL": audio_url}
    if args.kafka_only:
        mesh = Mesh()
        mesh.processes["reputation"] = ServiceProcess(
            "services.reputation",
            {"FRAUDMESH_METRICS_PORT": "0", **run_env, **fresh_group(settings.kafka_bootstrap)},
            REPO_ROOT / ".stack" / "logs" / "reputation-run.log",
        )
        if audio_env is not None:
            mesh.start_audio(
                {"FRAUDMESH_METRICS_PORT": "0", **run_env, **audio_env}, settings.kafka_bootstrap
            )
    else:
        model = resolve_model(args.model, args.reports / "placeholder-model")
        audio_note = ", audio" if audio_env is not None else ""
        console.print(f"starting the mesh (reputation, origination, decision{audio_note}; model {model}) ...")
        mesh = Mesh.start(
            dataset / "pki", model, run_env, bootstrap=settings.kafka_bootstrap, audio_env=audio_env
        )
    verdicts: dict[str, events_pb2.AudioVerdict] = {}
    published: dict[str, str] = {}  # segment id → call id
    folded = 0
    try:
        rendered = render.wait() if render is not None else {}
        published = {sid: render.call_ids[sid] for sid in rendered} if render is not None else {}
        verdicts_since = end_offsets(settings.kafka_bootstrap, AUDIO_VERDICTS)
        campaigns_before = audiorun.campaign_index(audio_store) if audio_store is not None else set()
        config = ReplayConfig(
            bootstrap=settings.kafka_bootstrap,
            pseudonymize=pseudonymize,
            default_region=settings.default_region,
            speed=args.speed,
            max_seconds=args.max_seconds,
            decide=mesh.decide_address,
            decide_timeout_s=args.decide_timeout_ms / 1000,
            concurrency=args.concurrency,
            audio=rendered,
        )
        with progress_bar(console, rate=True) as progress:
            where = "Decide + Kafka" if mesh.decide_address else "Kafka"
            task = progress.add_task(f"replaying into {where}", total=None, rate="")

            def update(stats: ReplayStats) -> None:
                progress.update(task, completed=stats.events, rate=f"sim {stats.simulated_s / 3600:,.1f} h")

            stats = asyncio.run(replay(dataset, config, update))
        console.print(
            f"replayed {stats.events:,} events in {stats.wall_s:.1f} s "
            f"({stats.events / stats.wall_s:,.0f}/s), "
            f"stopped by {stats.stopped_by}"
        )
        if mesh.decide_address:
            console.print(f"  decided: {stats.decided:,}; errors: {stats.decide_errors or 'none'}")
        if stats.audio_segments:
            console.print(f"  audio segments published: {stats.audio_segments:,}")
        expected = Counter(r.call_truth.presented_number for r in read_records(dataset / CALLS))
        matched, waited = _wait_for_reputation(
            settings, pseudonymize, expected, mesh.processes["reputation"], args.timeout
        )
        if stats.audio_segments:
            started = time.monotonic()
            verdicts = audiorun.read_verdicts(
                settings.kafka_bootstrap, verdicts_since, published, args.timeout, lambda: mesh.alive("audio")
            )
            folded = audiorun.wait_folded(
                make_sync_redis(settings), pseudonymize, verdicts.values(), settings.default_region, 60.0
            )
            console.print(
                f"audio: {len(verdicts):,}/{stats.audio_segments:,} verdicts back, {folded:,} folded by "
                f"reputation ({time.monotonic() - started:.1f} s after reputation caught up)"
            )
    finally:
        codes = mesh.stop()
    console.print(
        f"reputation: {matched:,}/{len(expected):,} caller numbers hold exactly their call count in Redis "
        f"({waited:.1f} s after the replay finished)"
    )
    if stats.audio_segments:
        audio_figures = audiorun.summarise(
            dataset,
            published,
            verdicts,
            folded,
            make_sync_redis(settings),
            audio_store,
            pseudonymize,
            campaigns_before,
        )
        audiorun.write(dataset, audio_figures)
        _print_audio(audio_figures)
    unclean = {name: code for name, code in codes.items() if code != 0}
    if unclean:
        console.print(f"[red]services did not stop cleanly: {unclean}")
    code = report.main(["--dataset", str(dataset), "--out", str(args.reports / args.scenario)])
    console.print(f"report: {args.reports / args.scenario / 'report.md'}")
    errors = sum(stats.decide_errors.values())
    decide_failed = bool(mesh.decide_address) and (
        stats.decided == 0 or errors > MAX_DECIDE_ERROR_SHARE * stats.decided
    )
    if errors:
        colour = "red" if decide_failed else "yellow"
        console.print(
            f"[{colour}]Decide errors: {stats.decide_errors} "
            f"(tolerated: {MAX_DECIDE_ERROR_SHARE:.0%} of calls)"
        )
    audio_broken = stats.audio_segments > 0 and not verdicts
    if audio_broken:
        console.print(
            f"[red]{stats.audio_segments:,} audio segments were published but no verdict came back: "
            f"the audio path is broken (see {REPO_ROOT / '.stack' / 'logs' / 'audio-run.log'})"
        )
    ok = matched == len(expected) and not unclean and not decide_failed and not audio_broken
    return code or (0 if ok else 1)


class _AudioRender:
    """Renders captured calls' audio in the background (one process per core, e.g. while the mesh
    starts); ``wait`` shows a progress bar until it is done."""

    def __init__(self, dataset: Path, seed: int, limit: int) -> None:
        captured = attach.captured(dataset / EVENTS)
        self.captured = len(captured)
        self.chosen = attach.choose(captured, limit, seed)
        self.call_ids = {m.segment.segment_id: m.segment.call_id for m in self.chosen}
        self.done = 0
        self.workers = os.cpu_count() or 1
        self.started = time.monotonic()
        pool = ThreadPoolExecutor(1)
        self._future = pool.submit(attach.render_all, self.chosen, seed, self.workers, self._count)
        pool.shutdown(wait=False)

    def _count(self, done: int) -> None:
        self.done = done

    def wait(self) -> dict[str, bytes]:
        """The rendered segments (encoded AudioSegments by segment id)."""
        with progress_bar(console, rate=True) as progress:
            task = progress.add_task("rendering audio", total=len(self.chosen), rate="")
            while not self._future.done():
                progress.update(task, completed=self.done)
                time.sleep(0.2)
            progress.update(task, completed=self.done)
        rendered = self._future.result()
        console.print(
            f"rendered audio for {len(rendered):,} of {self.captured:,} captured calls in "
            f"{time.monotonic() - self.started:.1f} s ({self.workers} processes, "
            f"{len(attach.engine_voices())} voices)"
        )
        return rendered


def _print_audio(figures: dict[str, Any]) -> None:
    """The run's audio figures in a few lines (all of them are in audio.json and the report)."""
    discovered = figures["audio_campaigns_discovered_this_run"]
    console.print(
        f"audio campaigns: {len(discovered)} discovered this run, "
        f"{len(figures['audio_campaigns_matched'])} matched by this run's segments"
    )
    for name, row in figures["simulated_campaigns"].items():
        console.print(
            f"  {name}: {row['numbers_linked']}/{row['numbers_with_audio']} numbers with audio linked "
            f"(of {row['numbers']} numbers it used) → {len(row['audio_campaigns'])} audio campaign(s)"
        )
    if figures["false_links_by_kind"]:
        console.print(f"  linked numbers outside any simulated campaign: {figures['false_links_by_kind']}")


def resolve_model(given: Path | None, placeholder: Path) -> Path:
    """The model artifact for the mesh: --model, else the shipped default, else a synthetic placeholder."""
    if given is not None:
        return given
    from services.scoring import model as scoring_model

    default = getattr(scoring_model, "DEFAULT_MODEL_PATH", None)
    if default is not None and Path(default).exists():
        return Path(default)
    console.print("[yellow]no default model ships in this checkout: training a synthetic PLACEHOLDER model")
    from training.synthetic import generate
    from training.train import train

    rows = generate(50_000, seed=7)
    train(
        rows.X,
        rows.y,
        rows.t_ms,
        rows.kinds,
        placeholder,
        manifest={"synthetic": True, "placeholder": True},
        trees=100,
    )
    return placeholder


def _wait_for_reputation(
    settings: CommonSettings,
    pseudonymize: Pseudonymizer,
    expected: Counter[str],
    worker: ServiceProcess,
    timeout_s: float,
) -> tuple[int, float]:
    """Poll Redis until every caller's setup count equals the calls it made (or time runs out)."""
    client = make_sync_redis(settings)
    numbers = list(expected)
    started = time.monotonic()
    matched = 0
    while True:
        pipe = client.pipeline(transaction=False)
        for number in numbers:
            pipe.hget(keys.number_key(pseudonymize(number)), "setups")
        counts = pipe.execute()
        matched = sum(
            1 for number, got in zip(numbers, counts, strict=True) if int(got or 0) == expected[number]
        )
        if matched == len(numbers) or time.monotonic() - started > timeout_s or not worker.alive():
            return matched, time.monotonic() - started
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m loadtest``."""
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="simulate a scenario into a dataset folder")
    gen.add_argument(
        "--scenario", default="default", help="scenario file, or a bundled name: default, ci, stress"
    )
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    gen.add_argument(
        "--lead-in-hours",
        type=float,
        default=0.0,
        help="also simulate this many hours before the scenario's start (training history for a model)",
    )
    gen.set_defaults(func=cmd_generate)
    rep = sub.add_parser("replay", help="publish a dataset to Kafka (and Decide) in compressed time")
    rep.add_argument("--dataset", type=Path, required=True)
    rep.add_argument(
        "--speed", type=float, default=1440.0, help="simulated seconds per wall second; 0 = flat out"
    )
    rep.add_argument("--max-events", type=int, default=0, help="stop after this many events (0 = all)")
    rep.add_argument("--max-seconds", type=float, default=600.0, help="stop after this much wall time")
    rep.add_argument("--decide", default="", help="DecisionService address on loopback, e.g. 127.0.0.1:50051")
    rep.add_argument("--decide-timeout-ms", type=float, default=50.0)
    rep.add_argument("--concurrency", type=int, default=64)
    rep.add_argument("--audio", action="store_true", help="render and publish audio for captured calls")
    rep.add_argument("--max-audio-segments", type=int, default=300, help="with --audio: at most this many")
    rep.set_defaults(func=cmd_replay)
    rpt = sub.add_parser("report", help="detection quality and latency report with plots")
    rpt.add_argument("--dataset", type=Path, required=True)
    rpt.add_argument("--out", type=Path, required=True)
    rpt.add_argument("--no-plots", action="store_true")
    rpt.set_defaults(
        func=lambda a: report.main(
            ["--dataset", str(a.dataset), "--out", str(a.out), *(["--no-plots"] if a.no_plots else [])]
        )
    )
    run = sub.add_parser("run", help="the main job: generate, replay through the mesh, verify, report")
    run.add_argument("--scenario", default="ci")
    run.add_argument("--data", type=Path, default=REPO_ROOT / "data")
    run.add_argument("--reports", type=Path, default=REPO_ROOT / "reports")
    run.add_argument(
        "--speed", type=float, default=0.0, help="simulated seconds per wall second; 0 = flat out"
    )
    run.add_argument("--max-seconds", type=float, default=900.0)
    run.add_argument(
        "--kafka-only", action="store_true", help="setups straight to Kafka; only reputation runs"
    )
    run.add_argument(
        "--no-audio", action="store_true", help="publish no audio even if the scenario's capture.audio is on"
    )
    run.add_argument("--model", type=Path, default=None, help="model artifact (default: the shipped one)")
    run.add_argument(
        "--decide-timeout-ms",
        type=float,
        default=1000.0,
        help="client deadline per Decide (generous: the run checks decisions; latency is measured)",
    )
    run.add_argument(
        "--concurrency", type=int, default=4, help="Decide calls in flight (a switch's trunk group)"
    )
    run.add_argument(
        "--timeout", type=float, default=180.0, help="how long to wait for reputation to catch up"
    )
    run.set_defaults(func=cmd_run)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ScenarioError, SettingsError, ReplayError, MeshError) as exc:
        console.print(f"[red]{exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
