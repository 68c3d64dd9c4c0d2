"""Simultaneous versus sequential updates and the decomposition lemma (harl_mini.tabular.updates).

The decomposition check compares the summands against multi-agent advantages computed
here by brute force (explicit loops over joint actions on the joint Q), on seeded random
multi-state games with 3–4 agents and unequal action counts, for every ordered subset.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError
from harl_mini.tabular import games as G
from harl_mini.tabular import updates as U

F64 = torch.float64


# ---------------------------------------------------------------------------------------
# The continuous a¹a² game
# ---------------------------------------------------------------------------------------


def test_a1a2_numbers():
    mu = torch.tensor([-0.25, 0.25], dtype=F64)
    assert float(U.a1a2_objective(mu)) == pytest.approx(-0.0625, abs=1e-15)
    sim = U.a1a2_simultaneous_update(mu, 0.5)
    assert sim.tolist() == pytest.approx([0.75, -0.75], abs=1e-15)
    assert float(U.a1a2_objective(sim)) == pytest.approx(-0.5625, abs=1e-15)
    seq01 = U.a1a2_sequential_update(mu, (0, 1), 0.5)
    seq10 = U.a1a2_sequential_update(mu, (1, 0), 0.5)
    assert seq01.tolist() == pytest.approx([0.75, 1.25], abs=1e-15)
    assert seq10.tolist() == pytest.approx([-1.25, -0.75], abs=1e-15)
    for new in (sim, seq01, seq10):
        assert U.gaussian_kl(mu, new).tolist() == pytest.approx([0.5, 0.5], abs=1e-15)  # on the ball's edge
        if new is not sim:
            assert float(U.a1a2_objective(new)) == pytest.approx(0.9375, abs=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_a1a2_step_is_the_constrained_argmax(seed):
    """Each agent's step maximises its linear objective over the KL ball (grid search)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=3)
    radius = float(rng.uniform(0.05, 1.0))
    new = U.a1a2_simultaneous_update(torch.tensor(mu), radius).numpy()
    for i in range(3):
        coef = np.prod(np.delete(mu, i))
        grid = mu[i] + np.linspace(-1, 1, 20001) * math.sqrt(2 * radius)
        assert coef * new[i] >= (coef * grid).max() - 1e-12


@pytest.mark.parametrize("seed", range(10))
def test_a1a2_sequential_never_decreases(seed):
    rng = np.random.default_rng(seed)
    for n in (2, 3):
        mu = torch.tensor(rng.normal(size=n), dtype=F64)
        J = float(U.a1a2_objective(mu))
        for order in itertools.permutations(range(n)):
            assert float(U.a1a2_objective(U.a1a2_sequential_update(mu, order, 0.3))) >= J - 1e-15


def test_a1a2_errors():
    with pytest.raises(HarlMiniError, match="mu: expected one Gaussian mean per agent"):
        U.a1a2_objective([1.0])
    with pytest.raises(HarlMiniError, match="kl_radius: expected a finite number >= 0"):
        U.a1a2_simultaneous_update([0.1, 0.2], -1.0)
    with pytest.raises(HarlMiniError, match="order: expected a permutation of all 2 agents"):
        U.a1a2_sequential_update([0.1, 0.2], (0,), 0.5)
    with pytest.raises(HarlMiniError, match="order: agent 0 appears more than once"):
        U.a1a2_sequential_update([0.1, 0.2], (0, 0), 0.5)
    with pytest.raises(HarlMiniError, match="mu_new: expected shape \\[2\\]"):
        U.gaussian_kl([0.0, 1.0], [0.0])


# ---------------------------------------------------------------------------------------
# HARL Example 1 and discrete best responses
# ---------------------------------------------------------------------------------------


def _pi(p0: float) -> torch.Tensor:
    return torch.tensor([[p0, 1.0 - p0]], dtype=F64)


