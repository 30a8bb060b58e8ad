"""Overhead of one suggestion: gpbo's round (GP fit + acquisition) against its peers, by n.

For each number of observations ``n`` (Hartmann6 values at uniform random points, d=6) it
times:

- ``gpbo-q1``, ``gpbo-q8`` (``--qs``): one round of gpbo's default ``bayes`` strategy
  (``Bayes.propose``: fit the GP, optimize qLogEI jointly over ``q`` points), on the CPU and,
  with ``--device cuda`` or ``both``, on CUDA. Time per suggested point = round time / q. The
  fit alone (``fit_gp`` on the warped scores) is timed too.
- With ``--failed-fraction F``, a fraction ``F`` of gpbo's ``n`` trials failed: those whose
  first coordinate is largest (a region where training crashes, as a too-large learning rate
  would make it), so the round fits the objective's GP to the others and the success GP
  (``Bayes(failed="feasibility")``, the default) to all ``n``. Peers are not run then.
- ``bayes_opt``: ``BayesianOptimization.suggest()`` after registering the ``n`` points.
- ``optuna-gp``: ``study.ask()`` of an Optuna study with ``GPSampler``, pre-filled with
  ``n - 1`` trials by ``add_trials``, after one untimed ask/tell that warms the sampler's
  kernel cache as a running study would have it (that first, cold ask is recorded as
  ``optuna-gp-cold``).

Every method runs with the same number of threads: each ``--threads`` value runs in its own
child process with ``OMP/MKL/OPENBLAS_NUM_THREADS`` set before anything is imported, and
``torch.set_num_threads``. Each measurement is repeated (``--repeats``) and the median kept;
wall and CPU seconds are both recorded (with one thread, CPU time is robust to other load on
the machine). Results go to ``results.json`` (written after every measurement; ``--resume``
skips those done) and ``results.md``.

Usage:
    python scripts/benchmark_overhead.py --threads 1 --ns 50,200,500,1000 \\
        --out benchmarks/results/overhead
    python scripts/benchmark_overhead.py --device both --ns 50,200,500,1000,2000,5000,10000
    python scripts/benchmark_overhead.py --ns 20 --qs 2 --repeats 1 --out /tmp/overhead-smoke
    python scripts/benchmark_overhead.py --methods gpbo --threads 1 --failed-fraction 0.2 \\
        --out benchmarks/results/overhead_failed20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DIM = 6
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
SCHEMA = "gpbo-benchmark-overhead/1"
PEERS = ("bayes_opt", "optuna-gp")
#: How to install the peers: gpbo is installed from its checkout, not from PyPI.
BENCH_INSTALL_HINT = 'install the peers from the gpbo checkout: pip install -e ".[bench]"'
#: Set (by ``--fast``) to shrink gpbo's acquisition budget: smoke tests only.
FAST_ENV = "GPBO_BENCH_FAST"
FAST_ACQUISITION = {"num_restarts": 2, "raw_samples": 32, "maxiter": 20}


# -- data -------------------------------------------------------------------------------------


def hartmann_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform random points of the unit 6-cube and their Hartmann6 values (minimize).

    Returns:
        ``X`` (`n x 6`) and ``y`` (`n`).
    """
    import torch
    from botorch.test_functions import Hartmann

    X = np.random.default_rng(seed).random((n, DIM))
    with torch.no_grad():
        y = Hartmann(dim=DIM)(torch.as_tensor(X, dtype=torch.float64)).numpy()
    return X, np.asarray(y, dtype=np.float64)


def _hartmann_one(params: dict[str, float]) -> float:
    import torch
    from botorch.test_functions import Hartmann

    X = torch.tensor([[params[f"x{i}"] for i in range(DIM)]], dtype=torch.float64)
    with torch.no_grad():
        return float(Hartmann(dim=DIM)(X).item())


# -- timers -----------------------------------------------------------------------------------


