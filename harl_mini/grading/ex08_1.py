"""Checks for Exercise 8.1: the pieces of HAPPO and HATRPO.

Oracles: ``harl_mini.marl.runner.update_factor`` (the M recursion, Chapter 8,
eq. ``eq-ma-estimator``), ``harl_mini.marl.runner.happo_objective`` (eq. ``eq-happo-objective``),
and for HATRPO's step (eq. ``eq-hatrpo-step``, ``alg-hatrpo`` steps 4.2–4.3) the exact solution
of (F + νI) x = g with β = √(2δ / xᵀ(F + νI)x).
Tolerances: M, the loss and its gradient within 1e-8 + 1e-6·|expected| (float64) or
1e-5 + 1e-4·|expected| (float32); the step within 1e-6·max|step| (float64) or 1e-4·max|step|
(float32); ½ stepᵀ(F + νI)step within 1e-6·δ (1e-4·δ) of δ. The update order is checked
statistically (every order appears, counts within 0.3 to 2 times the expected 60).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from harl_mini.grading.core import CheckFailed, Tolerance, as_array, register, scaled_answer
from harl_mini.losses import ratio
from harl_mini.marl.runner import happo_objective, update_factor

__all__ = ["check_agent_order", "check_m_factor", "check_happo_loss", "check_hatrpo_step"]


# --------------------------------------------------------------------------- the order


def _order(out, n: int) -> tuple[int, ...]:
    """The student's order as a tuple of ints, or one message saying what is wrong with it."""
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().reshape(-1).tolist()
    elif isinstance(out, np.ndarray):
        out = out.reshape(-1).tolist()
    if not isinstance(out, (list, tuple)):
        raise CheckFailed(f"expected a list of agent indices, got {type(out).__name__}: {out!r}"[:300])
    try:
        order = tuple(int(i) for i in out)
        if any(float(a) != b for a, b in zip(out, order)):
            raise ValueError
    except (TypeError, ValueError):
        raise CheckFailed(f"expected a list of agent indices (ints), got {out!r}"[:300]) from None
    if sorted(order) != list(range(n)):
        raise CheckFailed(f"{list(order)} is not an order of the agents 0..{n - 1} (each exactly once)",
                          hint="a permutation, e.g. torch.randperm(num_agents, generator=generator)")
    return order


def _draws(ctx, n: int, seed: int, k: int) -> list[tuple[int, ...]]:
    gen = torch.Generator().manual_seed(seed)
    return [_order(ctx.call(n, gen), n) for _ in range(k)]


@register(function="agent_order", equation="alg-happo",
          parts={"a valid order on every call": 1, "reproducible from the generator": 1,
                 "depends on the generator only": 1, "every order appears, about uniformly": 1})
def check_agent_order(student_fn, ctx) -> None:
    """``student_fn(num_agents, generator)`` draws a fresh uniformly random order from ``generator``.

    Checked: every result is a permutation; the same seed gives the same sequence of
    orders; interleaving two generators does not change either one's sequence, and
    different seeds give different sequences (so the order comes from the generator, not
    from a counter or the global RNG).

    Tolerance: with 60·n! draws for n = 2, 3, 4 every order appears, each between 18 and
    120 times (0.3 and 2 times the expected 60; a uniform draw misses these bounds with
    probability below 1e-6).
    """
    seeds = [int(s) for s in torch.randint(2**31 - 1, (6,), generator=ctx.gen)]
    with ctx.part("a valid order on every call"):
        for n in (1, 2, 3, 5, 6):
            _draws(ctx, n, seeds[0] + n, 30)
    with ctx.part("reproducible from the generator"):
        for n, seed in [(3, seeds[1]), (4, seeds[2])]:
            first, again = _draws(ctx, n, seed, 12), _draws(ctx, n, seed, 12)
            if first != again:
                raise CheckFailed(f"two generators seeded with {seed} gave different sequences of orders for "
                                  f"{n} agents: {first[:3]}... and {again[:3]}...",
                                  hint="draw from the generator you are given (torch.randperm(n, generator=generator)), "
                                       "not from the global RNG or a state of your own")
    with ctx.part("depends on the generator only"):
        n = 4
        alone = {s: _draws(ctx, n, s, 8) for s in seeds[3:5]}
        gens = {s: torch.Generator().manual_seed(s) for s in seeds[3:5]}
        mixed = {s: [] for s in gens}
        for _ in range(8):
            for s, gen in gens.items():
                mixed[s].append(_order(ctx.call(n, gen), n))
        if mixed != alone:
            raise CheckFailed("drawing from two generators in turn changed the orders each one gives: your orders "
                              "depend on something besides the generator (a counter, a cycle, global state)",
                              hint="the order must be a function of the generator's state only")
        firsts = {tuple(_draws(ctx, n, s, 4)) for s in seeds}
        if len(firsts) == 1:
            raise CheckFailed(f"{len(seeds)} generators with different seeds all gave the same orders",
                              hint="use the generator: torch.randperm(num_agents, generator=generator)")
    with ctx.part("every order appears, about uniformly"):
        for n in (2, 3, 4):
            gen = torch.Generator().manual_seed(seeds[5] + n)
            expected = 60
            counts: dict[tuple[int, ...], int] = {}
            for _ in range(expected * math.factorial(n)):
                order = _order(ctx.call(n, gen), n)
                counts[order] = counts.get(order, 0) + 1
            if len(counts) < math.factorial(n):
                raise CheckFailed(f"with {n} agents only {len(counts)} of the {math.factorial(n)} orders appear in "
                                  f"{expected * math.factorial(n)} draws",
                                  hint="draw a uniformly random permutation every time; a fixed order or a few "
                                       "patterns are not enough for Theorem 3 of Kuba et al.")
            low, high = min(counts.values()), max(counts.values())
            if low < 0.3 * expected or high > 2 * expected:
                raise CheckFailed(f"with {n} agents the orders are far from uniform: counts from {low} to {high} in "
                                  f"{expected * math.factorial(n)} draws (about {expected} each expected)")


