"""The sampled autoregressive algorithms of Chapter 10 (AR-MAPPO, AR-HAPPO, MAT, MAT-Dec, distillation)
against the exact layer (harl_mini.tabular.autoregressive), plus resume identity and bad input.

Small batches and networks throughout; each training call is a few iterations.
"""

from __future__ import annotations

import csv
import itertools
import math

import pytest
import torch

from harl_mini import marl
from harl_mini.__main__ import main
from harl_mini.envs import make_env
from harl_mini.envs.matrix import MatrixGameEnv
from harl_mini.errors import HarlMiniError
from harl_mini.losses import ratio
from harl_mini.marl.ar import ARActors
from harl_mini.marl.distill import behaviour_cloning_loss, distill, exact_entropies, exact_factors, exact_j
from harl_mini.marl.mat import MultiAgentTransformer, causal_mask, shift_actions
from harl_mini.marl.runner import MARunner, exact_objective
from harl_mini.marl.trainer import load_checkpoint
from harl_mini.tabular import (
    ar_joint_policy,
    ar_objective,
    ar_surrogate_terms,
    make_game,
    marginal_policies,
    matrix_game,
)

F64 = torch.float64
SMALL = dict(num_envs=32, num_steps=4, hidden=(8,), ppo_epochs=2, critic_epochs=2, eval_interval=1, eval_episodes=4,
             n_embd=16)
