"""Throughput of the multi-agent stack on batched one-state games (``python -m harl_mini.marl.bench``).

Two kinds of figures, in environment steps per second (one step = one joint step of one
copy, so an iteration of B copies × T steps is B·T steps):

1. ``env`` — the batched game alone: ``env.step`` with fixed random actions (validation,
   reward lookup, auto-reset and episode bookkeeping included);
2. ``train`` — end-to-end training with :func:`harl_mini.marl.runner.train` and the game
   preset (rollout with batched action sampling, GAE, the algorithm's actor update, the
   critic update, the exact J and a deterministic evaluation every iteration), for each
   algorithm: HAPPO, HATRPO, MAPPO (shared parameters + agent id), MAPPO-shared (no id),
   IPPO; on request (``--algos``) AR-HAPPO and MAT (Chapter 10).

Reference point: HARL's own HAPPO runs at ≈ 5,000 steps/s on a matrix game on this kind of
machine (20 in-process envs, per-step per-agent forwards; harl.md §6). The gap comes from
batching: thousands of copies step as one tensor operation, every agent's action is
sampled in one batched call, and the update's fixed costs amortise over B·T samples.

Run with ``OMP_NUM_THREADS=1`` (the figures are for one thread); ``--quick`` uses small
sizes (seconds, for the test suite).

**Full-scale environments** (``--scale``, Chapter 9): for every environment × algorithm ×
device of :data:`SCALE_CASES` (or ``--envs``/``--algos``/``--devices``), the same two
figures and their ratio, with the hyperparameters, copies and env options of the named
config (``configs/<family>/<task>/<algo>.yaml``):

==============  ==========================================================================
Column          Meaning
==============  ==========================================================================
``env``         env-only joint steps/s: ``env.step`` with fresh uniform random actions
                (``sample_actions``), validation and auto-reset included
``train``       end-to-end training steps/s: :meth:`MARunner.step` (rollout with policy
                sampling and critic values, GAE, the actor update, the critic update),
                timed over ``--iterations`` iterations after one warm-up iteration;
                periodic evaluation, logging and checkpoints are not included
``ratio``       train / env: the share of the env-only rate that training keeps
==============  ==========================================================================

    OMP_NUM_THREADS=1 python -m harl_mini.marl.bench --scale [--envs mpe:simple_spread] \
        [--algos happo,mappo] [--devices cpu,cuda] [--iterations 3]
"""

from __future__ import annotations

import argparse
import os
import time

__all__ = ["main", "env_throughput", "train_throughput", "SCALE_CASES", "scale_env_throughput",
           "scale_train_throughput"]

VARIANTS = {
    "happo": ("happo", {}),
    "hatrpo": ("hatrpo", {}),
    "mappo": ("mappo", {}),
    "mappo_shared": ("mappo", {"share_params": True, "agent_id": False}),
    "ippo": ("ippo", {}),
    "ar_happo": ("ar_happo", {}),  # Chapter 10: autoregressive MLP actors, HAPPO's update
    "mat": ("mat", {}),            # Chapter 10: the Multi-Agent Transformer (default size)
}


def env_throughput(game: str, num_envs: int, steps: int) -> float:
    """Steps per second of ``env.step`` alone (fixed random actions)."""
    import torch

    from harl_mini.envs import make_env

    env = make_env(f"game:{game}", num_envs=num_envs, seed=0)
    actions = env.sample_actions(torch.Generator().manual_seed(0))
    for _ in range(5):
        env.step(actions)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(actions)
        env.pop_episodes()
    return steps * num_envs / (time.perf_counter() - t0)


def train_throughput(variant: str, game: str, num_envs: int, iterations: int, num_steps: int = 1) -> float:
    """Steps per second of end-to-end training (game preset, ``iterations`` iterations, after a warm-up)."""
    from harl_mini.marl.runner import preset_for, train

    algo, over = VARIANTS[variant]
    hp = preset_for(f"game:{game}")
    hp.update(over, num_envs=num_envs, num_steps=num_steps)
    train(algo, f"game:{game}", num_envs * num_steps, seed=0, progress=False, **hp)  # warm-up
    steps = iterations * num_envs * num_steps
    t0 = time.perf_counter()
    train(algo, f"game:{game}", steps, seed=0, progress=False, **hp)
    return steps / (time.perf_counter() - t0)


