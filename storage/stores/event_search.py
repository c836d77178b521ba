"""Full-text search over room events (``event_search``): FTS5 on SQLite, tsvector with GIN on PostgreSQL.

Rows are written by the event pipeline in the event's own transaction (``insert_search_txn``) and
deleted with a redaction, a self-destruct or a retention purge (``delete_search_txn``), so the index
never holds text that the room no longer does. Queries are lists of words, each matched as a prefix,
all required; the SQL differs by engine, the answer's shape does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from storage.engine import Transaction
from storage.host import StorageHost
from storage.stores.events import StoredEvent

_COLUMNS = "stream_ordering, event_id, room_id, sender, key, origin_server_ts, value"
_INSERT_SQLITE = f"INSERT INTO event_search ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
_INSERT_POSTGRES = (
    f"INSERT INTO event_search ({_COLUMNS}, vector) VALUES (?, ?, ?, ?, ?, ?, ?, to_tsvector('english', ?))"
    " ON CONFLICT DO NOTHING"
)


@attrs.frozen(slots=True)
class SearchRow:
    """One event's searchable text."""

    stream_ordering: int
    event_id: str
    room_id: str
    sender: str
    key: str
    origin_server_ts: int
    value: str


#: The text each searchable event type contributes, under the spec's ``keys`` name ``content.<field>``.
SEARCHABLE = {"m.room.message": "body", "m.room.name": "name", "m.room.topic": "topic"}


def search_row_for(stored: StoredEvent) -> SearchRow | None:
    """The row an accepted timeline event gets, or None (other types, encrypted, non-string text)."""
    event = stored.event
    field = SEARCHABLE.get(event.type)
    is_state = event.state_key is not None
    if field is None or is_state != (event.type != "m.room.message") or event.state_key not in (None, ""):
        return None
    value = event.content.get(field)
    if not isinstance(value, str) or not value.strip():
        return None
    # PostgreSQL text holds no NUL, and a lone surrogate cannot be encoded: neither is a word anyway.
    clean = value.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")
    return SearchRow(stored.stream_ordering, event.event_id, event.room_id, event.sender, f"content.{field}",
                     event.origin_server_ts, clean)


@attrs.frozen(slots=True)
class SearchQuery:
    """What to look for: words (already split, lower-case, word characters only) in which rooms."""

    words: Sequence[str]
    room_ids: Sequence[str]
    keys: Sequence[str]
    by_rank: bool
    sender: str | None = None
    #: ``recent`` paging: only events below this stream position.
    before_stream: int | None = None
    #: ``rank`` paging: skip this many matches.
    offset: int = 0


@attrs.frozen(slots=True)
class SearchHit:
    event_id: str
    stream_ordering: int
    rank: float
    value: str


def insert_search_txn(txn: Transaction, rows: Sequence[SearchRow]) -> None:
    if not rows:
        return
    if txn.engine_name == "psycopg2":
        txn.executemany(_INSERT_POSTGRES, [(*_fields(row), row.value) for row in rows])
    else:
        txn.executemany(_INSERT_SQLITE, [_fields(row) for row in rows])


def _fields(row: SearchRow) -> tuple[int, str, str, str, str, int, str]:
    return (row.stream_ordering, row.event_id, row.room_id, row.sender, row.key, row.origin_server_ts,
            row.value)


def delete_search_txn(txn: Transaction, event_ids: Sequence[str]) -> None:
    if event_ids:
        marks = ", ".join("?" for _ in event_ids)
        txn.execute(f"DELETE FROM event_search WHERE event_id IN ({marks})", list(event_ids))


def _match(engine: str, words: Sequence[str]) -> str:
    """The engine's query text: every word, as a prefix. Words hold only word characters."""
    if engine == "psycopg2":
        return " & ".join(f"{word}:*" for word in words)
    return " AND ".join(f'"{word}"*' for word in words)


def _where(query: SearchQuery) -> tuple[str, list[object]]:
    clauses = [f"s.room_id IN ({', '.join('?' for _ in query.room_ids)})",
               f"s.key IN ({', '.join('?' for _ in query.keys)})"]
    args: list[object] = [*query.room_ids, *query.keys]
    if query.sender is not None:
        clauses.append("s.sender = ?")
        args.append(query.sender)
    return " AND ".join(clauses), args


class EventSearchStore:
    def __init__(self, hs: StorageHost) -> None:
        self.db = hs.db

    async def search(self, query: SearchQuery, limit: int) -> list[SearchHit]:
        """Up to ``limit`` matches, best first (``by_rank``) or newest first."""
        if not query.words or not query.room_ids or not query.keys:
            return []

        def select(txn: Transaction) -> list[SearchHit]:
            sql, args = self._select_sql(txn.engine_name, query, limit)
            txn.execute(sql, args)
            return [SearchHit(row[0], int(row[1]), float(row[2]), row[3]) for row in txn.fetchall()]

        return await self.db.run_interaction("search_events", select)

    async def count(self, query: SearchQuery) -> int:
        """How many events match in all (before visibility: the spec's count is approximate)."""
        if not query.words or not query.room_ids or not query.keys:
            return 0

        def select(txn: Transaction) -> int:
            where, args = _where(query)
            match = _match(txn.engine_name, query.words)
            if txn.engine_name == "psycopg2":
                txn.execute("SELECT COUNT(*) FROM event_search s"
                            f" WHERE s.vector @@ to_tsquery('english', ?) AND {where}", [match, *args])
            else:
                txn.execute("SELECT COUNT(*) FROM event_search_fts JOIN event_search s"
                            " ON s.stream_ordering = event_search_fts.rowid"
                            f" WHERE event_search_fts MATCH ? AND {where}",
                            [match, *args])
            return int(txn.fetchall()[0][0])

        return await self.db.run_interaction("count_search_events", select)

    @staticmethod
    def _select_sql(engine: str, query: SearchQuery, limit: int) -> tuple[str, list[object]]:
        where, args = _where(query)
        if query.before_stream is not None:
            where += " AND s.stream_ordering < ?"
            args.append(query.before_stream)
        order = "score DESC, s.stream_ordering DESC" if query.by_rank else "s.stream_ordering DESC"
        match = _match(engine, query.words)
        if engine == "psycopg2":
            sql = ("SELECT s.event_id, s.stream_ordering, ts_rank_cd(s.vector, q.query) AS score, s.value"
                   " FROM event_search s, to_tsquery('english', ?) AS q(query)"
                   f" WHERE s.vector @@ q.query AND {where}")
        else:
            # bm25() is lower for better matches.
            sql = ("SELECT s.event_id, s.stream_ordering, -bm25(event_search_fts) AS score, s.value"
                   " FROM event_search_fts JOIN event_search s ON s.stream_ordering = event_search_fts.rowid"
                   f" WHERE event_search_fts MATCH ? AND {where}")
        return f"{sql} ORDER BY {order} LIMIT ? OFFSET ?", [match, *args, limit, query.offset]
