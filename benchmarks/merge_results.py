"""Merge the runs of several ``benchmark_quality.py`` results into one, for one table.

Each source is ``PATH`` or ``PATH:METHOD,METHOD``; a run (problem, method, seed) is taken
from the first source listed that has it and names its method (or names none), so the
sources go newest first. Runs outside ``--seeds`` are left out. Then
``scripts/benchmark_quality.py --report-only --out OUT`` writes the table and plots.

Usage:
    python benchmarks/merge_results.py --seeds 0-19 --out benchmarks/results/quality \\
        benchmarks/results/quality_30seeds_42b4ef1/results.json:gpbo-bayes-q1,gpbo-bayes-q4 \\
        benchmarks/results/quality_peers_s10_29/results.json \\
        benchmarks/results/quality_earlier/results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _seeds(text: str) -> set[int]:
    first, _, last = text.partition("-")
    try:
        seeds = set(range(int(first), int(last or first) + 1))
    except ValueError:
        raise SystemExit(f"--seeds {text!r}: give a range such as 0-19") from None
    if not seeds:
        raise SystemExit(f"--seeds {text!r} is empty: the first seed comes first (0-19)")
    return seeds


def merge(sources: list[str], *, seeds: set[int]) -> dict[str, Any]:
    """The merged results: every source's runs in ``seeds``, the first source's on a clash."""
    merged: dict[tuple[str, str, int], dict[str, Any]] = {}
    environments: list[dict[str, Any]] = []
    schema = None
    for source in sources:
        path, _, methods_text = source.partition(":")
        methods = {m for m in methods_text.split(",") if m}
        data = json.loads(Path(path).read_text())
        if not str(data.get("schema", "")).startswith("gpbo-benchmark-quality/"):
            raise SystemExit(f"{path}: not a benchmark_quality.py results file")
        schema = schema or data.get("schema")
        environments.append({"source": source, **data.get("environment", {})})
        found = {run["method"] for run in data["runs"]}
        unknown = sorted(methods - found)
        if unknown:
            raise SystemExit(f"{path} has no runs of {unknown}; it has {sorted(found)}")
        taken = 0
        for run in data["runs"]:
            key = (run["problem"], run["method"], int(run["seed"]))
            if key[2] in seeds and (not methods or key[1] in methods):
                taken += key not in merged
                merged.setdefault(key, run)
        if not taken:
            print(f"warning: {source} adds no run (none in --seeds, or all taken from the "
                  "sources before it)")
    return {
        "schema": schema,
        # the first source's environment, as the report reads it, and every source's
        "environment": {**environments[0], "merged_from": environments},
        "runs": list(merged.values()),
        "unavailable": {},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", help="PATH or PATH:METHOD,METHOD, newest first")
    parser.add_argument("--seeds", required=True, help="a range, e.g. 0-19")
    parser.add_argument("--out", type=Path, required=True, help="directory of the merged file")
    args = parser.parse_args(argv)
    data = merge(args.sources, seeds=_seeds(args.seeds))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"{len(data['runs'])} runs -> {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
