"""Choices made on the validation slice, and holdout figures with their uncertainty.

Every threshold is chosen from validation scores alone (``choose_thresholds``,
``choose_block_threshold``); the holdout only measures them (``measure``, ``measure_block``,
``per_kind``), so its legit flag rate may differ from the target and is reported as a count with a
95 % Wilson score interval. A rate the holdout is too small to resolve (fewer than 3/target legit
calls: with none flagged, a 95 % upper bound is still about 3/n, the rule of three) or whose interval
reaches above the target gets a warning. The calibration's intercept can be moved to another base rate
(``shift_prior``): the Bayes correction for a change of prior alone, valid while the features of
each class keep their distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

from fraudmesh.v1 import dataset_pb2
from services.scoring.artifact import Calibration

Z95: Final[float] = 1.959963984540054
LEGIT_FP_RATES: Final[tuple[float, ...]] = (1e-4, 1e-3, 1e-2)
BLOCK_LEGIT_RATE: Final[float] = 1e-4
RESOLVING_EVENTS: Final[float] = 3.0

F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]


def kind_name(kind: int) -> str:
    """The ActorKind's short name (SUBSCRIBER, ROBOCALL, ...), or the number if unknown."""
    try:
        return dataset_pb2.ActorKind.Name(dataset_pb2.ActorKind.ValueType(kind)).removeprefix("ACTOR_KIND_")
    except ValueError:
        return str(kind)


