"""The shared path for default-rule members (homeserver/handlers/push/shared.py) picks, for
every member and event, the same rule (so the same actions) as evaluating that member's own
compiled rules one by one."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.handlers.push.conditions import EventFacts, compile_rules, first_match, flatten
from homeserver.handlers.push.ruleset import Ruleset
from homeserver.handlers.push.shared import DefaultTemplate, SharedPlan

SERVER = "hs.test"
SENDER = "@sender:hs.test"
MEMBERS = {
    "@alice:hs.test": "Alice",
    "@bob:hs.test": None,
    "@carol:hs.test": "Carol Danvers",
    "@room:hs.test": "room",
    "@m.notice:hs.test": "x",
}


def power_levels(notifications_room: int) -> dict[tuple[str, str], Event]:
    content = {"users": {SENDER: 50}, "notifications": {"room": notifications_room}}
    pdu = {"type": "m.room.power_levels", "state_key": "", "sender": SENDER, "room_id": "!r:hs.test",
           "content": content, "origin_server_ts": 0, "depth": 3, "prev_events": [], "auth_events": [],
           "hashes": {"sha256": "x"}, "signatures": {}}
    return {("m.room.power_levels", ""): Event.from_pdu(pdu, KNOWN_ROOM_VERSIONS["10"])}


EVENTS: list[dict[str, Any]] = [
    {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "hello there"}},
    {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "hey Alice, and alice again"}},
    {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "carol? Carol Danvers!"}},
    {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "ping bob"}},
    {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "@room look"}},
    {"type": "m.room.message", "content": {"msgtype": "m.notice", "body": "Alice notice"}},
    {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "Alice",
                                           "m.mentions": {"user_ids": ["@bob:hs.test"]}}},
    {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "all", "m.mentions": {"room": True}}},
    {"type": "m.room.message", "content": {"msgtype": "m.text", "body": "edit Alice",
                                           "m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}},
    {"type": "m.room.encrypted", "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x"}},
    {"type": "m.reaction", "content": {"m.relates_to": {"rel_type": "m.annotation", "key": "bob"}}},
    {"type": "m.call.invite", "content": {"call_id": "c", "version": "1"}},
    {"type": "m.room.member", "state_key": "@carol:hs.test", "content": {"membership": "invite"}},
    {"type": "m.room.member", "state_key": "@alice:hs.test", "content": {"membership": "join"}},
    {"type": "m.room.tombstone", "state_key": "", "content": {"body": "moved"}},
    {"type": "m.room.server_acl", "state_key": "", "content": {}},
    {"type": "org.example.custom", "content": {"body": "Alice"}},
]


def facts_for(event: dict[str, Any], member_count: int, auth: dict[Any, Any]) -> EventFacts:
    shown = {"event_id": "$e", "sender": SENDER, "room_id": "!r:hs.test", **event}
    return EventFacts(flatten(shown), SENDER, "!r:hs.test", member_count, auth,
                      has_mentions="m.mentions" in event["content"])


def test_the_template_lines_up_with_every_default_users_rules() -> None:
    template = DefaultTemplate.build(SERVER)
    for user_id in MEMBERS:
        rules = compile_rules(Ruleset.empty(user_id).render())
        assert [r.rule_id for r in rules] == [r.rule_id for r in template.rules]
    personal = {template.rules[i].rule_id for i, p in enumerate(template.personal) if p}
    assert personal == {".m.rule.invite_for_me", ".m.rule.is_user_mention", ".m.rule.contains_display_name",
                        ".m.rule.contains_user_name"}


@pytest.mark.parametrize(("event", "member_count", "notifications_room"),
                         list(itertools.product(EVENTS, (2, 3, 40), (0, 100))))
def test_shared_path_gives_the_same_actions_as_per_user_evaluation(
        event: dict[str, Any], member_count: int, notifications_room: int) -> None:
    template = DefaultTemplate.build(SERVER)
    auth = power_levels(notifications_room)
    shared_facts = facts_for(event, member_count, auth)
    plan = SharedPlan.for_event(template, shared_facts)
    for user_id, name in MEMBERS.items():
        rules = compile_rules(Ruleset.empty(user_id).render())
        alone = first_match(rules, facts_for(event, member_count, auth), name)
        shared = plan.match(template, rules, shared_facts, name)
        assert (None if alone is None else (alone.rule_id, alone.actions)) == \
            (None if shared is None else (shared.rule_id, shared.actions)), (user_id, event)


def test_a_personal_rule_on_a_property_the_event_lacks_is_nobodys_candidate() -> None:
    template = DefaultTemplate.build(SERVER)
    auth = power_levels(50)

    def candidates(event: dict[str, Any]) -> set[str]:
        plan = SharedPlan.for_event(template, facts_for(event, 5, auth))
        return {template.rules[i].rule_id for i in plan.candidates}

    plain = candidates(EVENTS[0])
    assert ".m.rule.is_user_mention" not in plain  # no m.mentions.user_ids to be in
    assert {".m.rule.contains_display_name", ".m.rule.contains_user_name"} <= plain
    assert ".m.rule.is_user_mention" in candidates(EVENTS[6])
    assert candidates(EVENTS[9]) == set()  # encrypted: no body, no mentions
