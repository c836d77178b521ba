"""The migration runner: applies each migration once, records the set, refuses newer DBs."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from storage.engine import Database, Transaction
from storage.migrate import (
    MigrationError,
    SchemaTooNewError,
    applied_migrations,
    load_migrations,
    prepare_database,
)

# Plain CREATE TABLE (no IF NOT EXISTS): applying one twice would fail loudly.
ACCOUNTS = "CREATE TABLE accounts (user_id TEXT PRIMARY KEY);\n"
ROOMS_SQLITE = "-- sqlite flavour\nCREATE TABLE rooms (room_id TEXT PRIMARY KEY, flavour TEXT DEFAULT 'sqlite');\n"
ROOMS_POSTGRES = "-- postgres flavour\nCREATE TABLE rooms (room_id TEXT PRIMARY KEY, flavour TEXT DEFAULT 'postgres');\n"


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def _first_migrations(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "migrations",
        {
            "0010_accounts.sql": ACCOUNTS,
            "0020_rooms.sqlite.sql": ROOMS_SQLITE,
            "0020_rooms.postgres.sql": ROOMS_POSTGRES,
            "README.md": "not a migration",
        },
    )


async def _tables_and_flavour(db: Database) -> str:
    def read(txn: Transaction) -> str:
        txn.execute("INSERT INTO accounts (user_id) VALUES (?)", ("@a:x",))
        txn.execute("INSERT INTO rooms (room_id) VALUES (?)", ("!r:x",))
        txn.execute("SELECT flavour FROM rooms")
        row = txn.fetchone()
        assert row is not None
        return str(row[0])

    return await db.run_interaction("read", read)


@pytest_twisted.ensureDeferred
async def test_applies_each_once_and_records_the_set(database: Database, tmp_path: Path) -> None:
    migrations = _first_migrations(tmp_path)
    await prepare_database(database, migrations)
    assert await applied_migrations(database) == {10, 20}
    expected_flavour = "sqlite" if database.engine_name == "sqlite3" else "postgres"
    assert await _tables_and_flavour(database) == expected_flavour

    # A second start applies nothing (the CREATE TABLEs would fail if re-run).
    await prepare_database(database, migrations)
    assert await applied_migrations(database) == {10, 20}


@pytest_twisted.ensureDeferred
async def test_fills_a_gap_below_applied_numbers(database: Database, tmp_path: Path) -> None:
    migrations = _first_migrations(tmp_path)
    await prepare_database(database, migrations)
    _write(migrations, {"0011_devices.sql": "CREATE TABLE devices (device_id TEXT);"})
    await prepare_database(database, migrations)
    assert await applied_migrations(database) == {10, 11, 20}
    rows = await database.execute("devices", "SELECT COUNT(*) FROM devices")
    assert rows == [(0,)]


@pytest_twisted.ensureDeferred
async def test_refuses_database_with_newer_migrations(database: Database, tmp_path: Path) -> None:
    newer = _first_migrations(tmp_path)
    await prepare_database(database, newer)
    older = _write(tmp_path / "older", {"0010_accounts.sql": ACCOUNTS})
    with pytest.raises(SchemaTooNewError, match="0020"):
        await prepare_database(database, older)


@pytest_twisted.ensureDeferred
async def test_refuses_unknown_migration_below_our_highest(
    database: Database, tmp_path: Path
) -> None:
    """A newer version may add 0011 (accounts) while this one already knows 0020."""
    newer = _first_migrations(tmp_path)
    _write(newer, {"0011_devices.sql": "CREATE TABLE devices (device_id TEXT);"})
    await prepare_database(database, newer)
    (tmp_path / "older").mkdir()
    older = _first_migrations(tmp_path / "older")
    with pytest.raises(SchemaTooNewError, match="0011"):
        await prepare_database(database, older)


@pytest_twisted.ensureDeferred
async def test_failed_migration_leaves_nothing_behind(database: Database, tmp_path: Path) -> None:
    migrations = _write(
        tmp_path / "migrations",
        {
            "0010_accounts.sql": ACCOUNTS,
            "0011_broken.sql": "CREATE TABLE half (id INTEGER);\nSELECT * FROM no_such_table;\n",
        },
    )
    with pytest.raises(Exception, match="no_such_table"):
        await prepare_database(database, migrations)
    assert await applied_migrations(database) == {10}
    assert await database.execute("accounts", "SELECT COUNT(*) FROM accounts") == [(0,)]
    with pytest.raises(Exception, match="half"):
        await database.execute("half", "SELECT * FROM half")


@pytest_twisted.ensureDeferred
async def test_shipped_migrations_apply(database: Database) -> None:
    await prepare_database(database)
    assert await applied_migrations(database) == {m.number for m in load_migrations()}


@pytest.mark.parametrize(
    ("files", "complaint"),
    [
        ({"10_short.sql": ""}, "badly named"),
        ({"0010_Upper.sql": ""}, "badly named"),
        ({"0010_a.sql": "", "0010_b.sql": ""}, "used twice"),
        ({"0010_a.sql": "", "0010_a.sqlite.sql": ""}, "both portable and per-dialect"),
        ({"0010_a.sqlite.sql": ""}, "needs both"),
    ],
)
def test_inconsistent_migration_files_are_rejected(
    tmp_path: Path, files: dict[str, str], complaint: str
) -> None:
    with pytest.raises(MigrationError, match=complaint):
        load_migrations(_write(tmp_path / "m", files))


def test_migrations_load_sorted_by_number(tmp_path: Path) -> None:
    directory = _write(
        tmp_path / "m",
        {
            "0020_b.sql": "B",
            "0003_a.sql": "A",
            "0011_c.sqlite.sql": "S",
            "0011_c.postgres.sql": "P",
        },
    )
    loaded = load_migrations(directory)
    assert [(m.number, m.name) for m in loaded] == [(3, "a"), (11, "c"), (20, "b")]
    assert loaded[1].script_for("sqlite3") == "S"
    assert loaded[1].script_for("psycopg2") == "P"
