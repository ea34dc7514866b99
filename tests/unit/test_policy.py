"""Policy files: any edit either validates into an immutable Policy or is a PolicyError naming the key.

The property tests take the shipped policy, replace one value anywhere in it (or delete a key, or
add one) with generated YAML of any shape, and check that nothing but PolicyError ever escapes
``parse_policy`` — the class of "structurally wrong file crashes the call path" bugs, not only
the examples that found it. PolicyStore keeps the previous policy on a bad edit, counts each bad
edit once, and never does I/O in ``current()``.
"""

from __future__ import annotations

import asyncio
import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.decision.policy import (
    ALLOW,
    BLOCK,
    CHALLENGE,
    LABEL,
    Policy,
    PolicyError,
    PolicyStore,
    parse_policy,
)
from services.decision.service import REPO_ROOT

DEFAULT = REPO_ROOT / "deploy" / "policy" / "default.yaml"
DEFAULT_DATA: dict[str, Any] = yaml.safe_load(DEFAULT.read_text())
PROPERTY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["BLOCK", "ALLOW", "LABEL", "en", "zh", "DNO_LISTED", "INTERNATIONAL_GATEWAY", "122"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4),
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


ALL_PATHS = [path for path in _paths(DEFAULT_DATA) if path]


def _replace(data: Any, path: tuple[Any, ...], value: Any, *, delete: bool) -> Any:
    data = copy.deepcopy(data)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


def _parses_or_rejects(text: str | bytes) -> Policy | PolicyError:
    try:
        return parse_policy(text, "test.yaml")
    except PolicyError as exc:
        rejected = exc
    assert "test.yaml" in str(rejected), "the error names the file"
    return rejected


def test_the_shipped_policy_parses_and_is_immutable() -> None:
    policy = parse_policy(DEFAULT.read_text(), str(DEFAULT))
    assert policy.deny_action == BLOCK
    assert "122" in policy.emergency_numbers
    with pytest.raises(TypeError):
        policy.reason_actions["X"] = 0  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.tenants["x"] = policy.tenant("demo-cn")  # type: ignore[index]


@PROPERTY
@given(path=st.sampled_from(ALL_PATHS), value=values, delete=st.booleans())
def test_any_one_value_replaced_anywhere_parses_or_is_a_policy_error(
    path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    mutated = _replace(DEFAULT_DATA, path, value, delete=delete)
    _parses_or_rejects(yaml.safe_dump(mutated, allow_unicode=True))


@PROPERTY
@given(data=values)
def test_any_document_parses_or_is_a_policy_error(data: Any) -> None:
    _parses_or_rejects(yaml.safe_dump(data, allow_unicode=True))


@PROPERTY
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_a_policy_error(raw: bytes) -> None:
    _parses_or_rejects(raw)


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        ({"tenants": ["demo-cn"]}, "tenants"),
        ({"deny_action": ["BLOCK"]}, "deny_action"),
        ({"reason_actions": {"DNO_LISTED": ["BLOCK"]}}, "reason_actions.DNO_LISTED"),
        ({"ingress_thresholds": ["INTERNATIONAL_GATEWAY"]}, "ingress_thresholds"),
        ({"tenants": {"demo-cn": {"language": ["zh"]}}}, "tenants.demo-cn.language"),
        ({"emergency_numbers": "122"}, "emergency_numbers"),
        ({"emergency_numbers": ["sos"]}, "emergency_numbers[0]"),
        ({"psap_callback_numbers": ["+86"]}, "psap_callback_numbers[0]"),
        ({"never_sole_reasons": "MODEL_SCORE"}, "never_sole_reasons"),
        ({"labels": ["en"]}, "labels"),
        ({"default_language": ["en"]}, "default_language"),
        ({"block": {"status_code": "603", "reason_phrase": "x"}}, "block.status_code"),
        (
            {"tenants": {"demo-us": {"block": {"status_code": 200, "reason_phrase": "OK"}}}},
            "tenants.demo-us.block",
        ),
        (
            {"tenants": {"demo-us": {"reason_actions": {"NOPE": "BLOCK"}}}},
            "tenants.demo-us.reason_actions.NOPE",
        ),
        (
            {"tenants": {"demo-us": {"reason_actions": {"DNO_LISTED": "STOP"}}}},
            "tenants.demo-us.reason_actions.DNO_LISTED",
        ),
        ({"tenants": {"demo-us": {"international_label": "yes"}}}, "tenants.demo-us.international_label"),
        ({"international_labels": {"fr": "Appel international"}}, "international_labels"),
        (
            {
                "international_labels": {"zh": "国际来电"},
                "tenants": {"demo-us": {"international_label": True}},
            },
            "tenants.demo-us.international_label",
        ),
    ],
)
def test_structural_errors_name_the_key(edit: dict[str, Any], where: str) -> None:
    with pytest.raises(PolicyError) as error:
        parse_policy(yaml.safe_dump({**DEFAULT_DATA, **edit}, allow_unicode=True), "p.yaml")
    assert where in str(error.value)


