"""Node.js client scripts from tests/js, with the npm packages its committed lock file pins.

``npm ci`` runs only when tests/js/node_modules is missing or does not hold exactly the locked
versions (.ci/run installs it up front). Without node or npm the caller is skipped with the
reason, unless VIGNETTE_REQUIRE_NODE=1 (set in CI), which turns that into a failure.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support.server import REPO_ROOT

JS_DIR = REPO_ROOT / "tests" / "js"
REQUIRE_NODE = "VIGNETTE_REQUIRE_NODE"
MIN_NODE_MAJOR = 20
INSTALL_TIMEOUT_S = 600


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_NODE) == "1":
        pytest.fail(f"{REQUIRE_NODE}=1 but {reason}")
    pytest.skip(reason)


def node_binary() -> str:
    """The path of a node (at least MIN_NODE_MAJOR) with npm beside it; skip (or fail in CI) without."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed for the tests/js clients and are not on PATH")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    major = int(version.lstrip("v").split(".")[0]) if version.startswith("v") else 0
    if major < MIN_NODE_MAJOR:
        _unavailable(f"node {version} is older than the {MIN_NODE_MAJOR} the locked packages need")
    return node


def locked_packages() -> dict[str, str]:
    """node_modules path -> version, for every package in tests/js/package-lock.json."""
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    return {path: entry["version"] for path, entry in lock["packages"].items()
            if path.startswith("node_modules/")}


def install_is_current() -> bool:
    """Whether node_modules holds every locked package at its locked version."""
    for path, version in locked_packages().items():
        manifest = JS_DIR / path / "package.json"
        try:
            installed = json.loads(manifest.read_text()).get("version")
        except (OSError, ValueError):
            return False
        if installed != version:
            return False
    return True


def ensure_js_packages() -> str:
    """The node binary, after an ``npm ci`` in tests/js if its node_modules is missing or stale."""
    node = node_binary()
    if install_is_current():
        return node
    with open(JS_DIR / "package-lock.json") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # one installer at a time across test processes
        if not install_is_current():
            npm = shutil.which("npm") or "npm"
            result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                    cwd=JS_DIR, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            if result.returncode != 0:
                pytest.fail(f"npm ci in {JS_DIR} exited {result.returncode}:\n{result.stderr[-4000:]}")
    return node


def declared_version(package: str) -> str:
    """The exact version tests/js/package.json pins for ``package``."""
    return str(json.loads((JS_DIR / "package.json").read_text())["dependencies"][package])


def run_script(script: str, *args: str, timeout_s: float, log_path: Path) -> tuple[int, dict[str, Any] | None, str]:
    """Run tests/js/``script``: its exit status, the JSON object on its last stdout line (or None),
    and its stdout and stderr as text (also written to ``log_path``) for failure messages."""
    node = ensure_js_packages()
    try:
        completed = subprocess.run([node, script, *args], cwd=JS_DIR, capture_output=True, text=True,
                                   timeout=timeout_s)
        status, stdout, stderr = completed.returncode, completed.stdout, completed.stderr
    except subprocess.TimeoutExpired as expired:
        status = -1
        stdout = _text(expired.stdout)
        stderr = _text(expired.stderr) + f"\n[killed after {timeout_s}s]"
    log_path.write_text(f"--- stdout\n{stdout}\n--- stderr\n{stderr}")
    lines = stdout.strip().splitlines()
    try:
        parsed = json.loads(lines[-1]) if lines else None
    except ValueError:
        parsed = None
    return status, parsed if isinstance(parsed, dict) else None, f"{stdout}\n{stderr}"


def _text(output: bytes | str | None) -> str:
    if output is None:
        return ""
    return output if isinstance(output, str) else output.decode(errors="replace")
