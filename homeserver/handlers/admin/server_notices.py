"""Server notices (Synapse's ``POST /_synapse/admin/v1/send_server_notice``): messages from
the server, sent by its notices account (``server_notices.system_mxid_localpart``) into a
room it keeps with each user: made on the first notice, named and tagged
``m.server_notice`` for the user, who is invited (or joined, with ``auto_join``) and may
not send there. Later notices reuse the room while the user is in it or invited.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, invalid_param
from homeserver.handlers.accounts.auth import Requester
from homeserver.handlers.accounts.profile import ProfileHandler
from homeserver.handlers.accounts.registration import RegistrationHandler
from homeserver.handlers.accounts.room_tags import RoomTagsHandler
from homeserver.handlers.admin.users import AdminUsersHandler
from homeserver.handlers.rooms.membership import RoomMemberHandler
from homeserver.handlers.rooms.message_send import EventSendHandler
from homeserver.handlers.rooms.room_create import RoomCreationHandler, parse_create_room
from homeserver.server import Server
from storage.stores.room_members import RoomMemberStore
from storage.stores.rooms import RoomStore
from storage.stores.users import UserStore

NOTICE_TAG = "m.server_notice"


def _as(user_id: str) -> Requester:
    return Requester(user_id, None, False, False, None)


class ServerNoticesHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.config = hs.config.server_notices
        self.users = hs.get(UserStore)
        self.members = hs.get(RoomMemberStore)
        self.rooms = hs.get(RoomStore)

    @property
    def sender(self) -> str | None:
        localpart = self.config.system_mxid_localpart
        return f"@{localpart}:{self.hs.server_name}" if localpart else None

    async def send(self, user_id: str, event_type: str, content: dict[str, Any], state_key: str | None,
                   txn_id: str | None) -> str:
        sender = self.sender
        if sender is None:
            raise MatrixError(400, "M_UNKNOWN", "Server notices are not enabled on this server")
        user = await self.hs.get(AdminUsersHandler).get_existing(user_id)
        if user.deactivated or user_id == sender:
            raise invalid_param("Server notices go to active users other than the notices account")
        await self._ensure_sender(sender)
        room_id = await self._room_for(sender, user_id)
        send = self.hs.get(EventSendHandler)
        if state_key is not None:
            return await send.send_state(_as(sender), room_id, event_type, state_key, content, ratelimit=False)
        return await send.send_event(_as(sender), room_id, event_type, content, txn_id,
                                     txn_scope=f"server_notice:{user_id}" if txn_id else None, ratelimit=False)

    async def _ensure_sender(self, sender: str) -> None:
        if await self.users.get_user(sender) is not None:
            return
        localpart = sender[1:].split(":", 1)[0]
        await self.hs.get(RegistrationHandler).register_user(localpart, None, announce=False)
        profile = self.hs.get(ProfileHandler)
        admin = Requester(sender, None, False, True, None)
        if self.config.system_mxid_display_name:
            await profile.set_field(admin, sender, "displayname", self.config.system_mxid_display_name)
        if self.config.system_mxid_avatar_url:
            await profile.set_field(admin, sender, "avatar_url", self.config.system_mxid_avatar_url)

    async def _room_for(self, sender: str, user_id: str) -> str:
        """The user's notices room: one the sender made and the user is still in or invited to."""
        for room_id, membership in sorted((await self.members.get_rooms_with_membership(user_id)).items()):
            if membership.membership not in ("join", "invite"):
                continue
            room = await self.rooms.get_room(room_id)
            sender_membership = await self.members.get_membership(room_id, sender)
            if room is not None and room.creator == sender and sender_membership is not None \
                    and sender_membership.membership == "join":
                return room_id
        return await self._new_room(sender, user_id)

    async def _new_room(self, sender: str, user_id: str) -> str:
        body: dict[str, Any] = {
            "preset": "private_chat", "name": self.config.room_name, "invite": [user_id],
            # Only the notices account (the creator) may send: the user has power 0, sending needs 50.
            "power_level_content_override": {"events_default": 50},
        }
        if self.config.room_topic:
            body["topic"] = self.config.room_topic
        request = parse_create_room(body, self.hs.config.default_room_version)
        room_id, _ = await self.hs.get(RoomCreationHandler).create_room(sender, request, ratelimit=False)
        if self.config.auto_join:
            await self.hs.get(RoomMemberHandler).join(user_id, room_id, ratelimit=False)
        await self.hs.get(RoomTagsHandler).add_tag(_as(user_id), user_id, room_id, NOTICE_TAG, {})
        return room_id
