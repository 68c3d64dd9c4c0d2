"""Checks for Exercise 9.3: comparing runs, the exact bootstrap over a few seeds and speed from interleaved pairs.

* ``prob_greater(x, y)``: the exact bootstrap probability that a resample of the seeds ``x``
  has a higher mean than an independent resample of the seeds ``y``, ties counting one half
  (Chapter 9, eq. ``eq-bootstrap-prob``). Oracle: ``harl_mini.viz.runs.bootstrap_prob_greater``.
* ``pair_ratio(runs)``: harl_mini's speed over a peer's from interleaved pairs of runs, the
  median of the per-pair ratios with the smallest and the largest (Chapter 9, eq.
  ``eq-pair-ratio``), over the pairs whose two runs both succeeded. Oracle:
  ``harl_mini.viz.runs.pair_ratios``.
"""

from __future__ import annotations

import copy
import statistics

import torch

from harl_mini.grading.core import CheckFailed, Tolerance, register
from harl_mini.viz.runs import bootstrap_prob_greater, pair_ratios

__all__ = ["check_prob_greater", "check_pair_ratio", "EXAMPLE_SEEDS", "example_runs", "make_runs"]

F64 = torch.float64

#: the notebook's example: final evaluations of three seeds of two algorithms (multiples of 1/4)
EXAMPLE_SEEDS = ([-47.25, -42.5, -48.25], [-60.0, -60.25, -49.0])


# --------------------------------------------------------------------------- the bootstrap


def _grid(gen, n: int, centre: float, spread: int) -> torch.Tensor:
    """n values on the grid of quarters around ``centre`` (exact sums, so ties are exact)."""
    return centre + torch.randint(-spread, spread + 1, (n,), generator=gen).to(F64) / 4


def _prob_cases(gen, part: str):
    if part == "three seeds each":
        return [tuple(map(torch.tensor, EXAMPLE_SEEDS)),
                (_grid(gen, 3, 0.0, 12), _grid(gen, 3, 1.0, 12))]
    if part == "ties":
        same = _grid(gen, 3, 2.0, 4)
        return [(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 2.0])), (same, same.flip(0).clone()),
                (_grid(gen, 4, 0.0, 2), _grid(gen, 4, 0.0, 2))]
    if part == "different numbers of seeds":
        return [(torch.tensor([5.0]), torch.tensor([4.0, 6.0])),
                (_grid(gen, 2, 0.0, 8), _grid(gen, 5, 0.0, 8)), (_grid(gen, 4, 0.5, 8), _grid(gen, 1, 0.0, 8))]
    # ranges apart: the bootstrap can only say 1 (or 0)
    low = _grid(gen, 3, 0.0, 4)
    return [(torch.tensor([10.25, 10.5, 11.0]), torch.tensor([1.0, 10.0, 9.5])), (low + 3.0, low),
            (_grid(gen, 5, -4.0, 4), _grid(gen, 4, 4.0, 4))]


@register(function="prob_greater", equation="eq-bootstrap-prob",
          parts={"three seeds each": 1, "ties": 1, "different numbers of seeds": 1, "ranges apart": 1},
          tol=Tolerance(atol=1e-9, rtol=0.0), tol32=Tolerance(atol=1e-6, rtol=0.0))
def check_prob_greater(student_fn, ctx) -> None:
    """P*(x̄* > ȳ*) + ½ P*(x̄* = ȳ*) over every pair of resamples, for 1 to 5 seeds per group.

    Each part runs the notebook's examples and draws of the same kind: three seeds each, many
    tied means (equal groups: exactly ½), groups of different sizes (one seed included), and
    groups whose ranges do not overlap (exactly 1 or 0). The values are multiples of 1/4, so
    sums are exact and equal means are equal floats; distinct means differ by at least
    1/(4·5·5).

    Tolerance: |got − expected| ≤ 1e-9 (float64 answers; the exact answer is a fraction with
    denominator at most 2·5⁵·5⁵, and summing its ~10⁷ terms in float64 is within 1e-12), ≤ 1e-6
    (float32 answers).
    """
    for part in ("three seeds each", "ties", "different numbers of seeds", "ranges apart"):
        with ctx.part(part):
            for x, y in _prob_cases(ctx.gen, part):
                out = ctx.call(x, y)
                want = bootstrap_prob_greater(x, y)
                hints = [(lambda: want + 0.5 * _tie_prob(x, y), "a tie counts one half, not one: [u > v] + ½ [u = v]"),
                         (lambda: want - 0.5 * _tie_prob(x, y), "a tie counts one half, not zero: [u > v] + ½ [u = v]"),
                         (lambda: _uniform_multisets(x, y),
                          "the distinct resamples are not equally likely: a resample with counts c_1..c_n arises "
                          "from n!/(c_1!⋯c_n!) of the n^n equally likely ordered draws"),
                         (lambda: _paired(x, y), "the seeds of the two algorithms are not paired: resample each "
                                                 "group on its own, independently of the other"),
                         (lambda: 1.0 if x.mean() > y.mean() else 0.5 if x.mean() == y.mean() else 0.0,
                          "a bootstrap resample draws n of the n values *with* replacement; without it every "
                          "resample has the same mean")]
                ctx.real(out, want, f"P*(x̄* > ȳ*) for x = {x.tolist()}, y = {y.tolist()}", hints=hints,
                         describe=f"{len(x)} and {len(y)} seeds: {len(x)}^{len(x)} × {len(y)}^{len(y)} equally "
                                  "likely pairs of ordered resamples")


