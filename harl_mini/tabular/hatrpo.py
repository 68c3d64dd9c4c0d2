r"""The exact multi-agent trust-region theory of HATRPO/HAPPO on tabular games (Chapter 8).

Kuba et al. (ICLR 2022) and Zhong et al. (HARL, JMLR 2024) extend TRPO's lower bound to a
team of agents that update **one after another** (theory reference §5d–§5f). This module
computes every object of that theory exactly, in float64 torch, on a
:class:`~harl_mini.tabular.game.MarkovGame`:

* the multi-agent surrogate L^{i_{1:m}}_π(π̄^{i_{1:m−1}}, π̂^{i_m}) (Definition 2,
  eq. ``eq-ma-surrogate``) and its importance-sampling form with the factor M
  (Proposition 2, eq. ``eq-ma-estimator``);
* TRPO's penalty C = 4γ max|A_π|/(1−γ)² of the **joint** advantage and the multi-agent
  lower bound (Lemma 2, eq. ``eq-ma-bound``);
* one iteration of Algorithm 1, solved exactly (:func:`sequential_update`), the
  simultaneous variant that drops the sequential conditioning (:func:`simultaneous_update`),
  and whole runs (:func:`run_sequential`, :func:`run_simultaneous`);
* Nash equilibria: best-response values, the Nash gap and a test
  (:func:`nash_gap`, :func:`is_nash_equilibrium`), for Theorem 3.

Scope: Theorems 2 and 3 are about this exact Algorithm 1 (max-KL penalty, exact argmax).
Exact HATRPO- and HAPPO-type updates are covered by HAML (:mod:`harl_mini.tabular.haml`,
Theorem 14 of HARL); the sampled algorithms of :mod:`harl_mini.marl` by neither.

Conventions (theory reference §0, convention U): J, A unnormalised; ρ_π(s) = Σ_t γ^t
Pr(s_t = s) of the **old** joint policy π (total mass 1/(1−γ)). Orders are tuples of agent
indices (i_1, …, i_n); ``m`` counts from 1, as in the paper.

================  ================  ======================================================
Symbol            Shape             Meaning
================  ================  ======================================================
``pis[i]``        [S, n_i]          old policy π^i of agent i (the point of expansion)
``pis_new[i]``    [S, n_i]          candidate policy: π̄^{i_j} for j < m, π̂^{i_m} for j = m
``order``         (i_1, …, i_n)     the update order, distinct agent indices
``m``             int, 1 ≤ m ≤ n    the position of the agent being updated
``A``             [S, n_1..n_N]     joint advantage A_π(s, a) of the old policy
``rho``           [S]               ρ_π, visitation of the old joint policy
``C``             scalar            4γ max_{s,a} |A_π(s, a)| / (1−γ)²
``M``             [S, n_1..n_N]     Π_{j<m} π̄^{i_j}(a^{i_j}|s) / π^{i_j}(a^{i_j}|s)
``eta_soft``      scalar p_min ≥ 0  softness floor: every π^i(a^i|s) ≥ p_min (η of Assumption 1)
================  ================  ======================================================
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from harl_mini.errors import HarlMiniError
from harl_mini.tabular import game as _g
from harl_mini.tabular import mdp as _m
from harl_mini.tabular import trpo as _trpo
from harl_mini.tabular.divergence import kl_max
from harl_mini.tabular.game import MarkovGame
from harl_mini.tabular.updates import _contract_given, _order

__all__ = [
    "m_factor",
    "ma_surrogate",
    "ma_surrogate_estimator",
    "ma_penalty_constant",
    "ma_lower_bound",
    "soften",
    "sequential_update",
    "simultaneous_update",
    "MultiAgentRun",
    "run_sequential",
    "run_simultaneous",
    "best_response_values",
    "nash_gap",
    "is_nash_equilibrium",
]

DTYPE = torch.float64


# ---------------------------------------------------------------------------------------
# Argument helpers
# ---------------------------------------------------------------------------------------


def _position(m, order: tuple[int, ...]) -> int:
    if isinstance(m, bool) or not isinstance(m, numbers.Integral) or not 1 <= int(m) <= len(order):
        raise HarlMiniError(f"m: expected an integer 1 <= m <= {len(order)} (the position in order {order}), got {m!r}")
    return int(m)


def _pair(game: MarkovGame, pis, pis_new) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    return _g.check_joint_policy(game, pis, "pis"), _g.check_joint_policy(game, pis_new, "pis_new")


def _constant(C, game: MarkovGame, pis: list[torch.Tensor]) -> float:
    if C is None:
        return float(ma_penalty_constant(game, pis))
    if isinstance(C, torch.Tensor) and C.numel() == 1:
        C = float(C)
    if isinstance(C, bool) or not isinstance(C, numbers.Real) or not (math.isfinite(float(C)) and C >= 0):
        raise HarlMiniError(f"C: expected a finite number >= 0 (or None for the joint-advantage constant), got {C!r}")
    return float(C)


def _eta(eta_soft, counts: tuple[int, ...]) -> float:
    if isinstance(eta_soft, bool) or not isinstance(eta_soft, numbers.Real) or not (
            math.isfinite(float(eta_soft)) and eta_soft >= 0):
        raise HarlMiniError(f"eta_soft: expected a finite number >= 0, got {eta_soft!r}")
    eta = float(eta_soft)
    if eta > 0 and eta * max(counts) >= 1:
        raise HarlMiniError(f"eta_soft: needs eta * n_i < 1 for every agent (largest n_i = {max(counts)}), got {eta}")
    return eta


def _check_soft(pis: list[torch.Tensor], eta: float) -> None:
    for i, p in enumerate(pis):
        if eta > 0 and bool((p < eta - 1e-12).any()):
            raise HarlMiniError(f"pis[{i}]: not eta-soft (min entry {float(p.min()):.3g} < eta_soft = {eta}); "
                                f"start from soften(pis, eta_soft)")


def _agent_advantage(Q: torch.Tensor, pis: list[torch.Tensor], before: tuple[int, ...], i: int) -> torch.Tensor:
    """A^{i}_π(s, a^{before}, a^{i}) = Q^{before, i} − Q^{before}, axes [S, *before, i] (eq-ma-advantage)."""
    big = _g._marginal(Q, pis, before + (i,))
    small = _g._marginal(Q, pis, before)
    return big - small.unsqueeze(-1)


def _conditioned(Q, pis, pis_new, order, m) -> torch.Tensor:
    """g(s, a^{i_m}) = E_{a^{i_{1:m−1}} ∼ π̄}[A^{i_m}_π(s, a^{i_{1:m−1}}, a^{i_m})], shape [S, n_{i_m}]."""
    before = order[: m - 1]
    adv = _agent_advantage(Q, pis, before, order[m - 1])
    return _contract_given(adv, [pis_new[j] for j in before])


# ---------------------------------------------------------------------------------------
# The surrogate, the estimator and the factor M
# ---------------------------------------------------------------------------------------


def ma_surrogate(game: MarkovGame, pis, pis_new, order, m) -> torch.Tensor:
    r"""The multi-agent surrogate L^{i_{1:m}}_π(π̄^{i_{1:m−1}}, π̂^{i_m}), a 0-dim tensor.

    Implements Chapter 8, eq. ``eq-ma-surrogate`` (Kuba et al. 2022, Definition 2):
    L^{i_{1:m}}_π(π̄^{i_{1:m−1}}, π̂^{i_m}) = Σ_s ρ_π(s) E_{a^{i_{1:m−1}}∼π̄^{i_{1:m−1}},
    a^{i_m}∼π̂^{i_m}}[A^{i_m}_π(s, a^{i_{1:m−1}}, a^{i_m})],
    with A^{i_m}_π(s, a^{i_{1:m−1}}, a^{i_m}) = Q^{i_{1:m}}_π − Q^{i_{1:m−1}}_π
    (eq. ``eq-ma-advantage``) and ρ_π of the old joint policy. π̄^{i_j} = ``pis_new[i_j]``
    for j < m and π̂^{i_m} = ``pis_new[i_m]``; the other entries of ``pis_new`` are unused.
    It vanishes at π̂^{i_m} = π^{i_m} for every π̄ (eq. 6), and by Lemma 1
    Σ_m L^{i_{1:m}}_π(π̄^{i_{1:m−1}}, π̄^{i_m}) = L_π(π̄) − J(π). Differentiable in ``pis_new``.

    ==============  =============  ================================================
    Symbol          Shape          Meaning
    ==============  =============  ================================================
    ``pis[i]``      [S, n_i]       old policy π^i (supplies ρ_π and A_π)
    ``pis_new[i]``  [S, n_i]       π̄^{i_j} (j < m) and π̂^{i_m}
    ``order``       tuple          (i_1, …, i_k), k ≥ m, distinct agents
    ``m``           int            1 ≤ m ≤ k
    returns         []             L^{i_{1:m}}_π
    ==============  =============  ================================================
    """
    game = _g._game(game)
    pis, pis_new = _pair(game, pis, pis_new)
    order = _order(order, game.num_agents, full=False)
    m = _position(m, order)
    Q = _g.q_value(game, pis)
    rho = _g.visitation(game, pis)
    g = _conditioned(Q, pis, pis_new, order, m)
    return (rho.unsqueeze(-1) * pis_new[order[m - 1]] * g).sum()


def _ratio(p_new: torch.Tensor, p_old: torch.Tensor, i: int) -> torch.Tensor:
    used = p_old > 0
    if bool((~used & (p_new > 0)).any()):
        raise HarlMiniError(f"pis_new[{i}]: puts mass on an action that pis[{i}] never takes; the ratio "
                            f"π̄/π of Proposition 2 needs π̄ << π (absolute continuity)")
    return torch.where(used, p_new / torch.where(used, p_old, torch.ones_like(p_old)), torch.zeros_like(p_old))


def _broadcast(t: torch.Tensor, i: int, N: int) -> torch.Tensor:
    """A per-agent table [S, n_i] viewed on the joint grid [S, 1, …, n_i, …, 1]."""
    shape = [t.shape[0]] + [1] * N
    shape[i + 1] = t.shape[1]
    return t.reshape(shape)


def m_factor(pis, pis_new, order, m) -> torch.Tensor:
    r"""The factor M of Proposition 2: the product of the earlier agents' probability ratios.

    Implements Chapter 8, eq. ``eq-ma-estimator`` (the ratio part of HATRPO's M, eq. 10):
    M^{i_{1:m}}(s, a) = Π_{j=1}^{m−1} π̄^{i_j}(a^{i_j} | s) / π^{i_j}(a^{i_j} | s), without
    the advantage; M^{i_1} ≡ 1 and M^{i_{1:m+1}} = (π̄^{i_m}/π^{i_m}) M^{i_{1:m}} (the
    recursion of HARL's ``factor``). Entries where π^{i_j}(a^{i_j}|s) = 0 are 0; π̄ must
    not put mass there (absolute continuity), else :class:`HarlMiniError`.

    ==============  ===============  ==============================================
    Symbol          Shape            Meaning
    ==============  ===============  ==============================================
    ``pis[i]``      [S, n_i]         old policy π^i
    ``pis_new[i]``  [S, n_i]         new policy π̄^i (only i_{1:m−1} are used)
    ``order``       tuple            (i_1, …, i_k), k ≥ m
    ``m``           int              1 ≤ m ≤ k
    returns         [S, n_1..n_N]    M(s, a^1, …, a^N), axes in agent-index order
    ==============  ===============  ==============================================
    """
    pis = _g._check_policy_list(pis, "pis")
    pis_new = _g._check_policy_list(pis_new, "pis_new")
    N = len(pis)
    if len(pis_new) != N:
        raise HarlMiniError(f"pis_new: expected {N} policies (one per agent, as in pis), got {len(pis_new)}")
    for i, (p, q) in enumerate(zip(pis, pis_new)):
        if p.shape != q.shape:
            raise HarlMiniError(f"pis_new[{i}]: expected shape {list(p.shape)} (as pis[{i}]), got {list(q.shape)}")
    order = _order(order, N, full=False)
    m = _position(m, order)
    S = pis[0].shape[0]
    M = torch.ones((S, *(p.shape[1] for p in pis)), dtype=DTYPE)
    for i in order[: m - 1]:
        M = M * _broadcast(_ratio(pis_new[i], pis[i], i), i, N)
    return M


def ma_surrogate_estimator(game: MarkovGame, pis, pis_new, order, m) -> torch.Tensor:
    r"""Proposition 2's form of the surrogate: an expectation under the **old** joint policy.

    Implements Chapter 8, eq. ``eq-ma-estimator`` (Kuba et al. 2022, Proposition 2):
    Σ_s ρ_π(s) E_{a∼π}[(π̂^{i_m}(a^{i_m}|s)/π^{i_m}(a^{i_m}|s) − 1) M(s, a) A_π(s, a)],
    with M = :func:`m_factor` and A_π the **joint** advantage. This is what HATRPO/HAPPO
    estimate from samples of the old policy; it equals :func:`ma_surrogate` exactly
    whenever π̄^{i_j} ≪ π^{i_j} and π̂^{i_m} ≪ π^{i_m}.

    ==============  =============  ================================================
    Symbol          Shape          Meaning
    ==============  =============  ================================================
    ``pis[i]``      [S, n_i]       old policy π^i
    ``pis_new[i]``  [S, n_i]       π̄^{i_j} (j < m) and π̂^{i_m}
    ``order``       tuple          (i_1, …, i_k), k ≥ m
    ``m``           int            1 ≤ m ≤ k
    returns         []             the estimator's expectation
    ==============  =============  ================================================
    """
    game = _g._game(game)
    pis, pis_new = _pair(game, pis, pis_new)
    order = _order(order, game.num_agents, full=False)
    m = _position(m, order)
    N = game.num_agents
    i = order[m - 1]
    M = m_factor(pis, pis_new, order, m)
    r = _broadcast(_ratio(pis_new[i], pis[i], i), i, N)
    A = _g.advantage(game, pis)
    rho = _g.visitation(game, pis)
    joint = _g._product(pis)
    return (rho.reshape(-1, *([1] * N)) * joint * (r - 1.0) * M * A).sum()


# ---------------------------------------------------------------------------------------
# Lemma 2: the penalty and the lower bound
# ---------------------------------------------------------------------------------------


def ma_penalty_constant(game: MarkovGame, pis) -> torch.Tensor:
    r"""C = 4γ max_{s,a} |A_π(s, a)| / (1−γ)² of the **joint** advantage (0-dim tensor).

    Implements Chapter 8, eq. ``eq-ma-bound`` (Kuba et al. 2022, Lemma 2): TRPO's constant
    (:func:`harl_mini.tabular.trpo.penalty_constant`) computed on the joint MDP with the
    joint policy, the max running over all states and joint actions.

    ==============  =============  ================================================
    Symbol          Shape          Meaning
    ==============  =============  ================================================
    ``pis[i]``      [S, n_i]       old policy π^i
    returns         []             C
    ==============  =============  ================================================
    """
    game = _g._game(game)
    pis = _g.check_joint_policy(game, pis)
    return _trpo.penalty_constant(game.joint_mdp(), _g._product(pis).reshape(game.num_states, -1))


def ma_lower_bound(game: MarkovGame, pis, pis_new, order, C=None) -> torch.Tensor:
    r"""The multi-agent trust-region lower bound on J(π̄), a 0-dim tensor.

    Implements Chapter 8, eq. ``eq-ma-bound`` (Kuba et al. 2022, Lemma 2; HARL Lemma 6):
    J(π̄) ≥ J(π) + Σ_{m=1}^{n} [L^{i_{1:m}}_π(π̄^{i_{1:m−1}}, π̄^{i_m}) − C D_KL^max(π^{i_m}, π̄^{i_m})],
    C = :func:`ma_penalty_constant` unless given. Equality at π̄ = π. With C = 0 the
    penalty terms are dropped (no 0 · ∞); with C > 0 a π̄^i that drops an action π^i uses
    gives −∞.

    ==============  =============  ================================================
    Symbol          Shape          Meaning
    ==============  =============  ================================================
    ``pis[i]``      [S, n_i]       old policy π^i
    ``pis_new[i]``  [S, n_i]       new policy π̄^i
    ``order``       tuple          a permutation (i_1, …, i_n) of all agents
    ``C``           scalar         penalty coefficient (default: joint-advantage C)
    returns         []             the right-hand side of Lemma 2
    ==============  =============  ================================================
    """
    game = _g._game(game)
    pis, pis_new = _pair(game, pis, pis_new)
    order = _order(order, game.num_agents)
    C = _constant(C, game, pis)
    Q = _g.q_value(game, pis)
    rho = _g.visitation(game, pis)
    total = _g.objective(game, pis)
    for m, i in enumerate(order, start=1):
        g = _conditioned(Q, pis, pis_new, order, m)
        total = total + (rho.unsqueeze(-1) * pis_new[i] * g).sum()
        if C > 0:
            total = total - C * kl_max(pis[i], pis_new[i])
    return total


# ---------------------------------------------------------------------------------------
# The exact per-agent maximiser
# ---------------------------------------------------------------------------------------


def _newton(fun, x0, lo, hi, xtol: float = 1e-13, ftol: float = 1e-14, iters: int = 200):
    """Vectorised safeguarded Newton for the root of a decreasing f on [lo, hi].

    ``fun(x) -> (f, f')``. A bracket [lo, hi] is kept and shrunk with the sign of f; a
    Newton step that leaves it (or a non-finite or non-negative slope) is replaced by
    bisection, so the iteration cannot diverge; if f has no root in the bracket it converges
    to the end where |f| is smallest. Stops per element when |f| <= ftol, the step is below
    xtol (1 + |x|), or f is at its round-off floor (|f| < 1e-9 and no longer halving, which
    quadratic convergence would otherwise guarantee).
    """
    lo, hi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
    x = np.clip(np.array(x0, dtype=np.float64), lo, hi)
    f_prev = np.full_like(x, np.inf)
    for _ in range(iters):
        f, df = fun(x)
        done = (np.abs(f) <= ftol) | ((np.abs(f) < 1e-9) & (np.abs(f) > 0.5 * np.abs(f_prev)))
        f_prev = f
        lo = np.where(f > 0, x, lo)
        hi = np.where(f < 0, x, hi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            xn = x - f / df
        bad = ~np.isfinite(xn) | ~np.isfinite(df) | ~(df < 0) | (xn <= lo) | (xn >= hi)
        xn = np.where(bad, 0.5 * (lo + hi), xn)
        tiny = xtol * (1.0 + np.abs(x))
        converged = done | (~bad & (np.abs(xn - x) <= tiny)) | (hi - lo <= tiny)
        x = np.where(done, x, xn)
        if converged.all():
            break
    return x


def _log1p_minus(z: np.ndarray) -> np.ndarray:
    """log(1 + z) − z to relative precision ~1e-14 (a series for |z| < 0.01)."""
    small = np.abs(z) < 0.01
    zs = np.where(small, z, 0.0)
    series = np.zeros_like(z)
    for k in range(9, 1, -1):  # −z²(1/2 − z/3 + z²/4 − …), truncation error < 0.01^8
        series = (1.0 if k % 2 == 0 else -1.0) / k + zs * series
    series = -zs * zs * series
    with np.errstate(invalid="ignore", divide="ignore"):
        direct = np.log1p(np.where(small, 0.0, z)) - np.where(small, 0.0, z)
    return np.where(small, series, direct)


_V_RANGE = (-60.0, 60.0)  # v = log((μ − max g)/spread) per state
_LOG_T_RANGE = (-40.0, 10.0)  # log of the common KL level t; below e^-40 the step is q = p to round-off


def _soft_greedy(g: np.ndarray, eta: float) -> np.ndarray:
    """argmax over p_min-soft rows of ⟨q, g⟩: p_min on every action, the rest on the first maximiser."""
    n = g.shape[1]
    best = np.argmax(g, axis=1)
    q = np.full(g.shape, eta)
    q[np.arange(g.shape[0]), best] += 1.0 - n * eta
    return q


def _penalised_argmax(p: np.ndarray, g: np.ndarray, rho: np.ndarray, C: float, eta: float) -> np.ndarray:
    r"""argmax_q Σ_s ρ_s ⟨q_s, g_s⟩ − C max_s KL(p_s ‖ q_s) over (p_min-soft) policy tables q.

    Epigraph form: maximise Σ_s ρ_s⟨q_s, g_s⟩ − C t subject to KL(p_s ‖ q_s) ≤ t and
    q_s ≥ p_min. KKT: on each state with ρ_s > 0 and a non-constant g_s,
    q_s(a) = max(p_min, κ_s p_s(a) / c_s(a)), c_s = μ_s − g_s > 0, where the multiplier of the
    state's KL constraint is κ_s = (1 − p_min·#clipped) / Σ_{unclipped} p_s/c_s (normalisation;
    κ̃ = min over the sorted breakpoints, exact), μ_s is set by KL(p_s ‖ q_s) = t (a state
    whose largest reachable KL is below t saturates, κ_s → 0), and t by Σ_s ρ_s κ_s = C.
    With p_min = 0 this is the family of :func:`harl_mini.tabular.trpo.minorize_maximize_step`.
    Both scalar equations are monotone and are solved by safeguarded Newton with analytic
    derivatives (inner: per state in v = log((μ_s − max g_s)/spread_s); outer: in log t,
    started from the quadratic model t₀ = (Σ_s ρ_s σ_s)² / (2C²)), to 1e-14 in log KL / log C,
    a relative step of 1e-13, or the round-off floor of the residual. KL and its derivative
    are evaluated without cancellation (pairwise differences of g), so tiny steps (large C)
    are as accurate as large ones.
    Other states keep p. C = 0: the (p_min-soft) greedy policy at every state.
    """
    if C == 0.0:
        return _soft_greedy(g, eta)
    g = g - (p * g).sum(-1, keepdims=True)  # mean zero under p (q is shift-invariant)
    supp = p > 0  # q stays 0 off the support of p: give those actions the support's least g
    g = np.where(supp, g, np.where(supp, g, np.inf).min(-1, keepdims=True))
    top = g.max(-1)
    spread = top - g.min(-1)
    active = (rho > 0) & (spread > 1e-12 * max(1.0, float(np.abs(g).max())))
    q = p.copy()
    if not active.any():
        return q
    P, G, r, top, spread = p[active], g[active], rho[active], top[active], spread[active]
    K, n = P.shape
    gap = top[:, None] - G  # ≥ 0, zero at the best action
    gbar = (P * gap).sum(-1)
    pos = P > 0
    logP = np.log(np.where(pos, P, 1.0))
    j = np.arange(1, n + 1)
    dgap = gap[:, None, :] - gap[:, :, None]  # [K, a, b] = gap_b − gap_a

    def family(v):
        """q, log KL, κ, d log KL/dv, d log κ/dv at v (one value per state)."""
        dlt = spread * np.exp(v)
        mu = top + dlt
        c = gap + dlt[:, None]  # μ − g > 0
        y = c / mu[:, None]
        w = P / y
        if eta == 0.0:
            unc = np.ones_like(w, dtype=bool)
            kt = 1.0 / w.sum(-1)
        else:
            W = np.cumsum(-np.sort(-w, axis=-1), axis=-1)
            kt = ((1.0 - (n - j) * eta) / W).min(-1)
            unc = kt[:, None] * w > eta
        qq = np.where(unc, kt[:, None] * w, eta)
        if eta > 0.0:  # KL, general form (used only where some action is clipped: KL is not small there)
            log_ratio = np.where(unc, np.log(y) - np.log(kt)[:, None], logP - math.log(eta))
            kl_gen = np.where(pos, P * log_ratio, 0.0).sum(-1)
        # KL without clipping, from p/q = 1 + z, z_a = Σ_b p_b (gap_a − gap_b)/c_b (no cancellation
        # in z), in whichever of two exact forms has the smaller round-off bound:
        # (A) Σ p z + Σ p (log(1+z) − z), with Σ p z = Σ_b p_b (ḡ − gap_b)² / (c_b (ḡ + δ)) ≥ 0
        #     (accurate for small steps, where the first-order terms of (B) cancel);
        # (B) Σ p log(1+z) (accurate when some p_a z_a is large, e.g. near-deterministic p).
        z = np.where(pos, -(P[:, None, :] * dgap / c[:, None, :]).sum(-1), 0.0)
        s1 = (P * (gbar[:, None] - gap) ** 2 / c).sum(-1) / (gbar + dlt)
        h = P * _log1p_minus(z)
        with np.errstate(divide="ignore", invalid="ignore"):
            l1p = np.where(pos, P * np.log1p(np.maximum(z, -1.0)), 0.0)
        kl_a, kl_b = s1 + h.sum(-1), l1p.sum(-1)
        kl_nc = np.where(s1 + np.abs(h).sum(-1) <= np.abs(l1p).sum(-1), kl_a, kl_b)
        kl_s = np.maximum(np.where(unc.all(-1), kl_nc, kl_gen) if eta > 0.0 else kl_nc, 1e-300)
        Pu = np.where(unc, P, 0.0)
        PU = Pu.sum(-1)
        SU = (Pu / c).sum(-1)
        SU2 = (Pu / c**2).sum(-1)
        # Σ_U p (1/c − x̄)², x̄ = SU/PU, from pairwise differences (no cancellation)
        dev = (Pu[:, None, :] * dgap / (c[:, :, None] * c[:, None, :])).sum(-1) / PU[:, None]
        var = (Pu * dev**2).sum(-1)
        dkl_dv = -dlt * PU * var / SU
        return qq, np.log(kl_s), kt * mu, dkl_dv / kl_s, dlt * SU2 / SU

    lo_v, hi_v = np.full(K, _V_RANGE[0]), np.full(K, _V_RANGE[1])
    lkl_lo, lkl_hi = family(lo_v)[1], family(hi_v)[1]  # log KL at the two ends of the v range
    sigma = np.sqrt(np.maximum((P * (gap - gbar[:, None]) ** 2).sum(-1), 0.0)).clip(min=1e-300)  # std of g under p
    log_t0 = float(np.clip(2 * math.log(max(float((r * sigma).sum()), 1e-300)) - math.log(2.0) - 2 * math.log(C),
                           *_LOG_T_RANGE))
    nu0 = sigma / math.sqrt(2.0 * math.exp(log_t0))  # quadratic model: μ ≈ σ / √(2t)
    state = {"v": np.clip(np.log(np.maximum(nu0 - top, 1e-300) / spread), *_V_RANGE)}

    def v_of(log_t):
        inside = (lkl_lo > log_t) & (lkl_hi < log_t)
        v = np.where(lkl_lo <= log_t, lo_v, hi_v)  # saturated states sit at an end
        if inside.any():
            idx = np.flatnonzero(inside)

            def fun(x):
                full = state["v"].copy()
                full[idx] = x
                out = family(full)
                return out[1][idx] - log_t, out[3][idx]

            v[idx] = _newton(fun, state["v"][idx], lo_v[idx], hi_v[idx])
        state["v"] = v
        return v, inside, family(v)

    log_C = math.log(C)

    def F(x):  # log Σ_s ρ_s κ_s(t) − log C and its derivative in x = log t (decreasing)
        _, inside, (_, _, kappa, dlkl, dlk) = v_of(float(x[0]))
        total = float((r * kappa).sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(inside, dlk / np.where(inside, dlkl, -1.0), 0.0)
        return np.array([math.log(total) - log_C]), np.array([float((r * kappa * slope).sum()) / total])

    log_t = float(_newton(F, np.array([log_t0]), np.array([_LOG_T_RANGE[0]]), np.array([_LOG_T_RANGE[1]]))[0])
    qq = v_of(log_t)[2][0]
    q[active] = qq / qq.sum(-1, keepdims=True)
    # an exact q(a) far below p(a) ~ 1e-300 would underflow to 0 and make KL(p ‖ q) = inf in
    # floating point: keep such entries at the smallest normal float (a change < 1e-307)
    return np.where(p > 0, np.maximum(q, np.finfo(np.float64).tiny), 0.0)


def _solve(p: torch.Tensor, g: torch.Tensor, rho: torch.Tensor, C: float, eta: float) -> torch.Tensor:
    q = _penalised_argmax(p.detach().numpy(), g.detach().numpy(), rho.detach().numpy(), C, eta)
    return torch.as_tensor(q, dtype=DTYPE)


# ---------------------------------------------------------------------------------------
# Algorithm 1 and the simultaneous variant
# ---------------------------------------------------------------------------------------


def soften(pis, eta) -> list[torch.Tensor]:
    r"""Mix each policy with the uniform one so that every entry is ≥ p_min (Assumption 1).

    Implements Chapter 8, eq. ``eq-eta-soft`` (Kuba et al. 2022, Assumption 1):
    π^i_{p_min} = (1 − n_i p_min) π^i + p_min, so π^i_{p_min}(a|s) ≥ p_min; the identity for
    p_min = 0. Returns a new list. (Kuba et al.'s Assumption 1 writes η for the floor p_min.)

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis[i]``      [S, n_i]    policy of agent i
    ``eta``         scalar      0 ≤ p_min < 1/n_i for every agent
    returns         list        p_min-soft policies [S, n_i]
    ==============  ==========  ===============================================
    """
    pis = _g._check_policy_list(pis, "pis")
    eta = _eta(eta, tuple(p.shape[1] for p in pis))
    return [(1.0 - p.shape[1] * eta) * p + eta for p in pis]


def _setup(game, pis, C, eta_soft):
    game = _g._game(game)
    pis = [p.detach() for p in _g.check_joint_policy(game, pis)]
    eta = _eta(eta_soft, game.action_counts)
    C = _constant(C, game, pis)
    _check_soft(pis, eta)
    return game, pis, C, eta


def sequential_update(game: MarkovGame, pis, order, C=None, eta_soft: float = 0.0) -> list[torch.Tensor]:
    r"""One iteration of Algorithm 1 (Kuba et al. 2022), each agent's step solved exactly.

    Implements Chapter 8, eq. ``eq-hatrpo-update``: for m = 1..n,
    π^{i_m}_new = argmax_{π^{i_m}} [L^{i_{1:m}}_π(π^{i_{1:m−1}}_new, π^{i_m}) − C D_KL^max(π^{i_m}_old, π^{i_m})],
    the agents before i_m already at their new policies, ρ_π, A_π and C those of the old
    joint policy (C = :func:`ma_penalty_constant` unless given). The maximand is 0 at the old
    policy, so every term of Lemma 2 is ≥ 0 and J(π_new) ≥ J(π) (Theorem 2), for any order.

    How the argmax is found: with the others fixed, agent i_m's maximand is
    Σ_s ρ_π(s) Σ_a π^{i_m}(a|s) g_s(a) − C max_s KL, g_s(a) the conditioned advantage
    E_{a^{i_{1:m−1}}∼π_new}[A^{i_m}_π(s, a^{i_{1:m−1}}, a)]; this is TRPO's penalised
    problem for one agent, solved as in :func:`harl_mini.tabular.trpo.minorize_maximize_step`
    (epigraph form, KKT family q ∝ π/(μ_s − g_s), two monotone scalar equations) with
    safeguarded Newton instead of bisection, to 1e-14 in log scale (for one agent it agrees
    with ``minorize_maximize_step`` to ~1e-13). With ``eta_soft`` = p_min > 0 the maximisation
    runs over the p_min-soft policies of Assumption 1 (KKT: q = max(p_min, κ π/(μ − g))), so the
    result is p_min-soft and the old policy (which must be p_min-soft, see :func:`soften`) stays
    feasible. C = 0 (e.g. γ = 0): the (p_min-soft) greedy policy at every state, i.e.
    :func:`~harl_mini.tabular.updates.sequential_best_response` when p_min = 0. With C > 0 an
    action with π^{i_m}(a|s) = 0 keeps probability 0 (the maximum is over policies with the
    old support; it is the exact argmax whenever π^{i_m} > 0). The exact maximiser can
    shrink a probability by a factor e^{-t/π(a|s)}; entries that would underflow are kept at
    the smallest normal float (a change below 1e-307) so that KL stays finite — use
    ``eta_soft`` > 0 for long runs where this matters.

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis[i]``      [S, n_i]    old policy π^i
    ``order``       tuple       a permutation (i_1, …, i_n) of the agents
    ``C``           scalar      penalty (default: joint-advantage C of π)
    ``eta_soft``    scalar      p_min ≥ 0 of Assumption 1
    returns         list        new policies [S, n_i], agent 0 first
    ==============  ==========  ===============================================
    """
    game, pis, C, eta = _setup(game, pis, C, eta_soft)
    order = _order(order, game.num_agents)
    Q = _g.q_value(game, pis)
    rho = _g.visitation(game, pis)
    new = list(pis)
    for m, i in enumerate(order, start=1):
        g = _conditioned(Q, pis, new, order, m)
        new[i] = _solve(pis[i], g, rho, C, eta)
    return new


def simultaneous_update(game: MarkovGame, pis, C=None, eta_soft: float = 0.0) -> list[torch.Tensor]:
    r"""Every agent solves its own penalised problem against the **old** others, at once.

    Implements Chapter 8, eq. ``eq-simultaneous-trust-region``: for every agent i,
    π^i_new = argmax_{π^i} [L^{i}_π(π^i) − C D_KL^max(π^i_old, π^i)] with
    L^i_π(π^i) = Σ_s ρ_π(s) E_{a^i∼π^i}[A^i_π(s, a^i)] (the surrogate with m = 1), the same
    C and the same exact maximiser as :func:`sequential_update` but no sequential
    conditioning. Each agent's term is ≥ 0, yet the joint step can lower J: the
    cross-agent terms of Lemma 1 are not controlled.

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis[i]``      [S, n_i]    old policy π^i
    ``C``           scalar      penalty (default: joint-advantage C of π)
    ``eta_soft``    scalar      p_min ≥ 0 of Assumption 1
    returns         list        new policies [S, n_i], agent 0 first
    ==============  ==========  ===============================================
    """
    game, pis, C, eta = _setup(game, pis, C, eta_soft)
    Q = _g.q_value(game, pis)
    rho = _g.visitation(game, pis)
    return [_solve(pis[i], _agent_advantage(Q, pis, (), i), rho, C, eta) for i in range(game.num_agents)]


@dataclass
class MultiAgentRun:
    """History of :func:`run_sequential` or :func:`run_simultaneous` (K iterations).

    ==============  ==========  ===================================================
    Field           Shape       Meaning
    ==============  ==========  ===================================================
    ``J``           [K+1]       J(π_0), …, J(π_K)
    ``policies``    K+1 lists   π_k as lists of [S, n_i] tables, agent 0 first
    ``orders``      K tuples    the permutation used at step k (sequential);
                                (0, …, N−1) for the simultaneous run
    ``C``           [K]         the penalty coefficient used at step k
    ``bounds``      [K]         Lemma 2's bound ma_lower_bound(π_k, π_{k+1}, order_k)
                                ≤ J(π_{k+1}); ≥ J(π_k) for the sequential update
    ==============  ==========  ===================================================
    """

    J: torch.Tensor
    policies: list
    orders: list
    C: torch.Tensor
    bounds: torch.Tensor


def _run(game, pis0, iterations, C, eta_soft, step, orders):
    game = _g._game(game)
    pis = _g.check_joint_policy(game, pis0, "pis0")
    K = _trpo._nonneg_int(iterations, "iterations")
    Js, policies, used, Cs, bounds = [_g.objective(game, pis)], [pis], [], [], []
    for _ in range(K):
        order = orders()
        c = _constant(C, game, pis)
        new = step(pis, order, c)
        bounds.append(ma_lower_bound(game, pis, new, order, C=c))
        pis = new
        Js.append(_g.objective(game, pis))
        policies.append(pis)
        used.append(order)
        Cs.append(c)
    return MultiAgentRun(J=torch.stack(Js), policies=policies, orders=used, C=torch.tensor(Cs, dtype=DTYPE),
                         bounds=torch.stack(bounds) if bounds else torch.zeros(0, dtype=DTYPE))


def run_sequential(game: MarkovGame, pis0, iterations: int, seed: int = 0, C=None,
                   eta_soft: float = 0.0) -> MultiAgentRun:
    r"""Algorithm 1 for ``iterations`` steps, a fresh random permutation each step.

    Implements Chapter 8, eq. ``eq-hatrpo-update`` repeatedly: π_{k+1} =
    :func:`sequential_update` (π_k, order_k), order_k = ``torch.randperm(N)`` from one
    ``torch.Generator`` seeded with ``seed``; C is recomputed at every π_k unless given.
    Theorem 2: J(π_{k+1}) ≥ bound_k ≥ J(π_k). Theorem 3 (every order has positive
    probability): the limit points are Nash equilibria (within the p_min-soft class if
    ``eta_soft`` > 0).

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis0[i]``     [S, n_i]    initial policies
    ``iterations``  int         K ≥ 0
    ``seed``        int         seed of the permutations
    returns         —           :class:`MultiAgentRun`
    ==============  ==========  ===============================================
    """
    game = _g._game(game)
    gen = torch.Generator().manual_seed(_m._check_seed(seed))
    N = game.num_agents
    return _run(game, pis0, iterations, C, eta_soft,
                lambda pis, order, c: sequential_update(game, pis, order, C=c, eta_soft=eta_soft),
                lambda: tuple(int(i) for i in torch.randperm(N, generator=gen)))


def run_simultaneous(game: MarkovGame, pis0, iterations: int, C=None, eta_soft: float = 0.0) -> MultiAgentRun:
    r"""The simultaneous trust-region update for ``iterations`` steps (deterministic).

    Implements Chapter 8, eq. ``eq-simultaneous-trust-region`` repeatedly:
    π_{k+1} = :func:`simultaneous_update` (π_k). ``bounds`` holds Lemma 2's bound for the order
    (0, …, N−1) (it holds for every order): it stays ≤ J(π_{k+1}) but, unlike the sequential
    update, may fall below J(π_k), and J can decrease.

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis0[i]``     [S, n_i]    initial policies
    ``iterations``  int         K ≥ 0
    returns         —           :class:`MultiAgentRun`
    ==============  ==========  ===============================================
    """
    game = _g._game(game)
    identity = tuple(range(game.num_agents))
    return _run(game, pis0, iterations, C, eta_soft,
                lambda pis, order, c: simultaneous_update(game, pis, C=c, eta_soft=eta_soft),
                lambda: identity)


# ---------------------------------------------------------------------------------------
# Nash equilibria (Theorem 3)
# ---------------------------------------------------------------------------------------


def _induced_mdp(game: MarkovGame, pis: list[torch.Tensor], i: int) -> _m.FiniteMDP:
    """Agent i's MDP with the others fixed: P_i(s'|s,a^i) = E_{a^{-i}∼π^{-i}} P(s'|s,a), r_i alike."""
    N = game.num_agents
    others = [x for j in range(N) if j != i for x in (pis[j], [0, j + 1])]
    P = torch.einsum(game.P, [0, *range(1, N + 1), N + 1], *others, [0, i + 1, N + 1])
    R = torch.einsum(game.R, [0, *range(1, N + 1)], *others, [0, i + 1])
    return _m.FiniteMDP(P, R, game.gamma, game.rho0)


def best_response_values(game: MarkovGame, pis) -> torch.Tensor:
    r"""J of each agent's best response to the others: max_{π^i} J(π^i, π^{-i}), shape [N].

    Implements Chapter 8, eq. ``eq-nash-equilibrium``: with π^{-i} fixed, agent i faces a
    single-agent MDP (P and r averaged over a^{-i} ∼ π^{-i}); its optimum
    Σ_s ρ0(s) V*_i(s) comes from exact policy iteration
    (:func:`harl_mini.tabular.mdp.optimal_value`). For a one-state γ = 0 game this is
    max_{a^i} Q^i_π(a^i) (:func:`~harl_mini.tabular.game.multi_agent_q`).

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis[i]``      [S, n_i]    policy π^i
    returns         [N]         best-response value of each agent
    ==============  ==========  ===============================================
    """
    game = _g._game(game)
    pis = [p.detach() for p in _g.check_joint_policy(game, pis)]
    out = []
    for i in range(game.num_agents):
        mdp = _induced_mdp(game, pis, i)
        out.append(mdp.rho0 @ _m.optimal_value(mdp))
    return torch.stack(out)


def nash_gap(game: MarkovGame, pis) -> torch.Tensor:
    r"""The largest gain from a unilateral deviation: max_i max_{π^i} J(π^i, π^{-i}) − J(π) (0-dim).

    Implements Chapter 8, eq. ``eq-nash-equilibrium`` (ICLR Definition 3): π is a Nash
    equilibrium iff the gap is 0. Always ≥ 0 (round-off below 0 is clipped).

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis[i]``      [S, n_i]    policy π^i
    returns         []          the Nash gap
    ==============  ==========  ===============================================
    """
    game = _g._game(game)
    pis = [p.detach() for p in _g.check_joint_policy(game, pis)]
    return (best_response_values(game, pis).max() - _g.objective(game, pis)).clamp(min=0.0)


def is_nash_equilibrium(game: MarkovGame, pis, tol: float = 1e-9) -> bool:
    r"""Whether no agent can raise J by more than ``tol`` by changing its own policy alone.

    Implements Chapter 8, eq. ``eq-nash-equilibrium``: :func:`nash_gap` ≤ tol.

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis[i]``      [S, n_i]    policy π^i
    ``tol``         scalar      tolerance ≥ 0
    returns         bool        True iff nash_gap(game, pis) ≤ tol
    ==============  ==========  ===============================================
    """
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (math.isfinite(float(tol)) and tol >= 0):
        raise HarlMiniError(f"tol: expected a finite number >= 0, got {tol!r}")
    return bool(float(nash_gap(game, pis)) <= tol)
