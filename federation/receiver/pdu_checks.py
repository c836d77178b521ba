"""The first three of the spec's "checks performed on receipt of a PDU": format (with the
65,536-byte limit and the room version), the signatures of the servers that must sign, and the
content hash (a PDU whose hash is wrong is kept in its redacted form). The auth checks (against
the event's auth_events, the state before it, and the current state) are the event pipeline's.

Every PDU the receiver holds, from a transaction or fetched to fill a gap, comes through
``PduChecker.check``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import attrs

from federation.keys.keyring import KeyRing
from homeserver.events.event import Event, InvalidEventError
from homeserver.events.hashing import check_content_hash
from homeserver.events.pdu_format import PDUFormatError, check_pdu_format
from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import RoomVersion
from homeserver.server import Server

logger = logging.getLogger(__name__)


@attrs.frozen
class CheckedPdu:
    """A PDU that passed format, signatures and hash, as an Event (redacted if the hash was wrong)."""

    event: Event
    redacted: bool = False


@attrs.frozen
class FailedPdu:
    """A PDU dropped by the checks; ``event_id`` is None when it could not even be identified."""

    event_id: str | None
    reason: str


def event_id_of(pdu: Any, room_version: RoomVersion) -> str | None:
    """The PDU's event ID (carried in v1/v2, the reference hash from v3), or None if it has none."""
    if not isinstance(pdu, dict):
        return None
    try:
        return Event.from_pdu(pdu, room_version).event_id
    except (InvalidEventError, TypeError, ValueError):
        return None


def _without_unsigned(pdu: dict[str, Any]) -> dict[str, Any]:
    """What the sender says in ``unsigned`` is not signed: we keep none of it."""
    return {k: v for k, v in pdu.items() if k != "unsigned"}


class PduChecker:
    def __init__(self, hs: Server) -> None:
        self.keyring = hs.get(KeyRing)

    async def check(self, pdus: Sequence[Any], room_version: RoomVersion,
                    room_id: str | None = None) -> list[CheckedPdu | FailedPdu]:
        """One result per PDU, in order; ``room_id`` (when given) must be each PDU's room."""
        results: list[CheckedPdu | FailedPdu | None] = []
        formatted: list[tuple[int, dict[str, Any], str]] = []
        for index, raw in enumerate(pdus):
            failure = self._format(raw, room_version, room_id)
            if isinstance(failure, FailedPdu):
                results.append(failure)
                continue
            pdu, event_id = failure
            results.append(None)
            formatted.append((index, pdu, event_id))
        problems = await self.keyring.verify_events_signatures([p for _, p, _ in formatted], room_version)
        for (index, pdu, event_id), problem in zip(formatted, problems, strict=True):
            if problem is not None:
                logger.info("dropping PDU %s: %s", event_id, problem)
                results[index] = FailedPdu(event_id, f"signature check failed: {problem}")
                continue
            redacted = not check_content_hash(pdu)
            if redacted:
                logger.info("PDU %s has a wrong content hash: keeping it redacted", event_id)
                pdu = redact_pdu(pdu, room_version)
            results[index] = CheckedPdu(Event.from_pdu(pdu, room_version, event_id), redacted)
        return [r for r in results if r is not None]

    @staticmethod
    def _format(raw: Any, room_version: RoomVersion,
                room_id: str | None) -> FailedPdu | tuple[dict[str, Any], str]:
        if not isinstance(raw, dict):
            return FailedPdu(None, "a PDU must be a JSON object")
        pdu = _without_unsigned(raw)
        event_id = event_id_of(pdu, room_version)
        if event_id is None:
            return FailedPdu(None, "the PDU has no event ID")
        try:
            check_pdu_format(raw, room_version)  # as received: the size limit counts all of it
        except PDUFormatError as exc:
            return FailedPdu(event_id, f"malformed PDU: {exc}")
        if room_id is not None and Event.from_pdu(pdu, room_version, event_id).room_id != room_id:
            return FailedPdu(event_id, "the PDU is for another room")
        return pdu, event_id
