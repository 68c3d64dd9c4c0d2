r"""Named cooperative games of the MARL chapters, as exact one-state Markov games (Chapter 6).

Every game here is a *one-state special case* of a cooperative Markov game: one state that
loops onto itself and γ = 0, so the objective of a joint policy is its expected payoff,

    J(π) = E_{a ∼ π}[r(a)] = Σ_a Π_i π^i(a^i) r(a^1, …, a^N)     (eq. ``eq-one-state-objective``),

and J* = max_a r(a). They are built with :func:`~harl_mini.tabular.game.matrix_game`, so
every exact quantity of :mod:`harl_mini.tabular.game` (V, Q, A, the multi-agent Q and
advantage) applies to them unchanged.

=======================  =====  ===========  ==========================================
Game                     N      actions      Source
=======================  =====  ===========  ==========================================
``xor_game``             2      2, 2         Fu et al. (ICML 2022): r = 1 iff a^1 ≠ a^2
``prop1_game(n)``        n      2 each       Kuba et al. (ICLR 2022), Proposition 1
``permutation_game(n)``  n      n each       Fu et al. (2022): r = 1 iff all distinct
``climbing_game``        2      3, 3         Claus & Boutilier (1998)
``penalty_game(k)``      2      3, 3         Claus & Boutilier (1998)
``zhong_example1_game``  2      2, 2         Zhong et al. (JMLR 2024), Example 1
``two_step_game``        2      2, 2         Rashid et al. (ICML 2018): four states
=======================  =====  ===========  ==========================================

All but ``two_step_game`` are one-state games (listed in :data:`MULTI_STATE_GAMES` otherwise).

``GAMES`` maps a name to its constructor and :func:`make_game` builds one by name; sized
games take their size after a dash (``"prop1-4"``, ``"permutation-3"``).
:func:`optimal_value` returns J* for any Markov game (through the joint MDP).

Payoff axes: axis i is agent i's action, agent 0 first (``payoff[a^1, a^2, …]``).
"""

from __future__ import annotations

import inspect
import itertools
import math
import numbers
import re

import torch

from harl_mini.errors import HarlMiniError
from harl_mini.tabular import mdp as _m
from harl_mini.tabular.game import MarkovGame, matrix_game

__all__ = [
    "xor_game",
    "prop1_game",
    "permutation_game",
    "climbing_game",
    "penalty_game",
    "zhong_example1_game",
    "two_step_game",
    "GAMES",
    "MULTI_STATE_GAMES",
    "SIZED_GAMES",
    "make_game",
    "optimal_value",
]

DTYPE = torch.float64

#: Largest sizes accepted, so that the dense payoff (2^n or n^n float64 entries) stays small.
MAX_PROP1_AGENTS = 20
MAX_PERMUTATION_AGENTS = 7


def _size(n, name: str, low: int, high: int) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise HarlMiniError(f"{name}: expected an integer number of agents, got {n!r}")
    n = int(n)
    if not low <= n <= high:
        raise HarlMiniError(f"{name}: expected {low} <= n <= {high} (the payoff is dense), got {n}")
    return n


def xor_game() -> MarkovGame:
    r"""The XOR game: two agents, two actions, reward 1 iff the actions differ.

    r(a^1, a^2) = 1[a^1 ≠ a^2], payoff [[0, 1], [1, 0]] (Fu et al. 2022; the 2-player
    permutation game and the n = 2 case of Proposition 1). J* = 1 at (0, 1) and (1, 0).

    ==========  ======  ===========================================
    Symbol      Shape   Meaning
    ==========  ======  ===========================================
    returns     —       MarkovGame, S = 1, γ = 0, R [1, 2, 2]
    ==========  ======  ===========================================
    """
    return matrix_game(torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=DTYPE), name="xor")


def prop1_game(n: int = 4) -> MarkovGame:
    r"""The game of Kuba et al. (2022), Proposition 1, where parameter sharing is exponentially bad.

    Implements Chapter 6, eq. ``eq-prop1-game``: n (even) agents with actions {0, 1};
    r(0^{n/2}, 1^{n/2}) = r(1^{n/2}, 0^{n/2}) = 1 and r = 0 otherwise. J* = 1, while a
    shared policy (θ, 1 − θ) earns J(θ) = 2 θ^{n/2} (1 − θ)^{n/2} ≤ 2/2^n. With n = 2
    it is the XOR game.

    ==========  ======  ===========================================
    Symbol      Shape   Meaning
    ==========  ======  ===========================================
    ``n``       int     number of agents, even, 2 <= n <= 20
    returns     —       MarkovGame, S = 1, γ = 0, R [1, 2, …, 2]
    ==========  ======  ===========================================
    """
    if isinstance(n, numbers.Integral) and not isinstance(n, bool) and n % 2:
        raise HarlMiniError(f"n: Proposition 1 needs an even number of agents (half play 0, half play 1), got {n}")
    n = _size(n, "n", 2, MAX_PROP1_AGENTS)
    payoff = torch.zeros((2,) * n, dtype=DTYPE)
    half = n // 2
    payoff[(0,) * half + (1,) * half] = 1.0
    payoff[(1,) * half + (0,) * half] = 1.0
    return matrix_game(payoff, name=f"prop1-{n}")