class Timer:
    """Wall and CPU seconds of a block; synchronizes CUDA around it when asked."""

    def __init__(self, cuda: bool = False) -> None:
        self.cuda = cuda
        self.wall = self.cpu = float("nan")

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def __enter__(self) -> Timer:
        self._sync()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def failed_mask(X: np.ndarray, failed_fraction: float) -> np.ndarray:
    """Which of the `n x d` points ``X`` failed: the ``round(failed_fraction * n)`` with the
    largest first coordinate, a failing region rather than scattered crashes.

    Returns:
        A boolean array of `n`.
    """
    n_failed = round(failed_fraction * X.shape[0])
    mask = np.zeros(X.shape[0], dtype=bool)
    if n_failed:
        mask[np.argsort(X[:, 0], kind="stable")[-n_failed:]] = True
    return mask


def gpbo_history(
    X: np.ndarray, y: np.ndarray, *, device: str, seed: int, failed_fraction: float = 0.0
) -> Any:
    """A ``gpbo.strategies.History`` of ``n`` trials in the unit cube (`n x d` ``X``, values
    ``y`` minimized), the fraction ``failed_fraction`` of them failed (:func:`failed_mask`),
    nothing pending, the GP on ``device``."""
    import gpbo
    from gpbo.strategies import History

    space = gpbo.Space({f"x{i}": gpbo.Real(0.0, 1.0) for i in range(X.shape[1])})
    failed = failed_mask(X, failed_fraction)
    return History(space=space, X=X[~failed], scores=-y[~failed], X_failed=X[failed],
                   X_pending=np.zeros((0, X.shape[1])), n_total=X.shape[0], seed=seed,
                   surrogate_device=device)


