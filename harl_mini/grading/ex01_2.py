"""Checks for Exercise 1.2: policy evaluation by a linear solve and one value-iteration backup.

Oracles: ``harl_mini.tabular.value`` (Chapter 1, eq. ``eq-policy-evaluation``) and
``harl_mini.tabular.bellman_optimality_backup`` (eq. ``eq-value-iteration``).
Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| entrywise (float64), 1e-5 + 1e-4·|expected|
(float32). V^π reaches 1/(1 − γ) = 100 at γ = 0.99, so the relative term matters there.
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import register
from harl_mini.tabular import FiniteMDP, bellman_optimality_backup, gridworld, random_mdp, random_policy, value

__all__ = ["check_policy_evaluation", "check_value_iteration_step"]

PARTS = {"dense random MDPs": 1, "sparse MDP (two successors per action)": 1, "gamma = 0": 1,
         "the 4x3 gridworld": 1}


def _seed(ctx) -> int:
    return int(torch.randint(2**31 - 1, (), generator=ctx.gen))


def _mdps(ctx):
    """Part name -> MDPs: fixed shapes with seeds drawn from the grader's seed, and the gridworld."""
    return {
        "dense random MDPs": [random_mdp(4, 2, gamma=0.9, seed=_seed(ctx)), random_mdp(6, 3, gamma=0.5, seed=_seed(ctx)),
                              random_mdp(7, 4, gamma=0.99, seed=_seed(ctx))],
        "sparse MDP (two successors per action)": [random_mdp(8, 4, gamma=0.99, seed=_seed(ctx), branching=2)],
        "gamma = 0": [random_mdp(5, 3, gamma=0.0, seed=_seed(ctx))],
        "the 4x3 gridworld": [gridworld("4x3", slip=0.2, gamma=0.95).mdp],
    }


def _describe(mdp: FiniteMDP) -> str:
    return f"{mdp.name} with S={mdp.num_states}, A={mdp.num_actions}, gamma={mdp.gamma:g}"


@register(function="policy_evaluation", equation="eq-policy-evaluation", parts=PARTS)
def check_policy_evaluation(student_fn, ctx) -> None:
    """``student_fn(P, R, gamma, pi)`` returns V^π, the solution of (I − γ P_π) V = r_π.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|V^π(s)| (float64 answers), ≤ 1e-5 + 1e-4·|V^π(s)| (float32 answers).
    """
    for part, mdps in _mdps(ctx).items():
        with ctx.part(part):
            for mdp in mdps:
                pi = random_policy(mdp, seed=_seed(ctx))
                P_pi = torch.einsum("sa,sat->st", pi, mdp.P)
                r_pi = (pi * mdp.R).sum(1)
                eye = torch.eye(mdp.num_states, dtype=torch.float64)
                out = ctx.call(mdp.P, mdp.R, mdp.gamma, pi)
                ctx.close(out, value(mdp, pi), f"V^pi ({_describe(mdp)})",
                          where=lambda idx: f"state s={idx[0]}", describe=lambda idx, mdp=mdp: _describe(mdp),
                          hints=[(lambda: r_pi, "that is r_pi, one backup from V = 0; solve the linear system "
                                                "(I − γ P_pi) V = r_pi"),
                                 (lambda: torch.linalg.solve(eye - mdp.gamma * P_pi.T, r_pi),
                                  "P_pi[s, s'] = Σ_a π(a|s) P[s, a, s'] multiplies V from the right; no transpose"),
                                 (lambda: torch.linalg.solve(eye - mdp.gamma * P_pi, mdp.R.max(1).values),
                                  "r_pi(s) = Σ_a π(a|s) R(s, a), the policy's expected reward, not the best one")])


@register(function="value_iteration_step", equation="eq-value-iteration", parts=PARTS)
def check_value_iteration_step(student_fn, ctx) -> None:
    """``student_fn(P, R, gamma, V)`` returns (T V)(s) = max_a [R(s,a) + γ Σ_s' P(s'|s,a) V(s')].

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|(T V)(s)| (float64 answers), ≤ 1e-5 + 1e-4·|(T V)(s)| (float32 answers).
    """
    for part, mdps in _mdps(ctx).items():
        with ctx.part(part):
            for mdp in mdps:
                V = torch.randn(mdp.num_states, generator=ctx.gen, dtype=torch.float64) * 2
                Q = mdp.R + mdp.gamma * torch.einsum("sat,t->sa", mdp.P, V)
                out = ctx.call(mdp.P, mdp.R, mdp.gamma, V)
                ctx.close(out, bellman_optimality_backup(mdp, V), f"T V ({_describe(mdp)})",
                          where=lambda idx: f"state s={idx[0]}", describe=lambda idx, mdp=mdp: _describe(mdp),
                          hints=[(lambda: Q.mean(1), "the optimality backup takes the max over actions, not the mean"),
                                 (lambda: Q.min(1).values, "max over actions, not min"),
                                 (lambda: (mdp.R + torch.einsum("sat,t->sa", mdp.P, V)).max(1).values,
                                  "the next state's value is discounted by gamma"),
                                 (lambda: (mdp.R + mdp.gamma * torch.einsum("tas,t->sa", mdp.P, V)).max(1).values,
                                  "P[s, a, s'] is the probability of s' after (s, a): sum over the last axis")])
