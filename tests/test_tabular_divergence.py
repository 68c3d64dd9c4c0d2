"""Tests for harl_mini.tabular.divergence (KL, TV; per-agent and joint KL)."""

from __future__ import annotations

import math

import pytest
import torch

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError

F64 = torch.float64


def _rand_policy(S, n, seed, concentration=1.0):
    g = torch.Generator().manual_seed(seed)
    return T.mdp.sample_dirichlet((S, n), concentration, g)


def test_kl_and_tv_hand_computation():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.2, 0.8]], dtype=F64)
    q = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]], dtype=F64)
    expected = [
        0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1),
        math.log(1.0 / 0.5),  # 0 · log 0 = 0
        0.0,
    ]
    got = T.kl(p, q)
    assert got.shape == (3,) and got.dtype == F64
    for g, e in zip(got.tolist(), expected):
        assert g == pytest.approx(e, abs=1e-15)
    assert float(T.kl_max(p, q)) == pytest.approx(max(expected), abs=1e-15)
    assert T.tv(p, q).tolist() == pytest.approx([0.4, 0.5, 0.0], abs=1e-15)
    assert float(T.tv_max(p, q)) == pytest.approx(0.5, abs=1e-15)
    w = torch.tensor([0.25, 0.25, 0.5], dtype=F64)
    assert float(T.mean_kl(p, q, w)) == pytest.approx(0.25 * expected[0] + 0.25 * expected[1], abs=1e-15)


def test_kl_is_infinite_where_support_is_missing():
    p = torch.tensor([[0.5, 0.5], [0.0, 1.0]], dtype=F64)
    q = torch.tensor([[1.0, 0.0], [0.3, 0.7]], dtype=F64)
    got = T.kl(p, q)
    assert math.isinf(float(got[0])) and float(got[0]) > 0
    assert float(got[1]) == pytest.approx(math.log(1 / 0.7), abs=1e-15)
    assert math.isinf(float(T.kl_max(p, q)))
    # weight 0 on the bad state: the mean stays finite
    assert float(T.mean_kl(p, q, torch.tensor([0.0, 1.0], dtype=F64))) == pytest.approx(math.log(1 / 0.7))


def test_kl_nonnegative_zero_iff_equal_and_pinsker():
    for seed in range(30):
        S, n = 1 + seed % 7, 2 + seed % 5
        p = _rand_policy(S, n, seed, concentration=0.3 + seed / 10)
        q = _rand_policy(S, n, 1000 + seed)
        k = T.kl(p, q)
        assert bool((k > 0).all())  # random rows differ
        assert float(T.kl(p, p).abs().max()) == 0.0
        t = T.tv(p, q)
        assert bool((t**2 <= k / 2 + 1e-15).all())  # Pinsker
        assert bool((t <= 1).all()) and float(T.tv(p, p).max()) == 0.0


def test_joint_kl_is_sum_of_agent_kl_lemma_18():
    for seed in range(20):
        counts = [2 + (seed + i) % 3 for i in range(2 + seed % 3)]
        S = 1 + seed % 5
        old = [_rand_policy(S, n, 10 * seed + i) for i, n in enumerate(counts)]
        new = [_rand_policy(S, n, 10 * seed + i + 500, concentration=2.0) for i, n in enumerate(counts)]
        per_agent = T.agent_kl(old, new)
        assert per_agent.shape == (len(counts), S)
        for i in range(len(counts)):
            torch.testing.assert_close(per_agent[i], T.kl(old[i], new[i]), rtol=0, atol=0)
        torch.testing.assert_close(T.joint_kl(old, new), per_agent.sum(0), rtol=0, atol=1e-12)
        # D_KL^max(joint) <= Σ_i D_KL^max(π^i)
        assert float(T.joint_kl(old, new).max()) <= float(per_agent.max(-1).values.sum()) + 1e-12


def test_kl_gradient_is_finite_with_zero_probabilities():
    q = torch.tensor([[0.2, 0.3, 0.5]], dtype=F64)
    p = torch.tensor([[0.0, 0.4, 0.6]], dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(T.kl(p, q).sum(), p)
    assert bool(torch.isfinite(g).all())
    torch.testing.assert_close(g[0, 1:], torch.log(p[0, 1:].detach() / q[0, 1:]) + 1)


def test_mean_kl_validates_weights():
    p, q = _rand_policy(3, 2, 0), _rand_policy(3, 2, 1)
    with pytest.raises(HarlMiniError, match="weights"):
        T.mean_kl(p, q, torch.tensor([0.5, 0.5, 0.5], dtype=F64))
    with pytest.raises(HarlMiniError, match="weights"):
        T.mean_kl(p, q, torch.tensor([0.5, 0.5], dtype=F64))
    with pytest.raises(HarlMiniError, match="q"):
        T.kl(p, _rand_policy(3, 4, 1))
    with pytest.raises(HarlMiniError, match=r"pis_new\[1\]"):
        T.agent_kl([p, p], [q, torch.ones(3, 2, dtype=F64)])


def test_mean_tv_hand_computation_pinsker_jensen_and_weights():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.2, 0.8]], dtype=F64)
    q = torch.tensor([[0.9, 0.1], [0.0, 1.0], [0.2, 0.8]], dtype=F64)
    w = torch.tensor([0.5, 0.25, 0.25], dtype=F64)
    # TV per state: 0.4, 1.0, 0.0
    assert float(T.divergence.mean_tv(p, q, w)) == pytest.approx(0.5 * 0.4 + 0.25 * 1.0, abs=1e-15)
    for seed in range(20):  # Pinsker in every state, then Jensen: E_w TV <= sqrt(E_w KL / 2)
        p, q = _rand_policy(5, 3, seed), _rand_policy(5, 3, 100 + seed, concentration=0.5)
        w = _rand_policy(1, 5, 200 + seed)[0]
        assert float(T.divergence.mean_tv(p, q, w)) <= math.sqrt(float(T.mean_kl(p, q, w)) / 2) + 1e-12
    with pytest.raises(HarlMiniError, match="weights"):
        T.divergence.mean_tv(p, q, torch.full((5,), 0.5, dtype=F64))
    with pytest.raises(HarlMiniError, match="weights"):
        T.divergence.mean_tv(p, q, torch.full((4,), 0.25, dtype=F64))
