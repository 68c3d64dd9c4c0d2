"""The wheel-install test: every page of the book runs from a normal ``pip install``, outside a clone.

    python tests/wheel_install.py [--only ch04 ...] [--no-exercises] [--keep] [--workdir DIR]

(``make wheel-test`` runs it with the project's venv.) It

1. builds the wheel from a copy of the sources (``pip wheel``, no build isolation, nothing
   written into the clone) and lists what it ships;
2. creates a fresh venv and installs the wheel with its declared dependencies, pinned by
   ``requirements.txt`` used as constraints (so torch stays 2.13.0 and nothing else drifts;
   the pip cache is reused);
3. checks, in a kernel of that venv started in an empty temporary folder, that ``harl_mini``
   is the installed wheel and finds its data in the package (not in the clone);
4. executes every notebook page of the book (``_toc.yml`` order: the chapters and the
   package page, as the paired ``.ipynb`` that Colab and Binder get) and every exercise source
   (the solution version) with nbclient in that folder, one kernel per notebook;
5. prints one line per notebook (PASS/FAIL, seconds, the first error) and exits 1 if any failed.

A page that still finds data through ``Path(harl_mini.__file__).parents[1]`` (the clone) is
flagged in its line: use :mod:`harl_mini.data` instead (CONTRIBUTING.md).

This file is not collected by pytest (no ``test_`` prefix); it is a script for CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "harl_mini", "configs", "results")
CLONE_PATH_IDIOM = "harl_mini.__file__).parents"
CELL_TIMEOUT = 300


def log(msg: str) -> None:
    print(msg, flush=True)


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def clean_env() -> dict:
    """The environment of the venv's processes: nothing that points back into the clone."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "HARL_MINI_DATA", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1",
               PYTHONNOUSERSITE="1", JUPYTER_PREFER_ENV_PATH="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def build_wheel(work: Path) -> Path:
    src = work / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "_data", "checkpoints")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    shutil.rmtree(src / "results" / "runs", ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", work / "dist",
         src], env={**os.environ, "PYTHONWARNINGS": "ignore"}, stderr=subprocess.DEVNULL)
    (wheel,) = (work / "dist").glob("harl_mini-*.whl")
    return wheel


def describe_wheel(wheel: Path) -> str:
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        infos = z.infolist()
    data = [i for i in infos if i.filename.startswith("harl_mini/_data/")]
    top = sorted({i.filename.split("/")[2] for i in data})
    return (f"{wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB, {len(infos)} files; package data "
            f"{', '.join(top)}: {len(data)} files, {sum(i.file_size for i in data) / 1e6:.1f} MB unpacked")


def make_venv(work: Path, wheel: Path) -> Path:
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    # requirements.txt as constraints: the wheel's own dependency list decides what is installed,
    # the pins decide which versions (torch 2.13.0: an unpinned torch pulls GBs of CUDA wheels)
    pip_log = work / "pip-install.log"
    with open(pip_log, "w") as out:
        result = subprocess.run([python, "-m", "pip", "install", "-c", ROOT / "requirements.txt", wheel],
                                env=clean_env(), stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        noise = "is ignored: it is neither a file nor a directory"
        log("\n".join(line for line in pip_log.read_text().splitlines()[-40:] if noise not in line))
        raise SystemExit(f"pip could not install the wheel (log: {pip_log})")
    return python


PROBE = """
import sys, harl_mini
from harl_mini import data
print(sys.executable); print(harl_mini.__file__); print(data.origin()); print(data.root())
"""


KERNEL_CHECK = """\
import sys
from pathlib import Path
import harl_mini
from harl_mini import data
assert Path(harl_mini.__file__).is_relative_to(sys.prefix), (harl_mini.__file__, sys.prefix)
assert data.root().is_relative_to(sys.prefix) and data.origin() == "the installed package's data", data.origin()
assert data.source_root() is None
"""


def probe(python: Path, rundir: Path, venv: Path) -> None:
    """harl_mini in a kernel of the venv is the wheel, and its data is the package's."""
    import_check = subprocess.run([python, "-I", "-c", PROBE], cwd=rundir, env=clean_env(), capture_output=True,
                                  text=True, check=True).stdout.split("\n")
    exe, module, origin, root = import_check[:4]
    log(f"  harl_mini: {module}\n  data root: {root} ({origin})")
    assert Path(module).is_relative_to(venv), f"harl_mini imported from {module}, not from the fresh venv"
    assert Path(root).is_relative_to(venv) and "package" in origin, f"data found in {root} ({origin})"


def notebooks() -> list[tuple[str, Path]]:
    """(kind, path) of every notebook to execute: the book's pages, then the exercise sources."""
    from harl_mini.launch import notebook_pages

    pages = [("page", ROOT / p) for p in notebook_pages(ROOT)]
    exercises = [("exercise", p) for p in sorted((ROOT / "exercises" / "src").glob("ex*.md"))]
    return pages + exercises


def write_notebooks(selected, rundir: Path) -> list[dict]:
    """The notebooks as .ipynb files in the run folder (pages: their paired notebook)."""
    import jupytext
    import nbformat

    from harl_mini.launch import paired_notebook, repository

    url, branch = repository(ROOT)
    check = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(KERNEL_CHECK)])
    nbformat.write(check, str(rundir / "kernel_check.ipynb"))
    jobs = [{"name": "kernel check: harl_mini and its data come from the wheel", "kind": "check",
             "ipynb": str(rundir / "kernel_check.ipynb"), "clone_path": False}]
    for kind, md in selected:
        nb = paired_notebook(md, url, branch) if kind == "page" else jupytext.read(str(md))
        target = rundir / "notebooks" / f"{md.stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(target))
        jobs.append({"name": str(md.relative_to(ROOT)), "kind": kind, "ipynb": str(target),
                     "clone_path": CLONE_PATH_IDIOM in md.read_text(encoding="utf-8")})
    return jobs


