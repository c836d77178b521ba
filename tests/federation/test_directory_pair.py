"""Rooms described across servers, between two Vignette servers: another server's public room
directory (``/publicRooms?server=``, over federation ``/publicRooms``) and spaces whose rooms live
on the other server (``/rooms/{roomId}/hierarchy`` asking federation ``/hierarchy``), with the
federation endpoint's own checks (issue 14, "Directory across servers"; issue 20 item 3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.support.client import Client, q
from tests.support.fed_pair import Pair
from tests.support.federation import ScriptedPeer
from tests.support.federation_rooms import FED, peer_join
from tests.support.rooms import V1, V3, create_room, new_user, put_state

PAIR_CONFIG = {"allow_public_rooms_over_federation": True}
PAIR_PREFIX = "dir"


def public_rooms(client: Client, server: str, expect: int = 200, body: Any = None, **params: Any) -> Any:
    if body is None:
        response = client.get(f"{V3}/publicRooms", params={"server": server, **params})
    else:
        response = client.post(f"{V3}/publicRooms", body, params={"server": server, **params})
    assert response.status == expect, response
    return response.body


def test_public_rooms_of_the_other_server(pair: Pair) -> None:
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    tag = alice.user_id[2:10]
    rooms = [create_room(alice, preset="public_chat", visibility="public", name=f"{tag} lounge {i}")
             for i in range(3)]
    listed = public_rooms(bob, pair.a.server_name)
    assert set(rooms) <= {entry["room_id"] for entry in listed["chunk"]}
    entry = next(e for e in listed["chunk"] if e["room_id"] == rooms[0])
    assert entry["name"] == f"{tag} lounge 0" and entry["num_joined_members"] == 1
    # POST carries the filter to the other server; paging tokens are the other server's.
    found = public_rooms(bob, pair.a.server_name, body={"filter": {"generic_search_term": f"{tag} lounge"},
                                                        "limit": 2})
    assert len(found["chunk"]) == 2 and "next_batch" in found
    rest = public_rooms(bob, pair.a.server_name, body={"filter": {"generic_search_term": f"{tag} lounge"},
                                                       "since": found["next_batch"]})
    assert {e["room_id"] for e in found["chunk"] + rest["chunk"]} == set(rooms)
    paged = public_rooms(bob, pair.a.server_name, limit=1)
    assert len(paged["chunk"]) == 1 and "next_batch" in paged
    # Our own name is our own directory.
    assert rooms[0] in {e["room_id"] for e in public_rooms(alice, pair.a.server_name)["chunk"]}


def test_public_rooms_bad_requests(pair: Pair) -> None:
    bob = new_user(pair.b.base_url)
    anonymous = Client(pair.b.base_url)
    assert anonymous.get(f"{V3}/publicRooms", params={"server": pair.a.server_name}).status == 401
    assert public_rooms(bob, "not a server!", expect=400)["errcode"] == "M_INVALID_PARAM"
    assert public_rooms(bob, "nowhere.invalid", expect=404)["errcode"] == "M_NOT_FOUND"
    assert public_rooms(bob, pair.a.server_name, expect=400, body={"limit": "x"})["errcode"] == "M_BAD_JSON"
    assert public_rooms(bob, pair.a.server_name, expect=400, body=[1])["errcode"] == "M_NOT_JSON"


def hierarchy(client: Client, room_id: str, expect: int = 200, **params: Any) -> Any:
    response = client.get(f"{V1}/rooms/{q(room_id)}/hierarchy", params=params)
    assert response.status == expect, response
    return response.body


def link(client: Client, space: str, child: str, via: str, **content: Any) -> None:
    assert put_state(client, space, "m.space.child", {"via": [via], **content}, state_key=child).status == 200


def space(client: Client, name: str, **body: Any) -> str:
    return create_room(client, preset="public_chat", name=name, creation_content={"type": "m.space"}, **body)


def ids(body: dict[str, Any]) -> list[str]:
    return [room["room_id"] for room in body["rooms"]]


@pytest.fixture(scope="module")
def spaces(pair: Pair) -> dict[str, Any]:
    """On A: a space with a suggested room, a plain room, a private room and a sub-space (whose
    child is on A too). On B: a space whose only child is A's space."""
    alice, bob = new_user(pair.a.base_url), new_user(pair.b.base_url)
    a = pair.a.server_name
    root = space(alice, "root on A", room_version="10")  # its ID names A, where B asks for it
    suggested = create_room(alice, preset="public_chat", name="suggested")
    plain = create_room(alice, preset="public_chat", name="plain")
    private = create_room(alice, preset="private_chat", name="private", room_version="10")
    sub = space(alice, "sub-space")
    leaf = create_room(alice, preset="public_chat", name="leaf")
    link(alice, root, suggested, a, suggested=True, order="a")
    link(alice, root, plain, a, order="b")
    link(alice, root, private, a, order="c")
    link(alice, root, sub, a, order="d")
    link(alice, sub, leaf, a)
    on_b = space(bob, "space on B")
    link(bob, on_b, root, a)
    return {"alice": alice, "bob": bob, "root": root, "suggested": suggested, "plain": plain,
            "private": private, "sub": sub, "leaf": leaf, "on_b": on_b}


