"""The feature schema is consistent: unique names, known reason codes, a stable hash."""

from __future__ import annotations

import numpy as np

from services.common import features
from services.common.reasons import REASONS


def test_names_are_unique_and_indexed() -> None:
    assert len(set(features.NAMES)) == features.WIDTH
    assert all(features.INDEX[name] == i for i, name in enumerate(features.NAMES))


def test_reason_codes_are_documented() -> None:
    for feature in features.FEATURES:
        assert feature.reason is None or feature.reason in REASONS, feature.name
        assert feature.monotone in (-1, 0, 1)
        assert feature.description


def test_hash_is_stable_and_short() -> None:
    assert len(features.SCHEMA_HASH) == 16
    assert features._schema_hash() == features.SCHEMA_HASH


def test_empty_vector_is_all_unknown() -> None:
    vector = features.empty_vector()
    assert vector.dtype == np.float32
    assert vector.shape == (features.WIDTH,)
    assert np.isnan(vector).all()


def test_every_source_fills_something() -> None:
    for source in features.Source:
        assert features.by_source(source)
