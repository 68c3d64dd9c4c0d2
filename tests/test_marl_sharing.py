"""Parameter sharing and value decomposition (harl_mini.tabular.sharing).

Each claim is checked against something computed independently: closed forms
(2θ^{n/2}(1−θ)^{n/2}, n! Π p), grid searches over the simplex, the least-squares normal
equations, and Dykstra's alternating projections for the isotonic regression behind the
monotone-mixing floor.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError
from harl_mini.tabular import games as G
from harl_mini.tabular import sharing as Sh

F64 = torch.float64
XOR = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=F64)


# ---------------------------------------------------------------------------------------
# Parameter sharing
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 4, 6, 8, 10])
def test_prop1_shared_objective_closed_form(n):
    g = G.prop1_game(n)
    for theta in [0.1, 0.37, 0.5, 0.9]:
        J = Sh.shared_objective(g, torch.tensor([theta, 1 - theta], dtype=F64))
        assert float(J) == pytest.approx(2 * (theta * (1 - theta)) ** (n // 2), rel=1e-12)


@pytest.mark.parametrize("n", [2, 4, 6, 8, 10])
def test_prop1_ratio(n):
    """Kuba et al. 2022, Proposition 1: J*_share / J* = 2 / 2^n, at p = (½, ½)."""
    g = G.prop1_game(n)
    p, J_share = Sh.best_shared_policy(g)
    J_star = float(G.optimal_value(g))
    assert J_star == 1.0
    assert J_share / J_star == pytest.approx(2 / 2**n, abs=1e-8, rel=1e-10)
    torch.testing.assert_close(p, torch.full((1, 2), 0.5, dtype=F64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_permutation_shared_optimum(n):
    """Fu et al. 2022: a shared policy earns n! Π_a p(a) <= n!/n^n."""
    g = G.permutation_game(n)
    gen = torch.Generator().manual_seed(n)
    p = torch.rand(n, generator=gen, dtype=F64) + 0.1
    p = p / p.sum()
    assert float(Sh.shared_objective(g, p)) == pytest.approx(math.factorial(n) * float(p.prod()), rel=1e-10)
    _, J_share = Sh.best_shared_policy(g, restarts=4)
    assert J_share == pytest.approx(math.factorial(n) / n**n, abs=1e-8, rel=1e-10)


def test_xor_shared_optimum_is_half():
    p, J = Sh.best_shared_policy(G.xor_game())
    assert J == pytest.approx(0.5, abs=1e-12)
    assert isinstance(J, float) and tuple(p.shape) == (1, 2)


def _simplex_grid(k: int, steps: int) -> np.ndarray:
    pts = [np.array(c) / steps for c in itertools.product(range(steps + 1), repeat=k - 1) if sum(c) <= steps]
    return np.array([np.append(c, 1 - c.sum()) for c in pts])


@pytest.mark.parametrize("seed,agents", [(0, 2), (1, 2), (2, 3), (3, 3)])
def test_best_shared_policy_beats_grid_search(seed, agents):
    """On random 3-action payoffs (maximiser not uniform) mirror ascent matches a fine grid search."""
    rng = np.random.default_rng(seed)
    R = rng.normal(size=(3,) * agents)
    grid = _simplex_grid(3, 150)
    if agents == 2:
        vals = np.einsum("ab,na,nb->n", R, grid, grid)
    else:
        vals = np.einsum("abc,na,nb,nc->n", R, grid, grid, grid)
    p, J = Sh.best_shared_policy(T.matrix_game(R))
    assert J >= vals.max() - 1e-12
    assert J <= vals.max() + 0.05 * np.abs(R).max()  # grid spacing 1/150: a loose sanity bound
    assert float(Sh.shared_objective(T.matrix_game(R), p)) == pytest.approx(J, abs=1e-14)


def test_shared_objective_multi_state_and_errors():
    g = T.random_game(3, (2, 2, 2), gamma=0.9, seed=0)
    p = T.random_policies(g, seed=1)[0]
    assert float(Sh.shared_objective(g, p)) == pytest.approx(float(T.game_objective(g, [p, p, p])), abs=1e-14)
    p_star, J_star = Sh.best_shared_policy(g, restarts=2)
    assert J_star >= float(Sh.shared_objective(g, p)) and tuple(p_star.shape) == (3, 2)
    with pytest.raises(HarlMiniError, match="same number of actions; got action_counts=\\(2, 3\\)"):
        Sh.shared_objective(T.random_game(1, (2, 3), seed=0), [0.5, 0.5])
    with pytest.raises(HarlMiniError, match="p: expected shape \\[2\\]"):
        Sh.shared_objective(G.xor_game(), [0.2, 0.3, 0.5])
    with pytest.raises(HarlMiniError, match="p: .*sum to 1"):
        Sh.shared_objective(G.xor_game(), [0.2, 0.3])
    with pytest.raises(HarlMiniError, match="restarts: expected a non-negative integer"):
        Sh.best_shared_policy(G.xor_game(), restarts=-1)


# ---------------------------------------------------------------------------------------
# VDN: least-squares additive fit
# ---------------------------------------------------------------------------------------


def test_vdn_xor_floor():
    fit = Sh.vdn_fit(G.xor_game())
    q_locals, Q_tot, mse = fit
    torch.testing.assert_close(Q_tot, torch.full((2, 2), 0.5, dtype=F64))
    torch.testing.assert_close(fit.residual, torch.tensor([[-0.5, 0.5], [0.5, -0.5]], dtype=F64))
    assert mse == pytest.approx(0.25, abs=1e-14)           # mean over the 4 joint actions
    assert fit.sse == pytest.approx(1.0, abs=1e-14)        # summed: Fu et al.'s floor of 1.0
    assert Sh.vdn_floor(XOR) == pytest.approx(1.0, abs=1e-14)
    torch.testing.assert_close(sum(q_locals), torch.tensor([0.5, 0.5], dtype=F64))


def test_vdn_exact_on_additive_payoff():
    rng = np.random.default_rng(0)
    u, v, w = rng.normal(size=2), rng.normal(size=3), rng.normal(size=4)
    payoff = torch.tensor(u[:, None, None] + v[None, :, None] + w[None, None, :], dtype=F64)
    fit = Sh.vdn_fit(payoff)
    assert fit.sse < 1e-24 and fit.mse < 1e-24
    torch.testing.assert_close(fit.Q_tot, payoff, atol=1e-12, rtol=0)
    assert Sh.igm_holds(fit.Q_tot, fit.q_locals)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vdn_weighted_normal_equations(seed):
    """Optimality of weighted least squares: Σ_a w(a) e(a) 1[a^i = b] = 0 for every agent i, action b."""
    rng = np.random.default_rng(seed)
    shape = (2, 3, 4)
    payoff = torch.tensor(rng.normal(size=shape), dtype=F64)
    weights = torch.tensor(rng.dirichlet(np.ones(24)).reshape(shape), dtype=F64)
    fit = Sh.vdn_fit(payoff, weights)
    we = weights * fit.residual
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        torch.testing.assert_close(we.sum(dim=other), torch.zeros(shape[axis], dtype=F64), atol=1e-12, rtol=0)
    assert fit.mse == pytest.approx(float((weights * fit.residual**2).sum()), rel=1e-12)
    # no perturbation of the utilities does better
    for _ in range(5):
        qs = [q + torch.tensor(rng.normal(size=q.shape[0]) * 0.1, dtype=F64) for q in fit.q_locals]
        Q = qs[0][:, None, None] + qs[1][None, :, None] + qs[2][None, None, :]
        assert float((weights * (payoff - Q) ** 2).sum()) >= fit.mse - 1e-14


def test_vdn_errors():
    with pytest.raises(HarlMiniError, match="weights: expected shape \\[2, 2\\]"):
        Sh.vdn_fit(XOR, torch.ones(4) / 4)
    with pytest.raises(HarlMiniError, match="weights: .*sum to 1"):
        Sh.vdn_fit(XOR, torch.ones(2, 2))
    with pytest.raises(HarlMiniError, match="payoff: expected a payoff table or a one-state game"):
        Sh.vdn_fit(T.random_game(2, (2, 2), seed=0))


# ---------------------------------------------------------------------------------------
# IGM
# ---------------------------------------------------------------------------------------


def test_igm_cannot_hold_on_xor():
    assert not Sh.igm_representable(G.xor_game())
    assert Sh.argmax_set(XOR) == {(0, 1), (1, 0)}
    # Any utilities at all: with Q_tot equal to the payoff, IGM fails.
    rng = np.random.default_rng(0)
    candidates = [[torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)]
                  for a, b in itertools.product([[1, 0], [0, 1], [1, 1]], repeat=2)]
    candidates += [[torch.tensor(rng.normal(size=2)), torch.tensor(rng.normal(size=2))] for _ in range(50)]
    assert not any(Sh.igm_holds(XOR, q) for q in candidates)


def test_igm_representable_other_games():
    assert Sh.igm_representable(G.climbing_game())          # unique optimum (0, 0)
    assert not Sh.igm_representable(G.penalty_game())       # optima (0, 0), (2, 2)
    assert not Sh.igm_representable(G.zhong_example1_game())
    assert not Sh.igm_representable(G.permutation_game(3))
    assert Sh.igm_representable(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))  # {0} × {0, 1}


def test_igm_holds_cases():
    q = [torch.tensor([0.0, 1.0]), torch.tensor([2.0, 0.0, 2.0])]
    Q = q[0][:, None] + q[1][None, :]
    assert Sh.igm_holds(Q, q)  # argmax {(1, 0), (1, 2)} on both sides
    Q2 = Q.clone()
    Q2[1, 2] -= 0.5
    assert not Sh.igm_holds(Q2, q)
    with pytest.raises(HarlMiniError, match="Q_tot: expected shape \\[2, 3\\]"):
        Sh.igm_holds(torch.zeros(3, 2), q)
    with pytest.raises(HarlMiniError, match="q_locals: expected a list"):
        Sh.igm_holds(Q, torch.zeros(2))


# ---------------------------------------------------------------------------------------
# QMIX and the monotone floor
# ---------------------------------------------------------------------------------------


def _dykstra_isotonic(y: np.ndarray, w: np.ndarray, sweeps: int = 4000) -> float:
    """Weighted projection onto {f nondecreasing on the grid} by Dykstra's algorithm."""
    shape = y.shape
    pairs = []
    for idx in itertools.product(*(range(n) for n in shape)):
        for ax in range(len(shape)):
            if idx[ax] + 1 < shape[ax]:
                up = list(idx)
                up[ax] += 1
                pairs.append((idx, tuple(up)))
    f = y.astype(float).copy()
    incr = [np.zeros(2) for _ in pairs]
    for _ in range(sweeps):
        for k, (lo, hi) in enumerate(pairs):
            a, b = f[lo] + incr[k][0], f[hi] + incr[k][1]
            if a > b:
                m = (w[lo] * a + w[hi] * b) / (w[lo] + w[hi])
                na, nb = m, m
            else:
                na, nb = a, b
            incr[k] = np.array([a - na, b - nb])
            f[lo], f[hi] = na, nb
    return float((w * (y - f) ** 2).sum())


