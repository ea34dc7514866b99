"""atheris target: the SIP Identity-header parser and the verifier must only ever answer, never raise.

Feeds arbitrary text as an Identity header value to ``parse_passport`` (which may raise only
``PassportError``) and, inside a call setup, to ``Verifier.verify`` (which must never raise and
must not verify anything, since the fuzzer cannot forge an ES256 signature). A seed corpus of
well-formed headers is written to the corpus folder on first run, so mutations start from valid
structure. Run: ``python -m fuzz.identity_header -runs=200000 fuzz/corpus`` (``make fuzz``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["services.origination"]):
    from fraudmesh.v1 import call_pb2, verdicts_pb2
    from services.origination.certs import CertificateCache, ChainValidator
    from services.origination.passport import MemoryReplayStore, PassportError, Verifier, parse_passport

import contextlib

from loadtest.stipki import build_pki

SEEDS = (
    "eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jZXJ0LmV4YW1wbGUub3JnL3Bhc3Nwb3J0LnBlbSJ9"
    ".eyJhdHRlc3QiOiJBIiwiZGVzdCI6eyJ0biI6WyIxMjE1NTU1MTIxMyJdfSwiaWF0IjoxNDQzMjA4MzQ1LCJvcmlnIjp7InRuIjoiMTIxNTU1NTEyMTIifSwib3JpZ2lkIjoiMTIzZTQ1NjctZTg5Yi0xMmQzLWE0NTYtNDI2NjU1NDQwMDAwIn0"
    ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    ";info=<https://cert.example.org/passport.pem>;alg=ES256;ppt=shaken",
    "..sig;info=<https://cert.example.org/passport.pem>;alg=ES256;ppt=shaken",
    "a.b.c;info=<https://x/y>;ppt=div",
)

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


def write_seeds(corpus: Path) -> None:
    """Put the seed headers in the corpus folder if it is empty."""
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for index, seed in enumerate(SEEDS):
            (corpus / f"seed-{index}").write_text(seed)


def main() -> None:
    """libFuzzer entry point; the first non-flag argument is the corpus folder."""
    folders = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    for folder in folders[:1]:
        write_seeds(Path(folder))
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
