"""Unit tests of harl_mini.trust_region: CG, the maximal step, the line search, trpo_step."""

from __future__ import annotations

import math

import pytest
import torch

from harl_mini.errors import HarlMiniError
from harl_mini.trust_region import backtracking_line_search, conjugate_gradient, max_step_length, trpo_step

F64 = torch.float64


def _spd(n: int, seed: int, cond: float = 50.0, eigenvalues=None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    lam = torch.logspace(0, math.log10(cond), n, dtype=F64) if eigenvalues is None else eigenvalues
    return (Q * lam) @ Q.T


class _Counting:
    """v ↦ M v, counting the calls."""

    def __init__(self, M):
        self.M, self.calls = M, 0

    def __call__(self, v):
        self.calls += 1
        return self.M @ v


# --------------------------------------------------------------------------- conjugate gradient


def test_cg_is_exact_after_n_iterations_on_spd_matrices():
    for n in range(1, 9):
        for seed in range(5):
            M = _spd(n, 10 * n + seed)
            b = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=F64)
            x = conjugate_gradient(lambda v: M @ v, b, iters=n, residual_tol=0.0)
            exact = torch.linalg.solve(M, b)
            assert float((x - exact).abs().max()) <= 1e-9 * float(exact.abs().max())


def test_cg_with_fewer_iterations_is_not_exact():
    M = _spd(8, 3, cond=100.0)
    b = torch.randn(8, generator=torch.Generator().manual_seed(0), dtype=F64)
    exact = torch.linalg.solve(M, b)
    errors = [float((conjugate_gradient(lambda v: M @ v, b, iters=k, residual_tol=0.0) - exact).norm()) for k in (1, 3, 5)]
    assert all(e > 1e-6 for e in errors)
    a_norm = [
        float((e @ M @ e).sqrt())
        for e in (conjugate_gradient(lambda v: M @ v, b, iters=k, residual_tol=0.0) - exact for k in range(9))
    ]
    assert all(a_norm[i + 1] <= a_norm[i] + 1e-12 for i in range(8))  # CG decreases the A-norm error


def test_cg_stops_early_once_the_residual_is_small():
    # two distinct eigenvalues: exact after 2 iterations, then the residual test stops it
    M = _spd(6, 1, eigenvalues=torch.tensor([1.0, 1.0, 1.0, 4.0, 4.0, 4.0], dtype=F64))
    b = torch.randn(6, generator=torch.Generator().manual_seed(1), dtype=F64)
    Avp = _Counting(M)
    x = conjugate_gradient(Avp, b, iters=50, residual_tol=1e-20)
    assert Avp.calls == 2
    assert float((x - torch.linalg.solve(M, b)).abs().max()) <= 1e-12
    Avp = _Counting(torch.eye(4, dtype=F64))
    conjugate_gradient(Avp, torch.ones(4, dtype=F64), iters=10)
    assert Avp.calls == 1
    Avp = _Counting(M)  # b = 0: no product at all
    assert torch.equal(conjugate_gradient(Avp, torch.zeros(6, dtype=F64)), torch.zeros(6, dtype=F64))
    assert Avp.calls == 0


def test_cg_raises_on_an_indefinite_matrix():
    M = torch.diag(torch.tensor([1.0, -1.0], dtype=F64))
    with pytest.raises(HarlMiniError, match="not positive definite"):
        conjugate_gradient(lambda v: M @ v, torch.tensor([0.0, 1.0], dtype=F64))
    with pytest.raises(HarlMiniError, match="not positive definite"):
        conjugate_gradient(lambda v: M @ v, torch.tensor([1.0, 1.0], dtype=F64))  # pᵀAp = 0
    M = torch.diag(torch.tensor([2.0, 1.0, -3.0], dtype=F64))  # fails at a later iteration
    with pytest.raises(HarlMiniError, match="not positive definite"):
        conjugate_gradient(lambda v: M @ v, torch.tensor([1.0, 1.0, 1.0], dtype=F64), residual_tol=0.0)


# --------------------------------------------------------------------------- step length


def test_max_step_length_reaches_the_edge_of_the_quadratic_kl_ball():
    for seed in range(10):
        n = 2 + seed % 5
        F = _spd(n, seed)
        s = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=F64)
        for delta in (1e-4, 0.01, 1.0):
            beta = max_step_length(s, F @ s, delta)
            step = beta * s
            assert float(0.5 * step @ F @ step) == pytest.approx(delta, rel=1e-12)
    with pytest.raises(HarlMiniError, match="must be positive"):
        max_step_length(torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64), 0.01)


# --------------------------------------------------------------------------- line search


def test_line_search_rejects_kl_overshoot_then_accepts():
    delta = 0.01
    result = backtracking_line_search(lambda f: (f, 2 * delta * f**2), expected_improvement=1.0, delta=delta)
    assert [h[3] for h in result.history] == ["kl > delta", "kl > delta", "accepted"]
    assert result.accepted and result.fraction == pytest.approx(0.64)
    assert result.kl <= delta and result.improvement == pytest.approx(0.64)


def test_line_search_rejects_no_improvement_and_low_ratio():
    result = backtracking_line_search(lambda f: (-1.0 if f > 0.5 else f, 0.0), 1.0, 0.01)
    assert [h[3] for h in result.history] == ["no improvement"] * 4 + ["accepted"]
    assert result.fraction == pytest.approx(0.8**4)
    # accept_ratio: the gain must be at least that share of the expected (linear) gain
    result = backtracking_line_search(lambda f: (0.1 * f if f > 0.6 else f, 0.0), 1.0, 0.01, accept_ratio=0.5)
    assert [h[3] for h in result.history] == ["improvement below accept_ratio * expected"] * 3 + ["accepted"]
    result = backtracking_line_search(lambda f: (float("nan"), 0.0) if f == 1.0 else (f, 0.0), 1.0, 0.01)
    assert [h[3] for h in result.history] == ["non-finite", "accepted"]


