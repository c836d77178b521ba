"""Helpers for the admin API's tests (issue 22): admins, users, and the paths."""

from __future__ import annotations

from tests.support.apps import new_admin
from tests.support.client import Client, Response, register_user
from tests.support.server import RunningServer

ADMIN_V1 = "/_synapse/admin/v1"
ADMIN_V2 = "/_synapse/admin/v2"

__all__ = ["ADMIN_V1", "ADMIN_V2", "new_admin", "refused_to_others"]


def refused_to_others(server: RunningServer, method: str, path: str, body: object = None) -> None:
    """A non-admin gets 403 M_FORBIDDEN, no token 401 M_MISSING_TOKEN."""
    user = register_user(server.base_url)
    denied: Response = user.request(method, path, body)
    assert (denied.status, denied.errcode) == (403, "M_FORBIDDEN"), (path, denied)
    anonymous = Client(server.base_url).request(method, path, body)
    assert (anonymous.status, anonymous.errcode) == (401, "M_MISSING_TOKEN"), (path, anonymous)
