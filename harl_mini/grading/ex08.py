"""Checks for Exercise 8: the pieces of HAPPO and HATRPO.

References: ``harl_mini.marl.runner.happo_objective`` (Chapter 8, eq. ``eq-happo-objective``),
``harl_mini.marl.runner.update_factor`` (the M recursion, eq. ``eq-ma-estimator``),
``harl_mini.trust_region.conjugate_gradient`` and ``max_step_length`` (eq. ``eq-hatrpo-step``).
"""

from __future__ import annotations

import itertools
import math

import torch

from harl_mini.grading.core import CheckFailed, call_student, expect_close, expect_tensor, register
from harl_mini.losses import ratio
from harl_mini.marl.runner import happo_objective, update_factor
from harl_mini.trust_region import conjugate_gradient, max_step_length

__all__ = ["check_happo_loss", "check_m_factor", "check_agent_order", "check_hatrpo_step"]


@register("ex08", equation="eq-happo-objective")
def check_happo_loss(student_fn) -> None:
    """``student_fn(logp, logp_old, adv, M, clip_eps)``: value and gradient match; no gradient reaches M."""
    gen = torch.Generator().manual_seed(8)
    for B, clip_eps in [(16, 0.2), (50, 0.1)]:
        logp_old = -torch.rand(B, generator=gen, dtype=torch.float64) * 2
        shift = (torch.rand(B, generator=gen, dtype=torch.float64) - 0.5) * 1.2
        adv = torch.randn(B, generator=gen, dtype=torch.float64)
        # M comes from an earlier agent's (differentiable) ratio, as it would in a careless implementation
        earlier = (torch.randn(B, generator=gen, dtype=torch.float64) * 0.3).requires_grad_(True)
        M = torch.exp(earlier)
        logp = (logp_old + shift).requires_grad_(True)
        loss = expect_tensor(call_student(student_fn, logp, logp_old, adv, M, clip_eps), (), f"the loss (B={B})")
        want = -happo_objective(ratio(logp, logp_old), M, adv, clip_eps).mean()
        expect_close(loss, want.detach(), f"the loss value (B={B}, clip_eps={clip_eps})")
        logp2 = (logp_old + shift).requires_grad_(True)
        earlier2 = earlier.detach().clone().requires_grad_(True)
        out = call_student(student_fn, logp2, logp_old, adv, torch.exp(earlier2), clip_eps)
        if not (isinstance(out, torch.Tensor) and out.requires_grad):
            raise CheckFailed("the loss does not depend differentiably on logp")
        out.backward()
        (grad_want,) = torch.autograd.grad(want, logp)
        expect_close(logp2.grad, grad_want, f"d loss / d logp (B={B})")
        if earlier2.grad is not None and float(earlier2.grad.abs().max()) > 0:
            raise CheckFailed("gradient flows into M (the earlier agents' ratios): detach M, it is a fixed weight")


@register("ex08", equation="eq-ma-estimator")
def check_m_factor(student_fn) -> None:
    """``student_fn(logp_new, logp_old, order, m)`` returns Π_{j<m} π^{i_j}_new/π^{i_j}_old per sample."""
    gen = torch.Generator().manual_seed(9)
    for N, B in [(2, 5), (3, 7), (4, 6)]:
        logp_old = [-torch.rand(B, generator=gen, dtype=torch.float64) for _ in range(N)]
        logp_new = [lo + 0.4 * torch.randn(B, generator=gen, dtype=torch.float64) for lo in logp_old]
        for order in itertools.islice(itertools.permutations(range(N)), 4):
            for m in range(1, N + 1):
                what = f"M for agent {order[m - 1]} (m={m}) in order {order}"
                out = expect_tensor(call_student(student_fn, [t.clone() for t in logp_new],
                                                 [t.clone() for t in logp_old], tuple(order), m), (B,), what)
                want = torch.ones(B, dtype=torch.float64)
                for i in order[: m - 1]:
                    want = update_factor(want, logp_new[i], logp_old[i])
                expect_close(out, want, what, atol=1e-10)


@register("ex08", equation="alg-happo")
def check_agent_order(student_fn) -> None:
    """``student_fn(num_agents, generator)`` draws a fresh uniformly random order every call."""
    for n in (2, 3, 4):
        gen = torch.Generator().manual_seed(10 + n)
        draws = []
        for _ in range(60 * math.factorial(n)):
            order = call_student(student_fn, n, gen)
            if not isinstance(order, (list, tuple, torch.Tensor)):
                raise CheckFailed(f"expected a list of agent indices, got {type(order).__name__}: {order!r}")
            try:
                order = tuple(int(i) for i in order)
            except (TypeError, ValueError):
                raise CheckFailed(f"expected a list of agent indices, got {order!r}") from None
            if sorted(order) != list(range(n)):
                raise CheckFailed(f"{order} is not an order of the agents 0..{n - 1} (each exactly once)")
            draws.append(order)
        seen = {o: draws.count(o) for o in set(draws)}
        if len(seen) < math.factorial(n):
            raise CheckFailed(f"with {n} agents only {len(seen)} of the {math.factorial(n)} orders ever appear; "
                              "draw a fresh random permutation every iteration")
        low, high = min(seen.values()), max(seen.values())
        if low < 0.4 * 60 or high > 1.8 * 60:
            raise CheckFailed(f"with {n} agents the orders are far from uniform (counts {low}..{high}, "
                              f"expected about 60 each)")
        again = tuple(int(i) for i in call_student(student_fn, n, torch.Generator().manual_seed(10 + n)))
        if again != draws[0]:
            raise CheckFailed("the order is not reproducible: use the generator you are given")


@register("ex08", equation="eq-hatrpo-step")
def check_hatrpo_step(student_fn) -> None:
    """``student_fn(g, Fvp, delta)`` returns β s with s = CG(F, g, 10 iterations), β = √(2δ / sᵀF s)."""
    gen = torch.Generator().manual_seed(11)
    for n, delta in [(4, 0.01), (9, 0.05), (15, 0.001)]:
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
        F = q @ torch.diag(torch.logspace(-1, 1, n, dtype=torch.float64)) @ q.T
        g = torch.randn(n, generator=gen, dtype=torch.float64)
        out = expect_tensor(call_student(student_fn, g, lambda v, F=F: F @ v, delta), (n,), f"the step (n={n})")
        s = conjugate_gradient(lambda v, F=F: F @ v, g, iters=10)
        want = max_step_length(s, F @ s, delta) * s
        expect_close(out, want, f"the full step (n={n}, delta={delta})", atol=1e-7)
        kl_model = 0.5 * float(out @ F @ out)
        if abs(kl_model - delta) > 1e-6 * delta:
            raise CheckFailed(f"½ stepᵀ F step = {kl_model:.6g}; the full step must reach the KL radius {delta}")
