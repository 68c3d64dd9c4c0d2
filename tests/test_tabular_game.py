"""Oracle tests for harl_mini.tabular.game (Markov games, multi-agent Q and advantage).

The brute-force references below enumerate joint actions with itertools.product and
explicit loops, independently of the library's einsum/reshape code.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError
from harl_mini.tabular import game as G

F64 = torch.float64


def _brute_joint(game, pis):
    """Joint V [S] and Q as a dict {(s, a^1..a^N): value}, by loops and numpy."""
    P, R = game.P.numpy(), game.R.numpy()
    pis = [np.asarray(p, dtype=float) for p in pis]
    S, counts, gamma = game.num_states, game.action_counts, game.gamma
    joint = list(itertools.product(*(range(n) for n in counts)))

    def prob(s, a):
        return math.prod(pis[i][s, a[i]] for i in range(len(counts)))

    P_pi = np.zeros((S, S))
    r_pi = np.zeros(S)
    for s in range(S):
        for a in joint:
            w = prob(s, a)
            P_pi[s] += w * P[(s, *a)]
            r_pi[s] += w * R[(s, *a)]
    V = np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)
    Q = {(s, *a): R[(s, *a)] + gamma * float(P[(s, *a)] @ V) for s in range(S) for a in joint}
    return V, Q, prob


def _brute_ma_q(game, pis, agents):
    """Q^{agents}(s, a^{agents}) by summing over the complement's joint actions."""
    _, Q, _ = _brute_joint(game, pis)
    pis = [np.asarray(p, dtype=float) for p in pis]
    counts, N, S = game.action_counts, game.num_agents, game.num_states
    rest = [j for j in range(N) if j not in agents]
    out = np.zeros((S, *(counts[i] for i in agents)))
    for s in range(S):
        for a_sub in itertools.product(*(range(counts[i]) for i in agents)):
            total = 0.0
            for a_rest in itertools.product(*(range(counts[j]) for j in rest)):
                a = [0] * N
                for i, ai in zip(agents, a_sub):
                    a[i] = ai
                for j, aj in zip(rest, a_rest):
                    a[j] = aj
                w = math.prod(pis[j][s, a[j]] for j in rest)
                total += w * Q[(s, *a)]
            out[(s, *a_sub)] = total
    return out


def _random_ordered_subset(rng, N, exclude=()):
    pool = [i for i in range(N) if i not in exclude]
    m = int(rng.integers(0, len(pool) + 1))
    return tuple(int(i) for i in rng.permutation(pool)[:m])


GAMES = [
    ((2, 3, 2), 3, None),
    ((3, 2, 4), 4, 2),
    ((2, 3, 2, 2), 3, None),
    ((2, 2, 3, 2), 2, 1),
]


@pytest.mark.parametrize("idx", range(len(GAMES)))
def test_multi_agent_q_matches_brute_force(idx):
    counts, S, branching = GAMES[idx]
    game = T.random_game(S, counts, gamma=0.85, seed=idx, branching=branching, reward_range=(-1, 1))
    pis = T.random_policies(game, seed=10 + idx)
    rng = np.random.default_rng(idx)
    N = len(counts)
    subsets = {_random_ordered_subset(rng, N) for _ in range(8)} | {(), tuple(range(N))[::-1]}
    for agents in subsets:
        got = T.multi_agent_q(game, pis, agents)
        ref = _brute_ma_q(game, pis, agents)
        assert got.shape == ref.shape == (S, *(counts[i] for i in agents))
        np.testing.assert_allclose(got.numpy(), ref, atol=1e-11, err_msg=str(agents))


def test_special_subsets_empty_and_full():
    game = T.random_game(4, (2, 3, 2), seed=3)
    pis = T.random_policies(game, seed=4)
    V = T.game_value(game, pis)
    Q = T.game_q_value(game, pis)
    torch.testing.assert_close(T.multi_agent_q(game, pis, ()), V, rtol=0, atol=1e-12)
    torch.testing.assert_close(T.multi_agent_q(game, pis, (0, 1, 2)), Q, rtol=0, atol=1e-14)
    torch.testing.assert_close(T.multi_agent_q(game, pis, (2, 0, 1)), Q.permute(0, 3, 1, 2), rtol=0, atol=1e-14)
    # A^∅ = 0, with or without conditioning agents
    assert float(T.multi_agent_advantage(game, pis, ()).abs().max()) == 0.0
    assert float(T.multi_agent_advantage(game, pis, (), given=(1,)).abs().max()) == 0.0
    # joint advantage = A^{all}
    torch.testing.assert_close(
        T.multi_agent_advantage(game, pis, (0, 1, 2)), T.game_advantage(game, pis), rtol=0, atol=1e-12
    )
    # brute-force joint V and Q
    V_ref, Q_ref, _ = _brute_joint(game, pis)
    np.testing.assert_allclose(V.numpy(), V_ref, atol=1e-11)
    for key, q in Q_ref.items():
        assert abs(float(Q[key]) - q) < 1e-11


