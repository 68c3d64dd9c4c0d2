"""The Multi-Agent MuJoCo adapter (``mamujoco:<Scenario>-<conf>``); skipped without the extra."""

import copy
import io
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from harl_mini.errors import HarlMiniError

pytest.importorskip("gymnasium_robotics")
pytest.importorskip("mujoco")

from harl_mini.envs import make_env  # noqa: E402
from harl_mini.envs import mamujoco  # noqa: E402

torch.set_num_threads(1)


def _run(env, steps, gen_seed=0):
    g = torch.Generator().manual_seed(gen_seed)
    out = []
    for _ in range(steps):
        out.append(env.step([2.0 * a for a in env.sample_actions(g)]))
    return out


def _same(a, b):
    """Recursively compare step outputs (tuples / lists of tensors) exactly."""
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("name, obs_dims, acts, state_dim", [
    ("HalfCheetah-2x3", [12, 12], [3, 3], 17),
    ("Ant-4x2", [42] * 4, [2] * 4, 105),
    ("Walker2d-2x3", [12, 12], [3, 3], 17),
])
def test_shapes(name, obs_dims, acts, state_dim):
    env = make_env(f"mamujoco:{name}", num_envs=3, seed=0)
    assert env.name == f"mamujoco:{name}"
    assert env.obs_dims == obs_dims and env.state_dim == state_dim
    assert env.action_spaces == [("box", d) for d in acts]
    obs, state, reward, term, trunc, fobs, fstate = env.step(env.sample_actions())
    assert [tuple(o.shape) for o in obs] == [(3, d) for d in obs_dims]
    assert [tuple(o.shape) for o in fobs] == [(3, d) for d in obs_dims]
    assert state.shape == fstate.shape == (3, state_dim) and state.dtype == torch.float32
    assert reward.shape == (3,) and term.dtype == trunc.dtype == torch.bool
    # obs="global": the full state plus a one-hot id for every agent (HARL's setting)
    genv = make_env(f"mamujoco:{name}", num_envs=2, seed=0, obs="global")
    n = len(acts)
    assert genv.obs_dims == [state_dim + n] * n
    for i, o in enumerate(genv.obs):
        assert torch.equal(o[:, :state_dim], genv.state)
        assert torch.equal(o[:, state_dim:], torch.eye(n)[i].expand(2, n))
    out64 = make_env(f"mamujoco:{name}", num_envs=1, dtype=torch.float64).step([torch.zeros(1, d) for d in acts])
    assert all(t.dtype == torch.float64 for t in out64[0] + [out64[1], out64[2]])
    # agent_obsk=0 observes only its own joints (+ the root): smaller observations
    assert make_env(f"mamujoco:{name}", num_envs=1, agent_obsk=0).obs_dims[0] < obs_dims[0]


def test_matches_parallel_env():
    """Same seed and (clipped) actions: the adapter reproduces parallel_env exactly."""
    from gymnasium_robotics import mamujoco_v1

    env = make_env("mamujoco:Ant-4x2", num_envs=2, seed=5, max_episode_steps=1000)
    ref = mamujoco_v1.parallel_env("Ant", "4x2")
    ref.reset(seed=6)  # copy 1 is reset with seed + 1
    g = torch.Generator().manual_seed(1)
    for _ in range(30):
        acts = [2.0 * a for a in env.sample_actions(g)]
        _, _, r, term, _, fobs, fstate = env.step(acts)
        ro, rr, rterm, _, _ = ref.step({a: acts[i][1].clamp(-1, 1).double().numpy()
                                        for i, a in enumerate(ref.possible_agents)})
        for i, a in enumerate(ref.possible_agents):
            assert np.array_equal(np.float32(ro[a]), fobs[i][1].numpy())
        assert np.array_equal(np.float32(ref.state()), fstate[1].numpy())
        assert r[1].item() == np.float32(rr["agent_0"]) and bool(term[1]) == rterm["agent_0"]
        if rterm["agent_0"]:
            break


