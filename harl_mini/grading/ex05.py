"""Checks for Exercise 5: PPO's clipped loss.

Reference: ``harl_mini.losses.ppo_clip_loss`` (Chapter 5, eq. ``eq-ppo-clip``). The student's
``ppo_clip_loss(logp, logp_old, adv, clip_eps)`` returns the scalar loss to *minimise*; the
check compares the value and its gradient with respect to ``logp``.
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import CheckFailed, call_student, expect_close, expect_tensor, register
from harl_mini.losses import ppo_clip_loss

__all__ = ["check_ppo_clip_loss"]


@register("ex05", equation="eq-ppo-clip")
def check_ppo_clip_loss(student_fn) -> None:
    """Value and gradient match the reference on batches with ratios inside and outside the clip range."""
    gen = torch.Generator().manual_seed(5)
    for B, clip_eps in [(8, 0.2), (64, 0.1), (33, 0.3)]:
        logp_old = -torch.rand(B, generator=gen, dtype=torch.float64) * 2
        # log-ratios in [-0.6, 0.6]: ratios from 0.55 to 1.8, both sides of the clip range
        logp = (logp_old + (torch.rand(B, generator=gen, dtype=torch.float64) - 0.5) * 1.2).requires_grad_(True)
        adv = torch.randn(B, generator=gen, dtype=torch.float64)
        out = expect_tensor(call_student(student_fn, logp, logp_old, adv, clip_eps), (), f"the loss (B={B})")
        want = ppo_clip_loss(logp, logp_old, adv, clip_eps)
        expect_close(out, want.detach(), f"the loss value (B={B}, clip_eps={clip_eps})")
        logp_for_student = logp.detach().clone().requires_grad_(True)
        student_loss = call_student(student_fn, logp_for_student, logp_old, adv, clip_eps)
        if not (isinstance(student_loss, torch.Tensor) and student_loss.requires_grad):
            raise CheckFailed("the loss does not depend differentiably on logp; compute it with torch operations")
        student_loss.backward()
        (grad_want,) = torch.autograd.grad(want, logp)
        expect_close(logp_for_student.grad, grad_want, f"d loss / d logp (B={B}, clip_eps={clip_eps})")