def _dykstra_bound(payoff: np.ndarray, w: np.ndarray) -> float:
    best = math.inf
    for perms in itertools.product(*(itertools.permutations(range(n)) for n in payoff.shape)):
        y, ww = payoff, w
        for ax, perm in enumerate(perms):
            y, ww = np.take(y, perm, axis=ax), np.take(ww, perm, axis=ax)
        best = min(best, _dykstra_isotonic(y, ww))
    return best


def test_qmix_floor_xor_is_two_thirds():
    assert Sh.qmix_floor(XOR) == pytest.approx(2 / 3, abs=1e-12)
    assert Sh.monotone_fit_bound(XOR) == pytest.approx(1 / 6, abs=1e-12)
    assert Sh.qmix_floor(torch.tensor([[1.0, 2.0, 4.0], [0.0, 1.0, 3.0]])) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("seed,shape", [(0, (2, 2)), (1, (2, 2)), (2, (2, 3))])
def test_monotone_bound_matches_dykstra(seed, shape):
    rng = np.random.default_rng(seed)
    payoff = rng.normal(size=shape)
    w = rng.dirichlet(np.ones(math.prod(shape))).reshape(shape)
    ours = Sh.monotone_fit_bound(torch.tensor(payoff), torch.tensor(w))
    assert ours == pytest.approx(_dykstra_bound(payoff, w), abs=1e-7)
    assert ours <= Sh.vdn_fit(torch.tensor(payoff), torch.tensor(w)).mse + 1e-12  # VDN is a monotone mixing


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_qmix_fails_on_xor(seed):
    fit = Sh.qmix_fit(XOR, seed=seed, restarts=1, steps=1500)
    floor = Sh.qmix_floor(XOR)
    assert fit.sse >= floor - 1e-9      # the exact floor: no monotone mixing goes below 2/3
    assert fit.sse > 0.6                # bounded away from 0 on every seed
    assert fit.mse == pytest.approx(fit.sse / 4, rel=1e-12)
    assert bool((fit.mixer["W1"] >= 0).all()) and bool((fit.mixer["w2"] >= 0).all())
    assert fit.method == "qmix"


