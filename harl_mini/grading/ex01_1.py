"""Checks for Exercise 1.1: discounted returns and one Bellman expectation backup.

Oracles: ``harl_mini.advantages.discounted_returns`` (Chapter 1, eq. ``eq-return``) and
``harl_mini.tabular.bellman_expectation_backup`` (eq. ``eq-bellman-expectation``).
Tolerance of both checks: |got − expected| ≤ 1e-8 + 1e-6·|expected| entrywise for float64
answers, 1e-5 + 1e-4·|expected| for float32 answers.
"""

from __future__ import annotations

import torch

from harl_mini.advantages import discounted_returns
from harl_mini.grading.core import register
from harl_mini.tabular import FiniteMDP, bellman_expectation_backup, random_mdp, random_policy

__all__ = ["check_discounted_returns", "check_bellman_backup"]


@register(function="discounted_returns", equation="eq-return",
          parts={"worked example": 1, "random rewards, 0 < gamma < 1": 1, "gamma = 0 and gamma = 1": 1})
def check_discounted_returns(student_fn, ctx) -> None:
    """``student_fn(rewards, gamma)`` returns G_t = Σ_{k≥t} γ^{k−t} r_k for a 1-D float64 reward tensor.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|G_t| (float64 answers), ≤ 1e-5 + 1e-4·|G_t| (float32 answers).
    """

    def compare(rewards, gamma):
        T = rewards.numel()
        out = ctx.call(rewards, gamma)
        want = discounted_returns(rewards, gamma)
        ctx.close(out, want, f"G (the returns for T={T}, gamma={gamma:g})",
                  where=lambda idx: f"t={idx[0]}",
                  describe=lambda idx: f"rewards {_short(rewards)}, gamma={gamma:g}",
                  hints=[(lambda: gamma * want, "G_t starts with r_t itself: r_t is not discounted"),
                         (lambda: discounted_returns(rewards, 1.0), "each later reward r_k carries γ^(k−t)"),
                         (lambda: discounted_returns(rewards.flip(0), gamma).flip(0),
                          "G_t sums the rewards from t to the end, r_t + γ G_(t+1), so loop backwards"),
                         (lambda: want[:1].expand_as(want), "G_t starts at t, not at 0")])

    with ctx.part("worked example"):
        compare(torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64), 0.5)
        compare(torch.tensor([-3.0], dtype=torch.float64), 0.9)
    with ctx.part("random rewards, 0 < gamma < 1"):
        for T, gamma in [(7, 0.9), (25, 0.99)]:
            compare(torch.randn(T, generator=ctx.gen, dtype=torch.float64), gamma)
        for _ in range(3):
            T = int(torch.randint(2, 40, (), generator=ctx.gen))
            gamma = round(float(torch.rand((), generator=ctx.gen, dtype=torch.float64)) * 0.98 + 0.01, 4)
            compare(torch.randn(T, generator=ctx.gen, dtype=torch.float64) * 2, gamma)
    with ctx.part("gamma = 0 and gamma = 1"):
        for T, gamma in [(12, 0.0), (10, 1.0)]:
            compare(torch.randn(T, generator=ctx.gen, dtype=torch.float64), gamma)


def _short(t: torch.Tensor) -> str:
    values = ", ".join(f"{float(x):.3g}" for x in t.reshape(-1)[:6])
    return f"[{values}{', ...' if t.numel() > 6 else ''}] (T={t.numel()})"


@register(function="bellman_backup", equation="eq-bellman-expectation",
          parts={"random MDPs": 1, "gamma = 0": 1, "deterministic policy": 1})
def check_bellman_backup(student_fn, ctx) -> None:
    """``student_fn(P, R, gamma, pi, V)`` returns (T^π V)(s) = Σ_a π(a|s)[R(s,a) + γ Σ_s' P(s'|s,a) V(s')].

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|(T^π V)(s)| (float64 answers), ≤ 1e-5 + 1e-4·|(T^π V)(s)| (float32 answers).
    """

    def compare(mdp: FiniteMDP, pi: torch.Tensor, V: torch.Tensor):
        S, A, gamma = mdp.num_states, mdp.num_actions, mdp.gamma
        out = ctx.call(mdp.P, mdp.R, gamma, pi, V)
        Q = mdp.R + gamma * torch.einsum("sat,t->sa", mdp.P, V)
        ctx.close(out, bellman_expectation_backup(mdp, pi, V), f"T^pi V (S={S}, A={A}, gamma={gamma:g})",
                  where=lambda idx: f"state s={idx[0]}",
                  describe=lambda idx: f"a random MDP with S={S} states and A={A} actions, gamma={gamma:g}",
                  hints=[(lambda: Q.max(1).values, "that is the optimality backup T V (a max over actions); "
                                                    "T^pi averages the actions under pi(a|s)"),
                         (lambda: Q.mean(1), "weight the actions by pi(a|s), not uniformly"),
                         (lambda: (pi * (mdp.R + torch.einsum("sat,t->sa", mdp.P, V))).sum(1),
                          "the next state's value is discounted by gamma"),
                         (lambda: (pi * (mdp.R + gamma * torch.einsum("tas,t->sa", mdp.P, V))).sum(1),
                          "P[s, a, s'] is the probability of s' after (s, a): sum over the last axis")])

    def draw_mdp(S: int, A: int, gamma: float) -> FiniteMDP:
        return random_mdp(S, A, gamma=gamma, seed=int(torch.randint(2**31 - 1, (), generator=ctx.gen)))

    with ctx.part("random MDPs"):
        for S, A, gamma in [(3, 2, 0.9), (5, 4, 0.5), (6, 3, 0.99)]:
            mdp = draw_mdp(S, A, gamma)
            pi = random_policy(mdp, seed=int(torch.randint(2**31 - 1, (), generator=ctx.gen)))
            compare(mdp, pi, torch.randn(S, generator=ctx.gen, dtype=torch.float64) * 3)
    with ctx.part("gamma = 0"):
        mdp = draw_mdp(4, 5, 0.0)
        compare(mdp, random_policy(mdp, seed=1), torch.randn(4, generator=ctx.gen, dtype=torch.float64))
    with ctx.part("deterministic policy"):
        mdp = draw_mdp(5, 3, 0.8)
        actions = torch.randint(3, (5,), generator=ctx.gen)
        pi = torch.nn.functional.one_hot(actions, 3).to(torch.float64)
        compare(mdp, pi, torch.randn(5, generator=ctx.gen, dtype=torch.float64) * 2)
