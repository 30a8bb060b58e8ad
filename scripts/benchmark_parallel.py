"""Parallel efficiency of gpbo's process executor: how much of k slots' time goes to trials.

Runs ``N`` sleeping trials on ``k`` CPU slots through :func:`gpbo.optimize` and reports

    efficiency = (sum of the trials' durations) / (k * wall time),

where the wall time runs from the call of ``optimize()`` to its return (worker start-up and
shut-down included) and a trial's duration is the time it actually slept. The table also
shows the start-up (from the call to the first trial starting: mostly the workers importing
torch) and the efficiency over the rest of the run. Each combination of

* mode: ``sync`` (rounds of ``k`` points, refit after each) and ``async`` (a new point whenever
  a slot frees);
* workload: ``fixed`` (every trial sleeps ``T``) and ``varying`` (trial ``i`` sleeps
  ``T * uniform(0.5, 2)``, drawn from ``(seed, i)``: durations vary by a factor of 4, and both
  modes get the same durations);
* strategy: ``random`` (the executor's own efficiency) and ``bayes`` (the optimizer's cost
  included: GP fit and acquisition between trials, default settings);

is run once. Prints a markdown table; ``--out`` writes the results and the machine as JSON.

Usage:
    python scripts/benchmark_parallel.py [--n-trials 20] [--duration 2] [--slots 2]
        [--modes sync async] [--workloads fixed varying] [--strategies random bayes]
        [--seed 0] [--out results.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

import gpbo

SPACE = {"x": gpbo.Real(-5.0, 5.0), "y": gpbo.Real(-5.0, 5.0)}
MODES = ("sync", "async")
WORKLOADS = ("fixed", "varying")
STRATEGIES = ("random", "bayes")


def planned_duration(number: int, *, duration: float, workload: str, seed: int) -> float:
    """Seconds trial ``number`` sleeps: ``duration``, or ``duration * uniform(0.5, 2)``."""
    if workload == "fixed":
        return duration
    rng = np.random.default_rng([seed, number])
    return duration * float(rng.uniform(0.5, 2.0))


def sleeping_trial(
    params: dict[str, Any], *, duration: float, workload: str, seed: int
) -> dict[str, float]:
    """The benchmark's objective: sleep, then return a quadratic of the parameters.

    Runs in the worker processes (the script is re-imported there under its main guard).
    """
    seconds = planned_duration(
        gpbo.current_trial().number, duration=duration, workload=workload, seed=seed
    )
    start = time.monotonic()
    time.sleep(seconds)
    slept = time.monotonic() - start
    return {"value": (params["x"] - 1.0) ** 2 + (params["y"] + 2.0) ** 2, "slept": slept}


def run_case(
    *, mode: str, workload: str, strategy: str, n_trials: int, duration: float, slots: int,
    seed: int,
) -> dict[str, Any]:
    """One optimize() call, timed; returns the row of the table as a dict."""
    objective = functools.partial(sleeping_trial, duration=duration, workload=workload, seed=seed)
    started_wall = time.time()
    started = time.perf_counter()
    result = gpbo.optimize(
        objective,
        SPACE,
        n_trials=n_trials,
        batch_size=slots if mode == "sync" else 1,  # async proposes as slots free up
        mode=mode,  # type: ignore[arg-type]
        strategy=strategy,
        devices=["cpu"] * slots,
        executor="process",
        seed=seed,
        verbose=False,
        max_consecutive_failures=None,
    )
    wall = time.perf_counter() - started
    ended_wall = started_wall + wall
    trials = result.trials
    complete = [t for t in trials if t.status == "complete"]
    work = sum(t.metrics.get("slept", 0.0) for t in complete)
    first_start = min((t.started_at for t in trials if t.started_at), default=ended_wall)
    last_finish = max((t.finished_at for t in trials if t.finished_at), default=ended_wall)
    return {
        "mode": mode,
        "workload": workload,
        "strategy": strategy,
        "n_trials": n_trials,
        "duration_s": duration,
        "slots": slots,
        "complete": len(complete),
        "wall_s": round(wall, 3),
        "work_s": round(work, 3),
        "efficiency": round(work / (slots * wall), 4),
        "efficiency_after_startup": round(
            work / (slots * max(wall - (first_start - started_wall), 1e-9)), 4
        ),
        "startup_s": round(first_start - started_wall, 3),
        "wind_down_s": round(ended_wall - last_finish, 3),
        "best_value": result.best_value if complete else None,
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpbo": gpbo.__version__,
        "platform": platform.platform(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The results as a markdown table."""
    head = (
        "| mode | workload | strategy | trials | T (s) | slots | wall (s) | work (s) "
        "| efficiency | start-up (s) | efficiency after start-up | wind-down (s) |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['workload']} | {r['strategy']} | {r['n_trials']} "
            f"| {r['duration_s']:g} | {r['slots']} | {r['wall_s']:.2f} | {r['work_s']:.2f} "
            f"| {r['efficiency']:.3f} | {r['startup_s']:.2f} "
            f"| {r['efficiency_after_startup']:.3f} | {r['wind_down_s']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=20, help="trials per run (default 20)")
    parser.add_argument("--duration", type=float, default=2.0,
                        help="seconds a trial sleeps, T (default 2)")
    parser.add_argument("--slots", type=int, default=2, help="CPU slots, k (default 2)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    if args.n_trials < 1 or args.duration <= 0 or args.slots < 1:
        parser.error("--n-trials and --slots must be positive, --duration > 0")

    info = machine()
    print(
        f"# {args.n_trials} trials of T={args.duration:g} s on {args.slots} CPU slot(s); "
        f"{info['nproc']} cores ({info['cpu']}), python {info['python']}, torch "
        f"{info['torch']}, load average {info['load_average_before']}",
        flush=True,
    )
    rows = []
    for strategy in args.strategies:
        for workload in args.workloads:
            for mode in args.modes:
                row = run_case(
                    mode=mode, workload=workload, strategy=strategy, n_trials=args.n_trials,
                    duration=args.duration, slots=args.slots, seed=args.seed,
                )
                rows.append(row)
                print(
                    f"# {mode:5s} {workload:7s} {strategy:6s}: efficiency "
                    f"{row['efficiency']:.3f} (wall {row['wall_s']:.2f} s)",
                    flush=True,
                )
    print()
    print(markdown_table(rows))
    if args.out:
        payload = {
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "machine": info,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "results": rows,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=2)
            out.write("\n")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
