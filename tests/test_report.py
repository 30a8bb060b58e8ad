"""Tests for gpbo/report.py: the progress lines and the summary."""

from __future__ import annotations

import io

import gpbo
from gpbo.report import (
    ProgressReporter,
    error_summary,
    format_duration,
    format_params,
    render_study,
)
from gpbo.trial import Trial


def test_lines_mark_new_bests_and_failures():
    out = io.StringIO()
    reporter = ProgressReporter(direction="minimize", n_trials=3, stream=out)
    reporter.start(strategy="bayes", slots=["cpu"])
    reporter.trial_finished(Trial(0, {"x": 1.0}, value=2.0, status="complete", device="cpu",
                                  started_at=0.0, finished_at=1.5))
    reporter.trial_finished(Trial(1, {"x": 2.0}, value=3.0, status="complete"))
    reporter.trial_finished(Trial(2, {"x": 3.0}, status="failed",
                                  error="ValueError: boom\nTraceback ..."))
    unread = "CommandError: unreadable metric: the last line of stdout is not JSON: 'accuracy=0.99'"
    fix = "print a JSON line last, or set metric_regex (full output in runs/t/trials/3.log)"
    error = f"{unread}; {'x' * 200}{fix}"
    reporter.trial_finished(Trial(3, {"x": 4.0}, status="failed", error=error))
    reporter.finish([], stop_reason="3 trials finished")
    lines = out.getvalue().splitlines()
    # the reason is cut to 160 characters in its middle: its start says what, its end the
    # fix and the log
    kept = "x" * (160 - 3 - len(unread + "; ") - 70)
    assert f"FAILED ({unread}; {kept}...{error[-70:]})  " in lines[4]
    assert error[-70:].endswith("trials/3.log)")
    assert lines[0].startswith("[gpbo] 3 trials, strategy bayes, 1 slot(s) on cpu")
    assert "value=2" in lines[1] and "new best" in lines[1] and "[cpu, 1.5s]" in lines[1]
    assert "best=2 (#0)" in lines[2]
    assert "FAILED (ValueError: boom)" in lines[3]
    assert "no trial completed" in lines[-1]


def test_the_opening_line_says_where_when_told():
    out = io.StringIO()
    reporter = ProgressReporter(direction="minimize", n_trials=2, stream=out)
    reporter.start(strategy="random", slots=["cpu"], where="Ray tasks on a cluster")
    assert out.getvalue() == "[gpbo] 2 trials, strategy random, Ray tasks on a cluster\n"
    one = io.StringIO()
    reporter = ProgressReporter(direction="minimize", n_trials=1, stream=one)
    reporter.start(strategy="random", slots=["cpu"])
    assert one.getvalue().startswith("[gpbo] 1 trial, strategy random")  # not "1 trials"


def test_disabled_reporter_writes_nothing():
    out = io.StringIO()
    reporter = ProgressReporter(direction="maximize", n_trials=1, enabled=False, stream=out)
    reporter.start(strategy="random", slots=["cpu"])
    reporter.trial_finished(Trial(0, {"x": 1.0}, value=2.0, status="complete"))
    reporter.finish([], stop_reason="")
    assert out.getvalue() == ""


class _ClosedPipe(io.StringIO):
    """A stream whose reader went away after ``lines_read`` writes (`gpbo run ... | head`)."""

    def __init__(self, lines_read: int) -> None:
        super().__init__()
        self.left = lines_read

    def write(self, text: str) -> int:
        if self.left <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= 1
        return super().write(text)


def test_a_closed_output_turns_the_display_off_with_one_warning_not_an_error(caplog):
    out = _ClosedPipe(lines_read=1)
    reporter = ProgressReporter(direction="minimize", n_trials=3, stream=out)
    reporter.start(strategy="bayes", slots=["cpu"])
    with caplog.at_level("WARNING", logger="gpbo"):
        for number in range(3):  # would raise BrokenPipeError into the study before
            reporter.trial_finished(Trial(number, {"x": 1.0}, value=2.0, status="complete"))
        reporter.finish([], stop_reason="3 trials finished")
        reporter.say("[gpbo] results in runs/x")
    assert reporter.output_closed and not reporter.enabled
    assert out.getvalue().startswith("[gpbo] 3 trials") and out.getvalue().count("\n") == 1
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "reader went away" in warned[0], warned


