r"""One runner for every multi-agent algorithm (Chapters 8 and 10; Kuba et al. 2022, HARL).

Every iteration: (1) collect ``num_steps`` joint steps in each of the ``num_envs`` copies
of a :class:`~harl_mini.envs.multi.MultiAgentVecEnv` with the current policies
(:meth:`MARunner.collect`); (2) compute GAE advantages (:meth:`RolloutBuffer.advantages`);
(3) update the actors — the only place where the algorithms differ; (4) fit the
critic(s) *after* the actors, as HARL does.

**The registry** (:data:`ALGORITHMS`, at the end of this module): one :class:`Algorithm`
line per algorithm names its actor update and, where it differs from the default, its
critic, its actors or its whole construction and update. IPPO, MAPPO, HAPPO and HATRPO
are implemented here; the autoregressive actors of ``ar_mappo`` / ``ar_happo`` live in
:mod:`harl_mini.marl.ar`, MAT and MAT-Dec (one transformer, one loss for policy and
values) in :mod:`harl_mini.marl.mat` (Chapter 10). A new algorithm is one module plus one
registry line; the rollout, buffer, GAE, checkpoints and resume are shared.

==========  ==========================  ==============================================
Algorithm   Critic / advantage          Actor update
==========  ==========================  ==============================================
``ippo``    V^i(o^i) per agent; Â^i     every agent's PPO-clip step at once
``mappo``   central V(s); joint Â       every agent's PPO-clip step at once, on the
                                        same Â (shared parameters by default)
``happo``   central V(s); joint Â       agents one after another in a fresh random
                                        order i_{1:N}; agent i_m maximises
                                        mean min(r M Â, clip(r, 1±ε) M Â), M the
                                        product of the earlier agents' new/old ratios
``hatrpo``  central V(s); joint Â       same order and M; one trust-region step per
                                        agent on mean(r M Â) s.t. mean KL ≤ δ
==========  ==========================  ==============================================

**The M factor** (theory reference §5f–5g; HARL ``on_policy_ha_runner.py``). M starts
at 1 for every sample. After agent i_m's update,
M ← M · π^{i_m}_new(a^{i_m} | o^{i_m}) / π^{i_m}_old(a^{i_m} | o^{i_m}), evaluated on the
whole batch with the agent's final parameters (a product over action dimensions for a
Gaussian, because log-probabilities are summed). M is computed under ``no_grad``: it is
a fixed per-sample weight, and no gradient reaches the earlier agents. With M > 0,
M·min(rÂ, clip(r)Â) = min(r(MÂ), clip(r)(MÂ)), so HAPPO's loss is
``−mean(ppo_clip_objective(r, M·Â))`` (:mod:`harl_mini.losses`). HARL never clips M;
``m_clip=c`` (off by default) clamps it to [1/c, c] after every agent. Rows log the
mean, std, min and max of the M that the last agent of the order saw.

Order: a fresh ``torch.randperm(N)`` from the run's generator every iteration (Theorem 3
needs every order to have positive probability), or 0, 1, …, N−1 with ``fixed_order``.
Shared parameters are refused for HAPPO/HATRPO: updating "agent i_m" would move the
earlier agents' policies too, and M would no longer be their ratio.

**HATRPO step constants** (per agent; :func:`harl_mini.trust_region.trpo_step`):

====================  =====  =========================================================
Constant              Value  Meaning / source
====================  =====  =========================================================
``kl_threshold`` δ    0.01   mean KL(π^i_old ‖ π^i_new) ≤ δ (HARL default; tuned 0.005,
                             0.001 on some tasks)
``cg_iters``          10     CG iterations on (F + λI) s = g (HARL, TRPO)
``damping`` λ         0.1    added to the Fisher matrix, also in sᵀ(F+λI)s (HARL)
``fvp_subsample``     1.0    share of the batch in the Fisher-vector product: every k-th
                             sample, k = round(1/fvp_subsample) (1: the full batch, HARL;
                             OpenAI Baselines' TRPO uses 0.2). The gradient g and the
                             line search's KL always use the full batch
``backtrack_coeff``   0.8    line-search shrink factor (HARL; the ICLR code used 0.5)
``max_backtracks``    10     fractions 1, 0.8, …, 0.8¹⁰ tried (HARL ``ls_step``)
``accept_ratio``      0.5    accept iff gain ≥ 0.5 × predicted gain, gain > 0, KL ≤ δ
CG residual tol.      1e-10  (HARL)
====================  =====  =========================================================

The Fisher-vector product is :func:`harl_mini.algos.trpo.make_fvp` with
``method="gauss_newton"``: the Hessian of the *true* mean KL at θ_old as Jᵀ M J (one
forward-mode and one backward pass per product; the same matrix as double backpropagation,
tested, and ~5× faster on LayerNorm networks) (π_old-weighted for Categorical, closed form for
Gaussian), not HARL's unweighted discrete "KL" Σ_a(ρ_a − 1 − log ρ_a) (harl.md §1.4).
The line search measures the true KL too, so every accepted step has KL ≤ δ.

**Other details**: advantages standardised once per iteration over the batch (per
agent for IPPO), as HARL's EP mode; Adam (eps 1e-5) per actor network, global grad-norm
clip per network; entropy bonus ``ent_coef`` (mean entropy per agent; no HARL
broadcast bug); critic after the actors on ValueNorm-normalised targets
(:mod:`harl_mini.marl.critic`); truncated steps bootstrap from the final state
(:mod:`harl_mini.marl.buffer`); deterministic evaluation (argmax / mean) every
``eval_interval`` iterations and at the end. A NaN guard raises
:class:`~harl_mini.errors.HarlMiniError` as soon as a loss, a log-probability or a
parameter stops being finite.

**Checkpoints** (:meth:`MARunner.state_dict` / :meth:`MARunner.load_state_dict`): the
actors' and critic's parameters and buffers (ValueNorm statistics included), every Adam
state, the run's generator, torch's global (and CUDA) random state, the iteration, the
resolved configuration and the training env's :meth:`~harl_mini.envs.multi.MultiAgentVecEnv.get_state`.
Restored into a runner built with the same algorithm, env and configuration, the next
iterations are bit-identical on CPU to those of the uninterrupted run; an env whose state
cannot be captured (``get_state()`` None) restarts its episodes instead.
:mod:`harl_mini.marl.trainer` writes them to disk and resumes from them; :func:`train`
is its loop without output files.

History rows (besides ``iteration``, ``steps``, ``wall_time``, ``episodes``,
``episode_return`` and ``episode_length`` of :class:`~harl_mini.algos.common.Tracker`):

========================  ==============================================================
Key                       Meaning
========================  ==============================================================
``j_estimate``            mean team return of the episodes completed in this batch
``j_exact``               exact J of the current stochastic policy (one-state games)
``eval_return``           deterministic evaluation (every ``eval_interval`` iterations)
``kl``, ``kl_<i>``        mean KL(π^i_old ‖ π^i_new) after the update (per agent; on
                          every k-th sample, k = max(1, S // :data:`DIAG_SAMPLES`); NaN
                          with ``diagnostics=False``, which skips this pass)
``entropy``               mean policy entropy over agents (same subsample)
``policy_loss``           last actor loss (mean over agents)
``value_loss``            last critic loss (normalised units)
``explained_variance``    of the rollout values against the TD(λ) targets
``order``                 HAPPO/HATRPO agent order, e.g. ``"2-0-1"``
``m_mean`` … ``m_max``    statistics of the M seen by the last agent of the order
``accepted_<i>``, …       HATRPO: step accepted, backtracks, KL of the accepted step
``lr``, ``steps_per_s``   current actor learning rate; cumulative throughput
========================  ==============================================================

Hyperparameters (:class:`MAConfig`; the book's game runs use :data:`PRESETS`):

=======================  ===========  ==================================================
Name                     Default      Meaning
=======================  ===========  ==================================================
``num_envs``             256          B parallel copies
``num_steps``            8            T joint steps per copy per iteration
``gamma`` / ``lam``      0.99 / 0.95  discount and GAE λ
``lr`` / ``critic_lr``   5e-4 / 5e-4  Adam learning rates
``anneal_lr``            False        linear decay of both rates to 0
``ppo_epochs``           5            passes over the batch per agent (PPO variants)
``num_minibatches``      1            minibatches per pass
``clip_eps``             0.2          ε of the clip
``ent_coef``             0.01         entropy bonus (PPO variants)
``max_grad_norm``        10.0         grad-norm clip per network
``norm_adv``             True         standardise advantages
``critic_epochs``        5            critic passes per iteration
``critic_minibatches``   1            critic minibatches per pass
``value_norm``           True         ValueNorm on the critic targets
``huber_delta``          None         Huber loss δ for the critic (None: squared error)
``clip_vloss``           False        clip the critic update to ±clip_eps
``hidden``               (64, 64)     actor hidden widths (() = linear / tabular)
``critic_hidden``        None         critic widths (None: same as ``hidden``)
``activation``           "tanh"       "tanh" or "relu"
``feature_norm``         False        LayerNorm on actor and critic inputs (HARL: on)
``layer_norm``           False        LayerNorm after every hidden activation (HARL: on)
``log_std_init``         0.0          initial log σ (Gaussian agents)
``learn_std``            True         train log σ
``init_mean``            None         initial Gaussian means (linear actors)
``share_params``         None         one actor network (None: True for MAPPO only)
``agent_id``             None         one-hot id input when shared (None: = share)
``share_critic``         False        IPPO: one critic network for all agents' V(o^i)
``fixed_order``          False        HAPPO/HATRPO order 0..N−1 instead of random
``m_clip``               None         clamp M to [1/c, c] (HAPPO/HATRPO)
``kl_threshold`` …       see above    HATRPO step constants
``eval_interval``        10           deterministic evaluation every k iterations
``eval_episodes``        16           episodes per evaluation
``diagnostics``          True         the KL and entropy pass after the update (off:
                                      NaN in those columns; learning is unchanged)
=======================  ===========  ==================================================
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import torch
from torch.distributions import kl_divergence

from harl_mini.algos.common import History, check_finite_loss, explained_variance, resolve_config
from harl_mini.algos.trpo import make_fvp
from harl_mini.envs import make_env
from harl_mini.envs.multi import CHECK_EVERY, MultiAgentVecEnv
from harl_mini.errors import HarlMiniError, check_choice
from harl_mini.losses import ppo_clip_objective, ratio, surrogate_objective
from harl_mini.marl import ar, mat
from harl_mini.marl.actors import ACTIVATIONS, MultiAgentActors
from harl_mini.marl.buffer import RolloutBuffer
from harl_mini.marl.critic import CentralCritic, LocalCritics, value_loss
from harl_mini.nets import flat_grad, flat_params, set_flat_params
from harl_mini.trust_region import trpo_step

#: the diagnostics pass (per-agent KL, entropy) uses every k-th sample, k = max(1, S // DIAG_SAMPLES)
DIAG_SAMPLES = 4096

__all__ = ["ALGORITHMS", "Algorithm", "MAConfig", "PRESETS", "preset_for", "MARunner", "train", "evaluate",
           "exact_objective", "exact_references", "ppo_all_agents", "happo_agents", "hatrpo_agents",
           "update_factor", "happo_objective", "hatrpo_surrogate", "to_plain", "make_eval_env"]

@dataclass(frozen=True)
class Algorithm:
    """One line of the registry :data:`ALGORITHMS`.

    ===================  ========================================================================
    Field                Meaning
    ===================  ========================================================================
    ``update_actors``    ``(runner, advs [N, S]) -> metrics``: the actor update, on
                         ``runner._data[i] = (inputs, actions, logp_old)`` and the standardised
                         advantages; the runner adds diagnostics and the critic update
    ``critic``           ``"central"`` (V(s)) or ``"local"`` (V^i(o^i) per agent)
    ``sequential``       agents are updated one after another (needs separate parameters)
    ``share_default``    the default of ``share_params``
    ``no_sharing``       why ``share_params=True`` does not apply (None: it may be used)
    ``actors``           ``(env, cfg, device) -> actors`` instead of MultiAgentActors
    ``build``            ``(runner) -> (actors, critic, actor_optims, critic_optim)``: the
                         algorithm builds everything itself (MAT)
    ``update``           ``(runner, buf) -> metrics``: the whole update, critic included (MAT)
    ===================  ========================================================================
    """

    update_actors: Callable | None
    critic: str = "central"
    sequential: bool = False
    share_default: bool = False
    no_sharing: str | None = None
    actors: Callable | None = None
    build: Callable | None = None
    update: Callable | None = None


@dataclass
class MAConfig:
    """Hyperparameters of every multi-agent algorithm; see the module docstring."""

    num_envs: int = 256
    num_steps: int = 8
    gamma: float = 0.99
    lam: float = 0.95
    lr: float = 5e-4
    critic_lr: float = 5e-4
    anneal_lr: bool = False
    ppo_epochs: int = 5
    num_minibatches: int = 1
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    max_grad_norm: float = 10.0
    norm_adv: bool = True
    critic_epochs: int = 5
    critic_minibatches: int = 1
    value_norm: bool = True
    huber_delta: float | None = None
    clip_vloss: bool = False
    hidden: tuple[int, ...] = (64, 64)
    critic_hidden: tuple[int, ...] | None = None
    activation: str = "tanh"
    feature_norm: bool = False
    layer_norm: bool = False
    log_std_init: float = 0.0
    learn_std: bool = True
    init_mean: float | tuple[float, ...] | None = None
    share_params: bool | None = None
    agent_id: bool | None = None
    share_critic: bool = False
    fixed_order: bool = False
    m_clip: float | None = None
    kl_threshold: float = 0.01
    cg_iters: int = 10
    damping: float = 0.1
    fvp_subsample: float = 1.0
    diagnostics: bool = True
    backtrack_coeff: float = 0.8
    max_backtracks: int = 10
    accept_ratio: float = 0.5
    eval_interval: int = 10
    eval_episodes: int = 16
    n_embd: int = 64
    n_head: int = 1
    n_block: int = 1
    value_coef: float = 1.0


#: Overrides for the one-state games (used by ``python -m harl_mini.marl.run``): the
#: observation is constant, so a linear actor on it *is* a tabular softmax (or Gaussian)
#: policy; γ = 0 because every episode is one step; large batches; Adam steps sized for
#: logits. See ``results/games/README.md`` for the runs made with them.
PRESETS: dict[str, dict] = {
    "game:": dict(num_envs=4096, num_steps=1, gamma=0.0, lam=1.0, hidden=(), critic_hidden=(), lr=0.02,
                  critic_lr=0.05, ent_coef=0.0, eval_interval=1),
    # multi-state games (markov:two-step, markov:<file>): tabular policies on one-hot states, the
    # games' default discount 0.99, short rollouts of many copies
    "markov:": dict(num_envs=1024, num_steps=4, gamma=0.99, lam=0.95, hidden=(), critic_hidden=(64,), lr=0.02,
                    critic_lr=0.01, ent_coef=0.0, eval_interval=5),
    # Kuba et al. (2022), Figure 1: unit-variance Gaussians from means (−0.25, 0.25) and steps of
    # the size of a KL ball δ = 0.5 (|Δμ| ≈ 1): HATRPO with δ = 0.5; the PPO variants unclipped
    # (clip_eps = 100) with Adam lr 0.1 × 5 epochs, so every agent's mean moves by ≈ 1 per iteration.
    "game:a1a2": dict(num_envs=4096, num_steps=1, gamma=0.0, lam=1.0, hidden=(), critic_hidden=(), lr=0.1,
                      critic_lr=0.05, ent_coef=0.0, clip_eps=100.0, learn_std=False, log_std_init=0.0,
                      init_mean=(-0.25, 0.25), kl_threshold=0.5, eval_interval=1),
}


def preset_for(env_name: str) -> dict:
    """The :data:`PRESETS` entry whose key is ``env_name`` or a prefix of it (longest wins)."""
    best = ""
    for key in PRESETS:
        if env_name.startswith(key) and len(key) > len(best):
            best = key
    return dict(PRESETS[best]) if best else {}


def _resolve(algo: str, hparams: dict) -> MAConfig:
    spec = ALGORITHMS[algo]
    cfg = resolve_config(MAConfig, hparams)
    if cfg.share_params is None:
        cfg.share_params = spec.share_default
    for name in ("share_params", "agent_id"):
        v = getattr(cfg, name)
        if v is not None and not isinstance(v, bool):
            raise HarlMiniError(f"{name}: expected True, False or None, got {v!r}")
    if not isinstance(cfg.share_critic, bool):
        raise HarlMiniError(f"share_critic: expected True or False, got {cfg.share_critic!r}")
    if cfg.share_critic and spec.critic != "local":
        raise HarlMiniError(f"share_critic applies to per-agent critics (ippo); {algo}'s critic is already one "
                            "network on the global state")
    if cfg.agent_id is None:
        cfg.agent_id = cfg.share_params
    if spec.sequential and cfg.share_params:
        raise HarlMiniError(f"{algo} updates the agents one after another and needs separate parameters per agent; "
                            "share_params=True would move the earlier agents' policies too (use mappo for sharing)")
    if spec.no_sharing and cfg.share_params:
        raise HarlMiniError(f"{algo}: share_params=True does not apply ({spec.no_sharing})")
    if cfg.m_clip is not None and (isinstance(cfg.m_clip, bool) or not isinstance(cfg.m_clip, numbers.Real)
                                   or not cfg.m_clip > 1.0):
        raise HarlMiniError(f"m_clip: expected None or a number > 1 (M is clamped to [1/c, c]), got {cfg.m_clip!r}")
    if cfg.huber_delta is not None and not (isinstance(cfg.huber_delta, numbers.Real) and cfg.huber_delta > 0):
        raise HarlMiniError(f"huber_delta: expected None or a positive number, got {cfg.huber_delta!r}")
    if not isinstance(cfg.activation, str) or cfg.activation not in ACTIVATIONS:
        raise HarlMiniError(f"unknown activation {cfg.activation!r}; available: {', '.join(sorted(ACTIVATIONS))}")
    for name in ("hidden", "critic_hidden"):
        v = getattr(cfg, name)
        if v is None and name == "critic_hidden":
            continue
        try:
            widths = tuple(int(h) for h in v)
        except TypeError:
            raise HarlMiniError(f"{name}: expected a tuple of layer widths, got {v!r}") from None
        if any(h < 1 for h in widths):
            raise HarlMiniError(f"{name}: layer widths must be positive, got {v!r}")
        setattr(cfg, name, widths)
    if not 0.0 < cfg.backtrack_coeff < 1.0:
        raise HarlMiniError(f"backtrack_coeff: must lie in (0, 1), got {cfg.backtrack_coeff}")
    if not cfg.kl_threshold > 0:
        raise HarlMiniError(f"kl_threshold: must be positive, got {cfg.kl_threshold}")
    if not 0.0 < cfg.fvp_subsample <= 1.0:
        raise HarlMiniError(f"fvp_subsample: must lie in (0, 1], got {cfg.fvp_subsample}")
    return cfg


def _make_env(env, num_envs: int, seed: int, device, env_kwargs: dict | None = None) -> MultiAgentVecEnv:
    if isinstance(env, str):
        env = make_env(env, num_envs=int(num_envs), seed=int(seed), device=device, **(env_kwargs or {}))
        if not isinstance(env, MultiAgentVecEnv):
            raise HarlMiniError(f"env: {env.name!r} is a single-agent environment; the multi-agent algorithms need a "
                                "MultiAgentVecEnv such as game:xor")
        return env
    if not isinstance(env, MultiAgentVecEnv):
        raise HarlMiniError(f"env: expected an environment name or a MultiAgentVecEnv, got {type(env).__name__}")
    env.reset(int(seed))
    return env


class MARunner:
    """Holds the env, actors, critic, optimisers and generator of one run.

    ``collect()`` fills and returns a :class:`RolloutBuffer`; ``update(buffer)`` runs the
    algorithm's actor update and the critic update and returns the metrics; ``step()``
    does both and returns the metrics with the buffer. ``train`` drives it. After an
    HAPPO/HATRPO update, ``last_order`` is the agent order used and ``last_factors[m]``
    the M (detached, [T·B]) that the m-th agent of that order was updated with.
    """

    def __init__(self, algo: str, env, seed: int = 0, device="cpu", env_kwargs: dict | None = None, **hparams):
        if not isinstance(algo, str):
            raise HarlMiniError(f"algo: expected an algorithm name, got {algo!r}")
        check_choice(algo, ALGORITHMS, "multi-agent algorithm")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise HarlMiniError(f"seed: expected an integer, got {seed!r}")
        self.algo, self.seed = algo, int(seed)
        self.cfg = cfg = _resolve(algo, hparams)
        self.device = torch.device(device)
        torch.manual_seed(self.seed)
        self.gen = torch.Generator(device=self.device).manual_seed(self.seed)
        if env_kwargs is not None and not isinstance(env_kwargs, dict):
            raise HarlMiniError(f"env_kwargs: expected a dict of keyword arguments for the environment, got {env_kwargs!r}")
        self.env_kwargs = dict(env_kwargs or {})
        self.env = _make_env(env, cfg.num_envs, self.seed, self.device, self.env_kwargs)
        env = self.env
        self.N = env.num_agents
        self.spec = spec = ALGORITHMS[algo]
        if spec.build is not None:  # the algorithm builds its own networks and optimisers (MAT)
            self.actors, self.critic, self.actor_optims, self.critic_optim = spec.build(self)
        else:
            if spec.actors is not None:
                self.actors = spec.actors(env, cfg, self.device)
            else:
                self.actors = MultiAgentActors(env.obs_dims, env.action_spaces, cfg.share_params, cfg.agent_id,
                                               cfg.hidden, cfg.activation, cfg.log_std_init, cfg.learn_std,
                                               cfg.init_mean, self.device, cfg.feature_norm, cfg.layer_norm)
            critic_hidden = cfg.hidden if cfg.critic_hidden is None else cfg.critic_hidden
            act_cls = ACTIVATIONS[cfg.activation]
            if spec.critic == "local":
                self.critic = LocalCritics(env.obs_dims, critic_hidden, act_cls, cfg.value_norm, self.device,
                                           cfg.feature_norm, cfg.layer_norm, share=cfg.share_critic)
            else:
                self.critic = CentralCritic(env.state_dim, critic_hidden, act_cls, cfg.value_norm, self.device,
                                            cfg.feature_norm, cfg.layer_norm)
            self.actor_optims = [torch.optim.Adam(p.parameters(), lr=cfg.lr, eps=1e-5) for p in self.actors.policies]
            self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, eps=1e-5)
        self.buffer = RolloutBuffer(cfg.num_steps, env.num_envs, env.obs_dims, env.action_spaces, env.state_dim,
                                    self.critic.num_values, self.device)
        self.iteration = 0
        self.last_order: list[int] = list(range(self.N))
        self.last_factors: list[torch.Tensor] = []

    # -------------------------------------------------------------------------------------
    # Rollouts
    # -------------------------------------------------------------------------------------
    @torch.no_grad()
    def collect(self) -> RolloutBuffer:
        """Run the current policies for ``num_steps`` steps in every copy; fill the buffer."""
        env, buf, critic = self.env, self.buffer, self.critic
        sample = self.actors.sampler()
        obs, state = env.obs, env.state
        v = critic.values(state, obs)                                                          # [B, K]
        for t in range(buf.T):
            actions, logp = sample(obs, self.gen)
            # the sampler's actions are valid by construction: full checks on every k-th step only
            nobs, nstate, reward, term, trunc, fobs, fstate = env.step(actions, check=t % CHECK_EVERY == 0)
            v_next = critic.values(nstate, nobs)
            nv = v_next
            if bool(trunc.any()):  # bootstrap a time limit from the state the step really reached
                nv = torch.where(trunc.unsqueeze(-1), critic.values(fstate, fobs), v_next)
            buf.insert(t, obs, state, actions, logp, v, reward, term, trunc, nv)
            obs, state, v = nobs, nstate, v_next
        buf.episode_returns, buf.episode_lengths = env.pop_episodes()
        self._check_rollout(buf)
        if not bool(torch.isfinite(buf.logp).all()):
            bad = [i for i in range(self.N) if not bool(torch.isfinite(buf.logp[i]).all())]
            raise HarlMiniError(f"NaN guard: non-finite log-probabilities of agent(s) {bad} at iteration "
                                f"{self.iteration}; the policy parameters diverged (lower lr / kl_threshold)")
        return buf

    def _check_rollout(self, buf: RolloutBuffer) -> None:
        """What the environment returned on the steps ``collect`` did not check, all at once:
        one message naming the first non-finite entry (what, which step, which copy)."""
        # (name, tensor [T, B, ...], lag): slot t of obs/state holds what step t − 1 returned
        named = [*((f"obs[{i}]", o, 1) for i, o in enumerate(buf.obs)), ("state", buf.state, 1),
                 ("reward", buf.rewards, 0), ("final observation (its critic value)", buf.next_values, 0)]
        if bool(torch.isfinite(torch.cat([x.reshape(-1) for _, x, _ in named])).all()):
            return
        for what, x, lag in named:
            bad = ~torch.isfinite(x)
            if bool(bad.any()):
                t, b = torch.nonzero(bad)[0].tolist()[:2]
                when = f"step {t - lag} of this rollout" if t >= lag else "the last step of the previous rollout"
                raise HarlMiniError(f"{self.env.name}: the environment returned a non-finite {what} at {when} "
                                    f"(copy {b}, iteration {self.iteration})")

    # -------------------------------------------------------------------------------------
    # Updates
    # -------------------------------------------------------------------------------------
    def update(self, buf: RolloutBuffer) -> dict:
        """The actor update of ``self.algo`` and then the critic update; returns metrics.

        An algorithm with its own ``update`` in the registry (MAT) replaces all of it."""
        if self.spec.update is not None:
            metrics = self.spec.update(self, buf)
            self._check_params()
            return metrics
        cfg = self.cfg
        adv, ret = buf.advantages(cfg.gamma, cfg.lam)                                          # [T, B, K]
        S = buf.size
        adv = adv.reshape(S, -1).T.contiguous()                                                 # [K, S]
        if cfg.norm_adv and S > 1:
            adv = (adv - adv.mean(1, keepdim=True)) / (adv.std(1, keepdim=True) + 1e-8)
        advs = adv.expand(self.N, S) if adv.shape[0] == 1 else adv                               # [N, S]
        obs = [buf.flat_obs(i) for i in range(self.N)]
        acts = [buf.flat_actions(i) for i in range(self.N)]
        if isinstance(self.actors, ar.ARActors):  # agent i's input holds the earlier agents' stored actions
            obs = self.actors.conditioned(obs, acts)
        self._data = [(obs[i], acts[i], buf.flat_logp(i)) for i in range(self.N)]
        # diagnostics (KL, entropy) on every k-th sample, k = max(1, S // DIAG_SAMPLES)
        diag = cfg.diagnostics
        self._diag = slice(None, None, max(1, S // DIAG_SAMPLES))
        with torch.no_grad():
            old = [self.actors.distribution(i, self._data[i][0][self._diag]) for i in range(self.N)] if diag else None
        metrics = self.spec.update_actors(self, advs)
        metrics.update(self._diagnostics(old) if diag else
                       {**{f"kl_{i}": math.nan for i in range(self.N)}, "kl": math.nan, "entropy": math.nan})
        metrics.update(self._critic_update(buf, ret))
        self._check_params()
        self._data = None
        return metrics

    @torch.no_grad()
    def _diagnostics(self, old) -> dict:
        """Per-agent mean KL(π_old ‖ π_new) and entropy after the update (on the subsample)."""
        out, kls, ents = {}, [], []
        for i in range(self.N):
            obs = self._data[i][0][self._diag]
            kls.append(float(kl_divergence(old[i], self.actors.distribution(i, obs)).mean()))
            ents.append(float(self.actors.entropy(i, obs).mean()))
            out[f"kl_{i}"] = kls[-1]
        out["kl"] = sum(kls) / len(kls)
        out["entropy"] = sum(ents) / len(ents)
        return out

    def _ppo_epochs(self, agents: list[int], weights) -> dict:
        """PPO-clip epochs for ``agents`` at once; ``weights[i]`` [S] is Â (or M·Â) of agent i
        (a [N, S] tensor when all agents are updated together, else a dict)."""
        cfg, actors = self.cfg, self.actors
        S = self._data[0][0].shape[0]
        mb_size = max(1, S // cfg.num_minibatches)
        batched = actors.share_params and len(agents) == self.N
        optims = self.actor_optims if actors.share_params else [self.actor_optims[i] for i in agents]
        policies = [actors.policies[0]] if actors.share_params else [actors.policies[i] for i in agents]
        logp_old_all = torch.stack([self._data[i][2] for i in agents]) if batched else None
        need_ent = cfg.ent_coef > 0
        pg_losses = []
        for _ in range(cfg.ppo_epochs):
            if cfg.num_minibatches == 1:
                batches = [slice(None)]
            else:
                batches = list(torch.randperm(S, generator=self.gen, device=self.device).split(mb_size))
            for mb in batches:
                if batched:
                    logp, ent = actors.log_prob_entropy_all([self._data[i][0][mb] for i in agents],
                                                            [self._data[i][1][mb] for i in agents], need_ent)  # [N, M]
                    obj = ppo_clip_objective(ratio(logp, logp_old_all[:, mb]), weights[:, mb], cfg.clip_eps)
                    pg = -obj.mean()  # the mean over all agents' samples, as HARL's shared-parameter training
                    loss = pg - cfg.ent_coef * ent.mean() if need_ent else pg
                else:
                    loss = 0.0
                    for i in agents:
                        obs, act, logp_old = self._data[i]
                        logp, ent = actors.log_prob_entropy(i, obs[mb], act[mb], need_ent)
                        pg_i = -ppo_clip_objective(ratio(logp, logp_old[mb]), weights[i][mb].detach(),
                                                   cfg.clip_eps).mean()
                        loss = loss + (pg_i - cfg.ent_coef * ent.mean() if need_ent else pg_i)
                    pg = loss / len(agents)
                check_finite_loss(loss.detach(), "NaN guard: the actor loss", self.iteration)
                for opt in optims:
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                for pol in policies:
                    torch.nn.utils.clip_grad_norm_(pol.parameters(), cfg.max_grad_norm)
                for opt in optims:
                    opt.step()
                pg_losses.append(pg.detach())
        return {"policy_loss": float(pg_losses[-1])}

    def happo_loss(self, buf: RolloutBuffer, i: int, factor: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
        """Agent i's HAPPO loss on the whole buffer, −mean(ppo_clip_objective(r_i, M·Â)) − c_ent·mean H."""
        logp, ent = self.actors.log_prob_entropy(i, buf.flat_obs(i), buf.flat_actions(i), True)
        obj = happo_objective(ratio(logp, buf.flat_logp(i)), factor, adv, self.cfg.clip_eps)
        return -obj.mean() - self.cfg.ent_coef * ent.mean()

    def agent_order(self) -> list[int]:
        """This iteration's update order: a fresh random permutation unless ``fixed_order``."""
        if self.cfg.fixed_order:
            return list(range(self.N))
        return torch.randperm(self.N, generator=self.gen, device=self.device).tolist()

    def _sequential_update(self, advs: torch.Tensor, agent_step) -> dict:
        """Agents one after another in :meth:`agent_order`; ``agent_step(runner, i, factor, advs)``
        updates agent i with M = ``factor`` and returns its metrics (``policy_loss`` and any
        per-agent extras); M is then multiplied by agent i's new/old ratio."""
        cfg = self.cfg
        S = advs.shape[1]
        order = self.agent_order()
        factor = torch.ones(S, dtype=advs.dtype, device=self.device)
        self.last_order, self.last_factors = order, []
        out: dict = {"order": "-".join(map(str, order))}
        losses = []
        for i in order:
            self.last_factors.append(factor)
            m = agent_step(self, i, factor, advs)
            losses.append(m.pop("policy_loss"))
            out.update(m)
            with torch.no_grad():  # M ← M · π_new/π_old on the whole batch, detached
                obs, act, logp_old = self._data[i]
                factor = update_factor(factor, self.actors.log_prob(i, obs, act), logp_old, cfg.m_clip)
            if not bool(torch.isfinite(factor).all()):
                raise HarlMiniError(f"NaN guard: the M factor became non-finite after agent {i} at iteration "
                                    f"{self.iteration}; try m_clip or a smaller step")
        last = self.last_factors[-1]
        out.update(policy_loss=sum(losses) / len(losses), m_mean=float(last.mean()),
                   m_std=float(last.std()) if last.numel() > 1 else 0.0, m_min=float(last.min()),
                   m_max=float(last.max()))
        if "accepted_0" in out:
            out["accepted"] = sum(out[f"accepted_{i}"] for i in range(self.N)) / self.N
        return out

    @staticmethod
    def _weights_for(i: int, factor: torch.Tensor, advs: torch.Tensor) -> dict:
        return {i: factor * advs[i]}  # M·Â, with M a constant (no gradient) per sample

    def _trpo_agent(self, i: int, w: torch.Tensor) -> dict:
        """One HATRPO step for agent i on mean(r_i · w), w = M·Â, with mean KL ≤ δ."""
        cfg, actors = self.cfg, self.actors
        pol = actors.policy(i)
        obs, act, logp_old = self._data[i]
        x = actors.inputs(i, obs)
        with torch.no_grad():
            old_dist = pol.distribution(x)  # agent i has not moved yet this iteration: π_old
        theta_old = flat_params(pol)
        surrogate = hatrpo_surrogate(ratio(actors.log_prob(i, obs, act), logp_old), w).mean()
        check_finite_loss(surrogate.detach(), "NaN guard: the HATRPO surrogate", self.iteration)
        g = flat_grad(surrogate, pol)
        surrogate_old = float(surrogate.detach())
        stride = max(1, round(1.0 / cfg.fvp_subsample))
        fvp = make_fvp(pol, x[::stride], method="gauss_newton")

        def evaluate_candidate(theta: torch.Tensor) -> tuple[float, float]:
            set_flat_params(pol, theta)
            with torch.no_grad():
                gain = (torch.exp(actors.log_prob(i, obs, act) - logp_old) * w).mean() - surrogate_old
                kl = kl_divergence(old_dist, pol.distribution(x)).mean()
            return float(gain), float(kl)

        step = trpo_step(theta_old, g, fvp, cfg.kl_threshold, evaluate_candidate, cg_iters=cfg.cg_iters,
                         damping=cfg.damping, cg_residual_tol=1e-10, backtrack_coeff=cfg.backtrack_coeff,
                         max_backtracks=cfg.max_backtracks, accept_ratio=cfg.accept_ratio)
        set_flat_params(pol, step.theta)
        return {"policy_loss": -surrogate_old, "accepted": step.accepted,
                "backtracks": len(step.line_search.history) - 1, "step_kl": step.line_search.kl}

    def _critic_update(self, buf: RolloutBuffer, ret: torch.Tensor) -> dict:
        cfg, critic = self.cfg, self.critic
        S = buf.size
        ret = ret.reshape(S, -1)                                                                 # [S, K]
        if critic.num_values == 1:
            inputs, rets = [buf.flat_state()], [ret[:, 0]]
        elif getattr(critic, "shared", False):  # one network: all agents' samples as one batch of N·S rows
            inputs, rets = [torch.cat([buf.flat_obs(i) for i in range(self.N)])], [ret.T.reshape(-1)]
        else:
            inputs, rets = [buf.flat_obs(i) for i in range(self.N)], list(ret.T)
        clip = cfg.clip_eps if cfg.clip_vloss else None
        targets, olds = [], []
        for net, norm, x, g in zip(critic.nets(), critic.norms(), inputs, rets):
            norm.update(g)
            targets.append(norm.normalize(g))
            with torch.no_grad():  # the old predictions matter only to the clipped value loss
                olds.append(net(x) if clip is not None else None)
        R = inputs[0].shape[0]                                                                  # rows: S or N·S
        mb_size = max(1, R // cfg.critic_minibatches)
        for _ in range(cfg.critic_epochs):
            if cfg.critic_minibatches == 1:
                batches = [slice(None)]
            else:
                batches = list(torch.randperm(R, generator=self.gen, device=self.device).split(mb_size))
            for mb in batches:
                loss = 0.0
                for net, x, y, old in zip(critic.nets(), inputs, targets, olds):
                    old_mb = None if old is None else old[mb]
                    loss = loss + value_loss(net(x[mb]), y[mb], old_mb, clip, cfg.huber_delta)
                check_finite_loss(loss.detach(), "NaN guard: the critic loss", self.iteration)
                self.critic_optim.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
                self.critic_optim.step()
        values = buf.values.reshape(S, -1)
        return {"value_loss": float(loss.detach()) / len(targets),
                "explained_variance": explained_variance(values.flatten(), ret.flatten())}

    def _check_params(self) -> None:
        for name, module in (("actor", self.actors), ("critic", self.critic)):
            for pname, p in module.named_parameters():
                if not bool(torch.isfinite(p).all()):
                    raise HarlMiniError(f"NaN guard: {name} parameter {pname!r} became non-finite at iteration "
                                        f"{self.iteration}; lower the learning rate / kl_threshold")

    def set_lr(self, frac: float) -> float:
        lr = self.cfg.lr * frac
        for opt in self.actor_optims:
            for group in opt.param_groups:
                group["lr"] = lr
        if self.critic_optim is not None:  # None: one optimiser for everything (MAT)
            for group in self.critic_optim.param_groups:
                group["lr"] = self.cfg.critic_lr * frac
        return lr

    def step(self) -> tuple[RolloutBuffer, dict]:
        """One iteration: collect, update; returns (buffer, metrics)."""
        buf = self.collect()
        metrics = self.update(buf)
        self.iteration += 1
        return buf, metrics

    # -------------------------------------------------------------------------------------
    # Checkpoints
    # -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly; see "Checkpoints" in the module
        docstring. Only tensors, numbers, strings, lists, dicts and None, so that
        ``torch.load(path, weights_only=True)`` reads it back."""
        return {
            "algo": self.algo, "seed": self.seed, "iteration": self.iteration, "device": str(self.device),
            "config": to_plain(asdict(self.cfg)),
            "env_name": self.env.name, "num_envs": self.env.num_envs,
            "actors": self.actors.state_dict(), "critic": self.critic.state_dict(),
            "actor_optims": [opt.state_dict() for opt in self.actor_optims],
            "critic_optim": None if self.critic_optim is None else self.critic_optim.state_dict(),
            "generator": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "env": self.env.get_state(),
        }

    def load_state_dict(self, state: dict) -> bool:
        """Restore a :meth:`state_dict` of a runner with the same algorithm, environment and
        configuration. Returns True if the environment's copies were restored too, False if
        the snapshot has none (its env's ``get_state()`` was None): they then restart from
        ``reset(seed + iteration)``, and the continuation is not identical. A snapshot taken on
        another device type (cpu ↔ cuda) cannot restore the run's generator, which is then
        re-seeded with ``seed + iteration`` (not identical either)."""
        if not isinstance(state, dict) or "actors" not in state:
            raise HarlMiniError("load_state_dict: expected a dict returned by MARunner.state_dict()")
        if state["algo"] != self.algo:
            raise HarlMiniError(f"checkpoint: it is of a {state['algo']!r} run, this runner is {self.algo!r}")
        mine = to_plain(asdict(self.cfg))
        diff = sorted(k for k in set(mine) | set(state["config"]) if mine.get(k) != state["config"].get(k))
        if diff:
            raise HarlMiniError("checkpoint: its hyperparameters differ from this runner's in "
                                + ", ".join(f"{k} ({state['config'].get(k)!r} vs {mine.get(k)!r})" for k in diff))
        if (state["env_name"], state["num_envs"]) != (self.env.name, self.env.num_envs):
            raise HarlMiniError(f"checkpoint: it is of {state['env_name']!r} with {state['num_envs']} copies, this "
                                f"runner has {self.env.name!r} with {self.env.num_envs}")
        self.actors.load_state_dict(state["actors"])
        self.critic.load_state_dict(state["critic"])
        for opt, opt_state in zip(self.actor_optims, state["actor_optims"], strict=True):
            opt.load_state_dict(opt_state)
        if self.critic_optim is not None:
            self.critic_optim.load_state_dict(state["critic_optim"])
        self.iteration = int(state["iteration"])
        restored = state["env"] is not None
        if restored:
            self.env.set_state(state["env"])
        else:
            self.env.reset(self.seed + self.iteration)
        # the random streams last: building and resetting envs may draw from them
        if torch.device(state["device"]).type == self.device.type:
            self.gen.set_state(state["generator"])
        else:
            self.gen.manual_seed(self.seed + self.iteration)
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        return restored


def to_plain(x):
    """``x`` with tuples turned into lists (recursively), checked to hold only tensors, numbers,
    strings, lists, dicts and None: what ``torch.load(weights_only=True)`` reads back."""
    if isinstance(x, dict):
        return {k: to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_plain(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str, torch.Tensor)):
        return x
    raise HarlMiniError(f"checkpoint: cannot store a {type(x).__name__} ({x!r}); only tensors, numbers, strings, "
                        "lists and dicts")


# ---------------------------------------------------------------------------------------
# The per-sample objectives and the M recursion (used by the runner and by the tests)
# ---------------------------------------------------------------------------------------


def update_factor(factor: torch.Tensor, logp_new: torch.Tensor, logp_old: torch.Tensor,
                  m_clip: float | None = None) -> torch.Tensor:
    """M ← M · π_new(a|o)/π_old(a|o), detached; clamped to [1/m_clip, m_clip] if given.

    Implements the recursion M^{i_{1:m+1}} = (π^{i_m}_new / π^{i_m}_old) M^{i_{1:m}}
    (theory reference §5f, eq. 10, without the Â that the caller multiplies in).
    """
    out = factor.detach() * torch.exp(logp_new.detach() - logp_old.detach())
    return out if m_clip is None else out.clamp(1.0 / m_clip, m_clip)


def happo_objective(r: torch.Tensor, factor: torch.Tensor, adv: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """HAPPO's per-sample objective min(r·MÂ, clip(r, 1±ε)·MÂ), M detached (theory §5g)."""
    return ppo_clip_objective(r, factor.detach() * adv, clip_eps)


def hatrpo_surrogate(r: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """HATRPO's per-sample surrogate r·(MÂ) (``weight`` = M·Â, detached); its mean minus
    mean(MÂ) is the Proposition 2 estimate of L^{i_{1:m}}, with the same gradient."""
    return surrogate_objective(r, weight.detach())


# ---------------------------------------------------------------------------------------
# Exact objective on the one-state games, evaluation, training loop
# ---------------------------------------------------------------------------------------


def exact_references(env) -> dict | None:
    """``{"j_star", "j_star_share"}`` of a game the oracle knows exactly, else None.

    For a :class:`~harl_mini.envs.matrix.MatrixGameEnv` (a named game or your own payoff
    file) and a :class:`~harl_mini.envs.markov.MarkovGameEnv`: J* (the best joint policy,
    :func:`harl_mini.tabular.game_optimal_value`) and, when every agent has the same number
    of actions, J*_share (the best policy all agents share, :func:`harl_mini.tabular.best_shared_policy`;
    None otherwise), on the same scale as :func:`exact_objective` (× the episode length of a
    repeated one-state game).
    """
    from harl_mini.envs.markov import MarkovGameEnv
    from harl_mini.envs.matrix import MatrixGameEnv
    from harl_mini.tabular import best_shared_policy, game_optimal_value, matrix_game

    if isinstance(env, MarkovGameEnv):
        game, scale = env.game, 1.0
    elif isinstance(env, MatrixGameEnv):
        game, scale = matrix_game(env.payoff.detach().cpu()), float(env.episode_length)
    else:
        return None
    share = float(best_shared_policy(game).value) * scale if len(set(game.action_counts)) == 1 else None
    return {"j_star": float(game_optimal_value(game)) * scale, "j_star_share": share}


@torch.no_grad()
def exact_objective(actors: MultiAgentActors, env) -> float | None:
    """J of the current *stochastic* joint policy on a one-state or Markov game, exactly; else None.

    :class:`~harl_mini.envs.markov.MarkovGameEnv`: J(π) = ρ0ᵀ V_π of the game
    (:func:`harl_mini.tabular.game.objective`) for the tables π^i[s, ·] the actors give on
    each state's observation (discounted by the game's γ);

    :class:`~harl_mini.envs.matrix.MatrixGameEnv`: H · Σ_a Π_i π^i(a^i) r(a); for
    autoregressive actors (with ``ar_factors``, Chapter 10) H · J of
    :func:`harl_mini.tabular.ar_objective` on their exact conditional tables;
    :class:`~harl_mini.envs.matrix.ContinuousProductGameEnv`: H · Π_i μ^i (the expected
    product of independent Gaussians; None for autoregressive actors). H is the episode
    length; the observation is the env's (constant) one.
    """
    from harl_mini.envs.markov import MarkovGameEnv
    from harl_mini.envs.matrix import ContinuousProductGameEnv, MatrixGameEnv

    if isinstance(env, MarkovGameEnv):  # multi-state game: J of the per-state tables, by the oracle
        if hasattr(actors, "ar_factors"):
            return None
        from harl_mini.tabular.game import objective

        return float(objective(env.game, env.policy_tables(actors.probs)))

    if isinstance(env, MatrixGameEnv) and hasattr(actors, "ar_factors"):  # autoregressive: through the oracle
        from harl_mini.tabular import ar_objective, matrix_game

        factors, order = actors.ar_factors([o[:1] for o in env.obs])
        return float(ar_objective(matrix_game(env.payoff.cpu()), factors, order)) * env.episode_length
    if isinstance(env, MatrixGameEnv):
        table = env.payoff.to(torch.float64)
        for i in reversed(range(env.num_agents)):
            p = actors.probs(i, env.obs[i][:1])[0].to(torch.float64).to(table.device)
            table = table @ p  # contract the last remaining agent axis
        return float(table) * env.episode_length
    if isinstance(env, ContinuousProductGameEnv) and not hasattr(actors, "ar_factors"):  # independent agents only
        prod = 1.0
        for i in range(env.num_agents):
            prod *= float(actors.mean(i, env.obs[i][:1])[0, 0])
        return prod * env.episode_length
    return None


@torch.no_grad()
def evaluate(actors: MultiAgentActors, env, episodes: int = 16, deterministic: bool = True, seed: int = 12345,
             generator: torch.Generator | None = None) -> dict:
    """Team returns of ``episodes`` episodes, by default with every agent's mode action.

    ``env`` is a name (built with min(episodes, 64) copies) or a MultiAgentVecEnv (reset
    with ``seed``). Returns ``{"returns", "mean", "std"}``.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise HarlMiniError(f"episodes: expected a positive integer, got {episodes!r}")
    if isinstance(env, str):
        env = _make_env(env, min(episodes, 64), seed, actors.device)
    else:
        env = _make_env(env, env.num_envs, seed, actors.device)
    sample = actors.sampler()
    env.pop_episodes()
    returns: list[float] = []
    obs = env.obs
    while len(returns) < episodes:
        actions, _ = sample(obs, generator, deterministic)
        obs = env.step(actions)[0]
        returns.extend(env.pop_episodes()[0])
    returns = returns[:episodes]
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))
    return {"returns": returns, "mean": mean, "std": std}


def make_eval_env(env, name_or_env, episodes: int, seed: int, device, env_kwargs: dict | None = None):
    """A separate env for the periodic evaluations: built from the name, or a copy of the
    training env; None if that env cannot be copied (it is then evaluated only at the end)."""
    if isinstance(name_or_env, str):
        return _make_env(name_or_env, min(episodes, 64), seed, device, env_kwargs)
    try:
        return copy.deepcopy(env)
    except Exception:  # noqa: BLE001 - an env that cannot be copied is evaluated only at the end
        return None


def train(algo: str, env, steps: int, seed: int = 0, device="cpu", progress: bool = True, log=None,
          env_kwargs: dict | None = None, **hparams) -> History:
    """Train ``algo`` (ippo, mappo, happo, hatrpo) for ``steps`` environment steps.

    ``env`` is a registry name (``"game:xor"``) or a MultiAgentVecEnv; ``hparams``
    override :class:`MAConfig`. An environment step is one joint step of one copy, so an
    iteration is ``num_envs · num_steps`` steps. Same seed ⇒ same result (on CPU).
    Returns a :class:`~harl_mini.algos.common.History` whose ``policy`` is the
    :class:`MultiAgentActors` and ``value_fn`` the critic; see the module docstring for
    the row keys. The loop is :meth:`harl_mini.marl.trainer.Trainer.run` without output
    files (the command-line trainer adds metrics.csv, TensorBoard, checkpoints, resume).
    """
    from harl_mini.marl.trainer import Trainer

    return Trainer(algo, env, steps, seed, device, hparams=hparams, env_kwargs=env_kwargs, progress=progress,
                   log=log).run()


# ---------------------------------------------------------------------------------------
# The registry: one line per algorithm
# ---------------------------------------------------------------------------------------


def ppo_all_agents(runner: MARunner, advs: torch.Tensor) -> dict:
    """Every agent's PPO-clip epochs at once, each on its own ratio and Â (IPPO, MAPPO, AR-MAPPO)."""
    metrics = runner._ppo_epochs(list(range(runner.N)), advs)
    metrics["order"] = ""
    return metrics


def _happo_agent(runner: MARunner, i: int, factor: torch.Tensor, advs: torch.Tensor) -> dict:
    return runner._ppo_epochs([i], runner._weights_for(i, factor, advs))


def _hatrpo_agent(runner: MARunner, i: int, factor: torch.Tensor, advs: torch.Tensor) -> dict:
    m = runner._trpo_agent(i, factor * advs[i])
    return {"policy_loss": m["policy_loss"], f"accepted_{i}": int(m["accepted"]),
            f"backtracks_{i}": m["backtracks"], f"step_kl_{i}": m["step_kl"]}


def happo_agents(runner: MARunner, advs: torch.Tensor) -> dict:
    """HAPPO: agents one after another, each PPO-clip on M·Â (Chapter 8, eq. ``eq-happo-objective``)."""
    return runner._sequential_update(advs, _happo_agent)


def hatrpo_agents(runner: MARunner, advs: torch.Tensor) -> dict:
    """HATRPO: agents one after another, one trust-region step each on mean(r·M·Â) (eq. ``eq-hatrpo-step``)."""
    return runner._sequential_update(advs, _hatrpo_agent)


_AR = "each agent's input size grows with its position"
_MAT = "the transformer is one network for all agents"

#: algorithm name -> its :class:`Algorithm` (IPPO, MAPPO, HAPPO, HATRPO: Chapter 8; the rest: Chapter 10)
ALGORITHMS: dict[str, Algorithm] = {
    "ippo": Algorithm(ppo_all_agents, critic="local"),
    "mappo": Algorithm(ppo_all_agents, share_default=True),
    "happo": Algorithm(happo_agents, sequential=True),
    "hatrpo": Algorithm(hatrpo_agents, sequential=True),
    "ar_mappo": Algorithm(ppo_all_agents, no_sharing=_AR, actors=ar.build_ar_actors),
    "ar_happo": Algorithm(happo_agents, sequential=True, no_sharing=_AR, actors=ar.build_ar_actors),
    "mat": Algorithm(None, no_sharing=_MAT, build=mat.build, update=mat.update),
    "mat_dec": Algorithm(None, no_sharing=_MAT, build=partial(mat.build, decentralised=True), update=mat.update),
}
