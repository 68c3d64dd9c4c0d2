r"""Sampled cooperative multi-agent algorithms: IPPO, MAPPO, HAPPO, HATRPO (Chapter 8) and the
autoregressive ones of Chapter 10 (AR-MAPPO, AR-HAPPO, MAT, MAT-Dec).

One runner (:mod:`harl_mini.marl.runner`) and one buffer (:mod:`harl_mini.marl.buffer`)
serve all of them; the registry :data:`~harl_mini.marl.runner.ALGORITHMS` has one line per
algorithm naming what differs (critic, actors, actor update):

=============  =========================================  ==================================
Name           Critic                                     Actor update
=============  =========================================  ==================================
``ippo``       V^i(o^i) per agent                         all agents' PPO steps at once
``mappo``      centralised V(s) (ValueNorm)               all agents' PPO steps at once,
                                                          shared parameters by default
``happo``      centralised V(s)                           sequential PPO steps on M·Â,
                                                          random order each iteration
``hatrpo``     centralised V(s)                           sequential trust-region steps
                                                          (CG + true-KL line search)
``ar_mappo``   centralised V(s)                           autoregressive MLP actors
                                                          (:mod:`~harl_mini.marl.ar`), all
                                                          at once on conditional ratios
``ar_happo``   centralised V(s)                           autoregressive MLP actors, HAPPO's
                                                          sequential update with M
``mat``        the transformer's encoder, V(ô^i)          Multi-Agent Transformer
                                                          (:mod:`~harl_mini.marl.mat`): one
                                                          loss, conditional ratios, no M
``mat_dec``    MAT's encoder, V(ô^i)                      MAT's loss, decentralised MLP
                                                          actors on own observations
=============  =========================================  ==================================

Usage::

    from harl_mini import marl
    history = marl.train("happo", "game:xor", steps=200_000, seed=0, hidden=(), lr=0.02)
    history.last["j_exact"]            # exact J of the learned stochastic policy (one-state games)

Modules: :mod:`~harl_mini.marl.actors` (per-agent or shared policies, batched sampling),
:mod:`~harl_mini.marl.critic` (V(s), V^i(o^i), ValueNorm), :mod:`~harl_mini.marl.buffer`,
:mod:`~harl_mini.marl.runner`, :mod:`~harl_mini.marl.ar`, :mod:`~harl_mini.marl.mat`,
:mod:`~harl_mini.marl.distill` (behaviour cloning into decentralised actors),
:mod:`~harl_mini.marl.bench` (throughput),
:mod:`~harl_mini.marl.run` (recorded runs with provenance; ``--sweep``),
:mod:`~harl_mini.marl.trainer` (``python -m harl_mini train``: full-scale runs with
metrics.csv, TensorBoard, checkpoints and bit-identical resume; named configs in ``configs/``).
"""

from __future__ import annotations

from functools import partial

from harl_mini.errors import HarlMiniError

from harl_mini.marl.runner import ALGORITHMS, MAConfig, MARunner, PRESETS, evaluate, exact_objective
from harl_mini.marl.runner import train as _train

__all__ = ["MA_ALGOS", "get_update", "train", "evaluate", "exact_objective", "MAConfig", "MARunner", "PRESETS"]


def _update(algo: str, runner: MARunner, buffer) -> dict:
    if runner.algo != algo:
        raise HarlMiniError(f"this update is {algo!r} but the runner was built for {runner.algo!r}")
    return runner.update(buffer)


#: algorithm name -> its update function ``update(runner, buffer) -> metrics``
MA_ALGOS = {name: partial(_update, name) for name in ALGORITHMS}


def get_update(algo: str):
    """The update function of ``algo``; unknown names raise listing the options."""
    if not isinstance(algo, str) or algo not in MA_ALGOS:
        raise HarlMiniError(f"unknown multi-agent algorithm {algo!r}; available: {', '.join(sorted(MA_ALGOS))}")
    return MA_ALGOS[algo]


def train(algo: str, env, steps: int, seed: int = 0, device="cpu", progress: bool = True, **hparams):
    """Train ``algo`` on ``env`` (a name such as ``"game:xor"`` or a MultiAgentVecEnv) for
    ``steps`` environment steps; returns a :class:`~harl_mini.algos.common.History`.
    Unknown algorithms raise :class:`~harl_mini.errors.HarlMiniError` listing the options."""
    get_update(algo)
    return _train(algo, env, steps, seed=seed, device=device, progress=progress, **hparams)
