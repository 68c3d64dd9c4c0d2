"""Checks for Exercise 6: the best shared policy on the game of Proposition 1 (the optimiser
always tries the uniform policy, the optimum here, so one extra restart suffices).

References: ``harl_mini.tabular.shared_objective`` (Chapter 6, eq. ``eq-shared-objective``)
on ``harl_mini.tabular.prop1_game(n)``, and ``harl_mini.tabular.best_shared_policy``.
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import CheckFailed, call_student, expect_close, expect_tensor, register
from harl_mini.tabular import best_shared_policy, prop1_game, shared_objective

__all__ = ["check_shared_objective", "check_best_shared_value"]


@register("ex06", equation="eq-shared-objective")
def check_shared_objective(student_fn) -> None:
    """``student_fn(theta, n)`` returns J(θ) for the shared policy (θ, 1 − θ), for a [K] tensor of θ."""
    gen = torch.Generator().manual_seed(6)
    for n in (2, 4, 6, 10):
        theta = torch.cat([torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64),
                           torch.rand(9, generator=gen, dtype=torch.float64)])
        out = expect_tensor(call_student(student_fn, theta, n), tuple(theta.shape), f"J(theta) for n={n}")
        game = prop1_game(n)
        want = torch.stack([shared_objective(game, torch.stack([t, 1 - t])) for t in theta])
        expect_close(out, want, f"J(theta) for n={n}", atol=1e-10)


@register("ex06", equation="eq-shared-objective")
def check_best_shared_value(student_fn) -> None:
    """``student_fn(n)`` returns J*_share, the largest J a shared policy reaches, as a float."""
    for n in (2, 4, 6, 8):
        got = call_student(student_fn, n)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise CheckFailed(f"for n={n} expected a number, got {type(got).__name__}: {got!r}")
        want = best_shared_policy(prop1_game(n), restarts=1).value
        if not abs(got - want) <= 1e-6 * max(1.0, abs(want)):
            raise CheckFailed(f"J*_share for n={n} is {want:.6g}; you returned {got:.6g}")
