"""Checks for Exercise 6.3: VDN on exploration data.

VDN fits Q_tot(a) = Σ_i q_i(a^i) (Chapter 6, eq. ``eq-vdn``) by least squares on the joint
actions its agents played. When each agent explores on its own, the data is a product
distribution w(a) = Π_i w_i(a^i) (ε_greedy exploration is one). The student finds the fit, the
joint action decentralised greedy agents pick from it, and the joint actions where VDN trained
on ε_greedy data around its own greedy joint action comes to rest.

Oracles: ``harl_mini.tabular.vdn_fit(payoff, weights=w)`` (weighted least squares through a
pseudo-inverse) for Q_tot and its per-agent utilities, whose argmax sets (ties within 1e-9)
define the greedy joint actions; ``harl_mini.tabular.sharing.iql_fixed_points`` for the rest
points (the condition is the same: see the exercise).
Tolerance: Q_tot within 1e-8 + 1e-6·|Q_tot| (float64 answers) or 1e-5 + 1e-4·|Q_tot| (float32
answers); a joint action must lie in the product of the agents' argmax sets (any tie is
accepted); the rest points are compared as a set.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from harl_mini.grading.core import CheckFailed, register
from harl_mini.tabular import climbing_game, joint_policy, make_game, matrix_game, vdn_fit
from harl_mini.tabular.sharing import argmax_set, epsilon_greedy_policies, iql_fixed_points

__all__ = ["check_vdn_fit", "check_vdn_greedy", "check_vdn_rest_points"]

f64 = torch.float64


def _weights(marginals: list[torch.Tensor]) -> torch.Tensor:
    return joint_policy([m.reshape(1, -1) for m in marginals])[0]


def _uniform(r: torch.Tensor) -> list[torch.Tensor]:
    return [torch.full((n,), 1.0 / n, dtype=f64) for n in r.shape]


def _eps_greedy(r: torch.Tensor, a: tuple[int, ...], eps: float) -> list[torch.Tensor]:
    return [p[0] for p in epsilon_greedy_policies(matrix_game(r), a, eps)]


def _random_marginals(ctx, r: torch.Tensor) -> list[torch.Tensor]:
    out = []
    for n in r.shape:
        m = torch.rand(n, generator=ctx.gen, dtype=f64) + 0.05
        out.append(m / m.sum())
    return out


def _describe(r: torch.Tensor, marginals: list[torch.Tensor], name: str | None = None) -> str:
    game = f"the game `{name}`" if name else f"a random payoff of shape {list(r.shape)}"
    data = "; ".join(f"w_{i + 1} = {[round(float(x), 4) for x in m]}" for i, m in enumerate(marginals))
    return f"{game}, data w(a) = Π_i w_i(a^i) with {data}"


def _cases(ctx, part: str):
    """(name or None, payoff, marginals) for each part."""
    climbing = climbing_game().R[0]
    if part == "uniform data, two agents":
        xor = make_game("xor").R[0]
        return [("xor", xor, _uniform(xor)), ("climbing", climbing, _uniform(climbing)),
                (None, (r := torch.randn(3, 4, generator=ctx.gen, dtype=f64)), _uniform(r))]
    if part == "uniform data, three or four agents":
        perm = make_game("permutation-3").R[0]
        return [("permutation-3", perm, _uniform(perm)),
                (None, (r := torch.randn(2, 3, 2, generator=ctx.gen, dtype=f64)), _uniform(r)),
                (None, (r4 := torch.randn(2, 2, 3, 2, generator=ctx.gen, dtype=f64)), _uniform(r4))]
    if part == "ε_greedy data around a joint action":
        a = tuple(int(torch.randint(0, n, (), generator=ctx.gen)) for n in (3, 3))
        r = torch.randn(3, 3, 2, generator=ctx.gen, dtype=f64)
        b = tuple(int(torch.randint(0, n, (), generator=ctx.gen)) for n in r.shape)
        return [("climbing", climbing, _eps_greedy(climbing, (0, 0), 0.2)),
                ("climbing", climbing, _eps_greedy(climbing, a, 0.1)),
                (None, r, _eps_greedy(r, b, 0.3))]
    # random product data, unequal action counts
    shapes = [(2, 3), (3, 2, 4), (2, 3, 2, 2)]
    out = []
    for shape in shapes:
        r = torch.randn(*shape, generator=ctx.gen, dtype=f64)
        out.append((None, r, _random_marginals(ctx, r)))
    return out


PARTS = ["uniform data, two agents", "uniform data, three or four agents", "ε_greedy data around a joint action",
         "random product data, unequal action counts"]


def _main_effects(r: torch.Tensor, marginals: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The weighted mean of r and each agent's conditional mean E_w[r | a^i] (for hints)."""
    N = r.dim()
    w = _weights(marginals)
    mean = (w * r).sum()
    conditional = []
    for i in range(N):
        others = [j for j in range(N) if j != i]
        conditional.append((w * r).sum(dim=others) / marginals[i])
    return mean, conditional


