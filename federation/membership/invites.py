"""Invites across servers.

Inbound (``PUT /invite``, v1 and v2): another server's user invites one of ours. We check
the event (an invite of a local user, sent by a user of the calling server, validly signed
and hashed), add our signature and answer with it. When none of our users is in the room,
the invite is kept as an out-of-band membership (pipeline/out_of_band.py) carrying the
stripped state the inviter sent in ``unsigned.invite_room_state``, which is what the
invitee's sync shows. When one of ours is joined, the invite must pass against the room's
current state, and it reaches the room itself through ``/send``.

Outbound: a local user invites a user of another server. The membership handler builds
the event (``EventPipeline.build_local``), this module sends it to the invitee's server
with the room's stripped state and checks that server's signature on the answer; the
handler then submits the signed event.
"""

from __future__ import annotations

import logging
from typing import Any

from federation.keys.keyring import KeyRing
from federation.membership.pdus import BadPduError, parse_pdu
from federation.membership.resident import check_against_current_state, incompatible_version
from federation.membership.stripped import sanitise_stripped_state, stripped_room_state
from federation.membership.templates import add_our_signature
from federation.transport.client import (
    FederationClient,
    FederationDeniedError,
    FederationRequestError,
    federation_path,
)
from homeserver.errors import MatrixError, bad_json, forbidden
from homeserver.events.event import Event
from homeserver.events.hashing import check_content_hash
from homeserver.events.identifiers import is_valid_user_id, server_name_of
from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.events.signing import SignatureError
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.pipeline import EventPipeline, Outcome
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

INVITE_TIMEOUT_S = 30.0


