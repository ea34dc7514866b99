"""Model artifacts: round trip, refusal of other schemas and of malformed or unsupported models."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from services.common.features import NAMES, SCHEMA_HASH, WIDTH
from services.scoring import artifact
from services.scoring.artifact import ArtifactError, Calibration, SchemaMismatchError
from tests.unit.test_scoring_kernels import model, training_data


def saved(tmp_path: Path) -> Path:
    trained, _, _ = model("nan")
    built = artifact.from_booster(
        trained,
        Calibration(a=1.5, b=-0.25),
        metrics={"holdout": {"roc_auc": 0.9}},
        manifest={"dataset": "unit"},
    )
    return artifact.save(built, tmp_path / "model", lightgbm_text=trained.model_to_string())


def test_round_trip_keeps_every_array_and_the_metadata(tmp_path: Path) -> None:
    trained, forest, _ = model("nan")
    loaded = artifact.load(saved(tmp_path))
    for name, array in forest.arrays().items():
        assert np.array_equal(loaded.forest.arrays()[name], array), name
    assert loaded.calibration == Calibration(a=1.5, b=-0.25)
    meta = loaded.metadata
    assert meta["schema_hash"] == SCHEMA_HASH
    assert meta["feature_names"] == list(NAMES)
    assert meta["num_trees"] == trained.num_trees()
    assert meta["training_data"] == {"dataset": "unit"}
    assert meta["metrics"]["holdout"]["roc_auc"] == 0.9
    assert {"numpy", "numba", "lightgbm"} <= set(meta["libraries"])
    assert loaded.version.endswith(meta["forest_sha256"])
    assert (tmp_path / "model" / artifact.LIGHTGBM_TEXT).read_text() == trained.model_to_string()


def test_an_artifact_for_another_schema_is_refused(tmp_path: Path) -> None:
    folder = saved(tmp_path)
    meta = json.loads((folder / artifact.METADATA).read_text())
    meta["schema_hash"] = "0123456789abcdef"
    (folder / artifact.METADATA).write_text(json.dumps(meta))
    with pytest.raises(SchemaMismatchError) as caught:
        artifact.load(folder)
    assert caught.value.artifact_hash == "0123456789abcdef"
    assert caught.value.running_hash == SCHEMA_HASH
    assert isinstance(caught.value, ArtifactError)


@pytest.mark.parametrize(
    ("array", "corrupt"),
    [
        ("left", lambda a: np.where(a > 0, 10**6, a)),
        ("feature", lambda a: a + WIDTH),
        ("tree_offset", lambda a: a[:-1]),
        ("value", lambda a: np.full_like(a, np.nan)),
    ],
)
def test_malformed_arrays_are_refused(tmp_path: Path, array: str, corrupt: object) -> None:
    folder = saved(tmp_path)
    with np.load(folder / artifact.ARRAYS) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays[array] = corrupt(arrays[array])  # type: ignore[operator]
    np.savez(folder / artifact.ARRAYS, **arrays)
    with pytest.raises(ArtifactError):
        artifact.load(folder)


def test_missing_folder_and_other_format_versions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        artifact.load(tmp_path / "absent")
    folder = saved(tmp_path)
    meta = json.loads((folder / artifact.METADATA).read_text())
    meta["format_version"] = artifact.FORMAT_VERSION + 1
    (folder / artifact.METADATA).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="format"):
        artifact.load(folder)


def test_categorical_splits_and_foreign_feature_names_are_refused() -> None:
    x, y = training_data()
    x[:, 0] = np.random.default_rng(0).integers(0, 6, size=len(x))
    y = x[:, 0] >= 3
    params = {"objective": "binary", "verbose": -1, "min_data_per_group": 5, "cat_smooth": 1}
    categorical = lgb.train(params, lgb.Dataset(x, y, feature_name=list(NAMES), categorical_feature=[0]), 3)
    with pytest.raises(ArtifactError, match="categorical"):
        artifact.forest_from_dump(categorical.dump_model())
    unnamed = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, y), 2)
    with pytest.raises(ArtifactError, match="feature names"):
        artifact.forest_from_dump(unnamed.dump_model())


def test_infinite_thresholds_survive_the_json_dump() -> None:
    trained, forest, _ = model("nan")
    assert "inf" in trained.model_to_string()
    assert np.isposinf(forest.threshold).any()
    assert not (np.abs(forest.threshold[np.isfinite(forest.threshold)]) >= artifact.AVOID_INF).any()
