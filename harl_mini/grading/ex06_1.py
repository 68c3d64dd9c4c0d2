"""Checks for Exercise 6.1: the best shared policy of a game you analyse.

A shared policy gives every agent the same distribution (θ, 1 − θ) over two actions (θ the
probability of action 0), and the team earns J_share(θ) of Chapter 6, eq.
``eq-shared-objective``. The student finds J*_share = max_θ J_share(θ) in closed form for any
two-agent, two-action payoff, a maximising θ, and J*_share of the game that pays 1 when
exactly k of n agents play action 1 (the symmetric version of the Proposition-1 game).

Oracle: ``harl_mini.tabular.sharing.shared_optimum_two_actions`` (exact: the endpoints and the
real roots of J_share's derivative), and ``harl_mini.tabular.shared_objective`` for the value
of the student's θ.
Tolerance: values within 1e-9 + 1e-9·|J*_share| (float64 answers) or 1e-5 + 1e-5·|J*_share|
(float32 answers). Closed forms are exact to rounding (about 1e-15 here); a grid search or a
few gradient steps are not, and fail.
"""

from __future__ import annotations

import itertools
import math

import torch

from harl_mini.grading.core import CheckFailed, Tolerance, as_real, register
from harl_mini.tabular import matrix_game, shared_objective
from harl_mini.tabular.sharing import shared_optimum_two_actions

__all__ = ["check_best_shared_value", "check_best_shared_theta", "check_k_of_n_value"]

f64 = torch.float64
TOL = Tolerance(atol=1e-9, rtol=1e-9)
TOL32 = Tolerance(atol=1e-5, rtol=1e-5)


def _coefficients(r: torch.Tensor) -> tuple[float, float, float]:
    """J_share(θ) = A θ² + B θ + C for a 2 × 2 payoff (used for hints and for drawing games)."""
    s = float(r[0, 1] + r[1, 0])
    return float(r[0, 0]) - s + float(r[1, 1]), s - 2 * float(r[1, 1]), float(r[1, 1])


def _from_coefficients(A: float, theta_star: float, C: float, split: float) -> torch.Tensor:
    """A 2 × 2 payoff with J_share(θ) = A (θ − θ*)² + …, r(1, 1) = C, r(0, 1) = split · (r(0, 1) + r(1, 0))."""
    B = -2.0 * A * theta_star
    s = B + 2.0 * C
    return torch.tensor([[A + s - C, split * s], [(1 - split) * s, C]], dtype=f64)


def _draw(ctx, kind: str) -> torch.Tensor:
    u = lambda low, high: low + (high - low) * float(torch.rand((), generator=ctx.gen, dtype=f64))  # noqa: E731
    if kind == "inside":  # concave, maximum inside (0, 1)
        return _from_coefficients(u(-3.0, -0.5), u(0.1, 0.9), u(-1.0, 1.0), u(0.0, 1.0))
    if kind == "convex":  # the stationary point inside (0, 1) is a minimum
        return _from_coefficients(u(0.5, 3.0), u(0.1, 0.9), u(-1.0, 1.0), u(0.0, 1.0))
    if kind == "outside":  # concave, stationary point beyond 1: the maximum is θ = 1
        return _from_coefficients(u(-3.0, -0.5), u(1.2, 2.0), u(-1.0, 1.0), u(0.0, 1.0))
    return torch.randn(2, 2, generator=ctx.gen, dtype=f64)  # anything, r(0, 1) ≠ r(1, 0)


def _describe(r: torch.Tensor) -> str:
    A, B, C = _coefficients(r)
    rows = [[round(float(x), 6) for x in row] for row in r]
    sign = lambda x: "+" if x >= 0 else "−"  # noqa: E731
    return (f"the payoff r = {rows} (row: agent 1's action, column: agent 2's), so J_share(θ) = "
            f"{A:.6g} θ² {sign(B)} {abs(B):.6g} θ {sign(C)} {abs(C):.6g}")


