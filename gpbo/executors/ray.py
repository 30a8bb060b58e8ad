"""The Ray executor: each trial a Ray task, on a Ray cluster or on a local Ray instance.

Where the work happens: the driver (the process calling :func:`gpbo.optimize`) keeps the
journal, the study and the GP; every trial runs as a Ray task on whichever node of the cluster
has the resources it asks for (``gpus_per_trial`` GPUs, fractions allowed, and
``cpus_per_trial`` CPUs).

Connecting (at :meth:`Ray.start`):

* Ray already initialised in this process (the caller ran ``ray.init()``): that connection
  is used as it is, and left alone at the end.
* ``address="auto"`` (the default; ``None`` means the same): ``ray.init(address="auto")``
  joins the cluster named by ``RAY_ADDRESS``, or else the one ``ray start`` runs on this
  machine (the address it recorded in ``/tmp/ray/ray_current_cluster``). Where neither is
  there, a local Ray instance is started with ``ray.init(address="local")`` (a log line says
  so), not joined from another process: ``ray.init(address="auto")`` alone would join the
  local instance another study started, which stops with that study. A cluster that is found
  but refuses the connection (a missing authentication token, say) is an error, never a local
  fallback.
* ``address="local"``: always a new local instance.
* ``address="host:port"``: that cluster; failing to reach it is an error, never a silent
  local fallback.

What the executor's ``ray.init`` made, its :meth:`Ray.shutdown` undoes with ``ray.shutdown()``:
a local instance is stopped; for a cluster, only this driver's connection (and its job: tasks
still running, the objective in the object store) ends, never the cluster itself.

Ray's token authentication is left as Ray configures it (``RAY_AUTH_MODE``, the token in
``~/.ray/auth_token`` or ``RAY_AUTH_TOKEN``); gpbo never passes an option that turns it off.

Inside a task the objective runs through :func:`gpbo.executors.base.evaluate`, so
:func:`gpbo.device` and :func:`gpbo.current_trial` work as in a local worker. A task with GPUs
sees only its own (Ray sets ``CUDA_VISIBLE_DEVICES``) and gets the device ``"cuda:0"``; a task
without sets ``CUDA_VISIBLE_DEVICES=""`` before the objective is unpickled and gets ``"cpu"``.
Outcomes name where the trial ran: ``"ray:<node-ip>:cuda:<gpu ids as Ray numbers them on that
node>"`` or ``"ray:<node-ip>:cpu"`` (``"ray"`` while that is not known yet).

Semantics match the process executor: an exception fails the trial with its traceback; a task
whose worker process or node dies fails with Ray's reason (Ray's own retries are off unless
``max_retries`` asks for them); a trial past its ``timeout`` (counted from when the objective
first started, not from when the task was queued or while the worker loaded it; Ray's retries
of a trial share its one timeout, since a retry does not report its start again) is cancelled with
``ray.cancel(force=True)`` and recorded as ``timeout``; :meth:`Ray.interrupt` cancels every
task and reports it ``interrupted``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from gpbo._optional import import_optional
from gpbo.exceptions import GpboError
from gpbo.executors.base import (
    Executor,
    Objective,
    OutcomeQueue,
    OutcomeStatus,
    TrialOutcome,
    TrialTask,
    check_number,
    describe_exception,
    evaluate,
)

__all__ = ["Ray"]

logger = logging.getLogger(__name__)

# Longest single blocking call into Ray, so that Ctrl+C and deadlines are seen promptly.
_MAX_NAP_S = 1.0
# Seconds interrupt() waits for cancelled tasks, so a result that just arrived is kept.
_CANCEL_GRACE_S = 2.0
_UNKNOWN_PLACE = "ray"
# How ray.init(address="auto") says that it found no cluster at all (lower case).
_NONE_FOUND = "could not find any running ray instance"

_AUTH_HINT = (
    "if the cluster uses token authentication, this machine needs its token: the file "
    "~/.ray/auth_token (or RAY_AUTH_TOKEN_PATH) or the RAY_AUTH_TOKEN variable, with "
    "RAY_AUTH_MODE=token when the address is given explicitly"
)


def _import_ray() -> ModuleType:
    return import_optional("ray", extra="ray", feature="the Ray executor")


@dataclass(eq=False)
class _Running:
    """The driver's record of one submitted task."""

    task: TrialTask
    ref: Any  # the task's ObjectRefGenerator: a "started" item, then an "outcome" item
    submitted_at: float  # wall clock
    place: str = _UNKNOWN_PLACE  # where it runs, once known
    pid: int | None = None
    started_at: float | None = None  # wall clock of the worker, once started
    deadline: float | None = None  # monotonic, once started


