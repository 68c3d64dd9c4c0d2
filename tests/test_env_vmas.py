"""The VMAS adapter (harl_mini.envs.vmas): shapes, time limit vs termination, automatic
reset, seeding, action clipping, discrete actions, errors, checkpoints and a training smoke
test, on transport, balance, navigation and the heterogeneous simple_speaker_listener.

Small batches (4–8 copies) and few steps keep the file to a few seconds on one thread.
"""

from __future__ import annotations

import io
import math
import sys

import pytest
import torch

pytest.importorskip("vmas")

from harl_mini.envs import make_env  # noqa: E402
from harl_mini.envs import vmas as V  # noqa: E402
from harl_mini.envs.multi import MultiAgentVecEnv  # noqa: E402
from harl_mini.errors import HarlMiniError  # noqa: E402

torch.set_num_threads(1)

# scenario -> (agents, obs dims, box action dims, discrete action counts)
SPECS = {
    "transport": (4, [11] * 4, [2] * 4, [9] * 4),
    "balance": (3, [16] * 3, [2] * 3, [9] * 3),
    "navigation": (4, [18] * 4, [2] * 4, [9] * 4),
    "simple_speaker_listener": (2, [3, 11], [5, 2], [27, 9]),
}


def _actions(env, gen, scale=1.0):
    return [a * scale for a in env.sample_actions(gen)]


def _flat(out):
    """obs, reward, terminated, truncated and final_obs of a step, as one list of tensors."""
    obs, _, reward, term, trunc, fobs, _ = out
    return [*obs, reward, term, trunc, *fobs]


def _same(outs_a, outs_b) -> bool:
    return all(torch.equal(x, y) for a, b in zip(outs_a, outs_b) for x, y in zip(_flat(a), _flat(b)))


# ---------------------------------------------------------------------------------------
# Spaces, shapes and dtypes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(SPECS))
def test_spaces_shapes_and_dtypes(scenario):
    n, obs_dims, act_dims, _ = SPECS[scenario]
    B = 4
    env = make_env(f"vmas:{scenario}", num_envs=B, seed=0)
    assert isinstance(env, MultiAgentVecEnv) and env.name == f"vmas:{scenario}"
    assert env.num_agents == n and env.obs_dims == obs_dims and env.state_dim == sum(obs_dims)
    assert env.action_spaces == [("box", d) for d in act_dims]
    assert env.max_steps == 100
    obs, state = env.obs, env.state  # make_env resets
    assert torch.equal(state, torch.cat(obs, dim=1))
    out = env.step(env.sample_actions(torch.Generator().manual_seed(0)))
    obs, state, reward, term, trunc, fobs, fstate = out
    for i, d in enumerate(obs_dims):
        for o in (obs[i], fobs[i]):
            assert o.shape == (B, d) and o.dtype == torch.float32 and o.device.type == "cpu"
    assert state.shape == fstate.shape == (B, sum(obs_dims)) and state.dtype == torch.float32
    assert torch.equal(state, torch.cat(obs, dim=1)) and torch.equal(fstate, torch.cat(fobs, dim=1))
    assert reward.shape == (B,) and reward.dtype == torch.float32 and torch.isfinite(reward).all()
    assert term.dtype == trunc.dtype == torch.bool and term.shape == trunc.shape == (B,)


def test_heterogeneous_agents_and_team_reward():
    env = make_env("vmas:simple_speaker_listener", num_envs=4, seed=0)
    assert env.obs_dims == [3, 11] and env.action_spaces == [("box", 5), ("box", 2)]
    assert env.agent_names == ["speaker_0", "listener_0"]
    # the team reward is the mean of VMAS's per-agent rewards
    env.step(env.sample_actions(torch.Generator().manual_seed(1)))
    per_agent = torch.stack([env._env.scenario.reward(a).reshape(-1) for a in env._env.agents], dim=1)
    env2 = make_env("vmas:simple_speaker_listener", num_envs=4, seed=0)
    out = env2.step(env2.sample_actions(torch.Generator().manual_seed(1)))
    assert torch.allclose(out[2], per_agent.mean(dim=1))


# ---------------------------------------------------------------------------------------
# Time limit, termination and automatic reset
# ---------------------------------------------------------------------------------------


def test_truncation_at_max_steps_and_final_obs():
    B = 4
    env = make_env("vmas:transport", num_envs=B, seed=0, max_steps=3)
    gen = torch.Generator().manual_seed(0)
    start = [o.clone() for o in env.obs]
    total = torch.zeros(B, dtype=torch.float64)
    for t in range(3):
        obs, state, reward, term, trunc, fobs, fstate = env.step(_actions(env, gen))
        total += reward.double()
        assert not term.any()
        assert bool(trunc.all()) == (t == 2) and bool(trunc.any()) == (t == 2)
        if t < 2:
            assert all(torch.equal(o, f) for o, f in zip(obs, fobs)) and torch.equal(state, fstate)
    # the copies were reset in the same step: obs is a fresh start, final_obs the last one
    assert any(not torch.equal(o, f) for o, f in zip(obs, fobs))
    assert any(not torch.equal(o, s) for o, s in zip(obs, start))  # a new random start
    assert torch.equal(env.episode_t, torch.zeros(B, dtype=torch.long))
    returns, lengths = env.pop_episodes()
    assert lengths == [3] * B and returns == pytest.approx(total.tolist(), abs=1e-6)
    assert env.pop_episodes() == ([], [])


