"""The exact multi-agent trust-region theory of HATRPO (harl_mini.tabular.hatrpo).

Kuba et al. (ICLR 2022) / Zhong et al. (JMLR 2024), theory reference §5d–§5e and §9 items
6–10, checked on seeded random cooperative Markov games (3–4 agents, unequal action counts,
several states) and on the named one-state games:

* Definition 2: L^{i_{1:m}}_π(π̄^{i_{1:m−1}}, π^{i_m}) = 0 and Σ_m L^{i_{1:m}} = L_π(π̄) − J(π);
* Proposition 2: the surrogate equals its importance-sampling form with the factor M;
* Lemma 2 (with Lemma 18): J(π̄) ≥ J(π) + Σ_m [L^{i_{1:m}} − C D_KL^max] on 600 draws;
* the per-agent step of Algorithm 1 is the exact maximiser (TRPO for one agent, greedy for
  C = 0, no better feasible point nearby or far away);
* Theorem 2: J is monotone along Algorithm 1 for random orders, for hundreds of iterations;
* Theorem 3 (illustration): on one-state games the sequential iterates reach / approach a
  Nash equilibrium;
* the simultaneous update, with the same C and the same maximiser, can lower J.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import harl_mini.tabular as T
from harl_mini.errors import HarlMiniError
from harl_mini.tabular import hatrpo as H
from harl_mini.tabular import trpo as TR
from harl_mini.tabular import updates as U
from harl_mini.tabular.game import MarkovGame

F64 = torch.float64

# (num_states, action counts, gamma): 3-4 agents, unequal action counts, several states
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
    return T.random_game(S, counts, gamma=gamma, seed=700 + k, branching=None if k % 2 else 2,
                         reward_range=(-1.0, 1.0))


def _policies(game: MarkovGame, seed: int, concentration: float = 1.0, floor: float = 1e-3):
    """Random strictly positive policies (Dirichlet rows mixed with a little uniform)."""
    return H.soften(T.random_policies(game, seed=seed, concentration=concentration), floor)


def _perturb(pis, g: torch.Generator, sigma: float):
    """π̄^i = softmax(log π^i + σ ξ): near π for small σ, far for large σ."""
    return [torch.softmax(p.log() + sigma * torch.randn(p.shape, generator=g, dtype=F64), dim=-1) for p in pis]


def _order(N: int, g: torch.Generator) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.randperm(N, generator=g))


def _flat(pis):
    return T.flat_joint_policy(pis)


# ---------------------------------------------------------------------------------------
# Definition 2: the multi-agent surrogate
# ---------------------------------------------------------------------------------------


def test_surrogate_matches_brute_force_sums_over_joint_actions():
    """ma_surrogate against explicit loops over joint actions on the joint Q (independent path)."""
    game = _game(0)  # S=2, counts (2,3,2)
    pis, new = _policies(game, 1), _policies(game, 2)
    Q = T.game_q_value(game, pis)
    rho = T.game_visitation(game, pis)
    counts = game.action_counts
    N = game.num_agents

    def q_marg(s, fixed: dict) -> float:  # Q^{fixed}(s, a^{fixed}) by enumeration
        total = 0.0
        for a in itertools.product(*(range(n) for n in counts)):
            if any(a[j] != v for j, v in fixed.items()):
                continue
            w = 1.0
            for j in range(N):
                if j not in fixed:
                    w *= float(pis[j][s, a[j]])
            total += w * float(Q[(s, *a)])
        return total

    for order in itertools.permutations(range(N)):
        for m in range(1, N + 1):
            before, i = order[: m - 1], order[m - 1]
            want = 0.0
            for s in range(game.num_states):
                for a_before in itertools.product(*(range(counts[j]) for j in before)):
                    w_before = 1.0
                    for j, aj in zip(before, a_before):
                        w_before *= float(new[j][s, aj])
                    base = q_marg(s, dict(zip(before, a_before)))
                    for ai in range(counts[i]):
                        adv = q_marg(s, {**dict(zip(before, a_before)), i: ai}) - base
                        want += float(rho[s]) * w_before * float(new[i][s, ai]) * adv
            got = float(H.ma_surrogate(game, pis, new, order, m))
            assert abs(got - want) <= 1e-12 * max(1.0, abs(want)), (order, m, got, want)


def test_surrogate_vanishes_when_the_updated_agent_keeps_its_policy():
    """Eq. (6): L^{i_{1:m}}_π(π̄^{i_{1:m−1}}, π^{i_m}) = 0 for every π̄, and ≠ 0 otherwise."""
    worst, smallest_moved = 0.0, float("inf")
    for k in range(12):
        game = _game(k)
        g = torch.Generator().manual_seed(k)
        pis = _policies(game, 10 + k)
        N = game.num_agents
        for _ in range(3):
            order = _order(N, g)
            bar = _perturb(pis, g, 2.0)
            for m in range(1, N + 1):
                kept = list(bar)
                kept[order[m - 1]] = pis[order[m - 1]]
                worst = max(worst, abs(float(H.ma_surrogate(game, pis, kept, order, m))))
                smallest_moved = min(smallest_moved, abs(float(H.ma_surrogate(game, pis, bar, order, m))))
    assert worst <= 1e-12
    assert smallest_moved > 1e-6  # moving the agent does change the surrogate


def test_surrogates_add_up_to_the_joint_surrogate_gain():
    """Lemma 1 at the surrogate level: Σ_m L^{i_{1:m}}_π(π̄^{i_{1:m−1}}, π̄^{i_m}) = L_π(π̄) − J(π)."""
    worst = 0.0
    for k in range(12):
        game = _game(k)
        g = torch.Generator().manual_seed(100 + k)
        pis = _policies(game, 20 + k)
        mdp = game.joint_mdp()
        for sigma in (0.1, 1.0, 3.0):
            bar = _perturb(pis, g, sigma)
            order = _order(game.num_agents, g)
            total = sum(float(H.ma_surrogate(game, pis, bar, order, m)) for m in range(1, game.num_agents + 1))
            want = float(TR.surrogate(mdp, _flat(pis), _flat(bar)) - T.game_objective(game, pis))
            worst = max(worst, abs(total - want) / max(1.0, abs(want)))
    assert worst <= 1e-12


def test_surrogate_is_differentiable_in_the_new_policy():
    game = _game(1)
    pis = _policies(game, 3)
    logits = [p.log().clone().requires_grad_(True) for p in _policies(game, 4)]
    new = [torch.softmax(t, -1) for t in logits]
    L = H.ma_surrogate(game, pis, new, (2, 0, 1, 3), 3)
    L.backward()
    assert logits[1].grad is not None and float(logits[1].grad.abs().sum()) > 0  # agent i_3 = 1
    assert float(logits[2].grad.abs().sum()) > 0  # i_1 = 2 conditions the surrogate
    assert logits[3].grad is None or float(logits[3].grad.abs().sum()) == 0.0  # i_4 unused


# ---------------------------------------------------------------------------------------
# Proposition 2: the estimator and the factor M
# ---------------------------------------------------------------------------------------


def test_proposition_2_estimator_equals_the_surrogate():
    worst, draws = 0.0, 0
    for k in range(18):
        game = _game(k)
        g = torch.Generator().manual_seed(200 + k)
        pis = _policies(game, 30 + k, concentration=0.5)
        N = game.num_agents
        for sigma in (0.05, 1.0, 4.0):
            new = _perturb(pis, g, sigma)
            order = _order(N, g)
            m = int(torch.randint(1, N + 1, (1,), generator=g))
            exact = float(H.ma_surrogate(game, pis, new, order, m))
            est = float(H.ma_surrogate_estimator(game, pis, new, order, m))
            worst = max(worst, abs(exact - est) / max(1.0, abs(exact)))
            draws += 1
    assert draws == 54
    assert worst <= 1e-12


def test_m_factor_recursion_and_values():
    """M^{i_1} ≡ 1, M^{i_{1:m+1}} = (π̄^{i_m}/π^{i_m}) M^{i_{1:m}}, checked entry by entry."""
    game = _game(4)  # counts (3,2,2,3)
    pis, new = _policies(game, 5), _policies(game, 6)
    order = (3, 1, 0, 2)
    assert torch.equal(H.m_factor(pis, new, order, 1), torch.ones(game.num_states, *game.action_counts, dtype=F64))
    for m in range(1, game.num_agents):
        i = order[m - 1]
        M, M_next = H.m_factor(pis, new, order, m), H.m_factor(pis, new, order, m + 1)
        for s, *a in itertools.product(range(game.num_states), *(range(n) for n in game.action_counts)):
            ratio = float(new[i][s, a[i]] / pis[i][s, a[i]])
            assert abs(float(M_next[(s, *a)]) - ratio * float(M[(s, *a)])) <= 1e-14 * max(1.0, float(M_next[(s, *a)]))


def test_estimator_needs_absolute_continuity():
    game = T.xor_game()
    pis = [torch.tensor([[1.0, 0.0]], dtype=F64), torch.tensor([[0.5, 0.5]], dtype=F64)]
    new = [torch.tensor([[0.25, 0.75]], dtype=F64), torch.tensor([[0.2, 0.8]], dtype=F64)]
    with pytest.raises(HarlMiniError, match="absolute continuity"):
        H.ma_surrogate_estimator(game, pis, new, (0, 1), 2)
    # the surrogate itself is defined: Q^1 ≡ 1/2, so L = P(a^1 ≠ a^2) − 1/2 = 0.35 − 0.5
    assert float(H.ma_surrogate(game, pis, new, (0, 1), 2)) == pytest.approx(-0.15, abs=1e-15)


# ---------------------------------------------------------------------------------------
# Lemma 2 (and Lemma 18)
# ---------------------------------------------------------------------------------------


def test_lemma_2_lower_bound_holds_on_600_draws(capsys):
    games = [_game(k) for k in range(12)]
    g = torch.Generator().manual_seed(2024)
    sigmas = (0.003, 0.03, 0.3, 1.0, 3.0, 10.0)
    min_slack, min_rel, count = float("inf"), float("inf"), 0
    for d in range(600):
        game = games[d % len(games)]
        pis = _policies(game, 5000 + d, concentration=[0.3, 1.0, 3.0][d % 3], floor=1e-4)
        bar = _perturb(pis, g, sigmas[(d // len(games)) % len(sigmas)])
        order = _order(game.num_agents, g)
        J_bar = float(T.game_objective(game, bar))
        bound = float(H.ma_lower_bound(game, pis, bar, order))
        slack = J_bar - bound
        assert slack >= -1e-10 * max(1.0, abs(J_bar)), (d, J_bar, bound)
        min_slack = min(min_slack, slack)
        min_rel = min(min_rel, slack / max(1.0, abs(J_bar)))
        count += 1
        # Lemma 18: per state, the joint KL is the sum of the agents' KLs; hence the max
        # over states of the joint KL is at most the sum of the agents' maxima
        per_agent = T.agent_kl(pis, bar)
        joint = T.joint_kl(pis, bar)
        assert float((joint - per_agent.sum(0)).abs().max()) <= 1e-12 * max(1.0, float(joint.abs().max()))
        assert float(joint.max()) <= float(per_agent.max(-1).values.sum()) + 1e-12
    with capsys.disabled():
        print(f"\n[Lemma 2] {count} draws, min slack J(π̄) − bound = {min_slack:.3e} (relative {min_rel:.3e})")
    assert count == 600


def test_lemma_2_is_tight_at_the_old_policy_and_uses_the_joint_constant():
    for k in range(6):
        game = _game(k)
        pis = _policies(game, 40 + k)
        order = tuple(reversed(range(game.num_agents)))
        J = float(T.game_objective(game, pis))
        assert abs(float(H.ma_lower_bound(game, pis, pis, order)) - J) <= 1e-12 * max(1.0, abs(J))
        C = float(H.ma_penalty_constant(game, pis))
        A = T.game_advantage(game, pis)
        assert C == pytest.approx(4 * game.gamma * float(A.abs().max()) / (1 - game.gamma) ** 2, rel=1e-14)
        assert C == pytest.approx(float(TR.penalty_constant(game.joint_mdp(), _flat(pis))), rel=1e-14)


def test_lemma_2_bound_is_the_same_for_every_order():
    """The terms L^{i_{1:m}} depend on the order, their sum does not (Lemma 1), and the KL
    penalties are order-free, so the bound of Lemma 2 is one number for all n! orders."""
    game = _game(3)  # counts (2,4,3)
    g = torch.Generator().manual_seed(9)
    pis = _policies(game, 9)
    bar = _perturb(pis, g, 0.5)
    J_bar = float(T.game_objective(game, bar))
    orders = list(itertools.permutations(range(3)))
    bounds = [float(H.ma_lower_bound(game, pis, bar, o)) for o in orders]
    assert all(b <= J_bar for b in bounds)
    assert max(bounds) - min(bounds) <= 1e-12 * max(1.0, abs(bounds[0]))
    first_terms = [float(H.ma_surrogate(game, pis, bar, o, 1)) for o in orders]
    assert max(first_terms) - min(first_terms) > 1e-3


# ---------------------------------------------------------------------------------------
# The exact per-agent step
# ---------------------------------------------------------------------------------------


def test_single_agent_sequential_update_is_trpo_minorize_maximize():
    worst = 0.0
    for k in range(10):
        S, A = 2 + k % 4, 2 + k % 3
        mdp = T.random_mdp(S, A, gamma=[0.5, 0.8, 0.9, 0.95, 0.99][k % 5], seed=300 + k)
        pi = T.random_policy(mdp, seed=k)
        game = MarkovGame(mdp.P, mdp.R, mdp.gamma, mdp.rho0)
        new = H.sequential_update(game, [pi], (0,))[0]
        ref = TR.minorize_maximize_step(mdp, pi)
        M_new = float(TR.trpo_lower_bound(mdp, pi, new))
        assert M_new >= float(ref.M_new) - 1e-12 * max(1.0, abs(float(ref.M_new)))
        worst = max(worst, float((new - ref.pi_new).abs().max()))
    assert worst <= 1e-9


def test_zero_penalty_reduces_to_best_responses():
    """C = 0 (γ = 0): the sequential / simultaneous steps are the greedy best responses of updates.py."""
    for k in range(6):
        S, counts, _ = SHAPES[k]
        game = T.random_game(S, counts, gamma=0.0, seed=900 + k)
        pis = _policies(game, k)
        g = torch.Generator().manual_seed(k)
        order = _order(game.num_agents, g)
        assert float(H.ma_penalty_constant(game, pis)) == 0.0
        seq = H.sequential_update(game, pis, order)
        for a, b in zip(seq, U.sequential_best_response(game, pis, order)):
            assert torch.equal(a, b)
        sim = H.simultaneous_update(game, pis)
        for a, b in zip(sim, U.simultaneous_best_response(game, pis)):
            assert torch.equal(a, b)


def _penalised(game, pis, new, order, m, q, C):
    cand = list(new)
    cand[order[m - 1]] = q
    return float(H.ma_surrogate(game, pis, cand, order, m)) - C * float(T.kl_max(pis[order[m - 1]], q))


@pytest.mark.parametrize("eta", [0.0, 0.02])
def test_each_agent_step_is_the_exact_maximiser(eta):
    """No feasible policy (random, near or far, η-soft when η > 0) beats the returned one."""
    worst = -float("inf")
    for k in range(4):
        game = _game(k)
        g = torch.Generator().manual_seed(400 + k)
        pis = H.soften(T.random_policies(game, seed=50 + k), max(eta, 1e-3))
        C = float(H.ma_penalty_constant(game, pis)) * [1.0, 0.01, 0.1, 3.0][k]
        order = _order(game.num_agents, g)
        new = H.sequential_update(game, pis, order, C=C, eta_soft=eta)
        for m in range(1, game.num_agents + 1):
            i = order[m - 1]
            q = new[i]
            assert float(q.min()) >= eta - 1e-15
            best = _penalised(game, pis, new, order, m, q, C)
            assert best >= -1e-12  # the old policy scores 0
            n = game.action_counts[i]
            for trial in range(60):
                if trial % 2:
                    cand = torch.softmax(q.log() + 10 ** (-1 - 6 * torch.rand(1, generator=g, dtype=F64))
                                         * torch.randn(q.shape, generator=g, dtype=F64), -1)
                else:
                    cand = torch.distributions.Dirichlet(torch.ones(n, dtype=F64)).sample((game.num_states,))
                cand = (1 - n * eta) * cand + eta if eta > 0 and bool((cand < eta).any()) else cand
                worst = max(worst, (_penalised(game, pis, new, order, m, cand, C) - best) / max(1.0, abs(best)))
    assert worst <= 1e-12


# ---------------------------------------------------------------------------------------
# Theorem 2: monotone improvement of Algorithm 1
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("k, eta, iterations", [(0, 0.0, 200), (1, 0.0, 200), (2, 0.0, 200), (3, 1e-3, 100)])
def test_theorem_2_sequential_updates_never_decrease_j(k, eta, iterations):
    S, counts, gamma = [(2, (2, 3, 2), 0.9), (2, (3, 2), 0.8), (3, (2, 2, 2), 0.95), (2, (2, 3), 0.5)][k]
    game = T.random_game(S, counts, gamma=gamma, seed=k)
    pis0 = H.soften(T.random_policies(game, seed=k + 10), eta)
    run = H.run_sequential(game, pis0, iterations, seed=k, eta_soft=eta)
    J, bounds = run.J, run.bounds
    assert J.shape == (iterations + 1,) and bounds.shape == (iterations,) and len(run.orders) == iterations
    assert float(torch.diff(J).min()) >= -1e-10
    # the chain of Theorem 2's proof: J(π_{k+1}) ≥ bound_k ≥ J(π_k)
    assert float((J[1:] - bounds).min()) >= -1e-10
    assert float((bounds - J[:-1]).min()) >= -1e-10
    assert float(J[-1] - J[0]) > 0.1 * max(1.0, abs(float(J[0])))  # it does improve
    assert float(J[-1]) <= float(T.game_optimal_value(game)) + 1e-10
    # a fresh random permutation each iteration, reproducible from the seed
    assert all(sorted(o) == list(range(game.num_agents)) for o in run.orders)
    assert len(set(run.orders)) > 1
    if eta > 0:
        assert min(float(p.min()) for p in run.policies[-1]) >= eta - 1e-15


def test_run_sequential_is_reproducible_and_seeded():
    game = T.random_game(2, (2, 3, 2), gamma=0.9, seed=3)
    pis = T.random_policies(game, seed=4)
    a = H.run_sequential(game, pis, 5, seed=11)
    b = H.run_sequential(game, pis, 5, seed=11)
    c = H.run_sequential(game, pis, 5, seed=12)
    assert a.orders == b.orders and torch.equal(a.J, b.J)
    assert a.orders != c.orders
    gen = torch.Generator().manual_seed(11)
    assert a.orders == [tuple(int(i) for i in torch.randperm(3, generator=gen)) for _ in range(5)]


# ---------------------------------------------------------------------------------------
# Theorem 3 (illustration): convergence to a Nash equilibrium on one-state games
# ---------------------------------------------------------------------------------------


def test_best_response_values_match_brute_force():
    # one-state γ = 0: max_{a^i} Q^i_π(a^i)
    for name in ("xor", "zhong-example1", "climbing"):
        game = T.make_game(name)
        pis = T.random_policies(game, seed=1)
        want = [float(T.multi_agent_q(game, pis, (i,)).max()) for i in range(2)]
        assert H.best_response_values(game, pis).tolist() == pytest.approx(want, abs=1e-12)
    # a multi-state game: the best of agent i's deterministic policies (enumerated)
    game = T.random_game(2, (2, 3), gamma=0.8, seed=5)
    pis = T.random_policies(game, seed=6)
    br = H.best_response_values(game, pis)
    for i in range(2):
        best = -float("inf")
        for acts in itertools.product(range(game.action_counts[i]), repeat=game.num_states):
            det = torch.zeros(game.num_states, game.action_counts[i], dtype=F64)
            det[range(game.num_states), list(acts)] = 1.0
            cand = list(pis)
            cand[i] = det
            best = max(best, float(T.game_objective(game, cand)))
        assert float(br[i]) == pytest.approx(best, abs=1e-12)
    # known equilibria of XOR
    xor = T.xor_game()
    pure = [torch.tensor([[1.0, 0.0]], dtype=F64), torch.tensor([[0.0, 1.0]], dtype=F64)]
    assert H.is_nash_equilibrium(xor, pure) and float(H.nash_gap(xor, pure)) == 0.0
    unif = T.uniform_policies(xor)
    assert float(H.nash_gap(xor, unif)) == pytest.approx(0.0, abs=1e-15)  # uniform XOR is a (mixed) NE
    bad = [torch.tensor([[1.0, 0.0]], dtype=F64), torch.tensor([[1.0, 0.0]], dtype=F64)]
    assert float(H.nash_gap(xor, bad)) == pytest.approx(1.0) and not H.is_nash_equilibrium(xor, bad)


@pytest.mark.parametrize("name", ["xor", "zhong-example1", "climbing"])
def test_theorem_3_one_state_games_reach_a_nash_equilibrium(name):
    """γ = 0 (the registered games): C = 0, each step is a sequential best response.

    Exact policies: a NE after a few iterations (gap 0 to round-off). η-soft policies
    (Assumption 1, η = 0.01): the limit is an η-soft best response; agent i then loses at
    most Σ_{a ≠ best} π^i(a)(max Q^i − Q^i(a)) ≤ (n_i − 1) η (r_max − r_min) to a deviation,
    which is the tolerance asserted.
    """
    game = T.make_game(name)
    eta = 0.01
    r_range = float(game.R.max() - game.R.min())
    tol_soft = max((n - 1) * eta * r_range for n in game.action_counts)
    for s in range(5):
        pis0 = T.random_policies(game, seed=s)
        run = H.run_sequential(game, pis0, 5, seed=s)
        assert float(torch.diff(run.J).min()) >= -1e-12
        assert float(H.nash_gap(game, run.policies[-1])) <= 1e-12
        assert H.is_nash_equilibrium(game, run.policies[-1], tol=1e-12)
        soft = H.run_sequential(game, H.soften(pis0, eta), 5, seed=s, eta_soft=eta)
        assert float(torch.diff(soft.J).min()) >= -1e-12
        gap = float(H.nash_gap(game, soft.policies[-1]))
        assert gap <= tol_soft + 1e-12
        assert min(float(p.min()) for p in soft.policies[-1]) >= eta - 1e-15


@pytest.mark.parametrize("name, gamma, iterations, tol", [
    ("xor", 0.5, 100, 1e-5),
    ("zhong-example1", 0.5, 100, 1e-5),
    ("climbing", 0.2, 250, 0.05),
])
def test_theorem_3_discounted_one_state_games_approach_a_nash_equilibrium(name, gamma, iterations, tol):
    """γ > 0: C > 0 and the steps are genuine trust-region steps; the gap shrinks towards 0.

    Theorem 3 gives no rate, so the tolerances are empirical, set well above what is
    observed and far below the payoff scale (r_max − r_min)/(1−γ): XOR and Example 1 (scale 2
    and 6) reach gaps ≤ 7e-7 after 100 iterations from the starts below (tolerance 1e-5); the
    climbing game (scale 41/(1−γ) ≈ 51) approaches its (1, 1) equilibrium slowly from some
    starts (gap ≈ 7e-4 after 250 iterations; tolerance 0.05 = 1e-3 of the scale). The gap
    must also have dropped at least tenfold since iteration 10.
    """
    base = T.make_game(name)
    game = T.matrix_game(base.R[0], gamma=gamma, name=f"{name}-discounted")
    for s in range(2):
        run = H.run_sequential(game, T.random_policies(game, seed=s), iterations, seed=s)
        assert float(torch.diff(run.J).min()) >= -1e-10
        assert float(run.C.min()) > 0
        early, final = float(H.nash_gap(game, run.policies[10])), float(H.nash_gap(game, run.policies[-1]))
        assert final <= tol
        assert final <= 0.1 * early or final <= 1e-12


# ---------------------------------------------------------------------------------------
# Simultaneous trust-region updates are not monotone
# ---------------------------------------------------------------------------------------

NON_MONOTONE_SEED = 24  # found by _first_non_monotone(range(25)); see there


def _non_monotone_instance(seed: int):
    """The search space: random multi-state games with small γ (a weak penalty) and random policies."""
    counts = [(2, 2), (3, 2), (2, 2, 2)][seed % 3]
    game = T.random_game(2 + seed % 2, counts, gamma=0.02, seed=seed, reward_range=(-1.0, 1.0))
    return game, T.random_policies(game, seed=1000 + seed)


def _first_non_monotone(seeds, iterations: int = 3):
    """First seed whose simultaneous run lowers J (by more than 1e-9) within ``iterations`` steps.

    This is the search that found NON_MONOTONE_SEED. With γ = 0.02 it finds 3 of the first
    100 seeds (24, 36, 62). With γ = 0.05 none of the first 100 seeds of this family lowers J
    within 3 steps, nor did any of 60 random multi-state games with γ ∈ {0.1, …, 0.9}: the
    joint-advantage C usually keeps even simultaneous steps small enough; it fails when
    the penalty is weak (small γ) and the cross-agent terms of Lemma 1 dominate.
    """
    for seed in seeds:
        game, pis = _non_monotone_instance(seed)
        if float(torch.diff(H.run_simultaneous(game, pis, iterations).J).min()) < -1e-9:
            return seed
    return None


def test_search_finds_the_hard_coded_non_monotone_seed():
    assert _first_non_monotone(range(NON_MONOTONE_SEED + 1)) == NON_MONOTONE_SEED


def test_simultaneous_update_can_lower_j_where_the_sequential_one_cannot(capsys):
    game, pis = _non_monotone_instance(NON_MONOTONE_SEED)
    sim = H.run_simultaneous(game, pis, 3)
    drops = torch.diff(sim.J)
    k = int(drops.argmin())
    assert float(drops[k]) < -0.1  # J falls by 0.121 at step 1
    assert float(sim.C[k]) > 0  # with the same joint-advantage C as Algorithm 1
    # Lemma 2 still holds for the simultaneous step (any π̄, any order), but its bound now
    # lies below J(π_k): nothing forces improvement
    assert float((sim.J[1:] - sim.bounds).min()) >= -1e-10
    assert float(sim.bounds[k]) < float(sim.J[k])
    # each agent's own penalised step was still an improvement of its own surrogate
    old = sim.policies[k]
    C = float(sim.C[k])
    for i in range(game.num_agents):
        gain = _penalised(game, old, sim.policies[k + 1], (i,), 1, sim.policies[k + 1][i], C)
        assert gain >= -1e-12
    # the sequential update from the same start is monotone, for several permutation seeds
    for seed in range(3):
        seq = H.run_sequential(game, pis, 20, seed=seed)
        assert float(torch.diff(seq.J).min()) >= -1e-10
        assert float(seq.J[1]) > float(seq.J[0])
    with capsys.disabled():
        print(f"\n[simultaneous] seed {NON_MONOTONE_SEED}: J {sim.J.tolist()} (drop {float(drops[k]):.4f} at step {k})")


def test_harl_example_1_simultaneous_versus_sequential():
    """HARL Example 1 from π^i(0) = 0.7: with γ = 0 (C = 0) simultaneous J 0.75 → −1, sequential → 2;
    discounted with γ = 0.05 (C ≈ 0.39 > 0) simultaneous still falls, 0.7895 → 0.5878."""
    start = [torch.tensor([[0.7, 0.3]], dtype=F64)] * 2
    game = T.zhong_example1_game()
    sim = H.run_simultaneous(game, start, 1)
    assert sim.J.tolist() == pytest.approx([0.75, -1.0], abs=1e-12)
    for seed in range(3):
        seq = H.run_sequential(game, start, 3, seed=seed)
        assert seq.J.tolist() == pytest.approx([0.75, 2.0, 2.0, 2.0], abs=1e-12)
    disc = T.matrix_game(game.R[0], gamma=0.05)
    sim = H.run_simultaneous(disc, start, 1)
    assert float(sim.C[0]) == pytest.approx(4 * 0.05 * 1.75 / 0.95**2, rel=1e-12)
    assert float(sim.J[0]) == pytest.approx(0.75 / 0.95, rel=1e-12)
    assert float(sim.J[1]) == pytest.approx(0.5878, abs=1e-4)  # a fall of 0.20
    for seed in range(3):
        seq = H.run_sequential(disc, start, 20, seed=seed)
        assert float(torch.diff(seq.J).min()) >= -1e-12
        assert float(seq.J[-1]) > float(seq.J[0])


# ---------------------------------------------------------------------------------------
# Small API facts and errors
# ---------------------------------------------------------------------------------------


def test_soften_and_eta_soft_updates():
    game = _game(0)
    pis = T.random_policies(game, seed=1)
    soft = H.soften(pis, 0.05)
    for p, q, n in zip(pis, soft, game.action_counts):
        assert torch.allclose(q, (1 - n * 0.05) * p + 0.05, atol=0, rtol=0)
        assert float(q.min()) >= 0.05 and torch.allclose(q.sum(-1), torch.ones(game.num_states, dtype=F64))
    new = H.sequential_update(game, soft, (0, 1, 2), eta_soft=0.05)
    assert min(float(p.min()) for p in new) >= 0.05 - 1e-15
    assert float(T.game_objective(game, new)) >= float(T.game_objective(game, soft)) - 1e-12


def test_errors():
    game = _game(0)
    pis = _policies(game, 1)
    with pytest.raises(HarlMiniError, match="m: expected"):
        H.ma_surrogate(game, pis, pis, (0, 1, 2), 0)
    with pytest.raises(HarlMiniError, match="m: expected"):
        H.ma_surrogate(game, pis, pis, (0, 1), 3)
    with pytest.raises(HarlMiniError, match="permutation"):
        H.sequential_update(game, pis, (0, 1))
    with pytest.raises(HarlMiniError, match="more than once"):
        H.ma_lower_bound(game, pis, pis, (0, 1, 1))
    with pytest.raises(HarlMiniError, match="eta-soft"):
        H.sequential_update(game, T.random_policies(game, seed=2, concentration=0.1), (0, 1, 2), eta_soft=0.01)
    with pytest.raises(HarlMiniError, match="eta_soft"):
        H.sequential_update(game, pis, (0, 1, 2), eta_soft=0.5)
    with pytest.raises(HarlMiniError, match="C: expected"):
        H.simultaneous_update(game, pis, C=-1.0)
    with pytest.raises(HarlMiniError, match="iterations"):
        H.run_simultaneous(game, pis, -1)
    with pytest.raises(HarlMiniError, match="tol"):
        H.is_nash_equilibrium(game, pis, tol=-1.0)
    with pytest.raises(HarlMiniError):
        H.m_factor(pis, pis[:2], (0, 1, 2), 2)
