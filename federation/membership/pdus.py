"""Turning untrusted PDUs of a join into Events we may hand to the pipeline: one event
parsed and format-checked (``send_join``'s body), or many through the receiver's
``PduChecker`` (format, signatures in one batch, content hash), dropping the bad ones."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from federation.receiver.pdu_checks import CheckedPdu, PduChecker
from homeserver.events.event import Event, InvalidEventError
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


async def checked_events(checker: PduChecker, pdus: Iterable[Any], room_version: RoomVersion,
                         room_id: str) -> list[Event]:
    """The PDUs that are well formed, of ``room_id`` and validly signed (the receiver's checks),
    each once; the others are dropped (and logged), so one bad event does not spoil the rest."""
    results = await checker.check(list(pdus), room_version, room_id)
    kept: dict[str, Event] = {}
    for result in results:
        if isinstance(result, CheckedPdu):
            kept.setdefault(result.event.event_id, result.event)
        else:
            logger.info("dropping a PDU of %s from a join: %s", room_id, result.reason)
    return list(kept.values())
