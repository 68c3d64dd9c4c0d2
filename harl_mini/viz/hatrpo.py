"""Pictures of HATRPO and HAPPO (Chapter 8): static figures, tables and one widget.

Every picture is a pure function that draws on a matplotlib Axes what it is given, or what it
computes exactly with the tabular oracle (:mod:`harl_mini.tabular.hatrpo`). The widget is a
thin ``ipywidgets`` wrapper around the same function, so the static figure of the HTML book
and the live widget show the same thing. ``ipywidgets`` is imported only inside the widget.

Contents:

* :func:`sequential_substeps` — one iteration of Algorithm 1 (the exact sequential update)
  split into its sub-steps: the joint policy, J and Lemma 2's bound after each agent;
  :func:`plot_sequential_update` draws it (J after each sub-step, and every agent's policy
  after a chosen sub-step); :func:`sequential_update_explorer` adds an order menu and a
  sub-step slider;
* :func:`plot_j_trajectories` — J(π_k) of several runs of the exact updates, with J*;
* :func:`plot_nash_gaps` — the Nash gap of exact runs on a log scale, with tolerances;
* :func:`plot_bound_slack` — the slack of Lemma 2 against its penalty, one point per draw;
* :func:`m_factor_distribution` / :func:`plot_m_distribution` — the exact law of log M
  under the old joint policy (M = the product of the earlier agents' ratios);
* :func:`game_results` / :func:`game_results_table` — recorded game runs
  (``results/games``) summarised per game and algorithm, as a Markdown table;
  :func:`load_bench` reads the saved output of ``python -m harl_mini.marl.bench``.

And the small helpers the chapter's pages share (so that their cells stay short):

* the random instances of the checks: :func:`check_game`, :func:`soft_policies`,
  :func:`perturb_policies`, :func:`random_order`;
* :func:`plot_surrogate_error` (Lemma 2: how much of the penalty J − L uses),
  :func:`plot_haml_progress` (exact HAML runs, normalised);
* the factor M: :func:`two_action_step`, :func:`m_std_growth`, :func:`plot_m_spread`;
* runs: :func:`plot_run_metrics` (rows of live runs), :func:`plot_game_grid` (recorded runs on
  the matrix games and the a¹a² game), :func:`games_provenance` and :func:`bench_table`
  (Markdown), :func:`source_table` (where a list of functions lives).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from harl_mini.errors import HarlMiniError, as_float64
from harl_mini.viz._common import game as _game, new_axes as _new_axes, real as _real

__all__ = [
    "sequential_substeps",
    "plot_sequential_update",
    "sequential_update_explorer",
    "plot_j_trajectories",
    "plot_nash_gaps",
    "plot_bound_slack",
    "m_factor_distribution",
    "plot_m_distribution",
    "game_results",
    "game_results_table",
    "load_bench",
    "CHECK_SHAPES",
    "check_game",
    "soft_policies",
    "perturb_policies",
    "random_order",
    "plot_surrogate_error",
    "plot_haml_progress",
    "two_action_step",
    "m_std_growth",
    "plot_m_spread",
    "plot_run_metrics",
    "plot_game_grid",
    "games_provenance",
    "bench_table",
    "source_table",
]

DTYPE = torch.float64
#: largest joint-action grid that :func:`m_factor_distribution` enumerates
MAX_JOINT_ACTIONS = 2**20


def _mapping(x, name: str) -> Mapping:
    if not isinstance(x, Mapping) or not x:
        raise HarlMiniError(f"{name}: expected a non-empty dict label -> values, got {type(x).__name__}")
    return x


# ---------------------------------------------------------------------------------------
# One sequential update, sub-step by sub-step
# ---------------------------------------------------------------------------------------


def sequential_substeps(game, pis, order, C=None, eta_soft: float = 0.0) -> dict:
    """One exact sequential update (Algorithm 1), split into its n sub-steps.

    Agent i_m's new policy depends only on the new policies of i_{1:m−1}, so the joint
    policy after sub-step m is the old one with agents i_{1:m} replaced by their final
    new policies (:func:`harl_mini.tabular.hatrpo.sequential_update`).

    Args:
        game: a MarkovGame or a game name (``"zhong-example1"``).
        pis: the old policies, one [S, n_i] table per agent (p_min-soft if ``eta_soft`` > 0).
        order: a permutation (i_1, …, i_n) of the agents.
        C: the penalty coefficient (default: the joint-advantage C of Lemma 2).
        eta_soft: the softness floor p_min (η of Assumption 1 of Kuba et al.; 0: no constraint).

    Returns:
        A dict with ``order``; ``policies`` (n + 1 joint policies, after 0, 1, …, n
        sub-steps); ``J`` [n + 1]; ``bound`` [n + 1], J(π) plus the first m terms
        L^{i_{1:j}} − C D_KL^max of Lemma 2 (never above ``J``, non-decreasing);
        ``terms`` [n], those terms; ``C``; ``J_star``; ``simultaneous`` (the simultaneous
        update with the same C and p_min) and ``J_simultaneous``.
    """
    from harl_mini import tabular
    from harl_mini.tabular import hatrpo

    game = _game(game)
    pis = tabular.check_joint_policy(game, pis)
    if isinstance(order, (str, bytes)) or not isinstance(order, Iterable):
        raise HarlMiniError(f"order: expected a permutation of the agents, got {order!r}")
    order = tuple(order)
    if C is None:
        C = float(hatrpo.ma_penalty_constant(game, pis))
    new = hatrpo.sequential_update(game, pis, order, C=C, eta_soft=eta_soft)
    policies = [list(pis)]
    terms = []
    for m, i in enumerate(order, start=1):
        step = list(policies[-1])
        step[i] = new[i]
        policies.append(step)
        L = float(hatrpo.ma_surrogate(game, pis, new, order, m))
        terms.append(L - (C * float(tabular.kl_max(pis[i], new[i])) if C > 0 else 0.0))
    J = np.array([float(tabular.game_objective(game, p)) for p in policies])
    sim = hatrpo.simultaneous_update(game, pis, C=C, eta_soft=eta_soft)
    return {
        "order": order,
        "policies": policies,
        "J": J,
        "terms": np.array(terms),
        "bound": J[0] + np.concatenate([[0.0], np.cumsum(terms)]),
        "C": float(C),
        "J_star": float(tabular.game_optimal_value(game)),
        "simultaneous": sim,
        "J_simultaneous": float(tabular.game_objective(game, sim)),
    }


def plot_sequential_update(game, pis, order, step=None, C=None, eta_soft: float = 0.0, state: int = 0, axes=None,
                           title=None) -> dict:
    """Draw one sequential update sub-step by sub-step (left) and the policies after ``step`` (right).

    Left: J after 0, 1, …, n sub-steps (the x-tick names the agent updated), Lemma 2's
    bound after each sub-step, the J of the simultaneous update with the same C (red) and
    J* (dotted). Right: each agent's policy in ``state``, old (hatched outline) and after
    ``step`` sub-steps (filled; the agents updated so far are coloured).

    Args:
        game, pis, order, C, eta_soft: as in :func:`sequential_substeps`.
        step: number of sub-steps done, 0 ≤ step ≤ n (default n: the whole update).
        state: the state whose policies are drawn on the right.
        axes: two matplotlib Axes; a new figure is created when omitted.
        title: optional title of the left Axes.

    Returns:
        The dict of :func:`sequential_substeps`.
    """
    res = sequential_substeps(game, pis, order, C=C, eta_soft=eta_soft)
    game = _game(game)
    n = game.num_agents
    step = n if step is None else step
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or not 0 <= step <= n:
        raise HarlMiniError(f"step: expected an integer 0 <= step <= {n} (sub-steps done), got {step!r}")
    if isinstance(state, bool) or not isinstance(state, numbers.Integral) or not 0 <= state < game.num_states:
        raise HarlMiniError(f"state: expected an integer 0 <= state < {game.num_states}, got {state!r}")
    if axes is None:
        from harl_mini.viz.style import figure

        _, axes = figure(2)
    if len(axes) != 2:
        raise HarlMiniError(f"axes: expected two Axes, got {len(axes)}")
    ax_j, ax_p = axes
    xs = np.arange(n + 1)
    ax_j.plot(xs, res["J"], "o-", color="tab:blue", lw=1.8, label="J after each sub-step")
    ax_j.plot(xs, res["bound"], "s--", color="tab:green", ms=4, lw=1.1, label="Lemma 2 bound")
    ax_j.plot([step], [res["J"][step]], "o", ms=11, mfc="none", mec="black", mew=1.5)
    ax_j.axhline(res["J_simultaneous"], color="tab:red", lw=1.2, label=f"simultaneous: J = {res['J_simultaneous']:.3g}")
    ax_j.axhline(res["J_star"], color="0.3", ls=":", lw=1.2, label=f"$J^*$ = {res['J_star']:.3g}")
    ax_j.set_xticks(xs, ["start"] + [f"agent {i}" for i in res["order"]])
    ax_j.set_xlabel("sub-step (agent updated)")
    ax_j.set_ylabel("$J$ of the joint policy")
    ax_j.set_title(title if title is not None else
                   f"{game.name or 'game'}, γ = {game.gamma:g}\norder {' → '.join(map(str, res['order']))}, "
                   f"C = {res['C']:.3g}")
    ax_j.grid(True, alpha=0.3)
    ax_j.legend(fontsize=8, loc="best")
    now, old = res["policies"][step], res["policies"][0]
    done = set(res["order"][:step])
    width, x0, ticks, labels = 0.8, 0.0, [], []
    for i in range(n):
        k = game.action_counts[i]
        pos = x0 + np.arange(k)
        colour = "tab:orange" if i in done else "tab:gray"
        ax_p.bar(pos, now[i][state].detach().numpy(), width=width, color=colour, alpha=0.85,
                 label="updated" if i in done and i == min(done) else None)
        ax_p.bar(pos, old[i][state].detach().numpy(), width=width, fill=False, hatch="//", edgecolor="0.3",
                 label="old" if i == 0 else None)
        ticks.extend(pos)
        labels.extend(f"{i}:{a}" for a in range(k))
        x0 += k + 1
    ax_p.set_xticks(ticks, labels, fontsize=8)
    ax_p.set_ylim(0, 1.05)
    ax_p.set_xlabel("agent : action")
    ax_p.set_ylabel(f"$\\pi^i(a^i \\mid s={state})$")
    ax_p.set_title(f"after {step} of {n} sub-steps: J = {res['J'][step]:.4g}")
    ax_p.grid(True, axis="y", alpha=0.3)
    ax_p.legend(fontsize=8, loc="upper right")
    return res


def sequential_update_explorer(game="zhong-example1", pis=None, eta_soft: float = 0.05, gammas=(0.0, 0.05, 0.5)):
    """Menus for the order (and the discount) and a sub-step slider that redraw :func:`plot_sequential_update`.

    Args:
        game: a MarkovGame or a game name (default HARL's Example 1).
        pis: the old policies (default: every agent plays its action 0 with probability 0.7,
            the rest spread evenly), softened to ``eta_soft``
            (:func:`harl_mini.tabular.hatrpo.soften`).
        eta_soft: η of Assumption 1.
        gammas: discounts offered for a one-state game (its payoff repeated with discount γ,
            :func:`harl_mini.tabular.matrix_game`; γ = 0 gives C = 0, a best response); ignored
            for games with several states, which keep their own γ.

    Every combination of the menus and the slider is drawn when the cell runs, so the HTML
    book shows the same pictures without a kernel (:mod:`harl_mini.viz.explorer`).

    Returns:
        An :class:`~harl_mini.viz.explorer.Explorer`.
    """
    from harl_mini import tabular
    from harl_mini.tabular import hatrpo
    from harl_mini.viz.explorer import Menu, Slider, explore
    from harl_mini.viz.style import figure

    game = _game(game)
    eta_soft = _real(eta_soft, "eta_soft", 0.0)
    if pis is None:
        pis = []
        for k in game.action_counts:
            p = torch.full((game.num_states, k), 0.3 / max(k - 1, 1), dtype=DTYPE)
            p[:, 0] = 0.7 if k > 1 else 1.0
            pis.append(p)
    pis = hatrpo.soften(tabular.check_joint_policy(game, pis), eta_soft)
    orders = {" → ".join(map(str, o)): o for o in itertools.permutations(range(game.num_agents))}
    if game.num_states == 1:
        if isinstance(gammas, (str, bytes)) or not isinstance(gammas, Iterable):
            raise HarlMiniError(f"gammas: expected a list of discounts in [0, 1), got {gammas!r}")
        gammas = [_real(g, "gammas", 0.0, 0.999) for g in gammas]
        if not gammas:
            raise HarlMiniError("gammas: expected at least one discount")
        games = {g: tabular.matrix_game(game.R[0], gamma=g, name=game.name) for g in gammas}
    else:
        games = {game.gamma: game}

    def draw(order, gamma, step):
        fig, axes = figure(2)
        plot_sequential_update(games[gamma], pis, order, step=step, eta_soft=eta_soft, axes=axes)
        return fig

    n = game.num_agents
    return explore(draw, Menu("order", "order", orders), Menu("gamma", "γ", {f"{g:g}": g for g in games}),
                   Slider("step", "sub-steps", range(n + 1), n),
                   alt="Sequential update: each agent's policy after the chosen number of sub-steps, and J")


# ---------------------------------------------------------------------------------------
# Trajectories of exact runs
# ---------------------------------------------------------------------------------------


def _curves(values, name: str) -> np.ndarray:
    v = as_float64(values, name).numpy()
    if v.ndim == 1:
        v = v[None]
    if v.ndim != 2 or v.shape[1] < 1:
        raise HarlMiniError(f"{name}: expected shape [K] or [R, K] (R runs), got {list(v.shape)}")
    return v


def plot_j_trajectories(curves: Mapping, ax=None, J_star=None, title=None, xlabel: str = "iteration $k$",
                        styles: Mapping | None = None):
    """Draw J(π_k) against k for several runs, with J* dashed.

    Args:
        curves: label → J values, a [K + 1] array (one run) or [R, K + 1] (R runs drawn in one
            colour, thin).
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        J_star: optional optimum to draw as a dashed line.
        title: optional Axes title.
        xlabel: label of the horizontal axis.
        styles: optional label → dict of matplotlib keyword arguments (colour, marker, ls).

    Returns:
        The matplotlib Axes.
    """
    curves = _mapping(curves, "curves")
    styles = {} if styles is None else styles
    if not isinstance(styles, Mapping):
        raise HarlMiniError(f"styles: expected a dict label -> plot options, got {type(styles).__name__}")
    ax = _new_axes(ax, (5.6, 3.8))
    for k, (label, values) in enumerate(curves.items()):
        v = _curves(values, f"curves[{label!r}]")
        kw = dict(color=f"C{k}", marker="o", ms=3, lw=1.5)
        kw.update(styles.get(label, {}))
        for r, row in enumerate(v):
            ax.plot(np.arange(len(row)), row, label=label if r == 0 else None,
                    **(kw if len(v) == 1 else {**kw, "lw": 1.0, "alpha": 0.8}))
    if J_star is not None:
        J_star = _real(J_star, "J_star")
        ax.axhline(J_star, color="0.3", ls="--", lw=1, label=f"$J^*$ = {J_star:.4g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"$J(\pi_k)$")
    if title is not None:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_nash_gaps(curves: Mapping, ax=None, tolerances: Mapping | None = None, title=None, floor: float = 1e-12):
    """Draw Nash gaps max_i max_{π^i} J(π^i, π^{-i}) − J(π) on a log scale.

    Args:
        curves: label → gaps, a [K] array (iterations 0, 1, …) or a pair (iterations, gaps).
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        tolerances: optional label → level, drawn as dotted lines in the curve's colour
            when the label is also a curve (e.g. the p_min-soft tolerance of a run; one legend
            entry for all of them), else in grey with the label.
        title: optional Axes title.
        floor: gaps below it (exact zeros) are drawn at ``floor``.

    Returns:
        The matplotlib Axes.
    """
    curves = _mapping(curves, "curves")
    tolerances = {} if tolerances is None else tolerances
    if not isinstance(tolerances, Mapping):
        raise HarlMiniError(f"tolerances: expected a dict label -> level, got {type(tolerances).__name__}")
    floor = _real(floor, "floor", 0.0)
    if floor <= 0:
        raise HarlMiniError("floor: must be positive (log scale)")
    ax = _new_axes(ax, (5.6, 3.8))
    colours = {}
    for k, (label, values) in enumerate(curves.items()):
        if isinstance(values, tuple) and len(values) == 2:
            its = as_float64(values[0], f"curves[{label!r}][0]").numpy()
            gaps = as_float64(values[1], f"curves[{label!r}][1]").numpy()
        else:
            gaps = as_float64(values, f"curves[{label!r}]").numpy()
            its = np.arange(len(gaps), dtype=float)
        if gaps.ndim != 1 or its.shape != gaps.shape or len(gaps) == 0:
            raise HarlMiniError(f"curves[{label!r}]: expected iterations and gaps of one shape [K], "
                                f"got {list(its.shape)} and {list(gaps.shape)}")
        if np.any(gaps < -1e-12):
            raise HarlMiniError(f"curves[{label!r}]: a Nash gap is never negative, got {gaps.min():.3g}")
        colours[label] = f"C{k}"
        ax.semilogy(its, np.maximum(gaps, floor), "-", color=colours[label], lw=1.6, label=label)
    matched = False
    for j, (label, level) in enumerate(tolerances.items()):
        level = _real(level, f"tolerances[{label!r}]", 0.0)
        matched = matched or label in colours
        ax.axhline(max(level, floor), color=colours.get(label, f"0.{3 + 2 * (j % 3)}"), ls=":", lw=1.2,
                   label=None if label in colours else label)
    if matched:  # one legend entry for all the tolerances drawn in their curves' colours
        ax.plot([], [], color="0.4", ls=":", lw=1.2, label="tolerance (dotted, same colour)")
    ax.set_xlabel("iteration $k$")
    ax.set_ylabel("Nash gap")
    if title is not None:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_bound_slack(penalty, slack, ax=None, label=None, color=None, title=None):
    """One point per draw: the slack J(π̄) − bound of Lemma 2 against its penalty C Σ_m D_KL^max.

    The slack is J(π̄) − L_π(π̄) + penalty, and |J(π̄) − L_π(π̄)| ≤ penalty, so every point
    lies between 0 and 2 × penalty; on the diagonal, J(π̄) = L_π(π̄) exactly. The lines
    y = x and y = 2x are drawn.

    Args:
        penalty: [D] values C Σ_m D_KL^max(π^{i_m}, π̄^{i_m}) (positive).
        slack: [D] values J(π̄) − (Lemma 2's right-hand side) (non-negative).
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        label, color: legend label and colour of the points.
        title: optional Axes title.

    Returns:
        The matplotlib Axes.
    """
    pen = as_float64(penalty, "penalty").numpy()
    sl = as_float64(slack, "slack").numpy()
    if pen.ndim != 1 or sl.shape != pen.shape or len(pen) == 0:
        raise HarlMiniError(f"penalty, slack: expected two arrays of one shape [D], got {list(pen.shape)} "
                            f"and {list(sl.shape)}")
    if np.any(pen <= 0):
        raise HarlMiniError("penalty: expected positive values (log scale); drop draws with π̄ = π")
    ax = _new_axes(ax, (5.6, 3.8))
    ax.loglog(pen, np.maximum(sl, 1e-18), ".", ms=4, color=color, label=label)
    lims = np.array([pen.min(), pen.max()])
    if not any(line.get_label() == "$J = L$ (slack = penalty)" for line in ax.get_lines()):
        ax.plot(lims, lims, "k--", lw=1, label="$J = L$ (slack = penalty)")
        ax.plot(lims, 2 * lims, "k:", lw=1, label="largest possible slack")
    ax.set_xlabel(r"penalty $C \sum_m D^{\max}_{KL}(\pi^{i_m}, \bar\pi^{i_m})$")
    ax.set_ylabel(r"slack $J(\bar\pi) - $ bound")
    if title is not None:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


# ---------------------------------------------------------------------------------------
# The factor M
# ---------------------------------------------------------------------------------------


def m_factor_distribution(pis, pis_new, order=None, m=None) -> dict:
    """The exact law of M = Π_{j<m} π̄^{i_j}/π^{i_j} under the old joint policy.

    Every joint action is enumerated (at most :data:`MAX_JOINT_ACTIONS`), with its
    probability under π = Π_i π^i, state by state (the states are weighted equally).

    Args:
        pis, pis_new: old and new policies, one [S, n_i] table per agent.
        order: a permutation of the agents (default 0, 1, …, N − 1).
        m: the position whose M is wanted (default N: all agents but the last one).

    Returns:
        A dict with ``log_m`` and ``weights`` (flat arrays: log M of each (state, joint
        action) and its probability, summing to 1), ``mean`` (E[M], = 1 when π̄ ≪ π),
        ``std`` (of M), ``log_mean`` and ``log_std`` (of log M) and ``factors`` (m − 1).
    """
    from harl_mini.tabular import game as _g
    from harl_mini.tabular import hatrpo

    pis = _g._check_policy_list(pis, "pis")
    N = len(pis)
    size = pis[0].shape[0] * math.prod(p.shape[1] for p in pis)
    if size > MAX_JOINT_ACTIONS:
        raise HarlMiniError(f"pis: {size:,} (state, joint action) pairs to enumerate; at most {MAX_JOINT_ACTIONS:,}")
    order = tuple(range(N)) if order is None else order
    m = N if m is None else m
    M = hatrpo.m_factor(pis, pis_new, order, m)
    weights = _g._product(pis) / pis[0].shape[0]
    w, M = weights.flatten(), M.flatten()
    if bool((M[w > 0] <= 0).any()):
        raise HarlMiniError("pis_new: M is 0 where the old policy acts (π̄ drops an action π takes); log M is -inf")
    keep = w > 0
    log_m = torch.log(M[keep])
    w = w[keep]
    mean = float((w * M[keep]).sum())
    log_mean = float((w * log_m).sum())
    return {
        "log_m": log_m.numpy(),
        "weights": w.numpy(),
        "mean": mean,
        "std": math.sqrt(max(float((w * M[keep] ** 2).sum()) - mean**2, 0.0)),
        "log_mean": log_mean,
        "log_std": math.sqrt(max(float((w * log_m**2).sum()) - log_mean**2, 0.0)),
        "factors": int(m) - 1,
    }


def plot_m_distribution(dists: Mapping, ax=None, bins: int = 60, title=None):
    """Overlay the exact laws of log M (from :func:`m_factor_distribution`) as step histograms.

    Args:
        dists: label → a dict with ``log_m`` and ``weights`` (as returned by
            :func:`m_factor_distribution`).
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        bins: number of bins over the common range.
        title: optional Axes title.

    Returns:
        The matplotlib Axes.
    """
    dists = _mapping(dists, "dists")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 2:
        raise HarlMiniError(f"bins: expected an integer >= 2, got {bins!r}")
    data = {}
    for label, d in dists.items():
        if not isinstance(d, Mapping) or "log_m" not in d or "weights" not in d:
            raise HarlMiniError(f"dists[{label!r}]: expected a dict with 'log_m' and 'weights' "
                                "(from m_factor_distribution)")
        x = np.asarray(d["log_m"], dtype=float)
        w = np.asarray(d["weights"], dtype=float)
        if x.shape != w.shape or x.ndim != 1 or len(x) == 0:
            raise HarlMiniError(f"dists[{label!r}]: log_m and weights must be flat arrays of one length")
        data[label] = (x, w)
    lo = min(float(x.min()) for x, _ in data.values())
    hi = max(float(x.max()) for x, _ in data.values())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, int(bins) + 1)
    ax = _new_axes(ax, (5.6, 3.8))
    for k, (label, (x, w)) in enumerate(data.items()):
        ax.hist(x, bins=edges, weights=w, histtype="step", lw=1.6, color=f"C{k}", label=label)
    ax.axvline(0.0, color="0.3", ls="--", lw=1)
    ax.set_xlabel(r"$\log M$")
    ax.set_ylabel("probability under the old policy")
    if title is not None:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


# ---------------------------------------------------------------------------------------
# Recorded game runs
# ---------------------------------------------------------------------------------------


def _mean(xs):
    xs = [float(x) for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def game_results(folders) -> list[dict]:
    """Summaries of recorded game runs (``python -m harl_mini.marl.run``), one per (game, algorithm).

    Args:
        folders: run folders (each with ``metrics.csv`` and ``manifest.json``).

    Returns:
        A list of dicts, in the order first seen, with ``game``, ``algo``, ``seeds`` (sorted),
        ``j_star``, ``j_star_share``, ``final_j`` (list, by seed), ``solved`` (number of
        seeds with final J ≥ 0.99 J*), ``iterations_to_solve`` and ``wall_time_to_solve``
        (means over the solved seeds, or None), ``wall_time`` and ``steps_per_s`` (means).
    """
    from harl_mini.viz.runs import load_run

    if isinstance(folders, (str, Path)):
        folders = [folders]
    if not isinstance(folders, Iterable):
        raise HarlMiniError(f"folders: expected a list of run folders, got {type(folders).__name__}")
    groups: dict[tuple[str, str], list[dict]] = {}
    for f in folders:
        m = load_run(f)[1]
        for key in ("env", "algo", "final_j"):
            if key not in m:
                raise HarlMiniError(f"{f}: manifest.json has no {key!r} (not a recorded game run)")
        groups.setdefault((str(m["env"]).split(":", 1)[-1], str(m["algo"])), []).append(m)
    if not groups:
        raise HarlMiniError("folders: empty list (no run to summarise)")
    out = []
    for (game, algo), ms in groups.items():
        ms.sort(key=lambda m: m.get("seed", 0))
        solved = [m for m in ms if m.get("solved")]
        out.append({
            "game": game,
            "algo": algo,
            "seeds": [m.get("seed") for m in ms],
            "j_star": ms[0].get("j_star"),
            "j_star_share": ms[0].get("j_star_share"),
            "final_j": [float(m["final_j"]) for m in ms],
            "solved": len(solved),
            "iterations_to_solve": _mean(m.get("iterations_to_solve") for m in solved),
            "wall_time_to_solve": _mean(m.get("wall_time_to_solve") for m in solved),
            "wall_time": _mean(m.get("wall_time") for m in ms),
            "steps_per_s": _mean(m.get("steps_per_s") for m in ms),
        })
    return out


def game_results_table(summaries, algos=None, games=None, labels: Mapping | None = None,
                       references: bool = True, compact: bool = False) -> str:
    """A Markdown table: one row per game, one column per algorithm.

    Each cell reads ``k/n · I it · t s``: k of n seeds solved the game (final J ≥ 0.99 J*),
    in I iterations on average (solved seeds), t seconds of wall time to solve on average;
    an unsolved group shows its mean final J instead (``k/n · J = x``). A last row gives each
    algorithm's mean throughput (environment steps per second over all its runs in the table).
    ``compact=True`` drops the words and the unit (``k/n · I · t`` and ``k/n · x``, with narrow
    no-break spaces, so that a cell never wraps), for narrow columns; the caption must then say
    what the numbers are.

    Args:
        summaries: the list returned by :func:`game_results`.
        algos: column order (default: as first seen).
        games: row order (default: as first seen).
        labels: optional algorithm → column header (e.g. ``{"happo": "HAPPO"}``).
        references: include the columns J* and J*_share (False: a narrower table).
        compact: cells without the words "it" and "J =".

    Returns:
        The table as a Markdown string.
    """
    if not isinstance(summaries, list) or not summaries or not all(isinstance(s, Mapping) for s in summaries):
        raise HarlMiniError("summaries: expected the non-empty list returned by game_results")
    cells = {(s["game"], s["algo"]): s for s in summaries}
    algos = list(dict.fromkeys(s["algo"] for s in summaries)) if algos is None else list(algos)
    games = list(dict.fromkeys(s["game"] for s in summaries)) if games is None else list(games)
    for a in algos:
        if not any(k[1] == a for k in cells):
            raise HarlMiniError(f"algos: no runs of {a!r} (have: {', '.join(sorted({k[1] for k in cells}))})")
    labels = {} if labels is None else labels
    if not isinstance(labels, Mapping):
        raise HarlMiniError(f"labels: expected a dict algorithm -> column header, got {type(labels).__name__}")
    refs = ["$J^*$", "$J^*_{share}$"] if references else []
    head = ["game", *refs, *(str(labels.get(a, a)) for a in algos)]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]

    def num(x):
        return "–" if x is None else f"{x:.4g}"

    for g in games:
        row = [s for (gg, _), s in cells.items() if gg == g]
        if not row:
            raise HarlMiniError(f"games: no runs on {g!r}")
        parts = [g, num(row[0]["j_star"]), num(row[0]["j_star_share"])] if references else [g]
        for a in algos:
            s = cells.get((g, a))
            if s is None:
                parts.append("–")
            elif s["solved"]:
                it, unit, dot = ("", "", "\u202f·\u202f") if compact else (" it", " s", " · ")
                parts.append(f"{s['solved']}/{len(s['seeds'])}{dot}{s['iterations_to_solve']:.0f}{it}{dot}"
                             f"{s['wall_time_to_solve']:.1f}{unit}")
            else:
                mean_j = sum(s["final_j"]) / len(s["final_j"])
                parts.append(f"0/{len(s['seeds'])}\u202f·\u202f{mean_j:.3g}" if compact else
                             f"0/{len(s['seeds'])} · J = {mean_j:.4g}")
        lines.append("| " + " | ".join(parts) + " |")
    speeds = []
    for a in algos:
        vals = [s["steps_per_s"] for (g, aa), s in cells.items() if aa == a and g in games and s["steps_per_s"]]
        speeds.append("–" if not vals else f"{sum(vals) / len(vals):,.0f}")
    lines.append("| steps/s (mean) | " + "| " * len(refs) + " | ".join(speeds) + " |")
    return "\n".join(lines) + "\n"


def load_bench(path) -> tuple[list[dict], list[str]]:
    """Read the output of ``python -m harl_mini.marl.bench`` saved as a text file.

    Args:
        path: the file (e.g. ``results/games/bench.txt``).

    Returns:
        ``(rows, header)``: one dict per table row with ``mode`` (``"env"`` or ``"train"``),
        ``game``, ``algo`` (None for ``env`` rows), ``num_envs`` and ``steps_per_s`` (ints);
        and the file's ``#`` comment lines (provenance), without the ``#``.
    """
    path = Path(path) if isinstance(path, (str, Path)) else None
    if path is None or not path.is_file():
        raise HarlMiniError(f"path: no benchmark file at {path!s} (write one with "
                            "`python -m harl_mini.marl.bench > results/games/bench.txt`)")
    rows, header = [], []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            header.append(line[1:].strip())
            continue
        parts = line.split()
        if len(parts) == 5 and parts[0] in ("env", "train"):
            try:
                num_envs, speed = int(parts[3].replace(",", "")), int(parts[4].replace(",", ""))
            except ValueError:
                continue
            rows.append({"mode": parts[0], "game": parts[1], "algo": None if parts[2] == "-" else parts[2],
                         "num_envs": num_envs, "steps_per_s": speed})
    if not rows:
        raise HarlMiniError(f"{path}: no benchmark rows (expected lines 'mode game algorithm num_envs steps/s')")
    return rows, header


# ---------------------------------------------------------------------------------------
# Random instances of the chapter's checks
# ---------------------------------------------------------------------------------------

#: (states, actions per agent, γ) of the random games of Chapter 8's checks: three and four
#: agents, unequal action counts, discounts from 0.5 to 0.99.
CHECK_SHAPES = ((2, (2, 3, 2), 0.9), (3, (3, 2, 2, 2), 0.8), (2, (2, 2, 3), 0.95),
                (3, (2, 4, 3), 0.5), (2, (3, 2, 2, 3), 0.9), (4, (2, 3, 2), 0.99))


def _count(x, name: str, low: int = 0) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < low:
        raise HarlMiniError(f"{name}: expected an integer >= {low}, got {x!r}")
    return int(x)


def _generator(g) -> torch.Generator:
    if not isinstance(g, torch.Generator):
        raise HarlMiniError(f"generator: expected a torch.Generator, got {type(g).__name__}")
    return g


def check_game(k: int):
    """Random game number ``k`` of Chapter 8's checks (:func:`harl_mini.tabular.random_game`).

    Shape ``CHECK_SHAPES[k % 6]``, seed 800 + k, shared rewards uniform in [−1, 1]; sparse
    transitions (two successor states) for even k, dense ones for odd k.
    """
    from harl_mini import tabular

    k = _count(k, "k")
    S, counts, gamma = CHECK_SHAPES[k % len(CHECK_SHAPES)]
    return tabular.random_game(S, counts, gamma=gamma, seed=800 + k, branching=None if k % 2 else 2,
                               reward_range=(-1.0, 1.0))


def soft_policies(game, seed: int, concentration: float = 1.0, floor: float = 1e-3) -> list[torch.Tensor]:
    """Random strictly positive policies: Dirichlet(``concentration``) rows, softened to ``floor``.

    :func:`harl_mini.tabular.random_policies` mixed with the uniform policy by
    :func:`harl_mini.tabular.hatrpo.soften` (eq. ``eq-eta-soft``), so every entry is ≥ ``floor``.
    """
    from harl_mini import tabular
    from harl_mini.tabular import hatrpo

    pis = tabular.random_policies(_game(game), seed=seed, concentration=concentration)
    return hatrpo.soften(pis, _real(floor, "floor", 0.0))


def perturb_policies(pis, generator: torch.Generator, sigma: float) -> list[torch.Tensor]:
    """New policies softmax(log π^i + σ z^i), z^i standard normal from ``generator``: near π for small σ.

    Args:
        pis: strictly positive policies, one [S, n_i] table per agent.
        generator: the source of z (the same generator state gives the same policies).
        sigma: the size of the move in log-probability, ≥ 0.

    Returns:
        One [S, n_i] float64 table per agent.
    """
    from harl_mini.tabular import game as _g

    pis = _g._check_policy_list(pis, "pis")
    if any(bool((p <= 0).any()) for p in pis):
        raise HarlMiniError("pis: expected strictly positive policies (log π is taken)")
    generator, sigma = _generator(generator), _real(sigma, "sigma", 0.0)
    noise = [torch.randn(p.shape, generator=generator, dtype=DTYPE) for p in pis]
    return [torch.softmax(p.log() + sigma * z, -1) for p, z in zip(pis, noise)]


def random_order(n: int, generator: torch.Generator) -> tuple[int, ...]:
    """A uniformly random order of ``n`` agents: ``torch.randperm(n, generator=generator)`` as a tuple."""
    n = _count(n, "n", 1)
    return tuple(int(i) for i in torch.randperm(n, generator=_generator(generator)))


# ---------------------------------------------------------------------------------------
# Lemma 2 and HAML: two small pictures
# ---------------------------------------------------------------------------------------


def plot_surrogate_error(err, ax=None, bins: int = 40, title=None):
    """Histogram (log counts) of (J(π̄) − L_π(π̄)) / penalty over the draws of Lemma 2's check.

    TRPO's bound gives |J(π̄) − L_π(π̄)| ≤ C D_KL^max(π, π̄) ≤ the penalty of Lemma 2, so every
    value lies in [−1, 1]; values near 0 mean that the slack of the bound is almost all penalty.

    Args:
        err: [D] values (J(π̄) − L_π(π̄)) / (C Σ_m D_KL^max(π^{i_m}, π̄^{i_m})).
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        bins: number of bins.
        title: optional Axes title.

    Returns:
        The matplotlib Axes.
    """
    e = as_float64(err, "err").numpy()
    if e.ndim != 1 or len(e) == 0:
        raise HarlMiniError(f"err: expected a non-empty array of shape [D], got {list(e.shape)}")
    bins = _count(bins, "bins", 2)
    ax = _new_axes(ax, (5.6, 3.8))
    ax.hist(e, bins=bins, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel(r"$(J(\bar\pi) - L_\pi(\bar\pi))\ /\ $penalty")
    ax.set_ylabel("draws")
    if title is not None:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return ax


def plot_haml_progress(runs: Mapping, ax=None, title=None):
    """Normalised progress (J(π_k) − J(π_0)) / (J* − J(π_0)) of exact runs, one colour per label.

    Args:
        runs: label → list of ``(J, J_star)`` pairs, J the [K + 1] values J(π_0), …, J(π_K) of
            one run (e.g. ``HAMLRun.J``) and J_star > J(π_0) the optimum of its game.
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        title: optional Axes title.

    Returns:
        The matplotlib Axes.
    """
    runs = _mapping(runs, "runs")
    ax = _new_axes(ax, (5.6, 3.8))
    for k, (label, pairs) in enumerate(runs.items()):
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Iterable):
            raise HarlMiniError(f"runs[{label!r}]: expected a list of (J, J_star) pairs")
        for r, pair in enumerate(pairs):
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise HarlMiniError(f"runs[{label!r}][{r}]: expected a pair (J, J_star)")
            J = as_float64(pair[0], f"runs[{label!r}][{r}][0]").numpy()
            J_star = _real(pair[1], f"runs[{label!r}][{r}][1]")
            if J.ndim != 1 or len(J) < 1 or J_star <= J[0]:
                raise HarlMiniError(f"runs[{label!r}][{r}]: expected J of shape [K + 1] with J(π_0) < J_star")
            ax.plot(np.arange(len(J)), (J - J[0]) / (J_star - J[0]), color=f"C{k}", lw=1,
                    label=label if r == 0 else None)
    ax.set_xlabel("iteration $k$")
    ax.set_ylabel(r"share of $J^* - J(\pi_0)$ gained")
    if title is not None:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


# ---------------------------------------------------------------------------------------
# The spread of M with many agents
# ---------------------------------------------------------------------------------------


def two_action_step(delta: float, n: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``n`` two-action agents that move from (1/2, 1/2) to (p, 1 − p) with KL = δ each (one state).

    p = (1 + √(1 − e^{−2δ})) / 2 solves D_KL((1/2, 1/2) ‖ (p, 1 − p)) = −½ log(4p(1 − p)) = δ;
    then χ²(π̄ ‖ π) = (2p − 1)² = 1 − e^{−2δ}.

    Returns:
        ``(old, new)``: two lists of n [1, 2] float64 tables.
    """
    delta, n = _real(delta, "delta", 0.0), _count(n, "n", 1)
    p = 0.5 * (1 + math.sqrt(1 - math.exp(-2 * delta)))
    return ([torch.tensor([[0.5, 0.5]], dtype=DTYPE)] * n, [torch.tensor([[p, 1 - p]], dtype=DTYPE)] * n)


def m_std_growth(delta: float, positions) -> np.ndarray:
    """Standard deviation of M/A for the agent at position m of the order, for each m in ``positions``.

    M/A is a product of m − 1 independent ratios with mean 1 and E[ξ²] = 1 + χ², so
    Var[M/A] = (1 + χ²)^{m−1} − 1. Here every earlier agent takes the step of
    :func:`two_action_step`: χ² = 1 − e^{−2δ}.
    """
    delta = _real(delta, "delta", 0.0)
    m = np.asarray(positions, dtype=float)
    if m.ndim != 1 or len(m) == 0 or np.any(m < 1):
        raise HarlMiniError("positions: expected a non-empty list of positions m >= 1")
    chi2 = 1 - math.exp(-2 * delta)
    return np.sqrt((1 + chi2) ** (m - 1) - 1)


def plot_m_spread(deltas, positions, ax=None, title=None):
    """Standard deviation of M/A against the position m (log scale), one line per per-agent KL δ.

    The closed form of :func:`m_std_growth`.

    Returns:
        The matplotlib Axes.
    """
    if isinstance(deltas, (str, bytes)) or not isinstance(deltas, Iterable):
        raise HarlMiniError(f"deltas: expected a list of per-agent KL values, got {deltas!r}")
    deltas = [_real(d, "deltas", 0.0) for d in deltas]
    if not deltas:
        raise HarlMiniError("deltas: expected at least one value")
    m = np.asarray(positions, dtype=float)
    ax = _new_axes(ax, (5.6, 3.8))
    for delta in deltas:
        std = m_std_growth(delta, m)
        ax.semilogy(m[std > 0], std[std > 0], label=f"per-agent KL δ = {delta:g}")
    ax.set_xlabel("position $m$ of the agent in the order")
    ax.set_ylabel("standard deviation of $M / A$")
    if title is not None:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


# ---------------------------------------------------------------------------------------
# Runs: live rows, the recorded game runs, provenance, benchmark, sources
# ---------------------------------------------------------------------------------------


def plot_run_metrics(runs: Mapping, key: str, ax=None, ylabel=None, title=None, x: str = "iteration"):
    """One line per run: column ``key`` of its rows against column ``x``.

    Args:
        runs: label → the rows of one run (a list of dicts, e.g. ``History.rows`` of
            :func:`harl_mini.marl.train`).
        key, x: the columns to draw.
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        ylabel, title: optional labels.

    Returns:
        The matplotlib Axes.
    """
    runs = _mapping(runs, "runs")
    ax = _new_axes(ax, (5.6, 3.8))
    for label, rows in runs.items():
        if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
            raise HarlMiniError(f"runs[{label!r}]: expected a list of row dicts")
        rows = list(rows)
        missing = [c for c in (key, x) if not rows or any(c not in r for r in rows)]
        if missing:
            raise HarlMiniError(f"runs[{label!r}]: rows without the column {missing[0]!r}")
        ax.plot([r[x] for r in rows], [r[key] for r in rows], label=label)
    ax.set_xlabel(x)
    ax.set_ylabel(key if ylabel is None else ylabel)
    if title is not None:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_game_grid(recorded: Mapping, a1a2: Mapping, labels: Mapping, games, xlim: int = 60,
                   full_length=("climbing",), a1a2_exact=(-0.0625, 0.9375, -0.5625)):
    """The recorded runs on the matrix games, one panel per game, and the a¹a² game's first steps.

    Each game panel draws every method's runs (mean and range over seeds) with J* and J*_share
    dashed (:func:`harl_mini.viz.marl.plot_game_runs`), for ``xlim`` iterations (all of them
    for the games in ``full_length``). The last panel draws J before and after the first two
    iterations of every run on the a¹a² game (in the colours of the methods), with the exact
    sequential and simultaneous values after one step. One legend for the figure, below the
    panels (the mean of each method; its band is the min–max range over seeds); column-wide,
    two panels a row.

    Args:
        recorded: (variant, game) → list of run folders.
        a1a2: variant → list of run folders on the a¹a² game.
        labels: variant → label (the order of the legend and the colours C0, C1, …).
        games: the games, in panel order.
        xlim: iterations shown for most games.
        full_length: games drawn in full.
        a1a2_exact: J at the start, after the exact sequential step and after the exact
            simultaneous step of the a¹a² game (Chapter 7).

    Returns:
        The figure.
    """
    from harl_mini.viz import marl as viz_marl
    from harl_mini.viz import runs as viz_runs
    from harl_mini.viz.style import figure

    recorded, labels = _mapping(recorded, "recorded"), _mapping(labels, "labels")
    if not isinstance(a1a2, Mapping):
        raise HarlMiniError(f"a1a2: expected a dict variant -> run folders, got {type(a1a2).__name__}")
    games = list(games)
    colours = {label: f"C{k}" for k, label in enumerate(labels.values())}
    rows = (len(games) + 2) // 2
    fig, axes = figure(2, rows, height=2.2)
    axes = np.atleast_1d(axes).reshape(-1)
    for ax, gm in zip(axes, games):
        groups = {labels[v]: recorded.get((v, gm), []) for v in labels if recorded.get((v, gm))}
        if not groups:
            ax.set_title(gm)
            ax.text(0.5, 0.5, "not recorded yet", ha="center", transform=ax.transAxes)
            continue
        ref = viz_runs.load_run(next(iter(groups.values()))[0])[1]
        viz_marl.plot_game_runs(groups, ref["j_star"], ref["j_star_share"], ax=ax, title=gm, legend=False,
                                colors=colours)
        if gm not in full_length:
            ax.set_xlim(0, xlim)
    ax = axes[len(games)]
    start, seq, sim = (_real(v, "a1a2_exact") for v in a1a2_exact)
    for v, folders in a1a2.items():  # in the colours of the methods (the figure legend names them)
        for f in folders:
            J = np.concatenate([[start], viz_runs.load_run(f)[0]["j_exact"][:2]])
            ax.plot(np.arange(3), J, "o-", ms=3, lw=1, color=colours.get(labels.get(v, v), "0.5"))
    ax.plot([1, 1], [seq, sim], "kx", ms=8, label="exact sequential / simultaneous ($a^1a^2$)")
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xticks([0, 1, 2])
    ax.set_title("$a^1a^2$ game, steps of KL 0.5")
    ax.set_xlabel("iteration")
    ax.set_ylabel(r"exact $J = \mu^1\mu^2$")
    ax.grid(True, alpha=0.3)
    for extra in axes[len(games) + 1:]:
        extra.set_visible(False)
    handles, names = [], []
    for a in axes[:len(games) + 1]:
        for h, n in zip(*a.get_legend_handles_labels()):
            if "min–max" in n:  # the bands: one word in the text below the figure is enough
                continue
            n = n.removesuffix(", mean")
            if n not in names:
                handles.append(h)
                names.append(n)
    fig.legend(handles, names, loc="outside lower center", ncol=4, fontsize=8)
    return fig


def games_provenance(manifests) -> str:
    """One Markdown paragraph saying where the recorded game runs came from.

    Seeds, environment steps per run (the a¹a² game apart), total wall time, commits (marked
    when the tree had uncommitted changes), CPUs, torch threads and version, from the runs'
    ``manifest.json`` (:func:`harl_mini.viz.runs.load_run`).
    """
    if isinstance(manifests, Mapping) or not isinstance(manifests, Iterable):
        raise HarlMiniError("manifests: expected a list of manifest dicts")
    ms = list(manifests)
    if not ms or not all(isinstance(m, Mapping) for m in ms):
        raise HarlMiniError("manifests: expected a non-empty list of manifest dicts")
    try:
        commits = sorted({m["git_commit"][:7] + (" (uncommitted changes)" if m.get("git_dirty") else "")
                          for m in ms})
        cpus = sorted({f"{m['cpu']} ({m['cpu_count']} cores)" for m in ms})
        torch_v = sorted({m["versions"]["torch"] for m in ms})
        threads = sorted({m["torch_threads"] for m in ms})
        seeds = sorted({m["seed"] for m in ms})
        steps = sorted({m["steps"] for m in ms if m["env"] != "game:a1a2"})
        steps_a1a2 = sorted({m["steps"] for m in ms if m["env"] == "game:a1a2"})
        wall = sum(m["wall_time"] for m in ms)
    except (KeyError, TypeError) as exc:
        raise HarlMiniError(f"manifests: a manifest lacks {exc} (not a recorded run)") from None
    a1a2 = f" ({', '.join(f'{s:,}' for s in steps_a1a2)} on the $a^1a^2$ game)" if steps_a1a2 else ""
    return (f"**Provenance.** {len(ms)} runs, seeds {', '.join(map(str, seeds))};"
            f" {', '.join(f'{s:,}' for s in steps)} env steps per run{a1a2};"
            f" total wall time {wall:.0f} s; commit {', '.join(commits)}; {'; '.join(cpus)},"
            f" {'/'.join(map(str, threads))} torch thread; torch {'/'.join(torch_v)}.")


def bench_table(rows) -> tuple[str, dict]:
    """The benchmark of :func:`load_bench` as a Markdown table: one row per (game, method).

    Returns:
        ``(table, speed)``: the table (thousands of environment steps per second, one column
        per number of parallel copies) and ``speed[(game, algo, num_envs)]`` = steps per second
        (``algo`` None for the environment alone).
    """
    if not isinstance(rows, list) or not rows or not all(isinstance(r, Mapping) for r in rows):
        raise HarlMiniError("rows: expected the non-empty list of rows returned by load_bench")
    sizes = sorted({r["num_envs"] for r in rows})
    speed = {(r["game"], r["algo"], r["num_envs"]): r["steps_per_s"] for r in rows}
    table = ["| game | method | " + " | ".join(f"{n:,} copies" for n in sizes) + " |",
             "|---|---|" + "---|" * len(sizes)]
    for gm, algo in dict.fromkeys((r["game"], r["algo"]) for r in rows):
        cells = [f"{speed[gm, algo, n] / 1e3:,.0f} k" if (gm, algo, n) in speed else "–" for n in sizes]
        table.append(f"| {gm} | {algo or 'environment only'} | " + " | ".join(cells) + " |")
    return "\n".join(table) + "\n", speed


def source_table(items) -> str:
    """A Markdown table of where functions live: what, ``file:line`` and the qualified name.

    Args:
        items: (what, function) pairs; decorated functions are unwrapped. Paths are shown
            from the package's parent folder (``harl_mini/marl/runner.py``).
    """
    import inspect

    import harl_mini

    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise HarlMiniError("items: expected a list of (what, function) pairs")
    root = Path(harl_mini.__file__).resolve().parents[1]
    lines = ["| what | where | function |", "|---|---|---|"]
    for pair in items:
        if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[1])):
            raise HarlMiniError(f"items: expected (what, function) pairs, got {pair!r:.80}")
        what, fn = pair
        fn = inspect.unwrap(fn)
        path = Path(inspect.getsourcefile(fn)).resolve()
        try:
            path = path.relative_to(root)
        except ValueError:
            pass
        line = inspect.getsourcelines(fn)[1]
        lines.append(f"| {what} | `{path.as_posix()}:{line}` | `{fn.__qualname__}` |")
    return "\n".join(lines) + "\n"
