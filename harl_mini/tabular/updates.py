r"""Simultaneous versus sequential policy updates, computed exactly (Chapters 7–8).

When every agent improves its own policy against the *old* policies of the others, the
improvements need not add up: each agent's step is good on its own, and the joint step can
be bad. Updating the agents one after another, each against the *new* policies of the
agents already updated, cannot make the team worse (Kuba et al. 2022, Lemma 2 and
Algorithm 1). This module computes both on exact games.

**The continuous a¹a² game** (Kuba et al. 2022, Figure 1; theory reference §7a). One
state; agent i plays a^i ∼ N(μ^i, 1) and the team reward is Π_i a^i (a¹a² for two
agents), so J(μ) = Π_i μ^i (eq. ``eq-a1a2-objective``) and
KL(N(μ, 1) ‖ N(μ', 1)) = (μ − μ')²/2. Against fixed others, agent i's objective is linear
in μ^i, so its best step inside the KL ball of radius δ is μ^i + sign(Π_{j≠i} μ^j) √(2δ).

**Discrete best responses** (HARL Example 1; Algorithm 1 with C = 0). Agent i's
simultaneous greedy update maximises E_{a^i∼π^i, a^{-i}∼π^{-i}_old}[A_π(s, a^i, a^{-i})];
the sequential update of agent i_m maximises the multi-agent surrogate L^{i_{1:m}}
(eq. ``eq-ma-surrogate``), i.e. it best-responds to the new policies of i_{1:m−1}.

**The decomposition lemma** (Kuba et al. 2022, Lemma 1): :func:`decomposition_terms`
returns the summands A^{i_j}_π(s, a^{i_{1:j−1}}, a^{i_j}) of
A^{i_{1:m}}_π(s, a^{i_{1:m}}) (eq. ``eq-ma-decomposition``), from
:func:`~harl_mini.tabular.game.multi_agent_advantage`.

Shapes: ``S`` states, ``N`` agents, ``n_i`` actions of agent i; policies are lists of
[S, n_i] tables, agent 0 first; ``mu`` is a length-N vector of Gaussian means.
"""

from __future__ import annotations

import math
import numbers

import torch

from harl_mini.errors import HarlMiniError, as_float64
from harl_mini.tabular import game as _g
from harl_mini.tabular import mdp as _m
from harl_mini.tabular.game import MarkovGame

__all__ = [
    "a1a2_objective",
    "gaussian_kl",
    "a1a2_simultaneous_update",
    "a1a2_sequential_update",
    "simultaneous_best_response",
    "sequential_best_response",
    "decomposition_terms",
]

DTYPE = torch.float64


# ---------------------------------------------------------------------------------------
# The continuous a¹a² (product) game
# ---------------------------------------------------------------------------------------


def _means(mu, name: str = "mu") -> torch.Tensor:
    t = as_float64(mu, name)
    if t.dim() != 1 or t.shape[0] < 2:
        raise HarlMiniError(f"{name}: expected one Gaussian mean per agent (a vector of length >= 2), "
                            f"got shape {list(t.shape)}")
    return t


def _radius(kl_radius) -> float:
    if isinstance(kl_radius, bool) or not isinstance(kl_radius, numbers.Real) or not (
            math.isfinite(float(kl_radius)) and kl_radius >= 0):
        raise HarlMiniError(f"kl_radius: expected a finite number >= 0, got {kl_radius!r}")
    return float(kl_radius)


def _order(order, num_agents: int, full: bool = True) -> tuple[int, ...]:
    order = _g._check_agents(order, num_agents, "order")
    if full and len(order) != num_agents:
        raise HarlMiniError(f"order: expected a permutation of all {num_agents} agents, got {order}")
    return order


def a1a2_objective(mu) -> torch.Tensor:
    r"""J(μ) = E[Π_i a^i] = Π_i μ^i for independent unit-variance Gaussian policies; 0-dim tensor.

    Implements Chapter 7, eq. ``eq-a1a2-objective``; for two agents J = μ¹μ²
    (the a¹a² game of Kuba et al. 2022, Figure 1). Differentiable in μ.

    ==========  ======  ===========================================
    Symbol      Shape   Meaning
    ==========  ======  ===========================================
    ``mu``      [N]     means μ^i of the policies N(μ^i, 1)
    returns     []      J(μ)
    ==========  ======  ===========================================
    """
    return torch.prod(_means(mu))


