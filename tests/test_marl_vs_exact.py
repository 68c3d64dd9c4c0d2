"""The sampled HAPPO / HATRPO estimators against the exact oracle (harl_mini.tabular).

On a one-state 3-agent game with unequal action counts and tabular softmax policies
(linear actors on a constant observation: logits = bias), for an order i_{1:m}:

* the *sampled* gradient of agent i_m's HAPPO objective mean(min(r M Â, clip(r) M Â)) and
  of HATRPO's surrogate mean(r M Â), with M the product of the already-updated agents'
  new/old ratios (``update_factor``) and Â the exact joint advantage A_π(a) of each
  sample, converges to the exact gradient of the multi-agent surrogate
  L^{i_{1:m}}(π̄^{i_{1:m−1}}, π^{i_m}_θ) = E_{a^{i_{1:m−1}}∼π̄, a^{i_m}∼π_θ}[A^{i_m}_π(a^{i_{1:m−1}}, a^{i_m})],
  computed with ``multi_agent_advantage``; the error shrinks as 1/√N (16× the samples
  → RMSE over seeds ≈ 4× smaller);
* the sampled mean of M·(r − 1)·Â at a moved policy π̂^{i_m} estimates L^{i_{1:m}}(π̄, π̂)
  (Proposition 2, Kuba et al. 2022), with the same 1/√N rate.
"""

from __future__ import annotations

import pytest
import torch

from harl_mini.losses import ratio
from harl_mini.marl.actors import MultiAgentActors
from harl_mini.marl.runner import happo_objective, hatrpo_surrogate, update_factor
from harl_mini.tabular import game_advantage, matrix_game, multi_agent_advantage

F64 = torch.float64
COUNTS = (2, 3, 2)
SEEDS = 40
N_SMALL, N_LARGE = 500, 8000


@pytest.fixture(scope="module")
def setup():
    g = torch.Generator().manual_seed(7)
    game = matrix_game(torch.randn(COUNTS, generator=g, dtype=F64) * 2.0)
    theta_old = [0.7 * torch.randn(n, generator=g, dtype=F64) for n in COUNTS]
    theta_new = [t + 0.6 * torch.randn(t.shape, generator=g, dtype=F64) for t in theta_old]  # π̄ and π̂
    return game, theta_old, theta_new


def _actors(thetas) -> MultiAgentActors:
    actors = MultiAgentActors([1] * len(COUNTS), [("discrete", n) for n in COUNTS], share_params=False, hidden=())
    actors.double()
    with torch.no_grad():
        for i, th in enumerate(thetas):
            lin = actors.policy(i).logits_net[0]
            lin.weight.zero_()
            lin.bias.copy_(th)  # logits = W·1 + b = θ: a tabular softmax policy
    return actors


def _exact(game, theta_old, theta_new, order):
    """(∇_θ L^{i_{1:m}} at θ_old, L^{i_{1:m}} at θ̂) for agent i_m = order[-1]."""
    pis_old = [torch.softmax(t, 0).unsqueeze(0) for t in theta_old]
    earlier, i_m = tuple(order[:-1]), order[-1]
    A = multi_agent_advantage(game, pis_old, agents=(i_m,), given=earlier)[0]  # axes: earlier..., i_m

    def L(theta):  # Σ_{a^{earlier}, a^{i_m}} Π_j π̄^j(a^j) π_θ(a^{i_m}) A^{i_m}(a^{earlier}, a^{i_m})
        pbar = [torch.softmax(theta_new[j], 0) for j in earlier]
        letters = "abcdefg"[:len(earlier)]
        expr = ",".join(letters) + ("," if letters else "") + "z," + letters + "z->"
        return torch.einsum(expr, *pbar, torch.softmax(theta, 0), A)

    theta = theta_old[i_m].clone().requires_grad_(True)
    grad = torch.autograd.grad(L(theta), theta)[0]
    with torch.no_grad():
        assert abs(float(L(theta_old[i_m]))) < 1e-12  # eq. (6): L^{i_{1:m}}(π̄, π^{i_m}) = 0
        value = float(L(theta_new[i_m]))
    return grad, value


def _sampled(game, theta_old, theta_new, order, n, seed):
    """Sampled (HAPPO gradient, HATRPO gradient, Proposition 2 value) for agent order[-1]."""
    old, new = _actors(theta_old), _actors(theta_new)
    obs = [torch.ones(n, 1, dtype=F64)] * len(COUNTS)
    acts, logp = old.sampler()(obs, torch.Generator().manual_seed(seed))
    pis_old = [torch.softmax(t, 0).unsqueeze(0) for t in theta_old]
    adv = game_advantage(game, pis_old)[0][tuple(acts)]                   # exact A_π(a) per sample
    factor = torch.ones(n, dtype=F64)
    for j in order[:-1]:  # M: product of the already-updated agents' new/old ratios
        factor = update_factor(factor, new.log_prob(j, obs[j], acts[j]), logp[j])
    i = order[-1]
    bias = old.policy(i).logits_net[0].bias
    r = ratio(old.log_prob(i, obs[i], acts[i]), logp[i])
    g_happo = torch.autograd.grad(happo_objective(r, factor, adv, 0.2).mean(), bias)[0]
    r = ratio(old.log_prob(i, obs[i], acts[i]), logp[i])
    g_hatrpo = torch.autograd.grad(hatrpo_surrogate(r, factor * adv).mean(), bias)[0]
    with torch.no_grad():
        r_hat = ratio(new.log_prob(i, obs[i], acts[i]), logp[i])
        value = float((factor * (r_hat - 1.0) * adv).mean())
    return g_happo, g_hatrpo, value


@pytest.mark.parametrize("order", [(1,), (0, 1), (2, 0, 1)])
def test_sampled_surrogate_gradient_and_value_converge_to_exact(setup, order):
    game, theta_old, theta_new = setup
    g_exact, v_exact = _exact(game, theta_old, theta_new, order)
    assert float(g_exact.norm()) > 0.05
    err = {}
    for n in (N_SMALL, N_LARGE):
        gs, vs = [], []
        for seed in range(SEEDS):
            g_happo, g_hatrpo, value = _sampled(game, theta_old, theta_new, order, n, 1000 * n + seed)
            assert torch.allclose(g_happo, g_hatrpo, atol=1e-12)  # at θ_old the clip is inactive
            gs.append(g_happo)
            vs.append(value)
        gs, vs = torch.stack(gs), torch.tensor(vs, dtype=F64)
        err[n] = (float((gs - g_exact).pow(2).sum(1).mean().sqrt()), float((vs - v_exact).pow(2).mean().sqrt()))
        # unbiased: the mean over seeds is within 4 standard errors of the exact value
        se_g = gs.std(0) / SEEDS ** 0.5
        assert bool(((gs.mean(0) - g_exact).abs() <= 4 * se_g + 1e-12).all()), (n, gs.mean(0), g_exact)
        assert abs(float(vs.mean()) - v_exact) <= 4 * float(vs.std()) / SEEDS ** 0.5
    for k in (0, 1):  # 16× the samples → RMSE ≈ 4× smaller
        assert 2.5 < err[N_SMALL][k] / err[N_LARGE][k] < 6.0, (k, err)
    assert err[N_LARGE][0] < 0.1 * float(g_exact.norm()) + 0.02
