"""Sampled TD(0) and Q-learning (harl_mini.tabular.td) against the exact oracle."""

from __future__ import annotations

import pytest
import torch

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError

F64 = torch.float64


def _mdp(seed=0):
    return T.random_mdp(4, 2, gamma=0.8, seed=seed, branching=2, reward_range=(-1.0, 1.0))


@pytest.mark.parametrize("seed", range(3))
def test_q_learning_converges_to_the_oracle_q_star(seed):
    m = _mdp(seed)
    Q_star = T.optimal_q_value(m)
    res = T.q_learning(m, 60_000, epsilon_greedy=0.3, seed=seed, horizon=20)
    assert res.table.shape == (4, 2) and res.table.dtype == F64
    assert int(res.visits.sum()) == 60_000 and int(res.visits.min()) > 0
    # error of an average of thousands of noisy targets, far below the gap between Q* and
    # the value of the ε-greedy behaviour (what an on-policy target would learn)
    err = float((res.table - Q_star).abs().max())
    behaviour = 0.7 * T.greedy_policy(Q_star) + 0.3 / 2
    far = float((T.q_value(m, behaviour) - Q_star).abs().max())
    assert err < 0.1 < far / 2, (err, far)


def test_q_learning_is_off_policy_uniform_behaviour_still_learns_q_star():
    m = _mdp(5)
    res = T.q_learning(m, 60_000, epsilon_greedy=1.0, seed=1, horizon=20)
    assert float((res.table - T.optimal_q_value(m)).abs().max()) < 0.1


@pytest.mark.parametrize("seed", range(3))
def test_td0_converges_to_v_pi(seed):
    m = _mdp(10 + seed)
    pi = T.random_policy(m, seed=seed)
    res = T.td0_evaluation(m, pi, 40_000, seed=seed, horizon=20, record_every=10_000)
    V_pi = T.value(m, pi)
    assert float((res.table - V_pi).abs().max()) < 0.1
    assert res.history.shape == (4, 4) and res.steps.tolist() == [10_000, 20_000, 30_000, 40_000]
    torch.testing.assert_close(res.history[-1], res.table)


def test_same_seed_same_result_other_seed_other_result():
    m = _mdp(2)
    a = T.q_learning(m, 3_000, seed=7)
    b = T.q_learning(m, 3_000, seed=7)
    c = T.q_learning(m, 3_000, seed=8)
    assert torch.equal(a.table, b.table) and torch.equal(a.visits, b.visits)
    assert not torch.equal(a.table, c.table)
    torch.manual_seed(0)  # the global generator plays no part
    d = T.q_learning(m, 3_000, seed=7)
    assert torch.equal(a.table, d.table)


def test_a_deterministic_chain_is_learned_exactly_in_a_few_steps():
    # one state, one action, reward 1: V = 1/(1 - γ); with η_n = 1/(1 + (1-γ)(n-1)) the
    # iterates follow V_n = 1 + γ V_{n-1} moved by η_n, so the error shrinks like 1/n
    P = torch.ones(1, 1, 1, dtype=F64)
    m = T.FiniteMDP(P, torch.ones(1, 1, dtype=F64), 0.5)
    res = T.td0_evaluation(m, torch.ones(1, 1, dtype=F64), 2_000)
    assert abs(float(res.table[0]) - 2.0) < 2e-3
    q = T.q_learning(m, 2_000)
    assert abs(float(q.table[0, 0]) - 2.0) < 2e-3


def test_bad_input_raises_one_clear_error():
    m = _mdp()
    with pytest.raises(HarlMiniError, match="epsilon_greedy"):
        T.q_learning(m, 10, epsilon_greedy=1.5)
    with pytest.raises(HarlMiniError, match="num_steps"):
        T.q_learning(m, 0)
    with pytest.raises(HarlMiniError, match="horizon"):
        T.td0_evaluation(m, T.uniform_policy(m), 10, horizon=-1)
    with pytest.raises(HarlMiniError, match="pi"):
        T.td0_evaluation(m, torch.ones(4, 2), 10)
    with pytest.raises(HarlMiniError, match="seed"):
        T.q_learning(m, 10, seed=1.5)
    with pytest.raises(HarlMiniError, match="mdp"):
        T.q_learning("not an mdp", 10)
