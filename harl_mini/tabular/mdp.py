r"""Finite MDPs and their exact single-agent quantities (Chapter 1).

This module is the float64 ground truth that every later chapter is checked against. A
finite discounted MDP is a tuple (S, A, P, R, γ, ρ0); a stochastic policy is a table
π[s, a] whose rows are probability vectors. Everything below is linear algebra on these
tables, in torch, float64, without in-place operations on inputs, so that gradients flow
through ``value`` and ``objective`` when the policy is a differentiable function of θ.

Conventions (theory reference §0, convention U, as in TRPO and HATRPO/HAPPO):

* return ``G_0 = Σ_t γ^t R(s_t, a_t)`` (eq-return), rewards on state-action pairs;
  a reward on states only (CS229 form ``R[s]``) is broadcast to ``R[s, a]``;
* ``V^π(s) = E[G | s_0 = s]``, ``Q^π(s, a) = E[G | s_0 = s, a_0 = a]``, ``A^π = Q^π − V^π``;
* ``J(π) = Σ_s ρ0(s) V^π(s)`` (eq-objective);
* ``ρ_π(s) = Σ_t γ^t Pr(s_t = s)``, the *unnormalised* discounted visitation (total mass
  1/(1−γ)), and ``d_π = (1−γ) ρ_π``, its normalised version (eq-visitation,
  eq-state-distribution).

Contents, top to bottom:

1. :class:`FiniteMDP` and policy helpers (``check_policy``, ``uniform_policy``,
   ``random_policy``);
2. the policy-induced chain ``P_π``, ``r_π``;
3. exact evaluation: ``value``, ``q_from_v``, ``q_value``, ``advantage``, ``objective``,
   ``visitation``, ``state_distribution``;
4. Bellman operators: ``bellman_expectation_backup``, ``bellman_optimality_backup``,
   ``bellman_optimality_backup_q``, ``bellman_residual``, ``greedy_policy``;
5. control: ``value_iteration``, ``policy_iteration``, ``optimal_value``, ``optimal_q_value``.

The same equations solved from sampled transitions (TD(0), Q-learning) are in
:mod:`harl_mini.tabular.td`.

Shapes: ``S`` states, ``A`` actions. ``P[s, a, s']`` is the probability of moving to s'
after taking a in s.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from harl_mini.errors import (
    HarlMiniError,
    as_float64,
    check_distribution,
    check_positive_int,
    check_shape,
)

__all__ = [
    "FiniteMDP",
    "check_gamma",
    "check_policy",
    "uniform_policy",
    "random_policy",
    "transition_matrix",
    "expected_reward",
    "value",
    "q_from_v",
    "q_value",
    "advantage",
    "objective",
    "visitation",
    "state_distribution",
    "bellman_expectation_backup",
    "bellman_optimality_backup",
    "bellman_optimality_backup_q",
    "bellman_residual",
    "greedy_policy",
    "ValueIterationResult",
    "value_iteration",
    "PolicyIterationResult",
    "policy_iteration",
    "optimal_value",
    "optimal_q_value",
]

DTYPE = torch.float64
_ATOL = 1e-8  # tolerance on "rows sum to one" everywhere in this package


# ---------------------------------------------------------------------------------------
# 1. The MDP and policies
# ---------------------------------------------------------------------------------------


def check_gamma(gamma, name: str = "gamma") -> float:
    """Validate a discount factor: a real number with 0 <= γ < 1; return it as a float."""
    if isinstance(gamma, torch.Tensor) and gamma.numel() == 1:
        gamma = float(gamma)
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise HarlMiniError(f"{name}: expected a real number, got {type(gamma).__name__}")
    gamma = float(gamma)
    if not (0.0 <= gamma < 1.0):
        raise HarlMiniError(f"{name}: must satisfy 0 <= gamma < 1, got {gamma!r}")
    return gamma


def _check_transitions(P: torch.Tensor, name: str = "P") -> None:
    """Rows P[s, ..., :] must be probability vectors; the message gives the bad index."""
    check_distribution(P, name, atol=_ATOL)


def _check_rho0(rho0, num_states: int, name: str = "rho0") -> torch.Tensor:
    if rho0 is None:
        return torch.full((num_states,), 1.0 / num_states, dtype=DTYPE)
    rho0 = as_float64(rho0, name)
    check_shape(rho0, [num_states], name)
    check_distribution(rho0, name, atol=_ATOL)
    return rho0


@dataclass(frozen=True, eq=False, repr=False)
class FiniteMDP:
    r"""A finite discounted MDP (S, A, P, R, γ, ρ0), validated and stored in float64.

    ==========  =========  ===========================================================
    Field       Shape      Meaning
    ==========  =========  ===========================================================
    ``P``       [S, A, S]  transition kernel P(s' | s, a); each row sums to 1
    ``R``       [S, A]     expected reward R(s, a); a [S] input (CS229 form R(s)) is
                           broadcast over actions
    ``gamma``   scalar     discount factor, 0 <= γ < 1
    ``rho0``    [S]        initial-state distribution (uniform when omitted)
    ``name``    str        a label for printing
    ==========  =========  ===========================================================

    Construction checks shapes, finiteness, that P and ρ0 hold probability vectors
    (tolerance 1e-8) and the range of γ; any fault raises :class:`HarlMiniError` naming
    the argument. The instance is frozen; the tensors are not copied (and keep their
    autograd history, so an MDP built from differentiable tensors stays differentiable).
    """

    P: torch.Tensor
    R: torch.Tensor
    gamma: float
    rho0: torch.Tensor | None = None
    name: str = ""

    def __post_init__(self) -> None:
        P = as_float64(self.P, "P")
        if P.dim() != 3 or P.shape[0] != P.shape[2]:
            raise HarlMiniError(f"P: expected shape [S, A, S], got {list(P.shape)}")
        S, A, _ = P.shape
        if S == 0 or A == 0:
            raise HarlMiniError(f"P: needs at least one state and one action, got shape {list(P.shape)}")
        _check_transitions(P, "P")
        R = as_float64(self.R, "R")
        if R.dim() == 1 and R.shape[0] == S:
            R = R.unsqueeze(-1).expand(S, A).contiguous()
        elif tuple(R.shape) != (S, A):
            raise HarlMiniError(f"R: expected shape [S, A] = [{S}, {A}] or [S] = [{S}], got {list(R.shape)}")
        gamma = check_gamma(self.gamma, "gamma")
        rho0 = _check_rho0(self.rho0, S, "rho0")
        if not isinstance(self.name, str):
            raise HarlMiniError(f"name: expected a string, got {type(self.name).__name__}")
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "rho0", rho0)

    @property
    def num_states(self) -> int:
        """S, the number of states."""
        return int(self.P.shape[0])

    @property
    def num_actions(self) -> int:
        """A, the number of actions."""
        return int(self.P.shape[1])

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return f"FiniteMDP({label}S={self.num_states}, A={self.num_actions}, gamma={self.gamma})"


def check_policy(pi, num_states: int, num_actions: int, name: str = "pi") -> torch.Tensor:
    r"""Validate a stochastic policy table and return it as float64.

    A policy is a table π[s, a] = π(a | s) whose rows are probability vectors
    (non-negative, summing to 1 within 1e-8).

    ==========  =========  ===========================================
    Symbol      Shape      Meaning
    ==========  =========  ===========================================
    ``pi``      [S, A]     π(a | s), any array-like
    returns     [S, A]     the same table as a float64 tensor
    ==========  =========  ===========================================
    """
    pi = as_float64(pi, name)
    check_shape(pi, [num_states, num_actions], name)
    check_distribution(pi, name, atol=_ATOL)
    return pi


def _mdp(mdp) -> FiniteMDP:
    if not isinstance(mdp, FiniteMDP):
        raise HarlMiniError(f"mdp: expected a FiniteMDP, got {type(mdp).__name__}")
    return mdp


def _vector(V, num_states: int, name: str) -> torch.Tensor:
    V = as_float64(V, name)
    check_shape(V, [num_states], name)
    return V


def uniform_policy(mdp: FiniteMDP) -> torch.Tensor:
    r"""The uniform random policy π(a | s) = 1/A.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``mdp``     —        supplies S and A
    returns     [S, A]   every entry 1/A
    ==========  =======  ===========================================
    """
    mdp = _mdp(mdp)
    S, A = mdp.num_states, mdp.num_actions
    return torch.full((S, A), 1.0 / A, dtype=DTYPE)


def _gamma_variates(alpha: float, shape, generator: torch.Generator) -> torch.Tensor:
    """Gamma(alpha, 1) samples drawn with ``generator`` (Marsaglia–Tsang, vectorised)."""
    boost = alpha < 1.0
    a = alpha + 1.0 if boost else alpha
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    n = int(math.prod(shape))
    out = torch.empty(n, dtype=DTYPE)
    todo = torch.arange(n)
    while todo.numel() > 0:
        m = todo.numel()
        x = torch.randn(m, generator=generator, dtype=DTYPE)
        u = torch.rand(m, generator=generator, dtype=DTYPE)
        v = (1.0 + c * x) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        out[todo[ok]] = (d * v)[ok]
        todo = todo[~ok]
    if boost:
        u = torch.rand(n, generator=generator, dtype=DTYPE)
        out = out * u ** (1.0 / alpha)
    return out.reshape(shape)


def sample_dirichlet(shape, concentration: float, generator: torch.Generator) -> torch.Tensor:
    """Rows drawn from a symmetric Dirichlet(concentration) over the last axis of ``shape``.

    Uses only ``generator`` for randomness, so the same seed gives the same tensor.
    Concentration 1 is the uniform distribution on the simplex.
    """
    if isinstance(concentration, bool) or not isinstance(concentration, numbers.Real) or not concentration > 0:
        raise HarlMiniError(f"concentration: must be a positive number, got {concentration!r}")
    if float(concentration) == 1.0:
        g = torch.empty(tuple(shape), dtype=DTYPE).exponential_(1.0, generator=generator)
    else:
        g = _gamma_variates(float(concentration), tuple(shape), generator)
    g = g.clamp_min(1e-300)
    return g / g.sum(-1, keepdim=True)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise HarlMiniError(f"seed: expected an integer, got {seed!r}")
    return int(seed)


def random_policy(mdp: FiniteMDP, seed: int = 0, concentration: float = 1.0) -> torch.Tensor:
    r"""A random stochastic policy: each row π(· | s) ~ Dirichlet(concentration · 1_A).

    Seeded through a ``torch.Generator``: the same seed gives the same policy.
    Small concentrations give nearly deterministic rows, large ones nearly uniform rows.

    =================  =======  ==========================================
    Symbol             Shape    Meaning
    =================  =======  ==========================================
    ``mdp``            —        supplies S and A
    ``seed``           int      generator seed
    ``concentration``  scalar   Dirichlet parameter α > 0
    returns            [S, A]   π(a | s)
    =================  =======  ==========================================
    """
    mdp = _mdp(mdp)
    g = torch.Generator().manual_seed(_check_seed(seed))
    return sample_dirichlet((mdp.num_states, mdp.num_actions), concentration, g)


# ---------------------------------------------------------------------------------------
# 2. The Markov chain a policy induces
# ---------------------------------------------------------------------------------------


def transition_matrix(mdp: FiniteMDP, pi) -> torch.Tensor:
    r"""State-to-state transition matrix under π.

    P_π(s, s') = Σ_a π(a | s) P(s' | s, a).

    ==========  =========  ===========================================
    Symbol      Shape      Meaning
    ==========  =========  ===========================================
    ``P``       [S, A, S]  transition kernel of the MDP
    ``pi``      [S, A]     stochastic policy π(a | s)
    ``P_pi``    [S, S]     returned; each row sums to 1
    ==========  =========  ===========================================
    """
    mdp = _mdp(mdp)
    pi = check_policy(pi, mdp.num_states, mdp.num_actions)
    return torch.einsum("sa,sat->st", pi, mdp.P)


def expected_reward(mdp: FiniteMDP, pi) -> torch.Tensor:
    r"""Expected one-step reward under π.

    r_π(s) = Σ_a π(a | s) R(s, a).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``R``       [S, A]   reward of the MDP
    ``pi``      [S, A]   stochastic policy π(a | s)
    ``r_pi``    [S]      returned
    ==========  =======  ===========================================
    """
    mdp = _mdp(mdp)
    pi = check_policy(pi, mdp.num_states, mdp.num_actions)
    return (pi * mdp.R).sum(-1)


# ---------------------------------------------------------------------------------------
# 3. Exact policy evaluation
# ---------------------------------------------------------------------------------------


def value(mdp: FiniteMDP, pi) -> torch.Tensor:
    r"""State-value function V^π by one linear solve.

    Implements the Bellman expectation equation (Chapter 1, eq. ``eq-bellman-expectation``)
    V^π = r_π + γ P_π V^π in matrix form, eq. ``eq-policy-evaluation``:
    V^π = (I − γ P_π)^{-1} r_π.
    The matrix I − γ P_π is invertible for γ < 1 (its spectral radius gap is ≥ 1 − γ).

    ==========  =========  ===========================================
    Symbol      Shape      Meaning
    ==========  =========  ===========================================
    ``mdp``     —          P [S, A, S], R [S, A], γ
    ``pi``      [S, A]     stochastic policy π(a | s)
    ``P_pi``    [S, S]     Σ_a π(a|s) P(s'|s,a)
    ``r_pi``    [S]        Σ_a π(a|s) R(s,a)
    ``V``       [S]        returned: V^π(s) = E[Σ_t γ^t R(s_t,a_t) | s_0 = s]
    ==========  =========  ===========================================
    """
    mdp = _mdp(mdp)
    P_pi, r_pi = transition_matrix(mdp, pi), expected_reward(mdp, pi)
    eye = torch.eye(mdp.num_states, dtype=DTYPE)
    return torch.linalg.solve(eye - mdp.gamma * P_pi, r_pi)


def q_from_v(mdp: FiniteMDP, V) -> torch.Tensor:
    r"""Action values from state values by one-step look-ahead.

    Implements Chapter 1, eq. ``eq-q-from-v``:
    Q(s, a) = R(s, a) + γ Σ_{s'} P(s' | s, a) V(s').

    ==========  =========  ===========================================
    Symbol      Shape      Meaning
    ==========  =========  ===========================================
    ``V``       [S]        any state-value vector
    ``Q``       [S, A]     returned
    ==========  =========  ===========================================
    """
    mdp = _mdp(mdp)
    V = _vector(V, mdp.num_states, "V")
    return mdp.R + mdp.gamma * torch.einsum("sat,t->sa", mdp.P, V)


def q_value(mdp: FiniteMDP, pi) -> torch.Tensor:
    r"""Action-value function Q^π = R + γ P V^π (eq. ``eq-q-from-v`` with V = V^π).

    ==========  =========  ===========================================
    Symbol      Shape      Meaning
    ==========  =========  ===========================================
    ``pi``      [S, A]     stochastic policy π(a | s)
    ``Q``       [S, A]     returned: E[G | s_0 = s, a_0 = a] under π
    ==========  =========  ===========================================
    """
    return q_from_v(mdp, value(mdp, pi))


def advantage(mdp: FiniteMDP, pi) -> torch.Tensor:
    r"""Advantage function of π.

    Implements Chapter 1, eq. ``eq-advantage``: A^π(s, a) = Q^π(s, a) − V^π(s).
    It satisfies Σ_a π(a | s) A^π(s, a) = 0 for every s.

    ==========  =========  ===========================================
    Symbol      Shape      Meaning
    ==========  =========  ===========================================
    ``pi``      [S, A]     stochastic policy π(a | s)
    ``adv``     [S, A]     returned
    ==========  =========  ===========================================
    """
    V = value(mdp, pi)
    return q_from_v(mdp, V) - V.unsqueeze(-1)


def objective(mdp: FiniteMDP, pi) -> torch.Tensor:
    r"""Expected discounted return J(π) (TRPO's η(π)), a 0-dim tensor.

    Implements Chapter 1, eq. ``eq-objective``:
    J(π) = E_{s_0∼ρ0}[V^π(s_0)] = Σ_s ρ0(s) V^π(s)  (= Σ_s ρ_π(s) r_π(s)).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``rho0``    [S]      initial-state distribution of the MDP
    ``pi``      [S, A]   stochastic policy π(a | s)
    ``J``       []       returned; differentiable in π (and in P, R)
    ==========  =======  ===========================================
    """
    mdp = _mdp(mdp)
    return mdp.rho0 @ value(mdp, pi)


def visitation(mdp: FiniteMDP, pi) -> torch.Tensor:
    r"""Unnormalised discounted state visitation ρ_π (TRPO's ρ_π, convention U).

    Implements Chapter 1, eq. ``eq-visitation``:
    ρ_π(s) = Σ_{t≥0} γ^t Pr(s_t = s | s_0∼ρ0, π), i.e. ρ_π = ρ0 + γ P_π^T ρ_π, so
    ρ_π = (I − γ P_π^T)^{-1} ρ0 and Σ_s ρ_π(s) = 1/(1 − γ).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   stochastic policy π(a | s)
    ``P_pi``    [S, S]   state transition matrix under π
    ``rho``     [S]      returned; total mass 1/(1−γ), not a distribution
    ==========  =======  ===========================================
    """
    mdp = _mdp(mdp)
    P_pi = transition_matrix(mdp, pi)
    eye = torch.eye(mdp.num_states, dtype=DTYPE)
    return torch.linalg.solve(eye - mdp.gamma * P_pi.T, mdp.rho0)


def state_distribution(mdp: FiniteMDP, pi) -> torch.Tensor:
    r"""Normalised discounted state distribution d_π (AKLM's d^π_ρ, convention D).

    Implements Chapter 1, eq. ``eq-state-distribution``: d_π = (1 − γ) ρ_π, a probability
    vector over states.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   stochastic policy π(a | s)
    ``d``       [S]      returned; sums to 1
    ==========  =======  ===========================================
    """
    mdp = _mdp(mdp)
    return (1.0 - mdp.gamma) * visitation(mdp, pi)


# ---------------------------------------------------------------------------------------
# 4. Bellman operators
# ---------------------------------------------------------------------------------------


def bellman_expectation_backup(mdp: FiniteMDP, pi, V) -> torch.Tensor:
    r"""One application of the Bellman expectation operator T^π.

    Implements Chapter 1, eq. ``eq-bellman-expectation``:
    (T^π V)(s) = Σ_a π(a | s) [R(s, a) + γ Σ_{s'} P(s' | s, a) V(s')] = r_π + γ P_π V.
    V^π is its unique fixed point; T^π is a γ-contraction in the sup norm
    (eq. ``eq-contraction``).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``pi``      [S, A]   stochastic policy π(a | s)
    ``V``       [S]      any state-value vector
    returns     [S]      T^π V
    ==========  =======  ===========================================
    """
    mdp = _mdp(mdp)
    pi = check_policy(pi, mdp.num_states, mdp.num_actions)
    return (pi * q_from_v(mdp, V)).sum(-1)


def bellman_optimality_backup(mdp: FiniteMDP, V) -> torch.Tensor:
    r"""One application of the Bellman optimality operator T.

    Implements Chapter 1, eq. ``eq-bellman-optimality``:
    (T V)(s) = max_a [R(s, a) + γ Σ_{s'} P(s' | s, a) V(s')].
    V* is its unique fixed point; T is a γ-contraction in the sup norm
    (eq. ``eq-contraction``): ‖T V − T W‖∞ ≤ γ ‖V − W‖∞.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``V``       [S]      any state-value vector
    returns     [S]      T V
    ==========  =======  ===========================================
    """
    return q_from_v(mdp, V).max(-1).values


def bellman_optimality_backup_q(mdp: FiniteMDP, Q) -> torch.Tensor:
    r"""One application of the Bellman optimality operator for action values.

    Implements Chapter 1, eq. ``eq-bellman-optimality-q``:
    (T Q)(s, a) = R(s, a) + γ Σ_{s'} P(s' | s, a) max_{a'} Q(s', a').
    Q* is its unique fixed point; it is a γ-contraction in the sup norm over (s, a).
    Q-learning (:func:`harl_mini.tabular.td.q_learning`) is its sampled version.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``Q``       [S, A]   any action-value table
    returns     [S, A]   T Q
    ==========  =======  ===========================================
    """
    mdp = _mdp(mdp)
    Q = as_float64(Q, "Q")
    check_shape(Q, [mdp.num_states, mdp.num_actions], "Q")
    return q_from_v(mdp, Q.max(-1).values)


def bellman_residual(mdp: FiniteMDP, V, pi=None) -> float:
    r"""Sup-norm Bellman residual ‖T V − V‖∞ (or ‖T^π V − V‖∞ when ``pi`` is given).

    A diagnostic, returned as a Python float (not differentiable). By the contraction
    property (eq. ``eq-contraction``), ‖V − V_fix‖∞ ≤ residual / (1 − γ), where V_fix is
    the fixed point of the operator.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``V``       [S]      state-value vector to test
    ``pi``      [S, A]   optional policy; None means the optimality operator
    returns     float    max_s |(T V)(s) − V(s)|
    ==========  =======  ===========================================
    """
    mdp = _mdp(mdp)
    V = _vector(V, mdp.num_states, "V")
    TV = bellman_optimality_backup(mdp, V) if pi is None else bellman_expectation_backup(mdp, pi, V)
    return float((TV - V).abs().max())


def greedy_policy(Q) -> torch.Tensor:
    r"""Deterministic greedy policy with respect to an action-value table.

    Implements Chapter 1, eq. ``eq-greedy``: π(a | s) = 1 for a = argmax_{a'} Q(s, a')
    (exact ties go to the lowest action index), 0 otherwise.

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``Q``       [S, A]   action values
    returns     [S, A]   one-hot rows (float64)
    ==========  =======  ===========================================
    """
    Q = as_float64(Q, "Q")
    check_shape(Q, [None, None], "Q")
    if Q.shape[1] == 0:
        raise HarlMiniError("Q: needs at least one action column")
    best = torch.argmax(Q.detach(), dim=-1)  # first maximal index on ties
    return torch.nn.functional.one_hot(best, Q.shape[1]).to(DTYPE)


# ---------------------------------------------------------------------------------------
# 5. Control: value iteration and policy iteration
# ---------------------------------------------------------------------------------------


@dataclass
class ValueIterationResult:
    """Output of :func:`value_iteration`.

    ===============  =========  ==================================================
    Field            Shape      Meaning
    ===============  =========  ==================================================
    ``V``            [S]        last iterate V_K (K = ``iterations``)
    ``pi``           [S, A]     greedy policy with respect to ``q``
    ``q``            [S, A]     R + γ P V_K
    ``iterations``   int        number of backups K performed
    ``residual``     float      ‖T V_K − V_K‖∞
    ``tol``          float      the stopping tolerance on ‖V_K − V_{K−1}‖∞
    ``converged``    bool       whether that tolerance was met within max_iter
    ``history``      [K+1, S]   V_0, …, V_K if ``record=True``, else None
    ===============  =========  ==================================================
    """

    V: torch.Tensor
    pi: torch.Tensor
    q: torch.Tensor
    iterations: int
    residual: float
    tol: float
    converged: bool
    history: torch.Tensor | None = None



def value_iteration(
    mdp: FiniteMDP,
    tol: float = 1e-10,
    max_iter: int = 100_000,
    V0=None,
    record: bool = False,
) -> ValueIterationResult:
    r"""Value iteration: repeat V_{k+1} = T V_k until ‖V_{k+1} − V_k‖∞ ≤ tol.

    Implements Chapter 1, eq. ``eq-value-iteration``:
    V_{k+1}(s) = max_a [R(s, a) + γ Σ_{s'} P(s' | s, a) V_k(s')], from V_0 (zeros by
    default). By the contraction property (eq. ``eq-contraction``) the iterates converge
    geometrically, and on stopping ‖V_K − V*‖∞ ≤ γ tol / (1 − γ). Each iteration is one
    batched tensor operation over all states and actions, about S²A multiply-adds; since
    ‖V_{k+1} − V_k‖∞ ≤ γ^k ‖V_1 − V_0‖∞, it stops after at most
    1 + ⌈log(tol / ‖V_1 − V_0‖∞) / log γ⌉ iterations (Chapter 1, eq. ``eq-vi-iterations``).

    ==============  =========  ==================================================
    Symbol          Shape      Meaning
    ==============  =========  ==================================================
    ``tol``         float      stopping tolerance on successive iterates (>= 0)
    ``max_iter``    int        cap on the number of backups
    ``V0``          [S]        initial values (default zeros)
    ``record``      bool       keep the whole trajectory V_0..V_K in ``history``
    returns         —          :class:`ValueIterationResult`
    ==============  =========  ==================================================
    """
    mdp = _mdp(mdp)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (tol >= 0 and math.isfinite(tol)):
        raise HarlMiniError(f"tol: expected a finite number >= 0, got {tol!r}")
    max_iter = check_positive_int(max_iter, "max_iter")
    S = mdp.num_states
    V = torch.zeros(S, dtype=DTYPE) if V0 is None else _vector(V0, S, "V0")
    history = [V] if record else None
    converged = False
    k = 0
    while k < max_iter:
        V_next = (mdp.R + mdp.gamma * torch.einsum("sat,t->sa", mdp.P, V)).max(-1).values
        k += 1
        step = float((V_next - V).abs().max())
        V = V_next
        if record:
            history.append(V)
        if step <= tol:
            converged = True
            break
    q = q_from_v(mdp, V)
    residual = float((q.max(-1).values - V).abs().max())
    return ValueIterationResult(
        V=V,
        pi=greedy_policy(q),
        q=q,
        iterations=k,
        residual=residual,
        tol=float(tol),
        converged=converged,
        history=torch.stack(history) if record else None,
    )


@dataclass
class PolicyIterationResult:
    """Output of :func:`policy_iteration`.

    ===============  =======  ==================================================
    Field            Shape    Meaning
    ===============  =======  ==================================================
    ``V``            [S]      V^π of the final policy (exact)
    ``pi``           [S, A]   final deterministic policy (one-hot rows)
    ``iterations``   int      number of exact evaluations performed
    ``q``            [S, A]   Q^π of the final policy
    ``converged``    bool     whether the policy became stable within max_iter
    ===============  =======  ==================================================
    """

    V: torch.Tensor
    pi: torch.Tensor
    iterations: int
    q: torch.Tensor
    converged: bool = True


def _improve(q: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """Greedy improvement that keeps the current action when it is within round-off of best.

    Without this rule, two actions with mathematically equal values can swap forever
    because of 1e-16 noise, and policy iteration would never see a stable policy.
    """
    greedy = greedy_policy(q)
    is_det = bool(((pi == 0) | (pi == 1)).all()) and bool((pi.sum(-1) == 1).all())
    if not is_det:
        return greedy
    qd = q.detach()
    eps = 1e-12 * max(1.0, float(qd.abs().max()))
    current = pi.argmax(-1)
    q_cur = qd.gather(1, current.unsqueeze(1)).squeeze(1)
    keep = q_cur >= qd.max(-1).values - eps
    return torch.where(keep.unsqueeze(1), pi, greedy)


def policy_iteration(mdp: FiniteMDP, pi0=None, max_iter: int = 1000) -> PolicyIterationResult:
    r"""Policy iteration: exact evaluation, then greedy improvement, until π is stable.

    Implements Chapter 1, eq. ``eq-policy-iteration``:
    π_{k+1}(s) = argmax_a Q^{π_k}(s, a), with Q^{π_k} from the exact solve
    (eq. ``eq-policy-evaluation``). V^{π_{k+1}} ≥ V^{π_k} statewise (policy improvement
    theorem), and with finitely many deterministic policies it stops, at an optimal one.
    A current action whose value is within 1e-12 (relative) of the best is kept, so
    numerical ties cannot make it cycle. Each iteration forms P_π and Q^π (about S²A
    multiply-adds each) and solves one S×S linear system (about (2/3)S³ by LU).

    ==============  =======  ==================================================
    Symbol          Shape    Meaning
    ==============  =======  ==================================================
    ``pi0``         [S, A]   initial policy (default uniform); may be stochastic
    ``max_iter``    int      cap on the number of evaluations
    returns         —        :class:`PolicyIterationResult`
    ==============  =======  ==================================================
    """
    mdp = _mdp(mdp)
    max_iter = check_positive_int(max_iter, "max_iter")
    if pi0 is None:
        pi = uniform_policy(mdp)
    else:
        pi = check_policy(pi0, mdp.num_states, mdp.num_actions, "pi0")
    converged = False
    for k in range(1, max_iter + 1):
        V = value(mdp, pi)
        q = q_from_v(mdp, V)
        new_pi = _improve(q, pi)
        if torch.equal(new_pi, pi):
            converged = True
            break
        pi = new_pi
    else:  # max_iter reached: report the exact values of the last policy
        V = value(mdp, pi)
        q = q_from_v(mdp, V)
    return PolicyIterationResult(V=V, pi=pi, iterations=k, q=q, converged=converged)


def optimal_value(mdp: FiniteMDP) -> torch.Tensor:
    r"""The optimal value function V*, computed by :func:`policy_iteration`.

    V* is the fixed point of the Bellman optimality operator (eq. ``eq-bellman-optimality``):
    V*(s) = max_a [R(s, a) + γ Σ_{s'} P(s' | s, a) V*(s')] = max_π V^π(s).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``mdp``     —        the MDP
    returns     [S]      V*(s)
    ==========  =======  ===========================================
    """
    return policy_iteration(mdp).V


def optimal_q_value(mdp: FiniteMDP) -> torch.Tensor:
    r"""The optimal action-value function Q* = R + γ P V* (eq. ``eq-bellman-optimality-q``).

    Q*(s, a) is the expected return of taking a in s and acting optimally afterwards; it is
    the fixed point of :func:`bellman_optimality_backup_q`, and V*(s) = max_a Q*(s, a).

    ==========  =======  ===========================================
    Symbol      Shape    Meaning
    ==========  =======  ===========================================
    ``mdp``     —        the MDP
    returns     [S, A]   Q*(s, a)
    ==========  =======  ===========================================
    """
    return policy_iteration(mdp).q