# --------------------------------------------------------------------------- M


def _logps(ctx, N: int, B: int):
    logp_old = [-torch.rand(B, generator=ctx.gen, dtype=torch.float64) for _ in range(N)]
    logp_new = [lo + 0.4 * torch.randn(B, generator=ctx.gen, dtype=torch.float64) for lo in logp_old]
    return logp_new, logp_old


def _m(logp_new, logp_old, agents) -> torch.Tensor:
    out = torch.ones_like(logp_new[0])
    for i in agents:
        out = update_factor(out, logp_new[i], logp_old[i])
    return out


@register(function="m_factor", equation="eq-ma-estimator",
          parts={"the first agent (M = 1)": 1, "later agents": 1, "every order of four agents": 1})
def check_m_factor(student_fn, ctx) -> None:
    """``student_fn(logp_new, logp_old, order, m)`` returns Π_{j<m} π^{i_j}_new/π^{i_j}_old per sample.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|M| (float64 answers), ≤ 1e-5 + 1e-4·|M| (float32 answers).
    """
    def compare(logp_new, logp_old, order, m):
        B = logp_new[0].numel()
        out = ctx.call([t.clone() for t in logp_new], [t.clone() for t in logp_old], tuple(order), m)
        want = _m(logp_new, logp_old, order[: m - 1])
        ctx.close(out, want, f"M for agent {order[m - 1]} (position m={m}) in order {tuple(order)}",
                  where=lambda idx: f"sample {idx[0]}",
                  describe=lambda idx: f"{len(order)} agents, B={B} samples, order={tuple(order)}, m={m}",
                  hints=[(lambda: _m(logp_new, logp_old, order[:m]),
                          "M of agent i_m uses the agents BEFORE it, i_1..i_(m−1), not i_m itself"),
                         (lambda: _m(logp_new, logp_old, order),
                          "only the agents before i_m in the order enter M, not all agents"),
                         (lambda: _m(logp_new, logp_old, range(m - 1)),
                          "take the first m−1 agents of `order`, not agents 0..m−2 by index"),
                         (lambda: torch.log(want), "that is log M; M is the product of the ratios, exp of the sum")])

    with ctx.part("the first agent (M = 1)"):
        for N, B in [(2, 5), (3, 7)]:
            logp_new, logp_old = _logps(ctx, N, B)
            for order in itertools.permutations(range(N)):
                compare(logp_new, logp_old, order, 1)
    with ctx.part("later agents"):
        for N, B in [(2, 5), (3, 7), (3, int(torch.randint(3, 20, (), generator=ctx.gen)))]:
            logp_new, logp_old = _logps(ctx, N, B)
            for order in itertools.permutations(range(N)):
                for m in range(2, N + 1):
                    compare(logp_new, logp_old, order, m)
    with ctx.part("every order of four agents"):
        logp_new, logp_old = _logps(ctx, 4, 6)
        for order in itertools.permutations(range(4)):
            for m in range(1, 5):
                compare(logp_new, logp_old, order, m)


# --------------------------------------------------------------------------- HAPPO's loss


def _happo_batch(ctx, B: int):
    logp_old = -torch.rand(B, generator=ctx.gen, dtype=torch.float64) * 2
    logp = logp_old + (torch.rand(B, generator=ctx.gen, dtype=torch.float64) - 0.5) * 1.2
    adv = torch.randn(B, generator=ctx.gen, dtype=torch.float64)
    # M comes from an earlier agent's (differentiable) ratio, as in a careless implementation
    earlier = torch.randn(B, generator=ctx.gen, dtype=torch.float64) * 0.3
    return logp, logp_old, adv, earlier


