r"""Cooperative Markov games and the multi-agent Q and advantage functions (Chapter 7).

A cooperative Markov game ⟨N, S, A = Π_i A^i, P, r, γ⟩ has N agents that act at once
and share one reward (theory reference §5a). Agent i has n_i actions and a policy table
π^i[s, a^i]; the joint policy is the product π(a | s) = Π_i π^i(a^i | s).

One formula in one place: every *joint* quantity (V, Q, A, J, ρ) is computed by
flattening the game into a :class:`~harl_mini.tabular.mdp.FiniteMDP` over joint actions
(:meth:`MarkovGame.joint_mdp`, C / row-major order: the last agent's action varies
fastest) and calling the single-agent functions of :mod:`harl_mini.tabular.mdp`. This
module only adds the multi-agent definitions of Kuba et al. (ICLR 2022), Definition 1:

* Q^{i_{1:m}}_π(s, a^{i_{1:m}}) = E_{a^{-i_{1:m}} ∼ π^{-i_{1:m}}}[Q_π(s, a^{i_{1:m}}, a^{-i_{1:m}})]
  (eq. ``eq-ma-q``);
* A^{i_{1:m}}_π(s, a^{j_{1:k}}, a^{i_{1:m}}) = Q^{j_{1:k}, i_{1:m}}_π − Q^{j_{1:k}}_π
  (eq. ``eq-ma-advantage``).

The joint functions share their names with :mod:`~harl_mini.tabular.mdp`
(``value``, ``q_value``, ``advantage``, ``objective``, ``visitation``); the package
``harl_mini.tabular`` re-exports them with a ``game_`` prefix
(``game_value`` …), or use them as ``harl_mini.tabular.game.value``.

Contents: :class:`MarkovGame`, ``matrix_game``; policies (``check_joint_policy``,
``joint_policy``, ``flat_joint_policy``, ``uniform_policies``, ``random_policies``);
joint quantities; ``multi_agent_q``, ``multi_agent_advantage``, ``all_multi_agent_q``;
``coma_advantage`` (the counterfactual advantage of Foerster et al. 2018).

Shapes: ``S`` states, ``N`` agents, ``n_i`` actions of agent i, ``n = (n_1, …, n_N)``.
"""

from __future__ import annotations

import itertools
import math
import numbers
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from harl_mini.errors import HarlMiniError, as_float64, check_distribution, check_shape
from harl_mini.tabular import mdp as _m

__all__ = [
    "MarkovGame",
    "matrix_game",
    "check_joint_policy",
    "joint_policy",
    "flat_joint_policy",
    "uniform_policies",
    "random_policies",
    "value",
    "q_value",
    "advantage",
    "objective",
    "visitation",
    "multi_agent_q",
    "multi_agent_advantage",
    "all_multi_agent_q",
    "coma_advantage",
]

DTYPE = torch.float64


