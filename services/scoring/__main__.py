"""Train scoring models: ``train`` from a features npz, ``train-synthetic`` for a placeholder model."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path

from services.scoring import synthetic
from services.scoring.train import TrainingError, load_features, train


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m services.scoring``."""
    parser = argparse.ArgumentParser(prog="python -m services.scoring", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    from_file = commands.add_parser("train", help="train on a features npz (X, y, t_ms, kinds)")
    from_file.add_argument("--features", type=Path, required=True, help="npz written by train.save_features")
    from_file.add_argument(
        "--manifest", type=Path, help="JSON describing the training data, kept in the artifact"
    )
    build = commands.add_parser(
        "build-features", help="replay a simulator dataset through reputation into a features npz"
    )
    build.add_argument("--dataset", type=Path, required=True)
    build.add_argument("--out", type=Path, required=True, help="npz to write")
    build.add_argument(
        "--scratch-redis", help="a Redis db this may wipe (default: FRAUDMESH_REDIS_URL's server, db 15)"
    )
    placeholder = commands.add_parser(
        "train-synthetic", help="train a PLACEHOLDER model on synthetic rows in seconds"
    )
    placeholder.add_argument("--rows", type=int, default=200_000)
    placeholder.add_argument("--seed", type=int, default=7)
    for command in (from_file, placeholder):
        command.add_argument("--out", type=Path, required=True, help="artifact folder to write")
        command.add_argument("--trees", type=int, default=300)
        command.add_argument("--depth", type=int, default=6)
        command.add_argument("--learning-rate", type=float, default=0.05)
        command.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "build-features":
        return _build_features(args)
    options = {
        "trees": args.trees,
        "depth": args.depth,
        "learning_rate": args.learning_rate,
        "threads": args.threads,
    }
    try:
        if args.command == "train":
            features = load_features(args.features)
            manifest = dict(features.manifest)
            if args.manifest:
                manifest.update(json.loads(args.manifest.read_text()))
            train(
                features.X, features.y, features.t_ms, features.kinds, args.out, manifest=manifest, **options
            )
        else:
            rows = synthetic.generate(args.rows, seed=args.seed)
            manifest = {
                "synthetic": True,
                "generator": "services.scoring.synthetic",
                "rows": args.rows,
                "seed": args.seed,
                "note": "placeholder until features are replayed from the simulator's dataset",
            }
            train(rows.X, rows.y, rows.t_ms, rows.kinds, args.out, manifest=manifest, **options)
    except (TrainingError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _build_features(args: argparse.Namespace) -> int:
    """Point-in-time features for every call of a dataset (see services.scoring.pointintime)."""
    from rich.progress import Progress

    from services.common.context import ContextRules
    from services.common.settings import SettingsError, load
    from services.reputation.settings import ReputationSettings
    from services.scoring.pointintime import ScratchDatabaseError, build_sync
    from services.scoring.train import save_features

    try:
        settings = load(ReputationSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    rules = ContextRules(
        region=settings.default_region,
        home_ranges=settings.home_ranges,
        risky_ranges=settings.risky_ranges,
        utc_offset_hours=settings.utc_offset_hours,
    )
    scratch = args.scratch_redis or urllib.parse.urlparse(settings.redis_url)._replace(path="/15").geturl()
    with Progress() as progress:
        task = progress.add_task("replaying the dataset through reputation", total=None)
        try:
            rows = build_sync(
                args.dataset,
                scratch,
                settings,
                rules,
                lambda n: progress.update(task, completed=n),
            )
        except ScratchDatabaseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    save_features(args.out, rows)
    print(
        f"wrote {args.out}: {len(rows.y):,} rows, {rows.y.mean():.1%} unwanted, "
        f"built in {rows.manifest['build_s']} s ({rows.manifest['rows_per_s']:,} rows/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
