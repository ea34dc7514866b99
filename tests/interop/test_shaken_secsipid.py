"""SHAKEN interop: Kamailio's secsipid module signs Identity headers, fraudmesh's own verifier checks them.

A real ``kamailio`` (Debian's kamailio and kamailio-secsipid-modules, libsecsipid underneath) runs
``kamailio/shaken_sign.cfg`` on a free loopback UDP port with the leaf key of a test STI PKI
(``tests.unit.vectors.simpki``: root, sub-CA, SPC leaves with a TNAuthList). Over plain SIP the
test has it sign — ``secsipid_build_identity`` answering a MESSAGE, ``secsipid_sign`` on JSON the
test chooses, ``secsipid_add_identity`` on an INVITE it forwards back — and verifies each Identity
header with ``Verifier`` against an in-memory certificate cache holding the chains (nothing is
fetched): VERIFIED with the signed attestation, and every tampered or mismatched copy FAILED,
UNSUPPORTED or PENDING with the failure and reason code fraudmesh emits for it. Without kamailio
the tests fail; CI installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from cryptography.hazmat.primitives import serialization

from fraudmesh.v1 import call_pb2, common_pb2, verdicts_pb2
from loadtest.kamailio import free_udp_port
from services.common.reasons import Reason
from services.origination.certs import CertificateCache, CertificateError, ChainValidator
from services.origination.failures import Failure
from services.origination.passport import MemoryReplayStore, ShakenResult, Verifier, split_identity
from tests.unit.vectors import simpki

pytestmark = pytest.mark.interop

CONFIG: Final = Path(__file__).parent / "kamailio" / "shaken_sign.cfg"
SEED: Final = 8803
REGION: Final = "CN"
CALLER: Final = "+8613800138000"
CALLEE: Final = "+8613912345678"
FORGED_CALLER: Final = "+8613700137000"
OTHER_CALLEE: Final = "+8613600136000"
ORIGID: Final = "7b0c9a1e-2d3f-4a5b-8c6d-7e8f9a0b1c2d"
HOME_X5U: Final = "https://cert.home.test/H001.pem"
OTHER_X5U: Final = "https://cert.other.test/O002.pem"
ROGUE_X5U: Final = "https://cert.rogue.test/R003.pem"
UNKNOWN_X5U: Final = "https://cert.unknown.test/U004.pem"
START_TIMEOUT_S: Final = 10.0
REPLY_TIMEOUT_S: Final = 5.0
_COMPACT_HEADERS: Final = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "l": "content-length",
    "y": "identity",
}

VERIFIED: Final = verdicts_pb2.SHAKEN_STATUS_VERIFIED
FAILED: Final = verdicts_pb2.SHAKEN_STATUS_FAILED
PENDING: Final = verdicts_pb2.SHAKEN_STATUS_PENDING
UNSUPPORTED: Final = verdicts_pb2.SHAKEN_STATUS_UNSUPPORTED


@dataclass(frozen=True)
class Pki:
    """The test STI PKI: trusted root and sub-CA, two carriers, an untrusted chain, the signing key file."""

    root: simpki.Issued
    sub: simpki.Issued
    home: simpki.Issued
    other: simpki.Issued
    rogue_root: simpki.Issued
    rogue: simpki.Issued
    home_key: Path


@dataclass(frozen=True)
class SipMessage:
    """A received SIP message's start line and headers (names lower-cased, compact forms expanded)."""

    start_line: str
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        """Parse the head of a SIP message (folded lines joined)."""
        lines = data.partition(b"\r\n\r\n")[0].decode("utf-8").split("\r\n")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers.append((_COMPACT_HEADERS.get(name, name), value.strip()))
        return cls(lines[0], tuple(headers))

    def values(self, name: str) -> list[str]:
        """Every value of a header, in order."""
        return [value for header, value in self.headers if header == name.lower()]

    def value(self, name: str) -> str:
        """The one value of a header (the test fails if it is missing or repeated)."""
        found = self.values(name)
        assert len(found) == 1, f"expected one {name} header in {self.start_line!r}: {found}"
        return found[0]


