"""Grid, random and Bayesian search on the digits MLP: how close do 16 trainings come to 64?

The objective is ``examples.mlp_digits.train`` (validation accuracy of a PyTorch MLP on
scikit-learn's digits, maximized) over its space ``examples.mlp_digits.SPACE``: learning rate
{0.001, 0.01, 0.1, 1.0} x batch size {32, 64, 128, 256} x hidden units {64, 128, 256, 512}.

What runs:

1. ``strategy="grid"``: all 64 configurations, once (study seed 0). Its best is the reference.
2. ``strategy="random"`` and gpbo's ``strategy="bayes"`` with a budget of ``--budget``
   trainings (default 16), ``--seeds`` studies each (default 3; study seeds 1, 2, ...).
   ``bayes`` runs with its defaults: 8 scrambled-Sobol trainings (``n_init``), then the GP
   and qLogEI choose the rest.

Trials run on every GPU present, or in one CPU slot without one (``--devices``); each round
trains ``--batch-size`` configurations, by default one per slot. A single CPU slot trains in
this process, with ``--threads`` torch threads (default 1).

What it prints:

- the best validation accuracy each strategy had after n trainings (random and bayes: the
  median over the seeds), with the grid's after all 64. The grid's value after fewer trainings
  is its Cartesian order cut short (learning rate varies slowest), shown for reference only;
- for each study, the configuration it found within the budget (its best trial) compared with
  the grid's best: the gap in accuracy points and the configuration's rank in the grid's
  ordering (1 = the grid's best; tied configurations share the better rank), then the median
  over the seeds;
- the training noise, measured.

Training noise, and how the comparison is kept like with like: a trial's training seed comes
from ``gpbo.current_trial().seed`` (the study seed and the trial number), so the same
configuration trained in two studies gives slightly different accuracies. A study's best trial
is moreover the maximum of noisy measurements, so its own accuracy is optimistic. The gap and
the rank therefore score each found configuration by the grid's own training of it (every
configuration of the space is in the grid): the found configuration and the grid's best are
then measured in the same study, one training each, and the gap is never negative. The study's
own measurement is printed beside it. The grid's best is itself the maximum of 64 noisy
trainings, so a gap below the noise level is no real difference; the noise is measured by
pairing every random/bayes training with the grid's training of the same configuration (the
median absolute difference, overall and for the configurations in the grid's top quarter,
printed last). No extra trainings are run for any of this.

Usage:
    python scripts/tune_mlp_digits.py [--epochs 20] [--seeds 3] [--budget 16]
        [--devices auto] [--batch-size N] [--threads 1] [--strategies random,bayes]
        [--json PATH]

Small variant (the test's): ``--epochs 2 --seeds 1 --budget 10``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `examples`, when run as a script from anywhere

import gpbo  # noqa: E402

#: Study seed of the grid; random and bayes studies use 1, 2, ... (other training seeds).
GRID_SEED = 0


@dataclass(frozen=True)
class Run:
    """One finished study, reduced to what the comparison needs.

    Attributes:
        strategy: ``"grid"``, ``"random"`` or ``"bayes"``.
        seed: The study seed.
        params: The parameters of each finished trial, in trial order.
        values: Their accuracies (``None`` where the trial failed), in trial order.
        seconds: Wall time of the study.
    """

    strategy: str
    seed: int
    params: tuple[dict[str, Any], ...]
    values: tuple[float | None, ...]
    seconds: float

    @property
    def n_distinct(self) -> int:
        """Distinct configurations trained."""
        return len({_key(p) for p in self.params})

    def best_after(self, n: int) -> float | None:
        """The best accuracy among the first ``n`` trainings (``None``: none completed)."""
        done = [v for v in self.values[:n] if v is not None]
        return max(done) if done else None

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The configuration of the best trial (the first of equals), as the study reports it."""
        done = [(v, -i) for i, v in enumerate(self.values) if v is not None]
        return self.params[-max(done)[1]] if done else None


def _key(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(params.items()))


def run_study(
    train: Callable[[dict[str, Any]], Any],
    space: Mapping[str, Any],
    *,
    strategy: str,
    n_trials: int,
    batch_size: int,
    devices: str | int | list[str],
    seed: int,
) -> Run:
    """Run one study with :func:`gpbo.optimize` and keep its finished trials in order.

    Args:
        train: The objective (``examples.mlp_digits.train``).
        space: The search space.
        strategy: A strategy name.
        n_trials: Trainings to run.
        batch_size: Configurations per round.
        devices: As :func:`gpbo.optimize`'s ``devices``.
        seed: The study seed.

    Returns:
        The study's finished trials, in trial order.
    """
    start = time.perf_counter()
    result = gpbo.optimize(
        train,
        space,
        n_trials=n_trials,
        batch_size=batch_size,
        direction="maximize",
        strategy=strategy,
        devices=devices,
        seed=seed,
        verbose=False,
    )
    seconds = time.perf_counter() - start
    trials = sorted((t for t in result.trials if t.finished), key=lambda t: t.number)
    return Run(
        strategy=strategy,
        seed=seed,
        params=tuple(dict(t.params) for t in trials),
        values=tuple(t.value if t.status == "complete" else None for t in trials),
        seconds=seconds,
    )


