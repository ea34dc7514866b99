"""The default model shipped in the repository loads, fits the current feature schema and scores.

A fresh checkout scores calls with it before anything is trained; the decision service loads it by
``DEFAULT_MODEL_PATH``. A feature-schema change fails here until the model is retrained and shipped
again (``make model-default``).
"""

from __future__ import annotations

import json

import numpy as np

from services.common.features import SCHEMA_HASH, WIDTH, empty_vector
from services.common.reasons import REASONS
from services.scoring.artifact import METADATA
from services.scoring.model import DEFAULT_MODEL_PATH, Scorer

MAX_BYTES = 1024 * 1024


def test_default_model_is_shipped_small_and_documented() -> None:
    files = {path.name: path.stat().st_size for path in DEFAULT_MODEL_PATH.iterdir()}
    assert {"model.npz", "model.json", "model_card.md", "README.md"} <= set(files)
    assert sum(files.values()) < MAX_BYTES
    meta = json.loads((DEFAULT_MODEL_PATH / METADATA).read_text())
    assert meta["schema_hash"] == SCHEMA_HASH
    assert meta["schema_hash"] in (DEFAULT_MODEL_PATH / "README.md").read_text()
    assert meta["training_data"]["scenario"] == "default"


def test_default_model_loads_and_scores() -> None:
    scorer = Scorer.load(DEFAULT_MODEL_PATH)
    assert scorer.ready
    rows = np.random.default_rng(5).random((200, WIDTH)).astype(np.float32) * 10
    rows[::3, :] = np.nan
    batch = scorer.score_batch(rows)
    assert np.all((batch.probability >= 0) & (batch.probability <= 1))
    for row, raw in zip(rows[:20], batch.raw, strict=False):
        scored = scorer.score(row)
        assert scored.raw == raw
        assert set(scored.top_reasons) <= set(REASONS)
    unknown = scorer.score(empty_vector())
    assert 0.0 <= unknown.probability <= 1.0
