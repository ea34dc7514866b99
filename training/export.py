"""Exporting a trained LightGBM booster as the scoring artifact serving loads (``services.scoring.artifact``).

``forest_from_dump`` flattens ``Booster.dump_model()`` into the artifact's preorder arrays and
refuses what the Numba kernels cannot evaluate exactly (multi-class, random-forest mode,
categorical or linear trees, feature names other than the schema's); ``from_booster`` adds the
calibration, block threshold, metrics, training-data manifest and library versions. Serving never
imports this.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from services.common.features import NAMES, SCHEMA_HASH
from services.scoring.artifact import (
    DEFAULT_LEFT,
    FORMAT_VERSION,
    IDENTITY,
    MISSING_NAN,
    MISSING_NONE,
    MISSING_ZERO,
    Artifact,
    ArtifactError,
    Calibration,
    Forest,
    forest_digest,
)

if TYPE_CHECKING:
    import lightgbm

MISSING_TYPES: Final[dict[str, int]] = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}
AVOID_INF: Final[float] = 1e300
_VERSIONED: Final[tuple[str, ...]] = ("numpy", "numba", "llvmlite", "lightgbm", "scikit-learn", "fraudmesh")


def _tree_nodes(root: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes of one dumped tree in preorder."""
    order: list[dict[str, Any]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        if "split_index" in node:
            stack.append(node["right_child"])
            stack.append(node["left_child"])
    return order


def _threshold(value: float) -> float:
    """Undo ``Common::AvoidInf``: the JSON dump writes an infinite threshold as +-1e300.

    The booster and its text model keep +inf (a split "every number left, NaN right"), so +inf
    input goes left there; features are float32, so no real threshold is that large.
    """
    if value >= AVOID_INF:
        return float("inf")
    if value <= -AVOID_INF:
        return float("-inf")
    return value


def forest_from_dump(dump: dict[str, Any]) -> Forest:
    """Flatten ``Booster.dump_model()`` output; refuses what the kernels cannot evaluate exactly."""
    if dump.get("num_class", 1) != 1 or dump.get("num_tree_per_iteration", 1) != 1:
        raise ArtifactError("only single-output (binary) models are supported")
    if dump.get("average_output"):
        raise ArtifactError("random-forest mode (average_output) is not supported")
    if list(dump.get("feature_names", [])) != list(NAMES):
        raise ArtifactError("the model's feature names are not the schema's NAMES in order")
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    decision: list[int] = []
    value: list[float] = []
    count: list[int] = []
    offsets = [0]
    for tree in dump["tree_info"]:
        if tree.get("num_cat", 0):
            raise ArtifactError("categorical splits are not supported: train every feature as numeric")
        nodes = _tree_nodes(tree["tree_structure"])
        base = offsets[-1]
        position = {id(node): base + i for i, node in enumerate(nodes)}
        for node in nodes:
            if "split_index" in node:
                if node["decision_type"] != "<=":
                    raise ArtifactError(f"unsupported decision type {node['decision_type']!r}")
                feature.append(int(node["split_feature"]))
                threshold.append(_threshold(float(node["threshold"])))
                left.append(position[id(node["left_child"])])
                right.append(position[id(node["right_child"])])
                bits = MISSING_TYPES[node["missing_type"]] << 2
                decision.append(bits | (DEFAULT_LEFT if node["default_left"] else 0))
                value.append(np.nan)
                count.append(int(node["internal_count"]))
            else:
                if "leaf_coeff" in node:
                    raise ArtifactError("linear trees are not supported")
                feature.append(0)
                threshold.append(0.0)
                left.append(-1)
                right.append(-1)
                decision.append(0)
                value.append(float(node["leaf_value"]))
                count.append(int(node.get("leaf_count", 0)))
        offsets.append(base + len(nodes))
    forest = Forest(
        feature=np.array(feature, dtype=np.int32),
        threshold=np.array(threshold, dtype=np.float64),
        left=np.array(left, dtype=np.int32),
        right=np.array(right, dtype=np.int32),
        decision_type=np.array(decision, dtype=np.uint8),
        value=np.array(value, dtype=np.float64),
        count=np.array(count, dtype=np.int64),
        tree_offset=np.array(offsets, dtype=np.int64),
    )
    _fill_expected_values(forest)
    return forest


def _fill_expected_values(forest: Forest) -> None:
    """Set each split node's value to the count-weighted mean of its children (bottom-up)."""
    for n in range(forest.num_nodes - 1, -1, -1):
        lo, hi = forest.left[n], forest.right[n]
        if lo < 0:
            continue
        c_lo, c_hi = float(forest.count[lo]), float(forest.count[hi])
        if c_lo + c_hi > 0:
            forest.value[n] = (c_lo * forest.value[lo] + c_hi * forest.value[hi]) / (c_lo + c_hi)
        else:
            forest.value[n] = 0.5 * (forest.value[lo] + forest.value[hi])


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that produced or read the artifact."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def from_booster(
    booster: lightgbm.Booster,
    calibration: Calibration = IDENTITY,
    *,
    metrics: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    block_threshold: float | None = None,
) -> Artifact:
    """Build an artifact from a trained booster (all of its iterations: trim before calling).

    ``block_threshold`` (the calibrated probability from which the score alone may block, chosen on
    validation) is written only when there is one: a model without it never blocks on its score.
    """
    dump = booster.dump_model(num_iteration=-1)
    forest = forest_from_dump(dump)
    created = datetime.now(UTC)
    digest = forest_digest(forest)
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "schema_hash": SCHEMA_HASH,
        "feature_names": list(NAMES),
        "num_trees": forest.num_trees,
        "num_nodes": forest.num_nodes,
        "max_depth": int(forest.depths().max(initial=0)),
        "objective": str(dump.get("objective", "")),
        "calibration": calibration.to_json(),
        "metrics": metrics or {},
        "training_data": manifest or {},
        "params": params or {},
        "created_at": created.isoformat(timespec="seconds"),
        "model_version": f"{created.strftime('%Y%m%dT%H%M%SZ')}-{digest}",
        "forest_sha256": digest,
        "libraries": library_versions(),
    }
    if block_threshold is not None:
        meta["block_threshold"] = block_threshold
    return Artifact(forest=forest, calibration=calibration, objective=meta["objective"], metadata=meta)
