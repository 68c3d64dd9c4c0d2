"""Checks for Exercise 3.3: compatible function approximation with any critic.

Oracles: ``harl_mini.tabular.compatible_weights`` (the minimum-norm minimiser of Chapter 3,
eq. ``eq-compatible-error``, in closed form; the unit tests check it against a weighted
least-squares solve with a pseudo-inverse) and ``harl_mini.tabular.compatible_error`` (the error
of each state for given weights). With Q = Q_π and ρ = ρ_π the weights are (1 − γ) F⁺∇J
(theorem ``thm-compatible``), which the first part also compares with
``harl_mini.tabular.natural_gradient``.

Tolerances: 1e-8 + 1e-6·|expected| entrywise for float64 answers, 1e-5 + 1e-4·|expected| for float32
answers; the expected values are sums of a few products of numbers below 100.
"""

from __future__ import annotations

import torch

from harl_mini.grading.core import register
from harl_mini.tabular import (
    compatible_error,
    compatible_weights,
    natural_gradient,
    q_value,
    random_logits,
    random_mdp,
    softmax_policy,
    visitation,
)

__all__ = ["check_compatible_weights", "check_min_compatible_error"]

f64 = torch.float64


def _seed(ctx) -> int:
    return int(torch.randint(2**31 - 1, (), generator=ctx.gen))


def _cases(ctx):
    """Part name -> (pi, rho, Q, words, natural gradient × (1 − γ) or None)."""
    mdp = random_mdp(4, 3, gamma=0.8, seed=_seed(ctx))
    theta = random_logits(mdp, seed=_seed(ctx))
    pi = softmax_policy(theta)
    theorem = (pi, visitation(mdp, pi), q_value(mdp, pi), f"Q = Q_π and ρ = ρ_π of {mdp.name}, gamma={mdp.gamma:g}",
               (1 - mdp.gamma) * natural_gradient(mdp, theta))
    cases = {"Q = Q_pi and rho = rho_pi (the theorem)": [theorem]}
    critics = []
    for S, A in [(3, 2), (int(torch.randint(2, 7, (), generator=ctx.gen)), int(torch.randint(2, 5, (), generator=ctx.gen)))]:
        pi = torch.softmax(1.5 * torch.randn(S, A, generator=ctx.gen, dtype=f64), -1)
        rho = torch.rand(S, generator=ctx.gen, dtype=f64) * 3 + 0.1
        Q = 4 * torch.randn(S, A, generator=ctx.gen, dtype=f64) + 2
        critics.append((pi, rho, Q, f"a random critic Q with S={S}, A={A} and state weights ρ > 0", None))
    cases["any critic Q"] = critics
    S, A = 5, 3
    pi = torch.softmax(1.5 * torch.randn(S, A, generator=ctx.gen, dtype=f64), -1)
    rho = torch.rand(S, generator=ctx.gen, dtype=f64) + 0.1
    zero = int(torch.randint(S, (), generator=ctx.gen))
    rho[zero] = 0.0
    cases["a state with rho(s) = 0"] = [(pi, rho, 3 * torch.randn(S, A, generator=ctx.gen, dtype=f64),
                                         f"a random critic with S={S}, A={A}; ρ({zero}) = 0", None)]
    pi = torch.softmax(6.0 * torch.randn(4, 3, generator=ctx.gen, dtype=f64), -1)
    cases["a nearly deterministic policy"] = [(pi, torch.rand(4, generator=ctx.gen, dtype=f64) + 0.1,
                                               3 * torch.randn(4, 3, generator=ctx.gen, dtype=f64),
                                               "a policy with logits of scale 6 (some π(a|s) below 1e-4)", None)]
    return cases


def _unweighted_fit(pi, rho, Q):
    """Least squares without the weights π(a|s) (for a hint)."""
    S, A = pi.shape
    w = torch.zeros_like(Q)
    for s in range(S):
        if rho[s] > 0:
            psi = torch.eye(A, dtype=f64) - pi[s]  # row a: the feature of (s, a)
            w[s] = torch.linalg.pinv(psi, rtol=1e-12) @ Q[s]
    return w


