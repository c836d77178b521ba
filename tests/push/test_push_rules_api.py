"""The push-rules API over HTTP: defaults, every endpoint, placement, bad input, sync account data."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import Client, q, register_user
from tests.support.server import RunningServer
from tests.support.sync import sync

V3 = "/_matrix/client/v3"
R0 = "/_matrix/client/r0"

OVERRIDE_IDS = [
    ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
    ".m.rule.is_user_mention", ".m.rule.contains_display_name", ".m.rule.is_room_mention",
    ".m.rule.roomnotif", ".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl",
    ".m.rule.suppress_edits",
]
CONTENT_IDS = [".m.rule.contains_user_name"]
UNDERRIDE_IDS = [
    ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message",
    ".m.rule.encrypted",
]


def ids(rules: list[dict[str, Any]]) -> list[str]:
    return [rule["rule_id"] for rule in rules]


def rule_path(kind: str, rule_id: str, suffix: str = "") -> str:
    return f"{V3}/pushrules/global/{kind}/{q(rule_id)}{suffix}"


def put_rule(client: Client, kind: str, rule_id: str, body: dict[str, Any], **params: str) -> None:
    response = client.put(rule_path(kind, rule_id), body, params=params or None)
    assert response.status == 200, response


@pytest.mark.parametrize("path", [f"{V3}/pushrules/", f"{V3}/pushrules", f"{R0}/pushrules/",
                                  f"{R0}/pushrules"])
def test_default_rule_set_has_the_spec_ids_in_order(server: RunningServer, path: str) -> None:
    alice = register_user(server.base_url)
    response = alice.get(path)
    assert response.status == 200, response
    rules = response.body["global"]
    assert ids(rules["override"]) == OVERRIDE_IDS
    assert ids(rules["content"]) == CONTENT_IDS
    assert ids(rules["underride"]) == UNDERRIDE_IDS
    assert rules["room"] == [] and rules["sender"] == []
    everything = rules["override"] + rules["content"] + rules["underride"]
    assert all(rule["default"] is True for rule in everything)
    assert [rule["enabled"] for rule in rules["override"]][0] is False  # master is off
    assert all(rule["enabled"] for rule in everything[1:])
    localpart = alice.user_id[1:].split(":")[0]
    assert rules["content"][0]["pattern"] == localpart
    mention = rules["override"][OVERRIDE_IDS.index(".m.rule.is_user_mention")]
    assert mention["conditions"] == [{"kind": "event_property_contains",
                                      "key": "content.m\\.mentions.user_ids", "value": alice.user_id}]
    invite = rules["override"][OVERRIDE_IDS.index(".m.rule.invite_for_me")]
    assert {"kind": "event_match", "key": "state_key", "pattern": alice.user_id} in invite["conditions"]
    room_mention = rules["override"][OVERRIDE_IDS.index(".m.rule.is_room_mention")]
    assert {"kind": "sender_notification_permission", "key": "room"} in room_mention["conditions"]
    one_to_one = rules["underride"][UNDERRIDE_IDS.index(".m.rule.room_one_to_one")]
    assert {"kind": "room_member_count", "is": "2"} in one_to_one["conditions"]


@pytest.mark.parametrize("path", ["/pushrules/global/", "/pushrules/global"])
def test_global_scope(server: RunningServer, path: str) -> None:
    alice = register_user(server.base_url)
    response = alice.get(V3 + path)
    assert response.status == 200, response
    assert ids(response.body["override"]) == OVERRIDE_IDS


def test_get_one_rule_and_its_actions_and_enabled(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = alice.get(rule_path("underride", ".m.rule.message"))
    assert response.status == 200, response
    assert response.body["rule_id"] == ".m.rule.message" and response.body["actions"] == ["notify"]
    assert alice.get(rule_path("underride", ".m.rule.message", "/actions")).body == {"actions": ["notify"]}
    assert alice.get(rule_path("override", ".m.rule.master", "/enabled")).body == {"enabled": False}


def test_a_new_rule_is_the_most_important_user_rule(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    put_rule(alice, "override", "first", {"actions": ["notify"], "conditions": [
        {"kind": "event_match", "key": "content.body", "pattern": "cake*"}]})
    put_rule(alice, "override", "second", {"actions": []})
    overrides = ids(alice.get(f"{V3}/pushrules/").body["global"]["override"])
    # .m.rule.master stays first; user rules come before the other defaults.
    assert overrides == [".m.rule.master", "second", "first", *OVERRIDE_IDS[1:]]
    rule = alice.get(rule_path("override", "first")).body
    assert rule == {"rule_id": "first", "default": False, "enabled": True, "actions": ["notify"],
                    "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "cake*"}]}


def test_before_and_after_placement(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    for name in ("a", "b", "c"):
        put_rule(alice, "content", name, {"actions": ["notify"], "pattern": name})
    # Now c, b, a (newest first).
    put_rule(alice, "content", "d", {"actions": ["notify"], "pattern": "d"}, after="c")
    put_rule(alice, "content", "e", {"actions": ["notify"], "pattern": "e"}, before="a")
    content = ids(alice.get(f"{V3}/pushrules/global/content/").body)
    assert content == ["c", "d", "b", "e", "a", ".m.rule.contains_user_name"]
    # Moving an existing rule, and both given: before wins.
    put_rule(alice, "content", "a", {"actions": ["notify"], "pattern": "a"}, before="c", after="b")
    content = ids(alice.get(f"{V3}/pushrules/global/content").body)
    assert content == ["a", "c", "d", "b", "e", ".m.rule.contains_user_name"]
    # Relative to a server-default rule, or to an unknown one: 400.
    for anchor in (".m.rule.contains_user_name", "nope"):
        response = alice.put(rule_path("content", "f"), {"actions": [], "pattern": "f"},
                             params={"before": anchor})
        assert response.status == 400, response
    assert "f" not in ids(alice.get(f"{V3}/pushrules/global/content").body)


def test_updating_a_rule_keeps_its_place_and_enabled_state(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    put_rule(alice, "room", "!one:example.org", {"actions": ["notify"]})
    put_rule(alice, "room", "!two:example.org", {"actions": ["notify"]})
    response = alice.put(rule_path("room", "!one:example.org", "/enabled"), {"enabled": False})
    assert response.status == 200, response
    put_rule(alice, "room", "!one:example.org", {"actions": []})
    rules = alice.get(f"{V3}/pushrules/global/room/").body
    assert ids(rules) == ["!two:example.org", "!one:example.org"]
    assert rules[1] == {"rule_id": "!one:example.org", "default": False, "enabled": False, "actions": []}


def test_delete_a_user_rule(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    put_rule(alice, "sender", "@spam:example.org", {"actions": []})
    assert alice.delete(rule_path("sender", "@spam:example.org")).status == 200
    response = alice.get(rule_path("sender", "@spam:example.org"))
    assert response.status == 404 and response.errcode == "M_NOT_FOUND"
    response = alice.delete(rule_path("sender", "@spam:example.org"))
    assert response.status == 404 and response.errcode == "M_NOT_FOUND"


def test_server_default_rules_cannot_be_deleted_or_replaced(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = alice.delete(rule_path("override", ".m.rule.master"))
    assert response.status == 400, response
    response = alice.put(rule_path("override", ".m.rule.master"), {"actions": ["notify"]})
    assert response.status == 400, response
    assert ids(alice.get(f"{V3}/pushrules/").body["global"]["override"]) == OVERRIDE_IDS


def test_change_actions_and_enabled_of_a_default_rule(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = alice.put(rule_path("override", ".m.rule.master", "/enabled"), {"enabled": True})
    assert response.status == 200, response
    actions = ["notify", {"set_tweak": "sound", "value": "ping"}]
    response = alice.put(rule_path("underride", ".m.rule.message", "/actions"), {"actions": actions})
    assert response.status == 200, response
    rules = alice.get(f"{V3}/pushrules/").body["global"]
    assert rules["override"][0]["enabled"] is True and rules["override"][0]["default"] is True
    assert rules["underride"][UNDERRIDE_IDS.index(".m.rule.message")]["actions"] == actions
    assert ids(rules["override"]) == OVERRIDE_IDS  # still in place
    # And back: the default again.
    alice.put(rule_path("override", ".m.rule.master", "/enabled"), {"enabled": False})
    assert alice.get(rule_path("override", ".m.rule.master", "/enabled")).body == {"enabled": False}


def test_rules_are_per_user(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    bob = register_user(server.base_url)
    put_rule(alice, "content", "mine", {"actions": ["notify"], "pattern": "x"})
    assert "mine" not in ids(bob.get(f"{V3}/pushrules/").body["global"]["content"])
    assert bob.get(rule_path("content", "mine")).status == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_kind_is_400(server: RunningServer, method: str) -> None:
    alice = register_user(server.base_url)
    response = alice.request(method, rule_path("weird", "x"), {"actions": []} if method == "PUT" else None)
    assert response.status == 400 and response.errcode == "M_INVALID_PARAM", response


def test_unknown_scope_is_400(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = alice.get(f"{V3}/pushrules/device/override/x")
    assert response.status == 400, response


@pytest.mark.parametrize("path", [
    rule_path("override", "nope"), rule_path("override", "nope", "/actions"),
    rule_path("override", "nope", "/enabled"), rule_path("override", ".m.rule.nope"),
    rule_path("content", ".m.rule.master"),
])
def test_unknown_rule_is_404(server: RunningServer, path: str) -> None:
    alice = register_user(server.base_url)
    response = alice.get(path)
    assert response.status == 404 and response.errcode == "M_NOT_FOUND", response


@pytest.mark.parametrize("suffix,body", [
    ("/actions", {"actions": ["notify"]}), ("/enabled", {"enabled": True}),
])
def test_changing_an_unknown_rule_is_404(server: RunningServer, suffix: str, body: dict[str, Any]) -> None:
    alice = register_user(server.base_url)
    response = alice.put(rule_path("override", "nope", suffix), body)
    assert response.status == 404 and response.errcode == "M_NOT_FOUND", response


@pytest.mark.parametrize("kind,body,errcode", [
    ("override", {}, "M_BAD_JSON"),
    ("override", {"actions": "notify"}, "M_BAD_JSON"),
    ("override", {"actions": ["explode"]}, "M_INVALID_PARAM"),
    ("override", {"actions": [42]}, "M_INVALID_PARAM"),
    ("override", {"actions": [{"value": "x"}]}, "M_INVALID_PARAM"),
    ("override", {"actions": [{"set_tweak": "highlight", "value": "yes"}]}, "M_INVALID_PARAM"),
    ("override", {"actions": [], "conditions": "all"}, "M_BAD_JSON"),
    ("override", {"actions": [], "conditions": [{"kind": "event_match", "key": "type"}]}, "M_BAD_JSON"),
    ("override", {"actions": [], "conditions": [{"kind": "room_member_count", "is": "lots"}]}, "M_BAD_JSON"),
    ("override", {"actions": [], "conditions": [
        {"kind": "event_property_is", "key": "content.x", "value": {"a": 1}}]}, "M_BAD_JSON"),
    ("override", {"actions": [], "conditions": [42]}, "M_BAD_JSON"),
    ("content", {"actions": []}, "M_BAD_JSON"),
])
def test_bad_rule_bodies(server: RunningServer, kind: str, body: dict[str, Any], errcode: str) -> None:
    alice = register_user(server.base_url)
    response = alice.put(rule_path(kind, "bad"), body)
    assert response.status == 400 and response.errcode == errcode, response
    assert alice.get(rule_path(kind, "bad")).status == 404


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'"text"'])
def test_non_object_bodies(server: RunningServer, raw: bytes) -> None:
    alice = register_user(server.base_url)
    response = alice.request("PUT", rule_path("override", "bad"), raw=raw)
    assert response.status == 400 and response.errcode == "M_NOT_JSON", response


def test_bad_actions_and_enabled_bodies(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    path = rule_path("underride", ".m.rule.message")
    for body in ({}, {"actions": "notify"}, {"actions": [None]}):
        response = alice.put(path + "/actions", body)
        assert response.status == 400, (body, response)
    for body in ({}, {"enabled": "yes"}, {"enabled": 1}):
        response = alice.put(path + "/enabled", body)
        assert response.status == 400, (body, response)
    assert alice.get(path).body["actions"] == ["notify"]


@pytest.mark.parametrize("rule_id", [".mine", "a%2Fb", "a%5Cb"])
def test_reserved_or_slashed_rule_ids_are_refused(server: RunningServer, rule_id: str) -> None:
    alice = register_user(server.base_url)
    response = alice.put(f"{V3}/pushrules/global/override/{rule_id}", {"actions": []})
    assert response.status == 400, response


def test_dont_notify_and_coalesce_are_accepted(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    put_rule(alice, "override", "old", {"actions": ["dont_notify", "coalesce"]})
    assert alice.get(rule_path("override", "old", "/actions")).body == {"actions": ["dont_notify", "coalesce"]}


def test_needs_a_token(server: RunningServer) -> None:
    anonymous = Client(server.base_url)
    response = anonymous.get(f"{V3}/pushrules/")
    assert response.status == 401 and response.errcode == "M_MISSING_TOKEN"


def test_rules_appear_in_sync_account_data(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    initial = sync(alice)
    events = {e["type"]: e["content"] for e in initial["account_data"]["events"]}
    assert ids(events["m.push_rules"]["global"]["override"]) == OVERRIDE_IDS
    put_rule(alice, "override", "cake", {"actions": ["notify"]})
    later = sync(alice, since=initial["next_batch"])
    events = {e["type"]: e["content"] for e in later.get("account_data", {}).get("events", [])}
    assert ids(events["m.push_rules"]["global"]["override"])[:2] == [".m.rule.master", "cake"]
    assert events["m.push_rules"]["global"] == alice.get(f"{V3}/pushrules/").body["global"]


def test_account_data_api_refuses_push_rules(server: RunningServer) -> None:
    alice = register_user(server.base_url)
    response = alice.put(f"{V3}/user/{q(alice.user_id)}/account_data/m.push_rules", {"global": {}})
    assert response.status == 400, response
    assert ids(alice.get(f"{V3}/pushrules/").body["global"]["override"]) == OVERRIDE_IDS
