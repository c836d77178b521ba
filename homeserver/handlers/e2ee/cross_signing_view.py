"""How keys look to one viewer: stored keys plus the signatures that viewer may see.

Signatures a user makes over their own keys (self-signing key over devices,
devices over the master key) are public. Signatures over someone else's keys
(the user-signing key over another user's master key) are shown only to the
user who made them, as the spec's /keys/query describes; and a user's
user-signing key is shown only to that user.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeserver.server import Server
from storage.stores.e2e_cross_signing import E2eCrossSigningStore, Signature

MASTER, SELF_SIGNING, USER_SIGNING = "master", "self_signing", "user_signing"
KEY_TYPES = (MASTER, SELF_SIGNING, USER_SIGNING)


def public_key_of(key: dict[str, Any]) -> str | None:
    """The single ed25519 public key of a stored cross-signing key."""
    for key_id, value in key.get("keys", {}).items():
        if key_id.startswith("ed25519:") and isinstance(value, str):
            return value
    return None


def visible_to(signature: Signature, viewer_id: str) -> bool:
    return signature.signer_user_id == signature.target_user_id or signature.signer_user_id == viewer_id


def add_signature(key: dict[str, Any], signature: Signature) -> None:
    signatures = key.setdefault("signatures", {})
    signatures.setdefault(signature.signer_user_id, {})[signature.signer_key_id] = signature.signature


class KeyViewer:
    def __init__(self, hs: Server) -> None:
        self.store = hs.get(E2eCrossSigningStore)

    async def decorate(self, viewer_id: str, device_keys: dict[str, dict[str, Any]],
                       user_ids: Iterable[str]) -> dict[str, Any]:
        """The /keys/query body (minus failures) for these users, as the viewer sees it."""
        users = list(user_ids)
        cross_signing = await self.store.get_cross_signing_keys(users)
        signatures = await self.store.get_signatures_on_users(users)
        # target (user, key id) -> the key object the signature belongs on
        targets: dict[tuple[str, str], dict[str, Any]] = {}
        for user_id, devices in device_keys.items():
            for device_id, keys in devices.items():
                targets[(user_id, device_id)] = keys
        response: dict[str, Any] = {"device_keys": device_keys, "master_keys": {},
                                    "self_signing_keys": {}, "user_signing_keys": {}}
        for user_id, keys in cross_signing.items():
            for key_type, key in keys.items():
                if key_type == USER_SIGNING and user_id != viewer_id:
                    continue
                response[f"{key_type}_keys"][user_id] = key
                public_key = public_key_of(key)
                if public_key is not None:
                    targets[(user_id, public_key)] = key
        for signature in signatures:
            target = targets.get((signature.target_user_id, signature.target_key_id))
            if target is not None and visible_to(signature, viewer_id):
                add_signature(target, signature)
        return response
