"""One client's stream: which token it has acknowledged and whether more is waiting.

A slow consumer costs O(1) memory: we never queue frames.  We keep the last
acknowledged token, the token of the one frame in flight, and a dirty flag;
when the client acknowledges, one new frame covering everything since is
built by the same sync builder /sync uses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from homeserver.server import Server
from homeserver.sync.builder import SyncBuilder, has_changes
from homeserver.sync.filtering import MAX_LIMIT
from homeserver.sync.provider import StreamToken, SyncRequest

logger = logging.getLogger(__name__)

# Incremental frames raise the timeline limit to at least this, so a client that
# keeps up sees every event without paginating (see docs/websocket.md).
MIN_INCREMENTAL_TIMELINE_LIMIT = 100


def incremental_filter(sync_filter: dict[str, Any]) -> dict[str, Any]:
    room = dict(sync_filter.get("room") or {})
    timeline = dict(room.get("timeline") or {})
    limit = timeline.get("limit")
    timeline["limit"] = min(max(limit if isinstance(limit, int) else 0, MIN_INCREMENTAL_TIMELINE_LIMIT),
                            MAX_LIMIT)
    room["timeline"] = timeline
    return {**sync_filter, "room": room}


#: Distinct filters kept for sharing; past this the pool starts again (a filter is small to rebuild).
MAX_SHARED_FILTERS = 1024


class SharedFilters:
    """One (initial, per-frame) filter pair per distinct filter, shared by every stream using it.

    Streams of one client application mostly send the same filter; sharing the dicts also lets
    the sync core's parsed-filter cache (keyed by the dict) hold one entry for all of them.
    """

    def __init__(self) -> None:
        self._pairs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def pair(self, sync_filter: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        key = json.dumps(sync_filter, sort_keys=True, separators=(",", ":"))
        found = self._pairs.get(key)
        if found is None:
            if len(self._pairs) >= MAX_SHARED_FILTERS:
                self._pairs.clear()
            found = self._pairs[key] = (sync_filter, incremental_filter(sync_filter))
        return found


class StreamSession:
    # Ten thousand idle streams per process: slots keep each session to its fields (no instance dict).
    __slots__ = ("builder", "user_id", "device_id", "access_token_id", "initial_filter", "frame_filter", "acked",
                 "in_flight", "dirty", "closed", "_building", "_send", "_on_rooms", "_send_raw", "_pushed")

    def __init__(self, hs: Server, user_id: str, device_id: str | None, access_token_id: int | None,
                 filters: tuple[dict[str, Any], dict[str, Any]], since: StreamToken | None,
                 send: Callable[[dict[str, Any]], None], on_rooms: Callable[[set[str]], None],
                 send_raw: Callable[[bytes], None] | None = None) -> None:
        self.builder: SyncBuilder = hs.get(SyncBuilder)
        self.user_id = user_id
        self.device_id = device_id
        self.access_token_id = access_token_id
        self.initial_filter, self.frame_filter = filters  # see SharedFilters
        self.acked = since
        self.in_flight: StreamToken | None = None
        self.dirty = True
        self.closed = False
        self._building = False
        self._send = send
        self._on_rooms = on_rooms
        self._send_raw = send_raw
        self._pushed = False

    def poke(self) -> None:
        """Something the client may care about advanced."""
        self.dirty = True
        self._maybe_build()

    def push_shared(self, stream: str, after: int, position: int, sections: bytes) -> bool:
        """Send a frame built once for many streams: ``sections`` is the whole change in
        (``after``, ``position``] of ``stream``, as the encoded members of the sync object.

        Taken only by an idle stream whose token is at ``after`` in that stream: the frame's
        token is then its own with that one stream advanced, so nothing is skipped or sent twice.
        """
        acked = self.acked
        if self._send_raw is None or self._building or self.in_flight is not None or self.closed \
                or acked is None or acked.get(stream) != after:
            return False
        token = StreamToken({**acked.positions, stream: position})
        self.in_flight = token
        self._pushed = True
        # One join: the sections (a commit can be 100s of KB) are copied once per stream, not per "+".
        self._send_raw(b"".join((b'{"type":"sync","sync":{"next_batch":"', token.serialise().encode(), b'",',
                                 sections, b"}}")))
        return True

    def advance_quietly(self, stream: str, after: int, position: int) -> None:
        """(``after``, ``position``] of ``stream`` holds nothing for this client: move past it, as a build would."""
        acked = self.acked
        if not (self._building or self.in_flight is not None or self.closed or acked is None
                or acked.get(stream) != after):
            self.acked = StreamToken({**acked.positions, stream: position})
            self._pushed = True

    def ack(self, token_text: str) -> bool:
        """The client processed the frame with this next_batch; False if that is not the one in flight."""
        if self.in_flight is None or token_text != self.in_flight.serialise():
            return False
        self.acked, self.in_flight = self.in_flight, None
        self._maybe_build()
        return True

    def close(self) -> None:
        self.closed = True

    def _maybe_build(self) -> None:
        if self._building or self.in_flight is not None or not self.dirty or self.closed:
            return
        self._building = True
        Deferred.fromCoroutine(self._build()).addErrback(self._failed)

    def _failed(self, failure: Any) -> None:
        logger.error("WebSocket stream for %s failed: %s", self.user_id, failure.getTraceback())
        self._building = False

    async def _build(self) -> None:
        try:
            while self.dirty and self.in_flight is None and not self.closed:
                self.dirty = False  # an advance during the build sets it again
                request = SyncRequest(
                    user_id=self.user_id, device_id=self.device_id,
                    filter=self.initial_filter if self.acked is None else self.frame_filter,
                    since=self.acked, access_token_id=self.access_token_id,
                )
                upto = await self.builder.current_token()
                pushed, self._pushed = self._pushed, False
                if pushed and self.builder.nothing_new(request, upto):
                    self.acked = upto  # the pushed frame was the whole change: no build for its wake
                    continue
                # Written by StreamProtocol.send_json, which splices shared event text.
                response, context = await self.builder.build(request, upto, encoded=True)
                self._on_rooms(context.get("joined_rooms", set()))
                if self.closed:
                    return
                # The hub learns this session's rooms only now: an advance in one of them
                # after ``upto`` may have found no one to poke, so look again.
                if await self.builder.current_token() != upto:
                    self.dirty = True
                if self.acked is None or has_changes(response):
                    self.in_flight = upto
                    self._send({"type": "sync", "sync": response})
                else:
                    # Nothing for this client up to ``upto``: move on silently.
                    self.acked = upto
        finally:
            self._building = False
