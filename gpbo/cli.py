"""The ``gpbo`` command: run a study from a YAML config, and look at its results.

::

    gpbo run configs/mlp_digits.yaml [--set n_trials=48 ...] [--fresh]
    gpbo show runs/mlp_digits            # the trials as a table, and the best one
    gpbo best runs/mlp_digits [--json]   # the best parameters
    gpbo plot runs/mlp_digits -o mlp.png # best so far against trials and time; value vs params
    gpbo export runs/mlp_digits --csv trials.csv

``RUN`` is a run directory (holding ``journal.jsonl``), a journal file, or a config (the run
it writes, from the current directory). ``python -m gpbo``
is the same command. Exit status: 0 done, 1 the study failed or completed no trial, 2 a
usage or config error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shlex
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gpbo._optional import install_hint
from gpbo.exceptions import GpboError, GpboWarning
from gpbo.report import render_study, summarize, write_csv

__all__ = ["main"]

logger = logging.getLogger("gpbo.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
RUN_HELP = "a run directory, a journal file, or a config (the run it writes)"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout."""


def _parser() -> argparse.ArgumentParser:
    from gpbo import __version__

    parser = argparse.ArgumentParser(
        prog="gpbo",
        description="Batch Bayesian optimization of PyTorch hyperparameters, from a YAML config.",
        formatter_class=_Formatter,
        epilog=(
            "examples:\n"
            "  gpbo run configs/mlp_digits.yaml --set n_trials=48\n"
            "  gpbo show runs/mlp_digits\n"
            "  gpbo plot runs/mlp_digits -o mlp.png\n\n"
            "`gpbo COMMAND --help` says more about each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"gpbo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run",
        help="run (or resume) the study a config describes",
        description=(
            "Run the study CONFIG describes, or resume it: the run directory's journal keeps\n"
            "every trial, so running the same command again goes on where it stopped.\n\n"
            "The run directory (run_dir: in the config, default runs/<config name>) gets\n"
            "  journal.jsonl        every trial (gpbo show/best/plot/export read it)\n"
            "  config.yaml          the config with the --set overrides applied\n"
            "  trials/<number>.log  a command trial's stdout and stderr\n"
            "  journal.trials/      each trial's own directory (gpbo.current_trial().dir)\n"
            "  summary.json, summary.txt   the best trial and counts, at the end"
        ),
        formatter_class=_Formatter,
        epilog=(
            "examples:\n"
            "  gpbo run configs/mlp_digits.yaml\n"
            "  gpbo run configs/mlp_digits.yaml --set n_trials=48 --set batch_size=8\n"
            "  gpbo run configs/quadratic.yaml --set strategy=random "
            "--set run_dir=runs/quadratic-random\n"
            "  gpbo run configs/mlp_digits.yaml --fresh   # start over; the old run is kept"
        ),
    )
    run.add_argument("config", metavar="CONFIG", help="the YAML config file")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (the value is read as YAML; dotted keys reach into "
        "mappings, e.g. strategy.levels=3); repeatable",
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="start over: move an existing run directory aside to <run_dir>.old-<time> "
        "(never deleted)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument(
        "--plain",
        action="store_true",
        help="plain progress lines even on a terminal (no redrawn status line)",
    )
    run.set_defaults(handler=_cmd_run)

    show = commands.add_parser(
        "show",
        help="print the trials as a table and the best trial",
        description="Print a run's trials (number, status, value, parameters, device, "
        "duration), the best trial, and why failed trials failed. Works while the run is going.",
        formatter_class=_Formatter,
        epilog="examples:\n  gpbo show runs/mlp_digits\n  gpbo show runs/mlp_digits --sort value",
    )
    show.add_argument("run", metavar="RUN", help=RUN_HELP)
    show.add_argument(
        "--sort",
        choices=("number", "value"),
        default="number",
        help="row order: trial number (default) or value, best first",
    )
    show.set_defaults(handler=_cmd_show)

    best = commands.add_parser(
        "best",
        help="print the best parameters",
        description="Print the best trial's parameters (as YAML-style lines, or JSON).",
        formatter_class=_Formatter,
        epilog=(
            "examples:\n  gpbo best runs/mlp_digits\n"
            '  gpbo best runs/mlp_digits --json > best.json   # {"lr": 0.01, ...}'
        ),
    )
    best.add_argument("run", metavar="RUN", help=RUN_HELP)
    best.add_argument(
        "--json",
        action="store_true",
        help="print the parameters as one JSON object (nothing else)",
    )
    best.set_defaults(handler=_cmd_best)

    plot = commands.add_parser(
        "plot",
        help="plot best so far against trials and time, and value against each parameter",
        description="Draw a run: best so far against trial number and against wall time, "
        "and the value of every trial against each parameter. Needs matplotlib: "
        f"{install_hint('plot')}.",
        formatter_class=_Formatter,
        epilog="example:\n  gpbo plot runs/mlp_digits -o mlp_digits.png",
    )
    plot.add_argument("run", metavar="RUN", help=RUN_HELP)
    plot.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="the image to write (.png, .pdf, .svg; default <run_dir>/plot.png)",
    )
    plot.set_defaults(handler=_cmd_plot)

    export = commands.add_parser(
        "export",
        help="write the trials to a CSV file",
        description="Write one row per trial: number, status, value, parameters (params_*), "
        "extra metrics (metrics_*), device, round, times, duration and error.",
        formatter_class=_Formatter,
        epilog="examples:\n  gpbo export runs/mlp_digits --csv trials.csv\n"
        "  gpbo export runs/mlp_digits --csv -        # to stdout",
    )
    export.add_argument("run", metavar="RUN", help=RUN_HELP)
    export.add_argument("--csv", required=True, metavar="FILE", help="the CSV file ('-': stdout)")
    export.set_defaults(handler=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gpbo`` command line; returns the exit status.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).
    """
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        overrides = [word for word in unknown if "=" in word and not word.startswith("-")]
        hint = (
            f"; an override takes --set: {' '.join(f'--set {word}' for word in overrides)}"
            if overrides
            else ""
        )
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    for stream in (sys.stdout, sys.stderr):
        # a character the terminal's encoding lacks (a choice, an error message) is escaped
        # rather than ending `gpbo run` or `gpbo show` with a UnicodeEncodeError
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        with _gpbo_warnings_logged():
            return int(args.handler(args))
    except GpboError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `gpbo export ... --csv - | head` (`run` goes on instead)
        _quiet_closed_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        # before a study started (imports, reading the config) or in a command without one:
        # nothing is half-written (the journal records whole lines), so a rerun is safe
        _error("interrupted; run the same command again to go on")
        return EXIT_INTERRUPTED


@contextlib.contextmanager
def _gpbo_warnings_logged() -> Iterator[None]:
    """gpbo's own warnings as ``[gpbo] WARNING: ...`` lines (above the live status line while
    a study runs), not Python's ``file:line: GpboWarning:`` form."""
    _basic_logging()
    original = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, GpboWarning):
            logging.getLogger("gpbo").warning("%s", message)
        else:
            original(message, category, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def _quiet_closed_stdout() -> None:
    """Point ``sys.stdout`` at nothing: its reader went away, and the interpreter's exit would
    flush into the closed pipe and print a traceback."""
    with contextlib.suppress(Exception):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - open until the interpreter exits


def _error(message: str) -> None:
    sys.stderr.write(f"gpbo: error: {message}\n")
    sys.stderr.flush()


# -- run ----------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from gpbo.config import load_config
    from gpbo.live import LiveReporter
    from gpbo.report import format_count

    _basic_logging()
    config = load_config(args.config, overrides=args.overrides)
    kwargs = config.optimize_kwargs()
    # a config without direction: minimizes (the config check warned of a metric like
    # val_acc), whatever a journal in the run directory says: the config is the study
    kwargs.setdefault("direction", "minimize")
    run_dir = config.run_dir
    verbose = bool(kwargs.pop("verbose", True)) and not args.quiet
    _refuse_to_overwrite_the_config(config)
    again = _run_command(args.config, args.overrides)
    reporter = LiveReporter(
        direction=kwargs.get("direction", "minimize"),
        n_trials=kwargs["n_trials"],
        enabled=verbose,
        live=False if args.plain else None,
        resume_hint=f"run `{again}` again to resume",
        metric=kwargs.get("metric", "value"),
        # once the study holds the journal: a driver refused it (two started at once on a
        # new run dir) must not overwrite the record of the other's settings
        on_start=lambda: _write_resolved_config(config),
    )
    if args.fresh and config.journal_path.exists():
        moved = _move_aside(run_dir, config.journal_path, config_file=config.path)
        if verbose:
            reporter.say(f"[gpbo] moved the old run aside to {moved}")
    finished = _check_resumable(config, kwargs)
    if config.journal_path.exists():
        _warn_if_the_objective_changed(config)
    n_trials = kwargs["n_trials"]
    if finished >= n_trials:
        # the run dir's config.yaml keeps the n_trials its trials were run for
        others = [o for o in args.overrides if not o.strip().startswith("n_trials")]
        more = _run_command(args.config, [*others, "n_trials=N"])
        if verbose:
            reporter.say(
                f"[gpbo] {run_dir} has {format_count(finished, 'finished trial')} and n_trials "
                f"is {n_trials}: nothing to run; to go on, raise it: {more}"
            )
        # the study stopped when its own trials finished: an n_trials lowered now (--set
        # n_trials=4 on a run of 28) is not why, and config.yaml keeps the 28
        summary = _write_summary(config, f"{format_count(finished, 'trial')} finished")
        if verbose:
            reporter.say(f"[gpbo] results: gpbo show {_shown_path(run_dir)}")
        return EXIT_FAILED if summary is not None and summary.get("best") is None else EXIT_OK
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unusable_run_dir(run_dir, exc) from None

    if verbose:
        reporter.say(
            f"[gpbo] run directory {run_dir}"
            + (f" (resuming: {format_count(finished, 'trial')} finished)" if finished else "")
        )
    import gpbo
    from gpbo.journal import JournalLockedError

    status = EXIT_OK
    stop_reason = ""
    locked_out = False
    # No SIGINT handler of our own: the loop's holds Ctrl+C back while it records an outcome
    # (one raising at once could lose a finished trial), and clears the status line itself.
    with _log_through(reporter):
        try:
            result = gpbo.optimize(
                config.objective,
                config.space,
                journal=config.journal_path,
                verbose=verbose,
                _progress=reporter,
                **kwargs,
            )
            stop_reason = result.stop_reason
        except KeyboardInterrupt:
            reporter.suspend()
            stop_reason = "interrupted (Ctrl+C or SIGTERM)"
            if not reporter.resume_hint_shown:  # stopped before the loop could say it
                reporter.say(f"[gpbo] interrupted; {reporter.resume_hint}")
            status = EXIT_INTERRUPTED
        except GpboError as exc:
            reporter.suspend()
            stop_reason = f"stopped on an error: {str(exc).splitlines()[0]}"
            _error(str(exc))
            status = EXIT_FAILED
            locked_out = isinstance(exc, JournalLockedError)
        finally:
            reporter.close()
    # a driver refused the journal (another one holds it) must not summarize that one's run
    summary = None if locked_out else _write_summary(config, stop_reason)
    if summary is not None and summary.get("best") is None and status == EXIT_OK:
        status = EXIT_FAILED  # no trial completed: see why with gpbo show
    if verbose and not locked_out and config.journal_path.exists():  # else there are none
        reporter.say(
            f"[gpbo] results in {run_dir}: gpbo show {_shown_path(run_dir)} | "
            f"gpbo plot {_shown_path(run_dir)} -o plot.png"
        )
    if reporter.output_closed:
        _quiet_closed_stdout()
    return status


def _unusable_run_dir(run_dir: Path, exc: OSError) -> GpboError:
    why = "it is a file" if run_dir.is_file() else exc.strerror or str(exc)
    return GpboError(
        f"cannot use the run directory {run_dir}: {why}; set another with run_dir: in the "
        "config or --set run_dir=PATH"
    )


def _write_resolved_config(config: Any) -> None:
    try:
        (config.run_dir / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    except OSError as exc:
        raise _unusable_run_dir(config.run_dir, exc) from None


def _run_command(config: str, overrides: Sequence[str]) -> str:
    """``gpbo run CONFIG --set ...``, as a shell line to show the user."""
    options = [part for override in overrides for part in ("--set", override)]
    return shlex.join(["gpbo", "run", config, *options])


def _basic_logging() -> None:
    root = logging.getLogger("gpbo")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[gpbo] %(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
        root.propagate = False


@contextlib.contextmanager
def _log_through(reporter: Any) -> Iterator[None]:
    """gpbo's log records go above the live status line while the study runs."""
    root = logging.getLogger("gpbo")
    saved = list(root.handlers)
    root.handlers = [reporter.log_handler(logging.WARNING)]
    try:
        yield
    finally:
        root.handlers = saved


#: How the resolved config gpbo writes to a run directory begins (``RunConfig.to_yaml``).
_RESOLVED_MARK = "# resolved by gpbo"


def _refuse_to_overwrite_the_config(config: Any) -> None:
    """The run directory's ``config.yaml`` is gpbo's record of the resolved config: where
    the user's config is that very file (``exp1/config.yaml`` with ``run_dir: exp1``), writing
    it replaced the user's file (comments gone, ``--set`` values made permanent)."""
    written = config.run_dir / "config.yaml"
    if written.exists() and written.resolve() == Path(config.path).resolve():
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if written.read_text(encoding="utf-8").startswith(_RESOLVED_MARK):
                return  # gpbo's own record, run again as it is: rewriting it loses nothing
        raise GpboError(
            f"the config {config.path} is the file gpbo writes the resolved config to (its "
            f"run directory {config.run_dir} gets a config.yaml); rename the config (e.g. "
            f"{Path(config.path).with_name('tune.yaml')}) or set another run_dir"
        )


def _warn_if_the_objective_changed(config: Any) -> None:
    """Warn where the run directory's trials came from another objective or command.

    A resume checks the space, direction and seed, not what computes the values: two configs
    both named ``config.yaml`` share the default ``runs/config``, and the second one's study
    went on from the first one's results without a word.
    """
    from gpbo.config import yaml_module

    yaml = yaml_module()

    try:
        stored = yaml.safe_load((config.run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return
    if not isinstance(stored, dict):
        return
    current = config.resolved()
    for key in ("objective", "command"):
        if stored.get(key) != current.get(key):
            before = stored.get(key, "(none)")
            now = current.get(key, "(none)")
            logging.getLogger("gpbo").warning(
                "the run directory %s holds trials of %s %r (its config.yaml), and this config "
                "runs %s %r: the results are pooled as one study. If this is another study, "
                "give it its own run_dir (--set run_dir=PATH) or start over with --fresh",
                config.run_dir, key if key in stored else "objective", before,
                key if key in current else "objective", now,
            )
            return


def _move_aside(run_dir: Path, journal: Path, *, config_file: Path | None = None) -> Path:
    """Rename ``run_dir`` to ``<run_dir>.old-<time>`` unless a driver holds its journal, or
    the folder is not the run's own (it holds the working directory or the config)."""
    if _journal_locked(journal):
        raise GpboError(
            f"{journal} is in use by a running gpbo; stop it before starting over with --fresh"
        )
    folder = run_dir.resolve()
    holds = [
        what
        for what, path in (("the current directory", Path.cwd()), ("the config", config_file))
        if path is not None and (folder == path.resolve() or folder in path.resolve().parents)
    ]
    if holds:
        raise GpboError(
            f"--fresh moves the run directory {run_dir} aside, and it holds {holds[0]}; move "
            f"{journal} aside yourself to start over, or give the run a folder of its own "
            "(run_dir: runs/NAME)"
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    n = 1
    while target.exists():
        target = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}")
        n += 1
    run_dir.rename(target)
    return target


def _journal_locked(journal: Path) -> bool:
    from gpbo.journal import lock_path

    lock = lock_path(journal)
    if not lock.exists():
        return False
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the journal's own lock decides later
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except PermissionError:
        # a colleague reading someone else's run: flock needs no write access, and taking
        # "cannot open it" for "nobody holds it" called a live run's trials cut off
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held; or, where a read-only lock is refused, not known: say running
        return True
    finally:
        os.close(fd)  # closing drops a lock we took
    return False


def _check_resumable(config: Any, kwargs: dict[str, Any]) -> int:
    """Open (then close) the run's journal as the run will, so a mismatch stops us before
    ``config.yaml`` is overwritten; returns how many trials already finished."""
    if not config.journal_path.exists():
        return 0
    from gpbo.journal import JournalMismatchError
    from gpbo.study import Study

    try:
        with Study(
            config.space,
            direction=kwargs.get("direction", "minimize"),
            strategy=kwargs.get("strategy", "bayes"),
            n_init=kwargs.get("n_init"),
            seed=kwargs.get("seed"),
            journal=config.journal_path,
        ) as study:
            finished = sum(t.finished for t in study.trials)
            if kwargs.get("max_consecutive_failures", True) is not None:  # unset: the default
                finished -= len(study._unusable_failures_to_reopen())  # the run reopens them
            return finished
    except JournalMismatchError as exc:
        raise GpboError(
            f"{exc}\n(the run directory {config.run_dir} holds another study: run with --fresh "
            "to move it aside and start over, or set another run_dir; to start the new study "
            f"from this one's trials that fit it, --set run_dir=NEW --set warm_start="
            f"{_shown_path(config.run_dir)})"
        ) from None


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- summary --------------------------------------------------------------------------------


def _write_summary(config: Any, stop_reason: str) -> dict[str, Any] | None:
    """``summary.json`` and ``summary.txt`` in the run directory, from the journal."""
    from gpbo.study import load

    if not config.journal_path.exists():
        return None
    try:
        study = load(config.journal_path)
    except GpboError as exc:
        logger.warning("no summary written: %s", exc)
        return None
    summary = summarize(study, stop_reason=stop_reason)
    summary["config"] = str(config.path)
    summary["run_dir"] = str(config.run_dir)
    (config.run_dir / "summary.json").write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    text = render_study(study, title=f"gpbo run {config.path}")
    if stop_reason:
        text += f"\nstopped: {stop_reason}\n"
    (config.run_dir / "summary.txt").write_text(text, encoding="utf-8")
    return summary


# -- show / best / export / plot -------------------------------------------------------------


def _journal_of(run: str) -> Path:
    path = Path(run)
    if path.is_dir():
        journal = path / "journal.jsonl"
        if not journal.exists():
            raise GpboError(f"{run!r} holds no journal.jsonl; is it a gpbo run directory?")
        return journal
    if not path.exists():
        raise GpboError(f"no run directory or journal at {run!r}")
    if path.suffix in (".yaml", ".yml"):
        # `gpbo show configs/x.yaml`: the run that config writes, from this directory
        from gpbo.config import load_config

        run_dir = load_config(path, load_objective=False).run_dir
        if not (run_dir / "journal.jsonl").exists():
            raise GpboError(
                f"{run!r} is a config, and its run directory {_shown_path(run_dir)} holds no "
                "journal yet (relative run_dir: from the current directory); gpbo run it first"
            )
        return run_dir / "journal.jsonl"
    return path


def _load(run: str) -> Any:
    from gpbo.study import load

    return load(_journal_of(run))


def _cmd_show(args: argparse.Namespace) -> int:
    study = _load(args.run)
    running = _journal_locked(_journal_of(args.run))
    sys.stdout.write(render_study(study, sort=args.sort, driver_running=running))
    return EXIT_OK


def _cmd_best(args: argparse.Namespace) -> int:
    from gpbo.report import format_value
    from gpbo.trial import best_of

    study = _load(args.run)
    best = best_of(study.trials, study.direction)
    if best is None:
        _error(f"no trial of {args.run} has completed yet (gpbo show {args.run} says why)")
        return EXIT_FAILED
    if args.json:
        print(json.dumps(best.params))
        return EXIT_OK
    print(f"# trial {best.number}, {study.metric} {format_value(best.value)}")
    for name, value in best.params.items():
        print(f"{_yaml_key(name)}: {_yaml_scalar(value)}")
    return EXIT_OK


# YAML 1.1 reads these words as booleans or null, not as strings
_YAML_WORDS = {"y", "yes", "n", "no", "on", "off", "true", "false", "null", "~"}


def _yaml_key(name: str) -> str:
    """A parameter's name as a YAML key that reads back as that string: bare where it is a
    plain word, quoted otherwise (``on`` is a bool to YAML, ``1`` an int, ``a: b`` no key)."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name) is not None
    return name if plain and name.lower() not in _YAML_WORDS else json.dumps(name)


def _yaml_scalar(value: Any) -> str:
    """``value`` as a YAML scalar that reads back as the same value and type.

    JSON's ``3e-07`` is a string to YAML 1.1 (PyYAML), whose floats need a dot and a signed
    exponent: ``3.0e-07``.
    """
    text = json.dumps(value)
    if isinstance(value, float) and "e" in text:
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        if exponent[:1] not in "+-":
            exponent = "+" + exponent
        text = f"{mantissa}e{exponent}"
    return text


def _cmd_plot(args: argparse.Namespace) -> int:
    from gpbo.plots import plot

    journal = _journal_of(args.run)
    study = _load(args.run)
    output = Path(args.output) if args.output else journal.parent / "plot.png"
    _refuse_to_overwrite_the_run(output, journal)
    title = journal.parent.name if journal.name == "journal.jsonl" else journal.stem
    plot(study, output, title=title)
    print(f"wrote {output}")
    return EXIT_OK


def _refuse_to_overwrite_the_run(output: Path, journal: Path) -> None:
    """A typo in an output path must not replace the journal (the run could not resume)."""
    from gpbo.journal import lock_path

    own = [journal, lock_path(journal)]
    folders = [Path(f"{journal}.trials")]
    if journal.name == "journal.jsonl":
        own += [journal.parent / n for n in ("config.yaml", "summary.json", "summary.txt")]
        folders.append(journal.parent / "trials")
    target = output.resolve()
    if any(target == path.resolve() for path in own) or any(
        folder.resolve() in target.parents for folder in folders
    ):
        raise GpboError(
            f"{output} is one of the run's own files; writing there would destroy it. "
            "Give another output path (e.g. trials.csv)"
        )


def _cmd_export(args: argparse.Namespace) -> int:
    study = _load(args.run)
    if args.csv == "-":
        write_csv(study.trials, sys.stdout, param_names=study.space.names)
    else:
        path = Path(args.csv)
        _refuse_to_overwrite_the_run(path, _journal_of(args.run))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", newline="", encoding="utf-8") as handle:
                write_csv(study.trials, handle, param_names=study.space.names)
        except OSError as exc:
            raise GpboError(f"cannot write {path}: {exc.strerror or exc}") from None
        print(f"wrote {len(study.trials)} trials to {path}")
    return EXIT_OK
