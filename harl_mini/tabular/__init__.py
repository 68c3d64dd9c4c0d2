"""The exact float64 tabular oracle: finite MDPs and cooperative Markov games.

==========================================  ==================================================
Module                                      What it holds
==========================================  ==================================================
:mod:`harl_mini.tabular.mdp`                ``FiniteMDP``; V, Q, A, J, ρ, d; Bellman operators;
                                            value and policy iteration (Chapter 1)
:mod:`harl_mini.tabular.game`               ``MarkovGame``; joint and multi-agent Q / A
                                            (Chapter 7)
:mod:`harl_mini.tabular.divergence`         state-wise KL and TV, their max and mean
:mod:`harl_mini.tabular.generators`         random MDPs and games, gridworlds, the chain,
                                            the ``make_mdp`` registry
:mod:`harl_mini.tabular.sampling`           vectorised Monte-Carlo rollouts
:mod:`harl_mini.tabular.td`                 sampled TD(0) and Q-learning (Chapter 1)
==========================================  ==================================================

Everything is re-exported here. The joint functions of :mod:`~harl_mini.tabular.game`
share their names with the single-agent ones, so here they carry a ``game_`` prefix:
``game_value``, ``game_q_value``, ``game_advantage``, ``game_objective``,
``game_visitation`` (equivalently ``harl_mini.tabular.game.value`` and so on).
"""

from harl_mini.tabular import divergence, game, generators, mdp, sampling
from harl_mini.tabular.divergence import agent_kl, joint_kl, kl, kl_max, mean_kl, tv, tv_max
from harl_mini.tabular.game import (
    MarkovGame,
    all_multi_agent_q,
    check_joint_policy,
    flat_joint_policy,
    joint_policy,
    matrix_game,
    multi_agent_advantage,
    multi_agent_q,
    random_policies,
    uniform_policies,
)
from harl_mini.tabular.game import advantage as game_advantage
from harl_mini.tabular.game import objective as game_objective
from harl_mini.tabular.game import q_value as game_q_value
from harl_mini.tabular.game import value as game_value
from harl_mini.tabular.game import visitation as game_visitation
from harl_mini.tabular.generators import (
    GRIDWORLDS,
    MDPS,
    Gridworld,
    chain_mdp,
    gridworld,
    make_mdp,
    random_game,
    random_mdp,
    with_unreachable_state,
)
from harl_mini.tabular.mdp import (
    FiniteMDP,
    PolicyIterationResult,
    ValueIterationResult,
    advantage,
    bellman_expectation_backup,
    bellman_optimality_backup,
    bellman_optimality_backup_q,
    bellman_residual,
    check_policy,
    expected_reward,
    greedy_policy,
    objective,
    optimal_q_value,
    optimal_value,
    policy_iteration,
    q_from_v,
    q_value,
    random_policy,
    state_distribution,
    transition_matrix,
    uniform_policy,
    value,
    value_iteration,
    visitation,
)
from harl_mini.tabular.sampling import Trajectories, default_horizon, sample_returns, sample_trajectories
from harl_mini.tabular.sampling import WeightedTrajectories, all_trajectories  # noqa: E402  (exact means, Ch. 2)
from harl_mini.tabular import td  # noqa: E402  (sampled TD(0) and Q-learning, Chapter 1)
from harl_mini.tabular.td import TDResult, q_learning, td0_evaluation  # noqa: E402

__all__ = [
    # modules
    "mdp", "game", "divergence", "generators", "sampling",
    # mdp
    "FiniteMDP", "check_policy", "uniform_policy", "random_policy", "transition_matrix",
    "expected_reward", "value", "q_from_v", "q_value", "advantage", "objective", "visitation",
    "state_distribution", "bellman_expectation_backup", "bellman_optimality_backup",
    "bellman_residual", "greedy_policy", "value_iteration", "ValueIterationResult",
    "policy_iteration", "PolicyIterationResult", "optimal_value",
    "bellman_optimality_backup_q", "optimal_q_value",
    # game
    "MarkovGame", "matrix_game", "check_joint_policy", "joint_policy", "flat_joint_policy",
    "uniform_policies", "random_policies", "game_value", "game_q_value", "game_advantage",
    "game_objective", "game_visitation", "multi_agent_q", "multi_agent_advantage",
    "all_multi_agent_q",
    # divergence
    "kl", "kl_max", "mean_kl", "tv", "tv_max", "agent_kl", "joint_kl",
    # generators
    "random_mdp", "random_game", "gridworld", "Gridworld", "GRIDWORLDS", "chain_mdp", "MDPS",
    "make_mdp", "with_unreachable_state",
    # sampling
    "sample_returns", "sample_trajectories", "Trajectories", "default_horizon", "all_trajectories",
    "WeightedTrajectories",
    # td (Chapter 1)
    "td", "td0_evaluation", "q_learning", "TDResult",
]

# Chapters 2-5: exact policy gradients and natural gradients of tabular softmax policies
# (softmax.py), TRPO and PPO theory (trpo.py).
from harl_mini.tabular import trpo  # noqa: E402
from harl_mini.tabular.softmax import (  # noqa: E402
    OptimisationHistory,
    fisher_matrix,
    fisher_vector_product,
    natural_gradient,
    npg_multiplicative_weights,
    npg_update,
    objective_from_logits,
    performance_difference,
    performance_difference_normalised,
    policy_gradient,
    run_npg,
    run_pg,
    softmax_policy,
)
from harl_mini.tabular.softmax import (  # noqa: E402  (finite horizons, REINFORCE: Ch. 2; compatible fit: Ch. 3)
    compatible_error,
    compatible_weights,
    expected_reinforce_direction,
    random_logits,
    reinforce_estimates,
    truncated_objective_from_logits,
)
from harl_mini.tabular.trpo import (  # noqa: E402
    MinorizeMaximizeResult,
    exact_trpo_step,
    minorize_maximize_step,
    penalty_constant,
    ppo_objective,
    sharp_bound,
    surrogate,
    trpo_lower_bound,
    tv_lower_bound,
)

