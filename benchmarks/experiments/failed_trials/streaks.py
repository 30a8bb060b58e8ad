"""Failed trials in a row where the best settings border a failing region (thirtieth session).

A study ends with an error once ``max_consecutive_failures`` trials (5 by default) fail in a
row. On ``lredge`` the default ``Bayes`` reaches 5 on some seeds while the study is making
progress. The variants sharpen the success weight while the last finished trials failed: the
acquisition adds ``power`` times the log probability of success, ``power`` being 1 for the
library (``base``), ``1 + s`` (``lin``), ``2 ** s`` (``exp``) with ``s`` the failures in a row
at the ask. Each run prints a JSON line: final regret, failed trials, longest run of failures,
and the trials' failure flags in trial order::

    python streaks.py exp lredge systematic 1 0-8 \
        >> ../../results/experiments_failed_trials/streaks.jsonl

Arguments: variant, problem (``failexp.PROBLEMS``), failure kind, batch size, seeds ``lo-hi``
(``hi`` excluded). Results and verdict: README.md, last section.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import failexp
import numpy as np
import torch

import gpbo
import gpbo.strategies
from gpbo.cached_gp import SuccessWeighted, cache_posterior
from gpbo.surrogate import log_probability_of_success

FAILED_IN_A_ROW = [0]  # set before each ask: the patched weight reads it


def _power(variant: str, in_a_row: int) -> float:
    return {"base": 1.0, "lin": 1.0 + in_a_row, "exp": 2.0**in_a_row}[variant]


class PoweredSuccess(SuccessWeighted):
    """The acquisition plus ``power`` times the log probability of success."""

    def __init__(self, acqf: Any, success_gp: Any, power: float) -> None:
        super().__init__(acqf, success_gp)
        self.power = power

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        logp = log_probability_of_success(self.success_gp, X).sum(-1)
        return self.acqf(X) + self.power * logp


def run(variant: str, problem: str, failure: str, seed: int, q: int) -> dict[str, Any]:
    fn, d, budget, col, thr = failexp.PROBLEMS[problem]

    def weighted(acqf: Any, success_gp: Any) -> Any:
        power = _power(variant, FAILED_IN_A_ROW[0])
        return PoweredSuccess(acqf, cache_posterior(success_gp), power)

    gpbo.strategies.with_success_probability = weighted
    space = {f"x{i}": gpbo.Real(0.0, 1.0) for i in range(d)}
    study = gpbo.Study(space, strategy=gpbo.strategies.Bayes(), seed=seed)
    flags: list[int] = []
    best, started = math.inf, time.time()
    while len(flags) < budget:
        in_a_row = 0
        for flag in reversed(flags):
            if not flag:
                break
            in_a_row += 1
        FAILED_IN_A_ROW[0] = in_a_row
        for trial in study.ask(min(q, budget - len(flags))):
            u = np.array([trial.params[f"x{i}"] for i in range(d)])
            if failexp.fails(failure, u, trial.number, seed, col, thr):
                study.tell(trial, status="failed", error="simulated failure")
                flags.append(1)
            else:
                value = fn(u)
                study.tell(trial, value)
                best = min(best, value)
                flags.append(0)
    longest = streak = 0
    for flag in flags:
        streak = streak + 1 if flag else 0
        longest = max(longest, streak)
    return {"variant": variant, "problem": problem, "failure": failure, "q": q, "seed": seed,
            "regret": best, "failed": sum(flags), "longest": longest,
            "flags": "".join(map(str, flags)), "seconds": round(time.time() - started, 1)}


def main() -> None:
    variant, problem, failure, q, seeds = sys.argv[1:6]
    lo, hi = map(int, seeds.split("-"))
    torch.set_num_threads(1)
    for seed in range(lo, hi):
        print(json.dumps(run(variant, problem, failure, seed, int(q))), flush=True)


if __name__ == "__main__":
    main()