def permutation_game(n: int = 3) -> MarkovGame:
    r"""The n-player permutation game of Fu et al. (2022): reward 1 iff all actions differ.

    Implements Chapter 6, eq. ``eq-permutation-game``: n agents, each with actions
    {0, …, n − 1}; r(a) = 1 iff (a^1, …, a^n) is a permutation. There are n! optimal
    joint actions (J* = 1); a shared policy p earns n! Π_a p(a) ≤ n!/n^n.

    ==========  ======  ===========================================
    Symbol      Shape   Meaning
    ==========  ======  ===========================================
    ``n``       int     number of agents = number of actions, 1 <= n <= 7
    returns     —       MarkovGame, S = 1, γ = 0, R [1, n, …, n]
    ==========  ======  ===========================================
    """
    n = _size(n, "n", 1, MAX_PERMUTATION_AGENTS)
    payoff = torch.zeros((n,) * n, dtype=DTYPE)
    for perm in itertools.permutations(range(n)):
        payoff[perm] = 1.0
    return matrix_game(payoff, name=f"permutation-{n}")


def climbing_game() -> MarkovGame:
    r"""The climbing game of Claus & Boutilier (1998).

    Payoff [[11, −30, 0], [−30, 7, 6], [0, 0, 5]]: the optimum (0, 0) = 11 sits next to
    the penalty −30, so independent learners drift to the safe (2, 2) = 5 or (1, 1) = 7.

    ==========  ======  ===========================================
    Symbol      Shape   Meaning
    ==========  ======  ===========================================
    returns     —       MarkovGame, S = 1, γ = 0, R [1, 3, 3]
    ==========  ======  ===========================================
    """
    payoff = torch.tensor([[11.0, -30.0, 0.0], [-30.0, 7.0, 6.0], [0.0, 0.0, 5.0]], dtype=DTYPE)
    return matrix_game(payoff, name="climbing")


