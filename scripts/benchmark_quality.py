"""Sample efficiency of gpbo against its peers: problems x methods x seeds.

Every method minimizes the same closed-form test functions (``botorch.test_functions``, known
optimum) with the same number of evaluations. The figure of merit is
``log10(best found - optimum)`` at the budget (regret clipped at 1e-12): its median and
interquartile range over seeds, lower is better. Each run's whole trace (every value, in
evaluation order) and its wall/CPU time go to ``results.json``, rewritten after every run so a
long benchmark survives an interruption (``--resume`` skips the runs already there); the
markdown table goes to ``results.md`` and one convergence plot per problem to
``convergence_<problem>.png``.

The peers are optional (``pip install -e ".[bench]"`` in the checkout); a missing one is skipped
with a message.

Usage:
    python scripts/benchmark_quality.py --out benchmarks/results/quality --seeds 10 --resume
    python scripts/benchmark_quality.py --problems branin --methods gpbo-random,gpbo-bayes-q1 \\
        --seeds 1 --budget 8 --out /tmp/smoke
    python scripts/benchmark_quality.py --report-only --out benchmarks/results/quality
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import math
import multiprocessing
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # gpbo from this checkout when it is not installed

#: How to install the peers: gpbo is installed from its checkout, not from PyPI.
BENCH_INSTALL_HINT = 'install the peers from the gpbo checkout: pip install -e ".[bench]"'
#: Regret below this is "at the optimum" (log10 regret -12).
REGRET_FLOOR = 1e-12
#: Environment variables that fix the BLAS/OpenMP thread pools; set before numpy/torch start.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_THREADS_MARK = "GPBO_BENCH_THREADS"
#: Set (by ``--fast``) to shrink gpbo's and the BoTorch loop's acquisition budget: smoke tests.
FAST_ENV = "GPBO_BENCH_FAST"
FAST_ACQUISITION = {"num_restarts": 2, "raw_samples": 32, "maxiter": 20}
SCHEMA = "gpbo-benchmark-quality/1"


class MethodUnavailableError(RuntimeError):
    """A method's package is not installed (or does not work here); the method is skipped."""


# -- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A minimization problem with a known optimum.

    Attributes:
        name: Short name used on the command line and in the results.
        label: Name for tables and plots.
        factory: Builds the ``botorch.test_functions`` function (noise-free).
        budget: Evaluations per run.
        noise_sd: Standard deviation of Gaussian noise added to every value a method sees.
            The regret of a noisy run is that of the noise-free value at the point a user
            would pick: the one with the best observed value.
    """

    name: str
    label: str
    factory: Callable[[], Any]
    budget: int
    noise_sd: float = 0.0

    def function(self) -> Any:
        """The botorch test function (created on first use, then cached per process)."""
        cached = _FUNCTIONS.get(self.name)
        if cached is None:
            cached = _FUNCTIONS[self.name] = self.factory()
        return cached

    @property
    def dim(self) -> int:
        """Number of inputs."""
        return int(self.function().dim)

    @property
    def bounds(self) -> list[tuple[float, float]]:
        """``(low, high)`` of each input."""
        b = self.function().bounds
        return [(float(b[0, i]), float(b[1, i])) for i in range(b.shape[1])]

    @property
    def optimum(self) -> float:
        """The minimum value."""
        return float(self.function().optimal_value)

    def __call__(self, x: Sequence[float]) -> float:
        """The value at ``x`` (a `d`-sequence in the problem's bounds)."""
        import torch

        X = torch.tensor([list(map(float, x))], dtype=torch.float64)
        with torch.no_grad():
            clean = float(self.function()(X).item())
        if self.noise_sd == 0.0:
            return clean
        rng, clean_values = _NOISE[self.name]
        clean_values.append(clean)
        return clean + self.noise_sd * float(rng.standard_normal())

    def start_run(self, seed: int) -> list[float]:
        """Seed the noise for one run; returns the list its noise-free values will fill."""
        clean_values: list[float] = []
        _NOISE[self.name] = (np.random.default_rng([seed, 7919]), clean_values)
        return clean_values


_FUNCTIONS: dict[str, Any] = {}
_NOISE: dict[str, tuple[np.random.Generator, list[float]]] = {}


def _branin() -> Any:
    from botorch.test_functions import Branin

    return Branin()


def _hartmann6() -> Any:
    from botorch.test_functions import Hartmann

    return Hartmann(dim=6)


def _ackley5() -> Any:
    from botorch.test_functions import Ackley

    return Ackley(dim=5)  # bounds [-32.768, 32.768]^5


def _rosenbrock4() -> Any:
    from botorch.test_functions import Rosenbrock

    return Rosenbrock(dim=4)  # bounds [-5, 10]^4


def _styblinski_tang8() -> Any:
    from botorch.test_functions import StyblinskiTang

    return StyblinskiTang(dim=8)  # bounds [-5, 5]^8


class _WithIgnoredInputs:
    """A botorch test function with ``extra`` more inputs on [0, 1] that it ignores.

    Tuning problems often have parameters that barely matter; a model that cannot tell them
    apart spends evaluations on them.
    """

    def __init__(self, base: Any, extra: int) -> None:
        import torch

        self.base = base
        self.dim = base.dim + extra
        unit = torch.tensor([[0.0] * extra, [1.0] * extra], dtype=base.bounds.dtype)
        self.bounds = torch.cat([base.bounds, unit], dim=1)
        self.optimal_value = base.optimal_value

    def __call__(self, X: Any) -> Any:
        return self.base(X[..., : self.base.dim])


def _branin_in8() -> Any:
    return _WithIgnoredInputs(_branin(), 6)


def _hartmann6_in12() -> Any:
    return _WithIgnoredInputs(_hartmann6(), 6)


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem("branin", "Branin 2D", _branin, 30),
        Problem("hartmann6", "Hartmann6", _hartmann6, 60),
        Problem("ackley5", "Ackley 5D", _ackley5, 60),
        Problem("rosenbrock4", "Rosenbrock 4D", _rosenbrock4, 60),
        Problem("styblinski_tang8", "Styblinski-Tang 8D", _styblinski_tang8, 80),
        # Not in the default suite: checks that the noise model does not overfit noise-free
        # problems (noise sd 0.1 on a function whose values span about [-3.3, 0])
        Problem("hartmann6_noisy", "Hartmann6, noise sd 0.1", _hartmann6, 60, noise_sd=0.1),
        # Not in the default suite: inputs the function ignores (6 more on [0, 1] each), which
        # a model has to learn to switch off
        Problem("branin_in8", "Branin in 8D (6 inputs ignored)", _branin_in8, 40),
        Problem("hartmann6_in12", "Hartmann6 in 12D (6 inputs ignored)", _hartmann6_in12, 80),
    )
}
#: The problems run by default.
DEFAULT_PROBLEMS = ("branin", "hartmann6", "ackley5", "rosenbrock4", "styblinski_tang8")

