"""Joining a room on another server (the ``RemoteRoomJoiner`` registered in homeserver/app.py).

For each candidate server in turn: ``make_join`` (offering every room version we know),
build and sign the event from the template, ``send_join`` (v2, else v1). The first server
that gets that far hands us the room: its state before our join and the auth chain.
Those are checked (format, signatures through the KeyRing, content hash), stored as
outliers (each checked against its own auth events), and the join then enters the room
through the pipeline with that state as the state before it, which creates the room here.
An event that fails a check is dropped; the join goes on without it.

We ask for a partial-state answer (``omit_members``, MSC3706): when the resident server
leaves the member events out, the room is recorded as partial before the join enters it,
and federation/membership/partial_state.py fetches the rest in the background.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from federation.membership.partial_state import PartialStateResync
from federation.membership.pdus import checked_events
from federation.membership.templates import BadTemplateError, sign_template
from federation.receiver.pdu_checks import PduChecker
from federation.transport.client import (
    FederationClient,
    FederationDeniedError,
    FederationRequestError,
    federation_path,
    first_answer,
)
from homeserver.errors import MatrixError, forbidden, not_found
from homeserver.events.event import Event
from homeserver.events.identifiers import is_valid_room_id, server_name_of
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from homeserver.handlers.rooms.remote_rooms import ResolvedAlias
from homeserver.pipeline import EventPipeline, Outcome, RemoteEvent
from homeserver.server import Server
from storage.stores.partial_state import PartialStateRoom, PartialStateStore
from storage.stores.state import StateMap

logger = logging.getLogger(__name__)

MAKE_TIMEOUT_S = 30.0
SEND_JOIN_TIMEOUT_S = 120.0
SEND_JOIN_MAX_BYTES = 200 * 1024 * 1024


class JoinAttemptError(Exception):
    """One candidate server did not get us into the room; ``error`` is what the client would see."""

    def __init__(self, error: MatrixError) -> None:
        super().__init__(error.message)
        self.error = error


class FederationRoomJoiner:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.clock = hs.clock
        self.signing_key = hs.signing_key
        self.client = hs.get(FederationClient)
        self.checker = hs.get(PduChecker)
        self.pipeline = hs.get(EventPipeline)
        self.partial = hs.get(PartialStateStore)
        self.resync = hs.get(PartialStateResync)

    async def resolve_alias(self, alias: str) -> ResolvedAlias:
        server = server_name_of(alias)
        try:
            body = await self.client.get_json(server, "/_matrix/federation/v1/query/directory",
                                              {"room_alias": alias}, timeout_s=MAKE_TIMEOUT_S)
        except FederationDeniedError:
            raise forbidden(f"Federation with {server} is not allowed") from None
        except FederationRequestError as exc:
            if exc.code == 404:
                raise not_found("Room alias not found") from None
            raise not_found(f"Room alias not found: {server} could not be asked ({exc})") from None
        room_id = body.get("room_id") if isinstance(body, dict) else None
        if not isinstance(room_id, str) or not is_valid_room_id(room_id):
            raise not_found(f"Room alias not found: {server} answered with no room ID")
        servers = body.get("servers") if isinstance(body, dict) else None
        listed = [s for s in servers if isinstance(s, str)] if isinstance(servers, list) else []
        return ResolvedAlias(room_id, tuple(dict.fromkeys([server, *listed])))

    async def join(self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]) -> None:
        async def ask(server: str) -> bool:
            await self._join_via(server, user_id, room_id, content)
            return True

        found = await first_answer(servers, ask, f"joining {room_id}", retry_on=(JoinAttemptError,))
        if found.value is None:
            raise client_error(found.errors)

    async def _join_via(self, server: str, user_id: str, room_id: str, content: dict[str, Any]) -> None:
        room_version, template = await self._make_join(server, room_id, user_id)
        event = self._build(server, room_version, template, room_id, user_id, content)
        answer = await self._send_join(server, room_id, event)
        returned = answer.get("event")
        if isinstance(returned, dict):  # a restricted join comes back with the authoriser's signature
            (signed,) = await checked_events(self.checker, [returned], room_version, room_id) or [event]
            if signed.event_id == event.event_id:
                event = signed
        await self._enter_room(server, room_id, room_version, event, answer)

    async def _make_join(self, server: str, room_id: str, user_id: str) -> tuple[RoomVersion, dict[str, Any]]:
        path = federation_path("/_matrix/federation/v1/make_join/{}/{}", room_id, user_id)
        try:
            body = await self.client.get_json(server, path, {"ver": list(KNOWN_ROOM_VERSIONS)},
                                              timeout_s=MAKE_TIMEOUT_S)
        except FederationRequestError as exc:
            raise JoinAttemptError(peer_error(exc)) from None
        if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
            raise JoinAttemptError(bad_answer(server, "make_join"))
        version = KNOWN_ROOM_VERSIONS.get(body.get("room_version", "1"))
        if version is None:
            raise JoinAttemptError(MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION",
                                               "The room's version is not one this server supports"))
        return version, body["event"]

    def _build(self, server: str, room_version: RoomVersion, template: dict[str, Any], room_id: str, user_id: str,
               content: dict[str, Any]) -> Event:
        """Our signed join from the resident server's template (checked to be what we asked for)."""
        given = template.get("content")
        authoriser = given.get("join_authorised_via_users_server") if isinstance(given, dict) else None
        new_content = dict(content)
        if room_version.restricted_join_rule and isinstance(authoriser, str):
            new_content["join_authorised_via_users_server"] = authoriser
        try:
            return sign_template(template, room_version, room_id, user_id, "join", new_content, self.signing_key,
                                 int(self.clock.seconds() * 1000))
        except BadTemplateError as exc:
            raise JoinAttemptError(bad_answer(server, f"make_join ({exc})")) from None

    async def _send_join(self, server: str, room_id: str, event: Event) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"timeout_s": SEND_JOIN_TIMEOUT_S, "max_response_bytes": SEND_JOIN_MAX_BYTES}
        v2 = federation_path("/_matrix/federation/v2/send_join/{}/{}", room_id, event.event_id)
        try:
            body = await self.client.put_json(server, v2, event.pdu, args={"omit_members": "true"}, **kwargs)
        except FederationRequestError as exc:
            if exc.code not in (400, 404) or exc.errcode not in (None, "M_UNRECOGNIZED"):
                raise JoinAttemptError(peer_error(exc)) from None
            v1 = federation_path("/_matrix/federation/v1/send_join/{}/{}", room_id, event.event_id)
            try:
                answer = await self.client.put_json(server, v1, event.pdu, **kwargs)
            except FederationRequestError as exc1:
                raise JoinAttemptError(peer_error(exc1)) from None
            body = answer[1] if isinstance(answer, list) and len(answer) == 2 else None
        if not isinstance(body, dict) or not isinstance(body.get("state"), list) \
                or not isinstance(body.get("auth_chain"), list):
            raise JoinAttemptError(bad_answer(server, "send_join"))
        return body

    async def _enter_room(self, server: str, room_id: str, room_version: RoomVersion, join: Event,
                          answer: dict[str, Any]) -> None:
        state_events = await checked_events(self.checker, answer["state"], room_version, room_id)
        chain = await checked_events(self.checker, answer["auth_chain"], room_version, room_id)
        wanted = {e.event_id: e for e in [*chain, *state_events] if e.event_id != join.event_id}
        results = await self.pipeline.store_outliers(room_id, list(wanted.values()), server)
        held = {r.event_id for r in results if r.outcome in (Outcome.OUTLIER, Outcome.DUPLICATE)}
        state: StateMap = {}
        for event in state_events:
            if event.event_id in held and event.state_key is not None:
                state[(event.type, event.state_key)] = event.event_id
        create_id = state.get(("m.room.create", ""))
        if create_id is None or wanted[create_id].content.get("room_version", "1") != room_version.identifier:
            raise JoinAttemptError(bad_answer(server, "send_join (no usable m.room.create)"))
        partial = _partial_state_room(server, room_id, join, answer)
        if partial is not None:  # recorded first: the pipeline checks the room's events as partial
            await self.partial.add(partial)
        (result,) = await self.pipeline.submit_remote(room_id, [RemoteEvent(join, state_before=state, rejoin=True)], server)
        if result.outcome not in (Outcome.ACCEPTED, Outcome.DUPLICATE):
            if partial is not None:
                await self.partial.remove(room_id)
            raise JoinAttemptError(forbidden(f"Our join was not allowed by the room's state: {result.reason}"))
        if partial is not None:
            self.resync.start(room_id)


