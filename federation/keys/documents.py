"""Reading a server's key document (``/_matrix/key/v2/server``, or one item of a notary answer).

Pure: the document is checked for shape and for its owner's self-signature (with
the current keys it lists), and reduced to the keys it vouches for.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import nacl.signing

from homeserver.config.names import split_server_name
from homeserver.events.signing import SignatureError, verify_json_signature
from homeserver.events.unpadded_base64 import decode_base64, encode_base64

_ED25519_KEY_ID = re.compile(r"^ed25519:[A-Za-z0-9_]+$")
MAX_KEYS_PER_DOCUMENT = 50


class KeyDocumentError(ValueError):
    """The document is malformed, or its owner's signature does not verify."""


@attrs.frozen
class ServerKey:
    """One public key of a server, and until when it may verify signatures."""

    server_name: str
    key_id: str
    verify_key: nacl.signing.VerifyKey = attrs.field(eq=False, repr=False)
    valid_until_ts: int
    expired_ts: int | None = None

    @property
    def key_base64(self) -> str:
        return encode_base64(bytes(self.verify_key))


@attrs.frozen
class KeyDocument:
    server_name: str
    valid_until_ts: int
    keys: tuple[ServerKey, ...]  # current keys (valid until valid_until_ts), then old ones (until expired_ts)
    document: dict[str, Any] = attrs.field(eq=False, repr=False)  # as received, only the owner's signatures


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise KeyDocumentError(f"{name} must be a non-negative integer")
    return value


def decode_verify_key(key: Any, key_id: str) -> nacl.signing.VerifyKey:
    if not isinstance(key, str):
        raise KeyDocumentError(f"{key_id}: key must be a string")
    try:
        raw = decode_base64(key)
    except ValueError as exc:
        raise KeyDocumentError(f"{key_id}: key is not base64") from exc
    if len(raw) != 32:
        raise KeyDocumentError(f"{key_id}: an ed25519 key has 32 bytes")
    return nacl.signing.VerifyKey(raw)


def _key_entries(section: Any, name: str) -> dict[str, dict[str, Any]]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise KeyDocumentError(f"{name} must be an object")
    if len(section) > MAX_KEYS_PER_DOCUMENT:
        raise KeyDocumentError(f"{name} lists too many keys")
    entries = {}
    for key_id, entry in section.items():
        if not _ED25519_KEY_ID.match(key_id):
            continue  # other algorithms are not ours to understand
        if not isinstance(entry, dict):
            raise KeyDocumentError(f"{name}.{key_id} must be an object")
        entries[key_id] = entry
    return entries


def parse_key_document(document: Any, expected_server: str | None = None) -> KeyDocument:
    if not isinstance(document, dict):
        raise KeyDocumentError("a key document must be a JSON object")
    server_name = document.get("server_name")
    if not isinstance(server_name, str):
        raise KeyDocumentError("server_name must be a string")
    try:
        split_server_name(server_name)
    except ValueError as exc:
        raise KeyDocumentError(f"server_name {server_name!r} is not a server name") from exc
    if expected_server is not None and server_name != expected_server:
        raise KeyDocumentError(f"asked for {expected_server}'s keys, got {server_name}'s")
    valid_until_ts = _int(document.get("valid_until_ts"), "valid_until_ts")
    current = {
        key_id: decode_verify_key(entry.get("key"), key_id)
        for key_id, entry in _key_entries(document.get("verify_keys"), "verify_keys").items()
    }
    if not current:
        raise KeyDocumentError("verify_keys lists no ed25519 key")
    try:
        verify_json_signature(document, server_name, current)
    except SignatureError as exc:
        raise KeyDocumentError(f"not signed by its own keys: {exc}") from exc
    keys = [ServerKey(server_name, key_id, key, valid_until_ts) for key_id, key in current.items()]
    for key_id, entry in _key_entries(document.get("old_verify_keys"), "old_verify_keys").items():
        if key_id in current:
            continue
        expired_ts = _int(entry.get("expired_ts"), f"old_verify_keys.{key_id}.expired_ts")
        keys.append(ServerKey(server_name, key_id, decode_verify_key(entry.get("key"), key_id), expired_ts,
                              expired_ts))
    own_signatures = {server_name: dict(document["signatures"][server_name])}
    return KeyDocument(server_name, valid_until_ts, tuple(keys), {**document, "signatures": own_signatures})
