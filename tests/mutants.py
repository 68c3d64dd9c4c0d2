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

# --------------------------------------------------------------------------- Exercise 4

from harl_mini.losses import ppo_clip_loss  # noqa: E402
from harl_mini.trust_region import backtracking_line_search  # noqa: E402


def ref_line_search(evaluate, expected_improvement, delta, backtrack_coeff, max_backtracks):
    result = backtracking_line_search(evaluate, expected_improvement, delta, backtrack_coeff, max_backtracks)
    return result.accepted, result.fraction


def line_search_skips_kl(evaluate, expected_improvement, delta, backtrack_coeff, max_backtracks):
    """Accepts the first improving step whatever its KL."""
    fraction = 1.0
    for _ in range(max_backtracks + 1):
        improvement, _kl = evaluate(fraction)
        if improvement > 0:
            return True, fraction
        fraction *= backtrack_coeff
    return False, 0.0


def line_search_skips_improvement(evaluate, expected_improvement, delta, backtrack_coeff, max_backtracks):
    """Accepts the first step inside the KL ball even if the surrogate got worse."""
    fraction = 1.0
    for _ in range(max_backtracks + 1):
        _improvement, kl = evaluate(fraction)
        if kl <= delta:
            return True, fraction
        fraction *= backtrack_coeff
    return False, 0.0


def line_search_one_try_short(evaluate, expected_improvement, delta, backtrack_coeff, max_backtracks):
    """Off by one: tries only max_backtracks fractions instead of max_backtracks + 1."""
    fraction = 1.0
    for _ in range(max_backtracks):
        improvement, kl = evaluate(fraction)
        if kl <= delta and improvement > 0:
            return True, fraction
        fraction *= backtrack_coeff
    return False, 0.0


def line_search_keeps_last_fraction(evaluate, expected_improvement, delta, backtrack_coeff, max_backtracks):
    """On failure returns the last fraction tried instead of 0 (moves the parameters anyway)."""
    fraction = 1.0
    for _ in range(max_backtracks + 1):
        improvement, kl = evaluate(fraction)
        if kl <= delta and improvement > 0:
            return True, fraction
        fraction *= backtrack_coeff
    return False, fraction / backtrack_coeff


def line_search_halves(evaluate, expected_improvement, delta, backtrack_coeff, max_backtracks):
    """Ignores backtrack_coeff and always halves."""
    fraction = 1.0
    for _ in range(max_backtracks + 1):
        improvement, kl = evaluate(fraction)
        if kl <= delta and improvement > 0:
            return True, fraction
        fraction *= 0.5
    return False, 0.0


# --------------------------------------------------------------------------- Exercise 5


def ref_ppo_clip_loss(logp, logp_old, adv, clip_eps):
    return ppo_clip_loss(logp, logp_old, adv, clip_eps)


def _ratio(logp, logp_old):
    return torch.exp(logp - logp_old)


def ppo_max_instead_of_min(logp, logp_old, adv, clip_eps):
    r = _ratio(logp, logp_old)
    return -torch.maximum(r * adv, r.clamp(1 - clip_eps, 1 + clip_eps) * adv).mean()


def ppo_clips_advantage(logp, logp_old, adv, clip_eps):
    """Clips the advantage instead of the ratio."""
    r = _ratio(logp, logp_old)
    return -torch.minimum(r * adv, r * adv.clamp(-clip_eps, clip_eps)).mean()


def ppo_objective_not_loss(logp, logp_old, adv, clip_eps):
    """Returns the objective (to maximise) instead of the loss (to minimise)."""
    r = _ratio(logp, logp_old)
    return torch.minimum(r * adv, r.clamp(1 - clip_eps, 1 + clip_eps) * adv).mean()


def ppo_log_ratio(logp, logp_old, adv, clip_eps):
    """Uses logp - logp_old as if it were the ratio."""
    r = logp - logp_old
    return -torch.minimum(r * adv, r.clamp(1 - clip_eps, 1 + clip_eps) * adv).mean()


