"""Evaluation: Wilson intervals, thresholds chosen on validation, holdout figures and their warnings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest  # type: ignore[import-untyped]

from services.scoring import artifact
from services.scoring.artifact import Calibration
from training import evaluation
from training.evaluation import (
    BLOCK_LEGIT_RATE,
    LEGIT_FP_RATES,
    Rate,
    calibration_error,
    choose_block_threshold,
    choose_thresholds,
    measure,
    measure_block,
    resolution_warnings,
    shift_prior,
    wilson,
)


def scores(legit: int, unwanted: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = np.concatenate([rng.normal(size=legit), rng.normal(loc=3.0, size=unwanted)])
    y = np.concatenate([np.zeros(legit, bool), np.ones(unwanted, bool)])
    return raw, y


def test_wilson_matches_the_textbook_and_covers_the_edges() -> None:
    low, high = wilson(12, 135_020)
    assert (low, high) == pytest.approx((5.1e-5, 1.554e-4), rel=0.01)
    assert wilson(0, 1000)[0] == 0.0
    assert wilson(0, 1000)[1] == pytest.approx(1.96**2 / (1000 + 1.96**2), rel=1e-3)
    assert wilson(1000, 1000)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)
    for k, n in ((0, 10), (3, 10), (50, 100), (99, 100), (5, 100_000)):
        low, high = wilson(k, n)
        assert 0.0 <= low <= k / n <= high <= 1.0
        exact = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert (low, high) == pytest.approx((exact.low, exact.high), abs=1e-12)


def test_a_rate_reports_its_count_total_and_interval() -> None:
    rate = Rate(3, 1000)
    assert rate.value == 0.003
    low, high = wilson(3, 1000)
    assert rate.to_json() == {"count": 3, "total": 1000, "rate": 0.003, "low": low, "high": high}
    assert math.isnan(Rate(0, 0).value)


def test_warnings_name_a_holdout_too_small_or_an_interval_above_the_target() -> None:
    too_small = resolution_warnings(1e-4, Rate(0, 29_999), "holdout")
    assert len(too_small) == 1
    assert "29,999 legit calls cannot resolve" in too_small[0]
    assert "30,000 needed" in too_small[0]
    assert resolution_warnings(1e-4, Rate(0, 40_000), "holdout") == []
    above = resolution_warnings(1e-3, Rate(9, 10_000), "holdout")
    assert len(above) == 1
    assert "reaches above the target" in above[0]
    assert resolution_warnings(1e-3, Rate(9, 10_000), "validation", bound=False) == []
    assert resolution_warnings(1e-2, Rate(40, 10_000), "holdout") == []


def test_thresholds_come_from_validation_legit_scores_only() -> None:
    raw, y = scores(50_000, 2_000)
    chosen = choose_thresholds(raw, y)
    assert [t.target_fp_rate for t in chosen] == list(LEGIT_FP_RATES)
    for t in chosen:
        assert t.validation_legit.count <= t.target_fp_rate * 50_000
        assert t.validation_legit.count == int((raw[~y] > t.raw).sum())
    moved = raw.copy()
    moved[y] += 5.0
    assert [t.raw for t in choose_thresholds(moved, y)] == [t.raw for t in chosen]
    few = choose_thresholds(raw[-2_100:], y[-2_100:])
    assert few[0].raw == pytest.approx(raw[-2_100:][~y[-2_100:]].max())
    assert few[0].validation_legit.count == 0


def test_holdout_figures_are_measured_at_the_validation_thresholds() -> None:
    raw_val, y_val = scores(50_000, 2_000, seed=1)
    raw_hold, y_hold = scores(20_000, 2_000, seed=2)
    points = measure(choose_thresholds(raw_val, y_val), raw_hold, y_hold, artifact.IDENTITY)
    for p in points:
        assert p.holdout_legit == Rate(int((raw_hold[~y_hold] > p.raw_threshold).sum()), 20_000)
        assert p.recall == Rate(int((raw_hold[y_hold] > p.raw_threshold).sum()), 2_000)
        assert p.probability_threshold == pytest.approx(1 / (1 + math.exp(-p.raw_threshold)))
    strict = points[0]
    assert any(w.startswith("holdout: 20,000 legit calls cannot resolve") for w in strict.warnings)
    assert not any(w.startswith("validation") for w in strict.warnings)
    assert strict.to_json()["holdout_legit"]["total"] == 20_000


def test_the_block_threshold_keeps_the_upper_bound_within_the_target() -> None:
    rng = np.random.default_rng(3)
    probability = np.concatenate([rng.random(100_000) * 0.9, 0.95 + rng.random(500) * 0.05])
    y = np.concatenate([np.zeros(100_000, bool), np.ones(500, bool)])
    probability[:5] = 0.99
    threshold, chosen = choose_block_threshold(probability, y)
    assert threshold is not None
    legit = probability[~y]
    assert chosen.count == int((legit >= threshold).sum())
    assert wilson(chosen.count, chosen.total)[1] <= BLOCK_LEGIT_RATE
    lower = np.sort(legit)[::-1][chosen.count]
    assert wilson(int((legit >= lower).sum()), len(legit))[1] > BLOCK_LEGIT_RATE
    none, too_few = choose_block_threshold(probability[-20_000:], y[-20_000:])
    assert none is None
    assert too_few.total == int((~y[-20_000:]).sum())


def test_a_block_level_without_threshold_says_the_score_alone_never_blocks() -> None:
    probability = np.linspace(0, 1, 1000)
    y = probability > 0.9
    block = measure_block((probability, y), (probability, y))
    assert block.probability_threshold is None
    assert block.holdout_legit is None
    assert "900 legit calls cannot bound" in block.warnings[0]
    assert "never blocks" in block.warnings[0]
    assert block.to_json()["recall"] is None
    saturated = np.ones(50_000)
    y = np.zeros(50_000, bool)
    y[:10] = True
    tied = measure_block((saturated, y), (saturated, y))
    assert tied.probability_threshold is None
    assert "probability of 1.0" in tied.warnings[0]


def test_per_kind_separates_recall_of_unwanted_calls_from_legit_flag_and_block_rates() -> None:
    raw_val, y_val = scores(50_000, 2_000, seed=4)
    raw, y = scores(5_000, 1_000, seed=5)
    kinds = np.where(y, 6, 1).astype(np.int32)
    kinds[:100] = 2
    points = measure(choose_thresholds(raw_val, y_val), raw, y, artifact.IDENTITY)
    probability = 1 / (1 + np.exp(-raw))
    block = evaluation.BlockLevel(BLOCK_LEGIT_RATE, 0.99, Rate(0, 50_000), None, None, ())
    rows = {row["name"]: row for row in evaluation.per_kind(kinds, y, raw, probability, points, block)}
    assert set(rows) == {"SUBSCRIBER", "COURIER", "ROBOCALL"}
    assert rows["ROBOCALL"]["legit"] is None
    assert rows["ROBOCALL"]["unwanted"]["flagged"][2] == points[2].recall.to_json()
    assert rows["COURIER"]["legit_calls"] == 100
    assert rows["SUBSCRIBER"]["legit"]["blocked"]["count"] == int((probability[kinds == 1] >= 0.99).sum())


def test_the_prior_shift_moves_only_the_intercept_to_the_new_base_rate() -> None:
    fitted = Calibration(a=0.8, b=-1.0)
    shifted = shift_prior(fitted, 0.12, 0.44)
    assert shifted.a == fitted.a
    assert shifted.b == pytest.approx(-1.0 + math.log(0.44 / 0.56) - math.log(0.12 / 0.88))
    assert shift_prior(fitted, 0.3, 0.3) == fitted
    rng = np.random.default_rng(6)
    raw = rng.normal(scale=2.0, size=400_000)
    y = rng.random(len(raw)) < 1 / (1 + np.exp(-(raw - 2.0)))
    keep = y | (rng.random(len(raw)) < 0.25)
    true = Calibration(a=1.0, b=-2.0)
    moved = shift_prior(true, float(y.mean()), float(y[keep].mean()))
    on_kept = 1 / (1 + np.exp(-(moved.a * raw[keep] + moved.b)))
    assert calibration_error(on_kept, y[keep]) < 0.01


def test_calibration_error_is_zero_for_perfect_probabilities_and_large_for_a_constant_miss() -> None:
    probability = np.repeat([0.1, 0.5], 1000)
    y = np.concatenate([np.arange(1000) < 100, np.arange(1000) < 500])
    assert calibration_error(probability, y) == pytest.approx(0.0, abs=1e-12)
    assert calibration_error(np.full(2000, 0.9), y) == pytest.approx(0.9 - y.mean())
    assert math.isnan(calibration_error(np.zeros(0), np.zeros(0, bool)))