def checkpoints(budget: int) -> list[int]:
    """Training counts at which the best-so-far is reported: quarters of the budget."""
    return sorted({max(1, round(budget * k / 4)) for k in range(1, 5)})


def grid_ranking(grid: Run) -> tuple[dict[tuple[Any, ...], float], list[float]]:
    """The grid's accuracy of each configuration, and its accuracies best first."""
    by_config = {
        _key(p): v if v is not None else float("-inf")
        for p, v in zip(grid.params, grid.values, strict=True)
    }
    return by_config, sorted(by_config.values(), reverse=True)


def rank_of(value: float, ordered: Sequence[float]) -> int:
    """Competition rank of ``value`` among ``ordered`` (best first): 1 + how many are better."""
    return 1 + sum(v > value for v in ordered)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _config(params: dict[str, Any] | None) -> str:
    if params is None:
        return "-"
    return f"lr={params['lr']:g} batch={params['batch_size']} hidden={params['hidden']}"


def report(
    grid: Run, searches: dict[str, list[Run]], *, budget: int, out: TextIO | None = None
) -> None:
    """Print the two comparison tables and the noise estimate.

    Args:
        grid: The exhaustive grid study.
        searches: ``{"random": [...], "bayes": [...]}``: the studies of each strategy.
        budget: Trainings per search study.
        out: Where to print (default: standard output).
    """

    def line(text: str = "") -> None:
        print(text, file=out or sys.stdout)

    marks = checkpoints(budget)
    grid_n = len(grid.params)
    n_seeds = max((len(runs) for runs in searches.values()), default=0)
    line()
    line("Best validation accuracy (%) after n trainings (random, bayes: "
         + (f"median of {n_seeds} seeds)" if n_seeds != 1 else "1 seed)"))
    head = f"{'strategy':<8} {'seeds':>5} " + " ".join(f"{n:>6}" for n in [*marks, grid_n])
    line(head)
    line("-" * len(head))
    cells = [_pct(grid.best_after(n)) for n in [*marks, grid_n]]
    line(f"{'grid':<8} {1:>5} " + " ".join(f"{c:>6}" for c in cells))
    for name, runs in searches.items():
        cells = []
        for n in marks:
            bests = [b for b in (r.best_after(n) for r in runs) if b is not None]
            cells.append(_pct(statistics.median(bests)) if bests else "-")
        cells.append("-")
        line(f"{name:<8} {len(runs):>5} " + " ".join(f"{c:>6}" for c in cells))
    line("(each study's own measurements; the grid's before all of its trainings: its Cartesian")
    line(" order cut short, learning rate varying slowest)")

    by_config, ordered = grid_ranking(grid)
    best = ordered[0]
    line()
    line(f"After {budget} trainings, against the grid's best of {grid_n} (each found config")
    line("scored by the grid's training of it, like with like; own: the study's measurement)")
    head = (f"{'strategy':<8} {'seed':>6}  {'found config':<34} {'own %':>6} {'grid %':>6} "
            f"{'gap':>6} {'rank':>7}")
    line(head)
    line("-" * len(head))
    grid_best = grid.best_params
    line(f"{'grid':<8} {grid.seed:>6}  {_config(grid_best):<34} {_pct(best):>6} "
         f"{_pct(best):>6} {0.0:>6.2f} {f'1/{grid_n}':>7}")
    for name, runs in searches.items():
        gaps: list[float] = []
        ranks: list[int] = []
        for run in runs:
            found = run.best_params
            if found is None:
                line(f"{name:<8} {run.seed:>6}  (no trial completed)")
                continue
            in_grid = by_config.get(_key(found))
            if in_grid is None:  # not in the grid (cannot happen with this space)
                line(f"{name:<8} {run.seed:>6}  {_config(found):<34} "
                     f"{_pct(run.best_after(len(run.values))):>6} (not in the grid)")
                continue
            gap, rank = 100 * (best - in_grid), rank_of(in_grid, ordered)
            gaps.append(gap)
            ranks.append(rank)
            line(f"{name:<8} {run.seed:>6}  {_config(found):<34} "
                 f"{_pct(run.best_after(len(run.values))):>6} {_pct(in_grid):>6} {gap:>6.2f} "
                 f"{f'{rank}/{grid_n}':>7}")
        if gaps:
            median_rank = f"{statistics.median(ranks):g}/{grid_n}"
            line(f"{name:<8} {'median':>6}  {'':<34} {'':>6} {'':>6} "
                 f"{statistics.median(gaps):>6.2f} {median_rank:>7}")
    line("(gap: accuracy points below the grid's best; rank: place in the grid's ordering,")
    line(" 1 = best, ties share the better rank)")

    quarter = max(1, grid_n // 4)
    pairs = [  # (|difference| in points, whether the config ranks in the grid's top quarter)
        (100 * abs(v - by_config[_key(p)]), rank_of(by_config[_key(p)], ordered) <= quarter)
        for runs in searches.values()
        for run in runs
        for p, v in zip(run.params, run.values, strict=True)
        if v is not None and by_config.get(_key(p), float("-inf")) != float("-inf")
    ]
    line()
    if pairs:
        line("Training noise: each random/bayes training against the grid's training of the")
        text = (
            f"same config (another seed): median |difference| "
            f"{statistics.median(d for d, _ in pairs):.2f} points over {len(pairs)} pairs"
        )
        near_top = [d for d, is_top in pairs if is_top]
        if near_top:
            line(text + ",")
            text = (
                f"{statistics.median(near_top):.2f} over the {len(near_top)} whose config is in "
                f"the grid's top {quarter}"
            )
        line(text + ".")
        noise = statistics.median(near_top or [d for d, _ in pairs])
        within = sum(100 * (best - v) <= noise + 1e-9 for v in ordered)
        verb = "lies" if within == 1 else "lie"
        line(f"{within} of the grid's {grid_n} configs {verb} within that noise "
             f"({noise:.2f} points) of its best.")
    line(f"The grid's best ({_pct(best)}%) is itself the best of {grid_n} noisy trainings;")
    line("gaps within the noise are no real difference.")


def _devices(text: str) -> str | int | list[str]:
    if text.isdigit():
        return int(text)
    if "," in text:
        return [d.strip() for d in text.split(",") if d.strip()]
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; ``argv`` as on the command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20,
                        help="epochs per training (sets GPBO_EXAMPLE_EPOCHS; default 20)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="studies per search strategy; the median is reported (default 3)")
    parser.add_argument("--budget", type=int, default=16,
                        help="trainings per random/bayes study (default 16)")
    parser.add_argument("--devices", default="auto",
                        help="'auto' (every GPU, else one CPU slot), a count, or names "
                        "('cuda:0,cuda:1')")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="configurations per round (default: one per slot)")
    parser.add_argument("--strategies", default="random,bayes",
                        help="search strategies to compare with the grid (default random,bayes)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of this process, where a single CPU slot trains and "
                        "the GP runs (default 1: fastest for these small models, and far "
                        "faster than 2 when other processes share the cores)")
    parser.add_argument("--json", default=None, help="also write every trial to this file")
    args = parser.parse_args(argv)
    for name in ("epochs", "seeds", "budget", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")

    # Before importing the example (it reads the variable once); spawned workers inherit it.
    os.environ["GPBO_EXAMPLE_EPOCHS"] = str(args.epochs)
    import torch

    from examples.mlp_digits import SPACE, train

    torch.set_num_threads(args.threads)

    devices = _devices(args.devices)
    slots = gpbo.executors.resolve_slots(devices)
    batch_size = args.batch_size or len(slots)
    grid_size = gpbo.Space(SPACE).grid_size(levels=gpbo.strategies.Grid().levels)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    print(f"tune_mlp_digits: {args.epochs} epochs per training; grid of {grid_size}, then "
          f"{', '.join(strategies)} at {args.budget} trainings x "
          f"{args.seeds} seed{'s' if args.seeds != 1 else ''}; slots "
          f"{slots}, {batch_size} per round", flush=True)

    start = time.perf_counter()
    common = {"batch_size": batch_size, "devices": devices}
    grid = run_study(train, SPACE, strategy="grid", n_trials=grid_size, seed=GRID_SEED, **common)
    print(f"{'grid':<8} seed {grid.seed}: {len(grid.params)} trainings, {grid.n_distinct} "
          f"distinct configurations, best {_pct(grid.best_after(len(grid.values)))}% "
          f"({grid.seconds:.1f} s)", flush=True)
    searches: dict[str, list[Run]] = {}
    for strategy in strategies:
        for seed in range(GRID_SEED + 1, GRID_SEED + 1 + args.seeds):
            run = run_study(
                train, SPACE, strategy=strategy, n_trials=args.budget, seed=seed, **common
            )
            searches.setdefault(strategy, []).append(run)
            print(f"{strategy:<8} seed {seed}: {len(run.params)} trainings, {run.n_distinct} "
                  f"distinct configurations, best {_pct(run.best_after(len(run.values)))}% "
                  f"({run.seconds:.1f} s)", flush=True)
    report(grid, searches, budget=args.budget)
    wall = time.perf_counter() - start
    print(f"\nwall time {wall:.1f} s", flush=True)

    if args.json:
        runs = [grid, *(r for rs in searches.values() for r in rs)]
        data = {
            "epochs": args.epochs,
            "budget": args.budget,
            "batch_size": batch_size,
            "slots": slots,
            "wall_s": wall,
            "runs": [
                {
                    "strategy": r.strategy,
                    "seed": r.seed,
                    "seconds": r.seconds,
                    "trials": [
                        {"params": p, "value": v} for p, v in zip(r.params, r.values, strict=True)
                    ],
                }
                for r in runs
            ],
        }
        Path(args.json).write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
