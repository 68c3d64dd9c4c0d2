"""Train, evaluate and record multi-agent runs with provenance; sweep the book's game table.

One run::

    python -m harl_mini.marl.run --algo happo --env game:xor --steps 400000 --seed 0 \\
        --out results/games/happo_xor_s0 [--set lr=0.01 --set ent_coef=0.01]

trains with one torch thread and writes ``metrics.csv`` (one row per iteration) and
``manifest.json`` (:func:`harl_mini.provenance.run_manifest` plus the resolved
hyperparameters, the game's exact J* and J*_share, the final exact J of the learned
stochastic policy, the deterministic evaluation, and when/if it solved the game).

Hyperparameters: :class:`~harl_mini.marl.runner.MAConfig` defaults, then the env's
:data:`~harl_mini.marl.runner.PRESETS` entry (unless ``--no-preset``), then the
variant's overrides (:data:`VARIANTS`: ``mappo_shared`` is MAPPO with one shared policy
and no agent id — the setting of Proposition 1 —, ``mappo_separate`` MAPPO with one
network per agent), then ``--set name=value`` (Python literals).

"Solved" means: the exact J of the final stochastic joint policy (``j_exact``) is at least
0.99·J*; "iterations to solve" counts the iterations up to the first row where it was.

Sweep::

    python -m harl_mini.marl.run --sweep [--algos happo,hatrpo] [--games xor,climbing] \\
        [--seeds 0,1,2,3,4] [--jobs 2] [--root results/games]

runs every (variant, game, seed) of :data:`SWEEP` (or the subsets given) into
``<root>/<variant>_<game>_s<seed>/`` and rewrites ``<root>/README.md`` from all the
manifests found there (``--summarize ROOT`` only rewrites the README).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from harl_mini.algos.run import parse_set
from harl_mini.errors import HarlMiniError

__all__ = ["VARIANTS", "SWEEP", "run", "sweep", "summarize", "game_reference", "main"]

#: variant label -> (algorithm, overrides)
VARIANTS: dict[str, tuple[str, dict]] = {
    "happo": ("happo", {}),
    "hatrpo": ("hatrpo", {}),
    "mappo": ("mappo", {}),
    "mappo_shared": ("mappo", {"share_params": True, "agent_id": False}),
    "mappo_separate": ("mappo", {"share_params": False}),
    "ippo": ("ippo", {}),
}

#: the recorded sweep: games -> environment steps per run, variants, seeds
SWEEP = {
    "games": {"xor": 491_520, "prop1-4": 491_520, "prop1-6": 491_520, "permutation-3": 491_520,
              "permutation-4": 491_520, "climbing": 491_520, "penalty": 491_520, "a1a2": 8 * 4096},
    "variants": ["happo", "hatrpo", "mappo_shared", "mappo_separate", "ippo"],
    "a1a2_variants": ["happo", "hatrpo", "mappo_separate", "ippo"],
    "seeds": [0, 1, 2, 3, 4],
}

SOLVED_FRACTION = 0.99


def game_reference(env: str) -> dict:
    """``{"j_star", "j_star_share"}`` of a ``game:<name>`` env (None where undefined)."""
    if not env.startswith("game:") or env == "game:a1a2":
        return {"j_star": None, "j_star_share": None}
    from harl_mini.tabular import best_shared_policy, game_optimal_value, make_game

    game = make_game(env.split(":", 1)[1])
    share = None
    if len(set(game.action_counts)) == 1:
        share = float(best_shared_policy(game).value)
    return {"j_star": float(game_optimal_value(game)), "j_star_share": share}


def run(variant: str, env: str, steps: int, seed: int = 0, out=None, device: str = "cpu", preset: bool = True,
        overrides: dict | None = None, progress: bool = True) -> dict:
    """Train one variant, evaluate, write ``metrics.csv`` + ``manifest.json`` to ``out``; return the manifest."""
    import torch

    from harl_mini.marl.runner import evaluate, preset_for, train
    from harl_mini.provenance import run_manifest, write_run

    if variant not in VARIANTS:
        raise HarlMiniError(f"unknown algorithm {variant!r}; available: {', '.join(VARIANTS)}")
    algo, variant_overrides = VARIANTS[variant]
    hparams = preset_for(env) if preset else {}
    hparams.update(variant_overrides)
    hparams.update(overrides or {})
    ref = game_reference(env)
    t0 = time.perf_counter()
    history = train(algo, env, steps, seed=seed, device=device, progress=progress, **hparams)
    train_time = time.perf_counter() - t0
    evaluation = evaluate(history.policy, env, 16, deterministic=True)
    rows = history.rows
    key = "j_exact" if "j_exact" in rows[-1] else "episode_return"
    solved_row = None
    if ref["j_star"] is not None:
        target = SOLVED_FRACTION * ref["j_star"]
        solved_row = next((r for r in rows if r[key] >= target), None)
    final_j = rows[-1][key]
    last = history.last
    manifest = run_manifest(
        algo=variant, base_algo=algo, env=env, seed=seed, steps=last["steps"], steps_budget=steps,
        device=str(device), wall_time=round(train_time, 3), iterations=len(rows), hyperparameters=history.config,
        preset=preset_for(env) if preset else None, variant_overrides=variant_overrides, overrides=overrides or {},
        j_star=ref["j_star"], j_star_share=ref["j_star_share"], final_j=final_j, final_j_kind=key,
        j_first_iteration=rows[0][key],
        solved=None if ref["j_star"] is None else bool(final_j >= SOLVED_FRACTION * ref["j_star"]),
        iterations_to_solve=None if solved_row is None else solved_row["iteration"] + 1,
        steps_to_solve=None if solved_row is None else solved_row["steps"],
        wall_time_to_solve=None if solved_row is None else round(solved_row["wall_time"], 3),
        steps_per_s=round(last["steps"] / max(train_time, 1e-9), 1),
        eval_deterministic={"episodes": 16, "mean": evaluation["mean"], "std": evaluation["std"]},
        torch_threads=torch.get_num_threads(),
    )
    if out is not None:
        write_run(out, rows, manifest)
    return manifest


def _run_job(job: tuple) -> str:
    variant, game, seed, steps, root, device = job
    import torch

    torch.set_num_threads(1)
    out = Path(root) / f"{variant}_{game}_s{seed}"
    m = run(variant, f"game:{game}", steps, seed, out, device, progress=False)
    solved = "" if m["solved"] is None else (" solved" if m["solved"] else " not solved")
    return f"{out.name}: J = {m['final_j']:.4f}{solved}, {m['wall_time']:.1f} s"


def sweep(variants=None, games=None, seeds=None, root="results/games", jobs: int = 1, device: str = "cpu") -> Path:
    """Run the (variant, game, seed) grid of :data:`SWEEP` (or the given subsets); rewrite the README."""
    games = list(SWEEP["games"]) if games is None else list(games)
    seeds = SWEEP["seeds"] if seeds is None else list(seeds)
    todo = []
    for game in games:
        if game not in SWEEP["games"]:
            raise HarlMiniError(f"unknown sweep game {game!r}; available: {', '.join(SWEEP['games'])}")
        allowed = SWEEP["a1a2_variants"] if game == "a1a2" else SWEEP["variants"]
        for variant in (allowed if variants is None else [v for v in variants if v in allowed]):
            for seed in seeds:
                todo.append((variant, game, seed, SWEEP["games"][game], str(root), device))
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for line in pool.map(_run_job, todo):
                print(line, flush=True)
    else:
        for job in todo:
            print(_run_job(job), flush=True)
    return write_readme(root)


def _fmt(x, spec=".3f"):
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def summarize(root) -> str:
    """Markdown tables of every ``*/manifest.json`` under ``root`` (games, then a¹a²)."""
    root = Path(root)
    groups: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(root.glob("*/manifest.json")):
        m = json.loads(path.read_text())
        groups.setdefault((m["env"], m["algo"]), []).append(m)
    order = {v: k for k, v in enumerate(VARIANTS)}
    games = [e for e in dict.fromkeys(env for env, _ in groups) if e != "game:a1a2"]
    lines = ["| game | J* | J*_share | algorithm | seeds solved (J ≥ 0.99 J*) | final J (mean ± std) | "
             "min / max final J | iterations to solve (mean, solved seeds) | wall time to solve (s) | "
             "wall time per run (s) | steps/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for env in sorted(games, key=lambda e: list(SWEEP["games"]).index(e.split(":")[1])
                      if e.split(":")[1] in SWEEP["games"] else 99):
        for algo in sorted({a for e, a in groups if e == env}, key=lambda a: order.get(a, 99)):
            ms = groups[(env, algo)]
            js = [m["final_j"] for m in ms]
            solved = sum(bool(m["solved"]) for m in ms)
            sd = statistics.pstdev(js) if len(js) > 1 else 0.0
            lines.append(
                f"| {env.split(':')[1]} | {_fmt(ms[0]['j_star'], 'g')} | {_fmt(ms[0]['j_star_share'], '.4g')} | "
                f"{algo} | {solved}/{len(ms)} | {statistics.fmean(js):.4f} ± {sd:.4f} | {min(js):.3f} / {max(js):.3f} | "
                f"{_fmt(_mean([m['iterations_to_solve'] for m in ms]), '.1f')} | "
                f"{_fmt(_mean([m['wall_time_to_solve'] for m in ms]), '.2f')} | "
                f"{statistics.fmean(m['wall_time'] for m in ms):.1f} | "
                f"{statistics.fmean(m['steps_per_s'] for m in ms):,.0f} |")
    out = "\n".join(lines) + "\n"
    a1a2 = sorted({a for e, a in groups if e == "game:a1a2"}, key=lambda a: order.get(a, 99))
    if a1a2:
        rows = ["| algorithm | seeds | J after iteration 1 (mean; exact −0.0625 → simultaneous −0.5625, "
                "sequential 0.9375) | J after iteration 2 | J after the last iteration | iterations |",
                "|---|---|---|---|---|---|"]
        for algo in a1a2:
            ms = groups[("game:a1a2", algo)]
            j1, j2 = [], []
            for m in ms:
                folder = root / f"{m['algo']}_a1a2_s{m['seed']}"
                vals = _column(folder / "metrics.csv", "j_exact")
                j1.append(vals[0])
                j2.append(vals[1] if len(vals) > 1 else float("nan"))
            rows.append(f"| {algo} | {len(ms)} | {statistics.fmean(j1):.4f} | {statistics.fmean(j2):.4f} | "
                        f"{statistics.fmean(m['final_j'] for m in ms):.3f} | {ms[0]['iterations']} |")
        out += "\n" + "\n".join(rows) + "\n"
    return out


def _column(csv_path: Path, name: str) -> list[float]:
    import csv

    with open(csv_path) as f:
        return [float(r[name]) for r in csv.DictReader(f)]


_README_HEAD = """# Recorded multi-agent runs on the one-state cooperative games

