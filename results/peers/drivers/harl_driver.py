"""Time PKU-MARL/HARL on mpe2's simple_spread_v3 (runs in the HARL venv; see ../README.md).

    python harl_driver.py --harl-src PATH --algo happo --iterations 4 [--inproc]

HARL's tuned config ``tuned_configs/pettingzoo_mpe/simple_spread_v2-discrete/<algo>/config.json``
is loaded from the checkout and changed only where a benchmark must: one torch thread
(``torch_threads`` 1, ``cuda`` False), no evaluation envs (none would run within the
timed iterations: HARL evaluates every 25), logs under a temporary folder and
``num_env_steps`` = (iterations + 1) × 20 × 200.

**The environment shim.** HARL's adapter imports ``pettingzoo.mpe.<scenario>`` and its
factory only accepts ``simple_spread_v2``. PettingZoo ≥ 1.25 moved MPE into the separate
package mpe2, whose ``simple_spread_v3`` is the environment harl_mini's
``mpe:simple_spread`` reproduces. Before HARL is imported, this driver registers the
modules ``pettingzoo.mpe`` and ``pettingzoo.mpe.simple_spread_v2`` in ``sys.modules``,
the latter being ``mpe2.simple_spread_v3`` itself, so HARL's
``importlib.import_module("pettingzoo.mpe.simple_spread_v2")`` builds the v3 env. HARL's
code is not changed. One API change separates the PettingZoo HARL pins (1.22.2, whose
``parallel_env.reset`` returns the observations) from 1.27 (it returns ``(obs, infos)``):
the driver rebinds the name ``ss`` (supersuit) inside HARL's adapter module to a namespace
whose ``pad_action_space_v0`` adds a thin wrapper that returns the observations alone;
``step`` has the same 5-tuple in both. The driver builds one HARL adapter itself and
stops unless its env class comes from ``mpe2.``; the subprocess envs are forked from this
process after the shim (Linux's default start method), so they resolve the same modules.

``--inproc`` replaces HARL's ``ShareSubprocVecEnv`` by its own ``ShareDummyVecEnv`` (the 20
envs stepped in this process), by rebinding the name in ``harl.utils.envs_tools``.

Timing (``_measure.Timer``): laps at HARL's per-iteration logger hook ``episode_init``; the
rate is measured over iterations 2 … K+1 (the first is warm-up); ``rate_incl_first`` adds
the first iteration and ``runner.run()``'s initial env reset (not the runner's
construction, which spawns the env processes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import Timer, emit, one_thread_torch  # noqa: E402


def install_shim() -> None:
    """``pettingzoo.mpe.simple_spread_v2`` → ``mpe2.simple_spread_v3`` (see the module docstring)."""
    import mpe2.simple_spread_v3 as v3
    import pettingzoo

    pkg = types.ModuleType("pettingzoo.mpe")
    pkg.__path__ = []  # a package, so that submodule imports look in sys.modules
    pkg.simple_spread_v2 = v3
    sys.modules["pettingzoo.mpe"] = pkg
    sys.modules["pettingzoo.mpe.simple_spread_v2"] = v3
    pettingzoo.mpe = pkg


class _ResetReturnsObs:
    """PettingZoo 1.22 ``reset`` semantics on a ≥ 1.23 parallel env: return the observations only."""

    def __init__(self, env):
        self._env = env

    def reset(self, seed=None, options=None):
        obs, _infos = self._env.reset(seed=seed, options=options)
        return obs

    def __getattr__(self, name):
        return getattr(self._env, name)


class _SupersuitCompat:
    """supersuit, with ``pad_action_space_v0`` wrapped in :class:`_ResetReturnsObs`."""

    def __init__(self, ss):
        self._ss = ss

    def pad_action_space_v0(self, env):
        return _ResetReturnsObs(self._ss.pad_action_space_v0(env))

    def __getattr__(self, name):
        return getattr(self._ss, name)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--harl-src", required=True)
    p.add_argument("--algo", required=True, choices=["happo", "mappo", "hatrpo"])
    p.add_argument("--iterations", type=int, default=4, help="timed iterations after one warm-up iteration")
    p.add_argument("--inproc", action="store_true", help="ShareDummyVecEnv instead of ShareSubprocVecEnv")
    args = p.parse_args()

    one_thread_torch()
    install_shim()
    sys.path.insert(0, os.path.abspath(args.harl_src))
    cfg_path = os.path.join(args.harl_src, "tuned_configs", "pettingzoo_mpe", "simple_spread_v2-discrete", args.algo,
                            "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    algo_args, env_args, main_args = cfg["algo_args"], cfg["env_args"], cfg["main_args"]
    threads, length = algo_args["train"]["n_rollout_threads"], algo_args["train"]["episode_length"]
    batch = threads * length
    algo_args["device"].update(cuda=False, torch_threads=1)
    algo_args["eval"]["use_eval"] = False
    algo_args["train"]["num_env_steps"] = (args.iterations + 1) * batch
    logdir = tempfile.mkdtemp(prefix="harl_bench_")
    algo_args["logger"]["log_dir"] = logdir

    import harl.envs.pettingzoo_mpe.pettingzoo_mpe_env as adapter
    import harl.utils.envs_tools as envs_tools

    adapter.ss = _SupersuitCompat(adapter.ss)

    if args.inproc:
        envs_tools.ShareSubprocVecEnv = envs_tools.ShareDummyVecEnv
    from harl.runners import RUNNER_REGISTRY

    runner = RUNNER_REGISTRY[main_args["algo"]](dict(main_args, exp_name="peer_bench"), algo_args, env_args)
    # HARL's adapter class, built once here: the shim must give mpe2's v3 env (the subprocess
    # workers are forked from this process after the shim, so they resolve the same module)
    probe = adapter.PettingZooMPEEnv(dict(env_args))
    env_module = type(probe.env.unwrapped).__module__
    probe.close()
    if not env_module.startswith("mpe2."):
        raise SystemExit(f"the shim failed: HARL built {env_module}")

    timer = Timer()
    hook = runner.logger.episode_init

    def episode_init(episode):
        timer.lap()
        hook(episode)

    runner.logger.episode_init = episode_init
    timer.start()
    runner.run()
    timer.stop()
    runner.close()
    emit({
        "side": "harl", "algo": args.algo, "vec_env": "dummy" if args.inproc else "subproc",
        "n_rollout_threads": threads, "episode_length": length, "env_module": env_module,
        "config": cfg_path.split(os.sep + "tuned_configs" + os.sep)[-1],
        **timer.summary(batch, args.iterations),
    })


if __name__ == "__main__":
    main()
