"""Scoring kernels: exact parity with LightGBM and with a plain NumPy reference, compiled or not.

Small LightGBM models are trained here on generated data chosen to produce every routing case:
NaN-type and None-type splits, zero-as-missing splits, an infinite threshold (numbers left, NaN
right), thresholds inside the +-1e-35 zero band, trees shallower than the forest. The same file runs
again under NUMBA_DISABLE_JIT=1 (test_scoring_nojit.py), with fewer rows, so the Python path of
every kernel is checked too.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import lightgbm as lgb
import numba
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from services.common.features import NAMES, WIDTH
from services.scoring import kernels
from services.scoring.artifact import Forest
from training.export import forest_from_dump

NO_JIT = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
ROWS = 250 if NO_JIT else 4000
EXAMPLES = 15 if NO_JIT else 150
ZT = float(np.float32(1e-35))

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def training_data(n: int = 3000, seed: int = 0) -> tuple[F32, npt.NDArray[np.bool_]]:
    """Rows with NaN-only-when-risky, never-NaN, zero-heavy two-sided and monotone columns."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, WIDTH)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[:, 1:4] = rng.normal(size=(n, 3))
    zero = rng.random(n) < 0.5
    x[zero, 4] = 0.0
    x[:, 5] = rng.integers(0, 4, size=n)
    score = np.nan_to_num(x[:, 0]) + x[:, 1] - 0.5 * x[:, 2] + np.where(x[:, 4] > 0, 1.0, -0.5)
    score += 0.7 * x[:, 5] + rng.normal(scale=0.7, size=n)
    y = score > 0.8
    x[y & (rng.random(n) < 0.6), 6] = np.nan
    return x, y


def booster(**params: Any) -> lgb.Booster:
    """A small model, reloaded from its text form (the form an artifact is built from)."""
    x, y = training_data()
    base: dict[str, Any] = {
        "objective": "binary",
        "max_depth": 5,
        "num_leaves": 20,
        "min_data_in_leaf": 5,
        "learning_rate": 0.2,
        "verbose": -1,
        "seed": 1,
        "num_threads": 1,
        "deterministic": True,
    }
    base.update(params)
    trees = int(base.pop("trees", 30))
    trained = lgb.train(base, lgb.Dataset(x, y, feature_name=list(NAMES), categorical_feature=[]), trees)
    return lgb.Booster(model_str=trained.model_to_string())


MODELS: dict[str, dict[str, Any]] = {
    "nan": {},
    "zero_as_missing": {"zero_as_missing": True},
    "no_missing_handling": {"use_missing": False},
    "monotone": {"monotone_constraints": [1, 1, -1] + [0] * (WIDTH - 3)},
    "single_leaf_trees": {"min_data_in_leaf": 10_000, "trees": 3},
}


@functools.cache
def model(name: str) -> tuple[lgb.Booster, Forest, kernels.Packed]:
    """A named model, its flattened forest and the kernels' layout (built once per process)."""
    trained = booster(**MODELS[name])
    forest = forest_from_dump(trained.dump_model())
    return trained, forest, kernels.pack(forest)


def reference_raw(forest: Forest, x: F32) -> F64:
    """LightGBM's routing written plainly in NumPy over the artifact arrays, summed in tree order."""
    n = len(x)
    values = x.astype(np.float64)
    values = np.where(np.abs(values) <= ZT, 0.0, values)
    total = np.zeros(n)
    rows = np.arange(n)
    for t in range(forest.num_trees):
        node = np.full(n, forest.tree_offset[t])
        while True:
            split = forest.left[node] >= 0
            if not split.any():
                break
            v = values[rows, forest.feature[node]]
            missing_type = (forest.decision_type[node].astype(np.int64) >> 2) & 3
            default_left = (forest.decision_type[node] & 2) != 0
            v = np.where(np.isnan(v) & (missing_type != 2), 0.0, v)
            missing = ((missing_type == 1) & (np.abs(v) <= ZT)) | ((missing_type == 2) & np.isnan(v))
            with np.errstate(invalid="ignore"):
                left = np.where(missing, default_left, v <= forest.threshold[node])
            node = np.where(split, np.where(left, forest.left[node], forest.right[node]), node)
        total += forest.value[node]
    return total