class Ray(Executor):
    """Run each trial as a Ray task, on a Ray cluster or on a local Ray instance.

    Args:
        address: ``"auto"`` (the running cluster, or a new local instance when none is found
            and ``RAY_ADDRESS`` is unset; ``None`` means the same), ``"local"`` (always a new
            local instance), or a cluster's ``"host:port"``. Ignored when Ray is already
            initialised in this process.
        gpus_per_trial: GPUs each trial asks Ray for; fractions share a GPU (``0.5``: two
            trials per GPU). ``None``: 1 where the cluster has a GPU when the study starts,
            else 0.
        cpus_per_trial: CPUs each trial asks Ray for (torch in the trial uses that many
            threads, at least one).
        max_retries: How often Ray re-runs a trial whose worker or node died. 0 (default):
            never, the trial is recorded as failed. The retries run within the trial's one
            ``trial_timeout``, counted from its first start.
        max_concurrent: Trials running at once. ``None``: as many as the cluster's resources
            hold when the study starts (total GPUs / ``gpus_per_trial``, total CPUs /
            ``cpus_per_trial``, whichever is smaller; at least 1). The ``devices`` and
            ``workers_per_device`` of :func:`gpbo.optimize` describe the driver's machine and
            do not limit this executor.
        runtime_env: A Ray runtime environment for the trials (e.g. ``{"working_dir": ".",
            "env_vars": {...}}``), so that nodes get the objective's code. Passed to
            ``ray.init`` when the executor connects; for tasks only (where Ray allows no local
            paths) when Ray was already initialised.
        init_kwargs: Further keyword arguments for ``ray.init`` (e.g. ``{"num_cpus": 8}`` for a
            local instance, ``{"namespace": ...}``).
        start_timeout: Seconds a Ray worker may take to load the objective when the study
            starts (a check that it can be imported there at all).

    Raises:
        MissingDependencyError: Ray is not installed (the ``ray`` extra).
        GpboError: An option is out of range (the message names it).

    Example:
        >>> executor = Ray(address="auto", gpus_per_trial=1)  # doctest: +SKIP
        >>> gpbo.optimize(train, space, n_trials=64, batch_size=8,
        ...               executor=executor)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        address: str | None = "auto",
        gpus_per_trial: float | None = None,
        cpus_per_trial: float = 1,
        max_retries: int = 0,
        max_concurrent: int | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise GpboError(
                f"Ray(address=...) must be 'auto', 'local' or 'host:port', got {address!r}"
            )
        self.address = "auto" if address is None else address.strip()
        self.gpus_per_trial = (
            None if gpus_per_trial is None else _check_amount("gpus_per_trial", gpus_per_trial)
        )
        self.cpus_per_trial = _check_amount("cpus_per_trial", cpus_per_trial)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise GpboError(f"Ray(max_retries=...) must be an int >= 0, got {max_retries!r}")
        self.max_retries = max_retries
        if max_concurrent is not None and (
            isinstance(max_concurrent, bool)
            or not isinstance(max_concurrent, int)
            or max_concurrent < 1
        ):
            raise GpboError(
                f"Ray(max_concurrent=...) must be a positive int or None, got {max_concurrent!r}"
            )
        self.max_concurrent = max_concurrent
        for name, value in (("runtime_env", runtime_env), ("init_kwargs", init_kwargs)):
            if value is not None and not isinstance(value, Mapping):
                raise GpboError(f"Ray({name}=...) must be a mapping or None, got {value!r}")
        self.runtime_env = None if runtime_env is None else dict(runtime_env)
        self.init_kwargs = {} if init_kwargs is None else dict(init_kwargs)
        if "address" in self.init_kwargs:
            raise GpboError("pass the address as Ray(address=...), not in init_kwargs")
        self.start_timeout = _check_amount("start_timeout", start_timeout, positive=True)
        self._ray = _import_ray()
        self._initialized_ray = False  # this executor called ray.init (shutdown undoes it)
        self._local = False  # ... and started a local instance with it
        self._remote: Any = None
        self._payload_ref: Any = None
        self._metric = "value"
        self._gpus = 0.0
        self._limit = 1
        self._running: dict[int, _Running] = {}
        self._cancelled: list[Any] = []  # refs of cancelled tasks, drained to silence Ray
        self._outcomes = OutcomeQueue()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, objective: Objective, *, slots: Sequence[str], metric: str) -> None:
        """Connect to Ray, send the objective, and check that a worker can load it.

        Args:
            objective: The user's function of one parameter dict; sent with cloudpickle
                (functions of an importable module by reference: the module must be
                importable on every node, e.g. through ``runtime_env={"working_dir": ...}``).
            slots: The driver's device slots; not used (see ``max_concurrent``).
            metric: Key of the metric when the objective returns a mapping.

        Raises:
            GpboError: Ray cannot be reached; the objective cannot be serialized; or a Ray
                worker could not load it (its traceback is in the message).
        """
        if self._remote is not None:
            raise GpboError("Ray.start() was called twice; call shutdown() before again")
        if not callable(objective):
            raise GpboError(f"the objective must be callable, got {type(objective).__name__}")
        ray = self._ray
        try:
            payload = ray.cloudpickle.dumps(objective, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise GpboError(
                f"the objective {_name_of(objective)!r} cannot be serialized for Ray workers "
                f"({type(exc).__name__}: {exc}); define it at module level in an importable "
                "module, or keep what it refers to picklable"
            ) from exc
        task_env = self._connect()
        try:
            self._metric = metric
            resources = ray.cluster_resources()
            self._gpus = self._resolve_gpus(resources)
            self._limit = self.max_concurrent or _capacity(
                resources, gpus=self._gpus, cpus=self.cpus_per_trial
            )
            self._warn_if_infeasible(resources)
            options: dict[str, Any] = {
                "num_gpus": self._gpus,
                "num_cpus": self.cpus_per_trial,
                "max_retries": self.max_retries,
            }
            if task_env is not None:
                options["runtime_env"] = task_env
            try:
                self._remote = ray.remote(**options)(_trial_task)
            except (TypeError, ValueError) as exc:
                raise GpboError(f"Ray refused the trial's resources {options}: {exc}") from exc
            self._payload_ref = ray.put(payload)
            self._check_objective_loads(task_env)
        except BaseException:
            self.shutdown()
            raise
        logger.info(
            "Ray executor: up to %d trial(s) at once, each with %g GPU(s) and %g CPU(s), on a "
            "cluster of %g CPU(s) and %g GPU(s)%s",
            self._limit,
            self._gpus,
            self.cpus_per_trial,
            resources.get("CPU", 0),
            resources.get("GPU", 0),
            " (a local Ray instance started by gpbo)" if self._local else "",
        )
        if len(slots) > 1 and self.max_concurrent is None:
            logger.debug("the Ray executor does not use the driver's slots %s", list(slots))

    def describe(self, slots: Sequence[str]) -> str:
        """Where trials will run: Ray tasks, not the driver's ``slots``."""
        if self.address == "local":
            where = "a new local Ray instance"
        elif self.address == "auto":
            where = "the Ray cluster found (or a new local instance)"
        else:
            where = f"the Ray cluster at {self.address}"
        at_once = f"up to {self.max_concurrent}" if self.max_concurrent else "as many as fit"
        return f"Ray tasks on {where}, {at_once} at once"

    def shutdown(self) -> None:
        """Cancel tasks still running; ``ray.shutdown()`` if this executor called ``ray.init``.

        A local instance this executor started (``address="local"``, or ``"auto"`` finding
        none) is stopped; a cluster it connected to keeps running (this driver disconnects); a
        connection the caller made stays as it is. Trials still running are dropped (call
        :meth:`interrupt` first to have them reported). Safe to call twice and after an error.
        """
        ray = self._ray
        running, self._running = self._running, {}
        for run in running.values():
            with contextlib.suppress(Exception):
                ray.cancel(run.ref, force=True)
        self._cancelled.clear()
        self._outcomes.clear()
        self._payload_ref = None
        self._remote = None
        if self._initialized_ray:
            self._initialized_ray = False
            with contextlib.suppress(Exception):
                ray.shutdown()
            what = "stopped the local Ray instance" if self._local else "disconnected from Ray"
            logger.info("%s", what)

    # -- running trials ---------------------------------------------------------------------

    @property
    def free_slots(self) -> int:
        """How many more tasks :meth:`submit` accepts now."""
        if self._remote is None:
            return 0
        return max(0, self._limit - self.running)

    @property
    def running(self) -> int:
        """How many submitted tasks have not been reported by :meth:`wait` yet."""
        return len(self._running) + len(self._outcomes)

    def submit(self, task: TrialTask) -> str:
        """Send ``task`` to Ray as a task of its own.

        Args:
            task: The trial to run.

        Returns:
            ``"ray"``: where the task runs is known once it starts (outcomes name the node).

        Raises:
            GpboError: Called before :meth:`start`, or with no free slot.
        """
        if self._remote is None:
            raise GpboError("Ray.submit() was called before start()")
        if self.free_slots <= 0:
            raise GpboError(
                f"Ray.submit() was called with no free slot ({self.running} trial(s) running); "
                "wait() for one to end first"
            )
        try:
            ref = self._remote.remote(
                self._payload_ref, task, self._metric, self._gpus, self.cpus_per_trial
            )
        except Exception as exc:  # e.g. parameters that cannot be serialized
            self._outcomes.append(
                TrialOutcome(
                    number=task.number,
                    status="failed",
                    error="the trial could not be submitted to Ray: " + describe_exception(exc),
                    device=_UNKNOWN_PLACE,
                    started_at=time.time(),
                    finished_at=time.time(),
                )
            )
            return _UNKNOWN_PLACE
        self._running[task.number] = _Running(task=task, ref=ref, submitted_at=time.time())
        return _UNKNOWN_PLACE

    def wait(self, timeout: float | None = None) -> list[TrialOutcome]:
        """Block until at least one trial ended, or ``timeout`` seconds passed.

        Args:
            timeout: Seconds to wait at most; ``None`` to wait for an outcome.

        Returns:
            The outcomes of the trials that ended (empty on timeout or when nothing runs). A
            dead worker or node, or a timeout, is an outcome, never an exception.
        """
        self._outcomes.acknowledge()
        end = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
        while True:
            self._poll()
            if self._outcomes:
                return self._outcomes.hand_over()
            if not self._running:
                return []
            now = time.monotonic()
            if end is not None and now >= end:
                return []
            wake = [now + _MAX_NAP_S] if end is None else [end, now + _MAX_NAP_S]
            wake += [r.deadline for r in self._running.values() if r.deadline is not None]
            self._ray.wait(
                [r.ref for r in self._running.values()],
                num_returns=1,
                timeout=max(0.0, min(wake) - now),
            )

    def interrupt(self) -> list[TrialOutcome]:
        """Cancel every running task (``ray.cancel(force=True)``) and report it.

        Returns those trials as ``interrupted``, together with the outcomes of trials that
        ended before (or while being cancelled) and were not reported yet.
        """
        ray = self._ray
        self._poll()
        victims = list(self._running.values())
        for run in victims:
            with contextlib.suppress(Exception):
                ray.cancel(run.ref, force=True)
        end = time.monotonic() + _CANCEL_GRACE_S
        while self._running and time.monotonic() < end:
            refs = [r.ref for r in self._running.values()]
            ready, _ = ray.wait(
                refs, num_returns=len(refs), timeout=max(0.0, min(0.2, end - time.monotonic()))
            )
            ready_ids = {id(ref) for ref in ready}
            for run in list(self._running.values()):
                if id(run.ref) in ready_ids:
                    self._read(run, failure="interrupted")
        for run in list(self._running.values()):
            self._finish(run, "interrupted", None)
        self._cancelled.clear()
        return self._outcomes.take_all()

    # -- internals --------------------------------------------------------------------------

    def _connect(self) -> dict[str, Any] | None:
        """Initialise Ray as ``address`` says; returns a runtime env still to give the tasks."""
        ray = self._ray
        if ray.is_initialized():
            logger.info("using the Ray connection this process already has")
            return self.runtime_env
        kwargs = dict(self.init_kwargs)
        if self.runtime_env is not None:
            kwargs["runtime_env"] = self.runtime_env
        if self.address == "local":
            self._start_local(kwargs, "started a local Ray instance")
            return None
        may_fall_back = self.address == "auto" and not os.environ.get("RAY_ADDRESS")
        if may_fall_back and _no_cluster_recorded(ray):
            # ray.init(address="auto") would also join any Ray instance it finds running here,
            # such as the local one another study's ray.init() started, which stops (and fails
            # this study's trials) when that study ends
            self._start_local(
                kwargs,
                "no Ray cluster started with `ray start` on this machine and RAY_ADDRESS "
                "unset; starting a local Ray instance",
            )
            return None
        try:
            self._init(address=self.address, fall_back=may_fall_back, **kwargs)
            self._initialized_ray = True
        except ConnectionError:
            self._start_local(
                kwargs,
                "no running Ray cluster found (RAY_ADDRESS unset, no `ray start` on this "
                "machine); starting a local Ray instance",
            )
        return None

    def _start_local(self, kwargs: dict[str, Any], message: str) -> None:
        """Start a local Ray instance of this driver's own (stopped at :meth:`shutdown`)."""
        logger.info(message)
        self._init(address="local", **kwargs)
        self._initialized_ray = self._local = True
        _make_token_private()

    def _init(self, *, address: str, fall_back: bool = False, **kwargs: Any) -> None:
        """``ray.init``; a ``ConnectionError`` passes through only where ``fall_back``."""
        try:
            self._ray.init(address=address, **kwargs)
        except ConnectionError as exc:
            # Only "no cluster found" falls back to a local instance; a cluster that was found
            # but refused the connection (e.g. a missing authentication token) is an error.
            if fall_back and _NONE_FOUND in str(exc).lower():
                raise
            raise GpboError(
                f"could not connect to the Ray cluster at {self._shown_address()} "
                f"({type(exc).__name__}: {exc}); check that it runs (`ray status`), and "
                + _AUTH_HINT
            ) from exc
        except Exception as exc:
            raise GpboError(
                f"ray.init(address={address!r}) failed for the Ray executor "
                f"({type(exc).__name__}: {exc}); " + _AUTH_HINT
            ) from exc

    def _shown_address(self) -> str:
        env = os.environ.get("RAY_ADDRESS")
        if self.address == "auto" and env:
            return f"RAY_ADDRESS={env!r}"
        return repr(self.address)

    def _resolve_gpus(self, resources: Mapping[str, float]) -> float:
        if self.gpus_per_trial is not None:
            return self.gpus_per_trial
        return 1.0 if resources.get("GPU", 0) > 0 else 0.0

    def _warn_if_infeasible(self, resources: Mapping[str, float]) -> None:
        for name, need in (("GPU", self._gpus), ("CPU", self.cpus_per_trial)):
            have = float(resources.get(name, 0))
            if need > 0 and have + 1e-9 < need:
                logger.warning(
                    "each trial asks Ray for %g %s(s) but the cluster has %g; trials wait until "
                    "a node that has them joins (set gpus_per_trial/cpus_per_trial to fit)",
                    need,
                    name,
                    have,
                )

    def _check_objective_loads(self, task_env: dict[str, Any] | None) -> None:
        """Load the objective once in a Ray worker, so that a broken import fails up front."""
        ray = self._ray
        options: dict[str, Any] = {"num_cpus": 0, "num_gpus": 0, "max_retries": 0}
        if task_env is not None:
            options["runtime_env"] = task_env
        ref = ray.remote(**options)(_load_objective).remote(self._payload_ref)
        try:
            error = ray.get(ref, timeout=self.start_timeout)
        except ray.exceptions.GetTimeoutError:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
            raise GpboError(
                f"no Ray worker loaded the objective within start_timeout={self.start_timeout:g}"
                " s; raise start_timeout if its module (or the runtime_env) is that slow to set "
                "up"
            ) from None
        except ray.exceptions.RayError as exc:
            raise GpboError(f"a Ray worker could not load the objective: {exc}") from exc
        if error is not None:
            raise GpboError(
                "a Ray worker could not load the objective (it is unpickled there, which imports "
                "its module: install that code on every node or ship it with "
                "runtime_env={'working_dir': ...}):\n" + error
            )

    def _poll(self) -> None:
        """Take in whatever happened without blocking: starts, results, deaths, deadlines."""
        ray = self._ray
        if self._cancelled:
            ready, rest = ray.wait(self._cancelled, num_returns=len(self._cancelled), timeout=0)
            for ref in ready:
                _drain(ray, ref)
            self._cancelled = list(rest)
        while self._running:  # each pass takes one item of each ready task; a task has few
            refs = [r.ref for r in self._running.values()]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            if not ready:
                break
            ready_ids = {id(ref) for ref in ready}
            for run in list(self._running.values()):
                if id(run.ref) in ready_ids:
                    self._read(run, failure="failed")
        now = time.monotonic()
        for run in list(self._running.values()):
            if run.deadline is not None and now >= run.deadline:
                logger.warning(
                    "trial %d on %s ran past its timeout of %g s; cancelling its Ray task",
                    run.task.number,
                    run.place,
                    run.task.timeout,
                )
                with contextlib.suppress(Exception):
                    ray.cancel(run.ref, force=True)
                self._cancelled.append(run.ref)
                self._finish(
                    run,
                    "timeout",
                    f"the trial ran past its trial_timeout of {run.task.timeout:g} s and was "
                    "stopped (ray.cancel(force=True) killed its worker process)",
                )

    def _read(self, run: _Running, *, failure: OutcomeStatus) -> None:
        """Take the next item of a ready task: its start, its outcome, or how it died."""
        ray = self._ray
        try:
            item = ray.get(next(run.ref))
        except StopIteration:
            self._finish(run, failure, "the Ray task ended without reporting a result")
            return
        except Exception as exc:
            self._finish(run, failure, None if failure == "interrupted" else _why(exc, run))
            return
        kind = item[0]
        if kind == "started":
            info = item[1]
            run.place = _place(info["ip"], info["gpu_ids"])
            run.pid = info["pid"]
            run.started_at = info["time"]
            limit = run.task.timeout
            if limit is not None and math.isfinite(limit):
                run.deadline = time.monotonic() + max(0.0, limit)
            logger.debug("trial %d started on %s", run.task.number, run.place)
        elif kind == "outcome":
            outcome: TrialOutcome = item[1]
            outcome.device = run.place
            del self._running[run.task.number]
            self._outcomes.append(outcome)
        else:  # pragma: no cover - the task yields nothing else
            self._finish(run, "failed", f"unexpected message from the Ray task: {item!r}")

    def _finish(self, run: _Running, status: OutcomeStatus, error: str | None) -> None:
        """Report ``run`` as ended with ``status`` (the driver's own outcome)."""
        self._running.pop(run.task.number, None)
        self._outcomes.append(
            TrialOutcome(
                number=run.task.number,
                status=status,
                error=error,
                device=run.place,
                started_at=run.started_at or run.submitted_at,
                finished_at=time.time(),
            )
        )