# -- methods ----------------------------------------------------------------------------------
#: A method: ``(problem, budget, seed) -> values in evaluation order`` (``budget`` of them).
Method = Callable[[Problem, int, int], list[float]]


def gpbo_space(problem: Problem) -> dict[str, Any]:
    """The problem's box as a gpbo space (``x0 .. x{d-1}``, all ``Real``)."""
    import gpbo

    return {f"x{i}": gpbo.Real(lo, hi) for i, (lo, hi) in enumerate(problem.bounds)}


def run_gpbo_study(
    problem: Problem, budget: int, seed: int, *, strategy: Any, q: int
) -> list[float]:
    """Drive a :class:`gpbo.Study` by ask/tell in rounds of ``q`` (the last one may be smaller).

    Args:
        problem: The problem.
        budget: Evaluations.
        seed: The study's seed.
        strategy: A strategy name or a configured :class:`gpbo.strategies.Strategy`.
        q: Points per round (asked jointly).

    Returns:
        The values in evaluation order.
    """
    import gpbo

    study = gpbo.Study(gpbo_space(problem), strategy=strategy, seed=seed)
    names = [f"x{i}" for i in range(problem.dim)]
    values: list[float] = []
    while len(values) < budget:
        for trial in study.ask(min(q, budget - len(values))):
            value = problem([trial.params[name] for name in names])
            study.tell(trial, value)
            values.append(value)
    return values


def acquisition_budget() -> dict[str, int]:
    """``num_restarts``, ``raw_samples``, ``maxiter``: gpbo's defaults, or tiny with ``--fast``."""
    if os.environ.get(FAST_ENV):
        return dict(FAST_ACQUISITION)
    return {"num_restarts": 10, "raw_samples": 512, "maxiter": 200}


def gpbo_bayes(q: int) -> Method:
    """gpbo's default ``bayes`` strategy, ``q`` points per round."""

    def method(problem: Problem, budget: int, seed: int) -> list[float]:
        import gpbo

        strategy = gpbo.strategies.Bayes(**acquisition_budget()) if os.environ.get(
            FAST_ENV) else "bayes"
        return run_gpbo_study(problem, budget, seed, strategy=strategy, q=q)

    method.__doc__ = f"gpbo bayes (defaults), q={q}"
    return method


def gpbo_random(problem: Problem, budget: int, seed: int) -> list[float]:
    """gpbo ``random``: independent uniform points."""
    return run_gpbo_study(problem, budget, seed, strategy="random", q=1)