@dataclass
class Kamailio:
    """The running kamailio signer and the test's UDP socket talking to it."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))

    @property
    def local_port(self) -> int:
        """The test socket's port (where forwarded INVITEs arrive)."""
        return int(self.sock.getsockname()[1])

    def log_tail(self) -> str:
        """The end of kamailio's log, for failure messages."""
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else "(no log)"

    def send(
        self,
        method: str,
        headers: dict[str, str],
        *,
        caller: str = CALLER,
        callee: str = CALLEE,
        ruri: str | None = None,
        timeout_s: float = REPLY_TIMEOUT_S,
    ) -> SipMessage:
        """Send one request; return kamailio's final reply, or for an INVITE the INVITE it forwarded."""
        call_id = f"{uuid.uuid4()}@interop.test"
        lines = [
            f"{method} {ruri or f'sip:{callee}@127.0.0.1:{self.port};user=phone'} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.local_port};rport;branch=z9hG4bK-{uuid.uuid4().hex}",
            "Max-Forwards: 70",
            f"From: <sip:{caller}@127.0.0.1;user=phone>;tag={uuid.uuid4().hex[:10]}",
            f"To: <sip:{callee}@127.0.0.1;user=phone>",
            f"Call-ID: {call_id}",
            f"CSeq: 1 {method}",
            *(f"{name}: {value}" for name, value in headers.items()),
            "Content-Length: 0",
        ]
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), ("127.0.0.1", self.port))
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                break
            message = SipMessage.parse(data)
            if message.values("call-id") != [call_id]:
                continue
            if message.start_line.startswith("SIP/2.0 1"):
                continue
            return message
        raise TimeoutError(f"no answer to {method} within {timeout_s} s")

    def signed(
        self,
        method: str,
        headers: dict[str, str],
        *,
        caller: str = CALLER,
        callee: str = CALLEE,
        ruri: str | None = None,
    ) -> SipMessage:
        """send(), failing the test with kamailio's log unless it signed."""
        try:
            message = self.send(method, headers, caller=caller, callee=callee, ruri=ruri)
        except TimeoutError as exc:
            pytest.fail(f"{exc}; kamailio log:\n{self.log_tail()}", pytrace=False)
        if not (message.start_line.startswith("SIP/2.0 200") or message.start_line.startswith("INVITE ")):
            pytest.fail(f"kamailio answered {message.start_line!r}; log:\n{self.log_tail()}", pytrace=False)
        return message

    def build_identity(
        self,
        attest: str = "A",
        x5u: str = HOME_X5U,
        *,
        origid: str = ORIGID,
        caller: str = CALLER,
        callee: str = CALLEE,
    ) -> str:
        """An Identity header from ``secsipid_build_identity`` (a MESSAGE answered with it)."""
        headers = {"X-Attest": attest, "X-Origid": origid, "X-X5u": x5u}
        return self.signed("MESSAGE", headers, caller=caller, callee=callee).value("identity")

    def sign(self, header: dict[str, Any], claims: dict[str, Any], x5u: str = HOME_X5U) -> str:
        """An Identity header from ``secsipid_sign`` over the given JOSE header and claims JSON."""
        headers = {
            "X-Passport-Header": json.dumps(header, separators=(",", ":")),
            "X-Passport-Claims": json.dumps(claims, separators=(",", ":")),
            "X-X5u": x5u,
        }
        return self.signed("MESSAGE", headers).value("identity")

    def invite(self, attest: str, x5u: str = HOME_X5U) -> SipMessage:
        """An INVITE signed by ``secsipid_add_identity`` and forwarded back to the test's socket."""
        ruri = f"sip:{CALLEE}@127.0.0.1:{self.local_port};user=phone"
        return self.signed("INVITE", {"X-Attest": attest, "X-X5u": x5u}, ruri=ruri)


def kamailio_binary() -> str:
    """The kamailio executable (PATH, then Debian's /usr/sbin); the test fails without it."""
    found = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
    if found is None:
        pytest.fail(
            "kamailio not found on PATH (nor in /usr/sbin): the interop tests need Debian's kamailio and "
            "kamailio-secsipid-modules (apt-get install kamailio kamailio-secsipid-modules)",
            pytrace=False,
        )
    return found


