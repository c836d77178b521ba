"""Server admins managing accounts, in the shapes of Synapse's admin API (``/_synapse/admin``).

Every change goes through the accounts area's own handlers (registration, passwords,
deactivation, devices, profiles), so an admin's change has the same effects as the user's.
"""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.errors import MatrixError, invalid_param, not_found
from homeserver.handlers.accounts.account import AccountHandler
from homeserver.handlers.accounts.auth import Requester, generate_token, hash_token, now_ms
from homeserver.handlers.accounts.devices import DeviceHandler
from homeserver.handlers.accounts.passwords import PasswordHasher
from homeserver.handlers.accounts.profile import ProfileHandler
from homeserver.handlers.accounts.registration import RegistrationHandler, check_password_length
from homeserver.handlers.accounts.user_ids import split_user_id
from homeserver.handlers.rooms.members import joined_rooms
from homeserver.server import Server
from storage.stores.access_tokens import AccessTokenStore
from storage.stores.admin_users import (
    MEDIA_ORDER,
    ORDER_COLUMNS,
    AdminUserRow,
    AdminUserStore,
    MediaQuery,
    UserFilter,
    media_statistics,
)
from storage.stores.devices import DeviceRecord
from storage.stores.profiles import ProfileStore
from storage.stores.users import UserRecord, UserStore

__all__ = ["MEDIA_ORDER", "ORDER_COLUMNS", "AdminUsersHandler", "MediaQuery", "UserChanges", "UserFilter"]


@attrs.frozen(kw_only=True)
class UserChanges:
    """The body of ``PUT /_synapse/admin/v2/users/{user_id}``, type-checked (absent: None)."""

    password: str | None = None
    logout_devices: bool = True
    displayname: str | None = None
    avatar_url: str | None = None
    admin: bool | None = None
    deactivated: bool | None = None
    user_type: str | None = None


def list_entry(row: AdminUserRow) -> dict[str, Any]:
    """One user of ``GET /v2/users``, with Synapse's keys."""
    return {
        "name": row.user_id, "user_type": None, "is_guest": row.is_guest, "admin": row.is_admin,
        "deactivated": row.deactivated, "shadow_banned": row.shadow_banned, "displayname": row.displayname,
        "avatar_url": row.avatar_url, "creation_ts": row.created_ms, "approved": True, "erased": False,
        "last_seen_ts": None, "locked": False,
    }


def device_entry(device: DeviceRecord) -> dict[str, Any]:
    """A device in the admin API: Synapse lists every key, null when unknown."""
    return {"device_id": device.device_id, "display_name": device.display_name,
            "last_seen_ip": device.last_seen_ip, "last_seen_ts": device.last_seen_ms,
            "last_seen_user_agent": None, "user_id": device.user_id}


