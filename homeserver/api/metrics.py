"""``GET /_synapse/metrics``: Prometheus metrics, when ``enable_metrics`` is on."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.web.server import Request

from homeserver.errors import not_found
from homeserver.http.resource import RawResponse
from homeserver.http.router import Router
from homeserver.metrics import SCRAPE_HOOKS
from homeserver.server import Server

RESOURCES = ("metrics",)


def register_routes(router: Router, hs: Server) -> None:
    enabled = hs.config.enable_metrics

    async def metrics(request: Request) -> tuple[int, RawResponse]:
        if not enabled:
            raise not_found("Metrics are disabled (set enable_metrics: true)")
        for hook in list(SCRAPE_HOOKS):
            await hook()
        return 200, RawResponse(generate_latest(), CONTENT_TYPE_LATEST.encode())

    router.add("GET", "/_synapse/metrics", metrics)
