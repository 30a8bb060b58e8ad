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
