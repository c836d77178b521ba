"""What a SQLite WAL commit costs in CPU with and without its fsync (synchronous FULL vs NORMAL).

A script, not a test: ``python -m bench.sqlite_commit_cost [--commits N] [--dir DIR]``. Each
commit is one one-row insert in its own ``BEGIN IMMEDIATE`` transaction, on a file in ``DIR``
(default: the repository's disk, not a tmpfs, so the fsync is real). It prints CPU (user+system,
``time.process_time``) and wall time per commit for each setting; push rows use NORMAL
(``Database.run_derived_interaction``).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path


def measure(path: Path, synchronous: str, commits: int) -> tuple[float, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE rows (n INTEGER, payload TEXT)")
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO rows VALUES (?, ?)", (n, "x" * 100))
        conn.execute("COMMIT")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    conn.close()
    return cpu / commits * 1e6, wall / commits * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="commit-cost-") as tmp:
        for synchronous in ("FULL", "NORMAL"):
            cpu_us, wall_us = measure(Path(tmp) / f"{synchronous}.db", synchronous, args.commits)
            print(f"synchronous={synchronous:<6}  CPU {cpu_us:7.1f} µs per commit  wall {wall_us:7.1f} µs")


if __name__ == "__main__":
    main()
