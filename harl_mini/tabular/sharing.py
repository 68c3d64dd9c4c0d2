r"""Parameter sharing and value decomposition, computed exactly (Chapter 6).

Two common practices of cooperative MARL restrict what the team can represent, and both
restrictions can be measured exactly on the one-state games of
:mod:`harl_mini.tabular.games`.

**Parameter sharing.** Every agent uses the same policy p (possibly a different p per
state), so J_share(p) = J(p, p, …, p) (eq. ``eq-shared-objective``) and
J*_share = max_p J_share(p) ≤ J*. Kuba et al. (2022), Proposition 1: on
:func:`~harl_mini.tabular.games.prop1_game` the ratio is J*_share/J* = 2/2^n; on the
permutation game of Fu et al. (2022) it is n!/n^n. :func:`best_shared_policy` finds
J*_share numerically (mirror ascent on the simplex), also for agents that share one policy per
*label* (a coarse agent identity); :func:`shared_optimum_two_actions` finds it exactly when every
agent has two actions. :func:`weakly_homogeneous` and :func:`strongly_homogeneous` test the
definitions of Albrecht, Christianos & Schäfer (2024) exactly on a payoff tensor (eq.
``eq-weakly-homogeneous``). What an identity buys is exact too: :func:`label_sharing_optimal`
(do these labels reach J*?), :func:`fewest_shared_policies` (how few labels do), and
:func:`optimal_product_entropy` (the most randomness an optimal product policy keeps, which no
identity input changes).

**Value decomposition.** A centralised Q_tot(a) is built from per-agent utilities
q_i(a^i) so that each agent can act greedily on its own q_i:

* VDN (Sunehag et al. 2018): Q_tot(a) = Σ_i q_i(a^i) (eq. ``eq-vdn``); the best fit is a
  linear least-squares problem, :func:`vdn_fit`;
* QMIX (Rashid et al. 2018): Q_tot(a) = f(q_1(a^1), …, q_N(a^N)) with ∂f/∂q_i ≥ 0
  (eq. ``eq-qmix-monotone``), :func:`qmix_fit`;
* IGM (individual-global-max): argmax_a Q_tot(a) = Π_i argmax_{a^i} q_i(a^i)
  (eq. ``eq-igm``), :func:`igm_holds`.

On the XOR game no exact decomposition satisfies IGM (:func:`igm_representable`), the
additive fit leaves the residual [[−½, ½], [½, −½]] (summed squared error 1.0, the
"floor" of Fu et al.; :func:`vdn_floor`), and no monotone mixing of any utilities can go
below a summed squared error of 2/3 (:func:`qmix_floor`, exact by isotonic regression);
four different tables attain it (:func:`monotone_fits`).

**Independent Q-learning** (Tan 1993) on one-state games: :func:`independent_q_learning`
(tabular, sampled, seeded; eq. ``eq-iql``) and its exact rest points
:func:`iql_fixed_points` under ε_greedy exploration (:func:`epsilon_greedy_policies`).

Naming of errors, used throughout: for a fit with residual e(a) = r(a) − Q_tot(a) and
data distribution w over joint actions,

* ``mse`` = Σ_a w(a) e(a)², the weighted mean squared error (the training loss);
* ``sse`` = Σ_a e(a)², the squared error summed over all joint actions (what Fu et al.
  plot, and what theory.md §6b calls the floor). With uniform w, sse = (Π_i n_i) · mse.

Shapes: ``payoff`` [n_1, …, n_N] (agent 0 on axis 0); a one-state MarkovGame is accepted
wherever a payoff is, and its reward table R[0] is used.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import torch

from harl_mini.errors import HarlMiniError, as_float64, check_distribution, check_shape
from harl_mini.tabular import game as _g
from harl_mini.tabular import mdp as _m
from harl_mini.tabular.game import MarkovGame

__all__ = [
    "weakly_homogeneous",
    "strongly_homogeneous",
    "shared_objective",
    "SharedOptimum",
    "best_shared_policy",
    "shared_optimum_two_actions",
    "label_sharing_optimal",
    "fewest_shared_policies",
    "optimal_product_entropy",
    "ValueFit",
    "vdn_fit",
    "vdn_floor",
    "argmax_set",
    "igm_holds",
    "igm_representable",
    "qmix_fit",
    "monotone_fit_bound",
    "monotone_fits",
    "qmix_floor",
    "IQLRun",
    "independent_q_learning",
    "epsilon_greedy_policies",
    "iql_fixed_points",
]

DTYPE = torch.float64
_EPS = torch.finfo(DTYPE).eps


# ---------------------------------------------------------------------------------------
# Parameter sharing
# ---------------------------------------------------------------------------------------


def weakly_homogeneous(payoff, atol: float = 0.0) -> bool:
    r"""Whether the agents of a one-state game are weakly homogeneous (interchangeable).

    Implements the definition of Albrecht, Christianos & Schäfer (2024) for a shared reward
    (Chapter 6, eq. ``eq-weakly-homogeneous``): J(π) = J(π∘σ) for every joint policy π and
    every permutation σ of the agents, where (π∘σ)^i = π^{σ(i)} (agent i takes the policy of
    agent σ(i)). On a one-state game J is multilinear in the policies, and evaluating it at
    deterministic policies gives r(a) = r(a^{σ(1)}, …, a^{σ(N)}); conversely such a payoff
    gives J(π∘σ) = J(π) by reindexing the sum. So the test is exact on the payoff tensor: the
    agents need equal action counts and the payoff must be invariant under every permutation
    of its axes. Adjacent transpositions generate all permutations, so N − 1 comparisons
    suffice.

    XOR, the permutation games and the penalty game are weakly homogeneous; the climbing game
    is not (r(1, 2) = 6, r(2, 1) = 0), nor is the Proposition-1 game with n ≥ 4 (reward
    depends on who is in which half: r(0, 0, 1, 1) = 1, r(0, 1, 0, 1) = 0).

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    ``atol``        float           largest entry-wise difference that counts as equal
    returns         bool            True iff r(a) = r(a∘σ) for every σ and a
    ==============  ==============  ================================================
    """
    r = _payoff(payoff)
    atol = _check_atol(atol)
    if len(set(r.shape)) > 1:
        return False
    N = r.dim()
    for i in range(N - 1):
        swapped = r.transpose(i, i + 1)
        if float((swapped - r).abs().max()) > atol:
            return False
    return True


def strongly_homogeneous(payoff, atol: float = 0.0) -> bool:
    r"""Whether a one-state game is strongly homogeneous: interchangeable agents, and identical policies are optimal.

    Albrecht, Christianos & Schäfer (2024): weakly homogeneous (:func:`weakly_homogeneous`)
    and some optimal joint policy gives every agent the same policy, i.e. J*_share = J*
    (eq. ``eq-shared-objective``). Exact test: a shared policy p reaches J* iff every joint
    action in supp(p)^N is optimal; supp(p)^N contains the diagonal (b, …, b) for each
    b ∈ supp(p), and p = e_b reaches r(b, …, b). So J*_share = J* iff some diagonal joint
    action attains max r. The penalty game is strongly homogeneous ((0, 0) = 10 = J*); XOR
    and the permutation games are weakly but not strongly homogeneous.

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    ``atol``        float           tolerance of both comparisons
    returns         bool            weakly homogeneous and max_b r(b, …, b) = max r
    ==============  ==============  ================================================
    """
    r = _payoff(payoff)
    if not weakly_homogeneous(r, atol):
        return False
    n, N = r.shape[0], r.dim()
    diagonal = r[(torch.arange(n),) * N]
    return float(diagonal.max()) >= float(r.max()) - _check_atol(atol)



def _shared_game(game) -> MarkovGame:
    game = _g._game(game)
    counts = game.action_counts
    if len(set(counts)) != 1:
        raise HarlMiniError(f"game: parameter sharing needs every agent to have the same number of actions; "
                            f"got action_counts={counts}")
    return game


def _shared_table(game: MarkovGame, p) -> torch.Tensor:
    S, n = game.num_states, game.action_counts[0]
    t = as_float64(p, "p")  # keeps the autograd graph of a float64 tensor
    if t.dim() == 1:
        check_shape(t, [n], "p")
        t = t.unsqueeze(0).expand(S, n)
    return _m.check_policy(t, S, n, "p")


def shared_objective(game: MarkovGame, p) -> torch.Tensor:
    r"""J of the team when every agent uses the same policy p; a 0-dim tensor, differentiable in p.

    Implements Chapter 6, eq. ``eq-shared-objective``: J_share(p) = J(p, p, …, p), with
    J from eq. ``eq-objective`` on the joint MDP. For one state and γ = 0,
    J_share(p) = Σ_a r(a) Π_i p(a^i).

    ==========  ===============  ===================================================
    Symbol      Shape            Meaning
    ==========  ===============  ===================================================
    ``game``    —                MarkovGame whose agents all have n actions
    ``p``       [n] or [S, n]    the shared policy ([n]: the same row in every state)
    returns     []               J_share(p)
    ==========  ===============  ===================================================
    """
    game = _shared_game(game)
    table = _shared_table(game, p)
    return _g.objective(game, [table] * game.num_agents)


class SharedOptimum(NamedTuple):
    """Result of :func:`best_shared_policy`: ``p, J = best_shared_policy(game)``."""

    policy: torch.Tensor  #: [S, n], the best shared policy found
    value: float  #: J_share at that policy


def _team(game: MarkovGame, p: torch.Tensor, labels: tuple[int, ...] | None) -> list[torch.Tensor]:
    """The agents' policies: p [S, n] for every agent, or p[labels[i]] of p [G, S, n]."""
    return [p] * game.num_agents if labels is None else [p[g] for g in labels]


