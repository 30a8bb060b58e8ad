"""Command trials: an objective that runs a training command and reads its metric.

:class:`CommandObjective` is what a ``command:`` config of ``gpbo run`` becomes, and it works
as an objective of :func:`gpbo.optimize` too::

    objective = CommandObjective("{python} train.py --lr {lr} --batch-size {batch_size}",
                                 metric="accuracy", log_dir="runs/mlp/trials")
    gpbo.optimize(objective, space, n_trials=32, direction="maximize", devices="auto")

Each call

* splits the template with :func:`shlex.split` and fills every token with ``str.format``
  (parameters by name, plus ``{python}``, ``{trial_number}``, ``{trial_seed}`` and
  ``{trial_dir}``), so a value never needs quoting and no shell is involved;
* starts the command in a session and process group of its own, with
  ``CUDA_VISIBLE_DEVICES`` naming the trial's GPU alone (``""`` on a CPU slot) and
  ``GPBO_TRIAL_NUMBER``, ``GPBO_TRIAL_SEED``, ``GPBO_TRIAL_DIR`` set;
* copies its stdout and stderr, line by line, to a log file of the trial
  (``<log_dir>/<number>.log``, else ``command.log`` in the trial's directory);
* reads the metric from stdout: the last non-empty line as JSON (an object holding the metric
  and any extra numbers, or a bare number, also as Python prints one: ``nan`` or ``inf`` fails
  the trial as a NaN; of a line a progress bar redrew with ``\\r``, the text after its last
  redraw), or the last match of ``metric_regex``, where its group also reads ``nan`` and
  ``inf`` (a diverged training prints its metric so: a group of digits matched nothing, or
  an earlier epoch's number, instead of failing the trial as a NaN).

A non-zero exit fails the trial with the last lines of stderr; a missing or unreadable metric
fails it with the reason.

Stopping: whatever ends a call early (the serial executor's ``trial_timeout`` alarm, Ctrl+C,
or ``SIGTERM``, which the process executor sends to its worker on a timeout or an interrupt)
stops the command's whole process group: ``SIGTERM``, then ``SIGKILL`` after
``grace_period`` seconds. Should the process that started it die without that chance (the
driver killed with ``SIGKILL``), the whole group is killed too: on POSIX the command runs
under a small guard process (:mod:`gpbo._command_guard`) that watches for that.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

from gpbo.exceptions import GpboError, UnusableResultError
from gpbo.executors.base import describe_exit
from gpbo.report import shorten

__all__ = ["RESERVED_FIELDS", "CommandError", "CommandObjective", "template_fields"]

logger = logging.getLogger(__name__)

#: Placeholders a template may use besides the parameters' names.
RESERVED_FIELDS: tuple[str, ...] = ("python", "trial_number", "trial_seed", "trial_dir")

# Lines of stderr quoted when a command fails, and lines of stdout kept for the metric.
_STDERR_TAIL = 20
_STDOUT_KEPT = 10_000
# What is kept of stdout, at most, in characters: the log file gets everything, but a command
# printing hundreds of MB (a progress bar redrawn with \r all training long is one "line") made
# the driver hold it all. The end of a line is kept: the last redraw, and the metric line.
_STDOUT_KEPT_CHARS = 4 << 20
_LINE_KEPT_CHARS = 64 << 10
_READ_CHUNK = 64 << 10
# Seconds to wait, in all, for the output copiers once the command has ended. What it wrote
# before it ended is at most a pipe's buffer behind (writes block on a full pipe), read in
# milliseconds; longer means a process it started holds the pipes open.
_READER_JOIN_S = 1.0


class CommandError(GpboError, RuntimeError):
    """A command trial failed: non-zero exit, or no readable metric in its output.

    Its message says all there is (the command's stderr tail, the line read, the log file); a
    trial's error leaves the traceback out, which would show only gpbo's own code.
    """

    omit_traceback: ClassVar[bool] = True


class _MetricNotReadError(CommandError, UnusableResultError):
    """The command ended well but printed no metric gpbo can read (not a NaN: that is one)."""

    shown_as: ClassVar[str] = "CommandError"


class _CommandLineRefusedError(CommandError, UnusableResultError):
    """The command's argument parser refused its command line (argparse's or click's exit code
    2 with a usage line): every trial would most likely fail the same way."""

    shown_as: ClassVar[str] = "CommandError"


class _Stopped(BaseException):
    """``SIGTERM`` arrived while a command ran (raised by the temporary handler)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def template_fields(template: str | Sequence[str]) -> list[str]:
    """The placeholder names a command template uses, in order, without repeats.

    Args:
        template: A command line (split with :func:`shlex.split`) or its tokens.

    Raises:
        GpboError: The template does not split or holds a malformed placeholder.
    """
    names: list[str] = []
    for token in _tokens(template):
        try:
            parsed = list(string.Formatter().parse(token))
        except ValueError as exc:
            raise GpboError(
                f"command token {token!r} is not a valid template: {exc} (double the braces, "
                "{{ }}, for literal ones)"
            ) from None
        for _, field, _, _ in parsed:
            if field is None:
                continue
            name = re.split(r"[.\[]", field, maxsplit=1)[0]
            if not name or name.isdigit():
                raise GpboError(
                    f"command token {token!r} has a placeholder without a name; use "
                    "{parameter_name} (double the braces, {{ }}, for literal ones)"
                )
            if name not in names:
                names.append(name)
    return names