def test_qmix_default_fit_reaches_the_floor_on_xor():
    """The floor is tight for QMIX on XOR: one optimum at 1, the other three joint actions at 1/3."""
    fit = Sh.qmix_fit(XOR)
    assert fit.sse == pytest.approx(2 / 3, abs=1e-3)
    assert fit.sse < Sh.vdn_floor(XOR)


def test_qmix_succeeds_on_additive_payoff():
    payoff = torch.tensor([[1.0, 2.0, 4.0], [0.0, 1.0, 3.0]], dtype=F64)
    fit = Sh.qmix_fit(payoff, seed=0)
    assert fit.sse < 1e-3
    assert Sh.argmax_set(fit.Q_tot, atol=1e-3) == {(0, 2)}


def test_qmix_monotone_in_utilities():
    fit = Sh.qmix_fit(G.climbing_game(), steps=200, restarts=1)
    W1, b1, w2, b2 = (fit.mixer[k] for k in ("W1", "b1", "w2", "b2"))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100, 2, generator=gen, dtype=F64, requires_grad=True)
    f = (torch.nn.functional.elu(x @ W1.T + b1) @ w2 + b2).sum()
    (grad,) = torch.autograd.grad(f, x)
    assert bool((grad >= 0).all())


def test_qmix_and_bound_errors():
    with pytest.raises(HarlMiniError, match="hidden: expected an integer >= 1"):
        Sh.qmix_fit(XOR, hidden=0)
    with pytest.raises(HarlMiniError, match="lr: expected a positive number"):
        Sh.qmix_fit(XOR, lr=-1.0)
    with pytest.raises(HarlMiniError, match="too large for the exact monotone bound"):
        Sh.monotone_fit_bound(G.permutation_game(4))


