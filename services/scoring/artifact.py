"""The model artifact: a trained LightGBM forest flattened into plain NumPy arrays, plus its metadata.

An artifact is a folder holding ``model.npz`` (the arrays below) and ``model.json`` (schema hash,
feature names, calibration, training metrics, the caller's training-data manifest, library
versions, and optionally ``block_threshold``: the calibrated probability from which the score alone
may block, chosen on the validation slice; absent, the score alone never blocks). Inference reads
only these two files, so the decision service needs neither LightGBM nor scikit-learn;
``lightgbm.txt`` is kept beside them for audit and offline TreeSHAP.

Trees are stored node by node in preorder, every tree's root at ``tree_offset[t]``. For a split
node: ``feature``, ``threshold`` (float64, compared with ``<=``), ``left``/``right`` (global node
indices) and ``decision_type`` (LightGBM's bits: 2 = default left, ``(d >> 2) & 3`` = missing type
0 None / 1 Zero / 2 NaN). For a leaf: ``left == right == -1`` and ``value`` is its output. A split
node's ``value`` is the data-count-weighted mean of its leaves (LightGBM's ``ExpectedValue``), the
baseline path attribution measures changes against. ``count`` is training rows through the node.

Loading verifies the folder against its manifest before anything scores with it, and refuses it
with an ``ArtifactError`` naming the file: a missing, unreadable or truncated file; another format
version or feature schema (``SchemaMismatchError``: a model reading features by position must never
be fed vectors in another order or meaning); a forest whose SHA-256 is not the recorded
``forest_sha256``, or whose tree/node counts, depth or version disagree with the manifest
(``IntegrityError``); arrays a kernel would read out of bounds; an unusable calibration or block
threshold. The library versions are recorded for audit, not checked: the arrays mean the same under
any NumPy or Numba, and serving has no LightGBM.
"""

from __future__ import annotations

import hashlib
import json
import math
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from services.common.features import NAMES, SCHEMA_HASH, WIDTH

FORMAT_VERSION: Final[int] = 1
ARRAYS: Final[str] = "model.npz"
METADATA: Final[str] = "model.json"
LIGHTGBM_TEXT: Final[str] = "lightgbm.txt"

DEFAULT_LEFT: Final[int] = 2
MISSING_NONE: Final[int] = 0
MISSING_ZERO: Final[int] = 1
MISSING_NAN: Final[int] = 2
_MISSING: Final[str] = f"missing (an artifact folder holds {METADATA} and {ARRAYS})"

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


class ArtifactError(Exception):
    """The artifact folder is missing, malformed or cannot be used by this code (``file``: which file)."""

    def __init__(self, message: str, *, file: Path | None = None) -> None:
        self.file = file
        super().__init__(f"{file}: {message}" if file is not None else message)


class SchemaMismatchError(ArtifactError):
    """The artifact was trained on a different feature schema than the running code's."""

    def __init__(self, artifact_hash: str, running_hash: str, *, file: Path | None = None) -> None:
        self.artifact_hash = artifact_hash
        self.running_hash = running_hash
        super().__init__(
            f"model artifact was trained on feature schema {artifact_hash}, "
            f"this code builds vectors for schema {running_hash}; retrain or deploy matching code",
            file=file,
        )


