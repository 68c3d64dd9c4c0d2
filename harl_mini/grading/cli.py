"""``python -m harl_mini grade``: grade notebooks, or a folder of submissions into one CSV.

Examples::

    python -m harl_mini grade exercises/ex02_1_gae.ipynb          # one student, one notebook
    python -m harl_mini grade exercises/ex02_1_gae.ipynb --json   # the same as JSON
    python -m harl_mini grade submissions/ --exercise ex02_1      # a class: CSV + feedback files

A notebook's feedback goes to ``feedback/<name>.feedback.md`` next to it; a folder's
feedback files and ``grades.csv`` go to ``<folder>/feedback/`` (``--out`` to change). The
exit status is 0 if every file got full points, 1 otherwise, 130/143 after SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harl_mini grade", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("paths", nargs="+", type=Path, help="notebooks, or one folder of submissions")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of text")
    p.add_argument("--exercise", help="grade every file as this exercise (e.g. ex02_1); others get a row saying so")
    p.add_argument("--seed", type=int, help="seed of the checks' draws (default: a fresh random one, reported)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per check (default 30)")
    p.add_argument("--notebook-timeout", type=float, default=300.0,
                   help="seconds for running the notebook in its kernel (default 300)")
    p.add_argument("--memory", type=float, default=4.0, help="GiB a check or the kernel may allocate (default 4)")
    p.add_argument("--out", type=Path, help="folder for feedback files (and grades.csv for a folder)")
    p.add_argument("--no-feedback", action="store_true", help="write no feedback files")
    p.add_argument("--no-kernel", action="store_true",
                   help="skip running the notebook in a kernel (the checks still run on its definitions)")
    return p


def _files(paths: list[Path]) -> tuple[list[Path], Path | None]:
    """The files to grade, and the folder if one folder was given."""
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        return files, folder
    return list(paths), None


def main(argv: list[str] | None = None) -> int:
    from harl_mini.grading import EXERCISES
    from harl_mini.grading.report import as_json, summary, write_csv, write_feedback
    from harl_mini.grading.runner import GradingStopped, Limits, grade_files

    args = _parser().parse_args(argv)
    if args.exercise and args.exercise not in EXERCISES:
        print(f"--exercise {args.exercise}: unknown; the exercises are {', '.join(EXERCISES)}", file=sys.stderr)
        return 2
    files, folder = _files(args.paths)
    limits = Limits(check_timeout=args.timeout, notebook_timeout=args.notebook_timeout, memory_gib=args.memory)
    out_dir = args.out or (folder / "feedback" if folder else None)

    def report(result) -> None:
        if not args.no_feedback and result.status != "missing":
            target = out_dir or result.path.parent / "feedback"
            try:
                path = write_feedback(result, target)
                result.notes.append(f"feedback written to {path}")
            except OSError as exc:
                result.notes.append(f"could not write the feedback file: {exc}")
        if not args.json:
            print(summary(result), flush=True)

    try:
        results = grade_files(files, seed=args.seed, limits=limits, exercise=args.exercise, on_result=report,
                              run_kernel=not args.no_kernel)
    except GradingStopped as stop:
        print(f"grading stopped by {stop}; every kernel and check process was killed", file=sys.stderr, flush=True)
        return 128 + stop.signum
    if folder is not None:
        csv_path = write_csv(results, (out_dir or folder) / "grades.csv")
        if not args.json:
            passed = sum(r.passed for r in results)
            print(f"{passed} of {len(results)} files got full points; grades in {csv_path}")
    if args.json:
        print(as_json(results))
    return 0 if results and all(r.passed for r in results) else 1