def _value_and_grad(game: MarkovGame, p: torch.Tensor,
                    labels: tuple[int, ...] | None = None) -> tuple[float, torch.Tensor]:
    p = p.detach().requires_grad_(True)
    J = _g.objective(game, _team(game, p, labels))
    (grad,) = torch.autograd.grad(J, p)
    return float(J.detach()), grad


def _mirror_ascent(game: MarkovGame, p: torch.Tensor, max_steps: int, tol: float,
                   labels: tuple[int, ...] | None = None) -> tuple[torch.Tensor, float]:
    """Exponentiated-gradient ascent with an Armijo backtracking step size."""
    J, grad = _value_and_grad(game, p, labels)
    eta = 1.0 / max(float(grad.abs().max()), 1e-300)
    for _ in range(max_steps):
        # Frank–Wolfe gap per state: 0 exactly at a first-order stationary point.
        gap = float((grad.max(-1).values - (p * grad).sum(-1)).max())
        if gap <= tol * (1.0 + float(grad.abs().max())):
            break
        for _ in range(60):
            p_new = torch.softmax(torch.log(p) + eta * grad, dim=-1)
            J_new = float(_g.objective(game, _team(game, p_new, labels)))
            # sufficient increase: half of what the linearisation predicts (>= 0 for this step)
            if J_new >= J + 0.5 * float((grad * (p_new - p)).sum()):
                break
            eta *= 0.5
        else:  # no sufficient increase at float64 resolution: stationary
            break
        improved = J_new - J
        p = p_new
        J, grad = _value_and_grad(game, p, labels)
        if improved <= 4 * _EPS * max(abs(J), 1e-300):
            break
        eta *= 2.0
    return p.detach(), J