def _require(module: str, method: str) -> Any:
    """Import ``module`` or raise :class:`MethodUnavailableError` with the install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MethodUnavailableError(
            f"method {method!r} needs {module!r} ({exc}); {BENCH_INSTALL_HINT}"
        ) from exc


def bayes_opt_method(problem: Problem, budget: int, seed: int) -> list[float]:
    """bayes_opt 3.x: 5 random starts, then its defaults (UCB, kappa 2.576); maximizes -f."""
    bayes_opt = _require("bayes_opt", "bayes_opt")
    values: list[float] = []
    names = [f"x{i}" for i in range(problem.dim)]

    def negated(**params: float) -> float:
        value = problem([params[name] for name in names])
        values.append(value)
        return -value

    optimizer = bayes_opt.BayesianOptimization(
        f=negated,
        pbounds=dict(zip(names, problem.bounds, strict=True)),
        random_state=seed,
        verbose=0,
    )
    init = min(5, budget)
    optimizer.maximize(init_points=init, n_iter=budget - init)
    # a suggestion equal to a registered point is not evaluated again (bayes_opt answers it
    # from its cache), so a few more iterations may be needed to spend the whole budget
    extra = 0
    while len(values) < budget and extra < budget:
        optimizer.maximize(init_points=0, n_iter=1)
        extra += 1
    return values[:budget]


def _optuna_method(sampler_name: str) -> Method:
    def method(problem: Problem, budget: int, seed: int) -> list[float]:
        optuna = _require("optuna", f"optuna-{sampler_name}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        bounds = problem.bounds
        if sampler_name == "gp":
            _require("scipy", "optuna-gp")
            sampler = optuna.samplers.GPSampler(seed=seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=seed)

        def objective(trial: Any) -> float:
            x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]
            return problem(x)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(direction="minimize", sampler=sampler)
            study.optimize(objective, n_trials=budget)
        return [float(t.value) for t in study.trials]

    method.__doc__ = f"Optuna {sampler_name.upper()}Sampler (defaults)"
    return method


def hyperopt_tpe(problem: Problem, budget: int, seed: int) -> list[float]:
    """hyperopt TPE (defaults: 20 random starts)."""
    hyperopt = _require("hyperopt", "hyperopt-tpe")
    space = {f"x{i}": hyperopt.hp.uniform(f"x{i}", lo, hi) for i, (lo, hi) in
             enumerate(problem.bounds)}
    trials = hyperopt.Trials()
    hyperopt.fmin(
        lambda p: problem([p[f"x{i}"] for i in range(problem.dim)]),
        space,
        algo=hyperopt.tpe.suggest,
        max_evals=budget,
        trials=trials,
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
    )
    return [float(v) for v in trials.losses()]


def skopt_gp(problem: Problem, budget: int, seed: int) -> list[float]:
    """scikit-optimize ``gp_minimize`` (defaults: 10 initial points, gp_hedge)."""
    skopt = _require("skopt", "skopt-gp")
    result = skopt.gp_minimize(
        lambda x: problem(x),
        problem.bounds,
        n_calls=budget,
        n_initial_points=min(10, budget),
        random_state=seed,
    )
    return [float(v) for v in result.func_vals]


def botorch_loop(problem: Problem, budget: int, seed: int) -> list[float]:
    """A plain BoTorch loop: SingleTaskGP (default priors) + Standardize + qLogEI, q=1.

    ``min(2 d + 1, 10)`` scrambled-Sobol starts, then ``optimize_acqf`` with
    ``num_restarts=10, raw_samples=512``; inputs scaled to the unit cube.
    """
    import torch
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood

    tkwargs: dict[str, Any] = {"dtype": torch.float64}
    d = problem.dim
    low = torch.tensor([b[0] for b in problem.bounds], **tkwargs)
    high = torch.tensor([b[1] for b in problem.bounds], **tkwargs)

    def evaluate(u: torch.Tensor) -> float:
        return problem((low + u * (high - low)).tolist())

    n_init = min(2 * d + 1, 10, budget)
    X = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(n_init).to(**tkwargs)
    values = [evaluate(x) for x in X]
    unit = torch.stack([torch.zeros(d, **tkwargs), torch.ones(d, **tkwargs)])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        while len(values) < budget:
            Y = -torch.tensor(values, **tkwargs).unsqueeze(-1)
            model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optimizer notices; the loop goes on
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
                acqf = qLogExpectedImprovement(model, best_f=Y.max())
                fast = FAST_ACQUISITION if os.environ.get(FAST_ENV) else None
                candidate, _ = optimize_acqf(  # botorch's defaults otherwise (maxiter 2000)
                    acqf, bounds=unit, q=1,
                    num_restarts=fast["num_restarts"] if fast else 10,
                    raw_samples=fast["raw_samples"] if fast else 512,
                    options={"maxiter": fast["maxiter"]} if fast else None,
                )
            x = candidate.detach()[0]
            X = torch.cat([X, x.unsqueeze(0)])
            values.append(evaluate(x))
    return values


METHODS: dict[str, Method] = {
    "gpbo-bayes-q1": gpbo_bayes(1),
    "gpbo-bayes-q4": gpbo_bayes(4),
    "gpbo-random": gpbo_random,
    "bayes_opt": bayes_opt_method,
    "optuna-tpe": _optuna_method("tpe"),
    "optuna-gp": _optuna_method("gp"),
    "hyperopt-tpe": hyperopt_tpe,
    "skopt-gp": skopt_gp,
    "botorch-qlogei": botorch_loop,
}
#: Python modules each peer needs (checked before its runs are scheduled).
REQUIRES: dict[str, tuple[str, ...]] = {
    "bayes_opt": ("bayes_opt",),
    "optuna-tpe": ("optuna",),
    "optuna-gp": ("optuna", "scipy"),
    "hyperopt-tpe": ("hyperopt",),
    "skopt-gp": ("skopt",),
}

# -- one run ----------------------------------------------------------------------------------


def regret(best: float, optimum: float) -> float:
    """``best - optimum`` clipped below at :data:`REGRET_FLOOR`."""
    return max(best - optimum, REGRET_FLOOR)


def incumbent_values(values: Sequence[float], clean: Sequence[float] | None) -> list[float]:
    """After each evaluation, the true value of the point with the best value observed so far.

    Without noise (``clean`` is ``None``) that is the running minimum of ``values``.
    """
    if clean is None:
        return [float(v) for v in np.minimum.accumulate(np.asarray(values, dtype=np.float64))]
    if len(clean) != len(values):
        raise RuntimeError(f"{len(values)} values but {len(clean)} noise-free values recorded")
    out, best = [], 0
    for i, value in enumerate(values):
        if value < values[best]:
            best = i
        out.append(float(clean[best]))
    return out


def run_one(
    problem_name: str, method_name: str, seed: int, budget: int, plugin: str | None = None
) -> dict[str, Any]:
    """One run: the trace, the regret at the budget and the time taken (a JSON-ready dict).

    Raises:
        MethodUnavailableError: The method's package is missing.
    """
    methods = available_methods(plugin)
    problem = PROBLEMS[problem_name]
    logging.getLogger("gpbo").setLevel(logging.ERROR)
    clean_values = problem.start_run(seed)
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = methods[method_name](problem, budget, seed)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if len(values) != budget:
        raise RuntimeError(
            f"{method_name} on {problem_name} (seed {seed}) returned {len(values)} values for a "
            f"budget of {budget}"
        )
    incumbents = incumbent_values(values, clean_values if problem.noise_sd else None)
    best = incumbents[-1]
    warning_kinds = sorted({f"{w.category.__name__}: {str(w.message)[:120]}" for w in caught})
    return {
        "problem": problem_name,
        "method": method_name,
        "seed": seed,
        "budget": budget,
        "values": [float(v) for v in values],
        **({"incumbent_values": incumbents} if problem.noise_sd else {}),
        "best": best,
        "optimum": problem.optimum,
        "log10_regret": math.log10(regret(best, problem.optimum)),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "warnings": warning_kinds[:10],
        "fast": bool(os.environ.get(FAST_ENV)),
        "threads": torch_threads(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def torch_threads() -> int | None:
    """The thread count torch runs with here (``None`` if torch is not imported)."""
    torch = sys.modules.get("torch")
    return None if torch is None else int(torch.get_num_threads())


def available_methods(plugin: str | None = None) -> dict[str, Method]:
    """:data:`METHODS` plus the ``METHODS`` dict of a plugin file (experiments)."""
    if plugin is None:
        return METHODS
    cached = _PLUGINS.get(plugin)
    if cached is None:
        if not Path(plugin).is_file():
            raise SystemExit(f"--plugin {plugin!r}: no such file")
        spec = importlib.util.spec_from_file_location(f"_bench_plugin_{len(_PLUGINS)}", plugin)
        if spec is None or spec.loader is None:
            raise SystemExit(f"--plugin {plugin!r}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            traceback.print_exc()
            raise SystemExit(
                f"--plugin {plugin!r} failed to load ({type(exc).__name__}: {exc}); see the "
                "traceback above"
            ) from None
        methods = getattr(module, "METHODS", None)
        if not isinstance(methods, dict):
            raise SystemExit(
                f"--plugin {plugin!r} defines no METHODS dict (method name -> "
                "callable(problem, budget, seed) returning the values)"
            )
        cached = _PLUGINS[plugin] = {**METHODS, **methods}
    return cached


_PLUGINS: dict[str, dict[str, Method]] = {}


def missing_module(method: str) -> str | None:
    """The first module ``method`` needs that cannot be imported, else ``None``."""
    for module in REQUIRES.get(method, ()):
        try:
            __import__(module)
        except Exception as exc:  # an installed package that fails on import is unusable too
            return f"{module} ({type(exc).__name__}: {exc})"
    return None


# -- results file -----------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    """Machine and package versions, for the record."""
    from importlib import metadata

    versions = {}
    for dist in ("gpbo", "torch", "botorch", "gpytorch", "numpy", "scipy", "scikit-learn",
                 "bayesian-optimization", "optuna", "greenlet", "hyperopt", "scikit-optimize"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        # the GP fits' float sums depend on the kernels torch picks for the CPU, and a run's
        # trace on them: gpbo's stored traces were not reproduced on a later machine
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpbo_commit": gpbo_commit(),
        "nproc": os.cpu_count(),
        "threads_env": {k: os.environ.get(k) for k in THREAD_ENV},
        "versions": versions,
    }


def gpbo_commit() -> str | None:
    """The commit of the gpbo checkout these runs used (``+dirty`` with changes to the
    package not committed), or ``None`` outside a git checkout."""
    import subprocess

    import gpbo

    root = Path(gpbo.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=30, check=True)
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "gpbo"],
                                 capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if changed.stdout.strip() else "")


def load_results(path: Path) -> dict[str, Any]:
    """The results file, or an empty one."""
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("schema") != SCHEMA:
            raise SystemExit(f"{path}: not a {SCHEMA} file; use another --out")
        return data
    return {"schema": SCHEMA, "environment": {}, "runs": [], "unavailable": {}}


def save_results(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (a crash mid-write leaves the previous file)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def run_key(run: dict[str, Any]) -> tuple[str, str, int, int]:
    return (run["problem"], run["method"], int(run["seed"]), int(run["budget"]))


# -- summaries --------------------------------------------------------------------------------


def summarize(runs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """Per (problem, method): median and quartiles of log10 regret, median wall time, seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["problem"], run["method"]), []).append(run)
    out = {}
    for key, group in groups.items():
        r = np.array([g["log10_regret"] for g in group])
        out[key] = {
            "median": float(np.median(r)),
            "q25": float(np.percentile(r, 25)),
            "q75": float(np.percentile(r, 75)),
            "n": len(group),
            "wall_s": float(np.median([g["wall_s"] for g in group])),
            "cpu_s": float(np.median([g.get("cpu_s", float("nan")) for g in group])),
            "budget": int(group[0]["budget"]),
        }
    return out


