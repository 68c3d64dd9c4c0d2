r"""Autoregressive joint policies on tabular games, computed exactly (Chapter 10).

A product policy π(**a** | s) = Π_i π^i(a^i | s) lets each agent draw its action on its own.
An **autoregressive** joint policy lets the agents act one after another in an order
i_{1:N}, each conditioning on the actions already drawn:

    π(**a** | s) = Π_{m=1}^{N} π^{i_m}(a^{i_m} | s, a^{i_{1:m−1}})          (eq. ``eq-ar-policy``).

This is the policy class of PG-AR (Fu et al. 2022), of the Multi-Agent Transformer (Wen et
al. 2022) and of the transformed single-agent MDP of TAD (Ye et al. 2022). This module holds
everything the chapter states about it, on a :class:`~harl_mini.tabular.game.MarkovGame`,
in float64:

* the joint policy of a list of conditional tables and, back, the conditional tables of any
  joint distribution (chain rule: an autoregressive policy can represent *every* joint
  policy, a product policy cannot);
* J, the joint entropy and the per-agent conditional entropies (their sum, by the chain rule);
* the conditional multi-agent action values and advantages of an autoregressive policy (the
  decomposition lemma with each agent's term its own conditional advantage);
* the exact joint surrogate written agent by agent, with the factor M of HAPPO and without
  it (MAT's objective), and the second-order bound on their difference;
* the marginals a decentralised student recovers by behaviour cloning (distillation);
* exact policy-gradient ascent on softmax-parameterised autoregressive or product policies.

Every joint quantity goes through :meth:`MarkovGame.joint_mdp` and the single-agent
functions of :mod:`harl_mini.tabular.mdp`, as in :mod:`harl_mini.tabular.game`.

================  ==============================  =========================================
Symbol            Shape                           Meaning
================  ==============================  =========================================
``order``         (i_1, …, i_N)                   execution order, a permutation of agents
``factors[m]``    [S, n_{i_1}, …, n_{i_{m+1}}]    π^{i_{m+1}}(a^{i_{m+1}} | s, a^{i_{1:m}}),
                                                  m = 0..N−1 (0-based); each row over the
                                                  last axis is a distribution
``joint``         [S, n_1, …, n_N]                π(**a** | s), axes in agent-index order
================  ==============================  =========================================
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from harl_mini.errors import HarlMiniError, as_float64, check_distribution
from harl_mini.tabular import game as _g
from harl_mini.tabular import mdp as _m
from harl_mini.tabular.game import MarkovGame
from harl_mini.tabular.updates import _order

__all__ = [
    "check_ar_policy",
    "ar_joint_policy",
    "ar_factors",
    "product_factors",
    "uniform_factors",
    "ar_log_probs",
    "ar_objective",
    "ar_entropies",
    "ar_conditional_q",
    "ar_advantage_terms",
    "ar_surrogate_terms",
    "mat_error_bound",
    "marginal_policies",
    "ARPGHistory",
    "run_ar_pg",
]

DTYPE = torch.float64
_ATOL = 1e-9


# ---------------------------------------------------------------------------------------
# Representation
# ---------------------------------------------------------------------------------------


def check_ar_policy(game: MarkovGame, factors, order) -> tuple[list[torch.Tensor], tuple[int, ...]]:
    r"""Validate an autoregressive policy; return (float64 factors, order).

    ``factors[m]`` must have shape [S, n_{i_1}, …, n_{i_{m+1}}] with rows (last axis) that
    are probability distributions.
    """
    game = _g._game(game)
    order = _order(order, game.num_agents)
    if isinstance(factors, torch.Tensor) or not isinstance(factors, (list, tuple)):
        raise HarlMiniError(f"factors: expected a list of {game.num_agents} conditional tables, "
                            f"got {type(factors).__name__}")
    if len(factors) != game.num_agents:
        raise HarlMiniError(f"factors: expected {game.num_agents} tables (one per agent), got {len(factors)}")
    counts = game.action_counts
    out = []
    for m, f in enumerate(factors):
        t = as_float64(f, f"factors[{m}]")
        want = (game.num_states, *(counts[i] for i in order[: m + 1]))
        if tuple(t.shape) != want:
            raise HarlMiniError(f"factors[{m}]: agent {order[m]}'s table π(a^{order[m]} | s, earlier actions) must "
                                f"have shape {list(want)}, got {list(t.shape)}")
        check_distribution(t, f"factors[{m}]", atol=_ATOL)
        out.append(t)
    return out, order


def _to_agent_axes(t: torch.Tensor, order: tuple[int, ...]) -> torch.Tensor:
    """[S, n_{i_1}, …, n_{i_N}] (order axes) -> [S, n_1, …, n_N] (agent-index axes)."""
    return t.permute(0, *(1 + order.index(i) for i in range(len(order))))


def _to_order_axes(t: torch.Tensor, order: tuple[int, ...]) -> torch.Tensor:
    """[S, n_1, …, n_N] (agent-index axes) -> [S, n_{i_1}, …, n_{i_N}] (order axes)."""
    return t.permute(0, *(1 + i for i in order))


def _chain(factors: list[torch.Tensor]) -> torch.Tensor:
    """Π_m factors[m], broadcast: the joint in order axes [S, n_{i_1}, …, n_{i_N}]."""
    N = len(factors)
    out = factors[0]
    for f in factors[1:]:
        out = out.unsqueeze(-1) * f
    assert out.dim() == N + 1
    return out


def ar_joint_policy(game: MarkovGame, factors, order) -> torch.Tensor:
    r"""The joint policy of an autoregressive policy, axes in agent-index order.

    Implements Chapter 10, eq. ``eq-ar-policy``:
    π(a | s) = Π_{m=1}^{N} π^{i_m}(a^{i_m} | s, a^{i_{1:m−1}}).

    ==============  ==============================  ====================================
    Symbol          Shape                           Meaning
    ==============  ==============================  ====================================
    ``factors[m]``  [S, n_{i_1}, …, n_{i_{m+1}}]    conditional of agent i_{m+1}
    ``order``       tuple                           execution order (i_1, …, i_N)
    returns         [S, n_1, …, n_N]                π(a^1, …, a^N | s)
    ==============  ==============================  ====================================
    """
    factors, order = check_ar_policy(game, factors, order)
    return _to_agent_axes(_chain(factors), order)


def ar_factors(game: MarkovGame, joint, order) -> list[torch.Tensor]:
    r"""The conditional tables of any joint policy in the given order (the chain rule).

    Implements Chapter 10, eq. ``eq-ar-chain-rule``:
    π^{i_m}(a^{i_m} | s, a^{i_{1:m−1}}) = π(a^{i_{1:m}} | s) / π(a^{i_{1:m−1}} | s), with the
    marginals π(a^{i_{1:m}} | s) = Σ_{a^{i_{m+1:N}}} π(a | s). Where the prefix has
    probability 0 the conditional is not determined by π; it is set to uniform there. So
    ``ar_joint_policy(game, ar_factors(game, joint, order), order) == joint`` for every joint
    distribution and every order: autoregressive policies represent all of them.

    ==============  ==============================  ====================================
    Symbol          Shape                           Meaning
    ==============  ==============================  ====================================
    ``joint``       [S, n_1, …, n_N]                any joint policy (rows sum to 1)
    ``order``       tuple                           execution order (i_1, …, i_N)
    returns[m]      [S, n_{i_1}, …, n_{i_{m+1}}]    conditional of agent i_{m+1}
    ==============  ==============================  ====================================
    """
    game = _g._game(game)
    order = _order(order, game.num_agents)
    joint = as_float64(joint, "joint")
    if tuple(joint.shape) != (game.num_states, *game.action_counts):
        raise HarlMiniError(f"joint: expected shape {[game.num_states, *game.action_counts]}, got {list(joint.shape)}")
    check_distribution(joint.reshape(game.num_states, -1), "joint", atol=_ATOL)
    marg = _to_order_axes(joint, order)
    marginals = [marg]
    for _ in range(game.num_agents - 1):  # π(a^{i_{1:m}} | s) for m = N, N−1, …, 1
        marg = marg.sum(-1)
        marginals.append(marg)
    marginals.reverse()  # marginals[m] has axes [S, i_1..i_{m+1}]
    factors = []
    for m, upto in enumerate(marginals):
        prefix = torch.ones(upto.shape[:-1], dtype=DTYPE) if m == 0 else marginals[m - 1]
        prefix = prefix.unsqueeze(-1)
        n = upto.shape[-1]
        safe = torch.where(prefix > 0, prefix, torch.ones_like(prefix))
        factors.append(torch.where(prefix > 0, upto / safe, torch.full_like(upto, 1.0 / n)))
    return factors


def product_factors(game: MarkovGame, pis, order) -> list[torch.Tensor]:
    r"""A product policy written as an autoregressive one: each conditional ignores the prefix.

    factors[m][s, a^{i_1}, …, a^{i_{m+1}}] = π^{i_{m+1}}(a^{i_{m+1}} | s) (the same row for
    every prefix), so :func:`ar_joint_policy` gives back Π_i π^i.
    """
    game = _g._game(game)
    pis = _g.check_joint_policy(game, pis)
    order = _order(order, game.num_agents)
    counts = game.action_counts
    out = []
    for m, i in enumerate(order):
        shape = (game.num_states, *(counts[j] for j in order[:m]), counts[i])
        out.append(pis[i].reshape(game.num_states, *([1] * m), counts[i]).expand(shape).clone())
    return out


def uniform_factors(game: MarkovGame, order) -> list[torch.Tensor]:
    """The uniform autoregressive policy (every conditional uniform), in the given order."""
    game = _g._game(game)
    return product_factors(game, _g.uniform_policies(game), order)


def ar_log_probs(game: MarkovGame, factors, order, states, actions) -> torch.Tensor:
    r"""Each agent's conditional log-probability of sampled joint actions (teacher forcing).

    Implements Chapter 10, eq. ``eq-mat-parallel`` on tables: column m is
    log π^{i_{m+1}}(a^{i_{m+1}} | s, a^{i_{1:m}}), read from ``factors[m]`` at the state and the
    sample's own earlier actions; the row sums are log π(a | s) (eq. ``eq-ar-policy``).

    ===========  ======  ==============================================================
    Symbol       Shape   Meaning
    ===========  ======  ==============================================================
    ``states``   [B]     state indices (long)
    ``actions``  [B, N]  joint actions, column i = agent i's action (agent-index order)
    returns      [B, N]  column m: agent i_{m+1}'s conditional log-probability
    ===========  ======  ==============================================================
    """
    factors, order = check_ar_policy(game, factors, order)
    states = torch.as_tensor(states).long()
    actions = torch.as_tensor(actions).long()
    if states.dim() != 1 or tuple(actions.shape) != (states.shape[0], game.num_agents):
        raise HarlMiniError(f"states [B] and actions [B, {game.num_agents}] expected, got {list(states.shape)} and "
                            f"{list(actions.shape)}")
    cols = [factors[m][(states, *(actions[:, i] for i in order[: m + 1]))].log() for m in range(len(order))]
    return torch.stack(cols, dim=1)


# ---------------------------------------------------------------------------------------
# J and entropies
# ---------------------------------------------------------------------------------------


def _flat(game: MarkovGame, factors, order) -> torch.Tensor:
    return ar_joint_policy(game, factors, order).reshape(game.num_states, -1)


def ar_objective(game: MarkovGame, factors, order) -> torch.Tensor:
    r"""J of an autoregressive policy, a 0-dim tensor, differentiable in the factors.

    Eq. ``eq-objective`` on the joint MDP with π of eq. ``eq-ar-policy``.
    """
    return _m.objective(game.joint_mdp(), _flat(game, factors, order))


def _entropy_rows(p: torch.Tensor) -> torch.Tensor:
    """−Σ p log p over the last axis (0 log 0 = 0)."""
    return -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)


def ar_entropies(game: MarkovGame, factors, order) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Joint entropy and per-agent conditional entropies, state by state.

    Implements Chapter 10, eq. ``eq-ar-entropy``:
    H^{i_m}(s) = H(a^{i_m} | s, a^{i_{1:m−1}}) = E_{a^{i_{1:m−1}} ∼ π}[H(π^{i_m}(· | s, a^{i_{1:m−1}}))],
    and the chain rule H(π(· | s)) = Σ_m H^{i_m}(s). For a product policy H^{i_m}(s) is the
    entropy of π^{i_m}(· | s).

    ==========  ======  ===============================================================
    Symbol      Shape   Meaning
    ==========  ======  ===============================================================
    returns[0]  [S]     H(π(· | s)), the joint entropy (computed from the joint table)
    returns[1]  [S, N]  column m: H^{i_{m+1}}(s), in execution order
    ==========  ======  ===============================================================
    """
    factors, order = check_ar_policy(game, factors, order)
    joint = _chain(factors)
    S = game.num_states
    conditional = []
    prefix = torch.ones(S, dtype=DTYPE)
    for m, f in enumerate(factors):
        conditional.append((prefix * _entropy_rows(f)).reshape(S, -1).sum(-1))
        prefix = prefix.unsqueeze(-1) * f  # π(a^{i_{1:m+1}} | s)
    return _entropy_rows(joint.reshape(S, -1)), torch.stack(conditional, dim=1)


