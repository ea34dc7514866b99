"""The holdout chooses nothing: its labels never move a threshold, the calibration or the block threshold;
a validation slice large enough yields a block threshold that ships in model.json and loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from services.scoring import artifact
from services.scoring.artifact import ArtifactError
from training import card, synthetic
from training.evaluation import BLOCK_LEGIT_RATE, wilson
from training.train import split_by_time, train

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


def trained(rows: synthetic.Rows, y: np.ndarray, out: Path, **options: Any) -> dict[str, Any]:
    train(rows.X, y, rows.t_ms, rows.kinds, out, manifest={"synthetic": True}, console=QUIET, **options)
    meta: dict[str, Any] = json.loads((out / artifact.METADATA).read_text())
    return meta


def choices(meta: dict[str, Any]) -> dict[str, Any]:
    """Everything the validation slice decides."""
    metrics = meta["metrics"]
    return {
        "forest": meta["forest_sha256"],
        "calibration": meta["calibration"],
        "block_threshold": meta.get("block_threshold"),
        "best_iteration": metrics["best_iteration"],
        "prior": metrics["calibration"]["deployment_prior"],
        "points": [
            (p["raw_threshold"], p["probability_threshold"], p["validation_legit"])
            for p in metrics["operating_points"]
        ],
        "block": metrics["block"]["validation_legit"],
    }


def test_changing_the_holdouts_labels_changes_its_figures_and_no_choice(tmp_path: Path) -> None:
    rows = synthetic.generate(30_000, seed=11)
    hold = split_by_time(rows.t_ms).holdout
    relabelled = rows.y.copy()
    relabelled[hold] = np.random.default_rng(0).random(len(hold)) < 0.5
    first = trained(rows, rows.y, tmp_path / "a", trees=40, depth=4)
    second = trained(rows, relabelled, tmp_path / "b", trees=40, depth=4)
    assert choices(first) == choices(second)
    assert first["metrics"]["slices"]["holdout"] != second["metrics"]["slices"]["holdout"]
    assert [p["recall"] for p in first["metrics"]["operating_points"]] != [
        p["recall"] for p in second["metrics"]["operating_points"]
    ]
    shift = second["metrics"]["calibration"]
    assert any(w.startswith("calibration:") for w in second["metrics"]["warnings"])
    assert shift["holdout_unwanted_share"]["rate"] == pytest.approx(0.5, abs=0.02)


@pytest.fixture(scope="module")
def blocking(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = synthetic.generate(250_000, seed=12)
    out = tmp_path_factory.mktemp("blocking") / "model"
    trained(rows, rows.y, out, trees=30, depth=5)
    return out


def test_a_large_validation_slice_yields_a_block_threshold_in_the_artifact(blocking: Path) -> None:
    loaded = artifact.load(blocking)
    threshold = loaded.metadata["block_threshold"]
    block = loaded.metadata["metrics"]["block"]
    assert 0.0 < threshold <= 1.0
    assert block["probability_threshold"] == threshold
    chosen = block["validation_legit"]
    assert chosen["total"] >= 38_411
    assert wilson(chosen["count"], chosen["total"])[1] <= BLOCK_LEGIT_RATE
    assert block["holdout_legit"]["total"] > 0
    legit_rows = [row for row in loaded.metadata["metrics"]["per_kind"] if row["legit"]]
    assert sum(row["legit"]["blocked"]["count"] for row in legit_rows) == block["holdout_legit"]["count"]
    text = (blocking / card.CARD).read_text()
    assert f"calibrated probability ≥ {threshold:.6g}" in text


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, "0.9", True, float("nan")])
def test_an_unusable_block_threshold_is_refused(blocking: Path, tmp_path: Path, bad: object) -> None:
    copy = tmp_path / "model"
    shutil.copytree(blocking, copy)
    meta = json.loads((copy / artifact.METADATA).read_text())
    meta["block_threshold"] = bad
    (copy / artifact.METADATA).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="block_threshold"):
        artifact.load(copy)
    del meta["block_threshold"]
    (copy / artifact.METADATA).write_text(json.dumps(meta))
    assert "block_threshold" not in artifact.load(copy).metadata
