"""Proximal Policy Optimization with the clipped surrogate (Chapter 5; Schulman et al. 2017).

Each minibatch step minimises −mean_t min(ξ_t Â_t, clip(ξ_t, 1−ε_clip, 1+ε_clip) Â_t) plus the
value and entropy terms (Chapter 5, eqs. ``eq-ppo-clip`` and ``eq-ppo-loss``), with the ratio
ξ_t(θ) = π_θ(a_t|s_t)/π_old(a_t|s_t) (``ratio``; the PPO paper writes r_t(θ)). mean_t is the
**batch mean**: every time step has weight 1, so states are weighted by their undiscounted
frequency in the batch, not by the discounted visitation d_π of the exact objective
:func:`harl_mini.tabular.trpo.ppo_objective` (Chapter 4, §4.5).

Implementation details (CleanRL style: each item names the lines that implement it; a
test keeps the line numbers honest):

1. [L147] Vectorised rollouts of ``num_steps`` steps in ``num_envs`` copies (``collect``).
2. [L148–149] GAE(γ, λ) advantages and TD(λ) value targets; truncation bootstraps from the final
   observation, termination never does (``harl_mini.advantages.gae``).
3. [L131–132, L134] Separate policy and value networks, orthogonal init (gains √2 hidden, 0.01 policy
   head, 1 value head; ``harl_mini.nets``), one Adam optimiser with eps = 1e-5.
4. [L142–144] Optional linear annealing of the learning rate to 0 over the run.
5. [L158–160] ``update_epochs`` passes over the batch in ``num_minibatches`` shuffled minibatches.
6. [L165] Advantages standardised per minibatch (mean 0, std 1; eps 1e-8).
7. [L166] Clipped surrogate loss −mean(min(ξ Â, clip(ξ, 1−ε_clip, 1+ε_clip) Â)) (``losses.ppo_clip_loss``).
8. [L169–171, L173] Value loss ½ mean (V − V_targ)², optionally clipped around the old value estimate.
9. [L175] Entropy bonus: loss = L_clip − c_ent · H + c_vf · L_V.
10. [L180] Global gradient-norm clipping at ``max_grad_norm``.
11. [L185–187, L194, L198] Diagnostics: k3 estimate of KL(π_old ‖ π_new) = mean((ξ − 1) − log ξ), clip fraction,
    explained variance; optional early stop of the epochs when KL > ``target_kl``.

Quick facts: on-policy; discrete (Categorical) and continuous (diagonal Gaussian,
state-independent log σ) actions; CPU, one thread is enough for CartPole/Pendulum.

Symbols and shapes (N = num_envs · num_steps samples per iteration, M = minibatch):

==============  ==========  ============================================================
Symbol          Shape       Meaning
==============  ==========  ============================================================
``obs``         [N, D]      observations s_t
``act``         [N(, K)]    actions a_t
``logp_old``    [N]         log π_old(a_t | s_t), recorded during the rollout
``adv``         [N]         Â_t = GAE(γ, λ)
``ret``         [N]         V_targ = Â_t + V_old(s_t)
``logp``        [M]         log π_θ(a_t | s_t) of a minibatch under the current θ
``ratio``       [M]         ξ_t(θ) = exp(logp − logp_old)
==============  ==========  ============================================================

Hyperparameters (:class:`PPOConfig`; defaults tuned on CartPole-v1, see
``results/single_agent/README.md``; :data:`PRESETS` holds per-environment overrides):

=====================  ===========  ====================================================
Name                   Default      Meaning
=====================  ===========  ====================================================
``num_envs``           8            parallel environment copies
``num_steps``          32           rollout length per copy per iteration (N = 256)
``gamma``              0.98         discount γ
``lam``                0.8          GAE λ
``lr``                 1e-3         Adam learning rate (policy and value)
``anneal_lr``          True         linear decay of ``lr`` to 0 over ``steps``
``update_epochs``      20           passes over each batch
``num_minibatches``    1            minibatches per pass (M = N / num_minibatches)
``clip_eps``           0.2          ε_clip of the clipped ratio
``clip_vloss``         False        clip the value update to ±ε around the old V
``vf_coef``            0.5          c_vf, weight of the value loss
``ent_coef``           0.0          c_ent, weight of the entropy bonus
``max_grad_norm``      0.5          global gradient-norm clip
``norm_adv``           True         standardise advantages per minibatch
``target_kl``          None         stop the epochs early once the k3 KL exceeds it
``hidden``             (64, 64)     hidden widths of both networks (tanh)
``log_std_init``       0.0          initial log σ (Gaussian policies only)
=====================  ===========  ====================================================

Usage::

    from harl_mini.algos import ppo
    history = ppo.train("gym:CartPole-v1", steps=150_000, seed=0)
    ppo.evaluate(history.policy, "gym:CartPole-v1", episodes=10)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from harl_mini.advantages import gae
from harl_mini.algos.common import (History, Tracker, check_finite_loss, evaluate, explained_variance, make_policy,
                                    resolve_config, setup)
from harl_mini.losses import ppo_clip_loss
from harl_mini.nets import ValueNet
from harl_mini.rollout import collect

__all__ = ["PPOConfig", "PRESETS", "train", "evaluate"]


@dataclass
class PPOConfig:
    """PPO hyperparameters; see the module docstring for the meaning of each."""

    num_envs: int = 8
    num_steps: int = 32
    gamma: float = 0.98
    lam: float = 0.8
    lr: float = 1e-3
    anneal_lr: bool = True
    update_epochs: int = 20
    num_minibatches: int = 1
    clip_eps: float = 0.2
    clip_vloss: bool = False
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    norm_adv: bool = True
    target_kl: float | None = None
    hidden: tuple[int, ...] = (64, 64)
    log_std_init: float = 0.0


#: Per-environment overrides of the defaults (used by ``python -m harl_mini.algos.run``).
PRESETS: dict[str, dict] = {
    "gym:Pendulum-v1": dict(num_envs=4, num_steps=512, gamma=0.9, lam=0.95, lr=1e-3, update_epochs=10,
                            num_minibatches=32, ent_coef=0.0),
}


def train(env, steps: int, seed: int = 0, device="cpu", progress: bool = True, log=None, **hparams) -> History:
    """Train a PPO agent for ``steps`` environment steps; return its :class:`History`.

    ``env`` is a registry name (``"gym:CartPole-v1"``) or a harl_mini VecEnv;
    ``hparams`` override :class:`PPOConfig`. Same seed ⇒ same result (on CPU).
    """
    cfg = resolve_config(PPOConfig, hparams)
    env = setup(env, steps, seed, device, cfg.num_envs)
    policy = make_policy(env, cfg.hidden, cfg.log_std_init, device)                            # [3]
    value_fn = ValueNet(env.obs_dim, cfg.hidden).to(device)                                    # [3]
    params = list(policy.parameters()) + list(value_fn.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.lr, eps=1e-5)                                  # [3]
    batch_size = env.num_envs * cfg.num_steps
    minibatch_size = max(1, batch_size // cfg.num_minibatches)
    iterations = max(1, steps // batch_size)  # whole iterations, never more than `steps` (unless < 1 batch)
    history = History(policy=policy, value_fn=value_fn, config=asdict(cfg))
    tracker = Tracker(history, iterations * batch_size, progress, log, desc=f"ppo {env.name}")

    for it in range(iterations):
        lr_now = cfg.lr * (1.0 - it / iterations) if cfg.anneal_lr else cfg.lr                 # [4]
        for group in optimizer.param_groups:                                                   # [4]
            group["lr"] = lr_now                                                               # [4]

        # ---- collect experience with π_old and compute advantages ----
        batch = collect(env, policy, value_fn, cfg.num_steps)                                  # [1]
        adv, ret = gae(batch.rewards, batch.values, batch.next_values,                        # [2]
                       batch.terminated, batch.truncated, cfg.gamma, cfg.lam)                  # [2]
        obs = batch.obs.flatten(0, 1)
        act = batch.actions.flatten(0, 1)
        logp_old = batch.logp.flatten(0, 1)
        v_old = batch.values.flatten(0, 1)
        adv, ret = adv.flatten(), ret.flatten()

        # ---- optimise the clipped surrogate for several epochs of minibatches ----
        clip_fracs, approx_kl = [], 0.0
        for epoch in range(cfg.update_epochs):                                                 # [5]
            perm = torch.randperm(batch_size, device=obs.device)                               # [5]
            for mb in perm.split(minibatch_size):                                              # [5]
                dist = policy.distribution(obs[mb])
                logp = dist.log_prob(act[mb])
                mb_adv = adv[mb]
                if cfg.norm_adv and mb_adv.numel() > 1:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)                  # [6]
                pg_loss = ppo_clip_loss(logp, logp_old[mb], mb_adv, cfg.clip_eps)              # [7]

                v = value_fn(obs[mb])
                if cfg.clip_vloss:                                                             # [8]
                    v_clipped = v_old[mb] + (v - v_old[mb]).clamp(-cfg.clip_eps, cfg.clip_eps)  # [8]
                    v_loss = 0.5 * torch.max((v - ret[mb]) ** 2, (v_clipped - ret[mb]) ** 2).mean()  # [8]
                else:
                    v_loss = 0.5 * ((v - ret[mb]) ** 2).mean()                                 # [8]
                entropy = dist.entropy().mean()
                loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss                 # [9]
                check_finite_loss(loss, "the PPO loss", it)

                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)                      # [10]
                optimizer.step()

                with torch.no_grad():
                    log_r = logp - logp_old[mb]
                    approx_kl = float(((log_r.exp() - 1.0) - log_r).mean())                   # [11]
                    clip_fracs.append(float(((log_r.exp() - 1.0).abs() > cfg.clip_eps).float().mean()))  # [11]
            if cfg.target_kl is not None and approx_kl > cfg.target_kl:                        # [11]
                break

        # ---- log one row ----
        with torch.no_grad():
            dist = policy.distribution(obs)
            log_r = dist.log_prob(act) - logp_old
            kl = ((log_r.exp() - 1.0) - log_r).mean()                                          # [11]
            tracker.record(it, batch, policy_loss=pg_loss.item(), value_loss=v_loss.item(),
                           entropy=dist.entropy().mean().item(), kl=kl.item(), clip_frac=sum(clip_fracs) / len(clip_fracs),
                           epochs=epoch + 1, lr=lr_now,
                           explained_variance=explained_variance(batch.values.flatten(), ret))  # [11]
    tracker.close()
    return history
