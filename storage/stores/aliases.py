"""Room aliases (#name:server -> room ID) held by this server."""

from __future__ import annotations

from storage.engine import Transaction
from storage.host import StorageHost

_GET = "SELECT room_id, creator FROM room_aliases WHERE alias = ?"
_FOR_ROOM = "SELECT alias FROM room_aliases WHERE room_id = ? ORDER BY alias"
_INSERT = "INSERT INTO room_aliases (alias, room_id, creator) VALUES (?, ?, ?) ON CONFLICT (alias) DO NOTHING"
_DELETE = "DELETE FROM room_aliases WHERE alias = ?"
_MOVE = "UPDATE room_aliases SET room_id = ? WHERE room_id = ?"


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

    async def move_aliases(self, old_room_id: str, new_room_id: str) -> list[str]:
        """Point every alias of one room at another (a room upgrade); returns the aliases moved."""

        def move(txn: Transaction) -> list[str]:
            txn.execute(_FOR_ROOM, (old_room_id,))
            moved = [row[0] for row in txn.fetchall()]
            txn.execute(_MOVE, (new_room_id, old_room_id))
            return moved

        return await self.db.run_interaction("move_aliases", move)


def insert_alias_txn(txn: Transaction, alias: str, room_id: str, creator: str) -> bool:
    txn.execute(_INSERT, (alias, room_id, creator))
    return txn.rowcount > 0
