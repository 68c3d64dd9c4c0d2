r"""Sampled temporal-difference learning on a finite MDP: TD(0) and Q-learning (Chapter 1).

The oracle of :mod:`harl_mini.tabular.mdp` solves the Bellman equations with the model
(P, R) in hand. The two algorithms here solve them from samples, one transition
(s_t, a_t, r_t, s_{t+1}) at a time, and so can be checked against the oracle:

* **TD(0)** (Sutton 1988) estimates V_π while following π. Its update moves V(s_t) along
  the TD error δ_t = r_t + γ V(s_{t+1}) − V(s_t), a sampled Bellman expectation backup
  (eq. ``eq-td0``); it converges to V_π.
* **Q-learning** (Watkins & Dayan 1992) estimates Q* while following any behaviour that
  tries every action in every state infinitely often (here ε-greedy with respect to the
  current Q). Its TD error δ_t = r_t + γ max_{a'} Q(s_{t+1}, a') − Q(s_t, a_t) is a sampled
  Bellman *optimality* backup for Q (eq. ``eq-q-learning``); it converges to Q*.

Both converge with probability one when every entry is updated infinitely often with step
sizes η_n satisfying Σ_n η_n = ∞ and Σ_n η_n² < ∞ (Watkins & Dayan 1992; TD(0) is Q-learning
on the one-action chain of π). The step size of the n-th update of an entry,
η_n = 1 / (1 + (1 − γ)(n − 1)), satisfies both and starts at η_1 = 1.

Transitions are drawn one after another (each depends on the last update), so the loop is
sequential. It runs on Python floats, with all random numbers drawn up front, in chunks,
from one seeded ``torch.Generator`` (same seed, same result); a torch call per step would
cost more than the step itself. With ``horizon=H`` the stream restarts from s_0 ∼ ρ0 every
H steps; the cut is a time limit, not a termination, so the update still bootstraps there.
"""

from __future__ import annotations

import bisect
import numbers
from dataclasses import dataclass

import torch

from harl_mini.errors import HarlMiniError, check_positive_int
from harl_mini.tabular.mdp import DTYPE, FiniteMDP, _check_seed, _mdp, check_policy
from harl_mini.tabular.sampling import _cdf

__all__ = ["TDResult", "td0_evaluation", "q_learning"]

_CHUNK = 65_536  # transitions whose random numbers are drawn in one torch call


@dataclass
class TDResult:
    """Output of :func:`td0_evaluation` and :func:`q_learning`.

    ==============  ============  ======================================================
    Field           Shape         Meaning
    ==============  ============  ======================================================
    ``table``       [S] / [S, A]  the estimate after the last step: V (TD(0)) or Q
    ``visits``      [S] / [S, A]  number of updates of each entry
    ``steps``       [K]           step counts at which ``history`` was recorded
    ``history``     [K, ...]      copies of the table after those steps (K = 0 if
                                  ``record_every`` is None)
    ==============  ============  ======================================================
    """

    table: torch.Tensor
    visits: torch.Tensor
    steps: torch.Tensor
    history: torch.Tensor


