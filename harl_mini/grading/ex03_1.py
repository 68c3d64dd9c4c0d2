"""Checks for Exercise 3.1: the Fisher-vector product of a tabular softmax policy, and
conjugate gradient, the two pieces of a natural-gradient (and TRPO) step.

Oracles: ``harl_mini.tabular.fisher_vector_product`` (Chapter 3, eq. ``eq-fisher``) and
``harl_mini.trust_region.conjugate_gradient`` (Chapter 4, eq. ``eq-trpo-direction``).
Tolerances: F v entrywise within 1e-8 + 1e-6·|F v| (float64) or 1e-5 + 1e-4·|F v| (float32);
the CG iterate x within 1e-7·max|x| (float64) or 1e-4·max|x| (float32) of the oracle's
(relative to the largest entry, since a badly conditioned A makes x large).
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import CheckFailed, Tolerance, register, scaled_answer
from harl_mini.tabular import fisher_vector_product, random_mdp
from harl_mini.trust_region import conjugate_gradient

__all__ = ["check_fisher_vector_product", "check_conjugate_gradient"]


@register(function="fisher_vector_product", equation="eq-fisher",
          parts={"one state": 1, "several states, random weights": 1, "nearly deterministic policy": 1})
def check_fisher_vector_product(student_fn, ctx) -> None:
    """``student_fn(pi, d, v)`` returns (F v)[s, a] = d(s) π(a|s) (v[s, a] − Σ_b π(b|s) v[s, b]).

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|(F v)[s, a]| (float64 answers), ≤ 1e-5 + 1e-4·|(F v)[s, a]| (float32 answers).
    """
    cases = {"one state": [(1, 2, 1.5), (1, 4, 1.0)],
             "several states, random weights": [(4, 3, 1.5), (7, 5, 1.5)],
             "nearly deterministic policy": [(3, 4, 6.0)]}
    for part, shapes in cases.items():
        with ctx.part(part):
            S0, _, scale0 = shapes[0]
            drawn = (1 if S0 == 1 else int(torch.randint(2, 9, (), generator=ctx.gen)),
                     int(torch.randint(2, 6, (), generator=ctx.gen)), scale0)
            for S, A, scale in [*shapes, drawn]:
                logits = torch.randn(S, A, generator=ctx.gen, dtype=torch.float64) * scale
                pi = torch.softmax(logits, dim=-1)
                d = torch.rand(S, generator=ctx.gen, dtype=torch.float64) + 0.1
                d = d / d.sum()
                v = torch.randn(S, A, generator=ctx.gen, dtype=torch.float64)
                out = ctx.call(pi, d, v)
                want = fisher_vector_product(random_mdp(S, A, seed=0), logits, v, weights=d)
                ctx.close(out, want, f"F v (S={S}, A={A})", where=lambda idx: f"state s={idx[0]}, action a={idx[1]}",
                          describe=lambda idx, S=S, A=A: f"a random softmax policy with S={S}, A={A} and state weights d",
                          hints=[(lambda: pi * (v - (pi * v).sum(-1, keepdim=True)),
                                  "each state's block is weighted by d(s)"),
                                 (lambda: d[:, None] * pi * v, "each block is diag(π_s) − π_s π_sᵀ: subtract the "
                                                              "π-weighted mean of v[s, :]"),
                                 (lambda: d[:, None] * pi * (v - v.mean(-1, keepdim=True)),
                                  "subtract the π-weighted mean Σ_b π(b|s) v[s, b], not the plain mean")])


def _spd(n: int, condition: float, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    eigenvalues = torch.logspace(0, torch.log10(torch.tensor(condition)).item(), n, dtype=torch.float64)
    return q @ torch.diag(eigenvalues) @ q.T


def _steepest_descent(A, b, iters):
    x, r = torch.zeros_like(b), b.clone()
    for _ in range(iters):
        Ar = A @ r
        x, r = x + (r @ r) / (r @ Ar) * r, r - (r @ r) / (r @ Ar) * Ar
    return x


@register(function="conjugate_gradient", equation="eq-trpo-direction",
          parts={"fewer iterations than the dimension": 1, "n iterations solve A x = b": 1,
                 "one product Avp per iteration": 1},
          tol=Tolerance(atol=1e-7, rtol=0.0), tol32=Tolerance(atol=1e-4, rtol=0.0))
def check_conjugate_gradient(student_fn, ctx) -> None:
    """``student_fn(Avp, b, iters)`` runs ``iters`` CG iterations from x = 0 and returns x.

    Tolerance: |x − x_oracle| ≤ 1e-7·max|x_oracle| (float64 answers), ≤ 1e-4·max|x_oracle|
    (float32 answers); after n iterations, |A x − b| ≤ 1e-6·max|b| (1e-3·max|b| for float32).
    """

    def run(n, condition, iters, count_products=False):
        A = _spd(n, condition, ctx.gen)
        b = torch.randn(n, generator=ctx.gen, dtype=torch.float64)
        calls = []

        def Avp(v):
            calls.append(1)
            return A @ torch.as_tensor(v, dtype=torch.float64)

        out = ctx.call(Avp, b, iters)
        if count_products and len(calls) > iters + 1:
            raise CheckFailed(f"used {len(calls)} products Avp for {iters} iterations (n={n}); CG needs one per "
                              "iteration: keep A p_k in a variable and reuse it")
        want = conjugate_gradient(lambda v: A @ v, b, iters=iters, residual_tol=0.0)
        scale = float(want.abs().max())
        what = f"x after {iters} iterations (n={n}, condition number {condition:g}), divided by max|x|"
        got = ctx.close(scaled_answer(out, scale), want / scale, what,
                        where=lambda idx: f"entry {idx[0]}",
                        describe=lambda idx: f"a random symmetric positive-definite {n}×{n} matrix A, random b, iters={iters}",
                        hints=[(lambda: _steepest_descent(A, b, iters) / scale,
                                "that is steepest descent: the next direction is p_(k+1) = e_(k+1) + μ_k p_k, "
                                "not the residual alone"),
                               (lambda: conjugate_gradient(lambda v: A @ v, b, iters=max(iters - 1, 0),
                                                           residual_tol=0.0) / scale,
                                "one iteration short: run exactly `iters` iterations")])
        if iters == n:
            ctx.close(A @ (got * scale), b, f"A x after n={n} iterations (CG is exact after n steps)",
                      tol=Tolerance(1e-6 * float(b.abs().max()), 0.0),
                      tol32=Tolerance(1e-3 * float(b.abs().max()), 0.0))

    with ctx.part("fewer iterations than the dimension"):
        for n, condition, iters in [(12, 1e3, 5), (10, 50.0, 2)]:
            run(n, condition, iters)
        n = int(torch.randint(5, 15, (), generator=ctx.gen))
        run(n, float(10 ** (1 + 2 * torch.rand((), generator=ctx.gen))), int(torch.randint(1, n, (), generator=ctx.gen)))
    with ctx.part("n iterations solve A x = b"):
        for n, condition in [(3, 5.0), (8, 100.0)]:
            run(n, condition, n)
        n = int(torch.randint(2, 9, (), generator=ctx.gen))
        run(n, 20.0, n)
    with ctx.part("one product Avp per iteration"):
        run(9, 30.0, 6, count_products=True)
