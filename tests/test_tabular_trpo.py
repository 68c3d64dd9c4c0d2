"""Tests for harl_mini.tabular.trpo: surrogate, TRPO Theorem 1, exact TRPO/MM steps, PPO's clip."""

from __future__ import annotations

import pytest
import torch

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError
from harl_mini.trust_region import conjugate_gradient

F64 = torch.float64


def _mdp(k: int, gamma=None):
    S, A = 2 + k % 5, 2 + (k // 2) % 3
    gamma = [0.5, 0.8, 0.9, 0.95, 0.99][k % 5] if gamma is None else gamma
    branching = None if k % 3 else min(2, S)
    return T.random_mdp(S, A, gamma=gamma, seed=500 + k, branching=branching)


def _randn(shape, g, scale=1.0):
    return scale * torch.randn(*shape, generator=g, dtype=F64)


# --------------------------------------------------------------------------- surrogate


def test_surrogate_matches_j_to_first_order_at_the_old_policy():
    for k in range(10):
        m = _mdp(k)
        g = torch.Generator().manual_seed(k)
        theta = _randn((m.num_states, m.num_actions), g, 1.5)
        pi = T.softmax_policy(theta)
        assert float((T.surrogate(m, pi, pi) - T.objective(m, pi)).abs()) <= 1e-12
        t1 = theta.clone().requires_grad_(True)
        (grad_L,) = torch.autograd.grad(T.surrogate(m, pi, T.softmax_policy(t1)), t1)
        t2 = theta.clone().requires_grad_(True)
        (grad_J,) = torch.autograd.grad(T.objective_from_logits(m, t2), t2)
        assert float((grad_L - grad_J).abs().max()) <= 1e-10
        assert float((grad_L - T.policy_gradient(m, theta)).abs().max()) <= 1e-10
        # but away from π the two differ (the surrogate keeps the old visitation)
        pi_far = T.random_policy(m, seed=k, concentration=0.3)
        assert float((T.surrogate(m, pi, pi_far) - T.objective(m, pi_far)).abs()) > 1e-6


def test_bounds_are_tight_at_the_old_policy():
    m = _mdp(6)
    pi = T.random_policy(m, seed=3)
    J = T.objective(m, pi)
    assert float((T.trpo_lower_bound(m, pi, pi) - J).abs()) <= 1e-12
    assert float((T.tv_lower_bound(m, pi, pi) - J).abs()) <= 1e-12
    assert float(T.sharp_bound(m, pi, pi)) == 0.0


def test_penalty_constant_takes_eps_over_all_state_action_pairs():
    """ε is the max of |A^π| over every (s, a), including a state the policy never visits."""
    P = torch.tensor(
        [
            [[0.6, 0.4, 0.0], [0.2, 0.8, 0.0]],
            [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]],
            [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
        ],
        dtype=F64,
    )
    R = torch.tensor([[0.1, 0.3], [0.2, 0.0], [10.0, -10.0]], dtype=F64)
    m = T.FiniteMDP(P, R, 0.9, rho0=[1.0, 0.0, 0.0])
    pi = T.uniform_policy(m)
    rho = T.visitation(m, pi)
    assert float(rho[2]) == 0.0
    adv = T.advantage(m, pi)
    eps_all = float(adv.abs().max())
    eps_visited = float(adv[:2].abs().max())
    assert eps_all > 10 * eps_visited
    C = float(T.penalty_constant(m, pi))
    assert C == pytest.approx(4 * eps_all * 0.9 / 0.1**2, rel=1e-14)


def test_trpo_theorem_1_on_a_thousand_random_pairs():
    """J(π̃) ≥ L − C·D_KL^max, ≥ L − C·α², and |J − L| ≤ 4α²γε/((1−γ)(1−γ(1−α))) ≤ C α²."""
    n_pairs, ratios, signs = 0, [], set()
    for k in range(40):
        m = _mdp(k)
        S, A = m.num_states, m.num_actions
        g = torch.Generator().manual_seed(k)
        for j in range(26):
            theta = _randn((S, A), g, 2.0)
            pi = T.softmax_policy(theta)
            if j < 18:  # near: a small or moderate perturbation of the logits
                pi_new = T.softmax_policy(theta + _randn((S, A), g, [0.01, 0.1, 0.5][j % 3]))
            else:  # far: an unrelated policy
                pi_new = T.random_policy(m, seed=10_000 + 100 * k + j, concentration=[0.3, 1.0, 3.0][j % 3])
            J, L = T.objective(m, pi_new), T.surrogate(m, pi, pi_new)
            kl_bound = T.trpo_lower_bound(m, pi, pi_new)
            tv_bound = T.tv_lower_bound(m, pi, pi_new)
            sharp = T.sharp_bound(m, pi, pi_new)
            C, alpha = T.penalty_constant(m, pi), T.tv_max(pi, pi_new)
            assert float(J - kl_bound) >= -1e-10
            assert float(J - tv_bound) >= -1e-10
            assert float(tv_bound - kl_bound) >= -1e-10  # α² ≤ D_KL^max
            assert float((J - L).abs() - sharp) <= 1e-10
            assert float(sharp - C * alpha**2) <= 1e-12
            ratios.append(float((J - L).abs() / sharp))
            signs.add(bool(J > L))
            n_pairs += 1
    assert n_pairs >= 1000
    assert signs == {True, False}  # L errs in both directions: the bound is genuinely two-sided
    assert max(ratios) > 0.05  # and it is not vacuous by orders of magnitude


# --------------------------------------------------------------------------- exact TRPO step


def test_exact_trpo_step_stays_in_the_trust_region_and_improves():
    for k in range(10):
        m = _mdp(k, gamma=[0.8, 0.9][k % 2])
        g = torch.Generator().manual_seed(k)
        theta = _randn((m.num_states, m.num_actions), g, 1.0)
        pi_old = T.softmax_policy(theta)
        d = T.state_distribution(m, pi_old)
        J_old = T.objective(m, pi_old)
        ng = T.natural_gradient(m, theta)
        for delta in (1e-4, 1e-3, 1e-2, 0.1):
            res = T.exact_trpo_step(m, theta, delta)
            assert res.accepted
            assert res.theta.shape == theta.shape and res.direction.shape == theta.shape
            pi_new = T.softmax_policy(res.theta)
            kl = float(T.mean_kl(pi_old, pi_new, d))
            assert kl <= delta and kl == pytest.approx(res.line_search.kl, rel=1e-12)
            gain = float(T.surrogate(m, pi_old, pi_new) - J_old)
            assert gain > 0 and gain == pytest.approx(res.line_search.improvement, rel=1e-9, abs=1e-15)
            # the CG direction is the natural gradient F⁺∇J, to CG's stopping tolerance
            assert float((res.direction - ng).abs().max()) <= 1e-3 * float(ng.abs().max())
            if delta <= 1e-3:
                assert float(T.objective(m, pi_new) - J_old) > 0  # small steps improve J itself


def test_cg_on_the_exact_fisher_matches_the_pseudo_inverse():
    """CG on the singular softmax Fisher matrix solves F x = g; compared where rounding cannot move it.

    F is singular: for every state its null space contains the constant vector 1_s. CG from
    x = 0 stays in the range of F only in exact arithmetic; run for S·A iterations with a tiny
    residual tolerance, rounding (which differs between BLAS builds and CPUs) can push x along
    the null space by O(1e-2) on some machines without changing F x. So the test compares
    (1) F x with g = F x* (the residual, which CG controls), and (2) x and x* = F⁺ g after
    projecting out each state's null direction (subtracting the per-state mean), which is the
    part of x that F determines. Tolerances: the residual is relative to ‖g‖ at 1e-7, far above
    float64 rounding of a handful of 2–30-dimensional products (~1e-14) and far below any
    wrong solution; the projected error divides the residual by the smallest non-zero eigenvalue
    of F, so it is bounded relative to ‖x*‖/cond, checked with the same margin.
    """
    for k in range(10):
        m = _mdp(k)
        S, A = m.num_states, m.num_actions
        theta = _randn((S, A), torch.Generator().manual_seed(k), 2.0)
        F = T.fisher_matrix(m, theta)
        grad = T.policy_gradient(m, theta).reshape(-1)
        x = conjugate_gradient(lambda v: T.fisher_vector_product(m, theta, v), grad, iters=S * A, residual_tol=1e-28)
        # (1) F x = g, relative to the size of g
        assert float((F @ x - grad).norm()) <= 1e-7 * float(grad.norm())
        # (2) the part of x in the range of F equals the pseudo-inverse solution
        expected = torch.linalg.pinv(F, rtol=1e-12, hermitian=True) @ grad
        eig = torch.linalg.eigvalsh(F)
        lam_min = float(eig[eig > 1e-10 * float(eig.max())].min())
        x_range = (x.reshape(S, A) - x.reshape(S, A).mean(-1, keepdim=True)).reshape(-1)
        expected_range = (expected.reshape(S, A) - expected.reshape(S, A).mean(-1, keepdim=True)).reshape(-1)
        bound = 1e-7 * float(grad.norm()) / lam_min + 1e-10 * float(expected.norm())
        assert float((x_range - expected_range).norm()) <= bound
        # the pseudo-inverse solution itself has no component along the null vectors 1_s
        assert float(expected.reshape(S, A).sum(-1).abs().max()) <= 1e-8 * max(1.0, float(expected.abs().max()))


def test_exact_trpo_line_search_rejects_a_kl_overshoot():
    """A tiny δ with a curved KL: the quadratic model puts the full step slightly outside."""
    m = _mdp(7)
    theta = _randn((m.num_states, m.num_actions), torch.Generator().manual_seed(7), 2.0)
    pi_old = T.softmax_policy(theta)
    d = T.state_distribution(m, pi_old)
    found = False
    for delta in (1e-4, 1e-3, 1e-2, 1e-1):
        res = T.exact_trpo_step(m, theta, delta)
        first = res.line_search.history[0]
        if first[3] == "kl > delta":
            found = True
            assert first[0] == 1.0 and first[2] > delta
            assert res.accepted and res.line_search.fraction < 1.0
            assert res.line_search.history[-1][3] == "accepted"
            assert float(T.mean_kl(pi_old, T.softmax_policy(res.theta), d)) <= delta
            # with no backtracking allowed the step is refused and θ is returned unchanged
            refused = T.exact_trpo_step(m, theta, delta, max_backtracks=0)
            assert not refused.accepted and torch.equal(refused.theta, theta)
            assert [h[3] for h in refused.line_search.history] == ["kl > delta"]
    assert found
    # at δ = 0.1 the KL is so curved that two fractions are rejected
    verdicts = [h[3] for h in T.exact_trpo_step(m, theta, 0.1).line_search.history]
    assert verdicts == ["kl > delta", "kl > delta", "accepted"]


def test_exact_trpo_step_at_a_stationary_point_does_nothing():
    """All actions identical: A ≡ 0, ∇J = 0, so there is no direction to step along."""
    base = T.random_mdp(3, 1, seed=4)
    P = base.P.expand(3, 2, 3).contiguous()
    R = base.R.expand(3, 2).contiguous()
    m = T.FiniteMDP(P, R, 0.9)
    theta = torch.tensor([[0.2, -0.1], [0.0, 0.5], [1.0, 0.0]], dtype=F64)
    res = T.exact_trpo_step(m, theta, 0.01)
    assert not res.accepted and torch.equal(res.theta, theta)
    assert res.line_search.history[0][3] == "zero search direction"


# --------------------------------------------------------------------------- TRPO Algorithm 1


def test_minorize_maximize_gives_monotone_j():
    for k in (1, 2, 3):
        m = _mdp(k, gamma=[0.7, 0.9, 0.8][k - 1])
        pi = T.softmax_policy(_randn((m.num_states, m.num_actions), torch.Generator().manual_seed(k), 1.0))
        J = float(T.objective(m, pi))
        for _ in range(20):
            res = T.minorize_maximize_step(m, pi)
            J_new = float(T.objective(m, res.pi_new))
            assert float(res.J_old) == pytest.approx(J, abs=1e-12)
            assert J_new >= float(res.M_new) - 1e-12  # the minoriser is below J
            assert float(res.M_new) > J  # a strict improvement of M away from the optimum
            assert J_new > J
            pi, J = res.pi_new, J_new


def test_minorize_maximize_step_is_the_maximiser():
    for k in range(6):
        m = _mdp(k, gamma=0.9)
        S, A = m.num_states, m.num_actions
        g = torch.Generator().manual_seed(k)
        pi = T.softmax_policy(_randn((S, A), g, 1.0))
        res = T.minorize_maximize_step(m, pi)
        M_star = float(res.M_new)
        assert M_star == pytest.approx(float(T.trpo_lower_bound(m, pi, res.pi_new)), abs=1e-12)
        # KKT: every visited state with a non-constant advantage sits on the KL boundary
        kl_s = T.kl(pi, res.pi_new)
        assert float((kl_s - res.kl_max).abs().max()) <= 1e-9 * float(res.kl_max)
        log_q = torch.log(res.pi_new)
        for sigma in (1e-4, 1e-3, 1e-2, 1e-1):
            for _ in range(25):
                other = T.softmax_policy(log_q + _randn((S, A), g, sigma))
                assert float(T.trpo_lower_bound(m, pi, other)) <= M_star + 1e-12


def test_minorize_maximize_special_cases_and_errors():
    m = _mdp(2, gamma=0.0)
    pi = T.random_policy(m, seed=0)
    res = T.minorize_maximize_step(m, pi)
    assert torch.equal(res.pi_new, T.greedy_policy(T.advantage(m, pi)))
    m = _mdp(2)
    pi = T.uniform_policy(m)
    pi[0] = 0.0
    pi[0, 0] = 1.0
    with pytest.raises(HarlMiniError, match=r"^pi: minorize_maximize_step needs a strictly positive policy"):
        T.minorize_maximize_step(m, pi)


# --------------------------------------------------------------------------- PPO


def test_ppo_objective_equals_the_surrogate_gain_inside_the_clip_and_is_below_it():
    below_somewhere = False
    for k in range(12):
        m = _mdp(k)
        S, A = m.num_states, m.num_actions
        g = torch.Generator().manual_seed(k)
        theta = _randn((S, A), g, 1.0)
        pi_old = T.softmax_policy(theta)
        J = T.objective(m, pi_old)
        scale = 1.0 - m.gamma  # ppo_objective is weighted by d = (1−γ)ρ
        for h in (1e-3, 1e-2, 0.3, 1.0, 3.0):
            pi_new = T.softmax_policy(theta + _randn((S, A), g, h))
            gain = T.surrogate(m, pi_old, pi_new) - J
            clipped = T.ppo_objective(m, pi_old, pi_new, 0.2)
            r = pi_new / pi_old
            if bool(((r - 1).abs() <= 0.2).all()):
                assert float((clipped / scale - gain).abs()) <= 1e-12
            assert float(clipped / scale - gain) <= 1e-12
            if float(clipped / scale - gain) < -1e-6:
                below_somewhere = True
            # without a clip it is exactly (1−γ)(L − J)
            assert float((T.ppo_objective(m, pi_old, pi_new, 1e9) / scale - gain).abs()) <= 1e-12
        # first order: the gradient at θ_old is (1−γ)∇J
        t = theta.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(T.ppo_objective(m, pi_old, T.softmax_policy(t), 0.2), t)
        assert float((grad / scale - T.policy_gradient(m, theta)).abs().max()) <= 1e-10
    assert below_somewhere


def test_ppo_objective_ignores_actions_the_old_policy_never_takes():
    m = _mdp(4)
    pi_old = T.random_policy(m, seed=2)
    pi_old[:, 0] = 0.0
    pi_old = pi_old / pi_old.sum(-1, keepdim=True)
    pi_new = T.random_policy(m, seed=3)
    out = T.ppo_objective(m, pi_old, pi_new, 0.2)
    assert bool(torch.isfinite(out))


def test_trpo_bad_inputs_raise_naming_the_argument():
    m = _mdp(3)
    pi = T.uniform_policy(m)
    bad = pi.clone()
    bad[1, 0] = -0.5
    bad[1, 1] += 0.5
    with pytest.raises(HarlMiniError, match=r"^pi_new: negative probability"):
        T.surrogate(m, pi, bad)
    with pytest.raises(HarlMiniError, match=r"^pi: negative probability"):
        T.sharp_bound(m, bad, pi)
    with pytest.raises(HarlMiniError, match=r"^pi_old: negative probability"):
        T.ppo_objective(m, bad, pi, 0.2)
    with pytest.raises(HarlMiniError, match=r"^clip_eps: expected a finite number >= 0"):
        T.ppo_objective(m, pi, pi, -0.1)
    theta = torch.zeros(m.num_states, m.num_actions, dtype=F64)
    with pytest.raises(HarlMiniError, match=r"^delta: "):
        T.exact_trpo_step(m, theta, 0.0)
    with pytest.raises(HarlMiniError, match=r"^delta: "):
        T.exact_trpo_step(m, theta, "0.01")
    with pytest.raises(HarlMiniError, match=r"^cg_iters: expected a positive integer"):
        T.exact_trpo_step(m, theta, 0.01, cg_iters=0)
    with pytest.raises(HarlMiniError, match=r"^backtrack_coeff: must lie in \(0, 1\)"):
        T.exact_trpo_step(m, theta + torch.eye(m.num_states, m.num_actions, dtype=F64), 0.01, backtrack_coeff=1.5)
    with pytest.raises(HarlMiniError, match=r"^theta: expected shape"):
        T.exact_trpo_step(m, theta[:, :1], 0.01)


# --------------------------------------------------------------------------- ε̃ bounds (issue 11)

import math  # noqa: E402


def _numpy_oracle(m, pi):
    """V, A, ρ and d of π from plain numpy linear algebra, independently of harl_mini.tabular."""
    import numpy as np

    P, R, g, rho0, p = m.P.numpy(), m.R.numpy(), m.gamma, m.rho0.numpy(), pi.numpy()
    P_pi = np.einsum("sa,sat->st", p, P)
    V = np.linalg.solve(np.eye(len(rho0)) - g * P_pi, (p * R).sum(-1))
    A = R + g * P @ V - V[:, None]
    rho = np.linalg.solve(np.eye(len(rho0)) - g * P_pi.T, rho0)
    return A, rho, (1 - g) * rho, float(rho0 @ V)


def test_eps_tilde_and_the_mean_bounds_match_an_independent_computation():
    """Each term of eq-mean-kl-bound and eq-cpi-bound recomputed with numpy: weights, constants, ε̃."""
    import numpy as np

    from harl_mini.tabular import trpo

    for k in range(8):
        m = _mdp(k)
        pi, q = T.random_policy(m, seed=k), T.random_policy(m, seed=100 + k)
        A, rho, d, J = _numpy_oracle(m, pi)
        p, qq, gam = pi.numpy(), q.numpy(), m.gamma
        eps_t = np.abs((qq * A).sum(-1)).max()
        L = J + (rho[:, None] * qq * A).sum()
        tv = 0.5 * np.abs(p - qq).sum(-1)
        kl = (p * np.log(p / qq)).sum(-1)
        scale = max(1.0, abs(L), eps_t / (1 - gam) ** 2)
        assert float(trpo.eps_tilde(m, pi, q)) == pytest.approx(eps_t, rel=1e-10)
        middle = L - 2 * gam * eps_t / (1 - gam) ** 2 * (d * tv).sum()
        assert float(trpo.mean_tv_lower_bound(m, pi, q)) == pytest.approx(middle, abs=1e-10 * scale)
        last = L - math.sqrt(2) * gam * eps_t / (1 - gam) ** 2 * math.sqrt((d * kl).sum())
        assert float(trpo.mean_kl_lower_bound(m, pi, q)) == pytest.approx(last, abs=1e-10 * scale)
        alpha = 0.3
        mix = (1 - alpha) * p + alpha * qq
        cpi = J + (rho[:, None] * mix * A).sum() - 2 * alpha**2 * gam * eps_t / ((1 - gam) * (1 - gam * (1 - alpha)))
        assert float(trpo.cpi_lower_bound(m, pi, q, alpha)) == pytest.approx(cpi, abs=1e-10 * scale)


def test_mean_kl_bound_on_random_pairs_touches_j_at_pi_and_is_second_order():
    from harl_mini.tabular import trpo

    n = 0
    for k in range(10):
        m = _mdp(k)
        g = torch.Generator().manual_seed(k)
        theta = _randn((m.num_states, m.num_actions), g, 1.5)
        pi = T.softmax_policy(theta)
        J0 = float(T.objective(m, pi))
        assert float(trpo.mean_kl_lower_bound(m, pi, pi)) == pytest.approx(J0, abs=1e-10)
        for scale in (0.05, 0.5, 2.0, 5.0):
            for _ in range(8):
                q = T.softmax_policy(theta + _randn(theta.shape, g, scale))
                J = float(T.objective(m, q))
                tol = 1e-10 * max(1.0, abs(J))
                tv_bound, kl_bound = float(trpo.mean_tv_lower_bound(m, pi, q)), float(trpo.mean_kl_lower_bound(m, pi, q))
                assert J >= tv_bound - tol and tv_bound >= kl_bound - tol
                n += 1
        # ε̃ and √D̄ both vanish linearly at π, so L − bound shrinks like t² along a direction
        w = _randn(theta.shape, g)
        gaps = [float(T.surrogate(m, pi, T.softmax_policy(theta + t * w))
                      - trpo.mean_kl_lower_bound(m, pi, T.softmax_policy(theta + t * w))) for t in (1e-2, 1e-3)]
        assert 50 < gaps[0] / gaps[1] < 200  # 100 for a quadratic, 10 for a linear penalty
    assert n == 320


def test_frozen_mean_kl_penalty_never_lets_the_bound_exceed_j_for_gamma_at_least_half():
    from harl_mini.tabular import trpo

    for k in range(6):
        m = _mdp(k, gamma=[0.5, 0.7, 0.95][k % 3])
        g = torch.Generator().manual_seed(k)
        theta = _randn((m.num_states, m.num_actions), g, 1.5)
        pi = T.softmax_policy(theta)
        d, J0 = T.state_distribution(m, pi), float(T.objective(m, pi))
        coef = math.sqrt(2) * m.gamma * float(T.advantage(m, pi).abs().max()) / (1 - m.gamma) ** 2
        for scale in (0.01, 0.3, 3.0):
            q = T.softmax_policy(theta + _randn(theta.shape, g, scale))
            frozen = float(T.surrogate(m, pi, q)) - coef * math.sqrt(float(T.mean_kl(pi, q, d)))
            assert frozen <= J0 + 1e-12
        # with the π̃-dependent ε̃ instead, a small natural-gradient step raises the bound above J(π)
        q = T.softmax_policy(theta + 1e-3 * T.natural_gradient(m, theta))
        assert float(trpo.mean_kl_lower_bound(m, pi, q)) > J0


def test_mean_kl_bound_edge_cases():
    from harl_mini.tabular import trpo

    m = _mdp(2)
    pi = T.random_policy(m, seed=0)
    drop = pi.clone()
    drop[:, 0] = 0.0
    drop = drop / drop.sum(-1, keepdim=True)
    assert float(trpo.mean_kl_lower_bound(m, pi, drop)) == -math.inf  # KL = ∞ and ε̃ > 0
    # ε̃ = 0 (here: q = π in every state with a finite KL is impossible, so use γ = 0 with a
    # constant advantage): the penalty is 0, never nan
    m0 = T.random_mdp(3, 2, gamma=0.5, seed=0)
    m0 = T.FiniteMDP(m0.P, torch.zeros_like(m0.R), 0.5, m0.rho0)  # all rewards 0 ⇒ A ≡ 0 ⇒ ε̃ = 0
    p0 = T.uniform_policy(m0)
    q0 = torch.tensor([[1.0, 0.0]] * 3, dtype=F64)
    out = float(trpo.mean_kl_lower_bound(m0, p0, q0))
    assert out == pytest.approx(float(T.surrogate(m0, p0, q0)), abs=1e-12) and math.isfinite(out)
    with pytest.raises(HarlMiniError, match=r"^alpha: expected a mixture weight in \[0, 1\]"):
        trpo.cpi_lower_bound(m, pi, drop, 1.5)
    with pytest.raises(HarlMiniError, match=r"^pi_target: "):
        trpo.cpi_lower_bound(m, pi, pi[:, :1], 0.5)


def test_cpi_bound_holds_for_mixtures_from_both_sides():
    from harl_mini.tabular import trpo

    for k in range(8):
        m = _mdp(k)
        g = torch.Generator().manual_seed(k)
        pi = T.softmax_policy(_randn((m.num_states, m.num_actions), g, 1.5))
        target = T.random_policy(m, seed=50 + k)
        for alpha in (0.0, 0.05, 0.3, 1.0):
            mix = (1 - alpha) * pi + alpha * target
            J, L = float(T.objective(m, mix)), float(T.surrogate(m, pi, mix))
            error = L - float(trpo.cpi_lower_bound(m, pi, target, alpha))
            assert abs(J - L) <= error + 1e-10 * max(1.0, abs(J))
            assert error <= 2 * float(trpo.eps_tilde(m, pi, target)) * m.gamma * alpha**2 / (1 - m.gamma) ** 2 + 1e-12


def test_exact_trpo_step_is_npg_with_the_step_size_set_by_delta():
    """Chapter 4, eq-trpo-npg: β = √(2δ/gᵀF⁺g) = (1−γ)√(2δ/E[A²]); the full step is npg_update(η=β)."""
    for k in range(6):
        m = _mdp(k, gamma=0.9)
        g = torch.Generator().manual_seed(k)
        theta = _randn((m.num_states, m.num_actions), g, 1.0)
        pi = T.softmax_policy(theta)
        d, adv = T.state_distribution(m, pi), T.advantage(m, pi)
        gFg = float((T.policy_gradient(m, theta) * T.natural_gradient(m, theta)).sum())
        for delta in (1e-3, 0.1):
            res = T.exact_trpo_step(m, theta, delta)
            assert res.beta == pytest.approx(math.sqrt(2 * delta / gFg), rel=1e-9)
            assert res.beta == pytest.approx((1 - m.gamma) * math.sqrt(2 * delta / float((d[:, None] * pi * adv**2).sum())), rel=1e-9)
            # compare policies: the logits may differ by per-state shifts that rounding can move.
            # CG stops at ‖Fs − g‖ ≤ 1e-10 ‖g‖, so s carries a relative error of ~1e-10·cond(F) on
            # F's range; the softmax is 1-Lipschitz, so probabilities move by ≲ β·1e-10·cond ≪ 1e-9.
            full = T.softmax_policy(theta + res.beta * res.direction)
            torch.testing.assert_close(full, T.softmax_policy(T.npg_update(theta, m, res.beta)), atol=1e-9, rtol=0)
