"""Records → updates: setups, CDRs and verdicts are keyed by the caller identity decision reads."""

from __future__ import annotations

import pytest

from fraudmesh.v1 import call_pb2, events_pb2
from services.common.settings import load
from services.common.topics import AUDIO_VERDICTS, CALLS_CDR, CALLS_SETUP
from services.reputation.folding import Folding, RejectedRecordError
from services.reputation.numbers import CdrUpdate, SetupUpdate, VerdictUpdate
from services.reputation.settings import ReputationSettings

KEY = "ab" * 32
PAI = "<sip:+8613812345678@ims.example;user=phone>"
FROM = "010 8888 6666"  # a PBX's main number in From, the line's own number in PAI


@pytest.fixture(scope="module")
def folding() -> Folding:
    return Folding(load(ReputationSettings, {"FRAUDMESH_PSEUDONYM_KEY": KEY}))


def records(pai: str, calling: str, trunk: str = "trunk-ic-north") -> dict[str, bytes]:
    """One call's setup, CDR and audio verdict as the services publish them."""
    setup = events_pb2.CallSetupEvent(
        setup=call_pb2.CallSetup(
            call_id="c1",
            tenant="demo-cn",
            calling_number=calling,
            p_asserted_identity=pai,
            called_number="+8613900000001",
            ingress_trunk_id=trunk,
        )
    )
    cdr = events_pb2.Cdr(
        call_id="c1",
        tenant="demo-cn",
        calling_number=calling,
        p_asserted_identity=pai,
        ingress_trunk_id=trunk,
    )
    verdict = events_pb2.AudioVerdict(
        segment_id="s1",
        tenant="demo-cn",
        calling_number=calling,
        p_asserted_identity=pai,
        ingress_trunk_id=trunk,
    )
    return {
        "setup": CALLS_SETUP.codec().encode(setup),
        "cdr": CALLS_CDR.codec().encode(cdr),
        "verdict": AUDIO_VERDICTS.codec().encode(verdict),
    }


def callers(folding: Folding, pai: str, calling: str) -> set[str]:
    values = records(pai, calling)
    updates = (
        folding.setup(values["setup"], 0),
        folding.cdr(values["cdr"], 0),
        folding.verdict(values["verdict"], 0),
    )
    assert isinstance(updates[0], SetupUpdate)
    assert isinstance(updates[1], CdrUpdate)
    assert isinstance(updates[2], VerdictUpdate)
    return {updates[0].caller, updates[1].caller, updates[2].caller}


def test_a_call_is_folded_under_its_pai(folding: Folding) -> None:
    assert callers(folding, PAI, FROM) == {folding.pseudonymize("+8613812345678")}


def test_without_a_usable_pai_it_is_folded_under_from(folding: Folding) -> None:
    assert callers(folding, "", FROM) == {folding.pseudonymize("+861088886666")}
    assert callers(folding, "sip:anonymous@anonymous.invalid", FROM) == {
        folding.pseudonymize("+861088886666")
    }


@pytest.mark.parametrize("calling", ["", "anonymous", '"Anonymous" <sip:anonymous@anonymous.invalid>'])
def test_a_withheld_caller_is_folded_under_its_trunks_bucket(folding: Folding, calling: str) -> None:
    assert callers(folding, "", calling) == {folding.pseudonymize("WITHHELD:demo-cn/trunk-ic-north")}


@pytest.mark.parametrize(("pai", "calling"), [("", "call-me-maybe"), ("<sip:switchboard@pbx.example>", FROM)])
def test_an_invalid_caller_id_is_dead_lettered_with_a_stable_reason(
    folding: Folding, pai: str, calling: str
) -> None:
    for kind, value in records(pai, calling).items():
        fold = {"setup": folding.setup, "cdr": folding.cdr, "verdict": folding.verdict}[kind]
        with pytest.raises(RejectedRecordError) as caught:
            fold(value, 0)
        assert caught.value.reason == "invalid_calling_number"
        assert "8888" not in caught.value.detail
