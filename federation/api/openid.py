"""``GET /_matrix/federation/v1/openid/userinfo``: a third party checks an OpenID token.

Not signed: the caller is usually not a homeserver, and the token itself is the credential.
Served on listeners with the ``federation`` or the ``openid`` resource (Synapse's name)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.accounts.openid import OpenIdHandler
from homeserver.http.request import query_str
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("federation", "openid")


def register_routes(router: Router, hs: Server) -> None:
    async def userinfo(request: Request) -> tuple[int, Any]:
        token = query_str(request, "access_token", required=True)
        return 200, await hs.get(OpenIdHandler).userinfo(token)

    router.add("GET", "/_matrix/federation/v1/openid/userinfo", userinfo)
