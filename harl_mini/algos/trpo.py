"""Trust Region Policy Optimization on neural policies (Chapter 4; Schulman et al. 2015).

Each iteration solves the sampled form of the trust-region problem (Chapter 4, eqs.
``eq-trpo-problem`` and ``eq-trpo-sample-surrogate``; TRPO eq. 12, convention U)

    maximise_θ  L(θ) = mean_t[ ξ_t(θ) Â_t ]   subject to   mean_t KL(π_old(·|s_t) ‖ π_θ(·|s_t)) ≤ δ

where ξ_t(θ) = π_θ(a_t|s_t)/π_old(a_t|s_t) is the probability ratio (``ratio``; the PPO paper
writes r_t(θ)) and mean_t is the **batch mean**: every time step has weight 1, so states are
weighted by their undiscounted frequency in the batch, not by the discounted visitation d_π
of the exact problem (:func:`harl_mini.tabular.trpo.exact_trpo_step`). It is solved
approximately, with one call to :func:`harl_mini.trust_region.trpo_step` (conjugate
gradient on (F + νI) s = g, step length β = sqrt(2δ / sᵀ(F+νI)s), backtracking line search
on the true KL and the surrogate), then refits the value function by regression.

Implementation details (each item names the lines that implement it; a test keeps the
line numbers honest):

1. [L339–341] Vectorised rollouts, GAE(γ, λ) advantages with truncation bootstrapping
   (``collect``, ``harl_mini.advantages.gae``).
2. [L347] Advantages standardised over the whole batch (mean 0, std 1).
3. [L353, L355] Surrogate L(θ) = mean(ξ(θ) Â) via ``losses.surrogate_objective``; its gradient at
   θ_old is the batch's policy-gradient estimate g (time steps weighted equally, no γ^t).
4. [L162–163, L166, L360–361, L363] Fisher-vector products by double backpropagation of the mean *true* KL
   (Categorical: Σ_a π_old log(π_old/π_θ); diagonal Gaussian: the closed form, summed over
   action dimensions), optionally on a random subsample of the batch (TRPO used 10 %).
   Unlike HARL's discrete HATRPO, the KL is π_old-weighted, so F is the Fisher matrix.
5. [L374–375] Damping ν = ``damping`` added inside ``trpo_step`` (CG solves (F + νI) s = g, and
   the step length uses sᵀ(F + νI)s, as in Spinning Up and HARL).
6. [L370–371, L376–378] Line search: the true mean KL ≤ δ and the surrogate improves (and, if
   ``accept_ratio`` > 0, improves by at least that fraction of the linear prediction);
   if no fraction of the step passes, the policy is left unchanged.
7. [L382–384] Value function fitted after the policy step by Adam regression on the TD(λ)
   targets, ``vf_epochs`` passes of ``vf_minibatches`` minibatches.
8. [L393–397] Diagnostics: KL and surrogate gain of the accepted step, number of backtracks,
   entropy, explained variance.

Constants of the trust-region step (TRPO paper / Spinning Up / HARL; see theory reference §2d):

===================  ========  =====================================================
Constant             Here      Source
===================  ========  =====================================================
δ (``delta``)        0.01      TRPO App. E (all tasks), Spinning Up, HARL
CG iterations        10        TRPO §C ("k = 10 quite effective"), Spinning Up, HARL
damping ν            0.1       Spinning Up (Hv → (H + νI)v with ν = 0.1), HARL
backtrack coeff      0.8       Spinning Up, HARL (the paper does not give one)
max backtracks       10        Spinning Up, HARL
``accept_ratio``     0.0       Spinning Up: accept any improvement with KL ≤ δ
                               (HARL: improvement ≥ 0.5 × expected; pass 0.5 to match)
===================  ========  =====================================================

Symbols and shapes (N = num_envs · num_steps samples per iteration, P parameters):

==============  ==========  ============================================================
Symbol          Shape       Meaning
==============  ==========  ============================================================
``obs``         [N, D]      observations s_t
``act``         [N(, K)]    actions a_t
``logp_old``    [N]         log π_old(a_t | s_t)
``adv``         [N]         Â_t (standardised)
``ret``         [N]         value targets Â_t + V_old(s_t)
``theta_old``   [P]         flat policy parameters before the step
``g``           [P]         ∇_θ L at θ_old
``Fvp(v)``      [P]→[P]     ∇_θ (∇_θ KL̄ · v), the Fisher-vector product
==============  ==========  ============================================================

Hyperparameters (:class:`TRPOConfig`; defaults tuned on CartPole-v1, :data:`PRESETS`
holds per-environment overrides):

=====================  ===========  ====================================================
Name                   Default      Meaning
=====================  ===========  ====================================================
``num_envs``           4            parallel environment copies
``num_steps``          256          rollout length per copy per iteration (N = 1024)
``gamma``              0.99         discount γ
``lam``                0.97         GAE λ
``delta``              0.01         KL radius δ
``cg_iters``           10           conjugate-gradient iterations
``damping``            0.1          ν added to the Fisher matrix
``backtrack_coeff``    0.8          line-search shrink factor
``max_backtracks``     10           line-search steps after the full step
``accept_ratio``       0.0          minimum actual / expected improvement
``fvp_subsample``      1.0          fraction of the batch used for Fisher products
``norm_adv``           True         standardise advantages over the batch
``vf_lr``              1e-3         Adam learning rate of the value function
``vf_epochs``          10           passes of value regression per iteration
``vf_minibatches``     8            minibatches per pass
``hidden``             (64, 64)     hidden widths of both networks (tanh)
``log_std_init``       0.0          initial log σ (Gaussian policies only)
=====================  ===========  ====================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.distributions import kl_divergence

from harl_mini.advantages import gae
from harl_mini.algos.common import (History, Tracker, check_finite_loss, evaluate, explained_variance, make_policy,
                                    resolve_config, setup)
from harl_mini.errors import HarlMiniError
from harl_mini.losses import ratio, surrogate_objective
from harl_mini.nets import ValueNet, flat_grad, flat_params, set_flat_params
from harl_mini.rollout import collect
from harl_mini.trust_region import trpo_step

__all__ = ["TRPOConfig", "PRESETS", "make_fvp", "make_fvp_gn", "train", "evaluate"]


@dataclass
class TRPOConfig:
    """TRPO hyperparameters; see the module docstring for the meaning of each."""

    num_envs: int = 4
    num_steps: int = 256
    gamma: float = 0.99
    lam: float = 0.97
    delta: float = 0.01
    cg_iters: int = 10
    damping: float = 0.1
    backtrack_coeff: float = 0.8
    max_backtracks: int = 10
    accept_ratio: float = 0.0
    fvp_subsample: float = 1.0
    norm_adv: bool = True
    vf_lr: float = 1e-3
    vf_epochs: int = 10
    vf_minibatches: int = 8
    hidden: tuple[int, ...] = (64, 64)
    log_std_init: float = 0.0


#: Per-environment overrides of the defaults (used by ``python -m harl_mini.algos.run``).
PRESETS: dict[str, dict] = {
    "gym:Pendulum-v1": dict(num_envs=4, num_steps=512, gamma=0.9, lam=0.95),
}


def make_fvp(policy, obs: torch.Tensor, method: str = "double_backprop"):
    """v ↦ F v at the policy's current parameters θ_old, by double backpropagation.

    F is the Hessian of the mean KL(π_old(·|s) ‖ π_θ(·|s)) over ``obs`` [n, D] at θ = θ_old
    (the Fisher information matrix of the policy, averaged over states): with
    k(θ) = mean KL, F v = ∇_θ (∇_θ k · v). The gradient ∇_θ k is built once with
    ``create_graph=True`` and reused for every product (10 per CG solve).

    ``method="gauss_newton"`` gives the same matrix by another route (:func:`make_fvp_gn`):
    F = E_s[Jᵀ M J], J the Jacobian of the distribution's parameters (logits, or μ and
    log σ) and M the Fisher matrix of the distribution in those parameters, evaluated with
    one forward-mode and one reverse-mode pass per product. No second derivative of the
    network is taken, which matters for layers whose double backward is slow (LayerNorm:
    about 5× here).
    """
    if method == "gauss_newton":
        return make_fvp_gn(policy, obs)
    if method != "double_backprop":
        raise HarlMiniError(f"make_fvp: unknown method {method!r}; available: double_backprop, gauss_newton")
    with torch.no_grad():
        old = policy.distribution(obs)                                                         # π_old, no gradient
    mean_kl = kl_divergence(old, policy.distribution(obs)).mean()                              # [4]
    grad_kl = flat_grad(mean_kl, policy, create_graph=True)                                    # [4]

    def fisher_vector_product(v: torch.Tensor) -> torch.Tensor:
        return flat_grad(grad_kl @ v, policy, retain_graph=True)                               # [4]

    return fisher_vector_product


def make_fvp_gn(policy, obs: torch.Tensor):
    """v ↦ F v = mean_s Jᵀ M J v at θ_old, for a CategoricalPolicy or a GaussianPolicy.

    The KL between members of one family, KL(p_{η_old} ‖ p_η), has Hessian M(η_old) in the
    distribution's parameters η, and its gradient vanishes at η = η_old, so the chain rule
    gives ∇²_θ KL = Jᵀ M J at θ_old (the Gauss–Newton form is exact there). Per state:

    * Categorical, η = logits z: M u = p ⊙ u − p (pᵀu) (softmax covariance);
    * diagonal Gaussian, η = (μ, log σ): M = diag(1/σ², 2) (no cross term).

    J v comes from :func:`linearize` (the network's forward-mode derivative written out for
    Linear, Tanh, ReLU and LayerNorm layers, from activations saved once per solve; other
    layers fall back to :func:`torch.func.jvp`), and Jᵀ(M J v) from one backward pass
    through a graph of the network's output built once and kept for every product of the
    CG solve (the reverse pass needs no new forward). Same matrix as :func:`make_fvp`
    (tests compare them).
    """
    import warnings

    with warnings.catch_warnings():  # torch 2.13 warns about torch.jit.script while importing torch.func
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.func import functional_call, jvp

    from harl_mini.nets import CategoricalPolicy, GaussianPolicy, _params

    if isinstance(policy, CategoricalPolicy):
        net = policy.logits_net
    elif isinstance(policy, GaussianPolicy):
        net = policy.mu_net
    else:
        raise HarlMiniError(f"make_fvp_gn: expected a CategoricalPolicy or GaussianPolicy, got {type(policy).__name__}")
    params = _params(policy)                                      # the flat order of θ
    names = {id(p): n for n, p in policy.named_parameters()}
    net_names = {id(p): n for n, p in net.named_parameters()}
    net_params = [p for p in params if id(p) in net_names]
    sizes = [p.numel() for p in params]
    n = obs.shape[0]
    with torch.enable_grad():
        y, jvp_of = linearize(net, obs)                           # y kept: Jᵀ u for every product
    out_old = y.detach()
    with torch.no_grad():
        if isinstance(policy, CategoricalPolicy):
            prob = torch.softmax(out_old, dim=-1)
        else:
            inv_var = torch.exp(-2.0 * policy.log_std.detach())

    def out(*ps):
        return functional_call(net, {net_names[id(p)]: q for p, q in zip(net_params, ps)}, (obs,))

    def fisher_vector_product(v: torch.Tensor) -> torch.Tensor:
        chunks = dict(zip((id(p) for p in params), torch.split(v, sizes)))
        tangents = tuple(chunks[id(p)].view_as(p) for p in net_params)
        if jvp_of is not None:
            jv = jvp_of({id(p): t for p, t in zip(net_params, tangents)})                     # J v, [n, K]
        else:
            with warnings.catch_warnings():  # the first jvp call warns about torch.jit.script (torch 2.13)
                warnings.simplefilter("ignore", DeprecationWarning)
                _, jv = jvp(out, tuple(p.detach() for p in net_params), tangents)            # J v, [n, K]
        if isinstance(policy, CategoricalPolicy):
            mjv = prob * jv - prob * (prob * jv).sum(-1, keepdim=True)
        else:
            mjv = jv * inv_var
        grads = torch.autograd.grad(y, net_params, grad_outputs=mjv / n, allow_unused=True, retain_graph=True)
        by_id = {id(p): g for p, g in zip(net_params, grads)}
        pieces = []
        for p in params:
            if id(p) in by_id:
                g = by_id[id(p)]
                pieces.append((torch.zeros_like(p) if g is None else g).reshape(-1))
            elif names.get(id(p), "").endswith("log_std"):
                pieces.append(2.0 * chunks[id(p)])                  # M = 2 per log σ entry, shared by all states
            else:  # pragma: no cover - policies have no other parameters
                raise HarlMiniError(f"make_fvp_gn: unexpected parameter {names.get(id(p))!r}")
        return torch.cat(pieces)

    return fisher_vector_product


def linearize(net: torch.nn.Module, x: torch.Tensor):
    """``(y, jvp_of)``: the output y = net(x) (with its autograd graph) and a function that
    maps parameter tangents ``{id(p): dp}`` to J·dp = Σ_p ∂y/∂p · dp, the network's
    forward-mode derivative at these parameters and this input (x itself is constant).

    ``net`` must be an ``nn.Sequential`` of Linear, Tanh, ReLU and LayerNorm layers (what
    :func:`harl_mini.nets.mlp` and :func:`harl_mini.marl.actors.with_layer_norms` build);
    for anything else ``jvp_of`` is None and the caller uses :func:`torch.func.jvp`. The
    forward saves, per layer, what its derivative needs, so each product is a few matrix
    products and elementwise operations, with no dual tensors::

        Linear     z = h Wᵀ + b              dz = dh Wᵀ + h dWᵀ + db
        Tanh       y = tanh z                dy = (1 − y²) ⊙ dz
        ReLU       y = max(z, 0)             dy = 1[z > 0] ⊙ dz
        LayerNorm  x̂ = (x − μ)/σ, y = γ x̂ + β
                   dx̂ = (dx − mean(dx) − x̂ ⊙ mean(x̂ ⊙ dx)) / σ,   dy = γ dx̂ + dγ x̂ + dβ

    (μ, σ² the mean and biased variance over the last dimension, σ = √(σ² + ε)).
    """
    nn = torch.nn
    layers = list(net) if isinstance(net, nn.Sequential) else [net]
    def known(m) -> bool:
        if isinstance(m, nn.LayerNorm):  # with weight and bias, over the last dimension
            return m.elementwise_affine and m.bias is not None and len(m.normalized_shape) == 1
        return isinstance(m, (nn.Linear, nn.Tanh, nn.ReLU))

    ok = all(known(m) for m in layers)
    y = net(x)
    if not ok:
        return y, None
    saved = []                                     # per layer: (module, what its derivative needs)
    with torch.no_grad():
        h = x
        for m in layers:
            if isinstance(m, nn.Linear):
                saved.append((m, h))
                h = m(h)
            elif isinstance(m, nn.Tanh):
                h = m(h)
                saved.append((m, 1.0 - h * h))
            elif isinstance(m, nn.ReLU):
                saved.append((m, (h > 0).to(h.dtype)))
                h = m(h)
            else:
                mu = h.mean(-1, keepdim=True)
                inv_sigma = torch.rsqrt(h.var(-1, unbiased=False, keepdim=True) + m.eps)
                x_hat = (h - mu) * inv_sigma
                saved.append((m, (x_hat, inv_sigma)))
                h = m(h)

    def jvp_of(tangent: dict) -> torch.Tensor:
        dh = None                                  # the input is constant
        for m, keep in saved:
            if isinstance(m, nn.Linear):
                dz = torch.addmm(tangent[id(m.bias)], keep, tangent[id(m.weight)].T) if m.bias is not None \
                    else keep @ tangent[id(m.weight)].T
                dh = dz if dh is None else torch.addmm(dz, dh, m.weight.detach().T)
            elif isinstance(m, (nn.Tanh, nn.ReLU)):
                dh = None if dh is None else dh.mul_(keep)           # dh is always a fresh tensor here
            else:
                x_hat, inv_sigma = keep
                out = torch.addcmul(tangent[id(m.bias)], x_hat, tangent[id(m.weight)])   # dγ x̂ + dβ
                if dh is not None:
                    d_hat = dh - dh.mean(-1, keepdim=True)
                    d_hat.addcmul_(x_hat, (x_hat * dh).mean(-1, keepdim=True), value=-1.0).mul_(inv_sigma)
                    out.addcmul_(d_hat, m.weight.detach())                                   # + γ dx̂
                dh = out
        return dh

    return y, jvp_of


def train(env, steps: int, seed: int = 0, device="cpu", progress: bool = True, log=None, **hparams) -> History:
    """Train a TRPO agent for ``steps`` environment steps; return its :class:`History`.

    ``env`` is a registry name (``"gym:CartPole-v1"``) or a harl_mini VecEnv;
    ``hparams`` override :class:`TRPOConfig`. Same seed ⇒ same result (on CPU).
    """
    cfg = resolve_config(TRPOConfig, hparams)
    env = setup(env, steps, seed, device, cfg.num_envs)
    policy = make_policy(env, cfg.hidden, cfg.log_std_init, device)
    value_fn = ValueNet(env.obs_dim, cfg.hidden).to(device)
    vf_optimizer = torch.optim.Adam(value_fn.parameters(), lr=cfg.vf_lr)
    batch_size = env.num_envs * cfg.num_steps
    iterations = max(1, steps // batch_size)  # whole iterations, never more than `steps` (unless < 1 batch)
    history = History(policy=policy, value_fn=value_fn, config=asdict(cfg))
    tracker = Tracker(history, iterations * batch_size, progress, log, desc=f"trpo {env.name}")

    for it in range(iterations):
        # ---- collect experience with π_old and compute advantages ----
        batch = collect(env, policy, value_fn, cfg.num_steps)                                  # [1]
        adv, ret = gae(batch.rewards, batch.values, batch.next_values,                        # [1]
                       batch.terminated, batch.truncated, cfg.gamma, cfg.lam)                  # [1]
        obs = batch.obs.flatten(0, 1)
        act = batch.actions.flatten(0, 1)
        logp_old = batch.logp.flatten(0, 1)
        adv, ret = adv.flatten(), ret.flatten()
        if cfg.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)                                      # [2]

        # ---- the surrogate and its gradient g at θ_old ----
        theta_old = flat_params(policy)
        with torch.no_grad():
            old_dist = policy.distribution(obs)                                                # π_old, no gradient
        surrogate = surrogate_objective(ratio(policy.log_prob(obs, act), logp_old), adv).mean()  # [3]
        check_finite_loss(surrogate, "the TRPO surrogate", it)
        g = flat_grad(surrogate, policy)                                                       # [3]
        surrogate_old = surrogate.item()

        # ---- Fisher-vector products: Hessian of the mean KL, by double backprop ----
        if cfg.fvp_subsample < 1.0:
            n_sub = max(1, int(cfg.fvp_subsample * batch_size))                               # [4]
            fisher_vector_product = make_fvp(policy, obs[torch.randperm(batch_size, device=obs.device)[:n_sub]])  # [4]
        else:
            fisher_vector_product = make_fvp(policy, obs)                                      # [4]

        # ---- line-search test: surrogate gain and true KL at candidate parameters ----
        def evaluate_candidate(theta: torch.Tensor) -> tuple[float, float]:
            set_flat_params(policy, theta)
            with torch.no_grad():
                dist = policy.distribution(obs)
                gain = surrogate_objective(ratio(dist.log_prob(act), logp_old), adv).mean() - surrogate_old  # [6]
                kl = kl_divergence(old_dist, dist).mean()                                      # [6]
            return float(gain), float(kl)

        step = trpo_step(theta_old, g, fisher_vector_product, cfg.delta, evaluate_candidate,   # [5]
                         cg_iters=cfg.cg_iters, damping=cfg.damping,                           # [5]
                         backtrack_coeff=cfg.backtrack_coeff, max_backtracks=cfg.max_backtracks,  # [6]
                         accept_ratio=cfg.accept_ratio)                                        # [6]
        set_flat_params(policy, step.theta)                                                    # [6]

        # ---- value function: regression on the TD(λ) targets ----
        n_mb = max(1, batch_size // cfg.vf_minibatches)
        for _ in range(cfg.vf_epochs):                                                         # [7]
            for mb in torch.randperm(batch_size, device=obs.device).split(n_mb):              # [7]
                v_loss = ((value_fn(obs[mb]) - ret[mb]) ** 2).mean()                           # [7]
                check_finite_loss(v_loss, "the value loss", it)
                vf_optimizer.zero_grad()
                v_loss.backward()
                vf_optimizer.step()

        # ---- log one row ----
        with torch.no_grad():
            dist = policy.distribution(obs)
            tracker.record(it, batch, policy_loss=-surrogate_old, value_loss=v_loss.item(),  # [8]
                           entropy=dist.entropy().mean().item(), kl=kl_divergence(old_dist, dist).mean().item(),  # [8]
                           accepted=int(step.accepted), backtracks=len(step.line_search.history) - 1,  # [8]
                           surrogate_gain=step.line_search.improvement, expected_gain=step.expected_improvement,  # [8]
                           explained_variance=explained_variance(batch.values.flatten(), ret))  # [8]
    tracker.close()
    return history
