"""Synapse's rate limits, black-box: past each burst the server answers 429
M_LIMIT_EXCEEDED with retry_after_ms (or, where Synapse does, drops silently).

One server per engine with every limit small and slow to refill; each test uses
fresh users and rooms so the buckets of one test never touch another's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.accounts import admin_register, custom_server
from tests.support.client import Client, Response, q, random_localpart
from tests.support.databases import ENGINES
from tests.support.rooms import V3, create_room, join, new_user, send_message
from tests.support.server import OFF, RunningServer
from tests.support.sync import sync


def slow(burst: int) -> dict[str, float]:
    """A bucket that does not refill within a test."""
    return {"per_second": 0.0001, "burst_count": burst}


LIMITS: dict[str, Any] = {
    "rc_joins": {"local": slow(2), "remote": OFF},
    "rc_joins_per_room": slow(3),
    "rc_invites": {"per_room": slow(2), "per_user": slow(2), "per_issuer": slow(3)},
    "rc_room_creation": slow(2),
    "rc_presence": {"per_user": slow(1)},
    "rc_key_requests": slow(2),
    "rc_3pid_validation": slow(2),
    "rc_admin_redaction": slow(1),
    "rc_profile": slow(2),
    "rc_user_directory": slow(2),
}


@pytest.fixture(scope="module", params=ENGINES)
def limited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp(f"hs-limits-{request.param}")
    with custom_server(directory, request.param, **LIMITS) as running:
        yield running


def assert_limited(response: Response) -> None:
    assert (response.status, response.errcode) == (429, "M_LIMIT_EXCEEDED"), response
    assert isinstance(response.body["retry_after_ms"], int) and response.body["retry_after_ms"] > 0


def invite(client: Client, room_id: str, user_id: str) -> Response:
    return client.post(f"{V3}/rooms/{q(room_id)}/invite", {"user_id": user_id})


def test_room_creation_per_user(limited: RunningServer) -> None:
    alice = new_user(limited.base_url)
    assert [alice.post(f"{V3}/createRoom", {}).status for _ in range(2)] == [200, 200]
    assert_limited(alice.post(f"{V3}/createRoom", {}))
    # Another user has their own bucket.
    assert new_user(limited.base_url).post(f"{V3}/createRoom", {}).status == 200


def test_local_joins_per_user(limited: RunningServer) -> None:
    owners = [new_user(limited.base_url) for _ in range(3)]
    rooms = [create_room(owner, preset="public_chat") for owner in owners]
    joiner = new_user(limited.base_url)
    join(joiner, rooms[0])
    join(joiner, rooms[1])
    assert_limited(joiner.post(f"{V3}/join/{q(rooms[2])}", {}))
    assert_limited(joiner.post(f"{V3}/rooms/{q(rooms[2])}/join", {}))
    # Joining a room you are already in changes nothing, so it is not counted.
    assert joiner.post(f"{V3}/join/{q(rooms[0])}", {}).status == 200


def test_joins_per_room(limited: RunningServer) -> None:
    owner = new_user(limited.base_url)
    room_id = create_room(owner, preset="public_chat")
    for _ in range(3):
        join(new_user(limited.base_url), room_id)
    assert_limited(new_user(limited.base_url).post(f"{V3}/join/{q(room_id)}", {}))
    # Other rooms are unaffected.
    join(new_user(limited.base_url), create_room(new_user(limited.base_url), preset="public_chat"))


def test_invites_per_room(limited: RunningServer) -> None:
    alice = new_user(limited.base_url)
    room_id = create_room(alice)
    invitees = [new_user(limited.base_url) for _ in range(3)]
    assert [invite(alice, room_id, u.user_id).status for u in invitees[:2]] == [200, 200]
    assert_limited(invite(alice, room_id, invitees[2].user_id))


def test_invites_per_issuer(limited: RunningServer) -> None:
    alice = new_user(limited.base_url)
    first, second = create_room(alice), create_room(alice)
    invitees = [new_user(limited.base_url) for _ in range(4)]
    assert invite(alice, first, invitees[0].user_id).status == 200
    assert invite(alice, first, invitees[1].user_id).status == 200
    assert invite(alice, second, invitees[2].user_id).status == 200
    # The second room and the fourth invitee still have room; alice does not.
    assert_limited(invite(alice, second, invitees[3].user_id))


def test_invites_per_invitee(limited: RunningServer) -> None:
    target = new_user(limited.base_url)
    inviters = [new_user(limited.base_url) for _ in range(3)]
    statuses = [invite(inviter, create_room(inviter), target.user_id) for inviter in inviters]
    assert [r.status for r in statuses[:2]] == [200, 200]
    assert_limited(statuses[2])


def test_create_room_with_more_invites_than_a_room_may_send_at_once(limited: RunningServer) -> None:
    alice = new_user(limited.base_url)
    invitees = [new_user(limited.base_url).user_id for _ in range(3)]
    response = alice.post(f"{V3}/createRoom", {"invite": invitees})
    assert (response.status, response.errcode) == (400, "M_UNKNOWN"), response
    assert alice.post(f"{V3}/createRoom", {"invite": invitees[:2]}).status == 200


def test_presence_changes(limited: RunningServer) -> None:
    alice = new_user(limited.base_url)
    path = f"{V3}/presence/{q(alice.user_id)}/status"
    assert alice.put(path, {"presence": "online"}).status == 200
    assert_limited(alice.put(path, {"presence": "unavailable"}))
    # Bad input is still a 400, not a 429, and reading is never limited.
    assert alice.put(path, {"presence": "sleeping"}).status == 400
    assert alice.get(path).status == 200


def test_key_requests_to_other_users_are_dropped_past_the_limit(limited: RunningServer) -> None:
    sender = new_user(limited.base_url)
    recipients = [new_user(limited.base_url) for _ in range(3)]
    for recipient in recipients:
        sync(recipient)
    request = {"action": "request", "requesting_device_id": sender.device_id, "request_id": "r1"}
    messages = {r.user_id: {r.device_id: request} for r in recipients}
    response = sender.put(f"{V3}/sendToDevice/m.room_key_request/kr1", {"messages": messages})
    assert response.status == 200, response  # Synapse drops, it does not refuse

    def received(client: Client) -> list[str]:
        return [e["type"] for e in sync(client).get("to_device", {}).get("events", [])]

    assert [received(r) for r in recipients] == [["m.room_key_request"], ["m.room_key_request"], []]
    # Other to-device types are not counted.
    other = {recipients[2].user_id: {recipients[2].device_id: {"x": 1}}}
    assert sender.put(f"{V3}/sendToDevice/m.room.encrypted/kr2", {"messages": other}).status == 200
    assert received(recipients[2]) == ["m.room.encrypted"]


def test_threepid_token_requests(limited: RunningServer) -> None:
    client = Client(limited.base_url)
    path = f"{V3}/register/email/requestToken"
    bodies = [{"client_secret": "s", "email": f"{random_localpart()}@example.com", "send_attempt": 1}
              for _ in range(3)]
    responses = [client.post(path, body) for body in bodies]
    assert [r.errcode for r in responses[:2]] == ["M_THREEPID_DENIED", "M_THREEPID_DENIED"]
    assert_limited(responses[2])
    # The same client address is limited on the other requestToken endpoints for email, not for msisdn.
    assert_limited(client.post(f"{V3}/account/password/email/requestToken", bodies[0]))
    msisdn = client.post(f"{V3}/register/msisdn/requestToken",
                         {"client_secret": "s", "country": "GB", "phone_number": "7700900000", "send_attempt": 1})
    assert msisdn.errcode == "M_THREEPID_DENIED"


def test_redacting_other_peoples_events_uses_rc_admin_redaction(limited: RunningServer) -> None:
    moderator = new_user(limited.base_url)
    room_id = create_room(moderator, preset="public_chat")
    spammer = new_user(limited.base_url)
    join(spammer, room_id)
    spam = [send_message(spammer, room_id, f"spam {i}") for i in range(2)]
    own = [send_message(moderator, room_id, f"mine {i}") for i in range(2)]

    def redact(event_id: str, txn: str) -> Response:
        return moderator.put(f"{V3}/rooms/{q(room_id)}/redact/{q(event_id)}/{txn}", {"reason": "spam"})

    assert redact(spam[0], "r1").status == 200
    assert_limited(redact(spam[1], "r2"))
    # Redacting your own events is an ordinary send (rc_message, off here).
    assert [redact(own[0], "r3").status, redact(own[1], "r4").status] == [200, 200]


def test_profile_changes(limited: RunningServer) -> None:
    alice = new_user(limited.base_url)
    path = f"{V3}/profile/{q(alice.user_id)}/displayname"
    assert [alice.put(path, {"displayname": n}).status for n in ("A", "B")] == [200, 200]
    assert_limited(alice.put(path, {"displayname": "C"}))
    assert_limited(alice.delete(path))
    assert alice.get(path).body == {"displayname": "B"}


def test_user_directory_searches(limited: RunningServer) -> None:
    alice = new_user(limited.base_url)
    path = f"{V3}/user_directory/search"
    assert [alice.post(path, {"search_term": "a"}).status for _ in range(2)] == [200, 200]
    assert_limited(alice.post(path, {"search_term": "a"}))


def test_an_admin_is_limited_too(limited: RunningServer) -> None:
    """Synapse exempts no server admin from these limits; only the per-user override (admin API) would."""
    localpart = random_localpart("admin")
    registered = admin_register(limited, localpart, admin=True)
    assert registered.status == 200, registered
    admin = Client(limited.base_url, registered.body["access_token"], registered.body["user_id"])
    assert [admin.post(f"{V3}/createRoom", {}).status for _ in range(2)] == [200, 200]
    assert_limited(admin.post(f"{V3}/createRoom", {}))
