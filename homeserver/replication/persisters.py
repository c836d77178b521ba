"""Event persisters: rooms sharded over the instances of ``stream_writers.events``.

Each room belongs to exactly one persister, picked from its room ID, so one process builds
and writes all of a room's events and per-room order holds as with one process. Every other
process (main, client readers, the other persisters) hands a room's submissions to its owner
at its ``instance_map`` address: ``EventPipeline.writers`` is a ``PersisterRouting``, and the
owner answers on ``/_vignette/replication/v1/pipeline/<method>``, authenticated with
``worker_replication_secret``. The events stream itself becomes a stream several writers
share (storage/sharded_stream.py), whose per-writer positions travel on the Redis channel.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from twisted.web.server import Request

from homeserver.config.workers import (
    SHARDED_STREAM,
    background_elsewhere,
    event_writers,
    events_sharded,
    instance_name,
    is_worker,
    runs_background_tasks,
)
from homeserver.errors import MatrixError, bad_json
from homeserver.http.request import parse_json_object
from homeserver.http.router import Router
from homeserver.outbound.client import OutboundRequestError
from homeserver.pipeline import EventPipeline
from homeserver.replication.forward import InstanceClient
from homeserver.server import Server
from storage.room_stream_cache import RoomStreamCache
from storage.sharded_stream import (
    OUTLIERS_SEQUENCE,
    STATE_GROUPS_SEQUENCE,
    SharedSequence,
    shard_stream,
)
from storage.stores.events import EventStore
from storage.stores.state import StateGroupStore
from storage.streams import Streams

logger = logging.getLogger(__name__)

PIPELINE_PATH = "/_vignette/replication/v1/pipeline/{method}"
METHODS = frozenset({
    "submit_local", "submit_remote", "submit_backfill", "store_outliers", "build_local",
    "store_out_of_band_membership",
})


def owner_of(room_id: str, writers: list[str]) -> str:
    """The persister of a room: a stable hash of its ID over the writers, in their order."""
    digest = hashlib.sha256(room_id.encode("utf-8")).digest()
    return writers[int.from_bytes(digest[:8], "big") % len(writers)]


class PersisterRouting:
    """``EventPipeline.writers``: which instance owns a room, and the HTTP call to it."""

    def __init__(self, hs: Server) -> None:
        self.here = instance_name(hs.config)
        self.writers = event_writers(hs.config)
        self.secret = str(hs.config.worker_replication_secret or "")
        self.client = hs.get(InstanceClient)
        #: Submissions handed to another instance, for tests and metrics.
        self.forwarded = 0

    def elsewhere(self, room_id: str) -> str | None:
        owner = owner_of(room_id, self.writers)
        return None if owner == self.here else owner

    async def call(self, instance: str, method: str, body: dict[str, Any]) -> Any:
        self.forwarded += 1
        headers = {"Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"}
        path = PIPELINE_PATH.format(method=method)
        try:
            status, _, content = await self.client.request(
                instance, "POST", path, headers=headers, body=json.dumps(body).encode()
            )
            answer = json.loads(content)
        except (OutboundRequestError, ValueError) as exc:
            logger.warning("handing %s to the persister %s failed: %s", method, instance, exc)
            raise MatrixError(502, "M_UNKNOWN", "The room's event persister cannot be reached") from None
        if status != 200:
            error = answer if isinstance(answer, dict) else {}
            raise MatrixError(status, str(error.get("errcode", "M_UNKNOWN")), str(error.get("error", "")))
        return answer["answer"]


def setup(hs: Server) -> None:
    """Before any stream is opened, in every process of a set with persisters; without them,
    a background-jobs worker hands the events its timers send (delayed events) to main."""
    if not events_sharded(hs.config):
        if is_worker(hs.config) and runs_background_tasks(hs.config):
            hs.get(EventPipeline).writers = PersisterRouting(hs)
        return
    here = instance_name(hs.config)
    shard_stream(hs.get(Streams), hs.db, SHARDED_STREAM, here, event_writers(hs.config))
    # What one persister's commits feed would miss the others' rooms: ask the database.
    hs.get(RoomStreamCache).enabled = False
    hs.get(EventStore).shared_outliers = SharedSequence(hs.db, OUTLIERS_SEQUENCE, negate=True)
    hs.get(StateGroupStore).shared_ids = SharedSequence(hs.db, STATE_GROUPS_SEQUENCE)
    hs.get(EventPipeline).writers = PersisterRouting(hs)


async def open_writer(hs: Server) -> None:
    """At start-up, in every process of a set with persisters: open the events stream's
    writer now rather than on first use. A persister that no request has reached yet must
    still answer the others' advances with its own position (the token is the minimum over
    writers); without its writer it published nothing, and every other process's token
    stayed where that persister was last heard of: deliveries stalled across readers."""
    if events_sharded(hs.config):
        await hs.get(EventStore).stream_writer()


def add_routes(hs: Server, router: Router) -> None:
    """A persister's internal endpoint, where the other instances hand it its rooms' events."""
    if instance_name(hs.config) not in event_writers(hs.config):
        return
    if not events_sharded(hs.config) and not background_elsewhere(hs.config):
        return
    secret = str(hs.config.worker_replication_secret or "").encode()
    pipeline = hs.get(EventPipeline)

    async def run(request: Request, method: str) -> tuple[int, Any]:
        presented = (request.getHeader("Authorization") or "").removeprefix("Bearer ").encode()
        if not secret or not hmac.compare_digest(presented, secret):
            raise MatrixError(403, "M_FORBIDDEN", "Not an instance of this server")
        if method not in METHODS:
            raise MatrixError(404, "M_UNRECOGNIZED", "Unknown pipeline method")
        body = parse_json_object(request)
        try:
            return 200, {"answer": await pipeline.run_forwarded(method, body)}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise bad_json(f"Malformed {method} submission: {exc!r}") from None

    router.add("POST", PIPELINE_PATH, run)
