r"""Figures and the widget of Chapter 2 (policy gradients and GAE).

Every widget is a thin ``ipywidgets`` wrapper around a pure plotting function, so the
static figure in the HTML book and the live widget draw the same picture (education notes
§4.7). ``ipywidgets`` is imported only inside the widget function.

Contents:

* :func:`plot_gradient_error` — error of a sampled gradient against the number of
  samples N on log-log axes, with a 1/√N guide;
* :func:`plot_learning_curve` — one column of a training :class:`~harl_mini.algos.common.History`
  against environment steps;
* :func:`gae_expectation` — the exact conditional mean E[Â_t | s_t = s, a_t = a] of
  GAE(γ, λ) with an arbitrary critic V (Chapter 2, eq. ``eq-gae-mean``);
* :func:`gae_statistics` — sampled per-(s, a) means and variances of GAE(γ, λ) for a grid
  of λ, on the tabular environment, next to the exact A^π and the exact means;
* :func:`plot_gae_bias_variance` — the bias/variance trade-off of GAE against λ, and the
  per-(s, a) estimates at one λ;
* :func:`gae_lambda_explorer` — a λ slider around :func:`plot_gae_bias_variance`;
* :func:`tabular_policy_net` — a :class:`~harl_mini.nets.CategoricalPolicy` whose logits on
  one-hot states are a given table θ (the tabular softmax policy through the network code);
* :func:`sampled_policy_gradients` — the sampled REINFORCE gradient of that network, without
  and with a state baseline, through ``collect`` and ``gae`` (Chapter 2, §2.4).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from harl_mini.errors import HarlMiniError, check_positive_int
from harl_mini.viz._common import (
    f64 as _f64,
    new_axes as _new_axes,
)

__all__ = [
    "plot_gradient_error",
    "plot_learning_curve",
    "gae_expectation",
    "GAEStatistics",
    "gae_statistics",
    "plot_gae_bias_variance",
    "gae_lambda_explorer",
    "tabular_policy_net",
    "sampled_policy_gradients",
]






def _unit(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not (math.isfinite(float(x)) and 0.0 <= x <= 1.0):
        raise HarlMiniError(f"{name}: must satisfy 0 <= {name} <= 1, got {x!r}")
    return float(x)




# ---------------------------------------------------------------------------------------
# Sampled gradients and learning curves
# ---------------------------------------------------------------------------------------


def plot_gradient_error(num_samples, errors, ax=None, title=None):
    """Plot the error of sampled gradients against the sample size on log-log axes.

    Args:
        num_samples: the sample sizes N, shape [K], positive and increasing.
        errors: ``{label: errors}``, each of shape [K] (one error per N) or [R, K] (R
            repetitions, drawn as their mean with the individual runs as faint dots).
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        title: optional Axes title.

    A dashed c/√N guide goes through the first curve's value at the smallest N.

    Returns:
        The matplotlib Axes.
    """
    n = _f64(num_samples, "num_samples")
    if n.dim() != 1 or n.numel() < 2 or bool((n <= 0).any()) or bool((n[1:] <= n[:-1]).any()):
        raise HarlMiniError(f"num_samples: expected at least two positive, increasing sizes, got {n.tolist()}")
    if not isinstance(errors, dict) or not errors:
        raise HarlMiniError("errors: expected a non-empty dict {label: errors of shape [K] or [R, K]}")
    K = n.numel()
    curves = {}
    for label, e in errors.items():
        e = _f64(e, f"errors[{label!r}]")
        if e.dim() == 1:
            e = e.unsqueeze(0)
        if e.dim() != 2 or e.shape[1] != K:
            raise HarlMiniError(f"errors[{label!r}]: expected shape [{K}] or [R, {K}], got {list(e.shape)}")
        if bool((e <= 0).any()):
            raise HarlMiniError(f"errors[{label!r}]: errors must be positive to plot on log axes")
        curves[label] = e.numpy()
    ax = _new_axes(ax, (6.0, 3.8))
    x = n.numpy()
    for i, (label, e) in enumerate(curves.items()):
        color = f"C{i}"
        if e.shape[0] > 1:
            ax.loglog(np.repeat(x[None], e.shape[0], 0).ravel(), e.ravel(), ".", color=color, alpha=0.3,
                      markersize=4)
        ax.loglog(x, e.mean(0), "o-", color=color, label=label)
    first = next(iter(curves.values())).mean(0)
    ax.loglog(x, first[0] * np.sqrt(x[0] / x), "--", color="0.4", label=r"$\propto 1/\sqrt{N}$")
    ax.set_xlabel("number of sampled episodes $N$")
    ax.set_ylabel("relative error")
    if title is not None:
        ax.set_title(title)
    ax.legend()
    ax.grid(True, which="major", alpha=0.3)
    return ax


def plot_learning_curve(history, key: str = "episode_return", ax=None, label=None, title=None):
    """Plot one column of a training history against the number of environment steps.

    Args:
        history: a :class:`~harl_mini.algos.common.History` (what ``train`` returns), or
            any sequence of dict rows with a ``"steps"`` key.
        key: the column to plot, e.g. ``"episode_return"`` or ``"entropy"``.
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        label: optional legend label.
        title: optional Axes title.

    Returns:
        The matplotlib Axes.
    """
    rows = list(getattr(history, "rows", history) if history is not None else [])
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise HarlMiniError("history: expected a training History (or a list of dict rows) with at least one row")
    for need in ("steps", key):
        if need not in rows[0]:
            raise HarlMiniError(f"history: rows have no column {need!r}; available: {', '.join(sorted(rows[0]))}")
    x = np.array([r["steps"] for r in rows], dtype=float)
    y = np.array([r.get(key, np.nan) for r in rows], dtype=float)
    ax = _new_axes(ax, (6.0, 3.6))
    ax.plot(x, y, "-", label=label)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(key.replace("_", " "))
    if title is not None:
        ax.set_title(title)
    if label is not None:
        ax.legend()
    ax.grid(True, alpha=0.3)
    return ax


# ---------------------------------------------------------------------------------------
# GAE: exact means, sampled statistics, the bias/variance figure and its widget
# ---------------------------------------------------------------------------------------


def _mdp_pi_V(mdp, pi, V):
    from harl_mini import tabular

    if not isinstance(mdp, tabular.FiniteMDP):
        raise HarlMiniError(f"mdp: expected a FiniteMDP, got {type(mdp).__name__}")
    pi = tabular.check_policy(pi, mdp.num_states, mdp.num_actions, "pi")
    V = _f64(V.detach() if isinstance(V, torch.Tensor) else V, "V")
    if tuple(V.shape) != (mdp.num_states,):
        raise HarlMiniError(f"V: expected shape [{mdp.num_states}], got {list(V.shape)}")
    return pi, V


def gae_expectation(mdp, pi, V, lam: float) -> torch.Tensor:
    r"""The exact mean of GAE(γ, λ) given (s_t, a_t) = (s, a), for an arbitrary critic V.

    Implements Chapter 2, eq. ``eq-gae-mean`` (no time limit, episodes never cut):
    E[Â_t | s, a] = δ_V(s, a) + γλ Σ_{s'} P(s' | s, a) u(s'),
    u = (I − γλ P_π)^{-1} δ_π,  δ_V(s, a) = r(s, a) + γ Σ_{s'} P(s' | s, a) V(s') − V(s),
    δ_π(s) = Σ_a π(a | s) δ_V(s, a).
    With V = V^π every λ gives A^π; with λ = 1 any V gives Q^π(s, a) − V(s).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   policy π
    ``V``       [S]      critic V (any vector)
    ``lam``     scalar   λ ∈ [0, 1]
    returns     [S, A]   E[Â_t | s_t = s, a_t = a]
    ==========  =======  ===========================================
    """
    from harl_mini import tabular

    pi, V = _mdp_pi_V(mdp, pi, V)
    lam = _unit(lam, "lam")
    g = mdp.gamma
    delta = tabular.q_from_v(mdp, V) - V.unsqueeze(-1)              # δ_V(s, a)
    delta_pi = (pi * delta).sum(-1)                                   # δ_π(s)
    P_pi = tabular.transition_matrix(mdp, pi)
    eye = torch.eye(mdp.num_states, dtype=V.dtype)
    u = torch.linalg.solve(eye - g * lam * P_pi, delta_pi)
    return delta + g * lam * torch.einsum("sat,t->sa", mdp.P, u)


@dataclass
class GAEStatistics:
    """Per-(s, a) statistics of GAE(γ, λ) at the first step of many independent rollouts.

    ================  ===========  ====================================================
    Field             Shape        Meaning
    ================  ===========  ====================================================
    ``lams``          [L]          the λ grid
    ``advantage``     [S, A]       exact A^π
    ``mean_exact``    [L, S, A]    exact E[Â | s, a] (:func:`gae_expectation`)
    ``mean``          [L, S, A]    sample mean of Â over the rollouts starting in (s, a)
    ``var``           [L, S, A]    sample variance of Â over those rollouts
    ``count``         [S, A]       number of rollouts starting in (s, a)
    ``weights``       [S, A]       d_π(s) π(a | s), the weights of the summary curves
    ================  ===========  ====================================================
    """

    lams: np.ndarray
    advantage: np.ndarray
    mean_exact: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    count: np.ndarray
    weights: np.ndarray

    def summary(self) -> dict[str, np.ndarray]:
        """Weighted action-dependent squared bias (exact), variance (sampled) and their sum.

        The bias of Â at (s, a) is b(s, a) = E[Â | s, a] − A^π(s, a). A part that depends
        on s only acts as a baseline and does not bias the policy gradient, so the summary
        keeps the action-dependent part b(s, a) − Σ_{a'} π(a' | s) b(s, a'), where π is
        read off the weights. Each entry has shape [L]; the weights are d_π(s) π(a | s).
        """
        w = self.weights[None]
        pi = self.weights / np.maximum(self.weights.sum(-1, keepdims=True), np.finfo(float).tiny)
        b = self.mean_exact - self.advantage[None]
        b = b - (pi[None] * b).sum(-1, keepdims=True)
        bias2 = (w * b**2).sum((1, 2))
        var = (w * self.var).sum((1, 2))
        return {"bias2": bias2, "var": var, "mse": bias2 + var}


class _TablePolicy:
    """π as a ``distribution(obs)`` for one-hot observations (what ``collect`` needs)."""

    def __init__(self, pi: torch.Tensor):
        self.pi = pi

    def distribution(self, obs: torch.Tensor):
        return torch.distributions.Categorical(probs=obs.to(self.pi.dtype) @ self.pi, validate_args=False)


def gae_statistics(mdp, pi, V, lams=None, num_envs: int = 4000, num_steps: int | None = None,
                   seed: int = 0) -> GAEStatistics:
    """Sample GAE(γ, λ) on the tabular environment and collect per-(s, a) statistics.

    Runs ``num_envs`` independent copies of ``make_env("tabular", mdp=mdp)`` for
    ``num_steps`` steps under π with critic V (:func:`harl_mini.rollout.collect`), computes
    Â for every λ with :func:`harl_mini.advantages.gae`, and keeps Â at the *first* step
    of each copy only, so that the samples are independent (s_0 ~ ρ0, a_0 ~ π). The
    batch end bootstraps from V, so ``num_steps`` (default: the horizon after which
    γ^t max|r|/(1 − γ) < 1e-6) must be long enough for λ near 1.

    Args:
        mdp: a :class:`~harl_mini.tabular.FiniteMDP`.
        pi: policy table [S, A].
        V: critic values [S] (V^π for an exact critic, anything else for an imperfect one).
        lams: the λ grid (default 0, 0.05, …, 1).
        num_envs: number of independent rollouts.
        num_steps: rollout length.
        seed: seed of the environment and of the action draws (the result does not depend
            on torch's global generator).

    Returns:
        A :class:`GAEStatistics`.
    """
    from harl_mini import tabular
    from harl_mini.advantages import gae
    from harl_mini.envs import make_env
    from harl_mini.rollout import collect

    pi, V = _mdp_pi_V(mdp, pi, V)
    lam_grid = np.linspace(0.0, 1.0, 21) if lams is None else np.asarray(lams, dtype=float).ravel()
    if lam_grid.size == 0:
        raise HarlMiniError("lams: expected at least one value of λ")
    for lam in lam_grid:
        _unit(float(lam), "lams")
    num_envs = check_positive_int(num_envs, "num_envs")
    T = tabular.default_horizon(mdp) if num_steps is None else check_positive_int(num_steps, "num_steps")
    env = make_env("tabular", num_envs=num_envs, seed=int(seed), mdp=mdp, dtype=torch.float64)
    batch = collect(env, _TablePolicy(pi), lambda obs: obs @ V, T, generator=torch.Generator().manual_seed(int(seed)))
    s0 = batch.obs[0].argmax(-1)
    a0 = batch.actions[0]
    S, A = mdp.num_states, mdp.num_actions
    idx = s0 * A + a0
    count = torch.bincount(idx, minlength=S * A).to(torch.float64)
    means, variances, exact = [], [], []
    for lam in lam_grid:
        adv, _ = gae(batch.rewards, batch.values, batch.next_values, batch.terminated, batch.truncated,
                     mdp.gamma, float(lam))
        x = adv[0]
        total = torch.zeros(S * A, dtype=torch.float64).index_add_(0, idx, x)
        total2 = torch.zeros(S * A, dtype=torch.float64).index_add_(0, idx, x * x)
        mean = total / count.clamp_min(1)
        var = (total2 - count * mean**2) / (count - 1).clamp_min(1)
        means.append(mean.reshape(S, A))
        variances.append(var.clamp_min(0.0).reshape(S, A))
        exact.append(gae_expectation(mdp, pi, V, float(lam)))
    weights = tabular.state_distribution(mdp, pi).unsqueeze(-1) * pi
    return GAEStatistics(
        lams=lam_grid,
        advantage=tabular.advantage(mdp, pi).numpy(),
        mean_exact=torch.stack(exact).numpy(),
        mean=torch.stack(means).numpy(),
        var=torch.stack(variances).numpy(),
        count=count.reshape(S, A).numpy(),
        weights=weights.numpy(),
    )


def plot_gae_bias_variance(stats: GAEStatistics, lam: float, axes=None):
    """Draw GAE's bias/variance trade-off against λ, and the per-(s, a) estimates at one λ.

    Left: for each (s, a), sorted by A^π(s, a), the exact advantage (black), the exact
    mean of Â at the chosen λ (a ring) and the sampled mean ± one standard deviation of a
    single estimate. Right: the d_π π-weighted squared bias (exact), variance (sampled)
    and their sum against λ, with the chosen λ marked.

    Args:
        stats: from :func:`gae_statistics`.
        lam: the λ to show on the left (the nearest grid value is used).
        axes: two matplotlib Axes; a new 1×2 figure is created when omitted.

    Returns:
        The two Axes.
    """
    import matplotlib.pyplot as plt

    if not isinstance(stats, GAEStatistics):
        raise HarlMiniError(f"stats: expected GAEStatistics (from gae_statistics), got {type(stats).__name__}")
    lam = _unit(lam, "lam")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    if len(axes) != 2:
        raise HarlMiniError(f"axes: expected two Axes, got {len(axes)}")
    k = int(np.argmin(np.abs(stats.lams - lam)))
    lam_k = float(stats.lams[k])
    ax0, ax1 = axes
    adv = stats.advantage.ravel()
    order = np.argsort(adv)
    x = np.arange(adv.size)
    mean = stats.mean[k].ravel()[order]
    std = np.sqrt(stats.var[k].ravel()[order])
    ax0.errorbar(x, mean, yerr=std, fmt="o", color="C0", markersize=4, capsize=2,
                 label=r"sampled mean $\pm$ std of $\hat A$")
    ax0.plot(x, stats.mean_exact[k].ravel()[order], "o", mfc="none", color="C1", markersize=9,
             label=r"exact $\mathbb{E}[\hat A \mid s, a]$")
    ax0.plot(x, adv[order], "_", color="k", markersize=16, markeredgewidth=2, label=r"exact $A_\pi(s, a)$")
    ax0.set_xticks([])
    ax0.set_xlabel(r"state-action pairs, sorted by $A_\pi(s, a)$")
    ax0.set_ylabel("advantage")
    ax0.set_title(f"GAE estimates at λ = {lam_k:.2f}")
    ax0.legend(fontsize=8, loc="best", framealpha=0.9)
    ax0.grid(True, alpha=0.3)

    summ = stats.summary()
    ax1.plot(stats.lams, summ["bias2"], "-", color="C3", label="squared bias (exact)")
    ax1.plot(stats.lams, summ["var"], "-", color="C0", label="variance (sampled)")
    ax1.plot(stats.lams, summ["mse"], "--", color="k", label="mean squared error")
    ax1.axvline(lam_k, color="0.5", linewidth=1)
    ax1.set_xlabel(r"$\lambda$")
    ax1.set_ylabel(r"$d_\pi\pi$-weighted average")
    ax1.set_title("bias and variance of GAE against λ")
    ax1.legend(fontsize=8)
    ax1.grid(True, alpha=0.3)
    return axes


def gae_lambda_explorer(mdp, pi, V, lam: float = 0.9, num_envs: int = 4000, seed: int = 0):
    """An interactive version of :func:`plot_gae_bias_variance`: a slider for λ.

    The rollouts are sampled once (:func:`gae_statistics` on a grid of 21 values of λ); the
    slider steps through λ in {0, 0.1, ..., 1} and 0.95 (the start value is added), and every
    frame is drawn when the cell runs, so the HTML book shows the same pictures without a
    kernel (:mod:`harl_mini.viz.explorer`).

    Args:
        mdp: a :class:`~harl_mini.tabular.FiniteMDP`.
        pi: policy table [S, A].
        V: critic values [S].
        lam: initial λ; it must lie on the sampled grid (a multiple of 0.05).
        num_envs: number of independent rollouts.
        seed: environment seed.

    Returns:
        An :class:`~harl_mini.viz.explorer.Explorer`.
    """
    from harl_mini.viz.explorer import Slider, explore
    from harl_mini.viz.style import figure

    lam = _unit(lam, "lam")
    stats = gae_statistics(mdp, pi, V, num_envs=num_envs, seed=seed)
    if not np.isclose(stats.lams, lam, atol=1e-9).any():
        raise HarlMiniError(f"lam: expected a multiple of 0.05 (the sampled grid), got {lam!r}")
    grid = [round(0.1 * k, 10) for k in range(11)] + [0.95]

    def draw(lam):
        fig, axes = figure(2, height=2.6)
        plot_gae_bias_variance(stats, lam, axes=axes)
        return fig

    return explore(draw, Slider("lam", "λ", sorted(grid), lam, fmt="{:.2f}"),
                   alt="GAE estimates per state-action pair at the chosen λ, and bias and variance against λ")


# ---------------------------------------------------------------------------------------
# The sampled policy gradient through the deep-RL code path (Chapter 2, §2.4)
# ---------------------------------------------------------------------------------------


def tabular_policy_net(theta):
    """A :class:`~harl_mini.nets.CategoricalPolicy` without hidden layers whose logits on a
    one-hot state e_s are θ[s]: the tabular softmax policy (Chapter 2, eq. ``eq-softmax-policy``)
    run through the same network class as the neural policies.

    The network computes W e_s + b; here W = θᵀ and b = 0, in float64.

    Args:
        theta: logits, shape [S, A].

    Returns:
        The network (float64).
    """
    from harl_mini.nets import CategoricalPolicy

    theta = _f64(theta, "theta")
    if theta.dim() != 2:
        raise HarlMiniError(f"theta: expected logits of shape [S, A], got {list(theta.shape)}")
    net = CategoricalPolicy(theta.shape[0], theta.shape[1], hidden=()).double()
    with torch.no_grad():
        net.logits_net[0].weight.copy_(theta.T)
        net.logits_net[0].bias.zero_()
    return net


def sampled_policy_gradients(mdp, theta, V, num_episodes: int, horizon: int, seed: int = 0):
    r"""Sampled policy gradients of the tabular softmax policy, without and with the baseline V.

    Runs ``num_episodes`` copies of ``make_env("tabular", mdp=mdp, time_limit=horizon)`` for
    ``horizon`` steps with :func:`tabular_policy_net` through :func:`harl_mini.rollout.collect`
    (environment and action draws seeded by ``seed``), and differentiates the sampled loss
    (1/N) Σ_{i,t} γ^t log π_θ(a_t | s_t) ŵ_t with autograd (Chapter 2, eq. ``eq-pg-trajectory``):

    * ŵ_t = G_t, the reward-to-go to the end of the episode;
    * ŵ_t = G_t − V(s_t), bootstrapped with γ^{H−t} V(s_H) at the time limit (GAE with λ = 1,
      :func:`harl_mini.advantages.gae`; a state baseline, lemma ``lem-baseline``).

    Both use the same episodes. Their mean is ∇J up to the tail beyond the horizon.

    Args:
        mdp: a :class:`~harl_mini.tabular.FiniteMDP`.
        theta: logits [S, A].
        V: baseline values [S] (V_π for the exact baseline).
        num_episodes: N, the number of parallel episodes.
        horizon: H, the time limit (and the number of steps collected).
        seed: seed of the environment and of the action draws.

    Returns:
        ``(g_no_baseline, g_baseline)``, two [S, A] tensors.
    """
    from harl_mini.advantages import gae
    from harl_mini.envs import make_env
    from harl_mini.rollout import collect

    theta = _f64(theta, "theta")
    _, V = _mdp_pi_V(mdp, torch.softmax(theta, -1), V)
    num_episodes = check_positive_int(num_episodes, "num_episodes")
    horizon = check_positive_int(horizon, "horizon")
    net = tabular_policy_net(theta)
    env = make_env("tabular", num_envs=num_episodes, seed=int(seed), mdp=mdp, time_limit=horizon,
                   dtype=torch.float64)
    batch = collect(env, net, lambda obs: obs @ V, horizon, generator=torch.Generator().manual_seed(int(seed)))
    discount = mdp.gamma ** batch.episode_t.to(torch.float64)  # t counted within the episode
    logp = net.distribution(batch.obs).log_prob(batch.actions)
    zero = torch.zeros_like(batch.values)
    grads = []
    for v, nv in ((zero, zero), (batch.values, batch.next_values)):
        weight, _ = gae(batch.rewards, v, nv, batch.terminated, batch.truncated, mdp.gamma, lam=1.0)
        loss = (discount * logp * weight).sum() / num_episodes
        (g_W,) = torch.autograd.grad(loss, net.logits_net[0].weight, retain_graph=True)
        grads.append(g_W.T.detach())  # the weight is θᵀ
    return grads[0], grads[1]
