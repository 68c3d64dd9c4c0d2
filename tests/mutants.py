"""Reference solutions and hand-written wrong implementations ("mutants") of every exercise.

``tests/test_grading.py`` proves that each registered check passes on the reference and
rejects every mutant listed for it. A check with fewer than three mutants fails the suite,
so a new check cannot land without being shown to discriminate. Keys are
``"<exercise>.<check>"``, e.g. ``"ex02_1.check_gae"``.
"""

import torch

from harl_mini.advantages import discounted_returns
from harl_mini.tabular import FiniteMDP, bellman_expectation_backup

# --------------------------------------------------------------------------- Exercise 1.1


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
    "ex01_1.check_discounted_returns": ref_discounted_returns,
    "ex01_1.check_bellman_backup": ref_bellman_backup,
}

MUTANTS = {
    "ex01_1.check_discounted_returns": [returns_discount_off_by_one, returns_without_discount, returns_forward,
                                 returns_only_first],
    "ex01_1.check_bellman_backup": [backup_transposed_P, backup_without_gamma, backup_with_max, backup_uniform_actions],
}

# --------------------------------------------------------------------------- Exercise 1.2

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
    "ex01_2.check_policy_evaluation": ref_policy_evaluation,
    "ex01_2.check_value_iteration_step": ref_value_iteration_step,
})
MUTANTS.update({
    "ex01_2.check_policy_evaluation": [evaluation_without_gamma, evaluation_transposed_P, evaluation_with_max,
                                evaluation_one_backup],
    "ex01_2.check_value_iteration_step": [vi_step_without_gamma, vi_step_transposed_P, vi_step_expectation, vi_step_min],
})

# --------------------------------------------------------------------------- Exercise 4.1

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


# --------------------------------------------------------------------------- Exercise 5.1


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


REFERENCES.update({"ex04_1.check_line_search": ref_line_search, "ex05_1.check_ppo_clip_loss": ref_ppo_clip_loss})
MUTANTS.update({
    "ex04_1.check_line_search": [line_search_skips_kl, line_search_skips_improvement, line_search_one_try_short,
                          line_search_keeps_last_fraction, line_search_halves],
    "ex05_1.check_ppo_clip_loss": [ppo_max_instead_of_min, ppo_clips_advantage, ppo_objective_not_loss, ppo_log_ratio,
                            ppo_clip_without_min],
})

# --------------------------------------------------------------------------- Exercise 2.1

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


REFERENCES["ex02_1.check_gae"] = ref_gae
MUTANTS["ex02_1.check_gae"] = [gae_bootstraps_through_termination, gae_never_cuts, gae_gamma_not_gamma_lambda,
                        gae_truncation_as_termination, gae_only_td_error]

# --------------------------------------------------------------------------- Exercise 3.1

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


REFERENCES.update({"ex03_1.check_fisher_vector_product": ref_fisher_vector_product,
                   "ex03_1.check_conjugate_gradient": ref_conjugate_gradient})
MUTANTS.update({
    "ex03_1.check_fisher_vector_product": [fvp_without_weights, fvp_diagonal_only, fvp_unweighted_mean, fvp_sign_error],
    "ex03_1.check_conjugate_gradient": [cg_steepest_descent, cg_inverted_beta, cg_alpha_without_A, cg_one_iteration_short],
})

# --------------------------------------------------------------------------- Exercise 6.1

from harl_mini.tabular import (  # noqa: E402
    best_shared_policy,
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


# --------------------------------------------------------------------------- Exercise 7.1

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


REFERENCES.update({"ex06_1.check_shared_objective": ref_shared_objective, "ex06_1.check_best_shared_value": ref_best_shared_value,
                   "ex07_1.check_marginal_q": ref_marginal_q, "ex07_1.check_advantage_terms": ref_advantage_terms})
MUTANTS.update({
    "ex06_1.check_shared_objective": [shared_objective_missing_factor_two, shared_objective_wrong_exponent,
                               shared_objective_one_mode],
    "ex06_1.check_best_shared_value": [best_shared_is_unshared_optimum, best_shared_on_coarse_grid,
                                best_shared_without_factor_two],
    "ex07_1.check_marginal_q": [marginal_of_the_agents, marginal_sorted_axes, marginal_uniform_weights],
    "ex07_1.check_advantage_terms": [terms_without_conditioning, terms_conditioning_on_itself, terms_reversed],
})

# --------------------------------------------------------------------------- Exercise 8.1

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


def ref_hatrpo_step(g, Fvp, delta, damping):
    """The chapter's step: 10 iterations of CG on (F + νI) x = g, β measured with F + νI."""
    def damped(v):
        return Fvp(v) + damping * v

    x = conjugate_gradient(damped, g, iters=10)
    return max_step_length(x, damped(x), delta) * x


def ref_hatrpo_step_exact(g, Fvp, delta, damping):
    """An exact solve, F built column by column from Fisher-vector products: also correct."""
    n = g.numel()
    F = torch.stack([Fvp(e) for e in torch.eye(n, dtype=g.dtype)], dim=1)
    A = F + damping * torch.eye(n, dtype=g.dtype)
    x = torch.linalg.solve(A, g)
    return (2 * delta / (x @ A @ x)).sqrt() * x


def step_without_cg(g, Fvp, delta, damping):
    """Steps along the vanilla gradient (scaled to the KL radius)."""
    return max_step_length(g, Fvp(g) + damping * g, delta) * g


def step_without_sqrt(g, Fvp, delta, damping):
    x = conjugate_gradient(lambda v: Fvp(v) + damping * v, g, iters=10)
    return (2 * delta / float(x @ (Fvp(x) + damping * x))) * x


def step_radius_delta(g, Fvp, delta, damping):
    """Uses sqrt(delta / xᵀAx): a step that only reaches KL δ/2."""
    x = conjugate_gradient(lambda v: Fvp(v) + damping * v, g, iters=10)
    return (delta / float(x @ (Fvp(x) + damping * x))) ** 0.5 * x


def step_ignores_damping(g, Fvp, delta, damping):
    """The undamped step of the old exercise: right only for damping = 0."""
    x = conjugate_gradient(Fvp, g, iters=10)
    return max_step_length(x, Fvp(x), delta) * x


def step_damping_in_cg_only(g, Fvp, delta, damping):
    """Damped CG, but β measured with the undamped F."""
    x = conjugate_gradient(lambda v: Fvp(v) + damping * v, g, iters=10)
    return max_step_length(x, Fvp(x), delta) * x


def order_round_robin(num_agents, generator, _calls={}):
    """Cycles deterministically through all n! orders, ignoring the generator (the issue's case)."""
    perms = list(itertools.permutations(range(num_agents)))
    k = _calls.get(num_agents, 0)
    _calls[num_agents] = k + 1
    return list(perms[k % len(perms)])


def order_seeded_by_initial_seed(num_agents, generator):
    """Uses the generator's seed, not its state: the same order on every call."""
    return torch.randperm(num_agents, generator=torch.Generator().manual_seed(generator.initial_seed())).tolist()


REFERENCES.update({"ex08_1.check_happo_loss": ref_happo_loss, "ex08_1.check_m_factor": ref_m_factor,
                   "ex08_1.check_agent_order": ref_agent_order, "ex08_1.check_hatrpo_step": ref_hatrpo_step})
MUTANTS.update({
    "ex08_1.check_happo_loss": [happo_m_not_detached, happo_max_instead_of_min, happo_clips_r_times_m, happo_without_m],
    "ex08_1.check_m_factor": [m_includes_current_agent, m_all_agents, m_agents_by_index, m_sum_of_log_ratios],
    "ex08_1.check_agent_order": [order_fixed, order_two_choices, order_with_replacement, order_ignores_generator,
                                 order_round_robin, order_seeded_by_initial_seed],
    "ex08_1.check_hatrpo_step": [step_without_cg, step_without_sqrt, step_radius_delta, step_ignores_damping,
                                 step_damping_in_cg_only],
})

# =========================================================================== Chapter 10
# Exercises 10.1 (autoregressive policies) and 10.2 (MAT's decoder input and causal mask).

import math  # noqa: E402


def ref_conditional_log_probs(factors, states, actions):
    return torch.stack([f[(states, *actions[:, : m + 1].T)].log() for m, f in enumerate(factors)], dim=1)


def logp_ignores_prefix(factors, states, actions):
    """Reads every agent's row at the prefix (0, ..., 0)."""
    zeros = torch.zeros_like(states)
    return torch.stack([f[(states, *([zeros] * m), actions[:, m])].log() for m, f in enumerate(factors)], dim=1)


def logp_running_sum(factors, states, actions):
    """Returns log π(a^0..a^m | s), the running sum, instead of each agent's own term."""
    return ref_conditional_log_probs(factors, states, actions).cumsum(1)


def logp_marginal(factors, states, actions):
    """Uses the marginal π(a^m | s) (the prefix averaged out under the policy) instead of the conditional."""
    cols, prefix = [], torch.ones(factors[0].shape[0], dtype=factors[0].dtype)
    for m, f in enumerate(factors):
        joint = prefix.unsqueeze(-1) * f
        marg = joint.reshape(joint.shape[0], -1, joint.shape[-1]).sum(1)
        cols.append(marg[states, actions[:, m]].log())
        prefix = joint
    return torch.stack(cols, dim=1)


def ref_conditional_entropies(factors):
    cols, prefix = [], torch.ones(factors[0].shape[0], dtype=factors[0].dtype)
    for f in factors:
        h = -(f * f.log()).sum(-1)                      # entropy of every row
        cols.append((prefix * h).reshape(h.shape[0], -1).sum(-1))
        prefix = prefix.unsqueeze(-1) * f               # π(a^0..a^m | s)
    return torch.stack(cols, dim=1)


def entropies_unweighted(factors):
    """Averages the rows' entropies with equal weights instead of π(prefix)."""
    cols = []
    for f in factors:
        h = -(f * f.log()).sum(-1)
        cols.append(h.reshape(h.shape[0], -1).mean(-1))
    return torch.stack(cols, dim=1)


def entropies_of_marginals(factors):
    """The entropy of the marginal π(a^m | s) instead of the conditional entropy."""
    cols, prefix = [], torch.ones(factors[0].shape[0], dtype=factors[0].dtype)
    for f in factors:
        joint = prefix.unsqueeze(-1) * f
        marg = joint.reshape(joint.shape[0], -1, joint.shape[-1]).sum(1)
        cols.append(-(marg * marg.log()).sum(-1))
        prefix = joint
    return torch.stack(cols, dim=1)


def entropies_first_prefix(factors):
    """Takes the entropy of the row at the prefix (0, ..., 0) only."""
    return torch.stack([-(f * f.log()).sum(-1).reshape(f.shape[0], -1)[:, 0] for f in factors], dim=1)


def entropies_sign_flipped(factors):
    return -ref_conditional_entropies(factors)


def ref_shift_tokens(actions, n_actions):
    B, N = actions.shape
    tokens = torch.zeros(B, N, n_actions + 1, dtype=torch.float64)
    tokens[:, 0, 0] = 1.0
    tokens[:, 1:, 1:] = torch.nn.functional.one_hot(actions[:, :-1], n_actions).to(torch.float64)
    return tokens


def tokens_not_shifted(actions, n_actions):
    """Token m carries agent m's own action: the decoder sees the answer."""
    tokens = torch.zeros(*actions.shape, n_actions + 1, dtype=torch.float64)
    tokens[:, 0, 0] = 1.0
    tokens[..., 1:] = torch.nn.functional.one_hot(actions, n_actions).to(torch.float64)
    return tokens


def tokens_without_start(actions, n_actions):
    tokens = ref_shift_tokens(actions, n_actions)
    tokens[:, 0, 0] = 0.0
    return tokens


def tokens_shifted_backwards(actions, n_actions):
    """Token m carries agent m + 1's action."""
    B, N = actions.shape
    tokens = torch.zeros(B, N, n_actions + 1, dtype=torch.float64)
    tokens[:, 0, 0] = 1.0
    tokens[:, :-1, 1:] += torch.nn.functional.one_hot(actions[:, 1:], n_actions).to(torch.float64)
    return tokens


def tokens_without_flag_column(actions, n_actions):
    """One-hot of size n: no room for the start flag."""
    tokens = torch.zeros(*actions.shape, n_actions, dtype=torch.float64)
    tokens[:, 1:] = torch.nn.functional.one_hot(actions[:, :-1], n_actions).to(torch.float64)
    return tokens


def ref_causal_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
    later = torch.ones(scores.shape[-2:], dtype=torch.bool).triu(1)
    return torch.softmax(scores.masked_fill(later, float("-inf")), dim=-1) @ v


def attention_without_mask(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1]), dim=-1) @ v


def attention_mask_upside_down(q, k, v):
    """Masks the earlier keys instead of the later ones."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
    earlier = torch.ones(scores.shape[-2:], dtype=torch.bool).tril(-1)
    return torch.softmax(scores.masked_fill(earlier, float("-inf")), dim=-1) @ v


def attention_mask_after_softmax(q, k, v):
    """Zeros the later weights after the softmax, without renormalising."""
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1]), dim=-1)
    return weights.tril() @ v


def attention_strict_mask(q, k, v):
    """Also masks the diagonal: position m sees only 0..m-1 (position 0 sees nothing: NaN)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
    later = torch.ones(scores.shape[-2:], dtype=torch.bool).triu(0)
    return torch.softmax(scores.masked_fill(later, float("-inf")), dim=-1) @ v


def attention_unscaled(q, k, v):
    scores = q @ k.transpose(-2, -1)
    later = torch.ones(scores.shape[-2:], dtype=torch.bool).triu(1)
    return torch.softmax(scores.masked_fill(later, float("-inf")), dim=-1) @ v


REFERENCES.update({"ex10_1.check_conditional_log_probs": ref_conditional_log_probs,
                   "ex10_1.check_conditional_entropies": ref_conditional_entropies,
                   "ex10_2.check_shift_tokens": ref_shift_tokens,
                   "ex10_2.check_causal_attention": ref_causal_attention})
