"""The authorization rules for events, for room versions 1-12.

Pure: the caller supplies the state to authorise against as a mapping from
(type, state_key) to Event (the event's auth events, or the state before it, as the
situation requires). The mapping must hold the create event when the caller has it,
also in v12 where the create event is not listed in `auth_events`.
Signature requirements (including `join_authorised_via_users_server`) are checked by
`signing.verify_event_signatures`, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from homeserver.events.auth_errors import AuthError
from homeserver.events.auth_membership import check_membership, membership_of
from homeserver.events.event import Event
from homeserver.events.identifiers import is_valid_user_id, server_name_of
from homeserver.events.power_levels import (
    CREATE_KEY,
    JOIN_RULES_KEY,
    NAMED_LEVELS,
    POWER_LEVELS_KEY,
    AuthEvents,
    PowerLevel,
    StateKey,
    get_named_level,
    get_required_event_level,
    get_user_power_level,
    parse_power_level,
    room_creators,
)
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

__all__ = [
    "AuthError",
    "auth_types_for_event",
    "check_auth_events_selection",
    "check_auth_rules",
    "may_send_state",
    "get_user_power_level",
    "listed_auth_types_for_event",
    "should_apply_redaction",
]


def auth_types_for_event(event: Event) -> set[StateKey]:
    """The state entries needed to authorise `event` ("auth events selection").

    Includes the create event in every room version, because the rules need it;
    see `listed_auth_types_for_event` for what may be listed in a v12 PDU.
    """
    if event.type == "m.room.create":
        return set()
    types: set[StateKey] = {CREATE_KEY, POWER_LEVELS_KEY, ("m.room.member", event.sender)}
    if event.type == "m.room.member" and event.state_key is not None:
        types.add(("m.room.member", event.state_key))
        membership = event.membership
        if membership in ("join", "invite", "knock"):
            types.add(JOIN_RULES_KEY)
        if membership == "invite":
            third_party_invite = event.content.get("third_party_invite")
            if isinstance(third_party_invite, dict):
                signed = third_party_invite.get("signed")
                if isinstance(signed, dict) and isinstance(signed.get("token"), str):
                    types.add(("m.room.third_party_invite", signed["token"]))
        if membership == "join" and event.room_version.restricted_join_rule:
            authoriser = event.content.get("join_authorised_via_users_server")
            if isinstance(authoriser, str):
                types.add(("m.room.member", authoriser))
    return types


def listed_auth_types_for_event(event: Event) -> set[StateKey]:
    """The state entries that may appear in the PDU's `auth_events` (no create in v12)."""
    types = auth_types_for_event(event)
    if event.room_version.room_id_is_create_event_hash:
        types.discard(CREATE_KEY)
    return types


def check_auth_events_selection(event: Event, listed_auth_events: Iterable[Event]) -> None:
    """Rules on the PDU's own `auth_events` list (duplicates, wrong entries, wrong room).

    Whether the listed events were themselves rejected is for the caller to know.
    """
    allowed = listed_auth_types_for_event(event)
    seen: set[StateKey] = set()
    for auth_event in listed_auth_events:
        if auth_event.state_key is None:
            raise AuthError(f"auth event {auth_event.event_id} is not a state event")
        key = (auth_event.type, auth_event.state_key)
        if key in seen:
            raise AuthError(f"duplicate auth event for {key}")
        seen.add(key)
        if key not in allowed:
            raise AuthError(f"auth event {auth_event.event_id} {key} is not a selected type")
        if auth_event.room_id != event.room_id:
            raise AuthError(f"auth event {auth_event.event_id} is from another room")
    if not event.room_version.room_id_is_create_event_hash and event.type != "m.room.create":
        if CREATE_KEY not in seen:
            raise AuthError("no m.room.create event among the auth events")


