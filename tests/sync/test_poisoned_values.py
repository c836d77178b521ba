"""One user cannot break another's /sync or WebSocket stream with a value that cannot be encoded.

Before lone surrogates were refused at the edge, a to-device message holding one was
stored, and every later /sync of the recipient hung (the response could not be
encoded, and the request was never finished), across restarts.  Now the attempt is
refused, and a bad value already in the database is left out of sync frames with a
log line, never holding back what is queued behind it.
"""

from __future__ import annotations

from typing import Any

from tests.support.client import Client, q, register_user
from tests.support.e2ee import database_write
from tests.support.server import RunningServer
from tests.support.sync import StreamClient, sync

V3 = "/_matrix/client/v3"
# Well under the default client timeout: a hang fails the test instead of stalling it.
PROMPT_S = 20
BAD_JSON_TEXT = '{"v": "\\ud800"}'


def to_device(sender: Client, victim: Client, content: dict[str, Any], txn_id: str) -> None:
    body = {"messages": {victim.user_id: {victim.device_id: content}}}
    response = sender.put(f"{V3}/sendToDevice/org.example.test/{txn_id}", body)
    assert response.status == 200, response


def delivered(body: dict[str, Any]) -> list[Any]:
    return [event["content"] for event in body.get("to_device", {}).get("events", [])]


def global_types(body: dict[str, Any]) -> set[str]:
    return {event["type"] for event in body.get("account_data", {}).get("events", [])}


def test_the_poisoning_attempt_is_refused_and_the_victims_sync_answers(server: RunningServer) -> None:
    mallory = register_user(server.base_url)
    victim = register_user(server.base_url)
    raw = b'{"messages": {"' + str(victim.user_id).encode() + b'": {"*": {"v": "\\ud800"}}}}'
    response = mallory.put(f"{V3}/sendToDevice/m.test/poison", raw=raw)
    assert (response.status, response.errcode) == (400, "M_BAD_JSON")
    to_device(mallory, victim, {"after": "the attempt"}, "fine")
    response = victim.get(f"{V3}/sync", params={"timeout": 0}, timeout=PROMPT_S)
    assert response.status == 200, response
    assert delivered(response.body) == [{"after": "the attempt"}]


def test_a_bad_value_stored_earlier_does_not_block_what_is_behind_it(server: RunningServer) -> None:
    mallory = register_user(server.base_url)
    victim = register_user(server.base_url)
    to_device(mallory, victim, {"n": 1}, "first")
    to_device(mallory, victim, {"n": 2}, "second")
    for data_type, content in (("org.example.bad", {"x": 1}), ("org.example.good", {"x": 2})):
        path = f"{V3}/user/{q(str(victim.user_id))}/account_data/{data_type}"
        assert victim.put(path, content).status == 200
    # As an older server stored them: JSON text whose string is a lone surrogate.
    assert database_write(server, "UPDATE device_inbox SET content_json = ? WHERE user_id = ? AND content_json = ?",
                          BAD_JSON_TEXT, victim.user_id, '{"n": 1}') == 1
    assert database_write(server, "UPDATE account_data SET content = ? WHERE user_id = ? AND data_type = ?",
                          BAD_JSON_TEXT, victim.user_id, "org.example.bad") == 1

    # The WebSocket stream's first frame carries what is behind the bad values.
    stream = StreamClient.connect(victim, timeout=PROMPT_S)
    try:
        frame = stream.next_frame(ack=False)
    finally:
        stream.close()
    assert delivered(frame) == [{"n": 2}]
    assert "org.example.good" in global_types(frame) and "org.example.bad" not in global_types(frame)

    # So does /sync, again and again, and the next sync goes on from there.
    for _ in range(2):
        response = victim.get(f"{V3}/sync", params={"timeout": 0}, timeout=PROMPT_S)
        assert response.status == 200, response
        assert delivered(response.body) == [{"n": 2}]
        assert "org.example.good" in global_types(response.body)
        assert "org.example.bad" not in global_types(response.body)
    to_device(mallory, victim, {"n": 3}, "third")
    later = sync(victim, response.body["next_batch"])
    assert delivered(later) == [{"n": 3}]
    log = (server.directory / "homeserver.log").read_text()
    assert f"Left out of a sync for {victim.user_id}" in log
    assert f"Left out of a WebSocket message to {victim.user_id}" in log

    # Elsewhere a response that cannot be written ends in a 500, never a request left hanging.
    bad = victim.get(f"{V3}/user/{q(str(victim.user_id))}/account_data/org.example.bad", timeout=PROMPT_S)
    assert (bad.status, bad.errcode) == (500, "M_UNKNOWN")
    assert "Writing the response to GET /_matrix/client/v3/user/" in \
        (server.directory / "homeserver.log").read_text()