def _partial_state_room(server: str, room_id: str, join: Event, answer: dict[str, Any]) -> PartialStateRoom | None:
    """The partial-state record of a join whose answer left the members out, else None."""
    if answer.get("members_omitted") is not True:
        return None
    listed = answer.get("servers_in_room")
    servers = [s for s in listed if isinstance(s, str)] if isinstance(listed, list) else []
    return PartialStateRoom(room_id, join.event_id, server, tuple(dict.fromkeys(s for s in servers if s != server)))


def peer_error(exc: FederationRequestError) -> MatrixError:
    """What a client sees when the resident server refused or could not be reached."""
    if isinstance(exc, FederationDeniedError):
        return forbidden(f"Federation with {exc.destination} is not allowed")
    message = exc.body.get("error") if isinstance(exc.body, dict) else None
    detail = f"{exc.destination}: {message}" if isinstance(message, str) else str(exc)
    if exc.code == 403:
        return forbidden(detail)
    if exc.code == 400 and exc.errcode == "M_INCOMPATIBLE_ROOM_VERSION":
        return MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION", detail)
    return not_found(f"No server could let us into the room ({detail})")


def bad_answer(server: str, what: str) -> MatrixError:
    """A peer answering junk is, for the client, a server that could not let us in."""
    return not_found(f"{server} answered {what} with something unusable")


def client_error(errors: list[tuple[str, Exception]]) -> MatrixError:
    """The most telling of the servers' failures (`FirstAnswer.errors` of `JoinAttemptError`s): a refusal
    first, then a version problem, then 'not found'."""
    failures = [exc.error for _, exc in errors if isinstance(exc, JoinAttemptError)]
    for status, errcode in ((403, None), (400, "M_INCOMPATIBLE_ROOM_VERSION"), (400, "M_UNSUPPORTED_ROOM_VERSION")):
        for failure in failures:
            if failure.status == status and (errcode is None or failure.errcode == errcode):
                return failure
    for failure in failures:
        if failure.status == 404:
            return failure
    return not_found("No server in the room could be reached") if not failures else \
        not_found(f"Could not join through any server: {failures[-1].message}")
