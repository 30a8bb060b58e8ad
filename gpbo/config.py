"""YAML configs for ``gpbo run``: read, check (naming the line), apply ``--set`` overrides.

A config names what to train and how to search::

    objective: examples/mlp_digits.py:train   # or package.module:function, or command: ...
    direction: maximize
    space:
      lr: {type: real, low: 1.0e-3, high: 1.0, log: true}
      batch_size: {type: choice, values: [32, 64, 128, 256]}
      hidden: {type: int, low: 32, high: 512, log: true}
    n_trials: 24
    batch_size: auto                          # one trial per slot (GPU) each round
    run_dir: runs/mlp_digits

Keys:

* ``objective: "path/to/file.py:function"`` or ``"package.module:function"``. A file path is
  looked up relative to the current directory first, then relative to the config file's
  directory; the file's directory is added (at the end) to ``sys.path`` so it can import
  modules beside it. A module is imported with the current directory on ``sys.path``, as
  ``python -m`` does.
* ``command:`` instead of ``objective``: a command template, e.g.
  ``"{python} scripts/train.py --lr {lr}"`` (quote it: a YAML value starting with ``{`` is a
  mapping), run in the current directory (see :class:`gpbo.command.CommandObjective`). Its
  metric is the last stdout line as JSON (key ``metric``, default ``"value"``), or the first
  group of the last match of ``metric_regex:``.
* ``space``: ``{name: {type: real|int|choice, low, high, log, values}}``; ``type`` is required.
* ``run_dir``: where the journal, the resolved config, the logs and the summary go (default
  ``runs/<config file name>``), relative to the current directory.
* Every keyword of :func:`gpbo.optimize` under its own name (``n_trials``, ``batch_size``,
  ``direction``, ``metric``, ``strategy``, ``n_init``, ``devices``, ``workers_per_device``,
  ``executor``, ``mode``, ``surrogate_device``, ``trial_timeout``, ``timeout``,
  ``max_consecutive_failures``, ``seed``, ``verbose``, ``enqueue``: a list of parameter
  mappings to train first, ``warm_start``: earlier runs' directories or journals, relative to
  the current directory, whose complete trials a new run starts from); ``strategy`` and
  ``executor`` also as a mapping of ``type`` and options (``strategy: {type: grid, levels: 7}``,
  ``executor: {type: process, grace_period: 5}``, ``executor: {type: ray, gpus_per_trial:
  0.5}``): the options are the keyword arguments of the class (:class:`gpbo.strategies.Grid`,
  :class:`gpbo.executors.Process`...). ``batch_size: auto`` is one trial per slot.

Files are read with a :class:`yaml.SafeLoader` subclass that also reads ``1e-4`` as a number
(YAML 1.2 does; PyYAML's YAML 1.1 would read a string). Mistakes are
:class:`ConfigError`\\ s that name the file and line (or the ``--set`` option) and say what was
expected; an unknown key gets a "did you mean" hint.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import inspect
import logging
import math
import os
import re
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpbo.exceptions import GpboError, SpaceError, warn_at_caller
from gpbo.space import Choice, Space, param_from_dict
from gpbo.trial import usually_maximized

__all__ = [
    "CONFIG_KEYS",
    "OPTIMIZE_KEYS",
    "ConfigError",
    "FileObjective",
    "RunConfig",
    "load_config",
    "parse_override",
]

logger = logging.getLogger(__name__)

#: The keys of :func:`gpbo.optimize` a config may set, under the same names.
OPTIMIZE_KEYS: tuple[str, ...] = (
    "n_trials",
    "batch_size",
    "direction",
    "metric",
    "strategy",
    "n_init",
    "devices",
    "workers_per_device",
    "executor",
    "mode",
    "surrogate_device",
    "trial_timeout",
    "timeout",
    "max_consecutive_failures",
    "seed",
    "verbose",
    "enqueue",
    "warm_start",
)
#: Every key a config may hold.
CONFIG_KEYS: tuple[str, ...] = (
    "objective",
    "command",
    "metric_regex",
    "space",
    "run_dir",
    *OPTIMIZE_KEYS,
)
_NOT_KEYS = {
    "journal": "a config's journal is <run_dir>/journal.jsonl; set run_dir instead",
    "callbacks": "callbacks are for the Python API (gpbo.optimize); a config cannot set them",
}
_STRATEGY_NAMES = ("bayes", "random", "sobol", "grid", "gradient")
# Executor names and the class each stands for in gpbo.executors (looked up lazily: making a
# Ray executor imports ray, naming its class does not).
_EXECUTOR_CLASSES = {"serial": "Serial", "process": "Process", "ray": "Ray"}
_PARAM_KEYS = {
    "real": ("low", "high", "log"),
    "int": ("low", "high", "log"),
    "choice": ("values",),
}

Location = str  # "configs/x.yaml, line 4" or "--set n_trials=3"


class ConfigError(GpboError, ValueError):
    """A config file (or a ``--set`` override) is wrong; the message names the place."""


# -- reading ----------------------------------------------------------------------------------


_LOADER: Any = None


def yaml_module() -> Any:
    """PyYAML, or a :class:`~gpbo.exceptions.MissingDependencyError` naming the extra."""
    from gpbo._optional import import_optional

    return import_optional("yaml", extra="yaml", feature="reading YAML configs")


def _loader() -> Any:
    """A ``yaml.SafeLoader`` subclass that reads ``1e-4`` as a float (safe: no object tags)."""
    global _LOADER
    if _LOADER is None:
        yaml = yaml_module()

        class Loader(yaml.SafeLoader):  # type: ignore[name-defined,misc]
            """SafeLoader, plus exponent-only floats."""

        _LOADER = _read_exponent_floats(Loader)
    return _LOADER


def _dumper() -> Any:
    """A ``yaml.SafeDumper`` that quotes the strings :func:`_loader` would read as floats.

    PyYAML's dumper writes the string ``"1e-3"`` bare, which gpbo's loader reads back as the
    float 0.001: the ``config.yaml`` a run writes then described another space.
    """
    yaml = yaml_module()

    class Dumper(yaml.SafeDumper):  # type: ignore[name-defined,misc]
        """SafeDumper, resolving as gpbo's loader does."""

    return _read_exponent_floats(Dumper)