def test_a_tenant_may_answer_blocks_with_608_rejected_and_others_keep_603() -> None:
    rejected = {
        "status_code": 608,
        "reason_phrase": "Rejected",
        "redress_contact": "https://op.example/jcard",
    }
    data = {
        **DEFAULT_DATA,
        "tenants": {**DEFAULT_DATA["tenants"], "demo-us": {"language": "en", "block": rejected}},
    }
    policy = parse_policy(yaml.safe_dump(data, allow_unicode=True), "p.yaml")
    assert policy.block_for("demo-us").response().status_code == 608
    assert policy.block_for("demo-us").response().reason_header == 'SIP;cause=608;text="Rejected"'
    assert policy.block_for("demo-cn").status_code == 603
    assert policy.block_for("someone-else").status_code == 603


def test_a_tenant_may_force_its_own_actions_and_what_it_blocks_on_is_its_proof() -> None:
    data = copy.deepcopy(DEFAULT_DATA)
    data["tenants"]["demo-cn"]["reason_actions"] = {"NO_ROAMING_INDICATION": "BLOCK"}
    policy = parse_policy(yaml.safe_dump(data, allow_unicode=True), "p.yaml")
    assert policy.reason_actions_for("demo-cn")["NO_ROAMING_INDICATION"] == BLOCK
    assert policy.reason_actions_for("demo-cn")["DNO_LISTED"] == BLOCK  # the policy's own stay
    assert policy.reason_actions_for("demo-us")["NO_ROAMING_INDICATION"] == LABEL
    assert policy.tenant_proof("demo-cn") == frozenset({"NO_ROAMING_INDICATION"})
    assert policy.tenant_proof("demo-us") == frozenset()
    assert policy.tenant_proof("someone-else") == frozenset()


def test_only_tenants_that_want_it_label_international_calls() -> None:
    policy = parse_policy(DEFAULT.read_text(), "p.yaml")
    assert policy.international_label_for("demo-cn") == "国际来电"
    assert policy.international_label_for("demo-us") == ""
    assert policy.international_label_for("someone-else") == ""


def test_a_verified_roamer_is_capped_at_allow_without_proof() -> None:
    policy = parse_policy(DEFAULT.read_text(), "p.yaml")
    assert policy.capped(LABEL, frozenset({"ROAMING_VERIFIED", "MODEL_SCORE"})) == ALLOW
    assert policy.capped(CHALLENGE, frozenset({"MODEL_SCORE"})) == CHALLENGE
    with pytest.raises(PolicyError, match=r"reason_caps\.NOPE"):
        parse_policy(yaml.safe_dump({**DEFAULT_DATA, "reason_caps": {"NOPE": "ALLOW"}}), "p.yaml")


def test_non_utf8_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="not UTF-8"):
        parse_policy(DEFAULT.read_bytes() + b"\n# \xff\xfe\n", "p.yaml")


def test_psap_callbacks_match_the_attributed_caller_in_the_tenants_region() -> None:
    policy = parse_policy(
        yaml.safe_dump({**DEFAULT_DATA, "psap_callback_numbers": ["+861066666666", "01088888888"]}), "p.yaml"
    )
    assert policy.is_psap_callback("+861066666666", "CN")
    assert policy.is_psap_callback("+861088888888", "CN"), "national entries normalise in the tenant region"
    assert not policy.is_psap_callback("+861099999999", "CN")
    assert not parse_policy(DEFAULT.read_text()).is_psap_callback("+861066666666", "CN")


def _write(path: Path, text: str | bytes, bump_ns: int) -> None:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump_ns))


