"""Graded exercises: checks that take the student's function as their argument.

Usage in an exercise notebook::

    from harl_mini import grading
    grading.ex00.check_discounted_returns(discounted_returns)

Each check is seeded, float64 and CPU-only, runs in well under 2 s, prints ``PASS ...``
or raises :class:`CheckFailed` with one message naming the book's equation label.
``python -m harl_mini grade exercises/ex00_returns.ipynb`` prints a per-check summary.
"""

from __future__ import annotations

from harl_mini.grading import ex00, ex01, ex02, ex03, ex04, ex05, ex06, ex07, ex08
from harl_mini.grading.core import CHECKS, Check, CheckFailed, install_ipython_handler

__all__ = ["CHECKS", "Check", "CheckFailed", "ex00", "ex01", "ex02", "ex03", "ex04", "ex05", "ex06", "ex07", "ex08"]

install_ipython_handler()
