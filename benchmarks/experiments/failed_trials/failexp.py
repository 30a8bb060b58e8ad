"""How should gpbo's Bayes strategy treat failed / timed-out trials?

Scratch experiment (nothing under /work/main is modified). Alternatives are implemented as a
subclass of gpbo.strategies.Bayes whose propose() is Bayes.propose with a different GP fit /
acquisition; "worst" calls the unmodified Bayes.propose (the current behaviour).

Usage:
  python failexp.py --problems branin,quad3,hart6 --failures none,systematic,transient,early \
      --alts worst,ignore,pending,knear,local,classifier --seeds 0-7 --q 1 --out results.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction

import gpbo
from gpbo.acquisition import (
    MC_SAMPLES,
    AcquisitionOptions,
    optimize_acquisition,
    optimize_posterior_mean,
    qlogei,
)
from gpbo.strategies import (
    Bayes,
    History,
    _decode_and_top_up,
    _fit_or_warn,
    _gp_work,
    initial_design_size,
    sobol_points,
)

warnings.simplefilter("ignore")

# ---------------------------------------------------------------- problems (unit cube, minimize)
BRANIN_MIN = 0.397887357729739
HART6_MIN = -3.32236801141551
QUAD_C = np.array([0.65, 0.3, 0.55])


def branin(u: np.ndarray) -> float:
    x1, x2 = -5 + 15 * u[0], 15 * u[1]
    a, b, c, r, s, t = 1, 5.1 / (4 * math.pi**2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s - BRANIN_MIN


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hart6(u: np.ndarray) -> float:
    inner = np.sum(_H6_A * (u[None, :] - _H6_P) ** 2, axis=1)
    return float(-np.sum(_H6_ALPHA * np.exp(-inner)) - HART6_MIN)


def quad3(u: np.ndarray) -> float:
    return float(np.sum((u - QUAD_C) ** 2))


QUAD_EDGE_C = np.array([0.8, 0.3, 0.55])


def quad3edge(u: np.ndarray) -> float:
    """The quadratic with its minimum inside the systematic failing region (u0 > 0.7): the
    best feasible point is on the boundary, 0.01 above the unconstrained minimum (run it with
    ``systematic`` failures only; the regret is to the feasible optimum)."""
    return float(np.sum((u - QUAD_EDGE_C) ** 2)) - 0.01


def lredge(u: np.ndarray) -> float:
    """A learning rate's shape (twenty-seventh session): the loss falls as u0 (a log learning
    rate) grows until training diverges past u0 = 0.7 (run it with ``systematic`` failures);
    the best feasible point is on the boundary, u = (0.7, 0.4), where the regret is 0."""
    return float(1.0 - 0.9 * u[0] + 0.5 * (u[1] - 0.4) ** 2) - 0.37


# name: (function, dim, budget, systematic-failure column, threshold)
# systematic: the trial fails where u[col] > thr (30% of the space); every optimum kept
# feasible lies near that boundary (quad3: c0=0.65; branin: pi at u0=0.543, the third optimum
# u0=0.96 is inside the failing region; hart6: u5=0.657)
PROBLEMS = {
    "branin": (branin, 2, 24, 0, 0.7),
    "quad3": (quad3, 3, 24, 0, 0.7),
    "hart6": (hart6, 6, 40, 5, 0.7),
    "quad3edge": (quad3edge, 3, 24, 0, 0.7),
    "lredge": (lredge, 2, 24, 0, 0.7),
}


def fails(failure: str, u: np.ndarray, number: int, seed: int, col: int, thr: float) -> bool:
    if failure == "none":
        return False
    if failure == "systematic":
        return bool(u[col] > thr)
    if failure == "transient":  # 20% per trial, independent of params; same draws for every alt
        draws = np.random.default_rng([seed, 777]).random(1000)
        return bool(draws[number] < 0.2)
    if failure == "early":  # the first 8 trials fail (a flaky cluster at the start)
        return number < 8
    raise ValueError(failure)


# ---------------------------------------------------------------- alternatives
def _impute_mask(history: History, mode: str, K: int = 3, k_nn: int = 4) -> np.ndarray:
    """Which failed rows go into the GP at the worst score."""
    F = history.X_failed
    f = F.shape[0]
    if f == 0 or mode in ("ignore", "pending", "classifier", "pof"):
        return np.zeros(f, dtype=bool)
    if mode == "worst":
        return np.ones(f, dtype=bool)
    d = F.shape[1]
    if mode == "knear":
        # worst only where >= K failed points (itself included) lie within 10% of the diagonal
        r = 0.1 * math.sqrt(d)
        dist = np.linalg.norm(F[:, None, :] - F[None, :, :], axis=-1)
        return (dist <= r).sum(axis=1) >= K
    if mode in ("local", "localpend"):
        # worst only where most of its k_nn nearest evaluated neighbours failed too
        allX = np.vstack([history.X, F])
        is_f = np.r_[np.zeros(history.X.shape[0]), np.ones(f)].astype(bool)
        out = np.zeros(f, dtype=bool)
        for i in range(f):
            dist = np.linalg.norm(allX - F[i], axis=1)
            dist[history.X.shape[0] + i] = np.inf
            nn = np.argsort(dist)[: min(k_nn, allX.shape[0] - 1)]
            out[i] = is_f[nn].mean() >= 0.5
        return out
    raise ValueError(mode)


def fit_with(history: History, mode: str):
    mask = _impute_mask(history, mode)
    h = History(space=history.space, X=history.X, scores=history.scores,
                X_failed=history.X_failed[mask], X_pending=history.X_pending,
                n_total=history.n_total, seed=history.seed,
                surrogate_device=history.surrogate_device,
                first_round_size=history.first_round_size)
    return _fit_or_warn(h), mask


def constraint_model(history: History):
    """A GP on all evaluated points, label 1 = failed, 0 = complete (BoTorch default priors:
    a moderate-noise GP regression on the labels, the usual constrained-BO stand-in for a
    classifier)."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    X = np.vstack([history.X, history.X_failed])
    y = np.r_[np.zeros(history.X.shape[0]), np.ones(history.X_failed.shape[0])]
    Xt = torch.as_tensor(X, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64).unsqueeze(-1)
    m = SingleTaskGP(Xt, yt, outcome_transform=Standardize(m=1))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(m.likelihood, m))
    m.eval()
    return m


