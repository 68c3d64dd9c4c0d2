"""The one step API every harl_mini environment speaks (batched, torch tensors).

A :class:`VecEnv` runs ``num_envs`` copies of an environment in lock step and resets each
copy automatically *in the same step* in which its episode ends::

    obs = env.reset(seed=0)                                   # [B, D]
    obs, reward, terminated, truncated, final_obs = env.step(actions)

=================  ==========  =========================================================
Returned           Shape       Meaning
=================  ==========  =========================================================
``obs``            [B, D]      observation to act on next (already the first observation
                               of a new episode where the last one ended)
``reward``         [B]         r_t
``terminated``     [B] bool    the episode reached a terminal state (V = 0 after it)
``truncated``      [B] bool    the episode was cut by a time limit (it would go on)
``final_obs``      [B, D]      the observation the step really led to: equals ``obs``
                               where not done, the last observation of the finished
                               episode (before the reset) where done
=================  ==========  =========================================================

``final_obs`` is what a learner bootstraps from on truncation (GAE, Chapter 2). The base
class also checks every observation and reward for NaN/inf, keeps per-copy episode
returns and lengths (``pop_episodes``) and the step index within the current episode
(``episode_t``). A subclass implements ``_reset(seed)`` and ``_step(actions)``.
"""

from __future__ import annotations

import torch

from harl_mini.errors import HarlMiniError

__all__ = ["VecEnv"]


class VecEnv:
    """Base class; see the module docstring. Subclasses set the attributes in ``__init__``.

    ==============  =========  ======================================================
    Attribute       Type       Meaning
    ==============  =========  ======================================================
    ``name``        str        registry name, e.g. ``"gym:CartPole-v1"``
    ``num_envs``    int        B
    ``obs_dim``     int        D
    ``discrete``    bool       discrete (Categorical) or box (Gaussian) actions
    ``n_actions``   int|None   number of actions (discrete only)
    ``act_dim``     int|None   K, action size (box only)
    ``device``      device     where every returned tensor lives
    ==============  =========  ======================================================
    """

    name: str = "env"
    num_envs: int
    obs_dim: int
    discrete: bool
    n_actions: int | None = None
    act_dim: int | None = None
    device: torch.device = torch.device("cpu")

    # -- to implement ---------------------------------------------------------------------
    def _reset(self, seed: int | None) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, actions: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- public API -----------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Start fresh episodes in every copy; returns obs [B, D]."""
        obs = self._reset(seed)
        self._check(obs, "observation")
        self.obs = obs
        self.episode_t = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._ep_return = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        self._done_returns: list[float] = []
        self._done_lengths: list[int] = []
        return obs

    def step(self, actions: torch.Tensor):
        """Advance every copy one step; see the module docstring for what comes back."""
        if not hasattr(self, "obs"):
            raise HarlMiniError(f"{self.name}: call reset() before step()")
        obs, reward, terminated, truncated, final_obs = self._step(actions)
        self._check(final_obs, "observation")
        self._check(obs, "observation")
        self._check(reward, "reward")
        done = terminated | truncated
        self._ep_return += reward.to(torch.float64)
        self.episode_t += 1
        if bool(done.any()):
            idx = torch.nonzero(done).flatten()
            self._done_returns.extend(self._ep_return[idx].tolist())
            self._done_lengths.extend(self.episode_t[idx].tolist())
            self._ep_return[idx] = 0.0
            self.episode_t[idx] = 0
        self.obs = obs
        return obs, reward, terminated, truncated, final_obs

    def pop_episodes(self) -> tuple[list[float], list[int]]:
        """Returns and lengths of the episodes completed since the last call (and forget them)."""
        out = (self._done_returns, self._done_lengths)
        self._done_returns, self._done_lengths = [], []
        return out

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = f"n_actions={self.n_actions}" if self.discrete else f"act_dim={self.act_dim}"
        return f"{type(self).__name__}({self.name!r}, num_envs={self.num_envs}, obs_dim={self.obs_dim}, {kind})"

    def _check(self, t: torch.Tensor, what: str) -> None:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = torch.nonzero(~torch.isfinite(t))[0].tolist()
            value = t[tuple(bad)].item()
            raise HarlMiniError(f"{self.name}: the environment returned a non-finite {what} ({value} at index "
                                f"{tuple(bad)}); check the environment or its observation wrappers")
