"""Audio verdicts → updates: the pseudonyms another service sends are checked, never trusted."""

from __future__ import annotations

import pytest

from fraudmesh.v1 import events_pb2
from services.common.settings import load
from services.common.topics import AUDIO_VERDICTS
from services.reputation.folding import Folding, RejectedRecordError
from services.reputation.numbers import VerdictUpdate
from services.reputation.settings import ReputationSettings

KEY = "cd" * 32


@pytest.fixture(scope="module")
def folding() -> Folding:
    return Folding(load(ReputationSettings, {"FRAUDMESH_PSEUDONYM_KEY": KEY}))


def verdict(*earlier: str) -> bytes:
    record = events_pb2.AudioVerdict(
        segment_id="s1",
        tenant="demo-cn",
        calling_number="+8613812345678",
        campaign_ids=["ac-abc"],
        earlier_member_pseudonyms=list(earlier),
    )
    return AUDIO_VERDICTS.codec().encode(record)


def test_earlier_members_of_a_discovered_campaign_are_carried(folding: Folding) -> None:
    members = (folding.pseudonymize("+8613900000001"), folding.pseudonymize("+8613900000002"))
    update = folding.verdict(verdict(*members), 0)
    assert isinstance(update, VerdictUpdate)
    assert update.earlier_members == members
    assert update.campaign_ids == ("ac-abc",)


@pytest.mark.parametrize("bad", ["+8613900000001", "13900000001", "A" * 26, "x" * 27, ""])
def test_anything_but_a_pseudonym_is_dead_lettered(folding: Folding, bad: str) -> None:
    with pytest.raises(RejectedRecordError) as caught:
        folding.verdict(verdict(bad), 0)
    assert caught.value.reason == "invalid_earlier_member_pseudonyms"
    assert bad not in caught.value.detail or not bad
