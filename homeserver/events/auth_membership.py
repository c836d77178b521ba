"""Authorization rules for m.room.member events (join, invite, leave, ban, knock).

Split from auth.py because membership is most of the rule list. Error messages name
the membership branch and the condition that failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.signing

from homeserver.events.auth_errors import AuthError
from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.event import Event
from homeserver.events.power_levels import (
    CREATE_KEY,
    JOIN_RULES_KEY,
    AuthEvents,
    get_named_level,
    get_user_power_level,
)
from homeserver.events.unpadded_base64 import decode_base64


def membership_of(user_id: str, auth_events: AuthEvents) -> str | None:
    """The user's current membership in the given state, or None if they have none."""
    member = auth_events.get(("m.room.member", user_id))
    return member.membership if member is not None else None


def _join_rule(auth_events: AuthEvents) -> str:
    join_rules = auth_events.get(JOIN_RULES_KEY)
    if join_rules is None:
        return "invite"
    rule = join_rules.content.get("join_rule")
    return rule if isinstance(rule, str) else "invite"


def check_membership(event: Event, auth_events: AuthEvents) -> None:
    """Rules for m.room.member; returns if allowed, raises AuthError otherwise."""
    membership = event.membership
    target = event.state_key
    if target is None or membership is None:
        raise AuthError("member event needs a state_key and content.membership")
    room_version = event.room_version
    handlers = {
        "join": _check_join,
        "invite": _check_invite,
        "leave": _check_leave,
        "ban": _check_ban,
    }
    if room_version.knock_join_rule:
        handlers["knock"] = _check_knock
    handler = handlers.get(membership)
    if handler is None:
        raise AuthError(f"unknown membership {membership!r}")
    handler(event, target, auth_events)


def _check_join(event: Event, target: str, auth_events: AuthEvents) -> None:
    room_version = event.room_version
    create = auth_events[CREATE_KEY]
    prev_event_ids = event.prev_event_ids
    if len(prev_event_ids) == 1 and prev_event_ids[0] == create.event_id:
        # The creator's own first join directly after the create event. In v11+ the
        # creator is the create event's sender (v12: additional creators do not count).
        first_joiner = (
            create.sender if room_version.implicit_room_creator else create.content.get("creator")
        )
        if target == first_joiner:
            return
    if event.sender != target:
        raise AuthError("join: sender does not match state_key")
    current = membership_of(target, auth_events)
    if current == "ban":
        raise AuthError("join: sender is banned")
    join_rule = _join_rule(auth_events)
    invite_like = {"invite"} | ({"knock"} if room_version.knock_join_rule else set())
    restricted_like = set()
    if room_version.restricted_join_rule:
        restricted_like.add("restricted")
    if room_version.knock_restricted_join_rule:
        restricted_like.add("knock_restricted")
    if join_rule in invite_like:
        if current in ("invite", "join"):
            return
        raise AuthError(f"join: join_rule is {join_rule} and sender is not invited")
    if join_rule in restricted_like:
        if current in ("invite", "join"):
            return
        _check_join_authoriser(event, auth_events)
        return
    if join_rule == "public":
        return
    raise AuthError(f"join: join_rule {join_rule!r} does not allow joining")


def _check_join_authoriser(event: Event, auth_events: AuthEvents) -> None:
    """Restricted joins: the authorising user must be joined and able to invite."""
    authoriser = event.content.get("join_authorised_via_users_server")
    if not isinstance(authoriser, str):
        raise AuthError("join: restricted join without join_authorised_via_users_server")
    if membership_of(authoriser, auth_events) != "join":
        raise AuthError("join: join_authorised_via_users_server user is not joined")
    if get_user_power_level(authoriser, auth_events) < get_named_level("invite", auth_events):
        raise AuthError("join: join_authorised_via_users_server user cannot invite")


def _check_invite(event: Event, target: str, auth_events: AuthEvents) -> None:
    third_party_invite = event.content.get("third_party_invite")
    if third_party_invite is not None:
        _check_third_party_invite(event, target, third_party_invite, auth_events)
        return
    if membership_of(event.sender, auth_events) != "join":
        raise AuthError("invite: sender is not joined")
    if membership_of(target, auth_events) in ("join", "ban"):
        raise AuthError("invite: target is joined or banned")
    if get_user_power_level(event.sender, auth_events) < get_named_level("invite", auth_events):
        raise AuthError("invite: sender power level is below the invite level")


