"""Small helpers every plotting module shares: a fresh Axes, and argument checks that raise
:class:`~harl_mini.errors.HarlMiniError` with one clear message."""

from __future__ import annotations

import math
import numbers

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


def positive_int(x, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or int(x) < 1:
        raise HarlMiniError(f"{name}: expected a positive integer, got {x!r}")
    return int(x)


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
