"""Tests for gpbo/loop.py: optimize() end to end with the serial executor."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import gpbo
from gpbo.exceptions import StudyError
from tests.conftest import RunsTogether, fast_bayes

SPACE = {"x": gpbo.Real(-5, 5), "y": gpbo.Real(-5, 5)}


def sphere(params):
    return params["x"] ** 2 + params["y"] ** 2


def test_optimize_returns_every_trial_and_the_best():
    result = gpbo.optimize(sphere, SPACE, n_trials=12, batch_size=3, seed=0, verbose=False,
                           strategy=fast_bayes(n_init=6))
    assert len(result.trials) == 12
    assert all(t.status == "complete" for t in result.trials)
    assert result.best_value == min(t.value for t in result.trials)
    assert result.best_params == result.best_trial.params
    assert [t.round for t in result.trials] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert all(t.device == "cpu" and t.duration is not None for t in result.trials)
    assert "12 trials finished" in result.stop_reason


def test_maximize_and_metric_mapping():
    def objective(params):
        return {"accuracy": -sphere(params), "loss": sphere(params)}

    result = gpbo.optimize(objective, SPACE, n_trials=6, direction="maximize", metric="accuracy",
                           strategy="random", seed=1, verbose=False)
    assert result.best_value == max(t.value for t in result.trials)
    assert all(t.metrics["loss"] == -t.value for t in result.trials)


def test_failing_trials_fail_alone_and_count():
    calls = []

    def objective(params):
        calls.append(params)
        kind = len(calls) % 4
        if kind == 1:
            raise RuntimeError("boom")
        if kind == 2:
            return math.nan
        if kind == 3:
            return None
        return sphere(params)

    result = gpbo.optimize(objective, SPACE, n_trials=8, strategy="random", seed=0,
                           verbose=False, max_consecutive_failures=None)
    statuses = [t.status for t in result.trials]
    assert len(calls) == 8 and statuses.count("failed") == 6 and statuses.count("complete") == 2
    assert "RuntimeError: boom" in result.trials[0].error
    assert "Traceback" in result.trials[0].error
    assert "not a finite number" in result.trials[1].error
    assert "not a number" in result.trials[2].error


def test_a_stop_signal_right_after_wait_returned_loses_no_finished_trial(tmp_path):
    from gpbo.executors.serial import Serial

    class SignalAfterWait(Serial):
        """Ctrl+C lands after the second trial's outcome was handed over, before recording."""

        def wait(self, timeout=None):
            outcomes = super().wait(timeout)
            if any(o.number == 1 for o in outcomes):
                raise KeyboardInterrupt
            return outcomes

    journal = tmp_path / "j.jsonl"
    with pytest.raises(KeyboardInterrupt):
        gpbo.optimize(sphere, SPACE, n_trials=4, strategy="random", seed=0,
                      executor=SignalAfterWait(), journal=journal, verbose=False)
    trials = gpbo.load(journal).trials
    assert [t.status for t in trials] == ["complete", "complete"]


def test_a_trial_recorded_as_the_stop_signal_came_is_shown_and_called_back(
    tmp_path, monkeypatch, capsys
):
    from gpbo.study import Study

    tell = Study.tell

    def tell_then_ctrl_c(self, trial, *args, **kwargs):
        told = tell(self, trial, *args, **kwargs)
        if told.number == 1:  # Ctrl+C while the trial is recorded: held till recorded
            os.kill(os.getpid(), signal.SIGINT)
        return told

    monkeypatch.setattr(Study, "tell", tell_then_ctrl_c)
    called_back: list[int] = []
    journal = tmp_path / "j.jsonl"
    with pytest.raises(KeyboardInterrupt):
        gpbo.optimize(sphere, SPACE, n_trials=4, strategy="random", seed=0, executor="serial",
                      journal=journal, callbacks=[lambda study, t: called_back.append(t.number)])
    assert [t.status for t in gpbo.load(journal).trials] == ["complete", "complete"]
    assert called_back == [0, 1]  # trial 1 counts as finished on resume: now or never
    assert "2/4 trial 1" in capsys.readouterr().out


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs SIGTERM")
def test_an_executor_that_replaces_the_sigterm_handler_does_not_keep_it(tmp_path):
    # ray.init installs a SIGTERM handler that calls sys.exit at once: no resume hint, and
    # it could cut the sections where an outcome is being recorded
    from gpbo.executors.serial import Serial

    before = signal.getsignal(signal.SIGTERM)

    class LikeRay(Serial):
        def start(self, objective, *, slots, metric):
            super().start(objective, slots=slots, metric=metric)
            signal.signal(signal.SIGTERM, lambda *args: sys.exit(1))

    def objective(params):
        if gpbo.current_trial().number == 1:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        return sphere(params)

    journal = tmp_path / "j.jsonl"
    # as in a fresh driver (an earlier test's ray.init may have left its handler here)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            gpbo.optimize(objective, SPACE, n_trials=4, strategy="random", seed=0,
                          executor=LikeRay(), journal=journal, verbose=False)
        assert [t.status for t in gpbo.load(journal).trials] == ["complete", "interrupted"]
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)


