"""Cross-signing: /keys/device_signing/upload and /keys/signatures/upload.

A user's master key signs their self-signing and user-signing keys; the
self-signing key signs their devices, the user-signing key other users' master
keys. Every signature is verified before it is stored, and replacing existing
cross-signing keys needs the account password (user-interactive auth), except
for the very first upload, as Synapse allows.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, invalid_param, missing_param, too_large
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.accounts.uia import PasswordUia
from homeserver.handlers.e2ee.cross_signing_view import (
    KEY_TYPES,
    MASTER,
    USER_SIGNING,
    public_key_of,
)
from homeserver.handlers.e2ee.device_lists import DeviceListsHandler
from homeserver.handlers.e2ee.e2e_json import (
    check_signature_shapes,
    has_valid_signature,
    invalid_signature,
    require_object,
    require_user_id,
    signable_part,
    single_ed25519_key,
)
from homeserver.server import Server
from storage.stores.e2e_cross_signing import E2eCrossSigningStore, Signature
from storage.stores.e2e_device_keys import E2eDeviceKeysStore

MAX_SIGNATURES_PER_UPLOAD = 1000


def _failure(errcode: str, message: str) -> dict[str, str]:
    return {"errcode": errcode, "error": message}


class CrossSigningHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(E2eCrossSigningStore)
        self.device_keys = hs.get(E2eDeviceKeysStore)
        self.device_lists = hs.get(DeviceListsHandler)
        self.password_uia = hs.get(PasswordUia)

    # -- /keys/device_signing/upload ------------------------------------------------------

    async def upload_signing_keys(self, user_id: str, body: dict[str, Any]) -> None:
        uploaded: dict[str, dict[str, Any]] = {}
        for key_type in KEY_TYPES:
            key = body.get(f"{key_type}_key")
            if key is not None:
                uploaded[key_type] = self._check_key_shape(user_id, key_type, key)
        if not uploaded:
            return
        existing = (await self.store.get_cross_signing_keys([user_id])).get(user_id, {})
        if all(key_type in existing and signable_part(existing[key_type]) == signable_part(key)
               for key_type, key in uploaded.items()):
            return  # a retry of what we already have
        if MASTER in existing:
            await self.password_uia.require_password(body, user_id, "device_signing_upload")
        master = uploaded.get(MASTER) or existing.get(MASTER)
        if master is None:
            raise missing_param("master_key")
        master_key_id, master_public = single_ed25519_key(master, "master_key")
        for key_type, key in uploaded.items():
            if key_type != MASTER and not has_valid_signature(key, user_id, master_key_id, master_public):
                raise invalid_signature(f"{key_type}_key must be signed by the master key")
        replaced = [public_key_of(existing[t]) for t in uploaded if t in existing]
        new_public = {t: single_ed25519_key(k, f"{t}_key")[1] for t, k in uploaded.items()}
        await self.store.set_cross_signing_keys(
            user_id,
            {t: (new_public[t], {k: v for k, v in key.items() if k != "unsigned"}) for t, key in uploaded.items()},
            [p for p in replaced if p is not None and p not in new_public.values()],
            now_ms(self.hs),
        )
        await self.device_lists.changed(user_id)

    def _check_key_shape(self, user_id: str, key_type: str, key: Any) -> dict[str, Any]:
        what = f"{key_type}_key"
        key = require_object(key, what)
        if key.get("user_id") != user_id:
            raise invalid_param(f"{what}.user_id must be the uploading user")
        usage = key.get("usage")
        if not isinstance(usage, list) or key_type not in usage:
            raise invalid_param(f"{what}.usage must include {key_type!r}")
        single_ed25519_key(key, what)
        if "signatures" in key:
            check_signature_shapes(key, what)
        return key

    # -- /keys/signatures/upload ----------------------------------------------------------

    async def upload_signatures(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        total = sum(len(v) for v in body.values() if isinstance(v, dict))
        if total > MAX_SIGNATURES_PER_UPLOAD:
            raise too_large(f"At most {MAX_SIGNATURES_PER_UPLOAD} signed keys per upload")
        mine = (await self.store.get_cross_signing_keys([user_id])).get(user_id, {})
        failures: dict[str, dict[str, Any]] = {}
        accepted: list[Signature] = []
        for target_user_id, signed_keys in body.items():
            require_user_id(target_user_id, "signed key owner")
            require_object(signed_keys, f"signatures for {target_user_id}")
            theirs = mine if target_user_id == user_id else \
                (await self.store.get_cross_signing_keys([target_user_id])).get(target_user_id, {})
            for key_id, signed in signed_keys.items():
                try:
                    accepted.extend(await self._check_signed_key(user_id, mine, target_user_id, theirs,
                                                                 key_id, signed))
                except MatrixError as error:
                    failures.setdefault(target_user_id, {})[key_id] = _failure(error.errcode, error.message)
        if accepted:
            await self.store.add_signatures(accepted)
            for changed_user in sorted({s.target_user_id for s in accepted} | {user_id}):
                # The signed key ids (a device ID or a cross-signing public key): the
                # federation sender tells the two apart.
                await self.device_lists.changed(changed_user, sorted(
                    {s.target_key_id for s in accepted if s.target_user_id == changed_user}))
        return {"failures": failures}

    async def _check_signed_key(self, user_id: str, mine: dict[str, Any], target_user_id: str,
                                theirs: dict[str, Any], key_id: str, signed: Any) -> list[Signature]:
        if not isinstance(signed, dict):
            raise MatrixError(400, "M_BAD_JSON", "A signed key must be an object")
        check_signature_shapes(signed, "signed key")
        target_master = theirs.get(MASTER)
        if target_user_id != user_id:
            # Only another user's master key can be signed, with our user-signing key.
            if target_master is None or public_key_of(target_master) != key_id:
                raise MatrixError(404, "M_NOT_FOUND", "Not that user's master key")
            return self._signatures_by(mine.get(USER_SIGNING), user_id, target_master, signed,
                                       target_user_id, key_id)
        if target_master is not None and public_key_of(target_master) == key_id:
            # Our own master key, signed by one of our devices.
            return await self._device_signatures_on_master(user_id, target_master, signed, key_id)
        device_keys = await self.device_keys.get_device_keys(user_id, key_id)
        if device_keys is None:
            raise MatrixError(404, "M_NOT_FOUND", "Unknown device or key")
        return self._signatures_by(mine.get("self_signing"), user_id, device_keys, signed, user_id, key_id)

    @staticmethod
    def _signatures_by(signing_key: dict[str, Any] | None, user_id: str, stored: dict[str, Any],
                       signed: dict[str, Any], target_user_id: str, target_key_id: str) -> list[Signature]:
        if signing_key is None:
            raise MatrixError(400, "M_INVALID_SIGNATURE", "You have no key that may sign this")
        if signable_part(stored) != signable_part(signed):
            raise invalid_param("The signed object does not match the stored key")
        public = public_key_of(signing_key)
        signer_key_id = f"ed25519:{public}"
        if public is None or not has_valid_signature(signed, user_id, signer_key_id, public):
            raise invalid_signature("Missing or invalid signature")
        signature = signed["signatures"][user_id][signer_key_id]
        return [Signature(user_id, signer_key_id, target_user_id, target_key_id, signature)]

    async def _device_signatures_on_master(self, user_id: str, master: dict[str, Any],
                                           signed: dict[str, Any], master_public: str) -> list[Signature]:
        if signable_part(master) != signable_part(signed):
            raise invalid_param("The signed object does not match the stored master key")
        found: list[Signature] = []
        for signer_key_id, signature in signed["signatures"].get(user_id, {}).items():
            algorithm, _, device_id = signer_key_id.partition(":")
            if algorithm != "ed25519" or device_id == master_public:
                continue
            device_keys = await self.device_keys.get_device_keys(user_id, device_id)
            device_public = (device_keys or {}).get("keys", {}).get(signer_key_id)
            if device_public is None or not has_valid_signature(signed, user_id, signer_key_id, device_public):
                raise invalid_signature(f"Invalid signature by {signer_key_id}")
            found.append(Signature(user_id, signer_key_id, user_id, master_public, signature))
        if not found:
            raise invalid_signature("No signature by one of your devices")
        return found
