"""harl_mini: small, verified trust-region reinforcement learning, from one agent to many.

Layers (each imports only the ones above it):

========================  ===========================================================
``harl_mini.errors``      one exception type and the input checks every layer shares
``harl_mini.tabular``     the exact float64 oracle: finite MDPs and cooperative Markov
                          games, values, advantages, visitation, KL divergences; exact
                          policy gradients, natural gradients, TRPO and PPO theory
``harl_mini.advantages``  discounted returns and GAE (shared by exact and sampled code)
``harl_mini.losses``      probability ratio, surrogate and PPO clipped objective
``harl_mini.trust_region``  conjugate gradient, step length, backtracking line search
``harl_mini.nets``        policy and value networks, flat-parameter helpers
``harl_mini.envs``        vectorised environments behind one registry
``harl_mini.rollout``     batched rollouts with termination and truncation kept apart
``harl_mini.algos``       REINFORCE, TRPO and PPO; ``algos.run`` records runs
``harl_mini.provenance``  run manifests (commit, versions, hardware, seeds, wall time)
``harl_mini.viz``         plotting helpers used by the book (static figures and widgets)
``harl_mini.grading``     exercise checks, the student-notebook generator and runner
========================  ===========================================================

Submodules are imported lazily, so ``import harl_mini`` is cheap (no torch import).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["errors", "tabular", "advantages", "losses", "trust_region", "nets", "envs", "rollout", "algos",
           "provenance", "viz", "grading", "set_num_threads", "__version__"]

_SUBMODULES = {"errors", "tabular", "advantages", "losses", "trust_region", "nets", "envs", "rollout", "algos",
               "provenance", "viz", "grading", "testing", "bench"}


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
