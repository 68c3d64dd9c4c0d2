"""Checks for Exercise 5.3: the gradient of PPO's clipped objective, by hand: which samples contribute.

Oracle: autograd through ``harl_mini.losses.ppo_clip_objective`` (Chapter 5, eq.
``eq-ppo-clip``) for a categorical policy with logits: the gradient of
L^CLIP = mean_t min(ξ_t Â_t, clip(ξ_t, 1 − ε, 1 + ε) Â_t), ξ_t = π_θ(a_t|s_t)/π_old(a_t|s_t),
with respect to the logits [B, A] of π_θ (one row per sample). The student's
``clip_objective_grad(logits, logits_old, actions, adv, clip_eps)`` returns it without autograd.
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import register
from harl_mini.losses import ppo_clip_objective

__all__ = ["check_clip_objective_grad"]

F64 = torch.float64


def _ratio(logits, logits_old, actions):
    logp = torch.log_softmax(logits, -1).gather(-1, actions[:, None]).squeeze(-1)
    logp_old = torch.log_softmax(logits_old, -1).gather(-1, actions[:, None]).squeeze(-1)
    return torch.exp(logp - logp_old)


def oracle_grad(logits, logits_old, actions, adv, clip_eps) -> torch.Tensor:
    """d L^CLIP / d logits by autograd through the package's clipped objective."""
    leaf = logits.detach().clone().requires_grad_(True)
    objective = ppo_clip_objective(_ratio(leaf, logits_old, actions), adv, clip_eps).mean()
    (grad,) = torch.autograd.grad(objective, leaf)
    return grad


def _variants(logits, logits_old, actions, adv, eps):
    """Gradients of the classic mistakes, for hints."""
    B, A = logits.shape
    pi = torch.softmax(logits, -1)
    xi = _ratio(logits, logits_old, actions)
    score = torch.nn.functional.one_hot(actions, A).to(F64) - pi  # ∇_logits log π(a|s)
    profitable_out = ((adv > 0) & (xi > 1 + eps)) | ((adv < 0) & (xi < 1 - eps))
    active = (~profitable_out).to(F64)
    inside = ((xi - 1).abs() <= eps).to(F64)
    return {
        "both sides": (inside * xi * adv / B)[:, None] * score,
        "no ratio": (active * adv / B)[:, None] * score,
        "no -pi": (active * xi * adv / B)[:, None] * torch.nn.functional.one_hot(actions, A).to(F64),
        "sum": (active * xi * adv)[:, None] * score,
        "loss": -(active * xi * adv / B)[:, None] * score,
        "unclipped": (xi * adv / B)[:, None] * score,
    }


HINTS = [
    ("both sides", "a sample outside the band still contributes when moving further would LOSE: Â > 0 with "
                   "ξ < 1 − ε, or Â < 0 with ξ > 1 + ε; only the profitable side is flat"),
    ("no ratio", "∇ξ = ξ ∇log π(a|s): the gradient of the ratio carries the factor ξ"),
    ("no -pi", "∇_logits log π(a|s) = onehot(a) − π(·|s): the softmax normalisation moves every logit"),
    ("sum", "L^CLIP is a mean over the batch: divide by B"),
    ("loss", "that is the gradient of the loss −L^CLIP; the exercise asks for the objective's gradient"),
    ("unclipped", "that is the gradient of the unclipped surrogate: samples clipped on the profitable side "
                  "contribute nothing"),
]


def _batch(gen, B, A, spread, cap=float("inf")):
    logits_old = torch.randn(B, A, generator=gen, dtype=F64)
    logits = logits_old + (spread * torch.randn(B, A, generator=gen, dtype=F64)).clamp(-cap, cap)
    actions = torch.randint(0, A, (B,), generator=gen)
    adv = torch.randn(B, generator=gen, dtype=F64)
    return logits, logits_old, actions, adv


@register(function="clip_objective_grad", equation="eq-ppo-clip",
          parts={"every ratio inside the band": 1, "ratios on both sides, advantages of both signs": 1,
                 "at the old policy": 1, "pushed out on the losing side": 1})
def check_clip_objective_grad(student_fn, ctx) -> None:
    """Your gradient with respect to the logits matches autograd's, entry by entry.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| (float64 answers; the gradient is a
    product of three exact factors per sample), ≤ 1e-5 + 1e-4·|expected| (float32 answers).
    """

    def one(logits, logits_old, actions, adv, eps, what):
        want = oracle_grad(logits, logits_old, actions, adv, eps)
        out = ctx.call(logits.clone(), logits_old.clone(), actions.clone(), adv.clone(), eps)
        xi = _ratio(logits, logits_old, actions)
        variants = _variants(logits, logits_old, actions, adv, eps)

        def describe(idx):
            t = idx[0]
            x, a = float(xi[t]), float(adv[t])
            side = "inside" if abs(x - 1) <= eps else ("above" if x > 1 else "below")
            return (f"{what}; sample {t}: action {int(actions[t])}, ratio ξ = {x:.4g} ({side} "
                    f"[{1 - eps:g}, {1 + eps:g}]), advantage {a:.4g}")

        ctx.close(out, want, f"dL^CLIP/dlogits ({what}, B = {len(adv)}, ε_clip = {eps:g})",
                  where=lambda idx: f"sample {idx[0]}, logit {idx[1]}", describe=describe,
                  hints=[(variants[k], t) for k, t in HINTS])

    with ctx.part("every ratio inside the band"):
        for B, eps in ((6, 0.2), (int(torch.randint(5, 40, (), generator=ctx.gen)), 0.3)):
            batch = _batch(ctx.gen, B, 3, 0.02, cap=0.04)  # |Δ log π| ≤ 0.08: ξ ∈ [0.92, 1.09]
            one(*batch, eps, "small logit changes: every ξ in the band")
    with ctx.part("ratios on both sides, advantages of both signs"):
        for B, A, eps in ((8, 3, 0.2), (int(torch.randint(10, 60, (), generator=ctx.gen)), 4, 0.1)):
            one(*_batch(ctx.gen, B, A, 0.8), eps, "large logit changes")
    with ctx.part("at the old policy"):
        logits, _, actions, adv = _batch(ctx.gen, int(torch.randint(4, 30, (), generator=ctx.gen)), 3, 0.0)
        one(logits, logits.clone(), actions, adv, 0.2, "logits = logits_old, so every ξ = 1")
    with ctx.part("pushed out on the losing side"):
        # Â > 0 with ξ well below 1 − ε, and Â < 0 with ξ well above 1 + ε: both keep their gradient
        logits_old = torch.zeros(4, 2, dtype=F64)
        logits = torch.tensor([[-1.0, 1.0], [1.0, -1.0], [-0.8, 0.8], [0.9, -0.9]], dtype=F64)
        actions = torch.tensor([0, 0, 1, 1])
        adv = torch.tensor([1.0, -1.0, -0.5, 0.7], dtype=F64)
        one(logits, logits_old, actions, adv, 0.2, "the notebook's example")
        logits, logits_old, actions, adv = _batch(ctx.gen, 12, 3, 1.0)
        xi = _ratio(logits, logits_old, actions)
        adv = torch.where(xi > 1, -adv.abs(), adv.abs())  # every sample on its losing side
        one(logits, logits_old, actions, adv, 0.2, "every sample moved against its advantage")
