"""The report's PNG plots, drawn on matplotlib's Agg backend: the only module that imports matplotlib."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, PercentFormatter, ScalarFormatter

from loadtest.report._analysis import _Analysis, quantiles
from loadtest.report._codes import (
    ALLOW,
    BLOCK,
    CHALLENGE,
    ERROR,
    HOUR_MS,
    KIND_SPAN,
    LABEL,
    NOT_DECIDED,
    OTHER_ACTION,
    SERVER_BUDGET_MS,
    STATUS_ORDER,
    BoolArray,
    FloatArray,
    IntArray,
    kind_name,
    status_name,
)
from loadtest.report._format import _fmt_int, _fmt_ms
from loadtest.report._reading import _Calls, _Outcomes

matplotlib.use("Agg")

STATUS_COLOURS = {
    ALLOW: "#4caf50",
    LABEL: "#fbc02d",
    CHALLENGE: "#fb8c00",
    BLOCK: "#d32f2f",
    OTHER_ACTION: "#795548",
    ERROR: "#7b1fa2",
    NOT_DECIDED: "#bdbdbd",
}
CALL_TICKS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 100_000, 1_000_000)


def _plot_traffic(path: Path, calls: _Calls, analysis: _Analysis) -> None:
    hours = (calls.time_ms - analysis.t0_ms) // HOUR_MS
    size = int(hours.max()) + 1
    legit = np.bincount(hours[~calls.unwanted], minlength=size)
    bad = np.bincount(hours[calls.unwanted], minlength=size)
    x = np.arange(size)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    ax.bar(x, legit, width=1.0, align="edge", color="#4c72b0", label="legitimate calls")
    ax.bar(x, bad, width=1.0, align="edge", bottom=legit, color="#c44e52", label="unwanted calls")
    ax.set_title("Offered traffic per simulated hour")
    ax.set_xlabel("simulated hours since the first call")
    ax.set_ylabel("calls per hour")
    ax.legend(loc="upper right")
    fig.savefig(path, dpi=110)


def _plot_action_mix(path: Path, analysis: _Analysis) -> None:
    legit = [k for k in analysis.kinds if k not in analysis.unwanted_kinds]
    bad = [k for k in analysis.kinds if k in analysis.unwanted_kinds]
    positions = [float(i) for i in range(len(legit))] + [len(legit) + 1.0 + i for i in range(len(bad))]
    ordered = legit + bad
    fig = Figure(figsize=(10, 1.6 + 0.45 * len(positions)), layout="constrained")
    ax = fig.subplots()
    left = np.zeros(len(ordered))
    totals = np.array([max(int(analysis.status_counts[k].sum()), 1) for k in ordered], dtype=np.float64)
    for status in STATUS_ORDER:
        share = np.array([analysis.status_counts[k, status] for k in ordered], dtype=np.float64) / totals
        if not share.any():
            continue
        ax.barh(
            positions, share, left=left, height=0.8, color=STATUS_COLOURS[status], label=status_name(status)
        )
        left += share
    ax.set_yticks(
        positions, [f"{kind_name(k)} ({_fmt_int(analysis.status_counts[k].sum())})" for k in ordered]
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    if legit and bad:
        ax.axhline(len(legit), color="black", linewidth=0.8, linestyle="--")
    transform = ax.get_yaxis_transform()
    if legit:
        ax.text(1.01, (len(legit) - 1) / 2, "legitimate", rotation=270, va="center", transform=transform)
    if bad:
        ax.text(
            1.01,
            len(legit) + 1 + (len(bad) - 1) / 2,
            "unwanted",
            rotation=270,
            va="center",
            transform=transform,
        )
    ax.set_title("Action mix per actor kind (share of the kind's calls)")
    ax.set_xlabel("share of calls")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(STATUS_ORDER), frameon=False)
    fig.savefig(path, dpi=110)


def _plot_latency(path: Path, client_us: FloatArray) -> None:
    values = client_us / 1000.0
    p50, p99 = quantiles(values, (50, 99))
    low = max(float(values.min()), 1e-3)
    high = max(float(values.max()), low * 1.5, SERVER_BUDGET_MS * 1.2)
    bins = np.logspace(np.log10(low), np.log10(high), 60)
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.hist(np.clip(values, low, None), bins=bins.tolist(), color="#4c72b0")
    ax.set_xscale("log")
    ax.axvline(p50 or low, color="#2ca02c", linestyle="-", label=f"p50 {_fmt_ms(p50)}")
    ax.axvline(p99 or low, color="#ff7f0e", linestyle="-", label=f"p99 {_fmt_ms(p99)}")
    ax.axvline(
        SERVER_BUDGET_MS, color="#d62728", linestyle="--", label=f"server budget {SERVER_BUDGET_MS:g} ms"
    )
    ax.set_title(f"Decide client latency ({_fmt_int(len(values))} decisions)")
    ax.set_xlabel("client-measured latency (ms, log scale)")
    ax.set_ylabel("decisions")
    ax.legend(loc="upper right")
    fig.savefig(path, dpi=110)


def _plot_time_to_detect(path: Path, analysis: _Analysis) -> None:
    groups = analysis.numbers
    kinds = groups.key % KIND_SPAN
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.subplots()
    longest = max(int(groups.detect_calls.max()), 2)
    for value in np.unique(kinds):
        mask = kinds == value
        total = int(mask.sum())
        found = np.sort(groups.detect_calls[mask & groups.detected])
        xs = np.r_[1, found, longest]
        ys = np.r_[0.0, np.arange(1, len(found) + 1) / total, len(found) / total]
        never = 1 - len(found) / total
        ax.step(xs, ys, where="post", label=f"{kind_name(int(value))} ({total:,} numbers, {never:.0%} never)")
    ax.set_xscale("log")
    ax.set_xlim(1, longest)
    ax.set_xticks([t for t in CALL_TICKS if t <= longest])
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Calls to detect per unwanted presented number (CDF; plateau = share ever flagged)")
    ax.set_xlabel("calls from the number until its first flagged call (log scale)")
    ax.set_ylabel("share of numbers detected")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small", frameon=False)
    fig.savefig(path, dpi=110)


def _plot_flagged_over_time(path: Path, calls: _Calls, analysis: _Analysis) -> None:
    hours = (calls.time_ms - analysis.t0_ms) // HOUR_MS
    size = int(hours.max()) + 1
    bad = calls.unwanted
    legit = ~calls.unwanted
    x = np.arange(size)
    marker = "o" if size <= 48 else None

    def per_hour(mask: BoolArray) -> IntArray:
        return np.bincount(hours[mask], minlength=size).astype(np.int64)

    fig = Figure(figsize=(10, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(x, per_hour(bad), marker=marker, color="#c44e52", label="unwanted calls")
    top.plot(
        x, per_hour(bad & analysis.flagged), marker=marker, color="#2ca02c", label="unwanted calls flagged"
    )
    top.plot(
        x,
        per_hour(bad & analysis.blocked),
        marker=marker,
        color="#1f77b4",
        linestyle="--",
        label="unwanted calls blocked",
    )
    top.set_title("Unwanted calls caught per simulated hour")
    top.set_ylabel("calls per hour")
    top.legend(loc="upper right", fontsize="small")
    bottom.plot(
        x,
        per_hour(legit & analysis.flagged),
        marker=marker,
        color="#ff7f0e",
        label="legitimate calls flagged (FP)",
    )
    bottom.plot(
        x,
        per_hour(legit & analysis.blocked),
        marker=marker,
        color="#d62728",
        label="legitimate calls blocked",
    )
    bottom.set_title("Legitimate calls flagged per simulated hour (false positives)")
    bottom.set_xlabel("simulated hours since the first call")
    bottom.set_ylabel("calls per hour")
    bottom.legend(loc="upper right", fontsize="small")
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=110)


def _write_plots(
    out: Path, calls: _Calls, outcomes: _Outcomes | None, analysis: _Analysis, enabled: bool
) -> tuple[list[str], dict[str, str]]:
    decided = outcomes is not None and bool(analysis.decided.any() or outcomes.errors)
    latency = outcomes.client_us if outcomes is not None else np.zeros(0)
    plans: list[tuple[str, str | None, Callable[[Path], None]]] = [
        ("traffic.png", None if len(calls) else "no calls", lambda p: _plot_traffic(p, calls, analysis)),
        (
            "action_mix.png",
            None if decided else "no decisions were recorded",
            lambda p: _plot_action_mix(p, analysis),
        ),
        (
            "latency.png",
            None if len(latency) else "no successful Decide calls were recorded",
            lambda p: _plot_latency(p, latency),
        ),
        (
            "time_to_detect.png",
            None if decided and len(analysis.numbers.key) else "no decisions on unwanted numbers",
            lambda p: _plot_time_to_detect(p, analysis),
        ),
        (
            "flagged_over_time.png",
            None if decided else "no decisions were recorded",
            lambda p: _plot_flagged_over_time(p, calls, analysis),
        ),
    ]
    written: list[str] = []
    skipped: dict[str, str] = {}
    for name, reason, draw in plans:
        if not enabled:
            reason = "plots were disabled"
        if reason is None:
            draw(out / name)
            written.append(name)
        else:
            (out / name).unlink(missing_ok=True)
            skipped[name] = reason
    return written, skipped