# -- driver-side helpers --------------------------------------------------------------------


def _check_amount(name: str, value: Any, *, positive: bool = False) -> float:
    return check_number("Ray", name, value, positive=positive)


def _capacity(resources: Mapping[str, float], *, gpus: float, cpus: float) -> int:
    """Trials the cluster's total resources hold at once (at least 1)."""
    limits = [
        int(float(resources.get(name, 0)) / need + 1e-9)
        for name, need in (("GPU", gpus), ("CPU", cpus))
        if need > 0
    ]
    if not limits:  # a trial asking for nothing: one per CPU
        limits = [int(resources.get("CPU", 1))]
    return max(1, min(limits))


def _place(ip: str, gpu_ids: Sequence[Any]) -> str:
    if gpu_ids:
        return f"ray:{ip}:cuda:{','.join(str(i) for i in gpu_ids)}"
    return f"ray:{ip}:cpu"


def _why(exc: BaseException, run: _Running) -> str:
    """A failed trial's error for an exception Ray raised in the driver."""
    kind = type(exc).__name__
    text = str(exc).strip()
    if "WorkerCrashed" in kind or "NodeDied" in kind or "ActorDied" in kind:
        who = f"worker process {run.pid}" if run.pid is not None else "the Ray worker"
        return f"{who} on {run.place} died while running the trial ({kind}): {text}"
    if "OutOfMemory" in kind:
        return f"out of memory: Ray's memory monitor killed the trial on {run.place}: {text}"
    return f"the Ray task of the trial failed on {run.place} ({kind}): {text}"


