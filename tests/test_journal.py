"""Tests of the journal file format, its repair, its lock and its fsync discipline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from gpbo.exceptions import GpboError, GpboWarning
from gpbo.journal import (
    JOURNAL_FORMAT,
    JOURNAL_VERSION,
    Journal,
    JournalError,
    JournalLockedError,
    JournalRepairedWarning,
    compare_headers,
    fold_trials,
    lock_path,
    read_journal,
)
from gpbo.trial import Trial

SPACE = {
    "lr": {"type": "real", "low": 1e-4, "high": 1e-1, "log": True},
    "layers": {"type": "int", "low": 1, "high": 4, "log": False},
    "act": {"type": "choice", "values": ["relu", "tanh"]},
}
HEADER = {"space": SPACE, "direction": "minimize", "strategy": "gp", "seed": 0}


def trial_event(number: int, status: str = "running", value: float | None = None) -> dict:
    trial = Trial(number=number, params={"lr": 0.01, "layers": 2, "act": "relu"})
    trial.status = status  # type: ignore[assignment]
    trial.value = value
    return {"event": "trial", "time": 1700000000.0 + number, "trial": trial.to_dict()}


def make_journal(path: Path, events: list[dict]) -> None:
    journal, _ = Journal.open(path, header=HEADER)
    with journal:
        for event in events:
            journal.append(event)


EVENTS = [trial_event(0), trial_event(0, "complete", 0.5), {"event": "study", "note": "x"}]


def test_a_header_function_sees_the_stored_journal_once_under_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    seen = []

    def header_for(stored):
        seen.append(stored)
        assert lock_path(path).exists()  # called under the lock
        return HEADER if stored is None else {**HEADER, "seed": stored.header["seed"]}

    journal, events = Journal.open(path, header=header_for)
    journal.append(EVENTS[0])
    journal.close()
    assert seen == [None] and events == []

    journal, events = Journal.open(path, header=header_for)
    journal.close()
    assert len(seen) == 2 and seen[1].events == events == [EVENTS[0]]

    with pytest.raises(JournalError, match="direction"):  # compared as a plain header is
        Journal.open(path, header=lambda stored: {**HEADER, "direction": "maximize"})
    journal, _ = Journal.open(path, header=HEADER)  # and the lock was released
    journal.close()


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run" / "journal.jsonl"  # parent folders are created
    make_journal(path, EVENTS)

    contents = read_journal(path)
    assert contents is not None
    assert contents.header == {"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION, **HEADER}
    assert list(contents.header)[:2] == ["format", "version"]
    assert contents.events == EVENTS
    assert contents.torn_bytes == 0
    assert contents.valid_size == path.stat().st_size
    raw = path.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1 + len(EVENTS)

    journal, events = Journal.open(path, header=HEADER)
    with journal:
        assert events == EVENTS
        assert journal.path == path
        assert journal.header == contents.header
        assert Trial.from_dict(events[1]["trial"]).value == 0.5
    assert journal.closed


def test_errors_share_the_gpbo_roots() -> None:
    assert issubclass(JournalError, GpboError) and issubclass(JournalError, ValueError)
    assert issubclass(JournalLockedError, GpboError)
    assert issubclass(JournalLockedError, RuntimeError)
    assert issubclass(JournalRepairedWarning, GpboWarning)


def test_header_mismatch_lists_every_difference(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    make_journal(path, EVENTS)
    before = path.read_bytes()
    space = {k: dict(v) for k, v in SPACE.items() if k != "act"}  # removed: act
    space["lr"]["high"] = 1.0  # changed
    space["dropout"] = {"type": "real", "low": 0.0, "high": 0.5, "log": False}  # added
    other = {**HEADER, "space": space, "direction": "maximize", "seed": 7, "strategy": "random"}

    with pytest.raises(JournalError) as info:
        Journal.open(path, header=other)
    message = str(info.value)
    assert str(path) in message
    assert "direction: journal has 'minimize', this call has 'maximize'" in message
    assert "parameter 'act' removed" in message
    assert "parameter 'dropout' added" in message
    assert "parameter 'lr' changed (high: journal has 0.1, this call has 1.0)" in message
    assert "seed" not in message and "strategy" not in message  # not compared by default
    assert path.read_bytes() == before
    # The failed open released the lock.
    journal, _ = Journal.open(path, header=HEADER)
    journal.close()


def test_compare_headers() -> None:
    stored = json.loads(json.dumps(HEADER))
    assert compare_headers(stored, HEADER) == []
    # Tuples compare equal to the lists JSON stores; parameter order is not compared.
    given = {**HEADER, "space": dict(reversed(SPACE.items()))}
    given["space"]["act"] = {"type": "choice", "values": ("relu", "tanh")}
    assert compare_headers(stored, given) == []
    # True is not 1, even though Python says so.
    flag = {"space": {"x": {"type": "choice", "values": [True]}}}
    one = {"space": {"x": {"type": "choice", "values": [1]}}}
    assert compare_headers(flag, one, keys=("space",)) != []
    # Only the keys asked for; a key missing on one side is a difference.
    assert compare_headers(stored, {**HEADER, "seed": 1}) == []
    assert compare_headers(stored, {**HEADER, "seed": 1}, keys=("seed",)) == [
        "seed: journal has 0, this call has 1"
    ]
    no_seed = {k: v for k, v in HEADER.items() if k != "seed"}
    assert compare_headers(stored, no_seed, keys=("seed",)) == [
        "seed: journal has 0, this call has nothing"
    ]


def test_torn_last_line_is_reported_then_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    make_journal(path, EVENTS)
    valid_size = path.stat().st_size
    torn = b'{"event":"trial","time":17000'
    with path.open("ab") as f:
        f.write(torn)

    contents = read_journal(path)  # reads, reports, and leaves the file alone
    assert contents is not None
    assert contents.events == EVENTS
    assert contents.torn_bytes == len(torn)
    assert contents.valid_size == valid_size
    assert path.stat().st_size == valid_size + len(torn)

    with pytest.warns(JournalRepairedWarning, match=f"dropped {len(torn)} bytes") as record:
        journal, events = Journal.open(path, header=HEADER)
    assert str(path) in str(record[0].message)
    journal.close()
    assert events == EVENTS
    assert path.stat().st_size == valid_size


def test_next_records_after_a_torn_line_survive(tmp_path: Path) -> None:
    # Optuna's JournalFileBackend glues the next record onto a torn line and loses it.
    path = tmp_path / "j.jsonl"
    make_journal(path, EVENTS)
    half = (json.dumps(trial_event(1)) + "\n").encode()
    with path.open("ab") as f:
        f.write(half[: len(half) // 2])

    with pytest.warns(JournalRepairedWarning):
        journal, _ = Journal.open(path, header=HEADER)
    new = [trial_event(1), trial_event(1, "complete", 0.25)]
    with journal:
        for event in new:
            journal.append(event)

    contents = read_journal(path)
    assert contents is not None
    assert contents.events == [*EVENTS, *new]
    assert contents.torn_bytes == 0
    for line in path.read_bytes().splitlines():
        json.loads(line)


def test_invalid_complete_last_line_counts_as_torn(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    make_journal(path, EVENTS)
    with path.open("ab") as f:
        f.write(b'{"event": "tri\x00\x00\n')
    with pytest.warns(JournalRepairedWarning, match="dropped 17 bytes"):
        journal, events = Journal.open(path, header=HEADER)
    journal.close()
    assert events == EVENTS


def test_an_edited_last_line_that_is_not_json_is_an_error_not_cut(tmp_path: Path) -> None:
    # a typo in a hand edit: cutting it would blame a crash and run the trial again
    path = tmp_path / "j.jsonl"
    make_journal(path, EVENTS)
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b'{"event": "trial", "status": "complete",,}\n')
    with pytest.raises(JournalError, match=r"line 5: invalid JSON.*remove or fix that line"):
        Journal.open(path, header=HEADER)
    assert path.stat().st_size > size  # left as it was
    os.truncate(path, size)  # the user removes the line: the lock was released
    journal, events = Journal.open(path, header=HEADER)
    journal.close()
    assert events == EVENTS


def test_every_cut_point_is_repaired(tmp_path: Path) -> None:
    # A crash can cut the file anywhere: each prefix opens (warning at most), keeps exactly
    # its complete lines, and takes the next append cleanly.
    source = tmp_path / "source.jsonl"
    make_journal(source, EVENTS)
    data = source.read_bytes()
    header_end = data.index(b"\n") + 1
    extra = {"event": "study", "note": "after the crash"}
    path = tmp_path / "j.jsonl"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", JournalRepairedWarning)
            journal, events = Journal.open(path, header=HEADER)
        with journal:
            journal.append(extra)
        complete = data[:cut].count(b"\n") - 1
        expected = EVENTS[: max(complete, 0)]
        assert events == expected, cut
        contents = read_journal(path)
        assert contents is not None
        assert contents.events == [*expected, extra], cut
        assert contents.torn_bytes == 0
        if cut < header_end:
            assert path.read_bytes().startswith(data[:header_end])


def test_malformed_middle_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    make_journal(path, EVENTS)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b"garbage that is not json\n"
    path.write_bytes(b"".join(lines))
    for call in (lambda: read_journal(path), lambda: Journal.open(path, header=HEADER)):
        with pytest.raises(JournalError, match="line 3") as info:
            call()
        assert str(path) in str(info.value)
        assert "garbage that is not json" in str(info.value)

    lines[2] = b'{"no_event_key": 1}\n'
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalError, match=r'line 3.*"event" key'):
        read_journal(path)


@pytest.mark.parametrize("content", [b"", b"\n", b" \n\n"])
def test_empty_or_blank_file_is_a_new_journal(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(content)  # `touch`, or `echo > j.jsonl`
    assert read_journal(path) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        journal, events = Journal.open(path, header=HEADER)
    journal.close()
    assert events == []
    contents = read_journal(path)
    assert contents is not None and contents.header["direction"] == "minimize"


def test_torn_header_is_a_new_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"format":"gpbo-journal","version":1,"spa')
    assert read_journal(path) is None
    with pytest.warns(JournalRepairedWarning, match="dropped 41 bytes of a torn header"):
        journal, events = Journal.open(path, header=HEADER)
    journal.close()
    assert events == []
    assert read_journal(path) is not None


@pytest.mark.parametrize(
    "content",
    [b"hello", b"a,b,c\n1,2,3\n", b'{"format": "other"}\n', b'{"format":"gpbo-journal"}\n'],
)
def test_other_files_are_not_journals(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(JournalError, match=r"not a (valid )?gpbo journal") as info:
        Journal.open(path, header=HEADER)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content


def test_newer_version_asks_to_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    header = {"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION + 1, **HEADER}
    path.write_text(json.dumps(header) + "\n")
    with pytest.raises(JournalError, match="upgrade gpbo"):
        read_journal(path)


def test_second_open_in_the_same_process_is_locked_out(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    first, _ = Journal.open(path, header=HEADER)
    with pytest.raises(JournalLockedError) as info:
        Journal.open(path, header=HEADER)
    message = str(info.value)
    assert str(path) in message
    assert "already open in this process" in message and "close()" in message
    first.append(trial_event(0))  # the holder is unaffected
    first.close()
    assert not Path(f"{path}.lock").exists()
    second, events = Journal.open(path, header=HEADER)
    second.close()
    assert events == [trial_event(0)]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_a_journal_reached_through_a_symlink_meets_the_same_lock(tmp_path: Path) -> None:
    real = tmp_path / "runs" / "j.jsonl"
    real.parent.mkdir()
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)  # dangling until the journal is created
    first, _ = Journal.open(link, header=HEADER)
    assert lock_path(link) == lock_path(real) == real.with_name("j.jsonl.lock").resolve()
    with pytest.raises(JournalLockedError, match="already open in this process"):
        Journal.open(real, header=HEADER)
    first.close()


def test_a_journal_dropped_without_close_releases_its_lock(tmp_path: Path) -> None:
    import gc

    import gpbo

    path = tmp_path / "j.jsonl"
    study = gpbo.Study({"x": gpbo.Real(0, 1)}, seed=0, journal=path)
    study.tell(study.ask(1)[0], 1.0)
    del study
    gc.collect()
    assert not Path(f"{path}.lock").exists()
    with gpbo.Study({"x": gpbo.Real(0, 1)}, seed=0, journal=path) as again:
        assert [t.value for t in again.trials] == [1.0]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_lock_of_a_killed_driver_does_not_block(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    script = textwrap.dedent(
        f"""
        import os, signal
        from gpbo.journal import Journal
        journal, _ = Journal.open({str(path)!r}, header={HEADER!r})
        journal.append({{"event": "study", "note": "before the kill"}})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert Path(f"{path}.lock").exists()  # left behind, not cleaned up
    journal, events = Journal.open(path, header=HEADER)
    journal.close()
    assert events == [{"event": "study", "note": "before the kill"}]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_lock_of_a_killed_driver_does_not_outlive_it_in_a_forked_child(tmp_path: Path) -> None:
    # An objective run in the driver (serial executor) may fork, e.g. a multiprocessing pool:
    # orphaned by the kill, such a child must not keep the journal locked.
    path = tmp_path / "j.jsonl"
    child_file = tmp_path / "child.txt"
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from gpbo.journal import Journal
        journal, _ = Journal.open({str(path)!r}, header={HEADER!r})
        child = os.fork()
        if child == 0:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)  # let the test's subprocess.run see the output end
            os.dup2(null, 2)
            time.sleep(60)
            os._exit(0)
        with open({str(child_file)!r}, "w") as f:
            f.write(str(child))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, capture_output=True)
    child = int(child_file.read_text())
    try:
        assert done.returncode == -signal.SIGKILL, done.stderr.decode()
        journal, events = Journal.open(path, header=HEADER)
        journal.close()
        assert events == []
    finally:
        os.kill(child, signal.SIGKILL)


