"""Checks for Exercise 8.2: the sequential HAPPO update, assembled and graded by the exact J it reaches.

The student writes one agent's PPO epochs with the weight M·Â (``agent_update``) and the whole
iteration of Algorithm ``alg-happo`` on tabular softmax policies (``happo_iteration``): a random
order from a generator, M ← Â, then for each agent of the order its epochs and
M ← ξ^{i_m} M at the agent's *new* parameters, without gradient.

Oracles: the per-sample objective is ``harl_mini.marl.runner.happo_objective`` (Chapter 8,
eq. ``eq-happo-objective``), the M recursion ``harl_mini.marl.runner.update_factor``
(eq. ``eq-ma-estimator``), and the grade of a whole iteration is the exact J of the joint policy
it returns, ``harl_mini.tabular.game_objective``, compared with the J that the reference loop
reaches for each order of the agents.
"""

from __future__ import annotations

import itertools

import torch

from harl_mini import tabular
from harl_mini.grading.core import CheckFailed, Tolerance, as_array, register
from harl_mini.marl.runner import happo_objective, update_factor

__all__ = ["check_agent_update", "check_happo_iteration"]

F64 = torch.float64


# --------------------------------------------------------------------------- the reference


def _logp(theta: torch.Tensor, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(theta, -1)[states, actions]


def reference_agent_update(theta, states, actions, logp_old, weight, clip_eps, epochs, lr):
    """``epochs`` full-batch steps θ ← θ + η ∇_θ mean(min(ξ w, clip(ξ, 1 ± ε) w)), w detached."""
    theta = theta.detach().clone()
    weight = weight.detach()
    for _ in range(epochs):
        leaf = theta.clone().requires_grad_(True)
        xi = torch.exp(_logp(leaf, states, actions) - logp_old)
        objective = happo_objective(xi, torch.ones_like(weight), weight, clip_eps).mean()
        (grad,) = torch.autograd.grad(objective, leaf)
        theta = theta + lr * grad
    return theta


def _iteration(logits, states, actions, adv, order, clip_eps, epochs, lr, mistake=None):
    """One HAPPO iteration in the given order (``mistake``: a known wrong variant, for hints)."""
    logp_old = [_logp(th, states, actions[:, i]) for i, th in enumerate(logits)]
    new = [th.detach().clone() for th in logits]
    factor = torch.ones_like(adv)
    for i in order:
        new[i] = reference_agent_update(new[i], states, actions[:, i], logp_old[i], factor * adv,
                                        clip_eps, epochs, lr)
        logp_new = _logp(new[i], states, actions[:, i])
        if mistake == "before":  # M from the parameters before the update: the ratio is 1
            continue
        if mistake == "inverse":
            factor = update_factor(factor, logp_old[i], logp_new)
        else:
            factor = update_factor(factor, logp_new, logp_old[i])
    return new


def _undetached(logits, states, actions, adv, order, clip_eps, epochs, lr):
    """M not detached and one optimiser over every agent's logits: earlier agents move again."""
    thetas = [th.detach().clone().requires_grad_(True) for th in logits]
    logp_old = [_logp(th, states, actions[:, i]).detach() for i, th in enumerate(thetas)]
    factor = torch.ones_like(adv)
    for i in order:
        for _ in range(epochs):
            xi = torch.exp(_logp(thetas[i], states, actions[:, i]) - logp_old[i])
            objective = torch.minimum(xi * factor * adv, xi.clamp(1 - clip_eps, 1 + clip_eps) * factor * adv).mean()
            grads = torch.autograd.grad(objective, thetas, allow_unused=True, retain_graph=True)
            with torch.no_grad():
                for th, g in zip(thetas, grads):
                    if g is not None:
                        th += lr * g
        factor = factor * torch.exp(_logp(thetas[i], states, actions[:, i]) - logp_old[i])
    return [th.detach() for th in thetas]


def _J(game, logits) -> float:
    return float(tabular.game_objective(game, [torch.softmax(th, -1) for th in logits]))


# --------------------------------------------------------------------------- the inputs


def _game(ctx, S, counts, gamma, name=None):
    if name is not None:
        return tabular.make_game(name)
    seed = int(torch.randint(2**31 - 1, (), generator=ctx.gen))
    return tabular.random_game(S, counts, gamma=gamma, seed=seed, reward_range=(-1.0, 1.0))


def _batch(game, logits, B, gen):
    """States from d_π, actions from π, and the exact joint advantage A_π(s, a) of each sample."""
    pis = [torch.softmax(th, -1) for th in logits]
    d = tabular.game_visitation(game, pis) * (1 - game.gamma)
    states = torch.multinomial(d, B, replacement=True, generator=gen)
    actions = torch.stack([torch.multinomial(p[states], 1, generator=gen)[:, 0] for p in pis], 1)
    adv = tabular.game_advantage(game, pis)[(states, *actions.T)]
    return states, actions, adv


def _logits(game, gen, scale=1.0):
    return [scale * torch.randn(game.num_states, n, generator=gen, dtype=F64) for n in game.action_counts]


#: the notebook's example runs with long steps, where the simultaneous update fails (as in Chapter 7)
EXAMPLE_KW = {"clip_eps": 0.2, "epochs": 5, "lr": 10.0}


def example_instance():
    """The notebook's example: HARL's Example 1 (two agents, one state), π^i(0) = 0.7, 256 samples."""
    game = tabular.zhong_example1_game()
    p = torch.tensor([[0.7, 0.3]], dtype=F64)
    logits = [p.log(), p.log()]
    states, actions, adv = _batch(game, logits, 256, torch.Generator().manual_seed(82))
    return game, logits, states, actions, adv


def _as_logits(out, shapes, what):
    """The student's list of logit tables as float64 tensors, and whether any was float32."""
    if isinstance(out, torch.Tensor) or not isinstance(out, (list, tuple)):
        raise CheckFailed(f"{what} is a {type(out).__name__}; expected a list of {len(shapes)} logit tables, "
                          "one [S, n_i] tensor per agent (agent 0 first)")
    if len(out) != len(shapes):
        raise CheckFailed(f"{what} has {len(out)} entries; expected {len(shapes)}, one logit table per agent")
    tables, lowp = [], False
    for i, (o, shape) in enumerate(zip(out, shapes)):
        t, low = as_array(o, shape, f"{what}[{i}] (agent {i}'s logits)", broadcast=False)
        tables.append(t)
        lowp = lowp or low
    return tables, lowp


# --------------------------------------------------------------------------- (a) one agent


def _agent_inputs(ctx, S, n, B, scale_w):
    gen = ctx.gen
    theta = torch.randn(S, n, generator=gen, dtype=F64)
    states = torch.randint(S, (B,), generator=gen)
    actions = torch.randint(n, (B,), generator=gen)
    # the old policy is a nearby one (a later epoch of the same iteration starts from here)
    theta_old = theta + 0.2 * torch.randn(S, n, generator=gen, dtype=F64)
    logp_old = _logp(theta_old, states, actions)
    weight = scale_w * torch.randn(B, generator=gen, dtype=F64)
    return theta, states, actions, logp_old, weight


@register(function="agent_update", equation="eq-happo-objective",
          parts={"one epoch": 1, "several epochs: the ratio moves": 1, "clipping is active": 1})
def check_agent_update(student_fn, ctx) -> None:
    """``student_fn(theta, states, actions, logp_old, weight, clip_eps, epochs, lr)``: the policy after the epochs.

    Compared: softmax of the returned logits (so logits shifted by a constant per state, which
    give the same policy, are accepted) with the reference's, state by state.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|π(a|s)| (float64 answers), ≤ 1e-5 + 1e-4·|π(a|s)|
    (float32 answers); the same full-batch steps in another order of float operations differ by
    about 1e-15.
    """
    def run(S, n, B, clip_eps, epochs, lr, scale_w=1.0):
        theta, states, actions, logp_old, weight = _agent_inputs(ctx, S, n, B, scale_w)
        out = ctx.call(theta, states, actions, logp_old, weight, clip_eps, epochs, lr)
        got, lowp = as_array(out, (S, n), "the new logits", broadcast=False)
        want = reference_agent_update(theta, states, actions, logp_old, weight, clip_eps, epochs, lr)
        probs = torch.softmax(got, -1)

        def alt(fn):
            return lambda: torch.softmax(fn(), -1)

        xi0 = torch.exp(_logp(theta, states, actions) - logp_old)
        ctx.close(probs.float() if lowp else probs, torch.softmax(want, -1),
                  f"the new policy after {epochs} epoch(s) (S={S}, n={n}, B={B}, clip_eps={clip_eps:g}, lr={lr:g})",
                  where=lambda idx: f"state {idx[0]}, action {idx[1]}",
                  describe=lambda idx: f"ratios at the start from {float(xi0.min()):.3g} to {float(xi0.max()):.3g}; "
                                       f"weights from {float(weight.min()):.3g} to {float(weight.max()):.3g}",
                  hints=[(alt(lambda: theta - (want - theta)),
                          "gradient ascent: θ ← θ + η ∇θ objective (the objective is maximised; a loss would be "
                          "minimised)"),
                         (alt(lambda: _frozen(theta, states, actions, logp_old, weight, clip_eps, epochs, lr)),
                          "recompute the ratio ξ = π_θ(a|s)/π_old(a|s) at the current θ in every epoch"),
                         (alt(lambda: _variant(theta, states, actions, logp_old, weight, clip_eps, epochs, lr, "max")),
                          "take the minimum of the two terms, not the maximum"),
                         (alt(lambda: _variant(theta, states, actions, logp_old, weight, clip_eps, epochs, lr, "sum")),
                          "average over the batch (mean), do not sum"),
                         (alt(lambda: _variant(theta, states, actions, logp_old, weight, clip_eps, epochs, lr,
                                               "unclipped")),
                          "clip the ratio: min(ξ w, clip(ξ, 1 − ε, 1 + ε) w)")])

    with ctx.part("one epoch"):
        run(1, 3, 64, 0.2, 1, 0.5)
        run(3, 2, int(torch.randint(20, 80, (), generator=ctx.gen)), 0.2, 1, 0.5)
    with ctx.part("several epochs: the ratio moves"):
        run(2, 3, 96, 0.2, 5, 0.5)
        run(int(torch.randint(1, 4, (), generator=ctx.gen)), 4, 64, 0.3, 4, 0.5)
    with ctx.part("clipping is active"):
        run(2, 3, 64, 0.1, 6, 3.0, scale_w=2.0)


def _frozen(theta, states, actions, logp_old, weight, clip_eps, epochs, lr):
    """The gradient of the first epoch, repeated (the ratio is never recomputed)."""
    leaf = theta.clone().requires_grad_(True)
    xi = torch.exp(_logp(leaf, states, actions) - logp_old)
    (grad,) = torch.autograd.grad(happo_objective(xi, torch.ones_like(weight), weight, clip_eps).mean(), leaf)
    return theta + epochs * lr * grad


def _variant(theta, states, actions, logp_old, weight, clip_eps, epochs, lr, kind):
    theta = theta.clone()
    for _ in range(epochs):
        leaf = theta.clone().requires_grad_(True)
        xi = torch.exp(_logp(leaf, states, actions) - logp_old)
        clipped = xi.clamp(1 - clip_eps, 1 + clip_eps) * weight
        if kind == "max":
            terms = torch.maximum(xi * weight, clipped)
        elif kind == "unclipped":
            terms = xi * weight
        else:
            terms = torch.minimum(xi * weight, clipped)
        objective = terms.sum() if kind == "sum" else terms.mean()
        (grad,) = torch.autograd.grad(objective, leaf)
        theta = theta + lr * grad
    return theta


# --------------------------------------------------------------------------- (b) the whole iteration


EPOCHS, LR, CLIP = 5, 1.0, 0.2


def _kw(kw):
    return {"clip_eps": CLIP, "epochs": EPOCHS, "lr": LR, **kw}


def _orders_j(game, logits, batch, **kw):
    """J of the reference iteration for every order of the agents."""
    kw = _kw(kw)
    return {order: _J(game, _iteration(logits, *batch, order, kw["clip_eps"], kw["epochs"], kw["lr"]))
            for order in itertools.permutations(range(game.num_agents))}


def _match(J_got: float, by_order: dict, tol: Tolerance) -> tuple | None:
    best = min(by_order, key=lambda o: abs(by_order[o] - J_got))
    return best if abs(by_order[best] - J_got) <= tol.atol + tol.rtol * abs(by_order[best]) else None


def _graded_j(ctx, game, logits, batch, seed, **kw):
    """Call the student's iteration; return J of its joint policy and whether it came back in float32."""
    kw = _kw(kw)
    gen = torch.Generator().manual_seed(seed)
    shapes = [tuple(th.shape) for th in logits]
    out = ctx.call([th.clone() for th in logits], *batch, gen, kw["clip_eps"], kw["epochs"], kw["lr"])
    tables, lowp = _as_logits(out, shapes, "your new logits")
    return _J(game, tables), lowp


def _one_game(ctx, game, logits, batch, seed, where, **kw):
    """The student's J must be the reference's J for one of the orders; hints for the known mistakes.

    The order ``torch.randperm(n, generator)`` draws from the seed is tried first (one run of the
    reference); the other n! − 1 orders only when it does not match.
    """
    kw = _kw(kw)
    eps, epochs, lr = kw["clip_eps"], kw["epochs"], kw["lr"]
    J_got, lowp = _graded_j(ctx, game, logits, batch, seed, **kw)
    tol = ctx.tol32 if lowp else ctx.tol
    N = game.num_agents
    likely = tuple(int(i) for i in torch.randperm(N, generator=torch.Generator().manual_seed(seed)))
    J_likely = _J(game, _iteration(logits, *batch, likely, eps, epochs, lr))
    if _match(J_got, {likely: J_likely}, tol) is not None:
        return likely
    by_order = _orders_j(game, logits, batch, **kw)
    order = _match(J_got, by_order, tol)
    if order is not None:
        return order
    J_old = _J(game, logits)
    orders = list(by_order)
    hints = [("before", "M must be updated with each agent's ratio at its NEW parameters, after its epochs "
                        "(computed before the update the ratio is 1, and the agents update as if simultaneously)"),
             ("inverse", "M ← (π_new/π_old) M, the new over the old policy of the agent just updated"),
             ("undetached", "M must carry no gradient: detach it (or compute it under torch.no_grad()), so that a "
                            "later agent's loss does not move the earlier agents' parameters")]
    hint = None
    for mistake, text in (hints if N <= 3 else []):  # (n! orders each: only for small teams)
        for o in orders:
            if mistake == "undetached":
                alt = _J(game, _undetached(logits, *batch, o, eps, epochs, lr))
            else:
                alt = _J(game, _iteration(logits, *batch, o, eps, epochs, lr, mistake=mistake))
            if abs(alt - J_got) <= tol.atol + tol.rtol * abs(alt):
                hint = text
                break
        if hint:
            break
    shown = ", ".join(f"{o}: {j:.6g}" for o, j in list(by_order.items())[:6])
    raise CheckFailed(f"the exact J of your new joint policy is {J_got:.8g} ({where}), but the sequential HAPPO "
                      f"update reaches, by order, {shown}{' …' if len(orders) > 6 else ''} (J before: {J_old:.6g})",
                      input=f"{N} agents, {game.num_states} state(s), {len(batch[0])} samples, clip_eps={eps:g}, "
                            f"epochs={epochs}, lr={lr:g}", hint=hint)


#: the fixed game of the order part: one state, three agents with two actions, whose six orders
#: lead to J values at least 5e-3 apart (tests/test_grading_ex08.py checks it)
ORDER_GAME_SEED, ORDER_B, ORDER_KW = 14, 48, {"epochs": 2, "lr": 2.0}


def order_instance():
    """One-state three-agent game and batch of the order part (every order gives another J)."""
    game = tabular.random_game(1, (2, 2, 2), gamma=0.0, seed=ORDER_GAME_SEED, reward_range=(-1.0, 1.0))
    gen = torch.Generator().manual_seed(ORDER_GAME_SEED)
    logits = _logits(game, gen)
    return game, logits, _batch(game, logits, ORDER_B, gen)


@register(function="happo_iteration", equation="alg-happo",
          parts={"HARL's Example 1 (the notebook's example)": 1, "three agents, random Markov games": 1,
                 "four agents": 1, "the order comes from the generator": 1},
          tol=Tolerance(atol=1e-9, rtol=1e-7))
def check_happo_iteration(student_fn, ctx) -> None:
    """``student_fn(logits, states, actions, adv, generator, clip_eps, epochs, lr)``: one whole HAPPO iteration.

    Graded by the exact J (``harl_mini.tabular.game_objective``) of the joint policy
    softmax(new logits): it must equal the J the reference loop reaches for one of the n!
    orders (the order is yours to draw from the generator). Then the order must come from the
    generator: the same seed gives the same J, and 30 seeds give at least 4 of the 6 orders of
    a three-agent game (a uniform draw fails this with probability below 1e-7).

    Tolerance: |J − J_order| ≤ 1e-9 + 1e-7·|J_order| (float64 answers), ≤ 1e-5 + 1e-4·|J_order|
    (float32 answers). The iteration is deterministic given the batch and the order; other orders
    of float operations move J by about 1e-14, while the known mistakes move it by more than 1e-5
    on these games.
    """
    with ctx.part("HARL's Example 1 (the notebook's example)"):
        game, logits, states, actions, adv = example_instance()
        _one_game(ctx, game, logits, (states, actions, adv), 0, "HARL's Example 1", **EXAMPLE_KW)
    with ctx.part("three agents, random Markov games"):
        for S, counts, gamma in [(2, (2, 3, 2), 0.9), (3, (3, 2, 2), 0.8)]:
            game = _game(ctx, S, counts, gamma)
            logits = _logits(game, ctx.gen)
            batch = _batch(game, logits, 128, ctx.gen)
            _one_game(ctx, game, logits, batch, int(torch.randint(2**31 - 1, (), generator=ctx.gen)),
                      f"a random game with {S} states")
    with ctx.part("four agents"):
        game = _game(ctx, 2, (2, 2, 3, 2), 0.9)
        logits = _logits(game, ctx.gen)
        batch = _batch(game, logits, 96, ctx.gen)
        _one_game(ctx, game, logits, batch, int(torch.randint(2**31 - 1, (), generator=ctx.gen)),
                  "a random four-agent game")
    with ctx.part("the order comes from the generator"):
        game, logits, batch = order_instance()
        kw = ORDER_KW
        by_order = _orders_j(game, logits, batch, **kw)
        seeds = [int(s) for s in torch.randint(2**31 - 1, (30,), generator=ctx.gen)]
        seen = {}
        for seed in seeds:
            J_got, lowp = _graded_j(ctx, game, logits, batch, seed, **kw)
            order = _match(J_got, by_order, ctx.tol32 if lowp else ctx.tol)
            if order is None:
                raise CheckFailed(f"with generator seed {seed} the exact J of your joint policy is {J_got:.8g}, "
                                  "which no order of the sequential update gives",
                                  input="one state, three agents with two actions, 48 samples, epochs=2, lr=2")
            seen[seed] = order
        for seed in seeds[:8]:
            again, lowp = _graded_j(ctx, game, logits, batch, seed, **kw)
            if _match(again, by_order, ctx.tol32 if lowp else ctx.tol) != seen[seed]:
                raise CheckFailed(f"two generators seeded with {seed} gave different orders "
                                  f"({seen[seed]} and another): the order must come from the generator",
                                  hint="draw the order from the generator you are given, e.g. "
                                       "torch.randperm(n, generator=generator), not from the global RNG")
        if len(set(seen.values())) < 4:
            raise CheckFailed(f"30 generator seeds gave only the orders {sorted(set(seen.values()))} of 6",
                              hint="draw a fresh uniformly random order from the generator at every call "
                                   "(Theorem 3 needs every order to have positive probability)")
