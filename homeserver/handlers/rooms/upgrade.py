"""POST /rooms/{roomId}/upgrade: replace a room with a new one of another room version.

As the spec lists it (and Synapse does it): check the user may send ``m.room.tombstone``
in the old room; create the new room through the room creation handler (so through the
event pipeline, like any room) with ``predecessor`` in its create event and the old
room's state copied; send the tombstone pointing at the new room; move the local
aliases and the directory listing; and raise the old room's ``events_default`` and
``invite`` levels so that ordinary members can no longer talk or invite there.

Concurrent identical upgrades (same room, user and version) share one run, so a double
click makes one new room.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.defer import Deferred

from homeserver.errors import MatrixError, bad_json, forbidden
from homeserver.events.auth import may_send_state
from homeserver.events.event import Event
from homeserver.events.identifiers import is_valid_user_id
from homeserver.events.power_levels import parse_power_level
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.handlers.rooms.room_create import CreateRoomRequest, RoomCreationHandler
from homeserver.handlers.rooms.room_state import RoomStateHandler, check_room_id
from homeserver.pipeline import EventPipeline, EventSpec
from homeserver.server import Server
from storage.stores.aliases import AliasStore
from storage.stores.current_state import StateKey
from storage.stores.events import EventStore
from storage.stores.rooms import RoomStore

logger = logging.getLogger(__name__)

#: The state the new room starts with (the spec's list, plus bans and space children as Synapse copies).
COPIED_TYPES = (
    "m.room.server_acl", "m.room.encryption", "m.room.name", "m.room.avatar", "m.room.topic",
    "m.room.guest_access", "m.room.history_visibility", "m.room.join_rules", "m.room.canonical_alias",
)
COPIED_CREATE_KEYS = ("type", "m.federate")
RESTRICTED_KEYS = ("events_default", "invite")
TOMBSTONE_BODY = "This room has been replaced"
#: Levels are read as leniently as any room version allows ("50", 50.0) to compare them.
LENIENT = KNOWN_ROOM_VERSIONS["1"]


def parse_upgrade(body: dict[str, Any]) -> tuple[RoomVersion, tuple[str, ...]]:
    """(new version, additional creators) from the request body."""
    if "new_version" not in body:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing parameter: new_version")
    version_id = body["new_version"]
    if not isinstance(version_id, str):
        raise bad_json("new_version must be a string")
    if version_id not in KNOWN_ROOM_VERSIONS:
        raise MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION",
                          f"Room version {version_id!r} is not supported by this server")
    creators = body.get("additional_creators", [])
    if not isinstance(creators, list) or not all(isinstance(u, str) and is_valid_user_id(u) for u in creators):
        raise bad_json("additional_creators must be a list of user IDs")
    return KNOWN_ROOM_VERSIONS[version_id], tuple(dict.fromkeys(creators))


class RoomUpgradeHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.state = hs.get(RoomStateHandler)
        self.events = hs.get(EventStore)
        self.aliases = hs.get(AliasStore)
        self.rooms = hs.get(RoomStore)
        self.pipeline = hs.get(EventPipeline)
        self._running: dict[tuple[str, str, str], list[Deferred[str]]] = {}

    async def upgrade(self, user_id: str, room_id: str, version: RoomVersion,
                      additional_creators: tuple[str, ...] = ()) -> str:
        """Upgrade the room; returns the replacement room's ID."""
        check_room_id(room_id)
        key = (room_id, user_id, version.identifier)
        waiters = self._running.get(key)
        if waiters is not None:
            mine: Deferred[str] = Deferred()
            waiters.append(mine)
            return await mine
        waiters = self._running[key] = []
        try:
            new_room_id = await self._upgrade(user_id, room_id, version, additional_creators)
        except Exception as exc:
            del self._running[key]
            for waiter in waiters:
                waiter.errback(exc)
            raise
        del self._running[key]
        for waiter in waiters:
            waiter.callback(new_room_id)
        return new_room_id

    async def _upgrade(self, user_id: str, room_id: str, version: RoomVersion,
                       additional_creators: tuple[str, ...]) -> str:
        state = await self.state.get_current_state_events(room_id)
        auth_state = {key: stored.event for key, stored in state.items()}
        if not may_send_state(room_id, user_id, "m.room.tombstone", auth_state):
            raise forbidden("You cannot upgrade this room")
        request = await self._new_room_request(user_id, room_id, version, additional_creators, state)
        new_room_id, _ = await self.hs.get(RoomCreationHandler).create_room(user_id, request)
        moved = await self.aliases.move_aliases(room_id, new_room_id)
        old_room = await self.rooms.get_room(room_id)
        if old_room is not None and old_room.is_public:
            await self.rooms.set_public(new_room_id, True)
            await self.rooms.set_public(room_id, False)
        tombstone, *others = self._old_room_events(user_id, new_room_id, state, moved)
        await self.pipeline.submit_local(room_id, [tombstone])
        for spec in others:
            try:
                await self.pipeline.submit_local(room_id, [spec])
            except MatrixError as error:  # the room is upgraded; as Synapse, carry on
                logger.warning("upgrade of %s: could not send %s: %s", room_id, spec.event_type, error)
        return new_room_id

    async def _new_room_request(self, user_id: str, room_id: str, version: RoomVersion,
                                additional_creators: tuple[str, ...],
                                state: dict[StateKey, Any]) -> CreateRoomRequest:
        old_create = state[("m.room.create", "")].event
        creation: dict[str, Any] = {k: old_create.content[k] for k in COPIED_CREATE_KEYS
                                    if k in old_create.content}
        creation["predecessor"] = {"room_id": room_id, "event_id": await self._last_event_id(room_id)}
        creators = {user_id}
        if version.privileged_creators and additional_creators:
            creation["additional_creators"] = list(additional_creators)
            creators.update(additional_creators)
        initial, final = _power_levels(state, user_id, version, creators)
        copied = [(key[0], key[1], dict(stored.event.content)) for key, stored in state.items()
                  if _is_copied(key, stored.event.content, initial, user_id, version)]
        join_rule = state.get(("m.room.join_rules", ""))
        public = join_rule is not None and join_rule.event.content.get("join_rule") == "public"
        return CreateRoomRequest(
            preset="public_chat" if public else "private_chat", visibility="private", room_version=version,
            initial_state=(("m.room.power_levels", "", initial), *copied), creation_content=creation,
            preset_defaults=False, final_state=(("m.room.power_levels", "", final),) if final else (),
        )

    async def _last_event_id(self, room_id: str) -> str:
        current = await self.events.get_max_stream_position()
        (last,) = await self.events.get_room_events_between(room_id, 0, current, 1)
        return last.event_id

    def _old_room_events(self, user_id: str, new_room_id: str, state: dict[StateKey, Any],
                         moved: list[str]) -> list[EventSpec]:
        """The tombstone, the restricted power levels, and a canonical alias without the moved aliases."""
        specs = [EventSpec("m.room.tombstone", user_id,
                           {"body": TOMBSTONE_BODY, "replacement_room": new_room_id}, "")]
        power_levels = state.get(("m.room.power_levels", ""))
        if power_levels is not None:
            restricted = _restricted_power_levels(power_levels.event)
            if restricted is not None:
                specs.append(EventSpec("m.room.power_levels", user_id, restricted, ""))
        canonical = state.get(("m.room.canonical_alias", ""))
        if canonical is not None and moved:
            content = _without_aliases(canonical.event.content, set(moved))
            if content != canonical.event.content:
                specs.append(EventSpec("m.room.canonical_alias", user_id, content, ""))
        return specs


