r"""Per-agent actors for the sampled multi-agent algorithms (Chapter 8).

:class:`MultiAgentActors` holds the N policies π^i(a^i | o^i) of a cooperative team, one
per agent of a :class:`~harl_mini.envs.multi.MultiAgentVecEnv`, built from the env's
``obs_dims`` and ``action_spaces``:

* ``("discrete", n)`` → a :class:`~harl_mini.nets.CategoricalPolicy` (softmax of logits);
* ``("box", K)`` → a :class:`~harl_mini.nets.GaussianPolicy` (diagonal Gaussian,
  state-independent log σ; the log-probability of an action is summed over its K
  dimensions, so a ratio of densities is the product over dimensions, as HARL's
  ``action_aggregation: prod``).

Agents may be heterogeneous (different observation sizes and action spaces).

Networks: :func:`harl_mini.nets.mlp` (orthogonal init, hidden gain √2, output gain 0.01,
zero biases — HARL's initialisation, always on). HARL's MLP base also normalises: with
``feature_norm=True`` a ``LayerNorm`` on the input (HARL ``use_feature_normalization``),
with ``layer_norm=True`` one after every hidden activation (HARL's
``Linear → activation → LayerNorm`` layers); both are off by default
(:func:`with_layer_norms`, also used by the critics).

Parameter sharing (``share_params=True``): one network acts for every agent. With
``agent_id=True`` (the default when shared) agent i's input is its observation with the
one-hot e_i appended, so the shared network can still act differently per agent; with
``agent_id=False`` every agent runs literally the same policy π(·|o), the setting of
Proposition 1 (Kuba et al. 2022), where J ≤ J*_share. Sharing needs identical
observation sizes and action spaces. With separate parameters (``share_params=False``)
agent i owns ``policies[i]``; the sequential algorithms (HAPPO, HATRPO) need this.

Speed: rollouts call :meth:`MultiAgentActors.sampler` once per iteration. It freezes the
current parameters and returns a function that samples every agent's action in one
batched call: one forward of the shared network on the stacked [N·B, D] inputs, or, for
separate but identically shaped networks, one ``baddbmm`` per layer on weights stacked
to [N, out, in]. Sampling uses the inverse CDF (categorical) or μ + σ·ε (Gaussian) with
the run's ``torch.Generator``, so a run is reproducible from its seed.

==================  ==============  ===================================================
Symbol              Shape           Meaning
==================  ==============  ===================================================
``obs[i]``          [B, D_i]        agent i's observations
``act[i]``          [B] / [B, K_i]  agent i's actions (long index / float vector)
``logp``            [B]             log π^i(a^i | o^i), summed over action dimensions
``entropy``         [B]             H[π^i(· | o^i)], summed over action dimensions
==================  ==============  ===================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from harl_mini.errors import HarlMiniError
from harl_mini.nets import CategoricalPolicy, GaussianPolicy, Policy

__all__ = ["MultiAgentActors", "ACTIVATIONS", "with_layer_norms"]

#: activation names accepted by ``activation=``
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def with_layer_norms(net: nn.Sequential, feature_norm: bool = False, layer_norm: bool = False) -> nn.Sequential:
    """``net`` (``Linear → act → … → Linear``) with HARL's LayerNorms added: one on the input
    (``feature_norm``) and one after every hidden activation (``layer_norm``); ``net`` itself
    when both are off. LayerNorms start as the identity affine map (weight 1, bias 0) and
    draw no random numbers, so the Linear layers are initialised exactly as without them."""
    if not (feature_norm or layer_norm):
        return net
    layers = list(net)
    out: list[nn.Module] = [nn.LayerNorm(layers[0].in_features)] if feature_norm else []
    for k, layer in enumerate(layers):
        out.append(layer)
        if layer_norm and not isinstance(layer, nn.Linear):  # an activation, after hidden Linear k − 1
            out.append(nn.LayerNorm(layers[k - 1].out_features))
    return nn.Sequential(*out)


class MultiAgentActors(nn.Module):
    """The team's policies; see the module docstring.

    ==================  ============  ================================================
    Argument            Type          Meaning
    ==================  ============  ================================================
    ``obs_dims``        list[int]     per-agent observation sizes D_i
    ``action_spaces``   list          per agent ``("discrete", n)`` or ``("box", K)``
    ``share_params``    bool          one network for all agents
    ``agent_id``        bool | None   append one-hot e_i to the input (shared only;
                                      None → True when shared)
    ``hidden``          tuple         hidden widths; () = linear (tabular softmax
                                      on one-hot or constant observations)
    ``activation``      str           ``"tanh"`` or ``"relu"``
    ``log_std_init``    float         initial log σ of Gaussian agents
    ``learn_std``       bool          train log σ (False: fixed σ = exp(log_std_init))
    ``init_mean``       float | list  initial Gaussian mean(s) (linear actors only:
                                      sets the output bias so that μ(o) = init_mean)
    ``feature_norm``    bool          LayerNorm on the network input (HARL)
    ``layer_norm``      bool          LayerNorm after every hidden activation (HARL)
    ``device``          str/device    where the parameters live
    ==================  ============  ================================================
    """

    def __init__(self, obs_dims: Sequence[int], action_spaces: Sequence[tuple[str, int]], share_params: bool = False,
                 agent_id: bool | None = None, hidden: Sequence[int] = (64, 64), activation: str = "tanh",
                 log_std_init: float = 0.0, learn_std: bool = True, init_mean=None, device="cpu",
                 feature_norm: bool = False, layer_norm: bool = False):
        super().__init__()
        self.num_agents = len(obs_dims)
        if self.num_agents < 1 or len(action_spaces) != self.num_agents:
            raise HarlMiniError("obs_dims and action_spaces need one entry per agent (at least one agent)")
        if not isinstance(share_params, bool):
            raise HarlMiniError(f"share_params: expected True or False, got {share_params!r}")
        if agent_id is None:
            agent_id = share_params
        if not isinstance(agent_id, bool):
            raise HarlMiniError(f"agent_id: expected True, False or None, got {agent_id!r}")
        if agent_id and not share_params:
            raise HarlMiniError("agent_id=True needs share_params=True (separate networks already know who they are)")
        if activation not in ACTIVATIONS:
            raise HarlMiniError(f"unknown activation {activation!r}; available: {', '.join(sorted(ACTIVATIONS))}")
        self.obs_dims = [int(d) for d in obs_dims]
        self.action_spaces = [tuple(s) for s in action_spaces]
        self.share_params, self.agent_id = share_params, agent_id
        self.hidden = tuple(int(h) for h in hidden)
        self.feature_norm, self.layer_norm = bool(feature_norm), bool(layer_norm)
        self.device = torch.device(device)
        act_cls = ACTIVATIONS[activation]
        if share_params:
            if len(set(self.obs_dims)) != 1 or len(set(self.action_spaces)) != 1:
                raise HarlMiniError("share_params=True needs every agent to have the same observation size and "
                                    f"action space; got obs_dims={self.obs_dims}, action_spaces={self.action_spaces}")
            in_dim = self.obs_dims[0] + (self.num_agents if agent_id else 0)
            self.policies = nn.ModuleList([self._make(in_dim, self.action_spaces[0], act_cls, log_std_init)])
        else:
            self.policies = nn.ModuleList([self._make(d, s, act_cls, log_std_init)
                                           for d, s in zip(self.obs_dims, self.action_spaces)])
        self.discrete = [kind == "discrete" for kind, _ in self.action_spaces]
        for p in self.policies:
            if isinstance(p, GaussianPolicy):
                p.log_std.requires_grad_(bool(learn_std))
        if init_mean is not None:
            self._set_init_mean(init_mean)
        self.register_buffer("_eye", torch.eye(self.num_agents), persistent=False)  # agent-id one-hots
        self.to(self.device)
        # the stacked fast path of the sampler: separate networks of identical shapes
        self._homogeneous = (not share_params and len(set(self.obs_dims)) == 1 and len(set(self.action_spaces)) == 1)

    def _make(self, in_dim: int, space: tuple[str, int], act_cls, log_std_init: float) -> Policy:
        kind, size = space
        if kind == "discrete":
            pol = CategoricalPolicy(in_dim, size, self.hidden, act_cls)
            pol.logits_net = with_layer_norms(pol.logits_net, self.feature_norm, self.layer_norm)
        else:
            pol = GaussianPolicy(in_dim, size, self.hidden, log_std_init, act_cls)
            pol.mu_net = with_layer_norms(pol.mu_net, self.feature_norm, self.layer_norm)
        return pol

    # -------------------------------------------------------------------------------------
    # Which network acts for agent i, and on what input
    # -------------------------------------------------------------------------------------
    def policy(self, i: int) -> Policy:
        """The module that owns agent i's parameters (the same module for all when shared)."""
        return self.policies[0 if self.share_params else i]

    @property
    def num_policies(self) -> int:
        return len(self.policies)

    def inputs(self, i: int, obs: torch.Tensor) -> torch.Tensor:
        """Agent i's network input: its observation, with e_i appended when ``agent_id``."""
        if self.agent_id:
            return torch.cat([obs, self._eye[i].expand(*obs.shape[:-1], self.num_agents)], dim=-1)
        return obs

    def distribution(self, i: int, obs: torch.Tensor):
        """π^i(· | o^i) as a ``torch.distributions`` object (for KL divergences)."""
        return self.policy(i).distribution(self.inputs(i, obs))

    def log_prob(self, i: int, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """log π^i(a^i | o^i), [B] (differentiable)."""
        return self.log_prob_entropy(i, obs, act, entropy=False)[0]

    def entropy(self, i: int, obs: torch.Tensor) -> torch.Tensor:
        """H[π^i(· | o^i)], [B] (differentiable)."""
        return self._logp_ent(i, self.inputs(i, obs), None, True)[1]

    def log_prob_entropy(self, i: int, obs: torch.Tensor, act: torch.Tensor, entropy: bool = True):
        """(log π^i(a^i | o^i) [B], H[π^i(· | o^i)] [B] or None) from one forward pass."""
        return self._logp_ent(i, self.inputs(i, obs), act, entropy)

    def log_prob_entropy_all(self, obs: Sequence[torch.Tensor], act: Sequence[torch.Tensor], entropy: bool = True):
        """Every agent at once: (logp [N, B], entropy [N, B] or None); one forward when shared."""
        if self.share_params:
            x = torch.stack([self.inputs(i, o) for i, o in enumerate(obs)])                   # [N, B, D(+N)]
            return self._logp_ent(0, x, torch.stack(list(act)), entropy)
        pairs = [self.log_prob_entropy(i, o, a, entropy) for i, (o, a) in enumerate(zip(obs, act))]
        return torch.stack([p[0] for p in pairs]), (torch.stack([p[1] for p in pairs]) if entropy else None)

    def head(self, i: int, obs: torch.Tensor) -> torch.Tensor:
        """The raw network output for agent i: logits [B, n] or Gaussian mean [B, K]."""
        return self._head(i, self.inputs(i, obs))

    def probs(self, i: int, obs: torch.Tensor) -> torch.Tensor:
        """π^i(· | o^i) as a [B, n_i] table (discrete agents only)."""
        if not self.discrete[i]:
            raise HarlMiniError(f"probs: agent {i} has a continuous action space")
        return torch.softmax(self._head(i, self.inputs(i, obs)), dim=-1)

    def mean(self, i: int, obs: torch.Tensor) -> torch.Tensor:
        """μ^i(o^i), [B, K] (Gaussian agents only)."""
        if self.discrete[i]:
            raise HarlMiniError(f"mean: agent {i} has a discrete action space")
        return self._head(i, self.inputs(i, obs))

    @torch.no_grad()
    def act(self, obs: Sequence[torch.Tensor], deterministic: bool = False,
            generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """One action per agent (the mode when ``deterministic``); no gradient."""
        actions, _ = self.sampler()(obs, generator, deterministic)
        return actions

    def _head(self, i: int, x: torch.Tensor) -> torch.Tensor:
        pol = self.policy(i)
        return pol.logits_net(x) if self.discrete[i] else pol.mu_net(x)

    def _logp_ent(self, i: int, x: torch.Tensor, act: torch.Tensor | None, entropy: bool):
        if self.discrete[i]:
            return _categorical(self._logits_t(i, x), act, entropy)
        pol = self.policy(i)
        return _gaussian(pol.mu_net(x), pol.log_std, act, entropy)

    def _logits_t(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Logits in the [n, ...] layout: the last layer as W h^T + b (one addmm, no transpose copy)."""
        layers = list(self._net(i))
        h = x
        for layer in layers[:-1]:
            h = layer(h)
        last = layers[-1]
        flat = h.reshape(-1, h.shape[-1])
        return torch.addmm(last.bias.unsqueeze(1), last.weight, flat.T).view(last.out_features, *h.shape[:-1])

    # -------------------------------------------------------------------------------------
    # Fast batched sampling for rollouts
    # -------------------------------------------------------------------------------------
    @torch.no_grad()
    def sampler(self):
        """A function ``sample(obs, generator, deterministic=False) -> (actions, logp [N, B])``
        using the parameters *as they are now* (call again after an update)."""
        N = self.num_agents
        if self.share_params or self._homogeneous:
            discrete = self.discrete[0]
            if self.share_params:
                forward = self._shared_forward()
                log_std = None if discrete else self.policies[0].log_std.detach().expand(N, -1)
            else:
                forward = self._stacked_forward()
                log_std = None if discrete else torch.stack([p.log_std.detach() for p in self.policies])
            std = None if discrete else log_std.exp().unsqueeze(1)                           # [N, 1, K]

            def sample(obs, generator=None, deterministic=False):
                with torch.no_grad():
                    out = forward(obs)                                                       # [N, B, n | K]
                    if discrete:
                        a, logp = _sample_categorical(out, generator, deterministic)
                    else:
                        a, logp = _sample_gaussian(out, std, log_std.unsqueeze(1), generator, deterministic)
                    return list(a.unbind(0)), logp
            return sample

        def sample_each(obs, generator=None, deterministic=False):
            with torch.no_grad():
                acts, logps = [], []
                for i, o in enumerate(obs):
                    out = self._head(i, self.inputs(i, o)).unsqueeze(0)
                    if self.discrete[i]:
                        a, lp = _sample_categorical(out, generator, deterministic)
                    else:
                        ls = self.policy(i).log_std.detach().view(1, 1, -1)
                        a, lp = _sample_gaussian(out, ls.exp(), ls, generator, deterministic)
                    acts.append(a[0])
                    logps.append(lp[0])
                return acts, torch.stack(logps)
        return sample_each

    def _shared_forward(self):
        net = self._net(0)
        N = self.num_agents
        if self.agent_id:
            eye = self._eye

            def forward(obs):
                o = torch.stack(list(obs))                                                  # [N, B, D]
                ids = eye.unsqueeze(1).expand(N, o.shape[1], N)
                return net(torch.cat([o, ids], dim=-1))
        else:
            def forward(obs):
                return net(torch.stack(list(obs)))
        return forward

    def _stacked_forward(self):
        """Separate networks of identical shape evaluated together: weights stacked to [N, out, in]."""
        nets = [self._net(i) for i in range(self.num_agents)]
        layers = []
        for k, layer in enumerate(nets[0]):
            if isinstance(layer, (nn.Linear, nn.LayerNorm)):
                w = torch.stack([n[k].weight.detach() for n in nets])
                b = torch.stack([n[k].bias.detach() for n in nets]).unsqueeze(1)                   # [N, 1, out]
                if isinstance(layer, nn.Linear):
                    layers.append(("linear", w.transpose(1, 2).contiguous(), b))                 # W: [N, in, out]
                else:  # each agent's own affine map after the (parameter-free) normalisation
                    layers.append(("norm", w.unsqueeze(1), b, layer.normalized_shape, layer.eps))
            else:
                layers.append(layer)

        def forward(obs):
            x = torch.stack(list(obs))                                                      # [N, B, D]
            for layer in layers:
                if not isinstance(layer, tuple):
                    x = layer(x)
                elif layer[0] == "linear":
                    x = torch.baddbmm(layer[2], x, layer[1])
                else:
                    x = torch.addcmul(layer[2], nn.functional.layer_norm(x, layer[3], eps=layer[4]), layer[1])
            return x
        return forward

    def _net(self, i: int) -> nn.Sequential:
        pol = self.policy(i)
        return pol.logits_net if self.discrete[i] else pol.mu_net

    def _set_init_mean(self, init_mean) -> None:
        if self.hidden:
            raise HarlMiniError("init_mean: only for linear actors (hidden=()), where μ(o) is affine in o")
        if any(self.discrete):
            raise HarlMiniError("init_mean: only for Gaussian (box) agents")
        if self.feature_norm:
            raise HarlMiniError("init_mean: not with feature_norm (μ(o) is then no longer affine in o)")
        values = [init_mean] * self.num_agents if isinstance(init_mean, (int, float)) else list(init_mean)
        if len(values) != self.num_agents:
            raise HarlMiniError(f"init_mean: expected one mean per agent ({self.num_agents}), got {len(values)}")
        if self.share_params and len(set(map(float, values))) > 1 and not self.agent_id:
            raise HarlMiniError("init_mean: different means per agent need separate networks or agent_id=True")
        eye = torch.eye(self.num_agents)
        with torch.no_grad():
            for i, m in enumerate(values):
                lin = self._net(i)[0]
                # μ(o) = W x + b at the observation of ones (x gets e_i appended when shared with ids)
                x = torch.ones(1, self.obs_dims[i])
                if self.agent_id:
                    x = torch.cat([x, eye[i:i + 1]], dim=-1)
                    lin.weight[:, self.obs_dims[i] + i] += float(m) - lin(x)[0]  # a per-agent offset
                else:
                    lin.bias += float(m) - lin(x)[0]


def _categorical(xt: torch.Tensor, act: torch.Tensor | None, entropy: bool):
    """log π(a) [...] and H [...] from logits in the [n, ...] layout (action axis first).

    ``torch.log_softmax`` over a last axis of 2–6 entries runs at ~20 ns per entry on a CPU
    core; with the action axis first every step is an elementwise op over long contiguous
    vectors (3–4× faster forward + backward). Subtracting the detached max is exact: it
    cancels in x_a − logsumexp(x).
    """
    z = xt - xt.detach().amax(0)
    lse = z.exp().sum(0).log()
    logp = None if act is None else z.gather(0, act.long().unsqueeze(0)).squeeze(0) - lse
    ent = None
    if entropy:
        logp_all = z - lse
        ent = -(logp_all.exp() * logp_all).sum(0)
    return logp, ent


def _gaussian(mu: torch.Tensor, log_std: torch.Tensor, act: torch.Tensor | None, entropy: bool):
    """log N(a; μ, σ²) and H, both summed over the action dimensions."""
    logp = None
    if act is not None:
        z = (act - mu) * torch.exp(-log_std)
        logp = (-0.5 * z * z - log_std - _HALF_LOG_2PI).sum(-1)
    ent = (0.5 + _HALF_LOG_2PI + log_std).sum(-1).expand(mu.shape[:-1]) if entropy else None
    return logp, ent


def _sample_categorical(logits: torch.Tensor, generator, deterministic: bool):
    """Actions and their log-probabilities from logits [..., n] (inverse-CDF sampling on the [n, ...] layout)."""
    xt = logits.movedim(-1, 0).contiguous()                                                 # [n, ...]
    z = xt - xt.amax(0)
    cdf = z.exp().cumsum(0)
    total = cdf[-1]
    if deterministic:
        a = logits.argmax(-1)
    else:
        u = torch.rand(total.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        a = (cdf < (u * total).unsqueeze(0)).sum(0).clamp_(max=logits.shape[-1] - 1)
    return a, z.gather(0, a.unsqueeze(0)).squeeze(0) - total.log()


def _sample_gaussian(mu: torch.Tensor, std: torch.Tensor, log_std: torch.Tensor, generator, deterministic: bool):
    if deterministic:
        a = mu.clone()
        eps = torch.zeros_like(mu)
    else:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        a = mu + std * eps
    logp = (-0.5 * eps * eps - log_std - _HALF_LOG_2PI).sum(-1)
    return a, logp
