r"""A drop-in for ``bayes_opt`` (the ``bayesian-optimization`` package, 3.x), backed by gpbo.

Code written for ``bayes_opt`` runs unchanged once its import line reads::

    from gpbo.compat.bayes_opt import BayesianOptimization

The target is maximized, called as ``f(**params)``; ``pbounds`` keep their ``bayes_opt`` meaning
(any two numbers, as a tuple, a list or an array, a float range; ``(low, high, int)`` an
integer; any other sequence a categorical); ``.max``,
``.res``, ``suggest()``, ``register()``, ``probe()``, ``set_bounds()``, ``save_state()`` /
``load_state()`` and the per-iteration table behave as in ``bayes_opt``. The surrogate is
gpbo's BoTorch ``SingleTaskGP`` and the acquisition functions map onto BoTorch's:

- ``UpperConfidenceBound(kappa)``: ``qUpperConfidenceBound`` with ``beta = kappa ** 2`` (for one
  point, ``mean + kappa * std`` as in ``bayes_opt``);
- ``ExpectedImprovement(xi)``: ``qLogExpectedImprovement`` with ``best_f + xi``;
- ``ProbabilityOfImprovement(xi)``: ``LogProbabilityOfImprovement`` with ``best_f + xi`` for one
  point, ``qProbabilityOfImprovement`` for a batch or with points still running.

``xi`` is in the target's units, as in ``bayes_opt``; gpbo's GP sees standardized scores, so it
is divided by the standard deviation of the targets (from three targets on, when gpbo starts
standardizing them).

``ConstantLiar(base)`` keeps each suggestion pending until it is registered, so that the next
``suggest()`` goes elsewhere (BoTorch's ``X_pending`` rather than a lie); without it
``suggest()``, as in ``bayes_opt``, depends on the registered points alone.

One addition: ``maximize(..., batch_size=q, devices=..., executor=...)`` proposes ``q`` points
jointly per round (running ones as pending points) and evaluates them at the same time
through gpbo's executors, one per GPU or CPU worker.

Also here: the submodules :mod:`gpbo.compat.bayes_opt.acquisition` and
:mod:`gpbo.compat.bayes_opt.exception`, the counterparts of ``bayes_opt.acquisition`` and
``bayes_opt.exception`` (``from gpbo.compat.bayes_opt.acquisition import
UpperConfidenceBound`` works as with ``bayes_opt``). The table is in ``_table``, the
``optimizer.space`` view in ``_target_space`` and the strategy in ``_strategy``.
"""

from __future__ import annotations

import decimal
import fractions
import json
import logging
import math
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from gpbo.acquisition import AcquisitionOptions
from gpbo.compat.bayes_opt import acquisition, exception
from gpbo.compat.bayes_opt._strategy import BayesOptStrategy
from gpbo.compat.bayes_opt._table import ScreenLogger
from gpbo.compat.bayes_opt._target_space import TargetSpaceView, _array_width
from gpbo.compat.bayes_opt.acquisition import (
    AcquisitionFunction,
    ExpectedImprovement,
    ProbabilityOfImprovement,
    UpperConfidenceBound,
    _as_acquisition,
)
from gpbo.compat.bayes_opt.exception import (
    BayesianOptimizationError,
    ConstraintNotSupportedError,
    NotUniqueError,
    NoValidPointRegisteredError,
    TargetSpaceEmptyError,
    UnsupportedFeatureError,
    as_raised,
)
from gpbo.exceptions import GpboError, GpboWarning, SpaceError, SpaceExhausted, StudyError
from gpbo.executors import Executor, Serial, make_executor, resolve_slots
from gpbo.executors.base import TrialOutcome, TrialTask
from gpbo.space import Choice, Int, Param, Real, Space, _is_number
from gpbo.study import Study
from gpbo.trial import Trial

__all__ = [
    "AcquisitionFunction",
    "BayesOptStrategy",
    "BayesianOptimization",
    "BayesianOptimizationError",
    "ConstraintNotSupportedError",
    "ExpectedImprovement",
    "NoValidPointRegisteredError",
    "NotUniqueError",
    "ProbabilityOfImprovement",
    "ScreenLogger",
    "TargetSpaceEmptyError",
    "UnsupportedFeatureError",
    "UpperConfidenceBound",
    "acquisition",
    "exception",
]

logger = logging.getLogger(__name__)