def test_every_append_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    journal, _ = Journal.open(tmp_path / "j.jsonl", header=HEADER)
    assert calls  # the header too
    with journal:
        for number in range(5):
            before = len(calls)
            journal.append(trial_event(number))
            assert len(calls) == before + 1


def test_each_append_is_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal, _ = Journal.open(tmp_path / "j.jsonl", header=HEADER)
    writes: list[bytes] = []
    real_write = os.write

    def recording_write(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", recording_write)
    with journal:
        journal.append(trial_event(3))
    assert len(writes) == 1
    assert writes[0].endswith(b"\n") and json.loads(writes[0]) == trial_event(3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_refused(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "j.jsonl"
    journal, _ = Journal.open(path, header=HEADER)
    size = path.stat().st_size
    with journal:
        with pytest.raises(JournalError, match=r"trial\.value is not a finite number"):
            journal.append(trial_event(0, "complete", bad))
        with pytest.raises(JournalError, match="not JSON serializable"):
            journal.append({"event": "study", "what": object()})
        with pytest.raises(JournalError, match="'event' key"):
            journal.append({"trial": {}})
    assert path.stat().st_size == size
    with pytest.raises(JournalError, match="not a finite number"):
        Journal.open(tmp_path / "other.jsonl", header={**HEADER, "seed": bad})


def test_append_after_close_is_an_error(tmp_path: Path) -> None:
    journal, _ = Journal.open(tmp_path / "j.jsonl", header=HEADER)
    journal.close()
    journal.close()  # twice is fine
    with pytest.raises(JournalError, match="closed"):
        journal.append(trial_event(0))


def test_fold_trials_keeps_the_latest_event_per_number() -> None:
    events = [
        trial_event(2),
        {"event": "study", "enqueued": [{"lr": 0.1}]},
        trial_event(0),
        trial_event(1),
        trial_event(0, "complete", 1.5),
        {"event": "note", "text": "ignored"},
        trial_event(2, "interrupted"),
    ]
    folded = fold_trials(events)
    assert list(folded) == [0, 1, 2]
    assert folded[0]["status"] == "complete" and folded[0]["value"] == 1.5
    assert folded[1]["status"] == "running"
    assert folded[2]["status"] == "interrupted"
    assert fold_trials([]) == {}
    with pytest.raises(JournalError, match="event 0"):
        fold_trials([{"event": "trial"}])


def test_a_stop_signal_inside_an_append_keeps_the_size_true_for_a_later_failed_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl+C landing in fsync, after the line was written: the size was not advanced, and a
    # later write's cleanup (ENOSPC) cut the file back into that line, recorded whole
    import errno

    import gpbo.journal as journal_module

    path = tmp_path / "j.jsonl"
    journal, _ = Journal.open(path, header=HEADER)
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync_then_ctrl_c(fd: int) -> None:
        real_fsync(fd)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    with journal:
        monkeypatch.setattr(journal_module.os, "fsync", fsync_then_ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            journal.append({"event": "note", "n": 1})
        journal.append({"event": "note", "n": 2})

        def disk_full(fd: int, data: bytes) -> None:
            os.write(fd, data[:7])  # a part of the line, then the error
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(journal_module, "_write_all", disk_full)
        with pytest.raises(JournalError, match="No space left"):
            journal.append({"event": "note", "n": 3})
    contents = read_journal(path)
    assert contents is not None and contents.torn_bytes == 0
    assert [e["n"] for e in contents.events] == [1, 2]