def test_sys_exit_in_a_serial_trial_fails_that_trial_alone():
    def objective(params):
        if params["x"] > 0.0:
            sys.exit("bad config")  # a training script's own exit
        return sphere(params)

    result = gpbo.optimize(objective, SPACE, n_trials=6, strategy="random", seed=0,
                           executor="serial", verbose=False, max_consecutive_failures=None)
    failed = [t for t in result.trials if t.status == "failed"]
    assert len(result.trials) == 6 and failed
    assert all(t.error == "the objective exited (SystemExit: 'bad config'); it must return"
               for t in failed)


def test_an_exception_that_cannot_be_printed_fails_its_trial_alone():
    class UnprintableError(Exception):
        def __str__(self):
            return self.detail  # never set: str() of it raises AttributeError

    def objective(params):
        if params["x"] > 0:
            raise UnprintableError()
        return sphere(params)

    result = gpbo.optimize(
        objective,
        SPACE,
        n_trials=6,
        strategy="sobol",
        seed=0,
        executor="serial",
        verbose=False,
        max_consecutive_failures=None,
    )
    failed = [t for t in result.trials if t.status == "failed"]
    assert len(result.trials) == 6 and failed
    assert all(t.params["x"] > 0 for t in failed)
    assert failed[0].error.startswith("UnprintableError: <str() failed")
    assert "Traceback" in failed[0].error


def test_max_consecutive_failures_ends_the_study_quoting_the_first():
    calls = []

    def objective(params):
        calls.append(1)
        raise ValueError(f"bad config #{len(calls)}")

    with pytest.raises(StudyError, match=r"(?s)3 trials in a row failed.*bad config #1"):
        gpbo.optimize(objective, SPACE, n_trials=10, max_consecutive_failures=3,
                      strategy="random", verbose=False)
    assert len(calls) == 3


def test_failures_in_a_row_are_counted_on_across_a_resume(tmp_path):
    calls = []

    def objective(params):
        calls.append(1)
        if len(calls) == 1:
            return 1.0
        raise ValueError(f"bad config #{len(calls)}")

    journal = tmp_path / "j.jsonl"
    # a session that ends (its budget) after a completed trial and two failures
    gpbo.optimize(objective, SPACE, n_trials=3, max_consecutive_failures=3,
                  strategy="random", journal=journal, verbose=False)
    with pytest.raises(StudyError, match=r"(?s)3 trials in a row failed.*bad config #2"):
        gpbo.optimize(objective, SPACE, n_trials=10, max_consecutive_failures=3,
                      strategy="random", journal=journal, verbose=False)
    assert len(calls) == 4, "the resume ran one trial, the third failure in a row"


@pytest.mark.parametrize(
    ("returned", "why"),
    [
        ({"loss": 1.0}, r"without the metric 'value'; .*\(its keys: \['loss'\]\)"),
        (None, r"returned None \(NoneType\), not a number"),
    ],
)
def test_a_first_trial_without_a_readable_metric_ends_the_study_at_once(tmp_path, returned, why):
    # five trainings would run before max_consecutive_failures ended it, each failing alike
    calls = []

    def objective(params):
        calls.append(1)
        return returned

    path = tmp_path / "j.jsonl"
    with pytest.raises(StudyError, match=rf"(?s)trial 0 .*left no metric gpbo can read, and "
                       rf"no trial has completed.*records 1 trial that failed so as "
                       rf"interrupted, to run again.*max_consecutive_failures to None.*{why}"):
        gpbo.optimize(objective, SPACE, n_trials=10, strategy="random", journal=path,
                      verbose=False)
    assert len(calls) == 1
    assert [t.status for t in gpbo.load(path).trials] == ["interrupted"]  # for the fixed run


def test_a_resume_reopens_marked_failures_unless_max_consecutive_failures_is_none(
    tmp_path, capsys
):
    # a driver stopped before the study's end left trial 0 failed with the unusable mark
    path = tmp_path / "j.jsonl"
    with gpbo.Study(SPACE, strategy="random", seed=0, journal=path) as study:
        (trial,) = study.ask(1)
        study._tell(trial, None, error="ValueError: no metric", status=None, metrics=None,
                    unusable=True)
    shutil.copy(path, tmp_path / "copy.jsonl")
    # run on regardless: failed for good, as the study would have left it
    kept = gpbo.optimize(sphere, SPACE, n_trials=2, strategy="random", seed=0,
                         journal=tmp_path / "copy.jsonl", max_consecutive_failures=None,
                         verbose=False)
    assert [t.status for t in kept.trials] == ["failed", "complete"]
    result = gpbo.optimize(sphere, SPACE, n_trials=2, strategy="random", seed=0, journal=path)
    assert "trial 0 left no readable metric and none completed" in capsys.readouterr().out
    assert [t.status for t in result.trials] == ["complete", "complete"]
    assert result.trials[0].params == trial.params


def test_an_unreadable_metric_after_a_completed_trial_is_one_failure(tmp_path):
    path = tmp_path / "j.jsonl"
    gpbo.optimize(sphere, SPACE, n_trials=1, strategy="random", journal=path, verbose=False)
    calls = []

    def objective(params):  # a branch of the training code that forgot the key
        calls.append(1)
        return {"loss": 1.0} if len(calls) == 1 else sphere(params)

    result = gpbo.optimize(objective, SPACE, n_trials=4, strategy="random", journal=path,
                           verbose=False)
    assert [t.status for t in result.trials] == ["complete", "failed", "complete", "complete"]


