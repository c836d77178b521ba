"""Long jobs in the admin API (``/_synapse/admin/v1``, server admins only):

- ``GET /background_updates/status``: Synapse's shape, ``{"enabled": true, "current_updates":
  {"master": {"name", "total_item_count", "total_duration_ms", "average_items_per_ms"}}}``,
  with the oldest running job of the shared registry as the current update.
- ``GET /retention/status``: the retention config, each purge job's schedule and last run,
  and recent runs (docs/retention.md).
- ``GET /jobs``: every running and recently finished job of the registry.
"""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from homeserver.api.admin_auth import ADMIN_V1, require_admin
from homeserver.handlers.jobs import JobRegistry
from homeserver.handlers.rooms.retention import RetentionHandler
from homeserver.http.router import Router
from homeserver.server import Server

RESOURCES = ("client",)
#: Synapse's name for its (only) database in this answer.
DATABASE_NAME = "master"


def register_routes(router: Router, hs: Server) -> None:
    async def background_updates(request: Request) -> tuple[int, Any]:
        await require_admin(hs, request)
        current: dict[str, Any] = {}
        running = hs.get(JobRegistry).running()
        if running:
            job = running[0]
            duration = job.duration_ms()
            current[DATABASE_NAME] = {
                "name": f"{job.kind}: {job.description}", "total_item_count": job.done,
                "total_duration_ms": duration, "average_items_per_ms": job.done / duration if duration else 0,
            }
        return 200, {"enabled": True, "current_updates": current}

    async def retention_status(request: Request) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, hs.get(RetentionHandler).status()

    async def jobs(request: Request) -> tuple[int, Any]:
        await require_admin(hs, request)
        return 200, {"jobs": [job.describe() for job in hs.get(JobRegistry).jobs()]}

    router.add("GET", [f"{ADMIN_V1}/background_updates/status"], background_updates)
    router.add("GET", [f"{ADMIN_V1}/retention/status"], retention_status)
    router.add("GET", [f"{ADMIN_V1}/jobs"], jobs)
