r"""The full-scale trainer of IPPO, MAPPO, HAPPO and HATRPO: outputs, checkpoints, resume.

Usage::

    python -m harl_mini train --algo happo --env vmas:transport --num-envs 1024 --steps 2e6 \
        --device auto --seed 0
    python -m harl_mini train --config configs/mamujoco/halfcheetah_2x3/happo.yaml --seed 1
    python -m harl_mini train --resume results/runs/happo_transport_s0 [--steps 4e6]

:class:`Trainer` drives one :class:`~harl_mini.marl.runner.MARunner`: every iteration
collects ``num_envs × num_steps`` joint steps and updates (the runner's docstring has the
algorithms and the metrics), evaluates deterministically every ``eval_interval``
iterations on a separate env, appends the row to ``metrics.csv`` and TensorBoard, and
saves a checkpoint every ``--checkpoint-every`` iterations. Without an output folder it
is the loop of :func:`harl_mini.marl.runner.train`, which returns the History.

**Settings**, each source overriding the ones before it: the
:class:`~harl_mini.marl.runner.MAConfig` defaults → the env's
:data:`~harl_mini.marl.runner.PRESETS` entry (the one-state games; ``--no-preset`` skips
it) → the ``--config`` file → ``--num-envs``, ``--num-steps``, ``--eval-every``,
``--eval-episodes`` → ``--set name=value`` (Python literals, repeatable). A run started
without ``--config`` prints a note when ``configs/`` ships one for its algorithm and env
(:func:`named_config`); nothing is loaded implicitly.

A **config file** (YAML; ``configs/`` holds HARL's tuned settings) is a mapping with
these keys; any other key is an error that names it and the file:

==============  ==========================================================================
Key             Meaning
==============  ==========================================================================
``algo``        ippo, mappo, happo or hatrpo
``env``         registry name, e.g. ``mamujoco:HalfCheetah-2x3`` (:mod:`harl_mini.envs`)
``env_kwargs``  optional mapping of keyword arguments for the env's ``make``
``num_envs``    parallel copies (the MAConfig field)
``steps``       environment-step budget; ``1e7`` and ``10_000_000`` both work
``hparams``     any other MAConfig fields, e.g. ``num_steps``, ``lr``, ``hidden``
==============  ==========================================================================

**Command line** (``python -m harl_mini train --help``):

=========================  ===================================================================
Flag                       Meaning
=========================  ===================================================================
``--algo``, ``--env``      algorithm and env name (or from ``--config``)
``--steps``                environment-step budget (``2e6`` accepted); training runs
                           ⌊steps / (num_envs · num_steps)⌋ iterations (at least one)
``--seed``                 seed of the run (default 0)
``--device``               ``auto`` (default: cuda if available, else cpu), ``cpu``,
                           ``cuda``, ``cuda:<i>``
``--threads``              torch intra-op threads (default 1, also with cuda)
``--out``                  output folder (default ``results/runs/<algo>_<env>_s<seed>``)
``--checkpoint-every``     iterations between checkpoints (default 10; 0: only at the
                           end); ``--keep-checkpoints K`` keeps the K newest (default 3,
                           0: all)
``--resume``               a run folder or a checkpoint file to continue, to ``--steps``
                           (default: the original budget)
``--overwrite``            start afresh in a folder that already holds a run
``--no-progress``          no tqdm bar (steps/s, recent return, last evaluation)
``--[no-]tensorboard``     TensorBoard event files in the output folder (default on)
=========================  ===================================================================

**Outputs** (in ``--out``):

===========================  ================================================================
File                         Content
===========================  ================================================================
``metrics.csv``              one row per iteration (the runner's metrics, full float
                             precision), flushed after every row: a crashed run keeps them
``events.out.tfevents.*``    TensorBoard: one scalar per numeric metric, x = env steps
``manifest.json``            :func:`harl_mini.provenance.run_manifest` (commit, versions,
                             hardware, threads, command) + device, seed, steps, wall time,
                             steps/s, resolved hyperparameters, env + kwargs, final
                             evaluation, status, checkpoint, resume record
``checkpoints/ckpt_<k>.pt``  the state after k iterations; ``checkpoints/last.pt`` the newest
===========================  ================================================================

A **checkpoint** (``torch.save``; read back with ``torch.load(weights_only=True)`` only,
so it holds nothing but tensors, numbers, strings, lists and dicts) holds
:meth:`MARunner.state_dict() <harl_mini.marl.runner.MARunner.state_dict>` (networks with
their ValueNorm statistics, Adam states, the run's generator, torch's global random state,
the iteration, the resolved configuration, the train env's ``get_state()``), the
episode-statistics window of the rows, the rows so far and the run's settings (algo, env,
env kwargs, seed, device, budget). The evaluation env needs nothing: it is rebuilt at
start and reset with the same seed before every evaluation.

**Resume** rebuilds the runner from the saved settings, restores the checkpoint (the random
streams last, after the envs are built), truncates ``metrics.csv`` to the checkpoint's
rows and appends. On CPU the continuation is **bit-identical** to the uninterrupted run
(same rows but for ``wall_time`` and ``steps_per_s``, same parameters), provided the env's
``get_state()`` is not None — otherwise its episodes restart —, the device type is the same
and, with ``anneal_lr``, the step budget is unchanged; the start-up line and the manifest's
``resume_identical`` say whether this holds and, if not, why.

**Exit codes**: 0 done; 2 bad input (unknown algorithm, env, device or hyperparameter, a
bad ``--set`` or config file, steps ≤ 0), one ``error:`` line; 3 training stopped (the
runner's NaN guard or an env error): ``error: NaN guard: … at iteration k; last good
checkpoint: …`` — the rows so far stay, no checkpoint is written after the failure;
130 interrupted: Ctrl-C (SIGINT) or SIGTERM stops the run after the iteration in progress,
writes a checkpoint there and a manifest with status ``interrupted`` (``--resume`` then
continues bit-identically); a second signal during that iteration aborts at once, keeping the
last periodic checkpoint.

**Budgets** are whole iterations: ``--steps`` is rounded down to a multiple of the
iteration's ``num_envs × num_steps`` steps, and up to one iteration if it is smaller; the
start-up line says so when it rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import torch

from harl_mini.algos.common import History, Tracker
from harl_mini.errors import HarlMiniError
from harl_mini.marl.runner import (ALGORITHMS, MAConfig, MARunner, evaluate, exact_objective, exact_references,
                                   make_eval_env,
                                   preset_for, to_plain)

__all__ = ["Trainer", "CONFIG_KEYS", "load_config", "parse_steps", "resolve_device", "default_out",
           "find_checkpoint", "load_checkpoint", "wants_multi_agent", "named_config", "main"]

#: the keys a config file may have
CONFIG_KEYS = ("algo", "env", "env_kwargs", "num_envs", "steps", "hparams")
#: tag of the checkpoint layout written by this module
CHECKPOINT_FORMAT = "harl_mini.marl.trainer/1"
#: exit codes of :func:`main`
EXIT_BAD_INPUT, EXIT_TRAINING_STOPPED, EXIT_INTERRUPTED = 2, 3, 130
#: metrics not logged to TensorBoard (the x axis and the row index)
_NOT_SCALARS = ("iteration", "steps")


# ---------------------------------------------------------------------------------------
# Settings: steps, device, config files, output folder
# ---------------------------------------------------------------------------------------


def parse_steps(value, what: str = "steps") -> int:
    """A positive whole number of environment steps from ``2000000``, ``2e6``, ``"2e6"`` or ``"2_000_000"``."""
    if isinstance(value, bool):
        raise HarlMiniError(f"{what}: expected a positive number of environment steps, got {value!r}")
    try:
        number = float(value.replace("_", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise HarlMiniError(f"{what}: expected a positive number of environment steps such as 2e6, "
                            f"got {value!r}") from None
    if not math.isfinite(number) or number != int(number) or number < 1:
        raise HarlMiniError(f"{what}: expected a positive whole number of environment steps, got {value!r}")
    return int(number)


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda if available, else cpu; otherwise ``torch.device(name)``, checked to exist."""
    if not isinstance(name, str):
        raise HarlMiniError(f"device: expected auto, cpu, cuda or cuda:<index>, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise HarlMiniError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:<index>") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise HarlMiniError(f"device {name!r}: CUDA is not available on this machine; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise HarlMiniError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise HarlMiniError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:<index>")
    return device


