"""Test-only simulated STI PKI with the knobs loadtest.stipki does not expose.

loadtest.stipki builds the realistic chain and signs ordinary SHAKEN PASSporTs; the origination
tests also need certificates that are wrong on purpose (no TNAuthList, expired, CA leaf, untrusted
root, revoked), PASSporTs with arbitrary header and claims bytes (div, duplicate keys, alg
confusion) and CRLs. Every key here is derived from a public seed: never trust any of it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

TNAUTHLIST_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.26")
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_DETERMINISTIC = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


@dataclass(frozen=True)
class Issued:
    """A certificate and the private key of its subject."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        """The certificate as PEM text."""
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def derive_key(seed: int, label: str, curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    """A key (P-256 unless curve says otherwise) derived from seed and label (public, deterministic)."""
    digest = hashlib.sha256(f"simpki:{seed}:{label}".encode()).digest()
    return ec.derive_private_key(
        int.from_bytes(digest, "big") % (P256_ORDER - 1) + 1, curve or ec.SECP256R1()
    )


def _der_tlv(tag: int, content: bytes) -> bytes:
    """One DER TLV."""
    length = len(content)
    if length < 0x80:
        encoded = bytes([length])
    else:
        body = length.to_bytes((length.bit_length() + 7) // 8, "big")
        encoded = bytes([0x80 | len(body)]) + body
    return bytes([tag]) + encoded + content


def tnauthlist_der(spcs: list[str], tns: list[str] | None = None) -> bytes:
    """RFC 8226 TNAuthList DER with spc ([0]) and one ([2]) entries, EXPLICIT tags."""
    entries = b"".join(_der_tlv(0xA0, _der_tlv(0x16, spc.encode())) for spc in spcs)
    entries += b"".join(_der_tlv(0xA2, _der_tlv(0x16, tn.encode())) for tn in tns or [])
    return _der_tlv(0x30, entries)


def _name(common_name: str) -> x509.Name:
    """A name in the test organisation."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fraudmesh test-only PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    """A keyUsage with the given signing bits (cRLSign follows keyCertSign)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def issue(
    seed: int,
    label: str,
    issuer: Issued | None,
    not_before: datetime,
    not_after: datetime,
    *,
    ca: bool = False,
    path_length: int | None = None,
    spcs: list[str] | None = None,
    tnauthlist: bytes | None = None,
    digital_signature: bool = True,
    leaf_ca: bool = False,
    unknown_critical: bool = False,
    curve: ec.EllipticCurve | None = None,
    hash_algorithm: hashes.SHA256 | hashes.SHA384 | None = None,
) -> Issued:
    """Issue a certificate (self-signed when issuer is None) with deterministic key and signature.

    Leaves get a TNAuthList from ``tnauthlist`` (raw DER) or ``spcs``; with neither, none at all.
    """
    key = derive_key(seed, label, curve)
    subject = _name(label)
    signer_key = issuer.key if issuer else key
    serial = int.from_bytes(hashlib.sha256(f"serial:{seed}:{label}".encode()).digest()[:16], "big") | 1
    builder = (
        x509.CertificateBuilder()
        .serial_number(serial)
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    builder = builder.add_extension(
        x509.BasicConstraints(ca=ca or leaf_ca, path_length=path_length if ca else None), critical=True
    )
    builder = builder.add_extension(
        _usage(digital_signature=not ca and digital_signature, cert_sign=ca or leaf_ca), critical=True
    )
    der = tnauthlist if tnauthlist is not None else (tnauthlist_der(spcs) if spcs else None)
    if der is not None and not ca:
        builder = builder.add_extension(x509.UnrecognizedExtension(TNAUTHLIST_OID, der), critical=False)
    if unknown_critical:
        private_oid = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
        builder = builder.add_extension(x509.UnrecognizedExtension(private_oid, b"\x05\x00"), critical=True)
    cert = builder.sign(signer_key, hash_algorithm or hashes.SHA256(), ecdsa_deterministic=True)
    return Issued(cert, key)


def crl(issuer: Issued, serials: list[int], this_update: datetime) -> x509.CertificateRevocationList:
    """A CRL from issuer revoking serials, deterministically signed."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(this_update)
        .next_update(this_update + timedelta(days=7))
    )
    for serial in serials:
        revoked = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update).build()
        builder = builder.add_revoked_certificate(revoked)
    return builder.sign(issuer.key, hashes.SHA256(), ecdsa_deterministic=True)


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(value: dict[str, Any]) -> bytes:
    """RFC 8225 canonical JSON (sorted keys, no whitespace)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sign_raw(key: ec.EllipticCurvePrivateKey, signing_input: bytes) -> bytes:
    """The 64-byte r||s ES256 signature of signing_input (RFC 6979 deterministic)."""
    r, s = decode_dss_signature(key.sign(signing_input, _DETERMINISTIC))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def jws(
    key: ec.EllipticCurvePrivateKey, header: dict[str, Any] | bytes, claims: dict[str, Any] | bytes
) -> str:
    """header.claims.signature with the given JSON (dicts canonicalised, bytes used verbatim)."""
    header_bytes = header if isinstance(header, bytes) else canonical(header)
    claims_bytes = claims if isinstance(claims, bytes) else canonical(claims)
    signing_input = f"{b64url(header_bytes)}.{b64url(claims_bytes)}"
    return f"{signing_input}.{b64url(sign_raw(key, signing_input.encode()))}"


def identity(token: str, x5u: str, ppt: str | None = "shaken", alg: str | None = "ES256") -> str:
    """An RFC 8224 Identity header value around a JWS."""
    value = f"{token};info=<{x5u}>"
    if alg is not None:
        value += f";alg={alg}"
    if ppt is not None:
        value += f";ppt={ppt}"
    return value


def shaken_header(x5u: str, /, **overrides: Any) -> dict[str, Any]:
    """The SHAKEN JOSE header for x5u, with overrides (None removes a member)."""
    header: dict[str, Any] = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": x5u}
    for name, value in overrides.items():
        if value is None:
            header.pop(name, None)
        else:
            header[name] = value
    return header


def shaken_claims(
    orig: str, dest: list[str], iat: int, attest: str = "A", origid: str = ""
) -> dict[str, Any]:
    """SHAKEN claims (TNs as digits without '+')."""
    return {
        "attest": attest,
        "dest": {"tn": dest},
        "iat": iat,
        "orig": {"tn": orig},
        "origid": origid or "0f0e0d0c-0b0a-4908-8706-050403020100",
    }


def override(members: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of a JSON object with changes applied; a None value removes the member."""
    result = {**members, **changes}
    return {name: value for name, value in result.items() if value is not None}


def div_claims(orig: str, dest: list[str], diverted_from: str, iat: int) -> dict[str, Any]:
    """RFC 8946 div claims: the call from orig, diverted from diverted_from to dest."""
    return {"dest": {"tn": dest}, "div": {"tn": diverted_from}, "iat": iat, "orig": {"tn": orig}}
