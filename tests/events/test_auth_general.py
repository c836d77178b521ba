"""Auth rules: create events, auth event checks, m.federate, aliases, ordinary events, redactions."""

from __future__ import annotations

import math

import pytest

from homeserver.events.auth import (
    AuthError,
    auth_types_for_event,
    check_auth_events_selection,
    check_auth_rules,
    get_user_power_level,
    listed_auth_types_for_event,
    should_apply_redaction,
)
from homeserver.events.event import Event
from tests.events.room_factory import ALICE, BOB, CAROL, DAVE, Room, versions

ALL = versions()


# -- m.room.create -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_create_allowed(version: str) -> None:
    room = Room(version, bootstrap=False)
    check_auth_rules(room.create, {})


@pytest.mark.parametrize("version", ALL)
def test_create_with_prev_events_rejected(version: str) -> None:
    room = Room(version, bootstrap=False)
    pdu = dict(room.create.pdu, prev_events=["$x:a.example"])
    with pytest.raises(AuthError, match="prev_events"):
        check_auth_rules(Event.from_pdu(pdu, room.room_version, "$c"), {})


@pytest.mark.parametrize("version", versions(lambda v: not v.room_id_is_create_event_hash))
def test_create_room_id_domain_must_match_sender(version: str) -> None:
    room = Room(version, bootstrap=False)
    pdu = dict(room.create.pdu, room_id="!room:elsewhere.example")
    with pytest.raises(AuthError, match="room_id domain"):
        check_auth_rules(Event.from_pdu(pdu, room.room_version, "$c:a.example"), {})


def test_v12_create_must_not_have_room_id() -> None:
    room = Room("12", bootstrap=False)
    pdu = dict(room.create.pdu, room_id="!room:a.example")
    with pytest.raises(AuthError, match="must not have a room_id"):
        check_auth_rules(Event.from_pdu(pdu, room.room_version, "$c"), {})


@pytest.mark.parametrize("version", ALL)
@pytest.mark.parametrize("declared", ["99", 12])
def test_create_unknown_room_version_rejected(version: str, declared: object) -> None:
    room = Room(version, create_content={"room_version": declared}, bootstrap=False)
    with pytest.raises(AuthError, match="unknown room_version"):
        check_auth_rules(room.create, {})


@pytest.mark.parametrize("version", ALL)
def test_create_without_creator(version: str) -> None:
    room = Room(version, bootstrap=False)
    content = {k: v for k, v in room.create.content.items() if k != "creator"}
    create = Event.from_pdu(dict(room.create.pdu, content=content), room.room_version, "$c")
    if room.room_version.implicit_room_creator:
        check_auth_rules(create, {})
    else:
        with pytest.raises(AuthError, match="no creator"):
            check_auth_rules(create, {})


@pytest.mark.parametrize(
    ("additional", "allowed"),
    [
        ([BOB, CAROL], True),
        ([], True),
        ("@bob:b.example", False),
        ([BOB, "bob"], False),
        ([1], False),
    ],
)
def test_v12_additional_creators_validated(additional: object, allowed: bool) -> None:
    room = Room("12", create_content={"additional_creators": additional}, bootstrap=False)
    if allowed:
        check_auth_rules(room.create, {})
    else:
        with pytest.raises(AuthError, match="additional_creators"):
            check_auth_rules(room.create, {})


def test_v11_ignores_additional_creators() -> None:
    room = Room("11", create_content={"additional_creators": "nonsense"}, bootstrap=False)
    check_auth_rules(room.create, {})


# -- auth events -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_missing_create_event_rejected(version: str) -> None:
    room = Room(version)
    event = room.make("m.room.message", ALICE, {"body": "hi"})
    state = room.auth_state(event)
    room.check(event)
    del state[("m.room.create", "")]
    with pytest.raises(AuthError, match="no m.room.create"):
        check_auth_rules(event, state)


def test_v12_room_id_must_derive_from_create_event() -> None:
    room = Room("12")
    event = room.make("m.room.message", ALICE, {"body": "hi"})
    room.check(event)
    other_room = Event.from_pdu(dict(event.pdu, room_id="!other"), room.room_version, "$m")
    with pytest.raises(AuthError, match="derived from the room's create event"):
        room.check(other_room)


@pytest.mark.parametrize("version", ALL)
def test_auth_event_from_other_room_rejected(version: str) -> None:
    room = Room(version)
    event = room.make("m.room.message", ALICE, {"body": "hi"})
    state = room.auth_state(event)
    member = state[("m.room.member", ALICE)]
    state[("m.room.member", ALICE)] = Event.from_pdu(
        dict(member.pdu, room_id="!elsewhere:a.example"), room.room_version, "$other"
    )
    with pytest.raises(AuthError, match="another room"):
        check_auth_rules(event, state)