def test_example1_numbers():
    game = G.zhong_example1_game()
    pis = [_pi(0.7), _pi(0.7)]
    assert float(T.game_objective(game, pis)) == pytest.approx(0.75, abs=1e-14)
    sim = U.simultaneous_best_response(game, pis)
    assert [p.tolist() for p in sim] == [[[0.0, 1.0]], [[0.0, 1.0]]]
    J_sim = float(T.game_objective(game, sim))
    assert J_sim == -1.0 == float(game.R.min())   # min over all joint policies (J is multilinear)
    for order in [(0, 1), (1, 0)]:
        seq = U.sequential_best_response(game, pis, order)
        J_seq = float(T.game_objective(game, seq))
        assert J_seq >= 0.75
        assert J_seq == 2.0   # here the sequential step reaches the optimum J* = 2


@pytest.mark.parametrize("p0", [0.61, 0.8, 0.99])
def test_example1_simultaneous_collapse_for_any_start_above_06(p0):
    game = G.zhong_example1_game()
    sim = U.simultaneous_best_response(game, [_pi(p0), _pi(p0)])
    assert float(T.game_objective(game, sim)) == -1.0


def _games():
    yield T.random_game(1, (2, 3, 2), gamma=0.0, seed=0)
    yield T.random_game(1, (3, 2, 4, 2), gamma=0.0, seed=1)
    yield T.random_game(3, (2, 3, 2), gamma=0.9, seed=2)
    yield T.random_game(3, (2, 3, 2, 3), gamma=0.9, seed=3)
    yield T.random_game(4, (3, 2, 2), gamma=0.95, seed=4, branching=2)


@pytest.mark.parametrize("index", range(5))
def test_sequential_best_response_monotone_every_order(index):
    game = list(_games())[index]
    for seed in range(3):
        pis = T.random_policies(game, seed=10 * index + seed)
        J_old = float(T.game_objective(game, pis))
        V_old = T.game_value(game, pis)
        A_old = T.game_advantage(game, pis)
        for order in itertools.permutations(range(game.num_agents)):
            new = U.sequential_best_response(game, pis, order)
            assert float(T.game_objective(game, new)) >= J_old - 1e-12
            assert bool((T.game_value(game, new) >= V_old - 1e-10).all())   # state-wise (Lemma 13)
            joint = T.joint_policy(new)
            per_state = (joint * A_old).reshape(game.num_states, -1).sum(-1)
            assert bool((per_state >= -1e-12).all())                       # Σ_m L^{i_{1:m}} >= 0 per state


def test_sequential_step_maximises_the_surrogate():
    """Agent i_m's new policy beats every deterministic alternative on L^{i_{1:m}} (enumerated)."""
    game = T.random_game(2, (2, 3, 2), gamma=0.9, seed=7)
    pis = T.random_policies(game, seed=7)
    order = (2, 0, 1)
    new = U.sequential_best_response(game, pis, order)
    for m, i in enumerate(order):
        adv = T.multi_agent_advantage(game, pis, (i,), given=order[:m])  # [S, n_before..., n_i]
        for s in range(game.num_states):
            value = {}
            for a in range(game.action_counts[i]):
                total = 0.0
                for prev in itertools.product(*(range(game.action_counts[j]) for j in order[:m])):
                    w = math.prod(float(new[j][s, b]) for j, b in zip(order[:m], prev))
                    total += w * float(adv[(s, *prev, a)])
                value[a] = total
            chosen = int(torch.argmax(new[i][s]))
            assert value[chosen] >= max(value.values()) - 1e-12


def test_best_response_errors():
    game = G.zhong_example1_game()
    pis = [_pi(0.7), _pi(0.7)]
    with pytest.raises(HarlMiniError, match="order: expected a permutation of all 2 agents"):
        U.sequential_best_response(game, pis, (1,))
    with pytest.raises(HarlMiniError, match="order: agent index 2 out of range"):
        U.sequential_best_response(game, pis, (0, 2))
    with pytest.raises(HarlMiniError, match="pis: expected 2 policies"):
        U.simultaneous_best_response(game, pis[:1])


