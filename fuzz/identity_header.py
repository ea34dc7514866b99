"""atheris target: the SIP Identity-header parser and the verifier must only ever answer, never raise.

Feeds arbitrary text as an Identity header value to ``parse_passport`` (which may raise only
``PassportError``) and, inside a call setup, to ``Verifier.verify`` (which must never raise and
must not verify anything, since the fuzzer cannot forge an ES256 signature). The seed corpus of
well-formed headers is fuzz/corpus/identity_header, so mutations start from valid structure; the
structured targets (fuzz/verifier.py, fuzz/verify_handler.py) reach the signature path too.
Run: ``python -m fuzz.identity_header -runs=1000000 <new-corpus-dir> fuzz/corpus/identity_header``.
"""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime

import atheris

with atheris.instrument_imports(include=["services.origination"]):
    from fraudmesh.v1 import call_pb2, verdicts_pb2
    from services.origination.certs import CertificateCache, ChainValidator
    from services.origination.passport import MemoryReplayStore, PassportError, Verifier, parse_passport

from loadtest.stipki import build_pki

_ANCHORS = build_pki(
    1, [], datetime(2015, 1, 1, tzinfo=UTC)
).trust_anchors()  # an empty cache: nothing may verify
_VERIFIER = Verifier(
    CertificateCache(ChainValidator(_ANCHORS)), MemoryReplayStore(), clock=lambda: 1443208345.0
)


def test_one_input(data: bytes) -> None:
    """One fuzz case: parse, then verify inside a setup; anything but the typed error is a finding."""
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    with contextlib.suppress(PassportError):
        parse_passport(text)
    setup = call_pb2.CallSetup(
        call_id="fuzz",
        tenant="fuzz",
        calling_number="+12155551212",
        called_number="+12155551213",
        identity_headers=[text, text] if len(data) % 7 == 0 else [text],
    )
    result = _VERIFIER.verify(setup, "US")
    if result.status == verdicts_pb2.SHAKEN_STATUS_VERIFIED:
        raise AssertionError("a fuzzed header verified without any certificate")


def main() -> None:
    """libFuzzer entry point (flags and corpus folders on the command line)."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
