"""``vignette-port-db``: copy a Vignette SQLite database into PostgreSQL.

    vignette-port-db --sqlite-database homeserver.db --postgres-config homeserver.yaml

The PostgreSQL database (the ``database`` section of the config, Synapse's flag name) gets
the schema this version ships, then every table's rows in batches. Each batch commits
together with the tool's bookmark (``port_db_progress``), so a run that is stopped
resumes where it was; a target that holds data without a bookmark is refused. The
SQLite file is opened read-only; stop the server while porting. When it is done, point
``database`` at PostgreSQL and start the server.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

import attrs
import yaml
from twisted.internet import task
from twisted.internet.defer import Deferred

from homeserver.cli.progress import Progress
from storage.engine import Database, Transaction, create_database
from storage.migrate import VERSION_TABLE, load_migrations, prepare_database

logger = logging.getLogger("vignette.port_db")

PROGRESS_TABLE = "port_db_progress"
#: The full-text index: FTS5 tables on SQLite, a tsvector column on PostgreSQL, so not copied.
SEARCH_TABLES = ("event_search",)
#: Tables a migration fills with a counter row (0145): the copy replaces the row, and they
#: do not count as data when checking that the target is empty.
SEEDED_TABLES = ("federation_edu_queue_ids",)
#: The migration that indexes stored events for search, run again once the events are in.
SEARCH_BACKFILL_MIGRATION = 123
DEFAULT_BATCH = 2000
_CREATE_PROGRESS = (
    f"CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (table_name TEXT PRIMARY KEY, last_rowid BIGINT NOT NULL,"
    " rows_copied BIGINT NOT NULL, done INTEGER NOT NULL)"
)


class PortError(Exception):
    """Why the port cannot go on, in one line for the operator."""


@attrs.frozen
class Table:
    name: str
    columns: tuple[str, ...]
    rows: int


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vignette-port-db",
                                     description="Copy a Vignette SQLite database into PostgreSQL (resumable).")
    parser.add_argument("--sqlite-database", required=True, help="the SQLite database file to read")
    parser.add_argument("--postgres-config", required=True,
                        help="a YAML file (homeserver.yaml will do) whose database section is the PostgreSQL target")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="rows per transaction")
    parser.add_argument("--progress", choices=("auto", "bar", "log"), default="auto",
                        help="a progress bar (auto: when stdout is a terminal) or log lines")
    return parser.parse_args(argv)


def postgres_section(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise PortError(f"cannot read {path}: {exc}") from None
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict) or database.get("name") != "psycopg2":
        raise PortError(f"{path}: the database section must have name: psycopg2")
    return database


def open_source(path: str) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise PortError(f"cannot open {path}: {exc}") from None


def source_tables(source: sqlite3.Connection) -> list[Table]:
    """Every table but the schema's own record and SQLite's, with its columns and size."""
    names = [row[0] for row in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    tables = []
    for name in names:
        if name in (VERSION_TABLE, PROGRESS_TABLE) or name.startswith(SEARCH_TABLES):
            continue  # the search index is SQLite's own (FTS5); PostgreSQL's is rebuilt after the copy
        columns = tuple(row[1] for row in source.execute(f'PRAGMA table_info("{name}")'))
        rows = int(source.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0])
        tables.append(Table(name, columns, rows))
    return tables


def check_source_schema(source: sqlite3.Connection) -> None:
    """The SQLite schema must be exactly this version's, so the rows fit the new tables."""
    shipped = {m.number for m in load_migrations()}
    try:
        applied = {int(row[0]) for row in source.execute(f"SELECT number FROM {VERSION_TABLE}")}
    except sqlite3.Error:
        raise PortError("the SQLite file is not a Vignette database (no schema_migrations table)") from None
    if applied - shipped:
        raise PortError("the SQLite database is from a newer Vignette; port it with that version")
    if shipped - applied:
        raise PortError("the SQLite database's schema is older than this version: start Vignette on it "
                        "once (it upgrades the schema), stop it, then port")


def _read_progress(txn: Transaction, names: list[str]) -> dict[str, tuple[int, int, bool]]:
    txn.execute(_CREATE_PROGRESS)
    txn.execute(f"SELECT table_name, last_rowid, rows_copied, done FROM {PROGRESS_TABLE}")
    progress = {row[0]: (int(row[1]), int(row[2]), bool(row[3])) for row in txn.fetchall()}
    if not progress:
        for name in names:
            if name in SEEDED_TABLES:
                continue
            txn.execute(f'SELECT 1 FROM "{name}" LIMIT 1')
            if txn.fetchall():
                raise PortError(f"the PostgreSQL database already holds data (table {name}) and was not "
                                "filled by this tool; port into an empty database")
    return progress


