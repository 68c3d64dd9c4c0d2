"""The sampled multi-agent runner (harl_mini.marl): IPPO, MAPPO, HAPPO, HATRPO.

Small batches and networks throughout: each training call is two or three iterations.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import kl_divergence

from harl_mini import marl
from harl_mini.envs.matrix import MatrixGameEnv
from harl_mini.envs.multi import MultiAgentVecEnv
from harl_mini.errors import HarlMiniError
from harl_mini.marl.runner import MARunner, exact_objective, update_factor
from harl_mini.nets import flat_params
from harl_mini.tabular import game_objective, make_game

SMALL = dict(num_envs=32, num_steps=4, hidden=(8,), ppo_epochs=2, critic_epochs=2, eval_interval=1, eval_episodes=4)
ALGOS = ["ippo", "mappo", "happo", "hatrpo"]
GAMES = ["game:xor", "game:prop1-4", "game:permutation-3", "game:a1a2"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _steps(iterations: int, hp=SMALL) -> int:
    return iterations * hp["num_envs"] * hp["num_steps"]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("env", GAMES)
def test_two_iterations_train(algo, env):
    h = marl.train(algo, env, _steps(2), seed=0, progress=False, **SMALL)
    assert len(h) == 2 and h.last["steps"] == _steps(2)
    for key in ("episode_return", "j_estimate", "j_exact", "eval_return", "kl", "entropy", "value_loss",
                "policy_loss", "wall_time"):
        assert math.isfinite(h.last[key]), key
    n = h.runner.N
    assert all(f"kl_{i}" in h.last for i in range(n))
    if algo in ("happo", "hatrpo"):
        assert sorted(map(int, h.last["order"].split("-"))) == list(range(n))
        for key in ("m_mean", "m_std", "m_min", "m_max"):
            assert math.isfinite(h.last[key])
        assert h.last["m_min"] <= h.last["m_mean"] <= h.last["m_max"]


def test_registry_and_errors():
    assert set(marl.MA_ALGOS) == {"ippo", "mappo", "happo", "hatrpo", "ar_mappo", "ar_happo", "mat", "mat_dec"}
    with pytest.raises(HarlMiniError, match="available: ar_happo, ar_mappo, happo, hatrpo, ippo, mappo, mat, mat_dec"):
        marl.train("mappo2", "game:xor", 100, progress=False)
    with pytest.raises(HarlMiniError, match="unknown game 'nosuch'"):
        marl.train("happo", "game:nosuch", 100, progress=False)
    with pytest.raises(HarlMiniError, match="unknown environment"):
        marl.train("happo", "nosuch:xor", 100, progress=False)
    with pytest.raises(HarlMiniError, match="single-agent"):
        marl.train("happo", "tabular:chain", 100, progress=False)
    with pytest.raises(HarlMiniError, match="unknown hyperparameter"):
        marl.train("happo", "game:xor", 100, progress=False, learning_rate=1.0)
    with pytest.raises(HarlMiniError, match="separate parameters"):
        marl.train("hatrpo", "game:xor", 100, progress=False, share_params=True)
    with pytest.raises(HarlMiniError, match="m_clip"):
        marl.train("happo", "game:xor", 100, progress=False, m_clip=0.5)
    with pytest.raises(HarlMiniError, match="steps"):
        marl.train("happo", "game:xor", 0, progress=False)
    with pytest.raises(HarlMiniError, match="agent_id=True needs share_params=True"):
        marl.train("ippo", "game:xor", 100, progress=False, agent_id=True)
    with pytest.raises(HarlMiniError, match="available"):
        marl.get_update("trpo")


@pytest.mark.parametrize("share,agent_id,policies,in_dim", [(True, True, 1, 1 + 3), (True, False, 1, 1),
                                                            (False, None, 3, 1)])
def test_shared_and_separate_parameters(share, agent_id, policies, in_dim):
    h = marl.train("mappo", "game:permutation-3", _steps(2), seed=1, progress=False,
                   **{**SMALL, "share_params": share, "agent_id": agent_id})
    actors = h.policy
    assert actors.num_policies == policies and actors.share_params is share
    assert actors.policies[0].obs_dim == in_dim
    obs = [torch.ones(5, 1)] * 3
    logp, ent = actors.log_prob_entropy_all(obs, [torch.zeros(5, dtype=torch.long)] * 3)
    assert logp.shape == (3, 5) and ent.shape == (3, 5)
    if share and not agent_id:  # literally one policy: every agent acts from the same distribution
        p = [actors.probs(i, obs[i]) for i in range(3)]
        assert torch.equal(p[0], p[1]) and torch.equal(p[1], p[2])
    if share and agent_id:  # one network, but the id lets the agents differ
        p = [actors.probs(i, obs[i]) for i in range(3)]
        assert not torch.equal(p[0], p[1])


def test_ippo_shared_actor_and_batched_sampler_agree():
    h = marl.train("ippo", "game:permutation-3", _steps(2), seed=0, progress=False, **{**SMALL, "share_params": True})
    actors = h.policy
    assert type(h.value_fn).__name__ == "LocalCritics"
    obs = [torch.ones(7, 1)] * 3
    acts, logp = actors.sampler()(obs, torch.Generator().manual_seed(0))
    for i in range(3):  # the batched sampler's log-probs are the per-agent ones
        assert torch.allclose(logp[i], actors.log_prob(i, obs[i], acts[i]), atol=1e-5)


def test_stacked_sampler_matches_per_agent_networks():
    env = MatrixGameEnv(make_game("permutation-3"), 16, obs="agent_id")
    r = MARunner("happo", env, seed=0, **{**SMALL, "hidden": (8, 8)})
    assert r.actors._homogeneous
    acts, logp = r.actors.sampler()(env.obs, torch.Generator().manual_seed(0))
    for i in range(3):
        assert torch.allclose(logp[i], r.actors.log_prob(i, env.obs[i], acts[i]), atol=1e-5)


@pytest.mark.parametrize("algo", ALGOS)
def test_same_seed_same_parameters(algo):
    def run(seed):
        h = marl.train(algo, "game:permutation-3", _steps(2), seed=seed, progress=False, **SMALL)
        return torch.cat([flat_params(h.policy), flat_params(h.value_fn)]), h.rows

    (p0, rows0), (p1, rows1), (p2, _) = run(3), run(3), run(4)
    assert torch.equal(p0, p1)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("wall_time", "steps_per_s")} for r in rows]  # noqa: E731
    assert strip(rows0) == strip(rows1)
    assert not torch.equal(p0, p2)


@pytest.mark.parametrize("fvp_subsample", [1.0, 0.25])
def test_hatrpo_accepted_steps_respect_the_kl_radius(fvp_subsample):
    """The line search measures the KL on the full batch, so a subsampled Fisher matrix cannot
    let an accepted step leave the radius."""
    delta = 0.004
    r = MARunner("hatrpo", "game:permutation-3", seed=0,
                 **{**SMALL, "num_envs": 64, "kl_threshold": delta, "fvp_subsample": fvp_subsample})
    accepted = 0
    for _ in range(4):
        buf = r.collect()
        obs = [buf.flat_obs(i) for i in range(r.N)]
        with torch.no_grad():
            old = [r.actors.distribution(i, obs[i]) for i in range(r.N)]
        m = r.update(buf)
        r.iteration += 1
        for i in range(r.N):
            with torch.no_grad():
                kl = float(kl_divergence(old[i], r.actors.distribution(i, obs[i])).mean())
            if m[f"accepted_{i}"]:
                accepted += 1
                assert kl <= delta * (1 + 1e-5), (i, kl)
                assert m[f"step_kl_{i}"] == pytest.approx(kl, rel=1e-4, abs=1e-9)
            else:
                assert kl == pytest.approx(0.0, abs=1e-12)  # a rejected step leaves the policy unchanged
    assert accepted >= 6


def test_m_factor_is_the_detached_product_of_earlier_ratios():
    r = MARunner("happo", "game:permutation-3", seed=0, **{**SMALL, "num_envs": 64})
    buf = r.collect()
    r.update(buf)
    order, factors = r.last_order, r.last_factors
    assert len(factors) == 3 and all(not f.requires_grad for f in factors)
    with torch.no_grad():
        ratios = {i: torch.exp(r.actors.log_prob(i, buf.flat_obs(i), buf.flat_actions(i)) - buf.flat_logp(i))
                  for i in range(3)}
    expected = torch.ones(buf.size)
    for m, i in enumerate(order):
        assert torch.allclose(factors[m], expected, rtol=1e-5, atol=1e-6), m
        expected = expected * ratios[i]
    assert not torch.allclose(factors[2], torch.ones(buf.size))  # the earlier agents did move
    # no gradient reaches the earlier agents through M: only agent order[2]'s parameters get one
    adv = torch.randn(buf.size, generator=torch.Generator().manual_seed(0))
    for p in r.actors.parameters():
        p.grad = None
    r.happo_loss(buf, order[2], factors[2], adv).backward()
    for i in range(3):
        grads = [p.grad for p in r.actors.policy(i).parameters()]
        if i == order[2]:
            assert all(g is not None and bool(g.abs().sum() > 0) for g in grads)
        else:
            assert all(g is None for g in grads)
    # the recursion itself detaches, even from inputs that carry a graph
    logits = torch.zeros(4, requires_grad=True)
    out = update_factor(torch.ones(4), logits * 2, torch.zeros(4))
    assert not out.requires_grad


def test_m_clip_bounds_the_factor_and_is_off_by_default():
    r = MARunner("happo", "game:permutation-3", seed=0, **{**SMALL, "num_envs": 64, "lr": 0.05, "hidden": ()})
    r.update(r.collect())
    assert r.cfg.m_clip is None
    spread = max(float((f.log().abs()).max()) for f in r.last_factors)
    assert spread > math.log(1.05)  # unclipped M leaves [1/1.05, 1.05] with this step size
    r2 = MARunner("happo", "game:permutation-3", seed=0, **{**SMALL, "num_envs": 64, "lr": 0.05, "hidden": (),
                                                            "m_clip": 1.05})
    m = r2.update(r2.collect())
    for f in r2.last_factors:
        assert float(f.max()) <= 1.05 + 1e-6 and float(f.min()) >= 1 / 1.05 - 1e-6
    assert 1 / 1.05 - 1e-6 <= m["m_min"] <= m["m_max"] <= 1.05 + 1e-6


@pytest.mark.parametrize("algo", ["happo", "hatrpo"])
def test_agent_order_is_random_unless_fixed(algo):
    h = marl.train(algo, "game:permutation-3", _steps(8), seed=0, progress=False, **SMALL)
    assert len(set(h["order"])) > 1
    h = marl.train(algo, "game:permutation-3", _steps(4), seed=0, progress=False, **{**SMALL, "fixed_order": True})
    assert set(h["order"]) == {"0-1-2"}


def test_nan_guard():
    r = MARunner("happo", "game:xor", seed=0, **SMALL)
    with torch.no_grad():
        next(r.actors.policy(1).parameters()).fill_(float("nan"))
    with pytest.raises(HarlMiniError, match="NaN guard"):
        r.step()
    r = MARunner("mappo", "game:xor", seed=0, **SMALL)
    buf = r.collect()
    with torch.no_grad():
        next(r.critic.parameters()).fill_(float("inf"))
    with pytest.raises(HarlMiniError, match="NaN guard"):
        r.update(buf)


def test_exact_objective_and_init_mean():
    game = make_game("permutation-3")
    r = MARunner("mappo", "game:permutation-3", seed=0, **{**SMALL, "share_params": False})
    r.update(r.collect())
    pis = [r.actors.probs(i, torch.ones(1, 1)).double().detach() for i in range(3)]
    pis = [p / p.sum(-1, keepdim=True) for p in pis]  # float32 → float64 rows summing to 1
    assert exact_objective(r.actors, r.env) == pytest.approx(float(game_objective(game, pis)), abs=1e-6)
    r = MARunner("happo", "game:a1a2", seed=0, **{**SMALL, "hidden": (), "init_mean": (-0.25, 0.25)})
    assert exact_objective(r.actors, r.env) == pytest.approx(-0.0625, abs=1e-6)
    with pytest.raises(HarlMiniError, match="init_mean"):
        MARunner("happo", "game:a1a2", seed=0, **{**SMALL, "init_mean": (-0.25, 0.25)})  # hidden layers


class _Countdown(MultiAgentVecEnv):
    """Two agents; the state is t/H; episodes are *truncated* after H steps."""

    def __init__(self, num_envs=3, H=3):
        self.name, self.num_envs, self.num_agents, self.H = "countdown", num_envs, 2, H
        self.obs_dims, self.action_spaces, self.state_dim = [1, 1], [("discrete", 2), ("discrete", 2)], 1
        self._check_spaces()
        self.reset(0)

    def _obs(self, t):
        s = (t.float() / self.H).unsqueeze(-1)
        return [s.clone(), s.clone()], s.clone()

    def _reset(self, seed):
        self.t = torch.zeros(self.num_envs, dtype=torch.long)
        return self._obs(self.t)

    def _step(self, actions):
        self.t = self.t + 1
        final_obs, final_state = self._obs(self.t)
        trunc = self.t >= self.H
        self.t = torch.where(trunc, torch.zeros_like(self.t), self.t)
        obs, state = self._obs(self.t)
        return obs, state, (actions[0] + actions[1]).float(), torch.zeros_like(trunc), trunc, final_obs, final_state


@pytest.mark.parametrize("algo", ["happo", "ippo"])
def test_truncation_bootstraps_from_the_final_state(algo):
    r = MARunner(algo, _Countdown(), seed=0, **{**SMALL, "num_envs": 3, "num_steps": 5})
    r.update(r.collect())  # move the critic away from its initialisation
    buf = r.collect()
    assert bool(buf.truncated.any()) and not bool(buf.terminated.any())
    final = torch.ones(3, 1)  # t/H = 1 at the cut
    v_final = r.critic.values(final, [final, final])
    for t in range(buf.T):
        for b in range(buf.B):
            if buf.truncated[t, b]:
                assert torch.allclose(buf.next_values[t, b], v_final[b])
            elif t + 1 < buf.T:
                assert torch.allclose(buf.next_values[t, b], buf.values[t + 1, b])
    h = marl.train(algo, _Countdown(), _steps(2, {**SMALL, "num_envs": 3}), seed=0, progress=False,
                   **{**SMALL, "num_envs": 3})
    assert math.isfinite(h.last["eval_return"])


def test_evaluate_is_deterministic():
    h = marl.train("happo", "game:xor", _steps(2), seed=0, progress=False, **SMALL)
    a = marl.evaluate(h.policy, "game:xor", episodes=5)
    b = marl.evaluate(h.policy, "game:xor", episodes=5)
    assert a == b and len(a["returns"]) == 5 and a["std"] == 0.0


def test_run_cli_writes_provenance_and_summary(tmp_path, capsys):
    import json

    from harl_mini.marl import bench
    from harl_mini.marl import run as marl_run

    out = tmp_path / "happo_xor_s0"
    assert marl_run.main(["--algo", "happo", "--env", "game:xor", "--steps", "8192", "--seed", "0", "--out", str(out),
                          "--no-progress", "--set", "ppo_epochs=2"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["j_star"] == 1.0 and m["j_star_share"] == pytest.approx(0.5, abs=1e-9)
    assert m["hyperparameters"]["ppo_epochs"] == 2 and m["iterations"] == 2 and m["git_commit"]
    assert (out / "metrics.csv").read_text().startswith("iteration,steps,wall_time")
    readme = marl_run.write_readme(tmp_path)
    assert "| xor | 1 | 0.5 | happo | " in readme.read_text()
    assert marl_run.main(["--algo", "happo2", "--env", "game:xor", "--steps", "10", "--no-progress"]) == 2
    assert bench.main(["--quick", "--iterations", "1", "--algos", "happo"]) == 0
    text = capsys.readouterr().out
    assert "train   xor        happo" in text and "env     xor" in text


def test_hatrpo_with_a_subsampled_fisher_matrix_learns_as_with_the_full_batch():
    """fvp_subsample = 0.2 (OpenAI Baselines' TRPO) against the full batch (HARL), exact J after
    training on two games, 3 seeds each: both solve them. The bar (J ≥ 0.9 of J* = 1 for every
    seed) is what the full-batch runs reach with room to spare (0.999 or more). A product that
    overstates the curvature 10× (steps too short) fails it (J 0.64–0.84 on permutation-3); one
    that understates it is caught by the line search, and a non-PSD one stops CG with an error."""
    hp = {**SMALL, "num_envs": 256, "num_steps": 1, "hidden": (16,), "eval_interval": 100}
    for env in ("game:xor", "game:permutation-3"):
        for seed in range(3):
            finals = {}
            for frac in (1.0, 0.2):
                h = marl.train("hatrpo", env, 256 * 40, seed=seed, progress=False, fvp_subsample=frac, **hp)
                finals[frac] = h.last["j_exact"]
            assert min(finals.values()) >= 0.9, (env, seed, finals)
    with pytest.raises(HarlMiniError, match=r"fvp_subsample: must lie in \(0, 1\], got 0"):
        MARunner("hatrpo", "game:xor", seed=0, fvp_subsample=0.0)


@pytest.mark.parametrize("algo", ["happo", "mappo"])
def test_the_diagnostics_pass_can_be_skipped_without_changing_learning(algo):
    """diagnostics=False skips the KL/entropy pass (NaN in the metrics); the pass draws no random
    numbers and changes no parameter, so training is bit-identical either way."""
    runs = {}
    for diag in (True, False):
        r = MARunner(algo, "game:permutation-3", seed=0, **{**SMALL, "diagnostics": diag})
        for _ in range(3):
            m = r.step()[1]
        runs[diag] = (torch.cat([p.detach().flatten() for p in r.actors.parameters()]), m)
    assert torch.equal(runs[True][0], runs[False][0])
    assert math.isfinite(runs[True][1]["kl"]) and runs[True][1]["kl"] > 0
    assert math.isnan(runs[False][1]["kl"]) and math.isnan(runs[False][1]["entropy"]) and math.isnan(runs[False][1]["kl_0"])
    with pytest.raises(HarlMiniError, match="diagnostics: expected True or False"):
        MARunner(algo, "game:xor", seed=0, diagnostics=0)


# -- the rollout's hot loop: full checks on every CHECK_EVERY-th step, the rest once per rollout --
class _Poisoned(_Countdown):
    """_Countdown whose observation of agent 1 becomes NaN on the ``bad``-th step."""

    def __init__(self, bad, what="obs"):
        self.bad, self.what, self.calls = bad, what, 0
        super().__init__(num_envs=3, H=100)

    def _step(self, actions):
        out = list(super()._step(actions))
        self.calls += 1
        if self.calls == self.bad:
            if self.what == "obs":
                out[0][1][2, 0] = float("nan")
            else:
                out[2] = out[2].clone()
                out[2][1] = float("inf")
        return tuple(out)


@pytest.mark.parametrize("what", ["obs", "reward"])
def test_unchecked_steps_still_name_a_non_finite_output(what):
    from harl_mini.envs.multi import CHECK_EVERY

    bad = 6  # step index 5: not a multiple of CHECK_EVERY, so checked only at the rollout's end
    assert (bad - 1) % CHECK_EVERY != 0
    r = MARunner("ippo", _Poisoned(bad, what), seed=0, **{**SMALL, "num_envs": 3, "num_steps": 8})
    expected = r"obs\[1\] at step 5 of this rollout \(copy 2" if what == "obs" else r"reward at step 5 of this rollout \(copy 1"
    with pytest.raises(HarlMiniError, match=r"countdown: the environment returned a non-finite " + expected):
        r.collect()
    # a checked step (t = 0) names it at once, through the env's own check
    r = MARunner("ippo", _Poisoned(1, what), seed=0, **{**SMALL, "num_envs": 3, "num_steps": 8})
    with pytest.raises(HarlMiniError, match="countdown: the environment returned a non-finite"):
        r.collect()


def test_step_without_checks_is_the_same_step():
    """check=False changes nothing but the validation: same observations, rewards and episodes."""
    from harl_mini.envs import make_env

    envs = [make_env("mpe:simple_spread", num_envs=4, seed=3) for _ in range(2)]
    gen = torch.Generator().manual_seed(0)
    for t in range(60):  # more than two 25-step episodes
        acts = envs[0].sample_actions(gen)
        a = envs[0].step(acts)
        b = envs[1].step(acts, check=False)
        for x, y in zip(a, b):
            if isinstance(x, list):
                assert all(torch.equal(u, v) for u, v in zip(x, y))
            else:
                assert torch.equal(x, y)
    assert envs[0].pop_episodes() == envs[1].pop_episodes() and len(envs[1]._done_returns) == 0
    with pytest.raises(HarlMiniError, match=r"actions\[0\]\[0\] = 9 is out of range"):
        envs[0].step([torch.full((4,), 9)] + envs[0].sample_actions()[1:])  # the default still checks


# -- IPPO with one shared critic (JaxMARL's IPPO) ------------------------------------------
def test_shared_critic_is_one_network_on_each_agents_observation():
    r = MARunner("ippo", "mpe:simple_spread", seed=0, **{**SMALL, "num_envs": 4, "num_steps": 8,
                                                           "share_critic": True})
    crit = r.critic
    assert len(crit.nets()) == 1 and len(crit.norms()) == 1 and crit.num_values == 3
    obs = r.env.obs
    v = crit.values(r.env.state, obs)                                                         # [B, N]
    for i in range(3):  # column i is the one network on agent i's own observation
        # one batched [N, B, D] forward against agent i's own [B, D] forward: the same float32
        # operations on other matrix shapes, so BLAS may round differently (~1e-7 relative);
        # a wrong agent order or transpose moves the values by O(0.1) (they differ by that here)
        torch.testing.assert_close(v[:, i], crit.norms()[0].denormalize(crit.nets()[0](obs[i])).detach(),
                                   rtol=1e-5, atol=1e-6)
    assert float((v[:, 0] - v[:, 1]).abs().max()) > 1e-2
    before = [p.detach().clone() for p in crit.parameters()]
    buf = r.collect()
    m = r.update(buf)
    assert math.isfinite(m["value_loss"]) and any(not torch.equal(a, b) for a, b in zip(before, crit.parameters()))
    # the separate-critic default is unchanged: three networks
    assert len(MARunner("ippo", "mpe:simple_spread", seed=0, **{**SMALL, "num_envs": 4}).critic.nets()) == 3


def test_shared_critic_learns_and_rejects_what_it_cannot_do():
    h = marl.train("ippo", "game:xor", _steps(2), seed=0, progress=False, **{**SMALL, "share_critic": True})
    assert math.isfinite(h.last["value_loss"])
    with pytest.raises(HarlMiniError, match="share_critic applies to per-agent critics"):
        MARunner("mappo", "game:xor", seed=0, share_critic=True, **SMALL)
    with pytest.raises(HarlMiniError, match="share_critic: expected True or False"):
        MARunner("ippo", "game:xor", seed=0, share_critic="yes", **SMALL)
    with pytest.raises(HarlMiniError, match="same size"):
        MARunner("ippo", "mpe:simple_speaker_listener", seed=0, share_critic=True, **SMALL)
