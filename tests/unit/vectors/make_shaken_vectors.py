"""Generate tests/unit/vectors/shaken_vectors.json: golden STIR/SHAKEN verification vectors.

Run from the repository root: ``.venv/bin/python -m tests.unit.vectors.make_shaken_vectors``.
The output is byte-identical for the same code (fixed seeds, RFC 6979 signatures, fixed clock) and
holds only PUBLIC certificates of simulated, test-only PKIs (loadtest.stipki for the realistic
carriers, tests.unit.vectors.simpki for the deliberately broken ones); their private keys follow
from public seeds, so nothing in it may ever be trusted outside these tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from loadtest.stipki import CarrierSpec, SigningCarrier, build_pki
from tests.unit.vectors import simpki
from tests.unit.vectors.simpki import Issued, b64url, b64url_decode, identity, jws

OUTPUT = Path(__file__).with_name("shaken_vectors.json")
STIPKI_SEED = 8224
SIMPKI_SEED = 8225
REGION = "CN"
NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)
NOW = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
CALLER = "+8613800138000"
CALLEE = "+8613900139000"
OTHER = "+8613700137000"
FORWARD = "+8615000150000"
ORIGID = "5d2c3a8e-7f41-4b6a-9c0d-1e2f3a4b5c6d"
SIM_HOST = "https://sti.simpki.test"


EXPECTED_CODE = {
    "replay": "SHAKEN_REPLAY",
    "orig_mismatch": "SHAKEN_TN_MISMATCH",
    "dest_mismatch": "SHAKEN_TN_MISMATCH",
    "div_mismatch": "SHAKEN_TN_MISMATCH",
    "cert_unavailable": "SHAKEN_CERT_UNAVAILABLE",
    "compact_form": "SHAKEN_UNSUPPORTED",
    "unknown_ppt": "SHAKEN_UNSUPPORTED",
    "div_without_shaken": "SHAKEN_UNSUPPORTED",
}
"""Failures with a specific reason code, written out independently of the package's mapping."""


@dataclass
class Vector:
    """One golden case: the call as presented, the clock, the chains cached, the expected outcome."""

    name: str
    description: str
    headers: list[str]
    expect_status: str
    expect_failure: str | None = None
    expect_attestation: str | None = None
    expect_reasons: list[str] = field(default_factory=list)
    calling: str = CALLER
    pai: str = ""
    called: str = CALLEE
    now: int = NOW
    chains: list[str] = field(default_factory=list)
    repeat: int = 1
    diverted: bool = False
    origid: str = ""
    signer_ocn: str = ""

    def reasons(self) -> list[str]:
        """The expected reason codes: stated ones, else the code the failure maps to."""
        if self.expect_failure is not None and self.expect_reasons in ([], ["SHAKEN_SIGNATURE_INVALID"]):
            return [EXPECTED_CODE.get(self.expect_failure, "SHAKEN_SIGNATURE_INVALID")]
        return self.expect_reasons

    def as_json(self) -> dict[str, Any]:
        """The vector as stored in the JSON file."""
        return {
            "name": self.name,
            "description": self.description,
            "now": self.now,
            "chains": self.chains,
            "repeat": self.repeat,
            "setup": {
                "calling_number": self.calling,
                "p_asserted_identity": self.pai,
                "called_number": self.called,
                "identity_headers": self.headers,
            },
            "expect": {
                "status": self.expect_status,
                "failure": self.expect_failure,
                "attestation": self.expect_attestation,
                "reason_codes": self.reasons(),
                "origid": self.origid,
                "signer_ocn": self.signer_ocn,
                "diverted": self.diverted,
            },
        }


def _split(header: str) -> tuple[list[str], str]:
    """The three JWS parts and the ';params' tail of an Identity header."""
    token, _, params = header.partition(";")
    return token.split("."), ";" + params


def _join(parts: Sequence[str], tail: str) -> str:
    """Reassemble an Identity header from JWS parts and tail."""
    return ".".join(parts) + tail


