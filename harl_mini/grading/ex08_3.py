"""Checks for Exercise 8.3: the exact HATRPO-type step of HAML (the mean-KL ball), derived and solved.

(a) ``kl_ball_step(p, g, d, delta)``: argmax_q Σ_s d_s ⟨q_s, g_s⟩ subject to
Σ_s d_s KL(p_s ‖ q_s) ≤ δ, the maximisation of the HATRPO instance of HAML (Chapter 8,
eq. ``eq-haml-update`` with the trivial drift and the mean-KL neighbourhood).
(b) ``hatrpo_agent_step(game, pis, pis_new, order, m, delta)``: agent i_m's whole step on a
Markov game, with g_s(a) the multi-agent advantage conditioned on the new policies of the agents
before it and d = d_π = (1 − γ) ρ_π.

Graded by what defines the answer, not by its digits: the answer must be a policy, lie in the
ball (feasible) and reach the oracle's objective (optimal). The maximiser is unique when g_s is
not constant, so both together pin it down. Oracle: ``harl_mini.tabular.haml`` (its KKT solver
for (a), ``agent_step(..., delta=δ)`` for (b)).
"""

from __future__ import annotations

import numpy as np
import torch

from harl_mini import tabular
from harl_mini.grading.core import CheckFailed, Tolerance, as_array, register
from harl_mini.tabular import haml
from harl_mini.tabular.haml import _kl_ball_argmax

__all__ = ["check_kl_ball_step", "check_hatrpo_agent_step"]

F64 = torch.float64
#: float64 answers: a policy to 1e-9, inside the ball to 1e-6 δ, the objective's gain to 1e-6
TOL64 = {"sum": 1e-9, "kl": 1e-6, "gain": 1e-6}
#: float32 answers (rounding q to float32 moves KL by about 1e-7 per entry)
TOL32 = {"sum": 1e-6, "kl": 1e-4, "gain": 1e-4}


