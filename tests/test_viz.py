"""Tests of harl_mini.viz: the figures draw, count their arrows and reject bad input; the book's
figure style (column width, font floor, metadata); explorers (live widget and static HTML agree,
every control changes the picture); ``check``."""

import json

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
# Explorers: the first image, and the static HTML view
# ---------------------------------------------------------------------------------------
# During `jupyter-book build` nbclient sometimes misses a cell's execute reply when a widget's
# first image is larger than about 50-64 kB: it waits the whole cell timeout (300 s) and goes on
# without an error (Chapters 2, 5 and 8 did). Each explorer is built here as its chapter builds
# it; a budget of 40 kB leaves a margin.

WIDGET_IMAGE_BUDGET = 40_000  # bytes of PNG
#: Bytes of one explorer's static HTML (all frames, base64): it is part of its chapter's page.
STATIC_HTML_BUDGET = 450_000


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
    "trpo_step_explorer": _trpo_step_explorer,  # Ch. 4 (in practice)
    "trpo_bound_explorer": lambda: viz.trpo_bound_explorer(5, 3, seed=3, gamma=0.5),  # Ch. 4 (theory)
    "clip_objective_explorer": lambda: viz.clip_objective_explorer(0.2),  # Ch. 5
    "shared_policy_explorer": lambda: viz.shared_policy_explorer(n=4, p=0.3),  # Ch. 6
    "a1a2_update_explorer": lambda: viz.a1a2_update_explorer(kl_radius=1.0, mu0=(-0.25, 0.25)),  # Ch. 7
    "sequential_update_explorer": lambda: viz.sequential_update_explorer("zhong-example1", eta_soft=0.05),  # Ch. 8
}


def test_every_explorer_is_tested():
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


def _pixels(png: bytes) -> bytes:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return im.convert("RGB").tobytes() + repr(im.size).encode()


def _static_view(html: str) -> dict:
    """The grid the static HTML carries, and the start index its controls show."""
    import base64
    import json
    import re

    payload = re.search(r'<script type="application/json" class="harl-explorer-data">(.*?)</script>', html, re.S)
    assert payload, "static HTML without its frame data"
    data = json.loads(payload.group(1).replace("<\\/", "</"))
    fields = re.findall(r'<(input|select)\b[^>]*data-axis="(\d+)"[^>]*>', html)
    assert [int(a) for _, a in fields] == list(range(len(data["shape"]))), "controls out of axis order"
    data["frames"] = [base64.b64decode(f) for f in data["frames"]]
    return data


@pytest.mark.parametrize("name", sorted(EXPLORERS))
def test_static_view_has_every_frame_and_each_control_changes_it(name, monkeypatch, capsys):
    """The HTML view: one frame per grid point, row-major, each drawn with the values of its point
    (read back from the PNG), legible, within the page budget; moving any control one step from
    the start changes the picture."""
    import itertools
    import math
    import time

    import IPython.display

    from harl_mini.viz import style

    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: None)
    w = EXPLORERS[name]()
    t0 = time.process_time()
    bundle = w._repr_mimebundle_()
    seconds = time.process_time() - t0
    assert "application/vnd.jupyter.widget-view+json" in bundle  # the live view is still there
    html = bundle["text/html"]
    data = _static_view(html)
    controls = w._controls
    assert data["shape"] == [len(c) for c in controls]
    assert len(data["frames"]) == math.prod(data["shape"])
    for k, key in enumerate(itertools.product(*(range(len(c)) for c in controls))):
        info = style.png_text(data["frames"][k])
        params = json.loads(info[style.PARAMS_KEY])
        for c, i in zip(controls, key):
            label, value = params[c.name]
            assert label == c.labels[i] == data["labels"][controls.index(c)][i], (name, k, c.name)
            assert c.position(tuple(value) if isinstance(value, list) else value) == i
        assert float(info[style.FONT_KEY]) >= style.MIN_FONT_PT
    start = [c.index for c in controls]
    start_k = 0
    for c, i in zip(controls, start):
        start_k = start_k * len(c) + i
    assert f'src="data:image/png;base64,' in html
    for axis, c in enumerate(controls):
        if len(c) == 1:
            continue
        moved = list(start)
        moved[axis] = start[axis] + 1 if start[axis] + 1 < len(c) else start[axis] - 1
        k = 0
        for cc, i in zip(controls, moved):
            k = k * len(cc) + i
        assert _pixels(data["frames"][k]) != _pixels(data["frames"][start_k]), f"{name}: {c.name} changes nothing"
    assert len(html) <= STATIC_HTML_BUDGET, f"{name}: static view is {len(html) / 1000:.0f} kB"
    with capsys.disabled():
        print(f"\n{name}: {len(data['frames'])} frames, {len(html) / 1000:.0f} kB, precomputed in {seconds:.1f} s CPU")


