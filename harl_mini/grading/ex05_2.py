"""Checks for Exercise 5.2: PPO's KL-penalised surrogate, maximised exactly, and its adaptive coefficient.

Oracles: ``harl_mini.tabular.trpo.kl_penalty_maximiser`` (Chapter 5, eq. ``eq-ppo-klpen``: in
every state the maximiser of Σ_a q(a)A(s,a) − c_KL·KL(π(·|s) ‖ q)) and
``harl_mini.tabular.trpo.adapt_kl_coef`` (PPO's rule: halve c_KL below d_targ/1.5, double it
above 1.5·d_targ). The second check also runs the student's rule inside exact PPO-KLPEN
iterations (``trpo.run_kl_penalty`` with the student's rule in place of the oracle's).
"""

from __future__ import annotations

import torch

from harl_mini import tabular
from harl_mini.grading.core import Tolerance, register
from harl_mini.tabular import trpo

__all__ = ["check_kl_penalty_maximiser", "check_next_kl_coef"]

F64 = torch.float64


def _table(gen, S, A, scale=1.0):
    pi = tabular.softmax_policy(1.5 * torch.randn(S, A, generator=gen, dtype=F64))
    adv = scale * torch.randn(S, A, generator=gen, dtype=F64)
    return pi, adv


def _variants(pi, adv, c):
    """Maximisers the classic mistakes compute, for hints."""
    tilt = pi * torch.exp((adv - adv.max(-1, keepdim=True).values) / c)
    linear = (pi * (1 + (adv - (pi * adv).sum(-1, keepdim=True)) / c)).clamp_min(0)
    out = {"tilt": tilt / tilt.sum(-1, keepdim=True), "linear": linear / linear.sum(-1, keepdim=True),
           "c = 1": trpo.kl_penalty_maximiser(pi, adv, 1.0) if c != 1 else None,
           "pi": pi}
    return {k: v for k, v in out.items() if v is not None}


HINTS = [
    ("tilt", "q ∝ π·exp(A/c_KL) maximises the penalty with the REVERSE divergence KL(q ‖ π); PPO's penalty is "
             "KL(π ‖ q), old policy first: set the derivative of Σ_a q A + c_KL Σ_a π log q, plus a multiplier "
             "for Σ_a q = 1, to zero"),
    ("linear", "that is a first-order (small-step) approximation; the stationarity condition can be solved "
               "exactly, with one scalar per state found numerically"),
    ("c = 1", "your answer does not depend on c_KL"),
    ("pi", "your q is the old policy: the surrogate term Σ_a q(a) A(s, a) rewards moving"),
]


def _describe(pi, adv, c, what):
    def text(idx):
        s = idx[0]
        return (f"{what}; c_KL = {c:g}; in state {s}: π = {[round(float(x), 4) for x in pi[s]]}, "
                f"A = {[round(float(x), 4) for x in adv[s]]}")
    return text


@register(function="kl_penalty_maximiser", equation="eq-ppo-klpen",
          parts={"one state, two actions": 1, "random tables": 1, "large and small c_KL": 1,
                 "an action the old policy never takes": 1},
          tol=Tolerance(atol=1e-8, rtol=0.0), tol32=Tolerance(atol=1e-5, rtol=0.0))
def check_kl_penalty_maximiser(student_fn, ctx) -> None:
    """Your q matches the exact maximiser in every state, entry by entry.

    Tolerance: |q(a|s) − q*(a|s)| ≤ 1e-8 (float64), ≤ 1e-5 (float32). The maximiser is unique
    (the objective is strictly concave on the simplex where π > 0) and the one scalar per
    state can be found to round-off by bisection or Newton's method.
    """

    def one(pi, adv, c, what):
        want = trpo.kl_penalty_maximiser(pi, adv, c)
        out = ctx.call(pi.clone(), adv.clone(), c)
        variants = _variants(pi, adv, c)
        ctx.close(out, want, f"q ({what}, c_KL = {c:g})", where=lambda idx: f"q(a={idx[1]} | s={idx[0]})",
                  describe=_describe(pi, adv, c, what), hints=[(variants[k], t) for k, t in HINTS if k in variants])

    with ctx.part("one state, two actions"):
        one(torch.tensor([[0.5, 0.5]], dtype=F64), torch.tensor([[1.0, -1.0]], dtype=F64), 1.0, "the notebook's example")
        pi, adv = _table(ctx.gen, 1, 2)
        one(pi, adv, 0.5, "one drawn state")
    with ctx.part("random tables"):
        for c in (0.3, 1.0, 3.0):
            S, A = int(torch.randint(2, 7, (), generator=ctx.gen)), int(torch.randint(2, 5, (), generator=ctx.gen))
            one(*_table(ctx.gen, S, A), c, f"a random [{S}, {A}] table")
    with ctx.part("large and small c_KL"):
        pi, adv = _table(ctx.gen, 4, 3)
        one(pi, adv, 100.0, "a large coefficient: q stays close to π")
        one(pi, adv, 0.01, "a small coefficient: q is nearly greedy")
    with ctx.part("an action the old policy never takes"):
        pi, adv = _table(ctx.gen, 4, 3)
        pi[:, 2] = 0.0
        pi = pi / pi.sum(-1, keepdim=True)
        adv[:, 2] = adv.abs().max() + 1.0  # the best advantage belongs to the unused action
        one(pi, adv, 0.5, "π(a=2|s) = 0 in every state, and a=2 has the largest advantage")


