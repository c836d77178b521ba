"""Thin HTTP modules, one per Matrix API area.

Each module has ``RESOURCES`` (the listener resource names it is served on)
and ``register_routes(router, hs)``.  Add a new area by listing it here.
"""

from __future__ import annotations

from types import ModuleType

from homeserver.api import (
    account,
    health,
    keys,
    login,
    logout,
    register,
    room_keys,
    to_device,
    versions,
    well_known,
)

API_MODULES: list[ModuleType] = [
    health,
    versions,
    well_known,
    register,
    login,
    logout,
    account,
    keys,
    room_keys,
    to_device,
]


def modules_for_resources(names: set[str]) -> list[ModuleType]:
    return [module for module in API_MODULES if names & set(module.RESOURCES)]
