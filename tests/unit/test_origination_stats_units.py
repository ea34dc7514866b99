"""Pure parts of origination's service and statistics: DNO lists, pre-warm files, ring counts, surges."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudmesh.v1 import call_pb2, common_pb2
from services.common.windows import ring_count
from services.origination.callerid import TenantRules, check_caller_id, load_dno
from services.origination.shared import read_prewarm_file
from services.origination.stats import STATS_1H, STATS_24H, Counts, Outcome

HOUR_MS = 3_600_000


def test_dno_list_numbers_and_blocks() -> None:
    dno = load_dno(["# bank inbound lines", "010 9558 8", "+86400*", ""], "CN")
    rules = TenantRules(region="CN", dno=dno)

    def codes(caller: str) -> tuple[str, ...]:
        setup = call_pb2.CallSetup(
            calling_number=caller,
            called_number="+8613912345678",
            ingress_kind=common_pb2.INGRESS_KIND_VOIP_PEER,
        )
        return check_caller_id(setup, rules).reason_codes

    assert "DNO_LISTED" in codes("+86 10 95588")
    assert "DNO_LISTED" in codes("+86 400 123 4567")
    assert "DNO_LISTED" not in codes("+86 137 0000 1111")


@pytest.mark.parametrize("line", ["not a number", "+86abc*", "86400*"])
def test_dno_list_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(ValueError, match="DNO line 1"):
        load_dno([line], "CN")


def test_prewarm_file(tmp_path: Path) -> None:
    listing = tmp_path / "prewarm.txt"
    listing.write_text("# comment\nhttps://a.example/x.pem\n\nhttps://b.example/y.pem chains/y.pem # local\n")
    fetch, local = read_prewarm_file(listing)
    assert fetch == ["https://a.example/x.pem"]
    assert local == [("https://b.example/y.pem", tmp_path / "chains" / "y.pem")]
    listing.write_text("one two three\n")
    with pytest.raises(ValueError, match=":1:"):
        read_prewarm_file(listing)


def test_ring_count_reads_only_live_buckets() -> None:
    now = 100 * HOUR_MS + 5
    held = {
        f"nd{100 % 24}": "100:3",  # this hour
        f"nd{99 % 24}": b"99:2",  # last hour, bytes as redis returns them
        f"nd{70 % 24}": "70:9",  # an old bucket in a reused slot: ignored
    }
    assert ring_count(held, STATS_24H, now, "n") == 5
    assert ring_count(held, STATS_1H, now, "n") == 0


def _counts(hour: dict[Outcome, int], day: dict[Outcome, int]) -> Counts:
    return Counts({o: hour.get(o, 0) for o in Outcome}, {o: day.get(o, 0) for o in Outcome})


def test_onnet_surge_compares_the_hour_with_the_rest_of_the_day() -> None:
    sudden = _counts(
        {Outcome.CALLS: 40, Outcome.ONNET_OFFNET: 20}, {Outcome.CALLS: 1000, Outcome.ONNET_OFFNET: 20}
    )
    steady = _counts(
        {Outcome.CALLS: 40, Outcome.ONNET_OFFNET: 20}, {Outcome.CALLS: 1000, Outcome.ONNET_OFFNET: 500}
    )
    quiet = _counts({Outcome.CALLS: 5, Outcome.ONNET_OFFNET: 5}, {Outcome.CALLS: 5, Outcome.ONNET_OFFNET: 5})
    assert sudden.onnet_surge()
    assert not steady.onnet_surge()
    assert not quiet.onnet_surge(), "too few calls to judge"
    assert sudden.share(Outcome.ONNET_OFFNET, last_hour=True) == 0.5
    assert _counts({}, {}).share(Outcome.UNSIGNED) is None