def test_live_slider_shows_the_frame_of_the_static_view(emitted_images):
    """Moving the live slider shows exactly the PNG the HTML view shows for that value."""
    w = viz.gridworld_explorer("4x3", gamma=0.95, slip=0.2)
    gamma = next(c for c in w.children if getattr(c, "description", "") == "γ")
    gamma.value = 0.99
    assert emitted_images[-1] == w.frame(gamma=0.99, slip=0.2)
    from harl_mini.viz import style

    params = json.loads(style.png_text(emitted_images[-1])[style.PARAMS_KEY])
    assert params == {"gamma": ["0.99", 0.99], "slip": ["0.2", 0.2]}
    import traitlets

    with pytest.raises(traitlets.TraitError):
        gamma.value = 0.97  # not on the grid: the live slider cannot show a frame the book lacks


# ---------------------------------------------------------------------------------------
# The explorer machinery on a toy picture
# ---------------------------------------------------------------------------------------


def _toy_draw(a, b):
    from harl_mini.viz import style

    fig, ax = style.figure(1, height=2.2)
    ax.plot([0, 1], [0, a])
    ax.set_title(f"a = {a:g}, {b}")
    return fig


def test_slider_adds_the_start_value_in_order_and_labels_must_differ():
    from harl_mini.viz.explorer import Menu, Slider

    s = Slider("a", "a", (0.1, 0.5, 1.0), 0.3)
    assert s.values == (0.1, 0.3, 0.5, 1.0) and s.index == 1 and s.labels == ("0.1", "0.3", "0.5", "1")
    assert Slider("a", "a", (3, 2, 1), 2.5).values == (3, 2.5, 2, 1)  # a decreasing grid stays decreasing
    with pytest.raises(HarlMiniError, match="same label"):
        Slider("a", "a", (0.101, 0.102), 0.101, fmt="{:.1f}")
    with pytest.raises(HarlMiniError, match="finite numbers"):
        Slider("a", "a", (0.1, float("nan")), 0.1)
    m = Menu("b", "b", {"x": (0, 1), "y": (1, 0)}, value=(1, 0))
    assert m.index == 1 and m.labels == ("x", "y")
    with pytest.raises(HarlMiniError, match="not one of"):
        m.position((2, 2))


def test_explore_checks_its_arguments():
    from harl_mini.viz.explorer import Slider, explore

    with pytest.raises(HarlMiniError, match="draw"):
        explore(None, Slider("a", "a", (1, 2), 1))
    with pytest.raises(HarlMiniError, match="same name"):
        explore(_toy_draw, Slider("a", "a", (1, 2), 1), Slider("a", "b", (1, 2), 1))
    with pytest.raises(HarlMiniError, match="MAX_FRAMES"):
        explore(_toy_draw, Slider("a", "a", range(20), 1), Slider("b", "b", range(20), 1))


def test_static_html_is_row_major_and_self_contained(monkeypatch):
    import IPython.display

    from harl_mini.viz.explorer import Menu, Slider, explore

    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: None)
    w = explore(_toy_draw, Slider("a", "a", (1.0, 2.0, 3.0), 2.0), Menu("b", "b", ["x", "y"], "y"), alt="toy")
    html = w.static_html()
    data = _static_view(html)
    assert data["shape"] == [3, 2] and data["labels"] == [["1", "2", "3"], ["x", "y"]]
    assert w.frames()[1 * 2 + 0] == w.frame(a=2.0, b="x")  # row-major: index = i_a * 2 + i_b
    assert 'value="1"' in html and "<option value=\"1\" selected>y</option>" in html
    assert "http" not in html.replace("data:image/png", "")  # nothing fetched from anywhere
    assert "<script>" in html and "document.currentScript" in html
    assert len(set(data["frames"])) == 6


# ---------------------------------------------------------------------------------------
# The figure style
# ---------------------------------------------------------------------------------------


def test_import_applies_the_style():
    from harl_mini.viz import style

    assert plt.rcParams["figure.figsize"][0] == pytest.approx(style.COLUMN_IN)
    assert plt.rcParams["xtick.labelsize"] >= style.MIN_FONT_PT
    assert style.COLUMN_IN * style.CSS_DPI == style.COLUMN_PX


