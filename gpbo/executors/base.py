"""The executor contract: how trials get run, wherever they run.

An executor knows trials as data (:class:`TrialTask` in, :class:`TrialOutcome` out); it never
sees the study, the strategy or the GP.
"""

from __future__ import annotations

import contextlib
import decimal
import difflib
import logging
import math
import numbers
import os
import re
import signal
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gpbo.context import TrialContext, trial_context
from gpbo.exceptions import GpboError, StopStudy, UnusableResultError
from gpbo.report import describe_slots, shorten

logger = logging.getLogger(__name__)

OutcomeStatus = Literal["complete", "failed", "timeout", "interrupted"]
Objective = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class TrialTask:
    """One trial to run, as an executor receives it.

    Attributes:
        number: The trial's number.
        params: Its parameters.
        seed: The trial's own seed.
        dir: The trial's directory (created before the objective runs).
        timeout: Seconds the objective may run before it is stopped; ``None`` for no limit.
        receipt: Where a worker process writes the outcome before it reports it (see
            :mod:`gpbo.receipt`); ``None`` for none. Only executors whose
            :attr:`Executor.writes_receipts` is true write it.
    """

    number: int
    params: dict[str, Any]
    seed: int | None = None
    dir: str | None = None
    timeout: float | None = None
    receipt: str | None = None


@dataclass
class TrialOutcome:
    """How a trial ended, as an executor reports it."""

    number: int
    status: OutcomeStatus
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    device: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    unusable: bool = False
    """The trial failed for an unreadable metric (:class:`~gpbo.exceptions.UnusableResultError`)."""


class TrialTimeout(BaseException):
    """Raised inside an objective that ran past its ``trial_timeout`` (serial executor).

    A ``BaseException`` so that a broad ``except Exception`` in training code does not swallow
    it.
    """


def parse_objective_value(
    returned: Any,
    *,
    metric: str,
    metric_hint: str = "pass metric= naming the key to optimize",
    source: str = "the objective returned",
    verb: str = "return",
    trial: int | None = None,
) -> tuple[float, dict[str, float]]:
    """Read the metric (and extra numbers) from what an objective returned.

    Args:
        returned: A number (a Python or NumPy number, or a tensor or array of one element), or
            a mapping holding ``metric`` plus any extra numbers.
        metric: The key of the metric in a returned mapping.
        metric_hint: How the caller names another key, for the message when ``metric`` is
            missing.
        source: What the messages say ``returned`` is (``add()`` calls no objective).
        verb: How the messages tell the caller to pass a usable value.
        trial: The trial's number, for the warnings.

    Returns:
        The metric as a float, and the extra numbers.

    Raises:
        UnusableResultError: The metric is missing or not a number (a ``ValueError``).
        ValueError: The metric is NaN or infinite (the message says which). An extra that is
            NaN, infinite or not a number is left out, with a warning (once per key and process
            for a non-number: a path or a name returned beside the loss every trial is not
            worth a warning each time).
    """
    extras: dict[str, float] = {}
    if isinstance(returned, Mapping):
        if metric not in returned:
            # the keys last: a progress line keeps a long message's start and end
            raise UnusableResultError(
                f"{source} a mapping without the metric {metric!r}; {verb} "
                f"{{{metric!r}: value, ...}} or {metric_hint} (its keys: "
                f"{sorted(map(str, returned))})"
            )
        for key, extra in returned.items():
            if key == metric:
                continue
            number = _as_float(extra)
            where = "" if trial is None else f"trial {trial}: "
            if number is None:
                _warn_not_recorded(str(key), extra, where)
            elif not math.isfinite(number):
                # a diverged run's accuracy, say: the trial stands on its metric; a NaN extra
                # would only be refused by the journal later
                logger.warning(
                    "%sextra number %r = %s is not finite; not recorded", where, key, number
                )
            else:
                extras[str(key)] = number
        returned = returned[metric]
    value = _as_float(returned)
    if value is None:
        shape = getattr(returned, "shape", None)
        what = f"of shape {tuple(shape)}" if shape is not None else f"({type(returned).__name__})"
        raise UnusableResultError(
            f"{source} {_short_repr(returned, 200)} {what}, not a number; "
            f"{verb} a float (or a mapping holding the metric)"
            + ("; reduce the array to one number, e.g. loss.mean()" if shape else "")
        )
    if not math.isfinite(value):
        if isinstance(returned, numbers.Integral) and not isinstance(returned, bool):
            raise ValueError(  # not "returned inf": it was a finite, exact number
                f"{source} an integer of {len(str(abs(int(returned))))} digits, beyond a "
                "float's range (about 1.8e308); the metric must be a finite float"
            )
        raise ValueError(f"{source} {value}, which is not a finite number")
    return value, extras