# ---------------------------------------------------------------------------------------
# Conditional action values and the decomposition
# ---------------------------------------------------------------------------------------


def ar_conditional_q(game: MarkovGame, factors, order) -> list[torch.Tensor]:
    r"""Q^{i_{1:m}}_π(s, a^{i_{1:m}}) of an autoregressive policy, m = 0..N.

    Implements Chapter 10, eq. ``eq-ar-q``: the later agents are averaged out under their
    *conditional* policies,
    Q^{i_{1:m}}_π(s, a^{i_{1:m}}) = E_{a^{i_{m+1:N}} ∼ π(· | s, a^{i_{1:m}})}[Q_π(s, a)],
    computed backwards: Q^{i_{1:N}} = Q_π and
    Q^{i_{1:m−1}} = Σ_{a^{i_m}} π^{i_m}(a^{i_m} | s, a^{i_{1:m−1}}) Q^{i_{1:m}}. Entry 0 is V_π.
    For a product policy these are the multi-agent Q of eq. ``eq-ma-q``.

    ==========  ==============================  ==========================================
    Symbol      Shape                           Meaning
    ==========  ==============================  ==========================================
    returns[m]  [S, n_{i_1}, …, n_{i_m}]        Q^{i_{1:m}}_π (returns[0] = V_π, [S])
    ==========  ==============================  ==========================================
    """
    factors, order = check_ar_policy(game, factors, order)
    flat = _to_agent_axes(_chain(factors), order).reshape(game.num_states, -1)
    Q = _m.q_value(game.joint_mdp(), flat).reshape(game.num_states, *game.action_counts)
    qs = [_to_order_axes(Q, order)]
    for f in reversed(factors):
        qs.append((f * qs[-1]).sum(-1))
    qs.reverse()
    return qs


