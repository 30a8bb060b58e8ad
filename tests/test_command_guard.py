"""Tests for gpbo/_command_guard.py: the command's exit passes through the guard unchanged."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gpbo._command_guard as guard_module
from tests.test_command import _alive

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the guard is POSIX only")
GUARD = Path(guard_module.__file__)


def guarded(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", "-S", str(GUARD), *argv],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("script", "code"), [("exit 0", 0), ("exit 7", 7),
                                              ("kill -9 $$", -9), ("kill -TERM $$", -15)])
def test_the_commands_exit_code_or_signal_is_the_guards(script, code):
    done = guarded("sh", "-c", f"echo out; echo err >&2; {script}")
    assert done.returncode == code
    assert (done.stdout, done.stderr) == ("out\n", "err\n")  # the guard adds nothing


def test_a_program_that_cannot_start_says_so_and_exits_127(tmp_path):
    done = guarded(str(tmp_path / "missing"))
    assert done.returncode == 127
    assert "could not start" in done.stderr


def test_a_killed_guard_takes_the_command_and_its_children_with_it(tmp_path):
    # Ray's clean-up of a cancelled task SIGKILLs the worker's direct children: the guard,
    # not the command one level down, which went on running
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $$ $! > {pids}; wait"
    guard = subprocess.Popen([sys.executable, "-I", "-S", str(GUARD), "sh", "-c", script],
                             start_new_session=True)  # as gpbo.command starts it
    try:
        end = time.monotonic() + 30
        while len(pids.read_text().split() if pids.exists() else []) < 2:
            assert time.monotonic() < end, "the command did not start"
            time.sleep(0.05)
        command_pids = [int(p) for p in pids.read_text().split()]
        guard.kill()
        guard.wait(timeout=10)
        end = time.monotonic() + 10
        while any(_alive(p) for p in command_pids) and time.monotonic() < end:
            time.sleep(0.05)
        assert not any(_alive(p) for p in command_pids), "the command outlived its guard"
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(guard.pid, signal.SIGKILL)

