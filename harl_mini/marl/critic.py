r"""Critics of the sampled multi-agent algorithms: one centralised V(s), or one V^i(o^i) per agent.

* :class:`CentralCritic` — MAPPO, HAPPO and HATRPO: one value network on the global
  state s (the env's ``state``), shared by the team; its advantage Â(s, **a**) is the
  *joint* advantage that every agent's update uses (HARL's "EP" state type).
* :class:`LocalCritics` — IPPO: agent i has its own V^i(o^i) on its own observation and
  its own advantage estimate; no agent sees the global state.

Both learn in **normalised** units through a :class:`ValueNorm` each (HARL's
``harl/common/valuenorm.py``, "PopArt-lite": no rescaling of the output layer). The
network predicts v̂ ≈ (G − μ)/σ; values handed to GAE are de-normalised, σ v̂ + μ; the
regression targets are the GAE returns normalised with the *updated* statistics.

ValueNorm (HARL defaults, β = 0.99999, ε = 1e-5, variance floor 1e-2)::

    m  ← β m  + (1 − β) mean(G)          (running mean of the targets)
    q  ← β q  + (1 − β) mean(G²)         (running mean of their squares)
    d  ← β d  + (1 − β)                  (debiasing term: Σ of the weights so far)
    μ  = m / max(d, ε),   σ² = max(q / max(d, ε) − μ², 1e-2)

Dividing by d removes the bias towards the zero initialisation (as in Adam), so after
the first update μ and σ² are exactly the mean and variance of the first batch. With
β this close to 1 the statistics are, in effect, the average over all batches so far.
HARL calls ``update`` inside every critic minibatch step; here it is called once per
iteration on the whole batch of targets. With equally sized minibatches the two give the
same statistics up to O(1 − β) differences in the weights.

Networks: :class:`~harl_mini.nets.ValueNet` (orthogonal init, value head gain 1), with
HARL's optional LayerNorms (``feature_norm``, ``layer_norm``; see
:func:`harl_mini.marl.actors.with_layer_norms`).

Critic loss: ½ mean (v̂ − norm(G))² (``huber_delta=None``) or the Huber loss with that δ
(HARL: 10), optionally with PPO-style value clipping around the old prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from harl_mini.errors import HarlMiniError
from harl_mini.marl.actors import with_layer_norms
from harl_mini.nets import ValueNet

__all__ = ["ValueNorm", "CentralCritic", "LocalCritics", "value_loss"]


class ValueNorm(nn.Module):
    """Running mean / variance of value targets with debiasing (see the module docstring).

    ``update(x)`` folds a batch into the statistics; ``normalize(x)`` and
    ``denormalize(x)`` map between raw and normalised units. ``enabled=False`` makes both
    maps the identity (and ``update`` a no-op).
    """

    def __init__(self, beta: float = 0.99999, epsilon: float = 1e-5, var_floor: float = 1e-2, enabled: bool = True):
        super().__init__()
        if not 0.0 < beta < 1.0:
            raise HarlMiniError(f"beta: must lie in (0, 1), got {beta}")
        self.beta, self.epsilon, self.var_floor, self.enabled = float(beta), float(epsilon), float(var_floor), enabled
        self.register_buffer("running_mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("running_mean_sq", torch.zeros((), dtype=torch.float64))
        self.register_buffer("debiasing_term", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        if not self.enabled:
            return
        x = x.detach().to(torch.float64)
        b = self.beta
        self.running_mean.mul_(b).add_((1.0 - b) * x.mean())
        self.running_mean_sq.mul_(b).add_((1.0 - b) * (x * x).mean())
        self.debiasing_term.mul_(b).add_(1.0 - b)

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ²) as float64 scalars."""
        d = self.debiasing_term.clamp(min=self.epsilon)
        mean = self.running_mean / d
        var = (self.running_mean_sq / d - mean * mean).clamp(min=self.var_floor)
        return mean, var

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        mean, var = self.stats()
        return ((x - mean.to(x.dtype)) / var.sqrt().to(x.dtype))

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        mean, var = self.stats()
        return x * var.sqrt().to(x.dtype) + mean.to(x.dtype)


