"""Tables of gpbo's own ``Bayes(failed=...)`` beside the experiment's alternatives.

python adopted.py q1.jsonl gpbo_q1.jsonl [...]: per q, problem and failure model, the median
final regret [IQR] over seeds, the wins/losses against the old default (``worst``, or
``gpbo-worst`` where the experiment did not run it; a win or loss is a ratio over 2x) and the
mean number of failed trials per run.
"""

import sys

import numpy as np
from tables import load, regret_cell

ORDER = ["worst", "gpbo-worst", "ignore", "gpbo-ignore", "pof", "gpbo"]
rows, by = load(sys.argv[1:])


for q in sorted({r["q"] for r in rows}):
    print(f"\n### q={q}: median regret [IQR] (seeds); w/l against the old default; mean failed")
    print("| problem | failure | " + " | ".join(ORDER) + " |")
    print("|---" * (len(ORDER) + 2) + "|")
    for problem in ["branin", "quad3", "hart6", "quad3edge"]:
        for failure in ["systematic", "transient", "early"]:
            base = by.get((q, problem, failure, "worst")) or by.get(
                (q, problem, failure, "gpbo-worst"), {}
            )
            if not any((q, problem, failure, a) in by for a in ORDER if a != "worst"):
                continue
            cells = []
            for alt in ORDER:
                d = by.get((q, problem, failure, alt))
                if not d:
                    cells.append("")
                    continue
                failed = np.mean([d[s]["n_failed"] for s in d])
                cells.append(f"{regret_cell(d, base, paired=d is not base)} f{failed:.1f}")
            print(f"| {problem} | {failure} | " + " | ".join(cells) + " |")
