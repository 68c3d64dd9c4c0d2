"""Checks for Exercise 7.2: simultaneous and sequential greedy updates from a joint Q, and the
per-agent improvement terms that make the sequential one safe.

From the joint action value Q_π(s, a) of the old joint policy and the old policies π^i, the
student computes the simultaneous greedy update (Chapter 7, eq. ``eq-simultaneous-update``), the
sequential one (eq. ``eq-sequential-update``), and for any new product policy π̄ the per-agent
terms L_m(s) = E_{a^{i_{1:m−1}} ∼ π̄^{i_{1:m−1}}, a^{i_m} ∼ π̄^{i_m}}[A^{i_m}_π(s, a^{i_{1:m−1}}, a^{i_m})]
of eq. ``eq-ma-improvement-terms``, which sum to E_{a ∼ π̄}[A_π(s, a)] and vanish for an agent
that keeps its old policy.

Oracles: ``harl_mini.tabular.simultaneous_best_response`` and ``sequential_best_response``
(ties to the lowest action; the drawn games have none), and ``harl_mini.tabular.decomposition_terms``
averaged under the new policies.
Tolerance: policies and terms within 1e-8 + 1e-6·|expected| (float64 answers) or
1e-5 + 1e-4·|expected| (float32 answers).
"""

from __future__ import annotations

import itertools

import torch

from harl_mini.grading.core import CheckFailed, register
from harl_mini.tabular import (
    decomposition_terms,
    game_q_value,
    joint_policy,
    random_game,
    random_policies,
    sequential_best_response,
    simultaneous_best_response,
    zhong_example1_game,
)

__all__ = ["check_simultaneous_greedy", "check_sequential_greedy", "check_improvement_terms"]

f64 = torch.float64


def _example1(x: float = 0.7):
    game = zhong_example1_game()
    pis = [torch.tensor([[x, 1 - x]], dtype=f64)] * 2
    return game, pis, game_q_value(game, pis)


def _game(ctx, S: int, counts: tuple[int, ...]):
    seed = int(torch.randint(2**31 - 1, (), generator=ctx.gen))
    game = random_game(S, counts, gamma=0.8, seed=seed, reward_range=(-1.0, 1.0))
    pis = random_policies(game, seed=seed + 1)
    return game, pis, game_q_value(game, pis)


def _random_order(ctx, N: int) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.randperm(N, generator=ctx.gen))


def _policies(out, counts: tuple[int, ...], what: str) -> list:
    if isinstance(out, torch.Tensor) and out.dim() >= 1 and out.shape[0] == len(counts) and len(set(counts)) == 1:
        out = list(out.unbind(0))
    if not isinstance(out, (list, tuple)) or len(out) != len(counts):
        got = type(out).__name__ + (f" of length {len(out)}" if isinstance(out, (list, tuple)) else "")
        raise CheckFailed(f"{what}: expected a list of {len(counts)} policies (one [S, n_i] table per agent), got {got}")
    return list(out)


def _where(idx) -> str:
    return f"state s={idx[0]}, action {idx[1]}"


def _describe(game, name: str | None = None):
    text = name or f"a random Markov game with S={game.num_states} states and action counts {game.action_counts}"
    return lambda idx: text


SIM_CASES = {"HARL's Example 1 from π^i(0) = 0.7": None, "random games, three agents": (3, (2, 3, 2)),
             "four agents, unequal action counts": (2, (3, 2, 4, 2))}


@register(function="simultaneous_greedy", equation="eq-simultaneous-update", parts={p: 1 for p in SIM_CASES})
def check_simultaneous_greedy(student_fn, ctx) -> None:
    """``student_fn(Q, pis)`` returns every agent's greedy policy against the *old* policies of the others.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| entrywise (float64 answers), ≤ 1e-5 + 1e-4·|expected|
    (float32 answers).
    """
    for part, shape in SIM_CASES.items():
        with ctx.part(part):
            runs = [_example1()] if shape is None else [_game(ctx, *shape) for _ in range(2)]
            for game, pis, Q in runs:
                name = "HARL's Example 1 with π^1(0) = π^2(0) = 0.7" if shape is None else None
                out = _policies(ctx.call(Q.clone(), [p.clone() for p in pis]), game.action_counts,
                                "the simultaneous update")
                want = simultaneous_best_response(game, pis)
                for i, (got, w) in enumerate(zip(out, want)):
                    ctx.close(got, w, f"agent {i}'s new policy", where=_where, describe=_describe(game, name),
                              hints=[(lambda w=w: 1 - w, "maximise, not minimise, the agent's multi-agent value")])


SEQ_CASES = {"HARL's Example 1, both orders": None, "random games, every order of three agents": (3, (2, 3, 2)),
             "four agents, random orders": (2, (3, 2, 4, 2))}