def time_gpbo(
    X: np.ndarray, y: np.ndarray, *, q: int, device: str, seed: int, failed_fraction: float = 0.0
) -> dict[str, float]:
    """One gpbo round (``Bayes().propose``) on ``n`` trials, plus the objective's fit alone.

    Args:
        X: An `n x d` array of unit-cube points.
        y: Their `n` values (minimized; the strategy sees ``-y``).
        q: Points to propose jointly.
        device: ``"cpu"`` or ``"cuda"``.
        seed: The study seed.
        failed_fraction: The fraction of the ``n`` trials that failed (:func:`failed_mask`).

    Returns:
        ``round_wall``, ``round_cpu``, ``fit_wall``, ``fit_cpu`` in seconds.
    """
    import torch

    from gpbo.strategies import Bayes
    from gpbo.surrogate import fit_gp, warp_scores

    history = gpbo_history(X, y, device=device, seed=seed, failed_fraction=failed_fraction)
    ok = ~failed_mask(X, failed_fraction)
    cuda = device.startswith("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Timer(cuda) as round_timer:
            strategy = Bayes(**FAST_ACQUISITION) if os.environ.get(FAST_ENV) else Bayes()
            proposals = strategy.propose(history, q)
        tkwargs: dict[str, Any] = {"dtype": torch.float64, "device": torch.device(device)}
        with Timer(cuda) as fit_timer:
            fit_gp(torch.as_tensor(X[ok], **tkwargs),
                   torch.as_tensor(warp_scores(-y[ok]), **tkwargs))
    if len(proposals) != q:
        raise RuntimeError(f"gpbo proposed {len(proposals)} points, asked for {q}")
    return {"round_wall": round_timer.wall, "round_cpu": round_timer.cpu,
            "fit_wall": fit_timer.wall, "fit_cpu": fit_timer.cpu}


def time_bayes_opt(X: np.ndarray, y: np.ndarray, *, seed: int) -> dict[str, float]:
    """``suggest()`` of bayes_opt (defaults: UCB) after registering the ``n`` points."""
    from bayes_opt import BayesianOptimization

    names = [f"x{i}" for i in range(X.shape[1])]
    optimizer = BayesianOptimization(f=None, pbounds={k: (0.0, 1.0) for k in names},
                                     random_state=seed, verbose=0, allow_duplicate_points=True)
    for row, value in zip(X, y, strict=True):
        optimizer.register(params=dict(zip(names, row.tolist(), strict=True)), target=-value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Timer() as timer:
            optimizer.suggest()
    return {"wall": timer.wall, "cpu": timer.cpu}


def time_optuna_gp(X: np.ndarray, y: np.ndarray, *, seed: int) -> dict[str, float]:
    """``ask()`` of an Optuna ``GPSampler`` study holding ``n`` trials, warm and cold.

    The study gets the first ``n - 1`` points by ``add_trials``; one ask/tell (timed as the
    cold ask: the sampler has no kernel cache yet) brings it to ``n`` trials, and the next ask
    is the warm time.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [f"x{i}" for i in range(X.shape[1])]
    dists = {k: optuna.distributions.FloatDistribution(0.0, 1.0) for k in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(direction="minimize",
                                    sampler=optuna.samplers.GPSampler(seed=seed))
        study.add_trials([
            optuna.trial.create_trial(params=dict(zip(names, row.tolist(), strict=True)),
                                      distributions=dists, value=float(value))
            for row, value in zip(X[:-1], y[:-1], strict=True)
        ])
        with Timer() as cold:
            trial = study.ask(dists)
        study.tell(trial, _hartmann_one(trial.params))
        with Timer() as warm:
            study.ask(dists)
    return {"wall": warm.wall, "cpu": warm.cpu, "cold_wall": cold.wall, "cold_cpu": cold.cpu}


# -- measurements -----------------------------------------------------------------------------


def measure(
    method: str, n: int, *, q: int, device: str, repeats: int, seed: int,
    failed_fraction: float = 0.0,
) -> dict[str, Any]:
    """Median over ``repeats`` of one method's time per suggested point at ``n`` observations.

    Args:
        method: ``"gpbo"``, ``"bayes_opt"`` or ``"optuna-gp"``.
        n: Observations.
        q: Batch size (gpbo; peers suggest one point).
        device: ``"cpu"`` or ``"cuda"`` (gpbo only).
        repeats: Measurements; the median is kept (all are recorded).
        seed: Seed of the data and of the method.
        failed_fraction: The fraction of the ``n`` trials that failed (gpbo only).

    Returns:
        A JSON-ready record.
    """
    X, y = hartmann_data(n, seed)
    samples: list[dict[str, float]] = []
    for r in range(repeats):
        if method == "gpbo":
            s = time_gpbo(X, y, q=q, device=device, seed=seed + r,
                          failed_fraction=failed_fraction)
            samples.append({"wall": s["round_wall"], "cpu": s["round_cpu"],
                            "fit_wall": s["fit_wall"], "fit_cpu": s["fit_cpu"]})
        elif method == "bayes_opt":
            samples.append(time_bayes_opt(X, y, seed=seed + r))
        elif method == "optuna-gp":
            samples.append(time_optuna_gp(X, y, seed=seed + r))
        else:
            raise ValueError(f"unknown method {method!r}")
    per = q if method == "gpbo" else 1
    record: dict[str, Any] = {
        "method": method if method != "gpbo" else f"gpbo-q{q}",
        "n": n,
        "q": per,
        "device": device if method == "gpbo" else "cpu",
        "threads": _threads(),
        "repeats": repeats,
        "failed_fraction": failed_fraction,
        "samples": samples,
    }
    for key in samples[0]:
        record[f"median_{key}"] = statistics.median(s[key] for s in samples)
    record["per_point_wall"] = record["median_wall"] / per
    record["per_point_cpu"] = record["median_cpu"] / per
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return record


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def record_key(r: dict[str, Any]) -> tuple[str, int, str, int]:
    return (r["method"], int(r["n"]), r["device"], int(r["threads"]))


# -- files ------------------------------------------------------------------------------------


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("schema") != SCHEMA:
            raise SystemExit(f"{path}: not a {SCHEMA} file; use another --out")
        return data
    return {"schema": SCHEMA, "environment": {}, "records": [], "skipped": []}


def save_results(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def environment() -> dict[str, Any]:
    """Machine and versions."""
    from importlib import metadata

    import torch

    versions = {}
    for dist in ("gpbo", "torch", "botorch", "gpytorch", "numpy", "scipy", "scikit-learn",
                 "bayesian-optimization", "optuna", "greenlet"):
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
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "nproc": os.cpu_count(), "gpu": gpu, "versions": versions}


def markdown_table(data: dict[str, Any]) -> str:
    """Per threads and device: time per suggested point (seconds, median) by n."""
    records = data["records"]
    lines: list[str] = [
        "Seconds per suggested point (median of repeats; wall, CPU in parentheses). gpbo-qK: "
        "one round (GP fit + joint qLogEI over K points) / K; its full round time and the fit "
        "alone are in the second table. optuna-gp: warm ask (kernel cache from the previous "
        "ask). The last column is optuna-gp / gpbo-qK per point for the largest K, wall and "
        "CPU; with one thread and other load on the machine, the CPU ratio is the one to "
        "trust.",
        "",
    ]
    failed_fraction = data.get("environment", {}).get("failed_fraction", 0.0)
    if failed_fraction:
        lines += [f"{failed_fraction:.0%} of the n trials failed (those with the largest x0), so "
                  "a round fits the objective's GP to the rest (and, at the worst score, the "
                  "failed ones whose nearest trials failed too) and the success GP to all n; "
                  "the fit column is the objective's GP alone.", ""]
    reuse = data.get("environment", {}).get("pending_cache_devices")
    if reuse is not None and reuse != _pending_cache_devices():
        lines += [f"The pending points' posterior terms were reused on: "
                  f"{', '.join(reuse) or 'no device'} (`--pending-cache-devices`; gpbo's "
                  f"default: {', '.join(_pending_cache_devices())}).", ""]
    groups = sorted({(int(r["threads"]), r["device"]) for r in records if
                     r["method"].startswith("gpbo")})
    qs = sorted({int(r["q"]) for r in records if r["method"].startswith("gpbo")})
    for threads, device in groups:
        def find(method: str, n: int, dev: str, threads: int = threads) -> dict[str, Any] | None:
            for r in records:
                if (r["method"], int(r["n"]), r["device"], int(r["threads"])) == (
                    method, n, dev, threads
                ):
                    return r
            return None

        ns = sorted({int(r["n"]) for r in records if int(r["threads"]) == threads})
        cols = [f"gpbo-q{q} ({device})" for q in qs] + ["bayes_opt", "optuna-gp",
                                                         "optuna-gp cold"]
        ratio_q = max(qs) if qs else 8
        lines += [f"**{threads} thread(s), gpbo on {device}**", "",
                  "| n | " + " | ".join(cols) + f" | optuna-gp / gpbo-q{ratio_q} (wall, CPU) |",
                  "| ---: | " + " | ".join("---:" for _ in cols) + " | ---: |"]
        for n in ns:
            cells = []
            for q in qs:
                r = find(f"gpbo-q{q}", n, device)
                cells.append("—" if r is None else
                             f"{r['per_point_wall']:.3g} ({r['per_point_cpu']:.3g})")
            for peer in PEERS:
                r = find(peer, n, "cpu")
                cells.append("—" if r is None else
                             f"{r['per_point_wall']:.3g} ({r['per_point_cpu']:.3g})")
            r = find("optuna-gp", n, "cpu")
            cells.append("—" if r is None else
                         f"{r['median_cold_wall']:.3g} ({r['median_cold_cpu']:.3g})")
            g = find(f"gpbo-q{ratio_q}", n, device)
            ratio = (f"{r['per_point_wall'] / g['per_point_wall']:.2f}x, "
                     f"{r['per_point_cpu'] / g['per_point_cpu']:.2f}x"
                     if r is not None and g is not None else "—")
            lines.append(f"| {n} | " + " | ".join(cells) + f" | {ratio} |")
        lines += ["", f"gpbo round and fit alone, seconds (wall, CPU in parentheses), {threads} "
                  f"thread(s), {device}:", "",
                  "| n | " + " | ".join(f"q={q} round | q={q} fit" for q in qs) + " |",
                  "| ---: | " + " | ".join("---: | ---:" for _ in qs) + " |"]
        for n in ns:
            cells = []
            for q in qs:
                r = find(f"gpbo-q{q}", n, device)
                cells += (["—", "—"] if r is None else
                          [f"{r['median_wall']:.3g} ({r['median_cpu']:.3g})",
                           f"{r['median_fit_wall']:.3g} ({r['median_fit_cpu']:.3g})"])
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += device_ratio_lines(records)
    if data.get("skipped"):
        lines += ["Not measured:", ""] + [f"- {s}" for s in data["skipped"]] + [""]
    return "\n".join(lines)


def device_ratio_lines(records: list[dict[str, Any]]) -> list[str]:
    """CPU round time / CUDA round time by n, per thread count that has gpbo on both devices.

    Above 1 the GPU is faster; the first n from which every q's ratio stays above 1 is the
    crossover that ``gpbo.surrogate.AUTO_CUDA_FROM`` should follow.
    """
    rounds = {(int(r["threads"]), r["device"], int(r["q"]), int(r["n"])): r["median_wall"]
              for r in records if r["method"].startswith("gpbo")}
    lines: list[str] = []
    for threads in sorted({t for t, *_ in rounds}):
        qs = sorted({q for t, d, q, _ in rounds if t == threads and d == "cuda"})
        ns = sorted({n for t, d, q, n in rounds if t == threads and d == "cuda"
                     and any((t, "cpu", q, n) in rounds for q in qs)})
        if not ns:
            continue
        lines += [f"CPU / GPU round time, {threads} thread(s) (wall; above 1: the GPU is "
                  "faster):", "",
                  "| n | " + " | ".join(f"q={q} cpu | q={q} cuda | q={q} cpu/cuda" for q in qs)
                  + " |",
                  "| ---: | " + " | ".join("---: | ---: | ---:" for _ in qs) + " |"]
        faster_from = None
        for n in ns:
            cells = []
            pairs = [(rounds.get((threads, "cpu", q, n)), rounds.get((threads, "cuda", q, n)))
                     for q in qs]
            for cpu, gpu in pairs:
                cells += ["—" if cpu is None else f"{cpu:.3g}", "—" if gpu is None else
                          f"{gpu:.3g}", "—" if cpu is None or gpu is None else f"{cpu / gpu:.2f}"]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
            # only an n with every q on both devices decides the crossover
            if all(cpu is not None and gpu is not None for cpu, gpu in pairs):
                gpu_wins = all(cpu > gpu for cpu, gpu in pairs)
                faster_from = (faster_from or n) if gpu_wins else None
        lines += ["", ("The GPU is faster for every q from n = "
                       f"{faster_from} on (of the n with every q measured on both)."
                       if faster_from else "The GPU is not faster for every q at the largest n "
                       "with every q measured on both."), ""]
    return lines


# -- driver -----------------------------------------------------------------------------------


def _pending_cache_devices() -> list[str]:
    import gpbo.cached_gp

    return sorted(gpbo.cached_gp.PENDING_CACHE_DEVICES)


#: What ``--methods`` may name.
METHODS = ("gpbo", "bayes_opt", "optuna-gp")


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns", default=None,
                        help="numbers of observations (default 50,200,500,1000,2000; on CUDA "
                        "also 5000,10000)")
    parser.add_argument("--qs", default="1,8", help="gpbo batch sizes (default 1,8)")
    parser.add_argument("--threads", default="1,2",
                        help="thread counts, each in its own process (default 1,2)")
    parser.add_argument("--device", choices=("cpu", "cuda", "both"), default="cpu",
                        help="where gpbo's GP runs (peers always run on the CPU)")
    parser.add_argument("--methods", default="gpbo,bayes_opt,optuna-gp",
                        help="comma-separated from gpbo, bayes_opt, optuna-gp")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (median kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="after a method's measurement takes longer than this per repeat, "
                        "skip it at larger n (recorded as not measured)")
    parser.add_argument("--out", default="benchmarks/results/overhead")
    parser.add_argument("--resume", action="store_true",
                        help="keep results.json and skip measurements already in it")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite results.md from results.json")
    parser.add_argument("--fast", action="store_true",
                        help="tiny gpbo acquisition budget (smoke tests only; times mean nothing)")
    parser.add_argument("--pending-cache-devices", default=None,
                        help="comma-separated device types on which the pending points' "
                        "posterior terms are reused (default gpbo's, "
                        "gpbo.cached_gp.PENDING_CACHE_DEVICES: cpu,cuda); 'cpu' measures the "
                        "GPU without it, into its own --out")
    parser.add_argument("--failed-fraction", type=float, default=0.0,
                        help="the fraction of gpbo's n trials that failed, in [0, 1) (default "
                        "0): the round also fits the success GP; gpbo only, into its own --out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for option in ("ns", "qs", "threads"):
        text = getattr(args, option)
        if text is None:
            continue
        try:
            values = _ints(text)
        except ValueError:
            values = []
        if not values or min(values) < 1:
            parser.error(f"--{option} takes comma-separated positive integers, got {text!r}")
    unknown = sorted({m.strip() for m in args.methods.split(",") if m.strip()} - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; use {', '.join(METHODS)}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if not 0.0 <= args.failed_fraction < 1.0:
        parser.error(f"--failed-fraction must be in [0, 1), got {args.failed_fraction}")
    peers = sorted({m.strip() for m in args.methods.split(",")} & set(PEERS))
    if args.failed_fraction and peers:
        parser.error(f"--failed-fraction measures gpbo alone (the peers have no failed trials "
                     f"to model); pass --methods gpbo, not {', '.join(peers)}")
    return args


def _default_ns(device: str) -> list[int]:
    base = [50, 200, 500, 1000, 2000]
    return [*base, 5000, 10000] if device in ("cuda", "both") else base


def run_child(args: argparse.Namespace) -> int:
    """Measure everything at one thread count (this process's), appending to results.json."""
    import torch

    threads = _ints(args.threads)[0]
    torch.set_num_threads(threads)
    import botorch.models  # noqa: F401  (import time is not a suggestion's time)

    out = Path(args.out)
    path = out / "results.json"
    data = load_results(path)
    if args.pending_cache_devices is not None:
        import gpbo.cached_gp

        gpbo.cached_gp.PENDING_CACHE_DEVICES = frozenset(
            d.strip() for d in args.pending_cache_devices.split(",") if d.strip()
        )
    here = {**environment(), "fast": bool(os.environ.get(FAST_ENV)),
            "pending_cache_devices": _pending_cache_devices(),
            "failed_fraction": args.failed_fraction}
    if data["records"]:
        # the file's first environment stays (the report reads it); this process's is added
        data.setdefault("later_environments", []).append(here)
    else:
        data["environment"] = here
    done = {record_key(r) for r in data["records"]}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unavailable: set[str] = set()
    for peer, module in (("bayes_opt", "bayes_opt"), ("optuna-gp", "optuna")):
        if peer in methods:
            try:
                __import__(module)
            except ImportError as exc:
                note = f"{peer}: {module} is not installed ({exc}); {BENCH_INSTALL_HINT}"
                print("skipping " + note, flush=True)
                unavailable.add(peer)
                if note not in data["skipped"]:
                    data["skipped"].append(note)
    devices = {"cpu": ["cpu"], "cuda": ["cuda"], "both": ["cpu", "cuda"]}[args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        note = "gpbo on cuda: no CUDA device here"
        print("skipping " + note, flush=True)
        if note not in data["skipped"]:
            data["skipped"].append(note)
        devices = [d for d in devices if d != "cuda"] or []
    qs = _ints(args.qs)
    ns = _ints(args.ns) if args.ns else _default_ns(args.device)
    too_slow: dict[tuple[str, str], int] = {}
    jobs: list[tuple[str, int, int, str]] = []
    cpu_cap = max(ns) if args.ns else 2000  # default n above 2000 is for gpbo on CUDA only
    for n in sorted(ns):
        for device in devices:
            for q in qs:
                if "gpbo" in methods and (device == "cuda" or n <= cpu_cap):
                    jobs.append(("gpbo", n, q, device))
        for peer in PEERS:
            if peer in methods and peer not in unavailable and n <= cpu_cap:
                jobs.append((peer, n, 1, "cpu"))
    save_results(path, data)
    todo = [j for j in jobs
            if (f"gpbo-q{j[2]}" if j[0] == "gpbo" else j[0], j[1], j[3], threads) not in done]
    # one small untimed call of each method first: a process's first GP fit and acquisition
    # load code and caches (0.75 s against 0.1 s for a gpbo round at n=50), which the first
    # measured n would otherwise carry
    for method, device in dict.fromkeys((j[0], j[3]) for j in todo):
        measure(method, 20, q=min(qs), device=device, repeats=1, seed=args.seed + 1000)
    for method, n, q, device in todo:
        name = f"gpbo-q{q}" if method == "gpbo" else method
        slow_at = too_slow.get((name, device))
        if slow_at is not None:
            note = (f"{name} on {device}, {threads} thread(s), n={n}: skipped (over "
                    f"--max-seconds at n={slow_at})")
            print(note, flush=True)
            data["skipped"].append(note)
            save_results(path, data)
            continue
        record = measure(method, n, q=q, device=device, repeats=args.repeats, seed=args.seed,
                         failed_fraction=args.failed_fraction)
        data["records"].append(record)
        save_results(path, data)
        print(f"threads {threads} {device:>4} n={n:>5} {name:>10}: {record['median_wall']:.3f} s "
              f"(cpu {record['median_cpu']:.3f}) per call, {record['per_point_wall']:.3f} s per "
              "point", flush=True)
        if args.max_seconds is not None and record["median_wall"] > args.max_seconds:
            too_slow[(name, device)] = n
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        try:
            return run_child(args)
        except KeyboardInterrupt:
            return 130  # the driver (this script's parent) says what was kept
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    if path.exists() and not (args.resume or args.report_only):
        raise SystemExit(f"{path} exists: pass --resume to extend it, or use another --out")
    if args.report_only and not path.exists():
        raise SystemExit(f"--report-only: no results at {path}; run the benchmark first")
    if args.resume and path.exists():
        stored = load_results(path)
        fraction = stored["environment"].get("failed_fraction", 0.0)
        if stored["records"] and fraction != args.failed_fraction:
            raise SystemExit(f"{path} holds rounds with --failed-fraction {fraction}; measure "
                             f"--failed-fraction {args.failed_fraction} into another --out")
    if not args.report_only:
        forwarded = list(sys.argv[1:] if argv is None else argv)
        for threads in _ints(args.threads):
            env = dict(os.environ, **{k: str(threads) for k in THREAD_ENV})
            if args.fast:
                env[FAST_ENV] = "1"
            cmd = [sys.executable, str(Path(__file__).resolve()), *_replace_threads(forwarded,
                   threads), "--child", "--resume"]
            print(f"== {threads} thread(s)", flush=True)
            try:
                result = subprocess.run(cmd, env=env, check=False)
            except KeyboardInterrupt:
                result = subprocess.CompletedProcess(cmd, 130)
            if result.returncode == 130:
                # each measurement is in results.json as soon as it is made
                with contextlib.suppress(Exception):
                    _write_report(path, out)
                print(f"\ninterrupted: the measurements made are kept in {path}; run the same "
                      "command with --resume for the rest", flush=True)
                return 130
            if result.returncode != 0:
                print(f"the {threads}-thread measurements failed (exit {result.returncode})",
                      flush=True)
                _write_report(path, out)
                return result.returncode
    _write_report(path, out)
    return 0


def _write_report(path: Path, out: Path) -> None:
    data = load_results(path)
    text = markdown_table(data)
    (out / "results.md").write_text(text)
    print(text, flush=True)


def _replace_threads(argv: list[str], threads: int) -> list[str]:
    """``argv`` with its ``--threads`` value(s) replaced by ``threads``."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--threads":
            skip = True
            continue
        if a.startswith("--threads="):
            continue
        out.append(a)
    return [*out, "--threads", str(threads)]

if __name__ == "__main__":
    raise SystemExit(main())
