"""The pure filter rules: type globs, allow/deny lists, event_fields, validation."""

from __future__ import annotations

import pytest

from homeserver.errors import MatrixError
from homeserver.stream_token import StreamToken
from homeserver.sync.filtering import EventFilter, SyncFilter, select_fields, validate_filter


def test_type_globs_and_deny_lists() -> None:
    rule = EventFilter.from_json({"types": ["m.room.*", "org.example.exact"], "not_types": ["m.room.member"]})
    assert rule.allows_type("m.room.message")
    assert rule.allows_type("org.example.exact")
    assert not rule.allows_type("org.example.exactly")
    assert not rule.allows_type("m.room.member")
    assert not rule.allows_type("m.roomy")
    assert EventFilter.from_json({"types": ["m.*.x"]}).allows_type("m.a.b.x")


def test_senders_rooms_and_urls() -> None:
    rule = EventFilter.from_json({"not_senders": ["@spam:x"], "rooms": ["!a:x"], "contains_url": True})
    with_url = {"type": "m.room.message", "sender": "@a:x", "room_id": "!a:x", "content": {"url": "mxc://x/y"}}
    assert rule.allows(with_url)
    assert not rule.allows({**with_url, "sender": "@spam:x"})
    assert not rule.allows({**with_url, "room_id": "!b:x"})
    assert not rule.allows({**with_url, "content": {}})


def test_limits_are_capped_and_defaulted() -> None:
    parsed = SyncFilter.from_json({"room": {"timeline": {"limit": 10**9}}})
    assert parsed.timeline.limit == 1000
    assert SyncFilter.from_json({}).timeline.limit == 10
    assert SyncFilter.from_json({"room": {"timeline": {"limit": 0}}}).timeline.blocks_everything


def test_event_fields_select_nested_paths() -> None:
    event = {"type": "t", "content": {"body": "b", "msgtype": "m"}, "a.b": 1}
    assert select_fields(event, ["content.body", "a\\.b"]) == {"content": {"body": "b"}, "a.b": 1}
    assert select_fields(event, None) is event
    assert select_fields(event, ["missing.path"]) == {}


@pytest.mark.parametrize("body", [[], {"room": []}, {"presence": {"limit": "x"}},
                                  {"event_fields": "type"}, {"room": {"rooms": [1]}}])
def test_validation_rejects_bad_shapes(body: object) -> None:
    with pytest.raises(MatrixError):
        validate_filter(body)


def test_stream_token_round_trip_and_rejects() -> None:
    token = StreamToken({"events": 5, "typing": 0, "to_device": 9})
    assert StreamToken.parse(token.serialise()) == token
    assert token.covers(StreamToken({"events": 5}))
    assert not token.covers(StreamToken({"events": 6}))
    for bad in ("", "events", "events.-1", "ev3nts.1", "events.1~", "events.x"):
        with pytest.raises(ValueError):
            StreamToken.parse(bad)
