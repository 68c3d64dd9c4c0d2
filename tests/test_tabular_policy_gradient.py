"""Tests for harl_mini.tabular.softmax: PG theorem, PDL, Fisher, NPG (AKLM §5)."""

from __future__ import annotations

import math

import pytest
import torch

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError

F64 = torch.float64


def _mdp(k: int, gamma=None):
    """The k-th of a fixed family of random MDPs: sizes, γ and sparsity vary with k."""
    S, A = 2 + k % 5, 2 + (k // 2) % 3
    gamma = [0.5, 0.8, 0.9, 0.95][k % 4] if gamma is None else gamma
    branching = None if k % 3 else min(2, S)
    return T.random_mdp(S, A, gamma=gamma, seed=100 + k, branching=branching)


def _theta(mdp, seed: int, scale: float = 1.5):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(mdp.num_states, mdp.num_actions, generator=g, dtype=F64)


def _unreachable_mdp():
    """Three states; ρ0 = δ_0, and no transition ever enters state 2."""
    P = torch.tensor(
        [
            [[0.3, 0.7, 0.0], [0.9, 0.1, 0.0]],
            [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]],
            [[0.2, 0.3, 0.5], [0.0, 0.0, 1.0]],
        ],
        dtype=F64,
    )
    R = torch.tensor([[0.1, 0.6], [0.9, 0.2], [0.0, 1.0]], dtype=F64)
    return T.FiniteMDP(P, R, 0.9, rho0=[1.0, 0.0, 0.0])


# --------------------------------------------------------------------------- softmax, PG


def test_softmax_policy_rows_shift_invariance_and_uniform_start():
    m = _mdp(3)
    theta = _theta(m, 0)
    pi = T.softmax_policy(theta)
    assert pi.dtype == F64 and bool((pi > 0).all())
    assert torch.allclose(pi.sum(-1), torch.ones(m.num_states, dtype=F64), atol=1e-15)
    shift = torch.randn(m.num_states, 1, dtype=F64)
    assert torch.allclose(T.softmax_policy(theta + shift), pi, atol=1e-15)
    assert torch.allclose(T.softmax_policy(torch.zeros_like(theta)), T.uniform_policy(m), atol=0)


def test_pg_theorem_matches_autograd_on_random_mdps():
    worst = 0.0
    for k in range(12):
        m = _mdp(k)
        for j in range(2):
            theta = _theta(m, 10 * k + j, scale=0.5 + 1.5 * j)
            t = theta.clone().requires_grad_(True)
            (auto,) = torch.autograd.grad(T.objective_from_logits(m, t), t)
            exact = T.policy_gradient(m, theta)
            assert exact.shape == (m.num_states, m.num_actions)
            worst = max(worst, float((exact - auto).abs().max()))
    assert worst <= 1e-8


def test_pg_theorem_general_q_form_and_convention_d():
    """∇J = Σ_s ρ(s) Σ_a ∇π(a|s) Q(s,a) (eq-pg-theorem), and = d π A/(1−γ) (AKLM Lemma C.1)."""
    for k in range(10):
        m = _mdp(k)
        theta = _theta(m, k)
        pi = T.softmax_policy(theta)
        rho, Q = T.visitation(m, pi), T.q_value(m, pi)
        t = theta.clone().requires_grad_(True)
        (q_form,) = torch.autograd.grad((rho.unsqueeze(-1) * T.softmax_policy(t) * Q).sum(), t)
        grad = T.policy_gradient(m, theta)
        assert float((q_form - grad).abs().max()) <= 1e-10
        d_form = T.state_distribution(m, pi).unsqueeze(-1) * pi * T.advantage(m, pi) / (1 - m.gamma)
        assert float((d_form - grad).abs().max()) <= 1e-10


