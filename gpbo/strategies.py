r"""Search strategies: what to evaluate next, given what was evaluated.

Each strategy is a small class behind one interface, :class:`Strategy`, and is given by name
(``strategy="sobol"``) or as a configured object (``strategy=gpbo.strategies.Grid(levels=7)``).
"""

from __future__ import annotations

import contextlib
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from gpbo.acquisition import (
    DUPLICATE_TOL,
    AcquisitionOptions,
    is_new,
    optimize_acquisition,
    optimize_posterior_mean,
    qlogei,
    with_success_probability,
)
from gpbo.exceptions import GpboError, warn_at_caller
from gpbo.space import Int, Real, Space

__all__ = [
    "Bayes",
    "Gradient",
    "Grid",
    "History",
    "Random",
    "Sobol",
    "Strategy",
    "default_n_init",
    "initial_design_size",
    "make_strategy",
]

logger = logging.getLogger(__name__)

#: The values of ``Bayes(failed=...)``: how failed and timed-out trials count.
FAILED_TREATMENTS = ("feasibility", "worst", "ignore")

#: With ``failed="feasibility"``, a failed trial whose this many nearest other trials all
#: failed too lies in a failing region, not beside a lone crash: it enters the objective's GP
#: at the worst score as well, so the GP stops promising improvement where it has no data
#: (docs/benchmarks.md, "Failed trials").
FAILING_REGION_NEIGHBOURS = 3


@dataclass(frozen=True)
class History:
    """What a strategy is told when asked for points; plain arrays, no trials.

    Attributes:
        space: The search space.
        X: An `n x d` array: unit-cube points of the complete trials.
        scores: An `n`-vector of their scores, larger is better (the study negates values of a
            minimized metric).
        X_failed: An `f x d` array: points whose trial failed or timed out.
        X_pending: A `p x d` array: points proposed and not finished yet.
        params_seen: Every parameter set evaluated or pending (for exact-duplicate checks).
        n_total: Trials so far, all statuses (the index of the first new trial).
        seed: The study's seed.
        surrogate_device: Where a GP runs (``"auto"``, ``"cpu"``, ``"cuda:0"``...).
        first_round_size: Trials of the study's first ask, or ``None`` before it (and where
            every trial was told by hand): the batch size the default initial design is
            rounded to (:func:`initial_design_size`).
    """

    space: Space
    X: np.ndarray
    scores: np.ndarray
    X_failed: np.ndarray
    X_pending: np.ndarray
    params_seen: tuple[dict[str, Any], ...] = ()
    n_total: int = 0
    seed: int = 0
    surrogate_device: str = "auto"
    first_round_size: int | None = None

    @property
    def seen(self) -> np.ndarray:
        """An `m x d` array of every point evaluated, failed or pending."""
        return np.vstack([self.X, self.X_failed, self.X_pending])

    def rng(self, purpose: int = 0) -> np.random.Generator:
        """A generator for this ask, derived from the seed and the trial count.

        A resumed study asks with the same trial count, so it draws what the uninterrupted
        study would have.
        """
        return np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(self.n_total, purpose))
        )

    def torch_seed(self) -> int:
        """A seed for torch's generator in this ask."""
        return int(self.rng(purpose=1).integers(0, 2**62))


class Strategy(ABC):
    """The interface of every strategy.

    Lifecycle: the study calls :meth:`propose` once per ask, with every trial so far as a
    :class:`History`. A strategy keeps no state between calls that is not derived from the
    history and the seed: that is what makes a resumed run propose what the uninterrupted run
    would have (synchronous mode). It must return valid, distinct points that are not in
    ``history.seen``; fewer than asked only when the space has no new point left. It never
    mutates the history.

    A subclass's ``name`` (a class attribute) is recorded in the journal and shown in
    messages; it defaults to the class's name in lower case.
    """

    name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not any("name" in vars(klass) for klass in cls.__mro__):
            # a user's strategy without one failed with a bare AttributeError at the journal
            cls.name = cls.__name__.lower()

    @abstractmethod
    def propose(self, history: History, n: int) -> list[dict[str, Any]]:
        """``n`` (or fewer, when the space is used up) new parameter sets."""

    def config(self) -> dict[str, Any]:
        """The strategy's name and options, JSON-ready (recorded in the journal)."""
        return {"name": self.name}


