"""Tests for gpbo/compat/bayes_opt/: the bayes_opt drop-in.

The scripts in ``tests/bayes_opt_parity/`` each exercise one part of the ``bayes_opt`` API
through a module they are handed; they run against the drop-in always, and against the real
``bayes_opt`` where it is installed, which must accept the same calls and return the same
structures (keys, types, lengths; not the same numbers).
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import io
import math
import os
import pickle
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gpbo
import gpbo.compat.bayes_opt as drop_in
from gpbo.acquisition import AcquisitionOptions
from gpbo.exceptions import GpboError, StudyError
from tests.conftest import RunsTogether

ROOT = Path(__file__).resolve().parent.parent
PARITY_DIR = Path(__file__).resolve().parent / "bayes_opt_parity"
SCRIPTS = sorted(p.stem for p in PARITY_DIR.glob("*.py") if not p.stem.startswith("_"))
EXAMPLE = ROOT / "examples" / "bayes_opt_quickstart.py"
FAST = AcquisitionOptions(num_restarts=3, raw_samples=64, maxiter=50)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NO_BAYES_OPT = (
    "bayes_opt (the bayesian-optimization package) is not installed; "
    "pip install 'bayesian-optimization>=3.0' to compare the drop-in with it"
)


def _bayes_opt() -> Any:
    try:
        return importlib.import_module("bayes_opt")
    except ImportError:
        pytest.skip(NO_BAYES_OPT)


@pytest.fixture(autouse=True)
def fast_acquisition(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A small acquisition budget (as tests/conftest.py's fast_bayes): fast, same assertions.

    And one torch thread: the GPs here have a handful of points, where a second thread only
    adds synchronization (many times slower when other processes share the cores).
    """
    import torch

    monkeypatch.setattr(drop_in.BayesianOptimization, "_acquisition_options", FAST)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def black_box(x: float, y: float) -> float:
    return -(x**2) - (y - 1) ** 2 + 1


PBOUNDS = {"x": (-2, 2), "y": (-3, 3)}


# -- parity scripts ------------------------------------------------------------------------------
@functools.cache
def _run_script(name: str, module_name: str) -> dict[str, Any]:
    path = PARITY_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bayes_opt_parity_{name}", path)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with tempfile.TemporaryDirectory() as tmp:
        return script.run(importlib.import_module(module_name), Path(tmp))


