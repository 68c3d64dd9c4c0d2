"""REINFORCE with a learned baseline (Chapter 2; Williams 1992, Sutton et al. 2000).

The vanilla policy gradient: one gradient-ascent step per batch on

    mean_t[ log π_θ(a_t|s_t) · (G_t − V(s_t)) ],

where G_t is the discounted reward-to-go and V a learned state-value baseline, then a
regression step for V. The baseline changes the variance, not the expectation.

Implementation details (each item names the lines that implement it; a test keeps the
line numbers honest):

1. [L111–113] Fixed-length vectorised rollouts (``collect``) instead of whole episodes: an episode
   cut by the batch end or by a time limit is completed by bootstrapping from V, which is
   GAE with λ = 1: Â_t = G_t − V(s_t), G_t = Σ_k γ^k r_{t+k} (+ γ^L V(s_{t+L}) at a cut).
2. [L118] Optional standardisation of Â over the batch (off by default: plain REINFORCE).
3. [L123, L127] Policy loss −mean(log π · Â) (the score-function estimator; the per-step γ^t weight
   of the exact gradient is dropped, as in every practical implementation) minus an
   optional entropy bonus; one Adam step per batch.
4. [L130–131, L135] Baseline V fitted by Adam regression on G_t, ``vf_epochs`` full-batch steps.

Quick facts: on-policy; discrete and continuous actions; a teaching baseline, not tuned
to solve anything quickly.

Symbols and shapes (N = num_envs · num_steps samples per iteration):

==============  ==========  ============================================================
Symbol          Shape       Meaning
==============  ==========  ============================================================
``obs``         [N, D]      observations s_t
``act``         [N(, K)]    actions a_t
``adv``         [N]         Â_t = G_t − V(s_t)
``ret``         [N]         G_t (bootstrapped at cuts), the baseline's target
``logp``        [N]         log π_θ(a_t | s_t)
==============  ==========  ============================================================

Hyperparameters (:class:`ReinforceConfig`):

=====================  ===========  ====================================================
Name                   Default      Meaning
=====================  ===========  ====================================================
``num_envs``           8            parallel environment copies
``num_steps``          256          rollout length per copy per iteration
``gamma``              0.99         discount γ
``lr``                 3e-3         Adam learning rate of the policy
``vf_lr``              1e-3         Adam learning rate of the baseline
``vf_epochs``          20           full-batch regression steps per iteration
``norm_adv``           False        standardise Â over the batch
``ent_coef``           0.0          weight of the entropy bonus
``hidden``             (64, 64)     hidden widths of both networks (tanh)
``log_std_init``       0.0          initial log σ (Gaussian policies only)
=====================  ===========  ====================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from harl_mini.advantages import gae
from harl_mini.algos.common import (History, Tracker, check_finite_loss, evaluate, explained_variance, make_policy,
                                    resolve_config, setup)
from harl_mini.nets import ValueNet
from harl_mini.rollout import collect

__all__ = ["ReinforceConfig", "PRESETS", "train", "evaluate"]


@dataclass
class ReinforceConfig:
    """REINFORCE hyperparameters; see the module docstring for the meaning of each."""

    num_envs: int = 8
    num_steps: int = 256
    gamma: float = 0.99
    lr: float = 3e-3
    vf_lr: float = 1e-3
    vf_epochs: int = 20
    norm_adv: bool = False
    ent_coef: float = 0.0
    hidden: tuple[int, ...] = (64, 64)
    log_std_init: float = 0.0


#: Per-environment overrides of the defaults (used by ``python -m harl_mini.algos.run``).
PRESETS: dict[str, dict] = {
    "gym:Pendulum-v1": dict(gamma=0.9),
}


def train(env, steps: int, seed: int = 0, device="cpu", progress: bool = True, log=None, **hparams) -> History:
    """Train REINFORCE with a baseline for ``steps`` environment steps; return its :class:`History`.

    ``env`` is a registry name or a harl_mini VecEnv; ``hparams`` override
    :class:`ReinforceConfig`. Same seed ⇒ same result (on CPU).
    """
    cfg = resolve_config(ReinforceConfig, hparams)
    env = setup(env, steps, seed, device, cfg.num_envs)
    policy = make_policy(env, cfg.hidden, cfg.log_std_init, device)
    value_fn = ValueNet(env.obs_dim, cfg.hidden).to(device)
    pi_optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    vf_optimizer = torch.optim.Adam(value_fn.parameters(), lr=cfg.vf_lr)
    batch_size = env.num_envs * cfg.num_steps
    iterations = max(1, steps // batch_size)  # whole iterations, never more than `steps` (unless < 1 batch)
    history = History(policy=policy, value_fn=value_fn, config=asdict(cfg))
    tracker = Tracker(history, iterations * batch_size, progress, log, desc=f"reinforce {env.name}")

    for it in range(iterations):
        # ---- collect experience; reward-to-go minus baseline (GAE with λ = 1) ----
        batch = collect(env, policy, value_fn, cfg.num_steps)                                  # [1]
        adv, ret = gae(batch.rewards, batch.values, batch.next_values,                        # [1]
                       batch.terminated, batch.truncated, cfg.gamma, 1.0)                      # [1]
        obs = batch.obs.flatten(0, 1)
        act = batch.actions.flatten(0, 1)
        adv, ret = adv.flatten(), ret.flatten()
        if cfg.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)                                      # [2]

        # ---- one policy-gradient step ----
        dist = policy.distribution(obs)
        entropy = dist.entropy().mean()
        pi_loss = -(dist.log_prob(act) * adv).mean() - cfg.ent_coef * entropy                 # [3]
        check_finite_loss(pi_loss, "the policy loss", it)
        pi_optimizer.zero_grad()
        pi_loss.backward()
        pi_optimizer.step()                                                                    # [3]

        # ---- fit the baseline ----
        for _ in range(cfg.vf_epochs):                                                         # [4]
            v_loss = ((value_fn(obs) - ret) ** 2).mean()                                       # [4]
            check_finite_loss(v_loss, "the value loss", it)
            vf_optimizer.zero_grad()
            v_loss.backward()
            vf_optimizer.step()                                                                # [4]

        # ---- log one row ----
        with torch.no_grad():
            new = policy.distribution(obs)
            log_r = new.log_prob(act) - batch.logp.flatten(0, 1)
            tracker.record(it, batch, policy_loss=pi_loss.item(), value_loss=v_loss.item(),
                           entropy=entropy.item(), kl=((log_r.exp() - 1.0) - log_r).mean().item(),
                           explained_variance=explained_variance(batch.values.flatten(), ret))
    tracker.close()
    return history
