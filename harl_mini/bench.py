"""Speed figures of the exact tabular oracle (``python -m harl_mini bench``).

Two figures, each the median wall time of several repeats after one warm-up call:

1. ``value`` — exact policy evaluation V^π = (I − γP_π)^{-1} r_π on a dense random MDP
   with 1,000 states and 10 actions (target < 0.2 s);
2. ``all_multi_agent_q`` — Q^{i_{1:m}}_π for all 65 ordered agent subsets of a random
   game with 4 agents × 3 actions and 50 states (target < 1 s).

``--quick`` uses smaller sizes (for the test suite); the targets refer to the full sizes.
Building the random instances is not timed. Run with ``OMP_NUM_THREADS=1`` to get the
figures the book quotes (one thread per process).
"""

from __future__ import annotations

import argparse
import statistics
import time

__all__ = ["main"]


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main(argv=None) -> int:
    """Run the benchmark, print a table, return 0."""
    parser = argparse.ArgumentParser(prog="harl_mini bench", description="Speed figures of the exact tabular oracle.")
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, for tests)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per figure (default 7, quick 3)")
    args = parser.parse_args([] if argv is None else list(argv))

    import torch

    from harl_mini import tabular as T

    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 7)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    S, A = (100, 5) if args.quick else (1000, 10)
    gS, counts = (10, (2, 2, 2)) if args.quick else (50, (3, 3, 3, 3))

    mdp = T.random_mdp(S, A, gamma=0.9, seed=0)
    pi = T.random_policy(mdp, seed=1)
    t_value = _median_time(lambda: T.value(mdp, pi), repeats)

    game = T.random_game(gS, counts, gamma=0.9, seed=0)
    pis = T.random_policies(game, seed=1)
    n_keys = len(T.all_multi_agent_q(game, pis))
    t_maq = _median_time(lambda: T.all_multi_agent_q(game, pis), repeats)

    rows = [
        ("value", f"S={S}, A={A}, dense", t_value, 0.2),
        ("all_multi_agent_q", f"N={len(counts)}, n={counts[0]}, S={gS} ({n_keys} subsets)", t_maq, 1.0),
    ]
    mode = "quick sizes; targets are for the full sizes" if args.quick else "full sizes"
    print(f"harl_mini bench: exact tabular oracle, float64 ({mode})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), median of {repeats} after a warm-up")
    print()
    header = f"{'figure':<20} {'instance':<34} {'median':>10} {'target':>10}  ok"
    print(header)
    print("-" * len(header))
    for name, size, t, target in rows:
        ok = "yes" if t < target else "NO"
        print(f"{name:<20} {size:<34} {_fmt(t):>10} {f'< {target:g} s':>10}  {ok}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
