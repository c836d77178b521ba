"""The admin API's forward extremities (``/_synapse/admin/v1/rooms/{id}/forward_extremities``)
on a room a scripted peer forked: listing them, deleting all but the newest, and the room
going on with one parent per new event. Both engines."""

from __future__ import annotations

from tests.support.admin import ADMIN_V1, new_admin, refused_to_others
from tests.support.client import Client, q
from tests.support.fed_rooms import PeerRoom, peer_user
from tests.support.federation import ScriptedPeer
from tests.support.rooms import new_user, send_message
from tests.support.server import RunningServer

V3 = "/_matrix/client/v3"


def text(room: PeerRoom, sender: str, body: str, prev: list[str]) -> object:
    return room.build(sender, "m.room.message", {"msgtype": "m.text", "body": body}, prev=prev)


def test_list_and_delete_forward_extremities(peer: ScriptedPeer, fed_server: RunningServer) -> None:
    owner: Client = new_user(fed_server.base_url)
    admin = new_admin(fed_server)
    room = PeerRoom.create(peer, fed_server, owner)
    user = peer_user(peer, "forker")
    joined = room.join(user)
    assert room.send([joined]) == {joined.event_id: {}}
    # Three messages on the same parent: the room has three forward extremities.
    fork = [text(room, user, f"branch {i}", [joined.event_id]) for i in range(3)]
    for event in fork:
        assert room.send([event]) == {event.event_id: {}}
    path = f"{ADMIN_V1}/rooms/{q(room.room_id)}/forward_extremities"
    listed = admin.get(path)
    assert listed.status == 200, listed
    assert listed.body["count"] == 3
    assert {r["event_id"] for r in listed.body["results"]} == {e.event_id for e in fork}
    assert all(set(r) >= {"event_id", "depth", "state_group", "received_ts"} for r in listed.body["results"])

    refused_to_others(fed_server, "DELETE", path)
    deleted = admin.delete(path)
    assert (deleted.status, deleted.body) == (200, {"deleted": 2}), deleted
    # The newest stays: the one persisted last.
    assert [r["event_id"] for r in admin.get(path).body["results"]] == [fork[-1].event_id]
    # A new local event cites that one alone, and the room works as before.
    event_id = send_message(owner, room.room_id, "after the clean-up")
    pdu = peer.request("GET", fed_server, f"/_matrix/federation/v1/event/{q(event_id)}").json()["pdus"][0]
    assert pdu["prev_events"] == [fork[-1].event_id]
    assert admin.get(path).body["results"][0]["event_id"] == event_id
    assert admin.delete(path).body == {"deleted": 0}


def test_bad_input(fed_server: RunningServer) -> None:
    admin = new_admin(fed_server)
    for room_id, status in (("not-a-room", 400), ("!missing:" + fed_server.server_name, 404)):
        response = admin.delete(f"{ADMIN_V1}/rooms/{q(room_id)}/forward_extremities")
        assert response.status == status, (room_id, response)