def best_shared_policy(game: MarkovGame, restarts: int = 8, seed: int = 0, max_steps: int = 2000,
                       tol: float = 1e-10, labels=None) -> SharedOptimum:
    r"""The best policy that all agents can share, and its value J*_share.

    Maximises eq. ``eq-shared-objective`` over the product of simplices (one row per
    state) by exponentiated-gradient (mirror) ascent, p ← p ⊙ exp(η ∇_p J) / Z, with ∇_p J
    from autograd through the exact objective. The step η is halved until the Armijo
    condition J(p_new) ≥ J(p) + ½ ⟨∇_p J, p_new − p⟩ holds and doubled after each
    accepted step, so J increases along each run. A run stops when the Frank–Wolfe gap
    max_a g(s, a) − Σ_a p(s, a) g(s, a) (g = ∇_p J) is at most ``tol · (1 + max|g|)`` in
    every state (a first-order stationary point), or when a step can no longer improve J
    beyond float64 resolution (4 ε_mach |J|, with ε_mach the machine epsilon), or after
    ``max_steps`` steps.

    J_share is a polynomial of degree N in p and not concave, so one run can stop at a
    local maximum. The runs start from the uniform policy and from ``restarts`` Dirichlet(1)
    draws (seeded), and the best end point is returned: a certified lower bound on
    J*_share (the value of an actual policy) that equals it whenever one run reaches the
    global maximum. On the games of the book the maximiser is the uniform policy (by
    AM–GM): Proposition 1 gives 2/2^n and the permutation game n!/n^n, both to ~1e-15.

    With ``labels`` (one label per agent) the agents with the same label share one policy and
    different labels may differ: a shared network that sees a label (a coarse agent identity)
    as its input. ``labels=(0, 1, …, N − 1)`` is a full identity (separate policies);
    :func:`label_sharing_optimal` says exactly when the labels let the team reach J*. The
    uniform start is then a stationary point of symmetric games, so use ``restarts`` > 0.

    ==============  ======  ===================================================
    Symbol          Shape   Meaning
    ==============  ======  ===================================================
    ``game``        —       MarkovGame whose agents all have n actions
    ``restarts``    int     number of random starts besides the uniform one
    ``seed``        int     seed of the random starts
    ``labels``      (N)     optional label of each agent (ints)
    returns         —       ``SharedOptimum(policy, value)``: policy [S, n], or
                            [G, S, n] with labels (row g for label number g,
                            the labels in sorted order)
    ==============  ======  ===================================================
    """
    game = _shared_game(game)
    groups = None
    if labels is not None:
        labels = _labels(labels, game.num_agents)
        names = sorted(set(labels))
        groups = tuple(names.index(g) for g in labels)
    for name, val in (("restarts", restarts), ("max_steps", max_steps)):
        if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < 0:
            raise HarlMiniError(f"{name}: expected a non-negative integer, got {val!r}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
        raise HarlMiniError(f"tol: expected a non-negative number, got {tol!r}")
    S, n = game.num_states, game.action_counts[0]
    shape = (S, n) if groups is None else (max(groups) + 1, S, n)
    g = torch.Generator().manual_seed(_m._check_seed(seed))
    starts = [torch.full(shape, 1.0 / n, dtype=DTYPE)]
    starts += [_m.sample_dirichlet(shape, 1.0, g) for _ in range(int(restarts))]
    best_p, best_J = None, -math.inf
    for p0 in starts:
        p, J = _mirror_ascent(game, p0, int(max_steps), float(tol), groups)
        if J > best_J:
            best_p, best_J = p, J
    return SharedOptimum(best_p, best_J)


def shared_optimum_two_actions(payoff) -> SharedOptimum:
    r"""J*_share of a one-state game whose agents have two actions each, exactly (no iteration).

    With the shared policy (θ, 1 − θ) (θ the probability of action 0), eq.
    ``eq-shared-objective`` is a polynomial of degree N in θ:
    J_share(θ) = Σ_k c_k θ^k (1 − θ)^{N−k}, where c_k sums r(a) over the joint actions with
    exactly k zeros. Its maximum over [0, 1] is at an endpoint or at a real root of its
    derivative in (0, 1); all candidates are evaluated and the best returned. The roots come
    from ``numpy.roots`` (degree ≤ N − 1); J is flat at an interior maximum, so a root error ε
    moves the value by O(ε²). Used as the oracle of Exercise 6.1; on the Proposition-1 game it
    gives θ = ½ and 2/2^n, and on the game that pays 1 when exactly k of n agents play 1 it
    gives C(n, k) (k/n)^k (1 − k/n)^{n−k}.

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [2, 2, …, 2]    r(a), or a one-state MarkovGame, N >= 1 agents
    returns         —               ``SharedOptimum(policy [1, 2], value)``: the best
                                    (θ, 1 − θ) and J*_share
    ==============  ==============  ================================================
    """
    import numpy as np

    r = _payoff(payoff)
    N = r.dim()
    if any(n != 2 for n in r.shape):
        raise HarlMiniError(f"payoff: expected two actions per agent (shape [2, ..., 2]), got {list(r.shape)}")
    zeros = (1 - _joint_actions(tuple(r.shape))).sum(1)  # number of agents playing 0
    c = torch.zeros(N + 1, dtype=DTYPE).index_add_(0, zeros, r.reshape(-1)).numpy()
    P = np.polynomial.Polynomial
    J = sum((c[k] * P([0.0, 1.0]) ** k * P([1.0, -1.0]) ** (N - k) for k in range(N + 1)), P([0.0]))
    candidates = [0.0, 1.0]
    for root in J.deriv().roots() if N > 1 else []:
        if abs(root.imag) <= 1e-9 and 0.0 < root.real < 1.0:
            candidates.append(float(root.real))
    theta = torch.tensor(candidates, dtype=DTYPE)
    # evaluate exactly as eq-shared-objective does (not through the polynomial's coefficients)
    values = torch.stack([(r * _outer([torch.stack([t, 1 - t])] * N)).sum() for t in theta])
    k = int(torch.argmax(values))
    return SharedOptimum(torch.stack([theta[k], 1 - theta[k]]).reshape(1, 2), float(values[k]))


def _outer(ps: list[torch.Tensor]) -> torch.Tensor:
    out = ps[0]
    for p in ps[1:]:
        out = out.unsqueeze(-1) * p
    return out


def _labels(labels, num_agents: int) -> tuple[int, ...]:
    if isinstance(labels, torch.Tensor):
        labels = labels.tolist()
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (tuple, list)) or len(labels) != num_agents:
        raise HarlMiniError(f"labels: expected one integer label per agent ({num_agents}), got {labels!r}")
    for i, g in enumerate(labels):
        if isinstance(g, bool) or not isinstance(g, numbers.Integral):
            raise HarlMiniError(f"labels[{i}]: expected an integer label, got {g!r}")
    return tuple(int(g) for g in labels)