def _additive(parts: list[torch.Tensor]) -> torch.Tensor:
    N = len(parts)
    out = 0.0
    for i, q in enumerate(parts):
        out = out + q.reshape([-1 if j == i else 1 for j in range(N)])
    return out


def _fit_mistakes(r: torch.Tensor, marginals: list[torch.Tensor]):
    mean, cond = _main_effects(r, marginals)
    uniform = vdn_fit(r).Q_tot
    return [(lambda: uniform, "the data are not uniform here: weight every joint action by w(a) = Π_i w_i(a^i)"),
            (lambda: _additive(cond), "Σ_i E[r | a^i] counts the overall mean N times: subtract (N − 1) E_w[r]"),
            (lambda: r.clone(), "Q_tot must be additive, Σ_i q_i(a^i); the payoff itself is not (its interaction "
                                "terms are what VDN cannot fit)")]


@register(function="vdn_fit", equation="eq-vdn", parts={part: 1 for part in PARTS})
def check_vdn_fit(student_fn, ctx) -> None:
    """``student_fn(payoff, marginals)`` returns the least-squares additive fit Q_tot under w(a) = Π_i w_i(a^i).

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|Q_tot| (float64 answers), ≤ 1e-5 + 1e-4·|Q_tot| (float32 answers).
    """
    for part in PARTS:
        with ctx.part(part):
            for name, r, marginals in _cases(ctx, part):
                want = vdn_fit(r, weights=_weights(marginals)).Q_tot
                out = ctx.call(r.clone(), [m.clone() for m in marginals])
                ctx.close(out, want, "Q_tot", where=lambda idx: f"joint action {tuple(idx)}",
                          describe=lambda idx, r=r, m=marginals, name=name: _describe(r, m, name),
                          hints=_fit_mistakes(r, marginals))


def _joint_action(out, N: int, shape) -> tuple[int, ...]:
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().reshape(-1).tolist()
    elif isinstance(out, np.ndarray):
        out = out.reshape(-1).tolist()
    if not isinstance(out, (list, tuple)):
        raise CheckFailed(f"the joint action is a {type(out).__name__} ({str(out)[:40]}); expected a tuple of "
                          f"{N} actions")
    try:
        a = tuple(int(x) for x in out)
        if any(float(x) != y for x, y in zip(out, a)):
            raise ValueError
    except (TypeError, ValueError):
        raise CheckFailed(f"the joint action {str(out)[:60]} is not a tuple of whole numbers") from None
    if len(a) != N or any(not 0 <= x < n for x, n in zip(a, shape)):
        raise CheckFailed(f"{a} is not a joint action of a game with action counts {tuple(shape)}")
    return a


def _greedy_sets(r: torch.Tensor, marginals: list[torch.Tensor]) -> list[list[int]]:
    fit = vdn_fit(r, weights=_weights(marginals))
    return [sorted(b for (b,) in argmax_set(q, 1e-9)) for q in fit.q_locals]


GREEDY_PARTS = ["uniform data, two agents", "ε_greedy data around a joint action",
                "random product data, unequal action counts"]


