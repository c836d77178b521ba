"""Our signed membership event from a resident server's ``make_join``/``make_leave``/
``make_knock`` template, after checking that the template is what we asked for."""

from __future__ import annotations

import secrets
from typing import Any

from federation.membership.pdus import BadPduError, parse_pdu
from homeserver.events.builder import ServerSigningKey
from homeserver.events.event import Event
from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import sign_event, sign_json

#: Fields of a template the requesting server sets itself.
OURS = ("signatures", "hashes", "unsigned", "event_id")


class BadTemplateError(ValueError):
    """The template is not a membership event of that user, room and kind, or cannot be signed."""


def sign_template(template: Any, room_version: RoomVersion, room_id: str, user_id: str, membership: str,
                  content: dict[str, Any], key: ServerSigningKey, now_ms: int) -> Event:
    """The event built from ``template`` with our ``content`` (membership set), hashed and signed."""
    given = template.get("content") if isinstance(template, dict) else None
    if (not isinstance(template, dict) or template.get("room_id") != room_id
            or template.get("type") != "m.room.member" or template.get("sender") != user_id
            or template.get("state_key") != user_id or not isinstance(given, dict)
            or given.get("membership") != membership):
        raise BadTemplateError(f"not a {membership} of {user_id} in {room_id}")
    pdu = {k: v for k, v in template.items() if k not in OURS}
    pdu["content"] = {**content, "membership": membership}
    pdu["origin"] = key.server_name
    pdu["origin_server_ts"] = now_ms
    if room_version.event_id_carried_in_pdu:
        pdu["event_id"] = f"${secrets.token_urlsafe(12)}:{key.server_name}"
    try:
        return parse_pdu(sign_event(pdu, room_version, key.server_name, key.key_id, key.signing_key), room_version)
    except (BadPduError, TypeError, ValueError) as exc:
        raise BadTemplateError(str(exc)) from None


def add_our_signature(event: Event, key: ServerSigningKey) -> Event:
    """The event with our server's signature added to those it carries (invites, restricted joins)."""
    redacted = redact_pdu(dict(event.pdu), event.room_version)
    ours = sign_json(redacted, key.server_name, key.key_id, key.signing_key)
    signed = dict(event.pdu)
    signed["signatures"] = {**event.pdu.get("signatures", {}), key.server_name: ours["signatures"][key.server_name]}
    return Event(signed, event.event_id, event.room_version)
