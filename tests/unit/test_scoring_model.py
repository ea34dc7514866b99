"""The Scorer the decision service loads: readiness, scores, reason codes and input checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from services.common.features import FEATURES, INDEX, WIDTH, empty_vector
from services.common.reasons import REASONS, Reason
from services.scoring import artifact
from services.scoring.artifact import ArtifactError, Calibration, IntegrityError
from services.scoring.model import REASON_OF, Scorer, positive_order, top_reasons
from tests.unit.test_scoring_kernels import adversarial_rows, model
from training import export


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    trained, _, _ = model("nan")
    built = export.from_booster(trained, Calibration(a=0.9, b=-1.0))
    return artifact.save(built, tmp_path_factory.mktemp("scorer") / "model")


def test_load_warms_before_ready(folder: Path) -> None:
    cold = Scorer.load(folder, warm=False)
    assert not cold.ready
    cold.warm()
    assert cold.ready
    assert Scorer.load(folder).ready


def test_scores_match_lightgbm_and_calibration(folder: Path) -> None:
    trained, forest, _ = model("nan")
    scorer = Scorer.load(folder)
    x = adversarial_rows(forest, 300, seed=11)
    expected = np.asarray(trained.predict(x, raw_score=True))
    batch = scorer.score_batch(x)
    assert np.array_equal(batch.raw, expected)
    assert np.array_equal(scorer.score_batch(x, parallel=True).raw, expected)
    assert np.allclose(batch.probability, 1.0 / (1.0 + np.exp(-(0.9 * expected - 1.0))), rtol=1e-12)
    for row, raw, probability in zip(x[:40], expected, batch.probability, strict=False):
        scored = scorer.score(row)
        assert scored.raw == raw
        assert scored.probability == probability
        assert scorer.raw(row) == raw
        quick = scorer.score(row, reasons=False)
        assert (quick.raw, quick.probability, quick.top_reasons) == (raw, probability, [])


def test_reasons_are_the_largest_positive_contributions_as_codes(folder: Path) -> None:
    _, forest, _ = model("nan")
    scorer = Scorer.load(folder)
    for row in adversarial_rows(forest, 50, seed=12):
        scored = scorer.score(row)
        contributions = scorer.contributions(row)
        assert scored.top_reasons == top_reasons(positive_order(contributions))
        assert len(scored.top_reasons) <= 3
        assert len(set(scored.top_reasons)) == len(scored.top_reasons)
        assert set(scored.top_reasons) <= set(REASONS)


def test_reason_mapping_dedupes_and_falls_back_to_model_score() -> None:
    assert all(code in REASONS for code in REASON_OF)
    velocity = [INDEX["calls_1h"], INDEX["calls_24h"], INDEX["complaints_7d"], INDEX["complaints_30d"]]
    no_code = [i for i, f in enumerate(FEATURES) if f.reason is None]
    assert top_reasons([INDEX["complaints_7d"], INDEX["complaints_30d"], no_code[0], *velocity]) == [
        "COMPLAINTS",
        Reason.MODEL_SCORE,
        "VELOCITY_1H_HIGH",
    ]
    assert top_reasons([]) == []
    contributions = np.zeros(WIDTH + 1)
    contributions[[3, 7]] = [0.5, 2.0]
    contributions[9] = -1.0
    contributions[WIDTH] = 10.0
    assert positive_order(contributions).tolist() == [7, 3]


def test_vectors_are_checked_and_converted(folder: Path) -> None:
    scorer = Scorer.load(folder)
    row = empty_vector()
    assert scorer.score(row.astype(np.float64)).raw == scorer.score(row).raw
    assert scorer.score(list(row)).raw == scorer.score(row).raw
    strided = np.repeat(row, 2)[::2]
    assert scorer.score(strided).raw == scorer.score(row).raw
    with pytest.raises(ValueError, match="shape"):
        scorer.score(np.zeros(WIDTH - 1, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        scorer.score_batch(np.zeros((3, WIDTH + 1), dtype=np.float32))
    assert scorer.score_batch(np.zeros((0, WIDTH), dtype=np.float32)).raw.shape == (0,)


def test_reasons_only_above_the_threshold(folder: Path) -> None:
    _, forest, _ = model("nan")
    scorer = Scorer.load(folder)
    cold = Scorer.load(folder, warm=False)
    rows = adversarial_rows(forest, 60, seed=13)
    cut = float(np.median(scorer.score_batch(rows).probability))
    for row in rows:
        full = scorer.score(row)
        gated = scorer.score(row, reasons_above=cut)
        assert (gated.raw, gated.probability) == (full.raw, full.probability)
        assert gated.top_reasons == (full.top_reasons if full.probability > cut else [])
        assert cold.score(row) == full
    assert scorer.score(rows[0], reasons_above=0.0) == scorer.score(rows[0])
    assert scorer.score(rows[0], reasons_above=1.0).top_reasons == []


def test_readonly_and_unaligned_rows_are_copied(folder: Path) -> None:
    scorer = Scorer.load(folder)
    row = empty_vector()
    frozen = row.copy()
    frozen.flags.writeable = False
    assert scorer.score(frozen) == scorer.score(row)
    buffer = np.zeros(WIDTH * 4 + 1, dtype=np.uint8)
    unaligned = np.frombuffer(buffer[1:].tobytes(), dtype=np.float32)
    assert scorer.score(unaligned).raw == scorer.score(np.zeros(WIDTH, np.float32)).raw


def test_load_refuses_an_artifact_that_does_not_match_its_manifest(folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    meta = json.loads((copy / artifact.METADATA).read_text())
    meta["forest_sha256"] = "0" * 12
    (copy / artifact.METADATA).write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match="forest_sha256"):
        Scorer.load(copy)
    (copy / artifact.ARRAYS).write_bytes((folder / artifact.ARRAYS).read_bytes()[:100])
    with pytest.raises(ArtifactError, match="truncated"):
        Scorer.load(copy, warm=False)
