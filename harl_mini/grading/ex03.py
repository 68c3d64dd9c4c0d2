"""Checks for Exercise 3: the Fisher-vector product of a tabular softmax policy, and
conjugate gradient, the two pieces of a natural-gradient (and TRPO) step.

References: ``harl_mini.tabular.fisher_vector_product`` (Chapter 3, eq. ``eq-fisher``) and
``harl_mini.trust_region.conjugate_gradient`` (Chapter 4, eq. ``eq-trpo-direction``).
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import CheckFailed, call_student, expect_close, expect_tensor, register
from harl_mini.tabular import fisher_vector_product, random_mdp
from harl_mini.trust_region import conjugate_gradient

__all__ = ["check_fisher_vector_product", "check_conjugate_gradient"]


@register("ex03", equation="eq-fisher")
def check_fisher_vector_product(student_fn) -> None:
    """``student_fn(pi, d, v)`` returns (F v)[s, a] = d(s) π(a|s) (v[s, a] − Σ_b π(b|s) v[s, b])."""
    gen = torch.Generator().manual_seed(3)
    for S, A in [(1, 2), (4, 3), (7, 5)]:
        logits = torch.randn(S, A, generator=gen, dtype=torch.float64) * 1.5
        pi = torch.softmax(logits, dim=-1)
        d = torch.rand(S, generator=gen, dtype=torch.float64) + 0.1
        d = d / d.sum()
        v = torch.randn(S, A, generator=gen, dtype=torch.float64)
        out = expect_tensor(call_student(student_fn, pi, d, v), (S, A), f"F v for S={S}, A={A}")
        want = fisher_vector_product(random_mdp(S, A, seed=0), logits, v, weights=d)
        expect_close(out, want, f"(F v)[s, a] for S={S}, A={A}")


def _spd(n: int, condition: float, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    eigenvalues = torch.logspace(0, torch.log10(torch.tensor(condition)).item(), n, dtype=torch.float64)
    return q @ torch.diag(eigenvalues) @ q.T


@register("ex03", equation="eq-trpo-direction")
def check_conjugate_gradient(student_fn) -> None:
    """``student_fn(Avp, b, iters)`` runs ``iters`` CG iterations from x = 0 and returns x."""
    gen = torch.Generator().manual_seed(4)
    for n, condition, iters in [(3, 5.0, 3), (8, 100.0, 8), (12, 1e3, 5), (10, 50.0, 2)]:
        A = _spd(n, condition, gen)
        b = torch.randn(n, generator=gen, dtype=torch.float64)
        calls = []

        def Avp(v, A=A):
            calls.append(1)
            return A @ v

        out = expect_tensor(call_student(student_fn, Avp, b, iters), (n,), f"x for n={n}, iters={iters}")
        if len(calls) > iters + 1:
            raise CheckFailed(f"used {len(calls)} matrix-vector products for {iters} iterations; "
                              "CG needs one per iteration")
        want = conjugate_gradient(lambda v, A=A: A @ v, b, iters=iters, residual_tol=0.0)
        scale = float(want.abs().max())
        expect_close(out / scale, want / scale, f"x after {iters} CG iterations (n={n}, condition {condition:g}, "
                                                "relative to max|x|)", atol=1e-7)
        if iters == n:
            expect_close(A @ out, b, f"A x for n={n} after n iterations (CG is exact after n steps)", atol=1e-6)