def gaussian_kl(mu, mu_new) -> torch.Tensor:
    r"""KL(N(μ, 1) ‖ N(μ', 1)) = (μ − μ')²/2, elementwise.

    ==============  ======  ===========================================
    Symbol          Shape   Meaning
    ==============  ======  ===========================================
    ``mu``          any     old means
    ``mu_new``      same    new means
    returns         same    per-agent KL of the unit-variance Gaussians
    ==============  ======  ===========================================
    """
    a, b = as_float64(mu, "mu"), as_float64(mu_new, "mu_new")
    if a.shape != b.shape:
        raise HarlMiniError(f"mu_new: expected shape {list(a.shape)} (as mu), got {list(b.shape)}")
    return (a - b) ** 2 / 2


def _ball_step(coefficient: torch.Tensor, mu_i: torch.Tensor, radius: float) -> torch.Tensor:
    """argmax of coefficient · μ' over (μ' − μ_i)²/2 <= radius (stay put if coefficient = 0)."""
    return mu_i + torch.sign(coefficient) * math.sqrt(2.0 * radius)


def a1a2_simultaneous_update(mu, kl_radius: float) -> torch.Tensor:
    r"""Every agent takes its best KL-constrained step against the *old* means of the others.

    Implements Chapter 7, eq. ``eq-a1a2-simultaneous``:
    μ^i_new = argmax_{(μ' − μ^i)²/2 ≤ δ} μ' Π_{j≠i} μ^j_old = μ^i + sign(Π_{j≠i} μ^j) √(2δ).
    From μ = (−0.25, 0.25) with δ = 0.5: μ_new = (0.75, −0.75), J from −0.0625 to −0.5625.

    ===============  ======  ===========================================
    Symbol           Shape   Meaning
    ===============  ======  ===========================================
    ``mu``           [N]     old means
    ``kl_radius``    float   δ, each agent's KL budget
    returns          [N]     new means
    ===============  ======  ===========================================
    """
    mu = _means(mu)
    radius = _radius(kl_radius)
    new = mu.clone()
    for i in range(mu.shape[0]):
        others = torch.cat([mu[:i], mu[i + 1:]])
        new[i] = _ball_step(torch.prod(others), mu[i], radius)
    return new


def a1a2_sequential_update(mu, order, kl_radius: float) -> torch.Tensor:
    r"""Agents take their best KL-constrained steps one at a time, seeing the *new* means before them.

    Implements Chapter 7, eq. ``eq-a1a2-sequential``: for m = 1..N, agent i_m moves to
    μ^{i_m} + sign(Π_{j≠i_m} μ̄^j) √(2δ), where μ̄ holds the new means of i_{1:m−1} and
    the old means of the rest. From (−0.25, 0.25) with δ = 0.5, either order gives
    J = 0.9375 ((0.75, 1.25) or (−1.25, −0.75)).

    ===============  ======  ===========================================
    Symbol           Shape   Meaning
    ===============  ======  ===========================================
    ``mu``           [N]     old means
    ``order``        tuple   a permutation (i_1, …, i_N) of the agents
    ``kl_radius``    float   δ, each agent's KL budget
    returns          [N]     new means
    ===============  ======  ===========================================
    """
    mu = _means(mu)
    order = _order(order, mu.shape[0])
    radius = _radius(kl_radius)
    new = mu.clone()
    for i in order:
        others = torch.cat([new[:i], new[i + 1:]])
        new[i] = _ball_step(torch.prod(others), mu[i], radius)
    return new


# ---------------------------------------------------------------------------------------
# Discrete games: greedy best responses
# ---------------------------------------------------------------------------------------


def _greedy(values: torch.Tensor) -> torch.Tensor:
    """One-hot argmax rows of a [S, n] table (ties to the lowest index, as greedy_policy)."""
    return _m.greedy_policy(values)


def simultaneous_best_response(game: MarkovGame, pis) -> list[torch.Tensor]:
    r"""Every agent best-responds, independently, to the *old* policies of the others.

    Implements Chapter 7, eq. ``eq-simultaneous-update``: for each agent i and state s,
    π^i_new(· | s) = argmax_{π^i} E_{a^i∼π^i, a^{-i}∼π^{-i}_old}[A_π(s, a^i, a^{-i})]
    = one-hot at argmax_{a^i} A^i_π(s, a^i) (the multi-agent advantage of eq.
    ``eq-ma-advantage`` with no agent conditioned on; ties go to the lowest action).
    On HARL Example 1 from π^i(0) = 0.7 both agents switch to action 1 and J drops from
    0.75 to −1 = min_π J.

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis[i]``      [S, n_i]    old policy of agent i
    returns         list        new deterministic policies [S, n_i], agent 0 first
    ==============  ==========  ===============================================
    """
    game = _g._game(game)
    pis = _g.check_joint_policy(game, pis)
    return [_greedy(_g.multi_agent_advantage(game, pis, (i,))) for i in range(game.num_agents)]


