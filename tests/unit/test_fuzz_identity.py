"""Each atheris target runs clean for a short budget (CI smoke): Identity parser, Verifier.verify,
Verify handler, the switch front's SIP parser.

About 30k cases in all, a few seconds per target. The handler target runs with Redis ``down`` here
(the replica-memory fallback; unit tests use no network); ``make fuzz`` runs it against the local
Redis, FUZZ_RUNS (1M) cases per target. A crash writes its input to the artifact prefix and fails
the test with the fuzzer's report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.processes import REPO_ROOT

TARGETS = {
    "identity_header": (12_000, "fuzz/corpus/identity_header"),
    "verifier": (9_000, "fuzz/corpus/calls"),
    "verify_handler": (9_000, "fuzz/corpus/calls"),
    "sip_message": (12_000, "fuzz/corpus/sip_message"),
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_finds_nothing(tmp_path: Path, target: str) -> None:
    runs, seeds = TARGETS[target]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            f"fuzz.{target}",
            f"-runs={runs}",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
            seeds,
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "FRAUDMESH_FUZZ_REDIS_URL": "down"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert f"Done {runs} runs" in run.stderr
    assert not list(tmp_path.glob("crash-*"))


def test_seed_corpora_are_small_and_in_the_repository() -> None:
    for folder in ("fuzz/corpus/identity_header", "fuzz/corpus/calls", "fuzz/corpus/sip_message"):
        files = list((REPO_ROOT / folder).iterdir())
        assert files, folder
        assert sum(path.stat().st_size for path in files) < 8_192, folder
