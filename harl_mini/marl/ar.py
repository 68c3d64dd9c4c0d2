r"""Autoregressive actors: PG-AR with a small MLP on the earlier agents' actions (Chapter 10).

The agents act in index order 0, 1, …, N−1 (as MAT's decoder does). Agent i's network sees
its own observation and the actions already drawn by agents 0..i−1,

    x^i = [o^i, e(a^0), …, e(a^{i−1})],   π^i(a^i | o^i, a^{0:i−1}) = π^i_θ(a^i | x^i)
                                                                   (eq. ``eq-ar-actor``),

with e(a) the one-hot vector of a discrete action (n entries) or the action itself for a
Box agent. So the joint policy is autoregressive (eq. ``eq-ar-policy``), and each factor is
an ordinary :class:`~harl_mini.nets.CategoricalPolicy` / :class:`~harl_mini.nets.GaussianPolicy`
on a wider input: :class:`ARActors` *is* a :class:`~harl_mini.marl.actors.MultiAgentActors`
whose agent i has input size D_i + Σ_{j<i} w_j, plus

* :meth:`ARActors.conditioned` — every agent's input x^i from stored observations and
  actions at once (teacher forcing: the buffer already holds a^{0:i−1}); the runner's PPO,
  HAPPO and HATRPO updates then run unchanged on these inputs, and each agent's ratio is
  its **conditional** ratio ξ^i = π^i_new(a^i | x^i) / π^i_old(a^i | x^i);
* :meth:`ARActors.sampler` — rollouts draw a^0, then a^1 given a^0, …: N network calls per
  step, each agent's log-probability its conditional one (what the buffer stores);
* :meth:`ARActors.ar_factors` — the exact conditional tables on a one-state game, in the
  format of :mod:`harl_mini.tabular.autoregressive` (J, entropies, distillation).

Two registered algorithms use these actors (:data:`harl_mini.marl.runner.ALGORITHMS`):

==============  ===========================================================================
``ar_mappo``    every agent's PPO-clip step at once on its conditional ratio and the joint
                Â: MAT's objective (eq. ``eq-mat-objective``) with MLP actors, no M
``ar_happo``    HAPPO's sequential update (random order, factor M = product of the earlier-
                updated agents' conditional ratios): the exact surrogate of
                eq. ``eq-ar-surrogate``
==============  ===========================================================================

Parameters are never shared (agent i's input size grows with i).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from harl_mini.errors import HarlMiniError
from harl_mini.marl.actors import MultiAgentActors, _sample_categorical, _sample_gaussian

__all__ = ["ARActors", "build_ar_actors"]


class ARActors(MultiAgentActors):
    """Autoregressive actors in index order; see the module docstring.

    Arguments as :class:`~harl_mini.marl.actors.MultiAgentActors` (``obs_dims`` are the
    environment's observation sizes); parameters are separate per agent.
    """

    def __init__(self, obs_dims: Sequence[int], action_spaces, hidden=(64, 64), activation: str = "tanh",
                 log_std_init: float = 0.0, learn_std: bool = True, init_mean=None, device="cpu",
                 feature_norm: bool = False, layer_norm: bool = False):
        spaces = [tuple(s) for s in action_spaces]
        if len(spaces) != len(obs_dims) or not spaces:
            raise HarlMiniError("obs_dims and action_spaces need one entry per agent (at least one agent)")
        widths = [int(size) for _, size in spaces]  # one-hot size (discrete) or action size (box)
        self_prefix = [sum(widths[:i]) for i in range(len(widths))]
        super().__init__([int(d) + p for d, p in zip(obs_dims, self_prefix)], spaces, share_params=False,
                         agent_id=False, hidden=hidden, activation=activation, log_std_init=log_std_init,
                         learn_std=learn_std, init_mean=init_mean, device=device, feature_norm=feature_norm,
                         layer_norm=layer_norm)
        self.env_obs_dims = [int(d) for d in obs_dims]
        self.action_widths = widths
        self.order = tuple(range(self.num_agents))

    # -------------------------------------------------------------------------------------
    # Inputs x^i = [o^i, e(a^0), …, e(a^{i−1})]
    # -------------------------------------------------------------------------------------
    def action_features(self, i: int, act: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """e(a^i): the one-hot [B, n_i] of a discrete action, the action [B, K_i] of a Box agent."""
        if self.discrete[i]:
            return F.one_hot(act.long(), self.action_widths[i]).to(dtype)
        return act.to(dtype).reshape(act.shape[0], -1)

    def conditioned(self, obs: Sequence[torch.Tensor], actions: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Every agent's input x^i (eq. ``eq-ar-actor``) from stored observations and actions
        (teacher forcing); a list of N tensors [B, D_i + Σ_{j<i} w_j]."""
        if len(obs) != self.num_agents or len(actions) != self.num_agents:
            raise HarlMiniError(f"conditioned: expected {self.num_agents} observations and actions, "
                                f"got {len(obs)} and {len(actions)}")
        feats = [self.action_features(i, a, obs[i].dtype) for i, a in enumerate(actions)]
        return [torch.cat([o, *feats[:i]], dim=-1) if i else o for i, o in enumerate(obs)]

    # -------------------------------------------------------------------------------------
    # Rollouts: a^0, then a^1 given a^0, …
    # -------------------------------------------------------------------------------------
    @torch.no_grad()
    def sampler(self):
        """``sample(obs, generator, deterministic=False) -> (actions, logp [N, B])``: agents
        draw in order, each conditioned on the actions drawn before it (greedy decoding when
        ``deterministic``); ``logp[i]`` is log π^i(a^i | o^i, a^{0:i−1})."""

        def sample(obs, generator=None, deterministic=False):
            with torch.no_grad():
                acts, logps, feats = [], [], []
                for i, o in enumerate(obs):
                    x = torch.cat([o, *feats], dim=-1) if feats else o
                    out = self._head(i, x).unsqueeze(0)
                    if self.discrete[i]:
                        a, lp = _sample_categorical(out, generator, deterministic)
                    else:
                        ls = self.policy(i).log_std.detach().view(1, 1, -1)
                        a, lp = _sample_gaussian(out, ls.exp(), ls, generator, deterministic)
                    acts.append(a[0])
                    logps.append(lp[0])
                    feats.append(self.action_features(i, a[0], o.dtype))
                return acts, torch.stack(logps)
        return sample

    # -------------------------------------------------------------------------------------
    # Exact conditional tables (discrete agents)
    # -------------------------------------------------------------------------------------
    @torch.no_grad()
    def ar_factors(self, obs: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], tuple[int, ...]]:
        """(factors, order) in the format of :mod:`harl_mini.tabular.autoregressive` for one
        observation per agent (``obs[i]`` [1, D_i]): ``factors[m]`` [1, n_0, …, n_m] is
        π^m(a^m | o^m, a^{0:m−1}) for every prefix, in float64."""
        if not all(self.discrete):
            raise HarlMiniError("ar_factors: every agent needs a discrete action space")
        counts = self.action_widths
        factors = []
        for m in range(self.num_agents):
            prefixes = list(itertools.product(*(range(n) for n in counts[:m])))
            P = len(prefixes)
            o = obs[m].reshape(1, -1).expand(P, -1)
            acts = [torch.tensor([p[j] for p in prefixes], dtype=torch.long, device=o.device) for j in range(m)]
            feats = [self.action_features(j, a, o.dtype) for j, a in enumerate(acts)]
            x = torch.cat([o, *feats], dim=-1) if feats else o
            probs = torch.softmax(self._head(m, x).to(torch.float64), dim=-1)
            factors.append(probs.reshape(1, *counts[:m], counts[m]).cpu())
        return factors, self.order


def build_ar_actors(env, cfg, device) -> ARActors:
    """The runner's actor builder for ``ar_mappo`` / ``ar_happo`` (registry entry)."""
    return ARActors(env.obs_dims, env.action_spaces, cfg.hidden, cfg.activation, cfg.log_std_init, cfg.learn_std,
                    cfg.init_mean, device, cfg.feature_norm, cfg.layer_norm)
