"""Push-rule evaluation on against off (issue 11's 10% budget), server CPU per event.

A script, not a test: ``python -m bench.push_ab [--reps N] [-- extra python -m bench args]``.
Each repetition runs ``python -m bench --servers vignette`` twice, once with
``push_rule_evaluation`` on and once off (the order alternates between repetitions, so a
change of load hits both sides alike), and reads the server CPU per event or message
(utime+stime from /proc/<pid>/stat, bench/context.py) from each run's JSON. It prints every
run's figures, the medians per side, the ratio on/off of the medians, and each repetition's
own on/off ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

WORKLOADS = "send_sequential,send_concurrent,fanout_large"
METRICS = ("cpu_ms_per_event", "cpu_ms_per_message", "db_cpu_ms_per_event", "db_cpu_ms_per_message")
MODES = {"on": {"push_rule_evaluation": True}, "off": {"push_rule_evaluation": False}}


def run_bench(mode: str, out: Path, engine: str, workloads: str, extra: list[str]) -> dict[str, dict[str, Any]]:
    command = [sys.executable, "-m", "bench", "--servers", "vignette", "--engines", engine, "--large",
               "--only", workloads, "--vignette-config", json.dumps(MODES[mode]), "--out", str(out), *extra]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    report = json.loads(max(out.glob("results-*.json")).read_text())
    return report["results"][engine]["vignette"]


def cpu_figures(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    found = {}
    for workload, metrics in results.items():
        for metric in METRICS:
            if isinstance(metrics.get(metric), (int, float)):
                found[f"{workload}.{metric}"] = float(metrics[metric])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--engine", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--workloads", default=WORKLOADS, help="comma list (default: %(default)s)")
    parser.add_argument("extra", nargs="*", help="passed to python -m bench (after --)")
    args = parser.parse_args()
    samples: dict[str, dict[str, list[float]]] = {"on": {}, "off": {}}
    with tempfile.TemporaryDirectory(prefix="push-ab-") as tmp:
        for rep in range(args.reps):
            for mode in ("on", "off") if rep % 2 == 0 else ("off", "on"):
                out = Path(tmp) / f"{mode}-{rep}"
                figures = cpu_figures(run_bench(mode, out, args.engine, args.workloads, args.extra))
                print(f"rep {rep} {mode:>3}: " + "  ".join(f"{k}={v:.3f}" for k, v in sorted(figures.items())),
                      flush=True)
                for key, value in figures.items():
                    samples[mode].setdefault(key, []).append(value)
    print(f"\nmedians over {args.reps} repetitions, push evaluation on / off:")
    for key in sorted(samples["on"]):
        on, off = statistics.median(samples["on"][key]), statistics.median(samples["off"].get(key, [0.0]))
        ratio = on / off if off else float("nan")
        print(f"  {key:<44} on {on:9.3f}  off {off:9.3f}  on/off {ratio:5.3f}")
    print("\nper repetition, on/off of the pair run back to back (a drift in load cancels within a pair):")
    for key in sorted(samples["on"]):
        pairs = [a / b for a, b in zip(samples["on"][key], samples["off"].get(key, []), strict=False) if b]
        if pairs:
            print(f"  {key:<44} " + " ".join(f"{r:5.3f}" for r in pairs)
                  + f"  median {statistics.median(pairs):5.3f}")


if __name__ == "__main__":
    main()
