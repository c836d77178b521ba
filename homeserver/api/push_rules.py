"""``/pushrules/``: read and change the requester's push rules (spec "Push Rules: API")."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.push.rules import PushRulesHandler
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import parse_json_object, query_str, require
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)
MAX_BODY = 64 * 1024

RULE = "/pushrules/{scope}/{kind}/{rule_id}"


def register_routes(router: Router, hs: Server) -> None:
    def rules() -> PushRulesHandler:
        return hs.get(PushRulesHandler)

    async def get_all(request: Request) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        return 200, await rules().get_all(requester.user_id)

    async def get_scope(request: Request, scope: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        return 200, await rules().get_scope(requester.user_id, scope)

    async def get_kind(request: Request, scope: str, kind: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        return 200, await rules().get_kind(requester.user_id, scope, kind)

    async def get_rule(request: Request, scope: str, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        return 200, await rules().get_rule(requester.user_id, scope, kind, rule_id)

    async def put_rule(request: Request, scope: str, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, MAX_BODY)
        before = query_str(request, "before")
        after = query_str(request, "after")
        await rules().put_rule(requester.user_id, scope, kind, rule_id, body, before, after)
        return 200, {}

    async def delete_rule(request: Request, scope: str, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        await rules().delete_rule(requester.user_id, scope, kind, rule_id)
        return 200, {}

    async def get_actions(request: Request, scope: str, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        rule = await rules().get_rule(requester.user_id, scope, kind, rule_id)
        return 200, {"actions": rule["actions"]}

    async def put_actions(request: Request, scope: str, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, MAX_BODY)
        actions = require(body, "actions", list, "a list")
        await rules().set_actions(requester.user_id, scope, kind, rule_id, actions)
        return 200, {}

    async def get_enabled(request: Request, scope: str, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        rule = await rules().get_rule(requester.user_id, scope, kind, rule_id)
        return 200, {"enabled": rule["enabled"]}

    async def put_enabled(request: Request, scope: str, kind: str, rule_id: str) -> tuple[int, Any]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, MAX_BODY)
        enabled = require(body, "enabled", bool, "a boolean")
        await rules().set_enabled(requester.user_id, scope, kind, rule_id, enabled)
        return 200, {}

    router.add("GET", client_paths("/pushrules") + client_paths("/pushrules/"), get_all)
    router.add("GET", client_paths("/pushrules/{scope}") + client_paths("/pushrules/{scope}/"), get_scope)
    router.add("GET", client_paths("/pushrules/{scope}/{kind}") + client_paths("/pushrules/{scope}/{kind}/"),
               get_kind)
    router.add("GET", client_paths(RULE), get_rule)
    router.add("PUT", client_paths(RULE), put_rule)
    router.add("DELETE", client_paths(RULE), delete_rule)
    router.add("GET", client_paths(RULE + "/actions"), get_actions)
    router.add("PUT", client_paths(RULE + "/actions"), put_actions)
    router.add("GET", client_paths(RULE + "/enabled"), get_enabled)
    router.add("PUT", client_paths(RULE + "/enabled"), put_enabled)
