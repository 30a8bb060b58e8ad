"""Objectives for the worker-process tests; module level, so workers can import them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gpbo.context import current_trial, device


def sleep_and_return(params: dict[str, Any]) -> dict[str, float]:
    """Sleep ``params["seconds"]`` (default 0) and return ``params["value"]`` (default 1)."""
    time.sleep(float(params.get("seconds", 0.0)))
    return {"value": float(params.get("value", 1.0)), "pid": float(os.getpid())}


def raise_error(params: dict[str, Any]) -> float:
    """Fail with a ``ValueError``."""
    raise ValueError(f"boom from trial {current_trial().number}")


def metric_missing_unless_slow(params: dict[str, Any], *, slow_from: int | None = None) -> Any:
    """Return a mapping without the metric at once, except from trial ``slow_from`` on, which
    returns it after a second (another slot's trial completing while the first has failed)."""
    if slow_from is not None and current_trial().number >= slow_from:
        time.sleep(1.0)
        return {"value": params["x"]}
    return {"loss": 1.0}


def metric_missing_then_held(params: dict[str, Any], *, flag: str) -> Any:
    """Trial 0 returns a mapping without the metric at once; later trials wait while the file
    ``flag`` exists, then return the metric."""
    if current_trial().number == 0:
        return {"loss": 1.0}
    while os.path.exists(flag):
        time.sleep(0.05)
    return {"value": params["x"]}


class UnprintableError(Exception):
    """An exception whose ``str()`` itself fails (a ``__str__`` reading a missing attribute)."""

    def __str__(self) -> str:
        return self.detail  # type: ignore[attr-defined, no-any-return]


def raise_unprintable(params: dict[str, Any]) -> float:
    """Fail with an exception that cannot be turned into a string."""
    raise UnprintableError()


def exit_hard(params: dict[str, Any]) -> float:
    """End the worker without cleanup, exit code 3."""
    os._exit(3)


def call_sys_exit(params: dict[str, Any]) -> float:
    """``sys.exit`` with a message, as argparse's error or a script's main does."""
    raise SystemExit(params.get("message", "fatal: bad config"))


def report_start_method(params: dict[str, Any]) -> dict[str, float]:
    """The start method the trial's own processes (a DataLoader's workers) would get."""
    import multiprocessing

    return {"value": 0.0, f"start_{multiprocessing.get_start_method()}": 1.0}


def segfault(params: dict[str, Any]) -> float:
    """Kill the worker with ``SIGSEGV``, as a crash in native code would."""
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(10)
    return 0.0


def print_and_segfault(params: dict[str, Any]) -> float:
    """Say something on stderr, then crash as :func:`segfault` does."""
    print("about to crash", file=sys.stderr)
    return segfault(params)


def print_lines(params: dict[str, Any]) -> float:
    """Print as training code does: lines, a progress bar redrawn with ``\\r`` and left open
    (it is what a terminal shows at the trial's end), stderr, and a command's output."""
    number = current_trial().number
    print(f"epoch 0 of trial {number}")
    print(f"a warning of trial {number}", file=sys.stderr)
    subprocess.run(["echo", f"a command of trial {number}"], check=True)
    for percent in (10, 50, 100):
        sys.stdout.write(f"\rprogress {percent}% of trial {number}")
        sys.stdout.flush()
        time.sleep(float(params.get("seconds", 0.0)))
    return float(number)


def sigterm_self(params: dict[str, Any]) -> float:
    """Die of ``SIGTERM`` from outside gpbo, as when a scheduler stops a whole job."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    return 0.0


def train_until_sigterm(params: dict[str, Any]) -> float:
    """A training loop that catches ``SIGTERM`` (a preemption checkpoint) and returns its loss
    so far, or raises where ``params["raise"]``: not the trial's result either way."""
    import signal

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    loss = 100.0
    for _ in range(600):
        if stop:
            if params.get("raise"):
                raise RuntimeError("got SIGTERM, checkpoint saved")
            return loss
        time.sleep(0.05)
        loss *= 0.97
    return loss


def sleep_forever(params: dict[str, Any]) -> float:
    """Never return (until stopped)."""
    while True:
        time.sleep(0.1)


def spawn_child_and_hang(params: dict[str, Any]) -> float:
    """Start ``sleep 1000``, note its pid in the trial directory, then never return."""
    child = subprocess.Popen(["sleep", "1000"])
    (current_trial().dir / "child.pid").write_text(str(child.pid))
    while True:
        time.sleep(0.1)


def report_environment(params: dict[str, Any]) -> dict[str, float]:
    """What the worker sees: CUDA_VISIBLE_DEVICES, gpbo.device(), thread limits."""
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    dev = device()
    return {
        "value": 1.0,
        "cuda_visible_empty": float(visible == ""),
        "cuda_visible_zero": float(visible == "0"),
        "device_is_cpu": float(dev.type == "cpu"),
        "device_is_cuda0": float(dev == torch.device("cuda:0")),
        "torch_threads": float(torch.get_num_threads()),
        "interop_threads": float(torch.get_num_interop_threads()),
        "omp_threads": float(os.environ.get("OMP_NUM_THREADS", "-1")),
        "mkl_threads": float(os.environ.get("MKL_NUM_THREADS", "-1")),
        "worker_marker_set": float("GPBO_WORKER" in os.environ),
        "own_process_group": float(os.getpgid(0) == os.getpid()),
        "pid": float(os.getpid()),
    }


def out_of_memory(params: dict[str, Any]) -> float:
    """Raise the error torch raises when a CUDA allocation fails."""
    import torch

    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def cuda_allocate_twice_the_gpu(params: dict[str, Any]) -> float:
    """Ask CUDA for twice the GPU's memory: a real ``torch.OutOfMemoryError``."""
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    torch.empty(2 * total, dtype=torch.uint8, device="cuda")
    return 0.0


def cuda_sum(params: dict[str, Any]) -> float:
    """A small computation on the slot's GPU."""
    import torch

    return float(torch.ones(1000, device="cuda").sum().item())


def break_cuda_of_this_worker(params: dict[str, Any]) -> float:
    """Fail as a device-side assert does, leaving this process's CUDA unusable (simulated).

    After such an error every CUDA call of the process fails; a machine without a GPU fakes
    that by making this worker's torch report CUDA initialised and failing its synchronize.
    """
    import torch

    def sticky_error(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("CUDA error: device-side assert triggered")

    torch.cuda.is_initialized = lambda: True
    torch.cuda.synchronize = sticky_error
    sticky_error()
    return 0.0


def cuda_device_side_assert(params: dict[str, Any]) -> float:
    """Index out of bounds on the GPU: a device-side assert, which poisons the CUDA context."""
    import torch

    data = torch.zeros(4, device="cuda")
    return float(data[torch.tensor([100], device="cuda")].sum().item())


def cuda_allocate_and_drop(params: dict[str, Any]) -> float:
    """Allocate ``params["gib"]`` GiB on the GPU, let it go, return 0."""
    import torch

    torch.empty(int(float(params.get("gib", 1.0)) * 2**30), dtype=torch.uint8, device="cuda")
    return 0.0


def cuda_memory_reserved(params: dict[str, Any]) -> float:
    """The bytes torch's caching allocator holds on the GPU as this trial starts."""
    import torch

    return float(torch.cuda.memory_reserved())


def _fail_to_load() -> Any:
    raise ImportError("No module named 'missing_dependency_of_the_objective'")


class UnloadableObjective:
    """Pickles fine in the driver, but fails to unpickle in a worker (like a missing import)."""

    def __call__(self, params: dict[str, Any]) -> float:
        return 1.0

    def __reduce__(self) -> tuple[Any, ...]:
        return (_fail_to_load, ())


def dispatch(params: dict[str, Any]) -> Any:
    """Run the objective of this module that ``params["fn"]`` names (one executor, many tests)."""
    return globals()[params["fn"]](params)


# -- objectives of the end-to-end tests (tests/test_parallel.py, tests/test_resume.py) -------


def sphere_after_sleep(
    params: dict[str, Any],
    *,
    base: float = 0.0,
    scale: float = 0.0,
    log: bool = False,
    slow_trial: int | None = None,
    slow_for: float = 0.0,
) -> dict[str, float]:
    """Sleep ``base + scale * params["x"]`` seconds (``x`` in [0, 1]), return a quadratic.

    Bind the options with :func:`functools.partial` (which pickles by reference); ``log``
    records each run in the trial's ``attempts.jsonl`` first (see :func:`log_attempt`);
    trial number ``slow_trial`` sleeps ``slow_for`` seconds more.
    """
    if log:
        log_attempt(params)
    extra = slow_for if slow_trial is not None and current_trial().number == slow_trial else 0.0
    time.sleep(base + scale * float(params["x"]) + extra)
    return {"value": _quadratic(params), "pid": float(os.getpid())}


def _quadratic(params: dict[str, Any]) -> float:
    return (float(params["x"]) - 0.3) ** 2 + (float(params.get("y", 0.0)) - 0.6) ** 2


def log_attempt(params: dict[str, Any]) -> Path:
    """Append this run of the trial (number, params, dir, pid) to ``attempts.jsonl`` in its dir."""
    trial = current_trial()
    path = trial.dir / "attempts.jsonl"
    line = json.dumps(
        {"number": trial.number, "params": params, "dir": str(trial.dir), "pid": os.getpid()}
    )
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())
    return path


def hold_while_flag(params: dict[str, Any], *, flag: str, hold_from: int = 0) -> float:
    """Log the attempt; trials numbered ``hold_from`` or more then wait while the file ``flag``
    exists. Returns a quadratic of ``x`` and ``y``."""
    log_attempt(params)
    if current_trial().number >= hold_from:
        while os.path.exists(flag):
            time.sleep(0.05)
    return _quadratic(params)


def hang_with_child(params: dict[str, Any]) -> float:
    """Start ``sleep 1000``, write the worker's and the child's pids to the trial dir, hang."""
    child = subprocess.Popen(["sleep", "1000"])
    trial_dir = current_trial().dir
    (trial_dir / "child.pid").write_text(str(child.pid))
    (trial_dir / "worker.pid").write_text(str(os.getpid()))
    while True:
        time.sleep(0.1)


def fail_fast_but_one(params: dict[str, Any], *, held: int, flags: str) -> float:
    """Trials before ``held`` fail at once, each leaving a file in the folder ``flags``; trial
    ``held`` returns once they all have, and a second after (another slot's trial completing
    after the failures were recorded); later trials return at once."""
    number = current_trial().number
    if number < held:
        (Path(flags) / f"failed_{number}").touch()
        raise ValueError(f"diverged in trial {number}")
    if number == held:
        while len(list(Path(flags).glob("failed_*"))) < held:
            time.sleep(0.05)
        time.sleep(1.0)
    return float(params["x"])
