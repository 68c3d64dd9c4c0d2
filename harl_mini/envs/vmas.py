r"""``vmas:<scenario>``: the VMAS simulator (Bettini et al., 2022) as a batched multi-agent env.

VMAS (Vectorized Multi-Agent Simulator) is a 2-D physics engine written in PyTorch: all
``num_envs`` copies of a scenario are stepped by the same tensor operations, on the CPU or
a GPU, so one call advances thousands of copies. :class:`VmasEnv` puts a VMAS scenario
behind the :class:`~harl_mini.envs.multi.MultiAgentVecEnv` step API::

    env = make_env("vmas:transport", num_envs=1024, seed=0)      # or VmasEnv("transport", 1024)
    obs, state = env.obs, env.state                                # already reset with seed 0
    obs, state, reward, terminated, truncated, final_obs, final_state = env.step(actions)

What comes back (B = ``num_envs``, N agents, every tensor on ``device``, float32):

=================  ====================  ==============================================
Returned           Shape                 Meaning
=================  ====================  ==============================================
``obs[i]``         [B, obs_dims[i]]      agent i's VMAS observation (dims may differ per
                                         agent: ``simple_speaker_listener`` has 3 and 11)
``state``          [B, Σ obs_dims]       **the concatenation of all agents' observations**
                                         (VMAS has no global-state API), the input of a
                                         centralised critic
``reward``         [B]                   **the mean over agents** of VMAS's per-agent
                                         rewards
``terminated``     [B] bool              VMAS's own ``done()`` (transport: every package
                                         on its goal; balance: the package touched the
                                         floor or reached its goal; navigation: every
                                         agent on its goal)
``truncated``      [B] bool              the adapter's time limit: ``episode_t + 1 >=
                                         max_steps`` and not terminated
``final_obs``,     as obs / state        the observations the step led to before the
``final_state``                          automatic reset (equal to obs / state where not
                                         done), for bootstrapping V(s_T) on truncation
=================  ====================  ==============================================

Conventions
-----------
**Team reward.** ``transport`` and ``balance`` give every agent the same reward, so the
mean equals that shared reward; ``navigation`` shares its progress reward (default
``shared_rew=True``) and adds each agent's own collision penalty, so the mean is the shared
part plus the average penalty. In scenarios with individual rewards the mean is the team
objective of a cooperative game; a scenario with adversaries (``simple_tag``, …) is not
cooperative and its mean reward is of little use.

**Time limit.** VMAS's own ``max_steps`` is left off (``None``): the adapter applies the
limit itself so that termination and truncation stay apart (VMAS would otherwise OR them
into one ``done``). ``max_steps`` defaults to 100 for every scenario, as in BenchMARL's
VMAS task configurations, except ``football`` (500, also BenchMARL's).

**Automatic reset.** A copy whose episode ended is reset in the same step. When every
copy ends at once (the usual case with a time limit) one batched ``env.reset()`` does it.
When only some end (a terminal state), VMAS 1.5.2 offers only ``reset_at(i)`` for one copy,
and it costs about as much as a whole batched reset (it recomputes batch-wide tensors and
masks one row): in ``balance`` with 1024 copies and random actions about 14 copies
terminate per step, and resetting them one by one took 5× longer than the step itself. So
with ``partial_reset="batched"`` the adapter saves the simulation (see *Checkpoints*),
resets every copy at once and writes the rows of the copies that go on back. "auto" (the
default) does this for the scenarios of :data:`BATCHED_RESET_SCENARIOS`, where it was
checked to leave the running copies exactly as ``reset_at(i)`` does, and calls
``reset_at(i)`` per copy elsewhere (``"per_index"``). A single done copy always uses
``reset_at(i)``.

**Actions.** With ``continuous_actions=True`` (the default) agent i has the space
``("box", dim)``; the adapter **clips** every action to VMAS's range — physical entries to
[−u_range, u_range], communication entries (agents that speak, e.g. the speaker of
``simple_speaker_listener``) to [0, 1] — because a Gaussian policy's samples are unbounded
and VMAS would reject them. The log-probability of the unclipped sample is the caller's
business. With ``continuous_actions=False`` agent i has ``("discrete", n)``: VMAS's flat
index over the product of its per-dimension choices (9 = 3 × 3 for a 2-D holonomic agent,
27 = 9 × 3 for the speaker with 3 messages).

**Seeding.** VMAS draws its randomness (spawn positions, noise) from the torch / NumPy /
``random`` global generators, which it swaps in and out around every call from *one*
state shared by all VMAS environments of the process. The adapter gives each
:class:`VmasEnv` its own private copy of that state (and, on CUDA, its own CUDA generator
state), swapped in around each VMAS call, so two adapters do not disturb each other or
the caller's generators. ``reset(seed)`` re-seeds it: same seed and same actions ⇒ the
same observations and rewards on CPU (GPU kernels may differ in the last bits).

**Checkpoints.** ``get_state()`` captures the whole simulation: every tensor, plain
number and object reference reachable from the VMAS environment through its scenario,
world, entities, states, actions, joints, sensors and the scenario's own helpers (found by
walking their attributes, so scenario-specific state such as transport's shaping tensors,
balance's ``on_the_ground`` or the speaker's randomly chosen goal landmark is included),
plus the private random state, as tensors, numbers, lists and dicts that
``torch.load(weights_only=True)`` reads back. ``set_state`` writes it into an env built
with the same scenario, ``num_envs`` and keyword arguments, which then continues exactly as
the original would have. This was checked on all 41 scenarios of VMAS 1.5.2 with both
action kinds (7 steps across automatic resets); the tests cover transport, balance and
simple_speaker_listener. Not captured: NumPy arrays and objects of other libraries held by
a scenario (none of the 41 holds state there), and a tensor that is a *view* of another
becomes a separate copy.

===============================  ======================================================
Scenario                         Tested here (agents, obs dims, action spaces)
===============================  ======================================================
``transport``                    4 agents push a heavy package to a goal; obs 11,
                                 box 2 (discrete 9)
``balance``                      3 agents carry a package on a line to a goal; obs 16,
                                 box 2 (discrete 9)
``navigation``                   4 agents reach their own goals, with LiDAR; obs 18,
                                 box 2 (discrete 9)
``simple_speaker_listener``      MPE port, **heterogeneous**: the speaker (obs 3, box 5
                                 = 2 physical + 3 message, discrete 27) tells the
                                 listener (obs 11, box 2, discrete 9) its goal
===============================  ======================================================

Any other VMAS scenario name (:func:`available_scenarios`: 21 main, 9 MPE ports and 11
debug scenarios) is accepted; extra keyword arguments of :func:`make` go to the scenario
(``n_agents=``, ``package_mass=``, …). Scenarios with dictionary observations are refused.

Sources: M. Bettini, R. Kortvelesy, J. Blumenkamp, A. Prorok, "VMAS: A Vectorized
Multi-Agent Simulator for Collective Robot Learning", DARS 2022 (github.com/proroklab/
VectorizedMultiAgentSimulator, version 1.5.2); BenchMARL (Bettini et al., 2024) for the
``max_steps`` defaults.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import random

import numpy as np
import torch

from harl_mini.envs.multi import MultiAgentVecEnv, as_device, positive_int
from harl_mini.errors import HarlMiniError, check_choice

__all__ = ["VmasEnv", "make", "available_scenarios", "DEFAULT_MAX_STEPS", "BATCHED_RESET_SCENARIOS"]

#: episode length applied by the adapter when ``max_steps`` is not given
DEFAULT_MAX_STEPS = 100
_MAX_STEPS = {"football": 500}

_PARTIAL_RESETS = ("auto", "batched", "per_index")
#: scenarios whose batched partial reset was checked to leave the not-done copies exactly as
#: VMAS's reset_at(i) does (same observations, rewards and dones afterwards); "auto" uses it
#: for these and reset_at(i) per copy for the others (joints, football's AI, road_traffic,
#: het_mass, … where reset_at(i) itself changes other copies or shared state)
BATCHED_RESET_SCENARIOS = frozenset({
    "balance", "ball_passage", "discovery", "dispersion", "dropout", "flocking", "give_way", "multi_give_way",
    "navigation", "passage", "reverse_transport", "sampling", "transport", "wheel", "wind_flocking",
    "simple", "simple_adversary", "simple_crypto", "simple_push", "simple_reference", "simple_speaker_listener",
    "simple_spread", "simple_tag", "simple_world_comm", "circle_trajectory", "diff_drive", "drone", "goal",
    "kinematic_bicycle", "line_trajectory", "pollock", "vel_control"})
_PIP = "pip install vmas  (a dependency of harl_mini, so pip install -e . installs it too)"
# attributes of the VMAS Environment that hold rendering objects, not simulation state
_SKIP_ATTRS = frozenset({"viewer", "headless", "visible_display", "text_lines", "action_space",
                         "observation_space"})


def _import_vmas():
    try:
        import vmas
    except ImportError as exc:
        raise HarlMiniError(f"vmas:<scenario> needs the VMAS simulator, which is not installed ({exc}); "
                            f"install it with: {_PIP}") from None
    return vmas


def available_scenarios() -> list[str]:
    """The VMAS scenario names: main, then MPE ports, then debug scenarios."""
    vmas = _import_vmas()
    return list(vmas.scenarios) + list(vmas.mpe_scenarios) + list(vmas.debug_scenarios)


# -- the private random state ---------------------------------------------------------------
def _seeded_rng(seed: int, device: torch.device) -> dict:
    """Fresh (torch CPU, NumPy, random[, CUDA]) generator states for ``seed``, without
    touching the global generators."""
    rng = {"torch": torch.Generator().manual_seed(seed % 2**64).get_state(),
           "np": np.random.RandomState(seed % 2**32).get_state(),
           "py": random.Random(seed).getstate(), "cuda": None}
    if device.type == "cuda":
        rng["cuda"] = torch.Generator(device=device).manual_seed(seed % 2**64).get_state()
    return rng


def _rng_to_plain(rng: dict) -> dict:
    """The private random state as tensors / numbers / lists (``weights_only`` loadable)."""
    kind, keys, pos, has_gauss, cached = rng["np"]
    version, internal, gauss = rng["py"]
    return {"torch": rng["torch"].clone(), "np": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                   int(has_gauss), float(cached)],
            "py": [version, list(internal), gauss], "cuda": None if rng["cuda"] is None else rng["cuda"].clone()}


def _rng_from_plain(plain: dict) -> dict:
    kind, keys, pos, has_gauss, cached = plain["np"]
    version, internal, gauss = plain["py"]
    return {"torch": plain["torch"].clone(), "np": (kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached),
            "py": (version, tuple(internal), gauss), "cuda": None if plain["cuda"] is None else plain["cuda"].clone()}


# -- walking the simulation objects (checkpoints) -------------------------------------------
_PLAIN = (bool, int, float, type(None))


def _is_sim_object(obj, base_scenario) -> bool:
    """VMAS objects (and those of scenario files, which VMAS loads as module ``""``)."""
    if isinstance(obj, (type, torch.Tensor, enum.Enum)) or not hasattr(obj, "__dict__") or callable(obj):
        return isinstance(obj, base_scenario)
    mod = type(obj).__module__ or ""
    return (mod.startswith("vmas") or mod == "" or isinstance(obj, (base_scenario, torch.distributions.Distribution)))


def _plain_key(key) -> bool:
    if isinstance(key, tuple):
        return all(_plain_key(k) for k in key)
    return isinstance(key, (str, int, float, bool))


class _Ref:
    """A reference to a simulation object first reached at ``path`` (e.g. a listener's goal
    landmark, chosen at random on reset)."""

    def __init__(self, path):
        self.path = path


class _Container:
    """A list or dict met on the walk (re-created on restore where the target lacks it, e.g.
    a scenario's ``info_stored`` dict made on the first step)."""

    def __init__(self, kind: str, size: int):
        self.kind, self.size = kind, size


def _walk(root, base_scenario):
    """Every (path, container, key, value) whose value is a tensor, a plain number/None or a
    :class:`_Ref` to a simulation object, reachable from ``root`` through VMAS objects,
    torch distributions, lists, tuples and dicts. ``path`` is the tuple of keys (attribute
    names, list indices, dict keys) leading to the container; a dict keyed by simulation
    objects (football's AI keeps per-agent dicts) has :class:`_Ref` keys. The walk is
    breadth first and enters each object once, so every object is named by its shallowest
    path (``scenario._world._landmarks.1`` rather than a goal reference to it) and two
    envs built the same way are walked in the same order. Object-keyed dicts wait until
    everything else has been named."""
    seen: dict[int, tuple] = {id(root): ()}
    out = []
    queue = collections.deque([(root, ())])
    deferred = collections.deque()
    while queue or deferred:
        if queue:
            obj, path = queue.popleft()
            if isinstance(obj, dict) and not all(_plain_key(k) for k in obj):
                deferred.append((obj, path))
                continue
        else:
            obj, path = deferred.popleft()
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                if _plain_key(k):
                    items.append((k, v))
                elif id(k) in seen and _is_sim_object(k, base_scenario):
                    items.append((_Ref(seen[id(k)]), v))
        elif isinstance(obj, (list, tuple)):
            items = list(enumerate(obj))
        else:
            items = [(k, v) for k, v in vars(obj).items() if k not in _SKIP_ATTRS]
        for key, value in items:
            if isinstance(value, torch.Tensor) or isinstance(value, _PLAIN):
                out.append((path, obj, key, value))
                continue
            container = isinstance(value, (list, tuple, dict))
            if not container and not _is_sim_object(value, base_scenario):
                continue
            if id(value) in seen:
                if not container:
                    out.append((path, obj, key, _Ref(seen[id(value)])))
            else:
                seen[id(value)] = path + (key,)
                queue.append((value, path + (key,)))
                if isinstance(value, (list, dict)):
                    out.append((path, obj, key, _Container(type(value).__name__, len(value))))
    return out


def _encode_path(path) -> list:
    return [{"ref": _encode_path(k.path)} if isinstance(k, _Ref) else k for k in path]


def _resolve(root, path):
    """Follow an encoded path (see :func:`_encode_path`) from ``root``."""
    obj = root
    for key in path:
        if isinstance(key, dict):
            key = _resolve(root, key["ref"])
        obj = obj[key] if isinstance(obj, (list, tuple, dict)) else getattr(obj, key)
    return obj


class VmasEnv(MultiAgentVecEnv):
    """A VMAS scenario behind the multi-agent step API; see the module docstring.

    =======================  ==============  ==============================================
    Argument                 Type            Meaning
    =======================  ==============  ==============================================
    ``scenario``             str             a VMAS scenario name, e.g. ``"transport"``
    ``num_envs``             int             B parallel copies (VMAS's batch size)
    ``device``               str/device      where VMAS simulates and every tensor lives
    ``seed``                 int             seed of the first reset
    ``continuous_actions``   bool            Box actions (True) or discrete ones (False)
    ``max_steps``            int | None      time limit (None: 100, football 500)
    ``partial_reset``        str             ``"auto"``, ``"batched"`` or ``"per_index"``:
                                             how some (not all) copies are reset
    ``**scenario_kwargs``                    passed to the scenario (``n_agents=`` …)
    =======================  ==============  ==============================================
    """

    def __init__(self, scenario: str, num_envs: int = 1, device="cpu", seed: int = 0,
                 continuous_actions: bool = True, max_steps: int | None = None, partial_reset: str = "auto",
                 name: str | None = None, **scenario_kwargs):
        vmas = _import_vmas()
        from vmas.simulator.environment import Environment
        from vmas.simulator.scenario import BaseScenario

        names = available_scenarios()
        if not isinstance(scenario, str) or scenario not in names:
            raise HarlMiniError(f"unknown VMAS scenario {scenario!r}; available: {', '.join(names)}")
        self.num_envs = positive_int(num_envs, "num_envs")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise HarlMiniError(f"seed: expected an integer, got {seed!r}")
        if not isinstance(continuous_actions, bool):
            raise HarlMiniError(f"continuous_actions: expected True or False, got {continuous_actions!r}")
        self.max_steps = _MAX_STEPS.get(scenario, DEFAULT_MAX_STEPS) if max_steps is None else \
            positive_int(max_steps, "max_steps")
        self.device = as_device(device)
        check_choice(partial_reset, _PARTIAL_RESETS, "partial_reset")
        if partial_reset == "auto":
            partial_reset = "batched" if scenario in BATCHED_RESET_SCENARIOS else "per_index"
        self.scenario, self.continuous_actions, self.partial_reset = scenario, continuous_actions, partial_reset
        self.scenario_kwargs = dict(scenario_kwargs)
        self.name = name or f"vmas:{scenario}"
        self._Environment, self._BaseScenario = Environment, BaseScenario
        self._rng = _seeded_rng(seed, self.device)
        with self._own_rng():
            try:
                self._env = vmas.make_env(scenario, num_envs=self.num_envs, device=self.device,
                                          continuous_actions=continuous_actions, seed=None, dict_spaces=False,
                                          max_steps=None, **scenario_kwargs)
            except (AssertionError, TypeError, ValueError, KeyError) as exc:
                raise HarlMiniError(f"{self.name}: VMAS could not build the scenario with keyword arguments "
                                    f"{scenario_kwargs}: {type(exc).__name__}: {exc}") from None
            first = self._env.get_from_scenario(get_observations=True, get_rewards=False, get_infos=False,
                                                get_dones=False)[0]
        for i, o in enumerate(first):
            if not isinstance(o, torch.Tensor) or o.dim() != 2:
                raise HarlMiniError(f"{self.name}: agent {i} observes a {type(o).__name__}"
                                    f"{'' if not isinstance(o, torch.Tensor) else f' of shape {list(o.shape)}'}; "
                                    "only flat [B, dim] tensor observations are supported")
        self.num_agents = len(self._env.agents)
        self.agent_names = [a.name for a in self._env.agents]
        self.obs_dims = [int(o.shape[1]) for o in first]
        self.state_dim = sum(self.obs_dims)
        self.action_spaces, self._low, self._high = [], [], []
        for i, space in enumerate(self._env.action_space.spaces):
            if hasattr(space, "n"):
                self.action_spaces.append(("discrete", int(space.n)))
                self._low.append(None)
                self._high.append(None)
            else:
                self.action_spaces.append(("box", int(space.shape[0])))
                self._low.append(torch.as_tensor(space.low, dtype=torch.float32, device=self.device))
                self._high.append(torch.as_tensor(space.high, dtype=torch.float32, device=self.device))
        self._check_spaces()
        self.reset(seed)

    # -- the private random state -----------------------------------------------------------
    @contextlib.contextmanager
    def _own_rng(self):
        """Swap this env's random state into VMAS's shared one (and the CUDA generator) for
        the duration of the block, then put the previous one back."""
        shared = self._Environment.vmas_random_state
        saved = list(shared)
        shared[0], shared[1], shared[2] = self._rng["torch"], self._rng["np"], self._rng["py"]
        cuda = self._rng["cuda"] is not None
        if cuda:
            saved_cuda = torch.cuda.get_rng_state(self.device)
            torch.cuda.set_rng_state(self._rng["cuda"], self.device)
        try:
            yield
        finally:
            self._rng["torch"], self._rng["np"], self._rng["py"] = shared[0], shared[1], shared[2]
            shared[:] = saved
            if cuda:
                self._rng["cuda"] = torch.cuda.get_rng_state(self.device)
                torch.cuda.set_rng_state(saved_cuda, self.device)

    # -- MultiAgentVecEnv hooks ---------------------------------------------------------------
    def _observe(self, obs):
        obs = [o if o.dtype == torch.float32 else o.float() for o in obs]
        return obs, torch.cat(obs, dim=1)

    def _reset(self, seed):
        if seed is not None:
            self._rng = _seeded_rng(seed, self.device)
        with self._own_rng():
            obs = self._env.reset()
        return self._observe(obs)

    def _step(self, actions):
        vm_actions = []
        for a, (kind, _), low, high in zip(actions, self.action_spaces, self._low, self._high):
            if kind == "box":
                vm_actions.append(torch.clamp(a.to(torch.float32), min=low, max=high))
            else:
                vm_actions.append(a.reshape(-1, 1))
        with self._own_rng():
            obs, rewards, dones, _ = self._env.step(vm_actions)
        obs, state = self._observe(obs)
        reward = torch.stack([r.reshape(-1) for r in rewards], dim=1).to(torch.float32).mean(dim=1)
        terminated = dones.to(torch.bool)
        truncated = (self.episode_t + 1 >= self.max_steps) & ~terminated
        done = terminated | truncated
        final_obs, final_state = obs, state
        n_done = int(done.sum())
        if n_done == self.num_envs:
            with self._own_rng():
                obs = self._env.reset()
            obs, state = self._observe(obs)
        elif n_done > 0:
            with self._own_rng():
                self._reset_copies(done, n_done)
                fresh = self._env.get_from_scenario(get_observations=True, get_rewards=False, get_infos=False,
                                                    get_dones=False)[0]
            fresh, _ = self._observe(fresh)
            mask = done.unsqueeze(1)
            obs, state = self._observe([torch.where(mask, f, o) for f, o in zip(fresh, obs)])
        return obs, state, reward, terminated, truncated, final_obs, final_state

    def _reset_copies(self, done: torch.Tensor, n_done: int) -> None:
        """Reset the copies where ``done`` (some, not all; inside ``_own_rng``)."""
        if n_done == 1 or self.partial_reset == "per_index":
            for i in torch.nonzero(done).flatten().tolist():
                self._env.reset_at(i, return_observations=False)
            return
        # "batched": remember the simulation, reset every copy at once, then put the
        # not-done copies back (rows of batch tensors; everything else as it was, which is
        # what reset_at(i) leaves). One batched reset instead of n_done of them, each of
        # which costs about as much as the batched one in VMAS.
        tensors, records = self._snapshot(to_cpu=False)
        self._env.reset(return_observations=False)
        self._restore(tensors, records, keep=~done)

    def _snapshot(self, to_cpu: bool):
        """(tensors, records) describing the simulation; see :func:`_walk`."""
        tensors, index, records = [], {}, []
        for path, _, key, value in _walk(self._env, self._BaseScenario):
            where = [_encode_path(path), _encode_path((key,))[0]]
            if isinstance(value, torch.Tensor):
                if id(value) not in index:
                    index[id(value)] = len(tensors)
                    tensors.append(value.detach().cpu().clone() if to_cpu else value.detach().clone())
                records.append(where + ["tensor", index[id(value)]])
            elif isinstance(value, _Ref):
                records.append(where + ["ref", _encode_path(value.path)])
            elif isinstance(value, _Container):
                records.append(where + [value.kind, value.size])
            else:
                records.append(where + ["value", value])
        return tensors, records

    def _restore(self, tensors: list, records: list, keep: torch.Tensor | None = None) -> None:
        """Write a :meth:`_snapshot` back. With ``keep`` (a [B] bool mask), tensors whose
        first axis is the batch take the snapshot's rows only where ``keep`` and keep the
        simulation's current rows elsewhere."""
        env = self._env
        restored = [t.to(self.device) for t in tensors]

        def locate(path, key):
            try:
                return _resolve(env, path), (_resolve(env, key["ref"]) if isinstance(key, dict) else key)
            except (AttributeError, KeyError, IndexError, TypeError):
                raise HarlMiniError(f"{self.name}: the snapshot does not fit this env (nothing at "
                                    f"{'.'.join(map(str, path))}); build it with the same scenario, num_envs "
                                    "and scenario keyword arguments") from None

        def read(container, key):
            try:
                return container[key] if isinstance(container, (list, tuple, dict)) else getattr(container, key)
            except (AttributeError, KeyError, IndexError):
                return None

        def write(container, key, new):
            if isinstance(container, tuple):  # immutable: tensors are copied in place
                old = container[key]
                if isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor) and old.shape == new.shape:
                    old.copy_(new)
            elif isinstance(container, (list, dict)):
                container[key] = new
            else:
                setattr(container, key, new)

        # 1. lists and dicts the target lacks (made lazily by a scenario) or holds in another size
        for path, key, kind, size in records:
            if kind in ("list", "dict"):
                container, key = locate(path, key)
                current = read(container, key)
                if type(current).__name__ != kind or (kind == "list" and len(current) != size):
                    write(container, key, [None] * size if kind == "list" else {})
        # 2. resolve every leaf before writing any, so that no path is followed through a
        # reference that the restore is about to change; 3. write
        merged: dict[int, torch.Tensor] = {}
        targets = []
        for path, key, kind, value in records:
            if kind in ("list", "dict"):
                continue
            container, key = locate(path, key)
            if kind == "tensor":
                new = merged.get(value)
                if new is None:
                    new = restored[value]
                    if keep is not None and new.dim() > 0 and new.shape[0] == self.num_envs:
                        current = read(container, key)
                        if (isinstance(current, torch.Tensor) and current.shape == new.shape
                                and current.dtype == new.dtype):
                            mask = keep.reshape((-1,) + (1,) * (new.dim() - 1))
                            new = torch.where(mask, new, current)
                    merged[value] = new
            else:
                new = locate(value, None)[0] if kind == "ref" else value
            targets.append((container, key, new))
        for container, key, new in targets:
            write(container, key, new)

    def _get_state(self) -> dict:
        tensors, records = self._snapshot(to_cpu=True)
        return {"scenario": self.scenario, "continuous_actions": self.continuous_actions,
                "tensors": tensors, "records": records, "rng": _rng_to_plain(self._rng)}

    def _set_state(self, state: dict) -> None:
        if state.get("scenario") != self.scenario or state.get("continuous_actions") != self.continuous_actions:
            raise HarlMiniError(f"{self.name}: the snapshot is of scenario {state.get('scenario')!r} "
                                f"(continuous_actions={state.get('continuous_actions')}), this env runs "
                                f"{self.scenario!r} (continuous_actions={self.continuous_actions})")
        # copies: VMAS updates some tensors in place, which must not reach the caller's snapshot
        self._restore([t.clone() for t in state["tensors"]], state["records"])
        self._rng = _rng_from_plain(state["rng"])
        if self._rng["cuda"] is not None and self.device.type != "cuda":
            self._rng["cuda"] = None
        elif self._rng["cuda"] is None and self.device.type == "cuda":
            self._rng["cuda"] = _seeded_rng(0, self.device)["cuda"]


def make(name: str, num_envs: int = 1, seed: int = 0, device="cpu", continuous_actions: bool = True,
         max_steps: int | None = None, partial_reset: str = "auto", **scenario_kwargs) -> VmasEnv:
    """Registry entry for ``vmas:<scenario>``: ``VmasEnv(name, num_envs, device, seed, …)``.

    Unknown scenarios raise :class:`~harl_mini.errors.HarlMiniError` listing the VMAS
    scenarios; a missing VMAS raises one with the ``pip install`` command.
    """
    if not isinstance(name, str) or not name:
        names = ", ".join(available_scenarios())
        raise HarlMiniError(f"vmas: expected a scenario name, e.g. vmas:transport; available: {names}")
    return VmasEnv(name, num_envs, device, seed, continuous_actions, max_steps, partial_reset, **scenario_kwargs)
