r"""Figures and the widget of Chapter 3 (the natural policy gradient).

Every widget is a thin ``ipywidgets`` wrapper around a pure plotting function, so the
static figure in the HTML book and the live widget draw the same picture (education notes
§4.7). ``ipywidgets`` is imported only inside the widget function.

Contents:

* :func:`bandit_paths` — exact PG and NPG iterates on a 3-armed bandit (a one-state MDP
  with γ = 0), from any starting logits;
* :func:`plot_simplex_paths` — those paths drawn on the probability simplex, over the
  level lines of the expected reward;
* :func:`plot_bandit_objective` — the expected reward along the same paths;
* :func:`simplex_explorer` — a step-size slider around the two plots above;
* :func:`plot_optimality_gap` — J* − J(π^{(t)}) against t for several optimisation runs;
* :func:`plot_npg_bound` — NPG's gap against the bound of AKLM Theorem 5.3.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from harl_mini.errors import HarlMiniError, check_positive_int
from harl_mini.viz._common import (
    f64 as _f64,
    new_axes as _new_axes,
)

__all__ = [
    "bandit_paths",
    "plot_simplex_paths",
    "plot_bandit_objective",
    "simplex_explorer",
    "plot_optimality_gap",
    "plot_npg_bound",
]

#: the default starting policy of the bandit figures: almost all mass on the worst arm
DEFAULT_START = (0.02, 0.08, 0.90)

# Corners of the simplex in the plane: arm 0 bottom left, arm 1 bottom right, arm 2 top.
_CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3.0) / 2.0]])






def _positive(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not (math.isfinite(float(x)) and x > 0):
        raise HarlMiniError(f"{name}: expected a finite positive number, got {x!r}")
    return float(x)




def _bandit_inputs(rewards, start):
    r = _f64(rewards, "rewards")
    if tuple(r.shape) != (3,):
        raise HarlMiniError(f"rewards: expected three arm rewards, shape [3], got {list(r.shape)}")
    p0 = _f64(DEFAULT_START if start is None else start, "start")
    if tuple(p0.shape) != (3,) or bool((p0 <= 0).any()) or abs(float(p0.sum()) - 1.0) > 1e-8:
        raise HarlMiniError(f"start: expected a probability vector over 3 arms with positive entries, "
                            f"got {p0.tolist()}")
    return r, p0


def bandit_paths(rewards, eta: float, steps: int = 30, start=None) -> dict[str, np.ndarray]:
    r"""Exact PG and NPG on a 3-armed bandit, from the same starting policy.

    The bandit is a one-state MDP with γ = 0, so J(π) = Σ_a π(a) r(a) and d_π = 1. Both
    methods take ``steps`` steps of size η from the logits θ_0 = log ``start``:

    * PG: θ ← θ + η ∇J(θ), with ∂J/∂θ_a = π(a) (r(a) − J) (Chapter 2, eq. ``eq-pg-softmax``);
    * NPG: θ ← θ + η F⁺ ∇J(θ) (Chapter 3, eq. ``eq-npg``), i.e. π ∝ π exp(η r).

    Args:
        rewards: the three arm rewards r(a), shape [3].
        eta: step size η > 0 (the same for both methods).
        steps: number of steps T.
        start: starting policy, a positive probability vector [3] (default
            :data:`DEFAULT_START`).

    Returns:
        ``{"pg": [T + 1, 3], "npg": [T + 1, 3]}``, the policies π^{(0)}, …, π^{(T)}.
    """
    from harl_mini import tabular

    r, p0 = _bandit_inputs(rewards, start)
    eta = _positive(eta, "eta")
    steps = check_positive_int(steps, "steps")
    mdp = tabular.FiniteMDP(torch.ones((1, 3, 1), dtype=torch.float64), r.unsqueeze(0), 0.0)
    out = {}
    for name in ("pg", "npg"):
        theta = torch.log(p0).unsqueeze(0)
        path = [tabular.softmax_policy(theta)[0]]
        for _ in range(steps):
            if name == "pg":
                theta = theta + eta * tabular.policy_gradient(mdp, theta)
            else:
                theta = tabular.npg_update(theta, mdp, eta)
            path.append(tabular.softmax_policy(theta)[0])
        out[name] = torch.stack(path).numpy()
    return out


def _to_plane(p: np.ndarray) -> np.ndarray:
    return p @ _CORNERS


def plot_simplex_paths(rewards=(1.0, 0.7, 0.0), eta: float = 0.5, steps: int = 30, start=None, ax=None,
                       title=None):
    r"""Draw the PG and NPG paths of :func:`bandit_paths` on the probability simplex.

    The triangle's corners are the three deterministic policies; the shading and the
    thin lines are the level sets of J(π) = Σ_a π(a) r(a) (straight lines: J is linear in
    π). Each dot is one iterate.

    Args:
        rewards: the three arm rewards, shape [3].
        eta: step size η > 0.
        steps: number of steps.
        start: starting policy (default :data:`DEFAULT_START`).
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        title: optional Axes title (default: the step size).

    Returns:
        The matplotlib Axes.
    """
    import matplotlib.tri as mtri

    paths = bandit_paths(rewards, eta, steps, start)
    r = np.asarray(_f64(rewards, "rewards"))
    ax = _new_axes(ax, (5.0, 4.6))
    # a triangulated grid of policies, shaded by J
    n = 40
    pts = np.array([(i / n, j / n, 1 - (i + j) / n) for i in range(n + 1) for j in range(n + 1 - i)])
    xy = _to_plane(pts)
    tri = mtri.Triangulation(xy[:, 0], xy[:, 1])
    J = pts @ r
    ax.tricontourf(tri, J, levels=12, cmap="Greens", alpha=0.55)
    ax.tricontour(tri, J, levels=12, colors="0.5", linewidths=0.4)
    ax.plot(*_to_plane(np.vstack([np.eye(3), np.eye(3)[:1]])).T, color="k", linewidth=1.0)
    offsets = np.array([[-0.04, -0.06], [0.04, -0.06], [0.0, 0.04]])
    for a in range(3):
        x, y = _CORNERS[a] + offsets[a]
        ax.text(x, y, f"arm {a}\nr = {r[a]:g}", ha="center", va="center" if a < 2 else "bottom", fontsize=9)
    styles = {"pg": ("C3", "policy gradient"), "npg": ("C0", "natural policy gradient")}
    for name, (color, label) in styles.items():
        q = _to_plane(paths[name])
        final_J = float(paths[name][-1] @ r)
        ax.plot(q[:, 0], q[:, 1], "o-", color=color, markersize=3, linewidth=1.2,
                label=f"{label} (J = {final_J:.3f})")
    s = _to_plane(paths["pg"][:1])[0]
    ax.plot(*s, "ks", markersize=6, label="start")
    ax.set_aspect("equal")
    ax.set_xlim(-0.15, 1.15)
    ax.set_ylim(-0.12, 1.02)
    ax.axis("off")
    ax.set_title(title if title is not None else f"{steps} steps of size η = {float(eta):g}")
    ax.legend(loc="upper center", fontsize=9, frameon=False, bbox_to_anchor=(0.5, 0.02), ncol=1)
    return ax


def plot_bandit_objective(rewards=(1.0, 0.7, 0.0), eta: float = 0.5, steps: int = 30, start=None, ax=None):
    """Plot J(π^{(t)}) against t for the PG and NPG paths of :func:`bandit_paths`.

    Args: as :func:`plot_simplex_paths`.

    Returns:
        The matplotlib Axes.
    """
    paths = bandit_paths(rewards, eta, steps, start)
    r = np.asarray(_f64(rewards, "rewards"))
    ax = _new_axes(ax, (5.0, 3.6))
    t = np.arange(steps + 1)
    ax.plot(t, paths["pg"] @ r, "o-", color="C3", markersize=3, label="policy gradient")
    ax.plot(t, paths["npg"] @ r, "o-", color="C0", markersize=3, label="natural policy gradient")
    ax.axhline(float(r.max()), color="0.4", linestyle="--", linewidth=1, label=r"$\max_a r(a)$")
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$J(\pi^{(t)})$")
    ax.set_title("expected reward")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return ax


def simplex_explorer(rewards=(1.0, 0.7, 0.0), eta: float = 0.5, steps: int = 30, start=None):
    """PG and NPG on the simplex, with a step-size slider and a steps slider.

    Draws :func:`plot_simplex_paths` and :func:`plot_bandit_objective` side by side. The sliders
    step through η in {0.1, 0.2, 0.5, 1, 2, 5} and steps in {5, 30, 100} (the start values are
    added); every frame is drawn when the cell runs, so the HTML book shows the same pictures
    without a kernel (:mod:`harl_mini.viz.explorer`).

    Args: as :func:`plot_simplex_paths`.

    Returns:
        An :class:`~harl_mini.viz.explorer.Explorer`.
    """
    from harl_mini.viz.explorer import Slider, explore
    from harl_mini.viz.style import figure

    eta = _positive(eta, "eta")
    steps = check_positive_int(steps, "steps")
    bandit_paths(rewards, eta, 1, start)  # validate now, not on the first slider move

    def draw(eta, steps):
        fig, axes = figure(2, gridspec_kw={"width_ratios": [1.1, 1]})
        plot_simplex_paths(rewards, eta, steps, start, ax=axes[0])
        plot_bandit_objective(rewards, eta, steps, start, ax=axes[1])
        return fig

    return explore(draw, Slider("eta", "η", (0.1, 0.2, 0.5, 1.0, 2.0, 5.0), eta),
                   Slider("steps", "steps", (5, 30, 100), steps),
                   alt="Paths of PG and NPG on the probability simplex, and their expected reward against the step")


def plot_optimality_gap(runs: dict, J_star: float, ax=None, title=None):
    r"""Plot J* − J(π^{(t)}) against t on log-log axes for several optimisation runs.

    Args:
        runs: ``{label: history}``, each an
            :class:`~harl_mini.tabular.softmax.OptimisationHistory` (or a [T + 1] sequence
            of J values).
        J_star: the optimal J* = Σ_s ρ0(s) V*(s).
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        title: optional Axes title.

    Gaps below 1e-12 are drawn at 1e-12 (round-off); t = 0 is left out (log axis).

    Returns:
        The matplotlib Axes.
    """
    if not isinstance(runs, dict) or not runs:
        raise HarlMiniError("runs: expected a non-empty dict {label: OptimisationHistory or J values}")
    if isinstance(J_star, bool) or not isinstance(J_star, numbers.Real) or not math.isfinite(float(J_star)):
        raise HarlMiniError(f"J_star: expected a finite number, got {J_star!r}")
    ax = _new_axes(ax, (6.5, 3.8))
    for label, run in runs.items():
        J = _f64(getattr(run, "J", run), f"runs[{label!r}]")
        if J.dim() != 1 or J.numel() < 2:
            raise HarlMiniError(f"runs[{label!r}]: expected at least two J values, shape [T + 1]")
        gap = np.maximum(float(J_star) - J.numpy(), 1e-12)
        t = np.arange(J.numel())
        ax.loglog(t[1:], gap[1:], label=label)  # t = 0 has no place on a log axis
    ax.set_xlabel("iteration $t$")
    ax.set_ylabel(r"$J^* - J(\pi^{(t)})$")
    if title is not None:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def plot_npg_bound(gap, eta: float, gamma: float, num_actions: int, ax=None, label=None):
    r"""Plot NPG's optimality gap against the bound of AKLM Theorem 5.3.

    The bound is log|A| / (η T) + 1 / ((1 − γ)² T), drawn for T ≥ 1 (rewards in [0, 1]).

    Args:
        gap: V*(ρ0) − V^{(T)}(ρ0) for T = 0, …, T_max, shape [T_max + 1].
        eta: the NPG step size η > 0.
        gamma: the discount γ ∈ [0, 1).
        num_actions: |A|.
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        label: optional label of the gap curve.

    Returns:
        The matplotlib Axes.
    """
    g = _f64(gap, "gap")
    if g.dim() != 1 or g.numel() < 2:
        raise HarlMiniError(f"gap: expected shape [T + 1] with T >= 1, got {list(g.shape)}")
    eta = _positive(eta, "eta")
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0.0 <= float(gamma) < 1.0:
        raise HarlMiniError(f"gamma: must satisfy 0 <= gamma < 1, got {gamma!r}")
    num_actions = check_positive_int(num_actions, "num_actions")
    T = np.arange(1, g.numel())
    bound = math.log(num_actions) / (eta * T) + 1.0 / ((1.0 - float(gamma)) ** 2 * T)
    ax = _new_axes(ax, (6.0, 3.8))
    line = ax.loglog(T, np.maximum(g.numpy()[1:], 1e-16), "-",
                     label=label if label is not None else f"gap, η = {eta:g}")
    ax.loglog(T, bound, "--", color=line[0].get_color(), alpha=0.7, label=f"bound, η = {eta:g}")
    ax.set_xlabel("iterations $T$")
    ax.set_ylabel(r"$V^*(\rho_0) - V^{(T)}(\rho_0)$")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return ax
