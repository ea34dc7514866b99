"""The model card: what a trained artifact was trained on, how well it did, and its plots.

Written beside the artifact as ``model_card.md`` with PNGs (matplotlib, Agg): ROC (log false-positive
axis, where the operating points live), precision-recall, a reliability diagram of the calibrated
probability, the share of each actor kind flagged at each operating point, and feature importance by
gain and by mean |TreeSHAP|. Every figure comes from the holdout, the latest slice by time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve  # type: ignore[import-untyped]

from fraudmesh.v1 import dataset_pb2
from services.common.features import WIDTH
from services.scoring.artifact import Artifact
from services.scoring.model import positive_order, top_reasons

matplotlib.use("Agg")

CARD: Final[str] = "model_card.md"
PLOTS: Final[dict[str, str]] = {
    "roc": "roc.png",
    "pr": "pr.png",
    "reliability": "reliability.png",
    "kinds": "kinds.png",
    "scores": "scores.png",
    "importance": "importance.png",
}
TOP_FEATURES: Final[int] = 15
EXPLAINED_ROWS: Final[int] = 1_000
RELIABILITY_BINS: Final[int] = 12
FLOOR: Final[float] = 1e-5

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Holdout:
    """The holdout slice's scores, labels and actor kinds."""

    raw: F64
    probability: F64
    y: npt.NDArray[np.bool_]
    kinds: npt.NDArray[np.int32]


def kind_name(kind: int) -> str:
    """The ActorKind's short name (SUBSCRIBER, ROBOCALL, ...), or the number if unknown."""
    try:
        return dataset_pb2.ActorKind.Name(dataset_pb2.ActorKind.ValueType(kind)).removeprefix("ACTOR_KIND_")
    except ValueError:
        return str(kind)


def reason_agreement(saabas: F64, shap: F64) -> dict[str, Any]:
    """How often path attribution and TreeSHAP give the same top reason on the same calls.

    Training passes (a sample of) the holdout calls flagged at the loosest operating point: reasons
    only matter for flagged calls.
    """
    same_top, top_in_three = 0, 0
    for ours_row, theirs_row in zip(saabas, shap, strict=True):
        ours = top_reasons(positive_order(ours_row))
        theirs = top_reasons(positive_order(theirs_row))
        same_top += bool(ours and theirs and ours[0] == theirs[0])
        top_in_three += bool(ours and ours[0] in theirs)
    n = len(saabas)
    return {
        "rows": n,
        "top_reason_equal": same_top / n if n else math.nan,
        "top_reason_in_treeshap_top3": top_in_three / n if n else math.nan,
    }


def write(out: Path, artifact: Artifact, *, holdout: Holdout, points: list[Any]) -> Path:
    """Write the plots and ``model_card.md`` into ``out``; returns the card's path."""
    meta = artifact.metadata
    metrics = meta["metrics"]
    _plot_roc(out / PLOTS["roc"], holdout, points)
    _plot_pr(out / PLOTS["pr"], holdout)
    _plot_reliability(out / PLOTS["reliability"], holdout)
    _plot_kinds(out / PLOTS["kinds"], metrics["per_kind"], points)
    _plot_scores(out / PLOTS["scores"], holdout, points)
    _plot_importance(out / PLOTS["importance"], metrics["importance"])
    path = out / CARD
    path.write_text(_markdown(artifact, points))
    return path


