"""The code base stays ruff-clean, so style problems fail CI rather than pile up."""

from __future__ import annotations

import subprocess
import sys

from tests.support.server import REPO_ROOT


def test_ruff_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "homeserver", "federation", "storage", "tests", "bench"],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
