"""Prometheus metrics shared across the server (exposed by homeserver/api/metrics.py)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "vignette_http_requests_total", "HTTP requests served, by route pattern and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "vignette_http_request_duration_seconds", "Time from request to response, by route pattern.",
    ["method", "route"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
