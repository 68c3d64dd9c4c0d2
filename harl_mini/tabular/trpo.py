r"""Exact trust-region theory on tabular MDPs: TRPO's surrogate, its bounds, its steps, PPO's clip (Chapters 4–5).

Everything is computed exactly from the oracle of :mod:`harl_mini.tabular.mdp` (J, V, A,
ρ, d) and the divergences of :mod:`harl_mini.tabular.divergence`; the practical TRPO step
goes through the same :func:`harl_mini.trust_region.trpo_step` as the sampled algorithms,
and the PPO objective through :func:`harl_mini.losses.ppo_clip_objective`.

Conventions (theory reference §0, convention U, as in TRPO): J, A unnormalised,
ρ_π = Σ_t γ^t Pr(s_t = ·) (mass 1/(1−γ)), d_π = (1−γ) ρ_π.

==============  ========  =====================================================
Symbol          Shape     Meaning
==============  ========  =====================================================
``pi``          [S, A]    old policy π (the point the surrogate is built at)
``pi_new``      [S, A]    candidate policy π̃
``adv``         [S, A]    A^π, advantage of the **old** policy
``rho``         [S]       ρ_π, visitation of the old policy
``d``           [S]       d_π = (1−γ) ρ_π
``eps``         scalar    ε = max_{s,a} |A^π(s, a)| (over all pairs, visited or not)
``eps_tilde``   scalar    ε̃(π̃) = max_s |Σ_a π̃(a|s) A^π(s, a)| (Kakade–Langford, Achiam et al.)
``C``           scalar    4εγ/(1−γ)², TRPO's penalty coefficient
``alpha``       scalar    D_TV^max(π, π̃); for a mixture (1−α)π + απ', its weight
``kl_max``      scalar    D_KL^max(π, π̃) = max_s KL(π(·|s) ‖ π̃(·|s))
``mean_kl``     scalar    D̄_KL(π, π̃) = Σ_s d_π(s) KL(π(·|s) ‖ π̃(·|s)), exact (not a batch mean)
``delta``       scalar    trust-region radius on the mean KL under d_π
``clip_eps``    scalar    PPO's clip range ε_clip
==============  ========  =====================================================
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from harl_mini.errors import HarlMiniError, check_positive_int
from harl_mini.losses import ppo_clip_objective
from harl_mini.tabular import mdp as _m
from harl_mini.tabular.divergence import kl_max, mean_kl, mean_tv, tv_max
from harl_mini.tabular.mdp import (
    DTYPE,
    FiniteMDP,
    advantage,
    check_policy,
    greedy_policy,
    objective,
    state_distribution,
    visitation,
)
from harl_mini.tabular.softmax import _fvp, _theta, policy_gradient, softmax_policy
from harl_mini.trust_region import TRPOStepResult, trpo_step

__all__ = [
    "surrogate",
    "penalty_constant",
    "trpo_lower_bound",
    "tv_lower_bound",
    "sharp_bound",
    "eps_tilde",
    "cpi_lower_bound",
    "cpi_certified_weight",
    "cpi_best_weight",
    "mean_tv_lower_bound",
    "mean_kl_lower_bound",
    "exact_trpo_step",
    "MinorizeMaximizeResult",
    "minorize_maximize_step",
    "ppo_objective",
    "kl_penalty_maximiser",
    "adapt_kl_coef",
    "KLPenaltyRun",
    "run_kl_penalty",
]


def _policies(mdp: FiniteMDP, pi, pi_new, names=("pi", "pi_new")) -> tuple[torch.Tensor, torch.Tensor]:
    S, A = mdp.num_states, mdp.num_actions
    return check_policy(pi, S, A, names[0]), check_policy(pi_new, S, A, names[1])


def _gain(rho: torch.Tensor, adv: torch.Tensor, pi_new: torch.Tensor) -> torch.Tensor:
    """Σ_s ρ(s) Σ_a π̃(a|s) A(s,a): the surrogate's improvement term (the one formula for it)."""
    return (rho.unsqueeze(-1) * pi_new * adv).sum()


# ---------------------------------------------------------------------------------------
# The surrogate and TRPO's bounds
# ---------------------------------------------------------------------------------------


def surrogate(mdp: FiniteMDP, pi, pi_new) -> torch.Tensor:
    r"""TRPO's local approximation L_π(π̃), a 0-dim tensor (differentiable in π̃).

    Implements Chapter 4, eq. ``eq-surrogate`` (TRPO eq. 3):
    L_π(π̃) = J(π) + Σ_s ρ_π(s) Σ_a π̃(a | s) A^π(s, a).
    It is the performance-difference identity (eq. ``eq-pdl``) with the new policy's
    visitation ρ_{π̃} replaced by the old one's, ρ_π. Hence L_π(π) = J(π) (because
    Σ_a π A^π = 0) and ∇_θ L_{π_θ0}(π_θ)|_{θ0} = ∇_θ J(π_θ)|_{θ0} (TRPO eq. 4).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   old policy π (supplies J, ρ_π and A^π)
    ``pi_new``  [S, A]   candidate π̃
    returns     []       L_π(π̃)
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi, pi_new = _policies(mdp, pi, pi_new)
    return objective(mdp, pi) + _gain(visitation(mdp, pi), advantage(mdp, pi), pi_new)


def _eps(mdp: FiniteMDP, pi: torch.Tensor) -> torch.Tensor:
    """ε = max over all (s, a) of |A^π(s, a)|."""
    return advantage(mdp, pi).abs().max()


def penalty_constant(mdp: FiniteMDP, pi) -> torch.Tensor:
    r"""TRPO's penalty coefficient C = 4εγ/(1−γ)², ε = max_{s,a} |A^π(s,a)| (0-dim tensor).

    Implements Chapter 4, eq. ``eq-trpo-bound`` (TRPO Theorem 1). The maximum defining ε runs
    over **all** state-action pairs, including states the policy never visits.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   old policy π
    ``eps``     []       max_{s,a} |A^π(s,a)|
    returns     []       C
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi = check_policy(pi, mdp.num_states, mdp.num_actions, "pi")
    g = mdp.gamma
    return 4.0 * _eps(mdp, pi) * g / (1.0 - g) ** 2


