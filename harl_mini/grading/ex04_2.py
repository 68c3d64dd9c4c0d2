"""Checks for Exercise 4.2: what the mean-KL bound and the mixture bound certify.

Oracles: ``harl_mini.tabular.trpo.mean_kl_lower_bound`` (Chapter 4, eq. ``eq-mean-kl-bound``,
Achiam et al. 2017 via Pinsker and Jensen), ``harl_mini.tabular.trpo.cpi_certified_weight``
and ``harl_mini.tabular.trpo.cpi_best_weight`` (eq. ``eq-cpi-bound``, Kakade and Langford
2002), the last two cross-checked against ``harl_mini.tabular.trpo.cpi_lower_bound`` itself.
The student's functions take an MDP (a :class:`~harl_mini.tabular.FiniteMDP`) and two policy
tables [S, A]; each call gets a fresh copy of the MDP, so nothing the student does to it can
reach the oracle.
"""

from __future__ import annotations

import math

import torch

from harl_mini import tabular
from harl_mini.grading.core import CheckFailed, Tolerance, as_real, register
from harl_mini.tabular import trpo
from harl_mini.tabular.divergence import kl as kl_rows

__all__ = ["check_mean_kl_bound", "check_certified_mixture_weight", "check_best_mixture_weight",
           "unreachable_state_mdp"]

F64 = torch.float64


def _fresh(mdp: tabular.FiniteMDP) -> tabular.FiniteMDP:
    return tabular.FiniteMDP(mdp.P.clone(), mdp.R.clone(), mdp.gamma, mdp.rho0.clone(), mdp.name)


def unreachable_state_mdp(num_states: int, num_actions: int, gamma: float, seed: int) -> tabular.FiniteMDP:
    """A random MDP whose last state is never reached: no start mass, no transition into it.

    Its advantages are still defined (V of that state is the value of starting there), so
    maxima over *all* states, such as ε and ε̃, see it while d_π and ρ_π give it weight 0.
    """
    m = tabular.random_mdp(num_states, num_actions, gamma=gamma, seed=seed)
    P = m.P.clone()
    P[:, :, -1] = 0.0
    P = P / P.sum(-1, keepdim=True)
    rho0 = torch.ones(num_states, dtype=F64)
    rho0[-1] = 0.0
    return tabular.FiniteMDP(P, m.R, gamma, rho0 / rho0.sum(), f"random MDP {seed} with an unreachable state")


def _policy(gen: torch.Generator, S: int, A: int, scale: float = 1.5) -> torch.Tensor:
    return tabular.softmax_policy(scale * torch.randn(S, A, generator=gen, dtype=F64))


def _random_mdp(gen: torch.Generator, gamma: float | None = None) -> tabular.FiniteMDP:
    S, A = int(torch.randint(3, 7, (), generator=gen)), int(torch.randint(2, 4, (), generator=gen))
    if gamma is None:
        gamma = (0.5, 0.8, 0.9, 0.95)[int(torch.randint(0, 4, (), generator=gen))]
    return tabular.random_mdp(S, A, gamma=gamma, seed=int(torch.randint(0, 10**6, (), generator=gen)))


def _describe(m: tabular.FiniteMDP, pi: torch.Tensor, other: torch.Tensor, what: str) -> str:
    d = tabular.state_distribution(m, pi)
    unvisited = [s for s in range(m.num_states) if float(d[s]) == 0.0]
    text = (f"{m.name or 'an MDP'} with S = {m.num_states}, A = {m.num_actions}, γ = {m.gamma:g}; {what}: "
            f"max |π̃ − π| = {float((other - pi).abs().max()):.3g}")
    if unvisited:
        text += f"; state(s) {unvisited} have d_π(s) = 0 (never reached)"
    return text


# --------------------------------------------------------------------------------------- (a)


