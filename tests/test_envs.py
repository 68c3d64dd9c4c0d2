"""Tests of the environment registry and the common step API (harl_mini.envs)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import harl_mini.tabular as T
from harl_mini.envs import ENVS, VecEnv, make_env
from harl_mini.errors import HarlMiniError


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------


def test_unknown_names_list_what_exists():
    with pytest.raises(HarlMiniError, match=r"unknown environment 'atari:Pong'.*gym:<Gymnasium id>.*tabular:"):
        make_env("atari:Pong")
    with pytest.raises(HarlMiniError, match="unknown environment 'CartPole-v1'"):
        make_env("CartPole-v1")
    with pytest.raises(HarlMiniError, match="gym:NoSuchEnv-v0: Gymnasium cannot make"):
        make_env("gym:NoSuchEnv-v0")
    with pytest.raises(HarlMiniError, match="give a Gymnasium id"):
        make_env("gym:")
    with pytest.raises(HarlMiniError, match="unknown MDP 'nope'; available: chain, gridworld, random"):
        make_env("tabular:nope")
    with pytest.raises(HarlMiniError, match="num_envs"):
        make_env("gym:CartPole-v1", num_envs=0)
    with pytest.raises(HarlMiniError, match="expected an environment name"):
        make_env(3)
    assert set(ENVS) == {"gym", "tabular", "game", "markov", "vmas", "mpe", "pettingzoo", "mamujoco"}


def test_unsupported_spaces_are_rejected():
    with pytest.raises(HarlMiniError, match="only flat Box observation spaces"):
        make_env("gym:FrozenLake-v1")


def test_step_api_shapes_and_types():
    for name, discrete in (("gym:CartPole-v1", True), ("gym:Pendulum-v1", False)):
        with make_env(name, num_envs=3, seed=0) as env:
            assert isinstance(env, VecEnv) and env.discrete is discrete
            assert env.obs.shape == (3, env.obs_dim) and env.obs.dtype == torch.float32
            act = torch.zeros(3, dtype=torch.long) if discrete else torch.zeros(3, env.act_dim)
            obs, rew, term, trunc, final = env.step(act)
            assert obs.shape == final.shape == (3, env.obs_dim)
            assert rew.shape == term.shape == trunc.shape == (3,)
            assert term.dtype == trunc.dtype == torch.bool


# ---------------------------------------------------------------------------------------
# Gymnasium: autoreset, final_obs, truncation vs termination
# ---------------------------------------------------------------------------------------


def test_truncation_hands_back_the_final_observation():
    """With a 5-step limit every copy is truncated at step 5; final_obs is the observation
    the 5th step led to (checked against a plain single Gymnasium env), obs the reset one."""
    env = make_env("gym:CartPole-v1", num_envs=2, seed=3, max_episode_steps=5)
    actions = [torch.tensor([0, 1]), torch.tensor([1, 0])] * 3
    for t in range(5):
        obs, _, term, trunc, final = env.step(actions[t])
        if t < 4:
            assert not bool((term | trunc).any())
            assert torch.equal(obs, final)
    assert trunc.tolist() == [True, True] and term.tolist() == [False, False]
    assert not torch.equal(obs, final)
    assert bool((obs.abs() <= 0.05).all())  # CartPole resets to U(−0.05, 0.05)
    for i in range(2):
        single = gym.make("CartPole-v1", max_episode_steps=5)
        single.reset(seed=3 + i)
        for t in range(5):
            o, *_ = single.step(int(actions[t][i]))
        np.testing.assert_array_equal(final[i].numpy(), o)
    assert env.pop_episodes() == ([5.0, 5.0], [5, 5])
    assert env.episode_t.tolist() == [0, 0]


def test_termination_is_not_truncation():
    """Always pushing left makes the pole fall well before the time limit: terminated only."""
    env = make_env("gym:CartPole-v1", num_envs=2, seed=0)
    for _ in range(100):
        obs, _, term, trunc, final = env.step(torch.zeros(2, dtype=torch.long))
        assert not bool(trunc.any())
        if bool(term.any()):
            break
    assert bool(term.any())
    i = int(torch.nonzero(term)[0])
    assert abs(float(final[i, 2])) > 0.2 or abs(float(final[i, 0])) > 2.4  # the final state is a failure
    assert abs(float(obs[i, 2])) <= 0.05  # ... and the returned obs a fresh start


def test_box_actions_are_clipped_to_the_action_space():
    a = make_env("gym:Pendulum-v1", num_envs=1, seed=5)
    b = make_env("gym:Pendulum-v1", num_envs=1, seed=5)
    _, r_big, *_ = a.step(torch.tensor([[100.0]]))
    _, r_max, *_ = b.step(torch.tensor([[2.0]]))
    assert torch.equal(r_big, r_max)


def _nan_env_class():
    class NaNEnv(gym.Env):
        observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.zeros(2, np.float32), {}

        def step(self, action):
            self.t += 1
            obs = np.array([np.nan if self.t == 3 else 0.0, 0.0], np.float32)
            return obs, 1.0, False, False, {}

    return NaNEnv


def register_nan_env() -> str:
    env_id = "HarlMiniNaN-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=_nan_env_class(), max_episode_steps=50)
    return f"gym:{env_id}"


def test_nan_observation_raises_a_clear_error():
    env = make_env(register_nan_env(), num_envs=2, seed=0)
    env.step(torch.zeros(2, dtype=torch.long))
    env.step(torch.zeros(2, dtype=torch.long))
    with pytest.raises(HarlMiniError, match=r"gym:HarlMiniNaN-v0: the environment returned a non-finite observation"):
        env.step(torch.zeros(2, dtype=torch.long))


# ---------------------------------------------------------------------------------------
# Tabular
# ---------------------------------------------------------------------------------------


def test_tabular_env_samples_the_mdp():
    mdp = T.random_mdp(4, 2, gamma=0.9, seed=1)
    env = make_env("tabular", num_envs=20000, seed=0, mdp=mdp, dtype=torch.float64)
    assert env.name == f"tabular:{mdp.name}" and env.obs_dim == 4 and env.n_actions == 2
    s = env.obs.argmax(-1)
    assert bool((env.obs.sum(-1) == 1).all())
    # initial states ~ ρ0 (uniform)
    torch.testing.assert_close(torch.bincount(s, minlength=4).double() / 20000.0, mdp.rho0, atol=0.02, rtol=0)
    a = torch.randint(0, 2, (20000,), generator=torch.Generator().manual_seed(0))
    obs, r, term, trunc, final = env.step(a)
    torch.testing.assert_close(r, mdp.R[s, a])
    assert not bool(term.any() or trunc.any()) and torch.equal(obs, final)
    s2 = obs.argmax(-1)
    for si in range(4):
        for ai in range(2):
            m = (s == si) & (a == ai)
            freq = torch.bincount(s2[m], minlength=4).double() / m.sum()
            torch.testing.assert_close(freq, mdp.P[si, ai], atol=0.05, rtol=0)


def test_tabular_time_limit_truncates_and_is_reproducible():
    def run(seed):
        env = make_env("tabular:chain", num_envs=3, seed=seed, time_limit=4)
        out = []
        for t in range(9):
            obs, r, term, trunc, final = env.step(torch.ones(3, dtype=torch.long))
            out.append((obs, r, trunc, final))
            assert trunc.tolist() == [t % 4 == 3] * 3 and not bool(term.any())
            if t % 4 == 3:
                assert bool((obs.argmax(-1) == 0).all())  # the chain starts in state 0
                assert not torch.equal(obs, final)
        assert env.pop_episodes()[1] == [4] * 6
        return out

    a, b = run(0), run(0)
    assert all(torch.equal(x, y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    with pytest.raises(HarlMiniError, match="time_limit"):
        make_env("tabular:chain", time_limit=0)
    with pytest.raises(HarlMiniError, match="either mdp= or make_mdp keywords"):
        make_env("tabular", mdp=T.chain_mdp(), n=3)
    with pytest.raises(HarlMiniError, match="actions must be 3 integers"):
        make_env("tabular:chain", num_envs=3).step(torch.tensor([0, 1, 5]))
