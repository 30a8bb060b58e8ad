"""Tests of the Ray executor on a local Ray instance: studies, crashes, timeouts, resume.

One Ray instance (2 CPUs, no GPU) serves the whole module: starting Ray takes seconds. Tests
that need no cluster (options, the missing-package message, how Ray is connected to) run
without it; the missing-package test runs even where ray is not installed.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import gpbo
from gpbo._optional import MissingDependencyError
from gpbo.exceptions import GpboError
from gpbo.executors import make_executor
from gpbo.executors.base import TrialOutcome, TrialTask
from tests import objectives_for_ray as objectives

REPO = Path(__file__).resolve().parents[1]
HAS_RAY = importlib.util.find_spec("ray") is not None
NO_RAY_REASON = 'the Ray executor tests need ray; install it with: pip install "ray>=2.9"'
needs_ray = pytest.mark.skipif(not HAS_RAY, reason=NO_RAY_REASON)
_numbers = itertools.count(1000)


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """A local Ray instance for the module (2 CPUs, no GPU), token authentication on."""
    ray = pytest.importorskip("ray", reason=NO_RAY_REASON)
    auth_mode = os.environ.get("RAY_AUTH_MODE")
    with pytest.MonkeyPatch.context() as patch:
        if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
            # A token of the test's own, so that Ray does not write one to ~/.ray/auth_token.
            patch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
        patch.delenv("RAY_ADDRESS", raising=False)
        patch.chdir(REPO)  # Ray workers import `tests.objectives_for_ray` from the driver's cwd
        # address="local": a fresh instance even where `ray start` runs on this machine
        ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False)
        try:
            yield ray
        finally:
            ray.shutdown()
            if auth_mode is None:  # ray.init() sets RAY_AUTH_MODE=token in this process
                os.environ.pop("RAY_AUTH_MODE", None)
            else:
                os.environ["RAY_AUTH_MODE"] = auth_mode


@pytest.fixture()
def executors() -> Iterator[list[Any]]:
    """Ray executors a test starts itself; shut down whatever happens."""
    made: list[Any] = []
    yield made
    for executor in made:
        executor.shutdown()


def started(executors: list[Any], **options: Any) -> Any:
    executor = gpbo.executors.Ray(**options)
    executors.append(executor)
    executor.start(objectives.dispatch, slots=["cpu"], metric="value")
    return executor


def task(fn: str, **params: Any) -> TrialTask:
    timeout = params.pop("timeout", None)
    return TrialTask(number=next(_numbers), params={"fn": fn, **params}, timeout=timeout)


def run_tasks(executor: Any, tasks: Sequence[TrialTask], limit: float = 120.0) -> list[Any]:
    """Submit ``tasks`` (as slots free) and return their outcomes in the same order."""
    waiting = list(tasks)
    got: dict[int, TrialOutcome] = {}
    end = time.monotonic() + limit
    while len(got) < len(tasks):
        while waiting and executor.free_slots > 0:
            executor.submit(waiting.pop(0))
        left = end - time.monotonic()
        assert left > 0, f"no outcome within {limit} s; got {got}"
        for outcome in executor.wait(timeout=left):
            got[outcome.number] = outcome
    return [got[t.number] for t in tasks]


# -- without a cluster ----------------------------------------------------------------------


def test_missing_ray_gives_a_message_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    hint = r'pip install "ray>=2.9" \(the gpbo extra \[ray\]'
    with pytest.raises(MissingDependencyError, match=hint):
        gpbo.executors.Ray()
    with pytest.raises(MissingDependencyError, match="the Ray executor"):
        make_executor("ray", slots=["cpu"])


def test_the_class_is_importable_without_importing_ray() -> None:
    code = (
        "import sys, gpbo, gpbo.executors as e; cls = e.Ray; "
        "assert cls.__name__ == 'Ray'; assert 'ray' not in sys.modules, 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


@needs_ray
def test_options_are_keyword_only_and_validated() -> None:
    Ray = gpbo.executors.Ray
    with pytest.raises(TypeError):
        Ray("auto")  # type: ignore[misc]
    for bad in (
        {"gpus_per_trial": -1},
        {"gpus_per_trial": float("nan")},
        {"cpus_per_trial": True},
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_concurrent": 0},
        {"address": ""},
        {"runtime_env": "env"},
        {"start_timeout": 0},
    ):
        with pytest.raises(GpboError, match=next(iter(bad))):
            Ray(**bad)
    with pytest.raises(GpboError, match="address"):
        Ray(init_kwargs={"address": "auto"})
    executor = Ray(gpus_per_trial=0.5, cpus_per_trial=2, max_retries=1, max_concurrent=3)
    assert (executor.gpus_per_trial, executor.cpus_per_trial) == (0.5, 2.0)
    assert (executor.max_retries, executor.max_concurrent, executor.address) == (1, 3, "auto")
    assert executor.free_slots == 0 and executor.running == 0
    with pytest.raises(GpboError, match="before start"):
        executor.submit(task("value"))


class FakeRay:
    """Just enough of the ``ray`` module to follow how the executor connects and lets go."""

    exceptions = SimpleNamespace(GetTimeoutError=TimeoutError, RayError=RuntimeError)

    def __init__(self, *, cluster_running: bool) -> None:
        import pickle

        self.cluster_running = cluster_running
        self.refuse = False  # a cluster is found but refuses the connection (e.g. no token)
        self.initialized = False
        self.init_calls: list[dict[str, Any]] = []
        self.shutdowns = 0
        self.cloudpickle = pickle

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **kwargs: Any) -> None:
        self.init_calls.append(kwargs)
        if kwargs.get("address") == "auto" and self.refuse:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")
        if kwargs.get("address") == "auto" and not self.cluster_running:
            raise ConnectionError(
                "Could not find any running Ray instance. Please specify the one to connect to "
                "by setting `--address` flag or `RAY_ADDRESS` environment variable."
            )
        self.initialized = True

    def shutdown(self) -> None:
        self.shutdowns += 1
        self.initialized = False

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 8.0, "GPU": 2.0}

    def remote(self, **options: Any) -> Any:
        return lambda fn: SimpleNamespace(remote=lambda *args: ("ref", fn.__name__, options))

    def put(self, value: Any) -> str:
        return "payload-ref"

    def get(self, ref: Any, timeout: float | None = None) -> Any:
        return None  # the objective loads fine

    def cancel(self, ref: Any, force: bool = False) -> None:
        pass


def test_the_opening_line_names_ray_not_the_drivers_slots() -> None:
    Ray = gpbo.executors.Ray
    assert Ray(address="local").describe(["cpu"]) == (
        "Ray tasks on a new local Ray instance, as many as fit at once"
    )
    assert Ray(address="10.0.0.5:6379", max_concurrent=8).describe(["cpu"]) == (
        "Ray tasks on the Ray cluster at 10.0.0.5:6379, up to 8 at once"
    )
    assert "slot" not in Ray().describe(["cpu"])


@pytest.mark.parametrize("cluster_running", [False, True])
def test_auto_joins_a_cluster_or_starts_a_local_instance(
    monkeypatch: pytest.MonkeyPatch, cluster_running: bool
) -> None:
    from gpbo.executors import ray as ray_module

    fake = FakeRay(cluster_running=cluster_running)
    monkeypatch.setattr(ray_module, "_import_ray", lambda: fake)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    executor = ray_module.Ray(runtime_env={"env_vars": {"A": "1"}}, gpus_per_trial=1)
    executor.start(objectives.quadratic, slots=["cpu"], metric="value")
    addresses = [call["address"] for call in fake.init_calls]
    assert addresses == (["auto"] if cluster_running else ["auto", "local"])
    # gpbo passes the address and the runtime env, nothing else (no authentication option)
    assert all(set(call) == {"address", "runtime_env"} for call in fake.init_calls)
    assert executor.free_slots == 2  # 2 GPUs in the cluster, 1 per trial
    assert fake.shutdowns == 0
    executor.shutdown()  # what its ray.init made: a local instance, or this driver's connection
    executor.shutdown()
    assert fake.shutdowns == 1


@pytest.mark.parametrize(("recorded", "addresses"), [(None, ["local"]),
                                                     ("10.0.0.1:6379", ["auto"])])
def test_auto_joins_only_a_cluster_ray_start_recorded(
    monkeypatch: pytest.MonkeyPatch, recorded: str | None, addresses: list[str]
) -> None:
    # "auto" alone finds any Ray instance running here, such as the local one another study
    # started: its trials then ran in that study's workers and died when it ended
    from gpbo.executors import ray as ray_module

    fake = FakeRay(cluster_running=True)
    fake._private = SimpleNamespace(utils=SimpleNamespace(read_ray_address=lambda: recorded))
    monkeypatch.setattr(ray_module, "_import_ray", lambda: fake)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    executor = ray_module.Ray()
    executor.start(objectives.quadratic, slots=["cpu"], metric="value")
    assert [call["address"] for call in fake.init_calls] == addresses
    executor.shutdown()
    assert fake.shutdowns == 1


def test_a_connection_the_caller_made_is_used_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpbo.executors import ray as ray_module

    fake = FakeRay(cluster_running=True)
    fake.initialized = True
    monkeypatch.setattr(ray_module, "_import_ray", lambda: fake)
    executor = ray_module.Ray(address="10.0.0.1:6379")
    executor.start(objectives.quadratic, slots=["cpu"], metric="value")
    assert fake.init_calls == []
    assert executor.free_slots == 2  # gpus_per_trial=None: 1, as the cluster has GPUs
    executor.shutdown()
    assert fake.shutdowns == 0 and fake.initialized


def test_an_unreachable_named_cluster_is_an_error_not_a_local_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gpbo.executors import ray as ray_module

    fake = FakeRay(cluster_running=False)
    monkeypatch.setattr(ray_module, "_import_ray", lambda: fake)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    executor = ray_module.Ray()
    with pytest.raises(GpboError, match=r"RAY_ADDRESS='10\.0\.0\.1:6379'.*auth_token"):
        executor.start(objectives.quadratic, slots=["cpu"], metric="value")
    assert [call["address"] for call in fake.init_calls] == ["auto"]
    assert fake.shutdowns == 0


def test_a_found_cluster_that_refuses_the_connection_is_an_error_not_a_local_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gpbo.executors import ray as ray_module

    fake = FakeRay(cluster_running=True)
    fake.refuse = True
    monkeypatch.setattr(ray_module, "_import_ray", lambda: fake)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(GpboError, match=r"could not connect.*RAY_AUTH_MODE=token"):
        ray_module.Ray().start(objectives.quadratic, slots=["cpu"], metric="value")
    assert [call["address"] for call in fake.init_calls] == ["auto"]


# -- on the local Ray instance --------------------------------------------------------------


def test_a_study_completes_through_the_ray_executor(ray_instance: Any, tmp_path: Path) -> None:
    journal = tmp_path / "ray.jsonl"
    result = gpbo.optimize(
        objectives.quadratic,
        {"x": gpbo.Real(0.0, 1.0)},
        n_trials=6,
        batch_size=2,
        strategy="sobol",
        seed=0,
        executor="ray",
        journal=journal,
        verbose=False,
    )
    assert [t.status for t in result.trials] == ["complete"] * 6
    for trial in result.trials:
        assert trial.device.startswith("ray:") and trial.device.endswith(":cpu"), trial.device
        assert trial.metrics["device_is_cpu"] == trial.metrics["trial_device_is_cpu"] == 1.0
        assert trial.metrics["number"] == trial.number
        assert trial.metrics["dir_exists"] == 1.0
        assert trial.metrics["cuda_hidden"] == 1.0  # a task without GPUs sees none
    assert result.best_value == min(t.value for t in result.trials)
    # there during the trial (dir_exists), and removed after it as the trial left it empty
    assert (tmp_path / "ray.trials").is_dir()
    assert not (tmp_path / "ray.trials" / "000000").exists()
    assert ray_instance.is_initialized()  # a connection the caller made is left alone


def test_async_mode_keeps_both_slots_busy(ray_instance: Any) -> None:
    result = gpbo.optimize(
        objectives.slow_quadratic,
        {"x": gpbo.Real(0.0, 1.0)},
        n_trials=4,
        mode="async",
        strategy="random",
        seed=1,
        executor=gpbo.executors.Ray(max_concurrent=2),
        verbose=False,
    )
    assert [t.status for t in result.trials] == ["complete"] * 4
    spans = sorted((t.started_at, t.finished_at) for t in result.trials)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans


def test_batch_size_auto_is_the_clusters_capacity(ray_instance: Any) -> None:
    result = gpbo.optimize(
        objectives.quadratic,
        {"x": gpbo.Real(0.0, 1.0)},
        n_trials=4,
        batch_size="auto",
        strategy="random",
        seed=1,
        executor=gpbo.executors.Ray(),
        verbose=False,
    )
    # 2 CPUs, one per trial: rounds of 2 (the driver has one CPU slot, which gave rounds of 1)
    assert [t.round for t in result.trials] == [0, 0, 1, 1]


def test_slots_are_the_clusters_capacity_or_max_concurrent(
    ray_instance: Any, executors: list[Any]
) -> None:
    default = started(executors)
    assert default.free_slots == 2  # 2 CPUs, 1 per trial; no GPU, so gpus_per_trial is 0
    assert started(executors, max_concurrent=1).free_slots == 1
    assert started(executors, cpus_per_trial=2).free_slots == 1


def test_a_killed_worker_fails_its_trial_and_the_study_goes_on(ray_instance: Any) -> None:
    result = gpbo.optimize(
        objectives.kill_itself_when_x_is_large,
        {"x": gpbo.Choice([0.1, 0.9, 0.2])},
        n_trials=3,
        strategy="grid",
        executor="ray",
        max_consecutive_failures=None,
        verbose=False,
    )
    by_x = {t.params["x"]: t for t in result.trials}
    assert by_x[0.9].status == "failed"
    assert "died while running the trial" in by_x[0.9].error
    assert "WorkerCrashedError" in by_x[0.9].error
    assert by_x[0.9].device.startswith("ray:")
    assert by_x[0.1].status == by_x[0.2].status == "complete"


def test_an_exception_fails_the_trial_with_its_traceback(
    ray_instance: Any, executors: list[Any]
) -> None:
    executor = started(executors)
    [failed, exited, fine] = run_tasks(executor, [task("raise"), task("exit"), task("value")])
    assert failed.status == "failed"
    assert failed.error.startswith("ValueError: boom from trial")
    assert "Traceback (most recent call last)" in failed.error
    assert "objectives_for_ray.py" in failed.error
    assert failed.device.startswith("ray:") and failed.device.endswith(":cpu")
    assert exited.status == "failed" and "SystemExit: 3" in exited.error
    assert fine.status == "complete" and fine.value == 1.0


def test_max_retries_lets_ray_run_a_crashed_trial_again(
    ray_instance: Any, executors: list[Any], tmp_path: Path
) -> None:
    once, never = (
        TrialTask(number=next(_numbers), params={"fn": "kill_once"}, dir=str(tmp_path / d))
        for d in ("retried", "not-retried")
    )
    [retried] = run_tasks(started(executors, max_retries=1), [once])
    assert retried.status == "complete" and retried.value == 2.0
    [failed] = run_tasks(started(executors), [never])  # max_retries=0: recorded, not re-run
    assert failed.status == "failed" and "died while running the trial" in failed.error


def test_trial_timeout_cancels_the_task(ray_instance: Any, tmp_path: Path) -> None:
    start = time.monotonic()
    result = gpbo.optimize(
        objectives.dispatch,
        {"fn": gpbo.Choice(["sleep", "value"])},
        n_trials=2,
        batch_size=2,
        strategy="grid",
        executor="ray",
        trial_timeout=2.0,
        max_consecutive_failures=None,
        verbose=False,
    )
    assert time.monotonic() - start < 120  # the sleeping trial would take 300 s
    by_fn = {t.params["fn"]: t for t in result.trials}
    assert by_fn["sleep"].status == "timeout"
    assert "trial_timeout of 2 s" in by_fn["sleep"].error
    assert by_fn["value"].status == "complete"


def test_interrupt_cancels_running_tasks(ray_instance: Any, executors: list[Any]) -> None:
    executor = started(executors)
    sleepers = [task("sleep"), task("sleep")]
    for t in sleepers:
        executor.submit(t)
    end = time.monotonic() + 90
    while not all(run.started_at for run in executor._running.values()):  # both running
        assert time.monotonic() < end, "the tasks did not start within 90 s"
        assert executor.wait(timeout=0.2) == []
    begin = time.monotonic()
    outcomes = executor.interrupt()
    assert time.monotonic() - begin < 15
    assert sorted((o.number, o.status) for o in outcomes) == sorted(
        (t.number, "interrupted") for t in sleepers
    )
    assert executor.running == 0 and executor.free_slots == 2
    [after] = run_tasks(executor, [task("value", value=2.0)])  # the CPUs were given back
    assert after.status == "complete" and after.value == 2.0


def test_a_journal_written_under_ray_resumes_under_the_process_executor(
    ray_instance: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "study.jsonl"
    common: dict[str, Any] = {
        "batch_size": 2,
        "strategy": "sobol",
        "seed": 3,
        "verbose": False,
    }
    space = {"x": gpbo.Real(0.0, 1.0)}
    first = gpbo.optimize(
        objectives.quadratic, space, n_trials=4, executor="ray", journal=journal, **common
    )
    assert all(t.device.startswith("ray:") for t in first.trials)
    resumed = gpbo.optimize(
        objectives.quadratic,
        space,
        n_trials=6,
        executor="process",
        devices=2,
        journal=journal,
        **common,
    )
    assert [t.status for t in resumed.trials] == ["complete"] * 6
    assert [t.device for t in resumed.trials[:4]] == [t.device for t in first.trials]
    assert [t.device for t in resumed.trials[4:]] == ["cpu", "cpu"]
    fresh = gpbo.optimize(objectives.quadratic, space, n_trials=6, executor="serial", **common)
    assert [t.params for t in resumed.trials] == [t.params for t in fresh.trials]
    assert [t.number for t in gpbo.load(journal).trials] == list(range(6))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_world_readable_token_file_of_a_local_instance_is_made_private(tmp_path, monkeypatch):
    from gpbo.executors import ray as ray_executor

    token = tmp_path / "auth_token"
    token.write_text("secret")
    token.chmod(0o644)  # as Ray writes it on first use under a usual umask
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    ray_executor._make_token_private()
    assert token.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    ray_executor._make_token_private()  # authentication off: nothing to do, no error
