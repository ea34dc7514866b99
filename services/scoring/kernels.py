"""Numba kernels that evaluate a flattened LightGBM forest exactly as LightGBM does, and explain it.

Exactness. LightGBM's dense-row reader turns |v| <= 1e-35 into 0.0; then at a numeric split
(``Tree::NumericalDecision``) NaN becomes 0.0 unless the split's missing type is NaN, a missing
value (NaN for type NaN; NaN or zero for type Zero) takes the split's default direction, and
anything else goes left when ``v <= threshold`` (+inf goes right and -inf left of any finite
threshold). Leaf outputs are summed in float64 in tree order. These kernels take the same decision
at every split and sum in the same order, so raw scores equal ``predict(raw_score=True)`` bit for
bit on float32 input.

Speed. ``pack`` rewrites each split, without changing its decision, into one compare
``x[slot] <= threshold`` that needs no NaN test, so a walk has no data-dependent branch:

- A row is expanded into *slots*, one per (feature, missing rule) some split uses. A split that
  sends NaN left reads a slot where NaN became -inf (``-inf <= t`` for every t); one that sends
  NaN right reads the raw value (``NaN <= t`` is false for every t). A split of missing type None
  (NaN read as 0.0) is one of these two, chosen by ``0.0 <= t``. Missing type Zero gets its own
  slots where NaN and |v| <= 1e-35 became -inf or NaN.
- Thresholds are stored as float32 rounded toward -inf: for float32 ``v`` and float64 ``t``,
  ``v <= t`` exactly when ``v <= round_down_f32(t)``. A threshold inside [-1e-35, 1e-35] is moved
  to the edge of that band, which reproduces the reader's tiny-to-zero rule with no per-row work.
- Every tree is padded to a complete binary tree of the forest's depth (a shallow leaf is copied
  into all the leaves below it), so a walk is ``i = 2*i + 2 - (x[slot] <= t)`` a fixed number of
  times and the leaf is ``i - (2**depth - 1)``; eight trees (or, in batches, eight rows) are walked
  in lockstep so the CPU overlaps their loads instead of stalling on mispredicted branches.

Reasons. ``explain_row`` attributes the raw score by path attribution (Saabas): walking the row's
path, each split's feature is credited with the change in expected value (the data-weighted mean of
the leaves below) from the node to the child taken; the bias is the root's expected value, and bias
+ contributions equals the raw score by construction. A leaf fixes its path, so ``pack`` stores,
for every leaf, its path's (feature, change) pairs side by side: attributing a row is one
contiguous read of ``depth`` pairs per tree at the leaves the scoring walk already found, with no
second walk and no parent chasing. ``explain_row`` attributes only rows scoring above a threshold
(the calls a policy will not simply allow), so the common call costs one walk. That costs O(depth)
per tree, which fits the call-setup budget; exact Shapley values (TreeSHAP, O(leaves * depth^2)
per tree) cost far more per call. Saabas over-credits splits near the root, which is acceptable for
choosing which reason codes to show; the model card reports how often its top reason agrees with
LightGBM's TreeSHAP (``pred_contrib``) on the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numba as nb
import numpy as np
import numpy.typing as npt

from services.scoring.artifact import (
    DEFAULT_LEFT,
    MISSING_NAN,
    MISSING_NONE,
    MISSING_ZERO,
    ArtifactError,
    Forest,
)

MAX_DEPTH: Final[int] = 12
LANES: Final[int] = 8
BLOCK: Final[int] = 64
ZERO_THRESHOLD: Final = np.float32(1e-35)
NEG_INF: Final = np.float32(-np.inf)
NAN: Final = np.float32(np.nan)

MODE_LEFT: Final[int] = 0
MODE_RIGHT: Final[int] = 1
MODE_ZERO_LEFT: Final[int] = 2
MODE_ZERO_RIGHT: Final[int] = 3

NODE: Final = np.dtype([("threshold", np.float32), ("slot", np.uint16), ("feature", np.uint8)], align=True)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Packed:
    """A forest in the kernels' layout (see the module docstring); build it with ``pack``.

    ``slots[k] = mode << 8 | feature`` says how slot ``k`` of an expanded row is filled (sorted, so
    each mode is one run); every split node holds its float32 threshold, slot and feature index.
    """

    slots: I64
    nodes: npt.NDArray[Any]
    leaves: F64
    node_value: F64
    path_feature: npt.NDArray[np.uint8]
    path_delta: F64
    bias: float
    depth: int
    num_trees: int

    @property
    def paths(self) -> tuple[npt.NDArray[np.uint8], F64, float]:
        """The attribution arguments ``contributions_row`` and ``explain_row`` take after ``leaves``."""
        return self.path_feature, self.path_delta, self.bias


def round_down_f32(values: F64) -> F32:
    """The largest float32 not above each float64 (so ``v <= t`` iff ``v <= result`` for float32 v)."""
    with np.errstate(over="ignore"):
        rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], NEG_INF)
    return rounded


def _modes(forest: Forest) -> npt.NDArray[np.int64]:
    """The slot mode of every node (leaves get MODE_LEFT; they are never read)."""
    missing = (forest.decision_type.astype(np.int64) >> 2) & 3
    left = (forest.decision_type & DEFAULT_LEFT) != 0
    if np.any(missing > MISSING_NAN):
        raise ArtifactError("unknown missing type in the forest")
    nan_left = np.where(missing == MISSING_NONE, forest.threshold >= 0.0, left)
    return np.where(
        missing == MISSING_ZERO,
        np.where(left, MODE_ZERO_LEFT, MODE_ZERO_RIGHT),
        np.where(nan_left, MODE_LEFT, MODE_RIGHT),
    ).astype(np.int64)


def _thresholds(forest: Forest, modes: npt.NDArray[np.int64]) -> F32:
    """Float32 thresholds, with those inside the tiny band moved to its edge (see module docstring)."""
    thresholds = round_down_f32(forest.threshold)
    band = (np.abs(forest.threshold) <= float(ZERO_THRESHOLD)) & (modes <= MODE_RIGHT)
    thresholds[band & (forest.threshold >= 0.0)] = ZERO_THRESHOLD
    thresholds[band & (forest.threshold < 0.0)] = np.nextafter(-ZERO_THRESHOLD, NEG_INF)
    return thresholds


def pack(forest: Forest) -> Packed:
    """Lay a forest out for the kernels: slots, float32 thresholds, complete padded trees."""
    depth = int(forest.depths().max(initial=0))
    if depth > MAX_DEPTH:
        raise ArtifactError(f"trees of depth {depth} exceed the kernels' limit of {MAX_DEPTH}")
    inner, width = (1 << depth) - 1, 1 << depth
    trees = forest.num_trees
    nodes = np.zeros(trees * inner, dtype=NODE)
    node_value = np.zeros(trees * inner, dtype=np.float64)
    leaves = np.zeros(trees * width, dtype=np.float64)
    modes = _modes(forest)
    thresholds = _thresholds(forest, modes)
    codes = (modes << 8) | forest.feature
    slots = np.unique(codes[forest.left >= 0])
    slot_of = np.searchsorted(slots, codes)
    for t in range(trees):
        stack = [(int(forest.tree_offset[t]), 0, 0)]
        while stack:
            node, position, level = stack.pop()
            if forest.left[node] < 0:
                _fill_leaf(t, position, level, depth, float(forest.value[node]), leaves, node_value)
                continue
            nodes[t * inner + position] = (thresholds[node], slot_of[node], forest.feature[node])
            node_value[t * inner + position] = forest.value[node]
            stack.append((int(forest.right[node]), 2 * position + 2, level + 1))
            stack.append((int(forest.left[node]), 2 * position + 1, level + 1))
    path_feature, path_delta = _leaf_paths(nodes, node_value, leaves, trees, depth)
    bias = 0.0
    for t in range(trees):
        bias += float(node_value[t * inner]) if depth > 0 else float(leaves[t])
    return Packed(
        slots=slots.astype(np.int64),
        nodes=nodes,
        leaves=leaves,
        node_value=node_value,
        path_feature=path_feature,
        path_delta=path_delta,
        bias=bias,
        depth=depth,
        num_trees=trees,
    )


def _leaf_paths(
    nodes: npt.NDArray[Any], node_value: F64, leaves: F64, trees: int, depth: int
) -> tuple[npt.NDArray[np.uint8], F64]:
    """Each padded leaf's path from the bottom up: the feature of each split and the change it made.

    Entry ``(t * 2**depth + leaf) * depth + level`` is the split ``level + 1`` steps above the leaf.
    """
    inner, width = (1 << depth) - 1, 1 << depth
    levels = max(depth, 1)
    feature = np.zeros((trees, width, levels), dtype=np.uint8)
    delta = np.zeros((trees, width, levels), dtype=np.float64)
    position = np.arange(width) + inner
    value = leaves.reshape(trees, width)
    node_feature = nodes["feature"].reshape(trees, inner) if depth > 0 else np.zeros((trees, 0), np.uint8)
    node_values = node_value.reshape(trees, inner) if depth > 0 else np.zeros((trees, 0))
    for level in range(depth):
        position = (position - 1) >> 1
        parent = node_values[:, position]
        feature[:, :, level] = node_feature[:, position]
        delta[:, :, level] = value - parent
        value = parent
    return feature.reshape(-1), delta.reshape(-1)


def _fill_leaf(
    tree: int, position: int, level: int, depth: int, value: float, leaves: F64, node_value: F64
) -> None:
    """Copy a leaf at ``position`` into every padded node and leaf below it."""
    inner, width = (1 << depth) - 1, 1 << depth
    first, span = position, 1
    for _ in range(level, depth):
        node_value[tree * inner + first : tree * inner + first + span] = value
        first, span = 2 * first + 1, 2 * span
    leaves[tree * width + first - inner : tree * width + first - inner + span] = value


@nb.njit(cache=True, nogil=True, inline="always")
def _expand(row: Any, slots: Any, x: Any, offset: Any) -> None:
    """Write the slot values of one float32 row into ``x[offset:]``, one run of slots per mode.

    Selects (``fmax``, conditional moves), not branches: whether a value is NaN is data-dependent
    and a branch on it would mispredict every few rows.
    """
    n = slots.shape[0]
    k = 0
    while k < n and (slots[k] >> 8) == MODE_LEFT:
        x[offset + k] = np.fmax(row[slots[k] & 0xFF], NEG_INF)
        k += 1
    while k < n and (slots[k] >> 8) == MODE_RIGHT:
        x[offset + k] = row[slots[k] & 0xFF]
        k += 1
    while k < n and (slots[k] >> 8) == MODE_ZERO_LEFT:
        v = row[slots[k] & 0xFF]
        x[offset + k] = v if abs(v) > ZERO_THRESHOLD else NEG_INF
        k += 1
    while k < n:
        v = row[slots[k] & 0xFF]
        x[offset + k] = v if abs(v) > ZERO_THRESHOLD else NAN
        k += 1


@nb.njit(cache=True, nogil=True, inline="always")
def _step(x: Any, offset: Any, nodes: Any, base: Any, i: Any) -> Any:
    """One level of one tree: the child position of complete-tree node ``i``."""
    node = nodes[base + i]
    return np.uintp(2) * i + np.uintp(2) - np.uintp(x[offset + np.uintp(node["slot"])] <= node["threshold"])


@nb.njit(cache=True, nogil=True, inline="always")
def _trees8(x: Any, nodes: Any, base: Any, inner: Any, depth: int) -> Any:
    """Leaf positions of one row in eight consecutive trees, walked in lockstep."""
    zero = np.uintp(0)
    i0 = zero
    i1 = zero
    i2 = zero
    i3 = zero
    i4 = zero
    i5 = zero
    i6 = zero
    i7 = zero
    for _ in range(depth):
        i0 = _step(x, zero, nodes, base, i0)
        i1 = _step(x, zero, nodes, base + inner, i1)
        i2 = _step(x, zero, nodes, base + np.uintp(2) * inner, i2)
        i3 = _step(x, zero, nodes, base + np.uintp(3) * inner, i3)
        i4 = _step(x, zero, nodes, base + np.uintp(4) * inner, i4)
        i5 = _step(x, zero, nodes, base + np.uintp(5) * inner, i5)
        i6 = _step(x, zero, nodes, base + np.uintp(6) * inner, i6)
        i7 = _step(x, zero, nodes, base + np.uintp(7) * inner, i7)
    return i0, i1, i2, i3, i4, i5, i6, i7


@nb.njit(cache=True, nogil=True, inline="always")
def _rows8(x: Any, offset: Any, stride: Any, nodes: Any, base: Any, depth: int) -> Any:
    """Leaf positions of eight consecutive expanded rows in one tree, walked in lockstep."""
    zero = np.uintp(0)
    i0 = zero
    i1 = zero
    i2 = zero
    i3 = zero
    i4 = zero
    i5 = zero
    i6 = zero
    i7 = zero
    for _ in range(depth):
        i0 = _step(x, offset, nodes, base, i0)
        i1 = _step(x, offset + stride, nodes, base, i1)
        i2 = _step(x, offset + np.uintp(2) * stride, nodes, base, i2)
        i3 = _step(x, offset + np.uintp(3) * stride, nodes, base, i3)
        i4 = _step(x, offset + np.uintp(4) * stride, nodes, base, i4)
        i5 = _step(x, offset + np.uintp(5) * stride, nodes, base, i5)
        i6 = _step(x, offset + np.uintp(6) * stride, nodes, base, i6)
        i7 = _step(x, offset + np.uintp(7) * stride, nodes, base, i7)
    return i0, i1, i2, i3, i4, i5, i6, i7


@nb.njit(cache=True, nogil=True, inline="always")
def _walk(x: Any, nodes: Any, leaves: Any, depth: int, positions: Any) -> float:
    """Sum of one expanded row's leaf outputs in tree order; records leaf positions when asked.

    ``positions`` is an array of one entry per tree, or empty to record nothing.
    """
    record = positions.shape[0] > 0
    zero = np.uintp(0)
    inner = np.uintp((1 << depth) - 1)
    width = np.uintp(1 << depth)
    trees = np.uintp(leaves.shape[0]) // width
    total = 0.0
    t = zero
    while t + np.uintp(LANES) <= trees:
        lane = _trees8(x, nodes, t * inner, inner, depth)
        for k in range(LANES):
            total += leaves[(t + np.uintp(k)) * width + lane[k] - inner]
            if record:
                positions[t + np.uintp(k)] = lane[k]
        t += np.uintp(LANES)
    while t < trees:
        i = zero
        for _ in range(depth):
            i = _step(x, zero, nodes, t * inner, i)
        total += leaves[t * width + i - inner]
        if record:
            positions[t] = i
        t += np.uintp(1)
    return total


@nb.njit(cache=True, nogil=True)
def raw_row(row: Any, slots: Any, nodes: Any, leaves: Any, depth: int) -> float:
    """Raw score (sum of leaf outputs, float64, tree order) of one float32 row."""
    x = np.empty(slots.shape[0], np.float32)
    _expand(row, slots, x, 0)
    return _walk(x, nodes, leaves, depth, np.empty(0, np.uintp))


@nb.njit(cache=True, nogil=True)
def raw_each(matrix: Any, slots: Any, nodes: Any, leaves: Any, depth: int) -> Any:
    """``raw_row`` on every row in turn: the single-row kernel's cost with no Python call around it."""
    out = np.empty(matrix.shape[0], np.float64)
    for r in range(matrix.shape[0]):
        out[r] = raw_row(matrix[r], slots, nodes, leaves, depth)
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def _block(
    matrix: Any, start: int, stop: int, slots: Any, nodes: Any, leaves: Any, depth: int, out: Any
) -> None:
    """Raw scores of rows ``start:stop`` (at most BLOCK), tree by tree, eight rows in lockstep.

    Tree-major order keeps one tree's nodes in L1 cache while every row of the block walks it.
    """
    count = stop - start
    width_x = slots.shape[0]
    stride = np.uintp(width_x)
    x = np.empty(width_x * BLOCK, np.float32)
    for r in range(count):
        _expand(matrix[start + r], slots, x, r * width_x)
    lanes = (count + LANES - 1) // LANES * LANES
    for k in range(count * width_x, lanes * width_x):
        x[k] = 0.0
    acc = np.zeros(BLOCK)
    inner = np.uintp((1 << depth) - 1)
    width = np.uintp(1 << depth)
    trees = np.uintp(leaves.shape[0]) // width
    for t in range(trees):
        base = np.uintp(t) * width
        for r in range(0, lanes, LANES):
            lane = _rows8(x, np.uintp(r) * stride, stride, nodes, np.uintp(t) * inner, depth)
            for k in range(LANES):
                acc[r + k] += leaves[base + lane[k] - inner]
    for r in range(count):
        out[start + r] = acc[r]


