"""optimize() with the process executor, end to end: slots, sync rounds and waves, async mode,
fault isolation, study limits, and stopping the driver (SIGINT, SIGTERM, SIGKILL)."""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import gpbo
from gpbo.exceptions import StudyError
from gpbo.strategies import History, Random
from tests import objectives_for_workers as objectives
from tests.test_executors_process import alive, script_env, still_alive_after
from tests.test_resume import statuses

XY = {"x": gpbo.Real(0.0, 1.0), "y": gpbo.Real(0.0, 1.0)}
CPU2 = ["cpu", "cpu"]  # two CPU slots, also where a GPU is visible
GPU_VISIBLE = bool(gpbo.executors.resolve_slots("auto") != ["cpu"])


class RecordingRandom(Random):
    """Random search that notes what each ask was told: ``(n, pending rows, trials so far)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []

    def propose(self, history: History, n: int) -> list[dict[str, Any]]:
        self.calls.append((n, history.X_pending.shape[0], history.n_total))
        return super().propose(history, n)


def most_at_once(trials: Sequence[gpbo.Trial]) -> int:
    """The largest number of trials running at the same moment."""
    events = sorted(
        [(t.started_at, 1) for t in trials] + [(t.finished_at, -1) for t in trials],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


# -- slots, rounds, asynchronous mode -------------------------------------------------------


@pytest.mark.skipif(GPU_VISIBLE, reason="devices=2 means two GPUs where one is visible")
def test_two_cpu_slots_run_synchronous_rounds_in_waves() -> None:
    strategy = RecordingRandom()
    objective = functools.partial(objectives.sphere_after_sleep, base=0.2, scale=0.4)
    result = gpbo.optimize(objective, XY, n_trials=8, batch_size=4, devices=2,
                           strategy=strategy, seed=0, verbose=False)  # executor="auto"
    trials = result.trials
    assert [t.status for t in trials] == ["complete"] * 8
    pids = {t.metrics["pid"] for t in trials}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes, not the driver
    assert {t.device for t in trials} == {"cpu"}
    # each round proposes batch_size points jointly, once the previous round has ended
    assert strategy.calls == [(4, 0, 0), (4, 0, 4)]
    assert [t.round for t in trials] == [0, 0, 0, 0, 1, 1, 1, 1]
    first, second = trials[:4], trials[4:]
    assert min(t.started_at for t in second) >= max(t.finished_at for t in first) - 0.01
    assert most_at_once(first) == 2 and most_at_once(second) == 2  # waves of two
    assert most_at_once(trials) == 2


def test_slots_left_idle_by_a_small_batch_are_warned_about(caplog, monkeypatch) -> None:
    # devices=4 (or "auto" on a 4-GPU machine) with the default batch_size=1: one at a time
    from gpbo.executors.process import Process

    monkeypatch.setattr(Process, "start", lambda *a, **k: (_ for _ in ()).throw(RuntimeError))
    with caplog.at_level("WARNING", logger="gpbo"), pytest.raises(RuntimeError):
        gpbo.optimize(objectives.sphere_after_sleep, XY, n_trials=2, devices=["cpu", "cpu"],
                      executor="process", verbose=False)
    assert "2 slots (cpu, cpu) but batch_size=1" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="gpbo"), pytest.raises(RuntimeError):
        gpbo.optimize(objectives.sphere_after_sleep, XY, n_trials=2, devices=["cpu", "cpu"],
                      executor="process", mode="async", verbose=False)
    assert "batch_size" not in caplog.text
    with caplog.at_level("WARNING", logger="gpbo"), pytest.raises(RuntimeError):
        gpbo.optimize(objectives.sphere_after_sleep, XY, n_trials=2, devices=["cpu", "cpu"],
                      executor="process", mode="async", batch_size=4, verbose=False)
    assert "batch_size=4 has no effect in mode='async'" in caplog.text  # it was ignored silently


def test_single_cpu_slot_runs_in_the_driver() -> None:
    objective = functools.partial(objectives.sphere_after_sleep)
    result = gpbo.optimize(objective, XY, n_trials=2, devices=["cpu"], strategy="sobol",
                           verbose=False)
    assert {t.metrics["pid"] for t in result.trials} == {float(os.getpid())}


def test_async_mode_refills_each_freed_slot_with_running_trials_pending() -> None:
    strategy = RecordingRandom()
    # durations from 0.1 s to 2.1 s: a synchronous round would leave a slot idle for long
    objective = functools.partial(objectives.sphere_after_sleep, base=0.1, scale=2.0)
    result = gpbo.optimize(objective, XY, n_trials=8, mode="async", devices=1,
                           workers_per_device=2, strategy=strategy, seed=3, verbose=False)
    trials = result.trials
    assert [t.status for t in trials] == ["complete"] * 8
    assert len({t.metrics["pid"] for t in trials}) == 2  # two slots on one device
    assert strategy.calls[0] == (2, 0, 0)  # the first two points jointly
    for n, pending, _ in strategy.calls[1:-1]:
        assert n + pending == 2, strategy.calls  # the running trial is a pending point
    assert sum(n for n, _, _ in strategy.calls) == 8
    assert [total for _, _, total in strategy.calls] == sorted(
        total for _, _, total in strategy.calls
    )
    last_start = max(t.started_at for t in trials)
    for done in trials:
        if done.finished_at >= last_start:
            continue
        # the slot it freed took a new trial at once (a generous bound; a round would wait)
        gap = min(t.started_at - done.finished_at for t in trials
                  if t.started_at >= done.finished_at - 0.01)
        assert gap < 0.75, f"trial {done.number}'s slot stayed idle for {gap:.2f} s"
    assert most_at_once(trials) == 2


# -- fault isolation ------------------------------------------------------------------------


def test_crashes_fail_their_trial_and_the_study_goes_on(tmp_path: Path) -> None:
    kinds = ["sleep_and_return", "raise_error", "exit_hard", "segfault", "sleep_forever"]
    started = time.monotonic()
    result = gpbo.optimize(objectives.dispatch, {"fn": gpbo.Choice(kinds)}, n_trials=5,
                           batch_size=2, devices=CPU2, strategy="grid", trial_timeout=1.5,
                           max_consecutive_failures=None, journal=tmp_path / "j.jsonl",
                           verbose=False)
    assert time.monotonic() - started < 60
    by_kind = {t.params["fn"]: t for t in result.trials}
    assert set(by_kind) == set(kinds)
    assert by_kind["sleep_and_return"].status == "complete"
    error = by_kind["raise_error"]
    assert error.status == "failed"
    assert error.error.startswith("ValueError: boom from trial")
    assert "Traceback" in error.error and "objectives_for_workers.py" in error.error
    assert by_kind["exit_hard"].status == "failed"
    assert "exited with code 3" in by_kind["exit_hard"].error
    assert by_kind["segfault"].status == "failed"
    assert "signal SIGSEGV (-11)" in by_kind["segfault"].error
    assert by_kind["sleep_forever"].status == "timeout"
    assert "trial_timeout of 1.5 s" in by_kind["sleep_forever"].error
    assert result.stop_reason == "5 trials finished"
    stored = {t.number: t.status for t in gpbo.load(tmp_path / "j.jsonl").trials}
    assert stored == {t.number: t.status for t in result.trials}
    # nobody wrote in the trials' folders; the killed workers' are removed by the driver
    assert list((tmp_path / "j.trials").iterdir()) == []


def test_max_consecutive_failures_ends_a_parallel_study(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with pytest.raises(StudyError, match=r"[34] trials in a row failed") as raised:
        gpbo.optimize(objectives.raise_error, XY, n_trials=20, batch_size=2, devices=CPU2,
                      strategy="sobol", max_consecutive_failures=3, journal=path,
                      verbose=False)
    # Two trials run at once, so which of them failed first depends on scheduling; the
    # message names that trial and carries its own error.
    named = re.search(r"the first of them \(trial (\d+),", str(raised.value))
    assert named is not None and named.group(1) in {"0", "1"}
    assert f"boom from trial {named.group(1)}" in str(raised.value)
    statuses = [t.status for t in gpbo.load(path).trials]
    assert 3 <= statuses.count("failed") <= 4
    assert set(statuses) <= {"failed", "interrupted"}  # nothing left pending or running
    assert len(statuses) == 4  # two rounds of two, no third


def test_failures_in_a_row_end_the_study_only_once_the_running_trials_fail_too(
    tmp_path: Path,
) -> None:
    # Three quick failures (a diverging learning rate, say) came in while another slot's trial
    # still trained: the study ended and interrupted it, though that trial then completes.
    objective = functools.partial(objectives.fail_fast_but_one, held=3, flags=str(tmp_path))
    result = gpbo.optimize(objective, XY, n_trials=6, batch_size=4, devices=["cpu"] * 4,
                           strategy="sobol", max_consecutive_failures=3, verbose=False)
    assert [t.status for t in result.trials] == ["failed"] * 3 + ["complete"] * 3


def test_an_unreadable_first_metric_ends_the_study_once_the_running_trials_end(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    with pytest.raises(StudyError, match=r"(?s)left no metric.*records 2 trials that failed so "
                       r"as interrupted, to run again.*without the metric 'value'"):
        gpbo.optimize(objectives.metric_missing_unless_slow, XY, n_trials=20, batch_size=2,
                      devices=CPU2, strategy="sobol", journal=path, verbose=False)
    trials = gpbo.load(path).trials
    # the other trial of the round ran to its end (no interrupted training), and no new one;
    # both failed for the setup, not their parameters: the fixed run trains them again
    assert [t.status for t in trials] == ["interrupted", "interrupted"]
    fixed = gpbo.optimize(objectives.sphere_after_sleep, XY, n_trials=3, batch_size=2,
                          devices=CPU2, strategy="sobol", journal=path, verbose=False)
    assert [t.status for t in fixed.trials] == ["complete"] * 3
    assert [t.params for t in fixed.trials[:2]] == [t.params for t in trials]


def test_an_unreadable_first_metric_is_reopened_on_resume_after_ctrl_c(tmp_path: Path) -> None:
    # Ctrl+C while the round's other trial still runs: the study never reached its end, where
    # it reopens such trials, and a resume counted trial 0 as failed toward n_trials
    path, flag = tmp_path / "j.jsonl", tmp_path / "hold"
    flag.touch()

    def ctrl_c_after_trial_0(study: gpbo.Study, trial: gpbo.Trial) -> None:
        if trial.number == 0:
            raise KeyboardInterrupt

    objective = functools.partial(objectives.metric_missing_then_held, flag=str(flag))
    with pytest.raises(KeyboardInterrupt):
        gpbo.optimize(objective, XY, n_trials=3, batch_size=2, devices=CPU2, strategy="sobol",
                      journal=path, callbacks=[ctrl_c_after_trial_0], verbose=False)
    stopped = gpbo.load(path).trials
    assert [t.status for t in stopped] == ["failed", "interrupted"]
    flag.unlink()
    fixed = gpbo.optimize(objectives.sphere_after_sleep, XY, n_trials=3, batch_size=2,
                          devices=CPU2, strategy="sobol", journal=path, verbose=False)
    assert [t.status for t in fixed.trials] == ["complete"] * 3
    assert [t.params for t in fixed.trials[:2]] == [t.params for t in stopped]


def test_a_trial_completing_beside_an_unreadable_metric_lets_the_study_go_on(
    tmp_path: Path,
) -> None:
    objective = functools.partial(objectives.metric_missing_unless_slow, slow_from=1)
    result = gpbo.optimize(objective, XY, n_trials=4, batch_size=2, devices=CPU2,
                           strategy="sobol", verbose=False)
    assert [t.status for t in result.trials] == ["failed", "complete", "complete", "complete"]


def test_study_timeout_interrupts_running_trials(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    objective = functools.partial(objectives.sphere_after_sleep, base=0.5)
    started_wall, started = time.time(), time.monotonic()
    result = gpbo.optimize(objective, XY, n_trials=100, batch_size=2, devices=CPU2,
                           strategy="sobol", timeout=6, journal=path, verbose=False)
    elapsed = time.monotonic() - started
    assert 6 <= elapsed < 6 + 8, elapsed  # the grace period and shut-down, no more
    assert "timeout of 6 s" in result.stop_reason
    statuses = [t.status for t in result.trials]
    assert set(statuses) <= {"complete", "interrupted"}
    assert statuses.count("complete") >= 1
    assert all(t.started_at <= started_wall + 6.5 for t in result.trials if t.started_at)
    assert [t.status for t in gpbo.load(path).trials] == statuses


def test_unpicklable_objective_is_refused_before_any_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # `import cloudpickle` fails
    calls = []
    path = tmp_path / "j.jsonl"
    with pytest.raises(gpbo.GpboError, match="cannot be sent to a worker process") as info:
        gpbo.optimize(lambda params: calls.append(params) or 1.0, XY, n_trials=4, devices=CPU2,
                      journal=path, verbose=False)
    assert 'executor="serial"' in str(info.value)
    assert calls == [] and gpbo.load(path).trials == []


def test_driver_without_main_guard_gets_the_guard_in_its_error(tmp_path: Path) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text(textwrap.dedent(
        """
        import gpbo
        from objectives_for_workers import sleep_and_return

        gpbo.optimize(sleep_and_return, {"value": gpbo.Real(0, 1)}, n_trials=2,
                      devices=["cpu", "cpu"], journal="j.jsonl")
        """
    ))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=script_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "GpboError" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr and "gpbo.optimize(...)" in done.stderr
    assert "bootstrapping phase" not in done.stderr  # not Python's own traceback
    assert "[gpbo] done" not in done.stdout
    assert gpbo.load(tmp_path / "j.jsonl").trials == []


# -- stopping the driver --------------------------------------------------------------------

DRIVER = """
import functools
import sys

