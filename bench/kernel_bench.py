"""Throughput of the event kernel's hot paths: signing, verification, event IDs, auth.

A script, not a test: `python bench/kernel_bench.py [seconds-per-measurement]`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import nacl.signing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from homeserver.events.auth import check_auth_rules  # noqa: E402
from homeserver.events.builder import ServerSigningKey, build_event  # noqa: E402
from homeserver.events.event import Event  # noqa: E402
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS  # noqa: E402
from homeserver.events.signing import sign_event, verify_event_signatures  # noqa: E402


def rate(label: str, operation: Callable[[], object], seconds: float) -> None:
    """Run `operation` for about `seconds` and print operations per second."""
    operation()  # warm up
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            operation()
        count += 50
    elapsed = time.perf_counter() - started
    print(f"{label:<40} {count / elapsed:>10,.0f} /s")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    room_version = KNOWN_ROOM_VERSIONS["12"]
    key = ServerSigningKey("bench.example", "ed25519:b", nacl.signing.SigningKey.generate())
    verify_keys = {"bench.example": {"ed25519:b": key.signing_key.verify_key}}
    message = build_event(
        room_version=room_version,
        event_type="m.room.message",
        sender="@alice:bench.example",
        content={"msgtype": "m.text", "body": "Hello, benchmark! " * 8},
        room_id="!" + "A" * 43,
        prev_event_ids=["$" + "B" * 43],
        auth_event_ids=["$" + "C" * 43, "$" + "D" * 43],
        depth=42,
        origin_server_ts=1_700_000_000_000,
        key=key,
    )
    unsigned = {k: v for k, v in message.pdu.items() if k not in ("hashes", "signatures")}

    print(f"room version {room_version.identifier}, message event of {len(str(message.pdu))} chars")
    rate(
        "sign event (hash + redact + ed25519)",
        lambda: sign_event(unsigned, room_version, key.server_name, key.key_id, key.signing_key),
        seconds,
    )
    rate(
        "verify event signatures",
        lambda: verify_event_signatures(message.pdu, room_version, verify_keys),
        seconds,
    )
    rate(
        "compute event ID (Event.from_pdu)",
        lambda: Event.from_pdu(message.pdu, room_version),
        seconds,
    )
    state = _room_state(message)
    rate("auth check of a message", lambda: check_auth_rules(message, state), seconds)


def _room_state(message: Event) -> dict[tuple[str, str], Event]:
    """A minimal v12 state in which the message's sender may speak."""
    room_version = message.room_version
    create = Event.from_pdu(
        {
            "type": "m.room.create",
            "state_key": "",
            "sender": "@alice:bench.example",
            "content": {"room_version": "12"},
            "prev_events": [],
            "auth_events": [],
        },
        room_version,
        "$" + "A" * 43,
    )
    member = Event.from_pdu(
        {
            "type": "m.room.member",
            "state_key": message.sender,
            "sender": message.sender,
            "room_id": message.room_id,
            "content": {"membership": "join"},
        },
        room_version,
        "$member",
    )
    power_levels = Event.from_pdu(
        {
            "type": "m.room.power_levels",
            "state_key": "",
            "sender": message.sender,
            "room_id": message.room_id,
            "content": {"users": {}},
        },
        room_version,
        "$pl",
    )
    return {(e.type, e.state_key or ""): e for e in (create, member, power_levels)}


if __name__ == "__main__":
    main()