def test_truncation_and_final_obs():
    env = make_env("mamujoco:HalfCheetah-2x3", num_envs=2, seed=0, max_episode_steps=5)
    first = [o.clone() for o in env.obs]
    for t in range(5):
        obs, state, reward, term, trunc, fobs, fstate = env.step(env.sample_actions())
        assert not term.any()
        if t < 4:
            assert not trunc.any()
            assert all(torch.equal(o, f) for o, f in zip(obs, fobs)) and torch.equal(state, fstate)
    assert trunc.all()
    # the copies were reset in the same step: obs is a fresh episode, final_obs what the step led to
    assert not any(torch.equal(o, f) for o, f in zip(obs, fobs))
    assert not torch.equal(state, fstate)
    assert not torch.equal(obs[0], first[0])  # auto-resets continue the generator
    returns, lengths = env.pop_episodes()
    assert lengths == [5, 5] and all(math.isfinite(x) for x in returns)
    assert env.episode_t.tolist() == [0, 0]


def test_termination_kept_apart_from_truncation():
    env = make_env("mamujoco:Walker2d-2x3", num_envs=4, seed=0, max_episode_steps=1000)
    seen = False
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        _, _, _, term, trunc, _, _ = env.step([3.0 * a for a in env.sample_actions(g)])
        assert not (term & trunc).any() and not trunc.any()
        seen |= bool(term.any())
    assert seen  # random flailing makes the walker fall


def test_seeding():
    a = make_env("mamujoco:Walker2d-2x3", num_envs=2, seed=7)
    b = make_env("mamujoco:Walker2d-2x3", num_envs=2, seed=7)
    c = make_env("mamujoco:Walker2d-2x3", num_envs=2, seed=8)
    assert _same(a.obs, b.obs) and not _same(a.obs, c.obs)
    assert not torch.equal(a.obs[0][0], a.obs[0][1])  # copy b is reset with seed + b
    assert torch.equal(a.obs[0][1], c.obs[0][0])
    assert _same(_run(a, 60), _run(b, 60))  # includes falls and auto-resets


@pytest.mark.parametrize("name", ["Ant-4x2", "Walker2d-2x3"])
def test_state_round_trip(name):
    env = make_env(f"mamujoco:{name}", num_envs=2, seed=1, max_episode_steps=20)
    _run(env, 13, gen_seed=3)
    snap = env.get_state()
    buf = io.BytesIO()
    torch.save(snap, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    dup = copy.deepcopy(env)  # the runner's evaluation env is a deepcopy
    first = _run(env, 25, gen_seed=4)  # crosses truncations and auto-resets (random generator)
    assert _same(first, _run(dup, 25, gen_seed=4))
    env.set_state(snap)
    assert _same(first, _run(env, 25, gen_seed=4))
    other = make_env(f"mamujoco:{name}", num_envs=2, seed=99, max_episode_steps=20)
    other.set_state(loaded)
    assert _same(first, _run(other, 25, gen_seed=4))
    assert other.pop_episodes() == env.pop_episodes()
    with pytest.raises(HarlMiniError, match="snapshot"):
        make_env(f"mamujoco:{name}", num_envs=3).set_state(snap)


def test_clipping():
    env = make_env("mamujoco:HalfCheetah-2x3", num_envs=1, seed=0)
    big = make_env("mamujoco:HalfCheetah-2x3", num_envs=1, seed=0)
    assert [lo.tolist() for lo in env.action_low] == [[-1.0] * 3] * 2
    acts = [torch.tensor([[0.5, -0.2, 1.0]]), torch.tensor([[1.0, -1.0, 0.0]])]
    wild = [torch.tensor([[0.5, -0.2, 7.0]]), torch.tensor([[30.0, -4.0, 0.0]])]
    out, out_big = env.step(acts), big.step(wild)
    assert _same(out, out_big)
    ctrl = big._inner[0].data.ctrl[big._act_ids]  # the robot's controls, in the agents' order
    assert np.array_equal(ctrl, np.float32([0.5, -0.2, 1.0, 1.0, -1.0, 0.0]).astype(np.float64))


def test_errors():
    with pytest.raises(HarlMiniError, match="HalfCheetah-2x3.*Walker2d-2x3"):
        make_env("mamujoco:Dog-2x3")
    with pytest.raises(HarlMiniError, match="unknown MaMuJoCo scenario HalfCheetah-5x5; available"):
        make_env("mamujoco:HalfCheetah-5x5")
    with pytest.raises(HarlMiniError, match="<Scenario>-<agent_conf>"):
        make_env("mamujoco:HalfCheetah")
    with pytest.raises(HarlMiniError, match="max_episode_steps"):
        make_env("mamujoco:HalfCheetah-2x3", max_episode_steps=0)
    with pytest.raises(HarlMiniError, match="observation mode"):
        make_env("mamujoco:HalfCheetah-2x3", obs="pixels")
    env = make_env("mamujoco:HalfCheetah-2x3", num_envs=2)
    with pytest.raises(HarlMiniError, match=r"actions\[1\]"):
        env.step([torch.zeros(2, 3), torch.zeros(2, 2)])
    assert {"HalfCheetah-2x3", "Ant-4x2", "Walker2d-2x3", "Hopper-3x1"} <= set(mamujoco.available_scenarios())


def test_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)
    with pytest.raises(HarlMiniError, match=r"pip install '\.\[mujoco\]'"):
        make_env("mamujoco:HalfCheetah-2x3")


