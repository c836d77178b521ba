"""Accounts survive a restart: users, passwords, tokens, devices, profile, account data."""

from __future__ import annotations

from tests.support.accounts import V3, localpart_of, logged_in
from tests.support.client import q, register_user
from tests.support.server import RunningServer


def test_data_survives_a_restart(server: RunningServer) -> None:
    alice = register_user(server.base_url, device_id="KEEPME")
    alice.put(f"{V3}/profile/{q(alice.user_id)}/displayname", {"displayname": "Persistent Alice"})
    alice.put(f"{V3}/user/{q(alice.user_id)}/account_data/org.example.kept", {"kept": True})
    server.restart()
    assert alice.get(f"{V3}/account/whoami").body["device_id"] == "KEEPME"
    again = logged_in(server.base_url, localpart_of(alice.user_id))
    assert {d["device_id"] for d in again.get(f"{V3}/devices").body["devices"]} == {"KEEPME", again.device_id}
    assert again.get(f"{V3}/profile/{q(alice.user_id)}/displayname").body == {"displayname": "Persistent Alice"}
    assert again.get(f"{V3}/user/{q(alice.user_id)}/account_data/org.example.kept").body == {"kept": True}
    # Stream ids continue after the restart instead of starting over.
    assert again.put(f"{V3}/user/{q(alice.user_id)}/account_data/org.example.kept", {"kept": 2}).status == 200
    assert again.get(f"{V3}/user/{q(alice.user_id)}/account_data/org.example.kept").body == {"kept": 2}
