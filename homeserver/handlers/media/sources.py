"""Where a piece of media comes from: this server's uploads, or our cache of another server's.

Both answer one question, "the file behind mxc://origin/media_id", as a ``StoredMedia``;
downloads, thumbnails and the federation media endpoints read through them.  The remote
source serves what is cached; fetching what is not goes through a ``RemoteMediaFetcher``,
which federation provides (``federation/media_fetcher.py``, set at start-up; handlers may
not import federation).
"""

from __future__ import annotations

from typing import Protocol

import attrs
from twisted.internet.defer import Deferred

from homeserver.async_utils import SharedLookups
from homeserver.errors import MatrixError, not_found
from homeserver.handlers.media.filestore import (
    FileKind,
    MediaFileStore,
    is_valid_file_id,
    new_file_id,
)
from homeserver.server import Server
from homeserver.spooled_file import SpooledFile
from storage.stores.local_media import LocalMediaStore
from storage.stores.remote_media import RemoteMedia, RemoteMediaCacheStore


@attrs.frozen
class StoredMedia:
    """A complete file we hold, and what is known about it."""

    origin: str
    media_id: str
    kind: FileKind
    file_id: str
    media_type: str
    length: int
    upload_name: str | None
    authenticated: bool
    quarantined: bool


@attrs.frozen
class FetchedMedia:
    """What a fetcher got from the origin server: the body on disk, and its metadata."""

    body: SpooledFile
    media_type: str
    upload_name: str | None


class RemoteMediaFetcher(Protocol):
    """Fetches media from its origin (federation /media/download, falling back to the legacy path)."""

    async def fetch(self, origin: str, media_id: str, timeout_ms: int) -> FetchedMedia: ...


def not_yet_uploaded() -> MatrixError:
    return MatrixError(504, "M_NOT_YET_UPLOADED", "The media has not been uploaded yet")


class LocalMediaSource:
    """Uploads to this server, waiting (up to a timeout) for an asynchronous upload to arrive."""

    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(LocalMediaStore)
        self.unused_expiration_ms = int(hs.config.unused_expiration_time)
        self._waiters: dict[str, list[Deferred[None]]] = {}

    async def find(self, origin: str, media_id: str, timeout_ms: int) -> StoredMedia:
        if not is_valid_file_id(media_id):
            raise not_found("No such media")  # we never issue such an ID
        deadline = self.hs.reactor.seconds() + timeout_ms / 1000
        while True:
            media = await self.store.get_media(media_id)
            if media is None:
                raise not_found("No such media")
            if media.uploaded:
                return StoredMedia(origin, media_id, "local", media_id, media.media_type or "application/octet-stream",
                                   int(media.media_length or 0), media.upload_name, media.authenticated,
                                   media.quarantined_by is not None)
            now = self.hs.reactor.seconds()
            if media.created_ts + self.unused_expiration_ms <= now * 1000:
                raise not_found("The media ID expired before anything was uploaded to it")
            if now >= deadline:
                raise not_yet_uploaded()
            await self._wait(media_id, deadline - now)

    def uploaded(self, media_id: str) -> None:
        """Wake downloads waiting for this media ID (called once its upload is committed)."""
        for waiter in self._waiters.pop(media_id, []):
            if not waiter.called:
                waiter.callback(None)

    async def _wait(self, media_id: str, seconds: float) -> None:
        waiter: Deferred[None] = Deferred()
        self._waiters.setdefault(media_id, []).append(waiter)
        def wake() -> None:
            if not waiter.called:
                waiter.callback(None)

        timer = self.hs.reactor.callLater(seconds, wake)
        try:
            await waiter
        finally:
            if timer.active():
                timer.cancel()
            waiting = self._waiters.get(media_id)
            if waiting is not None and waiter in waiting:
                waiting.remove(waiter)
                if not waiting:
                    del self._waiters[media_id]


class RemoteMediaSource:
    """Our copies of other servers' media, fetched through ``fetcher`` on first request.

    Concurrent requests for the same uncached media share one fetch.  A fetched body is
    made durable under a new file ID of ours, then recorded; if another fetch recorded the
    same media first, ours is deleted and theirs served.
    """

    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(RemoteMediaCacheStore)
        self.files = hs.get(MediaFileStore)
        self.authenticated_media = bool(hs.config.enable_authenticated_media)
        self.fetcher: RemoteMediaFetcher | None = None
        self._fetches: SharedLookups[tuple[str, str], RemoteMedia] = SharedLookups()

    async def find(self, origin: str, media_id: str, timeout_ms: int, may_fetch: bool = True) -> StoredMedia:
        """Our copy; fetched first if we have none and ``may_fetch`` (False: unauthenticated
        requests under enable_authenticated_media, which must not make us fetch anything)."""
        cached = await self.store.get_cached(origin, media_id)
        if cached is None:
            if self.fetcher is None or not may_fetch or not is_valid_file_id(media_id):
                raise not_found(f"No copy of this media is held here, and it cannot be fetched from {origin}")
            cached = await self._fetches.run((origin, media_id), lambda: self._fetch(origin, media_id, timeout_ms))
        return StoredMedia(origin, media_id, "remote", cached.file_id, cached.media_type, cached.media_length,
                           cached.upload_name, cached.authenticated, cached.quarantined_by is not None)

    async def _fetch(self, origin: str, media_id: str, timeout_ms: int) -> RemoteMedia:
        assert self.fetcher is not None
        fetched = await self.fetcher.fetch(origin, media_id, timeout_ms)
        file_id = new_file_id()
        try:
            await self.files.commit(fetched.body, self.files.content_path("remote", file_id))
        except BaseException:
            self.files.discard(fetched.body)
            raise
        now = int(self.hs.reactor.seconds() * 1000)
        media = RemoteMedia(origin, media_id, file_id, fetched.media_type, fetched.body.length, fetched.upload_name,
                            fetched.body.sha256, now, now, None, self.authenticated_media)
        try:
            recorded = await self.store.add_cached(media)
        except BaseException:
            await self.files.delete("remote", file_id)
            raise
        if not recorded:  # another fetch recorded its copy first: serve that one
            await self.files.delete("remote", file_id)
        winner = await self.store.get_cached(origin, media_id)  # as recorded (perhaps quarantined on arrival)
        if winner is None:
            raise not_found("The cached copy of this media was removed while it was fetched")
        return winner