def _is_copied(key: StateKey, content: dict[str, Any], power_levels: dict[str, Any], user_id: str,
               version: RoomVersion) -> bool:
    event_type, state_key = key
    if event_type in COPIED_TYPES:
        return state_key == ""
    if event_type == "m.room.member":
        # A ban the auth rules would refuse (the target outranks the upgrader) is left behind.
        users = _users(power_levels)
        mine = _level(users.get(user_id), _level(power_levels.get("users_default"), 0))
        outranked = not version.privileged_creators and _level(users.get(state_key), 0) >= mine
        return content.get("membership") == "ban" and not outranked
    return event_type == "m.space.child" and bool(content)


def _power_levels(state: dict[StateKey, Any], user_id: str, version: RoomVersion,
                  creators: set[str]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The new room's power levels at creation, and the real ones to send last if they differ.

    The user needs enough power to send all the copied state (as in Synapse: raised for
    the creation, then put back). v12 creators have infinite power and may not be listed.
    """
    stored = state.get(("m.room.power_levels", ""))
    content: dict[str, Any] = dict(stored.event.content) if stored is not None else {}
    users = _users(content)
    if version.privileged_creators:
        content["users"] = {u: level for u, level in users.items() if u not in creators}
        return content, None
    levels = [_level(content.get(name), 50) for name in ("state_default", "ban")]
    events = content.get("events")
    if isinstance(events, dict):
        levels.extend(_level(value, 0) for value in events.values())
    needed = max(levels)
    if _level(users.get(user_id), _level(content.get("users_default"), 0)) >= needed:
        return content, None
    raised = {**content, "users": {**users, user_id: needed}}
    return raised, content


def _users(power_levels: dict[str, Any]) -> dict[str, Any]:
    users = power_levels.get("users")
    return users if isinstance(users, dict) else {}


def _level(value: Any, default: int) -> int:
    parsed = parse_power_level(value, LENIENT)
    return default if parsed is None else parsed


def _restricted_power_levels(power_levels: Event) -> dict[str, Any] | None:
    """Old room levels with events_default and invite raised above users_default (and to at least 50)."""
    content = dict(power_levels.content)
    restricted_level = max(_level(content.get("users_default"), 0) + 1, 50)
    changed = False
    for key in RESTRICTED_KEYS:
        if _level(content.get(key), 0) < restricted_level:
            content[key] = restricted_level
            changed = True
    return content if changed else None


def _without_aliases(content: dict[str, Any], moved: set[str]) -> dict[str, Any]:
    result = dict(content)
    if result.get("alias") in moved:
        del result["alias"]
    alt = result.get("alt_aliases")
    if isinstance(alt, list):
        result["alt_aliases"] = [a for a in alt if a not in moved]
        if not result["alt_aliases"]:
            del result["alt_aliases"]
    return result
