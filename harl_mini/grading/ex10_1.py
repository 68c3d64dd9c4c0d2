"""Checks for Exercise 10.1: conditional log-probabilities and conditional entropies of an
autoregressive joint policy.

Oracles: ``harl_mini.tabular.ar_log_probs`` (Chapter 10, eq. ``eq-mat-parallel``) and
``harl_mini.tabular.ar_entropies`` (eq. ``eq-ar-entropy``). Policies are tables
``factors[m]`` of shape [S, n_0, …, n_m] (agent m's conditional given the state and the
actions of agents 0..m−1; execution order 0, 1, …, N−1).
Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| entrywise (float64), 1e-5 + 1e-4·|expected|
(float32).
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import register
from harl_mini.tabular import ar_entropies, ar_log_probs, random_game

__all__ = ["check_conditional_log_probs", "check_conditional_entropies"]


def _policy(ctx, S: int, counts: tuple[int, ...], peaked: bool = False):
    """A random autoregressive policy (softmax of Gaussian logits for every state and prefix)."""
    scale = 3.0 if peaked else 1.0
    return [torch.softmax(scale * torch.randn((S, *counts[: m + 1]), generator=ctx.gen, dtype=torch.float64), -1)
            for m in range(len(counts))]


def _game(S: int, counts: tuple[int, ...]):
    """A game of the right shape for the oracle (only its state and action counts matter)."""
    return random_game(S, counts, gamma=0.5, seed=0)


def _without_prefix(factors, states, actions):
    """A known mistake: every agent's row at the prefix (0, …, 0)."""
    return torch.stack([f[(states, *([torch.zeros_like(states)] * m), actions[:, m])].log()
                        for m, f in enumerate(factors)], dim=1)


#: part -> (S, action counts, batch size)
LOGP_PARTS = {"one agent is a plain policy": (2, (3,), 20), "two agents": (1, (2, 3), 30),
              "three agents, several states": (3, (2, 3, 2), 40), "four agents": (2, (3, 2, 2, 3), 40)}


@register(function="conditional_log_probs", equation="eq-mat-parallel", parts={p: 1 for p in LOGP_PARTS})
def check_conditional_log_probs(student_fn, ctx) -> None:
    """``student_fn(factors, states, actions)`` returns [B, N]: log π^m(a^m | s, a^{0:m−1}) for every sample.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|log π| (float64 answers), ≤ 1e-5 + 1e-4·|log π|
    (float32 answers).
    """
    for part, (S, counts, B) in LOGP_PARTS.items():
        with ctx.part(part):
            factors = _policy(ctx, S, counts)
            N = len(counts)
            states = torch.randint(S, (B,), generator=ctx.gen)
            actions = torch.stack([torch.randint(n, (B,), generator=ctx.gen) for n in counts], dim=1)
            out = ctx.call([f.clone() for f in factors], states.clone(), actions.clone())
            want = ar_log_probs(_game(S, counts), factors, tuple(range(N)), states, actions)
            hints = []
            if N > 1:
                hints.append((lambda: _without_prefix(factors, states, actions),
                              "agent m's row is factors[m][s, a^0, ..., a^(m-1)]: index it with the sample's own "
                              "earlier actions, not a fixed prefix"))
                hints.append((lambda: want.cumsum(1),
                              "return each agent's own conditional log-probability, not the running sum "
                              "log π(a^0, ..., a^m | s)"))
            ctx.close(out, want, f"conditional log-probabilities for action counts {counts}",
                      where=lambda idx: f"sample {idx[0]}, agent {idx[1]}",
                      describe=lambda idx: (f"state {int(states[idx[0]])}, joint action "
                                            f"{tuple(int(a) for a in actions[idx[0]])}"),
                      hints=hints, broadcast=False)


#: part -> (S, action counts, peaked policy)
ENT_PARTS = {"one agent": (2, (4,), False), "two agents": (1, (3, 3), False),
             "three agents, unequal counts": (2, (2, 3, 2), False), "peaked conditionals": (2, (3, 2, 3), True)}


def _uniform_over_prefixes(factors):
    """A known mistake: the entropy averaged over prefixes with equal weights, not π(prefix)."""
    cols = []
    for f in factors:
        h = -(f * f.log()).sum(-1)
        cols.append(h.reshape(h.shape[0], -1).mean(-1))
    return torch.stack(cols, dim=1)


def _marginal_entropies(factors):
    """A known mistake: H(π(a^m | s)) of the marginal, not the conditional entropy."""
    cols, prefix = [], torch.ones(factors[0].shape[0], dtype=factors[0].dtype)
    for f in factors:
        joint = prefix.unsqueeze(-1) * f
        marg = joint.reshape(joint.shape[0], -1, joint.shape[-1]).sum(1)
        cols.append(-(marg * marg.log()).sum(-1))
        prefix = joint
    return torch.stack(cols, dim=1)


@register(function="conditional_entropies", equation="eq-ar-entropy", parts={p: 1 for p in ENT_PARTS})
def check_conditional_entropies(student_fn, ctx) -> None:
    """``student_fn(factors)`` returns [S, N]: H^m(s) = E_{a^{0:m−1} ∼ π}[H(π^m(· | s, a^{0:m−1}))].

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|H| (float64 answers), ≤ 1e-5 + 1e-4·|H| (float32 answers).
    """
    for part, (S, counts, peaked) in ENT_PARTS.items():
        with ctx.part(part):
            factors = _policy(ctx, S, counts, peaked)
            N = len(counts)
            out = ctx.call([f.clone() for f in factors])
            want = ar_entropies(_game(S, counts), factors, tuple(range(N)))[1]
            hints = [(lambda: -want, "entropy is −Σ p log p: check the sign")]
            if N > 1:
                hints += [(lambda: _uniform_over_prefixes(factors),
                           "weight each prefix by its probability π(a^0, ..., a^(m-1) | s) under the policy, "
                           "not equally"),
                          (lambda: _marginal_entropies(factors),
                           "this is the entropy of the marginal π(a^m | s); average the entropy of each "
                           "conditional row instead")]
            ctx.close(out, want, f"conditional entropies for action counts {counts}",
                      where=lambda idx: f"state {idx[0]}, agent {idx[1]}", hints=hints, broadcast=False)
