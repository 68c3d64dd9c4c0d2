"""Checks for Exercise 1: policy evaluation by a linear solve and one value-iteration backup.

References: ``harl_mini.tabular.value`` (eq. ``eq-policy-evaluation``) and
``harl_mini.tabular.bellman_optimality_backup`` (eq. ``eq-value-iteration``).
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import call_student, expect_close, expect_tensor, register
from harl_mini.tabular import bellman_optimality_backup, gridworld, random_mdp, random_policy, value

__all__ = ["check_policy_evaluation", "check_value_iteration_step"]


def _mdps():
    """Dense and sparse random MDPs with several discounts, plus the 4x3 gridworld."""
    yield random_mdp(4, 2, gamma=0.9, seed=10)
    yield random_mdp(6, 3, gamma=0.5, seed=11)
    yield random_mdp(8, 4, gamma=0.99, seed=12, branching=2)
    yield random_mdp(5, 3, gamma=0.0, seed=13)
    yield gridworld("4x3", slip=0.2, gamma=0.95).mdp


@register("ex01", equation="eq-policy-evaluation")
def check_policy_evaluation(student_fn) -> None:
    """``student_fn(P, R, gamma, pi)`` returns V^π, the solution of (I − γ P_π) V = r_π."""
    for i, mdp in enumerate(_mdps()):
        pi = random_policy(mdp, seed=i)
        S = mdp.num_states
        out = expect_tensor(call_student(student_fn, mdp.P, mdp.R, mdp.gamma, pi), (S,),
                            f"V for an MDP with S={S}, A={mdp.num_actions}")
        expect_close(out, value(mdp, pi), f"V(s) for S={S}, A={mdp.num_actions}, gamma={mdp.gamma}")


@register("ex01", equation="eq-value-iteration")
def check_value_iteration_step(student_fn) -> None:
    """``student_fn(P, R, gamma, V)`` returns (T V)(s) = max_a [R(s,a) + γ Σ_s' P(s'|s,a) V(s')]."""
    gen = torch.Generator().manual_seed(2)
    for mdp in _mdps():
        S = mdp.num_states
        V = torch.randn(S, generator=gen, dtype=torch.float64) * 2
        out = expect_tensor(call_student(student_fn, mdp.P, mdp.R, mdp.gamma, V), (S,),
                            f"T V for an MDP with S={S}, A={mdp.num_actions}")
        expect_close(out, bellman_optimality_backup(mdp, V),
                     f"(T V)(s) for S={S}, A={mdp.num_actions}, gamma={mdp.gamma}")
