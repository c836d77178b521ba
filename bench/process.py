"""What the harness reads from and does to the machine: ports, /proc, throwaway PostgreSQL databases."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import psycopg2
import psycopg2.extensions

POSTGRES_SERVER = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
BENCH_DATABASE_PREFIX = "vignette_bench_"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    """Resident set size of a process (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_ms(pid: int) -> float:
    """User plus system CPU time a process has used so far, in milliseconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; fields after the closing parenthesis are fixed.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) * 1000.0 / CLOCK_TICKS


def create_postgres_database() -> str:
    """A new empty database with C collation and UTF8 (what Synapse insists on; Vignette is fine with it)."""
    name = f"{BENCH_DATABASE_PREFIX}{secrets.token_hex(6)}"
    _run_on_server(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                   "LC_COLLATE 'C' LC_CTYPE 'C'")
    return name


def drop_postgres_database(name: str) -> None:
    if not name.startswith(BENCH_DATABASE_PREFIX):
        raise ValueError(f"refusing to drop non-bench database {name!r}")
    _run_on_server(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def postgres_available() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    try:
        psycopg2.connect(**POSTGRES_SERVER, dbname="postgres", connect_timeout=3).close()
    except psycopg2.Error as exc:
        return str(exc).strip()
    return None


def _run_on_server(sql: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    conn = psycopg2.connect(**POSTGRES_SERVER, dbname="postgres")
    try:
        conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM, then SIGKILL if the process lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tail(path: Path, chars: int = 3000) -> str:
    if not path.exists():
        return ""
    return path.read_text(errors="replace")[-chars:]


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False


def postgres_backend_pids(database: str) -> list[int]:
    """Server processes currently serving connections to ``database`` (they run on this machine)."""
    conn = psycopg2.connect(**POSTGRES_SERVER, dbname="postgres")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))
            return [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()


def _cpu_or_none(pid: int) -> float | None:
    try:
        return cpu_ms(pid)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


@attrs.define
class CpuMeter:
    """CPU used since ``start`` by the server process and, on PostgreSQL, by the database's backends.

    Synapse and Vignette may split work differently between Python and SQL, so both halves are counted.
    """

    server_pid: int
    database: str | None
    server_start: float = 0.0
    db_start: dict[int, float] = attrs.field(factory=dict)
    #: py-spy recording the server while the meter runs (``--profile``), stopped by ``server_ms``.
    profiler: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, server_pid: int, database: str | None, profile_to: Path | None = None) -> CpuMeter:
        profiler = None
        if profile_to is not None:
            profile_to.parent.mkdir(parents=True, exist_ok=True)
            py_spy = Path(sys.executable).with_name("py-spy")
            profiler = subprocess.Popen([str(py_spy), "record", "--pid", str(server_pid), "--rate", "200",
                                         "--format", "raw", "--output", str(profile_to)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # py-spy attaches before the measured work starts
        meter = cls(server_pid, database, cpu_ms(server_pid), profiler=profiler)
        meter.db_start = meter._db_now()
        return meter

    def _stop_profiler(self) -> None:
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            self.profiler.wait(60)
            self.profiler = None

    def _db_now(self) -> dict[int, float]:
        if not self.database:
            return {}
        readings = {pid: _cpu_or_none(pid) for pid in postgres_backend_pids(self.database)}
        return {pid: value for pid, value in readings.items() if value is not None}

    def server_ms(self) -> float:
        used = cpu_ms(self.server_pid) - self.server_start
        self._stop_profiler()
        return used

    def db_ms(self) -> float | None:
        """None on SQLite, where the database work is inside the server process already."""
        if not self.database:
            return None
        # A backend that appeared meanwhile counts from zero; one that exited is lost (pools keep theirs).
        return sum(value - self.db_start.get(pid, 0.0) for pid, value in self._db_now().items())
