"""Every operation of the spec's client-server OpenAPI document is served, except a listed few.

Each operation of shared/spec/openapi/client-server.json is called once, as a signed-in user, with
its path parameters filled in (a real room, event, device...) and an empty JSON object as the body.
Most answers are errors (a missing field, a forbidden action): what must never come back is
M_UNRECOGNIZED, the answer for a route the server does not have. The operations deliberately not
served are listed in NOT_SERVED, and each must be named in the README too, so the list a reader
sees is the list the server keeps.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.client import Client, q, register_user
from tests.support.databases import ENGINES
from tests.support.rooms import create_room, send_message
from tests.support.routes import SPEC
from tests.support.server import REPO_ROOT, RunningServer, custom_server

#: (METHOD, spec path) -> why it is not served. Each path must appear in README.md.
NOT_SERVED = {
    ("GET", "/_matrix/client/v3/login/sso/redirect"): "SSO needs an identity provider; none is configured",
    ("GET", "/_matrix/client/v3/login/sso/redirect/{idpId}"): "SSO needs an identity provider; none is configured",
    ("POST", "/_matrix/client/v1/appservice/{appserviceId}/ping"): "this server runs no application services",
    ("PUT", "/_matrix/client/v3/directory/list/appservice/{networkId}/{roomId}"): "application services only",
    ("GET", "/_matrix/client/v1/auth_metadata"): "no OAuth 2.0 API: the spec's answer is 404 M_UNRECOGNIZED",
    ("GET", "/.well-known/matrix/policy_server"): "served by a policy server, which this server is not",
    ("GET", "/.well-known/matrix/support"): "no support contact is configured (the spec's answer is 404)",
    ("GET", "/_matrix/client/v3/events"): "deprecated since r0: /sync with since replaces it",
    ("GET", "/_matrix/client/v3/events/{eventId}"): "deprecated since r0: /rooms/{roomId}/event/{eventId}",
    ("GET", "/_matrix/client/v3/initialSync"): "deprecated since r0: /sync without since replaces it",
    ("GET", "/_matrix/client/v3/rooms/{roomId}/initialSync"): "deprecated since r0 except for peeking",
}

_PARAM = re.compile(r"\{(\w+)\}")


def _operations() -> list[tuple[str, str]]:
    document = json.loads(SPEC.read_text())
    # Paths that differ only by a trailing space are the spec's second operation on the same route
    # (/rooms/{roomId}/invite for third-party invites, /events with a room_id for peeking).
    return sorted({(method.upper(), path.strip()) for path, item in document["paths"].items()
                   for method, operation in item.items() if isinstance(operation, dict)})


@pytest.fixture(scope="module", params=ENGINES)
def walked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with every optional feature this server has switched on (``/login/get_token``,
    URL previews, which may fetch from nowhere here)."""
    directory = tmp_path_factory.mktemp(f"hs-openapi-{request.param}")
    with custom_server(directory, request.param,
                       login_via_existing_session={"enabled": True}, url_preview_enabled=True,
                       url_preview_ip_range_blacklist=["0.0.0.0/0", "::/0"]) as running:
        yield running


def _values(client: Client, server: RunningServer) -> dict[str, str]:
    room_id = create_room(client, name="walked")
    event_id = send_message(client, room_id, "walked")
    return {
        "roomId": room_id, "roomIdOrAlias": room_id, "eventId": event_id, "userId": client.user_id or "",
        "deviceId": client.device_id or "", "serverName": server.server_name, "roomAlias": "#walked-none:test.local",
        "eventType": "m.room.message", "stateKey": "walked", "txnId": secrets.token_hex(8), "type": "org.example.walk",
        "tag": "u.walked", "mediaId": "walkedmedia", "fileName": "walked.txt", "filterId": "0", "kind": "override",
        "ruleId": ".m.rule.master", "version": "1", "sessionId": "walked", "receiptType": "m.read",
        "relType": "m.annotation", "protocol": "irc", "networkId": "walked", "idpId": "walked",
        "appserviceId": "walked", "keyName": "walked",
    }


def _fill(path: str, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: q(values[m.group(1)]), path)


def _call(client: Client, method: str, path: str) -> tuple[int, str | None]:
    body = {} if method in ("POST", "PUT") else None
    response = client.request(method, path, body, params={"limit": 1} if method == "GET" else None, timeout=60)
    return response.status, response.errcode


def test_every_operation_is_served_or_listed(walked: RunningServer) -> None:
    client = register_user(walked.base_url)
    values = _values(client, walked)
    unrecognized, served_anyway = [], []
    for method, path in _operations():
        # Logging out and deactivating would end this client's session: a fresh account each.
        caller = register_user(walked.base_url) if "logout" in path or "deactivate" in path else client
        values["txnId"] = secrets.token_hex(8)
        status, errcode = _call(caller, method, _fill(path, values))
        assert status < 500, (method, path, status, errcode)
        missing = errcode == "M_UNRECOGNIZED" and status in (404, 405)
        if missing and (method, path) not in NOT_SERVED:
            unrecognized.append((method, path, status))
        if not missing and (method, path) in NOT_SERVED:
            served_anyway.append((method, path))
    assert unrecognized == [], f"answered M_UNRECOGNIZED but not listed as not served: {unrecognized}"
    assert served_anyway == [], "listed as not served but answered: drop them from NOT_SERVED and the README"


def test_not_served_list_is_in_the_readme() -> None:
    readme = (Path(REPO_ROOT) / "README.md").read_text()
    operations = set(_operations())
    for method, path in NOT_SERVED:
        assert (method, path) in operations, f"{method} {path} is not a spec operation"
        assert f"`{method} {path}`" in readme, f"README.md does not list `{method} {path}`"
