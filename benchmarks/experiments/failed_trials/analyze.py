"""Tables of median final regret [IQR] per problem x failure model x alternative.

python analyze.py q1.jsonl [q4.jsonl ...]
"""
import sys
from collections import defaultdict

import numpy as np
from tables import load, regret_cell

rows, by = load(sys.argv[1:])
alts_order = ["worst", "ignore", "pending", "knear", "local", "localpend", "classifier", "pof"]


for q in sorted({r["q"] for r in rows}):
    for problem in ["branin", "quad3", "hart6"]:
        fails = [f for f in ["none", "systematic", "transient", "early"]
                 if (q, problem, f, "worst") in by]
        if not fails:
            continue
        alts = [a for a in alts_order if any((q, problem, f, a) in by for f in fails)]
        print(f"\n### {problem}, q={q}: median regret [IQR], n seeds; "
              f"w/l vs worst (paired seeds, ratio >2x)")
        print("| failure | " + " | ".join(alts) + " |")
        print("|---" * (len(alts) + 1) + "|")
        for f in fails:
            cells = []
            base = by.get((q, problem, f, "worst"), {})
            for a in alts:
                d = by.get((q, problem, f, a)) or (base if f == "none" else None)
                if not d:
                    cells.append("")
                    continue
                cells.append(regret_cell(d, base, paired=a != "worst" and f != "none"))
            print(f"| {f} | " + " | ".join(cells) + " |")
    # aggregate: median over problems and seeds of log10(regret / worst's regret)
    print(f"\n### q={q}: median over seeds of log10(regret_alt / regret_worst), per problem")
    for f in ["systematic", "transient", "early"]:
        line = []
        for a in alts_order[1:]:
            vals = []
            for problem in ["branin", "quad3", "hart6"]:
                d, base = by.get((q, problem, f, a)), by.get((q, problem, f, "worst"))
                if not d or not base:
                    continue
                common = sorted(set(d) & set(base))
                r = [np.log10(max(d[s]["regret"], 1e-12) / max(base[s]["regret"], 1e-12))
                     for s in common]
                vals.append(f"{problem[:3]}{np.median(r):+.2f}")
            line.append(f"{a}: " + " ".join(vals))
        print(f"- {f}: " + "; ".join(line))
    # diagnostics
    print(f"\n### q={q}: mean proposals in failing region (systematic) / near a failed point")
    for problem in ["branin", "quad3", "hart6"]:
        out = []
        for a in alts_order:
            d = by.get((q, problem, "systematic", a))
            if d:
                out.append(f"{a} {np.mean([r['in_fail_region'] for r in d.values()]):.1f}"
                           f"/{np.mean([r['n_failed'] for r in d.values()]):.1f}")
        print(f"- {problem} (in region / total failed): " + ", ".join(out))
    times = defaultdict(list)
    for r in rows:
        if r["q"] == q:
            times[(r["problem"], r["alt"])].append(r["seconds"])
    print(f"\n### q={q}: mean seconds per run")
    for problem in ["branin", "quad3", "hart6"]:
        print(f"- {problem}: " + ", ".join(
            f"{a} {np.mean(times[(problem, a)]):.1f}" for a in alts_order if times[(problem, a)]))

# mean rank (1 = best) of each alternative within each (q, problem, failure, seed), averaged
print("\n### mean rank within (problem, failure, seed); lower is better")
for q in sorted({r["q"] for r in rows}):
    for f in ["systematic", "transient", "early"]:
        ranks = defaultdict(list)
        for problem in ["branin", "quad3", "hart6"]:
            alts = [a for a in alts_order if (q, problem, f, a) in by]
            seeds = set.intersection(*[set(by[(q, problem, f, a)]) for a in alts])
            for s in seeds:
                vals = np.array([by[(q, problem, f, a)][s]["regret"] for a in alts])
                from scipy.stats import rankdata
                for a, rk in zip(alts, rankdata(vals), strict=True):
                    ranks[a].append(rk)
        print(f"- q={q} {f}: " + ", ".join(f"{a} {np.mean(v):.2f}" for a, v in ranks.items()))
