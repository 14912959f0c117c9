"""The golden evaluation set stays valid: every gold fact is present in its gold document."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_golden_set_validates() -> None:
    proc = subprocess.run(
        [sys.executable, "evals/datasets/validate_golden.py", "--coverage"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
