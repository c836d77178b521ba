"""Helpers for the app-facing features' tests (issue 20): server admins, and common URL bits."""

from __future__ import annotations

from tests.support.accounts import admin_register
from tests.support.client import Client, random_localpart
from tests.support.server import RunningServer

ADMIN_V1 = "/_synapse/admin/v1"


def new_admin(server: RunningServer) -> Client:
    """A server admin, registered through the shared-secret admin API."""
    response = admin_register(server, random_localpart("admin"), admin=True)
    assert response.status == 200, response
    return Client(server.base_url, response.body["access_token"], response.body["user_id"],
                  response.body["device_id"])