def trpo_lower_bound(mdp: FiniteMDP, pi, pi_new) -> torch.Tensor:
    r"""TRPO's KL lower bound M_π(π̃) = L_π(π̃) − C · D_KL^max(π, π̃) ≤ J(π̃) (0-dim tensor).

    Implements Chapter 4, eq. ``eq-trpo-bound`` (TRPO eq. 9): J(π̃) ≥ L_π(π̃) − C D_KL^max(π, π̃),
    C = 4εγ/(1−γ)². Equality at π̃ = π. The bound is −∞ when π̃ drops an action π uses.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   old policy π
    ``pi_new``  [S, A]   candidate π̃
    ``C``       []       :func:`penalty_constant`
    ``kl_max``  []       max_s KL(π(·|s) ‖ π̃(·|s))
    returns     []       L − C·kl_max
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi, pi_new = _policies(mdp, pi, pi_new)
    return surrogate(mdp, pi, pi_new) - penalty_constant(mdp, pi) * kl_max(pi, pi_new)


def tv_lower_bound(mdp: FiniteMDP, pi, pi_new) -> torch.Tensor:
    r"""TRPO Theorem 1 in its total-variation form: L_π(π̃) − C α² ≤ J(π̃) (0-dim tensor).

    Implements Chapter 4, eq. ``eq-trpo-tv-bound`` (TRPO eq. 8):
    J(π̃) ≥ L_π(π̃) − (4εγ/(1−γ)²) α², α = D_TV^max(π, π̃). Since α² ≤ D_KL^max, it is at
    least as tight as :func:`trpo_lower_bound`.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   old policy π
    ``pi_new``  [S, A]   candidate π̃
    ``alpha``   []       max_s TV(π(·|s), π̃(·|s))
    returns     []       L − C·α²
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi, pi_new = _policies(mdp, pi, pi_new)
    return surrogate(mdp, pi, pi_new) - penalty_constant(mdp, pi) * tv_max(pi, pi_new) ** 2


def sharp_bound(mdp: FiniteMDP, pi, pi_new) -> torch.Tensor:
    r"""The two-sided error bound inside TRPO's proof: |J(π̃) − L_π(π̃)| ≤ this (0-dim tensor).

    Implements Chapter 4, eq. ``eq-trpo-sharp`` (TRPO Appendix A, eqs. 41–45):
    |J(π̃) − L_π(π̃)| ≤ Σ_t γ^t 4εα(1 − (1−α)^t) = 4α²γε / ((1−γ)(1 − γ(1−α))),
    which is ≤ C α² = 4εγα²/(1−γ)². It holds in both directions, so L also cannot
    *under*-estimate J by more than this.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   old policy π
    ``pi_new``  [S, A]   candidate π̃
    ``alpha``   []       D_TV^max(π, π̃)
    ``eps``     []       max_{s,a} |A^π(s,a)|
    returns     []       4α²γε / ((1−γ)(1−γ(1−α)))
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi, pi_new = _policies(mdp, pi, pi_new)
    g = mdp.gamma
    alpha = tv_max(pi, pi_new)
    return 4.0 * alpha**2 * g * _eps(mdp, pi) / ((1.0 - g) * (1.0 - g * (1.0 - alpha)))


# ---------------------------------------------------------------------------------------
# Bounds with ε̃: Kakade–Langford's mixtures and Achiam et al.'s mean divergences
# ---------------------------------------------------------------------------------------


def eps_tilde(mdp: FiniteMDP, pi, pi_new) -> torch.Tensor:
    r"""ε̃(π̃) = max_s |Σ_a π̃(a|s) A^π(s, a)| (0-dim tensor, differentiable in π̃).

    The scale of the bounds of Chapter 4, eqs. ``eq-cpi-bound`` (with π̃ = the target π' of
    the mixture; Kakade & Langford 2002, Theorem 4.1) and ``eq-mean-kl-bound`` (Achiam et al.
    2017, Corollary 1). Unlike ε of :func:`penalty_constant` it averages over the actions of
    π̃, so ε̃(π) = 0; like ε, the maximum runs over **all** states, visited or not.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   old policy π (supplies A^π)
    ``pi_new``  [S, A]   the policy whose actions are averaged
    returns     []       ε̃ ≤ ε
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi, pi_new = _policies(mdp, pi, pi_new)
    return (pi_new * advantage(mdp, pi)).sum(-1).abs().max()


