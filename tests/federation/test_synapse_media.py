"""Media between Vignette and a real Synapse (matrix-synapse from PyPI), in both directions: each
server's users download and thumbnail the other's uploads through their own server, which fetches
them over ``/_matrix/federation/v1/media/download`` (Synapse thumbnails what it fetched, as we do)."""

from __future__ import annotations

import pytest

from tests.support.client import Client, register_user
from tests.support.media import decode, download, image_bytes, thumbnail, upload
from tests.support.rooms import new_user
from tests.support.server import RunningServer
from tests.support.synapse_server import SynapseServer

FED_SERVER_CONFIG = {"localhost_name": True, "ip_range_whitelist": ["127.0.0.1/32", "::1/128"]}
NAME = "ünïcode näme.bin"


@pytest.fixture(scope="module")
def vignette(fed_server: RunningServer) -> RunningServer:
    """Reachable from Synapse as ``localhost:<port>`` (Synapse can use no DNS server of ours)."""
    return fed_server


@pytest.fixture(scope="module")
def ours(vignette: RunningServer) -> Client:
    return new_user(vignette.base_url)


@pytest.fixture(scope="module")
def theirs(synapse: SynapseServer) -> Client:
    return register_user(synapse.base_url)


def check_download(reader: Client, server_name: str, media_id: str, data: bytes, output: str) -> None:
    response = download(reader, server_name, media_id)
    assert response.status_code == 200, (response.text, output)
    assert response.content == data
    assert "filename*=utf-8''" in response.headers["Content-Disposition"].lower()


def check_thumbnail(reader: Client, server_name: str, media_id: str, output: str) -> None:
    response = thumbnail(reader, server_name, media_id, width=32, height=32, method="crop")
    assert response.status_code == 200, (response.text, output)
    assert decode(response.content).size == (32, 32)
    assert response.headers["Content-Type"] == "image/png"


def test_synapse_fetches_our_media(vignette: RunningServer, synapse: SynapseServer, ours: Client,
                                   theirs: Client) -> None:
    data = bytes(range(256)) * 300
    server_name, media_id = upload(ours, data, "application/octet-stream", NAME)
    check_download(theirs, server_name, media_id, data, synapse.output()[-3000:])
    _, image_id = upload(ours, image_bytes("PNG"), "image/png", "ours.png")
    check_thumbnail(theirs, server_name, image_id, synapse.output()[-3000:])


def test_we_fetch_synapse_media(vignette: RunningServer, synapse: SynapseServer, ours: Client,
                                theirs: Client) -> None:
    data = b"from synapse " * 5000
    server_name, media_id = upload(theirs, data, "application/octet-stream", NAME)
    assert server_name == synapse.server_name
    check_download(ours, server_name, media_id, data, vignette.output()[-3000:])
    _, image_id = upload(theirs, image_bytes("PNG"), "image/png", "theirs.png")
    check_thumbnail(ours, server_name, image_id, vignette.output()[-3000:])
    missing = download(ours, server_name, "NoSuchMediaOnSynapse")
    assert missing.status_code == 404, missing.text
    assert missing.json()["errcode"] == "M_NOT_FOUND"