def ar_advantage_terms(game: MarkovGame, factors, order) -> list[torch.Tensor]:
    r"""Each agent's conditional advantage A^{i_m}_π(s, a^{i_{1:m−1}}, a^{i_m}), m = 1..N.

    Implements Chapter 10, eq. ``eq-ar-decomposition``:
    A^{i_m}_π(s, a^{i_{1:m−1}}, a^{i_m}) = Q^{i_{1:m}}_π(s, a^{i_{1:m}}) − Q^{i_{1:m−1}}_π(s, a^{i_{1:m−1}})
    with the conditional Q of :func:`ar_conditional_q`. The terms telescope to the joint
    advantage, A_π(s, a) = Σ_m A^{i_m}_π(s, a^{i_{1:m−1}}, a^{i_m}) (the decomposition lemma),
    and each has mean zero under its own agent's conditional policy:
    Σ_{a^{i_m}} π^{i_m}(a^{i_m} | s, a^{i_{1:m−1}}) A^{i_m}_π(s, a^{i_{1:m−1}}, a^{i_m}) = 0.

    ==========  ==============================  ==========================================
    Symbol      Shape                           Meaning
    ==========  ==============================  ==========================================
    returns[m]  [S, n_{i_1}, …, n_{i_{m+1}}]    A^{i_{m+1}} (0-based m), order axes
    ==========  ==============================  ==========================================
    """
    qs = ar_conditional_q(game, factors, order)
    return [qs[m + 1] - qs[m].unsqueeze(-1) for m in range(len(qs) - 1)]


