"""Auth rules for m.room.member: join, invite (incl. third-party), leave/kick, ban, knock."""

from __future__ import annotations

import nacl.signing
import pytest

from homeserver.events.auth import AuthError
from homeserver.events.signing import sign_json
from homeserver.events.unpadded_base64 import encode_base64
from tests.events.room_factory import ALICE, BOB, CAROL, DAVE, Room, versions

ALL = versions()
KNOCK = versions(lambda v: v.knock_join_rule)
NO_KNOCK = versions(lambda v: not v.knock_join_rule)


@pytest.mark.parametrize("version", ALL)
def test_member_event_needs_state_key_and_membership(version: str) -> None:
    room = Room(version)
    with pytest.raises(AuthError, match="state_key and content.membership"):
        room.check(room.make("m.room.member", BOB, {"membership": "join"}))
    with pytest.raises(AuthError, match="state_key and content.membership"):
        room.check(room.make("m.room.member", BOB, {}, state_key=BOB))


@pytest.mark.parametrize("version", ALL)
def test_unknown_membership_rejected(version: str) -> None:
    room = Room(version)
    with pytest.raises(AuthError, match="unknown membership"):
        room.check(room.member(BOB, "lurk"))


# -- join --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_creator_first_join(version: str) -> None:
    room = Room(version, bootstrap=False)
    room.check(room.member(ALICE, "join", prev=[room.create.event_id]))
    with pytest.raises(AuthError):  # not directly after the create event, no join rules
        room.check(room.member(ALICE, "join", prev=["$other:a.example"]))
    with pytest.raises(AuthError):  # someone else
        room.check(room.member(BOB, "join", prev=[room.create.event_id]))


@pytest.mark.parametrize("version", versions(lambda v: not v.implicit_room_creator))
def test_first_join_uses_creator_property_before_v11(version: str) -> None:
    room = Room(version, creator=ALICE, create_content={"creator": BOB}, bootstrap=False)
    room.check(room.member(BOB, "join", prev=[room.create.event_id]))
    with pytest.raises(AuthError):
        room.check(room.member(ALICE, "join", prev=[room.create.event_id]))


@pytest.mark.parametrize("version", versions(lambda v: v.implicit_room_creator))
def test_first_join_uses_create_sender_from_v11(version: str) -> None:
    room = Room(version, create_content={"creator": BOB}, bootstrap=False)
    room.check(room.member(ALICE, "join", prev=[room.create.event_id]))
    with pytest.raises(AuthError):
        room.check(room.member(BOB, "join", prev=[room.create.event_id]))


def test_v12_additional_creator_has_no_first_join_shortcut() -> None:
    room = Room("12", create_content={"additional_creators": [BOB]}, bootstrap=False)
    with pytest.raises(AuthError):
        room.check(room.member(BOB, "join", prev=[room.create.event_id]))


@pytest.mark.parametrize("version", ALL)
def test_join_sender_must_be_target(version: str) -> None:
    room = Room(version)
    with pytest.raises(AuthError, match="sender does not match"):
        room.check(room.member(BOB, "join", sender=ALICE))


@pytest.mark.parametrize("version", ALL)
def test_banned_cannot_join_public_room(version: str) -> None:
    room = Room(version)
    room.check(room.member(BOB, "join"))
    room.force(room.member(BOB, "ban", sender=ALICE))
    with pytest.raises(AuthError, match="banned"):
        room.check(room.member(BOB, "join"))


@pytest.mark.parametrize("version", ALL)
def test_invite_join_rule(version: str) -> None:
    room = Room(version)
    room.force(room.join_rules("invite"))
    with pytest.raises(AuthError, match="not invited"):
        room.check(room.member(BOB, "join"))
    room.force(room.member(BOB, "invite", sender=ALICE))
    room.check(room.member(BOB, "join"))
    room.force(room.member(BOB, "join"))
    room.check(room.member(BOB, "join"))  # profile change while joined


@pytest.mark.parametrize("version", ALL)
def test_missing_join_rules_means_invite(version: str) -> None:
    room = Room(version)
    del room.state[("m.room.join_rules", "")]
    with pytest.raises(AuthError):
        room.check(room.member(BOB, "join"))


@pytest.mark.parametrize("version", ALL)
def test_knock_join_rule_allows_invited_joins_only_with_knocking(version: str) -> None:
    room = Room(version)
    room.force(room.join_rules("knock"))
    room.force(room.member(BOB, "invite", sender=ALICE))
    if room.room_version.knock_join_rule:
        room.check(room.member(BOB, "join"))
        with pytest.raises(AuthError, match="not invited"):
            room.check(room.member(CAROL, "join"))
    else:
        with pytest.raises(AuthError, match="does not allow"):
            room.check(room.member(BOB, "join"))


