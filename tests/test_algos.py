"""Smoke and contract tests of the sampled single-agent algorithms (no long training here).

* every algorithm runs two short iterations on CartPole (Categorical) and Pendulum
  (diagonal Gaussian) and logs finite numbers;
* every accepted TRPO step stays inside the trust region (mean KL ≤ δ), a rejected one
  leaves the policy unchanged, and the double-backprop Fisher-vector product equals the
  analytic Fisher matrix;
* the same seed gives bit-identical parameters, another seed different ones;
* unknown names, bad hyperparameters and NaN observations raise one clear HarlMiniError;
* the implementation-details lists point at the lines that implement them;
* the run CLI writes metrics.csv + manifest.json with provenance.
"""

from __future__ import annotations

import csv
import importlib
import inspect
import json
import math
import re

import pytest
import torch

from harl_mini.algos import ALGOS, get_algo
from harl_mini.algos.common import evaluate
from harl_mini.errors import HarlMiniError
from harl_mini.nets import CategoricalPolicy, GaussianPolicy, flat_params
from harl_mini.provenance import run_manifest, write_run

SMALL = dict(num_envs=2, num_steps=64, hidden=(16, 16))
ENVS = ["gym:CartPole-v1", "gym:Pendulum-v1"]


def _train(algo, env, iterations=2, seed=0, **kw):
    hp = {**SMALL, **kw}
    return get_algo(algo).train(env, iterations * hp["num_envs"] * hp["num_steps"], seed=seed, progress=False, **hp)


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_two_iterations_run_and_log(algo, env):
    history = _train(algo, env)
    assert len(history) == 2 and history.last["steps"] == 2 * 2 * 64
    for key in ("steps", "wall_time", "episode_return", "entropy", "kl", "policy_loss", "value_loss"):
        assert key in history.last
    for row in history:
        for key in ("entropy", "kl", "policy_loss", "value_loss"):
            assert math.isfinite(row[key]), (key, row)
    assert history.policy.discrete is (env == "gym:CartPole-v1")
    result = evaluate(history.policy, env, episodes=2)
    assert len(result["returns"]) == 2 and math.isfinite(result["mean"])


@pytest.mark.parametrize("env", ENVS)
def test_every_accepted_trpo_step_is_inside_the_trust_region(env):
    delta = 0.01
    history = _train("trpo", env, iterations=4, delta=delta)
    assert any(row["accepted"] for row in history)
    for row in history:
        if row["accepted"]:
            assert 0.0 < row["kl"] <= delta, row
            assert row["surrogate_gain"] > 0.0
        else:
            assert row["kl"] == 0.0


def test_rejected_trpo_step_leaves_the_policy_unchanged():
    """With a huge accept_ratio no fraction of the step passes the line search."""
    a = _train("trpo", "gym:CartPole-v1", iterations=1, accept_ratio=1e9, vf_epochs=1)
    assert a.last["accepted"] == 0 and a.last["kl"] == 0.0
    torch.manual_seed(0)
    fresh = CategoricalPolicy(4, 2, (16, 16))  # what train() initialises from seed 0
    torch.testing.assert_close(flat_params(a.policy), flat_params(fresh), rtol=0, atol=0)


