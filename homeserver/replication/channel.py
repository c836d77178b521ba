"""The replication channel: stream advances and cache invalidations over Redis pub/sub.

Every process holds two Redis connections: one subscribed to the server's channel, one for
commands (PUBLISH, and the hash of each stream's latest position).  A writer publishes each
local advance of the ``Streams`` registry (stream, writer, position, users, rooms) and records
the position in the hash; a follower feeds what it hears into ``Streams.replicated``, so the
notifier, the WebSocket hub and every other listener hear it exactly as in one process.

Nothing is lost to a missed message: positions only grow, and whenever either connection
(re)connects, writers record and publish their current positions again, and followers read
the hash back, each such catch-up waking every waiter (``StreamAdvance.everyone``) because
it cannot say whom the missed advances concerned.  Readers then take the events themselves
from the shared database, up to the position.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import txredisapi
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint

from homeserver.config.workers import instance_name
from homeserver.server import Server
from storage.streams import StreamAdvance, Streams

logger = logging.getLogger(__name__)

PayloadProvider = Callable[[StreamAdvance], Any]
PayloadReceiver = Callable[[StreamAdvance, Any], None]
CacheReceiver = Callable[[list[str]], None]


class _HookedFactory(txredisapi.RedisFactory):
    """A reconnecting Redis connection that reports each (re)connection and loss."""

    def __init__(
        self, on_up: Callable[[Any], None], on_down: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(None, kwargs.pop("dbid"), 1, isLazy=True, password=kwargs.pop("password"))
        self._on_up = on_up
        self._on_down = on_down

    def addConnection(self, conn: Any) -> None:
        super().addConnection(conn)
        if conn.connected:
            self._on_up(conn)

    def delConnection(self, conn: Any) -> None:
        super().delConnection(conn)
        self._on_down()


class _SubscriberProtocol(txredisapi.SubscriberProtocol):
    def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
        self.factory.on_message(message)


class _SubscriberFactory(_HookedFactory):
    protocol = _SubscriberProtocol

    def __init__(self, on_message: Callable[[Any], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_message = on_message


class ReplicationChannel:
    """One process's end of the channel (built by homeserver/worker_setup.py when Redis is on)."""

    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.streams: Streams = hs.get(Streams)
        self.instance = instance_name(hs.config)
        self.channel = f"vignette/{hs.server_name}/replication"
        self.positions_key = f"vignette/{hs.server_name}/positions"
        #: Our connections' CLIENT SETNAME, so an operator (or a test) can tell them apart.
        self.client_name = f"vignette/{hs.server_name}/{self.instance}"
        self._commands: Any = None
        self._subscribed = False
        self._payloads: dict[str, tuple[PayloadProvider, PayloadReceiver]] = {}
        self._caches: dict[str, CacheReceiver] = {}
        self._factories: list[_HookedFactory] = []
        #: Ready-made counters for tests and metrics: messages heard, catch-ups done.
        self.received = 0
        self.catch_ups = 0

    # -- hooks other areas register (from worker_setup) ---------------------------------

    def add_stream_payload(
        self, stream: str, provide: PayloadProvider, receive: PayloadReceiver
    ) -> None:
        """Data that travels with a stream's advances (typing: who types in those rooms)."""
        self._payloads[stream] = (provide, receive)

    def add_cache(self, name: str, receive: CacheReceiver) -> None:
        """``receive(keys)`` drops keys of cache ``name`` that another process invalidated."""
        self._caches[name] = receive

    # -- connections ----------------------------------------------------------------------

    def start(self) -> None:
        section = self.hs.config.redis
        options = {"dbid": section.dbid, "password": section.password}
        commands = _HookedFactory(self._commands_up, self._commands_down, **options)
        subscriber = _SubscriberFactory(
            self._on_message, on_up=self._subscriber_up, on_down=self._subscriber_down, **options
        )
        endpoint_class = TCP6ClientEndpoint if ":" in section.host else TCP4ClientEndpoint
        for factory in (commands, subscriber):
            factory.startConnecting(
                endpoint_class(self.hs.reactor, section.host, section.port, timeout=5)
            )
            self._factories.append(factory)
        self.streams.add_listener(self._on_local_advance)
        # A stream several instances write (events, with persisters): we publish our own
        # position, never the shared token (storage/sharded_stream.py).
        self.streams.add_own_listener(self._publish_advance)

    async def stop(self) -> None:
        for factory in self._factories:
            await factory.disconnect()
        self._factories = []

    @property
    def connected(self) -> bool:
        return self._commands is not None and self._subscribed

    def _commands_up(self, conn: Any) -> None:
        conn.execute_command("CLIENT", "SETNAME", self.client_name).addErrback(self._log_failure)
        self._commands = conn
        logger.info("replication: connected to Redis as %s", self.instance)
        self._announce_all_positions()
        if self._subscribed:
            self._catch_up()

    def _commands_down(self) -> None:
        if self._commands is not None:
            logger.warning(
                "replication: lost the Redis command connection; catching up on reconnect"
            )
        self._commands = None

    def _subscriber_up(self, conn: Any) -> None:
        conn.execute_command("CLIENT", "SETNAME", self.client_name).addErrback(self._log_failure)
        conn.subscribe(self.channel).addCallbacks(self._subscribed_now, self._log_failure)

    def _subscribed_now(self, _: Any) -> None:
        self._subscribed = True
        if self._commands is not None:
            self._catch_up()

    def _subscriber_down(self) -> None:
        self._subscribed = False

    # -- writing ------------------------------------------------------------------------

    def _on_local_advance(self, advance: StreamAdvance) -> None:
        if self.streams.writes_here(advance.stream) and not self.streams.is_sharded(advance.stream):
            self._publish_advance(advance)

    def _position_field(self, stream: str) -> str:
        """The hash field of our position: per writer for a stream several instances write."""
        return f"{stream}/{self.instance}" if self.streams.is_sharded(stream) else stream

    def _publish_advance(self, advance: StreamAdvance) -> None:
        if self._commands is None:
            return  # announced again, as a catch-up, once Redis is back
        message: dict[str, Any] = {
            "type": "advance",
            "instance": self.instance,
            "stream": advance.stream,
            "position": advance.position,
            "users": sorted(advance.users),
            "rooms": sorted(advance.rooms),
        }
        if advance.everyone:
            message["everyone"] = True
        hooks = self._payloads.get(advance.stream)
        if hooks is not None:
            message["payload"] = hooks[0](advance)
        self._send(message, record=(self._position_field(advance.stream), advance.position))

    def invalidate(self, cache: str, keys: list[str]) -> None:
        """Tell the other processes to drop ``keys`` from their cache ``cache``."""
        if self._commands is not None and keys:
            self._send({"type": "cache", "instance": self.instance, "cache": cache, "keys": keys})

    def _send(self, message: dict[str, Any], record: tuple[str, int] | None = None) -> None:
        conn = self._commands
        if record is not None:
            conn.hset(self.positions_key, record[0], record[1]).addErrback(self._log_failure)
        conn.publish(self.channel, json.dumps(message)).addErrback(self._log_failure)

    def _announce_all_positions(self) -> None:
        for stream, position in self.streams.local_positions().items():
            self._publish_advance(
                StreamAdvance(stream, position, frozenset(), frozenset(), everyone=True)
            )

    # -- reading ------------------------------------------------------------------------

    def _catch_up(self) -> None:
        """Both connections are up: read every stream's last recorded position back."""
        self._commands.hgetall(self.positions_key).addCallbacks(self._caught_up, self._log_failure)

    def _caught_up(self, recorded: Any) -> None:
        self.catch_ups += 1
        for stream, position in (recorded or {}).items():
            name = stream.decode() if isinstance(stream, bytes) else str(stream)
            name, _, writer = name.partition("/")
            advance = StreamAdvance(name, int(position), frozenset(), frozenset(), everyone=True)
            if self.streams.is_sharded(name):
                if writer and writer != self.instance:
                    self.streams.replicated_from(writer, advance)
            elif not writer and not self.streams.writes_here(name):
                self.streams.replicated(advance)

    def _on_message(self, raw: Any) -> None:
        try:
            message = json.loads(raw)
            if message.get("instance") == self.instance:
                return
            self.received += 1
            if message["type"] == "advance":
                self._apply_advance(message)
            elif message["type"] == "cache":
                receive = self._caches.get(message["cache"])
                if receive is not None:
                    receive([str(key) for key in message["keys"]])
        except Exception:  # one bad message must not stop the channel
            logger.exception("replication: could not apply a message")

    def _apply_advance(self, message: dict[str, Any]) -> None:
        stream = str(message["stream"])
        sharded = self.streams.is_sharded(stream)
        if self.streams.writes_here(stream) and not sharded:
            return
        advance = StreamAdvance(
            stream,
            int(message["position"]),
            frozenset(message["users"]),
            frozenset(message["rooms"]),
            everyone=bool(message.get("everyone")),
        )
        hooks = self._payloads.get(stream)
        if hooks is not None and "payload" in message:
            hooks[1](advance, message["payload"])  # before the wake-up, so readers see it
        if sharded:
            self.streams.replicated_from(str(message["instance"]), advance)
        else:
            self.streams.replicated(advance)

    @staticmethod
    def _log_failure(failure: Any) -> None:
        logger.warning("replication: Redis command failed: %s", failure.getErrorMessage())