def default_n_init(space: Space, batch_size: int = 1) -> int:
    """The default number of quasi-random points before the GP: ``2 (d + 1)`` rounded down to
    whole batches, at least one batch.

    ``d`` is the number of parameters. A batch is never split between the initial design and
    the GP, and rounding down rather than up gives a batched study, which has fewer rounds to
    learn from than a one-at-a-time one at the same budget, its GP a round sooner (measured at
    q=4 on 30 seeds: better or equal on all five benchmark problems, docs/benchmarks.md).
    """
    return max(batch_size, 2 * (len(space) + 1) // batch_size * batch_size)


def initial_design_size(history: History, n: int, n_init: int | None) -> int:
    """How many quasi-random trials come before the GP: ``n_init``, or by default
    :func:`default_n_init` for the study's batch size, that of its first ask.

    Rounding to the size of each ask instead put an ask smaller than the study's batches (a
    last round cut short by ``n_trials``, an async refill) back inside a design that had
    ended: at ``d = 4`` a study in rounds of 4 fits its GP after 8 trials, and a last ask of 3
    took 9 for the design and got quasi-random points.
    """
    if n_init is not None:
        return n_init
    return default_n_init(history.space, history.first_round_size or n)


def sobol_points(history: History, n: int, *, offset: int | None = None) -> list[dict[str, Any]]:
    """``n`` new points of the study's scrambled Sobol sequence, from position ``offset``.

    Points that fall on an already seen lattice point are skipped (so discrete spaces never get
    a duplicate); random points fill in if the sequence keeps repeating.
    """
    import torch

    space = history.space
    if space.n_columns > torch.quasirandom.SobolEngine.MAXDIM:
        # one-hot columns of a Choice with tens of thousands of values: beyond the Sobol
        # engine's dimensions (it raised a bare ValueError), random points do as well there
        logger.info(
            "the space has %d unit-cube columns, more than a Sobol sequence takes (%d): "
            "random points instead", space.n_columns, torch.quasirandom.SobolEngine.MAXDIM,
        )
        chosen = _fill_random(history, [], history.seen, n)
        return space.decode(np.array(chosen).reshape(-1, space.n_columns))
    start = history.n_total if offset is None else offset
    engine = torch.quasirandom.SobolEngine(
        space.n_columns,
        scramble=True,
        seed=int(np.random.SeedSequence(history.seed).generate_state(1)[0]),
    )
    if start:
        engine.fast_forward(start)
    chosen: list[np.ndarray] = []
    seen = history.seen
    tries = 0
    while len(chosen) < n and tries < 20:
        draw = engine.draw(max(n, 16)).double().numpy()
        chosen, seen = _take_new(space.project(draw), chosen, seen, n)
        tries += 1
    if len(chosen) < n:
        chosen = _fill_random(history, chosen, seen, n)
    return space.decode(np.array(chosen).reshape(-1, space.n_columns))


def _take_new(
    candidates: np.ndarray, chosen: list[np.ndarray], seen: np.ndarray, n: int
) -> tuple[list[np.ndarray], np.ndarray]:
    for row in candidates:
        if len(chosen) == n:
            break
        if is_new(row, seen):
            chosen.append(row)
            seen = np.vstack([seen, row])
    return chosen, seen


def _fill_random(
    history: History, chosen: list[np.ndarray], seen: np.ndarray, n: int
) -> list[np.ndarray]:
    """Top up ``chosen`` with random new lattice points (few left in a small discrete space)."""
    space = history.space
    rng = history.rng(purpose=2)
    for _ in range(20):
        if len(chosen) == n:
            break
        chosen, seen = _take_new(space.project(rng.random((256, space.n_columns))), chosen, seen, n)
    lattice_size = space.lattice_size
    if len(chosen) < n and lattice_size is not None and lattice_size <= 100_000:
        left = space.encode(list(space.grid(levels=1)))  # a small discrete space: what is left
        rng.shuffle(left)
        chosen, seen = _take_new(left, chosen, seen, n)
    return chosen


class Random(Strategy):
    """Independent uniform samples (log-uniform where ``log=True``)."""

    name = "random"

    def propose(self, history: History, n: int) -> list[dict[str, Any]]:
        space = history.space
        rng = history.rng()
        chosen, seen = _take_new(
            space.project(rng.random((n, space.n_columns))), [], history.seen, n
        )
        if len(chosen) < n:
            chosen = _fill_random(history, chosen, seen, n)
        return space.decode(np.array(chosen).reshape(-1, space.n_columns))


class Sobol(Strategy):
    """Scrambled Sobol quasi-random points: the study's one sequence, in trial order."""

    name = "sobol"

    def propose(self, history: History, n: int) -> list[dict[str, Any]]:
        return sobol_points(history, n)


@dataclass(kw_only=True)  # options by name: Bayes(3) read as n_init=3
class Grid(Strategy):
    """The exhaustive Cartesian grid, in order: every ``Choice`` and ``Int`` value, and
    ``levels`` evenly spaced levels of each ``Real`` (log-spaced where ``log=True``). An
    ``Int(log=True)`` with more than ``levels`` integers gets ``levels`` log-spaced ones.

    Args:
        levels: Levels per ``Real`` (and per wide ``Int(log=True)``) parameter (at least 2).
    """

    levels: int = 5
    name: ClassVar[str] = "grid"

    def __post_init__(self) -> None:
        if isinstance(self.levels, np.integer):
            self.levels = int(self.levels)
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or self.levels < 2:
            raise GpboError(f"Grid(levels=...) must be an int >= 2, got {self.levels!r}")

    def propose(self, history: History, n: int) -> list[dict[str, Any]]:
        # Each seen point (queued points reach a strategy only as pending rows of
        # history.seen) is turned into its grid index, and the first free indices are
        # proposed: walking the grid and encoding every point up to the first unseen one made
        # an ask 51 ms after 3000 trials, and matching encodings rounded to 1e-9 skipped
        # integers of an Int wider than 1e9. All in arrays: a Python loop over the seen
        # points still cost 25 ms an ask at 5000 trials.
        space = history.space
        axes = [param.grid_values(self.levels) for param in space.params.values()]
        sizes = [len(axis) for axis in axes]
        total = math.prod(sizes)
        taken = np.unique(_grid_indices(space, axes, sizes, history.seen))
        # the i-th free index is i plus the number of taken indices at or below it; taken[j]
        # has taken[j] - j free indices below it
        wanted = np.arange(n)
        free = wanted + np.searchsorted(taken - np.arange(taken.shape[0]), wanted, side="right")
        return [_grid_point(space, axes, sizes, int(i)) for i in free.tolist() if i < total]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "levels": self.levels}