def label_sharing_optimal(payoff, labels, atol: float = 0.0) -> bool:
    r"""Whether a shared policy that sees only a label of each agent can reach J* (exactly).

    Agents with the same label use the same policy p_g; different labels may differ. This is
    a shared network whose input carries the label g(i) instead of the full agent identity
    (Chapter 6, "What an agent identity buys"; eq. ``eq-shared-objective`` is the case of one
    label for everybody). Exact test: a labelled team reaches J* iff every joint action in the
    support Π_i supp(p_{g(i)}) is optimal. Picking one b_g ∈ supp(p_g) per label gives the
    joint action (b_{g(1)}, …, b_{g(N)}), constant on each label, so some optimal joint action
    must give equal actions to equal labels; conversely the deterministic p_g = e_{b_g} of
    such an optimum reaches J*. One label for everybody is :func:`strongly_homogeneous`
    without the symmetry requirement; all labels distinct always reaches J*.

    On the Proposition-1 game with n = 4, labels (0, 0, 1, 1) (the roles) reach J* = 1, while
    (0, 1, 0, 1) do not (their best value is 1/8, as with no label at all).

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    ``labels``      (N)             an integer label per agent
    ``atol``        float           payoffs within ``atol`` of max r count as optimal
    returns         bool            True iff some optimum is constant on every label
    ==============  ==============  ================================================
    """
    r = _payoff(payoff)
    labels = _labels(labels, r.dim())
    for i in range(r.dim()):
        for j in range(i):
            if labels[i] == labels[j] and r.shape[i] != r.shape[j]:
                raise HarlMiniError(f"labels: agents {j} and {i} share label {labels[i]} but have "
                                    f"{r.shape[j]} and {r.shape[i]} actions; a shared policy needs equal counts")
    best = argmax_set(r, _check_atol(atol))
    return any(all(a[i] == a[j] for i in range(len(a)) for j in range(i) if labels[i] == labels[j]) for a in best)


def fewest_shared_policies(payoff, atol: float = 0.0) -> int:
    r"""The fewest distinct labels (policies) a shared network needs to reach J*.

    With the labels chosen freely (:func:`label_sharing_optimal`), k labels suffice iff some
    optimal joint action uses at most k distinct actions: label each agent by its action in
    that optimum; conversely an optimum that is constant on k labels uses at most k actions.
    So the answer is min over optimal joint actions a of |{a^1, …, a^N}|. It is 1 exactly
    when J*_share = J* (some diagonal joint action is optimal), 2 on the Proposition-1 game
    for every n (two roles) and on XOR, and n on the permutation game (every agent needs its
    own identity).

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a) with equal action counts, or a one-state game
    ``atol``        float           payoffs within ``atol`` of max r count as optimal
    returns         int             min over optimal a of the number of distinct a^i
    ==============  ==============  ================================================
    """
    r = _payoff(payoff)
    if len(set(r.shape)) != 1:
        raise HarlMiniError(f"payoff: a shared policy needs every agent to have the same number of actions; "
                            f"got shape {list(r.shape)}")
    return min(len(set(a)) for a in argmax_set(r, _check_atol(atol)))


def _product_sets(allowed: set[tuple[int, ...]], dims: tuple[int, ...]):
    """Every product set B_1 × … × B_k inside ``allowed`` (tuples of length k), as (B_1, …, B_k)."""
    if not dims:
        yield ()
        return
    heads = sorted({a[0] for a in allowed})
    for size in range(1, len(heads) + 1):
        for B in itertools.combinations(heads, size):
            tails = set.intersection(*({a[1:] for a in allowed if a[0] == b} for b in B))
            if tails:
                for rest in _product_sets(tails, dims[1:]):
                    yield (B, *rest)


def optimal_product_entropy(payoff, atol: float = 0.0) -> float:
    r"""The largest joint entropy Σ_i H(π^i) of an optimal *product* policy (nats).

    A product policy π = Π_i π^i reaches J* iff its support Π_i supp(π^i), a product set, lies
    inside argmax r. Given the supports B_i, the entropy Σ_i H(π^i) is largest for π^i uniform
    on B_i, so the answer is max Σ_i log |B_i| over product sets B_1 × … × B_N ⊆ argmax r
    (found by enumerating them). On the permutation game it is 0: every optimal product policy
    is deterministic (Chapter 6, Section 6.7), whether or not the agents share a network with
    an identity input, while an autoregressive policy reaches log |argmax r| = log n!. It is
    log |argmax r| exactly when argmax r is itself a product set (:func:`igm_representable`).

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    ``atol``        float           payoffs within ``atol`` of max r count as optimal
    returns         float           max over optimal product policies of Σ_i H(π^i)
    ==============  ==============  ================================================
    """
    r = _payoff(payoff)
    best = argmax_set(r, _check_atol(atol))
    return max(sum(math.log(len(B)) for B in sets) for sets in _product_sets(best, tuple(r.shape)))


# ---------------------------------------------------------------------------------------
# Value decomposition: VDN and QMIX fits, IGM
# ---------------------------------------------------------------------------------------


def _payoff(payoff, name: str = "payoff") -> torch.Tensor:
    if isinstance(payoff, MarkovGame):
        if payoff.num_states != 1:
            raise HarlMiniError(f"{name}: expected a payoff table or a one-state game, got a game with "
                                f"{payoff.num_states} states")
        return payoff.R[0]
    t = as_float64(payoff, name)
    if t.dim() < 1 or t.numel() == 0:
        raise HarlMiniError(f"{name}: expected an array with one axis per agent, got shape {list(t.shape)}")
    return t


def _check_atol(atol) -> float:
    if isinstance(atol, bool) or not isinstance(atol, numbers.Real) or not (math.isfinite(float(atol)) and atol >= 0):
        raise HarlMiniError(f"atol: expected a finite number >= 0, got {atol!r}")
    return float(atol)


def _weights(weights, shape: tuple[int, ...]) -> torch.Tensor:
    P = math.prod(shape)
    if weights is None:
        return torch.full(shape, 1.0 / P, dtype=DTYPE)
    w = as_float64(weights, "weights")
    check_shape(w, list(shape), "weights")
    check_distribution(w.reshape(-1), "weights", atol=_m._ATOL)
    return w.clamp_min(0.0)


def _joint_actions(shape: tuple[int, ...]) -> torch.Tensor:
    """All joint actions in C order, [Π n_i, N] long."""
    grids = torch.meshgrid(*(torch.arange(n) for n in shape), indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids], dim=1)


def _additive(q_locals: list[torch.Tensor]) -> torch.Tensor:
    N = len(q_locals)
    out = torch.zeros([q.shape[0] for q in q_locals], dtype=DTYPE)
    for i, q in enumerate(q_locals):
        out = out + q.reshape([-1 if j == i else 1 for j in range(N)])
    return out


