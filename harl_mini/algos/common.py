"""The plumbing the single-agent algorithms share, so that each algorithm file shows only
its algorithm: hyperparameter handling, set-up, the training history and progress bar,
and deterministic evaluation.

================================  =========================================================
Name                              What it does
================================  =========================================================
``resolve_config(cls, hparams)``  the algorithm's config dataclass from keyword overrides;
                                  an unknown name raises listing the valid ones
``setup(env, seed, device, n)``   seed torch; build (``make_env``) or reset the environment
``make_policy(env, hidden, …)``   Categorical for discrete, diagonal Gaussian for box actions
``History``                       per-iteration rows + the trained policy and value function
``Tracker``                       turns each iteration into a History row; tqdm bar
``evaluate(policy, env, n)``      returns of ``n`` episodes, by default with the mode action
``explained_variance(v, ret)``    1 − Var[ret − v] / Var[ret], the value-fit diagnostic
================================  =========================================================
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from harl_mini.envs import VecEnv, make_env
from harl_mini.errors import HarlMiniError, MultiAgentEnvError
from harl_mini.nets import CategoricalPolicy, GaussianPolicy, Policy

__all__ = ["resolve_config", "setup", "make_policy", "History", "Tracker", "evaluate", "explained_variance",
           "check_finite_loss", "RECENT_EPISODES"]

#: hyperparameters that may be negative (every other number must be >= 0)
SIGNED = {"log_std_init"}

#: number of most recent completed episodes averaged into a row's ``episode_return``
RECENT_EPISODES = 10


def resolve_config(cls, hparams: dict[str, Any]):
    """``cls(**hparams)`` with a clear error for unknown names and obviously bad values."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(hparams) - set(names))
    if unknown:
        raise HarlMiniError(f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for {cls.__name__}; "
                            f"available: {', '.join(names)}")
    cfg = cls(**hparams)
    defaults = cls()
    for name in names:
        value, default = getattr(cfg, name), getattr(defaults, name)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise HarlMiniError(f"{name}: expected True or False, got {value!r}")
        elif isinstance(default, numbers.Real) and default is not None:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise HarlMiniError(f"{name}: expected a finite number, got {value!r}")
            if isinstance(default, int):
                if int(value) != value or value < 1:
                    raise HarlMiniError(f"{name}: expected a positive integer, got {value!r}")
                setattr(cfg, name, int(value))
            if value < 0 and name not in SIGNED:
                raise HarlMiniError(f"{name}: must be non-negative, got {value!r}")
    for name in ("gamma", "lam"):
        if name in names and not 0.0 <= getattr(cfg, name) <= 1.0:
            raise HarlMiniError(f"{name}: must lie in [0, 1], got {getattr(cfg, name)!r}")
    return cfg


