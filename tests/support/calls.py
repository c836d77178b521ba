"""Helpers for call tests: delayed events (MSC4140) over HTTP, and a real coturn on loopback."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.support.client import Client, Response, q
from tests.support.rooms import V3, next_txn

MSC4140 = "/_matrix/client/unstable/org.matrix.msc4140"
DELAY = "org.matrix.msc4140.delay"


def delayed_send(client: Client, room_id: str, content: dict[str, Any], delay_ms: int | str,
                 event_type: str = "m.room.message", txn_id: str | None = None) -> Response:
    return client.put(f"{V3}/rooms/{q(room_id)}/send/{q(event_type)}/{txn_id or next_txn()}", content,
                      params={DELAY: str(delay_ms)})


def delayed_state(client: Client, room_id: str, event_type: str, state_key: str, content: dict[str, Any],
                  delay_ms: int | str) -> Response:
    return client.put(f"{V3}/rooms/{q(room_id)}/state/{q(event_type)}/{q(state_key)}", content,
                      params={DELAY: str(delay_ms)})


def delay_id_of(response: Response) -> str:
    assert response.status == 200, response
    assert set(response.body) == {"delay_id"}, response
    return str(response.body["delay_id"])


def scheduled(client: Client) -> dict[str, dict[str, Any]]:
    """The client's scheduled delayed events by delay_id."""
    response = client.get(f"{MSC4140}/delayed_events")
    assert response.status == 200, response
    return {item["delay_id"]: item for item in response.body["delayed_events"]}


def manage(client: Client, delay_id: str, action: str, *, in_body: bool = False,
           token: bool = True) -> Response:
    """cancel / restart / send, with the action in the path (the MSC's current form) or in the body."""
    if in_body:
        return client.post(f"{MSC4140}/delayed_events/{q(delay_id)}", {"action": action}, token=token)
    return client.post(f"{MSC4140}/delayed_events/{q(delay_id)}/{action}", token=token)


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 30.0, interval_s: float = 0.1) -> Any:
    """Poll until check() returns something truthy (a bound on waiting, not a speed check)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what}")


def room_event_of(client: Client, room_id: str, predicate: Callable[[dict[str, Any]], bool]) -> Any:
    """The newest of the room's last 50 events (via /messages) that matches, or None."""
    response = client.get(f"{V3}/rooms/{q(room_id)}/messages", params={"dir": "b", "limit": "50"})
    assert response.status == 200, response
    return next((event for event in response.body["chunk"] if predicate(event)), None)


# coturn

REQUIRE_COTURN = "VIGNETTE_REQUIRE_COTURN"


def coturn_binaries() -> tuple[str, str]:
    """(turnserver, turnutils_uclient) from Debian's coturn package; skip (or fail in CI) without."""
    server, client = shutil.which("turnserver"), shutil.which("turnutils_uclient")
    if server and client:
        return server, client
    reason = "coturn is not installed (apt-get install coturn); .ci/run installs it"
    if os.environ.get(REQUIRE_COTURN) == "1":
        pytest.fail(f"{REQUIRE_COTURN}=1 but {reason}")
    pytest.skip(reason)


def _free(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive ports below 32768 free for TCP and UDP on loopback."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32768 - size)
        if all(_free(p, socket.SOCK_STREAM) and _free(p, socket.SOCK_DGRAM) for p in range(base, base + size)):
            return base
    raise RuntimeError("no free block of ports below 32768")


def _udp_listening(port: int) -> bool:
    """Whether something has UDP port ``port`` bound (read from /proc, so we never race for it)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(line.split()[1].endswith(suffix) for line in lines if len(line.split()) > 1):
            return True
    return False


@attrs.frozen
class Coturn:
    port: int
    uclient: str
    log_path: Path

    @property
    def uri(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def allocate(self, username: str, password: str) -> subprocess.CompletedProcess[str]:
        """turnutils_uclient: allocate a relay with these credentials and send a few packets through it."""
        return subprocess.run(
            [self.uclient, "-u", username, "-w", password, "-p", str(self.port), "-y", "-n", "3",
             "-e", "127.0.0.1", "127.0.0.1"],
            capture_output=True, text=True, timeout=60, check=False,
        )


@contextmanager
def running_coturn(directory: Path, *auth: str) -> Iterator[Coturn]:
    """A coturn on 127.0.0.1 with relay ports below 32768; ``auth`` is its credential options."""
    server, uclient = coturn_binaries()
    base = free_port_block(12)
    log_path = directory / "turnserver.log"
    process = subprocess.Popen(
        [server, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={base}",
         f"--min-port={base + 1}", f"--max-port={base + 11}", "--no-tls", "--no-dtls", "--no-cli",
         "--allow-loopback-peers", "--fingerprint", "--realm=test.local", "--simple-log",
         f"--log-file={log_path}", "--no-stdout-log", f"--pidfile={directory / 'turnserver.pid'}", *auth],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(directory),
    )
    try:
        deadline = time.monotonic() + 20
        while not _udp_listening(base):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"coturn did not start: {log_path.read_text() if log_path.exists() else ''}")
            time.sleep(0.05)
        yield Coturn(base, uclient, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
