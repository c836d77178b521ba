"""POST /createRoom: the event sequence a new room starts with.

Order (as the spec and Synapse do it): m.room.create, the creator's join, power
levels, canonical alias, join rules, history visibility, guest access, the client's
initial_state, name, topic, then invites. All of it is one submission to the room
pipeline, so a room is created whole or not at all.

As in Synapse: creating a room counts against ``rc_room_creation`` and
``rc_message``; more invitees than ``rc_invites.per_room`` allows at once is a
400; a requested alias must pass ``alias_creation_rules``; and a room asked to
be public that ``room_list_publication_rules`` do not allow is created but not
published (server admins may always publish).
"""

from __future__ import annotations

import secrets
from typing import Any

import attrs

from homeserver.config.rooms import rules_allow
from homeserver.errors import MatrixError, bad_json, invalid_param
from homeserver.events.builder import ServerSigningKey, build_event
from homeserver.events.identifiers import is_valid_room_alias, is_valid_user_id, server_name_of
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.handlers.accounts.restrictions import check_not_suspended
from homeserver.handlers.ratelimit import RateLimiters, ratelimit_all
from homeserver.handlers.rooms.content_validation import validate_state_content
from homeserver.handlers.rooms.membership import member_content
from homeserver.handlers.rooms.retention import RETENTION_EVENT, RetentionHandler
from homeserver.pipeline import EventPipeline, EventSpec, NewRoom
from homeserver.server import Server
from storage.stores.aliases import AliasStore
from storage.stores.rooms import RoomRow

PRESETS = ("private_chat", "trusted_private_chat", "public_chat")


@attrs.frozen
class PresetConfig:
    join_rule: str
    history_visibility: str
    guest_can_join: bool
    invitees_are_admins: bool


PRESET_CONFIG = {
    "private_chat": PresetConfig("invite", "shared", True, False),
    "trusted_private_chat": PresetConfig("invite", "shared", True, True),
    "public_chat": PresetConfig("public", "shared", False, False),
}

DEFAULT_EVENT_LEVELS = {
    "m.room.name": 50,
    "m.room.power_levels": 100,
    "m.room.history_visibility": 100,
    "m.room.canonical_alias": 50,
    "m.room.avatar": 50,
    "m.room.tombstone": 100,
    "m.room.server_acl": 100,
    "m.room.encryption": 100,
}


@attrs.frozen
class CreateRoomRequest:
    """A validated createRoom body."""

    preset: str
    visibility: str
    room_version: RoomVersion
    name: str | None = None
    topic: str | None = None
    invite: tuple[str, ...] = ()
    initial_state: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    room_alias_name: str | None = None
    creation_content: dict[str, Any] = attrs.field(factory=dict)
    power_level_content_override: dict[str, Any] | None = None
    is_direct: bool = False
    #: False for a room upgrade: the state comes from the old room, not from the preset.
    preset_defaults: bool = True
    #: State sent last, after the invites (a room upgrade's real power levels).
    final_state: tuple[tuple[str, str, dict[str, Any]], ...] = ()