def setup(env, steps: int, seed: int, device, num_envs: int) -> VecEnv:
    """Validate ``steps``/``seed``, seed torch, return a reset environment.

    ``env`` is a name for :func:`harl_mini.envs.make_env` (built with ``num_envs`` copies)
    or an existing :class:`~harl_mini.envs.base.VecEnv` (reset with ``seed``; its own
    number of copies is used).
    """
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise HarlMiniError(f"steps: expected a positive integer number of environment steps, got {steps!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise HarlMiniError(f"seed: expected an integer, got {seed!r}")
    torch.manual_seed(int(seed))
    name = env if isinstance(env, str) else None
    if name is not None:
        env = make_env(name, num_envs=int(num_envs), seed=int(seed), device=device)
    if not isinstance(env, VecEnv):
        if hasattr(env, "num_agents"):
            what = repr(name) if name is not None else f"this {type(env).__name__}"
            raise MultiAgentEnvError(f"{what} is a multi-agent environment, and reinforce, trpo and ppo are "
                                     "single-agent algorithms")
        raise HarlMiniError(f"env: expected an environment name or a harl_mini VecEnv, got {type(env).__name__}")
    if name is None:
        env.reset(int(seed))
    if getattr(env, "time_limit", 0) is None and hasattr(env, "mdp"):
        warnings.warn(f"{env.name}: a finite MDP has no terminal states and this env has no time_limit, so no "
                      "episode ever ends and episode_return stays undefined (nan); pass time_limit=H to truncate "
                      "every episode after H steps", UserWarning, stacklevel=3)
    return env


def make_policy(env: VecEnv, hidden, log_std_init: float = 0.0, device="cpu") -> Policy:
    """A :class:`CategoricalPolicy` for discrete actions, else a :class:`GaussianPolicy`."""
    if env.discrete:
        return CategoricalPolicy(env.obs_dim, env.n_actions, hidden).to(device)
    return GaussianPolicy(env.obs_dim, env.act_dim, hidden, log_std_init).to(device)


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 − Var[returns − values] / Var[returns] (1 = perfect fit, ≤ 0 = no better than a constant)."""
    var = float(returns.var())
    return float("nan") if var == 0.0 else 1.0 - float((returns - values).var()) / var


def check_finite_loss(loss: torch.Tensor, what: str, iteration: int) -> None:
    if not bool(torch.isfinite(loss)):
        raise HarlMiniError(f"{what} became {float(loss)} at iteration {iteration}; lower the learning rate or "
                            "check the rewards and observations for huge values")


@dataclass
class History:
    """What ``train`` returns: one dict per iteration, plus the trained networks.

    Row keys common to all algorithms: ``iteration``, ``steps`` (environment steps so far),
    ``wall_time`` (s), ``episodes`` (completed so far), ``episode_return`` and
    ``episode_length`` (means over the last :data:`RECENT_EPISODES` completed episodes; NaN
    before the first), ``entropy``, ``kl`` (mean KL(π_old ‖ π_new) on the batch),
    ``policy_loss``, ``value_loss``, ``explained_variance``; algorithm-specific keys follow.
    ``history["episode_return"]`` gives a column as a list.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    policy: Policy | None = None
    value_fn: torch.nn.Module | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            return [row.get(key, float("nan")) for row in self.rows]
        return self.rows[key]

    @property
    def last(self) -> dict[str, Any]:
        return self.rows[-1] if self.rows else {}


class Tracker:
    """Builds History rows, keeps the recent-episode window, drives the tqdm bar."""

    def __init__(self, history: History, steps: int, progress: bool, log: Callable[[dict], Any] | None, desc: str):
        if log is not None and not callable(log):
            raise HarlMiniError(f"log: expected a callable taking one row (dict), got {type(log).__name__}")
        self.history, self.log = history, log
        self.recent: deque[float] = deque(maxlen=RECENT_EPISODES)
        self.recent_len: deque[int] = deque(maxlen=RECENT_EPISODES)
        self.episodes = 0
        self.steps = 0
        self.t0 = time.perf_counter()
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=int(steps), desc=desc, unit="step", unit_scale=True, dynamic_ncols=True)

    def record(self, iteration: int, batch, **metrics) -> dict[str, Any]:
        self.recent.extend(batch.episode_returns)
        self.recent_len.extend(batch.episode_lengths)
        self.episodes += len(batch.episode_returns)
        self.steps += batch.size
        row = {
            "iteration": iteration,
            "steps": self.steps,
            "wall_time": time.perf_counter() - self.t0,
            "episodes": self.episodes,
            "episode_return": sum(self.recent) / len(self.recent) if self.recent else float("nan"),
            "episode_length": sum(self.recent_len) / len(self.recent_len) if self.recent_len else float("nan"),
        }
        row.update({k: (float(v) if isinstance(v, torch.Tensor) else v) for k, v in metrics.items()})
        self.history.rows.append(row)
        if self.bar is not None:
            self.bar.update(batch.size)
            self.bar.set_postfix(ret=f"{row['episode_return']:.1f}", refresh=False)
        if self.log is not None:
            self.log(row)
        return row

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@torch.no_grad()
def evaluate(policy: Policy, env, episodes: int = 10, deterministic: bool = True, seed: int = 12345) -> dict[str, Any]:
    """Run ``episodes`` full episodes and report their undiscounted returns.

    ``env`` is a name (built with one copy per episode, at most 16) or a VecEnv (reset with
    ``seed``; the episodes are taken as the first completed ones of each copy in turn, so
    short episodes are not over-represented). With ``deterministic`` the policy plays its
    mode (argmax / Gaussian mean). Returns ``{"returns", "lengths", "mean", "std"}``.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise HarlMiniError(f"episodes: expected a positive integer, got {episodes!r}")
    device = next(policy.parameters()).device
    own = isinstance(env, str)
    if own:
        env = make_env(env, num_envs=min(episodes, 16), seed=seed, device=device)
    else:
        env.reset(seed)
    per_env = math.ceil(episodes / env.num_envs)
    got: list[list[tuple[float, int]]] = [[] for _ in range(env.num_envs)]
    ep_ret = torch.zeros(env.num_envs, dtype=torch.float64)
    ep_len = torch.zeros(env.num_envs, dtype=torch.long)
    obs = env.obs
    while min(len(g) for g in got) < per_env:
        obs, reward, terminated, truncated, _ = env.step(policy.act(obs, deterministic=deterministic))
        ep_ret += reward.detach().cpu().to(torch.float64)
        ep_len += 1
        for i in torch.nonzero((terminated | truncated).cpu()).flatten().tolist():
            got[i].append((float(ep_ret[i]), int(ep_len[i])))
            ep_ret[i], ep_len[i] = 0.0, 0
    if own:
        env.close()
    pairs = [g[k] for k in range(per_env) for g in got][:episodes]
    returns = [p[0] for p in pairs]
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))
    return {"returns": returns, "lengths": [p[1] for p in pairs], "mean": mean, "std": std}
