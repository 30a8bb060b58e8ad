"""Worker output copied, whole lines at a time, to the driver's ``sys.stdout``/``sys.stderr``.

A worker process inherits the driver's file descriptors, so its prints reach the terminal
without passing through the driver's Python streams. Where the driver has replaced those
streams, that bypasses the replacement: ``gpbo run``'s live status line (the worker's lines were
appended to it, and each redraw left a stale copy in the scrollback), a notebook's cell output
(the lines went to the kernel's log instead), a test's capture. :class:`OutputRelay` gives each
such worker stream a pipe and copies what arrives to the driver's stream of the same name,
looked up at each write, so that the replacement in place at the time gets it.

Lines are copied whole, so two workers' lines are not cut into each other; a line not yet ended
is held, but only its text after the last carriage return (what a terminal would show of a
progress bar redrawn with ``\\r``). :meth:`OutputRelay.drain` copies what a worker wrote so far,
the line it left open included; the executor calls it when a trial ends, so that its output
comes before the line that reports it.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import sys
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field

__all__ = ["OutputRelay", "streams_to_relay"]

_CHUNK = 65536
#: Seconds the relay thread waits for output before it looks for new sources again.
_SELECT_TIMEOUT_S = 0.2


def streams_to_relay() -> tuple[str, ...]:
    """The driver's standard streams that something replaced (``"stdout"``, ``"stderr"``).

    A worker's output on the other ones goes to the inherited file descriptor as before, which
    keeps a terminal a terminal for it (progress bars, colours).
    """
    return tuple(
        name
        for name in ("stdout", "stderr")
        if getattr(sys, name) is not getattr(sys, f"__{name}__")
    )


@dataclass(eq=False)
class _Source:
    owner: Hashable
    stream: str  # "stdout" or "stderr": where in the driver its lines go
    fd: int
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    pending: str = ""  # text after the last line end


class OutputRelay:
    """Copies the output of worker processes to the driver's streams (see the module)."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._sources: dict[int, _Source] = {}
        # held while reading a source and writing its lines: the relay thread and a drain()
        # from the executor read the same pipes
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self, owner: Hashable, stream: str) -> int:
        """A new pipe whose output goes to the driver's ``stream``; returns its write end.

        The caller hands the write end to the worker and closes its own copy once the worker
        holds it. ``owner`` names the worker in :meth:`drain` and :meth:`discard`.
        """
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        with self._lock:
            source = _Source(owner, stream, read_fd)
            self._sources[read_fd] = source
            self._selector.register(read_fd, selectors.EVENT_READ, source)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="gpbo-worker-output", daemon=True
                )
                self._thread.start()
        return write_fd

    def drain(self, owner: Hashable) -> None:
        """Copy everything ``owner``'s pipes hold now, ending a line left open."""
        with self._lock:
            for source in [s for s in self._sources.values() if s.owner == owner]:
                self._read(source)
                self._flush_pending(source)

    def discard(self, owner: Hashable) -> None:
        """Copy what ``owner``'s pipes hold and close them (the worker is gone)."""
        with self._lock:
            for source in [s for s in self._sources.values() if s.owner == owner]:
                self._read(source)
                self._flush_pending(source)
                self._forget(source)

    def close(self) -> None:
        """Copy what every pipe holds, close them all and stop the relay thread."""
        self._closed.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2 * _SELECT_TIMEOUT_S + 1.0)
        with self._lock:
            for source in list(self._sources.values()):
                self._read(source)
                self._flush_pending(source)
                self._forget(source)
            with contextlib.suppress(Exception):
                self._selector.close()

    # -- the relay thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                ready = self._selector.select(timeout=_SELECT_TIMEOUT_S)
            except (OSError, ValueError, KeyError):
                # a source closed by discard() while select() waited on it; the next round
                # has the current set
                if self._closed.wait(0.01):
                    return
                continue
            with self._lock:
                for key, _ in ready:
                    source = key.data
                    if self._sources.get(source.fd) is source:
                        self._read(source)

    # -- under the lock -----------------------------------------------------------------------

    def _read(self, source: _Source) -> None:
        """Read what ``source`` holds now; write its whole lines; at its end, the rest too."""
        while True:
            try:
                data = os.read(source.fd, _CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # every writer closed it
                self._flush_pending(source)
                self._forget(source)
                return
            text = source.pending + source.decoder.decode(data)
            end = text.rfind("\n") + 1
            if end:
                self._write(source.stream, text[:end])
            source.pending = _visible_tail(text[end:])

    def _flush_pending(self, source: _Source) -> None:
        text = source.pending + source.decoder.decode(b"", final=True)
        source.pending = ""
        if text:
            self._write(source.stream, text + "\n")

    def _forget(self, source: _Source) -> None:
        if self._sources.pop(source.fd, None) is None:
            return
        with contextlib.suppress(Exception):
            self._selector.unregister(source.fd)
        with contextlib.suppress(OSError):
            os.close(source.fd)

    @staticmethod
    def _write(stream: str, text: str) -> None:
        target = getattr(sys, stream)
        try:
            target.write(text)
            target.flush()
        except Exception:  # a closed pipe or a full disk must not end the relay
            pass


def _visible_tail(text: str) -> str:
    """What a terminal would show of an unfinished line: the text after its last ``\\r``
    (a progress bar redrawn in place would otherwise be held whole, for hours)."""
    cut = text.rfind("\r", 0, len(text) - 1)  # a final "\r" may be half of "\r\n"
    return text[cut + 1 :] if cut >= 0 else text
