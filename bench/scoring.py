"""Benchmark (not a test): the scoring kernels beside LightGBM and treelite on the same models.

For LightGBM forests of 100 and 300 trees at depth 6 (and 300 at depth 8 unless ``--quick``),
trained here on synthetic schema-shaped rows, it measures:

- single-row latency, µs per call (median and p99 over many distinct rows), as the decision
  service would see it: a Python call with one float32 vector. Ours three ways — ``Scorer.score``
  (probability + reason codes), ``Scorer.score(reasons=False)`` and the bare kernel — plus the
  in-kernel time per row with no Python call at all; LightGBM's ``predict``; treelite's compiled
  library (tl2cgen, gcc) through its Python predictor, DMatrix construction included;
- batch throughput, rows/s over 100k rows, on one thread and on every core.

All engines score the SAME saved model; their raw scores are compared first. Ratios are the best
baseline's figure over ours (> 1 means ours is faster). lleaves is not measured: its 1.3.0 release
cannot compile with numba's llvmlite 0.50. Prints figures and ratios; never fails on a timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numba as nb
import numpy as np
import numpy.typing as npt
import tl2cgen
import treelite
from rich.console import Console
from rich.table import Table

from services.common.features import NAMES
from services.common.progress import progress_bar
from services.scoring import kernels
from services.scoring.model import Scorer
from training import export, synthetic

console = Console(width=150)
F32 = npt.NDArray[np.float32]
LATENCY_TARGET_US = 10.0


@dataclass
class Engine:
    """One way of scoring: its single-row call, its batch calls, and what we measured."""

    name: str
    ours: bool
    single: Callable[[F32], object] | None
    batch_one: Callable[[F32], object] | None = None
    batch_all: Callable[[F32], object] | None = None
    latency: list[float] = field(default_factory=list)
    rows_one: float = float("nan")
    rows_all: float = float("nan")


def timer_overhead_ns(calls: int = 20_000) -> float:
    """Median cost of the timing itself, subtracted from every per-call figure."""
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        samples.append(time.perf_counter_ns() - start)
    return float(statistics.median(samples))


def per_call_us(fn: Callable[[F32], object], rows: list[F32], overhead_ns: float) -> list[float]:
    """Wall time of each call in µs, timer overhead removed."""
    out = []
    for row in rows:
        start = time.perf_counter_ns()
        fn(row)
        out.append(max(time.perf_counter_ns() - start - overhead_ns, 0.0) / 1000.0)
    return out


def rows_per_second(fn: Callable[[F32], object], matrix: F32, repeats: int = 3) -> float:
    """Best of ``repeats`` throughputs for scoring the whole matrix."""
    fn(matrix[:1000])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(matrix)
        best = min(best, time.perf_counter() - start)
    return len(matrix) / best


def train_forest(data: synthetic.Rows, trees: int, depth: int) -> lgb.Booster:
    """A fixed-size forest (no early stopping), reloaded from its text model like a deployment."""
    params = {
        "objective": "binary",
        "max_depth": depth,
        "num_leaves": min(2**depth - 1, 255),
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "verbose": -1,
        "num_threads": os.cpu_count() or 1,
        "seed": 7,
    }
    booster = lgb.train(
        params, lgb.Dataset(data.X, data.y, feature_name=list(NAMES), categorical_feature=[]), trees
    )
    return lgb.Booster(model_str=booster.model_to_string())


def build_engines(
    booster: lgb.Booster, workdir: Path, threads: int, sample: F32
) -> tuple[list[Engine], float, Scorer]:
    """Our scorer and the baselines for one model; returns them, treelite's build seconds, the scorer.

    The gated engine explains only calls scoring above the 99th percentile of ``sample``, as the
    decision service does with its policy's lowest non-ALLOW threshold.
    """
    scorer = Scorer(export.from_booster(booster))
    scorer.warm()
    cut = float(np.quantile(scorer.score_batch(sample).probability, 0.99))
    packed = scorer.kernel_args
    started = time.perf_counter()
    library = workdir / f"model{id(booster)}.so"
    tl2cgen.export_lib(
        treelite.frontend.from_lightgbm(booster),
        toolchain="gcc",
        libpath=str(library),
        params={"parallel_comp": threads},
        nthread=threads,
    )
    build_seconds = time.perf_counter() - started
    tl_one = tl2cgen.Predictor(str(library), nthread=1)
    tl_all = tl2cgen.Predictor(str(library), nthread=threads)

    def treelite_single(row: F32) -> object:
        return tl_one.predict(tl2cgen.DMatrix(row[None, :], dtype="float32"), pred_margin=True)

    engines = [
        Engine(
            "ours: Scorer.score (prob + reasons)",
            True,
            scorer.score,
            lambda m: scorer.score_batch(m),
            lambda m: scorer.score_batch(m, parallel=True),
        ),
        Engine("ours: Scorer.score(reasons=False)", True, lambda row: scorer.score(row, reasons=False)),
        Engine(
            "ours: Scorer.score(reasons_above=p99)", True, lambda row: scorer.score(row, reasons_above=cut)
        ),
        Engine("ours: kernels.raw_row", True, lambda row: kernels.raw_row(row, *packed)),
        Engine(
            "LightGBM predict",
            False,
            lambda row: booster.predict(row[None, :], raw_score=True, num_threads=1),
            lambda m: booster.predict(m, raw_score=True, num_threads=1),
            lambda m: booster.predict(m, raw_score=True, num_threads=threads),
        ),
        Engine(
            "treelite (tl2cgen, gcc -O3)",
            False,
            treelite_single,
            lambda m: tl_one.predict(tl2cgen.DMatrix(m, dtype="float32"), pred_margin=True),
            lambda m: tl_all.predict(tl2cgen.DMatrix(m, dtype="float32"), pred_margin=True),
        ),
    ]
    return engines, build_seconds, scorer


def parity(booster: lgb.Booster, engines: list[Engine], matrix: F32) -> dict[str, float]:
    """Largest |raw score - LightGBM's| of each batch engine on ``matrix``."""
    expected = np.asarray(booster.predict(matrix, raw_score=True))
    out = {}
    for engine in engines:
        if engine.batch_one is None or engine.name.startswith("LightGBM"):
            continue
        got = engine.batch_one(matrix)
        raw = got.raw if hasattr(got, "raw") else np.asarray(got).reshape(-1)
        out[engine.name] = float(np.abs(raw - expected).max())
    return out


