"""mypy over the server's packages, at zero errors, with the settings in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys

from tests.support.server import REPO_ROOT


def test_mypy_is_clean() -> None:
    # The settings ([tool.mypy]) name the packages; a cache under .mypy_cache keeps reruns quick.
    result = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
