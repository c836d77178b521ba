"""Other servers' users' devices: remote /keys/query and /keys/claim, and the device-list cache.

We cache the device list (keys and cross-signing keys) of a remote user only while one of our
users shares a room with them, since only then does their server send us updates. The cache
is served only when it is known good; otherwise /keys/query asks the user's server, one
batched ``/user/keys/query`` per server, all servers at once, within the client's timeout,
and lists under ``failures`` only the servers that did not answer.

Updates (``m.device_list_update``) carry the sender's device-list ``stream_id`` and the ids
they follow on from (``prev_id``). One that follows on from the position we hold is applied;
any other means we missed one, so the cache is marked stale and rebuilt from
``/user/devices`` (which names its position), retried with backoff until it works. Keys that
came from ``/user/keys/query`` have no position, so the first update after them resyncs too.
Every change to the cache records a ``device_lists_stream`` row for the user, so our clients
see them in sync's ``device_lists.changed`` and re-query exactly then.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall

from homeserver.events.identifiers import is_valid_user_id, server_name_of
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.e2ee.remote_keys import RemoteKeys, RemoteKeysUnavailable
from homeserver.handlers.rooms.members import joined_users, users_sharing_a_room
from homeserver.pipeline import EventPipeline, PersistedBatch
from homeserver.server import Server
from storage.stores.device_lists import DeviceListsStore
from storage.stores.remote_device_lists import (
    CachedDeviceList,
    RemoteDevice,
    RemoteDeviceListsStore,
)

logger = logging.getLogger(__name__)

#: Resync retries: 5 s, doubling, at most an hour apart.
RESYNC_FIRST_DELAY_S = 5.0
RESYNC_MAX_DELAY_S = 3600.0
MAX_REMOTE_DEVICES = 1000


def unreachable(reason: str = "The server did not answer") -> dict[str, Any]:
    return {"status": 503, "message": reason}


@attrs.define
class QueryResult:
    device_keys: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    master_keys: dict[str, Any] = attrs.field(factory=dict)
    self_signing_keys: dict[str, Any] = attrs.field(factory=dict)
    failures: dict[str, Any] = attrs.field(factory=dict)


def _is_key_for(key: Any, user_id: str) -> bool:
    return isinstance(key, dict) and key.get("user_id") == user_id and isinstance(key.get("keys"), dict)


def _device_keys_for(keys: Any, user_id: str, device_id: str) -> dict[str, Any] | None:
    if not _is_key_for(keys, user_id) or keys.get("device_id") != device_id:
        return None
    return dict(keys)


def parse_user_devices(user_id: str, body: Any) -> tuple[int, list[RemoteDevice], Any, Any]:
    """A ``/user/devices`` answer: (stream_id, devices, master key, self-signing key)."""
    if not isinstance(body, dict) or body.get("user_id") != user_id:
        raise RemoteKeysUnavailable("the answer is not about the user asked for")
    stream_id, devices = body.get("stream_id"), body.get("devices")
    if not isinstance(stream_id, int) or isinstance(stream_id, bool) or not isinstance(devices, list):
        raise RemoteKeysUnavailable("the answer has no stream_id or devices")
    parsed: list[RemoteDevice] = []
    for entry in devices[:MAX_REMOTE_DEVICES]:
        if not isinstance(entry, dict) or not isinstance(entry.get("device_id"), str):
            continue
        device_id = entry["device_id"]
        name = entry.get("device_display_name")
        parsed.append(RemoteDevice(device_id, _device_keys_for(entry.get("keys"), user_id, device_id),
                                   name if isinstance(name, str) else None))
    master, self_signing = body.get("master_key"), body.get("self_signing_key")
    return (stream_id, parsed, master if _is_key_for(master, user_id) else None,
            self_signing if _is_key_for(self_signing, user_id) else None)


def _remote_device(user_id: str, device_id: str, keys: Any) -> RemoteDevice | None:
    """A device from a /user/keys/query answer (its name, if any, from ``unsigned``)."""
    checked = _device_keys_for(keys, user_id, device_id)
    if checked is None:
        return None
    unsigned = checked.pop("unsigned", None)
    name = unsigned.get("device_display_name") if isinstance(unsigned, dict) else None
    return RemoteDevice(device_id, checked, name if isinstance(name, str) else None)


def _served_keys(device: RemoteDevice) -> dict[str, Any]:
    keys = dict(device.keys or {})
    keys["unsigned"] = {} if device.display_name is None else {"device_display_name": device.display_name}
    return keys


class RemoteDeviceLists:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.store = hs.get(RemoteDeviceListsStore)
        self.lists = hs.get(DeviceListsStore)
        self.remote = hs.get(RemoteKeys)
        self._resyncs: dict[str, Deferred[bool]] = {}
        self._retries: dict[str, tuple[float, IDelayedCall]] = {}

    # -- who we track ------------------------------------------------------------------------

    async def local_audience(self, user_id: str) -> set[str]:
        """Our users who share a room with the remote user (empty: we do not track them)."""
        return {u for u in await users_sharing_a_room(self.hs, user_id)
                if server_name_of(u) == self.server_name}

    # -- /keys/query ------------------------------------------------------------------------

    async def query(self, by_server: dict[str, dict[str, list[str]]], timeout_s: float) -> QueryResult:
        result = QueryResult()
        if not by_server:
            return result
        await defer.gatherResults([Deferred.fromCoroutine(self._query_server(server, wanted, timeout_s, result))
                                   for server, wanted in by_server.items()], consumeErrors=True)
        return result

    async def _query_server(self, server: str, wanted: dict[str, list[str]], timeout_s: float,
                            result: QueryResult) -> None:
        cached = await self.store.get(wanted)
        tracked = {u: await self.local_audience(u) for u in wanted}
        to_fetch: dict[str, list[str]] = {}
        for user_id, device_ids in wanted.items():
            entry = cached.get(user_id)
            if entry is not None and not entry.stale and tracked[user_id]:
                self._serve_cached(entry, device_ids, result)
                continue
            if entry is not None and not tracked[user_id]:
                await self.store.forget(user_id)  # (the leave listener may not have run yet)
            to_fetch[user_id] = device_ids
        if not to_fetch:
            return
        try:
            answer = await self.remote.get().query_keys(server, to_fetch, timeout_s)
        except RemoteKeysUnavailable as exc:
            logger.info("keys query to %s failed: %s", server, exc)
            result.failures[server] = unreachable()
            return
        except Exception:
            logger.exception("keys query to %s failed", server)
            result.failures[server] = unreachable()
            return
        await self._take_answer(to_fetch, answer, tracked, result)

    def _serve_cached(self, entry: CachedDeviceList, device_ids: list[str], result: QueryResult) -> None:
        devices: dict[str, Any] = {}
        for device in entry.devices:
            if device.keys is not None and (not device_ids or device.device_id in device_ids):
                devices[device.device_id] = _served_keys(device)
        result.device_keys[entry.user_id] = devices
        if entry.master_key is not None:
            result.master_keys[entry.user_id] = entry.master_key
        if entry.self_signing_key is not None:
            result.self_signing_keys[entry.user_id] = entry.self_signing_key

    async def _take_answer(self, asked: dict[str, list[str]], answer: dict[str, Any],
                           tracked: dict[str, set[str]], result: QueryResult) -> None:
        """Keep what the server said about the users we asked it for; cache the tracked ones."""
        by_user = _object(answer.get("device_keys"))
        for user_id, device_ids in asked.items():
            raw = _object(by_user.get(user_id))
            devices = [_remote_device(user_id, d, k) for d, k in raw.items()
                       if not device_ids or d in device_ids]
            kept = [d for d in devices if d is not None]
            result.device_keys[user_id] = {d.device_id: _served_keys(d) for d in kept}
            master = _pick(answer, "master_keys", user_id)
            self_signing = _pick(answer, "self_signing_keys", user_id)
            if master is not None:
                result.master_keys[user_id] = master
            if self_signing is not None:
                result.self_signing_keys[user_id] = self_signing
            if tracked[user_id] and not device_ids:  # the whole list: worth keeping
                await self.store.replace(user_id, None, kept, master, self_signing, now_ms(self.hs), None)

    # -- /keys/claim ------------------------------------------------------------------------

    async def claim(self, by_server: dict[str, dict[str, dict[str, str]]],
                    timeout_s: float) -> tuple[dict[str, Any], dict[str, Any]]:
        claimed: dict[str, Any] = {}
        failures: dict[str, Any] = {}

        async def one(server: str, wanted: dict[str, dict[str, str]]) -> None:
            try:
                answer = await self.remote.get().claim_keys(server, wanted, timeout_s)
            except Exception as exc:  # noqa: BLE001 - any failure of that server is its failure
                logger.info("keys claim to %s failed: %s", server, exc)
                failures[server] = unreachable()
                return
            keys = _object(answer.get("one_time_keys"))
            for user_id, devices in wanted.items():
                got = keys.get(user_id)
                if isinstance(got, dict):
                    claimed[user_id] = {d: k for d, k in got.items() if d in devices and isinstance(k, dict)}

        await defer.gatherResults([Deferred.fromCoroutine(one(s, w)) for s, w in by_server.items()],
                                  consumeErrors=True)
        return claimed, failures

    # -- inbound EDUs -----------------------------------------------------------------------

    async def on_device_list_update(self, origin: str, content: Any) -> None:
        """``m.device_list_update``: apply it if it follows on from what we hold, else resync."""
        if not isinstance(content, dict):
            return
        user_id, device_id, stream_id = content.get("user_id"), content.get("device_id"), content.get("stream_id")
        if not isinstance(user_id, str) or not is_valid_user_id(user_id) or server_name_of(user_id) != origin \
                or not isinstance(device_id, str) or not isinstance(stream_id, int) or isinstance(stream_id, bool):
            return
        audience = await self.local_audience(user_id)
        if not audience:
            await self.store.forget(user_id)  # nobody here cares; their server may stop telling us
            return
        entry = (await self.store.get([user_id])).get(user_id)
        if entry is None:
            await self._record_change(user_id, audience)  # clients re-query, which fills the cache
            return
        prev_ids = content.get("prev_id") if isinstance(content.get("prev_id"), list) else []
        if entry.stream_id is not None and stream_id < entry.stream_id:
            return  # older than what we hold (a resync already covered it)
        follows = entry.stream_id is not None and not entry.stale and (
            stream_id == entry.stream_id or (prev_ids and set(prev_ids) <= {entry.stream_id}))
        if not follows:
            logger.info("device list of %s: update %s does not follow %s: resyncing", user_id, stream_id,
                        entry.stream_id)
            await self.store.mark_stale(user_id)
            self._start_resync(user_id)
            return
        deleted = content.get("deleted") is True
        name = content.get("device_display_name")
        device = RemoteDevice(device_id, _device_keys_for(content.get("keys"), user_id, device_id),
                              name if isinstance(name, str) else None)
        writer = await self.lists.stream_writer()
        async with writer.allocate() as (change_id,):
            await self.store.apply_update(user_id, stream_id, device, deleted, now_ms(self.hs), change_id)
        writer.announce(change_id, users=audience)

    async def on_signing_key_update(self, origin: str, content: Any) -> None:
        """``m.signing_key_update``: new master or self-signing keys of a user we track."""
        if not isinstance(content, dict):
            return
        user_id = content.get("user_id")
        if not isinstance(user_id, str) or not is_valid_user_id(user_id) or server_name_of(user_id) != origin:
            return
        audience = await self.local_audience(user_id)
        entry = (await self.store.get([user_id])).get(user_id) if audience else None
        if entry is None:
            if audience:
                await self._record_change(user_id, audience)
            return
        master, self_signing = content.get("master_key"), content.get("self_signing_key")
        writer = await self.lists.stream_writer()
        async with writer.allocate() as (change_id,):
            await self.store.set_signing_keys(
                user_id, master if _is_key_for(master, user_id) else entry.master_key,
                self_signing if _is_key_for(self_signing, user_id) else entry.self_signing_key,
                now_ms(self.hs), change_id)
        writer.announce(change_id, users=audience)

    async def _record_change(self, user_id: str, audience: set[str]) -> None:
        writer = await self.lists.stream_writer()
        async with writer.allocate() as (change_id,):
            await self.lists.add_device_changes(user_id, [(change_id, None)])
        writer.announce(change_id, users=audience)

    # -- resync -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume the resyncs a restart interrupted (the stale flag is persisted), and from
        now on drop the cache of anyone we stop sharing a room with."""
        self.hs.get(EventPipeline).add_persisted_listener(self._on_persisted)
        for user_id in await self.store.get_stale_users():
            self._start_resync(user_id)

    def _on_persisted(self, batch: PersistedBatch) -> Any:
        leaves = [e for e in batch.timeline_events() if e.event.type == "m.room.member"
                  and e.event.state_key is not None and e.event.content.get("membership") != "join"]
        if not leaves:
            return None
        return Deferred.fromCoroutine(self._forget_unshared(batch.room_id, [e.event.state_key for e in leaves
                                                                            if e.event.state_key]))

    async def _forget_unshared(self, room_id: str, targets: list[str]) -> None:
        """After leaves in a room: whose cache can no longer be kept up to date?

        Their server stops telling us of changes once we share no room, so a cache kept
        across that gap could be stale when a room is shared again; dropping it makes the
        first query after the next join fetch afresh."""
        candidates = {u for u in await joined_users(self.hs, room_id) | set(targets)
                      if server_name_of(u) != self.server_name}
        for user_id in await self.store.get(candidates):
            if not await self.local_audience(user_id):
                await self.store.forget(user_id)

    def _start_resync(self, user_id: str) -> None:
        if user_id in self._resyncs or user_id in self._retries:
            return
        self._run_resync(user_id)

    def _run_resync(self, user_id: str) -> None:
        running = Deferred.fromCoroutine(self.resync(user_id))
        if not running.called:  # (it may finish at once, e.g. with no federation at all)
            self._resyncs[user_id] = running

    async def resync(self, user_id: str) -> bool:
        """Rebuild the user's cache from ``/user/devices``; on failure, retry later. True if done."""
        try:
            body = await self.remote.get().user_devices(user_id)
            stream_id, devices, master, self_signing = parse_user_devices(user_id, body)
            audience = await self.local_audience(user_id)
            if not audience:
                await self.store.forget(user_id)
                self._retries.pop(user_id, None)
                return True
            writer = await self.lists.stream_writer()
            async with writer.allocate() as (change_id,):
                await self.store.replace(user_id, stream_id, devices, master, self_signing, now_ms(self.hs),
                                         change_id)
            writer.announce(change_id, users=audience)
            self._retries.pop(user_id, None)
            logger.info("device list of %s resynced at %d (%d devices)", user_id, stream_id, len(devices))
            return True
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, try again later
            logger.info("device list resync of %s failed: %s", user_id, exc)
            self._retry_later(user_id)
            return False
        finally:
            self._resyncs.pop(user_id, None)

    def _retry_later(self, user_id: str) -> None:
        delay = RESYNC_FIRST_DELAY_S
        previous = self._retries.get(user_id)
        if previous is not None:
            delay = min(previous[0] * 2, RESYNC_MAX_DELAY_S)
        call = self.hs.reactor.callLater(delay, self._retry_now, user_id)
        self._retries[user_id] = (delay, call)

    def _retry_now(self, user_id: str) -> None:
        if user_id not in self._resyncs:
            self._run_resync(user_id)

    def stop(self) -> None:
        for _, call in self._retries.values():
            if call.active():
                call.cancel()


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _pick(answer: dict[str, Any], field: str, user_id: str) -> Any:
    keys = answer.get(field)
    key = keys.get(user_id) if isinstance(keys, dict) else None
    return key if _is_key_for(key, user_id) else None
