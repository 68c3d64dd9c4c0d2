"""Checks for Exercise 4: TRPO's backtracking line search.

Reference: ``harl_mini.trust_region.backtracking_line_search`` (Chapter 4, ``alg-trpo``).
The student's ``line_search(evaluate, expected_improvement, delta, backtrack_coeff,
max_backtracks)`` returns ``(accepted, fraction)``.
"""

from __future__ import annotations

from harl_mini.grading.core import CheckFailed, call_student, register
from harl_mini.trust_region import backtracking_line_search

__all__ = ["check_line_search"]


def _scenario(kl_at_one: float, gain_scale: float, curvature: float):
    """evaluate(f): KL grows like f², the gain like f − curvature·f² (a concave surrogate)."""
    return lambda f: (gain_scale * (f - curvature * f * f), kl_at_one * f * f)


SCENARIOS = [
    # (description, evaluate, expected_improvement, delta, coeff, max_backtracks)
    ("the full step is fine", _scenario(0.008, 0.5, 0.1), 0.6, 0.01, 0.8, 10),
    ("the full step breaks the KL limit", _scenario(0.05, 0.5, 0.1), 0.6, 0.01, 0.8, 10),
    ("long steps overshoot and lose", _scenario(0.001, 0.2, 1.5), 0.5, 0.01, 0.5, 10),
    ("nothing is acceptable", lambda f: (-0.1 * f, 0.001 * f), 0.2, 0.01, 0.8, 10),
    ("KL is fine but no step improves", lambda f: (0.0, 0.0), 0.2, 0.01, 0.8, 5),
    ("only the last allowed fraction passes", _scenario(0.9 * 0.01 / 0.25 ** 8, 1.0, 0.0), 1.0, 0.01, 0.5, 8),
    ("the KL limit binds with a coarse backtrack", _scenario(0.3, 1.0, 0.2), 1.0, 0.01, 0.3, 6),
]


@register("ex04", equation="alg-trpo")
def check_line_search(student_fn) -> None:
    """The student's line search accepts the same fraction as the reference in every scenario."""
    for description, evaluate, expected, delta, coeff, max_backtracks in SCENARIOS:
        want = backtracking_line_search(evaluate, expected, delta, coeff, max_backtracks)
        got = call_student(student_fn, evaluate, expected, delta, coeff, max_backtracks)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise CheckFailed(f"expected a tuple (accepted, fraction), got {type(got).__name__}: {got!r}")
        accepted, fraction = got
        if not isinstance(accepted, bool):
            raise CheckFailed(f"`accepted` must be a bool, got {type(accepted).__name__}")
        try:
            fraction = float(fraction)
        except (TypeError, ValueError):
            raise CheckFailed(f"`fraction` must be a number, got {fraction!r}") from None
        if accepted != want.accepted:
            verdict = "accepted a step" if accepted else "accepted nothing"
            raise CheckFailed(f"when {description}, your line search {verdict}; the reference "
                              f"{'accepts fraction ' + format(want.fraction, '.4g') if want.accepted else 'accepts nothing'}")
        if abs(fraction - want.fraction) > 1e-12:
            raise CheckFailed(f"when {description}, you returned fraction {fraction:.6g}; expected {want.fraction:.6g}"
                              + ("" if want.accepted else " (0.0 when nothing is accepted)"))