def test_import_is_lazy():
    code = ("import sys, harl_mini.envs.mamujoco; "
            "assert 'mujoco' not in sys.modules and 'gymnasium_robotics' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_import_is_quiet():
    code = "from harl_mini.envs import make_env; make_env('mamujoco:HalfCheetah-2x3')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    assert "Adroit" not in res.stderr and "settotalmass" not in res.stderr + res.stdout


@pytest.mark.parametrize("algo", ["happo", "hatrpo"])
def test_training_smoke(algo):
    from harl_mini.marl.runner import train

    history = train(algo, "mamujoco:HalfCheetah-2x3", steps=2 * 4 * 16, num_envs=4, num_steps=16, progress=False)
    assert len(history.rows) == 2
    # no 1000-step episode ends within 16 steps, so the episode statistics are NaN
    no_episodes = {"episode_return", "episode_length", "j_estimate"}
    for row in history.rows:
        assert {"policy_loss", "value_loss", "entropy"} <= set(row)
        for key, v in row.items():
            if isinstance(v, float) and key not in no_episodes:
                assert math.isfinite(v), (key, row)
    assert math.isfinite(history.rows[-1]["eval_return"])


# ---------------------------------------------------------------------------------------
# One actuator per agent: Walker2d-6x1, Ant-8x1, Humanoid-17x1 (custom factorizations)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, base, n", [("Walker2d-6x1", "Walker2d-2x3", 6), ("Ant-8x1", "Ant-4x2", 8),
                                           ("Humanoid-17x1", "Humanoid-9|8", 17)])
def test_one_actuator_per_agent_partitions(name, base, n):
    """The papers' many-agent partitions that Gymnasium-Robotics does not name: one agent per
    actuator, in actuator order; they step, reset, are deterministic under a seed, drive the
    same robot as the library partition they split, and survive a snapshot round trip."""
    env = make_env(f"mamujoco:{name}", num_envs=2, seed=5, max_episode_steps=15)
    ref = make_env(f"mamujoco:{base}", num_envs=2, seed=5, max_episode_steps=15)
    assert env.num_agents == n and env.action_spaces == [("box", 1)] * n
    assert env.state_dim == ref.state_dim and torch.equal(env.state, ref.state)
    assert env._act_ids.tolist() == list(range(n))  # agent i drives actuator i
    # the same joint actions (scattered by actuator) give the same robot trajectory
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # crosses a truncation (15 steps) and its auto-reset
        joint = torch.rand(2, n, generator=g) * 2 - 1
        out = env.step([joint[:, i:i + 1] for i in range(n)])
        parts, start = [], 0
        for dim in [d for _, d in ref.action_spaces]:
            parts.append(joint[:, ref._act_ids[start:start + dim]])
            start += dim
        out_ref = ref.step(parts)
        assert torch.equal(out[1], out_ref[1]) and torch.equal(out[2], out_ref[2])   # state, reward
        assert torch.equal(out[3], out_ref[3]) and torch.equal(out[4], out_ref[4])   # terminated, truncated
    # deterministic under a seed, different across seeds
    a = make_env(f"mamujoco:{name}", num_envs=2, seed=7, max_episode_steps=15)
    b = make_env(f"mamujoco:{name}", num_envs=2, seed=7, max_episode_steps=15)
    c = make_env(f"mamujoco:{name}", num_envs=2, seed=8, max_episode_steps=15)
    assert _same(a.obs, b.obs) and not _same(a.obs, c.obs)
    assert _same(_run(a, 30), _run(b, 30))
    snap = a.get_state()
    first = _run(a, 10, gen_seed=2)
    a.set_state(snap)
    assert _same(first, _run(a, 10, gen_seed=2))
    with pytest.raises(HarlMiniError, match="agent_factorization"):
        make_env(f"mamujoco:{name}", agent_factorization={})
