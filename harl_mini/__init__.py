"""harl_mini: small, verified trust-region reinforcement learning, from one agent to many.

Layers, in import order: each imports only layers above it in the table (checked by
``tests/test_packaging.py``). The book's API reference documents every module
(``book/api/``).

============================  =========================================================
``harl_mini.errors``          one exception type and the input checks every layer shares
``harl_mini.data``            where the shipped configs and recorded runs are found: a
                              clone, an installed wheel, or ``$HARL_MINI_DATA``
``harl_mini.advantages``      discounted returns and GAE (shared by exact and sampled code)
``harl_mini.losses``          probability ratio, surrogate and PPO clipped objective
``harl_mini.trust_region``    conjugate gradient, step length, backtracking line search
``harl_mini.tabular``         the exact float64 oracle: finite MDPs and cooperative Markov
                              games, values, advantages, visitation, KL divergences; exact
                              policy gradients, natural gradients, TRPO, PPO and HATRPO
                              theory (it reuses the three formula layers above)
``harl_mini.bench``           speed figures of the exact oracle
``harl_mini.nets``            policy and value networks, flat-parameter helpers
``harl_mini.rollout``         batched rollouts with termination and truncation kept apart
``harl_mini.envs``            vectorised environments behind one registry (tabular, Gym,
                              one-state games, VMAS, MPE/PettingZoo, Multi-Agent MuJoCo)
``harl_mini.provenance``      run manifests (commit, versions, hardware, seeds, wall time)
``harl_mini.algos``           REINFORCE, TRPO and PPO; ``algos.run`` records runs
``harl_mini.marl``            IPPO, MAPPO, HAPPO and HATRPO: actors, critics, runner, the
                              full-scale trainer (``python -m harl_mini train``), benchmarks
``harl_mini.viz``             plotting helpers used by the book (static figures and widgets)
``harl_mini.launch``          the ``.ipynb`` twins of the book's pages (Colab, Binder) and
                              their install cell (also the student notebooks' first cell)
``harl_mini.grading``         exercise checks, the student-notebook generator and runner
``harl_mini.sphinxext``       the book's Sphinx extension (API reference, launch buttons)
``harl_mini.testing``         the pytest plugin that runs MyST-Markdown notebooks
============================  =========================================================

Submodules are imported lazily, so ``import harl_mini`` is cheap (no torch import).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
#: The layers of the table above, in import order (``tests/test_packaging.py`` checks both).
LAYERS = ("errors", "data", "advantages", "losses", "trust_region", "tabular", "bench", "nets", "rollout", "envs",
          "provenance", "algos", "marl", "viz", "launch", "grading", "sphinxext", "testing")
__all__ = ["errors", "data", "advantages", "losses", "trust_region", "tabular", "nets", "rollout", "envs",
           "provenance", "algos", "marl", "viz", "grading", "set_num_threads", "__version__"]

_SUBMODULES = set(LAYERS) - {"sphinxext"}  # the Sphinx extension needs Sphinx: import it explicitly


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
