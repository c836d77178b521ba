"""What differs when a process is one of several (docs/workers.md): composition only.

- Every process: streams written elsewhere are followed (``Streams.follow``), and with
  ``redis.enabled`` the replication channel carries advances, typing and cache drops.
- A worker serves the read (GET) routes of ``CLIENT_READER_MODULES`` and forwards
  everything else to the main process; it runs none of the main process's background
  work, except the federation sender when ``federation_sender_instances`` names it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from homeserver import worker_roles
from homeserver.api import (
    account_data,
    capabilities,
    filter,
    health,
    metrics,
    notifications,
    presence,
    profile,
    relations,
    room_history,
    room_state,
    room_tags,
    sync,
    versions,
    websocket,
)
from homeserver.config.workers import (
    SHARDED_STREAM,
    STREAM_NAMES,
    events_sharded,
    instance_name,
    is_worker,
    stream_writer,
)
from homeserver.handlers.ephemeral.typing import TypingHandler
from homeserver.handlers.forwarding import WriterForwarding
from homeserver.http.router import Router
from homeserver.replication import persisters
from homeserver.replication.channel import ReplicationChannel
from homeserver.replication.forward import ForwardingResource, InstanceClient
from homeserver.server import Server
from storage.stores.access_tokens import AccessTokenStore
from storage.stores.e2e_fallback_keys import E2eFallbackKeysStore
from storage.stores.e2e_one_time_keys import E2eOneTimeKeysStore
from storage.stores.events import EventStore
from storage.stores.relations import RelationsStore
from storage.stores.room_members import RoomMemberStore
from storage.streams import Streams

#: The modules whose GET routes a worker answers itself: /sync, the WebSocket stream,
#: /messages, /context, state, relations and the other reads.
CLIENT_READER_MODULES: tuple[ModuleType, ...] = (
    health,
    metrics,
    versions,
    sync,
    websocket,
    room_history,
    room_state,
    relations,
    profile,
    presence,
    account_data,
    room_tags,
    filter,
    capabilities,
    notifications,
)
READ_METHODS = frozenset({"GET", "HEAD"})


class ReadRoutes:
    """A router front that keeps only a module's read routes (its writes go to main)."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def add(self, method: Any, pattern: Any, handler: Any, spool: Any = None) -> None:
        methods = [method] if isinstance(method, str) else list(method)
        kept = [verb for verb in methods if verb in READ_METHODS]
        if kept:
            self.router.add(kept, pattern, handler, spool)


def follow_streams(hs: Server) -> None:
    """Before any stream is opened: follow every stream another instance writes."""
    here = instance_name(hs.config)
    streams = hs.get(Streams)
    sharded = events_sharded(hs.config)
    for name in STREAM_NAMES:
        writer = stream_writer(hs.config, name)
        if writer != here and not (sharded and name == SHARDED_STREAM):
            streams.follow(name, writer)
    persisters.setup(hs)  # events written by persisters, rooms sharded over them
    if is_worker(hs.config) or sharded:
        uncached_reads(hs)


def uncached_reads(hs: Server) -> None:
    """The store caches that the event writer's commits drop would go stale in a
    process that writes nothing: a worker reads those answers from the database every time."""
    hs.get(RoomMemberStore).caching = False
    hs.get(RelationsStore).caching = False
    hs.get(E2eOneTimeKeysStore).counts.enabled = False
    hs.get(E2eFallbackKeysStore).unused.enabled = False


def forward_writes(hs: Server) -> None:
    """A worker's non-HTTP writes (WebSocket requests) go to the main process."""
    if is_worker(hs.config):
        hs.get(WriterForwarding).forward = hs.get(InstanceClient).call_main


def start_replication(hs: Server) -> None:
    """Connect the channel (when Redis is on) and register what travels over it."""
    if not hs.config.redis.enabled:
        return
    channel = hs.get(ReplicationChannel)
    typing = hs.get(TypingHandler)
    channel.add_stream_payload("typing", typing.replication_payload, typing.apply_replicated)
    events = hs.get(EventStore)
    events.add_invalidation_listener(lambda event_id: channel.invalidate("events", [event_id]))

    def drop_events(keys: list[str]) -> None:
        for key in keys:
            events.invalidate(key, replicated=True)

    channel.add_cache("events", drop_events)
    tokens = hs.get(AccessTokenStore)
    tokens.add_invalidation_listener(lambda user_id: channel.invalidate("access_tokens", [user_id]))

    def drop_tokens(user_ids: list[str]) -> None:
        for user_id in user_ids:
            tokens.invalidate_user(user_id, replicated=True)

    channel.add_cache("access_tokens", drop_tokens)
    worker_roles.wire_replication(hs, channel)
    channel.start()


async def open_shared_streams(hs: Server) -> None:
    """After the channel is up: writers of a stream several instances share exist from the
    start, so they publish their position before anything is written here."""
    await persisters.open_writer(hs)


def register_routes(hs: Server, router: Router, modules: list[ModuleType]) -> None:
    """A worker's routes: the read routes of the client-reader modules it listens for."""
    reads = ReadRoutes(router)
    for module in modules:
        if module in CLIENT_READER_MODULES:
            module.register_routes(reads, hs)
    worker_roles.register_worker_routes(hs, router, modules, reads)


def fallback(hs: Server) -> ForwardingResource | None:
    return ForwardingResource(hs) if is_worker(hs.config) else None


def serves_raw(hs: Server, module: ModuleType) -> bool:
    """Whether this process mounts a module's non-JSON resources (the WebSocket stream)."""
    return not is_worker(hs.config) or module in CLIENT_READER_MODULES
