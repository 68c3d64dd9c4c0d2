r"""Heterogeneous-agent mirror learning (HAML), exactly, on tabular games (Chapter 8, Section 8.5).

Zhong et al. (HARL, JMLR 2024, §3.3–3.4 and Appendices D–H; theory reference §5h) give a
template that contains the exact (idealised) HATRPO and HAPPO updates and proves for every
member that J never decreases and that the iterates approach Nash equilibria. The guarantee
is for exact updates: true advantages, true d_π, exact maximisation. The sampled HATRPO and
HAPPO of :mod:`harl_mini.marl` are not covered. This module computes
its objects exactly, in float64, on a :class:`~harl_mini.tabular.game.MarkovGame`, reusing
the multi-agent advantages of :mod:`harl_mini.tabular.game` and :mod:`harl_mini.tabular.hatrpo`:

* the HAPPO drift functional 𝔇^{i_m} (HARL eq. 30, eq. ``eq-happo-drift``), a HADF
  (Definition 10): ≥ 0, zero at the old policy, zero Gâteaux derivative there;
* the heterogeneous-agent mirror operator, HAMO (Definition 12, eq. ``eq-hamo``), per state;
* HAPPO's clipped objective in exact expectation (HARL eq. 29 and Appendix F,
  eq. ``eq-happo-haml``), which equals HAMO with the HAPPO drift plus a term that does not
  depend on the agent's policy;
* one agent's step of Template 2 (eq. ``eq-haml-update``), maximised exactly, for the two
  instances of HARL Appendix H: HATRPO (trivial drift, the mean-KL ball under d_π as the
  neighbourhood) and HAPPO (the ReLU drift, the whole (p_min-soft) policy space);
* a whole HAML iteration in a random order and whole runs (:func:`haml_update`,
  :func:`run_haml`), for Lemma 13 and Theorem 14.

Conventions as in :mod:`harl_mini.tabular.hatrpo`: orders are tuples of agent indices,
``m`` counts from 1, ``pis`` is the old joint policy π (it supplies Q, A and d_π), and
``pis_new[j]`` holds π̄^{j} for the agents before i_m and the candidate π̂^{i_m} at i_m.
The sampling distribution (HARL's β_π) is d_π = (1−γ) ρ_π: positive on every state reachable
from ρ0 (the random games and matrix games have ρ0 > 0 everywhere).

==============  ================  ======================================================
Symbol          Shape             Meaning
==============  ================  ======================================================
``pis[i]``      [S, n_i]          old policy π^i
``pis_new[i]``  [S, n_i]          π̄^{i_j} (j < m) and the candidate π̂^{i_m}
``order``       (i_1, …, i_n)     the update order
``m``           int, 1 ≤ m ≤ n    position of the agent being updated
``delta``       scalar δ > 0      radius of the mean-KL neighbourhood (HATRPO instance)
``clip_eps``    scalar ∈ (0, 1)   ε_clip of the ReLU drift (HAPPO instance)
``p_min``       scalar ≥ 0        softness floor: π^i(a|s) ≥ p_min (HAPPO instance)
``joint``       bool              drift on the joint advantage A_π (the per-sample form of
                                  eq. ``eq-happo-objective``) instead of A^{i_{1:m}}_π
==============  ================  ======================================================
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from harl_mini.errors import HarlMiniError
from harl_mini.losses import ppo_clip_objective
from harl_mini.tabular import game as _g
from harl_mini.tabular import mdp as _m
from harl_mini.tabular import trpo as _trpo
from harl_mini.tabular.game import MarkovGame
from harl_mini.tabular.hatrpo import _conditioned, _log1p_minus, _newton, _pair, _position
from harl_mini.tabular.updates import _order

__all__ = [
    "happo_drift",
    "hamo",
    "happo_objective",
    "agent_step",
    "haml_update",
    "HAMLRun",
    "run_haml",
]

DTYPE = torch.float64


# ---------------------------------------------------------------------------------------
# Argument helpers
# ---------------------------------------------------------------------------------------


def _clip_eps(clip_eps) -> float:
    if isinstance(clip_eps, bool) or not isinstance(clip_eps, numbers.Real) or not (0 < float(clip_eps) < 1):
        raise HarlMiniError(f"clip_eps: expected a number in (0, 1), got {clip_eps!r}")
    return float(clip_eps)


def _instance(delta, clip_eps, p_min, counts) -> tuple[float | None, float | None, float]:
    """Validate the choice of instance: exactly one of ``delta`` (HATRPO) and ``clip_eps`` (HAPPO)."""
    if (delta is None) == (clip_eps is None):
        raise HarlMiniError("choose one HAML instance: pass delta (HATRPO: mean-KL ball) or clip_eps "
                            "(HAPPO: ReLU drift), not both and not neither")
    if isinstance(p_min, bool) or not isinstance(p_min, numbers.Real) or not (
            math.isfinite(float(p_min)) and p_min >= 0):
        raise HarlMiniError(f"p_min: expected a finite number >= 0, got {p_min!r}")
    p_min = float(p_min)
    if p_min * max(counts) >= 1:
        raise HarlMiniError(f"p_min: needs p_min * n_i < 1 for every agent (largest n_i = {max(counts)}), got {p_min}")
    if delta is not None:
        if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not (
                math.isfinite(float(delta)) and delta > 0):
            raise HarlMiniError(f"delta: expected a finite number > 0, got {delta!r}")
        if p_min > 0:
            raise HarlMiniError("p_min: the HATRPO instance (delta) keeps every probability positive by itself; "
                                "p_min applies to the HAPPO instance (clip_eps) only")
        return float(delta), None, 0.0
    return None, _clip_eps(clip_eps), p_min


def _check_old(pis: list[torch.Tensor], delta, p_min: float) -> None:
    for i, p in enumerate(pis):
        if delta is not None and bool((p <= 0).any()):
            raise HarlMiniError(f"pis[{i}]: the mean-KL neighbourhood needs strictly positive old policies "
                                f"(min entry {float(p.min()):.3g})")
        if p_min > 0 and bool((p < p_min - 1e-12).any()):
            raise HarlMiniError(f"pis[{i}]: not p_min-soft (min entry {float(p.min()):.3g} < p_min = {p_min}); "
                                f"start from hatrpo.soften(pis, p_min)")


def _weights(pis: list[torch.Tensor], agents, S: int) -> torch.Tensor:
    """Π_{j ∈ agents} π^j(a^j|s) on the grid [S, n_{agents}…], or ones [S] if there are none."""
    return _g._product([pis[j] for j in agents]) if agents else torch.ones(S, dtype=DTYPE)


def _drift_terms(Q: torch.Tensor, pis, pis_new, order, m, joint: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """W [S, K] and X [S, K, n_{i_m}]: the law of the other agents' actions and the advantage in the drift.

    joint=False: X = A^{i_{1:m}}_π(s, a^{i_{1:m−1}}, a^{i_m}) = Q^{i_{1:m}} − V (HARL eq. 30),
    W = π̄^{i_{1:m−1}}(a^{i_{1:m−1}}|s). joint=True: X = A_π(s, a) with the agents after i_m
    kept, W = π̄^{i_{1:m−1}} × π^{−i_{1:m}} (the expectation of the per-sample clipped term).
    """
    S = Q.shape[0]
    before, i = order[: m - 1], order[m - 1]
    V = _g._marginal(Q, pis, ())
    if joint:
        rest = tuple(j for j in range(len(pis)) if j not in order[:m])
        A = Q - V.reshape(S, *([1] * len(pis)))
        X = A.permute(0, *(j + 1 for j in before + rest), i + 1)
        W = _weights(pis_new, before, S)
        if rest:
            W_rest = _weights(pis, rest, S)
            W = (W.reshape(S, *W.shape[1:], *([1] * len(rest)))
                 * W_rest.reshape(S, *([1] * len(before)), *W_rest.shape[1:]))
    else:
        X = _g._marginal(Q, pis, before + (i,)) - V.reshape(S, *([1] * m))
        W = _weights(pis_new, before, S)
    return W.reshape(S, -1), X.reshape(S, -1, X.shape[-1])


def _ratio(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """ξ = π̂/π where π > 0 and 0 elsewhere (those actions carry weight π = 0 in the drift)."""
    used = p > 0
    return torch.where(used, q / torch.where(used, p, torch.ones_like(p)), torch.zeros_like(p))


def _drift(W, X, p, q, clip_eps: float) -> torch.Tensor:
    """Σ_{a^{-i_m}} W Σ_a π(a|s) ReLU((ξ − clip(ξ, 1 ± ε)) X), per state (HARL eq. 30)."""
    xi = _ratio(q, p)
    excess = xi - xi.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    return (W.unsqueeze(-1) * p.unsqueeze(1) * torch.relu(excess.unsqueeze(1) * X)).sum((1, 2))


def _setup(game, pis, pis_new, order, m):
    game = _g._game(game)
    pis, pis_new = _pair(game, pis, pis_new)
    order = _order(order, game.num_agents, full=False)
    m = _position(m, order)
    return game, pis, pis_new, order, m, _g.q_value(game, pis)


# ---------------------------------------------------------------------------------------
# Definitions 10 and 12: the HAPPO drift and HAMO; HAPPO's objective (Appendix F)
# ---------------------------------------------------------------------------------------


def happo_drift(game: MarkovGame, pis, pis_new, order, m, clip_eps, joint: bool = False) -> torch.Tensor:
    r"""HAPPO's drift functional 𝔇^{i_m}_π(π̂^{i_m} | s, π̄^{i_{1:m−1}}), one value per state.

    Implements Chapter 8, eq. ``eq-happo-drift`` (HARL JMLR eq. 30, Appendix F):
    𝔇(s) = E_{a^{i_{1:m−1}}∼π̄^{i_{1:m−1}}, a^{i_m}∼π^{i_m}}
    [ReLU((ξ − clip(ξ, 1 ± ε)) A^{i_{1:m}}_π(s, a^{i_{1:m}}))], ξ = π̂^{i_m}(a^{i_m}|s)/π^{i_m}(a^{i_m}|s). It is a HADF (Definition 10): ≥ 0, = 0 at
    π̂^{i_m} = π^{i_m}, and = 0 on the whole neighbourhood where every ξ ∈ [1 − ε, 1 + ε], so all
    its Gâteaux derivatives vanish there. ``joint=True`` puts the joint advantage A_π(s, a) inside
    the ReLU, with the agents after i_m drawn from π (the drift of the per-sample objective
    eq. ``eq-happo-objective``); it has the same three properties.

    ==============  ==========  ================================================
    Symbol          Shape       Meaning
    ==============  ==========  ================================================
    ``pis[i]``      [S, n_i]    old policy π^i (supplies Q, A)
    ``pis_new[i]``  [S, n_i]    π̄^{i_j} (j < m) and π̂^{i_m}
    ``order``       tuple       (i_1, …, i_k), k ≥ m
    ``m``           int         1 ≤ m ≤ k
    ``clip_eps``    scalar      ε_clip ∈ (0, 1)
    returns         [S]         𝔇(s) ≥ 0
    ==============  ==========  ================================================
    """
    game, pis, pis_new, order, m, Q = _setup(game, pis, pis_new, order, m)
    eps = _clip_eps(clip_eps)
    W, X = _drift_terms(Q, pis, pis_new, order, m, bool(joint))
    i = order[m - 1]
    return _drift(W, X, pis[i], pis_new[i], eps)


def hamo(game: MarkovGame, pis, pis_new, order, m, clip_eps=None, joint: bool = False) -> torch.Tensor:
    r"""The heterogeneous-agent mirror operator [𝓜^{(π̂^{i_m})}_{𝔇, π̄^{i_{1:m−1}}} A_π](s), per state.

    Implements Chapter 8, eq. ``eq-hamo`` (HARL JMLR Definition 12):
    HAMO(s) = E_{a^{i_{1:m−1}}∼π̄^{i_{1:m−1}}, a^{i_m}∼π̂^{i_m}}[A^{i_m}_π(s, a^{i_{1:m−1}}, a^{i_m})]
    − 𝔇^{i_m}_π(π̂^{i_m} | s, π̄^{i_{1:m−1}}), with the trivial drift 𝔇 ≡ 0 when ``clip_eps`` is
    None (HATRPO's instance) and :func:`happo_drift` otherwise. It is 0 at π̂^{i_m} = π^{i_m}.
    With 𝔇 ≡ 0, Σ_s ρ_π(s) HAMO(s) is the surrogate
    :func:`~harl_mini.tabular.hatrpo.ma_surrogate` (eq. ``eq-ma-surrogate``).

    ==============  ==========  ================================================
    Symbol          Shape       Meaning
    ==============  ==========  ================================================
    ``pis[i]``      [S, n_i]    old policy π^i
    ``pis_new[i]``  [S, n_i]    π̄^{i_j} (j < m) and π̂^{i_m}
    ``order``       tuple       (i_1, …, i_k), k ≥ m
    ``m``           int         1 ≤ m ≤ k
    ``clip_eps``    scalar      None (trivial drift) or ε_clip ∈ (0, 1)
    returns         [S]         HAMO(s)
    ==============  ==========  ================================================
    """
    game, pis, pis_new, order, m, Q = _setup(game, pis, pis_new, order, m)
    return _hamo(Q, pis, pis_new, order, m, None if clip_eps is None else _clip_eps(clip_eps), bool(joint))


def _hamo(Q, pis, pis_new, order, m, eps, joint) -> torch.Tensor:
    i = order[m - 1]
    out = (pis_new[i] * _conditioned(Q, pis, pis_new, order, m)).sum(-1)
    if eps is not None:
        W, X = _drift_terms(Q, pis, pis_new, order, m, joint)
        out = out - _drift(W, X, pis[i], pis_new[i], eps)
    return out


def happo_objective(game: MarkovGame, pis, pis_new, order, m, clip_eps, joint: bool = False) -> torch.Tensor:
    r"""HAPPO's clipped objective of agent i_m in exact expectation, one value per state.

    Implements Chapter 8, eq. ``eq-happo-haml`` (HARL JMLR eq. 29):
    E_{a^{i_{1:m−1}}∼π̄^{i_{1:m−1}}, a^{i_m}∼π^{i_m}}[min(ξ X, clip(ξ, 1 ± ε) X)] with
    X = A^{i_{1:m}}_π(s, a^{i_{1:m}}), through :func:`harl_mini.losses.ppo_clip_objective`.
    With ``joint=True``, X = A_π(s, a) and the agents after i_m follow π: then it is the
    expectation, at state s, of the per-sample objective eq. ``eq-happo-objective``
    min(ξ M, clip(ξ) M) with M the factor of Proposition 2. Appendix F: for π̂^{i_m} ≪ π^{i_m},
    happo_objective(s) = :func:`hamo` (s) + E_{a^{i_{1:m−1}}∼π̄}[A^{i_{1:m−1}}_π(s, a^{i_{1:m−1}})]
    (the same ``clip_eps`` and ``joint``), and the last term does not depend on π̂^{i_m}.

    ==============  ==========  ================================================
    Symbol          Shape       Meaning
    ==============  ==========  ================================================
    ``pis[i]``      [S, n_i]    old policy π^i
    ``pis_new[i]``  [S, n_i]    π̄^{i_j} (j < m) and π̂^{i_m} (may require grad)
    ``clip_eps``    scalar      ε_clip ∈ (0, 1)
    returns         [S]         the expected clipped objective at each state
    ==============  ==========  ================================================
    """
    game, pis, pis_new, order, m, Q = _setup(game, pis, pis_new, order, m)
    eps = _clip_eps(clip_eps)
    W, X = _drift_terms(Q, pis, pis_new, order, m, bool(joint))
    i = order[m - 1]
    xi = _ratio(pis_new[i], pis[i]).unsqueeze(1).expand_as(X)
    clipped = ppo_clip_objective(xi, X, eps)
    return (W.unsqueeze(-1) * pis[i].unsqueeze(1) * clipped).sum((1, 2))


# ---------------------------------------------------------------------------------------
# The exact maximisers of one agent's step
# ---------------------------------------------------------------------------------------


def _kl_ball_argmax(p: np.ndarray, g: np.ndarray, d: np.ndarray, delta: float) -> np.ndarray:
    r"""argmax_q Σ_s d_s ⟨q_s, g_s⟩ subject to Σ_s d_s KL(p_s ‖ q_s) ≤ δ, for p > 0.

    KKT: a common multiplier λ > 0 and, on each state with d_s > 0 and a non-constant g_s,
    q_s(a) = λ p_s(a) / (μ_s − g_s(a)), μ_s > max g_s set by Σ_a q_s(a) = 1 (the family of
    :func:`~harl_mini.tabular.hatrpo.sequential_update`, with λ shared by the states instead of
    one KL level t); λ is set by Σ_s d_s KL_s(λ) = δ (always attainable: KL(p ‖ q) → ∞ as q
    approaches a vertex). In units of Δ_s = μ_s − max g_s, with t_a = 1 + gap_a/Δ ≥ 1
    (gap = max g − g), q_a = (p_a/t_a) / h and h = Σ_a p_a/t_a ∈ (0, 1], so
    KL_s = Σ_a p_a log(t_a h); the normalisation reads h/Δ = 1/λ, monotone in Δ ∈ [λ p_best, λ],
    and d log KL̄ / d log λ = −Σ_s d_s Var_s / S2_s / KL̄ with Var_s = Σ_a p (1/t − h)² and
    S2_s = Σ_a p/t² (bounded quantities, no overflow near deterministic policies). Both
    equations are solved by the safeguarded Newton of :mod:`~harl_mini.tabular.hatrpo`, to
    1e-14 in log scale. Other states keep p. Entries that would underflow are kept at the
    smallest normal float (a change below 1e-307).
    """
    g = g - (p * g).sum(-1, keepdims=True)
    top = g.max(-1)
    spread = top - g.min(-1)
    active = (d > 0) & (spread > 1e-12 * max(1.0, float(np.abs(g).max())))
    q = p.copy()
    if not active.any():
        return q
    P, w = p[active], d[active]
    gap = top[active][:, None] - g[active]  # ≥ 0, zero at the best actions
    p_best = np.where(gap == 0, P, 0.0).sum(-1)
    gbar = (P * gap).sum(-1)
    dgap = gap[:, None, :] - gap[:, :, None]  # [K, a, b] = gap_b − gap_a
    state = {"x": None}

    def inner(log_lam):
        """Per-state x = log Δ solving log h(Δ) − x = −log λ (decreasing in x)."""
        lo, hi = log_lam + np.log(p_best), np.full(len(P), log_lam)
        x0 = np.log(np.maximum(math.exp(log_lam) - gbar, math.exp(log_lam) * p_best)) if state["x"] is None \
            else state["x"]

        def fun(x):
            inv_t = 1.0 / (1.0 + gap / np.exp(x)[:, None])
            h = (P * inv_t).sum(-1)
            return np.log(h) - x + log_lam, -(P * inv_t**2).sum(-1) / h

        state["x"] = _newton(fun, x0, lo, hi)
        return np.exp(state["x"])

    def kl_and_slope(dlt):
        """KL_s without cancellation, and λ dKL_s/dλ = −Var_s/S2_s.

        p/q = t h = 1 + z with z_a = Σ_b p_b (gap_a − gap_b)/c_b (c = gap + Δ); KL = Σ p z +
        Σ p (log(1+z) − z) with Σ p z = Σ_b p_b (ḡ − gap_b)² / (c_b (ḡ + Δ)) ≥ 0, or Σ p log(1+z),
        whichever has the smaller round-off bound (as in the max-KL solver of hatrpo).
        """
        c = gap + dlt[:, None]
        z = -(P[:, None, :] * dgap / c[:, None, :]).sum(-1)
        s1 = (P * (gbar[:, None] - gap) ** 2 / c).sum(-1) / (gbar + dlt)
        h = P * _log1p_minus(z)
        with np.errstate(divide="ignore", invalid="ignore"):
            l1p = P * np.log1p(np.maximum(z, -1.0))
        kl = np.where(s1 + np.abs(h).sum(-1) <= np.abs(l1p).sum(-1), s1 + h.sum(-1), l1p.sum(-1))
        inv_t = dlt[:, None] / c
        dev = inv_t - (P * inv_t).sum(-1, keepdims=True)
        return np.maximum(kl, 1e-300), -(P * dev**2).sum(-1) / (P * inv_t**2).sum(-1)

    def F(y):
        kl, slope = kl_and_slope(inner(float(y[0])))
        total = float((w * kl).sum())
        return np.array([math.log(total) - math.log(delta)]), np.array([float((w * slope).sum()) / total])

    var = (P * (gap - gbar[:, None]) ** 2).sum(-1)
    y0 = 0.5 * math.log(max(float((w * var).sum()), 1e-300) / (2.0 * delta))  # quadratic model of KL̄
    lo, hi = y0 - 40.0, y0 + 40.0
    if F(np.array([lo]))[0][0] <= 0.0:  # KL̄ < δ even at the smallest λ: a vertex to round-off
        y = lo
    else:
        y = float(_newton(F, np.array([y0]), np.array([lo]), np.array([hi]))[0])
    dlt = inner(y)
    qq = P * dlt[:, None] / (gap + dlt[:, None])
    q[active] = qq / qq.sum(-1, keepdims=True)
    # near a deterministic policy the exact step shrinks an already tiny p(a) by a factor that
    # can underflow to 0 (then KL = inf): keep such entries at the smallest normal float
    return np.maximum(q, np.finfo(np.float64).tiny)


def _clip_argmax(p: np.ndarray, W: np.ndarray, X: np.ndarray, eps: float, p_min: float) -> np.ndarray:
    r"""argmax over (p_min-soft) policies of Σ_a Σ_k W_k p_a min(ξ_a X_ka, clip(ξ_a) X_ka), state by state.

    The objective is separable and concave piecewise linear in q_a (ξ_a = q_a/p_a): slope
    Σ_k W_k X_ka⁺ for ξ < 1 − ε, Σ_k W_k X_ka for ξ ∈ (1 − ε, 1 + ε), Σ_k W_k X_ka⁻ for ξ > 1 + ε;
    an action with p_a = 0 has the single slope Σ_k W_k X_ka (HAMO's linear term; the drift does
    not see it). A fractional knapsack is exact: every action starts at p_min and the rest of the
    mass fills the pieces in decreasing order of slope. Ties at the last slope are split to stay
    as close to p as possible, so q = p whenever p is a maximiser.
    """
    S, n = p.shape
    sig = [(W[:, :, None] * np.maximum(X, 0.0)).sum(1), (W[:, :, None] * X).sum(1),
           (W[:, :, None] * np.minimum(X, 0.0)).sum(1)]
    q = np.empty_like(p)
    for s in range(S):
        pieces = []  # (slope, action, lo, hi): q_a ∈ [lo, hi] earns slope per unit of mass
        for a in range(n):
            if p[s, a] > 0:
                cuts = [0.0, p[s, a] * (1 - eps), p[s, a] * (1 + eps), 1.0]
                slopes = [sig[0][s, a], sig[1][s, a], sig[2][s, a]]
            else:
                cuts, slopes = [0.0, 1.0], [sig[1][s, a]]
            for k, slope in enumerate(slopes):
                lo, hi = max(cuts[k], p_min), min(cuts[k + 1], 1.0)
                if hi > lo:
                    pieces.append((float(slope), a, lo, hi))
        pieces.sort(key=lambda t: -t[0])
        scale = 1e-12 * (1.0 + max(abs(t[0]) for t in pieces))
        left, tau = 1.0 - n * p_min, pieces[-1][0]
        for slope, _, lo, hi in pieces:
            if left <= hi - lo:
                tau = slope
                break
            left -= hi - lo
        low = np.full(n, float(p_min))
        high = np.full(n, float(p_min))
        for slope, a, lo, hi in pieces:  # pieces above the threshold are full; ties may be partly
            if slope > tau + scale:
                low[a] += hi - lo
                high[a] += hi - lo
            elif slope >= tau - scale:
                high[a] += hi - lo
        qs = np.clip(p[s], low, high)
        gap = 1.0 - qs.sum()
        room = (high - qs) if gap > 0 else (qs - low)
        if abs(gap) > 0 and room.sum() > 0:
            qs = qs + gap * room / room.sum()
        q[s] = qs
    return q


def _step(Q, pis, new, order, m, d, delta, eps, p_min, joint) -> torch.Tensor:
    """Agent i_m's step of Template 2 from precomputed Q and d (no validation)."""
    i = order[m - 1]
    p = pis[i].detach().numpy()
    if delta is not None:
        g = _conditioned(Q, pis, new, order, m).detach().numpy()
        q = _kl_ball_argmax(p, g, d.detach().numpy(), delta)
    else:
        W, X = _drift_terms(Q, pis, new, order, m, joint)
        q = _clip_argmax(p, W.detach().numpy(), X.detach().numpy(), eps, p_min)
    return torch.as_tensor(q, dtype=DTYPE)


# ---------------------------------------------------------------------------------------
# Template 2: one agent, one iteration, whole runs
# ---------------------------------------------------------------------------------------


def agent_step(game: MarkovGame, pis, pis_new, order, m, delta=None, clip_eps=None, p_min: float = 0.0,
               joint: bool = False) -> torch.Tensor:
    r"""Agent i_m's HAML update: argmax over its neighbourhood of E_{s∼d_π}[HAMO(s)], exactly.

    Implements Chapter 8, eq. ``eq-haml-update`` (HARL JMLR Template 2), for the two instances
    of Appendix H, with the sampling distribution d_π and the agents before i_m at ``pis_new``:

    * ``delta`` (HATRPO): 𝔇 ≡ 0 and 𝒰 = {π^{i_m} : Σ_s d_π(s) KL(π^{i_m}(·|s) ‖ π̂^{i_m}(·|s)) ≤ δ}
      (HARL eq. 28); the old policies must be strictly positive. Solved by the KKT conditions
      (a common multiplier for all states), as :func:`~harl_mini.tabular.hatrpo.sequential_update`
      solves the max-KL penalty of Algorithm 1.
    * ``clip_eps`` (HAPPO): 𝔇 = :func:`happo_drift` and 𝒰 = the whole policy space, or its
      p_min-soft part if ``p_min`` > 0 (then the old policy must be p_min-soft). The maximisation
      separates over states; each is a fractional knapsack over the linear pieces of the
      clipped objective, exact. Ties go to the maximiser closest to π^{i_m}.

    In both, the old policy is feasible and has HAMO = 0, so the result has HAMO(s) ≥ 0 at every
    state with d_π(s) > 0 (HARL Lemma 23).

    ==============  ==========  ================================================
    Symbol          Shape       Meaning
    ==============  ==========  ================================================
    ``pis[i]``      [S, n_i]    old policy π^i
    ``pis_new[i]``  [S, n_i]    π̄^{i_j} for j < m (other entries unused)
    ``order``       tuple       (i_1, …, i_k), k ≥ m
    ``m``           int         1 ≤ m ≤ k
    returns         [S, n_i]    π^{i_m}_new
    ==============  ==========  ================================================
    """
    game, pis, pis_new, order, m, Q = _setup(game, pis, pis_new, order, m)
    delta, eps, p_min = _instance(delta, clip_eps, p_min, game.action_counts)
    _check_old([pis[order[m - 1]]], delta, p_min)
    d = _g.visitation(game, pis) * (1.0 - game.gamma)
    return _step(Q, pis, pis_new, order, m, d, delta, eps, p_min, bool(joint))


def haml_update(game: MarkovGame, pis, order, delta=None, clip_eps=None, p_min: float = 0.0,
                joint: bool = False) -> list[torch.Tensor]:
    r"""One iteration of HAML (HARL JMLR Template 2): every agent in ``order`` takes :func:`agent_step`.

    Implements Chapter 8, eq. ``eq-haml-update`` for m = 1..n: π^{i_m}_{k+1} = argmax over
    𝒰^{i_m}_{π_k}(π^{i_m}_k) of E_{s∼d_{π_k}}[HAMO(s)], with π^{i_{1:m−1}}_{k+1} the agents already
    updated and A, d, 𝔇 those of the old joint policy π_k. Lemma 13 with Lemma 23:
    V_{π_{k+1}}(s) ≥ V_{π_k}(s) for every s, hence J(π_{k+1}) ≥ J(π_k) (Theorem 14, part 1).

    ==============  ==========  ================================================
    Symbol          Shape       Meaning
    ==============  ==========  ================================================
    ``pis[i]``      [S, n_i]    old policy π^i_k
    ``order``       tuple       a permutation (i_1, …, i_n) of the agents
    returns         list        π^i_{k+1}, agent 0 first
    ==============  ==========  ================================================
    """
    game = _g._game(game)
    pis = [p.detach() for p in _g.check_joint_policy(game, pis)]
    order = _order(order, game.num_agents)
    delta, eps, p_min = _instance(delta, clip_eps, p_min, game.action_counts)
    _check_old(pis, delta, p_min)
    return _update(game, pis, order, delta, eps, p_min, bool(joint))[0]


def _update(game, pis, order, delta, eps, p_min, joint) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One HAML iteration from validated arguments; returns the new policies and Q of the old ones."""
    Q = _g.q_value(game, pis)
    d = _g.visitation(game, pis) * (1.0 - game.gamma)
    new = list(pis)
    for m, i in enumerate(order, start=1):
        new[i] = _step(Q, pis, new, order, m, d, delta, eps, p_min, joint)
    return new, Q


@dataclass
class HAMLRun:
    """History of :func:`run_haml` (K iterations, N agents, S states).

    ==============  ============  ===================================================
    Field           Shape         Meaning
    ==============  ============  ===================================================
    ``J``           [K+1]         J(π_0), …, J(π_K)
    ``V``           [K+1, S]      V_{π_k}(s)
    ``policies``    K+1 lists     π_k as lists of [S, n_i] tables, agent 0 first
    ``orders``      K tuples      the permutation used at iteration k
    ``hamo``        [K, N, S]     HAMO(s) of the m-th agent of order_k at its new policy
                                  (row m−1); ≥ 0 at every state (Lemma 23)
    ==============  ============  ===================================================
    """

    J: torch.Tensor
    V: torch.Tensor
    policies: list
    orders: list
    hamo: torch.Tensor


def run_haml(game: MarkovGame, pis0, iterations: int, seed: int = 0, delta=None, clip_eps=None,
             p_min: float = 0.0, joint: bool = False) -> HAMLRun:
    r"""HAML (Template 2) for ``iterations`` steps, a fresh random permutation each step.

    Implements Chapter 8, eq. ``eq-haml-update`` repeatedly: π_{k+1} = :func:`haml_update` (π_k,
    order_k), order_k = ``torch.randperm(N)`` from one ``torch.Generator`` seeded with ``seed``
    (every permutation has probability 1/N!). Theorem 14: J and every V(s) are non-decreasing,
    V_{π_k} and J(π_k) converge, and the limit points are Nash equilibria (within the p_min-soft
    policies if ``p_min`` > 0).

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis0[i]``     [S, n_i]    initial policies
    ``iterations``  int         K ≥ 0
    ``seed``        int         seed of the permutations
    returns         —           :class:`HAMLRun`
    ==============  ==========  ===============================================
    """
    game = _g._game(game)
    pis = [p.detach() for p in _g.check_joint_policy(game, pis0, "pis0")]
    K = _trpo._nonneg_int(iterations, "iterations")
    delta, eps, p_min = _instance(delta, clip_eps, p_min, game.action_counts)
    _check_old(pis, delta, p_min)
    gen = torch.Generator().manual_seed(_m._check_seed(seed))
    N, S = game.num_agents, game.num_states
    Vs, policies, orders, hamos = [_g.value(game, pis)], [pis], [], []
    for _ in range(K):
        order = tuple(int(i) for i in torch.randperm(N, generator=gen))
        new, Q = _update(game, pis, order, delta, eps, p_min, bool(joint))
        hamos.append(torch.stack([_hamo(Q, pis, new, order, m, eps, bool(joint)) for m in range(1, N + 1)]))
        pis = new
        Vs.append(_g.value(game, pis))
        policies.append(pis)
        orders.append(order)
    V = torch.stack(Vs)
    return HAMLRun(J=V @ game.rho0, V=V, policies=policies, orders=orders,  # J = Σ_s ρ0(s) V(s)
                   hamo=torch.stack(hamos) if hamos else torch.zeros((0, N, S), dtype=DTYPE))
