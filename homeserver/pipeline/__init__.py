"""The event pipeline: the one way any event, local or remote, enters a room.

See docs/event-pipeline.md for the stages and the API.
"""

from homeserver.pipeline.pipeline import EventPipeline, PersistedListener
from homeserver.pipeline.types import (
    EventResult,
    EventSpec,
    NewRoom,
    Outcome,
    PersistedBatch,
    PersistedEvent,
    RemoteEvent,
)

__all__ = [
    "EventPipeline",
    "EventResult",
    "EventSpec",
    "NewRoom",
    "Outcome",
    "PersistedBatch",
    "PersistedEvent",
    "PersistedListener",
    "RemoteEvent",
]
