"""Server-side search (``POST /search``) over the room events a user may see.

The database's full-text index (storage/stores/event_search.py) finds candidate events in the
rooms the user is or was in; every candidate then passes the request's filter and history
visibility (``filter_events_for_client``) before it is shown, so a user never finds an event from
before they could see the room. Encrypted events were never indexed: the server cannot read them.

Paging: ``recent`` continues below the last stream position looked at, ``rank`` after the number
of matches looked at. Candidates are read in chunks until the page and one more result are found,
so ``next_batch`` is only given when there is more to see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from homeserver.handlers.rooms.event_format import EventFormatter
from homeserver.handlers.rooms.history import topological_token
from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.handlers.rooms.search_request import (
    Batch,
    SearchRequest,
    parse_batch,
    parse_search_request,
    words_of,
)
from homeserver.handlers.rooms.visibility import filter_events_for_client
from homeserver.server import Server
from storage.stores.event_search import EventSearchStore, SearchHit, SearchQuery
from storage.stores.events import EventStore, StoredEvent
from storage.stores.room_members import RoomMemberStore
from storage.stores.state import StateGroupStore

#: Rooms whose events a user may find: those they are in, and those they left or were banned
#: from (what they saw before leaving stays theirs, as history visibility decides).
SEARCHED_MEMBERSHIPS = ("join", "leave", "ban")
#: Candidate chunks read per page at most: a page of mostly invisible matches ends early, with a next_batch.
MAX_ROUNDS = 10


@attrs.define
class _Page:
    found: list[tuple[SearchHit, StoredEvent]] = attrs.field(factory=list)
    next_batch: Batch | None = None


class SearchHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(EventSearchStore)
        self.events = hs.get(EventStore)
        self.members = hs.get(RoomMemberStore)
        self.groups = hs.get(StateGroupStore)
        self.state = hs.get(RoomStateHandler)
        self.formatter = hs.get(EventFormatter)

    async def search(self, requester: Any, body: dict[str, Any], next_batch: str | None) -> dict[str, Any]:
        request = parse_search_request(body)
        if request is None:
            return {"search_categories": {}}
        batch = parse_batch(next_batch, request.by_rank) if next_batch is not None else Batch(request.by_rank)
        query = SearchQuery(request.words, await self._rooms(requester.user_id, request, batch), request.keys,
                            request.by_rank, sender=batch.group[1] if batch.group and batch.group[0] == "sender"
                            else None, before_stream=batch.before_stream, offset=batch.offset)
        page = await self._page(requester.user_id, request, query, batch)
        found = [stored for _, stored in page.found]
        formatted = await self.formatter.format_events(found, requester)
        results: list[dict[str, Any]] = []
        for (hit, stored), event in zip(page.found, formatted, strict=True):
            result: dict[str, Any] = {"rank": hit.rank, "result": event}
            if request.context:
                result["context"] = await self._context(requester, request, stored)
            results.append(result)
        section: dict[str, Any] = {"results": results, "count": await self.store.count(attrs.evolve(
            query, before_stream=None, offset=0)), "highlights": _highlights(request.words, page.found)}
        if page.next_batch is not None:
            section["next_batch"] = page.next_batch.encode()
        if request.group_by:
            section["groups"] = _groups(request.group_by, found, page.next_batch)
        if request.include_state:
            section["state"] = await self._state(requester, {s.event.room_id for s in found})
        return {"search_categories": {"room_events": section}}

    async def _rooms(self, user_id: str, request: SearchRequest, batch: Batch) -> list[str]:
        memberships = await self.members.get_rooms_with_membership(user_id)
        rooms = {room for room, m in memberships.items() if m.membership in SEARCHED_MEMBERSHIPS}
        if request.rooms is not None:
            rooms &= request.rooms
        rooms -= request.not_rooms
        if batch.group is not None and batch.group[0] == "room_id":
            rooms &= {batch.group[1]}
        return sorted(rooms)

    async def _page(self, user_id: str, request: SearchRequest, query: SearchQuery, batch: Batch) -> _Page:
        """One page of visible results, and where the next page starts (None: no more)."""
        page = _Page()
        chunk = max(2 * request.limit, 20)
        consumed = 0
        stop: Batch | None = None
        for _ in range(MAX_ROUNDS):
            hits = await self.store.search(attrs.evolve(query, offset=query.offset + consumed), chunk) \
                if request.by_rank else await self.store.search(query, chunk)
            visible = await self._visible(user_id, request, hits)
            for hit in hits:
                stored = visible.get(hit.event_id)
                if stored is not None:
                    if len(page.found) == request.limit:
                        page.next_batch = stop
                        return page
                    page.found.append((hit, stored))
                consumed += 1
                stop = attrs.evolve(batch, offset=query.offset + consumed, before_stream=hit.stream_ordering)
            if len(hits) < chunk:
                return page
            if not request.by_rank:
                query = attrs.evolve(query, before_stream=hits[-1].stream_ordering)
        page.next_batch = stop
        return page

    async def _visible(self, user_id: str, request: SearchRequest,
                       hits: Sequence[SearchHit]) -> dict[str, StoredEvent]:
        loaded = await self.events.get_events([hit.event_id for hit in hits])
        candidates = [loaded[h.event_id] for h in hits if h.event_id in loaded]
        candidates = [s for s in candidates if s.redacted_by is None and request.event_filter.matches(s)]
        return {s.event_id: s for s in await filter_events_for_client(self.hs, user_id, candidates)}

    async def _context(self, requester: Any, request: SearchRequest, target: StoredEvent) -> dict[str, Any]:
        room_id, user_id = target.event.room_id, requester.user_id
        current = await self.events.get_max_stream_position()
        before = await self.events.get_room_events_topological(
            room_id, (target.depth, target.stream_ordering - 1), None, True, request.before_limit, current,
            request.event_filter) if request.before_limit else []
        after = await self.events.get_room_events_topological(
            room_id, (target.depth, target.stream_ordering), None, False, request.after_limit, current,
            request.event_filter) if request.after_limit else []
        before_visible = await filter_events_for_client(self.hs, user_id, before)
        after_visible = await filter_events_for_client(self.hs, user_id, after)
        earliest = before[-1] if before else target
        latest = after[-1] if after else target
        context: dict[str, Any] = {
            "events_before": await self.formatter.format_events(before_visible, requester),
            "events_after": await self.formatter.format_events(after_visible, requester),
            "start": topological_token(earliest.depth, earliest.stream_ordering - 1),
            "end": topological_token(latest.depth, latest.stream_ordering),
        }
        if request.include_profile:
            senders = {s.event.sender for s in [target, *before_visible, *after_visible]}
            context["profile_info"] = await self._profiles(target, senders)
        return context

    async def _profiles(self, target: StoredEvent, senders: set[str]) -> dict[str, dict[str, Any]]:
        """Each sender's display name and avatar as the room had them at the result event."""
        if target.state_group is None:
            return {}
        ids = await self.groups.get_state_ids_filtered(target.state_group,
                                                       keys=[("m.room.member", s) for s in senders])
        members = await self.events.get_events(ids.values())
        profiles: dict[str, dict[str, Any]] = {}
        for stored in members.values():
            content = stored.event.content
            profile = {k: content[k] for k in ("displayname", "avatar_url") if isinstance(content.get(k), str)}
            if stored.event.state_key is not None:
                profiles[stored.event.state_key] = profile
        return profiles

    async def _state(self, requester: Any, room_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
        state: dict[str, list[dict[str, Any]]] = {}
        for room_id in sorted(room_ids):
            loaded = await self.state.load_state(await self.state.state_visible_to(room_id, requester.user_id))
            state[room_id] = await self.formatter.format_events(list(loaded.values()), requester)
        return state


def _highlights(words: Sequence[str], found: Sequence[tuple[SearchHit, StoredEvent]]) -> list[str]:
    """The query's words, and the words of the results they matched as prefixes (stemming may
    match more, which clients then do not highlight; never less)."""
    highlights = set(words)
    for hit, _ in found:
        for word in words_of(hit.value):
            if any(word.startswith(w) for w in words):
                highlights.add(word)
    return sorted(highlights)


def _groups(keys: Sequence[str], found: Sequence[StoredEvent], next_batch: Batch | None) -> dict[str, Any]:
    groups: dict[str, Any] = {}
    for key in keys:
        by_value: dict[str, dict[str, Any]] = {}
        for stored in found:
            value = stored.event.room_id if key == "room_id" else stored.event.sender
            group = by_value.setdefault(value, {"results": [], "order": len(by_value) + 1})
            group["results"].append(stored.event_id)
        if next_batch is not None:
            for value, group in by_value.items():
                group["next_batch"] = attrs.evolve(next_batch, group=(key, value)).encode()
        groups[key] = by_value
    return groups
