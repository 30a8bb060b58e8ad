"""Batches of the ``gradient`` strategy (twenty-eighth session; measured, not adopted: results
in docs/benchmarks.md, "Batches of the `gradient` strategy"): what the points after the
first should be.

The library's ``Gradient`` fills a batch with the box's best local optimum of the posterior
mean, then the restarts' other optima and random points of the box. ``exp-gradnest-q4`` takes
point ``j`` of a batch as the mean's maximum in the box of half-width ``radius / 2**j``: a
parallel backtracking line search, the steps a serial run would take after failed ones;
``exp-gradnest2-q4`` only its first two points (boxes of ``radius`` and ``radius / 2``), the
rest as the library's.
Load it as a plugin of the quality benchmark:

    python scripts/benchmark_quality.py --plugin benchmarks/experiments/gradient_batch.py \\
        --problems branin,hartmann6,rosenbrock4,ackley5 \\
        --methods exp-grad-q1,exp-grad-q4,exp-gradnest-q4,exp-gradnest2-q4 --seeds 10 \\
        --threads 1 --jobs 2 \\
        --out benchmarks/results/experiments_gradient_batch --resume --no-plots
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_gpbo_variants", _HERE / "gpbo_variants.py")
assert _spec is not None and _spec.loader is not None
_variants = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_variants)


def _nested_gradient(nested_points: int | None = None) -> Any:
    from gpbo.acquisition import optimize_posterior_mean
    from gpbo.strategies import Gradient

    class NestedGradient(Gradient):
        """``Gradient`` whose batch point ``j`` maximizes the mean in a box ``2**j`` smaller."""

        def propose(self, history: Any, n: int) -> list[dict[str, Any]]:
            if n == 1:
                return super().propose(history, n)
            import gpbo.strategies as strategies

            original = strategies.optimize_posterior_mean

            def nested(
                model: Any, *, radius: Any, q: int, seen: Any, pending: Any = None, **kw: Any
            ) -> np.ndarray:
                d = seen.shape[1]
                pending = np.empty((0, d)) if pending is None else pending
                chosen = np.empty((0, d))
                boxes = q if nested_points is None else min(q, nested_points)
                for j in range(boxes):
                    X = optimize_posterior_mean(
                        model,
                        radius=np.maximum(np.asarray(radius) * 0.5**j, self.min_radius),
                        q=1,
                        seen=np.vstack([seen, chosen]),
                        pending=np.vstack([pending, chosen]),
                        **kw,
                    )
                    chosen = np.vstack([chosen, X])
                if boxes < q:  # the rest as the library's: other optima, random points
                    X = optimize_posterior_mean(
                        model, radius=radius, q=q - boxes, seen=np.vstack([seen, chosen]),
                        pending=np.vstack([pending, chosen]), **kw,
                    )
                    chosen = np.vstack([chosen, X])
                return chosen

            strategies.optimize_posterior_mean = nested
            try:
                return super().propose(history, n)
            finally:
                strategies.optimize_posterior_mean = original

    return NestedGradient()


def _method(strategy: Any, q: int) -> Any:
    def run(problem: Any, budget: int, seed: int) -> list[float]:
        chosen = strategy() if callable(strategy) else strategy
        return _variants.drive(problem, budget, seed, strategy=chosen, q=q)

    return run


METHODS = {
    "exp-grad-q1": _method("gradient", 1),
    "exp-grad-q4": _method("gradient", 4),
    "exp-gradnest-q4": _method(_nested_gradient, 4),
    "exp-gradnest2-q4": _method(lambda: _nested_gradient(2), 4),
}
