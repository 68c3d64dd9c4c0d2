r"""``mamujoco:<Scenario>-<agent_conf>``: Multi-Agent MuJoCo (Gymnasium-Robotics) as a batched env.

MaMuJoCo splits the joints of one MuJoCo robot among several agents: in ``HalfCheetah-2x3``
agent 0 drives the three back-leg joints and agent 1 the three front-leg joints, both are
scored by the robot's single reward. It is the continuous-control benchmark of the
HATRPO/HAPPO papers. This adapter wraps ``gymnasium_robotics.mamujoco_v1`` (Gymnasium
``*-v5`` robots on the ``mujoco`` package) behind
:class:`~harl_mini.envs.multi.MultiAgentVecEnv`.

It is an **optional extra**: ``pip install '.[mujoco]'`` (or ``pip install mujoco
gymnasium-robotics``). Importing this module imports neither; :func:`make` does, and says
how to install them if they are missing.

=====================  ========  =========================  ==========  ================
Name                   agents    obs dims (``agent_obsk``   act dims    ``state_dim``
                                 1, the default)
=====================  ========  =========================  ==========  ================
``HalfCheetah-2x3``    2         12, 12                     3, 3        17
``HalfCheetah-6x1``    6         9, 9, 8, 9, 9, 8           1 × 6       17
``Ant-4x2``            4         42 × 4                     2 × 4       105
``Ant-2x4``            2         63, 63                     4, 4        105
``Walker2d-2x3``       2         12, 12                     3, 3        17
``Hopper-3x1``         3         8, 9, 8                    1 × 3       11
``Humanoid-9|8``       2         242, 170                   9, 8        348
``Swimmer-2x1``        2         6, 6                       1, 1        8
``Walker2d-6x1`` *     6         one per joint              1 × 6       17
``Ant-8x1`` *          8         one per joint              1 × 8       105
``Humanoid-17x1`` *    17        one per joint              1 × 17      348
=====================  ========  =========================  ==========  ================

\* one actuator per agent, as the HATRPO/HAPPO papers partition these robots; Gymnasium-Robotics
names no such partition, so the adapter builds it with the library's custom agent factorization
(:data:`ONE_ACTUATOR_PER_AGENT`): the joints of ``Walker2d-2x3``, ``Ant-4x2`` and
``Humanoid-9|8``, one per agent, ordered by actuator index (agent i drives actuator i).

:func:`available_scenarios` lists every partition Gymnasium-Robotics 1.4 defines (also
``HalfCheetah-6x1``, ``Ant-2x4d``, ``HumanoidStandup-9|8``, ``Reacher-2x1``,
``Pusher-3p``; ``ManySegmentAnt-<n>x<k>`` and ``ManySegmentSwimmer-<n>x<k>`` take any
sizes). ``CoupledHalfCheetah-1p1`` is left out: with mujoco 4 the library fails to build
its observations (an IndexError on the tendon Jacobian ``ten_J``). Extra keyword arguments
of :func:`make` go to ``parallel_env`` (``local_categories=``, ``agent_factorization=``,
…) and from there to ``gymnasium.make`` (``ctrl_cost_weight=``, …).

Conventions
-----------

=====================  =================================================================
Piece                  What this adapter does
=====================  =================================================================
copies                 B independent environments stepped one after the other in this
                       process. MaMuJoCo has no vectorised version, and on 2 cores a
                       second process measured no gain (``deps.md`` §3(b)).
observations           ``obs="local"`` (default): agent i's own observation from
                       Gymnasium-Robotics: its joints' qpos/qvel (+ body forces for
                       Ant/Humanoid), the positions of the joints up to ``agent_obsk``
                       hops away and the root's state. ``agent_obsk=1`` is the
                       library's default and the benchmark as it defines it: each agent
                       sees part of the robot, so the team must coordinate through the
                       dynamics (``agent_obsk=0``: own joints only). ``obs="global"``:
                       every agent sees the full ``state`` followed by a one-hot agent id
                       (dim ``state_dim + N``), which is what HARL's agents see (its
                       tuned configs say ``agent_obsk: 0``, but its env ignores it).
state                  ``env.state()``: the single-agent Gymnasium observation (positions
                       without the root's x, and y for Ant/Humanoid; velocities; Ant's
                       contact forces). Walker2d's clips the velocities to ±10, its
                       local observations do not.
actions                agent i: ``("box", dim_i)`` in its joints' order. The adapter clips
                       every entry to that actuator's control range (±1 for most
                       robots, Humanoid ±0.4, Pusher ±2) before the step; the policy keeps and is scored
                       on its unclipped sample (as in :mod:`harl_mini.envs.gym`). The
                       control cost uses the clipped action.
reward                 the robot's reward, identical for every agent in ``parallel_env``
                       (it is agent 0's, = all agents').
terminated             the robot fell (Ant, Walker2d, Hopper, Humanoid: the "healthy"
                       check). HalfCheetah and Swimmer never terminate.
truncated              the episode reached ``max_episode_steps`` (default 1000, as
                       Gymnasium and HARL's ``episode_limit``) without terminating; the
                       two flags are never both True.
auto-reset             in the same step; ``final_obs`` / ``final_state`` hold what the
                       step led to.
seeding                ``reset(seed)`` resets copy b with ``seed + b``; later auto-resets
                       continue each copy's own generator. Same seed + same actions ⇒
                       identical trajectories.
dtype                  float32 tensors (``dtype=`` changes it); MuJoCo computes in float64.
checkpoints            :meth:`~MaMuJoCoVecEnv.get_state` captures each copy's MuJoCo
                       integration state (``mj_getState(mjSTATE_INTEGRATION)``: time,
                       qpos, qvel, act, ctrl, applied forces, solver warm start), the
                       kinematic quantities the reward reads *before* stepping (body
                       positions: after ``mj_step`` they lag one substep, so they cannot
                       be recomputed from qpos), and the numpy generator of each copy;
                       a restored env continues bit-identically. ``copy.deepcopy`` goes
                       through the same snapshot (Gymnasium's robots would otherwise be
                       rebuilt from their constructor arguments, i.e. restarted).
=====================  =================================================================

Speed
-----

Env-only team steps per second (summed over the copies), uniform random actions in the
control range, 1 torch thread, mujoco 4.0.0, on a 2-core machine shared with other jobs
(load ≈ 1.6). *raw*: ``parallel_env.step`` + ``state()`` of one copy, resetting when done;
*adapter*: ``MaMuJoCoVecEnv.step`` including the action checks of the base class and
the conversion to torch:

=====================  ==========  ===========  ===========
Scenario               raw         adapter B=1  adapter B=8
=====================  ==========  ===========  ===========
``HalfCheetah-2x3``    16,900      5,200        13,400
``Ant-4x2``            3,000       1,800        2,700
``Walker2d-2x3``       7,800       3,600        6,600
=====================  ==========  ===========  ===========

The adapter steps the Gymnasium robot directly (skipping the
``TimeLimit``/``OrderEnforcing``/``PassiveEnvChecker`` wrappers and the per-agent dicts of
``parallel_env.step``; the agents' actions reach the robot by one index scatter), builds
the local observations with the library's own ``_get_obs_agent`` and turns each agent's
preallocated buffer into a tensor with one ``torch.from_numpy`` per step. Its own work per
batched step is then about that of ``parallel_env`` (B=8: 16,900 / 3,000 / 7,600 steps/s
without the base class); the remaining cost is the base class's validation of actions
and outputs, ~100 µs per batched step whatever B is, so use B ≥ 8. Timings vary by ±30 %
with the machine's load; ``deps.md`` measured 3,900 (HalfCheetah) and 1,400 (Ant) raw
steps/s at load ≈ 2.7.

Differences from HARL's MaMuJoCo
--------------------------------

HARL (``harl/envs/mamujoco``) vendors the original ``schroederdewitt/multiagent_mujoco``
on gym 0.21 + mujoco-py + the ``mujoco210`` binary with ``*-v2`` robots; that stack does
not install from any package registry today. **Results differ between the two**, and
HARL's maintainers say its published MaMuJoCo numbers need its own stack (PKU-MARL/HARL
issue #7). Specifically:

* robots: Gymnasium ``*-v5`` (new MuJoCo, fixed contact forces, different defaults) vs
  gym ``*-v2``;
* observations: HARL gives every agent the *full* state plus a one-hot id, each vector
  standardised by its own mean and std (``agent_obsk`` is ignored there). ``obs="global"``
  here gives state + id *without* that per-vector standardisation; the default is the
  library's partial observation (``agent_obsk=1``);
* HARL builds every agent's action space from agent 0's slice (fine for even splits);
  here each agent has its own size and per-actuator bounds;
* HARL marks a done at ``episode_limit`` as ``bad_transition``; here it is ``truncated``;
* partitions: Gymnasium-Robotics has no ``Walker2d-6x1``, ``Ant-8x1`` or ``Humanoid-17x1``; the
  adapter builds them (one actuator per agent, see above). HARL's agent order for them follows
  the original multiagent_mujoco partition lists, which may order the joints differently; with
  ``obs="global"`` the order only permutes the agent ids.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import warnings

import numpy as np
import torch

from harl_mini.envs.multi import MultiAgentVecEnv, as_device, check_float_dtype, positive_int
from harl_mini.errors import HarlMiniError, check_choice

__all__ = ["MaMuJoCoVecEnv", "make", "available_scenarios"]

#: scenario -> agent_confs that gymnasium-robotics 1.4 defines (``<n>x<k>``: any sizes), plus
#: the one-actuator-per-agent partitions of :data:`ONE_ACTUATOR_PER_AGENT`
SCENARIOS: dict[str, tuple[str, ...]] = {
    "HalfCheetah": ("2x3", "6x1"),
    "Ant": ("2x4", "2x4d", "4x2", "8x1"),
    "Walker2d": ("2x3", "6x1"),
    "Hopper": ("3x1",),
    "Humanoid": ("9|8", "17x1"),
    "HumanoidStandup": ("9|8", "17x1"),
    "Swimmer": ("2x1",),
    "Reacher": ("2x1",),
    "Pusher": ("3p",),
    "ManySegmentAnt": ("<n>x<k>",),
    "ManySegmentSwimmer": ("<n>x<k>",),
}

_OBS_MODES = ("local", "global")

#: (scenario, agent_conf) -> the library partition it splits. Gymnasium-Robotics 1.4 has no
#: ``Walker2d-6x1``, ``Ant-8x1`` or ``Humanoid-17x1`` ("UNKNOWN partitioning config"), which
#: the HATRPO/HAPPO papers use (one actuator per agent, as the original multiagent_mujoco
#: partitions them). They are built with the library's custom agent factorization: the
#: joints (nodes) of the named partition, one per agent, ordered by actuator index, with the
#: library's own joint graph (edges, for ``agent_obsk``) and global nodes.
ONE_ACTUATOR_PER_AGENT: dict[tuple[str, str], str] = {
    ("Walker2d", "6x1"): "2x3",
    ("Ant", "8x1"): "4x2",
    ("Humanoid", "17x1"): "9|8",
    ("HumanoidStandup", "17x1"): "9|8",
}


def one_actuator_factorization(scenario: str, agent_conf: str) -> dict:
    """The ``agent_factorization`` of a :data:`ONE_ACTUATOR_PER_AGENT` partition: every node
    (joint) of the library's partition ``ONE_ACTUATOR_PER_AGENT[(scenario, agent_conf)]`` becomes
    its own agent, agents ordered by the actuator they drive."""
    from gymnasium_robotics.envs.multiagent_mujoco.obsk import get_parts_and_edges

    parts, edges, global_nodes = get_parts_and_edges(scenario, ONE_ACTUATOR_PER_AGENT[(scenario, agent_conf)])
    nodes = sorted((node for part in parts for node in part), key=lambda n: int(np.atleast_1d(n.act_ids)[0]))
    return {"partition": [(node,) for node in nodes], "edges": edges, "globals": global_nodes}

#: MjData fields read before a step (or cheap to keep): derived quantities that mj_step
#: leaves one substep behind qpos, so they are saved rather than recomputed.
_DERIVED_FIELDS = ("xpos", "xquat", "xmat", "xipos", "ximat", "subtree_com", "cinert", "cvel",
                   "cacc", "cfrc_int", "cfrc_ext", "qfrc_actuator", "actuator_force", "site_xpos",
                   "site_xmat", "geom_xpos", "geom_xmat", "sensordata")

_INSTALL_HINT = ("needs the optional MuJoCo extra: pip install '.[mujoco]' "
                 "(or pip install mujoco gymnasium-robotics)")


def available_scenarios() -> list[str]:
    """The names ``make`` knows, as ``<Scenario>-<agent_conf>``."""
    return [f"{s}-{c}" for s, confs in SCENARIOS.items() for c in confs]


def _import_mamujoco():
    """Import ``mujoco`` and ``gymnasium_robotics.mamujoco_v1`` (hiding the import banner)."""
    try:
        import mujoco  # noqa: F401

        # gymnasium_robotics prints a notice about Adroit hand rewards to stderr at import
        # (a Python print, so redirect_stderr catches it); it does not concern MaMuJoCo.
        with contextlib.redirect_stderr(io.StringIO()):
            from gymnasium_robotics import mamujoco_v1
    except ImportError as exc:
        raise HarlMiniError(f"mamujoco: the Multi-Agent MuJoCo environments {_INSTALL_HINT} "
                            f"(import failed: {exc})") from None
    return mujoco, mamujoco_v1


@contextlib.contextmanager
def _quiet_mujoco_compiler(mujoco):
    """Swallow MuJoCo's C-level "settotalmass is deprecated" warning while a model compiles
    (Gymnasium's HalfCheetah XML uses it; MuJoCo's default handler also appends it to a
    MUJOCO_LOG.TXT in the working directory); other MuJoCo warnings become Python warnings."""
    old = mujoco.get_mju_user_warning()
    caught: list[str] = []
    mujoco.set_mju_user_warning(caught.append)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(old)
        for msg in caught:
            if "settotalmass" not in msg:
                warnings.warn(f"MuJoCo: {msg}", RuntimeWarning, stacklevel=3)


def _unknown(scenario: str, agent_conf: str, why: str = "") -> HarlMiniError:
    return HarlMiniError(f"unknown MaMuJoCo scenario {scenario}-{agent_conf!s}{why}; available: "
                         f"{', '.join(available_scenarios())} (as mamujoco:<Scenario>-<agent_conf>)")


class MaMuJoCoVecEnv(MultiAgentVecEnv):
    """B copies of one MaMuJoCo task behind the multi-agent step API (see the module docstring).

    =====================  ==============  ================================================
    Argument               Type            Meaning
    =====================  ==============  ================================================
    ``scenario``           str             robot: ``HalfCheetah``, ``Ant``, ``Walker2d``, …
    ``agent_conf``         str             partition: ``2x3``, ``4x2``, ``9|8``, …
    ``num_envs``           int             B copies
    ``seed``               int             copy b is reset with ``seed + b``
    ``device``             str/device      where every returned tensor lives
    ``obs``                str             ``"local"`` (library observation) or
                                           ``"global"`` (state + one-hot id, HARL-like)
    ``agent_obsk``         int             hops of neighbouring joints a local observation
                                           includes (default 1, the library's; HARL's
                                           configs say 0 but give full state anyway)
    ``max_episode_steps``  int             truncation length (default 1000)
    ``dtype``              torch dtype     of observations, state and reward
    ``**env_kwargs``                       to ``mamujoco_v1.parallel_env``
    =====================  ==============  ================================================

    Attributes beyond the base class: ``scenario``, ``agent_conf``, ``max_episode_steps``,
    ``action_low`` / ``action_high`` (per agent, [dim_i] float tensors of the actuator
    control ranges the actions are clipped to) and ``envs`` (the B ``parallel_env``
    objects, for rendering or inspection).
    """

    def __init__(self, scenario: str, agent_conf: str, num_envs: int = 1, seed: int = 0, device="cpu",
                 obs: str = "local", agent_obsk: int = 1, max_episode_steps: int = 1000,
                 dtype: torch.dtype = torch.float32, **env_kwargs):
        mujoco, mamujoco_v1 = _import_mamujoco()
        self.name = f"mamujoco:{scenario}-{agent_conf}"
        self.scenario, self.agent_conf = scenario, agent_conf
        self.num_envs = positive_int(num_envs, "num_envs")
        self.max_episode_steps = positive_int(max_episode_steps, "max_episode_steps")
        if isinstance(agent_obsk, bool) or not isinstance(agent_obsk, int) or agent_obsk < 0:
            raise HarlMiniError(f"agent_obsk: expected an integer >= 0, got {agent_obsk!r}")
        if not isinstance(obs, str):
            raise HarlMiniError(f"obs: expected one of {', '.join(_OBS_MODES)}, got {obs!r}")
        check_choice(obs, _OBS_MODES, "observation mode")
        check_float_dtype(dtype)
        self.device = as_device(device)
        self.obs_mode, self.agent_obsk, self.dtype = obs, agent_obsk, dtype
        self._env_kwargs = dict(env_kwargs)

        self.envs = []
        library_conf = agent_conf
        if (scenario, agent_conf) in ONE_ACTUATOR_PER_AGENT:
            if "agent_factorization" in env_kwargs:
                raise HarlMiniError(f"{self.name}: this partition is built from its own agent_factorization; "
                                    "pass agent_factorization= with a library partition instead")
            library_conf = ONE_ACTUATOR_PER_AGENT[(scenario, agent_conf)]
            env_kwargs = {**env_kwargs, "agent_factorization": one_actuator_factorization(scenario, agent_conf)}
        try:
            with _quiet_mujoco_compiler(mujoco):
                for _ in range(self.num_envs):
                    self.envs.append(mamujoco_v1.parallel_env(scenario, library_conf, agent_obsk=agent_obsk,
                                                              **env_kwargs))
        except NotImplementedError:
            raise _unknown(scenario, agent_conf) from None
        except TypeError as exc:
            raise HarlMiniError(f"{self.name}: bad keyword argument for mamujoco_v1.parallel_env ({exc})") from None
        except Exception as exc:  # the library raises a bare Exception for an unknown partition
            if "UNKNOWN partitioning" in str(exc) or "Partitioning, required" in str(exc):
                raise _unknown(scenario, agent_conf) from None
            raise
        pz = self.envs[0]
        self._inner = [e.single_agent_env.unwrapped for e in self.envs]
        inner = self._inner[0]
        self.agents = list(pz.possible_agents)
        self.num_agents = len(self.agents)
        self.state_dim = int(inner.observation_space.shape[0])

        # Action layout: agent i's entries, concatenated in agent order, scatter to these
        # actuator indices of the robot's action vector.
        act_ids, act_dims = [], []
        for part in pz.agent_action_partitions:
            ids = [int(i) for node in part for i in np.atleast_1d(node.act_ids)]
            act_ids.extend(ids)
            act_dims.append(len(ids))
        nu = int(inner.action_space.shape[0])
        if sorted(act_ids) != list(range(nu)):
            raise HarlMiniError(f"{self.name}: the agent partition does not cover each of the {nu} actuators "
                                f"exactly once (actuator ids {act_ids})")
        self._act_ids = np.asarray(act_ids, dtype=np.int64)
        low = np.asarray(inner.action_space.low, dtype=np.float64)[self._act_ids]
        high = np.asarray(inner.action_space.high, dtype=np.float64)[self._act_ids]
        self._low, self._high = low, high
        self.action_spaces = [("box", d) for d in act_dims]
        splits = np.cumsum([0] + act_dims)
        self.action_low = [torch.as_tensor(low[a:b], dtype=torch.float32) for a, b in zip(splits[:-1], splits[1:])]
        self.action_high = [torch.as_tensor(high[a:b], dtype=torch.float32) for a, b in zip(splits[:-1], splits[1:])]

        if obs == "local":
            self.obs_dims = [int(pz.observation_space(a).shape[0]) for a in self.agents]
        else:
            self.obs_dims = [self.state_dim + self.num_agents] * self.num_agents
        self._check_spaces()

        B = self.num_envs
        # Preallocated numpy buffers, one [B, d] array per agent plus one for the state, in
        # the output dtype where numpy has it: copies write their rows, and a step turns
        # each buffer into a tensor with one torch.from_numpy (of a copy) per agent.
        self._np_dtype = np.float64 if dtype == torch.float64 else np.float32
        self._convert_dtype = dtype not in (torch.float32, torch.float64) or self.device.type != "cpu"
        dims = self.obs_dims + [self.state_dim]
        self._next = [np.zeros((B, d), dtype=self._np_dtype) for d in dims]
        self._final = [np.zeros((B, d), dtype=self._np_dtype) for d in dims]
        if obs == "global":
            for bufs in (self._next, self._final):
                for i in range(self.num_agents):
                    bufs[i][:, self.state_dim + i] = 1.0
        self._reward = np.zeros(B, dtype=self._np_dtype)
        self._flags = np.zeros((2, B), dtype=bool)  # terminated, truncated
        self._flat_actions = np.zeros((B, nu))
        self._actions = np.zeros((B, nu))
        self._act_splits = [(int(a), int(b)) for a, b in zip(splits[:-1], splits[1:])]
        self._state_sig = int(mujoco.mjtState.mjSTATE_INTEGRATION)
        self._state_size = int(mujoco.mj_stateSize(inner.model, self._state_sig))
        self.reset(seed)

    # -- observation plumbing ---------------------------------------------------------------
    def _write(self, b: int, state_vec, bufs) -> None:
        """Write copy b's observations (built from its current MuJoCo data) into ``bufs``."""
        bufs[-1][b] = state_vec
        if self.obs_mode == "local":
            pz = self.envs[b]
            for i in range(self.num_agents):
                bufs[i][b] = pz._get_obs_agent(i)
        else:
            S = self.state_dim
            for i in range(self.num_agents):
                bufs[i][b, :S] = state_vec

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x.copy())
        return t.to(device=self.device, dtype=self.dtype) if self._convert_dtype else t

    def _convert(self, bufs):
        """(obs list, state) tensors from a buffer set."""
        out = [self._tensor(x) for x in bufs]
        return out[:-1], out[-1]

    # -- MultiAgentVecEnv hooks -------------------------------------------------------------
    def _reset(self, seed):
        for b, inner in enumerate(self._inner):
            state_vec, _ = inner.reset(seed=None if seed is None else seed + b)
            self._write(b, state_vec, self._next)
        return self._convert(self._next)

    def _step(self, actions):
        flat = self._flat_actions
        for a, (lo, hi) in zip(actions, self._act_splits):
            flat[:, lo:hi] = a.detach().cpu().numpy()
        np.clip(flat, self._low, self._high, out=flat)
        self._actions[:, self._act_ids] = flat
        terminated, truncated = self._flags
        limit = self.episode_t.cpu().numpy() + 1 >= self.max_episode_steps
        any_done = False
        for b, inner in enumerate(self._inner):
            state_vec, r, term, _, _ = inner.step(self._actions[b])
            self._reward[b] = r
            terminated[b] = term
            self._write(b, state_vec, self._final)
            if term or limit[b]:
                any_done = True
                state_vec, _ = inner.reset()
                self._write(b, state_vec, self._next)
        truncated[:] = limit & ~terminated
        final_obs, final_state = self._convert(self._final)
        if any_done:
            keep = ~(terminated | truncated)
            for buf, fbuf in zip(self._next, self._final):
                buf[keep] = fbuf[keep]
            obs, state = self._convert(self._next)
        else:
            obs, state = [o.clone() for o in final_obs], final_state.clone()
        flags = torch.from_numpy(self._flags.copy()).to(self.device)
        return obs, state, self._tensor(self._reward), flags[0], flags[1], final_obs, final_state

    # -- checkpoints ------------------------------------------------------------------------
    def _get_state(self) -> dict:
        import mujoco

        copies = []
        for inner in self._inner:
            m, d = inner.model, inner.data
            integ = np.empty(self._state_size)
            mujoco.mj_getState(m, d, integ, self._state_sig)
            derived = {f: torch.from_numpy(np.array(getattr(d, f), dtype=np.float64).copy())
                       for f in _DERIVED_FIELDS if hasattr(d, f)}
            rng = inner.np_random.bit_generator.state
            copies.append({"integration": torch.from_numpy(integ), "derived": derived,
                           "rng": {"bit_generator": str(rng["bit_generator"]),
                                   "state": {k: int(v) for k, v in rng["state"].items()},
                                   "has_uint32": int(rng["has_uint32"]), "uinteger": int(rng["uinteger"])}})
        return {"copies": copies}

    def _set_state(self, state: dict) -> None:
        import mujoco

        copies = state.get("copies") if isinstance(state, dict) else None
        if not isinstance(copies, list) or len(copies) != self.num_envs:
            raise HarlMiniError(f"{self.name}: the snapshot does not hold {self.num_envs} MuJoCo copies")
        for inner, c in zip(self._inner, copies):
            integ = c["integration"].detach().cpu().to(torch.float64).numpy()
            if integ.shape != (self._state_size,):
                raise HarlMiniError(f"{self.name}: the snapshot's MuJoCo state has {integ.shape[0]} numbers, "
                                    f"this model needs {self._state_size}")
            mujoco.mj_setState(inner.model, inner.data, np.ascontiguousarray(integ), self._state_sig)
            for f, v in c["derived"].items():
                arr = getattr(inner.data, f)
                arr[...] = v.detach().cpu().numpy().reshape(arr.shape)
            inner.np_random.bit_generator.state = c["rng"]

    def __deepcopy__(self, memo):
        """A new env in exactly this env's state. (Gymnasium's MuJoCo robots pickle by their
        constructor arguments, so a plain deepcopy would restart them.)"""
        new = MaMuJoCoVecEnv(self.scenario, self.agent_conf, num_envs=self.num_envs, seed=0, device=self.device,
                             obs=self.obs_mode, agent_obsk=self.agent_obsk, max_episode_steps=self.max_episode_steps,
                             dtype=self.dtype, **copy.deepcopy(self._env_kwargs, memo))
        new.set_state(copy.deepcopy(self.get_state(), memo))
        return new

    def close(self) -> None:
        for e in getattr(self, "envs", []):
            e.close()


