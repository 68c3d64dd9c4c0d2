"""Where a HAPPO/HATRPO iteration spends its time, and what the diagnostics pass costs.

For each named config, one warm-up iteration and then ``--iterations`` timed ones of
:meth:`harl_mini.marl.runner.MARunner.step`, with the runner's phases wrapped in timers:
rollout (``collect``), actor update, diagnostics (per-agent KL and entropy after the update,
on every k-th sample, k = max(1, S // ``DIAG_SAMPLES``); ``diagnostics=False`` skips it), critic update. One torch
thread.

    OMP_NUM_THREADS=1 python results/speed/diagnostics_cost.py > results/speed/diagnostics_cost.txt
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

import torch

from harl_mini.envs import make_env
from harl_mini.marl import runner as R
from harl_mini.marl.bench import _scale_config
from harl_mini.provenance import cpu_model


def timed(spent, key, fn):
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            spent[key] += time.perf_counter() - t0
    return wrapper


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="mpe:simple_spread/happo,mpe:simple_spread/hatrpo,"
                                       "mamujoco:HalfCheetah-2x3/happo,mamujoco:HalfCheetah-2x3/hatrpo")
    ap.add_argument("--iterations", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}; {cpu_model()} x{os.cpu_count()}; 1 torch "
          f"thread; DIAG_SAMPLES = {R.DIAG_SAMPLES}; load average at start {os.getloadavg()[0]:.2f}")
    for case in args.cases.split(","):
        env_name, algo = case.rsplit("/", 1)
        cfg = _scale_config(env_name, algo)
        env = make_env(env_name, num_envs=cfg["num_envs"], seed=0, **cfg["env_kwargs"])
        runner = R.MARunner(cfg["algo"], env, seed=0, num_envs=cfg["num_envs"], **cfg["hparams"])
        runner.step()
        spent = defaultdict(float)
        runner.collect = timed(spent, "rollout", runner.collect)
        runner._diagnostics = timed(spent, "diagnostics", runner._diagnostics)
        runner._critic_update = timed(spent, "critic update", runner._critic_update)
        update = runner.update
        runner.update = timed(spent, "update (all)", update)
        t0 = time.perf_counter()
        for _ in range(args.iterations):
            runner.step()
        total = time.perf_counter() - t0
        actor = spent["update (all)"] - spent["diagnostics"] - spent["critic update"]
        parts = {"rollout": spent["rollout"], "advantages + actor update": actor, "diagnostics": spent["diagnostics"],
                 "critic update": spent["critic update"]}
        parts["other"] = total - sum(parts.values())
        print(f"{case}: {runner.buffer.size:,} samples per iteration, {total / args.iterations:.2f} s per iteration; "
              + "; ".join(f"{k} {v / total:.1%}" for k, v in parts.items()))
        env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