def parse_create_room(body: dict[str, Any], default_version: str) -> CreateRoomRequest:
    """Validate the JSON body; raises 400s with the spec's error codes."""
    visibility = body.get("visibility", "private")
    if visibility not in ("public", "private"):
        raise bad_json("visibility must be 'public' or 'private'")
    preset = body.get("preset")
    if preset is None:
        preset = "public_chat" if visibility == "public" else "private_chat"
    if preset not in PRESETS:
        raise bad_json(f"preset must be one of {', '.join(PRESETS)}")
    version_id = body.get("room_version", default_version)
    if not isinstance(version_id, str):
        raise bad_json("room_version must be a string")
    if version_id not in KNOWN_ROOM_VERSIONS:
        raise MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION",
                          f"Room version {version_id!r} is not supported by this server")
    name, topic, alias_name = (_optional_str(body, k) for k in ("name", "topic", "room_alias_name"))
    invite = body.get("invite", [])
    if not isinstance(invite, list) or not all(isinstance(u, str) and is_valid_user_id(u) for u in invite):
        raise bad_json("invite must be a list of user IDs")
    initial_state = body.get("initial_state", [])
    if not isinstance(initial_state, list):
        raise bad_json("initial_state must be a list")
    parsed_state = []
    for item in initial_state:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise bad_json("initial_state entries need a string type")
        state_key = item.get("state_key", "")
        content = item.get("content")
        if not isinstance(state_key, str) or not isinstance(content, dict):
            raise bad_json("initial_state entries need a string state_key and an object content")
        validate_state_content(item["type"], content)
        parsed_state.append((item["type"], state_key, content))
    creation_content = body.get("creation_content")
    creation_content = {} if creation_content is None else creation_content
    if not isinstance(creation_content, dict):
        raise bad_json("creation_content must be an object")
    override = body.get("power_level_content_override")
    if override is not None:
        if not isinstance(override, dict):
            raise bad_json("power_level_content_override must be an object")
        validate_state_content("m.room.power_levels", override)
    is_direct = body.get("is_direct", False)
    if not isinstance(is_direct, bool):
        raise bad_json("is_direct must be a boolean")
    return CreateRoomRequest(
        preset=preset, visibility=visibility, room_version=KNOWN_ROOM_VERSIONS[version_id],
        name=name, topic=topic, invite=tuple(dict.fromkeys(invite)), initial_state=tuple(parsed_state),
        room_alias_name=alias_name, creation_content=creation_content,
        power_level_content_override=override, is_direct=is_direct,
    )


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_json(f"{key} must be a string")
    return value


class RoomCreationHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.key: ServerSigningKey = hs.signing_key
        self._last_create_ts = 0
        self.pipeline = hs.get(EventPipeline)
        self.aliases = hs.get(AliasStore)
        self.limits = hs.get(RateLimiters)
        self.config = hs.config

    async def create_room(self, user_id: str, request: CreateRoomRequest, *, is_admin: bool = False,
                          ratelimit: bool = True, shadow_banned: bool = False) -> tuple[str, str | None]:
        """Create the room; returns (room_id, alias or None). A shadow-banned creator's
        room is made without the invites (handlers/rooms/shadow_ban.py)."""
        if shadow_banned:
            request = attrs.evolve(request, invite=())
        if ratelimit:
            await check_not_suspended(self.hs, user_id)
        for event_type, _, content in request.initial_state:
            if event_type == RETENTION_EVENT:
                self.hs.get(RetentionHandler).check_policy(content)
        if ratelimit:
            ratelimit_all((self.limits.room_creation, user_id), (self.limits.message, user_id))
        if self.limits.invites_per_room.exceeds_burst(len(request.invite)):
            raise MatrixError(400, "M_UNKNOWN", "Cannot invite so many users at once")
        alias = await self._check_alias(request.room_alias_name)
        for invitee in request.invite:
            if server_name_of(invitee) != self.server_name:
                raise MatrixError(403, "M_FORBIDDEN",
                                  "Inviting users on other servers is not supported yet")
        preset = PRESET_CONFIG[request.preset]
        version = request.room_version
        create = self._build_create(user_id, request, preset)
        room_id = create.room_id
        state = {(t, k): c for t, k, c in request.initial_state}
        specs = [EventSpec("m.room.create", user_id, dict(create.content), "", prebuilt=create)]
        join_content = await member_content(self.hs, user_id, "join")
        specs.append(EventSpec("m.room.member", user_id, join_content, user_id))
        power_levels = state.pop(("m.room.power_levels", ""), None)
        if power_levels is None:
            power_levels = self._power_levels(user_id, request, preset, version)
        specs.append(EventSpec("m.room.power_levels", user_id, power_levels, ""))
        if alias is not None and ("m.room.canonical_alias", "") not in state:
            specs.append(EventSpec("m.room.canonical_alias", user_id, {"alias": alias}, ""))
        defaults = [
            ("m.room.join_rules", {"join_rule": preset.join_rule}),
            ("m.room.history_visibility", {"history_visibility": preset.history_visibility}),
        ]
        if preset.guest_can_join:
            defaults.append(("m.room.guest_access", {"guest_access": "can_join"}))
        for event_type, content in defaults if request.preset_defaults else []:
            if (event_type, "") not in state:
                specs.append(EventSpec(event_type, user_id, content, ""))
        for (event_type, state_key), content in state.items():
            specs.append(EventSpec(event_type, user_id, content, state_key))
        if request.name is not None:
            specs.append(EventSpec("m.room.name", user_id, {"name": request.name}, ""))
        if request.topic is not None:
            topic = {"topic": request.topic,
                     "m.topic": {"m.text": [{"body": request.topic, "mimetype": "text/plain"}]}}
            specs.append(EventSpec("m.room.topic", user_id, topic, ""))
        for invitee in request.invite:
            invite = await member_content(self.hs, invitee, "invite")
            if request.is_direct:
                invite["is_direct"] = True
            specs.append(EventSpec("m.room.member", user_id, invite, invitee))
        for event_type, state_key, content in request.final_state:
            specs.append(EventSpec(event_type, user_id, content, state_key))
        if alias is not None and not rules_allow(self.config.alias_creation_rules, user_id, room_id, [alias],
                                                 unset_allows=True):
            raise MatrixError(403, "M_FORBIDDEN", "Not allowed to create alias")
        publish = request.visibility == "public" and (is_admin or rules_allow(
            self.config.room_list_publication_rules, user_id, room_id, [alias] if alias else [],
            unset_allows=False))
        room = RoomRow(room_id, version.identifier, user_id, publish)
        await self.pipeline.submit_local(room_id, specs, NewRoom(room, alias))
        return room_id, alias

    async def _check_alias(self, alias_name: str | None) -> str | None:
        if alias_name is None:
            return None
        alias = f"#{alias_name}:{self.server_name}"
        if not alias_name or any(c in alias_name for c in ": \t\n") or not is_valid_room_alias(alias):
            raise invalid_param(f"{alias_name!r} is not a valid alias name")
        if await self.aliases.get_alias(alias) is not None:
            raise MatrixError(400, "M_ROOM_IN_USE", "Room alias already taken")
        return alias

    def _build_create(self, user_id: str, request: CreateRoomRequest, preset: PresetConfig) -> Any:
        version = request.room_version
        content = dict(request.creation_content)
        content["room_version"] = version.identifier
        if not version.implicit_room_creator:
            content["creator"] = user_id
        else:
            content.pop("creator", None)
        if version.privileged_creators and preset.invitees_are_admins and request.invite:
            extra = content.get("additional_creators", [])
            extra = extra if isinstance(extra, list) else []
            content["additional_creators"] = list(dict.fromkeys([*extra, *request.invite]))
        room_id = None
        if not version.room_id_is_create_event_hash:
            room_id = f"!{secrets.token_urlsafe(18)}:{self.server_name}"
        try:
            return build_event(
                room_version=version, event_type="m.room.create", sender=user_id, content=content,
                room_id=room_id, prev_event_ids=[], auth_event_ids=[], depth=1,
                origin_server_ts=self._next_create_ts(), key=self.key, state_key="",
            )
        except (TypeError, ValueError) as exc:
            raise bad_json(f"Invalid creation_content: {exc}") from None

    def _next_create_ts(self) -> int:
        """A timestamp later than any create event made before.

        From v12 the room ID is the create event's hash, so two identical
        createRoom calls in the same millisecond would otherwise collide.
        """
        self._last_create_ts = max(int(self.hs.clock.seconds() * 1000), self._last_create_ts + 1)
        return self._last_create_ts

    def _power_levels(self, user_id: str, request: CreateRoomRequest, preset: PresetConfig,
                      version: RoomVersion) -> dict[str, Any]:
        users: dict[str, int] = {}
        if not version.privileged_creators:
            users[user_id] = 100
            if preset.invitees_are_admins:
                users.update({invitee: 100 for invitee in request.invite})
        content: dict[str, Any] = {
            "users": users,
            "users_default": 0,
            "events": dict(DEFAULT_EVENT_LEVELS),
            "events_default": 0,
            "state_default": 50,
            "ban": 50,
            "kick": 50,
            "redact": 50,
            "invite": 50,
            "historical": 100,
        }
        if request.power_level_content_override:
            content.update(request.power_level_content_override)
        return content
