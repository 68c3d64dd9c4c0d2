"""The sampled estimators against the exact oracle, on a small tabular MDP.

Set-up: a random MDP (S = 5, A = 3, γ = 0.9) served by ``make_env("tabular", mdp=...)``
with one-hot observations, and a tabular softmax policy: a ``CategoricalPolicy`` with no
hidden layer, whose logits are W e_s + b with b = 0, so W[a, s] = θ[s, a]. Every copy of
the environment starts in s_0 ~ ρ0 and is truncated after H steps; ``collect`` with
``num_steps = H`` therefore returns exactly one episode per copy.

What the sampled policy gradient estimates (the scaling, convention U). Per episode,

    ĝ = Σ_{t<H} γ^t ∇_θ log π(a_t|s_t) Â_t,

with Â_t = GAE(γ, λ=1) bootstrapped with the exact V^π at the cut. Because
E[Â_t | s_t, a_t] = A^π(s_t, a_t) (the bootstrap makes the truncated return exactly
unbiased for Q^π) and Σ_a π ∇log π · A^π(s, ·) = π(·|s) ⊙ A^π(s, ·) for softmax logits,

    E[ĝ] = Σ_s ρ_π^H(s) π(a|s) A^π(s, a),   ρ_π^H(s) = Σ_{t<H} γ^t Pr(s_t = s),

which is the exact convention-U gradient ∂J/∂θ = ρ_π π A^π up to the missing visitation
mass γ^H / (1 − γ) (2.7e-4 for H = 100). The γ^t weight is essential: the practical
algorithms drop it and so estimate a differently weighted direction. Averaging ĝ over N
episodes gives an RMSE ∝ 1/√N, so 16× the episodes should cut it by about 4×.
"""

from __future__ import annotations

import torch

import harl_mini.tabular as T
from harl_mini.advantages import gae
from harl_mini.envs import make_env
from harl_mini.nets import CategoricalPolicy
from harl_mini.rollout import collect

F64 = torch.float64
GAMMA, H = 0.9, 100


def _exact_policy_gradient(mdp, theta):
    try:
        from harl_mini.tabular.softmax import policy_gradient
    except ImportError:  # pragma: no cover - computed from the oracle instead
        pi = torch.softmax(theta, -1)
        return T.visitation(mdp, pi).unsqueeze(-1) * pi * T.advantage(mdp, pi)
    return policy_gradient(mdp, theta)


def _setup():
    mdp = T.random_mdp(5, 3, gamma=GAMMA, seed=4, reward_range=(-1.0, 1.0))
    theta = 0.8 * torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    policy = CategoricalPolicy(5, 3, hidden=()).double()
    with torch.no_grad():
        policy.logits_net[0].weight.copy_(theta.T)
        policy.logits_net[0].bias.zero_()
    pi = torch.softmax(theta, -1)
    V = T.value(mdp, pi)
    return mdp, theta, policy, pi, V


def _episodes(mdp, policy, V, num_episodes, seed):
    env = make_env("tabular", num_episodes, seed=seed, mdp=mdp, time_limit=H, dtype=F64)
    torch.manual_seed(seed)
    batch = collect(env, policy, lambda obs: obs @ V, H)
    assert bool(batch.truncated[-1].all()) and not bool(batch.truncated[:-1].any())
    adv, _ = gae(batch.rewards, batch.values, batch.next_values, batch.terminated, batch.truncated, GAMMA, 1.0)
    return batch, adv


def _sampled_gradient(mdp, policy, V, num_episodes, seed):
    batch, adv = _episodes(mdp, policy, V, num_episodes, seed)
    policy.zero_grad()
    weights = GAMMA ** batch.episode_t.to(F64)
    (weights * policy.log_prob(batch.obs, batch.actions) * adv).sum().div(num_episodes).backward()
    return policy.logits_net[0].weight.grad.T.clone()  # [S, A], the gradient w.r.t. θ