def _copy_batch(txn: Transaction, table: Table, rows: list[tuple[Any, ...]], last_rowid: int,
                copied: int, done: bool) -> None:
    if rows and table.name in SEEDED_TABLES:  # one counter row: the source's replaces the seed
        txn.execute(f'DELETE FROM "{table.name}"')
    if rows:
        columns = ", ".join(f'"{c}"' for c in table.columns)
        marks = ", ".join("?" for _ in table.columns)
        txn.executemany(f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})', rows)
    txn.execute(
        f"INSERT INTO {PROGRESS_TABLE} (table_name, last_rowid, rows_copied, done) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (table_name) DO UPDATE SET last_rowid = excluded.last_rowid,"
        " rows_copied = excluded.rows_copied, done = excluded.done",
        (table.name, last_rowid, copied, int(done)),
    )


async def copy_table(source: sqlite3.Connection, target: Database, table: Table, start: tuple[int, int],
                     batch: int, progress: Progress) -> int:
    """Copy the rows after the bookmark, a batch per transaction; how many rows in all."""
    last_rowid, copied = start
    columns = ", ".join(f'"{c}"' for c in table.columns)
    select = f'SELECT rowid, {columns} FROM "{table.name}" WHERE rowid > ? ORDER BY rowid LIMIT ?'
    while True:
        fetched = source.execute(select, (last_rowid, batch)).fetchall()
        rows = [tuple(row[1:]) for row in fetched]
        if fetched:
            last_rowid = int(fetched[-1][0])
        copied += len(rows)
        finished = len(fetched) < batch
        await target.run_interaction(f"port {table.name}", _copy_batch, table, rows, last_rowid, copied, finished)
        progress.advance(len(rows), table.name)
        if finished:
            return copied


def _target_columns(txn: Transaction) -> dict[str, set[str]]:
    txn.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()")
    columns: dict[str, set[str]] = {}
    for name, column in txn.fetchall():
        columns.setdefault(name, set()).add(column)
    return columns


async def port(source: sqlite3.Connection, target: Database, batch: int, bar: bool | None) -> list[str]:
    """The whole port; the summary lines it prints."""
    check_source_schema(source)
    tables = source_tables(source)
    logger.info("bringing the PostgreSQL schema up to date")
    await prepare_database(target)
    target_columns = await target.run_interaction("port_target_columns", _target_columns)
    for table in tables:
        missing = set(table.columns) - target_columns.get(table.name, set())
        if missing:
            raise PortError(f"table {table.name}: PostgreSQL lacks columns {sorted(missing)}")
    bookmarks = await target.run_interaction("port_progress", _read_progress, [t.name for t in tables])
    remaining = sum(t.rows - bookmarks.get(t.name, (0, 0, False))[1] for t in tables
                    if not bookmarks.get(t.name, (0, 0, False))[2])
    if bookmarks:
        logger.info("resuming an earlier port: %d rows to go", remaining)
    summary = []
    with Progress("porting", max(remaining, 0), bar=bar) as progress:
        for table in tables:
            last_rowid, copied, done = bookmarks.get(table.name, (0, 0, False))
            if not done:
                copied = await copy_table(source, target, table, (last_rowid, copied), batch, progress)
            summary.append(f"{table.name}: {copied} rows")
    logger.info("rebuilding the search index")
    await target.run_interaction("port_rebuild_search", _rebuild_search)
    return summary


def _rebuild_search(txn: Transaction) -> None:
    """Index the copied events for search (idempotent: a resumed port runs it again)."""
    (backfill,) = [m for m in load_migrations() if m.number == SEARCH_BACKFILL_MIGRATION]
    txn.execute_script(backfill.script_for(txn.engine_name))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.batch_size < 1:
        print("vignette-port-db: --batch-size must be at least 1", file=sys.stderr)
        return 2
    bar = {"auto": None, "bar": True, "log": False}[args.progress]
    outcome = {"code": 1}

    async def run(reactor: Any) -> None:
        target = None
        try:
            database = postgres_section(args.postgres_config)
            source = open_source(args.sqlite_database)
            target = create_database({"name": "psycopg2", "args": dict(database.get("args") or {})})
            for line in await port(source, target, args.batch_size, bar):
                print(line)
            print("vignette-port-db: done; point database at PostgreSQL and start the server")
            outcome["code"] = 0
        except PortError as exc:
            print(f"vignette-port-db: {exc}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - one line for the operator, the rest at debug
            logger.debug("port failed", exc_info=True)
            print(f"vignette-port-db: {type(exc).__name__}: {str(exc).strip()}", file=sys.stderr)
        finally:
            if target is not None:
                await target.close()

    try:
        task.react(lambda reactor: Deferred.fromCoroutine(run(reactor)))
    except SystemExit:
        pass
    return outcome["code"]


if __name__ == "__main__":
    sys.exit(main())