# ---------------------------------------------------------------------------------------
# The game
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class MarkovGame:
    r"""A finite cooperative Markov game, validated and stored in float64.

    ==========  ==================  ===================================================
    Field       Shape               Meaning
    ==========  ==================  ===================================================
    ``P``       [S, n_1..n_N, S]    P(s' | s, a^1, …, a^N); each row sums to 1
    ``R``       [S, n_1..n_N]       shared reward r(s, a); a [S] input is broadcast
    ``gamma``   scalar              discount factor, 0 <= γ < 1
    ``rho0``    [S]                 initial-state distribution (uniform when omitted)
    ``name``    str                 a label for printing
    ==========  ==================  ===================================================

    The number of agents N is ``P.dim() − 2``; agents may have different action counts.
    Validation is the same as for :class:`~harl_mini.tabular.mdp.FiniteMDP`.
    """

    P: torch.Tensor
    R: torch.Tensor
    gamma: float
    rho0: torch.Tensor | None = None
    name: str = ""

    def __post_init__(self) -> None:
        P = as_float64(self.P, "P")
        if P.dim() < 3 or P.shape[0] != P.shape[-1]:
            raise HarlMiniError(f"P: expected shape [S, n_1, ..., n_N, S] with N >= 1, got {list(P.shape)}")
        if any(int(d) == 0 for d in P.shape):
            raise HarlMiniError(f"P: every axis needs at least one entry, got shape {list(P.shape)}")
        S = int(P.shape[0])
        counts = tuple(int(d) for d in P.shape[1:-1])
        check_distribution(P, "P", atol=_m._ATOL)
        R = as_float64(self.R, "R")
        if R.dim() == 1 and R.shape[0] == S:
            R = R.reshape(S, *([1] * len(counts))).expand(S, *counts).contiguous()
        elif tuple(R.shape) != (S, *counts):
            want = ", ".join(str(d) for d in (S, *counts))
            raise HarlMiniError(f"R: expected shape [S, n_1, ..., n_N] = [{want}] or [S] = [{S}], got {list(R.shape)}")
        gamma = _m.check_gamma(self.gamma, "gamma")
        rho0 = _m._check_rho0(self.rho0, S, "rho0")
        if not isinstance(self.name, str):
            raise HarlMiniError(f"name: expected a string, got {type(self.name).__name__}")
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "rho0", rho0)
        object.__setattr__(self, "_joint", None)

    @property
    def num_states(self) -> int:
        """S, the number of states."""
        return int(self.P.shape[0])

    @property
    def num_agents(self) -> int:
        """N, the number of agents."""
        return self.P.dim() - 2

    @property
    def action_counts(self) -> tuple[int, ...]:
        """(n_1, …, n_N), the number of actions of each agent."""
        return tuple(int(d) for d in self.P.shape[1:-1])

    @property
    def num_joint_actions(self) -> int:
        """Π_i n_i, the size of the joint action space."""
        return math.prod(self.action_counts)

    def joint_mdp(self) -> _m.FiniteMDP:
        r"""The game as one FiniteMDP over joint actions (cached).

        Joint action a = (a^1, …, a^N) becomes the flat index
        Σ_i a^i Π_{j>i} n_j (C / row-major order, the last agent fastest), the same
        order as :func:`flat_joint_policy`.

        ==========  =============  ============================================
        Symbol      Shape          Meaning
        ==========  =============  ============================================
        ``P``       [S, Πn_i, S]   transition kernel over flat joint actions
        ``R``       [S, Πn_i]      reward over flat joint actions
        ==========  =============  ============================================
        """
        if self._joint is None:
            S, A = self.num_states, self.num_joint_actions
            joint = _m.FiniteMDP(
                self.P.reshape(S, A, S), self.R.reshape(S, A), self.gamma, self.rho0, self.name
            )
            object.__setattr__(self, "_joint", joint)
        return self._joint

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return (
            f"MarkovGame({label}S={self.num_states}, N={self.num_agents}, "
            f"action_counts={self.action_counts}, gamma={self.gamma})"
        )


def matrix_game(payoff, gamma: float = 0.0, name: str = "") -> MarkovGame:
    r"""A one-state cooperative game (a repeated matrix game) from an N-dimensional payoff.

    The single state loops onto itself, so V^π = E_{a∼π}[r(a)] / (1 − γ); with the
    default γ = 0, J(π) is the expected payoff of one play.

    ==========  =============  ============================================
    Symbol      Shape          Meaning
    ==========  =============  ============================================
    ``payoff``  [n_1..n_N]     shared reward r(a^1, …, a^N)
    returns     —              MarkovGame with S = 1
    ==========  =============  ============================================
    """
    payoff = as_float64(payoff, "payoff")
    if payoff.dim() < 1 or payoff.numel() == 0:
        raise HarlMiniError(f"payoff: expected an array with one axis per agent, got shape {list(payoff.shape)}")
    P = torch.ones((1, *payoff.shape, 1), dtype=DTYPE)
    return MarkovGame(P, payoff.unsqueeze(0), gamma, None, name)


def _game(game) -> MarkovGame:
    if not isinstance(game, MarkovGame):
        raise HarlMiniError(f"game: expected a MarkovGame, got {type(game).__name__}")
    return game


# ---------------------------------------------------------------------------------------
# Policies
# ---------------------------------------------------------------------------------------


