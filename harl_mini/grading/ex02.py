"""Checks for Exercise 2: generalised advantage estimation with termination and truncation.

Reference: ``harl_mini.advantages.gae`` (Chapter 2, eq. ``eq-gae``). The student's
``gae(rewards, values, next_values, terminated, truncated, gamma, lam)`` returns Â [T, B].
"""

from __future__ import annotations

import torch

from harl_mini.advantages import gae
from harl_mini.grading.core import call_student, expect_close, expect_tensor, register

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


@register("ex02", equation="eq-gae")
def check_gae(student_fn) -> None:
    """Â matches the reference for λ ∈ {0, 0.95, 1}, with terminations and truncations in the batch."""
    gen = torch.Generator().manual_seed(2)
    for T, B, p_term, p_trunc, gamma, lam in [(6, 1, 0.0, 0.0, 0.9, 0.95), (12, 3, 0.15, 0.0, 0.99, 0.95),
                                              (12, 3, 0.0, 0.15, 0.99, 0.95), (20, 4, 0.1, 0.1, 0.9, 0.0),
                                              (20, 4, 0.1, 0.1, 0.97, 1.0), (32, 8, 0.08, 0.05, 0.99, 0.9)]:
        batch = _batch(T, B, p_term, p_trunc, gen)
        what = f"the advantages (T={T}, B={B}, gamma={gamma}, lam={lam})"
        out = expect_tensor(call_student(student_fn, *batch, gamma, lam), (T, B), what)
        expect_close(out, gae(*batch, gamma, lam)[0], what)