def adversarial_rows(forest: Forest, n: int, seed: int = 1) -> F32:
    """Rows whose values sit on, just beside and far from the forest's thresholds, or are special."""
    rng = np.random.default_rng(seed)
    specials = np.array(
        [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-36, -1e-36, 1e-35, -1e-35, 1e-45, -1e-45, 3.4e38, -3.4e38],
        dtype=np.float32,
    )
    split = forest.left >= 0
    pools: list[F32] = []
    for j in range(WIDTH):
        t = forest.threshold[split & (forest.feature == j)]
        t = t[np.isfinite(t)]
        t32 = t.astype(np.float32)
        near = np.concatenate(
            [t32, np.nextafter(t32, np.float32(np.inf)), np.nextafter(t32, np.float32(-np.inf)), specials]
        )
        pools.append(near.astype(np.float32))
    x = rng.normal(size=(n, WIDTH)).astype(np.float32)
    for j in range(WIDTH):
        swap = rng.random(n) < 0.6
        x[swap, j] = rng.choice(pools[j], size=int(swap.sum()))
    return x


def kernel_raw(packed: kernels.Packed, x: F32) -> F64:
    """Raw scores row by row through ``raw_row``."""
    return np.array(
        [kernels.raw_row(row, packed.slots, packed.nodes, packed.leaves, packed.depth) for row in x]
    )


def test_jit_mode_is_the_one_requested() -> None:
    expected = os.environ.get("FRAUDMESH_EXPECT_NO_JIT") == "1"
    assert NO_JIT is expected
    assert isinstance(kernels.raw_row, numba.core.dispatcher.Dispatcher) is not NO_JIT


def test_models_cover_every_routing_case() -> None:
    _, nan_forest, nan_packed = model("nan")
    missing = (nan_forest.decision_type >> 2) & 3
    split = nan_forest.left >= 0
    assert {0, 2} <= set(missing[split].tolist())
    assert np.isinf(nan_forest.threshold[split]).any(), "no split sends every number left and NaN right"
    assert (np.abs(nan_forest.threshold[split]) <= 1e-34).any(), "no threshold inside the zero band"
    assert len(np.unique(nan_forest.depths())) > 1 or nan_packed.leaves.size > nan_forest.is_leaf().sum()
    _, zero_forest, _ = model("zero_as_missing")
    assert ((zero_forest.decision_type >> 2) & 3 == 1).any()
    assert model("single_leaf_trees")[2].depth == 0


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("inputs", ["random", "adversarial"])
def test_raw_scores_equal_lightgbm_exactly(name: str, inputs: str) -> None:
    trained, forest, packed = model(name)
    x = adversarial_rows(forest, ROWS) if inputs == "adversarial" else training_data(ROWS, seed=5)[0]
    expected = trained.predict(x, raw_score=True)
    assert np.array_equal(kernel_raw(packed, x), expected)
    assert np.array_equal(
        kernels.raw_batch(x, packed.slots, packed.nodes, packed.leaves, packed.depth), expected
    )
    assert np.array_equal(reference_raw(forest, x), expected)


@pytest.mark.parametrize("name", list(MODELS))
def test_batch_equals_single_rows_for_every_block_tail(name: str) -> None:
    _, forest, packed = model(name)
    x = adversarial_rows(forest, kernels.BLOCK * 2 + 13, seed=3)
    single = kernel_raw(packed, x)
    for n in (0, 1, 7, 8, 9, kernels.BLOCK, kernels.BLOCK + 1, len(x)):
        args = (x[:n], packed.slots, packed.nodes, packed.leaves, packed.depth)
        assert np.array_equal(kernels.raw_batch(*args), single[:n])
        assert np.array_equal(kernels.raw_batch_parallel(*args), single[:n])
        assert np.array_equal(kernels.raw_each(*args), single[:n])


