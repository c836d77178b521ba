"""Abuse reports: clients report an event, a room or a user; server admins read and dismiss them.

As the spec asks, an event can only be reported by a member of its room who may see it
(404 otherwise, the same answer whether or not it exists), a room or a user by anyone.
Every report counts against ``rc_reports``. The admin side has the shapes of Synapse's
``event_reports`` API, so its admin tools work unchanged.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import invalid_param, not_found
from homeserver.events.identifiers import is_valid_event_id, is_valid_user_id, server_name_of
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.handlers.rooms.room_state import RoomStateHandler, check_room_id
from homeserver.handlers.rooms.visibility import filter_events_for_client
from homeserver.server import Server
from storage.stores.events import EventStore
from storage.stores.reports import Report, ReportQuery, ReportStore
from storage.stores.room_members import RoomMemberStore
from storage.stores.rooms import RoomStore
from storage.stores.users import UserStore

EVENT, ROOM, USER = "event", "room", "user"
NOT_FOUND_OR_NOT_JOINED = "The event was not found or you are not joined to the room"


class ReportHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(ReportStore)
        self.events = hs.get(EventStore)
        self.members = hs.get(RoomMemberStore)
        self.rooms = hs.get(RoomStore)
        self.users = hs.get(UserStore)
        self.state = hs.get(RoomStateHandler)
        self.limiter = hs.get(RateLimiters).reports

    def _now(self) -> int:
        return int(self.hs.clock.seconds() * 1000)

    async def report_event(self, user_id: str, room_id: str, event_id: str, reason: str | None,
                           score: int | None) -> None:
        check_room_id(room_id)
        if not is_valid_event_id(event_id):
            raise invalid_param(f"{event_id!r} is not a valid event ID")
        self.limiter.ratelimit(user_id)
        membership = await self.members.get_membership(room_id, user_id)
        stored = await self.events.get_event(event_id)
        if membership is None or membership.membership != "join" or stored is None \
                or stored.event.room_id != room_id:
            raise not_found(NOT_FOUND_OR_NOT_JOINED)
        if not await filter_events_for_client(self.hs, user_id, [stored]):
            raise not_found(NOT_FOUND_OR_NOT_JOINED)
        await self.store.add_report(EVENT, self._now(), user_id, room_id=room_id, event_id=event_id,
                                    event_sender=stored.event.sender, reason=reason, score=score)

    async def report_room(self, user_id: str, room_id: str, reason: str) -> None:
        check_room_id(room_id)
        self.limiter.ratelimit(user_id)
        if await self.rooms.get_room(room_id) is None:
            raise not_found("The room was not found")
        await self.store.add_report(ROOM, self._now(), user_id, room_id=room_id, reason=reason)

    async def report_user(self, user_id: str, target_user_id: str, reason: str) -> None:
        if not is_valid_user_id(target_user_id):
            raise invalid_param(f"{target_user_id!r} is not a valid user ID")
        self.limiter.ratelimit(user_id)
        if server_name_of(target_user_id) == self.hs.server_name \
                and not await self.users.user_exists(target_user_id):
            raise not_found("The user was not found")
        await self.store.add_report(USER, self._now(), user_id, target_user_id=target_user_id, reason=reason)

    async def list_event_reports(self, *, offset: int, limit: int, backwards: bool, room_id: str | None,
                                 user_id: str | None, event_sender: str | None) -> dict[str, Any]:
        query = ReportQuery(EVENT, offset, limit, backwards, room_id, user_id, event_sender)
        reports, total = await self.store.list_reports(query)
        result: dict[str, Any] = {"event_reports": [await self._event_entry(r) for r in reports],
                                  "total": total}
        if query.offset + len(reports) < total:
            result["next_token"] = query.offset + len(reports)
        return result

    async def get_event_report(self, report_id: int) -> dict[str, Any]:
        report = await self.store.get_report(EVENT, report_id)
        if report is None:
            raise not_found("Event report not found")
        entry = await self._event_entry(report)
        stored = await self.events.get_event(report.event_id or "")
        entry["event_json"] = dict(stored.event.pdu) if stored is not None else None
        return entry

    async def delete_event_report(self, report_id: int) -> None:
        if not await self.store.delete_report(EVENT, report_id):
            raise not_found("Event report not found")

    async def _event_entry(self, report: Report) -> dict[str, Any]:
        room_id = report.room_id or ""
        name = await self.state.get_current_state_event(room_id, "m.room.name")
        alias = await self.state.get_current_state_event(room_id, "m.room.canonical_alias")
        return {
            "id": report.id, "received_ts": report.received_ts, "room_id": room_id,
            "event_id": report.event_id, "user_id": report.user_id, "reason": report.reason,
            "score": report.score, "sender": report.event_sender,
            "name": _text(name.event.content.get("name")) if name is not None else None,
            "canonical_alias": _text(alias.event.content.get("alias")) if alias is not None else None,
        }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