#: ``bayes_opt`` names the drop-in does not provide, with what to do instead: without this,
#: ``from gpbo.compat.bayes_opt import X`` failed with Python's bare "cannot import name".
_NOT_PROVIDED = {
    "SequentialDomainReductionTransformer": "domain reduction is not supported; call "
    "set_bounds() between maximize() calls to narrow the bounds instead",
    "DomainTransformer": "domain reduction is not supported; call set_bounds() between "
    "maximize() calls to narrow the bounds instead",
    "ConstraintModel": "constrained optimization is not supported; use bayes_opt itself, or "
    "return a penalized target from f",
    "TargetSpace": "the registered points are in optimizer.space (a read-only view), "
    "optimizer.res and optimizer.max",
    "UtilityFunction": "bayes_opt 3 replaced it, as the drop-in does, with "
    "acquisition_function=UpperConfidenceBound(kappa=...) (or ExpectedImprovement(xi=...), "
    "ProbabilityOfImprovement(xi=...)) passed to BayesianOptimization",
    "JSONLogger": "bayes_opt 3 dropped the event loggers, as the drop-in does; "
    "optimizer.save_state(path) and load_state(path) keep and restore the points",
    "Events": "bayes_opt 3 dropped the event loggers, as the drop-in does; read optimizer.res "
    "after maximize(), or run suggest()/register() yourself",
    "load_logs": "bayes_opt 3 dropped the event loggers, as the drop-in does; "
    "optimizer.load_state(path) reads a file written by save_state()",
}


def __getattr__(name: str) -> Any:
    if name not in _NOT_PROVIDED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    message = f"gpbo's bayes_opt drop-in has no {name}: {_NOT_PROVIDED[name]}"
    if _called_by_from_import():
        # ``from ... import`` replaces an AttributeError's message with its own bare one
        raise ImportError(message, name=__name__)
    # hasattr() and getattr(..., default), the usual test for a bayes_opt 1.x name, catch
    # only this
    raise AttributeError(message)


def _called_by_from_import() -> bool:
    """Whether the module attribute being looked up is a ``from ... import`` statement's."""
    import dis
    import sys

    try:
        frame = sys._getframe(2)  # past __getattr__: the frame running the statement
        return frame.f_code.co_code[frame.f_lasti] == dis.opmap["IMPORT_FROM"]
    except (AttributeError, IndexError, KeyError, ValueError):  # another interpreter
        return False


# -- the objective, as executors call it ---------------------------------------------------------
class _CallWithKwargs:
    """``f(**params)`` behind gpbo's objective interface ``objective(params)``.

    A module-level class, so it pickles (to worker processes) whenever ``f`` does. Where it
    runs in this process (the serial executor), it keeps the exception ``f`` raised, so that
    :meth:`BayesianOptimization.maximize` re-raises it as ``bayes_opt`` does.
    """

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        self.raised: Exception | None = None

    def __call__(self, params: dict[str, Any]) -> Any:
        try:
            target = self.f(**_numpy_floats(params))
        except Exception as exc:
            self.raised = exc
            raise
        # bayes_opt takes what float() takes: a pass/fail bool, a Decimal (gpbo's objectives
        # refuse a bool as a likely mistake; a target here is bayes_opt's)
        if isinstance(target, (bool, np.bool_, decimal.Decimal, fractions.Fraction)):
            return float(target)
        return target

    def __getstate__(self) -> dict[str, Any]:
        return {"f": self.f, "raised": None}  # an exception need not pickle, nor be sent


# -- the optimizer --------------------------------------------------------------------------------
@dataclass
class _Item:
    """One point of a round: its parameters, and its trial where the study knows it."""

    number: int
    params: dict[str, Any]
    trial: Trial | None