MUTANTS.update({
    "ex10_1.check_conditional_log_probs": [logp_ignores_prefix, logp_running_sum, logp_marginal],
    "ex10_1.check_conditional_entropies": [entropies_unweighted, entropies_of_marginals, entropies_first_prefix,
                                           entropies_sign_flipped],
    "ex10_2.check_shift_tokens": [tokens_not_shifted, tokens_without_start, tokens_shifted_backwards,
                                  tokens_without_flag_column],
    "ex10_2.check_causal_attention": [attention_without_mask, attention_mask_upside_down,
                                      attention_mask_after_softmax, attention_strict_mask, attention_unscaled],
})


# ============================================================ Exercises 6.1 (rewritten), 6.2, 6.3, 7.2, 7.3
# (chapters 6 and 7)

import math  # noqa: E402

# ---- ex06_1 (rewritten: the best shared policy of a game you analyse) --------------------------------
# The old ex06_1 checks (check_shared_objective, check_best_shared_value of the Proposition-1 game) were
# replaced; drop their entries before registering the new ones.
for _key in ("ex06_1.check_shared_objective", "ex06_1.check_best_shared_value"):
    REFERENCES.pop(_key, None)
    MUTANTS.pop(_key, None)


def _ex06_1_coefficients(payoff):
    r = payoff.double()
    A = float(r[0, 0] - r[0, 1] - r[1, 0] + r[1, 1])
    B = float(r[0, 1] + r[1, 0] - 2 * r[1, 1])
    return A, B, float(r[1, 1])


def ref_best_shared_theta(payoff):
    A, B, C = _ex06_1_coefficients(payoff)
    candidates = [0.0, 1.0] + ([-B / (2 * A)] if A < 0 and 0 < -B / (2 * A) < 1 else [])
    return max(candidates, key=lambda t: A * t * t + B * t + C)


def ref_best_shared_value_2x2(payoff):
    A, B, C = _ex06_1_coefficients(payoff)
    t = ref_best_shared_theta(payoff)
    return A * t * t + B * t + C


def shared_value_vertex_always(payoff):
    """Takes the stationary point (clipped to [0, 1]) even where J_share is convex: a minimum."""
    A, B, C = _ex06_1_coefficients(payoff)
    t = min(max(-B / (2 * A), 0.0), 1.0) if A != 0 else float(B > 0)
    return A * t * t + B * t + C


def shared_value_endpoints_only(payoff):
    """Deterministic shared policies only: max(r(0, 0), r(1, 1))."""
    return max(float(payoff[0, 0]), float(payoff[1, 1]))


def shared_value_unclamped_vertex(payoff):
    """Uses the vertex of a concave J_share even when it lies outside [0, 1]."""
    A, B, C = _ex06_1_coefficients(payoff)
    candidates = [0.0, 1.0] + ([-B / (2 * A)] if A < 0 else [])
    return max(A * t * t + B * t + C for t in candidates)


def shared_value_symmetrised_wrongly(payoff):
    """Counts 2 θ(1 − θ) r(0, 1): assumes r(0, 1) = r(1, 0)."""
    r = payoff.double().clone()
    r[1, 0] = r[0, 1]
    return ref_best_shared_value_2x2(r)


def shared_value_is_j_star(payoff):
    """Returns J*, the best joint action, as if agents could play different actions."""
    return float(payoff.max())


def theta_vertex_always(payoff):
    A, B, _ = _ex06_1_coefficients(payoff)
    return min(max(-B / (2 * A), 0.0), 1.0) if A != 0 else float(B > 0)


def theta_one_half(payoff):
    """θ = 1/2, the answer for XOR and Proposition 1, for every game."""
    return 0.5


def theta_endpoints_only(payoff):
    return 1.0 if float(payoff[0, 0]) >= float(payoff[1, 1]) else 0.0


def theta_of_action_one(payoff):
    """Returns the probability of action 1 instead of action 0."""
    return 1.0 - ref_best_shared_theta(payoff)


def ref_k_of_n_value(n, k):
    q = k / n
    return math.comb(n, k) * q**k * (1 - q) ** (n - k)


def k_of_n_at_one_half(n, k):
    """θ = 1/2 as in Proposition 1: C(n, k) / 2^n."""
    return math.comb(n, k) / 2**n


def k_of_n_without_binomial(n, k):
    """Counts one rewarded joint action instead of C(n, k)."""
    q = k / n
    return q**k * (1 - q) ** (n - k)


def k_of_n_as_proposition_one(n, k):
    """The Proposition-1 formula 2 (1/4)^(n/2), whatever k."""
    return 2 * 0.25 ** (n / 2)


