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
  (env-only against end-to-end training steps per second), read back from a text file.

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
           "load_scale_bench"]

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
