"""Small neural policies and value functions for the sampled algorithms (Chapter 2 on).

Everything here is deliberately plain: multilayer perceptrons with orthogonal
initialisation, two stochastic policies that share one tiny base class, a value network,
and three helpers that view a module's parameters as one flat vector (the form
:func:`harl_mini.trust_region.trpo_step` works on).

Policies (after Spinning Up's ``core.py``): a policy maps a batch of observations to a
``torch.distributions`` object, so that sampling, log-probabilities, entropies and KL
divergences all come from one place.

==================  ============  =====================================================
Symbol              Shape         Meaning
==================  ============  =====================================================
``obs``             [..., D]      observations (float), any leading batch shape
``act`` (discrete)  [...]         action indices (long) in 0 … n_actions − 1
``act`` (Gaussian)  [..., K]      real action vectors, K = act_dim
``logits``          [..., n]      unnormalised log-probabilities of a categorical policy
``mu``              [..., K]      mean of the diagonal Gaussian
``log_std``         [K]           state-independent log standard deviation (a parameter)
``log_prob``        [...]         log π(a|s); for a Gaussian, summed over the K dimensions
``entropy``         [...]         H[π(·|s)]; for a Gaussian, summed over the K dimensions
``v``               [...]         V(s), the output of :class:`ValueNet`
==================  ============  =====================================================

Initialisation (the "orthogonal init" implementation detail of PPO/TRPO codebases; HARL
§1.6, CleanRL): every ``Linear`` gets an orthogonal weight matrix and a zero bias; hidden
layers use gain √2, the policy's output layer gain 0.01 (so that the initial policy is
nearly uniform / has mean ≈ 0) and the value head gain 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from harl_mini.errors import HarlMiniError

__all__ = [
    "mlp",
    "Policy",
    "CategoricalPolicy",
    "GaussianPolicy",
    "ValueNet",
    "flat_params",
    "set_flat_params",
    "flat_grad",
]

HIDDEN_GAIN = math.sqrt(2.0)


def _sizes(sizes: Sequence[int], name: str = "sizes") -> list[int]:
    try:
        out = [int(s) for s in sizes]
    except (TypeError, ValueError):
        raise HarlMiniError(f"{name}: expected a sequence of layer widths, got {sizes!r}") from None
    if len(out) < 2 or any(s < 1 for s in out) or any(int(s) != s for s in sizes):
        raise HarlMiniError(f"{name}: expected at least two positive integer widths (input, …, output), got {list(sizes)}")
    return out


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.Tanh, output_gain: float = 1.0) -> nn.Sequential:
    """A multilayer perceptron ``Linear → activation → … → Linear`` with orthogonal init.

    ===============  ========  ==================================================
    Argument         Type      Meaning
    ===============  ========  ==================================================
    ``sizes``        [L+1]     widths: input, hidden …, output (L linear layers)
    ``activation``   class     nn.Module class between layers (default ``nn.Tanh``)
    ``output_gain``  float     orthogonal gain of the last layer (hidden: √2)
    returns          module    maps [..., sizes[0]] to [..., sizes[-1]]
    ===============  ========  ==================================================
    """
    sizes = _sizes(sizes)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        linear = nn.Linear(sizes[i], sizes[i + 1])
        nn.init.orthogonal_(linear.weight, gain=output_gain if last else HIDDEN_GAIN)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


class Policy(nn.Module):
    """Base class of the stochastic policies: subclasses define :meth:`distribution` and :meth:`mode`.

    =================================  ==========================================
    Method                             Returns
    =================================  ==========================================
    ``distribution(obs)``              a ``torch.distributions`` object over actions
    ``log_prob(obs, act)``             log π(act | obs), shape [...]
    ``entropy(obs)``                   H[π(· | obs)], shape [...]
    ``act(obs, deterministic=False)``  an action per observation (no gradient);
                                       the mode when ``deterministic``
    =================================  ==========================================
    """

    discrete: bool = False

    def distribution(self, obs: torch.Tensor) -> Distribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def mode(self, dist: Distribution) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.distribution(obs).log_prob(act)

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.distribution(obs).entropy()

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        dist = self.distribution(obs)
        return self.mode(dist) if deterministic else dist.sample()

    def _check_obs(self, obs: torch.Tensor) -> None:
        if not isinstance(obs, torch.Tensor) or obs.shape[-1:] != (self.obs_dim,):
            got = list(obs.shape) if isinstance(obs, torch.Tensor) else type(obs).__name__
            raise HarlMiniError(f"obs: expected a tensor of shape [..., {self.obs_dim}], got {got}")


class CategoricalPolicy(Policy):
    """π(a|s) = softmax(logits(s))_a, logits from an MLP (a discrete action space).

    ================  ========  ==================================================
    Argument          Type      Meaning
    ================  ========  ==================================================
    ``obs_dim``       int       D, observation size
    ``n_actions``     int       number of actions
    ``hidden``        tuple     hidden widths, e.g. (64, 64); () gives a linear
                                (for one-hot observations: tabular softmax) policy
    ``activation``    class     hidden activation (default ``nn.Tanh``)
    ================  ========  ==================================================
    """

    discrete = True

    def __init__(self, obs_dim: int, n_actions: int, hidden: Iterable[int] = (64, 64),
                 activation: type[nn.Module] = nn.Tanh):
        super().__init__()
        self.obs_dim, self.n_actions = int(obs_dim), int(n_actions)
        self.logits_net = mlp([obs_dim, *hidden, n_actions], activation, output_gain=0.01)

    def distribution(self, obs: torch.Tensor) -> Categorical:
        self._check_obs(obs)
        return Categorical(logits=self.logits_net(obs), validate_args=False)

    def mode(self, dist: Categorical) -> torch.Tensor:
        return dist.logits.argmax(-1)


class GaussianPolicy(Policy):
    """π(a|s) = N(a; μ(s), diag(σ²)), μ from an MLP, log σ a free state-independent vector.

    Actions are not squashed; the environment adapter clips them to the action box (so the
    stored action, and its log-probability, are the unclipped sample).

    ================  ========  ==================================================
    Argument          Type      Meaning
    ================  ========  ==================================================
    ``obs_dim``       int       D, observation size
    ``act_dim``       int       K, action size
    ``hidden``        tuple     hidden widths of the mean network
    ``log_std_init``  float     initial value of every entry of log σ
    ``activation``    class     hidden activation (default ``nn.Tanh``)
    ================  ========  ==================================================
    """

    discrete = False

    def __init__(self, obs_dim: int, act_dim: int, hidden: Iterable[int] = (64, 64), log_std_init: float = 0.0,
                 activation: type[nn.Module] = nn.Tanh):
        super().__init__()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.mu_net = mlp([obs_dim, *hidden, act_dim], activation, output_gain=0.01)
        self.log_std = nn.Parameter(torch.full((self.act_dim,), float(log_std_init)))

    def distribution(self, obs: torch.Tensor) -> Independent:
        self._check_obs(obs)
        mu = self.mu_net(obs)
        return Independent(Normal(mu, self.log_std.exp().expand_as(mu), validate_args=False), 1, validate_args=False)

    def mode(self, dist: Independent) -> torch.Tensor:
        return dist.mean


class ValueNet(nn.Module):
    """V(s): an MLP with one output, squeezed; the output layer has orthogonal gain 1.

    ``forward(obs [..., D]) -> v [...]``.
    """

    def __init__(self, obs_dim: int, hidden: Iterable[int] = (64, 64), activation: type[nn.Module] = nn.Tanh):
        super().__init__()
        self.obs_dim = int(obs_dim)
        self.v_net = mlp([obs_dim, *hidden, 1], activation, output_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.v_net(obs).squeeze(-1)


# ---------------------------------------------------------------------------------------
# Flat views of parameters (for the trust-region step)
# ---------------------------------------------------------------------------------------


def _params(module_or_params) -> list[torch.Tensor]:
    if isinstance(module_or_params, nn.Module):
        return [p for p in module_or_params.parameters() if p.requires_grad]
    return list(module_or_params)


def flat_params(module: nn.Module) -> torch.Tensor:
    """All trainable parameters of ``module`` concatenated into one detached vector θ [P]."""
    return torch.cat([p.detach().reshape(-1) for p in _params(module)])


@torch.no_grad()
def set_flat_params(module: nn.Module, flat: torch.Tensor) -> None:
    """Copy the flat vector θ [P] back into ``module``'s trainable parameters, in order."""
    params = _params(module)
    total = sum(p.numel() for p in params)
    if not isinstance(flat, torch.Tensor) or flat.dim() != 1 or flat.numel() != total:
        got = list(flat.shape) if isinstance(flat, torch.Tensor) else type(flat).__name__
        raise HarlMiniError(f"flat: expected a vector of {total} parameters, got {got}")
    i = 0
    for p in params:
        n = p.numel()
        p.copy_(flat[i:i + n].view_as(p))
        i += n


def flat_grad(y: torch.Tensor, module_or_params, create_graph: bool = False,
              retain_graph: bool | None = None) -> torch.Tensor:
    """∇_θ y as one flat vector [P] (zeros for parameters y does not depend on).

    With ``create_graph=True`` the result stays differentiable, which is how the
    Fisher-vector product v ↦ ∇_θ (∇_θ KL · v) is formed by double backpropagation.
    """
    params = _params(module_or_params)
    grads = torch.autograd.grad(y, params, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)])