def _tokens(template: str | Sequence[str]) -> list[str]:
    if isinstance(template, str):
        try:
            tokens = shlex.split(template)
        except ValueError as exc:
            raise GpboError(f"the command {template!r} does not split into words: {exc}") from None
    else:
        tokens = [str(t) for t in template]
    if not tokens:
        raise GpboError("the command is empty")
    return tokens


class CommandObjective:
    """An objective that runs a command per trial and reads the metric from its output.

    Its trials never run in the driver's process, even under the serial executor
    (``runs_in_child_process``): a killed driver's resume runs them again however often it
    died, where a Python objective that was running in a driver that died twice is failed.

    Picklable (plain data), so the process executor can send it to its workers.

    Args:
        command: The template, e.g. ``"{python} train.py --lr {lr}"`` (split with
            :func:`shlex.split`, then each token filled with ``str.format``), or its tokens.
        metric: The key of the metric in the JSON object of the last stdout line; the
            objective returns the whole object, so its other numbers are kept with the trial.
        metric_regex: Read the metric instead from the last match of this regular expression
            in stdout; its first group is the number.
        log_dir: Folder of the per-trial logs (``<number>.log``); ``None`` writes
            ``command.log`` in the trial's own directory.
        cwd: Working directory of the command (default: the current one at construction).
        python: What ``{python}`` stands for (default: the interpreter running gpbo).
        env: Extra environment variables for the command.
        grace_period: Seconds between ``SIGTERM`` and ``SIGKILL`` when a command is stopped.

    Raises:
        GpboError: The template does not split, a placeholder is malformed, or
            ``metric_regex`` does not compile or has no group.
    """

    runs_in_child_process: ClassVar[bool] = True

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        metric: str = "value",
        metric_regex: str | None = None,
        log_dir: str | Path | None = None,
        cwd: str | Path | None = None,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        grace_period: float = 1.0,
    ) -> None:
        self.tokens = _tokens(command)
        self.fields = template_fields(self.tokens)
        self.metric = metric
        self.metric_regex = metric_regex
        if metric_regex is not None:
            try:
                groups = re.compile(metric_regex).groups
            except re.error as exc:
                raise GpboError(f"metric_regex {metric_regex!r} does not compile: {exc}") from None
            if groups < 1:
                raise GpboError(
                    f"metric_regex {metric_regex!r} needs a group around the number, e.g. "
                    r"'accuracy: ([0-9.eE+-]+)'"
                )
        self.log_dir = str(Path(log_dir).resolve()) if log_dir is not None else None
        self.cwd = str(Path(cwd).resolve()) if cwd is not None else os.getcwd()
        self.python = python or sys.executable
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        if not (isinstance(grace_period, (int, float)) and grace_period >= 0):
            raise GpboError(f"grace_period must be a non-negative number, got {grace_period!r}")
        self.grace_period = float(grace_period)

    def __repr__(self) -> str:
        return f"CommandObjective({shlex.join(self.tokens)!r})"

    # -- the call -----------------------------------------------------------------------------

    def argv(self, params: Mapping[str, Any], **extra: Any) -> list[str]:
        """The command line for ``params`` (the reserved fields default to this process's).

        Raises:
            GpboError: A placeholder names neither a parameter nor a reserved field.
        """
        values: dict[str, Any] = {
            "python": self.python,
            "trial_number": "",
            "trial_seed": "",
            "trial_dir": "",
        }
        values.update(extra)
        values.update(params)
        out = []
        for token in self.tokens:
            try:
                out.append(token.format(**values))
            except KeyError as exc:
                raise GpboError(
                    f"command token {token!r} names {exc.args[0]!r}, which is neither a "
                    f"parameter ({', '.join(params) or 'none'}) nor one of {list(RESERVED_FIELDS)}"
                ) from None
            except (ValueError, IndexError, AttributeError, TypeError) as exc:
                raise GpboError(f"command token {token!r} cannot be filled: {exc}") from None
        return out

    def log_path(self, number: int, trial_dir: str | os.PathLike[str]) -> Path:
        """Where trial ``number``'s command writes its output: ``<log_dir>/<number>.log``,
        else ``command.log`` in the trial's directory ``trial_dir``."""
        if self.log_dir is not None:
            return Path(self.log_dir) / f"{number}.log"
        return Path(trial_dir) / "command.log"

    def __call__(self, params: dict[str, Any]) -> float | dict[str, Any]:
        """Run the command for one trial; return the metric (or the JSON object holding it).

        Raises:
            CommandError: The command exited with an error or printed no readable metric.
        """
        number, seed, trial_dir, device = _trial_info()
        argv = self.argv(
            params,
            trial_number=number,
            trial_seed="" if seed is None else seed,
            trial_dir=trial_dir,
        )
        env = dict(os.environ)
        env.pop("GPBO_WORKER", None)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self.env)
        env["CUDA_VISIBLE_DEVICES"] = _cuda_visible_for(device, os.environ)
        env.update(
            GPBO_TRIAL_NUMBER=str(number),
            GPBO_TRIAL_SEED="" if seed is None else str(seed),
            GPBO_TRIAL_DIR=str(trial_dir),
        )
        log_path = self.log_path(number, trial_dir)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        returncode, stdout, stderr = self._run(argv, env, log_path, device)
        if returncode != 0:
            message = _exit_message(returncode, stderr.lines(), log_path)
            refusal = _argument_parser_refusal(returncode, stderr.lines())
            if refusal is not None:
                raise _CommandLineRefusedError(
                    f"the command's argument parser refused its command line ({refusal}); "
                    f"compare the options of command: with the script's\n{message}"
                )
            raise CommandError(message)
        return self._metric_from(stdout, log_path, on_stderr=stderr.last_match)

    def _run(
        self, argv: list[str], env: dict[str, str], log_path: Path, device: str
    ) -> tuple[int, _Tail, _Tail]:
        """Run ``argv``, copying its output to ``log_path``; stop it on any early exit.

        Returns:
            The exit code and the kept ends of stdout and stderr, each with the last
            ``metric_regex`` match in all of it.
        """
        patterns: list[re.Pattern[str]] = []
        if self.metric_regex is not None:
            patterns.append(re.compile(self.metric_regex))
            diverged = _diverged_variant(self.metric_regex)
            if diverged is not None:
                patterns.append(diverged)
        stdout = _Tail(_STDOUT_KEPT, _STDOUT_KEPT_CHARS, patterns=patterns)
        # matched too, only to say so where stdout has no match: Python's logging and many
        # training loops print to stderr, and "matches nothing" sent users looking at the regex
        stderr = _Tail(_STDERR_TAIL, _STDERR_TAIL * _LINE_KEPT_CHARS, patterns=patterns)
        with open(log_path, "a", encoding="utf-8", errors="replace") as log:
            log.write(
                f"# gpbo: {time.strftime('%Y-%m-%d %H:%M:%S')} on {device} "
                f"(CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']!r}) in {self.cwd}\n"
                f"# gpbo: {shlex.join(argv)}\n"
            )
            log.flush()
            missing = why_not_runnable(argv[0], cwd=Path(self.cwd), path=env.get("PATH"))
            if missing is not None:
                raise CommandError(
                    f"the command {shlex.join(argv)!r} could not start: {missing} (run from "
                    f"{self.cwd})"
                )
            try:
                proc = subprocess.Popen(
                    _guarded(argv),
                    cwd=self.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError as exc:
                raise CommandError(
                    f"the command {shlex.join(argv)!r} could not start: {exc} (run from {self.cwd})"
                ) from None
            lock = threading.Lock()
            readers: list[threading.Thread] = []
            # from the moment the command runs: a Ctrl+C while a reader starts (its start()
            # waits) left the command running, unstopped
            try:
                for source, tail in ((proc.stdout, stdout), (proc.stderr, stderr)):
                    reader = threading.Thread(
                        target=_copy_lines, args=(source, log, lock, tail), daemon=True
                    )
                    readers.append(reader)
                    reader.start()
                with _sigterm_raises():
                    returncode = proc.wait()
                # What the command left running in its group would hold the GPU: end it.
                _signal_group(proc.pid, signal.SIGKILL)
            except _Stopped as stop:
                self._stop(proc, log, lock, "SIGTERM reached the trial")
                _redeliver(stop.signum)
                raise
            except BaseException as exc:
                self._stop(proc, log, lock, f"{type(exc).__name__} ended the trial")
                raise
            finally:
                deadline = time.monotonic() + _READER_JOIN_S
                for reader in readers:
                    reader.join(timeout=max(0.0, deadline - time.monotonic()))
                with lock:
                    if any(reader.is_alive() for reader in readers):
                        log.write(
                            "# gpbo: a process the command started still holds its output "
                            "open; it left the command's session (start_new_session, setsid, "
                            "a daemon), so gpbo cannot stop it, and what it writes now is not "
                            "kept\n"
                        )
                    log.flush()
            with lock:
                log.write(f"# gpbo: exit code {returncode}\n")
        return returncode, stdout, stderr

    def _stop(
        self, proc: subprocess.Popen[bytes], log: IO[str], lock: threading.Lock, why: str
    ) -> None:
        """Stop the command's process group: ``SIGTERM``, then ``SIGKILL`` after the grace."""
        with contextlib.suppress(Exception), lock:
            log.write(f"# gpbo: stopping the command ({why})\n")
            log.flush()
        _kill_group(proc, self.grace_period)

    # -- the metric ---------------------------------------------------------------------------

    def _metric_from(
        self, stdout: _Tail, log_path: Path, *, on_stderr: str | None = None
    ) -> float | dict[str, Any]:
        where = f"(full output in {log_path})"
        if self.metric_regex is not None:
            text = stdout.last_match
            if text is None and on_stderr is not None:
                raise _MetricNotReadError(
                    f"no metric in stdout: metric_regex {self.metric_regex!r} matches "
                    f"nothing there, but matched {on_stderr!r} in stderr (Python's logging "
                    "writes there); print the metric to stdout (print(..., flush=True)), or "
                    f"log to sys.stdout {where}"
                )
            if text is None:
                raise _MetricNotReadError(
                    f"no metric in the output: metric_regex {self.metric_regex!r} matches "
                    f"nothing in stdout {where}"
                )
            try:
                value = float(text)
            except ValueError:
                raise _MetricNotReadError(
                    f"unreadable metric: metric_regex {self.metric_regex!r} captured {text!r}, "
                    f"which is not a number {where}"
                ) from None
            if not math.isfinite(value):  # the trial's own failure (a diverged training)
                raise CommandError(f"the metric is {text}, not a finite number {where}")
            return value
        lines = [shown for shown in map(_rendered, stdout.lines()) if shown.strip()]
        if not lines:
            raise _MetricNotReadError(
                "no metric in the output: the command printed nothing on stdout; its last "
                f'line must be JSON such as {{"{self.metric}": 0.93}} (or set metric_regex) '
                f"{where}"
            )
        last_line = lines[-1].strip()
        try:
            # A bare number as Python prints it; JSON has no spelling for `nan` or `inf`, which
            # a diverged training prints, and that trial should fail for its NaN, not for JSON.
            parsed = float(last_line)
        except ValueError:
            parsed = None
        try:
            parsed = json.loads(last_line) if parsed is None else parsed
        except ValueError:
            raise _MetricNotReadError(
                "unreadable metric: the last line of stdout is not JSON: "
                f"{shorten(last_line, 120)!r}; "
                f'print a JSON line last, such as {{"{self.metric}": 0.93}}, or set '
                f"metric_regex {where}"
            ) from None
        if isinstance(parsed, dict):
            if self.metric not in parsed:
                raise _MetricNotReadError(
                    f"no metric in the output: the last line of stdout holds no {self.metric!r} "
                    f"(keys: {', '.join(map(str, parsed)) or 'none'}); print it, or set "
                    f"metric: to the key to optimize {where}"
                )
            value = parsed[self.metric]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _MetricNotReadError(
                    f"unreadable metric: the last line of stdout gives {self.metric!r} as "
                    f"{shorten(json.dumps(value), 60)} ({type(value).__name__}), not a number; "
                    f'print a number there, such as {{"{self.metric}": 0.93}} {where}'
                )
            if isinstance(value, float) and not math.isfinite(value):  # an int is finite
                raise CommandError(f"the metric is {value}, not a finite number {where}")
            return parsed
        if isinstance(parsed, bool) or not isinstance(parsed, (int, float)):
            raise _MetricNotReadError(
                f"unreadable metric: the last line of stdout is JSON {shorten(last_line, 120)!r}, "
                f"neither a number nor an object holding {self.metric!r} {where}"
            )
        if not math.isfinite(parsed):
            raise CommandError(f"the metric is {parsed}, not a finite number {where}")
        return float(parsed)


# -- helpers ----------------------------------------------------------------------------------


def _trial_info() -> tuple[int, int | None, Path, str]:
    """The running trial's number, seed, directory and device (defaults outside a trial)."""
    from gpbo.context import current_trial

    try:
        trial = current_trial()
    except GpboError:
        return 0, None, Path.cwd(), "cpu"
    return trial.number, trial.seed, Path(trial.dir), str(trial.device)


def _cuda_visible_for(device: str, environ: Mapping[str, str]) -> str:
    """``CUDA_VISIBLE_DEVICES`` showing only ``device`` to the command (``""`` for the CPU).

    In a process-executor worker the device is ``cuda:0`` and the variable already names the
    one physical GPU, which is kept; the serial executor's ``cuda:N`` is mapped through the
    variable the same way.
    """
    if not device.startswith("cuda"):
        return ""
    index = int(device.partition(":")[2] or 0)
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return str(index)
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    return entries[index] if index < len(entries) else str(index)


class _Tail:
    """The last lines of a stream, at most ``max_lines`` of them and ``max_chars`` in all, each
    cut to its last :data:`_LINE_KEPT_CHARS` characters; and the first group of the last match
    of any of ``patterns`` in any line, kept or not (the metric printed before 20,000 lines of
    cleanup output was lost with the lines). Of matches at one place, the first pattern's
    counts."""

    def __init__(
        self, max_lines: int, max_chars: int, *, patterns: Sequence[re.Pattern[str]] = ()
    ) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._max_chars = max_chars
        self._chars = 0
        self._patterns = list(patterns)
        self.last_match: str | None = None

    def append(self, line: str) -> None:
        line = line[-_LINE_KEPT_CHARS:]
        last: re.Match[str] | None = None
        for pattern in reversed(self._patterns):  # the first pattern's wins a tie
            for found in pattern.finditer(line):
                if last is None or found.start() >= last.start():
                    last = found
        if last is not None:
            self.last_match = last.group(1) if last.re.groups else last.group(0)
        if len(self._lines) == self._lines.maxlen:
            self._chars -= len(self._lines[0])
        self._lines.append(line)
        self._chars += len(line)
        while self._chars > self._max_chars and len(self._lines) > 1:
            self._chars -= len(self._lines.popleft())

    def lines(self) -> list[str]:
        return list(self._lines)


#: What a diverged training prints for its metric, as Python or NumPy spell it.
_NOT_FINITE = r"[-+]?(?i:nan|inf(?:inity)?)"


def _diverged_variant(regex: str) -> re.Pattern[str] | None:
    """``regex`` with its first group reading :data:`_NOT_FINITE` instead; ``None`` where no
    such group is found.

    ``accuracy: ([0-9.]+)`` matched nothing in ``accuracy: nan`` (the study stopped as if the
    script printed no metric), or an earlier epoch's number (a stale value recorded).
    """
    depth, in_class, i = 0, False, 0
    start = content = None
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += 1
            if regex.startswith("^", i):
                i += 1
            if regex.startswith("]", i):  # a literal ] first in a class
                i += 1
            continue
        elif char == "(":
            depth += 1
            if start is None:
                named = re.match(r"\(\?P<\w+>", regex[i:])
                if named or not regex.startswith("?", i + 1):
                    start = depth
                    content = i + (named.end() if named else 1)
        elif char == ")":
            if start == depth and content is not None:
                try:
                    return re.compile(regex[:content] + _NOT_FINITE + regex[i:])
                except re.error:
                    return None
            depth -= 1
        i += 1
    return None


def _copy_lines(pipe: IO[bytes], log: IO[str], lock: threading.Lock, keep: _Tail) -> None:
    """Copy ``pipe`` to ``log``, keeping the end of its last lines in ``keep``.

    Read in chunks, not whole lines: a line without an end (a progress bar) would otherwise be
    held whole, however long.
    """
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    partial = ""
    try:
        for raw in iter(lambda: pipe.readline(_READ_CHUNK), b""):
            text = decoder.decode(raw)
            with lock:
                log.write(text)
                log.flush()
            partial = (partial + text)[-_LINE_KEPT_CHARS:]
            if partial.endswith("\n"):
                keep.append(partial.rstrip("\r\n"))
                partial = ""
    except (OSError, ValueError):  # the pipe or the log was closed under us
        pass
    finally:
        partial += decoder.decode(b"", final=True)
        if partial:
            keep.append(partial.rstrip("\r\n"))
            with contextlib.suppress(Exception), lock:
                log.write("\n")
                log.flush()
        with contextlib.suppress(Exception):
            pipe.close()


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """``SIGTERM`` to the process group of ``proc``, ``SIGKILL`` after ``grace`` seconds."""
    try:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
    finally:
        # Also when a second Ctrl+C cuts the grace period short: a command that handles
        # SIGTERM would otherwise go on holding its GPU. And the leader may have exited
        # while others in its group (its children) go on.
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the command runs, ``SIGTERM`` raises :class:`_Stopped` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    # None: a handler installed outside Python, which signal.signal could not put back
    if previous is signal.SIG_IGN or previous is None:
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise _Stopped(signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _redeliver(signum: int) -> None:
    """After the command is stopped, let the signal do what it would have done."""
    handler = signal.getsignal(signum)
    if callable(handler):
        handler(signum, None)  # e.g. the loop's SIGTERM -> KeyboardInterrupt in the driver
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)


def _guarded(argv: list[str]) -> list[str]:
    """``argv`` run under :mod:`gpbo._command_guard` where it can be (POSIX)."""
    if os.name != "posix" or not hasattr(os, "fork") or not sys.executable:
        return argv
    guard = Path(__file__).with_name("_command_guard.py")
    # -I -S: the standard library only, no site-packages or PYTHON* variables: starts fast,
    # and nothing of the user's environment can break it
    return [sys.executable, "-I", "-S", str(guard), *argv]


def why_not_runnable(program: str, *, cwd: Path, path: str | None) -> str | None:
    """Why ``program`` cannot be started (the guard's exec would fail later), or ``None``."""
    if os.sep in program or (os.altsep and os.altsep in program):
        target = Path(program) if Path(program).is_absolute() else cwd / program
        if not target.is_file():
            return f"[Errno 2] No such file or directory: {program!r}"
        if not os.access(target, os.X_OK):
            return f"[Errno 13] Permission denied: {program!r} (not executable)"
        return None
    if shutil.which(program, path=path) is None:
        return f"{program!r} is not on the PATH"
    return None


# What a failure message quotes of each stderr line: the message is the trial's error, kept in
# the journal (read again by every resume and `gpbo show`), and 20 lines of 100 kB each made
# one failed trial's event 1.3 MB. The log file has every line whole.
_QUOTED_LINE_CHARS = 300


def _argument_parser_refusal(returncode: int, stderr_tail: list[str]) -> str | None:
    """The error line of an argument parser's refusal (exit code 2 after a usage line, as
    argparse and click end), else ``None``."""
    lines = [shown.strip() for shown in map(_rendered, stderr_tail) if shown.strip()]
    if returncode != 2 or not any(line.lower().startswith("usage:") for line in lines):
        return None
    errors = [line for line in lines if re.search(r"(^|: )error: ", line, re.IGNORECASE)]
    return shorten(errors[-1], 200) if errors else None


def _exit_message(returncode: int, stderr_tail: list[str], log_path: Path) -> str:
    how = describe_exit(returncode)
    tail = [shown for shown in map(_rendered, stderr_tail) if shown.strip()]
    if not tail:
        return f"the command {how} and wrote nothing to stderr (full output in {log_path})"
    quoted = "\n".join(
        f"  | {line}"
        if len(line) <= _QUOTED_LINE_CHARS
        else f"  | {line[:_QUOTED_LINE_CHARS]} ... ({len(line) - _QUOTED_LINE_CHARS} more chars)"
        for line in tail
    )
    return f"the command {how}; the last lines of stderr (full output in {log_path}):\n{quoted}"


def _rendered(line: str) -> str:
    """What a terminal shows of ``line``: its last non-blank piece between carriage returns.

    A progress bar redraws itself after ``\\r`` without a newline, so the line printed after
    it (the metric's JSON, or a traceback) arrives glued to every earlier redraw.
    """
    pieces = [piece for piece in line.split("\r") if piece.strip()]
    return pieces[-1] if pieces else ""


