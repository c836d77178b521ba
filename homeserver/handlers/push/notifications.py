"""Push-rule evaluation of every new event, once, after it is persisted (spec "Push Rules").

The evaluator hears each committed batch from the event pipeline and works through each
room's events in order, in the background: for each event it takes the room's local joined
members (and a local invitee), evaluates everyone's compiled rules against facts prepared
once for the event (conditions.py), writes the notifying ones to ``event_push_actions`` in
one transaction, and then tells its listeners (the pushers) what it wrote.

Each user's rules are compiled once and cached until an account-data write for the user is
announced on the Streams registry. ``/sync`` calls ``wait_for`` before reading counts, so
the counts it shows cover every event it shows.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from homeserver.handlers.push.conditions import (
    CompiledRule,
    EventFacts,
    compile_rules,
    first_match,
    flatten,
)
from homeserver.handlers.push.group_writer import GroupWriter
from homeserver.handlers.push.room_context import MEMBER, RoomContext, RoomContexts
from homeserver.handlers.push.rules import PUSH_RULES_TYPE
from homeserver.handlers.push.ruleset import Ruleset
from homeserver.handlers.push.shared import DefaultTemplate, SharedPlan
from homeserver.pipeline import EventPipeline, PersistedBatch
from homeserver.server import Server
from storage.stores.account_data import AccountDataStore
from storage.stores.events import EventStore, StoredEvent
from storage.stores.push_actions import MAIN_THREAD, PushAction, PushActionsStore, SharedPush
from storage.streams import StreamAdvance, Streams

logger = logging.getLogger(__name__)

#: Users whose compiled rules stay in memory.
MAX_CACHED_RULESETS = 100_000
#: How long a /sync waits for evaluation to catch up before it shows counts anyway.
WAIT_TIMEOUT_S = 10.0
IGNORED_USERS_TYPE = "m.ignored_user_list"
#: How often, at most, the evaluated-up-to watermark is stored.
WATERMARK_INTERVAL_S = 2.0
#: Events evaluated at start-up after a crash, at most.
MAX_CATCH_UP = 10_000
_EVENT_KEYS = ("event_id", "type", "sender", "room_id", "state_key", "origin_server_ts", "content", "redacts")


#: One event that notifies one user (``thread_id`` is ``MAIN_THREAD`` outside a thread).
Notification = PushAction


@attrs.frozen
class EventNotifications:
    """What one event does to its recipients, as committed: the shared outcome of everyone on
    it (no object per member: a 1,500-member room would pay for 1,500) and the members with
    an outcome of their own. Listeners ask only about the members they care about."""

    #: The row of every recipient not in ``own`` (None: the shared outcome does not notify).
    shared: SharedPush | None
    #: The local joined members except the sender, and a local invitee.
    recipients: list[str]
    #: The recipients with their own outcome: their notification, or None when not notified.
    own: dict[str, Notification | None]

    def for_user(self, user_id: str) -> Notification | None:
        """The recipient's notification (None: not notified). ``user_id`` must be a recipient."""
        if user_id in self.own:
            return self.own[user_id]
        return None if self.shared is None else self.shared.for_user(user_id)

    def notified(self) -> list[Notification]:
        """Every recipient's notification (one object each: for tests and small rooms)."""
        found = [self.for_user(user_id) for user_id in self.recipients]
        return [n for n in found if n is not None]


@attrs.frozen
class UserRules:
    """One user's compiled rules, and whom they ignore (no notifications from them)."""

    rules: tuple[CompiledRule, ...]
    ignored: frozenset[str]
    #: Still on the server's default rules: evaluated on the shared path (shared.py).
    default: bool = False


def ignored_users(content: Any) -> frozenset[str]:
    found = content.get("ignored_users") if isinstance(content, dict) else None
    return frozenset(u for u in found if isinstance(u, str)) if isinstance(found, dict) else frozenset()


NotificationListener = Callable[[EventNotifications], Awaitable[Any] | None]


def thread_of(content: dict[str, Any]) -> str:
    relates = content.get("m.relates_to")
    if isinstance(relates, dict) and relates.get("rel_type") == "m.thread":
        root = relates.get("event_id")
        if isinstance(root, str):
            return root
    return MAIN_THREAD


