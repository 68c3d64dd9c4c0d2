"""The trust-region step of TRPO (and, per agent, of HATRPO), in one place.

Every TRPO-style update in harl_mini — the exact tabular one of Chapter 4, the sampled one
on neural policies, and HATRPO's per-agent step — goes through :func:`trpo_step`:

1. solve ``(F + νI) s = g`` for the search direction by conjugate gradient, where ``g`` is
   the gradient of the surrogate and ``F`` (the Fisher matrix, i.e. the Hessian of the mean
   KL at the old parameters) is only available through products ``v ↦ F v``;
2. scale the direction to the edge of the quadratic trust region,
   ``β = sqrt(2δ / sᵀ(F + νI)s)``, so that ½ (βs)ᵀ F (βs) ≈ δ;
3. backtrack along ``βs`` (fractions 1, c, c², …) until the *true* KL is at most δ and the
   surrogate improves; if no fraction passes, keep the old parameters.

Symbols (Schulman et al. 2015, §5 and Appendix C):

=============  =======  ====================================================
Symbol         Shape    Meaning
=============  =======  ====================================================
``theta``      [P]      flat parameter vector θ_old
``g``          [P]      ∇_θ L(θ) at θ_old (surrogate gradient = policy gradient)
``Fvp``        [P]→[P]  v ↦ F v, the Fisher-vector product at θ_old
``delta``      scalar   KL radius δ
``damping``    scalar   ν added to F (numerical safety; 0 in the exact tabular case)
``s``          [P]      CG solution of (F + νI) s = g
``beta``       scalar   sqrt(2δ / sᵀ(F + νI)s)
=============  =======  ====================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from harl_mini.errors import HarlMiniError

__all__ = ["conjugate_gradient", "max_step_length", "LineSearchResult", "backtracking_line_search",
           "TRPOStepResult", "trpo_step"]


def conjugate_gradient(Avp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int = 10,
                       residual_tol: float = 1e-10) -> torch.Tensor:
    """Approximately solve ``A x = b`` for symmetric positive-definite ``A`` given ``v ↦ A v``.

    Implements the search direction of Chapter 4, eq. ``eq-trpo-direction``: s ≈ F⁻¹ g.
    Starts from x = 0 and runs at most ``iters`` iterations (TRPO uses 10); stops early
    once the squared residual ‖b − A x‖² falls below ``residual_tol``. The k-th iterate
    minimises ½ xᵀA x − bᵀx over the Krylov space span{b, Ab, …, A^{k−1}b}, so in exact
    arithmetic it is exact after at most ``len(b)`` iterations (as many as A has distinct
    eigenvalues). The local ``alpha`` is CG's own step length, not the book's α.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = torch.dot(r, r)
    for _ in range(int(iters)):
        if rr <= residual_tol:
            break
        Ap = Avp(p)
        pAp = torch.dot(p, Ap)
        if not torch.isfinite(pAp) or pAp <= 0:
            raise HarlMiniError(f"conjugate_gradient: the matrix is not positive definite along p (pᵀAp = {float(pAp):.3g})")
        alpha = rr / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def max_step_length(s: torch.Tensor, Fs: torch.Tensor, delta: float) -> float:
    """β = sqrt(2δ / sᵀF s): the step βs reaches the edge of the quadratic KL ball.

    Implements Chapter 4, eq. ``eq-trpo-step``: with KL ≈ ½ Δθᵀ F Δθ, the largest step along
    s that keeps the quadratic model at δ has length β.
    """
    sFs = float(torch.dot(s, Fs))
    if not sFs > 0.0:
        raise HarlMiniError(f"max_step_length: sᵀFs must be positive, got {sFs:.3g}")
    return math.sqrt(2.0 * float(delta) / sFs)


@dataclass
class LineSearchResult:
    """Outcome of :func:`backtracking_line_search`.

    ``history`` lists every fraction tried as ``(fraction, improvement, kl, verdict)``, so a
    reader can see what was rejected and why ("kl > delta", "no improvement", ...).
    """

    accepted: bool
    fraction: float
    improvement: float
    kl: float
    history: list[tuple[float, float, float, str]] = field(default_factory=list)


