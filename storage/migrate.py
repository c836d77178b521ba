"""Numbered schema migrations, applied at start-up.

Files live in storage/migrations/ as `NNNN_short_name.sql` (portable SQL), or as a
pair `NNNN_short_name.sqlite.sql` + `NNNN_short_name.postgres.sql` where dialects
differ. Number ranges are reserved per area, so numbers may have gaps: we record the
SET of applied numbers in `schema_migrations` and apply every missing one in numeric
order, each in its own transaction together with its record, so a crash mid-way
leaves either the whole migration or none of it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import attrs

from storage.engine import Database, Transaction

logger = logging.getLogger(__name__)

VERSION_TABLE = "schema_migrations"

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$")

# Which dialect file each engine reads.
_DIALECT = {"sqlite3": "sqlite", "psycopg2": "postgres"}

# Arbitrary constant key for pg_advisory_xact_lock: serialises migration runs when
# several processes start at once against one PostgreSQL database.
_PG_MIGRATION_LOCK_KEY = 0x76676E74


class SchemaTooNewError(Exception):
    """The database has migrations this code does not know: it is from a newer version."""


class MigrationError(Exception):
    """The migration files shipped with the code are inconsistent."""


@attrs.frozen
class Migration:
    number: int
    name: str
    # Keyed by dialect ("sqlite", "postgres"), or "" for one portable script.
    scripts: dict[str, str]

    def script_for(self, engine_name: str) -> str:
        if "" in self.scripts:
            return self.scripts[""]
        return self.scripts[_DIALECT[engine_name]]


def default_migrations_dir() -> Traversable:
    """The migrations shipped inside the `storage` package (works when pip-installed)."""
    return resources.files("storage") / "migrations"


def load_migrations(directory: Traversable | Path | None = None) -> list[Migration]:
    """Read and validate migration files, sorted by number."""
    directory = default_migrations_dir() if directory is None else directory
    found: dict[int, tuple[str, dict[str, str]]] = {}
    entries: Iterable[Traversable] = directory.iterdir() if directory.is_dir() else ()
    for entry in entries:
        match = _FILE_NAME.match(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise MigrationError(f"badly named migration file: {entry.name}")
            continue
        number, name, dialect = int(match[1]), match[2], match[3] or ""
        known_name, scripts = found.setdefault(number, (name, {}))
        if known_name != name:
            raise MigrationError(f"migration {number:04d} used twice: {known_name} and {name}")
        scripts[dialect] = entry.read_text(encoding="utf-8")
    migrations = []
    for number, (name, scripts) in sorted(found.items()):
        if "" in scripts and len(scripts) > 1:
            raise MigrationError(f"migration {number:04d}_{name} is both portable and per-dialect")
        if "" not in scripts and set(scripts) != set(_DIALECT.values()):
            raise MigrationError(f"migration {number:04d}_{name} needs both .sqlite and .postgres")
        migrations.append(Migration(number, name, scripts))
    return migrations


def _create_version_table(txn: Transaction) -> None:
    txn.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} ("
        " number INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " applied_at_ms BIGINT NOT NULL)"
    )


def _applied_numbers(txn: Transaction) -> set[int]:
    txn.execute(f"SELECT number FROM {VERSION_TABLE}")
    return {row[0] for row in txn.fetchall()}


def _lock_for_migrations(txn: Transaction) -> None:
    if txn.engine_name == "psycopg2":
        txn.execute("SELECT pg_advisory_xact_lock(?)", (_PG_MIGRATION_LOCK_KEY,))
    # SQLite transactions begin IMMEDIATE and already hold the write lock.


async def applied_migrations(db: Database) -> set[int]:
    """The set of migration numbers recorded in the database."""

    def read(txn: Transaction) -> set[int]:
        _lock_for_migrations(txn)
        _create_version_table(txn)
        return _applied_numbers(txn)

    return await db.run_interaction("applied_migrations", read)


async def prepare_database(db: Database, migrations_dir: Traversable | Path | None = None) -> None:
    """Bring the schema up to date, or raise SchemaTooNewError if it is ahead of us.

    The database counts as too new when it has any applied migration this code does
    not ship, not only one above our highest: with per-area number ranges, a newer
    version can add e.g. 0012 while we already know 0030.
    """
    migrations = load_migrations(migrations_dir)
    known = {m.number for m in migrations}
    applied = await applied_migrations(db)
    unknown = sorted(applied - known)
    if unknown:
        newest_known = max(known, default=0)
        raise SchemaTooNewError(
            f"database has migrations {', '.join(f'{n:04d}' for n in unknown)} that this "
            f"version does not know (it knows up to {newest_known:04d}); "
            "run a newer Vignette or restore a matching backup"
        )
    pending = [m for m in migrations if m.number not in applied]
    started = time.monotonic()
    for index, migration in enumerate(pending):
        # One line per migration, with how far the run is (start-up progress).
        logger.info("applying migration %04d_%s (%d of %d, %.0f%% done, %.1f s)", migration.number,
                    migration.name, index + 1, len(pending), 100.0 * index / len(pending),
                    time.monotonic() - started)
        await db.run_interaction(
            f"migration {migration.number:04d}_{migration.name}", _apply, migration
        )
    if pending:
        logger.info("schema up to date: %d migrations applied in %.1f s", len(pending), time.monotonic() - started)


def _apply(txn: Transaction, migration: Migration) -> None:
    _lock_for_migrations(txn)
    # Another process may have applied it since we looked.
    if migration.number in _applied_numbers(txn):
        return
    txn.execute_script(migration.script_for(txn.engine_name))
    txn.execute(
        f"INSERT INTO {VERSION_TABLE} (number, name, applied_at_ms) VALUES (?, ?, ?)",
        (migration.number, migration.name, int(time.time() * 1000)),
    )
