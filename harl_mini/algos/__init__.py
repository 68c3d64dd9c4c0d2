"""Sampled single-agent policy-optimisation algorithms (Chapters 2, 4 and 5).

=============  ======================================  =====================================
Name           Module                                  Algorithm
=============  ======================================  =====================================
``reinforce``  :mod:`harl_mini.algos.reinforce`        REINFORCE with a learned baseline
``trpo``       :mod:`harl_mini.algos.trpo`             TRPO (CG + line search, true-KL FVP)
``ppo``        :mod:`harl_mini.algos.ppo`              PPO with the clipped surrogate
=============  ======================================  =====================================

Every module reads top to bottom and exposes the same two functions::

    train(env, steps, seed=0, device="cpu", progress=True, log=None, **hparams) -> History
    evaluate(policy, env, episodes, deterministic=True) -> {"returns", "lengths", "mean", "std"}

``get_algo(name)`` returns the module; an unknown name raises listing the available ones.
Command line: ``python -m harl_mini.algos.run --algo ppo --env gym:CartPole-v1 ...``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from harl_mini.errors import HarlMiniError, check_choice

__all__ = ["ALGOS", "get_algo", "train"]

#: name -> module implementing ``train`` / ``evaluate`` / ``PRESETS`` (imported lazily)
ALGOS: dict[str, str] = {
    "reinforce": "harl_mini.algos.reinforce",
    "trpo": "harl_mini.algos.trpo",
    "ppo": "harl_mini.algos.ppo",
}


def get_algo(name: str) -> ModuleType:
    """The module of algorithm ``name`` (``"reinforce"``, ``"trpo"`` or ``"ppo"``)."""
    if not isinstance(name, str):
        raise HarlMiniError(f"algo: expected an algorithm name (a string), got {name!r}")
    check_choice(name, ALGOS, "algorithm")
    return importlib.import_module(ALGOS[name])


def train(algo: str, env, steps: int, **kwargs):
    """``get_algo(algo).train(env, steps, **kwargs)``."""
    return get_algo(algo).train(env, steps, **kwargs)