def structure(value: Any) -> Any:
    """What the parity check compares: dict keys, list lengths, and the type of each leaf."""
    if isinstance(value, dict):
        return {key: structure(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [structure(v) for v in value]
    if isinstance(value, np.ndarray):
        return ("ndarray", value.shape)
    if value is None:
        return None
    for kind in (bool, np.bool_):
        if isinstance(value, kind):
            return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, float):  # numpy's float64 too
        return "float"
    return type(value).__name__


def test_parity_scripts_are_found():
    assert set(SCRIPTS) >= {
        "construct_maximize",
        "suggest_register",
        "probe",
        "max_res",
        "set_bounds",
        "save_load",
        "duplicates",
        "acquisitions",
    }


@pytest.mark.parametrize("name", SCRIPTS)
def test_parity_script_runs_on_the_drop_in(name):
    result = _run_script(name, "gpbo.compat.bayes_opt")
    assert set(result) == {"shape", "same"}


@pytest.mark.parametrize("name", SCRIPTS)
def test_parity_script_matches_bayes_opt(name):
    _bayes_opt()
    ours = _run_script(name, "gpbo.compat.bayes_opt")
    theirs = _run_script(name, "bayes_opt")
    assert structure(ours["shape"]) == structure(theirs["shape"])
    assert ours["same"] == theirs["same"]


# -- the quickstart example ----------------------------------------------------------------------
def test_quickstart_example_prints_the_table_and_finds_the_maximum():
    source = EXAMPLE.read_text()
    assert "from gpbo.compat.bayes_opt import BayesianOptimization" in source
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # see fast_acquisition
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300, cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "\x1b[" not in done.stdout  # not a terminal: plain text
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["iter", "target", "x", "y"]
    assert lines[0] == "|   iter    |  target   |     x     |     y     |"
    assert lines[1] == "-" * len(lines[0])
    rows = lines[2:-2]
    assert len(rows) == 15  # init_points=5, n_iter=10, verbose=2: every point
    assert all(len(row) == len(lines[0]) for row in rows)
    assert [int(row.split("|")[1]) for row in rows] == list(range(1, 16))
    assert lines[-2] == "=" * len(lines[0])
    # bayes_opt's numbers are NumPy floats, printed (NumPy 2) as {'target': np.float64(0.99)...
    best = ast.literal_eval(re.sub(r"np\.float64\(([^)]*)\)", r"\1", lines[-1]))
    assert set(best) == {"target", "params"} and set(best["params"]) == {"x", "y"}
    assert best["target"] >= 0.9


# -- the table -----------------------------------------------------------------------------------
def _table(module: Any, verbose: int, targets: Sequence[float]) -> str:
    """The table that registering ``targets`` prints with ``module``'s optimizer."""
    out = io.StringIO()
    optimizer = module.BayesianOptimization(
        f=None, pbounds={"x": (-2, 2), "a_long_name": (0, 1)}, verbose=verbose, random_state=0
    )
    saved, sys.stdout = sys.stdout, out
    try:
        optimizer.logger.log_optimization_start(["x", "a_long_name"])
        for i, target in enumerate(targets):
            optimizer.register({"x": -1.23456789 + i / 2, "a_long_name": 0.5 / (i + 1)}, target)
        optimizer.logger.log_optimization_end()
    finally:
        sys.stdout = saved
    return ANSI.sub("", out.getvalue())


TARGETS = [1.0, 0.5, 2.0, -123456789.5, 3.25e-7, 12345678.0, 3.0]


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_table_is_bayes_opts_table(verbose):
    theirs = _table(_bayes_opt(), verbose, TARGETS)
    assert _table(drop_in, verbose, TARGETS) == theirs


def test_table_verbosity_levels():
    assert _table(drop_in, 0, TARGETS) == ""
    every = _table(drop_in, 2, TARGETS).splitlines()
    maxima = _table(drop_in, 1, TARGETS).splitlines()
    assert every[0] == "|   iter    |  target   |     x     | a_long... |"
    assert len(every) == 2 + len(TARGETS) + 1
    # verbose=1: only the rows that beat the previous maximum (2.0, 12345678.0), as bayes_opt
    assert [row.split("|")[1].strip() for row in maxima[2:-1]] == ["3", "6"]


def test_new_maxima_are_coloured_on_a_terminal_only(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    def rows(env_no_color: bool) -> list[str]:
        if env_no_color:
            monkeypatch.setenv("NO_COLOR", "1")
        else:
            monkeypatch.delenv("NO_COLOR", raising=False)
        out = Terminal()
        monkeypatch.setattr(sys, "stdout", out)
        optimizer = drop_in.BayesianOptimization(f=None, pbounds={"x": (0, 1)}, verbose=2)
        for x, target in [(0.1, 1.0), (0.2, 0.5), (0.3, 2.0)]:
            optimizer.register({"x": x}, target)
        monkeypatch.setattr(sys, "stdout", sys.__stdout__)
        return out.getvalue().splitlines()

    coloured = rows(env_no_color=False)
    assert "\x1b[35m" not in coloured[0] and "\x1b[35m" not in coloured[1]
    assert coloured[2].count("\x1b[35m") == 3 and coloured[2].endswith("\x1b[39m |")
    assert not any("\x1b[" in row for row in rows(env_no_color=True))


# -- the optimizer -------------------------------------------------------------------------------
def test_same_random_state_same_run_and_randomstate_accepted():
    def run(random_state: Any) -> list[dict[str, Any]]:
        optimizer = drop_in.BayesianOptimization(
            f=black_box, pbounds=PBOUNDS, random_state=random_state, verbose=0
        )
        optimizer.maximize(init_points=2, n_iter=2)
        return optimizer.res

    assert run(5) == run(5)
    assert run(np.random.RandomState(5)) == run(np.random.RandomState(5))
    with pytest.raises(TypeError, match="random_state"):
        drop_in.BayesianOptimization(f=black_box, pbounds=PBOUNDS, random_state="five")


def test_unsupported_arguments_are_refused_by_name():
    with pytest.raises(drop_in.ConstraintNotSupportedError, match="constraint="):
        drop_in.BayesianOptimization(f=black_box, pbounds=PBOUNDS, constraint=object())
    with pytest.raises(drop_in.UnsupportedFeatureError, match="bounds_transformer="):
        drop_in.BayesianOptimization(f=black_box, pbounds=PBOUNDS, bounds_transformer=object())
    with pytest.raises(drop_in.UnsupportedFeatureError, match="acquisition_function="):
        drop_in.BayesianOptimization(
            f=black_box, pbounds=PBOUNDS, acquisition_function=object()
        )
    optimizer = drop_in.BayesianOptimization(f=black_box, pbounds=PBOUNDS, verbose=0)
    with pytest.raises(GpboError, match="batch_size"):
        optimizer.maximize(batch_size=0)
    with pytest.raises(drop_in.UnsupportedFeatureError, match="predict"):
        optimizer.predict({"x": 0.0, "y": 0.0})
    with pytest.warns(UserWarning, match="set_gp_params"):
        optimizer.set_gp_params(alpha=1e-3)


def test_submodules_import_like_bayes_opts():
    from gpbo.compat.bayes_opt import acquisition, exception
    from gpbo.compat.bayes_opt.acquisition import ExpectedImprovement, UpperConfidenceBound
    from gpbo.compat.bayes_opt.exception import NotUniqueError

    assert acquisition.ExpectedImprovement is ExpectedImprovement is drop_in.ExpectedImprovement
    assert UpperConfidenceBound is drop_in.UpperConfidenceBound
    assert NotUniqueError is drop_in.NotUniqueError is drop_in.exception.NotUniqueError
    assert issubclass(NotUniqueError, Exception) and not issubclass(NotUniqueError, KeyError)
    for module in (acquisition, exception):  # real modules in the package, found by importlib
        assert Path(module.__file__).parent == Path(drop_in.__file__).parent
        assert importlib.util.find_spec(module.__name__) is not None
        assert set(module.__all__) <= set(dir(module))


def test_submodules_import_alone_in_a_fresh_interpreter():
    code = (
        "import gpbo.compat.bayes_opt.exception as e, sys; "
        "assert issubclass(e.NotUniqueError, e.BayesianOptimizationError); "
        "from gpbo.compat.bayes_opt.acquisition import UpperConfidenceBound as U; "
        "assert U().kappa == 2.576; "
        "print(sorted(m for m in sys.modules if m.startswith('gpbo.compat.bayes_opt')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "'gpbo.compat.bayes_opt.acquisition'" in done.stdout


def test_pbounds_int_and_categorical():
    optimizer = drop_in.BayesianOptimization(
        f=lambda units, act, lr: units / 100 + {"relu": 1.0, "tanh": 0.0}[act] - lr,
        pbounds={"units": (8, 128, int), "act": ["relu", "tanh"], "lr": (0.0, 1.0)},
        random_state=0,
        verbose=0,
    )
    optimizer.maximize(init_points=3, n_iter=2)
    assert len(optimizer.res) == 5
    for row in optimizer.res:
        assert isinstance(row["params"]["units"], int) and 8 <= row["params"]["units"] <= 128
        assert row["params"]["act"] in ("relu", "tanh")
    assert optimizer.space.dim == 4  # bayes_opt's arrays: one-hot categories
    assert optimizer.space.params.shape == (5, 4)
    assert optimizer.space.array_to_params(optimizer.space.params[0]) == optimizer.res[0]["params"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ((-2, 2), gpbo.Real(-2.0, 2.0)),
        ([-2, 2], gpbo.Real(-2.0, 2.0)),  # bayes_opt: two numbers are a range, list or not
        (np.array([-2.0, 2.0]), gpbo.Real(-2.0, 2.0)),
        ((1, 5, int), gpbo.Int(1, 5)),
        ([0, 1, float], gpbo.Real(0.0, 1.0)),
        ((1, 2, 3), gpbo.Choice([1, 2, 3])),
        (["relu", "tanh"], gpbo.Choice(["relu", "tanh"])),
        (("a", "b"), gpbo.Choice(["a", "b"])),
    ],
)
def test_pbounds_are_read_as_bayes_opt_reads_them(spec, expected):
    optimizer = drop_in.BayesianOptimization(f=None, pbounds={"x": spec}, verbose=0)
    assert optimizer._space["x"] == expected
    optimizer.set_bounds({"x": spec})
    assert optimizer._space["x"] == expected


def test_set_bounds_may_reorder_and_extend_categories():
    optimizer = drop_in.BayesianOptimization(
        f=None, pbounds={"x": (-2, 2), "act": ["relu", "tanh", "sigmoid"]}, verbose=0
    )
    optimizer.register({"x": 0.5, "act": "relu"}, 1.0)
    optimizer.set_bounds({"act": ["tanh", "relu", "sigmoid", "gelu"]})
    optimizer.register({"x": 0.5, "act": "tanh"}, 3.0)  # not the relu point's one-hot row
    with pytest.raises(drop_in.NotUniqueError):
        optimizer.register({"x": 0.5, "act": "relu"}, 2.0)
    assert [row["params"]["act"] for row in optimizer.res] == ["relu", "tanh"]


def test_set_bounds_refuses_to_drop_a_category_a_point_uses(tmp_path):
    optimizer = drop_in.BayesianOptimization(
        f=None, pbounds={"x": (-2, 2), "act": ["relu", "tanh", "sigmoid"]}, verbose=0
    )
    optimizer.register({"x": 0.5, "act": "sigmoid"}, 2.0)
    optimizer.register({"x": 0.1, "act": "relu"}, 1.0)
    with pytest.raises(gpbo.SpaceError, match=r"leave out \['sigmoid'\], which 1 registered"):
        optimizer.set_bounds({"act": ["relu", "tanh"]})
    optimizer.probe({"x": 0.2, "act": "tanh"}, lazy=True)  # queued: it uses tanh too
    with pytest.raises(gpbo.SpaceError, match=r"leave out \['tanh'\], which 1 registered or "):
        optimizer.set_bounds({"act": ["relu", "sigmoid"]})
    optimizer._queue.clear()
    optimizer.set_bounds({"act": ["relu", "sigmoid"]})  # tanh: no point uses it
    optimizer.save_state(tmp_path / "state.json")
    loaded = drop_in.BayesianOptimization(
        f=None, pbounds={"x": (-2, 2), "act": ["relu", "sigmoid"]}, verbose=0
    )
    loaded.load_state(tmp_path / "state.json")
    assert [row["params"]["act"] for row in loaded.res] == ["sigmoid", "relu"]
    assert loaded.max["params"]["act"] == "sigmoid"


def test_a_state_saved_after_reordering_categories_loads_its_categories(tmp_path):
    saver = drop_in.BayesianOptimization(
        f=None, pbounds={"x": (-2, 2), "act": ["relu", "tanh", "sigmoid"]}, verbose=0
    )
    saver.register({"x": 0.5, "act": "relu"}, 1.0)
    saver.set_bounds({"act": ["tanh", "relu", "sigmoid"]})
    saver.register({"x": 0.1, "act": "sigmoid"}, 2.0)
    saver.save_state(tmp_path / "state.json")
    loader = drop_in.BayesianOptimization(
        f=None, pbounds={"x": (-2, 2), "act": ["relu", "tanh", "sigmoid"]}, verbose=0
    )
    loader.load_state(tmp_path / "state.json")  # read with the file's order, not this one's
    assert [row["params"]["act"] for row in loader.res] == ["relu", "sigmoid"]


def test_a_one_category_parameter_saves_and_loads(tmp_path):
    pbounds = {"x": (-2, 2), "act": ["relu"]}
    saver = drop_in.BayesianOptimization(f=None, pbounds=pbounds, verbose=0)
    saver.register({"x": 0.5, "act": "relu"}, 1.0)
    saver.save_state(tmp_path / "state.json")
    loader = drop_in.BayesianOptimization(f=None, pbounds=pbounds, verbose=0)
    loader.load_state(tmp_path / "state.json")  # "1.0 is not one of the choices ['relu']"
    assert loader.res == [{"target": 1.0, "params": {"x": 0.5, "act": "relu"}}]


def _small_discrete_optimizer(**kwargs: Any) -> drop_in.BayesianOptimization:
    return drop_in.BayesianOptimization(
        f=lambda lr, bs: -abs(lr - 0.01) * 10 - bs / 1000,
        pbounds={"lr": [0.001, 0.01, 0.1], "bs": [32, 64, 128]},
        random_state=1,
        verbose=0,
        **kwargs,
    )


def test_a_used_up_space_is_measured_again_with_duplicates_allowed():
    optimizer = _small_discrete_optimizer(allow_duplicate_points=True)
    optimizer.maximize(init_points=5, n_iter=10)
    assert len(optimizer.res) == 15  # 9 points, then repeats, as bayes_opt
    assert len({tuple(row["params"].values()) for row in optimizer.res}) == 9
    assert optimizer.n_duplicate_points == 15 - 9


def test_a_used_up_space_ends_maximize_with_a_warning():
    optimizer = _small_discrete_optimizer()
    with pytest.warns(gpbo.GpboWarning, match="stops after 9 registered points.*allow_dup"):
        optimizer.maximize(init_points=5, n_iter=10)
    assert len(optimizer.res) == 9


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("SequentialDomainReductionTransformer", "set_bounds"),
        ("ConstraintModel", "penalized target"),
        ("TargetSpace", "optimizer.space"),
        ("UtilityFunction", "acquisition_function=UpperConfidenceBound"),
        ("JSONLogger", "save_state"),
    ],
)
def test_a_bayes_opt_name_not_provided_says_what_to_use(name, hint):
    with pytest.raises(ImportError, match=f"drop-in has no {name}: .*{hint}"):
        exec(f"from gpbo.compat.bayes_opt import {name}", {})
    # code written for bayes_opt 1.x and 3.x alike tests for the name
    assert not hasattr(drop_in, name) and getattr(drop_in, name, None) is None
    with pytest.raises(AttributeError, match=f"drop-in has no {name}: .*{hint}"):
        getattr(drop_in, name)
    assert not hasattr(drop_in, "no_such_name")


