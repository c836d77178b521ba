"""Synapse's own ``register_new_matrix_user``, installed once into a cached venv.

The venv lives in $VIGNETTE_SYNAPSE_VENV or ~/.cache/vignette-test-synapse; the
first run installs matrix-synapse there (slow, once).  If it cannot be installed
the test is skipped with the reason, unless VIGNETTE_REQUIRE_SYNAPSE_TOOL=1
(set it in CI), which turns that into a failure.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

INSTALL_TIMEOUT_S = 1800


def synapse_venv_dir() -> Path:
    configured = os.environ.get("VIGNETTE_SYNAPSE_VENV")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "vignette-test-synapse"


def _unavailable(reason: str) -> None:
    if os.environ.get("VIGNETTE_REQUIRE_SYNAPSE_TOOL") == "1":
        pytest.fail(f"Synapse's register_new_matrix_user is required but unavailable: {reason}")
    pytest.skip(f"Synapse's register_new_matrix_user is unavailable: {reason}")


def synapse_register_tool() -> Path:
    """The path of Synapse's register_new_matrix_user, installing it on first use."""
    venv = synapse_venv_dir()
    tool = venv / "bin" / "register_new_matrix_user"
    if tool.exists():
        return tool
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time across test processes
        if tool.exists():
            return tool
        base_python = getattr(sys, "_base_executable", sys.executable)
        steps = [[base_python, "-m", "venv", str(venv)],
                 [str(venv / "bin" / "pip"), "install", "--quiet", "matrix-synapse"]]
        for step in steps:
            try:
                result = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as error:
                _unavailable(f"{' '.join(step[:3])} failed: {error}")
            if result.returncode != 0:
                _unavailable(f"{' '.join(step[:3])} exited {result.returncode}: {result.stderr[-2000:]}")
    if not tool.exists():
        _unavailable(f"installed matrix-synapse but {tool} is missing")
    return tool


def synapse_python() -> Path:
    """The Python of the cached venv that holds matrix-synapse (installed on first use)."""
    synapse_register_tool()
    return synapse_venv_dir() / "bin" / "python"
