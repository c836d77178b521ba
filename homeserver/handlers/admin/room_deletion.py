"""Deleting a room (Synapse's ``DELETE /_synapse/admin/v1|v2/rooms/{room_id}``).

Every local member leaves (an invite is rejected), the room's local aliases go, it leaves
the directory, an admin may block it, and with ``purge`` every row about it is deleted.
With ``new_room_user_id`` (Synapse's shape) that local user first creates a new public
room where nobody but them may speak, posts ``message`` there, the old room's joined local
members are moved into it and its local aliases point at it.
The work is a ``room_deletion`` job (room_jobs.py, shared with history purges), so it logs
its progress every 10 s and the admin API lists it; the v2 API answers at once with a
``delete_id`` whose status says ``shutting_down``, ``purging``, ``complete`` or ``failed``.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from homeserver.errors import MatrixError, invalid_param, not_found
from homeserver.events.identifiers import server_name_of
from homeserver.handlers.accounts.auth import Requester, now_ms
from homeserver.handlers.admin.room_jobs import RoomTask, RoomTasks
from homeserver.handlers.admin.rooms import check_room_id
from homeserver.handlers.jobs import Job
from homeserver.handlers.rooms.membership import RoomMemberHandler
from homeserver.handlers.rooms.message_send import EventSendHandler
from homeserver.handlers.rooms.room_create import RoomCreationHandler, parse_create_room
from homeserver.server import Server
from storage.stores.aliases import AliasStore
from storage.stores.blocked_rooms import BlockedRoomStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.room_purge import RoomPurgeStore
from storage.stores.rooms import RoomStore
from storage.stores.users import UserStore

logger = logging.getLogger(__name__)

JOB_KIND = "room_deletion"
#: Memberships a local user leaves (or rejects) when the room is shut down.
LEAVING = ("join", "invite", "knock")
#: Synapse's defaults for the room the members are moved to.
DEFAULT_ROOM_NAME = "Content Violation Notification"
DEFAULT_MESSAGE = ("Sharing illegal content on this server is not permitted and rooms in violation will be "
                   "blocked.")


@attrs.frozen(kw_only=True)
class DeleteRequest:
    room_id: str
    requester: str
    block: bool = False
    purge: bool = True
    force_purge: bool = False
    #: A local user who makes a new room the members are moved to (None: no new room).
    new_room_user_id: str | None = None
    room_name: str = DEFAULT_ROOM_NAME
    message: str = DEFAULT_MESSAGE


@attrs.define
class Deletion(RoomTask):
    status: str = "scheduled"
    kicked_users: list[str] = attrs.field(factory=list)
    failed_to_kick_users: list[str] = attrs.field(factory=list)
    local_aliases: list[str] = attrs.field(factory=list)
    new_room_id: str | None = None

    def shutdown_result(self) -> dict[str, Any]:
        return {"kicked_users": self.kicked_users, "failed_to_kick_users": self.failed_to_kick_users,
                "local_aliases": self.local_aliases, "new_room_id": self.new_room_id}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"delete_id": self.task_id, "room_id": self.room_id, "status": self.status,
                                "shutdown_room": self.shutdown_result()}
        if self.error is not None:
            body["error"] = self.error
        if self.job is not None:
            body["progress"] = {"done": self.job.done, "total": self.job.total, "percent": self.job.percent()}
        return body


class RoomDeletionHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.tasks: RoomTasks[Deletion] = RoomTasks(hs, JOB_KIND, "deletion")
        self.members = hs.get(RoomMemberStore)
        self.membership = hs.get(RoomMemberHandler)
        self.aliases = hs.get(AliasStore)
        self.rooms = hs.get(RoomStore)
        self.users = hs.get(UserStore)
        self.blocked = hs.get(BlockedRoomStore)
        self.purger = hs.get(RoomPurgeStore)

    async def _check(self, request: DeleteRequest) -> Deletion:
        check_room_id(request.room_id)
        new_owner = request.new_room_user_id
        if new_owner is not None and (server_name_of(new_owner) != self.hs.server_name
                                      or await self.users.get_user(new_owner) is None):
            raise invalid_param(f"new_room_user_id must be a user of this server: {new_owner}")
        if await self.rooms.get_room(request.room_id) is None and not request.block:
            raise not_found("Unknown room")
        return self.tasks.new(request.room_id, Deletion)

    async def start(self, request: DeleteRequest) -> str:
        """v2: begin in the background; the deletion's ID."""
        deletion = await self._check(request)
        self.tasks.start(deletion, f"deleting room {request.room_id}", lambda job: self._work(deletion, request, job))
        return deletion.task_id

    async def delete_now(self, request: DeleteRequest) -> dict[str, Any]:
        """v1: the whole deletion before answering."""
        deletion = await self._check(request)
        await self.tasks.run(deletion, f"deleting room {request.room_id}",
                             lambda job: self._work(deletion, request, job))
        if deletion.status == "failed":
            raise MatrixError(500, "M_UNKNOWN", f"Deleting the room failed: {deletion.error}")
        return deletion.shutdown_result()

    async def _work(self, deletion: Deletion, request: DeleteRequest, job: Job) -> None:
        deletion.status = "shutting_down"
        if request.block:
            await self.blocked.block(request.room_id, request.requester, now_ms(self.hs))
        if await self.rooms.get_room(request.room_id) is None:
            return
        if request.new_room_user_id is not None:
            deletion.new_room_id = await self._new_room(request)
        await self._shut_down(deletion, request.new_room_user_id)
        if request.purge:
            deletion.status = "purging"
            await self._purge(request.room_id, job)

    async def _new_room(self, request: DeleteRequest) -> str:
        """The room the members move to: public, only its creator may speak, with the message."""
        owner = request.new_room_user_id
        assert owner is not None
        body = {"preset": "public_chat", "name": request.room_name,
                "power_level_content_override": {"users_default": -10}}
        room_id, _ = await self.hs.get(RoomCreationHandler).create_room(
            owner, parse_create_room(body, self.hs.config.default_room_version), ratelimit=False)
        await self.hs.get(EventSendHandler).send_event(
            Requester(owner, None, False, False, None), room_id, "m.room.message",
            {"msgtype": "m.text", "body": request.message}, ratelimit=False)
        return room_id

    async def _shut_down(self, deletion: Deletion, owner: str | None) -> None:
        """Local members out (into the new room, if there is one), local aliases gone or moved,
        off the directory."""
        room_id, new_room_id = deletion.room_id, deletion.new_room_id
        suffix = ":" + self.hs.server_name
        for user_id, membership in sorted((await self.members.get_memberships_in_room(room_id)).items()):
            if not user_id.endswith(suffix) or membership not in LEAVING:
                continue
            try:
                await self.membership.leave(user_id, room_id)
                await self.membership.forget(user_id, room_id)
                if new_room_id is not None and membership == "join" and user_id != owner:
                    await self.membership.join(user_id, new_room_id, ratelimit=False)
            except Exception:
                logger.exception("room deletion: %s could not leave %s", user_id, room_id)
                deletion.failed_to_kick_users.append(user_id)
            else:
                deletion.kicked_users.append(user_id)
        if new_room_id is not None:
            deletion.local_aliases.extend(await self.aliases.move_aliases(room_id, new_room_id))
        else:
            for alias in await self.aliases.get_aliases_for_room(room_id):
                await self.aliases.delete_alias(alias)
                deletion.local_aliases.append(alias)
        await self.rooms.set_public(room_id, False)

    async def _purge(self, room_id: str, job: Job) -> None:
        job.total = await self.purger.count_events(room_id)
        job.details["events_deleted"] = await self.tasks.purge_in_batches(
            job, lambda size: self.purger.purge_event_batch(room_id, size))
        await self.purger.purge_room_rows(room_id)
        self.rooms.forget(room_id)

    def status(self, delete_id: str) -> dict[str, Any]:
        return self.tasks.get(delete_id).to_json()

    def statuses_for_room(self, room_id: str) -> dict[str, Any]:
        found = [d.to_json() for d in self.tasks.for_room(room_id)]
        if not found:
            raise not_found(f"No deletion of room {room_id}")
        return {"results": found}
