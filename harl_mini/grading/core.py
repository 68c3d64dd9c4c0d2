"""The machinery every exercise check shares.

A *check* takes the student's function as its only argument, calls it on seeded float64
CPU inputs, compares the result with the package's own implementation (the oracle), and
either prints one pass line or raises :class:`CheckFailed` with one message that says what
was wrong and names the book's equation label. Whatever the student's function does
(raise, return ``None``, a wrong shape or dtype, NaN), the student sees that one message,
never a traceback from inside the grader: in IPython a custom exception handler prints
``CheckFailed`` as a single line.

Checks are registered per exercise with :func:`register`, so the test suite can prove that
each check passes on the reference and rejects every hand-written wrong implementation.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["CheckFailed", "Check", "CHECKS", "register", "call_student", "expect_tensor", "expect_close"]


class CheckFailed(AssertionError):
    """A graded check rejected the student's function; the message says why."""


@dataclass(frozen=True)
class Check:
    """A registered check: ``exercise`` id (e.g. ``"ex00"``), its name and equation label."""

    exercise: str
    name: str
    equation: str
    run: Callable[[Callable], None]


CHECKS: dict[str, dict[str, Check]] = {}


def register(exercise: str, equation: str):
    """Decorator: register ``check_*`` for ``exercise``; on success print a pass line.

    Every :class:`CheckFailed` raised inside gets the check name and the equation label
    prefixed, so messages stay short inside the individual checks.
    """

    def decorate(fn: Callable[[Callable], None]) -> Callable[[Callable], None]:
        @functools.wraps(fn)
        def check(student_fn: Callable) -> None:
            if not callable(student_fn):
                raise CheckFailed(
                    f"{fn.__name__}: expected your function as the argument, got {type(student_fn).__name__}"
                )
            start = time.perf_counter()
            try:
                fn(student_fn)
            except CheckFailed as exc:
                raise CheckFailed(f"{fn.__name__} (eq. {equation}): {exc}") from None
            print(f"PASS {fn.__name__} ({time.perf_counter() - start:.2f} s)")

        check.equation = equation
        CHECKS.setdefault(exercise, {})[fn.__name__] = Check(exercise, fn.__name__, equation, check)
        return check

    return decorate


def call_student(student_fn: Callable, *args, **kwargs):
    """Call the student's function on copies of the inputs; turn any exception into one message."""
    args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
    name = getattr(student_fn, "__name__", "your function")
    try:
        return student_fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"`{name}` is not implemented yet: replace the `raise NotImplementedError` line") from None
    except Exception as exc:  # noqa: BLE001 - any student error becomes one clear message
        raise CheckFailed(f"`{name}` raised {type(exc).__name__}: {exc}") from None


def expect_tensor(out, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """Validate a student's output: a float64 tensor (or numpy array) of ``shape``, finite."""
    if out is None:
        raise CheckFailed(f"{what} is None; did you forget `return`? Expected a float64 tensor of shape {list(shape)}")
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(out)
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"{what} has type {type(out).__name__}; expected a float64 torch.Tensor of shape {list(shape)}")
    if tuple(out.shape) != tuple(shape):
        raise CheckFailed(f"{what} has shape {list(out.shape)}; expected {list(shape)}")
    if out.dtype != torch.float64:
        raise CheckFailed(f"{what} has dtype {out.dtype}; expected torch.float64 (keep the inputs' dtype)")
    bad = ~torch.isfinite(out)
    if bool(bad.any()):
        idx = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise CheckFailed(f"{what} contains {out[idx].item()} at index {idx}")
    return out.detach()


def expect_close(actual: torch.Tensor, expected: torch.Tensor, what: str, atol: float = 1e-8) -> None:
    """Raise unless ``actual`` matches ``expected`` entrywise within ``atol``; name the worst index."""
    err = (actual - expected).abs()
    if float(err.max()) > atol:
        idx = tuple(int(i) for i in torch.nonzero(err == err.max())[0])
        raise CheckFailed(
            f"{what} is wrong at index {idx}: got {actual[idx].item():.6g}, expected {expected[idx].item():.6g}"
            f" (max error {float(err.max()):.3g})"
        )


def _show_check_failure(shell, etype, value, tb, tb_offset=None):
    """IPython handler: show a failed check as one line instead of a traceback.

    IPython ignores what a custom handler returns, so the handler publishes the error
    itself; in Jupyter the cell gets an ordinary error output (ename ``CheckFailed``).
    """
    stb = [f"FAIL {value}"]
    shell._showtraceback(etype, value, stb)
    return stb


def install_ipython_handler() -> None:
    """Show :class:`CheckFailed` as one line in IPython/Jupyter (no-op outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the book's requirements
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((CheckFailed,), _show_check_failure)