def _bound_variants(m, pi, q):
    """What the classic mistakes compute, for hints."""
    adv, d = tabular.advantage(m, pi), tabular.state_distribution(m, pi)
    g, L = m.gamma, float(trpo.surrogate(m, pi, q))
    coef = math.sqrt(2.0) * g / (1.0 - g) ** 2
    eps_t = float((q * adv).sum(-1).abs().max())
    kl = float(tabular.mean_kl(pi, q, d))
    per_state = kl_rows(pi, q)  # KL(π(·|s) ‖ π̃(·|s)) per state
    out = {
        "eps": L - coef * float(adv.abs().max()) * math.sqrt(kl),
        "reversed": L - coef * eps_t * math.sqrt(float(tabular.mean_kl(q, pi, d))),
        "rho": L - coef * eps_t * math.sqrt(kl / (1.0 - g)),
        "visited": L - coef * float((q * adv).sum(-1).abs()[d > 0].max()) * math.sqrt(kl),
        "no penalty": L,
        "sqrt inside": L - coef * eps_t * float((d * per_state.sqrt()).sum()),
    }
    return out


BOUND_HINTS = [
    ("no penalty", "your answer is the surrogate L_π(π̃) alone: the penalty vanished. ε̃ is computed from "
                   "A_π, the advantage of the OLD policy, averaged over the actions of the NEW one"),
    ("eps", "that uses ε = max |A_π(s, a)|; the mean-KL bound uses ε̃ = max_s |Σ_a π̃(a|s) A_π(s, a)|"),
    ("reversed", "the KL is in the wrong order: D̄_KL(π, π̃) puts the old policy first"),
    ("rho", "weight the states by the normalised d_π = (1 − γ) ρ_π in the mean KL, not by ρ_π"),
    ("visited", "ε̃ is a maximum over ALL states, including states π never reaches (d_π(s) = 0)"),
    ("sqrt inside", "the square root goes outside the mean: √(Σ_s d_π(s) KL(s)) (Jensen), not Σ_s d_π(s) √KL(s)"),
]


@register(function="mean_kl_bound", equation="eq-mean-kl-bound",
          parts={"at π̃ = π the bound is J(π)": 1, "nearby and far policies": 1, "other discounts": 1,
                 "a state the old policy never reaches": 1})
def check_mean_kl_bound(student_fn, ctx) -> None:
    """The value of the mean-KL bound (the last line of the equation) matches the oracle.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| (float64 answers; the bound is a
    sum of a few exact terms of size J), ≤ 1e-5 + 1e-4·|expected| (float32 answers).
    """

    def one(m, pi, q, what):
        want = float(trpo.mean_kl_lower_bound(m, pi, q))
        out = ctx.call(_fresh(m), pi, q)
        hints = [(lambda k=k: _bound_variants(m, pi, q)[k], text) for k, text in BOUND_HINTS]
        ctx.real(out, want, f"the bound ({what})", hints=hints, describe=_describe(m, pi, q, what))

    with ctx.part("at π̃ = π the bound is J(π)"):
        m = tabular.random_mdp(5, 3, gamma=0.9, seed=0)
        pi = tabular.random_policy(m, seed=1)
        one(m, pi, pi.clone(), "π̃ = π")
    with ctx.part("nearby and far policies"):
        m = tabular.random_mdp(5, 3, gamma=0.9, seed=0)
        theta = 1.5 * torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
        pi = tabular.softmax_policy(theta)
        cases = [(tabular.softmax_policy(theta + 0.1), "π̃ = π (logits shifted)"),
                 (tabular.random_policy(m, seed=2), "an unrelated random π̃")]
        for scale in (0.05, 2.0):
            cases.append((tabular.softmax_policy(theta + scale * torch.randn(5, 3, generator=ctx.gen, dtype=F64)),
                          f"π̃ = softmax(θ + {scale:g}·noise)"))
        for q, what in cases:
            one(m, pi, q, what)
    with ctx.part("other discounts"):
        for gamma in (0.5, 0.99, None):
            m = _random_mdp(ctx.gen, gamma)
            pi, q = _policy(ctx.gen, m.num_states, m.num_actions), _policy(ctx.gen, m.num_states, m.num_actions)
            one(m, pi, q, "two random softmax policies")
    with ctx.part("a state the old policy never reaches"):
        for seed in (3, int(torch.randint(0, 10**6, (), generator=ctx.gen))):
            m = unreachable_state_mdp(5, 3, 0.9, seed)
            pi = _policy(ctx.gen, 5, 3)
            q = pi.clone()
            q[-1] = torch.tensor([0.98, 0.01, 0.01], dtype=F64)  # π̃ moves only in the unreachable state
            q[:-1] = tabular.softmax_policy(pi[:-1].log() + 0.3 * torch.randn(4, 3, generator=ctx.gen, dtype=F64))
            one(m, pi, q, "π̃ changes everywhere, also in the unreachable state")