def test_nan_or_a_crash_first_is_the_trials_own_failure_and_none_runs_on():
    def objective(params):  # NaN depends on the parameters: a diverged training
        return math.nan if params["x"] > 0 else sphere(params)

    result = gpbo.optimize(objective, SPACE, n_trials=6, strategy="sobol", seed=0,
                           max_consecutive_failures=None, verbose=False)
    assert len(result.trials) == 6 and {t.status for t in result.trials} == {"complete", "failed"}
    result = gpbo.optimize(lambda params: {"loss": 1.0}, SPACE, n_trials=3, strategy="random",
                           max_consecutive_failures=None, verbose=False)
    assert [t.status for t in result.trials] == ["failed"] * 3


def test_an_objective_that_cannot_take_one_dict_is_refused_before_any_trial():
    calls = []

    def train(lr, hidden):  # the parameters as arguments: every trial failed alike
        calls.append(1)
        return lr

    def evaluate():
        calls.append(1)
        return 1.0

    space = {"lr": gpbo.Real(0, 1), "hidden": gpbo.Int(1, 4)}
    with pytest.raises(gpbo.GpboError, match=r"train\(lr, hidden\) cannot be called as "
                       r"train\(params\).*\{'lr': ..., 'hidden': ...\}.*"
                       r"return train\(\*\*params\)"):
        gpbo.optimize(train, space, n_trials=2, strategy="random", verbose=False)
    with pytest.raises(gpbo.GpboError, match=r"evaluate\(\) cannot be called as "
                       r"evaluate\(params\) \(too many positional arguments\)"):
        gpbo.optimize(evaluate, space, n_trials=2, strategy="random", verbose=False)
    assert calls == []
    # what can take one dict is left alone: a default, *args, a partial
    for objective in (lambda p, scale=1.0: p["lr"] * scale, lambda *args: args[0]["lr"],
                      functools.partial(lambda p, k: p["lr"] + k, k=1.0)):
        result = gpbo.optimize(objective, space, n_trials=1, strategy="random", verbose=False)
        assert result.trials[0].status == "complete"


def test_the_failure_stop_keeps_the_completed_trials_without_a_journal():
    calls = []

    def objective(params):
        calls.append(1)
        if len(calls) <= 2:
            return float(len(calls))
        raise ValueError("diverged")

    with pytest.raises(StudyError, match=r"best so far: trial 0, value 1.*\.result") as info:
        gpbo.optimize(objective, SPACE, n_trials=10, max_consecutive_failures=3,
                      strategy="random", executor="serial", verbose=False)
    result = info.value.result
    assert [t.status for t in result.trials] == ["complete"] * 2 + ["failed"] * 3
    assert result.best_value == 1.0 and result.best_trial.number == 0
    assert "in a row failed" in result.stop_reason
    assert "failed with: ValueError: diverged" in result.stop_reason  # not cut at "with:"


def test_a_callbacks_own_error_keeps_the_trials_without_a_journal():
    # only a StudyError carried them: a logging callback that failed on the last trial lost
    # every result of a journal-less study
    def flaky_logger(study, trial):
        if trial.number == 3:
            raise ConnectionError("the tracking server went away")

    with pytest.raises(ConnectionError) as info:
        gpbo.optimize(sphere, SPACE, n_trials=4, strategy="random", seed=0, executor="serial",
                      callbacks=[flaky_logger], verbose=False)
    result = info.value.result
    assert [t.status for t in result.trials] == ["complete"] * 4
    assert "tracking server" in result.stop_reason
    assert gpbo.StudyError is StudyError and gpbo.NoCompletedTrialError  # catchable as gpbo.*


def test_a_complete_trial_resets_the_failure_count():
    calls = []

    def objective(params):
        calls.append(1)
        if len(calls) % 3 == 0:
            return 1.0
        raise ValueError("flaky")

    result = gpbo.optimize(objective, SPACE, n_trials=9, max_consecutive_failures=3,
                           strategy="random", verbose=False)
    assert len(result.trials) == 9


def test_callbacks_run_after_each_trial_and_stop_study_ends_cleanly():
    seen = []

    def callback(study, trial):
        seen.append((trial.number, len(study.trials)))
        if trial.value is not None and trial.value < 10:
            raise gpbo.StopStudy("good enough")

    result = gpbo.optimize(sphere, SPACE, n_trials=50, strategy="random", seed=0,
                           callbacks=[callback], verbose=False)
    assert len(result.trials) < 50
    assert result.best_value < 10
    assert "good enough" in result.stop_reason
    assert [n for n, _ in seen] == list(range(len(result.trials)))


def _stops_in_the_objective(params):
    raise gpbo.StopStudy("from the objective")


def test_stop_study_raised_in_the_objective_fails_its_trial_and_says_where_it_ends_one():
    result = gpbo.optimize(_stops_in_the_objective, SPACE, n_trials=2, strategy="random",
                           seed=0, verbose=False, max_consecutive_failures=None)
    first_line = result.trials[0].error.splitlines()[0]
    assert first_line.startswith("StopStudy: from the objective (raised in the objective")
    assert "raise it in a callback" in first_line