def test_a_space_on_the_other_server(spaces: dict[str, Any]) -> None:
    bob = spaces["bob"]
    body = hierarchy(bob, spaces["root"])
    assert ids(body) == [spaces["root"], spaces["suggested"], spaces["plain"], spaces["sub"], spaces["leaf"]]
    root = body["rooms"][0]
    assert root["name"] == "root on A" and root["room_type"] == "m.space" and root["num_joined_members"] == 1
    assert {c["state_key"] for c in root["children_state"]} == \
        {spaces["suggested"], spaces["plain"], spaces["private"], spaces["sub"]}
    sub = body["rooms"][3]
    assert [c["state_key"] for c in sub["children_state"]] == [spaces["leaf"]]
    assert ids(hierarchy(bob, spaces["root"], suggested_only="true")) == [spaces["root"], spaces["suggested"]]
    assert ids(hierarchy(bob, spaces["root"], max_depth=1)) == ids(body)[:4]
    first = hierarchy(bob, spaces["root"], limit=2)
    second = hierarchy(bob, spaces["root"], limit=10, **{"from": first["next_batch"]})
    assert ids(first) + ids(second) == ids(body)
    # A private room on A is never described to B's users, not even as the root.
    assert hierarchy(bob, spaces["private"], expect=403)["errcode"] == "M_FORBIDDEN"


def test_a_local_space_with_a_child_on_the_other_server(spaces: dict[str, Any]) -> None:
    body = hierarchy(spaces["bob"], spaces["on_b"])
    assert ids(body)[:2] == [spaces["on_b"], spaces["root"]]
    assert spaces["leaf"] in ids(body) and spaces["private"] not in ids(body)


def test_the_federation_endpoint(spaces: dict[str, Any], pair: Pair, peer: ScriptedPeer) -> None:
    path = f"{FED}/v1/hierarchy/{quote(spaces['root'], safe='')}"
    response = peer.request("GET", pair.a, path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["room"]["room_id"] == spaces["root"] and len(body["room"]["children_state"]) == 4
    assert {c["room_id"] for c in body["children"]} == {spaces["suggested"], spaces["plain"], spaces["sub"]}
    sub = next(c for c in body["children"] if c["room_id"] == spaces["sub"])
    assert [e["state_key"] for e in sub["children_state"]] == [spaces["leaf"]]
    assert body["inaccessible_children"] == [spaces["private"]]
    suggested = peer.request("GET", pair.a, path + "?suggested_only=true").json()
    assert [c["room_id"] for c in suggested["children"]] == [spaces["suggested"]]
    private = f"{FED}/v1/hierarchy/{quote(spaces['private'], safe='')}"
    hidden = peer.request("GET", pair.a, private)
    assert (hidden.status_code, hidden.json()["errcode"]) == (404, "M_NOT_FOUND")
    unknown = peer.request("GET", pair.a, f"{FED}/v1/hierarchy/{quote('!nope:' + pair.a.server_name, safe='')}")
    assert (unknown.status_code, unknown.json()["errcode"]) == (404, "M_NOT_FOUND")
    bad = peer.request("GET", pair.a, f"{FED}/v1/hierarchy/not-a-room")
    assert bad.status_code == 400
    assert peer.request("GET", pair.a, path, authorization=False).status_code == 401


def test_a_joined_server_sees_a_private_room(pair: Pair, peer: ScriptedPeer) -> None:
    alice = new_user(pair.a.base_url)
    room_id = create_room(alice, preset="public_chat", name="was public")
    assert peer_join(peer, pair.a, room_id, f"@pat:{peer.server_name}").status_code == 200
    assert put_state(alice, room_id, "m.room.join_rules", {"join_rule": "invite"}).status == 200
    seen = peer.request("GET", pair.a, f"{FED}/v1/hierarchy/{quote(room_id, safe='')}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["room"]["join_rule"] == "invite"
