r"""Sweeps: a grid of training runs on Ray (``python -m harl_mini sweep SPEC.yaml``).

A *spec* (YAML) names a grid of runs of the command-line trainer
(:mod:`harl_mini.marl.trainer`); this module expands it, runs every cell as its own process
(``python -m harl_mini train ...``, one torch thread) on a local Ray instance — one run per
core by default — or on a Ray cluster (``--address``), and writes one summary table.

**Spec** (every key but ``runs``/``grid`` optional)::

    name: heterogeneity               # used in messages and the summary's file name
    out: results/heterogeneity        # every run writes <out>/<run name>/
    steps: 2e6                        # budget of every run (a cell may override it)
    seeds: [0, 1, 2]                  # every cell runs once per seed
    trainer_args: [--no-tensorboard]  # extra trainer flags for every run (start and resume)
    runs:                             # explicit cells: a config file and/or algo + env
      - config: configs/mamujoco/halfcheetah_2x3/happo.yaml
      - {config: configs/mamujoco/halfcheetah_6x1/mappo.yaml, label: mappo_shared, steps: 1e6}
    grid:                             # and/or a product: algo × env × every --set value
      algo: [happo, mappo]
      env: [game:xor, game:climbing]
      set: {lr: [0.01, 0.02]}         # hyperparameter overrides (MAConfig fields)

A cell is ``{config?, algo?, env?, set?, env_kwargs?, steps?, label?}``; ``label`` (default:
the config file's stem, else the algorithm) and the env name the run:
``<label>_<env>[_<name><value>...]_s<seed>``. Relative paths are relative to the current
directory (run sweeps from the repository root).

**Restarts**: a run whose ``manifest.json`` says ``completed`` with the full budget is skipped;
a run with a checkpoint is continued from it (``--resume``: bit-identical on CPU, and the
manifest records every segment); anything else starts afresh. So a sweep that was stopped —
Ctrl-C, a crash, a machine that went away — is continued by starting it again, and a budget
can be raised by editing the spec and starting it again.

**Summary**: ``<out>/summary.csv``, one row per run: name, label, algo, env, seed, overrides,
status, steps, budget, wall time, steps/s, final deterministic evaluation (mean, std), the
final training return, the run's commit, and the segments it took.

**Ray** is an optional dependency (``pip install '.[sweep]'``; ``requirements.txt`` installs
it). Each run is one Ray task with ``num_cpus=1`` that starts the trainer as a subprocess, so
a run's threads, memory and signals stay its own, and a cluster node needs only this package
and a shared file system for ``out``. ``--max-parallel`` caps the runs in flight (locally it
is also the number of CPUs Ray may use); ``--dry-run`` prints the plan without running.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harl_mini.errors import HarlMiniError

__all__ = ["Run", "load_spec", "expand", "plan", "run_sweep", "summarize", "main"]

_SPEC_KEYS = {"name", "out", "steps", "seeds", "runs", "grid", "trainer_args"}
_CELL_KEYS = {"config", "algo", "env", "set", "env_kwargs", "steps", "label"}
_GRID_KEYS = {"config", "algo", "env", "set", "env_kwargs", "label"}


@dataclass(frozen=True)
class Run:
    """One cell × seed of a sweep: what to pass to ``python -m harl_mini train``."""

    name: str
    label: str
    seed: int
    steps: int
    out: Path
    config: str | None = None
    algo: str | None = None
    env: str | None = None
    overrides: tuple = ()           # ((name, value), ...) for --set
    env_kwargs: tuple = ()          # ((name, value), ...)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def command(self, resume: bool, threads: int = 1) -> list[str]:
        """The trainer's command line for a fresh start or a resume."""
        base = [sys.executable, "-m", "harl_mini", "train", "--no-progress", "--threads", str(threads),
                *self.extra.get("trainer_args", ())]
        if resume:
            return base + ["--resume", str(self.out), "--steps", str(self.steps)]
        cmd = base + ["--seed", str(self.seed), "--steps", str(self.steps), "--out", str(self.out), "--overwrite"]
        if self.config is not None:
            cmd += ["--config", self.config]
        if self.algo is not None:
            cmd += ["--algo", self.algo]
        if self.env is not None:
            cmd += ["--env", self.env]
        for name, value in self.overrides:
            cmd += ["--set", f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"]
        for name, value in self.env_kwargs:
            cmd += ["--env-set", f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"]
        return cmd


# ---------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------


def load_spec(path) -> dict:
    """Read and validate a sweep spec (YAML); errors name the file and the key."""
    from harl_mini.marl.trainer import _yaml_loader, parse_steps

    path = Path(path)
    if not path.is_file():
        raise HarlMiniError(f"sweep spec {str(path)!r} not found")
    import yaml

    try:
        spec = yaml.load(path.read_text(), Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except Exception as exc:  # noqa: BLE001 - a YAML syntax error: one line naming the file
        raise HarlMiniError(f"sweep spec {str(path)!r} is not valid YAML ({exc})") from None
    if not isinstance(spec, dict):
        raise HarlMiniError(f"sweep spec {str(path)!r}: expected a mapping at the top level")
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise HarlMiniError(f"sweep spec {str(path)!r}: unknown key(s) {sorted(unknown)}; "
                            f"known: {sorted(_SPEC_KEYS)}")
    if "runs" not in spec and "grid" not in spec:
        raise HarlMiniError(f"sweep spec {str(path)!r}: give `runs:` (a list of cells) and/or `grid:`")
    spec.setdefault("name", path.stem)
    spec.setdefault("out", str(Path("results") / "sweeps" / spec["name"]))
    seeds = spec.setdefault("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in seeds):
        raise HarlMiniError(f"sweep spec {str(path)!r}: seeds: expected a non-empty list of integers, got {seeds!r}")
    if "steps" in spec:
        spec["steps"] = parse_steps(spec["steps"], "steps")
    args = spec.setdefault("trainer_args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise HarlMiniError(f"sweep spec {str(path)!r}: trainer_args: expected a list of flags, got {args!r}")
    return spec


def _cells(spec: dict) -> list[dict]:
    cells = []
    for i, cell in enumerate(spec.get("runs") or []):
        if isinstance(cell, str):
            cell = {"config": cell}
        if not isinstance(cell, dict) or set(cell) - _CELL_KEYS:
            raise HarlMiniError(f"sweep spec: runs[{i}]: expected a config path or a mapping with keys from "
                                f"{sorted(_CELL_KEYS)}, got {cell!r}")
        cells.append(dict(cell))
    grid = spec.get("grid")
    if grid is not None:
        if not isinstance(grid, dict) or set(grid) - _GRID_KEYS:
            raise HarlMiniError(f"sweep spec: grid: expected a mapping with keys from {sorted(_GRID_KEYS)}")
        axes = {k: (v if isinstance(v, list) else [v]) for k, v in grid.items() if k not in ("set", "env_kwargs")}
        sets = grid.get("set") or {}
        if not isinstance(sets, dict):
            raise HarlMiniError("sweep spec: grid.set: expected a mapping name -> list of values")
        set_axes = {k: (v if isinstance(v, list) else [v]) for k, v in sets.items()}
        keys = list(axes) + [f"set.{k}" for k in set_axes]
        for combo in itertools.product(*axes.values(), *set_axes.values()):
            cell = dict(zip(keys, combo))
            overrides = {k[4:]: cell.pop(k) for k in list(cell) if k.startswith("set.")}
            if overrides:
                cell["set"] = overrides
            if grid.get("env_kwargs"):
                cell["env_kwargs"] = dict(grid["env_kwargs"])
            cells.append(cell)
    return cells


def _slug(value) -> str:
    text = str(value).replace(":", "-").replace("|", "_").replace("/", "_").replace(" ", "")
    return "".join(ch for ch in text if ch.isalnum() or ch in "-_.") or "x"


def expand(spec: dict) -> list[Run]:
    """Every run of the spec (cells × seeds), in a stable order; names must be unique."""
    from harl_mini.marl.trainer import _short, load_config, parse_steps

    out = Path(spec["out"])
    runs: list[Run] = []
    for cell in _cells(spec):
        config = cell.get("config")
        cfg = {}
        if config is not None:
            cfg = load_config(config)  # validates the file now, not in the middle of the sweep
        algo, env = cell.get("algo", cfg.get("algo")), cell.get("env", cfg.get("env"))
        if algo is None or env is None:
            raise HarlMiniError(f"sweep spec: a cell needs an algorithm and an environment (from `config:` or "
                                f"`algo:`/`env:`), got {cell!r}")
        steps = cell.get("steps", spec.get("steps", cfg.get("steps")))
        if steps is None:
            raise HarlMiniError(f"sweep spec: no step budget for the cell {cell!r} (set `steps:`)")
        steps = parse_steps(steps, "steps")
        label = str(cell.get("label") or (Path(config).stem if config else algo))
        overrides = tuple(sorted((cell.get("set") or {}).items()))
        env_kwargs = tuple(sorted((cell.get("env_kwargs") or {}).items()))
        suffix = "".join(f"_{_slug(k)}{_slug(v)}" for k, v in overrides)
        for seed in spec["seeds"]:
            name = f"{_slug(label)}_{_slug(_short(env))}{suffix}_s{seed}"
            runs.append(Run(name=name, label=label, seed=int(seed), steps=steps, out=out / name,
                            config=config, algo=cell.get("algo"), env=cell.get("env"),
                            overrides=overrides, env_kwargs=env_kwargs,
                            extra={"trainer_args": tuple(spec.get("trainer_args", ()))}))
    names = [r.name for r in runs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise HarlMiniError(f"sweep spec: two cells give the same run name(s) {dupes}; give them a `label:`")
    return runs


# ---------------------------------------------------------------------------------------
# What each run needs: skip, resume or start
# ---------------------------------------------------------------------------------------


def _manifest(run: Run) -> dict | None:
    path = run.out / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def status(run: Run) -> str:
    """``"done"`` (completed with the full budget), ``"resume"`` (a checkpoint exists) or ``"start"``."""
    m = _manifest(run)
    if m is not None and m.get("status") == "completed" and int(m.get("steps_budget") or 0) >= run.steps \
            and int(m.get("steps") or 0) >= min(run.steps, int(m.get("steps_budget") or 0)):
        return "done"
    if (run.out / "checkpoints" / "last.pt").is_file():
        return "resume"
    return "start"


def plan(runs: list[Run]) -> list[tuple[Run, str]]:
    return [(r, status(r)) for r in runs]


# ---------------------------------------------------------------------------------------
# Running: one Ray task per run, each a trainer subprocess
# ---------------------------------------------------------------------------------------


def _execute(command: list[str], log: str, cwd: str) -> int:
    """Run one trainer process (inside a Ray worker or here); its output goes to ``log``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(f"$ {' '.join(command)}\n")
        f.flush()
        proc = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        try:
            return proc.wait()
        except BaseException:
            proc.terminate()  # the trainer checkpoints at the interrupt (SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise


def _import_ray():
    try:
        import ray
    except ImportError:
        raise HarlMiniError("sweeps run on Ray, an optional dependency: pip install '.[sweep]' "
                            "(or pip install ray)") from None
    return ray


def run_sweep(spec: dict, max_parallel: int | None = None, address: str | None = None, threads: int = 1,
              progress: bool = True, log=print) -> list[dict]:
    """Run every unfinished run of ``spec`` on Ray; returns the summary rows (also written to CSV)."""
    runs = expand(spec)
    todo = [(r, s) for r, s in plan(runs) if s != "done"]
    done_before = len(runs) - len(todo)
    log(f"sweep {spec['name']}: {len(runs)} runs, {done_before} already done, "
        f"{sum(s == 'resume' for _, s in todo)} to resume, {sum(s == 'start' for _, s in todo)} to start")
    if todo:
        ray = _import_ray()
        cpus = max_parallel if max_parallel is not None else (os.cpu_count() or 1)
        if address is None:
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        try:
            task = ray.remote(num_cpus=threads)(_execute)
            cwd = os.getcwd()
            pending = {}
            queue = list(todo)
            limit = max_parallel if max_parallel is not None else 10**9
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(runs), initial=done_before, unit="run", desc=f"sweep {spec['name']}")
            try:
                while queue or pending:
                    while queue and len(pending) < limit:
                        run, what = queue.pop(0)
                        ref = task.remote(run.command(what == "resume", threads), str(run.out) + ".log", cwd)
                        pending[ref] = run
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    run = pending.pop(ready[0])
                    rc = ray.get(ready[0])
                    if bar is not None:
                        bar.update(1)
                    if rc != 0:
                        log(f"run {run.name} ended with exit code {rc}; see {run.out}.log")
            finally:
                if bar is not None:
                    bar.close()
        finally:
            ray.shutdown()
    rows = summarize(runs)
    path = Path(spec["out"]) / "summary.csv"
    write_summary(rows, path)
    log(f"summary: {path} ({sum(r['status'] == 'completed' for r in rows)} of {len(rows)} runs completed)")
    return rows


# ---------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------

SUMMARY_COLUMNS = ("name", "label", "algo", "env", "seed", "overrides", "status", "steps", "steps_budget",
                   "wall_time", "steps_per_s", "eval_mean", "eval_std", "final_episode_return", "git_commit",
                   "git_dirty", "segments")


def summarize(runs: list[Run]) -> list[dict]:
    """One row per run from its manifest (status ``missing`` if it never started)."""
    rows = []
    for run in runs:
        m = _manifest(run) or {}
        ev = m.get("final_eval") or {}
        wall = m.get("wall_time")
        rows.append({
            "name": run.name, "label": run.label, "algo": m.get("algo", run.algo), "env": m.get("env", run.env),
            "seed": run.seed, "overrides": ";".join(f"{k}={v}" for k, v in run.overrides),
            "status": m.get("status", "missing"), "steps": m.get("steps"), "steps_budget": run.steps,
            "wall_time": wall, "steps_per_s": round(m["steps"] / wall, 1) if wall and m.get("steps") else None,
            "eval_mean": ev.get("mean"), "eval_std": ev.get("std"),
            "final_episode_return": m.get("final_episode_return"), "git_commit": m.get("git_commit"),
            "git_dirty": m.get("git_dirty"), "segments": 1 + len(m.get("resumes") or []) if m else 0,
        })
    return rows


def write_summary(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in SUMMARY_COLUMNS})


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harl_mini sweep", description=__doc__.splitlines()[0])
    p.add_argument("spec", type=Path, help="sweep spec (YAML), e.g. configs/sweeps/heterogeneity.yaml")
    p.add_argument("--max-parallel", type=int, help="runs in flight (default: one per CPU of the machine)")
    p.add_argument("--address", help="a Ray cluster's address (default: a local Ray instance)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (and Ray CPUs) per run (default 1)")
    p.add_argument("--out", type=Path, help="override the spec's output folder")
    p.add_argument("--dry-run", action="store_true", help="print the plan (run names, status, commands) and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        for name in ("max_parallel", "threads"):
            value = getattr(args, name)
            if value is not None and value < 1:
                raise HarlMiniError(f"--{name.replace('_', '-')}: expected a positive integer, got {value}")
        spec = load_spec(args.spec)
        if args.out is not None:
            spec["out"] = str(args.out)
        if args.dry_run:
            for run, what in plan(expand(spec)):
                print(f"{what:<6} {run.name}: {' '.join(run.command(what == 'resume', args.threads)[1:])}")
            return 0
        t0 = time.perf_counter()
        rows = run_sweep(spec, args.max_parallel, args.address, args.threads, progress=not args.no_progress)
    except HarlMiniError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nsweep interrupted; start it again to continue (finished runs are skipped, the others resume)",
              file=sys.stderr)
        return 130
    failed = [r["name"] for r in rows if r["status"] != "completed"]
    print(f"sweep {spec['name']}: {len(rows) - len(failed)} of {len(rows)} runs completed in "
          f"{time.perf_counter() - t0:.0f} s" + (f"; not completed: {', '.join(failed)}" if failed else ""))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
