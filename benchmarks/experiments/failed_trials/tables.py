"""What ``analyze.py`` and ``adopted.py`` share: the runs keyed by (q, problem, failure,
alternative) and seed, and one table cell of final regrets."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np


def load(paths: Sequence[str]) -> tuple[list[dict[str, Any]], dict[tuple, dict[int, dict]]]:
    """The rows of ``failexp.py``'s output files, and the same keyed by
    ``(q, problem, failure, alt)``, then seed."""
    rows = [json.loads(line) for path in paths for line in open(path)]  # noqa: SIM115
    by: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for r in rows:
        by[(r["q"], r["problem"], r["failure"], r["alt"])][r["seed"]] = r
    return rows, by


def fmt(x: float) -> str:
    return f"{x:.2g}" if x >= 1e-3 else f"{x:.1e}"


def regret_cell(runs: dict[int, dict], base: dict[int, dict], *, paired: bool) -> str:
    """Median final regret [IQR] over the seeds of ``runs``, ``n`` seeds, and with ``paired``
    the seeds more than 2x better / worse than ``base``'s same seed."""
    v = np.array([runs[s]["regret"] for s in sorted(runs)])
    lo, med, hi = np.percentile(v, [25, 50, 75])
    text = f"{fmt(med)} [{fmt(lo)}, {fmt(hi)}] n{len(v)}"
    if paired:
        common = sorted(set(runs) & set(base))
        won = sum(runs[s]["regret"] * 2 < base[s]["regret"] for s in common)
        lost = sum(runs[s]["regret"] > 2 * base[s]["regret"] for s in common)
        text += f" {won}/{lost}"
    return text
