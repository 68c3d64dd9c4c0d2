r"""Exact policy gradients and natural policy gradients for tabular softmax policies (Chapters 2–3).

A tabular softmax policy has one logit per state-action pair, θ ∈ R^{S×A}, and
π_θ(a | s) = exp θ_{s,a} / Σ_{a'} exp θ_{s,a'}. Everything here is exact linear algebra on
the oracle of :mod:`harl_mini.tabular.mdp` (V, Q, A, ρ, d are never re-derived here), in
float64 torch, so that every identity can be checked against autograd to round-off.

Conventions (theory reference §0): J, V, Q, A are unnormalised (convention U);
ρ_π = Σ_t γ^t Pr(s_t = ·) has mass 1/(1−γ); d_π = (1−γ) ρ_π is a distribution
(convention D, AKLM's d^π_ρ with ρ = ρ0).

Flattening: whenever a [S, A] table meets a matrix (the Fisher matrix, a CG solve), it is
flattened row-major, so entry (s, a) sits at index s·A + a.

==============  ===========  ===================================================
Symbol          Shape        Meaning
==============  ===========  ===================================================
``theta``       [S, A]       logits θ_{s,a}
``pi``          [S, A]       π_θ(a | s) = softmax(θ_s)_a
``rho``         [S]          unnormalised visitation ρ_π
``d``           [S]          normalised visitation d_π = (1−γ) ρ_π
``adv``         [S, A]       A^π(s, a)
``grad``        [S, A]       ∂J / ∂θ_{s,a}
``F``           [SA, SA]     Fisher matrix (block-diagonal, one A×A block per state)
``eta``         scalar       NPG step size η
==============  ===========  ===================================================
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from harl_mini.errors import HarlMiniError, as_float64, check_choice, check_positive_int, check_shape
from harl_mini.tabular import mdp as _m
from harl_mini.tabular.mdp import (
    DTYPE,
    FiniteMDP,
    advantage,
    check_policy,
    objective,
    state_distribution,
    value,
    visitation,
)

__all__ = [
    "softmax_policy",
    "random_logits",
    "objective_from_logits",
    "policy_gradient",
    "performance_difference",
    "performance_difference_normalised",
    "fisher_matrix",
    "fisher_vector_product",
    "natural_gradient",
    "npg_update",
    "npg_multiplicative_weights",
    "OptimisationHistory",
    "run_npg",
    "run_pg",
    "truncated_objective_from_logits",
    "expected_reinforce_direction",
    "reinforce_estimates",
    "compatible_error",
    "compatible_weights",
]


# ---------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------


def _theta(theta, mdp: FiniteMDP, name: str = "theta") -> torch.Tensor:
    theta = as_float64(theta, name)
    check_shape(theta, [mdp.num_states, mdp.num_actions], name)
    return theta


def _weights(weights, num_states: int, name: str = "weights") -> torch.Tensor:
    w = as_float64(weights, name)
    check_shape(w, [num_states], name)
    if bool((w < 0).any()):
        idx = int(torch.nonzero(w < 0)[0])
        raise HarlMiniError(f"{name}: state weights must be non-negative, got {float(w[idx]):.3g} at index {idx}")
    return w


def _positive(x, name: str) -> float:
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        x = float(x)
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not (math.isfinite(x) and x > 0):
        raise HarlMiniError(f"{name}: expected a finite positive number, got {x!r}")
    return float(x)


# ---------------------------------------------------------------------------------------
# Softmax policies and the policy gradient
# ---------------------------------------------------------------------------------------


def softmax_policy(theta) -> torch.Tensor:
    r"""The tabular softmax policy π_θ(a | s) = exp θ_{s,a} / Σ_{a'} exp θ_{s,a'}.

    Implements Chapter 2, eq. ``eq-softmax-policy``. Adding a constant c_s to a row of θ
    leaves π unchanged; θ = 0 is the uniform policy. Differentiable in θ.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``theta``   [S, A]   logits
    returns     [S, A]   π_θ, rows sum to 1, all entries > 0
    ==========  =======  ===========================================
    """
    theta = as_float64(theta, "theta")
    check_shape(theta, [None, None], "theta")
    if theta.shape[1] == 0:
        raise HarlMiniError("theta: needs at least one action column")
    return torch.softmax(theta, dim=-1)


def random_logits(mdp: FiniteMDP, seed: int = 0, scale: float = 1.5) -> torch.Tensor:
    r"""Random logits θ_{s,a} = scale · z_{s,a}, z ~ N(0, 1) i.i.d., from a generator seeded with ``seed``.

    The random softmax policies π_θ of Chapters 2 and 3 (``scale`` 1.5 gives policies from
    nearly uniform to nearly deterministic, depending on the state).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``seed``    int      generator seed
    ``scale``   float    standard deviation of each logit, > 0
    returns     [S, A]   θ (float64)
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    g = torch.Generator().manual_seed(_m._check_seed(seed))
    z = torch.randn((mdp.num_states, mdp.num_actions), generator=g, dtype=DTYPE)
    return _positive(scale, "scale") * z