# --------------------------------------------------------------------------------------- (b), (c)


def _mixture_cases(ctx, fixed_seed: int):
    """(mdp, π, π', words) for the mixture parts: fixed examples, then draws."""
    m = tabular.random_mdp(5, 3, gamma=0.9, seed=fixed_seed)
    pi = tabular.softmax_policy(2.0 * torch.randn(5, 3, generator=torch.Generator().manual_seed(fixed_seed),
                                                  dtype=F64))
    yield "the greedy target", m, pi, tabular.greedy_policy(tabular.advantage(m, pi)), "π' greedy with respect to A_π"
    for _ in range(2):
        m = _random_mdp(ctx.gen)
        pi = _policy(ctx.gen, m.num_states, m.num_actions, 2.0)
        yield "random MDPs and targets", m, pi, tabular.greedy_policy(tabular.advantage(m, pi)), "π' greedy"
        target = _policy(ctx.gen, m.num_states, m.num_actions, 3.0)
        if float(trpo.surrogate(m, pi, target) - tabular.objective(m, pi)) > 0:
            yield "random MDPs and targets", m, pi, target, "a random π' with a positive policy advantage"
    m = tabular.random_mdp(4, 3, gamma=0.05, seed=fixed_seed + 1)
    pi = _policy(ctx.gen, 4, 3, 2.0)
    yield "a small discount", m, pi, tabular.greedy_policy(tabular.advantage(m, pi)), "γ = 0.05, π' greedy"
    m = _random_mdp(ctx.gen, 0.9)
    pi = _policy(ctx.gen, m.num_states, m.num_actions, 2.0)
    worst = tabular.greedy_policy(-tabular.advantage(m, pi))
    yield "a target no better than π", m, pi, worst, "π' greedy with respect to −A_π (a worse policy)"
    m = tabular.random_mdp(4, 2, gamma=0.8, seed=fixed_seed + 2)
    pi = _policy(ctx.gen, 4, 2, 2.0)
    yield "a target no better than π", m, pi, tabular.greedy_policy(-tabular.advantage(m, pi)), "π' greedy w.r.t. −A_π"


def _in_words(m, pi, target, what):
    gain = float(trpo.surrogate(m, pi, target) - tabular.objective(m, pi))
    eps_t = float(trpo.eps_tilde(m, pi, target))
    return (f"{what}; S = {m.num_states}, A = {m.num_actions}, γ = {m.gamma:g}; policy advantage "
            f"L_π(π') − J(π) = {gain:.4g}, ε̃(π') = {eps_t:.4g}")


def _mixture_variants(m, pi, target):
    """α computed by the classic mistakes."""
    g = m.gamma
    gain = float(trpo.surrogate(m, pi, target) - tabular.objective(m, pi))
    eps_t = float(trpo.eps_tilde(m, pi, target))
    eps = float(tabular.advantage(m, pi).abs().max())
    out = {}
    if eps_t > 0 and g > 0:
        out["weak root"] = gain * (1 - g) ** 2 / (2 * g * eps_t)
        out["weak best"] = gain * (1 - g) ** 2 / (4 * g * eps_t)
        denom = g * (2 * eps_t - gain * (1 - g))
        out["unclipped root"] = gain * (1 - g) ** 2 / denom
        out["unclipped best"] = (1 - g) / g * (math.sqrt(2 * eps_t / (2 * eps_t - gain * (1 - g))) - 1)
        out["abs gain"] = min(1.0, abs(gain) * (1 - g) ** 2 / (g * (2 * eps_t - gain * (1 - g))))
    if eps > 0 and g > 0:
        out["eps root"] = gain * (1 - g) ** 2 / (g * (2 * eps - gain * (1 - g)))
    out["certified"] = float(trpo.cpi_certified_weight(m, pi, target))
    out["best"] = float(trpo.cpi_best_weight(m, pi, target))
    out["half certified"] = out["certified"] / 2
    return out


