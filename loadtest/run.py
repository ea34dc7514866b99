"""The main job (``python -m loadtest run``): generate, replay through the real mesh, verify, report."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudmesh.v1 import events_pb2
from loadtest import audiorun, report
from loadtest.audio.render import AudioRender
from loadtest.console import console
from loadtest.jobs import generate
from loadtest.kafkaio import end_offsets
from loadtest.mesh import LOGS, Mesh, fresh_group
from loadtest.model import resolve_model
from loadtest.processes import REPO_ROOT
from loadtest.replay import ReplayConfig, ReplayStats, replay
from loadtest.scenario import Scenario, load
from loadtest.supervision import SUPERVISION_RECORD, restarts_text
from services.common import eventloop
from services.common.featurestore import held_counts
from services.common.progress import progress_bar
from services.common.pseudonym import Pseudonymizer
from services.common.redisstore import make_sync_redis
from services.common.settings import CommonSettings
from services.common.settings import load as load_settings
from services.common.topics import AUDIO_VERDICTS, ensure_topics
from training.dataset import AUDIO_RUN, CALLS, EVENTS, Manifest, read_records

MAX_DECIDE_ERROR_SHARE = 0.01  # client deadlines missed under CPU contention; more fails the run
LEAD_IN_HOURS = 24.0  # a whole day before the scored window: every daily rhythm has been seen once
# Offered Decide load in the scored window. A decision pod runs well below saturation in production
# (it is sized for its busy hour with headroom); on a 2-core machine that also hosts Kafka, Redis,
# reputation, audio and this client, this rate leaves the call path that headroom. `--rate 0`
# replays flat out, a saturation run: there the production sub-deadlines are missed and most
# decisions are degraded (docs/architecture.md, "Load and degraded decisions").
OFFERED_CALLS_PER_S = 100.0


def run_folders(scenario: Scenario, data: Path, reports: Path) -> tuple[Path, Path]:
    """Where a run writes its dataset and report: named after the scenario's ``name``, whether the
    scenario was given by name or as a path to a YAML file anywhere."""
    return data / scenario.name, reports / scenario.name


def run(args: argparse.Namespace) -> int:
    """The main job: generate a scenario, replay it through the real mesh, check it, report.

    The dataset starts ``--lead-in-hours`` before the scenario: that history goes straight to Kafka
    (setups as the audit-shaped records reputation folds, CDRs, complaints, audio segments), is
    folded by reputation — the job waits until every lead-in caller holds exactly its lead-in call
    count and the lead-in's audio verdicts are folded — and is never scored, so the scored window
    meets the warm state production lives in. Then setups go to DecisionService.Decide (which
    verifies with origination, reads reputation, scores, and publishes the audit record that
    reputation folds back in); CDRs and complaints go to Kafka. With ``--kafka-only`` setups go
    straight to Kafka and only reputation runs.
    """
    # A pseudonym key of its own (test-only, never stored) isolates this run's Redis state from
    # earlier runs of the same numbers, so "exactly its call count" stays exact on a reused stack.
    run_key = secrets.token_hex(32)
    settings = load_settings(CommonSettings, {**os.environ, "FRAUDMESH_PSEUDONYM_KEY": run_key})
    pseudonymize = Pseudonymizer(settings.pseudonym_key)
    run_env = {"FRAUDMESH_PSEUDONYM_KEY": run_key}
    ensure_topics(settings.kafka_bootstrap)
    scenario = load(args.scenario)
    dataset, reports = run_folders(scenario, args.data, args.reports)
    capture = scenario.capture
    generating = argparse.Namespace(
        scenario=args.scenario, out=dataset, seed=None, lead_in_hours=args.lead_in_hours
    )
    if generate(generating) != 0:
        return 1
    (dataset / AUDIO_RUN).unlink(missing_ok=True)
    (dataset / SUPERVISION_RECORD).unlink(missing_ok=True)
    manifest = Manifest.read(dataset)
    scored_from = report.scored_from_ms(manifest)
    caller_of = {r.call_truth.call_id: r.call_truth.presented_number for r in read_records(dataset / CALLS)}
    expected = {"setups": Counter(caller_of.values())}
    lead_in = LeadIn(_lead_in_counts(dataset, caller_of, scored_from))
    scored_calls = len(caller_of) - sum(lead_in.expected["setups"].values())
    window_s = manifest.duration_s - (scored_from - manifest.start_ms) / 1000
    speed = args.speed or _speed_for(args.rate, scored_calls, window_s)
    render: AudioRender | None = None
    if capture.audio and not args.no_audio:
        render = AudioRender(dataset, manifest.seed, capture.max_audio_segments)
    audio_env: dict[str, str] | None = None
    audio_store: Any = None
    if render is not None and render.chosen:
        audio_url, audio_store = audiorun.fresh_audio_store(settings)
        audio_env = {"FRAUDMESH_REDIS_URL": audio_url}
    if args.kafka_only:
        mesh = Mesh()
        mesh.spawn(
            "reputation",
            "services.reputation",
            {"FRAUDMESH_METRICS_PORT": "0", **run_env, **fresh_group(settings.kafka_bootstrap)},
        )
        if audio_env is not None:
            mesh.start_audio(
                {"FRAUDMESH_METRICS_PORT": "0", **run_env, **audio_env}, settings.kafka_bootstrap
            )
        mesh.supervise()
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
            speed=speed,
            paced_until_ms=manifest.start_ms + round(manifest.duration_s * 1000),
            offered_calls_per_s=scored_calls / window_s * speed if speed > 0 and window_s > 0 else 0.0,
            max_seconds=args.max_seconds,
            decide=mesh.decide_address,
            decide_timeout_s=args.decide_timeout_ms / 1000,
            concurrency=args.concurrency,
            audio=rendered,
            scored_from_ms=scored_from if args.lead_in_hours > 0 else 0,
            abort=lambda: mesh.failure,
        )

        def settle(stats: ReplayStats) -> None:
            started = time.monotonic()
            lead_in.matched, lead_in.waited_s = _wait_for_reputation(
                settings, pseudonymize, lead_in.expected, lambda: mesh.alive("reputation"), args.timeout
            )
            if stats.lead_in_audio:
                lead_in.verdicts = audiorun.read_verdicts(
                    settings.kafka_bootstrap,
                    verdicts_since,
                    stats.lead_in_audio,
                    args.timeout,
                    lambda: mesh.alive("audio"),
                )
                lead_in.folded = audiorun.wait_folded(
                    make_sync_redis(settings),
                    pseudonymize,
                    lead_in.verdicts.values(),
                    settings.default_region,
                    60.0,
                )
            lead_in.settled_s = time.monotonic() - started
            _print_lead_in(args.lead_in_hours, stats, lead_in)

        with progress_bar(console, rate=True) as progress:
            where = "Decide + Kafka" if mesh.decide_address else "Kafka"
            task = progress.add_task(f"replaying into {where}", total=None, rate="")

            def update(stats: ReplayStats) -> None:
                phase = "lead-in into Kafka" if lead_in.callers and not stats.lead_in_wall_s else where
                progress.update(
                    task,
                    description=f"replaying {phase}",
                    completed=stats.events,
                    rate=f"sim {stats.simulated_s / 3600:,.1f} h",
                )

            stats = eventloop.run(replay(dataset, config, update, settle))
        scored_s = max(stats.scored_wall_s, 1e-9)
        console.print(
            f"replayed the scored window: {stats.scored_events:,} events in {scored_s:.1f} s "
            f"({stats.scored_events / scored_s:,.0f}/s), stopped by {stats.stopped_by}"
        )
        if mesh.decide_address:
            console.print(f"  decided: {stats.decided:,}; errors: {stats.decide_errors or 'none'}")
        if stats.audio_segments:
            console.print(f"  audio segments published: {stats.audio_segments:,}")
        matched, waited = _wait_for_reputation(
            settings, pseudonymize, expected, lambda: mesh.alive("reputation"), args.timeout
        )
        if stats.audio_segments:
            started = time.monotonic()
            verdicts = {
                **lead_in.verdicts,
                **audiorun.read_verdicts(
                    settings.kafka_bootstrap,
                    verdicts_since,
                    published.keys() - lead_in.verdicts.keys(),
                    args.timeout,
                    lambda: mesh.alive("audio"),
                ),
            }
            folded = audiorun.wait_folded(
                make_sync_redis(settings), pseudonymize, verdicts.values(), settings.default_region, 60.0
            )
            console.print(
                f"audio: {len(verdicts):,}/{stats.audio_segments:,} verdicts back, {folded:,} folded by "
                f"reputation ({time.monotonic() - started:.1f} s after reputation caught up)"
            )
    finally:
        codes = mesh.stop()
        _record_supervision(dataset, mesh)
    console.print(
        f"reputation: {matched:,}/{len(expected['setups']):,} caller numbers hold exactly their call count "
        "in Redis "
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
        audio_figures["segments_published_in_lead_in"] = len(stats.lead_in_audio)
        audiorun.write(dataset, audio_figures)
        _print_audio(audio_figures)
    if mesh.failure:
        console.print(f"[red]the mesh broke for good: {mesh.failure}")
    unclean = {name: code for name, code in codes.items() if code != 0}
    if unclean:
        console.print(f"[red]services did not stop cleanly: {unclean}")
    code = report.main(["--dataset", str(dataset), "--out", str(reports)])
    console.print(f"report: {reports / 'report.md'}")
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
    if not lead_in.folded_in_time:
        console.print(
            f"[red]reputation had not folded the lead-in when scoring began: {lead_in.matched:,} of "
            f"{lead_in.callers:,} lead-in callers held their setups and CDRs after {lead_in.waited_s:.0f} s"
        )
    ok = (
        matched == len(expected["setups"])
        and lead_in.folded_in_time
        and not unclean
        and not decide_failed
        and not audio_broken
        and not mesh.failure
    )
    return code or (0 if ok else 1)


@dataclass
class LeadIn:
    """The lead-in's setups and CDRs per caller, and what the job found before scoring began."""

    expected: dict[str, Counter[str]]
    matched: int = 0
    waited_s: float = 0.0
    verdicts: dict[str, events_pb2.AudioVerdict] = field(default_factory=dict)
    folded: int = 0
    settled_s: float = 0.0  # from the lead-in's last acknowledgement to the first scored call

    @property
    def callers(self) -> int:
        """Callers with a setup in the lead-in."""
        return len(self.expected["setups"])

    @property
    def folded_in_time(self) -> bool:
        """Every lead-in caller held exactly its lead-in setups and CDRs before the first scored call."""
        return self.matched == self.callers


