"""The model card's figures (matplotlib, Agg), drawn from the holdout's scores and the card's JSON.

ROC with a log false-positive axis (where the operating points live, each with its 95 % intervals),
precision-recall, reliability of the calibrated probability on validation and holdout, the share of
each actor kind flagged at each operating point, score distributions per kind with the thresholds,
and feature importance by gain and by mean |TreeSHAP|.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve  # type: ignore[import-untyped]

from training.evaluation import kind_name

matplotlib.use("Agg")

PLOTS: Final[dict[str, str]] = {
    "roc": "roc.png",
    "pr": "pr.png",
    "reliability": "reliability.png",
    "kinds": "kinds.png",
    "scores": "scores.png",
    "importance": "importance.png",
}
TOP_FEATURES: Final[int] = 15
RELIABILITY_BINS: Final[int] = 12
FLOOR: Final[float] = 1e-5

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Scores:
    """One slice's raw scores, calibrated probabilities, labels and actor kinds."""

    raw: F64
    probability: F64
    y: npt.NDArray[np.bool_]
    kinds: npt.NDArray[np.int32]


def draw(
    out: Path, metrics: dict[str, Any], *, holdout: Scores, validation: Scores, raw_block: float
) -> None:
    """Write every PNG of PLOTS into ``out`` (``raw_block``: the block threshold as a raw score, or NaN)."""
    points = metrics["operating_points"]
    _roc(out / PLOTS["roc"], holdout, points)
    _pr(out / PLOTS["pr"], holdout)
    _reliability(out / PLOTS["reliability"], holdout, validation)
    _kinds(out / PLOTS["kinds"], metrics["per_kind"], points)
    _scores(out / PLOTS["scores"], holdout, points, raw_block)
    _importance(out / PLOTS["importance"], metrics["importance"])


def _errors(rates: list[dict[str, Any]]) -> npt.NDArray[np.float64]:
    """Asymmetric error bars (below, above) of rates with Wilson intervals."""
    return np.array(
        [[max(r["rate"] - r["low"], 0.0) for r in rates], [max(r["high"] - r["rate"], 0.0) for r in rates]]
    )


