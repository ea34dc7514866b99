"""The simulated STIR/SHAKEN PKI is deterministic and valid, and its PASSporTs are canonical and verify."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.stipki import (
    CRL_URL,
    SHAKEN_POLICY_OID,
    CarrierSpec,
    SigningCarrier,
    StiPki,
    build_pki,
    decode_identity_header,
)
from services.origination.certs import TNAUTHLIST_OID
from training.pki import tnauthlist_spcs

NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)
CARRIERS = [
    CarrierSpec("home", "1234", signs=True),
    CarrierSpec("ic-unicom", "A1B2", signs=False),
    CarrierSpec("us-tier1", "7Q3Z", signs=True),
]
ORIGID = "123e4567-e89b-12d3-a456-426614174000"
IAT = 1767225600
HEADER_JSON = (
    '{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://cert.home.sti.sim.invalid/1234.pem"}'
)
CLAIMS_JSON = (
    '{"attest":"A","dest":{"tn":["12025550123"]},"iat":1767225600,'
    '"orig":{"tn":"8613800138000"},"origid":"123e4567-e89b-12d3-a456-426614174000"}'
)


@pytest.fixture(scope="module")
def pki() -> StiPki:
    return build_pki(42, CARRIERS, NOT_BEFORE)


def sign_home(pki: StiPki, attest: str = "A") -> str:
    return pki.carriers["home"].identity_header("+8613800138000", ["+12025550123"], IAT, attest, ORIGID)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_numbers(cert: x509.Certificate) -> ec.EllipticCurvePublicNumbers:
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    return public_key.public_numbers()


def verify_es256(certificate: x509.Certificate, signing_input: bytes, raw: bytes) -> None:
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))


def self_signed_with_tnauthlist(der: bytes | None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "test")])
    builder = (
        x509.CertificateBuilder()
        .serial_number(1)
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_BEFORE + timedelta(days=1))
    )
    if der is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(TNAUTHLIST_OID, der), critical=False)
    return builder.sign(key, hashes.SHA256())


def spc_entry(spc: bytes) -> bytes:
    return b"\xa0" + bytes([len(spc) + 2]) + b"\x16" + bytes([len(spc)]) + spc


# Determinism


def test_same_seed_gives_identical_keys_certificates_and_headers(pki: StiPki) -> None:
    again = build_pki(42, CARRIERS, NOT_BEFORE)
    assert again.root_pem == pki.root_pem
    assert again.intermediate_pem == pki.intermediate_pem
    assert again.carriers.keys() == pki.carriers.keys()
    for name, carrier in pki.carriers.items():
        twin = again.carriers[name]
        assert public_numbers(twin.certificate) == public_numbers(carrier.certificate)
        assert twin.chain_pem == carrier.chain_pem
        assert twin.x5u == carrier.x5u
    assert sign_home(again) == sign_home(pki)


def test_signing_is_repeatable_on_the_same_carrier(pki: StiPki) -> None:
    assert sign_home(pki) == sign_home(pki)


def test_different_seed_gives_different_keys_certificates_and_signatures(pki: StiPki) -> None:
    other = build_pki(43, CARRIERS, NOT_BEFORE)
    assert other.root_pem != pki.root_pem
    assert other.root.serial_number != pki.root.serial_number
    home, other_home = pki.carriers["home"], other.carriers["home"]
    assert public_numbers(other_home.certificate) != public_numbers(home.certificate)
    assert other_home.x5u == home.x5u
    assert sign_home(other) != sign_home(pki)


def test_carriers_get_distinct_keys(pki: StiPki) -> None:
    certs = [pki.root, pki.intermediate, *(c.certificate for c in pki.carriers.values())]
    assert len({(public_numbers(c).x, public_numbers(c).y) for c in certs}) == 4


def test_library_deterministic_ecdsa_matches_rfc6979_vector() -> None:
    key = ec.derive_private_key(
        0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721, ec.SECP256R1()
    )
    der = key.sign(b"sample", ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    assert der == encode_dss_signature(
        0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716,
        0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8,
    )


def test_identity_signature_is_standard_deterministic_es256(pki: StiPki) -> None:
    key = ec.derive_private_key(123456789, ec.SECP256R1())
    carrier = SigningCarrier("home", "1234", pki.carriers["home"].certificate, b"", key)
    parsed = decode_identity_header(carrier.identity_header("1", ["2"], IAT, "C", ORIGID))
    expected = key.sign(parsed.signing_input, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = int.from_bytes(parsed.signature[:32], "big"), int.from_bytes(parsed.signature[32:], "big")
    assert encode_dss_signature(r, s) == expected


# Certificate chain


def test_chain_verifies_leaf_to_root(pki: StiPki) -> None:
    pki.root.verify_directly_issued_by(pki.root)
    pki.intermediate.verify_directly_issued_by(pki.root)
    for carrier in pki.carriers.values():
        carrier.certificate.verify_directly_issued_by(pki.intermediate)
        with pytest.raises(ValueError, match="subject does not match"):
            carrier.certificate.verify_directly_issued_by(pki.root)
    assert pki.trust_anchors() == [pki.root]


def test_root_and_intermediate_are_cas(pki: StiPki) -> None:
    root_bc = pki.root.extensions.get_extension_for_class(x509.BasicConstraints)
    sub_bc = pki.intermediate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert root_bc.critical
    assert root_bc.value.ca
    assert root_bc.value.path_length is None
    assert sub_bc.critical
    assert sub_bc.value.ca
    assert sub_bc.value.path_length == 0
    for cert in (pki.root, pki.intermediate):
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical
        assert usage.value.key_cert_sign
        assert usage.value.crl_sign
        assert not usage.value.digital_signature
    assert pki.root.subject.rfc4514_string() == "CN=fraudmesh simulated STI-CA,O=fraudmesh simulation"
    assert pki.root.issuer == pki.root.subject
    assert pki.intermediate.issuer == pki.root.subject


def test_leaf_profile(pki: StiPki) -> None:
    cert = pki.carriers["us-tier1"].certificate
    extensions = cert.extensions
    basic = extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert not basic.value.ca
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value == x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "us-tier1 SHAKEN 7Q3Z"
    assert cert.issuer == pki.intermediate.subject
    ski = extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    aki = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    sub_ski = pki.intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == sub_ski.digest
    crl = extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [point.full_name for point in crl] == [[x509.UniformResourceIdentifier(CRL_URL)]]
    policies = extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [policy.policy_identifier for policy in policies] == [SHAKEN_POLICY_OID]
    tnauthlist = extensions.get_extension_for_oid(TNAUTHLIST_OID)
    assert not tnauthlist.critical
    assert tnauthlist.value.public_bytes() == bytes.fromhex("3008a00616043751335a")
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)


def test_tnauthlist_round_trips_each_carriers_ocn(pki: StiPki) -> None:
    assert {name: tnauthlist_spcs(c.certificate) for name, c in pki.carriers.items()} == {
        "home": ["1234"],
        "us-tier1": ["7Q3Z"],
    }


@settings(deadline=None)
@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=4))
def test_tnauthlist_round_trips_any_ocn(ocn: str) -> None:
    pki = build_pki(1, [CarrierSpec("c", ocn, signs=True)], NOT_BEFORE)
    assert tnauthlist_spcs(pki.carriers["c"].certificate) == [ocn]


def test_tnauthlist_parser_handles_long_lengths_and_other_entries() -> None:
    spcs = [f"{i:04d}" for i in range(40)]
    body = b"".join(spc_entry(spc.encode()) for spc in spcs)
    body += b"\xa2\x0d\x16\x0b12025550123"
    der = b"\x30\x82" + len(body).to_bytes(2, "big") + body
    assert tnauthlist_spcs(self_signed_with_tnauthlist(der)) == spcs


@pytest.mark.parametrize(
    "der",
    [
        pytest.param(b"\x31\x08" + spc_entry(b"1234"), id="not-a-sequence"),
        pytest.param(b"\x30\x08" + spc_entry(b"1234") + b"\x00", id="trailing-bytes"),
        pytest.param(b"\x30\x09" + spc_entry(b"1234"), id="truncated"),
        pytest.param(b"\x30\x81\x08" + spc_entry(b"1234"), id="non-minimal-length"),
        pytest.param(b"\x30\x08\xa0\x06\x0c\x041234", id="utf8string-not-ia5"),
        pytest.param(b"\x30\x08\xa5\x06\x16\x041234", id="unknown-choice"),
        pytest.param(b"\x30\x06\x16\x041234", id="implicit-tag"),
        pytest.param(b"\x30\x08" + spc_entry(b"12\xff4"), id="non-ascii"),
    ],
)
def test_tnauthlist_parser_rejects_malformed_der(der: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        tnauthlist_spcs(self_signed_with_tnauthlist(der))


def test_tnauthlist_missing_raises_extension_not_found() -> None:
    with pytest.raises(x509.ExtensionNotFound):
        tnauthlist_spcs(self_signed_with_tnauthlist(None))


def test_validity_window_is_fixed_and_shared(pki: StiPki) -> None:
    for cert in [pki.root, pki.intermediate, *(c.certificate for c in pki.carriers.values())]:
        assert cert.not_valid_before_utc == NOT_BEFORE
        assert cert.not_valid_after_utc == NOT_BEFORE + timedelta(days=365)


def test_validity_window_converts_to_utc_and_drops_microseconds() -> None:
    start = datetime(2026, 3, 1, 8, 30, 15, 999_999, tzinfo=timezone(timedelta(hours=8)))
    pki = build_pki(1, CARRIERS, start, validity_days=30)
    expected = datetime(2026, 3, 1, 0, 30, 15, tzinfo=UTC)
    assert pki.carriers["home"].certificate.not_valid_before_utc == expected
    assert pki.carriers["home"].certificate.not_valid_after_utc == expected + timedelta(days=30)


# Carriers and inputs


def test_only_signing_carriers_get_credentials(pki: StiPki) -> None:
    assert sorted(pki.carriers) == ["home", "us-tier1"]
    assert "ic-unicom" not in pki.carriers
    assert build_pki(1, [CarrierSpec("quiet", "0000", signs=False)], NOT_BEFORE).carriers == {}


def test_x5u_is_a_deterministic_invalid_tld_url(pki: StiPki) -> None:
    assert pki.carriers["home"].x5u == "https://cert.home.sti.sim.invalid/1234.pem"
    assert pki.carriers["us-tier1"].x5u == "https://cert.us-tier1.sti.sim.invalid/7Q3Z.pem"


def test_repr_does_not_expose_the_key(pki: StiPki) -> None:
    assert "key" not in repr(pki.carriers["home"]).lower()
    assert not hasattr(pki.carriers["home"], "key")


@pytest.mark.parametrize(
    ("name", "ocn"),
    [
        ("Home", "1234"),
        ("-home", "1234"),
        ("ho_me", "1234"),
        ("", "1234"),
        ("a" * 64, "1234"),
        ("home", "123"),
        ("home", "12345"),
        ("home", "a1b2"),
        ("home", "12-4"),
    ],
)
def test_carrier_spec_rejects_bad_names_and_ocns(name: str, ocn: str) -> None:
    with pytest.raises(ValueError, match=r"carrier name|OCN"):
        CarrierSpec(name, ocn, signs=True)


def test_build_pki_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_pki(1, CARRIERS, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="validity_days"):
        build_pki(1, CARRIERS, NOT_BEFORE, validity_days=0)
    with pytest.raises(ValueError, match="unique"):
        build_pki(1, [CARRIERS[0], CarrierSpec("home", "9999", signs=False)], NOT_BEFORE)
    with pytest.raises(ValueError, match="clashes"):
        build_pki(1, [CarrierSpec("sti-ca", "9999", signs=True)], NOT_BEFORE)


# PASSporT and Identity header


def test_identity_header_layout_and_canonical_json(pki: StiPki) -> None:
    value = sign_home(pki)
    passport, _, params = value.partition(";")
    header_b64, claims_b64, signature_b64 = passport.split(".")
    assert b64url_decode(header_b64).decode() == HEADER_JSON
    assert b64url_decode(claims_b64).decode() == CLAIMS_JSON
    assert header_b64 == b64url(HEADER_JSON.encode())
    assert "=" not in passport
    assert len(b64url_decode(signature_b64)) == 64
    assert params == "info=<https://cert.home.sti.sim.invalid/1234.pem>;alg=ES256;ppt=shaken"


def test_decoded_header_names_the_carriers_x5u(pki: StiPki) -> None:
    carrier = pki.carriers["home"]
    parsed = decode_identity_header(sign_home(pki))
    assert parsed.header == {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": carrier.x5u}
    assert parsed.params == {"info": carrier.x5u, "alg": "ES256", "ppt": "shaken"}
    assert f";info=<{carrier.x5u}>;" in sign_home(pki)


def test_signature_verifies_with_the_leaf_key(pki: StiPki) -> None:
    for carrier in pki.carriers.values():
        parsed = decode_identity_header(
            carrier.identity_header("8613800138000", ["12025550123", "12025550124"], IAT, "B", ORIGID)
        )
        verify_es256(carrier.certificate, parsed.signing_input, parsed.signature)


def test_signature_does_not_verify_with_another_carriers_key(pki: StiPki) -> None:
    parsed = decode_identity_header(sign_home(pki))
    with pytest.raises(InvalidSignature):
        verify_es256(pki.carriers["us-tier1"].certificate, parsed.signing_input, parsed.signature)


def test_tampered_claim_breaks_verification(pki: StiPki) -> None:
    parsed = decode_identity_header(sign_home(pki, attest="C"))
    header_b64 = parsed.signing_input.split(b".")[0]
    forged = json.dumps({**parsed.claims, "attest": "A"}, sort_keys=True, separators=(",", ":"))
    forged_input = header_b64 + b"." + b64url(forged.encode()).encode()
    verify_es256(pki.carriers["home"].certificate, parsed.signing_input, parsed.signature)
    with pytest.raises(InvalidSignature):
        verify_es256(pki.carriers["home"].certificate, forged_input, parsed.signature)


def test_plus_is_stripped_from_tns(pki: StiPki) -> None:
    carrier = pki.carriers["home"]
    with_plus = carrier.identity_header("+8613800138000", ["+12025550123"], IAT, "A", ORIGID)
    without = carrier.identity_header("8613800138000", ["12025550123"], IAT, "A", ORIGID)
    assert with_plus == without
    claims = decode_identity_header(with_plus).claims
    assert claims["orig"] == {"tn": "8613800138000"}
    assert claims["dest"] == {"tn": ["12025550123"]}


@given(
    orig=st.from_regex(r"\+?[0-9]{1,15}", fullmatch=True),
    dest=st.lists(st.from_regex(r"\+?[0-9]{1,15}", fullmatch=True), min_size=1, max_size=4),
    iat=st.integers(min_value=0, max_value=2**40),
    attest=st.sampled_from(["A", "B", "C"]),
    origid=st.uuids().map(str),
)
def test_claims_are_canonical_json(
    pki: StiPki, orig: str, dest: list[str], iat: int, attest: str, origid: str
) -> None:
    parsed = decode_identity_header(pki.carriers["home"].identity_header(orig, dest, iat, attest, origid))
    expected = {
        "attest": attest,
        "dest": {"tn": [tn.removeprefix("+") for tn in dest]},
        "iat": iat,
        "orig": {"tn": orig.removeprefix("+")},
        "origid": origid,
    }
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert b64url_decode(parsed.signing_input.split(b".")[1].decode()).decode() == canonical


@pytest.mark.parametrize("attest", ["", "a", "D", "AB", "A "])
def test_bad_attestation_raises(pki: StiPki, attest: str) -> None:
    with pytest.raises(ValueError, match="attest"):
        pki.carriers["home"].identity_header("1", ["2"], IAT, attest, ORIGID)


@pytest.mark.parametrize(
    ("orig", "dest", "iat", "origid", "match"),
    [
        ("", ["2"], IAT, ORIGID, "telephone number"),
        ("+", ["2"], IAT, ORIGID, "telephone number"),
        ("+1 202", ["2"], IAT, ORIGID, "telephone number"),
        ('1"', ["2"], IAT, ORIGID, "telephone number"),
        ("١٢٣", ["2"], IAT, ORIGID, "telephone number"),
        ("1", ["2", "x"], IAT, ORIGID, "telephone number"),
        ("1", [], IAT, ORIGID, "dest_tns"),
        ("1", "12025550123", IAT, ORIGID, "dest_tns"),
        ("1", ["2"], -1, ORIGID, "iat"),
        ("1", ["2"], True, ORIGID, "iat"),
        ("1", ["2"], 1.5, ORIGID, "iat"),
        ("1", ["2"], IAT, "not-a-uuid", "origid"),
        ("1", ["2"], IAT, ORIGID + '"', "origid"),
    ],
)
def test_bad_call_inputs_raise(
    pki: StiPki, orig: str, dest: list[str], iat: int, origid: str, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        pki.carriers["home"].identity_header(orig, dest, iat, "A", origid)


@pytest.mark.parametrize(
    "value",
    [
        "a.b",
        "e30.e30.AAAA",
        "e30.e30." + "A" * 86 + ";info=<https://x.invalid/a.pem",
        "W10.e30." + "A" * 86,
    ],
)
def test_decode_identity_header_rejects_unsplittable_values(value: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        decode_identity_header(value)


# Files


def test_write_publishes_certificates_only(pki: StiPki, tmp_path: Path) -> None:
    folder = tmp_path / "sti"
    pki.write(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "home.pem",
        "prewarm.txt",
        "sti-ca.pem",
        "sti-subca.pem",
        "us-tier1.pem",
    ]
    assert (folder / "prewarm.txt").read_text().splitlines()[1:] == [
        f"{carrier.x5u} {name}.pem" for name, carrier in pki.carriers.items()
    ]
    for path in folder.iterdir():
        assert b"PRIVATE KEY" not in path.read_bytes()
    assert (folder / "sti-ca.pem").read_bytes() == pki.root_pem
    assert (folder / "sti-subca.pem").read_bytes() == pki.intermediate_pem
    chain = x509.load_pem_x509_certificates((folder / "home.pem").read_bytes())
    assert chain == [pki.carriers["home"].certificate, pki.intermediate]
    assert pki.carriers["home"].chain_pem == (folder / "home.pem").read_bytes()
    assert pki.root_pem == pki.root.public_bytes(serialization.Encoding.PEM)
