r"""``mpe:<scenario>`` and ``pettingzoo:<module>``: PettingZoo parallel environments, batched.

Two adapters of the :class:`~harl_mini.envs.multi.MultiAgentVecEnv` interface. Both keep
B copies in *this* process: on a 2-core machine worker processes cost more in pickling
and context switches than they give.

* :class:`PettingZooVecEnv` drives a Python list of B copies of any PettingZoo
  ``ParallelEnv`` through its public ``reset``/``step`` API.
  ``make("mpe2.simple_spread_v3")`` (``pettingzoo:mpe2.simple_spread_v3``) imports the
  module and builds the copies with its ``parallel_env(**kwargs)``.
* :class:`MPEVecEnv` runs the four cooperative MPE2 scenarios that HARL supports
  (``simple``, ``simple_spread``, ``simple_speaker_listener``, ``simple_reference``) as
  numpy arrays [B, entities, 2]. It recomputes MPE's physics, observations and rewards for
  all copies at once instead of walking PettingZoo's AEC→parallel conversion, its
  order-enforcing and bounds-checking wrappers and the per-entity Python objects.
  It performs the same floating-point operations in the same order, so it returns
  **bit-identical** observations, states, rewards and flags to ``mpe2.<scenario>.parallel_env``
  for the same seeds and actions (``tests/test_env_pettingzoo.py`` checks this, discrete
  and continuous). Resets call the scenario's own ``reset_world`` with each copy's numpy
  generator, so the start states come from MPE2's code too.
  ``make_mpe("simple_spread")`` (``mpe:simple_spread``) uses it. Scenarios or options it
  does not cover (the competitive scenarios, ``curriculum``, partial observability) fall
  back to :class:`PettingZooVecEnv` (``fast=None``, the default). ``fast=False`` always
  takes the plain path, and ``fast=True`` raises an error when the fast path cannot be used.

==================  =====================================================================
Returned            Meaning (see :mod:`harl_mini.envs.multi` for shapes)
==================  =====================================================================
``obs[i]``          agent i's observation as float32, flattened. Agents follow the env's
                    ``possible_agents`` order. Sizes may differ between agents
                    (``simple_speaker_listener``: speaker 3, listener 11)
``state``           ``env.state()`` when the env provides it (MPE: all agents'
                    observations concatenated), else the observations concatenated
``reward``          the **team reward: the sum over agents of every agent's reward**
``terminated``      some agent of the copy reported ``terminations[agent]``
``truncated``       some agent reported ``truncations[agent]`` and none terminated
``final_obs`` ...   the observations and state the step led to (before an auto-reset)
==================  =====================================================================

================  =======================================================================
Convention        Rule
================  =======================================================================
action spaces     ``Discrete(n)`` → ``("discrete", n)`` (the ``start`` offset is added
                  back); ``Box`` → ``("box", prod(shape))``, and the adapter **clips**
                  actions to the Box bounds (MPE continuous: [0, 1]). Other spaces are
                  refused
team reward       Σ_i r^i, HARL's MPE convention (``pettingzoo_mpe_env.py`` gives every
                  agent the sum of all agents' rewards), so returns can be compared with
                  HARL's published MPE curves. On ``simple_spread`` (``local_ratio`` 0.5)
                  that is 3 × (½ global + ½ own collision penalty) per step. An episode
                  return is the sum of these team rewards over its steps
episode end       a copy's episode ends as soon as **any** agent's does. The tensors have
                  a fixed slot per agent, so an agent cannot leave while the others go on.
                  ``terminated`` takes precedence over ``truncated`` when both occur in one
                  step. MPE never terminates unless ``terminate_on_success=True``
                  (``simple_spread``). Its time limit is a truncation: with
                  ``max_cycles=25`` (the default, HARL's episode length) the 25th step
                  has ``truncated=True`` and ``terminated=False``
auto-reset        a copy that ends resets in the same step. ``final_obs``/``final_state``
                  keep what the step led to. When no copy ended, they are the same tensor
                  objects as ``obs``/``state``, so treat them as read-only
seeding           the first reset (``reset(seed)``, done by ``make``) seeds copy b with
                  ``seed + b``. Each later reset of a copy continues that copy's own
                  generator, with no reseeding. The same seed and the same actions give
                  the same trajectories
checkpoints       :class:`MPEVecEnv` captures every copy's entity positions, velocities,
                  utterances, goals, landmark colours, step counter and the
                  ``bit_generator.state`` of its numpy generator (ints and strings), so
                  ``get_state``/``set_state`` resume exactly and the snapshot loads with
                  ``torch.load(weights_only=True)``. A generic PettingZoo env cannot be
                  captured: its ``get_state()`` is None
================  =======================================================================

**Speed.** These are env-only rates in joint env-steps/s (B copies × vector steps/s).
Actions were uniformly random, from ``sample_actions``, with 1 torch/BLAS thread
(``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``), on ``simple_spread`` (3 agents,
``max_cycles=25``). Each figure is the best of two 1.5-second runs on this project's
2-core CPU machine. The machine was shared (load 1.8–2.6), so the ranges are over
repeated sessions. *plain* is ``mpe2.simple_spread_v3.parallel_env`` alone: one env,
numpy actions and ``env.state()`` on every step. ``pettingzoo:`` is
:class:`PettingZooVecEnv` over that env, and ``mpe:`` is :class:`MPEVecEnv`. The adapter
rows include harl_mini's action and output checks and the torch conversion.

===========================  ============  ============  ============  ============
simple_spread                plain         B = 1         B = 16        B = 32
===========================  ============  ============  ============  ============
discrete, ``pettingzoo:``    2,400–4,000   1,500–2,100   2,200–3,400   2,100–2,900
discrete, ``mpe:``                         2,800–5,100   36k–61k       65k–110k
continuous, ``pettingzoo:``  2,400–3,700   1,100–2,200   1,800–3,200   1,800–2,200
continuous, ``mpe:``                       2,400–4,700   36k–60k       42k–108k
===========================  ============  ============  ============  ============

The ``mpe:`` rate grows with B because each numpy call serves every copy. At B = 1 the
fixed cost of a step dominates: validation and tensor creation take about half of it.
End to end, ``train("happo", "mpe:simple_spread", num_envs=20, num_steps=200)`` ran at
about 11,000 env-steps/s under the same conditions, policy inference and updates
included.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import torch

from harl_mini.envs.multi import MultiAgentVecEnv, as_device, positive_int
from harl_mini.errors import HarlMiniError

__all__ = ["PettingZooVecEnv", "MPEVecEnv", "make", "make_mpe", "MPE_SCENARIOS", "FAST_MPE_SCENARIOS"]

#: ``mpe:<name>`` → the mpe2 module (latest version of each scenario in mpe2 1.1)
MPE_SCENARIOS: dict[str, str] = {
    "simple": "simple_v3",
    "simple_spread": "simple_spread_v3",
    "simple_speaker_listener": "simple_speaker_listener_v4",
    "simple_reference": "simple_reference_v3",
    "simple_adversary": "simple_adversary_v3",
    "simple_crypto": "simple_crypto_v3",
    "simple_push": "simple_push_v3",
    "simple_tag": "simple_tag_v3",
    "simple_world_comm": "simple_world_comm_v3",
    "simple_formation": "simple_formation_v1",
    "simple_line": "simple_line_v1",
    "collect_treasure": "collect_treasure_v1",
}

#: the scenarios :class:`MPEVecEnv` runs vectorised (HARL's four MPE tasks)
FAST_MPE_SCENARIOS = ("simple", "simple_spread", "simple_speaker_listener", "simple_reference")

_PIP_HINT = "pip install pettingzoo==1.27.0 mpe2==1.1.1"


# -- small helpers --------------------------------------------------------------------------
def _import(module: str, what: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = (exc.name or module).split(".")[0]
        if top in ("mpe2", "pettingzoo"):
            raise HarlMiniError(f"{what} needs PettingZoo and MPE2, which are not installed: {_PIP_HINT}") from None
        if exc.name and module.startswith(exc.name):
            raise HarlMiniError(f"{what}: no module named {exc.name!r} (is its package installed? "
                                f"pip install {top})") from None
        raise HarlMiniError(f"{what}: importing {module!r} failed: {exc} (pip install {exc.name})") from None


def _action_space(space, who: str):
    """(kind, size, converter info) for a gymnasium Discrete or Box action space."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return ("discrete", int(space.n)), int(space.start)
    if isinstance(space, spaces.Box):
        dim = int(math.prod(space.shape))
        low = np.asarray(space.low, dtype=np.float32).reshape(-1)
        high = np.asarray(space.high, dtype=np.float32).reshape(-1)
        return ("box", dim), (low, high, tuple(space.shape), space.dtype)
    raise HarlMiniError(f"{who}: action space {space!r} is not supported (only Discrete and Box)")


