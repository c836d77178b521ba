"""Account locking and suspension (spec 1.12's ``/v1/admin/lock`` and ``/v1/admin/suspend``).

- A **locked** account can do nothing but log out: every other authenticated request is 401
  ``M_USER_LOCKED`` with ``soft_logout: true`` (``Auth`` checks it with the token).
- A **suspended** account can read, leave rooms, redact and log out, but not act: sending events,
  joining or creating rooms, inviting, changing its profile and uploading media are 403
  ``M_USER_SUSPENDED`` (``check_not_suspended`` in those handlers).

Only server admins may lock or suspend, never themselves nor another admin, and only local,
existing, active accounts (400 ``M_INVALID_PARAM`` for another server's user, 404 otherwise).
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.events.identifiers import is_valid_user_id, server_name_of
from homeserver.server import Server
from storage.stores.user_restrictions import UserRestrictionsStore
from storage.stores.users import UserStore

FLAGS = {"lock": "locked", "suspend": "suspended"}


def user_suspended() -> MatrixError:
    return MatrixError(403, "M_USER_SUSPENDED", "Your account is suspended")


async def check_not_suspended(hs: Server, user_id: str) -> None:
    """403 M_USER_SUSPENDED when the account may not act."""
    if await hs.get(UserRestrictionsStore).is_suspended(user_id):
        raise user_suspended()


class AccountRestrictions:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self.store = hs.get(UserRestrictionsStore)
        self.users = hs.get(UserStore)

    async def _target(self, admin_id: str, user_id: str, changing: bool) -> None:
        if not is_valid_user_id(user_id) or server_name_of(user_id) != self.hs.server_name:
            raise invalid_param("The user is not on this server")
        if changing and user_id == admin_id:
            raise forbidden("You cannot do that to your own account")
        record = await self.users.get_user(user_id)
        if record is None or record.deactivated:
            raise not_found("No such user")
        if record.is_admin:
            raise forbidden("The user is a server admin")

    async def get(self, admin_id: str, action: str, user_id: str) -> dict[str, Any]:
        await self._target(admin_id, user_id, changing=False)
        flag = FLAGS[action]
        value = await (self.store.is_locked(user_id) if flag == "locked" else self.store.is_suspended(user_id))
        return {flag: value}

    async def set(self, admin_id: str, action: str, user_id: str, value: bool) -> dict[str, Any]:
        await self._target(admin_id, user_id, changing=True)
        flag = FLAGS[action]
        await self.store.set_flag(user_id, flag, value, int(self.hs.reactor.seconds() * 1000))
        return {flag: value}
