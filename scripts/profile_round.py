"""Where one gpbo round spends its time: a cProfile of ``Bayes().propose`` on ``n`` points.

The data are the overhead benchmark's (Hartmann6 at ``n`` uniform random points, d=6). One
untimed round warms the device (CUDA context, kernel caches); the next is timed and profiled.
Prints its wall time and the top functions by cumulative time (the fit is under ``fit_gp``,
the acquisition under ``optimize_acquisition``).

With ``--count-ops``, instead: the tensor operations of one qLogEI evaluation (forward and
backward, 10 restarts, one new point and ``q - 1`` pending ones), as the dispatcher sees them,
for the pending points' cached terms and for the whole joint posterior: all operations,
kernels (the operations that compute, i.e. launch a kernel on a GPU; views do not) and host
syncs, and the time per evaluation on ``--device``. On a GPU an evaluation costs about its
kernel launches (docs/benchmarks.md), so the counts, taken on any machine, stand in for it.

Usage:
    python scripts/profile_round.py --n 1000 --q 8 --device cuda --top 40
    python scripts/profile_round.py --n 1000 --q 8 --count-ops
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def profile_round(n: int, q: int, *, device: str, seed: int, top: int) -> str:
    """The round's wall time and the cProfile listing of the round, as text."""
    from gpbo.strategies import Bayes
    from scripts.benchmark_overhead import Timer, gpbo_history, hartmann_data

    X, y = hartmann_data(n, seed)
    history = gpbo_history(X, y, device=device, seed=seed)
    cuda = device.startswith("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Timer(cuda):
            Bayes().propose(history, q)  # warm-up
        profiler = cProfile.Profile()
        with Timer(cuda) as timer:
            profiler.enable()
            Bayes().propose(history, q)
            profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(top)
    return "\n".join([f"n={n} q={q} device={device}",
                      f"round: {timer.wall:.3f} s (under the profiler)", stream.getvalue()])


#: Operations that only make a new view of a tensor (no kernel), and those that wait for the
#: device (a host sync).
_VIEWS = frozenset({
    "view", "_unsafe_view", "_reshape_alias", "reshape", "transpose", "t", "expand", "slice",
    "select", "unsqueeze", "squeeze", "permute", "detach", "alias", "as_strided", "split",
    "unbind", "empty", "new_empty_strided", "empty_strided",
})
_SYNCS = frozenset({"_local_scalar_dense", "equal", "is_nonzero", "item"})


def count_evaluation_ops(n: int, q: int, *, device: str, seed: int,
                         repeats: int = 20) -> dict[str, dict[str, float]]:
    """Operations, kernels, host syncs and milliseconds of one qLogEI evaluation (see above).

    Returns:
        For ``"pending cached"`` and ``"joint posterior"``: ``ops``, ``kernels``, ``syncs`` and
        ``ms`` (the median wall time of ``repeats`` evaluations).
    """
    import time
    from collections import Counter

    import numpy as np
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    import gpbo.cached_gp as cached_gp
    from gpbo.acquisition import qlogei
    from gpbo.strategies import _fit_or_warn
    from scripts.benchmark_overhead import gpbo_history, hartmann_data

    class Counting(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: Counter[str] = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names[func.__name__.split(".")[0]] += 1
            return func(*args, **(kwargs or {}))

    X, y = hartmann_data(n, seed)
    model, best_f = _fit_or_warn(gpbo_history(X, y, device=device, seed=seed))
    pending = np.random.default_rng(seed).random((q - 1, X.shape[1]))
    acqf = qlogei(model, best_f=best_f, pending=pending)
    points = torch.rand(10, 1, X.shape[1], dtype=torch.float64,
                        generator=torch.Generator().manual_seed(seed)).to(device)
    points.requires_grad_(True)
    cuda = device.startswith("cuda")

    def evaluate() -> None:
        points.grad = None
        acqf(points).sum().backward()
        if cuda:
            torch.cuda.synchronize()

    results: dict[str, dict[str, float]] = {}
    saved = cached_gp.PENDING_CACHE_DEVICES
    try:
        for name, devices in (("pending cached", frozenset({"cpu", "cuda"})),
                              ("joint posterior", frozenset())):
            cached_gp.PENDING_CACHE_DEVICES = devices
            evaluate()  # warm: the pending points' terms, the draws, the device's caches
            with Counting() as counting:
                evaluate()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                evaluate()
                times.append(time.perf_counter() - start)
            names = counting.names
            results[name] = {
                "ops": sum(names.values()),
                "kernels": sum(c for k, c in names.items() if k not in _VIEWS | _SYNCS),
                "syncs": sum(c for k, c in names.items() if k in _SYNCS),
                "ms": 1e3 * float(np.median(times)),
            }
    finally:
        cached_gp.PENDING_CACHE_DEVICES = saved
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="observations (default 1000)")
    parser.add_argument("--q", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda' (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=40, help="functions listed (default 40)")
    parser.add_argument("--count-ops", action="store_true",
                        help="count one qLogEI evaluation's operations instead (see above)")
    args = parser.parse_args(argv)
    if args.count_ops:
        import torch

        torch.set_num_threads(1)
        counts = count_evaluation_ops(args.n, args.q, device=args.device, seed=args.seed)
        print(f"n={args.n} pending={args.q - 1} device={args.device}: one evaluation, "
              "forward and backward, 10 restarts")
        print("| path | operations | kernels | host syncs | ms per evaluation |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, c in counts.items():
            print(f"| {name} | {c['ops']:.0f} | {c['kernels']:.0f} | {c['syncs']:.0f} "
                  f"| {c['ms']:.2f} |")
        return 0
    print(profile_round(args.n, args.q, device=args.device, seed=args.seed, top=args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
