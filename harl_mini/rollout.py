"""Collect a fixed-length batch of experience from a vectorised environment (Chapter 2).

:func:`collect` runs the policy for ``num_steps`` steps in each of the ``B`` copies of an
environment and returns a :class:`Batch` of [T, B, ...] tensors, ready for
:func:`harl_mini.advantages.gae`. It continues from wherever the environment is
(``env.obs``), so successive calls stitch together into one long stream of experience;
episodes that straddle two batches are cut at the batch end and bootstrapped there.

The one subtle line is the bootstrap value ``next_values``:

* normally ``next_values[t] = V(obs[t+1])`` (and V(obs after the last step) for t = T−1);
* where an episode *ended* at step t, ``obs[t+1]`` is already the first observation of the
  next episode (auto-reset), so ``next_values[t] = V(final_obs[t])``, the value of the
  observation the step really led to. This matters on **truncation** (a time limit: the
  episode would have gone on, so GAE bootstraps from it); on **termination** GAE gives it
  weight 0.

==================  ===========  ======================================================
Field of Batch      Shape        Meaning
==================  ===========  ======================================================
``obs``             [T, B, D]    s_t, the observation acted on
``actions``         [T, B(, K)]  a_t ~ π_old(·|s_t) (long for discrete, float for box)
``logp``            [T, B]       log π_old(a_t|s_t) at collection time
``rewards``         [T, B]       r_t
``terminated``      [T, B]       bool: the episode ended in a terminal state at step t
``truncated``       [T, B]       bool: the episode was cut by a time limit at step t
``values``          [T, B]       V(s_t) at collection time
``next_values``     [T, B]       bootstrap value after step t (see above)
``episode_t``       [T, B]       index of step t within its episode (0 at a reset)
``episode_returns`` list         undiscounted returns of episodes completed in the batch
``episode_lengths`` list         their lengths
==================  ===========  ======================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.distributions import Categorical, Independent, Normal

from harl_mini.errors import HarlMiniError

__all__ = ["Batch", "collect"]


@dataclass
class Batch:
    """[T, B, ...] tensors of one rollout; see the module docstring for the fields."""

    obs: torch.Tensor
    actions: torch.Tensor
    logp: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    values: torch.Tensor
    next_values: torch.Tensor
    episode_t: torch.Tensor
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)

    @property
    def num_steps(self) -> int:
        """T."""
        return int(self.rewards.shape[0])

    @property
    def num_envs(self) -> int:
        """B."""
        return int(self.rewards.shape[1])

    @property
    def size(self) -> int:
        """T · B, the number of environment steps in the batch."""
        return self.num_steps * self.num_envs


def _sample(dist, generator: torch.Generator | None) -> torch.Tensor:
    """``dist.sample()``, or the same draw taken from ``generator`` (Categorical / Gaussian)."""
    if generator is None:
        return dist.sample()
    base = dist.base_dist if isinstance(dist, Independent) else dist
    if isinstance(base, Categorical):
        probs = base.probs
        flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, True, generator=generator)
        return flat.reshape(probs.shape[:-1])
    if isinstance(base, Normal):
        noise = torch.randn(base.loc.shape, generator=generator, dtype=base.loc.dtype, device=base.loc.device)
        return base.loc + base.scale * noise
    raise HarlMiniError(f"generator: supported for Categorical and Normal policies, got {type(base).__name__}")


@torch.no_grad()
def collect(env, policy, value_fn: Callable[[torch.Tensor], torch.Tensor] | None, num_steps: int,
            generator: torch.Generator | None = None) -> Batch:
    """Run ``policy`` for ``num_steps`` steps in every copy of ``env``; return a :class:`Batch`.

    ================  ==============  ===================================================
    Argument          Type            Meaning
    ================  ==============  ===================================================
    ``env``           VecEnv          a :mod:`harl_mini.envs` environment (already reset)
    ``policy``        Policy          has ``distribution(obs)`` (see :mod:`harl_mini.nets`)
    ``value_fn``      callable|None   obs [..., D] ↦ V [...]; ``None`` means V ≡ 0
    ``num_steps``     int             T, steps per copy
    ``generator``     Generator|None  draw the actions from this generator instead of
                                      torch's global one, so that a batch depends only
                                      on it and the environment's seed
    ================  ==============  ===================================================
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise HarlMiniError(f"num_steps: expected a positive integer, got {num_steps!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise HarlMiniError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    if not hasattr(env, "obs"):
        raise HarlMiniError("env: expected a harl_mini environment (make_env(...)) that has been reset")

    def V(o: torch.Tensor) -> torch.Tensor:
        return torch.zeros(o.shape[:-1], dtype=o.dtype, device=o.device) if value_fn is None else value_fn(o)

    obs_l, act_l, logp_l, rew_l, term_l, trunc_l, val_l, nval_l, t_l = ([] for _ in range(9))
    obs = env.obs
    value = V(obs)
    for _ in range(num_steps):
        dist = policy.distribution(obs)
        action = _sample(dist, generator)
        obs_l.append(obs)
        act_l.append(action)
        logp_l.append(dist.log_prob(action))
        val_l.append(value)
        t_l.append(env.episode_t.clone())
        obs, reward, terminated, truncated, final_obs = env.step(action)
        value = V(obs)                       # V(s_{t+1}); a reset observation where done
        next_value = value.clone()
        done = terminated | truncated
        if bool(done.any()):                 # bootstrap from the observation the step led to
            idx = torch.nonzero(done).flatten()
            next_value[idx] = V(final_obs[idx])
        rew_l.append(reward)
        term_l.append(terminated)
        trunc_l.append(truncated)
        nval_l.append(next_value)
    returns, lengths = env.pop_episodes()
    return Batch(torch.stack(obs_l), torch.stack(act_l), torch.stack(logp_l), torch.stack(rew_l),
                 torch.stack(term_l), torch.stack(trunc_l), torch.stack(val_l), torch.stack(nval_l),
                 torch.stack(t_l), returns, lengths)