def ppo_clip_without_min(logp, logp_old, adv, clip_eps):
    """Drops the min: only the clipped term (zero gradient inside the range is lost too)."""
    r = _ratio(logp, logp_old)
    return -(r.clamp(1 - clip_eps, 1 + clip_eps) * adv).mean()


REFERENCES.update({"check_line_search": ref_line_search, "check_ppo_clip_loss": ref_ppo_clip_loss})
MUTANTS.update({
    "check_line_search": [line_search_skips_kl, line_search_skips_improvement, line_search_one_try_short,
                          line_search_keeps_last_fraction, line_search_halves],
    "check_ppo_clip_loss": [ppo_max_instead_of_min, ppo_clips_advantage, ppo_objective_not_loss, ppo_log_ratio,
                            ppo_clip_without_min],
})

# --------------------------------------------------------------------------- Exercise 2

from harl_mini.advantages import gae  # noqa: E402


def ref_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    return gae(rewards, values, next_values, terminated, truncated, gamma, lam)[0]


def _gae_loop(deltas, gamma_lam, not_done):
    adv = torch.zeros_like(deltas)
    running = torch.zeros_like(deltas[0])
    for t in reversed(range(deltas.shape[0])):
        running = deltas[t] + gamma_lam * not_done[t] * running
        adv[t] = running
    return adv


