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

from homeserver.errors import bad_json, invalid_param, not_found, too_large
from homeserver.events.identifiers import is_valid_user_id, server_name_of
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
from homeserver.handlers.e2ee.remote_device_lists import RemoteDeviceLists
from homeserver.handlers.mls.key_packages import check_uploaded_key_packages, claim_recorder
from homeserver.server import Server
from homeserver.stream_token import StreamToken
from storage.stores.device_lists import DeviceListsStore
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


DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 60_000


def _timeout_s(value: Any) -> float:
    """The client's ``timeout`` (ms) for other servers' answers: 10 s unless told, at most 60 s."""
    if value is None:
        return DEFAULT_TIMEOUT_MS / 1000
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid_param("timeout must be a non-negative integer (milliseconds)")
    return max(min(value, MAX_TIMEOUT_MS), 1) / 1000


def _wanted_devices(wanted: dict[str, Any]) -> list[tuple[str, list[str]]]:
    for user_id, device_ids in wanted.items():
        require_user_id(user_id, "device_keys")
        if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
            raise bad_json("device_keys values must be lists of device IDs")
    return list(wanted.items())


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
        self.remote = hs.get(RemoteDeviceLists)

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
            await self.device_lists.changed(user_id, [device_id])

    # -- query ----------------------------------------------------------------------------

    async def query(self, viewer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        wanted = require_object(body.get("device_keys"), "device_keys")
        if len(wanted) > MAX_QUERY_USERS:
            raise too_large(f"At most {MAX_QUERY_USERS} users per query")
        timeout_s = _timeout_s(body.get("timeout"))
        local: dict[str, list[str]] = {}
        remote: dict[str, dict[str, list[str]]] = {}
        for user_id, device_ids in _wanted_devices(wanted):
            server = server_name_of(user_id)
            if server == self.server_name:
                local[user_id] = device_ids
            else:
                remote.setdefault(server, {})[user_id] = device_ids
        device_keys = await self.local_device_keys(local, with_names=True)
        response = await self.viewer.decorate(viewer_id, device_keys, list(local))
        found = await self.remote.query(remote, timeout_s)
        response["device_keys"].update(found.device_keys)
        response["master_keys"].update(found.master_keys)
        response["self_signing_keys"].update(found.self_signing_keys)
        response["failures"] = found.failures
        return response

    async def local_device_keys(self, wanted: dict[str, list[str]],
                                with_names: bool) -> dict[str, dict[str, Any]]:
        """{user: {device: keys}} of local users (all their devices for an empty list)."""
        stored = await self.device_keys.get_user_device_keys(wanted)
        device_keys: dict[str, dict[str, Any]] = {}
        for user_id, device_ids in wanted.items():
            devices = stored.get(user_id, {})
            if device_ids:
                devices = {d: keys for d, keys in devices.items() if d in device_ids}
            names = {d.device_id: d.display_name for d in await self.devices.get_devices_by_user(user_id)} \
                if with_names else {}
            for device_id, keys in devices.items():
                name = names.get(device_id)
                keys["unsigned"] = {} if name is None else {"device_display_name": name}
            device_keys[user_id] = devices
        return device_keys

    async def federation_query(self, body: dict[str, Any]) -> dict[str, Any]:
        """Another server's ``/user/keys/query``: our users' keys as anyone may see them."""
        wanted = require_object(body.get("device_keys"), "device_keys")
        if len(wanted) > MAX_QUERY_USERS:
            raise too_large(f"At most {MAX_QUERY_USERS} users per query")
        local = {u: d for u, d in _wanted_devices(wanted) if server_name_of(u) == self.server_name}
        names = self.hs.config.allow_device_name_lookup_over_federation
        device_keys = await self.local_device_keys(local, with_names=names)
        response = await self.viewer.decorate("", device_keys, list(local))
        response.pop("user_signing_keys", None)
        return response

    # -- claim ----------------------------------------------------------------------------

    async def claim(self, body: dict[str, Any]) -> dict[str, Any]:
        wanted = require_object(body.get("one_time_keys"), "one_time_keys")
        timeout_s = _timeout_s(body.get("timeout"))
        local, remote = self._split_claims(wanted)
        one_time_keys = await self.claim_local(local)
        claimed, failures = await self.remote.claim(remote, timeout_s)
        one_time_keys.update(claimed)
        return {"one_time_keys": one_time_keys, "failures": failures}

    async def federation_claim(self, body: dict[str, Any]) -> dict[str, Any]:
        """Another server's ``/user/keys/claim`` for our users' devices."""
        local, _ = self._split_claims(require_object(body.get("one_time_keys"), "one_time_keys"))
        return {"one_time_keys": await self.claim_local(local)}

    def _split_claims(self, wanted: dict[str, Any]) -> tuple[list[tuple[str, str, str]],
                                                             dict[str, dict[str, dict[str, str]]]]:
        requests: list[tuple[str, str, str]] = []
        remote: dict[str, dict[str, dict[str, str]]] = {}
        for user_id, devices in wanted.items():
            require_user_id(user_id, "one_time_keys")
            require_object(devices, f"one_time_keys[{user_id}]")
            for algorithm in devices.values():
                require_string(algorithm, "one_time_keys algorithms")
            server = server_name_of(user_id)
            if server != self.server_name:
                remote.setdefault(server, {})[user_id] = dict(devices)
                continue
            requests.extend((user_id, device_id, algorithm) for device_id, algorithm in devices.items())
        remote_count = sum(len(d) for by_user in remote.values() for d in by_user.values())
        if len(requests) + remote_count > MAX_CLAIM_DEVICES:
            raise too_large(f"At most {MAX_CLAIM_DEVICES} keys per claim")
        return requests, remote

    async def claim_local(self, requests: list[tuple[str, str, str]]) -> dict[str, Any]:
        claimed = await self.fallback_keys.claim_keys(requests, claim_recorder(now_ms(self.hs)))
        one_time_keys: dict[str, dict[str, dict[str, Any]]] = {}
        for key in claimed:
            one_time_keys.setdefault(key.user_id, {}).setdefault(key.device_id, {})[
                f"{key.algorithm}:{key.key_id}"] = key.key
        return one_time_keys

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



async def user_devices(hs: Server, user_id: str) -> dict[str, Any]:
    """Another server's ``/user/devices/{userId}``: a local user's whole device list, the
    device-list stream position it reflects, and the public cross-signing keys."""
    if not is_valid_user_id(user_id) or server_name_of(user_id) != hs.server_name:
        raise invalid_param("That user is not on this server")
    handler = hs.get(E2eKeysHandler)
    # The position first: a change racing this read is then at a later id, which the
    # asking server applies on top (or resyncs for) as it should.
    stream_id = await hs.get(DeviceListsStore).latest_stream_id(user_id)
    devices = await handler.devices.get_devices_by_user(user_id)
    if not devices:
        raise not_found("No such user")
    keys = (await handler.local_device_keys({user_id: []}, with_names=False)).get(user_id, {})
    decorated = await handler.viewer.decorate("", {user_id: keys}, [user_id])
    names = hs.config.allow_device_name_lookup_over_federation
    listed = []
    for device in devices:
        entry: dict[str, Any] = {"device_id": device.device_id}
        if device.device_id in keys:
            entry["keys"] = {k: v for k, v in keys[device.device_id].items() if k != "unsigned"}
        if names and device.display_name is not None:
            entry["device_display_name"] = device.display_name
        listed.append(entry)
    body: dict[str, Any] = {"user_id": user_id, "stream_id": stream_id, "devices": listed}
    for field, key_type in (("master_key", "master_keys"), ("self_signing_key", "self_signing_keys")):
        if user_id in decorated[key_type]:
            body[field] = decorated[key_type][user_id]
    return body