Written by `python -m harl_mini.marl.run --sweep` (tables regenerated from the `manifest.json`
files with `python -m harl_mini.marl.run --summarize results/games`). Each folder
`<algorithm>_<game>_s<seed>/` holds `metrics.csv` (one row per iteration) and `manifest.json`
(git commit, versions, CPU, thread count, command, resolved hyperparameters, J*, J*_share,
final J, when the run solved the game).

**Metric.** `final J` is the *exact* objective J(π) = Σ_a Π_i π^i(a^i) r(a) of the final
*stochastic* joint policy (column `j_exact`), not a noisy batch mean. A run *solves* a game
when J ≥ 0.99·J*. J*_share is the best value any single policy shared by all agents can reach
(`harl_mini.tabular.best_shared_policy`; Proposition 1: 2/2^n on prop1-n, n!/n^n on
permutation-n); MAPPO-shared (one network, no agent id) can never exceed it.

**Settings** (`PRESETS["game:"]` in `harl_mini/marl/runner.py`, identical for every algorithm):
4,096 parallel copies × 1 step per iteration (each episode is one step), γ = 0, λ = 1,
linear actors and critic on the constant observation (`hidden=()`: a tabular softmax policy),
Adam lr 0.02 for the actors and 0.05 for the critic, 5 PPO epochs, clip 0.2, no entropy bonus,
advantages standardised, ValueNorm on. HATRPO: δ = 0.01, CG 10, damping 0.1, backtracking 0.8 ×
10, accept ratio 0.5. 120 iterations (491,520 steps) per run, one torch thread, two runs at a
time on a shared 2-core machine (wall times are ±30 % noisy).
"""


def write_readme(root, extra: str | None = None) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    notes = root / "NOTES.md"
    text = _README_HEAD + "\n## Results\n\n" + summarize(root)
    if notes.exists():
        text += "\n" + notes.read_text()
    if extra:
        text += "\n" + extra
    (root / "README.md").write_text(text)
    return root / "README.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harl_mini.marl.run", description=__doc__.splitlines()[0])
    parser.add_argument("--algo", help=f"one of {', '.join(VARIANTS)}")
    parser.add_argument("--env", help="environment name, e.g. game:xor")
    parser.add_argument("--steps", type=int, help="environment steps to train for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="output folder (default results/games/<algo>_<game>_s<seed>)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--no-preset", action="store_true", help="ignore PRESETS for this env")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a hyperparameter")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    parser.add_argument("--sweep", action="store_true", help="run the recorded grid (see --algos/--games/--seeds)")
    parser.add_argument("--algos", help="comma-separated variants for --sweep")
    parser.add_argument("--games", help="comma-separated games for --sweep (names without 'game:')")
    parser.add_argument("--seeds", help="comma-separated seeds for --sweep")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes for --sweep (at most 2 advised)")
    parser.add_argument("--root", type=Path, default=Path("results/games"), help="output root of --sweep")
    parser.add_argument("--summarize", type=Path, metavar="ROOT", help="rewrite ROOT/README.md from its manifests")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, args.threads))
    try:
        if args.summarize is not None:
            print(write_readme(args.summarize).read_text(), end="")
            return 0
        if args.sweep:
            split = lambda s: None if s is None else [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
            seeds = None if args.seeds is None else [int(s) for s in split(args.seeds)]
            sweep(split(args.algos), split(args.games), seeds, args.root, args.jobs, args.device)
            return 0
        missing = [f"--{n}" for n in ("algo", "env", "steps") if getattr(args, n) is None]
        if missing:
            parser.error(f"the following arguments are required: {', '.join(missing)}")
        out = args.out or Path("results/games") / f"{args.algo}_{args.env.split(':')[-1]}_s{args.seed}"
        m = run(args.algo, args.env, args.steps, args.seed, out, args.device, not args.no_preset,
                parse_set(args.set), not args.no_progress)
    except HarlMiniError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    solved = "" if m["solved"] is None else (
        f", solved in {m['iterations_to_solve']} iterations" if m["solved"] else ", not solved")
    print(f"{args.algo} on {args.env}, seed {args.seed}: final J {m['final_j']:.4f} (J* {m['j_star']}, "
          f"J*_share {m['j_star_share']}){solved}, deterministic eval {m['eval_deterministic']['mean']:.3f}, "
          f"{m['wall_time']:.1f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