# ---------------------------------------------------------------------------------------
# Weak and strong homogeneity (Albrecht, Christianos & Schäfer 2024)
# ---------------------------------------------------------------------------------------


def _relabel_gap(payoff: torch.Tensor, seeds=range(3)) -> float:
    """max over random product policies and all σ of |J(π∘σ) − J(π)|, by explicit sums."""
    N, counts = payoff.dim(), tuple(payoff.shape)
    gap = 0.0
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        pis = [torch.rand(n, generator=gen, dtype=F64) + 0.05 for n in counts]
        pis = [p / p.sum() for p in pis]

        def J(policies):  # contract the payoff with agent 0's policy, then agent 1's, …
            t = payoff
            for p in policies:
                t = torch.tensordot(p, t, dims=([0], [0]))
            return float(t)

        for sigma in itertools.permutations(range(N)):
            gap = max(gap, abs(J([pis[sigma[i]] for i in range(N)]) - J(pis)))
    return gap


@pytest.mark.parametrize("name,weak,strong", [
    ("xor", True, False), ("prop1-2", True, False), ("prop1-4", False, False), ("prop1-6", False, False),
    ("permutation-3", True, False), ("permutation-4", True, False), ("climbing", False, False),
    ("penalty", True, True), ("zhong-example1", True, False)])
