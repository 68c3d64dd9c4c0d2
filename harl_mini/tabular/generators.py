r"""Ready-made MDPs and Markov games for the book, the exercises and the tests.

Contents:

* ``random_mdp`` — dense (Dirichlet rows) or sparse (exactly ``branching`` successors)
  random MDPs; ``random_game`` — the same for cooperative Markov games;
* ``gridworld`` / :class:`Gridworld` / ``GRIDWORLDS`` — Russell & Norvig's 4×3 world and a
  cliff world, with helpers to draw values and policies on the grid;
* ``chain_mdp`` — the n-state chain where a small sure reward tempts the agent away from
  a larger distant one;
* ``matrix_game`` is in :mod:`harl_mini.tabular.game` (one-state games);
* ``MDPS`` / ``make_mdp`` — a name registry. Adding an MDP is one function returning a
  :class:`~harl_mini.tabular.mdp.FiniteMDP` plus one line in ``MDPS``.

Every random generator takes a ``seed`` and draws only from its own ``torch.Generator``:
the same arguments give bit-identical tensors.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from harl_mini.errors import HarlMiniError, as_float64, check_choice, check_positive_int
from harl_mini.tabular.game import MarkovGame
from harl_mini.tabular.mdp import DTYPE, FiniteMDP, _check_seed, check_gamma, sample_dirichlet

__all__ = [
    "random_mdp",
    "random_game",
    "Gridworld",
    "GRIDWORLDS",
    "gridworld",
    "chain_mdp",
    "with_unreachable_state",
    "MDPS",
    "make_mdp",
]


# ---------------------------------------------------------------------------------------
# Random MDPs and games
# ---------------------------------------------------------------------------------------



def _reward_range(reward_range) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in reward_range)
    except (TypeError, ValueError):
        raise HarlMiniError(f"reward_range: expected a pair (low, high), got {reward_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise HarlMiniError(f"reward_range: expected finite low <= high, got {reward_range!r}")
    return low, high


def _random_transitions(S: int, A: int, branching, g: torch.Generator) -> torch.Tensor:
    """P[s, a, :] ~ Dirichlet(1) on all S states, or on ``branching`` distinct random states."""
    if branching is None:
        return sample_dirichlet((S, A, S), 1.0, g)
    k = check_positive_int(branching, "branching")
    if k > S:
        raise HarlMiniError(f"branching: must be at most num_states = {S}, got {k}")
    support = torch.rand((S, A, S), generator=g, dtype=DTYPE).argsort(-1)[..., :k]
    weights = sample_dirichlet((S, A, k), 1.0, g)
    return torch.zeros((S, A, S), dtype=DTYPE).scatter(-1, support, weights)


def random_mdp(
    num_states: int,
    num_actions: int,
    gamma: float = 0.9,
    seed: int = 0,
    branching: int | None = None,
    reward_range: tuple[float, float] = (0.0, 1.0),
) -> FiniteMDP:
    r"""A random finite MDP with uniform ρ0.

    Dense (``branching=None``): each P(· | s, a) ~ Dirichlet(1, …, 1) over all S states.
    Sparse: each P(· | s, a) puts Dirichlet(1) weights on exactly ``branching`` distinct
    successor states chosen uniformly at random. R(s, a) ~ Uniform(reward_range).

    ================  =========  ==============================================
    Symbol            Shape      Meaning
    ================  =========  ==============================================
    ``num_states``    int        S
    ``num_actions``   int        A
    ``branching``     int|None   successors per (s, a), 1 <= branching <= S
    returns           —          FiniteMDP with P [S, A, S], R [S, A]
    ================  =========  ==============================================
    """
    S = check_positive_int(num_states, "num_states")
    A = check_positive_int(num_actions, "num_actions")
    gamma = check_gamma(gamma)
    low, high = _reward_range(reward_range)
    g = torch.Generator().manual_seed(_check_seed(seed))
    P = _random_transitions(S, A, branching, g)
    R = low + (high - low) * torch.rand((S, A), generator=g, dtype=DTYPE)
    kind = "dense" if branching is None else f"branching={branching}"
    return FiniteMDP(P, R, gamma, None, f"random(S={S}, A={A}, {kind}, seed={seed})")


def random_game(
    num_states: int,
    action_counts: Sequence[int],
    gamma: float = 0.9,
    seed: int = 0,
    branching: int | None = None,
    reward_range: tuple[float, float] = (0.0, 1.0),
) -> MarkovGame:
    r"""A random cooperative Markov game with uniform ρ0 (the game analogue of ``random_mdp``).

    Each P(· | s, a^1, …, a^N) is Dirichlet(1) over all states (or over ``branching``
    random states); the shared reward r(s, a) ~ Uniform(reward_range).

    ==================  ===============  =========================================
    Symbol              Shape            Meaning
    ==================  ===============  =========================================
    ``action_counts``   (n_1, …, n_N)    actions per agent (may differ)
    returns             —                MarkovGame, P [S, n_1..n_N, S]
    ==================  ===============  =========================================
    """
    S = check_positive_int(num_states, "num_states")
    if isinstance(action_counts, (str, bytes)) or not isinstance(action_counts, Sequence) or len(action_counts) == 0:
        raise HarlMiniError(f"action_counts: expected a non-empty sequence of positive integers, got {action_counts!r}")
    counts = tuple(check_positive_int(n, f"action_counts[{i}]") for i, n in enumerate(action_counts))
    gamma = check_gamma(gamma)
    low, high = _reward_range(reward_range)
    g = torch.Generator().manual_seed(_check_seed(seed))
    J = math.prod(counts)
    P = _random_transitions(S, J, branching, g).reshape(S, *counts, S)
    R = low + (high - low) * torch.rand((S, *counts), generator=g, dtype=DTYPE)
    return MarkovGame(P, R, gamma, None, f"random_game(S={S}, n={counts}, seed={seed})")


# ---------------------------------------------------------------------------------------
# Gridworlds
# ---------------------------------------------------------------------------------------

#: Named layouts. Rows top to bottom: '.' floor, '#' wall, '+' goal, '-' pit, 'S' start.
GRIDWORLDS: dict[str, tuple[str, ...]] = {
    # Russell & Norvig, AIMA Fig. 17.1: start bottom-left, +1 top-right, -1 below it.
    "4x3": (
        "...+",
        ".#.-",
        "S...",
    ),
    # A cliff along the bottom row: the short path risks slipping into a pit.
    "cliff-5x5": (
        ".....",
        ".#.#.",
        ".....",
        ".....",
        "S---+",
    ),
}

_MOVES = {"N": (-1, 0), "E": (0, 1), "S": (1, 0), "W": (0, -1)}
_PERPENDICULAR = {"N": ("E", "W"), "S": ("E", "W"), "E": ("N", "S"), "W": ("N", "S")}
_ARROWS = {"N": "↑", "E": "→", "S": "↓", "W": "←"}


@dataclass(frozen=True, eq=False)
class Gridworld:
    r"""A gridworld MDP together with its geometry.

    State i < len(cells) is the cell ``cells[i] = (row, col)`` (non-wall cells in row-major
    order); the last state, index ``end = len(cells)``, is the absorbing zero-reward end
    state that goal and pit cells lead to.

    =============  ==============  ===========================================
    Field          Type            Meaning
    =============  ==============  ===========================================
    ``mdp``        FiniteMDP       S = len(cells) + 1 states, A = 4
    ``layout``     tuple[str]      the row strings
    ``cells``      list[(r, c)]    grid position of each non-absorbing state
    ``actions``    tuple[str]      ("N", "E", "S", "W")
    ``start``      int             state index of the 'S' cell (ρ0 is a point mass)
    ``end``        int             index of the absorbing end state
    =============  ==============  ===========================================
    """

    mdp: FiniteMDP
    layout: tuple[str, ...]
    cells: list[tuple[int, int]]
    actions: tuple[str, ...] = ("N", "E", "S", "W")
    start: int = 0
    end: int = field(default=-1)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the layout."""
        return len(self.layout), len(self.layout[0])

    def to_grid(self, values) -> np.ndarray:
        """A per-state vector ([S] or [S − 1], the end state dropped) as a 2-D numpy array.

        Wall cells are NaN; ready for ``matplotlib.pyplot.imshow``. For display only.
        """
        v = as_float64(values.detach() if isinstance(values, torch.Tensor) else values, "values")
        n = len(self.cells)
        if v.dim() != 1 or v.shape[0] not in (n, n + 1):
            raise HarlMiniError(f"values: expected shape [{n + 1}] or [{n}], got {list(v.shape)}")
        grid = np.full(self.shape, np.nan)
        for i, (r, c) in enumerate(self.cells):
            grid[r, c] = float(v[i])
        return grid

    def policy_grid(self, pi) -> list[str]:
        """Rows of arrows showing argmax_a π(a | s); '#' wall, '+'/'-' terminal cells."""
        n = len(self.cells)
        p = as_float64(pi.detach() if isinstance(pi, torch.Tensor) else pi, "pi")
        if p.dim() != 2 or p.shape[0] not in (n, n + 1) or p.shape[1] != len(self.actions):
            raise HarlMiniError(f"pi: expected shape [{n + 1}, {len(self.actions)}], got {list(p.shape)}")
        rows = [list(r) for r in self.layout]
        best = p.argmax(-1).tolist()
        for i, (r, c) in enumerate(self.cells):
            if self.layout[r][c] not in "+-":
                rows[r][c] = _ARROWS[self.actions[best[i]]]
        return ["".join(r) for r in rows]