#: The issue's target for batching: gpbo q=4's median log10 regret within this of q=1's.
BATCH_GAP_TARGET = 0.3
#: (batched method, one-at-a-time method) pairs reported side by side when both were run.
PAIRED_COMPARISONS = (("gpbo-bayes-q4", "gpbo-bayes-q1"),)


def paired_gap(
    runs: list[dict[str, Any]],
    problem: str,
    method: str,
    baseline: str,
    *,
    resamples: int = 4000,
    seed: int = 0,
) -> dict[str, float] | None:
    """``method`` against ``baseline`` on the seeds both ran on one problem.

    A 10- or 30-seed median of a bimodal or heavy-tailed regret moves by tenths of a decade
    from one draw of seeds to the next, so the difference of the two medians comes with a
    bootstrap interval (the seeds resampled in pairs, as both methods ran on them), and beside
    it the paired view: on how many seeds ``method`` ended better or worse, and the median of
    the per-seed differences.

    Returns:
        ``None`` without a common seed; otherwise ``n`` (common seeds), ``gap`` (median of
        ``method`` minus median of ``baseline``; positive = ``method`` worse), ``ci_low`` and
        ``ci_high`` (95% percentile bootstrap interval of ``gap``), ``better`` and ``worse``
        (seeds where ``method`` ended lower / higher) and ``paired_median`` (median per-seed
        difference).
    """
    by_seed: dict[str, dict[int, float]] = {method: {}, baseline: {}}
    for run in runs:
        if run["problem"] == problem and run["method"] in by_seed:
            by_seed[run["method"]][int(run["seed"])] = float(run["log10_regret"])
    seeds = sorted(set(by_seed[method]) & set(by_seed[baseline]))
    if not seeds:
        return None
    a = np.array([by_seed[method][s] for s in seeds])
    b = np.array([by_seed[baseline][s] for s in seeds])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(seeds), size=(resamples, len(seeds)))
    boot = np.median(a[idx], axis=1) - np.median(b[idx], axis=1)
    return {
        "n": len(seeds),
        "gap": float(np.median(a) - np.median(b)),
        "ci_low": float(np.percentile(boot, 2.5)),
        "ci_high": float(np.percentile(boot, 97.5)),
        "better": int(np.sum(a < b)),
        "worse": int(np.sum(a > b)),
        "paired_median": float(np.median(a - b)),
    }


