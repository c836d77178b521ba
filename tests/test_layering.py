"""The layering rules from ARCHITECTURE.md, checked on the import graph."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.server import REPO_ROOT


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_http_modules_never_reach_storage() -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(name for name in imported_modules(path) if name.split(".")[0] == "storage")
        for folder in (REPO_ROOT / "homeserver" / "api", REPO_ROOT / "federation" / "api")
        for path in folder.glob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_storage_knows_nothing_of_http_or_handlers() -> None:
    forbidden = ("homeserver.api", "homeserver.http", "homeserver.handlers", "twisted.web")
    offenders = {}
    for path in (REPO_ROOT / "storage").rglob("*.py"):
        bad = sorted(name for name in imported_modules(path) if name.startswith((*forbidden, "federation")))
        if bad:
            offenders[str(path.relative_to(REPO_ROOT))] = bad
    assert offenders == {}


def test_outbound_client_knows_nothing_of_federation_or_handlers() -> None:
    """homeserver/outbound is shared by federation, media and push: it must stay below all of them."""
    forbidden = ("federation", "homeserver.handlers", "homeserver.api", "storage")
    offenders = {}
    for path in (REPO_ROOT / "homeserver" / "outbound").rglob("*.py"):
        bad = sorted(name for name in imported_modules(path) if name.startswith(forbidden))
        if bad:
            offenders[str(path.relative_to(REPO_ROOT))] = bad
    assert offenders == {}