def test_fvp_equals_the_analytic_fisher_matrix():
    from harl_mini.algos.trpo import make_fvp

    # Categorical, linear in one-hot observations: F = mean_s J_sᵀ (diag π_s − π_s π_sᵀ) J_s
    torch.manual_seed(1)
    S, A = 4, 3
    policy = CategoricalPolicy(S, A, hidden=()).double()
    with torch.no_grad():
        policy.logits_net[0].weight.normal_()
        policy.logits_net[0].bias.normal_()
    obs = torch.eye(S, dtype=torch.float64)[torch.tensor([0, 1, 1, 3, 2, 3])]
    F = torch.zeros(A * S + A, A * S + A, dtype=torch.float64)
    for o in obs:
        s = int(o.argmax())
        pi = torch.softmax(policy.logits_net(o), -1).detach()
        J = torch.zeros(A, A * S + A, dtype=torch.float64)
        for a in range(A):
            J[a, a * S + s] = 1.0       # weight[a, s] (row-major flattening of [A, S])
            J[a, A * S + a] = 1.0       # bias[a]
        F += J.T @ (torch.diag(pi) - torch.outer(pi, pi)) @ J / len(obs)
    fvp = make_fvp(policy, obs)
    v = torch.randn(A * S + A, dtype=torch.float64)
    torch.testing.assert_close(fvp(v), F @ v, rtol=1e-10, atol=1e-12)
    # Gaussian: the Fisher block of log σ is 2·I, and it does not couple to the mean at θ_old
    gp = GaussianPolicy(3, 2, hidden=(8,), log_std_init=-0.3).double()
    names = [name for name, p in gp.named_parameters() for _ in range(p.numel())]
    e = torch.zeros(len(names), dtype=torch.float64)
    at = [i for i, name in enumerate(names) if name == "log_std"]
    e[at] = torch.tensor([1.0, -0.5], dtype=torch.float64)
    out = make_fvp(gp, torch.randn(5, 3, dtype=torch.float64))(e)
    torch.testing.assert_close(out, 2.0 * e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_same_seed_same_parameters(algo):
    a, b = _train(algo, "gym:CartPole-v1", seed=3), _train(algo, "gym:CartPole-v1", seed=3)
    c = _train(algo, "gym:CartPole-v1", seed=4)
    assert torch.equal(flat_params(a.policy), flat_params(b.policy))
    assert torch.equal(flat_params(a.value_fn), flat_params(b.value_fn))
    assert [r["episode_return"] for r in a] == [r["episode_return"] for r in b]
    assert not torch.equal(flat_params(a.policy), flat_params(c.policy))


def test_same_seed_same_parameters_gaussian():
    a, b = (_train("ppo", "gym:Pendulum-v1", seed=1) for _ in range(2))
    assert torch.equal(flat_params(a.policy), flat_params(b.policy))


def test_clear_errors():
    with pytest.raises(HarlMiniError, match="unknown algorithm 'sac'; available: ppo, reinforce, trpo"):
        get_algo("sac")
    ppo = get_algo("ppo")
    with pytest.raises(HarlMiniError, match="unknown environment 'mujoco:Ant'"):
        ppo.train("mujoco:Ant", 100, progress=False)
    with pytest.raises(HarlMiniError, match=r"unknown hyperparameter\(s\) 'learning_rate' for PPOConfig; available: .*lr"):
        ppo.train("gym:CartPole-v1", 100, progress=False, learning_rate=1e-3)
    with pytest.raises(HarlMiniError, match="steps: expected a positive integer"):
        ppo.train("gym:CartPole-v1", 0, progress=False)
    with pytest.raises(HarlMiniError, match="gamma: must lie in"):
        get_algo("trpo").train("gym:CartPole-v1", 100, progress=False, gamma=1.5)
    with pytest.raises(HarlMiniError, match="num_steps: expected a positive integer"):
        get_algo("reinforce").train("gym:CartPole-v1", 100, progress=False, num_steps=0)


def _register_nan_env() -> str:
    """A Gymnasium env whose third observation holds a NaN."""
    import gymnasium as gym
    import numpy as np

    class NaNObsEnv(gym.Env):
        observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.zeros(2, np.float32), {}

        def step(self, action):
            self.t += 1
            return np.array([np.nan if self.t == 3 else 0.0, 0.0], np.float32), 1.0, False, False, {}

    env_id = "HarlMiniNaNAlgos-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=NaNObsEnv, max_episode_steps=50)
    return f"gym:{env_id}"


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_nan_observation_raises_a_clear_error(algo):
    with pytest.raises(HarlMiniError, match="HarlMiniNaNAlgos-v0: the environment returned a non-finite observation"):
        _train(algo, _register_nan_env())


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_implementation_details_point_at_their_lines(name):
    module = importlib.import_module(ALGOS[name])
    lines = inspect.getsource(module).split("\n")
    items = re.findall(r"^(\d+)\. \[(L\d+(?:[–-]L?\d+)?(?:, L\d+(?:[–-]L?\d+)?)*)\]", module.__doc__, re.M)
    assert len(items) >= 4, module.__doc__[:500]
    for number, refs in items:
        for ref in refs.split(", "):
            lo, _, hi = ref.partition("–")
            lo = int(lo[1:])
            hi = int(hi.lstrip("L")) if hi else lo
            for k in range(lo, hi + 1):
                assert f"# [{number}]" in lines[k - 1], f"{name}: item {number} cites L{k}: {lines[k - 1]!r}"
        marked = [i + 1 for i, line in enumerate(lines) if f"# [{number}]" in line]
        assert marked, f"{name}: no line is marked # [{number}]"


def test_run_cli_writes_metrics_and_manifest(tmp_path, capsys):
    from harl_mini.algos.run import main

    out = tmp_path / "run"
    rc = main(["--algo", "ppo", "--env", "gym:CartPole-v1", "--steps", "256", "--seed", "1", "--out", str(out),
               "--set", "num_envs=2", "--set", "num_steps=64", "--set", "hidden=(8,8)", "--eval-episodes", "2",
               "--no-progress"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("git_commit", "git_dirty", "versions", "python", "platform", "cpu", "torch_threads", "device",
                "seed", "steps", "wall_time", "command", "hyperparameters", "eval_deterministic", "target"):
        assert key in manifest, key
    assert manifest["seed"] == 1 and manifest["steps"] == 256 and manifest["hyperparameters"]["hidden"] == [8, 8]
    assert {"torch", "gymnasium", "numpy", "harl_mini"} <= set(manifest["versions"])
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 2 and int(rows[-1]["steps"]) == 256
    assert "wrote" in capsys.readouterr().out
    assert main(["--algo", "dqn", "--env", "gym:CartPole-v1", "--steps", "10", "--out", str(tmp_path / "x")]) == 2
    assert "unknown algorithm 'dqn'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--algo", "ppo"])


def test_write_run_takes_the_union_of_columns(tmp_path):
    rows = [{"a": 1, "b": 0.5}, {"a": 2, "c": float("nan")}]
    manifest = run_manifest(seed=0, steps=2, note=float("inf"))
    write_run(tmp_path, rows, manifest)
    text = (tmp_path / "metrics.csv").read_text().splitlines()
    assert text[0] == "a,b,c" and text[2] == "2,,nan"
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["note"] is None and saved["seed"] == 0


@pytest.mark.parametrize("kind", ["discrete", "box"])
@pytest.mark.parametrize("norms", [False, True])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gauss_newton_fvp_equals_double_backprop(kind, norms, activation):
    """F = E[Jᵀ M J] (forward + reverse mode) is the Hessian of the mean KL at θ_old."""
    from harl_mini.algos.trpo import make_fvp
    from harl_mini.marl.actors import MultiAgentActors
    from harl_mini.nets import flat_params

    torch.manual_seed(0)
    space = ("discrete", 4) if kind == "discrete" else ("box", 3)
    actors = MultiAgentActors([5], [space], hidden=(16, 16), activation=activation, log_std_init=-0.4,
                              feature_norm=norms, layer_norm=norms).double()
    pol = actors.policy(0)
    with torch.no_grad():  # move away from the output-gain-0.01 start so that M is far from uniform
        for p in pol.parameters():
            p.add_(0.5 * torch.randn_like(p))
    x = torch.randn(64, 5, dtype=torch.float64)
    v = torch.randn(flat_params(pol).numel(), dtype=torch.float64)
    exact, fast = make_fvp(pol, x)(v), make_fvp(pol, x, method="gauss_newton")(v)
    torch.testing.assert_close(fast, exact, rtol=1e-9, atol=1e-11)
    assert float(fast.norm()) > 1e-3
    # one product function serves a whole CG solve: its kept graph gives every later product too
    fvp, fvp_exact = make_fvp(pol, x, method="gauss_newton"), make_fvp(pol, x)
    for k in range(3):
        u = torch.randn_like(v)
        torch.testing.assert_close(fvp(u), fvp_exact(u), rtol=1e-9, atol=1e-11)
    with pytest.raises(HarlMiniError, match="unknown method 'nope'"):
        make_fvp(pol, x, method="nope")


@pytest.mark.parametrize("norms", [False, True])
def test_linearize_is_the_forward_mode_derivative(norms):
    """linearize's hand-written J·dp equals torch.func.jvp's, layer types it does not know
    fall back (jvp_of None), and the Gauss–Newton product is right through the fallback too."""
    from torch.func import functional_call, jvp

    from harl_mini.algos.trpo import linearize, make_fvp
    from harl_mini.marl.actors import with_layer_norms
    from harl_mini.nets import CategoricalPolicy, flat_params, mlp

    torch.manual_seed(1)
    net = with_layer_norms(mlp([6, 12, 12, 3], torch.nn.Tanh), norms, norms).double()
    with torch.no_grad():
        for p in net.parameters():  # LayerNorm weights away from 1, biases away from 0
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(40, 6, dtype=torch.float64)
    names = dict(net.named_parameters())
    tangents = {n: torch.randn_like(p) for n, p in names.items()}
    y, jvp_of = linearize(net, x)
    torch.testing.assert_close(y, net(x), rtol=0, atol=0)
    mine = jvp_of({id(p): tangents[n] for n, p in names.items()})
    _, ref = jvp(lambda *ps: functional_call(net, dict(zip(names, ps)), (x,)),
                 tuple(p.detach() for p in names.values()), tuple(tangents.values()))
    torch.testing.assert_close(mine, ref, rtol=1e-10, atol=1e-12)
    assert float(ref.norm()) > 1e-2
    # an unknown layer: no hand-written derivative, the caller falls back to torch.func.jvp
    assert linearize(torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.ELU()).double(), x)[1] is None
    pol = CategoricalPolicy(6, 3, (12,)).double()
    pol.logits_net = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ELU(), torch.nn.Linear(12, 3)).double()
    v = torch.randn(flat_params(pol).numel(), dtype=torch.float64)
    torch.testing.assert_close(make_fvp(pol, x, method="gauss_newton")(v), make_fvp(pol, x)(v), rtol=1e-9, atol=1e-11)