@dataclass(kw_only=True)
class Bayes(Strategy):
    r"""GP-based Bayesian optimization with a joint q-batch acquisition.

    The first ``n_init`` trials are scrambled-Sobol points; after that each ask fits a
    ``SingleTaskGP`` (standardized outcomes, float64) to every complete trial and picks the
    batch jointly by maximizing ``qLogExpectedImprovement`` with pending trials as
    ``X_pending``. If the fit fails, the ask falls back to quasi-random points with a warning.

    Failed and timed-out trials (``failed``): by default a second GP learns where trials fail
    (label 0 for failed, 1 for complete) and the acquisition is weighted by each point's
    probability of success, so a region where trials keep failing is avoided while one crash
    (a lost node, a transient error) rules out only its close neighbourhood. Counting a
    failed trial as the worst score seen (``failed="worst"``, the default before) made a few
    crashes beside the optimum, or a flaky start, pull the objective's GP down there: on the
    failure experiment (benchmarks/experiments/failed_trials) it ended last or next to last
    with transient or early failures, 10 times worse than this on Hartmann6. A failed trial
    whose three nearest other trials failed too lies in a failing region rather than beside a
    lone crash, and enters the objective's GP at the worst score as well: with no data there,
    the GP promised improvement beyond a failing boundary (a learning rate past which training
    diverges) and the acquisition kept probing the region's gaps.

    A batch of two or more ends with one point of pure exploitation: the maximum of the GP's
    posterior mean (by default over the whole space; within ``exploit_radius`` of the best
    trial where that is below 1), chosen after the qLogEI points. A batch otherwise spends its
    later points exploring (the earlier ones pending make improvement near the incumbent look
    taken), and refines the optimum only once per round where a one-at-a-time run refines it
    every trial; on the benchmark suite this point closed most of the q=4 gap to q=1
    (docs/benchmarks.md, change log).

    Args:
        n_init: Quasi-random points before the GP; default :func:`default_n_init`. An ask
            is all quasi-random or all the GP's, so a value given is rounded up to whole
            asks (5 in batches of 4: 8); the GP waits for two complete trials in any case.
        num_restarts: L-BFGS-B starts for the acquisition.
        raw_samples: Random batches scored to choose the starts.
        maxiter: L-BFGS-B iterations per start.
        exploit_radius: Half-width, in the unit cube, of the box around the best trial where
            a batch's exploitation point is sought: 1 (the default) is the whole space;
            ``None`` gives every point to qLogEI.
        failed: How failed and timed-out trials count: ``"feasibility"`` (the default; a GP
            of where trials succeed weights the acquisition and the exploitation point, and
            failed trials in a failing region enter the objective's GP at the worst score),
            ``"worst"`` (each enters the objective's GP at the worst score seen) or
            ``"ignore"`` (left out; only no new point lands on one). None of them proposes a
            point within :data:`gpbo.acquisition.PENDING_TOL` of a failed one (on a lattice
            finer than that, while other new points are left).
        failing_region: With ``failed="feasibility"``, how many nearest other trials of a
            failed one must have failed for it to lie in a failing region and enter the
            objective's GP at the worst score (default :data:`FAILING_REGION_NEIGHBOURS`);
            ``None`` leaves every failed trial to the GP of where trials succeed (the rule
            before the twenty-seventh session). Recorded as ``None`` with another
            ``failed``, where it does nothing.
    """

    n_init: int | None = None
    num_restarts: int = 10
    raw_samples: int = 512
    maxiter: int = 200
    exploit_radius: float | None = 1.0
    failed: str = "feasibility"
    failing_region: int | None = FAILING_REGION_NEIGHBOURS
    name: ClassVar[str] = "bayes"
    _options: AcquisitionOptions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.n_init = _checked_n_init(self.n_init)
        radius = self.exploit_radius
        if radius is not None and (
            isinstance(radius, bool) or not isinstance(radius, (int, float)) or not 0 < radius <= 1
        ):
            raise GpboError(
                f"exploit_radius must be a number in (0, 1] (a half-width in the unit cube) or "
                f"None to turn the exploitation point off, got {radius!r}"
            )
        if self.failed not in FAILED_TREATMENTS:
            raise GpboError(
                f"Bayes(failed={self.failed!r}) is not known; use one of "
                f"{', '.join(repr(t) for t in FAILED_TREATMENTS)}"
            )
        self.failing_region = _positive_int_or_none(
            self.failing_region,
            "Bayes(failing_region={value!r}) must be a positive int (a number of nearest "
            "trials) or None to turn the rule off",
        )
        if self.failed != "feasibility":
            self.failing_region = None  # only the feasibility treatment reads it
        self._options = _acquisition_options(
            self, num_restarts=self.num_restarts, raw_samples=self.raw_samples,
            maxiter=self.maxiter,
        )

    def propose(self, history: History, n: int) -> list[dict[str, Any]]:
        n_init = initial_design_size(history, n, self.n_init)
        if history.n_total < n_init or history.X.shape[0] < 2:
            return sobol_points(history, n)
        with _gp_work(history):
            fitted = _fit_or_warn(
                history, failed=self.failed, failing_region=self.failing_region
            )
            if fitted is None:
                return sobol_points(history, n)
            model, best_f = fitted
            success_gp = (
                _fit_success_gp(history, device=model.train_inputs[0].device)
                if self.failed == "feasibility"
                else None
            )
            radius = self.exploit_radius if n >= 2 else None
            q = n if radius is None else n - 1
            acqf = self.make_acquisition(model, best_f=best_f, history=history, q=q)
            if success_gp is not None:
                acqf = with_success_probability(acqf, success_gp)
            X = optimize_acquisition(
                acqf,
                space=history.space,
                q=q,
                seen=history.seen,
                options=self._options,
                generator=history.rng(),
                avoid=history.X_failed,
            )
            if radius is not None:
                X_exploit = optimize_posterior_mean(
                    model,
                    space=history.space,
                    center=history.X[int(np.argmax(history.scores))],
                    radius=radius,
                    q=1,
                    seen=np.vstack([history.seen, X]),
                    options=AcquisitionOptions(
                        num_restarts=8, raw_samples=256, maxiter=self.maxiter
                    ),
                    generator=history.rng(),
                    success_gp=success_gp,
                    avoid=history.X_failed,
                )
                X = np.vstack([X, X_exploit])
        return _decode_and_top_up(history, X, n)

    def make_acquisition(self, model: Any, *, best_f: float, history: History, q: int) -> Any:
        """The acquisition function to maximize (a subclass may return another one).

        Args:
            model: The GP fitted to ``history`` (scores warped, larger is better).
            best_f: The best score in the GP's units.
            history: The trials so far; ``history.X_pending`` holds the running points.
            q: The batch size being chosen.
        """
        return qlogei(model, best_f=best_f, pending=history.X_pending)

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_init": self.n_init,
            "num_restarts": self.num_restarts,
            "raw_samples": self.raw_samples,
            "maxiter": self.maxiter,
            "exploit_radius": self.exploit_radius,
            "failed": self.failed,
            "failing_region": self.failing_region,
        }


