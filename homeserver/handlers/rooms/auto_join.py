"""``auto_join_rooms``: every new account joins the listed rooms (Synapse's keys).

For each alias, in order:

- it points at a room here: the new user joins; a room that is not public first
  gets an invite from ``auto_join_mxid_localpart``'s user, who must be able to invite;
- it is a local alias that does not exist yet and ``autocreate_auto_join_rooms`` is
  on: the room is created with ``autocreate_auto_join_room_preset`` (by the
  ``auto_join_mxid_localpart`` user if set, else by the new user) under that
  alias (not published in the room directory), and the new user ends up joined.  Unlike Synapse, which
  creates the rooms only when the very first account registers, a missing room
  is created whenever it is found missing, so adding auto_join_rooms to an
  existing server works too;
- otherwise (a remote alias: there is no federation yet) it is skipped with a warning.

The joins and invites bypass rate limits, and a failure on one room is logged
without failing the registration or the other rooms, as in Synapse.  The
auto-join user's account is made (without a password, so nobody can log in
as it or register its name) the first time it is needed.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.errors import MatrixError
from homeserver.events.identifiers import server_name_of
from homeserver.handlers.accounts.registration import RegistrationHandler
from homeserver.handlers.rooms.membership import RoomMemberHandler
from homeserver.handlers.rooms.room_create import RoomCreationHandler, parse_create_room
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.server import Server
from storage.stores.aliases import AliasStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

INVITE_ONLY_PRESETS = ("private_chat", "trusted_private_chat")


class AutoJoinHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.config = hs.config
        self.server_name: str = hs.server_name
        localpart = hs.config.auto_join_mxid_localpart
        self.auto_join_user = f"@{localpart}:{self.server_name}" if localpart else None
        self.registration = hs.get(RegistrationHandler)
        self.registration.on_registered.append(self.on_registered)

    async def on_registered(self, user_id: str, is_guest: bool) -> None:
        if not self.config.auto_join_rooms or user_id == self.auto_join_user:
            return
        if is_guest and not self.config.auto_join_rooms_for_guests:
            return
        for alias in self.config.auto_join_rooms:
            try:
                await self._join_one(user_id, alias)
            except MatrixError as exc:
                logger.warning("auto-join of %s to %s failed: %s %s", user_id, alias, exc.errcode, exc.message)
            except Exception:
                logger.exception("auto-join of %s to %s failed", user_id, alias)

    async def _join_one(self, user_id: str, alias: str) -> None:
        found = await self.hs.get(AliasStore).get_alias(alias)
        if found is not None:
            await self._join_existing(user_id, found[0])
            return
        if server_name_of(alias) != self.server_name:
            logger.warning("auto-join: %s is on another server; joining over federation is not supported yet",
                           alias)
            return
        if not self.config.autocreate_auto_join_rooms:
            logger.warning("auto-join: %s does not exist and autocreate_auto_join_rooms is off", alias)
            return
        try:
            await self._create(user_id, alias)
        except MatrixError as exc:
            if exc.errcode != "M_ROOM_IN_USE":
                raise
            # Another registration created it in the meantime: join that one.
            found = await self.hs.get(AliasStore).get_alias(alias)
            if found is None:
                raise
            await self._join_existing(user_id, found[0])

    async def _create(self, user_id: str, alias: str) -> None:
        creator = self.auto_join_user or user_id
        if creator != user_id:
            await self._ensure_account(creator)
        preset = self.config.autocreate_auto_join_room_preset
        body: dict[str, Any] = {"preset": preset, "room_alias_name": alias[1:].split(":", 1)[0]}
        if not self.config.autocreate_auto_join_rooms_federated:
            body["creation_content"] = {"m.federate": False}
        if creator != user_id and preset in INVITE_ONLY_PRESETS:
            body["invite"] = [user_id]
        request = parse_create_room(body, self.config.default_room_version)
        room_id, _ = await self.hs.get(RoomCreationHandler).create_room(creator, request, ratelimit=False)
        logger.info("auto-join: created %s as %s for %s", alias, room_id, user_id)
        if creator != user_id:
            await self.hs.get(RoomMemberHandler).join(user_id, room_id, ratelimit=False)

    async def _join_existing(self, user_id: str, room_id: str) -> None:
        members = self.hs.get(RoomMemberHandler)
        join_rules = await self.hs.get(RoomStateHandler).get_current_state_event(room_id, "m.room.join_rules")
        join_rule = join_rules.event.content.get("join_rule") if join_rules is not None else None
        if join_rule != "public":
            if self.auto_join_user is None:
                logger.warning("auto-join: %s is not public; set auto_join_mxid_localpart to a member who"
                               " can invite", room_id)
                return
            await members.invite(self.auto_join_user, room_id, user_id, ratelimit=False)
        await members.join(user_id, room_id, ratelimit=False)

    async def _ensure_account(self, user_id: str) -> None:
        if not await self.hs.get(UserStore).user_exists(user_id):
            try:
                await self.registration.register_user(user_id[1:].split(":", 1)[0], None, announce=False)
            except MatrixError as exc:
                if exc.errcode != "M_USER_IN_USE":  # made by a concurrent registration: fine
                    raise
