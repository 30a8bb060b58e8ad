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
    monkeypatch.setattr(live.time, "time", lambda: clock[0])
    reporter = LiveReporter(direction="minimize", n_trials=3, stream=io.StringIO(), live=False)
    reporter.start(strategy="random", slots=["cpu"])
    clock[0] += 10.0
    reporter.trial_finished(Trial(0, {"x": 0.5}, value=1.0, status="complete"))
    assert reporter.status().endswith("10.0s elapsed, ~20.0s left")
    clock[0] += 5.0  # the next trial runs: the estimate counts down, it no longer grows
    assert reporter.status().endswith("15.0s elapsed, ~15.0s left")
    clock[0] += 25.0  # running late: back to the pace so far, 40 s for one trial
    assert reporter.status().endswith("40.0s elapsed, ~1m20s left")
