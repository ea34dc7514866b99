"""The Verify-handler fuzz target and the handler's Redis reads against the real local Redis.

A short campaign of fuzz/verify_handler.py with its replay markers and history reads in Redis
(database 14, the fuzz targets' own), and an unreadable ``first_seen_ms`` in a caller's reputation
record, which used to raise out of the history read and now reads as "history unknown" (degraded).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from fraudmesh.v1 import call_pb2, origination_pb2
from fuzz.inprocess import ErrorLog, InProcessContext, build_core, call_verify, check_redis
from fuzz.passports import BASE_TIME, FuzzPki
from loadtest.processes import REPO_ROOT
from services.common import keys
from services.origination.service import Origination, OriginationServicer
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration


def fuzz_redis_url(stack: Stack) -> str:
    """The stack's Redis, database 14 (the fuzz targets' own)."""
    return urllib.parse.urlparse(stack.settings.redis_url)._replace(path="/14").geturl()


def test_verify_handler_fuzz_target_runs_clean_on_the_real_redis(stack: Stack, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuzz.verify_handler",
            "-runs=5000",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
            "fuzz/corpus/calls",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "FRAUDMESH_FUZZ_REDIS_URL": fuzz_redis_url(stack)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Done 5000 runs" in run.stderr


@pytest.fixture
async def core(stack: Stack) -> AsyncIterator[Origination]:
    built = build_core(
        FuzzPki(), Path(tempfile.mkdtemp(prefix="origination-history-")), fuzz_redis_url(stack)
    )
    await check_redis(built)
    yield built
    await built.redis.aclose()


async def test_an_unreadable_history_record_reads_as_unknown_not_as_an_error(
    stack: Stack, core: Origination
) -> None:
    caller, callee = "+12025550100", "+12025550101"  # neighbours: the history read runs
    key = keys.number_key(core.pseudonymize(caller))
    client = redis.Redis.from_url(fuzz_redis_url(stack))
    client.hset(key, "first_seen_ms", "not-a-number")
    errors = ErrorLog().attach()
    try:
        setup = call_pb2.CallSetup(tenant="t", calling_number=caller, called_number=callee)
        setup.event_time.seconds = BASE_TIME
        servicer = OriginationServicer(core)
        verdict = await call_verify(servicer, origination_pb2.VerifyRequest(setup=setup), InProcessContext())
    finally:
        client.delete(key)
        client.close()
        errors.detach()
    errors.raise_if_any()
    assert "NEIGHBOR_SPOOFING" in verdict.reason_codes
    assert verdict.degraded