def _obs_size(space, who: str) -> int:
    from gymnasium import spaces

    if not isinstance(space, spaces.Box):
        raise HarlMiniError(f"{who}: observation space {space!r} is not supported (only Box, flattened)")
    return int(math.prod(space.shape))


def _to_torch(arrays: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    out = [torch.from_numpy(a) for a in arrays]
    if device.type != "cpu":
        out = [t.to(device) for t in out]
    return out


# -- the generic path -----------------------------------------------------------------------
class PettingZooVecEnv(MultiAgentVecEnv):
    """B copies of any PettingZoo ``ParallelEnv`` in one process.

    ===================  ==============  ===========================================
    Argument             Type            Meaning
    ===================  ==============  ===========================================
    ``env_fn``           callable        ``env_fn()`` builds one ParallelEnv
    ``num_envs``         int             B copies
    ``seed``             int             copy b is first reset with ``seed + b``
    ``device``           str/device      where returned tensors live
    ``name``             str             registry name shown in messages
    ===================  ==============  ===========================================

    Agents are the env's ``possible_agents`` in order. Observations must be Box spaces
    (flattened); actions Discrete or Box. See the module docstring for the rules.
    """

    def __init__(self, env_fn, num_envs: int = 1, seed: int = 0, device="cpu", name: str = "pettingzoo:env"):
        self.name = name
        self.num_envs = positive_int(num_envs, "num_envs")
        self.device = as_device(device)
        if not callable(env_fn):
            raise HarlMiniError(f"{name}: env_fn must be a callable that builds a ParallelEnv")
        self.envs = [env_fn() for _ in range(self.num_envs)]
        env = self.envs[0]
        if not hasattr(env, "possible_agents") or not hasattr(env, "step"):
            raise HarlMiniError(f"{name}: env_fn() returned {type(env).__name__}, not a PettingZoo ParallelEnv")
        self.agents = list(env.possible_agents)
        self.num_agents = len(self.agents)
        self.obs_dims = [_obs_size(env.observation_space(a), f"{name}: agent {a!r}") for a in self.agents]
        spaces_, self._act_info = [], []
        for a in self.agents:
            space, info = _action_space(env.action_space(a), f"{name}: agent {a!r}")
            spaces_.append(space)
            self._act_info.append(info)
        self.action_spaces = spaces_
        # does the env provide a global state?  (ParallelEnv.state raises NotImplementedError)
        env.reset(seed=seed)
        try:
            s = np.asarray(env.state(), dtype=np.float32).reshape(-1)
            self._has_state, self.state_dim = True, int(s.shape[0])
        except (NotImplementedError, AttributeError):
            self._has_state, self.state_dim = False, int(sum(self.obs_dims))
        self._check_spaces()
        self.reset(seed)

    # one copy's observations into row b of the per-agent blocks
    def _fill(self, b: int, obs_dict, obs_np, state_np) -> None:
        for i, a in enumerate(self.agents):
            o = obs_dict.get(a)
            if o is None:
                obs_np[i][b] = 0.0
            else:
                obs_np[i][b] = np.asarray(o, dtype=np.float32).reshape(-1)
        if state_np is not None:
            state_np[b] = np.asarray(self.envs[b].state(), dtype=np.float32).reshape(-1)

    def _tensors(self, obs_np, state_np):
        obs = _to_torch(obs_np, self.device)
        state = torch.from_numpy(state_np).to(self.device) if state_np is not None else torch.cat(obs, dim=1)
        return obs, state

    def _blocks(self):
        B = self.num_envs
        obs_np = [np.empty((B, d), dtype=np.float32) for d in self.obs_dims]
        state_np = np.empty((B, self.state_dim), dtype=np.float32) if self._has_state else None
        return obs_np, state_np

    def _reset(self, seed):
        obs_np, state_np = self._blocks()
        for b, env in enumerate(self.envs):
            obs, _ = env.reset(seed=None if seed is None else seed + b)
            self._fill(b, obs, obs_np, state_np)
        return self._tensors(obs_np, state_np)

    def _numpy_actions(self, actions):
        out = []
        for a, (kind, _), info in zip(actions, self.action_spaces, self._act_info):
            a = a.detach().cpu().numpy()
            if kind == "discrete":
                out.append([int(x) + info for x in a])
            else:
                low, high, shape, dtype = info
                a = np.clip(a.astype(np.float32), low, high).astype(dtype, copy=False)
                out.append([row.reshape(shape) for row in a])
        return out

    def _step(self, actions):
        B = self.num_envs
        acts = self._numpy_actions(actions)
        obs_np, state_np = self._blocks()
        reward = np.zeros(B, dtype=np.float64)
        terminated = np.zeros(B, dtype=bool)
        truncated = np.zeros(B, dtype=bool)
        for b, env in enumerate(self.envs):
            live = env.agents
            joint = {a: acts[i][b] for i, a in enumerate(self.agents) if a in live}
            obs, rew, term, trunc, _ = env.step(joint)
            reward[b] = sum(rew.values())
            terminated[b] = any(term.values())
            truncated[b] = not terminated[b] and (any(trunc.values()) or not env.agents)
            self._fill(b, obs, obs_np, state_np)
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            final_obs, final_state = self._tensors([o.copy() for o in obs_np],
                                                   None if state_np is None else state_np.copy())
            for b in done:
                obs, _ = self.envs[b].reset()
                self._fill(int(b), obs, obs_np, state_np)
            obs_t, state_t = self._tensors(obs_np, state_np)
        else:
            obs_t, state_t = self._tensors(obs_np, state_np)
            final_obs, final_state = obs_t, state_t
        return (obs_t, state_t, torch.from_numpy(reward.astype(np.float32)).to(self.device),
                torch.from_numpy(terminated).to(self.device), torch.from_numpy(truncated).to(self.device),
                final_obs, final_state)

    def _get_state(self):
        return None

    def close(self) -> None:
        for env in self.envs:
            try:
                env.close()
            except Exception:  # pragma: no cover - best effort (pygame teardown)
                pass


# -- the vectorised MPE path ----------------------------------------------------------------
_MOVE = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])

