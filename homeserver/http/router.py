"""Path routing for JSON APIs: ``/rooms/{room_id}/send/{event_type}/{txn_id}`` style patterns."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Iterable
from typing import Any
from urllib.parse import unquote

import attrs

from homeserver.http.streaming import SpoolSpec

Handler = Callable[..., Coroutine[Any, Any, tuple[int, Any]]]

CLIENT_PREFIXES = ("/_matrix/client/v3", "/_matrix/client/r0")
_PARAM = re.compile(r"\{(\w+)\}")


@attrs.frozen
class Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler
    name: str  # the pattern, for logs and metrics
    spool: SpoolSpec | None = None  # set for routes whose body is spooled to disk (uploads)


class Router:
    """Maps (method, path) to an async handler; knows which paths exist for 405s."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str | Iterable[str], pattern: str | Iterable[str], handler: Handler,
            spool: SpoolSpec | None = None) -> None:
        methods = [method] if isinstance(method, str) else list(method)
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        for path in patterns:
            regex = re.compile("^" + _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", path) + "$")
            for verb in methods:
                self._routes.append(Route(verb.upper(), regex, handler, path, spool))

    def spool_for(self, method: str, raw_path: str) -> SpoolSpec | None:
        """The spool of the route a request line goes to, known before its body arrives.

        Asked for every request, so only requests that look like a spooled route pay for a
        full match (which confirms that route is the one dispatch will pick).
        """
        if not any(route.spool is not None and route.method == method and route.regex.match(raw_path)
                   for route in self._routes):
            return None
        route, _params, _known = self._match_route(method, raw_path)
        return route.spool if route is not None else None

    def match(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str], bool]:
        """Return (route, params, path_known). ``path_known`` distinguishes 405 from 404."""
        route, found, path_known = self._match_route(method, raw_path)
        if route is None or found is None:
            return None, {}, path_known
        return route, {key: unquote(value, errors="strict") for key, value in found.groupdict().items()}, True

    def _match_route(self, method: str, raw_path: str) -> tuple[Route | None, re.Match[str] | None, bool]:
        path_known = False
        for route in self._routes:
            found = route.regex.match(raw_path)
            if found is None:
                continue
            path_known = True
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, found, True
        return None, None, path_known


def client_paths(suffix: str, prefixes: Iterable[str] = CLIENT_PREFIXES) -> list[str]:
    """The same client-server path under every API prefix we answer on."""
    return [prefix + suffix for prefix in prefixes]