def test_termination_resets_only_those_copies(monkeypatch):
    B = 6
    env = make_env("vmas:balance", num_envs=B, seed=0, max_steps=2)
    gen = torch.Generator().manual_seed(0)
    which = torch.tensor([True, False, False, True, False, False])
    monkeypatch.setattr(env._env.scenario, "done", lambda: which.clone())
    obs, state, reward, term, trunc, fobs, fstate = env.step(_actions(env, gen))
    assert torch.equal(term, which) and not trunc.any()
    for o, f in zip(obs, fobs):
        assert torch.equal(o[~which], f[~which])     # running copies: obs is what the step led to
        assert not torch.equal(o[which], f[which])   # terminated copies: a fresh start
    assert torch.equal(env.episode_t, (~which).long())
    # second step: the time limit hits the copies that ran 2 steps; a terminal step is never truncated
    obs, state, reward, term, trunc, fobs, fstate = env.step(_actions(env, gen))
    assert torch.equal(term, which) and torch.equal(trunc, ~which)
    assert sorted(env.pop_episodes()[1]) == [1, 1, 1, 1, 2, 2, 2, 2]


@pytest.mark.parametrize("scenario", ["balance", "simple_speaker_listener"])
def test_batched_partial_reset_matches_reset_at(scenario):
    """The batched partial reset leaves the copies that go on exactly as VMAS's reset_at(i)."""
    B, gen = 5, torch.Generator().manual_seed(1)
    envs = [V.VmasEnv(scenario, B, seed=3, partial_reset=m, max_steps=1000) for m in ("per_index", "batched")]
    for _ in range(3):
        a = envs[0].sample_actions(gen)
        for e in envs:
            e.step(a)
    before = [o.clone() for o in envs[0].obs]
    reset = torch.tensor([True, False, True, False, False])
    after = []
    for e in envs:
        with e._own_rng():
            e._reset_copies(reset, 2)
            after.append(e._env.get_from_scenario(get_observations=True, get_rewards=False, get_infos=False,
                                                  get_dones=False)[0])
    for a, b, o in zip(*after, before):
        assert torch.equal(a[~reset], b[~reset]) and torch.equal(b[~reset], o[~reset])
    assert any(not torch.equal(b[reset], o[reset]) for b, o in zip(after[1], before))  # a new start
    going = ~reset
    for _ in range(4):
        a = envs[0].sample_actions(gen)
        outs = [e.step(a) for e in envs]
        going = going & ~(outs[0][3] | outs[0][4])
        for x, y in zip(_flat(outs[0]), _flat(outs[1])):
            assert torch.equal(x[going], y[going])


# ---------------------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["transport", "navigation"])
def test_same_seed_same_trajectory_and_private_rng(scenario):
    def rollout(env, seed, steps=5):
        gen = torch.Generator().manual_seed(seed)
        return [env.step(_actions(env, gen)) for _ in range(steps)]

    a = make_env(f"vmas:{scenario}", num_envs=4, seed=7, max_steps=2)
    b = make_env(f"vmas:{scenario}", num_envs=4, seed=7, max_steps=2)
    c = make_env(f"vmas:{scenario}", num_envs=4, seed=8, max_steps=2)
    assert all(torch.equal(x, y) for x, y in zip(a.obs, b.obs))
    assert not all(torch.equal(x, y) for x, y in zip(a.obs, c.obs))
    torch.manual_seed(0)
    global_state = torch.get_rng_state()
    ref = rollout(a, 1)  # resets at steps 2 and 4 draw from a's own random state
    assert torch.equal(torch.get_rng_state(), global_state)  # the caller's generator is untouched
    # b's trajectory is the same although c steps (and resets) in between
    gen_b, gen_c = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    got = []
    for _ in range(5):
        got.append(b.step(_actions(b, gen_b)))
        c.step(_actions(c, gen_c))
    assert _same(ref, got)
    # reset(seed) starts the same trajectory again
    obs, _ = a.reset(7)
    assert all(torch.equal(x, y) for x, y in zip(obs, make_env(f"vmas:{scenario}", num_envs=4, seed=7).obs))
    assert _same(ref, rollout(a, 1))


# ---------------------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------------------