class FederationInvites:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.signing_key = hs.signing_key
        self.keyring = hs.get(KeyRing)
        self.client = hs.get(FederationClient)
        self.pipeline = hs.get(EventPipeline)
        self.state = hs.get(RoomStateHandler)
        self.events = hs.get(EventStore)
        self.members = hs.get(RoomMemberStore)
        self.users = hs.get(UserStore)

    # -- inbound ---------------------------------------------------------------------------

    async def on_invite(self, origin: str, room_id: str, event_id: str, pdu: Any, room_version_id: str,
                        invite_room_state: Any) -> dict[str, Any]:
        """Check, sign and keep an invite of one of our users; the answer's signed event."""
        room_version = KNOWN_ROOM_VERSIONS.get(room_version_id)
        if room_version is None:
            raise incompatible_version(room_version_id)
        event = await self._checked_invite(origin, room_id, event_id, pdu, room_version)
        signed = add_our_signature(event, self.signing_key)
        held = await self.state.get_room_version(room_id)
        if held is not None and held.identifier != room_version.identifier:
            raise bad_json("The room's version is not the one given")
        if await self._we_are_in(room_id):
            reason = await check_against_current_state(self.state, self.events, room_id, signed)
            if reason is not None:
                raise forbidden(f"The invite is not allowed: {reason}")
        else:
            stored = dict(signed.pdu)
            stored["unsigned"] = {"invite_room_state": sanitise_stripped_state(invite_room_state)}
            result = await self.pipeline.store_out_of_band_membership(
                Event(stored, event.event_id, room_version), origin)
            if result.outcome not in (Outcome.OUTLIER, Outcome.DUPLICATE, Outcome.REFUSED):
                raise forbidden(f"The invite cannot be kept: {result.reason}")
        answer = dict(signed.pdu)
        answer.pop("unsigned", None)
        return answer

    async def _checked_invite(self, origin: str, room_id: str, event_id: str, pdu: Any,
                              room_version: RoomVersion) -> Event:
        try:
            event = parse_pdu(pdu, room_version)
        except BadPduError as exc:
            raise bad_json(f"Not a valid event: {exc}") from None
        if event.event_id != event_id or event.room_id != room_id:
            raise bad_json("The event's ID or room is not the one in the path")
        if event.type != "m.room.member" or event.membership != "invite" or event.state_key is None:
            raise bad_json("Only an m.room.member invite is accepted here")
        if not is_valid_user_id(event.state_key) or server_name_of(event.state_key) != self.server_name:
            raise bad_json("The invitee is not a user of this server")
        if server_name_of(event.sender) != origin:
            raise forbidden("The inviter is not a user of your server")
        if not await self.users.user_exists(event.state_key):
            raise forbidden("No such user here")
        try:
            await self.keyring.verify_event_signatures(event.pdu, room_version)
        except SignatureError as exc:
            raise forbidden(f"The event's signatures do not verify: {exc}") from None
        if not check_content_hash(event.pdu):
            raise bad_json("The event's content hash is wrong")
        return event

    async def _we_are_in(self, room_id: str) -> bool:
        members = await self.members.get_users_in_room(room_id)
        return any(server_name_of(member) == self.server_name for member in members)

    # -- outbound --------------------------------------------------------------------------

    async def send_invite(self, event: Event) -> Event:
        """Have the invitee's server sign our invite (v2, v1 for rooms of version 1 or 2);
        MatrixError when it refuses or cannot be reached."""
        assert event.state_key is not None
        destination = server_name_of(event.state_key)
        invite_state = await stripped_room_state(self.hs, event.room_id, (("m.room.member", event.sender),))
        path = federation_path("/_matrix/federation/v2/invite/{}/{}", event.room_id, event.event_id)
        body = {"room_version": event.room_version.identifier, "event": event.pdu,
                "invite_room_state": invite_state}
        try:
            answer = await self.client.put_json(destination, path, body, timeout_s=INVITE_TIMEOUT_S)
        except FederationRequestError as exc:
            if exc.code not in (400, 404) or exc.errcode not in (None, "M_UNRECOGNIZED") \
                    or event.room_version.identifier not in ("1", "2"):
                raise _invite_error(exc) from None
            answer = await self._send_invite_v1(destination, event, invite_state)
        returned = answer.get("event") if isinstance(answer, dict) else None
        return await self._countersigned(destination, event, returned)

    async def _send_invite_v1(self, destination: str, event: Event, invite_state: list[dict[str, Any]]) -> Any:
        path = federation_path("/_matrix/federation/v1/invite/{}/{}", event.room_id, event.event_id)
        pdu = {**event.pdu, "unsigned": {"invite_room_state": invite_state}}
        try:
            answer = await self.client.put_json(destination, path, pdu, timeout_s=INVITE_TIMEOUT_S)
        except FederationRequestError as exc:
            raise _invite_error(exc) from None
        return answer[1] if isinstance(answer, list) and len(answer) == 2 else None

    async def _countersigned(self, destination: str, event: Event, returned: Any) -> Event:
        """Our event with the invitee server's signature from its answer (checked)."""
        signatures = returned.get("signatures") if isinstance(returned, dict) else None
        theirs = signatures.get(destination) if isinstance(signatures, dict) else None
        if not isinstance(theirs, dict) or not theirs:
            raise MatrixError(502, "M_UNKNOWN", f"{destination} answered the invite without its signature")
        pdu = dict(event.pdu)
        pdu["signatures"] = {**event.pdu.get("signatures", {}), destination: theirs}
        try:
            await self.keyring.verify_json_for_server(
                destination, redact_pdu(dict(pdu), event.room_version), event.origin_server_ts)
        except SignatureError as exc:
            raise MatrixError(502, "M_UNKNOWN", f"{destination} signed the invite badly: {exc}") from None
        return Event(pdu, event.event_id, event.room_version)


def _invite_error(exc: FederationRequestError) -> MatrixError:
    if isinstance(exc, FederationDeniedError):
        return forbidden(f"Federation with {exc.destination} is not allowed")
    message = exc.body.get("error") if isinstance(exc.body, dict) else None
    detail = f"{exc.destination}: {message}" if isinstance(message, str) else str(exc)
    if exc.code == 403:
        return forbidden(f"The invitee's server refused the invite ({detail})")
    if exc.code == 400 and exc.errcode == "M_INCOMPATIBLE_ROOM_VERSION":
        return MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION", detail)
    return MatrixError(502, "M_UNKNOWN", f"The invitee's server could not be asked ({detail})")
