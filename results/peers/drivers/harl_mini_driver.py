"""Time harl_mini's training loop (runs in the project's .venv; see ../README.md).

    python harl_mini_driver.py --config configs/mpe/simple_spread/happo.yaml --iterations 4 \
        [--set '{"num_envs": 16, "hparams": {"num_steps": 128}}']

The config file gives ``algo``, ``env``, ``env_kwargs``, ``num_envs`` and ``hparams``
(:func:`harl_mini.marl.trainer.load_config`); ``--set`` overrides them (a JSON object;
``hparams`` and ``env_kwargs`` are merged key by key). The loop is
:meth:`harl_mini.marl.runner.MARunner.step` (rollout, GAE, the actor update, the critic
update, the per-iteration diagnostics), K + 1 times: the rate is measured over the last K
iterations (the first is warm-up), ``rate_incl_first`` over all of them plus the runner's
construction (env creation and reset, networks). No evaluation, logging or checkpoint
runs inside the loop (``train``/the CLI add those; HARL's tuned MPE configs evaluate every
25 iterations, more than a benchmark run has).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import Timer, emit, one_thread_torch  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True, help="a harl_mini config file (configs/...)")
    p.add_argument("--set", default="{}", help="JSON overrides of the config's keys")
    p.add_argument("--iterations", type=int, default=4, help="timed iterations after one warm-up iteration")
    args = p.parse_args()

    one_thread_torch()
    import torch

    from harl_mini.marl.runner import MARunner
    from harl_mini.marl.trainer import load_config

    cfg = load_config(args.config)
    over = json.loads(args.set)
    for key in ("hparams", "env_kwargs"):
        cfg[key] = {**cfg.get(key, {}), **over.pop(key, {})}
    cfg.update(over)
    num_envs = int(cfg.get("num_envs", 256))
    hp = dict(cfg["hparams"], num_envs=num_envs)

    timer = Timer()
    timer.start()
    runner = MARunner(cfg["algo"], cfg["env"], seed=0, env_kwargs=cfg["env_kwargs"], **hp)
    for _ in range(args.iterations + 1):
        timer.lap()
        runner.step()
    timer.stop()
    runner.env.close()
    emit({
        "side": "harl_mini", "algo": cfg["algo"], "env": cfg["env"], "env_kwargs": cfg["env_kwargs"],
        "num_envs": num_envs, "num_steps": hp.get("num_steps"),
        "resolved": dict(vars(runner.cfg)), "torch": torch.__version__,
        **timer.summary(runner.buffer.size, args.iterations),
    })


if __name__ == "__main__":
    main()
