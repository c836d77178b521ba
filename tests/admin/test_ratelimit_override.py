"""Per-user message rate-limit overrides (override_ratelimit): effect, persistence, removal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.accounts import custom_server
from tests.support.admin import ADMIN_V1, new_admin, refused_to_others
from tests.support.client import Client, q, register_user
from tests.support.databases import ENGINES
from tests.support.server import RunningServer

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module", params=ENGINES)
def limited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp(f"hs-override-{request.param}")
    with custom_server(directory, request.param, rc_message={"per_second": 0.001, "burst_count": 3}) as running:
        yield running


def sends(client: Client, room_id: str, count: int, prefix: str) -> list[int]:
    return [client.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/{prefix}{i}",
                       {"msgtype": "m.text", "body": "x"}).status for i in range(count)]


def test_override_lifts_and_restores_the_limit(limited: RunningServer) -> None:
    admin = new_admin(limited)
    user = register_user(limited.base_url)
    other = register_user(limited.base_url)
    room_id = user.post(f"{V3}/createRoom", {}).body["room_id"]  # counts as one message
    other_room = other.post(f"{V3}/createRoom", {}).body["room_id"]
    assert sends(user, room_id, 3, "a") == [200, 200, 429]
    path = f"{ADMIN_V1}/users/{q(user.user_id)}/override_ratelimit"
    assert admin.get(path).body == {}
    set_off = admin.post(path, {"messages_per_second": 0, "burst_count": 0})
    assert set_off.status == 200 and set_off.body == {"messages_per_second": 0, "burst_count": 0}
    assert sends(user, room_id, 5, "b") == [200] * 5
    assert sends(other, other_room, 3, "c") == [200, 200, 429]  # others keep rc_message

    limited.restart()
    assert admin.get(path).body == {"messages_per_second": 0, "burst_count": 0}
    assert sends(user, room_id, 5, "d") == [200] * 5
    assert admin.post(path, {"messages_per_second": 1000, "burst_count": 10}).status == 200
    assert sends(user, room_id, 5, "e") == [200] * 5
    assert admin.delete(path).status == 200 and admin.get(path).body == {}
    statuses = sends(user, room_id, 5, "f")
    assert 429 in statuses


def test_bad_overrides(limited: RunningServer) -> None:
    admin = new_admin(limited)
    user = register_user(limited.base_url)
    path = f"{ADMIN_V1}/users/{q(user.user_id)}/override_ratelimit"
    negative = admin.post(path, {"messages_per_second": -1})
    assert (negative.status, negative.errcode) == (400, "M_INVALID_PARAM")
    wrong = admin.post(path, {"burst_count": "10"})
    assert (wrong.status, wrong.errcode) == (400, "M_BAD_JSON")
    unknown = admin.get(f"{ADMIN_V1}/users/{q('@ghost:' + limited.server_name)}/override_ratelimit")
    assert (unknown.status, unknown.errcode) == (404, "M_NOT_FOUND")
    for method in ("GET", "POST", "DELETE"):
        refused_to_others(limited, method, path, {} if method == "POST" else None)
