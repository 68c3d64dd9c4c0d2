"""What the before/after speed scripts of this folder share (hatrpo_fvp.py, hot_loop.py).

Each variant runs in a fresh process, one thread, on a checkout (``tree``) put first on
``PYTHONPATH``; the child prints one JSON line with ``rate``, ``seconds``, ``hash`` (of the
trained parameters) and ``harl_mini`` (the package it imported). Variants rotate their order
from round to round, so that load changes hit all of them alike.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


#: The end of every child script: one warm-up iteration, ``iterations`` timed ones, and the JSON
#: line. The script's own start imports hashlib, json, time and harl_mini and defines ``runner``,
#: ``iterations`` and ``hashed`` (the parameters whose hash shows whether two variants train alike).
CHILD_TIMED_STEPS = r"""
runner.step()
t0 = time.perf_counter()
for _ in range(iterations):
    runner.step()
dt = time.perf_counter() - t0
h = hashlib.sha256()
for p in hashed:
    h.update(p.detach().double().numpy().tobytes())
print(json.dumps({"rate": iterations * runner.buffer.size / dt, "seconds": dt, "hash": h.hexdigest()[:16],
                  "harl_mini": harl_mini.__file__}))
"""


def header(before: Path) -> None:
    """Print the date, CPU, load and the two commits compared."""
    from harl_mini.provenance import cpu_model

    def commit(d):
        return subprocess.run(["git", "-C", str(d), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()

    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "harl_mini"], capture_output=True,
                           text=True).stdout.strip() != ""
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}; {cpu_model()} x{os.cpu_count()}; one torch "
          f"thread per process; load average at start {os.getloadavg()[0]:.2f}")
    print(f"# before: {before} at {commit(before)}; after: {ROOT} at {commit(ROOT)}"
          + (" with uncommitted changes to harl_mini/" if dirty else ""))


def run_child(tree: Path, code: str, *args) -> dict:
    """Run ``code`` with ``args`` in a fresh one-thread process on checkout ``tree``; its JSON line."""
    envvars = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=tree, env=envvars,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def interleave(variants, rounds: int, measure, label: str, unit: str):
    """``variants``: (name, tree, extra) triples, ``measure(tree, extra) -> child result``.
    Returns rates and parameter hashes per variant name, printing one line per run."""
    rates = {v[0]: [] for v in variants}
    hashes = {v[0]: set() for v in variants}
    width = max(len(v[0]) for v in variants)
    for r in range(rounds):
        k = r % len(variants)
        for name, tree, extra in variants[k:] + variants[:k]:
            res = measure(tree, extra)
            rates[name].append(res["rate"])
            hashes[name].add(res["hash"])
            print(f"{label} round {r} {name:<{width}} {res['rate']:8.0f} {unit} ({res['seconds']:.1f} s) "
                  f"params {res['hash']}  [{res['harl_mini']}]", flush=True)
    return rates, hashes


def summarize(label: str, rates: dict, names, unit: str) -> None:
    """One SUMMARY line per name: its rate over ``before``'s, round by round."""
    b = rates["before"]
    for name in names:
        ratios = [a / bb for a, bb in zip(rates[name], b)]
        print(f"SUMMARY {label} {name} / before: median {statistics.median(ratios):.2f} "
              f"[{min(ratios):.2f}-{max(ratios):.2f}] over {len(ratios)} rounds; "
              f"median rate {statistics.median(rates[name]):.0f} vs {statistics.median(b):.0f} {unit}")
