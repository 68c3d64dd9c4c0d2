"""Policy-optimisation objectives shared by the exact and the sampled code.

The exact tabular chapters evaluate these on whole tables (every state and action, weighted
by the visitation and the old policy); the sampled algorithms evaluate them on batches.
HAPPO (Chapter 8) reuses :func:`ppo_clip_objective` with the advantage replaced by
``M · adv``: because M > 0, ``M·min(ξ A, clip(ξ) A) = min(ξ (M A), clip(ξ) (M A))``.

The functions return per-sample terms; what they average over decides the objective. The
exact tabular code (:mod:`harl_mini.tabular.trpo`) weights states by the discounted
visitation d_π; the sampled algorithms take the batch mean, which weights every time step
equally (undiscounted; Chapter 4, §4.5).

The probability ratio is written ξ(θ) in the book (the PPO paper writes r_t(θ)).

=============  ========  ====================================================
Symbol         Shape     Meaning
=============  ========  ====================================================
``logp``       [B]       log π_θ(a|s) of the actions taken, under the new policy
``logp_old``   [B]       log π_θold(a|s), recorded when the data were collected
``ratio``      [B]       ξ(θ) = π_θ(a|s) / π_θold(a|s) = exp(logp − logp_old)
``adv``        [B]       advantage estimates Â
``clip_eps``   scalar    ε_clip of PPO's clip (0.2 in Schulman et al. 2017)
=============  ========  ====================================================
"""

from __future__ import annotations

import torch

from harl_mini.errors import HarlMiniError

__all__ = ["ratio", "surrogate_objective", "ppo_clip_objective", "ppo_clip_loss"]


def ratio(logp: torch.Tensor, logp_old: torch.Tensor) -> torch.Tensor:
    """ξ(θ) = exp(log π_θ − log π_θold), computed from log-probabilities for stability (Chapter 5, §5.1)."""
    return torch.exp(logp - logp_old)


def surrogate_objective(ratio: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """Importance-sampled surrogate ξ(θ)·Â per sample (Chapter 4, eq. ``eq-trpo-sample-surrogate``).

    Its mean over (s, a) ∼ d_π × π_θold estimates L_π(π̃) − J(π) up to the factor 1/(1−γ),
    and its gradient at θ = θ_old the policy gradient. A batch mean over time steps weights
    states by their undiscounted frequency instead (Chapter 4, §4.5).
    """
    _same_shape(ratio, adv)
    return ratio * adv


def ppo_clip_objective(ratio: torch.Tensor, adv: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """PPO's clipped objective per sample, min(ξ Â, clip(ξ, 1−ε, 1+ε) Â) (Chapter 5, eq. ``eq-ppo-clip``).

    ε = ``clip_eps`` (ε_clip in the book). For Â > 0 it stops rewarding ξ above 1 + ε; for
    Â < 0 it stops rewarding ξ below 1 − ε. It equals ξ Â to first order at ξ = 1 and is never
    above it.
    """
    _same_shape(ratio, adv)
    if not clip_eps >= 0:
        raise HarlMiniError(f"clip_eps: must be non-negative, got {clip_eps}")
    return torch.minimum(ratio * adv, torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv)


def ppo_clip_loss(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """The quantity to *minimise*: −mean of :func:`ppo_clip_objective` over the batch."""
    return -ppo_clip_objective(ratio(logp, logp_old), adv, clip_eps).mean()


def _same_shape(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise HarlMiniError(f"ratio and adv must have the same shape, got {list(a.shape)} and {list(b.shape)}")