def test_performance_difference_lemma_both_conventions():
    worst = 0.0
    wrong_roles = 0.0
    for k in range(15):
        m = _mdp(k)
        for j in range(3):
            pi = T.random_policy(m, seed=1000 + 7 * k + j, concentration=0.5 + j)
            pi_new = T.random_policy(m, seed=2000 + 7 * k + j, concentration=0.3 + j)
            diff = T.objective(m, pi_new) - T.objective(m, pi)
            u = T.performance_difference(m, pi, pi_new)
            n = T.performance_difference_normalised(m, pi, pi_new)
            worst = max(worst, float((diff - u).abs()), float((diff - n).abs()))
            # the old policy's visitation in place of the new one's is *not* the identity
            old_visits = (T.visitation(m, pi).unsqueeze(-1) * pi_new * T.advantage(m, pi)).sum()
            wrong_roles = max(wrong_roles, float((diff - old_visits).abs()))
    assert worst <= 1e-10
    assert wrong_roles > 1e-3


# --------------------------------------------------------------------------- Fisher


def _score_fisher(mdp, theta, w):
    """Σ_s w(s) Σ_a π(a|s) ∇log π(a|s) ∇log π(a|s)ᵀ, scores by autograd (independent of F's formula)."""
    S, A = theta.shape
    jac = torch.autograd.functional.jacobian(lambda th: torch.log_softmax(th, -1).reshape(-1), theta)
    jac = jac.reshape(S * A, S * A)  # row (s, a): ∇_θ log π(a|s)
    pi = T.softmax_policy(theta).reshape(-1)
    ws = w.repeat_interleave(A)
    return (jac.T * (ws * pi)) @ jac


def test_fisher_matrix_equals_expected_score_outer_product_and_kl_hessian():
    for k in range(8):
        m = _mdp(k)
        theta = _theta(m, 50 + k)
        pi = T.softmax_policy(theta)
        d = T.state_distribution(m, pi)
        F = T.fisher_matrix(m, theta)
        assert F.shape == (m.num_states * m.num_actions,) * 2
        assert float((F - _score_fisher(m, theta, d)).abs().max()) <= 1e-12
        # the Fisher under d is the Hessian of the mean KL at θ_old
        H = torch.autograd.functional.hessian(
            lambda th: T.mean_kl(pi, T.softmax_policy(th.reshape(theta.shape)), d), theta.reshape(-1)
        )
        assert float((F - H).abs().max()) <= 1e-10
        # custom weights, e.g. the unnormalised visitation
        rho = T.visitation(m, pi)
        assert float((T.fisher_matrix(m, theta, weights=rho) - _score_fisher(m, theta, rho)).abs().max()) <= 1e-12


def test_fisher_structure_null_space_and_psd():
    m = _mdp(7)
    S, A = m.num_states, m.num_actions
    theta = _theta(m, 3)
    F = T.fisher_matrix(m, theta)
    assert torch.allclose(F, F.T, atol=0)
    eig = torch.linalg.eigvalsh(F)
    assert float(eig.min()) >= -1e-15
    assert int((eig > 1e-12).sum()) == S * (A - 1)  # one null direction per state
    for s in range(S):
        ones_s = torch.zeros(S, A, dtype=F64)
        ones_s[s] = 1.0
        assert float((F @ ones_s.reshape(-1)).abs().max()) <= 1e-15
    # off-diagonal blocks vanish
    blocks = F.reshape(S, A, S, A)
    off = blocks.clone()
    for s in range(S):
        off[s, :, s, :] = 0
    assert float(off.abs().max()) == 0.0


def test_fisher_vector_product_matches_the_matrix():
    for k in range(6):
        m = _mdp(k)
        theta = _theta(m, k)
        g = torch.Generator().manual_seed(k)
        v = torch.randn(m.num_states * m.num_actions, generator=g, dtype=F64)
        w = torch.rand(m.num_states, generator=g, dtype=F64)
        for weights in (None, w):
            F = T.fisher_matrix(m, theta, weights=weights)
            Fv = T.fisher_vector_product(m, theta, v, weights=weights)
            assert Fv.shape == v.shape
            assert float((Fv - F @ v).abs().max()) <= 1e-14
            table = T.fisher_vector_product(m, theta, v.reshape(m.num_states, -1), weights=weights)
            assert torch.equal(table.reshape(-1), Fv)


# --------------------------------------------------------------------------- natural gradient, NPG


