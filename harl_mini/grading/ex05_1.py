"""Checks for Exercise 5.1: PPO's clipped loss.

Oracle: ``harl_mini.losses.ppo_clip_loss`` (Chapter 5, eq. ``eq-ppo-clip``). The student's
``ppo_clip_loss(logp, logp_old, adv, clip_eps)`` returns the scalar loss to *minimise*; the
check compares its value and its gradient with respect to ``logp``.
Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| (float64), 1e-5 + 1e-4·|expected|
(float32), for the value and for each entry of the gradient.
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import register
from harl_mini.losses import ppo_clip_loss

__all__ = ["check_ppo_clip_loss"]


def _batch(B: int, spread: float, gen: torch.Generator):
    logp_old = -torch.rand(B, generator=gen, dtype=torch.float64) * 2
    logp = logp_old + (torch.rand(B, generator=gen, dtype=torch.float64) - 0.5) * 2 * spread
    adv = torch.randn(B, generator=gen, dtype=torch.float64)
    return logp, logp_old, adv


def _variant(logp, logp_old, adv, eps, kind: str) -> torch.Tensor:
    """What the classic mistakes compute (for hints)."""
    xi = torch.exp(logp - logp_old)
    if kind == "log-ratio":
        xi = logp - logp_old
    unclipped, clipped = xi * adv, xi.clamp(1 - eps, 1 + eps) * adv
    if kind == "max":
        return -torch.maximum(unclipped, clipped).mean()
    if kind == "clipped only":
        return -clipped.mean()
    if kind == "clip advantage":
        return -torch.minimum(unclipped, xi * adv.clamp(-eps, eps)).mean()
    if kind == "sum":
        return -torch.minimum(unclipped, clipped).sum()
    return -torch.minimum(unclipped, clipped).mean()


VALUE_HINTS = [("objective", "that is the objective; return the loss to minimise, its negative"),
               ("max", "take the element-wise minimum of the two terms, not the maximum"),
               ("clip advantage", "clip the ratio ξ, not the advantage"),
               ("log-ratio", "the ratio is exp(logp − logp_old), not the difference of the logs"),
               ("sum", "average over the batch (mean), do not sum")]


@register(function="ppo_clip_loss", equation="eq-ppo-clip",
          parts={"value, ratios inside the clip range": 1, "value, ratios on both sides of the clip range": 1,
                 "gradient with respect to logp": 1, "at the old policy (ratio 1)": 1})
def check_ppo_clip_loss(student_fn, ctx) -> None:
    """Value and gradient match the oracle on batches with ratios inside and outside the clip range.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| (float64 answers), ≤ 1e-5 + 1e-4·|expected| (float32 answers), for the
    value and each entry of d loss / d logp.
    """

    def value(logp, logp_old, adv, eps, label):
        out = ctx.call(logp, logp_old, adv, eps)
        want = ppo_clip_loss(logp, logp_old, adv, eps)
        hints = [(lambda k=k: -want if k == "objective" else _variant(logp, logp_old, adv, eps, k), text)
                 for k, text in VALUE_HINTS]
        ctx.close(out, want, f"the loss ({label}, B={logp.numel()}, clip_eps={eps:g})", hints=hints,
                  describe=lambda idx: _ratios_in_words(logp, logp_old, eps))

    with ctx.part("value, ratios inside the clip range"):
        for B, eps in [(8, 0.2), (33, 0.3), (int(torch.randint(5, 60, (), generator=ctx.gen)), 0.1)]:
            logp, logp_old, adv = _batch(B, 0.45 * eps, ctx.gen)
            value(logp, logp_old, adv, eps, "every ratio inside [1 − eps, 1 + eps]")
    with ctx.part("value, ratios on both sides of the clip range"):
        for B, eps in [(8, 0.2), (64, 0.1), (int(torch.randint(5, 60, (), generator=ctx.gen)), 0.3)]:
            logp, logp_old, adv = _batch(B, 0.6, ctx.gen)
            value(logp, logp_old, adv, eps, "ratios from 0.55 to 1.8, advantages of both signs")
    with ctx.part("gradient with respect to logp"):
        for B, eps in [(16, 0.2), (int(torch.randint(5, 60, (), generator=ctx.gen)), 0.1)]:
            logp, logp_old, adv = _batch(B, 0.6, ctx.gen)
            leaf = logp.clone().requires_grad_(True)
            (want,) = torch.autograd.grad(ppo_clip_loss(leaf, logp_old, adv, eps), leaf)
            _, grad = ctx.loss_gradient(logp, logp_old, adv, eps)
            hints = []
            for kind, text in [("max", "take the minimum of the two terms, not the maximum"),
                               ("clipped only", "keep the unclipped term: min(ξ Â, clip(ξ) Â) has a gradient "
                                                "inside the range, the clipped term alone has none"),
                               ("log-ratio", "the ratio is exp(logp − logp_old)")]:
                alt_leaf = logp.clone().requires_grad_(True)
                (alt,) = torch.autograd.grad(_variant(alt_leaf, logp_old, adv, eps, kind), alt_leaf)
                hints.append((alt, text))
            hints.append((-want, "the gradient has the wrong sign: return the loss (the negative objective)"))
            ratio = torch.exp(logp - logp_old)
            ctx.close(grad, want, f"d loss / d logp (B={B}, clip_eps={eps:g})", hints=hints,
                      where=lambda idx: f"sample {idx[0]}",
                      describe=lambda idx: (f"sample {idx[0]} has ratio {ratio[idx].item():.4g} "
                                            f"({'inside' if abs(ratio[idx].item() - 1) <= eps else 'outside'} "
                                            f"[{1 - eps:g}, {1 + eps:g}]) and advantage {adv[idx].item():.4g}"))
    with ctx.part("at the old policy (ratio 1)"):
        B = int(torch.randint(4, 40, (), generator=ctx.gen))
        logp_old = -torch.rand(B, generator=ctx.gen, dtype=torch.float64) * 2
        adv = torch.randn(B, generator=ctx.gen, dtype=torch.float64)
        value(logp_old.clone(), logp_old, adv, 0.2, "logp = logp_old, so every ratio is 1 and the loss is −mean(Â)")
        _, grad = ctx.loss_gradient(logp_old.clone(), logp_old, adv, 0.2)
        ctx.close(grad, -adv / B, f"d loss / d logp at ratio 1 (B={B}): −Â/B", where=lambda idx: f"sample {idx[0]}")


def _ratios_in_words(logp, logp_old, eps) -> str:
    ratio = torch.exp(logp - logp_old)
    inside = int(((ratio - 1).abs() <= eps).sum())
    return (f"{ratio.numel()} samples with ratios from {ratio.min().item():.3g} to {ratio.max().item():.3g} "
            f"({inside} inside [{1 - eps:g}, {1 + eps:g}])")
