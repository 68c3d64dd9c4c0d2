"""Small helpers every plotting module shares: a fresh Axes, argument checks that raise
:class:`~harl_mini.errors.HarlMiniError` with one clear message, and :func:`check`, the one-line
output of a verification cell. (An explorer's images: :mod:`harl_mini.viz.explorer`.)"""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np
import torch

from harl_mini.errors import HarlMiniError, as_float64


def new_axes(ax, figsize):
    """``ax`` itself, or a new Axes of ``figsize`` inches when ``ax`` is None."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def f64(x, name: str) -> torch.Tensor:
    """``x`` as a detached float64 tensor (lists and arrays accepted; NaN/inf rejected)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
    elif x is not None and not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise HarlMiniError(f"{name}: cannot be read as a numeric array ({exc})") from None
    return as_float64(x, name)



def real(x, name: str, low: float | None = None, high: float | None = None) -> float:
    """A finite number in [low, high] (either bound may be None)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
        raise HarlMiniError(f"{name}: expected a finite number, got {x!r}")
    x = float(x)
    if (low is not None and x < low) or (high is not None and x > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise HarlMiniError(f"{name}: expected a number in [{lo}, {hi}], got {x!r}")
    return x


def game(game):
    """A MarkovGame, given one or a registered game name."""
    from harl_mini import tabular

    if isinstance(game, str):
        return tabular.make_game(game)
    if not isinstance(game, tabular.MarkovGame):
        raise HarlMiniError(f"game: expected a MarkovGame or a game name, got {type(game).__name__}")
    return game


def check(condition, message: str) -> None:
    """Assert ``condition`` and print one line, ``✓ message``: a verification cell's whole output.

    Use it for the last line of a check cell, with the evidence in the message::

        check(bool(slack.min() >= 0), f"Lemma 2 holds on {n} random pairs, min slack {slack.min():.1e}")

    Args:
        condition: a bool (``numpy.bool_`` and one-element bool tensors are accepted). Anything
            else is refused: ``check((a, b), ...)`` or ``check(tensor, ...)`` would otherwise
            pass or fail for the wrong reason.
        message: what holds, with the numbers that show it.

    Raises:
        AssertionError: with ``message`` when ``condition`` is false.
    """
    if isinstance(condition, torch.Tensor):
        if condition.dtype != torch.bool or condition.numel() != 1:
            raise HarlMiniError(f"check: expected a bool, got a {condition.dtype} tensor of shape "
                                f"{list(condition.shape)} (reduce it with .all() or compare a number)")
        condition = bool(condition.item())
    elif isinstance(condition, np.ndarray) and condition.dtype == np.bool_ and condition.size == 1:
        condition = bool(condition.item())
    if not isinstance(condition, (bool, np.bool_)):
        raise HarlMiniError(f"check: expected a bool, got {type(condition).__name__} ({condition!r:.60})")
    if not isinstance(message, str) or not message.strip():
        raise HarlMiniError("check: expected a non-empty message saying what holds")
    if not condition:
        raise AssertionError(message)
    # one write: print() writes the text and the newline separately, and a kernel that flushes in
    # between leaves the newline as a second, empty output block in the book
    sys.stdout.write(f"✓ {message}\n")
