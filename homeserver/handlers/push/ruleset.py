"""A user's push rules: the server defaults merged with what the user set (no I/O).

They are kept as the user's ``m.push_rules`` account data, in the shape ``GET /pushrules/``
answers (``{"global": {kind: [rule, ...]}}``), so ``/sync`` shows clients exactly that, as
Synapse does. Reading it back keeps only what the user chose: their own rules in their
order, and the ``enabled``/``actions`` of each default rule; the defaults themselves always
come from ``defaults.py``, so a server upgrade that changes them reaches every user.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import attrs

from homeserver.errors import MatrixError, bad_json, invalid_param
from homeserver.handlers.push.defaults import KINDS, MASTER, default_rules

MAX_RULE_ID_LENGTH = 255
#: More user rules than any client sets; bounds the account-data document.
MAX_RULES_PER_KIND = 500
_MEMBER_COUNT = re.compile(r"^(==|<=|>=|<|>)?[0-9]+$")
_KNOWN_ACTIONS = frozenset({"notify", "dont_notify", "coalesce"})
CONDITION_KINDS = ("override", "underride")


def rule_not_found() -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", "The push rule was not found.")


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise invalid_param(f"Unknown push rule kind {kind!r}: one of {', '.join(KINDS)}")


def check_scope(scope: str) -> None:
    if scope != "global":
        raise invalid_param("The only push rule scope is 'global'")


def check_actions(actions: Any) -> list[Any]:
    """Spec "Actions": notify, set_tweak objects; dont_notify/coalesce are accepted no-ops."""
    if not isinstance(actions, list):
        raise bad_json("actions must be a list")
    for action in actions:
        if isinstance(action, str):
            if action not in _KNOWN_ACTIONS:
                raise invalid_param(f"Unknown push rule action {action!r}")
        elif isinstance(action, dict):
            tweak = action.get("set_tweak")
            if not isinstance(tweak, str) or not tweak:
                raise invalid_param("An action object must have a set_tweak string")
            if tweak == "highlight" and not isinstance(action.get("value", True), bool):
                raise invalid_param("The highlight tweak's value must be a boolean")
            if tweak == "sound" and not isinstance(action.get("value"), str):
                raise invalid_param("The sound tweak's value must be a string")
        else:
            raise invalid_param("Each action must be a string or an object")
    return actions


def _check_condition(condition: Any) -> dict[str, Any]:
    if not isinstance(condition, dict) or not isinstance(condition.get("kind"), str):
        raise bad_json("Each condition must be an object with a kind string")
    kind = condition["kind"]
    if kind == "event_match":
        if not isinstance(condition.get("key"), str) or not isinstance(condition.get("pattern"), str):
            raise bad_json("event_match needs key and pattern strings")
    elif kind in ("event_property_is", "event_property_contains"):
        value = condition.get("value", ...)
        if not isinstance(condition.get("key"), str) or "value" not in condition:
            raise bad_json(f"{kind} needs a key string and a value")
        if not (value is None or isinstance(value, (str, bool, int))) or isinstance(value, float):
            raise bad_json(f"{kind}'s value must be a string, integer, boolean or null")
    elif kind == "room_member_count":
        if not isinstance(condition.get("is"), str) or not _MEMBER_COUNT.match(condition["is"]):
            raise bad_json("room_member_count needs 'is': a number with an optional ==, <, >, <= or >=")
    elif kind == "sender_notification_permission":
        if not isinstance(condition.get("key"), str):
            raise bad_json("sender_notification_permission needs a key string")
    # Other kinds (contains_display_name, unknown ones) are kept: unknown never match.
    return condition


def check_rule_id(rule_id: str) -> None:
    if not rule_id or len(rule_id) > MAX_RULE_ID_LENGTH:
        raise invalid_param(f"rule_id must be 1 to {MAX_RULE_ID_LENGTH} characters")
    if rule_id.startswith("."):
        raise invalid_param("rule_ids starting with '.' are reserved for server-default rules")
    if "/" in rule_id or "\\" in rule_id or "\x00" in rule_id:
        raise invalid_param("rule_id may not contain slashes, backslashes or NUL")


def new_user_rule(kind: str, rule_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A user rule from a PUT body, validated for its kind (enabled, as the spec asks)."""
    if "actions" not in body:
        raise bad_json("A push rule needs actions")
    rule: dict[str, Any] = {"rule_id": rule_id, "default": False, "enabled": True,
                            "actions": check_actions(body["actions"])}
    if kind == "content":
        if not isinstance(body.get("pattern"), str):
            raise bad_json("A content rule needs a pattern string")
        rule["pattern"] = body["pattern"]
    elif kind in CONDITION_KINDS:
        conditions = body.get("conditions", [])
        if not isinstance(conditions, list):
            raise bad_json("conditions must be a list")
        rule["conditions"] = [_check_condition(c) for c in conditions]
    return rule


