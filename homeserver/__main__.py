"""``python -m homeserver``: generate or check a config, or run the server in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from homeserver.cli.pidfile import running_pid
from homeserver.config import ConfigError, HomeserverConfig, load_config

logger = logging.getLogger("homeserver")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m homeserver", description="Run the Vignette homeserver.")
    parser.add_argument("-c", "--config-path", required=True, action="append",
                        help="path to homeserver.yaml; give it again for a worker's own file, "
                        "whose keys override the shared file's")
    parser.add_argument("--generate-config", action="store_true",
                        help="write a new config (and signing key) instead of running; never overwrites")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the config (and the files it names) and exit: 0 if good, 1 if not")
    parser.add_argument("--server-name", "-H", help="the server name, with --generate-config")
    parser.add_argument("--data-directory", help="where data and keys live, with --generate-config "
                        "(default: the config file's directory)")
    parser.add_argument("--report-stats", help=argparse.SUPPRESS)  # accepted for Synapse muscle memory
    return parser.parse_args(argv)


def first_line(exc: BaseException) -> str:
    """One line for an exception, with its cause (dictConfig wraps the useful part)."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    if exc.__cause__ is not None:
        text += f": {first_line(exc.__cause__)}"
    return text


def fail(message: str) -> int:
    print(f"vignette: {message}", file=sys.stderr)
    return 1


def generate(args: argparse.Namespace) -> int:
    from homeserver.config.generate import generate_config
    from homeserver.config.names import server_name_problem

    if not args.server_name:
        return fail("--generate-config needs --server-name NAME")
    problem = server_name_problem(args.server_name)
    if problem:
        return fail(f"--server-name: {problem}")
    config_path = args.config_path[0]
    data_dir = args.data_directory or os.path.dirname(os.path.abspath(config_path))
    try:
        for line in generate_config(config_path, args.server_name, data_dir):
            print(line)
    except OSError as exc:
        return fail(f"cannot write the config: {exc}")
    return 0


def other_process_running(pid_file: str | None) -> int | None:
    if not pid_file:
        return None
    pid = running_pid(pid_file)
    return None if pid == os.getpid() else pid


def read_config(config_path: str | list[str]) -> HomeserverConfig:
    """Load the config, printing one line per ignored Synapse key; raises ConfigError."""
    warnings: list[str] = []
    config = load_config(config_path, warnings)
    for line in warnings:
        print(f"vignette: {line}", file=sys.stderr)
    return config


def check(config_path: str | list[str]) -> int:
    from homeserver.logging_setup import LogConfigError, read_log_config

    try:
        config = read_config(config_path)
    except ConfigError as exc:
        return fail(f"config error: {exc}")
    if config.log_config:
        try:
            read_log_config(config.log_config)
        except LogConfigError as exc:
            return fail(f"config error: log_config: {exc}")
    elif config.logging.file and not os.path.isdir(os.path.dirname(os.path.abspath(config.logging.file))):
        return fail(f"config error: logging.file: the directory of {config.logging.file} does not exist")
    shown = config_path if isinstance(config_path, str) else " + ".join(config_path)
    print(f"{shown}: the config is valid")
    return 0


def reload_on_sighup(reactor: Any, reload: Any) -> None:
    """SIGHUP reloads logging on the reactor thread, not inside the signal handler."""
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda signum, frame: reactor.callFromThread(reload))


def run(config_path: str | list[str]) -> int:
    try:
        config = read_config(config_path)
    except ConfigError as exc:
        return fail(f"config error: {exc}")
    running = other_process_running(config.pid_file)
    if running:
        return fail(f"already running as pid {running} (pid file {config.pid_file})")

    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    from homeserver import gc_schedule
    from homeserver.app import HomeServer
    from homeserver.logging_setup import setup_logging

    try:
        logging_controller = setup_logging(config.logging, config.log_config)
    except (OSError, ValueError, TypeError, AttributeError, ImportError) as exc:
        where = "log_config" if config.log_config else "logging"
        return fail(f"config error: {where}: {first_line(exc)}")
    reload_on_sighup(reactor, logging_controller.reload)
    if config.enable_metrics:
        from homeserver.metrics import install_gc_metrics, install_reactor_metrics

        install_gc_metrics()
        install_reactor_metrics(reactor)

    exit_code = {"code": 0}
    hs = HomeServer(config, reactor)

    async def start() -> None:
        try:
            await hs.setup()
            hs.start_listening()
            hs.write_pid_file()
        except Exception as exc:  # noqa: BLE001 - any start-up failure ends the process with one line
            logger.debug("start-up failed", exc_info=True)
            print(f"vignette: {describe_start_error(exc)}", file=sys.stderr)
            exit_code["code"] = 1
            reactor.stop()
            return
        logger.info("Vignette %s is running as pid %d", config.server_name, os.getpid())
        gc_schedule.install(reactor, gc_schedule.GcSchedule.configured(config.gc_thresholds, config.gc_min_interval))
        try:
            await hs.start_background_work()
        except Exception:  # the timers re-arm themselves; serving goes on
            logger.exception("starting background work failed")

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(start()))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: Deferred.fromCoroutine(hs.shutdown()))
    reactor.run()
    return exit_code["code"]


def describe_start_error(exc: Exception) -> str:
    from twisted.internet.error import CannotListenError

    from storage.engine import DatabaseConfigError

    if isinstance(exc, DatabaseConfigError):
        return f"config error: database: {exc}"
    if isinstance(exc, CannotListenError):
        return f"cannot start: cannot listen on {exc.interface or '*'}:{exc.port}: {exc.socketError}"
    text = str(exc).strip().splitlines()
    return f"cannot start: {type(exc).__name__}: {text[0] if text else ''}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.generate_config:
        return generate(args)
    if args.check_config:
        return check(args.config_path)
    return run(args.config_path)


if __name__ == "__main__":
    sys.exit(main())