def reference_contributions(forest: Forest, row: F32) -> F64:
    """Saabas path attribution by walking the artifact's pointer layout with LightGBM's routing."""
    out = np.zeros(WIDTH + 1)
    for t in range(forest.num_trees):
        node = int(forest.tree_offset[t])
        out[WIDTH] += forest.value[node]
        while forest.left[node] >= 0:
            v = float(row[forest.feature[node]])
            v = 0.0 if abs(v) <= ZT else v
            missing_type = (int(forest.decision_type[node]) >> 2) & 3
            if math.isnan(v) and missing_type != 2:
                v = 0.0
            if (missing_type == 1 and abs(v) <= ZT) or (missing_type == 2 and math.isnan(v)):
                left = bool(forest.decision_type[node] & 2)
            else:
                left = v <= forest.threshold[node]
            child = int(forest.left[node] if left else forest.right[node])
            out[forest.feature[node]] += forest.value[child] - forest.value[node]
            node = child
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_contributions_sum_to_raw_and_match_the_reference(name: str) -> None:
    _, forest, packed = model(name)
    x = adversarial_rows(forest, ROWS // 10, seed=4)
    contributions = kernels.contributions_batch(
        x, packed.slots, packed.nodes, packed.leaves, *packed.paths, packed.depth
    )
    raw = kernel_raw(packed, x)
    assert np.allclose(contributions.sum(axis=1), raw, rtol=1e-12, atol=1e-12)
    for row, got in zip(x, contributions, strict=True):
        assert np.allclose(got, reference_contributions(forest, row), rtol=1e-12, atol=1e-12)


def test_bias_is_lightgbm_treeshap_expected_value() -> None:
    trained, _, packed = model("nan")
    x = training_data(20, seed=9)[0]
    ours = kernels.contributions_batch(
        x, packed.slots, packed.nodes, packed.leaves, *packed.paths, packed.depth
    )
    theirs = np.asarray(trained.predict(x, pred_contrib=True))
    assert np.allclose(ours[:, WIDTH], theirs[:, WIDTH], rtol=1e-9, atol=1e-9)


def test_explain_row_returns_reasons_of_the_largest_positive_contributions() -> None:
    _, forest, packed = model("nan")
    reason_id = np.arange(WIDTH, dtype=np.int64) % 7
    for row in adversarial_rows(forest, 20, seed=8):
        raw, probability, *top = kernels.explain_row(
            row,
            packed.slots,
            packed.nodes,
            packed.leaves,
            *packed.paths,
            packed.depth,
            1.0,
            0.0,
            reason_id,
            -math.inf,
        )
        above = kernels.explain_row(
            row,
            packed.slots,
            packed.nodes,
            packed.leaves,
            *packed.paths,
            packed.depth,
            1.0,
            0.0,
            reason_id,
            raw,
        )
        assert above == (raw, probability, -1, -1, -1)
        contributions = reference_contributions(forest, row)[:WIDTH]
        assert raw == kernels.raw_row(row, packed.slots, packed.nodes, packed.leaves, packed.depth)
        assert probability == pytest.approx(1.0 / (1.0 + math.exp(-raw)), rel=1e-12)
        expected: list[int] = []
        for f in np.argsort(-contributions, kind="stable"):
            if contributions[f] > 1e-9 and reason_id[f] not in expected:
                expected.append(int(reason_id[f]))
        assert [r for r in top if r >= 0] == expected[:3]


def test_round_down_f32_keeps_every_comparison() -> None:
    rng = np.random.default_rng(2)
    t = np.concatenate([rng.normal(size=200) * 10.0 ** rng.integers(-40, 40, size=200), [0.0, 1e300, -1e300]])
    t32 = kernels.round_down_f32(t)
    assert np.all(t32.astype(np.float64) <= t)
    below = t32.astype(np.float64) < t
    with np.errstate(over="ignore"):
        above = np.nextafter(t32[below], np.float32(np.inf)).astype(np.float64)
    assert np.all(above > t[below])


def test_calibration_is_monotone_and_bounded() -> None:
    raw = np.linspace(-50, 50, 2001)
    probability = kernels.calibrate_batch(raw, 1.3, -0.4)
    assert np.all((probability >= 0) & (probability <= 1))
    assert np.all(np.diff(probability) >= 0)


finite_or_special = st.one_of(
    st.floats(width=32, allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-36, -1e-36, 1e-35, -1e-35]),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=hnp.arrays(np.float32, WIDTH, elements=finite_or_special))
def test_any_row_scores_like_lightgbm(row: F32) -> None:
    for name in ("nan", "zero_as_missing"):
        trained, _forest, packed = model(name)
        expected = trained.predict(row[None, :], raw_score=True)[0]
        got = kernels.raw_row(row, packed.slots, packed.nodes, packed.leaves, packed.depth)
        assert got == expected
        contributions = np.empty(WIDTH + 1)
        total = kernels.contributions_row(
            row, packed.slots, packed.nodes, packed.leaves, *packed.paths, packed.depth, contributions
        )
        assert total == expected
        assert math.isclose(float(contributions.sum()), expected, rel_tol=1e-12, abs_tol=1e-12)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    a=st.floats(0.01, 10.0),
    b=st.floats(-10.0, 10.0),
    raw=hnp.arrays(np.float64, st.integers(2, 50), elements=st.floats(-1e3, 1e3)),
)
def test_calibration_preserves_order(a: float, b: float, raw: F64) -> None:
    probability = kernels.calibrate_batch(raw, a, b)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(probability[order]) >= 0)
    assert np.all((probability >= 0) & (probability <= 1))
