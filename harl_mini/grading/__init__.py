"""Graded exercises: checks that take the student's function as their argument.

Usage in an exercise notebook::

    from harl_mini import grading
    grading.ex02_1.check_gae(gae)            # the notebook's fixed draws
    grading.ex02_1.check_gae(gae, seed=123)  # replay the draws of a graded run

Exercise ``exCC_K`` is Exercise CC.K of Chapter CC: its source is
``exercises/src/exCC_K_<topic>.md``, its student notebook ``exercises/exCC_K_<topic>.ipynb``
and its checks the module ``harl_mini.grading.exCC_K``, found here by name (no list to
edit). Each check prints one line per part (``PASS``/``FAIL``, points, and for a failure
why, on which input, a hint and the book's equation with its link).

``python -m harl_mini grade NOTEBOOK|DIR`` grades a notebook the way an instructor would:
:mod:`harl_mini.grading.runner` runs it in a fresh kernel, then runs every *registered*
check of its exercise, each in a fresh process with time and memory limits, on the
functions the notebook defines (see ``exercises/README.md`` for the exact rule).
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from harl_mini.grading.core import CHECKS, Check, CheckFailed, CheckResult, PartResult, install_ipython_handler

#: module names of exercise checks: ex<chapter:02d>_<number>
EXERCISE_MODULE = re.compile(r"^ex\d\d_\d+$")

#: exercise id -> its checks module, in order
EXERCISES = {}
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if EXERCISE_MODULE.match(_info.name):
        EXERCISES[_info.name] = importlib.import_module(f"{__name__}.{_info.name}")
        globals()[_info.name] = EXERCISES[_info.name]
del _info

__all__ = ["CHECKS", "EXERCISES", "Check", "CheckFailed", "CheckResult", "PartResult", *EXERCISES]

install_ipython_handler()