@register(function="vdn_greedy", equation="eq-igm", parts={part: 1 for part in GREEDY_PARTS})
def check_vdn_greedy(student_fn, ctx) -> None:
    """``student_fn(payoff, marginals)`` returns the joint action that agents greedy on their own VDN utilities pick.

    Tolerance: exact; where an agent's utilities tie (within 1e-9), any of the tied actions is accepted.
    """
    for part in GREEDY_PARTS:
        with ctx.part(part):
            for name, r, marginals in _cases(ctx, part):
                a = _joint_action(ctx.call(r.clone(), [m.clone() for m in marginals]), r.dim(), r.shape)
                sets = _greedy_sets(r, marginals)
                if not all(x in s for x, s in zip(a, sets)):
                    hint = None
                    if a in argmax_set(r, 1e-9):
                        hint = ("that is an optimum of the payoff; VDN's agents act on their utilities q_i, which "
                                "average the payoff over the other agents' data")
                    elif all(x in s for x, s in zip(a, _greedy_sets(r, _uniform(r)))):
                        hint = "that is the greedy joint action of the fit to uniform data; use the data w"
                    want = tuple(s[0] for s in sets)
                    raise CheckFailed(f"your joint action {a} is not greedy for the VDN utilities; the greedy joint "
                                      f"action is {want}", input=_describe(r, marginals, name), hint=hint)


def _as_set(out, N: int, shape) -> set[tuple[int, ...]]:
    if isinstance(out, torch.Tensor) or isinstance(out, np.ndarray):
        out = out.tolist() if out.ndim == 2 else out
    if isinstance(out, (str, bytes)) or not isinstance(out, (list, tuple, set, frozenset)):
        raise CheckFailed(f"the rest points are a {type(out).__name__} ({str(out)[:40]}); expected a list of "
                          "joint actions (tuples)")
    return {_joint_action(a, N, shape) for a in out}


def _pure_nash(r: torch.Tensor) -> set[tuple[int, ...]]:
    """Joint actions where no single agent gains by deviating (the ε = 0 limit; for hints)."""
    out = set()
    for a in itertools.product(*(range(n) for n in r.shape)):
        if all(float(r[a]) >= float(r[a[:i] + (b,) + a[i + 1:]]) - 1e-12 for i in range(r.dim())
               for b in range(r.shape[i])):
            out.add(a)
    return out


@register(function="vdn_rest_points", equation="eq-vdn",
          parts={"the climbing game": 1, "random two-agent payoffs": 1, "random three-agent payoffs": 1})
def check_vdn_rest_points(student_fn, ctx) -> None:
    """``student_fn(payoff, eps)`` lists the joint actions a that VDN, fit to ε_greedy data around a, keeps greedy.

    Tolerance: compared as sets of joint actions (any order; a joint action whose utilities tie within 1e-9
    counts as greedy, as in ``iql_fixed_points``).
    """
    climbing = climbing_game().R[0]
    eps_draw = 0.05 + 0.4 * float(torch.rand((), generator=ctx.gen, dtype=f64))
    cases = {"the climbing game": [("climbing", climbing, e) for e in (0.05, 0.1, 0.2, 0.5)],
             "random two-agent payoffs": [(None, torch.randn(3, 3, generator=ctx.gen, dtype=f64), e)
                                          for e in (0.1, 0.3, eps_draw)],
             "random three-agent payoffs": [(None, torch.randn(2, 3, 3, generator=ctx.gen, dtype=f64), e)
                                            for e in (0.2, eps_draw)]}
    for part, runs in cases.items():
        with ctx.part(part):
            for name, r, eps in runs:
                got = _as_set(ctx.call(r.clone(), eps), r.dim(), r.shape)
                want = set(iql_fixed_points(matrix_game(r), eps))
                if got != want:
                    hint = None
                    if got == argmax_set(r, 1e-9):
                        hint = "those are the optima of the payoff; VDN can settle elsewhere, and miss the optimum"
                    elif got == _pure_nash(r):
                        hint = ("those are the pure Nash equilibria (no exploration); with ε_greedy data each agent's "
                                "utility averages over the others' exploration")
                    elif len(got) <= 1:
                        hint = ("the data depend on the joint action a being tested: fit VDN to ε_greedy data around "
                                "each candidate a in turn")
                    game = f"the game `{name}`" if name else f"a random payoff of shape {list(r.shape)}"
                    raise CheckFailed(f"at ε_greedy = {eps:.4g} the rest points are {sorted(want)}, you gave "
                                      f"{sorted(got)}", input=game, hint=hint)
