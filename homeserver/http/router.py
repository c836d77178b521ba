"""Path routing for JSON APIs: ``/rooms/{room_id}/send/{event_type}/{txn_id}`` style patterns."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import unquote

import attrs

Handler = Callable[..., Awaitable[tuple[int, Any]]]

CLIENT_PREFIXES = ("/_matrix/client/v3", "/_matrix/client/r0")
_PARAM = re.compile(r"\{(\w+)\}")


@attrs.frozen
class Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler
    name: str  # the pattern, for logs and metrics


class Router:
    """Maps (method, path) to an async handler; knows which paths exist for 405s."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str | Iterable[str], pattern: str | Iterable[str], handler: Handler) -> None:
        methods = [method] if isinstance(method, str) else list(method)
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        for path in patterns:
            regex = re.compile("^" + _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", path) + "$")
            for verb in methods:
                self._routes.append(Route(verb.upper(), regex, handler, path))

    def match(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Return (route, params, path_known). ``path_known`` distinguishes 405 from 404."""
        path_known = False
        for route in self._routes:
            found = route.regex.match(raw_path)
            if found is None:
                continue
            path_known = True
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                params = {key: unquote(value, errors="strict") for key, value in found.groupdict().items()}
                return route, params, True
        return None, {}, path_known


def client_paths(suffix: str, prefixes: Iterable[str] = CLIENT_PREFIXES) -> list[str]:
    """The same client-server path under every API prefix we answer on."""
    return [prefix + suffix for prefix in prefixes]