def _contract_given(adv: torch.Tensor, new_pis: list[torch.Tensor]) -> torch.Tensor:
    """E over the given agents' new policies: [S, n_{j_1}, …, n_{j_k}, n_i] -> [S, n_i]."""
    out = adv
    for p in new_pis:  # the first given axis is axis 1 each time
        out = torch.einsum("sa...,sa->s...", out, p)
    return out


def sequential_best_response(game: MarkovGame, pis, order) -> list[torch.Tensor]:
    r"""Agents best-respond one at a time, each to the *new* policies of the agents before it.

    Implements Chapter 7, eq. ``eq-sequential-update`` (Algorithm 1 of Kuba et al. 2022
    with the KL penalty removed): for m = 1..N and every state s,
    π^{i_m}_new(· | s) = one-hot at argmax_{a^{i_m}} E_{a^{i_{1:m−1}}∼π^{i_{1:m−1}}_new}
    [A^{i_m}_π(s, a^{i_{1:m−1}}, a^{i_m})], which maximises the surrogate L^{i_{1:m}}_π
    (eq. ``eq-ma-surrogate``) at every state at once. Each summand is then ≥ 0 state by
    state, so by Lemma 1 E_{a∼π_new}[A_π(s, a)] ≥ 0 for every s and, by the performance
    difference lemma, V_{π_new} ≥ V_π everywhere: J never decreases, for every order.

    ==============  ==========  ===============================================
    Symbol          Shape       Meaning
    ==============  ==========  ===============================================
    ``pis[i]``      [S, n_i]    old policy of agent i
    ``order``       tuple       a permutation (i_1, …, i_N) of the agents
    returns         list        new deterministic policies [S, n_i], agent 0 first
    ==============  ==========  ===============================================
    """
    game = _g._game(game)
    pis = _g.check_joint_policy(game, pis)
    order = _order(order, game.num_agents)
    new: dict[int, torch.Tensor] = {}
    for m, i in enumerate(order):
        before = order[:m]
        adv = _g.multi_agent_advantage(game, pis, (i,), given=before)
        new[i] = _greedy(_contract_given(adv, [new[j] for j in before]))
    return [new[i] for i in range(game.num_agents)]


# ---------------------------------------------------------------------------------------
# The multi-agent advantage decomposition (Lemma 1)
# ---------------------------------------------------------------------------------------


def decomposition_terms(game: MarkovGame, pis, order) -> list[torch.Tensor]:
    r"""The summands of the multi-agent advantage decomposition, on a common joint-action grid.

    Implements Chapter 7, eq. ``eq-ma-decomposition`` (Kuba et al. 2022, Lemma 1):
    A^{i_{1:m}}_π(s, a^{i_{1:m}}) = Σ_{j=1}^{m} A^{i_j}_π(s, a^{i_{1:j−1}}, a^{i_j}).
    Term j is :func:`~harl_mini.tabular.game.multi_agent_advantage` of agent i_j given
    i_{1:j−1} (eq. ``eq-ma-advantage``), shape [S, n_{i_1}, …, n_{i_j}], broadcast (a view
    via ``expand``) over the actions of i_{j+1:m}. Their sum equals
    ``multi_agent_advantage(game, pis, order)``.

    ==============  ========================  ======================================
    Symbol          Shape                     Meaning
    ==============  ========================  ======================================
    ``pis[i]``      [S, n_i]                  π^i(a^i | s)
    ``order``       tuple (i_1, …, i_m)       ordered, distinct agents (any subset)
    returns[j]      [S, n_{i_1}..n_{i_m}]     A^{i_j}_π(s, a^{i_{1:j−1}}, a^{i_j})
    ==============  ========================  ======================================
    """
    game = _g._game(game)
    pis = _g.check_joint_policy(game, pis)
    order = _order(order, game.num_agents, full=False)
    if not order:
        raise HarlMiniError("order: expected at least one agent")
    shape = (game.num_states, *(game.action_counts[i] for i in order))
    terms = []
    for j, i in enumerate(order):
        term = _g.multi_agent_advantage(game, pis, (i,), given=order[:j])
        pad = len(order) - (j + 1)
        terms.append(term.reshape(*term.shape, *([1] * pad)).expand(shape))
    return terms

