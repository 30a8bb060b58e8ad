"""Command trials: argv building, output capture, metric reading, failures, and stopping."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import gpbo
from gpbo.command import CommandError, CommandObjective, _cuda_visible_for, template_fields
from gpbo.context import TrialContext, trial_context
from gpbo.exceptions import UnusableResultError
from gpbo.executors.base import describe_exception


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _context(tmp_path: Path, number: int = 3, device: str = "cpu") -> TrialContext:
    import torch

    trial_dir = tmp_path / "trials_dirs" / f"{number:06d}"
    trial_dir.mkdir(parents=True, exist_ok=True)
    return TrialContext(
        number=number, device=torch.device(device), seed=42, dir=trial_dir, params={}
    )


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # pragma: no cover - no procfs
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    state = next((line for line in status.splitlines() if line.startswith("State:")), "")
    return "Z" not in state.split(":", 1)[1][:3]


def _wait_gone(pids: list[int], seconds: float = 5.0) -> list[int]:
    end = time.monotonic() + seconds
    alive = list(pids)
    while alive and time.monotonic() < end:
        alive = [pid for pid in alive if _alive(pid)]
        time.sleep(0.05)
    return alive


# -- building the command -----------------------------------------------------------------------


def test_template_is_split_first_then_each_token_filled():
    objective = CommandObjective("{python} train.py --name {name} --lr={lr:.2e} --n {n}")
    argv = objective.argv({"name": "two words; rm -rf /", "lr": 0.001, "n": 64})
    assert argv == [
        sys.executable,
        "train.py",
        "--name",
        "two words; rm -rf /",  # one argument, no shell: nothing to quote
        "--lr=1.00e-03",
        "--n",
        "64",
    ]
    assert template_fields("{python} t.py --a {a} --b {b.real} {a}") == ["python", "a", "b"]
    assert CommandObjective(["{python}", "x.py", "--a", "{a}"]).argv({"a": 1})[-1] == "1"


def test_template_errors_name_the_problem():
    with pytest.raises(gpbo.GpboError, match="does not split"):
        CommandObjective("{python} 'unclosed")
    with pytest.raises(gpbo.GpboError, match="placeholder without a name"):
        CommandObjective("{python} x.py {}")
    with pytest.raises(gpbo.GpboError, match=r"Single '\{' .*double the braces, \{\{ \}\}"):
        CommandObjective("{python} x.py --opts {")
    with pytest.raises(gpbo.GpboError, match="needs a group"):
        CommandObjective("{python} x.py", metric_regex=r"acc=\d+")
    with pytest.raises(gpbo.GpboError, match="neither a parameter"):
        CommandObjective("{python} x.py --lr {lr}").argv({"x": 1})
    with pytest.raises(gpbo.GpboError, match="cannot be filled"):  # was a bare TypeError
        CommandObjective("{python} x.py --lr {lr[0]}").argv({"lr": 0.1})


def test_cuda_visible_devices_names_only_the_trials_gpu():
    assert _cuda_visible_for("cpu", {"CUDA_VISIBLE_DEVICES": "0,1"}) == ""
    assert _cuda_visible_for("cuda:1", {}) == "1"
    assert _cuda_visible_for("cuda:1", {"CUDA_VISIBLE_DEVICES": "4,6"}) == "6"
    # in a process-executor worker: cuda:0 of a worker that sees its one GPU, kept as it is
    assert _cuda_visible_for("cuda:0", {"CUDA_VISIBLE_DEVICES": "3"}) == "3"


def test_objective_pickles_as_plain_data(tmp_path):
    objective = CommandObjective("{python} x.py --lr {lr}", metric="acc", log_dir=tmp_path)
    clone = pickle.loads(pickle.dumps(objective))
    assert clone.tokens == objective.tokens
    assert (clone.metric, clone.log_dir) == ("acc", str(tmp_path.resolve()))


# -- running it ---------------------------------------------------------------------------------


def test_json_last_line_is_the_result_and_output_goes_to_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    script = _script(
        tmp_path,
        "train.py",
        """
        import json, os, sys
        print("epoch 1 loss=0.5")
        print("a warning", file=sys.stderr)
        print(json.dumps({"acc": float(sys.argv[2]) * 2, "loss": 0.25,
                          "cuda": os.environ["CUDA_VISIBLE_DEVICES"],
                          "number": os.environ["GPBO_TRIAL_NUMBER"],
                          "dir": os.environ["GPBO_TRIAL_DIR"],
                          "argv_dir": sys.argv[4]}))
        """,
    )
    objective = CommandObjective(
        f"{{python}} {script} --lr {{lr}} --dir {{trial_dir}}",
        metric="acc",
        log_dir=tmp_path / "logs",
    )
    context = _context(tmp_path)
    with trial_context(context):
        result = objective({"lr": 0.25})
    assert result["acc"] == 0.5 and result["loss"] == 0.25
    assert result["cuda"] == ""  # a CPU slot sees no GPU
    assert result["number"] == "3"
    assert result["dir"] == result["argv_dir"] == str(context.dir)
    log = (tmp_path / "logs" / "3.log").read_text()
    assert "epoch 1 loss=0.5" in log and "a warning" in log and "exit code 0" in log
    value, extras = gpbo.executors.base.parse_objective_value(result, metric="acc")
    assert value == 0.5 and extras == {"loss": 0.25}


def test_without_log_dir_the_log_is_in_the_trial_directory(tmp_path):
    script = _script(tmp_path, "t.py", "print(0.75)\n")
    objective = CommandObjective(f"{{python}} {script}")
    context = _context(tmp_path, number=5)
    with trial_context(context):
        assert objective({}) == 0.75  # a bare JSON number is the metric itself
    assert (context.dir / "command.log").exists()


def test_a_bare_number_as_python_prints_it_is_the_result(tmp_path):
    script = _script(tmp_path, "t.py", "print('epoch 3 done')\nprint(1e-05)\n")
    objective = CommandObjective(f"{{python}} {script}", log_dir=tmp_path)
    with trial_context(_context(tmp_path)):
        assert objective({}) == 1e-05


def test_metric_regex_takes_the_last_match(tmp_path):
    script = _script(
        tmp_path,
        "t.py",
        """
        print("val_acc=0.50")
        print("val_acc=0.875 (final)")
        print("done")
        """,
    )
    objective = CommandObjective(
        f"{{python}} {script}", metric_regex=r"val_acc=([0-9.]+)", log_dir=tmp_path
    )
    with trial_context(_context(tmp_path)):
        assert objective({}) == 0.875


def test_non_zero_exit_fails_with_the_stderr_tail(tmp_path):
    script = _script(
        tmp_path,
        "t.py",
        """
        import sys
        for i in range(40):
            print(f"noise {i}", file=sys.stderr)
        print("RuntimeError: CUDA out of memory (pretend)", file=sys.stderr)
        sys.exit(3)
        """,
    )
    objective = CommandObjective(f"{{python}} {script}", log_dir=tmp_path)
    with trial_context(_context(tmp_path)), pytest.raises(CommandError) as info:
        objective({})
    message = str(info.value)
    assert message.startswith("the command exited with code 3")
    assert "CUDA out of memory (pretend)" in message and "noise 39" in message
    assert "noise 0\n" not in message  # only the tail
    assert str(tmp_path / "3.log") in message


@pytest.mark.parametrize(
    ("body", "regex", "match"),
    [
        ("print('accuracy: 0.9')", None, "last line of stdout is not JSON"),
        ("print('{\"acc\": 0.9}')", None, "holds no 'value'.*keys: acc"),
        ("print('[1, 2]')", None, "neither a number nor an object"),
        ("print('{\"value\": \"high\"}')", None,
         r"gives 'value' as \"high\" \(str\), not a number; print a number there.*full output"),
        ("print('{\"value\": NaN}')", None, "the metric is nan, not a finite number"),
        # a diverged run: Python prints nan and inf, which JSON cannot spell
        ("print(float('nan'))", None, "the metric is nan, not a finite number"),
        ("print(-float('inf'))", None, "the metric is -inf, not a finite number"),
        ("pass", None, "printed nothing on stdout"),
        # a regex's group of digits reads a diverged run's nan too: it matched nothing (the
        # study stopped as if the script printed no metric), or an earlier epoch's number
        ("print('Final validation accuracy: nan%')", r"accuracy: ([0-9.]+)%",
         "the metric is nan, not a finite number"),
        ("print('acc: 0.35'); print('acc: NaN')", r"acc: (?P<acc>\d+\.\d+)",
         "the metric is NaN, not a finite number"),
        ("print('[val] loss=-inf')", r"\[val\] (?:loss|cost)=([0-9.]+)",
         "the metric is -inf, not a finite number"),
        ("print('acc=n/a')", r"acc=(\S+)", "captured 'n/a', which is not a number"),
        ("print('loss=1')", r"acc=(\S+)", "matches nothing in stdout"),
        (
            "import logging; logging.basicConfig(level=logging.INFO); logging.info('acc=0.9')",
            r"acc=(\S+)",
            r"matches nothing there, but matched '0.9' in stderr .*print the metric to stdout",
        ),
    ],
)
def test_missing_or_unreadable_metric_fails_with_the_reason(tmp_path, body, regex, match):
    script = _script(tmp_path, "t.py", body + "\n")
    objective = CommandObjective(f"{{python}} {script}", metric_regex=regex, log_dir=tmp_path)
    with trial_context(_context(tmp_path)), pytest.raises(CommandError, match=match) as info:
        objective({})
    # a metric the command printed as NaN or inf is the trial's own failure; one it did not
    # print (readably) ends a study that has no completed trial (tests/test_loop.py)
    assert isinstance(info.value, UnusableResultError) == ("not a finite number" not in match)
    assert describe_exception(info.value).startswith("CommandError: ")  # a trial's error


def test_an_argument_parser_s_refusal_is_a_mistake_every_trial_would_make(tmp_path):
    # `2>&1 | tee log` in a command (no shell) reaches argparse as arguments: every trial fails
    script = _script(tmp_path, "train.py", (
        "import argparse\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--lr', type=float)\n"
        "parser.parse_args()\n"
    ))
    objective = CommandObjective(f"{{python}} {script} --lr {{lr}} 2>&1 | tee log",
                                 log_dir=tmp_path)
    with trial_context(_context(tmp_path)), pytest.raises(CommandError) as info:
        objective({"lr": 0.1})
    assert isinstance(info.value, UnusableResultError)  # ends a study with no completed trial
    shown = describe_exception(info.value)
    assert shown.startswith(
        "CommandError: the command's argument parser refused its command line (train.py: "
        "error: unrecognized arguments: 2>&1 | tee log); compare the options of command: "
    )
    assert "exited with code 2" in shown and "usage: train.py" in shown  # the tail, as before
    # exit code 2 without a usage line is the script's own failure
    other = _script(tmp_path, "t.py", "import sys; print('error: disk full', file=sys.stderr); "
                    "sys.exit(2)\n")
    with trial_context(_context(tmp_path)), pytest.raises(CommandError) as info:
        CommandObjective(f"{{python}} {other}", log_dir=tmp_path)({})
    assert not isinstance(info.value, UnusableResultError)


def test_a_number_after_a_diverged_epoch_is_read_as_printed(tmp_path):
    # the last match counts, whichever spelling: a run that recovered from a NaN epoch
    script = _script(tmp_path, "t.py", "print('acc: nan'); print('acc: 0.5 loss: inf')\n")
    objective = CommandObjective(f"{{python}} {script}", metric_regex=r"acc: ([0-9.]+)",
                                 log_dir=tmp_path)
    with trial_context(_context(tmp_path)):
        assert objective({}) == 0.5


def test_a_json_metric_beyond_a_floats_range_is_left_to_the_value_check(tmp_path):
    script = _script(tmp_path, "t.py", "print('{\"value\": 1' + '0' * 400 + '}')\n")
    objective = CommandObjective(f"{{python}} {script}", log_dir=tmp_path)
    with trial_context(_context(tmp_path)):
        returned = objective({})
    with pytest.raises(ValueError, match="an integer of 401 digits, beyond a float's range"):
        gpbo.executors.base.parse_objective_value(returned, metric="value")


@pytest.mark.parametrize(
    "progress",
    [
        "for step in range(3): print(f'step {step}', end='\\r', flush=True)",
        # tqdm(file=sys.stdout, leave=False) clears its bar with "\r", blanks, "\r"
        "sys.stdout.write(' 33%|##  | 1/3\\r100%|######| 3/3\\r' + ' ' * 20 + '\\r')",
    ],
)
def test_json_line_after_a_progress_bar_on_stdout_is_read(tmp_path, progress):
    # The bar never ends its line, so the JSON arrives glued to every earlier redraw.
    body = f"import sys\n{progress}\nprint('{{\"value\": 0.25}}')\n"
    script = _script(tmp_path, "t.py", body)
    objective = CommandObjective(f"{{python}} {script}", log_dir=tmp_path)
    with trial_context(_context(tmp_path)):
        assert objective({}) == {"value": 0.25}


def test_a_failure_quotes_long_stderr_lines_cut_short_and_the_log_keeps_them(tmp_path):
    # 30 lines of 100 kB on stderr: each failed trial's journal event was 1.3 MB
    script = _script(
        tmp_path,
        "t.py",
        """
        import sys
        for i in range(30):
            print(f"line {i} " + "x" * 100_000, file=sys.stderr)
        sys.exit(1)
        """,
    )
    objective = CommandObjective(f"{{python}} {script}", log_dir=tmp_path)
    with trial_context(_context(tmp_path)), pytest.raises(CommandError) as info:
        objective({})
    message = str(info.value)
    quoted = [line for line in message.splitlines() if line.startswith("  | ")]
    assert len(quoted) == 20 and all(len(line) < 400 for line in quoted)
    assert all(line.endswith("more chars)") for line in quoted) and len(message) < 10_000
    assert "x" * 100_000 in (tmp_path / "3.log").read_text()


def test_metric_regex_finds_its_last_match_however_much_output_follows(tmp_path):
    # only the kept end of stdout (10,000 lines) was searched: the metric printed before a
    # long cleanup failed the trial, though the log file had it
    script = _script(
        tmp_path,
        "t.py",
        """
        print("epoch 1 acc=0.50")
        print("final acc=0.93")
        for i in range(20_000):
            print(f"cleanup step {i}")
        """,
    )
    objective = CommandObjective(
        f"{{python}} {script}", metric="acc", metric_regex=r"acc=([0-9.]+)", log_dir=tmp_path
    )
    with trial_context(_context(tmp_path)):
        assert objective({}) == 0.93


def test_stderr_tail_quotes_a_progress_bar_as_a_terminal_shows_it(tmp_path):
    script = _script(
        tmp_path,
        "t.py",
        """
        import sys
        for step in range(5000):
            sys.stderr.write(f"\\r{step / 50:.0f}%|redraw {step}")
        sys.stderr.write("\\n")
        sys.exit("diverged")
        """,
    )
    objective = CommandObjective(f"{{python}} {script}", log_dir=tmp_path)
    with trial_context(_context(tmp_path)), pytest.raises(CommandError) as info:
        objective({})
    message = str(info.value)
    assert "redraw 4999" in message and "diverged" in message
    assert "redraw 4998" not in message  # not the 5000 earlier redraws of the same line
    assert len(message) < 500


def test_a_command_that_cannot_start_fails_the_trial(tmp_path):
    objective = CommandObjective(str(tmp_path / "no-such-program"), log_dir=tmp_path)
    with trial_context(_context(tmp_path)), pytest.raises(CommandError, match="could not start"):
        objective({})


@pytest.mark.parametrize("program", ["./train.sh", "bin/train.sh"])
def test_a_program_given_by_a_relative_path_runs_from_the_working_directory(tmp_path, program):
    # every trial failed with "TypeError: unsupported operand type(s) for /: 'str' and 'str'"
    script = tmp_path / program
    script.parent.mkdir(exist_ok=True)
    script.write_text("#!/bin/sh\necho $1\n")
    script.chmod(0o755)
    objective = CommandObjective(f"{program} {{x}}", cwd=tmp_path, log_dir=tmp_path)
    with trial_context(_context(tmp_path)):
        assert objective({"x": 0.5}) == 0.5
    script.chmod(0o644)
    with trial_context(_context(tmp_path)), pytest.raises(CommandError, match="not executable"):
        objective({"x": 0.5})


def test_an_endless_output_line_is_logged_whole_but_only_its_end_kept(tmp_path):
    # a progress bar redrawn with \r all training long is one line: it was held whole (170 MB
    # of output took 240 MB more of the driver's memory)
    script = _script(
        tmp_path,
        "t.py",
        """
        import sys
        for step in range(300_000):
            sys.stdout.write(f"\\rstep {step:07d} loss 0.5")
        print('\\n{"value": 0.25}')
        """,
    )
    objective = CommandObjective(f"{{python}} {script}", log_dir=tmp_path)
    kept = {}
    original = CommandObjective._metric_from

    def spy(self, stdout, log_path, **kwargs):
        kept["chars"] = sum(map(len, stdout.lines()))
        return original(self, stdout, log_path, **kwargs)

    with trial_context(_context(tmp_path)), pytest.MonkeyPatch.context() as patch:
        patch.setattr(CommandObjective, "_metric_from", spy)
        assert objective({}) == {"value": 0.25}
    assert (tmp_path / "3.log").stat().st_size > 300_000 * 20
    assert "step 0299999" in (tmp_path / "3.log").read_text()
    assert kept["chars"] < 100_000


_DETACHES = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         start_new_session=True)  # a daemon of its own, holding our stdout
with open(sys.argv[1], "w") as f:
    f.write(str(child.pid))
print('{"value": 0.5}', flush=True)
"""


