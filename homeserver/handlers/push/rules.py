"""The push-rules API's logic: read, add, change and delete a user's rules.

Rules live in the user's ``m.push_rules`` global account data (ruleset.py says how), written
through the account-data store and its stream writer, so ``/sync`` carries every change and
the evaluator's cache hears of it from the same announcement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import DeferredLock

from homeserver.handlers.push.ruleset import (
    Ruleset,
    check_actions,
    check_kind,
    check_rule_id,
    check_scope,
    new_user_rule,
)
from homeserver.server import Server
from storage.stores.account_data import AccountDataStore

PUSH_RULES_TYPE = "m.push_rules"


class PushRulesHandler:
    def __init__(self, hs: Server) -> None:
        self.store: AccountDataStore = hs.get(AccountDataStore)
        # Read-modify-write of one document per user: one writer at a time per user.
        self._locks: dict[str, DeferredLock] = {}

    async def get_ruleset(self, user_id: str) -> Ruleset:
        content = await self.store.get_account_data(user_id, None, PUSH_RULES_TYPE)
        return Ruleset.from_account_data(user_id, content)

    async def get_all(self, user_id: str) -> dict[str, Any]:
        """``GET /pushrules/``."""
        return (await self.get_ruleset(user_id)).to_account_data()

    async def get_scope(self, user_id: str, scope: str) -> dict[str, Any]:
        check_scope(scope)
        return (await self.get_ruleset(user_id)).render()

    async def get_kind(self, user_id: str, scope: str, kind: str) -> list[dict[str, Any]]:
        check_scope(scope)
        check_kind(kind)
        return (await self.get_ruleset(user_id)).render()[kind]

    async def get_rule(self, user_id: str, scope: str, kind: str, rule_id: str) -> dict[str, Any]:
        check_scope(scope)
        check_kind(kind)
        return (await self.get_ruleset(user_id)).find(kind, rule_id)

    async def put_rule(self, user_id: str, scope: str, kind: str, rule_id: str, body: dict[str, Any],
                       before: str | None, after: str | None) -> None:
        check_scope(scope)
        check_kind(kind)
        check_rule_id(rule_id)
        rule = new_user_rule(kind, rule_id, body)
        await self._change(user_id, lambda rules: rules.put(kind, rule, before, after))

    async def delete_rule(self, user_id: str, scope: str, kind: str, rule_id: str) -> None:
        check_scope(scope)
        check_kind(kind)
        await self._change(user_id, lambda rules: rules.delete(kind, rule_id))

    async def set_actions(self, user_id: str, scope: str, kind: str, rule_id: str, actions: Any) -> None:
        check_scope(scope)
        check_kind(kind)
        checked = check_actions(actions)
        await self._change(user_id, lambda rules: rules.set_actions(kind, rule_id, checked))

    async def set_enabled(self, user_id: str, scope: str, kind: str, rule_id: str, enabled: bool) -> None:
        check_scope(scope)
        check_kind(kind)
        await self._change(user_id, lambda rules: rules.set_enabled(kind, rule_id, enabled))

    async def _change(self, user_id: str, change: Callable[[Ruleset], None]) -> None:
        lock = self._locks.setdefault(user_id, DeferredLock())
        await lock.acquire()
        try:
            ruleset = await self.get_ruleset(user_id)
            change(ruleset)
            await self.store.put_account_data(user_id, None, PUSH_RULES_TYPE, ruleset.to_account_data())
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(user_id, None)
