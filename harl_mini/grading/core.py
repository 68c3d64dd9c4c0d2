"""The machinery every exercise check shares.

A *check* grades one function of the student's (``gae``, ``line_search``, ...). It is
declared with :func:`register`, which fixes, before anything runs:

* the student's function it grades (``function="gae"``),
* the book label it tests (``equation="eq-gae"``; messages render it as the book does,
  "eq. (21) in §2.6 ... of Chapter 2", see :mod:`harl_mini.grading.book`),
* its **parts** and their points (``parts={"no episode end": 1, "termination only": 1, ...}``):
  partial credit, and the registered total,
* its tolerances (:class:`Tolerance`, one for float64 answers and one for float32 answers).

The check body receives the student's function and a :class:`Context`. Inside
``with ctx.part("termination only"):`` it draws inputs (fixed examples plus draws from
``ctx.gen``, a generator seeded from the grader's seed), calls the student's function with
:meth:`Context.call` and compares with the package's own implementation (the oracle) with
:meth:`Context.close` or :meth:`Context.real`. A part fails with one :class:`CheckFailed`
that says what was wrong, on which input, and, where a known mistake fits, a hint; whatever
the student's function does (raise, exit, return ``None``, a wrong shape, NaN, a tensor
without gradient), the student sees that one message, never a traceback.

In a notebook, ``grading.ex02_1.check_gae(gae)`` prints one line per part and raises
:class:`CheckFailed` if any part failed; ``check_gae(gae, seed=123)`` replays the draws of a
graded run. :meth:`Check.evaluate` returns the :class:`CheckResult` without printing; the
grader (:mod:`harl_mini.grading.runner`) uses it in a fresh process per check.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import re
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

__all__ = [
    "CheckFailed",
    "Tolerance",
    "FLOAT64",
    "FLOAT32",
    "PartResult",
    "CheckResult",
    "Context",
    "Check",
    "CHECKS",
    "register",
    "call_student",
    "as_array",
    "as_real",
    "scaled_answer",
    "install_ipython_handler",
]

#: what the student sees when an unused default seed is replayed (the notebook's own run)
DEFAULT_SEED = 0


class CheckFailed(AssertionError):
    """A graded check rejected the student's function; the message says why.

    ``input`` describes the failing input in words, ``hint`` names a likely mistake.
    """

    def __init__(self, message: str, *, input: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.input = input
        self.hint = hint


class GradingAborted(BaseException):
    """Raised by the grader's part callback to stop a check (e.g. the grader was tampered with)."""


@dataclass(frozen=True)
class Tolerance:
    """Entrywise ``|got − expected| ≤ atol + rtol·|expected|`` (as ``torch.isclose``)."""

    atol: float
    rtol: float

    def __str__(self) -> str:
        if self.rtol == 0:
            return f"|got − expected| ≤ {self.atol:g}"
        return f"|got − expected| ≤ {self.atol:g} + {self.rtol:g}·|expected|"


#: default tolerance for float64 answers (the inputs are float64)
FLOAT64 = Tolerance(atol=1e-8, rtol=1e-6)
#: default tolerance for answers returned in float32 (about 100 float32 roundings of headroom)
FLOAT32 = Tolerance(atol=1e-5, rtol=1e-4)


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- results


@dataclass
class PartResult:
    """The verdict on one part of a check."""

    check: str
    part: str
    max_points: float
    ok: bool
    message: str = ""
    input: str | None = None
    hint: str | None = None
    seconds: float = 0.0
    reference: str = ""  # where the book states the equation (see harl_mini.grading.book)

    @property
    def points(self) -> float:
        return self.max_points if self.ok else 0.0

    def line(self) -> str:
        """One line: ``PASS check_gae [λ = 0] 1/1`` or ``FAIL check_gae [...] 0/1: why. Input: ... Hint: ... See ...``."""
        head = f"{'PASS' if self.ok else 'FAIL'} {self.check} [{self.part}] {_pts(self.points)}/{_pts(self.max_points)}"
        if self.ok:
            return head
        text = f"{head}: {_sentence(self.message)}"
        if self.input:
            text += f" Input: {_sentence(self.input)}"
        if self.hint:
            text += f" Hint: {_sentence(self.hint)}"
        if self.reference:
            text += f" See {self.reference}."
        return _one_line(text, 1200)

    def as_dict(self) -> dict:
        return {"part": self.part, "ok": self.ok, "points": self.points, "max_points": self.max_points,
                "message": self.message, "input": self.input, "hint": self.hint, "seconds": round(self.seconds, 4),
                "reference": self.reference}


