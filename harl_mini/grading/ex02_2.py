"""Checks for Exercise 2.2: the REINFORCE estimator with a baseline, and why it is unbiased.

Oracles: ``harl_mini.tabular.reinforce_estimates`` (Chapter 2, eq. ``eq-pg-trajectory`` with a
state baseline, lemma ``lem-baseline``, on episodes of H steps), ``harl_mini.tabular.all_trajectories``
(every episode of H steps with its probability, so that the mean of an estimator is an exact
finite sum) and ``harl_mini.tabular.truncated_objective_from_logits`` (J_H, whose autograd
gradient ∇J_H is what the mean must equal).

Tolerances: per-episode estimates within 1e-8 + 1e-6·|ĝ| (float64 answers) or 1e-5 + 1e-4·|ĝ|
(float32 answers); the exact mean Σ_τ Pr(τ) ĝ(τ) within 1e-8 + 1e-6·|∇J_H| of ∇J_H (float64), or
1e-5 + 1e-4·|∇J_H| (float32). The means are sums of at most 3,888 products of float64 numbers of
size ≤ 10, so their round-off is below 1e-12.
"""

from __future__ import annotations

import torch

from harl_mini.advantages import discounted_returns
from harl_mini.grading.core import as_array, register
from harl_mini.tabular import (
    all_trajectories,
    random_logits,
    random_mdp,
    reinforce_estimates,
    sample_trajectories,
    softmax_policy,
    truncated_objective_from_logits,
    value,
)

__all__ = ["check_reinforce_estimates"]

f64 = torch.float64


def _seed(ctx) -> int:
    return int(torch.randint(2**31 - 1, (), generator=ctx.gen))


def _variant(pi, states, actions, rewards, gamma, baseline, *, weight_gamma=None, return_gamma=None,
             causal=True, baseline_next=False, sign=1.0, centred=True):
    """The estimator with one known mistake switched on (for hints only)."""
    N, H = rewards.shape
    S, A = pi.shape
    g_w = gamma if weight_gamma is None else weight_gamma
    g_r = gamma if return_gamma is None else return_gamma
    G = discounted_returns(rewards, g_r)
    if not causal:
        G = G[:, :1].expand(N, H)
    b = baseline[states]
    if baseline_next:
        b = torch.cat([b[:, 1:], torch.zeros(N, 1, dtype=f64)], 1)
    w = g_w ** torch.arange(H, dtype=f64) * (G - b)
    onehot_a = torch.nn.functional.one_hot(actions, A).to(f64)
    score = sign * (onehot_a - pi[states] if centred else onehot_a)
    onehot_s = torch.nn.functional.one_hot(states, S).to(f64)
    return torch.einsum("nhs,nha->nsa", onehot_s * w.unsqueeze(-1), score)


def _hints(pi, states, actions, rewards, gamma, baseline):
    args = (pi, states, actions, rewards, gamma, baseline)
    return [
        (lambda: _variant(*args, weight_gamma=1.0),
         "each step carries the weight γ^t of eq-pg-trajectory; without it the mean is not ∇J_H"),
        (lambda: _variant(*args, causal=False),
         "the weight of step t is the reward-to-go G_t = Σ_{k≥t} γ^(k−t) r_k, not the whole return G_0"),
        (lambda: _variant(*args, sign=-1.0),
         "the softmax score is ∂ log π(a|s)/∂θ_{s,b} = 1[a = b] − π(b|s), i.e. e_a − π_s, not π_s − e_a"),
        (lambda: _variant(*args, centred=False),
         "the score of the softmax subtracts π(·|s): ∇_θ log π(a|s) = e_s ⊗ (e_a − π_s)"),
        (lambda: _variant(pi, states, actions, rewards, gamma, torch.zeros_like(baseline)),
         "subtract the baseline b(s_t) from G_t"),
        (lambda: _variant(*args, baseline_next=True),
         "the baseline of step t is b(s_t), at the state where a_t is chosen, not b(s_(t+1))"),
        (lambda: _variant(*args, return_gamma=1.0),
         "G_t discounts the later rewards: G_t = r_t + γ G_(t+1)"),
    ]


def _per_episode(ctx, pi, states, actions, rewards, gamma, baseline, what):
    out = ctx.call(pi, states, actions, rewards, gamma, baseline)
    want = reinforce_estimates(pi, states, actions, rewards, gamma, baseline)
    S, A = pi.shape
    ctx.close(out, want, what, where=lambda idx: f"episode {idx[0]}, logit θ[{idx[1]}, {idx[2]}]",
              describe=lambda idx: (f"episode {idx[0]}: states {states[idx[0]].tolist()}, actions "
                                    f"{actions[idx[0]].tolist()}, rewards {[round(float(r), 3) for r in rewards[idx[0]]]}, "
                                    f"gamma={gamma:g}, baseline {[round(float(b), 3) for b in baseline]}"),
              hints=_hints(pi, states, actions, rewards, gamma, baseline))


