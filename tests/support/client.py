"""A small synchronous Matrix client for black-box tests (plain HTTP, no SDK)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import attrs
import requests


@attrs.define
class Response:
    status: int
    body: Any

    @property
    def errcode(self) -> str | None:
        return self.body.get("errcode") if isinstance(self.body, dict) else None


@attrs.define
class Client:
    """One logged-in (or anonymous) user talking to one server."""

    base_url: str
    access_token: str | None = None
    user_id: str | None = None
    device_id: str | None = None
    session: requests.Session = attrs.field(factory=requests.Session)

    def request(self, method: str, path: str, body: Any = None, *, params: dict[str, Any] | None = None,
                raw: bytes | None = None, token: str | None | bool = True, timeout: float = 60) -> Response:
        """``path`` starts with /_matrix/... ; ``token=False`` sends no token."""
        headers = {}
        use_token = self.access_token if token is True else (token or None)
        if use_token:
            headers["Authorization"] = f"Bearer {use_token}"
        data = raw
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = requests.models.complexjson.dumps(body).encode()
        response = self.session.request(method, self.base_url + path, data=data, params=params,
                                        headers=headers, timeout=timeout)
        try:
            parsed: Any = response.json()
        except ValueError:
            parsed = response.text
        return Response(response.status_code, parsed)

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.request("DELETE", path, body, **kwargs)


def q(value: str) -> str:
    """Percent-encode one path segment (room IDs, event IDs, user IDs...)."""
    return quote(value, safe="")


def random_localpart(prefix: str = "user") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def register_user(base_url: str, localpart: str | None = None, password: str = "correct horse battery",
                  device_id: str | None = None) -> Client:
    """Register through the real /register flow (dummy auth) and return a logged-in client."""
    client = Client(base_url)
    localpart = localpart or random_localpart()
    body: dict[str, Any] = {"username": localpart, "password": password, "auth": {"type": "m.login.dummy"}}
    if device_id:
        body["device_id"] = device_id
    response = client.post("/_matrix/client/v3/register", body)
    assert response.status == 200, response
    client.access_token = response.body["access_token"]
    client.user_id = response.body["user_id"]
    client.device_id = response.body["device_id"]
    return client
