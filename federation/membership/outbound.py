"""Leaving and knocking on rooms none of our users is in, through a resident server.

``leave``: rejecting an invite, or taking back a knock. ``make_leave`` then ``send_leave``
(v2, else v1) to each candidate in turn; the leave is then kept as an out-of-band
membership, so the user's sync shows it. When no server answers (the inviter is gone),
the leave is made here alone, on top of the invite or knock, and kept the same way: the
user is out as far as we are concerned, as the spec allows.

``knock``: ``make_knock`` (offering our room versions), ``send_knock``, and the knock is
kept as an out-of-band membership with the ``knock_room_state`` the server answered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from federation.membership.joining import JoinAttemptError, bad_answer, client_error, peer_error
from federation.membership.stripped import sanitise_stripped_state
from federation.membership.templates import BadTemplateError, sign_template
from federation.transport.client import (
    FederationClient,
    FederationRequestError,
    federation_path,
    first_answer,
)
from homeserver.errors import MatrixError, forbidden, not_found
from homeserver.events.builder import build_event
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.pipeline import EventPipeline, Outcome
from homeserver.server import Server
from storage.stores.events import EventStore

logger = logging.getLogger(__name__)

TIMEOUT_S = 30.0


class FederationMembership:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.clock = hs.clock
        self.signing_key = hs.signing_key
        self.client = hs.get(FederationClient)
        self.pipeline = hs.get(EventPipeline)
        self.state = hs.get(RoomStateHandler)
        self.events = hs.get(EventStore)

    def _now_ms(self) -> int:
        return int(self.clock.seconds() * 1000)

    # -- leave ---------------------------------------------------------------------------

    async def leave(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any],
                    current_event_id: str) -> None:
        """Leave through the first server that takes it; made locally when none answers."""
        async def ask(server: str) -> Event:
            return await self._leave_via(server, user_id, room_id, content)

        found = await first_answer(servers, ask, f"leaving {room_id}", retry_on=(JoinAttemptError,))
        if found.value is not None:
            await self._keep(found.value, found.server)
            return
        await self._keep(await self._local_leave(user_id, room_id, content, current_event_id), None)

    async def _leave_via(self, server: str, user_id: str, room_id: str, content: dict[str, Any]) -> Event:
        path = federation_path("/_matrix/federation/v1/make_leave/{}/{}", room_id, user_id)
        room_version, template = await self._make(server, path, None)
        event = self._sign(server, template, room_version, room_id, user_id, "leave", content)
        await self._send(server, "leave", room_id, event, ("v2", "v1"))
        return event

    async def _local_leave(self, user_id: str, room_id: str, content: dict[str, Any], current_event_id: str) -> Event:
        """A leave nobody else will see: on top of the user's invite or knock, signed by us."""
        current = await self.events.get_event(current_event_id)
        if current is None:
            raise not_found("The membership to leave is unknown")
        room_version = current.event.room_version
        hashes = {current_event_id: current.event.pdu.get("hashes", {})}
        return build_event(
            room_version=room_version, event_type="m.room.member", sender=user_id,
            content={**content, "membership": "leave"}, room_id=room_id, prev_event_ids=[current_event_id],
            auth_event_ids=[current_event_id], depth=current.event.depth + 1, origin_server_ts=self._now_ms(),
            key=self.signing_key, state_key=user_id, reference_hashes=hashes,
        )

    # -- knock ---------------------------------------------------------------------------

    async def knock(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> None:
        async def ask(server: str) -> Event:
            path = federation_path("/_matrix/federation/v1/make_knock/{}/{}", room_id, user_id)
            room_version, template = await self._make(server, path, list(KNOWN_ROOM_VERSIONS))
            if not room_version.knock_join_rule:
                raise JoinAttemptError(MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION",
                                                   "The room's version does not allow knocking"))
            event = self._sign(server, template, room_version, room_id, user_id, "knock", content)
            answer = await self._send(server, "knock", room_id, event, ("v1",))
            knock_state = answer.get("knock_room_state") if isinstance(answer, dict) else None
            pdu = {**event.pdu, "unsigned": {"knock_room_state": sanitise_stripped_state(knock_state)}}
            return Event(pdu, event.event_id, event.room_version)

        found = await first_answer(servers, ask, f"knocking on {room_id}", retry_on=(JoinAttemptError,))
        if found.value is None:
            raise client_error(found.errors)
        await self._keep(found.value, found.server)

    # -- shared steps --------------------------------------------------------------------

    async def _make(self, server: str, path: str, versions: list[str] | None) -> tuple[RoomVersion, dict[str, Any]]:
        args = {"ver": versions} if versions is not None else None
        try:
            body = await self.client.get_json(server, path, args, timeout_s=TIMEOUT_S)
        except FederationRequestError as exc:
            raise JoinAttemptError(peer_error(exc)) from None
        if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
            raise JoinAttemptError(bad_answer(server, path.split("/")[4]))
        version = KNOWN_ROOM_VERSIONS.get(body.get("room_version", "1"))
        if version is None:
            raise JoinAttemptError(MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION",
                                               "The room's version is not one this server supports"))
        return version, body["event"]

    def _sign(self, server: str, template: dict[str, Any], room_version: RoomVersion, room_id: str, user_id: str,
              membership: str, content: dict[str, Any]) -> Event:
        try:
            return sign_template(template, room_version, room_id, user_id, membership, content, self.signing_key,
                                 self._now_ms())
        except BadTemplateError as exc:
            raise JoinAttemptError(bad_answer(server, f"make_{membership} ({exc})")) from None

    async def _send(self, server: str, kind: str, room_id: str, event: Event, versions: tuple[str, ...]) -> Any:
        """``send_<kind>`` in the first of ``versions`` the server knows; its answer (v1's unwrapped)."""
        for i, version in enumerate(versions):
            path = federation_path(f"/_matrix/federation/{version}/send_{kind}/{{}}/{{}}", room_id, event.event_id)
            try:
                answer = await self.client.put_json(server, path, event.pdu, timeout_s=TIMEOUT_S)
            except FederationRequestError as exc:
                last = i == len(versions) - 1
                if last or exc.code not in (400, 404) or exc.errcode not in (None, "M_UNRECOGNIZED"):
                    raise JoinAttemptError(peer_error(exc)) from None
                continue
            if kind == "leave" and version == "v1":
                return answer[1] if isinstance(answer, list) and len(answer) == 2 else {}
            return answer
        raise JoinAttemptError(forbidden("unreachable"))

    async def _keep(self, event: Event, origin: str | None) -> None:
        result = await self.pipeline.store_out_of_band_membership(event, origin)
        if result.outcome not in (Outcome.OUTLIER, Outcome.DUPLICATE):
            logger.warning("keeping %s in %s failed: %s", event.membership, event.room_id, result.reason)