#: environment -> the algorithms benchmarked by default (each with its shipped config,
#: :func:`harl_mini.marl.trainer.named_config`)
SCALE_CASES: dict[str, list[str]] = {
    "mpe:simple_spread": ["happo", "hatrpo", "mappo", "mat"],
    "vmas:transport": ["happo", "mappo"],
    "vmas:balance": ["happo", "mappo"],
    "mamujoco:HalfCheetah-2x3": ["happo", "hatrpo", "mappo", "mappo_separate", "mat"],
    "mamujoco:HalfCheetah-6x1": ["happo", "hatrpo", "mappo", "mappo_separate"],
    "mamujoco:Humanoid-9|8": ["happo", "mappo_separate"],  # 9 and 8 actions: no shared actor
    "mamujoco:Humanoid-17x1": ["happo", "mappo", "mappo_separate"],
}


def _scale_config(env: str, algo: str) -> dict:
    """The named config of (env, algo): ``{"num_envs", "env_kwargs", "hparams"}``."""
    from harl_mini.errors import HarlMiniError
    from harl_mini.marl.trainer import load_config, named_config

    if env not in SCALE_CASES:
        raise HarlMiniError(f"no benchmark config for {env!r}; available: {', '.join(SCALE_CASES)}")
    path = named_config(algo, env)
    if path is None:
        raise HarlMiniError(f"no config file for {algo} on {env} under configs/")
    cfg = load_config(path)
    # a variant such as mappo_separate is a config file whose own ``algo`` names the algorithm
    return {"algo": cfg.get("algo", algo), "num_envs": int(cfg.get("num_envs", 256)),
            "env_kwargs": dict(cfg.get("env_kwargs", {})), "hparams": dict(cfg.get("hparams", {}))}


def scale_env_throughput(env: str, num_envs: int, steps: int, device="cpu", **env_kwargs) -> float:
    """Env-only joint steps/s of ``env`` with ``num_envs`` copies (fresh random actions every step)."""
    import torch

    from harl_mini.envs import make_env

    e = make_env(env, num_envs=num_envs, seed=0, device=device, **env_kwargs)
    gen = torch.Generator(device=e.device).manual_seed(0)
    for _ in range(3):
        e.step(e.sample_actions(gen))
    if e.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        e.step(e.sample_actions(gen))
        e.pop_episodes()
    if e.device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    e.close()
    return steps * num_envs / dt


def scale_train_throughput(algo: str, env: str, num_envs: int, iterations: int, device="cpu", env_kwargs=None,
                           **hparams) -> float:
    """End-to-end training steps/s (:meth:`MARunner.step`), timed after one warm-up iteration."""
    import torch

    from harl_mini.envs import make_env
    from harl_mini.marl.runner import MARunner

    e = make_env(env, num_envs=num_envs, seed=0, device=device, **(env_kwargs or {}))
    runner = MARunner(algo, e, seed=0, device=device, num_envs=num_envs, **hparams)
    runner.step()
    if runner.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iterations):
        runner.step()
    if runner.device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    e.close()
    return iterations * runner.buffer.size / dt


