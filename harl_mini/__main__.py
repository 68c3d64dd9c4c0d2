"""Command line: ``python -m harl_mini <command>``.

=============================  =====================================================
``grade NOTEBOOK...|DIR``      grade exercise notebooks: each runs in a fresh kernel,
                               then every registered check runs on its functions in
                               a fresh process (points, feedback files, ``--json``;
                               a folder gives one CSV); exit 0 iff all full marks
``exercises build``            regenerate exercises/exCC_K_*.ipynb from exercises/src
``exercises check``            fail if the committed student notebooks drifted
``bench [--quick]``            speed figures of the exact oracle
``train --algo A --env E ...`` train and record a run with provenance: the
                               multi-agent algorithms (ippo, mappo, happo, hatrpo;
                               also ``--config FILE`` / ``--resume DIR``) with
                               :mod:`harl_mini.marl.trainer` (``train --help``),
                               the single-agent ones (reinforce, trpo, ppo) with
                               :mod:`harl_mini.algos.run`
``sweep SPEC.yaml``            a grid of training runs (algorithms × environments
                               × seeds × overrides) on Ray, restartable, with one
                               summary table (:mod:`harl_mini.marl.sweep`)
=============================  =====================================================
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _bench(argv: list[str]) -> int:
    from harl_mini import bench

    return bench.main(argv)


def _grade(argv: list[str]) -> int:
    from harl_mini.grading import cli

    return cli.main(argv)


def _train(argv: list[str]) -> int:
    from harl_mini.marl import trainer

    if trainer.wants_multi_agent(argv):
        return trainer.main(argv)
    from harl_mini.algos import run

    return run.main(argv, multi_agent_algos=trainer.ALGORITHMS)


def _sweep(argv: list[str]) -> int:
    from harl_mini.marl import sweep

    return sweep.main(argv)


#: Subcommands with their own argument parsers: everything after the name goes to them.
PASSTHROUGH = {"bench": _bench, "grade": _grade, "train": _train, "sweep": _sweep}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PASSTHROUGH:
        return PASSTHROUGH[argv[0]](argv[1:])
    parser = argparse.ArgumentParser(prog="python -m harl_mini", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("grade", help="grade exercise notebooks or a folder of submissions (grade --help)")
    p_ex = sub.add_parser("exercises", help="build or check the student notebooks")
    p_ex.add_argument("action", choices=["build", "check"])
    p_ex.add_argument("--src", type=Path, default=Path("exercises/src"))
    p_ex.add_argument("--out", type=Path, default=Path("exercises"))
    sub.add_parser("bench", help="speed figures of the exact oracle (bench --help)")
    sub.add_parser("train", help="train and record a run (train --help)")
    sub.add_parser("sweep", help="run a grid of training runs on Ray (sweep --help)")
    args = parser.parse_args(argv)

    if args.command == "exercises":
        from harl_mini.grading.notebooks import sync_problems, write_student_notebooks

        if args.action == "build":
            for path in write_student_notebooks(args.src, args.out):
                print(f"wrote {path}")
            return 0
        problems = sync_problems(args.src, args.out)
        for problem in problems:
            print(problem)
        print("student notebooks are in sync" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    return 2  # pragma: no cover (bench, grade and train were dispatched above)


if __name__ == "__main__":
    sys.exit(main())
