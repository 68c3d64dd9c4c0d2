"""Train, evaluate and record one single-agent run (with provenance).

    python -m harl_mini.algos.run --algo ppo --env gym:CartPole-v1 --steps 150000 --seed 0 \\
        --out results/single_agent/ppo_cartpole_s0

trains ``--algo`` on ``--env`` for ``--steps`` environment steps with one torch thread,
evaluates the final policy deterministically, and writes ``metrics.csv`` (one row per
iteration) and ``manifest.json`` (:func:`harl_mini.provenance.run_manifest` plus the
resolved hyperparameters, the evaluation, the target and the steps needed to reach it).

Hyperparameters: the algorithm's defaults, then its ``PRESETS[env]`` overrides (unless
``--no-preset``), then any ``--set name=value`` (repeatable; values are Python literals,
e.g. ``--set hidden=(32,32) --set lr=3e-4``).

``python -m harl_mini.algos.run --summarize results/single_agent`` rewrites that folder's
README table from the manifests it contains.

"Reached the target" means: the mean undiscounted return of the last 10 completed training
episodes (the ``episode_return`` column) is at least :data:`TARGETS` [env].
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

from harl_mini.errors import HarlMiniError, MultiAgentEnvError

__all__ = ["TARGETS", "main", "run", "summarize", "default_out", "parse_set"]

#: Target mean return (last 10 training episodes) per environment.
TARGETS: dict[str, float] = {
    "gym:CartPole-v1": 475.0,
    "gym:Pendulum-v1": -300.0,
}


def _short(env: str) -> str:
    name = env.split(":", 1)[-1]
    return name.rsplit("-v", 1)[0].lower().replace("/", "_") or "env"


def default_out(algo: str, env: str, seed: int) -> Path:
    return Path("results") / "single_agent" / f"{algo}_{_short(env)}_s{seed}"


def parse_set(items: list[str], flag: str = "--set") -> dict:
    """``["lr=3e-4", "hidden=(32,32)"]`` -> ``{"lr": 3e-4, "hidden": (32, 32)}`` (Python literals,
    else the raw string); shared by the single- and multi-agent command lines."""
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise HarlMiniError(f"{flag}: expected name=value, got {item!r}")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        out[name.strip()] = value
    return out


def run(algo: str, env: str, steps: int, seed: int = 0, out=None, device: str = "cpu", eval_episodes: int = 10,
        preset: bool = True, overrides: dict | None = None, progress: bool = True, target: float | None = None) -> dict:
    """Train + evaluate + write; returns the manifest."""
    import torch

    from harl_mini.algos import get_algo
    from harl_mini.provenance import run_manifest, write_run

    module = get_algo(algo)
    hparams = dict(module.PRESETS.get(env, {})) if preset else {}
    hparams.update(overrides or {})
    target = TARGETS.get(env) if target is None else float(target)
    t0 = time.perf_counter()
    history = module.train(env, steps, seed=seed, device=device, progress=progress, **hparams)
    train_time = time.perf_counter() - t0
    evaluation = module.evaluate(history.policy, env, eval_episodes, deterministic=True)
    reached = None
    if target is not None:
        reached = next((row["steps"] for row in history.rows if row["episode_return"] >= target), None)
    last = history.last
    manifest = run_manifest(
        algo=algo, env=env, seed=seed, steps=last["steps"], steps_budget=steps, device=str(device),
        wall_time=round(train_time, 2), iterations=len(history), hyperparameters=history.config,
        preset=hparams if preset else None, overrides=overrides or {},
        final_return=last["episode_return"], final_return_window=10, episodes=last["episodes"],
        target=target, steps_to_target=reached,
        eval_deterministic={"episodes": eval_episodes, "mean": evaluation["mean"], "std": evaluation["std"],
                            "returns": evaluation["returns"]},
        torch_threads=torch.get_num_threads(),
    )
    if out is not None:
        write_run(out, history.rows, manifest)
    return manifest


def summarize(folder) -> str:
    """A Markdown table of every ``*/manifest.json`` under ``folder`` (also written to README)."""
    folder = Path(folder)
    lines = ["| run | algo | env | seed | final return (last 10 ep.) | deterministic eval (10 ep.) | target | "
             "steps to target | env steps | wall time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(folder.glob("*/manifest.json")):
        m = json.loads(path.read_text())
        ev = m.get("eval_deterministic") or {}
        reached = m.get("steps_to_target")
        lines.append(
            f"| `{path.parent.name}` | {m['algo']} | {m['env']} | {m['seed']} | {m['final_return']:.1f} | "
            f"{ev.get('mean', float('nan')):.1f} ± {ev.get('std', float('nan')):.1f} | "
            f"≥ {m['target']:g} | {'not reached' if reached is None else f'{reached:,}'} | {m['steps']:,} | "
            f"{m['wall_time']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None, multi_agent_algos=()) -> int:
    """The command line; ``multi_agent_algos`` (given by ``python -m harl_mini train``) are
    named when a multi-agent environment is asked for."""
    parser = argparse.ArgumentParser(prog="python -m harl_mini.algos.run", description=__doc__.splitlines()[0])
    parser.add_argument("--algo", help="reinforce, trpo or ppo")
    parser.add_argument("--env", help="environment name, e.g. gym:CartPole-v1")
    parser.add_argument("--steps", type=int, help="environment steps to train for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="output folder (default results/single_agent/<algo>_<env>_s<seed>)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--target", type=float, help="target mean return (default: TARGETS[env])")
    parser.add_argument("--no-preset", action="store_true", help="ignore the algorithm's PRESETS for this env")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a hyperparameter")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    parser.add_argument("--summarize", type=Path, metavar="FOLDER", help="print the results table of FOLDER")
    args = parser.parse_args(argv)

    if args.summarize is not None:
        print(summarize(args.summarize), end="")
        return 0
    missing = [f"--{n}" for n in ("algo", "env", "steps") if getattr(args, n) is None]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    if args.steps < 1:
        parser.error(f"--steps must be a positive integer, got {args.steps}")
    if args.threads < 1:
        parser.error(f"--threads must be a positive integer, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    out = args.out if args.out is not None else default_out(args.algo, args.env, args.seed)
    try:
        manifest = run(args.algo, args.env, args.steps, args.seed, out, args.device, args.eval_episodes,
                       preset=not args.no_preset, overrides=parse_set(args.set), progress=not args.no_progress,
                       target=args.target)
    except MultiAgentEnvError as exc:
        names = ", ".join(multi_agent_algos) or "those of harl_mini.marl"
        print(f"error: {exc}; train it with a multi-agent algorithm ({names}), e.g. "
              f"python -m harl_mini train --algo happo --env {args.env}",
              file=sys.stderr)
        return 2
    except HarlMiniError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reached = manifest["steps_to_target"]
    target = manifest["target"]
    print(f"{args.algo} on {args.env}, seed {args.seed}: final return {manifest['final_return']:.1f} (last 10 episodes), "
          f"deterministic eval {manifest['eval_deterministic']['mean']:.1f}, "
          + ("" if target is None else
             f"target {target:g} {'reached at ' + format(reached, ',') + ' steps' if reached else 'not reached'}, ")
          + f"{manifest['wall_time']:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
