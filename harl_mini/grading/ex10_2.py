"""Checks for Exercise 10.2: the Multi-Agent Transformer's shifted action tokens and causal attention.

Oracles: ``harl_mini.marl.mat.shift_actions`` (Chapter 10, eq. ``eq-mat-shift``) and
``harl_mini.marl.mat.masked_attention`` with ``causal=True`` (eq. ``eq-mat-mask``).
Tolerance: tokens are 0/1, compared to 1e-12; attention outputs |got − expected| ≤ 1e-8 +
1e-6·|expected| entrywise (float64), 1e-5 + 1e-4·|expected| (float32).
"""

from __future__ import annotations

import math

import torch

from harl_mini.grading.core import Tolerance, register
from harl_mini.marl.mat import masked_attention, shift_actions

__all__ = ["check_shift_tokens", "check_causal_attention"]

EXACT = Tolerance(1e-12, 0.0)

#: part -> (batch, agents, actions)
SHIFT_PARTS = {"one agent: only the start token": (5, 1, 3), "two agents": (6, 2, 2),
               "five agents": (8, 5, 4)}


@register(function="shift_tokens", equation="eq-mat-shift", parts={p: 1 for p in SHIFT_PARTS}, tol=EXACT, tol32=EXACT)
def check_shift_tokens(student_fn, ctx) -> None:
    """``student_fn(actions [B, N] long, n_actions)`` returns the decoder input [B, N, n + 1]:
    t_0 = (1, 0, …, 0), t_m = (0, one-hot(a^{m−1})).

    Tolerance: exact (1e-12): the tokens are zeros and ones.
    """
    for part, (B, N, n) in SHIFT_PARTS.items():
        with ctx.part(part):
            actions = torch.randint(n, (B, N), generator=ctx.gen)
            out = ctx.call(actions.clone(), n)
            want = shift_actions(actions, n).to(torch.float64)
            own = torch.zeros_like(want)
            own[:, :, 1:] = torch.nn.functional.one_hot(actions, n).to(torch.float64)
            hints = [(own, "token m must carry the action of agent m − 1 (the one before), never agent m's own: "
                           "otherwise agent m sees its own action")]
            if N > 1:
                nxt = torch.zeros_like(want)
                nxt[:, :-1, 1:] = torch.nn.functional.one_hot(actions[:, 1:], n).to(torch.float64)
                hints.append((nxt, "shift towards the end: token m holds a^(m−1), token 0 is the start token"))
                nostart = want.clone()
                nostart[:, 0, 0] = 0.0
                hints.append((nostart, "token 0 is the start token: a 1 in column 0"))
            ctx.close(out, want, f"tokens for {N} agents with {n} actions",
                      where=lambda idx: f"sample {idx[0]}, token {idx[1]}, column {idx[2]}",
                      describe=lambda idx: f"joint action {tuple(int(a) for a in actions[idx[0]])}",
                      hints=hints, broadcast=False)


#: part -> shape of q, k, v ([..., L, d])
ATTN_PARTS = {"one position": (3, 1, 4), "a sequence of five": (2, 5, 8), "heads and batches": (2, 3, 6, 4)}


def _unmasked(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1]), -1) @ v


def _anti_causal(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
    later = torch.ones(scores.shape[-2:], dtype=torch.bool).tril(-1)
    return torch.softmax(scores.masked_fill(later, float("-inf")), -1) @ v


@register(function="causal_attention", equation="eq-mat-mask", parts={p: 1 for p in ATTN_PARTS})
def check_causal_attention(student_fn, ctx) -> None:
    """``student_fn(q, k, v)`` returns softmax(q kᵀ/√d + mask) v, output m mixing the values at 0..m only.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| (float64 answers), ≤ 1e-5 + 1e-4·|expected|
    (float32 answers).
    """
    for part, shape in ATTN_PARTS.items():
        with ctx.part(part):
            q, k, v = (2.0 * torch.randn(shape, generator=ctx.gen, dtype=torch.float64) for _ in range(3))
            out = ctx.call(q.clone(), k.clone(), v.clone())
            want = masked_attention(q, k, v, causal=True)
            hints = [(lambda: _unmasked(q, k, v), "position m must not attend to later positions: set their "
                                                  "scores to −inf before the softmax"),
                     (lambda: _anti_causal(q, k, v), "the mask is upside down: position m attends to 0..m, "
                                                     "the keys at or before it"),
                     (lambda: masked_attention(q * math.sqrt(shape[-1]), k, v, True),
                      "divide the scores by √d, d the size of the last axis")]
            ctx.close(out, want, f"attention output for q, k, v of shape {list(shape)}",
                      where=lambda idx: f"entry {idx}", hints=hints, broadcast=False)