def test_list_bounds_search_the_range_not_its_two_ends():
    optimizer = drop_in.BayesianOptimization(
        f=lambda x: -((x - 0.3) ** 2), pbounds={"x": [-2, 2]}, random_state=1, verbose=0
    )
    optimizer.maximize(init_points=3, n_iter=3)
    assert len({row["params"]["x"] for row in optimizer.res}) == 6
    assert optimizer.max["target"] > -0.5


def test_batches_run_together_through_the_executor():
    recorder = RunsTogether()
    optimizer = drop_in.BayesianOptimization(
        f=black_box, pbounds=PBOUNDS, random_state=0, verbose=0
    )
    optimizer.maximize(init_points=2, n_iter=4, batch_size=2, executor=recorder)
    assert recorder.batches == [2, 2, 2]
    assert len(optimizer.res) == 6
    rounds = [t.round for t in optimizer._study.trials]
    assert rounds == [0, 0, 1, 1, 2, 2]  # each pair proposed by one joint ask

    serial = drop_in.BayesianOptimization(f=black_box, pbounds=PBOUNDS, random_state=0, verbose=0)
    serial.maximize(init_points=3, n_iter=3, batch_size=2, executor="serial")
    assert len(serial.res) == 6
    assert len({tuple(r["params"].values()) for r in serial.res}) == 6


