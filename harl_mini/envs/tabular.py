"""``tabular:<name>``: a finite MDP of :mod:`harl_mini.tabular` as a batched torch environment.

This is the bridge between the exact oracle and the sampled algorithms: the same
:class:`~harl_mini.tabular.FiniteMDP` whose V^π, A^π and ∇J the oracle computes exactly can
be *sampled* through the ordinary step API, so every estimator can be tested against the
exact value it targets.

* observations are one-hot rows e_s [B, S] (so a linear policy on them is the tabular
  softmax policy θ[s, a]);
* the reward of a step is the expected reward R(s, a) of the MDP;
* s' ~ P(· | s, a) and s_0 ~ ρ0, drawn from one seeded ``torch.Generator`` on ``device``;
* a FiniteMDP has no terminal states, so ``terminated`` is always False; with
  ``time_limit=H`` every episode is *truncated* after H steps (and bootstrapping from
  ``final_obs`` is then exactly right);
* all B copies advance together as a few tensor operations, on any device.

The discount γ of the MDP is not applied by the environment (rewards are per step); the
learner discounts.

``make_env("tabular:random", 64, seed=0, time_limit=100, num_states=5, num_actions=3)``
builds ``make_mdp("random", num_states=5, num_actions=3)``; ``make_env("tabular", 64,
mdp=my_mdp)`` wraps an MDP you already have.
"""

from __future__ import annotations

import torch

from harl_mini.envs.base import VecEnv
from harl_mini.errors import HarlMiniError

__all__ = ["TabularEnv", "make"]


class TabularEnv(VecEnv):
    """A :class:`~harl_mini.tabular.FiniteMDP` behind the :class:`~harl_mini.envs.base.VecEnv` API.

    ===============  ==========  =================================================
    Argument         Type        Meaning
    ===============  ==========  =================================================
    ``mdp``          FiniteMDP   P [S, A, S], R [S, A], ρ0 [S]
    ``num_envs``     int         B parallel copies
    ``seed``         int         seed of the environment's generator
    ``device``       str/device  where states and returned tensors live
    ``time_limit``   int|None    H: truncate every episode after H steps
    ``dtype``        dtype       float dtype of observations and rewards
    ===============  ==========  =================================================
    """

    discrete = True

    def __init__(self, mdp, num_envs: int = 1, seed: int = 0, device="cpu", time_limit: int | None = None,
                 dtype: torch.dtype = torch.float32, name: str | None = None):
        from harl_mini.tabular import FiniteMDP

        if not isinstance(mdp, FiniteMDP):
            raise HarlMiniError(f"mdp: expected a FiniteMDP, got {type(mdp).__name__}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise HarlMiniError(f"num_envs: expected a positive integer, got {num_envs!r}")
        if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, int)
                                       or time_limit < 1):
            raise HarlMiniError(f"time_limit: expected a positive integer or None, got {time_limit!r}")
        self.mdp = mdp
        self.name = name or f"tabular:{mdp.name or 'custom'}"
        self.num_envs, self.time_limit, self.dtype = num_envs, time_limit, dtype
        self.device = torch.device(device)
        self.obs_dim, self.n_actions = mdp.num_states, mdp.num_actions
        P, rho0 = mdp.P.detach().to(self.device), mdp.rho0.detach().to(self.device)
        self._cdf_P = self._cdf(P)              # [S, A, S]
        self._cdf_rho0 = self._cdf(rho0)        # [S]
        self._R = mdp.R.detach().to(self.device, dtype)
        self._eye = torch.eye(self.obs_dim, dtype=dtype, device=self.device)
        self._g = torch.Generator(device=self.device)
        self._seed = int(seed)
        self.reset(seed)

    @staticmethod
    def _cdf(p: torch.Tensor) -> torch.Tensor:
        c = p.clamp_min(0.0).cumsum(-1)
        return c / c[..., -1:]

    def _draw(self, cdf_rows: torch.Tensor) -> torch.Tensor:
        """One index per row of ``cdf_rows`` [n, k] by inverse-CDF sampling."""
        u = torch.rand((cdf_rows.shape[0], 1), generator=self._g, dtype=cdf_rows.dtype, device=self.device)
        return torch.searchsorted(cdf_rows, u, right=True).squeeze(1).clamp_max(cdf_rows.shape[-1] - 1)

    def _initial_states(self, n: int) -> torch.Tensor:
        return self._draw(self._cdf_rho0.expand(n, -1).contiguous())

    def _reset(self, seed):
        if seed is not None:
            self._g.manual_seed(int(seed))
        self.state = self._initial_states(self.num_envs)
        return self._eye[self.state]

    def _step(self, actions: torch.Tensor):
        a = torch.as_tensor(actions, device=self.device)
        if a.shape != (self.num_envs,) or a.is_floating_point() or bool(((a < 0) | (a >= self.n_actions)).any()):
            raise HarlMiniError(f"{self.name}: actions must be {self.num_envs} integers in 0..{self.n_actions - 1}, "
                                f"got {a.tolist() if a.numel() <= 8 else list(a.shape)}")
        s = self.state
        reward = self._R[s, a]
        s_next = self._draw(self._cdf_P[s, a])
        final_obs = self._eye[s_next]
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        if self.time_limit is None:
            truncated = torch.zeros_like(terminated)
        else:
            truncated = self.episode_t + 1 >= self.time_limit
        if bool(truncated.any()):
            s_next = torch.where(truncated, self._initial_states(self.num_envs), s_next)
        self.state = s_next
        return self._eye[s_next], reward, terminated, truncated, final_obs


def make(name: str, num_envs: int = 1, seed: int = 0, device="cpu", mdp=None, time_limit: int | None = None,
         dtype: torch.dtype = torch.float32, **mdp_kwargs) -> TabularEnv:
    """Registry entry for ``tabular:<mdp name>`` (built by ``make_mdp``) or ``tabular`` with ``mdp=``."""
    from harl_mini.tabular import make_mdp

    if mdp is not None:
        if mdp_kwargs:
            raise HarlMiniError(f"tabular: pass either mdp= or make_mdp keywords, not both (got {sorted(mdp_kwargs)})")
        return TabularEnv(mdp, num_envs, seed, device, time_limit, dtype, name=f"tabular:{name or mdp.name or 'custom'}")
    if not name:
        raise HarlMiniError("tabular: give an MDP name ('tabular:random', 'tabular:chain', …) or pass mdp=")
    return TabularEnv(make_mdp(name, **mdp_kwargs), num_envs, seed, device, time_limit, dtype, name=f"tabular:{name}")
