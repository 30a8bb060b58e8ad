"""How close one-point asks come to the running trials when many are pending (async mode).

A 4-D quadratic (minimized at 0.3, or with ``--negate`` its negative, minimized at a corner:
the asks then crowd the corners); 16 trials are kept running: each step one of them (at
random) finishes and one new trial is asked for. Prints, per seed, the final best value and
the smallest max-norm distances (unit cube = parameter units here) from each new point to the
running ones.

    python benchmarks/experiments/async_near_copies.py --seeds 0,1,2 [--negate]
"""

from __future__ import annotations

import argparse

import numpy as np

import gpbo


def run(
    seed: int, *, negate: bool = False, workers: int = 16, steps: int = 40
) -> tuple[float, np.ndarray]:
    space = gpbo.Space({f"x{i}": gpbo.Real(0, 1) for i in range(4)})

    def point(trial: gpbo.Trial) -> np.ndarray:
        return np.array([trial.params[f"x{i}"] for i in range(4)])

    study = gpbo.Study(space, strategy="bayes", seed=seed)
    rng = np.random.default_rng(seed)
    running = study.ask(workers)
    gaps = []
    for _ in range(steps):
        done = running.pop(int(rng.integers(len(running))))
        value = float(np.sum((point(done) - 0.3) ** 2))
        study.tell(done, -value if negate else value)
        new = study.ask(1)[0]
        others = np.array([point(t) for t in running])
        gaps.append(float(np.min(np.max(np.abs(others - point(new)), axis=1))))
        running.append(new)
    return study.best_value, np.array(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--negate", action="store_true", help="minimize the negated quadratic")
    args = parser.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        best, gaps = run(seed, negate=args.negate)
        closest = ", ".join(f"{g:.1e}" for g in np.sort(gaps)[:3])
        print(f"seed {seed}: best {best:.2e}; closest to a running point: {closest}; "
              f"within 1e-3: {int(np.sum(gaps < 1e-3))} of {gaps.size}")


if __name__ == "__main__":
    main()