def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that also reads ``5e-4`` and ``1e7`` as floats (YAML 1.1 wants ``5.0e-4``)."""

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
        list("-+0123456789."))
    return Loader


def load_config(path) -> dict:
    """A config file (see the module docstring) as a dict with the keys it sets, checked."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise HarlMiniError(f"config file {str(path)!r} not found")
    try:
        data = yaml.load(path.read_text(), Loader=_yaml_loader())
    except yaml.YAMLError as exc:
        raise HarlMiniError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise HarlMiniError(f"{path}: expected a mapping of {', '.join(CONFIG_KEYS)}, got {type(data).__name__}")
    unknown = [k for k in data if k not in CONFIG_KEYS]
    if unknown:
        raise HarlMiniError(f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(CONFIG_KEYS)} "
                            "(hyperparameters go under hparams)")
    for key in ("env_kwargs", "hparams"):
        if not isinstance(data.get(key, {}), dict):
            raise HarlMiniError(f"{path}: {key} must be a mapping, got {data[key]!r}")
    fields = [f.name for f in dataclasses.fields(MAConfig)]
    hparams = data.get("hparams", {})
    bad = [k for k in hparams if k not in fields]
    if bad:
        raise HarlMiniError(f"{path}: unknown hyperparameter(s) {', '.join(map(repr, bad))} under hparams; "
                            f"available: {', '.join(fields)}")
    if "num_envs" in hparams:
        raise HarlMiniError(f"{path}: num_envs belongs at the top level, not under hparams")
    if "steps" in data:
        data["steps"] = parse_steps(data["steps"], f"{path}: steps")
    return data


