"""The model card: what a trained artifact was trained on, how well it did, and its plots.

Written beside the artifact as ``model_card.md`` and ``model_card.json`` (the same content, read by
``render``) with the PNGs of ``training.plots``. Thresholds, calibration and early stopping come from
the validation slice; every figure comes from the holdout, the latest slice by time, measured at
those thresholds: rates are counts with 95 % Wilson intervals, and a WARNING line marks each figure
the holdout is too small to resolve or whose interval reaches above its target.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from services.common.features import WIDTH
from services.scoring.artifact import Artifact
from services.scoring.model import positive_order, top_reasons
from training.evaluation import Z95, logit
from training.plots import PLOTS as PLOTS
from training.plots import Scores as Scores
from training.plots import draw

CARD: Final[str] = "model_card.md"
CARD_JSON: Final[str] = "model_card.json"
EXPLAINED_ROWS: Final[int] = 1_000
TOP_GLOBAL: Final[int] = 10
_KEYS: Final[tuple[str, ...]] = (
    "model_version",
    "created_at",
    "schema_hash",
    "num_trees",
    "num_nodes",
    "max_depth",
    "calibration",
    "block_threshold",
    "libraries",
    "training_data",
    "metrics",
)
_ROLES: Final[dict[str, str]] = {
    "train": "fits the trees",
    "validation": "early stopping, calibration, every threshold",
    "holdout": "figures only",
}

F64 = npt.NDArray[np.float64]


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


def write(out: Path, artifact: Artifact, *, holdout: Scores, validation: Scores) -> Path:
    """Write the plots, ``model_card.json`` and ``model_card.md`` into ``out``; returns the markdown."""
    meta = artifact.metadata
    block = meta.get("block_threshold")
    a, b = artifact.calibration.a, artifact.calibration.b
    raw_block = (logit(min(block, 1 - 1e-16)) - b) / a if block is not None else math.nan
    draw(out, meta["metrics"], holdout=holdout, validation=validation, raw_block=raw_block)
    doc = {key: meta[key] for key in _KEYS if key in meta}
    (out / CARD_JSON).write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    path = out / CARD
    path.write_text(render(doc))
    return path


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _recall(rate: dict[str, Any] | None) -> str:
    """A share of unwanted calls as a percentage with its 95 % interval."""
    if not rate or not rate["total"]:
        return "n/a"
    return f"{rate['rate']:.2%} ({rate['low']:.2%} to {rate['high']:.2%})"


def _legit(rate: dict[str, Any] | None) -> str:
    """A (small) share of legit calls as a count and a rate with its 95 % interval."""
    if not rate or not rate["total"]:
        return "n/a"
    return f"{rate['count']}/{rate['total']:,} = {rate['rate']:.2g} ({rate['low']:.2g} to {rate['high']:.2g})"


def render(doc: dict[str, Any]) -> str:
    """The markdown card from its JSON form (``model_card.json``)."""
    metrics = doc["metrics"]
    manifest = doc.get("training_data", {})
    lines = [f"# Model card — {doc['model_version']}", ""]
    if manifest.get("synthetic"):
        lines += [
            "> **PLACEHOLDER MODEL.** Trained on synthetic rows from `training.synthetic`, not on",
            "> features replayed from the simulator. Its figures say nothing about real traffic.",
            "",
        ]
    if metrics["warnings"]:
        lines += ["## Warnings", ""]
        lines += [f"- **WARNING** {warning}" for warning in metrics["warnings"]]
        lines.append("")
    lines += _what_it_is(doc) + _data(metrics, manifest) + _calibration(metrics)
    lines += _holdout(metrics) + _leaned_on(metrics)
    agreement = metrics["reason_agreement"]
    lines += [
        "## Explanations",
        "",
        f"On {agreement['rows']} holdout calls flagged at the 1% point (a sample of at most "
        f"{EXPLAINED_ROWS}), the top reason from path attribution equals TreeSHAP's (LightGBM "
        f"`pred_contrib`) for {_fmt(agreement['top_reason_equal'], 3)} of calls and is among "
        f"TreeSHAP's top 3 for {_fmt(agreement['top_reason_in_treeshap_top3'], 3)}.",
        "",
        "## Exactness",
        "",
        "Largest |kernel raw score - LightGBM raw score| on the holdout: "
        f"{metrics['kernel_parity_max_abs_diff']:.3g}.",
        "",
    ]
    return "\n".join(lines)


def _what_it_is(doc: dict[str, Any]) -> list[str]:
    calibration = doc["metrics"]["calibration"]
    block = doc["metrics"]["block"]
    if doc.get("block_threshold") is not None:
        blocking = (
            f"- BLOCK level: calibrated probability ≥ {doc['block_threshold']:.6g} (`block_threshold` in "
            f"model.json), the lowest at which the validation's legit calls blocked stay ≤ "
            f"{block['target']:g} at the upper end of their 95 % Wilson interval "
            f"({_legit(block['validation_legit'])}). A policy with `score_block_at: model` blocks on the "
            "score alone only from there (and from its own block threshold)."
        )
    else:
        blocking = (
            "- BLOCK level: none. The validation slice cannot bound legit blocks at "
            f"{block['target']:g}, so model.json carries no `block_threshold` and the decision never "
            "blocks on this model's score alone."
        )
    return [
        "## What it is",
        "",
        f"- LightGBM binary classifier, {doc['num_trees']} trees (best iteration by validation log loss), "
        f"max depth {doc['max_depth']}, {doc['num_nodes']} nodes; feature schema `{doc['schema_hash']}` "
        f"({WIDTH} features).",
        "- Every feature is trained as numeric: the schema's categorical features are small integer codes, "
        "so the scoring kernels only evaluate `<=` splits. Monotone constraints follow the schema's "
        "directions.",
        "- Score = Platt-calibrated probability, 1 / (1 + exp(-(a·raw + b))) with "
        f"a = {calibration['a']:.6g}, b = {calibration['b']:.6g} (fitted on the validation slice"
        + (", intercept moved to the deployment prior" if _shifted(calibration) else "")
        + "; see Calibration): strictly increasing, so thresholds keep the raw score's ranking.",
        blocking,
        "- Reasons on the call path: path attribution (Saabas) mapped to each feature's reason code "
        "(MODEL_SCORE for features without one), deduplicated, top 3.",
        f"- Created {doc['created_at']}; libraries "
        + ", ".join(f"{k} {v}" for k, v in sorted(doc.get("libraries", {}).items()))
        + ".",
        "",
    ]


def _data(metrics: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    lines = [
        "## Data",
        "",
        _split_text(manifest),
        "",
        "| slice | used for | rows | unwanted | unwanted share (95 % CI) | from (UTC) | to (UTC) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, role in _ROLES.items():
        s = metrics["slices"][name]
        lines.append(
            f"| {name} | {role} | {s['rows']} | {s['unwanted']} | "
            f"{_recall(s['unwanted_share'])} | {_utc(s['from_ms'])} | {_utc(s['to_ms'])} |"
        )
    lines += ["", "Training-data manifest (as passed by the caller):", "", "```json"]
    return [*lines, _json(manifest), "```", ""]


def _shifted(calibration: dict[str, Any]) -> bool:
    """Whether the shipped intercept differs from the one fitted on validation."""
    return bool(calibration["b"] != calibration["b_fitted"])


def _calibration(metrics: dict[str, Any]) -> list[str]:
    c = metrics["calibration"]
    shifted = _shifted(c)
    text = (
        f"Platt scaling was fitted on the validation slice, whose unwanted share is {c['fitted_prior']:.2%}. "
        "A Platt fit carries its slice's base rate, and transfers only to traffic with the same one. "
    )
    if shifted:
        text += (
            f"Its intercept was moved from {c['b_fitted']:.6g} to {c['b']:.6g}, i.e. by logit(deployment "
            f"prior) - logit(validation share), so the probabilities are calibrated for a base rate of "
            f"{c['deployment_prior']:.2%} ({c['deployment_prior_source']}): the correction for a change of "
            "prior alone, exact only while each class's features keep their distribution (a different mix "
            "of actor kinds breaks it). "
        )
    else:
        text += (
            f"It is shipped as fitted: the deployment prior ({c['deployment_prior_source']}) is the same. "
        )
    text += (
        f"The holdout's unwanted share is {_recall(c['holdout_unwanted_share'])}; its calibration error is "
        "shown for information and chose nothing."
    )
    lines = [
        "## Calibration",
        "",
        text,
        "",
        "| slice | unwanted share | calibration error (ECE, 12 equal-count bins) | log loss | Brier |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("validation", "holdout"):
        s = metrics[name]
        lines.append(
            f"| {name} | {s['unwanted_share']:.2%} | {_fmt(s['calibration_error'])} | "
            f"{_fmt(s['log_loss'])} | {_fmt(s['brier'], 5)} |"
        )
    if shifted:
        lines += [
            "",
            f"As fitted, before the prior shift, the holdout's calibration error would be "
            f"{_fmt(c['holdout_calibration_error_as_fitted'])}.",
        ]
    return [*lines, ""]


def _holdout(metrics: dict[str, Any]) -> list[str]:
    hold, points, block = metrics["holdout"], metrics["operating_points"], metrics["block"]
    lines = [
        "## Holdout",
        "",
        f"ROC AUC {_fmt(hold['roc_auc'])} · PR AUC {_fmt(hold['pr_auc'])} · "
        f"log loss {_fmt(hold['log_loss'])} · Brier {_fmt(hold['brier'], 5)} · "
        f"{hold['rows']} calls, {hold['unwanted_share']:.2%} unwanted.",
        "",
        "Operating points: each threshold was chosen on the validation slice's legit scores so at most the "
        "target share of its legit calls is flagged (raw score strictly above the threshold); the holdout "
        "only measures it, so its legit flag rate may differ from the target. Rates are counts with "
        f"95 % Wilson intervals (z = {Z95:.2f}). BLOCK is the model's block threshold (see What it is).",
        "",
        "| target legit FP | probability threshold | validation legit flagged | "
        "holdout legit flag rate (95 % CI) | holdout recall (95 % CI) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        lines.append(
            f"| {p['target_fp_rate']:g} | {p['probability_threshold']:.6g} | "
            f"{_legit(p['validation_legit'])} | {_legit(p['holdout_legit'])} | {_recall(p['recall'])} |"
        )
    threshold, chosen = block["probability_threshold"], block["validation_legit"]
    lines.append(
        f"| BLOCK (≤ {block['target']:g} at the upper bound) | "
        + (
            f"none | cannot bound it with {chosen['total']:,} legit calls"
            if threshold is None
            else f"≥ {threshold:.6g} | {_legit(chosen)}"
        )
        + f" | {_legit(block['holdout_legit'])} | {_recall(block['recall'])} |"
    )
    header = " | ".join(f"@{p['target_fp_rate']:g}" for p in points) + " | BLOCK |"
    rule = "---:|" * (len(points) + 1)
    lines += [
        "",
        "Recall per actor kind (its unwanted calls flagged at each operating point, and blocked):",
        "",
        "| kind | unwanted calls | ROC AUC vs all legit | " + header,
        "|---|---:|---:|" + rule,
    ]
    for row in metrics["per_kind"]:
        if row["unwanted"]:
            cells = [_recall(r) for r in row["unwanted"]["flagged"]] + [_recall(row["unwanted"]["blocked"])]
            lines.append(
                f"| {row['name']} | {row['unwanted_calls']} | {_fmt(row['roc_auc_vs_legit'])} | "
                + " | ".join(cells)
                + " |"
            )
    lines += [
        "",
        "Legit flag rate and BLOCK-level rate per actor kind (its legit calls flagged at each operating "
        "point, and blocked):",
        "",
        "| kind | legit calls | " + header,
        "|---|---:|" + rule,
    ]
    for row in metrics["per_kind"]:
        if row["legit"]:
            cells = [_legit(r) for r in row["legit"]["flagged"]] + [_legit(row["legit"]["blocked"])]
            lines.append(f"| {row['name']} | {row['legit_calls']} | " + " | ".join(cells) + " |")
    return [
        *lines,
        "",
        f"![ROC]({PLOTS['roc']}) ![PR]({PLOTS['pr']})",
        "",
        f"![reliability]({PLOTS['reliability']}) ![kinds]({PLOTS['kinds']})",
        "",
        f"![scores by actor kind]({PLOTS['scores']})",
        "",
    ]


def _leaned_on(metrics: dict[str, Any]) -> list[str]:
    importance = metrics["importance"]
    shap = importance["mean_abs_treeshap"]
    gain = importance["gain"]
    total_gain = sum(gain.values()) or 1.0
    lines = [
        "## What the model leans on",
        "",
        "Globally: mean |TreeSHAP| (LightGBM `pred_contrib`, log-odds) on "
        f"{importance.get('treeshap_rows', '?')} holdout calls spread evenly over it, and the share of "
        "total split gain.",
        "",
        "| feature | mean abs TreeSHAP | gain share |",
        "|---|---:|---:|",
    ]
    for name, value in sorted(shap.items(), key=lambda kv: kv[1], reverse=True)[:TOP_GLOBAL]:
        lines.append(f"| {name} | {value:.4f} | {gain.get(name, 0.0) / total_gain:.1%} |")
    lines += [
        "",
        "Per actor kind: the features with the largest mean |TreeSHAP| on (up to a sample of) its "
        "holdout calls.",
        "",
        "| kind | calls explained | top features (mean abs TreeSHAP) |",
        "|---|---:|---|",
    ]
    for row in metrics["per_kind"]:
        top = row.get("top_features")
        if top:
            named = ", ".join(f"{name} {value:.3f}" for name, value in top["features"])
            lines.append(f"| {row['name']} | {top['rows']} | {named} |")
    return [*lines, "", f"![importance]({PLOTS['importance']})", ""]


def _split_text(manifest: dict[str, Any]) -> str:
    """How the rows were split, in words (a held-out window, or shares of the rows)."""
    if "holdout_from_ms" in manifest:
        return (
            "Split by setup time, no shuffling: every call from "
            f"{_utc(int(manifest['holdout_from_ms']))} UTC on (the scenario's own window, after the lead-in "
            "it was generated with) is held out; of the calls before it the earliest 3/4 train and the last "
            "1/4 validate. Reputation state carries across the cuts, as it would in production."
        )
    return (
        "Split by setup time, no shuffling: train on the earliest ~60%, validate on the next ~20%, hold "
        "out the last ~20%."
    )


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
