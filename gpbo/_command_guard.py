"""Run a trial's command and end its whole process group if the process that started it dies.

Used by :mod:`gpbo.command` on POSIX as ``python -I -S <this file> ARGV...``: run as a script
with the standard library only, so it starts in milliseconds and imports nothing of gpbo.

The command runs in a session of its own (so that a timeout can stop its whole group). That
also took it out of reach of the worker's clean-up: when the driver was killed (``SIGKILL``,
the out-of-memory killer), ``PR_SET_PDEATHSIG`` ended the command's first process only, and a
launcher's children (``torchrun``'s ranks, a shell's pipeline) went on training, holding the
GPU and writing to the trial's folder while the resumed run started the same trial again.
This guard is the session's leader: it starts the command as its child in the same group,
waits for it, and exits the way it exited (the same code, or the same signal); should its
parent go away first, it kills the group, itself included.

The guard itself may be killed first: Ray's clean-up of a cancelled task's worker SIGKILLs
the worker's direct children, the guard among them, and the command, one level further
down, was left running. So the guard also forks a watcher into the group, which kills the
group when the guard is gone.

``SIGTERM`` is ignored by the guard itself (gpbo's graceful stop signals the whole group,
and the command must see it first); the command gets the default disposition back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

#: How often the guard looks whether its parent is still there (seconds).
PARENT_POLL_S = 0.2


def main(argv: list[str]) -> int:
    """Run ``argv``; return its exit code, or die of the signal that ended it."""
    if not argv:
        sys.stderr.write("gpbo command guard: no command given\n")
        return 2
    parent = os.getppid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:  # the command
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.execvp(argv[0], argv)
        except BaseException as exc:
            os.write(2, f"gpbo: the command {argv[0]!r} could not start: {exc}\n".encode())
        os._exit(127)

    _fork_watcher()

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os.killpg(0, signal.SIGKILL)  # the group, the guard included

    threading.Thread(target=watch_parent, daemon=True).start()
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:  # pragma: no cover - retried by Python since 3.5
            continue
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        # SIGKILL's disposition cannot be set (nor changed)
        with contextlib.suppress(OSError, ValueError):
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        time.sleep(1)  # a signal whose default is to continue (should not happen)
        return 128 + signum
    return os.WEXITSTATUS(status)


def _fork_watcher() -> None:
    """Fork a process that kills the group (itself included) once the guard is gone."""
    guard = os.getpid()
    if os.getpgrp() != guard:  # not the leader of a group of its own: nothing of ours to kill
        return
    if os.fork() != 0:
        return
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl+C is the command's
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # holding the output pipes would keep their readers waiting
            os.dup2(devnull, fd)
        while os.getppid() == guard:
            time.sleep(PARENT_POLL_S)
        os.killpg(0, signal.SIGKILL)
    finally:
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