def check_auth_rules(event: Event, auth_events: Mapping[StateKey, Event]) -> None:
    """Raise AuthError unless `event` is allowed given the state in `auth_events`."""
    room_version = event.room_version
    if event.type == "m.room.create":
        _check_create(event)
        return

    create = auth_events.get(CREATE_KEY)
    if create is None:
        raise AuthError("no m.room.create event in the auth events")
    if room_version.room_id_is_create_event_hash:
        if event.room_id != "!" + create.event_id[1:]:
            raise AuthError("room_id is not derived from the room's create event")
    for key in auth_types_for_event(event):
        auth_event = auth_events.get(key)
        if auth_event is not None and auth_event.room_id != event.room_id:
            raise AuthError(f"auth event {auth_event.event_id} is from another room")

    if create.content.get("m.federate", True) is False:
        if _domain(event.sender) != _domain(create.sender):
            raise AuthError("room is not federated and sender is from another server")

    if room_version.special_case_aliases_auth and event.type == "m.room.aliases":
        if event.state_key is None:
            raise AuthError("m.room.aliases without a state_key")
        if event.state_key != _domain(event.sender):
            raise AuthError("m.room.aliases state_key is not the sender's domain")
        return

    if event.type == "m.room.member":
        check_membership(event, auth_events)
        return

    if membership_of(event.sender, auth_events) != "join":
        raise AuthError("sender is not joined to the room")
    sender_level = get_user_power_level(event.sender, auth_events)

    if event.type == "m.room.third_party_invite":
        if sender_level < get_named_level("invite", auth_events):
            raise AuthError("m.room.third_party_invite: sender is below the invite level")
        return

    required = get_required_event_level(event.type, event.is_state(), auth_events)
    if required > sender_level:
        raise AuthError(f"sender power level {sender_level} is below {required} for {event.type}")

    if event.state_key is not None and event.state_key.startswith("@"):
        if event.state_key != event.sender:
            raise AuthError("state_key starting with @ must be the sender")

    if event.type == "m.room.power_levels":
        _check_power_levels(event, auth_events, sender_level)
        return

    if room_version.redaction_rule_in_auth and event.type == "m.room.redaction":
        _check_v1_redaction(event, auth_events, sender_level)


def may_send_state(room_id: str, sender: str, event_type: str, state: Mapping[StateKey, Event]) -> bool:
    """Would the auth rules accept an empty ``event_type`` state event (state key "") from ``sender``
    against ``state``? For permission questions asked before building a real event."""
    create = state.get(CREATE_KEY)
    if create is None:
        return False
    probe = Event(pdu={"type": event_type, "state_key": "", "sender": sender, "content": {},
                       "room_id": room_id, "prev_events": [], "auth_events": []},
                  event_id="$probe", room_version=create.room_version)
    try:
        check_auth_rules(probe, state)
    except AuthError:
        return False
    return True


def _domain(identifier: str) -> str | None:
    try:
        return server_name_of(identifier)
    except ValueError:
        return None


def _check_create(event: Event) -> None:
    room_version = event.room_version
    if event.prev_event_ids:
        raise AuthError("m.room.create has prev_events")
    if room_version.room_id_is_create_event_hash:
        if "room_id" in event.pdu:
            raise AuthError("m.room.create must not have a room_id in this room version")
    else:
        room_domain = _domain(event.room_id)
        if room_domain is None or room_domain != _domain(event.sender):
            raise AuthError("m.room.create room_id domain does not match the sender's")
    content = event.content
    if "room_version" in content:
        declared = content["room_version"]
        if not isinstance(declared, str) or declared not in KNOWN_ROOM_VERSIONS:
            raise AuthError(f"m.room.create has unknown room_version {declared!r}")
    if not room_version.implicit_room_creator and "creator" not in content:
        raise AuthError("m.room.create has no creator")
    if room_version.privileged_creators and "additional_creators" in content:
        additional = content["additional_creators"]
        if not isinstance(additional, list) or not all(
            isinstance(user_id, str) and is_valid_user_id(user_id) for user_id in additional
        ):
            raise AuthError("m.room.create additional_creators must be a list of user IDs")


def _check_v1_redaction(event: Event, auth_events: AuthEvents, sender_level: PowerLevel) -> None:
    """v1-2 rule 11: redact level, or the same event-ID domain as the redacted event."""
    if sender_level >= get_named_level("redact", auth_events):
        return
    redacts = event.redacts
    if redacts is not None and _domain(redacts) is not None:
        if _domain(redacts) == _domain(event.event_id):
            return
    raise AuthError("m.room.redaction: below the redact level and not the same server")


def _parsed_mapping(
    value: Any, room_version: RoomVersion, what: str, user_keys: bool = False
) -> dict[str, int]:
    """Validate an `events`/`notifications`/`users` object and parse its values."""
    if not isinstance(value, dict):
        raise AuthError(f"m.room.power_levels: {what} is not an object")
    parsed: dict[str, int] = {}
    for key, level in value.items():
        if user_keys and not is_valid_user_id(key):
            raise AuthError(f"m.room.power_levels: {key!r} in users is not a user ID")
        number = parse_power_level(level, room_version)
        if number is None:
            raise AuthError(f"m.room.power_levels: {what}[{key!r}] is not an integer")
        parsed[key] = number
    return parsed


def _parsed_levels(content: Mapping[str, Any], room_version: RoomVersion) -> dict[str, Any]:
    """Validate a power_levels content (rules 10.1-10.3) into parsed integers.

    Result keys: the named levels present, plus `events`, `notifications`, `users` dicts.
    """
    parsed: dict[str, Any] = {}
    for name in NAMED_LEVELS:
        if name in content:
            number = parse_power_level(content[name], room_version)
            if number is None:
                raise AuthError(f"m.room.power_levels: {name} is not an integer")
            parsed[name] = number
    for name in ("events", "notifications"):
        parsed[name] = _parsed_mapping(content[name], room_version, name) if name in content else {}
    parsed["users"] = (
        _parsed_mapping(content["users"], room_version, "users", user_keys=True)
        if "users" in content
        else {}
    )
    return parsed


