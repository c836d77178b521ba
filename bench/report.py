"""Results: the side-by-side table, the JSON file and bench/RESULTS.md."""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
from pathlib import Path
from typing import Any

import psycopg2

from bench.process import POSTGRES_SERVER
from bench.workloads import Workload

# Results shape: {engine: {server: {workload: {metric: value} | {"error": str} | {"skipped": str}}}}
Results = dict[str, dict[str, dict[str, dict[str, Any]]]]
SERVERS = ("synapse", "vignette")
ENGINE_TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
HIGHER_IS_BETTER_SUFFIXES = ("_per_s",)
LOWER_IS_BETTER_SUFFIXES = ("_ms", "_kib_per_conn", "_per_event", "_per_message", "cpu_ms_per_s", "_per_upload",
                            "_per_download")
# Counts the table still shows (the JSON keeps every number); other counts only clutter it.
TABLE_COUNTS = {"missed", "response_kib", "rss_held_kib", "client_cpu_ms_per_message", "busy_over_idle_p99"}
COUNT_METRICS = {"events", "deliveries", "uploads", "downloads", "recipients", "connections", "rooms", "missed", "missed_warmup",
                 "poll_errors", "returned_early", "errors", "idle_sends", "busy_sends",
                 "client_cpu_ms_per_message", "rss_before_kib", "rss_held_kib", "response_kib"}


def machine_info() -> dict[str, Any]:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return {"nproc": os.cpu_count(), "ram_gib": round(mem_kib / 1024 / 1024, 1), "cpu_model": cpu_model,
            "kernel": platform.release(), "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "postgres": _postgres_version()}


def _postgres_version() -> str:
    try:
        conn = psycopg2.connect(**POSTGRES_SERVER, dbname="postgres", connect_timeout=3)
    except psycopg2.Error:
        return "unavailable"
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return str(cursor.fetchone()[0])
    finally:
        conn.close()


def direction(metric: str) -> str:
    if metric in COUNT_METRICS:
        return ""
    if metric.endswith(LOWER_IS_BETTER_SUFFIXES):
        return "lower"
    if metric.endswith(HIGHER_IS_BETTER_SUFFIXES):
        return "higher"
    return ""


def _cell(outcome: dict[str, Any] | None, metric: str) -> str:
    if outcome is None:
        return "-"
    if "skipped" in outcome:
        return "skipped"
    if "error" in outcome:
        return "n/a"
    value = outcome.get(metric)
    if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.2f}"


def _ratio(synapse: dict[str, Any] | None, vignette: dict[str, Any] | None, metric: str) -> str:
    try:
        ours, theirs = float(vignette[metric]), float(synapse[metric])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return ""
    if theirs == 0 or math.isnan(ours) or math.isnan(theirs):
        return ""
    return f"{ours / theirs:.2f}x"


def table_rows(results: Results, engine: str, workloads: list[Workload]) -> list[list[str]]:
    """Rows of [workload, metric, better, synapse, vignette, ratio] for one database engine."""
    per_server = results.get(engine, {})
    rows: list[list[str]] = []
    for workload in workloads:
        title = workload.title
        outcomes = {server: per_server.get(server, {}).get(workload.name) for server in SERVERS}
        if workload.synapse_baseline:
            outcomes["synapse"] = per_server.get("synapse", {}).get(workload.synapse_baseline)
        metrics: list[str] = []
        for outcome in outcomes.values():
            for key, value in (outcome or {}).items():
                shown = bool(direction(key)) or key in TABLE_COUNTS
                if isinstance(value, (int, float)) and shown and key not in metrics:
                    metrics.append(key)
        if not metrics:
            rows.append([title, "", "", _cell(outcomes["synapse"], ""), _cell(outcomes["vignette"], ""), ""])
            continue
        for index, metric in enumerate(metrics):
            rows.append([title if index == 0 else "", metric, {"higher": "↑", "lower": "↓"}.get(direction(metric), ""),
                         _cell(outcomes["synapse"], metric), _cell(outcomes["vignette"], metric),
                         _ratio(outcomes["synapse"], outcomes["vignette"], metric) if direction(metric) else ""])
    return rows


def errors(results: Results) -> list[str]:
    lines = []
    for engine, per_server in results.items():
        for server, per_workload in per_server.items():
            for workload, outcome in per_workload.items():
                if "error" in outcome:
                    lines.append(f"{server}/{engine} {workload}: {outcome['error']}")
    return lines


HEADER = ["workload", "metric", "", "Synapse", "Vignette", "V/S"]


def text_table(results: Results, workloads: list[Workload]) -> str:
    out = []
    for engine in results:
        rows = [HEADER, *table_rows(results, engine, workloads)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
        out.append(f"== {ENGINE_TITLES.get(engine, engine)} ==")
        for row in rows:
            out.append("  ".join(cell.ljust(width) if i < 3 else cell.rjust(width)
                                 for i, (cell, width) in enumerate(zip(row, widths, strict=True))))
        out.append("")
    problems = errors(results)
    if problems:
        out.append("n/a because:")
        out.extend(f"  {line}" for line in problems)
    return "\n".join(out)


def markdown(report: dict[str, Any], workloads: list[Workload], appended: bool = False) -> str:
    """The run as Markdown; ``appended`` demotes headings so it can follow an earlier run in one file."""
    machine, versions = report["machine"], report["versions"]
    level = "##" if appended else "#"
    lines = [
        f"{level} {'Further run' if appended else 'Benchmark results: Vignette vs Synapse'}",
        "",
        f"Run {report['date']} with `python -m bench {' '.join(report['argv'])}`.".replace("  ", " "),
        "",
        f"- Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['ram_gib']} GiB RAM, "
        f"Linux {machine['kernel']}; load average before the run {report['load_before']}, after {machine['loadavg']} "
        "(the machine is shared with other work, so treat small differences as noise)",
        f"- Synapse {versions['synapse']}; Vignette commit {versions['vignette']}; Python {machine['python']}; "
        f"SQLite {machine['sqlite']}; PostgreSQL {machine['postgres']}",
        f"- Sizes: {json.dumps(report['options'])}",
        "- V/S is Vignette divided by Synapse; ↑ marks metrics where higher is better, ↓ lower.",
        "- Synapse has no WebSocket stream: rows marked *vs Synapse long-polls* compare Vignette's stream "
        "with Synapse's long-poll numbers for the same workload.",
        "",
    ]
    for engine in report["results"]:
        lines += [f"{level}# {ENGINE_TITLES.get(engine, engine)}", "", "| " + " | ".join(HEADER) + " |",
                  "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(row) + " |" for row in table_rows(report["results"], engine, workloads)]
        lines.append("")
    problems = errors(report["results"])
    if problems:
        lines += [f"{level}# Not measured (n/a)", ""] + [f"- {line}" for line in problems] + [""]
    return "\n".join(lines)


def write_json(report: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"results-{report['date'].replace(':', '').replace(' ', 'T')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path
