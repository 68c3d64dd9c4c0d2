"""Checks for Exercise 7.1: multi-agent action values from a joint Q, and the terms of the
multi-agent advantage decomposition.

Oracles: ``harl_mini.tabular.multi_agent_q`` (Chapter 7, eq. ``eq-ma-q``) and
``harl_mini.tabular.decomposition_terms`` (eq. ``eq-ma-decomposition``).
Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| entrywise (float64), 1e-5 + 1e-4·|expected|
(float32). A term may come in any shape that broadcasts to the common grid (``[S, 2, 1]``
for ``[S, 2, 2]``): term j does not depend on the actions of the agents after i_j.
"""

from __future__ import annotations

import itertools

import torch

from harl_mini.grading.core import CheckFailed, register
from harl_mini.tabular import decomposition_terms, game_q_value, multi_agent_q, random_game, random_policies

__all__ = ["check_marginal_q", "check_advantage_terms"]


def _game(ctx, S: int, counts: tuple[int, ...]):
    """A random Markov game (seed from the grader's seed), random policies and the joint Q."""
    seed = int(torch.randint(2**31 - 1, (), generator=ctx.gen))
    game = random_game(S, counts, gamma=0.8, seed=seed)
    pis = random_policies(game, seed=seed + 1)
    return game, pis, game_q_value(game, pis)


def _orders(num_agents: int, ctx, sample: int | None = None):
    """Every ordered subset of the agents, or a random sample of them."""
    subsets = [p for m in range(num_agents + 1) for p in itertools.permutations(range(num_agents), m)]
    if sample is None or sample >= len(subsets):
        return subsets
    picks = torch.randperm(len(subsets), generator=ctx.gen)[:sample].tolist()
    return [subsets[i] for i in sorted(picks)]


def _where(agents):
    return lambda idx: ", ".join([f"state s={idx[0]}"] + [f"a^{i}={a}" for i, a in zip(agents, idx[1:])])


def _marginal_by_index(Q, pis, agents):
    """Q^{agents} with the axes in index order (a known mistake)."""
    out = multi_agent_q_from(Q, pis, tuple(sorted(agents)))
    return out.reshape(Q.shape[0], *(Q.shape[1 + i] for i in agents))


def multi_agent_q_from(Q: torch.Tensor, pis, agents) -> torch.Tensor:
    """Q^{agents} from a joint Q table (axes in the order of ``agents``), by one einsum."""
    N = Q.dim() - 1
    letters = "bcdefghijk"[:N]
    operands, specs = [Q], ["z" + letters]
    for i in range(N):
        if i not in agents:
            operands.append(pis[i])
            specs.append("z" + letters[i])
    return torch.einsum(",".join(specs) + "->z" + "".join(letters[i] for i in agents), *operands)


MARGINAL_PARTS = {"the empty subset is V": [(3, (2, 3))], "one or two agents": [(1, (2, 2)), (2, (3, 2))],
                  "three agents, unequal action counts": [(3, (2, 3, 2))], "four agents": [(2, (3, 2, 4, 2))]}


