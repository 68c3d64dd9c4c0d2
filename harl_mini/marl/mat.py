r"""The Multi-Agent Transformer (MAT) and MAT-Dec (Wen et al., NeurIPS 2022; Chapter 10).

MAT treats a joint step as a sequence: an **encoder** reads the N agents' observations as N
tokens and returns a representation ô^i of each (with full, unmasked self-attention, so ô^i
depends on every observation) and a value V(ô^i) per agent; a **decoder** produces the
actions one agent after another, agent i_m's distribution depending on ô^{i_{1:N}} and the
actions a^{i_{1:m−1}} already chosen. Agents act in index order 0..N−1 (the official code
does not shuffle them).

**Decoder input** (eq. ``eq-mat-shift``): the *shifted* action sequence
t_0 = [1, 0, …, 0] (a start token), t_m = [0, e(a^{m−1})] for a discrete action (one-hot
e, n + 1 entries), or t_0 = 0, t_m = a^{m−1} for a Box action. Position m's output depends
on t_{0:m} only, through a **causal mask** (:func:`causal_mask`, eq. ``eq-mat-mask``):
attention weight 0 on every later position, in both decoder attentions. So position m's
logits are those of π^m(· | ô, a^{0:m−1}).

**Training in parallel** (teacher forcing): the buffer already holds every a^m, so one
decoder pass on the shifted sequence of *stored* actions gives every agent's conditional
log-probability at once (:meth:`MultiAgentTransformer.evaluate`); only the rollout decodes
step by step (N decoder passes, :meth:`MultiAgentTransformer.sampler`). A test checks that
the two agree.

**Objective** (Wen et al. 2022, eq. 5; eq. ``eq-mat-objective``): PPO's clipped objective on
each agent's **conditional** ratio ξ^m = π^m_θ(a^m | ô, a^{0:m−1}) / π^m_old(a^m | ô, a^{0:m−1})
with that agent's advantage estimate Â^m (GAE with the agent's own value V(ô^m) and the
shared reward), averaged over agents and samples, *without* HAPPO's factor M; one loss
L = −objective − c_H H + c_V L_V (value loss on the encoder's values, ValueNorm targets,
optional clipping and Huber as the runner's critic) and one Adam optimiser for the whole
network. Advantages are standardised over all agents and samples together (as the official
``mat_trainer.py``). Chapter 10 discusses what dropping M costs.

**MAT-Dec** (``mat_dec``): the same encoder (as critic only) and loss, but a decentralised
decoder: each agent's action comes from its own MLP on its own observation
(:class:`~harl_mini.marl.actors.MultiAgentActors`, separate networks), so execution needs no
communication.

Network (after the official ``ma_transformer.py``, in this package's own code):

==================  ======================================================================
Part                Layers
==================  ======================================================================
encoder             LayerNorm(D) → Linear(D, E) → GELU → LayerNorm(E) → ``n_block`` ×
                    [x ← LN(x + Attn(x)); x ← LN(x + MLP(x))] (no mask); value head
                    Linear(E, E) → GELU → LayerNorm(E) → Linear(E, 1)
decoder             Linear(n + 1, E, no bias) → GELU (Box: Linear(K, E) → GELU) →
                    LayerNorm(E) → ``n_block`` × [x ← LN(x + CausalAttn(x));
                    x ← LN(ô + CausalAttn(key = value = x, query = ô)); x ← LN(x + MLP(x))];
                    head Linear(E, E) → GELU → LayerNorm(E) → Linear(E, n or K)
MLP                 Linear(E, E) → GELU → Linear(E, E)
attention           ``n_head`` heads of size E / n_head, scaled dot products, output
                    projection; orthogonal init, gain 0.01 (√2 before a GELU), zero biases
Gaussian σ          exp(log σ), one learned vector (the official code: 0.5·sigmoid)
==================  ======================================================================

Observations of unequal size are zero-padded to the largest; every agent needs the same
action space. Hyperparameters: ``n_embd`` E (64), ``n_head`` (1), ``n_block`` (1),
``value_coef`` c_V (1.0), and the runner's ``lr``, ``ppo_epochs``, ``num_minibatches``,
``clip_eps``, ``ent_coef``, ``max_grad_norm``, ``value_norm``, ``huber_delta``,
``clip_vloss``, ``log_std_init``, ``norm_adv``. ``critic_lr``, ``critic_epochs`` and
``hidden`` (MAT only; MAT-Dec's actors use ``hidden``) do not apply.

Speed: a rollout step costs one encoder pass and N decoder passes (the decoder is run on
the whole prefix each time, as the official code does, without a key/value cache).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, Independent, Normal, kl_divergence

from harl_mini.algos.common import check_finite_loss, explained_variance
from harl_mini.errors import HarlMiniError
from harl_mini.losses import ppo_clip_objective, ratio
from harl_mini.marl.actors import MultiAgentActors, _sample_categorical, _sample_gaussian
from harl_mini.marl.critic import ValueNorm, value_loss

__all__ = ["causal_mask", "masked_attention", "shift_actions", "MATEncoder", "MATDecoder", "MultiAgentTransformer",
           "MATCritic", "mat_objective", "build", "update"]

_RELU_GAIN = math.sqrt(2.0)


def _linear(n_in: int, n_out: int, gain: float = 0.01, bias: bool = True) -> nn.Linear:
    layer = nn.Linear(n_in, n_out, bias=bias)
    nn.init.orthogonal_(layer.weight, gain=gain)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def causal_mask(length: int, device=None) -> torch.Tensor:
    r"""The decoder's causal mask: ``mask[m, k]`` is True iff position m may attend to k ≤ m.

    Implements Chapter 10, eq. ``eq-mat-mask``: attention scores at k > m are set to −∞
    before the softmax, so position m's output depends on t_{0:m} only.
    """
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def shift_actions(actions: torch.Tensor, n_actions: int | None) -> torch.Tensor:
    r"""The decoder's input sequence t_{0:N−1} from the joint action (eq. ``eq-mat-shift``).

    Discrete (``n_actions`` = n): ``actions`` [B, N] long → [B, N, n + 1] with t_0 the start
    token e_0 and t_m = [0, one-hot(a^{m−1})]. Box (``n_actions`` None): ``actions`` [B, N, K]
    → [B, N, K] with t_0 = 0 and t_m = a^{m−1}. The last agent's action is never an input.
    """
    B, N = actions.shape[:2]
    if n_actions is not None:
        tokens = torch.zeros(B, N, n_actions + 1, device=actions.device)
        tokens[:, 0, 0] = 1.0
        if N > 1:
            tokens[:, 1:, 1:] = F.one_hot(actions[:, :-1].long(), n_actions).to(tokens.dtype)
        return tokens
    tokens = torch.zeros_like(actions)
    tokens[:, 1:] = actions[:, :-1]
    return tokens


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    r"""Scaled dot-product attention softmax(q kᵀ / √d) v over the last two axes, causal if asked.

    Implements Chapter 10, eq. ``eq-mat-mask``: scores at key positions k > m get −∞ before
    the softmax (:func:`causal_mask`), so output m mixes the values at positions 0..m only.
    ``q``, ``k``, ``v``: [..., L, d]; returns [..., L, d].
    """
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])
    if causal:
        scores = scores.masked_fill(~causal_mask(scores.shape[-1], scores.device), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class _Attention(nn.Module):
    """Multi-head attention (:func:`masked_attention` per head, output projection)."""

    def __init__(self, n_embd: int, n_head: int, masked: bool):
        super().__init__()
        if n_embd % n_head:
            raise HarlMiniError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.n_head, self.masked = n_head, masked
        self.key, self.query, self.value, self.proj = (_linear(n_embd, n_embd) for _ in range(4))

    def forward(self, key: torch.Tensor, value: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        B, L, E = query.shape
        h = self.n_head

        def heads(x):
            return x.view(B, L, h, E // h).transpose(1, 2)                                    # [B, h, L, E/h]

        k, q, v = heads(self.key(key)), heads(self.query(query)), heads(self.value(value))
        y = masked_attention(q, k, v, self.masked)                                              # [B, h, L, E/h]
        return self.proj(y.transpose(1, 2).reshape(B, L, E))


def _mlp(n_embd: int) -> nn.Sequential:
    return nn.Sequential(_linear(n_embd, n_embd, _RELU_GAIN), nn.GELU(), _linear(n_embd, n_embd))


class _EncodeBlock(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = _Attention(n_embd, n_head, masked=False)
        self.mlp = _mlp(n_embd)

    def forward(self, x):
        x = self.ln1(x + self.attn(x, x, x))
        return self.ln2(x + self.mlp(x))


class _DecodeBlock(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn1 = _Attention(n_embd, n_head, masked=True)
        self.attn2 = _Attention(n_embd, n_head, masked=True)
        self.mlp = _mlp(n_embd)

    def forward(self, x, rep):
        x = self.ln1(x + self.attn1(x, x, x))
        x = self.ln2(rep + self.attn2(key=x, value=x, query=rep))
        return self.ln3(x + self.mlp(x))


class MATEncoder(nn.Module):
    """obs [B, N, D] → (values [B, N] in normalised units, representations ô [B, N, E])."""

    def __init__(self, obs_dim: int, n_embd: int = 64, n_head: int = 1, n_block: int = 1):
        super().__init__()
        self.obs_dim = int(obs_dim)
        self.obs_encoder = nn.Sequential(nn.LayerNorm(obs_dim), _linear(obs_dim, n_embd, _RELU_GAIN), nn.GELU())
        self.ln = nn.LayerNorm(n_embd)
        self.blocks = nn.ModuleList([_EncodeBlock(n_embd, n_head) for _ in range(n_block)])
        self.head = nn.Sequential(_linear(n_embd, n_embd, _RELU_GAIN), nn.GELU(), nn.LayerNorm(n_embd),
                                  _linear(n_embd, 1))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.ln(self.obs_encoder(obs))
        for block in self.blocks:
            x = block(x)
        return self.head(x).squeeze(-1), x


class MATDecoder(nn.Module):
    """(shifted action tokens [B, N, w], ô [B, N, E]) → logits [B, N, n] or means [B, N, K]."""

    def __init__(self, action_space: tuple[str, int], n_embd: int = 64, n_head: int = 1, n_block: int = 1):
        super().__init__()
        kind, size = action_space
        self.discrete, self.size = kind == "discrete", int(size)
        width = self.size + 1 if self.discrete else self.size
        self.action_encoder = nn.Sequential(_linear(width, n_embd, _RELU_GAIN, bias=not self.discrete), nn.GELU())
        self.ln = nn.LayerNorm(n_embd)
        self.blocks = nn.ModuleList([_DecodeBlock(n_embd, n_head) for _ in range(n_block)])
        self.head = nn.Sequential(_linear(n_embd, n_embd, _RELU_GAIN), nn.GELU(), nn.LayerNorm(n_embd),
                                  _linear(n_embd, self.size))

    def forward(self, tokens: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        x = self.ln(self.action_encoder(tokens))
        for block in self.blocks:
            x = block(x, rep)
        return self.head(x)


def _pad_obs(obs: Sequence[torch.Tensor], dim: int) -> torch.Tensor:
    """N observation tensors [B, D_i] → one [B, N, dim] tensor (zero-padded)."""
    return torch.stack([F.pad(o, (0, dim - o.shape[-1])) if o.shape[-1] < dim else o for o in obs], dim=1)


class MultiAgentTransformer(nn.Module):
    """MAT's encoder–decoder policy; the runner's ``actors`` for ``mat`` (see the module docstring).

    ``evaluate(obs, actions)`` (teacher forcing), ``sampler()`` (autoregressive rollouts),
    ``ar_factors(obs)`` (exact tables on a one-state game), ``values(obs)``.
    """

    def __init__(self, obs_dims: Sequence[int], action_spaces, n_embd: int = 64, n_head: int = 1, n_block: int = 1,
                 log_std_init: float = 0.0, learn_std: bool = True, device="cpu"):
        super().__init__()
        spaces = [tuple(s) for s in action_spaces]
        if len(set(spaces)) != 1:
            raise HarlMiniError(f"mat needs every agent to have the same action space (one decoder head); got {spaces}")
        self.num_agents = len(spaces)
        self.obs_dims = [int(d) for d in obs_dims]
        self.obs_dim = max(self.obs_dims)
        self.action_space = spaces[0]
        self.discrete_actions = spaces[0][0] == "discrete"
        self.n_actions = int(spaces[0][1])
        self.encoder = MATEncoder(self.obs_dim, n_embd, n_head, n_block)
        self.decoder = MATDecoder(spaces[0], n_embd, n_head, n_block)
        if not self.discrete_actions:
            self.log_std = nn.Parameter(torch.full((self.n_actions,), float(log_std_init)), requires_grad=learn_std)
        self.order = tuple(range(self.num_agents))
        self.device = torch.device(device)
        self.to(self.device)

    # -------------------------------------------------------------------------------------
    def encode(self, obs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(values [B, N] normalised, ô [B, N, E]) from the N observation tensors."""
        return self.encoder(_pad_obs(obs, self.obs_dim))

    def values(self, obs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.encode(obs)[0]

    def _stack_actions(self, actions: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.stack([a.long() if self.discrete_actions else a for a in actions], dim=1)

    def _distribution(self, out: torch.Tensor):
        if self.discrete_actions:
            return Categorical(logits=out, validate_args=False)
        return Independent(Normal(out, self.log_std.exp().expand_as(out), validate_args=False), 1,
                           validate_args=False)

    def distributions(self, obs: Sequence[torch.Tensor], actions: Sequence[torch.Tensor]):
        """Every agent's conditional distribution at the stored prefixes, one decoder pass
        (a batch distribution over [B, N]), and the values [B, N]."""
        v, rep = self.encode(obs)
        tokens = shift_actions(self._stack_actions(actions), self.n_actions if self.discrete_actions else None)
        return self._distribution(self.decoder(tokens, rep)), v

    def evaluate(self, obs: Sequence[torch.Tensor], actions: Sequence[torch.Tensor], entropy: bool = True):
        r"""(logp [N, B], entropy [N, B] or None, values [B, N]) by teacher forcing.

        Implements Chapter 10, eq. ``eq-mat-parallel``: one decoder pass on the shifted
        sequence of the stored actions gives log π^m(a^m | ô, a^{0:m−1}) for every m at once.
        """
        dist, v = self.distributions(obs, actions)
        logp = dist.log_prob(self._stack_actions(actions)).T
        ent = dist.entropy().T if entropy else None
        return logp, ent, v

    # -------------------------------------------------------------------------------------
    @torch.no_grad()
    def sampler(self):
        """``sample(obs, generator, deterministic=False) -> (actions, logp [N, B])``: one
        encoder pass, then N decoder passes, agent m's action written into token m + 1."""
        N, n = self.num_agents, self.n_actions

        def sample(obs, generator=None, deterministic=False):
            with torch.no_grad():
                _, rep = self.encode(obs)
                B = rep.shape[0]
                width = n + 1 if self.discrete_actions else n
                tokens = torch.zeros(B, N, width, device=rep.device)
                if self.discrete_actions:
                    tokens[:, 0, 0] = 1.0
                acts, logps = [], []
                for m in range(N):
                    out = self.decoder(tokens, rep)[:, m].unsqueeze(0)                           # [1, B, n | K]
                    if self.discrete_actions:
                        a, lp = _sample_categorical(out, generator, deterministic)
                    else:
                        ls = self.log_std.detach().view(1, 1, -1)
                        a, lp = _sample_gaussian(out, ls.exp(), ls, generator, deterministic)
                    acts.append(a[0])
                    logps.append(lp[0])
                    if m + 1 < N:  # token m + 1 carries agent m's action (eq. eq-mat-shift)
                        if self.discrete_actions:
                            tokens[:, m + 1, 1:] = F.one_hot(a[0], n).to(tokens.dtype)
                        else:
                            tokens[:, m + 1] = a[0]
                return acts, torch.stack(logps)
        return sample

    @torch.no_grad()
    def act(self, obs, deterministic: bool = False, generator=None):
        return self.sampler()(obs, generator, deterministic)[0]

    @torch.no_grad()
    def ar_factors(self, obs: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], tuple[int, ...]]:
        """(factors, order) of :mod:`harl_mini.tabular.autoregressive` for one observation per
        agent: one teacher-forced pass over all n^N joint actions gives every prefix's
        conditional (position m's output ignores a^{m:N−1}, by the causal mask)."""
        if not self.discrete_actions:
            raise HarlMiniError("ar_factors: needs discrete actions")
        N, n = self.num_agents, self.n_actions
        joint = torch.tensor(list(itertools.product(range(n), repeat=N)), dtype=torch.long, device=self.device)
        obs_rep = [o.reshape(1, -1).expand(joint.shape[0], -1) for o in obs]
        dist, _ = self.distributions(obs_rep, list(joint.T))
        probs = torch.softmax(dist.logits.to(torch.float64), -1).reshape(*([n] * N), N, n)  # [a^0..a^{N−1}, m, n]
        factors = []
        for m in range(N):
            index = (*([slice(None)] * m), *([0] * (N - m)), m)  # later actions do not matter
            factors.append(probs[index].reshape(1, *([n] * m), n).cpu())
        return factors, self.order


class MATCritic(nn.Module):
    """The encoder's per-agent values V(ô^i) behind the runner's critic interface (K = N).

    ``values(state, obs) -> [B, N]`` de-normalised, with one :class:`ValueNorm` for all
    agents (as the official code). For MAT the encoder belongs to the transformer (held here
    by reference, not as a submodule); for MAT-Dec it belongs to this critic.
    """

    def __init__(self, encoder: MATEncoder, num_agents: int, obs_dim: int, value_norm: bool, owns_encoder: bool,
                 device="cpu"):
        super().__init__()
        self.num_values, self.obs_dim = int(num_agents), int(obs_dim)
        if owns_encoder:
            self.encoder = encoder
        else:
            object.__setattr__(self, "_shared_encoder", encoder)
        self.norm = ValueNorm(enabled=value_norm)
        self.to(device)

    def _encoder(self) -> MATEncoder:
        return self.encoder if "encoder" in self._modules else self._shared_encoder

    def normalized(self, obs: Sequence[torch.Tensor]) -> torch.Tensor:
        """v̂ [B, N] in normalised units, differentiable."""
        return self._encoder()(_pad_obs(obs, self.obs_dim))[0]

    @torch.no_grad()
    def values(self, state, obs) -> torch.Tensor:
        return self.norm.denormalize(self.normalized(obs))


def build(runner, decentralised: bool = False):
    """The registry's builder for ``mat`` / ``mat_dec``: (actors, critic, [optimiser], None).

    One Adam (lr ``cfg.lr``, eps 1e-5) over every parameter; ``critic_optim`` is None."""
    cfg, env, device = runner.cfg, runner.env, runner.device
    if cfg.n_embd % cfg.n_head:
        raise HarlMiniError(f"n_embd ({cfg.n_embd}) must be divisible by n_head ({cfg.n_head})")
    obs_dim = max(env.obs_dims)
    if decentralised:
        actors = MultiAgentActors(env.obs_dims, env.action_spaces, False, False, cfg.hidden, cfg.activation,
                                  cfg.log_std_init, cfg.learn_std, cfg.init_mean, device, cfg.feature_norm,
                                  cfg.layer_norm)
        encoder = MATEncoder(obs_dim, cfg.n_embd, cfg.n_head, cfg.n_block)
        critic = MATCritic(encoder, env.num_agents, obs_dim, cfg.value_norm, owns_encoder=True, device=device)
    else:
        actors = MultiAgentTransformer(env.obs_dims, env.action_spaces, cfg.n_embd, cfg.n_head, cfg.n_block,
                                       cfg.log_std_init, cfg.learn_std, device)
        critic = MATCritic(actors.encoder, env.num_agents, obs_dim, cfg.value_norm, owns_encoder=False, device=device)
    params = list(actors.parameters()) + list(critic.parameters())
    return actors, critic, [torch.optim.Adam(params, lr=cfg.lr, eps=1e-5)], None


# ---------------------------------------------------------------------------------------
# The update
# ---------------------------------------------------------------------------------------


def mat_objective(r: torch.Tensor, adv: torch.Tensor, clip_eps: float) -> torch.Tensor:
    r"""MAT's per-agent, per-sample objective min(ξ^m Â^m, clip(ξ^m, 1 ± ε) Â^m).

    Implements Chapter 10, eq. ``eq-mat-objective`` (Wen et al. 2022, eq. 5): PPO's clipped
    objective (:func:`harl_mini.losses.ppo_clip_objective`) on each agent's conditional
    ratio ξ^m ([N, B]) with its advantage, and no factor M.
    """
    return ppo_clip_objective(r, adv, clip_eps)


def _logp_entropy(actors, obs, act, need_ent: bool):
    if isinstance(actors, MultiAgentTransformer):
        logp, ent, _ = actors.evaluate(obs, act, need_ent)
        return logp, ent
    return actors.log_prob_entropy_all(obs, act, need_ent)


@torch.no_grad()
def _distributions(actors, obs, act):
    """MAT: one batch distribution over [B, N] (conditionals at the stored prefixes);
    MAT-Dec: the list of the N agents' distributions."""
    if isinstance(actors, MultiAgentTransformer):
        return actors.distributions(obs, act)[0]
    return [actors.distribution(i, o) for i, o in enumerate(obs)]


def _kl_entropy(actors, old, obs, act) -> tuple[list[float], list[float]]:
    """Per-agent mean KL(π_old ‖ π_new) of the conditionals and entropies, after the update."""
    new = _distributions(actors, obs, act)
    if isinstance(actors, MultiAgentTransformer):
        return kl_divergence(old, new).mean(0).tolist(), new.entropy().mean(0).tolist()
    return ([float(kl_divergence(o, n).mean()) for o, n in zip(old, new)],
            [float(n.entropy().mean()) for n in new])


def update(runner, buf) -> dict:
    """One MAT / MAT-Dec update: GAE per agent, then ``ppo_epochs`` × ``num_minibatches``
    Adam steps on −objective − c_H·H + c_V·L_V (see the module docstring); returns metrics."""
    cfg, actors, critic = runner.cfg, runner.actors, runner.critic
    N, S = runner.N, buf.size
    adv, ret = buf.advantages(cfg.gamma, cfg.lam)                                              # [T, B, N]
    adv, ret = adv.reshape(S, N).T.contiguous(), ret.reshape(S, N)                             # [N, S], [S, N]
    if cfg.norm_adv and S > 1:  # over all agents and samples together (the official trainer)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    obs = [buf.flat_obs(i) for i in range(N)]
    act = [buf.flat_actions(i) for i in range(N)]
    logp_old = torch.stack([buf.flat_logp(i) for i in range(N)])                               # [N, S]
    critic.norm.update(ret)
    target = critic.norm.normalize(ret)
    with torch.no_grad():
        v_old = critic.normalized(obs)
    diag = slice(None, None, max(1, S // 4096))
    old = _distributions(actors, [o[diag] for o in obs], [a[diag] for a in act])
    params = [p for group in runner.actor_optims[0].param_groups for p in group["params"]]
    clip_v = cfg.clip_eps if cfg.clip_vloss else None
    need_ent = cfg.ent_coef > 0
    mb_size = max(1, S // cfg.num_minibatches)
    for _ in range(cfg.ppo_epochs):
        if cfg.num_minibatches == 1:
            batches = [slice(None)]
        else:
            batches = list(torch.randperm(S, generator=runner.gen, device=runner.device).split(mb_size))
        for mb in batches:
            o_mb, a_mb = [o[mb] for o in obs], [a[mb] for a in act]
            if isinstance(actors, MultiAgentTransformer):  # one encoder pass for the policy and the values
                logp, ent, v = actors.evaluate(o_mb, a_mb, need_ent)
            else:
                logp, ent = _logp_entropy(actors, o_mb, a_mb, need_ent)
                v = critic.normalized(o_mb)
            pg = -mat_objective(ratio(logp, logp_old[:, mb]), adv[:, mb], cfg.clip_eps).mean()
            vl = value_loss(v, target[mb], v_old[mb], clip_v, cfg.huber_delta)
            loss = pg + cfg.value_coef * vl - (cfg.ent_coef * ent.mean() if need_ent else 0.0)
            check_finite_loss(loss.detach(), "NaN guard: the MAT loss", runner.iteration)
            runner.actor_optims[0].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            runner.actor_optims[0].step()
    kls, ents = _kl_entropy(actors, old, [o[diag] for o in obs], [a[diag] for a in act])
    out = {"order": "", "policy_loss": float(pg.detach()), "value_loss": float(vl.detach()),
           "explained_variance": explained_variance(buf.values.reshape(-1), ret.reshape(-1)),
           "kl": sum(kls) / N, "entropy": sum(ents) / N}
    out.update({f"kl_{i}": kls[i] for i in range(N)})
    return out
