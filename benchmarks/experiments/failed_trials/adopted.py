"""Tables of gpbo's own ``Bayes(failed=...)`` beside the experiment's alternatives.

python adopted.py q1.jsonl gpbo_q1.jsonl [...]: per q, problem and failure model, the median
final regret [IQR] over seeds, the wins/losses against the old default (``worst``, or
``gpbo-worst`` where the experiment did not run it; a win or loss is a ratio over 2x) and the
mean number of failed trials per run.
"""

import json
import sys
from collections import defaultdict

import numpy as np

ORDER = ["worst", "gpbo-worst", "ignore", "gpbo-ignore", "pof", "gpbo"]
rows = [json.loads(line) for f in sys.argv[1:] for line in open(f)]  # noqa: SIM115
by: dict = defaultdict(dict)
for r in rows:
    by[(r["q"], r["problem"], r["failure"], r["alt"])][r["seed"]] = r


def fmt(x: float) -> str:
    return f"{x:.2g}" if x >= 1e-3 else f"{x:.1e}"


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
                v = np.array([d[s]["regret"] for s in sorted(d)])
                lo, med, hi = np.percentile(v, [25, 50, 75])
                common = sorted(set(d) & set(base))
                won = sum(d[s]["regret"] * 2 < base[s]["regret"] for s in common)
                lost = sum(d[s]["regret"] > 2 * base[s]["regret"] for s in common)
                failed = np.mean([d[s]["n_failed"] for s in d])
                wl = "" if d is base else f" {won}/{lost}"
                cells.append(f"{fmt(med)} [{fmt(lo)}, {fmt(hi)}] n{len(v)}{wl} f{failed:.1f}")
            print(f"| {problem} | {failure} | " + " | ".join(cells) + " |")
