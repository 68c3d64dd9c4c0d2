"""Tests of harl_mini.advantages.gae against independent computations.

* λ = 0 gives the one-step TD error; λ = 1 gives the Monte-Carlo return minus V, computed
  per episode with ``discounted_returns`` (a cut episode gets V(final obs) as a last reward);
* truncation bootstraps from the final observation's value, termination never bootstraps;
* on random done patterns it matches a naive double loop written from the definition
  Â_t = Σ_l (γλ)^l δ_{t+l} over the rest of the episode.
"""

from __future__ import annotations

import pytest
import torch

from harl_mini.advantages import discounted_returns, gae
from harl_mini.errors import HarlMiniError

F64 = torch.float64


def _random_batch(T, B, seed, p_term=0.1, p_trunc=0.1):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(T, B, generator=g, dtype=F64)
    values = torch.randn(T, B, generator=g, dtype=F64)
    next_values = torch.randn(T, B, generator=g, dtype=F64)
    u = torch.rand(T, B, generator=g, dtype=F64)
    terminated = u < p_term
    truncated = (u >= p_term) & (u < p_term + p_trunc)
    return rewards, values, next_values, terminated, truncated


def _naive(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Â_t = Σ_{l=0}^{L−1} (γλ)^l δ_{t+l}, L = steps to the end of t's episode (or batch)."""
    T, B = rewards.shape
    adv = torch.zeros(T, B, dtype=F64)
    for b in range(B):
        for t in range(T):
            total, coef = 0.0, 1.0
            for k in range(t, T):
                bootstrap = 0.0 if terminated[k, b] else gamma * float(next_values[k, b])
                delta = float(rewards[k, b]) + bootstrap - float(values[k, b])
                total += coef * delta
                if terminated[k, b] or truncated[k, b]:
                    break
                coef *= gamma * lam
            adv[t, b] = total
    return adv


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.0), (0.8, 1.0), (1.0, 0.5), (0.0, 0.7)])
def test_matches_naive_double_loop(seed, gamma, lam):
    batch = _random_batch(17, 5, seed)
    adv, ret = gae(*batch, gamma, lam)
    expected = _naive(*batch, gamma, lam)
    torch.testing.assert_close(adv, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ret, expected + batch[1], rtol=1e-12, atol=1e-12)


def test_lambda_zero_is_the_one_step_td_error():
    r, v, nv, term, trunc = _random_batch(20, 6, seed=7)
    adv, _ = gae(r, v, nv, term, trunc, gamma=0.95, lam=0.0)
    td = r + 0.95 * (~term).to(F64) * nv - v
    torch.testing.assert_close(adv, td, rtol=0, atol=1e-12)


def test_lambda_one_is_monte_carlo_return_minus_value():
    """Split each column into episodes and use discounted_returns on each one independently."""
    gamma = 0.9
    r, v, _, term, trunc = _random_batch(30, 4, seed=3, p_term=0.08, p_trunc=0.08)
    T, B = r.shape
    # a consistent value stream: next_values = V(s_{t+1}) inside an episode, V(final obs) at a cut
    v_final = torch.randn(T, B, dtype=F64, generator=torch.Generator().manual_seed(11))
    nv = torch.cat([v[1:], v_final[-1:]])
    done = term | trunc
    nv = torch.where(done, v_final, nv)
    adv, ret = gae(r, v, nv, term, trunc, gamma, 1.0)
    for b in range(B):
        start = 0
        for t in range(T):
            if done[t, b] or t == T - 1:
                rew = r[start:t + 1, b]
                if term[t, b]:
                    mc = discounted_returns(rew, gamma)
                else:  # truncated or cut by the batch end: V(final obs) stands in for the rest
                    mc = discounted_returns(torch.cat([rew, nv[t:t + 1, b]]), gamma)[:-1]
                torch.testing.assert_close(adv[start:t + 1, b], mc - v[start:t + 1, b], rtol=0, atol=1e-10)
                torch.testing.assert_close(ret[start:t + 1, b], mc, rtol=0, atol=1e-10)
                start = t + 1


def test_truncation_bootstraps_from_the_final_observation_value():
    # one env, episode of 3 steps truncated at t = 2, then a new episode
    r = torch.tensor([[1.0], [1.0], [1.0], [5.0]], dtype=F64)
    v = torch.tensor([[0.5], [0.4], [0.3], [9.0]], dtype=F64)       # v[3] = V(reset obs)
    nv = torch.tensor([[0.4], [0.3], [2.0], [0.0]], dtype=F64)      # nv[2] = V(final obs) = 2
    term = torch.zeros(4, 1, dtype=torch.bool)
    trunc = torch.tensor([[False], [False], [True], [False]])
    gamma = 0.5
    adv, _ = gae(r, v, nv, term, trunc, gamma, 1.0)
    # Â_2 = r_2 + γ V(final) − V(s_2): bootstrapped, and the next episode does not leak in
    assert float(adv[2, 0]) == pytest.approx(1.0 + 0.5 * 2.0 - 0.3)
    assert float(adv[0, 0]) == pytest.approx(1 + 0.5 + 0.25 + 0.125 * 2.0 - 0.5)
    # changing anything after the cut leaves the first episode alone
    r2, v2 = r.clone(), v.clone()
    r2[3], v2[3] = -100.0, 100.0
    adv2, _ = gae(r2, v2, nv, term, trunc, gamma, 0.9)
    adv1, _ = gae(r, v, nv, term, trunc, gamma, 0.9)
    torch.testing.assert_close(adv1[:3], adv2[:3])


def test_termination_never_bootstraps():
    r = torch.tensor([[1.0], [2.0]], dtype=F64)
    v = torch.tensor([[0.5], [0.7]], dtype=F64)
    term = torch.tensor([[True], [False]])
    trunc = torch.zeros(2, 1, dtype=torch.bool)
    for junk in (0.0, 1e6, -3.0):
        nv = torch.tensor([[junk], [0.0]], dtype=F64)
        adv, ret = gae(r, v, nv, term, trunc, 0.99, 0.95)
        assert float(adv[0, 0]) == pytest.approx(1.0 - 0.5)
        assert float(ret[0, 0]) == pytest.approx(1.0)


def test_keeps_float32_and_rejects_bad_input():
    r, v, nv, term, trunc = (x.float() if x.is_floating_point() else x for x in _random_batch(5, 2, 0))
    adv, ret = gae(r, v, nv, term, trunc, 0.99, 0.95)
    assert adv.dtype == torch.float32 and ret.dtype == torch.float32
    with pytest.raises(HarlMiniError, match="values: expected shape"):
        gae(r, v[:3], nv, term, trunc, 0.99, 0.95)
    with pytest.raises(HarlMiniError, match="lam"):
        gae(r, v, nv, term, trunc, 0.99, 1.5)
    with pytest.raises(HarlMiniError, match="rewards: expected shape"):
        gae(r[0], v[0], nv[0], term[0], trunc[0], 0.99, 0.95)
    bad = r.clone()
    bad[1, 1] = float("nan")
    with pytest.raises(HarlMiniError, match="rewards: contains nan"):
        gae(bad, v, nv, term, trunc, 0.99, 0.95)
