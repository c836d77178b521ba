"""The registry of room versions 1-12 and the behaviour flags that differ between them.

Code elsewhere asks a flag ("does this version have knocking?") rather than comparing
version strings, so adding or auditing a version means reading one table.
"""

from __future__ import annotations

import enum

import attrs


class EventFormat(enum.Enum):
    """How event IDs are formed and how prev/auth events are listed in a PDU."""

    #: v1-2: `$opaque:server`, carried in the PDU; prev/auth events are `[id, {hashes}]` pairs.
    V1 = 1
    #: v3: `$` + standard unpadded base64 of the reference hash; plain ID lists.
    V2 = 2
    #: v4+: like V2 but URL-safe unpadded base64.
    V3 = 3


class RedactionAlgorithm(enum.Enum):
    """Which table of kept keys the redaction algorithm uses (spec rooms fragments)."""

    V1 = 1  # v1-5
    V6 = 6  # v6-8: m.room.aliases no longer keeps `aliases`
    V9 = 9  # v9-10: keeps restricted-join keys
    V11 = 11  # v11-12: drops origin/membership/prev_state, keeps all create content, ...


class StateResAlgorithm(enum.Enum):
    V1 = 1
    V2 = 2
    V2_1 = 3  # MSC4297, room version 12


@attrs.frozen(slots=True)
class RoomVersion:
    """Everything that varies between room versions, as named flags."""

    identifier: str
    event_format: EventFormat
    redaction_algorithm: RedactionAlgorithm
    state_res: StateResAlgorithm
    #: v1-2: the redaction rule is part of the auth rules (rule 11); v3+: handled after auth.
    redaction_rule_in_auth: bool
    #: v5+: a signing key's valid_until_ts must cover the event's origin_server_ts.
    enforce_key_validity: bool
    #: v6+: integers only, within [-(2**53)+1, 2**53-1]; no floats.
    strict_canonical_json: bool
    #: v1-5: the m.room.aliases auth rule (state_key must be the sender's domain).
    special_case_aliases_auth: bool
    #: v6+: changes to power_levels `notifications` are checked against the sender's level.
    limit_notifications_power_levels: bool
    #: v7+
    knock_join_rule: bool
    #: v8+
    restricted_join_rule: bool
    #: v10+
    knock_restricted_join_rule: bool
    #: v10+: power level values must be integers (no "stringy" levels).
    enforce_int_power_levels: bool
    #: v11+: m.room.create has no `creator`; the create event's sender is the creator.
    implicit_room_creator: bool
    #: v11+: m.room.redaction carries `redacts` in its content.
    redacts_in_content: bool
    #: v12: room ID is `!` + the create event's ID hash; the create event has no room_id
    #: and is never listed in auth_events.
    room_id_is_create_event_hash: bool
    #: v12: `additional_creators` in the create content; creators have infinite power.
    privileged_creators: bool

    @property
    def event_id_carried_in_pdu(self) -> bool:
        """v1-2 events carry their own `event_id`; later versions compute it."""
        return self.event_format is EventFormat.V1

    @property
    def event_id_server_must_sign(self) -> bool:
        """v1-2 also require a signature from the event ID's server."""
        return self.event_format is EventFormat.V1


def _build(n: int) -> RoomVersion:
    if n <= 2:
        event_format = EventFormat.V1
    elif n == 3:
        event_format = EventFormat.V2
    else:
        event_format = EventFormat.V3
    if n <= 5:
        redaction = RedactionAlgorithm.V1
    elif n <= 8:
        redaction = RedactionAlgorithm.V6
    elif n <= 10:
        redaction = RedactionAlgorithm.V9
    else:
        redaction = RedactionAlgorithm.V11
    if n == 1:
        state_res = StateResAlgorithm.V1
    elif n <= 11:
        state_res = StateResAlgorithm.V2
    else:
        state_res = StateResAlgorithm.V2_1
    return RoomVersion(
        identifier=str(n),
        event_format=event_format,
        redaction_algorithm=redaction,
        state_res=state_res,
        redaction_rule_in_auth=n <= 2,
        enforce_key_validity=n >= 5,
        strict_canonical_json=n >= 6,
        special_case_aliases_auth=n <= 5,
        limit_notifications_power_levels=n >= 6,
        knock_join_rule=n >= 7,
        restricted_join_rule=n >= 8,
        knock_restricted_join_rule=n >= 10,
        enforce_int_power_levels=n >= 10,
        implicit_room_creator=n >= 11,
        redacts_in_content=n >= 11,
        room_id_is_create_event_hash=n >= 12,
        privileged_creators=n >= 12,
    )


class RoomVersions:
    """Named constants, for readable code and tests (`RoomVersions.V12`)."""

    V1 = _build(1)
    V2 = _build(2)
    V3 = _build(3)
    V4 = _build(4)
    V5 = _build(5)
    V6 = _build(6)
    V7 = _build(7)
    V8 = _build(8)
    V9 = _build(9)
    V10 = _build(10)
    V11 = _build(11)
    V12 = _build(12)


KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    v.identifier: v
    for v in (
        RoomVersions.V1,
        RoomVersions.V2,
        RoomVersions.V3,
        RoomVersions.V4,
        RoomVersions.V5,
        RoomVersions.V6,
        RoomVersions.V7,
        RoomVersions.V8,
        RoomVersions.V9,
        RoomVersions.V10,
        RoomVersions.V11,
        RoomVersions.V12,
    )
}

DEFAULT_ROOM_VERSION = "12"