def test_stop_study_leaves_the_rest_of_a_round_unstarted_to_run_on_resume(tmp_path):
    ran = []

    def objective(params):
        ran.append(gpbo.current_trial().number)
        return sphere(params)

    def stop(study, trial):
        raise gpbo.StopStudy("enough")

    path = tmp_path / "run.jsonl"
    # a round of 4 on one serial slot runs in 4 waves; the stop comes after the first
    result = gpbo.optimize(objective, SPACE, n_trials=8, batch_size=4, strategy="random",
                           executor="serial", seed=0, journal=path, callbacks=[stop],
                           verbose=False)
    assert ran == [0]
    assert [t.status for t in result.trials] == ["complete"] + ["interrupted"] * 3
    resumed = gpbo.optimize(objective, SPACE, n_trials=4, batch_size=4, strategy="random",
                            executor="serial", seed=0, journal=path, verbose=False)
    assert ran == [0, 1, 2, 3]
    assert [t.status for t in resumed.trials] == ["complete"] * 4


def test_a_raising_callback_does_not_lose_the_trials_that_ended_with_it(tmp_path):
    def callback(study, trial):
        raise ValueError("a bug in the callback")

    path = tmp_path / "run.jsonl"
    with pytest.raises(ValueError, match="a bug in the callback"):
        gpbo.optimize(sphere, SPACE, n_trials=4, batch_size=2, strategy="random",
                      executor=RunsTogether(), seed=0, journal=path, callbacks=[callback],
                      verbose=False)
    # both trials of the first round had ended: both results are kept, neither runs again
    assert [t.status for t in gpbo.load(path).trials] == ["complete", "complete"]


def test_batch_size_auto_is_what_the_executor_runs_at_once():
    result = gpbo.optimize(sphere, SPACE, n_trials=6, batch_size="auto", strategy="random",
                           executor=RunsTogether(), seed=0, verbose=False)
    assert [t.round for t in result.trials] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(gpbo.GpboError, match="batch_size"):
        gpbo.optimize(sphere, SPACE, n_trials=2, batch_size="many", verbose=False)


def test_study_timeout_stops_launching_trials():
    def slow(params):
        time.sleep(0.2)
        return sphere(params)

    start = time.monotonic()
    result = gpbo.optimize(slow, SPACE, n_trials=100, timeout=0.7, strategy="random",
                           verbose=False)
    assert time.monotonic() - start < 3
    assert 2 <= len(result.trials) <= 6
    assert "timeout" in result.stop_reason


@pytest.mark.parametrize("timeout", [1.0, None])
def test_a_short_study_timeout_is_not_overrun_by_the_gp_warm_up(monkeypatch, timeout):
    import gpbo.loop as gpbo_loop
    from gpbo.executors.serial import Serial

    class BesideTheDriver(Serial):
        runs_in_driver = False  # as the process executor: the warm-up runs beside trials

    loads = []

    def slow_import():
        loads.append(time.monotonic())
        time.sleep(3 if timeout else 0.1)

    monkeypatch.setattr(gpbo_loop, "load_gp_machinery", slow_import)
    monkeypatch.delitem(sys.modules, "botorch", raising=False)  # as in a fresh driver

    def objective(params):
        time.sleep(0.1)
        return sphere(params)

    def stop_before_a_fit(study, trial):
        if timeout is None:  # botorch stays unimported: it is out of sys.modules
            raise gpbo.StopStudy

    start = time.monotonic()
    result = gpbo.optimize(objective, SPACE, n_trials=100, timeout=timeout,
                           strategy=gpbo.strategies.Bayes(n_init=50), executor=BesideTheDriver(),
                           callbacks=[stop_before_a_fit], seed=0, verbose=False)
    if timeout:
        assert time.monotonic() - start < timeout + 1.5  # the import would block for 3 s
        assert "timeout" in result.stop_reason and not loads
    else:
        assert len(loads) == 1  # without a deadline the warm-up still runs, once


@pytest.mark.parametrize("ending", ["returns", "exits"])
def test_ctrl_c_caught_by_a_serial_objective_still_stops_the_study(tmp_path, ending):
    # PyTorch Lightning catches KeyboardInterrupt for a graceful shutdown and returns (or
    # exits): the cut-short trial was recorded complete (or failed) and the study went on
    def objective(params):
        if gpbo.current_trial().number == 1:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                if ending == "exits":
                    sys.exit(1)
                return 123.0  # the loss so far
        return sphere(params)

    journal = tmp_path / "j.jsonl"
    with pytest.raises(KeyboardInterrupt):
        gpbo.optimize(objective, SPACE, n_trials=4, strategy="random", seed=0,
                      executor="serial", journal=journal, verbose=False)
    trials = gpbo.load(journal).trials
    assert [t.status for t in trials] == ["complete", "interrupted"]
    assert trials[1].value is None  # runs again on resume, not a GP point at 123