def value_loss(pred: torch.Tensor, target: torch.Tensor, old: torch.Tensor | None = None, clip: float | None = None,
               huber_delta: float | None = None) -> torch.Tensor:
    """½ (pred − target)² or Huber(δ), mean over the batch; with ``clip``, the PPO-style
    max of the clipped and unclipped errors around ``old`` (HARL ``use_clipped_value_loss``)."""
    def err(x):
        e = x - target
        if huber_delta is None:
            return 0.5 * e * e
        return torch.nn.functional.huber_loss(x, target, reduction="none", delta=huber_delta)

    if clip is None or old is None:
        return err(pred).mean()
    clipped = old + (pred - old).clamp(-clip, clip)
    return torch.max(err(pred), err(clipped)).mean()


def _value_net(in_dim: int, hidden: Sequence[int], activation, feature_norm: bool, layer_norm: bool) -> ValueNet:
    net = ValueNet(in_dim, tuple(hidden), activation)
    net.v_net = with_layer_norms(net.v_net, feature_norm, layer_norm)
    return net


class CentralCritic(nn.Module):
    """V(s) on the global state, with a :class:`ValueNorm` (MAPPO / HAPPO / HATRPO).

    ``values(state [..., S]) -> [..., 1]`` de-normalised values (no gradient), the
    shape the buffer stores (K = 1 value per step). ``normalized(inputs)`` is the raw
    network output v̂ [..., 1] for the loss.
    """

    num_values = 1

    def __init__(self, state_dim: int, hidden: Sequence[int] = (64, 64), activation=nn.Tanh, value_norm: bool = True,
                 device="cpu", feature_norm: bool = False, layer_norm: bool = False):
        super().__init__()
        self.net = _value_net(state_dim, hidden, activation, feature_norm, layer_norm)
        self.norm = ValueNorm(enabled=value_norm)
        self.to(device)

    def nets(self) -> list[nn.Module]:
        return [self.net]

    def norms(self) -> list[ValueNorm]:
        return [self.norm]

    def normalized(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state).unsqueeze(-1)

    @torch.no_grad()
    def values(self, state: torch.Tensor, obs=None) -> torch.Tensor:
        return self.norm.denormalize(self.net(state)).unsqueeze(-1)


class LocalCritics(nn.Module):
    """V^i(o^i), one network and one :class:`ValueNorm` per agent (IPPO), or with
    ``share=True`` one network and one ValueNorm for all agents (IPPO with a shared critic,
    as JaxMARL's IPPO: it needs equal observation sizes; still each agent's own V(o^i)).

    ``values(state, obs list) -> [B, N]`` de-normalised (the state is ignored).
    """

    def __init__(self, obs_dims: Sequence[int], hidden: Sequence[int] = (64, 64), activation=nn.Tanh,
                 value_norm: bool = True, device="cpu", feature_norm: bool = False, layer_norm: bool = False,
                 share: bool = False):
        super().__init__()
        self.num_values = len(obs_dims)
        self.shared = bool(share)
        if self.shared and len(set(obs_dims)) != 1:
            raise HarlMiniError(f"share_critic=True needs every agent's observation to have the same size, "
                                f"got sizes {list(obs_dims)}")
        dims = obs_dims[:1] if self.shared else obs_dims
        self.critics = nn.ModuleList([_value_net(d, hidden, activation, feature_norm, layer_norm) for d in dims])
        self.norm_list = nn.ModuleList([ValueNorm(enabled=value_norm) for _ in dims])
        self.to(device)

    def nets(self) -> list[nn.Module]:
        return list(self.critics)

    def norms(self) -> list[ValueNorm]:
        return list(self.norm_list)

    @torch.no_grad()
    def values(self, state: torch.Tensor, obs) -> torch.Tensor:
        if self.shared:  # all agents through the one network in one call: [N, B] -> [B, N]
            return self.norm_list[0].denormalize(self.critics[0](torch.stack(list(obs)))).T
        return torch.stack([n.denormalize(c(o)) for c, n, o in zip(self.critics, self.norm_list, obs)], dim=-1)