_EXTRAS_WARNED: set[str] = set()


def _warn_not_recorded(key: str, extra: Any, where: str) -> None:
    if key in _EXTRAS_WARNED:
        return
    _EXTRAS_WARNED.add(key)
    logger.warning(
        "%sextra value %r = %s (%s) is not a number; not recorded (only numbers are kept with "
        "a trial; write other results to gpbo.current_trial().dir; said once per key in each "
        "process)",
        where,
        key,
        _short_repr(extra),
        type(extra).__name__,
    )


def _short_repr(x: Any, limit: int = 60) -> str:
    try:
        return shorten(repr(x), limit)
    except Exception:  # a broken __repr__ of the user's object
        return f"<{type(x).__name__}>"


def _as_float(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (numbers.Real, decimal.Decimal)):  # Decimal is no numbers.Real
        try:
            return float(x)
        except OverflowError:  # an int beyond a float's range: not a finite number
            return math.inf if x > 0 else -math.inf
    # torch tensors and numpy scalars/arrays of one element (a loss of shape (1,), say), the
    # values float() itself accepts from them; a larger array is ambiguous and is refused
    item = getattr(x, "item", None)
    if callable(item) and _one_element(x):
        try:
            got = item()
        except Exception:
            return None
        return None if isinstance(got, bool) else _as_float(got)
    return None


def _one_element(x: Any) -> bool:
    numel = getattr(x, "numel", None)  # torch: size is a method
    if callable(numel):
        try:
            return int(numel()) == 1
        except Exception:
            return False
    size = getattr(x, "size", None)  # numpy
    return isinstance(size, int) and size == 1


def evaluate(objective: Objective, task: TrialTask, *, metric: str, device: str) -> TrialOutcome:
    """Run ``objective`` on ``task`` in this process and report how it ended.

    Sets the trial context (:func:`gpbo.device`, :func:`gpbo.current_trial`) for the call. An
    exception or an unusable return value fails the trial with the reason, and so does
    ``sys.exit()`` (argparse's error, a script's ``main``: it would end the study in the
    driver, or a worker with an exit code that said nothing); none escapes except
    ``KeyboardInterrupt`` (and :class:`TrialTimeout`, which the caller that armed it handles).

    Args:
        objective: The user's function of one parameter dict.
        task: The trial to run.
        metric: Key of the metric when the objective returns a mapping.
        device: The device as this process sees it (``"cpu"``, ``"cuda:0"``).
    """
    import torch

    trial_dir = Path(task.dir) if task.dir else Path.cwd()
    trial_dir.mkdir(parents=True, exist_ok=True)
    context = TrialContext(
        number=task.number,
        device=torch.device(device),
        seed=task.seed,
        dir=trial_dir,
        params=dict(task.params),
    )
    started = time.time()
    try:
        try:
            with trial_context(context):
                returned = objective(dict(task.params))
        finally:
            if task.dir:
                remove_if_empty(trial_dir)
        try:
            value, extras = parse_objective_value(returned, metric=metric, trial=task.number)
        except ValueError as refused:
            # gpbo's own check of the value: its traceback would show gpbo's code, not the user's
            raise _RefusedValueError(
                f"ValueError: {refused}", unusable=isinstance(refused, UnusableResultError)
            ) from None
    except (KeyboardInterrupt, TrialTimeout):
        raise
    except (Exception, SystemExit) as exc:
        # a command's error for a missing metric is an UnusableResultError too
        unusable = isinstance(exc, UnusableResultError) or (
            isinstance(exc, _RefusedValueError) and exc.unusable
        )
        if isinstance(exc, SystemExit):
            error = f"the objective exited (SystemExit: {exc.code!r}); it must return"
        elif isinstance(exc, _RefusedValueError):
            error = str(exc)
        elif isinstance(exc, StopStudy):
            # the objective may run in a worker far from the driver: a callback ends a study
            first, _, rest = describe_exception(exc).partition("\n")
            error = (
                f"{first} (raised in the objective, StopStudy fails its trial only; to end the "
                "study, raise it in a callback: optimize(..., callbacks=[fn]), where "
                "fn(study, trial) sees each finished trial)" + (f"\n{rest}" if rest else "")
            )
        else:
            error = describe_exception(exc)
            hint = _parameter_name_hint(exc, task.params)
            if hint:
                first, newline, rest = error.partition("\n")
                error = f"{first} ({hint}){newline}{rest}"
        return TrialOutcome(
            number=task.number,
            status="failed",
            error=error,
            device=device,
            started_at=started,
            finished_at=time.time(),
            unusable=unusable,
        )
    return TrialOutcome(
        number=task.number,
        status="complete",
        value=value,
        metrics=extras,
        device=device,
        started_at=started,
        finished_at=time.time(),
    )


