"""Helpers for media tests: uploading and fetching over HTTP, making images, raw sockets."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from tests.support.accounts import admin_register
from tests.support.client import Client, random_localpart
from tests.support.server import RunningServer

CLIENT_MEDIA = "/_matrix/client/v1/media"
LEGACY_MEDIA = "/_matrix/media/v3"
CSP = ("sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf;"
       " style-src 'unsafe-inline'; media-src 'self'; object-src 'self';")


def auth_headers(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.access_token}"}


def upload_raw(client: Client, data: bytes | Any, content_type: str | None = "application/octet-stream",
               filename: str | None = None, path: str = f"{LEGACY_MEDIA}/upload", method: str = "POST",
               headers: dict[str, str] | None = None) -> requests.Response:
    sent = {**auth_headers(client), **(headers or {})}
    if content_type is not None:
        sent["Content-Type"] = content_type
    params = {"filename": filename} if filename is not None else None
    return requests.request(method, client.base_url + path, data=data, params=params, headers=sent, timeout=120)


def upload(client: Client, data: bytes, content_type: str = "application/octet-stream",
           filename: str | None = None) -> tuple[str, str]:
    """Upload and return (server name, media ID) of the new mxc:// URI."""
    response = upload_raw(client, data, content_type, filename)
    assert response.status_code == 200, response.text
    return split_mxc(response.json()["content_uri"])


def split_mxc(uri: str) -> tuple[str, str]:
    assert uri.startswith("mxc://"), uri
    server_name, media_id = uri[len("mxc://"):].split("/")
    return server_name, media_id


def download(client: Client, server_name: str, media_id: str, file_name: str | None = None,
             authenticated: bool = True, **params: Any) -> requests.Response:
    prefix = CLIENT_MEDIA if authenticated else LEGACY_MEDIA
    path = f"{prefix}/download/{server_name}/{media_id}" + (f"/{file_name}" if file_name else "")
    headers = auth_headers(client) if authenticated else {}
    return requests.get(client.base_url + path, headers=headers, params=params, timeout=120)


def thumbnail(client: Client, server_name: str, media_id: str, authenticated: bool = True,
              **params: Any) -> requests.Response:
    prefix = CLIENT_MEDIA if authenticated else LEGACY_MEDIA
    headers = auth_headers(client) if authenticated else {}
    return requests.get(f"{client.base_url}{prefix}/thumbnail/{server_name}/{media_id}", headers=headers,
                        params=params, timeout=120)


def image_bytes(fmt: str, size: tuple[int, int] = (400, 300), color: tuple[int, ...] = (200, 30, 30),
                mode: str = "RGB", **save: Any) -> bytes:
    image = Image.new(mode, size, color)
    # A second colour in the top-left quarter, so orientation and cropping are visible.
    image.paste((30, 30, 200) if mode == "RGB" else 0, (0, 0, size[0] // 2, size[1] // 2))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def media_files(server: RunningServer) -> list[Path]:
    """Every file under the server's media store (content, thumbnails, temporaries)."""
    root = Path(server.config["media_store_path"])
    return sorted(p for p in root.rglob("*") if p.is_file())


def tmp_files(server: RunningServer) -> list[str]:
    return os.listdir(Path(server.config["media_store_path"]) / "tmp")


def new_admin(server: RunningServer) -> Client:
    localpart = random_localpart("admin")
    response = admin_register(server, localpart, admin=True)
    assert response.status == 200, response
    return Client(server.base_url, response.body["access_token"], response.body["user_id"],
                  response.body["device_id"])


def raw_http(server: RunningServer, request: bytes, read_reply: bool = True, timeout: float = 10) -> bytes:
    """Send bytes on a fresh connection (for malformed framing), then read until the server closes."""
    port = server.config["listeners"][0]["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        if not read_reply:
            return b""
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)