def _drain(ray: ModuleType, ref: Any) -> None:
    """Take the error a cancelled (ready) task left, so Ray does not report it as unhandled."""
    with contextlib.suppress(Exception):
        ray.get(next(ref), timeout=0)


def _name_of(objective: Any) -> str:
    return getattr(objective, "__qualname__", None) or type(objective).__name__


# -- inside the Ray worker ------------------------------------------------------------------


@contextlib.contextmanager
def _cuda_hidden(hide: bool) -> Iterator[None]:
    """``CUDA_VISIBLE_DEVICES=""`` for the block (a reused worker gets its value back)."""
    if not hide:
        yield
        return
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def _load_objective(payload: bytes) -> str | None:
    """The start-up check: unpickle the objective; ``None`` or the traceback."""
    with _cuda_hidden(True):
        try:
            pickle.loads(payload)
        except BaseException as exc:
            return describe_exception(exc)
    return None


def _trial_task(
    payload: bytes, task: TrialTask, metric: str, gpus: float, cpus: float
) -> Iterator[Any]:
    """The Ray task of one trial: load the objective, report the start, run, report the outcome.

    Yields ``("started", {"ip", "gpu_ids", "pid", "time"})`` once the objective is loaded (the
    trial's timeout counts from there, as in the process executor), then ``("outcome",
    TrialOutcome)``.
    """
    import ray

    from gpbo.executors.base import OutOfMemoryWatch

    where = {
        "ip": ray.util.get_node_ip_address(),
        "gpu_ids": list(ray.get_gpu_ids()) if gpus > 0 else [],
        "pid": os.getpid(),
    }
    device = "cuda:0" if gpus > 0 else "cpu"
    with _cuda_hidden(gpus <= 0):
        try:
            objective = pickle.loads(payload)
            import torch

            if cpus >= 1:
                torch.set_num_threads(int(cpus))
        except Exception as exc:
            started = time.time()
            yield ("started", {**where, "time": started})
            error = "the objective could not be loaded on the Ray worker: "
            yield ("outcome", _failed(task, device, started, error + describe_exception(exc)))
            return
        started = time.time()
        yield ("started", {**where, "time": started})
        try:
            guarded = OutOfMemoryWatch(objective)
            outcome = evaluate(guarded, task, metric=metric, device=device)
            if guarded.hit:
                outcome.error = f"out of memory: {outcome.error}"
        except Exception as exc:  # e.g. the trial directory cannot be made on this node
            outcome = _failed(task, device, started, describe_exception(exc))
    yield ("outcome", outcome)


