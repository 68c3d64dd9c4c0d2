"""Smoke tests of harl_mini.viz: the figures draw, count their arrows and reject bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrow  # noqa: E402

from harl_mini import tabular, viz  # noqa: E402
from harl_mini.errors import HarlMiniError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _arrows(ax):
    return [p for p in ax.patches if isinstance(p, FancyArrow)]


def test_plot_gridworld_draws_one_arrow_per_non_terminal_cell():
    grid = tabular.gridworld("4x3")
    sol = tabular.policy_iteration(grid.mdp)
    ax = viz.plot_gridworld(grid, sol.V, sol.pi, title="V*")
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_title() == "V*"
    non_terminal = [c for c in grid.cells if grid.layout[c[0]][c[1]] not in "+-"]
    assert len(non_terminal) == 9
    assert len(_arrows(ax)) == len(non_terminal)
    # values only: no arrows; the [S - 1] form (end state dropped) is accepted too
    ax2 = viz.plot_gridworld(grid, sol.V[:-1])
    assert _arrows(ax2) == []


def test_plot_gridworld_arrow_points_along_the_argmax_action():
    grid = tabular.gridworld("4x3")
    S, A = grid.mdp.num_states, grid.mdp.num_actions
    pi = torch.zeros(S, A, dtype=torch.float64)
    pi[:, 1] = 1.0  # always E
    ax = viz.plot_gridworld(grid, torch.zeros(S), pi)
    for arrow in _arrows(ax):
        xy = arrow.get_xy()
        assert xy[:, 0].max() - xy[:, 0].min() > xy[:, 1].max() - xy[:, 1].min()  # horizontal


def test_plot_gridworld_rejects_bad_input():
    grid = tabular.gridworld("4x3")
    S = grid.mdp.num_states
    with pytest.raises(HarlMiniError, match="V: expected shape"):
        viz.plot_gridworld(grid, torch.zeros(S + 3))
    with pytest.raises(HarlMiniError, match="pi: expected shape"):
        viz.plot_gridworld(grid, torch.zeros(S), torch.ones(S, 3) / 3)
    with pytest.raises(HarlMiniError, match="grid"):
        viz.plot_gridworld(grid.mdp, torch.zeros(S))


def test_plot_value_iteration_error():
    mdp = tabular.random_mdp(5, 2, gamma=0.8, seed=0)
    vi = tabular.value_iteration(mdp, record=True)
    V_star = tabular.policy_iteration(mdp).V
    ax = viz.plot_value_iteration_error(vi.history, V_star, mdp.gamma)
    assert ax.get_yscale() == "log"
    assert len(ax.get_lines()) == 2  # the errors and the bound
    with pytest.raises(HarlMiniError, match="V_star"):
        viz.plot_value_iteration_error(vi.history, V_star[:-1], mdp.gamma)
    with pytest.raises(HarlMiniError, match="gamma"):
        viz.plot_value_iteration_error(vi.history, V_star, 1.0)


def test_gridworld_explorer_returns_a_widget():
    import ipywidgets

    w = viz.gridworld_explorer("4x3")
    assert isinstance(w, ipywidgets.Widget)
    names = {c.description for c in w.children if hasattr(c, "description")}
    assert {"γ", "slip"} <= names
    with pytest.raises(HarlMiniError, match="slip"):
        viz.gridworld_explorer(slip=1.5)
