"""The atheris target for the Identity-header parser runs clean for a short budget (CI smoke).

Longer campaigns: ``make fuzz`` (FUZZ_RUNS=...). A crash writes its input next to the corpus and
fails this test with the fuzzer's report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loadtest.pipeline import REPO_ROOT


def test_identity_header_fuzz_target_finds_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuzz.identity_header",
            "-runs=30000",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Done 30000 runs" in run.stderr
    assert any(corpus.iterdir()), "the seed corpus was written"
