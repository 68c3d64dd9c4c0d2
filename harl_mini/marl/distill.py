r"""Distillation: behaviour-clone a trained joint policy into decentralised agents (Chapter 10).

The transformation-and-distillation idea of Ye et al. (2022, TAD / T-PPO): learn a
*sequential* (autoregressive) joint policy, whose agents see the earlier agents' actions,
then train independent students π^i_φ(a^i | o^i), each on its own observation only, to
imitate it. Behaviour cloning minimises the cross-entropy on the teacher's joint actions,

    L_BC(φ) = −(1/N) Σ_i E_{(o, a) ∼ teacher}[log π^i_φ(a^i | o^i)]       (eq. ``eq-distill-loss``),

whose minimiser over unrestricted student tables is each agent's **marginal** of the teacher
given its own observation (:func:`harl_mini.tabular.marginal_policies`, eq. ``eq-distill``).
What is lost is exactly what the product of the marginals cannot express: nothing if the
teacher is deterministic given each agent's observation, all of the coordination of a
multi-modal teacher (the permutation game: J falls from ≈ 1 to n!/n^n).

* :func:`collect_demonstrations` — the teacher's observations and actions from rollouts;
* :func:`behaviour_cloning_loss` — eq. ``eq-distill-loss``;
* :func:`distill` — Adam on that loss into separate
  :class:`~harl_mini.marl.actors.MultiAgentActors`; returns a :class:`DistillResult`;
* :func:`exact_factors`, :func:`exact_entropies`, :func:`exact_j` — a trained policy
  (product, autoregressive or MAT) as exact conditional tables on a one-state game, its
  joint and per-agent conditional entropies and J (:mod:`harl_mini.tabular.autoregressive`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from harl_mini.errors import HarlMiniError, check_positive_int
from harl_mini.marl.actors import ACTIVATIONS, MultiAgentActors

__all__ = ["collect_demonstrations", "behaviour_cloning_loss", "DistillResult", "distill", "exact_factors",
           "exact_entropies", "exact_j"]


# ---------------------------------------------------------------------------------------
# Exact views of a trained policy on a one-state game
# ---------------------------------------------------------------------------------------


def _game_of(env):
    from harl_mini.envs.matrix import MatrixGameEnv
    from harl_mini.tabular import matrix_game

    if not isinstance(env, MatrixGameEnv):
        raise HarlMiniError(f"exact tables need a one-state discrete game (game:<name>), got {type(env).__name__}")
    return matrix_game(env.payoff.cpu().to(torch.float64))


@torch.no_grad()
def exact_factors(actors, env):
    """(game, factors, order): the trained policy's exact conditional tables on a one-state game.

    Autoregressive actors (:class:`~harl_mini.marl.ar.ARActors`, MAT) give their own tables;
    product actors (:class:`~harl_mini.marl.actors.MultiAgentActors`) give
    :func:`~harl_mini.tabular.product_factors` of their per-agent tables (float64, renormalised).
    """
    from harl_mini.tabular import product_factors

    game = _game_of(env)
    obs = [o[:1] for o in env.obs]
    if hasattr(actors, "ar_factors"):
        factors, order = actors.ar_factors(obs)
        return game, factors, order
    pis = []
    for i in range(game.num_agents):
        logits = actors.head(i, obs[i]).to(torch.float64).cpu()
        pis.append(torch.softmax(logits, -1))
    order = tuple(range(game.num_agents))
    return game, product_factors(game, pis, order), order


def exact_entropies(actors, env) -> tuple[float, list[float]]:
    """(joint entropy, per-agent conditional entropies in execution order) of a trained policy
    on a one-state game (:func:`harl_mini.tabular.ar_entropies`)."""
    from harl_mini.tabular import ar_entropies

    game, factors, order = exact_factors(actors, env)
    H, cond = ar_entropies(game, factors, order)
    return float(H[0]), [float(c) for c in cond[0]]


def exact_j(actors, env) -> float:
    """J of a trained policy on a one-state game (one play), exactly."""
    from harl_mini.tabular import ar_objective

    game, factors, order = exact_factors(actors, env)
    return float(ar_objective(game, factors, order))


# ---------------------------------------------------------------------------------------
# Behaviour cloning
# ---------------------------------------------------------------------------------------


@torch.no_grad()
def collect_demonstrations(teacher, env, num_steps: int, generator: torch.Generator | None = None):
    """Run ``teacher`` (anything with ``sampler()``) for ``num_steps`` joint steps in every copy
    of ``env``; return (obs list [T·B, D_i], actions list [T·B] / [T·B, K_i])."""
    num_steps = check_positive_int(num_steps, "num_steps")
    sample = teacher.sampler()
    obs_all, act_all = [[] for _ in range(env.num_agents)], [[] for _ in range(env.num_agents)]
    obs = env.obs
    for _ in range(num_steps):
        actions, _ = sample(obs, generator)
        for i in range(env.num_agents):
            obs_all[i].append(obs[i])
            act_all[i].append(actions[i])
        obs = env.step(actions)[0]
    env.pop_episodes()
    return [torch.cat(o) for o in obs_all], [torch.cat(a) for a in act_all]


def behaviour_cloning_loss(students: MultiAgentActors, obs, actions) -> torch.Tensor:
    r"""−(1/N) Σ_i mean log π^i_φ(a^i | o^i) on the teacher's samples (eq. ``eq-distill-loss``).

    Each student sees only its own observation; the N terms are separate cross-entropies, so
    agent i's minimiser is the teacher's marginal of a^i given o^i.
    """
    total = 0.0
    for i in range(students.num_agents):
        total = total + students.log_prob(i, obs[i], actions[i]).mean()
    return -total / students.num_agents


@dataclass
class DistillResult:
    """The students (separate :class:`~harl_mini.marl.actors.MultiAgentActors`), the loss after
    every epoch, and the number of demonstration samples."""

    students: MultiAgentActors
    losses: list[float] = field(default_factory=list)
    samples: int = 0


def distill(teacher, env, num_steps: int = 1, epochs: int = 200, lr: float = 0.05, hidden=(), activation="tanh",
            minibatches: int = 1, seed: int = 0) -> DistillResult:
    """Behaviour-clone ``teacher`` into decentralised students (see the module docstring).

    Demonstrations: ``num_steps`` joint steps in every copy of ``env`` (a MultiAgentVecEnv)
    with the teacher's stochastic policy; then ``epochs`` passes of Adam (``lr``) over them in
    ``minibatches`` minibatches. Students: one network per agent on its own observation,
    hidden widths ``hidden`` (() = linear, a tabular softmax on a constant observation).
    Deterministic given ``seed`` (CPU).
    """
    from harl_mini.envs.multi import MultiAgentVecEnv

    if not isinstance(env, MultiAgentVecEnv):
        raise HarlMiniError(f"env: expected a MultiAgentVecEnv (e.g. make_env('game:permutation-3', ...)), "
                            f"got {type(env).__name__}")
    if not callable(getattr(teacher, "sampler", None)):
        raise HarlMiniError(f"teacher: expected trained actors with a sampler() (history.policy), "
                            f"got {type(teacher).__name__}")
    epochs, minibatches = check_positive_int(epochs, "epochs"), check_positive_int(minibatches, "minibatches")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise HarlMiniError(f"lr: expected a positive number, got {lr!r}")
    if activation not in ACTIVATIONS:
        raise HarlMiniError(f"unknown activation {activation!r}; available: {', '.join(sorted(ACTIVATIONS))}")
    gen = torch.Generator(device=env.device).manual_seed(int(seed))
    torch.manual_seed(int(seed))
    obs, actions = collect_demonstrations(teacher, env, num_steps, gen)
    students = MultiAgentActors(env.obs_dims, env.action_spaces, share_params=False, hidden=tuple(hidden),
                                activation=activation, device=env.device)
    opt = torch.optim.Adam(students.parameters(), lr=lr, eps=1e-5)
    S = obs[0].shape[0]
    result = DistillResult(students, samples=S)
    for _ in range(epochs):
        batches = [slice(None)] if minibatches == 1 else \
            list(torch.randperm(S, generator=gen, device=env.device).split(max(1, S // minibatches)))
        for mb in batches:
            loss = behaviour_cloning_loss(students, [o[mb] for o in obs], [a[mb] for a in actions])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        result.losses.append(float(loss.detach()))
    return result
