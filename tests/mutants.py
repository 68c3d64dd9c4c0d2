"""Reference solutions and hand-written wrong implementations ("mutants") of every exercise.

``tests/test_grading.py`` proves that each registered check passes on the reference and
rejects every mutant listed for it. A check with fewer than three mutants fails the suite,
so a new check cannot land without being shown to discriminate.
"""

import torch

from harl_mini.advantages import discounted_returns
from harl_mini.tabular import FiniteMDP, bellman_expectation_backup

# --------------------------------------------------------------------------- Exercise 0


def ref_discounted_returns(rewards, gamma):
    return discounted_returns(rewards, gamma)


def returns_discount_off_by_one(rewards, gamma):
    """G_t = sum_k gamma**(k - t + 1) r_k: the first reward is discounted too."""
    return gamma * discounted_returns(rewards, gamma)


def returns_without_discount(rewards, gamma):
    """Forgotten gamma: plain reward-to-go."""
    return discounted_returns(rewards, 1.0)


def returns_forward(rewards, gamma):
    """Accumulates from the start: G_t = sum_{k <= t} gamma**(t - k) r_k."""
    return discounted_returns(rewards.flip(-1), gamma).flip(-1)


def returns_only_first(rewards, gamma):
    """Returns G_0 everywhere."""
    return discounted_returns(rewards, gamma)[:1].expand_as(rewards).clone()


def ref_bellman_backup(P, R, gamma, pi, V):
    return bellman_expectation_backup(FiniteMDP(P, R, gamma), pi, V)


def backup_transposed_P(P, R, gamma, pi, V):
    """Uses P[s', a, s] instead of P[s, a, s']."""
    Q = R + gamma * torch.einsum("tas,t->sa", P, V)
    return (pi * Q).sum(1)


def backup_without_gamma(P, R, gamma, pi, V):
    Q = R + torch.einsum("sat,t->sa", P, V)
    return (pi * Q).sum(1)


def backup_with_max(P, R, gamma, pi, V):
    """Max over actions where the expectation under pi belongs (that is T, not T^pi)."""
    Q = R + gamma * torch.einsum("sat,t->sa", P, V)
    return Q.max(1).values


def backup_uniform_actions(P, R, gamma, pi, V):
    """Averages actions uniformly instead of weighting them by pi."""
    Q = R + gamma * torch.einsum("sat,t->sa", P, V)
    return Q.mean(1)


REFERENCES = {
    "check_discounted_returns": ref_discounted_returns,
    "check_bellman_backup": ref_bellman_backup,
}

MUTANTS = {
    "check_discounted_returns": [returns_discount_off_by_one, returns_without_discount, returns_forward,
                                 returns_only_first],
    "check_bellman_backup": [backup_transposed_P, backup_without_gamma, backup_with_max, backup_uniform_actions],
}

# --------------------------------------------------------------------------- Exercise 1

from harl_mini.tabular import bellman_optimality_backup, value  # noqa: E402


def ref_policy_evaluation(P, R, gamma, pi):
    return value(FiniteMDP(P, R, gamma), pi)


def _P_pi_r_pi(P, R, pi):
    return torch.einsum("sa,sat->st", pi, P), (pi * R).sum(1)


def evaluation_without_gamma(P, R, gamma, pi):
    """Solves (I - P_pi) V = r_pi: singular, so it raises or returns garbage."""
    P_pi, r_pi = _P_pi_r_pi(P, R, pi)
    return torch.linalg.solve(torch.eye(P.shape[0], dtype=P.dtype) - P_pi, r_pi)


def evaluation_transposed_P(P, R, gamma, pi):
    P_pi, r_pi = _P_pi_r_pi(P, R, pi)
    return torch.linalg.solve(torch.eye(P.shape[0], dtype=P.dtype) - gamma * P_pi.T, r_pi)


def evaluation_with_max(P, R, gamma, pi):
    """Takes the best action's reward where the expectation under pi belongs."""
    P_pi, _ = _P_pi_r_pi(P, R, pi)
    return torch.linalg.solve(torch.eye(P.shape[0], dtype=P.dtype) - gamma * P_pi, R.max(1).values)


def evaluation_one_backup(P, R, gamma, pi):
    """Stops after one backup from V = 0, i.e. returns r_pi."""
    return _P_pi_r_pi(P, R, pi)[1]


def ref_value_iteration_step(P, R, gamma, V):
    return bellman_optimality_backup(FiniteMDP(P, R, gamma), V)


def vi_step_without_gamma(P, R, gamma, V):
    return (R + torch.einsum("sat,t->sa", P, V)).max(1).values


def vi_step_transposed_P(P, R, gamma, V):
    return (R + gamma * torch.einsum("tas,t->sa", P, V)).max(1).values


def vi_step_expectation(P, R, gamma, V):
    """Averages over actions where the max belongs."""
    return (R + gamma * torch.einsum("sat,t->sa", P, V)).mean(1)


def vi_step_min(P, R, gamma, V):
    return (R + gamma * torch.einsum("sat,t->sa", P, V)).min(1).values


REFERENCES.update({
    "check_policy_evaluation": ref_policy_evaluation,
    "check_value_iteration_step": ref_value_iteration_step,
})
MUTANTS.update({
    "check_policy_evaluation": [evaluation_without_gamma, evaluation_transposed_P, evaluation_with_max,
                                evaluation_one_backup],
    "check_value_iteration_step": [vi_step_without_gamma, vi_step_transposed_P, vi_step_expectation, vi_step_min],
})
