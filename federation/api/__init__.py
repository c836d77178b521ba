"""Thin HTTP modules of the server-server API, served on listeners with the federation
(and, for the key API, keys) resource.  Same contract as homeserver/api: ``RESOURCES`` and
``register_routes(router, hs)``; homeserver/api/__init__.py lists them with the client modules."""

from __future__ import annotations

from types import ModuleType

from federation.api import (
    hierarchy,
    invites,
    keys,
    media,
    membership,
    mls,
    openid,
    public_rooms,
    queries,
    room_events,
    send,
    server_well_known,
    user_keys,
    version,
)

FEDERATION_API_MODULES: list[ModuleType] = [server_well_known, keys, version, queries, public_rooms, send,
                                            room_events, membership, media, user_keys, invites, openid, mls, hierarchy]
