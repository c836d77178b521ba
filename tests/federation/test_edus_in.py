"""EDUs from a scripted peer reaching local users: typing, receipts, presence and to-device
messages (delivered once per message_id), and what is refused from the wrong server."""

from __future__ import annotations

from typing import Any

from tests.support.client import Client
from tests.support.fed_rooms import PeerRoom, peer_user
from tests.support.sync import ephemeral_of, sync, sync_until

FED_SERVER_CONFIG = {"presence": {"enabled": True}}


def joined(room: PeerRoom) -> str:
    user = peer_user(room.peer)
    event = room.join(user)
    assert room.send([event]) == {event.event_id: {}}
    return user


def edu(edu_type: str, content: Any) -> dict[str, Any]:
    return {"edu_type": edu_type, "content": content}


def test_typing(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    since = sync(owner)["next_batch"]
    spoofed = "@someone:elsewhere.test"
    room.send([], [edu("m.typing", {"room_id": room.room_id, "user_id": spoofed, "typing": True}),
                   edu("m.typing", {"room_id": room.room_id, "user_id": user, "typing": True})])
    body, since = sync_until(owner, since, lambda b: ephemeral_of(b, room.room_id, "m.typing"))
    assert ephemeral_of(body, room.room_id, "m.typing")[0]["content"]["user_ids"] == [user]
    room.send([], [edu("m.typing", {"room_id": room.room_id, "user_id": user, "typing": False})])
    body, _ = sync_until(owner, since, lambda b: ephemeral_of(b, room.room_id, "m.typing"))
    assert ephemeral_of(body, room.room_id, "m.typing")[0]["content"]["user_ids"] == []


def test_receipts(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    read = room.extremities[0]
    since = sync(owner)["next_batch"]
    outsider = peer_user(room.peer)  # of the right server, but not in the room
    content = {room.room_id: {"m.read": {
        outsider: {"event_ids": [read], "data": {"ts": 1}},
        user: {"event_ids": [read], "data": {"ts": 1}},
    }}}
    room.send([], [edu("m.receipt", content)])
    body, _ = sync_until(owner, since, lambda b: ephemeral_of(b, room.room_id, "m.receipt"))
    (receipt,) = ephemeral_of(body, room.room_id, "m.receipt")
    assert set(receipt["content"][read]["m.read"]) == {user}


def test_presence_only_for_users_sharing_a_room(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    stranger = peer_user(room.peer)
    since = sync(owner)["next_batch"]
    push = [{"user_id": stranger, "presence": "online", "last_active_ago": 10, "currently_active": True},
            {"user_id": user, "presence": "unavailable", "last_active_ago": 5000, "status_msg": "away"}]
    room.send([], [edu("m.presence", {"push": push})])

    def seen(b: dict[str, Any]) -> bool:
        return any(e["sender"] == user for e in b.get("presence", {}).get("events", []))

    body, _ = sync_until(owner, since, seen)
    events = {e["sender"]: e for e in body["presence"]["events"]}
    assert events[user]["content"]["presence"] == "unavailable"
    assert events[user]["content"]["status_msg"] == "away"
    assert stranger not in events


def test_to_device_is_delivered_once(room: PeerRoom, owner: Client) -> None:
    user = joined(room)
    since = sync(owner)["next_batch"]
    message = {"sender": user, "type": "m.test.ping", "message_id": "msg-1",
               "messages": {owner.user_id: {owner.device_id: {"n": 1}}}}
    spoofed = {**message, "sender": "@mallory:elsewhere.test", "message_id": "msg-2"}
    room.send([], [edu("m.direct_to_device", message), edu("m.direct_to_device", spoofed)])
    room.send([], [edu("m.direct_to_device", message)])  # the same message again, in another transaction
    room.send([], [edu("m.direct_to_device", {**message, "message_id": "msg-3",
                                              "messages": {owner.user_id: {"*": {"n": 3}}}})])

    received: list[dict[str, Any]] = []

    def collect(b: dict[str, Any]) -> bool:
        received.extend(b.get("to_device", {}).get("events", []))
        return any(e["content"].get("n") == 3 for e in received)

    sync_until(owner, since, collect)
    assert [(e["sender"], e["type"], e["content"]) for e in received] == [
        (user, "m.test.ping", {"n": 1}), (user, "m.test.ping", {"n": 3})]


def test_unknown_and_malformed_edus_are_ignored(room: PeerRoom) -> None:
    joined(room)
    edus = [edu("m.unknown", {}), {"no": "type"}, "text", edu("m.typing", "not an object"),
            edu("m.receipt", {room.room_id: "x"}), edu("m.presence", {"push": "x"}),
            edu("m.direct_to_device", {"messages": []}), edu("m.device_list_update", {"user_id": 3})]
    assert room.send([], edus) == {}