class AdminUsersHandler:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.server_name = hs.server_name
        self.users = hs.get(UserStore)
        self.listing = hs.get(AdminUserStore)
        self.profiles = hs.get(ProfileStore)
        self.profile_handler = hs.get(ProfileHandler)
        self.devices = hs.get(DeviceHandler)
        self.tokens = hs.get(AccessTokenStore)
        self.passwords = hs.get(PasswordHasher)
        self.accounts = hs.get(AccountHandler)
        self.registration = hs.get(RegistrationHandler)

    def check_local(self, user_id: str) -> str:
        parts = split_user_id(user_id)
        if parts is None:
            raise invalid_param(f"Invalid user ID: {user_id}")
        if parts[1] != self.server_name:
            raise MatrixError(400, "M_INVALID_PARAM", "Can only look up local users")
        return parts[0]

    async def get_existing(self, user_id: str) -> UserRecord:
        self.check_local(user_id)
        user = await self.users.get_user(user_id)
        if user is None:
            raise not_found("User not found")
        return user

    async def list_users(self, query: UserFilter) -> dict[str, Any]:
        rows, total = await self.listing.list_users(query)
        body: dict[str, Any] = {"users": [list_entry(row) for row in rows], "total": total}
        if query.offset + len(rows) < total:
            body["next_token"] = str(query.offset + len(rows))
        return body

    async def media_statistics(self, query: MediaQuery) -> dict[str, Any]:
        """``GET /v1/statistics/users/media``: files and bytes per local uploader."""
        rows, total = await media_statistics(self.listing, query)
        body: dict[str, Any] = {"users": rows, "total": total}
        if query.offset + len(rows) < total:
            body["next_token"] = query.offset + len(rows)
        return body

    async def query_user(self, user_id: str) -> dict[str, Any]:
        """``GET /v2/users/{user_id}``."""
        user = await self.get_existing(user_id)
        profile = await self.profiles.get_profile(user_id)
        return {
            "name": user.user_id, "admin": user.is_admin, "deactivated": user.deactivated,
            "is_guest": user.is_guest, "creation_ts": user.created_ms, "user_type": None,
            "displayname": profile.displayname if profile else None,
            "avatar_url": profile.avatar_url if profile else None,
            "threepids": [], "external_ids": [], "appservice_id": None, "shadow_banned": user.shadow_banned,
            "consent_server_notice_sent": None, "consent_version": None, "consent_ts": None,
            "erased": False, "locked": False, "approved": True, "last_seen_ts": None,
        }

    async def create_or_modify(self, admin: Requester, user_id: str, changes: UserChanges) -> bool:
        """``PUT /v2/users/{user_id}``: True when the account was created."""
        localpart = self.check_local(user_id)
        user = await self.users.get_user(user_id)
        created = user is None
        if user is None:
            if changes.deactivated:
                raise invalid_param("A new account cannot start deactivated")
            await self.registration.register_user(localpart, changes.password, is_admin=bool(changes.admin))
        else:
            await self._modify(user, changes)
        for field, value in (("displayname", changes.displayname), ("avatar_url", changes.avatar_url)):
            if value is not None:
                await self.profile_handler.set_field(admin, user_id, field, value)
        return created

    async def _modify(self, user: UserRecord, changes: UserChanges) -> None:
        user_id = user.user_id
        if changes.password is not None:
            await self.reset_password(user_id, changes.password, changes.logout_devices)
        if changes.admin is not None and changes.admin != user.is_admin:
            await self.set_admin(user_id, changes.admin)
        if changes.deactivated is True and not user.deactivated:
            await self.accounts.deactivate(user_id)
        elif changes.deactivated is False and user.deactivated:
            if changes.password is None and user.password_hash is None:
                raise invalid_param("Reactivating an account needs a password")
            await self.users.set_deactivated(user_id, False)

    async def deactivate(self, user_id: str, erase: bool) -> dict[str, Any]:
        """``POST /v1/deactivate/{user_id}``; ``erase`` also drops the profile's extra fields."""
        await self.get_existing(user_id)
        await self.accounts.deactivate(user_id)
        if erase:
            await self.profiles.clear_profile(user_id)
        return {"id_server_unbind_result": "success"}

    async def reset_password(self, user_id: str, new_password: str, logout_devices: bool) -> None:
        await self.get_existing(user_id)
        check_password_length(new_password)
        await self.users.set_password_hash(user_id, await self.passwords.hash(new_password))
        if logout_devices:
            await self.devices.delete_all_devices(user_id)
            await self.tokens.delete_user_tokens(user_id)
        self.tokens.invalidate_user(user_id)

    async def set_admin(self, user_id: str, is_admin: bool) -> None:
        await self.get_existing(user_id)
        await self.users.set_admin(user_id, is_admin)
        self.tokens.invalidate_user(user_id)  # cached tokens carry the old flag

    async def set_shadow_banned(self, user_id: str, banned: bool) -> None:
        """``POST``/``DELETE /v1/users/{user_id}/shadow_ban``; the next request carries the flag."""
        await self.get_existing(user_id)
        await self.users.set_shadow_banned(user_id, banned)
        self.tokens.invalidate_user(user_id)

    async def whois(self, user_id: str) -> dict[str, Any]:
        """``GET /v1/whois/{user_id}``: each device's last connection, all in one session
        under the device key "" (Synapse's shape, which admin tools read)."""
        await self.get_existing(user_id)
        connections = [{"ip": device.last_seen_ip, "last_seen": device.last_seen_ms, "user_agent": None}
                       for device in await self.devices.get_devices(user_id) if device.last_seen_ms is not None]
        return {"user_id": user_id, "devices": {"": {"sessions": [{"connections": connections}]}}}

    async def list_devices(self, user_id: str) -> dict[str, Any]:
        await self.get_existing(user_id)
        devices = [device_entry(d) for d in await self.devices.get_devices(user_id)]
        return {"devices": devices, "total": len(devices)}

    async def get_device(self, user_id: str, device_id: str) -> dict[str, Any]:
        await self.get_existing(user_id)
        return device_entry(await self.devices.get_device(user_id, device_id))

    async def rename_device(self, user_id: str, device_id: str, display_name: str | None) -> None:
        await self.get_existing(user_id)
        await self.devices.set_display_name(user_id, device_id, display_name)

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        await self.get_existing(user_id)
        await self.devices.delete_devices(user_id, device_ids)

    async def joined_rooms(self, user_id: str) -> dict[str, Any]:
        await self.get_existing(user_id)
        rooms = sorted(await joined_rooms(self.hs, user_id))
        return {"joined_rooms": rooms, "total": len(rooms)}

    async def login_as(self, user_id: str, valid_until_ms: int | None) -> dict[str, Any]:
        """``POST /v1/users/{user_id}/login``: a device-less token to act as the user."""
        user = await self.get_existing(user_id)
        if user.deactivated:
            raise invalid_param("The account is deactivated")
        now = now_ms(self.hs)
        if valid_until_ms is not None and valid_until_ms <= now:
            raise invalid_param("valid_until_ms must be in the future")
        token = generate_token("vat")
        await self.tokens.add_access_token(hash_token(token), user_id, None, now, valid_until_ms)
        return {"access_token": token}
