"""One evaluation per event for every member still on the server's default rules (no I/O).

Most members never change their push rules, and the default rules of two users differ only
in the conditions that name the user: their ID (an invite for them, a mention of them), their
localpart (``.m.rule.contains_user_name``) and their display name. So for that class of
members an event is walked through the default rules once (`SharedPlan.for_event`), deciding
every condition that names nobody; what remains per member is the few rules whose other
conditions all held and that are still open on a personal condition (for a plain message: the
display-name and user-name rules), then the first rule that names nobody and holds.

The result is the same rule ``first_match`` picks on the member's own compiled rules: a rule
that fails on a shared condition fails for every member; the per-member rules are checked in
the default order; the fallback is the first rule that needs nothing personal. The rules of a
default-class member are compiled from the same default list, so they line up index by index
with the template's.
"""

from __future__ import annotations

import attrs

from homeserver.handlers.push.conditions import CompiledRule, Condition, EventFacts, compile_rules
from homeserver.handlers.push.defaults import default_rules

_TEMPLATE_LOCALPART = "vignette-push-template"


@attrs.frozen
class DefaultTemplate:
    """The default rules compiled for a stand-in user, with each rule's personal conditions."""

    rules: tuple[CompiledRule, ...]
    #: For each rule, the positions of its conditions that name the member.
    personal: tuple[tuple[int, ...], ...]

    @classmethod
    def build(cls, server_name: str) -> DefaultTemplate:
        user_id = f"@{_TEMPLATE_LOCALPART}:{server_name}"
        rendered = default_rules(user_id)
        for rules in rendered.values():
            for rule in rules:
                rule.setdefault("enabled", True)
        compiled = compile_rules(rendered)
        personal = tuple(
            tuple(i for i, condition in enumerate(rule.conditions)
                  if condition.per_name or any(isinstance(part, str) and (
                      user_id in part or _TEMPLATE_LOCALPART in part) for part in condition.key))
            for rule in compiled)
        return cls(compiled, personal)


def _fails_for_everyone(condition: Condition, facts: EventFacts) -> bool:
    """A personal condition on a property the event lacks (a mention list, a body) holds for
    no member, so its rule is no member's candidate."""
    if condition.per_name:
        return facts.body is None
    kind = condition.key[0]
    return kind in _PROPERTY_KINDS and condition.key[1] not in facts.flat


#: Conditions keyed (kind, flattened property, ...): event_match and event_property_*.
_PROPERTY_KINDS = frozenset({"m", "event_property_is", "event_property_contains"})


@attrs.frozen
class SharedPlan:
    """What one event leaves open for default-class members."""

    #: Indices of rules whose shared conditions all hold but which name the member.
    candidates: tuple[int, ...]
    #: The first rule needing nothing personal that holds (None: no such rule matches).
    fallback: int | None

    @classmethod
    def for_event(cls, template: DefaultTemplate, facts: EventFacts) -> SharedPlan:
        memo = facts.memo
        candidates: list[int] = []
        for index, rule in enumerate(template.rules):
            personal = template.personal[index]
            holds = True
            for position, condition in enumerate(rule.conditions):
                if position in personal:
                    if _fails_for_everyone(condition, facts):
                        holds = False
                        break
                    continue
                outcome = memo.get(condition.key)
                if outcome is None:
                    outcome = memo[condition.key] = condition.test(facts, None)
                if not outcome:
                    holds = False
                    break
            if not holds:
                continue
            if not personal:
                return cls(tuple(candidates), index)
            candidates.append(index)
        return cls(tuple(candidates), None)

    def fallback_rule(self, template: DefaultTemplate) -> CompiledRule | None:
        """The rule of every member whose personal conditions all fail: the event's shared outcome."""
        return None if self.fallback is None else template.rules[self.fallback]

    def personal_match(self, template: DefaultTemplate, rules: tuple[CompiledRule, ...], facts: EventFacts,
                       name: str | None) -> CompiledRule | None:
        """The member's rule if one of their personal candidates holds, else None (then the
        fallback decides, as for everyone else). ``rules`` are their own compiled default rules.

        The personal conditions are tested directly, not through the event's memo: they name
        this member (their ID, localpart or display name), so no other member would reuse
        the answer, and the memo's tuple keys cost more than the tests (issue 11's budget)."""
        personal = template.personal
        for index in self.candidates:
            rule = rules[index]
            conditions = rule.conditions
            for position in personal[index]:
                if not conditions[position].test(facts, name):
                    break
            else:
                return rule
        return None

    def match(self, template: DefaultTemplate, rules: tuple[CompiledRule, ...], facts: EventFacts,
              name: str | None) -> CompiledRule | None:
        """The member's matching rule (what ``first_match`` gives on their own rules)."""
        found = self.personal_match(template, rules, facts, name)
        if found is not None:
            return found
        return None if self.fallback is None else rules[self.fallback]
