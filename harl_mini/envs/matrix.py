"""``game:<name>``: the one-state cooperative games as batched multi-agent environments.

The first adapter of the :class:`~harl_mini.envs.multi.MultiAgentVecEnv` interface. The
same games whose J, Q^{i_{1:m}} and A^{i_{1:m}} the exact oracle computes
(:mod:`harl_mini.tabular.games`) can be *played* through the ordinary step API, so the
sampled multi-agent algorithms can be checked against exact values.

* :class:`MatrixGameEnv`: any one-state discrete game (a payoff [n_1, …, n_N] or a
  one-state :class:`~harl_mini.tabular.MarkovGame`). The team reward of a step is
  r(a^1, …, a^N). With ``episode_length=1`` (the default) every step is a whole episode,
  so ``terminated`` is True on every step and the copies reset at once; with
  ``episode_length=H`` the game is repeated H times and the episode terminates after H
  steps.
* :class:`ContinuousProductGameEnv`: the a¹a² game of Kuba et al. (2022, Figure 1),
  N agents with 1-D Box actions and team reward Π_i a^i.

Observations carry no information in a one-state game: with ``obs="constant"`` every agent
sees [1.0]; with ``obs="agent_id"`` agent i sees the one-hot e_i (N entries), the usual
way to let a *shared* policy act differently per agent. The global state is [1.0]. The
games are deterministic, so ``seed`` has no effect on them (it is accepted for the API).

``make("prop1-4", num_envs=64)`` builds ``MatrixGameEnv(make_game("prop1-4"), 64)``;
``make("a1a2")`` the continuous game. Names are those of the one-state games of
:func:`harl_mini.tabular.make_game`, ``"a1a2"``, or **your own game**: a payoff file
``game:my_game.npy`` (or ``.csv`` / ``.json``; one axis per agent, agents may have different
action counts; :func:`harl_mini.envs.markov.load_payoff_file` says the formats). Multi-state
games are :mod:`harl_mini.envs.markov`'s (``markov:two-step``, ``markov:my_game.npz``).
"""

from __future__ import annotations

import math

import torch

from harl_mini.envs.multi import MultiAgentVecEnv, as_device, check_float_dtype, positive_int
from harl_mini.errors import HarlMiniError, as_float64, check_choice

__all__ = ["MatrixGameEnv", "ContinuousProductGameEnv", "make", "available_games"]

_OBS_MODES = ("constant", "agent_id")


class _OneStateEnv(MultiAgentVecEnv):
    """Shared plumbing: constant or agent-id observations, constant state, episode counter."""

    def _setup(self, num_agents: int, num_envs: int, device, episode_length: int, obs: str, dtype) -> None:
        self.num_envs = positive_int(num_envs, "num_envs")
        self.num_agents = num_agents
        self.episode_length = positive_int(episode_length, "episode_length")
        if not isinstance(obs, str):
            raise HarlMiniError(f"obs: expected one of {', '.join(_OBS_MODES)}, got {obs!r}")
        check_choice(obs, _OBS_MODES, "observation mode")
        check_float_dtype(dtype)
        self.device = as_device(device)
        self.obs_mode, self.dtype = obs, dtype
        if obs == "constant":
            self.obs_dims = [1] * num_agents
            self._obs = [torch.ones((self.num_envs, 1), dtype=dtype, device=self.device) for _ in range(num_agents)]
        else:
            eye = torch.eye(num_agents, dtype=dtype, device=self.device)
            self.obs_dims = [num_agents] * num_agents
            self._obs = [eye[i].expand(self.num_envs, num_agents).contiguous() for i in range(num_agents)]
        self.state_dim = 1
        self._state = torch.ones((self.num_envs, 1), dtype=dtype, device=self.device)

    def _observe(self):
        return [o.clone() for o in self._obs], self._state.clone()

    def _reset(self, seed):
        return self._observe()

    def _finish_step(self, reward: torch.Tensor):
        terminated = self.episode_t + 1 >= self.episode_length
        truncated = torch.zeros_like(terminated)
        obs, state = self._observe()
        final_obs, final_state = self._observe()
        return obs, state, reward, terminated, truncated, final_obs, final_state


class MatrixGameEnv(_OneStateEnv):
    """A one-state discrete cooperative game behind the multi-agent step API.

    ===================  =================  ==============================================
    Argument             Type               Meaning
    ===================  =================  ==============================================
    ``game_or_payoff``   MarkovGame|array   a one-state game, or the payoff [n_1..n_N]
    ``num_envs``         int                B parallel copies
    ``device``           str/device         where every tensor lives
    ``episode_length``   int                H plays per episode (terminated after H)
    ``obs``              str                ``"constant"`` ([1.0]) or ``"agent_id"`` (e_i)
    ``seed``             int                accepted for the API (the game is deterministic)
    ``dtype``            dtype              float dtype of observations, state and reward
    ===================  =================  ==============================================

    Agent i has the action space ``("discrete", n_i)``; the reward of a step is
    payoff[a^1, …, a^N] for every copy, shared by the team.
    """

    def __init__(self, game_or_payoff, num_envs: int = 1, device="cpu", episode_length: int = 1,
                 obs: str = "constant", seed: int = 0, dtype: torch.dtype = torch.float32, name: str | None = None):
        from harl_mini.tabular.game import MarkovGame

        if isinstance(game_or_payoff, MarkovGame):
            if game_or_payoff.num_states != 1:
                raise HarlMiniError(f"game_or_payoff: MatrixGameEnv needs a one-state game, got "
                                    f"{game_or_payoff.num_states} states (use a multi-state environment)")
            payoff, label = game_or_payoff.R[0], game_or_payoff.name or "custom"
        else:
            payoff, label = as_float64(game_or_payoff, "game_or_payoff"), "custom"
            if payoff.dim() < 1 or payoff.numel() == 0:
                raise HarlMiniError(f"game_or_payoff: expected a payoff with one axis per agent, got shape "
                                    f"{list(payoff.shape)}")
        self.name = name or f"game:{label}"
        self._setup(payoff.dim(), num_envs, device, episode_length, obs, dtype)
        self.action_counts = tuple(int(n) for n in payoff.shape)
        self.action_spaces = [("discrete", n) for n in self.action_counts]
        self.payoff = payoff.detach().to(self.device)  # float64, for reference
        self._flat = payoff.detach().reshape(-1).to(self.device, dtype)
        strides = [math.prod(self.action_counts[i + 1:]) for i in range(self.num_agents)]
        self._strides = torch.tensor(strides, dtype=torch.long, device=self.device)
        self._check_spaces()
        self.reset(seed)

    def _step(self, actions):
        index = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        for a, stride in zip(actions, self._strides):
            index = index + a * stride
        return self._finish_step(self._flat[index])


