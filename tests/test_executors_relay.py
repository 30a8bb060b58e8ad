"""Tests for gpbo/executors/_relay.py: worker output copied to the driver's streams."""

from __future__ import annotations

import io
import os
import sys
import time

import pytest

from gpbo.executors._relay import OutputRelay, _visible_tail, streams_to_relay


def replace_streams(monkeypatch: pytest.MonkeyPatch) -> tuple[io.StringIO, io.StringIO]:
    """In the test itself: pytest puts its own capture back after a fixture's setup."""
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    return out, err


def eventually(condition, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_only_replaced_streams_are_relayed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", sys.__stdout__)
    monkeypatch.setattr(sys, "stderr", sys.__stderr__)
    assert streams_to_relay() == ()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert streams_to_relay() == ("stderr",)


def test_whole_lines_of_two_writers_are_not_cut_into_each_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, err = replace_streams(monkeypatch)
    relay = OutputRelay()
    try:
        a, b, c = relay.open("a", "stdout"), relay.open("b", "stdout"), relay.open("a", "stderr")
        os.write(a, b"epoch 1 of a ")
        os.write(b, b"epoch 1 of b\nepoch 2 ")
        os.write(c, "caf\xc3".encode("latin-1"))  # a character cut in two by the pipe
        assert eventually(lambda: out.getvalue() == "epoch 1 of b\n")
        os.write(a, b"done\n")
        os.write(c, b"\xa9\n")
        assert eventually(lambda: out.getvalue() == "epoch 1 of b\nepoch 1 of a done\n")
        assert eventually(lambda: err.getvalue() == "caf\u00e9\n")
        relay.drain("b")  # the trial of b ended: its open line is ended for it
        assert out.getvalue().endswith("epoch 2 \n")
        for fd in (a, b, c):
            os.close(fd)
    finally:
        relay.close()


def test_an_open_line_keeps_only_what_follows_its_last_carriage_return(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, _ = replace_streams(monkeypatch)
    relay = OutputRelay()
    try:
        fd = relay.open("w", "stdout")
        for percent in range(0, 101):
            os.write(fd, f"\rprogress {percent}%".encode())
        os.write(fd, b"\r")  # maybe the start of "\r\n"
        relay.drain("w")
        assert out.getvalue() == "progress 100%\r\n"
        os.close(fd)
    finally:
        relay.close()
    assert _visible_tail("a\rb\rc") == "c"
    assert _visible_tail("abc\r") == "abc\r"
    assert _visible_tail("") == ""


def test_a_closed_writer_ends_its_line_and_its_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = replace_streams(monkeypatch)
    relay = OutputRelay()
    try:
        fd = relay.open("w", "stdout")
        os.write(fd, b"last words")
        os.close(fd)
        assert eventually(lambda: out.getvalue() == "last words\n")
        assert eventually(lambda: not relay._sources)  # read end closed too
    finally:
        relay.close()


def test_discard_copies_what_is_left_and_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = replace_streams(monkeypatch)
    relay = OutputRelay()
    fd = relay.open("w", "stdout")
    (read_fd,) = relay._sources
    os.write(fd, b"a\nb")
    relay.discard("w")
    assert out.getvalue() == "a\nb\n"
    assert not relay._sources
    with pytest.raises(OSError):
        os.fstat(read_fd)  # closed
    os.close(fd)
    relay.close()


def test_a_failing_stream_does_not_stop_the_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(sys, "stdout", Full())
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    relay = OutputRelay()
    try:
        out_fd, err_fd = relay.open("w", "stdout"), relay.open("w", "stderr")
        os.write(out_fd, b"lost\n")
        os.write(err_fd, b"kept\n")
        assert eventually(lambda: err.getvalue() == "kept\n")
        for fd in (out_fd, err_fd):
            os.close(fd)
    finally:
        relay.close()
