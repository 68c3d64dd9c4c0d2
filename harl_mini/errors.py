"""One exception type and the input checks every layer of harl_mini shares.

Bad input (a wrong shape, a NaN, a policy row that does not sum to one, an unknown name)
raises :class:`HarlMiniError` with one message that names the argument and says what was
wrong, instead of a traceback from deep inside torch.

The helpers return float64 tensors so that callers can write
``P = as_float64(P, "P")`` and go on.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import numpy as np
import torch

__all__ = [
    "HarlMiniError",
    "MultiAgentEnvError",
    "as_float64",
    "check_shape",
    "check_finite",
    "check_distribution",
    "check_choice",
    "check_positive_int",
]

DTYPE = torch.float64


class HarlMiniError(ValueError):
    """Bad input to a harl_mini function; the message names the argument and the fault."""


class MultiAgentEnvError(HarlMiniError):
    """A single-agent algorithm was given a multi-agent environment (the command line adds
    the names of the multi-agent algorithms to the message)."""


def as_float64(x, name: str) -> torch.Tensor:
    """``x`` as a float64 tensor (numpy arrays, lists and tensors accepted); NaN/inf rejected."""
    if x is None:
        raise HarlMiniError(f"{name}: expected an array, got None")
    try:
        # Lists and scalars go through numpy, which reads Python floats as float64;
        # torch.as_tensor would read them in torch's default dtype (float32) first.
        t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise HarlMiniError(f"{name}: cannot be read as a numeric array ({exc})") from None
    if t.dtype == torch.bool or t.is_complex():
        raise HarlMiniError(f"{name}: expected real numbers, got dtype {t.dtype}")
    t = t.to(DTYPE)
    check_finite(t, name)
    return t


def check_shape(t: torch.Tensor, shape: Sequence[int | None], name: str) -> None:
    """Raise unless ``t.shape`` matches ``shape`` (``None`` matches any size)."""
    expected = tuple(shape)
    ok = t.dim() == len(expected) and all(e is None or e == s for e, s in zip(expected, t.shape))
    if not ok:
        pretty = "[" + ", ".join("*" if e is None else str(e) for e in expected) + "]"
        raise HarlMiniError(f"{name}: expected shape {pretty}, got {list(t.shape)}")


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise if ``t`` holds NaN or infinite entries, naming the first offending index."""
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            idx = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise HarlMiniError(f"{name}: contains {t[idx].item()} at index {idx}; entries must be finite")


def check_distribution(t: torch.Tensor, name: str, atol: float = 1e-8) -> None:
    """Raise unless every slice along the last axis is a probability vector."""
    if bool((t < -atol).any()):
        idx = tuple(int(i) for i in torch.nonzero(t < -atol)[0])
        raise HarlMiniError(f"{name}: negative probability {t[idx].item():.3g} at index {idx}")
    sums = t.sum(-1)
    dev = (sums - 1.0).abs()
    if bool((dev > atol).any()):
        worst = torch.nonzero(dev == dev.max())[0]
        idx = tuple(int(i) for i in worst)
        where = f" at index {idx}" if idx else ""
        raise HarlMiniError(
            f"{name}: probabilities must sum to 1 along the last axis; sum is {sums[idx].item():.6g}{where}"
        )


def check_choice(value: str, choices: Iterable[str], what: str) -> None:
    """Raise unless ``value`` is one of ``choices``; the message lists what exists."""
    options = sorted(choices)
    if value not in options:
        raise HarlMiniError(f"unknown {what} {value!r}; available: {', '.join(options)}")


def check_positive_int(x, name: str) -> int:
    """``int(x)`` if ``x`` is an integer ≥ 1 (Python or NumPy, not a bool), else a HarlMiniError."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) or int(x) < 1:
        raise HarlMiniError(f"{name}: expected a positive integer, got {x!r}")
    return int(x)