def cpi_lower_bound(mdp: FiniteMDP, pi, pi_target, alpha) -> torch.Tensor:
    r"""Kakade–Langford's bound for the mixture π_α = (1−α)π + απ': a lower bound on J(π_α).

    Implements Chapter 4, eq. ``eq-cpi-bound`` (Kakade & Langford 2002, Theorem 4.1, in
    convention U; theory reference §1d):
    J(π_α) ≥ L_π(π_α) − 2α²γε̃(π') / ((1−γ)(1 − γ(1−α))), ε̃(π') = max_s |Σ_a π'(a|s) A^π(s,a)|.
    The same term bounds |J(π_α) − L_π(π_α)| from both sides; with 1 − γ(1−α) ≥ 1 − γ it
    gives TRPO's eq. (6), J(π_α) ≥ L_π(π_α) − 2ε̃γα²/(1−γ)². Here L_π(π_α) − J(π) = α Σ_s ρ_π(s)
    Σ_a π'(a|s) A^π(s,a), α times Kakade–Langford's policy advantage (unnormalised).

    ==============  =======  ===========================================
    Symbol          Shape    Meaning
    ==============  =======  ===========================================
    ``pi``          [S, A]   current policy π
    ``pi_target``   [S, A]   target policy π' of the mixture
    ``alpha``       scalar   mixture weight α ∈ [0, 1]
    returns         []       L_π(π_α) − 2α²γε̃(π')/((1−γ)(1−γ(1−α)))
    ==============  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi, pi_target = _policies(mdp, pi, pi_target, ("pi", "pi_target"))
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= float(alpha) <= 1.0:
        raise HarlMiniError(f"alpha: expected a mixture weight in [0, 1], got {alpha!r}")
    a, g = float(alpha), mdp.gamma
    mixture = (1.0 - a) * pi + a * pi_target
    error = 2.0 * a**2 * g * eps_tilde(mdp, pi, pi_target) / ((1.0 - g) * (1.0 - g * (1.0 - a)))
    return surrogate(mdp, pi, mixture) - error


def _policy_advantage_and_eps_tilde(mdp: FiniteMDP, pi: torch.Tensor, pi_target: torch.Tensor) -> tuple[float, float]:
    """(𝔸, ε̃): 𝔸 = Σ_s ρ_π(s) Σ_a π'(a|s) A^π(s,a) = L_π(π') − J(π), and ε̃(π') of :func:`eps_tilde`."""
    adv = advantage(mdp, pi)
    return float(_gain(visitation(mdp, pi), adv, pi_target)), float(eps_tilde(mdp, pi, pi_target))


def cpi_certified_weight(mdp: FiniteMDP, pi, pi_target) -> torch.Tensor:
    r"""The largest mixture weight α ∈ [0, 1] whose Kakade–Langford bound certifies J(π_α) ≥ J(π).

    Chapter 4, eq. ``eq-cpi-bound``: the bound's gain over J(π) is
    b(α) = α𝔸 − 2α²γε̃/((1−γ)(1 − γ(1−α))), with the policy advantage
    𝔸 = L_π(π') − J(π) = Σ_s ρ_π(s) Σ_a π'(a|s) A^π(s, a) and ε̃ = ε̃(π') (:func:`eps_tilde`);
    b(α) = :func:`cpi_lower_bound` − J(π). For α > 0, b(α) ≥ 0 ⇔
    α·γ(2ε̃ − 𝔸(1−γ)) ≤ 𝔸(1−γ)², and 𝔸(1−γ) = Σ_s d_π(s) Σ_a π' A^π ≤ ε̃ makes the
    coefficient on the left positive, so

        α* = min(1, 𝔸(1−γ)² / (γ(2ε̃ − 𝔸(1−γ))))   if 𝔸 > 0,   α* = 0 otherwise

    (α* = 1 when γ = 0: the surrogate is then exact). The bound certifies an improvement for
    every α ∈ (0, α*) and touches J(π) at α* < 1.

    ==============  =======  ===========================================
    Symbol          Shape    Meaning
    ==============  =======  ===========================================
    ``pi``          [S, A]   current policy π
    ``pi_target``   [S, A]   target policy π' of the mixture (1−α)π + απ'
    returns         []       α* ∈ [0, 1]
    ==============  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi, pi_target = _policies(mdp, pi, pi_target, ("pi", "pi_target"))
    gain, eps_t = _policy_advantage_and_eps_tilde(mdp, pi, pi_target)
    g = mdp.gamma
    if gain <= 0.0:
        return torch.tensor(0.0, dtype=DTYPE)
    if g == 0.0:
        return torch.tensor(1.0, dtype=DTYPE)
    return torch.tensor(min(1.0, gain * (1.0 - g) ** 2 / (g * (2.0 * eps_t - gain * (1.0 - g)))), dtype=DTYPE)


def cpi_best_weight(mdp: FiniteMDP, pi, pi_target) -> torch.Tensor:
    r"""The mixture weight α ∈ [0, 1] that maximises Kakade–Langford's lower bound on J(π_α).

    Chapter 4, eq. ``eq-cpi-bound``: maximise b(α) = α𝔸 − kα²/(1 − γ + γα), k = 2γε̃/(1−γ),
    with 𝔸 and ε̃ as in :func:`cpi_certified_weight`. b is concave on [0, 1] (α²/(1−γ+γα) is
    convex), and b'(α) = 0 is the quadratic γmα² + 2(1−γ)mα + 𝔸(1−γ)² = 0 with
    m = γ(𝔸 − 2ε̃/(1−γ)) < 0, whose positive root is

        α_best = ((1−γ)/γ) (√(2ε̃ / (2ε̃ − 𝔸(1−γ))) − 1),

    clipped to [0, 1]; 0 if 𝔸 ≤ 0, 1 if γ = 0. (The weaker right-hand form of the bound,
    𝔸α − 2ε̃γα²/(1−γ)², is maximised at 𝔸(1−γ)²/(4γε̃), Kakade and Langford's step size.)

    ==============  =======  ===========================================
    Symbol          Shape    Meaning
    ==============  =======  ===========================================
    ``pi``          [S, A]   current policy π
    ``pi_target``   [S, A]   target policy π'
    returns         []       α_best ∈ [0, 1]
    ==============  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi, pi_target = _policies(mdp, pi, pi_target, ("pi", "pi_target"))
    gain, eps_t = _policy_advantage_and_eps_tilde(mdp, pi, pi_target)
    g = mdp.gamma
    if gain <= 0.0:
        return torch.tensor(0.0, dtype=DTYPE)
    if g == 0.0:
        return torch.tensor(1.0, dtype=DTYPE)
    root = (1.0 - g) / g * (math.sqrt(2.0 * eps_t / (2.0 * eps_t - gain * (1.0 - g))) - 1.0)
    return torch.tensor(min(1.0, max(0.0, root)), dtype=DTYPE)


def _mean_divergence_coefficient(mdp: FiniteMDP, pi: torch.Tensor, pi_new: torch.Tensor) -> torch.Tensor:
    """2γε̃(π̃)/(1−γ)², the coefficient of E_{s∼d_π} D_TV in Achiam et al.'s bound."""
    g = mdp.gamma
    return 2.0 * g * eps_tilde(mdp, pi, pi_new) / (1.0 - g) ** 2


def mean_tv_lower_bound(mdp: FiniteMDP, pi, pi_new) -> torch.Tensor:
    r"""Achiam et al.'s mean-TV bound: L_π(π̃) − (2γε̃/(1−γ)²) E_{s∼d_π} D_TV ≤ J(π̃) (0-dim tensor).

    Implements the middle term of Chapter 4, eq. ``eq-mean-kl-bound`` (Achiam et al. 2017,
    Corollary 1, converted to convention U: their d^π is our d_π, J and A are unnormalised
    in both): J(π̃) ≥ L_π(π̃) − (2γε̃/(1−γ)²) Σ_s d_π(s) D_TV(π(·|s), π̃(·|s)), with ε̃ of
    :func:`eps_tilde`. States are weighted by the *old* policy's normalised visitation.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   old policy π
    ``pi_new``  [S, A]   candidate π̃
    returns     []       the lower bound
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi, pi_new = _policies(mdp, pi, pi_new)
    d = state_distribution(mdp, pi)
    return surrogate(mdp, pi, pi_new) - _mean_divergence_coefficient(mdp, pi, pi_new) * mean_tv(pi, pi_new, d)


def mean_kl_lower_bound(mdp: FiniteMDP, pi, pi_new) -> torch.Tensor:
    r"""The mean-KL bound: L_π(π̃) − (√2 γ ε̃/(1−γ)²) √D̄_KL(π, π̃) ≤ J(π̃) (0-dim tensor).

    Implements Chapter 4, eq. ``eq-mean-kl-bound`` (Achiam et al. 2017, Corollary 1, with
    Pinsker D_TV ≤ √(KL/2) in every state and Jensen E√x ≤ √(E x)):
    J(π̃) ≥ L_π(π̃) − (√2 γ ε̃ / (1−γ)²) √(D̄_KL(π, π̃)), where
    D̄_KL(π, π̃) = Σ_s d_π(s) KL(π(·|s) ‖ π̃(·|s)) is the exact mean KL of TRPO's constraint
    (old policy first, weighted by the old policy's d_π) and ε̃ = :func:`eps_tilde`. Pinsker
    holds in either argument order, so the bound also holds with KL(π̃ ‖ π) (Achiam et al.'s
    order). Equality at π̃ = π (ε̃ = D̄_KL = 0); −∞ when π̃ drops an action π uses.

    ===========  =======  ===========================================
    Symbol       Shape    Meaning
    ===========  =======  ===========================================
    ``pi``       [S, A]   old policy π
    ``pi_new``   [S, A]   candidate π̃
    ``mean_kl``  []       D̄_KL(π, π̃) under d_π
    returns      []       the lower bound
    ===========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi, pi_new = _policies(mdp, pi, pi_new)
    d = state_distribution(mdp, pi)
    coefficient = _mean_divergence_coefficient(mdp, pi, pi_new)
    penalty = coefficient * torch.sqrt(mean_kl(pi, pi_new, d) / 2.0)
    # ε̃ = 0 makes the penalty 0 even where the KL is +inf (0·inf would be nan)
    return surrogate(mdp, pi, pi_new) - torch.where(coefficient > 0, penalty, torch.zeros_like(penalty))


# ---------------------------------------------------------------------------------------
# The practical TRPO step, exactly
# ---------------------------------------------------------------------------------------


def exact_trpo_step(mdp: FiniteMDP, theta, delta, cg_iters=None, backtrack_coeff=0.8,
                    max_backtracks=10) -> TRPOStepResult:
    r"""One TRPO update of tabular softmax logits with exact gradients, Fisher and KL.

    Implements Chapter 4, eqs. ``eq-trpo-problem``, ``eq-trpo-direction`` and ``eq-trpo-step``
    (TRPO eq. 12 and Appendix C): maximise L_{θ_old}(θ) subject to
    D̄_KL(θ_old, θ) = Σ_s d_{π_old}(s) KL(π_old(·|s) ‖ π_θ(·|s)) ≤ δ, via
    :func:`harl_mini.trust_region.trpo_step` with

    * g = ∇_θ L_{θ_old}(θ)|_{θ_old} = ∇J(θ_old) = ρ π A (:func:`policy_gradient`);
    * Fvp = the exact Fisher under d_{π_old} (the Hessian of D̄_KL at θ_old), no damping;
    * evaluate(θ) = (L(θ) − L(θ_old), D̄_KL(θ_old, θ)), both exact.

    F is singular (one null direction per state); g lies in its range, so CG from 0 finds
    the minimum-norm solution F⁺g, i.e. the natural gradient (up to CG's stopping rule,
    ‖F s − g‖² ≤ 1e-20·‖g‖² here). So the full step θ_old + βs is the natural policy gradient
    step of Chapter 3 (``harl_mini.tabular.npg_update``) with the step size η = β =
    √(2δ / gᵀF⁺g) set by δ (Chapter 4, eq. ``eq-trpo-npg``). The returned :class:`~harl_mini.trust_region.TRPOStepResult`
    holds ``theta`` and ``direction`` reshaped to [S, A]; ``line_search.history`` shows every
    fraction tried and why it was rejected ("kl > delta", "no improvement").

    ====================  =======  ===========================================
    Symbol                Shape    Meaning
    ====================  =======  ===========================================
    ``theta``             [S, A]   logits θ_old
    ``delta``             scalar   KL radius δ > 0
    ``cg_iters``          int      CG iterations (default S·A: exact in exact arithmetic)
    ``backtrack_coeff``   scalar   line-search shrink factor c ∈ (0, 1)
    ``max_backtracks``    int      fractions tried: 1, c, …, c^max_backtracks
    returns               —        TRPOStepResult
    ====================  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    theta = _theta(theta, mdp).detach()
    S, A = mdp.num_states, mdp.num_actions
    if cg_iters is None:
        cg_iters = S * A
    cg_iters = check_positive_int(cg_iters, "cg_iters")
    max_backtracks = _nonneg_int(max_backtracks, "max_backtracks")
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not math.isfinite(delta):
        raise HarlMiniError(f"delta: expected a finite positive number, got {delta!r}")
    pi_old = softmax_policy(theta)
    d = state_distribution(mdp, pi_old)
    rho = visitation(mdp, pi_old)
    adv = advantage(mdp, pi_old)
    gain_old = _gain(rho, adv, pi_old)  # = 0 up to round-off; L(θ) − L(θ_old) subtracts it
    g = policy_gradient(mdp, theta).reshape(-1)

    def fvp(v: torch.Tensor) -> torch.Tensor:
        return _fvp(pi_old, d, v.reshape(S, A)).reshape(-1)

    def evaluate(theta_flat: torch.Tensor) -> tuple[float, float]:
        pi_new = softmax_policy(theta_flat.reshape(S, A))
        return float(_gain(rho, adv, pi_new) - gain_old), float(mean_kl(pi_old, pi_new, d))

    result = trpo_step(theta.reshape(-1), g, fvp, float(delta), evaluate, cg_iters=cg_iters, damping=0.0,
                       cg_residual_tol=max(1e-20 * float(g @ g), 1e-24),  # exact: solve tightly
                       backtrack_coeff=backtrack_coeff, max_backtracks=max_backtracks)
    return dataclasses.replace(result, theta=result.theta.reshape(S, A), direction=result.direction.reshape(S, A))


def _nonneg_int(x, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or int(x) < 0:
        raise HarlMiniError(f"{name}: expected a non-negative integer, got {x!r}")
    return int(x)


# ---------------------------------------------------------------------------------------
# TRPO Algorithm 1: exact minorise-maximise
# ---------------------------------------------------------------------------------------


@dataclass
class MinorizeMaximizeResult:
    """Outcome of :func:`minorize_maximize_step`.

    ============  =======  ==================================================
    Field         Shape    Meaning
    ============  =======  ==================================================
    ``pi_new``    [S, A]   π_{i+1} = argmax_π̃ M_i(π̃)
    ``J_old``     []       J(π_i) = M_i(π_i)
    ``M_new``     []       M_i(π_{i+1}) = L − C·D_KL^max; J(π_{i+1}) ≥ M_new ≥ J_old
    ``kl_max``    []       D_KL^max(π_i, π_{i+1})
    ``C``         []       the penalty coefficient used
    ============  =======  ==================================================
    """

    pi_new: torch.Tensor
    J_old: torch.Tensor
    M_new: torch.Tensor
    kl_max: torch.Tensor
    C: torch.Tensor


def _bisect_decreasing(f, target, lo, hi, iters: int = 64):
    """Vectorised bisection for the root of f(x) = target, f decreasing on [lo, hi] (clamped)."""
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), np.shape(target)).copy()
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), np.shape(target)).copy()
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        above = f(mid) > target
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return 0.5 * (lo + hi)


def _mm_solve(pi: np.ndarray, adv: np.ndarray, rho: np.ndarray, C: float) -> np.ndarray:
    """Exact maximiser of Σ_s ρ_s ⟨q_s, A_s⟩ − C max_s KL(π_s ‖ q_s) over policies q (π > 0).

    Epigraph form: maximise Σ_s ρ_s⟨q_s, A_s⟩ − C t subject to KL(π_s ‖ q_s) ≤ t. The KKT
    conditions give, on every state whose advantage is not constant, q_s ∝ π_s / (μ_s − A_s)
    with μ_s > max_a A_s, chosen so that KL(π_s ‖ q_s) = t; the per-state multiplier is
    κ_s = 1 / Σ_a π_s(a)/(μ_s − A_s(a)), and t is fixed by Σ_s ρ_s κ_s = C.
    Both equations are monotone, so two nested bisections solve them to round-off.
    """
    adv = adv - (pi * adv).sum(-1, keepdims=True)  # exactly mean-zero under π (q is shift-invariant)
    top = adv.max(-1)
    spread = top - adv.min(-1)
    active = (rho > 0) & (spread > 1e-12 * max(1.0, float(np.abs(adv).max())))
    q = pi.copy()
    if not active.any():
        return q
    P, Ad, r, top, spread = pi[active], adv[active], rho[active], top[active], spread[active]
    gap = top[:, None] - Ad  # ≥ 0, zero at the best action

    def family(v):  # v: log((μ − max A)/spread), per state
        dlt = spread * np.exp(v)
        c = gap + dlt[:, None]  # μ − A > 0
        y = c / (top + dlt)[:, None]  # (μ − A)/μ
        kl_s = (P * np.log(y)).sum(-1) + np.log((P / y).sum(-1))
        kappa = 1.0 / (P / c).sum(-1)
        return c, kl_s, kappa

    def v_of_t(log_t):
        return _bisect_decreasing(lambda v: family(v)[1], np.full(len(P), np.exp(log_t)), -80.0, 80.0)

    def G(log_t):  # Σ_s ρ_s κ_s(t), decreasing in t
        return float((r * family(v_of_t(log_t))[2]).sum())

    log_t = float(_bisect_decreasing(lambda x: np.array([G(float(x[0]))]), np.array([C]), -90.0, 10.0)[0])
    c = family(v_of_t(log_t))[0]
    w = P / c
    q[active] = w / w.sum(-1, keepdims=True)
    return q


def minorize_maximize_step(mdp: FiniteMDP, pi) -> MinorizeMaximizeResult:
    r"""One iteration of TRPO's Algorithm 1, solved exactly: π_{i+1} = argmax_π̃ M_i(π̃).

    Implements Chapter 4, eq. ``eq-trpo-mm`` (TRPO Algorithm 1):
    M_i(π̃) = L_{π_i}(π̃) − C D_KL^max(π_i, π̃), C = 4εγ/(1−γ)². Since J ≥ M_i with equality at
    π_i, J(π_{i+1}) ≥ M_i(π_{i+1}) ≥ M_i(π_i) = J(π_i): J is monotone.

    How the maximum is found (no gradient steps): M_i is concave in the policy table (L is
    linear in π̃; KL(π_s ‖ π̃_s) = const − Σ_a π_s log π̃_s is convex in π̃_s; a maximum of
    convex functions is convex; C ≥ 0). In epigraph form, maximise Σ_s ρ(s)⟨π̃_s, A_s⟩ − C t
    subject to KL(π_s ‖ π̃_s) ≤ t for all s. Its KKT conditions say that on each state with a
    non-constant advantage π̃(a|s) ∝ π(a|s) / (μ_s − A(s,a)) with μ_s > max_a A(s,a) set so
    that the state's KL equals t, and t is set so that the multipliers
    κ_s = 1/Σ_a π(a|s)/(μ_s − A(s,a)) satisfy Σ_s ρ(s) κ_s = C: S + 1 unknowns (one μ_s per
    such state, and t). Each condition is monotone in its unknown, so nested bisection (an
    outer one on log t; inside it one per state on μ_s, vectorised; 64 steps each, in
    log-space) solves them to round-off. States with ρ = 0 or a
    constant advantage keep π. π must be strictly positive (e.g. a softmax policy): KL from
    a policy with zeros is not handled by this family. For γ = 0, C = 0 and the maximiser is
    the greedy policy with respect to A.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   π_i, all entries > 0
    returns     —        :class:`MinorizeMaximizeResult`
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi = check_policy(pi, mdp.num_states, mdp.num_actions, "pi").detach()
    if bool((pi <= 0).any()):
        idx = tuple(int(i) for i in torch.nonzero(pi <= 0)[0])
        raise HarlMiniError(f"pi: minorize_maximize_step needs a strictly positive policy; pi{list(idx)} = {float(pi[idx]):.3g}")
    adv = advantage(mdp, pi)
    rho = visitation(mdp, pi)
    C = penalty_constant(mdp, pi)
    if mdp.gamma == 0.0:
        pi_new = greedy_policy(adv)
    else:
        q = _mm_solve(pi.numpy(), adv.numpy(), rho.numpy(), float(C))
        pi_new = torch.as_tensor(q, dtype=DTYPE)
    kl = kl_max(pi, pi_new)
    J_old = objective(mdp, pi)
    # with C = 0 the penalty term is 0 · (possibly +inf): M is just the surrogate
    M_new = trpo_lower_bound(mdp, pi, pi_new) if float(C) > 0 else surrogate(mdp, pi, pi_new)
    return MinorizeMaximizeResult(pi_new=pi_new, J_old=J_old, M_new=M_new, kl_max=kl, C=C)


# ---------------------------------------------------------------------------------------
# PPO's clipped objective, exactly
# ---------------------------------------------------------------------------------------


def ppo_objective(mdp: FiniteMDP, pi_old, pi_new, clip_eps) -> torch.Tensor:
    r"""PPO's clipped surrogate evaluated exactly over all states and actions (0-dim tensor).

    Implements Chapter 5, eq. ``eq-ppo-clip`` (PPO eq. 7) in expectation under d_π:
    L^CLIP = Σ_s d_{π_old}(s) Σ_a π_old(a|s) min(ξ A, clip(ξ, 1−ε_clip, 1+ε_clip) A),
    ξ = π_new(a|s)/π_old(a|s), A = A^{π_old}(s, a), through
    :func:`harl_mini.losses.ppo_clip_objective`. It is the expectation of the sampled PPO
    objective under (s, a) ∼ d_{π_old} π_old, i.e. with states weighted by the discounted
    visitation. The batch mean of :mod:`harl_mini.algos.ppo` weights every time step equally
    instead (undiscounted), a different state weighting (Chapter 4, §4.5, "Which states a batch weights"). Without the clip
    it would be Σ_s d Σ_a π_new A = (1−γ)(L_{π_old}(π_new) − J(π_old)); so (1/(1−γ)) L^CLIP
    agrees with TRPO's surrogate gain L − J while every ratio stays in [1−ε_clip, 1+ε_clip]
    (in particular to first order at π_new = π_old) and is never above it. Where
    π_old(a|s) = 0 the term is 0.

    ==============  =======  ===========================================
    Symbol          Shape    Meaning
    ==============  =======  ===========================================
    ``pi_old``      [S, A]   π_old (supplies d and A)
    ``pi_new``      [S, A]   π_new (may require grad)
    ``clip_eps``    scalar   ε_clip ≥ 0
    ``ratio``       [S, A]   ξ = π_new / π_old
    returns         []       L^CLIP
    ==============  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi_old, pi_new = _policies(mdp, pi_old, pi_new, ("pi_old", "pi_new"))
    if isinstance(clip_eps, bool) or not isinstance(clip_eps, numbers.Real) or not (math.isfinite(clip_eps) and clip_eps >= 0):
        raise HarlMiniError(f"clip_eps: expected a finite number >= 0, got {clip_eps!r}")
    adv = advantage(mdp, pi_old)
    d = state_distribution(mdp, pi_old)
    used = pi_old > 0
    ratio = torch.where(used, pi_new / torch.where(used, pi_old, torch.ones_like(pi_old)), torch.ones_like(pi_old))
    return (d.unsqueeze(-1) * pi_old * ppo_clip_objective(ratio, adv, float(clip_eps))).sum()


# ---------------------------------------------------------------------------------------
# PPO's adaptive KL penalty, exactly
# ---------------------------------------------------------------------------------------


def kl_penalty_maximiser(pi, adv, c_kl) -> torch.Tensor:
    r"""The exact maximiser of PPO's KL-penalised surrogate, state by state: a policy [S, A].

    Chapter 5, eq. ``eq-ppo-klpen`` (PPO eq. 8) with exact advantages and states weighted by
    any positive weights: in every state, maximise over distributions q

        Σ_a q(a) A(s, a) − c_KL · KL(π(·|s) ‖ q),

    with the old policy first, as in PPO. The objective is concave in q (KL(π ‖ q) is convex
    in its second argument), and its stationarity condition A(s,a) + c_KL π(a|s)/q(a) = μ_s gives

        q(a | s) = c_KL π(a|s) / (μ_s − A(s, a)),   μ_s > max_{a: π(a|s) > 0} A(s, a),

    with μ_s fixed by Σ_a q(a|s) = 1. The sum is decreasing in μ_s, so μ_s is found by
    bisection on t_s = μ_s − max_a A(s, a) ∈ [c_KL π(a*|s), c_KL] (the term of the best
    action a* alone is ≤ 1; every term is ≤ π(a|s) at t_s = c_KL), 200 halvings: exact to
    round-off. Not the exponential tilt π e^{A/c_KL}: that maximises the penalty with the
    reverse KL(q ‖ π). Actions with π(a|s) = 0 keep probability 0. The weights of the states
    do not matter (both terms of a state carry the same weight).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   old policy π
    ``adv``     [S, A]   advantages A(s, a) (any real table)
    ``c_kl``    scalar   penalty coefficient c_KL > 0
    returns     [S, A]   the maximiser q
    ==========  =======  ===========================================
    """
    shape = tuple(getattr(pi, "shape", ()))
    if len(shape) != 2:
        raise HarlMiniError(f"pi: expected a policy table of shape [S, A], got shape {list(shape)}")
    pi = check_policy(pi, shape[0], shape[1], "pi")
    adv = torch.as_tensor(adv, dtype=DTYPE)
    if tuple(adv.shape) != tuple(pi.shape) or not bool(torch.isfinite(adv).all()):
        raise HarlMiniError(f"adv: expected a finite table of shape {list(pi.shape)}, got shape {list(adv.shape)}")
    if isinstance(c_kl, bool) or not isinstance(c_kl, numbers.Real) or not (math.isfinite(c_kl) and c_kl > 0):
        raise HarlMiniError(f"c_kl: expected a finite number > 0, got {c_kl!r}")
    c = float(c_kl)
    pi, adv = pi.detach(), adv.detach()
    used = pi > 0
    top = torch.where(used, adv, torch.full_like(adv, -math.inf)).max(-1, keepdim=True).values
    gap = torch.where(used, top - adv, torch.zeros_like(adv))  # ≥ 0 where π > 0
    p_top = torch.where(used & (gap == 0), pi, torch.zeros_like(pi)).sum(-1, keepdim=True)
    lo, hi = c * p_top, torch.full_like(p_top, c)

    def total(t):
        return (c * pi / (t + gap)).where(used, torch.zeros_like(pi)).sum(-1, keepdim=True)

    for _ in range(200):
        mid = 0.5 * (lo + hi)
        above = total(mid) > 1.0
        lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
    q = (c * pi / (0.5 * (lo + hi) + gap)).where(used, torch.zeros_like(pi))
    return q / q.sum(-1, keepdim=True)


def adapt_kl_coef(c_kl, d, d_targ) -> float:
    r"""PPO's adaptive rule for the KL-penalty coefficient (PPO §4; Chapter 5, §5.4).

    After an iteration with measured mean KL d: halve c_KL if d < d_targ/1.5, double it if
    d > 1.5·d_targ, keep it otherwise. (The PPO paper calls the coefficient β and the factors
    1.5 and 2 heuristic.)

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``c_kl``    scalar   the coefficient used in this iteration (> 0)
    ``d``       scalar   the mean KL the iteration produced (≥ 0)
    ``d_targ``  scalar   the target mean KL (> 0)
    returns     float    the coefficient for the next iteration
    ==========  =======  ===========================================
    """
    for name, x, low in (("c_kl", c_kl, 0.0), ("d", d, None), ("d_targ", d_targ, 0.0)):
        if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)) or float(x) < 0 \
                or (low is not None and float(x) <= low):
            raise HarlMiniError(f"{name}: expected a finite number {'> 0' if low is not None else '>= 0'}, got {x!r}")
    c_kl, d, d_targ = float(c_kl), float(d), float(d_targ)
    if d < d_targ / 1.5:
        return c_kl / 2.0
    if d > d_targ * 1.5:
        return c_kl * 2.0
    return c_kl


@dataclass
class KLPenaltyRun:
    """History of :func:`run_kl_penalty`: one entry per iteration (lists of floats).

    ``J`` has one more entry than the others (the start). ``c_kl[i]`` is the coefficient used
    in iteration i, ``mean_kl[i]`` the exact mean KL under d_{π_i} that iteration produced.
    """

    J: list
    c_kl: list
    mean_kl: list
    pi: torch.Tensor


def run_kl_penalty(mdp: FiniteMDP, pi, c_kl: float = 1.0, d_targ: float = 0.01, iterations: int = 30) -> KLPenaltyRun:
    r"""Exact PPO with the adaptive KL penalty: maximise eq. ``eq-ppo-klpen`` exactly, then adapt c_KL.

    Iteration i: π_{i+1} = :func:`kl_penalty_maximiser` (π_i, A^{π_i}, c_i) (exact advantages,
    the exact maximiser instead of PPO's epochs of Adam); d_i = D̄_KL(π_i, π_{i+1}) under d_{π_i};
    c_{i+1} = :func:`adapt_kl_coef` (c_i, d_i, d_targ).

    ==============  =======  ===========================================
    Symbol          Shape    Meaning
    ==============  =======  ===========================================
    ``pi``          [S, A]   start policy π_0
    ``c_kl``        scalar   initial coefficient c_0 > 0
    ``d_targ``      scalar   target mean KL
    ``iterations``  int      number of iterations
    returns         —        :class:`KLPenaltyRun`
    ==============  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi = check_policy(pi, mdp.num_states, mdp.num_actions, "pi").detach()
    iterations = check_positive_int(iterations, "iterations")
    c = float(adapt_kl_coef(c_kl, d_targ, d_targ))  # validates; d = d_targ keeps c
    run = KLPenaltyRun(J=[float(objective(mdp, pi))], c_kl=[], mean_kl=[], pi=pi)
    for _ in range(iterations):
        q = kl_penalty_maximiser(pi, advantage(mdp, pi), c)
        kl_i = float(mean_kl(pi, q, state_distribution(mdp, pi)))
        run.c_kl.append(c)
        run.mean_kl.append(kl_i)
        run.J.append(float(objective(mdp, q)))
        c = adapt_kl_coef(c, kl_i, d_targ)
        pi = q
    run.pi = pi
    return run
