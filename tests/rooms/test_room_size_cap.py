"""config.max_group_size caps a room's JOINED members.

A join past the cap is 403 M_FORBIDDEN with a message naming the limit. We chose
M_FORBIDDEN over M_RESOURCE_LIMIT_EXCEEDED: the latter tells clients a server-wide
limit was hit and to contact the admin (its spec shape needs admin_contact), while
this is a property of one room that clients already present as "you can't join".
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.client import Client, q
from tests.support.databases import ENGINES
from tests.support.rooms import V3, create_room, invite, join, joined_members, leave, new_user
from tests.support.server import RunningServer, custom_server

CAP = 5


def _server(tmp_path_factory: pytest.TempPathFactory, engine: str, cap: int) -> Iterator[RunningServer]:
    with custom_server(tmp_path_factory.mktemp(f"cap-{engine}"), engine,
                       max_group_size=cap) as running:
        yield running


@pytest.fixture(scope="module", params=ENGINES)
def small_server(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from _server(tmp_path_factory, request.param, CAP)


def test_join_past_the_cap_is_refused(small_server: RunningServer) -> None:
    owner = new_user(small_server.base_url)
    room_id = create_room(owner, preset="public_chat")
    members = [new_user(small_server.base_url) for _ in range(CAP)]
    for member in members[: CAP - 1]:
        join(member, room_id)
    assert len(joined_members(owner, room_id)) == CAP
    refused = join(members[-1], room_id, expect=403)
    assert refused.errcode == "M_FORBIDDEN"
    assert str(CAP) in refused.body["error"]
    assert members[-1].user_id not in joined_members(owner, room_id)

    # Invites are not joins: they do not count, but accepting one past the cap fails.
    invite(owner, room_id, members[-1].user_id)
    join(members[-1], room_id, expect=403)

    # Rejoining when already joined is not a new join; leaving frees a place.
    join(members[0], room_id)
    leave(members[0], room_id)
    join(members[-1], room_id)
    assert len(joined_members(owner, room_id)) == CAP


def test_concurrent_joins_never_exceed_the_cap(small_server: RunningServer) -> None:
    owner = new_user(small_server.base_url)
    room_id = create_room(owner, preset="public_chat")
    hopefuls = [new_user(small_server.base_url) for _ in range(3 * CAP)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda c: c.post(f"{V3}/join/{q(room_id)}", {}).status, hopefuls))
    assert statuses.count(200) == CAP - 1
    assert set(statuses) == {200, 403}
    assert len(joined_members(owner, room_id)) == CAP


@pytest.fixture(scope="module")
def default_cap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from _server(tmp_path_factory, "psycopg2", 1500)


@pytest.mark.slow
def test_the_1501st_join_into_a_room_of_1500(default_cap_server: RunningServer) -> None:
    """The real default cap, on PostgreSQL; users registered without passwords (no bcrypt)."""
    base_url = default_cap_server.base_url
    owner = new_user(base_url)
    room_id = create_room(owner, preset="public_chat")

    def join_one(_: int) -> Client:
        member = new_user(base_url)
        join(member, room_id)
        return member

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(join_one, range(1499)))
    assert len(joined_members(owner, room_id)) == 1500
    last = new_user(base_url)
    refused = join(last, room_id, expect=403)
    assert refused.errcode == "M_FORBIDDEN"
    assert "1500" in refused.body["error"]
