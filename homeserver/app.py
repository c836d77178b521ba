"""The HomeServer: one object that owns config, storage and the lazily built components."""

from __future__ import annotations

import logging
import os
from typing import Any, TypeVar, cast

from twisted.internet import ssl
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IReactorCore
from twisted.web.resource import Resource
from twisted.web.server import Site

from federation.e2ee_client import FederationKeyServers
from federation.media_fetcher import FederationMediaFetcher
from federation.membership.partial_state import PartialStateResync
from federation.membership.remote import FederationRemoteRooms
from federation.mls_client import FederationMlsServers
from federation.receiver.edus import EduRegistry
from federation.receiver.transaction import TransactionReceiver
from federation.remote_directory import RemoteDirectory
from federation.sender import EduForwarder, FederationSender
from federation.sender.device_lists import DeviceListForwarder
from federation.sender.replicated import ReplicatedSenderFeed
from homeserver import worker_roles, worker_setup
from homeserver.api import modules_for_resources
from homeserver.app_metrics import wire_metrics
from homeserver.config.schema import HomeserverConfig, Listener
from homeserver.config.workers import (
    background_elsewhere,
    is_worker,
    sends_federation,
    uses_workers,
)
from homeserver.events.builder import ServerSigningKey
from homeserver.handlers.admin.ratelimits import RatelimitOverrides
from homeserver.handlers.e2ee.remote_device_lists import RemoteDeviceLists
from homeserver.handlers.e2ee.remote_keys import RemoteKeys
from homeserver.handlers.media.sources import RemoteMediaSource
from homeserver.handlers.mls.federated import COMMIT_EDU, MlsFederation, MlsRemote
from homeserver.handlers.mls.hygiene import MlsHygiene
from homeserver.handlers.push.notifications import PushRuleEvaluator
from homeserver.handlers.pushers.pool import PusherPool
from homeserver.handlers.rooms.hierarchy import HierarchyHandler
from homeserver.handlers.rooms.remote_rooms import RemoteRooms
from homeserver.handlers.rooms.retention import RetentionHandler
from homeserver.handlers.timers import TimerService
from homeserver.http.request import bounded_request_factory
from homeserver.http.resource import JsonApiResource, ListenerRoot
from homeserver.http.router import Router
from homeserver.notifier import Notifier
from homeserver.replication import persisters
from homeserver.replication.channel import ReplicationChannel
from homeserver.server import Clock, Server
from homeserver.signing_key import read_signing_keys
from storage.engine import Database, create_database
from storage.migrate import prepare_database

logger = logging.getLogger(__name__)
T = TypeVar("T")


class QuietSite(Site):
    """Our resource writes its own access log line; Twisted's would duplicate it."""

    def log(self, request: Any) -> None:
        pass