def _failed(task: TrialTask, device: str, started: float, error: str) -> TrialOutcome:
    return TrialOutcome(
        number=task.number,
        status="failed",
        error=error,
        device=device,
        started_at=started,
        finished_at=time.time(),
    )


def _no_cluster_recorded(ray: ModuleType) -> bool:
    """Whether ``ray start`` is known to have recorded no cluster on this machine.

    Ray keeps the address in ``/tmp/ray/ray_current_cluster``, read through a private helper:
    a Ray without it, or a failure to read, counts as not known (``address="auto"`` is then
    tried as before).
    """
    try:
        return not ray._private.utils.read_ray_address()
    except Exception:  # AttributeError where the helper moved; an unreadable file
        return False


def _make_token_private() -> None:
    """Make the token file a local Ray instance wrote readable by its owner only.

    Ray writes ``~/.ray/auth_token`` (or ``RAY_AUTH_TOKEN_PATH``) on first use with the
    umask's permissions, typically world-readable: anyone on the machine could then submit
    jobs to the instance as this user.
    """
    path = os.path.expanduser(os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token")
    try:
        mode = os.stat(path).st_mode
        if mode & 0o077:
            os.chmod(path, 0o600)
            logger.info("made Ray's token file %s readable by its owner only", path)
    except OSError:  # no token file (authentication off), or not ours to change
        pass
