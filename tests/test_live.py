"""Tests for gpbo/live.py: the status line of ``gpbo run`` and how it ends."""

from __future__ import annotations

import io

import pytest

import gpbo
from gpbo.live import LiveReporter


def test_stopped_study_clears_the_status_line_before_saying_how_to_resume():
    stream = io.StringIO()
    reporter = LiveReporter(
        direction="minimize", n_trials=4, stream=stream, live=True, refresh=3600
    )

    def objective(params):
        if params["x"] > 0.5:
            raise KeyboardInterrupt  # Ctrl+C (or SIGTERM) while this trial runs
        return params["x"]

    with pytest.raises(KeyboardInterrupt):
        gpbo.optimize(
            objective,
            {"x": gpbo.Real(0.0, 1.0)},
            n_trials=4,
            strategy="sobol",
            seed=0,
            executor="serial",
            _progress=reporter,
        )
    text = stream.getvalue()
    assert "\r\x1b[K[gpbo] interrupted: pass journal=" in text, text
    assert text.endswith("resumable\n"), "no status line is drawn after the hint"
    assert not reporter.live


def test_time_left_counts_down_while_a_trial_runs(monkeypatch):
    from gpbo import live
    from gpbo.trial import Trial

    clock = [1000.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    reporter = LiveReporter(direction="minimize", n_trials=3, stream=io.StringIO(), live=False)
    reporter.start(strategy="random", slots=["cpu"])
    clock[0] += 10.0
    reporter.trial_finished(Trial(0, {"x": 0.5}, value=1.0, status="complete"))
    assert reporter.status().endswith("10.0s elapsed, ~20.0s left")
    clock[0] += 5.0  # the next trial runs: the estimate counts down, it no longer grows
    assert reporter.status().endswith("15.0s elapsed, ~15.0s left")
    clock[0] += 25.0  # running late: back to the pace so far, 40 s for one trial
    assert reporter.status().endswith("40.0s elapsed, ~1m20s left")


def test_time_left_on_several_slots_shares_the_work_left_among_them(monkeypatch):
    from gpbo import live
    from gpbo.trial import Trial

    clock, wall = [1000.0], [5000.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(live.time, "time", lambda: wall[0])
    reporter = LiveReporter(direction="minimize", n_trials=10, stream=io.StringIO(), live=False)
    reporter.start(strategy="random", slots=["cpu", "cpu"])
    reporter.trial_started(Trial(0, {"x": 0.1}, status="running", started_at=wall[0]))
    reporter.trial_started(Trial(1, {"x": 0.2}, status="running", started_at=wall[0] + 2.0))
    clock[0] += 10.0
    wall[0] += 10.0
    reporter.trial_finished(
        Trial(0, {"x": 0.1}, value=1.0, status="complete", started_at=wall[0] - 10.0,
              finished_at=wall[0])
    )
    # nine trials of 10 s left, trial 1 is 8 s into its own, two slots: (90 - 8) / 2 = 41 s;
    # the pace so far (10 s per finished trial) said 1m30s
    assert reporter.status().split(" | ")[2] == "10.0s elapsed, ~41.0s left", reporter.status()
    clock[0] += 2.0
    wall[0] += 2.0
    reporter.trial_finished(
        Trial(1, {"x": 0.2}, value=2.0, status="complete", started_at=wall[0] - 10.0,
              finished_at=wall[0])
    )
    # a trial per slot done: the pace, 12 s for two trials, over the eight left
    assert reporter.status().endswith("12.0s elapsed, ~48.0s left"), reporter.status()


def _terminal(monkeypatch, columns: int) -> None:
    import os
    import shutil

    monkeypatch.setattr(shutil, "get_terminal_size",
                        lambda fallback=(100, 24): os.terminal_size((columns, 24)))


def test_a_long_running_list_is_cut_before_the_best_and_the_time_left(monkeypatch):
    import time

    from gpbo.trial import Trial

    _terminal(monkeypatch, 100)
    stream = io.StringIO()
    reporter = LiveReporter(direction="minimize", n_trials=64, stream=stream, live=True,
                            refresh=3600)
    reporter.start(strategy="bayes", slots=[f"cuda:{i}" for i in range(8)])
    reporter.trial_finished(Trial(0, {"x": 0.5}, value=1.0, status="complete"))
    for number in range(1, 9):
        reporter.trial_started(Trial(number, {"x": 0.5}, device=f"cuda:{number - 1}",
                                     started_at=time.time() - 65))
    last = stream.getvalue().rsplit("\r\x1b[K", 1)[-1]
    reporter.close()
    assert len(last) <= 99
    assert "best 1 (#0)" in last and "left" in last and "running cuda:0 #1 1m05s" in last


def test_no_status_line_before_the_study_starts_nor_on_a_narrow_terminal(monkeypatch):
    from gpbo.trial import Trial

    stream = io.StringIO()
    reporter = LiveReporter(direction="minimize", n_trials=4, stream=stream, live=True,
                            refresh=3600)
    reporter.say("[gpbo] nothing to run")  # gpbo run on a finished run dir: start() never comes
    reporter.close()
    assert stream.getvalue() == "[gpbo] nothing to run\n"
    _terminal(monkeypatch, 12)
    narrow = io.StringIO()
    reporter = LiveReporter(direction="minimize", n_trials=4, stream=narrow, live=True,
                            refresh=3600)
    reporter.start(strategy="random", slots=["cpu"])
    reporter.trial_started(Trial(0, {"x": 0.5}, device="cpu"))
    reporter.close()
    assert "done" not in narrow.getvalue()  # a line cut to 12 columns would only wrap


def test_a_dumb_terminal_gets_plain_lines(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("TERM", "xterm")
    assert LiveReporter(direction="minimize", n_trials=1, stream=Terminal()).live
    monkeypatch.setenv("TERM", "dumb")
    assert not LiveReporter(direction="minimize", n_trials=1, stream=Terminal()).live


def test_the_time_left_is_bounded_by_the_study_s_timeout(monkeypatch):
    from gpbo import live
    from gpbo.trial import Trial

    clock = [1000.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    reporter = LiveReporter(direction="minimize", n_trials=100, stream=io.StringIO(), live=False)
    reporter.start(strategy="random", slots=["cpu"], timeout=60.0)
    assert reporter.status().endswith("0.0s elapsed, 1m00s left (timeout)")
    clock[0] += 10.0
    reporter.trial_finished(Trial(0, {"x": 0.5}, value=1.0, status="complete"))
    # the pace says 99 x 10 s; the study ends at its timeout, 50 s from now
    assert reporter.status().endswith("10.0s elapsed, 50.0s left (timeout)")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _terminal_as_stdout_and_stderr(monkeypatch) -> _Terminal:
    """A terminal (as far as the status line can tell) in place of both streams; in the test
    itself, since pytest puts its own capture back after a fixture's setup."""
    import sys

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("TERM", "xterm")
    return terminal


def test_prints_of_training_code_in_the_driver_go_above_the_status_line(monkeypatch):
    import sys

    terminal = _terminal_as_stdout_and_stderr(monkeypatch)
    reporter = LiveReporter(direction="minimize", n_trials=2, refresh=3600)
    assert reporter.live

    def objective(params):
        print("epoch 0 loss 0.5")
        print("epoch 1 ", end="")  # a line left open: no status line drawn after it
        print("loss 0.25")
        print("a note on stderr", file=sys.stderr)
        return params["x"]

    gpbo.optimize(objective, {"x": gpbo.Real(0.0, 1.0)}, n_trials=2, strategy="sobol", seed=0,
                  executor="serial", _progress=reporter)
    assert sys.stdout is terminal and sys.stderr is terminal  # given back
    text = terminal.getvalue()
    # each print starts where the status line was cleared, never after it on its line
    assert text.count("\r\x1b[Kepoch 0 loss 0.5\n") == 2
    assert text.count("epoch 1 loss 0.25\n") == 2
    for line in text.split("\n"):
        status = line.rsplit("\r\x1b[K", 1)[-1]
        assert not (status.startswith("[gpbo]") and "done |" in status and "epoch" in status)
    assert text.count("\r\x1b[Ka note on stderr\n") == 2


def test_prints_of_worker_processes_go_above_the_status_line(monkeypatch):
    from tests.objectives_for_workers import print_lines

    terminal = _terminal_as_stdout_and_stderr(monkeypatch)
    reporter = LiveReporter(direction="minimize", n_trials=4, refresh=0.05)
    gpbo.optimize(print_lines, {"x": gpbo.Real(0.0, 1.0), "seconds": gpbo.Real(0.1, 0.2)},
                  n_trials=4, batch_size=2, strategy="sobol", seed=0, executor="process",
                  devices=["cpu", "cpu"], _progress=reporter)
    # what the terminal shows of each line: the text after its last clear
    shown = [line.rsplit("\r\x1b[K", 1)[-1] for line in terminal.getvalue().split("\n")]
    for number in range(4):
        for line in (f"epoch 0 of trial {number}", f"a warning of trial {number}",
                     f"a command of trial {number}", f"progress 100% of trial {number}"):
            assert shown.count(line) == 1, (line, shown)  # whole, never after a status line
    assert not [line for line in shown if "done |" in line]  # no stale status line left
