"""The rollout's hot-loop changes, before and after: IPPO at JaxMARL's sizes on MPE simple_spread (or any config).

The changes (commit 0a1b64c): the trainer's rollout validates actions and environment outputs
in full on every ``CHECK_EVERY``-th step only (its own sampled actions are valid by
construction) and checks the whole rollout's observations and rewards once at its end; the
critic skips its old-prediction pass when the value loss is not clipped; and IPPO may share
one critic network between agents (``share_critic``, JaxMARL's architecture).

Variants, each a fresh process with one torch thread, in rotating order within every round:

* ``before``: an older checkout (``--before DIR``, e.g. a ``git worktree`` of 8d7f247),
  one critic per agent (the only choice there);
* ``after``: this checkout, one critic per agent (``share_critic=False``): its parameters
  must equal ``before``'s bit for bit (the changes skip checks, not computations);
* ``after-shared``: this checkout with ``share_critic=True`` (the config of the peer
  benchmark's JaxMARL cells, ``results/peers/configs/ippo_mpe_simple_spread_jaxmarl.yaml``).

Each process builds the config at ``--envs`` copies, runs one warm-up iteration of
:meth:`harl_mini.marl.runner.MARunner.step`, times ``--iterations`` more and prints a hash of
all parameters.

    python results/speed/hot_loop.py --before /tmp/before8d7 > results/speed/hot_loop_ippo.txt

``--config FILE`` times another config instead (e.g. ``configs/mpe/simple_spread/happo.yaml``,
to check that HAPPO and MAPPO lose no speed); ``after-shared`` then runs only for IPPO, and
``--envs`` defaults to the config's own number of copies.

    python results/speed/hot_loop.py --before /tmp/before8d7 --config configs/mpe/simple_spread/happo.yaml > results/speed/hot_loop_happo.txt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _side_by_side import CHILD_TIMED_STEPS, ROOT, header, interleave, run_child, summarize
CONFIG = ROOT / "results/peers/configs/ippo_mpe_simple_spread_jaxmarl.yaml"

CHILD = r"""
import hashlib, json, sys, time, torch, yaml
torch.set_num_threads(1)
import harl_mini
from harl_mini.marl.runner import MARunner
config, num_envs, iterations, shared = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cfg = yaml.safe_load(open(config))  # not load_config: the older checkout would reject share_critic
hp = {k: v for k, v in cfg["hparams"].items() if k != "share_critic"}
if shared != "n/a":
    hp["share_critic"] = shared == "1"
runner = MARunner(cfg["algo"], cfg["env"], seed=0, env_kwargs=cfg["env_kwargs"], num_envs=num_envs, **hp)
hashed = list(runner.actors.parameters()) + list(runner.critic.parameters())
""" + CHILD_TIMED_STEPS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, type=Path, help="checkout of the commit before the change")
    ap.add_argument("--config", type=Path, default=CONFIG, help="a harl_mini config file")
    ap.add_argument("--envs", default=None, help="numbers of copies (default: 16,128 for the JaxMARL config, "
                                                  "else the config's num_envs)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=8)
    args = ap.parse_args()
    header(args.before)
    import yaml
    config = args.config.resolve()
    spec = yaml.safe_load(config.read_text())
    ippo = spec["algo"] == "ippo"
    sizes = args.envs or ("16,128" if config == CONFIG else str(spec.get("num_envs", 256)))
    steps = spec.get("hparams", {}).get("num_steps")
    print(f"# config {config.relative_to(ROOT)} ({spec['algo']}, {steps} steps per copy); {args.rounds} rounds x "
          f"{args.iterations} timed iterations (after one warm-up) per variant and size")
    variants = [("before", args.before, "n/a"), ("after", ROOT, "0" if ippo else "n/a")]
    variants += [("after-shared", ROOT, "1")] if ippo else []
    for num_envs in (int(n) for n in sizes.split(",")):
        label = f"{num_envs}x{steps}"
        rates, hashes = interleave(variants, args.rounds,
                                   lambda tree, shared: run_child(tree, CHILD, config, num_envs, args.iterations, shared),
                                   label, "env-steps/s")
        summarize(label, rates, [v[0] for v in variants[1:]], "env-steps/s")
        print(f"SUMMARY {label} bit-identical after vs before: {hashes['after'] == hashes['before']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