def _parameter_name_hint(exc: BaseException, params: Mapping[str, Any]) -> str | None:
    """For a ``KeyError`` of a name close to a parameter's (``params["learning_rate"]`` for
    ``lr`` and ``learning_rte`` for ``learning_rate``): which one was meant."""
    if not isinstance(exc, KeyError) or len(exc.args) != 1:
        return None
    key = exc.args[0]
    if not isinstance(key, str) or key in params:
        return None
    names = [str(name) for name in params]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    close = close or [
        name
        for name in names
        if name in key or key in name or _initials(key) == name or _initials(name) == key
    ][:1]
    if not close:
        return None
    return (
        f"no parameter is named {key!r}: did you mean {close[0]!r}? the trial's parameters: "
        f"{', '.join(names)}"
    )


def _initials(name: str) -> str:
    """``"lr"`` of ``"learning_rate"``; the name itself where it has one word."""
    words = [word for word in re.split(r"[_\W]+", name) if word]
    return "".join(word[0] for word in words) if len(words) > 1 else name


class _RefusedValueError(Exception):
    """An objective's return value that is not a usable metric (the message says why)."""

    def __init__(self, message: str, *, unusable: bool) -> None:
        super().__init__(message)
        self.unusable = unusable


def remove_if_empty(trial_dir: str | os.PathLike[str]) -> None:
    """Remove a trial's folder if the trial wrote nothing in it: a study of thousands of short
    trials left as many empty folders (12 MB for 3000, beside a 3 MB journal).

    The worker does it when the objective returns; the driver again for a trial that ended
    otherwise (a timeout or a crash kills the worker before it can).
    """
    with contextlib.suppress(OSError):  # not empty (the usual OSError), or gone already
        Path(trial_dir).rmdir()