class BayesianOptimization:
    r"""Maximize ``f(**params)`` over ``pbounds``, with the API of ``bayes_opt`` 3.x.

    Example:
        >>> optimizer = BayesianOptimization(
        ...     f=lambda x, y: -(x**2) - (y - 1) ** 2 + 1,
        ...     pbounds={"x": (-2, 2), "y": (-3, 3)},
        ...     random_state=1,
        ... )
        >>> optimizer.maximize(init_points=5, n_iter=10)
        >>> optimizer.max["target"]

    Args:
        f: The function to maximize, called as ``f(**params)``; ``None`` where points are only
            suggested and registered.
        pbounds: Parameter name to ``(low, high)`` (a float; also as a list or an array, as in
            ``bayes_opt``), ``(low, high, int)`` (an integer), ``(low, high, float)``, any
            other sequence of categories, or a ``gpbo.Real``/``Int``/``Choice``.
        acquisition_function: ``UpperConfidenceBound``, ``ExpectedImprovement`` or
            ``ProbabilityOfImprovement`` (ours or ``bayes_opt``'s); default
            ``UpperConfidenceBound(kappa=2.576)``.
        constraint: Must be ``None`` (constrained optimization is not supported).
        random_state: An int seed, a ``numpy.random.RandomState`` (an int seed is drawn from
            it), or ``None`` for a fresh seed.
        verbose: ``0`` silent, ``1`` new maxima only, ``2`` every point.
        bounds_transformer: Must be ``None`` (domain reduction is not supported).
        allow_duplicate_points: Register a point seen before instead of raising
            :class:`NotUniqueError`. The guided points are new ones while the space has any
            left; once a small discrete space is used up, ``maximize`` and ``suggest``
            go on with random points seen before (a noisy target measured again), where
            without this flag ``maximize`` stops with a warning.

    Raises:
        ConstraintNotSupportedError: ``constraint`` was given.
        UnsupportedFeatureError: ``bounds_transformer`` or an unsupported acquisition was given.
        SpaceError: ``pbounds`` is not a valid space (a ``ValueError``, naming the parameter).
    """

    #: The acquisition's optimization budget (tests shrink it, as BoTorch's do).
    _acquisition_options: ClassVar[AcquisitionOptions] = AcquisitionOptions()

    def __init__(
        self,
        f: Callable[..., float] | None,
        pbounds: Mapping[str, Any],
        # positional too, in bayes_opt's order: this signature is bayes_opt's, not gpbo's style
        acquisition_function: AcquisitionFunction | None = None,
        constraint: Any = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 2,
        bounds_transformer: Any = None,
        allow_duplicate_points: bool = False,
    ) -> None:
        if constraint is not None:
            raise as_raised(ConstraintNotSupportedError)(
                f"constraint={constraint!r}: gpbo's bayes_opt drop-in does not support "
                "constrained optimization; use bayes_opt itself, or return a penalized target"
            )
        if bounds_transformer is not None:
            raise UnsupportedFeatureError(
                f"bounds_transformer={bounds_transformer!r}: gpbo's bayes_opt drop-in does not "
                "support domain reduction; call set_bounds() between maximize() calls instead"
            )
        if f is not None and not callable(f):
            raise TypeError(f"f must be callable or None, got {f!r}")
        if not isinstance(verbose, int):
            raise TypeError(f"verbose must be an int (0, 1 or 2), got {verbose!r}")
        self._f = f
        self._space = Space(_bayes_opt_params(pbounds))
        self._keys = self._space.names
        self._seed = _seed_from(random_state)
        self._rng = np.random.default_rng(np.random.SeedSequence(self._seed, spawn_key=(0xB0,)))
        self._acquisition = _as_acquisition(acquisition_function)
        self._allow_duplicate_points = bool(allow_duplicate_points)
        self._verbose = verbose
        self.logger = ScreenLogger(verbose=verbose)
        self.is_constrained = False
        self._queue: deque[dict[str, Any]] = deque()
        self._records: list[tuple[dict[str, Any], float]] = []
        self._seen: set[tuple[float, ...]] = set()
        self.n_duplicate_points = 0
        self._suggested: list[Trial] = []
        options = type(self)._acquisition_options
        self._strategy = BayesOptStrategy(
            n_init=1,
            num_restarts=options.num_restarts,
            raw_samples=options.raw_samples,
            maxiter=options.maxiter,
            acquisition=self._acquisition,
        )
        self._study = self._new_study()

    # -- bayes_opt's properties ---------------------------------------------------------------
    @property
    def space(self) -> TargetSpaceView:
        """The registered points and the bounds, as ``bayes_opt``'s ``TargetSpace`` shows them."""
        return TargetSpaceView(self)

    @property
    def acquisition_function(self) -> Any:
        """The acquisition function: the object passed in (a ``bayes_opt`` one is kept in step
        with the drop-in's copy), or the drop-in's default."""
        return getattr(self._acquisition, "_mirror", None) or self._acquisition

    @property
    def constraint(self) -> None:
        """Always ``None``: constraints are not supported."""
        return None

    @property
    def max(self) -> dict[str, Any] | None:
        """``{"target": ..., "params": {...}}`` of the best point inside the current bounds, or
        ``None`` when there is none (as ``bayes_opt``)."""
        best: tuple[dict[str, Any], float] | None = None
        for params, target in self._records:
            if (
                not math.isnan(target)
                and self._in_bounds(params)
                and (best is None or target > best[1])
            ):
                best = (params, target)
        if best is None:
            return None
        return {"target": np.float64(best[1]), "params": _numpy_floats(best[0])}

    @property
    def res(self) -> list[dict[str, Any]]:
        """Every registered point, in order: ``[{"target": ..., "params": {...}}, ...]``."""
        return [
            {"target": np.float64(target), "params": _numpy_floats(params)}
            for params, target in self._records
        ]

    # -- points -------------------------------------------------------------------------------
    def register(
        self,
        params: Mapping[str, Any] | Sequence[float] | np.ndarray,
        target: float,
        constraint_value: Any = None,
    ) -> None:
        """Record an observation made elsewhere.

        Args:
            params: A dict of the parameters, or an array in ``space.keys`` order.
            target: The target's value there.
            constraint_value: Must be ``None`` (constraints are not supported).

        Raises:
            NotUniqueError: The point was registered before and ``allow_duplicate_points`` is
                ``False``.
        """
        if constraint_value is not None:
            raise as_raised(ConstraintNotSupportedError)(
                "constraint_value: gpbo's bayes_opt drop-in does not support constraints"
            )
        point = self._normalize(params)
        key = self._key(point)
        if key in self._seen and not self._allow_duplicate_points:
            raise as_raised(NotUniqueError)(
                f"Data point {np.array(key)} is not unique. You can set "
                '"allow_duplicate_points=True" to avoid this error'
            )
        value = float(target)
        if not math.isfinite(value):
            # one path raised from gpbo's add(), the other recorded a failed trial and put the
            # NaN in res; bayes_opt takes it, and its next GP fit fails on it
            raise ValueError(
                f"register(): the target at {point} is {value}, not a finite number; register "
                "finite targets only (a failed evaluation: leave the point out, or register a "
                "penalized target)"
            )
        if self._in_bounds(point):
            trial = self._pop_suggestion(point)
            if trial is not None:
                self._study.tell(trial, value)
            else:
                self._study.add(point, value)
        else:
            warnings.warn(
                f"data point {point} is outside the bounds {self._bounds_text()}; it is kept in "
                "res but left out of max and of the GP",
                GpboWarning,
                stacklevel=2,
            )
        self._append(point, value)

    def probe(
        self, params: Mapping[str, Any] | Sequence[float] | np.ndarray, lazy: bool = True
    ) -> None:
        """Evaluate the target at ``params``: at the next :meth:`maximize` (``lazy=True``) or now.

        A point registered before is not evaluated again unless ``allow_duplicate_points``.
        """
        point = self._normalize(params)
        if lazy:
            self._queue.append(point)
            return
        if self._key(point) in self._seen and not self._allow_duplicate_points:
            logger.debug("probe(%s): already registered, not evaluated again", point)
            return
        self.register(point, self._call_f(point))

    def random_sample(self, n: int = 1) -> list[dict[str, Any]]:
        """``n`` points drawn uniformly from the bounds (log-uniformly for ``log=True``)."""
        draws = self._rng.random((n, self._space.n_columns))
        return self._space.decode(draws)

    def suggest(self) -> dict[str, Any]:
        """The next point to probe (a random one while nothing is registered).

        As in ``bayes_opt``, the point depends on the registered points alone: asked again
        before anything is registered, ``suggest()`` returns it again (code that looks at a
        suggestion, then asks for the one to evaluate, gets the same point). With
        ``acquisition_function=ConstantLiar(...)`` a suggestion instead stays pending until it
        is registered, and the next ones go elsewhere: several points evaluated at once.
        """
        if not self._records:
            return _numpy_floats(self.random_sample(1)[0])
        try:
            trial = self._study.ask(1)[0]
        except SpaceExhausted:
            # a small discrete space, every point registered: bayes_opt suggests one again
            logger.info("suggest(): every point of the space is registered; a random repeat")
            return _numpy_floats(self.random_sample(1)[0])
        self._acquisition._after_suggestion()
        if isinstance(self._acquisition, acquisition.ConstantLiar):
            self._suggested.append(trial)
        else:
            # no pending point: a suggestion never registered (looked at, then asked again)
            # stayed pending for good and pushed every later suggestion away from the best
            self._study = self._new_study()
        return _numpy_floats(trial.params)

    # -- the loop -----------------------------------------------------------------------------
    def maximize(
        self,
        init_points: int = 5,
        n_iter: int = 25,
        *,
        batch_size: int = 1,
        devices: str | int | Sequence[str] = "auto",
        executor: str | Executor = "auto",
    ) -> None:
        """Probe the queued points and ``init_points`` random ones, then ``n_iter`` guided ones.

        Args:
            init_points: Random points to probe first (at least one when nothing is registered
                or queued).
            n_iter: Points chosen by the acquisition function.
            batch_size: Points chosen jointly and evaluated at the same time per round (gpbo's
                addition; 1 is ``bayes_opt``'s loop).
            devices: Where the points run: ``"auto"``, an int, or device names (as
                :func:`gpbo.optimize`).
            executor: ``"auto"``, ``"serial"``, ``"process"`` or an executor object.
                ``"auto"`` with ``batch_size=1`` runs ``f`` in this process, as ``bayes_opt``
                does; with a batch, as :func:`gpbo.optimize` chooses.

        Raises:
            Exception: What ``f`` raised, where it ran in this process (the default with
                ``batch_size=1``), as ``bayes_opt`` raises it; the round's other points that
                finished are registered first.
            StudyError: ``f`` returned a non-number, NaN or infinity, or raised in a worker
                process (the message quotes the error and its traceback); the points that
                finished are registered first.
        """
        _check_int("init_points", init_points, minimum=0)
        _check_int("n_iter", n_iter, minimum=0)
        _check_int("batch_size", batch_size, minimum=1)
        if self._f is None:
            raise ValueError("No target function has been provided.")
        slots = resolve_slots(devices)
        if isinstance(executor, str) and executor == "auto" and batch_size == 1:
            runner: Executor = Serial()
            slots = slots[:1]
        else:
            runner = make_executor(executor, slots=slots)
        call = _CallWithKwargs(self._f)
        runner.start(call, slots=slots, metric="value")
        self.logger.log_optimization_start(self._keys)
        if not self._queue and not self._records:
            init_points = max(init_points, 1)
        self._queue.extend(self.random_sample(init_points) if init_points else [])
        iteration = 0
        try:
            while self._queue or iteration < n_iter:
                queued = self._take_queued(batch_size)
                n_guided = max(0, min(batch_size - len(queued), n_iter - iteration))
                try:
                    items = self._ask(queued, n_guided)
                except SpaceExhausted:
                    warnings.warn(
                        f"maximize() stops after {len(self._records)} registered points: every "
                        "point of the space is registered (allow_duplicate_points=True "
                        "evaluates points again)",
                        GpboWarning,
                        stacklevel=2,
                    )
                    break
                iteration += n_guided
                self._run(runner, items, call)
        except BaseException:
            self._abandon(runner)
            raise
        finally:
            runner.shutdown()
        self.logger.log_optimization_end()

    def set_bounds(self, new_bounds: Mapping[str, Any]) -> None:
        """Change the bounds of some parameters (the same kind of parameter, new range).

        Points registered so far stay in :attr:`res`; those outside the new bounds leave
        :attr:`max` (as in ``bayes_opt``) and the GP. A categorical may gain categories or
        list them in another order; it may drop only categories no registered or queued point uses
        (``save_state`` writes a point's category as a one-hot column of the current list).

        Raises:
            SpaceError: An unknown parameter, another kind of parameter, or a dropped category
                that a registered or queued (lazily probed) point uses.
        """
        unknown = [k for k in new_bounds if k not in self._space.params]
        if unknown:
            raise SpaceError(
                f"set_bounds: unknown parameters {unknown}; the space has {self._keys}"
            )
        new_params = _bayes_opt_params(new_bounds)
        merged: dict[str, Any] = {k: new_params.get(k, self._space[k]) for k in self._keys}
        space = Space(merged)
        for key in new_bounds:
            old, new = self._space[key], space[key]
            if type(old) is not type(new) or (
                isinstance(old, Choice) and old.ordinal != new.ordinal  # type: ignore[attr-defined]
            ):
                raise SpaceError(
                    f"Parameter type {type(new).__name__} of new bounds does not match parameter "
                    f"type {type(old).__name__} of old bounds (parameter {key!r})"
                )
            if isinstance(old, Choice):
                self._check_dropped_categories(key, old, new)  # type: ignore[arg-type]
        self._space = space
        # a point's identity is its one-hot row, which follows the order of the categories
        self._seen = {self._key(params) for params, _ in self._records}
        self._study = self._new_study()

    def _check_dropped_categories(self, key: str, old: Choice, new: Choice) -> None:
        """Refuse new categories of ``key`` that leave out one a registered or queued point
        uses."""
        dropped = {i for i, v in enumerate(old.values) if new.index(v) is None}
        points = [params for params, _ in self._records] + list(self._queue)
        using = [params for params in points if old.index(params[key]) in dropped]
        if using:
            indices = {old.index(params[key]) for params in using}
            used = [v for i, v in enumerate(old.values) if i in indices]
            raise SpaceError(
                f"set_bounds: the new categories of {key!r} ({list(new.values)}) leave out "
                f"{used}, which {len(using)} registered or probed point(s) use; keep those "
                "categories (a categorical may gain categories or be reordered), or start a "
                "new optimizer and register the points you keep"
            )

    def set_gp_params(self, **params: Any) -> None:
        """Accepted and ignored, with a warning: gpbo fits its own BoTorch ``SingleTaskGP``."""
        warnings.warn(
            f"set_gp_params({', '.join(sorted(params))}) is ignored: gpbo fits a BoTorch "
            "SingleTaskGP (Matern-5/2, outcomes standardized, hyperparameters by maximum "
            "likelihood), not scikit-learn's GaussianProcessRegressor",
            GpboWarning,
            stacklevel=2,
        )

    def predict(
        self, params: Any, return_std: bool = False, return_cov: bool = False, fit_gp: bool = True
    ) -> Any:
        """Not provided by the drop-in (gpbo's GP sees warped scores)."""
        raise UnsupportedFeatureError(
            "predict() is not provided by gpbo's bayes_opt drop-in; the GP is fitted to "
            "standardized, warped scores, not to the targets"
        )

    # -- state ----------------------------------------------------------------------------------
    def save_state(self, path: str | PathLike[str]) -> None:
        """Write the registered points and settings to a JSON file (``bayes_opt``'s layout).

        ``params`` rows are ``bayes_opt``'s float arrays (a float or int per parameter, one-hot
        columns for a categorical), so either package's ``load_state`` reads the points; the
        gpbo seed is kept under ``"gpbo"``.
        """
        state = {
            "pbounds": {k: _bounds_json(p) for k, p in self._space.params.items()},
            "transformed_bounds": None,
            "keys": list(self._keys),
            "params": [list(self._key(params)) for params, _ in self._records],
            "target": [target for _, target in self._records],
            "constraint_values": None,
            # bayes_opt's loader builds its Matern kernel from this block, so a state saved here
            # carries its defaults (gpbo's own GP does not read them)
            "gp_params": dict(_BAYES_OPT_GP_PARAMS, kernel=dict(_BAYES_OPT_GP_PARAMS["kernel"])),
            "allow_duplicate_points": self._allow_duplicate_points,
            "verbose": self._verbose,
            "random_state": None,
            "acquisition_params": self._acquisition.get_acquisition_params(),
            "gpbo": {"seed": self._seed, "space": self._space.to_dict()},
        }
        Path(path).write_text(json.dumps(state, indent=2))

    def load_state(self, path: str | PathLike[str]) -> None:
        """Register the points of a state file written by :meth:`save_state` (this package's or
        ``bayes_opt``'s) and restore the acquisition parameters.

        Raises:
            SpaceError: The file's parameter names differ from this optimizer's.
        """
        state = json.loads(Path(path).read_text())
        keys = list(state.get("keys", []))
        if keys != self._keys:
            raise SpaceError(
                f"the state in {str(path)!r} has the parameters {keys}, this optimizer {self._keys}"
            )
        saved = state.get("gpbo") or {}
        if not self._records and isinstance(saved.get("seed"), int):
            self._seed = saved["seed"]
            self._study = self._new_study()
        # a row's one-hot columns follow the categories as the saving optimizer listed them
        # (set_bounds may reorder them): read with this one's order, relu came back as tanh
        layout = self._space
        if isinstance(saved.get("space"), Mapping):
            try:
                layout = Space(saved["space"])
            except SpaceError:
                logger.info("the space recorded in %s is not readable; its rows are read with "
                            "this optimizer's", path)
        for row, target in zip(state["params"], state["target"], strict=True):
            self.register(_row_to_params(layout, row), target)
        # Random points from here on come from a stream of their own: the saved run's (or the
        # constructor's, with the same seed) would draw the loaded points again, which were
        # then skipped as duplicates: maximize(init_points=3) evaluated nothing new.
        self._rng = np.random.default_rng(
            np.random.SeedSequence(self._seed, spawn_key=(0xB0, len(self._records)))
        )
        acquisition_params = state.get("acquisition_params")
        if acquisition_params:
            try:
                self._acquisition.set_acquisition_params(acquisition_params)
            except KeyError:
                warnings.warn(
                    f"the acquisition parameters in {str(path)!r} ({acquisition_params}) do not "
                    f"fit {type(self._acquisition).__name__}; they are ignored",
                    GpboWarning,
                    stacklevel=2,
                )

    def __repr__(self) -> str:
        return (
            f"BayesianOptimization(keys={self._keys}, points={len(self._records)}, "
            f"acquisition_function={self._acquisition!r})"
        )

    # -- internals ------------------------------------------------------------------------------
    def _new_study(self) -> Study:
        """A study of the current space holding the registered points inside it."""
        self._suggested = []
        study = Study(self._space, direction="maximize", strategy=self._strategy, seed=self._seed)
        for params, target in self._records:
            if self._in_bounds(params):
                study.add(params, target)
        return study

    def _call_f(self, params: dict[str, Any]) -> Any:
        if self._f is None:
            raise ValueError("No target function has been provided.")
        return self._f(**_numpy_floats(params))

    def _normalize(
        self, params: Mapping[str, Any] | Sequence[float] | np.ndarray
    ) -> dict[str, Any]:
        """``params`` as a dict in key order (from a dict, or a ``bayes_opt`` float array)."""
        if isinstance(params, Mapping):
            if set(params) != set(self._keys):
                raise SpaceError(
                    f"Parameters' keys ({dict(params)}) do not match the expected set of keys "
                    f"({self._keys})."
                )
            return {k: _normalize_value(k, p, params[k]) for k, p in self._space.params.items()}
        return _row_to_params(self._space, params)

    def _key(self, params: Mapping[str, Any]) -> tuple[float, ...]:
        """The point as ``bayes_opt``'s float array (its identity for duplicates)."""
        row: list[float] = []
        for key, param in self._space.params.items():
            value = params[key]
            if isinstance(param, Choice):
                index = param.index(value)
                row += [1.0 if i == index else 0.0 for i in range(len(param.values))]
            else:
                row.append(float(value))
        return tuple(row)

    def _in_bounds(self, params: Mapping[str, Any]) -> bool:
        try:
            self._space.check(params)
        except SpaceError:
            return False
        return True

    def _bounds_text(self) -> str:
        return ", ".join(f"{k}: {_bounds_json(p)}" for k, p in self._space.params.items())

    def _append(self, params: dict[str, Any], target: float) -> None:
        key = self._key(params)
        if key in self._seen:  # allowed (register refuses one otherwise): counted, as bayes_opt
            self.n_duplicate_points += 1
            logger.warning(
                "data point %s is not unique; %d duplicates registered",
                params,
                self.n_duplicate_points,
            )
        self._records.append((params, target))
        self._seen.add(key)
        self.logger.log_optimization_step(
            self._keys, {"target": target, "params": params}, self.max
        )

    #: A registered point is the suggestion it lies this close to in the unit cube (max norm):
    #: a suggestion rounded (to 2 decimals, to an int on a range of 100) or passed through
    #: float32 before :meth:`register` is still that suggestion, and stops counting as a
    #: pending point.
    #: The GP then has the target at the suggested point, at most 1% of each range away from
    #: the registered one (``res`` and ``max`` have the registered point); a suggestion left
    #: pending by a rounding further off stays pending, and the suggestions go around it.
    _SUGGESTION_TOLERANCE: ClassVar[float] = 1e-2

    def _pop_suggestion(self, point: Mapping[str, Any]) -> Trial | None:
        """The outstanding suggestion nearest ``point`` (within the tolerance), taken off."""
        open_ = [
            (i, t) for i, t in enumerate(self._suggested) if t.status in ("pending", "running")
        ]
        if not open_:
            return None
        rows = self._space.encode([t.params for _, t in open_])
        distance = np.max(np.abs(rows - self._space.encode([dict(point)])[0]), axis=1)
        nearest = int(np.argmin(distance))
        if distance[nearest] > self._SUGGESTION_TOLERANCE:
            return None
        return self._suggested.pop(open_[nearest][0])

    def _take_queued(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` queued points, skipping ones registered (or taken) before unless
        duplicates are allowed."""
        taken: list[dict[str, Any]] = []
        keys: set[tuple[float, ...]] = set()
        while self._queue and len(taken) < n:
            point = self._queue.popleft()
            key = self._key(point)
            if not self._allow_duplicate_points and (key in self._seen or key in keys):
                logger.debug("queued point %s was registered before; not evaluated again", point)
                continue
            taken.append(point)
            keys.add(key)
        return taken

    def _ask(self, queued: list[dict[str, Any]], n_guided: int) -> list[_Item]:
        """The round's points: the queued ones, then ``n_guided`` proposed jointly with them."""
        inside = [p for p in queued if self._in_bounds(p)]
        outside = [p for p in queued if not self._in_bounds(p)]
        for point in outside:
            warnings.warn(
                f"probed point {point} is outside the bounds {self._bounds_text()}; it is "
                "evaluated and kept in res, but left out of max and of the GP",
                GpboWarning,
                stacklevel=3,
            )
        for point in inside:
            # _take_queued has applied allow_duplicate_points, bayes_opt's own rule
            self._study.enqueue(point, skip_if_seen=False)
        try:
            trials = self._study.ask(len(inside) + n_guided) if inside or n_guided else []
        except SpaceExhausted:
            if not self._allow_duplicate_points:
                raise
            trials = []  # nothing was queued (a queued point is always taken)
        for _ in trials[len(inside) :]:
            self._acquisition._after_suggestion()
        missing = len(inside) + n_guided - len(trials)
        if missing and self._allow_duplicate_points:
            # the space is used up: bayes_opt measures points again, as suggest() does here
            logger.info("every point of the space is registered; %d random repeat(s)", missing)
            for point in self.random_sample(missing):
                self._study.enqueue(point, skip_if_seen=False)
            trials += self._study.ask(missing)
        items = [_Item(number=t.number, params=dict(t.params), trial=t) for t in trials]
        items += [_Item(number=-1 - i, params=p, trial=None) for i, p in enumerate(outside)]
        return items

    def _run(self, runner: Executor, items: list[_Item], call: _CallWithKwargs) -> None:
        """Evaluate a round on the executor; register each point as it finishes."""
        waiting = deque(items)
        running: dict[int, _Item] = {}
        failures: list[tuple[_Item, TrialOutcome]] = []
        raised: Exception | None = None
        while waiting or running:
            while waiting and runner.free_slots > 0:
                item = waiting.popleft()
                trial = item.trial
                task = TrialTask(
                    number=item.number,
                    params=dict(item.params),
                    seed=trial.seed if trial is not None else None,
                    dir=str(self._study.trial_dir(trial)) if trial is not None else None,
                )
                device = runner.submit(task)
                if trial is not None:
                    self._study.mark_running(
                        trial, device=device, in_driver=runner.runs_in_driver
                    )
                running[item.number] = item
            for outcome in runner.wait():
                item = running.pop(outcome.number)
                # in this process the executor ran one call since the last look (serial)
                exception, call.raised = call.raised, None
                if outcome.status == "complete" and outcome.value is not None:
                    if item.trial is not None:
                        self._study.tell(item.trial, outcome.value, metrics=outcome.metrics)
                    self._append(item.params, outcome.value)
                    continue
                if item.trial is not None:
                    status = "timeout" if outcome.status == "timeout" else "failed"
                    self._study.tell(item.trial, error=outcome.error or status, status=status)
                failures.append((item, outcome))
                if raised is None and exception is not None and outcome.status == "failed":
                    raised = exception
        if raised is not None:
            raise raised
        if failures:
            item, outcome = failures[0]
            raise StudyError(
                f"the target function failed at {item.params} ({len(failures)} of "
                f"{len(items)} points of the round failed):\n{outcome.error}"
            )

    def _abandon(self, runner: Executor) -> None:
        """After an interruption or an error: stop what runs and forget unfinished trials."""
        try:
            runner.interrupt()
        except Exception:  # the executor may already be broken; the study is rebuilt anyway
            logger.debug("executor interrupt failed", exc_info=True)
        self._study = self._new_study()


# -- helpers -------------------------------------------------------------------------------------
#: ``bayes_opt``'s default GP settings, as its ``save_state`` writes them (JSON form).
_BAYES_OPT_GP_PARAMS: dict[str, Any] = {
    "kernel": {"length_scale": 1.0, "length_scale_bounds": [1e-05, 100000.0], "nu": 2.5},
    "alpha": 1e-06,
    "normalize_y": True,
    "n_restarts_optimizer": 5,
}


def _numpy_floats(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with its floats as ``np.float64``, the type ``bayes_opt`` hands ``f`` and
    shows in ``max``/``res``/``suggest()`` (``x.round(3)`` works on one, not on a float); a
    subclass of ``float``, so arithmetic and JSON are the same."""
    return {
        key: np.float64(value) if type(value) is float else value for key, value in params.items()
    }


def _row_to_params(space: Space, params: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """A ``bayes_opt`` float array (one-hot columns for a categorical) as a dict of ``space``'s
    values."""
    row = np.asarray(params, dtype=np.float64).ravel()
    width = sum(_array_width(p) for p in space.params.values())
    if row.size != width:
        raise SpaceError(
            f"Size of array ({row.size}) is different than the expected number of "
            f"parameters ({width})."
        )
    out: dict[str, Any] = {}
    start = 0
    for key, param in space.params.items():
        cols = row[start : start + _array_width(param)]
        start += cols.size
        if isinstance(param, Choice):  # one-hot, a single column for a single category too
            out[key] = param.values[int(np.argmax(cols))]
        else:
            out[key] = _normalize_value(key, param, float(cols[0]))
    return out


def _bayes_opt_params(pbounds: Mapping[str, Any]) -> dict[str, Any]:
    """``pbounds`` read with ``bayes_opt``'s rule (``TargetSpace.make_params``).

    Two numbers in any sequence (a list or a numpy array too) are a float range, where gpbo's
    own shorthand reads a list as choices; ``(low, high, float)`` is a float range,
    ``(low, high, int)`` an integer one; any other sequence holds categories. gpbo parameters
    and anything else pass through to :class:`~gpbo.Space`, which names what is wrong.
    """
    out: dict[str, Any] = {}
    for name, spec in pbounds.items():
        if isinstance(spec, np.ndarray):
            spec = spec.tolist()
        if isinstance(spec, range):  # bayes_opt reads one as the list of its values
            spec = list(spec)
        if isinstance(spec, (list, tuple)):
            numbers_ = [_is_number(v) for v in spec]
            float_range = len(spec) == 3 and spec[-1] is float and all(numbers_[:2])
            if (len(spec) == 2 and all(numbers_)) or float_range:
                spec = Real(float(spec[0]), float(spec[1]))
            elif len(spec) == 3 and spec[-1] is int and all(numbers_[:2]):
                spec = Int(int(spec[0]), int(spec[1]))
            else:
                spec = Choice(list(spec))
        out[name] = spec
    return out


def _seed_from(random_state: Any) -> int:
    """An int seed from ``bayes_opt``'s ``random_state``: an int, one drawn from a
    ``RandomState``, or a fresh one for ``None``."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % 2**63)  # type: ignore[operator]
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state) % 2**63
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**63 - 1, dtype=np.int64))
    raise TypeError(
        f"random_state should be an instance of np.random.RandomState, an int, or None; got "
        f"{random_state!r}"
    )


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise GpboError(f"{name} must be an int >= {minimum}, got {value!r}")


def _normalize_value(name: str, param: Param, value: Any) -> Any:
    """A value in its parameter's type, bounds unchecked (points may lie outside them)."""
    if isinstance(param, Real):
        return float(value)
    if isinstance(param, Int):
        return round(float(value))
    return param.check_value(name, value)


def _bounds_json(param: Param) -> list[Any]:
    if isinstance(param, (Real, Int)):
        return [param.low, param.high]
    return list(param.values)  # type: ignore[attr-defined]
