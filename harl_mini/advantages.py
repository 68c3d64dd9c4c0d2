"""Returns and advantage estimators shared by the exact and the sampled code.

One formula lives in one place: the exercises' checks, the tabular tests and (from
Chapter 2 on) the sampled algorithms all call these functions.
"""

from __future__ import annotations

import torch

from harl_mini.errors import HarlMiniError, as_float64, check_finite

__all__ = ["discounted_returns", "gae"]


def discounted_returns(rewards, gamma: float) -> torch.Tensor:
    """Discounted returns-to-go along the last axis.

    Implements Chapter 1, eq. ``eq-return``:
    G_t = r_t + γ r_{t+1} + γ² r_{t+2} + … = Σ_{k≥t} γ^{k−t} r_k, computed backwards with
    G_t = r_t + γ G_{t+1} and G_T = 0 after the last reward.

    ===========  ============  ==========================================
    Symbol       Shape         Meaning
    ===========  ============  ==========================================
    ``rewards``  [..., T]      rewards r_0 … r_{T−1} of one or more episodes
    ``gamma``    scalar        discount factor γ ∈ [0, 1]
    returns      [..., T]      G_0 … G_{T−1}
    ===========  ============  ==========================================
    """
    r = as_float64(rewards, "rewards")
    if r.dim() == 0:
        raise HarlMiniError("rewards: expected at least one axis (time), got a scalar")
    if not 0.0 <= float(gamma) <= 1.0:
        raise HarlMiniError(f"gamma: must satisfy 0 <= gamma <= 1, got {gamma}")
    out = torch.empty_like(r)
    running = torch.zeros_like(r[..., 0])
    for t in range(r.shape[-1] - 1, -1, -1):
        running = r[..., t] + gamma * running
        out[..., t] = running
    return out


def gae(rewards, values, next_values, terminated, truncated, gamma: float, lam: float):
    r"""Generalised advantage estimates and value targets on a batch of vectorised rollouts.

    Implements Chapter 2, eq. ``eq-gae`` (Schulman et al. 2016, eq. 16), cut at episode ends:

    * δ_t = r_t + γ (1 − terminated_t) · next_values_t − values_t   (one-step TD error)
    * Â_t = δ_t + γλ (1 − done_t) · Â_{t+1},  done_t = terminated_t ∨ truncated_t,  Â_T = 0
    * returns_t = Â_t + values_t   (the TD(λ) value target)

    so that Â_t = Σ_{l=0}^{L−1} (γλ)^l δ_{t+l}, where L counts the steps up to and including
    the end of the episode (or of the batch). The coefficient of the last δ is (γλ)^{L−1};
    the printed exponent T − t + 1 in the PPO paper (eq. 11) is a typo, off by two.

    **Truncation versus termination.** ``next_values_t`` is V(s_{t+1}); on a step where the
    episode was *truncated* (time limit) it must be V of the final observation of that
    episode, not of the first observation after the automatic reset. A truncated step thus
    bootstraps, δ_t = r_t + γ V(s_final) − V(s_t), while a *terminated* step never does,
    δ_t = r_t − V(s_t). Neither passes Â across the episode boundary. The last step of the
    batch (t = T − 1) bootstraps from ``next_values`` like any unfinished step.
    HARL's reference implementation (``use_proper_time_limits``) instead multiplies the GAE
    accumulator by the ``bad_mask`` at a truncation, which gives a truncated step *zero*
    advantage and the target V(s_t) itself; here it gets its bootstrapped TD error.

    ================  =======  ==========================================================
    Symbol            Shape    Meaning
    ================  =======  ==========================================================
    ``rewards``       [T, B]   r_t for T steps of B parallel environments
    ``values``        [T, B]   V(s_t)
    ``next_values``   [T, B]   V(s_{t+1}); V(final observation) where truncated; ignored
                               (weight 0) where terminated
    ``terminated``    [T, B]   bool (or 0/1): the episode ended in a terminal state
    ``truncated``     [T, B]   bool (or 0/1): the episode was cut by a time limit
    ``gamma``         scalar   discount γ ∈ [0, 1]
    ``lam``           scalar   λ ∈ [0, 1]; λ = 0 gives δ_t, λ = 1 the Monte-Carlo
                               return minus V (bootstrapped at cuts)
    ``adv``           [T, B]   returned: Â_t
    ``returns``       [T, B]   returned: Â_t + V(s_t), the value-function target
    ================  =======  ==========================================================

    Floating inputs keep their dtype (the common floating dtype of ``rewards``,
    ``values`` and ``next_values``) and device; nothing is differentiated.
    """
    if not 0.0 <= float(gamma) <= 1.0:
        raise HarlMiniError(f"gamma: must satisfy 0 <= gamma <= 1, got {gamma}")
    if not 0.0 <= float(lam) <= 1.0:
        raise HarlMiniError(f"lam: must satisfy 0 <= lam <= 1, got {lam}")
    names = ("rewards", "values", "next_values", "terminated", "truncated")
    ts = []
    for x, name in zip((rewards, values, next_values, terminated, truncated), names):
        try:
            t = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise HarlMiniError(f"{name}: cannot be read as a numeric array ({exc})") from None
        ts.append(t.detach())
    r, v, nv, term, trunc = ts
    if r.dim() != 2:
        raise HarlMiniError(f"rewards: expected shape [T, B], got {list(r.shape)}")
    for t, name in zip(ts[1:], names[1:]):
        if t.shape != r.shape:
            raise HarlMiniError(f"{name}: expected shape {list(r.shape)} (like rewards), got {list(t.shape)}")
    dtype = torch.promote_types(torch.promote_types(r.dtype, v.dtype), nv.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    r, v, nv = (x.to(dtype) for x in (r, v, nv))
    for t, name in ((r, "rewards"), (v, "values"), (nv, "next_values")):
        check_finite(t, name)
    term, trunc = term.to(torch.bool), trunc.to(torch.bool)

    not_term = (~term).to(dtype)
    not_done = (~(term | trunc)).to(dtype)
    deltas = r + gamma * not_term * nv - v  # δ_t: bootstrap unless terminated
    adv = torch.empty_like(deltas)
    running = torch.zeros_like(deltas[0])
    for t in range(r.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * lam * not_done[t] * running  # never across an episode end
        adv[t] = running
    return adv, adv + v