def test_figure_is_column_wide_and_refuses_too_many_panels():
    from harl_mini.viz import style

    fig, axes = style.figure(2, 2)
    assert fig.get_size_inches()[0] == pytest.approx(style.COLUMN_IN) and axes.shape == (2, 2)
    with pytest.raises(HarlMiniError, match="ncols"):
        style.figure(style.MAX_NCOLS + 1)


def test_png_fits_a_wide_figure_to_the_column_and_raises_small_text():
    import io

    from PIL import Image

    from harl_mini.viz import style

    fig, axes = plt.subplots(2, 4, figsize=(15, 7))
    for ax in axes.flat:
        ax.plot([0, 1], [1, 0], label="line")
        ax.legend(fontsize=5)
    axes[0, 0].annotate("J*", (0.5, 0.5), fontsize=4)
    fig.tight_layout()
    png = style.png_bytes(fig, dpi=style.CSS_DPI * style.RETINA)
    info = style.png_text(png)
    assert float(info[style.FONT_KEY]) == style.MIN_FONT_PT  # 4 and 5 pt were raised to 7
    assert float(info[style.DPI_KEY]) == style.CSS_DPI * style.RETINA
    with Image.open(io.BytesIO(png)) as im:
        shown = im.size[0] / style.RETINA  # CSS px at the natural size
    assert shown <= style.COLUMN_PX * 1.02  # (tight bbox: the labels may stick out a few px)
    # rendered size of the smallest text, as the browser test computes it
    assert float(info[style.FONT_KEY]) * float(info[style.DPI_KEY]) / 72 / style.RETINA >= 9.0


def test_fitting_keeps_two_panel_text_and_shrinks_wider_grids():
    from harl_mini.viz import style

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].set_title("t", fontsize=10)
    fig.tight_layout()  # leaves a placeholder layout engine: prepare must still lay it out again
    before = axes[1].get_position().x0
    style.prepare(fig)
    assert fig.get_size_inches()[0] == pytest.approx(style.COLUMN_IN)
    assert axes[0].title.get_fontsize() == 10  # two panels per row: text keeps its size
    assert axes[1].get_position().x0 > before  # re-laid out: more room for the 10 pt labels
    fig, axes = plt.subplots(2, 4, figsize=(15, 7))
    axes[0, 0].set_title("t", fontsize=11)
    axes[0, 0].set_ylabel("y", fontsize=16)
    style.prepare(fig)
    assert axes[0, 0].title.get_fontsize() == style.MIN_FONT_PT  # 11 pt × 8.17/15 = 6 pt, raised to 7
    assert axes[0, 0].yaxis.label.get_fontsize() == pytest.approx(16 * style.COLUMN_IN / 15)


def test_png_reports_the_font_it_drew():
    from harl_mini.viz import style

    fig, ax = style.figure(1)
    ax.plot([0, 1])
    ax.set_title("big", fontsize=14)
    ax.tick_params(labelsize=8.5)
    assert float(style.png_text(style.png_bytes(fig, dpi=96))[style.FONT_KEY]) == 8.5


def test_ipython_formatter_shows_figures_at_half_their_pixels():
    from harl_mini.viz import style

    fig, ax = style.figure(1)
    ax.plot([0, 1])
    import io

    from PIL import Image

    png, meta = style._figure_png(fig)

    with Image.open(io.BytesIO(png)) as im:
        assert meta == {"width": round(im.size[0] / 2), "height": round(im.size[1] / 2)}
    assert meta["width"] == pytest.approx(style.COLUMN_PX, abs=2)  # constrained layout: the full width
    assert style._figure_png(plt.figure()) is None  # an empty figure shows nothing


# ---------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------


def test_check_prints_one_line_or_raises_with_the_message(capsys):
    import numpy as np

    viz.check(bool(1 < 2), "Lemma 2 holds on 600 random pairs, min slack 2.8e-5")
    viz.check(np.float64(1.0) < 2.0, "numpy bool")
    viz.check(torch.tensor(1.0) < 2.0, "one-element tensor")
    assert capsys.readouterr().out.splitlines() == [
        "✓ Lemma 2 holds on 600 random pairs, min slack 2.8e-5", "✓ numpy bool", "✓ one-element tensor"]
    with pytest.raises(AssertionError, match="^Lemma 2 fails$"):
        viz.check(False, "Lemma 2 fails")
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("bad", [(False, False), torch.tensor([True, False]), 1, "yes", None])
def test_check_refuses_what_is_not_a_bool(bad):
    with pytest.raises(HarlMiniError, match="expected a bool"):
        viz.check(bad, "x")
