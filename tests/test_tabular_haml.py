"""Heterogeneous-agent mirror learning, exactly (harl_mini.tabular.haml).

Zhong et al. (HARL, JMLR 2024) §3.3–3.4 and Appendices D–H, theory reference §5h, checked on
seeded random cooperative Markov games (3–4 agents, unequal action counts, several states) and
on the named one-state games:

* Appendix F: HAPPO's clipped objective = HAMO with the ReLU drift + E[A^{i_{1:m−1}}], for the
  multi-agent and the joint-advantage forms; the joint form is the expectation of the
  per-sample objective min(ξ M, clip(ξ) M); with the trivial drift, Σ_s ρ HAMO = L^{i_{1:m}};
* Definition 10: the HAPPO drift is ≥ 0, zero at the old policy and on the clip band (zero
  Gâteaux derivative);
* the exact maximisers of Template 2 against independent solvers (scipy's LP and SLSQP);
* Lemma 23 (every per-state HAMO of the update is ≥ 0), Lemma 13 and Theorem 14 (V monotone
  state by state, limit points are Nash equilibria) along whole runs;
* the simultaneous version of the same exact steps can lower J.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog, minimize

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError
from harl_mini.losses import ppo_clip_objective
from harl_mini.tabular import haml as HM
from harl_mini.tabular import hatrpo as H
from harl_mini.tabular.game import MarkovGame

F64 = torch.float64
CLIP = 0.2

SHAPES = [
    (2, (2, 3, 2), 0.9),
    (3, (3, 2, 2, 2), 0.8),
    (2, (2, 2, 3), 0.95),
    (3, (2, 4, 3), 0.5),
    (2, (3, 2, 2, 3), 0.9),
    (4, (2, 3, 2), 0.99),
]


def _game(k: int) -> MarkovGame:
    S, counts, gamma = SHAPES[k % len(SHAPES)]
    return T.random_game(S, counts, gamma=gamma, seed=600 + k, branching=None if k % 2 else 2,
                         reward_range=(-1.0, 1.0))


def _policies(game: MarkovGame, seed: int, floor: float = 1e-3):
    return H.soften(T.random_policies(game, seed=seed), floor)


def _perturb(pis, g: torch.Generator, sigma: float):
    return [torch.softmax(p.log() + sigma * torch.randn(p.shape, generator=g, dtype=F64), dim=-1) for p in pis]


def _order(n: int, g: torch.Generator) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.randperm(n, generator=g))


def _draws(count: int, seed: int):
    """(game, old policies, new policies, order, m) for random games, orders and positions."""
    g = torch.Generator().manual_seed(seed)
    for d in range(count):
        game = _game(d)
        pis = _policies(game, seed + d)
        new = _perturb(pis, g, (0.1, 1.0, 3.0)[d % 3])
        order = _order(game.num_agents, g)
        m = int(torch.randint(1, game.num_agents + 1, (1,), generator=g))
        yield game, pis, new, order, m


def _contract(adv: torch.Tensor, pis_new, agents) -> torch.Tensor:
    for j in agents:
        adv = torch.einsum("sa...,sa->s...", adv, pis_new[j])
    return adv


# ---------------------------------------------------------------------------------------
# Definitions 10 and 12, Appendix F
# ---------------------------------------------------------------------------------------


def test_happo_objective_is_hamo_plus_a_term_free_of_the_agent():
    for game, pis, new, order, m in _draws(18, 10):
        before = order[: m - 1]
        base = (_contract(T.multi_agent_advantage(game, pis, before), new, before) if before
                else torch.zeros(game.num_states, dtype=F64))
        for joint in (False, True):
            obj = HM.happo_objective(game, pis, new, order, m, CLIP, joint=joint)
            h = HM.hamo(game, pis, new, order, m, clip_eps=CLIP, joint=joint)
            assert torch.allclose(obj - h, base, atol=1e-12, rtol=0)


def test_joint_form_is_the_expectation_of_the_per_sample_objective():
    for game, pis, new, order, m in _draws(12, 20):
        S, N, i = game.num_states, game.num_agents, order[m - 1]
        A = T.game_advantage(game, pis)
        shape = [S] + [1] * N
        shape[i + 1] = game.action_counts[i]
        xi = (new[i] / pis[i]).reshape(shape).expand_as(A)
        M = H.m_factor(pis, new, order, m) * A
        want = (T.joint_policy(pis) * ppo_clip_objective(xi, M, CLIP)).sum(tuple(range(1, N + 1)))
        got = HM.happo_objective(game, pis, new, order, m, CLIP, joint=True)
        assert torch.allclose(got, want, atol=1e-12, rtol=0)


def test_multi_agent_form_matches_a_brute_force_sum():
    """HARL eq. 29 by hand: Σ_{a^{before}} π̄ Σ_a π min(ξ X, clip(ξ) X), X = A^{i_{1:m}}."""
    for game, pis, new, order, m in _draws(6, 30):
        before, i = order[: m - 1], order[m - 1]
        X = T.multi_agent_advantage(game, pis, before + (i,))  # [S, *before, i]
        grid = (game.num_states, *([1] * len(before)), -1)  # agent i_m's axis is the last one
        xi = (new[i] / pis[i]).reshape(grid)
        clipped = torch.minimum(xi * X, xi.clamp(1 - CLIP, 1 + CLIP) * X)
        want = _contract(clipped * pis[i].reshape(grid), new, before).sum(-1)
        assert torch.allclose(HM.happo_objective(game, pis, new, order, m, CLIP), want, atol=1e-12, rtol=0)


def test_trivial_drift_hamo_weighted_by_rho_is_the_surrogate():
    for game, pis, new, order, m in _draws(12, 40):
        rho = T.game_visitation(game, pis)
        got = float((rho * HM.hamo(game, pis, new, order, m)).sum())
        assert got == pytest.approx(float(H.ma_surrogate(game, pis, new, order, m)), abs=1e-12)
        # HAMO vanishes when agent i_m keeps its policy, with either drift
        kept = list(new)
        kept[order[m - 1]] = pis[order[m - 1]]
        for clip in (None, CLIP):
            assert float(HM.hamo(game, pis, kept, order, m, clip_eps=clip).abs().max()) < 1e-12


@pytest.mark.parametrize("joint", [False, True])
def test_happo_drift_is_a_drift_functional(joint):
    far_positive, draws = 0, 0
    for game, pis, new, order, m in _draws(18, 50):
        i = order[m - 1]

        def drift(t, eps=CLIP, sign=1.0):
            moved = list(new)
            moved[i] = pis[i] + sign * t * (new[i] - pis[i])
            return HM.happo_drift(game, pis, moved, order, m, eps, joint=joint)

        assert float(drift(0.0).abs().max()) == 0.0
        t_star = CLIP * float((pis[i] / (new[i] - pis[i]).abs()).min())
        for t in (1e-8, 0.5 * t_star, 0.99 * min(t_star, 1.0)):  # inside the band: exactly zero
            assert float(drift(t).max()) == 0.0 and float(drift(t, sign=-1.0).max()) == 0.0
        far = drift(1.0)
        assert float(far.min()) >= 0.0
        far_positive += int(float(far.max()) > 0.0)
        # a band of width 1e-9 is not a HADF: its difference quotient at t = 1e-6 is not small
        assert max(float(drift(1e-6, 1e-9, s).max()) for s in (1.0, -1.0)) / 1e-6 > 1e-4
        draws += 1
    assert far_positive >= 0.5 * draws  # the nearest draws (σ = 0.1) can stay in the band


def test_hamo_is_differentiable_in_the_candidate():
    game, pis, new, order, m = next(_draws(1, 60))
    i = order[m - 1]
    logits = new[i].log().clone().requires_grad_(True)
    cand = list(new)
    cand[i] = torch.softmax(logits, -1)
    HM.hamo(game, pis, cand, order, m, clip_eps=CLIP).sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


# ---------------------------------------------------------------------------------------
# The exact maximisers against independent solvers
# ---------------------------------------------------------------------------------------


def _lp_optimum(p, W, X, eps, p_min):
    """max_q Σ_k W_k Σ_a p_a min(q_a/p_a X_ka, κ_ka X_ka) over q ∈ simplex, q ≥ p_min, as an LP (HiGHS)."""
    K, n = X.shape
    nv = n + K * n
    c = np.zeros(nv)
    A_ub, b_ub = [], []
    for k in range(K):
        for a in range(n):
            j = n + k * n + a
            c[j] = -W[k] * p[a]
            row = np.zeros(nv)
            row[j], row[a] = 1.0, -X[k, a] / p[a]
            A_ub.append(row)
            b_ub.append(0.0)
            row = np.zeros(nv)
            row[j] = 1.0
            A_ub.append(row)
            b_ub.append((1 + eps if X[k, a] > 0 else 1 - eps) * X[k, a])
    A_eq = np.zeros((1, nv))
    A_eq[0, :n] = 1.0
    res = linprog(c, A_ub=np.array(A_ub), b_ub=b_ub, A_eq=A_eq, b_eq=[1.0],
                  bounds=[(p_min, 1.0)] * n + [(None, None)] * (K * n), method="highs")
    assert res.status == 0
    return -res.fun


@pytest.mark.parametrize("p_min", [0.0, 0.02])
def test_happo_step_is_the_exact_maximiser(p_min):
    for game, pis, new, order, m in _draws(12, 70):
        pis = H.soften(pis, p_min)
        before, i = order[: m - 1], order[m - 1]
        q = HM.agent_step(game, pis, new, order, m, clip_eps=CLIP, p_min=p_min)
        assert torch.allclose(q.sum(-1), torch.ones(game.num_states, dtype=F64), atol=1e-14)
        assert float(q.min()) >= p_min - 1e-15
        cand = list(new)
        cand[i] = q
        got = HM.happo_objective(game, pis, cand, order, m, CLIP)
        X = T.multi_agent_advantage(game, pis, before + (i,)).reshape(game.num_states, -1, game.action_counts[i])
        W = T.joint_policy([new[j] for j in before]).reshape(game.num_states, -1) if before \
            else torch.ones(game.num_states, 1, dtype=F64)
        for s in range(game.num_states):
            best = _lp_optimum(pis[i][s].numpy(), W[s].numpy(), X[s].numpy(), CLIP, p_min)
            assert float(got[s]) >= best - 1e-10


def test_kl_ball_step_is_the_exact_maximiser():
    for game, pis, new, order, m in _draws(8, 80):
        delta = (0.005, 0.05, 0.5)[m % 3]
        i = order[m - 1]
        d = T.game_visitation(game, pis) * (1 - game.gamma)
        q = HM.agent_step(game, pis, new, order, m, delta=delta)
        assert float(T.mean_kl(pis[i], q, d)) == pytest.approx(delta, rel=1e-9)  # the ball is used up
        cand = list(new)
        cand[i] = q
        value = float((d * HM.hamo(game, pis, cand, order, m)).sum())
        S, n = pis[i].shape
        p = pis[i].numpy()
        # HAMO is linear in the candidate: g[s, a] = HAMO of the pure action a at s
        g = np.zeros((S, n))
        for a in range(n):
            cand[i] = torch.nn.functional.one_hot(torch.full((S,), a), n).to(F64)
            g[:, a] = HM.hamo(game, pis, cand, order, m).numpy()
        w = d.numpy()[:, None] * g

        def objective(theta):
            qq = np.exp(theta.reshape(S, n) - theta.reshape(S, n).max(-1, keepdims=True))
            return -float((w * qq / qq.sum(-1, keepdims=True)).sum())

        def slack(theta):
            qq = torch.softmax(torch.as_tensor(theta.reshape(S, n)), -1).numpy()
            return delta - float((d.numpy() * (p * np.log(p / qq)).sum(-1)).sum())

        res = minimize(objective, np.log(p).ravel(), method="SLSQP", constraints=[{"type": "ineq", "fun": slack}],
                       options={"ftol": 1e-13, "maxiter": 400})
        assert slack(res.x) > -1e-7
        assert value >= -res.fun - 1e-7


def test_steps_stay_put_where_the_old_policy_is_already_optimal():
    # one-state game with a constant reward: every advantage is zero
    game = T.matrix_game(torch.ones(2, 3, dtype=F64), gamma=0.5)
    pis = [torch.tensor([[0.3, 0.7]], dtype=F64), torch.tensor([[0.2, 0.5, 0.3]], dtype=F64)]
    for kw in (dict(delta=0.1), dict(clip_eps=CLIP)):
        new = HM.haml_update(game, pis, (1, 0), **kw)
        assert all(torch.allclose(a, b, atol=1e-15) for a, b in zip(new, pis))


# ---------------------------------------------------------------------------------------
# Lemma 13, Lemma 23, Theorem 14
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [dict(delta=0.05), dict(clip_eps=CLIP), dict(clip_eps=CLIP, joint=True),
                                dict(clip_eps=CLIP, p_min=1e-3)])
def test_theorem_14_runs_are_monotone_state_by_state(kw):
    for k in range(4):
        game = _game(k)
        run = HM.run_haml(game, _policies(game, 90 + k), 12, seed=k, **kw)
        assert run.hamo.shape == (12, game.num_agents, game.num_states)
        assert float(run.hamo.min()) >= -1e-12  # Lemma 23
        assert float((run.V[1:] - run.V[:-1]).min()) >= -1e-10  # Lemma 13
        assert float(torch.diff(run.J).min()) >= -1e-10 and float(run.J[-1]) > float(run.J[0]) + 0.1
        assert float(run.J[-1]) <= float(T.game_optimal_value(game)) + 1e-10
        assert torch.allclose(run.J, torch.stack([T.game_objective(game, p) for p in run.policies]), atol=1e-12)
        if kw.get("p_min"):
            assert min(float(p.min()) for p in run.policies[-1]) >= kw["p_min"] - 1e-15


def test_lemma_13_identity_and_conclusion_on_unoptimised_updates():
    held = 0
    g = torch.Generator().manual_seed(7)
    for d in range(36):
        game = _game(d)
        pis = _policies(game, 200 + d)
        order, new, hamos, drifts = _order(game.num_agents, g), list(pis), [], []
        for m in range(1, game.num_agents + 1):
            before, i = order[: m - 1], order[m - 1]
            adv = _contract(T.multi_agent_advantage(game, pis, (i,), given=before), new, before)
            target = adv.argmax(-1) if d % 6 else adv.argmin(-1)
            t = 0.3 * float(torch.rand(1, generator=g)) ** 2
            new[i] = (1 - t) * pis[i] + t * torch.nn.functional.one_hot(target, pis[i].shape[1]).to(F64)
            hamos.append(HM.hamo(game, pis, new, order, m, clip_eps=CLIP))
            drifts.append(HM.happo_drift(game, pis, new, order, m, CLIP))
        V_old, V_new = T.game_value(game, pis), T.game_value(game, new)
        P_new = T.transition_matrix(game.joint_mdp(), T.flat_joint_policy(new))
        rhs = torch.linalg.solve(torch.eye(game.num_states, dtype=F64) - game.gamma * P_new, sum(hamos) + sum(drifts))
        assert torch.allclose(V_new - V_old, rhs, atol=1e-10, rtol=0)
        if all(float(h.min()) >= 0.0 for h in hamos):
            held += 1
            assert float((V_new - V_old).min()) >= -1e-10
    assert held >= 8


@pytest.mark.parametrize("name, gamma", [("xor", 0.5), ("zhong-example1", 0.5), ("climbing", 0.2),
                                         ("penalty", 0.2)])
@pytest.mark.parametrize("kw", [dict(delta=0.05), dict(clip_eps=CLIP)])
def test_theorem_14_one_state_games_reach_a_nash_equilibrium(name, gamma, kw):
    game = T.matrix_game(T.make_game(name).R[0], gamma=gamma)
    run = HM.run_haml(game, _policies(game, 0), 25, seed=0, **kw)
    assert float(H.nash_gap(game, run.policies[0])) > 0.1
    assert float(H.nash_gap(game, run.policies[-1])) <= 1e-9
    assert float((run.V[-1] - run.V[-2]).abs().max()) <= 1e-9  # the values have converged


def test_p_min_runs_end_near_a_soft_equilibrium():
    game = T.matrix_game(T.make_game("climbing").R[0], gamma=0.2)
    p_min = 1e-3
    run = HM.run_haml(game, _policies(game, 1, floor=p_min), 25, seed=1, clip_eps=CLIP, p_min=p_min)
    tol = (max(game.action_counts) - 1) * p_min * float(game.R.max() - game.R.min()) / (1 - game.gamma)
    assert float(H.nash_gap(game, run.policies[-1])) <= tol


def test_simultaneous_exact_steps_can_lower_j():
    example1 = T.matrix_game(T.zhong_example1_game().R[0], gamma=0.05)
    start = [torch.tensor([[0.7, 0.3]], dtype=F64)] * 2
    J0 = float(T.game_objective(example1, start))
    for kw in (dict(delta=0.2), dict(clip_eps=0.5)):
        simultaneous = [HM.agent_step(example1, start, start, (i,), 1, **kw) for i in range(2)]
        assert float(T.game_objective(example1, simultaneous)) < J0 - 0.1
        for order in ((0, 1), (1, 0)):
            assert float(T.game_objective(example1, HM.haml_update(example1, start, order, **kw))) > J0 + 0.1


def test_run_haml_is_reproducible_and_seeded():
    game = _game(1)
    pis = _policies(game, 3)
    a = HM.run_haml(game, pis, 4, seed=5, clip_eps=CLIP)
    b = HM.run_haml(game, pis, 4, seed=5, clip_eps=CLIP)
    assert a.orders == b.orders and torch.equal(a.J, b.J)
    c = HM.run_haml(game, pis, 4, seed=6, clip_eps=CLIP)
    assert c.orders != a.orders
    empty = HM.run_haml(game, pis, 0, delta=0.1)
    assert empty.J.shape == (1,) and empty.hamo.shape == (0, game.num_agents, game.num_states)


def test_errors():
    game = _game(0)
    pis = _policies(game, 1)
    order = (0, 1, 2)
    with pytest.raises(HarlMiniError, match="choose one HAML instance"):
        HM.haml_update(game, pis, order)
    with pytest.raises(HarlMiniError, match="choose one HAML instance"):
        HM.haml_update(game, pis, order, delta=0.1, clip_eps=0.2)
    with pytest.raises(HarlMiniError, match="delta"):
        HM.haml_update(game, pis, order, delta=-1.0)
    with pytest.raises(HarlMiniError, match="clip_eps"):
        HM.haml_update(game, pis, order, clip_eps=1.5)
    with pytest.raises(HarlMiniError, match="clip_eps"):
        HM.happo_drift(game, pis, pis, order, 1, 0.0)
    with pytest.raises(HarlMiniError, match="p_min"):
        HM.haml_update(game, pis, order, delta=0.1, p_min=0.01)
    with pytest.raises(HarlMiniError, match="p_min-soft"):
        HM.haml_update(game, pis, order, clip_eps=0.2, p_min=0.1)
    with pytest.raises(HarlMiniError, match="p_min"):
        HM.haml_update(game, pis, order, clip_eps=0.2, p_min=0.6)
    hard = [torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=F64)] + pis[1:]
    with pytest.raises(HarlMiniError, match="strictly positive"):
        HM.haml_update(game, hard, order, delta=0.1)
    with pytest.raises(HarlMiniError, match="permutation"):
        HM.haml_update(game, pis, (0, 1), clip_eps=0.2)
    with pytest.raises(HarlMiniError, match="m:"):
        HM.hamo(game, pis, pis, order, 4)
    with pytest.raises(HarlMiniError, match="iterations"):
        HM.run_haml(game, pis, -1, clip_eps=0.2)
