"""Push rules compiled for evaluation, and the conditions (spec "Conditions"), with no I/O.

An event is prepared once (`EventFacts`: its flattened properties, body, member count,
sender's power) and then evaluated for every member. Each condition has a memo key that
holds everything it depends on, so a condition shared by many members' rules (``type ==
m.room.message``) is decided once per event and the per-member work is dictionary lookups;
only conditions naming the member (their ID, display name) are decided per member.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import attrs

from homeserver.events.power_levels import POWER_LEVELS_KEY, AuthEvents, get_user_power_level

#: Legacy mention rules that stand aside when the event has ``m.mentions`` (spec v1.7).
LEGACY_MENTION_RULES = frozenset({".m.rule.contains_display_name", ".m.rule.contains_user_name",
                                  ".m.rule.roomnotif"})
DEFAULT_NOTIFICATION_LEVEL = 50
_MEMBER_COUNT = re.compile(r"^(==|<=|>=|<|>)?([0-9]+)$")


def _escape(part: str) -> str:
    return part.replace("\\", "\\\\").replace(".", "\\.")


def flatten(value: Mapping[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"content": {"m.mentions": {"room": true}}}`` -> ``{"content.m\\.mentions.room": True}``.

    Leaves are strings, integers, booleans, null and arrays (for event_property_contains);
    dots and backslashes in keys are escaped as the spec's dotted paths expect.
    """
    out = {} if out is None else out
    for key, item in value.items():
        path = prefix + _escape(key)
        if isinstance(item, dict):
            flatten(item, path + ".", out)
        elif isinstance(item, (str, int, bool, list)) or item is None:
            out[path] = item
    return out