@register(function="compatible_weights", equation="eq-compatible-error",
          parts={"Q = Q_pi and rho = rho_pi (the theorem)": 1, "any critic Q": 1, "a state with rho(s) = 0": 1,
                 "a nearly deterministic policy": 1})
def check_compatible_weights(student_fn, ctx) -> None:
    """``student_fn(pi, rho, Q)`` returns w* [S, A], the minimiser of smallest norm of the compatible error.

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|w*| entrywise (float64 answers), ≤ 1e-5 + 1e-4·|w*|
    (float32 answers).
    """
    for part, items in _cases(ctx).items():
        with ctx.part(part):
            for pi, rho, Q, words, natural in items:
                want = compatible_weights(pi, rho, Q)
                if natural is not None:  # the theorem, from the other side
                    assert torch.allclose(want, natural, atol=1e-9), "oracle disagreement"
                out = ctx.call(pi, rho, Q)
                live = (rho > 0)[:, None]
                fit = Q - (pi * Q).sum(-1, keepdim=True)
                ctx.close(out, want, f"w* ({words})", where=lambda idx: f"state s={idx[0]}, action a={idx[1]}",
                          describe=lambda idx, words=words: words,
                          hints=[(lambda: torch.where(live, fit, 0.0),
                                  "Q − Σ_b π(b|s) Q(s, b) is the best fit f itself and minimises the error, but "
                                  "it is not the smallest w: any w_s + c·1 gives the same f; take c so that "
                                  "w_s sums to 0"),
                                 (lambda: torch.where(live, Q, 0.0),
                                  "Q minimises the error too, but it is not the solution of smallest norm"),
                                 (lambda: Q - Q.mean(-1, keepdim=True),
                                  "a state with ρ(s) = 0 does not enter the error: its minimum-norm weights are 0"),
                                 (lambda: _unweighted_fit(pi, rho, Q),
                                  "the error weights each action by π(a|s)")])


@register(function="min_compatible_error", equation="eq-compatible-error",
          parts={"Q = Q_pi and rho = rho_pi (the theorem)": 1, "any critic Q": 1, "a state with rho(s) = 0": 1,
                 "a nearly deterministic policy": 1})
def check_min_compatible_error(student_fn, ctx) -> None:
    """``student_fn(pi, rho, Q)`` returns, for each state, ρ(s) Σ_a π(a|s) (f_w*(s, a) − Q(s, a))², shape [S].

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| entrywise (float64 answers), ≤ 1e-5 + 1e-4·|expected|
    (float32 answers).
    """
    for part, items in _cases(ctx).items():
        with ctx.part(part):
            for pi, rho, Q, words, _ in items:
                want = compatible_error(pi, rho, Q, compatible_weights(pi, rho, Q))
                out = ctx.call(pi, rho, Q)
                V_Q = (pi * Q).sum(-1)
                ctx.close(out, want, f"the smallest error of each state ({words})", where=lambda idx: f"state s={idx[0]}",
                          describe=lambda idx, words=words: words,
                          hints=[(lambda: rho * Q.mean(-1) ** 2,
                                  "the compatible features are centred under π: f_w(s, a) = w_{s,a} − "
                                  "Σ_b π(b|s) w_{s,b}, so the residual is −Σ_b π(b|s) Q(s, b)"),
                                 (lambda: V_Q ** 2, "each state's error carries its weight ρ(s)"),
                                 (lambda: rho * Q.shape[1] * V_Q ** 2, "weight the actions by π(a|s), do not sum them"),
                                 (lambda: rho * (pi * (Q - V_Q[:, None]) ** 2).sum(-1),
                                  "that is the part of Q the features explain, Var_π Q(s, ·); the error is what "
                                  "they cannot explain")])
