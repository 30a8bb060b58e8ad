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