def _print_lead_in(hours: float, stats: ReplayStats, lead_in: LeadIn) -> None:
    """How the lead-in went: published straight to Kafka, then folded by reputation (never scored)."""
    records = sum(stats.lead_in.values())
    audio = (
        f", {lead_in.folded:,}/{len(stats.lead_in_audio):,} audio verdicts folded"
        if stats.lead_in_audio
        else ""
    )
    console.print(
        f"lead-in ({hours:g} h, not scored): {records:,} records straight to Kafka in "
        f"{stats.lead_in_wall_s:.1f} s; reputation held the setups and CDRs of {lead_in.matched:,}/"
        f"{lead_in.callers:,} callers after {lead_in.waited_s:.1f} s{audio}; scoring begins "
        f"{lead_in.settled_s:.1f} s after the lead-in was published"
    )


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


def _speed_for(rate: float, scored_calls: int, window_s: float) -> float:
    """The replay speed (simulated seconds per wall second) that offers ``rate`` calls/s on average
    over the scored window; 0 (flat out) for rate 0 or an empty window."""
    if rate <= 0 or scored_calls <= 0 or window_s <= 0:
        return 0.0
    return rate * window_s / scored_calls


def _lead_in_counts(dataset: Path, caller_of: Mapping[str, str], scored_from: int) -> dict[str, Counter[str]]:
    """Per caller, the setups and CDRs the lead-in publishes (the counts reputation must hold before
    the first scored call)."""
    counts: dict[str, Counter[str]] = {"setups": Counter(), "cdrs": Counter()}
    for record in read_records(dataset / EVENTS):
        if record.time_ms >= scored_from:
            break
        kind = record.WhichOneof("record")
        if kind == "setup":
            counts["setups"][caller_of[record.setup.setup.call_id]] += 1
        elif kind == "cdr":
            counts["cdrs"][caller_of[record.cdr.call_id]] += 1
    return counts


