"""Model artifacts: round trip, refusal of other schemas and of malformed, corrupted or unsupported models.

Corruption is tried on a small model trained here and on the shipped default: every damaged copy is
refused with an ``ArtifactError`` naming the file, never numpy's or json's own exception.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.features import NAMES, SCHEMA_HASH, WIDTH
from services.scoring import artifact
from services.scoring.artifact import ArtifactError, Calibration, Forest, IntegrityError, SchemaMismatchError
from services.scoring.model import DEFAULT_MODEL_PATH
from tests.unit.test_scoring_kernels import model, training_data
from training import export
from training.synthetic import generate
from training.train import train


def saved(tmp_path: Path) -> Path:
    trained, _, _ = model("nan")
    built = export.from_booster(
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
    arrays = read_arrays(folder)
    arrays[array] = corrupt(arrays[array])  # type: ignore[operator]
    np.savez(folder / artifact.ARRAYS, **arrays)
    rehash(folder)  # a consistent manifest: the structural checks, not the digest, must refuse it
    with pytest.raises(ArtifactError, match="artifact") as caught:
        artifact.load(folder)
    assert caught.value.file == folder / artifact.ARRAYS
    assert not isinstance(caught.value, IntegrityError)


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
        export.forest_from_dump(categorical.dump_model())
    unnamed = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, y), 2)
    with pytest.raises(ArtifactError, match="feature names"):
        export.forest_from_dump(unnamed.dump_model())


def test_infinite_thresholds_survive_the_json_dump() -> None:
    trained, forest, _ = model("nan")
    assert "inf" in trained.model_to_string()
    assert np.isposinf(forest.threshold).any()
    assert not (np.abs(forest.threshold[np.isfinite(forest.threshold)]) >= export.AVOID_INF).any()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model trained here as the decision service tests train theirs (40 trees, depth 4)."""
    folder = tmp_path_factory.mktemp("trained") / "artifact"
    rows = generate(20_000, seed=3)
    train(
        rows.X, rows.y, rows.t_ms, rows.kinds, folder, manifest={"test": True}, trees=40, depth=4, threads=1
    )
    return folder


@pytest.fixture(params=["trained", "default"])
def source(request: pytest.FixtureRequest) -> Path:
    """Each artifact the corruption tests damage copies of."""
    if request.param == "default":
        return DEFAULT_MODEL_PATH
    folder: Path = request.getfixturevalue("trained")
    return folder


def copy_of(source: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(source, folder)
    return folder


def read_arrays(folder: Path) -> dict[str, Any]:
    with np.load(folder / artifact.ARRAYS) as npz:
        return {name: npz[name] for name in npz.files}


def edit_manifest(folder: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    meta = json.loads((folder / artifact.METADATA).read_text())
    edit(meta)
    (folder / artifact.METADATA).write_text(json.dumps(meta))


def rehash(folder: Path) -> None:
    """Record the arrays' digest (and the version built from it) as a trainer would have."""
    digest = artifact.forest_digest(Forest(**read_arrays(folder)))

    def record(meta: dict[str, Any]) -> None:
        meta["forest_sha256"] = digest
        meta["model_version"] = f"{meta['model_version'].rsplit('-', 1)[0]}-{digest}"

    edit_manifest(folder, record)


def test_copies_of_intact_artifacts_load(source: Path, tmp_path: Path) -> None:
    loaded = artifact.load(copy_of(source, tmp_path))
    assert loaded.metadata["forest_sha256"] == artifact.forest_digest(loaded.forest)
    assert loaded.version == artifact.load(source).version


def test_a_changed_byte_in_the_forest_fails_its_digest(source: Path, tmp_path: Path) -> None:
    folder = copy_of(source, tmp_path)
    arrays = read_arrays(folder)
    recorded = json.loads((folder / artifact.METADATA).read_text())["forest_sha256"]
    threshold = arrays["threshold"].copy()
    threshold.view(np.uint8)[8 * int(np.flatnonzero(np.isfinite(threshold))[0])] ^= 0x01
    np.savez(folder / artifact.ARRAYS, **{**arrays, "threshold": threshold})  # a valid npz, other bytes
    with pytest.raises(IntegrityError, match="forest_sha256") as caught:
        artifact.load(folder)
    assert caught.value.file == folder / artifact.ARRAYS
    assert caught.value.recorded == recorded
    assert caught.value.computed != recorded


def test_a_flipped_byte_in_the_file_is_refused_as_unreadable(source: Path, tmp_path: Path) -> None:
    folder = copy_of(source, tmp_path)
    data = bytearray((folder / artifact.ARRAYS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / artifact.ARRAYS).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="cannot read") as caught:
        artifact.load(folder)
    assert caught.value.file == folder / artifact.ARRAYS


@pytest.mark.parametrize("keep", [0, 30, 0.5, -1])
def test_a_truncated_forest_is_refused(source: Path, tmp_path: Path, keep: float) -> None:
    folder = copy_of(source, tmp_path)
    data = (folder / artifact.ARRAYS).read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    (folder / artifact.ARRAYS).write_bytes(data[:cut])
    with pytest.raises(ArtifactError, match="truncated") as caught:
        artifact.load(folder)
    assert caught.value.file == folder / artifact.ARRAYS


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (lambda m: m.update(forest_sha256="0123456789ab"), IntegrityError, "forest_sha256"),
        (lambda m: m.pop("forest_sha256"), ArtifactError, "records no forest_sha256"),
        (lambda m: m.update(model_version="20990101T000000Z-0123456789ab"), IntegrityError, "model_version"),
        (lambda m: m.update(num_trees=m["num_trees"] + 1), IntegrityError, "num_trees"),
        (lambda m: m.update(num_nodes=m["num_nodes"] - 1), IntegrityError, "num_nodes"),
        (lambda m: m.update(max_depth=m["max_depth"] + 1), IntegrityError, "max_depth"),
        (lambda m: m.update(schema_hash="0123456789abcdef"), SchemaMismatchError, "feature schema"),
        (lambda m: m["feature_names"].reverse(), ArtifactError, "feature names"),
        (lambda m: m["calibration"].update(a=-1.0), ArtifactError, "calibration"),
        (lambda m: m["calibration"].pop("b"), ArtifactError, "calibration"),
        (lambda m: m.update(calibration="platt"), ArtifactError, "calibration"),
    ],
)
def test_an_edited_manifest_is_refused(
    source: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], object], error: type, message: str
) -> None:
    folder = copy_of(source, tmp_path)
    edit_manifest(folder, edit)
    with pytest.raises(error, match=message) as caught:
        artifact.load(folder)
    assert str(folder) in str(caught.value)


