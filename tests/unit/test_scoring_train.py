"""Training: the time split, Platt calibration, operating points, and the artifact + card it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from services.common.features import SCHEMA_HASH
from services.scoring import artifact
from services.scoring.model import Scorer
from training import card, synthetic
from training.__main__ import main
from training.evaluation import LEGIT_FP_RATES
from training.train import (
    FeatureSet,
    TrainingError,
    deployment_prior,
    fit_platt,
    load_features,
    save_features,
    split_by_time,
    train,
)


def test_split_is_by_time_without_shuffling_and_never_splits_a_timestamp() -> None:
    rng = np.random.default_rng(0)
    t_ms = rng.integers(0, 500, size=2000).astype(np.int64)
    split = split_by_time(t_ms)
    parts = [split.train, split.validation, split.holdout]
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(t_ms)))
    for part in parts:
        assert np.all(np.diff(t_ms[part]) >= 0)
    assert t_ms[split.train].max() < t_ms[split.validation].min()
    assert t_ms[split.validation].max() < t_ms[split.holdout].min()
    assert abs(len(split.train) - 1200) < 20
    assert abs(len(split.validation) - 400) < 20
    assert abs(len(split.holdout) - 400) < 20


def test_a_holdout_window_is_cut_at_its_start_and_the_rows_before_split_three_to_one() -> None:
    t_ms = np.arange(10_000, dtype=np.int64)
    split = split_by_time(t_ms, holdout_from_ms=8_000)
    assert split.holdout.tolist() == list(range(8_000, 10_000))
    assert len(split.train) == 6_000
    assert len(split.validation) == 2_000
    assert t_ms[split.train].max() < t_ms[split.validation].min()


def test_platt_recovers_a_logistic_model() -> None:
    rng = np.random.default_rng(1)
    raw = rng.normal(scale=3.0, size=200_000)
    y = rng.random(len(raw)) < 1.0 / (1.0 + np.exp(-(0.6 * raw - 2.0)))
    fitted = fit_platt(raw, y)
    assert fitted.a == pytest.approx(0.6, rel=0.03)
    assert fitted.b == pytest.approx(-2.0, rel=0.03)
    with pytest.raises(TrainingError):
        fit_platt(-raw, y)


def test_the_deployment_prior_is_given_declared_or_taken_from_before_the_holdout() -> None:
    before = np.array([True, False, False, False])
    assert deployment_prior(0.3, {"deployment_prior": 0.2}, before) == (0.3, "given to the trainer")
    assert deployment_prior(None, {"deployment_prior": 0.2}, before)[0] == 0.2
    value, source = deployment_prior(None, {}, before)
    assert value == 0.25
    assert "before the holdout" in source
    with pytest.raises(TrainingError, match="between 0 and 1"):
        deployment_prior(1.0, {}, before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = synthetic.generate(30_000, seed=3)
    out = tmp_path_factory.mktemp("train") / "model"
    train(
        rows.X,
        rows.y,
        rows.t_ms,
        rows.kinds,
        out,
        manifest={"synthetic": True, "rows": 30_000},
        trees=60,
        depth=5,
        console=Console(file=open("/dev/null", "w")),  # noqa: SIM115
    )
    return out


def test_train_writes_a_loadable_artifact_with_its_card(trained: Path) -> None:
    loaded = artifact.load(trained)
    metrics = loaded.metadata["metrics"]
    assert metrics["kernel_parity_max_abs_diff"] == 0.0
    assert metrics["holdout"]["roc_auc"] > 0.9
    assert len(metrics["operating_points"]) == len(LEGIT_FP_RATES)
    assert {row["name"] for row in metrics["per_kind"]} >= {"SUBSCRIBER", "ROBOCALL"}
    assert set(metrics["slices"]) == {"train", "validation", "holdout"}
    assert metrics["calibration"]["fitted_on"] == "validation"
    assert metrics["calibration"]["b"] == loaded.calibration.b
    assert any("0.0001" in w for w in metrics["warnings"])
    assert loaded.metadata["training_data"] == {"synthetic": True, "rows": 30_000}
    assert loaded.metadata["params"]["monotone_constraints"][3] == -1
    assert loaded.calibration.a > 0
    text = (trained / card.CARD).read_text()
    assert "PLACEHOLDER MODEL" in text
    assert "**WARNING**" in text
    doc = json.loads((trained / card.CARD_JSON).read_text())
    assert doc["metrics"]["operating_points"] == json.loads(json.dumps(metrics["operating_points"]))
    assert card.render(doc) == text
    for png in card.PLOTS.values():
        assert (trained / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png in text
    scorer = Scorer.load(trained)
    scored = scorer.score(synthetic.generate(10, seed=4).X[0])
    assert 0.0 <= scored.probability <= 1.0


def test_cli_trains_from_a_features_file_and_refuses_another_schema(tmp_path: Path) -> None:
    rows = synthetic.generate(8000, seed=5)
    path = tmp_path / "features.npz"
    save_features(path, FeatureSet(rows.X, rows.y, rows.t_ms, rows.kinds, manifest={"dataset": "unit"}))
    loaded = load_features(path)
    assert loaded.manifest["dataset"] == "unit"
    assert len(loaded.manifest["sha256"]) == 64
    out = tmp_path / "model"
    assert main(["train", "--features", str(path), "--out", str(out), "--trees", "20", "--depth", "4"]) == 0
    meta = json.loads((out / artifact.METADATA).read_text())
    assert meta["training_data"]["dataset"] == "unit"
    assert meta["schema_hash"] == SCHEMA_HASH
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["schema_hash"] = np.array("0000000000000000")
    np.savez(path, **arrays)
    with pytest.raises(TrainingError, match="schema"):
        load_features(path)
    assert main(["train", "--features", str(path), "--out", str(tmp_path / "other")]) == 1


def test_training_needs_both_classes_in_every_slice(tmp_path: Path) -> None:
    rows = synthetic.generate(3000, seed=6)
    y = rows.y.copy()
    y[int(len(y) * 0.75) :] = False
    with pytest.raises(TrainingError, match="holdout slice needs both"):
        train(rows.X, y, rows.t_ms, rows.kinds, tmp_path / "model", manifest={})
    assert not (tmp_path / "model").exists()
