"""Deleting a room (Synapse's ``DELETE /_synapse/admin/v1|v2/rooms/{room_id}``).

Every local member leaves (an invite is rejected), the room's local aliases go, it leaves
the directory, an admin may block it, and with ``purge`` every row about it is deleted.
The work runs as a job of the shared registry (``room_deletion``), so it logs its progress
every 10 s and the admin API lists it; the v2 API answers at once with a ``delete_id``
whose status says ``shutting_down``, ``purging``, ``complete`` or ``failed``.

Statuses live in memory (as Synapse's do): a restart forgets them, not what was deleted.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from homeserver.errors import MatrixError, not_found
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.admin.rooms import check_room_id
from homeserver.handlers.jobs import Job, JobRegistry
from homeserver.handlers.rooms.membership import RoomMemberHandler
from homeserver.server import Server
from storage.stores.aliases import AliasStore
from storage.stores.blocked_rooms import BlockedRoomStore
from storage.stores.events import EventStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.room_purge import RoomPurgeStore
from storage.stores.rooms import RoomStore

logger = logging.getLogger(__name__)

JOB_KIND = "room_deletion"
PURGE_BATCH = 500
KEEP_STATUSES = 1000
#: Memberships a local user leaves (or rejects) when the room is shut down.
LEAVING = ("join", "invite", "knock")


@attrs.frozen(kw_only=True)
class DeleteRequest:
    room_id: str
    requester: str
    block: bool = False
    purge: bool = True
    force_purge: bool = False


@attrs.define
class Deletion:
    delete_id: str
    room_id: str
    status: str = "scheduled"
    error: str | None = None
    kicked_users: list[str] = attrs.field(factory=list)
    failed_to_kick_users: list[str] = attrs.field(factory=list)
    local_aliases: list[str] = attrs.field(factory=list)
    job: Job | None = None

    def shutdown_result(self) -> dict[str, Any]:
        return {"kicked_users": self.kicked_users, "failed_to_kick_users": self.failed_to_kick_users,
                "local_aliases": self.local_aliases, "new_room_id": None}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"delete_id": self.delete_id, "room_id": self.room_id, "status": self.status,
                                "shutdown_room": self.shutdown_result()}
        if self.error is not None:
            body["error"] = self.error
        if self.job is not None:
            body["progress"] = {"done": self.job.done, "total": self.job.total, "percent": self.job.percent()}
        return body


class RoomDeletionHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.registry = hs.get(JobRegistry)
        self.members = hs.get(RoomMemberStore)
        self.membership = hs.get(RoomMemberHandler)
        self.aliases = hs.get(AliasStore)
        self.rooms = hs.get(RoomStore)
        self.blocked = hs.get(BlockedRoomStore)
        self.purger = hs.get(RoomPurgeStore)
        self.events = hs.get(EventStore)
        self._deletions: dict[str, Deletion] = {}

    async def _check(self, request: DeleteRequest) -> None:
        check_room_id(request.room_id)
        if any(d.room_id == request.room_id and d.status in ("scheduled", "shutting_down", "purging")
               for d in self._deletions.values()):
            raise MatrixError(400, "M_UNKNOWN", "A deletion of this room is already running")
        if await self.rooms.get_room(request.room_id) is None and not request.block:
            raise not_found("Unknown room")

    async def start(self, request: DeleteRequest) -> str:
        """v2: begin in the background; the deletion's ID."""
        await self._check(request)
        deletion = self._new(request.room_id)
        Deferred.fromCoroutine(self._run(deletion, request))
        return deletion.delete_id

    async def delete_now(self, request: DeleteRequest) -> dict[str, Any]:
        """v1: the whole deletion before answering."""
        await self._check(request)
        deletion = self._new(request.room_id)
        await self._run(deletion, request)
        if deletion.status == "failed":
            raise MatrixError(500, "M_UNKNOWN", f"Deleting the room failed: {deletion.error}")
        return deletion.shutdown_result()

    def _new(self, room_id: str) -> Deletion:
        while len(self._deletions) >= KEEP_STATUSES:
            del self._deletions[next(iter(self._deletions))]
        deletion = Deletion(secrets.token_urlsafe(12), room_id)
        self._deletions[deletion.delete_id] = deletion
        return deletion

    async def _run(self, deletion: Deletion, request: DeleteRequest) -> None:
        job = self.registry.start(JOB_KIND, f"deleting room {request.room_id}")
        deletion.job = job
        try:
            deletion.status = "shutting_down"
            if request.block:
                await self.blocked.block(request.room_id, request.requester, now_ms(self.hs))
            if await self.rooms.get_room(request.room_id) is not None:
                await self._shut_down(deletion)
                if request.purge:
                    deletion.status = "purging"
                    await self._purge(request.room_id, job)
        except Exception as exc:
            logger.exception("deleting room %s failed", request.room_id)
            deletion.status, deletion.error = "failed", str(exc) or type(exc).__name__
            job.fail(deletion.error)
        else:
            deletion.status = "complete"
            job.finish()

    async def _shut_down(self, deletion: Deletion) -> None:
        """Local members out, local aliases gone, off the directory."""
        room_id = deletion.room_id
        suffix = ":" + self.hs.server_name
        for user_id, membership in sorted((await self.members.get_memberships_in_room(room_id)).items()):
            if not user_id.endswith(suffix) or membership not in LEAVING:
                continue
            try:
                await self.membership.leave(user_id, room_id)
                await self.membership.forget(user_id, room_id)
            except Exception:
                logger.exception("room deletion: %s could not leave %s", user_id, room_id)
                deletion.failed_to_kick_users.append(user_id)
            else:
                deletion.kicked_users.append(user_id)
        for alias in await self.aliases.get_aliases_for_room(room_id):
            await self.aliases.delete_alias(alias)
            deletion.local_aliases.append(alias)
        await self.rooms.set_public(room_id, False)

    async def _purge(self, room_id: str, job: Job) -> None:
        job.total = await self.purger.count_events(room_id)
        job.details["events_deleted"] = 0
        while True:
            ids = await self.purger.purge_event_batch(room_id, PURGE_BATCH)
            for event_id in ids:
                self.events.invalidate(event_id)
            job.details["events_deleted"] += len(ids)
            job.advance(len(ids))
            if len(ids) < PURGE_BATCH:
                break
        await self.purger.purge_room_rows(room_id)
        self.rooms.forget(room_id)

    def status(self, delete_id: str) -> dict[str, Any]:
        deletion = self._deletions.get(delete_id)
        if deletion is None:
            raise not_found(f"No deletion with ID {delete_id}")
        return deletion.to_json()

    def statuses_for_room(self, room_id: str) -> dict[str, Any]:
        found = [d.to_json() for d in self._deletions.values() if d.room_id == room_id]
        if not found:
            raise not_found(f"No deletion of room {room_id}")
        return {"results": found}
