"""harl_mini: small, verified trust-region reinforcement learning, from one agent to many.

Layers (each imports only the ones above it):

=====================  ==============================================================
``harl_mini.errors``   one exception type and the input checks every layer shares
``harl_mini.tabular``  the exact float64 oracle: finite MDPs and cooperative Markov
                       games, values, advantages, visitation, KL divergences
``harl_mini.viz``      plotting helpers used by the book (static figures and widgets)
``harl_mini.grading``  exercise checks, the student-notebook generator and runner
=====================  ==============================================================

Submodules are imported lazily, so ``import harl_mini`` is cheap (no torch import).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["errors", "tabular", "viz", "grading", "set_num_threads", "__version__"]

_SUBMODULES = {"errors", "tabular", "viz", "grading", "testing", "bench"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"harl_mini.{name}")
    raise AttributeError(f"module 'harl_mini' has no attribute {name!r}")


def set_num_threads(n: int = 1) -> None:
    """Set torch's intra-op thread count (1 by default).

    On a 2-core machine that also runs a notebook kernel or a test worker, more than one
    torch thread per process oversubscribes the cores and is several times slower.
    """
    import torch

    torch.set_num_threads(int(n))
