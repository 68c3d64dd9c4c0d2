"""The batched step API of every harl_mini *multi-agent* environment (torch tensors).

A :class:`MultiAgentVecEnv` runs ``num_envs`` copies of a cooperative N-agent environment
in lock step. Each agent sees its own observation, a centralised critic may see a global
state, and the team shares one reward. Copies reset automatically *in the same step* in
which their episode ends::

    obs, state = env.reset(seed=0)        # obs: list of N tensors [B, obs_dims[i]]; state [B, state_dim]
    obs, state, reward, terminated, truncated, final_obs, final_state = env.step(actions)

=================  ===================  ===============================================
Returned           Shape                Meaning
=================  ===================  ===============================================
``obs``            N × [B, obs_dims[i]] per-agent observations to act on next (already
                                        the first ones of a new episode where the last
                                        one ended)
``state``          [B, state_dim]       global state for a centralised critic
``reward``         [B]                  the shared team reward r_t
``terminated``     [B] bool             the episode reached a terminal state
``truncated``      [B] bool             the episode was cut by a time limit
``final_obs``      N × [B, obs_dims[i]] what the step really led to: equal to ``obs``
                                        where not done, the last observations (before
                                        the reset) where done
``final_state``    [B, state_dim]       the same for the global state
=================  ===================  ===============================================

``actions`` is a list with one entry per agent: a [B] integer tensor for a
``("discrete", n)`` action space (values 0..n−1), a [B, dim] float tensor for a
``("box", dim)`` one. :meth:`MultiAgentVecEnv.step` validates them (length, shape, dtype,
range, finiteness) and raises :class:`~harl_mini.errors.HarlMiniError` naming the agent.
It also checks what the environment returns (shapes, finiteness). A caller whose actions
are valid by construction (the trainer's own sampler) may pass ``check=False`` to skip
both on most steps; the trainer checks every :data:`CHECK_EVERY`-th step in full and the
whole rollout's observations and rewards once at its end, so a bad value still gets its
clear message, a few steps late at most.

This is the interface the multi-agent adapters implement: the one-state matrix games of
:mod:`harl_mini.envs.matrix` first, later VMAS, PettingZoo and MaMuJoCo. A subclass sets
the attributes in ``__init__`` and implements ``_reset(seed)`` and ``_step(actions)``; the
base class validates actions and outputs and keeps per-copy episode returns and lengths
(``pop_episodes``) and the step index within the current episode (``episode_t``).

**Checkpoints.** :meth:`MultiAgentVecEnv.get_state` returns everything needed to continue
the copies exactly where they are (current observations, episode bookkeeping and whatever
the subclass's ``_get_state`` adds: simulator state, random-generator state), built only
from tensors, numbers, strings, lists and dicts so that ``torch.load(weights_only=True)``
can read it back; :meth:`MultiAgentVecEnv.set_state` restores it. A subclass whose
simulator cannot be captured leaves ``_get_state`` returning None; its ``get_state()``
is then None too, and a resumed run restarts its episodes (documented, not identical).
"""

from __future__ import annotations

import torch

from harl_mini.errors import HarlMiniError

__all__ = ["MultiAgentVecEnv", "positive_int", "as_device", "check_float_dtype", "CHECK_EVERY"]

#: the trainer's rollout checks actions and outputs in full on every k-th step (``check=True``)
CHECK_EVERY = 16

_SPACE_KINDS = ("discrete", "box")
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# -- argument checks shared by the adapters -------------------------------------------------
def positive_int(x, name: str) -> int:
    """``x`` if it is a Python int ≥ 1 (not a bool), else a HarlMiniError naming ``name``."""
    if isinstance(x, bool) or not isinstance(x, int) or x < 1:
        raise HarlMiniError(f"{name}: expected a positive integer, got {x!r}")
    return x


