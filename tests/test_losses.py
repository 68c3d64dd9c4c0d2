"""Tests for harl_mini.losses: the ratio, the importance-sampled surrogate and PPO's clip."""

from __future__ import annotations

import pytest
import torch

from harl_mini.errors import HarlMiniError
from harl_mini.losses import ppo_clip_loss, ppo_clip_objective, ratio, surrogate_objective

F64 = torch.float64
EPS = 0.2


def _grid(adv: float):
    r = torch.linspace(0.0, 3.0, 301, dtype=F64)
    return r, torch.full_like(r, adv)


def test_ratio_and_surrogate():
    g = torch.Generator().manual_seed(0)
    logp, logp_old = torch.randn(50, generator=g, dtype=F64), torch.randn(50, generator=g, dtype=F64)
    r = ratio(logp, logp_old)
    assert torch.allclose(r, logp.exp() / logp_old.exp(), rtol=1e-12)
    adv = torch.randn(50, generator=g, dtype=F64)
    assert torch.equal(surrogate_objective(r, adv), r * adv)


@pytest.mark.parametrize("adv", [0.7, 2.5])
def test_positive_advantage_is_flat_above_one_plus_eps(adv):
    r, a = _grid(adv)
    obj = ppo_clip_objective(r, a, EPS)
    above = r > 1 + EPS
    assert torch.allclose(obj[above], torch.full_like(obj[above], (1 + EPS) * adv), atol=1e-15)
    assert torch.allclose(obj[~above], r[~above] * adv, atol=1e-15)  # below 1−ε it is not clipped


@pytest.mark.parametrize("adv", [-0.7, -2.5])
def test_negative_advantage_is_flat_below_one_minus_eps(adv):
    r, a = _grid(adv)
    obj = ppo_clip_objective(r, a, EPS)
    below = r < 1 - EPS
    assert torch.allclose(obj[below], torch.full_like(obj[below], (1 - EPS) * adv), atol=1e-15)
    assert torch.allclose(obj[~below], r[~below] * adv, atol=1e-15)  # above 1+ε it is not clipped


def test_equal_to_ra_inside_and_never_above_it():
    g = torch.Generator().manual_seed(1)
    r = 3 * torch.rand(2000, generator=g, dtype=F64)
    adv = torch.randn(2000, generator=g, dtype=F64)
    obj = ppo_clip_objective(r, adv, EPS)
    assert bool((obj <= r * adv + 1e-15).all())
    inside = (r >= 1 - EPS) & (r <= 1 + EPS)
    assert torch.equal(obj[inside], (r * adv)[inside])
    assert bool((obj < r * adv - 1e-3).any())  # the clip really bites somewhere
    # ε = 0 clips to the constant A; for HAPPO, M > 0 factors out of the min
    assert torch.allclose(ppo_clip_objective(r, adv, 0.0), torch.minimum(r * adv, adv), atol=0)
    M = 0.3 + torch.rand(2000, generator=g, dtype=F64)
    assert torch.allclose(M * obj, ppo_clip_objective(r, M * adv, EPS), rtol=1e-13)


def test_gradient_wrt_ratio_is_zero_in_the_clipped_region():
    g = torch.Generator().manual_seed(2)
    r = (3 * torch.rand(500, generator=g, dtype=F64)).requires_grad_(True)
    adv = torch.randn(500, generator=g, dtype=F64)
    (grad,) = torch.autograd.grad(ppo_clip_objective(r, adv, EPS).sum(), r)
    rd = r.detach()
    clipped = ((adv > 0) & (rd > 1 + EPS)) | ((adv < 0) & (rd < 1 - EPS))
    assert bool(clipped.any()) and bool((~clipped).any())
    assert bool((grad[clipped] == 0).all())
    assert torch.equal(grad[~clipped], adv[~clipped])


def test_loss_is_minus_the_mean_objective():
    g = torch.Generator().manual_seed(3)
    logp, logp_old, adv = (torch.randn(64, generator=g, dtype=F64) for _ in range(3))
    expected = -ppo_clip_objective(ratio(logp, logp_old), adv, EPS).mean()
    assert torch.equal(ppo_clip_loss(logp, logp_old, adv, EPS), expected)


def test_shape_mismatch_and_bad_clip_raise():
    with pytest.raises(HarlMiniError, match="same shape"):
        ppo_clip_objective(torch.ones(4, dtype=F64), torch.ones(4, 1, dtype=F64), EPS)
    with pytest.raises(HarlMiniError, match="same shape"):
        surrogate_objective(torch.ones(3, dtype=F64), torch.ones(4, dtype=F64))
    with pytest.raises(HarlMiniError, match="same shape"):
        ppo_clip_loss(torch.zeros(5), torch.zeros(5), torch.zeros(6), EPS)
    with pytest.raises(HarlMiniError, match=r"^clip_eps"):
        ppo_clip_objective(torch.ones(4, dtype=F64), torch.ones(4, dtype=F64), -0.1)
