"""The traffic simulator against its scenario: volumes, behaviour, rotation, signatures, truth."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from fraudmesh.v1 import call_pb2, common_pb2, dataset_pb2, events_pb2
from loadtest.scenario import Complaints, load
from loadtest.simulate import (
    HOUR_WEIGHTS_BUSINESS,
    Simulation,
    simulate,
    trunk_id,
    write_dataset,
)
from loadtest.stipki import decode_identity_header
from services.common.emergency import is_emergency_call
from services.common.identity import attribute_record, attribute_setup, is_withheld
from services.common.phone import InvalidNumberError, normalize
from training.dataset import CALLS, EVENTS, NUMBERS, UNWANTED_KINDS, Manifest, read_records

K = dataset_pb2.ActorKind


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(load("ci"))


@pytest.fixture(scope="module")
def dataset(sim: Simulation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ci")
    write_dataset(sim, folder)
    return folder


def of_actors(sim: Simulation, prefix: str) -> np.ndarray:
    """Calls whose actor id starts with ``prefix`` (e.g. "call-centre-", "outbound-", "campaign-")."""
    names = np.array([n.startswith(prefix) for n in sim.names] + [False])
    return np.asarray(names[np.where(sim.calls.actor >= 0, sim.calls.actor, -1)])


def window_share(sim: Simulation, weights: np.ndarray) -> float:
    """The share of a day's weight that falls inside the scenario window."""
    s = sim.scenario
    start_hour = s.start_ms / 3_600_000 + s.utc_offset_hours
    minutes = np.arange(int(s.duration_ms // 60_000))
    hours = ((start_hour + minutes / 60) % 24).astype(int)
    return float(weights[hours].sum() / (weights.sum() * 60))


def test_same_seed_same_stream(sim: Simulation, dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_dataset(simulate(load("ci")), again)
    first, second = Manifest.read(dataset), Manifest.read(again)
    assert first.files == second.files
    assert first.counts == second.counts


def test_another_seed_another_stream(sim: Simulation) -> None:
    other = simulate(dataclasses.replace(sim.scenario, seed=sim.scenario.seed + 1))
    assert not np.array_equal(other.calls.caller[:100], sim.calls.caller[:100])


def test_calls_are_time_ordered_inside_the_window(sim: Simulation) -> None:
    t = sim.calls.t
    assert np.all(np.diff(t) >= 0)
    assert t[0] >= sim.scenario.start_ms
    assert t[-1] < sim.scenario.start_ms + sim.scenario.duration_ms


def test_robocall_volume_matches_the_scenario(sim: Simulation) -> None:
    rc = sim.scenario.robocalls
    expected = rc.campaigns * rc.calls_per_day * window_share(sim, HOUR_WEIGHTS_BUSINESS)
    got = int(of_actors(sim, "campaign-").sum())
    assert abs(got - expected) < 5 * np.sqrt(expected), (got, expected)


@pytest.mark.parametrize(
    ("actor", "rate"),
    [
        ("campaign-", "robocalls"),
        ("adaptive-", "adaptive"),
        ("courier-", "couriers"),
        ("call-centre-", "call_centres"),
        ("outbound-", "outbound"),
    ],
)
def test_answer_rates_match_the_scenario(sim: Simulation, actor: str, rate: str) -> None:
    s = sim.scenario
    section = getattr(s, rate) if rate in ("robocalls", "adaptive") else getattr(s.legit, rate)
    configured = section.answer_rate
    mask = of_actors(sim, actor) & (sim.calls.script >= 0 if rate == "adaptive" else True)
    n = int(mask.sum())
    observed = float(sim.calls.answered[mask].mean())
    assert abs(observed - configured) < 4 * np.sqrt(configured * (1 - configured) / n) + 0.01


def test_robocalls_are_short_and_subscribers_talk_longer(sim: Simulation) -> None:
    c = sim.calls
    robo = c.duration_ms[of_actors(sim, "campaign-") & c.answered].mean() / 1000
    people = c.duration_ms[(c.kind == K.ACTOR_KIND_SUBSCRIBER) & c.answered].mean() / 1000
    assert abs(robo - sim.scenario.robocalls.mean_duration_s) < 0.25 * sim.scenario.robocalls.mean_duration_s
    assert people > 4 * robo


def test_robocall_pools_rotate(sim: Simulation) -> None:
    rc = sim.scenario.robocalls
    c = sim.calls
    pools: dict[tuple[int, int], set[int]] = defaultdict(set)
    slot_ms = int(rc.rotation_minutes * 60_000)
    robo = np.flatnonzero(of_actors(sim, "campaign-"))
    for i in robo:
        pools[(int(c.campaign[i]), int((c.t[i] - sim.scenario.start_ms) // slot_ms))].add(int(c.caller[i]))
    # Location-masked calls add one fresh local number each; the pool part is bounded per slot.
    masked_share = rc.location_masking_share
    for (campaign, slot), numbers in pools.items():
        calls_in_slot = sum(
            1
            for i in robo
            if c.campaign[i] == campaign and (c.t[i] - sim.scenario.start_ms) // slot_ms == slot
        )
        assert len(numbers) <= rc.active_numbers + calls_in_slot * (masked_share + 0.2)
    campaign = int(c.campaign[robo[0]])
    slots = sorted(slot for (cmp, slot) in pools if cmp == campaign)
    assert len(slots) >= 2
    assert pools[(campaign, slots[0])] != pools[(campaign, slots[1])]


def test_contacts_dominate_subscriber_calls(sim: Simulation) -> None:
    pop = sim.population
    c = sim.calls
    subs = np.flatnonzero((c.kind == K.ACTOR_KIND_SUBSCRIBER) & (c.actor < 0))  # people abroad are not in it
    subs = subs[~c.honeypot[subs]]  # wrong numbers
    index_of = {int(n): i for i, n in enumerate(pop.numbers)}
    index_of |= {int(n): i for i, n in enumerate(pop.new_numbers) if n}
    hits = 0
    for i in subs:
        caller, callee = index_of[int(c.caller[i])], index_of[int(c.callee[i])]
        contacts = set(pop.contacts[pop.contacts_indptr[caller] : pop.contacts_indptr[caller + 1]].tolist())
        back = set(pop.contacts[pop.contacts_indptr[callee] : pop.contacts_indptr[callee + 1]].tolist())
        hits += callee in contacts or caller in back
    assert hits / len(subs) > 0.75


def test_spoofers_present_what_their_technique_says(sim: Simulation) -> None:
    c = sim.calls
    home = set(sim.population.numbers[sim.population.home].tolist())
    neighbor = c.kind == K.ACTOR_KIND_NEIGHBOR_SPOOFER
    assert np.all(c.caller[neighbor] // 10**4 == c.callee[neighbor] // 10**4)
    onnet = np.flatnonzero(c.kind == K.ACTOR_KIND_ONNET_SPOOFER)
    assert all(int(c.caller[i]) in home for i in onnet)
    assert np.all(c.ingress[onnet] != common_pb2.INGRESS_KIND_ON_NET)
    intl = c.kind == K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER
    assert np.all(c.ingress[intl] == common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY)
    assert np.all(c.caller[intl] // 10**11 == 86)
    for number in c.caller[c.kind == K.ACTOR_KIND_INVALID_NUMBER_SPOOFER][:200].tolist():
        with pytest.raises(InvalidNumberError):
            normalize(f"+{number}", "CN")
    assert np.all(c.spoofed[np.isin(c.kind, list(UNWANTED_KINDS - {K.ACTOR_KIND_ROBOCALL}))])


def test_impersonators_present_a_contact_of_the_victim(sim: Simulation) -> None:
    pop = sim.population
    c = sim.calls
    index_of = {int(n): i for i, n in enumerate(pop.numbers)}
    rows = np.flatnonzero(c.kind == K.ACTOR_KIND_AI_IMPERSONATOR)
    assert len(rows) > 0
    for i in rows:
        victim, presented = index_of[int(c.callee[i])], index_of[int(c.caller[i])]
        assert presented in pop.contacts[pop.contacts_indptr[victim] : pop.contacts_indptr[victim + 1]]
    assert np.all(c.synthetic[rows])
    assert np.all(c.ingress[rows] != common_pb2.INGRESS_KIND_ON_NET)


def test_legitimate_numbers_are_valid(sim: Simulation) -> None:
    c = sim.calls
    legit = np.flatnonzero(~np.isin(c.kind, [*UNWANTED_KINDS, K.ACTOR_KIND_EMERGENCY]))
    for i in legit[:: max(1, len(legit) // 800)]:
        assert normalize(f"+{int(c.caller[i])}", "CN").valid


def test_emergency_calls_go_to_emergency_numbers(sim: Simulation) -> None:
    c = sim.calls
    rows = c.kind == K.ACTOR_KIND_EMERGENCY
    assert rows.sum() > 0
    dialled = {str(-int(x)) for x in c.callee[rows]}
    assert dialled <= set(sim.scenario.network.emergency_numbers)


def _verify(header: str, chain: dict[str, x509.Certificate], root: x509.Certificate) -> dict[str, object]:
    parsed = decode_identity_header(header)
    leaf = chain[parsed.header["x5u"]]
    r = int.from_bytes(parsed.signature[:32], "big")
    s = int.from_bytes(parsed.signature[32:], "big")
    public = leaf.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(encode_dss_signature(r, s), parsed.signing_input, ec.ECDSA(hashes.SHA256()))
    return parsed.claims


def test_signed_setups_verify_with_the_generated_chain(sim: Simulation, dataset: Path) -> None:
    root = x509.load_pem_x509_certificate((dataset / "pki" / "sti-ca.pem").read_bytes())
    chain: dict[str, x509.Certificate] = {}
    for carrier in sim.pki.carriers.values():
        leaf, intermediate = x509.load_pem_x509_certificates(carrier.chain_pem)
        leaf.verify_directly_issued_by(intermediate)
        intermediate.verify_directly_issued_by(root)
        chain[carrier.x5u] = leaf
    truth = {r.call_truth.call_id: r.call_truth for r in read_records(dataset / CALLS)}
    signed = unsigned = skewed = 0
    for record in read_records(dataset / EVENTS):
        if record.WhichOneof("record") != "setup":
            continue
        setup = record.setup.setup
        if not setup.identity_headers:
            unsigned += 1
            continue
        signed += 1
        if signed % 7:
            continue
        claims = _verify(setup.identity_headers[0], chain, root)
        call = truth[setup.call_id]
        assert "+" + str(claims["orig"]["tn"]) == call.presented_number  # type: ignore[index]
        # A signer's clock is occasionally minutes off (network.clock_skew_share): stale PASSporTs.
        drift = abs(int(claims["iat"]) - setup.event_time.seconds)  # type: ignore[call-overload]
        assert drift == 0 or 120 <= drift < 900
        skewed += drift > 0
        assert claims["attest"] in {"A", "B", "C"}
    assert signed > 0
    assert unsigned > 0
    assert skewed < 0.02 * signed / 7 + 3


def test_unsigned_carriers_never_sign(sim: Simulation) -> None:
    open_carriers = {i for i, carrier in enumerate(sim.carriers) if not carrier.signs}
    assert open_carriers
    assert not (set(sim.pki.carriers) & {sim.carriers[i].name for i in open_carriers})


def test_ground_truth_matches_the_events(sim: Simulation, dataset: Path) -> None:
    truth = {r.call_truth.call_id: r.call_truth for r in read_records(dataset / CALLS)}
    kinds: Counter[str] = Counter()
    setups = cdrs = 0
    for record in read_records(dataset / EVENTS):
        kind = record.WhichOneof("record")
        kinds[kind or ""] += 1
        if kind == "setup":
            setups += 1
            call = truth[record.setup.setup.call_id]
            if setups % 11 == 0 and call.actor_kind != K.ACTOR_KIND_INVALID_NUMBER_SPOOFER:
                assert attribute_setup(record.setup.setup, "CN").key == call.presented_number
            assert call.setup_time_ms == record.time_ms
        elif kind == "cdr":
            cdrs += 1
            call = truth[record.cdr.call_id]
            if cdrs % 11 == 0 and call.actor_kind != K.ACTOR_KIND_INVALID_NUMBER_SPOOFER:
                assert attribute_record(record.cdr, "CN").key == call.presented_number
        elif kind == "complaint":
            assert truth[record.complaint.call_id].presented_number == record.complaint.reported_number
    assert setups == cdrs == len(truth) == len(sim.calls)
    for call in truth.values():
        assert call.unwanted == (call.actor_kind in UNWANTED_KINDS)
    numbers = [r.number_truth for r in read_records(dataset / NUMBERS)]
    assert sum(n.calls for n in numbers) == len(truth)
    unwanted_numbers = {n.number for n in numbers if n.unwanted}
    assert unwanted_numbers == {c.presented_number for c in truth.values() if c.unwanted}


def test_records_are_time_ordered(dataset: Path) -> None:
    last = 0
    for record in read_records(dataset / EVENTS):
        assert record.time_ms >= last
        last = record.time_ms


def test_manifest_describes_the_files(dataset: Path) -> None:
    manifest = Manifest.read(dataset)
    manifest.verify(dataset)
    assert manifest.scenario == "ci"
    assert manifest.counts["calls"] == manifest.counts["setups"]
    assert json.loads((dataset / "manifest.json").read_text())["seed"] == manifest.seed
    for pem in (dataset / "pki").glob("*.pem"):
        assert b"PRIVATE KEY" not in pem.read_bytes()


def _status(sim: Simulation, rows: np.ndarray) -> Counter[str]:
    """How calls arrive: the attestation they carry ('-' when their carrier does not sign)."""
    c = sim.calls
    signs = np.array([carrier.signs for carrier in sim.carriers])
    return Counter("-" if not signs[c.carrier[i]] else "-ABC"[c.attest[i]] for i in rows)


def test_legit_traffic_is_not_all_a_attested(sim: Simulation) -> None:
    c = sim.calls
    legit = ~np.isin(c.kind, [*UNWANTED_KINDS, K.ACTOR_KIND_EMERGENCY])
    intl = np.flatnonzero(legit & (c.ingress == common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY))
    assert _status(sim, intl).keys() == {"-", "C"}
    roaming = intl[c.kind[intl] == K.ACTOR_KIND_SUBSCRIBER]
    domestic = [n for n in c.caller[roaming].tolist() if n // 10**11 == 86]
    foreign = [n for n in c.caller[roaming].tolist() if n // 10**11 != 86]
    assert domestic, "roaming subscribers present their own domestic numbers over the gateway"
    assert foreign, "people abroad call home subscribers they know"
    for number in foreign[:100]:
        assert normalize(f"+{number}", "CN").valid
    centres = np.flatnonzero(c.kind == K.ACTOR_KIND_CALL_CENTRE)
    arrivals = _status(sim, centres)
    assert arrivals["B"] > 0
    assert arrivals["A"] == 0
    assert np.any(c.ingress[centres] == common_pb2.INGRESS_KIND_VOIP_PEER)


def test_some_unwanted_traffic_carries_good_attestation(sim: Simulation) -> None:
    c = sim.calls
    robo = _status(sim, np.flatnonzero(c.kind == K.ACTOR_KIND_ROBOCALL))
    assert robo["A"] > 0.05 * sum(robo.values())
    spoofers = np.isin(c.kind, [K.ACTOR_KIND_NEIGHBOR_SPOOFER, K.ACTOR_KIND_ONNET_SPOOFER])
    signed = _status(sim, np.flatnonzero(spoofers))
    assert signed["B"] > 0
    assert signed["C"] > 0


def _setups(dataset: Path) -> list[tuple[dataset_pb2.CallTruth, call_pb2.CallSetup]]:
    truth = {r.call_truth.call_id: r.call_truth for r in read_records(dataset / CALLS)}
    return [
        (truth[r.setup.setup.call_id], r.setup.setup)
        for r in read_records(dataset / EVENTS)
        if r.WhichOneof("record") == "setup"
    ]


def test_trunks_inside_the_trust_domain_assert_the_caller_in_e164(sim: Simulation, dataset: Path) -> None:
    asserting = {trunk_id(c) for c in sim.carriers if c.sends_pai}
    assert {"trunk-home", "trunk-ic-north", "trunk-ic-south"} <= asserting
    assert not {"trunk-gw-intl", "trunk-gw-signed", "trunk-voip-open"} & asserting
    seen: Counter[tuple[bool, int]] = Counter()
    for call, setup in _setups(dataset):
        if setup.ingress_trunk_id in asserting:
            assert setup.p_asserted_identity
            assert (
                normalize(setup.p_asserted_identity, "ZZ", allow_unallocated=True).e164
                == call.presented_number
            )
        else:
            assert not setup.p_asserted_identity
        seen[(bool(setup.p_asserted_identity), setup.ingress_kind)] += 1
    assert seen[(True, common_pb2.INGRESS_KIND_ON_NET)] > 0
    assert seen[(True, common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT)] > 0
    assert seen[(False, common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY)] > 0
    assert seen[(False, common_pb2.INGRESS_KIND_VOIP_PEER)] > 0


def test_pbx_extensions_present_their_ddi_in_from_and_the_main_number_in_pai(
    sim: Simulation, dataset: Path
) -> None:
    c = sim.calls
    centre = of_actors(sim, "call-centre-")
    extensions = np.flatnonzero(centre & (c.from_number > 0))
    centres = int(centre.sum())
    assert 0.3 * centres < len(extensions) < 0.7 * centres  # ci: pbx_share 0.5
    assert np.all(c.from_number[extensions] // 100 == c.caller[extensions] // 100)
    differ = 0
    asserted: set[str] = set()
    for call, setup in _setups(dataset):
        if not call.actor_id.startswith("call-centre-") or not setup.p_asserted_identity:
            continue
        asserted.add(call.presented_number)
        from_ = normalize(setup.calling_number, "CN").canonical
        if from_ != call.presented_number:
            differ += 1
            assert from_[:-2] == call.presented_number[:-2]
    assert differ > 0
    centres_config = sim.scenario.legit.call_centres
    assert len(asserted) <= centres_config.count * centres_config.numbers_each, "one reputation per line"


def test_withheld_callers_are_attributed_by_pai_or_to_their_trunks_bucket(
    sim: Simulation, dataset: Path
) -> None:
    withheld = asserted = buckets = 0
    for call, setup in _setups(dataset):
        if not is_withheld(setup.calling_number):
            continue
        withheld += 1
        assert setup.calling_number == '"Anonymous" <sip:anonymous@anonymous.invalid>'
        if setup.p_asserted_identity:
            asserted += 1
            assert call.presented_number.startswith("+")
        else:
            buckets += 1
            assert call.presented_number == f"WITHHELD:demo-cn/{setup.ingress_trunk_id}"
            assert not setup.identity_headers
    assert asserted > 0
    assert buckets > 0
    assert withheld < 0.05 * len(sim.calls)
    numbers = {r.number_truth.number for r in read_records(dataset / NUMBERS)}
    assert any(n.startswith("WITHHELD:") for n in numbers)


def test_captured_audio_names_the_caller_like_its_setup(dataset: Path) -> None:
    truth = {r.call_truth.call_id: r.call_truth for r in read_records(dataset / CALLS)}
    segments = [r.audio.segment for r in read_records(dataset / EVENTS) if r.WhichOneof("record") == "audio"]
    assert segments
    for segment in segments:
        call = truth[segment.call_id]
        if call.actor_kind != K.ACTOR_KIND_INVALID_NUMBER_SPOOFER:
            assert attribute_record(segment, "CN").key == call.presented_number


def test_emergency_calls_arrive_in_every_form_a_switch_sends(dataset: Path) -> None:
    forms: Counter[str] = Counter()
    for call, setup in _setups(dataset):
        if call.actor_kind != K.ACTOR_KIND_EMERGENCY:
            continue
        assert is_emergency_call(setup, "CN", frozenset({"122"})), "the simulator emits a form we miss"
        if setup.request_uri:
            forms["urn"] += 1
        else:
            forms[
                setup.called_number.partition(":")[0]
                if ":" in setup.called_number
                else setup.called_number[:1]
            ] += 1
    assert {"urn", "tel", "sip", "+"} <= set(forms), forms


def _in_ranges(numbers: np.ndarray, prefixes: tuple[str, ...]) -> np.ndarray:
    """Numbers (E.164 digits) under any of the five-digit ``+86xyz`` prefixes."""
    return np.isin(numbers // 10**8, [int(p.lstrip("+")) for p in prefixes])


def _legit(sim: Simulation) -> np.ndarray:
    return ~np.isin(sim.calls.kind, [*UNWANTED_KINDS, K.ACTOR_KIND_EMERGENCY])


def test_mvno_subscribers_are_numbered_in_the_virtual_ranges(sim: Simulation) -> None:
    pop, net = sim.population, sim.scenario.network
    share = float(_in_ranges(pop.numbers, net.virtual_ranges).mean())
    assert 0.5 * net.mvno_share < share < 1.2 * net.mvno_share, share
    c = sim.calls
    from_virtual = _legit(sim) & _in_ranges(c.caller, net.virtual_ranges)
    assert from_virtual.sum() > 0.02 * _legit(sim).sum()
    assert np.all(
        c.ingress[from_virtual & (c.kind == K.ACTOR_KIND_SUBSCRIBER)] != common_pb2.INGRESS_KIND_VOIP_PEER
    )


def test_ported_numbers_arrive_from_the_carrier_that_serves_them(sim: Simulation) -> None:
    pop, net = sim.population, sim.scenario.network
    home_ranges = net.home.ranges
    others = tuple(r for carrier in net.interconnects for r in carrier.ranges)
    ported_out = ~pop.home & _in_ranges(pop.numbers, home_ranges)
    ported_in = pop.home & _in_ranges(pop.numbers, others)
    assert ported_out.sum() > 0
    assert ported_in.sum() > 0
    c = sim.calls
    people = (c.kind == K.ACTOR_KIND_SUBSCRIBER) & (c.actor < 0)
    person = np.where(people, -(c.actor.astype(np.int64) + 1), 0)
    out_calls = people & ported_out[person] & (c.caller == pop.numbers[person])
    assert out_calls.any()
    assert np.all(c.ingress[out_calls] != common_pb2.INGRESS_KIND_ON_NET), "a tenant's range from off-net"
    in_calls = people & ported_in[person] & (c.ingress == common_pb2.INGRESS_KIND_ON_NET)
    assert in_calls.any()


def test_people_with_a_new_number_present_it_from_their_switch_on(sim: Simulation) -> None:
    pop, c = sim.population, sim.calls
    switchers = np.flatnonzero(pop.new_numbers)
    assert len(switchers) > 0
    people = np.flatnonzero((c.kind == K.ACTOR_KIND_SUBSCRIBER) & (c.actor < 0))
    person = -(c.actor[people].astype(np.int64) + 1)
    switched = pop.new_numbers[person] > 0
    after = c.t[people] >= pop.new_number_ms[person]
    assert np.all(c.caller[people][switched & after] == pop.new_numbers[person][switched & after])
    assert np.all(c.caller[people][switched & ~after] == pop.numbers[person][switched & ~after])
    assert (switched & after).any()
    first_seen = {int(n): int(c.t[i]) for i, n in reversed(list(enumerate(c.caller.tolist())))}
    for p in switchers:
        if int(pop.new_numbers[p]) in first_seen:
            assert first_seen[int(pop.new_numbers[p])] >= pop.new_number_ms[p]


def test_honeypots_hear_legitimate_callers_too(sim: Simulation, dataset: Path) -> None:
    c = sim.calls
    assert np.array_equal(c.honeypot, np.isin(c.callee, sim.population.honeypot_numbers))
    assert (c.honeypot & _legit(sim)).sum() >= 3
    truth = {r.call_truth.call_id: r.call_truth for r in read_records(dataset / CALLS)}
    reported: Counter[bool] = Counter()
    for record in read_records(dataset / EVENTS):
        if record.WhichOneof("record") == "complaint":
            complaint = record.complaint
            if complaint.channel == events_pb2.COMPLAINT_CHANNEL_HONEYPOT:
                assert complaint.category == events_pb2.COMPLAINT_CATEGORY_ROBOCALL, "a honeypot cannot tell"
                reported[truth[complaint.call_id].unwanted] += 1
    assert reported[False] > 0
    assert reported[True] > 0


def test_legitimate_numbers_draw_mistaken_and_malicious_complaints(sim: Simulation) -> None:
    scenario = dataclasses.replace(
        sim.scenario,
        complaints=Complaints(mistaken_rate=0.01, business_mistaken_rate=0.05, malicious_rate=0.05),
    )
    c = simulate(scenario).calls
    legit = ~np.isin(c.kind, [*UNWANTED_KINDS, K.ACTOR_KIND_EMERGENCY])
    reported = legit & (c.complaint_delay_ms >= 0)
    assert np.all(c.answered[reported])
    people = legit & c.answered & (c.kind == K.ACTOR_KIND_SUBSCRIBER)
    business = legit & c.answered & (c.kind != K.ACTOR_KIND_SUBSCRIBER)
    assert 0.5 * 0.01 < (people & reported).sum() / people.sum() < 0.1
    assert 0.5 * 0.05 < (business & reported).sum() / business.sum() < 0.25
    fraud = reported & (c.complaint_category == events_pb2.COMPLAINT_CATEGORY_FRAUD)
    assert (fraud & (c.kind != K.ACTOR_KIND_BANK_ALERT)).any(), "malicious reports say fraud"
    assert np.all(c.complaint_category[legit & ~reported] == 0)


def test_businesses_arrive_unsigned_and_at_b_or_c_too(sim: Simulation) -> None:
    c = sim.calls
    e = sim.scenario.enterprise
    business = _legit(sim) & (c.kind != K.ACTOR_KIND_SUBSCRIBER)
    interconnect = business & (c.ingress == common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT)
    unsigned = float((c.attest[interconnect] == 0).mean())
    assert (
        0.5 * e.unsigned_share
        < unsigned
        < 2 * (e.unsigned_share + sim.scenario.network.unsigned_share) + 0.05
    )
    assert (c.attest[interconnect] == 3).any()
    voip = np.flatnonzero(business & (c.ingress == common_pb2.INGRESS_KIND_VOIP_PEER))
    arrivals = _status(sim, voip)
    assert arrivals["-"] > 0
    assert arrivals["B"] > 0
    assert arrivals["C"] > 0


def test_outbound_diallers_look_like_a_campaign_but_are_legitimate(sim: Simulation) -> None:
    c = sim.calls
    outbound = of_actors(sim, "outbound-")
    group = sim.scenario.legit.outbound
    assert outbound.sum() > 100
    assert np.all(c.kind[outbound] == K.ACTOR_KIND_CALL_CENTRE)
    assert len(np.unique(c.caller[outbound])) > 0.7 * group.count * group.numbers_each
    assert c.duration_ms[outbound & c.answered].mean() < 40_000


def test_adaptive_campaigns_stay_low_and_slow_over_many_aged_numbers(sim: Simulation) -> None:
    ad = sim.scenario.adaptive
    c = sim.calls
    mine = of_actors(sim, "adaptive-")
    assert np.all(c.kind[mine] == K.ACTOR_KIND_ROBOCALL)
    assert np.all(c.campaign[mine] == c.actor[mine])
    campaign = mine & (c.script >= 0)
    hour = (c.t - sim.scenario.start_ms) // 3_600_000
    _pairs, per_hour = np.unique(c.caller[campaign] * 100 + hour[campaign], return_counts=True)
    assert per_hour.max() <= ad.max_calls_per_number_hour
    numbers, per_number = np.unique(c.caller[campaign], return_counts=True)
    assert len(numbers) >= min(ad.spread_numbers, int(campaign.sum()))
    assert per_number.max() <= -(-int(campaign.sum()) // ad.spread_numbers)
    signed = campaign & (c.ingress == common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT) & (c.attest > 0)
    assert abs(float((c.attest[signed] == 1).mean()) - ad.buys_a_attestation_share) < 0.1
    aging = np.flatnonzero(mine & (c.script < 0))
    assert len(aging) > 0
    first_use: dict[int, int] = {}
    for i in np.flatnonzero(campaign):
        first_use.setdefault(int(c.caller[i]), int(c.t[i]))
    for i in aging:
        assert c.t[i] < first_use[int(c.caller[i])]
        assert first_use[int(c.caller[i])] - c.t[i] <= ad.number_aging_days * 86_400_000
    assert not c.synthetic[aging].any()


def test_knobs_move_only_the_calls_they_drive(sim: Simulation) -> None:
    s = sim.scenario
    without = simulate(dataclasses.replace(s, adaptive=dataclasses.replace(s.adaptive, campaigns=0))).calls
    kept = sim.calls.take(np.flatnonzero(~of_actors(sim, "adaptive-")).astype(np.int64))
    for column in ("t", "caller", "callee", "kind", "attest", "answered", "complaint_delay_ms", "honeypot"):
        assert np.array_equal(getattr(kept, column), getattr(without, column)), column
    quiet = simulate(dataclasses.replace(s, complaints=Complaints(0.0, 0.0, 0.0, 0.0))).calls
    assert np.array_equal(quiet.callee, sim.calls.callee)
    assert np.array_equal(quiet.attest, sim.calls.attest)
    legit = _legit(sim)
    assert np.array_equal(quiet.complaint_delay_ms[~legit], sim.calls.complaint_delay_ms[~legit])
    assert (quiet.complaint_delay_ms[legit] < 0).all()


S = events_pb2.PresenceState
CALL_STATES = (S.PRESENCE_STATE_IN_CALL, S.PRESENCE_STATE_CALL_ENDED)


def _presence_records(dataset: Path) -> list[dataset_pb2.DatasetRecord]:
    return [r for r in read_records(dataset / EVENTS) if r.WhichOneof("record") == "presence"]


def _subjects(sim: Simulation) -> set[int]:
    pop = sim.population
    assert pop.trips is not None
    who = np.flatnonzero(pop.trips.subject)
    return set(pop.numbers[who].tolist()) | set(pop.new_numbers[who][pop.new_numbers[who] > 0].tolist())


def test_presence_reports_name_home_mobile_subscribers_in_time_order(sim: Simulation, dataset: Path) -> None:
    pop = sim.population
    assert pop.trips is not None
    assert not pop.trips.subject[pop.fixed].any()
    assert not pop.trips.subject[~pop.home].any()
    assert not pop.trips.subject[pop.honeypots].any()
    records = _presence_records(dataset)
    assert len(records) == Manifest.read(dataset).counts["presence"] > 0
    assert len({r.presence.event_id for r in records}) == len(records)
    subjects = _subjects(sim)
    truth = {r.call_truth.call_id: r.call_truth for r in read_records(dataset / CALLS)}
    states: Counter[int] = Counter()
    for record in records:
        presence = record.presence
        states[presence.state] += 1
        assert presence.tenant == "demo-cn"
        assert record.time_ms == presence.event_time.seconds * 1000 + presence.event_time.nanos // 1_000_000
        assert int(presence.number) in subjects
        assert bool(presence.country) == (presence.state == S.PRESENCE_STATE_ROAMING)
        assert presence.country != "CN"
        assert bool(presence.call_id) == (presence.state in CALL_STATES)
        if presence.call_id:
            call = truth[presence.call_id]
            assert call.presented_number == presence.number
            assert call.actor_kind == K.ACTOR_KIND_SUBSCRIBER
    for state in (S.PRESENCE_STATE_ATTACHED_HOME, S.PRESENCE_STATE_ROAMING, *CALL_STATES):
        assert states[state] > 0, S.Name(state)
    assert states[S.PRESENCE_STATE_IN_CALL] == states[S.PRESENCE_STATE_CALL_ENDED]
    period = sim.scenario.presence.reregistration_hours
    registrations = sum(states[s] for s in S.values() if s not in CALL_STATES)
    assert registrations < 1.2 * len(subjects) * sim.scenario.duration_hours / period + 50


def test_answered_on_net_calls_report_their_start_and_end(sim: Simulation) -> None:
    reports, c = sim.presence, sim.calls
    assert reports is not None
    rows = np.flatnonzero(reports.call >= 0)
    call = reports.call[rows]
    assert np.all(c.ingress[call] == common_pb2.INGRESS_KIND_ON_NET)
    assert np.all(c.answered[call])
    assert np.all(reports.number[rows] == c.caller[call])
    started = rows[reports.state[rows] == S.PRESENCE_STATE_IN_CALL]
    ended = rows[reports.state[rows] == S.PRESENCE_STATE_CALL_ENDED]
    assert np.array_equal(np.sort(reports.call[started]), np.sort(reports.call[ended]))
    assert np.all(reports.t[started] == c.t[reports.call[started]] + c.ring_ms[reports.call[started]])
    end = c.t + c.ring_ms + c.duration_ms
    assert np.all(reports.t[ended] == end[reports.call[ended]])
    assert np.all(np.diff(reports.t) >= 0)


def test_roamers_call_home_over_the_gateway_only_while_roaming(sim: Simulation, dataset: Path) -> None:
    pop, c = sim.population, sim.calls
    trips = pop.trips
    assert trips is not None
    people = np.flatnonzero((c.kind == K.ACTOR_KIND_SUBSCRIBER) & (c.actor < 0))
    person = -(c.actor[people].astype(np.int64) + 1)
    home = pop.home[person]
    away = trips.abroad(person, c.t[people])
    gateway = c.ingress[people] == common_pb2.INGRESS_KIND_INTERNATIONAL_GATEWAY
    assert np.array_equal(home & gateway, home & away & trips.gateway[person])
    assert (home & gateway).sum() > 0, "roaming home subscribers call home over the gateway"
    assert (home & away & ~gateway).sum() > 0, "home-routed roamers arrive on-net"
    assert np.array_equal(c.roaming[people][home], away[home])
    assert not (home & pop.fixed[person] & gateway).any(), "a fixed line never roams"
    registered: dict[str, int] = {}
    roamed = 0
    truth = {r.call_truth.call_id: r.call_truth for r in read_records(dataset / CALLS)}
    for record in read_records(dataset / EVENTS):
        kind = record.WhichOneof("record")
        if kind == "presence" and record.presence.state not in CALL_STATES:
            registered[record.presence.number] = record.presence.state
        elif kind == "setup":
            call = truth[record.setup.setup.call_id]
            if call.roaming and call.presented_on_net and not call.unwanted:
                assert registered.get(call.presented_number, 0) != S.PRESENCE_STATE_ATTACHED_HOME
                roamed += registered.get(call.presented_number, 0) == S.PRESENCE_STATE_ROAMING
    assert roamed > 0


def _proven(dataset: Path) -> Counter[tuple[int, bool]]:
    """Calls presenting a subscriber from off-net that presence proves false, as the proof rules do:
    (actor kind, unwanted) → calls whose number was attached at home or in another on-net call."""
    truth = {r.call_truth.call_id: r.call_truth for r in read_records(dataset / CALLS)}
    registered: dict[str, int] = {}
    in_call: dict[str, str] = {}
    proven: Counter[tuple[int, bool]] = Counter()
    for record in read_records(dataset / EVENTS):
        kind = record.WhichOneof("record")
        if kind == "presence":
            presence = record.presence
            if presence.state == S.PRESENCE_STATE_IN_CALL:
                in_call[presence.number] = presence.call_id
            elif presence.state == S.PRESENCE_STATE_CALL_ENDED:
                if in_call.get(presence.number) == presence.call_id:
                    in_call[presence.number] = ""
            else:
                registered[presence.number] = presence.state
        elif kind == "setup" and record.setup.setup.ingress_kind != common_pb2.INGRESS_KIND_ON_NET:
            call = truth[record.setup.setup.call_id]
            number = call.presented_number
            busy = in_call.get(number, "") not in ("", call.call_id)
            if registered.get(number) == S.PRESENCE_STATE_ATTACHED_HOME or busy:
                proven[(call.actor_kind, call.unwanted)] += 1
    return proven


def test_presence_never_proves_a_legitimate_call_false(dataset: Path) -> None:
    proven = _proven(dataset)
    assert not [key for key in proven if not key[1]], proven
    for kind in (
        K.ACTOR_KIND_ONNET_SPOOFER,
        K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER,
        K.ACTOR_KIND_AI_IMPERSONATOR,
    ):
        assert proven[(kind, True)] > 0, K.Name(kind)


def test_phones_switched_off_at_night_come_back_in_the_morning(sim: Simulation) -> None:
    s = sim.scenario
    night = simulate(dataclasses.replace(s, start=s.start - timedelta(hours=12), duration_hours=15))
    reports = night.presence
    assert reports is not None
    off = np.flatnonzero(reports.state == S.PRESENCE_STATE_DETACHED)
    assert len(off) > 0
    local_hour = (reports.t[off] / 3_600_000 + night.scenario.utc_offset_hours) % 24
    assert np.all((local_hour >= 21.5) | (local_hour <= 2.0))
    registrations: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(reports.call < 0).tolist():
        registrations[int(reports.number[i])].append(i)
    for i in off.tolist():
        number = int(reports.number[i])
        later = [j for j in registrations[number] if j > i]
        assert later, "switched back on in the morning"
        assert reports.state[later[0]] == S.PRESENCE_STATE_ATTACHED_HOME, "no re-registration while off"
        on_t = int(reports.t[later[0]])
        assert 3 * 3_600_000 <= on_t - int(reports.t[i]) <= 12 * 3_600_000
        calls = (reports.call >= 0) & (reports.number == number)
        assert not (calls & (reports.t >= reports.t[i]) & (reports.t < on_t)).any(), "no call while off"


def test_impersonators_present_on_net_and_off_net_relatives(sim: Simulation, dataset: Path) -> None:
    truth = [r.call_truth for r in read_records(dataset / CALLS)]
    impersonated = [t for t in truth if t.actor_kind == K.ACTOR_KIND_AI_IMPERSONATOR]
    assert all(t.spoofed and t.unwanted and not t.true_number for t in impersonated)
    on_net = Counter(t.presented_on_net for t in impersonated)
    assert on_net[True] > 0
    assert on_net[False] > 0
    home = set(sim.population.numbers[sim.population.home].tolist())
    assert all((int(t.presented_number) in home) == t.presented_on_net for t in impersonated)
    many = dataclasses.replace(sim.scenario.impersonators, victims_per_day=4000.0)
    for share in (0.0, 0.6, 1.0):
        other = simulate(
            dataclasses.replace(sim.scenario, impersonators=dataclasses.replace(many, onnet_share=share))
        )
        c, pop = other.calls, other.population
        rows = np.flatnonzero(c.kind == K.ACTOR_KIND_AI_IMPERSONATOR)
        first = rows[np.unique(c.callee[rows], return_index=True)[1]]  # one call per victim
        observed = float(np.isin(c.caller[first], pop.numbers[pop.home]).mean())
        assert abs(observed - share) < 0.04, (share, observed, len(first))


def test_intl_domestic_spoofers_present_every_domestic_carriers_numbers(sim: Simulation) -> None:
    c, pop, net = sim.calls, sim.population, sim.scenario.network
    numbers = c.caller[c.kind == K.ACTOR_KIND_INTL_DOMESTIC_SPOOFER]
    assert _in_ranges(numbers, net.home.ranges).any()
    assert _in_ranges(numbers, tuple(r for carrier in net.interconnects for r in carrier.ranges)).any()
    assert _in_ranges(numbers, net.virtual_ranges).any()
    real = np.isin(numbers, pop.numbers)
    assert np.isin(numbers, pop.numbers[pop.home]).any(), "real on-net subscribers"
    assert np.isin(numbers, pop.numbers[~pop.home]).any(), "real subscribers of other carriers"
    share = sim.scenario.spoofers.intl_real_share
    assert abs(float(real.mean()) - share) < 4 * np.sqrt(share * (1 - share) / len(numbers)) + 0.02


def test_presence_moves_only_home_subscribers_routing(sim: Simulation) -> None:
    s = sim.scenario
    off = simulate(dataclasses.replace(s, presence=dataclasses.replace(s.presence, enabled=False)))
    assert off.presence is None
    assert off.population.trips is None
    assert not off.calls.roaming[off.calls.ingress == common_pb2.INGRESS_KIND_ON_NET].any()
    for column in ("t", "caller", "callee", "kind", "answered", "duration_ms", "complaint_delay_ms"):
        assert np.array_equal(getattr(off.calls, column), getattr(sim.calls, column)), column
    c = sim.calls
    people = (c.kind == K.ACTOR_KIND_SUBSCRIBER) & (c.actor < 0)
    person = np.where(people, -(c.actor.astype(np.int64) + 1), 0)
    home_people = people & sim.population.home[person]
    assert np.array_equal(off.calls.ingress[~home_people], c.ingress[~home_people])
    assert np.array_equal(off.calls.carrier[~home_people], c.carrier[~home_people])


def test_presence_is_deterministic(sim: Simulation) -> None:
    again = simulate(load("ci")).presence
    reports = sim.presence
    assert reports is not None
    assert again is not None
    for column in ("t", "number", "state", "country", "call"):
        assert np.array_equal(getattr(again, column), getattr(reports, column)), column
