"""The encrypted conversation between real clients on two servers, shared by the
Vignette-Vignette and Vignette-Synapse tests (issue 15)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any, Protocol

from nio import RoomPreset

from tests.e2ee.real_clients import MEGOLM, WAIT_LIMIT_S, MautrixUser, NioUser
from tests.support.client import Client, q, register_user

PASSWORD = "correct horse battery"


class Homeserver(Protocol):
    @property
    def base_url(self) -> str: ...

    server_name: str


async def nio_wait_for_device(user: NioUser, user_id: str, device_id: str) -> None:
    """Until nio learnt of the device (device_lists.changed in its sync, then /keys/query)."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    while device_id not in {d.id for d in user.client.device_store.active_user_devices(user_id)}:
        assert time.monotonic() < deadline, f"nio never learnt of {user_id}'s device {device_id}"
        await user.step(timeout_ms=1000)


async def conversation(home: Homeserver, away: Homeserver, tmp_path: Path) -> list[str]:
    """Alice (nio) on ``home`` owns an encrypted room that Bob (mautrix) on ``away`` joins; then
    each logs in a second device the other's client must find. Returns the plaintexts sent."""
    alice_http = register_user(home.base_url, password=PASSWORD)
    bob_http = register_user(away.base_url, password=PASSWORD)
    alice_id, bob_id = str(alice_http.user_id), str(bob_http.user_id)
    alice = NioUser(home.base_url, alice_id, PASSWORD, tmp_path / "nio-alice")
    bob = MautrixUser(away.base_url, bob_id, PASSWORD)
    extra: list[Any] = []
    sent: list[str] = []

    def secret(label: str) -> str:
        text = f"{label} {secrets.token_hex(8)}"
        sent.append(text)
        return text

    try:
        await alice.login("nio on A")
        await bob.login("mautrix on B")
        created = await alice.client.room_create(
            preset=RoomPreset.public_chat,
            initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}])
        room_id = getattr(created, "room_id", None)
        assert room_id, created
        await bob.client.join_room(room_id, servers=[home.server_name])
        await bob.wait_until(lambda: bob.state_store.encryption.get(room_id) is not None,
                             "the room's encryption state")
        await alice.step()

        to_bob = secret("nio on A to mautrix on B")
        await alice.send(room_id, to_bob)
        await bob.wait_for(room_id, to_bob)
        to_alice = secret("mautrix on B to nio on A")
        await bob.send(room_id, to_alice)
        await alice.wait_for(room_id, to_alice)

        # Bob logs in a new device on B: Alice's client on A hears of it and encrypts to it.
        bob_again = NioUser(away.base_url, bob_id, PASSWORD, tmp_path / "nio-bob-2")
        extra.append(bob_again)
        await bob_again.login("nio, Bob's second device")
        await nio_wait_for_device(alice, bob_id, bob_again.device_id)
        to_new_bob = secret("nio on A to Bob's new device")
        await alice.send(room_id, to_new_bob)
        await bob_again.wait_for(room_id, to_new_bob)
        await bob.wait_for(room_id, to_new_bob)

        # And the other way: Alice's new device on A, seen by mautrix on B.
        alice_again = NioUser(home.base_url, alice_id, PASSWORD, tmp_path / "nio-alice-2")
        extra.append(alice_again)
        await alice_again.login("nio, Alice's second device")
        await bob.wait_for_device(alice_id, alice_again.device_id)
        to_new_alice = secret("mautrix on B to Alice's new device")
        await bob.send(room_id, to_new_alice)
        await alice_again.wait_for(room_id, to_new_alice)
        from_new_alice = secret("Alice's new device to B")
        await alice_again.send(room_id, from_new_alice)
        await bob.wait_for(room_id, from_new_alice)
        await bob_again.wait_for(room_id, from_new_alice)

        # What either server hands out is ciphertext only.
        for server, token in ((home, alice_again.client.access_token), (away, bob_again.client.access_token)):
            reader = Client(server.base_url, access_token=token)
            history = reader.get(f"/_matrix/client/v3/rooms/{q(room_id)}/messages", params={"dir": "b", "limit": 100})
            assert history.status == 200, history
            assert len([e for e in history.body["chunk"] if e["type"] == "m.room.encrypted"]) >= 5
            raw_sync = reader.get("/_matrix/client/v3/sync", params={"timeout": 0})
            for text in sent:
                assert text not in repr(history.body) and text not in repr(raw_sync.body)
    finally:
        for user in (alice, bob, *extra):
            await user.close()
    return sent