@dataclass(frozen=True, eq=False)
class ValueFit:
    r"""A fitted decomposition Q_tot(a) = f(q_1(a^1), …, q_N(a^N)).

    Unpacks as ``q_locals, Q_tot, mse = fit``; the other fields are attributes.

    ==============  ==============  ================================================
    Field           Shape           Meaning
    ==============  ==============  ================================================
    ``q_locals``    list of [n_i]   per-agent utilities q_i(a^i)
    ``Q_tot``       [n_1..n_N]      the fitted joint values
    ``mse``         float           Σ_a w(a) e(a)², e = r − Q_tot (the fit's loss)
    ``sse``         float           Σ_a e(a)², summed over all joint actions
    ``residual``    [n_1..n_N]      e(a) = r(a) − Q_tot(a)
    ``method``      str             ``"vdn"`` or ``"qmix"``
    ``mixer``       dict or None    QMIX: the non-negative mixing weights and biases
    ==============  ==============  ================================================
    """

    q_locals: list
    Q_tot: torch.Tensor
    mse: float
    sse: float
    residual: torch.Tensor
    method: str
    mixer: dict | None = None

    def __iter__(self):
        return iter((self.q_locals, self.Q_tot, self.mse))


def _finish(q_locals, Q_tot, payoff, w, method, mixer=None) -> ValueFit:
    residual = payoff - Q_tot
    return ValueFit(
        q_locals=[q.detach() for q in q_locals],
        Q_tot=Q_tot.detach(),
        mse=float((w * residual**2).sum()),
        sse=float((residual**2).sum()),
        residual=residual.detach(),
        method=method,
        mixer=mixer,
    )


def vdn_fit(payoff, weights=None) -> ValueFit:
    r"""The least-squares additive (VDN) fit of a payoff, in closed form.

    Implements Chapter 6, eq. ``eq-vdn``: min over q_1, …, q_N of
    Σ_a w(a) (Σ_i q_i(a^i) − r(a))². This is weighted linear least squares with the
    design matrix X[a, (i, b)] = 1[a^i = b] (Π_i n_i rows, Σ_i n_i columns); it is solved
    with the pseudo-inverse of diag(√w) X. Q_tot is unique; the utilities are not (a
    constant can move between agents) and the minimum-norm ones are returned.

    With uniform w on XOR: q_i = (¼, ¼), Q_tot ≡ ½, residual e = r − Q_tot =
    [[−½, ½], [½, −½]]; mse = 0.25 and sse = 1.0.

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    ``weights``     [n_1..n_N]      data distribution w(a) (uniform if None)
    returns         ValueFit        unpacks as ``q_locals, Q_tot, mse``
    ==============  ==============  ================================================
    """
    y = _payoff(payoff)
    shape = tuple(y.shape)
    w = _weights(weights, shape)
    acts = _joint_actions(shape)
    offsets = [0, *itertools.accumulate(shape)]
    X = torch.zeros((acts.shape[0], offsets[-1]), dtype=DTYPE)
    rows = torch.arange(acts.shape[0])
    for i in range(len(shape)):
        X[rows, offsets[i] + acts[:, i]] = 1.0
    sw = w.reshape(-1).sqrt()
    beta = torch.linalg.pinv(sw[:, None] * X) @ (sw * y.reshape(-1))
    q_locals = [beta[offsets[i]:offsets[i + 1]].clone() for i in range(len(shape))]
    return _finish(q_locals, _additive(q_locals), y, w, "vdn")


def vdn_floor(payoff) -> float:
    r"""The summed squared error of the best additive fit under uniform data (Fu et al.'s floor).

    Σ_a (Q_tot(a) − r(a))² for the VDN fit of :func:`vdn_fit` with uniform weights
    (eq. ``eq-vdn``): 1.0 on XOR (residual ±½ on all four joint actions), 0 exactly when
    the payoff is additive.

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    returns         float           the floor Σ_a e(a)²
    ==============  ==============  ================================================
    """
    return vdn_fit(payoff).sse


def argmax_set(values, atol: float = 1e-9) -> set[tuple[int, ...]]:
    r"""The set of maximising indices {a : v(a) ≥ max v − atol}, as tuples.

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``values``      [n_1..n_N]      any table (a [n] vector gives 1-tuples)
    returns         set             index tuples within ``atol`` of the maximum
    ==============  ==============  ================================================
    """
    v = as_float64(values, "values")
    if v.dim() < 1 or v.numel() == 0:
        raise HarlMiniError(f"values: expected a non-empty array, got shape {list(v.shape)}")
    return {tuple(int(i) for i in idx) for idx in torch.nonzero(v >= v.max() - atol)}


def igm_holds(Q_tot, q_locals, atol: float = 1e-9) -> bool:
    r"""Whether the individual-global-max condition holds for Q_tot and the utilities q_i.

    Implements Chapter 6, eq. ``eq-igm``: argmax_a Q_tot(a) = Π_i argmax_{a^i} q_i(a^i), as
    sets (ties within ``atol`` count as maximisers), so that decentralised greedy
    actions are exactly the centralised greedy actions.

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``Q_tot``       [n_1..n_N]      joint values
    ``q_locals``    list of [n_i]   per-agent utilities
    returns         bool            True iff the two argmax sets are equal
    ==============  ==============  ================================================
    """
    Q = as_float64(Q_tot, "Q_tot")
    if isinstance(q_locals, torch.Tensor) or not isinstance(q_locals, (list, tuple)):
        raise HarlMiniError(f"q_locals: expected a list of per-agent utility vectors, got {type(q_locals).__name__}")
    qs = []
    for i, q in enumerate(q_locals):
        q = as_float64(q, f"q_locals[{i}]")
        check_shape(q, [None], f"q_locals[{i}]")
        qs.append(q)
    if tuple(Q.shape) != tuple(q.shape[0] for q in qs):
        raise HarlMiniError(f"Q_tot: expected shape {[q.shape[0] for q in qs]} (one axis per utility), "
                            f"got {list(Q.shape)}")
    local = [sorted(a for (a,) in argmax_set(q, atol)) for q in qs]
    return argmax_set(Q, atol) == set(itertools.product(*local))


def igm_representable(payoff, atol: float = 1e-9) -> bool:
    r"""Whether *some* decomposition that reproduces the payoff exactly can satisfy IGM.

    If Q_tot = r exactly, IGM (eq. ``eq-igm``) asks that argmax r be a product set
    Π_i B_i (the B_i are the local argmax sets, which can be chosen freely, e.g.
    q_i = 1[a^i ∈ B_i]). A set is a product set iff it equals the product of its
    projections. So this is True iff argmax r = Π_i proj_i(argmax r). On XOR,
    argmax r = {(0, 1), (1, 0)} while the product of its projections is all of
    {0, 1}², so no exact decomposition — additive, monotone or otherwise — satisfies IGM.

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    returns         bool            True iff argmax r is a product set
    ==============  ==============  ================================================
    """
    best = argmax_set(_payoff(payoff), atol)
    N = len(next(iter(best)))
    projections = [sorted({a[i] for a in best}) for i in range(N)]
    return best == set(itertools.product(*projections))


