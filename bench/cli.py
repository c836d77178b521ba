"""``python -m bench``: for each database engine, start each server fresh, run every workload, report."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from bench.client import new_session
from bench.context import Context, Options
from bench.pollers import WebSocketUnavailable
from bench.process import postgres_available
from bench.report import Results, machine_info, markdown, text_table, write_json
from bench.targets import (
    Target,
    ensure_synapse,
    make_synapse,
    make_vignette,
    synapse_version,
    vignette_version,
)
from bench.workloads import Workload, all_workloads

BENCH_DIR = Path(__file__).resolve().parent
ENGINES = ("sqlite", "postgres")
SERVERS = ("synapse", "vignette")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma list of sqlite,postgres")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma list of synapse,vignette")
    parser.add_argument("--only", help="comma list of workload names to run (default: all)")
    parser.add_argument("--large", action="store_true",
                        help="(the default now) run the large-room workloads; kept so older commands still run")
    parser.add_argument("--no-large", action="store_true", help="skip the large-room workloads")
    parser.add_argument("--large-messages", type=int, default=defaults.large_fanout_messages,
                        help="messages each large-room workload fans out")
    parser.add_argument("--bystanders", type=int, default=defaults.bystanders,
                        help="senders in another room during the large fan-out (send_during_fanout)")
    parser.add_argument("--members", type=int, default=defaults.members, help="fan-out room size")
    parser.add_argument("--members-large", type=int, default=defaults.members_large,
                        help="large fan-out room size")
    parser.add_argument("--sends", type=int, default=defaults.sends, help="sequential sends")
    parser.add_argument("--senders", type=int, default=defaults.concurrent_senders, help="concurrent senders")
    parser.add_argument("--concurrent-sends", type=int, default=defaults.concurrent_sends,
                        help="total events the concurrent senders send")
    parser.add_argument("--deliveries", type=int, default=defaults.deliveries, help="send->sync samples")
    parser.add_argument("--call-invites", type=int, default=defaults.call_invites,
                        help="m.call.invite -> callee samples")
    parser.add_argument("--fanout-messages", type=int, default=defaults.fanout_messages)
    parser.add_argument("--idle", type=int, default=defaults.idle, help="idle long-polls to hold open")
    parser.add_argument("--idle-streams", type=int, default=defaults.idle_streams,
                        help="idle WebSocket streams to hold open (ws_idle)")
    parser.add_argument("--rooms", type=int, default=defaults.rooms, help="rooms for the initial sync")
    parser.add_argument("--room-version", default=defaults.room_version,
                        help="room version both servers create rooms with")
    parser.add_argument("--workdir", type=Path,
                        help="keep server configs, databases and logs here (default: a temporary directory)")
    parser.add_argument("--workload-timeout", type=float, default=defaults.workload_timeout_s,
                        help="seconds before a workload is abandoned (reported n/a)")
    parser.add_argument("--log-level", default="WARNING", choices=["INFO", "WARNING"],
                        help="log level of both servers")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "vignette-bench",
                        help="where the Synapse virtualenv is kept")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="where the JSON goes")
    parser.add_argument("--write-results-md", action="store_true", help="also rewrite bench/RESULTS.md")
    parser.add_argument("--append-results-md", action="store_true",
                        help="append this run's tables to bench/RESULTS.md (e.g. a --large --only run)")
    parser.add_argument("--list", action="store_true", help="list workloads and exit")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy raw profiles of the server over each measured phase, into this dir")
    parser.add_argument("--vignette-config", type=json.loads, default={},
                        help='JSON object merged into Vignette\'s config, e.g. \'{"push_rule_evaluation": false}\'')
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    return Options(sends=args.sends, concurrent_senders=args.senders, concurrent_sends=args.concurrent_sends,
                   deliveries=args.deliveries, call_invites=args.call_invites, members=args.members, members_large=args.members_large,
                   large=not args.no_large, fanout_messages=args.fanout_messages,
                   large_fanout_messages=args.large_messages, bystanders=args.bystanders,
                   idle=args.idle, idle_streams=args.idle_streams, rooms=args.rooms,
                   room_version=args.room_version, workload_timeout_s=args.workload_timeout,
                   profile_dir=args.profile)


async def run_workloads(target: Target, options: Options, workloads: list[Workload]) -> dict[str, dict[str, Any]]:
    """Every workload against one running server; a failure is recorded, never raised."""
    outcomes: dict[str, dict[str, Any]] = {}
    async with new_session() as session:
        ctx = Context(target, session, options)
        for workload in workloads:
            if not workload.enabled(options):
                outcomes[workload.name] = {"skipped": workload.skip_reason}
                continue
            if target.process is None or target.process.poll() is not None:
                outcomes[workload.name] = {"error": "server is not running"}
                continue
            started = time.monotonic()
            print(f"  {target.label}: {workload.name} ...", end="", flush=True)
            try:
                if workload.restart_first:
                    await asyncio.to_thread(target.restart_process)
                timeout = options.workload_timeout_s * workload.timeout_factor
                metrics = await asyncio.wait_for(workload.run(ctx), timeout)
                outcomes[workload.name] = {k: v for k, v in metrics.items()}
                print(f" {time.monotonic() - started:.1f}s {_brief(metrics)}", flush=True)
            except WebSocketUnavailable as exc:
                outcomes[workload.name] = {"skipped": str(exc)}
                print(f" skipped ({exc})", flush=True)
            except Exception as exc:  # noqa: BLE001 - a failing workload is a result, not a crash
                message = f"{type(exc).__name__}: {exc}".strip() if str(exc) else type(exc).__name__
                if isinstance(exc, asyncio.TimeoutError):
                    message = f"timed out after {timeout:.0f}s"
                outcomes[workload.name] = {"error": message.splitlines()[0][:300]}
                print(f" n/a ({outcomes[workload.name]['error']})", flush=True)
                with (target.directory / "bench-errors.log").open("a") as log:  # the trace, for debugging
                    log.write(traceback.format_exc())
    return outcomes


def _brief(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:4] if isinstance(v, (int, float)))


def run_one(kind: str, engine: str, workdir: Path, args: argparse.Namespace, options: Options,
            workloads: list[Workload], synapse_python: Path | None) -> dict[str, dict[str, Any]]:
    directory = workdir / f"{kind}-{engine}"
    try:
        if kind == "synapse":
            assert synapse_python is not None
            target = make_synapse(engine, directory, args.log_level, synapse_python)
        else:
            target = make_vignette(engine, directory, args.log_level, args.vignette_config)
        target.start()
    except Exception as exc:  # noqa: BLE001
        reason = f"server did not start: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}"
        print(f"  {kind}/{engine}: {reason}", flush=True)
        return {w.name: {"error": reason} for w in workloads}
    try:
        return asyncio.run(run_workloads(target, options, workloads))
    finally:
        target.stop()


def raise_fd_limit() -> None:
    """1,500 streams (or 10,000 idle ones) from one client process need more than the usual 1,024 fds."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass  # keep the limit we have; a workload that runs out reports its error


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    workloads = all_workloads()
    if args.list:
        for workload in workloads:
            print(f"{workload.name:<16} {workload.title}")
        return 0
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {w.name for w in workloads}
        if unknown:
            print(f"unknown workloads: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        workloads = [w for w in workloads if w.name in wanted]
    options = options_from(args)
    engines = [e for e in args.engines.split(",") if e]
    servers = [s for s in args.servers.split(",") if s]
    if "postgres" in engines and (problem := postgres_available()):
        print(f"PostgreSQL unavailable, skipping that pass: {problem}", file=sys.stderr)
        engines.remove("postgres")
    synapse_python = ensure_synapse(args.cache_dir) if "synapse" in servers else None
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    results: Results = {}
    with tempfile.TemporaryDirectory(prefix="vignette-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for engine in engines:
            results[engine] = {}
            for kind in servers:
                print(f"{kind} on {engine}:", flush=True)
                results[engine][kind] = run_one(kind, engine, workdir, args, options, workloads, synapse_python)
    report = {
        "date": date, "load_before": load_before, "argv": sys.argv[1:] if argv is None else argv, "machine": machine_info(),
        "versions": {"synapse": synapse_version(synapse_python) if synapse_python else "not run",
                     "vignette": vignette_version()},
        "options": attrs.asdict(options), "results": results,
    }
    print()
    print(text_table(results, workloads))
    print(f"\nJSON: {write_json(report, args.out)}")
    if args.write_results_md:
        (BENCH_DIR / "RESULTS.md").write_text(markdown(report, workloads))
        print(f"Markdown: {BENCH_DIR / 'RESULTS.md'}")
    elif args.append_results_md:
        with (BENCH_DIR / "RESULTS.md").open("a") as handle:
            handle.write("\n" + markdown(report, workloads, appended=True))
        print(f"Markdown appended: {BENCH_DIR / 'RESULTS.md'}")
    return 0