@attrs.define
class Ruleset:
    """One user's rules: their own (per kind, most important first) and changes to defaults."""

    user_id: str
    user_rules: dict[str, list[dict[str, Any]]]
    #: rule_id -> {"enabled": ..., "actions": ...} the user changed on a default rule.
    default_changes: dict[str, dict[str, Any]]

    @classmethod
    def empty(cls, user_id: str) -> Ruleset:
        return cls(user_id, {kind: [] for kind in KINDS}, {})

    @classmethod
    def from_account_data(cls, user_id: str, content: Any) -> Ruleset:
        """Read a stored ``m.push_rules`` document, ignoring anything malformed in it."""
        ruleset = cls.empty(user_id)
        scope = content.get("global") if isinstance(content, dict) else None
        if not isinstance(scope, dict):
            return ruleset
        defaults = default_rules(user_id)
        for kind in KINDS:
            known_defaults = {r["rule_id"]: r for r in defaults[kind]}
            for rule in scope.get(kind) or []:
                if not isinstance(rule, dict) or not isinstance(rule.get("rule_id"), str):
                    continue
                rule_id = rule["rule_id"]
                if rule_id.startswith("."):
                    base = known_defaults.get(rule_id)
                    if base is not None:
                        change = {k: rule[k] for k in ("enabled", "actions") if k in rule and rule[k] != base[k]}
                        if change:
                            ruleset.default_changes[rule_id] = change
                elif not rule.get("default"):
                    ruleset.user_rules[kind].append(_stored_user_rule(kind, rule))
        return ruleset

    def render(self) -> dict[str, list[dict[str, Any]]]:
        """Every rule of each kind in evaluation order (the ``global`` of ``GET /pushrules/``)."""
        defaults = default_rules(self.user_id)
        for rules in defaults.values():
            for rule in rules:
                rule.update(copy.deepcopy(self.default_changes.get(rule["rule_id"], {})))
        result: dict[str, list[dict[str, Any]]] = {}
        for kind in KINDS:
            own = [copy.deepcopy(r) for r in self.user_rules[kind]]
            base = defaults[kind]
            if kind == "override" and base and base[0]["rule_id"] == MASTER:
                result[kind] = [base[0], *own, *base[1:]]
            else:
                result[kind] = [*own, *base]
        return result

    def to_account_data(self) -> dict[str, Any]:
        return {"global": self.render()}

    def find(self, kind: str, rule_id: str) -> dict[str, Any]:
        for rule in self.render()[kind]:
            if rule["rule_id"] == rule_id:
                return rule
        raise rule_not_found()

    def _user_index(self, kind: str, rule_id: str) -> int | None:
        for index, rule in enumerate(self.user_rules[kind]):
            if rule["rule_id"] == rule_id:
                return index
        return None

    def put(self, kind: str, rule: dict[str, Any], before: str | None, after: str | None) -> None:
        """Add or replace a user rule; placement relative to another user rule of the kind."""
        rules = self.user_rules[kind]
        existing = self._user_index(kind, rule["rule_id"])
        if existing is not None:
            rule["enabled"] = rules[existing].get("enabled", True)
        anchor = before if before is not None else after
        if anchor is not None:
            if anchor == rule["rule_id"] or self._user_index(kind, anchor) is None:
                raise MatrixError(400, "M_UNKNOWN", f"before/after rule not found: {anchor}")
            if existing is not None:
                del rules[existing]
            position = self._user_index(kind, anchor)
            assert position is not None
            rules.insert(position if before is not None else position + 1, rule)
        elif existing is not None:
            rules[existing] = rule
        else:
            if len(rules) >= MAX_RULES_PER_KIND:
                raise MatrixError(400, "M_LIMIT_EXCEEDED", f"At most {MAX_RULES_PER_KIND} rules per kind")
            rules.insert(0, rule)

    def delete(self, kind: str, rule_id: str) -> None:
        if rule_id.startswith("."):
            self.find(kind, rule_id)  # 404 for one that does not exist at all
            raise invalid_param("Server-default push rules cannot be deleted")
        index = self._user_index(kind, rule_id)
        if index is None:
            raise rule_not_found()
        del self.user_rules[kind][index]

    def _set(self, kind: str, rule_id: str, field: str, value: Any) -> None:
        if rule_id.startswith("."):
            base = self.find(kind, rule_id)
            change = self.default_changes.setdefault(rule_id, {})
            change[field] = value
            defaults = {r["rule_id"]: r for r in default_rules(self.user_id)[kind]}
            if defaults[base["rule_id"]][field] == value:
                del change[field]
            if not change:
                del self.default_changes[rule_id]
            return
        index = self._user_index(kind, rule_id)
        if index is None:
            raise rule_not_found()
        self.user_rules[kind][index][field] = value

    def set_actions(self, kind: str, rule_id: str, actions: list[Any]) -> None:
        self._set(kind, rule_id, "actions", actions)

    def set_enabled(self, kind: str, rule_id: str, enabled: bool) -> None:
        self._set(kind, rule_id, "enabled", enabled)


def _stored_user_rule(kind: str, rule: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {"rule_id": rule["rule_id"], "default": False,
                            "enabled": rule.get("enabled") is not False,
                            "actions": rule.get("actions") if isinstance(rule.get("actions"), list) else []}
    if kind == "content":
        kept["pattern"] = rule.get("pattern") if isinstance(rule.get("pattern"), str) else ""
    elif kind in CONDITION_KINDS:
        conditions = rule.get("conditions")
        kept["conditions"] = [c for c in conditions if isinstance(c, dict)] if isinstance(conditions, list) else []
    return kept