class PushRuleEvaluator:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name = hs.server_name
        self._suffix = ":" + hs.server_name
        self.store: PushActionsStore = hs.get(PushActionsStore)
        self.account_data: AccountDataStore = hs.get(AccountDataStore)
        self.rooms = RoomContexts(hs)
        self.writer = GroupWriter(self.store, hs.reactor)
        self._rules: dict[str, UserRules] = {}
        self._template = DefaultTemplate.build(hs.server_name)
        self._generation = 0
        self._queues: dict[str, list[tuple[list[StoredEvent], bool]]] = {}
        self._watermark_written = 0.0
        self._pending: Counter[int] = Counter()
        self._waiters: list[tuple[int, Deferred[None]]] = []
        self._listeners: list[NotificationListener] = []
        self.enabled = hs.config.push_rule_evaluation
        self.pipeline = hs.get(EventPipeline)
        self.pipeline.add_persisted_listener(self._on_persisted)
        hs.get(Streams).add_listener(self._on_advance)
        # With event persisters (docs/workers.md) the rooms written elsewhere are followed
        # on the events stream: evaluated here, read back from the database in order.
        self._follow_from: int | None = None
        self._follow_target = 0
        self._following = False

    def add_notification_listener(self, listener: NotificationListener) -> None:
        """``listener(event_notifications)`` after the push rows of one event are committed."""
        self._listeners.append(listener)

    # Keeping up with the pipeline ---------------------------------------------------------

    async def start(self) -> None:
        """Evaluate what a crash left unevaluated (events after the stored watermark), first
        in each room's queue; called before the server serves."""
        if not self.enabled:
            return
        store, events = self.store, self.hs.get(EventStore)
        position = await store.get_evaluated_upto()
        upto = self.hs.get(Streams).current_position("events") or await events.get_max_stream_position()
        ids = await store.get_event_ids_after(position, upto, MAX_CATCH_UP)
        if len(ids) == MAX_CATCH_UP:
            logger.warning("push: more than %d events were never evaluated; the oldest are skipped",
                           MAX_CATCH_UP)
        found = await events.get_events(ids)
        by_room: dict[str, list[StoredEvent]] = {}
        for event_id in ids:
            if event_id in found:
                by_room.setdefault(found[event_id].event.room_id, []).append(found[event_id])
        for room_id, room_events in by_room.items():
            self._enqueue(room_id, room_events, catch_up=True)
        if ids:
            logger.info("push: evaluating %d events missed before the restart", len(ids))
        if self.pipeline.writers is not None:
            self._follow_from = self._follow_target = upto

    def _follow(self, position: int) -> None:
        if self._follow_from is None or position <= self._follow_target:
            return
        self._follow_target = position
        if not self._following:
            self._following = True
            Deferred.fromCoroutine(self._read_followed())

    async def _read_followed(self) -> None:
        """The events other processes persisted up to the stream's token, in stream order."""
        writers, events = self.pipeline.writers, self.hs.get(EventStore)
        assert writers is not None and self._follow_from is not None
        try:
            while self._follow_from < self._follow_target:
                upto = self._follow_target
                ids = await self.store.get_event_ids_after(self._follow_from, upto, MAX_CATCH_UP)
                found = await events.get_events(ids)
                by_room: dict[str, list[StoredEvent]] = {}
                for event_id in ids:
                    stored = found.get(event_id)
                    if stored is not None and writers.elsewhere(stored.event.room_id) is not None:
                        by_room.setdefault(stored.event.room_id, []).append(stored)
                for room_id, room_events in by_room.items():
                    self._enqueue(room_id, room_events, catch_up=False)
                self._follow_from = upto if len(ids) < MAX_CATCH_UP else found[ids[-1]].stream_ordering
        except Exception:  # the next advance tries again from the same position
            logger.exception("push: reading the events persisted elsewhere failed")
        finally:
            self._following = False

    def _on_persisted(self, batch: PersistedBatch) -> None:
        if not self.enabled:
            return
        events = [e for e in batch.timeline_events() if e.stream_ordering > 0]
        if events:
            self._enqueue(batch.room_id, events, catch_up=False)

    def _enqueue(self, room_id: str, events: list[StoredEvent], catch_up: bool) -> None:
        self._pending[min(e.stream_ordering for e in events)] += 1
        queue = self._queues.get(room_id)
        if queue is not None:
            queue.append((events, catch_up))  # its worker is running and will take them
            return
        self._queues[room_id] = [(events, catch_up)]
        Deferred.fromCoroutine(self._work(room_id))

    async def _work(self, room_id: str) -> None:
        """One worker per room: events in stream order, everything queued taken at once."""
        queue = self._queues[room_id]
        try:
            while queue:
                taken = list(queue)
                queue.clear()
                try:
                    await self._evaluate(room_id, [e for events, _ in taken for e in events],
                                         catch_up=any(catch_up for _, catch_up in taken))
                except Exception:
                    logger.exception("push: evaluating events in %s failed", room_id)
                    self.rooms.forget(room_id)
                finally:
                    for events, _ in taken:
                        self._finished(min(e.stream_ordering for e in events))
                await self._maybe_write_watermark()
        finally:
            del self._queues[room_id]

    async def _maybe_write_watermark(self) -> None:
        """Every few seconds at most: the position every event up to which is evaluated.

        The events token only covers committed batches, and each batch's listener call comes
        in the same turn as the token passing it, so nothing at or below the result is unseen.
        """
        now = time.monotonic()
        if now - self._watermark_written < WATERMARK_INTERVAL_S:
            return
        self._watermark_written = now
        position = self.hs.get(Streams).current_position("events")
        if self._pending:
            position = min(position, min(self._pending) - 1)
        if self._follow_from is not None:
            position = min(position, self._follow_from)
        try:
            await self.store.set_evaluated_upto(position)
        except Exception:
            logger.exception("push: storing the evaluated position failed")

    def _finished(self, position: int) -> None:
        self._pending[position] -= 1
        if self._pending[position] <= 0:
            del self._pending[position]
        low = min(self._pending) if self._pending else None
        ready = [w for w in self._waiters if low is None or low > w[0]]
        if ready:
            self._waiters = [w for w in self._waiters if not (low is None or low > w[0])]
            for _position, waiter in ready:
                if not waiter.called:
                    waiter.callback(None)

    async def wait_for(self, position: int, timeout_s: float = WAIT_TIMEOUT_S) -> None:
        """Until every event at or before ``position`` has been evaluated (or the timeout)."""
        if not self._pending or min(self._pending) > position:
            return
        waiter: Deferred[None] = Deferred()
        self._waiters.append((position, waiter))

        def give_up() -> None:
            if not waiter.called:
                waiter.callback(None)

        timer = self.hs.reactor.callLater(timeout_s, give_up)
        await waiter
        if timer.active():
            timer.cancel()

    def _on_advance(self, advance: StreamAdvance) -> None:
        if advance.stream == "events":
            self._follow(advance.position)
        if advance.stream == "account_data" and advance.users:
            self._generation += 1
            for user_id in advance.users:
                self._rules.pop(user_id, None)

    # Evaluation -------------------------------------------------------------------------

    async def _evaluate(self, room_id: str, events: list[StoredEvent], catch_up: bool) -> None:
        context = await self.rooms.get(room_id)
        now = int(time.time() * 1000)
        rows: list[PushAction] = []
        shared: list[SharedPush] = []
        per_event: list[EventNotifications] = []
        # After a crash: the events whose rows were committed are not written or told again.
        written = await self.store.get_written(room_id, [e.stream_ordering for e in events]) if catch_up else set()
        for stored in events:
            outcome = await self._evaluate_one(context, stored, now)
            context.apply(stored.event, self.server_name)
            if outcome is None or stored.stream_ordering in written:
                continue
            found, mine = outcome
            rows.extend(found)
            if mine.shared is not None:
                shared.append(mine.shared)
            if self._listeners and (mine.shared is not None or any(mine.own.values())):
                per_event.append(mine)
        await self.writer.write(rows, shared)
        for notifications in per_event:
            self._tell(notifications)

    def _recipients(self, context: RoomContext, stored: StoredEvent) -> tuple[list[str], str | None]:
        """The local joined members except the sender, and a local invitee not yet joined."""
        event = stored.event
        sender = event.sender
        users = [u for u in context.local_joined(self._suffix) if u != sender]
        target = event.state_key
        if event.type == MEMBER and target is not None and event.content.get("membership") == "invite" \
                and target != sender and target.endswith(self._suffix) and target not in context.joined:
            users.append(target)
            return users, target
        return users, None

    async def _evaluate_one(self, context: RoomContext, stored: StoredEvent,
                            now: int) -> tuple[list[PushAction], EventNotifications] | None:
        """The event's rows (the members who differ from the shared outcome) and what it did.

        Members on the default rules whose personal conditions all fail (nearly everyone, for
        most events) take the shared outcome: no row, no object, one dict lookup each."""
        users, invitee = self._recipients(context, stored)
        if not users:
            return None
        event = stored.event
        rules = await self._rules_for(users)
        pdu = event.pdu
        shown = {key: pdu[key] for key in _EVENT_KEYS if key in pdu}
        shown["event_id"] = event.event_id
        facts = EventFacts(flatten(shown), event.sender, event.room_id, len(context.joined), context.auth,
                           has_mentions="m.mentions" in event.content)
        template = self._template
        plan = SharedPlan.for_event(template, facts)
        candidates = plan.candidates
        joined = context.joined
        sender = event.sender
        decided: dict[str, CompiledRule | None] = {}
        for user_id in users:
            mine = rules[user_id]
            if mine.ignored and sender in mine.ignored:
                decided[user_id] = None
            elif not mine.default:
                decided[user_id] = first_match(mine.rules, facts, joined.get(user_id))
            elif candidates:
                rule = plan.personal_match(template, mine.rules, facts, joined.get(user_id))
                if rule is not None:
                    decided[user_id] = rule
        fallback = plan.fallback_rule(template)
        if invitee is not None and invitee not in decided:
            decided[invitee] = fallback  # the shared row is for joined members only
        thread_id = thread_of(event.content)
        room_id, event_id, position = event.room_id, event.event_id, stored.stream_ordering
        shared = SharedPush(position, room_id, event_id, sender, thread_id, fallback.highlight, fallback.actions,
                            now) if fallback is not None and fallback.notify else None
        rows: list[PushAction] = []
        own: dict[str, Notification | None] = {}
        for user_id, rule in decided.items():
            notify = rule is not None and rule.notify
            row = PushAction(user_id, room_id, event_id, position, thread_id, True, rule.highlight, rule.actions,
                             now) if rule is not None and notify else None
            own[user_id] = row
            if row is not None:
                if shared is None or user_id == invitee or row.highlight != shared.highlight \
                        or row.actions != shared.actions:
                    rows.append(row)
            elif shared is not None and user_id != invitee:
                # Not notified although the shared row says so: a row of their own says not.
                rows.append(PushAction(user_id, room_id, event_id, position, thread_id, False, False, [], now))
        return rows, EventNotifications(shared, users, own)

    async def _rules_for(self, users: Collection[str]) -> dict[str, UserRules]:
        cached = self._rules
        if all(user_id in cached for user_id in users):
            return cached  # used at once, before anything can drop an entry
        result = {}
        missing = []
        for user_id in users:
            rules = cached.get(user_id)
            if rules is None:
                missing.append(user_id)
            else:
                result[user_id] = rules
        if missing:
            generation = self._generation
            stored = await self.account_data.get_global_account_data_for_users(missing, PUSH_RULES_TYPE)
            ignoring = await self.account_data.get_global_account_data_for_users(missing, IGNORED_USERS_TYPE)
            for user_id in missing:
                ruleset = Ruleset.from_account_data(user_id, stored.get(user_id))
                default = not any(ruleset.user_rules.values()) and not ruleset.default_changes
                result[user_id] = UserRules(compile_rules(ruleset.render()), ignored_users(ignoring.get(user_id)),
                                            default)
            if generation == self._generation:
                if len(cached) + len(missing) > MAX_CACHED_RULESETS:
                    cached.clear()
                cached.update((user_id, result[user_id]) for user_id in missing)
        return result

    def _tell(self, notifications: EventNotifications) -> None:
        for listener in self._listeners:
            try:
                outcome = listener(notifications)
                if inspect.isawaitable(outcome):
                    Deferred.fromCoroutine(_logged(outcome))
            except Exception:
                logger.exception("push: a notification listener failed")


async def _logged(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("push: a notification listener failed")
