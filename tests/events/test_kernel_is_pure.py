"""The event kernel must do no I/O: no module in homeserver/events imports I/O layers."""

from __future__ import annotations

import ast
from pathlib import Path

import homeserver.events

FORBIDDEN_TOP_LEVEL = {"twisted", "treq", "psycopg2", "sqlite3", "storage", "federation"}
FORBIDDEN_PREFIXES = ("homeserver.http", "homeserver.api", "homeserver.handlers")


def _imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_forbidden(module: str) -> bool:
    if module.split(".")[0] in FORBIDDEN_TOP_LEVEL:
        return True
    return any(module == p or module.startswith(p + ".") for p in FORBIDDEN_PREFIXES)


def test_no_io_imports_in_event_kernel() -> None:
    package_dir = Path(homeserver.events.__file__).parent
    files = sorted(package_dir.rglob("*.py"))
    assert len(files) > 5
    offenders = [
        f"{path.relative_to(package_dir)}: {module}"
        for path in files
        for module in _imported_modules(ast.parse(path.read_text(), str(path)))
        if _is_forbidden(module)
    ]
    assert offenders == []


def test_the_checker_catches_forbidden_imports() -> None:
    source = "import twisted.internet\nfrom homeserver.handlers import x\nfrom storage import y\n"
    modules = _imported_modules(ast.parse(source))
    assert [m for m in modules if _is_forbidden(m)] == [
        "twisted.internet",
        "homeserver.handlers",
        "homeserver.handlers.x",
        "storage",
        "storage.y",
    ]
    assert not _is_forbidden("homeserver.events.event")