def paired_table(runs: list[dict[str, Any]], problems: Sequence[str]) -> list[str]:
    """Markdown lines comparing each pair of :data:`PAIRED_COMPARISONS` that was run."""
    lines: list[str] = []
    for method, baseline in PAIRED_COMPARISONS:
        rows = []
        for p in problems:
            g = paired_gap(runs, p, method, baseline)
            if g is None:
                continue
            label = PROBLEMS[p].label if p in PROBLEMS else p
            within = g["gap"] <= BATCH_GAP_TARGET
            decided = g["ci_high"] <= BATCH_GAP_TARGET if within else g["ci_low"] > BATCH_GAP_TARGET
            note = " (whole interval)" if decided else ""
            if g["n"] < 2:  # a bootstrap of one seed has no spread to judge by
                note = " (1 seed: no interval)"
            verdict = ("yes" if within else "no") + note
            rows.append(
                f"| {label} | {g['n']} | {g['gap']:+.2f} [{g['ci_low']:+.2f}, {g['ci_high']:+.2f}]"
                f" | {g['better']} / {g['worse']} | {g['paired_median']:+.2f} | {verdict} |"
            )
        if rows:
            lines += [
                "",
                f"`{method}` against `{baseline}` on the seeds both ran: the gap of the medians "
                "(positive = worse) with a 95% bootstrap interval (seeds resampled in pairs), the "
                "seeds where it ended better / worse, the median per-seed difference, and whether "
                f"the gap of the medians is within {BATCH_GAP_TARGET} (\"whole interval\": the "
                "interval is on the same side of it as the gap).",
                "",
                "| problem | seeds | gap of medians [95% CI] | better / worse | median paired "
                f"difference | within {BATCH_GAP_TARGET} |",
                "| --- | ---: | --- | --- | ---: | --- |",
                *rows,
            ]
    return lines