EXECUTE = r"""
import json, re, sys, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

jobs = json.load(open(sys.argv[1]))
timeout = int(sys.argv[2])
for job in jobs:
    nb = nbformat.read(job["ipynb"], as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": "."}})
    t0 = time.perf_counter()
    try:
        client.execute()
        job["status"], job["error"] = "PASS", ""
    except CellExecutionError as exc:
        job["status"] = "FAIL"
        lines = [l for l in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if l.strip()]
        job["error"] = lines[-1][:300] if lines else repr(exc)
        index = next((i for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if o.get("output_type") == "error"), None)
        job["cell"] = index
    except Exception as exc:
        job["status"], job["error"] = "FAIL", f"{type(exc).__name__}: {exc}"[:300]
    job["seconds"] = round(time.perf_counter() - t0, 1)
    mark = "PASS" if job["status"] == "PASS" else "FAIL"
    print(f"  {mark}  {job['seconds']:6.1f} s  {job['name']}", flush=True)
json.dump(jobs, open(sys.argv[1], "w"), indent=1)
"""


def execute(python: Path, jobs: list[dict], rundir: Path) -> list[dict]:
    spec = rundir / "jobs.json"
    spec.write_text(json.dumps(jobs))
    with open(rundir / "kernels-stderr.log", "w") as err:  # kernel start-up and shutdown chatter
        subprocess.run([python, "-I", "-c", EXECUTE, spec, str(CELL_TIMEOUT)], cwd=rundir, env=clean_env(),
                       stderr=err, check=True)
    return json.loads(spec.read_text())


def report(jobs: list[dict]) -> int:
    failed = [j for j in jobs if j["status"] != "PASS"]
    log("\n=== wheel-install test: every notebook from the installed wheel, outside the clone ===")
    for j in jobs:
        line = f"{j['status']}  {j['seconds']:6.1f} s  {j['name']}"
        if j["status"] != "PASS":
            line += f"  (cell {j.get('cell')}: {j['error']})"
            if j["clone_path"]:
                line += ("\n        this page finds data through Path(harl_mini.__file__).parents[1] (the clone);"
                         " use harl_mini.data.path(...) / harl_mini.data.config(...)")
        log(line)
    total = sum(j["seconds"] for j in jobs)
    log(f"{len(jobs) - len(failed)} passed, {len(failed)} failed; notebooks took {total:.0f} s")
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="run only notebooks whose name contains one of these")
    parser.add_argument("--no-exercises", action="store_true", help="skip the exercise sources")
    parser.add_argument("--workdir", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (venv, wheel, executed notebooks)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="harl_mini_wheel_", dir=args.workdir)).resolve()
    if work.is_relative_to(ROOT):
        parser.error(f"{work}: the work folder must be outside the clone")
    t0 = time.perf_counter()
    try:
        log(f"work folder: {work}")
        wheel = build_wheel(work)
        log(f"built {describe_wheel(wheel)} ({time.perf_counter() - t0:.0f} s)")
        t1 = time.perf_counter()
        python = make_venv(work, wheel)
        log(f"fresh venv with the wheel and its dependencies ({time.perf_counter() - t1:.0f} s)")
        rundir = work / "run"
        rundir.mkdir()
        probe(python, rundir, work / "venv")
        selected = [(k, p) for k, p in notebooks() if not (args.no_exercises and k == "exercise")]
        if args.only:
            selected = [(k, p) for k, p in selected if any(s in p.name for s in args.only)]
        jobs = write_notebooks(selected, rundir)
        log(f"executing {len(jobs)} notebooks in {rundir}")
        rc = report(execute(python, jobs, rundir))
        log(f"wheel-install test took {time.perf_counter() - t0:.0f} s in all")
        return rc
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