def _check_count(x, name: str, low: int = 1) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < low:
        raise HarlMiniError(f"{name}: expected an integer >= {low}, got {x!r}")
    return int(x)


def qmix_fit(payoff, hidden: int = 8, steps: int = 2000, seed: int = 0, restarts: int = 3, lr: float = 0.05,
             weights=None) -> ValueFit:
    r"""A monotonic-mixing (QMIX) fit of a payoff, trained by Adam in float64.

    Implements Chapter 6, eq. ``eq-qmix-monotone``:
    Q_tot(a) = f(q_1(a^1), …, q_N(a^N)), f(x) = |w_2|ᵀ ELU(|W_1| x + b_1) + b_2,
    so ∂f/∂x_i = Σ_h |w_2|_h ELU'(·)_h |W_1|_{h i} ≥ 0, exactly the QMIX mixing network
    (absolute values on the hypernetwork outputs, ELU hidden layer) in a single state,
    where the hypernetworks reduce to free parameters. The utility tables q_i and the
    mixer are trained jointly on the loss Σ_a w(a) (Q_tot(a) − r(a))², full batch, for
    ``steps`` Adam steps, from ``restarts`` seeded initialisations; the best is returned.

    Every such f is monotone, so the fit's ``mse`` is at least
    :func:`monotone_fit_bound` (2/3 summed squared error on XOR). Note also that f is
    convex (a non-negative combination of convex ELUs of non-negative linear maps).

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    ``hidden``      int             width of the mixing layer
    ``steps``       int             Adam steps per restart
    ``seed``        int             seed of the initialisations
    ``restarts``    int             number of initialisations
    ``lr``          float           Adam learning rate
    ``weights``     [n_1..n_N]      data distribution w(a) (uniform if None)
    returns         ValueFit        unpacks as ``q_locals, Q_tot, mse``; ``mixer``
                                    holds W1 = |W_1| [H, N], b1 [H], w2 = |w_2| [H], b2
    ==============  ==============  ================================================
    """
    y = _payoff(payoff)
    shape = tuple(y.shape)
    w = _weights(weights, shape)
    H = _check_count(hidden, "hidden")
    steps = _check_count(steps, "steps", 0)
    restarts = _check_count(restarts, "restarts")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise HarlMiniError(f"lr: expected a positive number, got {lr!r}")
    N = len(shape)
    acts = _joint_actions(shape)
    yf, wf = y.reshape(-1), w.reshape(-1)
    g = torch.Generator().manual_seed(_m._check_seed(seed))

    def forward(params):
        qs, W1, b1, w2, b2 = params
        x = torch.stack([qs[i][acts[:, i]] for i in range(N)], dim=1)  # [P, N]
        h = torch.nn.functional.elu(x @ W1.abs().T + b1)
        return h @ w2.abs() + b2

    best = None
    for _ in range(restarts):
        qs = [torch.randn(n, generator=g, dtype=DTYPE) for n in shape]
        W1 = torch.randn((H, N), generator=g, dtype=DTYPE) / math.sqrt(N)
        b1 = 0.1 * torch.randn(H, generator=g, dtype=DTYPE)
        w2 = torch.randn(H, generator=g, dtype=DTYPE) / math.sqrt(H)
        b2 = (wf * yf).sum().reshape(())
        params = [*qs, W1, b1, w2, b2]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=float(lr))
        for _ in range(steps):
            opt.zero_grad()
            loss = (wf * (forward((qs, W1, b1, w2, b2)) - yf) ** 2).sum()
            loss.backward()
            opt.step()
        with torch.no_grad():
            Q_tot = forward((qs, W1, b1, w2, b2)).reshape(shape)
            mixer = {"W1": W1.abs().clone(), "b1": b1.clone(), "w2": w2.abs().clone(), "b2": b2.clone()}
            fit = _finish(qs, Q_tot, y, w, "qmix", mixer)
        if best is None or fit.mse < best.mse:
            best = fit
    return best


# ---------------------------------------------------------------------------------------
# The exact floor of monotone mixing: isotonic regression on the product order
# ---------------------------------------------------------------------------------------

_MAX_POINTS = 32
_MAX_ORDERINGS = 5040


@functools.lru_cache(maxsize=32)
def _downsets(dims: tuple[int, ...]) -> torch.Tensor:
    """Every down-set of the grid Π_i {0..n_i−1} (componentwise order), as bool rows [K, Π n_i]."""
    if len(dims) == 1:
        n = dims[0]
        return torch.arange(n)[None, :] < torch.arange(n + 1)[:, None]
    sub = _downsets(dims[1:])
    # inside[j, k]: down-set j of the remaining axes is contained in down-set k.
    inside = ~(sub[:, None, :] & ~sub[None, :, :]).any(-1)
    seqs = [[k] for k in range(sub.shape[0])]
    for _ in range(dims[0] - 1):  # slices along axis 0 must shrink: D_0 ⊇ D_1 ⊇ …
        seqs = [s + [j] for s in seqs for j in range(sub.shape[0]) if bool(inside[j, s[-1]])]
    return torch.stack([sub[s].reshape(-1) for s in seqs])


def _isotonic(y: torch.Tensor, w: torch.Tensor, down: torch.Tensor) -> tuple[float, torch.Tensor]:
    """min Σ w (y − f)² over f nondecreasing on the grid, by the minimum-lower-sets algorithm.

    Returns the minimum and the minimiser f (unique where w > 0; NaN where w = 0)."""
    remaining = w > 0
    fit = torch.zeros_like(y)
    downf = down.to(DTYPE)
    while bool(remaining.any()):
        mask = downf * remaining.to(DTYPE)
        mass = mask @ w
        total = mask @ (w * y)
        valid = mass > 0
        avg = torch.where(valid, total / torch.where(valid, mass, torch.ones_like(mass)),
                          torch.full_like(mass, math.inf))
        k = int(torch.argmin(avg))
        chosen = (down[k] & remaining)
        fit[chosen] = avg[k]
        remaining = remaining & ~chosen
    loss = float((w * (y - fit) ** 2).sum())
    return loss, torch.where(w > 0, fit, torch.full_like(fit, math.nan))