def _sentence(text: str) -> str:
    text = text.rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _pts(x: float) -> str:
    return f"{x:g}"


@dataclass
class CheckResult:
    """The verdicts on every part of one check, and how long it took."""

    exercise: str
    check: str
    parts: list[PartResult] = field(default_factory=list)
    seconds: float = 0.0
    warning: str | None = None
    seed: int | None = None

    @property
    def points(self) -> float:
        return sum(p.points for p in self.parts)

    @property
    def max_points(self) -> float:
        return sum(p.max_points for p in self.parts)

    @property
    def ok(self) -> bool:
        return bool(self.parts) and all(p.ok for p in self.parts)

    def as_dict(self) -> dict:
        return {"check": self.check, "points": self.points, "max_points": self.max_points, "ok": self.ok,
                "seconds": round(self.seconds, 3), "warning": self.warning, "parts": [p.as_dict() for p in self.parts]}


# --------------------------------------------------------------------------- student calls


def _copy_arg(a):
    if isinstance(a, torch.Tensor):
        return a.clone()
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, list):
        return [_copy_arg(x) for x in a]
    if isinstance(a, tuple):
        return tuple(_copy_arg(x) for x in a)
    return a


def call_student(student_fn: Callable, *args, **kwargs):
    """Call the student's function on copies of the inputs; turn anything it raises into one message.

    Tensors (also inside lists and tuples) are cloned, so an in-place change of an input
    cannot leak into the oracle; a clone of a tensor that requires grad stays connected to
    it, so gradients still reach the check's leaf.
    """
    args = tuple(_copy_arg(a) for a in args)
    kwargs = {k: _copy_arg(v) for k, v in kwargs.items()}
    name = getattr(student_fn, "__name__", "your function")
    try:
        return student_fn(*args, **kwargs)
    except (KeyboardInterrupt, GradingAborted):
        raise
    except NotImplementedError:
        raise CheckFailed(f"`{name}` is not implemented yet: replace the `raise NotImplementedError` line") from None
    except SystemExit as exc:
        raise CheckFailed(f"`{name}` called sys.exit({exc.code!r}); return a value instead") from None
    except MemoryError:
        raise CheckFailed(f"`{name}` ran out of memory (MemoryError); the inputs are small, so look for a "
                          "tensor whose size grows with a loop or a huge allocation") from None
    except RecursionError:
        raise CheckFailed(f"`{name}` recursed too deeply (RecursionError)") from None
    except BaseException as exc:  # noqa: BLE001 - any student error becomes one clear message
        text = _one_line(f"{type(exc).__name__}: {exc}", 300)
        low = str(exc).lower()
        if "not enough memory" in low or "can't allocate" in low or "cannot allocate" in low:
            size = re.search(r"allocate (\d+) bytes", str(exc))
            amount = f" (it asked for {int(size.group(1)) / 2**30:.3g} GiB)" if size else ""
            raise CheckFailed(f"`{name}` ran out of memory{amount}",
                              hint="the grader limits memory; the inputs are small, so an allocation this "
                                   "large is a bug") from None
        hint = None
        if "inplace" in low or "in-place" in low:
            hint = ("an in-place operation (`x += ...`, `x[i] = ...`, `x.mul_(...)`) changed a tensor that "
                    "autograd needs or that requires grad; write it out of place (`x = x + ...`, torch.where, torch.stack)")
        raise CheckFailed(f"`{name}` raised {text}", hint=hint) from None


# --------------------------------------------------------------------------- converting answers

_LOW_PRECISION = {torch.float32: "float32", torch.complex64: "complex64"}