def objective_from_logits(mdp: FiniteMDP, theta) -> torch.Tensor:
    r"""J(π_θ) as a differentiable function of the logits (a 0-dim tensor).

    Implements Chapter 1, eq. ``eq-objective`` composed with Chapter 2, eq. ``eq-softmax-policy``:
    J(θ) = Σ_s ρ0(s) V^{π_θ}(s). ``torch.autograd.grad`` of this is the ground truth the
    policy-gradient theorem is checked against.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``mdp``     —        the MDP
    ``theta``   [S, A]   logits (may require grad)
    returns     []       J(π_θ)
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    return objective(mdp, softmax_policy(_theta(theta, mdp)))


def policy_gradient(mdp: FiniteMDP, theta) -> torch.Tensor:
    r"""The exact policy gradient of a tabular softmax policy, convention U.

    Implements Chapter 2, eq. ``eq-pg-softmax``:
    ∂J/∂θ_{s,a} = ρ_π(s) π(a | s) A^π(s, a),
    the softmax case of the policy-gradient theorem, eq. ``eq-pg-theorem``:
    ∇J = Σ_s ρ_π(s) Σ_a ∇π(a | s) Q^π(s, a). (For softmax, ∂π(a|s)/∂θ_{s,b} =
    π(a|s)(1[a=b] − π(b|s)), and Σ_a π Q = V turns Q into A.) In convention D this reads
    d_π(s) π(a|s) A^π(s,a) / (1−γ) (AKLM Lemma C.1).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``theta``   [S, A]   logits
    ``rho``     [S]      visitation ρ_π (mass 1/(1−γ))
    ``adv``     [S, A]   A^π
    returns     [S, A]   ∂J/∂θ
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi = softmax_policy(_theta(theta, mdp))
    rho = visitation(mdp, pi)
    adv = advantage(mdp, pi)
    return rho.unsqueeze(-1) * pi * adv


