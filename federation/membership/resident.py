"""The resident side of joins, leaves and knocks: ``make_join``/``send_join``,
``make_leave``/``send_leave`` and ``make_knock``/``send_knock`` for a server whose user
wants in (or out of) a room we are in. A knock's answer is the room's stripped state.

``make_*`` hands out an unsigned template on our forward extremities, after checking that
the auth rules would allow it (a banned user gets 403 here already). ``send_*`` takes the
signed event back, refuses anything but that membership for a user of the calling server,
vouches for a restricted join with our signature, and runs it through the event pipeline
like any remote event. The join's answer is the state before the join and its auth chain.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from federation.keys.keyring import KeyRing
from federation.membership.partial_answer import partial_state_ids
from federation.membership.pdus import BadPduError, parse_pdu
from federation.membership.stripped import stripped_room_state
from federation.membership.templates import add_our_signature
from federation.sender import FederationSender
from homeserver.errors import MatrixError, bad_json, forbidden, not_found
from homeserver.events.auth import listed_auth_types_for_event
from homeserver.events.event import Event
from homeserver.events.hashing import check_content_hash
from homeserver.events.identifiers import is_valid_user_id, server_name_of
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import SignatureError
from homeserver.handlers.rooms.membership import RESTRICTED_RULES, RoomMemberHandler
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.pipeline import EventPipeline, Outcome
from homeserver.pipeline.checks import auth_state_ids, check_against_state
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.partial_state import PartialStateStore
from storage.stores.room_dag import RoomDagStore
from storage.stores.room_members import RoomMemberStore

logger = logging.getLogger(__name__)

#: Most prev_events a template cites (as for local events).
MAX_PREV_EVENTS = 10
MEMBERSHIPS = ("join", "leave", "knock")


def incompatible_version(room_version: str) -> MatrixError:
    return MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION",
                       f"Your server does not support room version {room_version}", room_version=room_version)


class ResidentMembership:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name: str = hs.server_name
        self.clock = hs.clock
        self.signing_key = hs.signing_key
        self.pipeline = hs.get(EventPipeline)
        self.state = hs.get(RoomStateHandler)
        self.events = hs.get(EventStore)
        self.dag = hs.get(RoomDagStore)
        self.members = hs.get(RoomMemberStore)
        self.keyring = hs.get(KeyRing)
        self.partial = hs.get(PartialStateStore)

    # -- make_join / make_leave ------------------------------------------------------------

    async def make_membership(self, origin: str, room_id: str, user_id: str, membership: str,
                              supported_versions: Sequence[str] | None = None) -> dict[str, Any]:
        """An unsigned event template for ``user_id`` to change to ``membership``."""
        room_version = await self._room_we_are_in(room_id)
        if not is_valid_user_id(user_id):
            raise bad_json(f"{user_id!r} is not a user ID")
        if server_name_of(user_id) != origin:
            raise forbidden("You may only ask for a membership event of your own server's users")
        if supported_versions is not None and room_version.identifier not in supported_versions:
            raise incompatible_version(room_version.identifier)
        content: dict[str, Any] = {"membership": membership}
        if membership == "join":
            authoriser = await self._authoriser_for(room_id, user_id)
            if authoriser is not None:
                content["join_authorised_via_users_server"] = authoriser
        template = await self._template(room_id, room_version, user_id, content)
        event = Event(template, "$template", room_version)
        reason = await check_against_current_state(self.state, self.events, room_id, event)
        if reason is not None:
            raise forbidden(f"You may not {membership} this room: {reason}")
        return {"event": template, "room_version": room_version.identifier}

    async def _authoriser_for(self, room_id: str, user_id: str) -> str | None:
        """For a restricted room a member of ours who vouches for the join, unless the user is
        already invited or joined (then the join rules let them in without one)."""
        current = await self.members.get_membership(room_id, user_id)
        if current is not None and current.membership in ("invite", "join"):
            return None
        join_rules = await self.state.get_current_state_event(room_id, "m.room.join_rules")
        if join_rules is None or join_rules.event.content.get("join_rule") not in RESTRICTED_RULES:
            return None
        return await self.hs.get(RoomMemberHandler).restricted_join_authoriser(room_id, user_id)

    async def _template(self, room_id: str, room_version: RoomVersion, user_id: str,
                        content: dict[str, Any]) -> dict[str, Any]:
        extremities = await self.dag.get_forward_extremities(room_id)
        prev_ids = [i for i, _ in sorted(extremities.items(), key=lambda item: (-item[1], item[0]))]
        prev_ids = prev_ids[:MAX_PREV_EVENTS]
        depth = max((extremities[i] for i in prev_ids), default=0) + 1
        pdu: dict[str, Any] = {
            "room_id": room_id, "type": "m.room.member", "sender": user_id, "state_key": user_id,
            "content": content, "depth": depth, "origin": self.server_name,
            "origin_server_ts": int(self.clock.seconds() * 1000),
        }
        current = await self.state.get_current_state_ids(room_id)
        listed = listed_auth_types_for_event(Event(pdu, "$template", room_version))
        auth_ids = [current[key] for key in sorted(listed) if key in current]
        if room_version.event_id_carried_in_pdu:
            refs = await self.events.get_events([*prev_ids, *auth_ids])
            hashes = {i: s.event.pdu.get("hashes", {}) for i, s in refs.items()}
            pdu["prev_events"] = [[i, hashes.get(i, {})] for i in prev_ids]
            pdu["auth_events"] = [[i, hashes.get(i, {})] for i in auth_ids]
        else:
            pdu["prev_events"] = prev_ids
            pdu["auth_events"] = auth_ids
        return pdu

    async def _room_we_are_in(self, room_id: str) -> RoomVersion:
        room_version = await self.state.get_room_version(room_id)
        if room_version is None:
            raise not_found("Unknown room")
        members = await self.members.get_users_in_room(room_id)
        if not any(server_name_of(member) == self.server_name for member in members):
            raise not_found("This server is not in the room")
        if await self.partial.is_partial(room_id):  # our state lacks members: not ours to hand out
            raise not_found("This server is not fully joined to the room yet; try another server")
        return room_version

    # -- send_join / send_leave ------------------------------------------------------------

    async def send_membership(self, origin: str, room_id: str, event_id: str, pdu: Any,
                              membership: str, omit_members: bool = False) -> dict[str, Any]:
        """Take the signed event in; for a join, answer with the room as the joiner needs it
        (without most member events when ``omit_members``: federation/membership/partial_answer.py)."""
        room_version = await self._room_we_are_in(room_id)
        event = self._check_shape(origin, room_id, event_id, pdu, membership, room_version)
        event = self._countersign(event)
        try:
            await self.keyring.verify_event_signatures(event.pdu, room_version)
        except SignatureError as exc:
            raise forbidden(f"The event's signatures do not verify: {exc}") from None
        if not check_content_hash(event.pdu):
            raise bad_json("The event's content hash is wrong")
        reason = await check_against_current_state(self.state, self.events, room_id, event)
        if reason is not None:
            raise forbidden(f"You may not {membership} this room: {reason}")
        (result,) = await self.pipeline.submit_remote(room_id, [event], origin)
        if result.outcome in (Outcome.REJECTED, Outcome.SOFT_FAILED):
            raise forbidden(f"The event was not allowed: {result.reason}")
        if result.outcome in (Outcome.MISSING, Outcome.REFUSED):
            raise bad_json(f"The event cannot be accepted: {result.reason}")
        if result.outcome is Outcome.ACCEPTED:  # the room's other servers learn of it from us alone
            await self.hs.get(FederationSender).forward(room_id, event.event_id, origin)
        if membership == "knock":
            return {"knock_room_state": await stripped_room_state(self.hs, room_id, (("m.room.member", event.sender),))}
        if membership != "join":
            return {}
        return await self._join_answer(room_id, event, omit_members)

    def _check_shape(self, origin: str, room_id: str, event_id: str, pdu: Any, membership: str,
                     room_version: RoomVersion) -> Event:
        try:
            event = parse_pdu(pdu, room_version)
        except BadPduError as exc:
            raise bad_json(f"Not a valid event: {exc}") from None
        if event.event_id != event_id:
            raise bad_json("The event ID in the path is not the event's ID")
        if event.room_id != room_id:
            raise bad_json("The event is for another room")
        if event.type != "m.room.member" or event.membership != membership:
            raise bad_json(f"Only an m.room.member event with membership {membership!r} is accepted here")
        if event.state_key != event.sender:
            raise bad_json("The event must be for its sender's own membership")
        if server_name_of(event.sender) != origin:
            raise forbidden("The event's sender is not a user of your server")
        return event

    def _countersign(self, event: Event) -> Event:
        """Sign a restricted join that names one of our users as its authoriser."""
        authoriser = event.content.get("join_authorised_via_users_server")
        if event.membership != "join" or not isinstance(authoriser, str):
            return event
        if not event.room_version.restricted_join_rule:
            return event
        if not is_valid_user_id(authoriser) or server_name_of(authoriser) != self.server_name:
            raise bad_json("join_authorised_via_users_server names a user of another server")
        return add_our_signature(event, self.signing_key)

    async def _join_answer(self, room_id: str, event: Event, omit_members: bool) -> dict[str, Any]:
        stored = await self.events.get_event(event.event_id)
        if stored is None:
            raise not_found("The join event was not stored")
        state_ids = await self.state.get_state_ids_before_event(stored)
        members_before = await self.members.get_users_in_room(room_id)
        members_before.discard(event.sender)  # the spec's servers_in_room: those before the join
        if omit_members:
            memberships = await self.members.get_memberships_in_room(room_id)
            state_ids = partial_state_ids(state_ids, event.sender, memberships)
        chain_ids = await self.dag.get_auth_chain_ids({*state_ids.values(), event.event_id})
        chain_ids.discard(event.event_id)
        create_id = state_ids.get(("m.room.create", ""))
        if create_id is not None:  # v12 events never cite it, but every chain rests on it
            chain_ids.add(create_id)
        if omit_members:  # the spec lets a partial answer leave the returned state out of the chain
            chain_ids -= set(state_ids.values())
        loaded = await self.events.get_events({*state_ids.values(), *chain_ids})
        return {
            "origin": self.server_name,
            "state": [loaded[i].event.pdu for i in state_ids.values() if i in loaded],
            "auth_chain": [loaded[i].event.pdu for i in sorted(chain_ids) if i in loaded],
            "event": stored.event.pdu,
            "members_omitted": omit_members,
            "servers_in_room": sorted({server_name_of(m) for m in members_before}),
        }


async def check_against_current_state(state: RoomStateHandler, events: EventStore, room_id: str,
                                      event: Event) -> str | None:
    """Why ``event`` fails the auth rules against the room's current state (None: it passes); an
    event another server asks us to accept (a join, leave, knock or invite) is checked so."""
    current = await state.get_current_state_ids(room_id)
    ids = auth_state_ids(event, current)
    loaded = await events.get_events(ids.values())
    return check_against_state(event, {key: loaded[i].event for key, i in ids.items() if i in loaded})