class IntegrityError(ArtifactError):
    """The artifact's files disagree with what its manifest records: corrupted, truncated or edited."""

    def __init__(self, file: Path, what: str, recorded: object, computed: object) -> None:
        self.what = what
        self.recorded = recorded
        self.computed = computed
        super().__init__(
            f"{what} is recorded as {recorded!r} in {METADATA} but the arrays give {computed!r}; the "
            "artifact is corrupted, mixes two models or was edited: copy it again from where it was trained",
            file=file,
        )


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the raw margin: probability = 1 / (1 + exp(-(a * raw + b)))."""

    a: float
    b: float

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in model.json."""
        return {"method": "platt", "a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, data: Any) -> Calibration:
        """Read the JSON form; refuses methods this code cannot apply and non-increasing scalings.

        ``a`` must be positive and finite: thresholds on the probability map to raw scores only
        while the scaling is increasing (``Scorer.raw_threshold``).
        """
        if not isinstance(data, dict) or data.get("method") != "platt":
            method = data.get("method") if isinstance(data, dict) else None
            raise ArtifactError(f"unsupported calibration method {method!r}")
        try:
            a, b = float(data["a"]), float(data["b"])
        except (KeyError, TypeError, ValueError):
            raise ArtifactError("calibration a and b must be numbers") from None
        if not (math.isfinite(a) and math.isfinite(b) and a > 0.0):
            raise ArtifactError("calibration needs a finite positive a and a finite b")
        return cls(a=a, b=b)


IDENTITY: Final[Calibration] = Calibration(a=1.0, b=0.0)


@dataclass(frozen=True)
class Forest:
    """The flattened trees (see the module docstring for the layout)."""

    feature: IntArray
    threshold: FloatArray
    left: IntArray
    right: IntArray
    decision_type: npt.NDArray[np.uint8]
    value: FloatArray
    count: npt.NDArray[np.int64]
    tree_offset: npt.NDArray[np.int64]

    @property
    def num_trees(self) -> int:
        """Number of trees."""
        return len(self.tree_offset) - 1

    @property
    def num_nodes(self) -> int:
        """Number of nodes, splits and leaves together."""
        return len(self.feature)

    def is_leaf(self) -> npt.NDArray[np.bool_]:
        """Mask of leaf nodes."""
        return self.left < 0

    def depths(self) -> npt.NDArray[np.int32]:
        """Depth of each tree (edges from root to its deepest leaf; 0 for a single leaf)."""
        depth = np.zeros(self.num_nodes, dtype=np.int32)
        for n in range(self.num_nodes):
            if self.left[n] >= 0:
                depth[self.left[n]] = depth[n] + 1
                depth[self.right[n]] = depth[n] + 1
        return np.array(
            [depth[self.tree_offset[t] : self.tree_offset[t + 1]].max() for t in range(self.num_trees)],
            dtype=np.int32,
        )

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The arrays by their npz names."""
        return {
            "feature": self.feature,
            "threshold": self.threshold,
            "left": self.left,
            "right": self.right,
            "decision_type": self.decision_type,
            "value": self.value,
            "count": self.count,
            "tree_offset": self.tree_offset,
        }


@dataclass(frozen=True)
class Artifact:
    """A forest with its calibration and the metadata that travels with it."""

    forest: Forest
    calibration: Calibration
    objective: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The model version string a Decision carries (creation time + forest digest)."""
        return str(self.metadata.get("model_version", "unversioned"))


def forest_digest(forest: Forest) -> str:
    """The ``forest_sha256`` a manifest records: SHA-256 over every array's name and bytes, 12 hex digits."""
    h = hashlib.sha256()
    for name, array in forest.arrays().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:12]


def save(artifact: Artifact, folder: Path, *, lightgbm_text: str | None = None) -> Path:
    """Write ``model.npz`` and ``model.json`` (and the LightGBM text model, if given) to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = artifact.forest.arrays()
    np.savez(folder / ARRAYS, **arrays)
    (folder / METADATA).write_text(json.dumps(artifact.metadata, indent=2, sort_keys=True) + "\n")
    if lightgbm_text is not None:
        (folder / LIGHTGBM_TEXT).write_text(lightgbm_text)
    return folder


def load(folder: Path) -> Artifact:
    """Read an artifact folder and verify it against its manifest (see the module docstring)."""
    manifest, arrays_file = folder / METADATA, folder / ARRAYS
    if not folder.is_dir():
        raise ArtifactError("no such artifact folder", file=folder)
    meta = _read_manifest(manifest)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"artifact format {meta.get('format_version')!r} is not this code's format {FORMAT_VERSION}",
            file=manifest,
        )
    if meta.get("schema_hash") != SCHEMA_HASH:
        raise SchemaMismatchError(str(meta.get("schema_hash")), SCHEMA_HASH, file=manifest)
    training = meta.get("training_data")
    if isinstance(training, dict) and training.get("schema_hash", SCHEMA_HASH) != SCHEMA_HASH:
        raise SchemaMismatchError(str(training["schema_hash"]), SCHEMA_HASH, file=manifest)
    if meta.get("feature_names") != list(NAMES):
        raise ArtifactError("feature names differ from the schema despite a matching hash", file=manifest)
    forest = _read_forest(arrays_file)
    _verify_digest(forest, meta, manifest)
    try:
        _check(forest)
    except ArtifactError as exc:
        raise ArtifactError(str(exc), file=arrays_file) from None
    _verify_shape(forest, meta, manifest)
    try:
        calibration = Calibration.from_json(meta.get("calibration"))
    except ArtifactError as exc:
        raise ArtifactError(str(exc), file=manifest) from None
    block = meta.get("block_threshold")
    if block is not None and (
        isinstance(block, bool) or not isinstance(block, int | float) or not 0.0 < float(block) <= 1.0
    ):
        raise ArtifactError(f"block_threshold must be a probability in (0, 1], got {block!r}", file=manifest)
    return Artifact(
        forest=forest, calibration=calibration, objective=str(meta.get("objective")), metadata=meta
    )


def _read_manifest(file: Path) -> dict[str, Any]:
    """model.json as a JSON object."""
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ArtifactError(_MISSING, file=file) from None
    except OSError as exc:
        raise ArtifactError(f"cannot read ({exc.strerror})", file=file) from None
    except UnicodeDecodeError:
        raise ArtifactError("not UTF-8 text", file=file) from None
    try:
        meta = json.loads(text)
    except ValueError as exc:
        raise ArtifactError(f"not valid JSON ({exc})", file=file) from None
    if not isinstance(meta, dict):
        raise ArtifactError("not a JSON object", file=file)
    return meta


def _read_forest(file: Path) -> Forest:
    """model.npz as a Forest; a missing, truncated or foreign file is an ArtifactError, never numpy's."""
    names = ("feature", "threshold", "left", "right", "decision_type", "value", "count", "tree_offset")
    try:
        with np.load(file, allow_pickle=False) as npz:
            missing = [name for name in names if name not in npz.files]
            if missing:
                raise ArtifactError(f"lacks the array(s) {', '.join(missing)}", file=file)
            arrays = {name: npz[name] for name in names}
    except FileNotFoundError:
        raise ArtifactError(_MISSING, file=file) from None
    # NotImplementedError: zipfile's answer to a damaged compression-method field; SyntaxError and
    # tokenize.TokenError: numpy's reading of a damaged .npy header (its fallback parser tokenizes it)
    except (
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
        SyntaxError,
        tokenize.TokenError,
        zipfile.BadZipFile,
        zlib.error,
    ) as exc:
        raise ArtifactError(f"cannot read the arrays, truncated or not an npz ({exc})", file=file) from None
    if any(array.ndim != 1 for array in arrays.values()):
        raise ArtifactError("every array must be one-dimensional", file=file)
    try:
        return Forest(
            feature=arrays["feature"].astype(np.int32, copy=False),
            threshold=arrays["threshold"].astype(np.float64, copy=False),
            left=arrays["left"].astype(np.int32, copy=False),
            right=arrays["right"].astype(np.int32, copy=False),
            decision_type=arrays["decision_type"].astype(np.uint8, copy=False),
            value=arrays["value"].astype(np.float64, copy=False),
            count=arrays["count"].astype(np.int64, copy=False),
            tree_offset=arrays["tree_offset"].astype(np.int64, copy=False),
        )
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"arrays of an unusable type ({exc})", file=file) from None