def _kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p_s ‖ q_s) per row, +inf where q puts no mass on an action p takes."""
    with torch.no_grad():
        ratio = torch.where(p > 0, p / q, torch.ones_like(p))
        return (p * torch.log(ratio)).sum(-1)


def _oracle(p, g, d, delta) -> torch.Tensor:
    return torch.as_tensor(_kl_ball_argmax(p.numpy(), g.numpy(), d.numpy(), float(delta)), dtype=F64)


def _judge(q, lowp, p, g, d, delta, what, describe, keep=()):
    """Raise unless q is a policy, feasible and optimal (within the tolerances); ``keep``: rows that must equal p."""
    tol = TOL32 if lowp else TOL64
    if bool((q < -tol["sum"]).any()):
        s, a = (int(i) for i in torch.nonzero(q < -tol["sum"])[0])
        raise CheckFailed(f"{what} is not a policy: q[{s}, {a}] = {float(q[s, a]):.3g} < 0", input=describe)
    sums = q.sum(-1)
    if bool(((sums - 1).abs() > tol["sum"]).any()):
        s = int(torch.argmax((sums - 1).abs()))
        raise CheckFailed(f"{what} is not a policy: the probabilities of state {s} add up to {float(sums[s]):.10g}",
                          input=describe, hint="normalise each state's row: q_s(a) = τ p_s(a) / (μ_s − g_s(a)) "
                                               "with μ_s chosen so that the row sums to 1")
    for s in keep:
        if float((q[s] - p[s]).abs().max()) > (1e-5 if lowp else 1e-7):
            why = "it has no weight (d_s = 0)" if float(d[s]) == 0 else "its g_s is constant (no action is better)"
            raise CheckFailed(f"{what} moves state {s}, but {why}: there the step must keep q_s = p_s",
                              input=describe, hint="a state the objective does not reward gains nothing from moving "
                                                   "and, with d_s > 0, only spends KL")
    q = q.clamp_min(0.0)
    kl = float((d * _kl_rows(p, q)).sum())
    if not kl <= delta * (1 + tol["kl"]):
        reverse = float((d * _kl_rows(q, p)).sum()) if bool((p > 0).all()) else float("inf")
        hint = None
        if abs(reverse - delta) <= 1e-3 * delta:
            hint = ("your step has KL(q ‖ p) = δ, the KL with the new policy first; the neighbourhood puts the OLD "
                    "policy first, Σ_s d_s KL(p_s ‖ q_s) ≤ δ")
        elif kl == float("inf"):
            hint = "q puts zero probability on an action p takes: KL(p ‖ q) is infinite"
        raise CheckFailed(f"{what} leaves the ball: Σ_s d_s KL(p_s ‖ q_s) = {kl:.8g} > δ = {delta:g}",
                          input=describe, hint=hint)
    best = _oracle(p, g, d, delta)
    gain_best = float((d * ((best - p) * g).sum(-1)).sum())
    gain = float((d * ((q - p) * g).sum(-1)).sum())
    if gain < gain_best - tol["gain"] * max(gain_best, 1e-12) - 1e-14:
        hint = None
        if kl < delta * (1 - 1e-3):
            hint = ("the step stops inside the ball (KL = {:.4g} < δ): the objective is linear in q, so its maximum "
                    "over the ball lies on the boundary".format(kl))
        elif _exponential_family(q, p, g, d):
            hint = ("q ∝ p·exp(g/τ) is the maximiser when the constraint is KL(q ‖ p); with KL(p ‖ q), the old "
                    "policy first, the KKT conditions give q_s(a) = τ p_s(a) / (μ_s − g_s(a))")
        elif _equal_state_kl(q, p, d, delta):
            hint = ("every state got KL = δ on its own; the constraint is on the d-weighted MEAN, with one "
                    "multiplier τ for all states (a state whose advantages spread more takes a longer step)")
        raise CheckFailed(f"{what} is in the ball but not its maximiser: its gain Σ_s d_s ⟨q_s − p_s, g_s⟩ is "
                          f"{gain:.10g}, the maximum is {gain_best:.10g} (Σ d KL = {kl:.6g}, δ = {delta:g})",
                          input=describe, hint=hint)


def _exponential_family(q, p, g, d) -> bool:
    """log(q/p) is an affine function of g on every weighted state, with one common slope."""
    slopes = []
    for s in range(p.shape[0]):
        if float(d[s]) <= 0 or float(g[s].max() - g[s].min()) < 1e-9:
            continue
        x = (g[s] - g[s].mean()).numpy()
        y = torch.log(q[s].clamp_min(1e-300) / p[s]).numpy()
        y = y - y.mean()
        slope = float(x @ y / (x @ x))
        if np.abs(y - slope * x).max() > 1e-6 * max(1.0, np.abs(y).max()):
            return False
        slopes.append(slope)
    return bool(slopes) and max(slopes) - min(slopes) <= 1e-6 * max(abs(max(slopes)), 1.0)


def _equal_state_kl(q, p, d, delta) -> bool:
    kl = _kl_rows(p, q)[d > 0]
    return len(kl) > 1 and float((kl - delta).abs().max()) <= 1e-4 * delta


# --------------------------------------------------------------------------- (a) the step


def _instance(ctx, S, n, delta, zero_weight=(), constant=()):
    gen = ctx.gen
    p = torch.softmax(1.5 * torch.randn(S, n, generator=gen, dtype=F64), -1)
    g = torch.randn(S, n, generator=gen, dtype=F64) * (0.5 + torch.rand(S, 1, generator=gen, dtype=F64))
    d = 0.2 + torch.rand(S, generator=gen, dtype=F64)
    for s in zero_weight:
        d[s] = 0.0
    for s in constant:
        g[s] = float(g[s, 0])
    return p, g, d / d.sum(), float(delta)


def _describe(p, g, d, delta):
    S, n = p.shape
    return (f"{S} state(s), {n} actions, δ = {delta:g}, d = {[round(float(x), 3) for x in d]}, "
            f"smallest p = {float(p.min()):.3g}")


@register(function="kl_ball_step", equation="eq-haml-update",
          parts={"one state": 1, "several states share one multiplier": 1,
                 "unweighted states and constant advantages keep p": 1, "long steps (δ = 2)": 1})
def check_kl_ball_step(student_fn, ctx) -> None:
    """``student_fn(p, g, d, delta)``: the maximiser of Σ_s d_s ⟨q_s, g_s⟩ over Σ_s d_s KL(p_s ‖ q_s) ≤ δ.

    Checked: q is a policy (q ≥ 0, rows sum to 1), q lies in the ball, and its gain
    Σ_s d_s ⟨q_s − p_s, g_s⟩ reaches the oracle's; rows with d_s = 0 or a constant g_s equal p_s.

    Tolerance: rows sum to 1 within 1e-9, Σ_s d_s KL(p_s ‖ q_s) ≤ δ(1 + 1e-6), gain ≥ (1 − 1e-6)
    × the maximum, rows that must stay equal p within 1e-7 (float64 answers); 1e-6, 1e-4, 1e-4 and
    1e-5 (float32 answers). The oracle solves its KKT conditions to 1e-14; a bisection to 1e-12
    passes, while the known wrong steps lose 1e-4 to 1e-1 of the gain on these inputs.
    """
    def run(p, g, d, delta, keep=()):
        S, n = p.shape
        out = ctx.call(p.clone(), g.clone(), d.clone(), delta)
        q, lowp = as_array(out, (S, n), "your step q", broadcast=False)
        _judge(q, lowp, p, g, d, delta, "your step q", _describe(p, g, d, delta), keep)

    with ctx.part("one state"):
        p = torch.tensor([[0.5, 0.3, 0.2]], dtype=F64)
        g = torch.tensor([[1.0, 0.0, -1.0]], dtype=F64)
        run(p, g, torch.ones(1, dtype=F64), 0.1)  # the notebook's example
        for n, delta in [(int(torch.randint(2, 6, (), generator=ctx.gen)), 0.05), (4, 0.5)]:
            run(*_instance(ctx, 1, n, delta))
    with ctx.part("several states share one multiplier"):
        for S, n, delta in [(3, 3, 0.05), (4, int(torch.randint(2, 5, (), generator=ctx.gen)), 0.3)]:
            run(*_instance(ctx, S, n, delta))
    with ctx.part("unweighted states and constant advantages keep p"):
        p, g, d, delta = _instance(ctx, 4, 3, 0.1, zero_weight=(1,), constant=(3,))
        run(p, g, d, delta, keep=(1, 3))
    with ctx.part("long steps (δ = 2)"):
        run(*_instance(ctx, 2, 3, 2.0))
        run(*_instance(ctx, 1, 2, 2.0))


# --------------------------------------------------------------------------- (b) agent i_m's step on a game


def conditioned_advantage(game, pis, pis_new, order, m) -> torch.Tensor:
    """g_s(a) = E_{a^{i_{1:m−1}} ∼ π̄}[A^{i_m}_π(s, a^{i_{1:m−1}}, a)], shape [S, n_{i_m}] (HAMO's linear term)."""
    before, i = tuple(order[: m - 1]), order[m - 1]
    adv = tabular.multi_agent_advantage(game, pis, (i,), given=before)
    for j in before:
        adv = torch.einsum("sa...,sa->s...", adv, pis_new[j])
    return adv


def _game_instance(ctx, S, counts, gamma, m=None):
    seed = int(torch.randint(2**31 - 1, (), generator=ctx.gen))
    game = tabular.random_game(S, counts, gamma=gamma, seed=seed, reward_range=(-1.0, 1.0))
    pis = [torch.softmax(torch.randn(S, n, generator=ctx.gen, dtype=F64), -1) for n in counts]
    pis_new = [torch.softmax(torch.randn(S, n, generator=ctx.gen, dtype=F64), -1) for n in counts]
    order = tuple(int(i) for i in torch.randperm(len(counts), generator=ctx.gen))
    m = len(counts) if m is None else m
    return game, pis, pis_new, order, m


@register(function="hatrpo_agent_step", equation="eq-haml-update",
          parts={"the first agent (m = 1)": 1, "later agents see the new policies before them": 1,
                 "a three-agent game": 1})
def check_hatrpo_agent_step(student_fn, ctx) -> None:
    """``student_fn(game, pis, pis_new, order, m, delta)``: agent i_m's exact HATRPO-type step of HAML.

    Judged like ``kl_ball_step`` with the exact g_s(a) (the multi-agent advantage of i_m given
    the new policies of i_{1:m−1}) and d = d_π = (1 − γ) ρ_π of the old joint policy: a policy,
    in the mean-KL ball, with the gain of ``harl_mini.tabular.haml.agent_step(..., delta=δ)``.

    Tolerance: as for ``kl_ball_step``: rows sum to 1 within 1e-9, Σ_s d_π(s) KL ≤ δ(1 + 1e-6),
    gain ≥ (1 − 1e-6) × the maximum (float64 answers); 1e-6, 1e-4 and 1e-4 (float32 answers).
    """
    def run(game, pis, pis_new, order, m, delta):
        i = order[m - 1]
        out = ctx.call(game, [p.clone() for p in pis], [p.clone() for p in pis_new], order, m, delta)
        q, lowp = as_array(out, tuple(pis[i].shape), f"agent {i}'s new policy", broadcast=False)
        g = conditioned_advantage(game, pis, pis_new, order, m)
        d = tabular.game_visitation(game, pis) * (1 - game.gamma)
        describe = (f"{game.num_agents} agents, {game.num_states} states, γ = {game.gamma:g}, order {order}, "
                    f"m = {m} (agent {i}), δ = {delta:g}")
        try:
            _judge(q, lowp, pis[i], g, d, delta, f"agent {i}'s new policy", describe)
        except CheckFailed as exc:
            tol = Tolerance(atol=1e-6, rtol=0.0)
            alternatives = [
                (lambda: haml.agent_step(game, pis, pis, order, m, delta=delta),
                 "g must condition on the NEW policies of the agents before i_m (pis_new), not their old ones: "
                 "that is the sequential part of the update"),
                (lambda: haml.agent_step(game, pis, pis_new, order, m, delta=delta * (1 - game.gamma)),
                 "weight the states by d_π = (1 − γ) ρ_π, a probability distribution; tabular.game_visitation "
                 "returns ρ_π, whose total mass is 1/(1 − γ)"),
            ]
            hint = _match_hint(q, alternatives, tol) or exc.hint
            raise CheckFailed(exc.message, input=exc.input, hint=hint) from None

    with ctx.part("the first agent (m = 1)"):
        run(*_game_instance(ctx, 3, (3, 2), 0.9, m=1), 0.05)
    with ctx.part("later agents see the new policies before them"):
        run(*_game_instance(ctx, 3, (3, 2), 0.9, m=2), 0.05)
        run(*_game_instance(ctx, 2, (2, 3), 0.8, m=2), 0.2)
    with ctx.part("a three-agent game"):
        game, pis, pis_new, order, _ = _game_instance(ctx, 2, (2, 3, 2), 0.9)
        run(game, pis, pis_new, order, int(torch.randint(2, 4, (), generator=ctx.gen)), 0.1)


def _match_hint(q, alternatives, tol) -> str | None:
    """The text of the first known mistake whose answer matches ``q`` (as ``Context._match_hint``)."""
    for alternative, text in alternatives:
        try:
            alt = alternative()
            if torch.allclose(q, alt, atol=tol.atol, rtol=tol.rtol):
                return text
        except Exception:  # noqa: BLE001 - a hint that does not apply is no hint
            continue
    return None