def _replace_header(header: str, new_header: dict[str, Any]) -> str:
    """The same PASSporT with a different JOSE header (signature no longer matches)."""
    parts, tail = _split(header)
    return _join([b64url(simpki.canonical(new_header)), parts[1], parts[2]], tail)


def _replace_claims(header: str, claims_json: bytes) -> str:
    """The same PASSporT with different claims bytes (signature no longer matches)."""
    parts, tail = _split(header)
    return _join([parts[0], b64url(claims_json), parts[2]], tail)


def _replace_signature(header: str, signature: bytes | str) -> str:
    """The same PASSporT with another signature part."""
    parts, tail = _split(header)
    text = signature if isinstance(signature, str) else b64url(signature)
    return _join([parts[0], parts[1], text], tail)


def _claims(header: str) -> dict[str, Any]:
    """The decoded claims of a header (generator-side helper, no checks)."""
    parts, _ = _split(header)
    value: dict[str, Any] = json.loads(b64url_decode(parts[1]))
    return value


class _Sim:
    """The simpki chains for the deliberately broken certificates, plus PASSporT signing with them."""

    def __init__(self) -> None:
        start, end = NOT_BEFORE, NOT_BEFORE + timedelta(days=365)
        now = datetime.fromtimestamp(NOW, UTC)
        seed = SIMPKI_SEED
        self.root = simpki.issue(seed, "simpki STI-CA", None, start, end, ca=True)
        self.sub = simpki.issue(seed, "simpki STI-SubCA", self.root, start, end, ca=True, path_length=0)
        rogue_root = simpki.issue(seed, "rogue STI-CA", None, start, end, ca=True)
        rogue_sub = simpki.issue(seed, "rogue STI-SubCA", rogue_root, start, end, ca=True, path_length=0)
        sub = self.sub
        self.leaves: dict[str, tuple[Issued, Issued]] = {
            "diverter": (simpki.issue(seed, "diverter", sub, start, end, spcs=["D001"]), sub),
            "signer": (simpki.issue(seed, "signer", sub, start, end, spcs=["S001"]), sub),
            "notnauth": (simpki.issue(seed, "notnauth", sub, start, end), sub),
            "nospc": (
                simpki.issue(
                    seed, "nospc", sub, start, end, tnauthlist=simpki.tnauthlist_der([], ["8613800138000"])
                ),
                sub,
            ),
            "expiring": (
                simpki.issue(seed, "expiring", sub, start, now + timedelta(seconds=10), spcs=["E001"]),
                sub,
            ),
            "starting": (
                simpki.issue(seed, "starting", sub, now - timedelta(seconds=10), end, spcs=["T001"]),
                sub,
            ),
            "expired": (
                simpki.issue(seed, "expired", sub, start, now - timedelta(hours=1), spcs=["X001"]),
                sub,
            ),
            "revoked": (simpki.issue(seed, "revoked", sub, start, end, spcs=["R001"]), sub),
            "caleaf": (simpki.issue(seed, "caleaf", sub, start, end, spcs=["C001"], leaf_ca=True), sub),
            "nodigsig": (
                simpki.issue(seed, "nodigsig", sub, start, end, spcs=["N001"], digital_signature=False),
                sub,
            ),
            "critext": (
                simpki.issue(seed, "critext", sub, start, end, spcs=["K001"], unknown_critical=True),
                sub,
            ),
            "rogue": (simpki.issue(seed, "rogue", rogue_sub, start, end, spcs=["Q001"]), rogue_sub),
        }
        self.crl = simpki.crl(sub, [self.leaves["revoked"][0].cert.serial_number], start)

    @staticmethod
    def x5u(label: str) -> str:
        """The x5u URL of a simpki leaf."""
        return f"{SIM_HOST}/{label}.pem"

    def shaken(self, label: str, claims: dict[str, Any] | bytes, **header: Any) -> str:
        """A SHAKEN Identity header signed by a simpki leaf."""
        x5u = self.x5u(label)
        token = jws(self.leaves[label][0].key, simpki.shaken_header(x5u, **header), claims)
        return identity(token, x5u)

    def div(self, label: str, claims: dict[str, Any]) -> str:
        """A ppt=div Identity header signed by a simpki leaf."""
        x5u = self.x5u(label)
        header = {"alg": "ES256", "ppt": "div", "typ": "passport", "x5u": x5u}
        return identity(jws(self.leaves[label][0].key, header, claims), x5u, ppt="div")


