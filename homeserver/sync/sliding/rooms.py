"""Turning the sync builder's ``rooms`` section into sliding sync room entries (MSC4186):
required_state picked by its ``[type, state_key]`` rules, timelines cut to each room's limit,
counts, heroes and bump stamps."""

from __future__ import annotations

from typing import Any

from homeserver.handlers.rooms.room_state import RoomStateHandler
from homeserver.server import Server
from homeserver.sync.sliding.request import RoomConfig
from storage.stores.events import EventStore

LAZY, ME, ANY = "$LAZY", "$ME", "*"
#: State every room entry reads its ``name`` and ``avatar`` from: (type, content field, entry key).
NAMING = {"m.room.name": ("name", "name"), "m.room.avatar": ("url", "avatar")}


def state_filter(configs: list[RoomConfig]) -> dict[str, Any]:
    """The sync filter's ``room.state`` for the union of the rooms' required_state."""
    rules = [rule for config in configs for rule in config.required_state]
    if not rules:
        return {"types": list(NAMING)}
    body: dict[str, Any] = {}
    if all(t != ANY for t, _ in rules):
        # The room's name and avatar come along too: room entries carry them.
        body["types"] = sorted({t for t, _ in rules} | set(NAMING))
    members = [k for t, k in rules if t in ("m.room.member", ANY)]
    if LAZY in members and ANY not in members:
        body["lazy_load_members"] = True
    return body


def state_at_end(state: list[dict[str, Any]], timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The room's state as of the end of the timeline, as MSC4186's ``required_state`` means it.

    The builder answers /sync's way: state up to the start of the timeline, whose own state events
    are left in the timeline. Sliding sync clients (matrix-js-sdk, matrix-rust-sdk) read the room's
    name and other state from ``required_state`` alone, so state events in the timeline (the whole
    built one, also the part cut to this room's ``timeline_limit``) are applied on top, the later
    winning."""
    current: dict[tuple[str, str], dict[str, Any]] = {}
    for event in [*state, *(e for e in timeline if isinstance(e.get("state_key"), str))]:
        current[(event.get("type", ""), event["state_key"])] = event
    return list(current.values())


def wanted(event: dict[str, Any], config: RoomConfig, user_id: str, senders: set[str]) -> bool:
    for event_type, key in config.required_state:
        if event_type not in (ANY, event.get("type")):
            continue
        state_key = event.get("state_key")
        if key in (ANY, state_key) or (key == ME and state_key == user_id):
            return True
        if key == LAZY and event.get("type") == "m.room.member" and state_key in senders:
            return True
    return False


class SlidingRooms:
    def __init__(self, hs: Server) -> None:
        self.events = hs.get(EventStore)
        self.state = hs.get(RoomStateHandler)

    async def joined_entry(self, user_id: str, room_id: str, entry: dict[str, Any], config: RoomConfig,
                           initial: bool, live_after: int | None) -> dict[str, Any]:
        timeline = entry["timeline"]["events"]
        limited = bool(entry["timeline"].get("limited"))
        prev_batch = entry["timeline"].get("prev_batch")
        if len(timeline) > config.timeline_limit:
            timeline = timeline[len(timeline) - config.timeline_limit:] if config.timeline_limit else []
            limited = True
            if timeline:
                position = await self.events.get_stream_ordering(timeline[0]["event_id"])
                prev_batch = f"s{position - 1}" if position is not None else prev_batch
        senders = {e.get("sender") for e in timeline if isinstance(e.get("sender"), str)}
        built_state = entry["state"]["events"]
        state = [e for e in state_at_end(built_state, entry["timeline"]["events"])
                 if wanted(e, config, user_id, senders)]
        if initial and any(k == ME for _, k in config.required_state) and not any(
                e.get("type") == "m.room.member" and e.get("state_key") == user_id for e in state):
            own = await self.state.get_current_state_event(room_id, "m.room.member", user_id)
            if own is not None:
                state.append({"type": "m.room.member", "state_key": user_id, "sender": own.event.sender,
                              "content": own.event.content, "event_id": own.event_id,
                              "origin_server_ts": own.event.origin_server_ts})
        unread = entry.get("unread_notifications", {})
        result: dict[str, Any] = {
            "initial": initial, "timeline": timeline, "required_state": state, "limited": limited,
            "num_live": await self._num_live(timeline, initial, live_after),
            "notification_count": unread.get("notification_count", 0),
            "highlight_count": unread.get("highlight_count", 0),
        }
        if prev_batch is not None:
            result["prev_batch"] = prev_batch
        summary = entry.get("summary") or {}
        if "m.heroes" in summary:
            result["heroes"] = [{"user_id": hero} for hero in summary["m.heroes"]]
        for key, name in (("m.joined_member_count", "joined_count"), ("m.invited_member_count", "invited_count")):
            if key in summary:
                result[name] = summary[key]
        _name_and_avatar([*built_state, *timeline], result)
        return result

    async def _num_live(self, timeline: list[dict[str, Any]], initial: bool, live_after: int | None) -> int:
        """How many timeline events arrived since the connection's last position."""
        if live_after is None:
            return 0
        if not initial:
            return len(timeline)
        loaded = await self.events.get_events([e["event_id"] for e in timeline if "event_id" in e])
        return sum(1 for s in loaded.values() if s.stream_ordering > live_after)


def _name_and_avatar(events: list[dict[str, Any]], result: dict[str, Any]) -> None:
    """The room's name and avatar where this answer's state or timeline sets them (an initial
    room's state always holds them when set; later answers only when they change)."""
    for event in events:
        naming = NAMING.get(event.get("type", ""))
        if naming is None or event.get("state_key") != "":
            continue
        value = event.get("content", {}).get(naming[0])
        if isinstance(value, str) and value:
            result[naming[1]] = value