def ratio(baseline: float, ours: float, *, lower_is_better: bool) -> str:
    """Best baseline over ours for latency, ours over best baseline for throughput."""
    if not (np.isfinite(baseline) and np.isfinite(ours)) or ours <= 0 or baseline <= 0:
        return "-"
    return f"{(baseline / ours) if lower_is_better else (ours / baseline):.2f}x"


def report(title: str, engines: list[Engine], kernel_us: float) -> dict[str, float]:
    """Print one model's table; returns our headline figures for the verdict lines."""
    baselines = [e for e in engines if not e.ours]
    best_latency = min(statistics.median(e.latency) for e in baselines if e.latency)
    best_one = max(e.rows_one for e in baselines)
    best_all = max(e.rows_all for e in baselines)
    table = Table(title=title)
    for column in (
        "engine",
        "single row µs (median)",
        "p99",
        "vs best baseline",
        "batch rows/s (1 thread)",
        "vs best",
        "batch rows/s (all cores)",
        "vs best",
    ):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for e in engines:
        median = statistics.median(e.latency) if e.latency else float("nan")
        p99 = float(np.percentile(e.latency, 99)) if e.latency else float("nan")
        table.add_row(
            e.name,
            f"{median:.2f}",
            f"{p99:.2f}",
            ratio(best_latency, median, lower_is_better=True) if e.ours else "",
            f"{e.rows_one:,.0f}" if np.isfinite(e.rows_one) else "",
            ratio(best_one, e.rows_one, lower_is_better=False) if e.ours and np.isfinite(e.rows_one) else "",
            f"{e.rows_all:,.0f}" if np.isfinite(e.rows_all) else "",
            ratio(best_all, e.rows_all, lower_is_better=False) if e.ours and np.isfinite(e.rows_all) else "",
        )
    table.add_row(
        "ours: in-kernel, no Python call",
        f"{kernel_us:.2f}",
        "",
        ratio(best_latency, kernel_us, lower_is_better=True),
        "",
        "",
        "",
        "",
    )
    console.print(table)
    ours = engines[0]
    return {
        "score_us": statistics.median(ours.latency),
        "quick_us": statistics.median(engines[1].latency),
        "gated_us": statistics.median(engines[2].latency),
        "kernel_us": kernel_us,
        "best_baseline_us": best_latency,
        "rows_one": ours.rows_one,
        "best_rows_one": best_one,
        "rows_all": ours.rows_all,
        "best_rows_all": best_all,
    }


