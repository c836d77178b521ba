"""Simplified sliding sync (MSC4186) driven by a real client library: matrix-js-sdk's ``SlidingSync``.

matrix-js-sdk 37.5.0 (pinned in tests/js/package-lock.json) speaks MSC4186: its
``MatrixClient.slidingSync`` posts to ``/_matrix/client/unstable/org.matrix.simplified_msc3575/sync``
with ``pos`` and ``timeout`` as query parameters, sends every list in full on each request, and reads
``lists[key].count`` and ``rooms`` (no ``ops``). tests/js/sliding_sync.mjs keeps a list of the 20 most
recent of 100 rooms and sends messages while it syncs; this test checks what the SDK was handed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.nodejs import declared_version, run_script
from tests.support.server import RunningServer

ROOMS = 100
WINDOW = 20
SCRIPT_TIMEOUT_S = 150
SIMPLIFIED_SYNC = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"


def run_sliding_sync(server: RunningServer, tmp_path: Path) -> dict[str, Any]:
    status, result, output = run_script("sliding_sync.mjs", server.base_url, "--rooms", str(ROOMS),
                                        "--timeout", str(SCRIPT_TIMEOUT_S), timeout_s=SCRIPT_TIMEOUT_S + 30,
                                        log_path=tmp_path / "sliding_sync.log")
    detail = f"script exited {status}, result {result}\n{output[-6000:]}\n--- server\n{server.output()}"
    assert status == 0 and result is not None and result["ok"] is True, detail
    return result


def test_js_sdk_sliding_sync_keeps_the_most_recent_rooms(server: RunningServer, tmp_path: Path) -> None:
    result = run_sliding_sync(server, tmp_path)
    assert result["matrix_js_sdk"] == declared_version("matrix-js-sdk")
    assert result["sync_paths"] == [SIMPLIFIED_SYNC]
    assert result["http_errors"] == []
    rooms: list[str] = result["rooms"]
    names = {room_id: f"room {i}" for i, room_id in enumerate(rooms)}
    updates: list[dict[str, Any]] = result["updates"]

    # The first response: the list's count is every room, and it carries the 20 newest, each new to
    # the connection, with its name (as required state and as the computed name) and one event.
    first = result["responses"][0]
    assert first["count"] == ROOMS
    assert set(first["rooms"]) == set(rooms[-WINDOW:])
    initial = updates[:WINDOW]
    for update in initial:
        assert update["initial"] is True, update
        assert update["name"] == names[update["room_id"]]
        assert update["required_state_names"] == [names[update["room_id"]]]
        assert len(update["bodies"]) == 1 and isinstance(update["bump_stamp"], int)
    stamps = {u["room_id"]: u["bump_stamp"] for u in initial}
    assert sorted(stamps, key=stamps.__getitem__) == rooms[-WINDOW:]

    # The oldest room, once it has news, enters the list as a room new to the connection.
    oldest = [u for u in updates if u["room_id"] == rooms[0]]
    assert oldest and oldest[0]["initial"] is True and oldest[0]["bodies"] == ["the oldest room speaks"]
    assert oldest[0]["bump_stamp"] > max(stamps.values())
    # A room already in the list gets only what is new.
    listed = rooms[ROOMS - WINDOW // 2]
    news = [u for u in updates[WINDOW:] if u["room_id"] == listed]
    assert news and news[-1]["initial"] is False and news[-1]["bodies"] == ["news in a listed room"]
    assert all(response["count"] == ROOMS for response in result["responses"])
