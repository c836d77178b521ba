"""Malformed self-destruct keys are refused at send time (400), never a 500, in plain and
encrypted content and in delayed sends; state events ignore them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.expiry.conftest import ExpiryServer
from tests.expiry.test_self_destruct import members, now_ms
from tests.support.calls import delayed_send
from tests.support.expiry import get_event, send
from tests.support.rooms import put_state

BAD: list[tuple[str, Any, str]] = [
    ("org.matrix.self_destruct_after", "in the past", "M_INVALID_PARAM"),
    ("org.matrix.self_destruct_after", "abc", "M_BAD_JSON"),
    ("org.matrix.self_destruct_after", 1.5e12, "M_BAD_JSON"),
    ("org.matrix.self_destruct_after", True, "M_BAD_JSON"),
    ("org.matrix.self_destruct_after", None, "M_BAD_JSON"),
    ("org.matrix.self_destruct_after", -5, "M_INVALID_PARAM"),
    ("org.matrix.self_destruct", -1, "M_INVALID_PARAM"),
    ("org.matrix.self_destruct", "1000", "M_BAD_JSON"),
    ("org.matrix.self_destruct", 2.5, "M_BAD_JSON"),
    ("org.matrix.self_destruct", [1000], "M_BAD_JSON"),
]


def value_of(value: Any) -> Any:
    return now_ms() - 1000 if value == "in the past" else value


@pytest.mark.parametrize(("key", "value", "errcode"), BAD)
def test_bad_values_are_refused(expiry_server: ExpiryServer, key: str, value: Any, errcode: str) -> None:
    (alice,), room_id = members(expiry_server, 1)
    plain = send(alice, room_id, {"msgtype": "m.text", "body": "x", key: value_of(value)})
    assert (plain.status, plain.errcode) == (400, errcode), plain
    encrypted = send(alice, room_id, {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "c",
                                      key: value_of(value)}, "m.room.encrypted")
    assert (encrypted.status, encrypted.errcode) == (400, errcode), encrypted
    delayed = delayed_send(alice, room_id, {"msgtype": "m.text", "body": "x", key: value_of(value)}, 1000)
    assert (delayed.status, delayed.errcode) == (400, errcode), delayed


def test_good_values_are_accepted(expiry_server: ExpiryServer) -> None:
    (alice,), room_id = members(expiry_server, 1)
    for content in ({"org.matrix.self_destruct_after": now_ms() + 3_600_000},
                    {"org.matrix.self_destruct": 3_600_000},
                    {"org.matrix.self_destruct": 3_600_000, "org.matrix.self_destruct_after": now_ms() + 3_600_000}):
        response = send(alice, room_id, {"msgtype": "m.text", "body": "fine", **content})
        assert response.status == 200, response


def test_state_events_ignore_the_keys(expiry_server: ExpiryServer) -> None:
    (alice,), room_id = members(expiry_server, 1)
    response = put_state(alice, room_id, "m.room.topic", {"topic": "kept", "org.matrix.self_destruct_after": 1})
    assert response.status == 200, response
    assert get_event(alice, room_id, response.body["event_id"]).body["content"]["topic"] == "kept"
