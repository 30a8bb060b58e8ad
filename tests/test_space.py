"""Tests for gpbo/space.py: definitions, validation, encoding round trips, projection, grids."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpbo
from gpbo.exceptions import SpaceError
from gpbo.space import Choice, Int, Real, Space, param_from_dict

MIXED = {
    "lr": Real(1e-4, 1e-1, log=True),
    "momentum": Real(0.0, 0.99),
    "batch_size": Choice([32, 64, 128, 256]),
    "hidden": Int(32, 512, log=True),
    "layers": Int(1, 4),
    "optimizer": Choice(["adam", "sgd", "rmsprop"]),
}


def test_columns_and_categorical_groups():
    space = Space(MIXED)
    assert space.names == list(MIXED)
    assert space.n_columns == 5 + 3
    assert space.categorical_groups == [[5, 6, 7]]
    assert not space.is_continuous
    assert Space({"a": Real(0, 1)}).is_continuous


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ((-2, 2), Real(-2, 2)),
        ((0.5, 3.5), Real(0.5, 3.5)),
        ((1, 10, int), Int(1, 10)),
        ((1, 10, float), Real(1, 10)),
        ([1, 2, 3], Choice([1, 2, 3])),
        (["relu", "tanh"], Choice(["relu", "tanh"])),
        (("relu", "tanh"), Choice(["relu", "tanh"])),
    ],
)
def test_pbounds_shorthand(spec, expected):
    assert Space({"p": spec})["p"] == expected


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"lr": Real(1.0, 0.1)}, "low < high"),
        ({"lr": Real(0.1, 0.1)}, "low < high"),
        ({"lr": Real(0.0, 1.0, log=True)}, "low > 0"),
        ({"lr": Real(0.0, math.inf)}, "finite"),
        ({"lr": Real(math.nan, 1.0)}, "finite"),
        ({"lr": Real(-1e308, 1e308)}, "too wide"),  # the encoding's NaNs blamed the user
        ({"lr": Int(0, 10**400)}, "within a float's range"),
        ({"lr": Real("a", 1.0)}, "must be a number"),
        ({"lr": Int(1.5, 4)}, "must be an integer"),
        ({"lr": Int(4, 1)}, "swap"),
        ({"lr": Choice([])}, "at least one value"),
        ({"lr": Choice(["a", "a"])}, "more than once"),
        ({"lr": Choice([1, 1.0])}, "more than once"),
        ({"lr": Choice([object()])}, "not a str"),
        ({"lr": Choice("abc")}, "list of values"),
        ({"lr": 3}, "unknown type"),
        ({"lr": (1, 2, 3)}, "not a bounds form"),
    ],
)
def test_bad_definitions_name_the_parameter(params, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        Space(params)
    assert "'lr'" in str(info.value)


def test_choice_takes_a_one_dimensional_numpy_array():
    import numpy as np

    space = Space({"bs": Choice(np.array([32, 64, 128])), "lr": Choice(np.logspace(-3, -1, 3))})
    assert space["bs"].values == (32, 64, 128) and type(space["bs"].values[0]) is int
    assert space["lr"].values == pytest.approx((0.001, 0.01, 0.1))
    with pytest.raises(ValueError, match="list of values"):
        Space({"m": Choice(np.ones((2, 2)))})


def test_bad_names_and_empty_space():
    with pytest.raises(ValueError, match="non-empty strings"):
        Space({1: Real(0, 1)})
    with pytest.raises(ValueError, match="empty"):
        Space({})
    with pytest.raises(ValueError, match="mapping"):
        Space([Real(0, 1)])  # type: ignore[arg-type]


def test_check_reports_missing_unknown_and_out_of_range():
    space = Space(MIXED)
    good = {"lr": 0.01, "momentum": 0.5, "batch_size": 64, "hidden": 100, "layers": 2,
            "optimizer": "sgd"}
    assert space.check(good) == good
    with pytest.raises(ValueError, match="missing"):
        space.check({k: v for k, v in good.items() if k != "lr"})
    with pytest.raises(ValueError, match="unknown"):
        space.check({**good, "extra": 1})
    with pytest.raises(ValueError, match=r"'lr'.*outside"):
        space.check({**good, "lr": 1.0})
    with pytest.raises(ValueError, match=r"'layers'.*integer"):
        space.check({**good, "layers": 2.5})
    with pytest.raises(ValueError, match=r"'optimizer'.*not one of"):
        space.check({**good, "optimizer": "adamw"})


def _params_strategy():
    return st.fixed_dictionaries(
        {
            "lr": st.floats(1e-4, 1e-1),
            "momentum": st.floats(0.0, 0.99),
            "batch_size": st.sampled_from([32, 64, 128, 256]),
            "hidden": st.integers(32, 512),
            "layers": st.integers(1, 4),
            "optimizer": st.sampled_from(["adam", "sgd", "rmsprop"]),
        }
    )


@settings(max_examples=200, deadline=None)
@given(_params_strategy())
def test_encode_decode_round_trip(params):
    space = Space(MIXED)
    X = space.encode([params])
    assert X.shape == (1, space.n_columns)
    assert np.all((X >= 0) & (X <= 1))
    (back,) = space.decode(X)
    for name in ("batch_size", "hidden", "layers", "optimizer"):
        assert back[name] == params[name]
    for name in ("lr", "momentum"):
        assert back[name] == pytest.approx(params[name], rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(space.project(X), X, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=8, max_size=8))
def test_any_cube_point_decodes_to_valid_params(row):
    space = Space(MIXED)
    (params,) = space.decode(np.array([row]))
    checked = space.check(params)  # raises if anything is out of range or off the lattice
    assert isinstance(checked["hidden"], int) and isinstance(checked["layers"], int)
    assert checked["optimizer"] in ("adam", "sgd", "rmsprop")
    # projecting is idempotent and lands on points that decode to the same parameters
    projected = space.project(np.array([row]))
    assert space.decode(projected) == [params]
    np.testing.assert_allclose(space.project(projected), projected)


def test_uniform_cube_gives_uniform_integers_and_log_uniform_reals():
    space = Space({"n": Int(1, 4), "lr": Real(1e-4, 1.0, log=True)})
    rng = np.random.default_rng(0)
    params = space.decode(rng.random((40000, 2)))
    counts = np.bincount([p["n"] for p in params], minlength=5)[1:]
    assert np.all(np.abs(counts / 40000 - 0.25) < 0.01)  # ~5 standard deviations
    below = np.mean([p["lr"] < 1e-2 for p in params])
    assert abs(below - 0.5) < 0.01  # half of a log-uniform mass lies below the geometric mid


def test_ordinal_choice_follows_sorted_order():
    choice = Choice([256, 32, 128, 64])
    encoded = [choice.encode(v)[0] for v in (32, 64, 128, 256)]
    assert encoded == sorted(encoded)


def test_grid_is_the_cartesian_product():
    space = Space({"a": Real(0, 1), "n": Int(1, 3), "c": Choice(["x", "y"])})
    grid = list(space.grid(levels=4))
    assert len(grid) == space.grid_size(levels=4) == 4 * 3 * 2
    assert sorted({p["a"] for p in grid}) == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert len({tuple(p.values()) for p in grid}) == len(grid)
    log_grid = Space({"lr": Real(1e-4, 1e-1, log=True)}).grid(levels=4)
    assert [p["lr"] for p in log_grid] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])


def test_to_dict_round_trip_and_param_from_dict_errors():
    space = Space(MIXED)
    assert Space.from_dict(space.to_dict()) == space
    with pytest.raises(ValueError, match="unknown type"):
        param_from_dict({"type": "float32"}, name="p")
    with pytest.raises(ValueError, match="needs the key 'low'"):
        param_from_dict({"type": "real", "high": 1}, name="p")
    with pytest.raises(ValueError, match="takes"):
        param_from_dict({"type": "int", "low": 1, "high": 2, "step": 1}, name="p")


def test_public_names():
    assert gpbo.Real is Real and gpbo.Int is Int and gpbo.Choice is Choice and gpbo.Space is Space


def test_lattice_size_counts_discrete_spaces_only():
    assert Space({"n": Int(1, 3), "c": Choice(["x", "y"])}).lattice_size == 6
    assert Space({"n": Int(1, 3), "a": Real(0, 1)}).lattice_size is None


def test_grid_levels_are_the_values_a_user_would_write():
    # were 0.30000000000000004 and 0.009999999999999995, in journals and best_params
    assert gpbo.Real(0, 1).grid_values(11)[3] == 0.3
    assert gpbo.Real(1e-3, 1, log=True).grid_values(4) == [0.001, 0.01, 0.1, 1.0]
    odd = gpbo.Real(0.123456789012345, 0.987654321098765)
    assert odd.grid_values(3)[0] == odd.low and odd.grid_values(3)[-1] == odd.high


def test_a_wide_log_int_s_grid_is_log_spaced_integers():
    # every integer of Int(16, 4096, log=True) was 4081 trainings of batch sizes 16, 17, 18...
    assert Int(16, 4096, log=True).grid_values(5) == [16, 64, 256, 1024, 4096]
    assert Int(1, 6, log=True).grid_values(5) == [1, 2, 4, 6]  # 1.57 and 2.45 both round to 2
    assert list(Int(1, 5, log=True).grid_values(5)) == [1, 2, 3, 4, 5]  # no wider than levels
    assert list(Int(16, 4096).grid_values(5)) == list(range(16, 4097))  # linear: every one
    assert Space({"b": Int(16, 4096, log=True), "c": Choice(["x", "y"])}).grid_size(5) == 10


def test_a_grid_level_at_zero_is_zero():
    # rounded to 12 significant digits of the value alone, it came out -5.55e-17
    assert gpbo.Real(-0.3, 0.6).grid_values(4) == [-0.3, 0.0, 0.3, 0.6]
    assert gpbo.Real(-0.3, 0.1).grid_values(5) == [-0.3, -0.2, -0.1, 0.0, 0.1]
    assert gpbo.Real(1e-15, 3e-15).grid_values(3)[1] == 2e-15  # a tiny range is no zero


def test_a_narrow_range_s_grid_levels_stay_apart():
    # 12 significant digits put Real(1e6, 1e6 + 1e-5)'s levels on each other: the grid
    # study ended after one trial
    levels = gpbo.Real(1e6, 1e6 + 1e-5).grid_values(5)
    assert len(set(levels)) == 5
    steps = np.diff(gpbo.Real(1.0, 1.0 + 1e-10).grid_values(5))
    assert steps.min() > 0.9 * steps.max()  # even, not 0.3/0.2/0.3/0.2 of the range
    result = gpbo.optimize(
        lambda p: p["x"], {"x": gpbo.Real(1e6, 1e6 + 1e-5)}, n_trials=8, strategy="grid"
    )
    assert len(result.trials) == 5


def test_numpy_scalars_are_the_choices_they_equal():
    # np.True_ (rng.choice) and np.str_ (an array's item) were "not one of the choices"
    assert gpbo.Choice([True, False]).check_value("f", np.True_) is True
    assert gpbo.Choice(["adam", "sgd"]).check_value("o", np.str_("sgd")) == "sgd"
    with pytest.raises(gpbo.SpaceError, match="not one of the choices"):
        gpbo.Choice([True, False]).check_value("f", np.int64(1))


def test_choices_of_bools_and_of_ints_differ():
    assert gpbo.Choice([0, 1]) != gpbo.Choice([False, True])  # ordinal, and categorical
    assert gpbo.Choice([1, 2]) == gpbo.Choice([1.0, 2.0])
    assert hash(gpbo.Choice([1, 2])) == hash(gpbo.Choice([1.0, 2.0]))


def test_grid_size_counts_a_wide_int_without_building_it():
    import time

    space = Space({"seed": Int(0, 10**9), "k": Int(1, 10)})
    started = time.perf_counter()
    assert space.grid_size(levels=3) == (10**9 + 1) * 10
    assert space.lattice_size == (10**9 + 1) * 10
    assert time.perf_counter() - started < 0.5  # list(range(10**9)) takes seconds and ~40 GB



def test_grid_walks_a_wide_int_without_building_it():
    import itertools
    import time

    space = Space({"n": Int(1, 10**9), "m": Int(1, 10**9), "c": Choice(["x", "y"])})
    started = time.perf_counter()
    first = list(itertools.islice(space.grid(levels=3), 3))
    assert time.perf_counter() - started < 0.5  # a copied axis takes seconds and ~8 GB
    assert first == [{"n": 1, "m": 1, "c": "x"}, {"n": 1, "m": 1, "c": "y"},
                     {"n": 1, "m": 2, "c": "x"}]
    assert all(type(p["n"]) is int for p in first)


def test_a_log_real_decodes_its_ends_exactly():
    lr = Space({"lr": Real(1e-3, 0.5, log=True)})
    assert [p["lr"] for p in lr.grid(levels=3)][::2] == [1e-3, 0.5]
    assert lr.decode(np.array([[0.0], [1.0]])) == [{"lr": 1e-3}, {"lr": 0.5}]


def test_numpy_scalars_in_a_space_are_plain_python_in_its_json():
    import json

    space = gpbo.Space({"x": gpbo.Real(np.float32(0.0), np.float64(1.0)),
                        "n": gpbo.Choice(list(np.arange(3))),
                        "s": gpbo.Choice([np.str_("a"), "b"])})
    as_json = json.loads(json.dumps(space.to_dict()))  # the journal's header
    assert as_json["x"] == {"type": "real", "low": 0.0, "high": 1.0, "log": False}
    assert space["n"].values == (0, 1, 2) and all(type(v) is int for v in space["n"].values)
    assert space["n"].ordinal and type(space["s"].values[0]) is str


def test_int_bounds_beyond_float64s_integers_are_refused():
    gpbo.Space({"s": gpbo.Int(-(2**53), 2**53)})  # the largest exactly representable
    with pytest.raises(SpaceError, match=r"'seed': Int high 9223372036854775807 is beyond"):
        gpbo.Space({"seed": gpbo.Int(0, 2**63 - 1)})


def test_log_is_given_by_name():
    with pytest.raises(TypeError, match="positional"):
        gpbo.Real(1e-4, 1.0, True)  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional"):
        gpbo.Int(1, 64, True)  # type: ignore[misc]
    assert gpbo.Int(1, 64, log=True).log


def test_a_choice_of_many_values_is_checked_and_encoded_in_linear_time():
    import time

    values = [f"v{i}" for i in range(20_000)]
    start = time.perf_counter()
    space = gpbo.Space({"c": gpbo.Choice(values), "n": gpbo.Choice(list(range(20_000)))})
    X = space.encode([{"c": v, "n": i} for i, v in enumerate(values[:200])])
    # each value was compared with every earlier one: 40 s for this space alone
    assert time.perf_counter() - start < 5.0
    assert space.decode(X)[199] == {"c": "v199", "n": 199}


def test_a_linear_range_over_orders_of_magnitude_is_warned_about():
    with pytest.warns(gpbo.GpboWarning, match=r"'lr': \(1e-05, 0.1\) is a linear range, so "
                      r"about 99% of the trials fall in \[0.001, 0.1\].*4 orders.*"
                      r"gpbo\.Real\(1e-05, 0.1, log=True\)"):
        space = Space({"lr": (1e-5, 1e-1)})
    assert space["lr"] == Real(1e-5, 1e-1)  # still the bayes_opt shorthand's linear range
    with pytest.warns(gpbo.GpboWarning, match=r"write gpbo\.Int\(1, 10000, log=True\) "):
        Space({"max_len": (1, 10000)})  # ints: an Int keeps it whole
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Space({"lr": Real(1e-5, 1e-1), "x": (0.0, 1.0), "w": (1e-3, 0.5), "t": (-1e-5, 1.0)})


def test_an_empty_range_points_to_a_one_value_choice():
    with pytest.raises(gpbo.SpaceError, match=r"needs low < high.*gpbo\.Choice\(\[128\]\)"):
        Space({"hidden": Int(128, 128)})
    assert Space({"hidden": gpbo.Choice([128])}).decode([[0.3]])[0] == {"hidden": 128}


def test_a_list_of_two_reals_is_warned_to_be_a_choice_not_a_range():
    import warnings

    with pytest.warns(gpbo.GpboWarning, match=r"'lr': the list \[0.0001, 0.1\] is a Choice of "
                      r"those two values, not the range .*gpbo.Real\(0.0001, 0.1\)") as record:
        space = gpbo.Space({"lr": [1e-4, 1e-1]})
    assert len(record) == 1 and record[0].filename == __file__
    assert isinstance(space["lr"], gpbo.Choice)  # the documented meaning is kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # whole numbers, three values, mixed, or the explicit form: no warning
        gpbo.Space({"b": [32, 64], "m": [0.9, 0.99, 0.999], "o": [0.5, "x"],
                    "d": gpbo.Choice([0.1, 0.5]), "f": [True, False]})


def test_an_int_range_for_a_count_is_warned_to_be_a_real_and_the_config_form_is_taken():
    import warnings

    with pytest.warns(gpbo.GpboWarning, match=r"'hidden': \(16, 128\) is a Real range .*"
                      r"gpbo.Int\(16, 128\) or \(16, 128, int\), or \(16.0, 128.0\)") as record:
        space = gpbo.Space({"hidden": (16, 128), "num_layers": (1, 4, int)})
    assert len(record) == 1 and record[0].filename == __file__
    assert isinstance(space["hidden"], gpbo.Real)  # bayes_opt's meaning is kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # bayes_opt's own examples, names of no count, floats, an explicit type: no warning
        gpbo.Space({"x": (2, 4), "y": (-3, 3), "step_size": (1, 3), "dropout": (0, 1),
                    "n_layers": (1.0, 6.0), "batch_size": (16, 256, int)})
    # the YAML config's form is a parameter in Python too (it said "unknown type dict")
    space = gpbo.Space({"lr": {"type": "real", "low": 1e-4, "high": 1e-1, "log": True},
                        "act": {"type": "choice", "values": ["relu", "tanh"]}})
    assert space["lr"] == gpbo.Real(1e-4, 1e-1, log=True)
    assert space["act"] == gpbo.Choice(["relu", "tanh"])
    with pytest.raises(gpbo.SpaceError, match="'lr': unknown type 'reel'"):
        gpbo.Space({"lr": {"type": "reel", "low": 0, "high": 1}})
