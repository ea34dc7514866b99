"""Train, calibrate and evaluate the scoring model on a time split, and write its artifact and card.

The rows are split by setup time, never shuffled: the earliest ~60% train the forest; the next ~20%,
the validation slice, make every choice — early stopping, Platt calibration, the operating points'
thresholds and the block threshold; the last ~20% are held out and only measured, at the thresholds
chosen on validation — the way the model will meet tomorrow's traffic. LightGBM is trained with
every feature numeric (categorical schema features are small integer codes, so the kernels need only
``<=`` splits) and with the schema's monotone directions as constraints. Calibration is Platt
scaling of the raw margin: strictly increasing, so thresholds on the probability keep every
distinction the raw score makes — isotonic regression would merge the highest scores into ties
exactly where 0.01% false-positive thresholds live. Platt fits the validation slice's base rate;
its intercept is then moved to the deployment prior (given, or the share of unwanted calls in every
row before the holdout), never to the holdout's. Holdout figures are the deployed kernels' own scores.

Needs the ``train`` extra (LightGBM, scikit-learn); inference never imports this module.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress
from sklearn.metrics import (  # type: ignore[import-untyped]
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

from services.common.features import FEATURES, NAMES, SCHEMA_HASH, WIDTH
from services.common.progress import progress_bar
from services.scoring import artifact as artifact_io
from services.scoring import kernels
from services.scoring.artifact import Calibration
from services.scoring.model import Scorer
from training import card, evaluation, export
from training.degrade import DEGRADED_SHARES, with_degraded
from training.evaluation import share

TRAIN_SHARE: Final[float] = 0.6
VALIDATION_SHARE: Final[float] = 0.2
SHAP_SAMPLE: Final[int] = 2_000
SHAP_PER_KIND: Final[int] = 200
TOP_KIND_FEATURES: Final[int] = 5
MIN_CALIBRATION_CLASS: Final[int] = 50
PRIOR_GAP_LOGODDS: Final[float] = 0.2

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]


class TrainingError(Exception):
    """The training data cannot produce a model worth evaluating (shape, schema or too few labels)."""


@dataclass(frozen=True)
class FeatureSet:
    """Training rows in schema order with labels, setup times (ms) and ActorKind of each call."""

    X: F32
    y: Bool
    t_ms: I64
    kinds: npt.NDArray[np.int32]
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.y)
        if self.X.ndim != 2 or self.X.shape != (n, WIDTH):
            raise TrainingError(f"X must be (n, {WIDTH}) with n = len(y) = {n}, got {self.X.shape}")
        if len(self.t_ms) != n or len(self.kinds) != n:
            raise TrainingError("X, y, t_ms and kinds must have one entry per call")


def save_features(path: Path, features: FeatureSet) -> None:
    """Write the npz the ``train`` command reads: X, y, t_ms, kinds, schema_hash, manifest (JSON)."""
    np.savez_compressed(
        path,
        X=features.X.astype(np.float32),
        y=features.y.astype(np.bool_),
        t_ms=features.t_ms.astype(np.int64),
        kinds=features.kinds.astype(np.int32),
        schema_hash=np.array(SCHEMA_HASH),
        manifest=np.array(json.dumps(features.manifest, sort_keys=True)),
    )


def load_features(path: Path) -> FeatureSet:
    """Read a features npz; refuses one built for another feature schema."""
    with np.load(path, allow_pickle=False) as npz:
        missing = {"X", "y", "t_ms", "kinds"} - set(npz.files)
        if missing:
            raise TrainingError(f"{path} lacks arrays {sorted(missing)}")
        if "schema_hash" in npz.files and str(npz["schema_hash"]) != SCHEMA_HASH:
            raise TrainingError(
                f"{path} was built for feature schema {npz['schema_hash']}, this code's is {SCHEMA_HASH}"
            )
        manifest = json.loads(str(npz["manifest"])) if "manifest" in npz.files else {}
        features = FeatureSet(
            X=npz["X"].astype(np.float32, copy=False),
            y=npz["y"].astype(np.bool_, copy=False),
            t_ms=npz["t_ms"].astype(np.int64, copy=False),
            kinds=npz["kinds"].astype(np.int32, copy=False),
            manifest=manifest,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    features.manifest.setdefault("file", path.name)
    features.manifest.setdefault("sha256", digest)
    return features


@dataclass(frozen=True)
class Split:
    """Row indices of the three time slices, each in time order: validation chooses, the holdout measures."""

    train: I64
    validation: I64
    holdout: I64


def split_by_time(
    t_ms: I64,
    train: float = TRAIN_SHARE,
    validation: float = VALIDATION_SHARE,
    *,
    holdout_from_ms: int | None = None,
) -> Split:
    """Earliest ``train`` share, next ``validation`` share, the rest held out; equal times never straddle.

    With ``holdout_from_ms`` every row from that moment on is held out (a whole simulated day, say),
    and the rows before it are split between training and validation in the same proportion.
    """
    order = np.argsort(t_ms, kind="stable")
    times = t_ms[order]
    if holdout_from_ms is not None:
        cut_at = int(np.searchsorted(times, holdout_from_ms, side="left"))
        before = split_by_time(
            times[:cut_at], train / (train + validation), validation / (train + validation)
        )
        return Split(train=order[before.train], validation=order[before.validation], holdout=order[cut_at:])
    n = len(order)

    def cut(share: float) -> int:
        i = min(max(round(n * share), 0), n)
        return int(np.searchsorted(times, times[i - 1], side="right")) if 0 < i < n else i

    a = cut(train)
    b = max(cut(train + validation), a)
    return Split(train=order[:a], validation=order[a:b], holdout=order[b:])


def fit_platt(raw: F64, y: Bool, *, iterations: int = 50) -> Calibration:
    """Platt scaling by damped Newton on log loss, with Platt's smoothed targets against overfit.

    The backtracking line search follows Lin, Lin and Weng's note on Platt's method, which keeps
    Newton from overshooting on well-separated scores.
    """
    positives = float(y.sum())
    negatives = float(len(y) - positives)
    target = np.where(y, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))

    def loss(a: float, b: float) -> float:
        f = a * raw + b
        return float(np.sum(target * np.logaddexp(0.0, -f) + (1.0 - target) * np.logaddexp(0.0, f)))

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(iterations):
        p = np.exp(-np.logaddexp(0.0, -(a * raw + b)))
        w = np.maximum(p * (1.0 - p), 1e-12)
        g = p - target
        grad = np.array([np.dot(g, raw), g.sum()])
        hess = (
            np.array([[np.dot(w, raw * raw), np.dot(w, raw)], [np.dot(w, raw), w.sum()]]) + np.eye(2) * 1e-9
        )
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-10:
            trial = loss(a - scale * float(step[0]), b - scale * float(step[1]))
            if trial <= current + 1e-4 * scale * float(grad @ -step):
                break
            scale /= 2.0
        a, b, current = a - scale * float(step[0]), b - scale * float(step[1]), trial
        if float(np.abs(grad).max()) < 1e-9 * len(raw) or scale * float(np.abs(step).max()) < 1e-12:
            break
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0.0:
        raise TrainingError(
            f"calibration failed (a={a}, b={b}): the model does not rank the validation slice"
        )
    return Calibration(a=a, b=b)


def deployment_prior(
    given: float | None, manifest: dict[str, Any], before_holdout: Bool
) -> tuple[float, str]:
    """The base rate the shipped probabilities are calibrated for, and where it came from.

    In order: ``given``, the manifest's ``deployment_prior``, else the unwanted share of every row
    before the holdout (train and validation: a longer stretch than validation alone). Never the
    holdout's.
    """
    if given is not None:
        value, source = float(given), "given to the trainer"
    elif "deployment_prior" in manifest:
        value, source = float(manifest["deployment_prior"]), "the training-data manifest"
    else:
        value, source = float(before_holdout.mean()), "the unwanted share of every row before the holdout"
    if not 0.0 < value < 1.0:
        raise TrainingError(f"the deployment prior must lie strictly between 0 and 1, got {value} ({source})")
    return value, source


def _ranking(raw: F64, y: Bool, probability: F64) -> dict[str, float]:
    """Threshold-free figures on one slice (NaN where a slice has one class only)."""
    both = 0 < int(y.sum()) < len(y)
    return {
        "rows": len(y),
        "unwanted_share": float(y.mean()) if len(y) else math.nan,
        "roc_auc": float(roc_auc_score(y, raw)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, raw)) if both else math.nan,
        "log_loss": float(log_loss(y, probability, labels=[False, True])) if len(y) else math.nan,
        "brier": float(brier_score_loss(y, probability)) if len(y) else math.nan,
        "calibration_error": evaluation.calibration_error(probability, y),
    }


def _calibration(
    fitted: Calibration,
    shipped: Calibration,
    *,
    validation: Bool,
    prior: tuple[float, str],
    holdout: tuple[F64, Bool],
) -> tuple[dict[str, Any], list[str]]:
    """How the probabilities were calibrated (on ``validation``'s labels, shifted to ``prior``), their
    error on the holdout, and warnings on a thin fit or a base-rate gap."""
    fitted_on = share(validation)
    deployment, source = prior
    raw, y = holdout
    held = share(y)
    info = {
        "method": "platt",
        "fitted_on": "validation",
        "a": shipped.a,
        "b": shipped.b,
        "b_fitted": fitted.b,
        "fitted_prior": fitted_on.value,
        "deployment_prior": deployment,
        "deployment_prior_source": source,
        "holdout_unwanted_share": held.to_json(),
        "holdout_calibration_error_as_fitted": evaluation.calibration_error(
            kernels.calibrate_batch(raw, fitted.a, fitted.b), y
        ),
    }
    low, high = held.interval
    warnings = []
    fewest = min(fitted_on.count, fitted_on.total - fitted_on.count)
    if fewest < MIN_CALIBRATION_CLASS:
        warnings.append(
            f"calibration: the validation slice has only {fewest} calls of one class "
            f"({fitted_on.count} unwanted of {fitted_on.total:,}); the Platt fit is rough"
        )
    gap = evaluation.logit(held.value) - evaluation.logit(deployment)
    if not low <= deployment <= high and abs(gap) >= PRIOR_GAP_LOGODDS:
        warnings.append(
            f"calibration: probabilities are calibrated for an unwanted share of {deployment:.1%} "
            f"({source}); the holdout's is {held.value:.1%} (95 % CI {low:.1%}-{high:.1%}): on such "
            f"traffic they are off by {gap:+.2f} in log-odds, and so are the policy's probability thresholds"
        )
    return info, warnings


def _spread(rows: I64, limit: int) -> I64:
    """At most ``limit`` of ``rows``, evenly spaced (TreeSHAP costs milliseconds per row)."""
    if len(rows) <= limit:
        return rows
    picked: I64 = rows[np.linspace(0, len(rows) - 1, limit).astype(np.int64)]
    return picked


def _kind_features(
    booster: lgb.Booster, x: F32, kinds: npt.NDArray[np.int32], threads: int
) -> dict[int, dict[str, Any]]:
    """Per actor kind, the features with the largest mean |TreeSHAP| on up to SHAP_PER_KIND of its calls."""
    picked = {int(k): _spread(np.flatnonzero(kinds == k), SHAP_PER_KIND) for k in np.unique(kinds)}
    rows = np.concatenate(list(picked.values()))
    shap = np.abs(np.asarray(booster.predict(x[rows], pred_contrib=True, num_threads=threads))[:, :WIDTH])
    out, start = {}, 0
    for kind, idx in picked.items():
        mean = shap[start : start + len(idx)].mean(axis=0)
        start += len(idx)
        top = np.argsort(-mean, kind="stable")[:TOP_KIND_FEATURES]
        out[kind] = {"rows": len(idx), "features": [[NAMES[i], float(mean[i])] for i in top]}
    return out


def _progress_callback(progress: Progress, task: Any) -> Callable[[lgb.callback.CallbackEnv], None]:
    """A LightGBM callback that advances a rich progress bar and shows the validation loss."""

    def callback(env: lgb.callback.CallbackEnv) -> None:
        shown = " ".join(f"{item[1]}={item[2]:.5f}" for item in env.evaluation_result_list or [])
        progress.update(task, completed=env.iteration + 1, description=f"training  {shown}")

    return callback


def _fit(
    features: FeatureSet,
    split: Split,
    params: dict[str, Any],
    trees: int,
    early_stopping: int,
    console: Console,
) -> tuple[lgb.Booster, str, int]:
    """Boost on the training slice (with degraded copies of some of its rows, as serving sees calls
    whose reputation or origination did not answer: training.degrade), stopping early on the
    validation slice's log loss."""
    x_train, copied = with_degraded(features.X, split.train, DEGRADED_SHARES, seed=int(params.get("seed", 7)))
    rows = np.concatenate([split.train, np.arange(len(features.X), len(x_train))])
    labels = np.concatenate([features.y, features.y[copied]])
    train_set = lgb.Dataset(
        x_train[rows],
        label=labels[rows],
        feature_name=list(NAMES),
        categorical_feature=[],
    )
    valid_set = lgb.Dataset(
        features.X[split.validation], label=features.y[split.validation], reference=train_set
    )
    with progress_bar(console) as progress:
        task = progress.add_task("training", total=trees)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=trees,
            valid_sets=[valid_set],
            valid_names=["validation"],
            callbacks=[
                lgb.early_stopping(early_stopping, first_metric_only=True, verbose=False),
                _progress_callback(progress, task),
            ],
        )
    best = booster.best_iteration or trees
    model_text = booster.model_to_string(num_iteration=best)
    return lgb.Booster(model_str=model_text), model_text, int(best)