def test_objective_wrapper_pickles_and_calls_with_keywords():
    wrapper = pickle.loads(pickle.dumps(drop_in._CallWithKwargs(black_box)))
    assert wrapper({"x": 0.0, "y": 1.0}) == 1.0


def test_a_raising_target_raises_its_own_exception_after_registering_the_rest():
    def fragile(x: float, y: float) -> float:
        if x > 1.5:
            raise KeyError("diverged")  # as bayes_opt: the same exception, not a wrapper
        return black_box(x, y)

    optimizer = drop_in.BayesianOptimization(f=fragile, pbounds=PBOUNDS, verbose=0)
    optimizer.probe({"x": 0.0, "y": 0.0})
    optimizer.probe({"x": 1.9, "y": 0.0})
    optimizer.probe({"x": 0.5, "y": 0.0})
    with pytest.raises(KeyError, match="diverged") as raised:
        optimizer.maximize(init_points=0, n_iter=0, batch_size=3, executor="serial")
    assert raised.traceback[-1].name == "fragile"
    assert [r["params"]["x"] for r in optimizer.res] == [0.0, 0.5]
    assert all(t.status == "complete" for t in optimizer._study.trials)
    optimizer.maximize(init_points=0, n_iter=1)  # the optimizer goes on after the error
    assert len(optimizer.res) == 3


