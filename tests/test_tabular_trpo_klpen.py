"""Tests for the helpers of Chapters 4–5 added with their exercises: Kakade–Langford's certified
and best mixture weights, PPO's KL-penalty maximiser and adaptive coefficient
(``harl_mini.tabular.trpo``), and the correct alternative solutions of Exercises 4.2 and 4.3."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError
from harl_mini.grading import CHECKS
from harl_mini.tabular import trpo

sys.path.insert(0, str(Path(__file__).parent))
import mutants  # noqa: E402

F64 = torch.float64


def _case(k: int, gamma: float = 0.9):
    m = T.random_mdp(4 + k % 3, 3, gamma=gamma, seed=300 + k)
    g = torch.Generator().manual_seed(k)
    pi = T.softmax_policy(2.0 * torch.randn(m.num_states, 3, generator=g, dtype=F64))
    return m, pi, T.greedy_policy(T.advantage(m, pi))


# --------------------------------------------------------------------------- mixture weights


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_certified_weight_is_where_the_bound_returns_to_j(gamma):
    for k in range(5):
        m, pi, target = _case(k, gamma)
        J0 = float(T.objective(m, pi))
        a_star = float(trpo.cpi_certified_weight(m, pi, target))
        assert 0 < a_star < 1
        gain = lambda a: float(trpo.cpi_lower_bound(m, pi, target, a)) - J0  # noqa: E731
        assert abs(gain(a_star)) < 1e-10 * max(1.0, abs(J0))
        assert gain(0.5 * a_star) > 0 and gain(min(1.0, 1.01 * a_star)) < 0


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_best_weight_maximises_the_bound(gamma):
    for k in range(5):
        m, pi, target = _case(k, gamma)
        a_best = float(trpo.cpi_best_weight(m, pi, target))
        grid = np.concatenate([np.linspace(0.0, 1.0, 101), a_best + np.linspace(-1e-3, 1e-3, 21)])
        values = [float(trpo.cpi_lower_bound(m, pi, target, float(a))) for a in grid if 0 <= a <= 1]
        at_best = float(trpo.cpi_lower_bound(m, pi, target, a_best))
        assert at_best >= max(values) - 1e-12 * max(1.0, abs(at_best))
        assert 0 < a_best < float(trpo.cpi_certified_weight(m, pi, target))


def test_mixture_weights_edge_cases():
    m, pi, target = _case(0)
    worse = T.greedy_policy(-T.advantage(m, pi))
    assert float(trpo.cpi_certified_weight(m, pi, worse)) == 0.0
    assert float(trpo.cpi_best_weight(m, pi, worse)) == 0.0
    m0 = T.random_mdp(4, 3, gamma=0.0, seed=1)
    pi0 = T.uniform_policy(m0)
    greedy0 = T.greedy_policy(T.advantage(m0, pi0))
    assert float(trpo.cpi_certified_weight(m0, pi0, greedy0)) == 1.0  # gamma = 0: the surrogate is exact
    assert float(trpo.cpi_best_weight(m0, pi0, greedy0)) == 1.0
    small = T.random_mdp(4, 3, gamma=0.05, seed=13)
    pi_s = T.softmax_policy(2.0 * torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=F64))
    assert float(trpo.cpi_certified_weight(small, pi_s, T.greedy_policy(T.advantage(small, pi_s)))) == 1.0


def test_exercise_4_2_and_4_3_accept_numerical_and_cg_solutions():
    """Bisection, golden-section search and conjugate gradient pass: the tolerances are fair."""
    for key, fn in (("ex04_2.check_certified_mixture_weight", mutants.certified_weight_by_bisection),
                    ("ex04_2.check_best_mixture_weight", mutants.best_weight_by_grid),
                    ("ex04_3.check_trpo_full_step", mutants.trpo_full_step_with_cg)):
        exercise, name = key.split(".")
        for seed in (None, 3, 99):
            result = CHECKS[exercise][name].evaluate(fn, seed=seed)
            assert result.ok, [p.line() for p in result.parts if not p.ok]


# --------------------------------------------------------------------------- KL penalty


def test_kl_penalty_maximiser_is_stationary_and_optimal():
    g = torch.Generator().manual_seed(0)
    for c in (0.01, 0.3, 1.0, 30.0):
        pi = T.softmax_policy(1.5 * torch.randn(5, 4, generator=g, dtype=F64))
        adv = torch.randn(5, 4, generator=g, dtype=F64)
        q = trpo.kl_penalty_maximiser(pi, adv, c)
        assert torch.allclose(q.sum(-1), torch.ones(5, dtype=F64), atol=1e-12)
        stationary = adv + c * pi / q  # = mu_s in every state
        assert float((stationary.max(-1).values - stationary.min(-1).values).max()) < 1e-9 * max(1.0, c)

        def objective(p):
            return (p * adv).sum(-1) - c * (pi * (pi / p).log()).sum(-1)

        for _ in range(20):
            other = T.softmax_policy(q.log() + 0.05 * torch.randn(5, 4, generator=g, dtype=F64))
            assert bool((objective(other) <= objective(q) + 1e-12).all())


def test_kl_penalty_maximiser_known_value_and_limits():
    # one state, pi = (1/2, 1/2), A = (1, -1), c = 1: q(a) = 1/(2(mu - A(a))) with
    # 1/(2(mu - 1)) + 1/(2(mu + 1)) = 1, i.e. mu^2 - mu - 1 = 0, mu = (1 + sqrt 5)/2
    q = trpo.kl_penalty_maximiser(torch.tensor([[0.5, 0.5]], dtype=F64), torch.tensor([[1.0, -1.0]], dtype=F64), 1.0)
    mu = (1 + math.sqrt(5)) / 2
    assert abs(float(q[0, 0]) - 0.5 / (mu - 1)) < 1e-12 and abs(float(q[0, 1]) - 0.5 / (mu + 1)) < 1e-12
    pi = T.softmax_policy(torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=F64))
    adv = torch.randn(3, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    assert torch.allclose(trpo.kl_penalty_maximiser(pi, adv, 1e6), pi, atol=1e-5)  # huge penalty: stay
    nearly_greedy = trpo.kl_penalty_maximiser(pi, adv, 1e-4)
    assert torch.equal(nearly_greedy.argmax(-1), adv.argmax(-1)) and float(nearly_greedy.max(-1).values.min()) > 0.99
    pi0 = pi.clone()
    pi0[:, 0] = 0.0
    pi0 = pi0 / pi0.sum(-1, keepdim=True)
    adv0 = adv.clone()
    adv0[:, 0] = 10.0  # the unused action is the best: it still gets nothing
    q0 = trpo.kl_penalty_maximiser(pi0, adv0, 0.5)
    assert bool((q0[:, 0] == 0).all()) and torch.allclose(q0.sum(-1), torch.ones(3, dtype=F64), atol=1e-12)


def test_kl_penalty_bad_inputs():
    pi = T.uniform_policy(T.random_mdp(2, 2, gamma=0.5, seed=0))
    with pytest.raises(HarlMiniError, match="c_kl"):
        trpo.kl_penalty_maximiser(pi, torch.zeros(2, 2), 0.0)
    with pytest.raises(HarlMiniError, match="adv"):
        trpo.kl_penalty_maximiser(pi, torch.zeros(3, 2), 1.0)
    with pytest.raises(HarlMiniError, match="pi"):
        trpo.kl_penalty_maximiser(torch.ones(4) / 4, torch.zeros(4), 1.0)
    with pytest.raises(HarlMiniError, match="d_targ"):
        trpo.adapt_kl_coef(1.0, 0.01, 0.0)


def test_adapt_kl_coef_is_ppos_rule():
    assert trpo.adapt_kl_coef(1.0, 0.001, 0.01) == 0.5
    assert trpo.adapt_kl_coef(1.0, 0.006, 0.01) == 0.5
    assert trpo.adapt_kl_coef(1.0, 0.007, 0.01) == 1.0
    assert trpo.adapt_kl_coef(1.0, 0.015, 0.01) == 1.0
    assert trpo.adapt_kl_coef(1.0, 0.016, 0.01) == 2.0


def test_run_kl_penalty_records_what_it_used():
    m = T.random_mdp(4, 3, gamma=0.9, seed=5)
    pi = T.softmax_policy(torch.randn(4, 3, generator=torch.Generator().manual_seed(5), dtype=F64))
    run = trpo.run_kl_penalty(m, pi, c_kl=100.0, d_targ=0.01, iterations=8)
    assert len(run.J) == 9 and len(run.c_kl) == len(run.mean_kl) == 8
    for c, d, c_next in zip(run.c_kl, run.mean_kl, run.c_kl[1:]):
        assert c_next == trpo.adapt_kl_coef(c, d, 0.01)
    assert run.c_kl[:3] == [100.0, 50.0, 25.0]  # far too large: halved
