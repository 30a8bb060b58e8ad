"""The journal: an append-only JSON-lines file that makes a study durable and resumable.

This module knows the file format and its low-level operations only; it never sees a
:class:`~gpbo.trial.Trial` object or a tensor, just JSON-ready dicts.

File format (UTF-8, one JSON object per line, each line ended by ``"\\n"``):

* Line 1, the header::

    {"format": "gpbo-journal", "version": 1, "space": {...}, "direction": "minimize", ...}

  ``format`` and ``version`` come first; the other keys are the study's (``space``,
  ``direction``, ``strategy``, ``seed``...). :func:`compare_headers` tells what differs
  between a stored header and a new call's.

* Every further line is one event, a JSON object with an ``"event"`` key:

  - ``{"event": "trial", "time": <unix time>, "trial": {...}}``, where ``trial`` is a full
    :meth:`gpbo.trial.Trial.to_dict`, written whenever a trial changes state (proposed or
    pending, running, finished, interrupted). The latest event for a trial number wins
    (:func:`fold_trials`).
  - ``{"event": "study", "time": <unix time>, ...}`` for study-level notes, such as
    parameter sets that were enqueued (``"kind": "enqueue"``) or a strategy other than the
    header's taken up on a resume (``"kind": "strategy"``).

  Readers ignore event kinds they do not know.

Durability: a line is written with one ``os.write`` on a descriptor opened with
``O_APPEND`` and fsynced before :meth:`Journal.append` returns. The newline is the commit
mark: a last line without one (a crash mid-write), or a last line of NULs or bytes that are
not UTF-8 (what a crash can leave in the file's last block), is *torn*.
:func:`read_journal` ignores a torn line and reports its size; :meth:`Journal.open` cuts it
off with a :class:`JournalRepairedWarning`, so the next append starts on a clean line and no
later record is lost. Anything else malformed is a
:class:`JournalError` naming the line.

Locking: one driver per journal. A sidecar ``<journal>.lock`` file is held with
``fcntl.flock`` (``msvcrt.locking`` on Windows) for the life of a :class:`Journal`; it
names the holder's pid and host. The operating system drops the lock when its holder dies,
so a killed driver never leaves a lock that blocks. A child forked from the driver (a
fork-based ``multiprocessing`` pool in an objective, say) closes its copy of the lock file at
once: ``flock`` holds until every descriptor of the file is closed, so an orphaned child
would otherwise keep the journal locked after the driver was killed.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import logging
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from gpbo.exceptions import GpboError, GpboWarning, warn_at_caller

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

__all__ = [
    "JOURNAL_FORMAT",
    "JOURNAL_VERSION",
    "Journal",
    "JournalContents",
    "JournalError",
    "JournalLockedError",
    "JournalMismatchError",
    "JournalRepairedWarning",
    "compare_headers",
    "fold_trials",
    "read_journal",
]

logger = logging.getLogger(__name__)

JOURNAL_FORMAT = "gpbo-journal"
JOURNAL_VERSION = 1

# Every header gpbo writes starts with these bytes (compact JSON, "format" first). A file
# holding nothing but a piece of them is a header torn by a crash right after creation.
_HEADER_PREFIX = b'{"format":"gpbo-journal","version":'
_RESERVED = ("format", "version")
_SHOWN_CHARS = 80
_O_BINARY = getattr(os, "O_BINARY", 0)
_WINDOWS_LOCK_OFFSET = 1 << 20  # locked byte on Windows, clear of the pid/host text


class JournalError(GpboError, ValueError):
    """A journal is malformed, does not match the call, or cannot take an event."""


class JournalMismatchError(JournalError):
    """A file is not this study's journal: another study's (its header differs from the
    call's), or not a gpbo journal at all. Unlike a damaged journal, it is not to be repaired
    but moved aside, or another path given.

    Attributes:
        keys: The header keys that differ (``"space"``, ``"seed"``...); empty where the file
            is no gpbo journal.
    """

    def __init__(self, message: str, *, keys: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.keys = tuple(keys)


class JournalLockedError(GpboError, RuntimeError):
    """A journal is held by another live gpbo driver."""


class JournalRepairedWarning(GpboWarning):
    """A torn last line (a crash mid-write) was cut off a journal."""


@dataclass(frozen=True)
class JournalContents:
    """What :func:`read_journal` found in a journal file.

    Attributes:
        header: The header object (line 1), ``format`` and ``version`` included.
        events: The event objects, in file order, up to the last complete line.
        torn_bytes: Size in bytes of a torn last line that was ignored; 0 if none.
        valid_size: Byte offset where the valid content ends (the file size if
            ``torn_bytes`` is 0).
    """

    header: dict[str, Any]
    events: list[dict[str, Any]]
    torn_bytes: int
    valid_size: int


def read_journal(path: str | os.PathLike[str]) -> JournalContents | None:
    """Read and check a journal without modifying it.

    Args:
        path: The journal file.

    Returns:
        The header and events, with the size of a torn last line that was ignored; or
        ``None`` when the file holds no complete header yet: it is empty or blank, or holds
        only the start of a gpbo header (a crash right after creation). Each counts as a new
        journal.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        JournalMismatchError: The file is not a gpbo journal.
        JournalError: The file was written by a newer gpbo, or has a malformed line other
            than the last one.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.strip():  # empty, or blank lines (`echo > journal.jsonl`): nothing to keep
        return None
    first_end = data.find(b"\n")
    if first_end < 0 and (data.startswith(_HEADER_PREFIX) or _HEADER_PREFIX.startswith(data)):
        return None
    if first_end < 0:
        raise JournalMismatchError(
            f"{path} is not a gpbo journal: it holds no complete line (starts with "
            f"{_shown(data)}); pass another journal path"
        )
    header = _parse_header(path, data[:first_end])

    events: list[dict[str, Any]] = []
    start = first_end + 1
    line_number = 1
    while start < len(data):
        line_number += 1
        end = data.find(b"\n", start)
        if end < 0:  # no newline: the write of this last line never finished
            break
        line = data[start:end]
        if line.strip():
            try:
                event = json.loads(line)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                if end + 1 == len(data) and _looks_like_crash_garbage(line):
                    # a crash can leave a block of NULs or junk after the last write, newline
                    # included; a readable line that is not JSON was edited, and is not cut
                    break
                reason = f"invalid JSON: {exc}"
                raise JournalError(_bad_line(path, line_number, line, reason)) from None
            if not isinstance(event, dict) or not isinstance(event.get("event"), str):
                raise JournalError(
                    _bad_line(path, line_number, line, 'not an object with an "event" key')
                )
            events.append(event)
        start = end + 1
    return JournalContents(
        header=header, events=events, torn_bytes=len(data) - start, valid_size=start
    )


def _parse_header(path: Path, line: bytes) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != JOURNAL_FORMAT:
        raise JournalMismatchError(
            f"{path} is not a gpbo journal: line 1 is not a header with "
            f'"format": "{JOURNAL_FORMAT}" (it starts with {_shown(line)}); pass another '
            "journal path"
        )
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise JournalError(
            f"{path} is not a valid gpbo journal: the header's version must be a positive "
            f"integer, got {version!r}"
        )
    if version > JOURNAL_VERSION:
        raise JournalError(
            f"{path} was written by a newer gpbo (journal format version {version}; this "
            f"gpbo reads up to version {JOURNAL_VERSION}); upgrade gpbo to resume it"
        )
    return header


def _shown(raw: bytes) -> str:
    text = raw[:_SHOWN_CHARS].decode("utf-8", errors="replace")
    return repr(text) + ("..." if len(raw) > _SHOWN_CHARS else "")


def _looks_like_crash_garbage(line: bytes) -> bool:
    """Whether a complete but invalid last line is what a crash leaves, not an edit."""
    if b"\x00" in line:
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _bad_line(path: Path, number: int, line: bytes, reason: str) -> str:
    return (
        f"{path}, line {number}: {reason}; the line starts with {_shown(line)}. The journal "
        "is damaged: remove or fix that line, or use another journal path"
    )


def compare_headers(
    stored: Mapping[str, Any],
    given: Mapping[str, Any],
    *,
    keys: Iterable[str] = ("space", "direction"),
) -> list[str]:
    """The differences between a journal's header and a new call's, in words.

    Values are compared as JSON sees them (a tuple equals a list), but ``True`` never
    equals ``1``. A ``space`` (a dict of parameter name to definition dict) is compared
    parameter by parameter; the order of parameters is not compared.

    Args:
        stored: The header read from the journal.
        given: The header of the new call.
        keys: The header keys to compare; others (e.g. ``strategy``, ``seed``) may change
            on resume, and the caller decides.

    Returns:
        One line per difference, e.g. ``"direction: journal has 'minimize', this call has
        'maximize'"``; empty when the headers match on ``keys``.
    """
    given = json.loads(json.dumps(dict(given)))  # tuples -> lists, as stored
    differences = []
    for key in keys:
        old, new = stored.get(key, _MISSING), given.get(key, _MISSING)
        if key == "space" and isinstance(old, dict) and isinstance(new, dict):
            differences.extend(_space_differences(old, new))
        elif not _same(old, new):
            differences.append(f"{key}: journal has {_show(old)}, this call has {_show(new)}")
    return differences


def _space_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines = []
    for name in old:
        if name not in new:
            lines.append(f"space: parameter {name!r} removed (journal has {_show(old[name])})")
        elif not _same(old[name], new[name]):
            a, b = old[name], new[name]
            if isinstance(a, dict) and isinstance(b, dict):
                fields = [f for f in a if f not in b or not _same(a[f], b[f])]
                fields += [f for f in b if f not in a]
                detail = "; ".join(
                    f"{f}: journal has {_show(a.get(f, _MISSING))}, "
                    f"this call has {_show(b.get(f, _MISSING))}"
                    for f in fields
                )
            else:
                detail = f"journal has {_show(a)}, this call has {_show(b)}"
            lines.append(f"space: parameter {name!r} changed ({detail})")
    lines.extend(
        f"space: parameter {name!r} added (this call has {_show(new[name])})"
        for name in new
        if name not in old
    )
    return lines


class _Missing:
    def __repr__(self) -> str:
        return "nothing"


_MISSING: Any = _Missing()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 2 * _SHOWN_CHARS else text[: 2 * _SHOWN_CHARS] + "..."


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def fold_trials(events: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """Replay ``"trial"`` events into the latest state of each trial.

    Args:
        events: Journal events, in file order. Events of other kinds are ignored.

    Returns:
        Trial number to the trial dict (:meth:`gpbo.trial.Trial.to_dict` form) of the last
        event for that number, in number order.

    Raises:
        JournalError: A ``"trial"`` event has no ``trial`` object with a ``number``.
    """
    latest: dict[int, dict[str, Any]] = {}
    for index, event in enumerate(events):
        if event.get("event") != "trial":
            continue
        trial = event.get("trial")
        if not isinstance(trial, dict) or not isinstance(trial.get("number"), int):
            raise JournalError(
                f"event {index} (from 0, after the header) is a trial event without a "
                f"trial object with an integer 'number': {_show(dict(event))}"
            )
        latest[trial["number"]] = trial
    return dict(sorted(latest.items()))


class Journal:
    """An open, locked, append-only journal. Make one with :meth:`Journal.open`.

    Appends are thread-safe. Use it as a context manager, or call :meth:`close`, to release
    the lock; if the process dies instead, the operating system releases it.
    """

    def __init__(self, path: Path, header: dict[str, Any], fd: int, lock: _Lock, size: int) -> None:
        self._path = path
        self._header = header
        self._fd: int | None = fd
        self._lock = lock
        self._size = size
        self._mutex = threading.Lock()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        header: Mapping[str, Any] | Callable[[JournalContents | None], Mapping[str, Any]],
        compare: Sequence[str] = ("space", "direction"),
    ) -> tuple[Journal, list[dict[str, Any]]]:
        """Open a journal for appending, creating it if needed, and return its events.

        Creates the parent folders and takes the lock. A missing or empty file (or one
        holding only a torn header) gets ``header`` written. An existing journal is read,
        its header compared with ``header`` on the keys in ``compare``, and a torn last
        line cut off with a :class:`JournalRepairedWarning`.

        Args:
            path: The journal file.
            header: The study's header (``space``, ``direction``, ``strategy``, ``seed``...),
                JSON-ready; ``format`` and ``version`` are added. Or a function of what the
                file holds (``None`` for a new journal) returning that header, called once
                under the lock: a caller that takes settings from a stored journal (its
                seed, say) reads the file once, and no other driver can change it between.
            compare: The header keys that must match an existing journal's.

        Returns:
            The open journal, and the events already in it (empty for a new journal).

        Raises:
            JournalLockedError: Another live driver holds the journal.
            JournalMismatchError: The file is not a gpbo journal, or its header differs
                from ``header`` (every difference is listed).
            JournalError: The file is damaged or written by a newer gpbo, or ``header`` is
                not JSON-ready.
        """
        path = Path(path)
        if not callable(header):
            full_header = _full_header(path, header)  # a bad header fails before the lock
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _Lock.acquire(path)
        fd = None
        try:
            contents = read_journal(path) if path.exists() else None
            if callable(header):
                full_header = _full_header(path, header(contents))
            if contents is not None:
                differences = compare_headers(contents.header, full_header, keys=compare)
                if differences:
                    raise JournalMismatchError(
                        f"{path} was written by a different study:\n  - "
                        + "\n  - ".join(differences)
                        + "\nuse another journal path, or call with the journal's settings",
                        keys=[key for key in compare
                              if compare_headers(contents.header, full_header, keys=[key])],
                    )
            created = not path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_BINARY, 0o644)
            if contents is None:
                dropped = os.fstat(fd).st_size
                if dropped:
                    blank = not path.read_bytes().strip()
                    os.ftruncate(fd, 0)
                    if not blank:
                        _warn_repaired(path, dropped, "a torn header")
                line = _encode(path, full_header, what="the header")
                _write_all(fd, line)
                os.fsync(fd)
                if created:
                    _fsync_dir(path.parent)
                logger.debug("created journal %s", path)
                journal = cls(path, full_header, fd, lock, len(line))
                return journal, []
            if contents.torn_bytes:
                os.ftruncate(fd, contents.valid_size)
                os.fsync(fd)
                _warn_repaired(path, contents.torn_bytes, "a torn last line")
            logger.debug("opened journal %s with %d events", path, len(contents.events))
            journal = cls(path, contents.header, fd, lock, contents.valid_size)
            return journal, contents.events
        except BaseException:
            if fd is not None:
                os.close(fd)
            lock.release()
            raise

    @property
    def path(self) -> Path:
        """The journal file."""
        return self._path

    @property
    def header(self) -> dict[str, Any]:
        """A copy of the header stored in the file (``format`` and ``version`` included)."""
        return copy.deepcopy(self._header)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._fd is None

    def append(self, event: Mapping[str, Any]) -> None:
        """Write one event as one line and fsync it before returning.

        Args:
            event: A JSON-ready object with a string ``"event"`` key (see the module
                docstring for the kinds). Floats must be finite.

        Raises:
            JournalError: The journal is closed, or ``event`` has no ``"event"`` key, holds
                NaN or infinity, or is not JSON-ready. Nothing is written then.
        """
        if not isinstance(event, Mapping) or not isinstance(event.get("event"), str):
            raise JournalError(
                f"cannot write to {self._path}: an event must be a dict with a string "
                f"'event' key, got {_show(event)}"
            )
        line = _encode(self._path, event, what=f"event {event['event']!r}")
        with self._mutex:
            if self._fd is None:
                raise JournalError(f"cannot write to {self._path}: the journal is closed")
            try:
                _write_all(self._fd, line)
                os.fsync(self._fd)
                self._size += len(line)
            except OSError as exc:
                # Cut off whatever part of the line got written, so the file stays valid.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                raise JournalError(f"cannot write to {self._path}: {exc}") from exc
            except BaseException:
                # A stop signal (KeyboardInterrupt) between any two of these steps: the size
                # must stay the file's, or a later failed write's cut would reach into this
                # line, recorded whole; a line written in part is cut off.
                self._recount(len(line))
                raise

    def _recount(self, line_length: int) -> None:
        """Bring ``_size`` back to the file's after an interrupted append of one line."""
        assert self._fd is not None
        with contextlib.suppress(OSError):
            size = os.fstat(self._fd).st_size
            if size == self._size + line_length:
                self._size = size  # written whole, not yet counted
            elif size != self._size:
                os.ftruncate(self._fd, self._size)

    def close(self) -> None:
        """Close the file and release the lock; closing twice does nothing."""
        with self._mutex:
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
        try:
            os.close(fd)
        finally:
            self._lock.release()
        logger.debug("closed journal %s", self._path)

    def __del__(self) -> None:
        # a Study dropped without close() (a notebook cell run again) must not keep its
        # journal locked against the next one in the same process
        with contextlib.suppress(Exception):
            if getattr(self, "_fd", None) is not None:
                self.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else "open"
        return f"Journal({str(self._path)!r}, {state})"


