"""Where a recorded run came from: the code, the software, the machine, the command.

Every run the book quotes is stored as a folder with two files:

* ``metrics.csv`` — one row per training iteration (the ``History`` rows);
* ``manifest.json`` — :func:`run_manifest`: git commit and dirty flag, package versions,
  Python, platform, CPU model, thread count, device, seed, steps, wall time, the command
  line, plus whatever the caller adds (algorithm, environment, hyperparameters, results).

The single-agent runs (Chapter 5) and the multi-agent runs of later chapters share it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["run_manifest", "write_run", "git_info", "cpu_model", "command_line"]

_PACKAGES = ("torch", "gymnasium", "numpy", "harl_mini")
#: Environment packages recorded only when installed (the optional ones may be missing).
_ENV_PACKAGES = ("vmas", "pettingzoo", "mpe2", "mujoco", "gymnasium-robotics")
#: The folder that ``python -m`` module names are relative to (the clone, or site-packages).
_IMPORT_ROOT = Path(__file__).resolve().parents[1]
#: The paths whose state decides what a run executes.
CODE_PATHS = ("harl_mini", "pyproject.toml", "requirements.txt")


def git_info(repo: Path | str | None = None) -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the git checkout holding harl_mini; ``("unknown", None)`` outside git.

    ``repo`` defaults to the clone harl_mini is imported from (:func:`harl_mini.data.source_root`);
    an installed wheel has none, even inside some other git checkout, and reports ``"unknown"``.

    ``dirty`` is True when anything under :data:`CODE_PATHS` differs from the commit (a modified,
    new or deleted file): then the commit alone does not name the code that ran.
    """
    if repo is None:
        from harl_mini.data import source_root

        repo = source_root()
        if repo is None:
            return "unknown", None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return "unknown", None
        # Only what can change a run counts: the package and the pinned environment. Run
        # outputs (results/, a re-recorded run overwriting its committed files) and the book's
        # pages do not.
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *CODE_PATHS],
                                cwd=repo, capture_output=True, text=True, timeout=10)
        if status.returncode != 0:
            return commit.stdout.strip(), None
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def command_line() -> str:
    """The command that started this process, with ``python -m pkg.mod`` restored for modules of the repo."""
    argv = list(sys.argv) or [""]
    script = Path(argv[0]).resolve() if argv[0] else None
    if script is not None and script.suffix == ".py" and script.is_relative_to(_IMPORT_ROOT):
        module = ".".join(script.relative_to(_IMPORT_ROOT).with_suffix("").parts)
        head = ["python", "-m", module.removesuffix(".__main__")]
    else:
        head = ["python", argv[0]] if argv[0] else ["python"]
    return shlex.join([*head, *argv[1:]])


def _version(package: str) -> str:
    if package == "harl_mini":
        import harl_mini

        return harl_mini.__version__
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _gpu() -> str | None:
    """The name of CUDA device 0, or None on a machine without one."""
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - provenance must never fail a run
        return None


def run_manifest(**fields: Any) -> dict[str, Any]:
    """A provenance record; ``fields`` (seed, steps, device, wall_time, algo, …) are merged in last.

    ``device``, ``seed``, ``steps`` and ``wall_time`` default to None when not given.
    """
    commit, dirty = git_info()
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a dependency
        threads = None
    manifest: dict[str, Any] = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": {p: v for p in (*_PACKAGES, *_ENV_PACKAGES)
                     if (v := _version(p)) != "not installed" or p in _PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": _gpu(),
        "torch_threads": threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "command": command_line(),
        "device": None,
        "seed": None,
        "steps": None,
        "wall_time": None,
    }
    manifest.update(fields)
    return manifest


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def write_run(out_dir, history_rows, manifest: dict[str, Any]) -> Path:
    """Write ``metrics.csv`` (columns = union of the rows' keys, in first-seen order) and
    ``manifest.json`` into ``out_dir`` (created if needed); return the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = list(history_rows)
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    with open(out / "manifest.json", "w") as f:
        json.dump(_jsonable(manifest), f, indent=2, allow_nan=False)
        f.write("\n")
    return out
