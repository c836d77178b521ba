"""Worker processes (docs/workers.md): which process this is, where the others listen,
and which instance writes each stream.  Key names are Synapse's."""

from __future__ import annotations

from typing import Any

import attrs

from homeserver.config.loader import ConfigError, field

#: The name of the main process in ``instance_map`` and ``stream_writers``.
MAIN = "main"
#: ``worker_app`` values that mean "the main process" (Synapse's, and none at all).
MAIN_APPS = (None, "synapse.app.homeserver", "vignette.app.homeserver")
FEDERATION_SENDER_APP = "synapse.app.federation_sender"
MEDIA_APP = "synapse.app.media_repository"
#: ``worker_app`` values for a worker; like Synapse's generic worker, what it serves is
#: decided by its listeners and by the reverse proxy (docs/workers.md).
WORKER_APPS = (
    "synapse.app.generic_worker",
    "vignette.app.generic_worker",
    # Synapse's older single-purpose apps: generic workers whose kind their name implies.
    FEDERATION_SENDER_APP,
    "synapse.app.federation_reader",
    MEDIA_APP,
)
#: Our streams (storage/streams.py), the keys ``stream_writers`` may name.
STREAM_NAMES = (
    "events",
    "to_device",
    "device_lists",
    "account_data",
    "receipts",
    "presence",
    "typing",
    "mls",
)
#: The stream that several instances may write, rooms sharded by ID (event persisters).
SHARDED_STREAM = "events"


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "expected a port number from 0 to 65535"


def _worker_app(value: str | None) -> str | None:
    if value in MAIN_APPS or value in WORKER_APPS:
        return None
    return f"expected one of {', '.join(str(app) for app in MAIN_APPS[1:] + WORKER_APPS)}, got {value!r}"


def _stream_writers(value: dict[str, list[str]]) -> str | None:
    for stream, writers in value.items():
        if stream not in STREAM_NAMES:
            return f"expected stream names from {', '.join(STREAM_NAMES)}, got {stream!r}"
        if stream == SHARDED_STREAM:
            if not writers or len(set(writers)) != len(writers):
                return f"{stream}: expected one or more distinct instance names"
            continue
        if len(writers) != 1:
            return f"{stream}: expected exactly one writer instance (sharded writers are not supported yet)"
        if writers[0] != MAIN:
            return f"{stream}: only the main process writes streams in this version, got {writers[0]!r}"
    return None


def _federation_senders(value: list[str] | None) -> str | None:
    if value is None or len(value) == 1:
        return None
    return "expected exactly one instance (sharding federation senders is not supported yet)"


@attrs.frozen(kw_only=True)
class InstanceLocation:
    """Where one instance's replication (HTTP) listener is, for requests forwarded to it."""

    host: str = field()
    port: int = field(check=_port, expected="a port number from 0 to 65535")
    tls: bool = field(False)

    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


def is_worker(config: Any) -> bool:
    return config.worker_app in WORKER_APPS


def instance_name(config: Any) -> str:
    """This process's name: ``worker_name`` for a worker, ``main`` for the main process."""
    return str(config.worker_name) if is_worker(config) else MAIN


def uses_workers(config: Any) -> bool:
    return is_worker(config) or bool(set(config.instance_map) - {MAIN})


def stream_writer(config: Any, stream: str) -> str:
    writers = config.stream_writers.get(stream)
    return writers[0] if writers else MAIN


def event_writers(config: Any) -> list[str]:
    """The instances that persist events (``stream_writers.events``); rooms are sharded over them."""
    return list(config.stream_writers.get(SHARDED_STREAM) or [MAIN])


def events_sharded(config: Any) -> bool:
    """Whether events are written by persisters (anything but the main process alone)."""
    return event_writers(config) != [MAIN]


def sends_federation(config: Any) -> bool:
    """Whether this process runs the federation sender: the one ``federation_sender_instances``
    names, else (Synapse's older form) a ``federation_sender`` worker when the shared file says
    ``send_federation: false``, else the main process."""
    instances = config.federation_sender_instances
    if instances is not None:
        return instance_name(config) in instances
    if not config.send_federation:
        return is_worker(config) and config.worker_app == FEDERATION_SENDER_APP
    return not is_worker(config)


def serves_media(config: Any) -> bool:
    """Whether this process serves the media repository (Synapse's ``enable_media_repo``): the
    main process unless it is set false; a worker when its own file sets it true, or it is a
    ``media_repository`` worker."""
    if is_worker(config):
        return config.enable_media_repo is True or config.worker_app == MEDIA_APP
    return config.enable_media_repo is not False


def runs_media_jobs(config: Any) -> bool:
    """Whether this process runs the media repository's background jobs (expiry, retention)."""
    named = config.media_instance_running_background_jobs
    return instance_name(config) == named if named is not None else runs_background_tasks(config)


def background_elsewhere(config: Any) -> bool:
    """Whether a worker, not the main process, runs the background jobs."""
    return bool(config.run_background_tasks_on != MAIN)


def runs_background_tasks(config: Any) -> bool:
    """Whether this process runs the background jobs (``run_background_tasks_on``): purges,
    retention, expiry, delayed events and the other timers."""
    return instance_name(config) == config.run_background_tasks_on


def check_worker_rules(config: Any) -> None:
    """Cross-key rules: a worker needs a name, Redis, PostgreSQL and the main process's address."""
    if not uses_workers(config):
        return
    if config.database.name == "sqlite3":
        raise ConfigError(
            "database.name", "workers need PostgreSQL: SQLite cannot be shared between processes"
        )
    if not config.redis.enabled:
        raise ConfigError(
            "redis.enabled", "workers replicate over Redis: set redis.enabled to true"
        )
    if events_sharded(config):
        _check_persisters(config)
    if config.run_background_tasks_on != MAIN and not config.worker_replication_secret:
        raise ConfigError(
            "worker_replication_secret",
            "the background-jobs worker sends delayed events through the event writers: set a shared secret",
        )
    if is_worker(config):
        if not config.worker_name or config.worker_name == MAIN:
            raise ConfigError("worker_name", f"a worker needs a name of its own (not {MAIN!r})")
        if MAIN not in config.instance_map:
            raise ConfigError(
                "instance_map", f"a worker needs the {MAIN!r} process's address in instance_map"
            )


def _check_persisters(config: Any) -> None:
    """Event persisters take requests from the other instances: each needs an address, and
    those requests a shared secret (they carry no user's token)."""
    for writer in event_writers(config):
        if writer not in config.instance_map:
            raise ConfigError(
                "stream_writers.events", f"the event persister {writer!r} needs its address in instance_map"
            )
    if not config.worker_replication_secret:
        raise ConfigError(
            "worker_replication_secret", "event persisters need a shared worker_replication_secret"
        )
