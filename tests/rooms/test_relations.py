"""/relations for annotations, references and threads; /threads."""

from __future__ import annotations

import pytest

from tests.support.client import Client, q
from tests.support.rooms import V1, create_room, join, new_user, send_message
from tests.support.server import RunningServer


@pytest.fixture
def thread_room(server: RunningServer) -> tuple[Client, Client, str, str]:
    alice, bob = new_user(server.base_url), new_user(server.base_url)
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    root = send_message(alice, room_id, "root")
    return alice, bob, room_id, root


def react(client: Client, room_id: str, target: str, key: str) -> str:
    content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}
    response = client.put(f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.reaction/{key}{target[1:8]}", content)
    assert response.status == 200, response
    return response.body["event_id"]


def relations(client: Client, room_id: str, target: str, *suffix: str, **params: object) -> dict:
    path = f"{V1}/rooms/{q(room_id)}/relations/{q(target)}" + "".join(f"/{q(s)}" for s in suffix)
    response = client.get(path, params=params)
    assert response.status == 200, response
    return response.body


def test_annotations_references_and_threads(thread_room: tuple[Client, Client, str, str]) -> None:
    alice, bob, room_id, root = thread_room
    reaction = react(bob, room_id, root, "👍")
    reference = send_message(bob, room_id, "see above",
                             **{"m.relates_to": {"rel_type": "m.reference", "event_id": root}})
    reply = send_message(bob, room_id, "in thread",
                         **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    everything = relations(alice, room_id, root)
    assert [e["event_id"] for e in everything["chunk"]] == [reply, reference, reaction]
    assert [e["event_id"] for e in relations(alice, room_id, root, "m.annotation")["chunk"]] == [reaction]
    typed = relations(alice, room_id, root, "m.annotation", "m.reaction")["chunk"]
    assert [e["event_id"] for e in typed] == [reaction]
    assert relations(alice, room_id, root, "m.annotation", "m.room.message")["chunk"] == []
    assert [e["event_id"] for e in relations(alice, room_id, root, "m.thread")["chunk"]] == [reply]
    forwards = relations(alice, room_id, root, dir="f")
    assert [e["event_id"] for e in forwards["chunk"]] == [reaction, reference, reply]


def test_relations_pagination(thread_room: tuple[Client, Client, str, str]) -> None:
    alice, _, room_id, root = thread_room
    replies = [send_message(alice, room_id, f"r{i}", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
               for i in range(5)]
    seen: list[str] = []
    token = None
    for _ in range(10):
        params: dict[str, object] = {"limit": 2}
        if token:
            params["from"] = token
        page = relations(alice, room_id, root, "m.thread", **params)
        seen.extend(e["event_id"] for e in page["chunk"])
        token = page.get("next_batch")
        if token is None:
            break
    assert seen == list(reversed(replies))


def test_threads_listing(thread_room: tuple[Client, Client, str, str]) -> None:
    alice, bob, room_id, root = thread_room
    other_root = send_message(bob, room_id, "other root")
    send_message(alice, room_id, "a", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    send_message(alice, room_id, "b", **{"m.relates_to": {"rel_type": "m.thread", "event_id": other_root}})
    response = alice.get(f"{V1}/rooms/{q(room_id)}/threads")
    assert response.status == 200, response
    assert [e["event_id"] for e in response.body["chunk"]] == [other_root, root]
    mine = bob.get(f"{V1}/rooms/{q(room_id)}/threads", params={"include": "participated"}).body
    assert [e["event_id"] for e in mine["chunk"]] == [other_root]
    assert bob.get(f"{V1}/rooms/{q(room_id)}/threads", params={"include": "x"}).status == 400


def test_relations_of_hidden_or_unknown_events(server: RunningServer,
                                               thread_room: tuple[Client, Client, str, str]) -> None:
    alice, _, room_id, root = thread_room
    outsider = new_user(server.base_url)
    assert outsider.get(f"{V1}/rooms/{q(room_id)}/relations/{q(root)}").status == 403
    assert alice.get(f"{V1}/rooms/{q(room_id)}/relations/{q('$nope')}").status == 404
    bad = alice.get(f"{V1}/rooms/{q(room_id)}/relations/{q(root)}", params={"from": "zzz"})
    assert bad.status == 400


def test_thread_summary_and_references_are_bundled(thread_room: tuple[Client, Client, str, str]) -> None:
    alice, bob, room_id, root = thread_room
    send_message(bob, room_id, "first", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    last = send_message(bob, room_id, "second", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    reference = send_message(bob, room_id, "ref", **{"m.relates_to": {"rel_type": "m.reference", "event_id": root}})
    event = alice.get(f"/_matrix/client/v3/rooms/{q(room_id)}/event/{q(root)}").body
    bundle = event["unsigned"]["m.relations"]
    assert bundle["m.thread"]["count"] == 2
    assert bundle["m.thread"]["latest_event"]["event_id"] == last
    assert bundle["m.thread"]["current_user_participated"] is True  # alice sent the root
    assert bundle["m.reference"] == {"chunk": [{"event_id": reference}]}
    bob_view = bob.get(f"/_matrix/client/v3/rooms/{q(room_id)}/event/{q(root)}").body
    assert bob_view["unsigned"]["m.relations"]["m.thread"]["current_user_participated"] is True