def _resample_means(v: torch.Tensor) -> torch.Tensor:
    """The mean of each of the n^n ordered resamples."""
    n = len(v)
    idx = torch.cartesian_prod(*[torch.arange(n)] * n).reshape(-1, n) if n > 1 else torch.zeros(1, 1, dtype=torch.long)
    return v.to(F64)[idx].sum(1) / n


def _tie_prob(x, y) -> float:
    mx, my = _resample_means(x), _resample_means(y)
    return float((mx[:, None] == my[None, :]).to(F64).mean())


def _paired(x, y) -> float:
    """A known mistake: one resample of indices used for both groups (equal sizes only)."""
    if len(x) != len(y):
        return float("nan")
    n = len(x)
    idx = torch.cartesian_prod(*[torch.arange(n)] * n).reshape(-1, n) if n > 1 else torch.zeros(1, 1, dtype=torch.long)
    mx, my = x.to(F64)[idx].sum(1) / n, y.to(F64)[idx].sum(1) / n
    return float(((mx > my).to(F64) + 0.5 * (mx == my).to(F64)).mean())


def _uniform_multisets(x, y) -> float:
    """A known mistake: every distinct multiset of draws equally likely."""
    import itertools

    def means(v):
        n = len(v)
        return torch.tensor([sum(float(v[i]) for i in c) / n
                             for c in itertools.combinations_with_replacement(range(n), n)], dtype=F64)

    mx, my = means(x), means(y)
    return float(((mx[:, None] > my[None, :]).to(F64) + 0.5 * (mx[:, None] == my[None, :]).to(F64)).mean())


# --------------------------------------------------------------------------- interleaved pairs


def make_runs(gen, pairs: int, *, shuffle: bool = False, failed: int = 0, start: int = 1) -> list[dict]:
    """Run records as in results/peers/results.json: peer, harl_mini, peer, ... ; ``failed`` runs fail."""
    runs = []
    for k in range(start, start + pairs):
        peer = float(200 + 400 * torch.rand((), generator=gen, dtype=F64))
        ratio = float(2 ** (4 * torch.rand((), generator=gen, dtype=F64) - 1))  # 0.5 .. 8
        jitter = float(1 + 0.6 * (torch.rand((), generator=gen, dtype=F64) - 0.5))
        for side, rate in (("peer", peer), ("harl_mini", peer * ratio * jitter)):
            runs.append({"pair": k, "side": side, "returncode": 0,
                         "result": {"rate": round(rate, 3), "rate_cpu": round(1.7 * rate, 3)}})
    if failed:
        chosen = torch.randperm(len(runs), generator=gen)[:failed].tolist()
        for i in chosen:
            runs[i] = {"pair": runs[i]["pair"], "side": runs[i]["side"], "returncode": 1,
                       "error": "Traceback (most recent call last): ... MemoryError"}
    if shuffle:
        runs = [runs[i] for i in torch.randperm(len(runs), generator=gen).tolist()]
    return runs


def example_runs() -> list[dict]:
    """The notebook's example: three complete pairs, in the order they ran."""
    return make_runs(torch.Generator().manual_seed(5), 3)