def gae_bootstraps_through_termination(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Ignores `terminated` in the TD error: bootstraps from a terminal state."""
    deltas = rewards + gamma * next_values - values
    return _gae_loop(deltas, gamma * lam, (~(terminated | truncated)).double())


def gae_never_cuts(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Accumulates across episode boundaries."""
    deltas = rewards + gamma * (~terminated).double() * next_values - values
    return _gae_loop(deltas, gamma * lam, torch.ones_like(deltas))


def gae_gamma_not_gamma_lambda(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Uses gamma instead of gamma * lambda in the recursion."""
    deltas = rewards + gamma * (~terminated).double() * next_values - values
    return _gae_loop(deltas, gamma, (~(terminated | truncated)).double())


def gae_truncation_as_termination(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Treats a time-limit truncation as a terminal state (no bootstrap)."""
    done = terminated | truncated
    deltas = rewards + gamma * (~done).double() * next_values - values
    return _gae_loop(deltas, gamma * lam, (~done).double())


def gae_only_td_error(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Returns the one-step TD errors whatever lambda is."""
    return rewards + gamma * (~terminated).double() * next_values - values


REFERENCES["check_gae"] = ref_gae
MUTANTS["check_gae"] = [gae_bootstraps_through_termination, gae_never_cuts, gae_gamma_not_gamma_lambda,
                        gae_truncation_as_termination, gae_only_td_error]

# --------------------------------------------------------------------------- Exercise 3

from harl_mini.tabular import fisher_vector_product, random_mdp  # noqa: E402
from harl_mini.trust_region import conjugate_gradient  # noqa: E402


def ref_fisher_vector_product(pi, d, v):
    return fisher_vector_product(random_mdp(*pi.shape, seed=0), torch.log(pi), v, weights=d)


def fvp_without_weights(pi, d, v):
    return pi * (v - (pi * v).sum(-1, keepdim=True))


def fvp_diagonal_only(pi, d, v):
    """Forgets the -π πᵀ part of each block."""
    return d[:, None] * pi * v


def fvp_unweighted_mean(pi, d, v):
    """Subtracts the plain mean of v over actions instead of its π-weighted mean."""
    return d[:, None] * pi * (v - v.mean(-1, keepdim=True))


def fvp_sign_error(pi, d, v):
    return d[:, None] * pi * (v + (pi * v).sum(-1, keepdim=True))


def ref_conjugate_gradient(Avp, b, iters):
    return conjugate_gradient(Avp, b, iters=iters, residual_tol=0.0)


def cg_steepest_descent(Avp, b, iters):
    """Moves along the residual every time (no conjugate directions)."""
    x = torch.zeros_like(b)
    r = b.clone()
    for _ in range(iters):
        Ar = Avp(r)
        x = x + (r @ r) / (r @ Ar) * r
        r = r - (r @ r) / (r @ Ar) * Ar
    return x


def cg_inverted_beta(Avp, b, iters):
    x, r, p = torch.zeros_like(b), b.clone(), b.clone()
    rr = r @ r
    for _ in range(iters):
        Ap = Avp(p)
        alpha = rr / (p @ Ap)
        x, r = x + alpha * p, r - alpha * Ap
        rr_new = r @ r
        p = r + (rr / rr_new) * p
        rr = rr_new
    return x


def cg_alpha_without_A(Avp, b, iters):
    """Step length r·r / p·p: ignores the curvature along p."""
    x, r, p = torch.zeros_like(b), b.clone(), b.clone()
    rr = r @ r
    for _ in range(iters):
        Ap = Avp(p)
        alpha = rr / (p @ p)
        x, r = x + alpha * p, r - alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def cg_one_iteration_short(Avp, b, iters):
    return conjugate_gradient(Avp, b, iters=max(iters - 1, 0), residual_tol=0.0)


REFERENCES.update({"check_fisher_vector_product": ref_fisher_vector_product,
                   "check_conjugate_gradient": ref_conjugate_gradient})
MUTANTS.update({
    "check_fisher_vector_product": [fvp_without_weights, fvp_diagonal_only, fvp_unweighted_mean, fvp_sign_error],
    "check_conjugate_gradient": [cg_steepest_descent, cg_inverted_beta, cg_alpha_without_A, cg_one_iteration_short],
})

# --------------------------------------------------------------------------- Exercise 6

from harl_mini.tabular import (  # noqa: E402
    best_shared_policy,
    decomposition_terms,
    multi_agent_advantage,
    multi_agent_q,
    prop1_game,
    shared_objective,
)


def ref_shared_objective(theta, n):
    game = prop1_game(n)
    return torch.stack([shared_objective(game, torch.stack([t, 1 - t])) for t in theta])


def shared_objective_missing_factor_two(theta, n):
    """Counts only one of the two rewarded joint actions."""
    return (theta * (1 - theta)) ** (n // 2)


def shared_objective_wrong_exponent(theta, n):
    return 2 * (theta * (1 - theta)) ** n


def shared_objective_one_mode(theta, n):
    """Probability that every agent plays 0: the joint action no one is rewarded for."""
    return theta ** n


def ref_best_shared_value(n):
    return best_shared_policy(prop1_game(n), restarts=1).value


def best_shared_is_unshared_optimum(n):
    """Returns J* = 1, which needs separate policies."""
    return 1.0


def best_shared_on_coarse_grid(n):
    """Searches theta in {0, 0.25, 0.75, 1} only, missing theta = 1/2."""
    return max(2 * (t * (1 - t)) ** (n // 2) for t in (0.0, 0.25, 0.75, 1.0))


def best_shared_without_factor_two(n):
    return 2.0 ** -n


# --------------------------------------------------------------------------- Exercise 7

import itertools  # noqa: E402
import string  # noqa: E402


def _marginal(Q, pis, agents):
    """Reference-free marginal used by the mutants: weight the complement by its policies."""
    N = Q.dim() - 1
    letters = string.ascii_lowercase[:N]
    operands, specs = [Q], ["z" + letters]
    for i in range(N):
        if i not in agents:
            operands.append(pis[i])
            specs.append("z" + letters[i])
    out = "z" + "".join(letters[i] for i in agents)
    return torch.einsum(",".join(specs) + "->" + out, *operands)


def ref_marginal_q(Q, pis, agents):
    return _marginal(Q, pis, agents)


def marginal_of_the_agents(Q, pis, agents):
    """Averages over the listed agents instead of over the others."""
    others = tuple(i for i in range(Q.dim() - 1) if i not in agents)
    out = _marginal(Q, pis, others)
    return out if out.shape[1:] == tuple(Q.shape[1 + i] for i in agents) else torch.zeros(
        (Q.shape[0], *(Q.shape[1 + i] for i in agents)), dtype=Q.dtype)


def marginal_sorted_axes(Q, pis, agents):
    """Returns the axes in index order, ignoring the requested order."""
    out = _marginal(Q, pis, tuple(sorted(agents)))
    return out.reshape(Q.shape[0], *(Q.shape[1 + i] for i in agents)) if len(agents) > 1 else out


def marginal_uniform_weights(Q, pis, agents):
    """Averages the complement uniformly instead of under pi."""
    return _marginal(Q, [torch.full_like(p, 1.0 / p.shape[-1]) for p in pis], agents)


def ref_advantage_terms(Q, pis, order):
    shape = (Q.shape[0], *(Q.shape[1 + i] for i in order))
    terms = []
    for j, i in enumerate(order):
        term = _marginal(Q, pis, tuple(order[: j + 1])) - _marginal(Q, pis, tuple(order[:j])).reshape(
            (Q.shape[0], *(Q.shape[1 + k] for k in order[:j]), 1))
        terms.append(term.reshape(*term.shape, *([1] * (len(order) - j - 1))).expand(shape))
    return terms


def terms_without_conditioning(Q, pis, order):
    """A^{i_j}(a^{i_j}) alone: forgets the actions of the agents before i_j."""
    shape = (Q.shape[0], *(Q.shape[1 + i] for i in order))
    V = _marginal(Q, pis, ())
    terms = []
    for j, i in enumerate(order):
        a = _marginal(Q, pis, (i,)) - V[:, None]
        view = [Q.shape[0]] + [Q.shape[1 + k] if k == i else 1 for k in order]
        terms.append(a.reshape(view).expand(shape))
    return terms


def terms_conditioning_on_itself(Q, pis, order):
    """Conditions on i_{1:j} instead of i_{1:j-1}: every term is zero."""
    shape = (Q.shape[0], *(Q.shape[1 + i] for i in order))
    return [torch.zeros(shape, dtype=Q.dtype) for _ in order]


def terms_reversed(Q, pis, order):
    """Computes the terms for the reversed order but returns them in the given order's grid."""
    shape = (Q.shape[0], *(Q.shape[1 + i] for i in order))
    rev = ref_advantage_terms(Q, pis, tuple(reversed(order)))
    perm = [0] + [len(order) - k for k in range(1, len(order) + 1)]
    return [t.permute(perm).reshape(shape) if len(order) > 1 else t for t in reversed(rev)]


REFERENCES.update({"check_shared_objective": ref_shared_objective, "check_best_shared_value": ref_best_shared_value,
                   "check_marginal_q": ref_marginal_q, "check_advantage_terms": ref_advantage_terms})
MUTANTS.update({
    "check_shared_objective": [shared_objective_missing_factor_two, shared_objective_wrong_exponent,
                               shared_objective_one_mode],
    "check_best_shared_value": [best_shared_is_unshared_optimum, best_shared_on_coarse_grid,
                                best_shared_without_factor_two],
    "check_marginal_q": [marginal_of_the_agents, marginal_sorted_axes, marginal_uniform_weights],
    "check_advantage_terms": [terms_without_conditioning, terms_conditioning_on_itself, terms_reversed],
})

# --------------------------------------------------------------------------- Exercise 8

from harl_mini.marl.runner import happo_objective, update_factor  # noqa: E402
from harl_mini.trust_region import max_step_length  # noqa: E402


def ref_happo_loss(logp, logp_old, adv, M, clip_eps):
    return -happo_objective(torch.exp(logp - logp_old), M, adv, clip_eps).mean()


def happo_m_not_detached(logp, logp_old, adv, M, clip_eps):
    r = torch.exp(logp - logp_old)
    return -torch.minimum(r * M * adv, r.clamp(1 - clip_eps, 1 + clip_eps) * M * adv).mean()


def happo_max_instead_of_min(logp, logp_old, adv, M, clip_eps):
    r = torch.exp(logp - logp_old)
    w = M.detach() * adv
    return -torch.maximum(r * w, r.clamp(1 - clip_eps, 1 + clip_eps) * w).mean()


def happo_clips_r_times_m(logp, logp_old, adv, M, clip_eps):
    """Clips the product r·M instead of the agent's own ratio."""
    rm = torch.exp(logp - logp_old) * M.detach()
    return -torch.minimum(rm * adv, rm.clamp(1 - clip_eps, 1 + clip_eps) * adv).mean()


def happo_without_m(logp, logp_old, adv, M, clip_eps):
    """Plain PPO: ignores the earlier agents' update."""
    r = torch.exp(logp - logp_old)
    return -torch.minimum(r * adv, r.clamp(1 - clip_eps, 1 + clip_eps) * adv).mean()


def ref_m_factor(logp_new, logp_old, order, m):
    M = torch.ones_like(logp_new[0])
    for i in order[: m - 1]:
        M = update_factor(M, logp_new[i], logp_old[i])
    return M


def m_includes_current_agent(logp_new, logp_old, order, m):
    return ref_m_factor(logp_new, logp_old, order, m + 1)


def m_all_agents(logp_new, logp_old, order, m):
    return ref_m_factor(logp_new, logp_old, order, len(order) + 1)


def m_agents_by_index(logp_new, logp_old, order, m):
    """Uses agents 0..m-2 (by index) instead of the first m-1 agents of the order."""
    return ref_m_factor(logp_new, logp_old, tuple(range(len(order))), m)


def m_sum_of_log_ratios(logp_new, logp_old, order, m):
    M = torch.zeros_like(logp_new[0])
    for i in order[: m - 1]:
        M = M + logp_new[i] - logp_old[i]
    return M


def ref_agent_order(num_agents, generator):
    return torch.randperm(num_agents, generator=generator).tolist()


def order_fixed(num_agents, generator):
    return list(range(num_agents))


def order_two_choices(num_agents, generator):
    """Alternates between the identity and its reverse."""
    forward = torch.rand((), generator=generator) < 0.5
    return list(range(num_agents)) if forward else list(reversed(range(num_agents)))


def order_with_replacement(num_agents, generator):
    return torch.randint(num_agents, (num_agents,), generator=generator).tolist()


def order_ignores_generator(num_agents, generator):
    return torch.randperm(num_agents).tolist()


def ref_hatrpo_step(g, Fvp, delta):
    s = conjugate_gradient(Fvp, g, iters=10)
    return max_step_length(s, Fvp(s), delta) * s


def step_without_cg(g, Fvp, delta):
    """Steps along the vanilla gradient (scaled to the KL radius)."""
    return max_step_length(g, Fvp(g), delta) * g


def step_without_sqrt(g, Fvp, delta):
    s = conjugate_gradient(Fvp, g, iters=10)
    return (2 * delta / float(s @ Fvp(s))) * s


def step_radius_delta(g, Fvp, delta):
    """Uses sqrt(delta / sᵀFs): a step that only reaches KL δ/2."""
    s = conjugate_gradient(Fvp, g, iters=10)
    return (delta / float(s @ Fvp(s))) ** 0.5 * s


REFERENCES.update({"check_happo_loss": ref_happo_loss, "check_m_factor": ref_m_factor,
                   "check_agent_order": ref_agent_order, "check_hatrpo_step": ref_hatrpo_step})
MUTANTS.update({
    "check_happo_loss": [happo_m_not_detached, happo_max_instead_of_min, happo_clips_r_times_m, happo_without_m],
    "check_m_factor": [m_includes_current_agent, m_all_agents, m_agents_by_index, m_sum_of_log_ratios],
    "check_agent_order": [order_fixed, order_two_choices, order_with_replacement, order_ignores_generator],
    "check_hatrpo_step": [step_without_cg, step_without_sqrt, step_radius_delta],
})
