"""collect(..., generator=): actions drawn from a given generator, reproducibly."""

from __future__ import annotations

import pytest
import torch

from harl_mini import tabular
from harl_mini.envs import make_env
from harl_mini.errors import HarlMiniError
from harl_mini.nets import CategoricalPolicy, GaussianPolicy
from harl_mini.rollout import _sample, collect

F64 = torch.float64


def _env(n=4, seed=1):
    m = tabular.random_mdp(5, 3, seed=0)
    return m, make_env("tabular", num_envs=n, seed=seed, mdp=m, time_limit=10, dtype=F64)


def test_a_batch_depends_only_on_the_generator_and_the_env_seed():
    _, env_a = _env()
    _, env_b = _env()
    net = CategoricalPolicy(5, 3, hidden=()).double()
    torch.manual_seed(123)
    a = collect(env_a, net, None, 25, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(456)  # a different global state changes nothing
    b = collect(env_b, net, None, 25, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.actions, b.actions) and torch.equal(a.obs, b.obs)
    _, env_c = _env()
    c = collect(env_c, net, None, 25, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(a.actions, c.actions)


def test_without_a_generator_the_global_one_is_used_as_before():
    _, env_a = _env()
    _, env_b = _env()
    net = CategoricalPolicy(5, 3, hidden=()).double()
    torch.manual_seed(5)
    a = collect(env_a, net, None, 25)
    torch.manual_seed(5)
    b = collect(env_b, net, None, 25)
    assert torch.equal(a.actions, b.actions)


def test_categorical_draws_have_the_policy_frequencies():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=F64)
    dist = torch.distributions.Categorical(probs=probs.repeat(20_000, 1))
    x = _sample(dist, torch.Generator().manual_seed(0)).reshape(20_000, 2)
    assert x.dtype == torch.long and x.shape == (20_000, 2)
    for row in range(2):
        freq = torch.bincount(x[:, row], minlength=3).to(F64) / 20_000
        # 5 standard errors of a frequency: 5 * sqrt(0.25 / 20000) < 0.018
        assert (freq - probs[row]).abs().max() < 0.018


def test_gaussian_draws_have_the_policy_mean_and_scale():
    net = GaussianPolicy(3, 2, hidden=(), log_std_init=-1.0).double()
    obs = torch.randn(20_000, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        dist = net.distribution(obs)
        x = _sample(dist, torch.Generator().manual_seed(2))
    assert x.shape == (20_000, 2)
    z = (x - dist.mean) / dist.stddev
    # 40,000 standard normals: standard errors 0.005 (mean) and 0.0035 (std)
    assert abs(float(z.mean())) < 0.03 and abs(float(z.std()) - 1.0) < 0.03


def test_a_bad_generator_is_a_clear_error():
    _, env = _env()
    net = CategoricalPolicy(5, 3, hidden=()).double()
    with pytest.raises(HarlMiniError, match="generator"):
        collect(env, net, None, 5, generator=7)
    with pytest.raises(HarlMiniError, match="generator"):
        _sample(torch.distributions.Beta(torch.ones(2), torch.ones(2)), torch.Generator())