@pytest.mark.parametrize("rule", ["restricted", "knock_restricted"])
@pytest.mark.parametrize("version", ALL)
def test_restricted_joins(version: str, rule: str) -> None:
    room = Room(version)
    allow = [{"type": "m.room_membership", "room_id": "!other:a.example"}]
    room.force(room.join_rules(rule, allow=allow))
    room.join(DAVE)
    room.set_levels(invite=50, users={DAVE: 50})
    supported = room.room_version.restricted_join_rule and (
        rule == "restricted" or room.room_version.knock_restricted_join_rule
    )
    authorised = room.member(BOB, "join", join_authorised_via_users_server=DAVE)
    if not supported:
        with pytest.raises(AuthError, match="does not allow"):
            room.check(authorised)
        return
    room.check(authorised)
    with pytest.raises(AuthError, match="without join_authorised_via_users_server"):
        room.check(room.member(BOB, "join"))
    # The authoriser must be able to invite ...
    room.set_levels(invite=50, users={DAVE: 49})
    with pytest.raises(AuthError, match="cannot invite"):
        room.check(authorised)
    # ... and be joined.
    room.set_levels(invite=50, users={DAVE: 50})
    room.force(room.member(DAVE, "leave"))
    with pytest.raises(AuthError, match="not joined"):
        room.check(authorised)
    # Invited users need no authoriser.
    room.force(room.member(BOB, "invite", sender=ALICE))
    room.check(room.member(BOB, "join"))


@pytest.mark.parametrize("version", ALL)
def test_unknown_join_rule_rejects(version: str) -> None:
    room = Room(version)
    room.force(room.join_rules("private"))
    with pytest.raises(AuthError, match="does not allow"):
        room.check(room.member(BOB, "join"))


# -- invite --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_invite(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    room.check(room.member(CAROL, "invite", sender=BOB))
    with pytest.raises(AuthError, match="sender is not joined"):
        room.check(room.member(BOB, "invite", sender=CAROL))
    room.set_levels(invite=50)
    with pytest.raises(AuthError, match="below the invite level"):
        room.check(room.member(CAROL, "invite", sender=BOB))
    room.check(room.member(CAROL, "invite", sender=ALICE))
    room.join(CAROL)
    with pytest.raises(AuthError, match="joined or banned"):
        room.check(room.member(CAROL, "invite", sender=ALICE))
    room.force(room.member(CAROL, "ban", sender=ALICE))
    with pytest.raises(AuthError, match="joined or banned"):
        room.check(room.member(CAROL, "invite", sender=ALICE))


class ThirdPartyInvite:
    """An identity server key, its m.room.third_party_invite event, and signed blobs."""

    def __init__(self, room: Room, sender: str, token: str = "tok") -> None:
        self.key = nacl.signing.SigningKey.generate()
        self.token = token
        public_key = encode_base64(self.key.verify_key.encode())
        room.force(
            room.make(
                "m.room.third_party_invite",
                sender,
                {"public_key": "bm90IGEga2V5", "public_keys": [{"public_key": public_key}]},
                state_key=token,
            )
        )

    def signed(self, mxid: str, key: nacl.signing.SigningKey | None = None) -> dict:
        blob = {"mxid": mxid, "token": self.token, "sender": ALICE}
        return sign_json(blob, "id.example", "ed25519:0", key or self.key)


