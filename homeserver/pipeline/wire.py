"""The pipeline's submissions and answers as JSON, for a room persisted by another process.

With event persisters (docs/workers.md) a room's events are built and written by the one
instance that owns the room; every other process hands it the submission over HTTP
(homeserver/replication/persisters.py) in this form and gets the answer back in it.
Stored events travel as their IDs: the caller reads them from the shared database,
where they are committed before the answer is sent.
"""

from __future__ import annotations

from typing import Any

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.pipeline.types import EventResult, EventSpec, NewRoom, Outcome, RemoteEvent
from storage.stores.rooms import RoomRow
from storage.stores.state import StateMap


def encode_event(event: Event) -> dict[str, Any]:
    return {"pdu": event.pdu, "event_id": event.event_id, "room_version": event.room_version.identifier}


def decode_event(data: dict[str, Any]) -> Event:
    version = KNOWN_ROOM_VERSIONS[data["room_version"]]
    return Event.from_pdu(data["pdu"], version, event_id=data["event_id"])


def encode_spec(spec: EventSpec) -> dict[str, Any]:
    return {
        "event_type": spec.event_type,
        "sender": spec.sender,
        "content": spec.content,
        "state_key": spec.state_key,
        "redacts": spec.redacts,
        "txn_scope": spec.txn_scope,
        "txn_id": spec.txn_id,
        "prebuilt": encode_event(spec.prebuilt) if spec.prebuilt is not None else None,
    }


def decode_spec(data: dict[str, Any]) -> EventSpec:
    prebuilt = data.get("prebuilt")
    return EventSpec(
        data["event_type"],
        data["sender"],
        data["content"],
        state_key=data.get("state_key"),
        redacts=data.get("redacts"),
        txn_scope=data.get("txn_scope"),
        txn_id=data.get("txn_id"),
        prebuilt=decode_event(prebuilt) if prebuilt is not None else None,
    )


def encode_new_room(new_room: NewRoom | None) -> dict[str, Any] | None:
    if new_room is None:
        return None
    room = new_room.room
    return {
        "room_id": room.room_id,
        "room_version": room.room_version,
        "creator": room.creator,
        "is_public": room.is_public,
        "alias": new_room.alias,
    }


def decode_new_room(data: dict[str, Any] | None) -> NewRoom | None:
    if data is None:
        return None
    room = RoomRow(data["room_id"], data["room_version"], data["creator"], bool(data["is_public"]))
    return NewRoom(room, data.get("alias"))


def encode_remote(remote: RemoteEvent) -> dict[str, Any]:
    state = None
    if remote.state_before is not None:
        state = [[key[0], key[1], event_id] for key, event_id in remote.state_before.items()]
    return {
        "event": encode_event(remote.event),
        "state_before": state,
        "rejoin": remote.rejoin,
        "backfilled": remote.backfilled,
    }


def decode_remote(data: dict[str, Any]) -> RemoteEvent:
    state: StateMap | None = None
    if data.get("state_before") is not None:
        state = {(entry[0], entry[1]): entry[2] for entry in data["state_before"]}
    return RemoteEvent(
        decode_event(data["event"]),
        state_before=state,
        rejoin=bool(data.get("rejoin")),
        backfilled=bool(data.get("backfilled")),
    )


def encode_result(result: EventResult) -> dict[str, Any]:
    return {
        "event_id": result.event_id,
        "outcome": result.outcome.value,
        "reason": result.reason,
        "missing": list(result.missing),
    }


def decode_result(data: dict[str, Any]) -> EventResult:
    return EventResult(
        data["event_id"], Outcome(data["outcome"]), data.get("reason"), tuple(data.get("missing") or ())
    )