def _happo_loss(logp, logp_old, adv, M, clip_eps):
    return -happo_objective(ratio(logp, logp_old), M, adv, clip_eps).mean()


@register(function="happo_loss", equation="eq-happo-objective",
          parts={"value": 1, "gradient with respect to logp": 1, "no gradient into M": 1})
def check_happo_loss(student_fn, ctx) -> None:
    """``student_fn(logp, logp_old, adv, M, clip_eps)``: value and gradient match; no gradient reaches M.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| (float64 answers), ≤ 1e-5 + 1e-4·|expected| (float32 answers).
    """
    sizes = [(16, 0.2), (50, 0.1), (int(torch.randint(5, 60, (), generator=ctx.gen)), 0.3)]
    with ctx.part("value"):
        for B, eps in sizes:
            logp, logp_old, adv, earlier = _happo_batch(ctx, B)
            M = torch.exp(earlier)
            xi = torch.exp(logp - logp_old)
            out = ctx.call(logp, logp_old, adv, M, eps)
            want = _happo_loss(logp, logp_old, adv, M, eps)
            ctx.close(out, want, f"the loss (B={B}, clip_eps={eps:g})",
                      describe=lambda idx: f"B={B} samples, ratios {xi.min().item():.3g} to {xi.max().item():.3g}, "
                                           f"M from {M.min().item():.3g} to {M.max().item():.3g}",
                      hints=[(lambda: _happo_loss(logp, logp_old, adv, torch.ones_like(M), eps),
                              "weight the advantage by M: the loss uses M·Â"),
                             (lambda: -torch.maximum(xi * M * adv, xi.clamp(1 - eps, 1 + eps) * M * adv).mean(),
                              "take the minimum of the two terms, not the maximum"),
                             (lambda: -torch.minimum(xi * M * adv, (xi * M).clamp(1 - eps, 1 + eps) * adv).mean(),
                              "clip the agent's own ratio ξ only, not ξ·M"),
                             (lambda: -want, "return the loss to minimise, the negative objective")])
    with ctx.part("gradient with respect to logp"):
        for B, eps in sizes[:2]:
            logp, logp_old, adv, earlier = _happo_batch(ctx, B)
            M = torch.exp(earlier)
            leaf = logp.clone().requires_grad_(True)
            (want,) = torch.autograd.grad(_happo_loss(leaf, logp_old, adv, M, eps), leaf)
            _, grad = ctx.loss_gradient(logp, logp_old, adv, M, eps)
            ctx.close(grad, want, f"d loss / d logp (B={B}, clip_eps={eps:g})", where=lambda idx: f"sample {idx[0]}")
    with ctx.part("no gradient into M"):
        for B, eps in sizes[:2]:
            logp, logp_old, adv, earlier = _happo_batch(ctx, B)
            leaf = logp.clone().requires_grad_(True)
            earlier_leaf = earlier.clone().requires_grad_(True)
            loss = ctx.call(leaf, logp_old, adv, torch.exp(earlier_leaf), eps)
            if not (isinstance(loss, torch.Tensor) and loss.requires_grad):
                raise CheckFailed("the loss has no gradient at all; it must be differentiable in logp")
            grads = torch.autograd.grad(loss.reshape(()), [leaf, earlier_leaf], allow_unused=True)
            if grads[0] is None:
                raise CheckFailed("the loss has no gradient with respect to logp")
            if grads[1] is not None and float(grads[1].abs().max()) > 0:
                raise CheckFailed("gradient flows into M (the earlier agents' ratios)",
                                  hint="M is a fixed weight: use M.detach() in the loss")


# --------------------------------------------------------------------------- HATRPO's step


def _fisher(n: int, ctx) -> torch.Tensor:
    """A random SPD matrix with at most 5 distinct eigenvalues in [0.1, 10].

    CG is exact after as many iterations as there are distinct eigenvalues, so 10 CG
    iterations, a damped CG and an exact solve all give the same x to rounding, at any n.
    """
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=ctx.gen, dtype=torch.float64))
    levels = torch.logspace(-1, 1, 5, dtype=torch.float64)
    eigenvalues = levels[torch.randint(5, (n,), generator=ctx.gen)]
    return q @ torch.diag(eigenvalues) @ q.T


def _step(F, g, delta, damping):
    A = F + damping * torch.eye(F.shape[0], dtype=F.dtype)
    x = torch.linalg.solve(A, g)
    return math.sqrt(2 * delta / float(x @ A @ x)) * x


