"""Server-side key backup (/room_keys): versions, and the encrypted session keys in them.

The server cannot read the keys; it only decides which of two copies of a
session to keep, by the spec's rule: a verified copy beats an unverified one,
then the lower first_message_index wins, then the lower forwarded_count.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, bad_json, invalid_param, not_found, too_large
from homeserver.handlers.e2ee.e2e_json import require_object, require_string
from homeserver.server import Server
from storage.stores.e2e_room_keys import BackupVersion, E2eRoomKeysStore, KeySelector, RoomKey

# The value types the HTTP layer needs, so it never imports storage itself.
__all__ = ["KeySelector", "RoomKey", "RoomKeysHandler", "parse_room_key", "parse_sessions", "should_replace"]

MAX_KEYS_PER_UPLOAD = 10_000
MAX_AUTH_DATA_KEYS = 100


def should_replace(current: RoomKey, new: RoomKey) -> bool:
    if current.is_verified != new.is_verified:
        return new.is_verified
    if current.first_message_index != new.first_message_index:
        return new.first_message_index < current.first_message_index
    return new.forwarded_count < current.forwarded_count


def wrong_version(current: str | None) -> MatrixError:
    return MatrixError(403, "M_WRONG_ROOM_KEYS_VERSION", "Wrong backup version", current_version=current)


def no_backup() -> MatrixError:
    return not_found("No current backup version")


def parse_version(text: Any) -> int:
    if not isinstance(text, str) or not text.isdigit() or len(text) > 18:
        raise not_found("Unknown backup version")
    return int(text)


def version_json(info: BackupVersion, count: int) -> dict[str, Any]:
    return {"algorithm": info.algorithm, "auth_data": info.auth_data, "count": count,
            "etag": str(info.etag), "version": str(info.version)}


def parse_room_key(value: Any, what: str) -> RoomKey:
    key = require_object(value, what)
    numbers = {}
    for field in ("first_message_index", "forwarded_count"):
        number = key.get(field)
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise bad_json(f"{what}.{field} must be a non-negative integer")
        numbers[field] = number
    if not isinstance(key.get("is_verified"), bool):
        raise bad_json(f"{what}.is_verified must be a boolean")
    session_data = require_object(key.get("session_data"), f"{what}.session_data")
    return RoomKey(numbers["first_message_index"], numbers["forwarded_count"], key["is_verified"], session_data)


def parse_sessions(value: Any, room_id: str) -> dict[tuple[str, str], RoomKey]:
    sessions = require_object(require_object(value, f"rooms[{room_id}]").get("sessions"),
                              f"rooms[{room_id}].sessions")
    return {(room_id, require_string(session_id, "session IDs")): parse_room_key(key, f"session {session_id}")
            for session_id, key in sessions.items()}


class RoomKeysHandler:
    def __init__(self, hs: Server) -> None:
        self.store = hs.get(E2eRoomKeysStore)

    async def create_version(self, user_id: str, body: dict[str, Any]) -> str:
        algorithm = require_string(body.get("algorithm"), "algorithm")
        auth_data = require_object(body.get("auth_data"), "auth_data")
        return str(await self.store.create_version(user_id, algorithm, auth_data))

    async def get_version(self, user_id: str, version: str | None) -> dict[str, Any]:
        found = await self.store.get_version(user_id, None if version is None else parse_version(version))
        if found is None:
            raise no_backup() if version is None else not_found("Unknown backup version")
        return version_json(*found)

    async def update_version(self, user_id: str, version: str, body: dict[str, Any]) -> None:
        number = parse_version(version)
        algorithm = require_string(body.get("algorithm"), "algorithm")
        auth_data = require_object(body.get("auth_data"), "auth_data")
        if "version" in body and body["version"] != version:
            raise invalid_param("version in the body does not match the path")
        found = await self.store.get_version(user_id, number)
        if found is None:
            raise not_found("Unknown backup version")
        if found[0].algorithm != algorithm:
            raise invalid_param("The algorithm of a backup version cannot change")
        if not await self.store.update_version(user_id, number, auth_data):
            raise not_found("Unknown backup version")

    async def delete_version(self, user_id: str, version: str | None) -> None:
        if version is None:
            found = await self.store.get_version(user_id, None)
            if found is None:
                raise no_backup()
            number = found[0].version
        else:
            number = parse_version(version)
        if not await self.store.delete_version(user_id, number):
            raise not_found("Unknown backup version")

    async def put_keys(self, user_id: str, version: str, keys: dict[tuple[str, str], RoomKey]) -> dict[str, Any]:
        if len(keys) > MAX_KEYS_PER_UPLOAD:
            raise too_large(f"At most {MAX_KEYS_PER_UPLOAD} keys per upload")
        if not version.isdigit() or len(version) > 18:
            raise wrong_version(await self._current_version(user_id))
        result = await self.store.put_keys(user_id, int(version), keys, should_replace)
        if result is None:
            raise no_backup()
        if isinstance(result, str):
            raise wrong_version(result)
        info, count = result
        return {"etag": str(info.etag), "count": count}

    async def get_keys(self, user_id: str, version: str, selector: KeySelector) -> dict[tuple[str, str], RoomKey]:
        keys = await self.store.get_keys(user_id, parse_version(version), selector)
        if keys is None:
            raise not_found("Unknown backup version")
        return keys

    async def delete_keys(self, user_id: str, version: str, selector: KeySelector) -> dict[str, Any]:
        result = await self.store.delete_keys(user_id, parse_version(version), selector)
        if result is None:
            raise not_found("Unknown backup version")
        info, count = result
        return {"etag": str(info.etag), "count": count}

    async def _current_version(self, user_id: str) -> str | None:
        found = await self.store.get_version(user_id, None)
        return None if found is None else str(found[0].version)