def test_a_nan_target_raises_a_study_error_naming_the_point():
    optimizer = drop_in.BayesianOptimization(
        f=lambda x, y: math.nan if x > 1.5 else black_box(x, y), pbounds=PBOUNDS, verbose=0
    )
    optimizer.probe({"x": 1.9, "y": 0.0})
    refused = r"(?s)failed at \{'x': 1.9.*not a finite number"
    with pytest.raises(StudyError, match=refused) as raised:
        optimizer.maximize(init_points=0, n_iter=0)
    assert "Traceback" not in str(raised.value)  # gpbo's check of the value, not user code


def test_the_constructor_takes_bayes_opts_positional_order():
    acquisition = drop_in.acquisition.ExpectedImprovement(xi=0.01)
    optimizer = drop_in.BayesianOptimization(black_box, PBOUNDS, acquisition, None, 7, 0)
    assert optimizer.acquisition_function is acquisition
    assert optimizer._seed == 7 and optimizer.logger.verbose == 0


def test_maximize_without_a_target_function_says_so():
    with pytest.raises(ValueError, match="No target function"):
        drop_in.BayesianOptimization(f=None, pbounds=PBOUNDS).maximize()


def _liar() -> drop_in.acquisition.ConstantLiar:
    return drop_in.acquisition.ConstantLiar(drop_in.acquisition.UpperConfidenceBound())


def test_suggest_returns_the_same_point_until_something_is_registered():
    # a suggestion looked at, then asked for again to evaluate, stayed pending for good: every
    # later suggestion went around it (median regret 0.066 against 0.00009 on the seed doc's
    # problem); bayes_opt returns the same point again
    optimizer = drop_in.BayesianOptimization(f=None, pbounds=PBOUNDS, random_state=0, verbose=0)
    for x, y in [(0.0, 0.0), (1.0, -1.0), (-1.0, 2.0)]:
        optimizer.register({"x": x, "y": y}, black_box(x, y))
    first = optimizer.suggest()
    assert optimizer.suggest() == first
    assert all(t.status == "complete" for t in optimizer._study.trials)  # nothing pending
    optimizer.register(first, black_box(**first))
    assert optimizer.suggest() != first


