"""Auth rules for m.room.power_levels, and power level value parsing per room version."""

from __future__ import annotations

import pytest

from homeserver.events.auth import AuthError
from homeserver.events.power_levels import parse_power_level
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from tests.events.room_factory import ALICE, BOB, CAROL, Room, versions

ALL = versions()


@pytest.mark.parametrize(
    ("value", "up_to_v5", "up_to_v9", "from_v10"),
    [
        (50, 50, 50, 50),
        ("50", 50, 50, None),
        (" +050 ", 50, 50, None),
        ("-7", -7, -7, None),
        ("5.5", None, None, None),
        ("1e2", None, None, None),
        (50.9, 50, None, None),
        (-3.7, -3, None, None),
        (float("inf"), None, None, None),
        (True, None, None, None),
        (None, None, None, None),
        ([50], None, None, None),
    ],
)
def test_parse_power_level(
    value: object, up_to_v5: object, up_to_v9: object, from_v10: object
) -> None:
    for version, expected in (("1", up_to_v5), ("5", up_to_v5), ("6", up_to_v9), ("9", up_to_v9),
                              ("10", from_v10), ("12", from_v10)):  # fmt: skip
        assert parse_power_level(value, KNOWN_ROOM_VERSIONS[version]) == expected, version


def _pl_room(version: str, **levels: object) -> Room:
    room = Room(version)
    room.join(BOB)
    room.join(CAROL)
    room.set_levels(**levels)
    return room


@pytest.mark.parametrize("version", ALL)
def test_initial_power_levels_allowed(version: str) -> None:
    room = Room(version, bootstrap=False)
    room.add(room.member(ALICE, "join", prev=[room.create.event_id]))
    users = {} if room.room_version.privileged_creators else {ALICE: 100}
    room.check(room.power_levels({"users": {**users, BOB: 100}, "ban": 1000}))


@pytest.mark.parametrize("version", ALL)
def test_stringy_values(version: str) -> None:
    room = _pl_room(version, users={BOB: 60})
    stringy = room.power_levels({"users": {BOB: "50"}, "ban": "50"}, sender=BOB)
    if room.room_version.enforce_int_power_levels:
        with pytest.raises(AuthError, match="not an integer"):
            room.check(stringy)
    else:
        room.check(stringy)


@pytest.mark.parametrize("version", versions(lambda v: v.enforce_int_power_levels))
@pytest.mark.parametrize(
    "content",
    [
        {"kick": "50"},
        {"invite": True},
        {"events": {"m.room.name": "50"}},
        {"events": []},
        {"notifications": {"room": "50"}},
        {"notifications": 5},
        {"users": {BOB: "10"}},
    ],
)
def test_integer_only_power_levels(version: str, content: dict) -> None:
    room = _pl_room(version, users={BOB: 60})
    with pytest.raises(AuthError, match="not an (integer|object)"):
        room.check(room.power_levels(content, sender=BOB))


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("users", [{"bob": 10}, [BOB], {BOB: "ten"}])
def test_users_must_map_user_ids_to_integers(version: str, users: object) -> None:
    room = _pl_room(version, users={BOB: 60})
    with pytest.raises(AuthError, match="users"):
        room.check(room.power_levels({"users": users}, sender=BOB))


@pytest.mark.parametrize("version", ALL)
def test_named_levels(version: str) -> None:
    room = _pl_room(version, users={BOB: 50}, ban=50, kick=70)
    base = {"users": {BOB: 50}, "kick": 70}
    room.check(room.power_levels({**base, "ban": 40}, sender=BOB))  # lower a level we reach
    room.check(room.power_levels({**base, "redact": 50}, sender=BOB))  # add at own level
    with pytest.raises(AuthError, match="cannot set ban above"):
        room.check(room.power_levels({**base, "ban": 51}, sender=BOB))
    with pytest.raises(AuthError, match="cannot change kick from above"):
        room.check(room.power_levels({**base, "kick": 10}, sender=BOB))
    with pytest.raises(AuthError, match="cannot change kick from above"):
        room.check(room.power_levels({"users": {BOB: 50}}, sender=BOB))  # removing kick


@pytest.mark.parametrize("version", ALL)
def test_events_entries(version: str) -> None:
    room = _pl_room(version, users={BOB: 50}, events={"m.room.name": 60, "m.room.topic": 10})
    base = {"users": {BOB: 50}, "events": {"m.room.name": 60, "m.room.topic": 10}}
    room.check(room.power_levels({**base, "events": {"m.room.name": 60, "m.room.topic": 50}}, BOB))
    with pytest.raises(AuthError, match="cannot set events"):
        room.check(
            room.power_levels({**base, "events": {"m.room.name": 60, "m.room.topic": 51}}, BOB)
        )
    with pytest.raises(AuthError, match="from above"):
        room.check(room.power_levels({**base, "events": {"m.room.topic": 10}}, BOB))


@pytest.mark.parametrize("version", ALL)
def test_notifications_entries(version: str) -> None:
    room = _pl_room(version, users={BOB: 50}, notifications={"room": 100})
    lowered = room.power_levels({"users": {BOB: 50}, "notifications": {"room": 0}}, BOB)
    if room.room_version.limit_notifications_power_levels:
        with pytest.raises(AuthError, match="from above"):
            room.check(lowered)
    else:
        room.check(lowered)


@pytest.mark.parametrize("version", ALL)
def test_users_entries(version: str) -> None:
    room = _pl_room(version, users={BOB: 50, CAROL: 50})
    users = {BOB: 50, CAROL: 50}
    with pytest.raises(AuthError, match="not below yours"):
        room.check(room.power_levels({"users": {**users, CAROL: 0}}, BOB))  # demote a peer
    with pytest.raises(AuthError, match="not below yours"):
        room.check(room.power_levels({"users": {BOB: 50}}, BOB))  # remove a peer
    room.check(room.power_levels({"users": {**users, BOB: 10}}, BOB))  # demote self
    room.check(room.power_levels({"users": {**users, "@new:d.example": 50}}, BOB))
    with pytest.raises(AuthError, match="above own level"):
        room.check(room.power_levels({"users": {**users, "@new:d.example": 51}}, BOB))
    with pytest.raises(AuthError, match="above own level"):
        room.check(room.power_levels({"users": {**users, BOB: 51}}, BOB))  # promote self
    room.set_levels(users={BOB: 50, CAROL: 20})
    room.check(room.power_levels({"users": {BOB: 50}}, BOB))  # remove a lower user


@pytest.mark.parametrize("version", ALL)
def test_creators_in_users_map(version: str) -> None:
    room = Room(version, create_content={"additional_creators": [BOB]})
    room.join(BOB)
    with_alice = room.power_levels({"users": {ALICE: 100}})
    with_bob = room.power_levels({"users": {BOB: 100}})
    if room.room_version.privileged_creators:
        with pytest.raises(AuthError, match="creators"):
            room.check(with_alice)
        with pytest.raises(AuthError, match="creators"):
            room.check(with_bob)
        # A creator may set any level for anyone else.
        room.check(room.power_levels({"users": {CAROL: 10**9}, "ban": 10**9}, sender=BOB))
    else:
        room.check(with_alice)
        with pytest.raises(AuthError):
            room.check(room.power_levels({"users": {ALICE: 100, BOB: 100}}, sender=BOB))