@dataclass(kw_only=True)
class Gradient(Strategy):
    r"""Local refinement: gradient ascent on the GP posterior mean from the incumbent.

    After ``n_init`` quasi-random points, each ask fits the GP and runs L-BFGS-B (through
    autograd) on its posterior mean inside a box of half-width ``radius`` around the best trial
    so far (every category of a categorical parameter is inside it: categories have no
    order). The box halves after every batch (the trials asked together with those still
    running) that did not improve on the incumbent and resets
    when one does (derived from the history, so resuming continues the same way). A point
    keeps a quarter of ``min_radius`` from every trial: closer, it would tell nothing new.
    A batch is the box's best local optimum of the mean, then its other optima and random
    points of the box (measured against a parallel line search in nested boxes, these win on
    rugged problems: docs/benchmarks.md, "Batches of the `gradient` strategy").

    Once a batch in the smallest box has not improved either, the local search has converged
    (logged). With ``restart`` (the default) each later ask then takes a global step, the
    batch :class:`Bayes` would choose (qLogEI over the whole space), until one beats the
    incumbent and the local search starts again from it in a whole box; without, the asks
    go on refining the smallest box. The posterior mean alone never leaves the basin it
    starts in: a study converged on the wrong optimizer choice spent the rest of its budget
    a hair from one point.

    Args:
        n_init: Quasi-random points before the GP; default :func:`default_n_init`. An ask
            is all quasi-random or all the GP's, so a value given is rounded up to whole
            asks (5 in batches of 4: 8); the GP waits for two complete trials in any case.
        radius: Initial half-width of the trust region in the unit cube.
        min_radius: The smallest half-width.
        num_restarts: Starts for the local optimization.
        maxiter: L-BFGS-B iterations per start.
        restart: Whether a converged search takes global steps (above) or goes on
            refining.
    """

    n_init: int | None = None
    radius: float = 0.2
    min_radius: float = 1e-3
    num_restarts: int = 8
    maxiter: int = 100
    restart: bool = True
    name: ClassVar[str] = "gradient"
    _options: AcquisitionOptions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.n_init = _checked_n_init(self.n_init)
        for label, value in (("radius", self.radius), ("min_radius", self.min_radius)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise GpboError(
                    f"Gradient's {label} must be a number (a half-width in the unit cube), got "
                    f"{value!r} ({type(value).__name__})"
                )
        self._options = _acquisition_options(  # checks num_restarts and maxiter
            self, num_restarts=self.num_restarts, raw_samples=256, maxiter=self.maxiter
        )
        if not 0 < self.min_radius <= self.radius <= 1:
            raise GpboError(
                f"Gradient needs 0 < min_radius <= radius <= 1, got min_radius={self.min_radius},"
                f" radius={self.radius}"
            )
        if not isinstance(self.restart, bool):
            raise GpboError(f"Gradient's restart must be True or False, got {self.restart!r}")

    def propose(self, history: History, n: int) -> list[dict[str, Any]]:
        n_init = initial_design_size(history, n, self.n_init)
        if history.n_total < n_init or history.X.shape[0] < 2:
            return sobol_points(history, n)
        best = int(np.argmax(history.scores))
        center = history.X[best]
        steps = self._failed_local_steps(history, best, n_init)
        # a batch is the trials in flight: asynchronous asks of one beside k - 1 running ones
        # halve the box per k steps, as a round of k does, not per trial
        halvings = steps // max(n + history.X_pending.shape[0], 1)
        if self.restart and halvings and self.radius * 0.5 ** (halvings - 1) <= self.min_radius:
            logger.info(
                "gradient: converged (%d local steps without improving on the best trial, the "
                "last in the smallest box); this ask takes a global step", steps,
            )
            return self._global_step(history, n)
        radius = max(self.radius * 0.5**halvings, self.min_radius)
        # a discrete column's box reaches the neighbouring values: inside the incumbent's
        # cell it would hold no new point, and the ask would be all quasi-random points
        half_widths = np.maximum(radius, history.space.neighbour_reach(center) * (1 + 1e-6))
        with _gp_work(history):
            fitted = _fit_or_warn(history)
            if fitted is None:
                return sobol_points(history, n)
            model, _ = fitted
            X = optimize_posterior_mean(
                model,
                space=history.space,
                center=center,
                radius=half_widths,
                q=n,
                seen=history.seen,
                pending=history.X_pending,
                options=self._options,
                generator=history.rng(),
                first_apart=self.min_radius / 4,
            )
        if X.shape[0] < n:
            logger.info(
                "gradient: the box around the incumbent holds %d new point(s) of the %d asked; "
                "the rest are quasi-random", X.shape[0], n,
            )
        return _decode_and_top_up(history, X, n)

    def _global_step(self, history: History, n: int) -> list[dict[str, Any]]:
        """The batch :class:`Bayes` picks (its failed trials entering the GP at the worst
        score, as this strategy's own), less its points within a quarter of ``min_radius`` of
        a trial or of each other, which quasi-random points replace: qLogEI refines a
        converged optimum a hair from the incumbent, the very steps a restart is to end."""
        from gpbo.acquisition import is_new

        proposals = Bayes(n_init=1, maxiter=self.maxiter, failed="worst").propose(history, n)
        kept = np.empty((0, history.space.n_columns))
        for row in history.space.encode(proposals):
            if is_new(row, np.vstack([history.seen, kept]), tol=self.min_radius / 4):
                kept = np.vstack([kept, row])
        if kept.shape[0] < n:
            logger.info("gradient: %d of the global step's points were next to a trial; "
                        "quasi-random points instead", n - kept.shape[0])
        return _decode_and_top_up(history, kept, n)

    def _failed_local_steps(self, history: History, best: int, n_init: int) -> int:
        """How many trials since the best one were local steps that did not improve on it.

        Only complete trials after both the best and the initial design count, and only
        those within the starting box of the best: the design's points, results fed in with
        ``add()`` or a random warm-up before the switch to this strategy are no failed steps
        (counted, they started the search in a box already halved many times).
        """
        first = max(best + 1, min(n_init, history.X.shape[0]))
        later = history.X[first:]
        if not later.shape[0]:
            return 0
        ordered = np.ones(history.space.n_columns, dtype=bool)
        for group in history.space.categorical_groups:
            ordered[group] = False
        distance = np.abs(later[:, ordered] - history.X[best][ordered])
        near = distance.max(axis=1, initial=0.0) <= self.radius + 1e-9
        return int(near.sum())

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_init": self.n_init,
            "radius": self.radius,
            "min_radius": self.min_radius,
            "num_restarts": self.num_restarts,
            "maxiter": self.maxiter,
            "restart": self.restart,
        }