def _record_supervision(dataset: Path, mesh: Mesh) -> None:
    """Say which services were restarted during the run (console and supervision.json, for the report)."""
    if mesh.restarts:
        console.print(
            f"[yellow]the mesh's supervisor restarted {restarts_text(mesh.restarts)} (logs in {LOGS})"
        )
    record = {"restarts": mesh.restarts, "failure": mesh.failure}
    (dataset / SUPERVISION_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def _wait_for_reputation(
    settings: CommonSettings,
    pseudonymize: Pseudonymizer,
    expected: Mapping[str, Counter[str]],
    alive: Callable[[], bool],
    timeout_s: float,
) -> tuple[int, float]:
    """Poll Redis until every caller's counts (``expected``: hash field → count per caller) equal
    what was published (or time runs out, or reputation is dead for good: ``alive`` false); how many
    callers match, and after how long."""
    client = make_sync_redis(settings)
    numbers = sorted(set().union(*expected.values()))
    fields = list(expected)
    started = time.monotonic()
    matched = 0
    pseudonyms = [pseudonymize(number) for number in numbers]
    while True:
        counts = held_counts(client, pseudonyms, fields)  # a number seen once is held in probation
        matched = sum(
            1
            for number, got in zip(numbers, counts, strict=True)
            if all(value == expected[f][number] for f, value in zip(fields, got, strict=True))
        )
        if matched == len(numbers) or time.monotonic() - started > timeout_s or not alive():
            return matched, time.monotonic() - started
        time.sleep(0.5)
