"""Progress for the command-line tools: a rich progress bar when stdout is a terminal,
otherwise a log line at least every 10 s (with a percentage when the total is known)."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

logger = logging.getLogger("vignette.progress")

LOG_EVERY_S = 10.0


class Progress:
    """``with Progress("porting", total) as progress: progress.advance(n, note)``."""

    def __init__(self, description: str, total: int | None, bar: bool | None = None) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._last_log = self.started
        self._bar: Any = None
        self._task: Any = None
        self._want_bar = sys.stdout.isatty() if bar is None else bar

    def __enter__(self) -> Progress:
        if self._want_bar:
            try:
                from rich.progress import Progress as RichProgress
            except ImportError:  # no rich: log lines only
                self._want_bar = False
            else:
                self._bar = RichProgress()
                self._bar.start()
                self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def advance(self, n: int, note: str = "") -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n, description=f"{self.description} {note}".strip())
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            logger.info("%s", self.line(note))

    def line(self, note: str = "") -> str:
        if self.total:
            amount = f"{self.done}/{self.total} ({100.0 * self.done / self.total:.1f}%)"
        else:
            amount = f"{self.done} done"
        where = f" [{note}]" if note else ""
        return f"{self.description}: {amount}{where}, {time.monotonic() - self.started:.1f} s"

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        logger.info("%s%s", self.line(), ": finished" if kind is None else ": stopped")
