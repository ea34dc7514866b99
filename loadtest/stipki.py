"""Simulated STIR/SHAKEN PKI and PASSporT signing for the labelled carrier-traffic simulator.

Every simulated originating carrier that signs gets a certificate in a simulated chain
(STI-CA root → STI-SubCA intermediate → carrier SPC end-entity, as in ATIS-1000080) and signs
the calls it originates with an RFC 8224 Identity header carrying an RFC 8225/8588 PASSporT
(ATIS-1000074 SHAKEN profile). Everything is derived from the scenario seed: keys, serial numbers,
validity window, certificate signatures and PASSporT signatures (RFC 6979 deterministic ECDSA),
so the same seed yields byte-identical certificates and Identity headers.

The keys are derived from the seed and are therefore public knowledge: this PKI exists only for
simulation and must never be trusted for anything else. Certificate URLs use the ``.invalid``
top-level domain (RFC 6761), so nothing can ever fetch them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.x509.oid import NameOID

from services.origination.certs import TNAUTHLIST_OID
from training.pki import INTERMEDIATE_FILE, ROOT_FILE, x5u_url

SHAKEN_POLICY_OID = x509.ObjectIdentifier("2.16.840.1.114569.1.1.1")
CRL_URL = "https://crl.sti-ca.sim.invalid/sti.crl"
PREWARM_FILE = "prewarm.txt"
ATTESTATIONS = frozenset({"A", "B", "C"})

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ORGANIZATION = "fraudmesh simulation"
_CARRIER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_OCN = re.compile(r"[0-9A-Z]{4}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_IDENTITY_PARAM = re.compile(r";([A-Za-z0-9._-]+)=(<[^>]*>|[^;<>]*)")
_ES256 = ec.ECDSA(Prehashed(hashes.SHA256()), deterministic_signing=True)

_SEQUENCE = 0x30
_IA5STRING = 0x16
_TNENTRY_SPC = 0xA0


@dataclass(frozen=True)
class CarrierSpec:
    """A simulated originating carrier: DNS-label name, 4-character SPC/OCN, whether it signs."""

    name: str
    ocn: str
    signs: bool

    def __post_init__(self) -> None:
        """Reject names unusable as a DNS label or file name, and malformed OCNs."""
        if _CARRIER_NAME.fullmatch(self.name) is None:
            raise ValueError(f"carrier name must be a lowercase DNS label, got {self.name!r}")
        if _OCN.fullmatch(self.ocn) is None:
            raise ValueError(f"OCN must be 4 characters from 0-9 and A-Z, got {self.ocn!r}")


@dataclass(frozen=True)
class ParsedIdentity:
    """The parts of an Identity header as split by decode_identity_header (no checks applied)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    params: dict[str, str]


class SigningCarrier:
    """A signing carrier's SPC certificate, chain and private key; signs PASSporTs for its calls."""

    __slots__ = ("_header_dot", "_key", "_params", "certificate", "chain_pem", "name", "ocn", "x5u")

    def __init__(
        self,
        name: str,
        ocn: str,
        certificate: x509.Certificate,
        chain_pem: bytes,
        key: ec.EllipticCurvePrivateKey,
    ) -> None:
        """Hold the carrier's credentials and precompute the per-carrier parts of every header."""
        self.name = name
        self.ocn = ocn
        self.x5u = x5u_url(name, ocn)
        self.certificate = certificate
        self.chain_pem = chain_pem
        self._key = key
        header = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": self.x5u}
        self._header_dot = _b64url(_canonical_json(header)) + b"."
        self._params = f";info=<{self.x5u}>;alg=ES256;ppt=shaken"

    def __repr__(self) -> str:
        """Name the carrier without exposing its key."""
        return f"SigningCarrier(name={self.name!r}, ocn={self.ocn!r}, x5u={self.x5u!r})"

    def identity_header(
        self, orig_tn: str, dest_tns: Sequence[str], iat: int, attest: str, origid: str
    ) -> str:
        """Sign a SHAKEN PASSporT for one call and return the full RFC 8224 Identity header value.

        The value is ``header.claims.signature;info=<x5u>;alg=ES256;ppt=shaken`` (the PASSporT in
        full form, i.e. JWS compact serialization with all three parts). TNs are ASCII digits with an
        optional leading '+', which is stripped; origid is a UUID; iat is seconds since the epoch.
        """
        if attest not in ATTESTATIONS:
            raise ValueError(f"attest must be one of A, B, C, got {attest!r}")
        if isinstance(dest_tns, str) or not dest_tns:
            raise ValueError("dest_tns must be a non-empty sequence of telephone numbers")
        if type(iat) is not int or iat < 0:
            raise ValueError(f"iat must be a non-negative int, got {iat!r}")
        if _UUID.fullmatch(origid) is None:
            raise ValueError(f"origid must be a UUID, got {origid!r}")
        dest = '","'.join([_passport_tn(tn) for tn in dest_tns])
        claims = (
            f'{{"attest":"{attest}","dest":{{"tn":["{dest}"]}},"iat":{iat},'
            f'"orig":{{"tn":"{_passport_tn(orig_tn)}"}},"origid":"{origid}"}}'
        )
        signing_input = self._header_dot + _b64url(claims.encode("ascii"))
        r, s = decode_dss_signature(self._key.sign(hashlib.sha256(signing_input).digest(), _ES256))
        signature = _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        return (signing_input + b"." + signature).decode("ascii") + self._params