def _ordered(names: set[str], order: Sequence[str]) -> list[str]:
    return [n for n in order if n in names] + sorted(names - set(order))


def markdown_table(data: dict[str, Any]) -> str:
    """The results as markdown: regret table, wall-time table, notes."""
    runs = data["runs"]
    stats = summarize(runs)
    problems = _ordered({p for p, _ in stats}, list(PROBLEMS))
    methods = _ordered({m for _, m in stats}, list(METHODS))
    lines = [
        "log10(best found - optimum) at the budget (regret clipped at 1e-12): median "
        "[25th, 75th percentile] over seeds; lower is better, best median per problem in bold. "
        "`n` = seeds.",
        "",
        "| problem (budget) | " + " | ".join(methods) + " |",
        "| --- | " + " | ".join("---" for _ in methods) + " |",
    ]
    for p in problems:
        row = [s for (pp, _), s in stats.items() if pp == p]
        best = min(s["median"] for s in row)
        label = PROBLEMS[p].label if p in PROBLEMS else p
        budgets = sorted({s["budget"] for s in row})
        cells = []
        for m in methods:
            s = stats.get((p, m))
            if s is None:
                cells.append("—")
                continue
            text = f"{s['median']:.2f} [{s['q25']:.2f}, {s['q75']:.2f}] n={s['n']}"
            cells.append(f"**{text}**" if s["median"] == best else text)
        lines.append(f"| {label} ({'/'.join(map(str, budgets))}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Median wall time per run, seconds (CPU seconds in parentheses).",
        "",
        "| problem | " + " | ".join(methods) + " |",
        "| --- | " + " | ".join("---" for _ in methods) + " |",
    ]
    for p in problems:
        label = PROBLEMS[p].label if p in PROBLEMS else p
        cells = []
        for m in methods:
            s = stats.get((p, m))
            cells.append("—" if s is None else f"{s['wall_s']:.1f} ({s['cpu_s']:.1f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += paired_table(runs, problems)
    if data.get("unavailable"):
        lines += ["", "Unavailable methods:", ""]
        lines += [f"- `{m}`: {why}" for m, why in sorted(data["unavailable"].items())]
    if data.get("failed_runs"):
        lines += ["", "Failed runs (not in the tables; `--resume` runs them again):", ""]
        lines += [f"- {f['problem']} `{f['method']}` seed {f['seed']}: {f['error']}"
                  for f in data["failed_runs"]]
    return "\n".join(lines) + "\n"


def convergence_plots(data: dict[str, Any], out: Path) -> list[Path]:
    """One PNG per problem: median (and IQR band) of log10 best-so-far regret per evaluation."""
    try:
        import matplotlib
    except ImportError:
        print(f"matplotlib is not installed: no plots ({BENCH_INSTALL_HINT})")
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    by_problem: dict[str, dict[str, list[np.ndarray]]] = {}
    for run in data["runs"]:
        curve = np.asarray(run.get("incumbent_values") or incumbent_values(run["values"], None))
        log_regret = np.log10(np.maximum(curve - run["optimum"], REGRET_FLOOR))
        by_problem.setdefault(run["problem"], {}).setdefault(run["method"], []).append(log_regret)
    for problem, methods in by_problem.items():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for method in _ordered(set(methods), list(METHODS)):
            curves = methods[method]
            length = min(len(c) for c in curves)
            stack = np.stack([c[:length] for c in curves])
            x = np.arange(1, length + 1)
            median = np.median(stack, axis=0)
            style = "-" if method.startswith("gpbo") else "--"
            (line,) = ax.plot(x, median, style, label=f"{method} (n={len(curves)})")
            if len(curves) > 2:
                ax.fill_between(x, np.percentile(stack, 25, axis=0),
                                np.percentile(stack, 75, axis=0), color=line.get_color(),
                                alpha=0.12)
        label = PROBLEMS[problem].label if problem in PROBLEMS else problem
        ax.set_title(f"{label}: median best-so-far regret (IQR shaded)")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("log10(best - optimum)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out / f"convergence_{problem}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write_reports(data: dict[str, Any], out: Path) -> None:
    """The markdown table and the plots, from the results so far."""
    (out / "results.md").write_text(markdown_table(data))
    convergence_plots(data, out)


def _write_reports(data: dict[str, Any], out: Path, *, plots: bool) -> None:
    if plots:
        write_reports(data, out)
    else:
        (out / "results.md").write_text(markdown_table(data))


# -- driver -----------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default=",".join(DEFAULT_PROBLEMS),
                        help=f"comma-separated, from {', '.join(PROBLEMS)} (default: "
                        f"{', '.join(DEFAULT_PROBLEMS)})")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, from {', '.join(METHODS)} (default all)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--budget", type=int, default=None,
                        help="evaluations per run for every problem (default: each problem's)")
    parser.add_argument("--out", default="benchmarks/results/quality",
                        help="output directory (results.json, results.md, convergence_*.png)")
    parser.add_argument("--resume", action="store_true",
                        help="keep results.json and skip the runs already in it")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once, each in its own process (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch/BLAS threads per run (default: the libraries' own)")
    parser.add_argument("--plugin", default=None,
                        help="a Python file whose METHODS dict adds methods (experiments)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite results.md and the plots from results.json; run nothing")
    parser.add_argument("--no-plots", action="store_true", help="skip the convergence plots")
    parser.add_argument("--fast", action="store_true",
                        help="tiny acquisition budget for gpbo and the BoTorch loop (smoke tests "
                        "only; the numbers mean nothing)")
    args = parser.parse_args(argv)
    for option, value, least in (("--seeds", args.seeds, 1), ("--first-seed", args.first_seed, 0),
                                 ("--budget", args.budget, 1), ("--jobs", args.jobs, 1),
                                 ("--threads", args.threads, 1)):
        if value is not None and value < least:
            parser.error(f"{option} must be at least {least}, got {value}")
    return args


def _reexec_with_threads(threads: int | None) -> None:
    """Restart this script with the thread-pool variables set (they are read at import)."""
    if threads is None or os.environ.get(_THREADS_MARK) == str(threads):
        return
    env = dict(os.environ, **{k: str(threads) for k in THREAD_ENV}, **{_THREADS_MARK: str(threads)})
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]], env)


