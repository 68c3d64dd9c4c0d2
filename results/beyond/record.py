"""Re-creates the recorded runs of Chapter 10 (results/beyond/), one run at a time.

    nice -n 19 .venv/bin/python results/beyond/record.py games      # one-state games + distillation
                                                                    # (skips recorded runs; --force)
    nice -n 19 .venv/bin/python results/beyond/record.py mpe        # MAT on mpe:simple_spread, 3 seeds
    nice -n 19 .venv/bin/python results/beyond/record.py mamujoco   # MAT, HAPPO, MAPPO on HalfCheetah-2x3
    .venv/bin/python results/beyond/record.py summary               # rewrite README.md from the manifests

Run from the repository root; PLAN.md has the step budgets and the measured times. Every run
writes ``metrics.csv`` and ``manifest.json`` (:func:`harl_mini.provenance.run_manifest`:
commit, dirty flag, versions, CPU, threads, command, wall time, resolved hyperparameters).

**Games** (``games/<variant>_<game>_s<seed>/``): the one-state games of Chapter 6 with the
game preset of ``harl_mini.marl.runner.PRESETS`` (tabular actors, γ = 0, 4,096 copies × 1
step, Adam lr 0.02, standardised advantages, no entropy bonus; the settings of
``results/games``) in the ``*_preset`` variants, and in the others with two changes, the
entropy bonus 0.1 of Fu et al.'s ``perm_ar.py`` and advantages *not* standardised (a
standardised advantage rescales the policy gradient to unit size whatever J is, so no fixed
bonus can balance it near the optimum). MAT and MAT-Dec use 1,024 copies, lr 1e-3 and a
32-wide embedding (a transformer on 4,096 copies would be 4× slower). The ``*_fast`` variants
(climbing only) are the preset with 1,024 copies and learning rate 0.05 for 40 iterations. Each manifest adds the exact J
and the exact per-agent conditional entropies of the final stochastic policy
(:func:`harl_mini.marl.distill.exact_entropies`), and, for the AR-MAPPO and MAT teachers,
the result of distilling them into independent students
(:func:`harl_mini.marl.distill.distill`) next to the exact product of the teacher's
marginals (:func:`harl_mini.tabular.marginal_policies`).

**Full scale** (``fullscale/<algo>_<env>_s<seed>/``): ``python -m harl_mini train`` with the
named configs (``configs/mpe/simple_spread/mat.yaml``; ``configs/mamujoco/halfcheetah_2x3/
{mat,happo,mappo}.yaml``) at the budgets of PLAN.md. HAPPO and MAPPO on simple_spread are
the runs of Chapter 9 (``results/fullscale/``, same configs, 1e6 steps, evaluated every 1e5
steps: MAT's 5e5-step runs are compared with their evaluations at 5e5 steps).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
GAMES = ["permutation-3", "permutation-4", "permutation-5", "xor", "climbing"]
SEEDS = [0, 1, 2]
#: setting "bonus" (Fu et al.'s perm_ar.py: entropy bonus 0.1) changes the game preset in two ways;
#: setting "preset" is the game preset itself (standardised advantages, no bonus: the settings of
#: results/games and Chapter 8)
BONUS = {"norm_adv": False, "ent_coef": 0.1}
MAT_GAME = {"num_envs": 1024, "lr": 1e-3, "critic_lr": 1e-3, "n_embd": 32}
SMALL_GAMES = ["xor", "climbing"]
FAST = {"num_envs": 1024, "lr": 0.05, "critic_lr": 0.05}
#: variant -> (algorithm, overrides of the game preset, iterations, games)
VARIANTS = {
    "ar_mappo": ("ar_mappo", BONUS, 120, GAMES),
    "ar_happo": ("ar_happo", BONUS, 120, GAMES),
    "mat": ("mat", {**BONUS, **MAT_GAME}, 300, GAMES),
    "mat_dec": ("mat_dec", {**BONUS, **MAT_GAME}, 300, ["permutation-3", "climbing"]),
    "happo": ("happo", BONUS, 120, GAMES),
    "mappo": ("mappo", BONUS, 120, GAMES),
    "ar_mappo_preset": ("ar_mappo", {}, 120, GAMES),
    "ar_happo_preset": ("ar_happo", {}, 120, GAMES),
    "mat_preset": ("mat", MAT_GAME, 300, SMALL_GAMES),
    "happo_preset": ("happo", {}, 120, GAMES),
    "mappo_preset": ("mappo", {}, 120, GAMES),
    # climbing only: the preset with 1,024 copies and Adam lr 0.05 (larger steps, smaller batches)
    "ar_mappo_fast": ("ar_mappo", FAST, 40, ["climbing"]),
    "ar_happo_fast": ("ar_happo", FAST, 40, ["climbing"]),
    "happo_fast": ("happo", FAST, 40, ["climbing"]),
    "mappo_fast": ("mappo", FAST, 40, ["climbing"]),
}
DISTILL = ("ar_mappo", "mat", "ar_mappo_preset", "mat_preset")  # teachers distilled after training
#: full-scale runs: (config, seeds, steps, output name)
FULLSCALE = {
    "mpe": [("configs/mpe/simple_spread/mat.yaml", SEEDS, 500_000, "mat_simple_spread")],
    "mamujoco": [(f"configs/mamujoco/halfcheetah_2x3/{a}.yaml", SEEDS, 300_000, f"{a}_halfcheetah-2x3")
                 for a in ("mat", "happo", "mappo")],
}


def game_run(variant: str, game: str, seed: int) -> dict:
    import torch

    from harl_mini.envs import make_env
    from harl_mini.marl.distill import distill, exact_entropies, exact_factors, exact_j
    from harl_mini.marl.runner import preset_for, train
    from harl_mini.provenance import run_manifest, write_run
    from harl_mini.tabular import ar_entropies, ar_joint_policy, game_objective, marginal_policies, product_factors

    torch.set_num_threads(1)
    algo, over, iterations, _ = VARIANTS[variant]
    env = f"game:{game}"
    hp = preset_for(env)
    hp.update(over)
    steps = iterations * hp["num_envs"]
    t0 = time.perf_counter()
    history = train(algo, env, steps, seed=seed, progress=False, **hp)
    wall = time.perf_counter() - t0
    runner = history.runner
    H, cond = exact_entropies(runner.actors, runner.env)
    extra = {}
    if variant in DISTILL:
        demo_env = make_env(env, num_envs=4096, seed=seed + 1)
        t1 = time.perf_counter()
        res = distill(runner.actors, demo_env, num_steps=1, epochs=300, lr=0.05, seed=seed)
        g, factors, order = exact_factors(runner.actors, runner.env)
        marg = marginal_policies(g, ar_joint_policy(g, factors, order))
        H_marg, _ = ar_entropies(g, product_factors(g, marg, order), order)
        H_s, cond_s = exact_entropies(res.students, demo_env)
        extra["distill"] = {
            "samples": res.samples, "epochs": 300, "lr": 0.05, "final_loss": res.losses[-1],
            "wall_time": round(time.perf_counter() - t1, 3),
            "teacher_j": exact_j(runner.actors, runner.env), "teacher_entropy": H,
            "student_j": exact_j(res.students, demo_env), "student_entropy": H_s, "student_conditional": cond_s,
            "marginals_j": float(game_objective(g, marg)), "marginals_entropy": float(H_marg[0])}
    manifest = run_manifest(
        algo=variant, base_algo=algo, env=env, seed=seed, steps=history.last["steps"], steps_budget=steps,
        device="cpu", wall_time=round(wall, 3), iterations=len(history.rows), hyperparameters=history.config,
        final_j=history.last["j_exact"], j_first_iteration=history.rows[0]["j_exact"],
        final_joint_entropy=H, final_conditional_entropies=cond, order=list(range(runner.N)),
        steps_per_s=round(history.last["steps"] / wall, 1), **extra)
    write_run(ROOT / "games" / f"{variant}_{game}_s{seed}", history.rows, manifest)
    return manifest


def record_games(variants=None, games=None, force: bool = False) -> None:
    """Every (variant, game, seed) not recorded yet (all of them with ``force``)."""
    for variant, (_, _, _, allowed) in VARIANTS.items():
        if variants and variant not in variants:
            continue
        for game in allowed:
            if games and game not in games:
                continue
            for seed in SEEDS:
                if not force and (ROOT / "games" / f"{variant}_{game}_s{seed}" / "manifest.json").exists():
                    continue
                m = game_run(variant, game, seed)
                print(f"{variant:12s} {game:14s} s{seed}: J = {m['final_j']:.4f}, H = {m['final_joint_entropy']:.3f}, "
                      f"conditional {[round(c, 3) for c in m['final_conditional_entropies']]}, {m['wall_time']:.0f} s",
                      flush=True)


def record_fullscale(which: str) -> None:
    for config, seeds, steps, name in FULLSCALE[which]:
        for seed in seeds:
            out = ROOT / "fullscale" / f"{name}_s{seed}"
            cmd = [sys.executable, "-m", "harl_mini", "train", "--config", config, "--seed", str(seed), "--steps",
                   str(steps), "--out", str(out), "--overwrite", "--no-progress", "--no-tensorboard",
                   "--checkpoint-every", "0", "--keep-checkpoints", "1"]
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out.parent / f"{out.name}.log", "w") as log:
                rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}).returncode
            print(f"{out.name}: exit {rc}; " + (out.parent / f"{out.name}.log").read_text().strip().splitlines()[-1],
                  flush=True)


# ---------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------


def _fmt(xs, spec=".3f"):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return format(xs[0], spec)
    return f"{statistics.fmean(xs):{spec}} ± {statistics.pstdev(xs):{spec}}"


def summary() -> str:
    lines = ["# Recorded runs of Chapter 10", "", "Written by `python results/beyond/record.py summary` from the "
             "manifests (see `record.py` for the settings, `PLAN.md` for the budgets).", "",
             "## One-state games", "",
             "Final exact J and exact per-agent conditional entropies H(a^m | a^{0:m-1}) of the final stochastic "
             "policy (mean ± std over seeds; agents in execution order).", "",
             "| game | variant | seeds | J | joint entropy | conditional entropies | steps | wall time per run (s) |",
             "|---|---|---|---|---|---|---|---|"]
    games = {}
    for path in sorted((ROOT / "games").glob("*/manifest.json")):
        m = json.loads(path.read_text())
        games.setdefault((m["env"], m["algo"]), []).append(m)
    order = list(VARIANTS)
    for game in GAMES:
        for variant in order:
            ms = games.get((f"game:{game}", variant))
            if not ms:
                continue
            conds = list(zip(*[m["final_conditional_entropies"] for m in ms]))
            lines.append(f"| {game} | {variant} | {len(ms)} | {_fmt([m['final_j'] for m in ms], '.4f')} | "
                         f"{_fmt([m['final_joint_entropy'] for m in ms])} | "
                         f"{', '.join(_fmt(list(c), '.3f') for c in conds)} | {ms[0]['steps']:,} | "
                         f"{statistics.fmean(m['wall_time'] for m in ms):.0f} |")
    lines += ["", "Reference values: log n! = " + ", ".join(f"{math.log(math.factorial(n)):.3f} (n = {n})"
                                                          for n in (2, 3, 4, 5)) + "; log k for k = 5, 4, 3, 2: "
              + ", ".join(f"{math.log(k):.3f}" for k in (5, 4, 3, 2)) + ".", "",
              "## Distillation into independent students", "",
              "| game | teacher | seeds | teacher J | teacher entropy | student J | student entropy | "
              "exact product of marginals: J | its entropy |", "|---|---|---|---|---|---|---|---|---|"]
    for game in GAMES:
        for variant in DISTILL:
            ms = [m for m in games.get((f"game:{game}", variant), []) if "distill" in m]
            if not ms:
                continue
            d = [m["distill"] for m in ms]
            lines.append(f"| {game} | {variant} | {len(ms)} | {_fmt([x['teacher_j'] for x in d], '.4f')} | "
                         f"{_fmt([x['teacher_entropy'] for x in d])} | {_fmt([x['student_j'] for x in d], '.4f')} | "
                         f"{_fmt([x['student_entropy'] for x in d])} | {_fmt([x['marginals_j'] for x in d], '.4f')} | "
                         f"{_fmt([x['marginals_entropy'] for x in d])} |")
    lines += ["", "## Full scale", "", "| run | steps | final deterministic evaluation | recent training return | "
              "wall time (s) | steps/s |", "|---|---|---|---|---|---|"]
    for path in sorted((ROOT / "fullscale").glob("*/manifest.json")):
        m = json.loads(path.read_text())
        ev = m.get("final_eval") or {}
        lines.append(f"| {path.parent.name} | {m['steps']:,} | {_fmt([ev.get('mean')], '.1f')} | "
                     f"{_fmt([m.get('final_episode_return')], '.1f')} | {m['wall_time']:.0f} | "
                     f"{m.get('steps_per_s') or 0:,.0f} |")
    text = "\n".join(lines) + "\n"
    plan = ROOT / "NOTES.md"
    if plan.exists():
        text += "\n" + plan.read_text()
    (ROOT / "README.md").write_text(text)
    return text


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "summary"
    if what == "games":
        rest = [a for a in argv[1:] if a != "--force"]
        record_games(set(rest[0].split(",")) if rest else None, set(rest[1].split(",")) if len(rest) > 1 else None,
                     force="--force" in argv)
    elif what in FULLSCALE:
        record_fullscale(what)
    elif what == "summary":
        print(summary(), end="")
        return 0
    else:
        print(f"usage: record.py games [variants [games]] | mpe | mamujoco | summary (got {what!r})", file=sys.stderr)
        return 2
    summary()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
