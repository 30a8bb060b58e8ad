r"""q-batch acquisition and its optimization, for continuous and mixed spaces.

The batch is chosen for its joint value: ``qLogExpectedImprovement`` over ``q`` points,
maximized with multi-start L-BFGS-B through autograd (``botorch.optim.optimize_acqf``), one
point at a time with the points already picked as pending (sequential greedy, which beat one
optimization over all ``q x d`` coordinates; later points restart from the earlier points'
other local optima); trials still running enter as ``X_pending``. For spaces with integers or
choices the continuous relaxation is optimized, projected onto the lattice, and the batch is
then re-chosen greedily among the projected optima and a quasi-random pool of lattice points
by the joint acquisition value, which also keeps every point of the batch new.
"""

from __future__ import annotations

import itertools
import logging
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gpbo.exceptions import GpboError
from gpbo.space import Space
from gpbo.surrogate import numerical_warnings_to_debug_log

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Two unit-cube points closer than this (max-norm) are the same point.
DUPLICATE_TOL = 1e-9
#: A proposal closer than this (max-norm, unit cube) to a running or already picked point is a
#: near-copy of it: qLogEI's smooth maximum over the joint batch (``tau_max=0.01``) pays a
#: point for sitting on a pending one, so with many trials running, one-point asks landed
#: 1e-5 from a pending point and spent a trial learning nothing new.
PENDING_TOL = 1e-3
#: Discrete spaces up to this many points are searched exhaustively.
MAX_ENUMERATE = 4096


