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
from training.train import (
    LEGIT_FP_RATES,
    FeatureSet,
    TrainingError,
    fit_platt,
    load_features,
    operating_points,
    save_features,
    split_by_time,
    train,
)


def test_split_is_by_time_without_shuffling_and_never_splits_a_timestamp() -> None:
    rng = np.random.default_rng(0)
    t_ms = rng.integers(0, 500, size=2000).astype(np.int64)
    split = split_by_time(t_ms)
    parts = [split.train, split.calibration, split.holdout]
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(t_ms)))
    for part in parts:
        assert np.all(np.diff(t_ms[part]) >= 0)
    assert t_ms[split.train].max() < t_ms[split.calibration].min()
    assert t_ms[split.calibration].max() < t_ms[split.holdout].min()
    assert abs(len(split.train) - 1400) < 20
    assert abs(len(split.holdout) - 400) < 20


def test_platt_recovers_a_logistic_model() -> None:
    rng = np.random.default_rng(1)
    raw = rng.normal(scale=3.0, size=200_000)
    y = rng.random(len(raw)) < 1.0 / (1.0 + np.exp(-(0.6 * raw - 2.0)))
    fitted = fit_platt(raw, y)
    assert fitted.a == pytest.approx(0.6, rel=0.03)
    assert fitted.b == pytest.approx(-2.0, rel=0.03)
    with pytest.raises(TrainingError):
        fit_platt(-raw, y)


def test_operating_points_bound_legit_flags_and_say_when_they_mean_little() -> None:
    rng = np.random.default_rng(2)
    legit, fraud = rng.normal(size=50_000), rng.normal(loc=3.0, size=2000)
    raw = np.concatenate([legit, fraud])
    y = np.concatenate([np.zeros(len(legit), bool), np.ones(len(fraud), bool)])
    points = operating_points(raw, y, artifact.IDENTITY)
    assert [p.target_fp_rate for p in points] == list(LEGIT_FP_RATES)
    for p in points:
        assert p.legit_flagged <= p.target_fp_rate * p.legit_total
        assert p.legit_flagged == int((legit > p.raw_threshold).sum())
        assert p.recall == pytest.approx(float((fraud > p.raw_threshold).mean()))
    assert [p.meaningful for p in points] == [False, True, True]
    assert "indicative" in points[0].note
    tiny = operating_points(raw[-2100:], y[-2100:], artifact.IDENTITY)
    assert not tiny[0].meaningful
    assert "cannot resolve" in tiny[0].note
    assert tiny[0].legit_flagged == 0


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
    assert loaded.metadata["training_data"] == {"synthetic": True, "rows": 30_000}
    assert loaded.metadata["params"]["monotone_constraints"][3] == -1
    assert loaded.calibration.a > 0
    text = (trained / card.CARD).read_text()
    assert "PLACEHOLDER MODEL" in text
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