def _short(env: str) -> str:
    name = env.split(":", 1)[-1] or "env"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lower()


def default_out(algo: str, env: str, seed: int) -> Path:
    """``results/runs/<algo>_<env without its family>_s<seed>``, e.g. ``results/runs/happo_transport_s0``."""
    return Path("results") / "runs" / f"{algo}_{_short(env)}_s{seed}"


def find_checkpoint(path) -> Path:
    """A checkpoint file, or ``checkpoints/last.pt`` of a run folder (or of a checkpoints folder)."""
    path = Path(path)
    if path.is_file():
        return path
    for candidate in (path / "checkpoints" / "last.pt", path / "last.pt"):
        if candidate.is_file():
            return candidate
    raise HarlMiniError(f"--resume: no checkpoint at {str(path)!r} (expected a .pt file or a run folder holding "
                        "checkpoints/last.pt)")


def load_checkpoint(path) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (tensors, numbers, strings, lists, dicts)."""
    path = find_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: say which, not torch's advice
        # torch's own message suggests weights_only=False, which would execute code from the
        # file: never pass that on.
        raise HarlMiniError(f"--resume: {str(path)!r} is not a harl_mini checkpoint, or it is damaged "
                            f"(torch.load with weights_only=True failed: {type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise HarlMiniError(f"--resume: {str(path)!r} is not a checkpoint of this trainer ({CHECKPOINT_FORMAT})")
    return ckpt


def _run_folder(checkpoint: Path) -> Path:
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


# ---------------------------------------------------------------------------------------
# Output sinks: metrics.csv and TensorBoard
# ---------------------------------------------------------------------------------------


class MetricsCSV:
    """``metrics.csv`` written row by row and flushed, floats at full precision (``repr``).

    It starts by writing ``rows`` (all rows so far: empty, or a resumed run's rows up to its
    checkpoint, which drops any rows written after it); ``append`` writes ``rows[-1]``. The
    columns are the union of the rows' keys in first-seen order; a row with a new key
    (``eval_return`` on the first evaluation) rewrites the file with the wider header.
    """

    def __init__(self, path: Path, rows: list[dict]):
        self.path, self.rows = Path(path), rows
        self.columns: list[str] = []
        for row in rows:
            self.columns.extend(k for k in row if k not in self.columns)
        self.file = None
        self.rewrite()

    def rewrite(self) -> None:
        self.close()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)
        self.file = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=self.columns, restval="")

    def append(self) -> None:
        row = self.rows[-1]
        new = [k for k in row if k not in self.columns]
        if new:
            self.columns.extend(new)
            self.rewrite()
            return
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class TensorBoardLog:
    """One scalar per numeric metric of each row, x = environment steps. ``purge_step``
    (on resume) makes TensorBoard drop what an earlier session logged past the checkpoint."""

    def __init__(self, folder: Path, purge_step: int | None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise HarlMiniError(f"--tensorboard needs the tensorboard package ({exc}); install it or pass "
                                "--no-tensorboard") from None
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)

    def append(self, row: dict) -> None:
        for key, value in row.items():
            if (key in _NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value)):
                continue
            self.writer.add_scalar(key, value, global_step=row["steps"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------


class Trainer:
    """One multi-agent training run; see the module docstring.

    ====================  ==================================================================
    Argument              Meaning
    ====================  ==================================================================
    ``algo``, ``env``     algorithm; registry name or MultiAgentVecEnv
    ``steps``             environment-step budget (a positive integer)
    ``seed``, ``device``  as for :class:`~harl_mini.marl.runner.MARunner`
    ``hparams``           MAConfig overrides (dict)
    ``env_kwargs``        keyword arguments for the env's ``make`` (env names only)
    ``out``               output folder; None: no files (the :func:`~harl_mini.marl.runner.train` loop)
    ``checkpoint_every``  iterations between checkpoints (0: only at the end)
    ``keep_checkpoints``  newest ``ckpt_<k>.pt`` files kept (0: all)
    ``tensorboard``       write TensorBoard event files into ``out``
    ``progress``, ``log``  tqdm bar; a callable called with every row
    ``run_info``          extra manifest fields (config file, overrides, preset)
    ====================  ==================================================================

    :meth:`resume` builds a Trainer from a checkpoint; :meth:`run` trains and returns the
    :class:`~harl_mini.algos.common.History` (``history.runner`` is the runner).
    """

    def __init__(self, algo: str, env, steps: int, seed: int = 0, device="cpu", hparams: dict | None = None,
                 env_kwargs: dict | None = None, out=None, checkpoint_every: int = 10, keep_checkpoints: int = 3,
                 tensorboard: bool = False, progress: bool = True, log=None, run_info: dict | None = None):
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise HarlMiniError(f"steps: expected a positive integer number of environment steps, got {steps!r}")
        for name, value in (("checkpoint_every", checkpoint_every), ("keep_checkpoints", keep_checkpoints)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise HarlMiniError(f"{name}: expected a non-negative integer, got {value!r}")
        self.runner = runner = MARunner(algo, env, seed, device, env_kwargs=env_kwargs, **(hparams or {}))
        cfg = runner.cfg
        self.algo, self.seed, self.steps_budget = algo, runner.seed, steps
        self.env_name, self.env_is_object = runner.env.name, not isinstance(env, str)
        self.batch_size = runner.buffer.size
        self.iterations = max(1, steps // self.batch_size)
        # built before any checkpoint is restored: making an env may draw from the random streams
        self.eval_env = make_eval_env(runner.env, env, cfg.eval_episodes, runner.seed + 10_000, runner.device,
                                      runner.env_kwargs)
        config = dataclasses.asdict(cfg)
        config["algo"] = algo
        #: J* and J*_share of a game the oracle knows (None for other envs): manifest and progress bar
        self.references = exact_references(runner.env)
        self.history = History(policy=runner.actors, value_fn=runner.critic, config=config)
        self.history.runner = runner
        self.tracker = Tracker(self.history, self.iterations * self.batch_size, False, log, desc="")
        self.out = None if out is None else Path(out)
        self.checkpoint_every, self.keep_checkpoints = checkpoint_every, keep_checkpoints
        self.tensorboard, self.progress = bool(tensorboard) and self.out is not None, progress
        self.run_info = dict(run_info or {})
        self.wall_time_before = 0.0       # seconds spent in earlier sessions (resume)
        self.resumes: list[dict] = []     # one record per resume, oldest first
        self.last_checkpoint: Path | None = None
        self.last_eval: dict | None = None
        self.env_state_saved: bool | None = None
        self.status = "created"
        self.error: str | None = None
        self._csv = self._tb = None

    # -------------------------------------------------------------------------------------
    # Resume
    # -------------------------------------------------------------------------------------
    @classmethod
    def resume(cls, checkpoint, steps: int | None = None, env=None, device=None, out=None, **options) -> "Trainer":
        """A Trainer that continues the run of ``checkpoint`` (a file or run folder) to
        ``steps`` (default: its original budget). ``env`` must be given if the run was made
        with an env object rather than a name; ``out`` defaults to the checkpoint's run
        folder; ``device`` to the saved one; ``options`` as for the constructor."""
        path = find_checkpoint(checkpoint)
        ckpt = load_checkpoint(path)
        info = ckpt["run"]
        if info["env_is_object"] and env is None:
            raise HarlMiniError(f"--resume: this run trained on an environment object ({info['env']!r}), not a "
                                "registry name; pass the same env to Trainer.resume(..., env=...)")
        options.setdefault("checkpoint_every", info["checkpoint_every"])
        options.setdefault("keep_checkpoints", info["keep_checkpoints"])
        trainer = cls(info["algo"], info["env"] if env is None else env,
                      info["steps_budget"] if steps is None else steps, info["seed"],
                      resolve_device(info["device"]) if device is None else device, hparams=info["hparams"],
                      env_kwargs=info["env_kwargs"], out=_run_folder(path) if out is None else out,
                      run_info=info["run_info"], **options)
        trainer._restore(ckpt, path)
        return trainer

    def _restore(self, ckpt: dict, path: Path) -> None:
        runner, tracker, info = self.runner, self.tracker, ckpt["run"]
        done = int(ckpt["runner"]["iteration"])
        if done >= self.iterations:
            raise HarlMiniError(f"--resume: the checkpoint is at iteration {done} ({ckpt['tracker']['steps']:,} steps), "
                                f"already at the budget of {self.iterations} iterations; pass a larger --steps")
        restored = runner.load_state_dict(ckpt["runner"])
        state = ckpt["tracker"]
        tracker.recent.extend(state["recent"])
        tracker.recent_len.extend(state["recent_len"])
        tracker.episodes, tracker.steps = int(state["episodes"]), int(state["steps"])
        self.history.rows[:] = ckpt["rows"]
        self.wall_time_before = float(state["wall_time"])
        self.last_eval = ckpt["last_eval"]
        self.resumes = list(info["resumes"])
        reasons = []
        if not restored:
            reasons.append("the environment's state could not be saved (get_state() is None): its episodes restart")
        if torch.device(info["device"]).type != runner.device.type:
            reasons.append(f"the device changed ({info['device']} → {runner.device}): another random stream")
        if runner.cfg.anneal_lr and self.iterations != info["iterations"]:
            reasons.append(f"anneal_lr with a new budget ({info['iterations']} → {self.iterations} iterations) "
                           "changes the learning-rate schedule")
        self.resumes.append({"checkpoint": str(path), "iteration": done, "steps": tracker.steps,
                             "identical": not reasons, "reason": "; ".join(reasons) or None})
        self.last_checkpoint = path

    @property
    def resume_identical(self) -> bool | None:
        """None if never resumed; else whether every resume continued the run identically."""
        return all(r["identical"] for r in self.resumes) if self.resumes else None

    # -------------------------------------------------------------------------------------
    # The loop
    # -------------------------------------------------------------------------------------
    def open_outputs(self, overwrite: bool = False) -> None:
        """Create the output folder, start metrics.csv (the rows so far) and TensorBoard, write
        a first manifest (status ``running``). Refuses a folder that already holds another
        run unless ``overwrite`` (which deletes its checkpoints and event files)."""
        if self.out is None or self._csv is not None:
            return
        out = self.out
        ckpt_dir = out / "checkpoints"
        own_folder = bool(self.resumes) and out.resolve() == _run_folder(Path(self.resumes[-1]["checkpoint"])).resolve()
        if not own_folder and (ckpt_dir / "last.pt").exists():
            if not overwrite:
                raise HarlMiniError(f"{out} already holds a run (checkpoints/last.pt); continue it with --resume {out}, "
                                    "or pass --overwrite or another --out")
            for old in [*ckpt_dir.glob("ckpt_*.pt"), ckpt_dir / "last.pt", *out.glob("events.out.tfevents.*")]:
                old.unlink(missing_ok=True)
        try:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarlMiniError(f"--out: cannot create {str(out)!r} ({exc})") from None
        self._csv = MetricsCSV(out / "metrics.csv", self.history.rows)
        if self.tensorboard:
            self._tb = TensorBoardLog(out, purge_step=self.tracker.steps + 1 if self.resumes else None)
        self.status = "running"
        self.write_manifest()

    def run(self) -> History:
        """Train to the budget; returns the History. A :class:`HarlMiniError` in an iteration
        (NaN guard, env error) is re-raised after the rows and a manifest (status
        ``failed``) are written; the last good checkpoint stays as it was."""
        runner, cfg, tracker = self.runner, self.runner.cfg, self.tracker
        self.open_outputs()
        self.status = "running"
        start = runner.iteration
        self._t_session = time.perf_counter()
        tracker.t0 = self._t_session - self.wall_time_before
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.iterations * self.batch_size, initial=tracker.steps, unit="step", unit_scale=True,
                       dynamic_ncols=True, desc=f"{self.algo} {self.env_name}")
        try:
            with _deferred_interrupts() as stop:
                for it in range(start, self.iterations):
                    row = self._iteration(it, start)
                    if self._csv is not None:
                        self._csv.append()
                    if self._tb is not None:
                        self._tb.append(row)
                    if bar is not None:
                        bar.update(self.batch_size)
                        bar.set_postfix(self._postfix(row), refresh=False)
                    periodic = self.checkpoint_every and runner.iteration % self.checkpoint_every == 0
                    if self.out is not None and (periodic or stop.requested):
                        self.save_checkpoint()
                    if stop.requested:
                        raise KeyboardInterrupt(stop.requested)
        except HarlMiniError as exc:
            self._stop("failed", exc)
            raise
        except KeyboardInterrupt:
            self._stop("interrupted", None)
            raise
        finally:
            if bar is not None:
                bar.close()
        if self.eval_env is None:  # an env that cannot be copied: evaluate it once, at the end
            self.last_eval = evaluate(runner.actors, runner.env, cfg.eval_episodes, seed=runner.seed + 10_000)
            self.history.rows[-1]["eval_return"] = self.last_eval["mean"]
            if self._csv is not None:
                self._csv.rewrite()
        self.status = "completed"
        if self.out is not None:
            if self.last_checkpoint is None or self.last_checkpoint.name != f"ckpt_{runner.iteration}.pt":
                self.save_checkpoint()
            self.write_manifest()
            self._close()
        return self.history

    def _iteration(self, it: int, start: int) -> dict:
        """Collect + update, the row's extra metrics, the periodic evaluation; returns the row."""
        runner, cfg = self.runner, self.runner.cfg
        lr = runner.set_lr(1.0 - it / self.iterations) if cfg.anneal_lr else cfg.lr
        buf, metrics = runner.step()
        metrics["j_estimate"] = (sum(buf.episode_returns) / len(buf.episode_returns)) if buf.episode_returns \
            else float("nan")
        j_exact = exact_objective(runner.actors, runner.env)
        if j_exact is not None:
            metrics["j_exact"] = j_exact
        last = it == self.iterations - 1
        if self.eval_env is not None and ((it + 1) % cfg.eval_interval == 0 or last):
            self.last_eval = evaluate(runner.actors, self.eval_env, cfg.eval_episodes, seed=runner.seed + 10_000)
            metrics["eval_return"] = self.last_eval["mean"]
        metrics["lr"] = lr
        metrics["steps_per_s"] = (it + 1 - start) * self.batch_size / max(time.perf_counter() - self._t_session, 1e-9)
        return self.tracker.record(it, buf, **metrics)

    def _postfix(self, row: dict) -> dict:
        out = {"ret": _fmt(row["episode_return"], ".3g")}
        if "j_exact" in row:
            out["J"] = f"{row['j_exact']:.3f}"
            if self.references is not None:
                out["J*"] = f"{self.references['j_star']:.3g}"
        if self.last_eval is not None:
            out["eval"] = f"{self.last_eval['mean']:.3g}"
        return out

    def _stop(self, status: str, exc: Exception | None) -> None:
        self.status, self.error = status, None if exc is None else str(exc)
        if self.out is not None and self._csv is not None:
            self.write_manifest()
        self._close()

    def _close(self) -> None:
        for sink in (self._csv, self._tb):
            if sink is not None:
                sink.close()

    # -------------------------------------------------------------------------------------
    # Checkpoints and the manifest
    # -------------------------------------------------------------------------------------
    def checkpoint(self) -> dict:
        """The checkpoint of the current state (see the module docstring)."""
        tracker, runner = self.tracker, self.runner
        runner_state = runner.state_dict()
        self.env_state_saved = runner_state["env"] is not None
        return {
            "format": CHECKPOINT_FORMAT,
            "runner": runner_state,
            "tracker": {"recent": list(tracker.recent), "recent_len": list(tracker.recent_len),
                        "episodes": tracker.episodes, "steps": tracker.steps,
                        "wall_time": self.history.rows[-1]["wall_time"] if self.history.rows else 0.0},
            "rows": to_plain(self.history.rows),
            "last_eval": to_plain(self.last_eval),
            "run": to_plain({
                "algo": self.algo, "env": self.env_name, "env_is_object": self.env_is_object,
                "env_kwargs": runner.env_kwargs, "seed": self.seed, "device": str(runner.device),
                "steps_budget": self.steps_budget, "iterations": self.iterations,
                "hparams": dataclasses.asdict(runner.cfg), "checkpoint_every": self.checkpoint_every,
                "keep_checkpoints": self.keep_checkpoints, "resumes": self.resumes, "run_info": self.run_info}),
        }

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/ckpt_<iteration>.pt`` and ``last.pt`` (atomically); prune old ones."""
        folder = self.out / "checkpoints"
        path = folder / f"ckpt_{self.runner.iteration}.pt"
        try:
            _atomic_save(self.checkpoint(), path)
            tmp = folder / "last.pt.tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, folder / "last.pt")
        except OSError as exc:
            raise HarlMiniError(f"cannot write the checkpoint {path} ({exc}) at iteration {self.runner.iteration}") \
                from None
        self.last_checkpoint = path
        if self.keep_checkpoints:
            numbered = sorted(folder.glob("ckpt_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
            for old in numbered[:-self.keep_checkpoints]:
                if old != path:
                    old.unlink(missing_ok=True)
        return path

    def manifest(self) -> dict:
        """The provenance record of the run so far (:func:`harl_mini.provenance.run_manifest`)."""
        from harl_mini.provenance import run_manifest

        runner, rows = self.runner, self.history.rows
        last = rows[-1] if rows else {}
        session = time.perf_counter() - self._t_session if hasattr(self, "_t_session") else 0.0
        done_here = (runner.iteration - (self.resumes[-1]["iteration"] if self.resumes else 0)) * self.batch_size
        evaluation = None if self.last_eval is None else {
            "episodes": runner.cfg.eval_episodes, "mean": self.last_eval["mean"], "std": self.last_eval["std"],
            "after_steps": next((r["steps"] for r in reversed(rows) if "eval_return" in r), None)}
        fields = dict(
            algo=self.algo, env=self.env_name, env_kwargs=runner.env_kwargs, seed=self.seed,
            device=str(runner.device), status=self.status, error=self.error,
            steps=last.get("steps", 0), steps_budget=self.steps_budget, iterations=len(rows),
            iterations_budget=self.iterations, batch_size=self.batch_size,
            wall_time=round(last.get("wall_time", 0.0), 3), wall_time_session=round(session, 3),
            steps_per_s=round(done_here / session, 1) if session > 0 else None,
            hyperparameters=self.history.config, final_eval=evaluation,
            final_episode_return=last.get("episode_return"), episodes=last.get("episodes"),
            j_star=None if self.references is None else self.references["j_star"],
            j_star_share=None if self.references is None else self.references["j_star_share"],
            final_j_exact=last.get("j_exact"),
            checkpoint=None if self.last_checkpoint is None else str(self.last_checkpoint),
            checkpoint_every=self.checkpoint_every, env_state_saved=self.env_state_saved,
            resumed_from=self.resumes[-1] if self.resumes else None, resumes=self.resumes,
            resume_identical=self.resume_identical, eval_env="separate" if self.eval_env is not None else
            "the training env, once at the end (it cannot be copied)", tensorboard=self.tensorboard)
        return run_manifest(**fields, **{k: v for k, v in self.run_info.items() if k not in fields})

    def write_manifest(self) -> Path:
        from harl_mini.provenance import _jsonable

        path = self.out / "manifest.json"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(_jsonable(self.manifest()), f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
        return path


def _fmt(x, spec: str) -> str:
    """``format(x, spec)``, or "–" for a missing or undefined value (no episode ended yet)."""
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


class _StopRequest:
    requested: str | None = None


@contextlib.contextmanager
def _deferred_interrupts():
    """While training, SIGINT and SIGTERM only *request* a stop; the loop checkpoints after the
    iteration in progress and then raises KeyboardInterrupt. A second signal raises at once.
    Outside the main thread (where handlers cannot be installed) signals behave as usual."""
    stop = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if stop.requested:
            raise KeyboardInterrupt(name)
        stop.requested = name
        print(f"\n{name}: stopping after this iteration and writing a checkpoint (send it again to stop now)",
              file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def wants_multi_agent(argv: list[str]) -> bool:
    """Whether ``python -m harl_mini train ARGS`` is for this trainer (a multi-agent or unknown
    ``--algo``, a ``--config``, a ``--resume``, or no algorithm at all) rather than the
    single-agent recorder :mod:`harl_mini.algos.run` (reinforce, trpo, ppo)."""
    from harl_mini.algos import ALGOS as SINGLE

    peek = argparse.ArgumentParser(add_help=False)
    for flag in ("--algo", "--config", "--resume"):
        peek.add_argument(flag)
    known, _ = peek.parse_known_args(argv)
    return known.algo not in SINGLE or known.config is not None or known.resume is not None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harl_mini train",
        description="Train IPPO, MAPPO, HAPPO or HATRPO with metrics.csv, TensorBoard, checkpoints and resume "
                    "(harl_mini.marl.trainer).",
        epilog="The single-agent algorithms (--algo reinforce, trpo, ppo) take the options of "
               "python -m harl_mini.algos.run --help.")
    p.add_argument("--algo", help=f"one of {', '.join(ALGORITHMS)}")
    p.add_argument("--env", help="environment name, e.g. vmas:transport, mpe:simple_spread, mamujoco:HalfCheetah-2x3")
    p.add_argument("--config", type=Path, help="YAML config file (configs/...); flags override it")
    p.add_argument("--steps", help="environment-step budget, e.g. 2e6")
    p.add_argument("--num-envs", type=int, help="parallel env copies")
    p.add_argument("--num-steps", type=int, help="steps per copy per iteration")
    p.add_argument("--seed", type=int, help="seed (default 0)")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:<index>")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a hyperparameter")
    p.add_argument("--env-set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a keyword argument of the environment (e.g. obs=global)")
    p.add_argument("--no-preset", action="store_true", help="ignore the env's PRESETS entry")
    p.add_argument("--out", type=Path, help="output folder (default results/runs/<algo>_<env>_s<seed>)")
    p.add_argument("--eval-every", type=int, help="iterations between deterministic evaluations")
    p.add_argument("--eval-episodes", type=int, help="episodes per evaluation")
    p.add_argument("--checkpoint-every", type=int, help="iterations between checkpoints (default 10; 0: at the end)")
    p.add_argument("--keep-checkpoints", type=int, help="newest ckpt_<k>.pt kept (default 3; 0: all)")
    p.add_argument("--resume", type=Path, metavar="DIR_OR_FILE", help="continue a run from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start afresh in a folder that already holds a run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=True,
                   help="write TensorBoard event files (default on)")
    return p


#: flags that a resumed run takes from its checkpoint instead
_FIXED_ON_RESUME = ("algo", "env", "config", "num_envs", "num_steps", "seed", "eval_every", "eval_episodes", "set", "env_set",
                    "no_preset", "overwrite")


def _fresh_settings(args) -> dict:
    """The run's algo, env, env_kwargs, steps, seed and hparams from the flags and the config file."""
    from harl_mini.algos import ALGOS as SINGLE
    from harl_mini.algos.run import parse_set
    from harl_mini.provenance import command_line

    file = load_config(args.config) if args.config is not None else {}
    algo = args.algo if args.algo is not None else file.get("algo")
    env = args.env if args.env is not None else file.get("env")
    steps = args.steps if args.steps is not None else file.get("steps")
    missing = [f"--{n}" for n, v in (("algo", algo), ("env", env), ("steps", steps)) if v is None]
    if missing:
        raise HarlMiniError(f"missing {', '.join(missing)} (give the flags or a --config file that sets them)")
    if algo not in ALGORITHMS:
        raise HarlMiniError(f"unknown algorithm {algo!r}; available: {', '.join(ALGORITHMS)} (multi-agent), "
                            f"{', '.join(sorted(SINGLE))} (single-agent)")
    if not isinstance(env, str):
        raise HarlMiniError(f"env: expected an environment name, got {env!r}")
    hparams = {} if args.no_preset else preset_for(env)
    hparams.update(file.get("hparams", {}))
    if "num_envs" in file:
        hparams["num_envs"] = file["num_envs"]
    flags = {"num_envs": args.num_envs, "num_steps": args.num_steps, "eval_interval": args.eval_every,
             "eval_episodes": args.eval_episodes}
    hparams.update({k: v for k, v in flags.items() if v is not None})
    overrides = parse_set(args.set)
    hparams.update(overrides)
    seed = 0 if args.seed is None else args.seed
    env_kwargs = dict(file.get("env_kwargs") or {})
    env_kwargs.update(parse_set(args.env_set, "--env-set"))
    return {"algo": algo, "env": env, "env_kwargs": env_kwargs, "steps": parse_steps(steps),
            "seed": seed, "hparams": hparams,
            "run_info": {"config_file": None if args.config is None else str(args.config),
                         "preset": None if args.no_preset else preset_for(env), "overrides": overrides,
                         "first_command": command_line()}}


