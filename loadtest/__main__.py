"""``python -m loadtest generate|replay|report|run``: the traffic simulator's command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtest import report
from loadtest.console import console
from loadtest.jobs import generate, replay_dataset
from loadtest.mesh import MeshError
from loadtest.processes import REPO_ROOT
from loadtest.replay import ReplayError
from loadtest.run import LEAD_IN_HOURS, OFFERED_CALLS_PER_S, run
from loadtest.scenario import ScenarioError
from services.common.settings import SettingsError


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
    gen.set_defaults(func=generate)
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
    rep.set_defaults(func=replay_dataset)
    rpt = sub.add_parser("report", help="detection quality and latency report with plots")
    rpt.add_argument("--dataset", type=Path, required=True)
    rpt.add_argument("--out", type=Path, required=True)
    rpt.add_argument("--no-plots", action="store_true")
    rpt.set_defaults(
        func=lambda a: report.main(
            ["--dataset", str(a.dataset), "--out", str(a.out), *(["--no-plots"] if a.no_plots else [])]
        )
    )
    job = sub.add_parser("run", help="the main job: generate, replay through the mesh, verify, report")
    job.add_argument("--scenario", default="ci")
    job.add_argument("--data", type=Path, default=REPO_ROOT / "data")
    job.add_argument("--reports", type=Path, default=REPO_ROOT / "reports")
    job.add_argument(
        "--lead-in-hours",
        type=float,
        default=LEAD_IN_HOURS,
        help="history before the scored window: folded by reputation first, never scored (0 = cold start)",
    )
    job.add_argument(
        "--rate",
        type=float,
        default=OFFERED_CALLS_PER_S,
        help="Decide calls per second offered in the scored window, paced at the dataset's own timing "
        "(the lead-in is flat out); 0 = flat out, a saturation run",
    )
    job.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="simulated seconds per wall second in the scored window instead of --rate (0 = use --rate)",
    )
    job.add_argument("--max-seconds", type=float, default=900.0)
    job.add_argument(
        "--kafka-only", action="store_true", help="setups straight to Kafka; only reputation runs"
    )
    job.add_argument(
        "--no-audio", action="store_true", help="publish no audio even if the scenario's capture.audio is on"
    )
    job.add_argument("--model", type=Path, default=None, help="model artifact (default: the shipped one)")
    job.add_argument(
        "--decide-timeout-ms",
        type=float,
        default=1000.0,
        help="client deadline per Decide (generous: the run checks decisions; latency is measured)",
    )
    job.add_argument(
        "--concurrency", type=int, default=4, help="Decide calls in flight (a switch's trunk group)"
    )
    job.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="how long to wait for reputation to catch up (after the lead-in, and after the replay)",
    )
    job.set_defaults(func=run)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ScenarioError, SettingsError, ReplayError, MeshError) as exc:
        console.print(f"[red]{exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