def _read_exponent_floats(cls: Any) -> Any:
    """``cls`` (a loader or dumper class) resolving ``1e-4`` as a float, as YAML 1.2 does."""
    cls.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return cls


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """The data in ``text`` and the line of every key (and list item), by path."""
    yaml = yaml_module()

    loader = _loader()(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        hint = ""
        if re.search(r"^\s*command:\s*\{", text, flags=re.MULTILINE):
            hint = (
                '\n(quote the command template: command: "{python} train.py --lr {lr}"; '
                "unquoted, a value starting with { is a YAML mapping)"
            )
        shown = str(exc).replace('"<unicode string>"', source)  # the text was read from it
        raise ConfigError(f"{source}: not valid YAML:\n{shown}{hint}") from None
    finally:
        loader.dispose()
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _collect_lines(node, (), lines, source)
    return data, lines


def _collect_lines(
    node: Any, prefix: tuple[Any, ...], lines: dict[tuple[Any, ...], int], source: str
) -> None:
    yaml = yaml_module()

    if isinstance(node, yaml.MappingNode):
        here: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in here:
                raise ConfigError(
                    f"{source}, line {line}: the key {'.'.join(map(str, (*prefix, key)))!r} "
                    f"appears twice (first on line {here[key]}); keep one"
                )
            here[key] = line
            lines[(*prefix, key)] = line
            _collect_lines(value_node, (*prefix, key), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*prefix, index)] = item.start_mark.line + 1
            _collect_lines(item, (*prefix, index), lines, source)


def parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    """Split ``"strategy.levels=3"`` into the key path and the value (read as YAML).

    Raises:
        ConfigError: ``text`` is not ``key=value`` with a dotted key.
    """
    key, sep, raw = text.partition("=")
    path = tuple(part.strip() for part in key.split("."))
    if not sep or not all(path):
        raise ConfigError(
            f"--set {text}: expected key=value, e.g. --set n_trials=32 or --set strategy.levels=3"
        )
    yaml = yaml_module()

    try:
        value = yaml.load(raw, Loader=_loader()) if raw.strip() else None  # a SafeLoader
    except yaml.YAMLError:
        value = raw  # e.g. a command template starting with "{python}"
    if path in _TEXT_KEYS and raw.strip() and not isinstance(value, (str, list)):
        # text as typed: YAML read 'acc: ([0-9.]+)' as a mapping, '#(...)' as nothing, and
        # '{python} x.py' as a mapping, where only the text makes sense
        value = raw.strip()
    return path, value


#: Keys whose value is text, so that ``--set`` takes what follows ``=`` as typed where YAML
#: would read it as something else.
_TEXT_KEYS = {("metric_regex",), ("command",), ("objective",), ("run_dir",), ("metric",)}


def _apply_override(
    data: dict[str, Any], lines: dict[tuple[Any, ...], Location], text: str
) -> None:
    path, value = parse_override(text)
    target: dict[str, Any] = data
    for depth, key in enumerate(path[:-1]):
        current = target.get(key)
        if isinstance(current, str) and depth == 0 and key in ("strategy", "executor"):
            current = {"type": current}  # strategy.levels=3 on "strategy: grid"
            target[key] = current
        elif current is None:
            current = {}
            target[key] = current
        elif not isinstance(current, dict):
            raise ConfigError(
                f"--set {text}: {'.'.join(path[: depth + 1])} is {current!r}, not a mapping "
                "that could hold the key"
            )
        target = current
    dropped = [
        p for p in lines
        if len(p) > len(path) and p[: len(path)] == path and str(lines[p]).startswith("--set ")
    ]
    if dropped:
        # `--set strategy.levels=3 --set strategy=grid` would lose the levels without a word
        earlier = lines[dropped[0]]
        raise ConfigError(
            f"--set {text} replaces the whole {'.'.join(path)}, dropping the earlier {earlier}; "
            f"put --set {text} first"
        )
    target[path[-1]] = value
    for known in [p for p in lines if p[: len(path)] == path]:
        del lines[known]
    lines[path] = f"--set {text}"


# -- the config -------------------------------------------------------------------------------


