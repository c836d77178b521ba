"""Delayed events (MSC4140) management: list, cancel, restart, send now (docs/delayed-events.md).

Scheduling is a query parameter on the ordinary send and state endpoints
(``delay_param`` here, used by room_send.py and room_state.py). Management takes both
shapes Synapse serves: the action in the path (the MSC's current draft, no access token
needed: the delay_id is the capability) and the older ``{"action": ...}`` body.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.web.server import Request

from homeserver.errors import invalid_param, missing_param
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.handlers.rooms.delayed_events import DelayedEventsHandler
from homeserver.http.auth import client_ip, get_user_by_req, token_from_request
from homeserver.http.request import parse_json_object, query_str
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)

PREFIX = "/_matrix/client/unstable/org.matrix.msc4140"
DELAY_PARAM = "org.matrix.msc4140.delay"
ACTIONS = ("cancel", "restart", "send")
_DIGITS = re.compile(r"[0-9]{1,16}")


def delay_param(request: Request) -> int | None:
    """The requested delay in ms, or None for an ordinary send; 400 M_INVALID_PARAM if malformed."""
    text = query_str(request, DELAY_PARAM)
    if text is None:
        return None
    if not _DIGITS.fullmatch(text):
        raise invalid_param(f"{DELAY_PARAM} must be a non-negative integer number of milliseconds")
    return int(text)


def register_routes(router: Router, hs: Server) -> None:
    auth = hs.get(Auth)
    delayed = hs.get(DelayedEventsHandler)

    async def management_key(request: Request) -> str:
        """Who to count a management request against: the user if a token came, else the address."""
        if token_from_request(request) is None:
            return f"ip:{client_ip(request)}"
        requester = await get_user_by_req(request, auth, allow_guest=True)
        return str(requester.user_id)

    async def ratelimit_management(request: Request) -> None:
        hs.get(RateLimiters).delayed_event_mgmt.ratelimit(await management_key(request))

    async def act(delay_id: str, action: str) -> tuple[int, Any]:
        if action == "cancel":
            await delayed.cancel(delay_id)
        elif action == "restart":
            await delayed.restart(delay_id)
        else:
            await delayed.send_now(delay_id)
        return 200, {}

    async def list_scheduled(request: Request) -> tuple[int, Any]:
        requester = await get_user_by_req(request, auth, allow_guest=True)
        await ratelimit_management(request)
        return 200, {"delayed_events": await delayed.list_scheduled(requester.user_id)}

    async def update_with_body(request: Request, delay_id: str) -> tuple[int, Any]:
        await ratelimit_management(request)
        body = parse_json_object(request, int(hs.config.max_request_body_size))
        if "action" not in body:
            raise missing_param("action")
        action = body["action"]
        if action not in ACTIONS:
            raise invalid_param("'action' is not one of " + ", ".join(f"'{a}'" for a in ACTIONS))
        return await act(delay_id, action)

    def update_in_path(action: str) -> Any:
        async def update(request: Request, delay_id: str) -> tuple[int, Any]:
            await ratelimit_management(request)
            return await act(delay_id, action)

        return update

    router.add("GET", PREFIX + "/delayed_events", list_scheduled)
    router.add("POST", PREFIX + "/delayed_events/{delay_id}", update_with_body)
    for action in ACTIONS:
        router.add("POST", PREFIX + "/delayed_events/{delay_id}/" + action, update_in_path(action))


