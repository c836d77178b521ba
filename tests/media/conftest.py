"""Media servers with tight limits (small uploads, quotas, short-lived media IDs), on both engines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2ee.conftest import store_host  # noqa: F401 - the shared storage-test fixture
from tests.support.accounts import custom_server
from tests.support.databases import ENGINES
from tests.support.server import RunningServer

TIGHT_UPLOAD_SIZE = 1024 * 1024
TIGHT_LIMITS = {
    "max_upload_size": TIGHT_UPLOAD_SIZE,
    "max_pending_media_uploads": 3,
    "unused_expiration_time": "3s",
    "media_upload_limits": [{"time_period": "1h", "max_size": "2500K"}, {"time_period": "1d", "max_size": "4M"}],
    "max_image_pixels": 1_000_000,
    "dynamic_thumbnails": True,
}


@pytest.fixture(scope="module", params=ENGINES)
def tight_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp(f"hs-media-tight-{request.param}")
    with custom_server(directory, request.param, **TIGHT_LIMITS) as running:
        yield running