def _parse_layout(layout) -> tuple[str, ...]:
    if isinstance(layout, str):
        check_choice(layout, GRIDWORLDS, "gridworld layout")
        return GRIDWORLDS[layout]
    if not isinstance(layout, Sequence) or len(layout) == 0 or not all(isinstance(r, str) for r in layout):
        raise HarlMiniError(f"layout: expected a layout name or a sequence of row strings, got {layout!r}")
    rows = tuple(layout)
    if len({len(r) for r in rows}) != 1 or len(rows[0]) == 0:
        raise HarlMiniError(f"layout: all rows must be non-empty and have the same length, got {rows!r}")
    bad = sorted({ch for r in rows for ch in r} - set(".#+-S"))
    if bad:
        raise HarlMiniError(f"layout: unknown cell characters {bad}; use '.', '#', '+', '-', 'S'")
    if sum(r.count("S") for r in rows) != 1:
        raise HarlMiniError("layout: needs exactly one start cell 'S'")
    return rows


def gridworld(
    layout="4x3",
    slip: float = 0.2,
    gamma: float = 0.95,
    step_reward: float = -0.04,
    goal_reward: float = 1.0,
    pit_reward: float = -1.0,
) -> Gridworld:
    r"""A slippery gridworld; the default is Russell & Norvig's 4×3 world.

    Dynamics: actions N, E, S, W. The intended move happens with probability 1 − slip and
    each perpendicular move with probability slip/2; a move into a wall or off the grid
    leaves the agent where it is.

    Rewards (CS229 form R[s], received on leaving s): ``step_reward`` on floor cells,
    ``goal_reward`` on '+', ``pit_reward`` on '-'. Terminal convention: from a goal or pit
    cell every action leads, with probability 1, to an absorbing end state with reward 0.
    So a terminal cell's reward is collected exactly once and V(goal) = goal_reward.
    ρ0 is a point mass on the 'S' cell.

    ===============  ==========  ==============================================
    Symbol           Type        Meaning
    ===============  ==========  ==============================================
    ``layout``       str|rows    a name in ``GRIDWORLDS`` or row strings
    ``slip``         float       probability of not moving as intended, in [0, 1]
    returns          Gridworld   ``.mdp`` has S = #non-wall cells + 1, A = 4
    ===============  ==========  ==============================================
    """
    name = layout if isinstance(layout, str) else "custom"
    rows = _parse_layout(layout)
    if isinstance(slip, bool) or not isinstance(slip, numbers.Real) or not 0.0 <= float(slip) <= 1.0:
        raise HarlMiniError(f"slip: must satisfy 0 <= slip <= 1, got {slip!r}")
    slip = float(slip)
    gamma = check_gamma(gamma)
    for nm, v in (("step_reward", step_reward), ("goal_reward", goal_reward), ("pit_reward", pit_reward)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise HarlMiniError(f"{nm}: expected a finite number, got {v!r}")
    H, W = len(rows), len(rows[0])
    cells = [(r, c) for r in range(H) for c in range(W) if rows[r][c] != "#"]
    index = {cell: i for i, cell in enumerate(cells)}
    end = len(cells)
    S, actions = end + 1, ("N", "E", "S", "W")
    P = torch.zeros((S, len(actions), S), dtype=DTYPE)
    R = torch.zeros(S, dtype=DTYPE)

    def step(cell, direction):
        r, c = cell[0] + _MOVES[direction][0], cell[1] + _MOVES[direction][1]
        if 0 <= r < H and 0 <= c < W and rows[r][c] != "#":
            return index[(r, c)]
        return index[cell]

    for i, cell in enumerate(cells):
        kind = rows[cell[0]][cell[1]]
        if kind in "+-":
            R[i] = goal_reward if kind == "+" else pit_reward
            P[i, :, end] = 1.0
            continue
        R[i] = step_reward
        for a, direction in enumerate(actions):
            outcomes = [(direction, 1.0 - slip)] + [(d, slip / 2) for d in _PERPENDICULAR[direction]]
            for d, prob in outcomes:
                P[i, a, step(cell, d)] += prob
    P[end, :, end] = 1.0
    start = next(index[(r, c)] for r, c in cells if rows[r][c] == "S")
    rho0 = torch.zeros(S, dtype=DTYPE)
    rho0[start] = 1.0
    mdp = FiniteMDP(P, R, gamma, rho0, f"gridworld-{name}")
    return Gridworld(mdp=mdp, layout=rows, cells=cells, actions=actions, start=start, end=end)


def gridworld_mdp(
    layout="4x3",
    slip: float = 0.2,
    gamma: float = 0.95,
    step_reward: float = -0.04,
    goal_reward: float = 1.0,
    pit_reward: float = -1.0,
) -> FiniteMDP:
    """The :class:`FiniteMDP` of :func:`gridworld` (registry entry ``"gridworld"``)."""
    return gridworld(layout, slip, gamma, step_reward, goal_reward, pit_reward).mdp


# ---------------------------------------------------------------------------------------
# The chain
# ---------------------------------------------------------------------------------------


def chain_mdp(
    n: int = 5,
    gamma: float = 0.9,
    slip: float = 0.1,
    small_reward: float = 0.2,
    big_reward: float = 1.0,
) -> FiniteMDP:
    r"""The n-state chain (after Strens 2000's "NChain"), a classic exploration trap.

    States 0, …, n−1 in a line; the agent starts in state 0 (ρ0 = point mass). Action 0,
    "back", returns to state 0 and pays ``small_reward``. Action 1, "forward", moves one
    state right and pays nothing, except in the last state, where it stays and pays
    ``big_reward``. With probability ``slip`` the other action is executed instead, so
    R(s, a) is the expected reward of the executed action. A myopic or poorly exploring
    agent settles for the sure small reward; for γ close enough to 1 the optimal policy
    walks forward everywhere (with the defaults, V*(0) ≈ 4.07 versus ≈ 1.80 for always
    "back").

    ==================  =======  ==============================================
    Symbol              Type     Meaning
    ==================  =======  ==============================================
    ``n``               int      number of states, >= 2
    ``slip``            float    probability that the other action is executed
    returns             —        FiniteMDP with S = n, A = 2 (0 back, 1 forward)
    ==================  =======  ==============================================
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or int(n) < 2:
        raise HarlMiniError(f"n: expected an integer >= 2, got {n!r}")
    n = int(n)
    if isinstance(slip, bool) or not isinstance(slip, numbers.Real) or not 0.0 <= float(slip) <= 1.0:
        raise HarlMiniError(f"slip: must satisfy 0 <= slip <= 1, got {slip!r}")
    slip = float(slip)
    gamma = check_gamma(gamma)
    for nm, v in (("small_reward", small_reward), ("big_reward", big_reward)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise HarlMiniError(f"{nm}: expected a finite number, got {v!r}")
    BACK, FORWARD = 0, 1
    P_exec = torch.zeros((n, 2, n), dtype=DTYPE)  # dynamics of the executed action
    R_exec = torch.zeros((n, 2), dtype=DTYPE)
    for s in range(n):
        P_exec[s, BACK, 0] = 1.0
        R_exec[s, BACK] = small_reward
        P_exec[s, FORWARD, min(s + 1, n - 1)] = 1.0
        R_exec[s, FORWARD] = big_reward if s == n - 1 else 0.0
    swap = torch.tensor([FORWARD, BACK])
    P = (1.0 - slip) * P_exec + slip * P_exec[:, swap, :]
    R = (1.0 - slip) * R_exec + slip * R_exec[:, swap]
    rho0 = torch.zeros(n, dtype=DTYPE)
    rho0[0] = 1.0
    return FiniteMDP(P, R, gamma, rho0, f"chain(n={n})")


def with_unreachable_state(mdp: FiniteMDP) -> FiniteMDP:
    r"""A copy of ``mdp`` that starts in state 0 and never enters its last state.

    Every transition into the last state is removed and the rest of its row renormalised (a
    row that led only there goes to state 0 instead); the last state keeps valid rows of its
    own, and ρ0 is a point mass on state 0. So d_π(S − 1) = ρ_π(S − 1) = 0 for every policy π:
    the case of Chapter 3's natural gradient on unreachable states
    (eq. ``eq-natural-gradient-softmax``). Needs S ≥ 2.

    ==========  ==========  =============================================
    Symbol      Shape       Meaning
    ==========  ==========  =============================================
    ``mdp``     —           a :class:`~harl_mini.tabular.FiniteMDP`
    returns     —           the variant (same S, A, R, γ)
    ==========  ==========  =============================================
    """
    if not isinstance(mdp, FiniteMDP):
        raise HarlMiniError(f"mdp: expected a FiniteMDP, got {type(mdp).__name__}")
    S = mdp.num_states
    if S < 2:
        raise HarlMiniError(f"mdp: needs at least 2 states to make one unreachable, got {S}")
    P = mdp.P.detach().clone()
    P[:, :, -1] = 0.0
    dead = P.sum(-1) == 0
    P[..., 0] = torch.where(dead, torch.ones_like(P[..., 0]), P[..., 0])
    P = P / P.sum(-1, keepdim=True)
    P[-1, :, -1] = 0.5  # the last state still has valid rows ...
    P[-1] = P[-1] / P[-1].sum(-1, keepdim=True)  # ... but nothing leads into it
    rho0 = torch.zeros(S, dtype=DTYPE)
    rho0[0] = 1.0
    return FiniteMDP(P, mdp.R.detach().clone(), mdp.gamma, rho0, name=f"{mdp.name}-unreachable-last")


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------

#: name -> function returning a FiniteMDP. Add an MDP: write the function, add one line.
MDPS = {
    "random": random_mdp,
    "gridworld": gridworld_mdp,
    "chain": chain_mdp,
}


def make_mdp(name: str, **kwargs) -> FiniteMDP:
    """Build a registered MDP by name, e.g. ``make_mdp("random", num_states=5, num_actions=2)``.

    An unknown name raises :class:`HarlMiniError` listing the available names; an unknown
    or missing keyword raises one naming the function's parameters.
    """
    if not isinstance(name, str):
        raise HarlMiniError(f"name: expected an MDP name (a string), got {name!r}")
    check_choice(name, MDPS, "MDP")
    fn = MDPS[name]
    sig = inspect.signature(fn)
    try:
        sig.bind(**kwargs)
    except TypeError as exc:
        raise HarlMiniError(f"make_mdp({name!r}): {exc}; parameters: {', '.join(sig.parameters)}") from None
    return fn(**kwargs)
