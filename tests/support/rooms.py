"""Helpers for room tests: create rooms, send messages, read state over HTTP."""

from __future__ import annotations

from typing import Any

from tests.support.client import Client, q

V3 = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"

_txn_counter = [0]


def next_txn() -> str:
    _txn_counter[0] += 1
    return f"txn{_txn_counter[0]}"


def create_room(client: Client, **body: Any) -> str:
    response = client.post(f"{V3}/createRoom", body)
    assert response.status == 200, response
    return response.body["room_id"]


def send_message(client: Client, room_id: str, body: str = "hello", txn_id: str | None = None,
                 event_type: str = "m.room.message", **extra: Any) -> str:
    content = {"msgtype": "m.text", "body": body, **extra}
    response = client.put(f"{V3}/rooms/{q(room_id)}/send/{event_type}/{txn_id or next_txn()}", content)
    assert response.status == 200, response
    return response.body["event_id"]


def join(client: Client, room: str, expect: int = 200) -> Any:
    response = client.post(f"{V3}/join/{q(room)}", {})
    assert response.status == expect, response
    return response


def invite(client: Client, room_id: str, user_id: str, expect: int = 200) -> Any:
    response = client.post(f"{V3}/rooms/{q(room_id)}/invite", {"user_id": user_id})
    assert response.status == expect, response
    return response


def leave(client: Client, room_id: str, expect: int = 200) -> Any:
    response = client.post(f"{V3}/rooms/{q(room_id)}/leave", {})
    assert response.status == expect, response
    return response


def get_state(client: Client, room_id: str, event_type: str, state_key: str = "") -> Any:
    return client.get(f"{V3}/rooms/{q(room_id)}/state/{q(event_type)}/{q(state_key)}")


def put_state(client: Client, room_id: str, event_type: str, content: dict[str, Any],
              state_key: str = "") -> Any:
    return client.put(f"{V3}/rooms/{q(room_id)}/state/{q(event_type)}/{q(state_key)}", content)


def messages(client: Client, room_id: str, **params: Any) -> Any:
    response = client.get(f"{V3}/rooms/{q(room_id)}/messages", params=params)
    assert response.status == 200, response
    return response.body


def joined_members(client: Client, room_id: str) -> set[str]:
    response = client.get(f"{V3}/rooms/{q(room_id)}/joined_members")
    assert response.status == 200, response
    return set(response.body["joined"])


def new_user(base_url: str, localpart: str | None = None) -> Client:
    """Register through /register without a password: no bcrypt, so hundreds are quick.

    Room tests only need access tokens; password login is the accounts area's concern.
    """
    client = Client(base_url)
    body: dict[str, Any] = {"auth": {"type": "m.login.dummy"}}
    if localpart is not None:
        body["username"] = localpart
    response = client.post(f"{V3}/register", body)
    assert response.status == 200, response
    client.access_token = response.body["access_token"]
    client.user_id = response.body["user_id"]
    client.device_id = response.body["device_id"]
    return client