@register(function="hatrpo_step", equation="eq-hatrpo-step",
          parts={"undamped (damping = 0)": 1, "damped (damping > 0)": 1, "the step reaches the KL radius": 1},
          tol=Tolerance(atol=1e-6, rtol=0.0), tol32=Tolerance(atol=1e-4, rtol=0.0))
def check_hatrpo_step(student_fn, ctx) -> None:
    """``student_fn(g, Fvp, delta, damping)`` returns β x with (F + νI) x = g, β = √(2δ / xᵀ(F + νI)x).

    10 iterations of conjugate gradient, CG to convergence and an exact solve are all
    accepted: every test matrix has at most 5 distinct eigenvalues.

    Tolerance: |step − expected| ≤ 1e-6·max|expected| (float64 answers), ≤ 1e-4·max|expected|
    (float32 answers); |½ stepᵀ(F + νI)step − δ| ≤ 1e-6·δ (1e-4·δ for float32).
    """
    def run(n, delta, damping, part):
        F = _fisher(n, ctx)
        g = torch.randn(n, generator=ctx.gen, dtype=torch.float64)
        A = F + damping * torch.eye(n, dtype=torch.float64)

        def Fvp(v):
            return F @ torch.as_tensor(v, dtype=torch.float64)

        out = ctx.call(g, Fvp, delta, damping)
        want = _step(F, g, delta, damping)
        scale = float(want.abs().max())
        what = f"the step (n={n}, delta={delta:g}, damping={damping:g}), divided by max|step|"
        describe = lambda idx: f"a random Fisher matrix F ({n}×{n}, eigenvalues in [0.1, 10]) and gradient g"  # noqa: E731
        if part == "the step reaches the KL radius":
            step, lowp = _as_step(out, n)
            kl = 0.5 * float(step @ A @ step)
            rel = 1e-4 if lowp else 1e-6
            if abs(kl - delta) > rel * delta:
                raise CheckFailed(f"½ stepᵀ(F + νI)step = {kl:.6g}, but the full step must reach the KL radius "
                                  f"delta = {delta:g} (n={n}, damping={damping:g})", input=describe(()),
                                  hint=_length_hint(kl, delta))
            return
        s_g = math.sqrt(2 * delta / float(g @ A @ g)) * g
        ctx.close(scaled_answer(out, scale), want / scale, what, where=lambda idx: f"entry {idx[0]}", describe=describe,
                  hints=[(s_g / scale, "that step follows g itself; HATRPO steps along x = (F + νI)⁻¹ g, found by CG"),
                         (lambda: _step(F, g, delta, 0.0) / scale,
                          "use the damped matrix F + νI, in CG and in β, as the chapter's algorithm does"),
                         (lambda: _beta_undamped(F, g, delta, damping) / scale,
                          "β must use the same damped matrix as CG: β = √(2δ / xᵀ(F + νI)x)"),
                         (lambda: _beta(F, g, delta, damping) * want / scale,
                          "β = √(2δ / xᵀ(F + νI)x): do not forget the square root"),
                         (lambda: want / math.sqrt(2) / scale, "β = √(2δ / …), with the factor 2")])

    with ctx.part("undamped (damping = 0)"):
        for n, delta in [(4, 0.01), (9, 0.05), (15, 0.001), (int(torch.randint(2, 25, (), generator=ctx.gen)), 0.02)]:
            run(n, delta, 0.0, "undamped")
    with ctx.part("damped (damping > 0)"):
        for n, delta, damping in [(6, 0.01, 0.1), (15, 0.01, 0.5),
                                  (int(torch.randint(2, 25, (), generator=ctx.gen)), 0.02, 0.05)]:
            run(n, delta, damping, "damped")
    with ctx.part("the step reaches the KL radius"):
        for n, delta, damping in [(5, 0.01, 0.0), (12, 0.003, 0.1)]:
            run(n, delta, damping, "the step reaches the KL radius")


def _as_step(out, n: int):
    return as_array(out, (n,), "the step", broadcast=False)


def _beta_undamped(F, g, delta, damping):
    A = F + damping * torch.eye(F.shape[0], dtype=F.dtype)
    x = torch.linalg.solve(A, g)
    return math.sqrt(2 * delta / float(x @ F @ x)) * x


def _beta(F, g, delta, damping) -> float:
    A = F + damping * torch.eye(F.shape[0], dtype=F.dtype)
    x = torch.linalg.solve(A, g)
    return math.sqrt(2 * delta / float(x @ A @ x))


def _length_hint(kl: float, delta: float) -> str | None:
    if abs(kl - delta / 2) < 1e-6 * delta:
        return "β = √(2δ / xᵀ(F + νI)x): the factor 2 is missing"
    return "scale x by β = √(2δ / xᵀ(F + νI)x) so that ½ stepᵀ(F + νI)step = δ"
