"""The scorer the decision service calls: an artifact loaded, compiled and warmed, scoring vectors.

``Scorer.load`` reads an artifact folder, refuses one that does not match its own manifest (forest
SHA-256, counts, version) or was built for another feature schema (``artifact.load``), lays the
forest out for the kernels and compiles them (or loads them from Numba's cache, NUMBA_CACHE_DIR)
before ``ready`` turns true, so the first call is as fast as the rest. The kernels release the GIL
and allocate their own scratch, so one Scorer serves many threads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final, NamedTuple

import numba
import numpy as np
import numpy.typing as npt

from services.common.features import FEATURES, WIDTH, empty_vector
from services.common.reasons import Reason
from services.scoring import artifact as artifact_io
from services.scoring import kernels
from services.scoring.artifact import Artifact

DEFAULT_MODEL_PATH: Final[Path] = Path(__file__).resolve().parent / "default"


def default_model() -> Path | None:
    """The model shipped with this build (``DEFAULT_MODEL_PATH``), or None when the build ships none.

    The one lookup the decision service (when FRAUDMESH_MODEL_PATH is unset) and the main job share.
    """
    return DEFAULT_MODEL_PATH if (DEFAULT_MODEL_PATH / "model.json").is_file() else None


"""The model shipped in the repository (trained on the simulator's default scenario; see its README)."""
TOP_REASONS: Final[int] = 3
REASON_OF: Final[tuple[Reason, ...]] = tuple(f.reason or Reason.MODEL_SCORE for f in FEATURES)
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
        self._path_feature = packed.path_feature
        self._path_delta = packed.path_delta
        self._bias = packed.bias
        self._depth = packed.depth
        self._a = float(artifact.calibration.a)
        self._b = float(artifact.calibration.b)
        self._raw_row: Any = kernels.raw_row
        self._score_row: Any = kernels.score_row
        self._explain_row: Any = kernels.explain_row
        self._ready = False

    @classmethod
    def load(cls, path: Path, *, warm: bool = True) -> Scorer:
        """Load and verify an artifact folder (else ``ArtifactError``), then warm unless told not to."""
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
        """Compile (or load from cache) and run every kernel once, so no call pays for it.

        The single-row kernels are then called through their compiled entry points: the argument
        types never change after loading, so a call need not pay for Numba's type dispatch (about
        a third of a call's cost at 300 trees).
        """
        row = empty_vector()
        self._raw_row = _entry_point(
            kernels.raw_row, row, self._slots, self._nodes, self._leaves, self._depth
        )
        self._score_row = _entry_point(
            kernels.score_row, row, self._slots, self._nodes, self._leaves, self._depth, self._a, self._b
        )
        self._explain_row = _entry_point(
            kernels.explain_row,
            row,
            self._slots,
            self._nodes,
            self._leaves,
            self._path_feature,
            self._path_delta,
            self._bias,
            self._depth,
            self._a,
            self._b,
            REASON_ID,
            -math.inf,
        )
        matrix = np.stack([row, np.zeros(WIDTH, dtype=np.float32)])
        self.score(row)
        self.score(row, reasons=False)
        self.score(row, reasons_above=0.5)
        self.raw(row)
        self.score_batch(matrix)
        self.score_batch(matrix, parallel=True)
        self.contributions(row)
        self._ready = True

    def raw(self, vector: npt.ArrayLike) -> float:
        """The raw margin of one vector, without calibration or reasons (the cheapest call)."""
        return float(self._raw_row(_as_row(vector), self._slots, self._nodes, self._leaves, self._depth))

    def raw_threshold(self, probability: float) -> float:
        """The raw score whose calibrated probability is ``probability`` (-inf at 0, +inf at 1)."""
        if probability <= 0.0:
            return -math.inf
        if probability >= 1.0:
            return math.inf
        return (math.log(probability / (1.0 - probability)) - self._b) / self._a

    def score(
        self, vector: npt.ArrayLike, *, reasons: bool = True, reasons_above: float | None = None
    ) -> Scored:
        """Score one feature vector (float32, schema order, NaN = unknown), with its top reason codes.

        ``reasons_above`` (a probability, e.g. the policy's lowest non-ALLOW threshold) gives
        reasons only to calls scoring above it, in the same kernel call: the calls a policy allows
        then cost one tree walk. ``reasons=False`` never gives reasons. ``top_reasons`` is empty
        when none were computed.
        """
        if not reasons:
            raw, probability = self._score_row(
                _as_row(vector), self._slots, self._nodes, self._leaves, self._depth, self._a, self._b
            )
            return Scored(float(probability), float(raw), [])
        raw, probability, first, second, third = self._explain_row(
            _as_row(vector),
            self._slots,
            self._nodes,
            self._leaves,
            self._path_feature,
            self._path_delta,
            self._bias,
            self._depth,
            self._a,
            self._b,
            REASON_ID,
            -math.inf if reasons_above is None else self.raw_threshold(reasons_above),
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
            _as_row(vector),
            self._slots,
            self._nodes,
            self._leaves,
            self._path_feature,
            self._path_delta,
            self._bias,
            self._depth,
            out,
        )
        return out

    def contributions_batch(self, matrix: npt.ArrayLike) -> F64:
        """Path contributions of every row of a (n, WIDTH) matrix: shape (n, WIDTH + 1)."""
        result: F64 = kernels.contributions_batch(
            _as_matrix(matrix),
            self._slots,
            self._nodes,
            self._leaves,
            self._path_feature,
            self._path_delta,
            self._bias,
            self._depth,
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


def _entry_point(dispatcher: Any, *args: Any) -> Any:
    """``dispatcher``'s compiled entry point for exactly these argument types (compiling if needed).

    Calling it skips the per-call type dispatch; ``_as_row`` guarantees every row has the type the
    entry point was compiled for (a writable, aligned, C-contiguous float32 vector). Without JIT
    (NUMBA_DISABLE_JIT=1) the kernel is a plain function and is returned as it is.
    """
    dispatcher(*args)
    overloads = getattr(dispatcher, "overloads", None)
    if not overloads:
        return dispatcher
    compiled = overloads.get(tuple(numba.typeof(arg) for arg in args))  # type: ignore[no-untyped-call]
    return dispatcher if compiled is None else compiled.entry_point


def _as_row(vector: Any) -> npt.NDArray[np.float32]:
    """The vector itself when it is already a contiguous float32 row of WIDTH, else a checked copy."""
    if (
        type(vector) is np.ndarray
        and vector.dtype is _F32
        and vector.shape == _ROW
        and vector.flags.carray  # C-contiguous, aligned and writeable
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
