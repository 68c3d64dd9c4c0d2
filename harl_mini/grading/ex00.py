"""Checks for Exercise 0: discounted returns and one Bellman expectation backup.

Each check draws seeded float64 inputs, calls the student's function and compares it with
the package's own implementation (``harl_mini.advantages.discounted_returns`` and
``harl_mini.tabular.bellman_expectation_backup``).
"""

from __future__ import annotations

import torch

from harl_mini.advantages import discounted_returns
from harl_mini.grading.core import call_student, expect_close, expect_tensor, register
from harl_mini.tabular import FiniteMDP, bellman_expectation_backup, random_mdp, random_policy

__all__ = ["check_discounted_returns", "check_bellman_backup"]


@register("ex00", equation="eq-return")
def check_discounted_returns(student_fn) -> None:
    """``student_fn(rewards, gamma)`` returns G_t = Σ_{k≥t} γ^{k−t} r_k for a 1-D reward tensor."""
    gen = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64), 0.5)]
    for T, gamma in [(1, 0.9), (7, 0.9), (25, 0.99), (12, 0.0), (10, 1.0)]:
        cases.append((torch.randn(T, generator=gen, dtype=torch.float64), gamma))
    for rewards, gamma in cases:
        out = expect_tensor(call_student(student_fn, rewards, gamma), tuple(rewards.shape),
                            f"the returns for T={rewards.numel()}, gamma={gamma}")
        expect_close(out, discounted_returns(rewards, gamma), f"G_t (T={rewards.numel()}, gamma={gamma})")


@register("ex00", equation="eq-bellman-expectation")
def check_bellman_backup(student_fn) -> None:
    """``student_fn(P, R, gamma, pi, V)`` returns (T^π V)(s) = Σ_a π(a|s)[R(s,a) + γ Σ_s' P(s'|s,a) V(s')]."""
    gen = torch.Generator().manual_seed(1)
    for seed, (S, A, gamma) in enumerate([(3, 2, 0.9), (5, 4, 0.5), (6, 3, 0.99), (4, 5, 0.0)]):
        mdp: FiniteMDP = random_mdp(S, A, gamma=gamma, seed=seed)
        pi = random_policy(mdp, seed=seed)
        V = torch.randn(S, generator=gen, dtype=torch.float64) * 3
        out = call_student(student_fn, mdp.P, mdp.R, gamma, pi, V)
        out = expect_tensor(out, (S,), f"T^pi V for S={S}, A={A}")
        expect_close(out, bellman_expectation_backup(mdp, pi, V), f"(T^pi V)(s) for S={S}, A={A}, gamma={gamma}")
