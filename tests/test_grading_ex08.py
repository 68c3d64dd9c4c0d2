"""The instances Exercises 8.2 and 8.3 are graded on do what their checks assume."""

import itertools

import torch

from harl_mini import tabular
from harl_mini.grading import ex08_2, ex08_3


def test_the_order_game_separates_its_six_orders():
    """check_happo_iteration identifies the student's order by J: the six J values are 5e-3 apart."""
    game, logits, batch = ex08_2.order_instance()
    by_order = ex08_2._orders_j(game, logits, batch, **ex08_2.ORDER_KW)
    values = sorted(by_order.values())
    assert len(values) == 6 and min(b - a for a, b in zip(values, values[1:])) > 5e-3


def test_on_the_example_the_sequential_update_beats_the_simultaneous_one():
    """The notebook's example (HARL's Example 1, long steps) shows the failure of Chapter 7."""
    game, logits, states, actions, adv = ex08_2.example_instance()
    kw = ex08_2.EXAMPLE_KW
    batch = (states, actions, adv)
    J0 = ex08_2._J(game, logits)
    seq = [ex08_2._J(game, ex08_2._iteration(logits, *batch, o, kw["clip_eps"], kw["epochs"], kw["lr"]))
           for o in itertools.permutations(range(2))]
    sim = ex08_2._J(game, ex08_2._iteration(logits, *batch, (0, 1), kw["clip_eps"], kw["epochs"], kw["lr"],
                                            mistake="before"))
    assert min(seq) > J0 + 0.5 and sim < J0 - 0.5


def test_the_reference_loop_reuses_the_runner_and_matches_a_hand_loop():
    game, logits, states, actions, adv = ex08_2.example_instance()
    order, eps, epochs, lr = (1, 0), 0.2, 3, 2.0
    new = ex08_2._iteration(logits, states, actions, adv, order, eps, epochs, lr)
    logp_old = [torch.log_softmax(th, -1)[states, actions[:, i]] for i, th in enumerate(logits)]
    hand, M = [th.clone() for th in logits], torch.ones_like(adv)
    for i in order:
        theta = hand[i].clone()
        for _ in range(epochs):
            theta.requires_grad_(True)
            xi = torch.exp(torch.log_softmax(theta, -1)[states, actions[:, i]] - logp_old[i])
            obj = torch.minimum(xi * M * adv, xi.clamp(1 - eps, 1 + eps) * M * adv).mean()
            theta = (theta + lr * torch.autograd.grad(obj, theta)[0]).detach()
        hand[i] = theta
        M = M * torch.exp(torch.log_softmax(theta, -1)[states, actions[:, i]] - logp_old[i])
    for a, b in zip(new, hand):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)


def test_the_kl_ball_oracle_is_on_the_boundary_and_beats_the_softmax_step():
    gen = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(3, 4, generator=gen, dtype=torch.float64), -1)
    g = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    d = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    for delta in (0.01, 0.3, 2.0):
        q = ex08_3._oracle(p, g, d, delta)
        assert abs(float((d * ex08_3._kl_rows(p, q)).sum()) - delta) < 1e-10 * max(delta, 1)
        gain = float((d * ((q - p) * g).sum(-1)).sum())
        for beta in torch.linspace(0.01, 20, 200):  # every softmax step in the ball gains less
            soft = torch.softmax(p.log() + float(beta) * g, -1)
            if float((d * ex08_3._kl_rows(p, soft)).sum()) <= delta:
                assert float((d * ((soft - p) * g).sum(-1)).sum()) <= gain + 1e-12


def test_the_agent_step_uses_the_conditioned_advantage_of_haml():
    game = tabular.random_game(2, (2, 3), gamma=0.8, seed=3)
    pis = tabular.random_policies(game, seed=1)
    new = tabular.random_policies(game, seed=2)
    g = ex08_3.conditioned_advantage(game, pis, new, (1, 0), 2)
    from harl_mini.tabular import haml
    hamo = haml.hamo(game, pis, [new[0] * 0 + pis[0], new[1]], (1, 0), 2)  # agent 0 kept: HAMO = 0
    assert float(hamo.abs().max()) < 1e-12 and float((pis[0] * g).sum(-1).abs().max()) < 1e-12