def _glob_regex(pattern: str) -> str:
    return "".join(".*?" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


@lru_cache(maxsize=4096)
def whole_matcher(pattern: str) -> re.Pattern[str]:
    return re.compile(_glob_regex(pattern) + r"\Z", re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=4096)
def word_matcher(pattern: str, literal: bool = False) -> re.Pattern[str]:
    """The pattern as a word (or words) somewhere in the text: bounded by non-word characters."""
    body = re.escape(pattern) if literal else _glob_regex(pattern)
    return re.compile(r"(?:^|\W|\b)" + body + r"(?:\b|\W|$)", re.IGNORECASE | re.DOTALL)


def same_value(a: Any, b: Any) -> bool:
    """Canonical-JSON equality: ``true`` is not ``1``."""
    return type(a) is type(b) and a == b


@attrs.define(slots=True)
class EventFacts:
    """What every member's evaluation of one event reads; built once per event."""

    flat: dict[str, Any]
    sender: str
    room_id: str
    member_count: int
    auth: AuthEvents
    #: The content has ``m.mentions`` (even empty, which flattens to nothing).
    has_mentions: bool = False
    memo: dict[tuple[Any, ...], bool] = attrs.field(factory=dict)
    sender_level: float | None = None
    #: Casefolded string properties, folded once per event rather than once per member.
    folded: dict[str, str | None] = attrs.field(factory=dict)

    def folded_value(self, key: str) -> str | None:
        if key in self.folded:
            return self.folded[key]
        value = self.flat.get(key)
        found = self.folded[key] = value.casefold() if isinstance(value, str) else None
        return found

    @property
    def body(self) -> str | None:
        body = self.flat.get("content.body")
        return body if isinstance(body, str) else None

    def sender_power(self) -> float:
        if self.sender_level is None:
            self.sender_level = get_user_power_level(self.sender, self.auth)
        return self.sender_level


Test = Callable[[EventFacts, str | None], bool]


def _event_match(key: str, pattern: str) -> Test:
    words = key == "content.body"
    if "*" not in pattern and "?" not in pattern:
        # The common case (a type, a user ID, a localpart): no regex unless the text is there.
        wanted = pattern.casefold()
        if not words:
            def equal(facts: EventFacts, _name: str | None) -> bool:
                value = facts.flat.get(key)
                return isinstance(value, str) and value.casefold() == wanted
            return equal
        def word(facts: EventFacts, _name: str | None) -> bool:
            folded = facts.folded_value(key)
            return folded is not None and wanted in folded \
                and word_matcher(pattern, literal=True).search(facts.flat[key]) is not None
        return word
    matcher = word_matcher(pattern) if words else whole_matcher(pattern)

    def test(facts: EventFacts, _name: str | None) -> bool:
        value = facts.flat.get(key)
        return isinstance(value, str) and matcher.search(value) is not None
    return test


def _property_is(key: str, value: Any) -> Test:
    def test(facts: EventFacts, _name: str | None) -> bool:
        return key in facts.flat and same_value(facts.flat[key], value)
    return test


def _property_contains(key: str, value: Any) -> Test:
    def test(facts: EventFacts, _name: str | None) -> bool:
        found = facts.flat.get(key)
        return isinstance(found, list) and any(same_value(item, value) for item in found)
    return test


def _member_count(spec: str) -> Test:
    parsed = _MEMBER_COUNT.match(spec)
    op, number = (parsed.group(1) or "==", int(parsed.group(2))) if parsed else ("", 0)
    compare: dict[str, Callable[[int], bool]] = {
        "==": lambda n: n == number, "<": lambda n: n < number, ">": lambda n: n > number,
        "<=": lambda n: n <= number, ">=": lambda n: n >= number,
    }

    def test(facts: EventFacts, _name: str | None) -> bool:
        check = compare.get(op)
        return check is not None and check(facts.member_count)
    return test


def _notification_permission(key: str) -> Test:
    def test(facts: EventFacts, _name: str | None) -> bool:
        power_levels = facts.auth.get(POWER_LEVELS_KEY)
        required: Any = DEFAULT_NOTIFICATION_LEVEL
        if power_levels is not None:
            levels = power_levels.content.get("notifications")
            if isinstance(levels, dict) and isinstance(levels.get(key), int) \
                    and not isinstance(levels.get(key), bool):
                required = levels[key]
        return facts.sender_power() >= required
    return test


def _display_name(facts: EventFacts, name: str | None) -> bool:
    body = facts.body
    folded = facts.folded_value("content.body")
    if not name or body is None or folded is None or name.casefold() not in folded:
        return False
    return word_matcher(name, literal=True).search(body) is not None


def _no_mentions(facts: EventFacts, _name: str | None) -> bool:
    return not facts.has_mentions


def _never(_facts: EventFacts, _name: str | None) -> bool:
    return False


@attrs.frozen(slots=True)
class Condition:
    #: Everything the outcome depends on but the member's display name.
    key: tuple[Any, ...]
    test: Test
    #: The outcome depends on the member's display name too.
    per_name: bool = False


def compile_condition(condition: dict[str, Any]) -> Condition:
    """The compiled condition; the same one for every rule (of any user) that has it."""
    try:
        return _compile_cached(tuple(sorted((k, (type(v).__name__, v)) for k, v in condition.items())))
    except TypeError:  # an unhashable value (a list in an unknown condition): never cached
        return _compile(condition)


@lru_cache(maxsize=65536)
def _compile_cached(frozen: tuple[tuple[str, tuple[str, Any]], ...]) -> Condition:
    return _compile({k: v for k, (_type, v) in frozen})


def _compile(condition: dict[str, Any]) -> Condition:
    kind = condition.get("kind")
    key, pattern, value = condition.get("key"), condition.get("pattern"), condition.get("value")
    if kind == "event_match" and isinstance(key, str) and isinstance(pattern, str):
        return Condition(("m", key, pattern), _event_match(key, pattern))
    if kind in ("event_property_is", "event_property_contains") and isinstance(key, str):
        tag = (kind, key, type(value).__name__, value)
        build = _property_is if kind == "event_property_is" else _property_contains
        return Condition(tag, build(key, value))
    if kind == "room_member_count" and isinstance(condition.get("is"), str):
        return Condition(("count", condition["is"]), _member_count(condition["is"]))
    if kind == "sender_notification_permission" and isinstance(key, str):
        return Condition(("perm", key), _notification_permission(key))
    if kind == "contains_display_name":
        return Condition(("name",), _display_name, per_name=True)
    return Condition(("never",), _never)  # unknown conditions never match


NO_MENTIONS = Condition(("no_mentions",), _no_mentions)


@attrs.frozen(slots=True)
class CompiledRule:
    rule_id: str
    conditions: tuple[Condition, ...]
    actions: list[Any]
    notify: bool
    highlight: bool


def _highlight(actions: list[Any]) -> bool:
    for action in actions:
        if isinstance(action, dict) and action.get("set_tweak") == "highlight":
            return action.get("value", True) is not False
    return False


def compile_rule(kind: str, rule: dict[str, Any]) -> CompiledRule:
    rule_id = rule["rule_id"]
    if kind in ("override", "underride"):
        conditions = [compile_condition(c) for c in rule.get("conditions", [])]
    elif kind == "content":
        conditions = [compile_condition({"kind": "event_match", "key": "content.body",
                                         "pattern": rule.get("pattern", "")})]
    elif kind == "room":
        conditions = [Condition(("=", "room_id", rule_id), _property_is("room_id", rule_id))]
    else:
        conditions = [Condition(("=", "sender", rule_id), _property_is("sender", rule_id))]
    if rule.get("default") and rule_id in LEGACY_MENTION_RULES:
        conditions.insert(0, NO_MENTIONS)
    actions = list(rule.get("actions", []))
    return CompiledRule(rule_id, tuple(conditions), actions, "notify" in actions, _highlight(actions))


def compile_rules(rendered: dict[str, list[dict[str, Any]]]) -> tuple[CompiledRule, ...]:
    """Every enabled rule in evaluation order: override, content, room, sender, underride."""
    return tuple(compile_rule(kind, rule) for kind in ("override", "content", "room", "sender", "underride")
                 for rule in rendered.get(kind, []) if rule.get("enabled", True))


def first_match(rules: tuple[CompiledRule, ...], facts: EventFacts, name: str | None) -> CompiledRule | None:
    """The first rule whose conditions all hold for this member, or None."""
    memo = facts.memo
    for rule in rules:
        for condition in rule.conditions:
            key = (*condition.key, name) if condition.per_name else condition.key
            outcome = memo.get(key)
            if outcome is None:
                outcome = memo[key] = condition.test(facts, name)
            if not outcome:
                break
        else:
            return rule
    return None
