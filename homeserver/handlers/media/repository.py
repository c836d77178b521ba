"""The media repository: uploads (direct and asynchronous), downloads and thumbnails.

An upload is acknowledged only once its file is durable in place and its row committed
(file first, so a row never points at nothing); a body that fails any check on the way
is deleted.  Reads go through a media source (local uploads, or our cache of remote
media) and refuse quarantined media, and media uploaded under
``enable_authenticated_media`` when asked through the legacy unauthenticated endpoints.
"""

from __future__ import annotations

import logging
from typing import IO, Any

import attrs
from twisted.internet import task
from twisted.internet.defer import Deferred

from homeserver.async_utils import KeyedLocks
from homeserver.config.names import server_name_problem
from homeserver.config.workers import runs_media_jobs
from homeserver.errors import MatrixError, forbidden, invalid_param, limit_exceeded, not_found
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.accounts.restrictions import check_not_suspended
from homeserver.handlers.media.filestore import MediaFileStore, is_valid_file_id, new_file_id
from homeserver.handlers.media.sources import LocalMediaSource, RemoteMediaSource, StoredMedia
from homeserver.handlers.media.thumbnails import Thumbnails
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.server import Server
from homeserver.spooled_file import SpooledFile
from storage.stores.local_media import LocalMediaStore, NewUpload
from storage.stores.remote_media import RemoteMediaCacheStore

logger = logging.getLogger(__name__)

ACCESS_FLUSH_INTERVAL_S = 60
EXPIRY_SWEEP_INTERVAL_S = 3600
DEFAULT_TIMEOUT_MS = 20_000
MAX_TIMEOUT_MS = 60_000


@attrs.frozen
class MediaDownload:
    """An open file to send, and how to label it."""

    file: IO[bytes]
    length: int
    media_type: str
    upload_name: str | None


def cannot_overwrite() -> MatrixError:
    return MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "This media ID already has content")


