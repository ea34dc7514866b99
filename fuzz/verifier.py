"""atheris target: ``Verifier.verify`` answers every call setup with a well-typed result, never raises.

Each input drives ``fuzz.passports.CaseBuilder``: a call whose Identity headers are really signed by
a test chain drawn at start (so certificate, signature, replay and div checks run), with mutated
claims, numeric extremes, huge arrays, deep nesting, bad base64, oversized and too many headers.
Every header also goes through ``parse_passport``, which may raise only ``PassportError``. The
oracle (``check_result``): a known status, a failure with its reason code exactly when FAILED or
UNSUPPORTED, and VERIFIED only when some header carries an untouched trusted signature.

Run: ``python -m fuzz.verifier -runs=1000000 <new-corpus-dir> fuzz/corpus/verifier`` (``make fuzz``).
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["services.origination"]):
    from fuzz.passports import REGION, CaseBuilder, FuzzPki, ProviderChoices, check_result
    from services.origination.passport import MemoryReplayStore, PassportError, Verifier, parse_passport

PKI = FuzzPki()
BUILDER = CaseBuilder(PKI)
VERIFIER = Verifier(PKI.cache(), MemoryReplayStore(100_000), on_miss=lambda _x5u: None)


def test_one_input(data: bytes) -> None:
    """One fuzz case: parse every header, then verify the call; anything but a typed answer is a finding."""
    case = BUILDER.case(ProviderChoices(atheris.FuzzedDataProvider(data)))
    for header in case.setup.identity_headers[:16]:
        with contextlib.suppress(PassportError):
            parse_passport(header)
    check_result(VERIFIER.verify(case.setup, REGION, now=case.now), case)


def main() -> None:
    """libFuzzer entry point (flags and corpus folders on the command line)."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
