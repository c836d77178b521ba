"""The pusher pool: every notification of a user goes to each of that user's pushers.

Flow: the push rule evaluator calls ``on_notifications`` after an event's push actions are
committed; each notification that says ``notify`` is queued (a row per pusher, in one
transaction) and each pusher's queue is worked off oldest first, one POST per notification.
A row is deleted as soon as the gateway took it, so a restart resumes exactly where delivery
stopped and sends nothing twice (except the one in flight if the process dies mid-request).

When a gateway fails, the pusher backs off: 1 s, doubled after every failure, capped at an hour
(Synapse's values), persisted as the pusher's ``failing_since``/``backoff_ms`` and a timer of
the one timer service, so the retry survives a restart. A notification that still cannot be
delivered after ``GIVE_UP_AFTER_MS`` (a day) of failures is dropped, so one dead gateway does
not hold later notifications back forever. Pushkeys the gateway lists in ``rejected`` are
removed: their pusher is deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred

from homeserver.handlers.accounts.account import AccountHandler
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.accounts.devices import DeviceHandler
from homeserver.handlers.push.notifications import (
    EventNotifications,
    Notification,
    PushRuleEvaluator,
)
from homeserver.handlers.pushers.badge import BadgeUpdates
from homeserver.handlers.pushers.http_pusher import HttpPusher
from homeserver.handlers.pushers.settings import PusherSettings
from homeserver.handlers.timers import TimerService
from homeserver.server import Server
from storage.engine import DatabaseClosedError
from storage.stores.push_actions import PushActionsStore
from storage.stores.pushers import PUSHER_TIMER, Pusher, PusherStore, QueuedNotification

logger = logging.getLogger(__name__)

INITIAL_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 60 * 60 * 1000
GIVE_UP_AFTER_MS = 24 * 60 * 60 * 1000
#: After an unexpected error (the database away), when to try a pusher's queue again.
ERROR_RETRY_S = 30
#: What one delivery means for the rest of the batch.
NEXT, REREAD, STOP = "next", "reread", "stop"
#: Queued notifications read per query while a pusher works off its queue.
BATCH = 50


def wants_push(actions: Sequence[Any]) -> bool:
    return "notify" in actions


class PusherPool:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(PusherStore)
        self.http = hs.get(HttpPusher)
        self.timers = hs.get(TimerService)
        self.timers.register(PUSHER_TIMER, self._on_timer)
        self.push_actions = hs.get(PushActionsStore)
        settings = hs.get(PusherSettings)
        hs.get(DeviceHandler).on_devices_deleted.append(settings.on_devices_deleted)
        hs.get(AccountHandler).on_user_deactivated.append(settings.on_user_deactivated)
        hs.get(PushRuleEvaluator).add_notification_listener(self.on_notifications)
        hs.get(BadgeUpdates)  # a read receipt sends the user's pushers the new badge
        self._running: set[int] = set()
        self._again: set[int] = set()
        self._stopped = False
        hs.reactor.addSystemEventTrigger("before", "shutdown", self.stop)

    def stop(self) -> None:
        """Shutting down: start nothing new (what is queued waits for the next start)."""
        self._stopped = True

    async def start(self) -> None:
        """Resume every pusher that still has queued notifications (after a restart)."""
        for pusher in await self.store.get_pushers_with_queue():
            self.kick(pusher.id)

    # -- input -------------------------------------------------------------------------

    def on_notifications(self, notifications: EventNotifications) -> None:
        """The push rows of one event are committed: queue and send in the background."""
        Deferred.fromCoroutine(self._queue(notifications)).addErrback(
            lambda failure: logger.error("pushers: queueing notifications failed: %s", failure.getTraceback()))

    async def _queue(self, event: EventNotifications) -> None:
        # The users with pushers are few and kept in memory: only they are looked at.
        users = await self.store.users_with_pushers(event.recipients)
        if not users:
            return
        found = [event.for_user(user_id) for user_id in sorted(users)]
        notifications: list[Notification] = [n for n in found if n is not None and wants_push(n.actions)]
        if not notifications:
            return
        pushers = await self.store.get_pushers_for_users(users)
        by_user: dict[str, list[Pusher]] = {}
        for pusher in pushers:
            by_user.setdefault(pusher.user_id, []).append(pusher)
        items = [(pusher.id, n.stream_ordering, n.event_id, n.room_id, list(n.actions))
                 for n in notifications for pusher in by_user.get(n.user_id, ())
                 if n.stream_ordering > pusher.since_stream]
        await self.store.enqueue(items, now_ms(self.hs))
        for pusher in pushers:
            if pusher.failing_since is None:  # a failing one waits for its retry timer
                self.kick(pusher.id)

    def pusher_changed(self, pusher: Pusher | None) -> None:
        """A pusher was set again (its failure state is reset): deliver what it has queued."""
        if pusher is not None:
            self.kick(pusher.id)

    async def _on_timer(self, key: str) -> None:
        # Not awaited: a slow gateway must not hold up the timer service. A crash meanwhile
        # loses nothing, since start() resumes every pusher with a queue.
        self.kick(int(key))

    # -- delivery ----------------------------------------------------------------------

    def kick(self, pusher_id: int) -> None:
        """Work off this pusher's queue now (once at a time per pusher)."""
        if self._stopped:
            return
        if pusher_id in self._running:
            self._again.add(pusher_id)
            return
        Deferred.fromCoroutine(self._process(pusher_id))

    async def _process(self, pusher_id: int) -> None:
        self._running.add(pusher_id)
        try:
            while True:
                self._again.discard(pusher_id)
                await self._work_off(pusher_id)
                if pusher_id not in self._again or self._stopped:
                    return
        except DatabaseClosedError:  # shutting down; the queue is still there at the next start
            return
        except Exception:  # the database may be away for a moment: look again later
            logger.exception("pushers: delivering for pusher %d failed; retrying in %d s", pusher_id,
                             ERROR_RETRY_S)
            self.hs.reactor.callLater(ERROR_RETRY_S, self.kick, pusher_id)
        finally:
            self._running.discard(pusher_id)

    async def _work_off(self, pusher_id: int) -> None:
        while not self._stopped:
            pusher = await self.store.get_pusher(pusher_id)
            queued = await self.store.get_queued(pusher_id, BATCH) if pusher is not None else []
            if pusher is None or not queued:
                return
            # One badge per batch: the count as it is now, for every notification sent now.
            unread = await self._unread(pusher.user_id)
            for item in queued:
                if self._stopped:
                    return
                outcome = await self._deliver(pusher, item, unread)
                if outcome == STOP:
                    return
                if outcome == REREAD:
                    break

    async def _deliver(self, pusher: Pusher, item: QueuedNotification, unread: int) -> str:
        """Send one notification: NEXT, REREAD (the pusher's state changed) or STOP (backing
        off, or the pusher was removed)."""
        was_failing = pusher.failing_since is not None
        body = await self.http.build(pusher, item, unread)
        if body is None:  # the event is gone: nothing to tell
            exists = await self.store.mark_sent(pusher.id, item.stream_ordering, was_failing)
            return STOP if not exists else REREAD if was_failing else NEXT
        result = await self.http.send(pusher, body)
        if not result.delivered:
            return await self._failed(pusher, item)
        exists = await self.store.mark_sent(pusher.id, item.stream_ordering, was_failing)
        if not exists:  # deleted while this request was out
            return STOP
        if pusher.pushkey in result.rejected:
            logger.info("pushers: the gateway rejected the pushkey of pusher %d (%s); removing it",
                        pusher.id, pusher.app_id)
            await self.store.delete_pusher_by_id(pusher.id)
            return STOP
        return REREAD if was_failing else NEXT

    async def _failed(self, pusher: Pusher, item: QueuedNotification) -> str:
        now = now_ms(self.hs)
        failing_since = pusher.failing_since if pusher.failing_since is not None else now
        if now - failing_since >= GIVE_UP_AFTER_MS:
            logger.warning("pushers: giving up on %s for pusher %d after a day of failures",
                           item.event_id, pusher.id)
            exists = await self.store.mark_sent(pusher.id, item.stream_ordering, was_failing=True)
            return REREAD if exists else STOP
        backoff = min(max(pusher.backoff_ms * 2, INITIAL_BACKOFF_MS), MAX_BACKOFF_MS)
        await self.store.mark_failing(pusher.id, failing_since, backoff, now + backoff)
        self.timers.timer_set(now + backoff)
        return STOP

    async def _unread(self, user_id: str) -> int:
        """``counts.unread``: the user's badge, read at send time (so it is current)."""
        return await self.push_actions.get_badge_count(user_id)