def test_formatting():
    assert format_params({"lr": 0.0123456789, "opt": "adam"}) == "lr=0.0123457 opt=adam"
    assert format_duration(42.06) == "42.1s" and format_duration(185) == "3m05s"
    assert format_duration(7620) == "2h07m"


def test_error_summary_keeps_a_command_s_quoted_stderr_and_drops_tracebacks():
    command = (
        "CommandError: the command exited with code 3; the last lines of stderr (full output "
        "in t/0.log):\n" + "\n".join(f"  | line {i}" for i in range(8))
        + "\nTraceback (most recent call last):\n  File \"x.py\", line 1\nCommandError: ..."
    )
    summary = error_summary(command)
    assert summary.splitlines()[0].endswith("(full output in t/0.log):")
    assert summary.splitlines()[1:] == [f"  | line {i}" for i in range(3, 8)]
    python = "RuntimeError: diverged\nTraceback (most recent call last):\n  File ...\n  | odd"
    assert error_summary(python) == "RuntimeError: diverged"
    assert error_summary(None) == error_summary("  ") == ""


def test_a_study_that_ended_before_any_trial_says_so_in_its_summary():
    # "[gpbo] done in 1.2s: ; the study timeout of 0.5 s passed"
    out = io.StringIO()
    reporter = ProgressReporter(direction="minimize", n_trials=2, stream=out)
    reporter.finish([], stop_reason="the study timeout of 0.5 s passed")
    assert ": no trials; the study timeout" in out.getvalue()


def test_a_character_the_output_cannot_encode_is_escaped_not_an_error():
    # cp1252 on Windows, or ASCII: a choice or an error message ended the study
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    reporter = ProgressReporter(direction="minimize", n_trials=2, stream=out)
    reporter.start(strategy="random", slots=["cpu"])
    reporter.trial_finished(Trial(0, {"act": "gélu"}, value=1.0, status="complete"))
    reporter.trial_finished(Trial(1, {"act": "relu"}, status="failed",
                                  error="ValueError: loss diverged \u2717"))
    text = raw.getvalue().decode("ascii")
    assert "g\\xe9lu" in text and "loss diverged \\u2717" in text
    assert not reporter.output_closed


def test_a_tie_names_the_lower_numbered_trial_as_the_summary_does():
    out = io.StringIO()
    reporter = ProgressReporter(direction="maximize", n_trials=3, stream=out)
    reporter.trial_finished(Trial(1, {"x": 1.0}, value=0.98, status="complete"))
    reporter.trial_finished(Trial(0, {"x": 0.0}, value=0.98, status="complete"))
    reporter.trial_finished(Trial(2, {"x": 0.5}, value=0.5, status="complete"))
    assert "best=0.98 (#0)" in out.getvalue().splitlines()[-1]  # the finish order said #1


def test_lines_and_summary_call_the_value_by_the_metric_s_name():
    out = io.StringIO()
    reporter = ProgressReporter(direction="maximize", n_trials=1, stream=out, metric="accuracy")
    trial = Trial(0, {"x": 1.0}, value=0.9, status="complete")
    reporter.trial_finished(trial)
    reporter.finish([trial], stop_reason="1 trial finished")
    lines = out.getvalue().splitlines()
    assert "accuracy=0.9" in lines[0] and "value=" not in lines[0]
    assert lines[-1].startswith("[gpbo] best accuracy 0.9 at trial 0")