def _mistakes(r: torch.Tensor) -> list[tuple[float, str]]:
    """What the known wrong answers give on r, with the hint for each."""
    A, B, C = _coefficients(r)
    J = lambda t: A * t * t + B * t + C  # noqa: E731
    out = []
    if A != 0:
        vertex = -B / (2 * A)
        if 0 <= vertex <= 1 and A > 0:
            out.append((J(vertex), "J_share is convex here (the coefficient of θ² is positive): its stationary "
                                   "point is a minimum, so the maximum is at θ = 0 or θ = 1"))
        if A < 0 and not 0 <= vertex <= 1:
            out.append((J(vertex), f"the stationary point θ = {vertex:.4g} is outside [0, 1]: θ is a probability, "
                                   "so the maximum is at the nearer endpoint"))
    out.append((float(r.max()), "that is J*, the best joint action; a shared policy gives both agents the same "
                                "(θ, 1 − θ), so it cannot pick an off-diagonal joint action for sure"))
    out.append((max(float(r[0, 0]), float(r[1, 1])), "θ may lie strictly between 0 and 1: with mixed play the "
                                                       "off-diagonal payoffs count, θ(1 − θ)(r(0, 1) + r(1, 0))"))
    s2 = 2 * float(r[0, 1])
    A2, B2 = float(r[0, 0]) - s2 + float(r[1, 1]), s2 - 2 * float(r[1, 1])
    cands = [0.0, 1.0] + ([-B2 / (2 * A2)] if A2 < 0 and 0 < -B2 / (2 * A2) < 1 else [])
    out.append((max(A2 * t * t + B2 * t + C for t in cands),
                "both off-diagonal joint actions count, with their own payoffs: θ(1 − θ)(r(0, 1) + r(1, 0)), "
                "not 2 θ(1 − θ) r(0, 1)"))
    return out


FIXED = {
    "maximum inside (0, 1): XOR, HARL's Example 1": [[[0.0, 1.0], [1.0, 0.0]], [[0.0, 2.0], [2.0, -1.0]]],
    "asymmetric payoffs, r(0, 1) ≠ r(1, 0)": [[[0.0, 3.0], [-1.0, 0.0]], [[1.0, -2.0], [4.0, 0.5]]],
    "convex J_share: the stationary point is a minimum": [[[3.0, -2.0], [-2.0, 1.0]], [[1.0, -1.0], [-1.0, 2.0]]],
    "concave J_share, stationary point outside [0, 1]": [[[2.0, 1.5], [1.5, 0.0]], [[-1.5, 0.5], [0.0, 1.0]]],
}
KIND = {"maximum inside (0, 1): XOR, HARL's Example 1": "inside", "asymmetric payoffs, r(0, 1) ≠ r(1, 0)": "any",
        "convex J_share: the stationary point is a minimum": "convex",
        "concave J_share, stationary point outside [0, 1]": "outside"}


def _cases(ctx, part: str, draws: int = 2) -> list[torch.Tensor]:
    return [torch.tensor(r, dtype=f64) for r in FIXED[part]] + [_draw(ctx, KIND[part]) for _ in range(draws)]


@register(function="best_shared_value", equation="eq-shared-objective", parts={part: 1 for part in FIXED},
          tol=TOL, tol32=TOL32)
def check_best_shared_value(student_fn, ctx) -> None:
    """``student_fn(payoff)`` returns J*_share = max over θ in [0, 1] of J_share(θ) for a [2, 2] payoff.

    Tolerance: |got − J*_share| ≤ 1e-9 + 1e-9·|J*_share| (float64 answers), ≤ 1e-5 + 1e-5·|J*_share|
    (float32 answers), for any real scalar type.
    """
    for part in FIXED:
        with ctx.part(part):
            for r in _cases(ctx, part):
                want = shared_optimum_two_actions(r).value
                ctx.real(ctx.call(r.clone()), want, "J*_share", describe=_describe(r), hints=_mistakes(r))


@register(function="best_shared_theta", equation="eq-shared-objective",
          parts={part: 1 for part in FIXED if part != "asymmetric payoffs, r(0, 1) ≠ r(1, 0)"}, tol=TOL, tol32=TOL32)
