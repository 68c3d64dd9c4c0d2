"""Plotting helpers used by the book: one module per topic, each a set of pure functions
that draw on a matplotlib Axes, plus thin ipywidgets wrappers that call the same functions.

======================  ==========================================================
``viz.gridworld``       value heat maps with greedy arrows, value-iteration error
======================  ==========================================================
"""

from harl_mini.viz.gridworld import gridworld_explorer, plot_gridworld, plot_value_iteration_error

__all__ = ["plot_gridworld", "plot_value_iteration_error", "gridworld_explorer"]
