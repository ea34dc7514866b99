"""Scoring models: ``build-features`` from a dataset, ``train`` from a features npz, ``evaluate`` a trained
model on features it never saw, ``ship`` a trained model as the repository's default,
``train-synthetic`` for a placeholder model."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import urllib.parse
from pathlib import Path

from services.common.progress import progress_bar
from services.decision.policy import PolicyError
from services.scoring.artifact import ArtifactError
from services.scoring.model import DEFAULT_MODEL_PATH, Scorer
from training import evaluate, synthetic
from training.evaluate import DEFAULT_POLICY
from training.train import TrainingError, load_features, train


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m training``."""
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
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
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes preparing events (decode, verify, normalise) beside the one talking to Redis",
    )
    build.add_argument(
        "--scratch-redis", help="a Redis db this may wipe (default: FRAUDMESH_REDIS_URL's server, db 15)"
    )
    check = commands.add_parser(
        "evaluate",
        help="score features from another dataset at the model's operating points and the policy's",
    )
    check.add_argument("--model", type=Path, required=True, help="artifact folder")
    check.add_argument("--features", type=Path, required=True, help="npz written by build-features")
    check.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help=f"(default: {DEFAULT_POLICY})")
    check.add_argument(
        "--out", type=Path, help="report folder (default: reports/evaluation/<model version>/<scenario>/)"
    )
    check.add_argument(
        "--from-manifest-window",
        action=argparse.BooleanOptionalAction,
        help="only rows from the features manifest's holdout_from_ms on (default: on when it has one)",
    )
    ship = commands.add_parser(
        "ship", help="copy a trained model (without lightgbm.txt) to the default model's folder"
    )
    ship.add_argument("--model", type=Path, required=True, help="artifact folder written by train")
    ship.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH)
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
        command.add_argument(
            "--deployment-prior",
            type=float,
            help="share of unwanted calls the probabilities are calibrated for (default: the manifest's "
            "deployment_prior, else the share in every row before the holdout)",
        )
    args = parser.parse_args(argv)
    if args.command == "build-features":
        return _build_features(args)
    if args.command == "ship":
        return _ship(args.model, args.out)
    if args.command == "evaluate":
        return _evaluate(args)
    options = {
        "trees": args.trees,
        "depth": args.depth,
        "learning_rate": args.learning_rate,
        "threads": args.threads,
        "prior": args.deployment_prior,
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
                "generator": "training.synthetic",
                "rows": args.rows,
                "seed": args.seed,
                "note": "placeholder until features are replayed from the simulator's dataset",
            }
            train(rows.X, rows.y, rows.t_ms, rows.kinds, args.out, manifest=manifest, **options)
    except (TrainingError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


SHIPPED = ("model.npz", "model.json", "model_card.md", "model_card.json")


def _ship(model: Path, out: Path) -> int:
    """Copy the files a fresh checkout needs to score (and the card with its plots) into ``out``."""
    try:
        scorer = Scorer.load(model, warm=False)
    except (ArtifactError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for path in [*(model / name for name in SHIPPED), *sorted(model.glob("*.png"))]:
        if path.exists():
            shutil.copy2(path, out / path.name)
    meta = scorer.artifact.metadata
    holdout = meta["metrics"]["holdout"]
    strict = min(meta["metrics"]["operating_points"], key=lambda point: point["target_fp_rate"])
    recall, legit = strict["recall"], strict["holdout_legit"]
    block = meta.get("block_threshold")
    data = meta.get("training_data", {})
    size = sum(p.stat().st_size for p in out.iterdir())
    (out / "README.md").write_text(
        "\n".join(
            [
                "# The default scoring model",
                "",
                "What `services.scoring.model.Scorer.load(DEFAULT_MODEL_PATH)` loads, so a fresh checkout",
                "can score calls before any model is trained here. Not a production model: it learned",
                "the simulator's traffic.",
                "",
                f"- version `{scorer.version}`, feature schema `{meta['schema_hash']}`, "
                f"{meta['num_trees']} trees of depth ≤ {meta['max_depth']}, {size / 1024:.0f} KiB",
                f"- trained on scenario `{data.get('scenario', '?')}` (seed {data.get('seed', '?')}), "
                f"{data.get('rows', '?')} point-in-time rows; on the held-out window ROC AUC "
                f"{holdout['roc_auc']:.4f}; at the threshold chosen on validation for "
                f"{strict['target_fp_rate']:g} legit false positives, recall {recall['rate']:.4f} and "
                f"{legit['count']} of {legit['total']} legit calls flagged; "
                + (
                    f"blocks on its score alone from {block:.6g}"
                    if block is not None
                    else "no block threshold"
                )
                + f", {len(meta['metrics']['warnings'])} warning(s); see [model_card.md](model_card.md)",
                "- produced by `make model-default`, i.e. `make model SCENARIO=default` (generate with",
                f"  {_lead_in_hours(data)} of lead-in history, `build-features`, `train`) and then",
                "  `python -m training ship --model models/default`; the LightGBM text model stays in",
                "  `models/default/`.",
                "- a test checks it loads, matches the current `SCHEMA_HASH` and scores; a schema change",
                "  makes that test fail until the model is retrained and shipped again.",
                "",
            ]
        )
    )
    print(f"shipped {scorer.version} to {out} ({size / 1024:.0f} KiB)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """Write evaluation.md/.json for a model on unseen features and print the summary."""
    try:
        report, path = evaluate.run(
            args.model, args.features, args.policy, args.out, from_manifest=args.from_manifest_window
        )
    except (ArtifactError, TrainingError, PolicyError, evaluate.EvaluationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(evaluate.table(report))
    print(f"\nwrote {path} and {path.with_name(evaluate.REPORT_JSON).name}")
    return 0


def _build_features(args: argparse.Namespace) -> int:
    """Point-in-time features for every call of a dataset (see training.pointintime)."""

    from services.common.context import ContextRules
    from services.common.settings import SettingsError, load
    from services.reputation.settings import ReputationSettings
    from training.pointintime import ScratchDatabaseError, build_sync
    from training.train import save_features

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
    with progress_bar() as progress:
        task = progress.add_task("replaying the dataset through reputation", total=None)
        try:
            rows = build_sync(
                args.dataset,
                scratch,
                settings,
                rules,
                lambda n: progress.update(task, completed=n),
                workers=args.workers,
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


def _lead_in_hours(data: dict[str, object]) -> str:
    """The lead-in of the dataset a model was trained on, from its manifest ("? h" when unknown)."""
    start, holdout = data.get("start_ms"), data.get("holdout_from_ms")
    if isinstance(start, int) and isinstance(holdout, int):
        return f"{(holdout - start) / 3_600_000:g} h"
    return "? h"


if __name__ == "__main__":
    sys.exit(main())
