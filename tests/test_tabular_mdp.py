"""Oracle tests for harl_mini.tabular.mdp, generators and sampling (single agent).

Reference values are recomputed here independently (numpy, explicit loops, brute force
over deterministic policies), so each assertion can fail if the library is wrong.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import harl_mini.tabular as T

F64 = torch.float64


def _instances(n_dense=12, n_sparse=12, seed0=0):
    """A mix of dense and sparse random MDPs of varied size and discount."""
    rng = np.random.default_rng(seed0)
    out = []
    for k in range(n_dense + n_sparse):
        S = int(rng.integers(2, 30))
        A = int(rng.integers(1, 6))
        gamma = float(rng.choice([0.0, 0.5, 0.9, 0.99]))
        branching = None if k < n_dense else int(rng.integers(1, S + 1))
        out.append(T.random_mdp(S, A, gamma=gamma, seed=seed0 + k, branching=branching, reward_range=(-1.0, 2.0)))
    return out


def _np_value(P, R, gamma, pi):
    """V^π by numpy, written from the definition with explicit sums."""
    P, R, pi = (np.asarray(x, dtype=float) for x in (P, R, pi))
    S, A, _ = P.shape
    P_pi = np.zeros((S, S))
    r_pi = np.zeros(S)
    for s in range(S):
        for a in range(A):
            P_pi[s] += pi[s, a] * P[s, a]
            r_pi[s] += pi[s, a] * R[s, a]
    return np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi), P_pi, r_pi


# --------------------------------------------------------------------------- evaluation


def test_value_has_tiny_bellman_residual_on_many_random_mdps():
    mdps = _instances()
    assert len(mdps) >= 20
    for k, m in enumerate(mdps):
        pi = T.random_policy(m, seed=100 + k, concentration=0.7)
        V = T.value(m, pi)
        assert V.dtype == F64 and V.shape == (m.num_states,)
        scale = max(1.0, float(V.abs().max()))
        assert T.bellman_residual(m, V, pi) < 1e-10 * scale, m
        # and against an independent numpy computation
        V_np, _, _ = _np_value(m.P, m.R, m.gamma, pi)
        np.testing.assert_allclose(V.numpy(), V_np, rtol=1e-10, atol=1e-10)


def test_sparse_generator_has_exact_branching_and_seeds_are_reproducible():
    m = T.random_mdp(12, 3, seed=7, branching=4)
    nnz = (m.P > 0).sum(-1)
    assert bool((nnz == 4).all())
    m2 = T.random_mdp(12, 3, seed=7, branching=4)
    assert torch.equal(m.P, m2.P) and torch.equal(m.R, m2.R)
    m3 = T.random_mdp(12, 3, seed=8, branching=4)
    assert not torch.equal(m.P, m3.P)
    dense = T.random_mdp(6, 2, seed=1)
    assert bool((dense.P > 0).all())
    torch.testing.assert_close(dense.P.sum(-1), torch.ones(6, 2, dtype=F64), rtol=0, atol=1e-12)
    lo, hi = -2.0, 3.0
    m4 = T.random_mdp(20, 4, seed=3, reward_range=(lo, hi))
    assert float(m4.R.min()) >= lo and float(m4.R.max()) <= hi


def test_random_policy_is_reproducible_and_concentration_matters():
    m = T.random_mdp(50, 4, seed=0)
    a = T.random_policy(m, seed=3)
    assert torch.equal(a, T.random_policy(m, seed=3))
    assert not torch.equal(a, T.random_policy(m, seed=4))
    torch.testing.assert_close(a.sum(-1), torch.ones(50, dtype=F64), rtol=0, atol=1e-12)
    peaked = T.random_policy(m, seed=3, concentration=0.05)
    flat = T.random_policy(m, seed=3, concentration=50.0)
    assert float(peaked.max(-1).values.mean()) > 0.8
    assert float(flat.max(-1).values.mean()) < 0.45


def test_q_from_v_matches_explicit_loops_and_advantage_identity():
    for k, m in enumerate(_instances(4, 4, seed0=50)):
        pi = T.random_policy(m, seed=k)
        V = T.value(m, pi)
        Q = T.q_from_v(m, V)
        P, R = m.P.numpy(), m.R.numpy()
        for s in range(m.num_states):
            for a in range(m.num_actions):
                expected = R[s, a] + m.gamma * sum(P[s, a, t] * float(V[t]) for t in range(m.num_states))
                assert abs(float(Q[s, a]) - expected) < 1e-10
        torch.testing.assert_close(T.q_value(m, pi), Q, rtol=0, atol=1e-12)
        adv = T.advantage(m, pi)
        torch.testing.assert_close(adv, Q - V[:, None], rtol=0, atol=1e-12)
        # Σ_a π(a|s) A^π(s, a) = 0 and Σ_a π Q = V
        assert float((pi * adv).sum(-1).abs().max()) < 1e-10
        torch.testing.assert_close((pi * Q).sum(-1), V, rtol=0, atol=1e-10)


def test_transition_matrix_and_expected_reward():
    m = T.random_mdp(7, 3, seed=11, branching=3)
    pi = T.random_policy(m, seed=2)
    _, P_pi, r_pi = _np_value(m.P, m.R, m.gamma, pi)
    np.testing.assert_allclose(T.transition_matrix(m, pi).numpy(), P_pi, atol=1e-14)
    np.testing.assert_allclose(T.expected_reward(m, pi).numpy(), r_pi, atol=1e-14)


def test_state_reward_form_is_broadcast():
    P = T.random_mdp(4, 3, seed=0).P
    R_s = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=F64)
    m = T.FiniteMDP(P, R_s, 0.9)
    assert m.R.shape == (4, 3)
    torch.testing.assert_close(m.R, R_s[:, None].expand(4, 3))
    # with state rewards, V^π(s) = R(s) + γ Σ P_π V, whatever π
    pi = T.uniform_policy(m)
    V = T.value(m, pi)
    torch.testing.assert_close(V, R_s + 0.9 * T.transition_matrix(m, pi) @ V, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- visitation


def test_visitation_mass_balance_and_objective():
    for k, m in enumerate(_instances(6, 6, seed0=200)):
        if m.gamma == 0.0:
            continue
        rho0 = np.random.default_rng(k).dirichlet(np.ones(m.num_states))  # a random ρ0
        m = T.FiniteMDP(m.P, m.R, m.gamma, rho0)
        pi = T.random_policy(m, seed=k)
        rho = T.visitation(m, pi)
        assert abs(float(rho.sum()) - 1.0 / (1.0 - m.gamma)) < 1e-9 / (1.0 - m.gamma)
        assert bool((rho >= -1e-12).all())
        P_pi = T.transition_matrix(m, pi)
        torch.testing.assert_close(rho, m.rho0 + m.gamma * P_pi.T @ rho, rtol=0, atol=1e-9)
        J = T.objective(m, pi)
        assert J.dim() == 0
        r_pi = T.expected_reward(m, pi)
        assert abs(float(J) - float(rho @ r_pi)) < 1e-9
        assert abs(float(J) - float(m.rho0 @ T.value(m, pi))) < 1e-12
        d = T.state_distribution(m, pi)
        assert abs(float(d.sum()) - 1.0) < 1e-10
        torch.testing.assert_close(d, (1 - m.gamma) * rho)


def test_visitation_equals_truncated_power_series():
    m = T.random_mdp(6, 3, gamma=0.8, seed=4)
    pi = T.random_policy(m, seed=5)
    P_pi = T.transition_matrix(m, pi).numpy()
    rho_t = m.rho0.numpy().copy()
    total = np.zeros(6)
    for t in range(400):  # 0.8^400 ~ 1e-39
        total += 0.8**t * rho_t
        rho_t = rho_t @ P_pi
    np.testing.assert_allclose(T.visitation(m, pi).numpy(), total, atol=1e-12)


def test_performance_difference_lemma():
    """J(π̃) − J(π) = Σ_s ρ_π̃(s) Σ_a π̃(a|s) A_π(s, a) (theory §1a)."""
    for k, m in enumerate(_instances(5, 5, seed0=300)):
        pi, pi_new = T.random_policy(m, seed=k), T.random_policy(m, seed=1000 + k)
        lhs = T.objective(m, pi_new) - T.objective(m, pi)
        rhs = T.visitation(m, pi_new) @ (pi_new * T.advantage(m, pi)).sum(-1)
        assert abs(float(lhs - rhs)) < 1e-9


def test_objective_is_differentiable_and_matches_finite_differences():
    m = T.random_mdp(5, 3, gamma=0.9, seed=9)
    theta = torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(0), requires_grad=True)

    def J(th):
        return T.objective(m, torch.softmax(th, -1))

    (grad,) = torch.autograd.grad(J(theta), theta)
    eps = 1e-6
    fd = torch.zeros_like(grad)
    with torch.no_grad():
        for i in range(5):
            for j in range(3):
                e = torch.zeros(5, 3, dtype=F64)
                e[i, j] = eps
                fd[i, j] = (J(theta + e) - J(theta - e)) / (2 * eps)
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-8)
    assert float(grad.abs().sum()) > 0


# --------------------------------------------------------------------------- operators


def test_bellman_operators_are_gamma_contractions():
    g = torch.Generator().manual_seed(1)
    for k, m in enumerate(_instances(5, 5, seed0=400)):
        pi = T.random_policy(m, seed=k)
        for _ in range(5):
            V = 10 * torch.randn(m.num_states, dtype=F64, generator=g)
            W = 10 * torch.randn(m.num_states, dtype=F64, generator=g)
            dist = float((V - W).abs().max())
            d_opt = float((T.bellman_optimality_backup(m, V) - T.bellman_optimality_backup(m, W)).abs().max())
            d_pi = float(
                (T.bellman_expectation_backup(m, pi, V) - T.bellman_expectation_backup(m, pi, W)).abs().max()
            )
            assert d_opt <= m.gamma * dist + 1e-12
            assert d_pi <= m.gamma * dist + 1e-12


def test_backups_match_loops():
    m = T.random_mdp(4, 3, seed=12, gamma=0.7)
    pi = T.random_policy(m, seed=1)
    V = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=F64)
    P, R = m.P.numpy(), m.R.numpy()
    for s in range(4):
        qs = [R[s, a] + 0.7 * sum(P[s, a, t] * float(V[t]) for t in range(4)) for a in range(3)]
        assert abs(float(T.bellman_optimality_backup(m, V)[s]) - max(qs)) < 1e-12
        expected = sum(float(pi[s, a]) * qs[a] for a in range(3))
        assert abs(float(T.bellman_expectation_backup(m, pi, V)[s]) - expected) < 1e-12
    TV = T.bellman_optimality_backup(m, V)
    assert T.bellman_residual(m, V) == pytest.approx(float((TV - V).abs().max()), abs=1e-15)


def test_greedy_policy_is_one_hot_with_ties_to_lowest_index():
    Q = torch.tensor([[1.0, 3.0, 3.0], [5.0, 5.0, 5.0], [0.0, -1.0, 2.0]], dtype=F64)
    pi = T.greedy_policy(Q)
    expected = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=F64)
    assert torch.equal(pi, expected)
    assert pi.dtype == F64


# --------------------------------------------------------------------------- control


def _brute_force(m):
    """Values of every deterministic policy, computed with numpy."""
    S, A = m.num_states, m.num_actions
    Vs, Js = [], []
    for actions in itertools.product(range(A), repeat=S):
        pi = np.zeros((S, A))
        pi[np.arange(S), actions] = 1.0
        V, _, _ = _np_value(m.P, m.R, m.gamma, pi)
        Vs.append(V)
        Js.append(float(m.rho0.numpy() @ V))
    return np.array(Vs), np.array(Js)


@pytest.mark.parametrize("k", range(12))
def test_value_and_policy_iteration_agree_with_brute_force(k):
    rng = np.random.default_rng(k)
    S, A = int(rng.integers(3, 5)), int(rng.integers(2, 4))
    gamma = float(rng.choice([0.5, 0.8, 0.9]))
    branching = None if k % 2 == 0 else 2
    m = T.random_mdp(S, A, gamma=gamma, seed=500 + k, branching=branching, reward_range=(-1, 1))
    vi = T.value_iteration(m, tol=1e-12)
    pit = T.policy_iteration(m)
    assert vi.converged and pit.converged
    torch.testing.assert_close(vi.V, pit.V, rtol=0, atol=1e-8)
    Vs, Js = _brute_force(m)
    V_star = Vs.max(0)  # statewise maximum over all |A|^|S| deterministic policies
    np.testing.assert_allclose(pit.V.numpy(), V_star, atol=1e-10)
    np.testing.assert_allclose(vi.V.numpy(), V_star, atol=1e-8)
    assert abs(float(m.rho0 @ pit.V) - Js.max()) < 1e-10
    # the returned policies are optimal, and greedy on Q* is optimal
    for pi in (vi.pi, pit.pi, T.greedy_policy(T.q_from_v(m, torch.as_tensor(V_star)))):
        np.testing.assert_allclose(T.value(m, pi).numpy(), V_star, atol=1e-8)
    torch.testing.assert_close(T.optimal_value(m), pit.V)
    assert vi.residual < 1e-10


def test_value_iteration_history_and_error_bound():
    m = T.random_mdp(8, 3, gamma=0.9, seed=1)
    V_star = T.optimal_value(m)
    V0 = torch.full((8,), 5.0, dtype=F64)
    vi = T.value_iteration(m, tol=1e-6, V0=V0, record=True)
    assert vi.history.shape == (vi.iterations + 1, 8)
    assert torch.equal(vi.history[0], V0)
    torch.testing.assert_close(vi.history[-1], vi.V)
    errs = (vi.history - V_star).abs().max(-1).values
    # ‖V_k − V*‖ ≤ γ^k ‖V_0 − V*‖ (contraction), and the stopping bound γ tol/(1−γ)
    for k in range(len(errs)):
        assert float(errs[k]) <= 0.9**k * float(errs[0]) + 1e-12
    assert float(errs[-1]) <= 0.9 * 1e-6 / 0.1 + 1e-12
    capped = T.value_iteration(m, tol=0.0, max_iter=3)
    assert capped.iterations == 3 and not capped.converged and capped.history is None


def test_policy_iteration_from_a_given_policy_and_monotone_improvement():
    m = T.random_mdp(10, 4, gamma=0.95, seed=3, branching=3)
    pi = T.random_policy(m, seed=0)
    last = T.value(m, pi)
    for _ in range(30):
        new = T.greedy_policy(T.q_value(m, pi))
        V = T.value(m, new)
        assert bool((V >= last - 1e-10).all())  # policy improvement theorem
        last, pi = V, new
    res = T.policy_iteration(m, pi0=T.random_policy(m, seed=0))
    torch.testing.assert_close(res.V, last, rtol=0, atol=1e-9)
    assert bool(((res.pi == 0) | (res.pi == 1)).all())


# --------------------------------------------------------------------------- generators


def test_gridworld_4x3():
    gw = T.gridworld()
    m = gw.mdp
    assert m.num_states == 12 and m.num_actions == 4  # 11 cells + end state
    assert gw.layout == T.GRIDWORLDS["4x3"]
    assert gw.cells[gw.start] == (2, 0)
    assert float(m.rho0[gw.start]) == 1.0
    goal = gw.cells.index((0, 3))
    pit = gw.cells.index((1, 3))
    res = T.policy_iteration(m)
    assert float(res.V[goal]) == pytest.approx(1.0, abs=1e-12)
    assert float(res.V[pit]) == pytest.approx(-1.0, abs=1e-12)
    assert float(res.V[gw.end]) == 0.0
    # the top row walks east to the goal
    assert [gw.actions[int(res.pi[gw.cells.index((0, c))].argmax())] for c in range(3)] == ["E", "E", "E"]
    grid = gw.to_grid(res.V)
    assert grid.shape == (3, 4) and np.isnan(grid[1, 1]) and np.isfinite(grid).sum() == 11
    arrows = gw.policy_grid(res.pi)
    assert arrows[0] == "→→→+" and arrows[1][1] == "#"
    # slip: from (2,0) going N: 0.8 up to (1,0), 0.1 east to (2,1), 0.1 west bumps (stays)
    s = gw.start
    P = m.P[s, gw.actions.index("N")]
    assert float(P[gw.cells.index((1, 0))]) == pytest.approx(0.8)
    assert float(P[gw.cells.index((2, 1))]) == pytest.approx(0.1)
    assert float(P[s]) == pytest.approx(0.1)


def test_cliff_gridworld_and_deterministic_case():
    gw = T.gridworld("cliff-5x5", slip=0.0, step_reward=-0.01, gamma=0.99)
    res = T.policy_iteration(gw.mdp)
    # with no slip, the path hugging the cliff is shortest: up one, east 4, down one = 6 steps
    expected = sum(-0.01 * 0.99**t for t in range(6)) + 0.99**6 * 1.0
    assert float(res.V[gw.start]) == pytest.approx(expected, abs=1e-10)
    assert gw.actions[int(res.pi[gw.start].argmax())] == "N"


def test_chain_mdp_optimal_policy_goes_forward():
    m = T.chain_mdp()
    assert m.num_states == 5 and m.num_actions == 2
    res = T.policy_iteration(m)
    assert bool((res.pi[:, 1] == 1).all())
    back = torch.tensor([[1.0, 0.0]] * 5, dtype=F64)
    assert float(T.value(m, back)[0]) < float(res.V[0])
    # a myopic agent (γ = 0) prefers "back" in the first state
    assert int(T.policy_iteration(T.chain_mdp(gamma=0.0)).pi[0].argmax()) == 0


def test_make_mdp_registry():
    assert set(T.MDPS) >= {"random", "gridworld", "chain"}
    sizes = {"random": {"num_states": 3, "num_actions": 2}}
    for name in T.MDPS:
        assert isinstance(T.make_mdp(name, **sizes.get(name, {})), T.FiniteMDP)
    m = T.make_mdp("random", num_states=4, num_actions=2, seed=5)
    assert torch.equal(m.P, T.random_mdp(4, 2, seed=5).P)
    assert T.make_mdp("gridworld", layout="cliff-5x5").num_states == 24


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("k", range(3))
def test_sample_returns_mean_matches_objective(k):
    branching = None if k != 1 else 2
    m = T.random_mdp(5, 3, gamma=0.8, seed=600 + k, branching=branching, reward_range=(-1, 1))
    pi = T.random_policy(m, seed=k)
    n = 20_000
    G = T.sample_returns(m, pi, n, seed=k)
    assert G.shape == (n,) and G.dtype == F64
    se = float(G.std()) / n**0.5
    assert abs(float(G.mean()) - float(T.objective(m, pi))) < 4 * se
    s0 = k % 5
    G0 = T.sample_returns(m, pi, n, seed=10 + k, start_state=s0)
    se0 = float(G0.std()) / n**0.5
    assert abs(float(G0.mean()) - float(T.value(m, pi)[s0])) < 4 * se0
    assert torch.equal(G, T.sample_returns(m, pi, n, seed=k))


def test_sample_returns_respects_zero_probabilities_and_horizon():
    gw = T.gridworld(slip=0.0)
    # deterministic world + deterministic policy: every return is the same number
    res = T.policy_iteration(gw.mdp)
    G = T.sample_returns(gw.mdp, res.pi, 100, seed=0)
    assert float(G.std()) < 1e-12
    assert float(G[0]) == pytest.approx(float(res.V[gw.start]), abs=1e-6)
    H = T.default_horizon(gw.mdp)
    assert 0.95**H * 1.0 / 0.05 < 1e-6 <= 0.95 ** (H - 1) / 0.05
    tr = T.sample_trajectories(gw.mdp, res.pi, 10, horizon=12, seed=0)
    assert tr.states.shape == (10, 13) and tr.actions.shape == (10, 12)
    assert bool((tr.states[:, 0] == gw.start).all())
    assert float(tr.returns()[0]) == pytest.approx(float(res.V[gw.start]), abs=1e-12)


# --------------------------------------------------------------------------- Q*


def _np_q_star(m, iters=2000):
    """Q* by iterating the Q backup in numpy, written from the definition with loops."""
    P, R = m.P.numpy(), m.R.numpy()
    S, A, _ = P.shape
    Q = np.zeros((S, A))
    for _ in range(iters):
        best = Q.max(1)
        Q = np.array([[R[s, a] + m.gamma * sum(P[s, a, t] * best[t] for t in range(S)) for a in range(A)]
                      for s in range(S)])
    return Q


@pytest.mark.parametrize("k", range(4))
def test_optimal_q_value_solves_its_bellman_equation_and_beats_every_policy(k):
    m = T.random_mdp(4, 3, gamma=0.8, seed=700 + k, branching=None if k % 2 else 2, reward_range=(-1, 1))
    Q_star = T.optimal_q_value(m)
    assert Q_star.shape == (4, 3) and Q_star.dtype == F64
    # independent numpy fixed-point iteration (0.8^2000 is far below round-off)
    np.testing.assert_allclose(Q_star.numpy(), _np_q_star(m, 200), atol=1e-12)
    assert float((T.bellman_optimality_backup_q(m, Q_star) - Q_star).abs().max()) < 1e-12
    torch.testing.assert_close(Q_star.max(-1).values, T.optimal_value(m), rtol=0, atol=1e-12)
    # pairwise maximum of Q_pi over all deterministic policies
    best = None
    for actions in itertools.product(range(3), repeat=4):
        pi = torch.zeros(4, 3, dtype=F64)
        pi[torch.arange(4), torch.tensor(actions)] = 1.0
        Q = T.q_value(m, pi)
        best = Q if best is None else torch.maximum(best, Q)
    torch.testing.assert_close(best, Q_star, rtol=0, atol=1e-10)


def test_bellman_optimality_backup_q_matches_loops_and_contracts():
    m = T.random_mdp(4, 3, seed=12, gamma=0.7)
    g = torch.Generator().manual_seed(3)
    Q = torch.randn(4, 3, generator=g, dtype=F64)
    W = torch.randn(4, 3, generator=g, dtype=F64)
    P, R = m.P.numpy(), m.R.numpy()
    TQ = T.bellman_optimality_backup_q(m, Q)
    for s in range(4):
        for a in range(3):
            expected = R[s, a] + 0.7 * sum(P[s, a, t] * float(Q[t].max()) for t in range(4))
            assert abs(float(TQ[s, a]) - expected) < 1e-12
    gap = float((Q - W).abs().max())
    assert float((TQ - T.bellman_optimality_backup_q(m, W)).abs().max()) <= 0.7 * gap + 1e-12
    with pytest.raises(T.mdp.HarlMiniError, match="Q"):
        T.bellman_optimality_backup_q(m, torch.zeros(3, 3))


def test_value_iteration_stops_within_the_contraction_bound_on_iterations():
    import math

    for k in range(6):
        m = T.random_mdp(10, 3, gamma=(0.5, 0.9, 0.99)[k % 3], seed=800 + k)
        vi = T.value_iteration(m, tol=1e-9)
        step1 = float(T.bellman_optimality_backup(m, torch.zeros(10, dtype=F64)).abs().max())
        K_max = 1 + math.ceil(math.log(1e-9 / step1) / math.log(m.gamma) + 1e-9)
        assert vi.converged and vi.iterations <= K_max
