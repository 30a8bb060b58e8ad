"""Before/after table: gpbo variants against the baseline, on the seeds both have run.

Usage:
    python benchmarks/experiments/compare.py benchmarks/results/quality/results.json \\
        benchmarks/results/experiments/results.json [more results.json ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

BASELINE = {"q1": "gpbo-bayes-q1", "q4": "gpbo-bayes-q4"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="results.json with gpbo-bayes-q1/q4")
    parser.add_argument("variants", type=Path, nargs="+", help="results.json of the variants")
    args = parser.parse_args(argv)
    runs = json.loads(args.baseline.read_text())["runs"]
    for path in args.variants:
        # a variants file's own runs of the baseline methods (often older code) would replace
        # the baseline's on the seeds both have
        runs += [r for r in json.loads(path.read_text())["runs"]
                 if r["method"] not in BASELINE.values()]
    table: dict[tuple[str, str], dict[int, float]] = {}
    for r in runs:
        table.setdefault((r["problem"], r["method"]), {})[int(r["seed"])] = r["log10_regret"]
    problems = list(dict.fromkeys(r["problem"] for r in runs))
    variants = sorted({m for _, m in table if m.startswith("exp-")})
    print("| variant | baseline | " + " | ".join(problems) + " | mean change |")
    print("| --- | --- | " + " | ".join("---" for _ in problems) + " | ---: |")
    for variant in variants:
        base = BASELINE["q4" if variant.endswith("q4") else "q1"]
        cells, deltas = [], []
        for p in problems:
            v, b = table.get((p, variant), {}), table.get((p, base), {})
            seeds = sorted(set(v) & set(b))
            if not seeds:
                cells.append("—")
                continue
            mv = float(np.median([v[s] for s in seeds]))
            mb = float(np.median([b[s] for s in seeds]))
            deltas.append(mv - mb)
            cells.append(f"{mb:.2f} → {mv:.2f} (n={len(seeds)})")
        mean = f"{np.mean(deltas):+.2f}" if deltas else "—"
        print(f"| {variant} | {base} | " + " | ".join(cells) + f" | {mean} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