def _exact_mean(ctx, S, A, gamma, H, baseline_kind, branching=None):
    """Call the student on every episode of H steps and compare the probability-weighted mean with ∇J_H."""
    mdp = random_mdp(S, A, gamma=gamma, seed=_seed(ctx), branching=branching)
    theta = random_logits(mdp, seed=_seed(ctx))
    pi = softmax_policy(theta)
    ep = all_trajectories(mdp, pi, H)
    states = ep.states[:, :H]
    if baseline_kind == "value":
        b = value(mdp, pi)
    elif baseline_kind == "zero":
        b = torch.zeros(S, dtype=f64)
    else:
        b = 5.0 * torch.randn(S, generator=ctx.gen, dtype=f64)
    out = ctx.call(pi, states, ep.actions, ep.rewards, mdp.gamma, b)
    g, _ = as_array(out, (len(ep.prob), S, A), f"your estimates on all {len(ep.prob)} episodes", broadcast=False)
    mean = (ep.prob[:, None, None] * g).sum(0)
    th = theta.clone().requires_grad_(True)
    (grad_H,) = torch.autograd.grad(truncated_objective_from_logits(mdp, th, H), th)
    what = (f"the exact mean Σ_τ Pr(τ) ĝ(τ) of your estimator over all {len(ep.prob)} episodes of H={H} steps "
            f"({mdp.name}, gamma={mdp.gamma:g}, {baseline_kind} baseline)")
    hints = [(lambda h=h: (ep.prob[:, None, None] * h()).sum(0), text)
             for h, text in _hints(pi, states, ep.actions, ep.rewards, mdp.gamma, b)]
    ctx.close(mean.to(g.dtype), grad_H, what, where=lambda idx: f"logit θ[{idx[0]}, {idx[1]}]",
              describe=lambda idx: f"compared with ∇J_H, the autograd gradient of the {H}-step objective J_H(θ)",
              hints=hints)


@register(function="reinforce_estimates", equation="eq-pg-trajectory",
          parts={"one hand-made episode": 1, "sampled episodes: one estimate per episode": 1,
                 "unbiased: the exact mean over every episode is the gradient of J_H": 2,
                 "any baseline leaves the mean unchanged": 1})
def check_reinforce_estimates(student_fn, ctx) -> None:
    """``student_fn(pi, states, actions, rewards, gamma, baseline)`` returns one estimate per episode, [N, S, A]:
    ĝ = Σ_{t<H} γ^t ∇_θ log π_θ(a_t|s_t) (G_t − b(s_t)) with G_t the reward-to-go inside the H steps.

    Tolerance: per-episode estimates within 1e-8 + 1e-6·|ĝ| (float64 answers), 1e-5 + 1e-4·|ĝ| (float32
    answers); the exact mean over every episode within 1e-8 + 1e-6·|∇J_H| of ∇J_H (float64), 1e-5 + 1e-4·|∇J_H|
    (float32).
    """
    with ctx.part("one hand-made episode"):
        pi = torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=f64)
        _per_episode(ctx, pi, torch.tensor([[0, 1, 0]]), torch.tensor([[1, 0, 0]]),
                     torch.tensor([[1.0, 2.0, 4.0]], dtype=f64), 0.5, torch.tensor([1.0, -1.0], dtype=f64),
                     "ĝ of the worked example")
        S, A = int(torch.randint(2, 5, (), generator=ctx.gen)), int(torch.randint(2, 4, (), generator=ctx.gen))
        H = int(torch.randint(2, 7, (), generator=ctx.gen))
        pi = torch.softmax(1.5 * torch.randn(S, A, generator=ctx.gen, dtype=f64), -1)
        _per_episode(ctx, pi, torch.randint(S, (1, H), generator=ctx.gen), torch.randint(A, (1, H), generator=ctx.gen),
                     torch.randn(1, H, generator=ctx.gen, dtype=f64), 0.8,
                     torch.randn(S, generator=ctx.gen, dtype=f64), f"ĝ of one drawn episode (S={S}, A={A}, H={H})")
    with ctx.part("sampled episodes: one estimate per episode"):
        mdp = random_mdp(4, 3, gamma=0.9, seed=_seed(ctx))
        pi = softmax_policy(random_logits(mdp, seed=_seed(ctx)))
        ep = sample_trajectories(mdp, pi, num_episodes=64, horizon=8, seed=_seed(ctx))
        _per_episode(ctx, pi, ep.states[:, :8], ep.actions, ep.rewards, mdp.gamma, value(mdp, pi),
                     f"ĝ on 64 sampled episodes of 8 steps ({mdp.name})")
    with ctx.part("unbiased: the exact mean over every episode is the gradient of J_H"):
        _exact_mean(ctx, 3, 2, 0.8, 4, "value")
        _exact_mean(ctx, 4, 2, 0.9, 4, "value", branching=1)
    with ctx.part("any baseline leaves the mean unchanged"):
        _exact_mean(ctx, 3, 2, 0.7, 4, "random")
        _exact_mean(ctx, 2, 3, 0.9, 4, "zero")