def _check_unit(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not 0.0 <= float(x) <= 1.0:
        raise HarlMiniError(f"{name}: must be a number in [0, 1], got {x!r}")
    return float(x)


def _tables(mdp: FiniteMDP):
    """CDF rows of P and ρ0, and R, as nested Python lists (for the scalar loop)."""
    cdf_P = _cdf(mdp.P.detach().clamp_min(0.0)).tolist()
    cdf_0 = _cdf(mdp.rho0.detach().clamp_min(0.0)).tolist()
    return cdf_P, cdf_0, mdp.R.detach().tolist()


def _draw(cdf_row, u: float, last: int) -> int:
    """The smallest index i with u < cdf[i] (inverse-CDF sampling), at most ``last``."""
    return min(bisect.bisect_right(cdf_row, u), last)


def _uniforms(g: torch.Generator, n: int, per_step: int):
    """Yield ``per_step`` uniforms for each of n steps, drawn in chunks from ``g``."""
    done = 0
    while done < n:
        k = min(_CHUNK, n - done)
        block = torch.rand((k, per_step), generator=g, dtype=DTYPE).tolist()
        yield from block
        done += k


def _common(mdp, num_steps, seed, horizon, record_every):
    mdp = _mdp(mdp)
    num_steps = check_positive_int(num_steps, "num_steps")
    g = torch.Generator().manual_seed(_check_seed(seed))
    horizon = None if horizon is None else check_positive_int(horizon, "horizon")
    record_every = None if record_every is None else check_positive_int(record_every, "record_every")
    return mdp, num_steps, g, horizon, record_every


def _result(table, visits, steps, history) -> TDResult:
    t = torch.tensor(table, dtype=DTYPE)
    h = torch.tensor(history, dtype=DTYPE) if history else t.new_zeros((0, *t.shape))
    return TDResult(t, torch.tensor(visits, dtype=torch.long), torch.tensor(steps, dtype=torch.long), h)


def td0_evaluation(
    mdp: FiniteMDP,
    pi,
    num_steps: int,
    seed: int = 0,
    horizon: int | None = None,
    record_every: int | None = None,
) -> TDResult:
    r"""TD(0) policy evaluation from one stream of transitions of π.

    Implements Chapter 1, eq. ``eq-td0``:
    δ_t = r_t + γ V(s_{t+1}) − V(s_t),   V(s_t) ← V(s_t) + η_n δ_t,
    with a_t ∼ π(· | s_t), s_{t+1} ∼ P(· | s_t, a_t), V = 0 at the start and
    η_n = 1/(1 + (1 − γ)(n − 1)) for the n-th update of s_t. Its expected update is the
    Bellman expectation backup (eq. ``eq-bellman-expectation``), and V converges to V_π.

    ================  =======  ====================================================
    Symbol            Shape    Meaning
    ================  =======  ====================================================
    ``pi``            [S, A]   the policy that is followed and evaluated
    ``num_steps``     int      number of transitions (= updates)
    ``seed``          int      generator seed
    ``horizon``       int      restart from s_0 ∼ ρ0 every H steps (None: never)
    ``record_every``  int      keep a copy of V every so many steps
    returns           —        :class:`TDResult` with ``table`` = V [S]
    ================  =======  ====================================================
    """
    mdp, num_steps, g, horizon, record_every = _common(mdp, num_steps, seed, horizon, record_every)
    S, A, gamma = mdp.num_states, mdp.num_actions, mdp.gamma
    cdf_pi = _cdf(check_policy(pi, S, A).detach().clamp_min(0.0)).tolist()
    cdf_P, cdf_0, R = _tables(mdp)
    V, n = [0.0] * S, [0] * S
    steps, history = [], []
    s = None
    for t, (u0, u_a, u_s) in enumerate(_uniforms(g, num_steps, 3)):
        if s is None or (horizon is not None and t % horizon == 0):
            s = _draw(cdf_0, u0, S - 1)
        a = _draw(cdf_pi[s], u_a, A - 1)
        s_next = _draw(cdf_P[s][a], u_s, S - 1)
        delta = R[s][a] + gamma * V[s_next] - V[s]  # the TD error δ_t
        n[s] += 1
        V[s] += delta / (1.0 + (1.0 - gamma) * (n[s] - 1))
        s = s_next
        if record_every is not None and (t + 1) % record_every == 0:
            steps.append(t + 1)
            history.append(list(V))
    return _result(V, n, steps, history)


def q_learning(
    mdp: FiniteMDP,
    num_steps: int,
    epsilon_greedy: float = 0.2,
    seed: int = 0,
    horizon: int | None = None,
    record_every: int | None = None,
) -> TDResult:
    r"""Q-learning from one stream of transitions of an ε-greedy behaviour policy.

    Implements Chapter 1, eq. ``eq-q-learning``:
    δ_t = r_t + γ max_{a'} Q(s_{t+1}, a') − Q(s_t, a_t),   Q(s_t, a_t) ← Q(s_t, a_t) + η_n δ_t,
    where a_t is uniform with probability ``epsilon_greedy`` and greedy in Q(s_t, ·)
    otherwise (ties to the lowest index), Q = 0 at the start, and
    η_n = 1/(1 + (1 − γ)(n − 1)) for the n-th update of (s_t, a_t). Its expected update is
    the Bellman optimality backup for Q (eq. ``eq-bellman-optimality-q``), and Q converges
    to Q* whatever the behaviour, provided every pair keeps being tried (ε > 0 and every
    state keeps being reached).

    ====================  =======  ================================================
    Symbol                Shape    Meaning
    ====================  =======  ================================================
    ``num_steps``         int      number of transitions (= updates)
    ``epsilon_greedy``    float    exploration rate ε_greedy ∈ [0, 1]
    ``seed``              int      generator seed
    ``horizon``           int      restart from s_0 ∼ ρ0 every H steps (None: never)
    ``record_every``      int      keep a copy of Q every so many steps
    returns               —        :class:`TDResult` with ``table`` = Q [S, A]
    ====================  =======  ================================================
    """
    mdp, num_steps, g, horizon, record_every = _common(mdp, num_steps, seed, horizon, record_every)
    eps = _check_unit(epsilon_greedy, "epsilon_greedy")
    S, A, gamma = mdp.num_states, mdp.num_actions, mdp.gamma
    cdf_P, cdf_0, R = _tables(mdp)
    Q = [[0.0] * A for _ in range(S)]
    n = [[0] * A for _ in range(S)]
    steps, history = [], []
    s = None
    for t, (u0, u_explore, u_a, u_s) in enumerate(_uniforms(g, num_steps, 4)):
        if s is None or (horizon is not None and t % horizon == 0):
            s = _draw(cdf_0, u0, S - 1)
        q_s = Q[s]
        if u_explore < eps:
            a = min(int(u_a * A), A - 1)
        else:
            a = max(range(A), key=q_s.__getitem__)  # first maximal index
        s_next = _draw(cdf_P[s][a], u_s, S - 1)
        delta = R[s][a] + gamma * max(Q[s_next]) - q_s[a]  # the TD error δ_t
        n[s][a] += 1
        q_s[a] += delta / (1.0 + (1.0 - gamma) * (n[s][a] - 1))
        s = s_next
        if record_every is not None and (t + 1) % record_every == 0:
            steps.append(t + 1)
            history.append([list(row) for row in Q])
    return _result(Q, n, steps, history)
