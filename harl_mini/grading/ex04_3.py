"""Checks for Exercise 4.3: the full TRPO step in closed form (TRPO is NPG with the step set by δ).

Oracle: ``harl_mini.tabular.trpo.exact_trpo_step`` (Chapter 4, eq. ``eq-trpo-npg``): conjugate
gradient on the exact Fisher matrix under d_π, β = √(2δ / sᵀFs), full step θ + βs. The
student's ``trpo_full_step(mdp, theta, delta)`` returns the new logits [S, A] without conjugate
gradient. Logits are compared through their policies: adding a constant to a state's logits
does not change the policy, so any per-state shift is accepted.
"""

from __future__ import annotations

import math

import torch

from harl_mini import tabular
from harl_mini.grading.core import CheckFailed, Tolerance, as_array, register
from harl_mini.grading.ex04_2 import unreachable_state_mdp
from harl_mini.tabular import trpo

__all__ = ["check_trpo_full_step"]

F64 = torch.float64


def _fresh(mdp: tabular.FiniteMDP) -> tabular.FiniteMDP:
    return tabular.FiniteMDP(mdp.P.clone(), mdp.R.clone(), mdp.gamma, mdp.rho0.clone(), mdp.name)


def _full_step_policy(m, theta, delta) -> torch.Tensor:
    step = trpo.exact_trpo_step(m, theta, delta)
    return tabular.softmax_policy(theta + step.beta * step.direction)


def _variants(m, theta, delta):
    """Policies the classic mistakes produce, for hints."""
    pi = tabular.softmax_policy(theta)
    adv, d = tabular.advantage(m, pi), tabular.state_distribution(m, pi)
    g = m.gamma
    mean_sq = float((d[:, None] * pi * adv**2).sum())
    centred = (adv - adv.mean(-1, keepdim=True)) / (1 - g)
    reach = (d > 0).to(F64)[:, None]
    beta = (1 - g) * math.sqrt(2 * delta / mean_sq)
    grad = tabular.policy_gradient(m, theta)
    gFg = float((grad * tabular.fisher_vector_product(m, theta, grad)).sum())
    return {
        "no 1-gamma": tabular.softmax_policy(theta + math.sqrt(2 * delta / mean_sq) * centred * reach),
        "rho": tabular.softmax_policy(theta + (1 - g) * math.sqrt(2 * delta * (1 - g) / mean_sq) * centred * reach),
        "no 2": tabular.softmax_policy(theta + (1 - g) * math.sqrt(delta / mean_sq) * centred * reach),
        "gradient": tabular.softmax_policy(theta + math.sqrt(2 * delta / gFg) * grad),
        "unreachable": tabular.softmax_policy(theta + beta * centred),
    }


HINTS = [
    ("no 1-gamma", "β = (1 − γ)·√(2δ / E_{d_π, π}[A²]): the factor 1 − γ is missing"),
    ("rho", "the mean of A² is under d_π = (1 − γ) ρ_π (normalised), not under ρ_π"),
    ("no 2", "the quadratic model is ½ ΔᵀFΔ = δ, so β = √(2δ / sᵀFs): the 2 is missing"),
    ("gradient", "that step goes along the plain gradient g; TRPO's direction is the natural gradient "
                 "s = F⁺g, which for the tabular softmax is (A − per-state mean of A)/(1 − γ)"),
    ("unreachable", "in a state with d_π(s) = 0 the gradient and the Fisher block are zero, so F⁺g is 0 "
                    "there: leave those logits alone"),
]


def _describe(m, theta, delta, what):
    pi = tabular.softmax_policy(theta)
    d = tabular.state_distribution(m, pi)
    unvisited = [s for s in range(m.num_states) if float(d[s]) == 0.0]
    text = (f"{what}: S = {m.num_states}, A = {m.num_actions}, γ = {m.gamma:g}, δ = {delta:g}, "
            f"max π(a|s) = {float(pi.max()):.3g}")
    if unvisited:
        text += f"; state(s) {unvisited} have d_π(s) = 0"
    return text


