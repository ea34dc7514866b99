"""Train, calibrate and evaluate the scoring model on a time split, and write its artifact and card.

The rows are split by setup time, never shuffled: the earliest ~70% train the forest, the next ~10%
stop it early and fit its calibration, the last ~20% are held out and only evaluated — the way the
model will meet tomorrow's traffic. LightGBM is trained with every feature numeric (categorical
schema features are small integer codes, so the kernels need only ``<=`` splits) and with the
schema's monotone directions as constraints. Calibration is Platt scaling of the raw margin: it is
strictly increasing, so thresholds on the probability keep every distinction the raw score makes —
isotonic regression would merge the highest scores into ties exactly where 0.01% false-positive
thresholds live. Holdout figures are computed from the deployed kernels' own scores.

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
from services.scoring.artifact import Calibration
from services.scoring.model import Scorer
from training import card, export

TRAIN_SHARE: Final[float] = 0.7
CALIBRATION_SHARE: Final[float] = 0.1
LEGIT_FP_RATES: Final[tuple[float, ...]] = (1e-4, 1e-3, 1e-2)
MIN_EXPECTED_FP: Final[int] = 10
SHAP_SAMPLE: Final[int] = 2_000

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
    """Row indices of the three time slices, each in time order."""

    train: I64
    calibration: I64
    holdout: I64


def split_by_time(
    t_ms: I64,
    train: float = TRAIN_SHARE,
    calibration: float = CALIBRATION_SHARE,
    *,
    holdout_from_ms: int | None = None,
) -> Split:
    """Earliest ``train`` share, next ``calibration`` share, the rest held out; equal times never straddle.

    With ``holdout_from_ms`` every row from that moment on is held out (a whole simulated day, say),
    and the rows before it are split between training and calibration in the same proportion.
    """
    order = np.argsort(t_ms, kind="stable")
    times = t_ms[order]
    if holdout_from_ms is not None:
        cut_at = int(np.searchsorted(times, holdout_from_ms, side="left"))
        before = split_by_time(
            times[:cut_at], train / (train + calibration), calibration / (train + calibration)
        )
        return Split(train=order[before.train], calibration=order[before.calibration], holdout=order[cut_at:])
    n = len(order)

    def cut(share: float) -> int:
        i = min(max(round(n * share), 0), n)
        return int(np.searchsorted(times, times[i - 1], side="right")) if 0 < i < n else i

    a = cut(train)
    b = max(cut(train + calibration), a)
    return Split(train=order[:a], calibration=order[a:b], holdout=order[b:])


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
            f"calibration failed (a={a}, b={b}): the model does not rank the calibration slice"
        )
    return Calibration(a=a, b=b)


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold chosen so at most ``target_fp_rate`` of the holdout's legit calls are flagged."""

    target_fp_rate: float
    raw_threshold: float
    probability_threshold: float
    recall: float
    legit_flagged: int
    legit_total: int
    meaningful: bool
    note: str

    def to_json(self) -> dict[str, Any]:
        """JSON form for model.json."""
        return self.__dict__.copy()


def operating_points(raw: F64, y: Bool, calibration: Calibration) -> list[OperatingPoint]:
    """Recall at each legit false-positive rate in LEGIT_FP_RATES, thresholds taken from legit scores.

    A call is flagged when its raw score is strictly above the threshold. A rate is called
    meaningful only when the holdout allows at least MIN_EXPECTED_FP legit false positives at it.
    """
    legit = np.sort(raw[~y])[::-1]
    fraud = raw[y]
    points = []
    for rate in LEGIT_FP_RATES:
        allowed = math.floor(rate * len(legit))
        threshold = float(legit[allowed]) if allowed < len(legit) else -math.inf
        expected = rate * len(legit)
        if expected >= MIN_EXPECTED_FP:
            meaningful, note = True, ""
        elif allowed >= 1:
            meaningful, note = False, f"only {allowed} legit false positives allowed; indicative"
        else:
            meaningful = False
            note = f"{len(legit)} legit calls cannot resolve {rate:g}; threshold = highest legit score"
        points.append(
            OperatingPoint(
                target_fp_rate=rate,
                raw_threshold=threshold,
                probability_threshold=float(
                    1.0 / (1.0 + math.exp(-(calibration.a * threshold + calibration.b)))
                )
                if math.isfinite(threshold)
                else 0.0,
                recall=float((fraud > threshold).mean()) if len(fraud) else math.nan,
                legit_flagged=int((legit > threshold).sum()),
                legit_total=len(legit),
                meaningful=meaningful,
                note=note,
            )
        )
    return points


def per_kind(
    raw: F64, y: Bool, kinds: npt.NDArray[np.int32], points: list[OperatingPoint]
) -> list[dict[str, Any]]:
    """For each actor kind on the holdout: calls, unwanted share, share flagged at each threshold."""
    rows = []
    legit = ~y
    for kind in np.unique(kinds):
        mask = kinds == kind
        unwanted = mask & y
        versus = unwanted | legit
        rows.append(
            {
                "kind": int(kind),
                "name": card.kind_name(int(kind)),
                "calls": int(mask.sum()),
                "unwanted_share": float(y[mask].mean()),
                "roc_auc_vs_legit": float(roc_auc_score(y[versus], raw[versus]))
                if unwanted.any() and legit.any()
                else math.nan,
                "flagged": [float((raw[mask] > p.raw_threshold).mean()) for p in points],
            }
        )
    return rows


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
    }


def _spread(rows: I64, limit: int) -> I64:
    """At most ``limit`` of ``rows``, evenly spaced (TreeSHAP costs milliseconds per row)."""
    if len(rows) <= limit:
        return rows
    picked: I64 = rows[np.linspace(0, len(rows) - 1, limit).astype(np.int64)]
    return picked


