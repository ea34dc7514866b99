"""``build_report``, which reads, analyses, plots and writes one report, and ``main``, its command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.report._analysis import ReportSummary, _analyse, _summarise
from loadtest.report._format import _fmt_ms, _fmt_pct, _image
from loadtest.report._linked import _after_link_section
from loadtest.report._plots import _write_plots
from loadtest.report._presence import _presence_section
from loadtest.report._reading import _expected, _progress, _read_calls, _read_numbers, _read_outcomes, console
from loadtest.report._sections import (
    _actions_section,
    _campaign_section,
    _coverage,
    _detect_section,
    _header,
    _headline,
    _quality_section,
    _states_section,
    _traffic_section,
)
from loadtest.report._service_sections import (
    _audio_section,
    _codes_section,
    _emergency_failures,
    _emergency_section,
    _latency_section,
    _notes,
    _numbers_section,
)
from training.dataset import CALLS, NUMBERS, OUTCOMES, DatasetError, Manifest

REPORT = "report.md"
SUMMARY = "summary.json"


def build_report(dataset: Path, out: Path, *, plots: bool = True) -> ReportSummary:
    """Join ground truth with replay outcomes and write report.md, PNG plots and summary.json to out.

    plots=False skips the PNGs (the slowest part on small datasets); the markdown says so. A
    dataset generated with a lead-in is reported over its scored window, split warm and cold.
    """
    if not (dataset / CALLS).exists():
        raise DatasetError(f"{dataset}: no {CALLS}; not a dataset folder")
    try:
        manifest: Manifest | None = Manifest.read(dataset)
    except DatasetError:
        manifest = None
    outcomes_path = dataset / OUTCOMES
    with _progress() as progress:
        calls = _read_calls(dataset / CALLS, progress, _expected(manifest, CALLS), manifest)
        outcomes = (
            _read_outcomes(outcomes_path, calls, progress, _expected(manifest, OUTCOMES))
            if outcomes_path.exists()
            else None
        )
        numbers = (
            _read_numbers(dataset / NUMBERS, progress, _expected(manifest, NUMBERS))
            if (dataset / NUMBERS).exists()
            else None
        )
    analysis = _analyse(calls, outcomes)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = _write_plots(out, calls, outcomes, analysis, plots)
    summary = _summarise(dataset, manifest, calls, outcomes, analysis, written)
    decided = outcomes if outcomes is not None and outcomes.records else None
    lines = [
        *_header(dataset, manifest),
        *_emergency_failures(decided),
        *_headline(summary, outcomes_path.exists(), _coverage(calls, analysis)),
        *_traffic_section(calls, analysis, written, skipped),
    ]
    if decided is not None:
        lines += [
            *_actions_section(analysis, written, skipped),
            *_quality_section(calls, analysis, summary),
            *_states_section(calls, analysis, summary),
            *_detect_section(analysis, written, skipped),
        ]
    if decided is None and skipped:
        lines += [f"_Plots omitted: {', '.join(f'{n} ({r})' for n, r in skipped.items())}._", ""]
    lines += _campaign_section(calls, analysis, decided is not None)
    if decided is not None:
        lines += _after_link_section(calls, analysis, dataset)
    lines += _emergency_section(calls, decided, analysis)
    if decided is not None:
        lines += [
            *_latency_section(decided, written, skipped),
            *_codes_section(decided),
            *_presence_section(calls, decided, analysis),
            "## Over simulated time",
            "",
            *_image("flagged_over_time.png", "Flagged over time", written, skipped),
        ]
    lines += _audio_section(dataset)
    if numbers is not None:
        lines += _numbers_section(numbers, calls)
    lines += _notes(calls, outcomes)
    (out / REPORT).write_text("\n".join(lines).rstrip() + "\n")
    (out / SUMMARY).write_text(summary.to_json())
    return summary


def main(argv: list[str] | None = None) -> int:
    """CLI: write the report for --dataset into --out; exit 1 when an emergency call was not allowed."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtest report",
        description="Detection quality, time to detect, emergency safety and Decide latency of a replay.",
    )
    parser.add_argument(
        "--dataset", type=Path, required=True, help="dataset folder (calls.fmds, outcomes.fmds)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for report.md, PNG plots, summary.json"
    )
    parser.add_argument("--no-plots", action="store_true", help="write report.md and summary.json only")
    args = parser.parse_args(argv)
    try:
        summary = build_report(args.dataset, args.out, plots=not args.no_plots)
    except DatasetError as exc:
        console.print(str(exc), style="red", markup=False, soft_wrap=True)
        return 2
    console.print(f"report written to {args.out / REPORT}", markup=False, soft_wrap=True)
    if not summary.has_outcomes:
        console.print("[yellow]no decisions were recorded; the report describes the traffic only")
    else:
        console.print(
            f"precision {_fmt_pct(summary.precision)}, recall {_fmt_pct(summary.recall)}, "
            f"legitimate FP {_fmt_pct(summary.legit_fp_rate)}, "
            f"legitimate BLOCK {_fmt_pct(summary.legit_block_rate)}, "
            f"Decide p99 {_fmt_ms(summary.latency_p99_ms)}",
            soft_wrap=True,
        )
    if summary.emergency_non_allow:
        console.print(
            f"[bold red]FAILURE: {summary.emergency_non_allow:,} emergency call(s) were not allowed"
        )
        return 1
    return 0