def _check_policy_list(pis, name: str) -> list[torch.Tensor]:
    if isinstance(pis, torch.Tensor) or not isinstance(pis, Sequence) or isinstance(pis, str):
        raise HarlMiniError(f"{name}: expected a list of per-agent policies π^i[s, a^i], got {type(pis).__name__}")
    if len(pis) == 0:
        raise HarlMiniError(f"{name}: expected at least one agent's policy, got an empty list")
    out = []
    for i, p in enumerate(pis):
        t = as_float64(p, f"{name}[{i}]")
        check_shape(t, [None, None], f"{name}[{i}]")
        check_distribution(t, f"{name}[{i}]", atol=_m._ATOL)
        out.append(t)
    S = out[0].shape[0]
    for i, t in enumerate(out):
        if t.shape[0] != S:
            raise HarlMiniError(f"{name}[{i}]: has {t.shape[0]} states but {name}[0] has {S}")
    return out


def check_joint_policy(game: MarkovGame, pis, name: str = "pis") -> list[torch.Tensor]:
    r"""Validate one policy per agent, π^i[s, a^i], and return float64 tensors.

    ==========  ===========  ============================================
    Symbol      Shape        Meaning
    ==========  ===========  ============================================
    ``pis[i]``  [S, n_i]     π^i(a^i | s), rows are probability vectors
    returns     list         the N tables as float64 tensors
    ==========  ===========  ============================================
    """
    game = _game(game)
    if isinstance(pis, torch.Tensor) or not isinstance(pis, Sequence) or isinstance(pis, str):
        raise HarlMiniError(f"{name}: expected a list of per-agent policies π^i[s, a^i], got {type(pis).__name__}")
    if len(pis) != game.num_agents:
        raise HarlMiniError(f"{name}: expected {game.num_agents} policies (one per agent), got {len(pis)}")
    out = []
    for i, (p, n_i) in enumerate(zip(pis, game.action_counts)):
        out.append(_m.check_policy(p, game.num_states, n_i, f"{name}[{i}]"))
    return out


def joint_policy(pis) -> torch.Tensor:
    r"""The product (joint) policy of independent agents.

    π(a^1, …, a^N | s) = Π_i π^i(a^i | s).

    ==========  ===============  ============================================
    Symbol      Shape            Meaning
    ==========  ===============  ============================================
    ``pis[i]``  [S, n_i]         π^i(a^i | s)
    returns     [S, n_1..n_N]    joint policy; one axis per agent
    ==========  ===============  ============================================
    """
    pis = _check_policy_list(pis, "pis")
    return _product(pis)


def _product(pis: list[torch.Tensor]) -> torch.Tensor:
    S = pis[0].shape[0]
    out = pis[0]
    for k, p in enumerate(pis[1:], start=1):
        out = out.unsqueeze(-1) * p.reshape(S, *([1] * k), p.shape[1])
    return out


def flat_joint_policy(pis) -> torch.Tensor:
    r"""The joint policy with the joint action flattened in C order, shape [S, Π n_i].

    Column Σ_i a^i Π_{j>i} n_j holds π(a^1, …, a^N | s); this matches
    :meth:`MarkovGame.joint_mdp`, so ``mdp.value(game.joint_mdp(), flat_joint_policy(pis))``
    is the joint V^π.

    ==========  ===============  ============================================
    Symbol      Shape            Meaning
    ==========  ===============  ============================================
    ``pis[i]``  [S, n_i]         π^i(a^i | s)
    returns     [S, Π_i n_i]     π(a | s), joint action flattened in C order
    ==========  ===============  ============================================
    """
    joint = joint_policy(pis)
    return joint.reshape(joint.shape[0], -1)


def uniform_policies(game: MarkovGame) -> list[torch.Tensor]:
    """One uniform policy per agent: π^i(a^i | s) = 1/n_i, a list of [S, n_i] tensors."""
    game = _game(game)
    return [torch.full((game.num_states, n), 1.0 / n, dtype=DTYPE) for n in game.action_counts]