def test_a_foreign_training_schema_in_the_manifest_is_refused(source: Path, tmp_path: Path) -> None:
    folder = copy_of(source, tmp_path)
    edit_manifest(folder, lambda m: m.update(training_data={"schema_hash": "0123456789abcdef"}))
    with pytest.raises(SchemaMismatchError) as caught:
        artifact.load(folder)
    assert caught.value.file == folder / artifact.METADATA


@pytest.mark.parametrize("name", [artifact.ARRAYS, artifact.METADATA])
def test_a_missing_file_is_named(source: Path, tmp_path: Path, name: str) -> None:
    folder = copy_of(source, tmp_path)
    (folder / name).unlink()
    with pytest.raises(ArtifactError, match="missing") as caught:
        artifact.load(folder)
    assert caught.value.file == folder / name


@pytest.mark.parametrize("text", [b"", b'{"format_version": 1', b"[1, 2]", b"\xff\xfe{}"])
def test_an_unreadable_manifest_is_refused(source: Path, tmp_path: Path, text: bytes) -> None:
    folder = copy_of(source, tmp_path)
    (folder / artifact.METADATA).write_bytes(text)
    with pytest.raises(ArtifactError) as caught:
        artifact.load(folder)
    assert caught.value.file == folder / artifact.METADATA


def test_arrays_of_two_models_do_not_mix(trained: Path, tmp_path: Path) -> None:
    folder = copy_of(trained, tmp_path)
    shutil.copy2(DEFAULT_MODEL_PATH / artifact.ARRAYS, folder / artifact.ARRAYS)  # half of a rollout
    with pytest.raises(IntegrityError, match="mixes two models"):
        artifact.load(folder)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.sampled_from([artifact.ARRAYS, artifact.METADATA]),
    where=st.floats(0.0, 1.0, exclude_max=True),
    damage=st.sampled_from(["flip", "truncate"]),
    bit=st.integers(0, 7),
)
def test_damage_anywhere_is_refused_or_harmless(
    trained: Path, tmp_path: Path, which: str, where: float, damage: str, bit: int
) -> None:
    """A damaged file is an ArtifactError, or it loads the very same forest (e.g. a metric's digit)."""
    folder = tmp_path / "damaged"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(trained, folder)
    data = bytearray((folder / which).read_bytes())
    at = int(where * len(data))
    if damage == "flip":
        data[at] ^= 1 << bit
    else:
        del data[at:]
    (folder / which).write_bytes(bytes(data))
    outcome: artifact.Artifact | ArtifactError
    try:
        outcome = artifact.load(folder)
    except ArtifactError as exc:
        outcome = exc
    if isinstance(outcome, ArtifactError):
        assert outcome.file is not None
    else:
        assert artifact.forest_digest(outcome.forest) == artifact.load(trained).metadata["forest_sha256"]
