"""Simplified sliding sync (MSC4186), the third transport over the one sync builder.

A request names lists (ranges over the user's joined and invited rooms, newest activity first)
and room subscriptions; the selected rooms and the enabled extensions are built by the same
``SyncBuilder`` as /sync and the WebSocket stream: rooms the connection already holds
incrementally from the connection's position, rooms new to it as on an initial sync. The
builder's answer is then reshaped (homeserver/sync/sliding/rooms.py).

``pos`` names a row in ``sliding_sync_positions``: the sync token the response covered and the
rooms the client then held, so a connection survives restarts. An unknown or expired ``pos`` is
400 M_UNKNOWN_POS; the client then starts the connection again. A stream whose extension is off
keeps its old position, so nothing (to-device messages above all) is acknowledged unseen.
"""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.errors import MatrixError
from homeserver.notifier import Notifier
from homeserver.server import Server
from homeserver.stream_token import StreamToken
from homeserver.sync.builder import SyncBuilder
from homeserver.sync.handler import discard
from homeserver.sync.provider import SyncRequest
from homeserver.sync.sliding.bump import BumpStamps
from homeserver.sync.sliding.request import RoomConfig, SlidingRequest, parse_sliding_request
from homeserver.sync.sliding.rooms import SlidingRooms, state_filter
from storage.stores.room_members import RoomMemberStore
from storage.stores.sliding_sync import Position, SlidingSyncStore

MAX_TIMEOUT_MS = 300_000
#: A position unused this long is forgotten (Synapse keeps connections about a week too).
POSITION_LIFETIME_MS = 7 * 24 * 3600 * 1000
EXTENSION_STREAMS = {"to_device": ("to_device",), "e2ee": ("to_device", "device_lists"),
                     "account_data": ("account_data",), "receipts": ("receipts",), "typing": ("typing",)}
#: Per-room extension data the initial build of new rooms may carry.
ROOM_EXTENSIONS = ("account_data", "receipts", "typing")


@attrs.define
class _Selection:
    lists: dict[str, Any]
    rooms: dict[str, RoomConfig]
    invites: set[str]
    bump: dict[str, int]


def unknown_pos() -> MatrixError:
    return MatrixError(400, "M_UNKNOWN_POS", "Unknown or expired sliding sync position")


class SlidingSyncHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.builder = hs.get(SyncBuilder)
        self.store = hs.get(SlidingSyncStore)
        self.members = hs.get(RoomMemberStore)
        self.notifier = hs.get(Notifier)
        self.rooms = SlidingRooms(hs)
        self.bump_stamps = hs.get(BumpStamps)

    async def sync(self, user_id: str, device_id: str | None, access_token_id: int | None,
                   body: dict[str, Any], pos: str | None, timeout_ms: int) -> dict[str, Any]:
        request = parse_sliding_request(body)
        device = device_id or ""
        previous = None
        now = int(self.hs.reactor.seconds() * 1000)
        if pos is not None:
            previous = await self.store.get_position(pos, user_id, device, request.conn_id)
            if previous is None or previous.created_ts + POSITION_LIFETIME_MS < now:
                raise unknown_pos()
        deadline = self.hs.reactor.seconds() + min(timeout_ms, MAX_TIMEOUT_MS) / 1000.0
        while True:
            remaining = int((deadline - self.hs.reactor.seconds()) * 1000)
            waiter = None
            if previous is not None and remaining > 0:
                # Every joined room: a message anywhere may bring a room into a list's range.
                waiter = self.notifier.wait(user_id, await self.members.get_rooms_for_user(user_id), remaining)
            try:
                response, token, state, changed = await self._once(user_id, device_id, access_token_id,
                                                                   request, previous)
            except BaseException:
                discard(waiter)
                raise
            if waiter is None or changed or await waiter is None:
                discard(waiter)
                break
        now = int(self.hs.reactor.seconds() * 1000)
        response["pos"] = await self.store.add_position(user_id, device, request.conn_id, token, state, now)
        if request.txn_id is not None:
            response["txn_id"] = request.txn_id
        return response

    async def _select(self, user_id: str, request: SlidingRequest, events_upto: int) -> _Selection:
        memberships = await self.members.get_rooms_with_membership(user_id)
        joined = {r for r, m in memberships.items() if m.membership == "join"}
        invites = {r for r, m in memberships.items() if m.membership == "invite"}
        bump = await self.bump_stamps.get(joined, events_upto)
        bump.update({r: memberships[r].stream_ordering for r in invites})
        order = sorted(joined | invites, key=lambda r: (-bump.get(r, 0), r))
        lists: dict[str, Any] = {}
        rooms: dict[str, RoomConfig] = {}
        for name, wanted in request.lists.items():
            listed = [r for r in order if wanted.is_invite is None or (r in invites) == wanted.is_invite]
            lists[name] = {"count": len(listed)}
            for start, end in wanted.ranges:
                for room in listed[start:end + 1]:
                    rooms[room] = rooms[room].merge(wanted.config) if room in rooms else wanted.config
        for room, config in request.subscriptions.items():
            if room in joined or room in invites:
                rooms[room] = rooms[room].merge(config) if room in rooms else config
        return _Selection(lists, rooms, invites, bump)

    async def _once(self, user_id: str, device_id: str | None, access_token_id: int | None,
                    request: SlidingRequest, previous: Position | None
                    ) -> tuple[dict[str, Any], str, dict[str, Any], bool]:
        upto = await self.builder.current_token()
        selection = await self._select(user_id, request, upto.get("events") or 0)
        known = set(previous.state.get("rooms", [])) if previous is not None else set()
        old = sorted(r for r in selection.rooms if r in known)
        new = sorted(r for r in selection.rooms if r not in known)
        streams = {s for name in request.extensions for s in EXTENSION_STREAMS[name]}
        since = StreamToken.parse(previous.token) if previous is not None else None
        if since is not None and request.to_device_since is not None:
            since = StreamToken({**since.positions, "to_device": request.to_device_since})

        def sync_request(rooms: list[str], since_token: StreamToken | None) -> SyncRequest:
            configs = [selection.rooms[r] for r in rooms]
            limit = max((c.timeline_limit for c in configs), default=0)
            room_filter = {"rooms": rooms, "timeline": {"limit": limit}, "state": state_filter(configs)}
            return SyncRequest(user_id=user_id, device_id=device_id, access_token_id=access_token_id,
                               filter={"room": room_filter}, since=since_token)

        builds: list[tuple[dict[str, Any], bool]] = []
        main, _ = await self.builder.build(sync_request(old if since else new, since), upto, frozenset(streams))
        builds.append((main, since is None))
        if since is not None and new:
            room_streams = frozenset(streams & set(ROOM_EXTENSIONS))
            fresh, _ = await self.builder.build(sync_request(new, None), upto, room_streams)
            builds.append((fresh, True))
        response: dict[str, Any] = {"lists": selection.lists, "rooms": {}, "extensions": {}}
        live_after = since.get("events") if since is not None else None
        for built, initial in builds:
            await self._rooms(user_id, built, initial, selection, live_after, response)
        self._extensions(request, main, [b for b, _ in builds], set(selection.rooms), upto, response)
        positions = dict(since.positions) if since is not None else {}
        positions.update({s: p for s, p in upto.positions.items() if s == "events" or s in streams})
        if "to_device" not in request.extensions and "to_device" in positions:
            positions["to_device"] = since.positions["to_device"] if since and "to_device" in since.positions \
                else 0
        state = {"rooms": sorted(selection.rooms), "lists": {n: v["count"] for n, v in selection.lists.items()}}
        changed = bool(response["rooms"]) or any(_has_content(v) for v in response["extensions"].values()) \
            or previous is None or previous.state.get("lists") != state["lists"]
        return response, StreamToken(positions).serialise(), state, changed

    async def _rooms(self, user_id: str, built: dict[str, Any], initial: bool, selection: _Selection,
                     live_after: int | None, response: dict[str, Any]) -> None:
        rooms = built.get("rooms", {})
        for room_id, entry in rooms.get("join", {}).items():
            if room_id not in selection.rooms:
                continue
            shown = await self.rooms.joined_entry(user_id, room_id, entry, selection.rooms[room_id], initial,
                                                  live_after)
            if not initial and not shown["timeline"] and not shown["required_state"]:
                continue
            shown["bump_stamp"] = selection.bump.get(room_id, 0)
            response["rooms"][room_id] = shown
        for room_id, entry in rooms.get("invite", {}).items():
            if room_id in selection.rooms:
                response["rooms"][room_id] = {"initial": True, "invite_state": entry["invite_state"]["events"],
                                              "bump_stamp": selection.bump.get(room_id, 0)}

    @staticmethod
    def _extensions(request: SlidingRequest, main: dict[str, Any], builds: list[dict[str, Any]],
                    selected: set[str], upto: StreamToken, response: dict[str, Any]) -> None:
        out = response["extensions"]
        if "to_device" in request.extensions:
            out["to_device"] = {"next_batch": str(upto.get("to_device") or 0),
                                "events": main.get("to_device", {}).get("events", [])}
        if "e2ee" in request.extensions:
            out["e2ee"] = {"device_lists": main.get("device_lists", {"changed": [], "left": []}),
                           "device_one_time_keys_count": main.get("device_one_time_keys_count", {}),
                           "device_unused_fallback_key_types": main.get("device_unused_fallback_key_types", [])}
        joined = [(room, entry) for built in builds
                  for room, entry in built.get("rooms", {}).get("join", {}).items() if room in selected]
        if "account_data" in request.extensions:
            out["account_data"] = {
                "global": main.get("account_data", {}).get("events", []),
                "rooms": {room: e["account_data"]["events"] for room, e in joined if e["account_data"]["events"]},
            }
        for name, event_type in (("receipts", "m.receipt"), ("typing", "m.typing")):
            if name in request.extensions:
                found = {room: ev for room, e in joined for ev in e["ephemeral"]["events"] if ev["type"] == event_type}
                out[name] = {"rooms": found}


def _has_content(value: Any) -> bool:
    """Does an extension's answer hold anything (not just its next_batch)?"""
    if isinstance(value, dict):
        return any(_has_content(v) for k, v in value.items() if k not in ("next_batch", "device_one_time_keys_count",
                                                                            "device_unused_fallback_key_types"))
    if isinstance(value, list):
        return bool(value)
    return False
