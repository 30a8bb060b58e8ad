"""Tests of the process executor: parallel workers, crashes, timeouts, interrupts, pickling."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gpbo.exceptions import GpboError
from gpbo.executors import _sending as sending
from gpbo.executors import process
from gpbo.executors.base import TrialOutcome, TrialTask
from gpbo.executors.process import Process, exit_if_bootstrapping_worker
from gpbo.receipt import read_receipt
from tests import objectives_for_workers as objectives

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
DRIVER_CUDA_VISIBLE = os.environ.get("CUDA_VISIBLE_DEVICES")
_numbers = itertools.count()


def task(fn: str, **params: object) -> TrialTask:
    """A task for the shared executor, whose objective dispatches on ``fn``."""
    timeout = params.pop("timeout", None)
    trial_dir = params.pop("dir", None)
    receipt = params.pop("receipt", None)
    return TrialTask(
        number=next(_numbers),
        params={"fn": fn, **params},
        dir=None if trial_dir is None else str(trial_dir),
        timeout=timeout,  # type: ignore[arg-type]
        receipt=None if receipt is None else str(receipt),
    )


def run_tasks(
    executor: Process, tasks: Sequence[TrialTask], limit: float = 30.0
) -> list[TrialOutcome]:
    """Submit ``tasks`` and return their outcomes in the same order."""
    for t in tasks:
        executor.submit(t)
    got: dict[int, TrialOutcome] = {}
    end = time.monotonic() + limit
    while len(got) < len(tasks):
        left = end - time.monotonic()
        assert left > 0, f"no outcome within {limit} s; got {got}"
        for outcome in executor.wait(timeout=left):
            got[outcome.number] = outcome
    return [got[t.number] for t in tasks]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def still_alive_after(pids: Sequence[int], seconds: float) -> list[int]:
    """The pids still running once ``seconds`` passed (returns early when none is)."""
    end = time.monotonic() + seconds
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() >= end:
            return left
        time.sleep(0.05)


def script_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS), env.get("PYTHONPATH", "")])
    env.pop("GPBO_WORKER", None)
    return env


@pytest.fixture(scope="module")
def shared() -> Iterator[Process]:
    """One executor with two CPU workers, reused by the tests that leave it usable."""
    executor = Process(grace_period=1.0, start_timeout=60.0)
    executor.start(objectives.dispatch, slots=["cpu", "cpu"], metric="value")
    yield executor
    executor.shutdown()


@pytest.fixture()
def fresh() -> Iterator[list[Process]]:
    """Executors a test starts itself; shut down whatever happens."""
    made: list[Process] = []
    yield made
    for executor in made:
        executor.shutdown()


# -- options --------------------------------------------------------------------------------


def test_options_are_keyword_only_and_validated() -> None:
    with pytest.raises(TypeError):
        Process(1.0)  # type: ignore[misc]
    with pytest.raises(GpboError, match="grace_period"):
        Process(grace_period=-1.0)
    with pytest.raises(GpboError, match="start_timeout"):
        Process(start_timeout=0)
    with pytest.raises(GpboError, match="start_timeout"):
        Process(start_timeout=float("nan"))
    with pytest.raises(GpboError, match="grace_period"):
        Process(grace_period=True)  # type: ignore[arg-type]
    executor = Process(grace_period=0, start_timeout=5)
    assert (executor.grace_period, executor.start_timeout) == (0.0, 5.0)
    assert executor.free_slots == 0
    assert executor.running == 0


def test_unknown_slot_is_refused_before_any_worker_starts() -> None:
    executor = Process()
    with pytest.raises(GpboError, match="'tpu:0'"):
        executor.start(objectives.sleep_and_return, slots=["tpu:0"], metric="value")
    with pytest.raises(GpboError, match="at least one slot"):
        executor.start(objectives.sleep_and_return, slots=[], metric="value")
    assert executor.worker_pids == []


def test_gpu_slot_maps_to_the_drivers_visible_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpbo.executors.process import _slot_device

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert _slot_device("cpu") == ("cpu", "")
    assert _slot_device("cuda:2") == ("cuda:0", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # the driver sees physical GPUs 3 and 5
    assert _slot_device("cuda:1") == ("cuda:0", "5")
    with pytest.raises(GpboError, match="not visible"):
        _slot_device("cuda:2")


def test_exit_if_bootstrapping_worker_does_nothing_in_the_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GPBO_WORKER", raising=False)
    assert exit_if_bootstrapping_worker() is None


# -- trials on the shared executor ----------------------------------------------------------


def test_two_trials_run_in_parallel(shared: Process) -> None:
    run_tasks(shared, [task("sleep_and_return"), task("sleep_and_return")])  # both warm
    assert shared.free_slots == 2
    started = time.monotonic()
    outcomes = run_tasks(
        shared,
        [
            task("sleep_and_return", seconds=1.0, value=2.0),
            task("sleep_and_return", seconds=1.0, value=3.0),
        ],
    )
    elapsed = time.monotonic() - started
    assert elapsed < 1.9, f"two 1-s trials on two slots took {elapsed:.2f} s"
    assert [o.status for o in outcomes] == ["complete", "complete"]
    assert [o.value for o in outcomes] == [2.0, 3.0]
    assert [o.device for o in outcomes] == ["cpu", "cpu"]
    assert outcomes[0].metrics["pid"] != outcomes[1].metrics["pid"]
    assert all(o.started_at is not None and o.finished_at is not None for o in outcomes)
    assert shared.running == 0 and shared.free_slots == 2


def test_worker_environment(shared: Process) -> None:
    outcomes = run_tasks(shared, [task("report_environment"), task("report_environment")])
    share = float(max(1, process._usable_cpus() // 2))
    for outcome in outcomes:
        assert outcome.status == "complete", outcome.error
        assert outcome.device == "cpu"
        m = outcome.metrics
        assert m["cuda_visible_empty"] == 1.0  # a CPU slot sees no GPU
        assert m["device_is_cpu"] == 1.0
        assert m["torch_threads"] == share
        assert m["interop_threads"] == share  # its own pool too, not one per core
        assert m["omp_threads"] == share and m["mkl_threads"] == share
        assert m["worker_marker_set"] == 0.0  # not inherited by what the objective starts
        assert m["own_process_group"] == 1.0  # setsid
    assert "GPBO_WORKER" not in os.environ  # the driver's environment is restored
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == DRIVER_CUDA_VISIBLE


def test_exception_fails_the_trial_with_its_traceback(shared: Process) -> None:
    (outcome,) = run_tasks(shared, [task("raise_error")])
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("ValueError: boom from trial")
    assert "Traceback" in outcome.error and "objectives_for_workers.py" in outcome.error
    assert outcome.device == "cpu"


def test_os_exit_fails_the_trial_and_the_slot_gets_a_fresh_worker(shared: Process) -> None:
    before = set(shared.worker_pids)
    (outcome,) = run_tasks(shared, [task("exit_hard")])
    assert outcome.status == "failed"
    assert "exited with code 3" in (outcome.error or "")
    assert len(set(shared.worker_pids) - before) == 1  # one slot restarted
    assert shared.free_slots == 2
    after = run_tasks(
        shared, [task("sleep_and_return", value=5.0), task("sleep_and_return", value=6.0)]
    )
    assert [(o.status, o.value) for o in after] == [("complete", 5.0), ("complete", 6.0)]


def test_sys_exit_fails_the_trial_with_its_message_and_the_worker_goes_on(
    shared: Process,
) -> None:
    before = set(shared.worker_pids)
    (outcome,) = run_tasks(shared, [task("call_sys_exit")])
    assert outcome.status == "failed"
    assert outcome.error == "the objective exited (SystemExit: 'fatal: bad config'); it must return"
    assert set(shared.worker_pids) == before  # no worker restarted for it


def test_the_trial_s_processes_get_the_driver_s_start_method_not_spawn(shared: Process) -> None:
    import multiprocessing

    # spawn's bootstrap made "spawn" the worker's default: a DataLoader with num_workers > 0
    # re-imported torch and the main script in each loader worker, every epoch
    expected = (
        multiprocessing.get_start_method(allow_none=True)
        or multiprocessing.get_all_start_methods()[0]  # the platform's default
    )
    (outcome,) = run_tasks(shared, [task("report_start_method")])
    assert outcome.status == "complete"
    assert outcome.metrics == {f"start_{expected}": 1.0}


def test_a_worker_whose_driver_died_during_its_trial_ends_quietly(monkeypatch) -> None:
    # the outcome's send hit a closed pipe and printed a BrokenPipeError traceback
    killed = []

    class DeadDriver:
        def __init__(self) -> None:
            self.tasks = [task("sleep_and_return")]

        def recv(self):
            return self.tasks.pop()

        def send(self, message):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(process, "_kill_own_group", lambda: killed.append(True))
    watch = process.OutOfMemoryWatch(objectives.dispatch)
    process._run_tasks(DeadDriver(), watch, metric="value", device="cpu")  # type: ignore[arg-type]
    assert killed == [True]


def test_segfault_fails_the_trial_naming_the_signal(shared: Process) -> None:
    (crashed, fine) = run_tasks(
        shared, [task("segfault"), task("sleep_and_return", seconds=0.5, value=7.0)]
    )
    assert crashed.status == "failed"
    assert "signal SIGSEGV (-11)" in (crashed.error or "")
    assert (fine.status, fine.value) == ("complete", 7.0)  # the other trial went on
    (again,) = run_tasks(shared, [task("sleep_and_return", value=8.0)])
    assert again.status == "complete"


def test_a_worker_a_stop_signal_killed_fails_its_trial_a_moment_later(shared: Process) -> None:
    started = time.monotonic()
    (outcome,) = run_tasks(shared, [task("sigterm_self")])
    assert outcome.status == "failed" and "signal SIGTERM (-15)" in (outcome.error or "")
    assert time.monotonic() - started >= process._STOP_SIGNAL_HOLD_S


def test_a_worker_a_stop_signal_killed_is_interrupted_if_the_driver_stops_too(
    shared: Process,
) -> None:
    # a scheduler stopping the whole job may reach the worker first, the driver a moment later
    shared.submit(task("sigterm_self"))
    end = time.monotonic() + 30
    while not shared._held:
        assert shared.wait(timeout=0.05) == [] and time.monotonic() < end
    (outcome,) = shared.interrupt()
    assert (outcome.status, outcome.error) == ("interrupted", None)
    (again,) = run_tasks(shared, [task("sleep_and_return", value=9.0)])
    assert (again.status, again.value) == ("complete", 9.0)


@pytest.mark.parametrize("raises", [False, True])
def test_a_trial_that_catches_the_timeouts_sigterm_is_still_a_timeout(
    shared: Process, raises: bool
) -> None:
    # its loss so far came back as `complete` (or its exception as `failed`), never re-run
    (outcome,) = run_tasks(shared, [task("train_until_sigterm", timeout=1.0, **{"raise": raises})])
    assert (outcome.status, outcome.value) == ("timeout", None)
    (again,) = run_tasks(shared, [task("sleep_and_return", value=9.0)])
    assert (again.status, again.value) == ("complete", 9.0)


def test_a_worker_leaves_a_receipt_that_a_result_after_the_stop_does_not_count_on(
    shared: Process, tmp_path: Path
) -> None:
    # the receipt stands in for the pipe when the driver dies before it reads the outcome
    receipts = tmp_path / ".receipts"  # made by the first write, or by the stop's mark
    done = task("sleep_and_return", value=9.0, receipt=receipts / "done.json")
    (outcome,) = run_tasks(shared, [done])
    receipt = read_receipt(done.receipt, number=done.number, params=done.params, metric="value")
    assert receipt is not None
    assert (receipt.status, receipt.value, receipt.metrics) == ("complete", 9.0, outcome.metrics)
    assert (receipt.started_at, receipt.finished_at) == (outcome.started_at, outcome.finished_at)
    # a loss so far, returned after gpbo's SIGTERM, is written but marked as after the stop
    caught = task("train_until_sigterm", timeout=1.0, receipt=tmp_path / "new" / "caught.json")
    (outcome,) = run_tasks(shared, [caught])
    assert outcome.status == "timeout"
    assert Path(caught.receipt).exists()
    assert read_receipt(
        caught.receipt, number=caught.number, params=caught.params, metric="value"
    ) is None


def test_a_trial_that_catches_the_interrupts_sigterm_is_interrupted(shared: Process) -> None:
    shared.submit(task("train_until_sigterm"))
    time.sleep(1.5)  # well into its training
    assert shared.wait(timeout=0) == []
    (outcome,) = shared.interrupt()
    assert (outcome.status, outcome.value) == ("interrupted", None)


def test_out_of_memory_fails_the_trial_and_recycles_the_worker(shared: Process) -> None:
    before = set(shared.worker_pids)
    (outcome,) = run_tasks(shared, [task("out_of_memory")])
    assert outcome.status == "failed"
    assert (outcome.error or "").startswith("out of memory:")
    assert "OutOfMemoryError" in (outcome.error or "")
    assert len(set(shared.worker_pids) - before) == 1
    after = run_tasks(shared, [task("sleep_and_return"), task("sleep_and_return")])
    assert [o.status for o in after] == ["complete", "complete"]


def test_exception_that_cannot_be_printed_fails_its_trial_in_the_worker(shared: Process) -> None:
    before = set(shared.worker_pids)
    (outcome,) = run_tasks(shared, [task("raise_unprintable")])
    assert outcome.status == "failed"
    assert (outcome.error or "").startswith("UnprintableError: <str() failed")
    assert "raise_unprintable" in (outcome.error or "")  # the traceback is kept
    assert set(shared.worker_pids) == before  # nothing crashed, no worker restarted


def test_trial_that_leaves_cuda_unusable_gets_its_slot_a_fresh_worker(shared: Process) -> None:
    run_tasks(shared, [task("sleep_and_return"), task("sleep_and_return")])  # both warm
    before = set(shared.worker_pids)
    (broken,) = run_tasks(shared, [task("break_cuda_of_this_worker")])
    assert broken.status == "failed"
    assert "device-side assert" in (broken.error or "")
    assert len(set(shared.worker_pids) - before) == 1  # that worker was replaced
    after = run_tasks(shared, [task("report_environment"), task("report_environment")])
    assert [o.status for o in after] == ["complete", "complete"]
    assert {int(o.metrics["pid"]) for o in after} == set(shared.worker_pids)


def test_timeout_kills_the_process_group_and_restarts_the_worker(
    shared: Process, tmp_path: Path
) -> None:
    run_tasks(shared, [task("sleep_and_return"), task("sleep_and_return")])  # both warm
    started = time.monotonic()
    (outcome,) = run_tasks(shared, [task("spawn_child_and_hang", timeout=1.0, dir=tmp_path)])
    elapsed = time.monotonic() - started
    assert outcome.status == "timeout"
    assert "trial_timeout of 1 s" in (outcome.error or "")
    assert "SIGKILL at most 1 s later" in (outcome.error or "")  # a command gets less: "at most"
    assert 1.0 <= elapsed < 1.0 + shared.grace_period + 1.0, elapsed
    grandchild = int((tmp_path / "child.pid").read_text())
    assert still_alive_after([grandchild], 2.0) == []  # `sleep 1000` went with its worker
    after = run_tasks(shared, [task("sleep_and_return"), task("sleep_and_return")])
    assert [o.status for o in after] == ["complete", "complete"]


# -- executors of their own -----------------------------------------------------------------


def test_a_file_objective_is_imported_while_the_worker_starts_not_in_a_trial(
    fresh: list[Process], tmp_path: Path
) -> None:
    from gpbo.config import FileObjective

    (tmp_path / "slow_import.py").write_text(
        "import time\ntime.sleep(1.5)  # heavy imports, data loaded at module level\n"
        "def f(params):\n    return params['x']\n"
    )
    executor = Process(grace_period=1.0, start_timeout=60.0)
    fresh.append(executor)
    executor.start(FileObjective(tmp_path / "slow_import.py", "f"), slots=["cpu"],
                   metric="value")
    for number in range(2):
        (outcome,) = run_tasks(
            executor, [TrialTask(number=number, params={"x": float(number)}, timeout=1.0)]
        )
        assert (outcome.status, outcome.value) == ("complete", float(number)), outcome.error


def test_interrupt_stops_running_trials(fresh: list[Process]) -> None:
    executor = Process()
    fresh.append(executor)
    executor.start(objectives.sleep_forever, slots=["cpu", "cpu"], metric="value")
    pids = [pid for pid in executor.worker_pids if pid is not None]
    assert len(pids) == 2
    submitted = [TrialTask(number=1, params={}), TrialTask(number=2, params={})]
    for t in submitted:
        executor.submit(t)
    assert executor.wait(timeout=0.3) == []  # still running
    started = time.monotonic()
    outcomes = executor.interrupt()
    assert time.monotonic() - started < 5.0
    assert sorted((o.number, o.status) for o in outcomes) == [
        (1, "interrupted"),
        (2, "interrupted"),
    ]
    assert all(o.device == "cpu" for o in outcomes)
    assert still_alive_after(pids, 5.0 - (time.monotonic() - started)) == []
    assert executor.running == 0
    assert executor.wait(timeout=0) == []


def test_shutdown_stops_workers_and_is_idempotent(fresh: list[Process]) -> None:
    executor = Process()
    fresh.append(executor)
    executor.start(objectives.sleep_forever, slots=["cpu", "cpu"], metric="value")
    pids = [pid for pid in executor.worker_pids if pid is not None]
    executor.submit(TrialTask(number=0, params={}))  # one busy, one idle
    started = time.monotonic()
    executor.shutdown()
    assert time.monotonic() - started < 5.0
    assert still_alive_after(pids, 1.0) == []
    executor.shutdown()  # a second call is harmless
    assert executor.free_slots == 0 and executor.worker_pids == []


def test_lambda_without_cloudpickle_is_refused_with_the_fixes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # `import cloudpickle` fails
    executor = Process()
    with pytest.raises(GpboError, match="cannot be sent to a worker process") as info:
        executor.start(lambda params: 1.0, slots=["cpu", "cpu"], metric="value")
    message = str(info.value)
    assert "module level" in message
    assert 'pip install "cloudpickle>=2.2"' in message
    assert 'executor="serial"' in message
    assert executor.worker_pids == []  # refused before any worker started


def test_closure_is_sent_with_cloudpickle(fresh: list[Process]) -> None:
    pytest.importorskip("cloudpickle")
    offset = 10.0
    executor = Process()
    fresh.append(executor)
    executor.start(lambda params: params["x"] + offset, slots=["cpu"], metric="value")
    (outcome,) = run_tasks(executor, [TrialTask(number=0, params={"x": 1.5})])
    assert (outcome.status, outcome.value) == ("complete", 11.5)


def test_function_from_an_interactive_main_goes_by_value(
    monkeypatch: pytest.MonkeyPatch, fresh: list[Process]
) -> None:
    cloudpickle = pytest.importorskip("cloudpickle")
    main = types.ModuleType("__main__")  # as under `python -c` or in a notebook: no __file__
    exec("def objective(params):\n    return 2.0 * params['x']\n", main.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", main)
    objective = main.objective
    pickle.dumps(objective)  # plain pickle takes it by reference, which a worker cannot load

    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    with pytest.raises(GpboError, match="defined in __main__"):
        Process().start(objective, slots=["cpu"], metric="value")

    monkeypatch.setitem(sys.modules, "cloudpickle", cloudpickle)
    executor = Process()
    fresh.append(executor)
    executor.start(objective, slots=["cpu"], metric="value")
    (outcome,) = run_tasks(executor, [TrialTask(number=0, params={"x": 4.0})])
    assert (outcome.status, outcome.value) == ("complete", 8.0)


def _run_as_main(
    monkeypatch: pytest.MonkeyPatch, script: Path, source: str
) -> types.ModuleType:
    """Write ``source`` to ``script`` and run it as this process's ``__main__``, as
    ``python script`` would (the guarded block included)."""
    script.write_text(source)
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    exec(compile(source, str(script), "exec"), main.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", main)
    return main


GUARDED_SCRIPT = """
import math

