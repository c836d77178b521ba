"""Thin HTTP modules, one per Matrix API area.

Each module has ``RESOURCES`` (the listener resource names it is served on)
and ``register_routes(router, hs)``.  Add a new area by listing it here.
"""

from __future__ import annotations

from types import ModuleType

from homeserver.api import (
    account,
    account_data,
    admin_register,
    capabilities,
    devices,
    directory,
    health,
    login,
    logout,
    metrics,
    profile,
    public_rooms,
    register,
    relations,
    room_history,
    room_send,
    room_state,
    rooms,
    user_directory,
    versions,
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
    devices,
    profile,
    user_directory,
    account_data,
    capabilities,
    admin_register,
    rooms,
    room_state,
    room_send,
    room_history,
    relations,
    directory,
    public_rooms,
]


def modules_for_resources(names: set[str]) -> list[ModuleType]:
    return [module for module in API_MODULES if names & set(module.RESOURCES)]