@nb.njit(cache=True, nogil=True)
def raw_batch(matrix: Any, slots: Any, nodes: Any, leaves: Any, depth: int) -> Any:
    """Raw scores of a 2-D float32 matrix on one thread, equal to ``raw_row`` on each row."""
    n = matrix.shape[0]
    out = np.empty(n, np.float64)
    for start in range(0, n, BLOCK):
        _block(matrix, start, min(n, start + BLOCK), slots, nodes, leaves, depth, out)
    return out


@nb.njit(cache=True, nogil=True, parallel=True)
def raw_batch_parallel(matrix: Any, slots: Any, nodes: Any, leaves: Any, depth: int) -> Any:
    """``raw_batch`` with blocks of rows spread over Numba's threads (NUMBA_NUM_THREADS)."""
    n = matrix.shape[0]
    out = np.empty(n, np.float64)
    for k in nb.prange((n + BLOCK - 1) // BLOCK):
        start = k * BLOCK
        _block(matrix, start, min(n, start + BLOCK), slots, nodes, leaves, depth, out)
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def calibrate(raw: Any, a: float, b: float) -> Any:
    """Platt-calibrated probability of a raw score: 1 / (1 + exp(-(a * raw + b)))."""
    return 1.0 / (1.0 + np.exp(-(a * raw + b)))


@nb.njit(cache=True, nogil=True)
def score_row(
    row: Any, slots: Any, nodes: Any, leaves: Any, depth: int, a: float, b: float
) -> tuple[float, float]:
    """Raw score and calibrated probability of one row, in one call."""
    raw = raw_row(row, slots, nodes, leaves, depth)
    return raw, calibrate(raw, a, b)


@nb.njit(cache=True, nogil=True)
def calibrate_batch(raw: Any, a: float, b: float) -> Any:
    """``calibrate`` over an array of raw scores."""
    out = np.empty(raw.shape[0], np.float64)
    for i in range(raw.shape[0]):
        out[i] = calibrate(raw[i], a, b)
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def _attribute(positions: Any, path_feature: Any, path_delta: Any, bias: float, depth: int, out: Any) -> None:
    """Saabas contributions from each tree's leaf position into ``out`` (features, bias last).

    Each tree's path is one contiguous run of (feature, change) pairs. Each level adds into its own
    row of accumulators, so consecutive additions to the same feature do not wait on each other.
    """
    features = out.shape[0] - 1  # from the array, never a module global: numba's cache would freeze it
    levels_n = max(depth, 1)
    inner = np.uintp((1 << depth) - 1)
    width = np.uintp(1 << depth)
    levels = np.zeros(levels_n * features, np.float64)
    stride = np.uintp(features)
    run = np.uintp(levels_n)
    for t in range(positions.shape[0]):
        at = (np.uintp(t) * width + positions[t] - inner) * run
        row = np.uintp(0)
        for level in range(depth):
            k = at + np.uintp(level)
            levels[row + np.uintp(path_feature[k])] += path_delta[k]
            row += stride
    for f in range(features):
        total_f = 0.0
        for level in range(levels_n):
            total_f += levels[level * features + f]
        out[f] = total_f
    out[features] = bias


@nb.njit(cache=True, nogil=True)
def contributions_row(
    row: Any,
    slots: Any,
    nodes: Any,
    leaves: Any,
    path_feature: Any,
    path_delta: Any,
    bias: float,
    depth: int,
    out: Any,
) -> float:
    """Saabas contributions of one row into ``out`` (features, bias last); returns the raw score.

    The walk records each tree's leaf; the leaf's stored path then gives its contributions. ``out``
    is overwritten; its sum equals the raw score up to float64 rounding.
    """
    x = np.empty(slots.shape[0], np.float32)
    _expand(row, slots, x, 0)
    positions = np.empty(leaves.shape[0] // (1 << depth), np.uintp)
    total = _walk(x, nodes, leaves, depth, positions)
    _attribute(positions, path_feature, path_delta, bias, depth, out)
    return total


@nb.njit(cache=True, nogil=True)
def contributions_batch(
    matrix: Any,
    slots: Any,
    nodes: Any,
    leaves: Any,
    path_feature: Any,
    path_delta: Any,
    bias: float,
    depth: int,
) -> Any:
    """Saabas contributions of every row: shape (n, features + 1), bias in the last column."""
    out = np.empty((matrix.shape[0], matrix.shape[1] + 1), np.float64)
    for r in range(matrix.shape[0]):
        contributions_row(matrix[r], slots, nodes, leaves, path_feature, path_delta, bias, depth, out[r])
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def _top_reason(contrib: Any, reason_id: Any, taken0: int, taken1: int) -> int:
    """Reason id of the largest positive contribution whose id is not taken yet (-1 if none)."""
    best = -1
    for f in range(reason_id.shape[0]):
        code = reason_id[f]
        if (
            contrib[f] > 0.0
            and code != taken0
            and code != taken1
            and (best < 0 or contrib[f] > contrib[best])
        ):
            best = f
    return -1 if best < 0 else reason_id[best]


@nb.njit(cache=True, nogil=True)
def explain_row(
    row: Any,
    slots: Any,
    nodes: Any,
    leaves: Any,
    path_feature: Any,
    path_delta: Any,
    bias: float,
    depth: int,
    a: float,
    b: float,
    reason_id: Any,
    raw_above: float,
) -> tuple[float, float, int, int, int]:
    """Raw score, calibrated probability and the ids of the (up to) three top distinct reasons.

    ``reason_id[f]`` is feature f's reason; reasons are taken in order of each one's largest
    positive feature contribution (-1 fills when fewer than three features raised the score).
    Only a raw score above ``raw_above`` is explained (-inf: always); below it all three are -1.
    """
    x = np.empty(slots.shape[0], np.float32)
    _expand(row, slots, x, 0)
    positions = np.empty(leaves.shape[0] // (1 << depth), np.uintp)
    raw = _walk(x, nodes, leaves, depth, positions)
    if not raw > raw_above:
        return raw, calibrate(raw, a, b), -1, -1, -1
    contrib = np.empty(reason_id.shape[0] + 1, np.float64)
    _attribute(positions, path_feature, path_delta, bias, depth, contrib)
    first = _top_reason(contrib, reason_id, -1, -1)
    second = -1 if first < 0 else _top_reason(contrib, reason_id, first, -1)
    third = -1 if second < 0 else _top_reason(contrib, reason_id, first, second)
    return raw, calibrate(raw, a, b), first, second, third
