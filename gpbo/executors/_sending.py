"""Sending the objective to worker processes: pickle it by reference where a worker can
import it, by value (cloudpickle) where it cannot, and say why neither works.

A spawned worker imports the driver's script as ``__mp_main__`` without running its ``if
__name__ == "__main__":`` block, so what the script defines only there is missing in the
worker; this module reads the script's source to tell.
"""

from __future__ import annotations

import ast
import contextlib
import dis
import functools
import io
import logging
import os
import pickle
import sys
import types
from collections.abc import Iterator, Sequence
from typing import Any

from gpbo._optional import install_hint
from gpbo.exceptions import GpboError
from gpbo.executors.base import Objective

logger = logging.getLogger(__name__)


class _MainRecordingPickler(pickle.Pickler):
    """A pickler that notes every function and class it saves by reference to ``__main__``."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.main_names: list[str] = []

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType)) and (
            getattr(obj, "__module__", None) == "__main__"
        ):
            self.main_names.append(getattr(obj, "__qualname__", repr(obj)))
        return NotImplemented


@contextlib.contextmanager
def unimportable_main_hidden() -> Iterator[None]:
    """Hide a ``__main__.__file__`` that names no file (``python - < script.py`` sets
    ``<stdin>``) while a worker is spawned.

    multiprocessing's spawn has the worker run the driver's main file first, and a
    ``<stdin>`` one fails every worker with ``FileNotFoundError``; without it the worker skips
    that, as for ``python -c`` (the objective then travels by value, see
    :func:`_main_importable_by_workers`).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if main is None or path is None or spec_name or os.path.isfile(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _main_importable_by_workers() -> bool:
    """Whether a spawned worker re-imports the driver's ``__main__`` (so its names resolve)."""
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name:
        # multiprocessing skips re-importing a package's __main__ module
        return spec_name != "__main__" and not spec_name.endswith(".__main__")
    path = getattr(main, "__file__", None)
    return bool(path) and os.path.isfile(path)


def _defined_under_the_main_guard(names: Sequence[str], hidden: set[str]) -> list[str]:
    """Those of ``names`` (of ``__main__``) that its script defines only under its guard
    (``hidden``, from :func:`_bound_only_under_the_guard`).

    A spawned worker imports the driver script as ``__mp_main__`` without running the
    ``if __name__ == "__main__":`` block, so unpickling such a name there fails with a bare
    ``AttributeError``. Only positive evidence counts: a name the script's source does not show
    (a star import, ``exec``) is taken to be importable, as plain pickle assumes.
    """
    return sorted({name.split(".")[0] for name in names} & hidden)


def _bound_only_under_the_guard() -> set[str]:
    """The names the ``__main__`` script binds only under ``if __name__ == "__main__":``."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return set()
    try:
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return set()
    imported: set[str] = set()
    guarded: set[str] = set()
    _collect_top_level_names(tree.body, imported, guarded, under_guard=False)
    return guarded - imported


def _globals_hidden_by_the_guard(objective: Any, hidden: set[str]) -> list[str]:
    """The global names the objective reads (itself, or a ``__main__`` function it calls by
    name) that the script binds only under its main guard (``hidden``): data loaded or
    ``args`` parsed there are missing in a worker, where every trial would fail with
    ``NameError``."""
    function = _function_of(objective)
    if function is None or function.__module__ != "__main__" or not hidden:
        return []
    main = sys.modules["__main__"]
    found: set[str] = set()
    seen: set[types.CodeType] = set()
    todo = [function.__code__]
    while todo:
        code = todo.pop()
        if code in seen:
            continue
        seen.add(code)
        todo += [const for const in code.co_consts if isinstance(const, types.CodeType)]
        for instruction in dis.get_instructions(code):
            if instruction.opname not in ("LOAD_GLOBAL", "LOAD_NAME"):
                continue
            name = instruction.argval
            if name in hidden:
                found.add(name)
            called = getattr(main, name, None)
            if isinstance(called, types.FunctionType) and called.__module__ == "__main__":
                todo.append(called.__code__)
    return sorted(found)


def _function_of(objective: Any) -> types.FunctionType | None:
    """The plain function an objective runs: itself, a partial's, a method's, a ``__call__``."""
    while isinstance(objective, functools.partial):
        objective = objective.func
    objective = getattr(objective, "__func__", objective)  # a bound method
    if isinstance(objective, types.FunctionType):
        return objective
    call = type(objective).__call__ if callable(objective) else None
    return call if isinstance(call, types.FunctionType) else None


def _collect_top_level_names(
    body: Sequence[ast.stmt], imported: set[str], guarded: set[str], *, under_guard: bool
) -> None:
    """Sort the names module-level code binds into those a worker's import binds and the rest."""
    into = guarded if under_guard else imported
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            into.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            into.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If):
            is_guard = _is_main_guard(node.test)
            _collect_top_level_names(
                node.body, imported, guarded, under_guard=under_guard or is_guard
            )
            _collect_top_level_names(node.orelse, imported, guarded, under_guard=under_guard)
        elif isinstance(node, _BLOCKS):
            for block in ("body", "orelse", "finalbody"):
                _collect_top_level_names(
                    getattr(node, block, []), imported, guarded, under_guard=under_guard
                )
            for handler in getattr(node, "handlers", []):
                _collect_top_level_names(
                    handler.body, imported, guarded, under_guard=under_guard
                )
        else:
            into.update(
                n.id
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            )


