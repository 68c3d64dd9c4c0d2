"""Checks for Exercise 7.3: credit assignment from the decomposition, COMA's counterfactual
advantage and the order-averaged (Shapley) credit.

COMA's advantage (Chapter 7, eq. ``eq-coma-advantage``) is the last term of the decomposition
(eq. ``eq-ma-decomposition``) for an order that puts agent i last; the n of them do not add up to
A_π. Averaging agent i's decomposition term over all n! orders gives a credit φ^i(s, a) whose sum
over the agents is A_π(s, a) exactly, for every joint action: each order's terms add up to A_π,
so their average does too.

Oracles: ``harl_mini.tabular.game.coma_advantage``, and the decomposition terms (as
``harl_mini.tabular.decomposition_terms``, from ``harl_mini.tabular.all_multi_agent_q``) averaged over
every order, each moved back to the agents' index order; the unit tests compare the two routes.
Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| entrywise (float64 answers),
≤ 1e-5 + 1e-4·|expected| (float32 answers).
"""

from __future__ import annotations

import itertools
import math

import torch

from harl_mini.grading.core import CheckFailed, register
from harl_mini.tabular import (
    all_multi_agent_q,
    decomposition_terms,
    game_q_value,
    joint_policy,
    random_game,
    random_policies,
)
from harl_mini.tabular.game import coma_advantage

__all__ = ["check_coma_advantage", "check_order_averaged_credit"]

f64 = torch.float64


def _game(ctx, S: int, counts: tuple[int, ...]):
    seed = int(torch.randint(2**31 - 1, (), generator=ctx.gen))
    game = random_game(S, counts, gamma=0.8, seed=seed, reward_range=(-1.0, 1.0))
    pis = random_policies(game, seed=seed + 1)
    return game, pis, game_q_value(game, pis)


def _where(idx) -> str:
    return ", ".join([f"state s={idx[0]}"] + [f"a^{i}={a}" for i, a in enumerate(idx[1:])])


def _describe(game):
    return lambda idx: f"a random Markov game with S={game.num_states} states and action counts {game.action_counts}"


def _advantage(game, pis, Q) -> torch.Tensor:
    V = (Q * joint_policy(pis)).reshape(game.num_states, -1).sum(1)
    return Q - V.reshape(-1, *[1] * game.num_agents)


def _term_in_agent_axes(game, pis, order, m) -> torch.Tensor:
    """Term m of the decomposition along ``order``, on the grid [S, n_1..n_N] in agent-index order."""
    term = decomposition_terms(game, pis, order)[m]
    return term.permute(0, *(1 + order.index(j) for j in range(game.num_agents)))


COMA_CASES = {"two agents": (3, (3, 2)), "three agents, every agent": (3, (2, 3, 2)),
              "four agents, unequal action counts": (2, (3, 2, 4, 2))}


@register(function="coma_advantage", equation="eq-coma-advantage", parts={p: 1 for p in COMA_CASES})
def check_coma_advantage(student_fn, ctx) -> None:
    """``student_fn(Q, pis, i)`` returns A^i_COMA(s, a) on the grid [S, n_1, …, n_N].

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|A^i_COMA| (float64 answers), ≤ 1e-5 + 1e-4·|A^i_COMA|
    (float32 answers).
    """
    for part, (S, counts) in COMA_CASES.items():
        with ctx.part(part):
            game, pis, Q = _game(ctx, S, counts)
            N = game.num_agents
            agents = range(N) if part != "four agents, unequal action counts" else \
                [int(i) for i in torch.randperm(N, generator=ctx.gen)[:2]]
            A = _advantage(game, pis, Q)
            for i in agents:
                want = coma_advantage(game, pis, i)
                first = _term_in_agent_axes(game, pis, (i,) + tuple(j for j in range(N) if j != i), 0)
                base_u = sum(Q.narrow(i + 1, b, 1) for b in range(counts[i])) / counts[i]  # uniform baseline
                ctx.close(ctx.call(Q.clone(), [p.clone() for p in pis], i), want, f"A^{i}_COMA",
                          where=_where, describe=_describe(game),
                          hints=[(lambda A=A: A, "the baseline replaces agent i's action only; averaging every "
                                                 "agent's action gives V and the joint advantage A_π"),
                                 (lambda f=first: f, "keep the other agents' actions fixed: averaging them out gives "
                                                     "A^i(s, a^i), the FIRST term of the decomposition, not the last"),
                                 (lambda b=base_u: Q - b, "weight agent i's replacement action b by its policy "
                                                          "π^i(b | s), not uniformly"),
                                 (lambda w=want: -w, "Q_π(s, a) minus the baseline, not the baseline minus Q_π")])


