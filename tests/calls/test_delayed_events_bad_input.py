"""Delayed events: every malformed request is a Matrix error, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.calls.conftest import MAX_DELAY_MS
from tests.support.calls import (
    DELAY,
    MSC4140,
    delay_id_of,
    delayed_send,
    delayed_state,
    manage,
    scheduled,
)
from tests.support.client import Client, q
from tests.support.databases import ENGINES
from tests.support.rooms import V3, create_room, new_user
from tests.support.server import RunningServer, custom_server


@pytest.mark.parametrize("delay", ["-1", "abc", "1.5", "", " 5", "+5", "1_000", "1e3", "٣", "9" * 17])
def test_a_malformed_delay_is_invalid_param(delayed_server: RunningServer, delay: str) -> None:
    user = new_user(delayed_server.base_url)
    room_id = create_room(user)
    for response in (delayed_send(user, room_id, {"body": "x"}, delay),
                     delayed_state(user, room_id, "m.room.topic", "", {"topic": "x"}, delay)):
        assert response.status == 400, response
        assert response.errcode == "M_INVALID_PARAM"
    assert scheduled(user) == {}


def test_a_delay_over_the_maximum_is_refused_with_the_maximum(delayed_server: RunningServer) -> None:
    user = new_user(delayed_server.base_url)
    room_id = create_room(user)
    assert delayed_send(user, room_id, {"body": "x"}, MAX_DELAY_MS).status == 200
    response = delayed_send(user, room_id, {"body": "x"}, MAX_DELAY_MS + 1)
    assert response.status == 400 and response.errcode == "M_INVALID_PARAM"
    assert response.body["org.matrix.msc4140.errcode"] == "M_MAX_DELAY_EXCEEDED"
    assert response.body["org.matrix.msc4140.max_delay"] == MAX_DELAY_MS


def test_what_could_never_be_sent_is_refused_when_scheduled(delayed_server: RunningServer) -> None:
    user = new_user(delayed_server.base_url)
    room_id = create_room(user)
    # Floats are not canonical JSON in room version 12.
    assert delayed_send(user, room_id, {"body": "x", "n": 1.5}, 1000).errcode == "M_BAD_JSON"
    assert delayed_send(user, room_id, {"n": 2**60}, 1000).errcode == "M_BAD_JSON"
    too_big = delayed_send(user, room_id, {"body": "x" * 70_000}, 1000)
    assert too_big.status == 413 and too_big.errcode == "M_TOO_LARGE"
    assert delayed_state(user, room_id, "m.room.power_levels", "", {"users": "nope"}, 1000).errcode == "M_BAD_JSON"
    assert delayed_state(user, room_id, "m.room.member", "not-a-user", {"membership": "join"},
                         1000).status == 400
    assert delayed_send(user, "!unknown:test.local", {"body": "x"}, 1000).errcode == "M_NOT_FOUND"
    assert delayed_send(user, "not-a-room", {"body": "x"}, 1000).errcode == "M_INVALID_PARAM"
    response = user.put(f"{V3}/rooms/{q(room_id)}/send/m.room.message/t", raw=b"{not json",
                        params={DELAY: "1000"})
    assert response.status == 400 and response.errcode == "M_NOT_JSON"
    assert scheduled(user) == {}


def test_management_needs_a_known_delay_id_and_a_good_action(delayed_server: RunningServer) -> None:
    user = new_user(delayed_server.base_url)
    room_id = create_room(user)
    delay_id = delay_id_of(delayed_send(user, room_id, {"body": "x"}, MAX_DELAY_MS))
    path = f"{MSC4140}/delayed_events/{q(delay_id)}"
    assert user.post(path).errcode == "M_NOT_JSON"
    assert user.post(path, raw=b"[1]").errcode == "M_NOT_JSON"
    assert user.post(path, {}).errcode == "M_MISSING_PARAM"
    for action in ("explode", 1, None, ["send"], {"a": "send"}, "SEND"):
        response = user.post(path, {"action": action})
        assert response.status == 400 and response.errcode == "M_INVALID_PARAM", response
    assert user.post(f"{path}/explode").errcode == "M_UNRECOGNIZED"
    assert user.get(f"{path}/cancel").status in (404, 405)
    for unknown in ("vde_nope", "x" * 300, "%00"):
        assert user.post(f"{MSC4140}/delayed_events/{unknown}/cancel").errcode in ("M_NOT_FOUND", "M_INVALID_PARAM")
        assert user.post(f"{MSC4140}/delayed_events/{unknown}", {"action": "restart"}).status in (400, 404)
    # A token is optional, but a bad one is still refused.
    bad = Client(delayed_server.base_url, access_token="not-a-token")
    assert manage(bad, delay_id, "restart").errcode == "M_UNKNOWN_TOKEN"
    assert delay_id in scheduled(user)


def test_listing_needs_a_token_and_ignores_unknown_parameters(delayed_server: RunningServer) -> None:
    anonymous = Client(delayed_server.base_url)
    assert anonymous.get(f"{MSC4140}/delayed_events").errcode == "M_MISSING_TOKEN"
    user = new_user(delayed_server.base_url)
    response = user.get(f"{MSC4140}/delayed_events", params={"from": "garbage", "status": "x", "delay_id": "y"})
    assert response.status == 200 and response.body == {"delayed_events": []}


def test_listing_shows_only_your_own(delayed_server: RunningServer) -> None:
    alice, bob = new_user(delayed_server.base_url), new_user(delayed_server.base_url)
    room_id = create_room(alice)
    delay_id = delay_id_of(delayed_send(alice, room_id, {"body": "x"}, MAX_DELAY_MS))
    assert delay_id in scheduled(alice) and scheduled(bob) == {}


@pytest.fixture(scope="module", params=ENGINES)
def small_limit_server(request: pytest.FixtureRequest,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with custom_server(tmp_path_factory.mktemp(f"delay-limit-{request.param}"),
                       request.param, max_event_delay_duration="1d",
                       max_delayed_events_per_user=2) as running:
        yield running


def test_the_per_user_limit_is_429_until_one_goes(small_limit_server: RunningServer) -> None:
    user = new_user(small_limit_server.base_url)
    room_id = create_room(user)
    first = delay_id_of(delayed_send(user, room_id, {"body": "1"}, 60_000))
    delay_id_of(delayed_send(user, room_id, {"body": "2"}, 120_000))
    refused = delayed_send(user, room_id, {"body": "3"}, 1000)
    assert refused.status == 429 and refused.errcode == "M_LIMIT_EXCEEDED"
    assert 0 < refused.body["retry_after_ms"] <= 60_000
    assert manage(user, first, "cancel").status == 200
    delay_id_of(delayed_send(user, room_id, {"body": "3"}, 1000))
    # Another user has a quota of their own.
    other = new_user(small_limit_server.base_url)
    delay_id_of(delayed_send(other, create_room(other), {"body": "mine"}, 1000))


def test_without_max_event_delay_duration_delayed_events_are_off(server: RunningServer) -> None:
    user = new_user(server.base_url)
    room_id = create_room(user)
    assert "org.matrix.msc4140" not in user.get("/_matrix/client/versions").body["unstable_features"]
    caps = user.get(f"{V3}/capabilities").body["capabilities"]["org.matrix.msc4140.delayed_events"]
    assert caps["max_delay_ms"] == 0
    for response in (delayed_send(user, room_id, {"body": "x"}, 1000),
                     delayed_state(user, room_id, "m.room.topic", "", {"topic": "x"}, 1000)):
        assert response.status == 403 and response.errcode == "M_FORBIDDEN"
    # Malformed is still malformed.
    assert delayed_send(user, room_id, {"body": "x"}, "soon").errcode == "M_INVALID_PARAM"
    assert scheduled(user) == {}