@dataclass
class RunConfig:
    """A checked config, ready for ``gpbo run``.

    Attributes:
        path: The config file.
        data: The config as written, with the ``--set`` overrides applied.
        space: The search space.
        run_dir: The run directory (absolute).
        options: Keyword arguments for :func:`gpbo.optimize` (strategy and executor objects
            built from mappings); ``batch_size`` may still be ``"auto"``.
        objective: The callable each trial runs.
        overrides: The ``--set`` options applied, as given.
        cwd: The directory the config was resolved in.
    """

    path: Path
    data: dict[str, Any]
    space: Space
    run_dir: Path
    options: dict[str, Any]
    objective: Callable[[dict[str, Any]], Any]
    overrides: tuple[str, ...] = ()
    cwd: Path = field(default_factory=Path.cwd)
    _lines: dict[tuple[Any, ...], Location] = field(default_factory=dict, repr=False)

    @property
    def journal_path(self) -> Path:
        """``<run_dir>/journal.jsonl``."""
        return self.run_dir / "journal.jsonl"

    def where(self, *path: Any) -> Location:
        """The line (or ``--set`` option) where the key at ``path`` was given."""
        return _where(self._lines, tuple(path), self.path)

    def optimize_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for :func:`gpbo.optimize`, devices checked.

        ``batch_size: auto`` becomes the number of slots (``devices`` x
        ``workers_per_device``); with the Ray executor it stays ``"auto"``, which
        :func:`gpbo.optimize` resolves to the trials the cluster runs at once.

        Raises:
            ConfigError: ``devices`` names a device that is not there (with its line).
        """
        from gpbo.executors import resolve_slots

        kwargs = dict(self.options)
        try:
            slots = resolve_slots(
                kwargs.get("devices", "auto"),
                workers_per_device=kwargs.get("workers_per_device", 1),
            )
        except GpboError as exc:
            key = "devices" if "devices" in self.data else "workers_per_device"
            raise ConfigError(f"{self.where(key)}: {exc}") from None
        executor = kwargs.get("executor")
        on_ray = executor == "ray" or type(executor).__name__ == "Ray"
        if kwargs.get("batch_size") == "auto" and kwargs.get("mode") == "async":
            del kwargs["batch_size"]  # async has no rounds; a number here drew a warning
        elif kwargs.get("batch_size") == "auto" and not on_ray:
            kwargs["batch_size"] = len(slots)
        # on Ray, "auto" stays for optimize(), which takes the cluster's capacity once the
        # executor has connected (the driver's slots say nothing about the cluster)
        return kwargs

    def resolved(self) -> dict[str, Any]:
        """The config's keys as :meth:`to_yaml` writes them: paths resolved."""
        data = dict(self.data)
        if isinstance(self.objective, FileObjective):  # runnable from anywhere, as resolved
            data["objective"] = f"{self.objective.path}:{self.objective.function}"
        data["run_dir"] = str(self.run_dir)
        return data

    def to_yaml(self) -> str:
        """The resolved config as YAML, with a comment saying how it was run."""
        yaml = yaml_module()

        command = shlex.join(
            ["gpbo", "run", str(self.path), *[f"--set={o}" for o in self.overrides]]
        )
        head = (
            f"# resolved by gpbo on {time.strftime('%Y-%m-%d %H:%M:%S')}: {command}\n"
            f"# (relative paths are relative to {self.cwd})\n"
        )
        data = self.resolved()
        return head + yaml.dump(
            data, Dumper=_dumper(), sort_keys=False, allow_unicode=True,
            default_flow_style=None, width=100,
        )


def load_config(
    path: str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    load_objective: bool = True,
) -> RunConfig:
    """Read and check a config file, with ``--set`` overrides applied.

    Args:
        path: The YAML file.
        overrides: ``"key=value"`` strings (dotted keys for nested values), applied in order.
        load_objective: Import the objective (a Python objective runs its module's top level)
            to check that the function is there; ``False`` leaves a file or module objective
            unchecked until the first trial.

    Returns:
        The checked config.

    Raises:
        ConfigError: The file is missing or not YAML, a key is unknown or misspelled, a value
            has the wrong type, or the objective file, module or function is missing. The
            message names the line (or the ``--set`` option).
    """
    config_path = Path(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no config file at {str(config_path)!r}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config {str(config_path)!r}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{str(config_path)!r} is not a UTF-8 text file ({exc.reason} at byte {exc.start}); "
            "is it the YAML config?"
        ) from None
    source = str(config_path)
    data, raw_lines = _parse_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a config is a mapping of keys (objective:, space:, n_trials: ...), "
            f"not a {type(data).__name__}"
        )
    lines: dict[tuple[Any, ...], Location] = {
        p: f"{source}, line {n}" for p, n in raw_lines.items()
    }
    for text_override in overrides:
        _apply_override(data, lines, text_override)
    return _Checker(config_path, data, lines, tuple(overrides)).build(load_objective)


def _where(lines: Mapping[tuple[Any, ...], Location], path: tuple[Any, ...], source: Any) -> str:
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return str(source)


def _command_grace(executor: Any) -> float:
    """Seconds a stopped command gets between ``SIGTERM`` and ``SIGKILL``.

    In a worker process (``process``, ``ray``) half the executor's grace period, so that the
    worker still stops its command before the executor kills the worker; run by the driver
    (``serial``) all of it: nothing kills the driver meanwhile (it was a fixed 1 s there,
    still the default). ``auto`` is 1 s, whichever executor it becomes.
    """
    from gpbo.executors import Serial

    if executor == "serial":
        executor = Serial()
    if isinstance(executor, Serial):
        return executor.grace_period
    return max(0.5, getattr(executor, "grace_period", 2.0) / 2)