@pytest.mark.parametrize("version", ALL)
def test_non_federated_room(version: str) -> None:
    room = Room(version, create_content={"m.federate": False})
    room.check(room.member(DAVE, "join"))  # same server as the creator
    with pytest.raises(AuthError, match="not federated"):
        room.check(room.member(BOB, "join"))


@pytest.mark.parametrize("version", ALL)
def test_auth_events_selection(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    event = room.make("m.room.message", BOB, {"body": "hi"})
    listed = [room.state[k] for k in listed_auth_types_for_event(event) if k in room.state]
    check_auth_events_selection(event, listed)
    with pytest.raises(AuthError, match="duplicate"):
        check_auth_events_selection(event, [*listed, room.state[("m.room.power_levels", "")]])
    with pytest.raises(AuthError, match="not a selected type"):
        check_auth_events_selection(event, [*listed, room.state[("m.room.join_rules", "")]])
    with_create = [*listed, room.create]
    if room.room_version.room_id_is_create_event_hash:
        assert ("m.room.create", "") not in listed_auth_types_for_event(event)
        with pytest.raises(AuthError, match="not a selected type"):
            check_auth_events_selection(event, with_create)
    else:
        check_auth_events_selection(event, listed)  # create is already listed
        without_create = [e for e in listed if e.type != "m.room.create"]
        with pytest.raises(AuthError, match="no m.room.create"):
            check_auth_events_selection(event, without_create)


def test_auth_types_for_member_events() -> None:
    room = Room("10")
    join = room.member(BOB, "join", join_authorised_via_users_server=ALICE)
    assert auth_types_for_event(join) == {
        ("m.room.create", ""),
        ("m.room.power_levels", ""),
        ("m.room.member", BOB),
        ("m.room.join_rules", ""),
        ("m.room.member", ALICE),
    }
    invite = room.member(
        CAROL, "invite", sender=BOB, third_party_invite={"signed": {"token": "tok"}}
    )
    assert auth_types_for_event(invite) == {
        ("m.room.create", ""),
        ("m.room.power_levels", ""),
        ("m.room.member", BOB),
        ("m.room.member", CAROL),
        ("m.room.join_rules", ""),
        ("m.room.third_party_invite", "tok"),
    }
    leave = room.member(CAROL, "leave", sender=BOB)
    assert ("m.room.join_rules", "") not in auth_types_for_event(leave)
    assert auth_types_for_event(room.create) == set()
    v7_join = Room("7").member(BOB, "join", join_authorised_via_users_server=ALICE)
    assert ("m.room.member", ALICE) not in auth_types_for_event(v7_join)


# -- m.room.aliases (v1-5 special case) ---------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_aliases_event(version: str) -> None:
    room = Room(version)
    own_domain = room.make("m.room.aliases", BOB, {"aliases": []}, state_key="b.example")
    other_domain = room.make("m.room.aliases", BOB, {"aliases": []}, state_key="a.example")
    if room.room_version.special_case_aliases_auth:
        room.check(own_domain)  # even though Bob is not in the room
        with pytest.raises(AuthError, match="sender's domain"):
            room.check(other_domain)
        with pytest.raises(AuthError, match="without a state_key"):
            room.check(room.make("m.room.aliases", BOB, {}))
    else:
        with pytest.raises(AuthError, match="not joined"):
            room.check(own_domain)
        room.join(BOB)
        room.set_levels(users={BOB: 50})
        room.check(own_domain)  # ordinary state event now


# -- ordinary events -------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_sender_must_be_joined(version: str) -> None:
    room = Room(version)
    with pytest.raises(AuthError, match="not joined"):
        room.check(room.make("m.room.message", BOB, {"body": "hi"}))
    room.force(room.member(BOB, "invite", sender=ALICE))
    with pytest.raises(AuthError, match="not joined"):
        room.check(room.make("m.room.message", BOB, {"body": "hi"}))
    room.join(BOB)
    room.check(room.make("m.room.message", BOB, {"body": "hi"}))


@pytest.mark.parametrize("version", ALL)
def test_third_party_invite_event_needs_invite_level(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    event = room.make("m.room.third_party_invite", BOB, {"public_key": "x"}, state_key="tok")
    room.check(event)  # invite level defaults to 0
    room.set_levels(invite=50)
    with pytest.raises(AuthError, match="invite level"):
        room.check(event)


@pytest.mark.parametrize("version", ALL)
def test_required_power_level(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    room.set_levels(users={BOB: 10}, events={"m.room.topic": 5, "m.custom": 20})
    room.check(room.make("m.room.topic", BOB, {"topic": "t"}, state_key=""))
    with pytest.raises(AuthError, match="below 50"):  # state_default
        room.check(room.make("m.room.name", BOB, {"name": "n"}, state_key=""))
    room.check(room.make("m.room.message", BOB, {"body": "b"}))  # events_default 0
    with pytest.raises(AuthError, match="below 20"):
        room.check(room.make("m.custom", BOB, {}))
    room.set_levels(users={BOB: 10}, events_default=11)
    with pytest.raises(AuthError, match="below 11"):
        room.check(room.make("m.room.message", BOB, {"body": "b"}))


@pytest.mark.parametrize("version", ALL)
def test_state_default_is_zero_without_power_levels(version: str) -> None:
    room = Room(version, bootstrap=False)
    room.add(room.member(ALICE, "join", prev=[room.create.event_id]))
    room.force(room.join_rules("public"))
    room.join(BOB)
    room.check(room.make("m.room.name", BOB, {"name": "n"}, state_key=""))


@pytest.mark.parametrize("version", ALL)
def test_user_state_key_must_be_sender(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    room.set_levels(users={BOB: 50})
    room.check(room.make("m.custom.state", BOB, {}, state_key=BOB))
    with pytest.raises(AuthError, match="starting with @"):
        room.check(room.make("m.custom.state", BOB, {}, state_key=ALICE))


@pytest.mark.parametrize("version", ALL)
def test_creator_power(version: str) -> None:
    room = Room(version, create_content={"additional_creators": [BOB]})
    room.join(BOB)
    room.set_levels(events={"m.room.tombstone": 1000})
    tombstone = room.make("m.room.tombstone", BOB, {"body": "bye"}, state_key="")
    if room.room_version.privileged_creators:
        assert get_user_power_level(ALICE, room.state) == math.inf
        assert get_user_power_level(BOB, room.state) == math.inf
        room.check(tombstone)
    else:
        assert get_user_power_level(ALICE, room.state) == 100
        assert get_user_power_level(BOB, room.state) == 0
        with pytest.raises(AuthError, match="below 1000"):
            room.check(tombstone)


@pytest.mark.parametrize("version", ALL)
def test_creator_level_without_power_levels_event(version: str) -> None:
    room = Room(version, bootstrap=False)
    expected = math.inf if room.room_version.privileged_creators else 100
    assert get_user_power_level(ALICE, room.state) == expected
    assert get_user_power_level(BOB, room.state) == 0


# -- redactions ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_redaction(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    redact_alice_event = {"redacts": "$99:a.example"}
    content = redact_alice_event if room.room_version.redacts_in_content else {}
    extra = {} if room.room_version.redacts_in_content else redact_alice_event
    by_bob = room.make("m.room.redaction", BOB, content, **extra)
    if room.room_version.redaction_rule_in_auth:
        with pytest.raises(AuthError, match="redact level"):
            room.check(by_bob)
        own = {"redacts": "$98:b.example"}
        room.check(room.make("m.room.redaction", BOB, {}, **own))
        room.check(room.make("m.room.redaction", ALICE, content, **extra))  # PL 100
    else:
        room.check(by_bob)  # handled after auth from v3
    room.set_levels(events={"m.room.redaction": 50})
    with pytest.raises(AuthError, match="below 50"):
        room.check(room.make("m.room.redaction", BOB, content, **extra))


@pytest.mark.parametrize("version", ALL)
def test_should_apply_redaction(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    room.join(DAVE)
    original = room.make("m.room.message", ALICE, {"body": "secret"})

    def redaction(sender: str, target: Event = original) -> Event:
        ref = {"redacts": target.event_id}
        if room.room_version.redacts_in_content:
            return room.make("m.room.redaction", sender, ref)
        return room.make("m.room.redaction", sender, {}, **ref)

    state = room.state
    assert should_apply_redaction(redaction(DAVE), original, state)  # same server as Alice
    other_target = room.make("m.room.message", ALICE, {"body": "other"})
    assert not should_apply_redaction(redaction(DAVE, other_target), original, state)
    if room.room_version.redaction_rule_in_auth:
        assert should_apply_redaction(redaction(BOB), original, state)  # auth already decided
    else:
        assert not should_apply_redaction(redaction(BOB), original, state)
        room.set_levels(users={BOB: 50})
        assert should_apply_redaction(redaction(BOB), original, room.state)


@pytest.mark.parametrize("version", versions(lambda v: not v.room_id_is_create_event_hash))
def test_create_room_id_without_domain_rejected(version: str) -> None:
    room = Room(version, bootstrap=False)
    pdu = dict(room.create.pdu, room_id="!nodomain", sender="@nodomain")
    with pytest.raises(AuthError, match="room_id domain"):
        check_auth_rules(Event.from_pdu(pdu, room.room_version, "$c:a.example"), {})