@register(function="sequential_greedy", equation="eq-sequential-update", parts={p: 1 for p in SEQ_CASES})
def check_sequential_greedy(student_fn, ctx) -> None:
    """``student_fn(Q, pis, order)`` returns the new policies of the sequential greedy update in ``order``.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| entrywise (float64 answers), ≤ 1e-5 + 1e-4·|expected|
    (float32 answers).
    """
    for part, shape in SEQ_CASES.items():
        with ctx.part(part):
            if shape is None:
                game, pis, Q = _example1()
                runs = [(game, pis, Q, order) for order in ((0, 1), (1, 0))]
            elif part.startswith("random games"):
                game, pis, Q = _game(ctx, *shape)
                runs = [(game, pis, Q, order) for order in itertools.permutations(range(3))]
            else:
                runs = []
                for _ in range(2):
                    game, pis, Q = _game(ctx, *shape)
                    runs += [(game, pis, Q, _random_order(ctx, 4)) for _ in range(2)]
            for game, pis, Q, order in runs:
                name = "HARL's Example 1 with π^1(0) = π^2(0) = 0.7" if shape is None else None
                out = _policies(ctx.call(Q.clone(), [p.clone() for p in pis], tuple(order)), game.action_counts,
                                f"the sequential update in order {tuple(order)}")
                want = sequential_best_response(game, pis, order)
                sim = simultaneous_best_response(game, pis)
                index_order = sequential_best_response(game, pis, tuple(range(game.num_agents)))
                for i, (got, w) in enumerate(zip(out, want)):
                    ctx.close(got, w, f"agent {i}'s new policy (order {tuple(order)})", where=_where,
                              describe=_describe(game, name),
                              hints=[(lambda i=i: sim[i], "that is the simultaneous update: average the agents before "
                                                          "i_m in the order under their NEW policies"),
                                     (lambda i=i: index_order[i], "update the agents in the given order, not in "
                                                                  "index order")])


def _terms(game, pis, new_pis, order) -> torch.Tensor:
    """L_m(s) for m = 1..N in order positions, [N, S]."""
    S = game.num_states
    rows = []
    for m, term in enumerate(decomposition_terms(game, pis, order)):
        w = torch.ones(S, *(game.action_counts[i] for i in order), dtype=f64)
        for k, i in enumerate(order):
            w = w * new_pis[i].reshape(S, *[game.action_counts[i] if kk == k else 1 for kk in range(len(order))])
        rows.append((term * w).reshape(S, -1).sum(1))
    return torch.stack(rows)


def _old_terms(game, pis, new_pis, order) -> torch.Tensor:
    """The known mistake: the agents before i_m averaged under their OLD policies."""
    mixed = []
    S = game.num_states
    for m, i in enumerate(order):
        use = [pis[j] for j in range(game.num_agents)]
        use[i] = new_pis[i]
        mixed.append(_terms(game, pis, use, order)[m])
    return torch.stack(mixed).reshape(len(order), S)


TERM_CASES = ["the terms sum to the expected joint advantage", "an agent that keeps its policy contributes 0",
              "the sequential greedy policies: every term ≥ 0"]


@register(function="improvement_terms", equation="eq-ma-improvement-terms", parts={p: 1 for p in TERM_CASES})
def check_improvement_terms(student_fn, ctx) -> None:
    """``student_fn(Q, pis, new_pis, order)`` returns L_m(s) as an [N, S] tensor, row m for agent order[m].

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|L_m(s)| (float64 answers), ≤ 1e-5 + 1e-4·|L_m(s)| (float32 answers).
    """
    for part in TERM_CASES:
        with ctx.part(part):
            runs = []
            for S, counts in [(3, (2, 3, 2)), (2, (3, 2, 4, 2))]:
                game, pis, Q = _game(ctx, S, counts)
                N = game.num_agents
                order = _random_order(ctx, N)
                seed = int(torch.randint(2**31 - 1, (), generator=ctx.gen))
                new = random_policies(game, seed=seed, concentration=0.5)
                if part == TERM_CASES[1]:
                    keep = set(_random_order(ctx, N)[: N // 2])
                    new = [pis[i] if i in keep else new[i] for i in range(N)]
                elif part == TERM_CASES[2]:
                    new = sequential_best_response(game, pis, order)
                runs.append((game, pis, Q, new, order))
            for game, pis, Q, new, order in runs:
                out = ctx.call(Q.clone(), [p.clone() for p in pis], [p.clone() for p in new], tuple(order))
                want = _terms(game, pis, new, order)
                by_agent = want[[order.index(i) for i in range(game.num_agents)]]  # row i: agent i's term
                V = (Q * joint_policy(pis)).reshape(game.num_states, -1).sum(1)
                q_values = V + want.cumsum(0)  # E[Q^{i_1:m}] instead of the advantage
                ctx.close(out, want, f"L_m(s) for order {tuple(order)}",
                          where=lambda idx, order=order: f"row m={idx[0]} (agent {order[idx[0]]}), state s={idx[1]}",
                          describe=_describe(game),
                          hints=[(lambda g=game, p=pis, n=new, o=order: _old_terms(g, p, n, o),
                                  "average the agents before i_m under their NEW policies π̄, as in the lemma"),
                                 (lambda w=want: torch.zeros_like(w), "average agent i_m's own action under its "
                                                                      "NEW policy π̄^{i_m}; under the old one every "
                                                                      "term is 0"),
                                 (lambda b=by_agent: b, "row m is the m-th agent of the ORDER, not agent m"),
                                 (lambda q=q_values: q, "term m is an advantage: subtract Q^{i_1:m−1}, the value "
                                                        "before agent i_m acts")])