class StiPki:
    """The simulated STI-CA root, STI-SubCA intermediate and the signing carriers they certify."""

    __slots__ = ("carriers", "intermediate", "intermediate_pem", "root", "root_pem")

    def __init__(
        self, root: x509.Certificate, intermediate: x509.Certificate, carriers: dict[str, SigningCarrier]
    ) -> None:
        """Hold the CA certificates and the signing carriers by name."""
        self.root = root
        self.intermediate = intermediate
        self.root_pem = root.public_bytes(serialization.Encoding.PEM)
        self.intermediate_pem = intermediate.public_bytes(serialization.Encoding.PEM)
        self.carriers = carriers

    def trust_anchors(self) -> list[x509.Certificate]:
        """The certificates a verifier trusts: only the STI-CA root."""
        return [self.root]

    def write(self, folder: Path) -> None:
        """Write the CA certificates and each carrier's x5u chain as PEM; never any private key."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ROOT_FILE).write_bytes(self.root_pem)
        (folder / INTERMEDIATE_FILE).write_bytes(self.intermediate_pem)
        lines = ["# x5u → chain PEM, for origination's FRAUDMESH_X5U_PREWARM_FILE (simulated PKI)"]
        for carrier in self.carriers.values():
            (folder / f"{carrier.name}.pem").write_bytes(carrier.chain_pem)
            lines.append(f"{carrier.x5u} {carrier.name}.pem")
        (folder / PREWARM_FILE).write_text("\n".join(lines) + "\n")


def build_pki(
    seed: int, carriers: Sequence[CarrierSpec], not_before: datetime, validity_days: int = 365
) -> StiPki:
    """Derive the whole simulated PKI from the seed: same seed and inputs → byte-identical certs.

    not_before must be timezone-aware; it is truncated to whole seconds (X.509 time resolution).
    Only carriers with ``signs=True`` get a certificate.
    """
    if not_before.tzinfo is None or not_before.utcoffset() is None:
        raise ValueError("not_before must be timezone-aware")
    if validity_days < 1:
        raise ValueError(f"validity_days must be at least 1, got {validity_days}")
    names = [spec.name for spec in carriers]
    if len(set(names)) != len(names):
        raise ValueError("carrier names must be unique")
    for spec in carriers:
        if spec.signs and f"{spec.name}.pem" in (ROOT_FILE, INTERMEDIATE_FILE):
            raise ValueError(f"carrier name {spec.name!r} clashes with a CA certificate file")
    start = not_before.astimezone(UTC).replace(microsecond=0)
    window = (start, start + timedelta(days=validity_days))

    root_key = _derive_key(seed, "root", "sti-ca")
    root_name = _name("fraudmesh simulated STI-CA")
    root = _issue(
        _serial(seed, "root", "sti-ca"),
        root_name,
        root_key.public_key(),
        root_name,
        root_key,
        window,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (_ca_key_usage(), True),
            (x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False),
        ],
    )

    sub_key = _derive_key(seed, "intermediate", "sti-subca")
    sub_name = _name("fraudmesh simulated STI-SubCA")
    intermediate = _issue(
        _serial(seed, "intermediate", "sti-subca"),
        sub_name,
        sub_key.public_key(),
        root_name,
        root_key,
        window,
        [
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (_ca_key_usage(), True),
            (x509.SubjectKeyIdentifier.from_public_key(sub_key.public_key()), False),
            (_authority_key_id(root), False),
            (_shaken_policy(), False),
        ],
    )
    intermediate_pem = intermediate.public_bytes(serialization.Encoding.PEM)

    signing: dict[str, SigningCarrier] = {}
    for spec in carriers:
        if not spec.signs:
            continue
        key = _derive_key(seed, "spc", spec.name)
        leaf = _issue(
            _serial(seed, "spc", spec.name),
            _name(f"{spec.name} SHAKEN {spec.ocn}"),
            key.public_key(),
            sub_name,
            sub_key,
            window,
            [
                (x509.BasicConstraints(ca=False, path_length=None), True),
                (_leaf_key_usage(), True),
                (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
                (_authority_key_id(intermediate), False),
                (_crl_distribution_points(), False),
                (_shaken_policy(), False),
                (x509.UnrecognizedExtension(TNAUTHLIST_OID, _tnauthlist_der([spec.ocn])), False),
            ],
        )
        chain_pem = leaf.public_bytes(serialization.Encoding.PEM) + intermediate_pem
        signing[spec.name] = SigningCarrier(spec.name, spec.ocn, leaf, chain_pem, key)
    return StiPki(root, intermediate, signing)


def decode_identity_header(value: str) -> ParsedIdentity:
    """Split an Identity header value into its parts; a test and simulation helper, not a verifier.

    It decodes base64url and JSON and parses the ``;name=value`` parameters (``info`` without its
    angle brackets) but checks no signature, certificate, claim, freshness or canonical form.
    Raises ValueError on a value it cannot split.
    """
    passport, _, tail = value.partition(";")
    parts = passport.split(".")
    if len(parts) != 3:
        raise ValueError("PASSporT must have three dot-separated parts")
    header_b64, claims_b64, signature_b64 = parts
    signature = _b64url_decode(signature_b64)
    if len(signature) != 64:
        raise ValueError(f"ES256 signature must be 64 bytes, got {len(signature)}")
    params: dict[str, str] = {}
    consumed = 0
    tail = ";" + tail if tail else ""
    for match in _IDENTITY_PARAM.finditer(tail):
        if match.start() != consumed:
            break
        param_value = match.group(2)
        if param_value.startswith("<"):
            param_value = param_value[1:-1]
        params[match.group(1)] = param_value
        consumed = match.end()
    if consumed != len(tail):
        raise ValueError(f"cannot parse Identity header parameters {tail!r}")
    header = json.loads(_b64url_decode(header_b64))
    claims = json.loads(_b64url_decode(claims_b64))
    if not (isinstance(header, dict) and isinstance(claims, dict)):
        raise ValueError("PASSporT header and claims must be JSON objects")
    return ParsedIdentity(
        header=header,
        claims=claims,
        signing_input=f"{header_b64}.{claims_b64}".encode("ascii"),
        signature=signature,
        params=params,
    )


def _passport_tn(tn: str) -> str:
    """A TN in PASSporT form: ASCII digits, no leading '+'."""
    digits = tn[1:] if tn.startswith("+") else tn
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"telephone number must be digits with an optional leading '+', got {tn!r}")
    return digits


def _canonical_json(value: dict[str, Any]) -> bytes:
    """RFC 8225 canonical JSON: keys in lexicographic order, no whitespace, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _b64url(data: bytes) -> bytes:
    """Base64url without padding, as JWS requires."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _seed_digest(seed: int, role: str, name: str) -> bytes:
    """The SHA-256 of the seed, role and name every derived value starts from."""
    return hashlib.sha256(f"{seed}:{role}:{name}".encode()).digest()


def _derive_key(seed: int, role: str, name: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key whose scalar is derived from the seed, role and name, in [1, n-1]."""
    scalar = int.from_bytes(_seed_digest(seed, role, name), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _serial(seed: int, role: str, name: str) -> int:
    """A positive certificate serial number of at most 152 bits derived from the seed."""
    return int.from_bytes(_seed_digest(seed, f"{role}-serial", name)[:19], "big") or 1


def _name(common_name: str) -> x509.Name:
    """A subject or issuer name in the simulated organisation."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    serial: int,
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    window: tuple[datetime, datetime],
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """Issue a certificate signed with deterministic ECDSA-SHA256, so its bytes depend only on inputs."""
    builder = (
        x509.CertificateBuilder()
        .serial_number(serial)
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .not_valid_before(window[0])
        .not_valid_after(window[1])
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)


def _ca_key_usage() -> x509.KeyUsage:
    """keyCertSign and cRLSign only."""
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage() -> x509.KeyUsage:
    """digitalSignature only."""
    return x509.KeyUsage(
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


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """The authority key identifier pointing at the issuer's subject key identifier."""
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _shaken_policy() -> x509.CertificatePolicies:
    """The SHAKEN certificate policy."""
    return x509.CertificatePolicies([x509.PolicyInformation(SHAKEN_POLICY_OID, None)])


def _crl_distribution_points() -> x509.CRLDistributionPoints:
    """The simulated STI-CA CRL location."""
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(CRL_URL)], None, None, None)
    return x509.CRLDistributionPoints([point])


def _der_length(length: int) -> bytes:
    """A DER definite length: short form below 128, otherwise minimal long form."""
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, content: bytes) -> bytes:
    """One DER tag-length-value."""
    return bytes([tag]) + _der_length(len(content)) + content


def _tnauthlist_der(spcs: Sequence[str]) -> bytes:
    """RFC 8226 TNAuthorizationList of spc entries, EXPLICIT tags: 30 L (A0 L (16 L spc))."""
    entries = b"".join(_der_tlv(_TNENTRY_SPC, _der_tlv(_IA5STRING, spc.encode("ascii"))) for spc in spcs)
    return _der_tlv(_SEQUENCE, entries)