def scale_main(envs: list[str], algos: list[str] | None, devices: list[str], iterations: int, quick: bool) -> int:
    """Print the full-scale table (see the module docstring)."""
    import torch

    from harl_mini.provenance import cpu_model

    print("harl_mini.marl.bench --scale: joint env-steps/s, env only vs end-to-end training "
          f"({'quick sizes' if quick else 'config sizes'})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {cpu_model()} ×{os.cpu_count()}"
          + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"))
    print()
    header = (f"{'environment':<26} {'algorithm':<14} {'device':<6} {'copies':>7} {'env steps/s':>12} "
              f"{'train steps/s':>14} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for env in envs:
        for device in devices:
            env_rate = None
            for algo in (algos or SCALE_CASES[env]):
                cfg = _scale_config(env, algo)
                hp = cfg["hparams"]
                n = cfg["num_envs"]
                if quick:
                    n = min(n, 8)
                    hp.update(num_steps=min(int(hp.get("num_steps", 8)), 10), num_minibatches=1, critic_minibatches=1)
                hp["eval_interval"] = 10**9
                if env_rate is None:
                    env_rate = scale_env_throughput(env, n, 20 if quick else 300, device, **cfg["env_kwargs"])
                rate = scale_train_throughput(cfg["algo"], env, n, 1 if quick else iterations, device,
                                              cfg["env_kwargs"], **hp)
                print(f"{env:<26} {algo:<14} {device:<6} {n:>7,} {env_rate:>12,.0f} {rate:>14,.0f} "
                      f"{rate / env_rate:>6.2f}", flush=True)
    return 0


def main(argv=None) -> int:
    """Run the benchmark, print a table, return 0."""
    parser = argparse.ArgumentParser(prog="python -m harl_mini.marl.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, for tests)")
    parser.add_argument("--games", default=None, help="comma-separated games (default climbing,prop1-6)")
    parser.add_argument("--num-envs", default=None, help="comma-separated batch sizes (default 1024,4096,16384)")
    parser.add_argument("--algos", default=None, help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--iterations", type=int, default=None,
                        help="timed training iterations (default 20; --scale: 3)")
    parser.add_argument("--scale", action="store_true", help="full-scale environments (see the module docstring)")
    parser.add_argument("--envs", default=None, help=f"--scale: comma-separated, from {', '.join(SCALE_CASES)}")
    parser.add_argument("--devices", default=None, help="--scale: comma-separated (default cpu, plus cuda if present)")
    args = parser.parse_args(None if argv is None else list(argv))

    import torch

    if args.scale:
        from harl_mini.errors import HarlMiniError

        envs = args.envs.split(",") if args.envs else list(SCALE_CASES)
        devices = args.devices.split(",") if args.devices else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
        try:
            for e in envs:
                if e not in SCALE_CASES:
                    raise HarlMiniError(f"no benchmark config for {e!r}; available: {', '.join(SCALE_CASES)}")
            return scale_main(envs, args.algos.split(",") if args.algos else None, devices, args.iterations or 3,
                              args.quick)
        except HarlMiniError as exc:
            print(f"error: {exc}")
            return 2

    games = (args.games or ("xor" if args.quick else "climbing,prop1-6")).split(",")
    sizes = [int(s) for s in (args.num_envs or ("256" if args.quick else "1024,4096,16384")).split(",")]
    default = [v for v in VARIANTS if v not in ("ar_happo", "mat")]  # Chapter 10's: on request
    algos = (args.algos or ("happo,hatrpo" if args.quick else ",".join(default))).split(",")
    iterations = args.iterations or (2 if args.quick else 20)
    for a in algos:
        if a not in VARIANTS:
            parser.error(f"unknown algorithm {a!r}; available: {', '.join(VARIANTS)}")

    print("harl_mini.marl.bench: env-steps/s on batched one-state games "
          f"({'quick sizes' if args.quick else 'full sizes'})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); reference: HARL HAPPO ≈ 5,000 steps/s "
          "on a matrix game (harl.md §6)")
    print()
    header = f"{'mode':<7} {'game':<10} {'algorithm':<14} {'num_envs':>9} {'steps/s':>13}"
    print(header)
    print("-" * len(header))
    for game in games:
        for n in sizes:
            sps = env_throughput(game, n, 20 if args.quick else 200)
            print(f"{'env':<7} {game:<10} {'-':<14} {n:>9,} {sps:>13,.0f}", flush=True)
        for algo in algos:
            for n in sizes:
                sps = train_throughput(algo, game, n, iterations)
                print(f"{'train':<7} {game:<10} {algo:<14} {n:>9,} {sps:>13,.0f}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
