"""PettingZoo / MPE2 adapters (harl_mini.envs.pettingzoo): shapes, episode ends, seeding,
the vectorised MPE path against the plain ``parallel_env``, clipping, checkpoints, names,
and short training runs."""

from __future__ import annotations

import importlib
import io
import math
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("mpe2")

from gymnasium.spaces import Box, Discrete  # noqa: E402
from pettingzoo import ParallelEnv  # noqa: E402

from harl_mini.envs import make_env  # noqa: E402
from harl_mini.envs.pettingzoo import (  # noqa: E402
    MPE_SCENARIOS,
    MPEVecEnv,
    PettingZooVecEnv,
    make_mpe,
)
from harl_mini.errors import HarlMiniError  # noqa: E402

torch.set_num_threads(1)


def _rollout(env, steps: int, seed: int = 0, scale: float = 1.0, shift: float = 0.0):
    """Step with random actions; return everything that came back, as numpy."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        acts = env.sample_actions(g)
        acts = [a * scale + shift if a.is_floating_point() else a for a in acts]
        res = env.step(acts)
        out.append([[o.numpy().copy() for o in x] if isinstance(x, list) else x.numpy().copy() for x in res])
    return out


def _same(a, b) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


# -- shapes -------------------------------------------------------------------------------
@pytest.mark.parametrize("continuous", [False, True])
def test_spread_shapes(continuous):
    env = make_env("mpe:simple_spread", num_envs=4, seed=0, continuous_actions=continuous)
    assert isinstance(env, MPEVecEnv)
    assert env.num_agents == 3 and env.obs_dims == [18, 18, 18] and env.state_dim == 54
    assert env.action_spaces == ([("box", 5)] * 3 if continuous else [("discrete", 5)] * 3)
    obs, state, reward, term, trunc, fobs, fstate = env.step(env.sample_actions())
    assert [tuple(o.shape) for o in obs] == [(4, 18)] * 3 and tuple(state.shape) == (4, 54)
    assert all(o.dtype == torch.float32 for o in obs) and state.dtype == reward.dtype == torch.float32
    assert term.dtype == trunc.dtype == torch.bool and tuple(reward.shape) == (4,)
    assert torch.equal(state, torch.cat(obs, dim=1))        # MPE's env.state(): observations concatenated


def test_heterogeneous_shapes():
    env = make_env("mpe:simple_speaker_listener", num_envs=3, seed=0)
    assert env.agents == ["speaker_0", "listener_0"]
    assert env.obs_dims == [3, 11] and env.action_spaces == [("discrete", 3), ("discrete", 5)]
    assert env.state_dim == 14
    cont = make_env("mpe:simple_speaker_listener", num_envs=2, seed=0, continuous_actions=True)
    assert cont.action_spaces == [("box", 3), ("box", 5)]
    ref = make_env("mpe:simple_reference", num_envs=2, seed=0)
    assert ref.obs_dims == [21, 21] and ref.action_spaces == [("discrete", 50)] * 2
    obs, state, *_ = env.step(env.sample_actions())
    assert [tuple(o.shape) for o in obs] == [(3, 3), (3, 11)] and tuple(state.shape) == (3, 14)


# -- episode ends -------------------------------------------------------------------------
@pytest.mark.parametrize("fast", [True, False])
def test_truncation_at_max_cycles(fast):
    B = 3
    env = make_mpe("simple_spread", num_envs=B, seed=1, fast=fast)
    total = torch.zeros(B, dtype=torch.float64)
    for t in range(1, 26):
        obs, state, reward, term, trunc, fobs, fstate = env.step(env.sample_actions())
        total += reward.double()
        assert not term.any()
        if t < 25:
            assert not trunc.any()
            assert fobs[0] is obs[0] and fstate is state   # nothing ended: the same tensors
        else:
            assert trunc.all()                      # the 25th step: truncated, not terminated
            assert not torch.equal(fobs[0], obs[0])  # obs already starts the next episode
            assert torch.equal(fstate, torch.cat(fobs, dim=1)) and torch.equal(state, torch.cat(obs, dim=1))
            assert torch.all(obs[0][:, 0:2] == 0)    # fresh episode: zero velocity
    returns, lengths = env.pop_episodes()
    assert lengths == [25] * B
    assert np.allclose(returns, total.numpy())
    assert env.pop_episodes() == ([], [])
    assert (env.episode_t == 0).all()


def test_max_cycles_option_and_terminate_on_success():
    env = make_env("mpe:simple_spread", num_envs=2, seed=0, max_cycles=3)
    flags = [env.step(env.sample_actions())[4].tolist() for _ in range(6)]
    assert flags == [[False, False], [False, False], [True, True]] * 2
    env = make_env("mpe:simple_spread", num_envs=2, seed=0, terminate_on_success=True)
    env.pos[0, :3] = env.pos[0, 3:]               # copy 0: every agent sits on a landmark
    noop = [torch.zeros(2, dtype=torch.long)] * 3
    _, _, _, term, trunc, *_ = env.step(noop)
    assert term.tolist() == [True, False] and not trunc.any()


# -- seeding ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mpe:simple_spread", "pettingzoo:mpe2.simple_spread_v3"])
def test_seeding_reproducible(name):
    a, b = make_env(name, num_envs=3, seed=7), make_env(name, num_envs=3, seed=7)
    assert _same([o.numpy() for o in a.obs], [o.numpy() for o in b.obs])
    assert _same(_rollout(a, 60), _rollout(b, 60))  # two episode boundaries
    c = make_env(name, num_envs=3, seed=8)
    assert not torch.equal(c.obs[0], a.obs[0])
    # copy b of seed s starts like copy 0 of seed s + b
    d = make_env(name, num_envs=1, seed=9)
    assert torch.equal(make_env(name, num_envs=3, seed=7).obs[0][2], d.obs[0][0])


# -- the vectorised path is bit-identical to mpe2's parallel_env ----------------------------
@pytest.mark.parametrize("scenario", ["simple", "simple_spread", "simple_speaker_listener", "simple_reference"])
@pytest.mark.parametrize("continuous", [False, True])
def test_fast_path_equals_parallel_env(scenario, continuous):
    B, T, seed = 3, 55, 11
    kw = {"N": 4, "local_ratio": 0.3} if scenario == "simple_spread" and continuous else {}
    fast = make_mpe(scenario, num_envs=B, seed=seed, continuous_actions=continuous, **kw)
    assert isinstance(fast, MPEVecEnv)
    module = importlib.import_module(f"mpe2.{MPE_SCENARIOS[scenario]}")
    plain = [module.parallel_env(continuous_actions=continuous, max_cycles=25, **kw) for _ in range(B)]
    last = [p.reset(seed=seed + b)[0] for b, p in enumerate(plain)]
    names = fast.agents

    def check(obs, state, plain_obs):
        for b, p in enumerate(plain):
            for i, a in enumerate(names):
                assert np.array_equal(obs[i][b].numpy(), plain_obs[b][a])
            assert np.array_equal(state[b].numpy(), p.state())

    check(fast.obs, fast.state, last)
    g = torch.Generator().manual_seed(3)
    collisions = 0
    for _ in range(T):
        acts = fast.sample_actions(g)
        if continuous:
            acts = [a * 0.6 + 0.5 for a in acts]      # some entries outside [0, 1]: both clip
        obs, state, reward, term, trunc, fobs, fstate = fast.step(acts)
        nxt = []
        for b, p in enumerate(plain):
            if continuous:
                joint = {a: np.clip(acts[i][b].numpy(), 0, 1) for i, a in enumerate(names)}
            else:
                joint = {a: int(acts[i][b]) for i, a in enumerate(names)}
            o, r, te, tr, _ = p.step(joint)
            for i, a in enumerate(names):
                assert np.array_equal(fobs[i][b].numpy(), o[a])
            assert np.array_equal(fstate[b].numpy(), p.state())
            assert reward[b].item() == np.float32(sum(r.values()))   # team reward = sum over agents
            assert bool(term[b]) == any(te.values()) and bool(trunc[b]) == any(tr.values())
            collisions += len(set(r.values())) > 1 and scenario == "simple_spread"
            if any(te.values()) or any(tr.values()):
                o, _ = p.reset()
            nxt.append(o)
        check(obs, state, nxt)
    if scenario == "simple_spread":
        assert collisions > 0       # the contact forces and collision penalties were exercised


def test_fast_and_generic_paths_agree():
    kw = dict(num_envs=2, seed=4, continuous_actions=True)
    fast, slow = make_mpe("simple_reference", fast=True, **kw), make_mpe("simple_reference", fast=False, **kw)
    assert isinstance(slow, PettingZooVecEnv) and not isinstance(slow, MPEVecEnv)
    assert slow.name == fast.name == "mpe:simple_reference"
    assert _same(_rollout(fast, 30, scale=0.7, shift=0.5), _rollout(slow, 30, scale=0.7, shift=0.5))


# -- box clipping -------------------------------------------------------------------------
@pytest.mark.parametrize("fast", [True, False])
def test_box_actions_are_clipped(fast):
    a = make_mpe("simple_spread", num_envs=2, seed=0, continuous_actions=True, fast=fast)
    b = make_mpe("simple_spread", num_envs=2, seed=0, continuous_actions=True, fast=fast)
    wild = torch.tensor([[100.0, -5.0, 3.0, -0.5, 0.7]] * 2)
    tame = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.7]] * 2)
    for _ in range(3):
        ra, rb = a.step([wild] * 3), b.step([tame] * 3)
        assert _same([x.numpy() for x in ra[0]], [x.numpy() for x in rb[0]])
        assert torch.equal(ra[2], rb[2])


# -- checkpoints --------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", ["simple_spread", "simple_speaker_listener"])
def test_state_round_trip(scenario):
    env = make_mpe(scenario, num_envs=3, seed=2, continuous_actions=scenario == "simple_spread")
    _rollout(env, 10, seed=1)
    snap = env.get_state()
    buf = io.BytesIO()
    torch.save(snap, buf)
    buf.seek(0)
    first = _rollout(env, 30, seed=5)                 # crosses an episode boundary: RNG restored too
    env.set_state(snap)
    assert _same(_rollout(env, 30, seed=5), first)
    loaded = torch.load(buf, weights_only=True)
    other = make_mpe(scenario, num_envs=3, seed=99, continuous_actions=scenario == "simple_spread")
    other.set_state(loaded)
    assert _same(_rollout(other, 30, seed=5), first)
    assert _same(env.pop_episodes(), other.pop_episodes())
    with pytest.raises(HarlMiniError, match="snapshot"):
        make_mpe(scenario, num_envs=2, seed=0).set_state(loaded)
    assert make_env("pettingzoo:mpe2.simple_v3", num_envs=1).get_state() is None


# -- names and errors ---------------------------------------------------------------------
def test_unknown_names_and_missing_package(monkeypatch):
    with pytest.raises(HarlMiniError, match="simple_spread"):
        make_env("mpe:simple_nonsense")
    with pytest.raises(HarlMiniError, match="no_such_module"):
        make_env("pettingzoo:no_such_module.env_v0")
    with pytest.raises(HarlMiniError, match="parallel_env"):
        make_env("pettingzoo:mpe2._mpe_utils.core")
    with pytest.raises(HarlMiniError, match="fast=True"):
        make_mpe("simple_tag", fast=True)
    with pytest.raises(HarlMiniError, match="not covered"):
        make_mpe("simple_spread", curriculum=True, fast=True)
    assert isinstance(make_mpe("simple_spread_v3", num_envs=1), MPEVecEnv)   # versioned name accepted
    monkeypatch.setitem(sys.modules, "mpe2", None)
    monkeypatch.setitem(sys.modules, "mpe2.simple_spread_v3", None)
    with pytest.raises(HarlMiniError, match="pip install"):
        make_env("mpe:simple_spread")


# -- the generic path ---------------------------------------------------------------------
def test_generic_path_on_another_mpe_env():
    env = make_env("pettingzoo:mpe2.simple_push_v3", num_envs=2, seed=0)
    assert isinstance(env, PettingZooVecEnv)
    assert env.obs_dims == [8, 19] and env.action_spaces == [("discrete", 5)] * 2 and env.state_dim == 27
    for _ in range(25):
        obs, state, reward, term, trunc, *_ = env.step(env.sample_actions())
    assert trunc.all() and not term.any() and torch.isfinite(reward).all()
    # simple_tag falls back to the generic path under mpe:
    assert isinstance(make_env("mpe:simple_tag", num_envs=1), PettingZooVecEnv)


class _Tiny(ParallelEnv):
    """Two agents: Discrete(3, start=1) and Box(-2, 2, (2,)); no global state; agent "a"
    terminates at step ``die_at``; the episode is truncated after ``horizon`` steps."""

    metadata = {"name": "tiny_v0"}

    def __init__(self, horizon: int = 6, die_at: int = 4):
        self.possible_agents = ["a", "b"]
        self.horizon, self.die_at = horizon, die_at
        self.rng = np.random.default_rng()
        self._obs_space = {"a": Box(-np.inf, np.inf, (2, 2)), "b": Box(-np.inf, np.inf, (3,))}
        self._act_space = {"a": Discrete(3, start=1), "b": Box(-2.0, 2.0, (2,), dtype=np.float32)}

    def observation_space(self, agent):
        return self._obs_space[agent]

    def action_space(self, agent):
        return self._act_space[agent]

    def _obs(self):
        return {"a": np.full((2, 2), self.x[0]), "b": self.x.astype(np.float32)}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.agents, self.t = list(self.possible_agents), 0
        self.x = self.rng.normal(size=3)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        assert actions["a"] in (1, 2, 3) and self._act_space["b"].contains(actions["b"])
        self.t += 1
        self.x = self.x + 0.1
        rewards = {"a": float(actions["a"]), "b": float(np.sum(actions["b"]))}
        term = {"a": self.t == self.die_at, "b": False}
        trunc = {a: self.t >= self.horizon for a in self.agents}
        obs = self._obs()
        if any(term.values()) or any(trunc.values()):
            self.agents = []
        return obs, rewards, term, trunc, {a: {} for a in self.possible_agents}


def test_generic_adapter_rules():
    env = PettingZooVecEnv(_Tiny, num_envs=2, seed=3, name="pettingzoo:tiny")
    assert env.obs_dims == [4, 3] and env.action_spaces == [("discrete", 3), ("box", 2)]
    assert env.state_dim == 7 and env.get_state() is None      # no env.state(): observations concatenated
    assert torch.equal(env.state, torch.cat(env.obs, dim=1))
    acts = [torch.tensor([0, 2]), torch.tensor([[5.0, -5.0], [0.5, 0.25]])]
    for t in range(1, 5):
        obs, state, reward, term, trunc, fobs, fstate = env.step(acts)
        # start offset added back (1, 3); Box clipped to [-2, 2]: 5 − 5 → 2 − 2 = 0
        assert reward.tolist() == [1.0, 3.75]
        assert term.tolist() == [t == 4] * 2 and not trunc.any()
    assert torch.allclose(fobs[1], torch.tensor(0.4) + PettingZooVecEnv(_Tiny, 2, seed=3).obs[1])
    assert not torch.allclose(obs[1], fobs[1])                 # reset in the same step
    assert env.pop_episodes()[1] == [4, 4]
    trunc_env = PettingZooVecEnv(lambda: _Tiny(horizon=2, die_at=9), num_envs=1, seed=0)
    flags = [trunc_env.step([torch.tensor([0]), torch.zeros(1, 2)])[3:5] for _ in range(2)]
    assert [(bool(te), bool(tr)) for te, tr in flags] == [(False, False), (False, True)]
    with pytest.raises(HarlMiniError, match="ParallelEnv"):
        PettingZooVecEnv(lambda: object(), num_envs=1)


# -- training smoke tests -----------------------------------------------------------------
@pytest.mark.parametrize("algo", ["happo", "hatrpo", "mappo"])
def test_training_smoke(algo):
    from harl_mini.marl.runner import train

    hist = train(algo, "mpe:simple_spread", steps=2 * 8 * 25, num_envs=8, num_steps=25, progress=False)
    rows = hist.rows
    assert len(rows) == 2
    for row in rows:
        assert all(math.isfinite(v) for v in row.values() if isinstance(v, float))
        assert row["episode_length"] == 25.0