@dataclass(frozen=True)
class TrainResult:
    """Where the artifact went and the figures written into it."""

    out: Path
    metrics: dict[str, Any]


def train(
    X: F32,  # noqa: N803
    y: Bool,
    t_ms: I64,
    kinds: npt.NDArray[np.int32],
    out: Path,
    *,
    manifest: dict[str, Any],
    trees: int = 300,
    depth: int = 6,
    num_leaves: int | None = None,
    learning_rate: float = 0.05,
    min_data_in_leaf: int = 50,
    early_stopping: int = 50,
    seed: int = 7,
    threads: int = 2,
    holdout_from_ms: int | None = None,
    prior: float | None = None,
    console: Console | None = None,
) -> TrainResult:
    """Train on the earliest 60%, choose everything on the next 20%, measure on the last 20%.

    ``holdout_from_ms`` (default: the features manifest's, set for datasets with a lead-in) holds out
    everything from then on instead, and splits the rows before it 3:1. ``prior`` is the deployment
    base rate the probabilities are calibrated for (see ``deployment_prior``).
    """
    features = FeatureSet(X=X, y=y, t_ms=t_ms, kinds=kinds, manifest=manifest)
    console = console or Console(stderr=True)
    if holdout_from_ms is None and "holdout_from_ms" in manifest:
        holdout_from_ms = int(manifest["holdout_from_ms"])
    split = split_by_time(features.t_ms, holdout_from_ms=holdout_from_ms)
    slices = {"train": split.train, "validation": split.validation, "holdout": split.holdout}
    for name, idx in slices.items():
        labels = features.y[idx]
        if len(idx) == 0 or labels.all() or not labels.any():
            raise TrainingError(f"the {name} slice needs both wanted and unwanted calls ({len(idx)} rows)")
    params: dict[str, Any] = {
        "objective": "binary",
        "metric": ["binary_logloss", "auc"],
        "max_depth": depth,
        "num_leaves": num_leaves or min(2**depth - 1, 63),
        "learning_rate": learning_rate,
        "min_data_in_leaf": min_data_in_leaf,
        "feature_fraction": 0.9,
        "lambda_l2": 1.0,
        "max_bin": 255,
        "monotone_constraints": [f.monotone for f in FEATURES],
        "monotone_constraints_method": "intermediate",
        "use_missing": True,
        "zero_as_missing": False,
        "num_threads": threads,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    started = time.perf_counter()
    booster, model_text, best = _fit(features, split, params, trees, early_stopping, console)
    seconds = time.perf_counter() - started

    # Every choice, from the validation slice alone.
    scorer = Scorer(export.from_booster(booster))
    x_val, y_val = features.X[split.validation], features.y[split.validation]
    raw_val = scorer.score_batch(x_val).raw
    fitted = fit_platt(raw_val, y_val)
    before = features.y[np.concatenate([split.train, split.validation])]
    deployment, source = deployment_prior(prior, features.manifest, before)
    calibration = evaluation.shift_prior(fitted, float(y_val.mean()), deployment)
    prob_val = kernels.calibrate_batch(raw_val, calibration.a, calibration.b)
    thresholds = evaluation.choose_thresholds(raw_val, y_val)

    # The holdout only measures.
    hold = split.holdout
    x_hold, y_hold, kinds_hold = features.X[hold], features.y[hold], features.kinds[hold]
    raw_hold = scorer.score_batch(x_hold).raw
    prob_hold = kernels.calibrate_batch(raw_hold, calibration.a, calibration.b)
    parity = float(np.abs(raw_hold - booster.predict(x_hold, raw_score=True)).max(initial=0.0))
    points = evaluation.measure(thresholds, raw_hold, y_hold, calibration)
    block = evaluation.measure_block((prob_val, y_val), (prob_hold, y_hold))
    calibration_info, calibration_warnings = _calibration(
        fitted, calibration, validation=y_val, prior=(deployment, source), holdout=(raw_hold, y_hold)
    )
    kinds_table = evaluation.per_kind(kinds_hold, y_hold, raw_hold, prob_hold, points, block)
    leaned_on = _kind_features(booster, x_hold, kinds_hold, threads)
    for row in kinds_table:
        row["top_features"] = leaned_on[row["kind"]]

    sample = _spread(np.arange(len(hold)), SHAP_SAMPLE)
    shap = np.asarray(booster.predict(x_hold[sample], pred_contrib=True, num_threads=threads))
    saabas = scorer.contributions_batch(x_hold[sample])
    flagged = _spread(np.flatnonzero(raw_hold > points[-1].raw_threshold), card.EXPLAINED_ROWS)
    agreement = card.reason_agreement(
        scorer.contributions_batch(x_hold[flagged]),
        np.asarray(booster.predict(x_hold[flagged], pred_contrib=True, num_threads=threads)),
    )
    importance: dict[str, Any] = {
        "treeshap_rows": len(sample),
        "gain": dict(zip(NAMES, map(float, booster.feature_importance("gain")), strict=True)),
        "mean_abs_treeshap": dict(zip(NAMES, map(float, np.abs(shap[:, :WIDTH]).mean(axis=0)), strict=True)),
        "mean_abs_saabas": dict(zip(NAMES, map(float, np.abs(saabas[:, :WIDTH]).mean(axis=0)), strict=True)),
    }

    metrics: dict[str, Any] = {
        "holdout": _ranking(raw_hold, y_hold, prob_hold),
        "validation": _ranking(raw_val, y_val, prob_val),
        "calibration": calibration_info,
        "operating_points": [p.to_json() for p in points],
        "block": block.to_json(),
        "per_kind": kinds_table,
        "slices": {
            name: {
                "rows": len(idx),
                "from_ms": int(features.t_ms[idx].min()),
                "to_ms": int(features.t_ms[idx].max()),
                "unwanted": int(features.y[idx].sum()),
                "unwanted_share": share(features.y[idx]).to_json(),
            }
            for name, idx in slices.items()
        },
        "warnings": [*(w for p in points for w in p.warnings), *block.warnings, *calibration_warnings],
        "best_iteration": best,
        "training_seconds": round(seconds, 2),
        "kernel_parity_max_abs_diff": parity,
        "reason_agreement": agreement,
        "importance": importance,
    }
    params["num_boost_round"] = trees
    params["early_stopping_rounds"] = early_stopping
    params["degraded_copies"] = {  # training.degrade: shares of training rows copied degraded
        "reputation": DEGRADED_SHARES.reputation,
        "origination": DEGRADED_SHARES.origination,
    }
    final = export.from_booster(
        booster,
        calibration,
        metrics=metrics,
        manifest=features.manifest,
        params=params,
        block_threshold=block.probability_threshold,
    )
    artifact_io.save(final, out, lightgbm_text=model_text)
    card.write(
        out,
        final,
        holdout=card.Scores(raw=raw_hold, probability=prob_hold, y=y_hold, kinds=kinds_hold),
        validation=card.Scores(
            raw=raw_val, probability=prob_val, y=y_val, kinds=features.kinds[split.validation]
        ),
    )
    console.print(
        f"model {final.version}: {best} trees, holdout ROC AUC {metrics['holdout']['roc_auc']:.4f}, "
        f"PR AUC {metrics['holdout']['pr_auc']:.4f}, {len(metrics['warnings'])} warning(s) on the card "
        f"→ {out}"
    )
    return TrainResult(out=out, metrics=metrics)
