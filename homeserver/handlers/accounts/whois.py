"""``/admin/whois/{userId}``: a user's devices and where they were last seen, for the user
themself or a server admin. Only each device's last connection is kept (``devices.last_seen_*``);
user agents are not recorded."""

from __future__ import annotations

from typing import Any

from homeserver.errors import forbidden, invalid_param, not_found
from homeserver.events.identifiers import is_valid_user_id, server_name_of
from homeserver.handlers.accounts.auth import Requester
from homeserver.server import Server
from storage.stores.devices import DeviceStore


class WhoisHandler:
    def __init__(self, hs: Server) -> None:
        self.server_name = hs.server_name
        self.devices = hs.get(DeviceStore)

    async def whois(self, requester: Requester, user_id: str) -> dict[str, Any]:
        if not is_valid_user_id(user_id):
            raise invalid_param(f"{user_id!r} is not a user ID")
        if user_id != requester.user_id and not requester.is_admin:
            raise forbidden("You are not a server admin")
        if server_name_of(user_id) != self.server_name:
            raise not_found("Only local users can be looked up")
        devices: dict[str, Any] = {}
        for device in await self.devices.get_devices_by_user(user_id):
            connections = []
            if device.last_seen_ms is not None:
                connection: dict[str, Any] = {"last_seen": device.last_seen_ms}
                if device.last_seen_ip is not None:
                    connection["ip"] = device.last_seen_ip
                connections.append(connection)
            devices[device.device_id] = {"sessions": [{"connections": connections}]}
        return {"user_id": user_id, "devices": devices}