def _to_tensor(out, what: str) -> torch.Tensor:
    """Any array-like or real scalar as a plain CPU tensor (no subclass, no grad); or CheckFailed."""
    if out is None:
        raise CheckFailed(f"{what} is None; did you forget `return`?")
    if isinstance(out, bool) or isinstance(out, np.bool_):
        raise CheckFailed(f"{what} is a bool ({out}); expected a number")
    if isinstance(out, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            t = torch.Tensor.detach(out)
            t = torch.Tensor.cpu(t)
        return t.as_subclass(torch.Tensor) if type(t) is not torch.Tensor else t
    if isinstance(out, np.ndarray) or isinstance(out, np.generic):
        arr = np.asarray(out)
        if arr.dtype.kind not in "biuf":
            raise CheckFailed(f"{what} has numpy dtype {arr.dtype}; expected real numbers")
        return torch.from_numpy(np.array(arr, copy=True))
    if isinstance(out, Fraction):
        return torch.tensor(float(out), dtype=torch.float64)
    if isinstance(out, numbers.Real):
        return torch.tensor(float(out), dtype=torch.float64)
    if isinstance(out, (list, tuple)):
        try:
            items = [_to_tensor(x, what) for x in out]
        except CheckFailed:
            raise CheckFailed(f"{what} is a {type(out).__name__} whose entries are not all numbers or arrays") from None
        if not items:
            return torch.zeros(0, dtype=torch.float64)
        dtype = torch.float32 if all(i.dtype == torch.float32 for i in items) else torch.float64
        try:
            return torch.stack([i.to(dtype) for i in items])
        except RuntimeError:
            shapes = sorted({tuple(i.shape) for i in items})
            raise CheckFailed(f"{what} is a {type(out).__name__} of entries with different shapes {shapes}") from None
    raise CheckFailed(f"{what} has type {type(out).__name__}; expected a tensor (torch, numpy or a list of numbers)")


def as_array(out, shape: Sequence[int], what: str, *, broadcast: bool = True) -> tuple[torch.Tensor, bool]:
    """The student's answer as a float64 tensor of ``shape``, and whether it was float32.

    Accepts torch tensors (any device, with or without grad), numpy arrays, (nested) lists
    and real scalars; integer and bool dtypes are converted; float32 is accepted (the caller
    then compares with the float32 tolerance); float16/bfloat16 are too coarse. With
    ``broadcast`` a shape that broadcasts to ``shape`` (``[S, 2, 1]`` for ``[S, 2, 2]``) is
    expanded, since the values are then compared entry by entry anyway.
    """
    t = _to_tensor(out, what)
    shape = tuple(int(s) for s in shape)
    if t.dtype in (torch.float16, torch.bfloat16):
        raise CheckFailed(f"{what} has dtype {t.dtype}, too coarse for this check; return float64 (or float32)")
    if t.is_complex():
        raise CheckFailed(f"{what} is complex ({t.dtype}); expected real numbers")
    lowp = t.dtype == torch.float32
    t = t.to(torch.float64)
    if tuple(t.shape) != shape:
        fits = False
        if broadcast and t.dim() <= len(shape):
            try:
                fits = torch.broadcast_shapes(tuple(t.shape), shape) == shape
            except RuntimeError:
                fits = False
        if not fits:
            want = "a scalar (a number or a 0-d tensor)" if shape == () else f"shape {list(shape)}"
            raise CheckFailed(f"{what} has shape {list(t.shape)}; expected {want}")
        t = t.expand(shape)
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        if t.dim() == 0:
            raise CheckFailed(f"{what} is {t.item()}")
        idx = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise CheckFailed(f"{what} contains {t[idx].item()} at index {idx}")
    return t.contiguous(), lowp


def scaled_answer(out, scale: float):
    """The student's answer divided by the oracle's scale, keeping its dtype (float32 stays
    float32), so that a check can compare answers whose size varies by orders of magnitude with
    one relative tolerance. Anything that is not a number is returned as it is, for
    :func:`as_array` to explain."""
    if isinstance(out, torch.Tensor):
        return out.detach() / scale
    try:
        return torch.as_tensor(out) / scale
    except Exception:  # noqa: BLE001 - leave odd answers to as_array's messages
        return out


def as_real(out, what: str) -> tuple[float, bool]:
    """The student's scalar answer as a float, and whether it was float32.

    Any real scalar: int, float, Fraction, numpy scalars, 0-d (or one-element) tensors and arrays.
    """
    t = _to_tensor(out, what)
    if t.numel() != 1:
        raise CheckFailed(f"{what} has shape {list(t.shape)}; expected one number")
    if t.is_complex():
        raise CheckFailed(f"{what} is complex; expected a real number")
    value = float(t.reshape(()).to(torch.float64))
    if not math.isfinite(value):
        raise CheckFailed(f"{what} is {value}")
    return value, t.dtype == torch.float32


# --------------------------------------------------------------------------- checks


class Context:
    """What a check body works with: the seeded generator, parts, student calls, comparisons."""

    def __init__(self, check: Check, student_fn: Callable, seed: int, on_part: Callable | None):
        self.check = check
        self.student_fn = student_fn
        self.seed = seed
        self.gen = torch.Generator().manual_seed(seed)
        self.np_rng = np.random.default_rng(seed)
        self.tol = check.tol
        self.tol32 = check.tol32
        self.results: list[PartResult] = []
        self._on_part = on_part
        self._reference = None

    @property
    def reference(self) -> str:
        if self._reference is None:
            from harl_mini.grading.book import cite

            self._reference = cite(self.check.equation)
        return self._reference

    @contextlib.contextmanager
    def part(self, name: str):
        """Run one declared part; a failure is recorded and the check goes on with the next part."""
        if name not in self.check.parts:
            raise RuntimeError(f"{self.check.name}: part {name!r} is not declared in register(parts=...)")
        if any(r.part == name for r in self.results):
            raise RuntimeError(f"{self.check.name}: part {name!r} ran twice")
        start = time.perf_counter()
        result = PartResult(self.check.name, name, self.check.parts[name], ok=True)
        try:
            yield
        except CheckFailed as exc:
            result.ok, result.message, result.input, result.hint = False, _one_line(exc.message), exc.input, exc.hint
        except (KeyboardInterrupt, GradingAborted):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. an odd object from the student broke the comparison
            result.ok = False
            result.message = _one_line(f"the check could not use your answer ({type(exc).__name__}: {exc})")
        result.seconds = time.perf_counter() - start
        if not result.ok:
            result.reference = self.reference
        self.results.append(result)
        if self._on_part is not None:
            self._on_part(result)

    def call(self, *args, **kwargs):
        """Call the student's function (see :func:`call_student`)."""
        return call_student(self.student_fn, *args, **kwargs)

    def close(self, out, want: torch.Tensor, what: str, *, where: Callable[[tuple], str] | None = None,
              describe: Callable[[tuple], str] | None = None,
              hints: Iterable[tuple[object, str]] = (), tol: Tolerance | None = None,
              tol32: Tolerance | None = None, broadcast: bool = True) -> torch.Tensor:
        """Raise :class:`CheckFailed` unless the answer ``out`` matches ``want`` within tolerance.

        ``where(idx)`` names an entry in words ("step t=5 of copy 2"), ``describe(idx)``
        describes the input there ("a truncation: terminated=False, truncated=True"), and
        ``hints`` pairs what a known mistake would return (a tensor, or a function computing
        it) with the hint to give when the answer matches it. ``tol``/``tol32`` override the
        check's tolerances for float64/float32 answers.
        """
        want = want.detach().to(torch.float64)
        got, lowp = as_array(out, tuple(want.shape), what, broadcast=broadcast)
        tol = (tol32 or self.tol32) if lowp else (tol or self.tol)
        excess = (got - want).abs() - (tol.atol + tol.rtol * want.abs())
        if bool((excess > 0).any()):
            flat = int(torch.argmax(excess.reshape(-1)))
            idx = tuple(int(i) for i in np.unravel_index(flat, tuple(want.shape))) if want.dim() else ()
            g, w = got[idx].item(), want[idx].item()
            precision = " (compared as float32)" if lowp else ""
            if want.dim() == 0:
                message = f"{what} is wrong: got {g:.6g}, expected {w:.6g}{precision}"
            else:
                spot = where(idx) if where else f"index {idx}"
                n_bad = int((excess > 0).sum())
                message = (f"{what} is wrong at {spot}: got {g:.6g}, expected {w:.6g}"
                           f" ({n_bad} of {want.numel()} entries off; tolerance {tol}){precision}")
            raise CheckFailed(message, input=describe(idx) if describe else None,
                              hint=self._match_hint(got, hints, tol))
        return got

    def real(self, out, want: float, what: str, *, hints: Iterable[tuple[object, str]] = (),
             tol: Tolerance | None = None, tol32: Tolerance | None = None, describe: str | None = None) -> float:
        """Raise unless the scalar answer ``out`` (any real scalar) is within tolerance of ``want``."""
        got, lowp = as_real(out, what)
        tol = (tol32 or self.tol32) if lowp else (tol or self.tol)
        if abs(got - want) > tol.atol + tol.rtol * abs(want):
            hint = self._match_hint(torch.tensor(got, dtype=torch.float64), hints, tol)
            raise CheckFailed(f"{what} is wrong: got {got:.8g}, expected {want:.8g}", input=describe, hint=hint)
        return got

    def loss_gradient(self, logp: torch.Tensor, *rest, what: str = "your loss"):
        """Call the student's loss function on ``(logp, *rest)`` and return ``(loss, d loss / d logp)``.

        Raises one :class:`CheckFailed` that says why autograd cannot give the gradient: the
        loss is not a tensor, is not a scalar, has no graph (a ``.detach()``/``.item()``/
        ``no_grad`` cut it), does not depend on ``logp``, or an in-place operation broke it.
        """
        leaf = logp.detach().clone().requires_grad_(True)
        loss = self.call(leaf, *rest)
        if not isinstance(loss, torch.Tensor):
            raise CheckFailed(f"{what} is a {type(loss).__name__}, not a torch tensor, so autograd cannot differentiate it",
                              hint="compute the loss with torch operations on `logp` and return the tensor itself; "
                                   "do not call .item(), float() or .numpy() on it")
        if loss.numel() != 1:
            raise CheckFailed(f"{what} has shape {list(loss.shape)}; expected a scalar (a 0-d tensor)")
        if not loss.requires_grad:
            raise CheckFailed(f"{what} is a tensor without a gradient: autograd cannot trace it back to `logp`",
                              hint="something cut the graph between `logp` and the loss: .detach(), .item(), .numpy(), "
                                   "torch.tensor(...) of a computed value, or a torch.no_grad() block")
        try:
            (grad,) = torch.autograd.grad(loss.reshape(()), leaf, allow_unused=True)
        except RuntimeError as exc:
            low = str(exc).lower()
            hint = ("an in-place operation (`x += ...`, `x[i] = ...`, `.clamp_()`) changed a tensor autograd needs; "
                    "write it out of place") if "inplace" in low or "in-place" in low else None
            raise CheckFailed(f"computing the gradient of {what} failed: {' '.join(str(exc).split())[:250]}", hint=hint) from None
        if grad is None:
            raise CheckFailed(f"{what} has a gradient, but not with respect to `logp`",
                              hint="compute the ratio from the `logp` argument: exp(logp − logp_old)")
        # a loss computed in float32 has a float32-accurate gradient: compare it as float32
        return loss, grad.to(torch.float32) if loss.dtype == torch.float32 else grad

    @staticmethod
    def _match_hint(got: torch.Tensor, hints, tol: Tolerance) -> str | None:
        for alternative, text in hints:
            try:
                alt = alternative() if callable(alternative) else alternative
                alt = torch.as_tensor(alt, dtype=torch.float64).detach()
                if torch.allclose(got, alt.expand_as(got), atol=tol.atol, rtol=tol.rtol):
                    return text
            except Exception:  # noqa: BLE001 - a hint that does not apply is no hint
                continue
        return None


@dataclass
class Check:
    """A registered check (see :func:`register`); call it on the student's function."""

    exercise: str
    name: str
    function: str
    equation: str
    parts: dict[str, float]
    body: Callable[[Callable, Context], None]
    tol: Tolerance = FLOAT64
    tol32: Tolerance = FLOAT32
    slow_s: float = 5.0
    doc: str = ""

    @property
    def max_points(self) -> float:
        return float(sum(self.parts.values()))

    @property
    def tolerance(self) -> str:
        """The ``Tolerance:`` paragraph of the check's docstring (the student notebook quotes it)."""
        import inspect

        for paragraph in inspect.cleandoc(self.doc).split("\n\n"):
            text = " ".join(paragraph.split())
            if text.startswith("Tolerance:"):
                return text[len("Tolerance:"):].strip()
        return f"{self.tol} (float64 answers), {self.tol32} (float32 answers)"

    def derived_seed(self, seed: int | None) -> int:
        """The seed of this check's draws for the grader's ``seed`` (None: the notebook's fixed draws)."""
        base = DEFAULT_SEED if seed is None else int(seed)
        return zlib.crc32(f"{base}:{self.exercise}:{self.name}".encode())

    def evaluate(self, student_fn: Callable, seed: int | None = None,
                 on_part: Callable[[PartResult], None] | None = None) -> CheckResult:
        """Run every part on ``student_fn`` and return the verdicts (nothing printed)."""
        result = CheckResult(self.exercise, self.name, seed=seed)
        ctx = Context(self, student_fn, self.derived_seed(seed), on_part)
        start = time.perf_counter()
        if not callable(student_fn):
            message = f"expected your function `{self.function}` as the argument, got {type(student_fn).__name__}"
            for part in self.parts:
                with ctx.part(part):
                    raise CheckFailed(message)
        else:
            self.body(student_fn, ctx)
            for part in self.parts:  # a part the body never reached (it returned early) counts as failed
                if not any(r.part == part for r in ctx.results):
                    with ctx.part(part):
                        raise CheckFailed("this part did not run")
        result.parts = sorted(ctx.results, key=lambda r: list(self.parts).index(r.part))
        result.seconds = time.perf_counter() - start
        if result.ok and result.seconds > self.slow_s:
            result.warning = (f"{self.name} passed but took {result.seconds:.1f} s (a vectorised solution needs "
                              f"well under {self.slow_s:g} s): look for Python loops over entries that torch "
                              "operations on whole tensors would do")
        return result

    def __call__(self, student_fn: Callable, seed: int | None = None) -> None:
        """Interactive use in a notebook: one line per part; raise :class:`CheckFailed` if any failed."""
        result = self.evaluate(student_fn, seed, on_part=lambda r: print(r.line(), flush=True))
        if result.warning:
            print(f"WARN {result.warning}")
        if not result.ok:
            failed = ", ".join(p.part for p in result.parts if not p.ok)
            raise CheckFailed(f"{self.name}: {_pts(result.points)}/{_pts(result.max_points)} points; "
                              f"failed: {failed} (details above)")
        print(f"PASS {self.name}: {_pts(result.points)}/{_pts(result.max_points)} points ({result.seconds:.2f} s)")


CHECKS: dict[str, dict[str, Check]] = {}


def register(*, function: str, equation: str, parts: dict[str, float], exercise: str | None = None,
             tol: Tolerance = FLOAT64, tol32: Tolerance = FLOAT32, slow_s: float = 5.0):
    """Decorator: register ``check_*(student_fn, ctx)`` as a :class:`Check`.

    ``exercise`` defaults to the defining module's name (``harl_mini.grading.ex02_1`` →
    ``"ex02_1"``). The decorated name becomes the :class:`Check` itself, so the notebook
    calls ``grading.ex02_1.check_gae(gae)``.
    """
    if not parts or any(not (isinstance(p, (int, float)) and p > 0) for p in parts.values()):
        raise ValueError("register: parts must map each part's name to positive points")

    def decorate(fn: Callable[[Callable, Context], None]) -> Check:
        ex = exercise or fn.__module__.rsplit(".", 1)[-1]
        check = Check(ex, fn.__name__, function, equation, dict(parts), fn, tol, tol32, slow_s, fn.__doc__ or "")
        check.__doc__ = fn.__doc__
        CHECKS.setdefault(ex, {})[fn.__name__] = check
        return check

    return decorate


# --------------------------------------------------------------------------- IPython


def _show_check_failure(shell, etype, value, tb, tb_offset=None):
    """IPython handler: show a failed check as one line instead of a traceback.

    IPython ignores what a custom handler returns, so the handler publishes the error
    itself; in Jupyter the cell gets an ordinary error output (ename ``CheckFailed``).
    """
    stb = [f"FAIL {value}"]
    shell._showtraceback(etype, value, stb)
    return stb


def install_ipython_handler() -> None:
    """Show :class:`CheckFailed` as one line in IPython/Jupyter (no-op outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the book's requirements
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((CheckFailed,), _show_check_failure)