# options of each fast scenario that the kernels reproduce (others → generic path)
_FAST_OPTIONS = {
    "simple": {"max_cycles", "continuous_actions", "dynamic_rescaling", "benchmark_data"},
    "simple_spread": {"N", "local_ratio", "max_cycles", "continuous_actions", "dynamic_rescaling", "benchmark_data",
                      "terminate_on_success"},
    "simple_speaker_listener": {"max_cycles", "continuous_actions", "dynamic_rescaling", "benchmark_data"},
    "simple_reference": {"local_ratio", "max_cycles", "continuous_actions", "dynamic_rescaling", "benchmark_data"},
}
_FAST_DEFAULTS = {"curriculum": False, "num_agent_neighbors": None, "num_landmark_neighbors": None,
                  "render_mode": None}


def _fast_supported(scenario: str, kwargs: dict) -> str | None:
    """None if MPEVecEnv can run ``scenario`` with ``kwargs``, else the reason it cannot."""
    if scenario not in _FAST_OPTIONS:
        return f"{scenario!r} is not one of the vectorised scenarios {', '.join(FAST_MPE_SCENARIOS)}"
    for k, v in kwargs.items():
        if k in _FAST_OPTIONS[scenario]:
            continue
        if k in _FAST_DEFAULTS and v == _FAST_DEFAULTS[k]:
            continue
        return f"option {k}={v!r} is not covered by the vectorised {scenario!r}"
    return None