class ContinuousProductGameEnv(_OneStateEnv):
    """The a¹a² game: N agents with 1-D Box actions and team reward Π_i a^i.

    ===================  =================  ==============================================
    Argument             Type               Meaning
    ===================  =================  ==============================================
    ``num_envs``         int                B parallel copies
    ``device``           str/device         where every tensor lives
    ``num_agents``       int                N >= 2 (2: the a¹a² game of Kuba et al.)
    ``episode_length``   int                H plays per episode (terminated after H)
    ``obs``              str                ``"constant"`` or ``"agent_id"``
    ``seed``             int                accepted for the API (the game is deterministic)
    ``dtype``            dtype              float dtype of observations, state and reward
    ===================  =================  ==============================================

    With Gaussian policies N(μ^i, 1) the expected reward is Π_i μ^i
    (:func:`harl_mini.tabular.updates.a1a2_objective`). Actions are unbounded.
    """

    def __init__(self, num_envs: int = 1, device="cpu", num_agents: int = 2, episode_length: int = 1,
                 obs: str = "constant", seed: int = 0, dtype: torch.dtype = torch.float32, name: str | None = None):
        if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 2:
            raise HarlMiniError(f"num_agents: expected an integer >= 2, got {num_agents!r}")
        self.name = name or ("game:a1a2" if num_agents == 2 else f"game:a1a2(N={num_agents})")
        self._setup(num_agents, num_envs, device, episode_length, obs, dtype)
        self.action_spaces = [("box", 1)] * num_agents
        self._check_spaces()
        self.reset(seed)

    def _step(self, actions):
        reward = torch.stack([a[:, 0] for a in actions], dim=1).prod(dim=1)
        return self._finish_step(reward.to(self.dtype))


def available_games() -> list[str]:
    """The names ``make`` accepts (sized games as ``name-<n>``), and ``<file>.npy|.csv|.json``."""
    from harl_mini.tabular.games import GAMES, MULTI_STATE_GAMES, SIZED_GAMES

    return ([f"{g}-<n>" if g in SIZED_GAMES else g for g in GAMES if g not in MULTI_STATE_GAMES]
            + ["a1a2", "<payoff file>.npy|.csv|.json"])


def make(name: str, num_envs: int = 1, seed: int = 0, device="cpu", episode_length: int = 1,
         obs: str = "constant", dtype: torch.dtype = torch.float32, **game_kwargs) -> MultiAgentVecEnv:
    """Registry entry for ``game:<name>``: a named one-state game, or ``a1a2``, as a batched env.

    ``name`` is any :func:`harl_mini.tabular.make_game` name (``xor``, ``prop1-4``,
    ``permutation-3``, ``climbing``, ``penalty``, ``zhong-example1``) or ``a1a2``; extra
    keywords go to the game (``k=`` for ``penalty``, ``num_agents=`` for ``a1a2``).
    Unknown names raise :class:`~harl_mini.errors.HarlMiniError` listing what exists.
    """
    from harl_mini.envs.markov import PAYOFF_SUFFIXES, load_payoff_file
    from harl_mini.tabular.games import MULTI_STATE_GAMES, make_game

    if not isinstance(name, str) or not name:
        raise HarlMiniError(f"game: expected a game name; available: {', '.join(available_games())}")
    if name.endswith(PAYOFF_SUFFIXES):  # your own game: a payoff file, one axis per agent
        if game_kwargs:
            raise HarlMiniError(f"game:{name}: a payoff file takes no game keywords, got {sorted(game_kwargs)}")
        return MatrixGameEnv(load_payoff_file(name), num_envs, device, episode_length, obs, seed, dtype,
                             name=f"game:{name}")
    if name.split("-")[0] in MULTI_STATE_GAMES or name in MULTI_STATE_GAMES:
        raise HarlMiniError(f"game:{name} has more than one state; play it as markov:{name}")
    if name == "a1a2":
        return ContinuousProductGameEnv(num_envs, device, episode_length=episode_length, obs=obs, seed=seed,
                                        dtype=dtype, **game_kwargs)
    try:
        game = make_game(name, **game_kwargs)
    except HarlMiniError as exc:
        if str(exc).startswith("unknown game"):
            raise HarlMiniError(f"unknown game {name!r}; available: {', '.join(available_games())}") from None
        raise
    return MatrixGameEnv(game, num_envs, device, episode_length, obs, seed, dtype, name=f"game:{name}")
