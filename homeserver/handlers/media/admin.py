"""Operator tools for media: look up, quarantine, delete, and purge the remote-media cache.

Semantics follow Synapse's admin API, so its documentation and operators' scripts apply:
quarantined media is refused on every read path (and a new upload with the same SHA-256
is quarantined on arrival); deleting by age skips quarantined media and, with
``keep_profiles``, media in use as a user or room avatar.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, invalid_param, not_found
from homeserver.events.identifiers import is_valid_user_id, server_name_of
from homeserver.handlers.media.filestore import MediaFileStore, is_valid_file_id
from homeserver.server import Server
from storage.stores.local_media import LocalMedia, LocalMediaStore
from storage.stores.media_references import MediaReferenceStore
from storage.stores.remote_media import RemoteMedia, RemoteMediaCacheStore
from storage.stores.users import UserStore


def only_local(what: str) -> MatrixError:
    return MatrixError(400, "M_UNKNOWN", f"Can only {what} local media")


def split_mxc(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("mxc://"):
        return None
    origin, _, media_id = uri[len("mxc://"):].partition("/")
    return (origin, media_id) if origin and media_id and "/" not in media_id else None


def local_media_json(media: LocalMedia) -> dict[str, Any]:
    return {"media_id": media.media_id, "media_origin": None, "user_id": media.user_id,
            "media_type": media.media_type, "media_length": media.media_length, "upload_name": media.upload_name,
            "created_ts": media.created_ts, "last_access_ts": media.last_access_ts,
            "quarantined_by": media.quarantined_by, "authenticated": media.authenticated,
            "safe_from_quarantine": False, "sha256": media.sha256, "filesystem_id": None, "url_cache": None}


def remote_media_json(media: RemoteMedia) -> dict[str, Any]:
    return {"media_id": media.media_id, "media_origin": media.media_origin, "user_id": None,
            "media_type": media.media_type, "media_length": media.media_length, "upload_name": media.upload_name,
            "created_ts": media.created_ts, "last_access_ts": media.last_access_ts,
            "quarantined_by": media.quarantined_by, "authenticated": media.authenticated,
            "safe_from_quarantine": None, "sha256": media.sha256, "filesystem_id": media.file_id,
            "url_cache": None}


class MediaAdmin:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.local = hs.get(LocalMediaStore)
        self.remote = hs.get(RemoteMediaCacheStore)
        self.references = hs.get(MediaReferenceStore)
        self.files = hs.get(MediaFileStore)
        self.users = hs.get(UserStore)

    async def media_info(self, server_name: str, media_id: str) -> dict[str, Any]:
        if server_name == self.server_name:
            local = await self.local.get_media(media_id)
            if local is not None:
                return local_media_json(local)
        else:
            remote = await self.remote.get_cached(server_name, media_id)
            if remote is not None:
                return remote_media_json(remote)
        raise not_found("Unknown media")

    async def set_quarantined(self, server_name: str, media_id: str, by: str | None) -> None:
        """Quarantine (``by`` the admin) or release (``by`` None) one piece of media, local or cached."""
        if server_name == self.server_name:
            await self.local.set_quarantined(media_id, by)
        else:
            await self.remote.set_quarantined(server_name, media_id, by)

    async def quarantine_room(self, room_id: str, by: str) -> int:
        """Quarantine the media that the room's unencrypted events carry; how many were newly quarantined."""
        local_ids, remote_keys = [], []
        for uri in await self.references.mxc_uris_in_room(room_id):
            parts = split_mxc(uri)
            if parts is None:
                continue
            if parts[0] == self.server_name:
                local_ids.append(parts[1])
            else:
                remote_keys.append(parts)
        return await self.local.quarantine_ids(local_ids, by) + await self.remote.quarantine_keys(remote_keys, by)

    async def quarantine_user(self, user_id: str, by: str) -> int:
        await self._require_local_user(user_id)
        return await self.local.quarantine_by_user(user_id, by)

    async def delete_one(self, server_name: str, media_id: str) -> list[str]:
        if server_name != self.server_name:
            raise only_local("delete")
        if not is_valid_file_id(media_id) or await self.local.get_media(media_id) is None:
            raise not_found("Unknown media")
        return await self._delete_local([media_id])

    async def delete_unused(self, before_ms: int, size_gt: int, keep_profiles: bool) -> list[str]:
        """Local media neither read nor uploaded since ``before_ms`` and bigger than ``size_gt`` bytes."""
        candidates = await self.local.unused_since(before_ms, size_gt)
        if keep_profiles and candidates:
            prefix = f"mxc://{self.server_name}/"
            in_use = {uri[len(prefix):] for uri in await self.references.avatar_uris(prefix)}
            candidates = [media_id for media_id in candidates if media_id not in in_use]
        return await self._delete_local(candidates)

    async def user_media(self, user_id: str, offset: int, limit: int) -> tuple[list[LocalMedia], int]:
        await self._require_local_user(user_id)
        return await self.local.list_by_user(user_id, offset, limit)

    async def delete_user_media(self, user_id: str, offset: int, limit: int) -> list[str]:
        page, _total = await self.user_media(user_id, offset, limit)
        return await self._delete_local([media.media_id for media in page])

    async def purge_remote_cache(self, before_ms: int) -> int:
        """Delete cached copies of remote media not used since ``before_ms``; how many."""
        stale = await self.remote.unused_since(before_ms)
        for media in stale:
            await self.remote.delete_cached(media.media_origin, media.media_id)
            await self.files.delete("remote", media.file_id)
        return len(stale)

    async def _delete_local(self, media_ids: list[str]) -> list[str]:
        # The row goes first: a crash between the two leaves an orphaned file, never a row
        # pointing at nothing.
        for media_id in media_ids:
            await self.local.delete_media(media_id)
            await self.files.delete("local", media_id)
        return media_ids

    async def _require_local_user(self, user_id: str) -> None:
        if not is_valid_user_id(user_id):
            raise invalid_param(f"Not a user ID: {user_id!r}")
        if server_name_of(user_id) != self.server_name:
            raise MatrixError(400, "M_UNKNOWN", "Can only look up local users")
        if not await self.users.user_exists(user_id):
            raise not_found("Unknown user")