def _progress_callback(progress: Progress, task: Any) -> Callable[[lgb.callback.CallbackEnv], None]:
    """A LightGBM callback that advances a rich progress bar and shows the validation loss."""

    def callback(env: lgb.callback.CallbackEnv) -> None:
        shown = " ".join(f"{item[1]}={item[2]:.5f}" for item in env.evaluation_result_list or [])
        progress.update(task, completed=env.iteration + 1, description=f"training  {shown}")

    return callback


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
    console: Console | None = None,
) -> TrainResult:
    """Train on the earliest 70%, early-stop and calibrate on the next 10%, evaluate on the last 20%.

    ``holdout_from_ms`` (default: the features manifest's, set for datasets with a lead-in) holds out
    everything from then on instead, and splits the rows before it 7:1.
    """
    features = FeatureSet(X=X, y=y, t_ms=t_ms, kinds=kinds, manifest=manifest)
    console = console or Console(stderr=True)
    if holdout_from_ms is None and "holdout_from_ms" in manifest:
        holdout_from_ms = int(manifest["holdout_from_ms"])
    split = split_by_time(features.t_ms, holdout_from_ms=holdout_from_ms)
    for name, idx in (("train", split.train), ("calibration", split.calibration), ("holdout", split.holdout)):
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
    train_set = lgb.Dataset(
        features.X[split.train],
        label=features.y[split.train],
        feature_name=list(NAMES),
        categorical_feature=[],
    )
    valid_set = lgb.Dataset(
        features.X[split.calibration], label=features.y[split.calibration], reference=train_set
    )
    started = time.perf_counter()
    with progress_bar(console) as progress:
        task = progress.add_task("training", total=trees)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=trees,
            valid_sets=[valid_set],
            valid_names=["calibration"],
            callbacks=[
                lgb.early_stopping(early_stopping, first_metric_only=True, verbose=False),
                _progress_callback(progress, task),
            ],
        )
    best = booster.best_iteration or trees
    model_text = booster.model_to_string(num_iteration=best)
    booster = lgb.Booster(model_str=model_text)
    seconds = time.perf_counter() - started

    provisional = export.from_booster(booster)
    scorer = Scorer(provisional)
    raw_cal = scorer.score_batch(features.X[split.calibration]).raw
    calibration = fit_platt(raw_cal, features.y[split.calibration])

    hold = split.holdout
    x_hold, y_hold, kinds_hold = features.X[hold], features.y[hold], features.kinds[hold]
    raw_hold = scorer.score_batch(x_hold).raw
    prob_hold = 1.0 / (1.0 + np.exp(-(calibration.a * raw_hold + calibration.b)))
    prob_cal = 1.0 / (1.0 + np.exp(-(calibration.a * raw_cal + calibration.b)))
    parity = float(np.abs(raw_hold - booster.predict(x_hold, raw_score=True)).max(initial=0.0))
    points = operating_points(raw_hold, y_hold, calibration)
    kinds_table = per_kind(raw_hold, y_hold, kinds_hold, points)

    sample = _spread(np.arange(len(hold)), SHAP_SAMPLE)
    shap = np.asarray(booster.predict(x_hold[sample], pred_contrib=True, num_threads=threads))
    saabas = scorer.contributions_batch(x_hold[sample])
    flagged = _spread(np.flatnonzero(raw_hold > points[-1].raw_threshold), card.EXPLAINED_ROWS)
    agreement = card.reason_agreement(
        scorer.contributions_batch(x_hold[flagged]),
        np.asarray(booster.predict(x_hold[flagged], pred_contrib=True, num_threads=threads)),
    )
    importance = {
        "gain": dict(zip(NAMES, map(float, booster.feature_importance("gain")), strict=True)),
        "mean_abs_treeshap": dict(zip(NAMES, map(float, np.abs(shap[:, :WIDTH]).mean(axis=0)), strict=True)),
        "mean_abs_saabas": dict(zip(NAMES, map(float, np.abs(saabas[:, :WIDTH]).mean(axis=0)), strict=True)),
    }

    metrics: dict[str, Any] = {
        "holdout": _ranking(raw_hold, y_hold, prob_hold),
        "calibration_slice": _ranking(raw_cal, features.y[split.calibration], prob_cal),
        "operating_points": [p.to_json() for p in points],
        "per_kind": kinds_table,
        "slices": {
            name: {
                "rows": len(idx),
                "from_ms": int(features.t_ms[idx].min()),
                "to_ms": int(features.t_ms[idx].max()),
                "unwanted": int(features.y[idx].sum()),
            }
            for name, idx in (("train", split.train), ("calibration", split.calibration), ("holdout", hold))
        },
        "best_iteration": int(best),
        "training_seconds": round(seconds, 2),
        "kernel_parity_max_abs_diff": parity,
        "reason_agreement": agreement,
        "importance": importance,
    }
    params["num_boost_round"] = trees
    params["early_stopping_rounds"] = early_stopping
    final = export.from_booster(
        booster, calibration, metrics=metrics, manifest=features.manifest, params=params
    )
    artifact_io.save(final, out, lightgbm_text=model_text)
    card.write(
        out,
        final,
        holdout=card.Holdout(raw=raw_hold, probability=prob_hold, y=y_hold, kinds=kinds_hold),
        points=points,
    )
    console.print(
        f"model {final.version}: {best} trees, holdout ROC AUC {metrics['holdout']['roc_auc']:.4f}, "
        f"PR AUC {metrics['holdout']['pr_auc']:.4f} → {out}"
    )
    return TrainResult(out=out, metrics=metrics)