def check_best_shared_theta(student_fn, ctx) -> None:
    """``student_fn(payoff)`` returns a θ in [0, 1] whose shared policy (θ, 1 − θ) attains J*_share.

    Any maximiser is accepted (where two θ tie, either one): the check evaluates J_share at
    your θ exactly and compares it with J*_share.

    Tolerance: θ in [−1e-12, 1 + 1e-12]; J_share(θ) ≥ J*_share − (1e-9 + 1e-9·|J*_share|) (float64
    answers), − (1e-5 + 1e-5·|J*_share|) (float32 answers).
    """
    for part in FIXED:
        if part == "asymmetric payoffs, r(0, 1) ≠ r(1, 0)":
            continue
        with ctx.part(part):
            for r in _cases(ctx, part):
                theta, lowp = as_real(ctx.call(r.clone()), "θ")
                if not -1e-12 <= theta <= 1 + 1e-12:
                    raise CheckFailed(f"θ = {theta:.6g} is not a probability (expected 0 ≤ θ ≤ 1)",
                                      input=_describe(r),
                                      hint="the stationary point of J_share can lie outside [0, 1]; θ is the "
                                           "probability of action 0, so compare the endpoints then")
                t = min(max(theta, 0.0), 1.0)
                got = float(shared_objective(matrix_game(r), torch.tensor([t, 1.0 - t], dtype=f64)))
                best = shared_optimum_two_actions(r)
                tol = TOL32 if lowp else TOL
                if got < best.value - (tol.atol + tol.rtol * abs(best.value)):
                    A, B, _ = _coefficients(r)
                    hint = None
                    if abs(t - (1 - float(best.policy[0, 0]))) < 1e-9 and abs(t - float(best.policy[0, 0])) > 1e-9:
                        hint = "θ is the probability of action 0, and (θ, 1 − θ) the shared policy: you returned 1 − θ"
                    elif A > 0 and abs(t + B / (2 * A)) < 1e-9:
                        hint = ("J_share is convex here: its stationary point is a minimum; the maximum is at "
                                "θ = 0 or θ = 1")
                    elif abs(t - 0.5) < 1e-12:
                        hint = "θ = 1/2 is best for XOR, not for every game: maximise this game's J_share"
                    raise CheckFailed(f"your θ = {theta:.6g} gives J_share(θ) = {got:.8g}, but J*_share = "
                                      f"{best.value:.8g} (at θ = {float(best.policy[0, 0]):.6g})",
                                      input=_describe(r), hint=hint)


def _k_of_n_payoff(n: int, k: int) -> torch.Tensor:
    """r(a) = 1 if exactly k of the n agents play action 1, else 0 (shape [2] * n)."""
    r = torch.zeros((2,) * n, dtype=f64)
    for a in itertools.product((0, 1), repeat=n):
        if sum(a) == k:
            r[a] = 1.0
    return r


def _k_of_n_mistakes(n: int, k: int) -> list[tuple[float, str]]:
    q = k / n
    return [(math.comb(n, k) / 2**n, "θ = 1/2 maximises the Proposition-1 game, not this one: with C(n, k) rewarded "
                                     "joint actions, each of probability (1 − θ)^k θ^(n−k), maximise over θ"),
            (q**k * (1 - q) ** (n - k), "count the rewarded joint actions: any k of the n agents may play 1, "
                                        "so there are C(n, k) of them"),
            (2 * 0.25 ** (n / 2), "that is the Proposition-1 game, where the two halves are fixed; here any k "
                                  "agents may play 1")]


@register(function="k_of_n_value", equation="eq-shared-objective",
          parts={"k = n/2, n even (no fixed roles)": 1, "any 0 < k < n": 1, "k = 0 and k = n": 1}, tol=TOL, tol32=TOL32)
def check_k_of_n_value(student_fn, ctx) -> None:
    """``student_fn(n, k)`` returns J*_share of the n-agent game that pays 1 when exactly k agents play action 1.

    Tolerance: |got − J*_share| ≤ 1e-9 + 1e-9·J*_share (float64 answers), ≤ 1e-5 + 1e-5·J*_share
    (float32 answers), for any real scalar type.
    """
    randint = lambda low, high: int(torch.randint(low, high + 1, (), generator=ctx.gen))  # noqa: E731
    n_even = 2 * randint(3, 5)
    n_any = randint(3, 10)
    cases = {"k = n/2, n even (no fixed roles)": [(2, 1), (4, 2), (n_even, n_even // 2)],
             "any 0 < k < n": [(3, 1), (5, 2), (n_any, randint(1, n_any - 1)), (9, 8)],
             "k = 0 and k = n": [(4, 0), (7, 7), (n_any, 0)]}
    for part, pairs in cases.items():
        with ctx.part(part):
            for n, k in pairs:
                want = shared_optimum_two_actions(_k_of_n_payoff(n, k)).value
                ctx.real(ctx.call(n, k), want, f"J*_share for n={n}, k={k}",
                         describe=f"the game with n={n} agents that pays 1 when exactly k={k} of them play action 1",
                         hints=_k_of_n_mistakes(n, k))
