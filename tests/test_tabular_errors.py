"""Every bad input to the tabular layer raises one HarlMiniError naming the argument."""

from __future__ import annotations

import pytest
import torch

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError

F64 = torch.float64


def _good():
    m = T.random_mdp(3, 2, seed=0)
    return m.P.clone(), m.R.clone()


def test_p_rows_must_sum_to_one():
    P, R = _good()
    P[1, 0, 0] += 0.1
    with pytest.raises(HarlMiniError, match=r"^P: probabilities must sum to 1.*index \(1, 0\)"):
        T.FiniteMDP(P, R, 0.9)


def test_p_negative_nan_and_shape():
    P, R = _good()
    P[0, 1, 0] = -0.5
    P[0, 1, 1] += 0.5
    with pytest.raises(HarlMiniError, match=r"^P: negative probability"):
        T.FiniteMDP(P, R, 0.9)
    P, R = _good()
    P[2, 0, 1] = float("nan")
    with pytest.raises(HarlMiniError, match=r"^P: contains nan at index \(2, 0, 1\)"):
        T.FiniteMDP(P, R, 0.9)
    with pytest.raises(HarlMiniError, match=r"^P: expected shape \[S, A, S\]"):
        T.FiniteMDP(torch.ones(3, 2, 4, dtype=F64) / 4, torch.zeros(3, 2), 0.9)
    with pytest.raises(HarlMiniError, match=r"^P: expected an array, got None"):
        T.FiniteMDP(None, R, 0.9)


def test_r_wrong_shape_and_inf():
    P, _ = _good()
    with pytest.raises(HarlMiniError, match=r"^R: expected shape \[S, A\] = \[3, 2\]"):
        T.FiniteMDP(P, torch.zeros(2, 3), 0.9)
    with pytest.raises(HarlMiniError, match=r"^R: contains inf"):
        T.FiniteMDP(P, torch.tensor([[0.0, float("inf")]] * 3), 0.9)


@pytest.mark.parametrize("gamma", [1.0, -0.1, 1.5, float("nan")])
def test_gamma_range(gamma):
    P, R = _good()
    with pytest.raises(HarlMiniError, match=r"^gamma: must satisfy 0 <= gamma < 1"):
        T.FiniteMDP(P, R, gamma)


def test_gamma_message_is_exact_and_type_checked():
    P, R = _good()
    with pytest.raises(HarlMiniError) as info:
        T.FiniteMDP(P, R, 1.0)
    assert str(info.value) == "gamma: must satisfy 0 <= gamma < 1, got 1.0"
    with pytest.raises(HarlMiniError, match=r"^gamma: expected a real number"):
        T.FiniteMDP(P, R, "0.9")


def test_rho0_checks():
    P, R = _good()
    with pytest.raises(HarlMiniError, match=r"^rho0: negative probability"):
        T.FiniteMDP(P, R, 0.9, rho0=[1.5, -0.5, 0.0])
    with pytest.raises(HarlMiniError, match=r"^rho0: probabilities must sum to 1"):
        T.FiniteMDP(P, R, 0.9, rho0=[0.5, 0.2, 0.2])
    with pytest.raises(HarlMiniError, match=r"^rho0: expected shape \[3\]"):
        T.FiniteMDP(P, R, 0.9, rho0=[0.5, 0.5])


def test_policy_shape_and_rows():
    m = T.random_mdp(3, 2, seed=0)
    with pytest.raises(HarlMiniError, match=r"^pi: expected shape \[3, 2\], got \[3, 3\]"):
        T.value(m, torch.full((3, 3), 1 / 3, dtype=F64))
    bad = torch.tensor([[0.5, 0.5], [0.7, 0.7], [1.0, 0.0]], dtype=F64)
    with pytest.raises(HarlMiniError, match=r"^pi: probabilities must sum to 1.*index \(1,\)"):
        T.value(m, bad)
    with pytest.raises(HarlMiniError, match=r"^pi0: "):
        T.policy_iteration(m, pi0=bad)
    with pytest.raises(HarlMiniError, match=r"^V: expected shape \[3\]"):
        T.q_from_v(m, torch.zeros(4))
    with pytest.raises(HarlMiniError, match=r"^V0: expected shape \[3\]"):
        T.value_iteration(m, V0=torch.zeros(2))
    with pytest.raises(HarlMiniError, match=r"^max_iter: "):
        T.value_iteration(m, max_iter=0)
    with pytest.raises(HarlMiniError, match=r"^tol: "):
        T.value_iteration(m, tol=-1.0)
    with pytest.raises(HarlMiniError, match=r"^mdp: expected a FiniteMDP"):
        T.value("not an mdp", bad)


def test_unknown_names_list_the_available_ones():
    with pytest.raises(HarlMiniError, match=r"unknown MDP 'nope'; available: chain, gridworld, random"):
        T.make_mdp("nope")
    with pytest.raises(HarlMiniError, match=r"unknown gridworld layout 'big'; available: 4x3, cliff-5x5"):
        T.gridworld("big")
    with pytest.raises(HarlMiniError, match=r"make_mdp\('random'\).*num_states"):
        T.make_mdp("random")
    with pytest.raises(HarlMiniError, match=r"make_mdp\('chain'\).*unexpected keyword"):
        T.make_mdp("chain", width=3)