@register(function="marginal_q", equation="eq-ma-q", parts={part: 1 for part in MARGINAL_PARTS})
def check_marginal_q(student_fn, ctx) -> None:
    """``student_fn(Q, pis, agents)`` returns Q^{i_{1:m}}(s, a^{i_1}, …, a^{i_m}), axes in the given order.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|Q^{i_{1:m}}| (float64 answers), ≤ 1e-5 + 1e-4·|Q^{i_{1:m}}| (float32 answers).
    """
    for part, shapes in MARGINAL_PARTS.items():
        with ctx.part(part):
            for S, counts in shapes:
                game, pis, Q = _game(ctx, S, counts)
                N = len(counts)
                if part == "the empty subset is V":
                    orders = [()]
                elif part == "four agents":
                    orders = _orders(N, ctx, sample=12)
                else:
                    orders = _orders(N, ctx)
                for agents in orders:
                    what = f"Q^({','.join(map(str, agents))}) for action counts {counts} and S={S}"
                    out = ctx.call(Q, [p.clone() for p in pis], tuple(agents))
                    others = tuple(i for i in range(N) if i not in agents)
                    hints = [(lambda: multi_agent_q_from(Q, [torch.full_like(p, 1 / p.shape[-1]) for p in pis], agents),
                              "average the other agents' actions under their policies pis[i], not uniformly")]
                    if len(agents) > 1 and list(agents) != sorted(agents):
                        hints.append((lambda: _marginal_by_index(Q, pis, agents),
                                      f"the action axes must follow the order of `agents` {tuple(agents)}, "
                                      "not the agents' index order"))
                    if others and len(others) == len(agents):
                        hints.append((lambda: multi_agent_q_from(Q, pis, others),
                                      "sum out the agents NOT in `agents`, weighting by their policies"))
                    ctx.close(out, multi_agent_q(game, pis, agents), what, where=_where(agents),
                              describe=lambda idx, agents=agents: f"a random game with {N} agents, agents={tuple(agents)}",
                              hints=hints)


TERM_PARTS = {"one agent": [(2, (3, 2))], "every order of three agents": [(3, (2, 3, 2))],
              "four agents, unequal action counts": [(2, (3, 2, 4, 2))]}


@register(function="advantage_terms", equation="eq-ma-decomposition", parts={part: 1 for part in TERM_PARTS})
def check_advantage_terms(student_fn, ctx) -> None:
    """``student_fn(Q, pis, order)`` returns the m terms A^{i_j}(s, a^{i_{1:j−1}}, a^{i_j}) on the common grid.

    Each term may come in any shape that broadcasts to the grid [S, n_{i_1}, …, n_{i_m}].

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|A| (float64 answers), ≤ 1e-5 + 1e-4·|A| (float32 answers).
    """
    for part, shapes in TERM_PARTS.items():
        with ctx.part(part):
            for S, counts in shapes:
                game, pis, Q = _game(ctx, S, counts)
                N = len(counts)
                if part == "one agent":
                    orders = [(i,) for i in range(N)]
                elif part == "four agents, unequal action counts":
                    orders = [o for o in _orders(N, ctx, sample=14) if o]
                else:
                    orders = [o for o in _orders(N, ctx) if len(o) >= 2]
                for order in orders:
                    terms = ctx.call(Q, [p.clone() for p in pis], tuple(order))
                    wanted = decomposition_terms(game, pis, order)
                    if isinstance(terms, torch.Tensor) and terms.dim() >= 1 and terms.shape[0] == len(order):
                        terms = list(terms.unbind(0))
                    if not isinstance(terms, (list, tuple)) or len(terms) != len(order):
                        got = type(terms).__name__ + (f" of length {len(terms)}" if hasattr(terms, "__len__") else "")
                        raise CheckFailed(f"for order {tuple(order)} expected a list of {len(order)} terms, got {got}")
                    V = multi_agent_q(game, pis, ())
                    for j, (term, want) in enumerate(zip(terms, wanted)):
                        agent, before = order[j], tuple(order[:j])
                        view = [S] + [counts[k] if k == agent else 1 for k in order]
                        alone = (multi_agent_q(game, pis, (agent,)) - V[:, None]).reshape(view).expand(want.shape)
                        hints = [(torch.zeros_like(want), "term j is Q^(i_1..i_j) − Q^(i_1..i_(j−1)): condition on "
                                                          "the agents before i_j only, not on i_j itself")]
                        if j > 0:
                            hints.append((alone, "term j conditions on the actions of the agents before i_j in the "
                                                 "order: A^(i_j)(s, a^(i_1..i_(j−1)), a^(i_j)), not A^(i_j)(s, a^(i_j))"))
                        ctx.close(term, want, f"term {j} (agent {agent} given agents {before}) for order {tuple(order)}",
                                  where=_where(order),
                                  describe=lambda idx, order=order: (f"a random game with S={S} states and action "
                                                                     f"counts {counts}, order={tuple(order)}"),
                                  hints=hints)