def build_pki(folder: Path) -> Pki:
    """The test PKI, with the home carrier's private key written as PKCS#8 PEM for kamailio."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    end = start + timedelta(days=365)
    root = simpki.issue(SEED, "interop-sti-ca", None, start, end, ca=True)
    sub = simpki.issue(SEED, "interop-sti-subca", root, start, end, ca=True, path_length=0)
    rogue_root = simpki.issue(SEED, "interop-rogue-ca", None, start, end, ca=True)
    key_file = folder / "home-key.pem"
    pki = Pki(
        root=root,
        sub=sub,
        home=simpki.issue(SEED, "interop-home", sub, start, end, spcs=["H001"]),
        other=simpki.issue(SEED, "interop-other", sub, start, end, spcs=["O002"]),
        rogue_root=rogue_root,
        rogue=simpki.issue(SEED, "interop-rogue", rogue_root, start, end, spcs=["H001"]),
        home_key=key_file,
    )
    key_file.write_bytes(
        pki.home.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    return pki


def _wait_ready(signer: Kamailio) -> None:
    """Probe with OPTIONS until kamailio answers; fail with its log if it exits or stays silent."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        code = signer.process.poll()
        if code is not None:
            pytest.fail(f"kamailio exited with code {code}; log:\n{signer.log_tail()}", pytrace=False)
        try:
            reply = signer.send("OPTIONS", {}, timeout_s=0.2)
        except (TimeoutError, ConnectionRefusedError):
            continue
        if reply.start_line.startswith("SIP/2.0 200"):
            return
    pytest.fail(
        f"kamailio did not answer OPTIONS within {START_TIMEOUT_S} s; log:\n{signer.log_tail()}",
        pytrace=False,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop kamailio (SIGTERM makes it stop its children); SIGKILL its own process group if it hangs."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The test PKI in a temporary folder (kamailio reads the home key from there)."""
    return build_pki(tmp_path_factory.mktemp("interop-pki"))


@pytest.fixture(scope="module")
def kamailio(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    """kamailio running shaken_sign.cfg in the foreground with the home key; always stopped."""
    binary = kamailio_binary()
    folder = tmp_path_factory.mktemp("kamailio")
    port = free_udp_port()
    log = folder / "kamailio.log"
    command = [
        binary,
        *("-f", str(CONFIG), "-DD", "-E", "-n", "1", "-Y", str(folder), "-w", str(folder)),
        *("-A", f"SIP_PORT={port}", "-A", f'SHAKEN_KEY="{pki.home_key}"'),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    signer = Kamailio(process, port, log)
    try:
        signer.sock.bind(("127.0.0.1", 0))
        _wait_ready(signer)
        yield signer
    finally:
        signer.sock.close()
        _stop(process)


@pytest.fixture(scope="module")
def chains(pki: Pki) -> CertificateCache:
    """The verifier's certificate cache: home and other carriers validated, the rogue x5u refused."""
    cache = CertificateCache(ChainValidator([pki.root.cert]), negative_ttl_s=3600.0)
    cache.insert(HOME_X5U, [pki.home.cert, pki.sub.cert])
    cache.insert(OTHER_X5U, [pki.other.cert, pki.sub.cert])
    with pytest.raises(CertificateError):
        cache.insert(ROGUE_X5U, [pki.rogue.cert, pki.rogue_root.cert])
    return cache


@pytest.fixture
def misses() -> list[str]:
    """The x5u URLs the verifier asked to fetch."""
    return []


@pytest.fixture
def verifier(chains: CertificateCache, misses: list[str]) -> Verifier:
    """fraudmesh's PASSporT verifier, as origination and decision run it (fresh replay memory per test)."""
    return Verifier(chains, MemoryReplayStore(), on_miss=misses.append)


def setup_for(
    identity: str | Sequence[str], caller: str = CALLER, callee: str = CALLEE
) -> call_pb2.CallSetup:
    """A call setup presenting caller to callee with the given Identity header values."""
    return call_pb2.CallSetup(
        call_id=f"interop-{uuid.uuid4()}",
        tenant="demo-cn",
        calling_number=caller,
        called_number=callee,
        identity_headers=[identity] if isinstance(identity, str) else list(identity),
        ingress_trunk_id="trunk-kamailio",
        ingress_kind=common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
    )


def outcome(result: ShakenResult) -> tuple[int, Failure | None, tuple[Reason, ...]]:
    """What a test asserts about a result: status, failure and reason codes."""
    return result.status, result.failure, result.reason_codes


def _split(identity: str) -> tuple[list[str], str]:
    """The three JWS parts and the parameter text of an Identity header."""
    token, semicolon, params = identity.partition(";")
    return token.split("."), semicolon + params


def _decode(part: str) -> dict[str, Any]:
    """A JWS part's JSON object."""
    value = json.loads(simpki.b64url_decode(part))
    assert isinstance(value, dict)
    return value


def _encode(value: dict[str, Any]) -> str:
    """A JSON object as a JWS part."""
    return simpki.b64url(json.dumps(value, separators=(",", ":")).encode())


def with_claims(**changes: Any) -> Callable[[str], str]:
    """The header with claims members changed (the signature kept)."""

    def edit(identity: str) -> str:
        (header, claims, signature), params = _split(identity)
        return ".".join([header, _encode({**_decode(claims), **changes}), signature]) + params

    return edit


def with_jose(**changes: Any) -> Callable[[str], str]:
    """The header with JOSE header members changed (the signature kept)."""

    def edit(identity: str) -> str:
        (header, claims, signature), params = _split(identity)
        return ".".join([_encode({**_decode(header), **changes}), claims, signature]) + params

    return edit


def with_signature(change: Callable[[bytes], bytes]) -> Callable[[str], str]:
    """The header with its decoded r||s signature bytes changed."""

    def edit(identity: str) -> str:
        (header, claims, signature), params = _split(identity)
        return f"{header}.{claims}.{simpki.b64url(change(simpki.b64url_decode(signature)))}{params}"

    return edit


def with_iat_shift(seconds: int) -> Callable[[str], str]:
    """The header with its iat claim moved by seconds (the signature kept)."""

    def edit(identity: str) -> str:
        iat = _decode(_split(identity)[0][1])["iat"]
        return with_claims(iat=iat + seconds)(identity)

    return edit


def with_x5u(x5u: str) -> Callable[[str], str]:
    """The header with both its JOSE x5u and its info parameter pointed at x5u (the signature kept)."""

    def edit(identity: str) -> str:
        return with_params(f";info=<{x5u}>;alg=ES256;ppt=shaken")(with_jose(x5u=x5u)(identity))

    return edit


def with_params(params: str) -> Callable[[str], str]:
    """The header with its parameter text replaced."""

    def edit(identity: str) -> str:
        return ".".join(_split(identity)[0]) + params

    return edit


def _flip_byte(raw: bytes) -> bytes:
    """The signature with one bit of s changed."""
    return raw[:40] + bytes([raw[40] ^ 0x01]) + raw[41:]


def _digits(number: str) -> str:
    """A +E.164 number as PASSporT TN digits."""
    return number.lstrip("+")


@dataclass(frozen=True)
class Tamper:
    """One tampering of a secsipid-signed header and the outcome fraudmesh must give it."""

    edit: Callable[[str], str]
    status: int
    failure: Failure
    reason: Reason
    attest: str = "A"
    caller: str = CALLER
    callee: str = CALLEE


TAMPERS: Final = {
    "signature byte changed": Tamper(
        with_signature(_flip_byte), FAILED, Failure.SIG_INVALID, Reason.SHAKEN_SIGNATURE_INVALID
    ),
    "signature truncated": Tamper(
        with_signature(lambda raw: raw[:63]), FAILED, Failure.SIG_LENGTH, Reason.SHAKEN_SIGNATURE_INVALID
    ),
    "signature base64 padded": Tamper(
        lambda identity: identity.replace(";", "=;", 1),
        FAILED,
        Failure.BAD_BASE64,
        Reason.SHAKEN_SIGNATURE_INVALID,
    ),
    "orig tn changed, call from the forged caller": Tamper(
        with_claims(orig={"tn": _digits(FORGED_CALLER)}),
        FAILED,
        Failure.SIG_INVALID,
        Reason.SHAKEN_SIGNATURE_INVALID,
        caller=FORGED_CALLER,
    ),
    "orig tn changed": Tamper(
        with_claims(orig={"tn": _digits(FORGED_CALLER)}),
        FAILED,
        Failure.ORIG_MISMATCH,
        Reason.SHAKEN_TN_MISMATCH,
    ),
    "dest tn changed, call to the new callee": Tamper(
        with_claims(dest={"tn": [_digits(OTHER_CALLEE)]}),
        FAILED,
        Failure.SIG_INVALID,
        Reason.SHAKEN_SIGNATURE_INVALID,
        callee=OTHER_CALLEE,
    ),
    "attestation raised from C to A": Tamper(
        with_claims(attest="A"), FAILED, Failure.SIG_INVALID, Reason.SHAKEN_SIGNATURE_INVALID, attest="C"
    ),
    "origid changed": Tamper(
        with_claims(origid=str(uuid.UUID(int=1))),
        FAILED,
        Failure.SIG_INVALID,
        Reason.SHAKEN_SIGNATURE_INVALID,
    ),
    "iat moved one second back": Tamper(
        with_iat_shift(-1),
        FAILED,
        Failure.SIG_INVALID,
        Reason.SHAKEN_SIGNATURE_INVALID,
    ),
    "iat moved an hour back": Tamper(
        with_iat_shift(-3600),
        FAILED,
        Failure.STALE_IAT,
        Reason.SHAKEN_SIGNATURE_INVALID,
    ),
    "x5u and info pointed at another carrier": Tamper(
        with_x5u(OTHER_X5U),
        FAILED,
        Failure.SIG_INVALID,
        Reason.SHAKEN_SIGNATURE_INVALID,
    ),
    "x5u pointed at an unknown URL": Tamper(
        with_jose(x5u=UNKNOWN_X5U), FAILED, Failure.INFO_MISMATCH, Reason.SHAKEN_SIGNATURE_INVALID
    ),
    "info parameter pointed at another carrier": Tamper(
        with_params(f";info=<{OTHER_X5U}>;alg=ES256;ppt=shaken"),
        FAILED,
        Failure.INFO_MISMATCH,
        Reason.SHAKEN_SIGNATURE_INVALID,
    ),
    "info parameter removed": Tamper(
        with_params(";alg=ES256;ppt=shaken"), FAILED, Failure.BAD_PARAMS, Reason.SHAKEN_SIGNATURE_INVALID
    ),
    "alg parameter ES384": Tamper(
        with_params(f";info=<{HOME_X5U}>;alg=ES384;ppt=shaken"),
        FAILED,
        Failure.BAD_ALG,
        Reason.SHAKEN_SIGNATURE_INVALID,
    ),
    "ppt parameter removed": Tamper(
        with_params(f";info=<{HOME_X5U}>;alg=ES256"),
        UNSUPPORTED,
        Failure.UNKNOWN_PPT,
        Reason.SHAKEN_UNSUPPORTED,
    ),
    "JOSE typ changed": Tamper(
        with_jose(typ="JWT"), FAILED, Failure.BAD_TYP, Reason.SHAKEN_SIGNATURE_INVALID
    ),
    "JOSE alg none": Tamper(with_jose(alg="none"), FAILED, Failure.BAD_ALG, Reason.SHAKEN_SIGNATURE_INVALID),
    "claims removed (compact form)": Tamper(
        lambda identity: identity.replace(_split(identity)[0][1], "", 1),
        UNSUPPORTED,
        Failure.COMPACT_FORM,
        Reason.SHAKEN_UNSUPPORTED,
    ),
}


@pytest.mark.parametrize("attest", ["A", "B", "C"])
def test_build_identity_verifies_with_its_attestation(
    kamailio: Kamailio, verifier: Verifier, attest: str
) -> None:
    identity = kamailio.build_identity(attest)
    result = verifier.verify(setup_for(identity), REGION)
    expected_reasons = {"A": (), "B": (Reason.SHAKEN_ATTESTATION_B,), "C": (Reason.SHAKEN_ATTESTATION_C,)}
    assert outcome(result) == (VERIFIED, None, expected_reasons[attest])
    assert result.attestation == {"A": common_pb2.ATTESTATION_A, "B": common_pb2.ATTESTATION_B}.get(
        attest, common_pb2.ATTESTATION_C
    )
    assert (result.origid, result.signer_ocn, result.x5u) == (ORIGID, "H001", HOME_X5U)


def test_secsipid_header_form_is_the_one_fraudmesh_parses(kamailio: Kamailio) -> None:
    identity = kamailio.build_identity("B")
    parsed = split_identity(identity)
    (header, claims, _signature), _params = _split(identity)
    assert (parsed.info, parsed.alg, parsed.ppt) == (HOME_X5U, "ES256", "shaken")
    assert _decode(header) == {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": HOME_X5U}
    signed = _decode(claims)
    assert (signed["attest"], signed["orig"], signed["dest"], signed["origid"]) == (
        "B",
        {"tn": _digits(CALLER)},
        {"tn": [_digits(CALLEE)]},
        ORIGID,
    )
    assert abs(signed["iat"] - time.time()) < 5


@pytest.mark.parametrize("attest", ["A", "B", "C"])
def test_add_identity_on_a_forwarded_invite_verifies(
    kamailio: Kamailio, verifier: Verifier, attest: str
) -> None:
    invite = kamailio.invite(attest)
    setup = call_pb2.CallSetup(
        call_id=invite.value("call-id"),
        tenant="demo-cn",
        calling_number=invite.value("from").partition(";tag=")[0],
        called_number=CALLEE,
        request_uri=invite.start_line.split(" ")[1],
        identity_headers=invite.values("identity"),
        ingress_kind=common_pb2.INGRESS_KIND_DOMESTIC_INTERCONNECT,
    )
    result = verifier.verify(setup, REGION)
    assert (result.status, result.attestation) == (
        VERIFIED,
        common_pb2.Attestation.Value(f"ATTESTATION_{attest}"),
    )
    assert uuid.UUID(result.origid).version == 4, "libsecsipid generates the origid when none is given"


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampered_copy_fails_with_its_reason(kamailio: Kamailio, verifier: Verifier, name: str) -> None:
    tamper = TAMPERS[name]
    identity = kamailio.build_identity(tamper.attest)
    tampered = tamper.edit(identity)
    assert tampered != identity
    result = verifier.verify(setup_for(tampered, tamper.caller, tamper.callee), REGION)
    assert outcome(result) == (tamper.status, tamper.failure, (tamper.reason,))
    assert verifier.verify(setup_for(identity), REGION).status == VERIFIED, (
        "the untampered header still verifies"
    )


def test_signed_for_another_caller_or_callee_is_a_tn_mismatch(kamailio: Kamailio, verifier: Verifier) -> None:
    identity = kamailio.build_identity("A")
    for caller, callee in [(FORGED_CALLER, CALLEE), (CALLER, OTHER_CALLEE)]:
        failure = Failure.ORIG_MISMATCH if caller != CALLER else Failure.DEST_MISMATCH
        result = verifier.verify(setup_for(identity, caller, callee), REGION)
        assert outcome(result) == (FAILED, failure, (Reason.SHAKEN_TN_MISMATCH,))


@pytest.mark.parametrize(
    ("offset_s", "failure"),
    [(-3600, Failure.STALE_IAT), (-61, Failure.STALE_IAT), (3600, Failure.FUTURE_IAT)],
)
def test_secsipid_signed_stale_or_future_iat_fails(
    kamailio: Kamailio, verifier: Verifier, offset_s: int, failure: Failure
) -> None:
    claims = simpki.shaken_claims(
        _digits(CALLER), [_digits(CALLEE)], int(time.time()) + offset_s, "A", ORIGID
    )
    identity = kamailio.sign(simpki.shaken_header(HOME_X5U), claims)
    result = verifier.verify(setup_for(identity), REGION)
    assert outcome(result) == (FAILED, failure, (Reason.SHAKEN_SIGNATURE_INVALID,))


def test_secsipid_signed_json_verifies(kamailio: Kamailio, verifier: Verifier) -> None:
    claims = simpki.shaken_claims(_digits(CALLER), [_digits(CALLEE)], int(time.time()), "B", ORIGID)
    identity = kamailio.sign(simpki.shaken_header(HOME_X5U), claims)
    assert outcome(verifier.verify(setup_for(identity), REGION)) == (
        VERIFIED,
        None,
        (Reason.SHAKEN_ATTESTATION_B,),
    )


def test_tn_signed_with_a_leading_plus_is_refused(kamailio: Kamailio, verifier: Verifier) -> None:
    """libsecsipid signs TNs as given; RFC 8224 section 8.3 TNs are digits only (the cfg strips the +)."""
    claims = simpki.shaken_claims(CALLER, [_digits(CALLEE)], int(time.time()), "A", ORIGID)
    identity = kamailio.sign(simpki.shaken_header(HOME_X5U), claims)
    result = verifier.verify(setup_for(identity), REGION)
    assert outcome(result) == (FAILED, Failure.BAD_CLAIMS, (Reason.SHAKEN_SIGNATURE_INVALID,))


def test_header_expires_after_the_freshness_window(kamailio: Kamailio, verifier: Verifier) -> None:
    identity = kamailio.build_identity("A")
    iat = _decode(_split(identity)[0][1])["iat"]
    assert isinstance(iat, int)
    result = verifier.verify(setup_for(identity), REGION, now=float(iat + 61))
    assert outcome(result) == (FAILED, Failure.STALE_IAT, (Reason.SHAKEN_SIGNATURE_INVALID,))
    assert verifier.verify(setup_for(identity), REGION, now=float(iat + 60)).status == VERIFIED


def test_signed_with_another_carriers_x5u_fails_the_signature(kamailio: Kamailio, verifier: Verifier) -> None:
    identity = kamailio.build_identity("A", OTHER_X5U)
    result = verifier.verify(setup_for(identity), REGION)
    assert outcome(result) == (FAILED, Failure.SIG_INVALID, (Reason.SHAKEN_SIGNATURE_INVALID,))


def test_x5u_of_an_untrusted_chain_fails(kamailio: Kamailio, verifier: Verifier) -> None:
    identity = kamailio.build_identity("A", ROGUE_X5U)
    result = verifier.verify(setup_for(identity), REGION)
    assert outcome(result) == (FAILED, Failure.CHAIN_INVALID, (Reason.SHAKEN_SIGNATURE_INVALID,))


def test_plain_http_x5u_fails(kamailio: Kamailio, verifier: Verifier) -> None:
    identity = kamailio.build_identity("A", "http://cert.home.test/H001.pem")
    result = verifier.verify(setup_for(identity), REGION)
    assert outcome(result) == (FAILED, Failure.BAD_X5U, (Reason.SHAKEN_SIGNATURE_INVALID,))


def test_unknown_x5u_is_pending_and_asks_for_a_fetch(
    kamailio: Kamailio, verifier: Verifier, misses: list[str]
) -> None:
    identity = kamailio.build_identity("A", UNKNOWN_X5U)
    result = verifier.verify(setup_for(identity), REGION)
    assert (result.status, result.failure, result.reason_codes, result.x5u) == (
        PENDING,
        None,
        (),
        UNKNOWN_X5U,
    )
    assert misses == [UNKNOWN_X5U]


def test_second_presentation_is_a_replay(kamailio: Kamailio, verifier: Verifier) -> None:
    identity = kamailio.build_identity("A")
    assert verifier.verify(setup_for(identity), REGION).status == VERIFIED
    assert outcome(verifier.verify(setup_for(identity), REGION)) == (
        FAILED,
        Failure.REPLAY,
        (Reason.SHAKEN_REPLAY,),
    )
