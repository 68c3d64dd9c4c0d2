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


# ---------------------------------------------------------------------------------------
# The first image each explorer shows: small enough for the book build
# ---------------------------------------------------------------------------------------
# During `jupyter-book build` nbclient sometimes misses a cell's execute reply when the
# widget's first image is larger than about 50-64 kB: it waits the whole cell timeout (300 s)
# and goes on without an error (Chapters 2, 5 and 8 did). Each explorer is built here as its
# chapter builds it; a budget of 40 kB leaves a margin.

WIDGET_IMAGE_BUDGET = 40_000  # bytes of PNG


def _gae_explorer():
    f64 = torch.float64
    m = tabular.random_mdp(6, 3, gamma=0.95, seed=1, branching=2)
    pi = tabular.random_policy(m, seed=2)
    V = tabular.value(m, pi) + 0.3 * torch.randn(6, generator=torch.Generator().manual_seed(0), dtype=f64)
    return viz.gae_lambda_explorer(m, pi, V, lam=0.9)


def _trpo_step_explorer():
    m = tabular.random_mdp(5, 3, gamma=0.9, seed=1)
    theta = 2.0 * torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return viz.trpo_step_explorer(m, theta, delta=0.2)


# explorer -> how its chapter builds it
EXPLORERS = {
    "gridworld_explorer": lambda: viz.gridworld_explorer("4x3"),  # Ch. 1
    "gae_lambda_explorer": _gae_explorer,  # Ch. 2
    "simplex_explorer": lambda: viz.simplex_explorer((1.0, 0.7, 0.0), eta=0.5, steps=30),  # Ch. 3
    "trpo_step_explorer": _trpo_step_explorer,  # Ch. 4
    "clip_objective_explorer": lambda: viz.clip_objective_explorer(0.2),  # Ch. 5
    "shared_policy_explorer": lambda: viz.shared_policy_explorer(n=4, p=0.3),  # Ch. 6
    "a1a2_update_explorer": lambda: viz.a1a2_update_explorer(kl_radius=1.0, mu0=(-0.25, 0.25)),  # Ch. 7
    "sequential_update_explorer": lambda: viz.sequential_update_explorer("zhong-example1", eta_soft=0.05),  # Ch. 8
}


def test_every_explorer_has_an_image_size_check():
    assert sorted(n for n in viz.__all__ if n.endswith("_explorer")) == sorted(EXPLORERS)


@pytest.fixture
def emitted_images(monkeypatch):
    """PNGs the widget would show: whatever goes to IPython's display, and every figure
    ``plt.show()`` would hand to the inline backend (rendered as its PNG formatter does)."""
    import IPython.display
    from IPython.core.pylabtools import print_figure

    images = []

    def display(*objs, **kwargs):
        for obj in objs:
            data = getattr(obj, "data", None)
            assert isinstance(data, bytes), f"displayed {type(obj).__name__}, not an image"
            images.append(data)

    def show(*args, **kwargs):
        for num in plt.get_fignums():
            images.append(print_figure(plt.figure(num), "png", bbox_inches="tight"))
            plt.close(num)

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(plt, "show", show)
    return images


@pytest.mark.parametrize("name", sorted(EXPLORERS))
def test_explorer_first_image_is_small(name, emitted_images):
    import ipywidgets

    w = EXPLORERS[name]()  # interactive() draws the initial state once, on construction
    assert isinstance(w, ipywidgets.interactive)
    assert len(emitted_images) == 1, f"{name}: expected one image, got {len(emitted_images)}"
    png = emitted_images[0]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) <= WIDGET_IMAGE_BUDGET, f"{name}: first image is {len(png) / 1000:.1f} kB"
    # closed after showing: the inline backend adds no second, full-size copy at the cell's end
    assert plt.get_fignums() == []


def test_widget_png_is_a_palette_image_at_widget_dpi():
    import io

    from PIL import Image

    from harl_mini.viz._common import WIDGET_DPI, widget_png

    dpi0 = plt.rcParams["figure.dpi"]
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    with Image.open(io.BytesIO(widget_png(fig))) as im:
        assert im.mode == "P"
        assert im.size[0] <= 4 * WIDGET_DPI and im.size[1] <= 3 * WIDGET_DPI
    assert plt.rcParams["figure.dpi"] == dpi0  # static figures keep their resolution