@pytest.mark.parametrize("idx", range(len(GAMES)))
def test_multi_agent_advantage_definition_and_zero_mean(idx):
    counts, S, branching = GAMES[idx]
    game = T.random_game(S, counts, gamma=0.9, seed=100 + idx, branching=branching)
    pis = T.random_policies(game, seed=idx)
    rng = np.random.default_rng(100 + idx)
    N = len(counts)
    for _ in range(6):
        given = _random_ordered_subset(rng, N)
        rest = [i for i in range(N) if i not in given]
        if not rest:
            continue
        i = int(rng.choice(rest))
        adv = T.multi_agent_advantage(game, pis, (i,), given=given)
        assert adv.shape == (S, *(counts[j] for j in given), counts[i])
        # definition: Q^{given, i} − Q^{given}
        big = _brute_ma_q(game, pis, given + (i,))
        small = _brute_ma_q(game, pis, given)
        np.testing.assert_allclose(adv.numpy(), big - small[..., None], atol=1e-11)
        # E_{a^i ∼ π^i} A^i(s, a^{given}, a^i) = 0
        pi_i = pis[i].reshape(S, *([1] * len(given)), counts[i])
        assert float((pi_i * adv).sum(-1).abs().max()) < 1e-12


def test_advantage_decomposition_lemma_1():
    """A^{i_{1:m}}(s, a^{i_{1:m}}) = Σ_j A^{i_j}(s, a^{i_{1:j-1}}, a^{i_j}) (Kuba et al., Lemma 1)."""
    game = T.random_game(3, (2, 3, 2, 2), seed=7)
    pis = T.random_policies(game, seed=8)
    rng = np.random.default_rng(0)
    for _ in range(5):
        order = tuple(int(i) for i in rng.permutation(4))
        lhs = T.multi_agent_advantage(game, pis, order)
        rhs = torch.zeros_like(lhs)
        for j in range(4):
            term = T.multi_agent_advantage(game, pis, (order[j],), given=order[:j])
            rhs = rhs + term.reshape(*term.shape, *([1] * (3 - j)))
        torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-12)


def test_all_multi_agent_q_matches_multi_agent_q():
    game = T.random_game(6, (3, 2, 2, 3), seed=1)
    pis = T.random_policies(game, seed=2)
    table = T.all_multi_agent_q(game, pis)
    N = 4
    expected_keys = {p for m in range(N + 1) for c in itertools.combinations(range(N), m) for p in itertools.permutations(c)}
    assert set(table) == expected_keys and len(table) == 65
    for key, q in table.items():
        torch.testing.assert_close(q, T.multi_agent_q(game, pis, key), rtol=0, atol=1e-13)


def test_one_agent_game_equals_finite_mdp():
    m = T.random_mdp(5, 3, gamma=0.9, seed=4, branching=2)
    rho0 = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.0], dtype=F64)
    m = T.FiniteMDP(m.P, m.R, m.gamma, rho0)
    game = T.MarkovGame(m.P, m.R, m.gamma, rho0)
    assert game.num_agents == 1 and game.action_counts == (3,)
    pi = T.random_policy(m, seed=1)
    torch.testing.assert_close(T.game_value(game, [pi]), T.value(m, pi))
    torch.testing.assert_close(T.game_q_value(game, [pi]), T.q_value(m, pi))
    torch.testing.assert_close(T.game_objective(game, [pi]), T.objective(m, pi))
    torch.testing.assert_close(T.game_visitation(game, [pi]), T.visitation(m, pi))
    torch.testing.assert_close(T.multi_agent_q(game, [pi], (0,)), T.q_value(m, pi))
    torch.testing.assert_close(T.multi_agent_advantage(game, [pi], (0,)), T.advantage(m, pi), rtol=0, atol=1e-12)


def test_joint_mdp_flattening_matches_joint_policy():
    counts = (2, 3, 4)
    game = T.random_game(3, counts, seed=5)
    jm = game.joint_mdp()
    assert jm is game.joint_mdp()  # cached
    assert jm.num_actions == 24 and game.num_joint_actions == 24
    pis = T.random_policies(game, seed=6)
    flat = T.flat_joint_policy(pis)
    joint = T.joint_policy(pis)
    assert joint.shape == (3, *counts) and flat.shape == (3, 24)
    for a in itertools.product(*(range(n) for n in counts)):
        k = int(np.ravel_multi_index(a, counts))  # C order
        for s in range(3):
            assert float(jm.P[s, k].sub(game.P[(s, *a)]).abs().max()) == 0.0
            assert float(jm.R[s, k]) == float(game.R[(s, *a)])
            expected = float(pis[0][s, a[0]] * pis[1][s, a[1]] * pis[2][s, a[2]])
            assert abs(float(joint[(s, *a)]) - expected) < 1e-15
            assert float(flat[s, k]) == float(joint[(s, *a)])
    torch.testing.assert_close(flat.sum(-1), torch.ones(3, dtype=F64))
    # joint quantities go through the joint MDP
    torch.testing.assert_close(T.game_value(game, pis), T.value(jm, flat))
    torch.testing.assert_close(T.game_objective(game, pis), game.rho0 @ T.game_value(game, pis))
    torch.testing.assert_close(T.game_visitation(game, pis), T.visitation(jm, flat))


