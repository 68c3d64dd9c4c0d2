"""Named cooperative games (harl_mini.tabular.games) and their batched environments
(harl_mini.envs.matrix, harl_mini.envs.multi).

Payoffs are checked entry by entry against their definitions, J* against brute-force
enumeration of deterministic joint policies, and every environment's reward against the
payoff on random actions.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import harl_mini.tabular as T
from harl_mini.envs import matrix as M
from harl_mini.envs.multi import MultiAgentVecEnv
from harl_mini.errors import HarlMiniError
from harl_mini.tabular import games as G

F64 = torch.float64
NAMES = ["xor", "prop1-2", "prop1-4", "prop1-6", "permutation-2", "permutation-3", "permutation-4", "climbing",
         "penalty", "zhong-example1"]


# ---------------------------------------------------------------------------------------
# Game definitions
# ---------------------------------------------------------------------------------------


def test_xor_payoff():
    g = G.xor_game()
    assert g.num_states == 1 and g.gamma == 0.0 and g.action_counts == (2, 2)
    for a1, a2 in itertools.product(range(2), repeat=2):
        assert g.R[0, a1, a2].item() == float(a1 != a2)


@pytest.mark.parametrize("n", [2, 4, 6, 8])
def test_prop1_payoff(n):
    g = G.prop1_game(n)
    assert g.action_counts == (2,) * n
    half = n // 2
    good = {(0,) * half + (1,) * half, (1,) * half + (0,) * half}
    for a in itertools.product(range(2), repeat=n):
        assert g.R[(0, *a)].item() == (1.0 if a in good else 0.0)


def test_prop1_two_agents_is_xor():
    assert torch.equal(G.prop1_game(2).R, G.xor_game().R)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_prop1_needs_even_n(n):
    with pytest.raises(HarlMiniError, match="even number of agents"):
        G.prop1_game(n)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_permutation_payoff(n):
    g = G.permutation_game(n)
    assert g.action_counts == (n,) * n
    for a in itertools.product(range(n), repeat=n):
        assert g.R[(0, *a)].item() == float(len(set(a)) == n)
    assert g.R.sum().item() == math.factorial(n)


def test_fixed_payoffs():
    assert G.climbing_game().R[0].tolist() == [[11, -30, 0], [-30, 7, 6], [0, 0, 5]]
    assert G.penalty_game().R[0].tolist() == [[10, 0, -10], [0, 2, 0], [-10, 0, 10]]
    assert G.penalty_game(-100).R[0].tolist() == [[10, 0, -100], [0, 2, 0], [-100, 0, 10]]
    assert G.zhong_example1_game().R[0].tolist() == [[0, 2], [2, -1]]


@pytest.mark.parametrize("name,j_star", [("xor", 1.0), ("prop1-4", 1.0), ("permutation-3", 1.0),
                                         ("climbing", 11.0), ("penalty", 10.0), ("zhong-example1", 2.0)])
def test_optimal_value_named(name, j_star):
    g = G.make_game(name)
    assert float(G.optimal_value(g)) == j_star
    assert float(T.game_optimal_value(g)) == j_star


def test_one_state_objective_is_expected_payoff():
    """J(π) = Σ_a r(a) Π_i π^i(a^i), by explicit loops."""
    for name in ["climbing", "permutation-3", "prop1-4"]:
        g = G.make_game(name)
        pis = T.random_policies(g, seed=3)
        R = g.R[0].numpy()
        ref = sum(R[a] * math.prod(float(pis[i][0, a[i]]) for i in range(len(a)))
                  for a in itertools.product(*(range(n) for n in g.action_counts)))
        assert float(T.game_objective(g, pis)) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_optimal_value_multi_state_by_enumeration(seed):
    """J* of a multi-state game = max over every deterministic joint policy (enumerated)."""
    g = T.random_game(2, (2, 3), gamma=0.8, seed=seed)
    best = -math.inf
    joint = list(itertools.product(range(2), range(3)))
    for choice in itertools.product(joint, repeat=2):  # one joint action per state
        pis = [torch.zeros(2, 2, dtype=F64), torch.zeros(2, 3, dtype=F64)]
        for s, (a1, a2) in enumerate(choice):
            pis[0][s, a1] = 1.0
            pis[1][s, a2] = 1.0
        best = max(best, float(T.game_objective(g, pis)))
    assert float(G.optimal_value(g)) == pytest.approx(best, abs=1e-10)


def test_make_game_names():
    assert G.make_game("prop1-6").num_agents == 6
    assert G.make_game("prop1").num_agents == 4
    assert G.make_game("permutation-4").action_counts == (4, 4, 4, 4)
    assert G.make_game("permutation").num_agents == 3
    assert G.make_game("penalty", k=-50).R[0, 0, 2].item() == -50
    assert set(G.GAMES) == {"xor", "prop1", "permutation", "climbing", "penalty", "zhong-example1", "two-step"}
    assert T.make_game is G.make_game


@pytest.mark.parametrize("name,pattern", [
    ("foo", "unknown game 'foo'; available: .*xor.*prop1-<n>.*permutation-<n>.*zhong-example1"),
    ("xor-3", "fixed size"),
    ("prop1-3", "even number"),
    ("permutation-9", "n: expected 1 <= n <= 7"),
    ("prop1-0", "n: expected 2 <= n"),
])
def test_make_game_errors(name, pattern):
    with pytest.raises(HarlMiniError, match=pattern):
        G.make_game(name)


def test_make_game_bad_keyword_and_type():
    with pytest.raises(HarlMiniError, match="parameters: k"):
        G.make_game("penalty", z=1)
    with pytest.raises(HarlMiniError, match="size is given twice"):
        G.make_game("prop1-4", n=4)
    with pytest.raises(HarlMiniError, match="name: expected a game name"):
        G.make_game(3)
    with pytest.raises(HarlMiniError, match="k: expected a finite number"):
        G.penalty_game(float("nan"))
    with pytest.raises(HarlMiniError, match="game: expected a MarkovGame"):
        G.optimal_value([[1, 2]])


# ---------------------------------------------------------------------------------------
# Batched environments
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_env_reward_matches_payoff(name):
    B = 257
    env = M.make(name, num_envs=B, seed=0)
    game = G.make_game(name)
    assert isinstance(env, MultiAgentVecEnv)
    assert env.num_envs == B and env.num_agents == game.num_agents
    assert env.action_spaces == [("discrete", n) for n in game.action_counts]
    obs, state = env.reset(seed=1)
    assert [tuple(o.shape) for o in obs] == [(B, 1)] * game.num_agents
    assert tuple(state.shape) == (B, env.state_dim) == (B, 1)
    gen = torch.Generator().manual_seed(7)
    R = game.R[0].numpy()
    for _ in range(3):
        actions = env.sample_actions(gen)
        obs2, state2, reward, terminated, truncated, final_obs, final_state = env.step(actions)
        acts = np.stack([a.numpy() for a in actions], axis=1)
        expected = np.array([R[tuple(row)] for row in acts])
        np.testing.assert_array_equal(reward.numpy(), expected.astype(np.float32))
        assert reward.dtype == torch.float32 and reward.device.type == "cpu"
        assert terminated.dtype == torch.bool and bool(terminated.all())
        assert truncated.dtype == torch.bool and not bool(truncated.any())
        for o, f in zip(obs2, final_obs):
            assert torch.equal(o, f) and o.device.type == "cpu"
        assert torch.equal(state2, final_state)
    returns, lengths = env.pop_episodes()
    assert len(returns) == 3 * B and set(lengths) == {1}
    # every joint action appears with its payoff when enumerated (not only sampled)
    joint = list(itertools.product(*(range(n) for n in game.action_counts)))
    if len(joint) <= 64:
        env2 = M.make(name, num_envs=len(joint))
        cols = [torch.tensor([a[i] for a in joint]) for i in range(game.num_agents)]
        reward = env2.step(cols)[2]
        assert reward.tolist() == [float(R[a]) for a in joint]


def test_env_episode_length_and_auto_reset():
    env = M.make("climbing", num_envs=4, episode_length=3)
    acts = [torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 2, 1])]
    flags = []
    for _ in range(6):
        _, _, reward, terminated, truncated, *_ = env.step(acts)
        assert reward.tolist() == [11.0, 7.0, 5.0, -30.0]
        flags.append(bool(terminated.all()))
        assert not bool(truncated.any())
    assert flags == [False, False, True, False, False, True]
    returns, lengths = env.pop_episodes()
    assert lengths == [3] * 8
    assert sorted(returns) == sorted([33.0, 21.0, 15.0, -90.0] * 2)
    assert env.pop_episodes() == ([], [])


def test_env_agent_id_observations():
    env = M.make("permutation-3", num_envs=5, obs="agent_id")
    obs, _ = env.reset()
    assert env.obs_dims == [3, 3, 3]
    for i, o in enumerate(obs):
        assert torch.equal(o, torch.eye(3)[i].expand(5, 3))
    with pytest.raises(HarlMiniError, match="unknown observation mode 'pixels'; available: agent_id, constant"):
        M.make("xor", obs="pixels")


@pytest.mark.parametrize("actions,pattern", [
    ([torch.tensor([0, 1, 2])], "one entry per agent \\(2\\), got 1"),
    (torch.tensor([[0, 1, 1], [0, 0, 0]]), "must be a list with one tensor per agent"),
    ([torch.tensor([0, 1, 2]), torch.tensor([0, 0, 0])],
     "actions\\[0\\]\\[2\\] = 2 is out of range; agent 0 has actions 0..1"),
    ([torch.tensor([0, 1, 1]), torch.tensor([0, -1, 0])], "actions\\[1\\]\\[1\\] = -1 is out of range"),
    ([torch.tensor([0.0, 1.0, 1.0]), torch.tensor([0, 0, 0])], "actions\\[0\\] must hold integer actions"),
    ([torch.tensor([True, False, True]), torch.tensor([0, 0, 0])], "actions\\[0\\] must hold integer actions"),
    ([torch.tensor([0, 1]), torch.tensor([0, 0, 0])], "actions\\[0\\] must have shape \\[3\\]"),
    ([torch.tensor([[0], [1], [1]]), torch.tensor([0, 0, 0])], "actions\\[0\\] must have shape \\[3\\]"),
])
def test_env_discrete_action_validation(actions, pattern):
    env = M.make("xor", num_envs=3)
    with pytest.raises(HarlMiniError, match=pattern):
        env.step(actions)


def test_env_accepts_lists_and_numpy():
    env = M.make("xor", num_envs=3)
    reward = env.step([[0, 1, 1], np.array([1, 1, 0])])[2]
    assert reward.tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("actions,pattern", [
    ([torch.zeros(4, 1, dtype=torch.long), torch.zeros(4, 1)], "actions\\[0\\] must be a float tensor"),
    ([torch.zeros(4), torch.zeros(4, 1)], "actions\\[0\\] must have shape \\[4, 1\\]"),
    ([torch.zeros(4, 1), torch.full((4, 1), float("nan"))], "actions\\[1\\] contains NaN"),
])
def test_env_box_action_validation(actions, pattern):
    env = M.make("a1a2", num_envs=4)
    with pytest.raises(HarlMiniError, match=pattern):
        env.step(actions)


def test_a1a2_env_reward_is_product():
    env = M.make("a1a2", num_envs=1000, seed=0)
    assert env.action_spaces == [("box", 1), ("box", 1)] and env.name == "game:a1a2"
    gen = torch.Generator().manual_seed(0)
    a = env.sample_actions(gen)
    _, _, reward, terminated, truncated, *_ = env.step(a)
    torch.testing.assert_close(reward, a[0][:, 0] * a[1][:, 0])
    assert bool(terminated.all()) and not bool(truncated.any())
    env3 = M.make("a1a2", num_envs=50, num_agents=3)
    a = env3.sample_actions(gen)
    torch.testing.assert_close(env3.step(a)[2], a[0][:, 0] * a[1][:, 0] * a[2][:, 0])


def test_a1a2_env_mean_reward_matches_objective():
    """Gaussian policies N(μ^i, 1): the sample mean of a¹a² estimates J = μ¹μ² (a1a2_objective)."""
    B = 200_000
    env = M.make("a1a2", num_envs=B, dtype=torch.float64)
    mu = torch.tensor([-0.25, 0.25], dtype=F64)
    gen = torch.Generator().manual_seed(1)
    a = [mu[i] + torch.randn(B, 1, generator=gen, dtype=F64) for i in range(2)]
    reward = env.step(a)[2]
    stderr = float(reward.std()) / math.sqrt(B)
    assert abs(float(reward.mean()) - float(T.a1a2_objective(mu))) < 5 * stderr


def test_matrix_env_from_payoff_and_game():
    payoff = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])  # 3 agents: counts (1, 3, 2)
    env = M.MatrixGameEnv(payoff, num_envs=2)
    assert env.action_spaces == [("discrete", 1), ("discrete", 3), ("discrete", 2)]
    r = env.step([torch.tensor([0, 0]), torch.tensor([2, 1]), torch.tensor([1, 0])])[2]
    assert r.tolist() == [6.0, 3.0]
    with pytest.raises(HarlMiniError, match="one-state game"):
        M.MatrixGameEnv(T.random_game(2, (2, 2), seed=0))
    with pytest.raises(HarlMiniError, match="num_envs: expected a positive integer"):
        M.MatrixGameEnv(payoff, num_envs=0)
    with pytest.raises(HarlMiniError, match="episode_length: expected a positive integer"):
        M.make("xor", episode_length=0)


def test_make_env_errors():
    with pytest.raises(HarlMiniError, match="unknown game 'chess'; available: .*permutation-<n>.*a1a2"):
        M.make("chess")
    with pytest.raises(HarlMiniError, match="expected a game name"):
        M.make("")
    with pytest.raises(HarlMiniError, match="seed: expected an integer"):
        M.make("xor").reset(seed="zero")


def test_env_cpu_device_and_dtype():
    env = M.make("penalty", num_envs=3, device="cpu", dtype=torch.float64)
    obs, state = env.reset()
    assert env.device == torch.device("cpu")
    assert obs[0].dtype == torch.float64 and state.dtype == torch.float64
    assert env.step([torch.tensor([0, 0, 1]), torch.tensor([0, 2, 1])])[2].tolist() == [10.0, -10.0, 2.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_env_cuda():  # pragma: no cover - only with a GPU
    env = M.make("permutation-3", num_envs=1024, device="cuda")
    a = env.sample_actions()
    out = env.step(a)
    assert all(t.device.type == "cuda" for t in [*out[0], out[1], out[2], out[3]])
    R = G.permutation_game(3).R[0]
    idx = tuple(x.cpu() for x in a)
    torch.testing.assert_close(out[2].cpu(), R[idx].float())