def test_generator_arguments():
    with pytest.raises(HarlMiniError, match=r"^branching: must be at most num_states = 3"):
        T.random_mdp(3, 2, branching=4)
    with pytest.raises(HarlMiniError, match=r"^num_states: "):
        T.random_mdp(0, 2)
    with pytest.raises(HarlMiniError, match=r"^reward_range: "):
        T.random_mdp(3, 2, reward_range=(1.0, 0.0))
    with pytest.raises(HarlMiniError, match=r"^seed: "):
        T.random_mdp(3, 2, seed=1.5)
    with pytest.raises(HarlMiniError, match=r"^concentration: "):
        T.random_policy(T.random_mdp(3, 2), concentration=0.0)
    with pytest.raises(HarlMiniError, match=r"^slip: "):
        T.gridworld(slip=1.5)
    with pytest.raises(HarlMiniError, match=r"^layout: needs exactly one start cell"):
        T.gridworld(["..+", "..."])
    with pytest.raises(HarlMiniError, match=r"^layout: unknown cell characters"):
        T.gridworld(["S.x"])
    with pytest.raises(HarlMiniError, match=r"^n: "):
        T.chain_mdp(n=1)
    with pytest.raises(HarlMiniError, match=r"^action_counts\[1\]: "):
        T.random_game(3, (2, 0))


def test_sampling_arguments():
    m = T.random_mdp(3, 2, seed=0)
    pi = T.uniform_policy(m)
    with pytest.raises(HarlMiniError, match=r"^num_episodes: "):
        T.sample_returns(m, pi, 0)
    with pytest.raises(HarlMiniError, match=r"^horizon: "):
        T.sample_returns(m, pi, 10, horizon=-1)
    with pytest.raises(HarlMiniError, match=r"^start_state: must be in 0..2"):
        T.sample_returns(m, pi, 10, start_state=3)


def test_game_validation():
    game = T.random_game(3, (2, 3), seed=0)
    pis = T.uniform_policies(game)
    P = game.P.clone()
    P[0, 1, 2, 0] += 0.2
    with pytest.raises(HarlMiniError, match=r"^P: probabilities must sum to 1.*index \(0, 1, 2\)"):
        T.MarkovGame(P, game.R, 0.9)
    with pytest.raises(HarlMiniError, match=r"^R: expected shape \[S, n_1, ..., n_N\] = \[3, 2, 3\]"):
        T.MarkovGame(game.P, torch.zeros(3, 3, 2), 0.9)
    with pytest.raises(HarlMiniError, match=r"^gamma: must satisfy 0 <= gamma < 1, got 1.0"):
        T.MarkovGame(game.P, game.R, 1.0)
    with pytest.raises(HarlMiniError, match=r"^pis\[1\]: expected shape \[3, 3\], got \[3, 2\]"):
        T.game_value(game, [pis[0], pis[0]])
    bad = pis[1].clone()
    bad[2, 0] = 0.9
    with pytest.raises(HarlMiniError, match=r"^pis\[1\]: probabilities must sum to 1"):
        T.multi_agent_q(game, [pis[0], bad], (0,))
    with pytest.raises(HarlMiniError, match=r"^pis: expected 2 policies"):
        T.game_value(game, [pis[0]])


def test_agent_subsets_are_validated():
    game = T.random_game(2, (2, 2, 2), seed=0)
    pis = T.uniform_policies(game)
    with pytest.raises(HarlMiniError, match=r"^agents: agent 1 appears more than once"):
        T.multi_agent_q(game, pis, (1, 0, 1))
    with pytest.raises(HarlMiniError, match=r"^agents: agent index 3 out of range"):
        T.multi_agent_q(game, pis, (3,))
    with pytest.raises(HarlMiniError, match=r"^agents: agent indices must be integers"):
        T.multi_agent_q(game, pis, (0.5,))
    with pytest.raises(HarlMiniError, match=r"^given and agents must be disjoint; both contain agent 2"):
        T.multi_agent_advantage(game, pis, (0, 2), given=(2,))
    with pytest.raises(HarlMiniError, match=r"^given: agent 0 appears more than once"):
        T.multi_agent_advantage(game, pis, (1,), given=(0, 0))
    # a single int is accepted as a one-agent subset
    torch.testing.assert_close(T.multi_agent_q(game, pis, 1), T.multi_agent_q(game, pis, (1,)))


def test_python_lists_are_read_in_float64():
    """Lists must not pass through float32: 0.1 stays the float64 0.1."""
    from harl_mini.errors import as_float64

    t = as_float64([0.1, 1 / 3], "x")
    assert t.dtype == torch.float64 and t[0].item() == 0.1 and t[1].item() == 1 / 3
    mdp = T.FiniteMDP([[[1.0]]], [[0.1]], 0.5)
    assert mdp.R[0, 0].item() == 0.1
