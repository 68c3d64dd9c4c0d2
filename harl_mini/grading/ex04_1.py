"""Checks for Exercise 4.1: TRPO's backtracking line search.

Oracle: ``harl_mini.trust_region.backtracking_line_search`` (Chapter 4, ``alg-trpo``, step 7).
The student's ``line_search(evaluate, expected_improvement, delta, backtrack_coeff,
max_backtracks)`` returns ``(accepted, fraction)``. Tolerance: ``accepted`` must agree
exactly (any bool: Python, numpy or a one-element tensor) and ``fraction`` (any real scalar)
within 1e-12 of the oracle's.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from harl_mini.grading.core import CheckFailed, Tolerance, as_real, register
from harl_mini.trust_region import backtracking_line_search

__all__ = ["check_line_search"]


def _scenario(kl_at_one: float, gain_scale: float, curvature: float):
    """evaluate(f): KL grows like f², the gain like f − curvature·f² (a concave surrogate)."""
    return lambda f: (gain_scale * (f - curvature * f * f), kl_at_one * f * f)


#: part -> (evaluate, expected_improvement, delta, coeff, max_backtracks)
SCENARIOS = {
    "the full step is fine": (_scenario(0.008, 0.5, 0.1), 0.6, 0.01, 0.8, 10),
    "the full step breaks the KL limit": (_scenario(0.05, 0.5, 0.1), 0.6, 0.01, 0.8, 10),
    "long steps overshoot and lose": (_scenario(0.001, 0.2, 1.5), 0.5, 0.01, 0.5, 10),
    "nothing is acceptable": (lambda f: (-0.1 * f, 0.001 * f), 0.2, 0.01, 0.8, 10),
    "KL is fine but no step improves": (lambda f: (0.0, 0.0), 0.2, 0.01, 0.8, 5),
    "only the last allowed fraction passes": (_scenario(0.9 * 0.01 / 0.25 ** 8, 1.0, 0.0), 1.0, 0.01, 0.5, 8),
    "the KL limit binds with a coarse backtrack": (_scenario(0.3, 1.0, 0.2), 1.0, 0.01, 0.3, 6),
}


def _as_bool(value, what: str) -> bool:
    """Any bool: Python, numpy, or a one-element bool tensor/array."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool and value.numel() == 1:
        return bool(value.item())
    if isinstance(value, np.ndarray) and value.dtype == np.bool_ and value.size == 1:
        return bool(value.item())
    raise CheckFailed(f"{what} must be a bool (True or False), got {type(value).__name__}: {value!r}"[:300])


def _describe(part: str, case) -> str:
    evaluate, _, delta, coeff, max_backtracks = case
    gain, kl = evaluate(1.0)
    return (f"{part}: at the full step (f = 1) the gain is {gain:.3g} and the KL {kl:.3g}; delta = {delta}, "
            f"backtrack_coeff = {coeff}, max_backtracks = {max_backtracks}")


def _random_scenario(gen: torch.Generator):
    """A concave surrogate and a quadratic KL with random constants, away from ties at the boundaries."""
    while True:
        u = torch.rand(5, generator=gen, dtype=torch.float64).tolist()
        kl_at_one = 10 ** (-4 + 4 * u[0])
        gain, curvature = 0.1 + 2 * u[1], 2 * u[2]
        coeff, max_backtracks, delta = round(0.3 + 0.6 * u[3], 3), 3 + int(10 * u[4]), 0.01
        evaluate = _scenario(kl_at_one, gain, curvature)
        fractions = [coeff ** j for j in range(max_backtracks + 1)]
        if all(abs(kl_at_one * f * f - delta) > 1e-6 * delta and abs(gain * (f - curvature * f * f)) > 1e-9
               for f in fractions):
            description = (f"KL(f) = {kl_at_one:.3g}·f², gain(f) = {gain:.3g}·(f − {curvature:.3g}·f²), "
                           f"delta = {delta}, backtrack_coeff = {coeff}, max_backtracks = {max_backtracks}")
            return description, (evaluate, gain, delta, coeff, max_backtracks)


def _diagnose(got_accepted, got_fraction, want, evaluate, delta, coeff, max_backtracks) -> str | None:
    """A hint for the classic mistakes, from what the student's answer does."""
    if got_accepted and got_fraction > 0:
        improvement, kl = evaluate(got_fraction)
        if kl > delta:
            return f"at your fraction the KL is {kl:.3g} > delta: accept only steps with KL ≤ delta"
        if improvement <= 0:
            return f"at your fraction the surrogate gain is {improvement:.3g} ≤ 0: a step must also improve"
        power = math.log(got_fraction, 0.5)
        if coeff != 0.5 and got_fraction < 1 and abs(power - round(power)) < 1e-9:
            return "try the fractions 1, c, c², … with c = backtrack_coeff"
    if not want.accepted and not got_accepted and got_fraction != 0.0:
        return "when nothing is accepted return (False, 0.0): the parameters stay where they were"
    if want.accepted and not got_accepted and abs(want.fraction - coeff ** max_backtracks) < 1e-15:
        return "try max_backtracks + 1 fractions in all: 1, c, …, c^max_backtracks"
    return None


@register(function="line_search", equation="alg-trpo", parts={**{part: 1 for part in SCENARIOS}, "random scenarios": 1},
          tol=Tolerance(atol=1e-12, rtol=0.0), tol32=Tolerance(atol=1e-7, rtol=0.0))
def check_line_search(student_fn, ctx) -> None:
    """The student's line search accepts the same fraction as the oracle in every scenario.

    Tolerance: `accepted` exactly; |fraction − expected| ≤ 1e-12 (≤ 1e-7 if returned as float32).
    """
    runs = [(part, [(_describe(part, case), case)]) for part, case in SCENARIOS.items()]
    runs.append(("random scenarios", [_random_scenario(ctx.gen) for _ in range(6)]))
    for part, cases in runs:
        with ctx.part(part):
            for description, (evaluate, expected, delta, coeff, max_backtracks) in cases:
                want = backtracking_line_search(evaluate, expected, delta, coeff, max_backtracks)
                got = ctx.call(evaluate, expected, delta, coeff, max_backtracks)
                if not (isinstance(got, (tuple, list)) and len(got) == 2):
                    raise CheckFailed(f"expected a pair (accepted, fraction), got {type(got).__name__}: {got!r}"[:300],
                                      input=description)
                accepted = _as_bool(got[0], "`accepted`")
                fraction, lowp = as_real(got[1], "`fraction`")
                verdict = f"accepted fraction {fraction:.6g}" if accepted else "accepted nothing"
                oracle = f"accepts fraction {want.fraction:.6g}" if want.accepted else "accepts nothing"
                tol = ctx.tol32 if lowp else ctx.tol
                if accepted != want.accepted or abs(fraction - want.fraction) > tol.atol:
                    hint = _diagnose(accepted, fraction, want, evaluate, delta, coeff, max_backtracks)
                    if accepted == want.accepted and not accepted:
                        message = f"your line search accepted nothing but returned fraction {fraction:.6g}; expected 0.0"
                    else:
                        message = f"your line search {verdict}; the oracle {oracle}"
                    raise CheckFailed(message, input=description, hint=hint)