class MPEVecEnv(MultiAgentVecEnv):
    """HARL's four cooperative MPE2 scenarios, B copies stepped as numpy arrays.

    ========================  ==========  ================================================
    Argument                  Type        Meaning
    ========================  ==========  ================================================
    ``scenario``              str         ``simple``, ``simple_spread``,
                                          ``simple_speaker_listener``, ``simple_reference``
    ``num_envs``              int         B copies
    ``seed``                  int         copy b is first reset with ``seed + b``
    ``device``                str/device  where returned tensors live
    ``continuous_actions``    bool        Box(0, 1, (5 [+ dim_c],)) instead of Discrete
    ``max_cycles``            int         episode length; the last step is *truncated*
    ``**kwargs``                          scenario options (``N``, ``local_ratio``,
                                          ``terminate_on_success`` for simple_spread)
    ========================  ==========  ================================================

    One ``mpe2.<scenario>.raw_env`` is built for its spaces and entity constants. Its
    world is then a scratch pad on which the scenario's ``reset_world`` draws each copy's
    start state. From there on, positions, velocities and utterances live in arrays
    ``pos``/``vel`` [B, E, 2] and ``comm`` [B, N, dim_c] (E = agents then landmarks).
    The physics (``World.step``: action forces, pairwise soft contact forces accumulated
    in MPE's pair order, damping, speed caps), observations and rewards are recomputed
    for all copies with the same floating-point operations as MPE2, so results are
    bit-identical to ``parallel_env``.
    """

    def __init__(self, scenario: str = "simple_spread", num_envs: int = 1, seed: int = 0, device="cpu",
                 continuous_actions: bool = False, max_cycles: int = 25, **kwargs):
        why = _fast_supported(scenario, kwargs)
        if why is not None:
            raise HarlMiniError(f"MPEVecEnv: {why}; use make_mpe(..., fast=False) for the plain PettingZoo path")
        self.scenario_name = scenario
        self.name = f"mpe:{scenario}"
        self.num_envs = B = positive_int(num_envs, "num_envs")
        self.device = as_device(device)
        self.max_cycles = positive_int(max_cycles, "max_cycles")
        self.continuous = bool(continuous_actions)
        module = _import(f"mpe2.{MPE_SCENARIOS[scenario]}", f"mpe:{scenario}")
        kwargs = {k: v for k, v in kwargs.items() if k not in _FAST_DEFAULTS}
        try:
            raw = module.raw_env(max_cycles=self.max_cycles, continuous_actions=self.continuous, **kwargs)
        except (TypeError, AssertionError) as exc:
            raise HarlMiniError(f"mpe:{scenario}: bad options {kwargs}: {exc}") from None
        self._raw = raw
        self._world = w = raw.world
        self._scenario = raw.scenario
        self.local_ratio = raw.local_ratio
        self.terminate_on_success = bool(getattr(raw.scenario, "terminate_on_success", False))
        agents, landmarks = list(w.agents), list(w.landmarks)
        ents = agents + landmarks
        self.num_agents = NA = len(agents)
        self._na, self._nl, self._ne = NA, len(landmarks), len(ents)
        if w.dim_p != 2:
            raise HarlMiniError(f"mpe:{scenario}: only 2-D worlds are vectorised")
        for ag in agents:
            if ag.action_callback is not None or ag.u_noise or ag.c_noise:
                raise HarlMiniError(f"mpe:{scenario}: scripted or noisy agents are not vectorised; use fast=False")
        self.agents = [ag.name for ag in agents]
        self.dim_c = w.dim_c
        self.dt, self.damping = w.dt, w.damping
        self.contact_force, self.contact_margin = w.contact_force, w.contact_margin
        movable = [i for i, e in enumerate(ents) if e.movable]
        # the movable entities as a slice when they are contiguous (all four scenarios), else a list
        self._movable = (slice(movable[0], movable[-1] + 1) if movable and movable == list(
            range(movable[0], movable[-1] + 1)) else movable)
        self._max_speed = [(i, e.max_speed) for i, e in enumerate(ents) if e.movable and e.max_speed is not None]
        self._agent_movable = [ag.movable for ag in agents]
        self._agent_silent = [ag.silent for ag in agents]
        self._sens = [5.0 if ag.accel is None else ag.accel for ag in agents]
        # colliding pairs, in World.apply_environment_force's order
        pairs = [(a, b) for a in range(len(ents)) for b in range(a + 1, len(ents))
                 if ents[a].collide and ents[b].collide]
        self._pairs = [(k, a, b, ents[a].movable, ents[b].movable) for k, (a, b) in enumerate(pairs)]
        self._pair_a = np.array([a for a, _ in pairs], dtype=np.int64)
        self._pair_b = np.array([b for _, b in pairs], dtype=np.int64)
        self._pair_min = np.array([ents[a].size + ents[b].size for a, b in pairs])
        forced = set(i for i, ag in enumerate(agents) if ag.movable)
        forced |= {a for _, a, _, ma, _ in self._pairs if ma} | {b for _, _, b, _, mb in self._pairs if mb}
        # entities whose p_force stays None in MPE (movable, but neither acting nor colliding)
        if any(i not in forced for i in movable):
            raise HarlMiniError(f"mpe:{scenario}: movable entities without forces are not vectorised; use fast=False")
        masses = [float(e.mass) for e in ents]
        self._mass = np.array(masses)[self._movable][None, :, None]
        # agent-agent collision radii (simple_spread's is_collision) and the agent-agent mask
        sizes = np.array([ag.size for ag in agents])
        self._coll_min = sizes[None, :] + sizes[:, None]       # [NA, NA]: size_j + size_i
        self._others = np.array([[j for j in range(NA) if j != i] for i in range(NA)], dtype=np.int64).reshape(NA, -1)
        self.obs_dims = [int(raw.observation_spaces[a].shape[0]) for a in self.agents]
        self._offsets = np.cumsum([0] + self.obs_dims).tolist()
        self.action_spaces = []
        for a in self.agents:
            space = raw.action_spaces[a]
            self.action_spaces.append(("box", int(space.shape[0])) if self.continuous else ("discrete", int(space.n)))
        self.state_dim = int(sum(self.obs_dims))
        self._obs_kernel = getattr(self, f"_obs_{scenario}")
        self._reward_kernel = getattr(self, f"_reward_{scenario}")
        self._has_goals = any(hasattr(ag, "_goal_b") for ag in agents)
        # per-copy state
        self.pos = np.zeros((B, self._ne, 2))
        self.vel = np.zeros((B, self._ne, 2))
        self.comm = np.zeros((B, NA, self.dim_c))
        self.steps = np.zeros(B, dtype=np.int64)
        self.goal_a = np.full((B, NA), -1, dtype=np.int64)   # entity index of agent i's goal_a
        self.goal_b = np.full((B, NA), -1, dtype=np.int64)   # landmark index of agent i's goal_b
        self.lm_color = np.zeros((B, self._nl, 3))
        self._rows = np.arange(B)
        self._rngs: list[np.random.Generator] | None = None
        self._seed = seed
        self._check_spaces()
        self.reset(seed)

    # -- resets: the scenario's own reset_world, one copy at a time -----------------------
    def _reset_copy(self, b: int) -> None:
        w = self._world
        self._scenario.reset_world(w, self._rngs[b])
        ents = w.agents + w.landmarks
        self.pos[b] = [e.state.p_pos for e in ents]
        self.vel[b] = [e.state.p_vel for e in ents]
        self.comm[b] = [ag.state.c for ag in w.agents]
        if self._has_goals:
            lms = w.landmarks
            for i, ag in enumerate(w.agents):
                ga, gb = getattr(ag, "_goal_a", None), getattr(ag, "_goal_b", None)
                self.goal_a[b, i] = next(k for k, e in enumerate(ents) if e is ga) if ga is not None else -1
                self.goal_b[b, i] = next(k for k, e in enumerate(lms) if e is gb) if gb is not None else -1
            self.lm_color[b] = [lm.color for lm in lms]
        self.steps[b] = 0

    def _observe(self):
        """(obs tensors, state tensor): the kernel fills one [B, state_dim] float32 block."""
        buf = np.empty((self.num_envs, self.state_dim), dtype=np.float32)
        self._obs_kernel(buf)
        state = torch.from_numpy(buf)
        off = self._offsets
        obs = [state[:, off[i]:off[i + 1]].contiguous() for i in range(self.num_agents)]
        if self.device.type != "cpu":
            state, obs = state.to(self.device), [o.to(self.device) for o in obs]
        return obs, state

    def _reset(self, seed):
        from gymnasium.utils import seeding

        if seed is not None or self._rngs is None:
            s = self._seed if seed is None else seed
            self._seed = s
            self._rngs = [seeding.np_random(s + b)[0] for b in range(self.num_envs)]
        for b in range(self.num_envs):
            self._reset_copy(b)
        return self._observe()

    # -- actions → forces and utterances (SimpleEnv._execute_world_step / _set_action) -----
    def _apply_actions(self, actions):
        B, dim_c = self.num_envs, self.dim_c
        force = np.zeros((B, self._ne, 2))
        for i, a in enumerate(actions):
            a = a.detach().cpu().numpy()
            movable, silent = self._agent_movable[i], self._agent_silent[i]
            if self.continuous:
                a = np.clip(a.astype(np.float32, copy=False), np.float32(0.0), np.float32(1.0))
                if movable:
                    u = np.empty((B, 2))
                    u[:, 0] = a[:, 2] - a[:, 1]        # float32 differences, as MPE2 computes them
                    u[:, 1] = a[:, 4] - a[:, 3]
                    u *= self._sens[i]
                    force[:, i] = u + 0.0
                    a = a[:, 5:]
                if not silent:
                    self.comm[:, i] = a + 0.0
            else:
                if movable:
                    m = a % 5 if not silent else a
                    force[:, i] = _MOVE[m] * self._sens[i] + 0.0
                    a = a // 5
                if not silent:
                    c = np.zeros((B, dim_c))
                    c[self._rows, a] = 1.0
                    self.comm[:, i] = c + 0.0
            if silent:
                self.comm[:, i] = 0.0
        return force

    # -- World.step ------------------------------------------------------------------------
    def _physics(self, force) -> None:
        pos, vel = self.pos, self.vel
        if self._pairs:
            # soft contact forces of every colliding pair at once, then summed in MPE's order
            k = self.contact_margin
            delta = pos[:, self._pair_a] - pos[:, self._pair_b]            # [B, P, 2]
            sq = np.square(delta)
            dist = np.sqrt(sq[..., 0] + sq[..., 1])
            penetration = np.logaddexp(0, -(dist - self._pair_min) / k) * k
            f = self.contact_force * delta / dist[..., None] * penetration[..., None]
            for p, a, b, mov_a, mov_b in self._pairs:
                if mov_a:
                    force[:, a] = +f[:, p] + force[:, a]
                if mov_b:
                    force[:, b] = -f[:, p] + force[:, b]
        m = self._movable
        pos[:, m] += vel[:, m] * self.dt
        vel[:, m] = vel[:, m] * (1 - self.damping)
        vel[:, m] += (force[:, m] / self._mass) * self.dt
        for i, max_speed in self._max_speed:
            v = vel[:, i]
            speed = np.sqrt(np.square(v[:, 0]) + np.square(v[:, 1]))
            fast = speed > max_speed
            if fast.any():
                vel[fast, i] = v[fast] / speed[fast, None] * max_speed

    def _step(self, actions):
        force = self._apply_actions(actions)
        self._physics(force)
        rewards = self._reward_kernel()                   # per-agent float64 [B] arrays
        team = rewards[0]
        for r in rewards[1:]:
            team = team + r
        self.steps += 1
        truncated = self.steps >= self.max_cycles
        if self.terminate_on_success:
            terminated = ~truncated & self._spread_success()
        else:
            terminated = np.zeros(self.num_envs, dtype=bool)
        obs_t, state_t = self._observe()
        final_obs, final_state = obs_t, state_t
        done = np.flatnonzero(truncated | terminated)
        if done.size:
            for b in done:
                self._reset_copy(int(b))
            obs_t, state_t = self._observe()
        dev = self.device
        return (obs_t, state_t, torch.from_numpy(team.astype(np.float32)).to(dev),
                torch.from_numpy(terminated).to(dev), torch.from_numpy(truncated).to(dev), final_obs, final_state)

    # -- scenario kernels: fill obs into buf [B, state_dim]; rewards as float64 [B] per agent --
    def _rel_landmarks(self):
        """[B, NA, NL, 2]: landmark.p_pos − agent.p_pos for every agent and landmark."""
        NA = self._na
        return self.pos[:, None, NA:] - self.pos[:, :NA, None]

    def _landmark_dists(self):
        """[B, NA, NL]: sqrt(sum(square(agent.p_pos − landmark.p_pos))), as MPE2 computes it."""
        NA = self._na
        sq = np.square(self.pos[:, :NA, None] - self.pos[:, None, NA:])
        return np.sqrt(sq[..., 0] + sq[..., 1])

    def _goal_color(self, i: int) -> np.ndarray:
        g = self.goal_b[:, i]
        return self.lm_color[self._rows, np.maximum(g, 0)] * (g >= 0)[:, None]

    def _goal_vector(self, i: int) -> np.ndarray:
        """[B, 2]: agent i's goal_a.p_pos − goal_b.p_pos."""
        return self.pos[self._rows, self.goal_a[:, i]] - self.pos[self._rows, self._na + self.goal_b[:, i]]

    def _blend(self, global_r, local):
        lr = self.local_ratio
        if lr is None:
            return local
        return [global_r * (1 - lr) + r * lr for r in local]

    # simple: obs [vel, landmark − pos]; reward −|pos − landmark|²
    def _obs_simple(self, buf):
        B = self.num_envs
        buf[:, 0:2] = self.vel[:, 0]
        buf[:, 2:] = self._rel_landmarks()[:, 0].reshape(B, -1)

    def _reward_simple(self):
        sq = np.square(self.pos[:, 0] - self.pos[:, self._na])
        return [-(sq[:, 0] + sq[:, 1])]

    # simple_spread: obs [vel, pos, landmarks − pos, others − pos, others' comm]; all agents at once
    def _obs_simple_spread(self, buf):
        B, NA, NL = self.num_envs, self._na, self._nl
        o = buf.reshape(B, NA, -1)
        o[:, :, 0:2] = self.vel[:, :NA]
        o[:, :, 2:4] = self.pos[:, :NA]
        k = 4 + 2 * NL
        o[:, :, 4:k] = self._rel_landmarks().reshape(B, NA, -1)
        agents = np.arange(NA)[:, None]
        rel = self.pos[:, self._others] - self.pos[:, agents]            # [B, NA, NA-1, 2]
        o[:, :, k:k + 2 * (NA - 1)] = rel.reshape(B, NA, -1)
        o[:, :, k + 2 * (NA - 1):] = self.comm[:, self._others].reshape(B, NA, -1)

    def _reward_simple_spread(self):
        NA = self._na
        m = self._landmark_dists().min(axis=1)                            # [B, NL]: closest agent
        g = 0.0
        for l in range(self._nl):
            g = g - m[:, l]
        sq = np.square(self.pos[:, :NA, None] - self.pos[:, None, :NA])   # [B, NA, NA, 2]
        collide = np.sqrt(sq[..., 0] + sq[..., 1]) < self._coll_min
        collide[:, np.arange(NA), np.arange(NA)] = False
        counts = collide.sum(axis=2)                                      # collisions of agent i
        return self._blend(g, [0.0 - 1.0 * counts[:, i] for i in range(NA)])

    def _spread_success(self):
        return (self._landmark_dists().min(axis=1) < self._scenario.CAPTURE_RADIUS).all(axis=1)

    # simple_speaker_listener: speaker sees the goal colour; listener [vel, landmarks − pos, speaker comm]
    def _obs_simple_speaker_listener(self, buf):
        B, NL = self.num_envs, self._nl
        d0 = self.obs_dims[0]
        buf[:, 0:d0] = self._goal_color(0)
        buf[:, d0:d0 + 2] = self.vel[:, 1]
        buf[:, d0 + 2:d0 + 2 + 2 * NL] = self._rel_landmarks()[:, 1].reshape(B, -1)
        buf[:, d0 + 2 + 2 * NL:] = self.comm[:, 0]

    def _reward_simple_speaker_listener(self):
        sq = np.square(self._goal_vector(0))
        r = -(sq[:, 0] + sq[:, 1])
        return [r, r]

    # simple_reference: [vel, landmarks − pos, own goal colour, other's comm]
    def _obs_simple_reference(self, buf):
        B, NA, NL = self.num_envs, self._na, self._nl
        rel = self._rel_landmarks()
        for i in range(NA):
            o = buf[:, self._offsets[i]:self._offsets[i + 1]]
            o[:, 0:2] = self.vel[:, i]
            k = 2 + 2 * NL
            o[:, 2:k] = rel[:, i].reshape(B, -1)
            o[:, k:k + 3] = self._goal_color(i)
            o[:, k + 3:] = self.comm[:, self._others[i]].reshape(B, -1)

    def _reward_simple_reference(self):
        local = []
        for i in range(self._na):
            sq = np.square(self._goal_vector(i))
            local.append(-np.sqrt(sq[:, 0] + sq[:, 1]))
        g = 0
        for r in local:
            g = g + r
        g = g / len(local)
        return self._blend(g, local)

    # -- checkpoints -------------------------------------------------------------------------
    def _get_state(self):
        rng = []
        for g in self._rngs:
            st = g.bit_generator.state
            rng.append({"bit_generator": str(st["bit_generator"]),
                        "state": {k: int(v) for k, v in st["state"].items()},
                        "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])})
        return {"pos": torch.from_numpy(self.pos.copy()), "vel": torch.from_numpy(self.vel.copy()),
                "comm": torch.from_numpy(self.comm.copy()), "steps": torch.from_numpy(self.steps.copy()),
                "goal_a": torch.from_numpy(self.goal_a.copy()), "goal_b": torch.from_numpy(self.goal_b.copy()),
                "lm_color": torch.from_numpy(self.lm_color.copy()), "seed": int(self._seed), "rng": rng}

    def _set_state(self, state):
        try:
            for key in ("pos", "vel", "comm", "steps", "goal_a", "goal_b", "lm_color"):
                value = state[key].cpu().numpy().copy()
                if value.shape != getattr(self, key).shape:
                    raise HarlMiniError(f"{self.name}: snapshot {key} has shape {list(value.shape)}, expected "
                                        f"{list(getattr(self, key).shape)}")
                setattr(self, key, value.astype(getattr(self, key).dtype))
            self._seed = int(state["seed"])
            for g, st in zip(self._rngs, state["rng"]):
                g.bit_generator.state = {"bit_generator": st["bit_generator"], "state": dict(st["state"]),
                                         "has_uint32": st["has_uint32"], "uinteger": st["uinteger"]}
        except (KeyError, TypeError, AttributeError) as exc:
            raise HarlMiniError(f"{self.name}: not a snapshot of this env ({exc!r})") from None

    def close(self) -> None:
        try:
            self._raw.close()
        except Exception:  # pragma: no cover - best effort (pygame teardown)
            pass


# -- factories ------------------------------------------------------------------------------
def make(rest: str, num_envs: int = 1, seed: int = 0, device="cpu", **kwargs) -> PettingZooVecEnv:
    """``pettingzoo:<module>``: B copies of ``<module>.parallel_env(**kwargs)``.

    ``rest`` is an importable module path, e.g. ``mpe2.simple_spread_v3`` or
    ``pettingzoo.butterfly.pistonball_v6``.
    """
    if not isinstance(rest, str) or not rest:
        raise HarlMiniError("pettingzoo: expected pettingzoo:<module>, e.g. pettingzoo:mpe2.simple_spread_v3")
    _import("pettingzoo", f"pettingzoo:{rest}")
    module = _import(rest, f"pettingzoo:{rest}")
    fn = getattr(module, "parallel_env", None)
    if fn is None:
        raise HarlMiniError(f"pettingzoo:{rest}: the module has no parallel_env() (AEC-only envs are not supported)")

    def env_fn():
        try:
            return fn(**kwargs)
        except TypeError as exc:
            raise HarlMiniError(f"pettingzoo:{rest}: bad options {kwargs}: {exc}") from None

    return PettingZooVecEnv(env_fn, num_envs=num_envs, seed=seed, device=device, name=f"pettingzoo:{rest}")


def make_mpe(scenario: str, num_envs: int = 1, seed: int = 0, device="cpu", continuous_actions: bool = False,
             max_cycles: int = 25, fast: bool | None = None, **kwargs):
    """``mpe:<scenario>``: an MPE2 scenario with HARL's episode length (25) by default.

    ``scenario`` is a name of :data:`MPE_SCENARIOS` (a version suffix such as
    ``simple_spread_v3`` is accepted too). ``fast=None`` runs the vectorised
    :class:`MPEVecEnv` when it covers the scenario and options, and
    :class:`PettingZooVecEnv` over ``parallel_env`` otherwise. ``fast=True`` requires the
    vectorised path, ``fast=False`` forces the plain one. Other keyword arguments go to
    the scenario (``N``, ``local_ratio``, …).
    """
    if not isinstance(scenario, str):
        raise HarlMiniError(f"mpe: expected a scenario name, got {scenario!r}")
    key = scenario
    if key not in MPE_SCENARIOS:
        key = next((k for k, v in MPE_SCENARIOS.items() if v == scenario), None)
    if key is None:
        raise HarlMiniError(f"unknown MPE scenario {scenario!r}; available: {', '.join(sorted(MPE_SCENARIOS))} "
                            f"(vectorised: {', '.join(FAST_MPE_SCENARIOS)})")
    if fast not in (None, True, False):
        raise HarlMiniError(f"fast: expected None, True or False, got {fast!r}")
    opts = dict(kwargs, continuous_actions=bool(continuous_actions), max_cycles=max_cycles)
    why = _fast_supported(key, kwargs)
    if fast is True and why is not None:
        raise HarlMiniError(f"mpe:{key}: fast=True but {why}")
    if fast is False or why is not None:
        env = make(f"mpe2.{MPE_SCENARIOS[key]}", num_envs=num_envs, seed=seed, device=device, **opts)
        env.name = f"mpe:{key}"
        return env
    return MPEVecEnv(key, num_envs=num_envs, seed=seed, device=device, **opts)