import gpbo
from objectives_for_workers import hang_with_child

if __name__ == "__main__":
    gpbo.optimize(hang_with_child, {"x": gpbo.Real(0, 1), "y": gpbo.Real(0, 1)}, n_trials=4,
                  batch_size=2, devices=["cpu", "cpu"], strategy="sobol", seed=0,
                  journal=sys.argv[1])
"""


def start_driver(tmp_path: Path, journal: Path) -> subprocess.Popen[str]:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    return subprocess.Popen([sys.executable, str(script), str(journal)], cwd=tmp_path,
                            env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_pids(
    trial_dirs: Sequence[Path], driver: subprocess.Popen[str], journal: Path
) -> list[int]:
    """The worker and child pids the hanging trials wrote, once both trials run.

    Also waits for the journal to say so: the driver hands a trial to its worker before it
    records the trial as running, so a worker can be busy before its trial is written down.
    """
    files = [d / name for d in trial_dirs for name in ("worker.pid", "child.pid")]
    end = time.monotonic() + 90
    while not (all(f.exists() and f.read_text() for f in files)
               and statuses(journal) == ["running", "running"]):
        assert driver.poll() is None, driver.communicate()
        assert time.monotonic() < end, "the trials did not start within 90 s"
        time.sleep(0.05)
    return [int(f.read_text()) for f in files]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_stopping_the_driver_stops_workers_and_keeps_the_journal(
    tmp_path: Path, signum: int
) -> None:
    journal = tmp_path / "study.jsonl"
    driver = start_driver(tmp_path, journal)
    watchdog = threading.Timer(150, driver.kill)
    watchdog.start()
    try:
        trial_dirs = [tmp_path / "study.trials" / f"{n:06d}" for n in (0, 1)]
        pids = wait_for_pids(trial_dirs, driver, journal)
        assert len(set(pids)) == 4 and all(alive(pid) for pid in pids)
        driver.send_signal(signum)
        stopped = time.monotonic()
        assert still_alive_after(pids, 5.0) == [], "workers or their children outlived the stop"
        assert time.monotonic() - stopped < 5.5
        out, err = driver.communicate(timeout=30)
    finally:
        watchdog.cancel()
        driver.kill()
        driver.communicate()
    assert driver.returncode != 0
    study = gpbo.load(journal)
    assert [t.number for t in study.trials] == [0, 1]
    if signum == signal.SIGKILL:
        assert [t.status for t in study.trials] == ["running", "running"]
    else:
        assert "KeyboardInterrupt" in err
        assert [t.status for t in study.trials] == ["interrupted", "interrupted"]
        hint = [line for line in out.splitlines() if line.startswith("[gpbo] interrupted:")]
        assert hint == [
            f"[gpbo] interrupted: run the same call again with journal={str(journal)!r} to "
            "resume"
        ]
    # the journal is consistent: the study resumes, re-running the stopped trials first
    params = [t.params for t in study.trials]
    objective = functools.partial(objectives.sphere_after_sleep)
    result = gpbo.optimize(objective, {"x": gpbo.Real(0, 1), "y": gpbo.Real(0, 1)}, n_trials=4,
                           batch_size=2, executor="serial", strategy="sobol", journal=journal,
                           verbose=False)
    assert [t.status for t in result.trials] == ["complete"] * 4
    assert [t.params for t in result.trials[:2]] == params


# -- efficiency -----------------------------------------------------------------------------


def test_gp_machinery_is_imported_while_the_first_trials_run(tmp_path: Path) -> None:
    script = tmp_path / "warm_up.py"
    script.write_text(textwrap.dedent(
        """
        import sys

        import gpbo

        def seen_at_first_trial(study, trial):
            if trial.number == 0:
                print("botorch" in sys.modules, flush=True)

        if __name__ == "__main__":
            space = {"x": gpbo.Real(0, 1)}
            for n_trials in (4, 5):  # with n_init=4: no GP fit, then one
                # worker processes: the serial executor skips the warm-up (see test_loop.py)
                gpbo.optimize(lambda p: p["x"], space, n_trials=n_trials, executor="process",
                              strategy=gpbo.strategies.Bayes(n_init=4, num_restarts=2,
                                                             raw_samples=16, maxiter=5),
                              callbacks=[seen_at_first_trial], verbose=False)
        """
    ))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=script_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
