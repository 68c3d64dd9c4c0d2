r"""``markov:<name or file>``: any finite cooperative Markov game of the exact layer, batched.

The multi-state sibling of :mod:`harl_mini.envs.matrix`. A
:class:`~harl_mini.tabular.MarkovGame` (P [S, n_1..n_N, S], R [S, n_1..n_N], γ, ρ0) is
*played* through the multi-agent step API, so the sampled algorithms can train on it while
the oracle knows its exact J* and the exact J of any policy they learn
(:func:`harl_mini.tabular.game_objective`, reported by the trainer as ``j_exact``).

=====================  ==================================================================
Piece                  What this adapter does
=====================  ==================================================================
observations           ``obs="state"`` (default): every agent sees the one-hot state e_s
                       [S] (a linear policy on it is a tabular policy π^i(a^i | s));
                       ``obs="state+id"``: e_s followed by the one-hot agent id
state                  the one-hot state e_s [S]
reward                 R[s, a^1, …, a^N], shared by the team
transitions            s' ∼ P(· | s, a), s_0 ∼ ρ0, from one seeded generator on ``device``
terminated             the step entered an *absorbing* state: one that every joint action
                       leaves to itself with zero reward (the usual way to write an episode
                       end in a discounted game; the two-step game ends so). The game's
                       exact values are unchanged by stopping there.
truncated              ``time_limit=H``: the episode reached H steps without terminating;
                       a game without absorbing states needs one (else no episode ends)
auto-reset             in the same step; ``final_obs`` / ``final_state`` hold s'
=====================  ==================================================================

Names: ``markov:two-step`` (and any other multi-state game of
:func:`harl_mini.tabular.make_game`), or a file ``markov:path/to/game.npz`` / ``.json``
holding ``P``, ``R`` and optionally ``rho0``, ``gamma`` (default 0.99) and ``name``
(:func:`load_game_file`; one axis per agent, heterogeneous action counts allowed). A bad
file gives one line naming the file and what is wrong (shape, NaN, a row of P that does not
sum to 1).

The discount is the game's: the learner should use the same γ (the ``markov:`` preset of
:data:`harl_mini.marl.runner.PRESETS` does not know it; pass ``--set gamma=…`` if it differs
from 0.99), and J* (:func:`harl_mini.tabular.optimal_value`) is discounted by it, while
``episode_return`` is the undiscounted sum of rewards.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from harl_mini.envs.multi import MultiAgentVecEnv, as_device, check_float_dtype, positive_int
from harl_mini.errors import HarlMiniError, check_choice

__all__ = ["MarkovGameEnv", "load_game_file", "load_payoff_file", "make"]

_OBS_MODES = ("state", "state+id")
GAME_SUFFIXES = (".npz", ".json")
PAYOFF_SUFFIXES = (".npy", ".csv", ".json")


# ---------------------------------------------------------------------------------------
# Game files
# ---------------------------------------------------------------------------------------


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise HarlMiniError(f"{path}: cannot read the file ({exc})") from None
    except ValueError as exc:
        raise HarlMiniError(f"{path}: not valid JSON ({exc})") from None


def _array(value, path: Path, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise HarlMiniError(f"{path}: {what} must be a rectangular array of numbers (one axis per agent)") from None
    if arr.dtype == object or arr.size == 0:
        raise HarlMiniError(f"{path}: {what} must be a non-empty rectangular array of numbers")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise HarlMiniError(f"{path}: {what} contains {arr[idx]} at index {idx}; every entry must be a finite number")
    return arr


def load_payoff_file(path) -> np.ndarray:
    """A payoff [n_1, …, n_N] (one axis per agent, agent 1 first) from ``.npy``, ``.csv`` or ``.json``.

    * ``.npy``: the array itself;
    * ``.csv``: two agents — a grid of numbers, rows = agent 1's actions, columns = agent 2's;
      or any number of agents in long form — a header ``a1,a2,…,aN,reward`` and one row per
      joint action (every joint action exactly once);
    * ``.json``: a nested list, or ``{"payoff": nested list}``.
    """
    path = Path(path)
    if path.suffix not in PAYOFF_SUFFIXES:
        raise HarlMiniError(f"{path}: a payoff file must end in {', '.join(PAYOFF_SUFFIXES)}")
    if not path.is_file():
        raise HarlMiniError(f"{path}: no such file")
    if path.suffix == ".npy":
        try:
            raw = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise HarlMiniError(f"{path}: not a numpy .npy array ({exc})") from None
        return _array(raw, path, "the payoff")
    if path.suffix == ".json":
        raw = _read_json(path)
        if isinstance(raw, dict):
            if "payoff" not in raw:
                raise HarlMiniError(f"{path}: expected a nested list or an object with a \"payoff\" key")
            raw = raw["payoff"]
        return _array(raw, path, "the payoff")
    rows = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not rows:
        raise HarlMiniError(f"{path}: the file is empty")
    cells = [[c.strip() for c in row.split(",")] for row in rows]
    header = cells[0]
    if all(_is_number(c) for c in header):
        if len({len(r) for r in cells}) != 1:
            raise HarlMiniError(f"{path}: every row of a payoff grid needs the same number of columns")
        return _array([[float(c) for c in r] for r in cells], path, "the payoff")
    if len(header) < 2 or header[-1].lower() != "reward":
        raise HarlMiniError(f"{path}: a CSV payoff is a grid of numbers, or a header 'a1,…,aN,reward' with one "
                            "row per joint action")
    data = cells[1:]
    n = len(header) - 1
    try:
        joint = [tuple(int(c) for c in r[:n]) for r in data]
        reward = [float(r[n]) for r in data]
    except (ValueError, IndexError):
        raise HarlMiniError(f"{path}: every row needs {n} integer actions and a reward") from None
    if any(a < 0 for j in joint for a in j):
        raise HarlMiniError(f"{path}: actions are numbered from 0")
    shape = tuple(max(j[i] for j in joint) + 1 for i in range(n))
    if len(set(joint)) != len(joint) or len(joint) != int(np.prod(shape)):
        raise HarlMiniError(f"{path}: every joint action of the {'×'.join(map(str, shape))} game must appear exactly "
                            f"once (found {len(joint)} rows, {len(set(joint))} distinct)")
    payoff = np.zeros(shape)
    for j, r in zip(joint, reward):
        payoff[j] = r
    return _array(payoff, path, "the payoff")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_game_file(path):
    """A :class:`~harl_mini.tabular.MarkovGame` from ``.npz`` (arrays ``P``, ``R``, optional ``rho0``,
    ``gamma``) or ``.json`` (the same keys, nested lists, optional ``name``).

    ``P`` is [S, n_1, …, n_N, S] (P(s' | s, a^1, …, a^N)), ``R`` is [S, n_1, …, n_N] or [S],
    ``gamma`` defaults to 0.99 and ``rho0`` to uniform. Errors name the file.
    """
    from harl_mini.tabular import MarkovGame

    path = Path(path)
    if path.suffix not in GAME_SUFFIXES:
        raise HarlMiniError(f"{path}: a Markov game file must end in {', '.join(GAME_SUFFIXES)}")
    if not path.is_file():
        raise HarlMiniError(f"{path}: no such file")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                raw = {k: f[k] for k in f.files}
        except (OSError, ValueError) as exc:
            raise HarlMiniError(f"{path}: not a numpy .npz archive ({exc})") from None
    else:
        raw = _read_json(path)
        if not isinstance(raw, dict):
            raise HarlMiniError(f"{path}: expected an object with keys P, R (and optionally rho0, gamma, name)")
    unknown = set(raw) - {"P", "R", "rho0", "gamma", "name"}
    missing = {"P", "R"} - set(raw)
    if missing or unknown:
        raise HarlMiniError(f"{path}: " + "; ".join(
            ([f"missing {', '.join(sorted(missing))}"] if missing else [])
            + ([f"unknown key(s) {', '.join(sorted(unknown))}"] if unknown else []))
            + " (keys: P [S, n_1..n_N, S], R [S, n_1..n_N] or [S], optional rho0 [S], gamma, name)")
    P, R = _array(raw["P"], path, "P"), _array(raw["R"], path, "R")
    rho0 = None if raw.get("rho0") is None else _array(raw["rho0"], path, "rho0")
    gamma = float(np.asarray(raw.get("gamma", 0.99)))
    name = str(raw.get("name", path.stem)) if not isinstance(raw.get("name"), np.ndarray) else str(raw["name"])
    try:
        return MarkovGame(torch.from_numpy(P), torch.from_numpy(R), gamma,
                          None if rho0 is None else torch.from_numpy(rho0), name)
    except HarlMiniError as exc:
        raise HarlMiniError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------------------
# The environment
# ---------------------------------------------------------------------------------------


class MarkovGameEnv(MultiAgentVecEnv):
    """B copies of a :class:`~harl_mini.tabular.MarkovGame` (see the module docstring).

    ================  ===========  =================================================
    Argument          Type         Meaning
    ================  ===========  =================================================
    ``game``          MarkovGame   P, R, γ, ρ0
    ``num_envs``      int          B parallel copies
    ``seed``          int          seed of the env's generator
    ``device``        str/device   where every tensor lives
    ``time_limit``    int|None     H: truncate an episode after H steps
    ``obs``           str          ``"state"`` or ``"state+id"``
    ``dtype``         dtype        of observations, state and reward
    ================  ===========  =================================================
    """

    def __init__(self, game, num_envs: int = 1, seed: int = 0, device="cpu", time_limit: int | None = None,
                 obs: str = "state", dtype: torch.dtype = torch.float32, name: str | None = None):
        from harl_mini.tabular import MarkovGame

        if not isinstance(game, MarkovGame):
            raise HarlMiniError(f"game: expected a MarkovGame, got {type(game).__name__}")
        self.game = game
        self.name = name or f"markov:{game.name or 'custom'}"
        self.num_envs = positive_int(num_envs, "num_envs")
        self.time_limit = None if time_limit is None else positive_int(time_limit, "time_limit")
        if not isinstance(obs, str):
            raise HarlMiniError(f"obs: expected one of {', '.join(_OBS_MODES)}, got {obs!r}")
        check_choice(obs, _OBS_MODES, "observation mode")
        self.obs_mode, self.dtype = obs, check_float_dtype(dtype)
        self.device = as_device(device)
        S, N = game.num_states, game.num_agents
        self.num_agents = N
        self.action_counts = game.action_counts
        self.action_spaces = [("discrete", n) for n in self.action_counts]
        self.state_dim = S
        self.obs_dims = [S + (N if obs == "state+id" else 0)] * N
        P = game.P.reshape(S, -1, S).to(self.device)                  # [S, A_joint, S]
        self._cdf_P = (P.cumsum(-1) / P.sum(-1, keepdim=True).clamp_min(1e-300))
        self._cdf_rho0 = game.rho0.to(self.device).cumsum(-1)
        self._R = game.R.reshape(S, -1).to(self.device, dtype)        # [S, A_joint]
        self.absorbing = self._absorbing_states()                      # [S] bool
        if self.time_limit is None and not bool(self.absorbing.any()):
            raise HarlMiniError(f"{self.name}: the game has no absorbing state, so no episode would ever end; "
                                "pass time_limit=H (e.g. --env-set time_limit=50)")
        strides = [int(np.prod(self.action_counts[i + 1:])) for i in range(N)]
        self._strides = torch.tensor(strides, dtype=torch.long, device=self.device)
        self._eye = torch.eye(S, dtype=dtype, device=self.device)
        self._ids = torch.eye(N, dtype=dtype, device=self.device)
        self._g = torch.Generator(device=self.device)
        self._check_spaces()
        self.reset(seed)

    def _absorbing_states(self) -> torch.Tensor:
        S = self.game.num_states
        P = self.game.P.reshape(S, -1, S)
        stay = P[torch.arange(S), :, torch.arange(S)]                  # [S, A]: P(s | s, a)
        return ((stay == 1.0).all(-1) & (self.game.R.reshape(S, -1) == 0.0).all(-1)).to(self.device)

    def _sample(self, cdf: torch.Tensor) -> torch.Tensor:
        u = torch.rand(cdf.shape[:-1] + (1,), generator=self._g, device=self.device, dtype=cdf.dtype)
        return torch.searchsorted(cdf, u).squeeze(-1).clamp_max(cdf.shape[-1] - 1)

    def _observe(self, s: torch.Tensor):
        onehot = self._eye[s]
        if self.obs_mode == "state":
            return [onehot] * self.num_agents, onehot
        return [torch.cat([onehot, self._ids[i].expand(len(s), -1)], 1) for i in range(self.num_agents)], onehot

    def _start(self, n: int) -> torch.Tensor:
        s = self._sample(self._cdf_rho0.expand(n, -1).contiguous())
        # a start in an absorbing state would end at once: there is nothing to play
        return s

    def _reset(self, seed):
        if seed is not None:
            self._g.manual_seed(int(seed))
        self.s = self._start(self.num_envs)
        return self._observe(self.s)

    def _step(self, actions):
        joint = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        for a, stride in zip(actions, self._strides):
            joint = joint + a * stride
        reward = self._R[self.s, joint]
        s_next = self._sample(self._cdf_P[self.s, joint])
        terminated = self.absorbing[s_next]
        truncated = ~terminated & (self.episode_t + 1 >= self.time_limit) if self.time_limit is not None \
            else torch.zeros_like(terminated)
        final_obs, final_state = self._observe(s_next)
        done = terminated | truncated
        if bool(done.any()):
            s_next = torch.where(done, self._start(self.num_envs), s_next)
            obs, state = self._observe(s_next)
        else:
            obs, state = final_obs, final_state
        self.s = s_next
        return obs, state, reward, terminated, truncated, final_obs, final_state

    def policy_tables(self, probs) -> list[torch.Tensor]:
        """Per-agent tables π^i[s, a^i] from ``probs(i, obs_i) -> [S, n_i]`` evaluated on every state's
        observation (what :func:`harl_mini.tabular.game_objective` needs)."""
        states = torch.arange(self.game.num_states, device=self.device)
        obs, _ = self._observe(states)
        tables = [probs(i, obs[i]).to(torch.float64).cpu() for i in range(self.num_agents)]
        return [t / t.sum(-1, keepdim=True) for t in tables]  # float32 rows sum to 1 only to ~1e-7

    def _get_state(self):
        return {"s": self.s.cpu().clone(), "generator": self._g.get_state()}

    def _set_state(self, state):
        self.s = state["s"].to(self.device).clone()
        self._g.set_state(state["generator"])


def make(name: str, num_envs: int = 1, seed: int = 0, device="cpu", time_limit: int | None = None,
         obs: str = "state", dtype: torch.dtype = torch.float32, **game_kwargs) -> MarkovGameEnv:
    """Registry entry for ``markov:<name or file>``: a named multi-state game or a game file."""
    from harl_mini.tabular import make_game

    if not isinstance(name, str) or not name:
        raise HarlMiniError("markov: expected a game name (e.g. markov:two-step) or a file (markov:game.npz)")
    if name.endswith(GAME_SUFFIXES):
        if game_kwargs:
            raise HarlMiniError(f"markov:{name}: a game file takes no game keywords, got {sorted(game_kwargs)}")
        game = load_game_file(name)
    else:
        game = make_game(name, **game_kwargs)
    return MarkovGameEnv(game, num_envs, seed, device, time_limit, obs, dtype, name=f"markov:{name}")
