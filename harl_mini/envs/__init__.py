r"""Environments behind one batched torch step API, found by name.

``make_env(name, num_envs, seed, device)`` looks the part of ``name`` before the first
colon up in :data:`ENVS` and hands the rest to that entry:

=====================  ==================================================================
Name                   Environment
=====================  ==================================================================
``gym:<id>``           any Gymnasium id with a flat Box observation and a Discrete or
                       Box action space, e.g. ``gym:CartPole-v1``, ``gym:Pendulum-v1``
                       (:mod:`harl_mini.envs.gym`)
``tabular:<mdp>``      a finite MDP of :func:`harl_mini.tabular.make_mdp` (``random``,
                       ``chain``, ``gridworld``) with one-hot observations; ``tabular``
                       with ``mdp=...`` wraps any FiniteMDP (:mod:`harl_mini.envs.tabular`)
``game:<name>``        multi-agent one-state cooperative games (``xor``, ``prop1-<n>``,
                       ``permutation-<n>``, ``climbing``, ``penalty``, ``zhong-example1``,
                       ``a1a2``, or a payoff file ``<f>.npy|.csv|.json``)
                       (:mod:`harl_mini.envs.matrix`)
``markov:<name>``      multi-state cooperative Markov games (``two-step``, or a file
                       ``<f>.npz|.json`` with P, R) (:mod:`harl_mini.envs.markov`)
``vmas:<scenario>``    VMAS scenarios, batched in torch on any device, e.g.
                       ``vmas:transport``, ``vmas:balance`` (:mod:`harl_mini.envs.vmas`)
``mpe:<scenario>``     MPE2 scenarios run in-process, e.g. ``mpe:simple_spread``
                       (:mod:`harl_mini.envs.pettingzoo`)
``pettingzoo:<m>.<e>`` any PettingZoo parallel env ``<m>.<e>.parallel_env()``
                       (:mod:`harl_mini.envs.pettingzoo`)
``mamujoco:<S>-<c>``   Multi-Agent MuJoCo, e.g. ``mamujoco:HalfCheetah-2x3``; needs the
                       optional extra ``pip install .[mujoco]`` (:mod:`harl_mini.envs.mamujoco`)
=====================  ==================================================================

Single-agent environments are :class:`~harl_mini.envs.base.VecEnv`\ s, already reset with
``seed``: ``step(actions) -> obs, reward, terminated, truncated, final_obs``. Multi-agent
ones are :class:`~harl_mini.envs.multi.MultiAgentVecEnv`\ s: per-agent observation lists, a
global state for a centralised critic and a shared team reward (see those modules).

Adding an environment family = one file with a ``make(rest, num_envs, seed, device,
**kwargs)`` function + one line in :data:`ENVS`. Entries are imported lazily, so the
tabular path never imports Gymnasium, and nothing imports MuJoCo until asked.
"""

from __future__ import annotations

import importlib

from harl_mini.envs.base import VecEnv
from harl_mini.errors import HarlMiniError

__all__ = ["ENVS", "VecEnv", "make_env", "available_envs"]

#: prefix -> ("module:function", a human description of what follows the colon)
ENVS: dict[str, tuple[str, str]] = {
    "gym": ("harl_mini.envs.gym:make", "gym:<Gymnasium id>, e.g. gym:CartPole-v1"),
    "tabular": ("harl_mini.envs.tabular:make", "tabular:<chain|gridworld|random> or tabular with mdp="),
    "game": ("harl_mini.envs.matrix:make",
             "game:<xor|prop1-<n>|permutation-<n>|climbing|penalty|zhong-example1|a1a2|file.npy|.csv|.json> "
             "(multi-agent)"),
    "markov": ("harl_mini.envs.markov:make",
               "markov:<two-step|file.npz|file.json>, a multi-state cooperative Markov game (multi-agent)"),
    "vmas": ("harl_mini.envs.vmas:make", "vmas:<scenario>, e.g. vmas:transport, vmas:balance (multi-agent, torch)"),
    "mpe": ("harl_mini.envs.pettingzoo:make_mpe", "mpe:<scenario>, e.g. mpe:simple_spread (MPE2, multi-agent)"),
    "pettingzoo": ("harl_mini.envs.pettingzoo:make",
                   "pettingzoo:<module>.<env>, any PettingZoo parallel env, e.g. pettingzoo:mpe2.simple_spread_v3"),
    "mamujoco": ("harl_mini.envs.mamujoco:make",
                 "mamujoco:<Scenario>-<conf>, e.g. mamujoco:HalfCheetah-2x3 (needs pip install .[mujoco])"),
}


def available_envs() -> list[str]:
    """One line per registered environment family."""
    return [ENVS[k][1] for k in sorted(ENVS)]


def make_env(name: str, num_envs: int = 1, seed: int = 0, device="cpu", **kwargs):
    """Build the registered environment ``name`` with ``num_envs`` copies, reset with ``seed``.

    Unknown names raise :class:`~harl_mini.errors.HarlMiniError` listing what exists;
    extra keyword arguments go to the family's ``make``.
    """
    if not isinstance(name, str):
        raise HarlMiniError(f"env: expected an environment name (a string), got {name!r}")
    prefix, _, rest = name.partition(":")
    if prefix not in ENVS:
        raise HarlMiniError(f"unknown environment {name!r}; available: {'; '.join(available_envs())}")
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise HarlMiniError(f"num_envs: expected a positive integer, got {num_envs!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise HarlMiniError(f"seed: expected an integer, got {seed!r}")
    module, _, fn = ENVS[prefix][0].partition(":")
    return getattr(importlib.import_module(module), fn)(rest, num_envs=num_envs, seed=seed, device=device, **kwargs)