def _init_worker(threads: int | None, parent: int | None = None) -> None:
    """Limit torch's threads and import the heavy modules, so no run's time includes them.

    With ``parent``, the worker also exits when that process is gone: a pool's workers outlive
    a driver killed by a signal and would finish their runs for nobody.
    """
    if parent is not None:
        import threading

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    import botorch.models
    import botorch.optim  # noqa: F401

    import gpbo.strategies  # noqa: F401


def _plan(args: argparse.Namespace, data: dict[str, Any]) -> Iterator[tuple[str, str, int, int]]:
    done = {run_key(r) for r in data["runs"]}
    methods = available_methods(args.plugin)
    for p in _split(args.problems):
        if p not in PROBLEMS:
            raise SystemExit(f"unknown problem {p!r}; use {', '.join(PROBLEMS)}")
    for m in _split(args.methods):
        if m not in methods:
            raise SystemExit(f"unknown method {m!r}; use {', '.join(methods)}")
    # seeds outermost: an interrupted run still has every method on the first seeds
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for p in _split(args.problems):
            budget = _budget(args, p)
            for m in _split(args.methods):
                if (p, m, seed, budget) not in done:
                    yield p, m, seed, budget


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if argv is None:
        _reexec_with_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    if path.exists() and not (args.resume or args.report_only):
        raise SystemExit(f"{path} exists: pass --resume to extend it, or use another --out")
    if args.report_only and not path.exists():
        raise SystemExit(f"--report-only: no results at {path}; run the benchmark first")
    data = load_results(path)
    if args.report_only:
        _write_reports(data, out, plots=not args.no_plots)
        print(markdown_table(data))
        return 0
    if args.fast:
        os.environ[FAST_ENV] = "1"  # read by the adapters, here and in worker processes
    here = {**environment(), "threads": args.threads, "fast": bool(args.fast), "jobs": args.jobs}
    if data["runs"]:
        _check_resume(data, args)
        # the file's first environment stays (a merged file's sources with it); this one is added
        data.setdefault("later_environments", []).append(here)
    else:
        data["environment"] = here
    plan = list(_plan(args, data))
    dropped: list[str] = []
    for method in sorted({m for _, m, _, _ in plan}):
        why = missing_module(method)
        if why is not None:
            dropped.append(method)
            print(f"skipping {method}: cannot import {why}; {BENCH_INSTALL_HINT}", flush=True)
            data["unavailable"][method] = f"cannot import {why}"
            plan = [t for t in plan if t[1] != method]
        else:
            data["unavailable"].pop(method, None)
    if not plan and dropped:
        # a method named on the command line that cannot run is not a finished benchmark
        print(f"nothing to run: {', '.join(dropped)} cannot run here (see above)", flush=True)
        save_results(path, data)
        return 1
    print(f"{len(plan)} runs to do -> {path}", flush=True)
    save_results(path, data)
    if plan and args.jobs <= 1:
        _init_worker(args.threads)
    started = time.perf_counter()

    def forget_failure(key: tuple[str, str, int, int]) -> None:
        data["failed_runs"] = [f for f in data.get("failed_runs", []) if run_key(f) != key]

    def record(result: dict[str, Any]) -> None:
        data["runs"].append(result)
        forget_failure(run_key(result))
        save_results(path, data)
        print(f"[{time.perf_counter() - started:7.0f}s] {result['problem']:>17} "
              f"{result['method']:>14} seed {result['seed']:>2}: log10 regret "
              f"{result['log10_regret']:7.2f}  ({result['wall_s']:.1f} s)", flush=True)

    def unavailable(method: str, exc: BaseException) -> None:
        print(f"skipping {method}: {exc}", flush=True)
        data["unavailable"][method] = str(exc)
        save_results(path, data)

    failures = 0

    def failed(task: tuple[str, str, int, int], exc: BaseException) -> None:
        # one run's error (a peer's bug, a plugin's) must not stop the seeds after it
        nonlocal failures
        failures += 1
        p, m, seed, budget = task
        detail = "".join(traceback.format_exception(exc)).strip()
        print(f"run failed: {p} {m} seed {seed}: {type(exc).__name__}: {exc}\n{detail}",
              flush=True)
        forget_failure(task)
        data["failed_runs"].append({"problem": p, "method": m, "seed": seed, "budget": budget,
                                    "error": f"{type(exc).__name__}: {exc}"})
        save_results(path, data)

    skipped: set[str] = set()

    try:
        if args.jobs <= 1:
            for p, m, seed, budget in plan:
                if m in skipped:
                    continue
                try:
                    record(run_one(p, m, seed, budget, args.plugin))
                except MethodUnavailableError as exc:
                    skipped.add(m)
                    unavailable(m, exc)
                except Exception as exc:
                    failed((p, m, seed, budget), exc)
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(args.jobs, mp_context=ctx, initializer=_init_worker,
                                     initargs=(args.threads, os.getpid())) as pool:
                pending: dict[Future[dict[str, Any]], tuple[str, str, int, int]] = {}
                todo = list(plan)
                try:
                    while todo or pending:
                        while todo and len(pending) < args.jobs:
                            task = todo.pop(0)
                            if task[1] not in skipped:
                                pending[pool.submit(run_one, *task, args.plugin)] = task
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            task = pending.pop(future)
                            try:
                                record(future.result())
                            except MethodUnavailableError as exc:
                                if task[1] not in skipped:
                                    skipped.add(task[1])
                                    unavailable(task[1], exc)
                            except Exception as exc:
                                failed(task, exc)
                except KeyboardInterrupt:
                    # leaving the pool waits for the running runs, minutes for nobody where
                    # only this process got the signal (kill -INT): end them
                    for process in list(getattr(pool, "_processes", {}).values()):
                        process.terminate()
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    except KeyboardInterrupt:
        # each finished run is in results.json already; the table shows them
        with contextlib.suppress(Exception):
            _write_reports(data, out, plots=False)
        planned = set(plan)
        kept = sum(run_key(r) in planned for r in data["runs"])
        print(f"\ninterrupted: {kept} of {len(plan)} runs done, kept in {path} (table in "
              f"{out / 'results.md'}); run the same command with --resume for the rest",
              flush=True)
        return 130
    _write_reports(data, out, plots=not args.no_plots)
    print(markdown_table(data), flush=True)
    if failures:
        print(f"{failures} run(s) failed (listed in {out / 'results.md'}); --resume runs them "
              "again", flush=True)
        return 1
    return 0