# --------------------------------------------------------------------------------------- (b)


def _rule_variants(c, d, d_targ):
    return {"inverted": c * 2 if d < d_targ / 1.5 else (c / 2 if d > 1.5 * d_targ else c),
            "factor 1.5": c / 1.5 if d < d_targ / 1.5 else (c * 1.5 if d > 1.5 * d_targ else c),
            "no band": c / 2 if d < d_targ else (c * 2 if d > d_targ else c),
            "band of two": c / 2 if d < d_targ / 2 else (c * 2 if d > 2 * d_targ else c)}


RULE_HINTS = [
    ("inverted", "a mean KL below target means the penalty was too strong: HALVE c_KL then (and double it "
                 "when the KL is too large)"),
    ("factor 1.5", "1.5 sets the band [d_targ/1.5, 1.5·d_targ]; the coefficient is halved or doubled"),
    ("no band", "inside [d_targ/1.5, 1.5·d_targ] the coefficient stays as it is"),
    ("band of two", "the band is [d_targ/1.5, 1.5·d_targ]; 2 is the factor by which c_KL changes"),
]


@register(function="next_kl_coef", equation="eq-ppo-klpen",
          parts={"KL too small": 1, "KL too large": 1, "KL inside the band": 1, "a run of exact PPO-KLPEN": 1},
          tol=Tolerance(atol=0.0, rtol=1e-12), tol32=Tolerance(atol=0.0, rtol=1e-6))
def check_next_kl_coef(student_fn, ctx) -> None:
    """Your next coefficient matches PPO's rule, alone and inside exact PPO-KLPEN iterations.

    Tolerance: relative 1e-12 (halving and doubling are exact in floating point), 1e-6 for
    float32 answers.
    """

    def one(c, d, d_targ, what):
        want = trpo.adapt_kl_coef(c, d, d_targ)
        out = ctx.call(c, d, d_targ)
        variants = _rule_variants(c, d, d_targ)
        ctx.real(out, want, f"the next c_KL ({what})", hints=[(variants[k], t) for k, t in RULE_HINTS],
                 describe=f"c_KL = {c:g}, measured d = {d:g}, d_targ = {d_targ:g} (band [{d_targ / 1.5:.4g}, "
                          f"{1.5 * d_targ:.4g}])")

    u = torch.rand(6, generator=ctx.gen, dtype=F64).tolist()
    with ctx.part("KL too small"):
        one(1.0, 0.001, 0.01, "d is a tenth of d_targ")
        one(1.0, 0.006, 0.01, "d = 0.6·d_targ, just below the band")
        one(0.2 + u[0], 0.01 * (0.05 + 0.55 * u[1]), 0.01, "d below d_targ/1.5")
    with ctx.part("KL too large"):
        one(1.0, 0.05, 0.01, "d is five times d_targ")
        one(1.0, 0.018, 0.01, "d = 1.8·d_targ, just above the band")
        one(0.2 + u[2], 0.01 * (1.6 + 5 * u[3]), 0.01, "d above 1.5·d_targ")
    with ctx.part("KL inside the band"):
        one(3.0, 0.012, 0.01, "d slightly above d_targ")
        one(0.2 + u[4], 0.003 * (0.7 + 0.75 * u[5]), 0.003, "d within [d_targ/1.5, 1.5·d_targ]")
    with ctx.part("a run of exact PPO-KLPEN"):
        seed = int(torch.randint(0, 10**6, (), generator=ctx.gen))
        m = tabular.random_mdp(4, 3, gamma=0.9, seed=seed)
        pi = tabular.softmax_policy(torch.randn(4, 3, generator=ctx.gen, dtype=F64))
        c, d_targ = 50.0, 0.01
        for i in range(12):  # the oracle's iterations, the student's rule
            q = trpo.kl_penalty_maximiser(pi, tabular.advantage(m, pi), c)
            d = float(tabular.mean_kl(pi, q, tabular.state_distribution(m, pi)))
            out = ctx.call(c, d, d_targ)
            one_what = f"iteration {i} of exact PPO-KLPEN on random MDP {seed}, started at c_KL = 50"
            want = trpo.adapt_kl_coef(c, d, d_targ)
            variants = _rule_variants(c, d, d_targ)
            ctx.real(out, want, f"the next c_KL ({one_what})", hints=[(variants[k], t) for k, t in RULE_HINTS],
                     describe=f"c_KL = {c:g}, measured d = {d:.4g}, d_targ = {d_targ:g}")
            c, pi = want, q