def _grid_indices(
    space: Space, axes: list[Sequence[Any]], sizes: list[int], X: np.ndarray
) -> np.ndarray:
    """The positions in :meth:`Space.grid` (the last parameter fastest) of the unit-cube points
    ``X`` (`m x d`) that are grid points (a ``Real`` off its levels is not)."""
    on_grid = np.ones(X.shape[0], dtype=bool)
    positions: list[np.ndarray] = []
    for (name, param), axis in zip(space.params.items(), axes, strict=True):
        columns = X[:, space.columns(name)]
        if isinstance(param, Real):
            # by encoding, to 1e-9 (the strategies' duplicate tolerance): 0.01 told by hand
            # and the grid's level exp(log(1e-3) + ...) differ in the last bits
            levels = np.array([param.encode(v)[0] for v in axis])  # increasing
            x = columns[:, 0]
            above = np.clip(np.searchsorted(levels, x), 1, len(levels) - 1)
            nearer_below = x - levels[above - 1] < levels[above] - x
            position = np.where(nearer_below, above - 1, above)
            on_grid &= np.abs(x - levels[position]) <= DUPLICATE_TOL
        elif isinstance(param, Int) and isinstance(axis, range):  # every integer
            position = np.asarray(param.decode(columns), dtype=np.int64) - int(param.low)
        elif isinstance(param, Int):  # log-spaced integers, increasing
            values = np.asarray(param.decode(columns), dtype=np.int64)
            spaced = np.asarray(axis, dtype=np.int64)
            position = np.clip(np.searchsorted(spaced, values), 0, len(spaced) - 1)
            on_grid &= spaced[position] == values
        else:  # a Choice's axis is its values, in their order
            position = param.positions(columns)  # type: ignore[attr-defined]
        positions.append(position)
    # int64 where the grid's size allows, else Python ints (the product may pass 2**63)
    fits_int64 = math.prod(sizes) < 2**62
    index = np.zeros(X.shape[0], dtype=np.int64 if fits_int64 else object)
    for position, size in zip(positions, sizes, strict=True):
        index = index * size + (position if fits_int64 else position.astype(object))
    return index[on_grid]


