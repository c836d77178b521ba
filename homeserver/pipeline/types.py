"""The event pipeline's public value types: what callers hand in and what they get back."""

from __future__ import annotations

import enum
from typing import Any, Protocol, TypeVar

import attrs

from homeserver.events.event import Event
from storage.stores.events import StoredEvent
from storage.stores.rooms import RoomRow
from storage.stores.state import StateMap

T = TypeVar("T")


class Clock(Protocol):
    def seconds(self) -> float: ...


@attrs.define
class EventSpec:
    """What a local caller wants sent; the pipeline fills in prev/auth events, depth and signature."""

    event_type: str
    sender: str
    content: dict[str, Any]
    state_key: str | None = None
    redacts: str | None = None
    txn_scope: str | None = None
    txn_id: str | None = None
    #: m.room.create, which must be built before the room ID is known (v12), or an event
    #: from ``EventPipeline.build_local`` that another server has signed since (invites).
    prebuilt: Event | None = None


@attrs.define
class NewRoom:
    """Extra rows to write with a local room's first batch."""

    room: RoomRow
    alias: str | None = None


class Outcome(enum.Enum):
    """What became of one event handed to the pipeline."""

    #: Persisted and part of the room: in the timeline, the state and the extremities.
    ACCEPTED = "accepted"
    #: Passed the checks against its own auth events and the state before it, but not
    #: against the room's current state: kept in the DAG, never shown, not an extremity.
    SOFT_FAILED = "soft_failed"
    #: Failed the auth checks: kept (so events citing it are rejected too), never shown.
    REJECTED = "rejected"
    #: Stored without its state (an auth-chain or state event fetched on its own).
    OUTLIER = "outlier"
    #: Already held (as an event of the DAG): nothing written.
    DUPLICATE = "duplicate"
    #: Some prev_events or auth_events are unknown: nothing written. Fetch them (or the
    #: state before the event) and submit again.
    MISSING = "missing"
    #: Not for this room, or not an event we can hold: nothing written.
    REFUSED = "refused"


#: Outcomes after which the event is stored.
STORED_OUTCOMES = frozenset({Outcome.ACCEPTED, Outcome.SOFT_FAILED, Outcome.REJECTED, Outcome.OUTLIER})


@attrs.frozen
class EventResult:
    """The pipeline's answer for one remote event (the federation receiver's per-PDU result)."""

    event_id: str
    outcome: Outcome
    #: Why it was rejected, soft-failed, missing or refused.
    reason: str | None = None
    #: For MISSING: the event IDs we lack.
    missing: tuple[str, ...] = ()


@attrs.frozen
class RemoteEvent:
    """A remote PDU, already checked for format, signatures and content hash.

    ``state_before`` is for an event whose prev_events we could not fetch (the gap was
    too large): the state before it as the receiver got it from ``/state_ids``, whose
    events must already be stored (as outliers, through ``store_outliers``).
    """

    event: Event
    state_before: StateMap | None = None
    #: Our own join through another server (send_join): what we held of the room is stale
    #: (none of our users was in it), so the state after this event becomes the room's
    #: current state and the event its only forward extremity.
    rejoin: bool = False
    #: History fetched with /backfill: it joins the DAG (edges, state) below what we hold,
    #: with a negative stream ordering (no sync range includes it), and never touches the
    #: forward extremities or the current state.
    backfilled: bool = False


@attrs.frozen
class PersistedEvent:
    """One event of a committed batch, as post-persist listeners see it."""

    stored: StoredEvent
    outcome: Outcome
    #: The server that sent it to us; None for an event built here.
    origin: str | None


@attrs.frozen
class PersistedBatch:
    """What one transaction wrote to a room, handed to every post-persist listener."""

    room_id: str
    events: tuple[PersistedEvent, ...]
    #: The room's forward extremities after the batch (what a catching-up peer needs).
    forward_extremities: frozenset[str]

    def local_events(self) -> list[StoredEvent]:
        """Accepted events built here: what the federation sender sends, what push evaluates."""
        return [e.stored for e in self.events if e.origin is None and e.outcome is Outcome.ACCEPTED]

    def timeline_events(self) -> list[StoredEvent]:
        """Every accepted event, local or remote (what clients will see)."""
        return [e.stored for e in self.events if e.outcome is Outcome.ACCEPTED]
