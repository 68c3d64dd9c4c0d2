"""Pictures of cooperative multi-agent RL (Chapters 6 and 7): static figures and widgets.

Each picture is a pure function that computes what it draws exactly, with the tabular
oracle (:mod:`harl_mini.tabular.sharing`, :mod:`harl_mini.tabular.updates`), and draws it on
a matplotlib Axes. Each widget is a thin ``ipywidgets`` wrapper around the same function,
so the static figure of the HTML book and the live widget show the same thing (education
notes §4.7). ``ipywidgets`` is imported only inside the widget functions.

Contents:

* :func:`plot_shared_objective` — J_share(p) of a shared policy (p, 1 − p) on a game whose
  agents have two actions each (the Proposition-1 game), with J* and J*_share;
  :func:`shared_policy_explorer` adds sliders for p and the number of agents;
* :func:`a1a2_update_paths` / :func:`plot_a1a2_updates` — the simultaneous and the two
  sequential trust-region updates of the a¹a² game on the contours of J(μ¹, μ²) = μ¹μ²;
  :func:`a1a2_update_explorer` adds sliders for the KL radius δ and the start;
* :func:`plot_entropy_curves` — entropies of learned policies against iterations, with
  reference levels such as log n! (an autoregressive policy that covers every optimum);
* :func:`plot_game_runs` — recorded multi-agent training runs (team return against
  iterations or steps, through :func:`harl_mini.viz.runs.plot_runs`), with the exact J* and
  J*_share as dashed lines; :func:`legend_line` makes the handles of a figure-wide legend;
* :func:`fisher_exact` — the two-sided Fisher exact test of two success counts (how often two
  methods solved a game over their seeds), which the chapter uses to say what five seeds can
  and cannot tell apart.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np
import torch

from harl_mini.errors import HarlMiniError, as_float64
from harl_mini.viz._common import game as _game, new_axes as _new_axes, real as _real

__all__ = [
    "plot_shared_objective",
    "shared_policy_explorer",
    "a1a2_update_paths",
    "plot_a1a2_updates",
    "a1a2_update_explorer",
    "plot_entropy_curves",
    "plot_game_runs",
    "legend_line",
    "fisher_exact",
]

DTYPE = torch.float64


# ---------------------------------------------------------------------------------------
# Parameter sharing: J_share(p) on a two-action game
# ---------------------------------------------------------------------------------------


def plot_shared_objective(game="prop1-4", p=None, ax=None, points: int = 201, title=None):
    """Draw J_share(p) = J((p, 1−p), …, (p, 1−p)) over p ∈ [0, 1], with J* and J*_share.

    The game's agents must all have two actions (as in the Proposition-1 game); p is the
    shared probability of action 0. The curve is the exact
    :func:`~harl_mini.tabular.shared_objective`; J* is
    :func:`~harl_mini.tabular.game_optimal_value` and J*_share comes from
    :func:`~harl_mini.tabular.best_shared_policy`.

    Args:
        game: a MarkovGame whose agents have two actions each, or a game name
            (``"prop1-4"``, ``"xor"``).
        p: optional shared probability of action 0 to mark on the curve, 0 <= p <= 1.
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        points: number of grid points in [0, 1].
        title: optional Axes title (default: the game's name).

    Returns:
        The matplotlib Axes.
    """
    from harl_mini import tabular

    game = _game(game)
    counts = game.action_counts
    if any(n != 2 for n in counts):
        raise HarlMiniError(f"game: expected two actions per agent (a shared policy (p, 1 − p)), "
                            f"got action_counts={counts}")
    if p is not None:
        p = _real(p, "p", 0.0, 1.0)
    if isinstance(points, bool) or not isinstance(points, numbers.Integral) or points < 2:
        raise HarlMiniError(f"points: expected an integer >= 2, got {points!r}")
    ps = np.linspace(0.0, 1.0, int(points))
    J = np.array([float(tabular.shared_objective(game, torch.tensor([q, 1.0 - q], dtype=DTYPE))) for q in ps])
    J_star = float(tabular.game_optimal_value(game))
    best = tabular.best_shared_policy(game)
    p_best = float(best.policy[0, 0])
    ax = _new_axes(ax, (5.6, 3.8))
    ax.plot(ps, J, color="tab:blue", lw=1.8, label=r"$J_{share}(p)$")
    ax.axhline(J_star, color="0.3", ls="--", lw=1, label=f"$J^*$ = {J_star:g}")
    ax.axhline(best.value, color="tab:red", ls="--", lw=1, label=f"$J^*_{{share}}$ = {best.value:.4g}")
    ax.plot([p_best], [best.value], "o", color="tab:red", ms=5)
    if p is not None:
        Jp = float(tabular.shared_objective(game, torch.tensor([p, 1.0 - p], dtype=DTYPE)))
        ax.plot([p], [Jp], "s", color="black", ms=6, label=f"p = {p:.2f}: J = {Jp:.4g}")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-0.04 * J_star, 1.5 * J_star)  # room above J* for the legend
    ax.set_xlabel("shared probability of action 0, $p$")
    ax.set_ylabel("team objective $J$")
    ax.set_title(title if title is not None else f"{game.name or 'game'}: one policy shared by "
                 f"{game.num_agents} agents")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    return ax


def shared_policy_explorer(n: int = 4, p: float = 0.3):
    """Sliders for p and the number of agents n that redraw :func:`plot_shared_objective`.

    The game is the Proposition-1 game with n agents (``prop1_game(n)``, n even). The sliders
    step through p in {0.1, 0.3, ..., 0.9} and n in {2, 4, 6} (the start values are added); every
    frame is drawn when the cell runs (each redraw finds J*_share again, about 0.2 s), so the HTML book shows the same pictures without a
    kernel (:mod:`harl_mini.viz.explorer`).

    Args:
        n: initial number of agents, even, 2 <= n <= 12.
        p: initial shared probability of action 0, 0 <= p <= 1.

    Returns:
        An :class:`~harl_mini.viz.explorer.Explorer`.
    """
    from harl_mini import tabular
    from harl_mini.viz.explorer import Slider, explore
    from harl_mini.viz.style import figure

    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n % 2 or not 2 <= n <= 12:
        raise HarlMiniError(f"n: expected an even number of agents between 2 and 12, got {n!r}")
    p = _real(p, "p", 0.0, 1.0)
    games = {}

    def draw(p, n):
        games.setdefault(n, tabular.prop1_game(n))
        fig, ax = figure(1, height=3.0)
        plot_shared_objective(games[n], p=p, ax=ax, points=101)
        return fig

    return explore(draw, Slider("p", "p", (0.1, 0.3, 0.5, 0.7, 0.9), p, fmt="{:.2f}"),
                   Slider("n", "agents n", (2, 4, 6), int(n)),
                   alt="The team's value J_share(p) of a shared policy against p, with J* and the best shared value")


# ---------------------------------------------------------------------------------------
# The a¹a² game: simultaneous against sequential trust-region updates
# ---------------------------------------------------------------------------------------


def _mu0(mu0) -> torch.Tensor:
    t = as_float64(mu0, "mu0")
    if t.shape != (2,):
        raise HarlMiniError(f"mu0: expected the two means (μ¹, μ²), got shape {list(t.shape)}")
    return t


def a1a2_update_paths(mu0=(-0.25, 0.25), kl_radius: float = 0.5) -> dict[str, np.ndarray]:
    """The points visited by the simultaneous and the two sequential updates of the a¹a² game.

    Uses :func:`~harl_mini.tabular.a1a2_simultaneous_update` and
    :func:`~harl_mini.tabular.a1a2_sequential_update` (Chapter 7, eqs.
    ``eq-a1a2-simultaneous`` and ``eq-a1a2-sequential``). A sequential path has a corner:
    after agent i_1 has moved, before agent i_2 moves.

    Args:
        mu0: the starting means (μ¹, μ²).
        kl_radius: δ, each agent's KL budget, δ >= 0.

    Returns:
        A dict of [k, 2] arrays of points, start first: ``"simultaneous"`` (2 points),
        ``"sequential (1, 2)"`` and ``"sequential (2, 1)"`` (3 points each, agents numbered
        from 1 as in the book), and ``"J"``: a dict with the objective at each end point.
    """
    from harl_mini import tabular

    mu = _mu0(mu0)
    delta = _real(kl_radius, "kl_radius", 0.0)
    sim = tabular.a1a2_simultaneous_update(mu, delta)
    out: dict = {"simultaneous": torch.stack([mu, sim]).numpy()}
    J = {"start": float(tabular.a1a2_objective(mu)), "simultaneous": float(tabular.a1a2_objective(sim))}
    for order in ((0, 1), (1, 0)):
        end = tabular.a1a2_sequential_update(mu, order, delta)
        corner = mu.clone()
        corner[order[0]] = end[order[0]]
        key = f"sequential ({order[0] + 1}, {order[1] + 1})"
        out[key] = torch.stack([mu, corner, end]).numpy()
        J[key] = float(tabular.a1a2_objective(end))
    out["J"] = J
    return out


def plot_a1a2_updates(mu0=(-0.25, 0.25), kl_radius: float = 0.5, ax=None, lim: float | None = None,
                      title=None, colorbar: bool = True):
    """Draw the update paths of :func:`a1a2_update_paths` on the contours of J(μ¹, μ²) = μ¹μ².

    The shaded square is the product trust region {|μ^i − μ^i_0| ≤ √(2δ)}: each agent's
    own KL ball (μ' − μ)²/2 ≤ δ. Red: the simultaneous update; blue and green: the
    sequential updates in the two orders, each with its corner.

    Args:
        mu0: the starting means (μ¹, μ²).
        kl_radius: δ, each agent's KL budget, δ >= 0.
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        lim: half-width of the plotted square around the origin (default: fits the paths).
        title: optional Axes title.
        colorbar: draw a colour bar for J beside the Axes (leave it out in side-by-side panels,
            where the zero contour and the colours already show the sign of J).

    Returns:
        The matplotlib Axes.
    """
    from matplotlib.patches import Rectangle

    paths = a1a2_update_paths(mu0, kl_radius)
    mu = paths["simultaneous"][0]
    step = math.sqrt(2.0 * float(kl_radius))
    pts = np.concatenate([v for k, v in paths.items() if k != "J"])
    if lim is None:
        lim = max(1.0, 1.15 * float(np.abs(pts).max()) + 0.1)
    lim = _real(lim, "lim", 1e-9)
    ax = _new_axes(ax, (5.6, 5.0))
    grid = np.linspace(-lim, lim, 241)
    X, Y = np.meshgrid(grid, grid)
    levels = np.linspace(-lim * lim, lim * lim, 21)
    cs = ax.contourf(X, Y, X * Y, levels=levels, cmap="RdBu", alpha=0.55)
    ax.contour(X, Y, X * Y, levels=[0.0], colors="0.4", linewidths=0.6)
    from matplotlib.ticker import MaxNLocator

    if colorbar:
        ax.figure.colorbar(cs, ax=ax, fraction=0.046, pad=0.04, label=r"$J = \mu^1\mu^2$",
                           ticks=MaxNLocator(7))
    ax.add_patch(Rectangle((mu[0] - step, mu[1] - step), 2 * step, 2 * step, fill=True, facecolor="gold",
                           alpha=0.18, edgecolor="goldenrod", lw=1.2, label=f"trust region, δ = {kl_radius:g}"))
    styles = {"simultaneous": "tab:red", "sequential (1, 2)": "tab:blue", "sequential (2, 1)": "tab:green"}
    J = paths["J"]
    for key, colour in styles.items():
        path = paths[key]
        for a, b in zip(path[:-1], path[1:]):
            if np.allclose(a, b):
                continue
            ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="-|>", color=colour, lw=2.0,
                                                            shrinkA=0, shrinkB=0))
        ax.plot(path[-1:, 0], path[-1:, 1], "o", color=colour, ms=6, label=f"{key}: J = {J[key]:.4g}")
    ax.plot([mu[0]], [mu[1]], "ko", ms=6, label=f"start: J = {J['start']:.4g}")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel(r"$\mu^1$")
    ax.set_ylabel(r"$\mu^2$")
    ax.set_title(title if title is not None else f"a¹a² game: updates with δ = {kl_radius:g}")
    ax.legend(fontsize=7, loc="upper left", framealpha=0.9)
    return ax


def a1a2_update_explorer(kl_radius: float = 0.5, mu0=(-0.25, 0.25)):
    """Sliders for δ and the starting means that redraw :func:`plot_a1a2_updates`.

    The sliders step through δ in {0.1, 0.5, 1, 2}, μ¹ in {−0.75, −0.25, 0.5} and μ² in
    {0.25, 0.75} (the start values are added); every frame is drawn when the cell runs,
    so the HTML book shows the same pictures without a kernel (:mod:`harl_mini.viz.explorer`).

    Args:
        kl_radius: initial KL radius δ, 0 <= δ <= 2.
        mu0: initial starting means (μ¹, μ²), each in [−1.5, 1.5].

    Returns:
        An :class:`~harl_mini.viz.explorer.Explorer`.
    """
    import matplotlib.pyplot as plt

    from harl_mini.viz.explorer import Slider, explore

    delta = _real(kl_radius, "kl_radius", 0.0, 2.0)
    mu = _mu0(mu0)
    m1 = _real(float(mu[0]), "mu0[0]", -1.5, 1.5)
    m2 = _real(float(mu[1]), "mu0[1]", -1.5, 1.5)

    def draw(delta, mu1, mu2):
        fig, ax = plt.subplots(figsize=(5.2, 4.6), layout="constrained")
        plot_a1a2_updates((mu1, mu2), delta, ax=ax, lim=3.6)
        return fig

    return explore(draw, Slider("delta", "δ", (0.1, 0.5, 1.0, 2.0), delta),
                   Slider("mu1", "μ¹ start", (-0.75, -0.25, 0.5), m1),
                   Slider("mu2", "μ² start", (0.25, 0.75), m2),
                   alt="Simultaneous and sequential trust-region updates of the a¹a² game on the contours of J")


# ---------------------------------------------------------------------------------------
# Entropies of learned policies
# ---------------------------------------------------------------------------------------


def plot_entropy_curves(curves: Mapping, references: Mapping | None = None, ax=None, xlabel: str = "iteration",
                        title=None, colors: Mapping | None = None):
    """Draw entropy curves against iterations, with dashed horizontal reference levels.

    Args:
        curves: label → entropies, a [T] array (one curve) or [K, T] (K runs, drawn thin
            in one colour, with their mean thick).
        references: label → level (e.g. ``{"log n!": math.log(6)}``), drawn as dashed lines.
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        xlabel: label of the horizontal axis.
        title: optional Axes title.
        colors: optional label → colour (default: the colour cycle C0, C1, …).

    Returns:
        The matplotlib Axes.
    """
    colors = {} if colors is None else colors
    if not isinstance(curves, Mapping) or not curves:
        raise HarlMiniError("curves: expected a non-empty dict label -> entropies")
    references = {} if references is None else references
    if not isinstance(references, Mapping):
        raise HarlMiniError(f"references: expected a dict label -> level, got {type(references).__name__}")
    ax = _new_axes(ax, (5.6, 3.8))
    for k, (label, values) in enumerate(curves.items()):
        v = as_float64(values, f"curves[{label!r}]").numpy()
        if v.ndim == 1:
            v = v[None]
        if v.ndim != 2 or v.shape[1] < 1:
            raise HarlMiniError(f"curves[{label!r}]: expected shape [T] or [K, T], got {list(v.shape)}")
        colour = colors.get(label, f"C{k}")
        t = np.arange(v.shape[1])
        if v.shape[0] > 1:
            for row in v:
                ax.plot(t, row, color=colour, lw=0.7, alpha=0.45)
        ax.plot(t, v.mean(0), color=colour, lw=2.0, label=label)
    for j, (label, level) in enumerate(references.items()):
        ax.axhline(_real(level, f"references[{label!r}]"), color=f"0.{2 + 2 * (j % 3)}", ls="--", lw=1.1,
                   label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("entropy (nats)")
    if title is not None:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


# ---------------------------------------------------------------------------------------
# Recorded training runs on the games
# ---------------------------------------------------------------------------------------


def plot_game_runs(groups: Mapping, J_star: float, J_share: float | None = None, y: str = "j_exact",
                   x: str = "iteration", ax=None, title=None, colors: Mapping | None = None, legend: bool = True,
                   **kwargs):
    """Draw recorded training runs of several methods on one game, with J* and J*_share dashed.

    Each group (a method, several seeds) is drawn by :func:`harl_mini.viz.runs.plot_runs`
    (mean over seeds and min–max band). The exact optimum J* and, if given, the best value
    of a shared policy J*_share (from :func:`~harl_mini.tabular.best_shared_policy`) are
    horizontal dashed lines, so a curve can be read against what its policy class can reach.

    Args:
        groups: label → list of run folders.
        J_star: the exact optimal team objective J*.
        J_share: the exact J*_share, or None.
        y, x: the ``metrics.csv`` columns to plot (default: the exact J of the current
            stochastic joint policy, ``j_exact``, against the iteration).
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        title: optional Axes title.
        colors: optional label → colour.
        legend: draw a legend on the Axes (False: leave it to a figure legend, e.g.
            ``fig.legend(*ax.get_legend_handles_labels())``).
        **kwargs: passed on to ``plot_runs`` (e.g. ``band="std"``, ``per_seed=True``).

    Returns:
        The matplotlib Axes.
    """
    from harl_mini.viz import runs as viz_runs

    if not isinstance(groups, Mapping) or not groups:
        raise HarlMiniError("groups: expected a non-empty dict label -> run folders")
    J_star = _real(J_star, "J_star")
    if J_share is not None:
        J_share = _real(J_share, "J_share")
    colors = {} if colors is None else colors
    ax = _new_axes(ax, (6.4, 3.8))
    for k, (label, folders) in enumerate(groups.items()):
        viz_runs.plot_runs(folders, y=y, x=x, ax=ax, label=label, color=colors.get(label, f"C{k}"), **kwargs)
    from matplotlib.transforms import blended_transform_factory

    # the exact references, labelled generically (a figure legend can then serve every panel)
    # with their values written at the right end of each line
    right = blended_transform_factory(ax.transAxes, ax.transData)
    ax.axhline(J_star, color="0.2", ls="--", lw=1.2, label="$J^*$ (exact)")
    ax.text(0.99, J_star, f"$J^*$ = {J_star:.4g}", transform=right, ha="right", va="bottom", fontsize=7,
            color="0.2")
    if J_share is not None:
        ax.axhline(J_share, color="tab:red", ls=(0, (4, 3)), lw=1.2, label="$J^*_{share}$ (exact)")
        close = abs(J_share - J_star) <= 1e-9 * max(1.0, abs(J_star))
        ax.text(0.99 if not close else 0.70, J_share, f"$J^*_{{share}}$ = {J_share:.4g}", transform=right,
                ha="right", va="top" if not close else "bottom", fontsize=7, color="tab:red")
    if title is not None:
        ax.set_title(title)
    if x == "iteration":
        ax.set_xlabel("iteration")
    if y == "j_exact":
        ax.set_ylabel("exact $J$ of the joint policy")
    if legend:
        ax.legend(fontsize=7, loc="best")
    elif ax.get_legend() is not None:
        ax.get_legend().remove()
    return ax


def legend_line(color, label: str, ls="-", lw: float = 2.0):
    """A legend handle: a line of ``color`` and style ``ls`` labelled ``label`` (for a figure-wide legend)."""
    from matplotlib.lines import Line2D

    if not isinstance(label, str):
        raise HarlMiniError(f"label: expected a string, got {type(label).__name__}")
    return Line2D([], [], color=color, ls=ls, lw=lw, label=label)


# ---------------------------------------------------------------------------------------
# What a few seeds can tell apart
# ---------------------------------------------------------------------------------------


def _count(x, name: str, low: int = 0) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < low:
        raise HarlMiniError(f"{name}: expected an integer >= {low}, got {x!r}")
    return int(x)


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact test of k1 successes in n1 trials against k2 in n2: the p-value.

    Under the null hypothesis that both methods succeed equally often, the number of successes
    of the first method, given the total K = k1 + k2, is hypergeometric:
    P(k) = C(K, k) C(N − K, n1 − k) / C(N, n1), N = n1 + n2. The p-value sums P(k) over every k
    at most as likely as the observed k1 (with a relative tolerance of 1e-9 for ties).
    Chapter 6: 5 of 5 seeds against 3 of 5 gives p = 112/252 = 0.444, against 4 of 5 gives 1.

    Args:
        k1, n1: successes and trials of the first method, 0 <= k1 <= n1, n1 >= 1.
        k2, n2: successes and trials of the second method, 0 <= k2 <= n2, n2 >= 1.

    Returns:
        The two-sided p-value, in (0, 1].
    """
    n1, n2 = _count(n1, "n1", 1), _count(n2, "n2", 1)
    k1, k2 = _count(k1, "k1"), _count(k2, "k2")
    if k1 > n1 or k2 > n2:
        raise HarlMiniError(f"expected k1 <= n1 and k2 <= n2, got k1={k1}, n1={n1}, k2={k2}, n2={n2}")
    K, N = k1 + k2, n1 + n2
    low = max(0, K - n2)
    prob = [math.comb(K, k) * math.comb(N - K, n1 - k) / math.comb(N, n1) for k in range(low, min(K, n1) + 1)]
    observed = prob[k1 - low]
    return min(1.0, sum(p for p in prob if p <= observed * (1 + 1e-9)))
