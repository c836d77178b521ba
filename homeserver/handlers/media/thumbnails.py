"""Thumbnails: which one to serve for a request, made on first use (in a thread) and kept on disk.

With ``dynamic_thumbnails`` off a request gets the nearest of ``thumbnail_sizes``;
with it on, exactly what it asked for.  Only images of the types in THUMBNAIL_TYPES are
ever decoded: everything else (in particular an encrypted attachment, which the server
cannot read and clients upload as application/octet-stream) is refused untouched.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from homeserver.errors import MatrixError, too_large
from homeserver.handlers.media.filestore import MediaFileStore
from homeserver.handlers.media.sources import StoredMedia
from homeserver.handlers.media.thumbnailer import (
    ANIMATED_TYPE,
    THUMBNAIL_TYPES,
    ImageTooLarge,
    ThumbnailError,
    ThumbnailSpec,
    is_animated,
    make_thumbnail,
)
from homeserver.server import Server


def cannot_thumbnail(reason: str) -> MatrixError:
    return MatrixError(400, "M_UNKNOWN", f"Cannot generate a thumbnail: {reason}")


def base_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def nearest_size(sizes: list[ThumbnailSpec], width: int, height: int, method: str) -> ThumbnailSpec:
    """The smallest configured size of the asked method that covers the request, else the largest.

    "Covers" means at least as wide and as tall, so a client never gets less than it asked for
    when a bigger thumbnail exists.  Sizes of the other method are the fallback.
    """
    same = [size for size in sizes if size.method == method] or sizes
    covering = [size for size in same if size.width >= width and size.height >= height]
    if covering:
        return min(covering, key=lambda size: (size.width * size.height, size.width))
    return max(same, key=lambda size: (size.width * size.height, size.width))


class Thumbnails:
    def __init__(self, hs: Server) -> None:
        config = hs.config
        self.files = hs.get(MediaFileStore)
        self.max_pixels = int(config.max_image_pixels)
        self.dynamic = bool(config.dynamic_thumbnails)
        self.sizes = [ThumbnailSpec(size.width, size.height, size.method) for size in config.thumbnail_sizes]
        self._in_flight: dict[str, Deferred[None]] = {}

    def choose(self, width: int, height: int, method: str, animated: bool) -> ThumbnailSpec:
        if self.dynamic or not self.sizes:
            return ThumbnailSpec(width, height, method, animated)
        chosen = nearest_size(self.sizes, width, height, method)
        return ThumbnailSpec(chosen.width, chosen.height, chosen.method, animated)

    async def thumbnail(self, media: StoredMedia, width: int, height: int, method: str,
                        animated: bool) -> tuple[str, str]:
        """(path of the thumbnail file, its content type), made now if it was not yet."""
        source_type = base_type(media.media_type)
        output_type = THUMBNAIL_TYPES.get(source_type)
        if output_type is None:
            raise cannot_thumbnail(f"media of type {source_type or 'unknown'} is not an image this server thumbnails")
        source = self.files.content_path(media.kind, media.file_id)
        if animated and await self._run(is_animated, source, self.max_pixels):
            output_type = ANIMATED_TYPE
        else:
            animated = False  # the spec: behave as though animated were false
        spec = self.choose(width, height, method, animated)
        path = os.path.join(self.files.thumbnail_dir(media.kind, media.file_id), spec.file_name(output_type))
        if not os.path.exists(path):
            await self._make_once(path, source, spec, output_type)
        return path, output_type

    async def _make_once(self, path: str, source: str, spec: ThumbnailSpec, output_type: str) -> None:
        """Make one thumbnail; concurrent requests for the same one share the work."""
        running = self._in_flight.get(path)
        if running is not None:
            waiter: Deferred[None] = Deferred()
            def wake(result: Any) -> Any:
                waiter.callback(None)
                return result

            running.addBoth(wake)
            await waiter
            if os.path.exists(path):
                return
        done: Deferred[None] = Deferred()
        self._in_flight[path] = done
        try:
            data = await self._run(make_thumbnail, source, spec, output_type, self.max_pixels)
            await self.files.write_atomically(path, data)
        finally:
            del self._in_flight[path]
            done.callback(None)

    @staticmethod
    async def _run(function: Any, *args: Any) -> Any:
        try:
            return await deferToThread(function, *args)
        except ImageTooLarge as exc:
            raise too_large(f"Cannot generate a thumbnail: {exc}") from None
        except ThumbnailError as exc:
            raise cannot_thumbnail(str(exc)) from None
