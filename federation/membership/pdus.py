"""Turning untrusted PDUs from another server into Events we may hand to the pipeline:
format, then signatures (batched through the KeyRing), then the content hash (an event
whose hash is wrong is kept in its redacted form, as the spec says)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from federation.keys.keyring import KeyRing
from homeserver.events.event import Event, InvalidEventError
from homeserver.events.hashing import pdu_after_content_hash_check
from homeserver.events.pdu_format import PDUFormatError, check_pdu_format
from homeserver.events.room_versions import RoomVersion

logger = logging.getLogger(__name__)


class BadPduError(ValueError):
    """The PDU is not an event of this room version."""


def parse_pdu(pdu: Any, room_version: RoomVersion) -> Event:
    """A well-formed Event (its ID computed or carried), or BadPduError."""
    if not isinstance(pdu, dict):
        raise BadPduError("a PDU must be a JSON object")
    try:
        check_pdu_format(pdu, room_version)
        return Event.from_pdu(pdu, room_version)
    except (PDUFormatError, InvalidEventError, ValueError) as exc:
        raise BadPduError(str(exc)) from None


async def checked_events(keyring: KeyRing, pdus: Iterable[Any], room_version: RoomVersion,
                         room_id: str) -> list[Event]:
    """The PDUs that are well formed, of ``room_id`` and validly signed, each once; the others
    are dropped (and logged), so one bad event does not spoil the rest."""
    parsed: dict[str, Event] = {}
    for pdu in pdus:
        try:
            event = parse_pdu(pdu, room_version)
        except BadPduError as exc:
            logger.info("dropping a malformed PDU of %s: %s", room_id, exc)
            continue
        if event.room_id != room_id:
            logger.info("dropping %s: it is for another room", event.event_id)
            continue
        parsed.setdefault(event.event_id, event)
    events = list(parsed.values())
    problems = await keyring.verify_events_signatures([e.pdu for e in events], room_version)
    kept = []
    for event, problem in zip(events, problems, strict=True):
        if problem is not None:
            logger.info("dropping %s of %s: %s", event.event_id, room_id, problem)
            continue
        pdu = pdu_after_content_hash_check(event.pdu, room_version)
        kept.append(event if pdu is event.pdu else Event(pdu, event.event_id, room_version))
    return kept
