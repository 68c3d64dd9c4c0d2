r"""Vectorised Monte-Carlo rollouts in a finite MDP.

The exact quantities of :mod:`harl_mini.tabular.mdp` are expectations; this module draws
the episodes they average over, so that the book (and the tests) can check
E[G] = J(π) = Σ_s ρ0(s) V^π(s) by simulation, and later chapters can feed sampled
trajectories to estimators (returns, GAE).

All episodes advance together: one step is a handful of tensor operations on all
episodes at once (inverse-CDF sampling with ``torch.searchsorted``), drawn from one
seeded ``torch.Generator``. For a Markov game, sample its joint MDP:
``sample_returns(game.joint_mdp(), flat_joint_policy(pis), …)``.

Truncation: an infinite discounted return is cut at a horizon H. Because
|Σ_{t≥H} γ^t r_t| ≤ γ^H max|R| / (1 − γ), the truncated return's mean differs from J(π)
by at most that amount; the default H makes the bound smaller than 1e-6.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch

from harl_mini.errors import HarlMiniError, check_positive_int
from harl_mini.tabular.mdp import DTYPE, FiniteMDP, _check_seed, _mdp, check_policy

__all__ = ["default_horizon", "sample_returns", "Trajectories", "sample_trajectories", "WeightedTrajectories",
           "all_trajectories"]


def default_horizon(mdp: FiniteMDP, eps: float = 1e-6) -> int:
    r"""Smallest H >= 1 with γ^H · max|R| / (1 − γ) < eps (the truncation-bias bound).

    =========  =======  =============================================
    Symbol     Type     Meaning
    =========  =======  =============================================
    ``eps``    float    bound on |E[G] − E[G_{0:H}]|
    returns    int      H
    =========  =======  =============================================
    """
    mdp = _mdp(mdp)
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0:
        raise HarlMiniError(f"eps: expected a positive number, got {eps!r}")
    r_max = float(mdp.R.detach().abs().max())
    gamma = mdp.gamma
    H = 1
    while gamma**H * r_max / (1.0 - gamma) >= eps:
        H += 1
    return H



def _cdf(p: torch.Tensor) -> torch.Tensor:
    """Cumulative sums normalised so that the last entry is exactly 1.0."""
    c = p.cumsum(-1)
    return c / c[..., -1:]


def _draw(cdf_rows: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One index per row of ``cdf_rows`` [n, k]: the smallest i with u < cdf[i], u ~ U[0, 1)."""
    u = torch.rand((cdf_rows.shape[0], 1), generator=g, dtype=DTYPE)
    idx = torch.searchsorted(cdf_rows, u, right=True).squeeze(1)
    return idx.clamp_max(cdf_rows.shape[1] - 1)


class _Stepper:
    """Shared set-up of both samplers: validated inputs, CDF tables, the first states."""

    def __init__(self, mdp, pi, num_episodes, seed, start_state):
        self.mdp = _mdp(mdp)
        S = self.mdp.num_states
        pi = check_policy(pi, S, self.mdp.num_actions).detach()
        self.n = check_positive_int(num_episodes, "num_episodes")
        self.g = torch.Generator().manual_seed(_check_seed(seed))
        self.cdf_pi = _cdf(pi.clamp_min(0.0))
        self.cdf_P = _cdf(self.mdp.P.detach().clamp_min(0.0))
        self.R = self.mdp.R.detach()
        if start_state is None:
            cdf0 = _cdf(self.mdp.rho0.detach().clamp_min(0.0))
            u = torch.rand(self.n, generator=self.g, dtype=DTYPE)
            self.s0 = torch.searchsorted(cdf0, u, right=True).clamp_max(S - 1)
        else:
            if isinstance(start_state, bool) or not isinstance(start_state, numbers.Integral):
                raise HarlMiniError(f"start_state: expected a state index, got {start_state!r}")
            if not 0 <= int(start_state) < S:
                raise HarlMiniError(f"start_state: must be in 0..{S - 1}, got {start_state}")
            self.s0 = torch.full((self.n,), int(start_state), dtype=torch.long)

    def step(self, s: torch.Tensor):
        a = _draw(self.cdf_pi[s], self.g)
        r = self.R[s, a]
        s_next = _draw(self.cdf_P[s, a], self.g)
        return a, r, s_next


def sample_returns(
    mdp: FiniteMDP,
    pi,
    num_episodes: int,
    horizon: int | None = None,
    seed: int = 0,
    start_state: int | None = None,
) -> torch.Tensor:
    r"""Discounted returns of independent episodes, simulated in parallel.

    Implements Chapter 1, eq. ``eq-return``: G_0 = Σ_{t=0}^{H−1} γ^t R(s_t, a_t), with
    s_0 ∼ ρ0 (or s_0 = ``start_state``), a_t ∼ π(· | s_t), s_{t+1} ∼ P(· | s_t, a_t).
    E[G] = J(π) (or V^π(start_state)) up to the truncation bias γ^H max|R| / (1 − γ).

    ===================  =======  ===============================================
    Symbol               Shape    Meaning
    ===================  =======  ===============================================
    ``pi``               [S, A]   policy π(a | s)
    ``num_episodes``     int      number of independent episodes
    ``horizon``          int      H; default :func:`default_horizon` (bias < 1e-6)
    ``seed``             int      generator seed (same seed, same returns)
    ``start_state``      int      optional fixed s_0 instead of s_0 ∼ ρ0
    returns              [n]      G for each episode (float64)
    ===================  =======  ===============================================
    """
    st = _Stepper(mdp, pi, num_episodes, seed, start_state)
    H = default_horizon(st.mdp) if horizon is None else check_positive_int(horizon, "horizon")
    s = st.s0
    G = torch.zeros(st.n, dtype=DTYPE)
    discount = 1.0
    for _ in range(H):
        _, r, s = st.step(s)
        G = G + discount * r
        discount *= st.mdp.gamma
    return G


