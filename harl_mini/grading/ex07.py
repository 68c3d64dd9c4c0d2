"""Checks for Exercise 7: multi-agent action values from a joint Q, and the terms of the
multi-agent advantage decomposition.

References: ``harl_mini.tabular.multi_agent_q`` (Chapter 7, eq. ``eq-ma-q``) and
``harl_mini.tabular.decomposition_terms`` (eq. ``eq-ma-decomposition``).
"""

from __future__ import annotations

import itertools

import torch

from harl_mini.grading.core import CheckFailed, call_student, expect_close, expect_tensor, register
from harl_mini.tabular import decomposition_terms, game_q_value, multi_agent_q, random_game, random_policies

__all__ = ["check_marginal_q", "check_advantage_terms"]


def _cases():
    """Random Markov games with unequal action counts, and their joint Q under random policies."""
    for seed, (S, counts) in enumerate([(1, (2, 2)), (3, (2, 3, 2)), (2, (3, 2, 4, 2))]):
        game = random_game(S, counts, gamma=0.8, seed=40 + seed)
        pis = random_policies(game, seed=seed)
        yield game, pis, game_q_value(game, pis)


def _orders(num_agents: int):
    """Every ordered subset for up to 3 agents; a fixed sample of them for 4."""
    subsets = [p for m in range(num_agents + 1) for p in itertools.permutations(range(num_agents), m)]
    return subsets if num_agents <= 3 else subsets[::5]


@register("ex07", equation="eq-ma-q")
def check_marginal_q(student_fn) -> None:
    """``student_fn(Q, pis, agents)`` returns Q^{i_{1:m}}(s, a^{i_1}, …, a^{i_m}), axes in the given order."""
    for game, pis, Q in _cases():
        for agents in _orders(game.num_agents):
            shape = (game.num_states, *(game.action_counts[i] for i in agents))
            what = f"Q^{{{','.join(map(str, agents))}}} for action counts {game.action_counts}"
            out = expect_tensor(call_student(student_fn, Q, [p.clone() for p in pis], tuple(agents)), shape, what)
            expect_close(out, multi_agent_q(game, pis, agents), what)


@register("ex07", equation="eq-ma-decomposition")
def check_advantage_terms(student_fn) -> None:
    """``student_fn(Q, pis, order)`` returns the m terms A^{i_j}(s, a^{i_{1:j−1}}, a^{i_j}) on the common grid."""
    for game, pis, Q in _cases():
        for order in _orders(game.num_agents):
            if not order:
                continue
            shape = (game.num_states, *(game.action_counts[i] for i in order))
            terms = call_student(student_fn, Q, [p.clone() for p in pis], tuple(order))
            if not isinstance(terms, (list, tuple)) or len(terms) != len(order):
                raise CheckFailed(f"for order {tuple(order)} expected a list of {len(order)} tensors, got "
                                  f"{type(terms).__name__}" + (f" of length {len(terms)}" if hasattr(terms, '__len__') else ""))
            for j, (term, want) in enumerate(zip(terms, decomposition_terms(game, pis, order))):
                what = f"term {j} (agent {order[j]} given {tuple(order[:j])}) for order {tuple(order)}"
                expect_close(expect_tensor(term, shape, what), want, what)
