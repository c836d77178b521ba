"""Events as clients see them (the "ClientEvent" format), shared with sync.

`EventFormatter.format_events(stored_events, requester)` adds `unsigned`: `age`,
`transaction_id` (only for the device that sent it), `redacted_because` for redacted
events, `prev_content` / `replaces_state` for state events, and bundled
aggregations (`m.relations`: thread summaries and references) for message events.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from homeserver.server import Server
from storage.stores.events import EventStore, StoredEvent
from storage.stores.relations import RelationsStore, ThreadSummary
from storage.stores.self_destruct import EXPUNGED_MARK

#: Top-level keys a client event keeps (PDU-only keys such as hashes are dropped).
_CLIENT_KEYS = ("event_id", "type", "content", "sender", "origin_server_ts", "room_id", "state_key")


#: The transaction scope of events sent from delayed events (MSC4140); their txn_id is the
#: delay_id. No device's scope can equal it: those begin with a user ID.
DELAYED_TXN_SCOPE = "org.matrix.msc4140.delayed"
DELAY_ID_KEY = "org.matrix.msc4140.delay_id"


def txn_scope_for(user_id: str, device_id: str | None, access_token_id: int | None) -> str:
    """The scope client transaction IDs are unique in: the device (spec v1.7+)."""
    if device_id is not None:
        return f"{user_id}|{device_id}"
    return f"{user_id}|token:{access_token_id}"


def requester_scope(requester: Any) -> str | None:
    if requester is None:
        return None
    return txn_scope_for(requester.user_id, requester.device_id, requester.access_token_id)


class EventFormatter:
    def __init__(self, hs: Server) -> None:
        self.events = hs.get(EventStore)
        self.relations = hs.get(RelationsStore)

    async def format_events(self, stored_events: Sequence[StoredEvent], requester: Any = None,
                            with_prev_content: bool = True) -> list[dict[str, Any]]:
        """Client-format each event, fetching what `unsigned` needs in one go."""
        scope = requester_scope(requester)
        extra_ids: set[str] = set()
        for stored in stored_events:
            if stored.redacted_by and is_redaction_id(stored.redacted_by):
                extra_ids.add(stored.redacted_by)
            if with_prev_content and stored.replaces_state:
                extra_ids.add(stored.replaces_state)
        extras = await self.events.get_events(extra_ids) if extra_ids else {}
        now = int(time.time() * 1000)
        formatted = [self._format(s, scope, now, extras, with_prev_content) for s in stored_events]
        await self._bundle_relations(stored_events, formatted, requester, scope, now)
        return formatted

    async def _bundle_relations(self, stored_events: Sequence[StoredEvent], formatted: list[dict[str, Any]],
                                requester: Any, scope: str | None, now: int) -> None:
        """unsigned.m.relations: thread summaries and references (message events only)."""
        candidates = [s.event_id for s in stored_events if not s.event.is_state() and not s.redacted_by]
        if not candidates:
            return
        user_id = getattr(requester, "user_id", None)
        threads, references = await self.relations.get_bundles(candidates, user_id)
        if not threads and not references:
            return
        latest = await self.events.get_events(t.latest_event_id for t in threads.values())
        for stored, output in zip(stored_events, formatted, strict=True):
            bundle: dict[str, Any] = {}
            thread: ThreadSummary | None = threads.get(stored.event_id)
            if thread is not None and thread.latest_event_id in latest:
                bundle["m.thread"] = {
                    "latest_event": self._format(latest[thread.latest_event_id], scope, now, {}, False),
                    "count": thread.count,
                    "current_user_participated": thread.user_participated
                    or stored.event.sender == user_id,
                }
            if stored.event_id in references:
                bundle["m.reference"] = {"chunk": [{"event_id": i} for i in references[stored.event_id]]}
            if bundle:
                output["unsigned"]["m.relations"] = bundle

    async def format_event(self, stored: StoredEvent, requester: Any = None) -> dict[str, Any]:
        return (await self.format_events([stored], requester))[0]

    async def format_shared(self, stored_events: Sequence[StoredEvent]) -> list[dict[str, Any]]:
        """Client form for any reader: without ``unsigned.age`` and the sender's own fields, which
        ``for_reader`` adds to a copy. Thread summaries are per reader (current_user_participated):
        ``has_reader_bundle`` tells when the result may not be shared."""
        formatted = await self.format_events(stored_events, None)
        for output in formatted:
            output["unsigned"].pop("age", None)
        return formatted

    def _format(self, stored: StoredEvent, scope: str | None, now: int,
                extras: dict[str, StoredEvent], with_prev_content: bool) -> dict[str, Any]:
        formatted = client_event_dict(stored)
        unsigned = reader_unsigned(stored, scope, now)
        if stored.redacted_by and not is_redaction_id(stored.redacted_by):
            unsigned["redacted_because"] = expunged_because(stored)
        elif stored.redacted_by:
            redaction = extras.get(stored.redacted_by)
            if redaction is not None:
                unsigned["redacted_because"] = self._format(redaction, None, now, {}, False)
        if with_prev_content and stored.replaces_state:
            unsigned["replaces_state"] = stored.replaces_state
            previous = extras.get(stored.replaces_state)
            if previous is not None:
                unsigned["prev_content"] = previous.event.content
                unsigned["prev_sender"] = previous.event.sender
        formatted["unsigned"] = unsigned
        return formatted


def reader_unsigned(stored: StoredEvent, scope: str | None, now: int) -> dict[str, Any]:
    """The ``unsigned`` keys that differ per reader: age, and for the sending device its
    transaction_id (for its sender, a delayed event's delay id)."""
    unsigned: dict[str, Any] = {"age": max(0, now - stored.event.origin_server_ts)}
    if scope is not None and stored.txn_scope == scope and stored.txn_id is not None:
        unsigned["transaction_id"] = stored.txn_id
    elif stored.txn_scope == DELAYED_TXN_SCOPE and scope is not None \
            and scope.partition("|")[0] == stored.event.sender:
        unsigned[DELAY_ID_KEY] = stored.txn_id
    return unsigned


def for_reader(stored: StoredEvent, shared: dict[str, Any], scope: str | None, now: int) -> dict[str, Any]:
    """A reader's copy of ``format_shared``'s output for ``stored``: the shared parts are not copied."""
    unsigned = reader_unsigned(stored, scope, now)
    unsigned.update(shared["unsigned"])
    return {**shared, "unsigned": unsigned}


def has_reader_bundle(formatted: dict[str, Any]) -> bool:
    return "m.thread" in formatted["unsigned"].get("m.relations", {})


def is_redaction_id(redacted_by: str) -> bool:
    """``events.redacted_by`` names a redaction event, or is a mark: self-destructed
    (storage/stores/self_destruct.py EXPUNGED_MARK), or its redaction purged by retention."""
    return redacted_by.startswith("$")


def expunged_because(stored: StoredEvent) -> dict[str, Any]:
    """What clients read to show an event redacted without a redaction event we hold (it
    self-destructed, or retention purged its redaction): described, not stored, so no event ID.
    The reason is the mark (org.matrix.self_destruct or org.matrix.redaction_purged)."""
    mark = stored.redacted_by or EXPUNGED_MARK
    return {"type": "m.room.redaction", "sender": stored.event.sender, "room_id": stored.event.room_id,
            "redacts": stored.event_id, "content": {"redacts": stored.event_id, "reason": mark},
            "origin_server_ts": stored.event.origin_server_ts, "unsigned": {}}


def client_event_dict(stored: StoredEvent) -> dict[str, Any]:
    """The client-visible keys of an event, without `unsigned`."""
    event = stored.event
    pdu = event.pdu
    formatted: dict[str, Any] = {k: pdu[k] for k in _CLIENT_KEYS if k in pdu}
    formatted["event_id"] = event.event_id
    formatted["room_id"] = event.room_id
    formatted.setdefault("content", {})
    if event.type == "m.room.redaction" and event.redacts is not None:
        formatted["redacts"] = event.redacts
        if event.room_version.redacts_in_content:
            formatted["content"] = {**formatted["content"], "redacts": event.redacts}
    return formatted