def _pair_cases(gen, part: str):
    if part == "complete pairs in order":
        return [example_runs(), make_runs(gen, int(torch.randint(3, 8, (), generator=gen)))]
    if part == "records in any order":
        return [make_runs(gen, 5, shuffle=True), make_runs(gen, int(torch.randint(3, 8, (), generator=gen)),
                                                          shuffle=True, start=int(torch.randint(1, 4, (), generator=gen)))]
    if part == "failed runs drop their pair":
        return [make_runs(gen, 6, failed=1), make_runs(gen, 7, failed=2, shuffle=True)]
    # an even number of complete pairs: the median is the mean of the two middle ratios
    return [make_runs(gen, 4), make_runs(gen, 5, failed=1), make_runs(gen, 6, shuffle=True)]


def _ratios_by_position(runs):
    peers = [r for r in runs if r["side"] == "peer" and r.get("returncode") == 0]
    mine = [r for r in runs if r["side"] == "harl_mini" and r.get("returncode") == 0]
    return [m["result"]["rate"] / p["result"]["rate"] for p, m in zip(peers, mine)]


def _describe(runs) -> str:
    s = pair_ratios(runs)
    order = ", ".join(f"{r['side']} {r['pair']}{'' if r.get('returncode') == 0 else ' (failed)'}" for r in runs)
    return (f"{len(runs)} run records in this order: {order}; complete pairs {s['pairs']}, dropped {s['dropped']}; "
            f"per-pair ratios {[round(x, 4) for x in s['ratios']]}")


@register(function="pair_ratio", equation="eq-pair-ratio",
          parts={"complete pairs in order": 1, "records in any order": 1, "failed runs drop their pair": 1,
                 "an even number of pairs": 1})
def check_pair_ratio(student_fn, ctx) -> None:
    """(median, min, max) of rate(harl_mini) / rate(peer) over the complete pairs of interleaved runs.

    Each part runs the notebook's example or fixed sizes and draws: complete pairs in the order
    they ran, records shuffled (pairs are matched by their ``pair`` number, not by position),
    failed runs (return code 1, no ``result``: the whole pair is dropped), and even numbers of
    complete pairs (the median is the mean of the two middle ratios, as ``statistics.median``).

    Tolerance: |got − expected| ≤ 1e-8 + 1e-6·|expected| (float64 answers), 1e-5 + 1e-4·|expected|
    (float32 answers); ratios of rates of order 10² to 10³ given to 3 decimals.
    """
    for part in ("complete pairs in order", "records in any order", "failed runs drop their pair",
                 "an even number of pairs"):
        with ctx.part(part):
            for runs in _pair_cases(ctx.gen, part):
                s = pair_ratios(runs)
                out = ctx.call(copy.deepcopy(runs))  # the records stay as drawn, whatever the function does
                if s["median"] is None:  # pragma: no cover - the cases always keep a pair
                    raise CheckFailed("internal: a case without a complete pair")
                want = torch.tensor([s["median"], s["min"], s["max"]], dtype=F64)
                by_pos = _ratios_by_position(runs)
                ok_runs = [r for r in runs if r.get("returncode") == 0]
                hm = [r["result"]["rate"] for r in ok_runs if r["side"] == "harl_mini"]
                pr = [r["result"]["rate"] for r in ok_runs if r["side"] == "peer"]
                hints = [
                    (lambda: torch.tensor([1 / s["median"], 1 / s["max"], 1 / s["min"]], dtype=F64),
                     "the ratio is rate(harl_mini) / rate(peer): above 1 means harl_mini is faster"),
                    (lambda: torch.tensor([statistics.median(hm) / statistics.median(pr), s["min"], s["max"]],
                                          dtype=F64),
                     "take the median of the per-pair ratios, not the ratio of the two medians: each ratio "
                     "compares two runs made under the same load"),
                    (lambda: torch.tensor([statistics.median(by_pos), min(by_pos), max(by_pos)], dtype=F64),
                     "match the runs by their `pair` number, not by their position in the list, and drop a "
                     "pair whose other run failed"),
                    (lambda: torch.tensor([statistics.median_low(s["ratios"]), s["min"], s["max"]], dtype=F64),
                     "with an even number of pairs the median is the mean of the two middle ratios"),
                    (lambda: torch.tensor([statistics.median_high(s["ratios"]), s["min"], s["max"]], dtype=F64),
                     "with an even number of pairs the median is the mean of the two middle ratios"),
                ]
                names = ("median", "smallest", "largest")
                ctx.close(out, want, "(median, min, max) of the per-pair ratios",
                          where=lambda idx: f"entry {idx[0]} (the {names[idx[0]]} ratio)",
                          describe=lambda idx, runs=runs: _describe(runs), hints=hints)
