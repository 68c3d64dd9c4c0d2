"""Timing helpers shared by every driver (standard library only: each driver runs in its own venv).

A driver calls :meth:`Timer.start`, :meth:`Timer.lap` at the start of every training
iteration, :meth:`Timer.stop` at the end, then prints :meth:`Timer.summary` with
:func:`emit`: one line ``RESULT {json}`` that ``results/peers/bench.py`` parses.

Figures (``summary(batch, k)``; the timed run is 1 + k iterations, the first being warm-up):

==================  =====================================================================
``rate``            env-steps/s over the last k iterations (wall clock): k·batch / seconds
``rate_incl_first`` env-steps/s from ``start()`` (whatever the driver put before the first
                    iteration: construction, env reset, JAX compile) to ``stop()``
``rate_cpu``        env-steps per CPU-second over the last k iterations, CPU of this
                    process *and* of its live child processes (HARL's subprocess envs):
                    what the run costs, less sensitive than ``rate`` to other load
``cpu_per_wall``    this process's CPU seconds per wall second over the whole run (≤ ~1
                    for one busy thread; below 1 when other processes share the core)
``busy_threads``    threads of this process that used > 10 % of the busiest thread's CPU
                    time over the last k iterations (``/proc/self/task/<tid>/stat``): 1
                    means one core; ``busy_threads_incl_first``: over the whole run
                    (XLA compiles on several threads)
==================  =====================================================================
"""

from __future__ import annotations

import json
import os
import sys
import time

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(path: str) -> float | None:
    """utime + stime (fields 14, 15 of a /proc stat file) in seconds, or None if gone."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def thread_cpu() -> dict[int, float]:
    """CPU seconds of every live thread of this process."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        c = _stat_cpu(f"/proc/self/task/{tid}/stat")
        if c is not None:
            out[int(tid)] = c
    return out


def children_cpu() -> dict[int, float]:
    """CPU seconds (all threads) of every live direct child process."""
    kids = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                kids.update(int(k) for k in f.read().split())
        except OSError:
            continue
    out = {}
    for pid in kids:
        c = _stat_cpu(f"/proc/{pid}/stat")
        if c is not None:
            out[pid] = c
    return out


class Timer:
    """Wall clock and CPU (this process + live children) at ``start``, every ``lap`` and ``stop``."""

    def _now(self) -> tuple[float, float]:
        kids = children_cpu()
        self._kids_seen.update(kids)  # last reading of every child, in case it exits before stop
        return time.perf_counter(), time.process_time() + sum(self._kids_seen.values()) - self._kids0

    def start(self) -> None:
        self._kids_seen: dict[int, float] = {}
        self._kids0 = 0.0
        self._now()
        self._kids0 = sum(self._kids_seen.values())
        self._cpu_self0 = time.process_time()
        self._thread_laps = [thread_cpu()]
        self.laps = [self._now()]

    def lap(self) -> None:
        self.laps.append(self._now())
        if len(self._thread_laps) < 3:  # start, it_1, it_2: the steady window begins at it_2
            self._thread_laps.append(thread_cpu())

    def stop(self) -> None:
        self.end = self._now()
        self._cpu_self = time.process_time() - self._cpu_self0
        threads1 = thread_cpu()
        self._threads = len(threads1)

        def busy(t0):
            deltas = sorted((threads1[t] - t0.get(t, 0.0) for t in threads1), reverse=True)
            top = deltas[0] if deltas else 0.0
            return sum(1 for d in deltas if top > 0 and d > 0.1 * top), [round(d, 2) for d in deltas[:4]]

        self._busy_all = busy(self._thread_laps[0])
        self._busy_steady = busy(self._thread_laps[-1])

    def summary(self, batch: int, k: int) -> dict:
        """The figures of the module docstring; laps must be [start, it_1, …, it_{k+1}]."""
        if len(self.laps) != k + 2:
            raise RuntimeError(f"expected {k + 2} laps (start + {k + 1} iterations), got {len(self.laps)}")
        (w0, _), (w2, c2), (w_end, c_end) = self.laps[0], self.laps[2], self.end
        points = self.laps[1:] + [self.end]
        return {
            "batch": batch, "iterations_timed": k,
            "rate": k * batch / (w_end - w2),
            "rate_incl_first": (k + 1) * batch / (w_end - w0),
            "rate_cpu": k * batch / (c_end - c2) if c_end > c2 else None,
            "steady_wall_s": w_end - w2, "steady_cpu_s": c_end - c2, "wall_s": w_end - w0,
            "iteration_s": [round(b[0] - a[0], 3) for a, b in zip(points[:-1], points[1:])],
            "cpu_per_wall": self._cpu_self / (w_end - w0),
            "children": len(self._kids_seen),
            "threads": self._threads,
            "busy_threads": self._busy_steady[0], "thread_cpu_s": self._busy_steady[1],
            "busy_threads_incl_first": self._busy_all[0], "thread_cpu_s_incl_first": self._busy_all[1],
        }


def one_thread_torch() -> None:
    """One intra-op and one inter-op thread for torch (call before any torch work)."""
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (torch allows it once, before parallel work)
        pass


def emit(result: dict) -> None:
    """Print the driver's result line (the line bench.py reads)."""
    sys.stdout.flush()
    print("RESULT " + json.dumps(result), flush=True)