def test_study_timeout_interrupts_a_running_serial_trial(tmp_path):
    def slow(params):
        time.sleep(0.05 if params["x"] < 0 else 30)
        return sphere(params)

    start = time.monotonic()
    result = gpbo.optimize(slow, SPACE, n_trials=8, timeout=1.0, strategy="sobol", seed=0,
                           executor="serial", trial_timeout=60, journal=tmp_path / "j.jsonl",
                           verbose=False)
    assert time.monotonic() - start < 5  # not the 30 s trial
    assert "study timeout of 1 s" in result.stop_reason
    statuses = [t.status for t in result.trials]
    assert statuses[-1] == "interrupted" and "running" not in statuses  # runs again on resume
    assert all(s == "complete" for s in statuses[:-1])


def test_trial_timeout_in_the_serial_executor():
    def objective(params):
        if params["x"] > 0:
            time.sleep(10)
        return sphere(params)

    start = time.monotonic()
    result = gpbo.optimize(objective, SPACE, n_trials=6, trial_timeout=0.3, strategy="sobol",
                           seed=0, executor="serial", verbose=False,
                           max_consecutive_failures=None)
    assert time.monotonic() - start < 6
    timed_out = [t for t in result.trials if t.status == "timeout"]
    assert timed_out and all(t.params["x"] > 0 for t in timed_out)
    assert all(t.status == "complete" for t in result.trials if t.params["x"] <= 0)
    assert "trial_timeout of 0.3 s" in timed_out[0].error


def test_a_serial_trial_that_swallows_its_timeout_is_stopped_and_recorded_timeout():
    def objective(params):
        for _ in range(3):  # swallows the first TrialTimeout, as a bare `except:` would
            with contextlib.suppress(BaseException):
                time.sleep(10)
        return sphere(params)

    start = time.monotonic()
    result = gpbo.optimize(objective, SPACE, n_trials=2, trial_timeout=0.2, strategy="sobol",
                           seed=0, executor="serial", verbose=False,
                           max_consecutive_failures=None)
    assert time.monotonic() - start < 8  # three sleeps swallowed, each cut within ~1 s
    assert [t.status for t in result.trials] == ["timeout", "timeout"]
    # the alarm is off once the study ended: nothing fires in the caller afterwards
    time.sleep(1.5)


def test_device_and_current_trial_inside_the_objective(tmp_path):
    import torch

    seen = []

    def objective(params):
        trial = gpbo.current_trial()
        seen.append((trial.number, trial.device, trial.seed, trial.dir, gpbo.device()))
        assert trial.dir.is_dir()
        return sphere(params)

    result = gpbo.optimize(objective, SPACE, n_trials=3, strategy="random", seed=0,
                           journal=tmp_path / "j.jsonl", verbose=False)
    assert [s[0] for s in seen] == [0, 1, 2]
    assert all(s[1] == torch.device("cpu") == s[4] for s in seen)
    assert [s[2] for s in seen] == [t.seed for t in result.trials]
    assert seen[0][3] == tmp_path / "j.trials" / "000000"
    with pytest.raises(gpbo.GpboError, match="outside a trial"):
        gpbo.current_trial()


def test_verbose_prints_a_line_per_trial_and_a_summary(capsys):
    gpbo.optimize(sphere, SPACE, n_trials=4, strategy="sobol", seed=0, verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    trial_lines = [line for line in lines if " trial " in line and "/4" in line]
    assert len(trial_lines) == 4
    assert "new best" in trial_lines[0]
    assert all("x=" in line and "y=" in line for line in trial_lines)
    assert any(line.startswith("[gpbo] done") for line in lines)
    assert any(line.startswith("[gpbo] best value") for line in lines)


@pytest.mark.parametrize(("verbose", "level"), [(True, "INFO"), (False, "WARNING")])
def test_a_failure_is_a_warning_only_where_no_progress_line_shows_it(verbose, level, caplog):
    def objective(params):
        raise ValueError("boom")

    with caplog.at_level("INFO", logger="gpbo.loop"):
        gpbo.optimize(objective, SPACE, n_trials=1, strategy="sobol", seed=0, verbose=verbose,
                      executor="serial")
    records = [r for r in caplog.records if "trial 0 failed" in r.getMessage()]
    assert [r.levelname for r in records] == [level]
    assert "ValueError: boom" in records[0].getMessage()


def test_a_gp_strategy_whose_design_takes_the_whole_budget_is_warned_about(caplog):
    space = {f"x{i}": gpbo.Real(0.0, 1.0) for i in range(5)}  # a design of 2 (5 + 1) = 12

    def objective(params):
        return params["x0"]

    with caplog.at_level("WARNING", logger="gpbo.loop"):
        gpbo.optimize(objective, space, n_trials=12, batch_size=2, strategy="bayes",
                      executor="serial", verbose=False, seed=0)
    assert (
        "strategy 'bayes' fits its GP after its initial design, 12 quasi-random trials for 5 "
        "parameters, and n_trials=12 ends the study before then" in caplog.text
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="gpbo.loop"):
        gpbo.optimize(objective, space, n_trials=3, strategy="gradient", n_init=3,
                      executor="serial", verbose=False, seed=0)
    assert "after n_init=3, and n_trials=3" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="gpbo.loop"):
        gpbo.optimize(objective, space, n_trials=3, strategy="bayes", n_init=2,
                      executor="serial", verbose=False, seed=0)
        gpbo.optimize(objective, space, n_trials=3, strategy="sobol", executor="serial",
                      verbose=False, seed=0)
        # the trials are the user's known configurations: the strategy proposes none
        known = [{f"x{i}": v for i in range(5)} for v in (0.2, 0.4)]
        gpbo.optimize(objective, space, n_trials=2, enqueue=known, executor="serial",
                      verbose=False, seed=0)
    assert "fits its GP" not in caplog.text


