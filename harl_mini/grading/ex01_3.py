"""Checks for Exercise 1.3: Q* to a certified accuracy, and policy iteration.

Oracles: ``harl_mini.tabular.optimal_q_value`` (Chapter 1, eq. ``eq-bellman-optimality-q``)
and ``harl_mini.tabular.value`` / ``optimal_value`` for the policy (eq. ``eq-policy-iteration``).

Tolerances. ``optimal_q(P, R, gamma, eps)`` promises ‖Q − Q*‖∞ ≤ eps, so it is held to exactly
that: |Q − Q*| ≤ eps + 1e-12 entrywise (the 1e-12 is the oracle's own round-off: Q* comes from
a linear solve in float64 and has |Q*| ≤ 100 here). The promise is the point of the exercise:
stopping when two iterates differ by at most eps leaves an error up to γ/(1 − γ)·eps, which is
99·eps at γ = 0.99, and the γ = 0.99 part fails it. A float32 answer is allowed its rounding on
top, eps + 1e-7·|Q*| (float32 rounds to 6e-8 relative): Q* itself rounded to float32 passes, a
value iteration run in float32 does not (compute in float64, as the inputs are).
``policy_iteration`` is graded by the value of the policy it returns: V of that policy must be
V* within 1e-8 + 1e-6·|V*| in every state (any optimal deterministic policy passes, whatever
its tie-breaking).
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import CheckFailed, Tolerance, as_array, register
from harl_mini.tabular import (
    FiniteMDP,
    bellman_optimality_backup_q,
    gridworld,
    optimal_q_value,
    optimal_value,
    q_from_v,
    random_mdp,
    uniform_policy,
    value,
)

__all__ = ["check_optimal_q", "check_policy_iteration"]


def _seed(ctx) -> int:
    return int(torch.randint(2**31 - 1, (), generator=ctx.gen))


def _describe(mdp: FiniteMDP) -> str:
    return f"{mdp.name} with S={mdp.num_states}, A={mdp.num_actions}, gamma={mdp.gamma:g}"


def _naive_q(mdp: FiniteMDP, eps: float, max_iter: int = 200_000) -> torch.Tensor:
    """The known mistake: iterate from Q = 0 and stop when two iterates differ by at most eps."""
    Q = torch.zeros_like(mdp.R)
    for _ in range(max_iter):
        Q_next = bellman_optimality_backup_q(mdp, Q)
        if float((Q_next - Q).abs().max()) <= eps:
            return Q_next
        Q = Q_next
    return Q


def _fixed_q(mdp: FiniteMDP, iters: int) -> torch.Tensor:
    Q = torch.zeros_like(mdp.R)
    for _ in range(iters):
        Q = bellman_optimality_backup_q(mdp, Q)
    return Q


@register(function="optimal_q", equation="eq-bellman-optimality-q",
          parts={"gamma = 0.5": 1, "gamma = 0.99: the stopping rule matters": 2, "sparse MDP, gamma = 0.9": 1,
                 "the 4x3 gridworld": 1})
def check_optimal_q(student_fn, ctx) -> None:
    """``student_fn(P, R, gamma, eps)`` returns a table Q [S, A] with ‖Q − Q*‖∞ ≤ eps.

    Tolerance: |Q − Q*| ≤ eps + 1e-12 in every entry (float64 answers), ≤ eps + 1e-7·|Q*| (float32 answers,
    their rounding); eps = 1e-6, and 1e-8 on the gridworld; Q* is the oracle's exact solution.
    """
    cases = {
        "gamma = 0.5": [(random_mdp(5, 3, gamma=0.5, seed=_seed(ctx)), 1e-6),
                        (random_mdp(int(torch.randint(2, 9, (), generator=ctx.gen)), 2, gamma=0.5, seed=_seed(ctx)),
                         1e-6)],
        "gamma = 0.99: the stopping rule matters": [
            (random_mdp(6, 3, gamma=0.99, seed=_seed(ctx)), 1e-6),
            (random_mdp(int(torch.randint(3, 8, (), generator=ctx.gen)), 4, gamma=0.99, seed=_seed(ctx)), 1e-6)],
        "sparse MDP, gamma = 0.9": [(random_mdp(8, 3, gamma=0.9, seed=_seed(ctx), branching=2), 1e-6)],
        "the 4x3 gridworld": [(gridworld("4x3", slip=0.2, gamma=0.95).mdp, 1e-8)],
    }
    for part, mdps in cases.items():
        with ctx.part(part):
            for mdp, eps in mdps:
                out = ctx.call(mdp.P, mdp.R, mdp.gamma, eps)
                tol, tol32 = Tolerance(eps + 1e-12, 0.0), Tolerance(eps + 1e-12, 1e-7)
                k = (1 - mdp.gamma) / mdp.gamma
                ctx.close(out, optimal_q_value(mdp), f"Q ({_describe(mdp)}, eps={eps:g})",
                          where=lambda idx: f"state s={idx[0]}, action a={idx[1]}",
                          describe=lambda idx, mdp=mdp: _describe(mdp), tol=tol, tol32=tol32,
                          hints=[(lambda mdp=mdp, eps=eps: _naive_q(mdp, eps),
                                  "you stopped when two iterates differed by at most eps; by the contraction "
                                  "lemma ‖Q_k − Q*‖∞ ≤ γ/(1 − γ)·‖Q_k − Q_(k−1)‖∞, so stop when "
                                  f"‖Q_k − Q_(k−1)‖∞ ≤ eps·(1 − γ)/γ (here {k:.3g}·eps)"),
                                 (lambda mdp=mdp: _fixed_q(mdp, 1000),
                                  "a fixed number of backups (1000) is not enough at this γ: derive the number, "
                                  "or a stopping rule, from the contraction lemma"),
                                 (lambda mdp=mdp: _fixed_q(mdp, 100),
                                  "a fixed number of backups (100) is not enough at this γ"),
                                 (lambda mdp=mdp: q_from_v(mdp, value(mdp, uniform_policy(mdp))),
                                  "that is Q of the uniform policy: the backup takes max_a' Q(s', a'), "
                                  "not the mean")])


def _deterministic(out, S: int, A: int, what: str) -> torch.Tensor:
    pi, _ = as_array(out, (S, A), what, broadcast=False)
    ones = (pi - 1.0).abs() < 1e-12
    zeros = pi.abs() < 1e-12
    bad = ~(ones | zeros)
    if bool(bad.any()):
        s, a = (int(i) for i in torch.nonzero(bad)[0])
        raise CheckFailed(f"{what} is not deterministic: pi[{s}, {a}] = {float(pi[s, a]):.6g}; expected a one-hot "
                          "table, one 1 per row (policy iteration improves greedily)")
    rows = ones.sum(-1)
    if bool((rows != 1).any()):
        s = int(torch.nonzero(rows != 1)[0])
        raise CheckFailed(f"{what} row s={s} has {int(rows[s])} entries equal to 1; expected exactly one")
    return pi


@register(function="policy_iteration", equation="eq-policy-iteration",
          parts={"random MDPs, gamma = 0.9": 1, "gamma = 0.99": 1, "the 4x3 gridworld": 1,
                 "duplicate actions (ties)": 1})
def check_policy_iteration(student_fn, ctx) -> None:
    """``student_fn(P, R, gamma)`` returns an optimal deterministic policy pi [S, A] (one-hot rows).

    Tolerance: the value of the returned policy, V_pi (the oracle's linear solve), must equal V*
    within 1e-8 + 1e-6·|V*(s)| in every state; the entries of pi must be 0 or 1 within 1e-12.
    """

    def dup(mdp: FiniteMDP) -> FiniteMDP:
        """The MDP with its actions listed twice: every optimal action has a tied twin."""
        return FiniteMDP(torch.cat([mdp.P, mdp.P], 1), torch.cat([mdp.R, mdp.R], 1), mdp.gamma, mdp.rho0,
                         name=f"{mdp.name} with every action duplicated")

    cases = {
        "random MDPs, gamma = 0.9": [random_mdp(6, 3, gamma=0.9, seed=_seed(ctx)),
                                     random_mdp(int(torch.randint(3, 10, (), generator=ctx.gen)), 4, gamma=0.9,
                                                seed=_seed(ctx), branching=2)],
        "gamma = 0.99": [random_mdp(7, 3, gamma=0.99, seed=_seed(ctx))],
        "the 4x3 gridworld": [gridworld("4x3", slip=0.2, gamma=0.95).mdp],
        "duplicate actions (ties)": [dup(random_mdp(5, 2, gamma=0.9, seed=_seed(ctx)))],
    }
    for part, mdps in cases.items():
        with ctx.part(part):
            for mdp in mdps:
                S, A = mdp.num_states, mdp.num_actions
                out = ctx.call(mdp.P, mdp.R, mdp.gamma)
                pi = _deterministic(out, S, A, f"pi ({_describe(mdp)})")
                V_star = optimal_value(mdp)
                greedy_r = torch.nn.functional.one_hot(mdp.R.argmax(-1), A).to(torch.float64)
                one_step = torch.nn.functional.one_hot(
                    q_from_v(mdp, value(mdp, uniform_policy(mdp))).argmax(-1), A).to(torch.float64)
                ctx.close(value(mdp, pi), V_star, f"the value V_pi of your policy ({_describe(mdp)})",
                          where=lambda idx: f"state s={idx[0]} (your policy is not optimal there)",
                          describe=lambda idx, mdp=mdp: _describe(mdp),
                          hints=[(lambda: value(mdp, greedy_r),
                                  "that is the myopic policy, greedy in R(s, a): improve greedily in "
                                  "Q_pi(s, a) = R(s, a) + γ Σ_s' P(s'|s, a) V_pi(s')"),
                                 (lambda: value(mdp, one_step),
                                  "one improvement step from the uniform policy is not enough: evaluate the new "
                                  "policy and improve again until the policy stops changing")])