def wilson(count: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``count`` successes in ``total`` trials ((0, 1) when there are none)."""
    if total <= 0:
        return 0.0, 1.0
    p = count / total
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    low = 0.0 if count == 0 else max(0.0, centre - half)
    high = 1.0 if count == total else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Rate:
    """``count`` of ``total`` calls, with the 95 % Wilson interval of the share."""

    count: int
    total: int

    @property
    def value(self) -> float:
        """The observed share (NaN without calls)."""
        return self.count / self.total if self.total else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """The 95 % Wilson score interval."""
        return wilson(self.count, self.total)

    def to_json(self) -> dict[str, Any]:
        """JSON form: count, total, rate and the interval's ends."""
        low, high = self.interval
        return {"count": self.count, "total": self.total, "rate": self.value, "low": low, "high": high}


def share(mask: Bool) -> Rate:
    """The share of true entries of a mask."""
    return Rate(int(mask.sum()), len(mask))


def resolution_warnings(
    target: float,
    legit: Rate,
    where: str,
    *,
    then: str = "figures at it are indicative only",
    bound: bool = True,
) -> list[str]:
    """Why ``legit`` cannot show a legit rate at most ``target``: too few calls, or (``bound``) a 95 %
    interval reaching above it."""
    needed = math.ceil(RESOLVING_EVENTS / target)
    if legit.total < needed:
        return [
            f"{where}: {legit.total:,} legit calls cannot resolve a legit rate of {target:g} "
            f"(≥ {needed:,} needed); {then}"
        ]
    low, high = legit.interval
    if bound and high > target:
        return [
            f"{where}: legit rate {legit.count}/{legit.total:,} = {legit.value:.2g} at target {target:g}, "
            f"95 % CI [{low:.2g}, {high:.2g}] reaches above the target"
        ]
    return []


@dataclass(frozen=True)
class Threshold:
    """A raw-score threshold chosen on validation: a call is flagged when its raw score is above it."""

    target_fp_rate: float
    raw: float
    validation_legit: Rate


def choose_thresholds(raw: F64, y: Bool, rates: tuple[float, ...] = LEGIT_FP_RATES) -> list[Threshold]:
    """For each rate, the lowest threshold flagging at most that share of the validation's legit calls."""
    legit = np.sort(raw[~y])[::-1]
    chosen = []
    for rate in rates:
        allowed = math.floor(rate * len(legit))
        threshold = float(legit[allowed]) if allowed < len(legit) else -math.inf
        chosen.append(Threshold(rate, threshold, Rate(int((legit > threshold).sum()), len(legit))))
    return chosen


def _probability(raw: float, calibration: Calibration) -> float:
    """The calibrated probability of one raw score (0 for -inf), without overflow."""
    if not math.isfinite(raw):
        return 0.0 if raw < 0 else 1.0
    z = calibration.a * raw + calibration.b
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class OperatingPoint:
    """A validation-chosen threshold and what it does on the holdout."""

    target_fp_rate: float
    raw_threshold: float
    probability_threshold: float
    validation_legit: Rate
    holdout_legit: Rate
    recall: Rate
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form for model.json and model_card.json."""
        return {
            "target_fp_rate": self.target_fp_rate,
            "raw_threshold": self.raw_threshold,
            "probability_threshold": self.probability_threshold,
            "validation_legit": self.validation_legit.to_json(),
            "holdout_legit": self.holdout_legit.to_json(),
            "recall": self.recall.to_json(),
            "warnings": list(self.warnings),
        }


def measure(thresholds: list[Threshold], raw: F64, y: Bool, calibration: Calibration) -> list[OperatingPoint]:
    """Holdout recall and legit flag rate at thresholds chosen elsewhere, with the warnings they earn."""
    points = []
    for t in thresholds:
        legit = share(raw[~y] > t.raw)
        warnings = resolution_warnings(
            t.target_fp_rate, t.validation_legit, "validation", then="its threshold is imprecise", bound=False
        ) + resolution_warnings(t.target_fp_rate, legit, "holdout")
        points.append(
            OperatingPoint(
                target_fp_rate=t.target_fp_rate,
                raw_threshold=t.raw,
                probability_threshold=_probability(t.raw, calibration),
                validation_legit=t.validation_legit,
                holdout_legit=legit,
                recall=share(raw[y] > t.raw),
                warnings=tuple(warnings),
            )
        )
    return points


def choose_block_threshold(
    probability: F64, y: Bool, target: float = BLOCK_LEGIT_RATE
) -> tuple[float | None, Rate]:
    """The lowest probability at or above which validation's legit calls stay at most ``target`` at the
    upper end of their 95 % interval; ``None`` when even none blocked cannot show it (or ties at 1.0)."""
    legit = np.sort(probability[~y])[::-1]
    n = len(legit)
    if n == 0 or wilson(0, n)[1] > target:
        return None, Rate(0, n)
    allowed = 0
    while allowed + 1 < n and wilson(allowed + 1, n)[1] <= target:
        allowed += 1
    threshold = float(np.nextafter(legit[allowed], np.inf))
    if threshold > 1.0:
        return None, Rate(0, n)
    return threshold, Rate(int((legit >= threshold).sum()), n)


@dataclass(frozen=True)
class BlockLevel:
    """The model's own block threshold (``block_threshold`` in model.json) and its holdout figures."""

    target: float
    probability_threshold: float | None
    validation_legit: Rate
    holdout_legit: Rate | None
    recall: Rate | None
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form for model.json and model_card.json."""
        return {
            "target": self.target,
            "probability_threshold": self.probability_threshold,
            "validation_legit": self.validation_legit.to_json(),
            "holdout_legit": self.holdout_legit.to_json() if self.holdout_legit else None,
            "recall": self.recall.to_json() if self.recall else None,
            "warnings": list(self.warnings),
        }


def measure_block(
    validation: tuple[F64, Bool], holdout: tuple[F64, Bool], target: float = BLOCK_LEGIT_RATE
) -> BlockLevel:
    """Choose the block threshold on validation probabilities, then measure it on the holdout's."""
    threshold, chosen = choose_block_threshold(*validation, target)
    if threshold is None:
        needed = math.ceil(Z95 * Z95 * (1 - target) / target)
        why = (
            f"the validation's {chosen.total:,} legit calls cannot bound legit blocks at {target:g} "
            f"(≥ {needed:,} needed with none blocked)"
            if chosen.total < needed
            else "the validation's highest legit scores are a probability of 1.0, which nothing separates"
        )
        return BlockLevel(
            target,
            None,
            chosen,
            None,
            None,
            (f"no block threshold: {why}; the decision never blocks on this model's score alone",),
        )
    probability, y = holdout
    legit = share(probability[~y] >= threshold)
    return BlockLevel(
        target,
        threshold,
        chosen,
        legit,
        share(probability[y] >= threshold),
        tuple(resolution_warnings(target, legit, "holdout BLOCK level")),
    )


def per_kind(
    kinds: npt.NDArray[np.int32],
    y: Bool,
    raw: F64,
    probability: F64,
    points: list[OperatingPoint],
    block: BlockLevel,
) -> list[dict[str, Any]]:
    """Per actor kind on the holdout: recall of its unwanted calls and flag/block rates of its legit ones."""
    rows = []
    legit_all = ~y
    for kind in (int(k) for k in np.unique(kinds)):
        mask = kinds == kind
        row: dict[str, Any] = {"kind": kind, "name": kind_name(kind), "calls": int(mask.sum())}
        for label, which in (("unwanted", mask & y), ("legit", mask & ~y)):
            count = int(which.sum())
            row[f"{label}_calls"] = count
            row[label] = (
                {
                    "flagged": [share(raw[which] > p.raw_threshold).to_json() for p in points],
                    "blocked": share(probability[which] >= block.probability_threshold).to_json()
                    if block.probability_threshold is not None
                    else None,
                }
                if count
                else None
            )
        unwanted = mask & y
        row["roc_auc_vs_legit"] = (
            float(roc_auc_score(y[unwanted | legit_all], raw[unwanted | legit_all]))
            if unwanted.any() and legit_all.any()
            else math.nan
        )
        rows.append(row)
    return rows


def logit(p: float) -> float:
    """log(p / (1 - p))."""
    return math.log(p / (1.0 - p))


def shift_prior(calibration: Calibration, fitted_prior: float, deployment_prior: float) -> Calibration:
    """Move a Platt calibration fitted at one base rate to another: b += logit(new) - logit(fitted).

    Bayes' rule for a change of prior alone (Saerens et al., 2002): exact while each class's features
    keep their distribution, approximate when the mix within a class changes too.
    """
    return Calibration(a=calibration.a, b=calibration.b + (logit(deployment_prior) - logit(fitted_prior)))


def calibration_error(probability: F64, y: Bool, bins: int = 12) -> float:
    """Expected calibration error: |mean predicted - observed| over ``bins`` equal-count bins (ties kept
    in one bin), weighted by each bin's size."""
    n = len(y)
    if n == 0:
        return math.nan
    which = np.searchsorted(np.sort(probability), probability, side="left") * bins // n
    predicted = np.bincount(which, weights=probability, minlength=bins)
    observed = np.bincount(which, weights=y.astype(np.float64), minlength=bins)
    return float(np.abs(predicted - observed).sum() / n)