def named_config(algo: str, env: str) -> Path | None:
    """The shipped config ``configs/<family>/<task>/<algo>.yaml`` for (algo, env), if one exists
    (found through :mod:`harl_mini.data`: in a clone or in the installed package)."""
    from harl_mini import data

    family, _, task = env.partition(":")
    path = data.find(f"configs/{family}/{_short(task).replace('-', '_')}/{algo}.yaml")
    return path if path is not None and path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.threads < 1:
            raise HarlMiniError(f"--threads: expected a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
        device = resolve_device(args.device if args.device is not None else "auto")
        options = {"progress": not args.no_progress, "tensorboard": args.tensorboard}
        for name in ("checkpoint_every", "keep_checkpoints"):
            if getattr(args, name) is not None:
                options[name] = getattr(args, name)
        if args.resume is not None:
            fixed = [f"--{n.replace('_', '-')}" for n in _FIXED_ON_RESUME if getattr(args, n) not in (None, [], False)]
            if fixed:
                raise HarlMiniError(f"--resume continues the run with its saved settings; {', '.join(fixed)} cannot "
                                    "be changed (only --steps, --device, --threads, --out, --checkpoint-every, "
                                    "--keep-checkpoints, --no-progress, --[no-]tensorboard)")
            steps = None if args.steps is None else parse_steps(args.steps)
            trainer = Trainer.resume(args.resume, steps, device=device if args.device is not None else None,
                                     out=args.out, **options)
        else:
            s = _fresh_settings(args)
            out = args.out if args.out is not None else default_out(s["algo"], s["env"], s["seed"])
            trainer = Trainer(s["algo"], s["env"], s["steps"], s["seed"], device, hparams=s["hparams"],
                              env_kwargs=s["env_kwargs"], out=out, run_info=s["run_info"], **options)
        trainer.open_outputs(overwrite=args.overwrite)
    except HarlMiniError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _print_start(trainer)
    if args.resume is None and args.config is None and (named := named_config(trainer.algo, trainer.env_name)):
        print(f"note: no --config given, so MAConfig defaults (and the flags) are used; a named config for this "
              f"algorithm and env exists: --config {named.relative_to(Path.cwd()) if named.is_relative_to(Path.cwd()) else named}")
    try:
        trainer.run()
    except HarlMiniError as exc:
        where = "" if "iteration" in str(exc) else f" at iteration {trainer.runner.iteration}"
        last = trainer.last_checkpoint if trainer.last_checkpoint is not None else "none (no checkpoint written yet)"
        print(f"error: {exc}{where}; last good checkpoint: {last}", file=sys.stderr)
        return EXIT_TRAINING_STOPPED
    except KeyboardInterrupt:
        last = trainer.last_checkpoint if trainer.last_checkpoint is not None else "none"
        print(f"\ninterrupted at iteration {trainer.runner.iteration}; last good checkpoint: {last} "
              f"(continue with --resume {trainer.out})", file=sys.stderr)
        return EXIT_INTERRUPTED
    m = trainer.manifest()
    ev = m["final_eval"]
    print(f"{trainer.algo} on {trainer.env_name}, seed {trainer.seed}: {m['steps']:,} steps in {m['wall_time']:.1f} s "
          f"({m['steps_per_s'] or 0:,.0f} steps/s this session), recent return {_fmt(m['final_episode_return'], '.4g')}"
          + ("" if ev is None else f", deterministic eval {ev['mean']:.4g} ± {ev['std']:.3g}")
          + ("" if m["final_j_exact"] is None else
             f", exact J {m['final_j_exact']:.4g}" + ("" if m["j_star"] is None else f" (J* {m['j_star']:.4g}"
             + ("" if m["j_star_share"] is None else f", J*_share {m['j_star_share']:.4g}") + ")"))
          + f"; wrote {trainer.out}")
    return 0


def _print_start(trainer: Trainer) -> None:
    r, cfg = trainer.runner, trainer.runner.cfg
    n = trainer.iterations
    print(f"{trainer.algo} on {trainer.env_name}: {cfg.num_envs} envs × {cfg.num_steps} steps = "
          f"{trainer.batch_size:,} steps per iteration, {n:,} iteration{'s' if n != 1 else ''} "
          f"({n * trainer.batch_size:,} steps), device {r.device}, {torch.get_num_threads()} "
          f"thread(s); writing {trainer.out}")
    if n * trainer.batch_size != trainer.steps_budget:
        print(f"note: the budget of {trainer.steps_budget:,} steps is rounded {'up' if n * trainer.batch_size > trainer.steps_budget else 'down'} "
              f"to whole iterations of {trainer.batch_size:,} steps: {n * trainer.batch_size:,} steps")
    if trainer.resumes:
        last = trainer.resumes[-1]
        print(f"resumed from {last['checkpoint']} at iteration {last['iteration']} ({last['steps']:,} steps); "
              + ("identical continuation: yes" if last["identical"] else
                 f"identical continuation: no — {last['reason']} (resume_identical: false)"))