@pytest.mark.skipif(os.name != "posix", reason="sessions are POSIX")
def test_a_child_in_a_session_of_its_own_does_not_hold_the_trial(tmp_path):
    # its copy of the output pipes kept the readers from their end of file: 5 s each, so a
    # 0.3 s command took 10 s (and ran past a trial_timeout of 5 s)
    script = _script(tmp_path, "detaches.py", _DETACHES)
    pid_file = tmp_path / "daemon.pid"
    objective = CommandObjective(f"{{python}} {script} {pid_file}", log_dir=tmp_path / "logs")
    try:
        with trial_context(_context(tmp_path)):
            started = time.monotonic()
            assert objective({}) == {"value": 0.5}
            assert time.monotonic() - started < 4
        log = (tmp_path / "logs" / "3.log").read_text()
        assert "still holds its output open; it left the command's session" in log
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


# -- stopping it --------------------------------------------------------------------------------

_SLEEPER = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
print("started", flush=True)
time.sleep(60)
"""


def _run_sleeper(tmp_path: Path, executor: str) -> tuple[gpbo.Result, list[int]]:
    script = _script(tmp_path, "sleeper.py", _SLEEPER)
    pids_file = tmp_path / "pids.txt"
    objective = CommandObjective(
        f"{{python}} {script} {pids_file} {{x}}", log_dir=tmp_path / "logs", grace_period=0.5
    )
    result = gpbo.optimize(
        objective,
        {"x": gpbo.Real(0.0, 1.0)},
        n_trials=1,
        strategy="random",
        executor=executor,
        devices=["cpu"],
        trial_timeout=3.0,  # time for the command and its child to start on a loaded machine
        journal=tmp_path / "journal.jsonl",
        seed=0,
        verbose=False,
    )
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 2, "the command did not write its and its child's pids in time"
    return result, pids


def test_serial_timeout_kills_the_commands_whole_process_group(tmp_path):
    result, pids = _run_sleeper(tmp_path, "serial")
    assert result.trials[0].status == "timeout"
    assert result.trials[0].error.endswith(f"(full output in {tmp_path / 'logs' / '0.log'})")
    assert _wait_gone(pids) == [], "the command or its child outlived the timeout"
    assert "stopping the command (TrialTimeout" in (tmp_path / "logs" / "0.log").read_text()


def test_process_executor_timeout_kills_the_commands_whole_process_group(tmp_path):
    result, pids = _run_sleeper(tmp_path, "process")
    assert result.trials[0].status == "timeout"
    assert result.trials[0].error.endswith(f"(full output in {tmp_path / 'logs' / '0.log'})")
    assert _wait_gone(pids) == [], "the command or its child outlived the worker"
    assert "SIGTERM reached the trial" in (tmp_path / "logs" / "0.log").read_text()


@pytest.mark.skipif(os.name != "posix", reason="the guard process is POSIX only")
@pytest.mark.parametrize("executor", ["serial", "process"])
def test_a_killed_driver_takes_the_commands_children_with_it(tmp_path, executor):
    # a launcher's children (torchrun's ranks, say) must not train on after the driver was
    # SIGKILLed: the resumed run would start the same trial beside them
    script = _script(tmp_path, "sleeper.py", _SLEEPER)
    pids_file = tmp_path / "pids.txt"
    driver = _script(
        tmp_path,
        "driver.py",
        f"""
        import gpbo
        from gpbo.command import CommandObjective
        if __name__ == "__main__":
            objective = CommandObjective("{{python}} {script} {pids_file}",
                                         log_dir="{tmp_path / 'logs'}")
            gpbo.optimize(objective, {{"x": gpbo.Real(0.0, 1.0)}}, n_trials=1,
                          strategy="random", executor="{executor}", devices=["cpu"],
                          verbose=False)
        """,
    )
    proc = subprocess.Popen([sys.executable, str(driver)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 60
        while len(pids_file.read_text().split() if pids_file.exists() else []) < 2:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < end, "the command did not start"
            time.sleep(0.05)
        pids = [int(p) for p in pids_file.read_text().split()]
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert _wait_gone(pids) == [], "the command or its child outlived the killed driver"


_IGNORES_SIGTERM = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # e.g. a trainer that saves a checkpoint first
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
print("started", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_second_ctrl_c_during_the_grace_period_still_kills_the_command(tmp_path):
    script = _script(tmp_path, "stubborn.py", _IGNORES_SIGTERM)
    pid_file = tmp_path / "pid.txt"
    objective = CommandObjective(
        f"{{python}} {script} {pid_file}", log_dir=tmp_path, grace_period=30.0
    )
    log = tmp_path / "3.log"
    presses: list[float] = []

    def press_ctrl_c(signum, frame):
        # once the command runs, then again (impatient) once it is being stopped
        stopping = log.exists() and "stopping the command" in log.read_text()
        if len(presses) < 2 and pid_file.exists() and (stopping or not presses):
            presses.append(time.monotonic())
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, press_ctrl_c)
    signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)
    pid = None
    try:
        with trial_context(_context(tmp_path)), pytest.raises(KeyboardInterrupt):
            objective({})
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert len(presses) == 2
        pid = int(pid_file.read_text())
        assert _wait_gone([pid]) == [], "the command outlived a second Ctrl+C"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_while_the_output_readers_start_still_stops_the_command(tmp_path, monkeypatch):
    import threading

    script = _script(tmp_path, "stubborn.py", _IGNORES_SIGTERM)
    pid_file = tmp_path / "pid.txt"
    objective = CommandObjective(f"{{python}} {script} {pid_file}", log_dir=tmp_path)
    start = threading.Thread.start

    def interrupted_start(thread):
        start(thread)
        if thread.name and "_copy_lines" in thread.name:  # the command's stdout reader
            end = time.monotonic() + 30
            while not pid_file.exists() and time.monotonic() < end:
                time.sleep(0.05)
            raise KeyboardInterrupt  # as if Ctrl+C came while start() waited

    monkeypatch.setattr(threading.Thread, "start", interrupted_start)
    pid = None
    try:
        with trial_context(_context(tmp_path)), pytest.raises(KeyboardInterrupt):
            objective({})
        monkeypatch.undo()
        pid = int(pid_file.read_text())
        assert _wait_gone([pid]) == [], "the command outlived the Ctrl+C"
    finally:
        monkeypatch.undo()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_results_come_back_through_the_process_executor(tmp_path):
    script = _script(
        tmp_path,
        "t.py",
        """
        import json, sys
        x = float(sys.argv[1])
        print(json.dumps({"value": (x - 0.3) ** 2, "half": x / 2}))
        """,
    )
    objective = CommandObjective(f"{{python}} {script} {{x}}", log_dir=tmp_path / "logs")
    result = gpbo.optimize(
        objective,
        {"x": gpbo.Real(0.0, 1.0)},
        n_trials=2,
        batch_size=2,
        strategy="sobol",
        executor="process",
        devices=["cpu", "cpu"],
        seed=0,
        verbose=False,
    )
    assert [t.status for t in result.trials] == ["complete", "complete"]
    for trial in result.trials:
        assert trial.value == pytest.approx((trial.params["x"] - 0.3) ** 2)
        assert trial.metrics["half"] == pytest.approx(trial.params["x"] / 2)
        assert json.loads((tmp_path / "logs" / f"{trial.number}.log").read_text().splitlines()[2])


def test_a_sigterm_handler_installed_outside_python_is_left_in_place(monkeypatch):
    # signal.getsignal says None for such a handler; replacing it could not be undone
    from gpbo import command

    installed = []
    monkeypatch.setattr(command.signal, "getsignal", lambda signum: None)
    monkeypatch.setattr(command.signal, "signal", lambda *args: installed.append(args))
    with command._sigterm_raises():
        pass
    assert installed == []