def k_of_n_binomial_of_half(n, k):
    """The right θ = k/n, but C(n, n // 2) rewarded joint actions."""
    q = k / n
    return math.comb(n, n // 2) * q**k * (1 - q) ** (n - k)


REFERENCES.update({"ex06_1.check_best_shared_value": ref_best_shared_value_2x2,
                   "ex06_1.check_best_shared_theta": ref_best_shared_theta,
                   "ex06_1.check_k_of_n_value": ref_k_of_n_value})
MUTANTS.update({
    "ex06_1.check_best_shared_value": [shared_value_vertex_always, shared_value_endpoints_only,
                                       shared_value_unclamped_vertex, shared_value_symmetrised_wrongly,
                                       shared_value_is_j_star],
    "ex06_1.check_best_shared_theta": [theta_vertex_always, theta_one_half, theta_endpoints_only,
                                       theta_of_action_one],
    "ex06_1.check_k_of_n_value": [k_of_n_at_one_half, k_of_n_without_binomial, k_of_n_as_proposition_one,
                                  k_of_n_binomial_of_half],
})

# ---- ex06_2 (what a label, or an agent identity, buys a shared policy) -------------------------------


def _ex06_2_optima(payoff):
    r = payoff.double()
    return [tuple(int(i) for i in a) for a in torch.nonzero(r == r.max())]


def ref_labels_reach_optimum(payoff, labels):
    N = payoff.dim()
    return any(all(a[i] == a[j] for i in range(N) for j in range(i) if labels[i] == labels[j])
               for a in _ex06_2_optima(payoff))


def labels_diagonal_only(payoff, labels):
    """Ignores the labels: asks for an optimum where every agent plays the same action (one label)."""
    return any(len(set(a)) == 1 for a in _ex06_2_optima(payoff))


def labels_first_optimum_only(payoff, labels):
    """Looks at one optimum (the first argmax), not at all of them."""
    a = _ex06_2_optima(payoff)[0]
    N = payoff.dim()
    return all(a[i] == a[j] for i in range(N) for j in range(i) if labels[i] == labels[j])


def labels_every_optimum(payoff, labels):
    """Requires every optimum to be constant on the labels ("all" instead of "any")."""
    N = payoff.dim()
    return all(all(a[i] == a[j] for i in range(N) for j in range(i) if labels[i] == labels[j])
               for a in _ex06_2_optima(payoff))


def labels_adjacent_agents_only(payoff, labels):
    """Compares only neighbouring agents i, i + 1 with the same label."""
    N = payoff.dim()
    return any(all(a[i] == a[i + 1] for i in range(N - 1) if labels[i] == labels[i + 1])
               for a in _ex06_2_optima(payoff))


def labels_enough_of_them(payoff, labels):
    """Counts labels: enough distinct labels for the distinct actions of some optimum."""
    return any(len(set(a)) <= len(set(labels)) for a in _ex06_2_optima(payoff))


def ref_fewest_labels(payoff):
    return min(len(set(a)) for a in _ex06_2_optima(payoff))


def fewest_labels_first_optimum(payoff):
    return len(set(_ex06_2_optima(payoff)[0]))


def fewest_labels_worst_optimum(payoff):
    """max over the optima instead of min."""
    return max(len(set(a)) for a in _ex06_2_optima(payoff))


def fewest_labels_one_or_all(payoff):
    """1 if a diagonal joint action is optimal (J*_share = J*), else a full identity, N labels."""
    return 1 if any(len(set(a)) == 1 for a in _ex06_2_optima(payoff)) else payoff.dim()


def fewest_labels_union_of_actions(payoff):
    """Counts the distinct actions used by all optima together."""
    return len({x for a in _ex06_2_optima(payoff) for x in a})


def _ex06_2_product_sets(allowed, k):
    if k == 0:
        yield ()
        return
    heads = sorted({a[0] for a in allowed})
    for size in range(1, len(heads) + 1):
        for B in itertools.combinations(heads, size):
            tails = set.intersection(*({a[1:] for a in allowed if a[0] == b} for b in B))
            if tails:
                for rest in _ex06_2_product_sets(tails, k - 1):
                    yield (B, *rest)


def ref_optimal_product_entropy(payoff):
    best = set(_ex06_2_optima(payoff))
    return max(sum(math.log(len(B)) for B in sets) for sets in _ex06_2_product_sets(best, payoff.dim()))


def entropy_of_all_optima(payoff):
    """log |argmax r|: the autoregressive policy's entropy, not a product policy's."""
    return math.log(len(_ex06_2_optima(payoff)))


def entropy_of_projections(payoff):
    """Σ_i log |{a^i : a optimal}|: each agent uniform on every action it plays in some optimum."""
    best = _ex06_2_optima(payoff)
    return sum(math.log(len({a[i] for a in best})) for i in range(payoff.dim()))


def entropy_only_if_product(payoff):
    """log |argmax r| when argmax r is a product set, else 0 (misses product sets inside it)."""
    best = set(_ex06_2_optima(payoff))
    proj = [sorted({a[i] for a in best}) for i in range(payoff.dim())]
    return math.log(len(best)) if best == set(itertools.product(*proj)) else 0.0


def entropy_in_bits(payoff):
    return ref_optimal_product_entropy(payoff) / math.log(2)


REFERENCES.update({"ex06_2.check_labels_reach_optimum": ref_labels_reach_optimum,
                   "ex06_2.check_fewest_labels": ref_fewest_labels,
                   "ex06_2.check_optimal_product_entropy": ref_optimal_product_entropy})
MUTANTS.update({
    "ex06_2.check_labels_reach_optimum": [labels_diagonal_only, labels_first_optimum_only, labels_every_optimum,
                                         labels_adjacent_agents_only, labels_enough_of_them],
    "ex06_2.check_fewest_labels": [fewest_labels_first_optimum, fewest_labels_worst_optimum,
                                   fewest_labels_one_or_all, fewest_labels_union_of_actions],
    "ex06_2.check_optimal_product_entropy": [entropy_of_all_optima, entropy_of_projections, entropy_only_if_product,
                                             entropy_in_bits],
})

# ---- ex06_3 (VDN on exploration data) ---------------------------------------------------------------


def _ex06_3_conditionals(payoff, marginals, normalise=True, partners=None):
    """E_w[r | a^i] for every agent i (w = Π_i w_i; partners: the others' weights, default the data)."""
    r = payoff.double()
    N = r.dim()
    partners = marginals if partners is None else partners
    out = []
    for i in range(N):
        w = torch.ones_like(r)
        for j in range(N):
            m = marginals[j] if j == i else partners[j]
            w = w * m.double().reshape([-1 if k == j else 1 for k in range(N)])
        total = (w * r).sum(dim=[j for j in range(N) if j != i])
        out.append(total / marginals[i].double() if normalise else total)
    return out


def _ex06_3_additive(parts):
    N = len(parts)
    out = 0.0
    for i, q in enumerate(parts):
        out = out + q.reshape([-1 if j == i else 1 for j in range(N)])
    return out


def _ex06_3_mean(payoff, marginals):
    w = torch.ones_like(payoff.double())
    for j, m in enumerate(marginals):
        w = w * m.double().reshape([-1 if k == j else 1 for k in range(payoff.dim())])
    return (w * payoff.double()).sum()


def ref_vdn_fit(payoff, marginals):
    """Under product data the least-squares additive fit is the weighted main-effects decomposition."""
    N = payoff.dim()
    return _ex06_3_additive(_ex06_3_conditionals(payoff, marginals)) - (N - 1) * _ex06_3_mean(payoff, marginals)


def vdn_fit_ignores_weights(payoff, marginals):
    """Fits as if the data were uniform."""
    return ref_vdn_fit(payoff, [torch.full_like(m.double(), 1.0 / m.numel()) for m in marginals])


def vdn_fit_sum_of_conditionals(payoff, marginals):
    """Σ_i E[r | a^i] without removing the (N − 1)-fold counted mean."""
    return _ex06_3_additive(_ex06_3_conditionals(payoff, marginals))


def vdn_fit_unnormalised_conditionals(payoff, marginals):
    """Σ_{a^-i} w(a) r(a) instead of E[r | a^i]: forgets to divide by w_i(a^i)."""
    N = payoff.dim()
    parts = _ex06_3_conditionals(payoff, marginals, normalise=False)
    return _ex06_3_additive(parts) - (N - 1) * _ex06_3_mean(payoff, marginals)


def vdn_fit_uniform_partners(payoff, marginals):
    """Averages each agent's utility over uniform partners, not over the partners' data."""
    N = payoff.dim()
    uniform = [torch.full_like(m.double(), 1.0 / m.numel()) for m in marginals]
    parts = _ex06_3_conditionals(payoff, marginals, partners=uniform)
    return _ex06_3_additive(parts) - (N - 1) * _ex06_3_mean(payoff, marginals)


def ref_vdn_greedy(payoff, marginals):
    return tuple(int(torch.argmax(q)) for q in _ex06_3_conditionals(payoff, marginals))


def vdn_greedy_payoff_optimum(payoff, marginals):
    """The optimum of the payoff, as if the agents maximised r itself."""
    return tuple(int(i) for i in torch.nonzero(payoff == payoff.max())[0])


def vdn_greedy_uniform_data(payoff, marginals):
    return ref_vdn_greedy(payoff, [torch.full_like(m.double(), 1.0 / m.numel()) for m in marginals])


def vdn_greedy_argmin(payoff, marginals):
    return tuple(int(torch.argmin(q)) for q in _ex06_3_conditionals(payoff, marginals))


def vdn_greedy_reply_to_modes(payoff, marginals):
    """Each agent best-replies to the others' most likely actions instead of their whole data distribution."""
    modes = [int(torch.argmax(m)) for m in marginals]
    out = []
    for i in range(payoff.dim()):
        index = tuple(slice(None) if j == i else modes[j] for j in range(payoff.dim()))
        out.append(int(torch.argmax(payoff[index])))
    return tuple(out)


def _ex06_3_eps_greedy(shape, a, eps):
    out = []
    for ai, n in zip(a, shape):
        m = torch.full((n,), eps / n, dtype=torch.float64)
        m[ai] += 1 - eps
        out.append(m)
    return out


def ref_vdn_rest_points(payoff, eps):
    rest = []
    for a in itertools.product(*(range(n) for n in payoff.shape)):
        utilities = _ex06_3_conditionals(payoff, _ex06_3_eps_greedy(payoff.shape, a, eps))
        if all(float(q[a[i]]) >= float(q.max()) - 1e-9 for i, q in enumerate(utilities)):
            rest.append(a)
    return rest


def rest_points_are_optima(payoff, eps):
    return [tuple(int(i) for i in a) for a in torch.nonzero(payoff == payoff.max())]


def rest_points_pure_nash(payoff, eps):
    """Ignores the exploration: the joint actions no single agent wants to leave (pure Nash equilibria)."""
    out = []
    for a in itertools.product(*(range(n) for n in payoff.shape)):
        if all(float(payoff[a]) >= float(payoff[a[:i] + (b,) + a[i + 1:]]) for i in range(payoff.dim())
               for b in range(payoff.shape[i])):
            out.append(a)
    return out


def rest_points_one_uniform_fit(payoff, eps):
    """Fits VDN once, to uniform data, and returns its greedy joint action."""
    return [ref_vdn_greedy(payoff, [torch.full((n,), 1.0 / n, dtype=torch.float64) for n in payoff.shape])]


def rest_points_first_agent_only(payoff, eps):
    """Checks only agent 0's utility."""
    rest = []
    for a in itertools.product(*(range(n) for n in payoff.shape)):
        q = _ex06_3_conditionals(payoff, _ex06_3_eps_greedy(payoff.shape, a, eps))[0]
        if float(q[a[0]]) >= float(q.max()) - 1e-9:
            rest.append(a)
    return rest


REFERENCES.update({"ex06_3.check_vdn_fit": ref_vdn_fit, "ex06_3.check_vdn_greedy": ref_vdn_greedy,
                   "ex06_3.check_vdn_rest_points": ref_vdn_rest_points})
MUTANTS.update({
    "ex06_3.check_vdn_fit": [vdn_fit_ignores_weights, vdn_fit_sum_of_conditionals, vdn_fit_unnormalised_conditionals,
                             vdn_fit_uniform_partners],
    "ex06_3.check_vdn_greedy": [vdn_greedy_payoff_optimum, vdn_greedy_uniform_data, vdn_greedy_argmin,
                                vdn_greedy_reply_to_modes],
    "ex06_3.check_vdn_rest_points": [rest_points_are_optima, rest_points_pure_nash, rest_points_one_uniform_fit,
                                     rest_points_first_agent_only],
})

# ---- ex07_2 (simultaneous and sequential greedy updates from a joint Q; the improvement terms) --------


def _ex07_one_hot(values):
    return torch.nn.functional.one_hot(values.argmax(-1), values.shape[-1]).to(values.dtype)


def _ex07_contract(table, policies):
    """E over the leading action axes (after the state axis) of `table` under `policies`, in turn."""
    for p in policies:
        table = torch.einsum("sa...,sa->s...", table, p)
    return table


def ref_simultaneous_greedy(Q, pis):
    return [_ex07_one_hot(_marginal(Q, pis, (i,))) for i in range(len(pis))]


def simultaneous_argmin(Q, pis):
    return [_ex07_one_hot(-_marginal(Q, pis, (i,))) for i in range(len(pis))]


def simultaneous_uniform_partners(Q, pis):
    """Averages the other agents uniformly instead of under their policies."""
    uniform = [torch.full_like(p, 1.0 / p.shape[-1]) for p in pis]
    return [_ex07_one_hot(_marginal(Q, uniform, (i,))) for i in range(len(pis))]


def simultaneous_joint_argmax(Q, pis):
    """Each agent plays its part of the best joint action (as if it controlled the team)."""
    S, N = Q.shape[0], len(pis)
    flat = Q.reshape(S, -1).argmax(1)
    idx = torch.unravel_index(flat, Q.shape[1:])
    return [torch.nn.functional.one_hot(idx[i], pis[i].shape[1]).to(Q.dtype) for i in range(N)]


def simultaneous_is_sequential(Q, pis):
    """Updates the agents one after another (in index order): the sequential update, not the simultaneous one."""
    return ref_sequential_greedy(Q, pis, tuple(range(len(pis))))


def ref_sequential_greedy(Q, pis, order):
    new = {}
    for m, i in enumerate(order):
        before = tuple(order[:m])
        new[i] = _ex07_one_hot(_ex07_contract(_marginal(Q, pis, before + (i,)), [new[j] for j in before]))
    return [new[i] for i in range(len(pis))]


def sequential_old_before(Q, pis, order):
    """Averages the agents before i_m under their OLD policies: the simultaneous update."""
    return ref_simultaneous_greedy(Q, pis)


def sequential_index_order(Q, pis, order):
    """Ignores the order and updates agents 0, 1, ..., N - 1."""
    return ref_sequential_greedy(Q, pis, tuple(range(len(pis))))


def sequential_argmin(Q, pis, order):
    new = {}
    for m, i in enumerate(order):
        before = tuple(order[:m])
        new[i] = _ex07_one_hot(-_ex07_contract(_marginal(Q, pis, before + (i,)), [new[j] for j in before]))
    return [new[i] for i in range(len(pis))]


def sequential_uniform_later(Q, pis, order):
    """Averages the agents after i_m uniformly instead of under their old policies."""
    uniform = [torch.full_like(p, 1.0 / p.shape[-1]) for p in pis]
    new = {}
    for m, i in enumerate(order):
        before = tuple(order[:m])
        mixed = [pis[j] if j in before else uniform[j] for j in range(len(pis))]
        new[i] = _ex07_one_hot(_ex07_contract(_marginal(Q, mixed, before + (i,)), [new[j] for j in before]))
    return [new[i] for i in range(len(pis))]


def _ex07_cond_adv(Q, pis, before, i):
    big = _marginal(Q, pis, tuple(before) + (i,))
    small = _marginal(Q, pis, tuple(before))
    return big - small.unsqueeze(-1)


def ref_improvement_terms(Q, pis, new_pis, order):
    rows = []
    for m, i in enumerate(order):
        before = list(order[:m])
        A = _ex07_cond_adv(Q, pis, before, i)
        rows.append(_ex07_contract(A, [new_pis[j] for j in before] + [new_pis[i]]))
    return torch.stack(rows)


def terms_old_before(Q, pis, new_pis, order):
    """Averages the agents before i_m under their OLD policies (this gives A^{i_m}(s, a^{i_m}), unconditioned)."""
    rows = []
    for m, i in enumerate(order):
        before = list(order[:m])
        rows.append(_ex07_contract(_ex07_cond_adv(Q, pis, before, i), [pis[j] for j in before] + [new_pis[i]]))
    return torch.stack(rows)


def terms_own_old_policy(Q, pis, new_pis, order):
    """Averages agent i_m's own action under its OLD policy (every term is then zero)."""
    rows = []
    for m, i in enumerate(order):
        before = list(order[:m])
        rows.append(_ex07_contract(_ex07_cond_adv(Q, pis, before, i), [new_pis[j] for j in before] + [pis[i]]))
    return torch.stack(rows)


def terms_by_agent_index(Q, pis, new_pis, order):
    """Row i for agent i instead of row m for the m-th agent of the order."""
    rows = ref_improvement_terms(Q, pis, new_pis, order)
    return rows[[list(order).index(i) for i in range(len(pis))]]


def terms_values_not_advantages(Q, pis, new_pis, order):
    """E[Q^{i_1:m}] under the new policies: forgets to subtract Q^{i_1:m-1}."""
    rows = []
    for m, i in enumerate(order):
        before = list(order[:m])
        rows.append(_ex07_contract(_marginal(Q, pis, tuple(before) + (i,)), [new_pis[j] for j in before] + [new_pis[i]]))
    return torch.stack(rows)


REFERENCES.update({"ex07_2.check_simultaneous_greedy": ref_simultaneous_greedy,
                   "ex07_2.check_sequential_greedy": ref_sequential_greedy,
                   "ex07_2.check_improvement_terms": ref_improvement_terms})
MUTANTS.update({
    "ex07_2.check_simultaneous_greedy": [simultaneous_argmin, simultaneous_uniform_partners, simultaneous_joint_argmax,
                                         simultaneous_is_sequential],
    "ex07_2.check_sequential_greedy": [sequential_old_before, sequential_index_order, sequential_argmin,
                                       sequential_uniform_later],
    "ex07_2.check_improvement_terms": [terms_old_before, terms_own_old_policy, terms_by_agent_index,
                                       terms_values_not_advantages],
})

# ---- ex07_3 (credit assignment: COMA's advantage and the order-averaged credit) ----------------------


def _ex07_3_to_agent_axes(t, order, N):
    """A tensor on the grid [S, n_{order[0]}, ...] (some agents maybe missing) broadcast to agent-index axes."""
    present = list(order)
    axes = [0] + [1 + present.index(j) for j in range(N) if j in present]
    t = t.permute(*axes)
    shape = [t.shape[0]] + [t.shape[1 + sorted(present).index(j)] if j in present else 1 for j in range(N)]
    return t.reshape(shape)


def _ex07_3_term(Q, pis, before, i):
    """A^i(s, a^before, a^i) on agent-index axes (size 1 for agents not involved)."""
    N = len(pis)
    return _ex07_3_to_agent_axes(_ex07_cond_adv(Q, pis, before, i), tuple(before) + (i,), N)


def ref_coma_advantage(Q, pis, i):
    N = len(pis)
    others = [j for j in range(N) if j != i]
    return _ex07_3_term(Q, pis, others, i).expand(Q.shape)


def coma_uniform_baseline(Q, pis, i):
    """Averages agent i's replacement action uniformly instead of under π^i."""
    return Q - Q.mean(dim=i + 1, keepdim=True)


def coma_joint_advantage(Q, pis, i):
    """Averages every agent's action in the baseline: that is V, and Q − V the joint advantage."""
    return Q - _marginal(Q, pis, ()).reshape(-1, *[1] * len(pis))


def coma_first_term(Q, pis, i):
    """Averages the other agents out too: A^i(s, a^i), agent i's term when it comes first."""
    return _ex07_3_term(Q, pis, [], i).expand(Q.shape)


def coma_sign_flipped(Q, pis, i):
    return -ref_coma_advantage(Q, pis, i)


def ref_order_averaged_credit(Q, pis):
    N = len(pis)
    credits = []
    for i in range(N):
        others = [j for j in range(N) if j != i]
        total = torch.zeros_like(Q)
        for k in range(N):  # k agents before i: k! (n - k - 1)! of the n! orders
            weight = math.factorial(k) * math.factorial(N - k - 1) / math.factorial(N)
            for before in itertools.combinations(others, k):
                total = total + weight * _ex07_3_term(Q, pis, list(before), i)
        credits.append(total)
    return credits


def credit_is_coma(Q, pis):
    """Every agent gets its term as the LAST agent (COMA)."""
    return [ref_coma_advantage(Q, pis, i) for i in range(len(pis))]


def credit_is_first_term(Q, pis):
    """Every agent gets its term as the FIRST agent."""
    return [_ex07_3_term(Q, pis, [], i).expand(Q.shape) for i in range(len(pis))]


def credit_uniform_over_subsets(Q, pis):
    """Weights every subset of the others equally instead of by k! (n - k - 1)! / n!."""
    N = len(pis)
    credits = []
    for i in range(N):
        others = [j for j in range(N) if j != i]
        subsets = [c for k in range(N) for c in itertools.combinations(others, k)]
        credits.append(sum(_ex07_3_term(Q, pis, list(c), i) for c in subsets).expand(Q.shape) / len(subsets))
    return credits


def credit_first_and_last(Q, pis):
    """Averages only the first and the last position."""
    return [(a + b) / 2 for a, b in zip(credit_is_coma(Q, pis), credit_is_first_term(Q, pis))]


REFERENCES.update({"ex07_3.check_coma_advantage": ref_coma_advantage,
                   "ex07_3.check_order_averaged_credit": ref_order_averaged_credit})
MUTANTS.update({
    "ex07_3.check_coma_advantage": [coma_uniform_baseline, coma_joint_advantage, coma_first_term, coma_sign_flipped],
    "ex07_3.check_order_averaged_credit": [credit_is_coma, credit_is_first_term, credit_uniform_over_subsets,
                                           credit_first_and_last],
})


# =========================================================================== ex08_2, ex08_3 (Chapter 8 helper)

# --------------------------------------------------------------------------- Exercise 8.2 (ex08_2)


def ref_agent_update(theta, states, actions, logp_old, weight, clip_eps, epochs, lr):
    theta = theta.detach().clone()
    for _ in range(epochs):
        theta.requires_grad_(True)
        xi = torch.exp(torch.log_softmax(theta, -1)[states, actions] - logp_old)
        objective = torch.minimum(xi * weight, xi.clamp(1 - clip_eps, 1 + clip_eps) * weight).mean()
        (grad,) = torch.autograd.grad(objective, theta)
        theta = (theta + lr * grad).detach()
    return theta


def agent_update_descends(theta, states, actions, logp_old, weight, clip_eps, epochs, lr):
    """θ ← θ − η ∇ objective: minimises the objective instead of the loss."""
    return 2 * theta - ref_agent_update(theta, states, actions, logp_old, weight, clip_eps, epochs, lr)


def agent_update_ratio_computed_once(theta, states, actions, logp_old, weight, clip_eps, epochs, lr):
    """The ratio (and its graph) is built once, before the epochs: every step uses the first gradient."""
    leaf = theta.detach().clone().requires_grad_(True)
    xi = torch.exp(torch.log_softmax(leaf, -1)[states, actions] - logp_old)
    objective = torch.minimum(xi * weight, xi.clamp(1 - clip_eps, 1 + clip_eps) * weight).mean()
    out = theta.detach().clone()
    for _ in range(epochs):
        (grad,) = torch.autograd.grad(objective, leaf, retain_graph=True)
        out = out + lr * grad
    return out


def agent_update_max(theta, states, actions, logp_old, weight, clip_eps, epochs, lr):
    theta = theta.detach().clone()
    for _ in range(epochs):
        theta.requires_grad_(True)
        xi = torch.exp(torch.log_softmax(theta, -1)[states, actions] - logp_old)
        objective = torch.maximum(xi * weight, xi.clamp(1 - clip_eps, 1 + clip_eps) * weight).mean()
        (grad,) = torch.autograd.grad(objective, theta)
        theta = (theta + lr * grad).detach()
    return theta


def agent_update_sum(theta, states, actions, logp_old, weight, clip_eps, epochs, lr):
    """Sums over the batch: the step is B times too long."""
    return ref_agent_update(theta, states, actions, logp_old, weight, clip_eps, epochs, lr * len(states))


def agent_update_unclipped(theta, states, actions, logp_old, weight, clip_eps, epochs, lr):
    """No clipping: plain importance-weighted ascent."""
    return ref_agent_update(theta, states, actions, logp_old, weight, 1e9, epochs, lr)


def ref_happo_iteration(logits, states, actions, adv, generator, clip_eps, epochs, lr):
    order = torch.randperm(len(logits), generator=generator).tolist()
    logp_old = [torch.log_softmax(th, -1)[states, actions[:, i]] for i, th in enumerate(logits)]
    new = [th.detach().clone() for th in logits]
    M = torch.ones_like(adv)
    for i in order:
        new[i] = ref_agent_update(new[i], states, actions[:, i], logp_old[i], M * adv, clip_eps, epochs, lr)
        with torch.no_grad():
            M = M * torch.exp(torch.log_softmax(new[i], -1)[states, actions[:, i]] - logp_old[i])
    return new


def _happo_loop(logits, states, actions, adv, order, clip_eps, epochs, lr, m_from="new"):
    logp_old = [torch.log_softmax(th, -1)[states, actions[:, i]] for i, th in enumerate(logits)]
    new = [th.detach().clone() for th in logits]
    M = torch.ones_like(adv)
    for i in order:
        before = new[i]
        new[i] = ref_agent_update(new[i], states, actions[:, i], logp_old[i], M * adv, clip_eps, epochs, lr)
        theta = before if m_from == "before" else new[i]
        log_ratio = torch.log_softmax(theta, -1)[states, actions[:, i]] - logp_old[i]
        M = M * torch.exp(-log_ratio if m_from == "inverse" else log_ratio)
    return new


def happo_m_before_update(logits, states, actions, adv, generator, clip_eps, epochs, lr):
    """M uses the agent's parameters from before its own update (its ratio is then 1)."""
    order = torch.randperm(len(logits), generator=generator).tolist()
    return _happo_loop(logits, states, actions, adv, order, clip_eps, epochs, lr, m_from="before")


def happo_m_inverse_ratio(logits, states, actions, adv, generator, clip_eps, epochs, lr):
    """M ← (π_old / π_new) M."""
    order = torch.randperm(len(logits), generator=generator).tolist()
    return _happo_loop(logits, states, actions, adv, order, clip_eps, epochs, lr, m_from="inverse")


def happo_fixed_order(logits, states, actions, adv, generator, clip_eps, epochs, lr):
    """Always 0, 1, ..., n-1: ignores the generator."""
    return _happo_loop(logits, states, actions, adv, range(len(logits)), clip_eps, epochs, lr)


def happo_global_rng_order(logits, states, actions, adv, generator, clip_eps, epochs, lr):
    """Draws the order from torch's global generator, not from the one given."""
    order = torch.randperm(len(logits)).tolist()
    return _happo_loop(logits, states, actions, adv, order, clip_eps, epochs, lr)


def happo_simultaneous(logits, states, actions, adv, generator, clip_eps, epochs, lr):
    """Every agent from the old policies against Â: no sequence, no M."""
    logp_old = [torch.log_softmax(th, -1)[states, actions[:, i]] for i, th in enumerate(logits)]
    return [ref_agent_update(th, states, actions[:, i], logp_old[i], adv, clip_eps, epochs, lr)
            for i, th in enumerate(logits)]


def happo_m_updated_every_epoch(logits, states, actions, adv, generator, clip_eps, epochs, lr):
    """Multiplies the agent's current ratio into M after every epoch, not once after its update."""
    order = torch.randperm(len(logits), generator=generator).tolist()
    logp_old = [torch.log_softmax(th, -1)[states, actions[:, i]] for i, th in enumerate(logits)]
    new = [th.detach().clone() for th in logits]
    M = torch.ones_like(adv)
    for i in order:
        for _ in range(epochs):
            new[i] = ref_agent_update(new[i], states, actions[:, i], logp_old[i], M * adv, clip_eps, 1, lr)
            M = M * torch.exp(torch.log_softmax(new[i], -1)[states, actions[:, i]] - logp_old[i])
    return new


def happo_iteration_m_not_detached(logits, states, actions, adv, generator, clip_eps, epochs, lr):
    """M keeps its graph and one SGD optimiser holds every agent's logits (retain_graph to silence the
    error): a later agent's loss also moves the agents before it."""
    order = torch.randperm(len(logits), generator=generator).tolist()
    params = [th.detach().clone().requires_grad_(True) for th in logits]
    logp_old = [torch.log_softmax(th, -1)[states, actions[:, i]].detach() for i, th in enumerate(params)]
    optimiser = torch.optim.SGD(params, lr=lr)
    M = torch.ones_like(adv)
    for i in order:
        for _ in range(epochs):
            xi = torch.exp(torch.log_softmax(params[i], -1)[states, actions[:, i]] - logp_old[i])
            loss = -torch.minimum(xi * M * adv, xi.clamp(1 - clip_eps, 1 + clip_eps) * M * adv).mean()
            optimiser.zero_grad()
            loss.backward(retain_graph=True)
            optimiser.step()
        M = M * torch.exp(torch.log_softmax(params[i], -1)[states, actions[:, i]] - logp_old[i])
    return [p.detach() for p in params]


REFERENCES.update({"ex08_2.check_agent_update": ref_agent_update,
                   "ex08_2.check_happo_iteration": ref_happo_iteration})
MUTANTS.update({
    "ex08_2.check_agent_update": [agent_update_descends, agent_update_ratio_computed_once, agent_update_max,
                                  agent_update_sum, agent_update_unclipped],
    "ex08_2.check_happo_iteration": [happo_m_before_update, happo_iteration_m_not_detached, happo_fixed_order,
                                     happo_global_rng_order, happo_simultaneous, happo_m_updated_every_epoch,
                                     happo_m_inverse_ratio],
})


# --------------------------------------------------------------------------- Exercise 8.3 (ex08_3)

import math  # noqa: E402

from harl_mini import tabular  # noqa: E402


def _q_of(p, g, lam):
    """q_s(a) = λ p_s(a) / (μ_s − g_s(a)), with μ_s > max g_s such that Σ_a q_s(a) = 1.

    f(μ) = Σ_a λ p_a / (μ − g_a) − 1 is decreasing and convex on (max g, ∞), and f ≥ 0 at
    μ = max g + λ p_best: Newton's method from there climbs to the root without overshooting.
    """
    top = g.max(-1, keepdim=True).values
    p_best = (p * (g == top)).sum(-1, keepdim=True)
    mu = top + lam * p_best
    for _ in range(60):
        gap = mu - g
        f = (lam * p / gap).sum(-1, keepdim=True) - 1
        if bool((f.abs() <= 1e-14).all()):
            break
        mu = mu + f / (lam * p / gap**2).sum(-1, keepdim=True)  # Newton: μ − f / f'(μ)
    q = lam * p / (mu - g)
    return q / q.sum(-1, keepdim=True)


def ref_kl_ball_step(p, g, d, delta):
    g = g - (p * g).sum(-1, keepdim=True)
    moving = (d > 0) & (g.max(-1).values - g.min(-1).values > 1e-12)
    if not bool(moving.any()):
        return p.clone()
    P, G, D = p[moving], g[moving], d[moving]

    def mean_kl(log_lam):
        q = _q_of(P, G, math.exp(log_lam))
        return float((D * (P * (P / q).log()).sum(-1)).sum())

    lo, hi = -40.0, 40.0  # log λ: a small λ moves far (large KL), a large λ stays near p
    for _ in range(45):  # to 80 / 2**45 = 2e-12 in log λ
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean_kl(mid) > delta else (lo, mid)
    q = p.clone()
    q[moving] = _q_of(P, G, math.exp(hi))
    return q


def kl_step_exponential(p, g, d, delta):
    """q ∝ p exp(β g) with β set so that Σ d KL(p ‖ q) = δ: the softmax (mirror-descent) form."""
    def q_of(beta):
        return torch.softmax(p.log() + beta * g, -1)
    lo, hi = 0.0, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        kl = float((d * (p * (p / q_of(mid)).log()).sum(-1)).sum())
        lo, hi = (mid, hi) if kl < delta else (lo, mid)
    return q_of(lo)


def kl_step_reverse(p, g, d, delta):
    """q ∝ p exp(β g) with Σ d KL(q ‖ p) = δ: the exact answer for the KL with the new policy first."""
    def q_of(beta):
        return torch.softmax(p.log() + beta * g, -1)
    lo, hi = 0.0, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2
        q = q_of(mid)
        kl = float((d * (q * (q / p).log()).sum(-1)).sum())
        lo, hi = (mid, hi) if kl < delta else (lo, mid)
    return q_of(lo)


def kl_step_per_state(p, g, d, delta):
    """Every state with d_s > 0 gets KL = δ on its own (one multiplier per state)."""
    q = p.clone()
    for s in range(p.shape[0]):
        if float(d[s]) > 0:
            q[s] = ref_kl_ball_step(p[s:s + 1], g[s:s + 1], torch.ones(1, dtype=p.dtype), delta)[0]
    return q


def kl_step_linearised(p, g, d, delta):
    """The natural-gradient step of the quadratic model: q = p (1 + β (g − ḡ)), ½ Σ d Var_p(g) β² = δ."""
    centred = g - (p * g).sum(-1, keepdim=True)
    var = float((d * (p * centred**2).sum(-1)).sum())
    q = p * (1 + math.sqrt(2 * delta / var) * centred)
    q = q.clamp_min(1e-12)
    return q / q.sum(-1, keepdim=True)


def kl_step_ignores_weights(p, g, d, delta):
    """Treats the states as equally likely: the constraint and the objective without d."""
    w = torch.where(d > 0, torch.ones_like(d) / int((d > 0).sum()), torch.zeros_like(d))
    return ref_kl_ball_step(p, g, w, delta)


def _g_conditioned(game, pis, pis_new, order, m):
    before, i = tuple(order[:m - 1]), order[m - 1]
    adv = tabular.multi_agent_advantage(game, pis, (i,), given=before)
    for j in before:
        adv = torch.einsum("sa...,sa->s...", adv, pis_new[j])
    return adv


def ref_hatrpo_agent_step(game, pis, pis_new, order, m, delta):
    d = tabular.game_visitation(game, pis) * (1 - game.gamma)
    return ref_kl_ball_step(pis[order[m - 1]], _g_conditioned(game, pis, pis_new, order, m), d, delta)


def agent_step_unconditioned(game, pis, pis_new, order, m, delta):
    """The earlier agents at their OLD policies: the simultaneous update."""
    return ref_hatrpo_agent_step(game, pis, pis, order, m, delta)


def agent_step_rho_weights(game, pis, pis_new, order, m, delta):
    """ρ_π instead of d_π = (1 − γ) ρ_π as the state weights."""
    d = tabular.game_visitation(game, pis)
    return ref_kl_ball_step(pis[order[m - 1]], _g_conditioned(game, pis, pis_new, order, m), d, delta)


def agent_step_joint_q_marginal(game, pis, pis_new, order, m, delta):
    """g from the agent's own action value, averaging the OTHER agents under their old policies only."""
    i = order[m - 1]
    g = tabular.multi_agent_advantage(game, pis, (i,))
    d = tabular.game_visitation(game, pis) * (1 - game.gamma)
    return ref_kl_ball_step(pis[i], g, d, delta * 4)


def agent_step_wrong_agent(game, pis, pis_new, order, m, delta):
    """Updates agent m − 1 (by index) instead of the m-th agent of the order."""
    i = order[m - 1]
    j = m - 1
    if j == i:
        j = (i + 1) % len(pis)
    new_order = tuple(order[:m - 1]) + (j,) if j not in order[:m - 1] else order
    if new_order == order or pis[j].shape != pis[i].shape:
        return pis[i].clone()
    return ref_hatrpo_agent_step(game, pis, pis_new, new_order, m, delta)


REFERENCES.update({"ex08_3.check_kl_ball_step": ref_kl_ball_step,
                   "ex08_3.check_hatrpo_agent_step": ref_hatrpo_agent_step})
MUTANTS.update({
    "ex08_3.check_kl_ball_step": [kl_step_exponential, kl_step_reverse, kl_step_per_state, kl_step_linearised,
                                  kl_step_ignores_weights],
    "ex08_3.check_hatrpo_agent_step": [agent_step_unconditioned, agent_step_rho_weights,
                                       agent_step_joint_q_marginal, agent_step_wrong_agent],
})

# --------------------------------------------------------------------------- Exercises 4.2, 4.3, 5.2, 5.3 (ex04_2, ex04_3, ex05_2, ex05_3)

import math  # noqa: E402

from harl_mini import tabular as _T  # noqa: E402


def _bound_pieces(mdp, pi, pi_new):
    """A_π, d_π, L_π(π̃) and the exact per-state KL(π ‖ π̃) (0·log 0 = 0)."""
    adv, rho = _T.advantage(mdp, pi), _T.visitation(mdp, pi)
    L = _T.objective(mdp, pi) + (rho[:, None] * pi_new * adv).sum()
    log_ratio = torch.where(pi > 0, (pi / pi_new).log(), torch.zeros_like(pi))
    return adv, (1 - mdp.gamma) * rho, L, (pi * log_ratio).sum(-1)


def ref_mean_kl_bound(mdp, pi, pi_new):
    adv, d, L, kl_s = _bound_pieces(mdp, pi, pi_new)
    eps_tilde = (pi_new * adv).sum(-1).abs().max()
    return L - math.sqrt(2) * mdp.gamma * eps_tilde / (1 - mdp.gamma) ** 2 * (d * kl_s).sum().sqrt()


def kl_bound_eps_not_tilde(mdp, pi, pi_new):
    """ε = max |A_π| in place of ε̃."""
    adv, d, L, kl_s = _bound_pieces(mdp, pi, pi_new)
    return L - math.sqrt(2) * mdp.gamma * adv.abs().max() / (1 - mdp.gamma) ** 2 * (d * kl_s).sum().sqrt()


def kl_bound_reversed_kl(mdp, pi, pi_new):
    """D̄_KL(π̃, π): the new policy first."""
    adv, d, L, _ = _bound_pieces(mdp, pi, pi_new)
    kl_s = (pi_new * (pi_new / pi).log()).sum(-1)
    eps_tilde = (pi_new * adv).sum(-1).abs().max()
    return L - math.sqrt(2) * mdp.gamma * eps_tilde / (1 - mdp.gamma) ** 2 * (d * kl_s).sum().sqrt()


def kl_bound_rho_weights(mdp, pi, pi_new):
    """Mean KL weighted by the unnormalised ρ_π."""
    adv, d, L, kl_s = _bound_pieces(mdp, pi, pi_new)
    eps_tilde = (pi_new * adv).sum(-1).abs().max()
    return L - math.sqrt(2) * mdp.gamma * eps_tilde / (1 - mdp.gamma) ** 2 * (d / (1 - mdp.gamma) * kl_s).sum().sqrt()


def kl_bound_eps_tilde_visited_only(mdp, pi, pi_new):
    """ε̃ as a maximum over the states π visits (d_π > 0) only."""
    adv, d, L, kl_s = _bound_pieces(mdp, pi, pi_new)
    eps_tilde = (pi_new * adv).sum(-1).abs()[d > 0].max()
    return L - math.sqrt(2) * mdp.gamma * eps_tilde / (1 - mdp.gamma) ** 2 * (d * kl_s).sum().sqrt()


def kl_bound_new_policy_advantage(mdp, pi, pi_new):
    """ε̃ from the new policy's own advantage, Σ_a π̃ A_π̃ = 0: no penalty at all."""
    adv, d, L, kl_s = _bound_pieces(mdp, pi, pi_new)
    eps_tilde = (pi_new * _T.advantage(mdp, pi_new)).sum(-1).abs().max()
    return L - math.sqrt(2) * mdp.gamma * eps_tilde / (1 - mdp.gamma) ** 2 * (d * kl_s).sum().sqrt()


def kl_bound_sqrt_inside(mdp, pi, pi_new):
    """Σ_s d(s) √KL(s) instead of √(Σ_s d(s) KL(s))."""
    adv, d, L, kl_s = _bound_pieces(mdp, pi, pi_new)
    eps_tilde = (pi_new * adv).sum(-1).abs().max()
    return L - math.sqrt(2) * mdp.gamma * eps_tilde / (1 - mdp.gamma) ** 2 * (d * kl_s.clamp_min(0).sqrt()).sum()


def _mixture_constants(mdp, pi, target):
    adv, rho = _T.advantage(mdp, pi), _T.visitation(mdp, pi)
    gain = float((rho[:, None] * target * adv).sum())       # L_π(π') − J(π)
    eps_tilde = float((target * adv).sum(-1).abs().max())
    return gain, eps_tilde, mdp.gamma


def ref_certified_mixture_weight(mdp, pi, target):
    gain, eps_tilde, g = _mixture_constants(mdp, pi, target)
    if gain <= 0:
        return 0.0
    if g == 0:
        return 1.0
    return min(1.0, gain * (1 - g) ** 2 / (g * (2 * eps_tilde - gain * (1 - g))))


def certified_weight_by_bisection(mdp, pi, target):
    """A correct alternative: bisection on the bound itself (used to show the tolerance is fair)."""
    gain, eps_tilde, g = _mixture_constants(mdp, pi, target)

    def b(a):
        return a * gain - 2 * a * a * g * eps_tilde / ((1 - g) * (1 - g * (1 - a)))

    if gain <= 0:
        return 0.0
    if b(1.0) >= 0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (mid > 0 and b(mid) >= 0) or mid == 0 else (lo, mid)
    return lo


def certified_weight_weak_form(mdp, pi, target):
    """Root of the weaker second line, α𝔸 − 2ε̃γα²/(1−γ)²."""
    gain, eps_tilde, g = _mixture_constants(mdp, pi, target)
    return max(0.0, min(1.0, gain * (1 - g) ** 2 / (2 * g * eps_tilde))) if eps_tilde > 0 else 0.0


def certified_weight_not_clipped_at_one(mdp, pi, target):
    gain, eps_tilde, g = _mixture_constants(mdp, pi, target)
    if gain <= 0:
        return 0.0
    return gain * (1 - g) ** 2 / (g * (2 * eps_tilde - gain * (1 - g)))


def certified_weight_no_zero_case(mdp, pi, target):
    """Forgets that a target no better than π certifies nothing (and divides 0 by 0 for π' = π)."""
    gain, eps_tilde, g = _mixture_constants(mdp, pi, target)
    return min(1.0, abs(gain) * (1 - g) ** 2 / (g * (2 * eps_tilde - gain * (1 - g)) + 1e-300))


def certified_weight_is_best(mdp, pi, target):
    """Returns the maximiser of the bound instead of its root."""
    return ref_best_mixture_weight(mdp, pi, target)


def ref_best_mixture_weight(mdp, pi, target):
    gain, eps_tilde, g = _mixture_constants(mdp, pi, target)
    if gain <= 0:
        return 0.0
    if g == 0:
        return 1.0
    root = (1 - g) / g * (math.sqrt(2 * eps_tilde / (2 * eps_tilde - gain * (1 - g))) - 1)
    return min(1.0, max(0.0, root))


def best_weight_by_grid(mdp, pi, target):
    """A correct alternative: golden-section search on the bound (to show the tolerance is fair)."""
    gain, eps_tilde, g = _mixture_constants(mdp, pi, target)

    def b(a):
        return a * gain - 2 * a * a * g * eps_tilde / ((1 - g) * (1 - g * (1 - a)))

    lo, hi, phi = 0.0, 1.0, (math.sqrt(5) - 1) / 2
    for _ in range(80):
        x1, x2 = hi - phi * (hi - lo), lo + phi * (hi - lo)
        lo, hi = (lo, x2) if b(x1) >= b(x2) else (x1, hi)
    return (lo + hi) / 2


def best_weight_weak_form(mdp, pi, target):
    """Maximiser of the weaker parabola: 𝔸(1−γ)²/(4γε̃)."""
    gain, eps_tilde, g = _mixture_constants(mdp, pi, target)
    return max(0.0, min(1.0, gain * (1 - g) ** 2 / (4 * g * eps_tilde))) if eps_tilde > 0 else 0.0


def best_weight_half_certified(mdp, pi, target):
    return ref_certified_mixture_weight(mdp, pi, target) / 2


def best_weight_not_clipped(mdp, pi, target):
    """The root of the quadratic without clipping to [0, 1] (clipped only by the check's range test)."""
    gain, eps_tilde, g = _mixture_constants(mdp, pi, target)
    if gain == 0:
        return 0.0
    return (1 - g) / g * (math.sqrt(2 * eps_tilde / (2 * eps_tilde - gain * (1 - g))) - 1)


REFERENCES["ex04_2.check_mean_kl_bound"] = ref_mean_kl_bound
MUTANTS["ex04_2.check_mean_kl_bound"] = [kl_bound_eps_not_tilde, kl_bound_reversed_kl, kl_bound_rho_weights,
                                         kl_bound_eps_tilde_visited_only, kl_bound_new_policy_advantage,
                                         kl_bound_sqrt_inside]
REFERENCES["ex04_2.check_certified_mixture_weight"] = ref_certified_mixture_weight
MUTANTS["ex04_2.check_certified_mixture_weight"] = [certified_weight_weak_form, certified_weight_not_clipped_at_one,
                                                    certified_weight_no_zero_case, certified_weight_is_best]
REFERENCES["ex04_2.check_best_mixture_weight"] = ref_best_mixture_weight
MUTANTS["ex04_2.check_best_mixture_weight"] = [best_weight_weak_form, best_weight_half_certified,
                                               best_weight_not_clipped, certified_weight_weak_form]


def ref_trpo_full_step(mdp, theta, delta):
    pi = _T.softmax_policy(theta)
    adv, d = _T.advantage(mdp, pi), _T.state_distribution(mdp, pi)
    s = (adv - adv.mean(-1, keepdim=True)) / (1 - mdp.gamma) * (d > 0).to(adv.dtype)[:, None]  # F⁺g
    beta = (1 - mdp.gamma) * torch.sqrt(2 * delta / (d[:, None] * pi * adv**2).sum())
    return theta + beta * s


def trpo_full_step_with_cg(mdp, theta, delta):
    """A correct alternative: CG on Fisher-vector products, as Algorithm 2 does (shows the tolerance is fair)."""
    from harl_mini.trust_region import conjugate_gradient, max_step_length

    S, A = theta.shape
    g = _T.policy_gradient(mdp, theta).reshape(-1)

    def fvp(v):
        return _T.fisher_vector_product(mdp, theta, v.reshape(S, A)).reshape(-1)

    s = conjugate_gradient(fvp, g, iters=S * A, residual_tol=1e-22 * float(g @ g))
    return theta + max_step_length(s, fvp(s), delta) * s.reshape(S, A)


def full_step_without_one_minus_gamma(mdp, theta, delta):
    """β = √(2δ / E[A²]): the (1 − γ) of eq-trpo-npg dropped."""
    return theta + (ref_trpo_full_step(mdp, theta, delta) - theta) / (1 - mdp.gamma)


def full_step_mean_under_rho(mdp, theta, delta):
    """E[A²] under ρ_π (unnormalised): β too small by √(1 − γ)."""
    return theta + (ref_trpo_full_step(mdp, theta, delta) - theta) * math.sqrt(1 - mdp.gamma)


def full_step_forgets_the_two(mdp, theta, delta):
    """β = √(δ / sᵀFs)."""
    return theta + (ref_trpo_full_step(mdp, theta, delta) - theta) / math.sqrt(2)


def full_step_along_the_gradient(mdp, theta, delta):
    """The plain gradient g, scaled so that ½ (βg)ᵀF(βg) = δ."""
    g = _T.policy_gradient(mdp, theta)
    gFg = (g * _T.fisher_vector_product(mdp, theta, g)).sum()
    return theta + torch.sqrt(2 * delta / gFg) * g


def full_step_moves_unreached_states(mdp, theta, delta):
    """Applies (A − mean A)/(1 − γ) in every state, also where d_π(s) = 0."""
    pi = _T.softmax_policy(theta)
    adv, d = _T.advantage(mdp, pi), _T.state_distribution(mdp, pi)
    beta = (1 - mdp.gamma) * torch.sqrt(2 * delta / (d[:, None] * pi * adv**2).sum())
    return theta + beta * (adv - adv.mean(-1, keepdim=True)) / (1 - mdp.gamma)


REFERENCES["ex04_3.check_trpo_full_step"] = ref_trpo_full_step
MUTANTS["ex04_3.check_trpo_full_step"] = [full_step_without_one_minus_gamma, full_step_mean_under_rho,
                                          full_step_forgets_the_two, full_step_along_the_gradient,
                                          full_step_moves_unreached_states]


def ref_kl_penalty_maximiser(pi, adv, c_kl):
    used = pi > 0
    top = torch.where(used, adv, torch.full_like(adv, -float("inf"))).max(-1, keepdim=True).values
    gap = torch.where(used, top - adv, torch.ones_like(adv))
    lo, hi = torch.zeros_like(top), torch.full_like(top, float(c_kl))  # t = mu - max A in (0, c]
    for _ in range(200):
        t = (lo + hi) / 2
        total = torch.where(used, c_kl * pi / (t + gap), torch.zeros_like(pi)).sum(-1, keepdim=True)
        lo, hi = torch.where(total > 1, t, lo), torch.where(total > 1, hi, t)
    q = torch.where(used, c_kl * pi / ((lo + hi) / 2 + gap), torch.zeros_like(pi))
    return q / q.sum(-1, keepdim=True)


def klpen_exponential_tilt(pi, adv, c_kl):
    """q ∝ π e^{A/c}: the maximiser for the reverse KL(q ‖ π)."""
    q = pi * torch.exp((adv - adv.max(-1, keepdim=True).values) / c_kl)
    return q / q.sum(-1, keepdim=True)


def klpen_linearised(pi, adv, c_kl):
    """First-order step q = π(1 + (A − Σπ A)/c), clipped at 0 and renormalised."""
    q = (pi * (1 + (adv - (pi * adv).sum(-1, keepdim=True)) / c_kl)).clamp_min(0)
    return q / q.sum(-1, keepdim=True)


def klpen_fixed_multiplier(pi, adv, c_kl):
    """μ = max A + c (the upper end of the bracket), then renormalised: no solve for μ."""
    q = c_kl * pi / (adv.max(-1, keepdim=True).values + c_kl - adv)
    return q / q.sum(-1, keepdim=True)


def klpen_max_over_all_actions(pi, adv, c_kl):
    """Brackets μ above the largest advantage of ALL actions, also those with π(a|s) = 0."""
    top = adv.max(-1, keepdim=True).values
    gap = top - adv
    lo, hi = torch.zeros_like(top), torch.full_like(top, float(c_kl))
    for _ in range(200):
        t = (lo + hi) / 2
        total = (c_kl * pi / (t + gap)).sum(-1, keepdim=True)
        lo, hi = torch.where(total > 1, t, lo), torch.where(total > 1, hi, t)
    q = c_kl * pi / ((lo + hi) / 2 + gap)
    return q / q.sum(-1, keepdim=True)


def ref_next_kl_coef(c_kl, d, d_targ):
    if d < d_targ / 1.5:
        return c_kl / 2
    if d > 1.5 * d_targ:
        return c_kl * 2
    return c_kl


def next_kl_coef_inverted(c_kl, d, d_targ):
    if d < d_targ / 1.5:
        return c_kl * 2
    if d > 1.5 * d_targ:
        return c_kl / 2
    return c_kl


def next_kl_coef_factor_one_and_a_half(c_kl, d, d_targ):
    if d < d_targ / 1.5:
        return c_kl / 1.5
    if d > 1.5 * d_targ:
        return c_kl * 1.5
    return c_kl


def next_kl_coef_no_band(c_kl, d, d_targ):
    return c_kl / 2 if d < d_targ else c_kl * 2


def next_kl_coef_band_from_two(c_kl, d, d_targ):
    """Uses the step factor 2 for the band too: [d_targ/2, 2·d_targ]."""
    if d < d_targ / 2:
        return c_kl / 2
    if d > 2 * d_targ:
        return c_kl * 2
    return c_kl


REFERENCES["ex05_2.check_kl_penalty_maximiser"] = ref_kl_penalty_maximiser
MUTANTS["ex05_2.check_kl_penalty_maximiser"] = [klpen_exponential_tilt, klpen_linearised, klpen_fixed_multiplier,
                                                klpen_max_over_all_actions]
REFERENCES["ex05_2.check_next_kl_coef"] = ref_next_kl_coef
MUTANTS["ex05_2.check_next_kl_coef"] = [next_kl_coef_inverted, next_kl_coef_factor_one_and_a_half,
                                        next_kl_coef_no_band, next_kl_coef_band_from_two]


def _clip_grad_pieces(logits, logits_old, actions, adv, clip_eps):
    pi, pi_old = torch.softmax(logits, -1), torch.softmax(logits_old, -1)
    idx = actions[:, None]
    xi = (pi.gather(-1, idx) / pi_old.gather(-1, idx)).squeeze(-1)
    score = torch.nn.functional.one_hot(actions, logits.shape[-1]).to(logits.dtype) - pi
    return xi, score


def ref_clip_objective_grad(logits, logits_old, actions, adv, clip_eps):
    xi, score = _clip_grad_pieces(logits, logits_old, actions, adv, clip_eps)
    flat = ((adv > 0) & (xi > 1 + clip_eps)) | ((adv < 0) & (xi < 1 - clip_eps))
    weight = torch.where(flat, torch.zeros_like(xi), xi * adv) / len(adv)
    return weight[:, None] * score


def clip_grad_zero_outside_band(logits, logits_old, actions, adv, clip_eps):
    """Drops every sample outside [1 − ε, 1 + ε], also those on the losing side."""
    xi, score = _clip_grad_pieces(logits, logits_old, actions, adv, clip_eps)
    weight = torch.where((xi - 1).abs() > clip_eps, torch.zeros_like(xi), xi * adv) / len(adv)
    return weight[:, None] * score


def clip_grad_without_ratio(logits, logits_old, actions, adv, clip_eps):
    """Â ∇log π instead of Â ∇ξ = Â ξ ∇log π."""
    xi, score = _clip_grad_pieces(logits, logits_old, actions, adv, clip_eps)
    flat = ((adv > 0) & (xi > 1 + clip_eps)) | ((adv < 0) & (xi < 1 - clip_eps))
    return (torch.where(flat, torch.zeros_like(xi), adv) / len(adv))[:, None] * score


def clip_grad_one_hot_score(logits, logits_old, actions, adv, clip_eps):
    """∇ log π(a|s) taken as onehot(a): the −π(·|s) of the softmax forgotten."""
    xi, score = _clip_grad_pieces(logits, logits_old, actions, adv, clip_eps)
    flat = ((adv > 0) & (xi > 1 + clip_eps)) | ((adv < 0) & (xi < 1 - clip_eps))
    weight = torch.where(flat, torch.zeros_like(xi), xi * adv) / len(adv)
    return weight[:, None] * torch.nn.functional.one_hot(actions, logits.shape[-1]).to(logits.dtype)


def clip_grad_unclipped(logits, logits_old, actions, adv, clip_eps):
    """The gradient of the plain surrogate mean(ξ Â): nothing is clipped."""
    xi, score = _clip_grad_pieces(logits, logits_old, actions, adv, clip_eps)
    return (xi * adv / len(adv))[:, None] * score


def clip_grad_of_the_loss(logits, logits_old, actions, adv, clip_eps):
    """The gradient of the loss −L^CLIP."""
    return -ref_clip_objective_grad(logits, logits_old, actions, adv, clip_eps)


REFERENCES["ex05_3.check_clip_objective_grad"] = ref_clip_objective_grad
MUTANTS["ex05_3.check_clip_objective_grad"] = [clip_grad_zero_outside_band, clip_grad_without_ratio,
                                               clip_grad_one_hot_score, clip_grad_unclipped, clip_grad_of_the_loss]

# --------------------------------------------------------------------------- Exercise 1.3 (ex01_3)

from harl_mini.tabular import FiniteMDP as _FiniteMDP13  # noqa: E402
from harl_mini.tabular import optimal_q_value as _optimal_q_value13  # noqa: E402
from harl_mini.tabular import policy_iteration as _policy_iteration13  # noqa: E402


def ref_optimal_q(P, R, gamma, eps):
    return _optimal_q_value13(_FiniteMDP13(P, R, gamma))


def _q_backup13(P, R, gamma, Q):
    return R + gamma * torch.einsum("sat,t->sa", P, Q.max(1).values)


def optimal_q_naive_stop(P, R, gamma, eps):
    """Stops when two iterates differ by at most eps (the error can be gamma / (1 - gamma) times more)."""
    Q = torch.zeros_like(R)
    while True:
        Q_next = _q_backup13(P, R, gamma, Q)
        if float((Q_next - Q).abs().max()) <= eps:
            return Q_next
        Q = Q_next


def optimal_q_fixed_iterations(P, R, gamma, eps):
    """A fixed budget of 1000 backups, whatever gamma and eps."""
    Q = torch.zeros_like(R)
    for _ in range(1000):
        Q = _q_backup13(P, R, gamma, Q)
    return Q


def optimal_q_mean_backup(P, R, gamma, eps):
    """Averages over the next actions instead of maximising: Q of the uniform policy."""
    Q = torch.zeros_like(R)
    while True:
        Q_next = R + gamma * torch.einsum("sat,t->sa", P, Q.mean(1))
        if gamma / (1 - gamma) * float((Q_next - Q).abs().max()) <= eps:
            return Q_next
        Q = Q_next


def optimal_q_stop_on_relative_change(P, R, gamma, eps):
    """Stops when the change is below eps relative to |Q| (too early when |Q| is large)."""
    Q = torch.zeros_like(R)
    while True:
        Q_next = _q_backup13(P, R, gamma, Q)
        if float((Q_next - Q).abs().max()) <= eps * float(Q_next.abs().max()):
            return Q_next
        Q = Q_next


def ref_policy_iteration(P, R, gamma):
    return _policy_iteration13(_FiniteMDP13(P, R, gamma)).pi


def pi_myopic(P, R, gamma):
    """Greedy in the immediate reward R(s, a): ignores what comes after."""
    return torch.nn.functional.one_hot(R.argmax(1), R.shape[1]).to(R.dtype)


def pi_one_improvement(P, R, gamma):
    """Evaluates the uniform policy and improves once, then stops."""
    S, A = R.shape
    P_pi, r_pi = P.mean(1), R.mean(1)
    V = torch.linalg.solve(torch.eye(S, dtype=P.dtype) - gamma * P_pi, r_pi)
    Q = R + gamma * torch.einsum("sat,t->sa", P, V)
    return torch.nn.functional.one_hot(Q.argmax(1), A).to(R.dtype)


def pi_argmin(P, R, gamma):
    """Improves towards the worst action (argmin): converges to the worst deterministic policy."""
    S, A = R.shape
    actions, states = torch.zeros(S, dtype=torch.long), torch.arange(S)
    for _ in range(100):
        V = torch.linalg.solve(torch.eye(S, dtype=P.dtype) - gamma * P[states, actions], R[states, actions])
        Q = R + gamma * torch.einsum("sat,t->sa", P, V)
        new = Q.argmin(1)
        if torch.equal(new, actions):
            break
        actions = new
    return torch.nn.functional.one_hot(actions, A).to(R.dtype)


def pi_transposed_evaluation(P, R, gamma):
    """Evaluates with P_pi transposed (the visitation's system, not the value's)."""
    S, A = R.shape
    actions, states = torch.zeros(S, dtype=torch.long), torch.arange(S)
    for _ in range(100):
        V = torch.linalg.solve(torch.eye(S, dtype=P.dtype) - gamma * P[states, actions].T, R[states, actions])
        Q = R + gamma * torch.einsum("sat,t->sa", P, V)
        new = Q.argmax(1)
        if torch.equal(new, actions):
            break
        actions = new
    return torch.nn.functional.one_hot(actions, A).to(R.dtype)


def pi_stochastic_ties(P, R, gamma):
    """Returns the optimal policy mixed with the uniform one: values are right but pi is not deterministic."""
    pi = ref_policy_iteration(P, R, gamma)
    return 0.99 * pi + 0.01 / R.shape[1]


REFERENCES.update({"ex01_3.check_optimal_q": ref_optimal_q, "ex01_3.check_policy_iteration": ref_policy_iteration})
MUTANTS.update({
    "ex01_3.check_optimal_q": [optimal_q_naive_stop, optimal_q_fixed_iterations, optimal_q_mean_backup,
                               optimal_q_stop_on_relative_change],
    "ex01_3.check_policy_iteration": [pi_myopic, pi_one_improvement, pi_argmin, pi_transposed_evaluation,
                                      pi_stochastic_ties],
})

# --------------------------------------------------------------------------- Exercise 2.2 (ex02_2)

from harl_mini.tabular import reinforce_estimates as _reinforce_estimates22  # noqa: E402


def ref_reinforce_estimates(pi, states, actions, rewards, gamma, baseline):
    return _reinforce_estimates22(pi, states, actions, rewards, gamma, baseline)


def _estimates22(pi, states, actions, rewards, gamma, baseline, weights, G, b):
    S, A = pi.shape
    score = torch.nn.functional.one_hot(actions, A).to(torch.float64) - pi[states]
    onehot_s = torch.nn.functional.one_hot(states, S).to(torch.float64)
    return torch.einsum("nhs,nha->nsa", onehot_s * (weights * (G - b)).unsqueeze(-1), score)


def _reward_to_go22(rewards, gamma):
    G = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    for t in reversed(range(rewards.shape[1])):
        running = rewards[:, t] + gamma * running
        G[:, t] = running
    return G


def reinforce_without_discount_weights(pi, states, actions, rewards, gamma, baseline):
    """Drops gamma^t (the batch average of practice): biased for grad J_H."""
    H = rewards.shape[1]
    return _estimates22(pi, states, actions, rewards, gamma, baseline, torch.ones(H, dtype=torch.float64),
                        _reward_to_go22(rewards, gamma), baseline[states])


def reinforce_whole_return(pi, states, actions, rewards, gamma, baseline):
    """Weights every step with G_0 instead of the reward-to-go G_t (still unbiased, not the asked estimator)."""
    H = rewards.shape[1]
    G0 = _reward_to_go22(rewards, gamma)[:, :1].expand_as(rewards)
    return _estimates22(pi, states, actions, rewards, gamma, baseline, gamma ** torch.arange(H, dtype=torch.float64),
                        G0, baseline[states])


def reinforce_score_sign_flipped(pi, states, actions, rewards, gamma, baseline):
    """Uses pi_s - e_a as the score (descends instead of ascending)."""
    return -ref_reinforce_estimates(pi, states, actions, rewards, gamma, baseline)


def reinforce_baseline_next_state(pi, states, actions, rewards, gamma, baseline):
    """Subtracts b(s_{t+1}) at step t: depends on the action, so it biases the mean."""
    H = rewards.shape[1]
    b = torch.cat([baseline[states][:, 1:], torch.zeros(states.shape[0], 1, dtype=torch.float64)], 1)
    return _estimates22(pi, states, actions, rewards, gamma, baseline, gamma ** torch.arange(H, dtype=torch.float64),
                        _reward_to_go22(rewards, gamma), b)


def reinforce_undiscounted_return(pi, states, actions, rewards, gamma, baseline):
    """Reward-to-go without discounting the later rewards."""
    H = rewards.shape[1]
    return _estimates22(pi, states, actions, rewards, gamma, baseline, gamma ** torch.arange(H, dtype=torch.float64),
                        _reward_to_go22(rewards, 1.0), baseline[states])


def reinforce_score_without_pi(pi, states, actions, rewards, gamma, baseline):
    """Score e_a instead of e_a - pi_s: biased as soon as the baseline is not zero."""
    S, A = pi.shape
    H = rewards.shape[1]
    w = gamma ** torch.arange(H, dtype=torch.float64) * (_reward_to_go22(rewards, gamma) - baseline[states])
    onehot_s = torch.nn.functional.one_hot(states, S).to(torch.float64)
    onehot_a = torch.nn.functional.one_hot(actions, A).to(torch.float64)
    return torch.einsum("nhs,nha->nsa", onehot_s * w.unsqueeze(-1), onehot_a)


REFERENCES.update({"ex02_2.check_reinforce_estimates": ref_reinforce_estimates})
MUTANTS.update({"ex02_2.check_reinforce_estimates": [
    reinforce_without_discount_weights, reinforce_whole_return, reinforce_score_sign_flipped,
    reinforce_baseline_next_state, reinforce_undiscounted_return, reinforce_score_without_pi]})

# --------------------------------------------------------------------------- Exercise 2.3 (ex02_3)

from harl_mini.tabular import FiniteMDP as _FiniteMDP23  # noqa: E402
from harl_mini.tabular import expected_reinforce_direction as _direction23  # noqa: E402
from harl_mini.tabular import policy_gradient as _policy_gradient23  # noqa: E402


def ref_exact_policy_gradient(P, R, rho0, gamma, theta):
    return _policy_gradient23(_FiniteMDP23(P, R, gamma, rho0), theta)


def _pieces23(P, R, rho0, gamma, theta):
    """pi, V, Q, A and the visitation rho, by hand."""
    S = P.shape[0]
    pi = torch.softmax(theta, -1)
    P_pi = torch.einsum("sa,sat->st", pi, P)
    r_pi = (pi * R).sum(1)
    eye = torch.eye(S, dtype=P.dtype)
    V = torch.linalg.solve(eye - gamma * P_pi, r_pi)
    Q = R + gamma * torch.einsum("sat,t->sa", P, V)
    rho = torch.linalg.solve(eye - gamma * P_pi.T, rho0)
    return pi, V, Q, Q - V[:, None], rho, P_pi


def pg_normalised_visitation(P, R, rho0, gamma, theta):
    """Weights the states with d = (1 - gamma) rho (a factor 1 - gamma too small)."""
    pi, V, Q, A, rho, _ = _pieces23(P, R, rho0, gamma, theta)
    return (1 - gamma) * rho[:, None] * pi * A


def pg_q_instead_of_advantage(P, R, rho0, gamma, theta):
    """rho pi Q: forgets that sum_a grad pi(a|s) V(s) = 0 for the softmax."""
    pi, V, Q, A, rho, _ = _pieces23(P, R, rho0, gamma, theta)
    return rho[:, None] * pi * Q


def pg_visitation_not_transposed(P, R, rho0, gamma, theta):
    """Solves (I - gamma P_pi) rho = rho0 instead of the transposed system."""
    pi, V, Q, A, rho, P_pi = _pieces23(P, R, rho0, gamma, theta)
    rho_wrong = torch.linalg.solve(torch.eye(P.shape[0], dtype=P.dtype) - gamma * P_pi, rho0)
    return rho_wrong[:, None] * pi * A


def pg_initial_distribution(P, R, rho0, gamma, theta):
    """Weights the states with rho0 instead of the visitation."""
    pi, V, Q, A, rho, _ = _pieces23(P, R, rho0, gamma, theta)
    return rho0[:, None] * pi * A


def ref_undiscounted_direction(P, R, rho0, gamma, theta, H):
    return _direction23(_FiniteMDP23(P, R, gamma, rho0), theta, H, discount_weights=False)


def direction_with_discount_weights(P, R, rho0, gamma, theta, H):
    """Keeps gamma^t: that is grad J_H, not the batch direction."""
    return _direction23(_FiniteMDP23(P, R, gamma, rho0), theta, H, discount_weights=True)


def _direction_by_hand23(P, R, rho0, gamma, theta, H, shift=0, infinite=False, freeze=False):
    pi, V_pi, Q_pi, A_pi, rho, P_pi = _pieces23(P, R, rho0, gamma, theta)
    advs, V = [], torch.zeros(P.shape[0], dtype=P.dtype)
    for _ in range(H + 1):
        Q = R + gamma * torch.einsum("sat,t->sa", P, V)
        V = (pi * Q).sum(1)
        advs.append(Q - V[:, None])
    p_t, out = rho0, torch.zeros_like(pi)
    for t in range(H):
        k = min(max(H - t + shift, 1), H + 1)
        out = out + p_t[:, None] * pi * (A_pi if infinite else advs[k - 1])
        if not freeze:
            p_t = p_t @ P_pi
    return out


def direction_infinite_horizon_q(P, R, rho0, gamma, theta, H):
    """Uses A_pi of the infinite horizon at every step, not the value of the H - t steps left."""
    return _direction_by_hand23(P, R, rho0, gamma, theta, H, infinite=True)


def direction_off_by_one(P, R, rho0, gamma, theta, H):
    """H - t + 1 rewards left at step t."""
    return _direction_by_hand23(P, R, rho0, gamma, theta, H, shift=1)


def direction_states_frozen(P, R, rho0, gamma, theta, H):
    """Takes s_t ~ rho0 at every step."""
    return _direction_by_hand23(P, R, rho0, gamma, theta, H, freeze=True)


REFERENCES.update({"ex02_3.check_exact_policy_gradient": ref_exact_policy_gradient,
                   "ex02_3.check_undiscounted_direction": ref_undiscounted_direction})
MUTANTS.update({
    "ex02_3.check_exact_policy_gradient": [pg_normalised_visitation, pg_q_instead_of_advantage,
                                           pg_visitation_not_transposed, pg_initial_distribution],
    "ex02_3.check_undiscounted_direction": [direction_with_discount_weights, direction_infinite_horizon_q,
                                            direction_off_by_one, direction_states_frozen],
})

# --------------------------------------------------------------------------- Exercise 3.2 (ex03_2)

from harl_mini.tabular import FiniteMDP as _FiniteMDP32  # noqa: E402
from harl_mini.tabular import natural_gradient as _natural_gradient32  # noqa: E402
from harl_mini.tabular import run_npg as _run_npg32  # noqa: E402


def ref_natural_gradient(P, R, rho0, gamma, theta):
    return _natural_gradient32(_FiniteMDP32(P, R, gamma, rho0), theta)


def _adv_and_d32(P, R, rho0, gamma, pi):
    S = P.shape[0]
    P_pi = torch.einsum("sa,sat->st", pi, P)
    eye = torch.eye(S, dtype=P.dtype)
    V = torch.linalg.solve(eye - gamma * P_pi, (pi * R).sum(1))
    A = R + gamma * torch.einsum("sat,t->sa", P, V) - V[:, None]
    d = (1 - gamma) * torch.linalg.solve(eye - gamma * P_pi.T, rho0)
    return A, d


def natural_gradient_not_centred(P, R, rho0, gamma, theta):
    """A / (1 - gamma): solves F w = grad J, but is not the minimum-norm solution."""
    A, d = _adv_and_d32(P, R, rho0, gamma, torch.softmax(theta, -1))
    return torch.where((d > 0)[:, None], A / (1 - gamma), 0.0)


def natural_gradient_without_horizon_factor(P, R, rho0, gamma, theta):
    """Forgets 1 / (1 - gamma)."""
    A, d = _adv_and_d32(P, R, rho0, gamma, torch.softmax(theta, -1))
    return torch.where((d > 0)[:, None], A - A.mean(1, keepdim=True), 0.0)


def natural_gradient_unreachable_not_zero(P, R, rho0, gamma, theta):
    """Centred advantage everywhere, also where d(s) = 0."""
    A, _ = _adv_and_d32(P, R, rho0, gamma, torch.softmax(theta, -1))
    return (A - A.mean(1, keepdim=True)) / (1 - gamma)


def natural_gradient_pi_weighted_mean(P, R, rho0, gamma, theta):
    """Centres with the pi-weighted mean (which is 0 for A): not the minimum-norm choice."""
    pi = torch.softmax(theta, -1)
    A, d = _adv_and_d32(P, R, rho0, gamma, pi)
    return torch.where((d > 0)[:, None], (A - (pi * A).sum(1, keepdim=True)) / (1 - gamma), 0.0)


def ref_npg_policy(P, R, rho0, gamma, eta, T):
    return _run_npg32(_FiniteMDP32(P, R, gamma, rho0), eta, T).pi[-1]


def _npg32(P, R, rho0, gamma, eta, T, factor=None, frozen=False, everywhere=False, naive=False):
    S, A_ = R.shape
    logits = torch.zeros(S, A_, dtype=P.dtype)
    A0 = None
    for _ in range(T):
        pi = torch.softmax(logits, -1)
        A, d = _adv_and_d32(P, R, rho0, gamma, pi)
        if frozen:
            A0 = A if A0 is None else A0
            A = A0
        step = eta * A / ((1 - gamma) if factor is None else factor)
        if not everywhere:
            step = torch.where((d > 0)[:, None], step, 0.0)
        if naive:  # probabilities times exp, no log space
            p = pi * torch.exp(step)
            logits = torch.log(p / p.sum(1, keepdim=True))
        else:
            logits = logits + step
    return torch.softmax(logits, -1)


def npg_without_horizon_factor(P, R, rho0, gamma, eta, T):
    return _npg32(P, R, rho0, gamma, eta, T, factor=1.0)


def npg_frozen_advantage(P, R, rho0, gamma, eta, T):
    """Uses the advantage of the uniform policy at every step."""
    return _npg32(P, R, rho0, gamma, eta, T, frozen=True)


def npg_updates_unreachable_states(P, R, rho0, gamma, eta, T):
    return _npg32(P, R, rho0, gamma, eta, T, everywhere=True)


def npg_probability_space_overflow(P, R, rho0, gamma, eta, T):
    """pi * exp(eta A / (1 - gamma)) without working in log space: overflows for a huge step."""
    return _npg32(P, R, rho0, gamma, eta, T, naive=True)


REFERENCES.update({"ex03_2.check_natural_gradient": ref_natural_gradient, "ex03_2.check_npg_policy": ref_npg_policy})
MUTANTS.update({
    "ex03_2.check_natural_gradient": [natural_gradient_not_centred, natural_gradient_without_horizon_factor,
                                      natural_gradient_unreachable_not_zero, natural_gradient_pi_weighted_mean],
    "ex03_2.check_npg_policy": [npg_without_horizon_factor, npg_frozen_advantage, npg_updates_unreachable_states,
                                npg_probability_space_overflow],
})

# --------------------------------------------------------------------------- Exercise 3.3 (ex03_3)

from harl_mini.tabular import compatible_error as _compatible_error33  # noqa: E402
from harl_mini.tabular import compatible_weights as _compatible_weights33  # noqa: E402


def ref_compatible_weights(pi, rho, Q):
    return _compatible_weights33(pi, rho, Q)


def compatible_pi_centred(pi, rho, Q):
    """The fit f = Q - <pi, Q> itself: a minimiser, not the smallest one."""
    return torch.where((rho > 0)[:, None], Q - (pi * Q).sum(1, keepdim=True), 0.0)


def compatible_uncentred(pi, rho, Q):
    """Q itself: a minimiser, not the smallest one."""
    return torch.where((rho > 0)[:, None], Q, torch.zeros_like(Q))


def compatible_ignores_zero_weights(pi, rho, Q):
    """Centres every state, also those with rho(s) = 0 (which do not enter the error)."""
    return Q - Q.mean(1, keepdim=True)


def compatible_least_squares_unweighted(pi, rho, Q):
    """Least squares over the features with every action weighted equally."""
    S, A = pi.shape
    w = torch.zeros_like(Q)
    for s in range(S):
        if rho[s] > 0:
            w[s] = torch.linalg.pinv(torch.eye(A, dtype=Q.dtype) - pi[s], rtol=1e-12) @ Q[s]
    return w


def ref_min_compatible_error(pi, rho, Q):
    return _compatible_error33(pi, rho, Q, _compatible_weights33(pi, rho, Q))


def error_features_not_centred(pi, rho, Q):
    """Takes f_w = w instead of w - <pi, w>: the residual becomes the plain mean of Q."""
    return rho * Q.mean(1) ** 2


def error_without_state_weights(pi, rho, Q):
    return (pi * Q).sum(1) ** 2


def error_actions_not_weighted(pi, rho, Q):
    """Sums the squared residual over the actions instead of averaging it under pi."""
    return rho * Q.shape[1] * (pi * Q).sum(1) ** 2


def error_explained_part(pi, rho, Q):
    """Returns the variance the features explain instead of the residual."""
    return rho * (pi * (Q - (pi * Q).sum(1, keepdim=True)) ** 2).sum(1)


REFERENCES.update({"ex03_3.check_compatible_weights": ref_compatible_weights,
                   "ex03_3.check_min_compatible_error": ref_min_compatible_error})
MUTANTS.update({
    "ex03_3.check_compatible_weights": [compatible_pi_centred, compatible_uncentred, compatible_ignores_zero_weights,
                                        compatible_least_squares_unweighted],
    "ex03_3.check_min_compatible_error": [error_features_not_centred, error_without_state_weights,
                                          error_actions_not_weighted, error_explained_part],
})


# =========================================================================== Exercises 9.1, 9.2, 9.3 (ex09_1, ex09_2, ex09_3)
# ---- ex09_1
# The ring rendezvous as a MultiAgentVecEnv: the reference and plausible wrong adapters.

from harl_mini.envs.multi import MultiAgentVecEnv as _MultiAgentVecEnv91


class ref_RingMeetEnv(_MultiAgentVecEnv91):
    """The reference adapter (the model solution of Exercise 9.1)."""

    def __init__(self, num_envs, size=7, time_limit=10, seed=0):
        self.name = f"ring-meet-{size}"
        self.num_envs, self.size, self.time_limit = num_envs, size, time_limit
        self.num_agents = 2
        self.obs_dims = [2 * size, 2 * size]
        self.action_spaces = [("discrete", 3), ("discrete", 3)]
        self.state_dim = 2 * size
        self.gen = torch.Generator()
        self._check_spaces()
        self.reset(seed)

    def _starts(self, n):
        first = torch.randint(self.size, (n,), generator=self.gen)
        gap = torch.randint(1, self.size, (n,), generator=self.gen)
        return torch.stack([first, (first + gap) % self.size], 1)

    def _observe(self, pos):
        eye = torch.eye(self.size)
        own = [eye[pos[:, 0]], eye[pos[:, 1]]]
        offset = [eye[(pos[:, 1] - pos[:, 0]) % self.size], eye[(pos[:, 0] - pos[:, 1]) % self.size]]
        return [torch.cat([own[i], offset[i]], 1) for i in range(2)], torch.cat(own, 1)

    def _reset(self, seed):
        if seed is not None:
            self.gen.manual_seed(seed)
        self.pos = self._starts(self.num_envs)
        return self._observe(self.pos)

    def _distance(self, pos):
        gap = (pos[:, 1] - pos[:, 0]) % self.size
        return torch.minimum(gap, self.size - gap)

    def _flags(self, dist):
        terminated = dist == 0
        return terminated, ~terminated & (self.episode_t + 1 >= self.time_limit)

    def _new_pos(self, pos, done):
        return torch.where(done.unsqueeze(1), self._starts(self.num_envs), pos)

    def _step(self, actions):
        pos = (self.pos + torch.stack(actions, 1) - 1) % self.size
        dist = self._distance(pos)
        reward = torch.where(dist == 0, 1.0, -dist / self.size).float()
        terminated, truncated = self._flags(dist)
        final_obs, final_state = self._observe(pos)
        done = terminated | truncated
        if bool(done.any()):
            pos = self._new_pos(pos, done)
            obs, state = self._observe(pos)
        else:
            obs, state = final_obs, final_state
        self.pos = pos
        return self._final(obs, state, reward, terminated, truncated, final_obs, final_state)

    def _final(self, obs, state, reward, terminated, truncated, final_obs, final_state):
        return obs, state, reward, terminated, truncated, final_obs, final_state


class ring_final_obs_after_reset(ref_RingMeetEnv):
    """Resets first and returns the new episode's first observation as final_obs."""

    def _final(self, obs, state, reward, terminated, truncated, final_obs, final_state):
        return obs, state, reward, terminated, truncated, obs, state


class ring_time_limit_terminates(ref_RingMeetEnv):
    """Marks a time limit as a termination (terminated = met or out of time, truncated never)."""

    def _flags(self, dist):
        terminated = (dist == 0) | (self.episode_t + 1 >= self.time_limit)
        return terminated, torch.zeros_like(terminated)


class ring_resets_every_copy(ref_RingMeetEnv):
    """Resets every copy whenever one of them ends."""

    def _new_pos(self, pos, done):
        return self._starts(self.num_envs)


class ring_ignores_seed(ref_RingMeetEnv):
    """Seeds its generator once in __init__ with 0 and ignores the seed of reset()."""

    def _reset(self, seed):
        if not getattr(self, "_seeded", False):
            self.gen.manual_seed(0)
            self._seeded = True
        self.pos = self._starts(self.num_envs)
        return self._observe(self.pos)


class ring_global_generator(ref_RingMeetEnv):
    """Seeds the global torch generator in reset and draws every start from it."""

    def _reset(self, seed):
        if seed is not None:
            torch.manual_seed(seed)
        self.pos = self._starts(self.num_envs)
        return self._observe(self.pos)

    def _starts(self, n):
        first = torch.randint(self.size, (n,))
        gap = torch.randint(1, self.size, (n,))
        return torch.stack([first, (first + gap) % self.size], 1)


class ring_truncates_even_when_met(ref_RingMeetEnv):
    """Sets truncated at the last step even when the agents met there (both flags)."""

    def _flags(self, dist):
        return dist == 0, self.episode_t + 1 >= self.time_limit


class ring_truncates_one_late(ref_RingMeetEnv):
    """Truncates after time_limit + 1 steps (compares episode_t, not episode_t + 1, with the limit)."""

    def _flags(self, dist):
        terminated = dist == 0
        return terminated, ~terminated & (self.episode_t >= self.time_limit)


class ring_distance_without_wrap(ref_RingMeetEnv):
    """Rewards -|p2 - p1| / L: forgets that the ring wraps round."""

    def _distance(self, pos):
        return (pos[:, 1] - pos[:, 0]).abs()


class ring_offset_reversed(ref_RingMeetEnv):
    """Agent i sees onehot((p^i - p^j) mod L) instead of onehot((p^j - p^i) mod L)."""

    def _observe(self, pos):
        eye = torch.eye(self.size)
        own = [eye[pos[:, 0]], eye[pos[:, 1]]]
        offset = [eye[(pos[:, 0] - pos[:, 1]) % self.size], eye[(pos[:, 1] - pos[:, 0]) % self.size]]
        return [torch.cat([own[i], offset[i]], 1) for i in range(2)], torch.cat(own, 1)


class ring_starts_shift_on_collision(ref_RingMeetEnv):
    """Draws p^1 and p^2 independently and moves p^2 one cell on when they collide: not uniform."""

    def _starts(self, n):
        first = torch.randint(self.size, (n,), generator=self.gen)
        second = torch.randint(self.size, (n,), generator=self.gen)
        second = torch.where(second == first, (second + 1) % self.size, second)
        return torch.stack([first, second], 1)


class ring_never_resets_counter(ref_RingMeetEnv):
    """Keeps its own step counter and forgets to restart it for the copies that were reset."""

    def _reset(self, seed):
        self.steps_taken = torch.zeros(self.num_envs, dtype=torch.long)
        return super()._reset(seed)

    def _flags(self, dist):
        self.steps_taken = self.steps_taken + 1
        terminated = dist == 0
        return terminated, ~terminated & (self.steps_taken % self.time_limit == 0)


REFERENCES.update({"ex09_1.check_ring_env": ref_RingMeetEnv})
MUTANTS.update({"ex09_1.check_ring_env": [
    ring_final_obs_after_reset, ring_time_limit_terminates, ring_resets_every_copy, ring_ignores_seed,
    ring_global_generator, ring_truncates_even_when_met, ring_truncates_one_late, ring_distance_without_wrap,
    ring_offset_reversed, ring_starts_shift_on_collision, ring_never_resets_counter]})


# ---- ex09_2
# Value targets of a multi-agent rollout with automatic resets.

from harl_mini.advantages import gae as _gae92


def _rollout92(env, actions, critic, values_after=False, next_from="final"):
    values, next_values, rewards, terminated, truncated = [], [], [], [], []
    state = env.state
    for a in actions:
        _, new_state, reward, term, trunc, _, final_state = env.step(a)
        values.append(critic(final_state if values_after else state))
        next_values.append(critic(final_state if next_from == "final" else new_state))
        rewards.append(reward.double())
        terminated.append(term)
        truncated.append(trunc)
        state = new_state
    return (torch.stack(rewards), torch.stack(values), torch.stack(next_values), torch.stack(terminated),
            torch.stack(truncated))


def ref_rollout_targets(env, actions, critic, gamma, lam):
    r, v, nv, term, trunc = _rollout92(env, actions, critic)
    return _gae92(r, v, nv, term, trunc, gamma, lam)


def targets_bootstrap_after_reset(env, actions, critic, gamma, lam):
    """Bootstraps from V(state) returned by step: after a reset, the next episode's first state."""
    r, v, nv, term, trunc = _rollout92(env, actions, critic, next_from="returned")
    return _gae92(r, v, nv, term, trunc, gamma, lam)


def targets_truncation_as_termination(env, actions, critic, gamma, lam):
    """Passes done = terminated | truncated as terminated: no bootstrap at a time limit."""
    r, v, nv, term, trunc = _rollout92(env, actions, critic)
    return _gae92(r, v, nv, term | trunc, torch.zeros_like(trunc), gamma, lam)


def targets_last_step_terminal(env, actions, critic, gamma, lam):
    """Treats the end of the batch as the end of every episode (next value 0 at t = T - 1)."""
    r, v, nv, term, trunc = _rollout92(env, actions, critic)
    nv = nv.clone()
    nv[-1] = 0.0
    return _gae92(r, v, nv, term, trunc, gamma, lam)


def targets_values_after_step(env, actions, critic, gamma, lam):
    """Evaluates V after the step: values[t] = V(final_state_t) instead of V(state_t)."""
    r, v, nv, term, trunc = _rollout92(env, actions, critic, values_after=True)
    return _gae92(r, v, nv, term, trunc, gamma, lam)


def targets_termination_bootstraps(env, actions, critic, gamma, lam):
    """Treats every episode end as a truncation: bootstraps from the terminal state's value."""
    r, v, nv, term, trunc = _rollout92(env, actions, critic)
    return _gae92(r, v, nv, torch.zeros_like(term), term | trunc, gamma, lam)


def targets_returns_are_advantages(env, actions, critic, gamma, lam):
    """Returns Â as the value target too (forgets + V(s_t))."""
    adv, _ = ref_rollout_targets(env, actions, critic, gamma, lam)
    return adv, adv.clone()


REFERENCES.update({"ex09_2.check_rollout_targets": ref_rollout_targets})
MUTANTS.update({"ex09_2.check_rollout_targets": [
    targets_bootstrap_after_reset, targets_truncation_as_termination, targets_last_step_terminal,
    targets_values_after_step, targets_termination_bootstraps, targets_returns_are_advantages]})


# ---- ex09_3
# Comparing runs: the exact bootstrap over a few seeds, and speed ratios from interleaved pairs.

import itertools as _it93
import statistics as _st93


def _means93(v):
    """Mean of each of the n^n ordered resamples of v."""
    n = len(v)
    return torch.tensor([sum(float(v[i]) for i in idx) / n for idx in _it93.product(range(n), repeat=n)],
                        dtype=torch.float64)


def _compare93(mx, my, tie=0.5):
    greater = (mx[:, None] > my[None, :]).to(torch.float64)
    equal = (mx[:, None] == my[None, :]).to(torch.float64)
    return float((greater + tie * equal).mean())


def ref_prob_greater(x, y):
    return _compare93(_means93(x), _means93(y))


def prob_ties_win(x, y):
    """Counts a tie as a win ([u >= v])."""
    return _compare93(_means93(x), _means93(y), tie=1.0)


def prob_ties_lose(x, y):
    """Ignores ties ([u > v] only)."""
    return _compare93(_means93(x), _means93(y), tie=0.0)


def prob_paired(x, y):
    """Resamples the seeds of both groups with the same indices, as if seed k of x went with seed k of y."""
    if len(x) != len(y):
        return ref_prob_greater(x, y)
    n = len(x)
    wins = 0.0
    for idx in _it93.product(range(n), repeat=n):
        u, v = sum(float(x[i]) for i in idx) / n, sum(float(y[i]) for i in idx) / n
        wins += 1.0 if u > v else 0.5 if u == v else 0.0
    return wins / n ** n


def prob_multisets_uniform(x, y):
    """Enumerates the distinct resamples (multisets) and weights them equally."""
    def means(v):
        n = len(v)
        return torch.tensor([sum(float(v[i]) for i in c) / n for c in _it93.combinations_with_replacement(range(n), n)],
                            dtype=torch.float64)
    return _compare93(means(x), means(y))


def prob_monte_carlo(x, y):
    """Estimates the probability from 2,000 random resamples instead of enumerating them."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    mx = x[torch.randint(len(x), (2000, len(x)), generator=g)].mean(1)
    my = y[torch.randint(len(y), (2000, len(y)), generator=g)].mean(1)
    return float(((mx > my).to(torch.float64) + 0.5 * (mx == my).to(torch.float64)).mean())


def prob_without_replacement(x, y):
    """Permutes the seeds instead of drawing with replacement: every resample mean is the sample mean."""
    u, v = float(torch.as_tensor(x).double().mean()), float(torch.as_tensor(y).double().mean())
    return 1.0 if u > v else 0.5 if u == v else 0.0


def _ok93(runs):
    return [r for r in runs if r.get("returncode", 0) == 0 and "result" in r]


def _triple93(ratios):
    return torch.tensor([_st93.median(ratios), min(ratios), max(ratios)], dtype=torch.float64)


def ref_pair_ratio(runs):
    by_pair = {}
    for r in runs:
        by_pair.setdefault(r["pair"], {})[r["side"]] = r
    ratios = []
    for k in sorted(by_pair):
        slot = by_pair[k]
        if all(s in slot and slot[s].get("returncode", 0) == 0 and "result" in slot[s] for s in ("peer", "harl_mini")):
            ratios.append(slot["harl_mini"]["result"]["rate"] / slot["peer"]["result"]["rate"])
    return _triple93(ratios)


def pair_ratio_of_medians(runs):
    """Divides the median harl_mini rate by the median peer rate."""
    ok = _ok93(runs)
    hm = [r["result"]["rate"] for r in ok if r["side"] == "harl_mini"]
    peer = [r["result"]["rate"] for r in ok if r["side"] == "peer"]
    ratios = ref_pair_ratio(runs)
    return torch.tensor([_st93.median(hm) / _st93.median(peer), float(ratios[1]), float(ratios[2])],
                        dtype=torch.float64)


def pair_ratio_inverted(runs):
    """peer / harl_mini."""
    by_pair = {}
    for r in _ok93(runs):
        by_pair.setdefault(r["pair"], {})[r["side"]] = r["result"]["rate"]
    return _triple93([s["peer"] / s["harl_mini"] for s in by_pair.values() if len(s) == 2])


def pair_ratio_by_position(runs):
    """Pairs the i-th peer record with the i-th harl_mini record, in list order."""
    peers = [r for r in runs if r["side"] == "peer"]
    mine = [r for r in runs if r["side"] == "harl_mini"]
    ratios = [m["result"]["rate"] / p["result"]["rate"] for p, m in zip(peers, mine)
              if "result" in p and "result" in m]
    return _triple93(ratios)


def pair_ratio_drops_runs_not_pairs(runs):
    """Leaves out the failed runs, then pairs the remaining peer and harl_mini runs in order."""
    ok = sorted(_ok93(runs), key=lambda r: r["pair"])
    peers = [r for r in ok if r["side"] == "peer"]
    mine = [r for r in ok if r["side"] == "harl_mini"]
    return _triple93([m["result"]["rate"] / p["result"]["rate"] for p, m in zip(peers, mine)])


def pair_ratio_median_low(runs):
    """Takes the lower middle ratio as the median of an even number of pairs."""
    t = ref_pair_ratio(runs)
    by_pair = {}
    for r in _ok93(runs):
        by_pair.setdefault(r["pair"], {})[r["side"]] = r["result"]["rate"]
    ratios = [s["harl_mini"] / s["peer"] for s in by_pair.values() if len(s) == 2]
    return torch.tensor([_st93.median_low(ratios), float(t[1]), float(t[2])], dtype=torch.float64)


def pair_ratio_mean(runs):
    """Reports the mean of the per-pair ratios instead of their median."""
    by_pair = {}
    for r in _ok93(runs):
        by_pair.setdefault(r["pair"], {})[r["side"]] = r["result"]["rate"]
    ratios = [s["harl_mini"] / s["peer"] for s in by_pair.values() if len(s) == 2]
    return torch.tensor([sum(ratios) / len(ratios), min(ratios), max(ratios)], dtype=torch.float64)


REFERENCES.update({"ex09_3.check_prob_greater": ref_prob_greater, "ex09_3.check_pair_ratio": ref_pair_ratio})
MUTANTS.update({
    "ex09_3.check_prob_greater": [prob_ties_win, prob_ties_lose, prob_paired, prob_multisets_uniform,
                                  prob_monte_carlo, prob_without_replacement],
    "ex09_3.check_pair_ratio": [pair_ratio_of_medians, pair_ratio_inverted, pair_ratio_by_position,
                                pair_ratio_drops_runs_not_pairs, pair_ratio_median_low, pair_ratio_mean]})