def main(argv: list[str] | None = None) -> int:
    """Train the models, build the baselines, measure, print tables and verdicts."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="skip the 300-tree depth-8 model; fewer calls")
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20_000, help="single-row calls per engine (ours)")
    args = parser.parse_args(argv)
    configs = [(100, 6), (300, 6)] if args.quick else [(100, 6), (300, 6), (300, 8)]
    calls = args.calls // 4 if args.quick else args.calls
    threads = nb.get_num_threads()
    train_data = synthetic.generate(args.train_rows, seed=11)
    batch = synthetic.generate(args.batch_rows, seed=12).X
    rows = [np.ascontiguousarray(r) for r in batch[:calls]]
    overhead = timer_overhead_ns()
    console.print(
        f"scoring benchmark: {os.cpu_count()} cores, numba threads {threads}, timer overhead "
        f"{overhead:.0f} ns (subtracted), {len(rows)} single-row calls, {len(batch):,} batch rows"
    )
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        for trees, depth in configs:
            title = f"{trees} trees, depth {depth}"
            with progress_bar(console, transient=True) as progress:
                task = progress.add_task(f"{title}: training LightGBM", total=4)
                booster = train_forest(train_data, trees, depth)
                progress.update(task, advance=1, description=f"{title}: treelite compile (gcc)")
                engines, build_seconds, scorer = build_engines(booster, Path(tmp), threads, batch[:10_000])
                progress.update(task, advance=1, description=f"{title}: single-row latency")
                for engine in engines:
                    n = len(rows) if engine.ours else max(len(rows) // 10, 500)
                    if engine.single is not None:
                        engine.single(rows[0])
                        engine.latency = per_call_us(engine.single, rows[:n], overhead)
                packed = scorer.kernel_args
                kernels.raw_each(batch[:100], *packed)
                started = time.perf_counter()
                kernels.raw_each(batch[: len(rows)], *packed)
                kernel_us = (time.perf_counter() - started) / len(rows) * 1e6
                progress.update(task, advance=1, description=f"{title}: batch throughput")
                for engine in engines:
                    if engine.batch_one is not None:
                        engine.rows_one = rows_per_second(engine.batch_one, batch)
                    if engine.batch_all is not None:
                        engine.rows_all = rows_per_second(engine.batch_all, batch)
                progress.update(task, advance=1)
            diffs = parity(booster, engines, batch[:10_000])
            console.print(
                f"[bold]{title}[/]: {scorer.artifact.forest.num_nodes} nodes, "
                f"treelite build {build_seconds:.1f} s; "
                "max |raw - LightGBM|: " + ", ".join(f"{k.split(':')[0]} {v:.2g}" for k, v in diffs.items())
            )
            figures = report(title, engines, kernel_us)
            verdicts.append((trees, depth, figures))
    console.print("\n[bold]Targets[/]")
    for trees, depth, f in verdicts:
        single = f["best_baseline_us"] / f["score_us"]
        one = f["rows_one"] / f["best_rows_one"]
        every = f["rows_all"] / f["best_rows_all"]
        latency_note = ""
        if trees == 300 and depth == 6:
            met = "met" if f["quick_us"] <= LATENCY_TARGET_US else "NOT met"
            met += "" if f["score_us"] <= LATENCY_TARGET_US else " without reasons only"
            latency_note = (
                f"; ≤ {LATENCY_TARGET_US:.0f} µs/row at 300 trees: {met} "
                f"(score {f['score_us']:.2f} µs with reasons, {f['gated_us']:.2f} µs with reasons above "
                f"p99, {f['quick_us']:.2f} µs without)"
            )
        console.print(
            f"{trees} trees depth {depth}: single row {single:.2f}x best baseline "
            f"({'met' if single >= 1 else 'NOT met'}), batch 1 thread {one:.2f}x "
            f"({'met' if one >= 1 else 'NOT met'}), batch all cores {every:.2f}x "
            f"({'met' if every >= 1 else 'NOT met'}){latency_note}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