_NAME = re.compile(r"^([A-Za-z0-9]+)-(.+)$")


def make(name: str, num_envs: int = 1, seed: int = 0, device="cpu", **kwargs) -> MaMuJoCoVecEnv:
    """Registry entry for ``mamujoco:<Scenario>-<agent_conf>``, e.g. ``HalfCheetah-2x3``.

    Keywords: ``obs``, ``agent_obsk``, ``max_episode_steps``, ``dtype`` (see
    :class:`MaMuJoCoVecEnv`); the rest go to ``mamujoco_v1.parallel_env``. Raises
    :class:`~harl_mini.errors.HarlMiniError` for an unknown name (listing the known ones)
    and when MuJoCo / Gymnasium-Robotics are not installed.
    """
    if not isinstance(name, str):
        raise HarlMiniError(f"mamujoco: expected a name <Scenario>-<agent_conf>, got {name!r}; available: "
                            f"{', '.join(available_scenarios())}")
    match = _NAME.match(name)
    if match is None:
        raise HarlMiniError(f"mamujoco: expected a name <Scenario>-<agent_conf> such as HalfCheetah-2x3, got "
                            f"{name!r}; available: {', '.join(available_scenarios())}")
    scenario, agent_conf = match.groups()
    if scenario not in SCENARIOS:
        raise _unknown(scenario, agent_conf, " (no such robot)")
    return MaMuJoCoVecEnv(scenario, agent_conf, num_envs=num_envs, seed=seed, device=device, **kwargs)
