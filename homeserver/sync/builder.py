"""The one sync builder that both long-poll /sync and the WebSocket stream use.

It answers one question: "what changed for this device between token A and
token B?".  Each section comes from its provider (providers/__init__.py);
the builder only fixes the upper token, hands each provider its own stream's
range, and decides whether the answer holds anything.
"""

from __future__ import annotations

from typing import Any

from homeserver.server import Server
from homeserver.sync.provider import StreamToken, SyncRequest
from homeserver.sync.providers import PROVIDERS
from storage.streams import Streams

# Sections that are present in every response and say nothing about change.
NOT_CHANGES = frozenset({
    "next_batch", "device_one_time_keys_count", "device_unused_fallback_key_types",
    "org.matrix.msc2732.device_unused_fallback_key_types", "unread_notifications",
    "unread_thread_notifications", "summary", "limited", "prev_batch",
})


def has_changes(value: Any) -> bool:
    """Is there anything in a (partial) sync response besides bookkeeping?"""
    if isinstance(value, dict):
        return any(has_changes(item) for key, item in value.items() if key not in NOT_CHANGES)
    if isinstance(value, list):
        return bool(value)
    return False


def _still(provider: Any, since: int, upto: int, context: dict[str, Any]) -> bool:
    """Would the provider write nothing into this incremental sync? (Unknown: no.)"""
    still = getattr(provider, "still", None)
    return still is not None and bool(still(since, upto, context))


class SyncBuilder:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.providers: list[Any] = [cls(hs) for cls in PROVIDERS]
        self.streams: Streams = hs.get(Streams)
        self._names = [provider.stream for provider in self.providers]
        self._prepared = False
        self._last_positions: list[int] = []
        self._last = StreamToken({})

    async def current_token(self) -> StreamToken:
        """Every stream's persisted-up-to position: the safe upper bound of a sync now.

        Once every provider has prepared (opened its stream's writer, started what it starts)
        the positions are read straight from the stream registry, which the writers keep in
        memory: a woken connection pays no await per provider (issue 16)."""
        if self._prepared:
            current = self.streams.current_position
            now = [current(name) for name in self._names]
            if now != self._last_positions:  # else the same token object (its text kept)
                self._last_positions = now
                self._last = StreamToken(dict(zip(self._names, now, strict=True)))
            return self._last
        positions = {}
        for provider in self.providers:
            prepare = getattr(provider, "prepare", None)
            if prepare is not None:
                await prepare()
            positions[provider.stream] = provider.current_position()
        self._prepared = all(self.streams.ready(name) is not None for name in self._names)
        return StreamToken(positions)

    def nothing_new(self, request: SyncRequest, upto: StreamToken) -> bool:
        """Is ``upto`` where the request's token already is, so the build would find no change?

        (Its answer would carry only bookkeeping such as key counts.) A long-poll that comes
        back right after its answer is the common case: it parks without building.
        """
        since = request.since
        if since is None or request.full_state:
            return False
        for provider in self.providers:
            position = since.get(provider.stream)
            if position is None or position != upto.positions[provider.stream]:
                return False
            still = getattr(provider, "still", None)
            if still is not None and not still(position, position, {}):
                return False
        return True

    async def build(self, request: SyncRequest, upto: StreamToken,
                    streams: frozenset[str] | None = None,
                    skip_still: bool = True, encoded: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """The changes in (request.since, upto]; returns (response, context).

        ``streams`` limits the sections built (sliding sync asks only for the extensions it wants);
        the rooms provider always runs, since the others read the joined rooms it records.

        The fast path (``skip_still``): on an incremental sync, a provider whose stream has not
        moved and whose ``still`` says it would write nothing is not run. A connection woken by
        a message then runs the rooms provider and the per-device bookkeeping only; the answer
        is the same (tests/sync/test_fast_path.py builds both and compares).

        ``encoded``: the caller writes the response with ``sync/encoded.py`` ``encode_spliced``, so
        shared room events may stand in it as ``EncodedEvent``s, serialised once for all readers."""
        response: dict[str, Any] = {"next_batch": upto.serialise()}
        context: dict[str, Any] = {"fast": skip_still, "encoded": encoded}
        chosen = [p for p in self.providers if streams is None or p.stream == "events" or p.stream in streams]
        for provider in chosen:
            stream_upto = upto.positions[provider.stream]
            since = None if request.since is None else request.since.get(provider.stream)
            if since is not None and since > stream_upto:
                # A position from the future: an in-memory stream (typing) that
                # restarted. Treat the section as an initial sync.
                since = None
            if skip_still and since is not None and not request.full_state \
                    and _still(provider, since, stream_upto, context):
                continue
            await provider.build(request, since, stream_upto, response, context)
        for provider in chosen:
            finish = getattr(provider, "finish", None)
            if finish is not None:
                await finish(request, response, context)
        return response, context
