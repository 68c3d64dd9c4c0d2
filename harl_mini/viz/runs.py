"""Recorded training runs: load them, plot them, and say where they came from.

A run folder is what :func:`harl_mini.provenance.write_run` writes (the CLI
``python -m harl_mini.algos.run`` and the multi-agent runners use it): ``metrics.csv``, one
row per training iteration, and ``manifest.json``, the provenance record (git commit, CPU,
versions, seed, steps, wall time, algorithm, environment, hyperparameters, results). The
book draws every learning curve from these files and never re-trains at build time
(education notes §4.8), so each figure can print exactly which runs it shows.

Contents:

* :func:`load_run` — one folder → (columns as numpy arrays, manifest dict);
* :func:`plot_runs` — a learning curve against environment steps: the mean over seeds with
  a band, or one line per seed;
* :func:`provenance_caption` — one caption line per group of runs (commit, CPU, seeds,
  steps, wall time);
* :func:`results_table` — a Markdown table (algorithm, environment, seed, final return,
  steps to target, wall time), with a mean row per group;
* :func:`summarize_runs` and :func:`summary_table` — one row per algorithm × environment:
  the last value of a column (e.g. the deterministic evaluation) per seed, its mean and
  standard deviation over seeds, wall time and throughput (Chapter 9);
* :func:`load_scale_bench` — the table printed by ``python -m harl_mini.marl.bench --scale``
  (env-only against end-to-end training steps per second), read back from a text file;
  :func:`plot_scale_bench` draws it, :func:`plot_task_curves` one task of the recorded runs;
* :func:`bootstrap_means` and :func:`bootstrap_prob_greater` — the exact bootstrap over a
  few seeds (every resample enumerated; Exercise 9.3);
* :func:`pair_ratios`, :func:`load_peer_benchmark`, :func:`ratio_text`, :func:`ratio_verdict`
  and :func:`peer_table` — the side-by-side speed comparison with other libraries
  (``results/peers``): per-pair ratios of interleaved runs, their median and range.

Nothing here knows about a particular algorithm: any column of ``metrics.csv`` can be
plotted, and any manifest with the fields of :func:`~harl_mini.provenance.run_manifest`
can be captioned.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from harl_mini.errors import HarlMiniError

__all__ = ["load_run", "plot_runs", "provenance_caption", "results_table", "summarize_runs", "summary_table",
           "load_scale_bench", "plot_task_curves", "plot_scale_bench", "bootstrap_means", "bootstrap_prob_greater",
           "bootstrap_contrast",
           "pair_ratios", "load_peer_benchmark", "ratio_text", "ratio_verdict", "peer_table"]

_FILES = ("metrics.csv", "manifest.json")


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


def _folder(folder) -> Path:
    if isinstance(folder, (str, Path)):
        path = Path(folder)
    else:
        raise HarlMiniError(f"folder: expected a path to a run folder, got {type(folder).__name__}")
    if not path.exists():
        raise HarlMiniError(f"run folder {str(path)!r} does not exist (record it with "
                            "`python -m harl_mini.algos.run ... --out FOLDER`)")
    if not path.is_dir():
        raise HarlMiniError(f"run folder {str(path)!r} is not a directory")
    for name in _FILES:
        if not (path / name).is_file():
            raise HarlMiniError(f"run folder {str(path)!r} has no {name} (a run folder holds "
                                f"{' and '.join(_FILES)}, written by harl_mini.provenance.write_run)")
    return path


def _column(values: list[str]) -> np.ndarray:
    """A CSV column as float64 (empty cells → NaN), or as strings if it is not numeric."""
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        text = v.strip()
        if text == "":
            out[i] = np.nan
            continue
        try:
            out[i] = float(text)
        except ValueError:
            return np.asarray(values, dtype=object)
    return out


def load_run(folder) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read one recorded run.

    Args:
        folder: a run folder holding ``metrics.csv`` and ``manifest.json``.

    Returns:
        ``(rows, manifest)``: ``rows`` maps each column of ``metrics.csv`` to a numpy array
        with one entry per iteration (float64; empty or ``nan`` cells are NaN; a non-numeric
        column stays an array of strings). ``manifest`` is the parsed ``manifest.json``,
        with ``"folder"`` added (the folder's path as given).

    Raises:
        HarlMiniError: the folder or one of its two files is missing, ``metrics.csv`` has no
            header or no rows, or ``manifest.json`` is not a JSON object.
    """
    path = _folder(folder)
    with open(path / "metrics.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise HarlMiniError(f"{path / 'metrics.csv'}: empty file (no header row)")
        body = [row for row in reader if row]
    if not body:
        raise HarlMiniError(f"{path / 'metrics.csv'}: has a header but no rows (the run recorded no iteration)")
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise HarlMiniError(f"{path / 'metrics.csv'}: row {i + 1} has {len(row)} cells, the header {len(header)}")
    rows = {name: _column([row[j] for row in body]) for j, name in enumerate(header)}
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except json.JSONDecodeError as exc:
        raise HarlMiniError(f"{path / 'manifest.json'}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise HarlMiniError(f"{path / 'manifest.json'}: expected a JSON object, got {type(manifest).__name__}")
    manifest = dict(manifest)
    manifest.setdefault("folder", str(folder))
    return rows, manifest


def _folders(folders) -> list:
    if isinstance(folders, (str, Path)):
        folders = [folders]
    if not isinstance(folders, Iterable):
        raise HarlMiniError(f"folders: expected a run folder or a list of them, got {type(folders).__name__}")
    folders = list(folders)
    if not folders:
        raise HarlMiniError("folders: empty list (no run to show)")
    return folders


def _load_all(folders) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    return [load_run(f) for f in _folders(folders)]


# ---------------------------------------------------------------------------------------
# Plotting
# ---------------------------------------------------------------------------------------


def _xy(rows: dict[str, np.ndarray], x: str, y: str, folder) -> tuple[np.ndarray, np.ndarray]:
    for name in (x, y):
        if name not in rows:
            raise HarlMiniError(f"column {name!r} not in {folder}/metrics.csv (columns: {', '.join(rows)})")
        if rows[name].dtype == object:
            raise HarlMiniError(f"column {name!r} of {folder}/metrics.csv is not numeric")
    xs, ys = rows[x], rows[y]
    keep = np.isfinite(xs) & np.isfinite(ys)
    return xs[keep], ys[keep]


def _steps_label(v, _pos=None) -> str:
    """Tick label for environment steps: 0, 50k, 1.5M."""
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def plot_runs(folders, y: str = "episode_return", ax=None, label=None, target=None, x: str = "steps",
              per_seed: bool = False, band: str = "range", color=None, points: int = 200):
    """Draw a learning curve from recorded runs (usually several seeds of one configuration).

    With ``per_seed=False`` (the default) and more than one run, the runs are interpolated
    onto a common grid of ``points`` values of ``x`` (where all runs have data) and drawn as
    their mean, with a shaded band: the min–max range over runs (``band="range"``) or ±
    one standard deviation (``band="std"``). With ``per_seed=True``, or a single run, each
    run is one line. Rows where ``y`` is NaN (e.g. before the first completed episode) are
    skipped.

    Args:
        folders: a run folder or a list of them.
        y: the ``metrics.csv`` column to plot (default the mean return of recent episodes).
        ax: matplotlib Axes to draw on; a new figure is created when omitted.
        label: legend label; default ``"<algo> (<n> seeds)"`` from the manifests.
        target: ``None``, a number, or ``True`` (use the manifests' ``target``): draws a
            dashed horizontal line there.
        x: the column for the horizontal axis (default ``steps``, environment steps).
        per_seed: one line per run instead of mean and band.
        band: ``"range"`` or ``"std"``.
        color: a matplotlib colour for this group of runs.
        points: number of grid points for the mean curve.

    Returns:
        The matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    if band not in ("range", "std"):
        raise HarlMiniError(f"band: expected 'range' or 'std', got {band!r}")
    runs = _load_all(folders)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    curves = [_xy(rows, x, y, m["folder"]) for rows, m in runs]
    for (xs, _), (_, m) in zip(curves, runs):
        if len(xs) == 0:
            raise HarlMiniError(f"{m['folder']}: column {y!r} has no finite value to plot")
    algos = sorted({str(m.get("algo", "run")) for _, m in runs})
    seeds = [m.get("seed") for _, m in runs]
    if label is None:
        label = f"{'/'.join(algos)} ({len(runs)} seed{'s' if len(runs) != 1 else ''})"
    if per_seed or len(runs) == 1:
        line = None
        for i, ((xs, ys), seed) in enumerate(zip(curves, seeds)):
            kw = dict(color=color if line is None else line.get_color(), lw=1.2 if len(runs) > 1 else 1.6)
            (line,) = ax.plot(xs, ys, label=label if i == 0 else None, **kw)
            if len(runs) > 1 and seed is not None:
                ax.annotate(f"s{seed}", (xs[-1], ys[-1]), fontsize=7, color=line.get_color(),
                            xytext=(2, 0), textcoords="offset points", va="center")
    else:
        lo = max(float(xs.min()) for xs, _ in curves)
        hi = min(float(xs.max()) for xs, _ in curves)
        if not hi > lo:
            raise HarlMiniError(f"the runs' {x!r} ranges do not overlap; plot them with per_seed=True")
        grid = np.linspace(lo, hi, int(points))
        table = np.stack([np.interp(grid, xs, ys) for xs, ys in curves])
        mean = table.mean(0)
        if band == "range":
            low, high = table.min(0), table.max(0)
            what = "min–max"
        else:
            sd = table.std(0, ddof=1)
            low, high = mean - sd, mean + sd
            what = "±1 sd"
        (line,) = ax.plot(grid, mean, color=color, lw=1.8, label=f"{label}, mean")
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, lw=0, label=f"{label}, {what}")
    if target is True:
        targets = {m.get("target") for _, m in runs} - {None}
        if len(targets) > 1:
            raise HarlMiniError(f"target=True: the runs have different targets {sorted(targets)}; pass a number")
        target = targets.pop() if targets else None
    if target is not None:
        if not any(line.get_label() == f"target {float(target):g}" for line in ax.get_lines()):
            ax.axhline(float(target), color="0.3", ls="--", lw=1, label=f"target {float(target):g}")
    if x == "steps":
        from matplotlib.ticker import FuncFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(_steps_label))
    ax.set_xlabel("environment steps" if x == "steps" else x)
    ax.set_ylabel(y.replace("_", " "))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


# ---------------------------------------------------------------------------------------
# Provenance and tables
# ---------------------------------------------------------------------------------------


def _manifest(item) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    return load_run(item)[1]


def _fmt_int(v) -> str:
    return "?" if v is None else f"{int(v):,}"


def _group(manifests) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in manifests:
        groups.setdefault((str(m.get("algo", "?")), str(m.get("env", "?"))), []).append(m)
    for runs in groups.values():
        runs.sort(key=lambda m: (m.get("seed") is None, m.get("seed") or 0))
    return groups


def provenance_caption(manifests) -> str:
    """Where the runs of a figure or table came from, as text (one line per algorithm × env).

    Args:
        manifests: manifest dicts (from :func:`load_run`) or run folders, or a mix.

    Returns:
        Lines of the form ``"trpo on gym:CartPole-v1: seeds 0, 1, 2; 149,504 env steps each;
        wall time 20.8, 21.0, 20.5 s; commit 00e1dcc (uncommitted changes); Intel(R) Xeon(R)
        Processor (2 cores), 1 torch thread, device cpu; torch 2.13.0+cpu"``. Any field a
        manifest lacks is shown as ``?``.
    """
    if isinstance(manifests, (dict, str, Path)):
        manifests = [manifests]
    manifests = [_manifest(m) for m in manifests]
    if not manifests:
        raise HarlMiniError("manifests: empty list (no run to describe)")
    lines = []
    for (algo, env), runs in _group(manifests).items():
        seeds = ", ".join("?" if m.get("seed") is None else str(m["seed"]) for m in runs)
        steps = sorted({m.get("steps") for m in runs}, key=lambda v: (v is None, v or 0))
        steps_txt = (f"{_fmt_int(steps[0])} env steps each" if len(steps) == 1
                     else "env steps " + ", ".join(_fmt_int(m.get("steps")) for m in runs))
        walls = ", ".join("?" if m.get("wall_time") is None else f"{float(m['wall_time']):.1f}" for m in runs)
        commits = []
        for m in runs:
            c = str(m.get("git_commit", "unknown"))
            tag = c[:7] if c != "unknown" else "unknown"
            if m.get("git_dirty"):
                tag += " (uncommitted changes)"
            if tag not in commits:
                commits.append(tag)
        cpus = sorted({f"{m.get('cpu', '?')} ({m.get('cpu_count', '?')} cores)" for m in runs})
        threads = sorted({str(m.get("torch_threads", "?")) for m in runs})
        devices = sorted({str(m.get("device", "?")) for m in runs})
        torch_v = sorted({str((m.get("versions") or {}).get("torch", "?")) for m in runs})
        lines.append(
            f"{algo} on {env}: seed{'s' if len(runs) > 1 else ''} {seeds}; {steps_txt}; wall time {walls} s; "
            f"commit {', '.join(commits)}; {'; '.join(cpus)}, {'/'.join(threads)} torch "
            f"thread{'s' if threads != ['1'] else ''}, device {'/'.join(devices)}; torch {'/'.join(torch_v)}")
    return "\n".join(lines)


def _num(v, fmt: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return format(v, fmt)


def results_table(folders, summary: bool = True) -> str:
    """A Markdown table of recorded runs, one row per run, plus a mean row per group.

    Columns: algorithm, environment (without a registry prefix such as ``gym:``), seed,
    final return (the manifest's ``final_return``: mean undiscounted return of the last
    training episodes, 10 for the single-agent runner), deterministic evaluation (mean of
    ``eval_deterministic``), target, steps to target (first logged step at which the
    final-return window reached the manifest's ``target``), environment steps and wall
    time in seconds. With ``summary=True`` and
    more than one seed in a group, a **mean** row follows the group; its steps to target
    is the mean over the seeds that reached it, with "k/n reached" when some did not.

    Args:
        folders: a run folder or a list of them.
        summary: add the mean rows.

    Returns:
        The table as a Markdown string (display it with ``IPython.display.Markdown``).
    """
    manifests = [m for _, m in _load_all(folders)]
    head = "| algo | env | seed | final return | det. eval | target | steps to target | env steps | wall (s) |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for (algo, env_id), runs in _group(manifests).items():
        env = env_id.split(":", 1)[-1]  # "gym:CartPole-v1" -> "CartPole-v1"
        for m in runs:
            ev = m.get("eval_deterministic") or {}
            reached = m.get("steps_to_target")
            target = m.get("target")
            lines.append(
                f"| {algo} | {env} | {m.get('seed', '?')} | {_num(m.get('final_return'), '.1f')} | "
                f"{_num(ev.get('mean'), '.1f')} | {'–' if target is None else f'≥ {target:g}'} | "
                f"{'–' if target is None else ('not reached' if reached is None else f'{int(reached):,}')} | "
                f"{_fmt_int(m.get('steps'))} | {_num(m.get('wall_time'), '.1f')} |")
        if summary and len(runs) > 1:
            def mean(key, sub=None):
                vals = [(m.get(key) or {}).get(sub) if sub else m.get(key) for m in runs]
                vals = [float(v) for v in vals if v is not None]
                return sum(vals) / len(vals) if vals else None

            target = runs[0].get("target")
            reached = [m["steps_to_target"] for m in runs if m.get("steps_to_target") is not None]
            if target is None:
                reach_txt = "–"
            elif not reached:
                reach_txt = "not reached"
            else:
                reach_txt = f"{sum(reached) / len(reached):,.0f}"
                if len(reached) < len(runs):
                    reach_txt += f" ({len(reached)}/{len(runs)} reached)"
            lines.append(
                f"| **{algo}** | **{env}** | **mean** | **{_num(mean('final_return'), '.1f')}** | "
                f"**{_num(mean('eval_deterministic', 'mean'), '.1f')}** | "
                f"{'–' if target is None else f'≥ {target:g}'} | "
                f"**{reach_txt}** | {_fmt_int(mean('steps'))} | **{_num(mean('wall_time'), '.1f')}** |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Summaries over seeds (Chapter 9)
# ---------------------------------------------------------------------------------------


def summarize_runs(folders, y: str = "eval_return") -> list[dict[str, Any]]:
    """Summarise recorded runs per algorithm × environment: the last value of ``y`` per seed.

    Args:
        folders: run folders (or one).
        y: the ``metrics.csv`` column to summarise; its **last finite** value in each run is
            taken (for ``eval_return``, logged every ``eval_interval`` iterations and at the
            end, that is the final deterministic evaluation).

    Returns:
        One dict per ``(algo, env)`` group, in first-seen order, with ``algo``, ``env``,
        ``seeds`` (sorted), ``final`` (numpy array, one value per seed in that order),
        ``at_steps`` (the step of each of those values), ``mean``, ``std`` (over seeds,
        ``ddof=1``; 0 for one seed), ``steps`` (each run's env steps), ``wall_time`` (s) and
        ``steps_per_s`` (each manifest's end-to-end rate, evaluations included), and
        ``manifests``.

    Raises:
        HarlMiniError: a folder cannot be read, or a run has no finite value of ``y``.
    """
    runs = _load_all(folders)
    groups: dict[tuple[str, str], list] = {}
    for rows, m in runs:
        if y not in rows:
            raise HarlMiniError(f"column {y!r} not in {m['folder']}/metrics.csv (columns: {', '.join(rows)})")
        if rows[y].dtype == object:
            raise HarlMiniError(f"column {y!r} of {m['folder']}/metrics.csv is not numeric")
        groups.setdefault((str(m.get("algo", "?")), str(m.get("env", "?"))), []).append((rows, m))
    out = []
    for (algo, env), members in groups.items():
        members.sort(key=lambda rm: (rm[1].get("seed") is None, rm[1].get("seed") or 0))
        finals, at = [], []
        for rows, m in members:
            keep = np.flatnonzero(np.isfinite(rows[y]))
            if keep.size == 0:
                raise HarlMiniError(f"{m['folder']}: column {y!r} has no finite value")
            finals.append(float(rows[y][keep[-1]]))
            at.append(int(rows["steps"][keep[-1]]) if "steps" in rows else None)
        final = np.asarray(finals, dtype=np.float64)
        manifests = [m for _, m in members]

        def field(key):
            return [None if m.get(key) is None else float(m[key]) for m in manifests]

        out.append({"algo": algo, "env": env, "seeds": [m.get("seed") for m in manifests], "final": final,
                    "at_steps": at, "mean": float(final.mean()),
                    "std": float(final.std(ddof=1)) if len(final) > 1 else 0.0,
                    "steps": [None if m.get("steps") is None else int(m["steps"]) for m in manifests],
                    "wall_time": field("wall_time"), "steps_per_s": field("steps_per_s"),
                    "manifests": manifests})
    return out


def _mean_of(values) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def summary_table(summaries, labels: dict[str, str] | None = None, what: str = "final eval return",
                  references: dict[tuple[str, str], str] | None = None) -> str:
    """A Markdown table of :func:`summarize_runs` output, one row per algorithm × environment.

    Columns: environment (without its registry prefix), algorithm (``labels[algo]`` if
    given), seeds, env steps per run, ``what`` as mean ± standard deviation over seeds,
    the per-seed values, mean wall time (s), mean steps/s and, with ``references``
    (a dict ``(algo, env) -> text``), a last column for a published value ("–" where
    there is none).
    """
    summaries = list(summaries)
    if not summaries:
        raise HarlMiniError("summaries: empty list (no run to show)")
    labels = labels or {}
    head = f"| task | algorithm | seeds | env steps | {what} | per seed | wall time (s) | steps/s |"
    sep = "|---|---|---|---|---|---|---|---|"
    if references is not None:
        head += " published |"
        sep += "---|"
    lines = [head, sep]
    for s in summaries:
        steps = sorted({v for v in s["steps"] if v is not None})
        steps_txt = ", ".join(_fmt_int(v) for v in steps) if steps else "?"
        wall, rate = _mean_of(s["wall_time"]), _mean_of(s["steps_per_s"])
        row = (f"| {s['env'].split(':', 1)[-1]} | {labels.get(s['algo'], s['algo'])} | {len(s['seeds'])} | "
               f"{steps_txt} | {s['mean']:.1f} ± {s['std']:.1f} | "
               f"{', '.join(f'{v:.1f}' for v in s['final'])} | {_num(wall, ',.0f')} | {_num(rate, ',.0f')} |")
        if references is not None:
            row += f" {references.get((s['algo'], s['env']), '–')} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# The full-scale benchmark's table
# ---------------------------------------------------------------------------------------


def load_scale_bench(path) -> tuple[list[dict[str, Any]], list[str]]:
    """Read the output of ``python -m harl_mini.marl.bench --scale`` saved as a text file.

    Args:
        path: the file (e.g. ``results/fullscale/bench.txt``).

    Returns:
        ``(rows, header)``: one dict per table row with ``env``, ``algo``, ``device``,
        ``copies`` (int), ``env_steps_per_s``, ``train_steps_per_s`` and ``ratio`` (floats);
        and the file's other non-empty lines (title, torch/CPU/GPU line, ``#`` comments
        without the ``#``), in order, as provenance.

    Raises:
        HarlMiniError: the file is missing or holds no table row.
    """
    path = Path(path) if isinstance(path, (str, Path)) else None
    if path is None or not path.is_file():
        raise HarlMiniError(f"path: no benchmark file at {path!s} (write one with "
                            "`OMP_NUM_THREADS=1 python -m harl_mini.marl.bench --scale > results/fullscale/bench.txt`)")
    rows, header = [], []
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or set(text) == {"-"} or text.split()[:2] == ["environment", "algorithm"]:
            continue
        parts = text.split()
        if len(parts) == 7 and ":" in parts[0] and not text.startswith("#"):
            try:
                copies = int(parts[3].replace(",", ""))
                env_rate, train_rate, ratio = (float(p.replace(",", "")) for p in parts[4:7])
            except ValueError:
                pass
            else:
                rows.append({"env": parts[0], "algo": parts[1], "device": parts[2], "copies": copies,
                             "env_steps_per_s": env_rate, "train_steps_per_s": train_rate, "ratio": ratio})
                continue
        header.append(text[1:].strip() if text.startswith("#") else text)
    if not rows:
        raise HarlMiniError(f"{path}: no benchmark rows (expected lines 'environment algorithm device copies "
                            "env-steps/s train-steps/s ratio')")
    return rows, header


# ---------------------------------------------------------------------------------------
# Recorded runs of Chapter 9: the learning-curve panels and the benchmark's bars
# ---------------------------------------------------------------------------------------


def plot_task_curves(groups, ax_eval, ax_train, budget: float, title: str, skip: float = 0.1,
                     legend: bool = True):
    """One task of Chapter 9's recorded runs: evaluation (left) and training return (right).

    Each group is drawn by :func:`plot_runs` (mean over seeds, min–max band). The training
    panel's vertical axis is fitted to the returns after the first ``skip`` share of the budget
    (the first iterations' returns are far lower and would flatten the rest).

    Args:
        groups: ``[(folders, label, colour), ...]``, one entry per algorithm.
        ax_eval, ax_train: the two Axes.
        budget: the runs' step budget (for ``skip``).
        title: the task's name, put above the evaluation panel.
        skip: share of the budget left out of the training panel's vertical range.
        legend: put a legend (one entry per group) in the evaluation panel.

    Returns:
        ``(ax_eval, ax_train)``.
    """
    groups = list(groups)
    if not groups:
        raise HarlMiniError("groups: no runs to draw")
    later = []
    for folders, label, colour in groups:
        plot_runs(folders, y="eval_return", ax=ax_eval, color=colour, label=label)
        plot_runs(folders, y="episode_return", ax=ax_train, color=colour, label=label)
        for rows, _ in _load_all(folders):
            keep = (rows["steps"] >= skip * budget) & np.isfinite(rows["episode_return"])
            later.append(rows["episode_return"][keep])
    later = [v for v in later if v.size]
    if later:
        low, high = min(float(v.min()) for v in later), max(float(v.max()) for v in later)
        pad = 0.1 * (high - low) or 1.0
        ax_train.set_ylim(low - pad, high + pad)
    ax_eval.set_title(f"{title}: evaluation")
    ax_train.set_title(f"{title}: training")
    ax_eval.set_ylabel("evaluation return")
    ax_train.set_ylabel("training return")
    for ax in (ax_eval, ax_train):
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    means = [line for line in ax_eval.get_lines() if line.get_label().endswith(", mean")]
    if means and legend:  # one entry per algorithm (the mean line; the band is its range)
        ax_eval.legend(means, [line.get_label()[: -len(", mean")] for line in means], loc="lower right")
    return ax_eval, ax_train


def plot_scale_bench(rows, ax, reference: float | None = None, reference_label: str = "reference"):
    """The rates of ``python -m harl_mini.marl.bench --scale`` as horizontal bars (log scale).

    Args:
        rows: the table rows from :func:`load_scale_bench`.
        ax: the Axes.
        reference: a rate drawn as a dashed vertical line (e.g. one unbatched copy), or None.
        reference_label: its legend text.

    Returns:
        The Axes, with one pair of bars per row: environment only (grey) and end-to-end
        training (blue).
    """
    rows = list(rows)
    if not rows:
        raise HarlMiniError("rows: no benchmark rows to draw")
    y = np.arange(len(rows))
    ax.barh(y + 0.2, [r["env_steps_per_s"] for r in rows], height=0.4, color="0.7", label="environment only")
    ax.barh(y - 0.2, [r["train_steps_per_s"] for r in rows], height=0.4, color="C0", label="end-to-end training")
    if reference is not None:
        ax.axvline(float(reference), color="C3", ls="--", lw=1, label=reference_label)
    ax.set_yticks(y, [f"{r['env'].split(':', 1)[-1]} {r['algo']} ({r['copies']:,})" for r in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("joint environment steps per second (log scale), one thread")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="lower right")
    return ax


# ---------------------------------------------------------------------------------------
# Seeds: the exact bootstrap (Chapter 9, Exercise 9.3)
# ---------------------------------------------------------------------------------------


def _sample(values, what: str) -> np.ndarray:
    try:
        x = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise HarlMiniError(f"{what}: expected a list of numbers") from None
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise HarlMiniError(f"{what}: expected a non-empty list of finite numbers, got {values!r}")
    if x.size > 8:
        raise HarlMiniError(f"{what}: the exact bootstrap enumerates every resample; at most 8 values, got {x.size}")
    return x


def _bootstrap_ways(values) -> tuple[list[float], list[int], int]:
    """Every attainable resample mean of ``values`` (sorted), the number of ordered draws giving it, n^n."""
    import itertools

    x = _sample(values, "values")
    n = x.size
    acc: dict[float, int] = {}
    for combo in itertools.combinations_with_replacement(range(n), n):
        ways = math.factorial(n)
        for c in np.bincount(combo, minlength=n):
            ways //= math.factorial(int(c))
        mean = math.fsum(x[list(combo)]) / n  # correctly rounded: equal sums give equal means
        acc[mean] = acc.get(mean, 0) + ways
    means = sorted(acc)
    return means, [acc[m] for m in means], n ** n


def bootstrap_means(values) -> tuple[np.ndarray, np.ndarray]:
    """The exact bootstrap distribution of the mean of ``values`` (n ≤ 8 numbers).

    A bootstrap resample draws n values from the n with replacement: each of the n^n ordered
    draws has probability n^−n. The mean depends only on how often each value was drawn
    (counts c_1..c_n with Σc = n), whose probability is the multinomial n!/(c_1!⋯c_n!)·n^−n;
    enumerating the C(2n−1, n) count vectors gives the distribution exactly.

    Returns:
        ``(means, probs)``: every attainable mean (sorted, equal values merged) and its
        probability (they sum to 1).
    """
    means, ways, total = _bootstrap_ways(values)
    return np.array(means), np.array([w / total for w in ways])


def bootstrap_prob_greater(x, y, tie: float = 1e-9) -> float:
    """P(mean of a resample of ``x`` > mean of an independent resample of ``y``), ties counting ½.

    Implements Chapter 9, eq. ``eq-bootstrap-prob``. The exact bootstrap comparison of two groups of seeds (unpaired: seed k of one algorithm
    has nothing to do with seed k of the other): the two resamples are independent, so

        P = Σ_{u, v} p_x(u) p_y(v) ([u > v] + ½ [u = v]),

    over the exact distributions of :func:`bootstrap_means`. Means within ``tie`` of each
    other count as equal (rounding cannot separate equal means of a few values; distinct ones
    of grid-valued data are much farther apart). The sum is taken in integers (numbers of
    ordered draws), so P = 1 and P = ½ come out exactly.

    With three seeds per group P is 1 whenever every value of ``x`` exceeds every value of
    ``y``, however small the gap: the bootstrap cannot see past the data it resamples.
    """
    from bisect import bisect_left, bisect_right
    from fractions import Fraction

    mu, wu, nu = _bootstrap_ways(x)
    mv, wv, nv = _bootstrap_ways(y)
    cum = [0]
    for w in wv:
        cum.append(cum[-1] + w)
    twice = 0  # 2 × Σ ways(u)·(#draws of y below u + ½ #draws tied with u)
    for u, w in zip(mu, wu):
        below, upto = bisect_left(mv, u - tie), bisect_right(mv, u + tie)
        twice += w * (2 * cum[below] + (cum[upto] - cum[below]))
    return float(Fraction(twice, 2 * nu * nv))


def bootstrap_contrast(groups, signs, level: float = 0.95) -> tuple[float, float, float]:
    """Exact bootstrap interval of a signed sum of group means, Σ_g s_g · mean(resample of group g).

    Each group of seeds is resampled independently (:func:`bootstrap_means` gives each mean's
    exact distribution); the distribution of the contrast is their convolution, enumerated
    exactly. ``signs = (1, -1)`` gives a difference of two means (HAPPO − MAPPO);
    ``(1, -1, -1, 1)`` a difference of two differences (how a gap changes between two
    settings).

    Returns:
        ``(estimate, lo, hi)``: the contrast of the group means themselves, and the
        ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of its bootstrap distribution (the
        smallest attainable values with at least that much probability at or below them).
    """
    if len(groups) != len(signs) or not groups:
        raise HarlMiniError(f"bootstrap_contrast: {len(groups)} groups but {len(signs)} signs")
    if not 0.0 < level < 1.0:
        raise HarlMiniError(f"bootstrap_contrast: level must lie in (0, 1), got {level}")
    values, probs = np.zeros(1), np.ones(1)
    estimate = 0.0
    for group, sign in zip(groups, signs):
        means, p = bootstrap_means(group)
        estimate += sign * float(np.mean(_sample(group, "group")))
        values = (values[:, None] + sign * means[None, :]).ravel()
        probs = (probs[:, None] * p[None, :]).ravel()
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(probs[order])
    lo = values[np.searchsorted(cum, (1.0 - level) / 2 - 1e-12)]
    hi = values[min(np.searchsorted(cum, (1.0 + level) / 2 - 1e-12), len(values) - 1)]
    return estimate, float(lo), float(hi)


# ---------------------------------------------------------------------------------------
# The peer benchmark (results/peers, Chapter 9)
# ---------------------------------------------------------------------------------------


def _run_rate(run: dict, rate: str) -> float | None:
    """A successful run's rate, or None (failed run, no result, missing or non-positive rate)."""
    if run.get("returncode", 0) != 0 or not isinstance(run.get("result"), dict):
        return None
    value = run["result"].get(rate)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def pair_ratios(runs, rate: str = "rate") -> dict[str, Any]:
    """harl_mini's speed over the peer's, from interleaved pairs of runs (``results/peers``).

    Implements Chapter 9, eq. ``eq-pair-ratio``. The peer benchmark runs the peer and harl_mini alternately; pair k is the peer's k-th
    run and harl_mini's k-th run, made one after the other under the same load. The ratio of
    a pair is ``rate(harl_mini) / rate(peer)`` (above 1: harl_mini is faster); the summary is
    the **median over the pairs** with the smallest and largest pair, never a ratio of
    medians. A pair counts only if both of its runs succeeded (return code 0 and a positive
    finite ``rate``); a failed run drops its whole pair.

    Args:
        runs: run records as in ``results.json`` (``cells[*].runs``): dicts with ``pair``
            (int), ``side`` (``"peer"`` or ``"harl_mini"``), ``returncode`` and ``result``
            (the driver's report, which holds the rates).
        rate: the rate to compare: ``"rate"`` (wall clock), ``"rate_cpu"`` (per CPU-second)
            or ``"rate_incl_first"`` (the whole run; with JAX's compile for JaxMARL).

    Returns:
        A dict with ``pairs`` (the counted pair numbers, ascending), ``ratios`` (one per
        counted pair, same order), ``n``, ``median`` (of an even count: the mean of the two
        middle ratios), ``min``, ``max``, and ``dropped`` (pair numbers left out). With no
        complete pair, ``median``, ``min`` and ``max`` are None.

    Raises:
        HarlMiniError: a record without ``pair``/``side``, an unknown side, or two runs of
            one side in the same pair.
    """
    import statistics

    by_pair: dict[int, dict[str, dict]] = {}
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or "pair" not in run or "side" not in run:
            raise HarlMiniError(f"runs[{i}]: expected a run record with 'pair' and 'side'")
        side = run["side"]
        if side not in ("peer", "harl_mini"):
            raise HarlMiniError(f"runs[{i}]: side must be 'peer' or 'harl_mini', got {side!r}")
        slot = by_pair.setdefault(int(run["pair"]), {})
        if side in slot:
            raise HarlMiniError(f"runs[{i}]: pair {run['pair']} has two {side} runs")
        slot[side] = run
    pairs, ratios, dropped = [], [], []
    for k in sorted(by_pair):
        slot = by_pair[k]
        peer = _run_rate(slot["peer"], rate) if "peer" in slot else None
        mine = _run_rate(slot["harl_mini"], rate) if "harl_mini" in slot else None
        if peer is None or mine is None:
            dropped.append(k)
            continue
        pairs.append(k)
        ratios.append(mine / peer)
    out = {"pairs": pairs, "ratios": ratios, "n": len(ratios), "dropped": dropped,
           "median": None, "min": None, "max": None}
    if ratios:
        out.update(median=float(statistics.median(ratios)), min=min(ratios), max=max(ratios))
    return out


_PEER_CELL_KEYS = ("cell", "peer", "task", "env_version", "algo", "sizes", "runs")


def load_peer_benchmark(path) -> dict[str, Any]:
    """Read ``results/peers/results.json`` (format 1, ``results/peers/README.md``) and recompute its ratios.

    Returns:
        The parsed file, with three entries added to every cell, recomputed by
        :func:`pair_ratios` from the cell's runs: ``wall`` (``rate``), ``cpu``
        (``rate_cpu``) and ``compile`` (``rate_incl_first``, only for cells with a
        ``with_compile`` record, else None).

    Raises:
        HarlMiniError: the file is missing, is not JSON, is not format 1, or a cell lacks a
            field the book reads.
    """
    path = Path(path) if isinstance(path, (str, Path)) else None
    if path is None or not path.is_file():
        raise HarlMiniError(f"path: no peer benchmark at {path!s} (record one with `bash results/peers/run.sh`)")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise HarlMiniError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != 1:
        raise HarlMiniError(f"{path}: expected format 1 (results/peers/README.md), got "
                            f"{doc.get('format') if isinstance(doc, dict) else type(doc).__name__!r}")
    for key in ("date", "harl_mini_commit", "cpu", "cells"):
        if key not in doc:
            raise HarlMiniError(f"{path}: no {key!r} at the top level")
    for i, cell in enumerate(doc["cells"]):
        missing = [k for k in _PEER_CELL_KEYS if k not in cell]
        if missing:
            raise HarlMiniError(f"{path}: cells[{i}] has no {', '.join(missing)}")
        cell["wall"] = pair_ratios(cell["runs"], "rate")
        cell["cpu"] = pair_ratios(cell["runs"], "rate_cpu")
        cell["compile"] = pair_ratios(cell["runs"], "rate_incl_first") if cell.get("with_compile") else None
    return doc


def ratio_text(summary: dict[str, Any] | None, digits: int = 2) -> str:
    """``"8.73 [8.57–12.97]"``: a :func:`pair_ratios` median with its range ("–" without pairs)."""
    if not summary or summary.get("median") is None:
        return "–"
    return f"{summary['median']:.{digits}f} [{summary['min']:.{digits}f}–{summary['max']:.{digits}f}]"


def peer_table(doc: dict[str, Any]) -> str:
    """The peer benchmark as a Markdown table, one row per cell (from :func:`load_peer_benchmark`).

    Columns: peer, cell, algorithm, task, the sizes on both sides, the number of complete
    pairs, and harl_mini / peer as median [min–max] over the pairs: by wall clock, per
    CPU-second, and with JAX's compile (JaxMARL cells).
    """
    lines = ["| peer | cell | algorithm | peer's sizes | harl_mini's sizes | pairs | harl_mini / peer (wall) |"
             " per CPU-second | with JAX compile |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in doc["cells"]:
        sizes = c.get("sizes") or {}
        lines.append(f"| {c['peer']} | `{c['cell']}` | {str(c['algo']).upper()} | {sizes.get('peer', '?')} |"
                     f" {sizes.get('harl_mini', '?')} | {c['wall']['n']} | {ratio_text(c['wall'])} |"
                     f" {ratio_text(c['cpu'])} | {ratio_text(c['compile'])} |")
    return "\n".join(lines) + "\n"


def ratio_verdict(summary: dict[str, Any], peer: str) -> str:
    """A :func:`pair_ratios` summary in words, phrased from the data (never assumed).

    * every pair above 1: ``"8.7× as fast as HARL (median of 3 pairs; every pair faster, 8.6–13.0×)"``;
    * every pair below 1: ``"slower than JaxMARL in every pair: 0.26 of its rate (median of 3 pairs,
      0.21–0.31)"``;
    * otherwise: ``"faster than X in 1 of 3 pairs and slower in 2 (0.53–1.34×, median 0.79): no
      consistent order"``; no complete pair: ``"not measured (no complete pair)"``.
    """
    n = summary.get("n", 0)
    if not n or summary.get("median") is None:
        return "not measured (no complete pair)"
    med, lo, hi = summary["median"], summary["min"], summary["max"]
    pairs = f"{n} pair{'s' if n != 1 else ''}"
    if lo > 1:
        return f"{med:.1f}× as fast as {peer} (median of {pairs}; every pair faster, {lo:.1f}–{hi:.1f}×)"
    if hi < 1:
        return f"slower than {peer} in every pair: {med:.2f} of its rate (median of {pairs}, {lo:.2f}–{hi:.2f})"
    faster = sum(r > 1 for r in summary["ratios"])
    slower = sum(r < 1 for r in summary["ratios"])
    return (f"faster than {peer} in {faster} of {n} pairs and slower in {slower} ({lo:.2f}–{hi:.2f}×, "
            f"median {med:.2f}): no consistent order")
