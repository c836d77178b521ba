"""Room aliases (#name:server -> room ID) held by this server."""

from __future__ import annotations

from storage.engine import Transaction
from storage.host import StorageHost

_GET = "SELECT room_id, creator FROM room_aliases WHERE alias = ?"
_FOR_ROOM = "SELECT alias FROM room_aliases WHERE room_id = ? ORDER BY alias"
_INSERT = "INSERT INTO room_aliases (alias, room_id, creator) VALUES (?, ?, ?) ON CONFLICT (alias) DO NOTHING"
_DELETE = "DELETE FROM room_aliases WHERE alias = ?"


class AliasStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def get_alias(self, alias: str) -> tuple[str, str] | None:
        """(room_id, creator) for the alias, or None."""
        rows = await self.db.execute("get_alias", _GET, alias)
        return (rows[0][0], rows[0][1]) if rows else None

    async def get_aliases_for_room(self, room_id: str) -> list[str]:
        rows = await self.db.execute("get_aliases_for_room", _FOR_ROOM, room_id)
        return [row[0] for row in rows]

    async def create_alias(self, alias: str, room_id: str, creator: str) -> bool:
        """False when the alias is taken."""

        def insert(txn: Transaction) -> bool:
            return insert_alias_txn(txn, alias, room_id, creator)

        return await self.db.run_interaction("create_alias", insert)

    async def delete_alias(self, alias: str) -> bool:
        def delete(txn: Transaction) -> bool:
            txn.execute(_DELETE, (alias,))
            return txn.rowcount > 0

        return await self.db.run_interaction("delete_alias", delete)


def insert_alias_txn(txn: Transaction, alias: str, room_id: str, creator: str) -> bool:
    txn.execute(_INSERT, (alias, room_id, creator))
    return txn.rowcount > 0
