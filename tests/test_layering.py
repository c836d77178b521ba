"""The layer order of docs/conventions.md ("Layering"), checked on the import graph.

Every import counts: module level, function-local and `TYPE_CHECKING` alike, so a
cycle cannot hide inside a function body.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.support.server import REPO_ROOT

PROJECT_PACKAGES = ("homeserver", "storage", "federation")

#: Each area and the areas it may import (besides itself). Keep in step with
#: docs/conventions.md. The most specific prefix wins.
ALLOWED: dict[str, tuple[str, ...]] = {
    # The kernel and the small value modules everything may use.
    "homeserver.events": (),
    "homeserver.errors": (),
    "homeserver.stream_token": ("homeserver.errors",),
    "homeserver.signing_key": (),
    "homeserver.config": ("homeserver.signing_key",),
    "homeserver.logging_setup": ("homeserver.config",),
    "homeserver.metrics": (),
    "homeserver.gc_schedule": (),
    "homeserver.spooled_file": (),
    "homeserver.async_utils": (),
    # MLS public framing (RFC 9420 wire format): pure parsing, like the kernel.
    "homeserver.mls": (),
    # Infrastructure: storage engines and stores, and the notifier.
    "storage": ("homeserver.events",),
    # What components may ask of the running server (a Protocol; the server itself is homeserver.app).
    "homeserver.server": ("homeserver.config", "homeserver.events", "storage"),
    "homeserver.notifier": ("storage", "homeserver.server"),
    # The one outbound HTTP client (federation, media, push, previews): below every user of it.
    "homeserver.outbound": ("homeserver.config", "homeserver.server"),
    # The event pipeline: the one way events enter a room (below the handlers and federation).
    "homeserver.pipeline": (
        "homeserver.server", "homeserver.events", "homeserver.errors", "homeserver.config", "homeserver.signing_key", "storage",
    ),
    # Business logic.
    "homeserver.handlers": (
        "homeserver.server", "homeserver.events", "homeserver.errors", "homeserver.stream_token", "homeserver.config",
        "homeserver.signing_key", "homeserver.notifier", "homeserver.spooled_file", "homeserver.pipeline",
        "homeserver.outbound", "homeserver.mls", "storage", "homeserver.async_utils",
    ),
    # The sync core, above the handlers whose data it gathers.
    "homeserver.sync": (
        "homeserver.server", "homeserver.events", "homeserver.errors", "homeserver.stream_token", "homeserver.config",
        "homeserver.notifier", "homeserver.handlers", "storage",
    ),
    # The HTTP framework: routing, parsing, errors on the wire. No business logic.
    "homeserver.http": ("homeserver.errors", "homeserver.metrics", "homeserver.config",
                        "homeserver.spooled_file"),
    # Transports: thin, never storage.
    "homeserver.api": (
        "homeserver.server", "homeserver.http", "homeserver.handlers", "homeserver.sync", "homeserver.websocket",
        "homeserver.events", "homeserver.errors", "homeserver.stream_token", "homeserver.config",
        "homeserver.metrics", "homeserver.notifier", "homeserver.spooled_file", "federation",
    ),
    "homeserver.websocket": (
        "homeserver.server", "homeserver.http", "homeserver.handlers", "homeserver.sync", "homeserver.errors",
        "homeserver.stream_token", "homeserver.notifier",
    ),
    # The server-server API. Its own sub-layers are added as the package grows.
    "federation": (
        "homeserver.server", "homeserver.events", "homeserver.errors", "homeserver.config", "homeserver.signing_key",
        "homeserver.metrics", "homeserver.notifier", "homeserver.http", "homeserver.handlers",
        "homeserver.pipeline", "homeserver.outbound", "homeserver.async_utils", "storage",
    ),
    # Replication between worker processes (Redis channel, forwarding to the main process).
    "homeserver.replication": (
        "homeserver.server", "homeserver.config", "homeserver.errors", "homeserver.http",
        "homeserver.outbound", "homeserver.pipeline", "storage",
    ),
    # Composition: the process and its command-line tools may use anything.
    "homeserver.app": PROJECT_PACKAGES,
    "homeserver.app_metrics": PROJECT_PACKAGES,
    "homeserver.worker_setup": PROJECT_PACKAGES,
    "homeserver.worker_roles": PROJECT_PACKAGES,
    "homeserver.__main__": PROJECT_PACKAGES,
    "homeserver.cli": PROJECT_PACKAGES,
    "homeserver": (),
}

#: Known breaches, each with the work that removes it. Empty is the goal.
TRANSITIONAL: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(source: str, module: str) -> set[str]:
    """Every project module `source` imports, wherever in the file the import is."""
    names: set[str] = set()
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in PROJECT_PACKAGES}


def import_graph(root: Path = REPO_ROOT) -> dict[str, set[str]]:
    files = [path for package in PROJECT_PACKAGES for path in (root / package).rglob("*.py")]
    modules = {module_name(path): path for path in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        # `from a.b import c` names module a.b.c when it exists, else the name c inside a.b.
        graph[name] = {target for target in project_imports(path.read_text(), name)
                       if target in modules and target != name}
    return graph


def area_of(module: str, areas: Iterable[str] = ALLOWED) -> str:
    matches = [area for area in areas if module == area or module.startswith(area + ".")]
    if not matches:
        raise AssertionError(f"{module} belongs to no area in ALLOWED: add it to the layer order")
    return max(matches, key=len)


def layer_breaches(graph: Mapping[str, set[str]],
                   allowed: Mapping[str, tuple[str, ...]] = ALLOWED) -> set[tuple[str, str]]:
    breaches = set()
    for module, targets in graph.items():
        area = area_of(module, allowed)
        for target in targets:
            target_area = area_of(target, allowed)
            permitted = target_area == area or any(
                target_area == ok or target_area.startswith(ok + ".") for ok in allowed[area])
            if not permitted:
                breaches.add((module, target))
    return breaches


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_import_follows_the_layer_order() -> None:
    assert layer_breaches(import_graph()) - TRANSITIONAL == set()


def test_transitional_breaches_still_exist() -> None:
    """An entry that no longer happens must leave the list, so it cannot come back quietly."""
    assert TRANSITIONAL <= layer_breaches(import_graph())


def test_no_import_cycles_even_function_local() -> None:
    assert cycles(import_graph()) == []


def test_the_checker_catches_a_bad_import(tmp_path: Path) -> None:
    """A storage module importing a handler, and a cycle through a function body, are found."""
    (tmp_path / "storage").mkdir()
    (tmp_path / "homeserver" / "handlers").mkdir(parents=True)
    for package in ("storage", "homeserver", "homeserver/handlers"):
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "storage" / "bad.py").write_text(
        "def f():\n    from homeserver.handlers.thing import Thing\n")
    (tmp_path / "homeserver" / "handlers" / "thing.py").write_text(
        "from storage.bad import f\nclass Thing: ...\n")
    graph = _graph_under(tmp_path)
    assert ("storage.bad", "homeserver.handlers.thing") in layer_breaches(graph)
    assert cycles(graph) == [["homeserver.handlers.thing", "storage.bad"]]


def _graph_under(root: Path) -> dict[str, set[str]]:
    modules = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
               for p in root.rglob("*.py")}
    return {name: {t for t in project_imports(path.read_text(), name) if t in modules and t != name}
            for name, path in modules.items()}