@pytest.mark.parametrize("liar_from", ["drop-in", "bayes_opt"])
def test_a_constant_liar_keeps_suggestions_pending_until_registered(liar_from):
    if liar_from == "bayes_opt":
        bayes_opt = pytest.importorskip("bayes_opt")
        liar = bayes_opt.acquisition.ConstantLiar(bayes_opt.acquisition.UpperConfidenceBound())
    else:
        liar = _liar()
    optimizer = drop_in.BayesianOptimization(
        f=None, pbounds=PBOUNDS, acquisition_function=liar, random_state=0, verbose=0
    )
    assert optimizer.acquisition_function is liar
    optimizer.register({"x": 0.0, "y": 0.0}, black_box(0.0, 0.0))
    optimizer.register({"x": 1.0, "y": -1.0}, black_box(1.0, -1.0))
    a, b = optimizer.suggest(), optimizer.suggest()
    assert a != b  # several points evaluated at once
    assert [t.status for t in optimizer._study.trials][-2:] == ["pending", "pending"]
    optimizer.register(b, black_box(**b))
    optimizer.register(a, black_box(**a))
    assert all(t.status == "complete" for t in optimizer._study.trials)


@pytest.mark.parametrize("suggested", [False, True])
def test_a_non_finite_target_is_refused_by_register_wherever_the_point_came_from(suggested):
    optimizer = drop_in.BayesianOptimization(
        f=None, pbounds=PBOUNDS, acquisition_function=_liar(), random_state=0, verbose=0
    )
    optimizer.register({"x": 0.0, "y": 0.0}, 1.0)
    point = optimizer.suggest() if suggested else {"x": 0.5, "y": 0.5}
    with pytest.raises(ValueError, match=r"register\(\): the target .* is nan, not a finite"):
        optimizer.register(point, float("nan"))
    assert len(optimizer.res) == 1


def test_duplicates_probed_inside_maximize_are_counted_where_bayes_opt_counts_them():
    optimizer = drop_in.BayesianOptimization(
        lambda x: -(x**2), {"x": (-1, 1)}, verbose=0, allow_duplicate_points=True
    )
    for _ in range(3):
        optimizer.probe({"x": 0.3}, lazy=True)
    optimizer.maximize(init_points=0, n_iter=0)
    assert len(optimizer.res) == 3
    # were 0: maximize recorded its points without register(), where they were counted
    assert optimizer.n_duplicate_points == 2 and optimizer.space.n_duplicate_points == 2


def test_floats_are_numpy_floats_where_bayes_opt_gives_them():
    seen = []

    def f(x, n, c):
        seen.append((type(x), type(n), type(c)))
        return -(x**2) + n

    optimizer = drop_in.BayesianOptimization(
        f, {"x": (-1, 1), "n": (0, 5, int), "c": ["a", "b"]}, random_state=0, verbose=0
    )
    optimizer.maximize(init_points=2, n_iter=1)
    optimizer.probe({"x": 0.5, "n": 1, "c": "a"}, lazy=False)
    assert set(seen) == {(np.float64, int, str)}
    best = optimizer.max
    assert type(best["target"]) is np.float64 and type(best["params"]["x"]) is np.float64
    assert best["target"].round(3) == round(float(best["target"]), 3)  # a float has no round()
    assert {type(r["target"]) for r in optimizer.res} == {np.float64}
    assert type(optimizer.suggest()["x"]) is np.float64


def test_a_range_in_pbounds_is_read_as_bayes_opt_reads_it():
    optimizer = drop_in.BayesianOptimization(
        None, {"a": range(1, 6), "b": range(0, 2)}, random_state=0, verbose=0
    )
    assert optimizer._space["a"] == gpbo.Choice([1, 2, 3, 4, 5])  # was "unknown type range"
    assert optimizer._space["b"] == gpbo.Real(0.0, 1.0)  # two numbers: a float range


def test_a_pass_fail_or_decimal_target_is_a_number_as_in_bayes_opt():
    import decimal

    targets = iter([True, np.bool_(False), decimal.Decimal("0.5")])
    optimizer = drop_in.BayesianOptimization(
        lambda x: next(targets), {"x": (-1, 1)}, random_state=0, verbose=0
    )
    optimizer.maximize(init_points=3, n_iter=0)  # a bool was "not a number", a StudyError
    assert [r["target"] for r in optimizer.res] == [1.0, 0.0, 0.5]


def test_suggest_then_register_tells_the_suggested_trial():
    optimizer = drop_in.BayesianOptimization(
        f=None, pbounds=PBOUNDS, acquisition_function=_liar(), random_state=0, verbose=0
    )
    for _ in range(4):
        params = optimizer.suggest()
        optimizer.register(params, black_box(**params))
    trials = optimizer._study.trials
    assert len(trials) == 4 and all(t.status == "complete" for t in trials)