def test_sampled_policy_gradient_converges_to_the_exact_one():
    mdp, theta, policy, pi, V = _setup()
    exact = _exact_policy_gradient(mdp, theta)
    torch.testing.assert_close(exact, T.visitation(mdp, pi).unsqueeze(-1) * pi * T.advantage(mdp, pi))
    seeds = range(16)
    small = torch.stack([_sampled_gradient(mdp, policy, V, 32, 100 + s) for s in seeds])
    large = torch.stack([_sampled_gradient(mdp, policy, V, 512, 200 + s) for s in seeds])
    rmse_small = ((small - exact) ** 2).sum((1, 2)).mean().sqrt()
    rmse_large = ((large - exact) ** 2).sum((1, 2)).mean().sqrt()
    ratio = float(rmse_small / rmse_large)
    assert 2.8 < ratio < 5.7, f"RMSE ratio for 16x the episodes: {ratio:.2f} (expected about 4)"
    # the large-sample estimate is accurate, and its mean over seeds is unbiased
    assert float(rmse_large) < 0.25 * float(exact.norm()), (float(rmse_large), float(exact.norm()))
    mean = large.mean(0)
    se = large.std(0) / len(seeds) ** 0.5
    z = (mean - exact) / se
    assert float(z.abs().max()) < 4.5, z


def _per_pair_z(batch, adv, exact_adv, groups: int, t_max: int | None = None):
    """z-scores of the per-(s, a) mean of Â against A^π; SE from `groups` independent episode groups."""
    S, A = exact_adv.shape
    s = batch.obs.argmax(-1)                  # [T, N]
    a = batch.actions
    keep = torch.ones_like(adv, dtype=torch.bool) if t_max is None else batch.episode_t < t_max
    idx = (s * A + a)
    N = adv.shape[1]
    means = torch.zeros(groups, S * A, dtype=F64)
    for gi, cols in enumerate(torch.arange(N).chunk(groups)):
        i, x, k = idx[:, cols].flatten(), adv[:, cols].flatten(), keep[:, cols].flatten()
        sums = torch.zeros(S * A, dtype=F64).index_add_(0, i[k], x[k])
        counts = torch.zeros(S * A, dtype=F64).index_add_(0, i[k], torch.ones_like(x[k]))
        assert bool((counts > 0).all())
        means[gi] = sums / counts
    est, se = means.mean(0), means.std(0) / groups ** 0.5
    return ((est - exact_adv.flatten()) / se).reshape(S, A), est.reshape(S, A), se.reshape(S, A)


def test_gae_lambda_one_averages_to_the_exact_advantage():
    mdp, theta, policy, pi, V = _setup()
    exact_adv = T.advantage(mdp, pi)
    batch, adv = _episodes(mdp, policy, V, 2000, seed=7)
    z, est, se = _per_pair_z(batch, adv, exact_adv, groups=20)
    assert float(z.abs().max()) < 4.5, (z, est, exact_adv)
    assert float(se.max()) < 0.1 * float(exact_adv.abs().max()), se  # the test has power


def test_gae_lambda_one_is_unbiased_for_any_baseline_away_from_the_cut():
    """GAE(γ, 1) is γ-just for any V: with V ≡ 0 it is the plain discounted return, whose
    mean is Q^π; far from the time limit (t < H/3, γ^{2H/3} ≈ 9e-4) the missing bootstrap
    is negligible, and Q^π − V^π recovers A^π."""
    mdp, theta, policy, pi, V = _setup()
    env = make_env("tabular", 2000, seed=9, mdp=mdp, time_limit=H, dtype=F64)
    torch.manual_seed(9)
    batch = collect(env, policy, None, H)      # value_fn None: V ≡ 0
    adv, _ = gae(batch.rewards, batch.values, batch.next_values, batch.terminated, batch.truncated, GAMMA, 1.0)
    Q = T.q_value(mdp, pi)
    z, est, se = _per_pair_z(batch, adv, Q, groups=20, t_max=H // 3)
    assert float(z.abs().max()) < 4.5, (z, est, Q)
    assert float(se.max()) < 0.1 * float(Q.abs().max()), se
