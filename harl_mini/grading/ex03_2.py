"""Checks for Exercise 3.2: the natural gradient of a tabular softmax policy in closed form, and NPG.

Oracles: ``harl_mini.tabular.natural_gradient`` (Chapter 3, eq. ``eq-natural-gradient-softmax``:
the exact block pseudo-inverse F⁺∇J, checked in the chapter against a generic pseudo-inverse)
and ``harl_mini.tabular.run_npg`` (T steps of eq. ``eq-npg`` from θ = 0; its policy is the
multiplicative-weights update, eq. ``eq-npg-mw``, on reachable states).

Tolerances: F⁺∇J within 1e-8 + 1e-6·|expected| entrywise (float64 answers), 1e-5 + 1e-4·|expected|
(float32 answers); the policy π^(T) within 1e-8 + 1e-6·π (float64), 1e-5 + 1e-4·π (float32).
Both are computed from a few linear solves of size ≤ 6 with |A|/(1 − γ) ≤ 100, and the NPG run
by at most 10 steps, so their round-off is below 1e-12.
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import register
from harl_mini.tabular import (
    FiniteMDP,
    advantage,
    natural_gradient,
    policy_gradient,
    random_logits,
    random_mdp,
    run_npg,
    run_pg,
    softmax_policy,
    state_distribution,
    uniform_policy,
    with_unreachable_state,
)

__all__ = ["check_natural_gradient", "check_npg_policy"]

f64 = torch.float64


def _seed(ctx) -> int:
    return int(torch.randint(2**31 - 1, (), generator=ctx.gen))


def _describe(mdp: FiniteMDP) -> str:
    reach = state_distribution(mdp, uniform_policy(mdp)) > 0
    never = [int(s) for s in torch.nonzero(~reach).flatten()]
    extra = f"; state(s) {never} cannot be reached from rho0" if never else ""
    return f"{mdp.name} with S={mdp.num_states}, A={mdp.num_actions}, gamma={mdp.gamma:g}{extra}"


@register(function="natural_gradient", equation="eq-natural-gradient-softmax",
          parts={"random MDPs": 1, "an unreachable state": 1, "a nearly deterministic policy": 1})
def check_natural_gradient(student_fn, ctx) -> None:
    """``student_fn(P, R, rho0, gamma, theta)`` returns F⁺∇J [S, A], the minimum-norm natural gradient.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| entrywise (float64 answers), ≤ 1e-5 + 1e-4·|expected|
    (float32 answers).
    """
    cases = {
        "random MDPs": [(random_mdp(4, 3, gamma=0.9, seed=_seed(ctx)), 1.5),
                        (random_mdp(int(torch.randint(2, 7, (), generator=ctx.gen)), 4, gamma=0.7, seed=_seed(ctx),
                                    branching=2), 1.5)],
        "an unreachable state": [(with_unreachable_state(random_mdp(5, 3, gamma=0.8, seed=_seed(ctx))), 1.5)],
        "a nearly deterministic policy": [(random_mdp(4, 3, gamma=0.9, seed=_seed(ctx)), 6.0)],
    }
    for part, items in cases.items():
        with ctx.part(part):
            for mdp, scale in items:
                theta = random_logits(mdp, seed=_seed(ctx), scale=scale)
                pi = softmax_policy(theta)
                adv = advantage(mdp, pi)
                reach = (state_distribution(mdp, pi) > 0)[:, None]
                centred = (adv - adv.mean(-1, keepdim=True)) / (1 - mdp.gamma)
                out = ctx.call(mdp.P, mdp.R, mdp.rho0, mdp.gamma, theta)
                ctx.close(out, natural_gradient(mdp, theta), f"F⁺∇J ({_describe(mdp)})",
                          where=lambda idx: f"logit θ[{idx[0]}, {idx[1]}]",
                          describe=lambda idx, mdp=mdp: _describe(mdp),
                          hints=[(lambda: torch.where(reach, adv / (1 - mdp.gamma), 0.0),
                                  "A/(1 − γ) solves F w = ∇J, but so does A/(1 − γ) plus any constant per state; "
                                  "F⁺ picks the solution of smallest norm: subtract each state's mean over actions"),
                                 (lambda: (1 - mdp.gamma) * centred * reach,
                                  "the natural gradient carries the factor 1/(1 − γ): ∇J is weighted by ρ_π, "
                                  "F by d_π = (1 − γ) ρ_π"),
                                 (lambda: centred,
                                  "on a state with d_π(s) = 0 both F and ∇J vanish, and the minimum-norm solution "
                                  "there is 0"),
                                 (lambda: policy_gradient(mdp, theta), "that is ∇J itself; apply F⁺ to it")])


def _mw_everywhere(mdp: FiniteMDP, eta: float, T: int) -> torch.Tensor:
    """Multiplicative weights in every state, reachable or not (for a hint)."""
    pi = uniform_policy(mdp)
    for _ in range(T):
        pi = torch.softmax(pi.log() + eta * advantage(mdp, pi) / (1 - mdp.gamma), -1)
    return pi


def _mw_frozen(mdp: FiniteMDP, eta: float, T: int) -> torch.Tensor:
    """T steps with the advantage of the first policy (for a hint)."""
    pi = uniform_policy(mdp)
    return torch.softmax(pi.log() + T * eta * advantage(mdp, pi) / (1 - mdp.gamma), -1)


@register(function="npg_policy", equation="eq-npg-mw",
          parts={"one step": 1, "ten steps": 1, "a huge step (eta = 200)": 1, "an unreachable state": 1})
def check_npg_policy(student_fn, ctx) -> None:
    """``student_fn(P, R, rho0, gamma, eta, T)`` returns π^(T) [S, A] after T exact NPG steps from the uniform policy.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·π^(T)(a|s) entrywise (float64 answers), ≤ 1e-5 + 1e-4·π^(T)(a|s)
    (float32 answers).
    """
    cases = {
        "one step": [(random_mdp(4, 3, gamma=0.9, seed=_seed(ctx)), 1.0, 1)],
        "ten steps": [(random_mdp(5, 3, gamma=0.8, seed=_seed(ctx)), 0.5, 10),
                      (random_mdp(int(torch.randint(2, 7, (), generator=ctx.gen)), 2, gamma=0.9, seed=_seed(ctx),
                                  branching=2), 2.0, 10)],
        "a huge step (eta = 200)": [(random_mdp(4, 3, gamma=0.9, seed=_seed(ctx)), 200.0, 3)],
        "an unreachable state": [(with_unreachable_state(random_mdp(5, 3, gamma=0.9, seed=_seed(ctx))), 1.0, 4)],
    }
    for part, items in cases.items():
        with ctx.part(part):
            for mdp, eta, T in items:
                out = ctx.call(mdp.P, mdp.R, mdp.rho0, mdp.gamma, eta, T)
                want = run_npg(mdp, eta, T).pi[-1]
                ctx.close(out, want, f"π^(T) after T={T} NPG steps of size η={eta:g} ({_describe(mdp)})",
                          where=lambda idx: f"state s={idx[0]}, action a={idx[1]}",
                          describe=lambda idx, mdp=mdp, eta=eta, T=T: f"{_describe(mdp)}; η={eta:g}, T={T}",
                          hints=[(lambda mdp=mdp, eta=eta, T=T: run_npg(mdp, eta * (1 - mdp.gamma), T).pi[-1],
                                  "the exponent is η A(s, a)/(1 − γ): the factor 1/(1 − γ) is missing"),
                                 (lambda mdp=mdp, eta=eta, T=T: run_pg(mdp, eta, T).pi[-1],
                                  "that is vanilla policy-gradient ascent, θ += η ∇J; NPG adds η F⁺∇J"),
                                 (lambda mdp=mdp, eta=eta, T=T: _mw_frozen(mdp, eta, T),
                                  "recompute the advantage of the current policy before every step"),
                                 (lambda mdp=mdp, eta=eta, T=T: _mw_everywhere(mdp, eta, T),
                                  "NPG does not update a state the policy cannot reach (d_π(s) = 0: there "
                                  "F⁺∇J = 0), so it keeps its uniform policy")])