def _term_from(Qs: dict, order: tuple[int, ...], m: int, N: int) -> torch.Tensor:
    """Term m along ``order``, Q^{i_1:m+1} − Q^{i_1:m} (eq. ``eq-ma-advantage``), on agent-index axes [S, n_1..n_N]."""
    big, small = Qs[order[: m + 1]], Qs[order[:m]]
    term = big - small.reshape(*small.shape, 1)
    present = list(order[: m + 1])
    term = term.permute(0, *(1 + present.index(j) for j in sorted(present)))
    return term.reshape(term.shape[0], *[term.shape[1 + sorted(present).index(j)] if j in present else 1
                                        for j in range(N)])


def _credit(game, pis) -> list[torch.Tensor]:
    """φ^i: agent i's decomposition term averaged over every order of the agents.

    The terms come from ``all_multi_agent_q`` (one linear solve): term m of an order is
    Q^{i_1:m+1} − Q^{i_1:m}, the summand of eq. ``eq-ma-decomposition`` (as ``decomposition_terms``).
    """
    N = game.num_agents
    Qs = all_multi_agent_q(game, pis)
    grid = (game.num_states, *game.action_counts)
    out = [torch.zeros(grid, dtype=f64) for _ in range(N)]
    orders = list(itertools.permutations(range(N)))
    for order in orders:
        for m, i in enumerate(order):
            out[i] = out[i] + _term_from(Qs, order, m, N) / len(orders)
    return out


def _subset_average(game, pis) -> list[torch.Tensor]:
    """The known mistake: every subset of the other agents weighted equally (not by |S|!(n−|S|−1)!/n!)."""
    N = game.num_agents
    Qs = all_multi_agent_q(game, pis)
    out = []
    for i in range(N):
        others = [j for j in range(N) if j != i]
        subsets = [c for k in range(N) for c in itertools.combinations(others, k)]
        total = sum(_term_from(Qs, tuple(c) + (i,), len(c), N) for c in subsets)
        out.append(total.expand(game.num_states, *game.action_counts) / len(subsets))
    return out


CREDIT_CASES = {"two agents: the mean of the two orders": (3, (3, 2)), "three agents": (3, (2, 3, 2)),
                "four agents, unequal action counts": (2, (3, 2, 4, 2))}


@register(function="order_averaged_credit", equation="eq-ma-decomposition", parts={p: 1 for p in CREDIT_CASES})
def check_order_averaged_credit(student_fn, ctx) -> None:
    """``student_fn(Q, pis)`` returns [φ^1, …, φ^N], each [S, n_1, …, n_N]: the decomposition terms averaged over orders.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|φ^i| entrywise (float64 answers), ≤ 1e-5 + 1e-4·|φ^i|
    (float32 answers).
    """
    for part, (S, counts) in CREDIT_CASES.items():
        with ctx.part(part):
            game, pis, Q = _game(ctx, S, counts)
            N = game.num_agents
            out = ctx.call(Q.clone(), [p.clone() for p in pis])
            if isinstance(out, torch.Tensor) and out.dim() == N + 2 and out.shape[0] == N:
                out = list(out.unbind(0))
            if not isinstance(out, (list, tuple)) or len(out) != N:
                got = type(out).__name__ + (f" of length {len(out)}" if isinstance(out, (list, tuple)) else "")
                raise CheckFailed(f"expected a list of {N} credits (one [S, n_1, ..., n_N] tensor per agent), got {got}")
            want = _credit(game, pis)
            coma = [coma_advantage(game, pis, i) for i in range(N)]
            A = _advantage(game, pis, Q)
            first = [_term_in_agent_axes(game, pis, (i,) + tuple(j for j in range(N) if j != i), 0) for i in range(N)]
            subsets = _subset_average(game, pis) if N > 2 else want
            for i, (got, w) in enumerate(zip(out, want)):
                ctx.close(got, w, f"φ^{i}", where=_where, describe=_describe(game),
                          hints=[(lambda c=coma[i]: c, "that is COMA's advantage, agent i's term when it comes LAST; "
                                                       "average over every position in the order"),
                                 (lambda f=first[i]: f, "that is agent i's term when it comes FIRST; average over "
                                                        "every order of the agents"),
                                 (lambda s=subsets[i]: s, "orders are not subsets: a set of k agents before i occurs "
                                                          f"in k!(n−k−1)! of the {math.factorial(N)} orders"),
                                 (lambda A=A: A / N, "the credits sum to A_π, but they are not equal shares of it")])
