r"""State-wise divergences between policies: KL and total variation (Chapters 2 and 7).

Trust-region methods measure how far a new policy π̃ moved from the old policy π by
comparing, in every state s, the two action distributions π(· | s) and π̃(· | s):

* D_KL(p ‖ q) = Σ_a p(a) log(p(a) / q(a)) (eq. ``eq-kl``), with 0 · log 0 = 0 and
  +∞ where p(a) > 0 = q(a);
* D_KL^max(π, π̃) = max_s D_KL(π(· | s) ‖ π̃(· | s)), old policy first (eq. ``eq-kl-max``);
* D_TV(p ‖ q) = ½ Σ_a |p(a) − q(a)| (eq. ``eq-tv``), its max over states and its
  weighted mean (Achiam et al.'s mean-TV bound, Chapter 4, eq. ``eq-mean-kl-bound``).

For a cooperative game, apply them per agent (:func:`agent_kl`) or to the product
policies (:func:`joint_kl`); for product policies the KL adds up over agents
(HARL Lemma 18, eq. ``eq-joint-kl``).

All functions accept any policy tables of shape [S, n] (rows are probability vectors),
are differentiable (no NaN gradients from zero probabilities where p = 0) and return
float64 tensors.
"""

from __future__ import annotations

import torch

from harl_mini.errors import HarlMiniError, as_float64, check_distribution, check_shape
from harl_mini.tabular import game as _g
from harl_mini.tabular import mdp as _m

__all__ = ["kl", "kl_max", "mean_kl", "tv", "tv_max", "mean_tv", "agent_kl", "joint_kl"]


def _pair(p, q, p_name: str = "p", q_name: str = "q") -> tuple[torch.Tensor, torch.Tensor]:
    p = as_float64(p, p_name)
    check_shape(p, [None, None], p_name)
    check_distribution(p, p_name, atol=_m._ATOL)
    q = as_float64(q, q_name)
    check_shape(q, list(p.shape), q_name)
    check_distribution(q, q_name, atol=_m._ATOL)
    return p, q


def _state_weights(weights, num_states: int) -> torch.Tensor:
    """A probability distribution over the states (the weights of mean_kl and mean_tv)."""
    w = as_float64(weights, "weights")
    check_shape(w, [num_states], "weights")
    check_distribution(w, "weights", atol=_m._ATOL)
    return w