class LogEIPlusLogPoF(AcquisitionFunction):
    """gpbo's own (cached) qLogEI plus sum over the q new points of log P(feasible) from the
    constraint GP (label < 0.5): the cheap, q-point-factorized form of constrained EI."""

    def __init__(self, ei, cmodel):
        super().__init__(model=ei.model)
        self.ei, self.cmodel = ei, cmodel

    @property
    def X_pending(self):  # noqa: N802 (BoTorch's name)
        return self.ei.X_pending

    def set_X_pending(self, X_pending=None):  # noqa: N802 (BoTorch's name)
        self.ei.set_X_pending(X_pending)

    def forward(self, X):
        post = self.cmodel.posterior(X)
        mean, sd = post.mean[..., 0], post.variance[..., 0].clamp_min(1e-12).sqrt()
        log_pof = torch.special.log_ndtr((0.5 - mean) / sd)
        return self.ei(X) + log_pof.sum(-1)


@dataclass(kw_only=True)
class FailBayes(Bayes):
    mode: str = "worst"
    stats: dict = field(default_factory=lambda: {"imputed": [], "asks": 0})

    def propose(self, history: History, n: int) -> list[dict[str, Any]]:
        if self.mode == "worst":
            return super().propose(history, n)
        n_init = initial_design_size(history, n, self.n_init)
        if history.n_total < n_init or history.X.shape[0] < 2:
            return sobol_points(history, n)
        with _gp_work(history):
            fitted, mask = fit_with(history, self.mode)
            if fitted is None:
                return sobol_points(history, n)
            self.stats["imputed"].append(int(mask.sum()))
            model, best_f = fitted
            radius = self.exploit_radius if n >= 2 else None
            q = n if radius is None else n - 1
            pend = history.X_pending
            if self.mode in ("pending", "localpend"):
                pend = np.vstack([pend, history.X_failed[~mask]])
            if self.mode == "classifier" and history.X_failed.shape[0] > 0:
                acqf = self._constrained(model, best_f, history, pend)
            elif self.mode == "pof" and history.X_failed.shape[0] > 0:
                acqf = LogEIPlusLogPoF(qlogei(model, best_f=best_f, pending=pend),
                                       constraint_model(history))
            else:
                acqf = qlogei(model, best_f=best_f, pending=pend)
            X = optimize_acquisition(acqf, space=history.space, q=q, seen=history.seen,
                                     options=self._options, generator=history.rng())
            if radius is not None:
                X_exploit = optimize_posterior_mean(
                    model, space=history.space,
                    center=history.X[int(np.argmax(history.scores))], radius=radius, q=1,
                    seen=np.vstack([history.seen, X]),
                    options=AcquisitionOptions(num_restarts=8, raw_samples=256,
                                               maxiter=self.maxiter),
                    generator=history.rng())
                X = np.vstack([X, X_exploit])
        return _decode_and_top_up(history, X, n)

    def _constrained(self, model, best_f, history, pend):
        from botorch.acquisition.logei import qLogExpectedImprovement
        from botorch.acquisition.objective import GenericMCObjective
        from botorch.models import ModelListGP
        from botorch.sampling import SobolQMCNormalSampler

        cmodel = constraint_model(history)
        both = ModelListGP(model, cmodel)
        return qLogExpectedImprovement(
            both, best_f=best_f,
            sampler=SobolQMCNormalSampler(sample_shape=torch.Size([MC_SAMPLES])),
            objective=GenericMCObjective(lambda Z, X=None: Z[..., 0]),
            constraints=[lambda Z: Z[..., 1] - 0.5],
            X_pending=torch.as_tensor(pend, dtype=torch.float64) if pend.shape[0] else None,
        )


