"""Server-side search (POST /search) over HTTP: full text, visibility, ordering, paging, context, groups."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.support.client import Client, q
from tests.support.rooms import V3, create_room, join, leave, new_user, put_state, send_message
from tests.support.server import RunningServer


def word() -> str:
    """A word no other test uses (letters only, so no engine's tokenizer splits it)."""
    return "zq" + "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(10))


def search(client: Client, term: str, expect: int = 200, next_batch: str | None = None,
           **criteria: Any) -> dict[str, Any]:
    body = {"search_categories": {"room_events": {"search_term": term, **criteria}}}
    response = client.post(f"{V3}/search", body, params={"next_batch": next_batch} if next_batch else None)
    assert response.status == expect, response
    return response.body["search_categories"]["room_events"] if expect == 200 else response.body


def found(section: dict[str, Any]) -> list[str]:
    return [r["result"]["event_id"] for r in section["results"]]


def redact(client: Client, room: str, event_id: str) -> None:
    response = client.put(f"{V3}/rooms/{q(room)}/redact/{q(event_id)}/{secrets.token_hex(4)}", {})
    assert response.status == 200, response


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> Client:
    return new_user(server.base_url)


def test_finds_a_word_in_plain_rooms_and_nothing_in_encrypted_ones(server: RunningServer, alice: Client) -> None:
    secret = word()
    plain = create_room(alice, name="plain")
    encrypted = create_room(alice, initial_state=[{"type": "m.room.encryption", "state_key": "",
                                                   "content": {"algorithm": "m.megolm.v1.aes-sha2"}}])
    hit = send_message(alice, plain, f"the {secret} is ripe")
    send_message(alice, encrypted, "", event_type="m.room.encrypted", algorithm="m.megolm.v1.aes-sha2",
                 ciphertext=f"{secret} {secret}", sender_key="k", device_id="D", session_id="s")
    section = search(alice, secret)
    assert found(section) == [hit] and section["count"] == 1
    result = section["results"][0]
    assert result["result"]["content"]["body"] == f"the {secret} is ripe"
    assert result["result"]["room_id"] == plain and isinstance(result["rank"], (int, float))
    assert secret in section["highlights"] and "next_batch" not in section


def test_prefixes_and_every_word_must_match(alice: Client) -> None:
    first, second = word(), word()
    room = create_room(alice)
    both = send_message(alice, room, f"{first} and {second}")
    send_message(alice, room, f"{first} alone")
    assert found(search(alice, f"{first[:7]} {second}")) == [both]
    assert set(found(search(alice, first))) >= {both}
    assert found(search(alice, f"{first} {word()}")) == []
    # Punctuation in the term is not query syntax.
    assert found(search(alice, f'"{second}" ) ( * : -')) == [both]
    empty = search(alice, "!!! ...")
    assert empty["results"] == [] and empty["count"] == 0


def test_never_finds_what_the_user_could_not_see(server: RunningServer, alice: Client) -> None:
    secret = word()
    bob, eve = new_user(server.base_url), new_user(server.base_url)
    room = create_room(alice, preset="public_chat")
    assert put_state(alice, room, "m.room.history_visibility", {"history_visibility": "joined"}).status == 200
    send_message(alice, room, f"{secret} before bob")
    join(bob, room)
    seen = send_message(alice, room, f"{secret} while bob is here")
    leave(bob, room)
    send_message(alice, room, f"{secret} after bob left")
    assert found(search(bob, secret)) == [seen]
    assert found(search(eve, secret)) == []
    assert len(found(search(alice, secret))) == 3


def test_names_and_topics_with_keys(alice: Client) -> None:
    name, topic = word(), word()
    room = create_room(alice, name=f"The {name} room", topic=f"All about {topic}")
    send_message(alice, room, f"{name} in a message")
    by_name = search(alice, name, keys=["content.name"])
    assert [r["result"]["type"] for r in by_name["results"]] == ["m.room.name"]
    by_topic = search(alice, topic, keys=["content.topic"])
    assert [r["result"]["type"] for r in by_topic["results"]] == ["m.room.topic"]
    assert {r["result"]["type"] for r in search(alice, name)["results"]} == {"m.room.name", "m.room.message"}
    assert [r["result"]["type"] for r in search(alice, name, keys=["content.body"])["results"]] == [
        "m.room.message"]


def test_order_by_recent_and_rank(alice: Client) -> None:
    secret = word()
    room = create_room(alice)
    dense = send_message(alice, room, f"{secret} {secret} {secret}")
    sparse = send_message(alice, room, f"{secret} with many other words around it in a long sentence here")
    newest = send_message(alice, room, f"one {secret} again among quite a few further words of text")
    assert found(search(alice, secret, order_by="recent")) == [newest, sparse, dense]
    ranked = search(alice, secret, order_by="rank")
    assert found(ranked)[0] == dense
    ranks = [r["rank"] for r in ranked["results"]]
    assert ranks == sorted(ranks, reverse=True)


@pytest.mark.parametrize("order_by", ["recent", "rank"])
def test_next_batch_pages_through_everything_once(alice: Client, order_by: str) -> None:
    secret = word()
    room = create_room(alice)
    sent = {send_message(alice, room, f"{secret} number {i}") for i in range(5)}
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        section = search(alice, secret, next_batch=token, order_by=order_by, filter={"limit": 2})
        seen += found(section)
        pages += 1
        assert section["count"] == 5
        token = section.get("next_batch")
        if token is None:
            break
    assert pages == 3 and len(seen) == 5 and set(seen) == sent


def test_filter_rooms_senders_and_types(server: RunningServer, alice: Client) -> None:
    secret = word()
    bob = new_user(server.base_url)
    one, two = create_room(alice, preset="public_chat"), create_room(alice)
    join(bob, one)
    mine = send_message(alice, one, f"{secret} from alice")
    bobs = send_message(bob, one, f"{secret} from bob")
    other = send_message(alice, two, f"{secret} elsewhere")
    notice = send_message(alice, two, f"{secret} notice", event_type="m.room.message", msgtype="m.notice")
    assert set(found(search(alice, secret, filter={"rooms": [one]}))) == {mine, bobs}
    assert set(found(search(alice, secret, filter={"not_rooms": [one]}))) == {other, notice}
    assert found(search(alice, secret, filter={"senders": [bob.user_id]})) == [bobs]
    assert bobs not in found(search(alice, secret, filter={"not_senders": [bob.user_id]}))
    assert found(search(alice, secret, filter={"types": ["m.room.name"]})) == []
    # A room the searcher is not in finds nothing even when named.
    assert found(search(bob, secret, filter={"rooms": [two]})) == []


def test_event_context_with_profiles(server: RunningServer, alice: Client) -> None:
    secret = word()
    bob = new_user(server.base_url)
    room = create_room(alice, preset="public_chat")
    join(bob, room)
    assert bob.put(f"{V3}/rooms/{q(room)}/state/m.room.member/{q(bob.user_id or '')}",
                   {"membership": "join", "displayname": "Bobby"}).status == 200
    before = [send_message(alice, room, f"before {i}") for i in range(3)]
    hit = send_message(bob, room, f"{secret} in the middle")
    after = [send_message(alice, room, f"after {i}") for i in range(3)]
    section = search(alice, secret, event_context={"before_limit": 2, "after_limit": 1, "include_profile": True})
    (result,) = section["results"]
    context = result["context"]
    assert [e["event_id"] for e in context["events_before"]] == [before[2], before[1]]
    assert [e["event_id"] for e in context["events_after"]] == [after[0]]
    assert isinstance(context["start"], str) and isinstance(context["end"], str)
    assert context["profile_info"][bob.user_id]["displayname"] == "Bobby"
    # The context's tokens page on in /messages.
    more = alice.get(f"{V3}/rooms/{q(room)}/messages", params={"from": context["start"], "dir": "b", "limit": 1})
    assert [e["event_id"] for e in more.body["chunk"]] == [before[0]]
    assert hit == result["result"]["event_id"]
    plain = search(alice, secret)
    assert "context" not in plain["results"][0]


def test_groupings_by_room_and_sender(server: RunningServer, alice: Client) -> None:
    secret = word()
    bob = new_user(server.base_url)
    one, two = create_room(alice, preset="public_chat"), create_room(alice)
    join(bob, one)
    a1 = send_message(alice, one, secret)
    b1 = send_message(bob, one, secret)
    a2 = send_message(alice, two, secret)
    section = search(alice, secret, order_by="recent",
                     groupings={"group_by": [{"key": "room_id"}, {"key": "sender"}]})
    rooms, senders = section["groups"]["room_id"], section["groups"]["sender"]
    assert rooms[one]["results"] == [b1, a1] and rooms[two]["results"] == [a2]
    assert senders[alice.user_id]["results"] == [a2, a1] and senders[bob.user_id]["results"] == [b1]
    assert {g["order"] for g in rooms.values()} == {1, 2}
    assert all("next_batch" not in g for g in rooms.values())
    paged = search(alice, secret, order_by="recent", filter={"limit": 1}, groupings={"group_by": [{"key": "room_id"}]})
    group_token = paged["groups"]["room_id"][two]["next_batch"]
    rest = search(alice, secret, order_by="recent", next_batch=group_token, filter={"limit": 5})
    # Paging a group stays in that group: room two's only event came first, nothing is left there.
    assert found(rest) == []
    one_token = search(alice, secret, order_by="recent", filter={"limit": 1, "rooms": [one]},
                       groupings={"group_by": [{"key": "room_id"}]})["groups"]["room_id"][one]["next_batch"]
    assert found(search(alice, secret, order_by="recent", next_batch=one_token)) == [a1]


def test_redacted_events_are_not_found(alice: Client) -> None:
    secret = word()
    room = create_room(alice)
    gone = send_message(alice, room, f"{secret} regret")
    kept = send_message(alice, room, f"{secret} fine")
    redact(alice, room, gone)
    section = search(alice, secret)
    assert found(section) == [kept] and section["count"] == 1


def test_include_state(alice: Client) -> None:
    secret = word()
    room = create_room(alice, name="Stateful")
    send_message(alice, room, secret)
    section = search(alice, secret, include_state=True)
    types = {e["type"] for e in section["state"][room]}
    assert {"m.room.create", "m.room.name", "m.room.member"} <= types


def test_found_after_restart(server: RunningServer, alice: Client) -> None:
    secret = word()
    room = create_room(alice)
    event = send_message(alice, room, secret)
    server.restart()
    assert found(search(alice, secret)) == [event]


def test_no_known_category(alice: Client) -> None:
    response = alice.post(f"{V3}/search", {"search_categories": {}})
    assert response.status == 200 and response.body == {"search_categories": {}}


@pytest.mark.parametrize("body,errcode", [
    ({}, "M_MISSING_PARAM"),
    ({"search_categories": []}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": []}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {}}}, "M_MISSING_PARAM"),
    ({"search_categories": {"room_events": {"search_term": 5}}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "order_by": "best"}}}, "M_INVALID_PARAM"),
    ({"search_categories": {"room_events": {"search_term": "x", "order_by": 1}}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "keys": "content.body"}}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "keys": ["content.url"]}}}, "M_INVALID_PARAM"),
    ({"search_categories": {"room_events": {"search_term": "x", "filter": []}}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "filter": {"limit": "ten"}}}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "filter": {"rooms": "!a:b"}}}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "filter": {"senders": [1]}}}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "event_context": {"before_limit": "5"}}}},
     "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "event_context": {"after_limit": -1}}}},
     "M_INVALID_PARAM"),
    ({"search_categories": {"room_events": {"search_term": "x", "event_context": {"include_profile": 1}}}},
     "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "include_state": "yes"}}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "groupings": {"group_by": {}}}}}, "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "groupings": {"group_by": [{"key": 1}]}}}},
     "M_BAD_JSON"),
    ({"search_categories": {"room_events": {"search_term": "x", "groupings": {"group_by": [{"key": "type"}]}}}},
     "M_INVALID_PARAM"),
    ([], "M_NOT_JSON"),
])
def test_bad_requests(alice: Client, body: Any, errcode: str) -> None:
    response = alice.post(f"{V3}/search", body)
    assert (response.status, response.errcode) == (400, errcode), response


@pytest.mark.parametrize("token", ["%%%", "bm90IGpzb24", "W10", "eyJzIjotMX0", "eyJvIjozfQ",
                                   "eyJzIjoxLCJnIjpbInR5cGUiLCJ4Il19"])
def test_bad_next_batch(alice: Client, token: str) -> None:
    body = {"search_categories": {"room_events": {"search_term": "x", "order_by": "recent"}}}
    response = alice.post(f"{V3}/search", body, params={"next_batch": token})
    assert (response.status, response.errcode) == (400, "M_INVALID_PARAM"), response


def test_not_json_and_no_token(server: RunningServer, alice: Client) -> None:
    response = alice.post(f"{V3}/search", raw=b"{bad")
    assert (response.status, response.errcode) == (400, "M_NOT_JSON")
    anonymous = Client(server.base_url).post(f"{V3}/search", {"search_categories": {}})
    assert (anonymous.status, anonymous.errcode) == (401, "M_MISSING_TOKEN")

