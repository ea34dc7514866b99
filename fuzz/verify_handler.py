"""atheris target: the Verify RPC handler answers every request, keeping the caller-ID findings.

Drives ``OriginationServicer.Verify`` in-process on the production core (``fuzz.inprocess``):
the same generated calls as fuzz/verifier.py, through verification, the replay guard and the
neighbor-history read in Redis, the caller-ID checks with a DNO list, and the verdict assembly.
Redis is the real local one (``FRAUDMESH_FUZZ_REDIS_URL``, default redis://127.0.0.1:16379/14; the
target refuses to start if it does not answer), or ``down`` for the production fallback with no
Redis at all (what the CI smoke test uses; no network). The oracle (``check_verdict``): a known
SHAKEN status (never the UNSPECIFIED of an internal error), documented reason codes, DNO_LISTED
whenever the caller is on the DNO list whatever its Identity headers, VERIFIED only for an
authentic header, and no ERROR logged by the service (its catch-alls must never fire).

Run: ``python -m fuzz.verify_handler -runs=1000000 <new-corpus-dir> fuzz/corpus/verify_handler``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["services.origination"]):
    from fraudmesh.v1 import origination_pb2
    from fuzz.inprocess import (
        DEFAULT_REDIS_URL,
        REDIS_DOWN,
        ErrorLog,
        InProcessContext,
        build_core,
        call_verify,
        check_redis,
    )
    from fuzz.passports import CaseBuilder, FuzzPki, ProviderChoices, check_verdict
    from services.origination.service import OriginationServicer

REDIS_URL = os.environ.get("FRAUDMESH_FUZZ_REDIS_URL", DEFAULT_REDIS_URL)
PKI = FuzzPki()
BUILDER = CaseBuilder(PKI)
LOOP = asyncio.new_event_loop()
CORE = build_core(PKI, Path(tempfile.mkdtemp(prefix="fuzz-verify-handler-")), REDIS_URL)
SERVICER = OriginationServicer(CORE)
CONTEXT = InProcessContext()
ERRORS = ErrorLog().attach()


def test_one_input(data: bytes) -> None:
    """One fuzz case through the Verify handler; a wrong or incomplete verdict is a finding."""
    case = BUILDER.case(ProviderChoices(atheris.FuzzedDataProvider(data)))
    request = origination_pb2.VerifyRequest(setup=case.setup)
    verdict = LOOP.run_until_complete(call_verify(SERVICER, request, CONTEXT))
    ERRORS.raise_if_any()
    check_verdict(verdict, case)


def main() -> None:
    """libFuzzer entry point; checks Redis first unless told it is down."""
    logging.getLogger("services").setLevel(logging.ERROR)  # fetch refusals warn on every miss
    if REDIS_URL != REDIS_DOWN:
        LOOP.run_until_complete(check_redis(CORE))
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