def test_an_output_that_fails_ends_the_display_not_the_study(caplog):
    import errno
    import logging

    class FullDisk(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    reporter = ProgressReporter(direction="minimize", n_trials=2, stream=FullDisk())
    with caplog.at_level(logging.WARNING, logger="gpbo.report"):
        reporter.trial_finished(Trial(0, {"x": 1.0}, value=2.0, status="complete"))
        reporter.trial_finished(Trial(1, {"x": 1.0}, value=1.0, status="complete"))
        reporter.finish([], stop_reason="done")
    assert not reporter.enabled and reporter.output_closed
    assert caplog.text.count("No space left on device") == 1


def test_values_and_errors_are_shown_on_one_line_without_control_codes():
    from gpbo.report import format_value, shorten

    assert format_params({"act": "relu\ngelu", "mode": "a b", "tag": "x"}) == (
        "act='relu\\ngelu' mode='a b' tag=x"
    )
    assert format_value("") == "''"
    coloured = "  | \x1b[31mERROR " + "x" * 200 + "\x1b[0m"
    cut = shorten(coloured, 160)
    assert "\x1b" not in cut and cut.startswith("  | ERROR xxx") and cut.endswith("...")
    assert shorten("bell\x07 here") == "bell\\x07 here"
    cut = shorten("what " + "x" * 200 + " fix (log)", 40, keep_end=12)
    assert cut == "what " + "x" * 20 + "...xx fix (log)" and len(cut) == 40
    assert shorten("short", 40, keep_end=12) == "short"


def test_show_gives_a_failed_trials_whole_reason(tmp_path):
    journal = tmp_path / "journal.jsonl"
    study = gpbo.Study({"x": gpbo.Real(0.0, 1.0)}, strategy="random", seed=0, journal=journal)
    reason = ("CommandError: unreadable metric: " + "x" * 200 + "; print a JSON line last "
              "(full output in runs/t/trials/0.log)")
    study.tell(study.ask(1)[0], error=reason)
    study.close()
    shown = render_study(gpbo.load(journal), driver_running=False)
    assert f"  #0 failed: {reason}" in shown, shown


def test_show_says_which_failures_for_an_unreadable_metric_run_again(tmp_path):
    # the loop marks them; a driver stopped before the study's end left them failed
    journal = tmp_path / "journal.jsonl"
    study = gpbo.Study({"x": gpbo.Real(0.0, 1.0)}, strategy="random", seed=0, journal=journal)
    first, second = study.ask(2)
    study._tell(first, None, error="CommandError: unreadable metric", status=None, metrics=None,
                unusable=True)
    study.tell(second, error="ValueError: bad x")
    study.close()
    shown = render_study(gpbo.load(journal), driver_running=False)
    assert "1 trial failed for an unreadable metric before any completed" in shown, shown
    assert "  #0 failed, runs again: CommandError: unreadable metric" in shown, shown
    assert "  #1 failed: ValueError: bad x" in shown, shown
    # once a trial completed, such failures are the trials' own and stay failed
    study = gpbo.Study({"x": gpbo.Real(0.0, 1.0)}, strategy="random", seed=0, journal=journal)
    study.tell(study.ask(1)[0], 0.5)
    study.close()
    shown = render_study(gpbo.load(journal), driver_running=False)
    assert "runs again" not in shown and "  #0 failed: CommandError" in shown, shown


def test_show_tells_a_parameter_named_value_from_the_value_column(tmp_path):
    study = gpbo.Study({"value": gpbo.Real(0.0, 1.0), "lr": gpbo.Real(0.0, 1.0)},
                       strategy="random", seed=0)
    trial = study.ask(1)[0]
    study.tell(trial, 0.25)
    assert render_study(study, title="t").startswith("t: 1 trial (1 complete)")
    header = render_study(study, title="t").splitlines()[2].split()
    assert header == ["#", "status", "value", "params_value", "lr", "device", "duration"]


def _missing_key(params):
    return params["not_in_space"]


def test_show_says_where_a_python_trial_failed_and_where_its_traceback_is(tmp_path):
    journal = tmp_path / "journal.jsonl"
    space = {"x": gpbo.Real(0.0, 1.0)}
    gpbo.optimize(_missing_key, space, n_trials=2, strategy="random", seed=0, journal=journal)
    shown = render_study(gpbo.load(journal), driver_running=False)
    line = f"(at test_report.py:{_missing_key.__code__.co_firstlineno + 1}, in _missing_key)"
    assert f"  #0 failed: KeyError: 'not_in_space' {line}" in shown, shown
    assert "(whole tracebacks: gpbo export RUN --csv -, column error)" in shown


def test_a_negated_zero_is_shown_as_zero():
    # a maximized study stores -value: its best 0 came out as "-0"
    from gpbo.report import format_value

    assert format_value(-0.0) == "0"
    assert format_value(-(0.0)) == format_value(0.0)
    assert format_value(-1e-9) == "-1e-09"
