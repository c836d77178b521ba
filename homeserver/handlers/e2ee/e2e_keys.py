"""/keys/upload, /keys/query, /keys/claim and /keys/changes.

Device keys are accepted only when self-signed by the device's own ed25519
key.  New identity keys for a device that has some replace them, as Synapse
does (a client that lost its store may reuse its device ID), with a warning in
the log and a device-list change so that everyone re-queries.  One-time keys are
handed out once each, oldest first, and the fallback key stands in when they
run out. MLS KeyPackages are one-time keys too (homeserver/handlers/mls/key_packages.py).
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from homeserver.errors import bad_json, invalid_param, too_large
from homeserver.events.identifiers import server_name_of
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.e2ee.cross_signing_view import KeyViewer
from homeserver.handlers.e2ee.device_lists import DeviceListDelta, DeviceListsHandler
from homeserver.handlers.e2ee.e2e_json import (
    ED25519,
    check_signature_shapes,
    has_valid_signature,
    invalid_signature,
    require_object,
    require_string,
    require_user_id,
    signable_part,
    split_key_id,
)
from homeserver.handlers.mls.key_packages import check_uploaded_key_packages, claim_recorder
from homeserver.server import Server
from homeserver.stream_token import StreamToken
from storage.stores.devices import DeviceStore
from storage.stores.e2e_device_keys import E2eDeviceKeysStore
from storage.stores.e2e_fallback_keys import E2eFallbackKeysStore
from storage.stores.e2e_one_time_keys import E2eOneTimeKeysStore, OneTimeKey

logger = logging.getLogger(__name__)

# Batch limits: generous for real clients (which upload ~50 keys at a time and
# claim per room member), small enough that one request cannot tie up the database.
MAX_ONE_TIME_KEYS_PER_UPLOAD = 1000
MAX_QUERY_USERS = 10_000
MAX_CLAIM_DEVICES = 10_000
MAX_KEY_LENGTH = 1024
FALLBACK_KEYS_FIELDS = ("fallback_keys", "org.matrix.msc2732.fallback_keys")


def _federation_failure() -> dict[str, Any]:
    return {"status": 503, "message": "Querying other servers is not supported yet"}


@attrs.frozen
class UploadResult:
    one_time_key_counts: dict[str, int]


class E2eKeysHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.device_keys = hs.get(E2eDeviceKeysStore)
        self.one_time_keys = hs.get(E2eOneTimeKeysStore)
        self.fallback_keys = hs.get(E2eFallbackKeysStore)
        self.devices = hs.get(DeviceStore)
        self.device_lists = hs.get(DeviceListsHandler)
        self.viewer = hs.get(KeyViewer)

    # -- upload ---------------------------------------------------------------------------

    async def upload(self, user_id: str, device_id: str, body: dict[str, Any]) -> dict[str, int]:
        device_keys = body.get("device_keys")
        one_time = _parse_key_map(body.get("one_time_keys"), "one_time_keys")
        if len(one_time) > MAX_ONE_TIME_KEYS_PER_UPLOAD:
            raise too_large(f"At most {MAX_ONE_TIME_KEYS_PER_UPLOAD} one-time keys per upload")
        fallback: list[OneTimeKey] = []
        for field in FALLBACK_KEYS_FIELDS:
            if body.get(field) is not None:
                fallback = _parse_key_map(body[field], field)
                break
        if len({key.algorithm for key in fallback}) != len(fallback):
            raise invalid_param("At most one fallback key per algorithm")
        check_uploaded_key_packages(user_id, device_id, [*one_time, *fallback])
        if device_keys is not None:
            await self._upload_device_keys(user_id, device_id, device_keys)
        if one_time:
            conflicts = await self.one_time_keys.add_one_time_keys(user_id, device_id, one_time)
            if conflicts:
                first = conflicts[0]
                raise invalid_param(f"One-time key {first.algorithm}:{first.key_id} already exists "
                                    "with different content")
        if fallback:
            await self.fallback_keys.set_fallback_keys(user_id, device_id, fallback)
        return await self.one_time_key_counts(user_id, device_id)

    async def one_time_key_counts(self, user_id: str, device_id: str) -> dict[str, int]:
        counts = await self.one_time_keys.count_one_time_keys(user_id, device_id)
        # Clients read this key to decide whether to upload more; absent would look like "unknown".
        counts.setdefault("signed_curve25519", 0)
        return counts

    async def _upload_device_keys(self, user_id: str, device_id: str, device_keys: Any) -> None:
        keys = require_object(device_keys, "device_keys")
        if keys.get("user_id") != user_id or keys.get("device_id") != device_id:
            raise invalid_param("device_keys.user_id and device_id must be those of the uploading device")
        algorithms = keys.get("algorithms")
        if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
            raise bad_json("device_keys.algorithms must be a list of strings")
        key_map = require_object(keys.get("keys"), "device_keys.keys")
        for key_id, value in key_map.items():
            split_key_id(key_id, "device_keys.keys")
            require_string(value, "device_keys.keys values", MAX_KEY_LENGTH)
        signing_key_id = f"{ED25519}:{device_id}"
        if signing_key_id not in key_map:
            raise bad_json(f"device_keys.keys must include {signing_key_id}")
        check_signature_shapes(keys, "device_keys")
        if not has_valid_signature(keys, user_id, signing_key_id, key_map[signing_key_id]):
            raise invalid_signature("device_keys must be signed by the device's own ed25519 key")
        stored = {k: v for k, v in keys.items() if k != "unsigned"}
        changed, previous = await self.device_keys.set_device_keys(user_id, device_id, stored, now_ms(self.hs))
        if previous is not None and signable_part(previous) != signable_part(stored):
            logger.warning("Device %s of %s uploaded new identity keys, replacing its old ones",
                           device_id, user_id)
        if changed:
            await self.device_lists.changed(user_id)

    # -- query ----------------------------------------------------------------------------

    async def query(self, viewer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        wanted = require_object(body.get("device_keys"), "device_keys")
        if len(wanted) > MAX_QUERY_USERS:
            raise too_large(f"At most {MAX_QUERY_USERS} users per query")
        local: dict[str, list[str]] = {}
        failures: dict[str, Any] = {}
        for user_id, device_ids in wanted.items():
            require_user_id(user_id, "device_keys")
            if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
                raise bad_json("device_keys values must be lists of device IDs")
            server = server_name_of(user_id)
            if server == self.server_name:
                local[user_id] = device_ids
            else:
                failures[server] = _federation_failure()
        stored = await self.device_keys.get_user_device_keys(local)
        device_keys: dict[str, dict[str, Any]] = {}
        for user_id, device_ids in local.items():
            devices = stored.get(user_id, {})
            if device_ids:
                devices = {d: keys for d, keys in devices.items() if d in device_ids}
            names = {d.device_id: d.display_name for d in await self.devices.get_devices_by_user(user_id)}
            for device_id, keys in devices.items():
                name = names.get(device_id)
                keys["unsigned"] = {} if name is None else {"device_display_name": name}
            device_keys[user_id] = devices
        response = await self.viewer.decorate(viewer_id, device_keys, list(local))
        response["failures"] = failures
        return response

    # -- claim ----------------------------------------------------------------------------

    async def claim(self, body: dict[str, Any]) -> dict[str, Any]:
        wanted = require_object(body.get("one_time_keys"), "one_time_keys")
        requests: list[tuple[str, str, str]] = []
        failures: dict[str, Any] = {}
        for user_id, devices in wanted.items():
            require_user_id(user_id, "one_time_keys")
            require_object(devices, f"one_time_keys[{user_id}]")
            server = server_name_of(user_id)
            if server != self.server_name:
                failures[server] = _federation_failure()
                continue
            for device_id, algorithm in devices.items():
                require_string(algorithm, "one_time_keys algorithms")
                requests.append((user_id, device_id, algorithm))
        if len(requests) > MAX_CLAIM_DEVICES:
            raise too_large(f"At most {MAX_CLAIM_DEVICES} keys per claim")
        claimed = await self.fallback_keys.claim_keys(requests, claim_recorder(now_ms(self.hs)))
        one_time_keys: dict[str, dict[str, dict[str, Any]]] = {}
        for key in claimed:
            one_time_keys.setdefault(key.user_id, {}).setdefault(key.device_id, {})[
                f"{key.algorithm}:{key.key_id}"] = key.key
        return {"one_time_keys": one_time_keys, "failures": failures}

    # -- changes --------------------------------------------------------------------------

    async def changes(self, user_id: str, from_token: str, to_token: str) -> DeviceListDelta:
        try:
            since, upto = StreamToken.parse(from_token), StreamToken.parse(to_token)
        except ValueError:
            raise invalid_param("from and to must be sync tokens") from None
        return await self.device_lists.delta(
            user_id, since.get("device_lists") or 0, upto.get("device_lists") or 0,
            since.get("events"), upto.get("events"))


def _parse_key_map(value: Any, what: str) -> list[OneTimeKey]:
    """{'<algorithm>:<id>': key} -> keys in the client's order; keys are strings or signed objects."""
    if value is None:
        return []
    key_map = require_object(value, what)
    keys: list[OneTimeKey] = []
    for key_id, key in key_map.items():
        algorithm, ident = split_key_id(key_id, what)
        if isinstance(key, str):
            require_string(key, f"{what} values", MAX_KEY_LENGTH)
        elif isinstance(key, dict):
            require_string(key.get("key"), f"{what}[{key_id}].key", MAX_KEY_LENGTH)
            if "signatures" in key:
                check_signature_shapes(key, f"{what}[{key_id}]")
        else:
            raise bad_json(f"{what} values must be strings or signed key objects")
        keys.append(OneTimeKey(algorithm, ident, key))
    return keys