@pytest.mark.parametrize("version", ALL)
def test_third_party_invite(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    invite = ThirdPartyInvite(room, BOB)

    def tpi(sender: str, signed: object) -> object:
        return room.member(CAROL, "invite", sender=sender, third_party_invite={"signed": signed})

    room.check(tpi(BOB, invite.signed(CAROL)))
    with pytest.raises(AuthError, match="no `signed`"):
        room.check(room.member(CAROL, "invite", sender=BOB, third_party_invite={}))
    with pytest.raises(AuthError, match="lacks mxid or token"):
        room.check(tpi(BOB, {"mxid": CAROL}))
    with pytest.raises(AuthError, match="does not match state_key"):
        room.check(tpi(BOB, invite.signed(DAVE)))
    with pytest.raises(AuthError, match="no m.room.third_party_invite"):
        room.check(tpi(BOB, dict(invite.signed(CAROL), token="other")))
    room.join(DAVE)
    with pytest.raises(AuthError, match="sender differs"):
        room.check(tpi(DAVE, invite.signed(CAROL)))
    with pytest.raises(AuthError, match="no signature matches"):
        room.check(tpi(BOB, invite.signed(CAROL, nacl.signing.SigningKey.generate())))
    tampered = dict(invite.signed(CAROL), sender=BOB)
    with pytest.raises(AuthError, match="no signature matches"):
        room.check(tpi(BOB, tampered))
    room.force(room.member(CAROL, "ban", sender=ALICE))
    with pytest.raises(AuthError, match="target is banned"):
        room.check(tpi(BOB, invite.signed(CAROL)))


# -- leave and kick -------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_self_leave(version: str) -> None:
    room = Room(version)
    with pytest.raises(AuthError, match="not invited, joined"):
        room.check(room.member(BOB, "leave"))
    room.force(room.member(BOB, "invite", sender=ALICE))
    room.check(room.member(BOB, "leave"))  # reject an invite
    room.join(BOB)
    room.check(room.member(BOB, "leave"))
    room.force(room.member(BOB, "ban", sender=ALICE))
    with pytest.raises(AuthError, match="not invited, joined"):
        room.check(room.member(BOB, "leave"))


@pytest.mark.parametrize("version", ALL)
def test_self_leave_from_knock(version: str) -> None:
    room = Room(version)
    room.force(room.member(BOB, "knock"))
    if room.room_version.knock_join_rule:
        room.check(room.member(BOB, "leave"))
    else:
        with pytest.raises(AuthError):
            room.check(room.member(BOB, "leave"))


@pytest.mark.parametrize("version", ALL)
def test_kick(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    room.join(CAROL)
    room.set_levels(users={BOB: 50, CAROL: 10})
    room.check(room.member(CAROL, "leave", sender=BOB))
    with pytest.raises(AuthError, match="cannot kick"):
        room.check(room.member(BOB, "leave", sender=CAROL))  # lower kicks higher
    room.set_levels(users={BOB: 50, CAROL: 50})
    with pytest.raises(AuthError, match="cannot kick"):
        room.check(room.member(CAROL, "leave", sender=BOB))  # equal levels
    room.set_levels(users={BOB: 40, CAROL: 10})
    with pytest.raises(AuthError, match="cannot kick"):
        room.check(room.member(CAROL, "leave", sender=BOB))  # below kick level 50
    room.set_levels(users={BOB: 50}, kick=50)
    with pytest.raises(AuthError, match="sender is not joined"):
        room.check(room.member(BOB, "leave", sender=DAVE))


@pytest.mark.parametrize("version", ALL)
def test_unban_needs_ban_level(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    room.force(room.member(CAROL, "ban", sender=ALICE))
    room.set_levels(users={BOB: 50}, kick=50, ban=60)
    with pytest.raises(AuthError, match="unbanning"):
        room.check(room.member(CAROL, "leave", sender=BOB))
    room.set_levels(users={BOB: 60}, kick=50, ban=60)
    room.check(room.member(CAROL, "leave", sender=BOB))


# -- ban ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
def test_ban(version: str) -> None:
    room = Room(version)
    room.join(BOB)
    room.set_levels(users={BOB: 50, CAROL: 20})
    room.check(room.member(CAROL, "ban", sender=BOB))  # works on non-members too
    with pytest.raises(AuthError, match="sender is not joined"):
        room.check(room.member(BOB, "ban", sender=CAROL))
    room.join(CAROL)
    with pytest.raises(AuthError, match="cannot ban"):
        room.check(room.member(BOB, "ban", sender=CAROL))
    room.set_levels(users={BOB: 50, CAROL: 50})
    with pytest.raises(AuthError, match="cannot ban"):
        room.check(room.member(CAROL, "ban", sender=BOB))
    room.set_levels(users={BOB: 50, CAROL: 0}, ban=51)
    with pytest.raises(AuthError, match="cannot ban"):
        room.check(room.member(CAROL, "ban", sender=BOB))


def test_v12_creator_cannot_be_banned_or_kicked_by_anyone() -> None:
    room = Room("12")
    room.join(BOB)
    room.set_levels(users={BOB: 100})
    with pytest.raises(AuthError, match="cannot ban"):
        room.check(room.member(ALICE, "ban", sender=BOB))
    with pytest.raises(AuthError, match="cannot kick"):
        room.check(room.member(ALICE, "leave", sender=BOB))
    room.check(room.member(BOB, "ban", sender=ALICE))


# -- knock ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", NO_KNOCK)
def test_knock_is_unknown_before_v7(version: str) -> None:
    room = Room(version)
    room.force(room.join_rules("knock"))
    with pytest.raises(AuthError, match="unknown membership"):
        room.check(room.member(BOB, "knock"))


@pytest.mark.parametrize("version", KNOCK)
def test_knock(version: str) -> None:
    room = Room(version)
    with pytest.raises(AuthError, match="does not allow knocking"):
        room.check(room.member(BOB, "knock"))  # public room
    room.force(room.join_rules("knock"))
    room.check(room.member(BOB, "knock"))
    with pytest.raises(AuthError, match="sender does not match"):
        room.check(room.member(BOB, "knock", sender=ALICE))
    for membership in ("ban", "invite", "join"):
        room.force(room.member(BOB, membership, sender=ALICE))
        with pytest.raises(AuthError, match="banned, invited or joined"):
            room.check(room.member(BOB, "knock"))
    room.force(room.member(BOB, "leave"))
    room.check(room.member(BOB, "knock"))


@pytest.mark.parametrize("version", KNOCK)
def test_knock_under_knock_restricted(version: str) -> None:
    room = Room(version)
    room.force(room.join_rules("knock_restricted", allow=[]))
    if room.room_version.knock_restricted_join_rule:
        room.check(room.member(BOB, "knock"))
    else:
        with pytest.raises(AuthError, match="does not allow knocking"):
            room.check(room.member(BOB, "knock"))