def test_homogeneity_of_the_named_games(name, weak, strong):
    g = G.make_game(name)
    assert Sh.weakly_homogeneous(g) is weak
    assert Sh.strongly_homogeneous(g) is strong
    # the definition J(π∘σ) = J(π), by brute force over all σ
    assert (_relabel_gap(g.R[0], seeds=range(2)) < 1e-12) is weak
    # strong <=> weak and J*_share = J*
    J_share = Sh.best_shared_policy(g, restarts=2).value
    assert strong is (weak and abs(J_share - float(g.R[0].max())) < 1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_weak_homogeneity_on_random_payoffs(seed):
    """A symmetrised random payoff is weakly homogeneous; the raw one is not."""
    gen = torch.Generator().manual_seed(seed)
    N, n = 2 + seed % 2, 2 + seed % 3
    raw = torch.randn((n,) * N, generator=gen, dtype=F64)
    sym = sum(raw.permute(*sigma) for sigma in itertools.permutations(range(N)))
    assert not Sh.weakly_homogeneous(raw)
    assert _relabel_gap(raw) > 1e-6
    assert Sh.weakly_homogeneous(sym, atol=1e-12)
    assert _relabel_gap(sym) < 1e-10
    # invariant only under a transposition that is not adjacent: still not homogeneous
    if N == 3:  # invariant under one transposition only: not homogeneous
        for sigma in ((1, 0, 2), (0, 2, 1), (2, 1, 0)):
            half = raw + raw.permute(*sigma)
            assert not Sh.weakly_homogeneous(half, atol=1e-12)
            assert _relabel_gap(half) > 1e-6


def test_homogeneity_needs_equal_action_counts_and_checks_input():
    assert not Sh.weakly_homogeneous(torch.zeros(2, 3, dtype=F64))
    assert not Sh.strongly_homogeneous(torch.zeros(2, 3, dtype=F64))
    assert Sh.strongly_homogeneous(torch.zeros(3, 3, dtype=F64))  # every joint action is optimal
    with pytest.raises(HarlMiniError, match="atol: expected a finite number >= 0"):
        Sh.weakly_homogeneous(XOR, atol=-1.0)
    with pytest.raises(HarlMiniError, match="one-state game"):
        Sh.weakly_homogeneous(T.random_game(2, (2, 2), seed=0))


# ---------------------------------------------------------------------------------------
# The best monotone fits
# ---------------------------------------------------------------------------------------


def _is_monotone_under_some_ordering(table: np.ndarray, atol: float = 1e-12) -> bool:
    for perms in itertools.product(*(itertools.permutations(range(n)) for n in table.shape)):
        t = table
        for ax, perm in enumerate(perms):
            t = np.take(t, perm, axis=ax)
        if all((np.diff(t, axis=ax) >= -atol).all() for ax in range(t.ndim)):
            return True
    return False


def test_monotone_fits_on_xor_are_four_tables():
    fits = Sh.monotone_fits(XOR)
    third = 1 / 3
    expected = [[[third, 1.0], [third, third]], [[third, third], [1.0, third]],
                [[0.0, 2 * third], [2 * third, 2 * third]], [[2 * third, 2 * third], [2 * third, 0.0]]]
    assert len(fits) == 4
    for t in expected:
        assert any(torch.allclose(f, torch.tensor(t, dtype=F64), atol=1e-12) for f in fits)
    for f in fits:
        assert float(((f - XOR) ** 2).sum()) == pytest.approx(2 / 3, abs=1e-12)
        assert _is_monotone_under_some_ordering(f.numpy())


@pytest.mark.parametrize("seed,shape", [(0, (2, 2)), (1, (2, 3)), (2, (3, 3)), (3, (2, 2, 2))])
def test_monotone_fits_attain_the_bound_and_are_monotone(seed, shape):
    rng = np.random.default_rng(seed)
    payoff = torch.tensor(rng.normal(size=shape))
    w = torch.tensor(rng.dirichlet(np.ones(math.prod(shape))).reshape(shape))
    bound = Sh.monotone_fit_bound(payoff, w)
    fits = Sh.monotone_fits(payoff, w)
    assert len(fits) >= 1
    for f in fits:
        assert float((w * (f - payoff) ** 2).sum()) == pytest.approx(bound, rel=1e-10, abs=1e-14)
        assert _is_monotone_under_some_ordering(f.numpy())


def test_monotone_fits_zero_weight_entries_are_undetermined():
    w = torch.tensor([[0.0, 0.5], [0.25, 0.25]], dtype=F64)
    fits = Sh.monotone_fits(XOR, w)
    assert Sh.monotone_fit_bound(XOR, w) == pytest.approx(0.0, abs=1e-15)
    for f in fits:
        assert math.isnan(float(f[0, 0]))
        torch.testing.assert_close(f[1], XOR[1], rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------------------
# Independent Q-learning
# ---------------------------------------------------------------------------------------


def test_epsilon_greedy_policies():
    g = G.climbing_game()
    pis = Sh.epsilon_greedy_policies(g, (0, 2), 0.3)
    torch.testing.assert_close(pis[0], torch.tensor([[0.8, 0.1, 0.1]], dtype=F64), rtol=0, atol=1e-15)
    torch.testing.assert_close(pis[1], torch.tensor([[0.1, 0.1, 0.8]], dtype=F64), rtol=0, atol=1e-15)
    with pytest.raises(HarlMiniError, match="eps_greedy: expected a number in"):
        Sh.epsilon_greedy_policies(g, (0, 2), 1.5)
    with pytest.raises(HarlMiniError, match="joint_action: expected one action per agent"):
        Sh.epsilon_greedy_policies(g, (0,), 0.1)
    with pytest.raises(HarlMiniError, match=r"joint_action\[1\]: expected an action in 0..2"):
        Sh.epsilon_greedy_policies(g, (0, 3), 0.1)


def _rest_points_by_hand(payoff: np.ndarray, eps: float) -> list[tuple[int, int]]:
    """Two agents: a is a rest point iff a^i maximises the expected reward against the partner's ε-greedy policy."""
    n0, n1 = payoff.shape
    out = []
    for a in itertools.product(range(n0), range(n1)):
        p1 = np.full(n1, eps / n1)
        p1[a[1]] += 1 - eps
        p0 = np.full(n0, eps / n0)
        p0[a[0]] += 1 - eps
        q0, q1 = payoff @ p1, p0 @ payoff
        if q0[a[0]] >= q0.max() - 1e-9 and q1[a[1]] >= q1.max() - 1e-9:
            out.append(a)
    return out


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.1, 0.2, 0.5, 1.0])
def test_iql_fixed_points_match_a_hand_computation(eps):
    for g in (G.climbing_game(), G.penalty_game(), G.xor_game()):
        assert Sh.iql_fixed_points(g, eps) == _rest_points_by_hand(g.R[0].numpy(), eps)
    assert Sh.iql_fixed_points(G.climbing_game(), 0.2) == [(0, 0), (2, 2)]
    assert Sh.iql_fixed_points(G.climbing_game(), 0.05) == [(0, 0), (1, 1)]