def _verify_digest(forest: Forest, meta: dict[str, Any], manifest: Path) -> None:
    """The arrays are the ones the manifest records: their digest, and the version built from it."""
    recorded = meta.get("forest_sha256")
    if not isinstance(recorded, str) or not recorded:
        raise ArtifactError(
            "records no forest_sha256, so the forest cannot be verified: rebuild the artifact", file=manifest
        )
    digest = forest_digest(forest)
    if recorded != digest:
        raise IntegrityError(manifest.parent / ARRAYS, "forest_sha256", recorded, digest)
    version = meta.get("model_version")
    if not isinstance(version, str) or not version.endswith(f"-{digest}"):
        raise IntegrityError(manifest, "model_version (ends in the digest)", version, f"...-{digest}")


def _verify_shape(forest: Forest, meta: dict[str, Any], manifest: Path) -> None:
    """The manifest's tree and node counts and depth are the (well-formed) forest's."""
    for key, actual in (
        ("num_trees", forest.num_trees),
        ("num_nodes", forest.num_nodes),
        ("max_depth", int(forest.depths().max())),
    ):
        if meta.get(key) != actual:
            raise IntegrityError(manifest, key, meta.get(key), actual)


def _check(forest: Forest) -> None:
    """Refuse arrays whose shapes or indices would make a kernel read out of bounds."""
    n = forest.num_nodes
    if any(len(a) != n for a in forest.arrays().values() if a is not forest.tree_offset):
        raise ArtifactError("artifact node arrays have different lengths")
    offsets = forest.tree_offset
    if len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != n or np.any(np.diff(offsets) <= 0):
        raise ArtifactError("artifact tree offsets are inconsistent")
    split = forest.left >= 0
    if np.any(forest.feature[split] < 0) or np.any(forest.feature[split] >= WIDTH):
        raise ArtifactError("artifact splits on a feature outside the schema")
    end = offsets[np.searchsorted(offsets, np.arange(n), side="right")]
    for child in (forest.left, forest.right):
        if np.any(child[split] <= np.flatnonzero(split)) or np.any(child[split] >= end[split]):
            raise ArtifactError("artifact child indices leave their tree")
    if np.any((forest.left >= 0) != (forest.right >= 0)):
        raise ArtifactError("artifact has a node with one child")
    if np.any(((forest.decision_type >> 2) & 3) > MISSING_NAN) or np.any(forest.decision_type & 1):
        raise ArtifactError("artifact has a categorical split or unknown missing type")
    if not np.all(np.isfinite(forest.value)):
        raise ArtifactError("artifact has a non-finite node value")
