"""Real Matrix E2EE client libraries driven against our server: matrix-nio and mautrix.

Each wrapper logs in as a new device, keeps its own crypto store, and records
the plaintext of every m.room.message it could decrypt. Waiting loops are
bounded only so that a broken server fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from mautrix.client import Client as MautrixClient
from mautrix.client.state_store import MemoryStateStore
from mautrix.crypto import OlmMachine
from mautrix.crypto.store import MemoryCryptoStore
from mautrix.types import EventType, Membership, MessageEvent, RoomID, TrustState, UserID
from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginResponse,
    MegolmEvent,
    RoomMessageText,
    SyncResponse,
)

logger = logging.getLogger(__name__)

MEGOLM = "m.megolm.v1.aes-sha2"
WAIT_LIMIT_S = 90.0


class CryptoStateStore(MemoryStateStore):
    """mautrix's in-memory state store plus the one query its OlmMachine also needs."""

    async def find_shared_rooms(self, user_id: UserID) -> list[RoomID]:
        return [room_id for room_id, members in self.members.items()
                if (member := members.get(user_id)) is not None and member.membership == Membership.JOIN]


class NioUser:
    """matrix-nio (vodozemac-backed in current releases), synced step by step."""

    def __init__(self, base_url: str, user_id: str, password: str, store_dir: Path) -> None:
        store_dir.mkdir(parents=True, exist_ok=True)
        config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
        self.client = AsyncClient(base_url, user_id, store_path=str(store_dir), config=config)
        self.password = password
        self.received: list[tuple[str, str]] = []
        self.undecryptable: list[MegolmEvent] = []

    @property
    def device_id(self) -> str:
        return str(self.client.device_id)

    async def login(self, device_name: str) -> None:
        response = await self.client.login(self.password, device_name=device_name)
        assert isinstance(response, LoginResponse), response
        await self.step()

    async def step(self, timeout_ms: int = 0) -> None:
        """One /sync, then what nio's sync_forever does after each: send, upload, query, claim."""
        response = await self.client.sync(timeout=timeout_ms)
        assert isinstance(response, SyncResponse), response
        for room_id, info in response.rooms.join.items():
            for event in info.timeline.events:
                if isinstance(event, RoomMessageText):
                    self.received.append((room_id, event.body))
                elif isinstance(event, MegolmEvent):
                    self.undecryptable.append(event)
        await self.client.send_to_device_messages()
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        if self.client.should_query_keys:
            await self.client.keys_query()
        if self.client.should_claim_keys:
            await self.client.keys_claim(self.client.get_users_for_key_claiming())

    async def create_encrypted_room(self, invite: list[str]) -> str:
        response = await self.client.room_create(
            invite=invite,
            initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}],
        )
        room_id = getattr(response, "room_id", None)
        assert room_id, response
        await self.step()
        return room_id

    async def join(self, room_id: str) -> None:
        response = await self.client.join(room_id)
        assert getattr(response, "room_id", None) == room_id, response
        await self.step()

    async def send(self, room_id: str, text: str) -> None:
        await self.step()
        response = await self.client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text},
                                               ignore_unverified_devices=True)
        assert getattr(response, "event_id", None), response

    async def wait_for(self, room_id: str, text: str) -> None:
        deadline = time.monotonic() + WAIT_LIMIT_S
        while (room_id, text) not in self.received:
            assert time.monotonic() < deadline, f"nio never decrypted {text!r}; undecryptable: {self.undecryptable}"
            await self.step(timeout_ms=1000)

    async def close(self) -> None:
        await self.client.close()


class MautrixUser:
    """mautrix-python with its OlmMachine (python-olm), syncing in the background."""

    def __init__(self, base_url: str, user_id: str, password: str) -> None:
        self.state_store = CryptoStateStore()
        self.client = MautrixClient(mxid=UserID(user_id), base_url=base_url, state_store=self.state_store)
        self.user_id = user_id
        self.password = password
        self.received: list[tuple[str, str]] = []
        self.sync_task: asyncio.Future[Any] | None = None

    async def login(self, device_name: str) -> None:
        await self.client.login(identifier=UserID(self.user_id), password=self.password, device_name=device_name)
        crypto_store = MemoryCryptoStore(self.user_id, "test pickle key")
        await crypto_store.put_device_id(self.client.device_id)
        machine = OlmMachine(self.client, crypto_store, self.state_store)
        machine.share_keys_min_trust = TrustState.UNVERIFIED
        machine.send_keys_min_trust = TrustState.UNVERIFIED
        await machine.load()
        self.client.crypto = machine
        self.client.add_event_handler(EventType.ROOM_MESSAGE, self._on_message)
        await machine.share_keys()
        self.sync_task = self.client.start(None)

    async def _on_message(self, event: MessageEvent) -> None:
        body = getattr(event.content, "body", None)
        if isinstance(body, str):
            self.received.append((str(event.room_id), body))

    async def join(self, room_id: str) -> None:
        await self.client.join_room(RoomID(room_id))
        await self.wait_until(lambda: self.state_store.encryption.get(RoomID(room_id)) is not None,
                              "the room's encryption state")

    async def send(self, room_id: str, text: str) -> None:
        await self.client.send_text(RoomID(room_id), text)

    async def wait_for(self, room_id: str, text: str) -> None:
        await self.wait_until(lambda: (room_id, text) in self.received, f"decrypting {text!r}")

    async def wait_for_device(self, user_id: str, device_id: str) -> None:
        """Until this client learnt of the device (device_lists.changed in sync, then /keys/query)."""
        store = self.client.crypto.crypto_store
        deadline = time.monotonic() + WAIT_LIMIT_S
        while device_id not in (await store.get_devices(UserID(user_id)) or {}):
            assert time.monotonic() < deadline, f"mautrix never learnt of {user_id}'s device {device_id}"
            await asyncio.sleep(0.2)

    @staticmethod
    async def wait_until(condition: Any, what: str) -> None:
        deadline = time.monotonic() + WAIT_LIMIT_S
        while not condition():
            assert time.monotonic() < deadline, f"mautrix: timed out waiting for {what}"
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        self.client.stop()
        if self.sync_task is not None:
            try:
                await asyncio.wait_for(self.sync_task, 10)
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down, any end will do
                pass
        await self.client.api.session.close()
