"""Our own signing keys as other servers see them: ``GET /_matrix/key/v2/server``.

``verify_keys`` lists every key in the key file (the first one signs); ``old_verify_keys``
comes from ``old_signing_keys`` in the config; ``valid_until_ts`` is now plus
``key_refresh_interval``.  The document is signed with every current key.
"""

from __future__ import annotations

import time
from typing import Any

import nacl.signing

from federation.keys.documents import ServerKey
from homeserver.events.signing import sign_json
from homeserver.events.unpadded_base64 import decode_base64, encode_base64
from homeserver.server import Server

NEVER = 2**62


def _unpadded(key: str) -> str:
    return encode_base64(decode_base64(key))


class LocalServerKeys:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.signing_keys = hs.signing_keys
        self.refresh_interval_ms = int(hs.config.key_refresh_interval)
        self.old_keys: dict[str, dict[str, Any]] = {
            key_id: {"key": _unpadded(old.key), "expired_ts": old.expired_ts}
            for key_id, old in hs.config.old_signing_keys.items()
            if key_id not in {key.key_id for key in hs.signing_keys}
        }

    def verify_keys(self) -> dict[str, str]:
        """key ID -> unpadded base64 public key, for every current key."""
        return {key.key_id: encode_base64(bytes(key.signing_key.verify_key)) for key in self.signing_keys}

    def key_document(self, now_ms: int | None = None) -> dict[str, Any]:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        document: dict[str, Any] = {
            "server_name": self.server_name,
            "valid_until_ts": now_ms + self.refresh_interval_ms,
            "verify_keys": {key_id: {"key": key} for key_id, key in self.verify_keys().items()},
            "old_verify_keys": dict(self.old_keys),
        }
        for key in self.signing_keys:
            document = sign_json(document, self.server_name, key.key_id, key.signing_key)
        return document

    def server_keys(self) -> list[ServerKey]:
        """Our keys as the key ring holds anyone's: current ones never expire, old ones at expired_ts."""
        keys = [ServerKey(self.server_name, key.key_id, key.signing_key.verify_key, NEVER)
                for key in self.signing_keys]
        for key_id, old in self.old_keys.items():
            keys.append(ServerKey(self.server_name, key_id, nacl.signing.VerifyKey(decode_base64(old["key"])),
                                  old["expired_ts"], old["expired_ts"]))
        return keys

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Add our signature (as a notary) to someone else's document."""
        key = self.signing_keys[0]
        return sign_json(obj, self.server_name, key.key_id, key.signing_key)