def backtracking_line_search(evaluate: Callable[[float], tuple[float, float]], expected_improvement: float,
                             delta: float, backtrack_coeff: float = 0.8, max_backtracks: int = 10,
                             accept_ratio: float = 0.0) -> LineSearchResult:
    """Try fractions 1, c, c², … of the full step; accept the first that satisfies both tests.

    Implements the line search of Chapter 4 (``alg-trpo``): a fraction f is accepted iff
    ``kl(f) ≤ δ`` **and** ``improvement(f) > 0`` **and** ``improvement(f) ≥ accept_ratio ·
    f · expected_improvement`` (the last test is off when ``accept_ratio = 0``).

    ``evaluate(f)`` must return ``(improvement, kl)`` for parameters θ_old + f·full_step:
    the surrogate gain L(θ) − L(θ_old) and the mean KL(π_old ‖ π_θ).
    """
    if not 0.0 < backtrack_coeff < 1.0:
        raise HarlMiniError(f"backtrack_coeff: must lie in (0, 1), got {backtrack_coeff}")
    history = []
    fraction = 1.0
    for _ in range(int(max_backtracks) + 1):
        improvement, kl = (float(v) for v in evaluate(fraction))
        if not (math.isfinite(improvement) and math.isfinite(kl)):
            verdict = "non-finite"
        elif kl > delta:
            verdict = "kl > delta"
        elif improvement <= 0.0:
            verdict = "no improvement"
        elif improvement < accept_ratio * fraction * expected_improvement:
            verdict = "improvement below accept_ratio * expected"
        else:
            history.append((fraction, improvement, kl, "accepted"))
            return LineSearchResult(True, fraction, improvement, kl, history)
        history.append((fraction, improvement, kl, verdict))
        fraction *= backtrack_coeff
    return LineSearchResult(False, 0.0, 0.0, 0.0, history)


@dataclass
class TRPOStepResult:
    """The new parameters and everything a reader may want to inspect about the step."""

    theta: torch.Tensor
    direction: torch.Tensor
    beta: float
    expected_improvement: float
    line_search: LineSearchResult

    @property
    def accepted(self) -> bool:
        return self.line_search.accepted


def trpo_step(theta: torch.Tensor, g: torch.Tensor, Fvp: Callable[[torch.Tensor], torch.Tensor], delta: float,
              evaluate: Callable[[torch.Tensor], tuple[float, float]], cg_iters: int = 10, damping: float = 0.0,
              cg_residual_tol: float = 1e-10,
              backtrack_coeff: float = 0.8, max_backtracks: int = 10, accept_ratio: float = 0.0) -> TRPOStepResult:
    """One TRPO update of a flat parameter vector (see the module docstring).

    ``evaluate(theta_new)`` returns ``(surrogate gain, KL)`` at ``theta_new``. If the line
    search accepts nothing, the returned ``theta`` is the old one (unchanged). If the CG
    direction is exactly zero (g = 0, or ‖g‖² below CG's residual tolerance), no step is
    tried: ``accepted`` is False and the history holds one "zero search direction" entry.
    """
    if delta <= 0:
        raise HarlMiniError(f"delta: the KL radius must be positive, got {delta}")
    theta = theta.detach()
    g = g.detach()

    def damped(v: torch.Tensor) -> torch.Tensor:
        return Fvp(v) + damping * v

    s = conjugate_gradient(damped, g, iters=cg_iters, residual_tol=cg_residual_tol)
    if not bool(s.any()):
        # g = 0 (or so small that CG stopped at x = 0): a stationary point, nothing to step along
        return TRPOStepResult(theta.clone(), s, 0.0, 0.0,
                              LineSearchResult(False, 0.0, 0.0, 0.0, [(0.0, 0.0, 0.0, "zero search direction")]))
    beta = max_step_length(s, damped(s), delta)
    full_step = beta * s
    expected = float(torch.dot(g, full_step))
    search = backtracking_line_search(lambda f: evaluate(theta + f * full_step), expected, delta,
                                      backtrack_coeff, max_backtracks, accept_ratio)
    new_theta = theta + search.fraction * full_step if search.accepted else theta.clone()
    return TRPOStepResult(new_theta, s, beta, expected, search)