def test_line_search_that_rejects_everything():
    result = backtracking_line_search(lambda f: (1.0, 1.0), 1.0, 0.01, backtrack_coeff=0.5, max_backtracks=4)
    assert not result.accepted and result.fraction == 0.0 and result.improvement == 0.0
    assert len(result.history) == 5
    assert [h[0] for h in result.history] == pytest.approx([1, 0.5, 0.25, 0.125, 0.0625])
    with pytest.raises(HarlMiniError, match=r"^backtrack_coeff"):
        backtracking_line_search(lambda f: (1.0, 0.0), 1.0, 0.01, backtrack_coeff=1.0)


# --------------------------------------------------------------------------- trpo_step


def _quadratic_problem(n: int, seed: int, curvature: float = 1.0):
    """Linear surrogate gᵀΔ and KL = curvature · ½ ΔᵀFΔ around θ_old."""
    F = _spd(n, seed)
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(n, generator=gen, dtype=F64)
    theta = torch.randn(n, generator=gen, dtype=F64)

    def evaluate(th):
        step = th - theta
        return float(g @ step), curvature * float(0.5 * step @ F @ step)

    return F, g, theta, evaluate


def test_trpo_step_on_a_quadratic_model():
    for seed in range(5):
        n = 3 + seed
        F, g, theta, evaluate = _quadratic_problem(n, seed, curvature=0.9)
        res = trpo_step(theta, g, lambda v: F @ v, 0.01, evaluate, cg_iters=n)
        direction = torch.linalg.solve(F, g)
        assert float((res.direction - direction).abs().max()) <= 1e-8 * float(direction.abs().max())
        assert res.beta == pytest.approx(math.sqrt(2 * 0.01 / float(g @ direction)), rel=1e-10)
        assert res.expected_improvement == pytest.approx(math.sqrt(2 * 0.01 * float(g @ direction)), rel=1e-10)
        assert res.accepted and res.line_search.fraction == 1.0
        assert torch.allclose(res.theta, theta + res.beta * res.direction, atol=0)
        # with the exact quadratic KL the full step sits on the boundary: KL = δ
        _, _, _, exact = _quadratic_problem(n, seed, curvature=1.0)
        assert exact(res.theta)[1] == pytest.approx(0.01, rel=1e-10)
        # a KL three times more curved than the model forces backtracking
        _, _, _, curved = _quadratic_problem(n, seed, curvature=3.0)
        res = trpo_step(theta, g, lambda v: F @ v, 0.01, curved, cg_iters=n)
        assert [h[3] for h in res.line_search.history][:1] == ["kl > delta"] and res.accepted
        assert res.line_search.kl <= 0.01


def test_trpo_step_that_rejects_everything_keeps_theta():
    F, g, theta, _ = _quadratic_problem(4, 0)
    before = theta.clone()
    res = trpo_step(theta, g, lambda v: F @ v, 0.01, lambda th: (-1.0, 0.0), max_backtracks=3)
    assert not res.accepted and torch.equal(res.theta, before) and torch.equal(theta, before)
    assert [h[3] for h in res.line_search.history] == ["no improvement"] * 4


def test_trpo_step_damping_and_zero_gradient_and_bad_delta():
    F, g, theta, evaluate = _quadratic_problem(4, 1)
    res = trpo_step(theta, g, lambda v: F @ v, 0.01, evaluate, cg_iters=4, damping=0.5)
    direction = torch.linalg.solve(F + 0.5 * torch.eye(4, dtype=F64), g)
    assert float((res.direction - direction).abs().max()) <= 1e-8 * float(direction.abs().max())
    res = trpo_step(theta, torch.zeros(4, dtype=F64), lambda v: F @ v, 0.01, evaluate)
    assert not res.accepted and torch.equal(res.theta, theta) and res.beta == 0.0
    assert res.line_search.history[0][3] == "zero search direction"
    with pytest.raises(HarlMiniError, match=r"^delta: the KL radius must be positive"):
        trpo_step(theta, g, lambda v: F @ v, 0.0, evaluate)


def test_cg_iterates_minimise_the_quadratic_over_the_krylov_space():
    """The k-th CG iterate minimises q(x) = ½xᵀAx − bᵀx over span{b, Ab, …, A^{k−1}b} (Chapter 4).

    Compared through q's value (a minimum; rounding moves it only at second order), with the
    minimiser over the Krylov space computed from an orthonormal basis of it.
    """
    A = _spd(12, seed=3, cond=30.0)
    b = torch.randn(12, generator=torch.Generator().manual_seed(4), dtype=F64)

    def q(x):
        return float(0.5 * x @ A @ x - b @ x)

    krylov, values = [b], []
    for k in range(1, 8):
        basis, _ = torch.linalg.qr(torch.stack(krylov, 1))
        best = q(basis @ torch.linalg.solve(basis.T @ A @ basis, basis.T @ b))
        x_k = conjugate_gradient(lambda v: A @ v, b, iters=k, residual_tol=0.0)
        assert abs(q(x_k) - best) <= 1e-10 * abs(best), k
        # a different point of the same space is worse
        other = x_k + 1e-3 * basis[:, -1]
        assert q(other) > q(x_k)
        values.append(q(x_k))
        krylov.append(A @ krylov[-1])
    assert all(v1 < v0 for v0, v1 in zip(values, values[1:]))  # strictly decreasing here