def _hint(word: str, choices: Sequence[str]) -> str:
    word = str(word)
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close and len(word) >= 3:  # a shortened name: grace -> grace_period
        close = [c for c in choices if c.startswith(word) or word.startswith(c)][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def _show(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


class _Checker:
    """Checks one config's keys and builds the :class:`RunConfig`."""

    def __init__(
        self,
        path: Path,
        data: dict[str, Any],
        lines: dict[tuple[Any, ...], Location],
        overrides: tuple[str, ...],
    ) -> None:
        self.path = path
        self.data = data
        self.lines = lines
        self.overrides = overrides
        self.cwd = Path.cwd()

    def where(self, *path: Any) -> Location:
        return _where(self.lines, tuple(path), self.path)

    def fail(self, key: str | tuple[Any, ...], message: str) -> ConfigError:
        path = key if isinstance(key, tuple) else (key,)
        return ConfigError(f"{self.where(*path)}: {message}")

    def expect(self, key: str, expected: str, value: Any, *, hint: str = "") -> ConfigError:
        return self.fail(key, f"{key} must be {expected}, got {_show(value)}{hint}")

    # -- the whole config -------------------------------------------------------------------

    def build(self, load_objective: bool) -> RunConfig:
        for key in self.data:
            if not isinstance(key, str):
                raise self.fail((key,), f"keys must be words, got {_show(key)}")
            if key in _NOT_KEYS:
                raise self.fail(key, f"{key} is not a config key: {_NOT_KEYS[key]}")
            if key not in CONFIG_KEYS:
                raise self.fail(
                    key,
                    f"unknown key {key!r}{_hint(key, CONFIG_KEYS)} (keys: "
                    f"{', '.join(CONFIG_KEYS)})",
                )
        self.space = self._space()  # enqueue's points are checked against it
        options: dict[str, Any] = {}
        for key in OPTIMIZE_KEYS:
            if key in self.data:
                options[key] = getattr(self, f"_check_{key}")(self.data[key])
        own_n_init = getattr(options.get("strategy"), "n_init", None)
        if options.get("n_init") is not None and own_n_init not in (None, options["n_init"]):
            raise self.fail(
                "n_init",
                f"n_init: {options['n_init']} and the strategy's own n_init: {own_n_init} "
                "disagree; give it in one place",
            )
        if "n_trials" not in options:
            raise ConfigError(
                f"{self.path}: n_trials is missing; say how many trials to run, e.g. "
                "n_trials: 32 (or --set n_trials=32)"
            )
        space = self.space
        run_dir = self._run_dir()
        objective = self._objective(space, options, run_dir, load_objective)
        # after the objective's checks: a config refused says nothing else
        metric = options.get("metric", "")
        regex = self.data.get("metric_regex")
        if "direction" not in options and usually_maximized(metric):
            warn_at_caller(
                f"{self.path}: metric {metric!r} is minimized (the default direction); if larger "
                "is better, add direction: maximize"
            )
        elif (
            "direction" not in options and not metric and isinstance(regex, str)
            and usually_maximized(regex)
        ):  # the value it reads is called "value", which says nothing
            warn_at_caller(
                f"{self.path}: metric_regex {regex!r} reads what looks like a score, and it is "
                "minimized (the default direction); if larger is better, add direction: "
                "maximize (and metric: NAME to call the value by its name)"
            )
        return RunConfig(
            path=self.path,
            data=self.data,
            space=space,
            run_dir=run_dir,
            options=options,
            objective=objective,
            overrides=self.overrides,
            cwd=self.cwd,
            _lines=self.lines,
        )

    # -- optimize() keywords ----------------------------------------------------------------

    def _positive_int(self, key: str, value: Any, *, allow_none: bool = False) -> int | None:
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.expect(key, "a positive int" + (" or null" if allow_none else ""), value)
        return value

    def _seconds(self, key: str, value: Any) -> float | None:
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not value > 0
        ):
            raise self.expect(key, "a positive, finite number of seconds, or null for no limit",
                              value)
        return float(value)

    def _one_of(self, key: str, value: Any, choices: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in choices:
            hint = _hint(value, choices) if isinstance(value, str) else ""
            expected = " or ".join(repr(c) for c in choices)
            raise self.expect(key, expected, value, hint=hint)
        return value

    def _check_n_trials(self, value: Any) -> int:
        return self._positive_int("n_trials", value)  # type: ignore[return-value]

    def _check_batch_size(self, value: Any) -> int | str:
        if value == "auto":
            return "auto"
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.expect("batch_size", "a positive int or 'auto' (one per slot)", value)
        return value

    def _check_direction(self, value: Any) -> str:
        return self._one_of("direction", value, ("minimize", "maximize"))

    def _check_metric(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.expect("metric", "a non-empty string (the key of the metric)", value)
        return value

    def _check_n_init(self, value: Any) -> int | None:
        return self._positive_int("n_init", value, allow_none=True)

    def _check_devices(self, value: Any) -> Any:
        if value == "auto" or (isinstance(value, str) and value):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return list(value)
        raise self.expect(
            "devices",
            "'auto', a positive int, a device name or a list of names such as "
            "[cuda:0, cuda:1] or [cpu, cpu]",
            value,
        )

    def _check_workers_per_device(self, value: Any) -> int:
        return self._positive_int("workers_per_device", value)  # type: ignore[return-value]

    def _check_mode(self, value: Any) -> str:
        return self._one_of("mode", value, ("sync", "async"))

    def _check_surrogate_device(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.expect("surrogate_device", "'auto', 'cpu' or 'cuda:N'", value)
        return value

    def _check_trial_timeout(self, value: Any) -> float | None:
        return self._seconds("trial_timeout", value)

    def _check_timeout(self, value: Any) -> float | None:
        return self._seconds("timeout", value)

    def _check_max_consecutive_failures(self, value: Any) -> int | None:
        return self._positive_int("max_consecutive_failures", value, allow_none=True)

    def _check_seed(self, value: Any) -> int | None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise self.expect("seed", "a non-negative int or null", value)
        return value

    def _check_verbose(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.expect("verbose", "true or false", value)
        return value

    def _check_enqueue(self, value: Any) -> list[dict[str, Any]]:
        example = "e.g.\nenqueue:\n  - {" + ", ".join(
            f"{name}: ..." for name in self.space.names
        ) + "}"
        if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
            raise self.fail(
                "enqueue",
                "enqueue must be a list of parameter mappings, one per trial, got "
                f"{_show(value)}; {example}",
            )
        points = []
        for i, params in enumerate(value):
            try:
                points.append(self.space.check(params))
            except SpaceError as exc:
                raise self.fail(("enqueue", i), f"enqueue[{i}]: {exc}") from None
        return points

    def _check_warm_start(self, value: Any) -> list[str]:
        paths = [value] if isinstance(value, str) else value
        if not isinstance(paths, list) or not paths or not all(
            isinstance(p, str) and p for p in paths
        ):
            raise self.expect(
                "warm_start", "a path or a list of paths to earlier runs' journals", value,
                hint=" (e.g. warm_start: runs/mlp_digits, a run directory, or its journal.jsonl)",
            )
        return paths

    def _check_strategy(self, value: Any) -> Any:
        from gpbo import strategies

        name, options = self._typed("strategy", value, _STRATEGY_NAMES)
        try:
            cls = type(strategies.make_strategy(name))
        except GpboError:
            raise self.fail(
                self._type_path("strategy", value),
                f"unknown strategy {name!r}{_hint(name, _STRATEGY_NAMES)} (strategies: "
                f"{', '.join(_STRATEGY_NAMES)})",
            ) from None
        if not options:
            return name
        accepted = (
            [f.name for f in dataclasses.fields(cls) if f.init]
            if dataclasses.is_dataclass(cls)
            else _keyword_names(cls)
        )
        self._known_options("strategy", name, options, accepted)
        try:
            return cls(**options)
        except (GpboError, TypeError, ValueError) as exc:
            raise self.fail("strategy", f"strategy {name!r}: {exc}") from None

    def _check_executor(self, value: Any) -> Any:
        from gpbo import executors

        classes = {}
        for name, class_name in _EXECUTOR_CLASSES.items():
            try:
                classes[name] = getattr(executors, class_name)
            except AttributeError:  # an executor this installation does not have
                continue
        names = ("auto", *classes)
        name, options = self._typed("executor", value, names)
        if name not in names:
            raise self.fail(
                self._type_path("executor", value),
                f"unknown executor {name!r}{_hint(name, names)} (executors: {', '.join(names)})",
            )
        if not options:
            return name
        if name == "auto":
            raise self.fail("executor", "executor 'auto' takes no options; name serial or process")
        cls = classes[name]
        self._known_options("executor", name, options, _keyword_names(cls))
        try:
            return cls(**options)
        except (GpboError, TypeError, ValueError) as exc:
            raise self.fail("executor", f"executor {name!r}: {exc}") from None

    def _typed(self, key: str, value: Any, names: Sequence[str]) -> tuple[str, dict[str, Any]]:
        """``name`` or ``{type: name, option: value, ...}`` -> (name, options)."""
        if isinstance(value, str):
            return value, {}
        if isinstance(value, dict):
            if "type" not in value:
                raise self.fail(
                    key,
                    f"{key} given as a mapping needs a type: key, e.g. "
                    f"{{type: {names[0]}, ...}}; got keys {sorted(map(str, value))}",
                )
            name = value["type"]
            if not isinstance(name, str):
                raise self.fail((key, "type"), f"{key}.type must be a name, got {_show(name)}")
            return name, {str(k): v for k, v in value.items() if k != "type"}
        raise self.expect(key, f"a name ({', '.join(names)}) or a mapping {{type: ...}}", value)

    def _type_path(self, key: str, value: Any) -> tuple[str, ...]:
        return (key, "type") if isinstance(value, dict) else (key,)

    def _known_options(
        self, key: str, name: str, options: Mapping[str, Any], accepted: Sequence[str]
    ) -> None:
        for option in options:
            if option not in accepted:
                raise self.fail(
                    (key, option),
                    f"{key} {name!r} has no option {option!r}{_hint(option, accepted)} "
                    f"(options: {', '.join(accepted) or 'none'})",
                )

    # -- space, run_dir ---------------------------------------------------------------------

    def _space(self) -> Space:
        spec = self.data.get("space")
        if spec is None and "space" not in self.data:
            raise ConfigError(
                f"{self.path}: space is missing; e.g.\nspace:\n  lr: {{type: real, low: 1.0e-4, "
                "high: 0.1, log: true}\n  batch_size: {type: choice, values: [32, 64, 128]}"
            )
        if spec is None or (isinstance(spec, dict) and not spec):  # `space:` and nothing under it
            raise self.fail(
                "space", "space is empty; give at least one parameter, e.g. "
                "lr: {type: real, low: 1.0e-4, high: 0.1, log: true}"
            )
        if not isinstance(spec, dict):
            raise self.expect("space", "a mapping of parameter names to their definitions", spec)
        params = {}
        for name, param in spec.items():
            where = ("space", name)
            if not isinstance(param, dict):
                raise self.fail(
                    where,
                    f"parameter {name!r} must be a mapping such as {{type: real, low: 0.0, "
                    f"high: 1.0}}, got {_show(param)}",
                )
            kind = param.get("type")
            if kind is None:
                # a misspelled 'type' is the likely cause: name the key that is there instead
                typo = next((k for k in param if _hint(str(k), ["type"])), None)
                raise self.fail(
                    where if typo is None else (*where, typo),
                    f"parameter {name!r} needs a type: real, int or choice"
                    + (f" (it has a key {typo!r}{_hint(str(typo), ['type'])})" if typo else ""),
                )
            if not isinstance(kind, str) or kind not in _PARAM_KEYS:
                raise self.fail(
                    (*where, "type"),
                    f"parameter {name!r}: unknown type {kind!r}{_hint(str(kind), _PARAM_KEYS)} "
                    "(types: real, int, choice)",
                )
            for key in param:
                if key != "type" and key not in _PARAM_KEYS[kind]:
                    if kind == "choice" and param[key] is None and "values" in param:
                        # {type: choice, values: adam, sgd}: the comma ends `values`, and
                        # `sgd` reads as a key of its own
                        stray = [k for k, v in param.items()
                                 if v is None and k != "type" and k not in _PARAM_KEYS[kind]]
                        listed = ", ".join(map(str, [param["values"], *stray]))
                        raise self.fail(
                            (*where, "values"),
                            f"parameter {name!r}: values must be a list in brackets, such as "
                            f"values: [{listed}] (without them, {key!r} reads as a key of its "
                            "own)",
                        )
                    raise self.fail(
                        (*where, key),
                        f"parameter {name!r} ({kind}) has no key {key!r}"
                        f"{_hint(str(key), _PARAM_KEYS[kind])} (keys: type, "
                        f"{', '.join(_PARAM_KEYS[kind])})",
                    )
            if kind == "choice" and not isinstance(param.get("values"), list):
                values = param.get("values")
                example = (
                    f", such as [{values}]" if isinstance(values, str) and "," in values else ""
                )
                raise self.fail(
                    (*where, "values"),
                    f"parameter {name!r}: values must be a list{example}, got {_show(values)}",
                )
            try:
                params[str(name)] = param_from_dict(param, name=str(name))
                Space({str(name): params[str(name)]})  # validates, naming the parameter
            except (SpaceError, TypeError, ValueError) as exc:
                # a value given with --set is where the mistake is, not the file's line
                overridden = [
                    (*where, key)
                    for key in param
                    if self.lines.get((*where, key), "").startswith("--set ")
                ]
                raise self.fail(overridden[0] if overridden else where, str(exc)) from None
        try:
            return Space(params)
        except (SpaceError, TypeError, ValueError) as exc:
            raise self.fail("space", str(exc)) from None

    def _run_dir(self) -> Path:
        value = self.data.get("run_dir")
        if value is None:
            return (self.cwd / "runs" / self.path.stem).resolve()
        if not isinstance(value, str) or not value:
            raise self.expect("run_dir", "a directory path", value)
        return (self.cwd / Path(value).expanduser()).resolve()

    # -- the objective ----------------------------------------------------------------------

    def _objective(
        self, space: Space, options: dict[str, Any], run_dir: Path, load: bool
    ) -> Callable[[dict[str, Any]], Any]:
        has_objective, has_command = "objective" in self.data, "command" in self.data
        if has_objective and has_command:
            raise self.fail("command", "give objective or command, not both")
        if not has_objective and not has_command:
            raise ConfigError(
                f"{self.path}: say what a trial runs: objective: path/to/file.py:function (or "
                'package.module:function), or command: "{python} train.py --lr {lr}"'
            )
        if has_objective:
            if "metric_regex" in self.data:
                raise self.fail(
                    "metric_regex", "metric_regex reads a command's output; it needs command:"
                )
            return self._python_objective(self.data["objective"], load)
        return self._command_objective(space, options, run_dir)

    def _python_objective(self, value: Any, load: bool) -> Callable[[dict[str, Any]], Any]:
        if not isinstance(value, str) or value.count(":") < 1:
            raise self.expect(
                "objective", "'path/to/file.py:function' or 'package.module:function'", value
            )
        target, _, function = value.rpartition(":")
        if not target or not function:
            raise self.expect(
                "objective", "'path/to/file.py:function' or 'package.module:function'", value
            )
        if target.endswith(".py") or "/" in target or os.sep in target:
            tried = [self.cwd / target, self.path.parent / target]
            existing = list(dict.fromkeys(p.resolve() for p in tried if p.is_file()))
            found = existing[0] if existing else None
            if len(existing) > 1:
                # a quadratic.py of another project in the current directory would otherwise
                # silently stand in for the one beside the config
                warn_at_caller(
                    f"{self.path}: objective file {target!r} is both {existing[0]} (used: a "
                    f"relative path is taken from the current directory first) and "
                    f"{existing[1]} (beside the config); write the path you mean"
                )
            if found is None:
                places = " and ".join(dict.fromkeys(str(p.parent.resolve()) for p in tried))
                raise self.fail(
                    "objective",
                    f"objective file {target!r} not found (looked in {places}); a relative "
                    "path is taken from the current directory, then from the config's",
                )
            objective: Any = FileObjective(found, function)
            if load:
                try:
                    objective.load()
                except (_MissingFunctionError, _ImportFailedError) as exc:
                    raise self.fail("objective", str(exc)) from None
            return objective
        if not all(part.isidentifier() for part in target.split(".")):
            raise self.expect(
                "objective", "'path/to/file.py:function' or 'package.module:function'", value
            )
        cwd = str(self.cwd)
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
                raise self.fail(
                    "objective",
                    f"objective module {target!r} not found (no module named {exc.name!r} "
                    f"from {cwd} or the installed packages); for a file, write "
                    "path/to/file.py:function",
                ) from None
            raise self.fail(
                "objective", f"importing the objective module {target!r} failed:\n{_tb(exc)}"
            ) from None
        except Exception as exc:
            raise self.fail(
                "objective", f"importing the objective module {target!r} failed:\n{_tb(exc)}"
            ) from None
        try:
            return _attribute(module, function, f"module {target!r}")
        except _MissingFunctionError as exc:
            raise self.fail("objective", str(exc)) from None

    def _command_objective(
        self, space: Space, options: dict[str, Any], run_dir: Path
    ) -> Callable[[dict[str, Any]], Any]:
        from gpbo.command import RESERVED_FIELDS, CommandObjective

        value = self.data["command"]
        if isinstance(value, dict):
            raise self.expect(
                "command",
                'a string such as "{python} train.py --lr {lr}" (quote it: unquoted, a value '
                "starting with { is a YAML mapping) or a list of words",
                value,
            )
        if isinstance(value, list):
            flags = [v for v in value if isinstance(v, bool)]
            if flags:
                # YAML reads yes/no/on/off/true as booleans; which word was meant is lost
                raise self.fail(
                    "command",
                    f"the command's word {flags[0]!r} was read by YAML as a boolean; quote it "
                    '("yes", "on", "true") to pass the word as written',
                )
            # [python3, train.py, --epochs, 10]: YAML made 10 a number, meant as the word
            value = [str(v) if isinstance(v, int | float) else v for v in value]
        if not (
            (isinstance(value, str) and value.strip())
            or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))
        ):
            raise self.expect("command", "a command line or a list of words", value)
        clashes = [name for name in space.names if name in RESERVED_FIELDS]
        if clashes:
            raise self.fail(
                ("space", clashes[0]),
                f"parameter {clashes[0]!r} clashes with the command placeholder of that name; "
                f"rename it (reserved: {', '.join(RESERVED_FIELDS)})",
            )
        regex = self.data.get("metric_regex")
        if regex is not None and not isinstance(regex, str):
            raise self.expect("metric_regex", "a regular expression with one group", regex)
        grace = _command_grace(options.get("executor"))
        try:
            objective = CommandObjective(
                value,
                metric=options.get("metric", "value"),
                metric_regex=regex,
                log_dir=run_dir / "trials",
                cwd=self.cwd,
                grace_period=grace,
            )
        except GpboError as exc:
            key = "metric_regex" if "metric_regex" in str(exc) else "command"
            raise self.fail(key, str(exc)) from None
        known = [*space.names, *RESERVED_FIELDS]
        for name in objective.fields:
            if name not in known:
                raise self.fail(
                    "command",
                    f"the command's placeholder {{{name}}} is neither a parameter nor one of "
                    f"{', '.join(RESERVED_FIELDS)}{_hint(name, known)} (parameters: "
                    f"{', '.join(space.names)})"
                    # '{"epochs": 3}' in a command: JSON, not a placeholder
                    + ("" if name.isidentifier() else "; double literal braces: {{ }}"),
                )
        unused = [name for name in space.names if name not in objective.fields]
        if unused:
            logger.warning(
                "%s: the command passes no {%s} to the training; those parameters are tuned "
                "but never used",
                self.where("command"),
                "}, {".join(unused),
            )
        # Filled once with real values (the middle of the space), so a format spec such as
        # {lr:.4g} is checked against the parameter's type, as a trial will fill it.
        import numpy as np

        sample = space.decode(np.full((1, space.n_columns), 0.5))[0]
        try:
            objective.argv(sample, trial_number=0, trial_seed=0, trial_dir="trials/0")
        except GpboError as exc:
            raise self.fail("command", f"{exc} (filled with {sample})") from None
        self._check_the_program_and_script(objective.tokens)
        shell_words = [t for t in objective.tokens if t in _SHELL_WORDS or t[:1] in ("~", "$")]
        if shell_words:
            # no shell runs the command: "> out.txt" became two arguments, silently
            logger.warning(
                "%s: the command runs without a shell, so %s reach the program as plain "
                "arguments; for shell syntax run it through one: \"bash -c '...'\"",
                self.where("command"),
                ", ".join(repr(t) for t in shell_words),
            )
        booleans = [
            name
            for name, param in space.params.items()
            if isinstance(param, Choice)
            and name in objective.fields
            and any(isinstance(value, bool) for value in param.values)
        ]
        for name in booleans:
            # YAML 1.1 reads yes/no/on/off as booleans: `values: [yes, no]` put --flag True
            # on the command line where the script expected yes
            logger.warning(
                "%s: choice %r has the values %s, which reach the command as True/False; "
                "yes/no and on/off are YAML booleans, quote them ('yes', 'no') to pass the "
                "words",
                self.where("space", name),
                name,
                list(space.params[name].values),  # type: ignore[attr-defined]
            )
        return objective

    def _check_the_program_and_script(self, tokens: Sequence[str]) -> None:
        """Refuse a program or Python script that is not there, before any trial fails on it
        (each would, and count as finished against ``n_trials``)."""
        from gpbo.command import template_fields, why_not_runnable

        def beside_the_config(name: str) -> str:
            if (self.path.parent / name).is_file() and not os.path.isabs(name):
                return (
                    f"; it is in {self.path.parent}: run gpbo from there, or give the path "
                    "from here"
                )
            return ""

        program = tokens[0]
        if not template_fields([program]):
            missing = why_not_runnable(program, cwd=self.cwd, path=os.environ.get("PATH"))
            if missing is not None:
                raise self.fail(
                    "command",
                    f"the command's program cannot start: {missing} (commands run in "
                    f"{self.cwd}){beside_the_config(program)}",
                )
        if "-m" in tokens or "-c" in tokens:
            return  # a module or inline code: no script file to look for
        # the script is the first .py word that is no option: later ones (an output file, a
        # --flag=path.py) are the script's own arguments, which may not exist yet
        script = next(
            (t for t in tokens[1:] if t.endswith(".py") and not t.startswith("-") and "=" not in t),
            None,
        )
        if script is None or template_fields([script]) or os.path.isabs(script):
            return  # a script named by a parameter ({arch}.py) exists only per trial
        if not (self.cwd / script).is_file():
            raise self.fail(
                "command",
                f"the command's script {script!r} is not in {self.cwd}, where commands run"
                + beside_the_config(script),
            )


# Words a shell would act on, which reach a command gpbo runs (without a shell) as arguments.
_SHELL_WORDS = frozenset({"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1", "&>", "&"})


def _keyword_names(cls: type) -> list[str]:
    signature = inspect.signature(cls.__init__)
    return [
        name
        for name, param in signature.parameters.items()
        if name != "self" and param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD)
    ]


def _tb(exc: BaseException, frames: int = 8) -> str:
    """The traceback of ``exc`` in the user's code (no importlib or gpbo frames)."""
    stack = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<frozen") and frame.filename != __file__
    ][-frames:]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(stack)]
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


