"""Returns and advantage estimators shared by the exact and the sampled code.

One formula lives in one place: the exercises' checks, the tabular tests and (from
Chapter 2 on) the sampled algorithms all call these functions.
"""

from __future__ import annotations

import torch

from harl_mini.errors import HarlMiniError, as_float64

__all__ = ["discounted_returns"]


def discounted_returns(rewards, gamma: float) -> torch.Tensor:
    """Discounted returns-to-go along the last axis.

    Implements Chapter 1, eq. ``eq-return``:
    G_t = r_t + γ r_{t+1} + γ² r_{t+2} + … = Σ_{k≥t} γ^{k−t} r_k, computed backwards with
    G_t = r_t + γ G_{t+1} and G_T = 0 after the last reward.

    ===========  ============  ==========================================
    Symbol       Shape         Meaning
    ===========  ============  ==========================================
    ``rewards``  [..., T]      rewards r_0 … r_{T−1} of one or more episodes
    ``gamma``    scalar        discount factor γ ∈ [0, 1]
    returns      [..., T]      G_0 … G_{T−1}
    ===========  ============  ==========================================
    """
    r = as_float64(rewards, "rewards")
    if r.dim() == 0:
        raise HarlMiniError("rewards: expected at least one axis (time), got a scalar")
    if not 0.0 <= float(gamma) <= 1.0:
        raise HarlMiniError(f"gamma: must satisfy 0 <= gamma <= 1, got {gamma}")
    out = torch.empty_like(r)
    running = torch.zeros_like(r[..., 0])
    for t in range(r.shape[-1] - 1, -1, -1):
        running = r[..., t] + gamma * running
        out[..., t] = running
    return out
