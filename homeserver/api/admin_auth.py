"""The one check every ``/_synapse/admin`` route makes: a valid access token of a server admin.

Not a route module (it is not in API_MODULES); admin API modules call ``require_admin``
before doing anything else, so a non-admin gets 403 M_FORBIDDEN and learns nothing more.
"""

from __future__ import annotations

from twisted.web.server import Request

from homeserver.errors import forbidden
from homeserver.handlers.accounts.auth import Auth, Requester
from homeserver.http.auth import get_user_by_req
from homeserver.server import Server

ADMIN_V1 = "/_synapse/admin/v1"


async def require_admin(hs: Server, request: Request) -> Requester:
    requester = await get_user_by_req(request, hs.get(Auth))
    if not requester.is_admin:
        raise forbidden("You are not a server admin")
    return requester