def _budget(args: argparse.Namespace, problem: str) -> int:
    """Evaluations per run of ``problem``: ``--budget``, else the problem's own."""
    return args.budget if args.budget is not None else PROBLEMS[problem].budget


def _check_resume(data: dict[str, Any], args: argparse.Namespace) -> None:
    """Refuse a resume whose runs would not belong in one table with the file's."""
    fast_before = data.get("environment", {}).get("fast", False)
    fast = {bool(r.get("fast", fast_before)) for r in data["runs"]}
    if fast != {bool(args.fast)}:
        had = "--fast" if True in fast else "full"
        raise SystemExit(
            f"{args.out}: its runs are {had} runs and this one is "
            f"{'--fast' if args.fast else 'full'}; one table cannot mix them: use another --out"
        )
    budgets: dict[str, set[int]] = {}
    for r in data["runs"]:
        budgets.setdefault(r["problem"], set()).add(int(r["budget"]))
    for p in _split(args.problems):
        if p not in PROBLEMS:
            continue  # _plan names it
        budget = _budget(args, p)
        if p in budgets and budgets[p] != {budget}:
            raise SystemExit(
                f"{args.out}: its {p} runs have a budget of "
                f"{'/'.join(map(str, sorted(budgets[p])))} and this one asks for {budget}; "
                "one table cannot mix budgets: use another --out (or the same --budget)"
            )


if __name__ == "__main__":
    raise SystemExit(main())