# ---------------------------------------------------------------------------------------
# The surrogate with and without M, and the bound on the difference
# ---------------------------------------------------------------------------------------


def _mixed(old: list[torch.Tensor], new: list[torch.Tensor], use_new) -> torch.Tensor:
    """The joint (order axes) with factor m taken from ``new`` where use_new(m), else from ``old``."""
    return _chain([new[m] if use_new(m) else old[m] for m in range(len(old))])


def ar_surrogate_terms(game: MarkovGame, factors, factors_new, order, with_m: bool = True) -> list[torch.Tensor]:
    r"""Agent by agent, the surrogate of an autoregressive update with or without the factor M.

    Implements Chapter 10, eqs. ``eq-ar-surrogate`` and ``eq-mat-surrogate``. With
    ξ^{i_m} = π̄^{i_m}(a^{i_m} | s, a^{i_{1:m−1}}) / π^{i_m}(a^{i_m} | s, a^{i_{1:m−1}}) the
    conditional ratios and A_π the joint advantage of the old policy,

    * ``with_m=True``: term m = Σ_s ρ_π(s) E_{a∼π}[M^{i_{1:m}} (ξ^{i_m} − 1) A_π(s, a)],
      M^{i_{1:m}} = Π_{k<m} ξ^{i_k} (HAPPO's factor, eq. ``eq-ma-estimator``). The terms
      telescope: their sum is Σ_s ρ_π(s) E_{a∼π̄}[A_π(s, a)] = L_π(π̄) − J(π) exactly;
    * ``with_m=False`` (MAT's objective, Wen et al. 2022 eq. 5, unclipped): term m =
      Σ_s ρ_π(s) E_{a∼π}[(ξ^{i_m} − 1) A_π(s, a)], the earlier agents kept at their old
      conditionals.

    Expectations are computed as differences of expectations under mixed joint policies (no
    division), so they are the importance-sampling forms whenever π̄ ≪ π. ρ_π is the old
    policy's visitation (convention U). Returns the N terms as 0-dim tensors, differentiable
    in ``factors_new``.
    """
    old, order = check_ar_policy(game, factors, order)
    new, _ = check_ar_policy(game, factors_new, order)
    S = game.num_states
    flat_old = _to_agent_axes(_chain(old), order).reshape(S, -1)
    A = _to_order_axes(_m.advantage(game.joint_mdp(), flat_old).reshape(S, *game.action_counts), order)
    rho = _m.visitation(game.joint_mdp(), flat_old).reshape(S, *([1] * game.num_agents))

    def expect(joint):
        return (rho * joint * A).sum()

    terms = []
    for m in range(game.num_agents):
        if with_m:  # new conditionals for agents ≤ m minus new for agents < m
            hi = _mixed(old, new, lambda k: k <= m)
            lo = _mixed(old, new, lambda k: k < m)
        else:  # only agent m moves
            hi = _mixed(old, new, lambda k: k == m)
            lo = _chain(old)
        terms.append(expect(hi) - expect(lo))
    return terms