@register(function="trpo_full_step", equation="eq-trpo-npg",
          parts={"the notebook's MDP": 1, "random MDPs and radii": 1, "a state the policy never reaches": 1,
                 "the quadratic KL model of your step is δ": 1},
          tol=Tolerance(atol=1e-8, rtol=0.0), tol32=Tolerance(atol=1e-5, rtol=0.0))
def check_trpo_full_step(student_fn, ctx) -> None:
    """softmax(your logits) matches the policy of the oracle's full step θ + βs, entry by entry.

    Tolerance: |π_yours(a|s) − π_oracle(a|s)| ≤ 1e-8 (float64 logits), ≤ 1e-5 (float32). The
    oracle solves F s = g by conjugate gradient to a squared residual of 1e-20·‖g‖², which
    moves the probabilities by far less than 1e-9 (Chapter 4 checks this against
    ``npg_update``); a closed form is exact.
    """

    def step(m, theta, delta, what):
        want = _full_step_policy(m, theta, delta)
        out = ctx.call(_fresh(m), theta.clone(), delta)
        logits, lowp = as_array(out, tuple(theta.shape), "your new logits", broadcast=False)
        got = tabular.softmax_policy(logits)
        got = got.to(torch.float32) if lowp else got
        variants = _variants(m, theta, delta)
        ctx.close(got, want, f"softmax(your logits) ({what}, δ = {delta:g})",
                  where=lambda idx: f"π(a={idx[1]} | s={idx[0]})",
                  describe=lambda idx: _describe(m, theta, delta, what),
                  hints=[(variants[k], text) for k, text in HINTS])
        return logits

    with ctx.part("the notebook's MDP"):
        m = tabular.random_mdp(6, 3, gamma=0.9, seed=0)
        theta = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
        step(m, theta, 0.01, "random MDP seed 0, θ ~ N(0, 1)")
    with ctx.part("random MDPs and radii"):
        for delta in (1e-3, 0.05, 0.3):
            S, A = int(torch.randint(3, 7, (), generator=ctx.gen)), int(torch.randint(2, 5, (), generator=ctx.gen))
            gamma = (0.5, 0.9, 0.95)[int(torch.randint(0, 3, (), generator=ctx.gen))]
            m = tabular.random_mdp(S, A, gamma=gamma, seed=int(torch.randint(0, 10**6, (), generator=ctx.gen)))
            theta = 1.5 * torch.randn(S, A, generator=ctx.gen, dtype=F64)
            step(m, theta, delta, "a random MDP")
    with ctx.part("a state the policy never reaches"):
        for seed in (5, int(torch.randint(0, 10**6, (), generator=ctx.gen))):
            m = unreachable_state_mdp(5, 3, 0.9, seed)
            theta = torch.randn(5, 3, generator=ctx.gen, dtype=F64)
            step(m, theta, 0.05, "an MDP whose last state is never reached")
    with ctx.part("the quadratic KL model of your step is δ"):
        for delta in (0.01, 0.2):
            m = tabular.random_mdp(4, 3, gamma=0.8, seed=int(torch.randint(0, 10**6, (), generator=ctx.gen)))
            theta = torch.randn(4, 3, generator=ctx.gen, dtype=F64)
            out = ctx.call(_fresh(m), theta.clone(), delta)
            logits, lowp = as_array(out, (4, 3), "your new logits", broadcast=False)
            diff = logits - theta
            model = 0.5 * float((diff * tabular.fisher_vector_product(m, theta, diff)).sum())
            tol = 1e-4 if lowp else 1e-9
            if not abs(model / delta - 1) <= tol:
                raise CheckFailed(f"the quadratic model ½ ΔᵀFΔ of your step Δ = θ_new − θ is {model:.6g}, "
                                  f"expected δ = {delta:g}",
                                  input=_describe(m, theta, delta, "a random MDP"),
                                  hint="scale the natural-gradient direction s by β = √(2δ / sᵀFs); per-state "
                                       "shifts of the logits do not change ½ ΔᵀFΔ")