def _check_power_levels(event: Event, auth_events: AuthEvents, sender_level: PowerLevel) -> None:
    room_version = event.room_version
    new = _parsed_levels(event.content, room_version)

    create = auth_events[CREATE_KEY]
    if room_version.privileged_creators:
        listed_creators = room_creators(create) & set(new["users"])
        if listed_creators:
            raise AuthError(
                f"m.room.power_levels: creators {sorted(listed_creators)} may not be in users"
            )

    current_event = auth_events.get(POWER_LEVELS_KEY)
    if current_event is None:
        return
    old = _parsed_levels_lenient(current_event)

    for name in NAMED_LEVELS:
        old_value, new_value = old.get(name), new.get(name)
        if old_value == new_value:
            continue
        if old_value is not None and old_value > sender_level:
            raise AuthError(f"m.room.power_levels: cannot change {name} from above own level")
        if new_value is not None and new_value > sender_level:
            raise AuthError(f"m.room.power_levels: cannot set {name} above own level")

    mapping_names = ["events"]
    if room_version.limit_notifications_power_levels:
        mapping_names.append("notifications")
    for name in mapping_names:
        _check_mapping_changes(name, old[name], new[name], sender_level, own_key=None)
    _check_mapping_changes("users", old["users"], new["users"], sender_level, event.sender)


def _parsed_levels_lenient(current_event: Event) -> dict[str, Any]:
    """Parse the current (already accepted) power levels, dropping unparsable values."""
    room_version = current_event.room_version
    content = current_event.content
    parsed: dict[str, Any] = {}
    for name in NAMED_LEVELS:
        number = parse_power_level(content.get(name), room_version)
        if number is not None:
            parsed[name] = number
    for name in ("events", "notifications", "users"):
        value = content.get(name)
        parsed[name] = {}
        if isinstance(value, dict):
            for key, level in value.items():
                number = parse_power_level(level, room_version)
                if number is not None:
                    parsed[name][key] = number
    return parsed


def _check_mapping_changes(
    name: str,
    old: Mapping[str, int],
    new: Mapping[str, int],
    sender_level: PowerLevel,
    own_key: str | None,
) -> None:
    """Rules for entries of `events`/`notifications` (own_key None) and `users`.

    Changed or removed entries: the current value must not exceed the sender's level
    (for other users' entries: must be strictly below it). Added or changed entries:
    the new value must not exceed the sender's level.
    """
    for key in old.keys() | new.keys():
        old_value, new_value = old.get(key), new.get(key)
        if old_value == new_value:
            continue
        if old_value is not None and key != own_key:
            if name == "users":
                if old_value >= sender_level:
                    raise AuthError(
                        f"m.room.power_levels: cannot change {key}, whose level is not below yours"
                    )
            elif old_value > sender_level:
                raise AuthError(f"m.room.power_levels: cannot change {name}[{key!r}] from above")
        if new_value is not None and new_value > sender_level:
            raise AuthError(f"m.room.power_levels: cannot set {name}[{key!r}] above own level")


def should_apply_redaction(redaction: Event, original: Event, auth_events: AuthEvents) -> bool:
    """Whether an accepted redaction may take effect on `original` ("Handling redactions").

    From v3 the auth rules accept every redaction that meets the send level; it applies
    only if the redacter has the redact level or shares the original sender's server.
    In v1-2 that decision is auth rule 11, so an accepted redaction always applies.
    `auth_events` is the state at the redaction (for the power levels).
    """
    if redaction.redacts != original.event_id or redaction.room_id != original.room_id:
        return False
    return redaction_applies_to(redaction_is_privileged(redaction, auth_events), redaction.sender,
                                original.sender)


def redaction_is_privileged(redaction: Event, auth_events: AuthEvents) -> bool:
    """Whether an accepted redaction applies whoever sent its target: the redact level, or a room
    version whose auth rules already decided (v1-2). Known before the target is, so a redaction
    whose target arrives later is decided then with `redaction_applies_to`."""
    if redaction.room_version.redaction_rule_in_auth:
        return True
    return get_user_power_level(redaction.sender, auth_events) >= get_named_level("redact", auth_events)


def redaction_applies_to(privileged: bool, redaction_sender: str, original_sender: str) -> bool:
    """The rest of "Handling redactions": without the level, only the target's own server's users."""
    if privileged:
        return True
    sender_domain = _domain(redaction_sender)
    return sender_domain is not None and sender_domain == _domain(original_sender)
