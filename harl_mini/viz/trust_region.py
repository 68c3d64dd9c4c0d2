"""Pictures of the trust region (Chapters 4 and 5): static figures and the widgets built on them.

Each picture is a pure function that computes its curves exactly, with the tabular oracle
and :mod:`harl_mini.tabular.trpo`, and draws them on a matplotlib Axes. Each explorer
(:mod:`harl_mini.viz.explorer`) calls the same function over a small grid of values, so the
live widget in a kernel and the precomputed frames of the HTML book show the same pictures.

Contents:

* :func:`plot_clip_objective` — PPO's clipped objective min(ξ A, clip(ξ, 1−ε, 1+ε) A) as a
  function of the probability ratio ξ (the PPO paper's r_t), for A > 0 or A < 0, with
  ε = ε_clip; :func:`clip_objective_explorer` adds an ε slider;
* :func:`trpo_bound_curves` / :func:`plot_trpo_bound` — J(π̃), L_π(π̃), the two lower
  bounds of TRPO's Theorem 1 and the two-sided sharp band, along a path of softmax
  policies θ + t·direction moving away from π;
* :func:`plot_trpo_step` — one exact TRPO step (``tabular.trpo.exact_trpo_step``) along its
  search direction: the surrogate gain and its linear model, the mean KL and its quadratic
  model, and every fraction the line search tried; :func:`trpo_step_explorer` adds a δ
  slider;
* :func:`ppo_path_curves` / :func:`plot_ppo_path` — PPO's exact clipped objective next to
  TRPO's surrogate gain, the true improvement and the mean KL along such a path;
* :func:`trpo_bound_explorer` — a γ slider over :func:`plot_trpo_bound` with the mean-KL bound
  of Achiam et al. drawn next to Theorem 1's;
* :func:`plot_surrogate_error` — the error |J − L| of many policy pairs against the sharp
  bound of Theorem 1, and what the sharp form saves over Cα²;
* :func:`plot_return_curves` — J(π_i) over iterations for several update rules, with J*;
* :func:`plot_kl_penalty_run` — PPO's adaptive KL coefficient and the mean KL it produces;
* :func:`tagged_lines` / :func:`tagged_lines_listing` — the source lines of an algorithm file
  tagged ``# [k]`` (the implementation-details lists of Chapters 4 and 5).

Paths: θ(t) = θ + t·direction with the natural gradient F⁺∇J as the default direction, the
direction a TRPO step takes.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from harl_mini.errors import HarlMiniError
from harl_mini.viz._common import new_axes as _new_axes

__all__ = [
    "plot_clip_objective",
    "clip_objective_explorer",
    "trpo_bound_curves",
    "plot_trpo_bound",
    "plot_trpo_step",
    "trpo_step_explorer",
    "ppo_path_curves",
    "plot_ppo_path",
    "trpo_bound_explorer",
    "plot_surrogate_error",
    "plot_return_curves",
    "plot_kl_penalty_run",
    "tagged_lines",
    "tagged_lines_listing",
]

# verdict of a line-search fraction -> (marker, colour)
_VERDICT_STYLE = {
    "accepted": ("*", "tab:green"),
    "kl > delta": ("x", "tab:red"),
    "no improvement": ("v", "tab:orange"),
    "improvement below accept_ratio * expected": ("v", "tab:purple"),
    "non-finite": ("X", "black"),
}




def _real(x, name: str, low: float | None = None, high: float | None = None, open_low: bool = False) -> float:
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        x = float(x)
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
        raise HarlMiniError(f"{name}: expected a finite number, got {x!r}")
    x = float(x)
    if low is not None and (x <= low if open_low else x < low):
        raise HarlMiniError(f"{name}: must be {'>' if open_low else '>='} {low:g}, got {x!r}")
    if high is not None and x > high:
        raise HarlMiniError(f"{name}: must be <= {high:g}, got {x!r}")
    return x


# ---------------------------------------------------------------------------------------
# PPO's clip as a function of the ratio
# ---------------------------------------------------------------------------------------


def plot_clip_objective(clip_eps: float = 0.2, adv_sign: int = 1, ax=None, r_max: float = 2.0):
    """Draw min(ξ A, clip(ξ, 1−ε, 1+ε) A) against the ratio ξ for one advantage A = ±1.

    The curve is computed by :func:`harl_mini.losses.ppo_clip_objective`, the function the
    PPO loss uses. The unclipped surrogate ξ·A is drawn dashed, the band [1−ε, 1+ε] is
    shaded, and the part of the ξ axis where the objective is flat (gradient 0, no
    incentive to move further) is marked in red.

    Args:
        clip_eps: ε = ε_clip ∈ [0, 1).
        adv_sign: +1 (A = 1, a good action) or −1 (A = −1, a bad one).
        ax: matplotlib Axes; a new figure is created when omitted.
        r_max: right end of the ξ axis (> 1 + ε).

    Returns:
        The matplotlib Axes.
    """
    from harl_mini.losses import ppo_clip_objective

    eps = _real(clip_eps, "clip_eps", 0.0, None)
    if eps >= 1.0:
        raise HarlMiniError(f"clip_eps: must be < 1, got {clip_eps!r}")
    if adv_sign not in (1, -1) or isinstance(adv_sign, bool):
        raise HarlMiniError(f"adv_sign: expected +1 or -1, got {adv_sign!r}")
    r_max = _real(r_max, "r_max", 1.0 + eps, None, open_low=True)
    ax = _new_axes(ax, (5.0, 3.6))
    r = torch.linspace(0.0, r_max, 401, dtype=torch.float64)
    A = torch.full_like(r, float(adv_sign))
    clipped = ppo_clip_objective(r, A, eps)
    ax.axvspan(1 - eps, 1 + eps, color="tab:blue", alpha=0.08, lw=0, label=r"$[1-\epsilon_{\mathrm{clip}},\,1+\epsilon_{\mathrm{clip}}]$")
    ax.plot(r, r * A, ls="--", color="0.5", lw=1.2, label=r"$\xi\,A$ (unclipped)")
    ax.plot(r, clipped, color="tab:blue", lw=2.2, label=r"$\min(\xi A,\ \mathrm{clip}(\xi)A)$")
    flat = (r > 1 + eps) if adv_sign > 0 else (r < 1 - eps)
    ax.plot(r[flat], clipped[flat], color="tab:red", lw=3.0, alpha=0.7, label="flat: gradient 0")
    ax.plot([1.0], [float(adv_sign)], "o", color="k", ms=4)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel(r"ratio $\xi = \pi_\theta(a|s) / \pi_{\theta_{old}}(a|s)$")
    ax.set_ylabel("objective")
    ax.set_title(f"$A {'>' if adv_sign > 0 else '<'} 0$ (A = {adv_sign:+d}), $\\epsilon_{{clip}}$ = {eps:g}")
    ax.set_xlim(0.0, r_max)
    ax.legend(fontsize=8, loc="upper left" if adv_sign > 0 else "lower left")
    ax.grid(True, alpha=0.3)
    return ax


def clip_objective_explorer(clip_eps: float = 0.2):
    """An ε slider that redraws :func:`plot_clip_objective` for A > 0 and A < 0 side by side.

    ε steps through {0.05, 0.1, ..., 0.5} (the start value is added); every frame is drawn when
    the cell runs, so the HTML book shows the same pictures without a kernel
    (:mod:`harl_mini.viz.explorer`).

    Returns:
        An :class:`~harl_mini.viz.explorer.Explorer`.
    """
    from harl_mini.viz.explorer import Slider, explore
    from harl_mini.viz.style import figure

    eps0 = _real(clip_eps, "clip_eps", 0.0, 0.5)

    def draw(clip_eps):
        fig, axes = figure(2)
        plot_clip_objective(clip_eps, +1, ax=axes[0])
        plot_clip_objective(clip_eps, -1, ax=axes[1])
        return fig

    return explore(draw, Slider("clip_eps", "ε", [round(0.05 * k, 10) for k in range(1, 11)], eps0),
                   alt="PPO's clipped objective against the probability ratio, for a positive and a negative advantage")


# ---------------------------------------------------------------------------------------
# Paths of policies, and TRPO's bound along them
# ---------------------------------------------------------------------------------------


def _path(mdp, theta, direction, ts):
    from harl_mini import tabular
    from harl_mini.tabular.softmax import _theta

    mdp = tabular.mdp._mdp(mdp)
    theta = _theta(theta, mdp).detach()
    if direction is None:
        direction = tabular.natural_gradient(mdp, theta)
    direction = _theta(direction, mdp, "direction").detach()
    if not bool(direction.any()):
        raise HarlMiniError("direction: is zero (θ is a stationary point); pass a non-zero direction")
    if ts is None:
        ts = np.linspace(0.0, 1.0, 41)
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size < 2 or not np.all(np.isfinite(ts)):
        raise HarlMiniError(f"ts: expected a 1-d array of at least 2 finite path parameters, "
                            f"got shape {list(ts.shape)}")
    return mdp, theta, direction, ts


def trpo_bound_curves(mdp, theta, direction=None, ts=None) -> dict[str, np.ndarray]:
    """TRPO's quantities along θ(t) = θ + t·direction, computed exactly.

    Args:
        mdp: a :class:`~harl_mini.tabular.FiniteMDP`.
        theta: logits [S, A] of the old policy π = softmax(θ).
        direction: [S, A]; default the natural gradient F⁺∇J at θ.
        ts: path parameters; default 41 values in [0, 3t*], where t* (found on a coarse
            logarithmic grid) maximises the KL bound L − C·D_KL^max along the path.

    Returns:
        A dict of arrays over ``t``: ``J`` = J(π̃_t), ``L`` = L_π(π̃_t), ``tv_bound`` =
        L − C·α², ``kl_bound`` = L − C·D_KL^max, ``sharp`` = the two-sided error bound of
        the proof, ``alpha`` = D_TV^max, ``kl_max``, ``mean_kl`` (under d_π) and ``C``.
    """
    from harl_mini import tabular
    from harl_mini.tabular import trpo

    auto = ts is None
    mdp, theta, direction, ts = _path(mdp, theta, direction, ts)
    pi = tabular.softmax_policy(theta)
    d = tabular.state_distribution(mdp, pi)
    C = float(trpo.penalty_constant(mdp, pi))
    if auto:  # [0, 3 t*], t* = the maximiser of the KL bound along the path (coarse log grid)
        grid = np.logspace(-6, 1, 57)
        vals = [float(trpo.trpo_lower_bound(mdp, pi, tabular.softmax_policy(theta + float(t) * direction)))
                for t in grid]
        ts = np.linspace(0.0, 3.0 * float(grid[int(np.argmax(vals))]), 41)
    keys = ("J", "L", "tv_bound", "kl_bound", "sharp", "alpha", "kl_max", "mean_kl", "mean_kl_bound")
    out = {k: np.empty(len(ts)) for k in keys}
    for i, t in enumerate(ts):
        q = tabular.softmax_policy(theta + float(t) * direction)
        out["J"][i] = float(tabular.objective(mdp, q))
        out["L"][i] = float(trpo.surrogate(mdp, pi, q))
        out["alpha"][i] = float(tabular.tv_max(pi, q))
        out["kl_max"][i] = float(tabular.kl_max(pi, q))
        out["mean_kl"][i] = float(tabular.mean_kl(pi, q, d))
        out["tv_bound"][i] = out["L"][i] - C * out["alpha"][i] ** 2
        out["kl_bound"][i] = out["L"][i] - C * out["kl_max"][i]
        out["sharp"][i] = float(trpo.sharp_bound(mdp, pi, q))
        out["mean_kl_bound"][i] = float(trpo.mean_kl_lower_bound(mdp, pi, q))
    out["t"] = ts
    out["C"] = np.full(len(ts), C)
    return out


def plot_trpo_bound(mdp, theta, direction=None, ts=None, ax=None, sharp: bool = True, title=None,
                    mean_kl: bool = False, curves=None):
    """Draw J(π̃), L_π(π̃) and TRPO's lower bounds along a path of policies.

    The KL bound L − C·D_KL^max is the minoriser of TRPO's Algorithm 1: it touches J at
    t = 0 and lies below J everywhere. With ``sharp=True`` the band L ± (sharp bound)
    is shaded: Theorem 1's proof puts J inside it. With ``mean_kl=True`` the mean-KL bound
    (Chapter 4, eq. ``eq-mean-kl-bound``) is drawn too. ``curves``: the dict of
    :func:`trpo_bound_curves` when it has been computed already.

    Returns:
        The matplotlib Axes.
    """
    c = trpo_bound_curves(mdp, theta, direction, ts) if curves is None else curves
    ax = _new_axes(ax, (5.6, 3.8))
    t = c["t"]
    if sharp:
        ax.fill_between(t, c["L"] - c["sharp"], c["L"] + c["sharp"], color="tab:orange", alpha=0.15, lw=0,
                        label=r"$L \pm$ sharp bound")
    ax.plot(t, c["J"], color="k", lw=2.2, label=r"$J(\tilde\pi)$")
    ax.plot(t, c["L"], color="tab:orange", lw=1.6, label=r"$L_\pi(\tilde\pi)$")
    ax.plot(t, c["tv_bound"], color="tab:green", lw=1.4, ls="-.", label=r"$L - C\,\alpha^2$")
    ax.plot(t, c["kl_bound"], color="tab:blue", lw=1.6, ls="--", label=r"$L - C\,D_{KL}^{\max}$")
    if mean_kl:
        ax.plot(t, c["mean_kl_bound"], color="tab:purple", lw=1.6, ls=":",
                label=r"mean-KL bound ($\sqrt{\bar D_{KL}}$)")
    lo = min(float(c["J"].min()), float(c["L"].min()))
    hi = max(float(c["J"].max()), float(c["L"].max()))
    pad = 0.6 * (hi - lo) + 1e-9
    ax.set_ylim(lo - pad, hi + 0.25 * pad)
    ax.set_xlabel(r"path parameter $t$ ($\theta + t\cdot$direction)")
    ax.set_ylabel("return")
    ax.set_title(title if title is not None else f"C = {float(c['C'][0]):.3g}")
    ax.legend(loc="upper left")
    ax.grid(True, alpha=0.3)
    return ax


def trpo_bound_explorer(num_states: int = 5, num_actions: int = 3, seed: int = 3, gamma: float = 0.5):
    """A γ slider over :func:`plot_trpo_bound` (with the mean-KL bound) on one random MDP.

    The MDP is ``tabular.random_mdp(num_states, num_actions, gamma, seed)`` (the same P, R and
    ρ0 for every γ), the old policy uniform, the path θ + t·F⁺∇J along the natural gradient
    with t ∈ [0, 3t*] (t* maximises Theorem 1's KL bound, so the window shrinks as C grows).
    γ steps through {0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99}; every frame is drawn when the cell
    runs (:mod:`harl_mini.viz.explorer`).

    Returns:
        An :class:`~harl_mini.viz.explorer.Explorer`.
    """
    from harl_mini import tabular
    from harl_mini.viz.explorer import Slider, explore
    from harl_mini.viz.style import figure

    gamma0 = _real(gamma, "gamma", 0.0, 0.99)

    def draw(gamma):
        m = tabular.random_mdp(num_states, num_actions, gamma=gamma, seed=seed)
        theta = torch.zeros(num_states, num_actions, dtype=torch.float64)
        fig, ax = figure(1, height=3.4)
        c = trpo_bound_curves(m, theta)
        plot_trpo_bound(m, theta, ax=ax, curves=c, mean_kl=True,
                        title=f"γ = {gamma:g}, C = {float(c['C'][0]):.3g} (uniform π, natural-gradient path)")
        return fig

    return explore(draw, Slider("gamma", "γ", (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99), gamma0),
                   alt="J, the surrogate and the lower bounds of Theorem 1 and of the mean KL along the "
                       "natural-gradient path, for a range of discounts")


# ---------------------------------------------------------------------------------------
# One exact TRPO step, and its line search
# ---------------------------------------------------------------------------------------


def plot_trpo_step(mdp, theta, delta, axes=None, f_max: float = 1.3, log_scale: bool = False, **step_kwargs):
    """Run one exact TRPO step and draw it along its search direction.

    Calls :func:`harl_mini.tabular.trpo.exact_trpo_step` (``step_kwargs`` are passed on),
    then evaluates, for fractions f ∈ [0, f_max] of the full step β·s, the exact surrogate
    gain L(θ + fβs) − L(θ) with its linear model f·gᵀβs (left Axes), and the exact mean
    KL under d_π with its quadratic model f²·δ (right Axes). Every fraction the line search
    tried is marked with its verdict; the accepted one is a green star.

    Args:
        axes: a pair of Axes (gain, KL); a new figure is created when omitted.
        f_max: right end of the fraction axis.
        log_scale: a logarithmic fraction axis, from f_max/1000 to f_max (for steps whose KL
            explodes within the first percent of the full step).

    Returns:
        The :class:`~harl_mini.trust_region.TRPOStepResult` of the step.
    """
    import matplotlib.pyplot as plt

    from harl_mini import tabular
    from harl_mini.tabular import trpo

    delta = _real(delta, "delta", 0.0, None, open_low=True)
    f_max = _real(f_max, "f_max", 0.0, None, open_low=True)
    mdp = tabular.mdp._mdp(mdp)
    from harl_mini.tabular.softmax import _theta

    theta = _theta(theta, mdp).detach()
    result = trpo.exact_trpo_step(mdp, theta, delta, **step_kwargs)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_gain, ax_kl = axes
    pi = tabular.softmax_policy(theta)
    rho, adv, d = tabular.visitation(mdp, pi), tabular.advantage(mdp, pi), tabular.state_distribution(mdp, pi)
    full = result.beta * result.direction
    fs = np.geomspace(f_max / 1000, f_max, 121) if log_scale else np.linspace(0.0, f_max, 121)
    gain, kls = np.empty_like(fs), np.empty_like(fs)
    for i, f in enumerate(fs):
        q = tabular.softmax_policy(theta + float(f) * full)
        gain[i] = float((rho.unsqueeze(-1) * (q - pi) * adv).sum())
        kls[i] = float(tabular.mean_kl(pi, q, d))
    kls[~np.isfinite(kls)] = np.nan
    ax_gain.plot(fs, gain, color="tab:orange", lw=2, label=r"$L(\theta_{old}+f\beta s) - L(\theta_{old})$")
    ax_gain.plot(fs, fs * result.expected_improvement, color="0.5", ls="--", lw=1.2,
                 label=r"linear model $f\,g^\top\beta s$")
    ax_kl.plot(fs, kls, color="tab:blue", lw=2, label=r"mean KL $\bar D_{KL}$")
    ax_kl.plot(fs, fs**2 * delta, color="0.5", ls="--", lw=1.2, label=r"quadratic model $f^2\delta$")
    ax_kl.axhline(delta, color="tab:red", lw=1, label=r"$\delta$")
    seen = set()
    for f, imp, kl, verdict in result.line_search.history:
        if f > f_max or verdict == "zero search direction":
            continue
        marker, colour = _VERDICT_STYLE.get(verdict, ("o", "0.3"))
        lab = verdict if verdict not in seen else None
        seen.add(verdict)
        size = 12 if verdict == "accepted" else 7
        ax_gain.plot([f], [imp], marker, color=colour, ms=size, label=lab)
        ax_kl.plot([f], [kl if math.isfinite(kl) else np.nan], marker, color=colour, ms=size)
    finite = kls[np.isfinite(kls)]
    ax_kl.set_ylim(0.0, max(2.5 * delta, min(float(finite.max()) if finite.size else 0.0, 4 * delta)) * 1.05)
    ax_gain.set_xlabel(r"fraction $f$ of the full step $\beta s$")
    ax_kl.set_xlabel(r"fraction $f$ of the full step $\beta s$")
    ax_gain.set_ylabel("surrogate gain")
    ax_kl.set_ylabel("mean KL")
    ls = result.line_search
    status = f"accepted f = {ls.fraction:.3g}" if ls.accepted else "nothing accepted"
    ax_gain.set_title(f"δ = {delta:g}: β = {result.beta:.3g}, {status}")
    ax_kl.set_title(f"{len(ls.history) - 1} backtrack{'s' if len(ls.history) != 2 else ''}")
    for ax in axes:
        if log_scale:
            ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    return result


def trpo_step_explorer(mdp, theta, delta: float = 0.1):
    """A δ slider (log-spaced values) that redraws :func:`plot_trpo_step` for the given MDP and logits.

    δ steps through {0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10} (the start value is added);
    every frame is drawn when the cell runs, so the HTML book shows the same pictures without
    a kernel (:mod:`harl_mini.viz.explorer`).

    Returns:
        An :class:`~harl_mini.viz.explorer.Explorer`.
    """
    from harl_mini import tabular
    from harl_mini.tabular.softmax import _theta
    from harl_mini.viz.explorer import Slider, explore
    from harl_mini.viz.style import figure

    delta = _real(delta, "delta", 1e-3, 10.0)
    mdp = tabular.mdp._mdp(mdp)
    theta = _theta(theta, mdp).detach()

    def draw(delta):
        fig, axes = figure(2)
        plot_trpo_step(mdp, theta, delta, axes=axes)
        return fig

    return explore(draw, Slider("delta", "δ", (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0), delta),
                   alt="One exact TRPO step: the surrogate and the true objective, and the KL, along the search "
                       "direction, with the backtracking line search")


# ---------------------------------------------------------------------------------------
# PPO's clipped objective along a path
# ---------------------------------------------------------------------------------------


def ppo_path_curves(mdp, theta, direction=None, ts=None, clip_eps: float = 0.2) -> dict[str, np.ndarray]:
    """PPO's exact clipped objective next to TRPO's quantities along θ(t) = θ + t·direction.

    Args:
        mdp: a :class:`~harl_mini.tabular.FiniteMDP`.
        theta: logits [S, A] of π_old = softmax(θ).
        direction: [S, A]; default the natural gradient F⁺∇J at θ.
        ts: path parameters (default 41 values in [0, 1]).
        clip_eps: ε_clip ≥ 0.

    Returns:
        A dict of arrays over ``t``: ``clip`` = L^CLIP / (1−γ) (``tabular.trpo.ppo_objective``
        rescaled to the units of J), ``gain`` = L_π(π̃) − J(π), ``improvement`` = J(π̃) − J(π),
        ``mean_kl`` (under d_π) and ``max_ratio_dev`` = max over (s, a) with π(a|s) > 0 of
        |ξ − 1|, ξ = π̃/π the probability ratio.
    """
    from harl_mini import tabular
    from harl_mini.tabular import trpo

    eps = _real(clip_eps, "clip_eps", 0.0, None)
    mdp, theta, direction, ts = _path(mdp, theta, direction, ts)
    pi = tabular.softmax_policy(theta)
    d = tabular.state_distribution(mdp, pi)
    J0 = float(tabular.objective(mdp, pi))
    g = mdp.gamma
    keys = ("clip", "gain", "improvement", "mean_kl", "max_ratio_dev")
    out = {k: np.empty(len(ts)) for k in keys}
    for i, t in enumerate(ts):
        q = tabular.softmax_policy(theta + float(t) * direction)
        out["clip"][i] = float(trpo.ppo_objective(mdp, pi, q, eps)) / (1.0 - g)
        out["gain"][i] = float(trpo.surrogate(mdp, pi, q)) - J0
        out["improvement"][i] = float(tabular.objective(mdp, q)) - J0
        out["mean_kl"][i] = float(tabular.mean_kl(pi, q, d))
        out["max_ratio_dev"][i] = float((q / pi - 1.0).abs().max())
    out["t"] = ts
    return out


def plot_ppo_path(mdp, theta, direction=None, ts=None, clip_eps: float = 0.2, axes=None):
    """Draw :func:`ppo_path_curves`: objectives (left Axes), KL and max |ξ − 1| (right Axes).

    Returns:
        The dict of curves.
    """
    import matplotlib.pyplot as plt

    c = ppo_path_curves(mdp, theta, direction, ts, clip_eps)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ax, ax2 = axes
    t = c["t"]
    ax.plot(t, c["improvement"], color="k", lw=2.2, label=r"$J(\tilde\pi) - J(\pi)$")
    ax.plot(t, c["gain"], color="tab:orange", lw=1.6, label=r"$L_\pi(\tilde\pi) - J(\pi)$")
    ax.plot(t, c["clip"], color="tab:blue", lw=2.0, ls="--", label=r"$L^{CLIP} / (1-\gamma)$")
    inside = c["max_ratio_dev"] <= float(clip_eps)
    if inside.any() and not inside.all():
        t_out = float(t[np.argmin(inside)])
        for a in axes:
            a.axvline(t_out, color="tab:red", lw=0.8, ls=":")
    ax.set_xlabel("path parameter $t$")
    ax.set_ylabel("gain over $\\pi$")
    ax.set_title(f"objectives, $\\epsilon_{{clip}}$ = {float(clip_eps):g}")
    ax2.plot(t, c["max_ratio_dev"], color="tab:purple", lw=1.8, label=r"$\max_{s,a}|\xi-1|$")
    ax2.axhline(float(clip_eps), color="tab:red", lw=1, label=r"$\epsilon_{\mathrm{clip}}$")
    ax2.plot(t, c["mean_kl"], color="tab:blue", lw=1.8, label=r"mean KL $\bar D_{KL}(\pi, \tilde\pi)$")
    ax2.set_xlabel("path parameter $t$")
    ax2.set_title("distance from $\\pi$")
    for a in axes:
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8, loc="upper left")
    return c


# ---------------------------------------------------------------------------------------
# Figures of Chapter 4's checks, and of PPO's KL penalty (Chapter 5)
# ---------------------------------------------------------------------------------------


def plot_surrogate_error(pairs, axes=None):
    """Theorem 1's sharp bound against the true error of the surrogate, for many policy pairs.

    Args:
        pairs: array [N, 5] of rows (γ, α, |J − L|, sharp bound, Cα²), as Chapter 4's check of
            eq. ``eq-trpo-sharp`` collects them (α = D_TV^max).
        axes: two Axes: left, |J − L| against the sharp bound (log-log, with the diagonal where
            the bound would be tight); right, sharp bound / Cα² against α, i.e.
            (1−γ)/(1−γ(1−α)), what the sharp form saves. A new column-wide figure if omitted.

    Returns:
        The two Axes.
    """
    from harl_mini.viz.style import figure

    pairs = np.asarray(pairs, dtype=np.float64)
    if pairs.ndim != 2 or pairs.shape[1] != 5 or not np.all(np.isfinite(pairs)):
        raise HarlMiniError(f"pairs: expected a finite array of shape [N, 5], got shape {list(pairs.shape)}")
    if axes is None:
        _, axes = figure(2)
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
    for gamma, colour in zip(np.unique(pairs[:, 0]), colours * 4):
        sel = pairs[:, 0] == gamma
        axes[0].loglog(pairs[sel, 3], np.maximum(pairs[sel, 2], 1e-16), ".", color=colour, ms=3,
                       label=f"γ = {gamma:g}")
        axes[1].semilogy(pairs[sel, 1], pairs[sel, 3] / pairs[sel, 4], ".", color=colour, ms=3,
                         label=f"γ = {gamma:g}")
    lims = [pairs[:, 3].min(), pairs[:, 3].max()]
    axes[0].plot(lims, lims, "k--", lw=1, label="tight")
    axes[0].set_xlabel("sharp bound")
    axes[0].set_ylabel(r"$|J(\tilde\pi) - L_\pi(\tilde\pi)|$")
    axes[0].set_title("error vs its bound")
    axes[1].set_xlabel(r"$\alpha = D_{TV}^{\max}(\pi, \tilde\pi)$")
    axes[1].set_ylabel(r"sharp bound / $C\alpha^2$")
    axes[1].set_title(r"the sharp form vs $C\alpha^2$")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return axes


def plot_return_curves(curves, J_star=None, ax=None, title=None):
    """J(π_i) against the iteration i for several update rules.

    Args:
        curves: ``{label: sequence of J values}`` (iteration 0 first).
        J_star: the optimal return, drawn as a dashed line (optional).
        ax: a matplotlib Axes; a new one if omitted.
        title: the panel's title.

    Returns:
        The Axes.
    """
    from harl_mini.viz.style import figure

    if not curves:
        raise HarlMiniError("curves: expected at least one {label: J values} entry")
    if ax is None:
        _, ax = figure(1)
    markers = "os^vD"
    for k, (label, Js) in enumerate(curves.items()):
        Js = np.asarray(Js, dtype=np.float64)
        if Js.ndim != 1 or not np.all(np.isfinite(Js)):
            raise HarlMiniError(f"curves[{label!r}]: expected a 1-d sequence of finite returns")
        ax.plot(Js, markers[k % len(markers)] + "-", ms=3, label=label)
    if J_star is not None:
        ax.axhline(_real(J_star, "J_star"), color="k", ls="--", lw=1, label="$J^*$")
    ax.set_xlabel("iteration")
    ax.set_ylabel(r"$J(\pi_i)$")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return ax


def plot_kl_penalty_run(runs, d_targ: float, axes=None):
    """PPO's adaptive KL penalty, run exactly: the mean KL per iteration and the coefficient c_KL.

    Args:
        runs: ``{label: KLPenaltyRun}`` from :func:`harl_mini.tabular.trpo.run_kl_penalty`.
        d_targ: the target mean KL; the band [d_targ/1.5, 1.5·d_targ] in which the rule keeps
            c_KL is shaded.
        axes: two Axes (mean KL, c_KL), both on log scales; a new figure if omitted.

    Returns:
        The two Axes.
    """
    from harl_mini.viz.style import figure

    d_targ = _real(d_targ, "d_targ", 0.0, None, open_low=True)
    if axes is None:
        _, axes = figure(2)
    for label, run in runs.items():
        kls = np.maximum(np.asarray(run.mean_kl, dtype=np.float64), 1e-12)
        line, = axes[0].semilogy(np.arange(len(kls)), kls, "o-", ms=3, label=label)
        axes[1].semilogy(np.arange(len(run.c_kl)), run.c_kl, "o-", ms=3, color=line.get_color(), label=label)
    axes[0].axhspan(d_targ / 1.5, 1.5 * d_targ, color="tab:green", alpha=0.15, lw=0, label="no change")
    axes[0].axhline(d_targ, color="tab:green", lw=1)
    axes[0].set_ylabel(r"mean KL $d$ of the iteration")
    axes[1].set_ylabel(r"$c_{\mathrm{KL}}$ used")
    axes[0].set_title(f"mean KL ($d_{{targ}}$ = {d_targ:g})")
    axes[1].set_title("penalty coefficient")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return axes


def tagged_lines(module) -> dict[int, list[tuple[int, str]]]:
    """``{k: [(line number, code), ...]}`` for the lines of ``module``'s source tagged ``# [k]``.

    The implementation-details lists of Chapters 4 and 5 tag the lines of
    ``harl_mini/algos/trpo.py`` and ``ppo.py`` that implement item k; the book prints them from
    the installed source, so the line numbers cannot drift from the code.
    """
    import inspect
    import re

    lines, _ = inspect.getsourcelines(module)  # a module's source starts at line 1
    items: dict[int, list[tuple[int, str]]] = {}
    for offset, text in enumerate(lines):
        for k in re.findall(r"# \[(\d+)\]", text):
            items.setdefault(int(k), []).append((1 + offset, text.split("#", 1)[0].strip()))
    return items


def tagged_lines_listing(module, per_item: int = 2, width: int = 68) -> str:
    """The text listing of :func:`tagged_lines`: per item its path and line numbers, then the
    first ``per_item`` lines of code (cut at ``width`` characters). The path is relative to the
    package's parent folder (``harl_mini/algos/trpo.py``), from a clone or an installed wheel."""
    import inspect
    from pathlib import Path

    import harl_mini

    path = Path(inspect.getsourcefile(module)).resolve()
    root = Path(harl_mini.__file__).resolve().parents[1]
    shown = path.relative_to(root) if path.is_relative_to(root) else path.name
    out = []
    for k, lines in sorted(tagged_lines(module).items()):
        out.append(f"[{k}] {shown}:" + ", ".join(f"L{n}" for n, _ in lines))
        out.extend(f"      {n:4d}  {code[:width]}" for n, code in lines[:per_item])
    return "\n".join(out)