def random_policies(game: MarkovGame, seed: int = 0, concentration: float = 1.0) -> list[torch.Tensor]:
    """One random policy per agent, rows π^i(· | s) ~ Dirichlet(concentration).

    Seeded through one ``torch.Generator`` (same seed, same list); a list of [S, n_i]
    tensors, agent 0 first.
    """
    game = _game(game)
    g = torch.Generator().manual_seed(_m._check_seed(seed))
    return [_m.sample_dirichlet((game.num_states, n), concentration, g) for n in game.action_counts]


# ---------------------------------------------------------------------------------------
# Joint quantities (all through the flattened MDP)
# ---------------------------------------------------------------------------------------


def _joint(game, pis) -> tuple[_m.FiniteMDP, torch.Tensor]:
    game = _game(game)
    pis = check_joint_policy(game, pis)
    flat = _product(pis).reshape(game.num_states, -1)
    return game.joint_mdp(), flat


def value(game: MarkovGame, pis) -> torch.Tensor:
    r"""Joint state value V_π of the product policy.

    Chapter 1, eq. ``eq-policy-evaluation`` applied to the joint MDP:
    V_π = (I − γ P_π)^{-1} r_π with π(a | s) = Π_i π^i(a^i | s).

    ==========  ===============  ============================================
    Symbol      Shape            Meaning
    ==========  ===============  ============================================
    ``pis[i]``  [S, n_i]         π^i(a^i | s), one table per agent
    returns     [S]              V_π(s)
    ==========  ===============  ============================================
    """
    mdp, flat = _joint(game, pis)
    return _m.value(mdp, flat)


def q_value(game: MarkovGame, pis) -> torch.Tensor:
    r"""Joint action value Q_π(s, a^1, …, a^N).

    Eq. ``eq-q-from-v`` on the joint MDP: Q_π(s, a) = r(s, a) + γ Σ_{s'} P(s' | s, a) V_π(s').

    ==========  ===============  ============================================
    Symbol      Shape            Meaning
    ==========  ===============  ============================================
    ``pis[i]``  [S, n_i]         π^i(a^i | s), one table per agent
    returns     [S, n_1..n_N]    Q_π(s, a^1, …, a^N), one axis per agent
    ==========  ===============  ============================================
    """
    game = _game(game)
    mdp, flat = _joint(game, pis)
    return _m.q_value(mdp, flat).reshape(game.num_states, *game.action_counts)


def advantage(game: MarkovGame, pis) -> torch.Tensor:
    r"""Joint advantage of the product policy.

    Eq. ``eq-advantage`` on the joint MDP: A_π(s, a) = Q_π(s, a) − V_π(s).

    ==========  ===============  ============================================
    Symbol      Shape            Meaning
    ==========  ===============  ============================================
    ``pis[i]``  [S, n_i]         π^i(a^i | s), one table per agent
    returns     [S, n_1..n_N]    A_π(s, a^1, …, a^N)
    ==========  ===============  ============================================
    """
    game = _game(game)
    mdp, flat = _joint(game, pis)
    return _m.advantage(mdp, flat).reshape(game.num_states, *game.action_counts)


def objective(game: MarkovGame, pis) -> torch.Tensor:
    r"""Expected discounted return of the joint policy, a 0-dim tensor.

    Eq. ``eq-objective``: J(π) = Σ_s ρ0(s) V_π(s); differentiable in every π^i.

    ==========  ===============  ============================================
    Symbol      Shape            Meaning
    ==========  ===============  ============================================
    ``pis[i]``  [S, n_i]         π^i(a^i | s), one table per agent
    returns     []               J(π)
    ==========  ===============  ============================================
    """
    mdp, flat = _joint(game, pis)
    return _m.objective(mdp, flat)


def visitation(game: MarkovGame, pis) -> torch.Tensor:
    r"""Unnormalised discounted state visitation of the joint policy.

    Eq. ``eq-visitation``: ρ_π = (I − γ P_π^T)^{-1} ρ0, total mass 1/(1 − γ).

    ==========  ===============  ============================================
    Symbol      Shape            Meaning
    ==========  ===============  ============================================
    ``pis[i]``  [S, n_i]         π^i(a^i | s), one table per agent
    returns     [S]              ρ_π(s)
    ==========  ===============  ============================================
    """
    mdp, flat = _joint(game, pis)
    return _m.visitation(mdp, flat)


