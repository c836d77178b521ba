"""A real push gateway for tests: an HTTP server on loopback (port 0) that serves
``POST /_matrix/push/v1/notify``, records every notification it is sent, and can be told
to fail (answer 500 or close the connection) or to reject pushkeys.

Test servers must allow loopback for it: ``ip_range_whitelist: ["127.0.0.0/8"]``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

NOTIFY_PATH = "/_matrix/push/v1/notify"
WAIT_S = 30.0


@attrs.define
class Attempt:
    """One request the gateway received, and whether it accepted it."""

    path: str
    body: Any
    accepted: bool


class PushGateway:
    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        #: How many of the next requests to fail with a 500.
        self.fail_next = 0
        #: Fail every request until this is set back to False.
        self.down = False
        #: Pushkeys answered as ``rejected``.
        self.rejected: set[str] = set()
        self._lock = threading.RLock()  # predicates may read under it
        self._changed = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{NOTIFY_PATH}"

    def start(self) -> PushGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what the tests read -------------------------------------------------------------

    def delivered(self) -> list[dict[str, Any]]:
        """The ``notification`` objects of accepted requests, in arrival order."""
        with self._lock:
            return [a.body["notification"] for a in self.attempts if a.accepted]

    def failed_count(self) -> int:
        with self._lock:
            return sum(1 for a in self.attempts if not a.accepted)

    def wait_for(self, predicate: Callable[[PushGateway], bool], what: str, timeout_s: float = WAIT_S) -> None:
        """Block until ``predicate(self)`` holds (re-checked on every request), or fail."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"push gateway: timed out waiting for {what}; got {self.attempts!r}")
                self._changed.wait(min(remaining, 0.5))

    def wait_for_delivery(self, event_id: str, timeout_s: float = WAIT_S) -> dict[str, Any]:
        """The first accepted notification of ``event_id``."""
        self.wait_for(lambda gw: any(n.get("event_id") == event_id for n in gw.delivered()),
                      f"a notification of {event_id}", timeout_s)
        return next(n for n in self.delivered() if n.get("event_id") == event_id)

    # -- the server ------------------------------------------------------------------------

    def _answer(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._changed:
            failing = self.down or self.fail_next > 0
            if self.fail_next > 0:
                self.fail_next -= 1
            ok = path == NOTIFY_PATH and isinstance(body, dict) and not failing
            self.attempts.append(Attempt(path, body, ok))
            self._changed.notify_all()
            if not ok:
                return 500, {"error": "gateway failing on purpose" if failing else "bad request"}
            devices = body["notification"].get("devices", [])
            rejected = [d["pushkey"] for d in devices if d.get("pushkey") in self.rejected]
            return 200, {"rejected": rejected}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in one write: two small writes would meet Nagle's
            # algorithm and the client's delayed ACK (40 ms per request).
            wbufsize = 64 * 1024

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                status, answer = gateway._answer(self.path, self.rfile.read(length))
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                pass

        return Handler


@contextmanager
def running_gateway() -> Iterator[PushGateway]:
    gateway = PushGateway().start()
    try:
        yield gateway
    finally:
        gateway.stop()


def pusher_body(gateway_url: str, pushkey: str, app_id: str = "org.example.app", **data: Any) -> dict[str, Any]:
    """A valid ``/pushers/set`` body for an HTTP pusher to ``gateway_url``."""
    return {
        "kind": "http", "app_id": app_id, "pushkey": pushkey, "app_display_name": "Example App",
        "device_display_name": "Test phone", "lang": "en", "data": {"url": gateway_url, **data},
    }