def _tv_max(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """max over every state and prefix of TV between the rows (last axis) of p and q."""
    return 0.5 * (p - q).abs().sum(-1).max()


def mat_error_bound(game: MarkovGame, factors, factors_new, order) -> torch.Tensor:
    r"""The bound on |J(π̄) − J(π) − Σ_m L^{i_m}_MAT| for a one-state game (γ = 0).

    Implements Chapter 10, eq. ``eq-mat-bound``:
    Σ_m 4 ε_m α_m Σ_{k<m} α_k, with α_k = max_{s, a^{i_{1:k−1}}} D_TV of agent i_k's old and new
    conditionals and ε_m = max |A^{i_m}_π| the largest conditional advantage
    (:func:`ar_advantage_terms`). Second order in the step: it vanishes unless two agents move.
    """
    old, order = check_ar_policy(game, factors, order)
    new, _ = check_ar_policy(game, factors_new, order)
    if game.num_states != 1 or game.gamma != 0.0:
        raise HarlMiniError(f"mat_error_bound: stated for one-state games with gamma = 0 (the matrix games); "
                            f"got {game.num_states} states and gamma = {game.gamma}")
    alpha = [_tv_max(p, q) for p, q in zip(old, new)]
    eps = [t.abs().max() for t in ar_advantage_terms(game, old, order)]
    total = torch.zeros((), dtype=DTYPE)
    for m in range(1, len(old)):
        total = total + 4.0 * eps[m] * alpha[m] * sum(alpha[:m])
    return total


# ---------------------------------------------------------------------------------------
# Distillation: what independent students recover
# ---------------------------------------------------------------------------------------


def marginal_policies(game: MarkovGame, joint) -> list[torch.Tensor]:
    r"""The per-agent marginals π^i(a^i | s) = Σ_{a^{−i}} π(a | s) of a joint policy.

    Implements Chapter 10, eq. ``eq-distill``: behaviour cloning a teacher π into
    independent students π^i_φ(a^i | s) by minimising the cross-entropy
    E_{s, a∼π}[−Σ_i log π^i_φ(a^i | s)] has the marginals as its unique minimiser (state by
    state, a sum of N separate cross-entropies). Returns a list of [S, n_i] tables.
    """
    game = _g._game(game)
    joint = as_float64(joint, "joint")
    if tuple(joint.shape) != (game.num_states, *game.action_counts):
        raise HarlMiniError(f"joint: expected shape {[game.num_states, *game.action_counts]}, got {list(joint.shape)}")
    N = game.num_agents
    return [joint.sum(dim=tuple(1 + j for j in range(N) if j != i)) for i in range(N)]


# ---------------------------------------------------------------------------------------
# Exact policy-gradient ascent
# ---------------------------------------------------------------------------------------


@dataclass
class ARPGHistory:
    """Per step: ``J`` [T+1], ``entropy`` (joint, ρ0-weighted) [T+1], ``conditional`` [T+1, N]
    (ρ0-weighted conditional entropies, execution order); ``factors`` at the end."""

    J: torch.Tensor
    entropy: torch.Tensor
    conditional: torch.Tensor
    factors: list[torch.Tensor]
    order: tuple[int, ...]


def _positive(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not (math.isfinite(float(x)) and x > 0):
        raise HarlMiniError(f"{name}: expected a positive number, got {x!r}")
    return float(x)


def run_ar_pg(game: MarkovGame, order, lr: float, T: int, ent_coef: float = 0.0, independent: bool = False,
              seed: int | None = 0, init_scale: float = 0.1) -> ARPGHistory:
    r"""Exact gradient ascent on J + τ H for softmax autoregressive (or product) policies.

    Each conditional is a softmax of its own logits, π^{i_m}(· | s, a^{i_{1:m−1}}) =
    softmax(θ_m[s, a^{i_{1:m−1}}, ·]); with ``independent=True`` one logit row per state
    serves every prefix (a product policy). The objective is J(π) + τ Σ_s ρ0(s) H(π(· | s))
    (τ = ``ent_coef``); its exact gradient comes from autograd through
    :func:`ar_objective`, and θ ← θ + η ∇ (η = ``lr``) for ``T`` steps. Logits start at
    ``init_scale`` × N(0, 1) draws (``seed``), or exactly at 0 with ``seed=None``.
    """
    game = _g._game(game)
    order = _order(order, game.num_agents)
    lr, init_scale = _positive(lr, "lr"), float(init_scale)
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 0:
        raise HarlMiniError(f"T: expected a non-negative integer number of steps, got {T!r}")
    if isinstance(ent_coef, bool) or not isinstance(ent_coef, numbers.Real) or ent_coef < 0:
        raise HarlMiniError(f"ent_coef: expected a number >= 0, got {ent_coef!r}")
    counts, S = game.action_counts, game.num_states
    g = None if seed is None else torch.Generator().manual_seed(int(seed))
    thetas = []
    for m, i in enumerate(order):
        shape = (S, *([1] * m), counts[i]) if independent else (S, *(counts[j] for j in order[:m]), counts[i])
        t = torch.zeros(shape, dtype=DTYPE) if g is None else init_scale * torch.randn(shape, generator=g, dtype=DTYPE)
        thetas.append(t.requires_grad_(True))
    full = [(S, *(counts[j] for j in order[: m + 1])) for m in range(len(order))]
    rho0 = game.rho0
    Js, Hs, Cs = [], [], []
    for step in range(T + 1):
        factors = [torch.softmax(t, -1).expand(shape) for t, shape in zip(thetas, full)]
        J = ar_objective(game, factors, order)
        H, cond = ar_entropies(game, factors, order)
        Js.append(float(J.detach()))
        Hs.append(float((rho0 * H).sum().detach()))
        Cs.append((rho0.unsqueeze(-1) * cond).sum(0).detach())
        if step == T:
            break
        grads = torch.autograd.grad(J + ent_coef * (rho0 * H).sum(), thetas)
        with torch.no_grad():
            for t, gr in zip(thetas, grads):
                t += lr * gr
    return ARPGHistory(torch.tensor(Js, dtype=DTYPE), torch.tensor(Hs, dtype=DTYPE), torch.stack(Cs),
                       [f.detach().clone() for f in factors], order)