def test_box_actions_are_clipped_to_vmas_ranges():
    B = 4
    envs = [make_env("vmas:simple_speaker_listener", num_envs=B, seed=0) for _ in range(2)]
    wild = [torch.tensor([[100.0, -100.0, 5.0, -5.0, 0.5]] * B), torch.tensor([[3.0, -0.25]] * B)]
    tame = [torch.tensor([[1.0, -1.0, 1.0, 0.0, 0.5]] * B), torch.tensor([[1.0, -0.25]] * B)]
    for _ in range(3):
        out_w, out_t = envs[0].step([a.clone() for a in wild]), envs[1].step(tame)
        assert _same([out_w], [out_t])
    assert torch.equal(envs[0]._env.agents[0].state.c, torch.tensor([[1.0, 0.0, 0.5]] * B))
    # the caller's tensors are not modified; float64 actions are accepted
    a64 = [a.double() for a in wild]
    envs[0].step(a64)
    assert a64[0][0, 0].item() == 100.0
    big = make_env("vmas:transport", num_envs=B, seed=0)
    big.step([torch.full((B, 2), 1e6)] * 4)


def test_discrete_actions():
    B = 4
    for scenario, (n, obs_dims, _, counts) in SPECS.items():
        if scenario in ("navigation", "balance"):
            continue
        env = make_env(f"vmas:{scenario}", num_envs=B, seed=0, continuous_actions=False, max_steps=3)
        assert env.action_spaces == [("discrete", k) for k in counts] and env.obs_dims == obs_dims
        gen = torch.Generator().manual_seed(0)
        for _ in range(3):
            acts = env.sample_actions(gen)
            kept = [a.clone() for a in acts]
            out = env.step(acts)
            assert all(torch.equal(a, k) and a.shape == (B,) for a, k in zip(acts, kept))
        assert out[4].all()
        with pytest.raises(HarlMiniError, match="out of range"):
            env.step([torch.full((B,), k) for k in counts])
    # action 0 is "stay": the listener does not move
    env = make_env("vmas:simple_speaker_listener", num_envs=B, seed=0, continuous_actions=False)
    pos = env._env.agents[1].state.pos.clone()
    env.step([torch.zeros(B, dtype=torch.long)] * 2)
    assert torch.equal(env._env.agents[1].state.pos, pos)


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def test_unknown_scenario_lists_the_scenarios():
    with pytest.raises(HarlMiniError, match="unknown VMAS scenario 'nope'.*balance.*transport.*simple_spread"):
        make_env("vmas:nope")
    with pytest.raises(HarlMiniError, match="vmas:transport"):
        make_env("vmas:")
    with pytest.raises(HarlMiniError, match="max_steps"):
        make_env("vmas:transport", max_steps=0)
    with pytest.raises(HarlMiniError, match="partial_reset"):
        make_env("vmas:transport", partial_reset="sometimes")
    with pytest.raises(HarlMiniError, match="actions\\[1\\] must have shape \\[4, 2\\]"):
        make_env("vmas:transport", num_envs=4).step([torch.zeros(4, 2), torch.zeros(4, 3)] + [torch.zeros(4, 2)] * 2)


def test_missing_vmas_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vmas", None)
    with pytest.raises(HarlMiniError, match="pip install vmas"):
        make_env("vmas:transport")


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["transport", "balance", "simple_speaker_listener"])
def test_get_state_set_state_continues_identically(scenario):
    B, gen = 4, torch.Generator().manual_seed(0)
    env = make_env(f"vmas:{scenario}", num_envs=B, seed=0, max_steps=3)
    for _ in range(4):
        env.step(_actions(env, gen))
    buf = io.BytesIO()
    torch.save(env.get_state(), buf)
    buf.seek(0)
    snap = torch.load(buf, weights_only=True)
    actions = [_actions(env, gen) for _ in range(7)]  # crosses two time limits: resets draw random starts
    ref = [env.step(a) for a in actions]
    ref_eps = env.pop_episodes()
    # into a fresh env built with another seed, and back into the original one
    for target in (make_env(f"vmas:{scenario}", num_envs=B, seed=99, max_steps=3), env):
        target.set_state(snap)
        assert torch.equal(target.episode_t, snap["episode_t"])
        got = [target.step(a) for a in actions]
        assert _same(ref, got)
        assert target.pop_episodes() == ref_eps
    with pytest.raises(HarlMiniError, match="snapshot"):
        make_env("vmas:navigation", num_envs=B).set_state(snap)


# ---------------------------------------------------------------------------------------
# Training smoke test
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["happo", "mappo"])
def test_training_smoke(algo):
    from harl_mini.marl.runner import train

    num_envs, num_steps = 8, 8
    hist = train(algo, "vmas:transport", steps=2 * num_envs * num_steps, num_envs=num_envs, num_steps=num_steps,
                 progress=False)
    assert len(hist.rows) == 2
    # no episode ends within 2 × 8 steps (max_steps 100): the episode statistics are NaN
    episode_stats = ("j_estimate", "episode_return", "episode_length")
    for row in hist.rows:
        for key, value in row.items():
            if isinstance(value, float) and key not in episode_stats:
                assert math.isfinite(value), (key, value)
    assert math.isfinite(hist.rows[-1]["eval_return"])
