"""Thin HTTP modules, one per Matrix API area.

Each module has ``RESOURCES`` (the listener resource names it is served on)
and ``register_routes(router, hs)``.  Add a new area by listing it here.
"""

from __future__ import annotations

from types import ModuleType

from federation.api import FEDERATION_API_MODULES
from homeserver.api import (
    account,
    account_data,
    admin_register,
    capabilities,
    delayed_events,
    devices,
    directory,
    filter,
    health,
    keys,
    login,
    logout,
    media,
    media_admin,
    metrics,
    presence,
    profile,
    public_rooms,
    read_markers,
    receipts,
    register,
    relations,
    reports,
    reports_admin,
    room_history,
    room_keys,
    room_send,
    room_state,
    room_tags,
    room_upgrade,
    rooms,
    sync,
    to_device,
    typing,
    user_directory,
    versions,
    voip,
    websocket,
    well_known,
)

API_MODULES: list[ModuleType] = [
    health,
    metrics,
    versions,
    well_known,
    register,
    login,
    logout,
    account,
    rooms,
    room_upgrade,
    room_state,
    room_send,
    delayed_events,
    room_history,
    relations,
    directory,
    public_rooms,
    sync,
    filter,
    typing,
    receipts,
    read_markers,
    presence,
    websocket,
    devices,
    profile,
    user_directory,
    account_data,
    room_tags,
    capabilities,
    admin_register,
    keys,
    room_keys,
    to_device,
    media,
    media_admin,
    reports,
    reports_admin,
    voip,
    *FEDERATION_API_MODULES,
]


def modules_for_resources(names: set[str]) -> list[ModuleType]:
    return [module for module in API_MODULES if names & set(module.RESOURCES)]
