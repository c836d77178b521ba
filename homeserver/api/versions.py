"""``GET /_matrix/client/versions``: which spec versions and unstable features we speak."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.handlers.rooms.delayed_events import DelayedEventsHandler
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)

SPEC_VERSIONS = [
    "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
    "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19",
]  # fmt: skip

UNSTABLE_FEATURES: dict[str, bool] = {
    # Simplified sliding sync (MSC4186), as Synapse advertises it; room summaries (MSC3266); mutual rooms (MSC2666).
    "org.matrix.simplified_msc3575": True,
    "im.nheko.summary": True,
    "uk.half-shot.msc2666.query_mutual_rooms": True,
}


def unstable_features(hs: Server) -> dict[str, bool]:
    """The fixed list, plus what this server's config switches on."""
    features = dict(UNSTABLE_FEATURES)
    if hs.get(DelayedEventsHandler).enabled:
        features["org.matrix.msc4140"] = True
    return features


def register_routes(router: Router, hs: Server) -> None:
    features = unstable_features(hs)

    async def versions(request: Request) -> tuple[int, dict[str, Any]]:
        return 200, {"versions": SPEC_VERSIONS, "unstable_features": features}

    router.add("GET", "/_matrix/client/versions", versions)