# ---------------------------------------------------------------------------------------
# Multi-agent Q and advantage (Kuba et al. 2022, Definition 1)
# ---------------------------------------------------------------------------------------


def _check_agents(agents, num_agents: int, name: str) -> tuple[int, ...]:
    if isinstance(agents, torch.Tensor) or type(agents).__module__ == "numpy":
        agents = agents.tolist()
    if isinstance(agents, numbers.Integral) and not isinstance(agents, bool):
        agents = (int(agents),)
    if isinstance(agents, (str, bytes)) or not isinstance(agents, (Sequence, set, frozenset)):
        raise HarlMiniError(f"{name}: expected a sequence of agent indices, got {agents!r}")
    if isinstance(agents, (set, frozenset)):
        raise HarlMiniError(f"{name}: the order of agents matters; pass a tuple or list, not a set")
    out = []
    for a in agents:
        if isinstance(a, bool):
            raise HarlMiniError(f"{name}: agent indices must be integers, got {a!r}")
        try:
            a = operator.index(a)
        except TypeError:
            raise HarlMiniError(f"{name}: agent indices must be integers, got {a!r}") from None
        if not 0 <= a < num_agents:
            raise HarlMiniError(f"{name}: agent index {a} out of range; the game has agents 0..{num_agents - 1}")
        if a in out:
            raise HarlMiniError(f"{name}: agent {a} appears more than once in {tuple(agents)}")
        out.append(a)
    return tuple(out)


def _marginal(Q: torch.Tensor, pis: list[torch.Tensor], agents: tuple[int, ...]) -> torch.Tensor:
    """E over the agents not in ``agents`` of the joint Q, output axes [S, *agents order]."""
    N = len(pis)
    operands: list = [Q, [0, *range(1, N + 1)]]
    for j in range(N):
        if j not in agents:
            operands += [pis[j], [0, j + 1]]
    return torch.einsum(*operands, [0, *(a + 1 for a in agents)])


def multi_agent_q(game: MarkovGame, pis, agents) -> torch.Tensor:
    r"""Multi-agent action value of an ordered subset of agents.

    Implements Chapter 7, eq. ``eq-ma-q`` (Kuba et al. 2022, Definition 1):
    Q^{i_{1:m}}_π(s, a^{i_{1:m}}) = Σ_{a^{-i_{1:m}}} π^{-i_{1:m}}(a^{-i_{1:m}} | s)
    Q_π(s, a^{i_{1:m}}, a^{-i_{1:m}}).
    With m = 0 it is V_π; with all agents it is the joint Q_π (axes permuted to the
    given order).

    ==============  ====================  =============================================
    Symbol          Shape                 Meaning
    ==============  ====================  =============================================
    ``pis[i]``      [S, n_i]              π^i(a^i | s)
    ``agents``      tuple (i_1..i_m)      ordered, distinct agent indices
    returns         [S, n_{i_1}..n_{i_m}] axes in the order of ``agents``
    ==============  ====================  =============================================
    """
    game = _game(game)
    agents = _check_agents(agents, game.num_agents, "agents")
    pis = check_joint_policy(game, pis)
    Q = q_value(game, pis)
    return _marginal(Q, pis, agents)