def _fmt(value: float, digits: int = 4) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def _markdown(artifact: Artifact, points: list[Any]) -> str:
    meta = artifact.metadata
    metrics = meta["metrics"]
    manifest = meta.get("training_data", {})
    hold = metrics["holdout"]
    lines = [f"# Model card — {artifact.version}", ""]
    if manifest.get("synthetic"):
        lines += [
            "> **PLACEHOLDER MODEL.** Trained on synthetic rows from `training.synthetic`, not on",
            "> features replayed from the simulator. Its figures say nothing about real traffic.",
            "",
        ]
    lines += [
        "## What it is",
        "",
        f"- LightGBM binary classifier, {meta['num_trees']} trees (best iteration by calibration-slice "
        f"log loss), max depth {meta['max_depth']}, {meta['num_nodes']} nodes; feature schema "
        f"`{meta['schema_hash']}` ({WIDTH} features).",
        "- Every feature is trained as numeric: the schema's categorical features are small integer codes, "
        "so the scoring kernels only evaluate `<=` splits. Monotone constraints follow the schema's "
        "directions.",
        "- Score = Platt-calibrated probability, 1 / (1 + exp(-(a·raw + b))) with "
        f"a = {artifact.calibration.a:.6g}, b = {artifact.calibration.b:.6g}: strictly increasing, so "
        "thresholds keep the raw score's ranking.",
        "- Reasons on the call path: path attribution (Saabas) mapped to each feature's reason code "
        "(MODEL_SCORE for features without one), deduplicated, top 3.",
        f"- Created {meta['created_at']}; libraries "
        + ", ".join(f"{k} {v}" for k, v in sorted(meta.get("libraries", {}).items()))
        + ".",
        "",
        "## Data",
        "",
        _split_text(manifest),
        "",
        "| slice | rows | unwanted | from (UTC) | to (UTC) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in metrics["slices"].items():
        lines.append(
            f"| {name} | {s['rows']} | {s['unwanted']} | {_utc(s['from_ms'])} | {_utc(s['to_ms'])} |"
        )
    lines += ["", "Training-data manifest (as passed by the caller):", "", "```json"]
    lines += [_json(manifest), "```", "", "## Holdout", ""]
    lines += [
        f"ROC AUC {_fmt(hold['roc_auc'])} · PR AUC {_fmt(hold['pr_auc'])} · "
        f"log loss {_fmt(hold['log_loss'])} · Brier {_fmt(hold['brier'], 5)} · "
        f"{hold['rows']} calls, {hold['unwanted_share']:.2%} unwanted.",
        "",
        "Operating points: the threshold is chosen on the holdout's legit scores so at most the target share "
        "of legit calls is flagged (score strictly above the threshold). A rate is resolvable when the "
        f"holdout's legit calls allow at least 10 false positives at it: {_resolution(points)}",
        "",
        "| target legit FP | probability threshold | recall | legit flagged | meaningful |",
        "|---:|---:|---:|---:|---|",
    ]
    for p in points:
        flag = "yes" if p.meaningful else f"no — {p.note}"
        lines.append(
            f"| {p.target_fp_rate:g} | {p.probability_threshold:.6g} | {_fmt(p.recall)} | "
            f"{p.legit_flagged} / {p.legit_total} | {flag} |"
        )
    lines += [
        "",
        "Share of each actor kind flagged at each operating point "
        "(for wanted kinds, their false-positive rate):",
        "",
        "| kind | calls | unwanted | ROC AUC vs all legit | "
        + " | ".join(f"@{p.target_fp_rate:g}" for p in points)
        + " |",
        "|---|---:|---:|---:|" + "---:|" * len(points),
    ]
    for row in metrics["per_kind"]:
        shares = " | ".join(f"{v:.4%}" for v in row["flagged"])
        auc = _fmt(row.get("roc_auc_vs_legit", math.nan))
        lines.append(f"| {row['name']} | {row['calls']} | {row['unwanted_share']:.0%} | {auc} | {shares} |")
    agreement = metrics["reason_agreement"]
    lines += [
        "",
        f"![ROC]({PLOTS['roc']}) ![PR]({PLOTS['pr']})",
        "",
        f"![reliability]({PLOTS['reliability']}) ![kinds]({PLOTS['kinds']})",
        "",
        f"![scores by actor kind]({PLOTS['scores']})",
        "",
        "## Explanations",
        "",
        f"On {agreement['rows']} holdout calls flagged at the 1% point (a sample of at most "
        f"{EXPLAINED_ROWS}), the top reason from path "
        f"attribution equals TreeSHAP's (LightGBM `pred_contrib`) for "
        f"{_fmt(agreement['top_reason_equal'], 3)} of calls and is among TreeSHAP's top 3 for "
        f"{_fmt(agreement['top_reason_in_treeshap_top3'], 3)}.",
        "",
        f"![importance]({PLOTS['importance']})",
        "",
        "## Exactness",
        "",
        "Largest |kernel raw score - LightGBM raw score| on the holdout: "
        f"{metrics['kernel_parity_max_abs_diff']:.3g}.",
        "",
    ]
    return "\n".join(lines)


def _split_text(manifest: dict[str, Any]) -> str:
    """How the rows were split, in words (a held-out window, or shares of the rows)."""
    if "holdout_from_ms" in manifest:
        return (
            "Split by setup time, no shuffling: every call from "
            f"{_utc(int(manifest['holdout_from_ms']))} UTC on (the scenario's own window, after the lead-in "
            "it was generated with) is held out; the calls before it train (earliest 7/8) and early-stop "
            "and calibrate (last 1/8). Reputation state carries across the cut, as it would in production."
        )
    return (
        "Split by setup time, no shuffling: train on the earliest ~70%, early-stop and calibrate on the next "
        "~10%, hold out the last ~20%."
    )


def _resolution(points: list[Any]) -> str:
    """Which operating points the holdout's size can resolve."""
    parts = []
    for p in points:
        allowed = p.target_fp_rate * p.legit_total
        verdict = "resolvable" if p.meaningful else "not resolvable, indicative only"
        parts.append(f"{p.target_fp_rate:g} of {p.legit_total} legit calls = {allowed:.1f} calls ({verdict})")
    return "; ".join(parts) + "."


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _plot_roc(path: Path, holdout: Holdout, points: list[Any]) -> None:
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.add_subplot()
    fpr, tpr, _ = roc_curve(holdout.y, holdout.raw)
    ax.plot(np.maximum(fpr, FLOOR), tpr, color="tab:blue")
    for p in points:
        ax.plot(max(p.legit_flagged / max(p.legit_total, 1), FLOOR), p.recall, "o", color="tab:red")
        ax.annotate(f"{p.target_fp_rate:g}", (max(p.target_fp_rate, FLOOR), p.recall), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(FLOOR, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("legit calls flagged (false-positive rate, log)")
    ax.set_ylabel("unwanted calls flagged (recall)")
    ax.set_title("ROC on the holdout")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


def _plot_pr(path: Path, holdout: Holdout) -> None:
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


def _plot_reliability(path: Path, holdout: Holdout) -> None:
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.add_subplot()
    edges = np.unique(np.quantile(holdout.probability, np.linspace(0, 1, RELIABILITY_BINS + 1)))
    which = np.clip(np.searchsorted(edges, holdout.probability, side="right") - 1, 0, len(edges) - 2)
    predicted, observed = [], []
    for b in range(len(edges) - 1):
        mask = which == b
        if mask.any():
            predicted.append(float(holdout.probability[mask].mean()))
            observed.append(float(holdout.y[mask].mean()))
    ax.plot([FLOOR, 1], [FLOOR, 1], "--", color="grey", label="perfect")
    ax.plot(np.maximum(predicted, FLOOR), np.maximum(observed, FLOOR), "o-", color="tab:blue", label="model")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mean predicted probability (quantile bins)")
    ax.set_ylabel("observed unwanted share")
    ax.set_title("Calibration on the holdout")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


def _plot_kinds(path: Path, kinds: list[dict[str, Any]], points: list[Any]) -> None:
    fig = Figure(figsize=(8, 1.5 + 0.4 * len(kinds)), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / max(len(points), 1)
    positions = np.arange(len(kinds))
    for j, p in enumerate(points):
        shares = [max(row["flagged"][j], FLOOR) for row in kinds]
        ax.barh(positions + j * height, shares, height=height, label=f"legit FP {p.target_fp_rate:g}")
    ax.set_yticks(positions + height * (len(points) - 1) / 2)
    ax.set_yticklabels([f"{row['name']} ({row['unwanted_share']:.0%} unwanted)" for row in kinds])
    ax.set_xscale("log")
    ax.set_xlim(FLOOR, 1)
    ax.set_xlabel("share of the kind's calls flagged (log)")
    ax.set_title("Flagged share per actor kind on the holdout")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    fig.savefig(path, dpi=110)


def _plot_scores(path: Path, holdout: Holdout, points: list[Any]) -> None:
    """Distribution of the raw score (log-odds) per actor kind, with the operating points' thresholds.

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
    for p in points:
        if math.isfinite(p.raw_threshold):
            ax.axvline(p.raw_threshold, color="grey", linestyle="--", linewidth=0.8)
            ax.annotate(
                f"FP {p.target_fp_rate:g}", (p.raw_threshold, len(kinds) + 0.5), fontsize=7, rotation=90
            )
    ax.set_yticks(np.arange(1, len(kinds) + 1))
    ax.set_yticklabels(
        [
            f"{kind_name(k)} ({'unwanted' if bad else 'legit'})"
            for k, bad in zip(kinds, unwanted, strict=True)
        ],
        fontsize=8,
    )
    ax.set_xlabel("raw score (log-odds margin; thresholds of the operating points dashed)")
    ax.set_title("Score distribution per actor kind on the holdout")
    ax.grid(alpha=0.3, axis="x")
    fig.savefig(path, dpi=110)


def _plot_importance(path: Path, importance: dict[str, dict[str, float]]) -> None:
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    for i, (key, title) in enumerate((("gain", "total gain"), ("mean_abs_treeshap", "mean |TreeSHAP|"))):
        ax = fig.add_subplot(1, 2, i + 1)
        ranked = sorted(importance[key].items(), key=lambda kv: kv[1], reverse=True)[:TOP_FEATURES][::-1]
        ax.barh([name for name, _ in ranked], [value for _, value in ranked], color="tab:blue")
        ax.set_title(f"Top features by {title}")
        ax.tick_params(axis="y", labelsize=8)
    fig.savefig(path, dpi=110)