# ---------------------------------------------------------------------------------------
# Lemma 1: the multi-agent advantage decomposition
# ---------------------------------------------------------------------------------------


def _brute_ma_q(Q: np.ndarray, pis: list[np.ndarray], agents: tuple[int, ...]) -> np.ndarray:
    """Q^{agents}(s, a^{agents}) by explicit loops: E over the other agents' actions of Q."""
    S, counts = Q.shape[0], Q.shape[1:]
    others = [j for j in range(len(counts)) if j not in agents]
    out = np.zeros((S, *(counts[i] for i in agents)))
    for s in range(S):
        for a_sub in itertools.product(*(range(counts[i]) for i in agents)):
            total = 0.0
            for a_rest in itertools.product(*(range(counts[j]) for j in others)):
                a = [0] * len(counts)
                for i, b in zip(agents, a_sub):
                    a[i] = b
                for j, b in zip(others, a_rest):
                    a[j] = b
                total += math.prod(pis[j][s, b] for j, b in zip(others, a_rest)) * Q[(s, *a)]
            out[(s, *a_sub)] = total
    return out


@pytest.mark.parametrize("seed,counts", [(0, (2, 3, 2)), (1, (3, 2, 4)), (2, (2, 3, 2, 3))])
def test_decomposition_terms_sum_to_the_multi_agent_advantage(seed, counts):
    """Kuba et al. 2022, Lemma 1, for every ordered subset i_{1:m}, to 1e-10."""
    game = T.random_game(3, counts, gamma=0.9, seed=seed)
    pis = T.random_policies(game, seed=seed + 100)
    Q = T.game_q_value(game, pis).numpy()
    pis_np = [p.numpy() for p in pis]
    N = len(counts)
    V = _brute_ma_q(Q, pis_np, ())
    brute = {}
    for m in range(1, N + 1):
        for subset in itertools.combinations(range(N), m):
            brute[subset] = _brute_ma_q(Q, pis_np, subset)
    checked = 0
    for m in range(1, N + 1):
        for order in itertools.permutations(range(N), m):
            terms = U.decomposition_terms(game, pis, order)
            shape = (3, *(counts[i] for i in order))
            assert len(terms) == m and all(tuple(t.shape) == shape for t in terms)
            subset = tuple(sorted(order))
            ref = np.transpose(brute[subset], [0, *(subset.index(i) + 1 for i in order)]) - V.reshape(
                3, *([1] * m))
            total = sum(terms).numpy()
            np.testing.assert_allclose(total, ref, atol=1e-10, rtol=0)
            np.testing.assert_allclose(total, T.multi_agent_advantage(game, pis, order).numpy(), atol=1e-10, rtol=0)
            # term j has zero mean under the old policy of agent i_j (it is an advantage)
            for j, (i, t) in enumerate(zip(order, terms)):
                mean = (t.movedim(j + 1, -1) * pis[i].reshape(3, *([1] * (m - 1)), -1)).sum(-1)
                assert float(mean.abs().max()) < 1e-10
            checked += 1
    assert checked == sum(math.perm(N, m) for m in range(1, N + 1))


def test_decomposition_terms_depend_only_on_earlier_agents():
    game = T.random_game(2, (2, 3, 4), gamma=0.8, seed=5)
    pis = T.random_policies(game, seed=5)
    terms = U.decomposition_terms(game, pis, (1, 2, 0))
    # term 0 is A^{1}(s, a^1): constant along the axes of agents 2 and 0
    assert torch.equal(terms[0], terms[0][:, :, :1, :1].expand_as(terms[0]))
    assert torch.equal(terms[1], terms[1][:, :, :, :1].expand_as(terms[1]))


def test_decomposition_errors():
    game = T.random_game(2, (2, 3), seed=0)
    pis = T.random_policies(game, seed=0)
    with pytest.raises(HarlMiniError, match="order: expected at least one agent"):
        U.decomposition_terms(game, pis, ())
    with pytest.raises(HarlMiniError, match="order: the order of agents matters"):
        U.decomposition_terms(game, pis, {0, 1})