# -- Python-file objectives ------------------------------------------------------------------


class _MissingFunctionError(GpboError):
    """The objective's module has no such function."""


class _ImportFailedError(GpboError):
    """The objective's file raised while it was imported."""


def _attribute(module: Any, name: str, what: str) -> Callable[[dict[str, Any]], Any]:
    target: Any = module
    for part in name.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            raise _MissingFunctionError(f"{what} has no function {name!r}{_hint(name, names)}")
        target = getattr(target, part)
    if not callable(target):
        kind = type(target).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise _MissingFunctionError(f"{what}: {name!r} is {article} {kind}, not a function")
    return target  # type: ignore[no-any-return]


class FileObjective:
    """The function ``function`` of the Python file ``path``, loaded on first call.

    Picklable as the pair (path, name), so that process-executor workers load the file
    themselves: a module loaded from a path cannot be pickled by reference. Unpickling loads
    it, as unpickling a module's function imports the module: a worker does so while it
    starts (within the executor's ``start_timeout``), not in its first trial, whose
    ``trial_timeout`` would otherwise count the import, again after every restart. The file
    runs as a module named ``gpbo_objective_<stem>`` (its ``if __name__ == "__main__":``
    block does not run), with its directory appended to ``sys.path``.

    Args:
        path: The ``.py`` file.
        function: The name of the function in it (``Class.method`` works too).
    """

    def __init__(self, path: str | os.PathLike[str], function: str) -> None:
        self.path = str(Path(path).resolve())
        self.function = function
        self._loaded: Callable[[dict[str, Any]], Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "function": self.function}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.function = state["function"]
        self._loaded = None
        self.load()

    def __repr__(self) -> str:
        return f"FileObjective({self.path!r}, {self.function!r})"

    def load(self) -> Callable[[dict[str, Any]], Any]:
        """Import the file (once per process) and return the function.

        Raises:
            GpboError: The file cannot be imported or has no such function.
        """
        if self._loaded is not None:
            return self._loaded
        path = Path(self.path)
        stem = re.sub(r"\W", "_", path.stem)
        module_name = f"gpbo_objective_{stem}"
        module = sys.modules.get(module_name)
        if module is None or getattr(module, "__file__", None) != self.path:
            folder = str(path.parent)
            if folder not in sys.path:
                sys.path.append(folder)
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise _ImportFailedError(f"objective file {self.path!r} cannot be imported")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                sys.modules.pop(module_name, None)
                raise _ImportFailedError(
                    f"importing the objective file {self.path!r} failed:\n{_tb(exc)}"
                ) from None
        self._loaded = _attribute(module, self.function, f"objective file {self.path!r}")
        return self._loaded

    def __call__(self, params: dict[str, Any]) -> Any:
        """Run the function on one trial's parameters."""
        return self.load()(params)