def helper(params):
    return math.sqrt(params["x"])

try:
    import gpbo  # noqa: F401
except ImportError:
    pass

if "__main__" == __name__:
    def objective(params):
        return 3.0 * params["x"]
"""


def test_function_defined_under_the_main_guard_goes_by_value_or_is_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh: list[Process]
) -> None:
    # a worker imports the script without running the guarded block: by reference, the
    # objective would fail there with a bare AttributeError
    cloudpickle = sys.modules.get("cloudpickle")
    with contextlib.suppress(ImportError):
        import cloudpickle
    main = _run_as_main(monkeypatch, tmp_path / "guarded_driver.py", GUARDED_SCRIPT)
    hidden = sending._bound_only_under_the_guard()
    assert sending._defined_under_the_main_guard(["objective", "helper", "gpbo"], hidden) == [
        "objective"
    ]

    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    with pytest.raises(GpboError, match="objective is defined under `if __name__") as info:
        Process().start(main.objective, slots=["cpu"], metric="value")
    assert "define it above the guard" in str(info.value)
    sending.serialize_objective(main.helper)  # defined on import: plain pickle, no error

    if cloudpickle is None:
        pytest.skip("cloudpickle is not installed")
    monkeypatch.setitem(sys.modules, "cloudpickle", cloudpickle)
    executor = Process()
    fresh.append(executor)
    executor.start(main.objective, slots=["cpu"], metric="value")
    (outcome,) = run_tasks(executor, [TrialTask(number=0, params={"x": 2.0})])
    assert (outcome.status, outcome.value) == ("complete", 6.0)


DATA_UNDER_THE_GUARD_SCRIPT = """
import functools

