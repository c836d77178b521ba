"""Real E2EE between two client libraries through our server (issue 7's acceptance check).

Alice uses matrix-nio, Bob uses mautrix. They share a megolm-encrypted room,
send both ways and each decrypts the other; then Alice logs in on a new
device and the exchange still works. The server's database and the HTTP
responses must only ever carry ciphertext for the message bodies.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from tests.e2ee.real_clients import MautrixUser, NioUser
from tests.support.client import Client, q, register_user
from tests.support.e2ee import database_text
from tests.support.server import RunningServer

PASSWORD = "correct horse battery"


async def exchange(server: RunningServer, tmp_path: Path) -> list[str]:
    alice_http = register_user(server.base_url, password=PASSWORD)
    bob_http = register_user(server.base_url, password=PASSWORD)
    alice = NioUser(server.base_url, str(alice_http.user_id), PASSWORD, tmp_path / "nio-1")
    bob = MautrixUser(server.base_url, str(bob_http.user_id), PASSWORD)
    alice_again: NioUser | None = None
    secrets_sent: list[str] = []

    def secret(label: str) -> str:
        text = f"{label} {secrets.token_hex(8)}"
        secrets_sent.append(text)
        return text

    try:
        await alice.login("nio first device")
        await bob.login("mautrix device")
        room_id = await alice.create_encrypted_room([str(bob_http.user_id)])
        await bob.join(room_id)

        to_bob = secret("nio to mautrix")
        await alice.send(room_id, to_bob)
        await bob.wait_for(room_id, to_bob)

        to_alice = secret("mautrix to nio")
        await bob.send(room_id, to_alice)
        await alice.wait_for(room_id, to_alice)

        # Alice logs in on a new device; both directions still work with it.
        alice_again = NioUser(server.base_url, str(alice_http.user_id), PASSWORD, tmp_path / "nio-2")
        await alice_again.login("nio second device")
        await bob.wait_for_device(str(alice_http.user_id), alice_again.device_id)
        after_login = secret("mautrix to nio's new device")
        await bob.send(room_id, after_login)
        await alice_again.wait_for(room_id, after_login)
        await alice.wait_for(room_id, after_login)

        from_new_device = secret("nio's new device to mautrix")
        await alice_again.send(room_id, from_new_device)
        await bob.wait_for(room_id, from_new_device)

        # What the server hands out for the room is ciphertext only.
        reader = Client(server.base_url, access_token=alice_again.client.access_token)
        history = reader.get(f"/_matrix/client/v3/rooms/{q(room_id)}/messages",
                             params={"dir": "b", "limit": 100})
        assert history.status == 200, history
        encrypted = [e for e in history.body["chunk"] if e["type"] == "m.room.encrypted"]
        assert len(encrypted) >= 4
        raw_sync = reader.get("/_matrix/client/v3/sync", params={"timeout": 0})
        for text in secrets_sent:
            assert text not in repr(history.body) and text not in repr(raw_sync.body)
    finally:
        for user in (alice, alice_again, bob):
            if user is not None:
                await user.close()
    return secrets_sent


def test_nio_and_mautrix_exchange_encrypted_messages(server: RunningServer, tmp_path: Path) -> None:
    sent = asyncio.run(exchange(server, tmp_path))
    assert len(sent) == 4
    stored = database_text(server)
    assert "m.megolm.v1.aes-sha2" in stored  # the grep does see event content
    for text in sent:
        assert text not in stored