def test_a_grid_larger_than_the_budget_is_warned_about(caplog):
    space = {"a": gpbo.Choice([1, 2, 3]), "b": gpbo.Choice(["x", "y", "z"])}
    with caplog.at_level("WARNING", logger="gpbo.loop"):
        result = gpbo.optimize(lambda p: p["a"], space, n_trials=3, strategy="grid",
                               executor="serial", verbose=False)
    assert {t.params["a"] for t in result.trials} == {1}  # the corner the warning names
    assert "the grid has 9 points and n_trials=3 runs only the first 3" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="gpbo.loop"):
        gpbo.optimize(lambda p: p["a"], space, n_trials=9, strategy="grid", executor="serial",
                      verbose=False)
    assert "the grid has" not in caplog.text
    assert "alone gives" not in caplog.text  # no Int to blame

    # levels thin the Reals and log Ints only: a wide linear Int is named, with what to do
    wide = {"lr": gpbo.Real(1e-4, 1e-1, log=True), "hidden": gpbo.Int(32, 512)}
    caplog.clear()
    with caplog.at_level("WARNING", logger="gpbo.loop"):
        gpbo.optimize(lambda p: p["lr"], wide, n_trials=2, strategy="grid", executor="serial",
                      verbose=False)
    assert "the grid has 2405 points" in caplog.text
    assert "'hidden' alone gives 481 values" in caplog.text and "as a Choice" in caplog.text
    caplog.clear()
    wide["hidden"] = gpbo.Int(32, 512, log=True)  # five log-spaced widths
    with caplog.at_level("WARNING", logger="gpbo.loop"):
        gpbo.optimize(lambda p: p["lr"], wide, n_trials=2, strategy="grid", executor="serial",
                      verbose=False)
    assert "the grid has 25 points" in caplog.text and "alone gives" not in caplog.text