# ---------------------------------------------------------------- one run
def make_strategy(alt: str) -> Bayes:
    """``gpbo-<failed>`` is gpbo's own ``Bayes(failed=<failed>)`` (``gpbo`` its default); the
    other names are this file's alternatives, on top of the old default (``failed="worst"``)."""
    if alt == "gpbo":
        return Bayes()
    if alt.startswith("gpbo-"):
        return Bayes(failed=alt[len("gpbo-"):])
    return FailBayes(mode=alt, failed="worst")


def run_one(problem: str, failure: str, alt: str, seed: int, q: int) -> dict:
    fn, d, budget, col, thr = PROBLEMS[problem]
    space = {f"x{i}": gpbo.Real(0.0, 1.0) for i in range(d)}
    strat = make_strategy(alt)
    study = gpbo.Study(space, strategy=strat, seed=seed)
    best, n_fail, told = math.inf, 0, 0
    trace = []
    near_failed = 0  # proposals within 0.05 (max-norm) of an earlier failed point
    in_fail_region = 0  # proposals (after the design) inside the systematic failing region
    failed_pts: list[np.ndarray] = []
    t0 = time.time()
    n_init = 2 * (d + 1) // q * q
    while told < budget:
        trials = study.ask(min(q, budget - told))
        for tr in trials:
            u = np.array([tr.params[f"x{i}"] for i in range(d)])
            if tr.number >= max(n_init, 8):
                if failed_pts and np.min(np.max(np.abs(np.array(failed_pts) - u), axis=1)) < 0.05:
                    near_failed += 1
                if u[col] > thr:
                    in_fail_region += 1
            if fails(failure, u, tr.number, seed, col, thr):
                study.tell(tr, status="failed", error="simulated failure")
                n_fail += 1
                failed_pts.append(u)
            else:
                v = fn(u)
                study.tell(tr, v)
                best = min(best, v)
            told += 1
            trace.append(best)
    return {
        "problem": problem, "failure": failure, "alt": alt, "seed": seed, "q": q,
        "regret": best, "trace": trace, "n_failed": n_fail, "near_failed": near_failed,
        "in_fail_region": in_fail_region,
        "imputed": (strat.stats["imputed"][-1:] or [0]) if isinstance(strat, FailBayes) else [0],
        "seconds": round(time.time() - t0, 2),
    }


def seeds_arg(s: str) -> list[int]:
    if "-" in s:
        a, b = s.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in s.split(",")]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--problems", default="branin")
    p.add_argument("--failures", default="none,systematic,transient,early")
    p.add_argument("--alts", default="worst,ignore,pending,knear,local,classifier")
    p.add_argument("--seeds", default="0-7")
    p.add_argument("--q", type=int, default=1)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    done = set()
    if os.path.exists(a.out):
        for line in open(a.out):  # noqa: SIM115
            r = json.loads(line)
            done.add((r["problem"], r["failure"], r["alt"], r["seed"], r["q"]))
    torch.set_num_threads(1)
    for seed in seeds_arg(a.seeds):
        for problem in a.problems.split(","):
            for failure in a.failures.split(","):
                for alt in a.alts.split(","):
                    if failure == "none" and alt != "worst":
                        continue  # no failures: every alternative is the same run
                    key = (problem, failure, alt, seed, a.q)
                    if key in done:
                        continue
                    r = run_one(problem, failure, alt, seed, a.q)
                    with open(a.out, "a") as fh:
                        fh.write(json.dumps(r) + "\n")
                    print(f"{problem} {failure:10s} {alt:10s} s{seed} q{a.q} "
                          f"regret={r['regret']:.3g} fail={r['n_failed']} "
                          f"near={r['near_failed']} infail={r['in_fail_region']} "
                          f"{r['seconds']}s", flush=True)


if __name__ == "__main__":
    main()