def test_iql_tracks_the_expected_reward_under_uniform_exploration():
    """With ε_greedy = 1 both agents play uniformly, so q_i(b) → E_{a^{-i} uniform}[r(b, a^{-i})].

    η = 0.01, rewards in [0, 1]: the stationary std of a constant-step average is about
    sqrt(η/2)·0.5 ≈ 0.035 per entry; 0.15 is more than four of those.
    """
    payoff = torch.tensor([[0.0, 1.0, 0.2], [0.5, 0.9, 0.1]], dtype=F64)
    g = T.matrix_game(payoff)
    run = Sh.independent_q_learning(g, steps=30000, eta=0.01, eps_greedy=1.0, seed=3)
    torch.testing.assert_close(run.q_locals[0], payoff.mean(1), rtol=0, atol=0.15)
    torch.testing.assert_close(run.q_locals[1], payoff.mean(0), rtol=0, atol=0.15)
    assert run.greedy.shape == (30001, 2) and run.greedy.dtype == torch.long


def test_iql_is_seeded_and_settles_on_the_safe_joint_action_of_climbing():
    g = G.climbing_game()
    a = Sh.independent_q_learning(g, steps=3000, eta=0.05, eps_greedy=0.2, seed=5)
    b = Sh.independent_q_learning(g, steps=3000, eta=0.05, eps_greedy=0.2, seed=5)
    assert torch.equal(a.greedy, b.greedy) and all(torch.equal(x, y) for x, y in zip(a.q_locals, b.q_locals))
    ends = [tuple(Sh.independent_q_learning(g, 3000, 0.05, 0.2, seed=s).greedy[-1].tolist()) for s in range(8)]
    assert (0, 0) not in ends and ends.count((2, 2)) >= 6


def test_iql_solves_a_game_without_miscoordination():
    """A coordination game whose best joint action is also each agent's best reply to a uniform partner."""
    payoff = torch.tensor([[4.0, 1.0], [1.0, 0.0]], dtype=F64)
    ends = [tuple(Sh.independent_q_learning(T.matrix_game(payoff), 2000, 0.1, 0.2, seed=s).greedy[-1].tolist())
            for s in range(5)]
    assert ends == [(0, 0)] * 5


def test_iql_errors():
    with pytest.raises(HarlMiniError, match="one-state game"):
        Sh.independent_q_learning(T.random_game(2, (2, 2), seed=0))
    with pytest.raises(HarlMiniError, match=r"eta: expected a step size in \(0, 1\]"):
        Sh.independent_q_learning(G.xor_game(), eta=0.0)
    with pytest.raises(HarlMiniError, match="steps: expected an integer >= 0"):
        Sh.independent_q_learning(G.xor_game(), steps=-1)
    with pytest.raises(HarlMiniError, match="eps_greedy"):
        Sh.iql_fixed_points(G.xor_game(), -0.1)
