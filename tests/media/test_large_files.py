"""A 200 MB upload and download: both streamed, so the server's memory barely moves.

Marked slow (it moves 400 MB per engine); CI still runs it, as it runs every test.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests

from tests.support.accounts import custom_server
from tests.support.client import register_user
from tests.support.databases import ENGINES
from tests.support.media import auth_headers, split_mxc, tmp_files, upload

SIZE = 200 * 1024 * 1024
BLOCK = 1024 * 1024
MAX_GROWTH_KB = 64 * 1024


class GeneratedBody:
    """200 MB of distinct blocks, made as they are read, with a known length (so no chunked encoding)."""

    def __init__(self, size: int) -> None:
        self.size, self.sent = size, 0
        self.block = bytes(range(256)) * (BLOCK // 256)
        self.sha256 = hashlib.sha256()

    def __len__(self) -> int:
        return self.size - self.sent

    def read(self, n: int = -1) -> bytes:
        n = BLOCK if n < 0 else min(n, BLOCK)
        n = min(n, self.size - self.sent)
        if n <= 0:
            return b""
        index = self.sent // BLOCK
        start = self.sent % BLOCK
        chunk = (index.to_bytes(8, "big") + self.block[8:])[start:start + n]
        self.sent += len(chunk)
        self.sha256.update(chunk)
        return chunk


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_200_mb_round_trip_in_bounded_memory(tmp_path: Path, engine: str) -> None:
    with custom_server(tmp_path, engine, max_upload_size="256M") as server:
        assert server.process is not None
        pid = server.process.pid
        alice = register_user(server.base_url)
        upload(alice, b"warm up" * 1000)  # import and allocate what any upload needs first
        baseline = memory_kb(pid, "VmRSS")

        body = GeneratedBody(SIZE)
        response = requests.post(f"{server.base_url}/_matrix/media/v3/upload", data=body, timeout=600,
                                 headers={**auth_headers(alice), "Content-Type": "application/octet-stream"})
        assert response.status_code == 200, response.text
        server_name, media_id = split_mxc(response.json()["content_uri"])
        after_upload = memory_kb(pid, "VmHWM")

        received = hashlib.sha256()
        length = 0
        with requests.get(f"{server.base_url}/_matrix/client/v1/media/download/{server_name}/{media_id}",
                          headers=auth_headers(alice), stream=True, timeout=600) as download:
            assert download.status_code == 200
            assert int(download.headers["Content-Length"]) == SIZE
            for chunk in download.iter_content(BLOCK):
                received.update(chunk)
                length += len(chunk)
        peak = memory_kb(pid, "VmHWM")

        print(f"\nRSS before {baseline} kB, peak after upload {after_upload} kB, peak after download {peak} kB")
        assert length == SIZE and received.hexdigest() == body.sha256.hexdigest()
        assert after_upload - baseline < MAX_GROWTH_KB, (baseline, after_upload)
        assert peak - baseline < MAX_GROWTH_KB, (baseline, peak)
        assert tmp_files(server) == []
