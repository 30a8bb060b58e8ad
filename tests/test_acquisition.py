"""Tests for gpbo/acquisition.py: joint batches, lattice projection, no duplicates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpbo
from gpbo.acquisition import (
    AcquisitionOptions,
    is_new,
    optimize_acquisition,
    optimize_posterior_mean,
    qlogei,
)
from gpbo.surrogate import fit_gp

FAST = AcquisitionOptions(num_restarts=3, raw_samples=64, maxiter=50)


def fitted(space: gpbo.Space, n: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = space.project(rng.random((n, space.n_columns)))
    y = -np.sum((X - 0.3) ** 2, axis=1)
    return fit_gp(torch.tensor(X), torch.tensor(y)), X, y


def test_joint_batch_is_distinct_new_and_in_the_cube():
    space = gpbo.Space({"a": gpbo.Real(0, 1), "b": gpbo.Real(0, 1)})
    model, X, y = fitted(space)
    batch = optimize_acquisition(qlogei(model, best_f=y.max(), pending=np.zeros((0, 2))),
                                 space=space, q=4, seen=X, options=FAST,
                                 generator=np.random.default_rng(0))
    assert batch.shape == (4, 2) and np.all((batch >= 0) & (batch <= 1))
    for i, row in enumerate(batch):
        assert is_new(row, X) and is_new(row, batch[:i])


def test_greedy_batch_matches_botorch_sequential_and_restores_pending():
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.optim import optimize_acqf
    from botorch.sampling import SobolQMCNormalSampler

    from gpbo.acquisition import _sequential_greedy

    space = gpbo.Space({f"x{i}": gpbo.Real(0, 1) for i in range(3)})
    model, _, y = fitted(space, n=8)
    pending = torch.tensor([[0.9, 0.9, 0.9]], dtype=torch.float64)  # far from the optimum
    bounds = torch.tensor([[0.0] * 3, [1.0] * 3], dtype=torch.float64)
    options = AcquisitionOptions(num_restarts=5, raw_samples=128, maxiter=100)
    acqf = qLogExpectedImprovement(model, best_f=float(y.max()), X_pending=pending)
    torch.manual_seed(0)
    ours = _sequential_greedy(acqf, bounds=bounds, q=4, options=options)
    assert torch.equal(acqf.X_pending, pending)
    assert ours.shape == (4, 3)
    torch.manual_seed(0)
    theirs, _ = optimize_acqf(acqf, bounds=bounds, q=4, num_restarts=5, raw_samples=128,
                              options=options.lbfgs(), sequential=True)
    # judged by one many-sample estimate of the batch's joint value, pending included
    judge = qLogExpectedImprovement(model, best_f=float(y.max()), X_pending=pending,
                                    sampler=SobolQMCNormalSampler(torch.Size([4096]), seed=1))
    torch.manual_seed(1)
    with torch.no_grad():
        ours_value, theirs_value = float(judge(ours[None])), float(judge(theirs[None]))
        best_random = float(judge(torch.rand(20, 4, 3, dtype=torch.float64)).max())
    # measured: ours -2.506, BoTorch's -2.506, best of 20 random batches -3.51
    assert ours_value > best_random + 0.5
    assert ours_value > theirs_value - 0.05


def test_mixed_space_batches_stay_on_the_lattice():
    space = gpbo.Space({"a": gpbo.Real(0, 1), "n": gpbo.Int(1, 5),
                        "c": gpbo.Choice(["x", "y", "z"])})
    model, X, y = fitted(space, n=15)
    batch = optimize_acquisition(qlogei(model, best_f=y.max(), pending=X[:2]), space=space,
                                 q=5, seen=X, options=FAST, generator=np.random.default_rng(1))
    np.testing.assert_allclose(space.project(batch), batch)
    assert all(is_new(row, X) for row in batch)
    assert len({tuple(r) for r in np.round(batch, 12)}) == 5


def test_small_discrete_space_is_enumerated_until_used_up():
    space = gpbo.Space({"n": gpbo.Int(1, 3), "c": gpbo.Choice(["x", "y"])})
    model, X, y = fitted(space, n=4, seed=3)
    X = np.unique(X, axis=0)
    batch = optimize_acquisition(qlogei(model, best_f=y.max(), pending=np.zeros((0, 3))),
                                 space=space, q=10, seen=X, options=FAST,
                                 generator=np.random.default_rng(0))
    assert batch.shape[0] == 6 - X.shape[0]  # every unseen lattice point, no more


def test_posterior_mean_step_stays_in_the_trust_region():
    space = gpbo.Space({"a": gpbo.Real(0, 1), "b": gpbo.Real(0, 1)})
    model, X, y = fitted(space, n=15)
    center = X[int(np.argmax(y))]
    batch = optimize_posterior_mean(model, space=space, center=center, radius=0.1, q=3, seen=X,
                                    options=FAST, generator=np.random.default_rng(0))
    assert batch.shape == (3, 2)
    assert np.all(np.abs(batch - center) <= 0.1 + 1e-9)


def test_posterior_mean_step_may_change_a_category_but_stays_local_in_the_rest():
    # the incumbent's category "a" is worse than "b" at every x: a one-hot box of the radius
    # around "a" could never propose "b"
    space = gpbo.Space({"x": gpbo.Real(0, 1), "c": gpbo.Choice(["a", "b", "c"])})
    params = [{"x": x, "c": c} for x in np.linspace(0.0, 1.0, 6) for c in "abc"]
    params = [p for p in params if not (p["c"] == "b" and 0.2 < p["x"] < 0.8)]
    params.append({"x": 0.5, "c": "a"})
    X = space.encode(params)
    y = np.array([-(p["x"] - 0.5) ** 2 + (1.0 if p["c"] == "b" else 0.0) for p in params])
    model = fit_gp(torch.tensor(X), torch.tensor(y))
    center = space.encode([{"x": 0.5, "c": "a"}])[0]
    batch = optimize_posterior_mean(model, space=space, center=center, radius=0.05, q=2,
                                    seen=X, options=FAST, generator=np.random.default_rng(0))
    proposed = space.decode(batch)
    assert proposed[0]["c"] == "b"
    assert all(abs(p["x"] - 0.5) <= 0.05 + 1e-9 for p in proposed)


def test_options_are_validated():
    with pytest.raises(gpbo.GpboError, match="num_restarts"):
        AcquisitionOptions(num_restarts=0)
    with pytest.raises(gpbo.GpboError, match="factr"):
        AcquisitionOptions(factr=0.0)
    with pytest.raises(gpbo.GpboError, match="pgtol"):
        AcquisitionOptions(pgtol=-1e-4)
    assert AcquisitionOptions(maxiter=7).lbfgs(q=4)["maxiter"] == 7


def test_batched_lbfgsb_is_in_use_here():
    # the pinned test environment has a SciPy BoTorch supports: a fail here means every round
    # of this suite runs on BoTorch's slow fallback
    from gpbo import acquisition

    assert acquisition.check_batched_lbfgsb()


def test_a_scipy_botorch_does_not_batch_with_is_warned_once(monkeypatch, caplog):
    from botorch.generation import gen

    from gpbo import acquisition

    monkeypatch.delattr(gen, "fmin_l_bfgs_b_batched", raising=False)
    monkeypatch.setattr(gen, "SCIPY_MIN_VERSION", 13, raising=False)
    monkeypatch.setattr(gen, "SCIPY_UNTESTED_VERSION", 18, raising=False)
    monkeypatch.setattr(acquisition, "_checked_lbfgsb", False)
    with caplog.at_level("WARNING", logger="gpbo.acquisition"):
        assert acquisition.check_batched_lbfgsb() is False
        assert acquisition.check_batched_lbfgsb() is False
    warned = [r for r in caplog.records if "batched L-BFGS-B" in r.getMessage()]
    assert len(warned) == 1
    assert "pip install 'scipy>=1.13,<1.18'" in warned[0].getMessage()


def test_posterior_mean_search_reads_the_cached_weights_not_gpytorch(monkeypatch):
    # GPyTorch's first posterior builds its prediction caches, with iterative solves above 800
    # points (seconds at n = 2000); the exploitation point needs only the cached weights
    space = gpbo.Space({"a": gpbo.Real(0, 1), "b": gpbo.Real(0, 1)})
    model, X, y = fitted(space, n=30)
    center = X[int(np.argmax(y))]

    def refuse(*args, **kwargs):
        raise AssertionError("the GPyTorch posterior was asked for")

    monkeypatch.setattr(model, "posterior", refuse)
    batch = optimize_posterior_mean(model, space=space, center=center, radius=0.2, q=1, seen=X,
                                    options=FAST, generator=np.random.default_rng(0))
    assert batch.shape == (1, 2)
    # the optimum of -(x - 0.3)^2 lies inside the box: the search should move toward it
    assert np.linalg.norm(batch[0] - 0.3) < np.linalg.norm(center - 0.3) + 1e-9


def test_numerical_warnings_of_the_greedy_batch_go_to_the_debug_log(caplog):
    # a batch of 16 on a half-discrete space re-chooses among lattice points, where
    # linear_operator adds jitter; its warnings reached the user past the debug log
    import logging
    import warnings

    import gpbo

    study = gpbo.Study({"b": gpbo.Int(0, 1), "x": gpbo.Real(0, 1)}, seed=0)
    for trial in study.ask(16):
        study.tell(trial, trial.params["b"] + (trial.params["x"] - 0.3) ** 2)
    with warnings.catch_warnings(record=True) as shown, \
            caplog.at_level(logging.DEBUG, logger="gpbo.surrogate"):
        warnings.simplefilter("always")
        study.ask(16)
    assert not [w for w in shown if "jitter" in str(w.message)]
    assert "acquisition optimization: NumericalWarning" in caplog.text


class _TwoPeaks(torch.nn.Module):
    """A stand-in acquisition (`b x q x d` -> `b`): its higher peak at ``high``, a lower one at
    ``low``; pending points are held but, unlike qLogEI, do not change the values."""

    def __init__(self, high: list[float], low: list[float]) -> None:
        super().__init__()
        self.model = torch.nn.Linear(1, 1).double()  # for the device lookup
        self.high = torch.tensor(high, dtype=torch.float64)
        self.low = torch.tensor(low, dtype=torch.float64)
        self.X_pending: torch.Tensor | None = None

    def set_X_pending(self, X_pending: torch.Tensor | None = None) -> None:
        self.X_pending = X_pending

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        high = 1.0 - 10 * ((X - self.high) ** 2).sum(-1)
        low = 0.5 - 10 * ((X - self.low) ** 2).sum(-1)
        return torch.logsumexp(torch.stack([high, low]) / 0.01, dim=0).sum(-1) * 0.01


def test_a_proposal_is_not_a_near_copy_of_a_running_point():
    from gpbo.acquisition import PENDING_TOL, _sequential_greedy

    bounds = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    options = AcquisitionOptions(num_restarts=10, raw_samples=256, maxiter=100)
    acqf = _TwoPeaks(high=[0.2, 0.2], low=[0.8, 0.8])
    torch.manual_seed(0)
    alone = _sequential_greedy(acqf, bounds=bounds, q=1, options=options)
    assert torch.allclose(alone[0], acqf.high, atol=1e-3)  # nothing running: the top peak
    running = torch.tensor([[0.2, 0.2]], dtype=torch.float64)
    acqf.set_X_pending(running)
    torch.manual_seed(0)
    proposed = _sequential_greedy(acqf, bounds=bounds, q=1, options=options)
    # the top peak is the running point's, so the next best restart's end is proposed
    assert torch.allclose(proposed[0], acqf.low, atol=1e-3)
    assert (proposed[0] - running[0]).abs().max() > PENDING_TOL
    assert torch.equal(acqf.X_pending, running)


def test_a_proposal_keeps_off_a_failed_point_too():
    from gpbo.acquisition import PENDING_TOL, _sequential_greedy

    bounds = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    options = AcquisitionOptions(num_restarts=10, raw_samples=256, maxiter=100)
    acqf = _TwoPeaks(high=[0.2, 0.2], low=[0.8, 0.8])
    failed = torch.tensor([[0.2, 0.2]], dtype=torch.float64)
    torch.manual_seed(0)
    proposed = _sequential_greedy(acqf, bounds=bounds, q=1, options=options, avoid=failed)
    assert torch.allclose(proposed[0], acqf.low, atol=1e-3)
    assert (proposed[0] - failed[0]).abs().max() > PENDING_TOL
    assert acqf.X_pending is None  # a failed point is kept off, not made pending


def test_success_weighting_lowers_the_value_where_trials_failed():
    from gpbo.acquisition import with_success_probability
    from gpbo.surrogate import fit_success_gp

    space = gpbo.Space({"a": gpbo.Real(0, 1), "b": gpbo.Real(0, 1)})
    model, X, y = fitted(space, n=16)
    succeeded = torch.as_tensor(X[:, 0] < 0.6)  # trials right of a = 0.6 failed
    success_gp = fit_success_gp(torch.tensor(X), succeeded)
    plain = qlogei(model, best_f=y.max(), pending=np.zeros((0, 2)))
    weighted = with_success_probability(plain, success_gp)
    left = torch.tensor([[[0.3, 0.5]]], dtype=torch.float64)
    right = torch.tensor([[[0.9, 0.5]]], dtype=torch.float64)
    with torch.no_grad():
        # the failing side loses more than log(1/2); the succeeding side keeps most of its value
        assert weighted(right) - plain(right) < np.log(0.5)
        assert weighted(left) - plain(left) > np.log(0.9)
        # a batch's log probability is the sum of its points'
        both = torch.cat([left, right], dim=1)
        total = (weighted(left) - plain(left)) + (weighted(right) - plain(right))
        assert torch.allclose(weighted(both) - plain(both), total)
