"""Tests for gpbo/_command_guard.py: the command's exit passes through the guard unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gpbo._command_guard as guard_module

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