def test_matrix_game_and_parameter_sharing_proposition_1():
    payoff = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64)
    game = T.matrix_game(payoff, name="coord")
    assert game.num_states == 1 and game.action_counts == (2, 2)
    p1 = torch.tensor([[0.3, 0.7]], dtype=F64)
    p2 = torch.tensor([[0.6, 0.4]], dtype=F64)
    expected = 0.3 * 0.6 * 1.0 + 0.7 * 0.4 * 2.0
    assert float(T.game_objective(game, [p1, p2])) == pytest.approx(expected, abs=1e-14)
    g9 = T.matrix_game(payoff, gamma=0.9)
    assert float(T.game_objective(g9, [p1, p2])) == pytest.approx(expected / 0.1, abs=1e-12)
    # Proposition 1 (theory §5c): n = 4, r = 1 on (0,0,1,1) and (1,1,0,0)
    n = 4
    r = torch.zeros((2,) * n, dtype=F64)
    r[0, 0, 1, 1] = r[1, 1, 0, 0] = 1.0
    game4 = T.matrix_game(r)
    half = [torch.tensor([[0.5, 0.5]], dtype=F64)] * n
    assert float(T.game_objective(game4, half)) == pytest.approx(2 / 2**n, abs=1e-15)
    det = [torch.tensor([[1.0, 0.0]], dtype=F64)] * 2 + [torch.tensor([[0.0, 1.0]], dtype=F64)] * 2
    assert float(T.game_objective(game4, det)) == pytest.approx(1.0, abs=1e-15)


def test_module_and_prefixed_names_are_the_same_functions():
    assert T.game_value is G.value and T.game_q_value is G.q_value and T.game_advantage is G.advantage
    assert T.game_objective is G.objective and T.game_visitation is G.visitation


def test_game_objective_is_differentiable():
    game = T.random_game(3, (2, 3), seed=0)
    logits = [torch.zeros(3, n, dtype=F64, requires_grad=True) for n in game.action_counts]
    J = T.game_objective(game, [torch.softmax(z, -1) for z in logits])
    grads = torch.autograd.grad(J, logits)
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    # the gradient of J in agent i's logits at s is ρ(s) π^i (A^i − E A^i) = ρ(s) π^i A^{i}(s, a^i)
    pis = [torch.softmax(z.detach(), -1) for z in logits]
    rho = T.game_visitation(game, pis)
    for i in range(2):
        adv_i = T.multi_agent_advantage(game, pis, (i,))
        torch.testing.assert_close(grads[i], rho[:, None] * pis[i] * adv_i, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("idx", range(len(GAMES)))
def test_coma_advantage_matches_loops_and_the_last_decomposition_term(idx):
    """COMA (Foerster et al. 2018): Q(s, a) − Σ_b π^i(b|s) Q(s, a^{-i}, b) = A^i_π(s, a^{-i}, a^i)."""
    counts, S, branching = GAMES[idx]
    game = T.random_game(S, counts, gamma=0.9, seed=idx, branching=branching, reward_range=(-1.0, 1.0))
    pis = T.random_policies(game, seed=20 + idx)
    _, Q, _ = _brute_joint(game, pis)
    pis_np = [np.asarray(p) for p in pis]
    N = game.num_agents
    for i in range(N):
        coma = G.coma_advantage(game, pis, i)
        assert tuple(coma.shape) == (S, *counts)
        for s in range(S):
            for a in itertools.product(*(range(n) for n in counts)):
                baseline = sum(pis_np[i][s, b] * Q[(s, *a[:i], b, *a[i + 1:])] for b in range(counts[i]))
                assert float(coma[(s, *a)]) == pytest.approx(Q[(s, *a)] - baseline, abs=1e-10)
        order = tuple(j for j in range(N) if j != i) + (i,)
        last = T.decomposition_terms(game, pis, order)[-1]
        axes = [0, *(1 + order.index(j) for j in range(N))]
        torch.testing.assert_close(last.permute(*axes), coma, rtol=0, atol=1e-10)


def test_coma_advantage_errors():
    game = T.random_game(2, (2, 3), seed=0)
    pis = T.random_policies(game, seed=0)
    with pytest.raises(HarlMiniError, match="agent: agent index 2 out of range"):
        G.coma_advantage(game, pis, 2)
    with pytest.raises(HarlMiniError, match="expected 2 policies"):
        G.coma_advantage(game, pis[:1], 0)
