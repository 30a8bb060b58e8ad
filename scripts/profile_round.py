"""Where one gpbo round spends its time: a cProfile of ``Bayes().propose`` on ``n`` points.

The data are the overhead benchmark's (Hartmann6 at ``n`` uniform random points, d=6). One
untimed round warms the device (CUDA context, kernel caches); the next is timed and profiled.
Prints its wall time and the top functions by cumulative time (the fit is under ``fit_gp``,
the acquisition under ``optimize_acquisition``).

Usage:
    python scripts/profile_round.py --n 1000 --q 8 --device cuda --top 40
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def profile_round(n: int, q: int, *, device: str, seed: int, top: int) -> str:
    """The phase times and the cProfile listing of one round, as text."""
    import numpy as np

    import gpbo
    from gpbo.strategies import Bayes, History
    from scripts.benchmark_overhead import hartmann_data

    X, y = hartmann_data(n, seed)
    space = gpbo.Space({f"x{i}": gpbo.Real(0.0, 1.0) for i in range(X.shape[1])})
    empty = np.zeros((0, X.shape[1]))
    history = History(space=space, X=X, scores=-y, X_failed=empty, X_pending=empty,
                      n_total=n, seed=seed, surrogate_device=device)
    lines = [f"n={n} q={q} device={device}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Bayes().propose(history, q)  # warm-up
        _sync(device)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        Bayes().propose(history, q)
        _sync(device)
        profiler.disable()
        lines.append(f"round: {time.perf_counter() - start:.3f} s (under the profiler)")
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).sort_stats("cumulative")
    stats.print_stats(top)
    lines.append(stream.getvalue())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="observations (default 1000)")
    parser.add_argument("--q", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda' (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=40, help="functions listed (default 40)")
    args = parser.parse_args(argv)
    print(profile_round(args.n, args.q, device=args.device, seed=args.seed, top=args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