def _monotone_candidates(payoff, weights):
    """(loss, table in the original axes) of the isotonic fit for every ordering of the actions."""
    y = _payoff(payoff)
    shape = tuple(y.shape)
    w = _weights(weights, shape)
    P = math.prod(shape)
    orderings = math.prod(math.factorial(n) for n in shape)
    if P > _MAX_POINTS or orderings > _MAX_ORDERINGS:
        raise HarlMiniError(f"payoff: shape {list(shape)} is too large for the exact monotone bound "
                            f"(needs Π n_i <= {_MAX_POINTS} and Π n_i! <= {_MAX_ORDERINGS})")
    down = _downsets(shape)
    for perms in itertools.product(*(itertools.permutations(range(n)) for n in shape)):
        yp, wp = y, w
        for axis, perm in enumerate(perms):
            idx = torch.tensor(perm)
            yp, wp = yp.index_select(axis, idx), wp.index_select(axis, idx)
        loss, fit = _isotonic(yp.reshape(-1), wp.reshape(-1), down)
        fit = fit.reshape(shape)
        for axis, perm in enumerate(perms):  # back to the original action labels
            fit = fit.index_select(axis, torch.argsort(torch.tensor(perm)))
        yield loss, fit


def monotone_fit_bound(payoff, weights=None) -> float:
    r"""The exact infimum of the weighted loss over *all* monotone mixing fits.

    inf over q_1, …, q_N and every f nondecreasing in each argument of
    Σ_a w(a) (f(q_1(a^1), …, q_N(a^N)) − r(a))² (eq. ``eq-qmix-monotone``), so a lower bound
    on the ``mse`` of any QMIX fit (:func:`qmix_fit`) and of the VDN fit.

    Method: once each agent's utilities are ordered (a permutation σ_i of its actions,
    q_i(σ_i(0)) < … < q_i(σ_i(n_i − 1))), the achievable tables Q_tot are exactly the
    functions that are nondecreasing on the grid in the componentwise order (a monotone
    table extends to a monotone f on ℝ^N; ties in q only add equality constraints). So the
    infimum is the minimum, over all Π_i n_i! orderings, of a weighted isotonic regression
    on the product of chains, solved exactly by the minimum-lower-sets algorithm
    (repeatedly give the remaining lower set of least weighted mean that mean; Robertson,
    Wright & Dykstra 1988). Small games only: Π_i n_i <= 32 and Π_i n_i! <= 5040.

    On XOR with uniform weights it is 1/6 (summed squared error 2/3): e.g. Q_tot = 1 at one
    optimum and 1/3 elsewhere.

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    ``weights``     [n_1..n_N]      data distribution w(a) (uniform if None)
    returns         float           inf of Σ_a w(a) e(a)² over monotone mixing fits
    ==============  ==============  ================================================
    """
    return min(loss for loss, _ in _monotone_candidates(payoff, weights))


def monotone_fits(payoff, weights=None, rtol: float = 1e-12) -> list[torch.Tensor]:
    r"""Every table Q_tot that attains :func:`monotone_fit_bound`: the best monotone fits.

    For a fixed ordering of each agent's actions the isotonic fit is unique where the data
    has weight (a projection onto a convex cone), but different orderings can tie, so the
    best monotone fit need not be unique. This returns the distinct minimisers, one per
    ordering whose loss is within ``rtol`` (relative, at least 1e-300 absolute) of the
    minimum (eq. ``eq-qmix-monotone``). Entries of zero weight are not determined by the
    data and are NaN.

    On XOR with uniform weights there are four, each with summed squared error 2/3: 1 on one
    optimum and 1/3 elsewhere (two tables), or 0 on one non-optimum and 2/3 elsewhere (two).

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    ``weights``     [n_1..n_N]      data distribution w(a) (uniform if None)
    ``rtol``        float           relative tolerance for a tie with the minimum
    returns         list            the distinct minimising tables, each [n_1..n_N]
    ==============  ==============  ================================================
    """
    rtol = _check_atol(rtol)
    candidates = list(_monotone_candidates(payoff, weights))
    best = min(loss for loss, _ in candidates)
    out: list[torch.Tensor] = []
    for loss, fit in candidates:
        if loss <= best + rtol * max(abs(best), 1e-300) and not any(
                torch.allclose(fit, seen, rtol=0.0, atol=1e-12, equal_nan=True) for seen in out):
            out.append(fit)
    return out


def qmix_floor(payoff) -> float:
    r"""The least summed squared error any monotone mixing can reach under uniform data.

    (Π_i n_i) · :func:`monotone_fit_bound` with uniform weights, i.e.
    inf Σ_a (f(q_1(a^1), …, q_N(a^N)) − r(a))² over monotone f (eq. ``eq-qmix-monotone``):
    2/3 on XOR, against the VDN floor of 1.0 (:func:`vdn_floor`); 0 for additive payoffs.

    ==============  ==============  ================================================
    Symbol          Shape           Meaning
    ==============  ==============  ================================================
    ``payoff``      [n_1..n_N]      r(a), or a one-state MarkovGame
    returns         float           the floor inf Σ_a e(a)²
    ==============  ==============  ================================================
    """
    y = _payoff(payoff)
    return y.numel() * monotone_fit_bound(y)


# ---------------------------------------------------------------------------------------
# Independent Q-learning on one-state games
# ---------------------------------------------------------------------------------------


def _one_state(game) -> MarkovGame:
    game = _g._game(game)
    if game.num_states != 1:
        raise HarlMiniError(f"game: expected a one-state game (a matrix game), got {game.num_states} states")
    return game


def _check_eps_greedy(eps_greedy) -> float:
    if isinstance(eps_greedy, bool) or not isinstance(eps_greedy, numbers.Real) or not 0 <= eps_greedy <= 1:
        raise HarlMiniError(f"eps_greedy: expected a number in [0, 1], got {eps_greedy!r}")
    return float(eps_greedy)