@dataclass(frozen=True)
class AcquisitionOptions:
    """How hard the acquisition is optimized.

    Attributes:
        num_restarts: L-BFGS-B starts (the best of ``raw_samples`` random batches).
        raw_samples: Random batches scored to pick the starts; also the size of the lattice pool
            for mixed spaces.
        maxiter: L-BFGS-B iterations per start.
        factr: L-BFGS-B stops when the relative change of the (log) acquisition value falls
            below ``factr`` times the machine epsilon. SciPy's default, 1e7 (a change of 2e-9),
            is far below what moves a proposal; 1e10 (2e-6) with ``pgtol`` 1e-4 took a q=8
            round about 40% less time (measured in docs/benchmarks.md).
        pgtol: L-BFGS-B stops when the largest projected gradient component falls below this.
    """

    num_restarts: int = 10
    raw_samples: int = 512
    maxiter: int = 200
    factr: float = 1e10
    pgtol: float = 1e-4

    def __post_init__(self) -> None:
        for name in ("num_restarts", "raw_samples", "maxiter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise GpboError(f"{name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))  # np.int64(10) as 10
        if self.raw_samples < self.num_restarts:
            # the starts are the best of the raw samples: BoTorch fails at the first GP round
            raise GpboError(
                f"raw_samples ({self.raw_samples}) must be at least num_restarts "
                f"({self.num_restarts}): the starts are chosen among the raw samples"
            )
        for name in ("factr", "pgtol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise GpboError(f"{name} must be a positive number, got {value!r}")

    def lbfgs(self, q: int = 1) -> dict[str, Any]:
        """The ``options`` for ``botorch.optim.optimize_acqf`` with ``q`` points per start."""
        return {
            "maxiter": self.maxiter,
            "factr": self.factr,
            "pgtol": self.pgtol,
            "batch_limit": max(1, 512 // max(q, 1)),
        }


def is_new(candidate: np.ndarray, seen: np.ndarray, *, tol: float = DUPLICATE_TOL) -> bool:
    """Whether ``candidate`` (a `d`-vector) is more than ``tol`` (max-norm) from every row of
    ``seen`` (`m x d`)."""
    if seen.shape[0] == 0:
        return True
    return bool(np.min(np.max(np.abs(seen - candidate), axis=1)) > tol)


#: Quasi-MC samples of the joint posterior behind each qLogEI value. BoTorch's default is 512;
#: the acquisition's cost is nearly proportional to it, and with 128 scrambled Sobol samples
#: (fixed for the whole optimization) no benchmark median got worse by more than 0.15 and the
#: suite's mean improved (docs/benchmarks.md, change log) while a q=8 round took half the time.
MC_SAMPLES = 128


def qlogei(model: Any, *, best_f: float, pending: np.ndarray) -> Any:
    """``qLogExpectedImprovement`` over ``best_f``, with ``pending`` (`p x d`) as ``X_pending``.

    The model's posterior is cached first and sampled directly (:mod:`gpbo.cached_gp`): the
    optimizer evaluates it thousands of times.
    """
    import torch
    from botorch.sampling import SobolQMCNormalSampler

    from gpbo.cached_gp import CachedQLogEI, cache_posterior

    tkwargs: dict[str, Any] = {"dtype": torch.float64, "device": _model_device(model)}
    X_pending = torch.as_tensor(pending, **tkwargs) if pending.shape[0] else None
    return CachedQLogEI(
        cache_posterior(model),
        best_f=best_f,
        sampler=SobolQMCNormalSampler(sample_shape=torch.Size([MC_SAMPLES])),
        X_pending=X_pending,
    )


def with_success_probability(acqf: Any, success_gp: Any) -> Any:
    r"""``acqf`` plus the log probability that the batch's trials succeed.

    The value at a `q`-point batch is ``acqf``'s plus the sum over its points of
    :func:`gpbo.surrogate.log_probability_of_success`: for qLogEI, the log of the expected
    improvement times each point's probability of success (the usual constrained EI, with
    the points' successes taken as independent); for the posterior mean, a soft constraint
    that keeps it out of regions where trials failed.

    Args:
        acqf: A BoTorch acquisition function taking `b x q x d` tensors.
        success_gp: The GP of :func:`gpbo.surrogate.fit_success_gp`.
    """
    from gpbo.cached_gp import SuccessWeighted, cache_posterior

    return SuccessWeighted(acqf, cache_posterior(success_gp))


def optimize_acquisition(
    acqf: Any,
    *,
    space: Space,
    q: int,
    seen: np.ndarray,
    options: AcquisitionOptions,
    generator: np.random.Generator,
    avoid: np.ndarray | None = None,
) -> np.ndarray:
    r"""Choose ``q`` new points jointly by maximizing any BoTorch acquisition function.

    Small lattice spaces are searched exhaustively; others are relaxed to the cube, optimized
    with ``optimize_acqf``, projected, and the batch re-chosen greedily where needed.

    Args:
        acqf: A BoTorch acquisition function on unit-cube inputs, taking `b x q x d` tensors
            (pending points already set on it).
        space: The search space, for projecting onto its lattice.
        q: Points to choose.
        seen: An `m x d` array of points already evaluated or pending; none is proposed again.
        options: Optimization budget.
        generator: Randomness for the lattice pool.
        avoid: An `a x d` array of points (failed trials) that every point keeps
            :data:`PENDING_TOL` from (on a lattice finer than that, only while enough other
            new points are left).

    Returns:
        A `k x d` array of new, distinct lattice points, `k <= q` (fewer only when the space
        has fewer unseen points).
    """
    import torch

    tkwargs: dict[str, Any] = {"dtype": torch.float64, "device": _model_device(acqf.model)}
    d = space.n_columns

    avoid = np.empty((0, d)) if avoid is None else np.asarray(avoid).reshape(-1, d)
    n_lattice = space.lattice_size
    if n_lattice is not None and n_lattice <= MAX_ENUMERATE:
        pool = space.encode(list(space.grid(levels=1)))
        with numerical_warnings_to_debug_log("acquisition optimization"):
            return _greedy_batch(acqf, pool, q=q, seen=seen, avoid=avoid, tkwargs=tkwargs)

    bounds = torch.stack([torch.zeros(d, **tkwargs), torch.ones(d, **tkwargs)])
    check_batched_lbfgsb()
    kept_from = torch.as_tensor(avoid, **tkwargs) if avoid.shape[0] else None
    with numerical_warnings_to_debug_log("acquisition optimization"):
        candidates = _sequential_greedy(acqf, bounds=bounds, q=q, options=options, avoid=kept_from)
    X = space.project(candidates.detach().cpu().numpy())
    if space.is_continuous and _all_new(X, seen) and all(
        is_new(row, avoid, tol=PENDING_TOL) for row in X
    ):
        return X
    # a lattice, a repeat, or every restart ended on a failed point (the acquisition there is
    # what it was before the trial failed, with failed="ignore"): re-chosen among new points
    pool = np.vstack([X, space.project(generator.random((options.raw_samples, d)))])
    with numerical_warnings_to_debug_log("acquisition optimization"):
        return _greedy_batch(acqf, pool, q=q, seen=seen, avoid=avoid, tkwargs=tkwargs)


_checked_lbfgsb = False


def check_batched_lbfgsb() -> bool:
    """Whether BoTorch runs its batched L-BFGS-B; warns once per process (logging) if not.

    BoTorch optimizes each restart on its own (``fmin_l_bfgs_b_batched``) only with the SciPy
    versions it was tested against; outside them it falls back to one L-BFGS-B over all
    restarts at once, which runs until the slowest restart has converged. Measured with
    BoTorch 0.18.1 on an H100 machine (docs/benchmarks.md): a q=8 round at n=1000 took 9.9 s
    instead of 1.6 s on its CPU (one thread) and 10.6 s instead of 2.7 s on the GPU with SciPy
    1.18.1 rather than 1.17.1.
    """
    global _checked_lbfgsb
    from botorch.generation import gen

    batched = hasattr(gen, "fmin_l_bfgs_b_batched")
    low = getattr(gen, "SCIPY_MIN_VERSION", None)
    high = getattr(gen, "SCIPY_UNTESTED_VERSION", None)
    # a BoTorch without these names has no batched path to restore: nothing to advise
    if not batched and not _checked_lbfgsb and low is not None and high is not None:
        import botorch
        import scipy

        logger.warning(
            "BoTorch %s runs its batched L-BFGS-B only with SciPy 1.%s to 1.%s, not with SciPy "
            "%s, so each gpbo round takes several times longer (measured 4-6x); "
            "pip install 'scipy>=1.%s,<1.%s' restores it",
            botorch.__version__, low, high - 1, scipy.__version__, low, high,
        )
    _checked_lbfgsb = True
    return batched


#: In steps after the first of a greedy batch, this share of the starts are fresh (the best of
#: ``raw_samples // 4`` random points); the rest are the previous step's end points.
FRESH_SHARE = 0.4


def _sequential_greedy(
    acqf: Any,
    *,
    bounds: torch.Tensor,
    q: int,
    options: AcquisitionOptions,
    avoid: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""``q`` points, each maximizing the batch's joint value given the points picked before.

    Greedy beat one L-BFGS-B run over all ``q x d`` coordinates: on Hartmann6 at q=4 the median
    log10 regret went from -0.49 to -1.50. The first point starts from the best of
    ``raw_samples`` random points, as BoTorch's ``sequential=True`` does; later points restart
    from the earlier step's other local optima (the picked point now pending, the acquisition
    surface elsewhere barely moves) plus a few fresh random starts, instead of scoring
    ``raw_samples`` new points at every step: that scoring was half of a q=8 round at n=200.

    Args:
        acqf: A BoTorch acquisition function (its ``X_pending`` is restored afterwards).
        bounds: A `2 x d` tensor of the box.
        q: Points to pick.
        options: Optimization budget.
        avoid: An `a x d` tensor of points kept :data:`PENDING_TOL` from, besides the pending
            and the picked ones.

    Returns:
        A `q x d` tensor.
    """
    import torch
    from botorch.optim import optimize_acqf
    from botorch.optim.initializers import gen_batch_initial_conditions

    base_pending = getattr(acqf, "X_pending", None)
    chosen: list[torch.Tensor] = []
    ends: torch.Tensor | None = None
    n_fresh = max(1, round(options.num_restarts * FRESH_SHARE))
    pending_changed = False
    try:
        for _ in range(q):
            if chosen:
                picked = torch.stack(chosen)
                pending_changed = True
                acqf.set_X_pending(
                    picked if base_pending is None else torch.cat([base_pending, picked])
                )
            if ends is None:
                starts = None
            else:
                fresh = gen_batch_initial_conditions(
                    acqf, bounds, q=1, num_restarts=n_fresh,
                    raw_samples=max(n_fresh, options.raw_samples // 4),
                )
                starts = torch.cat([ends, fresh])
            points, values = optimize_acqf(
                acqf,
                bounds=bounds,
                q=1,
                num_restarts=options.num_restarts if starts is None else starts.shape[0],
                raw_samples=options.raw_samples if starts is None else None,
                batch_initial_conditions=starts,
                options=options.lbfgs(),
                return_best_only=False,
            )
            points, values = points.detach(), values.detach().reshape(-1)
            order = torch.argsort(values, descending=True)
            taken = [
                *(() if base_pending is None else base_pending),
                *(() if avoid is None else avoid),
                *chosen,
            ]
            pick = _first_apart(points[order, 0], taken, tol=PENDING_TOL)
            if pick == 0 and avoid is not None and len(taken) > avoid.shape[0]:
                # every end is near something: rather near a running point than a failed one
                pick = _first_apart(points[order, 0], list(avoid), tol=PENDING_TOL)
            chosen.append(points[order[pick], 0])
            rest = torch.cat([order[:pick], order[pick + 1 :]])
            ends = points[rest[: options.num_restarts - n_fresh]]
    finally:
        if pending_changed:  # only then: an analytic acquisition has no X_pending to set
            acqf.set_X_pending(base_pending)
    return torch.stack(chosen)


def _first_apart(ranked: torch.Tensor, taken: list[torch.Tensor], *, tol: float) -> int:
    """The index of the first row of ``ranked`` (`k x d`) more than ``tol`` (max-norm) from
    every point of ``taken``; 0 when none is (the best, a near-copy, beats no point)."""
    if not taken:
        return 0
    import torch

    gaps = (ranked.unsqueeze(1) - torch.stack(taken).unsqueeze(0)).abs().amax(dim=-1)
    apart = torch.nonzero(gaps.amin(dim=1) > tol)
    return int(apart[0, 0]) if apart.shape[0] else 0


def optimize_posterior_mean(
    model: Any,
    *,
    space: Space,
    center: np.ndarray,
    radius: float | np.ndarray,
    q: int,
    seen: np.ndarray,
    options: AcquisitionOptions,
    generator: np.random.Generator,
    pending: np.ndarray | None = None,
    success_gp: Any = None,
    avoid: np.ndarray | None = None,
    first_apart: float = DUPLICATE_TOL,
) -> np.ndarray:
    r"""Gradient ascent on the GP posterior mean inside a box around ``center``.

    The box spans every category of a categorical parameter (its one-hot columns range over
    ``[0, 1]``): categories have no order, so none is nearer the incumbent's than another, and
    a box of the radius in one-hot columns would never leave the incumbent's category.

    Args:
        model: A fitted botorch model (scores: larger is better).
        space: The search space.
        center: The `d`-vector to start from (the incumbent).
        radius: Half-width of the trust region in the unit cube, or a `d`-vector of them.
        q: Points to return: the restarts' best local optimum, then other optima and random
            points of the box, each at least a quarter of the smallest half-width (max-norm)
            from every seen and chosen point.
        seen: An `m x d` array of points not to propose again.
        pending: A `p x d` array of points being evaluated (part of ``seen``): the first point
            too keeps the quarter half-width from them, or each ask of an asynchronous study
            would land a hair from the last one, the mean having not moved.
        options: Optimization budget (restarts, iterations).
        generator: Randomness for filling up with random points of the region.
        success_gp: The GP of :func:`gpbo.surrogate.fit_success_gp`, or ``None``: where given,
            the mean plus the log probability of success is maximized (see
            :func:`with_success_probability`), so the point stays where trials succeed.
        avoid: An `a x d` array of points (failed trials) every point keeps
            :data:`PENDING_TOL` from.
        first_apart: How far (max-norm) the first point keeps from every seen point while
            the box holds such points (where it does not, only duplicates are refused).

    Returns:
        A `k x d` array of new lattice points, `k <= q`.
    """
    import torch
    from botorch.acquisition import PosteriorMean
    from botorch.optim import optimize_acqf

    from gpbo.cached_gp import CachedGP, CachedPosteriorMean, cache_posterior

    tkwargs: dict[str, Any] = {"dtype": torch.float64, "device": _model_device(model)}
    d = space.n_columns
    low = np.clip(center - radius, 0.0, 1.0)
    high = np.clip(center + radius, 0.0, 1.0)
    for group in space.categorical_groups:
        low[group], high[group] = 0.0, 1.0
    bounds = torch.as_tensor(np.stack([low, high]), **tkwargs)
    cached = cache_posterior(model)
    acqf = CachedPosteriorMean(cached) if isinstance(cached, CachedGP) else PosteriorMean(model)
    if success_gp is not None:
        acqf = with_success_probability(acqf, success_gp)
    n_starts = max(options.num_restarts, 2 * q)
    starts = low + generator.random((n_starts, d)) * (high - low)
    starts[0] = center
    batch_initial_conditions = torch.as_tensor(starts, **tkwargs).unsqueeze(1)
    with numerical_warnings_to_debug_log("acquisition optimization"):
        candidates, values = optimize_acqf(
            acqf,
            bounds=bounds,
            q=1,
            num_restarts=n_starts,
            batch_initial_conditions=batch_initial_conditions,
            return_best_only=False,
            options=options.lbfgs(),
        )
    order = torch.argsort(values.reshape(-1), descending=True).cpu().numpy()
    X = space.project(candidates.reshape(-1, d).detach().cpu().numpy()[order])
    region_pool = space.project(low + generator.random((options.raw_samples, d)) * (high - low))
    # The restarts mostly end at one optimum, a few 1e-6 apart: as a batch they would cost q
    # trials for one point's information. The points after the best keep a quarter of the
    # radius from every other point (seen or chosen), then the region's random points fill
    # in; only where that leaves the batch short (a small discrete box) do mere new points do.
    separation = float(np.min(radius)) / 4
    pending = np.empty((0, d)) if pending is None else np.asarray(pending).reshape(-1, d)
    avoid = np.empty((0, d)) if avoid is None else np.asarray(avoid).reshape(-1, d)
    chosen: list[np.ndarray] = []
    for min_distance in (separation, DUPLICATE_TOL):
        for row in np.vstack([X, region_pool]):
            if len(chosen) == q:
                break
            taken = np.vstack([seen, *chosen]) if chosen else seen
            apart = (
                is_new(row, taken, tol=min_distance)
                if chosen
                else is_new(row, seen, tol=min(first_apart, min_distance))
                and is_new(row, pending, tol=min_distance)
            ) and is_new(row, avoid, tol=PENDING_TOL)
            if apart:
                chosen.append(row)
    return np.array(chosen).reshape(-1, d)


def _greedy_batch(
    acqf: Any,
    pool: np.ndarray,
    *,
    q: int,
    seen: np.ndarray,
    tkwargs: dict[str, Any],
    avoid: np.ndarray | None = None,
) -> np.ndarray:
    """Pick up to ``q`` new points of ``pool`` one by one, each maximizing the joint value;
    none within :data:`PENDING_TOL` of ``avoid`` while enough others are left."""
    import torch

    d = pool.shape[1]
    pool = _unique_rows(pool)
    keep = [i for i in range(pool.shape[0]) if is_new(pool[i], seen)]
    pool = pool[keep]
    if avoid is not None and avoid.shape[0]:
        apart = np.array([is_new(row, avoid, tol=PENDING_TOL) for row in pool], dtype=bool)
        if apart.sum() >= min(q, pool.shape[0]):
            pool = pool[apart]
    chosen = np.zeros((0, d))
    with torch.no_grad():
        for _ in range(min(q, pool.shape[0])):
            base = torch.as_tensor(chosen, **tkwargs).unsqueeze(0).expand(pool.shape[0], -1, -1)
            cand = torch.as_tensor(pool, **tkwargs).unsqueeze(1)
            values = _evaluate_in_chunks(acqf, torch.cat([base, cand], dim=1))
            best = int(torch.argmax(values).item())
            chosen = np.vstack([chosen, pool[best]])
            pool = np.delete(pool, best, axis=0)
    return chosen


def _evaluate_in_chunks(acqf: Any, X: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    import torch

    return torch.cat([acqf(X[i : i + chunk]) for i in range(0, X.shape[0], chunk)])


def _unique_rows(X: np.ndarray) -> np.ndarray:
    """Rows of ``X`` without repeats, in first-seen order (lattice points are exact)."""
    _, first = np.unique(np.round(X, 12), axis=0, return_index=True)
    return X[np.sort(first)]


def _all_new(X: np.ndarray, seen: np.ndarray) -> bool:
    return all(is_new(row, seen) and is_new(row, X[:i]) for i, row in enumerate(X))


def _model_device(model: Any) -> torch.device:
    # a CachedGP has buffers only
    return next(itertools.chain(model.parameters(), model.buffers())).device