def test_verbose_false_is_silent(capsys):
    gpbo.optimize(sphere, SPACE, n_trials=3, strategy="sobol", seed=0, verbose=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_grid_ends_the_study_when_used_up(capsys, caplog):
    with caplog.at_level(logging.INFO, logger="gpbo.loop"):
        result = gpbo.optimize(lambda p: float(p["c"] == "b"),
                               {"c": gpbo.Choice(["a", "b", "c"])}, n_trials=10,
                               strategy="grid", verbose=True)
    assert len(result.trials) == 3
    assert "grid is used up" in result.stop_reason
    assert "the grid has 3 points: the study ends after them (n_trials=10)" in caplog.text
    shown = capsys.readouterr().out
    assert "3/3" in shown and "/10" not in shown  # progress counts to the grid's end


def test_resume_from_a_journal_runs_only_the_remaining_trials(tmp_path):
    path = tmp_path / "run.jsonl"
    calls = []

    def objective(params):
        calls.append(params)
        return sphere(params)

    gpbo.optimize(objective, SPACE, n_trials=5, strategy="sobol", seed=2, journal=path,
                  verbose=False)
    result = gpbo.optimize(objective, SPACE, n_trials=8, strategy="sobol", seed=2,
                           journal=path, verbose=False)
    assert len(calls) == 8 and len(result.trials) == 8
    fresh = gpbo.optimize(sphere, SPACE, n_trials=8, strategy="sobol", seed=2, verbose=False)
    assert [t.params for t in result.trials] == [t.params for t in fresh.trials]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_trials": 0}, "n_trials"),
        ({"n_trials": 2, "batch_size": 0}, "batch_size"),
        ({"n_trials": 2, "mode": "parallel"}, "mode"),
        ({"n_trials": 2, "timeout": -1}, "timeout"),
        ({"n_trials": 2, "executor": "threads"}, "executor"),
        ({"n_trials": 2, "devices": "tpu"}, "device"),
        ({"n_trials": 2, "callbacks": [1]}, "callbacks"),
        ({"n_trials": 2, "callbacks": print}, "wrap a single one in a list"),
        ({"n_trials": 2, "trial_timeout": float("inf")}, "finite"),
        ({"n_trials": 2, "trial_timeout": float("nan")}, "finite"),
        ({"n_trials": 2, "timeout": float("nan")}, "finite"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, fragment):
    with pytest.raises(gpbo.GpboError, match=fragment):
        gpbo.optimize(sphere, SPACE, verbose=False, **kwargs)


def test_a_serial_study_s_first_trial_does_not_wait_for_the_gp_import(tmp_path):
    # the warm-up overlaps nothing in the driver's own process: it only delayed the trial
    # already journaled as running there (a driver killed meanwhile counted a death)
    from tests.test_executors_process import script_env

    (tmp_path / "driver.py").write_text(
        "import sys\n"
        "import gpbo\n"
        "seen = []\n"
        "def objective(params):\n"
        "    seen.append('botorch' in sys.modules)\n"
        "    return params['x']\n"
        "if __name__ == '__main__':\n"
        "    gpbo.optimize(objective, {'x': gpbo.Real(0.0, 1.0)}, n_trials=5, n_init=4,\n"
        "                  strategy='bayes', seed=0, executor='serial', verbose=False)\n"
        "    print(seen)\n"
    )
    done = subprocess.run([sys.executable, "driver.py"], cwd=tmp_path, env=script_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[False, False, False, False, True]"  # the GP's 5th


def test_the_result_names_the_seed_a_seedless_run_drew():
    space = {"x": gpbo.Real(0.0, 1.0)}
    first = gpbo.optimize(lambda p: p["x"], space, n_trials=3, strategy="random", verbose=False)
    assert isinstance(first.seed, int)  # a run with seed=None can be repeated
    again = gpbo.optimize(
        lambda p: p["x"], space, n_trials=3, strategy="random", seed=first.seed, verbose=False
    )
    assert [t.params for t in again.trials] == [t.params for t in first.trials]


def test_direction_not_given_warns_for_an_accuracy_and_resumes_as_the_journal_says(tmp_path):
    def objective(p):
        return {"val_acc": 1.0 - p["x"] ** 2}

    path = tmp_path / "j.jsonl"
    with pytest.warns(gpbo.GpboWarning, match="metric 'val_acc' is minimized") as record:
        gpbo.optimize(objective, {"x": gpbo.Real(-1, 1)}, n_trials=2, metric="val_acc",
                      strategy="random", seed=0, verbose=False)
    assert record[0].filename == __file__  # the user's call, not gpbo's code
    gpbo.optimize(objective, {"x": gpbo.Real(-1, 1)}, n_trials=2, metric="val_acc",
                  direction="maximize", strategy="random", seed=0, journal=path, verbose=False)
    resumed = gpbo.optimize(objective, {"x": gpbo.Real(-1, 1)}, n_trials=4, metric="val_acc",
                            strategy="random", journal=path, verbose=False)
    assert resumed.direction == "maximize"
    assert resumed.best_value == max(t.value for t in resumed.trials)


def test_a_resume_without_metric_keeps_the_journal_s(tmp_path, recwarn):
    # metric defaulted to "value": the resume switched the study to it and every trial failed
    # on a mapping without "value" until max_consecutive_failures ended the study
    def objective(p):
        return {"acc": 1.0 - p["x"] ** 2, "loss": p["x"] ** 2}

    path = tmp_path / "j.jsonl"
    gpbo.optimize(objective, {"x": gpbo.Real(-1, 1)}, n_trials=3, metric="acc",
                  direction="maximize", strategy="random", seed=0, journal=path, verbose=False)
    resumed = gpbo.optimize(objective, {"x": gpbo.Real(-1, 1)}, n_trials=6,
                            strategy="random", journal=path, verbose=False)
    assert resumed.metric == "acc"
    assert [t.status for t in resumed.trials] == ["complete"] * 6
    assert all(t.value == 1.0 - t.params["x"] ** 2 for t in resumed.trials)
    assert all(set(t.metrics) == {"loss"} for t in resumed.trials)
    assert gpbo.load(path).metric == "acc"
    assert not [w for w in recwarn if "metric" in str(w.message)]


def test_the_metric_s_name_reaches_the_result_the_progress_lines_and_the_journal(
    tmp_path, capsys
):
    result = gpbo.optimize(
        lambda p: {"accuracy": 1.0 - p["x"] ** 2, "loss": p["x"] ** 2},
        {"x": gpbo.Real(-1, 1)},
        n_trials=3,
        direction="maximize",
        metric="accuracy",
        strategy="random",
        seed=0,
        journal=tmp_path / "j.jsonl",
    )
    assert result.metric == "accuracy"
    out = capsys.readouterr().out
    assert "accuracy=" in out and "value=" not in out
    assert "best accuracy" in out
    assert gpbo.load(tmp_path / "j.jsonl").metric == "accuracy"


@pytest.mark.parametrize("with_journal", [False, True])
def test_the_files_a_trial_wrote_are_found_from_the_result(tmp_path, capsys, with_journal):
    # without a journal they sat in a temporary folder only an INFO log line named
    def objective(params):
        if params["x"] > 0:
            (gpbo.current_trial().dir / "model.txt").write_text(str(params["x"]))
        return params["x"] ** 2

    journal = tmp_path / "run.jsonl" if with_journal else None
    result = gpbo.optimize(objective, SPACE, n_trials=6, strategy="sobol", seed=0,
                           journal=journal)
    wrote = [t for t in result.trials if t.params["x"] > 0]
    assert 0 < len(wrote) < 6
    for trial in result.trials:
        folder = result.trial_dir(trial)
        if trial in wrote:
            assert (folder / "model.txt").read_text() == str(trial.params["x"])
        else:
            assert folder is None  # wrote nothing: no folder left
    if with_journal:
        assert result.trials_dir == tmp_path / "run.trials"
    out = capsys.readouterr().out
    assert f"files of {len(wrote)} trials in {result.trials_dir}" in out
    quiet = gpbo.optimize(objective, SPACE, n_trials=2, strategy="sobol", seed=0, verbose=False)
    assert capsys.readouterr().out == ""  # verbose=False: no line
    assert all((quiet.trial_dir(t) is None) == (t.params["x"] <= 0) for t in quiet.trials)


def test_enqueued_configurations_run_first_and_once_across_a_resume(tmp_path):
    path = tmp_path / "j.jsonl"
    known = [{"x": 1.0, "y": 2.0}, {"x": -1.0, "y": 0.5}]
    first = gpbo.optimize(sphere, SPACE, n_trials=3, strategy="random", seed=0, journal=path,
                          enqueue=known, verbose=False)
    assert [t.params for t in first.trials[:2]] == known
    resumed = gpbo.optimize(sphere, SPACE, n_trials=5, strategy="random", seed=0,
                            journal=path, enqueue=known, verbose=False)
    assert [t.params for t in resumed.trials].count(known[0]) == 1  # not trained again
    assert len(resumed.trials) == 5
    with pytest.raises(gpbo.GpboError, match=r"list of parameter dicts.*wrap a single one"):
        gpbo.optimize(sphere, SPACE, n_trials=1, enqueue=known[0], verbose=False)
    with pytest.raises(gpbo.SpaceError, match="'x'"):
        gpbo.optimize(sphere, SPACE, n_trials=1, enqueue=[{"x": 99.0, "y": 0.0}],
                      verbose=False)


def test_warm_start_adds_the_earlier_run_s_complete_trials_that_fit_the_space_once(
    tmp_path, capsys
):
    def objective(p):
        return {"acc": 1.0 - (p["x"] - 0.2) ** 2 - (p["y"] - 0.5) ** 2, "loss": p["x"]}

    old_space = {"x": gpbo.Real(0, 1), "y": gpbo.Real(0, 1), "opt": gpbo.Choice(["a", "b"])}
    old = gpbo.optimize(objective, old_space, n_trials=8, strategy="sobol", seed=0,
                        direction="maximize", metric="acc", journal=tmp_path / "old.jsonl",
                        verbose=False)
    narrower = {"x": gpbo.Real(0, 0.5), "y": gpbo.Real(0, 1)}  # opt dropped, x narrowed
    inside = [t for t in old.trials if t.params["x"] <= 0.5]
    assert 0 < len(inside) < 8
    new_journal = tmp_path / "new.jsonl"
    result = gpbo.optimize(objective, narrower, n_trials=len(inside) + 2, strategy="sobol",
                           direction="maximize", metric="acc", journal=new_journal,
                           warm_start=tmp_path / "old.jsonl")
    out = capsys.readouterr().out
    assert f"warm start: added {len(inside)} complete trials of {tmp_path / 'old.jsonl'}" in out
    assert f"left out {8 - len(inside)} outside this space" in out
    added = result.trials[: len(inside)]
    assert [t.params for t in added] == [
        {"x": t.params["x"], "y": t.params["y"]} for t in inside
    ]
    assert [(t.value, t.metrics) for t in added] == [(t.value, t.metrics) for t in inside]
    assert len(result.trials) == len(inside) + 2
    # a resume adds nothing again
    again = gpbo.optimize(objective, narrower, n_trials=len(inside) + 3, strategy="sobol",
                          direction="maximize", metric="acc", journal=new_journal,
                          warm_start=tmp_path / "old.jsonl", verbose=False)
    assert len(again.trials) == len(inside) + 3
    assert [t.params for t in again.trials[: len(inside) + 2]] == [
        t.params for t in result.trials
    ]
    # another of the old trials' numbers as the metric
    by_loss = gpbo.optimize(objective, old_space, n_trials=8, strategy="sobol", metric="loss",
                            warm_start=tmp_path / "old.jsonl", verbose=False)
    assert [t.value for t in by_loss.trials] == [t.params["x"] for t in old.trials]
    assert [t.metrics["acc"] for t in by_loss.trials] == [t.value for t in old.trials]
    with pytest.raises(gpbo.GpboError, match=r"record the metric 'acc'.*optimizes 'error'"):
        gpbo.optimize(objective, old_space, n_trials=9, metric="error",
                      warm_start=[tmp_path / "old.jsonl"], verbose=False)
    with pytest.raises(gpbo.GpboError, match="warm_start: no journal at"):
        gpbo.optimize(objective, old_space, n_trials=9, warm_start=tmp_path / "none.jsonl",
                      verbose=False)
    # a journal refused after another was read adds nothing: the run, once fixed, adds them all
    gpbo.optimize(lambda p: p["x"], old_space, n_trials=2, strategy="sobol",
                  journal=tmp_path / "other.jsonl", verbose=False)  # metric "value", no "acc"
    both = tmp_path / "both.jsonl"
    with pytest.raises(gpbo.GpboError, match=r"other.jsonl' record the metric 'value'"):
        gpbo.optimize(objective, old_space, n_trials=12, direction="maximize", metric="acc",
                      journal=both, warm_start=[tmp_path / "old.jsonl", tmp_path / "other.jsonl"],
                      verbose=False)
    assert gpbo.load(both).trials == []
    fixed = gpbo.optimize(objective, old_space, n_trials=9, strategy="sobol",
                          direction="maximize", metric="acc", journal=both,
                          warm_start=[tmp_path / "old.jsonl"], verbose=False)
    assert [t.params for t in fixed.trials[:8]] == [t.params for t in old.trials]
