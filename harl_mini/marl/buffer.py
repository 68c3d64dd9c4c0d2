r"""One rollout buffer for every multi-agent algorithm: [T, B] team data + per-agent lists.

Filled step by step by :meth:`harl_mini.marl.runner.MARunner.collect`; the advantages come from
:func:`harl_mini.advantages.gae`, the one GAE of the package (truncation bootstraps from
the final state, termination never does; see that function).

==================  ==================  ==================================================
Field               Shape               Meaning
==================  ==================  ==================================================
``obs[i]``          [T, B, D_i]         agent i's observation o^i_t (a list of N tensors)
``actions[i]``      [T, B] / [T, B, K]  agent i's action (long / float)
``logp``            [N, T, B]           log π^i_old(a^i_t | o^i_t) at collection time;
                                        ``logp[i]`` is agent i's
``state``           [T, B, S]           global state s_t
``rewards``         [T, B]              shared team reward r_t
``terminated``      [T, B]              bool, terminal state reached at step t
``truncated``       [T, B]              bool, time limit at step t
``values``          [T, B, K]           V(s_t) (K = 1, centralised critic) or V^i(o^i_t)
                                        (K = N, IPPO), de-normalised
``next_values``     [T, B, K]           V of what step t led to: V(s_{t+1}), but
                                        V(final_state_t) where truncated (the first
                                        state of the next episode is not it)
==================  ==================  ==================================================

:meth:`RolloutBuffer.advantages` returns ``(adv, ret)`` of shape [T, B, K]: with a
centralised critic the single joint advantage Â(s_t, 𝐚_t) that *every* agent uses;
for IPPO agent i's own Â^i_t. The K columns go through one ``gae`` call as a [T, B·K]
batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harl_mini.advantages import gae

__all__ = ["RolloutBuffer"]


class RolloutBuffer:
    """Pre-allocated storage of one iteration's rollout; see the module docstring."""

    def __init__(self, num_steps: int, num_envs: int, obs_dims: Sequence[int], action_spaces, state_dim: int,
                 num_values: int, device="cpu", dtype=torch.float32):
        T, B = int(num_steps), int(num_envs)
        self.T, self.B, self.N, self.K = T, B, len(obs_dims), int(num_values)
        dev = torch.device(device)
        self.device = dev
        self.obs = [torch.zeros((T, B, d), dtype=dtype, device=dev) for d in obs_dims]
        self.actions = [torch.zeros((T, B), dtype=torch.long, device=dev) if kind == "discrete"
                        else torch.zeros((T, B, size), dtype=dtype, device=dev) for kind, size in action_spaces]
        self.logp = torch.zeros((self.N, T, B), dtype=dtype, device=dev)
        self.state = torch.zeros((T, B, state_dim), dtype=dtype, device=dev)
        self.rewards = torch.zeros((T, B), dtype=dtype, device=dev)
        self.terminated = torch.zeros((T, B), dtype=torch.bool, device=dev)
        self.truncated = torch.zeros((T, B), dtype=torch.bool, device=dev)
        self.values = torch.zeros((T, B, self.K), dtype=dtype, device=dev)
        self.next_values = torch.zeros((T, B, self.K), dtype=dtype, device=dev)
        self.episode_returns: list[float] = []
        self.episode_lengths: list[int] = []

    @property
    def size(self) -> int:
        """T·B, the number of joint env steps held."""
        return self.T * self.B

    def insert(self, t: int, obs, state, actions, logp, values, reward, terminated, truncated, next_values) -> None:
        for i in range(self.N):
            self.obs[i][t] = obs[i]
            self.actions[i][t] = actions[i]
        self.logp[:, t] = logp
        self.state[t] = state
        self.values[t] = values
        self.rewards[t] = reward
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.next_values[t] = next_values

    def advantages(self, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE(γ, λ) advantages and TD(λ) targets, each [T, B, K] (one ``gae`` call)."""
        T, B, K = self.T, self.B, self.K

        def wide(x):  # [T, B] -> [T, B*K], each env's column repeated for the K value heads
            return x.unsqueeze(-1).expand(T, B, K).reshape(T, B * K)

        adv, ret = gae(wide(self.rewards), self.values.reshape(T, B * K), self.next_values.reshape(T, B * K),
                       wide(self.terminated), wide(self.truncated), gamma, lam)
        return adv.reshape(T, B, K), ret.reshape(T, B, K)

    # flat views for the update (samples = T·B)
    def flat_obs(self, i: int) -> torch.Tensor:
        return self.obs[i].reshape(self.size, -1)

    def flat_actions(self, i: int) -> torch.Tensor:
        a = self.actions[i]
        return a.reshape(self.size) if a.dim() == 2 else a.reshape(self.size, -1)

    def flat_logp(self, i: int) -> torch.Tensor:
        return self.logp[i].reshape(self.size)

    def flat_state(self) -> torch.Tensor:
        return self.state.reshape(self.size, -1)
