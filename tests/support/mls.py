"""Real mls-rs clients (agentvault-mls-rs-uniffi) driving the MLS delivery service over HTTP."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import mls_rs_uniffi as mls

from tests.support.client import Client, q
from tests.support.sync import sync

MLS_PREFIX = "/_matrix/client/unstable/org.vignette.mls"
KP_ALGORITHM = "org.vignette.mls.key_package"
ENCRYPTION = {"type": "m.room.encryption", "state_key": "",
              "content": {"algorithm": "org.vignette.mls.v1", "cipher_suite": 1}}


def new_client(identity: str) -> mls.Client:
    keypair = mls.generate_signature_keypair(mls.CipherSuite.CURVE25519_AES128)
    return mls.Client(identity.encode(), keypair, mls.client_config_default())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def create_mls_room(client: Client) -> str:
    response = client.post("/_matrix/client/v3/createRoom",
                           {"preset": "private_chat", "initial_state": [ENCRYPTION]})
    assert response.status == 200, response
    return response.body["room_id"]


def login(base_url: str, user: Client) -> MlsDevice:
    """A further device of an existing user (password login)."""
    client = Client(base_url)
    response = client.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user.user_id},
        "password": "correct horse battery"})
    assert response.status == 200, response
    client.access_token, client.user_id = response.body["access_token"], response.body["user_id"]
    client.device_id = response.body["device_id"]
    return MlsDevice(client)


def mls_room_with(owner: MlsDevice, *others: MlsDevice) -> str:
    """An MLS room the owner created, every other user joined, and a group holding every device."""
    room_id = create_mls_room(owner.http)
    for user_id in dict.fromkeys(o.user_id for o in others if o.user_id != owner.user_id):
        response = owner.http.post(f"/_matrix/client/v3/rooms/{q(room_id)}/invite", {"user_id": user_id})
        assert response.status == 200, response
        joiner = next(o for o in others if o.user_id == user_id)
        assert joiner.http.post(f"/_matrix/client/v3/join/{q(room_id)}", {}).status == 200
    for device in (owner, *others):
        device.sync()
    for other in others:
        other.upload_key_packages(1)
    wanted: dict[str, list[str]] = {}
    for other in others:
        wanted.setdefault(other.user_id, []).append(other.device_id)
    owner.create_group(room_id)
    response = owner.commit_and_apply(owner.group.add_members(owner.claim(wanted)))
    assert response.status == 200, response
    for other in others:
        other.join_from_welcome(other.sync())
    return room_id


class MlsDevice:
    """One Matrix device with its own mls-rs client, group state and sync position."""

    def __init__(self, http: Client) -> None:
        self.http = http
        self.user_id = str(http.user_id)
        self.device_id = str(http.device_id)
        self.mls = new_client(f"{self.user_id}|{self.device_id}")
        self.group: Any = None
        self.since: str | None = None

    # keys
    def upload_key_packages(self, count: int, fallback: bool = True) -> dict[str, int]:
        body: dict[str, Any] = {"one_time_keys": {
            f"{KP_ALGORITHM}:{secrets.token_hex(4)}": b64(self.mls.generate_key_package_message().to_bytes())
            for _ in range(count)}}
        if fallback:
            body["fallback_keys"] = {f"{KP_ALGORITHM}:last": b64(self.mls.generate_key_package_message().to_bytes())}
        response = self.http.post("/_matrix/client/v3/keys/upload", body)
        assert response.status == 200, response
        return response.body["one_time_key_counts"]

    def claim(self, devices: dict[str, list[str]]) -> list[mls.Message]:
        wanted = {user: {device: KP_ALGORITHM for device in ids} for user, ids in devices.items()}
        response = self.http.post("/_matrix/client/v3/keys/claim", {"one_time_keys": wanted})
        assert response.status == 200, response
        return [mls.Message.from_bytes(unb64(value)) for by_device in response.body["one_time_keys"].values()
                for keys in by_device.values() for value in keys.values()]

    # commits
    def post_commit(self, output: Any, with_welcome: bool = True) -> Any:
        body: dict[str, Any] = {"commit": b64(output.commit_message.to_bytes())}
        if with_welcome and output.welcome_message is not None:
            body["welcome"] = b64(output.welcome_message.to_bytes())
        return self.http.post(f"{MLS_PREFIX}/rooms/{q(self.room_id)}/commit", body)

    def create_group(self, room_id: str) -> None:
        self.room_id = room_id
        self.group = self.mls.create_group(room_id.encode())

    def commit_and_apply(self, output: Any, with_welcome: bool = True) -> Any:
        """POST the commit; on 200 apply it locally (mls-rs merges its own pending commit)."""
        response = self.post_commit(output, with_welcome)
        if response.status == 200:
            self.group.process_incoming_message(output.commit_message)
        return response

    def discard_pending(self) -> None:
        """Forget a commit the server refused (mls-rs keeps one pending commit per group)."""
        self.group = self.mls.load_group(self.room_id.encode())

    def checkpoint(self) -> None:
        self.group.write_to_storage()

    # sync
    def sync(self, timeout: int = 0) -> dict[str, Any]:
        body = sync(self.http, self.since, timeout=timeout)
        self.since = body["next_batch"]
        return body

    def join_from_welcome(self, body: dict[str, Any]) -> int:
        notes = [e for e in body.get("to_device", {}).get("events", []) if e["type"] == "org.vignette.mls.welcome"]
        assert notes, body.get("to_device")
        note = notes[-1]["content"]
        response = self.http.get(f"{MLS_PREFIX}/rooms/{q(note['room_id'])}/welcome/{note['epoch']}")
        assert response.status == 200, response
        self.room_id = note["room_id"]
        self.group = self.mls.join_group(None, mls.Message.from_bytes(unb64(response.body["welcome"]))).group
        return int(note["epoch"])

    def apply_commits(self, body: dict[str, Any]) -> list[int]:
        """Process the other members' commits that sync delivered; returns their epochs."""
        room = body.get("org.vignette.mls", {}).get("rooms", {}).get(self.room_id, {})
        applied = []
        for entry in room.get("commits", []):
            if self.group is None:
                continue
            framed_epoch = entry["epoch"]
            if framed_epoch < self.group_epoch():
                continue  # our own, or from before we joined
            self.group.process_incoming_message(mls.Message.from_bytes(unb64(entry["commit"])))
            applied.append(framed_epoch)
        return applied

    def group_epoch(self) -> int:
        # The epoch is in every message we would encrypt; read it from a throwaway export.
        from homeserver.mls import wire
        return wire.parse_framed(self.group.encrypt_application_message(b"").to_bytes()).epoch

    # messages
    def send(self, plaintext: bytes, expect: int = 200) -> Any:
        ciphertext = self.group.encrypt_application_message(plaintext).to_bytes()
        txn = secrets.token_hex(8)
        response = self.http.put(f"/_matrix/client/v3/rooms/{q(self.room_id)}/send/org.vignette.mls.message/{txn}",
                                 {"message": b64(ciphertext)})
        assert response.status == expect, response
        return response

    def received(self, body: dict[str, Any]) -> list[bytes]:
        timeline = body.get("rooms", {}).get("join", {}).get(self.room_id, {}).get("timeline", {}).get("events", [])
        out = []
        for event in timeline:
            if event["type"] != "org.vignette.mls.message":
                continue
            try:
                result = self.group.process_incoming_message(mls.Message.from_bytes(unb64(event["content"]["message"])))
            except Exception:  # our own message, which mls-rs cannot decrypt
                continue
            if result.is_application_message():
                out.append(result.data)
        return out