@dataclass
class Trajectories:
    """Sampled episodes of fixed length H.

    ============  ========  =====================================
    Field         Shape     Meaning
    ============  ========  =====================================
    ``states``    [n, H+1]  s_0 … s_H (long)
    ``actions``   [n, H]    a_0 … a_{H−1} (long)
    ``rewards``   [n, H]    R(s_t, a_t) (float64)
    ``gamma``     float     discount of the MDP
    ============  ========  =====================================
    """

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    gamma: float

    def returns(self) -> torch.Tensor:
        """Σ_t γ^t r_t for each episode, shape [n]."""
        H = self.rewards.shape[1]
        discounts = self.gamma ** torch.arange(H, dtype=DTYPE)
        return self.rewards @ discounts


def sample_trajectories(
    mdp: FiniteMDP,
    pi,
    num_episodes: int,
    horizon: int,
    seed: int = 0,
    start_state: int | None = None,
) -> Trajectories:
    r"""Like :func:`sample_returns` but keeps every state, action and reward.

    Memory is O(num_episodes × horizon); use :func:`sample_returns` when only G is needed.

    ===================  =======  ===============================================
    Symbol               Shape    Meaning
    ===================  =======  ===============================================
    ``pi``               [S, A]   policy π(a | s)
    ``horizon``          int      H, the number of steps kept
    returns              —        :class:`Trajectories`
    ===================  =======  ===============================================
    """
    st = _Stepper(mdp, pi, num_episodes, seed, start_state)
    H = check_positive_int(horizon, "horizon")
    states, actions, rewards = [st.s0], [], []
    s = st.s0
    for _ in range(H):
        a, r, s = st.step(s)
        actions.append(a)
        rewards.append(r)
        states.append(s)
    return Trajectories(
        states=torch.stack(states, 1),
        actions=torch.stack(actions, 1),
        rewards=torch.stack(rewards, 1),
        gamma=st.mdp.gamma,
    )


@dataclass
class WeightedTrajectories(Trajectories):
    """Every episode of H steps with positive probability, and that probability.

    Fields as :class:`Trajectories`, plus ``prob`` [n], summing to 1: an expectation over
    episodes is ``(prob[:, None, ...] * f(episodes)).sum(0)``, exactly.
    """

    prob: torch.Tensor = None


def all_trajectories(mdp: FiniteMDP, pi, horizon: int, max_episodes: int = 200_000) -> WeightedTrajectories:
    r"""Enumerate every episode s_0, a_0, …, s_{H−1}, a_{H−1}, s_H of π with its probability.

    Pr(episode) = ρ0(s_0) Π_{t<H} π(a_t | s_t) P(s_{t+1} | s_t, a_t). Episodes of probability 0
    are left out. An expectation of any function of the episode (a sampled estimator, for
    example) is then a finite, exact sum: the oracle for the *mean* of an estimator, where
    :func:`sample_trajectories` only gives a Monte-Carlo average. There are up to (S·A)^H·S
    episodes; more than ``max_episodes`` is an error.

    ==================  =======  ===============================================
    Symbol              Shape    Meaning
    ==================  =======  ===============================================
    ``pi``              [S, A]   policy π(a | s)
    ``horizon``         int      H ≥ 1
    returns             —        :class:`WeightedTrajectories` (``prob`` [n])
    ==================  =======  ===============================================
    """
    mdp = _mdp(mdp)
    S, A = mdp.num_states, mdp.num_actions
    pi = check_policy(pi, S, A).detach()
    H = check_positive_int(horizon, "horizon")
    max_episodes = check_positive_int(max_episodes, "max_episodes")
    P, R = mdp.P.detach(), mdp.R.detach()
    s = torch.nonzero(mdp.rho0 > 0).flatten()
    prob = mdp.rho0[s]
    states, actions = s[:, None], torch.zeros((len(s), 0), dtype=torch.long)
    for _ in range(H):
        s_t = states[:, -1]
        # branch on (a, s'): index k = a * S + s'
        p_next = (pi[s_t].unsqueeze(-1) * P[s_t]).reshape(len(s_t), A * S) * prob.unsqueeze(-1)
        keep = torch.nonzero(p_next > 0)
        if len(keep) > max_episodes:
            raise HarlMiniError(f"horizon: more than {max_episodes} episodes of positive probability "
                                f"(S={S}, A={A}, H={H}); use a shorter horizon or a sparser MDP")
        row, k = keep[:, 0], keep[:, 1]
        prob = p_next[row, k]
        states = torch.cat([states[row], (k % S)[:, None]], 1)
        actions = torch.cat([actions[row], (k // S)[:, None]], 1)
    rewards = R[states[:, :-1], actions]
    return WeightedTrajectories(states=states, actions=actions, rewards=rewards, gamma=mdp.gamma, prob=prob)