def test_a_suggestion_registered_after_rounding_is_still_that_suggestion():
    optimizer = drop_in.BayesianOptimization(
        f=None, pbounds=PBOUNDS, acquisition_function=_liar(), random_state=0, verbose=0
    )
    for _ in range(5):
        params = optimizer.suggest()
        # rounded, or through float32, as a worker passing it around might
        rounded = {k: float(np.float32(round(v, 6))) for k, v in params.items()}
        optimizer.register(rounded, black_box(**rounded))
    trials = optimizer._study.trials
    # the suggested trials were told (none left pending), the first point added (no suggestion)
    assert [t.status for t in trials] == ["complete"] * len(trials)
    assert optimizer._suggested == []
    # rounded to 2 decimals (beyond 1e-5, which left it pending for good): still the suggestion
    params = optimizer.suggest()
    rounded = {k: round(v, 2) for k, v in params.items()}
    optimizer.register(rounded, black_box(**rounded))
    assert optimizer._suggested == []
    assert optimizer.res[-1]["params"] == rounded  # res has the registered point
    # a point that is not near the suggestion is a new trial; the suggestion stays pending
    params = optimizer.suggest()
    elsewhere = {k: v * 0.5 for k, v in params.items()}  # toward the middle: in bounds
    optimizer.register(elsewhere, black_box(**elsewhere))
    assert [t.status for t in optimizer._study.trials][-2:] == ["pending", "complete"]


def test_out_of_bounds_points_stay_in_res_but_not_in_max():
    optimizer = drop_in.BayesianOptimization(f=black_box, pbounds=PBOUNDS, verbose=0)
    with pytest.warns(UserWarning, match="outside the bounds"):
        optimizer.register({"x": 5.0, "y": 1.0}, 100.0)
    optimizer.register({"x": 0.0, "y": 0.0}, 0.0)
    assert len(optimizer.res) == 2
    assert optimizer.max == {"target": 0.0, "params": {"x": 0.0, "y": 0.0}}