def test_natural_gradient_is_the_centred_advantage_over_one_minus_gamma():
    """F_d⁺ ∇J = (A − unweighted per-state mean of A)/(1−γ) (theory reference §3c)."""
    for k in range(10):
        m = _mdp(k)
        theta = _theta(m, 200 + k)
        adv = T.advantage(m, T.softmax_policy(theta))
        expected = (adv - adv.mean(-1, keepdim=True)) / (1 - m.gamma)
        for method in ("block", "pinv"):
            ng = T.natural_gradient(m, theta, method=method)
            assert float((ng - expected).abs().max()) <= 1e-8, method
        # and the pseudo-inverse of the explicit matrix, applied by hand
        F = T.fisher_matrix(m, theta)
        by_hand = torch.linalg.pinv(F, rtol=1e-12) @ T.policy_gradient(m, theta).reshape(-1)
        assert float((by_hand.reshape(adv.shape) - expected).abs().max()) <= 1e-8


def test_natural_gradient_on_an_mdp_with_an_unreachable_state():
    m = _unreachable_mdp()
    theta = torch.tensor([[0.3, -0.2], [1.0, 0.1], [-0.5, 0.4]], dtype=F64)
    pi = T.softmax_policy(theta)
    d = T.state_distribution(m, pi)
    assert float(d[2]) == 0.0 and bool((d[:2] > 0).all())
    adv = T.advantage(m, pi)
    expected = (adv - adv.mean(-1, keepdim=True)) / (1 - m.gamma)
    for method in ("block", "pinv"):
        ng = T.natural_gradient(m, theta, method=method)
        assert float((ng[:2] - expected[:2]).abs().max()) <= 1e-8
        assert float(ng[2].abs().max()) <= 1e-12  # minimum norm: nothing on the unreachable state
    assert float(expected[2].abs().max()) > 0.1  # so the check above is not vacuous


def test_npg_update_equals_multiplicative_weights():
    for k in range(10):
        m = _mdp(k)
        theta = _theta(m, 300 + k)
        pi = T.softmax_policy(theta)
        for eta in (0.01, 0.3, 2.0):
            closed = T.npg_multiplicative_weights(m, pi, eta)
            assert torch.allclose(closed.sum(-1), torch.ones(m.num_states, dtype=F64), atol=1e-14)
            for method in ("block", "pinv"):
                via_f = T.softmax_policy(T.npg_update(theta, m, eta, method=method))
                assert float((via_f - closed).abs().max()) <= 1e-8
    # the closed form keeps zeros and does not depend on ρ0
    m = _mdp(4)
    pi = T.random_policy(m, seed=1)
    pi[0] = torch.tensor([0.0, 1.0] + [0.0] * (m.num_actions - 2), dtype=F64)
    out = T.npg_multiplicative_weights(m, pi, 0.5)
    assert float(out[0, 0]) == 0.0 and bool(torch.isfinite(out).all())


def test_run_npg_block_and_pinv_agree_on_a_short_run():
    m = _mdp(5)
    a = T.run_npg(m, 0.5, 8)
    b = T.run_npg(m, 0.5, 8, method="pinv")
    assert float((a.pi - b.pi).abs().max()) <= 1e-8


@pytest.mark.parametrize("eta", [0.1, 1.0, 10.0])
def test_npg_lemma_5_2_statewise_improvement(eta):
    """V^{(t+1)}(s) − V^{(t)}(s) ≥ (1−γ)/η · log Z_t(s) ≥ 0 for every s and t (rewards in [0, 1])."""
    for k in range(4):
        m = _mdp(k, gamma=0.9)
        h = T.run_npg(m, eta, 60)
        assert h.V.shape == (61, m.num_states) and h.pi.shape == (61, m.num_states, m.num_actions)
        for t in range(60):
            pi = h.pi[t]
            adv = T.advantage(m, pi)
            log_z = torch.log((pi * torch.exp(eta * adv / (1 - m.gamma))).sum(-1))
            assert bool((log_z >= -1e-10).all())
            gain = h.V[t + 1] - h.V[t]
            assert bool((gain >= (1 - m.gamma) / eta * log_z - 1e-10).all()), (k, t)
            assert bool((gain >= -1e-12).all())


