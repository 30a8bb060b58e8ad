"""Each alternative against the default of the run (``gpbo``), per (q, problem, failure).

python versus_default.py region_q1.jsonl [...]: for each alternative, the median final regret
over seeds, ``f`` the mean failed trials of a run, the seeds where it was more than 2x better
/ worse than ``gpbo`` on the same seed, and the number of seeds (twenty-seventh session).
"""

import collections
import json
import sys

import numpy as np

FLOOR = 1e-12  # a regret of 0 still has a ratio


def main(paths: list[str]) -> None:
    by: dict[tuple, dict[int, dict]] = collections.defaultdict(dict)
    for path in paths:
        with open(path) as lines:
            for line in lines:
                row = json.loads(line)
                by[(row["q"], row["problem"], row["failure"], row["alt"])][row["seed"]] = row
    alts = sorted({key[3] for key in by}, key=lambda a: (a != "gpbo", a != "gpbo-worst", a))
    for case in sorted({key[:3] for key in by}):
        base = by.get((*case, "gpbo"), {})
        cells = []
        for alt in alts:
            runs = by.get((*case, alt))
            if not runs:
                continue
            better = worse = 0
            for seed, run in runs.items():
                if seed in base and alt != "gpbo":
                    ratio = max(run["regret"], FLOOR) / max(base[seed]["regret"], FLOOR)
                    better += ratio < 0.5
                    worse += ratio > 2
            median = np.median([max(run["regret"], FLOOR) for run in runs.values()])
            failed = np.mean([run["n_failed"] for run in runs.values()])
            cells.append(f"{alt}: {median:.2g} f{failed:.1f} {better}/{worse} n{len(runs)}")
        print("- q={} {} {}: ".format(*case) + " | ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1:])