#: Statements whose blocks run on import like the module's own body (``try*`` from 3.11).
_BLOCKS: tuple[type, ...] = (ast.Try, ast.With, ast.For, ast.While) + (
    (ast.TryStar,) if hasattr(ast, "TryStar") else ()
)


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(n, ast.Name) and n.id == "__name__" for n in sides) and any(
        isinstance(n, ast.Constant) and n.value == "__main__" for n in sides
    )


def serialize_objective(objective: Objective) -> bytes:
    """Pickle the objective for the workers; cloudpickle where plain pickle cannot.

    Raises:
        GpboError: Neither can, with the ways to fix it.
    """
    if not callable(objective):
        raise GpboError(f"the objective must be callable, got {type(objective).__name__}")
    buffer = io.BytesIO()
    pickler = _MainRecordingPickler(buffer)
    try:
        pickler.dump(objective)
    except Exception as exc:
        problem = f"pickle failed with {type(exc).__name__}: {exc}"
    else:
        # the script read once, and only for an objective that refers to __main__
        hidden = _bound_only_under_the_guard() if pickler.main_names else set()
        guarded = _defined_under_the_main_guard(pickler.main_names, hidden)
        reads = _globals_hidden_by_the_guard(objective, hidden)
        if not pickler.main_names or (
            _main_importable_by_workers() and not guarded and not reads
        ):
            return buffer.getvalue()
        if reads and not guarded:
            # by value, cloudpickle sends the values of the globals the function reads
            problem = (
                f"it reads {', '.join(reads)}, which the driver script assigns only under `if "
                "__name__ == \"__main__\":`, and a worker imports the script without running "
                "that block, so every trial would fail with NameError there (assign "
                f"{'it' if len(reads) == 1 else 'them'} above the guard, or inside the "
                "objective)"
            )
            logger.info("sending the objective by value with its globals: %s", problem)
        elif guarded:
            problem = (
                f"{', '.join(guarded)} is defined under `if __name__ == \"__main__\":` in the "
                "driver script, and a worker imports the script without running that block, "
                "so it would not find it (define it above the guard)"
            )
        else:
            problem = (
                f"it refers to {', '.join(sorted(set(pickler.main_names)))} defined in "
                "__main__, which a worker cannot import (interactive session, notebook or "
                "`python -c`)"
            )
    try:
        import cloudpickle
    except ImportError:
        raise GpboError(_unsendable_message(objective, problem)) from None
    try:
        return cloudpickle.dumps(objective, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        problem += f"; cloudpickle failed too with {type(exc).__name__}: {exc}"
        raise GpboError(_unsendable_message(objective, problem, cloudpickle=True)) from exc


def _unsendable_message(objective: Objective, problem: str, *, cloudpickle: bool = False) -> str:
    name = getattr(objective, "__qualname__", None) or type(objective).__name__
    owner = getattr(objective, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        # the function is fine; what it is bound to travels with it
        kind = type(owner).__name__
        problem += (
            f" (a bound method pickles its {kind} instance with it, and everything that "
            "instance holds: a lock, an open file, a CUDA context)"
        )
        fixes = [
            f"make the objective a module-level function that builds the {kind} it needs "
            f"inside each trial, or give {kind} a __getstate__ that leaves out what cannot "
            "be pickled",
        ]
    elif not isinstance(objective, (types.FunctionType, functools.partial)):
        kind = type(objective).__name__
        fixes = [
            f"the {kind} object is pickled whole: keep only picklable settings in it (build "
            "locks, files and models inside __call__), or use a module-level function",
        ]
    else:
        fixes = [
            "define it at module level in an importable module (e.g. `module:function` in "
            "train.py) rather than as a lambda, closure or in an interactive session",
        ]
    if not cloudpickle:
        fixes.append(
            "install cloudpickle, which can send lambdas and closures: "
            + install_hint("cloudpickle")
        )
    fixes.append('run the trials in the driver process with executor="serial"')
    return (
        f"the objective {name!r} cannot be sent to a worker process: {problem}. Fix it in one "
        "of these ways:\n" + "\n".join(f"  - {fix}" for fix in fixes)
    )