def _kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Σ_a p log(p/q) along the last axis; safe logs keep gradients finite where p = 0."""
    pos_p = p > 0
    pos_q = q > 0
    log_p = torch.log(torch.where(pos_p, p, torch.ones_like(p)))
    log_q = torch.log(torch.where(pos_q, q, torch.ones_like(q)))
    terms = torch.where(pos_p, p * (log_p - log_q), torch.zeros_like(p))
    out = terms.sum(-1)
    missing = (pos_p & ~pos_q).any(-1)
    return torch.where(missing, torch.full_like(out, float("inf")), out)


def kl(p, q) -> torch.Tensor:
    r"""State-wise Kullback–Leibler divergence of two policy tables.

    Implements eq. ``eq-kl``: KL_s = D_KL(p(· | s) ‖ q(· | s)) = Σ_a p(a|s) log(p(a|s)/q(a|s)),
    with 0 · log(0/q) = 0 and KL_s = +∞ when some p(a|s) > 0 has q(a|s) = 0.

    ==========  =======  ==============================================
    Symbol      Shape    Meaning
    ==========  =======  ==============================================
    ``p``       [S, n]   first policy (the old policy π in TRPO)
    ``q``       [S, n]   second policy (the new policy π̃)
    returns     [S]      KL_s ≥ 0, = 0 iff the rows are equal
    ==========  =======  ==============================================
    """
    p, q = _pair(p, q)
    return _kl_rows(p, q)


def kl_max(p, q) -> torch.Tensor:
    r"""Maximum state-wise KL, a 0-dim tensor.

    Implements eq. ``eq-kl-max`` (TRPO): D_KL^max(π, π̃) = max_s D_KL(π(· | s) ‖ π̃(· | s)),
    old policy first.

    ==========  =======  ==============================================
    Symbol      Shape    Meaning
    ==========  =======  ==============================================
    ``p``       [S, n]   old policy π
    ``q``       [S, n]   new policy π̃
    returns     []       max_s KL_s
    ==========  =======  ==============================================
    """
    return kl(p, q).max()


def mean_kl(p, q, weights) -> torch.Tensor:
    r"""State-averaged KL, a 0-dim tensor: Σ_s w(s) D_KL(p(· | s) ‖ q(· | s)).

    TRPO's practical constraint uses w = the normalised visitation d_π of the old policy
    (:func:`~harl_mini.tabular.mdp.state_distribution`), eq. ``eq-kl``.

    ===========  =======  ==============================================
    Symbol       Shape    Meaning
    ===========  =======  ==============================================
    ``p``        [S, n]   old policy
    ``q``        [S, n]   new policy
    ``weights``  [S]      a probability distribution over states
    returns      []       Σ_s w(s) KL_s
    ===========  =======  ==============================================
    """
    p, q = _pair(p, q)
    w = _state_weights(weights, p.shape[0])
    per_state = _kl_rows(p, q)
    # states of weight 0 contribute 0 even where KL_s = +inf
    return torch.where(w > 0, w * per_state, torch.zeros_like(w)).sum()


def tv(p, q) -> torch.Tensor:
    r"""State-wise total variation distance.

    Implements eq. ``eq-tv``: TV_s = D_TV(p(· | s) ‖ q(· | s)) = ½ Σ_a |p(a|s) − q(a|s)|,
    in [0, 1]. Pinsker: TV_s² ≤ KL_s / 2.

    ==========  =======  ==============================================
    Symbol      Shape    Meaning
    ==========  =======  ==============================================
    ``p``       [S, n]   first policy
    ``q``       [S, n]   second policy
    returns     [S]      TV_s
    ==========  =======  ==============================================
    """
    p, q = _pair(p, q)
    return 0.5 * (p - q).abs().sum(-1)


def tv_max(p, q) -> torch.Tensor:
    r"""Maximum state-wise total variation distance, a 0-dim tensor.

    Eq. ``eq-tv`` (TRPO eq. 7): D_TV^max(π, π̃) = max_s D_TV(π(· | s) ‖ π̃(· | s)).

    ==========  =======  ==============================================
    Symbol      Shape    Meaning
    ==========  =======  ==============================================
    ``p``       [S, n]   old policy π
    ``q``       [S, n]   new policy π̃
    returns     []       max_s TV_s
    ==========  =======  ==============================================
    """
    return tv(p, q).max()


def mean_tv(p, q, weights) -> torch.Tensor:
    r"""State-averaged total variation, a 0-dim tensor: Σ_s w(s) D_TV(p(· | s), q(· | s)).

    With w = d_π it is the middle term of Chapter 4, eq. ``eq-mean-kl-bound`` (Achiam et al.
    2017, Corollary 1): E_{s∼d_π} D_TV ≤ √(D̄_KL / 2) by Pinsker in every state and Jensen.

    ===========  =======  ==============================================
    Symbol       Shape    Meaning
    ===========  =======  ==============================================
    ``p``        [S, n]   old policy π
    ``q``        [S, n]   new policy π̃
    ``weights``  [S]      a probability distribution over states
    returns      []       Σ_s w(s) TV_s
    ===========  =======  ==============================================
    """
    p, q = _pair(p, q)
    return (_state_weights(weights, p.shape[0]) * tv(p, q)).sum()


def agent_kl(pis, pis_new) -> torch.Tensor:
    r"""Per-agent state-wise KL between two lists of per-agent policies.

    Entry [i, s] = D_KL(π^i(· | s) ‖ π̃^i(· | s)) (eq. ``eq-kl`` for each agent).

    ==============  ========  ==============================================
    Symbol          Shape     Meaning
    ==============  ========  ==============================================
    ``pis[i]``      [S, n_i]  old policy of agent i
    ``pis_new[i]``  [S, n_i]  new policy of agent i
    returns         [N, S]    per-agent, per-state KL
    ==============  ========  ==============================================
    """
    old = _g._check_policy_list(pis, "pis")
    new = _g._check_policy_list(pis_new, "pis_new")
    if len(old) != len(new):
        raise HarlMiniError(f"pis_new: expected {len(old)} policies (one per agent, as in pis), got {len(new)}")
    rows = []
    for i, (p, q) in enumerate(zip(old, new)):
        check_shape(q, list(p.shape), f"pis_new[{i}]")
        rows.append(_kl_rows(p, q))
    return torch.stack(rows)


def joint_kl(pis, pis_new) -> torch.Tensor:
    r"""State-wise KL between two product (joint) policies.

    Implements eq. ``eq-joint-kl``: D_KL(π(· | s) ‖ π̃(· | s)) for
    π(a | s) = Π_i π^i(a^i | s). For product policies it equals
    Σ_i D_KL(π^i(· | s) ‖ π̃^i(· | s)) (HARL Lemma 18); this function computes it from the
    joint tables directly, so that the identity can be tested.

    ==============  ========  ==============================================
    Symbol          Shape     Meaning
    ==============  ========  ==============================================
    ``pis[i]``      [S, n_i]  old policy of agent i
    ``pis_new[i]``  [S, n_i]  new policy of agent i
    returns         [S]       KL of the joint action distributions
    ==============  ========  ==============================================
    """
    old = _g._check_policy_list(pis, "pis")
    new = _g._check_policy_list(pis_new, "pis_new")
    if len(old) != len(new):
        raise HarlMiniError(f"pis_new: expected {len(old)} policies (one per agent, as in pis), got {len(new)}")
    for i, (p, q) in enumerate(zip(old, new)):
        check_shape(q, list(p.shape), f"pis_new[{i}]")
    S = old[0].shape[0]
    return _kl_rows(_g._product(old).reshape(S, -1), _g._product(new).reshape(S, -1))
