"""Plotting helpers used by the book: one module per topic, each a set of pure functions
that draw on a matplotlib Axes, plus thin ipywidgets wrappers that call the same functions.

===========================  =====================================================
``viz.gridworld``            value heat maps with greedy arrows, value-iteration error (Ch. 1)
``viz.policy_gradient``      sampled-gradient error, learning curves, GAE bias/variance (Ch. 2)
``viz.natural_gradient``     NPG vs PG on the simplex, optimality gap vs bound (Ch. 3)
``viz.trust_region``         TRPO bound picture, exact TRPO steps, PPO clip (Ch. 4-5)
``viz.marl``                 shared-policy objective, a¹a² update paths, game runs (Ch. 6-7)
``viz.hatrpo``               sequential sub-steps, J trajectories, NE gaps, M factor (Ch. 8)
``viz.runs``                 recorded runs: curves over seeds, provenance, results tables
``viz.style``                the book's figure style (column width, fonts, 2× PNG), applied on import
``viz.explorer``             explorers: live ipywidgets in a kernel, precomputed frames in the HTML
===========================  =====================================================

``check(condition, message)`` asserts and prints one line, ``✓ message`` (a check cell's output).
"""

from harl_mini.viz import style
from harl_mini.viz._common import check

from harl_mini.viz.gridworld import gridworld_explorer, plot_gridworld, plot_value_iteration_error
from harl_mini.viz.hatrpo import (
    game_results,
    game_results_table,
    load_bench,
    m_factor_distribution,
    plot_bound_slack,
    plot_j_trajectories,
    plot_m_distribution,
    plot_nash_gaps,
    plot_sequential_update,
    sequential_substeps,
    sequential_update_explorer,
)
from harl_mini.viz.marl import (
    a1a2_update_explorer,
    a1a2_update_paths,
    plot_a1a2_updates,
    plot_entropy_curves,
    plot_game_runs,
    plot_shared_objective,
    shared_policy_explorer,
)
from harl_mini.viz.natural_gradient import (
    bandit_paths,
    plot_bandit_objective,
    plot_npg_bound,
    plot_optimality_gap,
    plot_simplex_paths,
    simplex_explorer,
)
from harl_mini.viz.runs import load_run, plot_runs, provenance_caption, results_table
from harl_mini.viz.trust_region import (
    clip_objective_explorer,
    plot_clip_objective,
    plot_kl_penalty_run,
    plot_ppo_path,
    plot_return_curves,
    plot_surrogate_error,
    plot_trpo_bound,
    plot_trpo_step,
    ppo_path_curves,
    tagged_lines,
    tagged_lines_listing,
    trpo_bound_curves,
    trpo_bound_explorer,
    trpo_step_explorer,
)
from harl_mini.viz.policy_gradient import (
    GAEStatistics,
    gae_expectation,
    gae_lambda_explorer,
    gae_statistics,
    plot_gae_bias_variance,
    plot_gradient_error,
    plot_learning_curve,
)

style.use()  # the book's figure style for every figure drawn after `import harl_mini.viz`

__all__ = [
    "check", "style",
    "plot_gridworld", "plot_value_iteration_error", "gridworld_explorer",
    "plot_gradient_error", "plot_learning_curve", "gae_expectation", "GAEStatistics", "gae_statistics",
    "plot_gae_bias_variance", "gae_lambda_explorer",
    "bandit_paths", "plot_simplex_paths", "plot_bandit_objective", "simplex_explorer", "plot_optimality_gap",
    "plot_npg_bound",
    "plot_clip_objective", "clip_objective_explorer", "trpo_bound_curves", "plot_trpo_bound", "plot_trpo_step",
    "trpo_step_explorer", "ppo_path_curves", "plot_ppo_path", "trpo_bound_explorer", "plot_surrogate_error",
    "plot_return_curves", "plot_kl_penalty_run", "tagged_lines", "tagged_lines_listing",
    "load_run", "plot_runs", "provenance_caption", "results_table",
    "plot_shared_objective", "shared_policy_explorer", "a1a2_update_paths", "plot_a1a2_updates",
    "a1a2_update_explorer", "plot_entropy_curves", "plot_game_runs",
    "sequential_substeps", "plot_sequential_update", "sequential_update_explorer", "plot_j_trajectories",
    "plot_nash_gaps", "plot_bound_slack", "m_factor_distribution", "plot_m_distribution", "game_results",
    "game_results_table", "load_bench",
]
