"""Plotting helpers used by the book: static figures and the widgets built on them.

Every widget is a thin ``ipywidgets`` wrapper around a pure plotting function, so the
static figure printed in the HTML book and the live widget draw exactly the same picture
(education notes §4.7). ``ipywidgets`` is imported only inside the widget functions.

Contents:

* :func:`plot_gridworld` — values of a :class:`~harl_mini.tabular.generators.Gridworld`
  as a heat map, with the greedy action of a policy drawn as an arrow in each cell;
* :func:`plot_value_iteration_error` — ‖V_k − V*‖∞ against k on a log scale, with the
  contraction bound γ^k ‖V_0 − V*‖∞;
* :func:`gridworld_explorer` — sliders for γ and the slip probability that re-solve a
  gridworld and redraw it with :func:`plot_gridworld`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from harl_mini.errors import HarlMiniError, as_float64
from harl_mini.viz._common import new_axes as _new_axes

__all__ = ["plot_gridworld", "plot_value_iteration_error", "gridworld_explorer"]

# Arrow direction (dx, dy) in data coordinates of imshow (y grows downwards).
_ARROW_DIRS = {"N": (0.0, -1.0), "E": (1.0, 0.0), "S": (0.0, 1.0), "W": (-1.0, 0.0)}




def _as_array(x, name: str) -> torch.Tensor:
    return as_float64(x.detach() if isinstance(x, torch.Tensor) else x, name)


def plot_gridworld(grid, V, pi=None, ax=None, title=None):
    """Draw a gridworld's state values as a heat map, with greedy-action arrows.

    Walls are grey and hatched, goal (+) and pit (−) cells get a thick green or red
    border, the start cell is marked "S", and each non-wall cell shows its value. If a
    policy is given, each non-terminal cell shows an arrow for argmax_a π(a | s)
    (ties go to the first action); terminal cells show no arrow.

    Args:
        grid: a :class:`~harl_mini.tabular.generators.Gridworld` (from ``tabular.gridworld``).
        V: per-state values, shape [S] (the absorbing end state included) or [S − 1].
        pi: optional policy table π[s, a], shape [S, A] or [S − 1, A].
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        title: optional Axes title.

    Returns:
        The matplotlib Axes.
    """
    import matplotlib
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    for attr in ("layout", "cells", "actions", "to_grid"):
        if not hasattr(grid, attr):
            raise HarlMiniError(f"grid: expected a Gridworld (from harl_mini.tabular.gridworld), "
                                f"got {type(grid).__name__}")
    n = len(grid.cells)
    v = _as_array(V, "V")
    if v.dim() != 1 or v.shape[0] not in (n, n + 1):
        raise HarlMiniError(f"V: expected shape [{n + 1}] or [{n}] (one value per state), got {list(v.shape)}")
    best = None
    if pi is not None:
        p = _as_array(pi, "pi")
        A = len(grid.actions)
        if p.dim() != 2 or p.shape[0] not in (n, n + 1) or p.shape[1] != A:
            raise HarlMiniError(f"pi: expected shape [{n + 1}, {A}] or [{n}, {A}], got {list(p.shape)}")
        best = p.argmax(-1).tolist()

    values = grid.to_grid(v)
    H, W = values.shape
    ax = _new_axes(ax, (1.25 * W + 1.2, 1.25 * H + 0.4))
    scale = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    scale = scale if scale > 0 else 1.0
    norm = Normalize(vmin=-scale, vmax=scale)
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="0.55")
    ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, origin="upper")
    # Font sizes follow the size of a cell, so small multiples stay legible.
    pos, fig = ax.get_position(), ax.figure
    cell_in = min(pos.width * fig.get_figwidth() / W, pos.height * fig.get_figheight() / H)
    fs = float(np.clip(9.0 * cell_in, 8.0, 10.0))

    for r in range(H):
        for c in range(W):
            if grid.layout[r][c] == "#":
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor="0.55", edgecolor="0.3",
                                       hatch="///", linewidth=0.0))
    start = getattr(grid, "start", None)
    for i, (r, c) in enumerate(grid.cells):
        kind = grid.layout[r][c]
        val = float(v[i])
        shade = abs(norm(val) - 0.5) > 0.35
        color = "white" if shade else "black"
        terminal = kind in "+-"
        if terminal:
            edge = "darkgreen" if kind == "+" else "darkred"
            ax.add_patch(Rectangle((c - 0.46, r - 0.46), 0.92, 0.92, fill=False, edgecolor=edge, linewidth=3.0))
            ax.text(c, r, f"{val:+.2f}", ha="center", va="center", fontsize=fs + 1, fontweight="bold",
                    color=color)
            ax.text(c + 0.40, r - 0.38, "goal" if kind == "+" else "pit", ha="right", va="top",
                    fontsize=0.75 * fs, color=color)
            continue
        y_text = r - 0.22 if best is not None else r
        ax.text(c, y_text, f"{val:.2f}", ha="center", va="center", fontsize=fs, color=color)
        if i == start:
            ax.text(c - 0.42, r - 0.38, "S", ha="left", va="top", fontsize=0.75 * fs, fontweight="bold",
                    color=color)
        if best is not None:
            dx, dy = _ARROW_DIRS.get(grid.actions[best[i]], (0.0, 0.0))
            length = 0.34
            ax.arrow(c - 0.5 * length * dx, r + 0.15 - 0.5 * length * dy, length * dx, length * dy,
                     width=0.025, head_width=0.13, head_length=0.1, length_includes_head=True,
                     color=color)

    ax.set_xticks(np.arange(-0.5, W, 1.0), minor=True)
    ax.set_yticks(np.arange(-0.5, H, 1.0), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="both", length=0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_value_iteration_error(history, V_star, gamma, ax=None):
    """Plot ‖V_k − V*‖∞ against k on a log scale, with the bound γ^k ‖V_0 − V*‖∞.

    Args:
        history: iterates V_0, …, V_K, shape [K + 1, S] (``value_iteration(..., record=True).history``).
        V_star: the optimal values V*, shape [S].
        gamma: the discount factor γ, 0 <= γ < 1.
        ax: matplotlib Axes to draw on; a new figure is created when omitted.

    Returns:
        The matplotlib Axes.
    """
    hist = _as_array(history, "history")
    if hist.dim() != 2 or hist.shape[0] < 1:
        raise HarlMiniError(f"history: expected shape [K + 1, S], got {list(hist.shape)}")
    v_star = _as_array(V_star, "V_star")
    if v_star.dim() != 1 or v_star.shape[0] != hist.shape[1]:
        raise HarlMiniError(f"V_star: expected shape [{hist.shape[1]}], got {list(v_star.shape)}")
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0.0 <= float(gamma) < 1.0:
        raise HarlMiniError(f"gamma: must satisfy 0 <= gamma < 1, got {gamma!r}")
    errors = (hist - v_star).abs().max(-1).values.numpy()
    k = np.arange(len(errors))
    bound = errors[0] * float(gamma) ** k
    floor = np.finfo(np.float64).tiny
    ax = _new_axes(ax, (6.0, 3.6))
    ax.semilogy(k, np.maximum(bound, floor), "--", color="0.4",
                label=r"bound $\gamma^k\,\|V_0 - V^*\|_\infty$")
    ax.semilogy(k, np.maximum(errors, floor), "o-", markersize=2.5, color="C0",
                label=r"$\|V_k - V^*\|_\infty$")
    positive = errors[errors > 0]
    if positive.size:
        ax.set_ylim(max(positive.min() / 10, 1e-17), max(errors[0], bound[0]) * 3)
    ax.set_xlabel("iteration $k$")
    ax.set_ylabel("sup-norm error")
    ax.set_title(f"Value iteration, $\\gamma = {float(gamma):g}$")
    ax.legend()
    ax.grid(True, which="major", alpha=0.3)
    return ax


def _check_unit(x, name: str, upper_open: bool) -> float:
    ok = isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))
    if not ok or not (0.0 <= float(x) < 1.0 if upper_open else 0.0 <= float(x) <= 1.0):
        bound = "0 <= {0} < 1" if upper_open else "0 <= {0} <= 1"
        raise HarlMiniError(f"{name}: must satisfy {bound.format(name)}, got {x!r}")
    return float(x)


def _solve_and_plot(layout, gamma: float, slip: float, ax=None):
    """Solve the gridworld exactly (policy iteration) and draw V* with the optimal policy."""
    from harl_mini import tabular

    grid = tabular.gridworld(layout, slip=slip, gamma=gamma)
    result = tabular.policy_iteration(grid.mdp)
    return plot_gridworld(grid, result.V, result.pi, ax=ax,
                          title=f"$V^*$ and $\\pi^*$ (γ = {gamma:g}, slip = {slip:g})")


def gridworld_explorer(layout="4x3", gamma: float = 0.95, slip: float = 0.2):
    """An interactive gridworld: sliders for γ and slip re-solve it and redraw V* and π*.

    The drawing is :func:`plot_gridworld`, the same function the book's static figures
    use. The sliders step through a fixed grid (γ in {0.5, 0.8, 0.9, 0.95, 0.99}, slip in
    {0, 0.1, 0.2, 0.5, 0.8}, plus the start values); every point is solved and drawn
    when the cell runs, so the HTML book switches between the same pictures without a
    kernel (:mod:`harl_mini.viz.explorer`).

    Args:
        layout: a gridworld layout name (see ``harl_mini.tabular.GRIDWORLDS``) or row strings.
        gamma: initial discount factor, 0 <= γ < 1.
        slip: initial slip probability, 0 <= slip <= 1.

    Returns:
        An :class:`~harl_mini.viz.explorer.Explorer` (display it, or make it a cell's last line).
    """
    import matplotlib.pyplot as plt

    from harl_mini import tabular
    from harl_mini.viz.explorer import Slider, explore

    gamma = _check_unit(gamma, "gamma", upper_open=True)
    slip = _check_unit(slip, "slip", upper_open=False)
    grid = tabular.gridworld(layout)  # validates the layout now, not on the first slider move
    rows, cols = len(grid.layout), len(grid.layout[0])

    def draw(gamma, slip):
        fig, ax = plt.subplots(figsize=(1.25 * cols + 1.2, 1.25 * rows + 0.4), layout="constrained")
        _solve_and_plot(layout, gamma, slip, ax=ax)
        return fig

    return explore(draw, Slider("gamma", "γ", (0.5, 0.8, 0.9, 0.95, 0.99), gamma),
                   Slider("slip", "slip", (0.0, 0.1, 0.2, 0.5, 0.8), slip),
                   alt="Optimal values V* as a heat map with the optimal action as an arrow in each cell")
