"""Process logging: text or JSON lines to stderr or a file, or a Python logging
dictConfig file (``log_config``, Synapse's key), reloaded on SIGHUP.

Synapse's own log configs name a few Synapse classes and use ``%(request)s``;
those names map to the equivalents here, and every record carries a
``request`` attribute, so such a file works unchanged.
"""

from __future__ import annotations

import importlib
import json
import logging
import logging.config
import logging.handlers
import os
import sys
from typing import Any

import yaml
from twisted.internet import task
from twisted.logger import STDLibLogObserver, globalLogBeginner

from homeserver.config.schema import LoggingSection

logger = logging.getLogger(__name__)


class LogConfigError(ValueError):
    """A log_config file that cannot be used, said in one line."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RequestFilter(logging.Filter):
    """Stands in for Synapse's LoggingContextFilter: makes sure ``request`` is set."""

    def __init__(self, request: str = "-", **_ignored: Any) -> None:
        super().__init__()
        self.request = request or "-"

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request", None):
            record.request = self.request
        return True


class FlushingMemoryHandler(logging.handlers.MemoryHandler):
    """A MemoryHandler that also flushes every ``period`` seconds, so quiet servers' lines
    still reach the file (Synapse's PeriodicallyFlushingMemoryHandler takes the same keys)."""

    def __init__(self, capacity: int, flushLevel: int = logging.ERROR,  # noqa: N803 - dictConfig's spelling
                 target: logging.Handler | None = None, flushOnClose: bool = True,  # noqa: N803
                 period: float = 5.0, **_ignored: Any) -> None:
        super().__init__(capacity, flushLevel, target, flushOnClose)
        self._loop = task.LoopingCall(self.flush)
        self._loop.start(period, now=False)

    def close(self) -> None:
        if self._loop.running:
            self._loop.stop()
        super().close()


#: Synapse's logging classes and what stands in for each here.
SYNAPSE_LOGGING_CLASSES = {
    "synapse.logging.context.LoggingContextFilter": f"{__name__}.RequestFilter",
    "synapse.logging.handlers.PeriodicallyFlushingMemoryHandler": f"{__name__}.FlushingMemoryHandler",
    "synapse.logging.TerseJsonFormatter": f"{__name__}.JsonFormatter",
    "synapse.logging.JsonFormatter": f"{__name__}.JsonFormatter",
}

_original_record_factory = logging.getLogRecordFactory()


def _record_with_request(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _original_record_factory(*args, **kwargs)
    record.request = "-"
    return record


def read_log_config(path: str) -> dict[str, Any]:
    """Load and check a dictConfig YAML file without applying it (no file is opened for writing)."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except OSError as exc:
        raise LogConfigError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise LogConfigError(f"{path} is not valid YAML") from None
    if not isinstance(document, dict) or document.get("version") != 1:
        raise LogConfigError(f"{path} must be a Python logging dictConfig mapping with version: 1")
    if document.get("structured"):
        raise LogConfigError(f"{path} uses Synapse's old structured logging format; write a dictConfig")
    document.setdefault("disable_existing_loggers", False)
    for section in ("formatters", "filters", "handlers"):
        entries = document.get(section) or {}
        if not isinstance(entries, dict):
            raise LogConfigError(f"{path}: {section} must be a mapping")
        for name, entry in entries.items():
            if isinstance(entry, dict):
                _swap_synapse_class(entry, f"{path}: {section}.{name}")
                _check_log_directory(entry, f"{path}: {section}.{name}")
    return document


def _check_log_directory(entry: dict[str, Any], where: str) -> None:
    filename = entry.get("filename")
    if isinstance(filename, str) and not os.path.isdir(os.path.dirname(os.path.abspath(filename))):
        raise LogConfigError(f"{where}.filename: the directory of {filename} does not exist")


def _swap_synapse_class(entry: dict[str, Any], where: str) -> None:
    for key in ("class", "()"):
        target = entry.get(key)
        if not isinstance(target, str):
            continue
        target = SYNAPSE_LOGGING_CLASSES.get(target, target)
        entry[key] = target
        module_name, _, attribute = target.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attribute, None) if module_name else None
        except ImportError:
            found = None
        if found is None:
            raise LogConfigError(f"{where}: cannot find the class {target}")


class LoggingController:
    """Applies the logging config at start-up and again on SIGHUP.

    Reloading re-reads ``log_config`` (whose handlers open their files afresh)
    or, with the simple ``logging`` section, reopens its file, so a rotated
    log continues in a new file.  A broken file on reload keeps the old setup.
    """

    def __init__(self, section: LoggingSection, log_config_path: str | None = None) -> None:
        self.section = section
        self.log_config_path = log_config_path

    def setup(self) -> None:
        """Configure stdlib logging and route Twisted's own log into it (raises on bad config)."""
        logging.setLogRecordFactory(_record_with_request)
        self._apply()
        globalLogBeginner.beginLoggingTo([STDLibLogObserver()], redirectStandardIO=False)

    def reload(self) -> None:
        try:
            self._apply()
        except (OSError, ValueError, TypeError, AttributeError, ImportError) as exc:
            logger.error("SIGHUP: the log config could not be reloaded, keeping the old one: %s", exc)
            return
        logger.info("SIGHUP: reopened the log files%s",
                    f" and reloaded {self.log_config_path}" if self.log_config_path else "")

    def _apply(self) -> None:
        if self.log_config_path:
            logging.config.dictConfig(read_log_config(self.log_config_path))
            return
        section = self.section
        handler: logging.Handler
        handler = logging.FileHandler(section.file) if section.file else logging.StreamHandler(sys.stderr)
        if section.format == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        previous, root.handlers[:] = list(root.handlers), [handler]
        for old in previous:
            old.close()
        root.setLevel(section.level)


def setup_logging(section: LoggingSection, log_config_path: str | None = None) -> LoggingController:
    controller = LoggingController(section, log_config_path)
    controller.setup()
    return controller
