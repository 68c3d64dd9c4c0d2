"""Plotting helpers used by the book: one module per topic, each a set of pure functions
that draw on a matplotlib Axes, plus thin ipywidgets wrappers that call the same functions.

===========================  =====================================================
``viz.gridworld``            value heat maps with greedy arrows, value-iteration error (Ch. 1)
``viz.policy_gradient``      sampled-gradient error, learning curves, GAE bias/variance (Ch. 2)
``viz.natural_gradient``     NPG vs PG on the simplex, optimality gap vs bound (Ch. 3)
===========================  =====================================================
"""

from harl_mini.viz.gridworld import gridworld_explorer, plot_gridworld, plot_value_iteration_error
from harl_mini.viz.natural_gradient import (
    bandit_paths,
    plot_bandit_objective,
    plot_npg_bound,
    plot_optimality_gap,
    plot_simplex_paths,
    simplex_explorer,
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

__all__ = [
    "plot_gridworld", "plot_value_iteration_error", "gridworld_explorer",
    "plot_gradient_error", "plot_learning_curve", "gae_expectation", "GAEStatistics", "gae_statistics",
    "plot_gae_bias_variance", "gae_lambda_explorer",
    "bandit_paths", "plot_simplex_paths", "plot_bandit_objective", "simplex_explorer", "plot_optimality_gap",
    "plot_npg_bound",
]
