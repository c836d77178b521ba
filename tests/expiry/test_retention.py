"""Retention (MSC1763 as Synapse implements it): a purge job deletes a room's messages past
its max_lifetime from every table, keeps the state and the latest event, leaves rooms
without a policy alone, and reports its runs to admins; bad policies are refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.expiry.conftest import ExpiryServer
from tests.expiry.test_self_destruct import members
from tests.support.accounts import admin_register
from tests.support.calls import wait_for
from tests.support.client import Client, random_localpart
from tests.support.expiry import get_event, receipt, rows_containing, send
from tests.support.rooms import V3, create_room, put_state, send_message

LIFETIME_MS = 3000
SERVER_CONFIG: dict[str, Any] = {"retention": {
    "enabled": True,
    "allowed_lifetime_min": "1s",
    "allowed_lifetime_max": "1d",
    "purge_jobs": [{"longest_max_lifetime": "1h", "interval": "1s"},
                   {"shortest_max_lifetime": "1h", "interval": "1d"}],
}}


def admin(server: ExpiryServer) -> Client:
    response = admin_register(server.server, random_localpart("admin"), admin=True)
    assert response.status == 200, response
    return Client(server.base_url, response.body["access_token"], response.body["user_id"])


def gone(client: Client, room_id: str, event_id: str) -> bool:
    return get_event(client, room_id, event_id).status == 404


def state_ids(client: Client, room_id: str) -> set[str]:
    response = client.get(f"{V3}/rooms/{room_id}/state")
    assert response.status == 200, response
    return {event["event_id"] for event in response.body}


def test_purge_keeps_state_and_the_latest_event(expiry_server: ExpiryServer) -> None:
    (alice, bob), room_id = members(expiry_server, 2)
    assert put_state(alice, room_id, "m.room.retention", {"max_lifetime": LIFETIME_MS}).status == 200
    assert put_state(alice, room_id, "m.room.topic", {"topic": "kept"}).status == 200
    state_before = state_ids(alice, room_id)
    first = send_message(alice, room_id, "first")
    reaction = send(bob, room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": first, "key": "+1"}},
                    "m.reaction").body["event_id"]
    second = send_message(bob, room_id, "second")
    receipt(alice, room_id, second)
    latest = send_message(alice, room_id, "latest")
    no_policy_room = create_room(alice)
    old_elsewhere = send_message(alice, no_policy_room, "no policy here")
    assert rows_containing(expiry_server.database, first)

    for event_id in (first, reaction, second):
        wait_for(lambda e=event_id: gone(bob, room_id, e), "the old event to be purged")
    assert get_event(bob, room_id, latest).status == 200
    assert state_ids(alice, room_id) == state_before
    chunk = bob.get(f"{V3}/rooms/{room_id}/messages", params={"dir": "b", "limit": "50"}).body["chunk"]
    ids = [event["event_id"] for event in chunk]
    assert latest in ids and not {first, reaction, second} & set(ids)
    # No table holds a purged event any more; only the kept event that cites it in prev_events.
    assert rows_containing(expiry_server.database, first) == []
    assert rows_containing(expiry_server.database, reaction) == []
    for table, row in rows_containing(expiry_server.database, second):
        assert table == "events" and latest in row
    # A room without a policy keeps everything.
    assert get_event(alice, no_policy_room, old_elsewhere).status == 200

    # Once it is no longer the latest, it goes too; the room still works.
    newest = send_message(alice, room_id, "newest")
    wait_for(lambda: gone(bob, room_id, latest), "the former latest event to be purged")
    assert get_event(bob, room_id, newest).status == 200
    assert send_message(bob, room_id, "still works")


def test_admins_see_progress_and_others_are_refused(expiry_server: ExpiryServer) -> None:
    boss = admin(expiry_server)
    (alice,), room_id = members(expiry_server, 1)
    assert put_state(alice, room_id, "m.room.retention", {"max_lifetime": LIFETIME_MS}).status == 200
    send_message(alice, room_id, "old")
    send_message(alice, room_id, "latest")

    def ran_and_deleted() -> Any:
        status = boss.get("/_synapse/admin/v1/retention/status").body
        job = next(j for j in status["purge_jobs"] if j["longest_max_lifetime"] == 3_600_000)
        return status if job["last_run"] and status_deleted(status) else None

    status = wait_for(ran_and_deleted, "a purge run that deleted something")
    assert status["enabled"] is True and status["allowed_lifetime_min"] == 1000
    assert {j["shortest_max_lifetime"] for j in status["purge_jobs"]} == {None, 3_600_000}
    job = next(j for j in status["purge_jobs"] if j["longest_max_lifetime"] == 3_600_000)
    assert job["next_run_ts"] is not None and job["interval"] == 1000
    assert job["last_run"]["status"] in ("finished", "running")
    updates = boss.get("/_synapse/admin/v1/background_updates/status")
    assert updates.status == 200 and updates.body["enabled"] is True
    assert isinstance(updates.body["current_updates"], dict)
    assert all(set(u) >= {"name", "total_item_count", "total_duration_ms", "average_items_per_ms"}
               for u in updates.body["current_updates"].values())
    jobs = boss.get("/_synapse/admin/v1/jobs").body["jobs"]
    assert any(j["kind"] == "retention_purge" and j["percent"] == 100.0 for j in jobs)
    log = (expiry_server.server.directory / "homeserver.log").read_text()
    assert "retention_purge" in log and "(100.0%)" in log

    for path in ("retention/status", "background_updates/status", "jobs"):
        refused = alice.get(f"/_synapse/admin/v1/{path}")
        assert (refused.status, refused.errcode) == (403, "M_FORBIDDEN")
        anonymous = Client(expiry_server.base_url).get(f"/_synapse/admin/v1/{path}")
        assert anonymous.status == 401


def status_deleted(status: dict[str, Any]) -> bool:
    return any(run.get("events_deleted", 0) > 0 for run in status["runs"])


@pytest.mark.parametrize(("content", "errcode"), [
    ({"max_lifetime": "1d"}, "M_BAD_JSON"),
    ({"max_lifetime": 1.5}, "M_BAD_JSON"),
    ({"max_lifetime": -1}, "M_BAD_JSON"),
    ({"min_lifetime": True}, "M_BAD_JSON"),
    ({"min_lifetime": 5000, "max_lifetime": 2000}, "M_BAD_JSON"),
    ({"max_lifetime": 500}, "M_INVALID_PARAM"),
    ({"max_lifetime": 2 * 86_400_000}, "M_INVALID_PARAM"),
])
def test_bad_policies_are_refused(expiry_server: ExpiryServer, content: dict[str, Any], errcode: str) -> None:
    (alice,), room_id = members(expiry_server, 1)
    response = put_state(alice, room_id, "m.room.retention", content)
    assert (response.status, response.errcode) == (400, errcode), response
    created = alice.post(f"{V3}/createRoom", {"initial_state": [
        {"type": "m.room.retention", "state_key": "", "content": content}]})
    assert (created.status, created.errcode) == (400, errcode), created


def test_a_policy_in_range_is_accepted(expiry_server: ExpiryServer) -> None:
    (alice,), room_id = members(expiry_server, 1)
    response = put_state(alice, room_id, "m.room.retention", {"min_lifetime": 1000, "max_lifetime": 86_400_000})
    assert response.status == 200, response