def _grid_point(
    space: Space, axes: list[Sequence[Any]], sizes: list[int], index: int
) -> dict[str, Any]:
    """The parameters at position ``index`` of :meth:`Space.grid`."""
    values = []
    for axis, size in zip(reversed(axes), reversed(sizes), strict=True):
        index, position = divmod(index, size)
        values.append(axis[position])
    return dict(zip(space.params, reversed(values), strict=True))


def _decode_and_top_up(history: History, X: np.ndarray, n: int) -> list[dict[str, Any]]:
    """Decode ``X``; where it has fewer than ``n`` points, add new quasi-random ones."""
    proposals = history.space.decode(X) if X.shape[0] else []
    if len(proposals) < n:
        extra_history = _with_pending(history, X)
        proposals += sobol_points(extra_history, n - len(proposals))
    return proposals


def _with_pending(history: History, X: np.ndarray) -> History:
    return replace(history, X_pending=np.vstack([history.X_pending, X]))


def _fit_or_warn(
    history: History, *, failed: str = "worst", failing_region: int | None = None
) -> tuple[Any, float] | None:
    """The fitted GP and the best (warped) score, or ``None`` after warning of a failed fit.

    Args:
        history: The trials so far.
        failed: Which failed trials enter the GP, at the worst score seen: all of them
            (``"worst"``), none (``"ignore"``) or, with ``"feasibility"``, those in a failing
            region (:func:`_in_failing_region` with ``failing_region`` neighbours; none where
            that is ``None``).
    """
    import torch

    from gpbo.surrogate import (
        SurrogateFitError,
        fit_gp,
        resolve_device,
        warn_if_the_gp_is_large,
        warp_scores,
    )

    X_failed = history.X_failed
    if failed == "feasibility" and failing_region is not None:
        X_failed = X_failed[_in_failing_region(history.X, X_failed, neighbours=failing_region)]
    elif failed != "worst":
        X_failed = X_failed[:0]
    X = np.vstack([history.X, X_failed])
    device = resolve_device(history.surrogate_device, n_train=X.shape[0])
    warn_if_the_gp_is_large(X.shape[0], device)
    worst = float(np.min(history.scores))
    y = warp_scores(np.concatenate([history.scores, np.full(X_failed.shape[0], worst)]))
    tkwargs: dict[str, Any] = {"dtype": torch.float64, "device": device}
    try:
        if not np.all(np.isfinite(y)):
            raise SurrogateFitError("the warped scores are not all finite")
        model = fit_gp(torch.as_tensor(X, **tkwargs), torch.as_tensor(y, **tkwargs))
        return model, float(np.max(y[: history.X.shape[0]]))
    except SurrogateFitError as exc:
        warn_at_caller(f"the GP fit failed ({exc}); this ask falls back to quasi-random points")
        return None


