"""The scorer the decision service calls: an artifact loaded, compiled and warmed, scoring vectors.

``Scorer.load`` reads an artifact folder, refuses one built for another feature schema, lays the
forest out for the kernels and compiles them (or loads them from Numba's cache, NUMBA_CACHE_DIR)
before ``ready`` turns true, so the first call is as fast as the rest. The kernels release the GIL
and allocate their own scratch, so one Scorer serves many threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from services.common.features import FEATURES, WIDTH, empty_vector
from services.scoring import artifact as artifact_io
from services.scoring import kernels
from services.scoring.artifact import Artifact

MODEL_SCORE: Final[str] = "MODEL_SCORE"
TOP_REASONS: Final[int] = 3
REASON_OF: Final[tuple[str, ...]] = tuple(f.reason or MODEL_SCORE for f in FEATURES)
REASON_CODES: Final[tuple[str, ...]] = tuple(sorted(set(REASON_OF)))
REASON_ID: Final[npt.NDArray[np.int64]] = np.array([REASON_CODES.index(c) for c in REASON_OF], dtype=np.int64)
_F32: Final = np.dtype(np.float32)
_ROW: Final[tuple[int]] = (WIDTH,)

F64 = npt.NDArray[np.float64]


class Scored(NamedTuple):
    """One call's score: calibrated probability, raw margin and up to three reason codes.

    A NamedTuple rather than a frozen dataclass: it is built on every call, and is ~7x cheaper.
    """

    probability: float
    raw: float
    top_reasons: list[str]


class ScoredBatch(NamedTuple):
    """Scores of many calls (no reasons: batches are for offline scoring and shadow runs)."""

    probability: F64
    raw: F64


class Scorer:
    """A loaded model: ``score`` one feature vector on the call path, ``score_batch`` many offline."""

    def __init__(self, artifact: Artifact) -> None:
        packed = kernels.pack(artifact.forest)
        self.artifact = artifact
        self._slots = packed.slots
        self._nodes = packed.nodes
        self._leaves = packed.leaves
        self._node_value = packed.node_value
        self._depth = packed.depth
        self._a = float(artifact.calibration.a)
        self._b = float(artifact.calibration.b)
        self._ready = False

    @classmethod
    def load(cls, path: Path, *, warm: bool = True) -> Scorer:
        """Load an artifact folder and, unless told not to, warm the kernels before returning."""
        scorer = cls(artifact_io.load(path))
        if warm:
            scorer.warm()
        return scorer

    @property
    def ready(self) -> bool:
        """True once every kernel is compiled and has run, i.e. the scorer can take traffic."""
        return self._ready

    @property
    def kernel_args(self) -> tuple[Any, Any, Any, int]:
        """The arguments ``kernels.raw_row``/``raw_batch`` take after the input (for benchmarks)."""
        return self._slots, self._nodes, self._leaves, self._depth

    @property
    def version(self) -> str:
        """The model version a Decision reports."""
        return self.artifact.version

    def warm(self) -> None:
        """Compile (or load from cache) and run every kernel once, so no call pays for it."""
        row = empty_vector()
        matrix = np.stack([row, np.zeros(WIDTH, dtype=np.float32)])
        self.score(row)
        self.score(row, reasons=False)
        self.raw(row)
        self.score_batch(matrix)
        self.score_batch(matrix, parallel=True)
        self.contributions(row)
        self._ready = True

    def raw(self, vector: npt.ArrayLike) -> float:
        """The raw margin of one vector, without calibration or reasons (the cheapest call)."""
        return float(kernels.raw_row(_as_row(vector), self._slots, self._nodes, self._leaves, self._depth))

    def score(self, vector: npt.ArrayLike, *, reasons: bool = True) -> Scored:
        """Score one feature vector (float32, schema order, NaN = unknown), with its top reason codes.

        ``reasons=False`` skips attribution (``top_reasons`` is then empty), which roughly halves
        the cost: enough for the calls a policy allows, re-score with reasons for the rest.
        """
        if not reasons:
            raw, probability = kernels.score_row(
                _as_row(vector), self._slots, self._nodes, self._leaves, self._depth, self._a, self._b
            )
            return Scored(float(probability), float(raw), [])
        raw, probability, first, second, third = kernels.explain_row(
            _as_row(vector),
            self._slots,
            self._nodes,
            self._leaves,
            self._node_value,
            self._depth,
            self._a,
            self._b,
            REASON_ID,
        )
        codes = REASON_CODES
        top = [] if first < 0 else [codes[first]] if second < 0 else [codes[first], codes[second]]
        if third >= 0:
            top.append(codes[third])
        return Scored(float(probability), float(raw), top)

    def score_batch(self, matrix: npt.ArrayLike, *, parallel: bool = False) -> ScoredBatch:
        """Score a (n, WIDTH) matrix; ``parallel`` spreads rows over Numba's threads."""
        rows = _as_matrix(matrix)
        kernel = kernels.raw_batch_parallel if parallel else kernels.raw_batch
        raw = kernel(rows, self._slots, self._nodes, self._leaves, self._depth)
        return ScoredBatch(probability=kernels.calibrate_batch(raw, self._a, self._b), raw=raw)

    def contributions(self, vector: npt.ArrayLike) -> F64:
        """Per-feature path contributions of one vector (WIDTH values, then the bias)."""
        out = np.empty(WIDTH + 1, dtype=np.float64)
        kernels.contributions_row(
            _as_row(vector), self._slots, self._nodes, self._leaves, self._node_value, self._depth, out
        )
        return out

    def contributions_batch(self, matrix: npt.ArrayLike) -> F64:
        """Path contributions of every row of a (n, WIDTH) matrix: shape (n, WIDTH + 1)."""
        result: F64 = kernels.contributions_batch(
            _as_matrix(matrix), self._slots, self._nodes, self._leaves, self._node_value, self._depth
        )
        return result


def top_reasons(order: Any) -> list[str]:
    """Reason codes of features in ``order`` (largest contribution first), deduplicated, at most three.

    A feature without its own reason code reports MODEL_SCORE.
    """
    reasons: list[str] = []
    for feature in order:
        code = REASON_OF[feature]
        if code not in reasons:
            reasons.append(code)
            if len(reasons) == TOP_REASONS:
                break
    return reasons


def positive_order(contributions: F64) -> npt.NDArray[np.int64]:
    """Feature indices with a positive contribution, largest first (the order ``score`` reports)."""
    order = np.argsort(-contributions[:WIDTH], kind="mergesort")
    return order[contributions[order] > 0.0]


def _as_row(vector: Any) -> npt.NDArray[np.float32]:
    """The vector itself when it is already a contiguous float32 row of WIDTH, else a checked copy."""
    if (
        type(vector) is np.ndarray
        and vector.dtype is _F32
        and vector.shape == _ROW
        and vector.flags.c_contiguous
    ):
        return vector
    row = np.ascontiguousarray(vector, dtype=np.float32)
    if row.shape != _ROW:
        raise ValueError(f"a feature vector has shape ({WIDTH},), got {row.shape}")
    return row


def _as_matrix(matrix: Any) -> npt.NDArray[np.float32]:
    """A C-contiguous float32 (n, WIDTH) matrix, copying only when needed."""
    rows = np.ascontiguousarray(matrix, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != WIDTH:
        raise ValueError(f"a feature matrix has shape (n, {WIDTH}), got {rows.shape}")
    return rows
