"""Self-destruct timers survive the server: stopped before the time and started after it,
the server expunges at start-up; a read-triggered event keeps waiting across a restart; and
on SQLite the expunged content is not left in the database files either."""

from __future__ import annotations

import secrets
import time

from tests.expiry.conftest import ExpiryServer
from tests.expiry.test_self_destruct import is_expunged, members, now_ms, sent
from tests.support.calls import wait_for
from tests.support.expiry import receipt, rows_containing, send, sqlite_files_contain


def test_overdue_timers_expunge_at_start_up(expiry_server: ExpiryServer) -> None:
    (alice, bob), room_id = members(expiry_server, 2)
    absolute, after_read, unread = (f"restart-{secrets.token_hex(6)}" for _ in range(3))
    due = now_ms() + 2500
    first = sent(send(alice, room_id, {"msgtype": "m.text", "body": absolute, "org.matrix.self_destruct_after": due}))
    second = sent(send(alice, room_id, {"msgtype": "m.text", "body": after_read, "org.matrix.self_destruct": 1000}))
    third = sent(send(alice, room_id, {"msgtype": "m.text", "body": unread, "org.matrix.self_destruct": 100}))
    receipt(bob, room_id, second)  # bob has read the first two, not the third
    read_at = now_ms()
    expiry_server.server.stop()
    time.sleep(max(0.0, (max(due, read_at + 1000) + 500 - now_ms()) / 1000))
    expiry_server.server.start()

    wait_for(lambda: is_expunged(bob, room_id, first), "the absolute timer to fire at start-up")
    wait_for(lambda: is_expunged(bob, room_id, second), "the read timer to fire at start-up")
    assert rows_containing(expiry_server.database, absolute) == []
    assert rows_containing(expiry_server.database, after_read) == []
    # Unread is still waiting (and its wait survived the restart).
    assert not is_expunged(bob, room_id, third)
    receipt(bob, room_id, third)
    wait_for(lambda: is_expunged(bob, room_id, third), "the unread event once read after the restart")
    assert rows_containing(expiry_server.database, unread) == []

    if expiry_server.database["name"] == "sqlite3":
        expiry_server.server.stop()  # a clean stop checkpoints the WAL into the file
        try:
            for secret in (absolute, after_read, unread):
                assert sqlite_files_contain(expiry_server.database, secret) == []
        finally:
            expiry_server.server.start()
