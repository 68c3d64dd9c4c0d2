"""``gym:<id>``: any Gymnasium environment with a flat Box observation and a Discrete or Box
action space, vectorised with ``gymnasium.vector.SyncVectorEnv`` and returning torch tensors.

The vector env uses ``AutoresetMode.SAME_STEP``: a copy whose episode ends is reset inside
the same ``step`` call, and the observation the step really led to comes back in
``info["final_obs"]`` (with ``info["_final_obs"]`` marking the copies it is valid for).
That observation is what a truncated episode must bootstrap from; it is returned as
``final_obs``. (In the default NEXT_STEP mode the reset happens one call later and the
step after a done is a dummy one, which the rollout would have to skip.)

Box actions are clipped to the action space before they reach the environment; the
unclipped sample is what the policy stored and is scored on.

Extra keyword arguments go to ``gymnasium.make_vec`` (and from there to ``gymnasium.make``),
e.g. ``make_env("gym:CartPole-v1", 4, max_episode_steps=50)``.
"""

from __future__ import annotations

import numpy as np
import torch

from harl_mini.envs.base import VecEnv
from harl_mini.errors import HarlMiniError

__all__ = ["GymVecEnv", "make"]


class GymVecEnv(VecEnv):
    """A Gymnasium vector environment behind the :class:`~harl_mini.envs.base.VecEnv` API."""

    def __init__(self, env_id: str, num_envs: int = 1, seed: int = 0, device="cpu", **make_kwargs):
        import gymnasium as gym

        self.name = f"gym:{env_id}"
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        try:
            self.env = gym.make_vec(env_id, num_envs=self.num_envs, vectorization_mode="sync",
                                    vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                                    **make_kwargs)
        except gym.error.Error as exc:
            raise HarlMiniError(f"gym:{env_id}: Gymnasium cannot make this environment ({exc})") from None
        except TypeError as exc:
            raise HarlMiniError(f"gym:{env_id}: bad keyword argument for gymnasium.make_vec ({exc})") from None
        obs_space, act_space = self.env.single_observation_space, self.env.single_action_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            self.env.close()
            raise HarlMiniError(f"gym:{env_id}: only flat Box observation spaces are supported, got {obs_space}")
        self.obs_dim = int(obs_space.shape[0])
        if isinstance(act_space, gym.spaces.Discrete):
            self.discrete, self.n_actions, self.act_dim = True, int(act_space.n), None
            self._low = self._high = None
        elif isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
            self.discrete, self.n_actions, self.act_dim = False, None, int(act_space.shape[0])
            self._low, self._high = act_space.low, act_space.high
        else:
            self.env.close()
            raise HarlMiniError(f"gym:{env_id}: only Discrete or flat Box action spaces are supported, got {act_space}")
        self.reset(seed)

    def _tensor(self, x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device)

    def _reset(self, seed):
        obs, _ = self.env.reset(seed=seed)
        return self._tensor(obs)

    def _step(self, actions: torch.Tensor):
        a = actions.detach().cpu().numpy()
        if self.discrete:
            a = a.astype(np.int64).reshape(self.num_envs)
        else:
            a = np.clip(a.reshape(self.num_envs, self.act_dim), self._low, self._high)
        obs, reward, terminated, truncated, info = self.env.step(a)
        final = obs.copy()
        if "_final_obs" in info:
            for i in np.flatnonzero(info["_final_obs"]):
                final[i] = info["final_obs"][i]
        return (self._tensor(obs), self._tensor(reward), torch.as_tensor(terminated, device=self.device),
                torch.as_tensor(truncated, device=self.device), self._tensor(final))

    def close(self) -> None:
        self.env.close()


def make(env_id: str, num_envs: int = 1, seed: int = 0, device="cpu", **kwargs) -> GymVecEnv:
    """Registry entry for ``gym:<env_id>``."""
    if not env_id:
        raise HarlMiniError("gym:<id>: give a Gymnasium id after 'gym:', e.g. 'gym:CartPole-v1'")
    return GymVecEnv(env_id, num_envs, seed, device, **kwargs)