def performance_difference(mdp: FiniteMDP, pi, pi_new) -> torch.Tensor:
    r"""Right-hand side of the performance-difference lemma, convention U (0-dim tensor).

    Implements Chapter 2, eq. ``eq-pdl`` (Kakade & Langford 2002; TRPO eq. 2):
    J(π̃) − J(π) = Σ_s ρ_{π̃}(s) Σ_a π̃(a | s) A^π(s, a).
    The states are visited by the **new** policy; the advantage is the **old** one's.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   old policy π (supplies A^π)
    ``pi_new``  [S, A]   new policy π̃ (supplies ρ_{π̃} and the actions)
    returns     []       Σ_s ρ_{π̃}(s) Σ_a π̃(a|s) A^π(s,a)
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi = check_policy(pi, mdp.num_states, mdp.num_actions, "pi")
    pi_new = check_policy(pi_new, mdp.num_states, mdp.num_actions, "pi_new")
    rho_new = visitation(mdp, pi_new)
    return (rho_new.unsqueeze(-1) * pi_new * advantage(mdp, pi)).sum()


def performance_difference_normalised(mdp: FiniteMDP, pi, pi_new) -> torch.Tensor:
    r"""The performance-difference lemma with a normalised state distribution (0-dim tensor).

    Implements Chapter 2, eq. ``eq-pdl-normalised`` (AKLM Lemma 3.2, convention D):
    J(π̃) − J(π) = (1/(1−γ)) E_{s∼d_{π̃}} E_{a∼π̃(·|s)} [A^π(s, a)].
    It is the same number as :func:`performance_difference`, since d_{π̃} = (1−γ) ρ_{π̃};
    computing it through d makes the 1/(1−γ) explicit.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   old policy π (supplies A^π)
    ``pi_new``  [S, A]   new policy π̃
    ``d``       [S]      d_{π̃}, a probability vector
    returns     []       (1/(1−γ)) Σ_s d_{π̃}(s) Σ_a π̃(a|s) A^π(s,a)
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi = check_policy(pi, mdp.num_states, mdp.num_actions, "pi")
    pi_new = check_policy(pi_new, mdp.num_states, mdp.num_actions, "pi_new")
    d_new = state_distribution(mdp, pi_new)
    return (d_new.unsqueeze(-1) * pi_new * advantage(mdp, pi)).sum() / (1.0 - mdp.gamma)


# ---------------------------------------------------------------------------------------
# The Fisher matrix and the natural gradient
# ---------------------------------------------------------------------------------------


