"""Time JaxMARL's IPPO-FF baseline on MPE simple_spread (runs in the JaxMARL venv; see ../README.md).

    python jaxmarl_driver.py --jaxmarl-src PATH --num-envs 16 --num-steps 128 --updates 50

Runs ``make_train`` of the repository's ``baselines/IPPO/ippo_ff_mpe.py`` (imported from the
checkout, unchanged) with its config ``baselines/IPPO/config/ippo_ff_mpe.yaml``, changed
only in NUM_ENVS, NUM_STEPS, TOTAL_TIMESTEPS (= updates × envs × steps) and NUM_SEEDS = 1
(the script's default vmaps 10 seeds; one seed is one training run, as on the harl_mini
side). As the script's ``main`` does, wandb is initialised in ``disabled`` mode (the
script logs through ``jax.experimental.io_callback`` → ``wandb.log`` every update) and
the jitted training function is vmapped over the seed keys.

Timing (one process):

* ``start`` → ``make_train`` → ``jax.jit(jax.vmap(train)).lower(keys).compile()``: the
  compile time ``compile_s`` (tracing included);
* first run of the compiled program (all updates) → ``rate_incl_first`` (with compile)
  = steps / (compile + first run);
* second run, same program, same keys → ``rate`` (without compile), ``rate_cpu``.

Threads: run with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` (set by bench.py) and,
if asked, under ``taskset``; ``busy_threads`` reports how many threads did the work.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import Timer, emit  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jaxmarl-src", required=True)
    p.add_argument("--num-envs", type=int, required=True)
    p.add_argument("--num-steps", type=int, default=128)
    p.add_argument("--updates", type=int, required=True, help="training iterations (NUM_UPDATES)")
    args = p.parse_args()

    ippo_dir = os.path.join(args.jaxmarl_src, "baselines", "IPPO")
    spec = importlib.util.spec_from_file_location("ippo_ff_mpe", os.path.join(ippo_dir, "ippo_ff_mpe.py"))
    ippo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ippo)

    import jax
    import jaxmarl
    import wandb
    import yaml

    with open(os.path.join(ippo_dir, "config", "ippo_ff_mpe.yaml")) as f:
        config = yaml.safe_load(f)
    batch = args.num_envs * args.num_steps
    config.update(NUM_ENVS=args.num_envs, NUM_STEPS=args.num_steps, TOTAL_TIMESTEPS=args.updates * batch, NUM_SEEDS=1)
    wandb.init(mode="disabled", config=config)
    keys = jax.random.split(jax.random.PRNGKey(config["SEED"]), config["NUM_SEEDS"])

    timer = Timer()
    timer.start()
    compiled = jax.jit(jax.vmap(ippo.make_train(config))).lower(keys).compile()
    timer.lap()  # compiled
    out = compiled(keys)
    jax.block_until_ready(out)
    timer.lap()  # first run done
    out = compiled(keys)
    jax.block_until_ready(out)
    timer.stop()
    ret = out["metrics"]["returned_episode_returns"]  # [seeds, updates, steps, actors]

    s = timer.summary(batch * args.updates, 1)  # "iterations" here: run 1 (warm, with compile), run 2
    (w0, _), (w1, _), (w2, _) = timer.laps
    s.update(
        rate_incl_first=batch * args.updates / (w2 - w0),  # compile + first run
        compile_s=w1 - w0, first_run_s=w2 - w1, batch=batch, iterations_timed=args.updates,
    )
    emit({
        "side": "jaxmarl", "algo": "ippo_ff", "env": config["ENV_NAME"], "num_envs": args.num_envs,
        "num_steps": args.num_steps, "config": {k: v for k, v in config.items() if k.isupper()},
        "jax": jax.__version__, "jaxmarl": getattr(jaxmarl, "__version__", "?"),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "final_return": float(ret[:, -1].mean()),
        **s,
    })


if __name__ == "__main__":
    main()
