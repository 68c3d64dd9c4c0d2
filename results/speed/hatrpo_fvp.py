"""HATRPO before and after the cheaper Fisher-vector products, measured side by side.

Variants, each a fresh process with one torch thread, run in rotating order within every
round (so that load changes hit all of them alike):

* ``before``: the trainer of an older checkout (``--before DIR``, e.g. a ``git worktree`` of
  the commit before the changes), full-batch product through ``torch.func.jvp``;
* ``after``: this checkout, full batch (``fvp_subsample = 1``: the default, HARL's choice),
  the product's J·v from :func:`harl_mini.algos.trpo.linearize`;
* ``after-0.2``: this checkout, the product on every 5th sample (``fvp_subsample = 0.2``,
  OpenAI Baselines' TRPO);
* ``after-0.2-nodiag``: the same with ``diagnostics=False`` (no KL/entropy pass after the
  update: the logged ``kl`` and ``entropy`` become NaN, the training itself is unchanged).

Each process builds the named HATRPO config of the environment, runs one warm-up iteration of
:meth:`harl_mini.marl.runner.MARunner.step` and times ``--iterations`` more, then prints a
hash of the actors' parameters. ``after-0.2-nodiag`` must agree with ``after-0.2`` bit for
bit (the diagnostics pass does not train), and the script says whether it does. ``after``
and ``before`` compute the same matrix by different operations (agreement to 1e-9 in
float64 is tested in tests/test_algos.py), so their parameters differ in rounding.

    python results/speed/hatrpo_fvp.py --before /tmp/before --rounds 3 > results/speed/hatrpo_fvp.txt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _side_by_side import CHILD_TIMED_STEPS, ROOT, header, interleave, run_child, summarize

CHILD = r"""
import hashlib, json, sys, time, torch
torch.set_num_threads(1)
import harl_mini
from harl_mini.envs import make_env
from harl_mini.marl.bench import _scale_config
from harl_mini.marl.runner import MARunner
env, iterations, frac, diag = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
cfg = _scale_config(env, "hatrpo")
hp = dict(cfg["hparams"])
if frac != 1.0:
    hp["fvp_subsample"] = frac
if not diag:
    hp["diagnostics"] = False
e = make_env(env, num_envs=cfg["num_envs"], seed=0, **cfg["env_kwargs"])
runner = MARunner(cfg["algo"], e, seed=0, num_envs=cfg["num_envs"], **hp)
hashed = runner.actors.parameters()
""" + CHILD_TIMED_STEPS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, type=Path, help="checkout of the commit before the change")
    ap.add_argument("--envs", default="mpe:simple_spread,mamujoco:HalfCheetah-2x3")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=3)
    args = ap.parse_args()
    header(args.before)
    print(f"# {args.rounds} rounds x {args.iterations} timed iterations (after one warm-up) per variant and env")
    variants = [("before", args.before, (1.0, True)), ("after", ROOT, (1.0, True)), ("after-0.2", ROOT, (0.2, True)),
                ("after-0.2-nodiag", ROOT, (0.2, False))]
    for env in args.envs.split(","):
        def measure(tree, extra):
            frac, diag = extra
            return run_child(tree, CHILD, env, args.iterations, frac, "1" if diag else "0")

        rates, hashes = interleave(variants, args.rounds, measure, env, "steps/s")
        summarize(env, rates, ("after", "after-0.2", "after-0.2-nodiag"), "steps/s")
        print(f"SUMMARY {env} bit-identical after-0.2-nodiag vs after-0.2 (diagnostics do not train): "
              f"{hashes['after-0.2-nodiag'] == hashes['after-0.2']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
