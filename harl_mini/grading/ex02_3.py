"""Checks for Exercise 2.3: the exact policy gradient, and the direction that batches without γ^t follow.

Oracles: ``harl_mini.tabular.policy_gradient`` (Chapter 2, eq. ``eq-pg-softmax``: ρ_π(s) π(a|s)
A_π(s, a), itself checked against autograd of J in the chapter) and
``harl_mini.tabular.expected_reinforce_direction`` with ``discount_weights=False`` (eq.
``eq-pg-undiscounted``; the unit tests check it against the exact mean over every episode).

Tolerances: 1e-8 + 1e-6·|expected| entrywise for float64 answers, 1e-5 + 1e-4·|expected| for
float32 answers. Both answers come from a few linear solves or H ≤ 60 matrix-vector products with
|entries| ≤ 100, whose round-off is below 1e-12.
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import register
from harl_mini.tabular import (
    FiniteMDP,
    advantage,
    expected_reinforce_direction,
    policy_gradient,
    q_from_v,
    q_value,
    random_logits,
    random_mdp,
    softmax_policy,
    transition_matrix,
    visitation,
    with_unreachable_state,
)

__all__ = ["check_exact_policy_gradient", "check_undiscounted_direction"]

f64 = torch.float64


def _seed(ctx) -> int:
    return int(torch.randint(2**31 - 1, (), generator=ctx.gen))


def _random_rho0(ctx, S: int) -> torch.Tensor:
    w = torch.rand(S, generator=ctx.gen, dtype=f64) + 0.05
    return w / w.sum()


def _describe(mdp: FiniteMDP) -> str:
    uniform = bool(torch.allclose(mdp.rho0, torch.full_like(mdp.rho0, 1 / mdp.num_states)))
    return (f"{mdp.name} with S={mdp.num_states}, A={mdp.num_actions}, gamma={mdp.gamma:g}, "
            f"{'uniform' if uniform else 'non-uniform'} rho0 {[round(float(x), 3) for x in mdp.rho0]}")


def _with_rho0(mdp: FiniteMDP, rho0: torch.Tensor) -> FiniteMDP:
    return FiniteMDP(mdp.P, mdp.R, mdp.gamma, rho0, name=mdp.name)


@register(function="exact_policy_gradient", equation="eq-pg-softmax",
          parts={"uniform rho0": 1, "a random rho0": 1, "gamma = 0.99": 1, "a state the policy never visits": 1})
def check_exact_policy_gradient(student_fn, ctx) -> None:
    """``student_fn(P, R, rho0, gamma, theta)`` returns ∂J/∂θ [S, A] for the tabular softmax policy π_θ.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|∂J/∂θ_{s,a}| (float64 answers), ≤ 1e-5 + 1e-4·|∂J/∂θ_{s,a}|
    (float32 answers).
    """
    cases = {
        "uniform rho0": [random_mdp(4, 3, gamma=0.9, seed=_seed(ctx)),
                         random_mdp(int(torch.randint(2, 8, (), generator=ctx.gen)), 2, gamma=0.8, seed=_seed(ctx))],
        "a random rho0": [_with_rho0(random_mdp(5, 3, gamma=0.9, seed=_seed(ctx), branching=2), _random_rho0(ctx, 5))],
        "gamma = 0.99": [random_mdp(6, 2, gamma=0.99, seed=_seed(ctx))],
        "a state the policy never visits": [with_unreachable_state(random_mdp(5, 3, gamma=0.9, seed=_seed(ctx)))],
    }
    for part, mdps in cases.items():
        with ctx.part(part):
            for mdp in mdps:
                theta = random_logits(mdp, seed=_seed(ctx))
                pi = softmax_policy(theta)
                rho, adv, Q = visitation(mdp, pi), advantage(mdp, pi), q_value(mdp, pi)
                eye = torch.eye(mdp.num_states, dtype=f64)
                rho_wrong = torch.linalg.solve(eye - mdp.gamma * transition_matrix(mdp, pi), mdp.rho0)
                out = ctx.call(mdp.P, mdp.R, mdp.rho0, mdp.gamma, theta)
                ctx.close(out, policy_gradient(mdp, theta), f"∂J/∂θ ({_describe(mdp)})",
                          where=lambda idx: f"logit θ[{idx[0]}, {idx[1]}]",
                          describe=lambda idx, mdp=mdp: _describe(mdp),
                          hints=[(lambda: (1 - mdp.gamma) * rho[:, None] * pi * adv,
                                  "that is d_π(s) π(a|s) A(s, a); the gradient of J carries the unnormalised "
                                  "visitation ρ_π = d_π/(1 − γ)"),
                                 (lambda: rho[:, None] * pi * Q,
                                  "use the advantage A = Q − V: for the softmax, Σ_a ∇π(a|s) V(s) = 0 turns "
                                  "∇π·Q into π (Q − V)"),
                                 (lambda: rho_wrong[:, None] * pi * adv,
                                  "the visitation solves ρ = ρ0 + γ P_πᵀ ρ (a transposed system), "
                                  "not (I − γ P_π) ρ = ρ0"),
                                 (lambda: mdp.rho0[:, None] * pi * adv,
                                  "states are weighted by the discounted visitation ρ_π, not by ρ0")])


def _direction(mdp: FiniteMDP, theta: torch.Tensor, H: int, *, k_shift: int = 0, start_only: bool = False,
               infinite_q: bool = False) -> torch.Tensor:
    """eq-pg-undiscounted with one known mistake switched on (for hints only)."""
    pi = softmax_policy(theta)
    P_pi = transition_matrix(mdp, pi)
    advs, V = [], torch.zeros(mdp.num_states, dtype=f64)
    for _ in range(H + 1):
        Q = q_from_v(mdp, V)
        V = (pi * Q).sum(-1)
        advs.append(Q - V[:, None])
    p_t, out = mdp.rho0, torch.zeros_like(pi)
    for t in range(H):
        k = min(max(H - t + k_shift, 1), H + 1)
        adv = advantage(mdp, pi) if infinite_q else advs[k - 1]
        out = out + p_t[:, None] * pi * adv
        if not start_only:
            p_t = p_t @ P_pi
    return out


@register(function="undiscounted_direction", equation="eq-pg-undiscounted",
          parts={"H = 1": 1, "short horizons": 1, "a long horizon (H = 60)": 1, "a random rho0 and a sparse MDP": 1})
def check_undiscounted_direction(student_fn, ctx) -> None:
    """``student_fn(P, R, rho0, gamma, theta, H)`` returns the exact mean [S, A] of the batch estimator
    Σ_{t<H} ∇_θ log π_θ(a_t|s_t) (G_t − b(s_t)) on episodes of H steps (no weights γ^t).

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| entrywise (float64 answers), ≤ 1e-5 + 1e-4·|expected|
    (float32 answers).
    """
    cases = {
        "H = 1": [(random_mdp(4, 3, gamma=0.9, seed=_seed(ctx)), 1)],
        "short horizons": [(random_mdp(3, 2, gamma=0.8, seed=_seed(ctx)), 2),
                           (random_mdp(4, 3, gamma=0.9, seed=_seed(ctx)), 3),
                           (random_mdp(int(torch.randint(2, 7, (), generator=ctx.gen)), 2, gamma=0.7, seed=_seed(ctx)),
                            int(torch.randint(2, 8, (), generator=ctx.gen)))],
        "a long horizon (H = 60)": [(random_mdp(5, 3, gamma=0.95, seed=_seed(ctx)), 60)],
        "a random rho0 and a sparse MDP": [
            (_with_rho0(random_mdp(6, 3, gamma=0.9, seed=_seed(ctx), branching=1), _random_rho0(ctx, 6)), 8)],
    }
    for part, items in cases.items():
        with ctx.part(part):
            for mdp, H in items:
                theta = random_logits(mdp, seed=_seed(ctx))
                out = ctx.call(mdp.P, mdp.R, mdp.rho0, mdp.gamma, theta, H)
                want = expected_reinforce_direction(mdp, theta, H, discount_weights=False)
                ctx.close(out, want, f"the mean direction ḡ_H (H={H}, {_describe(mdp)})",
                          where=lambda idx: f"logit θ[{idx[0]}, {idx[1]}]",
                          describe=lambda idx, mdp=mdp, H=H: f"{_describe(mdp)}, episodes of H={H} steps",
                          hints=[(lambda mdp=mdp, H=H, th=theta: expected_reinforce_direction(mdp, th, H),
                                  "that is ∇J_H, with the weights γ^t; the batch estimator drops them"),
                                 (lambda mdp=mdp, H=H, th=theta: _direction(mdp, th, H, infinite_q=True),
                                  "G_t only sums the H − t rewards left in the episode: its mean is the value "
                                  "of H − t steps, Q^(H−t), not Q_π"),
                                 (lambda mdp=mdp, H=H, th=theta: _direction(mdp, th, H, k_shift=1),
                                  "off by one: at step t there are H − t rewards left (Q^(H−t)), not H − t + 1"),
                                 (lambda mdp=mdp, H=H, th=theta: _direction(mdp, th, H, k_shift=-1),
                                  "off by one: at step t there are H − t rewards left (Q^(H−t)), not H − t − 1"),
                                 (lambda mdp=mdp, H=H, th=theta: _direction(mdp, th, H, start_only=True),
                                  "the state at step t is distributed as ρ0 P_π^t, not as ρ0")])