def _full_header(path: Path, header: Mapping[str, Any]) -> dict[str, Any]:
    for key, ours in (("format", JOURNAL_FORMAT), ("version", JOURNAL_VERSION)):
        if key in header and header[key] != ours:
            raise JournalError(
                f"cannot open {path}: header key {key!r} is gpbo's own ({ours!r}), "
                f"got {header[key]!r}; leave it out"
            )
    full = {"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION}
    full.update((k, v) for k, v in header.items() if k not in _RESERVED)
    return json.loads(_encode(path, full, what="the header"))


def _encode(path: Path, obj: Mapping[str, Any], *, what: str) -> bytes:
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        where = _non_finite(obj, "")
        raise JournalError(
            f"cannot write {what} to {path}: {where or 'a value'} is not a finite number "
            "(NaN or infinity); journal values must be finite or None"
        ) from exc
    except TypeError as exc:
        raise JournalError(
            f"cannot write {what} to {path}: {exc}; convert values to plain Python "
            "str, int, float, bool, None, list or dict first"
        ) from exc
    return (text + "\n").encode("utf-8")


def _non_finite(obj: Any, where: str) -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "the value"
    if isinstance(obj, Mapping):
        items: Iterable[tuple[Any, Any]] = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        found = _non_finite(value, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _write_all(fd: int, data: bytes) -> None:
    # One write on an O_APPEND descriptor; a regular file takes it whole unless the disk
    # is full or the process is interrupted, so the loop almost never turns twice.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable (POSIX; a no-op where unsupported)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _warn_repaired(path: Path, dropped: int, what: str) -> None:
    message = (
        f"dropped {dropped} bytes of {what} from {path} (a crash during a write); the "
        "journal goes on from the last complete line"
    )
    warn_at_caller(message, JournalRepairedWarning)


def is_journal_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file that starts as every gpbo journal does."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(_HEADER_PREFIX)) == _HEADER_PREFIX
    except OSError:
        return False


def lock_path(journal_path: str | os.PathLike[str]) -> Path:
    """The lock file of a journal: ``<journal>.lock`` beside the file the path leads to.

    A symlink is followed first, so every path to one journal file meets the same lock (two
    drivers, one through a link, each took a lock of its own and both ran the study).
    """
    real = Path(journal_path).resolve()
    return real.with_name(real.name + ".lock")


class _Lock:
    """An exclusive lock on ``<journal>.lock``, dropped by the OS if its holder dies."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        _forget_in_forked_children(self)

    @classmethod
    def acquire(cls, journal_path: Path) -> _Lock:
        path = lock_path(journal_path)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | _O_BINARY, 0o644)
            try:
                locked = _try_lock(fd)
                for _ in range(_LOCK_RETRIES):
                    if locked:
                        break
                    # `gpbo show` and `--fresh` probe the lock by taking it for microseconds
                    time.sleep(0.02)
                    locked = _try_lock(fd)
                if not locked:
                    holder = _read_holder(fd)
                    if holder == f"pid {os.getpid()} on host {socket.gethostname()}":
                        raise JournalLockedError(
                            f"{journal_path} is already open in this process (a Study that "
                            "was not closed); call close() on the earlier Study, or use "
                            "`with gpbo.Study(...) as study:`, then open it again"
                        )
                    raise JournalLockedError(
                        f"{journal_path} is in use by another gpbo driver ({holder}); stop "
                        "it or wait for it to finish, or use another journal path"
                    )
                # A holder that was closing may have unlinked the file we opened before we
                # locked it; our lock is only good on the file that is at the path now.
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(path))
                except FileNotFoundError:
                    same = False
                if same:
                    info = f"pid {os.getpid()} on host {socket.gethostname()}\n"
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, info.encode("utf-8"))
                    return cls(path, fd)
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        _HELD.discard(self)
        fd, self._fd = self._fd, None
        try:
            path_fd_match = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except OSError:
            path_fd_match = False
        if path_fd_match:
            # Unlink while still holding the lock (see acquire). Windows cannot remove an
            # open file: the lock file stays there, harmless.
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(fd)  # closing drops the lock


# The locks this process holds, for a forked child to let go of (see the module docstring).
_HELD: weakref.WeakSet[_Lock] = weakref.WeakSet()
_FORK_HOOK_REGISTERED = False


def _forget_in_forked_children(lock: _Lock) -> None:
    global _FORK_HOOK_REGISTERED
    # Registered with the first lock, not at import: importing gpbo changes nothing.
    if not _FORK_HOOK_REGISTERED and hasattr(os, "register_at_fork"):  # POSIX
        os.register_at_fork(after_in_child=_drop_locks_in_child)
        _FORK_HOOK_REGISTERED = True
    _HELD.add(lock)


def _drop_locks_in_child() -> None:
    # Only this copy of each descriptor closes: the parent keeps its lock. Forgetting the
    # descriptor also keeps the child from unlinking the parent's lock file in release().
    for lock in list(_HELD):
        fd, lock._fd = lock._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
    _HELD.clear()


#: Further tries, 20 ms apart, before a held lock is taken to mean another driver.
_LOCK_RETRIES = 5


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        return True
    # Windows: os.kill(pid, 0) would send CTRL_C_EVENT rather than probe a pid, so rely on
    # a byte-range lock, which Windows also drops when its holder dies.
    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)  # pragma: no cover
    try:  # pragma: no cover
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # pragma: no cover
        return False
    return True  # pragma: no cover


def _read_holder(fd: int) -> str:
    # The holder writes its line just after locking; retry briefly in case we look between.
    for _ in range(5):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 512).decode("utf-8", errors="replace").strip()
        if text:
            return text
        time.sleep(0.02)
    return "pid unknown"
