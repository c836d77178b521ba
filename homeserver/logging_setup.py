"""Process logging: text or JSON lines, to stderr or a file."""

from __future__ import annotations

import json
import logging
import logging.config
import sys

import yaml
from twisted.logger import STDLibLogObserver, globalLogBeginner

from homeserver.config.schema import LoggingSection


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


def setup_logging(section: LoggingSection, log_config_path: str | None = None) -> None:
    """Configure stdlib logging and route Twisted's own log into it."""
    if log_config_path:
        with open(log_config_path, encoding="utf-8") as handle:
            logging.config.dictConfig(yaml.safe_load(handle))
    else:
        handler: logging.Handler
        handler = logging.FileHandler(section.file) if section.file else logging.StreamHandler(sys.stderr)
        if section.format == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(section.level)
    globalLogBeginner.beginLoggingTo([STDLibLogObserver()], redirectStandardIO=False)
