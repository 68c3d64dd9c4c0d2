"""Checks for Exercise 2.1: generalised advantage estimation with termination and truncation.

Oracle: ``harl_mini.advantages.gae`` (Chapter 2, eq. ``eq-gae``). The student's
``gae(rewards, values, next_values, terminated, truncated, gamma, lam)`` returns Â [T, B].
Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|Â| entrywise (float64), 1e-5 + 1e-4·|Â| (float32).
"""

from __future__ import annotations

import torch

from harl_mini.advantages import gae
from harl_mini.grading.core import register

__all__ = ["check_gae"]


def _batch(T: int, B: int, p_term: float, p_trunc: float, gen: torch.Generator):
    """Random rewards and values with episode ends of both kinds scattered through the batch."""
    rewards = torch.randn(T, B, generator=gen, dtype=torch.float64)
    values = torch.randn(T, B, generator=gen, dtype=torch.float64)
    next_values = torch.cat([values[1:], torch.randn(1, B, generator=gen, dtype=torch.float64)])
    u = torch.rand(T, B, generator=gen, dtype=torch.float64)
    terminated = u < p_term
    truncated = (u >= p_term) & (u < p_term + p_trunc)
    # after an episode end, next_values holds V(final observation), not V of the reset state
    final = torch.randn(T, B, generator=gen, dtype=torch.float64)
    next_values = torch.where(terminated | truncated, final, next_values)
    return rewards, values, next_values, terminated, truncated


def _never_cut(rewards, values, next_values, terminated, truncated, gamma, lam):
    """A known mistake: the recursion runs across episode ends."""
    deltas = rewards + gamma * (~terminated).to(rewards.dtype) * next_values - values
    adv, running = torch.zeros_like(deltas), torch.zeros_like(deltas[0])
    for t in reversed(range(deltas.shape[0])):
        running = deltas[t] + gamma * lam * running
        adv[t] = running
    return adv


def _step_in_words(t: int, b: int, terminated, truncated) -> str:
    term, trunc = bool(terminated[t, b]), bool(truncated[t, b])
    kind = ("a termination" if term and not trunc else "a truncation" if trunc and not term
            else "both a termination and a truncation" if term else "an ordinary step (no episode end)")
    text = f"step t={t} of copy {b} is {kind}: terminated={term}, truncated={trunc}"
    later = [s for s in range(t + 1, terminated.shape[0]) if bool(terminated[s, b] | truncated[s, b])]
    if later:
        s = later[0]
        text += f"; the next episode end in copy {b} is at t={s} ({'termination' if bool(terminated[s, b]) else 'truncation'})"
    return text


#: part -> the batches it runs: fixed (T, B, p_term, p_trunc, gamma, lam), then random draws of the same kind
PARTS = {
    "no episode end": [(6, 1, 0.0, 0.0, 0.9, 0.95), (10, 3, 0.0, 0.0, 0.99, 0.8)],
    "termination only": [(12, 3, 0.15, 0.0, 0.99, 0.95)],
    "truncation only": [(12, 3, 0.0, 0.15, 0.99, 0.95)],
    "lambda = 0": [(20, 4, 0.1, 0.1, 0.9, 0.0)],
    "lambda = 1": [(20, 4, 0.1, 0.1, 0.97, 1.0)],
    "everything at once": [(32, 8, 0.08, 0.05, 0.99, 0.9)],
}


@register(function="gae", equation="eq-gae", parts={part: 1 for part in PARTS})
def check_gae(student_fn, ctx) -> None:
    """Â matches the oracle with no episode end, terminations only, truncations only, λ = 0, λ = 1, and all mixed.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|Â_t| (float64 answers), ≤ 1e-5 + 1e-4·|Â_t| (float32 answers).
    """
    for part, fixed in PARTS.items():
        with ctx.part(part):
            cases = list(fixed)
            for T, B, p_term, p_trunc, gamma, lam in fixed:  # one random draw of the same kind per case
                T2 = int(torch.randint(max(2, T // 2), 2 * T, (), generator=ctx.gen))
                B2 = int(torch.randint(1, B + 2, (), generator=ctx.gen))
                gamma2 = round(0.8 + 0.199 * float(torch.rand((), generator=ctx.gen)), 3)
                lam2 = lam if lam in (0.0, 1.0) else round(0.5 + 0.49 * float(torch.rand((), generator=ctx.gen)), 3)
                cases.append((T2, B2, p_term, p_trunc, gamma2, lam2))
            for T, B, p_term, p_trunc, gamma, lam in cases:
                batch = _batch(T, B, p_term, p_trunc, ctx.gen)
                r, v, nv, term, trunc = batch
                out = ctx.call(*batch, gamma, lam)
                want = gae(*batch, gamma, lam)[0]
                done = term | trunc
                no_flag = torch.zeros_like(term)
                hints = [(lambda: gae(r, v, nv, done, no_flag, gamma, lam)[0],
                          "a truncation is not a terminal state: bootstrap from next_values (V of the final "
                          "observation) and only stop the recursion there"),
                         (lambda: gae(r, v, nv, no_flag, done, gamma, lam)[0],
                          "at a termination there is no future: the TD error is r_t − V(s_t), without γ·next_values"),
                         (lambda: _never_cut(*batch, gamma, lam),
                          "the recursion must stop at every episode end: multiply Â_(t+1) by (1 − done_t)")]
                if lam != 1.0:
                    hints.append((lambda: gae(*batch, gamma, 1.0)[0], "the recursion multiplies by γλ, not by γ"))
                if lam != 0.0:
                    hints.append((lambda: gae(*batch, gamma, 0.0)[0],
                                  "that is the TD error δ_t alone; add γλ(1 − done_t)·Â_(t+1)"))
                ctx.close(out, want, f"Â (T={T}, B={B}, gamma={gamma:g}, lam={lam:g})",
                          where=lambda idx: f"step t={idx[0]} of copy {idx[1]}",
                          describe=lambda idx, term=term, trunc=trunc: _step_in_words(idx[0], idx[1], term, trunc),
                          hints=hints)