def multi_agent_advantage(game: MarkovGame, pis, agents, given=()) -> torch.Tensor:
    r"""Multi-agent advantage of ``agents`` given the actions of ``given``.

    Implements Chapter 7, eq. ``eq-ma-advantage`` (Kuba et al. 2022, Definition 1):
    A^{i_{1:m}}_π(s, a^{j_{1:k}}, a^{i_{1:m}}) = Q^{j_{1:k}, i_{1:m}}_π(s, a^{j_{1:k}}, a^{i_{1:m}})
    − Q^{j_{1:k}}_π(s, a^{j_{1:k}}).
    With ``given=()`` it is Q^{i_{1:m}} − V. Lemma 1 (advantage decomposition):
    A^{i_{1:m}}(s, a^{i_{1:m}}) = Σ_j A^{i_j}(s, a^{i_{1:j−1}}, a^{i_j}).

    ==============  ============================  ======================================
    Symbol          Shape                         Meaning
    ==============  ============================  ======================================
    ``agents``      tuple (i_1..i_m)              agents whose advantage is measured
    ``given``       tuple (j_1..j_k)              agents whose actions are conditioned
                                                  on; disjoint from ``agents``
    returns         [S, n_{j_1..j_k}, n_{i_1..}]  ``given`` axes first, then ``agents``
    ==============  ============================  ======================================
    """
    game = _game(game)
    agents = _check_agents(agents, game.num_agents, "agents")
    given = _check_agents(given, game.num_agents, "given")
    both = sorted(set(agents) & set(given))
    if both:
        raise HarlMiniError(f"given and agents must be disjoint; both contain agent {both[0]}")
    pis = check_joint_policy(game, pis)
    Q = q_value(game, pis)
    big = _marginal(Q, pis, given + agents)
    small = _marginal(Q, pis, given)
    return big - small.reshape(*small.shape, *([1] * len(agents)))


def all_multi_agent_q(game: MarkovGame, pis) -> dict[tuple[int, ...], torch.Tensor]:
    r"""Q^{i_{1:m}}_π for every ordered subset of agents (empty and full included).

    Computes the joint Q_π once (one linear solve), marginalises it once per unordered
    subset (2^N einsums), and returns axis permutations (views) for the orderings.
    Keys are the ordered tuples (i_1, …, i_m); values are as in :func:`multi_agent_q`
    (eq. ``eq-ma-q``). There are Σ_m N!/(N−m)! keys (65 for N = 4).

    ==============  ====================  =============================================
    Symbol          Shape                 Meaning
    ==============  ====================  =============================================
    ``pis[i]``      [S, n_i]              π^i(a^i | s)
    returns[key]    [S, n_{i_1}..n_{i_m}] Q^{key}, axes in the order of the key
    ==============  ====================  =============================================
    """
    game = _game(game)
    pis = check_joint_policy(game, pis)
    Q = q_value(game, pis)
    N = game.num_agents
    out: dict[tuple[int, ...], torch.Tensor] = {}
    for m in range(N + 1):
        for subset in itertools.combinations(range(N), m):
            marg = _marginal(Q, pis, subset)
            for order in itertools.permutations(subset):
                axes = [0, *(subset.index(a) + 1 for a in order)]
                out[order] = marg.permute(*axes)
    return out


def coma_advantage(game: MarkovGame, pis, agent: int) -> torch.Tensor:
    r"""COMA's counterfactual advantage of one agent (Foerster et al. 2018), from the joint Q_π.

    Implements Chapter 7, eq. ``eq-coma-advantage``:
    A^i_COMA(s, a) = Q_π(s, a) − Σ_{b} π^i(b | s) Q_π(s, a^{-i}, b),
    the joint action value minus a baseline that replaces agent i's action by an average
    over its own policy while the other agents' actions stay fixed. Computed here directly
    from this formula. It equals the multi-agent advantage A^i_π(s, a^{-i}, a^i) of agent i
    given all the others (eq. ``eq-ma-advantage``), the last term of the decomposition
    (eq. ``eq-ma-decomposition``) for any order that puts i last.

    ==============  ===============  ===============================================
    Symbol          Shape            Meaning
    ==============  ===============  ===============================================
    ``pis[i]``      [S, n_i]         π^i(a^i | s)
    ``agent``       int              the agent i whose action is replaced
    returns         [S, n_1..n_N]    A^i_COMA(s, a), agents' axes in their natural order
    ==============  ===============  ===============================================
    """
    game = _game(game)
    (i,) = _check_agents(agent, game.num_agents, "agent")
    pis = check_joint_policy(game, pis)
    Q = q_value(game, pis)
    N = game.num_agents
    baseline = torch.einsum(Q, [0, *range(1, N + 1)], pis[i], [0, i + 1], [0, *(j + 1 for j in range(N) if j != i)])
    return Q - baseline.unsqueeze(i + 1)