def test_npg_theorem_5_3_rate():
    """V*(ρ0) − V^{(T)}(ρ0) ≤ log|A|/(ηT) + 1/((1−γ)²T) for every T, from θ = 0."""
    n_steps = 80
    for k in range(5):
        m = _mdp(k, gamma=[0.7, 0.9][k % 2])
        v_star = float(m.rho0 @ T.optimal_value(m))
        Ts = torch.arange(1, n_steps + 1, dtype=F64)
        for eta in (0.05, 0.5, 5.0):
            h = T.run_npg(m, eta, n_steps)
            assert torch.allclose(h.J, h.V @ m.rho0, atol=1e-12)
            gap = v_star - h.J[1:]
            bound = math.log(m.num_actions) / (eta * Ts) + 1.0 / ((1 - m.gamma) ** 2 * Ts)
            assert bool((gap <= bound + 1e-12).all())
            assert bool((gap >= -1e-9).all())  # V* really is the optimum


def test_run_pg_is_monotone_with_the_smoothness_step_and_records_the_run():
    for k in range(4):
        m = _mdp(k, gamma=0.8)
        lr = (1 - m.gamma) ** 3 / 8
        h = T.run_pg(m, lr * 50, 30)  # a larger step still keeps J finite...
        assert bool(torch.isfinite(h.J).all())
        h = T.run_pg(m, lr, 30)  # ...but 1/β guarantees monotone J
        assert bool((h.J[1:] - h.J[:-1] >= -1e-13).all())
        assert float(h.J[-1] - h.J[0]) > 0
        assert torch.allclose(h.pi[0], T.uniform_policy(m), atol=0)
        for t in (0, 7, 30):
            assert torch.allclose(h.V[t], T.value(m, h.pi[t]), atol=1e-12)
        assert torch.allclose(T.softmax_policy(h.theta), h.pi[-1], atol=0)


# --------------------------------------------------------------------------- errors


def test_bad_inputs_raise_naming_the_argument():
    m = _mdp(2)
    S, A = m.num_states, m.num_actions
    theta = torch.zeros(S, A, dtype=F64)
    with pytest.raises(HarlMiniError, match=r"^theta: expected shape"):
        T.policy_gradient(m, torch.zeros(S, A + 1))
    with pytest.raises(HarlMiniError, match=r"^theta: contains nan"):
        T.objective_from_logits(m, torch.full((S, A), float("nan")))
    with pytest.raises(HarlMiniError, match=r"^mdp: expected a FiniteMDP"):
        T.policy_gradient("grid", theta)
    with pytest.raises(HarlMiniError, match=r"^weights: state weights must be non-negative"):
        T.fisher_matrix(m, theta, weights=-torch.ones(S))
    with pytest.raises(HarlMiniError, match=r"^weights: expected shape"):
        T.fisher_matrix(m, theta, weights=torch.ones(S + 1))
    with pytest.raises(HarlMiniError, match=r"^v: expected shape"):
        T.fisher_vector_product(m, theta, torch.ones(S * A + 1))
    with pytest.raises(HarlMiniError, match=r"^eta: expected a finite positive number"):
        T.npg_update(theta, m, 0.0)
    with pytest.raises(HarlMiniError, match=r"^eta: expected a finite positive number"):
        T.npg_multiplicative_weights(m, T.uniform_policy(m), -1.0)
    with pytest.raises(HarlMiniError, match=r"^lr: expected a finite positive number"):
        T.run_pg(m, float("inf"), 3)
    with pytest.raises(HarlMiniError, match=r"^T: expected a positive integer"):
        T.run_npg(m, 1.0, 0)
    with pytest.raises(HarlMiniError, match=r"unknown method 'svd'"):
        T.natural_gradient(m, theta, method="svd")
    bad = T.uniform_policy(m)
    bad[0, 0] += 0.5
    with pytest.raises(HarlMiniError, match=r"^pi_new: probabilities must sum to 1"):
        T.performance_difference(m, T.uniform_policy(m), bad)
    with pytest.raises(HarlMiniError, match=r"^pi: probabilities must sum to 1"):
        T.performance_difference_normalised(m, bad, T.uniform_policy(m))
