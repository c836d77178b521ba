"""The worker kinds besides the client reader (docs/workers.md): composition only.

- **federation sender** (``federation_sender_instances``, or Synapse's older
  ``send_federation: false`` with a ``federation_sender`` worker): the one process that sends
  transactions; every other process hands what it queues over (federation/sender/replicated.py).
- **federation reader**: a worker with a ``federation`` (or ``keys``) listener answers the
  read routes of the server-server API itself; writes (``/send``, joins, invites) go to the
  main process, which writes the events, by the same forwarding as a client reader's.
- **media** (``enable_media_repo``): the process that serves /_matrix/media and
  /_matrix/client/v1/media (and federation media downloads); the main process stops
  serving them when its ``enable_media_repo`` is false.
- **background jobs** (``run_background_tasks_on``, ``media_instance_running_background_jobs``):
  retention purges, the expiry of to-device messages, MLS commits and unused media IDs, and
  the timers of delayed events and self-destructing messages run there and nowhere else (the
  events they send go to the room's writer through the pipeline, as any other process's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from federation.api import FEDERATION_API_MODULES
from federation.api import media as federation_media
from federation.sender import EduForwarder, FederationSender
from federation.sender.device_lists import DeviceListForwarder
from federation.sender.replicated import ReplicatedSenderFeed
from federation.transport.auth import FederationAuth
from homeserver.api import media
from homeserver.config.workers import (
    event_writers,
    instance_name,
    is_worker,
    runs_background_tasks,
    sends_federation,
    serves_media,
)
from homeserver.handlers.e2ee.to_device import ToDeviceHandler
from homeserver.handlers.mls.hygiene import MlsHygiene
from homeserver.handlers.rooms.delayed_events import DelayedEventsHandler
from homeserver.handlers.rooms.retention import RETENTION_TIMER, RetentionHandler
from homeserver.handlers.rooms.self_destruct import SelfDestructHandler
from homeserver.handlers.timers import TimerService
from homeserver.http.router import Router
from homeserver.replication.channel import ReplicationChannel
from homeserver.server import Server
from storage.stores.delayed_events import DELAYED_EVENT_TIMER
from storage.stores.self_destruct import SELF_DESTRUCT_TIMER

logger = logging.getLogger(__name__)

#: The timer kinds that fire on the background-jobs process only (homeserver/handlers/timers.py).
BACKGROUND_TIMERS = frozenset({RETENTION_TIMER, DELAYED_EVENT_TIMER, SELF_DESTRUCT_TIMER})
#: The channel's name for "a timer was written for this time" (the keys are due times in ms).
TIMERS_HANDOVER = "timers"
#: The modules of the media repository (client and federation downloads).
MEDIA_MODULES: tuple[ModuleType, ...] = (media, federation_media)
#: The channel's name for "look at this destination's queue" (the keys are server names).
FEDERATION_HANDOVER = "federation_queue"
#: ... and for "this server just reached us with a valid signature" (stop backing off).
FEDERATION_CONTACT = "federation_contact"


def serves_module(hs: Server, module: ModuleType) -> bool:
    """Whether the main process registers a module (its media ones only if it serves media)."""
    return module not in MEDIA_MODULES or serves_media(hs.config)


def register_worker_routes(hs: Server, router: Router, modules: list[ModuleType], reads: Any) -> None:
    """A worker's routes besides the client reads: federation reads, and the whole media
    repository where it is served.  ``reads`` keeps only the read routes of a module."""
    for module in modules:
        if module in MEDIA_MODULES:
            if serves_media(hs.config):
                module.register_routes(router, hs)
        elif module in FEDERATION_API_MODULES:
            module.register_routes(reads, hs)


def wire_replication(hs: Server, channel: ReplicationChannel) -> None:
    """Before the channel starts: timers and federation queue hand-overs, to or from the
    process that fires or sends."""
    timers = hs.get(TimerService)
    if runs_background_tasks(hs.config):
        channel.add_cache(TIMERS_HANDOVER, timers.handed_over)
    else:
        timers.handover = lambda due: channel.invalidate(TIMERS_HANDOVER, [str(due)])
    sender = hs.get(FederationSender)
    if sends_federation(hs.config):
        feed = hs.get(ReplicatedSenderFeed)
        channel.add_cache(FEDERATION_HANDOVER, feed.on_handover)
        channel.add_cache(FEDERATION_CONTACT, feed.on_contact)
        return
    sender.handover = lambda destination: channel.invalidate(FEDERATION_HANDOVER, [destination])
    contacts = ContactRelay(hs.reactor, lambda origin: channel.invalidate(FEDERATION_CONTACT, [origin]))
    hs.get(FederationAuth).on_authenticated.append(contacts.on_authenticated)


class ContactRelay:
    """Tells the sender of peers that reached this process, at most once a minute per peer
    (the sender resets its backoff for them; one in-process hook call per request is cheap,
    one Redis message per request would not be)."""

    def __init__(self, reactor: Any, relay: Callable[[str], None], every_s: float = 60.0) -> None:
        self.reactor = reactor
        self.relay = relay
        self.every_s = every_s
        self._last: dict[str, float] = {}

    async def on_authenticated(self, origin: str) -> None:
        now = self.reactor.seconds()
        if now - self._last.get(origin, -self.every_s) >= self.every_s:
            if len(self._last) > 10_000:
                self._last.clear()
            self._last[origin] = now
            self.relay(origin)


async def start_worker_background(hs: Server) -> None:
    """A worker's background work: the federation sender and the background jobs it was given."""
    if not is_worker(hs.config):
        return
    if sends_federation(hs.config):
        await hs.get(FederationSender).start()
        await hs.get(EduForwarder).start()
        await hs.get(DeviceListForwarder).start()
        hs.get(ReplicatedSenderFeed).start()
    if runs_background_tasks(hs.config):
        await hs.get(ToDeviceHandler).prepare()  # its inbox expiry
        hs.get(MlsHygiene).start_purge()  # the MLS commit log's expiry
        await hs.get(RetentionHandler).start()
        await start_timed_jobs(hs)
        timers = hs.get(TimerService)
        timers.keep_only(BACKGROUND_TIMERS)
        timers.poll()
        await timers.start()
    elif instance_name(hs.config) in event_writers(hs.config):
        # A persister sees its rooms' self-destructing messages persisted and read: it
        # writes their timers (handed to the background process) but fires none.
        await start_self_destruct(hs)


async def start_timed_jobs(hs: Server) -> None:
    """On the background-jobs process, before its timers start: the owners of the timers
    that send events (delayed events) or expunge them (self-destruct) catch up."""
    try:
        await hs.get(DelayedEventsHandler).start()
    except Exception:  # its state check runs again with the next event in each room
        logger.exception("delayed events: the start-up state check failed")
    await start_self_destruct(hs)


async def start_self_destruct(hs: Server) -> None:
    try:
        await hs.get(SelfDestructHandler).start()
    except Exception:  # each room is checked again with its next receipt
        logger.exception("self-destruct: the start-up read check failed")
