"""Throughput of the multi-agent stack on batched one-state games (``python -m harl_mini.marl.bench``).

Two kinds of figures, in environment steps per second (one step = one joint step of one
copy, so an iteration of B copies × T steps is B·T steps):

1. ``env`` — the batched game alone: ``env.step`` with fixed random actions (validation,
   reward lookup, auto-reset and episode bookkeeping included);
2. ``train`` — end-to-end training with :func:`harl_mini.marl.runner.train` and the game
   preset (rollout with batched action sampling, GAE, the algorithm's actor update, the
   critic update, the exact J and a deterministic evaluation every iteration), for each
   algorithm: HAPPO, HATRPO, MAPPO (shared parameters + agent id), MAPPO-shared (no id),
   IPPO.

Reference point: HARL's own HAPPO runs at ≈ 5,000 steps/s on a matrix game on this kind of
machine (20 in-process envs, per-step per-agent forwards; harl.md §6). The gap comes from
batching: thousands of copies step as one tensor operation, every agent's action is
sampled in one batched call, and the update's fixed costs amortise over B·T samples.

Run with ``OMP_NUM_THREADS=1`` (the figures are for one thread); ``--quick`` uses small
sizes (seconds, for the test suite).
"""

from __future__ import annotations

import argparse
import time

__all__ = ["main", "env_throughput", "train_throughput"]

VARIANTS = {
    "happo": ("happo", {}),
    "hatrpo": ("hatrpo", {}),
    "mappo": ("mappo", {}),
    "mappo_shared": ("mappo", {"share_params": True, "agent_id": False}),
    "ippo": ("ippo", {}),
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


def main(argv=None) -> int:
    """Run the benchmark, print a table, return 0."""
    parser = argparse.ArgumentParser(prog="python -m harl_mini.marl.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, for tests)")
    parser.add_argument("--games", default=None, help="comma-separated games (default climbing,prop1-6)")
    parser.add_argument("--num-envs", default=None, help="comma-separated batch sizes (default 1024,4096,16384)")
    parser.add_argument("--algos", default=None, help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--iterations", type=int, default=None, help="timed training iterations (default 20)")
    args = parser.parse_args(None if argv is None else list(argv))

    import torch

    games = (args.games or ("xor" if args.quick else "climbing,prop1-6")).split(",")
    sizes = [int(s) for s in (args.num_envs or ("256" if args.quick else "1024,4096,16384")).split(",")]
    algos = (args.algos or ("happo,hatrpo" if args.quick else ",".join(VARIANTS))).split(",")
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