def describe_exit(code: int | None) -> str:
    """How a process ended, from its exit status as :mod:`subprocess` and
    :mod:`multiprocessing` give it: ``"died with signal SIGSEGV (-11)"``, ``"exited with
    code 3"``."""
    if code is None:
        return "ended (exit status unknown)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            return f"died with signal {-code}"
        return f"died with signal {name} ({code})"
    return f"exited with code {code}"


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` followed by the traceback, for a trial's ``error``; without it for
    an exception never raised, or one whose class sets ``omit_traceback`` (gpbo's
    :class:`~gpbo.command.CommandError`, whose traceback is gpbo's code, not the user's)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    try:
        message = str(exc)
    except Exception as failure:
        # a broken __str__ of the user's exception must fail only its trial, not the caller
        message = f"<str() failed with {type(failure).__name__}>"
    # a private subclass shows as the public class it refines
    name = getattr(type(exc), "shown_as", None) or type(exc).__name__
    if exc.__traceback__ is None or getattr(type(exc), "omit_traceback", False) is True:
        return f"{name}: {message}"  # e.g. tell(error=ValueError(...))
    return f"{name}: {message}\n{text}"


class OutOfMemoryWatch:
    """Calls the objective and notes whether it raised a torch out-of-memory error.

    Worker-based executors use it to replace a worker after an out-of-memory error, so the slot
    gets a fresh CUDA context.
    """

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.hit = False

    def __call__(self, params: dict[str, Any]) -> Any:
        try:
            return self.objective(params)
        except BaseException as exc:
            self.hit = is_out_of_memory(exc)
            raise


def is_out_of_memory(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is torch's out-of-memory error."""
    import torch

    kinds = tuple(
        kind
        for kind in (
            getattr(torch.cuda, "OutOfMemoryError", None),
            getattr(torch, "OutOfMemoryError", None),
        )
        if isinstance(kind, type)
    )
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and kinds:
        if isinstance(exc, kinds):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class OutcomeQueue:
    """Outcomes an executor has taken in, and those its last :meth:`Executor.wait` handed over.

    A stop signal (``KeyboardInterrupt``) can land after ``wait()`` returned and before the
    driver recorded what it returned; those results would be lost and the trials run again on
    resume. So the outcomes handed over stay here until the next ``wait()`` (the driver calls
    it only after recording the last ones), and :meth:`take_all` (for ``interrupt()``) hands
    them over again; the driver skips any it did record.
    """

    def __init__(self) -> None:
        self._waiting: list[TrialOutcome] = []
        self._handed: list[TrialOutcome] = []

    def append(self, outcome: TrialOutcome) -> None:
        self._waiting.append(outcome)

    def __len__(self) -> int:
        return len(self._waiting)

    def hand_over(self) -> list[TrialOutcome]:
        """Everything waiting, for ``wait()`` to return (kept until the next ``wait()``)."""
        self._handed = self._waiting  # from this one store on, a stop signal loses nothing
        self._waiting = []
        return list(self._handed)

    def acknowledge(self) -> None:
        """``wait()`` was called again: what it handed over last time has been recorded."""
        self._handed = []

    def take_all(self) -> list[TrialOutcome]:
        """The last hand-over again, then everything waiting (for ``interrupt()``)."""
        outcomes = list(self._handed)
        outcomes += [o for o in self._waiting if all(o is not h for h in self._handed)]
        self._handed, self._waiting = [], []
        return outcomes

    def clear(self) -> None:
        self._handed, self._waiting = [], []


class Executor(ABC):
    """Runs trials on a set of slots (a device each); the base of every executor.

    Lifecycle, as :func:`gpbo.optimize` drives it:

    1. :meth:`start` once, with the objective and the slots (device names) to use. It may
       start workers and must check up front what would make every trial fail (e.g. an
       objective that cannot be sent to a worker), raising a :class:`gpbo.GpboError` that says
       how to fix it.
    2. :meth:`submit` a task while :attr:`free_slots` is positive; the executor picks the slot.
    3. :meth:`wait` returns the outcomes of trials that ended (at least one, unless the timeout
       passes first or nothing is running). Each submitted task produces exactly one outcome.
    4. :meth:`shutdown` always (also after an error); :meth:`interrupt` first when the driver
       is being stopped, which ends running trials and reports them as ``interrupted``.

    An executor must never raise for a failure of one trial: that is an outcome.
    """

    #: Trials run inside the driver's own process (a crash of the objective is the driver's).
    runs_in_driver: bool = False
    #: A trial's outcome reaches the driver through a buffer it reads between other work (a
    #: worker's pipe), so the executor writes :attr:`TrialTask.receipt` first.
    writes_receipts: bool = False

    @abstractmethod
    def start(self, objective: Objective, *, slots: Sequence[str], metric: str) -> None:
        """Prepare to run ``objective`` on ``slots`` (``"cpu"``, ``"cuda:0"``, ...)."""

    @property
    @abstractmethod
    def free_slots(self) -> int:
        """How many more tasks :meth:`submit` accepts now."""

    @property
    @abstractmethod
    def running(self) -> int:
        """How many submitted tasks have not been reported by :meth:`wait` yet."""

    @abstractmethod
    def submit(self, task: TrialTask) -> str:
        """Start ``task`` on a free slot; returns that slot's device name."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        """Block until at least one task ended (or ``timeout`` seconds passed)."""

    def interrupt(self) -> list[TrialOutcome]:
        """Stop every running task; report each as ``interrupted``."""
        return []

    def describe(self, slots: Sequence[str]) -> str:
        """Where trials will run, for the study's opening line (before :meth:`start`)."""
        return describe_slots(slots)

    def shutdown(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Release workers and resources. Safe to call twice."""


def resolve_slots(devices: Any, *, workers_per_device: int = 1) -> list[str]:
    """Turn the ``devices=`` argument into one device name per slot.

    Args:
        devices: ``"auto"`` (every visible GPU, or one CPU slot without one), an int ``n``
            (the first ``n`` GPUs, or ``n`` CPU slots without a GPU), a device name, or a list
            of names such as ``["cuda:0", "cuda:2"]`` or ``["cpu", "cpu"]``.
        workers_per_device: Slots per device.

    Returns:
        Device names, one per slot, e.g. ``["cuda:0", "cuda:0", "cuda:1", "cuda:1"]``.
    """
    if (
        isinstance(workers_per_device, bool)
        or not isinstance(workers_per_device, int)
        or (workers_per_device < 1)
    ):
        raise GpboError(f"workers_per_device must be a positive int, got {workers_per_device!r}")
    n_gpus = _visible_gpu_count()
    if devices == "auto" or devices is None:
        names = [f"cuda:{i}" for i in range(n_gpus)] or ["cpu"]
    elif isinstance(devices, int) and not isinstance(devices, bool):
        if devices < 1:
            raise GpboError(f"devices must be at least 1, got {devices}")
        if n_gpus:
            if devices > n_gpus:
                raise GpboError(
                    f"devices={devices} asks for more GPUs than the {n_gpus} visible; "
                    f"use devices<={n_gpus} or name CPU slots with devices=['cpu'] * {devices}"
                )
            names = [f"cuda:{i}" for i in range(devices)]
        else:
            names = ["cpu"] * devices
    elif isinstance(devices, str):
        names = [_check_device_name(devices, n_gpus)]
    elif isinstance(devices, Sequence) and devices:
        names = [_check_device_name(str(d), n_gpus) for d in devices]
    else:
        raise GpboError(
            f"devices={devices!r} is not understood; use 'auto', an int, or a list of device "
            "names such as ['cuda:0', 'cuda:1'] or ['cpu', 'cpu']"
        )
    return [name for name in names for _ in range(workers_per_device)]


def _check_device_name(name: str, n_gpus: int) -> str:
    name = name.strip()
    if name == "cuda":
        name = "cuda:0"
    if name == "cpu":
        return name
    if name.startswith("cuda:") and name[5:].isdigit():
        index = int(name[5:])
        if index >= n_gpus:
            raise GpboError(
                f"device {name!r} is not visible ({n_gpus} GPU(s) visible); check "
                "CUDA_VISIBLE_DEVICES or use 'cpu'"
            )
        return name
    raise GpboError(f"device {name!r} is not understood; use 'cpu' or 'cuda:N'")


def _visible_gpu_count() -> int:
    # Asking torch.cuda initialises nothing on the GPU, but importing torch is slow; skip it
    # where CUDA is hidden outright.
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_number(
    owner: str, name: str, value: Any, *, positive: bool = False, unit: str = ""
) -> float:
    """``value`` as a float, or a :class:`GpboError` naming ``owner(name=...)``: a finite
    real number (not a bool), positive or (``positive=False``) non-negative, in ``unit``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "a positive" if positive else "a non-negative"
        raise GpboError(
            f"{owner}({name}=...) must be {bound} finite number{unit and ' of ' + unit}, "
            f"got {value!r}"
        )
    return float(value)