def test_acquisitions_map_onto_botorch():
    import torch
    from botorch.acquisition import qUpperConfidenceBound
    from botorch.acquisition.analytic import LogProbabilityOfImprovement
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.acquisition.monte_carlo import qProbabilityOfImprovement

    from gpbo.surrogate import fit_gp

    X = torch.rand(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model = fit_gp(X, X.sum(-1))
    kwargs = {"best_f": 1.5, "y_scale": 2.0, "X_pending": None, "q": 1}
    ucb = drop_in.UpperConfidenceBound(kappa=3.0).botorch(model, **kwargs)
    assert isinstance(ucb, qUpperConfidenceBound)
    assert ucb.beta_prime == pytest.approx(math.sqrt(9.0 * math.pi / 2))  # beta = kappa ** 2
    ei = drop_in.ExpectedImprovement(xi=0.2).botorch(model, **kwargs)
    assert isinstance(ei, qLogExpectedImprovement)
    assert float(ei.best_f) == pytest.approx(1.5 + 0.2 / 2.0)
    pi = drop_in.ProbabilityOfImprovement(xi=0.2).botorch(model, **kwargs)
    assert isinstance(pi, LogProbabilityOfImprovement)
    assert float(pi.best_f) == pytest.approx(1.6)
    batch = drop_in.ProbabilityOfImprovement(xi=0.2).botorch(model, **{**kwargs, "q": 2})
    assert isinstance(batch, qProbabilityOfImprovement)


def test_exploration_decay_follows_suggestions():
    acq = drop_in.UpperConfidenceBound(kappa=2.0, exploration_decay=0.5, exploration_decay_delay=2)
    optimizer = drop_in.BayesianOptimization(
        f=black_box, pbounds=PBOUNDS, acquisition_function=acq, random_state=0, verbose=0
    )
    optimizer.maximize(init_points=2, n_iter=3)
    assert acq.i == 3 and acq.kappa == pytest.approx(2.0 * 0.5**2)  # decays from the 2nd on


def test_bayes_opt_acquisition_objects_are_accepted():
    bayes_opt = _bayes_opt()
    theirs = bayes_opt.acquisition.ExpectedImprovement(xi=0.05)
    optimizer = drop_in.BayesianOptimization(
        f=black_box, pbounds=PBOUNDS, acquisition_function=theirs, verbose=0
    )
    assert optimizer.acquisition_function is theirs  # as bayes_opt keeps it
    assert optimizer._acquisition.xi == 0.05


def test_a_bayes_opt_acquisition_object_decays_as_under_bayes_opt():
    # the drop-in decayed a copy: the user's object kept kappa=5 where bayes_opt's reached 0.625
    bayes_opt = _bayes_opt()
    results = []
    for module in (bayes_opt, drop_in):
        acq = bayes_opt.acquisition.UpperConfidenceBound(kappa=5, exploration_decay=0.5)
        optimizer = module.BayesianOptimization(
            f=black_box, pbounds=PBOUNDS, acquisition_function=acq, random_state=1, verbose=0
        )
        optimizer.maximize(init_points=2, n_iter=3)
        results.append((acq.kappa, optimizer.acquisition_function is acq))
    assert results[0] == results[1] == (0.625, True)


def test_the_drop_ins_errors_are_caught_by_bayes_opts_except_clauses():
    # code that swapped only BayesianOptimization's import keeps bayes_opt's exception imports
    bayes_opt_exception = pytest.importorskip("bayes_opt.exception")
    optimizer = drop_in.BayesianOptimization(f=None, pbounds=PBOUNDS, verbose=0)
    optimizer.register({"x": 0.0, "y": 0.0}, 1.0)
    with pytest.raises(bayes_opt_exception.NotUniqueError):
        optimizer.register({"x": 0.0, "y": 0.0}, 1.0)
    with pytest.raises(drop_in.exception.NotUniqueError, match="is not unique"):
        optimizer.register({"x": 0.0, "y": 0.0}, 1.0)


def test_a_custom_acquisition_is_refused_before_any_evaluation():
    calls = []

    class Custom(drop_in.acquisition.AcquisitionFunction):
        def __init__(self, random_state=None):
            super().__init__(random_state)  # bayes_opt's documented form

        def base_acq(self, mean, std):
            return mean + std

    with pytest.raises(drop_in.exception.UnsupportedFeatureError, match="custom acquisition"):
        drop_in.BayesianOptimization(
            f=lambda **p: calls.append(p) or 0.0, pbounds=PBOUNDS, acquisition_function=Custom()
        )
    assert calls == []


def test_maximize_after_load_state_draws_new_random_points(tmp_path):
    # the loader restarted the saved seed's stream: its points again, skipped as duplicates
    first = drop_in.BayesianOptimization(f=black_box, pbounds=PBOUNDS, random_state=1, verbose=0)
    first.maximize(init_points=3, n_iter=0)
    first.save_state(tmp_path / "s.json")
    calls = []
    second = drop_in.BayesianOptimization(
        f=lambda **p: calls.append(p) or black_box(**p), pbounds=PBOUNDS, random_state=1,
        verbose=0,
    )
    second.load_state(tmp_path / "s.json")
    second.maximize(init_points=3, n_iter=0)
    assert len(calls) == 3 and len(second.res) == 6
    assert len({tuple(r["params"].values()) for r in second.res}) == 6


def test_loads_a_state_saved_by_bayes_opt(tmp_path):
    bayes_opt = _bayes_opt()
    theirs = bayes_opt.BayesianOptimization(f=black_box, pbounds=PBOUNDS, random_state=0, verbose=0)
    theirs.maximize(init_points=3, n_iter=0)
    theirs.save_state(tmp_path / "state.json")
    ours = drop_in.BayesianOptimization(f=black_box, pbounds=PBOUNDS, verbose=0)
    ours.load_state(tmp_path / "state.json")
    assert [r["params"] for r in ours.res] == [
        {k: float(v) for k, v in r["params"].items()} for r in theirs.res
    ]
    assert ours.max["target"] == pytest.approx(float(theirs.max["target"]))


def test_bayes_opt_loads_a_state_saved_here(tmp_path):
    bayes_opt = _bayes_opt()
    ours = drop_in.BayesianOptimization(f=black_box, pbounds=PBOUNDS, random_state=0, verbose=0)
    ours.maximize(init_points=3, n_iter=0)
    ours.save_state(tmp_path / "state.json")
    theirs = bayes_opt.BayesianOptimization(f=black_box, pbounds=PBOUNDS, verbose=0)
    theirs.load_state(tmp_path / "state.json")
    assert [{k: float(v) for k, v in r["params"].items()} for r in theirs.res] == [
        r["params"] for r in ours.res
    ]
    assert float(theirs.max["target"]) == pytest.approx(ours.max["target"])


def test_the_bayes_opt_strategy_gives_a_whole_batch_to_its_acquisition(monkeypatch):
    import gpbo
    import gpbo.strategies as strategies
    from gpbo.compat.bayes_opt._strategy import BayesOptStrategy

    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the exploitation point is off in the bayes_opt front end")

    monkeypatch.setattr(strategies, "optimize_posterior_mean", must_not_run)
    strategy = BayesOptStrategy(n_init=4, num_restarts=2, raw_samples=32, maxiter=20)
    assert strategy.exploit_radius is None
    study = gpbo.Study({"x": gpbo.Real(0, 1)}, strategy=strategy, seed=0)
    for trial in study.ask(4):
        study.tell(trial, trial.params["x"])
    assert len(study.ask(3)) == 3


def test_suggest_on_a_used_up_discrete_space_repeats_a_point_as_bayes_opt_does():
    # it raised gpbo's SpaceExhausted, which bayes_opt code does not expect
    optimizer = drop_in.BayesianOptimization(
        f=None, pbounds={"a": ["x", "y"], "n": (0, 1, int)}, random_state=0, verbose=0
    )
    for a in ("x", "y"):
        for n in (0, 1):
            optimizer.register({"a": a, "n": n}, float(n))
    point = optimizer.suggest()
    assert point["a"] in ("x", "y") and point["n"] in (0, 1)
