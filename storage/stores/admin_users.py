"""What the admin API's user listing reads: ``users`` with their profiles, filtered and paged in SQL.

The other admin reads reuse the ordinary stores; only the listing needs a query of its own
(Synapse's ``GET /_synapse/admin/v2/users``: search, filters, ordering, a total).
"""

from __future__ import annotations

from typing import Any

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.profiles import like_pattern

_FROM = " FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id"
_COLUMNS = ("SELECT u.user_id, u.is_admin, u.is_guest, u.deactivated, u.created_ms, p.displayname,"
            " p.avatar_url, u.shadow_banned")
#: Synapse's order_by values and the column each sorts on.
ORDER_COLUMNS = {
    "name": "u.user_id", "is_guest": "u.is_guest", "admin": "u.is_admin", "deactivated": "u.deactivated",
    "creation_ts": "u.created_ms", "displayname": "p.displayname", "avatar_url": "p.avatar_url",
}


@attrs.frozen
class UserFilter:
    """One listing request, already validated."""

    offset: int = 0
    limit: int = 100
    user_id: str | None = None
    name: str | None = None
    guests: bool = True
    deactivated: bool = False
    admins: bool | None = None
    order_by: str = "name"
    descending: bool = False


@attrs.frozen
class AdminUserRow:
    user_id: str
    is_admin: bool
    is_guest: bool
    deactivated: bool
    created_ms: int
    displayname: str | None
    avatar_url: str | None
    shadow_banned: bool = False


def _where(query: UserFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if query.user_id:
        clauses.append("LOWER(u.user_id) LIKE ? ESCAPE '!'")
        args.append(like_pattern(query.user_id.lower()))
    if query.name:
        clauses.append("(LOWER(u.user_id) LIKE ? ESCAPE '!' OR LOWER(p.displayname) LIKE ? ESCAPE '!')")
        args += [like_pattern(query.name.lower())] * 2
    if not query.guests:
        clauses.append("u.is_guest = 0")
    if not query.deactivated:
        clauses.append("u.deactivated = 0")
    if query.admins is not None:
        clauses.append("u.is_admin = ?")
        args.append(int(query.admins))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class AdminUserStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def list_users(self, query: UserFilter) -> tuple[list[AdminUserRow], int]:
        """One page of users and how many match in all."""
        where, args = _where(query)
        direction = "DESC" if query.descending else "ASC"
        order = f" ORDER BY {ORDER_COLUMNS[query.order_by]} {direction}, u.user_id {direction}"

        def select(txn: Transaction) -> tuple[list[AdminUserRow], int]:
            txn.execute("SELECT COUNT(*)" + _FROM + where, args)
            total = int(txn.fetchall()[0][0])
            txn.execute(_COLUMNS + _FROM + where + order + " LIMIT ? OFFSET ?", [*args, query.limit, query.offset])
            rows = [AdminUserRow(r[0], bool(r[1]), bool(r[2]), bool(r[3]), int(r[4]), r[5], r[6], bool(r[7]))
                    for r in txn.fetchall()]
            return rows, total

        return await self.db.run_interaction("admin_list_users", select)


#: ``GET /v1/statistics/users/media``'s order_by values and their columns.
MEDIA_ORDER = {"user_id": "m.user_id", "displayname": "p.displayname", "media_length": "media_length",
               "media_count": "media_count"}
_MEDIA_FROM = (
    " FROM local_media m LEFT JOIN profiles p ON p.user_id = m.user_id"
    " WHERE m.created_ts >= ? AND m.created_ts <= ? AND m.media_length IS NOT NULL"
)


@attrs.frozen
class MediaQuery:
    offset: int = 0
    limit: int = 100
    from_ts: int = 0
    until_ts: int = 2**62
    search_term: str | None = None
    order_by: str = "user_id"
    descending: bool = False


async def media_statistics(store: AdminUserStore, query: MediaQuery) -> tuple[list[dict[str, Any]], int]:
    """Per uploader: how many local files and bytes (one page, and how many uploaders in all)."""
    where = _MEDIA_FROM
    args: list[Any] = [query.from_ts, query.until_ts]
    if query.search_term:
        where += " AND (LOWER(m.user_id) LIKE ? ESCAPE '!' OR LOWER(p.displayname) LIKE ? ESCAPE '!')"
        args += [like_pattern(query.search_term)] * 2
    direction = "DESC" if query.descending else "ASC"
    group = " GROUP BY m.user_id, p.displayname"
    order = f" ORDER BY {MEDIA_ORDER[query.order_by]} {direction}, m.user_id {direction}"

    def select(txn: Transaction) -> tuple[list[dict[str, Any]], int]:
        txn.execute("SELECT COUNT(DISTINCT m.user_id)" + where, args)
        total = int(txn.fetchall()[0][0])
        txn.execute("SELECT m.user_id, p.displayname, COUNT(*) AS media_count, SUM(m.media_length) AS media_length"
                    + where + group + order + " LIMIT ? OFFSET ?", [*args, query.limit, query.offset])
        rows = [{"user_id": r[0], "displayname": r[1], "media_count": int(r[2]), "media_length": int(r[3])}
                for r in txn.fetchall()]
        return rows, total

    return await store.db.run_interaction("admin_media_statistics", select)