def as_device(device) -> torch.device:
    """``torch.device(device)``, or a HarlMiniError saying why it cannot be used."""
    try:
        return torch.device(device)
    except (TypeError, RuntimeError) as exc:
        raise HarlMiniError(f"device: cannot use {device!r} ({exc})") from None


def check_float_dtype(dtype) -> torch.dtype:
    """``dtype`` if it is a floating torch dtype, else a HarlMiniError."""
    if dtype not in _FLOAT_DTYPES:
        raise HarlMiniError(f"dtype: expected a floating torch dtype, got {dtype!r}")
    return dtype


class MultiAgentVecEnv:
    """Base class; see the module docstring. Subclasses set these attributes in ``__init__``.

    =================  ====================  ================================================
    Attribute          Type                  Meaning
    =================  ====================  ================================================
    ``name``           str                   registry name, e.g. ``"game:xor"``
    ``num_envs``       int                   B, parallel copies
    ``num_agents``     int                   N
    ``obs_dims``       list[int]             per-agent observation sizes
    ``action_spaces``  list[(str, int)]      per agent ``("discrete", n)`` or ``("box", dim)``
    ``state_dim``      int                   size of the global state
    ``device``         torch.device          where every returned tensor lives
    =================  ====================  ================================================
    """

    name: str = "multi-agent env"
    num_envs: int
    num_agents: int
    obs_dims: list[int]
    action_spaces: list[tuple[str, int]]
    state_dim: int
    device: torch.device = torch.device("cpu")

    # -- to implement ---------------------------------------------------------------------
    def _reset(self, seed: int | None):  # pragma: no cover - abstract
        """Return (obs list, state) for fresh episodes in every copy."""
        raise NotImplementedError

    def _step(self, actions: list[torch.Tensor]):  # pragma: no cover - abstract
        """Return (obs, state, reward, terminated, truncated, final_obs, final_state)."""
        raise NotImplementedError

    # -- public API -----------------------------------------------------------------------
    def reset(self, seed: int | None = None):
        """Start fresh episodes in every copy; returns (obs list of [B, obs_i], state [B, state_dim])."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise HarlMiniError(f"seed: expected an integer or None, got {seed!r}")
        obs, state = self._reset(seed)
        self._check_obs(obs, state)
        self.obs, self.state = obs, state
        self.episode_t = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._ep_return = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        self._done_returns: list[float] = []
        self._done_lengths: list[int] = []
        return obs, state

    def step(self, actions, check: bool = True):
        """Advance every copy one step; see the module docstring for what comes back.

        ``check=False`` skips the validation of ``actions`` and of the returned tensors (the
        actions must then be a list of valid tensors on ``device``, e.g. from the trainer's
        sampler); the episode bookkeeping is the same either way."""
        if not hasattr(self, "obs"):
            raise HarlMiniError(f"{self.name}: call reset() before step()")
        if check:
            actions = self.check_actions(actions)
        obs, state, reward, terminated, truncated, final_obs, final_state = self._step(actions)
        if check:
            self._check_outputs(obs, state, reward, terminated, truncated, final_obs, final_state)
        done = terminated | truncated
        self._ep_return += reward
        self.episode_t += 1
        if bool(done.any()):
            idx = torch.nonzero(done).flatten()
            self._done_returns.extend(self._ep_return[idx].tolist())
            self._done_lengths.extend(self.episode_t[idx].tolist())
            self._ep_return[idx] = 0.0
            self.episode_t[idx] = 0
        self.obs, self.state = obs, state
        return obs, state, reward, terminated, truncated, final_obs, final_state

    def _check_outputs(self, obs, state, reward, terminated, truncated, final_obs, final_state) -> None:
        """One clear message if what ``_step`` returned has a wrong shape, dtype or value."""
        self._check_obs(obs, state)
        if final_state is not state or any(f is not o for f, o in zip(final_obs, obs)):  # no copy ended: same objects
            self._check_obs(final_obs, final_state)
        self._check_tensor(reward, (self.num_envs,), "reward")
        for flag, what in ((terminated, "terminated"), (truncated, "truncated")):
            if not isinstance(flag, torch.Tensor) or flag.dtype != torch.bool or tuple(flag.shape) != (self.num_envs,):
                got = f"{flag.dtype} {list(flag.shape)}" if isinstance(flag, torch.Tensor) else type(flag).__name__
                raise HarlMiniError(f"{self.name}: {what} must be a [B] bool tensor, got {got}")

    def check_actions(self, actions) -> list[torch.Tensor]:
        """Validate one action tensor per agent and return them on ``device``.

        Discrete agents: [B] integer tensors with values in 0..n−1. Box agents: [B, dim]
        floating tensors with finite entries. Anything else raises ``HarlMiniError``.
        """
        if isinstance(actions, torch.Tensor) or not isinstance(actions, (list, tuple)):
            raise HarlMiniError(f"{self.name}: actions must be a list with one tensor per agent "
                                f"({self.num_agents} agents), got {type(actions).__name__}")
        if len(actions) != self.num_agents:
            raise HarlMiniError(f"{self.name}: actions must have one entry per agent ({self.num_agents}), "
                                f"got {len(actions)}")
        out = []
        B = self.num_envs
        for i, (a, (kind, size)) in enumerate(zip(actions, self.action_spaces)):
            try:
                a = torch.as_tensor(a, device=self.device)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise HarlMiniError(f"{self.name}: actions[{i}] cannot be read as a tensor ({exc})") from None
            if kind == "discrete":
                if a.dtype == torch.bool or a.is_floating_point() or a.is_complex():
                    raise HarlMiniError(f"{self.name}: actions[{i}] must hold integer actions (agent {i} has "
                                        f"{size} discrete actions), got dtype {a.dtype}")
                if tuple(a.shape) != (B,):
                    raise HarlMiniError(f"{self.name}: actions[{i}] must have shape [{B}] (one action per copy), "
                                        f"got {list(a.shape)}")
                bad = (a < 0) | (a >= size)
                if bool(bad.any()):
                    j = int(torch.nonzero(bad)[0])
                    raise HarlMiniError(f"{self.name}: actions[{i}][{j}] = {int(a[j])} is out of range; agent {i} "
                                        f"has actions 0..{size - 1}")
                out.append(a.long())
            else:
                if not a.is_floating_point():
                    raise HarlMiniError(f"{self.name}: actions[{i}] must be a float tensor (agent {i} has a "
                                        f"box action of size {size}), got dtype {a.dtype}")
                if tuple(a.shape) != (B, size):
                    raise HarlMiniError(f"{self.name}: actions[{i}] must have shape [{B}, {size}], "
                                        f"got {list(a.shape)}")
                if not bool(torch.isfinite(a).all()):
                    raise HarlMiniError(f"{self.name}: actions[{i}] contains NaN or infinite entries")
                out.append(a)
        return out

    def sample_actions(self, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Uniformly random discrete actions and standard-normal box actions, one tensor per agent."""
        dev = generator.device if generator is not None else self.device
        out = []
        for kind, size in self.action_spaces:
            if kind == "discrete":
                a = torch.randint(size, (self.num_envs,), generator=generator, device=dev)
            else:
                a = torch.randn((self.num_envs, size), generator=generator, device=dev)
            out.append(a.to(self.device))
        return out

    # -- checkpoints ----------------------------------------------------------------------
    def _get_state(self) -> dict | None:
        """Subclass hook: the simulator's state (tensors / numbers / lists / dicts), or None
        if it cannot be captured. The default: nothing beyond the base bookkeeping."""
        return {}

    def _set_state(self, state: dict) -> None:
        """Subclass hook: restore what ``_get_state`` returned."""

    def get_state(self) -> dict | None:
        """The copies' full state for a checkpoint (see the module docstring), or None."""
        if not hasattr(self, "obs"):
            raise HarlMiniError(f"{self.name}: call reset() before get_state()")
        inner = self._get_state()
        if inner is None:
            return None
        return {"name": self.name, "num_envs": self.num_envs, "obs": [o.detach().cpu().clone() for o in self.obs],
                "state": self.state.detach().cpu().clone(), "episode_t": self.episode_t.cpu().clone(),
                "ep_return": self._ep_return.cpu().clone(), "done_returns": list(self._done_returns),
                "done_lengths": list(self._done_lengths), "inner": inner}

    def set_state(self, state: dict) -> None:
        """Restore a :meth:`get_state` snapshot taken from an env with the same name and size."""
        if not isinstance(state, dict) or "inner" not in state:
            raise HarlMiniError(f"{self.name}: set_state needs a dict returned by get_state()")
        if state["name"] != self.name or state["num_envs"] != self.num_envs:
            raise HarlMiniError(f"{self.name}: the snapshot is of {state['name']!r} with {state['num_envs']} copies, "
                                f"this env is {self.name!r} with {self.num_envs}")
        self._set_state(state["inner"])
        # copies: step() updates the bookkeeping in place, the snapshot must stay reusable
        self.obs = [o.to(self.device).clone() for o in state["obs"]]
        self.state = state["state"].to(self.device).clone()
        self.episode_t = state["episode_t"].to(self.device).clone()
        self._ep_return = state["ep_return"].to(self.device).clone()
        self._done_returns = list(state["done_returns"])
        self._done_lengths = list(state["done_lengths"])

    def pop_episodes(self) -> tuple[list[float], list[int]]:
        """Team returns and lengths of the episodes completed since the last call (and forget them)."""
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
        spaces = ", ".join(f"{k}({n})" for k, n in self.action_spaces)
        return (f"{type(self).__name__}({self.name!r}, num_envs={self.num_envs}, num_agents={self.num_agents}, "
                f"obs_dims={self.obs_dims}, actions=[{spaces}], state_dim={self.state_dim})")

    # -- checks ---------------------------------------------------------------------------
    def _check_spaces(self) -> None:
        """Validate the attributes a subclass set (call at the end of ``__init__``)."""
        if len(self.obs_dims) != self.num_agents or len(self.action_spaces) != self.num_agents:
            raise HarlMiniError(f"{self.name}: obs_dims and action_spaces need one entry per agent")
        for i, space in enumerate(self.action_spaces):
            if (not isinstance(space, tuple) or len(space) != 2 or space[0] not in _SPACE_KINDS
                    or not isinstance(space[1], int) or space[1] < 1):
                raise HarlMiniError(f"{self.name}: action_spaces[{i}] must be ('discrete', n) or ('box', dim), "
                                    f"got {space!r}")

    def _check_tensor(self, t, shape: tuple[int, ...], what: str) -> None:
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
            got = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise HarlMiniError(f"{self.name}: the environment returned {what} of shape {got}, expected {list(shape)}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = torch.nonzero(~torch.isfinite(t))[0].tolist()
            raise HarlMiniError(f"{self.name}: the environment returned a non-finite {what} "
                                f"({t[tuple(bad)].item()} at index {tuple(bad)})")

    def _check_obs(self, obs, state) -> None:
        if not isinstance(obs, list) or len(obs) != self.num_agents:
            raise HarlMiniError(f"{self.name}: the environment must return a list of {self.num_agents} observations")
        tensors = [*obs, state]
        shapes = [(self.num_envs, d) for d in self.obs_dims] + [(self.num_envs, self.state_dim)]
        if all(isinstance(t, torch.Tensor) and tuple(t.shape) == s and t.is_floating_point()
               for t, s in zip(tensors, shapes)):
            # the common case in one reduction (one device sync); the detailed checks below
            # run only when something is wrong, to name the culprit
            if bool(torch.isfinite(torch.cat([t.reshape(-1) for t in tensors])).all()):
                return
        for i, o in enumerate(obs):
            self._check_tensor(o, shapes[i], f"obs[{i}]")
        self._check_tensor(state, shapes[-1], "state")