def _fisher_blocks(pi: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """w(s) (diag π_s − π_s π_sᵀ) for every s, shape [S, A, A]."""
    return w[:, None, None] * (torch.diag_embed(pi) - pi.unsqueeze(-1) * pi.unsqueeze(-2))


def _fvp(pi: torch.Tensor, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Block-wise F v for v of shape [S, A]: w(s) (π_s ⊙ v_s − π_s ⟨π_s, v_s⟩)."""
    return w.unsqueeze(-1) * pi * (v - (pi * v).sum(-1, keepdim=True))


def fisher_matrix(mdp: FiniteMDP, theta, weights=None) -> torch.Tensor:
    r"""The exact Fisher information matrix of a tabular softmax policy.

    Implements Chapter 3, eq. ``eq-fisher``:
    F = Σ_s w(s) E_{a∼π(·|s)} [∇_θ log π(a|s) ∇_θ log π(a|s)ᵀ],
    with w = d_π by default (AKLM's F_ρ). Because ∂ log π(a|s)/∂θ_{s',b} =
    1[s=s'] (1[a=b] − π(b|s)), F is block-diagonal with blocks w(s) (diag π_s − π_s π_sᵀ).
    With w = d_π it is also the Hessian of the mean KL Σ_s d_π(s) KL(π_s ‖ π_θ,s) at θ.
    Each block has the null vector 1 (shifting a row of θ does not move π), so F is
    singular: use a pseudo-inverse or CG on the span.

    ============  ==========  ===========================================
    Symbol        Shape       Meaning
    ============  ==========  ===========================================
    ``theta``     [S, A]      logits
    ``weights``   [S] | None  state weights w ≥ 0 (default d_π)
    returns       [SA, SA]    F, index s·A + a
    ============  ==========  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi = softmax_policy(_theta(theta, mdp))
    w = state_distribution(mdp, pi) if weights is None else _weights(weights, mdp.num_states)
    return torch.block_diag(*_fisher_blocks(pi, w).unbind(0))


def fisher_vector_product(mdp: FiniteMDP, theta, v, weights=None) -> torch.Tensor:
    r"""F v for the Fisher matrix of :func:`fisher_matrix`, without forming F.

    Implements Chapter 3, eq. ``eq-fisher`` applied block by block:
    (F v)_{s,a} = w(s) π(a|s) (v_{s,a} − Σ_b π(b|s) v_{s,b}).
    Cost O(S·A) instead of O((S·A)²); this is the ``Fvp`` that conjugate gradient needs.

    ============  ==============  ===========================================
    Symbol        Shape           Meaning
    ============  ==============  ===========================================
    ``theta``     [S, A]          logits
    ``v``         [SA] or [S, A]  vector (flattened row-major, or as a table)
    ``weights``   [S] | None      state weights w ≥ 0 (default d_π)
    returns       as ``v``        F v
    ============  ==============  ===========================================
    """
    mdp = _m._mdp(mdp)
    S, A = mdp.num_states, mdp.num_actions
    pi = softmax_policy(_theta(theta, mdp))
    v = as_float64(v, "v")
    if tuple(v.shape) not in ((S * A,), (S, A)):
        raise HarlMiniError(f"v: expected shape [{S * A}] or [{S}, {A}], got {list(v.shape)}")
    w = state_distribution(mdp, pi) if weights is None else _weights(weights, S)
    return _fvp(pi, w, v.reshape(S, A)).reshape(v.shape)


_PINV_RTOL = 1e-12  # relative eigenvalue cut-off of the "pinv" method of natural_gradient


def _block_pinv_solve(pi: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """F⁺ b for F = blockdiag(w(s) (diag π_s − π_s π_sᵀ)), exactly, block by block.

    On the support K of π_s (when w(s) > 0) the block is w D_K − w π_K π_Kᵀ with null vector
    1_K; for b_s ⊥ 1 every solution is b_s/(w π_s) + c·1_K, and the minimum-norm one has
    c = −mean_K(b_s/(w π_s)). Entries off the support (π or w·π equal to 0 in floating
    point), and states with w(s) = 0, get 0.
    Unlike a generic pseudo-inverse this has no eigenvalue cut-off, so it stays exact when
    π is nearly deterministic.
    """
    wpi = w.unsqueeze(-1) * pi
    support = wpi > 0  # also drops entries where w·π underflows to 0
    safe = torch.where(support, wpi, torch.ones_like(pi))
    x = torch.where(support, b / safe, torch.zeros_like(b))
    count = support.sum(-1, keepdim=True).clamp_min(1)
    return torch.where(support, x - x.sum(-1, keepdim=True) / count, torch.zeros_like(x))


def natural_gradient(mdp: FiniteMDP, theta, method: str = "block") -> torch.Tensor:
    r"""The natural policy gradient F⁺ ∇J, with F weighted by d_π (Moore–Penrose pseudo-inverse).

    Implements Chapter 3, eq. ``eq-natural-gradient``: w = F_ρ(θ)⁺ ∇_θ J(θ) (AKLM eq. 15).
    For the tabular softmax policy every solution of F w = ∇J is, on reachable states,
    A^π/(1−γ) plus a per-state offset (AKLM Lemma 5.1); the pseudo-inverse picks the minimum-norm one, which is
    Chapter 3, eq. ``eq-natural-gradient-softmax`` (theory reference §3c): on states with
    d_π(s) > 0, w_{s,a} = (A^π(s,a) − (1/|A|) Σ_{a'} A^π(s,a')) / (1−γ), and 0 on
    unreachable states. Two ways to apply F⁺, equal in exact arithmetic:

    * ``"block"`` (default): the exact pseudo-inverse of each A×A block w(s)(diag π_s − π_s π_sᵀ)
      (its null vector is 1), applied to ∇J. Stable for nearly deterministic π.
    * ``"pinv"``: form F (:func:`fisher_matrix`) and call ``torch.linalg.pinv`` with
      eigenvalues below 1e-12·‖F‖₂ treated as zero. The cut-off is needed (the computed
      null eigenvalues are round-off, ~1e-17, not 0), and it also drops genuine directions
      with d(s)π(a|s) ≲ 1e-12·‖F‖₂, so this degrades once π is close to deterministic (long
      NPG runs); use it to check ``"block"``.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``theta``   [S, A]   logits
    ``method``  str      ``"block"`` or ``"pinv"``
    returns     [S, A]   F⁺ ∇J
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    check_choice(method, ("block", "pinv"), "method")
    theta = _theta(theta, mdp)
    grad = policy_gradient(mdp, theta)
    if method == "pinv":
        F = fisher_matrix(mdp, theta)
        return (torch.linalg.pinv(F, rtol=_PINV_RTOL, hermitian=True) @ grad.reshape(-1)).reshape(grad.shape)
    pi = softmax_policy(theta)
    return _block_pinv_solve(pi, state_distribution(mdp, pi), grad)


def npg_update(theta, mdp: FiniteMDP, eta, method: str = "block") -> torch.Tensor:
    r"""One natural policy gradient step in logit space: θ' = θ + η F⁺ ∇J.

    Implements Chapter 3, eq. ``eq-npg`` (AKLM eq. 15), with the d_π-weighted Fisher of
    :func:`fisher_matrix` and F⁺ applied as in :func:`natural_gradient` (``method``). The
    policy it produces is :func:`npg_multiplicative_weights` (AKLM Lemma 5.1) on reachable
    states.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``theta``   [S, A]   logits θ^{(t)}
    ``eta``     scalar   step size η > 0
    ``method``  str      ``"block"`` or ``"pinv"`` (see natural_gradient)
    returns     [S, A]   θ^{(t+1)}
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    theta = _theta(theta, mdp)
    eta = _positive(eta, "eta")
    return theta + eta * natural_gradient(mdp, theta, method)


def npg_multiplicative_weights(mdp: FiniteMDP, pi, eta) -> torch.Tensor:
    r"""The NPG policy update in closed form: soft policy iteration / multiplicative weights.

    Implements Chapter 3, eq. ``eq-npg-mw`` (AKLM Lemma 5.1):
    π'(a | s) = π(a | s) exp(η A^π(s,a)/(1−γ)) / Z(s),
    Z(s) = Σ_a π(a | s) exp(η A^π(s,a)/(1−γ)).
    It does not depend on ρ0 or on d_π. Computed in log space; zero entries of π stay zero.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   current policy π^{(t)}
    ``adv``     [S, A]   A^{π^{(t)}}
    ``eta``     scalar   step size η > 0
    returns     [S, A]   π^{(t+1)}
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    pi = check_policy(pi, mdp.num_states, mdp.num_actions, "pi")
    eta = _positive(eta, "eta")
    adv = advantage(mdp, pi)
    log_pi = torch.where(pi > 0, torch.log(torch.where(pi > 0, pi, torch.ones_like(pi))),
                         torch.full_like(pi, -math.inf))
    return torch.softmax(log_pi + eta * adv / (1.0 - mdp.gamma), dim=-1)


# ---------------------------------------------------------------------------------------
# Whole runs from θ = 0 (Chapter 3's comparison of PG and NPG)
# ---------------------------------------------------------------------------------------


@dataclass
class OptimisationHistory:
    """Iterates of :func:`run_pg` or :func:`run_npg`, for plotting.

    ============  ===============  ==================================================
    Field         Shape            Meaning
    ============  ===============  ==================================================
    ``J``         [T+1]            J(π^{(t)}) for t = 0..T
    ``V``         [T+1, S]         V^{π^{(t)}}
    ``pi``        [T+1, S, A]      π^{(t)}
    ``theta``     [S, A]           final logits θ^{(T)}
    ============  ===============  ==================================================
    """

    J: torch.Tensor
    V: torch.Tensor
    pi: torch.Tensor
    theta: torch.Tensor


def _run(mdp: FiniteMDP, T, step) -> OptimisationHistory:
    T = check_positive_int(T, "T")
    theta = torch.zeros((mdp.num_states, mdp.num_actions), dtype=DTYPE)
    pis, Vs = [], []
    for t in range(T + 1):
        pi = softmax_policy(theta)
        pis.append(pi)
        Vs.append(value(mdp, pi))
        if t < T:
            theta = step(theta)
    V = torch.stack(Vs)
    return OptimisationHistory(J=V @ mdp.rho0, V=V, pi=torch.stack(pis), theta=theta)


def run_npg(mdp: FiniteMDP, eta, T, method: str = "block") -> OptimisationHistory:
    r"""T steps of exact natural policy gradient from θ = 0 (the uniform policy).

    Implements Chapter 3, eq. ``eq-npg``: θ^{(t+1)} = θ^{(t)} + η F⁺ ∇J(θ^{(t)}), through
    :func:`npg_update` (``method`` as in :func:`natural_gradient`). AKLM Lemma 5.2:
    V^{(t+1)}(s) ≥ V^{(t)}(s) for every s; Theorem 5.3:
    V*(ρ0) − V^{(T)}(ρ0) ≤ log|A|/(ηT) + 1/((1−γ)² T) when rewards lie in [0, 1].

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``eta``     scalar   step size η > 0
    ``T``       int      number of updates, ≥ 1
    ``method``  str      ``"block"`` or ``"pinv"``
    returns     —        :class:`OptimisationHistory`
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    eta = _positive(eta, "eta")
    check_choice(method, ("block", "pinv"), "method")
    return _run(mdp, T, lambda theta: npg_update(theta, mdp, eta, method))


def run_pg(mdp: FiniteMDP, lr, T) -> OptimisationHistory:
    r"""T steps of exact (vanilla) policy gradient ascent from θ = 0.

    Implements Chapter 2, eq. ``eq-pg-ascent``: θ^{(t+1)} = θ^{(t)} + lr ∇J(θ^{(t)}), with
    the exact gradient of :func:`policy_gradient`; ``lr`` is the step size η of the book.
    With rewards in [0, 1], J is ℓ-smooth in θ with ℓ = 8/(1−γ)³ (Mei et al. 2020, Lemma 2;
    AKLM's softmax PG theorem uses η = (1−γ)³/8), so any lr ≤ 1/ℓ gives a non-decreasing J
    (Chapter 2, lemma ``lem-pg-ascent``).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``lr``      scalar   learning rate > 0
    ``T``       int      number of updates, ≥ 1
    returns     —        :class:`OptimisationHistory`
    ==========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    lr = _positive(lr, "lr")
    return _run(mdp, T, lambda theta: theta + lr * policy_gradient(mdp, theta))


# ---------------------------------------------------------------------------------------
# Finite horizons: J_H, the REINFORCE estimator and its exact expectation (Chapter 2)
# ---------------------------------------------------------------------------------------


def truncated_objective_from_logits(mdp: FiniteMDP, theta, horizon) -> torch.Tensor:
    r"""The H-step objective J_H(θ) = Σ_{t<H} γ^t ρ0ᵀ P_π^t r_π, differentiable in θ (0-dim tensor).

    Chapter 2, step 2 of the policy-gradient theorem (the bound ``eq-pg-tail`` compares
    ∇J_H with ∇J): the expected discounted reward of the first H steps. A finite sum, so
    autograd differentiates it exactly.

    ===========  =======  ===========================================
    Symbol       Shape    Meaning
    ===========  =======  ===========================================
    ``theta``    [S, A]   logits (may require grad)
    ``horizon``  int      H ≥ 1
    returns      []       J_H(π_θ)
    ===========  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    H = check_positive_int(horizon, "horizon")
    pi = softmax_policy(_theta(theta, mdp))
    P_pi, r_pi = _m.transition_matrix(mdp, pi), _m.expected_reward(mdp, pi)
    p_t, J = mdp.rho0, torch.zeros((), dtype=DTYPE)  # p_t: the law of s_t
    for t in range(H):
        J = J + mdp.gamma**t * (p_t @ r_pi)
        p_t = p_t @ P_pi
    return J


def expected_reinforce_direction(mdp: FiniteMDP, theta, horizon, discount_weights: bool = True) -> torch.Tensor:
    r"""The exact mean of the REINFORCE estimator on episodes of H steps, for a tabular softmax policy.

    The estimator is Σ_{t<H} w_t ∇_θ log π_θ(a_t | s_t) (G_t − b(s_t)), with the reward-to-go
    G_t = Σ_{t≤k<H} γ^{k−t} r_k inside the H steps and any state baseline b (it does not
    change the mean). Given s_t = s and a_t = a, E[G_t] = Q^{(H−t)}(s, a), the value of
    H − t steps; so the mean is

    Σ_{t<H} w_t Σ_s Pr(s_t = s) π(a | s) (Q^{(H−t)}(s, a) − V^{(H−t)}(s))   (entry (s, a)),

    with Q^{(k)} = r + γ P V^{(k−1)}, V^{(k)} = Σ_a π Q^{(k)}, V^{(0)} = 0.

    * ``discount_weights=True`` (w_t = γ^t): the gradient ∇J_H of
      :func:`truncated_objective_from_logits` (Chapter 2, eq. ``eq-pg-trajectory`` cut at H).
    * ``discount_weights=False`` (w_t = 1): the direction a batch average without γ^t follows
      (Chapter 2, eq. ``eq-pg-undiscounted``), in general not the gradient of J.

    ====================  =======  ===========================================
    Symbol                Shape    Meaning
    ====================  =======  ===========================================
    ``theta``             [S, A]   logits
    ``horizon``           int      H ≥ 1, the episode length
    ``discount_weights``  bool     w_t = γ^t (True) or 1 (False)
    returns               [S, A]   the mean of the estimator
    ====================  =======  ===========================================
    """
    mdp = _m._mdp(mdp)
    H = check_positive_int(horizon, "horizon")
    pi = softmax_policy(_theta(theta, mdp))
    P_pi = _m.transition_matrix(mdp, pi)
    V = torch.zeros(mdp.num_states, dtype=DTYPE)
    adv = []  # adv[k - 1] = Q^{(k)} − V^{(k)}, for k = 1..H
    for _ in range(H):
        Q = _m.q_from_v(mdp, V)  # Q^{(k)} = r + γ P V^{(k−1)}
        V = (pi * Q).sum(-1)
        adv.append(Q - V.unsqueeze(-1))
    p_t, out = mdp.rho0, torch.zeros_like(pi)
    for t in range(H):
        w_t = mdp.gamma**t if discount_weights else 1.0
        out = out + w_t * p_t.unsqueeze(-1) * pi * adv[H - t - 1]
        p_t = p_t @ P_pi
    return out


def reinforce_estimates(pi, states, actions, rewards, gamma, baseline=None,
                        discount_weights: bool = True) -> torch.Tensor:
    r"""One REINFORCE gradient estimate per episode, for a tabular softmax policy.

    Implements Chapter 2, eq. ``eq-pg-trajectory`` with a state baseline (lemma
    ``lem-baseline``), on episodes cut after H steps:
    ĝ = Σ_{t<H} w_t ∇_θ log π_θ(a_t | s_t) (G_t − b(s_t)),   G_t = Σ_{t≤k<H} γ^{k−t} r_k,
    with the softmax score ∂ log π(a | s)/∂θ_{s',b} = 1[s = s'] (1[a = b] − π(b | s)) and
    w_t = γ^t (``discount_weights=True``, an unbiased estimate of ∇J_H) or 1. Its exact mean
    is :func:`expected_reinforce_direction`.

    ====================  ==========  ===========================================
    Symbol                Shape       Meaning
    ====================  ==========  ===========================================
    ``pi``                [S, A]      the softmax policy π_θ that drew the actions
    ``states``            [n, H(+1)]  s_0 … s_{H−1} (a column s_H is ignored; long)
    ``actions``           [n, H]      a_0 … a_{H−1} (long)
    ``rewards``           [n, H]      r_0 … r_{H−1}
    ``gamma``             scalar      discount γ ∈ [0, 1]
    ``baseline``          [S] | None  b(s) (None: 0)
    returns               [n, S, A]   ĝ for each episode
    ====================  ==========  ===========================================
    """
    from harl_mini.advantages import discounted_returns

    pi = as_float64(pi, "pi")
    check_shape(pi, [None, None], "pi")
    S, A = pi.shape
    r = as_float64(rewards, "rewards")
    check_shape(r, [None, None], "rewards")
    n, H = r.shape
    states = torch.as_tensor(states)[:, :H].long()
    actions = torch.as_tensor(actions).long()
    check_shape(states, [n, H], "states")
    check_shape(actions, [n, H], "actions")
    b = torch.zeros(S, dtype=DTYPE) if baseline is None else as_float64(baseline, "baseline")
    check_shape(b, [S], "baseline")
    G = discounted_returns(r, float(gamma))                       # [n, H]: reward-to-go
    w = float(gamma) ** torch.arange(H, dtype=DTYPE) if discount_weights else torch.ones(H, dtype=DTYPE)
    weight = w * (G - b[states])                                  # [n, H]
    score = torch.nn.functional.one_hot(actions, A).to(DTYPE) - pi[states]       # [n, H, A]
    onehot_s = torch.nn.functional.one_hot(states, S).to(DTYPE)                   # [n, H, S]
    return torch.einsum("nhs,nha->nsa", onehot_s * weight.unsqueeze(-1), score)


# ---------------------------------------------------------------------------------------
# Compatible function approximation (Chapter 3, §3.4)
# ---------------------------------------------------------------------------------------


def _compatible_inputs(pi, weights, Q):
    pi = as_float64(pi, "pi")
    check_shape(pi, [None, None], "pi")
    S, A = pi.shape
    pi = check_policy(pi, S, A, "pi")
    w = _weights(weights, S)
    Q = as_float64(Q, "Q")
    check_shape(Q, [S, A], "Q")
    return pi, w, Q


def compatible_error(pi, weights, Q, w) -> torch.Tensor:
    r"""The error of a compatible approximation, state by state.

    Implements Chapter 3, eq. ``eq-compatible-error`` before the sum over states: with the
    compatible features ψ(s, a) = ∇_θ log π_θ(a | s) of the tabular softmax,
    f_w(s, a) = wᵀψ(s, a) = w_{s,a} − Σ_b π(b | s) w_{s,b}, and the error of state s is
    ρ(s) Σ_a π(a | s) (f_w(s, a) − Q(s, a))². Their sum is 𝓔(w).

    ============  =======  ===========================================
    Symbol        Shape    Meaning
    ============  =======  ===========================================
    ``pi``        [S, A]   the policy π_θ
    ``weights``   [S]      state weights ρ(s) ≥ 0 (ρ_π in the theorem)
    ``Q``         [S, A]   the target (Q_π, or any critic)
    ``w``         [S, A]   the weights of the approximation, as a table
    returns       [S]      the error of each state
    ============  =======  ===========================================
    """
    pi, rho, Q = _compatible_inputs(pi, weights, Q)
    w = as_float64(w, "w")
    check_shape(w, list(pi.shape), "w")
    f = w - (pi * w).sum(-1, keepdim=True)
    return rho * (pi * (f - Q) ** 2).sum(-1)


def compatible_weights(pi, weights, Q) -> torch.Tensor:
    r"""The minimum-norm minimiser w* of the compatible error 𝓔(w), in closed form.

    Chapter 3, theorem ``thm-compatible`` with any target Q (eq. ``eq-compatible-error``).
    In a state with ρ(s) > 0 the features span exactly the functions of a with mean zero
    under π(· | s), so the best fit is f = Q(s, ·) − Σ_b π(b | s) Q(s, b), reached by
    w_s = Q(s, ·) + c 1 for any c; the smallest such w_s is orthogonal to 1:
    w*_{s,a} = Q(s, a) − (1/|A|) Σ_b Q(s, b). States with ρ(s) = 0 do not enter 𝓔: w*_s = 0.
    With Q = Q_π and ρ = ρ_π this is (1 − γ) F⁺ ∇J, the natural gradient times 1 − γ.

    ============  =======  ===========================================
    Symbol        Shape    Meaning
    ============  =======  ===========================================
    ``pi``        [S, A]   the policy π_θ (all entries > 0)
    ``weights``   [S]      state weights ρ(s) ≥ 0
    ``Q``         [S, A]   the target (Q_π, or any critic)
    returns       [S, A]   w*
    ============  =======  ===========================================
    """
    pi, rho, Q = _compatible_inputs(pi, weights, Q)
    if bool((pi <= 0).any()):
        raise HarlMiniError("pi: a softmax policy has positive entries; got a zero")
    centred = Q - Q.mean(-1, keepdim=True)
    return torch.where((rho > 0).unsqueeze(-1), centred, torch.zeros_like(centred))
