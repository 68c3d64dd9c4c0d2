"""Checks for Exercise 6.2: what a label, or an agent identity, buys a shared policy.

A shared network that sees a label g(i) of its agent gives agents with the same label the same
policy. The student decides exactly when a labelling lets the team reach J*, finds the fewest
labels that suffice, and the largest entropy an optimal product policy can keep (what no
identity input restores). Chapter 6, "What an agent identity buys" (Section 6.3), with
eq. ``eq-shared-objective`` the case of a single label.

Oracles: ``harl_mini.tabular.sharing.label_sharing_optimal``, ``fewest_shared_policies`` and
``optimal_product_entropy`` (exact: they enumerate the optimal joint actions and the product
sets inside them). Payoffs are drawn with small integer entries, so that several joint actions
tie for the optimum (ties are compared exactly).
Tolerance: booleans and counts exactly; the entropy within 1e-9 + 1e-9·H (float64 answers) or
1e-5 + 1e-5·H (float32 answers).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from harl_mini.grading.core import CheckFailed, Tolerance, as_real, register
from harl_mini.tabular import make_game
from harl_mini.tabular.sharing import (
    argmax_set,
    fewest_shared_policies,
    label_sharing_optimal,
    optimal_product_entropy,
)

__all__ = ["check_labels_reach_optimum", "check_fewest_labels", "check_optimal_product_entropy"]

f64 = torch.float64


def _named(name: str) -> torch.Tensor:
    return make_game(name).R[0].clone()


def _random_payoff(ctx, N: int, n: int, high: int = 3) -> torch.Tensor:
    """Integer payoffs in {0, …, high − 1}: several optima tie, as in the named games."""
    return torch.randint(0, high, (n,) * N, generator=ctx.gen).to(f64)


def _planted(ctx, N: int, n: int) -> torch.Tensor:
    """A payoff whose optima contain a random product set plus a few random optimal joint actions."""
    r = torch.randint(0, 3, (n,) * N, generator=ctx.gen).to(f64)
    sets = []
    for _ in range(N):
        size = int(torch.randint(1, n + 1, (), generator=ctx.gen))
        sets.append(torch.randperm(n, generator=ctx.gen)[:size])
    grid = torch.meshgrid(*sets, indexing="ij")
    r[tuple(g.reshape(-1) for g in grid)] = 5.0
    for _ in range(2):
        r[tuple(int(i) for i in torch.randint(0, n, (N,), generator=ctx.gen))] = 5.0
    return r


def _optima(r: torch.Tensor) -> str:
    best = sorted(argmax_set(r, 0.0))
    shown = ", ".join(str(a) for a in best[:8]) + (", …" if len(best) > 8 else "")
    return f"{len(best)} optimal joint action(s), r = {float(r.max()):g}: {shown}"


def _describe(r: torch.Tensor, name: str | None = None) -> str:
    game = f"the game `{name}`" if name else f"a random payoff of shape {list(r.shape)}"
    return f"{game} with {_optima(r)}"


def _bool(out, what: str) -> bool:
    if isinstance(out, (bool, np.bool_)):
        return bool(out)
    if isinstance(out, torch.Tensor) and out.numel() == 1 and out.dtype == torch.bool:
        return bool(out.item())
    if isinstance(out, np.ndarray) and out.size == 1 and out.dtype == np.bool_:
        return bool(out.item())
    raise CheckFailed(f"{what} is a {type(out).__name__} ({str(out)[:40]}); expected True or False")


def _int(out, what: str) -> int:
    if isinstance(out, (bool, np.bool_)):
        raise CheckFailed(f"{what} is a bool ({out}); expected a whole number")
    value, _ = as_real(out, what)
    if value != round(value):
        raise CheckFailed(f"{what} is {value:g}; expected a whole number of labels")
    return int(round(value))


# --------------------------------------------------------------------------- (a)

LABEL_CASES = {
    "Proposition-1 games: roles and mixed labels": [
        ("prop1-4", (0, 0, 1, 1)), ("prop1-4", (0, 1, 0, 1)), ("prop1-4", (0, 1, 1, 0)), ("prop1-4", (7, 7, 3, 3)),
        ("prop1-6", (0, 0, 0, 1, 1, 1)), ("prop1-6", (0, 0, 1, 1, 2, 2)), ("prop1-4", (0, 0, 0, 0))],
    "symmetric games: XOR, permutation, penalty": [
        ("xor", (0, 0)), ("xor", (0, 1)), ("permutation-3", (0, 1, 2)), ("permutation-3", (0, 0, 1)),
        ("permutation-4", (0, 1, 2, 0)), ("penalty", (0, 0)), ("climbing", (4, 4))],
}


@register(function="labels_reach_optimum", equation="eq-shared-objective",
          parts={**{part: 1 for part in LABEL_CASES}, "random payoffs with tied optima": 1})
def check_labels_reach_optimum(student_fn, ctx) -> None:
    """``student_fn(payoff, labels)`` says whether agents that share one policy per label can reach J*.

    Tolerance: exact (a bool); payoffs are compared exactly, so tied optima all count.
    """
    for part, cases in LABEL_CASES.items():
        with ctx.part(part):
            for name, labels in cases:
                r = _named(name)
                _compare_labels(ctx, r, labels, _describe(r, name))
    with ctx.part("random payoffs with tied optima"):
        for N, n in [(3, 2), (3, 3), (4, 2), (4, 3), (5, 2)]:
            for _ in range(3):
                r = _random_payoff(ctx, N, n)
                labels = tuple(int(g) for g in torch.randint(0, N - 1, (N,), generator=ctx.gen))
                _compare_labels(ctx, r, labels, _describe(r))


def _compare_labels(ctx, r: torch.Tensor, labels: tuple[int, ...], described: str) -> None:
    got = _bool(ctx.call(r.clone(), labels), f"the answer for labels {labels}")
    want = label_sharing_optimal(r, labels)
    if got != want:
        best = argmax_set(r, 0.0)
        hint = None
        if got and any(len(set(a)) <= len(set(labels)) for a in best):
            hint = ("having as many labels as an optimum has distinct actions is not enough: the agents with "
                    "the same label must be the ones that play the same action in that optimum")
        elif got:
            hint = ("a labelled team reaches J* only if some optimal joint action gives equal actions to all agents "
                    "with equal labels; compare every pair of agents with the same label, not only neighbours")
        elif any(len(set(a)) == 1 for a in best) or len(best) > 1:
            hint = ("one optimum constant on every label is enough (play it deterministically); check every "
                    "optimal joint action, not just the first, and not all of them")
        raise CheckFailed(f"for labels {labels} you answered {got}, the right answer is {want}", input=described,
                          hint=hint)


# --------------------------------------------------------------------------- (b)

FEWEST_NAMED = ["xor", "prop1-4", "prop1-6", "permutation-3", "permutation-4", "climbing", "penalty",
                "zhong-example1"]


@register(function="fewest_labels", equation="eq-shared-objective",
          parts={"the games of Chapter 6": 1, "random payoffs with tied optima": 1})
def check_fewest_labels(student_fn, ctx) -> None:
    """``student_fn(payoff)`` returns the fewest labels (distinct shared policies) with which the team reaches J*.

    Tolerance: exact (a whole number; an int, an integral float or a 0-d tensor).
    """
    with ctx.part("the games of Chapter 6"):
        for name in FEWEST_NAMED:
            r = _named(name)
            _compare_fewest(ctx, r, _describe(r, name))
    with ctx.part("random payoffs with tied optima"):
        for N, n in [(3, 3), (4, 3), (4, 4), (5, 3)]:
            for _ in range(3):
                r = _random_payoff(ctx, N, n, high=2 if N >= 4 else 3)
                _compare_fewest(ctx, r, _describe(r))


def _compare_fewest(ctx, r: torch.Tensor, described: str) -> None:
    got = _int(ctx.call(r.clone()), "the number of labels")
    want = fewest_shared_policies(r)
    if got != want:
        best = sorted(argmax_set(r, 0.0))
        counts = [len(set(a)) for a in best]
        hint = None
        if got == max(counts) and got != want:
            hint = "you may choose the optimum the labels follow: take the one with the fewest distinct actions"
        elif got == counts[0]:
            hint = "look at every optimal joint action, not only the first one"
        elif got == r.dim():
            hint = "a full identity always works, but fewer labels often do: agents playing the same action can share"
        raise CheckFailed(f"the fewest labels is {want}, you answered {got}", input=described, hint=hint)


# --------------------------------------------------------------------------- (c)


def _entropy_mistakes(r: torch.Tensor) -> list[tuple[float, str]]:
    best = argmax_set(r, 0.0)
    proj = sum(math.log(len({a[i] for a in best})) for i in range(r.dim()))
    return [(math.log(len(best)), "log |argmax r| is what an autoregressive policy keeps; a product policy's support "
                                  "is a product set B_1 × … × B_N, which must fit inside argmax r"),
            (proj, "each agent's support cannot be all the actions it plays in some optimum: every combination of "
                   "the agents' supports must be optimal"),
            (optimal_product_entropy(r) / math.log(2), "entropies in this book are in nats (natural logarithm)")]


@register(function="optimal_product_entropy", equation="eq-shared-objective",
          parts={"the games of Chapter 6": 1, "optima that contain a product set": 1, "random payoffs": 1},
          tol=Tolerance(atol=1e-9, rtol=1e-9), tol32=Tolerance(atol=1e-5, rtol=1e-5))
def check_optimal_product_entropy(student_fn, ctx) -> None:
    """``student_fn(payoff)`` returns the largest Σ_i H(π^i) (nats) of a product policy that attains J*.

    Tolerance: |got − H| ≤ 1e-9 + 1e-9·H (float64 answers), ≤ 1e-5 + 1e-5·H (float32 answers).
    """
    fixed = [("xor", None), ("permutation-3", None), ("permutation-4", None), ("penalty", None), ("prop1-4", None),
             ("constant 3 × 3 payoff", torch.ones(3, 3, dtype=f64)),
             ("two optimal rows", torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=f64))]
    with ctx.part("the games of Chapter 6"):
        for name, r in fixed:
            r = _named(name) if r is None else r
            _compare_entropy(ctx, r, _describe(r, name))
    with ctx.part("optima that contain a product set"):
        for N, n in [(2, 3), (3, 3), (3, 4), (4, 3)]:
            r = _planted(ctx, N, n)
            _compare_entropy(ctx, r, _describe(r))
    with ctx.part("random payoffs"):
        for N, n in [(2, 4), (3, 2), (3, 3), (4, 2)]:
            r = _random_payoff(ctx, N, n, high=2)
            _compare_entropy(ctx, r, _describe(r))


def _compare_entropy(ctx, r: torch.Tensor, described: str) -> None:
    ctx.real(ctx.call(r.clone()), optimal_product_entropy(r), "the largest entropy", describe=described,
             hints=_entropy_mistakes(r))
