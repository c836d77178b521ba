"""Spaces: GET /_matrix/client/v1/rooms/{roomId}/hierarchy over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import Client, q
from tests.support.rooms import V1, create_room, join, new_user, put_state
from tests.support.server import RunningServer


def hierarchy(client: Client, room: str, expect: int = 200, **params: Any) -> Any:
    response = client.get(f"{V1}/rooms/{q(room)}/hierarchy", params=params)
    assert response.status == expect, response
    return response.body


def ids(body: dict[str, Any]) -> list[str]:
    return [room["room_id"] for room in body["rooms"]]


def add_child(client: Client, space: str, child: str, **content: Any) -> None:
    body = {"via": ["test.local"], **content}
    assert put_state(client, space, "m.space.child", body, state_key=child).status == 200


def space(client: Client, **body: Any) -> str:
    return create_room(client, creation_content={"type": "m.space"}, **body)


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> Client:
    return new_user(server.base_url)


def test_children_in_the_spec_order_with_their_summaries(alice: Client) -> None:
    root = space(alice, preset="public_chat", name="Root", topic="all of it")
    late, early, unordered = (create_room(alice, preset="public_chat", name=n) for n in ("late", "early", "none"))
    add_child(alice, root, unordered)
    add_child(alice, root, late, order="b")
    add_child(alice, root, early, order="a")
    body = hierarchy(alice, root)
    assert ids(body) == [root, early, late, unordered] and "next_batch" not in body
    top = body["rooms"][0]
    assert top["room_type"] == "m.space" and top["name"] == "Root" and top["topic"] == "all of it"
    assert top["num_joined_members"] == 1 and top["join_rule"] == "public"
    assert top["world_readable"] is False and top["guest_can_join"] is False
    children = {c["state_key"]: c for c in top["children_state"]}
    assert set(children) == {late, early, unordered}
    assert children[late]["type"] == "m.space.child" and children[late]["content"]["order"] == "b"
    assert children[late]["sender"] == alice.user_id and isinstance(children[late]["origin_server_ts"], int)
    assert body["rooms"][1]["name"] == "early" and body["rooms"][1]["children_state"] == []
    assert "room_type" not in body["rooms"][1]


def test_depth_first_and_max_depth(alice: Client) -> None:
    root, sub = space(alice, preset="public_chat"), space(alice, preset="public_chat")
    leaf, sibling = create_room(alice, preset="public_chat"), create_room(alice, preset="public_chat")
    add_child(alice, root, sub, order="1")
    add_child(alice, root, sibling, order="2")
    add_child(alice, sub, leaf)
    assert ids(hierarchy(alice, root)) == [root, sub, leaf, sibling]
    assert ids(hierarchy(alice, root, max_depth=1)) == [root, sub, sibling]
    assert ids(hierarchy(alice, root, max_depth=0)) == [root]


def test_suggested_only(alice: Client) -> None:
    root = space(alice, preset="public_chat")
    suggested, other = create_room(alice, preset="public_chat"), create_room(alice, preset="public_chat")
    add_child(alice, root, suggested, suggested=True)
    add_child(alice, root, other)
    assert ids(hierarchy(alice, root, suggested_only="true")) == [root, suggested]
    assert set(ids(hierarchy(alice, root))) == {root, suggested, other}


def test_links_without_via_loops_and_unknown_rooms(alice: Client) -> None:
    root, loop = space(alice, preset="public_chat"), space(alice, preset="public_chat")
    no_via, empty_via = create_room(alice, preset="public_chat"), create_room(alice, preset="public_chat")
    add_child(alice, root, loop, order="a")
    add_child(alice, loop, root)
    assert put_state(alice, root, "m.space.child", {"order": "b"}, state_key=no_via).status == 200
    assert put_state(alice, root, "m.space.child", {"via": []}, state_key=empty_via).status == 200
    add_child(alice, root, "!elsewhere:remote.example", order="c")
    body = hierarchy(alice, root)
    assert ids(body) == [root, loop]
    assert {c["state_key"] for c in body["rooms"][0]["children_state"]} == {loop, "!elsewhere:remote.example"}


def test_paging_with_from(alice: Client) -> None:
    root = space(alice, preset="public_chat")
    children = [create_room(alice, preset="public_chat") for _ in range(4)]
    for i, child in enumerate(children):
        add_child(alice, root, child, order=str(i))
    first = hierarchy(alice, root, limit=2)
    assert ids(first) == [root, children[0]]
    second = hierarchy(alice, root, limit=2, **{"from": first["next_batch"]})
    assert ids(second) == children[1:3]
    third = hierarchy(alice, root, limit=2, **{"from": second["next_batch"]})
    assert ids(third) == children[3:] and "next_batch" not in third
    changed = hierarchy(alice, root, 400, limit=2, suggested_only="true", **{"from": first["next_batch"]})
    assert changed["errcode"] == "M_INVALID_PARAM"
    other_depth = hierarchy(alice, root, 400, max_depth=3, **{"from": first["next_batch"]})
    assert other_depth["errcode"] == "M_INVALID_PARAM"
    other_room = hierarchy(alice, children[0], 400, **{"from": first["next_batch"]})
    assert other_room["errcode"] == "M_INVALID_PARAM"


def test_who_sees_which_rooms(server: RunningServer, alice: Client) -> None:
    bob, carol = new_user(server.base_url), new_user(server.base_url)
    root = space(alice, preset="public_chat")
    private = create_room(alice, preset="private_chat")
    readable = create_room(alice, preset="private_chat")
    assert put_state(alice, readable, "m.room.history_visibility",
                     {"history_visibility": "world_readable"}).status == 200
    restricted = create_room(alice, preset="private_chat", room_version="10")
    assert put_state(alice, restricted, "m.room.join_rules", {
        "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": root}]}).status == 200
    invited = create_room(alice, preset="private_chat")
    assert alice.post(f"/_matrix/client/v3/rooms/{q(invited)}/invite", {"user_id": bob.user_id}).status == 200
    for i, child in enumerate((private, readable, restricted, invited)):
        add_child(alice, root, child, order=str(i))
    join(bob, root)
    assert ids(hierarchy(alice, root)) == [root, private, readable, restricted, invited]
    assert ids(hierarchy(bob, root)) == [root, readable, restricted, invited]
    assert ids(hierarchy(carol, root)) == [root, readable]
    denied = hierarchy(carol, private, 403)
    assert denied["errcode"] == "M_FORBIDDEN"
    assert hierarchy(carol, "!nowhere:test.local", 403)["errcode"] == "M_FORBIDDEN"
    # A banned user no longer sees a public space.
    assert alice.post(f"/_matrix/client/v3/rooms/{q(root)}/ban", {"user_id": carol.user_id}).status == 200
    assert hierarchy(carol, root, 403)["errcode"] == "M_FORBIDDEN"


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "ten"}, {"max_depth": "-1"}, {"max_depth": "x"},
                                    {"suggested_only": "maybe"}, {"from": "%%%"}, {"from": "bm9wZQ"},
                                    {"from": "eyJrIjpbXSwibiI6LTF9"}])
def test_bad_parameters(alice: Client, params: dict[str, str]) -> None:
    root = space(alice, preset="public_chat")
    assert hierarchy(alice, root, 400, **params)["errcode"] == "M_INVALID_PARAM"


def test_bad_room_id_and_no_token(server: RunningServer, alice: Client) -> None:
    assert hierarchy(alice, "not-a-room", 400)["errcode"] == "M_INVALID_PARAM"
    anonymous = Client(server.base_url).get(f"{V1}/rooms/{q('!a:test.local')}/hierarchy")
    assert (anonymous.status, anonymous.errcode) == (401, "M_MISSING_TOKEN")
