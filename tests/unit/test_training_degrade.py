"""Degraded copies of training rows: one dependency's features missing, the rest untouched."""

from __future__ import annotations

import numpy as np

from services.common.features import FEATURES, WIDTH, Source
from training.degrade import Degradation, with_degraded


def test_copies_miss_exactly_one_dependencys_features_and_only_come_from_the_given_rows() -> None:
    X = np.arange(100 * WIDTH, dtype=np.float32).reshape(100, WIDTH)  # noqa: N806
    train_rows = np.arange(0, 70, dtype=np.int64)
    out, sources = with_degraded(X, train_rows, Degradation(reputation=0.1, origination=0.2), seed=7)
    assert out.shape == (100 + 7 + 14, WIDTH)
    assert np.array_equal(out[:100], X)
    assert set(sources.tolist()) <= set(train_rows.tolist())
    reputation = [i for i, f in enumerate(FEATURES) if f.source in (Source.REPUTATION, Source.AUDIO)]
    origination = [i for i, f in enumerate(FEATURES) if f.source is Source.ORIGINATION]
    context = [i for i, f in enumerate(FEATURES) if f.source is Source.CONTEXT]
    first = out[100:107]
    assert np.isnan(first[:, reputation]).all()
    assert not np.isnan(first[:, origination + context]).any()
    second = out[107:]
    assert np.isnan(second[:, origination]).all()
    assert not np.isnan(second[:, reputation + context]).any()
    assert np.array_equal(out[100:, context], X[sources][:, context])


def test_no_shares_no_copies() -> None:
    X = np.zeros((5, WIDTH), dtype=np.float32)  # noqa: N806
    out, sources = with_degraded(X, np.arange(5, dtype=np.int64), Degradation(0.0, 0.0), seed=1)
    assert out is X
    assert len(sources) == 0