def _weight(out, what):
    """The student's weight, unchanged (``ctx.real`` compares it), once it is known to lie in [0, 1]."""
    value, _ = as_real(out, what)
    if not 0.0 <= value <= 1.0:
        raise CheckFailed(f"{what} is {value:.6g}, outside [0, 1]: a mixture weight must lie in [0, 1]",
                          hint="clip your formula's value to [0, 1]: a target no better than π certifies α = 0, "
                               "and a formula above 1 means the whole step is certified")
    return out


CERTIFIED_HINTS = [
    ("weak root", "that is where the weaker second line of the bound returns to J(π); use the middle term, "
                  "with 1 − γ(1 − α) in the denominator"),
    ("eps root", "the bound uses ε̃(π') = max_s |Σ_a π'(a|s) A_π(s, a)|, not ε = max |A_π|"),
    ("best", "that is the weight that maximises the bound; the question is the largest weight at which the "
             "bound is still ≥ J(π)"),
    ("half certified", "that is half the answer"),
    ("abs gain", "this target's policy advantage L_π(π') − J(π) is negative: no α > 0 is certified, so α* = 0"),
]


@register(function="certified_mixture_weight", equation="eq-cpi-bound",
          parts={"the greedy target": 1, "random MDPs and targets": 1, "a small discount": 1,
                 "a target no better than π": 1},
          tol=Tolerance(atol=1e-8, rtol=0.0), tol32=Tolerance(atol=1e-6, rtol=0.0))
def check_certified_mixture_weight(student_fn, ctx) -> None:
    """The largest α ∈ [0, 1] with cpi_lower_bound(π, π', α) ≥ J(π) matches the oracle.

    Tolerance: |α − α*| ≤ 1e-8 (float64), ≤ 1e-6 (float32). α* is the root of a smooth
    function with a nonzero slope, so a closed form and a bisection of about 30 halvings or
    more both get there.
    """
    for part, cases in _by_part(_mixture_cases(ctx, 11)).items():
        with ctx.part(part):
            for m, pi, target, what in cases:
                want = float(trpo.cpi_certified_weight(m, pi, target))
                got = _weight(ctx.call(_fresh(m), pi, target), "your α*")
                variants = _mixture_variants(m, pi, target)
                ctx.real(got, want, "α*", hints=[(lambda k=k: variants[k], text) for k, text in CERTIFIED_HINTS
                                                if k in variants],
                         describe=_in_words(m, pi, target, what))


BEST_HINTS = [
    ("weak best", "that maximises the weaker second line of the bound; maximise the middle term, with "
                  "1 − γ(1 − α) in the denominator"),
    ("certified", "that is the largest certified weight, where the bound returns to J(π); the question is "
                  "where the bound is largest"),
    ("half certified", "half the certified weight is the maximiser of a parabola through 0 and α*; the "
                       "middle term is not a parabola in α"),
]


@register(function="best_mixture_weight", equation="eq-cpi-bound",
          parts={"the greedy target": 1, "random MDPs and targets": 1, "a small discount": 1,
                 "a target no better than π": 1},
          tol=Tolerance(atol=1e-6, rtol=0.0), tol32=Tolerance(atol=1e-5, rtol=0.0))
def check_best_mixture_weight(student_fn, ctx) -> None:
    """The α ∈ [0, 1] that maximises cpi_lower_bound(π, π', α) matches the oracle.

    Tolerance: |α − α_best| ≤ 1e-6 (float64), ≤ 1e-5 (float32). At a smooth maximum the bound
    changes only quadratically in α, so a numerical maximiser (a grid, golden-section search)
    pins α down to about the square root of the bound's rounding error; 1e-6 accepts any
    careful method, and a closed form is exact.
    """
    for part, cases in _by_part(_mixture_cases(ctx, 12)).items():
        with ctx.part(part):
            for m, pi, target, what in cases:
                want = float(trpo.cpi_best_weight(m, pi, target))
                got = _weight(ctx.call(_fresh(m), pi, target), "your α_best")
                variants = _mixture_variants(m, pi, target)
                hints = [(lambda k=k: variants[k], text) for k, text in BEST_HINTS if k in variants]
                ctx.real(got, want, "α_best", hints=hints, describe=_in_words(m, pi, target, what))


def _by_part(cases) -> dict:
    """{part: [(mdp, π, π', words), ...]} in the order the parts first appear (all drawn up front)."""
    grouped: dict = {}
    for part, *case in cases:
        grouped.setdefault(part, []).append(tuple(case))
    return grouped