def penalty_game(k: float = -10.0) -> MarkovGame:
    r"""The penalty game of Claus & Boutilier (1998).

    Payoff [[10, 0, k], [0, 2, 0], [k, 0, 10]] with k <= 0: two optima (0, 0) and (2, 2)
    that miscoordinate into the penalty k, and a safe (1, 1) = 2.

    ==========  ======  ===========================================
    Symbol      Shape   Meaning
    ==========  ======  ===========================================
    ``k``       float   the miscoordination penalty (default −10)
    returns     —       MarkovGame, S = 1, γ = 0, R [1, 3, 3]
    ==========  ======  ===========================================
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not math.isfinite(float(k)):
        raise HarlMiniError(f"k: expected a finite number (the penalty), got {k!r}")
    k = float(k)
    payoff = torch.tensor([[10.0, 0.0, k], [0.0, 2.0, 0.0], [k, 0.0, 10.0]], dtype=DTYPE)
    return matrix_game(payoff, name="penalty" if k == -10.0 else f"penalty(k={k:g})")


def zhong_example1_game() -> MarkovGame:
    r"""HARL Example 1 (Zhong et al., JMLR 2024, §2.3.1): simultaneous updates can reach min J.

    r(0, 0) = 0, r(0, 1) = r(1, 0) = 2, r(1, 1) = −1. From π^i(0) > 0.6 for both agents,
    each agent's greedy response against the other's old policy is action 1, and the
    simultaneous update lands on r(1, 1) = −1 = min_π J.

    ==========  ======  ===========================================
    Symbol      Shape   Meaning
    ==========  ======  ===========================================
    returns     —       MarkovGame, S = 1, γ = 0, R [1, 2, 2]
    ==========  ======  ===========================================
    """
    payoff = torch.tensor([[0.0, 2.0], [2.0, -1.0]], dtype=DTYPE)
    return matrix_game(payoff, name="zhong-example1")


def two_step_game(gamma: float = 0.99) -> MarkovGame:
    r"""The two-step game of Rashid et al. (QMIX, ICML 2018, §6.1): a multi-state cooperative game.

    Two agents, two actions each, four states. In the start state s_1 agent 1's action picks
    the next state (0 → 2A, 1 → 2B; agent 2's action does nothing) and the reward is 0. In
    2A every joint action pays 7; in 2B the payoff is [[0, 1], [1, 8]]. Then the game
    enters the absorbing state "end" (reward 0 forever), where an episode terminates. The
    optimum is 2B then (1, 1): J* = γ·8, against γ·7 for the safe branch 2A; value
    factorisations such as VDN learn the safe branch (the paper's point).

    ==========  ======  ===========================================
    Symbol      Shape   Meaning
    ==========  ======  ===========================================
    ``gamma``   scalar  discount (0.99 by default; < 1 as every game here)
    returns     —       MarkovGame, S = 4 (s_1, 2A, 2B, end), ρ0 = e_{s_1}
    ==========  ======  ===========================================
    """
    S, START, A2, B2, END = 4, 0, 1, 2, 3
    P = torch.zeros((S, 2, 2, S), dtype=DTYPE)
    R = torch.zeros((S, 2, 2), dtype=DTYPE)
    P[START, 0, :, A2] = 1.0
    P[START, 1, :, B2] = 1.0
    P[A2, :, :, END] = 1.0
    P[B2, :, :, END] = 1.0
    P[END, :, :, END] = 1.0
    R[A2] = 7.0
    R[B2] = torch.tensor([[0.0, 1.0], [1.0, 8.0]], dtype=DTYPE)
    rho0 = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=DTYPE)
    return MarkovGame(P, R, gamma, rho0, "two-step")


#: name -> constructor. ``make_game`` accepts these names, sized ones also as ``name-<n>``.
GAMES = {
    "xor": xor_game,
    "prop1": prop1_game,
    "permutation": permutation_game,
    "climbing": climbing_game,
    "penalty": penalty_game,
    "zhong-example1": zhong_example1_game,
    "two-step": two_step_game,
}

#: the games with more than one state (played with ``markov:<name>``, not ``game:<name>``)
MULTI_STATE_GAMES = ("two-step",)

#: the games whose constructor takes the number of agents ``n`` (``"prop1-4"``).
SIZED_GAMES = ("prop1", "permutation")


def _available() -> list[str]:
    return [f"{g}-<n>" if g in SIZED_GAMES else g for g in GAMES]


def make_game(name: str, **kwargs) -> MarkovGame:
    r"""Build a named game: ``"xor"``, ``"prop1-4"``, ``"permutation-3"``, ``"climbing"``, …

    ``"prop1"`` and ``"permutation"`` without a size use the constructor defaults (4 and
    3); a size may also come as ``n=…``. Other keywords go to the constructor
    (``make_game("penalty", k=-100)``). Unknown names or keywords raise
    :class:`HarlMiniError` listing what exists.

    ==========  ======  ===========================================
    Symbol      Type    Meaning
    ==========  ======  ===========================================
    ``name``    str     a key of ``GAMES``, optionally ``-<n>``
    returns     —       the MarkovGame
    ==========  ======  ===========================================
    """
    if not isinstance(name, str):
        raise HarlMiniError(f"name: expected a game name (a string), got {name!r}")
    base, size = name, None
    match = re.fullmatch(r"(.+?)-(\d+)", name)
    if match and match.group(1) in GAMES:
        base, size = match.group(1), int(match.group(2))
    if base not in GAMES:
        raise HarlMiniError(f"unknown game {name!r}; available: {', '.join(_available())}")
    if size is not None:
        if base not in SIZED_GAMES:
            raise HarlMiniError(f"game {base!r} has a fixed size; write {base!r}, not {name!r} "
                                f"(sized games: {', '.join(g + '-<n>' for g in SIZED_GAMES)})")
        if "n" in kwargs:
            raise HarlMiniError(f"make_game({name!r}): the size is given twice (in the name and as n=)")
        kwargs = {**kwargs, "n": size}
    fn = GAMES[base]
    sig = inspect.signature(fn)
    try:
        sig.bind(**kwargs)
    except TypeError as exc:
        params = ", ".join(sig.parameters) or "none"
        raise HarlMiniError(f"make_game({name!r}): {exc}; parameters: {params}") from None
    return fn(**kwargs)


def optimal_value(game: MarkovGame) -> torch.Tensor:
    r"""The optimal team objective J* = max_π J(π), a 0-dim tensor.

    A cooperative game with a shared reward is a single-agent MDP over joint actions, and
    its optimum is attained by a deterministic joint policy, which is a product of
    deterministic per-agent policies. So J* = Σ_s ρ0(s) V*(s) with V* the optimal value of
    :meth:`MarkovGame.joint_mdp` (eq. ``eq-bellman-optimality``); for a one-state γ = 0
    game this is max_a r(a) (eq. ``eq-one-state-objective``), computed directly.

    ==========  ======  ===========================================
    Symbol      Shape   Meaning
    ==========  ======  ===========================================
    ``game``    —       a MarkovGame
    returns     []      J*
    ==========  ======  ===========================================
    """
    if not isinstance(game, MarkovGame):
        raise HarlMiniError(f"game: expected a MarkovGame, got {type(game).__name__}")
    if game.num_states == 1 and game.gamma == 0.0:
        return game.R.max()
    mdp = game.joint_mdp()
    return mdp.rho0 @ _m.optimal_value(mdp)