#: Floats the distances of :func:`_in_failing_region` take at once (64 MB).
_DISTANCE_BLOCK = 8_000_000


def _in_failing_region(
    X: np.ndarray, X_failed: np.ndarray, *, neighbours: int = FAILING_REGION_NEIGHBOURS
) -> np.ndarray:
    """Which failed points lie in a failing region: their nearest other trials all failed.

    A lone crash beside complete trials is not one; neither is a point of a transient fault,
    whose neighbours mostly complete. Where fewer trials exist, all the others count. A trial
    as near as the ``neighbours``-th nearest counts too (on a lattice, distances tie): one
    complete trial among them keeps the point out.

    Args:
        X: An `n x d` array: unit-cube points of the complete trials.
        X_failed: An `f x d` array: those of the failed ones.
        neighbours: How many nearest other trials (Euclidean, in the unit cube) must have
            failed.

    Returns:
        An `f`-dim boolean array.
    """
    n, f = X.shape[0], X_failed.shape[0]
    k = min(neighbours, n + f - 1)
    out = np.zeros(f, dtype=bool)
    if f == 0 or k < 1:
        return out
    every = np.vstack([X, X_failed])
    # rows of failed points at a time: the differences take `rows x (n + f) x d` floats
    rows = max(1, _DISTANCE_BLOCK // max(every.size, 1))
    for start in range(0, f, rows):
        block = X_failed[start : start + rows]
        squared = ((block[:, None, :] - every[None, :, :]) ** 2).sum(-1)
        mine = np.arange(block.shape[0])
        squared[mine, n + start + mine] = np.inf  # a point is not its own neighbour
        kth = np.partition(squared, k - 1, axis=1)[:, k - 1 : k]
        near_complete = squared[:, :n] <= kth * (1 + 1e-9) + 1e-24
        out[start : start + rows] = ~near_complete.any(axis=1)
    return out


def _fit_success_gp(history: History, *, device: Any) -> Any:
    """The GP of where trials succeed (:func:`gpbo.surrogate.fit_success_gp`), or ``None``
    where no trial failed or the fit failed (logged: the ask goes on without it).

    Args:
        history: The trials so far.
        device: The objective GP's device: the acquisition adds the two models' terms, and
            ``"auto"`` resolved for this GP's larger count could put it on another device.
    """
    if not history.X_failed.shape[0]:
        return None
    import torch

    from gpbo.surrogate import SurrogateFitError, fit_success_gp

    X = np.vstack([history.X, history.X_failed])
    succeeded = np.arange(X.shape[0]) < history.X.shape[0]
    try:
        return fit_success_gp(
            torch.as_tensor(X, dtype=torch.float64, device=device),
            torch.as_tensor(succeeded, device=device),
        )
    except SurrogateFitError as exc:
        logger.info("the GP of where trials fail could not be fitted (%s); this ask leaves "
                    "the failed trials out", exc)
        return None


def _checked_n_init(n_init: Any) -> int | None:
    """A strategy's ``n_init``: a positive int (a NumPy one made an int) or ``None``."""
    return _positive_int_or_none(n_init, "n_init must be a positive int or None, got {value!r}")


def _positive_int_or_none(value: Any, error: str) -> int | None:
    """``value`` as a positive int (a NumPy one made an int) or ``None``; anything else raises
    :class:`GpboError` with ``error`` formatted with ``value``."""
    if isinstance(value, np.integer):
        value = int(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GpboError(error.format(value=value))
    return value


def _acquisition_options(owner: Strategy, **options: Any) -> AcquisitionOptions:
    """:class:`AcquisitionOptions` from a strategy's own; a bad one named as the strategy's."""
    try:
        return AcquisitionOptions(**options)
    except GpboError as exc:
        raise GpboError(f"{type(owner).__name__}: {exc}") from None


@contextlib.contextmanager
def _gp_work(history: History) -> Iterator[None]:
    """The context of a fit and an acquisition: torch seeded for this ask (the caller's
    generator restored afterwards) and, for small GPs, one CPU thread."""
    import torch

    from gpbo.surrogate import gp_threads

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices), gp_threads(history.X.shape[0]):
        torch.manual_seed(history.torch_seed())
        yield


_REGISTRY: dict[str, type[Strategy]] = {
    "bayes": Bayes,
    "random": Random,
    "sobol": Sobol,
    "grid": Grid,
    "gradient": Gradient,
}


def make_strategy(spec: str | Strategy, *, n_init: int | None = None) -> Strategy:
    """The strategy ``spec`` names (with default options), or ``spec`` itself.

    Args:
        spec: A name (``"bayes"``, ``"random"``, ``"sobol"``, ``"grid"``, ``"gradient"``) or a
            :class:`Strategy` instance.
        n_init: Initial design size, for the strategies that have one; an instance whose own
            ``n_init`` is unset gets a copy with it (the caller's object is left as it is).
    """
    if isinstance(spec, Strategy):
        if n_init is not None and not hasattr(spec, "n_init"):
            _warn_n_init_unused(n_init, spec.name)
        own = getattr(spec, "n_init", None)
        if n_init is not None and own is None and hasattr(spec, "n_init"):
            return replace(spec, n_init=n_init)  # type: ignore[type-var]
        if n_init is not None and own is not None and own != n_init:
            raise GpboError(
                f"n_init={n_init} and the strategy's own n_init={own} disagree; give it once"
            )
        return spec
    cls = _REGISTRY.get(spec) if isinstance(spec, str) else None
    if cls is None:
        raise GpboError(
            f"strategy={spec!r} is not known; use one of {sorted(_REGISTRY)} or an instance of "
            "gpbo.strategies.Strategy"
        )
    if n_init is not None and cls in (Bayes, Gradient):
        return cls(n_init=n_init)  # type: ignore[call-arg]
    if n_init is not None:
        _warn_n_init_unused(n_init, spec)
    return cls()


def _warn_n_init_unused(n_init: int, name: str) -> None:
    warn_at_caller(
        f"n_init={n_init} has no effect with strategy {name!r} (it has no initial design); "
        "it sets the quasi-random points before 'bayes' or 'gradient' take over"
    )


def strategy_from_config(config: dict[str, Any]) -> Strategy:
    """Rebuild a strategy from :meth:`Strategy.config` (journal headers, YAML configs)."""
    options = dict(config)
    name = options.pop("name", None)
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise GpboError(f"unknown strategy {name!r}; use one of {sorted(_REGISTRY)}")
    try:
        return cls(**options)
    except TypeError as exc:
        raise GpboError(f"strategy {name!r}: {exc}") from None