def _check_third_party_invite(
    event: Event, target: str, third_party_invite: Any, auth_events: AuthEvents
) -> None:
    if membership_of(target, auth_events) == "ban":
        raise AuthError("third-party invite: target is banned")
    signed = third_party_invite.get("signed") if isinstance(third_party_invite, dict) else None
    if not isinstance(signed, dict):
        raise AuthError("third-party invite: no `signed` object")
    mxid, token = signed.get("mxid"), signed.get("token")
    if not isinstance(mxid, str) or not isinstance(token, str):
        raise AuthError("third-party invite: `signed` lacks mxid or token")
    if mxid != target:
        raise AuthError("third-party invite: mxid does not match state_key")
    invite_event = auth_events.get(("m.room.third_party_invite", token))
    if invite_event is None:
        raise AuthError("third-party invite: no m.room.third_party_invite for the token")
    if invite_event.sender != event.sender:
        raise AuthError("third-party invite: sender differs from the m.room.third_party_invite")
    if not _signed_by_any_public_key(signed, _third_party_public_keys(invite_event.content)):
        raise AuthError("third-party invite: no signature matches the invite's public keys")


def _third_party_public_keys(content: Mapping[str, Any]) -> list[bytes]:
    encoded: list[Any] = [content.get("public_key")]
    public_keys = content.get("public_keys")
    if isinstance(public_keys, list):
        encoded.extend(k.get("public_key") for k in public_keys if isinstance(k, dict))
    keys: list[bytes] = []
    for key in encoded:
        if not isinstance(key, str):
            continue
        for urlsafe in (False, True):
            try:
                keys.append(decode_base64(key, urlsafe=urlsafe))
                break
            except ValueError:
                continue
    return keys


def _signed_by_any_public_key(signed: Mapping[str, Any], public_keys: list[bytes]) -> bool:
    signatures = signed.get("signatures")
    if not isinstance(signatures, dict):
        return False
    message = encode_canonical_json(
        {k: v for k, v in signed.items() if k not in ("signatures", "unsigned")}
    )
    for server_signatures in signatures.values():
        if not isinstance(server_signatures, dict):
            continue
        for signature_b64 in server_signatures.values():
            if not isinstance(signature_b64, str):
                continue
            try:
                signature = decode_base64(signature_b64)
            except ValueError:
                continue
            for public_key in public_keys:
                try:
                    nacl.signing.VerifyKey(public_key).verify(message, signature)
                    return True
                except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
                    continue
    return False


def _check_leave(event: Event, target: str, auth_events: AuthEvents) -> None:
    sender = event.sender
    if sender == target:
        allowed = {"invite", "join"} | ({"knock"} if event.room_version.knock_join_rule else set())
        if membership_of(sender, auth_events) in allowed:
            return
        raise AuthError("leave: sender is not invited, joined or knocking")
    if membership_of(sender, auth_events) != "join":
        raise AuthError("leave: sender is not joined")
    sender_level = get_user_power_level(sender, auth_events)
    if membership_of(target, auth_events) == "ban" and sender_level < get_named_level(
        "ban", auth_events
    ):
        raise AuthError("leave: unbanning needs the ban level")
    if (
        sender_level >= get_named_level("kick", auth_events)
        and get_user_power_level(target, auth_events) < sender_level
    ):
        return
    raise AuthError("leave: sender cannot kick the target")


def _check_ban(event: Event, target: str, auth_events: AuthEvents) -> None:
    sender = event.sender
    if membership_of(sender, auth_events) != "join":
        raise AuthError("ban: sender is not joined")
    sender_level = get_user_power_level(sender, auth_events)
    if (
        sender_level >= get_named_level("ban", auth_events)
        and get_user_power_level(target, auth_events) < sender_level
    ):
        return
    raise AuthError("ban: sender cannot ban the target")


def _check_knock(event: Event, target: str, auth_events: AuthEvents) -> None:
    knock_rules = {"knock"}
    if event.room_version.knock_restricted_join_rule:
        knock_rules.add("knock_restricted")
    if _join_rule(auth_events) not in knock_rules:
        raise AuthError("knock: join_rule does not allow knocking")
    if event.sender != target:
        raise AuthError("knock: sender does not match state_key")
    if membership_of(event.sender, auth_events) in ("ban", "invite", "join"):
        raise AuthError("knock: sender is banned, invited or joined")