def loss(params):
    return DATA * params["x"] + ARGS_OFFSET

def objective(params, scale=1.0):
    return scale * loss(params)

def harmless(params):
    return params["x"]

if __name__ == "__main__":
    DATA = 3.0
    ARGS_OFFSET = 0.5
"""


def test_globals_assigned_under_the_main_guard_travel_with_the_objective_or_are_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh: list[Process]
) -> None:
    # data loaded (or args parsed) under the guard: by reference, a worker's import of the
    # script never binds them, and every trial failed with NameError
    cloudpickle = sys.modules.get("cloudpickle")
    with contextlib.suppress(ImportError):
        import cloudpickle
    main = _run_as_main(monkeypatch, tmp_path / "data_driver.py", DATA_UNDER_THE_GUARD_SCRIPT)
    objective = functools.partial(main.objective, scale=2.0)
    # read through the function it calls, and through the partial
    hidden = sending._bound_only_under_the_guard()
    assert sending._globals_hidden_by_the_guard(objective, hidden) == ["ARGS_OFFSET", "DATA"]
    assert sending._globals_hidden_by_the_guard(main.harmless, hidden) == []

    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    with pytest.raises(GpboError, match=r"reads ARGS_OFFSET, DATA, which the driver script "
                       r"assigns only under .*NameError.*above the guard"):
        Process().start(objective, slots=["cpu"], metric="value")
    sending.serialize_objective(main.harmless)  # by reference, no error

    if cloudpickle is None:
        pytest.skip("cloudpickle is not installed")
    monkeypatch.setitem(sys.modules, "cloudpickle", cloudpickle)
    executor = Process()
    fresh.append(executor)
    executor.start(objective, slots=["cpu"], metric="value")
    (outcome,) = run_tasks(executor, [TrialTask(number=0, params={"x": 2.0})])
    assert (outcome.status, outcome.value) == ("complete", 13.0)


def test_objective_that_fails_to_load_in_the_worker_fails_start(fresh: list[Process]) -> None:
    executor = Process()
    fresh.append(executor)
    with pytest.raises(GpboError, match="could not load the objective") as info:
        executor.start(objectives.UnloadableObjective(), slots=["cpu", "cpu"], metric="value")
    assert "ImportError" in str(info.value)
    assert "missing_dependency_of_the_objective" in str(info.value)
    assert executor.worker_pids == []


# -- driver scripts -------------------------------------------------------------------------


def test_script_without_main_guard_gets_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text(
        textwrap.dedent(
            """
            import objectives_for_workers
            from gpbo.executors.process import Process

            executor = Process(start_timeout=60)  # start() checks for the guard itself
            try:
                executor.start(
                    objectives_for_workers.sleep_and_return, slots=["cpu"], metric="value"
                )
            finally:
                executor.shutdown()
            print("started")
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode != 0
    assert "started" not in done.stdout
    assert "GpboError" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr
    assert "gpbo.optimize(...)" in done.stderr
    assert "bootstrapping phase" not in done.stderr  # not Python's own traceback


