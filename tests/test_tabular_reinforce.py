"""Finite-horizon policy gradients of tabular softmax policies (Chapter 2): the REINFORCE
estimator, its exact mean over every episode (``all_trajectories``), the H-step objective, and
the direction a batch without the weights γ^t follows; plus the small generators the chapters
and exercises share (``random_logits``, ``with_unreachable_state``)."""

import pytest
import torch

from harl_mini import tabular as T
from harl_mini.errors import HarlMiniError

f64 = torch.float64


def _case(seed, S=3, A=2, gamma=0.8, branching=None):
    m = T.random_mdp(S, A, gamma=gamma, seed=seed, branching=branching)
    theta = T.random_logits(m, seed)
    return m, theta, T.softmax_policy(theta)


def test_random_logits_is_seeded_and_scaled():
    m = T.random_mdp(4, 3, seed=0)
    a, b = T.random_logits(m, 5), T.random_logits(m, 5)
    assert torch.equal(a, b) and a.dtype == f64 and a.shape == (4, 3)
    g = torch.Generator().manual_seed(5)
    assert torch.equal(T.random_logits(m, 5, scale=2.0), 2.0 * torch.randn(4, 3, generator=g, dtype=f64))
    with pytest.raises(HarlMiniError, match="scale"):
        T.random_logits(m, 0, scale=0.0)


@pytest.mark.parametrize("seed", range(3))
def test_all_trajectories_are_a_distribution_with_the_right_returns(seed):
    m, _, pi = _case(seed, branching=None if seed % 2 else 2)
    ep = T.all_trajectories(m, pi, 4)
    assert abs(float(ep.prob.sum()) - 1.0) < 1e-12 and bool((ep.prob > 0).all())
    assert ep.states.shape == (len(ep.prob), 5) and ep.actions.shape == ep.rewards.shape == (len(ep.prob), 4)
    # E[sum_t gamma^t r_t] over the enumeration = J_H; and the law of s_t is rho0 P_pi^t
    J_H = float(T.truncated_objective_from_logits(m, T.random_logits(m, seed), 4))
    assert abs(float(ep.prob @ ep.returns()) - J_H) < 1e-12
    P_pi, p_t = T.transition_matrix(m, pi), m.rho0
    for t in range(5):
        law = torch.zeros(3, dtype=f64).index_add_(0, ep.states[:, t], ep.prob)
        assert torch.allclose(law, p_t, atol=1e-13)
        p_t = p_t @ P_pi


def test_all_trajectories_refuses_too_many_episodes():
    m, _, pi = _case(0)
    with pytest.raises(HarlMiniError, match="horizon"):
        T.all_trajectories(m, pi, 12, max_episodes=1000)


def test_truncated_objective_converges_to_J_and_its_gradient_is_the_discounted_direction():
    m, theta, _ = _case(1, S=4, A=3, gamma=0.7)
    assert abs(float(T.truncated_objective_from_logits(m, theta, 200)) - float(T.objective_from_logits(m, theta))) < 1e-12
    for H in (1, 3, 10):
        th = theta.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(T.truncated_objective_from_logits(m, th, H), th)
        assert torch.allclose(grad, T.expected_reinforce_direction(m, theta, H), atol=1e-13)
    assert torch.allclose(T.expected_reinforce_direction(m, theta, 200), T.policy_gradient(m, theta), atol=1e-12)


@pytest.mark.parametrize("discount", [True, False])
def test_estimator_mean_over_every_episode_is_the_closed_form_for_any_baseline(discount):
    for seed in range(3):
        m, theta, pi = _case(seed, gamma=0.9)
        ep = T.all_trajectories(m, pi, 5)
        want = T.expected_reinforce_direction(m, theta, 5, discount_weights=discount)
        for b in (None, T.value(m, pi), torch.randn(3, generator=torch.Generator().manual_seed(seed), dtype=f64)):
            g = T.reinforce_estimates(pi, ep.states, ep.actions, ep.rewards, m.gamma, baseline=b,
                                      discount_weights=discount)
            assert g.shape == (len(ep.prob), 3, 2)
            assert torch.allclose((ep.prob[:, None, None] * g).sum(0), want, atol=1e-13)