class MediaRepository:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        config = hs.config
        self.server_name: str = hs.server_name
        self.files = hs.get(MediaFileStore)
        self.local = hs.get(LocalMediaStore)
        self.remote = hs.get(RemoteMediaCacheStore)
        self.local_source = hs.get(LocalMediaSource)
        self.remote_source = hs.get(RemoteMediaSource)
        self.thumbnails = hs.get(Thumbnails)
        self.max_upload_size = int(config.max_upload_size)
        self.authenticated_media = bool(config.enable_authenticated_media)
        self.unused_expiration_ms = int(config.unused_expiration_time)
        self.max_pending = int(config.max_pending_media_uploads)
        # Longest period first: most uploads fit the widest window, and then one query answers all.
        self.upload_limits = sorted(config.media_upload_limits, key=lambda limit: -int(limit.time_period))
        self.create_limiter = hs.get(RateLimiters).media_create
        # One upload at a time per media ID, so a losing racer never overwrites the winner's file.
        self._upload_locks: KeyedLocks[str] = KeyedLocks()
        self._accessed_local: set[str] = set()
        self._accessed_remote: set[tuple[str, str]] = set()
        self._loops = [self._every(ACCESS_FLUSH_INTERVAL_S, self.flush_access_times)]
        if runs_media_jobs(config):  # one process sweeps (docs/workers.md)
            self._loops.append(self._every(EXPIRY_SWEEP_INTERVAL_S, self.sweep_expired_ids))
        hs.reactor.addSystemEventTrigger("before", "shutdown", self._stop)

    def _every(self, seconds: int, work: Any) -> task.LoopingCall:
        def run() -> Deferred[Any]:
            d = Deferred.fromCoroutine(work())
            d.addErrback(lambda failure: logger.error("media background task failed: %s", failure.getErrorMessage()))
            return d

        loop = task.LoopingCall(run)
        loop.clock = self.hs.reactor
        loop.start(seconds, now=False)
        return loop

    def _stop(self) -> Deferred[None]:
        for loop in self._loops:
            if loop.running:
                loop.stop()
        return Deferred.fromCoroutine(self.flush_access_times())

    def media_config(self) -> dict[str, Any]:
        return {"m.upload.size": self.max_upload_size}

    # Uploads

    async def upload(self, user_id: str, body: SpooledFile, media_type: str, upload_name: str | None,
                     quota: bool = True) -> str:
        """Store a new upload; its mxc:// URI.  ``quota=False`` for files the server fetched
        itself on a user's behalf (URL preview images), which no upload quota covers and
        which a suspended user may still be shown."""
        if quota:
            await check_not_suspended(self.hs, user_id)
        media_id = new_file_id()
        upload = NewUpload(media_type, body.length, upload_name, body.sha256)
        await self._place(user_id, media_id, body, quota)
        try:
            quarantined = await self.local.record_upload(media_id, user_id, now_ms(self.hs), upload,
                                                         self.authenticated_media)
        except BaseException:
            await self.files.delete("local", media_id)
            raise
        if quarantined:
            logger.warning("upload %s matches quarantined media, so it is quarantined too", media_id)
        return f"mxc://{self.server_name}/{media_id}"

    async def create(self, user_id: str) -> tuple[str, int]:
        """A media ID for a later upload: (its mxc:// URI, when it expires unused)."""
        self.create_limiter.ratelimit(user_id)
        now = now_ms(self.hs)
        pending, oldest = await self.local.count_pending(user_id, now - self.unused_expiration_ms)
        if pending >= self.max_pending:
            assert oldest is not None
            raise limit_exceeded(max(1, oldest + self.unused_expiration_ms - now))
        media_id = new_file_id()
        await self.local.create_pending(media_id, user_id, now, self.authenticated_media)
        return f"mxc://{self.server_name}/{media_id}", now + self.unused_expiration_ms

    async def upload_to(self, user_id: str, server_name: str, media_id: str, body: SpooledFile,
                        media_type: str, upload_name: str | None) -> None:
        """Fill in a media ID from ``create``: once, by its creator, before it expires."""
        await check_not_suspended(self.hs, user_id)
        async with self._upload_locks.hold(media_id):
            try:
                if server_name != self.server_name:
                    raise not_found("Media IDs can only be uploaded to on the server that created them")
                await self._check_pending(user_id, media_id)
            except BaseException:
                self.files.discard(body)
                raise
            await self._place(user_id, media_id, body)
            upload = NewUpload(media_type, body.length, upload_name, body.sha256)
            if not await self.local.complete_pending(media_id, user_id, upload):
                await self.files.delete("local", media_id)
                raise cannot_overwrite()
        self.local_source.uploaded(media_id)

    async def _check_pending(self, user_id: str, media_id: str) -> None:
        media = await self.local.get_media(media_id) if is_valid_file_id(media_id) else None
        if media is None:
            raise not_found("No such media ID: create one with POST /_matrix/media/v1/create")
        if media.user_id != user_id:
            raise forbidden("Only the user who created this media ID may upload to it")
        if media.uploaded:
            raise cannot_overwrite()
        if media.created_ts + self.unused_expiration_ms <= now_ms(self.hs):
            raise not_found("This media ID expired before anything was uploaded to it")

    async def _place(self, user_id: str, media_id: str, body: SpooledFile, quota: bool = True) -> None:
        """Check quotas, then move the body durably into place; on any failure it is deleted."""
        try:
            if quota:
                await self._check_quota(user_id, body.length)
            await self.files.commit(body, self.files.content_path("local", media_id))
        except BaseException:
            self.files.discard(body)
            raise

    async def _check_quota(self, user_id: str, length: int) -> None:
        uploaded: int | None = None
        for limit in self.upload_limits:
            if uploaded is None or uploaded + length > limit.max_size:
                uploaded = await self.local.uploaded_bytes_since(user_id, now_ms(self.hs) - int(limit.time_period))
            if uploaded + length > limit.max_size:
                raise forbidden(f"Upload quota reached: at most {int(limit.max_size)} bytes per "
                                f"{int(limit.time_period) // 1000} seconds")

    # Reads

    async def find(self, server_name: str, media_id: str, timeout_ms: int, authenticated: bool) -> StoredMedia:
        """The media behind mxc://server_name/media_id, if this request may have it."""
        if server_name_problem(server_name):
            raise invalid_param(f"Not a server name: {server_name!r}")
        timeout_ms = min(max(timeout_ms, 0), MAX_TIMEOUT_MS)
        if server_name == self.server_name:
            media = await self.local_source.find(server_name, media_id, timeout_ms)
        else:
            # What we would fetch now would be authenticated media, never served here unauthenticated.
            may_fetch = authenticated or not self.authenticated_media
            media = await self.remote_source.find(server_name, media_id, timeout_ms, may_fetch)
        if media.quarantined:
            raise not_found("This media has been quarantined by the server's administrators")
        if media.authenticated and self.authenticated_media and not authenticated:
            raise not_found("This media is only served on the authenticated media endpoints "
                            "(/_matrix/client/v1/media/...)")
        return media

    async def download(self, server_name: str, media_id: str, timeout_ms: int, authenticated: bool) -> MediaDownload:
        media = await self.find(server_name, media_id, timeout_ms, authenticated)
        download = self._open(self.files.content_path(media.kind, media.file_id), media.length, media.media_type,
                              media.upload_name)
        self._note_access(media)
        return download

    async def thumbnail(self, server_name: str, media_id: str, width: int, height: int, method: str,
                        animated: bool, timeout_ms: int, authenticated: bool) -> MediaDownload:
        media = await self.find(server_name, media_id, timeout_ms, authenticated)
        path, content_type = await self.thumbnails.thumbnail(media, width, height, method, animated)
        self._note_access(media)
        return self._open(path, None, content_type, None)

    def _open(self, path: str, length: int | None, media_type: str, upload_name: str | None) -> MediaDownload:
        handle = self.files.open(path)
        if handle is None:
            raise not_found("The media's file is missing")
        if length is None:
            length = int(handle.seek(0, 2))
            handle.seek(0)
        return MediaDownload(handle, length, media_type, upload_name)

    def _note_access(self, media: StoredMedia) -> None:
        if media.kind == "local":
            self._accessed_local.add(media.media_id)
        else:
            self._accessed_remote.add((media.origin, media.media_id))

    async def flush_access_times(self) -> None:
        """Record when media was last read (batched: a download never waits on this write)."""
        local, self._accessed_local = self._accessed_local, set()
        remote, self._accessed_remote = self._accessed_remote, set()
        now = now_ms(self.hs)
        await self.local.set_last_access(local, now)
        await self.remote.set_last_access(remote, now)

    async def sweep_expired_ids(self) -> None:
        """Forget media IDs whose upload never came (and any file a crash left behind for one)."""
        expired = await self.local.delete_expired_pending(now_ms(self.hs) - self.unused_expiration_ms)
        for media_id in expired:
            await self.files.delete("local", media_id)