class HomeServer:
    """Holds what every component needs and builds each component once, on demand.

    ``hs.get(SomeHandler)`` constructs ``SomeHandler(hs)`` the first time and
    returns the same instance afterwards, so areas of the server can depend
    on one another without a central list that every change has to edit.
    """

    def __init__(self, config: HomeserverConfig, reactor: IReactorCore,
                 clock: Clock | None = None) -> None:
        self.config = config
        #: Untyped for the same reason as Server.reactor: zope interfaces compose badly.
        self.reactor: Any = reactor
        #: Where event timestamps come from; tests hand in a fake clock.
        self.clock: Clock = clock if clock is not None else cast(Clock, reactor)
        self.server_name = config.server_name
        self.signing_keys: list[ServerSigningKey] = [
            ServerSigningKey(config.server_name, entry.key_id, entry.key)
            for entry in read_signing_keys(config.signing_key_path)
        ]
        self.signing_key = self.signing_keys[0]
        self._db: Database | None = None
        self._components: dict[type, Any] = {}
        self._ports: list[IListeningPort] = []

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the database is not open yet; call setup() first")
        return self._db

    def get(self, cls: type[T]) -> T:
        component = self._components.get(cls)
        if component is None:
            component = cls(self)  # type: ignore[call-arg]
            self._components[cls] = component
        return component

    async def setup(self) -> None:
        """Open the database and bring its schema up to date."""
        self._db = create_database({"name": self.config.database.name, "args": dict(self.config.database.args)})
        await prepare_database(self._db)
        wire_metrics(self)  # before anything runs a transaction or persists an event
        # In a set of processes, the streams other instances write are followed (docs/workers.md).
        worker_setup.follow_streams(self)
        worker_setup.forward_writes(self)
        # The notifier listens to every stream from the start, so no announcement is missed.
        self.get(Notifier)
        worker_setup.start_replication(self)
        await worker_setup.open_shared_streams(self)
        if is_worker(self.config):
            self.get(RemoteRooms).joiner = self.get(FederationRemoteRooms)
            self.get(HierarchyHandler).remote = self.get(RemoteDirectory)
            return  # push rules and pushers run where events are persisted
        # The pushers listen to the push rule evaluator (and to deleted devices) before it
        # evaluates anything, the events a crash left unevaluated included.
        self.get(PusherPool)
        # Push rules are evaluated for every event persisted from now on, and for those a
        # crash left unevaluated.
        await self.get(PushRuleEvaluator).start()
        # Admins' per-user message limits, before the first message is counted.
        await self.get(RatelimitOverrides).load()
        # Handlers reach rooms on other servers through this hook (they may not import federation).
        self.get(RemoteRooms).joiner = self.get(FederationRemoteRooms)
        self.get(HierarchyHandler).remote = self.get(RemoteDirectory)
        self.get(RemoteMediaSource).fetcher = self.get(FederationMediaFetcher)
        self.get(RemoteKeys).servers = self.get(FederationKeyServers)
        self.get(MlsRemote).servers = self.get(FederationMlsServers)
        self.get(EduRegistry).register(COMMIT_EDU, self.get(MlsFederation).on_commit_edu)

    async def start_background_work(self) -> None:
        """What runs on its own once we serve: persisted timers, including those that fell
        due while the server was down (they fire now), and the federation sender with what
        its queues hold. Every timer owner is built first, so each has registered its kind
        before the first due timer is read. A worker runs only what it was given
        (docs/workers.md, homeserver/worker_roles.py)."""
        if is_worker(self.config):
            await worker_roles.start_worker_background(self)
            return
        if not background_elsewhere(self.config):
            await worker_roles.start_timed_jobs(self)
        try:
            await self.get(PusherPool).start()  # resume queued pushes; retries register their timer kind
        except Exception:  # each pusher resumes with its next notification
            logger.exception("pushers: resuming queued notifications failed")
        try:
            await self.get(RetentionHandler).start()
        except Exception:  # its jobs keep the timers they had
            logger.exception("retention: setting up the purge jobs failed")
        timers = self.get(TimerService)
        if background_elsewhere(self.config):  # they fire there, and only there
            timers.drop(worker_roles.BACKGROUND_TIMERS)
        elif uses_workers(self.config):  # other processes write timers fired here
            timers.poll()
        await timers.start()  # never raises: it retries on its own
        # Inbound transactions a crash left unanswered, worked on again from their stored PDUs
        # (in the background: they may need to fetch from their origin).
        Deferred.fromCoroutine(self.get(TransactionReceiver).recover())
        # Rooms joined with partial state that a restart interrupted complete their state.
        Deferred.fromCoroutine(self.get(PartialStateResync).resume()).addErrback(
            lambda failure: logger.error("partial-state resync at start-up failed: %s", failure.getErrorMessage()))
        try:
            if sends_federation(self.config):
                await self.get(FederationSender).start()
                await self.get(EduForwarder).start()
                await self.get(DeviceListForwarder).start()
                if self.get(FederationSender).follows_events_stream():  # events on persisters
                    self.get(ReplicatedSenderFeed).start()
            await self.get(RemoteDeviceLists).start()  # resyncs a restart interrupted
        except Exception:  # the queues stay in the database; the next start sends them
            logger.exception("federation sender: start-up failed")
        self.get(MlsHygiene).start()
        # Commits the groups' DSs accepted while we were down (in the background: it asks them).
        Deferred.fromCoroutine(self.get(MlsFederation).start()).addErrback(
            lambda failure: logger.error("MLS catch-up at start-up failed: %s", failure.getErrorMessage()))

    def build_router(self, listener: Listener) -> Router:
        router = Router()
        persisters.add_routes(self, router)  # an event persister's internal endpoint
        names = {name for resource in listener.resources for name in resource.names}
        if is_worker(self.config):
            worker_setup.register_routes(self, router, modules_for_resources(names))
            return router
        for module in modules_for_resources(names):
            if worker_roles.serves_module(self, module):
                module.register_routes(router, self)
        return router

    def build_root(self, listener: Listener, router: Router) -> Resource:
        """The JSON API, plus any non-JSON resources (the WebSocket stream) at their exact paths."""
        api = JsonApiResource(router, worker_setup.fallback(self))
        names = {name for resource in listener.resources for name in resource.names}
        raw: dict[str, Resource] = {}
        for module in modules_for_resources(names):
            if hasattr(module, "raw_resources") and worker_setup.serves_raw(self, module):
                raw.update(module.raw_resources(self))
        return ListenerRoot(api, raw) if raw else api

    def start_listening(self) -> None:
        for listener in self.config.listeners:
            router = self.build_router(listener)
            site = QuietSite(self.build_root(listener, router))
            # Uploads are spooled to disk by their routes (spool_for), so every other body
            # is bounded by the JSON limit.
            site.requestFactory = bounded_request_factory(
                self.config.max_request_body_size,
                self.config.max_request_body_size,
                trust_forwarded_for=listener.x_forwarded,
                spool_for=router.spool_for,
            )
            site.displayTracebacks = False
            site.noisy = False
            for address in listener.bind_addresses:
                if listener.tls:
                    port = self.reactor.listenSSL(listener.port, site, self._tls_context(), interface=address)
                else:
                    port = self.reactor.listenTCP(listener.port, site, interface=address)
                self._ports.append(port)
                host: Any = port.getHost()  # an IPv4Address or IPv6Address
                logger.info("Listening on %s:%s (%s)", host.host, host.port, "TLS" if listener.tls else "plain HTTP")

    def bound_ports(self) -> list[int]:
        return [port.getHost().port for port in self._ports]  # type: ignore[attr-defined]  # TCP

    def _tls_context(self) -> ssl.CertificateOptions:
        assert self.config.tls_certificate_path and self.config.tls_private_key_path
        with open(self.config.tls_certificate_path, "rb") as cert, open(self.config.tls_private_key_path, "rb") as key:
            pem = key.read() + b"\n" + cert.read()
        return ssl.PrivateCertificate.loadPEM(pem).options()

    def write_pid_file(self) -> None:
        if self.config.pid_file:
            with open(self.config.pid_file, "w", encoding="ascii") as handle:
                handle.write(f"{os.getpid()}\n")

    async def shutdown(self) -> None:
        for component in (self._components.get(EduForwarder), self._components.get(FederationSender),
                          self._components.get(RemoteDeviceLists)):
            if component is not None:
                component.stop()
        channel = self._components.get(ReplicationChannel)
        if channel is not None:
            await channel.stop()
        for port in self._ports:
            stopped = port.stopListening()
            if stopped is not None:
                await stopped
        if self._db is not None:
            await self._db.close()
        if self.config.pid_file:
            try:
                os.unlink(self.config.pid_file)
            except FileNotFoundError:
                pass


def _homeserver_is_a_server(hs: HomeServer) -> Server:
    """Never called: mypy checks here that HomeServer provides every member of Server."""
    return hs
