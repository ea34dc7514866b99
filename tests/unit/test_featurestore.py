"""The reputation read covers the schema: every hash field is read and parsed, every feature filled.

Adding a reputation or audio feature touches ``services.common.featurestore`` (and the fold that
computes its state); these tests fail on the step that was forgotten, without Redis.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from services.common import features
from services.common.featurestore import NUM_FIELDS, READ_FEATURES, RINGS, ReputationRead, fill, parse

RING_FIELDS = (
    "calls_1m",
    "calls_1h",
    "calls_24h",
    "complaints_30d",
    "complaints_7d",
    "fraud_complaints_30d",
    "honeypot_hits_30d",
)
TAIL_FIELDS = ("distinct_1h", "distinct_24h", "callee_called_caller", "caller_called_callee")
NOW_MS = 1_800_000_000_000


def _reply() -> list[bytes]:
    """A read script reply whose every position holds a different non-zero value."""
    width = len(NUM_FIELDS) + len(RINGS) + len(TAIL_FIELDS)
    return [str(100 + i).encode() for i in range(width)]


def test_the_script_reads_every_hash_field_into_a_record_field() -> None:
    assert f"local NUM_FIELDS = {{{', '.join(repr(name) for name in NUM_FIELDS)}}}" in READ_FEATURES
    record_fields = [f.name for f in dataclasses.fields(ReputationRead)]
    assert record_fields == ["seen", *NUM_FIELDS, *RING_FIELDS, *TAIL_FIELDS]
    assert len(RINGS) == len(RING_FIELDS)


def test_parse_puts_each_reply_position_in_its_own_field() -> None:
    reply = _reply()
    read = parse(reply)
    assert read.seen
    positions = [*NUM_FIELDS, *RING_FIELDS, *TAIL_FIELDS]
    for name, raw in zip(positions, reply, strict=True):
        value = getattr(read, name)
        assert value == (bool(int(raw)) if isinstance(value, bool) else int(raw)), name


def test_fill_writes_every_reputation_and_audio_feature_and_nothing_else() -> None:
    vector = features.empty_vector()
    fill(vector, parse(_reply()), NOW_MS)
    filled = {features.NAMES[i] for i in np.flatnonzero(~np.isnan(vector))}
    wanted = {f.name for f in (*features.by_source(features.REP), *features.by_source(features.AUD))}
    assert filled == wanted


def test_a_number_never_seen_reads_as_zero_counts_not_unknown() -> None:
    read = parse([b""] * len(NUM_FIELDS) + [b"0"] * (len(RINGS) + len(TAIL_FIELDS)))
    assert not read.seen
    vector = features.empty_vector()
    fill(vector, read, NOW_MS)
    assert vector[features.INDEX["number_age_s"]] == 0.0
    assert vector[features.INDEX["calls_24h"]] == 0.0
    assert np.isnan(vector[features.INDEX["answer_ratio"]])
    assert np.isnan(vector[features.INDEX["synthetic_voice"]])