def build() -> dict[str, Any]:
    """Every vector plus the trust anchors, chains and CRLs they need."""
    pki = build_pki(
        STIPKI_SEED,
        [CarrierSpec("home", "H001", True), CarrierSpec("peer", "P001", True)],
        NOT_BEFORE,
    )
    home: SigningCarrier = pki.carriers["home"]
    sim = _Sim()

    def sign(attest: str = "A", dest: Sequence[str] = (CALLEE,), iat: int = NOW, orig: str = CALLER) -> str:
        return home.identity_header(orig, list(dest), iat, attest, ORIGID)

    valid = sign()
    parts, tail = _split(valid)
    claims = _claims(valid)
    header_json = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": home.x5u}
    signature = b64url_decode(parts[2])
    r_bytes, s_bytes = signature[:32], signature[32:]
    flipped = bytearray(signature)
    flipped[10] ^= 0x01
    chains = [home.x5u]
    ok: dict[str, Any] = {
        "expect_status": "VERIFIED",
        "chains": chains,
        "origid": ORIGID,
        "signer_ocn": "H001",
    }
    failed: dict[str, Any] = {"expect_status": "FAILED", "chains": chains}
    bad = ["SHAKEN_SIGNATURE_INVALID"]
    sim_claims = simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], NOW, origid=ORIGID)

    def sim_failed(label: str, failure: str, description: str, **kwargs: Any) -> Vector:
        now = kwargs.pop("now", NOW)
        iat = kwargs.pop("iat", now)
        claims = simpki.shaken_claims(CALLER[1:], [CALLEE[1:]], iat, origid=ORIGID)
        return Vector(
            f"cert_{label}",
            description,
            [sim.shaken(label, claims)],
            "FAILED",
            failure,
            expect_reasons=bad,
            now=now,
            chains=[sim.x5u(label)],
            **kwargs,
        )

    vectors = [
        Vector("valid_attest_a", "full attestation, E.164 From", [valid], expect_attestation="A", **ok),
        Vector(
            "valid_attest_b",
            "partial attestation carries SHAKEN_ATTESTATION_B",
            [sign("B")],
            expect_attestation="B",
            expect_reasons=["SHAKEN_ATTESTATION_B"],
            **ok,
        ),
        Vector(
            "valid_attest_c",
            "gateway attestation carries SHAKEN_ATTESTATION_C",
            [sign("C")],
            expect_attestation="C",
            expect_reasons=["SHAKEN_ATTESTATION_C"],
            **ok,
        ),
        Vector(
            "valid_national_from",
            "From in national format normalises to the signed E.164 digits",
            [valid],
            calling="13800138000",
            expect_attestation="A",
            **ok,
        ),
        Vector(
            "valid_sip_uri_pai",
            "P-Asserted-Identity as a SIP URI is preferred over a different From",
            [valid],
            calling=OTHER,
            pai=f'"Caller" <sip:{CALLER}@carrier.example;user=phone>',
            expect_attestation="A",
            **ok,
        ),
        Vector(
            "valid_dest_list",
            "the called number is the second of three dest TNs",
            [sign(dest=[OTHER, CALLEE, FORWARD])],
            expect_attestation="A",
            **ok,
        ),
        Vector(
            "valid_iat_60s_old",
            "iat exactly 60 s in the past is still fresh",
            [sign(iat=NOW - 60)],
            expect_attestation="A",
            **ok,
        ),
        Vector(
            "valid_iat_60s_ahead",
            "iat exactly 60 s in the future is still fresh",
            [sign(iat=NOW + 60)],
            expect_attestation="A",
            **ok,
        ),
        Vector(
            "valid_beside_unknown_ppt",
            "an extra Identity header of another ppt is ignored",
            [identity(parts[0] + ".e30.AAAA", home.x5u, ppt="rph"), valid],
            expect_attestation="A",
            **ok,
        ),
        Vector(
            "valid_beside_tampered_copy",
            "of two SHAKEN PASSporTs the verified one wins",
            [_replace_signature(valid, bytes(flipped)), valid],
            expect_attestation="A",
            **ok,
        ),
        Vector(
            "valid_diverted",
            "RFC 8946: a verified div PASSporT links the signed dest to the forwarded-to number",
            [valid, sim.div("diverter", simpki.div_claims(CALLER[1:], [FORWARD[1:]], CALLEE[1:], NOW))],
            called=FORWARD,
            expect_status="VERIFIED",
            expect_attestation="A",
            chains=[home.x5u, sim.x5u("diverter")],
            origid=ORIGID,
            signer_ocn="H001",
            diverted=True,
        ),
        Vector("absent", "no Identity header", [], "ABSENT", expect_reasons=["SHAKEN_ABSENT"]),
        Vector(
            "stale_iat",
            "iat 61 s in the past",
            [sign(iat=NOW - 61)],
            expect_failure="stale_iat",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "future_iat",
            "iat 61 s in the future",
            [sign(iat=NOW + 61)],
            expect_failure="future_iat",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "orig_mismatch",
            "From is not the signed orig",
            [valid],
            calling=OTHER,
            expect_failure="orig_mismatch",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "pai_mismatch_from_matches",
            "P-Asserted-Identity takes precedence over a matching From",
            [valid],
            pai=OTHER,
            expect_failure="orig_mismatch",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "dest_mismatch",
            "the called number is not in dest",
            [valid],
            called=OTHER,
            expect_failure="dest_mismatch",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "div_mismatch",
            "a div PASSporT that diverts from a number not in the SHAKEN dest does not link",
            [valid, sim.div("diverter", simpki.div_claims(CALLER[1:], [FORWARD[1:]], OTHER[1:], NOW))],
            called=FORWARD,
            expect_status="FAILED",
            expect_failure="div_mismatch",
            expect_reasons=bad,
            chains=[home.x5u, sim.x5u("diverter")],
        ),
        Vector(
            "sig_flipped_bit",
            "one bit of the signature flipped",
            [_replace_signature(valid, bytes(flipped))],
            expect_failure="sig_invalid",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "claims_attest_upgraded",
            "attest changed from C to A without re-signing",
            [_replace_claims(sign("C"), simpki.canonical({**claims, "attest": "A"}))],
            expect_failure="sig_invalid",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "claims_noncanonical_resigned",
            "claims with whitespace and another key order verify: the received bytes are signed",
            [
                sim.shaken(
                    "signer",
                    (
                        f'{{ "orig": {{"tn": "{CALLER[1:]}"}}, "dest": {{"tn": ["{CALLEE[1:]}"]}},'
                        f' "iat": {NOW}, "attest": "A", "origid": "{ORIGID}" }}'
                    ).encode(),
                )
            ],
            expect_status="VERIFIED",
            expect_attestation="A",
            chains=[sim.x5u("signer")],
            origid=ORIGID,
            signer_ocn="S001",
        ),
        Vector(
            "sig_r_zero",
            "r = 0",
            [_replace_signature(valid, bytes(32) + s_bytes)],
            expect_failure="sig_range",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "sig_s_is_n",
            "s = n",
            [_replace_signature(valid, r_bytes + simpki.P256_ORDER.to_bytes(32, "big"))],
            expect_failure="sig_range",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "sig_63_bytes",
            "signature one byte short",
            [_replace_signature(valid, signature[:63])],
            expect_failure="sig_length",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "sig_der_encoded",
            "DER-encoded ECDSA signature instead of raw r||s",
            [_replace_signature(valid, b"\x30\x44\x02\x20" + r_bytes + b"\x02\x20" + s_bytes)],
            expect_failure="sig_length",
            expect_reasons=bad,
            **failed,
        ),
    ]
    for alg in ("none", "HS256", "RS256", "ES384", "es256", "EdDSA"):
        vectors.append(
            Vector(
                f"alg_{alg.lower()}",
                f"header alg {alg} refused (alg confusion)",
                [_replace_header(valid, {**header_json, "alg": alg})],
                expect_failure="bad_alg",
                expect_reasons=bad,
                **failed,
            )
        )
    vectors += [
        Vector(
            "alg_none_empty_signature",
            "unsecured JWS: alg none with an empty signature",
            [_replace_signature(_replace_header(valid, {**header_json, "alg": "none"}), "")],
            expect_failure="bad_alg",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "alg_param_rs256",
            "alg=RS256 Identity parameter",
            [valid.replace(";alg=ES256", ";alg=RS256")],
            expect_failure="bad_alg",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "typ_jwt",
            "typ JWT instead of passport",
            [_replace_header(valid, {**header_json, "typ": "JWT"})],
            expect_failure="bad_typ",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "ppt_header_differs",
            "ppt=shaken parameter but header ppt div",
            [_replace_header(valid, {**header_json, "ppt": "div"})],
            expect_failure="bad_ppt",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "crit_present",
            "a crit header parameter is not understood",
            [_replace_header(valid, {**header_json, "crit": ["exp"], "exp": 1})],
            expect_failure="bad_header",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "x5u_not_info",
            "x5u differs from the info parameter",
            [valid.replace(f"info=<{home.x5u}>", "info=<https://elsewhere.sti.sim.invalid/H001.pem>")],
            expect_failure="info_mismatch",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "x5u_http",
            "x5u over plain http (info matching)",
            [
                _replace_header(valid, {**header_json, "x5u": home.x5u.replace("https:", "http:")}).replace(
                    f"info=<{home.x5u}>", f"info=<{home.x5u.replace('https:', 'http:')}>"
                )
            ],
            expect_failure="bad_x5u",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "no_info_param",
            "Identity header without info",
            [valid.replace(f";info=<{home.x5u}>", "")],
            expect_failure="bad_params",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "duplicate_claim_resigned",
            "duplicate attest member, correctly signed: refused before the signature",
            [
                sim.shaken(
                    "signer",
                    simpki.canonical(sim_claims)[:-1] + b',"attest":"C"}',
                )
            ],
            expect_status="FAILED",
            expect_failure="duplicate_key",
            expect_reasons=bad,
            chains=[sim.x5u("signer")],
        ),
        Vector(
            "claims_array",
            "claims are a JSON array",
            [_replace_claims(valid, b"[1,2,3]")],
            expect_failure="bad_json",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "claims_padded_base64",
            "claims part with '=' padding",
            [_join([parts[0], parts[1] + "==", parts[2]], tail)],
            expect_failure="bad_base64",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "claims_standard_base64",
            "claims part in the standard (+/) alphabet",
            [_join([parts[0], parts[1][:5] + "+" + parts[1][6:], parts[2]], tail)],
            expect_failure="bad_base64",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "attest_d",
            "attest outside A/B/C, correctly signed",
            [sim.shaken("signer", {**sim_claims, "attest": "D"})],
            expect_status="FAILED",
            expect_failure="bad_attest",
            expect_reasons=bad,
            chains=[sim.x5u("signer")],
        ),
        Vector(
            "origid_not_uuid",
            "origid is not a UUID, correctly signed",
            [sim.shaken("signer", {**sim_claims, "origid": "call-1234"})],
            expect_status="FAILED",
            expect_failure="bad_origid",
            expect_reasons=bad,
            chains=[sim.x5u("signer")],
        ),
        Vector(
            "iat_string",
            "iat as a string, correctly signed",
            [sim.shaken("signer", {**sim_claims, "iat": str(NOW)})],
            expect_status="FAILED",
            expect_failure="bad_claims",
            expect_reasons=bad,
            chains=[sim.x5u("signer")],
        ),
        Vector(
            "dest_tn_string",
            "dest.tn as a string rather than a list, correctly signed",
            [sim.shaken("signer", {**sim_claims, "dest": {"tn": CALLEE[1:]}})],
            expect_status="FAILED",
            expect_failure="bad_claims",
            expect_reasons=bad,
            chains=[sim.x5u("signer")],
        ),
        Vector(
            "oversize",
            "Identity header of 4097 characters (one over 4 KiB)",
            [valid + ";pad=" + "x" * (4096 - len(valid) - 4)],
            expect_failure="oversize",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "too_many_headers",
            "nine Identity headers (the valid one last): refused before parsing",
            ["e30.e30.AA;info=<https://x.invalid/>;ppt=shaken"] * 8 + [valid],
            expect_failure="too_many_headers",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "replay",
            "the same PASSporT verified twice within the window",
            [valid],
            repeat=2,
            expect_failure="replay",
            expect_reasons=bad,
            **failed,
        ),
        Vector(
            "compact_form",
            "compact form (empty claims) is not verifiable for SHAKEN",
            [_replace_claims(valid, b"")],
            "UNSUPPORTED",
            "compact_form",
            chains=chains,
        ),
        Vector(
            "div_only",
            "a div PASSporT without its SHAKEN PASSporT",
            [sim.div("diverter", simpki.div_claims(CALLER[1:], [FORWARD[1:]], CALLEE[1:], NOW))],
            "UNSUPPORTED",
            "div_without_shaken",
            called=FORWARD,
        ),
        Vector(
            "no_ppt_param",
            "an Identity header without ppt is a basic PASSporT, not SHAKEN",
            [valid.replace(";ppt=shaken", "")],
            "UNSUPPORTED",
            "unknown_ppt",
            chains=chains,
        ),
        Vector("pending", "certificate not cached yet: fetched in the background", [valid], "PENDING"),
        sim_failed("notnauth", "no_tnauthlist", "leaf without TNAuthList"),
        sim_failed("nospc", "bad_tnauthlist", "TNAuthList with a TN but no SPC"),
        sim_failed(
            "expiring", "cert_expired_at_iat", "leaf expires 10 s after now; iat 30 s after now", iat=NOW + 30
        ),
        sim_failed(
            "starting",
            "cert_not_yet_valid_at_iat",
            "leaf valid from 10 s before now; iat 30 s before now",
            iat=NOW - 30,
        ),
        sim_failed("expired", "cert_expired", "leaf expired an hour ago: refused at insert"),
        sim_failed("revoked", "cert_revoked", "leaf serial on the SubCA's CRL"),
        sim_failed("caleaf", "chain_invalid", "leaf is a CA"),
        sim_failed("nodigsig", "chain_invalid", "leaf keyUsage without digitalSignature"),
        sim_failed("critext", "bad_leaf", "leaf with an unknown critical extension"),
        sim_failed("rogue", "chain_invalid", "chain to an untrusted root"),
    ]
    used = {x5u for vector in vectors for x5u in vector.chains}
    leaves = {home.x5u: (home.certificate, pki.intermediate)}
    leaves.update({sim.x5u(label): (leaf.cert, issuer.cert) for label, (leaf, issuer) in sim.leaves.items()})
    certificates: dict[str, str] = {}
    chain_names: dict[str, list[str]] = {}
    for x5u, chain in sorted(leaves.items()):
        if x5u not in used:
            continue
        chain_names[x5u] = []
        for cert in chain:
            name = cert.subject.rfc4514_string()
            certificates[name] = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
            chain_names[x5u].append(name)
    return {
        "_notice": (
            "TEST-ONLY simulated STIR/SHAKEN PKI. Public certificates only; the private keys follow from "
            "public seeds, so nothing here may be trusted outside fraudmesh's unit tests. Generated by "
            "tests/unit/vectors/make_shaken_vectors.py; do not edit by hand."
        ),
        "region": REGION,
        "freshness_s": 60,
        "trust_anchors_pem": [pki.root_pem.decode("ascii"), sim.root.pem],
        "crls_pem": [sim.crl.public_bytes(serialization.Encoding.PEM).decode("ascii")],
        "crl_issuers_pem": [sim.sub.pem],
        "certificates_pem": certificates,
        "chains": chain_names,
        "vectors": [vector.as_json() for vector in vectors],
    }


def render() -> str:
    """The vectors file's exact text."""
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


def main() -> None:
    """Write the vectors file beside this script."""
    OUTPUT.write_text(render(), encoding="ascii")
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
