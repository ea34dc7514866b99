"""The scoring kernels' Python path: the kernel tests again, in a subprocess with NUMBA_DISABLE_JIT=1.

Numba-compiled and interpreted kernels must agree with LightGBM alike; running the interpreted path
also keeps the kernels debuggable and makes coverage and tracebacks see inside them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KERNEL_TESTS = Path(__file__).with_name("test_scoring_kernels.py")


def test_kernel_tests_pass_without_jit() -> None:
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "FRAUDMESH_EXPECT_NO_JIT": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(KERNEL_TESTS), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None, output[-2000:]
    assert int(passed.group(1)) >= 20, output[-2000:]
    assert "failed" not in output, output[-2000:]
    assert "skipped" not in output, output[-2000:]