def test_estimator_on_one_hand_made_episode():
    pi = torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=f64)
    states, actions = torch.tensor([[0, 1, 0]]), torch.tensor([[1, 0, 0]])
    rewards = torch.tensor([[1.0, 2.0, 4.0]], dtype=f64)
    gamma, b = 0.5, torch.tensor([1.0, -1.0], dtype=f64)
    G = [1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4.0]
    want = torch.zeros(2, 2, dtype=f64)
    for t, (s, a) in enumerate(zip([0, 1, 0], [1, 0, 0])):
        score = torch.nn.functional.one_hot(torch.tensor(a), 2).to(f64) - pi[s]
        want[s] += gamma**t * (G[t] - b[s]) * score
    got = T.reinforce_estimates(pi, states, actions, rewards, gamma, baseline=b)
    assert torch.allclose(got[0], want, atol=1e-15)


def test_undiscounted_direction_is_not_a_gradient():
    m, theta, _ = _case(2, S=3, A=2, gamma=0.8)
    for discount, symmetric in ((True, True), (False, False)):
        jac = torch.autograd.functional.jacobian(
            lambda th: T.expected_reinforce_direction(m, th, 20, discount_weights=discount), theta).reshape(6, 6)
        asym = float((jac - jac.T).abs().max() / jac.abs().max())
        assert (asym < 1e-12) == symmetric, asym


def test_reinforce_estimates_rejects_bad_shapes():
    pi = torch.full((2, 2), 0.5, dtype=f64)
    with pytest.raises(HarlMiniError, match="actions"):
        T.reinforce_estimates(pi, torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long),
                              torch.zeros(1, 3, dtype=f64), 0.9)
    with pytest.raises(HarlMiniError, match="baseline"):
        T.reinforce_estimates(pi, torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long),
                              torch.zeros(1, 3, dtype=f64), 0.9, baseline=torch.zeros(3))


def test_with_unreachable_state():
    for seed in range(4):
        base = T.random_mdp(5, 3, seed=seed, branching=None if seed % 2 else 1)
        m = T.with_unreachable_state(base)
        assert torch.equal(m.R, base.R) and m.gamma == base.gamma and float(m.rho0[0]) == 1.0
        assert float(m.P[:, :, -1][:-1].abs().max()) == 0.0
        pi = T.random_policy(m, seed=seed)
        assert float(T.state_distribution(m, pi)[-1]) == 0.0
    with pytest.raises(HarlMiniError, match="at least 2 states"):
        T.with_unreachable_state(T.random_mdp(1, 2, seed=0))


def _least_squares(pi, rho, Q):
    """Min-norm weighted least squares over the compatible features, one row per (s, a)."""
    S, A = pi.shape
    psi = torch.zeros(S * A, S * A, dtype=f64)
    for s in range(S):
        for a in range(A):
            psi[s * A + a, s * A:(s + 1) * A] = torch.eye(A, dtype=f64)[a] - pi[s]
    sqrt_w = (rho[:, None] * pi).reshape(-1).sqrt()
    return (torch.linalg.pinv(sqrt_w[:, None] * psi, rtol=1e-12) @ (sqrt_w * Q.reshape(-1))).reshape(S, A)


def test_compatible_weights_are_the_min_norm_least_squares_fit_for_any_target():
    for seed in range(4):
        m, theta, pi = _case(seed, S=4, A=3, gamma=0.8)
        g = torch.Generator().manual_seed(seed)
        rho = torch.rand(4, generator=g, dtype=f64)
        rho[seed % 4] = 0.0  # one state does not count
        Q = 3 * torch.randn(4, 3, generator=g, dtype=f64)
        w = T.compatible_weights(pi, rho, Q)
        assert torch.allclose(w, _least_squares(pi, rho, Q), atol=1e-9)
        err = T.compatible_error(pi, rho, Q, w)
        assert torch.allclose(err, rho * ((pi * Q).sum(-1)) ** 2, atol=1e-12)  # residual = -<pi, Q>
        bump = 0.1 * torch.randn(4, 3, generator=g, dtype=f64)
        assert float(T.compatible_error(pi, rho, Q, w + bump).sum()) >= float(err.sum())
        # the theorem: Q = Q_pi, rho = rho_pi gives (1 - gamma) F^+ grad J
        w_pi = T.compatible_weights(pi, T.visitation(m, pi), T.q_value(m, pi))
        assert torch.allclose(w_pi, (1 - m.gamma) * T.natural_gradient(m, theta), atol=1e-10)


def test_compatible_inputs_are_checked():
    pi = torch.full((2, 2), 0.5, dtype=f64)
    with pytest.raises(HarlMiniError, match="weights"):
        T.compatible_weights(pi, torch.tensor([1.0, -1.0], dtype=f64), torch.zeros(2, 2))
    with pytest.raises(HarlMiniError, match="Q"):
        T.compatible_weights(pi, torch.ones(2, dtype=f64), torch.zeros(3, 2))