def test_store_keeps_the_previous_policy_and_counts_each_bad_edit_once(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, DEFAULT.read_text(), 0)
    outcomes: list[tuple[str, str]] = []
    store = PolicyStore(path, on_reload=lambda outcome, version: outcomes.append((outcome, version)))
    first = store.current()
    bad_edits: list[str | bytes] = [
        yaml.safe_dump({**DEFAULT_DATA, "tenants": ["demo-cn"]}),
        yaml.safe_dump({**DEFAULT_DATA, "deny_action": ["BLOCK"]}),
        DEFAULT.read_bytes() + b"\xff",
    ]
    for step, bad in enumerate(bad_edits, 1):
        _write(path, bad, step * 1_000_000)
        assert not store.check_now()
        assert not store.check_now(), "an unchanged bad file is not counted again"
        assert store.current() is first
        assert store.last_error
    assert outcomes == [("rejected", first.version)] * 3
    _write(path, DEFAULT.read_text().replace('version: "default', 'version: "next'), 9_000_000)
    assert store.check_now()
    assert store.current().version.startswith("next")
    assert outcomes[-1] == ("applied", store.current().version)
    assert store.last_error == ""


def test_store_survives_the_file_vanishing(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, DEFAULT.read_text(), 0)
    store = PolicyStore(path)
    path.unlink()
    assert not store.check_now()
    assert store.current().version == parse_policy(DEFAULT.read_text()).version


def test_a_bad_file_at_start_up_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({**DEFAULT_DATA, "tenants": ["demo-cn"]}))
    with pytest.raises(PolicyError, match="tenants"):
        PolicyStore(path)


async def test_reloads_run_in_the_background_off_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, DEFAULT.read_text(), 0)
    store = PolicyStore(path, check_every_s=0.01)
    task = asyncio.create_task(store.run())
    try:
        _write(path, DEFAULT.read_text().replace('version: "default', 'version: "bg'), 5_000_000)
        for _ in range(200):
            if store.current().version.startswith("bg"):
                break
            await asyncio.sleep(0.01)
        assert store.current().version.startswith("bg")
    finally:
        task.cancel()


def test_the_shipped_policy_blocks_on_proof_and_caps_a_score_alone_at_challenge() -> None:
    evidence = parse_policy(DEFAULT.read_text(), str(DEFAULT)).evidence
    assert evidence.is_proof(frozenset({"DNO_LISTED"}))
    assert evidence.is_proof(
        frozenset({"SHAKEN_SIGNATURE_INVALID", "INTL_INGRESS_DOMESTIC_CLI", "NEW_NUMBER"})
    )
    assert not evidence.is_proof(frozenset({"SHAKEN_SIGNATURE_INVALID"}))  # half a group is not proof
    assert not evidence.is_proof(frozenset({"VELOCITY_1H_HIGH", "COMPLAINTS", "CAMPAIGN_LINKED"}))
    assert evidence.score_block_at is None  # the model's validated threshold, when it carries one
    assert evidence.score_alone(BLOCK, 0.9999, {}) == CHALLENGE  # no validated threshold: never blocks
    assert evidence.score_alone(BLOCK, 0.9999, {"block_threshold": 0.999}) == BLOCK
    assert evidence.score_alone(BLOCK, 0.99, {"block_threshold": 0.999}) == CHALLENGE
    assert evidence.score_alone(LABEL, 0.7, {}) == LABEL


def test_without_an_evidence_key_a_score_may_block_as_before() -> None:
    data = {key: value for key, value in DEFAULT_DATA.items() if key != "evidence"}
    evidence = parse_policy(yaml.safe_dump(data, allow_unicode=True), "p.yaml").evidence
    assert evidence.score_alone(BLOCK, 0.99, {}) == BLOCK


@pytest.mark.parametrize(
    ("evidence", "where"),
    [
        ({"proof": ["NOT_A_CODE"]}, "evidence: unknown reason code"),
        ({"proof_together": [["DNO_LISTED"]]}, "evidence.proof_together[0]"),
        ({"score_block_at": "sometimes"}, "evidence.score_block_at"),
        ({"score_max_action": "MAYBE"}, "evidence.score_max_action"),
    ],
)
def test_evidence_errors_name_the_key(evidence: dict[str, Any], where: str) -> None:
    with pytest.raises(PolicyError, match=where.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(yaml.safe_dump({**DEFAULT_DATA, "evidence": evidence}, allow_unicode=True), "p.yaml")
