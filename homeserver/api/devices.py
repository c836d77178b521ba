"""``/devices`` and ``/delete_devices``: list, rename and delete a user's devices."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.errors import bad_json
from homeserver.handlers.accounts.auth import Auth
from homeserver.handlers.accounts.devices import MAX_DISPLAY_NAME_LENGTH, DeviceHandler
from homeserver.handlers.accounts.uia import PasswordUia
from homeserver.http.auth import get_user_by_req
from homeserver.http.request import optional, parse_json_object, require
from homeserver.http.router import Router, client_paths
from homeserver.server import Server

RESOURCES = ("client",)


def register_routes(router: Router, hs: Server) -> None:
    max_body = hs.config.max_request_body_size

    async def list_devices(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        devices = await hs.get(DeviceHandler).get_devices(requester.user_id)
        return 200, {"devices": [device.to_json() for device in devices]}

    async def get_device(request: Request, device_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        device = await hs.get(DeviceHandler).get_device(requester.user_id, device_id)
        return 200, device.to_json()

    async def update_device(request: Request, device_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth), allow_guest=True)
        body = parse_json_object(request, max_body)
        display_name = optional(body, "display_name", str, "a string")
        if display_name is not None and len(display_name) > MAX_DISPLAY_NAME_LENGTH:
            raise bad_json(f"display_name may not be longer than {MAX_DISPLAY_NAME_LENGTH} characters")
        await hs.get(DeviceHandler).set_display_name(requester.user_id, device_id, display_name)
        return 200, {}

    async def delete_device(request: Request, device_id: str) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body, allow_empty=True)
        await hs.get(PasswordUia).require_password(body, requester.user_id, "delete_devices")
        await hs.get(DeviceHandler).delete_devices(requester.user_id, [device_id])
        return 200, {}

    async def delete_devices(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await get_user_by_req(request, hs.get(Auth))
        body = parse_json_object(request, max_body)
        device_ids = require(body, "devices", list, "a list of device IDs")
        if not all(isinstance(device_id, str) for device_id in device_ids):
            raise bad_json("devices must be a list of strings")
        await hs.get(PasswordUia).require_password(body, requester.user_id, "delete_devices")
        await hs.get(DeviceHandler).delete_devices(requester.user_id, device_ids)
        return 200, {}

    router.add("GET", client_paths("/devices"), list_devices)
    router.add("GET", client_paths("/devices/{device_id}"), get_device)
    router.add("PUT", client_paths("/devices/{device_id}"), update_device)
    router.add("DELETE", client_paths("/devices/{device_id}"), delete_device)
    router.add("POST", client_paths("/delete_devices"), delete_devices)