def test_workers_exit_when_the_driver_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(
            """
            import time

            from gpbo.executors.base import TrialTask
            from gpbo.executors.process import Process


            def objective(params):  # in the __main__ of a script: sent by reference
                time.sleep(params["seconds"])
                return 1.0


            if __name__ == "__main__":
                executor = Process()
                executor.start(objective, slots=["cpu", "cpu"], metric="value")
                executor.submit(TrialTask(number=0, params={"seconds": 0}))
                print(executor.wait(60)[0].status, flush=True)
                for number in (1, 2):
                    executor.submit(TrialTask(number=number, params={"seconds": 1000}))
                print(*executor.worker_pids, flush=True)
                time.sleep(1000)
            """
        )
    )
    with running_driver(script) as driver:
        assert driver.stdout is not None
        assert driver.stdout.readline().strip() == "complete"
        pids = [int(pid) for pid in driver.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        time.sleep(0.3)  # the long trials are running
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        killed = time.monotonic()
        assert still_alive_after(pids, 5.0) == [], "workers outlived their driver"
        assert time.monotonic() - killed < 5.0


@contextlib.contextmanager
def running_driver(script: Path) -> Iterator[subprocess.Popen]:
    """``script`` running in its folder, its stdout a pipe; killed afterwards (or after 90 s)."""
    driver = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=script.parent,
        env=script_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(90, driver.kill)
    watchdog.start()
    try:
        yield driver
    finally:
        watchdog.cancel()
        driver.kill()
        driver.wait()
        if driver.stdout is not None:
            driver.stdout.close()


def test_what_a_trial_printed_survives_its_worker_being_killed(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(
            """
            import os

            from gpbo.executors.base import TrialTask
            from gpbo.executors.process import Process


            def objective(params):
                print("progress of trial", params["n"])
                if params["n"] == 1:
                    os._exit(3)  # a crash: nothing of the worker's is flushed
                return 1.0


            if __name__ == "__main__":
                executor = Process()
                executor.start(objective, slots=["cpu"], metric="value")
                try:
                    for n in (0, 1):
                        executor.submit(TrialTask(number=n, params={"n": n}))
                        print("status", executor.wait(60)[0].status, flush=True)
                finally:
                    executor.shutdown()
            """
        )
    )
    env = script_env()
    env.pop("PYTHONUNBUFFERED", None)  # Python's default: a block-buffered stdout in a pipe
    done = subprocess.run(  # stdout a pipe, as when the output goes to a log file
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert "status complete" in done.stdout and "status failed" in done.stdout
    assert "progress of trial 0" in done.stdout
    assert "progress of trial 1" in done.stdout


def test_worker_output_reaches_the_drivers_replaced_streams_before_the_outcome(
    shared: Process, capsys: pytest.CaptureFixture[str]
) -> None:
    # pytest replaced sys.stdout/sys.stderr, as gpbo run's live status line and a notebook do:
    # the workers' output goes there, not to the descriptors they inherited
    assert process.streams_to_relay() == ("stdout", "stderr")
    capsys.readouterr()
    first, second = run_tasks(
        shared, [task("print_lines", seconds=0.05), task("print_lines", seconds=0.05)]
    )
    assert (first.status, second.status) == ("complete", "complete")
    # everything, the open progress line included, is there when the outcomes are
    out, err = capsys.readouterr()
    for number in (first.number, second.number):
        assert f"epoch 0 of trial {number}\n" in out
        assert f"a command of trial {number}\n" in out  # a process the trial started
        assert f"a warning of trial {number}\n" in err
        # of the progress bar, what a terminal shows at the end
        assert f"\nprogress 100% of trial {number}\n" in out
    assert "progress 10%" not in out and "progress 50%" not in out
    # whole lines, even with two workers writing at once
    assert all(line.count("trial") == 1 for line in out.splitlines())


def test_a_crashed_workers_last_words_are_relayed(
    shared: Process, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    (outcome,) = run_tasks(shared, [task("print_and_segfault")])
    assert "signal SIGSEGV" in (outcome.error or "")
    err = capsys.readouterr().err
    assert "about to crash" in err
    assert "Fatal Python error: Segmentation fault" in err  # faulthandler, on descriptor 2


# -- GPU ------------------------------------------------------------------------------------


@pytest.mark.cuda
def test_gpu_slots_see_only_their_gpu(fresh: list[Process]) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    executor = Process()
    fresh.append(executor)
    executor.start(objectives.report_environment, slots=["cuda:0", "cuda:0"], metric="value")
    outcomes = run_tasks(executor, [TrialTask(number=0, params={}), TrialTask(number=1, params={})])
    for outcome in outcomes:
        assert outcome.status == "complete", outcome.error
        assert outcome.device == "cuda:0"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            assert outcome.metrics["cuda_visible_zero"] == 1.0
        assert outcome.metrics["device_is_cuda0"] == 1.0


@pytest.mark.cuda
def test_a_real_cuda_out_of_memory_fails_one_trial_and_the_slot_goes_on(
    fresh: list[Process],
) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    # two workers on one GPU, as on a machine with more slots than GPUs
    executor = Process(grace_period=1.0, start_timeout=120.0)
    fresh.append(executor)
    executor.start(objectives.dispatch, slots=["cuda:0", "cuda:0"], metric="value")
    before = set(executor.worker_pids)
    oom, fine = run_tasks(executor, [task("cuda_allocate_twice_the_gpu"), task("cuda_sum")],
                          limit=120.0)
    assert oom.status == "failed"
    assert (oom.error or "").startswith("out of memory:"), oom.error
    assert (fine.status, fine.value) == ("complete", 1000.0)
    assert len(set(executor.worker_pids) - before) == 1  # the OOM worker was replaced
    after = run_tasks(executor, [task("cuda_sum"), task("cuda_sum")], limit=120.0)
    assert [(o.status, o.value) for o in after] == [("complete", 1000.0)] * 2


def _one_cuda_slot(fresh: list[Process]) -> Process:
    """A started executor with one worker on ``cuda:0``; skips the test without CUDA."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    executor = Process(grace_period=1.0, start_timeout=120.0)
    fresh.append(executor)
    executor.start(objectives.dispatch, slots=["cuda:0"], metric="value")
    return executor


@pytest.mark.cuda
def test_a_device_side_assert_fails_one_trial_and_the_slot_goes_on(fresh: list[Process]) -> None:
    # one slot: every later trial runs where the assert happened, unless the worker is replaced
    executor = _one_cuda_slot(fresh)
    (asserted,) = run_tasks(executor, [task("cuda_device_side_assert")], limit=120.0)
    assert asserted.status == "failed"
    assert "device-side assert" in (asserted.error or ""), asserted.error
    after = run_tasks(executor, [task("cuda_sum"), task("cuda_sum")], limit=120.0)
    assert [(o.status, o.value) for o in after] == [("complete", 1000.0)] * 2, after


@pytest.mark.cuda
def test_a_reused_worker_gives_the_gpu_memory_of_a_trial_back(fresh: list[Process]) -> None:
    # memory torch keeps cached in one worker is memory another worker on the GPU cannot have
    executor = _one_cuda_slot(fresh)
    (big,) = run_tasks(executor, [task("cuda_allocate_and_drop", gib=1.0)], limit=120.0)
    assert big.status == "complete", big.error
    (reserved,) = run_tasks(executor, [task("cuda_memory_reserved")], limit=120.0)
    assert reserved.status == "complete", reserved.error
    assert reserved.value is not None and reserved.value < 2**20, reserved.value


def test_an_idle_workers_leftover_children_go_when_the_driver_is_killed(tmp_path: Path) -> None:
    # an idle worker saw EOF first and returned cleanly, leaving what an earlier trial started
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(
            """
            import subprocess
            import time

            from gpbo.executors.base import TrialTask
            from gpbo.executors.process import Process


            def objective(params):  # a trial that leaves a server running behind it
                child = subprocess.Popen(["sleep", "1000"])
                return {"value": 1.0, "child": float(child.pid)}


            if __name__ == "__main__":
                executor = Process()
                executor.start(objective, slots=["cpu"], metric="value")
                executor.submit(TrialTask(number=0, params={}))
                print(int(executor.wait(60)[0].metrics["child"]), flush=True)
                time.sleep(1000)
            """
        )
    )
    with running_driver(script) as driver:
        assert driver.stdout is not None
        child = int(driver.stdout.readline())
        assert alive(child)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        assert still_alive_after([child], 5.0) == [], "an idle worker's leftover outlived it"


def test_a_driver_script_read_from_stdin_can_start_workers(tmp_path: Path) -> None:
    # `python - < driver.py`: spawn had every worker run "<stdin>", FileNotFoundError
    driver = textwrap.dedent(
        """
        import os
        import gpbo
        result = gpbo.optimize(lambda p: float(os.getpid()), {"x": gpbo.Real(0, 1)}, n_trials=2,
                               batch_size=2, devices=["cpu", "cpu"], executor="process",
                               strategy="random", seed=0, verbose=False)
        pids = {t.value for t in result.trials}
        print([t.status for t in result.trials], os.getpid() not in pids)
        """
    )
    done = subprocess.run(
        [sys.executable, "-"], input=driver, cwd=tmp_path, env=script_env(),
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['complete', 'complete'] True"


def test_worker_threads_split_the_cpus_this_process_may_use(monkeypatch) -> None:
    # os.cpu_count() is the machine's; a job pinned to 4 of 64 cores gave each worker 32
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert process._usable_cpus() == 4


class _TrainerHoldingALock:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def train(self, params: dict[str, float]) -> float:
        return params["x"]

    def __call__(self, params: dict[str, float]) -> float:
        return params["x"]


def test_an_unsendable_method_or_callable_object_names_what_travels_with_it() -> None:
    # the advice was "define it at module level", which it already was
    with pytest.raises(GpboError, match=r"(?s)'_TrainerHoldingALock.train' cannot be sent.*"
                       r"pickles its _TrainerHoldingALock instance with it.*module-level "
                       r"function that builds the _TrainerHoldingALock.*__getstate__") as info:
        sending.serialize_objective(_TrainerHoldingALock().train)
    assert "rather than as a lambda" not in str(info.value)
    with pytest.raises(GpboError, match=r"(?s)the _TrainerHoldingALock object is pickled "
                       r"whole: keep only picklable settings"):
        sending.serialize_objective(_TrainerHoldingALock())
