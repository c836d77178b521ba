"""The events of a room, for other servers filling their gaps: ``/event``, ``/state``,
``/state_ids``, ``/event_auth``, ``/get_missing_events``, ``/backfill`` and
``/timestamp_to_event``. Thin: checks and filtering live in federation/room_events.py."""

from __future__ import annotations

import time
from typing import Any

from twisted.web.server import Request

from federation.room_events import FederationRoomEvents
from federation.transport.auth import FederationAuth
from homeserver.errors import bad_json, invalid_param, missing_param
from homeserver.handlers.rooms.room_state import check_room_id
from homeserver.http.request import optional, query_int, query_str
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation",)
MAX_BODY = 256 * 1024
V1 = "/_matrix/federation/v1"


def register_routes(router: Router, hs: Server) -> None:
    def envelope(pdus: list[Any]) -> dict[str, Any]:
        return {"origin": hs.server_name, "origin_server_ts": int(time.time() * 1000), "pdus": pdus}

    async def get_event(request: Request, event_id: str) -> tuple[int, Any]:
        origin, _ = await hs.get(FederationAuth).authenticate(request)
        return 200, envelope([await hs.get(FederationRoomEvents).get_event(origin, event_id)])

    async def get_state(request: Request, room_id: str) -> tuple[int, Any]:
        origin, _ = await hs.get(FederationAuth).authenticate(request)
        check_room_id(room_id)
        event_id = query_str(request, "event_id", required=True)
        pdus, auth_chain = await hs.get(FederationRoomEvents).get_state(origin, room_id, event_id)
        return 200, {"pdus": pdus, "auth_chain": auth_chain}

    async def get_state_ids(request: Request, room_id: str) -> tuple[int, Any]:
        origin, _ = await hs.get(FederationAuth).authenticate(request)
        check_room_id(room_id)
        event_id = query_str(request, "event_id", required=True)
        pdu_ids, auth_ids = await hs.get(FederationRoomEvents).get_state_ids(origin, room_id, event_id)
        return 200, {"pdu_ids": pdu_ids, "auth_chain_ids": auth_ids}

    async def get_event_auth(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        origin, _ = await hs.get(FederationAuth).authenticate(request)
        check_room_id(room_id)
        return 200, {"auth_chain": await hs.get(FederationRoomEvents).get_event_auth(origin, room_id, event_id)}

    async def get_missing_events(request: Request, room_id: str) -> tuple[int, Any]:
        origin, body = await hs.get(FederationAuth).authenticate(request, MAX_BODY)
        check_room_id(room_id)
        if not isinstance(body, dict):
            raise bad_json("The body must be a JSON object")
        earliest = _id_list(body, "earliest_events")
        if "latest_events" not in body:
            raise missing_param("latest_events")
        latest = _id_list(body, "latest_events")
        limit = optional(body, "limit", int, "an integer", 10)
        min_depth = optional(body, "min_depth", int, "an integer", 0)
        events = await hs.get(FederationRoomEvents).get_missing_events(origin, room_id, earliest, latest,
                                                                       limit, min_depth)
        return 200, {"events": events}

    async def backfill(request: Request, room_id: str) -> tuple[int, Any]:
        origin, _ = await hs.get(FederationAuth).authenticate(request)
        check_room_id(room_id)
        start = [v.decode("utf-8", "replace") for v in request.args.get(b"v", [])]
        if not start:
            raise missing_param("v")
        limit = query_int(request, "limit", required=True, minimum=0)
        assert limit is not None
        return 200, envelope(await hs.get(FederationRoomEvents).backfill(origin, room_id, start, limit))

    async def timestamp_to_event(request: Request, room_id: str) -> tuple[int, Any]:
        origin, _ = await hs.get(FederationAuth).authenticate(request)
        check_room_id(room_id)
        ts = query_int(request, "ts", 0, minimum=0, maximum=2**62, required=True)
        direction = query_str(request, "dir", required=True)
        if direction not in ("b", "f"):
            raise invalid_param("dir must be 'b' or 'f'")
        return 200, await hs.get(FederationRoomEvents).timestamp_to_event(origin, room_id, ts, direction == "f")

    router.add("GET", V1 + "/timestamp_to_event/{room_id}", timestamp_to_event)
    router.add("GET", V1 + "/event/{event_id}", get_event)
    router.add("GET", V1 + "/state/{room_id}", get_state)
    router.add("GET", V1 + "/state_ids/{room_id}", get_state_ids)
    router.add("GET", V1 + "/event_auth/{room_id}/{event_id}", get_event_auth)
    router.add("POST", V1 + "/get_missing_events/{room_id}", get_missing_events)
    router.add("GET", V1 + "/backfill/{room_id}", backfill)


def _id_list(body: dict[str, Any], name: str) -> list[str]:
    value = optional(body, name, list, "a list of event IDs", [])
    if not all(isinstance(i, str) for i in value) or len(value) > 1000:
        raise bad_json(f"{name} must be a list of at most 1000 event IDs")
    return list(value)