def _roc(path: Path, holdout: Scores, points: list[dict[str, Any]]) -> None:
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.add_subplot()
    fpr, tpr, _ = roc_curve(holdout.y, holdout.raw)
    ax.plot(np.maximum(fpr, FLOOR), tpr, color="tab:blue")
    for p in points:
        legit, recall = p["holdout_legit"], p["recall"]
        ax.errorbar(
            max(legit["rate"], FLOOR),
            recall["rate"],
            xerr=_errors([legit]),
            yerr=_errors([recall]),
            fmt="o",
            color="tab:red",
            capsize=3,
        )
        ax.annotate(f"{p['target_fp_rate']:g}", (max(legit["rate"], FLOOR), recall["rate"]), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(FLOOR, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("legit calls flagged (false-positive rate, log)")
    ax.set_ylabel("unwanted calls flagged (recall)")
    ax.set_title("ROC on the holdout (points: thresholds chosen on validation)")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


def _pr(path: Path, holdout: Scores) -> None:
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.add_subplot()
    precision, recall, _ = precision_recall_curve(holdout.y, holdout.raw)
    ax.plot(recall, precision, color="tab:blue")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall on the holdout")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


def _reliability_curve(scores: Scores) -> tuple[list[float], list[float]]:
    """Mean predicted probability and observed unwanted share in quantile bins."""
    edges = np.unique(np.quantile(scores.probability, np.linspace(0, 1, RELIABILITY_BINS + 1)))
    which = np.clip(np.searchsorted(edges, scores.probability, side="right") - 1, 0, max(len(edges) - 2, 0))
    predicted, observed = [], []
    for b in range(max(len(edges) - 1, 1)):
        mask = which == b
        if mask.any():
            predicted.append(float(scores.probability[mask].mean()))
            observed.append(float(scores.y[mask].mean()))
    return predicted, observed


def _reliability(path: Path, holdout: Scores, validation: Scores) -> None:
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([FLOOR, 1], [FLOOR, 1], "--", color="grey", label="perfect")
    for name, scores, color in (("validation", validation, "tab:green"), ("holdout", holdout, "tab:blue")):
        predicted, observed = _reliability_curve(scores)
        label = f"{name} ({scores.y.mean():.0%} unwanted)"
        ax.plot(np.maximum(predicted, FLOOR), np.maximum(observed, FLOOR), "o-", color=color, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mean predicted probability (quantile bins)")
    ax.set_ylabel("observed unwanted share")
    ax.set_title("Calibration (fitted on validation, prior-shifted)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


def _kinds(path: Path, kinds: list[dict[str, Any]], points: list[dict[str, Any]]) -> None:
    fig = Figure(figsize=(8, 1.5 + 0.4 * len(kinds)), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / max(len(points), 1)
    positions = np.arange(len(kinds))
    labels = ["unwanted" if row["unwanted_calls"] >= row["legit_calls"] else "legit" for row in kinds]
    for j, p in enumerate(points):
        rates = [row[label]["flagged"][j] for row, label in zip(kinds, labels, strict=True)]
        shares = [max(r["rate"], FLOOR) for r in rates]
        ax.barh(
            positions + j * height,
            shares,
            height=height,
            xerr=_errors(rates),
            capsize=2,
            label=f"legit FP {p['target_fp_rate']:g}",
        )
    ax.set_yticks(positions + height * (len(points) - 1) / 2)
    ax.set_yticklabels([f"{row['name']} ({label})" for row, label in zip(kinds, labels, strict=True)])
    ax.set_xscale("log")
    ax.set_xlim(FLOOR, 1)
    ax.set_xlabel("share of the kind's calls flagged (log; bars: 95 % Wilson interval)")
    ax.set_title("Flagged share per actor kind on the holdout")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    fig.savefig(path, dpi=110)


def _scores(path: Path, holdout: Scores, points: list[dict[str, Any]], raw_block: float) -> None:
    """Distribution of the raw score (log-odds) per actor kind, with the thresholds.

    The raw margin rather than the probability: calibrated scores of unwanted calls crowd into 1.0.
    """
    kinds = [int(k) for k in np.unique(holdout.kinds)]
    unwanted = [bool(holdout.y[holdout.kinds == k].mean() > 0.5) for k in kinds]
    fig = Figure(figsize=(8, 1.4 + 0.45 * len(kinds)), layout="constrained")
    ax = fig.add_subplot()
    parts = ax.violinplot(
        [holdout.raw[holdout.kinds == k] for k in kinds],
        orientation="horizontal",
        showextrema=True,
        showmedians=True,
    )
    bodies: Any = parts["bodies"]
    for body, bad in zip(bodies, unwanted, strict=True):
        body.set_facecolor("tab:red" if bad else "tab:blue")
        body.set_alpha(0.5)
    lines = [(p["raw_threshold"], f"FP {p['target_fp_rate']:g}", "grey") for p in points]
    lines.append((raw_block, "BLOCK", "tab:red"))
    for value, label, color in lines:
        if math.isfinite(value):
            ax.axvline(value, color=color, linestyle="--", linewidth=0.8)
            ax.annotate(label, (value, len(kinds) + 0.5), fontsize=7, rotation=90)
    ax.set_yticks(np.arange(1, len(kinds) + 1))
    ax.set_yticklabels(
        [
            f"{kind_name(k)} ({'unwanted' if bad else 'legit'})"
            for k, bad in zip(kinds, unwanted, strict=True)
        ],
        fontsize=8,
    )
    ax.set_xlabel("raw score (log-odds margin; thresholds chosen on validation dashed)")
    ax.set_title("Score distribution per actor kind on the holdout")
    ax.grid(alpha=0.3, axis="x")
    fig.savefig(path, dpi=110)


def _importance(path: Path, importance: dict[str, Any]) -> None:
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    for i, (key, title) in enumerate((("gain", "total gain"), ("mean_abs_treeshap", "mean |TreeSHAP|"))):
        ax = fig.add_subplot(1, 2, i + 1)
        ranked = sorted(importance[key].items(), key=lambda kv: kv[1], reverse=True)[:TOP_FEATURES][::-1]
        ax.barh([name for name, _ in ranked], [value for _, value in ranked], color="tab:blue")
        ax.set_title(f"Top features by {title}")
        ax.tick_params(axis="y", labelsize=8)
    fig.savefig(path, dpi=110)
