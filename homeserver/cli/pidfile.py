"""Whether the process a pid file names is running: shared by ``python -m homeserver`` (which
refuses to start twice) and synctl (which reports, starts and stops the set of processes)."""

from __future__ import annotations

import os


def read_pid(pid_file: str) -> int | None:
    try:
        with open(pid_file, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def is_zombie(pid: int) -> bool:
    """A killed server whose parent never reaped it keeps its pid, as a zombie: it is not running."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def running_pid(pid_file: str) -> int | None:
    """The pid in ``pid_file`` if that process is alive (and not a zombie), else None."""
    pid = read_pid(pid_file)
    if pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, someone else's
    return None if is_zombie(pid) else pid