__all__ += [
    # softmax (Chapters 2-3)
    "softmax_policy", "objective_from_logits", "policy_gradient", "performance_difference",
    "performance_difference_normalised", "fisher_matrix", "fisher_vector_product",
    "natural_gradient", "npg_update", "npg_multiplicative_weights", "OptimisationHistory",
    "run_npg", "run_pg", "random_logits", "truncated_objective_from_logits", "expected_reinforce_direction",
    "reinforce_estimates", "compatible_weights", "compatible_error",
    # trpo (Chapters 4-5)
    "trpo", "surrogate", "penalty_constant", "trpo_lower_bound", "tv_lower_bound", "sharp_bound",
    "exact_trpo_step", "MinorizeMaximizeResult", "minorize_maximize_step", "ppo_objective",
]

# Chapters 6-7: cooperative games, parameter sharing, simultaneous vs sequential updates
# (games.py, sharing.py, updates.py). ``games.optimal_value`` is exported as
# ``game_optimal_value`` (``optimal_value`` is the single-agent V*).
from harl_mini.tabular import games, sharing, updates  # noqa: E402
from harl_mini.tabular.games import (  # noqa: E402
    GAMES,
    climbing_game,
    make_game,
    penalty_game,
    permutation_game,
    prop1_game,
    two_step_game,
    xor_game,
    zhong_example1_game,
)
from harl_mini.tabular.games import optimal_value as game_optimal_value  # noqa: E402
from harl_mini.tabular.sharing import (  # noqa: E402
    SharedOptimum,
    ValueFit,
    argmax_set,
    best_shared_policy,
    igm_holds,
    igm_representable,
    monotone_fit_bound,
    qmix_fit,
    qmix_floor,
    shared_objective,
    vdn_fit,
    vdn_floor,
)
from harl_mini.tabular.updates import (  # noqa: E402
    a1a2_objective,
    a1a2_sequential_update,
    a1a2_simultaneous_update,
    decomposition_terms,
    gaussian_kl,
    sequential_best_response,
    simultaneous_best_response,
)

__all__ += [
    # games (Chapter 6)
    "games", "xor_game", "prop1_game", "permutation_game", "climbing_game", "penalty_game",
    "zhong_example1_game", "two_step_game", "GAMES", "make_game", "game_optimal_value",
    # sharing (Chapter 6)
    "sharing", "shared_objective", "best_shared_policy", "SharedOptimum", "vdn_fit", "vdn_floor",
    "ValueFit", "argmax_set", "igm_holds", "igm_representable", "qmix_fit", "monotone_fit_bound",
    "qmix_floor",
    # updates (Chapters 7-8)
    "updates", "a1a2_objective", "gaussian_kl", "a1a2_simultaneous_update", "a1a2_sequential_update",
    "simultaneous_best_response", "sequential_best_response", "decomposition_terms",
]

# Chapter 8: the multi-agent surrogate, bound and sequential update (HATRPO theory)
from harl_mini.tabular import hatrpo  # noqa: E402
from harl_mini.tabular.hatrpo import (  # noqa: E402
    MultiAgentRun,
    best_response_values,
    is_nash_equilibrium,
    m_factor,
    ma_lower_bound,
    ma_penalty_constant,
    ma_surrogate,
    ma_surrogate_estimator,
    nash_gap,
    run_sequential,
    run_simultaneous,
    sequential_update,
    simultaneous_update,
    soften,
)

__all__ += [
    # hatrpo (Chapter 8)
    "hatrpo", "m_factor", "ma_surrogate", "ma_surrogate_estimator", "ma_penalty_constant",
    "ma_lower_bound", "soften", "sequential_update", "simultaneous_update", "MultiAgentRun",
    "run_sequential", "run_simultaneous", "best_response_values", "nash_gap", "is_nash_equilibrium",
]

# Chapter 10: autoregressive joint policies (PG-AR, MAT, distillation)
from harl_mini.tabular import autoregressive  # noqa: E402
from harl_mini.tabular.autoregressive import (  # noqa: E402
    ar_advantage_terms,
    ar_conditional_q,
    ar_entropies,
    ar_factors,
    ar_joint_policy,
    ar_log_probs,
    ar_objective,
    ar_surrogate_terms,
    check_ar_policy,
    marginal_policies,
    mat_error_bound,
    product_factors,
    run_ar_pg,
    uniform_factors,
)

__all__ += [
    # autoregressive (Chapter 10)
    "autoregressive", "check_ar_policy", "ar_joint_policy", "ar_factors", "product_factors", "uniform_factors",
    "ar_log_probs", "ar_objective", "ar_entropies", "ar_conditional_q", "ar_advantage_terms", "ar_surrogate_terms",
    "mat_error_bound", "marginal_policies", "run_ar_pg",
]

# Chapter 8, Section 8.5: heterogeneous-agent mirror learning (HAML), exactly
from harl_mini.tabular import haml  # noqa: E402
from harl_mini.tabular.haml import HAMLRun, run_haml  # noqa: E402

__all__ += ["haml", "HAMLRun", "run_haml"]