def epsilon_greedy_policies(game: MarkovGame, joint_action, eps_greedy: float) -> list[torch.Tensor]:
    r"""The ε_greedy policies around a joint action: π^i = (1 − ε_greedy) e_{a^i} + ε_greedy / n_i.

    The behaviour of independent Q-learners whose greedy joint action is ``joint_action``
    (each explores uniformly with probability ε_greedy).

    ================  ==============  ================================================
    Symbol            Shape           Meaning
    ================  ==============  ================================================
    ``game``          —               a one-state MarkovGame
    ``joint_action``  tuple (N)       the greedy action of every agent
    ``eps_greedy``    float           exploration rate ε_greedy in [0, 1]
    returns           list            N tables [1, n_i]
    ================  ==============  ================================================
    """
    game = _one_state(game)
    eps = _check_eps_greedy(eps_greedy)
    a = _joint_action(joint_action, game.action_counts)
    out = []
    for ai, n in zip(a, game.action_counts):
        p = torch.full((1, n), eps / n, dtype=DTYPE)
        p[0, ai] += 1.0 - eps
        out.append(p)
    return out


def _joint_action(joint_action, counts: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(joint_action, torch.Tensor):
        joint_action = joint_action.tolist()
    if isinstance(joint_action, (str, bytes)) or not isinstance(joint_action, (tuple, list)) or \
            len(joint_action) != len(counts):
        raise HarlMiniError(f"joint_action: expected one action per agent ({len(counts)}), got {joint_action!r}")
    out = []
    for i, (a, n) in enumerate(zip(joint_action, counts)):
        if isinstance(a, bool) or not isinstance(a, numbers.Integral) or not 0 <= a < n:
            raise HarlMiniError(f"joint_action[{i}]: expected an action in 0..{n - 1}, got {a!r}")
        out.append(int(a))
    return tuple(out)


def iql_fixed_points(game: MarkovGame, eps_greedy: float, atol: float = 1e-9) -> list[tuple[int, ...]]:
    r"""The joint actions where ε_greedy independent Q-learners can settle (rest points of the mean update).

    Independent Q-learners (eq. ``eq-iql``) with greedy joint action a behave with
    π_{ε_greedy}(a) = :func:`epsilon_greedy_policies`. Each q_i(b) then tracks
    Q^i_{π_{ε_greedy}(a)}(b) = E_{a^{-i} ∼ π_{ε_greedy}(a)^{-i}}[r(b, a^{-i})] (+ the same
    constant γ max q_i for every b when γ > 0), agent i's multi-agent action value (eq. ``eq-ma-q``,
    :func:`~harl_mini.tabular.game.multi_agent_q`). The greedy joint action is self-consistent
    iff every a^i maximises Q^i_{π_{ε_greedy}(a)}. This lists those a, in C order.

    ================  ==============  ================================================
    Symbol            Shape           Meaning
    ================  ==============  ================================================
    ``game``          —               a one-state MarkovGame
    ``eps_greedy``    float           exploration rate ε_greedy in [0, 1]
    ``atol``          float           ties within ``atol`` of the maximum count
    returns           list            self-consistent greedy joint actions
    ================  ==============  ================================================
    """
    game = _one_state(game)
    eps = _check_eps_greedy(eps_greedy)
    atol = _check_atol(atol)
    out = []
    for a in itertools.product(*(range(n) for n in game.action_counts)):
        pis = epsilon_greedy_policies(game, a, eps)
        if all((a[i],) in argmax_set(_g.multi_agent_q(game, pis, (i,))[0], atol)
               for i in range(game.num_agents)):
            out.append(a)
    return out


class IQLRun(NamedTuple):
    """Result of :func:`independent_q_learning`."""

    q_locals: list  #: the final tables q_i, each [n_i]
    greedy: torch.Tensor  #: [steps + 1, N] long, the greedy joint action before step 1 and after each step


def independent_q_learning(game: MarkovGame, steps: int = 5000, eta: float = 0.1, eps_greedy: float = 0.2,
                           seed: int = 0) -> IQLRun:
    r"""Tabular independent Q-learning (Tan 1993) on a one-state game, sampled and seeded.

    Implements Chapter 6, eq. ``eq-iql`` in tabular form: every step each agent plays
    ε_greedy on its own table q_i (ties broken uniformly at random), the team receives
    r(a), and each agent moves only the entry it played,
    q_i(a^i) ← q_i(a^i) + η (y − q_i(a^i)), y = r + γ (1 − done) max_b q_i(b),
    with done = 0 (the one state loops onto itself) and no separate target table. For the
    γ = 0 games of Chapter 6, y = r. The tables start at zero. One ``torch.Generator``
    seeded with ``seed`` draws all the randomness, so a seed gives the same run.

    ================  ==============  ================================================
    Symbol            Shape           Meaning
    ================  ==============  ================================================
    ``game``          —               a one-state MarkovGame
    ``steps``         int             number of plays
    ``eta``           float           step size η in (0, 1]
    ``eps_greedy``    float           exploration rate ε_greedy in [0, 1]
    ``seed``          int             seed of the generator
    returns           IQLRun          ``q_locals`` (N tables [n_i]), ``greedy`` [steps + 1, N]
    ================  ==============  ================================================
    """
    game = _one_state(game)
    steps = _check_count(steps, "steps", 0)
    if isinstance(eta, bool) or not isinstance(eta, numbers.Real) or not 0 < eta <= 1:
        raise HarlMiniError(f"eta: expected a step size in (0, 1], got {eta!r}")
    eps = _check_eps_greedy(eps_greedy)
    g = torch.Generator().manual_seed(_m._check_seed(seed))
    counts, N = game.action_counts, game.num_agents
    R, gamma = game.R[0].tolist(), float(game.gamma)
    draws = torch.rand((steps, N, 3), generator=g, dtype=DTYPE).tolist()  # explore?, which, tie
    q = [[0.0] * n for n in counts]
    greedy = [[0] * N]
    for t in range(steps):
        a = []
        for i, n in enumerate(counts):
            explore, which, tie = draws[t][i]
            if explore < eps:
                a.append(min(int(which * n), n - 1))
            else:
                top = max(q[i])
                best = [b for b in range(n) if q[i][b] == top]
                a.append(best[min(int(tie * len(best)), len(best) - 1)])
        r = R
        for ai in a:
            r = r[ai]
        for i, ai in enumerate(a):
            y = r + gamma * max(q[i])
            q[i][ai] += eta * (y - q[i][ai])
        greedy.append([max(range(n), key=q[i].__getitem__) for i, n in enumerate(counts)])
    return IQLRun([torch.tensor(qi, dtype=DTYPE) for qi in q], torch.tensor(greedy, dtype=torch.long))
