"""Delivery on the cached path (issue 16), over both transports: /sync long-polls and the
WebSocket stream read memberships, room changes and recent events from memory, and must
still never show an event a member may not see, nor lose or repeat one."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import pytest

from tests.support.client import Client, q, register_user
from tests.support.server import RunningServer
from tests.support.sync import (
    StreamClient,
    create_room,
    join,
    leave,
    send_text,
    shared_room,
    sync,
)

BIG = {"room": {"timeline": {"limit": 1000}}}
TRANSPORTS = ("longpoll", "websocket")


@attrs.define
class Receiver:
    """One member's view of everything delivered to it, whichever the transport."""

    client: Client
    transport: str
    since: str
    stream: StreamClient | None = None
    #: (room_id, event) in delivery order.
    seen: list[tuple[str, dict[str, Any]]] = attrs.field(factory=list)

    @classmethod
    def start(cls, client: Client, transport: str) -> Receiver:
        since = sync(client, sync_filter=BIG)["next_batch"]
        stream = (
            StreamClient.connect(client, since=since, sync_filter=BIG)
            if transport == "websocket"
            else None
        )
        return cls(client, transport, since, stream)

    def _next(self) -> dict[str, Any]:
        if self.stream is not None:
            return self.stream.next_frame()
        body = sync(self.client, self.since, timeout=5000, sync_filter=BIG)
        self.since = body["next_batch"]
        return body

    def until(self, event_id: str, attempts: int = 50) -> list[tuple[str, dict[str, Any]]]:
        """Read until ``event_id`` arrives; everything delivered so far."""
        for _ in range(attempts):
            if any(e["event_id"] == event_id for _, e in self.seen):
                return self.seen
            body = self._next()
            for room_id, room in sorted(body.get("rooms", {}).get("join", {}).items()):
                self.seen.extend((room_id, e) for e in room["timeline"]["events"])
            for room_id, room in sorted(body.get("rooms", {}).get("leave", {}).items()):
                self.seen.extend((room_id, e) for e in room["timeline"]["events"])
        raise AssertionError(f"{event_id} never arrived")

    def ids(self, room_id: str) -> list[str]:
        return [e["event_id"] for r, e in self.seen if r == room_id]

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    opened: list[Receiver] = []
    yield opened
    for receiver in opened:
        receiver.close()


def set_visibility(client: Client, room_id: str, visibility: str) -> None:
    response = client.put(
        f"/_matrix/client/v3/rooms/{q(room_id)}/state/m.room.history_visibility/",
        {"history_visibility": visibility},
    )
    assert response.status == 200, response


def test_a_member_who_leaves_stops_receiving_at_once(
    server: RunningServer, transport: str, receivers: list[Receiver]
) -> None:
    alice, bob = register_user(server.base_url), register_user(server.base_url)
    room_id = shared_room(alice, bob)
    fence_room = shared_room(alice, bob)
    bob_sees = Receiver.start(bob, transport)
    receivers.append(bob_sees)
    bob_sees.until(send_text(alice, room_id, "while joined"))
    leave(bob, room_id)
    secret = send_text(alice, room_id, "after bob left")
    fence = send_text(alice, fence_room, "fence: sent after the secret")
    seen = bob_sees.until(fence)
    assert secret not in [e["event_id"] for _, e in seen]
    # Nor does a fresh incremental sync from before the leave show it.
    body = sync(bob, bob_sees.since if transport == "longpoll" else None, sync_filter=BIG)
    assert secret not in str(body)


def test_a_member_who_joins_receives_from_the_join_on(
    server: RunningServer, transport: str, receivers: list[Receiver]
) -> None:
    alice, bob = register_user(server.base_url), register_user(server.base_url)
    room_id = create_room(alice, preset="public_chat")
    set_visibility(alice, room_id, "joined")
    fence_room = shared_room(alice, bob)
    before = send_text(alice, room_id, "before bob joined")
    bob_sees = Receiver.start(bob, transport)
    receivers.append(bob_sees)
    join(bob, room_id)
    after = send_text(alice, room_id, "after bob joined")
    bob_sees.until(after)
    bob_sees.until(send_text(alice, fence_room, "fence"))
    ids = bob_sees.ids(room_id)
    assert after in ids and before not in ids
    assert ids.count(after) == 1


def test_history_visibility_holds_on_the_cached_path(
    server: RunningServer, transport: str, receivers: list[Receiver]
) -> None:
    """Out and back in with "joined" visibility: what was sent meanwhile stays hidden."""
    alice, bob = register_user(server.base_url), register_user(server.base_url)
    room_id = create_room(alice, preset="public_chat")
    set_visibility(alice, room_id, "joined")
    join(bob, room_id)
    bob_sees = Receiver.start(bob, transport)
    receivers.append(bob_sees)
    bob_sees.until(send_text(alice, room_id, "first"))
    leave(bob, room_id)
    hidden = send_text(alice, room_id, "while bob was away")
    join(bob, room_id)
    back = send_text(alice, room_id, "bob is back")
    bob_sees.until(back)
    assert hidden not in bob_sees.ids(room_id)


def test_concurrent_senders_and_joins_deliver_everything_once_in_order(
    server: RunningServer, transport: str, receivers: list[Receiver]
) -> None:
    owner = register_user(server.base_url)
    senders = [register_user(server.base_url) for _ in range(4)]
    watchers = [register_user(server.base_url) for _ in range(3)]
    joiners = [register_user(server.base_url) for _ in range(4)]
    room_id = create_room(owner, preset="public_chat")
    for member in [*senders, *watchers]:
        join(member, room_id)
    watching = [Receiver.start(w, transport) for w in watchers]
    receivers.extend(watching)

    def send_some(sender: Client) -> list[str]:
        return [send_text(sender, room_id, f"{sender.user_id} {n}") for n in range(8)]

    with ThreadPoolExecutor(max_workers=len(senders) + len(joiners)) as pool:
        sending = [pool.submit(send_some, s) for s in senders]
        for joiner in joiners:
            pool.submit(join, joiner, room_id).result()
        sent = {event_id for future in sending for event_id in future.result()}
    last = send_text(owner, room_id, "last")
    page = owner.get(
        f"/_matrix/client/v3/rooms/{q(room_id)}/messages", params={"dir": "b", "limit": "1000"}
    ).body["chunk"]
    reference = [e["event_id"] for e in reversed(page)]
    assert sent | {last} <= set(reference)
    for receiver in watching:
        receiver.until(last)
        ids = receiver.ids(room_id)
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        assert sent <= set(ids)
        assert ids == [i for i in reference if i in set(ids)], "not in stream order"


def test_a_restart_loses_nothing(server: RunningServer, transport: str) -> None:
    alice, bob = register_user(server.base_url), register_user(server.base_url)
    room_id = shared_room(alice, bob)
    bob_sees = Receiver.start(bob, transport)
    first = send_text(alice, room_id, "before the restart")
    bob_sees.until(first)
    token = bob_sees.stream.last_token if bob_sees.stream is not None else bob_sees.since
    bob_sees.close()
    meanwhile = send_text(alice, room_id, "acknowledged, then the restart")
    server.restart()
    after = send_text(alice, room_id, "after the restart")
    assert token is not None
    resumed = Receiver(
        bob,
        transport,
        token,
        StreamClient.connect(bob, since=token, sync_filter=BIG)
        if transport == "websocket"
        else None,
    )
    try:
        resumed.until(after)
        assert resumed.ids(room_id) == [meanwhile, after]
    finally:
        resumed.close()