NEW = ["ar_mappo", "ar_happo", "mat", "mat_dec"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------
# Each algorithm trains on discrete and continuous games, with finite metrics
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", NEW)
@pytest.mark.parametrize("env", ["game:permutation-3", "game:a1a2"])
def test_two_iterations_train(algo, env):
    h = marl.train(algo, env, 2 * 32 * 4, seed=0, progress=False, **SMALL)
    for key in ("episode_return", "eval_return", "kl", "entropy", "value_loss", "policy_loss"):
        assert math.isfinite(h.last[key]), key
    if env == "game:permutation-3":
        assert 0.0 <= h.last["j_exact"] <= 1.0
    assert all(f"kl_{i}" in h.last for i in range(h.runner.N))


# ---------------------------------------------------------------------------------------
# The causal mask and teacher forcing
# ---------------------------------------------------------------------------------------


def _mat(space=("discrete", 4), N=4, seed=0):
    torch.manual_seed(seed)
    m = MultiAgentTransformer([3] * N, [space] * N, n_embd=16, n_head=2, n_block=2, log_std_init=-0.5)
    with torch.no_grad():  # larger weights than the 0.01-gain init, so every dependence is visible
        for p in m.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return m


def test_causal_mask_and_shift():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    tokens = shift_actions(torch.tensor([[2, 0, 1]]), 3)
    assert torch.equal(tokens[0], torch.tensor([[1., 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]))
    box = shift_actions(torch.tensor([[[1.0], [2.0], [3.0]]]), None)
    assert torch.equal(box[0, :, 0], torch.tensor([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("space", [("discrete", 4), ("box", 2)])
def test_agent_m_depends_on_earlier_actions_only(space):
    m, N, B = _mat(space), 4, 64
    obs = [torch.randn(B, 3) for _ in range(N)]
    act = [torch.randint(0, 4, (B,)) if space[0] == "discrete" else torch.randn(B, 2) for _ in range(N)]
    with torch.no_grad():
        base = m.distributions(obs, act)[0]
    base = base.logits if space[0] == "discrete" else base.mean
    for k in range(N):  # change agent k's action: positions <= k stay, some later position moves
        act2 = list(act)
        act2[k] = (act[k] + 1) % 4 if space[0] == "discrete" else act[k] + 1.0
        with torch.no_grad():
            out = m.distributions(obs, act2)[0]
        out = out.logits if space[0] == "discrete" else out.mean
        assert torch.equal(out[:, : k + 1], base[:, : k + 1])
        if k < N - 1:
            assert float((out[:, k + 1:] - base[:, k + 1:]).abs().max()) > 1e-4


@pytest.mark.parametrize("space", [("discrete", 4), ("box", 2)])
def test_parallel_log_probs_equal_the_autoregressive_rollout(space):
    m = _mat(space)
    obs = [torch.randn(50, 3) for _ in range(4)]
    acts, logp = m.sampler()(obs, torch.Generator().manual_seed(1))
    logp_parallel, ent, _ = m.evaluate(obs, acts)
    assert torch.allclose(logp, logp_parallel, atol=1e-5)
    assert ent.shape == (4, 50)


def test_ar_actors_sample_with_their_conditional_log_probs():
    actors = ARActors([2, 2, 2], [("discrete", 3), ("box", 2), ("discrete", 2)], hidden=(8,))
    obs = [torch.randn(40, 2) for _ in range(3)]
    acts, logp = actors.sampler()(obs, torch.Generator().manual_seed(0))
    x = actors.conditioned(obs, acts)
    assert [t.shape[1] for t in x] == [2, 2 + 3, 2 + 3 + 2]
    for i in range(3):
        assert torch.allclose(logp[i], actors.log_prob(i, x[i], acts[i]), atol=1e-5)


@pytest.mark.parametrize("algo", ["ar_mappo", "mat"])
def test_exact_tables_match_the_sampler(algo):
    """The exact joint from ar_factors is the distribution the sampler draws from (χ²-style check)."""
    r = MARunner(algo, "game:permutation-3", seed=2, **{**SMALL, "num_envs": 20000})
    with torch.no_grad():
        for p in r.actors.parameters():
            p.add_(0.3 * torch.randn_like(p))
    game, factors, order = exact_factors(r.actors, r.env)
    joint = ar_joint_policy(game, factors, order)[0]
    acts, _ = r.actors.sampler()(r.env.obs, torch.Generator().manual_seed(3))
    counts = torch.zeros(3, 3, 3, dtype=F64)
    for a in zip(*(t.tolist() for t in acts)):
        counts[a] += 1
    freq = counts / counts.sum()
    # each frequency within 5 binomial standard deviations (plus a little float32 slack)
    sd = (joint * (1 - joint) / counts.sum()).sqrt()
    assert bool(((freq - joint).abs() <= 5 * sd + 1e-4).all())
    assert abs(exact_objective(r.actors, r.env) - float(ar_objective(game, factors, order))) < 1e-12


# ---------------------------------------------------------------------------------------
# Against the exact layer: the sampled objectives estimate the exact surrogate terms
# ---------------------------------------------------------------------------------------


def _linear_ar(counts, seed):
    """Linear AR actors on a constant observation: logits = b + Σ_j W_j e(a^j)."""
    actors = ARActors([1] * len(counts), [("discrete", n) for n in counts], hidden=())
    actors.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in actors.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
    return actors


@pytest.mark.parametrize("with_m", [True, False])
def test_sampled_ar_surrogates_converge_to_the_exact_terms(with_m):
    """E over old samples of M·(ξ^m − 1)·A (AR-HAPPO) resp. (ξ^m − 1)·A (AR-MAPPO / MAT) is the exact
    term of eq-ar-surrogate resp. eq-mat-surrogate; the error shrinks as 1/√n (16× samples → ≈ 4×)."""
    counts = (2, 3, 2)
    g = torch.Generator().manual_seed(0)
    game = matrix_game(2.0 * torch.randn(counts, generator=g, dtype=F64))
    old, new = _linear_ar(counts, 1), _linear_ar(counts, 2)
    obs1 = [torch.ones(1, 1, dtype=F64)] * 3
    F_old, order = old.ar_factors(obs1)
    F_new, _ = new.ar_factors(obs1)
    exact = [float(t) for t in ar_surrogate_terms(game, F_old, F_new, order, with_m)]
    A_table = game.R[0] - float(ar_objective(game, F_old, order))  # joint advantage of a one-state game
    err = {}
    for n in (500, 8000):
        est = []
        for seed in range(30):
            obs = [torch.ones(n, 1, dtype=F64)] * 3
            acts, logp_old = old.sampler()(obs, torch.Generator().manual_seed(1000 * n + seed))
            x = old.conditioned(obs, acts)
            xi = torch.stack([ratio(new.log_prob(i, x[i], acts[i]), logp_old[i]) for i in range(3)]).detach()
            A = A_table[tuple(acts)]
            M = torch.cumprod(torch.cat([torch.ones(1, n, dtype=F64), xi[:-1]]), 0) if with_m else torch.ones_like(xi)
            est.append(((M * (xi - 1.0) * A).mean(1)))
        est = torch.stack(est)                                                                   # [seeds, 3]
        want = torch.tensor(exact, dtype=F64)
        se = est.std(0) / est.shape[0] ** 0.5
        assert bool(((est.mean(0) - want).abs() <= 4 * se + 1e-12).all()), (n, est.mean(0), want)
        err[n] = float((est - want).pow(2).sum(1).mean().sqrt())
    assert 2.5 < err[500] / err[8000] < 6.0, err


def test_sampled_policy_gradient_is_the_conditional_advantage_gradient():
    """At θ_old the PPO gradient of Σ_m mean(ξ^m Â) with the exact advantage per sample estimates ∇J."""
    counts = (2, 3)
    game = matrix_game(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], dtype=F64))
    actors = _linear_ar(counts, 4)
    obs1 = [torch.ones(1, 1, dtype=F64)] * 2

    def exact_grad():
        params = list(actors.parameters())
        factors = []
        for m in range(2):
            prefixes = list(itertools.product(*(range(c) for c in counts[:m])))
            o = obs1[m].expand(len(prefixes), 1)
            feats = [actors.action_features(j, torch.tensor([p[j] for p in prefixes]), F64) for j in range(m)]
            x = torch.cat([o, *feats], -1) if feats else o
            factors.append(torch.softmax(actors.head(m, x), -1).reshape(1, *counts[: m + 1]))
        return torch.autograd.grad(ar_objective(game, factors, (0, 1)), params)

    want = torch.cat([t.flatten() for t in exact_grad()])
    F_old, order = actors.ar_factors(obs1)
    A_table = game.R[0] - float(ar_objective(game, F_old, order))
    ests = []
    for seed in range(20):
        obs = [torch.ones(4000, 1, dtype=F64)] * 2
        acts, logp_old = actors.sampler()(obs, torch.Generator().manual_seed(seed))
        x = actors.conditioned(obs, acts)
        A = A_table[tuple(acts)]
        obj = sum((ratio(actors.log_prob(i, x[i], acts[i]), logp_old[i]) * A).mean() for i in range(2))
        ests.append(torch.cat([t.flatten() for t in torch.autograd.grad(obj, list(actors.parameters()))]))
    ests = torch.stack(ests)
    se = ests.std(0) / ests.shape[0] ** 0.5
    assert bool(((ests.mean(0) - want).abs() <= 4 * se + 1e-9).all())
    assert float(want.norm()) > 0.1


# ---------------------------------------------------------------------------------------
# Learning on the games (short runs)
# ---------------------------------------------------------------------------------------


def test_ar_policies_solve_climbing_where_product_policies_do_not():
    hp = dict(num_envs=1024, num_steps=1, gamma=0.0, lam=1.0, hidden=(), critic_hidden=(), lr=0.05, critic_lr=0.05,
              ent_coef=0.0, eval_interval=100)
    ar = marl.train("ar_happo", "game:climbing", 40 * 1024, seed=0, progress=False, **hp)
    happo = marl.train("happo", "game:climbing", 40 * 1024, seed=0, progress=False, **hp)
    assert ar.last["j_exact"] > 10.5  # agent 2 sees agent 1's action: the optimum 11
    assert happo.last["j_exact"] < 7.5  # the classic miscoordination: 7 at best


def test_distillation_recovers_the_marginals():
    env = make_env("game:permutation-3", num_envs=2000, seed=0)
    teacher = _linear_ar((3, 3, 3), 7).float()
    res = distill(teacher, env, num_steps=1, epochs=150, lr=0.1)
    game, factors, order = exact_factors(teacher, env)
    marg = marginal_policies(game, ar_joint_policy(game, factors, order))
    _, student_factors, _ = exact_factors(res.students, env)
    for i in range(3):  # within sampling error of 2,000 draws
        assert float((student_factors[i].reshape(-1, 3)[0] - marg[i][0]).abs().max()) < 0.05
    assert res.losses[-1] <= res.losses[0]
    H, cond = exact_entropies(res.students, env)
    assert abs(H - sum(cond)) < 1e-9
    assert abs(exact_j(res.students, env) - float(ar_objective(game, student_factors, order))) < 1e-12
    obs = [o[:5] for o in env.obs]
    acts = [torch.zeros(5, dtype=torch.long)] * 3
    assert float(behaviour_cloning_loss(res.students, obs, acts).detach()) > 0


# ---------------------------------------------------------------------------------------
# Checkpoints: resume is bit-identical for the new algorithms
# ---------------------------------------------------------------------------------------


def _rows(run):
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in ("wall_time", "steps_per_s")} for row in csv.DictReader(f)]


@pytest.mark.parametrize("algo", ["ar_happo", "mat", "mat_dec"])
def test_resume_is_bit_identical(algo, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"algo: {algo}\nenv: game:climbing\nenv_kwargs: {{episode_length: 3}}\nnum_envs: 16\n"
                   "hparams: {num_steps: 2, gamma: 0.9, hidden: [8], n_embd: 16, num_minibatches: 2, "
                   "eval_interval: 3}\n")

    def train(*args):
        return main(["train", "--no-progress", "--no-tensorboard", *map(str, args)])

    a, b = tmp_path / "A", tmp_path / "B"
    assert train("--config", cfg, "--steps", 6 * 32, "--checkpoint-every", 3, "--out", a) == 0
    assert train("--config", cfg, "--steps", 3 * 32, "--checkpoint-every", 3, "--out", b) == 0
    assert train("--resume", b, "--steps", 6 * 32) == 0
    assert _rows(a) == _rows(b) and len(_rows(a)) == 6
    sa, sb = load_checkpoint(a)["runner"], load_checkpoint(b)["runner"]
    for part in ("actors", "critic"):
        for name in sa[part]:
            assert torch.equal(sa[part][name], sb[part][name]), (part, name)
    for key, state in sa["actor_optims"][0]["state"].items():
        assert all(torch.equal(state[k], sb["actor_optims"][0]["state"][key][k]) for k in state)


# ---------------------------------------------------------------------------------------
# Bad input: one clear error
# ---------------------------------------------------------------------------------------


def test_bad_input():
    with pytest.raises(HarlMiniError, match="same action space"):
        MARunner("mat", MatrixGameEnv(make_game("climbing").R[0][:, :2].contiguous(), 4), **SMALL)
    for algo in NEW:
        with pytest.raises(HarlMiniError, match="share_params=True (does not apply|would move)"):
            MARunner(algo, "game:xor", share_params=True, **SMALL)
    with pytest.raises(HarlMiniError, match="divisible by n_head"):
        MARunner("mat", "game:xor", **{**SMALL, "n_head": 3})
    with pytest.raises(HarlMiniError, match="unknown hyperparameter"):
        MARunner("mat", "game:xor", n_embed=8)
    with pytest.raises(HarlMiniError, match="expected a MultiAgentVecEnv"):
        distill(_linear_ar((2, 2), 0), "game:xor")
    with pytest.raises(HarlMiniError, match="one-state discrete game"):
        exact_factors(_linear_ar((2, 2), 0), make_env("game:a1a2", num_envs=2))
