"""The exact layer of Chapter 10 (harl_mini.tabular.autoregressive): autoregressive joint policies.

Every check compares against an independent route through the oracle (the joint MDP, the
Chapter 7 multi-agent Q, the HAPPO surrogate) or against a closed form; tolerances are
float64 round-off on tables of at most a few hundred entries.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from harl_mini.errors import HarlMiniError
from harl_mini.tabular import (
    ar_advantage_terms,
    ar_conditional_q,
    ar_entropies,
    ar_factors,
    ar_joint_policy,
    ar_objective,
    ar_surrogate_terms,
    decomposition_terms,
    game_objective,
    joint_policy,
    make_game,
    marginal_policies,
    mat_error_bound,
    multi_agent_q,
    permutation_game,
    product_factors,
    random_game,
    random_policies,
    run_ar_pg,
    simultaneous_best_response,
    uniform_factors,
    zhong_example1_game,
)
from harl_mini.tabular import mdp as M

F64 = torch.float64


def random_factors(game, order, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    c = game.action_counts
    return [torch.softmax(scale * torch.randn((game.num_states, *(c[j] for j in order[:m]), c[i]), generator=g,
                                              dtype=F64), -1) for m, i in enumerate(order)]


def grid(t, N):
    """A term with axes [S, i_1..i_k] broadcast to [S, i_1..i_N]."""
    return t.reshape(*t.shape, *([1] * (N + 1 - t.dim())))


GAME = random_game(3, (2, 3, 2), gamma=0.8, seed=11)
ORDERS = list(itertools.permutations(range(3)))


@pytest.mark.parametrize("order", ORDERS)
def test_every_joint_distribution_is_autoregressive(order):
    torch.manual_seed(sum(order))
    joint = torch.distributions.Dirichlet(torch.ones(12, dtype=F64)).sample((3,)).reshape(3, 2, 3, 2)
    joint[1] = 0.0
    joint[1, 1, 2, 0] = 1.0  # a deterministic state: prefixes of probability 0 get uniform conditionals
    factors = ar_factors(GAME, joint, order)
    assert torch.allclose(ar_joint_policy(GAME, factors, order), joint, atol=1e-14)
    for f in factors:
        assert torch.allclose(f.sum(-1), torch.ones((), dtype=F64), atol=1e-14)


def test_a_product_policy_is_the_special_case_with_prefix_free_factors():
    pis = random_policies(GAME, seed=3)
    for order in ORDERS:
        factors = product_factors(GAME, pis, order)
        assert torch.allclose(ar_joint_policy(GAME, factors, order), joint_policy(pis), atol=1e-15)
        assert torch.allclose(ar_objective(GAME, factors, order), game_objective(GAME, pis), atol=1e-12)
    # but the uniform distribution over the permutations of 3 actions is no product policy:
    # its marginals are uniform, and the product of uniform marginals is not it
    game = permutation_game(3)
    joint = game.R / game.R.sum()
    prod = joint_policy(marginal_policies(game, joint))
    assert float((prod - joint).abs().max()) > 0.1


def test_entropies_chain_rule_and_permutation_values():
    for order in ORDERS[:3]:
        factors = random_factors(GAME, order, seed=5)
        H, cond = ar_entropies(GAME, factors, order)
        assert torch.allclose(H, cond.sum(1), atol=1e-12)
        assert bool((cond >= -1e-15).all())
    for n in (2, 3, 4, 5):
        game = permutation_game(n)
        factors = ar_factors(game, game.R / game.R.sum(), tuple(range(n)))
        H, cond = ar_entropies(game, factors, tuple(range(n)))
        assert abs(float(H[0]) - math.log(math.factorial(n))) < 1e-12
        assert torch.allclose(cond[0], torch.tensor([math.log(n - m) for m in range(n)], dtype=F64), atol=1e-12)
        assert abs(float(ar_objective(game, factors, tuple(range(n)))) - 1.0) < 1e-12
    # product policies: the conditional entropy is the marginal entropy
    pis = random_policies(GAME, seed=1)
    _, cond = ar_entropies(GAME, product_factors(GAME, pis, (2, 0, 1)), (2, 0, 1))
    want = torch.stack([-(pis[i] * pis[i].log()).sum(-1) for i in (2, 0, 1)], dim=1)
    assert torch.allclose(cond, want, atol=1e-12)


def test_conditional_q_generalises_the_multi_agent_q():
    pis = random_policies(GAME, seed=2)
    order = (1, 2, 0)
    qs = ar_conditional_q(GAME, product_factors(GAME, pis, order), order)
    for m in range(4):
        assert torch.allclose(qs[m], multi_agent_q(GAME, pis, order[:m]), atol=1e-12)
    terms = ar_advantage_terms(GAME, product_factors(GAME, pis, order), order)
    for t, want in zip(terms, decomposition_terms(GAME, pis, order)):
        assert torch.allclose(grid(t, 3).expand(want.shape), want, atol=1e-12)


@pytest.mark.parametrize("order", ORDERS[::2])
def test_decomposition_with_conditional_advantages(order):
    factors = random_factors(GAME, order, seed=7, scale=2.0)
    terms = ar_advantage_terms(GAME, factors, order)
    flat = ar_joint_policy(GAME, factors, order).reshape(3, -1)
    A = M.advantage(GAME.joint_mdp(), flat).reshape(3, 2, 3, 2).permute(0, *(1 + i for i in order))
    assert torch.allclose(sum(grid(t, 3) for t in terms), A, atol=1e-11)
    for f, t in zip(factors, terms):  # each term has mean zero under its own agent's conditional
        assert float((f * t).sum(-1).abs().max()) < 1e-11
    # the policy gradient splits the same way: grad J = sum_m E_rho,pi[grad log pi^m * A^m]
    logits = [f.log().requires_grad_(True) for f in factors]
    J = ar_objective(GAME, [torch.softmax(x, -1) for x in logits], order)
    grads = torch.autograd.grad(J, logits)
    rho = M.visitation(GAME.joint_mdp(), flat)
    prefix = torch.ones(3, dtype=F64)
    for m, (f, t, gr) in enumerate(zip(factors, terms, grads)):
        # d/dθ[s, prefix, a] of Σ ρ(s) π(prefix) Σ_a π(a|prefix) A^m
        #   = ρ(s) π(prefix) π(a|prefix) A^m(prefix, a)
        weight = rho.reshape(3, *([1] * m)) * prefix
        assert torch.allclose(gr, weight.unsqueeze(-1) * f * t, atol=1e-10)
        prefix = prefix.unsqueeze(-1) * f


def test_surrogate_with_m_is_exact_and_without_m_is_second_order():
    order = (2, 0, 1)
    old = random_factors(GAME, order, seed=1)
    new = random_factors(GAME, order, seed=2)
    flat, flat_new = (ar_joint_policy(GAME, f, order).reshape(3, -1) for f in (old, new))
    mdp = GAME.joint_mdp()
    L_minus_J = (M.visitation(mdp, flat)[:, None] * flat_new * M.advantage(mdp, flat)).sum()
    assert abs(float(sum(ar_surrogate_terms(GAME, old, new, order, with_m=True)) - L_minus_J)) < 1e-12
    # MAT's terms: a step of size t changes them by O(t), their gap to the exact ones is O(t^2)
    gaps = []
    for t in (1e-2, 5e-3):
        step = [(1 - t) * p + t * q for p, q in zip(old, new)]
        exact = float(sum(ar_surrogate_terms(GAME, old, step, order, True)))
        mat = float(sum(ar_surrogate_terms(GAME, old, step, order, False)))
        gaps.append(abs(exact - mat))
        assert abs(exact) > 50 * gaps[-1]
    assert 3.5 < gaps[0] / gaps[1] < 4.5  # halving the step quarters the gap


@pytest.mark.parametrize("name", ["climbing", "xor", "permutation-3", "penalty"])
def test_mat_error_bound_on_one_state_games(name):
    game = make_game(name)
    order = tuple(range(game.num_agents))
    worst = 0.0
    for seed in range(60):
        old, new = random_factors(game, order, 2 * seed, 2.0), random_factors(game, order, 2 * seed + 1, 2.0)
        dJ = float(ar_objective(game, new, order) - ar_objective(game, old, order))
        assert abs(float(sum(ar_surrogate_terms(game, old, new, order, True))) - dJ) < 1e-10
        mat = float(sum(ar_surrogate_terms(game, old, new, order, False)))
        bound = float(mat_error_bound(game, old, new, order))
        assert abs(dJ - mat) <= bound + 1e-12
        worst = max(worst, abs(dJ - mat) / max(bound, 1e-300))
    assert worst > 0.2  # the bound is not vacuous on these games
    # one agent moving alone: MAT's terms are exact and the bound is 0
    old = random_factors(game, order, 5)
    new = [f.clone() for f in old]
    new[-1] = random_factors(game, order, 6)[-1]
    assert float(mat_error_bound(game, old, new, order)) == 0.0
    assert abs(float(sum(ar_surrogate_terms(game, old, new, order, False)))
               - float(ar_objective(game, new, order) - ar_objective(game, old, order))) < 1e-12


def test_improving_every_prefix_is_monotone_but_tied_conditionals_are_not():
    for seed in range(5):
        game = random_game(3, (2, 3, 2), gamma=0.9, seed=100 + seed)
        order = (1, 0, 2)
        old = random_factors(game, order, seed)
        terms = ar_advantage_terms(game, old, order)
        for alpha in (0.3, 1.0):  # every conditional moves towards its greedy action, at every prefix
            new = [(1 - alpha) * f + alpha * torch.nn.functional.one_hot(t.argmax(-1), f.shape[-1]).to(F64)
                   for f, t in zip(old, terms)]
            v_old = M.value(game.joint_mdp(), ar_joint_policy(game, old, order).reshape(3, -1))
            v_new = M.value(game.joint_mdp(), ar_joint_policy(game, new, order).reshape(3, -1))
            assert bool((v_new >= v_old - 1e-10).all())
    # conditionals tied across prefixes (a product policy) maximising MAT's terms = the simultaneous
    # best response, which lowers J on HARL's Example 1 (Chapter 8)
    game = zhong_example1_game()
    pis = [torch.tensor([[0.7, 0.3]], dtype=F64), torch.tensor([[0.7, 0.3]], dtype=F64)]
    new = simultaneous_best_response(game, pis)
    order = (0, 1)
    mat = float(sum(ar_surrogate_terms(game, product_factors(game, pis, order), product_factors(game, new, order),
                                       order, False)))
    assert mat > 0 and float(game_objective(game, new)) < float(game_objective(game, pis))


def test_marginals_minimise_the_cloning_loss():
    joint = ar_joint_policy(GAME, random_factors(GAME, (0, 1, 2), seed=9), (0, 1, 2))
    marg = marginal_policies(GAME, joint)
    for i, p in enumerate(marg):
        logits = p.log().clone().requires_grad_(True)
        # cross-entropy of agent i's student against the teacher's joint, state by state
        loss = -(marg[i] * torch.log_softmax(logits, -1)).sum()
        g, = torch.autograd.grad(loss, logits)
        assert float(g.abs().max()) < 1e-12
    assert torch.allclose(marg[1], joint.sum((1, 3)), atol=1e-15)


def test_exact_pg_from_the_uniform_start():
    game = permutation_game(3)
    h = run_ar_pg(game, (0, 1, 2), lr=20.0, T=300, seed=None)
    assert h.J[-1] > 0.99 and bool((h.J[1:] >= h.J[:-1] - 1e-12).all())
    assert torch.allclose(h.conditional[-1], torch.tensor([math.log(3), math.log(2), 0.0], dtype=F64), atol=0.05)
    ind = run_ar_pg(game, (0, 1, 2), lr=20.0, T=5, seed=None, independent=True)
    assert torch.allclose(ind.J, torch.full_like(ind.J, 6 / 27), atol=1e-14)  # the uniform product is stationary
    assert abs(float(ar_objective(game, uniform_factors(game, (0, 1, 2)), (0, 1, 2))) - 6 / 27) < 1e-14


def test_bad_input_gives_one_clear_error():
    factors = random_factors(GAME, (0, 1, 2), 0)
    with pytest.raises(HarlMiniError, match="must have shape"):
        ar_joint_policy(GAME, factors, (1, 0, 2))
    with pytest.raises(HarlMiniError, match="permutation of all 3 agents"):
        ar_joint_policy(GAME, factors[:2], (0, 1))
    with pytest.raises(HarlMiniError, match="expected 3 tables"):
        ar_joint_policy(GAME, factors[:2], (0, 1, 2))
    with pytest.raises(HarlMiniError, match="sum to 1"):
        ar_joint_policy(GAME, [factors[0] * 2, *factors[1:]], (0, 1, 2))
    with pytest.raises(HarlMiniError, match="one-state games"):
        mat_error_bound(GAME, factors, factors, (0, 1, 2))
    with pytest.raises(HarlMiniError, match="non-negative integer"):
        run_ar_pg(GAME, (0, 1, 2), lr=1.0, T=-1)
    with pytest.raises(HarlMiniError, match="joint: expected shape"):
        ar_factors(GAME, torch.ones(3, 2, 2), (0, 1, 2))
