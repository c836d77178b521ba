"""A 100 MB remote download over federation: the origin streams it out of its file inside the
multipart envelope, and the fetching server streams it into its cache, so neither server's
memory grows by anything like the file's size.

Marked slow (it moves the file over TLS, then again to the client). One engine: the file's
path never touches the database beyond one row."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests

from tests.media.test_large_files import BLOCK, GeneratedBody, memory_kb
from tests.support.databases import drop_database
from tests.support.federation import FederationNet, unique_label
from tests.support.media import auth_headers, split_mxc, tmp_files, upload
from tests.support.rooms import new_user

SIZE = 100 * 1024 * 1024
MAX_GROWTH_KB = 64 * 1024


@pytest.mark.slow
def test_100_mb_remote_download_in_bounded_memory(fednet: FederationNet, tmp_path: Path) -> None:
    started = []
    try:
        for label in ("big-a", "big-b"):
            started.append(fednet.start_server(tmp_path / label, "sqlite3", unique_label(label),
                                               max_upload_size="128M"))
        (origin, _), (fetcher, _) = started
        assert origin.process is not None and fetcher.process is not None
        alice, bob = new_user(origin.base_url), new_user(fetcher.base_url)
        warm_server, warm_id = upload(alice, b"warm up" * 1000)
        assert requests.get(f"{fetcher.base_url}/_matrix/client/v1/media/download/{warm_server}/{warm_id}",
                            headers=auth_headers(bob), timeout=60).status_code == 200
        body = GeneratedBody(SIZE)
        response = requests.post(f"{origin.base_url}/_matrix/media/v3/upload", data=body, timeout=600,
                                 headers={**auth_headers(alice), "Content-Type": "application/octet-stream"})
        assert response.status_code == 200, response.text
        server_name, media_id = split_mxc(response.json()["content_uri"])
        baselines = [(server, memory_kb(server.process.pid, "VmRSS")) for server in (origin, fetcher)]

        received, length = hashlib.sha256(), 0
        with requests.get(f"{fetcher.base_url}/_matrix/client/v1/media/download/{server_name}/{media_id}",
                          headers=auth_headers(bob), stream=True, timeout=600) as download:
            assert download.status_code == 200, download.text
            assert int(download.headers["Content-Length"]) == SIZE
            for chunk in download.iter_content(BLOCK):
                received.update(chunk)
                length += len(chunk)
        assert length == SIZE and received.hexdigest() == body.sha256.hexdigest()
        for server, baseline in baselines:
            assert server.process is not None
            peak = memory_kb(server.process.pid, "VmHWM")
            print(f"\n{server.server_name}: RSS before {baseline} kB, peak {peak} kB")
            assert peak - baseline < MAX_GROWTH_KB, (server.server_name, baseline, peak)
        assert tmp_files(fetcher) == []
    finally:
        for server, database in started:
            server.stop()
            drop_database(database)
