"""Grade handed-in notebooks: the grader, not the notebook, decides what runs.

For one file, :func:`grade_file`

1. loads it (:mod:`harl_mini.grading.submission`): not a notebook, invalid JSON, another
   exercise's notebook, an unknown exercise each give a result row with the reason;
2. runs the notebook in a fresh kernel (:mod:`harl_mini.grading.kernel`), check cells left
   out, under a per-cell and a per-notebook time limit, to report cells that raise;
3. meanwhile (in a second thread) runs every check *registered* for the exercise, each in
   a fresh process forked from a server that imported only the package
   (:mod:`harl_mini.grading.sandbox`), on the notebook's definitions, with the grader's
   seed, a per-check time limit and a memory cap. Whatever the notebook did to its own kernel (patched checks, removed or commented
   check cells, removed tags, a redefined ``print``) cannot reach these processes.

The registered parts define the total. A check process that exceeds its time, dies
(``os._exit``, the memory cap) or reports that the student's code tampered with the
grader fails the part it was running and the parts after it, with one line saying why.

SIGINT and SIGTERM stop grading at once: the kernel's process group and every check
process are killed before :class:`GradingStopped` is raised (the CLI exits 130/143).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import secrets
import signal
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

from harl_mini.grading.core import CheckResult, PartResult

__all__ = ["Limits", "NotebookResult", "GradingStopped", "Stopper", "grade_file", "grade_files"]

_CHECK_CALL = re.compile(r"\bgrading\.\w+\.check_\w+\s*\(|^\s*check_\w+\s*\(", re.M)
GIB = 1024**3


@dataclass
class Limits:
    """Time and memory limits of one grading run (seconds, GiB)."""

    check_timeout: float = 30.0
    notebook_timeout: float = 300.0
    memory_gib: float = 4.0

    @property
    def cell_timeout(self) -> float:
        """A notebook cell may take as long as a check, and at least 30 s (imports on a busy machine)."""
        return min(max(self.check_timeout, 30.0), self.notebook_timeout)

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * GIB)


@dataclass
class NotebookResult:
    """The grade of one handed-in file."""

    path: Path
    status: str = "graded"  # graded | not-a-notebook | invalid-json | wrong-exercise | unknown-exercise | missing
    problem: str | None = None
    exercise: str | None = None
    seed: int | None = None
    checks: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def points(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_points(self) -> float:
        from harl_mini.grading import CHECKS

        if self.exercise in CHECKS:
            return sum(c.max_points for c in CHECKS[self.exercise].values())
        return 0.0

    @property
    def passed(self) -> bool:
        return self.status == "graded" and self.max_points > 0 and self.points == self.max_points

    @property
    def title(self) -> str:
        if not self.exercise:
            return ""
        chapter, number = self.exercise[2:].split("_")
        return f"Exercise {int(chapter)}.{int(number)}"

    def as_dict(self) -> dict:
        return {"file": str(self.path), "exercise": self.exercise, "title": self.title, "status": self.status,
                "problem": self.problem, "seed": self.seed, "points": self.points, "max_points": self.max_points,
                "passed": self.passed, "seconds": round(self.seconds, 2), "notes": self.notes,
                "checks": [c.as_dict() for c in self.checks]}


class GradingStopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; every child process has been killed."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Stopper:
    """Tracks the processes grading starts; on SIGINT/SIGTERM kills them all and stops.

    Used as a context manager around grading (signal handlers only in the main thread).
    """

    def __init__(self):
        self.groups: set[int] = set()
        self.processes: set = set()
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        self.kill_all()
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def reinstall(self) -> None:
        """Take the handlers back after an asyncio loop replaced them."""
        for sig in list(self._previous):
            signal.signal(sig, self._handler)

    def _handler(self, signum, frame) -> None:
        self.stop(signum)
        raise GradingStopped(signum)

    def stop(self, signum: int) -> None:
        """Kill the kernel, every check process and the check server (it may still be importing)."""
        self.signum = signum
        self.kill_all()
        from multiprocessing import forkserver

        pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def kill_all(self) -> None:
        for pgid in list(self.groups):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for process in list(self.processes):
            try:
                process.kill()
            except (ProcessLookupError, ValueError, AttributeError, OSError):
                pass

    def check(self) -> None:
        if self.signum is not None:
            raise GradingStopped(self.signum)


# --------------------------------------------------------------------------- check processes

_SERVER = None


def _context():
    """A forkserver whose server imported the grading package (and nothing of any student's).

    The server starts (and imports torch) in the background while the notebook runs.
    """
    global _SERVER
    if _SERVER is None:
        from multiprocessing import forkserver

        os.environ["HARL_MINI_GRADER_PID"] = str(os.getpid())  # see harl_mini/grading/_server.py
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["harl_mini.grading", "harl_mini.grading.sandbox", "harl_mini.grading._server"])
        with _main_hidden():
            forkserver.ensure_running()
        _SERVER = ctx
    return _SERVER


def _stopped_reason(process, timed_out: bool, limits: Limits) -> str:
    if timed_out:
        return (f"time limit: the check did not finish within {limits.check_timeout:g} s; your function may loop "
                "forever, wait, or be far too slow")
    code = process.exitcode
    if code is None:
        return "the check process did not finish"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        extra = " (most likely the memory limit)" if -code == signal.SIGKILL else ""
        return f"the check process was killed by {name}{extra} while running your function"
    return (f"the check process exited with code {code} while running your function: did it call os._exit(), "
            "exit() or quit(), or run out of memory?")


def _run_check(sub, check, seed: int, limits: Limits, stopper: Stopper) -> tuple[CheckResult, list[str]]:
    """One registered check in a fresh process; returns its result and notes."""
    result = CheckResult(check.exercise, check.name, seed=seed)
    notes: list[str] = []
    received: dict[str, PartResult] = {}
    reason = None
    start = time.perf_counter()
    if check.function not in sub.defined:
        reason = (f"the notebook defines no function `{check.function}` (the grader looks for `def {check.function}(...)` "
                  "in your code cells; see the grading rule in exercises/README.md)")
    else:
        ctx = _context()
        job = {"exercise": check.exercise, "check": check.name, "seed": seed, "memory_bytes": limits.memory_bytes,
               "snippets": [{"cell": s.cell, "source": s.source} for s in sub.snippets]}
        reader, writer = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_sandbox_entry(), args=(json.dumps(job).encode("utf-8"), writer), daemon=True)
        with _main_hidden():
            process.start()
        stopper.processes.add(process)
        writer.close()
        deadline = time.monotonic() + limits.check_timeout
        done = timed_out = False
        try:
            while True:
                stopper.check()
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                if not reader.poll(min(left, 0.25)):
                    continue
                try:
                    message = json.loads(reader.recv_bytes(1 << 20))
                except (EOFError, OSError, ValueError):
                    break  # the process ended (or sent garbage): see its exit code
                if "part" in message:
                    p = message["part"]
                    if p["part"] in check.parts and p["part"] not in received:
                        received[p["part"]] = PartResult(check.name, p["part"], check.parts[p["part"]], bool(p["ok"]),
                                                         p.get("message") or "", p.get("input"), p.get("hint"),
                                                         float(p.get("seconds") or 0.0), p.get("reference") or "")
                elif "note" in message:
                    notes.append(str(message["note"])[:300])
                elif "abort" in message:
                    reason = str(message["abort"])[:500]
                    break
                elif message.get("done"):
                    done = True
                    result.warning = message.get("warning")
                    break
        finally:
            if process.is_alive():
                process.kill()
            process.join(5)
            stopper.processes.discard(process)
            reader.close()
        if not done and reason is None:
            reason = _stopped_reason(process, timed_out, limits)
    result.seconds = time.perf_counter() - start
    first_missing = True
    for part, points in check.parts.items():
        if part in received:
            p = received[part]
            _add_name_hint(p, sub)
            result.parts.append(p)
            continue
        message = reason if first_missing else f"not run: the check stopped in an earlier part ({reason.split(':')[0]})"
        result.parts.append(PartResult(check.name, part, points, False, message or "this part did not report"))
        first_missing = False
    return result, notes


@contextlib.contextmanager
def _main_hidden():
    """Start a process without multiprocessing re-running the caller's ``__main__`` in it.

    The forkserver's children would otherwise import the main script again (and a script
    without an ``if __name__ == "__main__"`` guard would grade again, recursively).
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _sandbox_entry():
    from harl_mini.grading.sandbox import run_check

    return run_check


def _add_name_hint(part: PartResult, sub) -> None:
    """A NameError on a name the notebook assigns in a statement the grader skips: say why."""
    match = re.search(r"NameError: name '(\w+)' is not defined", part.message or "")
    if match and match.group(1) in sub.skipped and not part.hint:
        name = match.group(1)
        part.hint = (f"`{name}` is set in cell {sub.skipped[name]} by a statement the grader does not run (it keeps "
                     "only imports, def, class and literal constants): define it inside your function")


# --------------------------------------------------------------------------- notebooks


def _is_check_cell(cell) -> bool:
    return "check" in cell.get("metadata", {}).get("tags", []) or bool(_CHECK_CALL.search(cell.source))


def grade_file(path: Path, *, seed: int | None = None, limits: Limits | None = None, exercise: str | None = None,
               stopper: Stopper | None = None, run_kernel: bool = True) -> NotebookResult:
    """Grade one file (see the module docstring); never raises for what the file contains."""
    from harl_mini.grading import CHECKS
    from harl_mini.grading.kernel import run_in_kernel
    from harl_mini.grading.submission import load

    limits = limits or Limits()
    stopper = stopper or Stopper()
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    start = time.perf_counter()
    sub = load(path, expect=exercise)
    result = NotebookResult(Path(path), status=sub.status if sub.problem else "graded", problem=sub.problem,
                            exercise=sub.exercise, seed=seed if not sub.problem else None)
    if sub.problem:
        result.seconds = time.perf_counter() - start
        return result
    result.notes.extend(sub.notes)
    _context()  # start the check server now: it imports torch while the kernel starts
    checks = list(CHECKS[sub.exercise].values())
    outcomes: list = [None] * len(checks)

    def run_checks() -> None:  # in a thread, while the notebook runs in its kernel
        for i, check in enumerate(checks):
            if stopper.signum is not None:
                return
            try:
                outcomes[i] = _run_check(sub, check, seed, limits, stopper)
            except GradingStopped:
                return

    worker = threading.Thread(target=run_checks, name="harl_mini-checks", daemon=True)
    worker.start()
    try:
        if run_kernel:
            run = run_in_kernel(sub.nb, Path(path).resolve().parent, skip=_is_check_cell,
                                cell_timeout=limits.cell_timeout, notebook_timeout=limits.notebook_timeout,
                                memory_bytes=limits.memory_bytes + 3 * GIB, on_kernel=stopper.groups.add,
                                on_signal=stopper.stop)
            stopper.reinstall()
            stopper.groups.clear()  # the kernel is gone: forget its process group
            result.notes.extend(run.notes)
    finally:
        while worker.is_alive():
            worker.join(0.1)
    stopper.check()
    for check_result, notes in outcomes:
        result.checks.append(check_result)
        result.notes.extend(n for n in notes if n not in result.notes)  # each check process defines anew
    result.seconds = time.perf_counter() - start
    return result


def grade_files(paths, *, seed: int | None = None, limits: Limits | None = None, exercise: str | None = None,
                on_result=None, run_kernel: bool = True) -> list[NotebookResult]:
    """Grade several files with one seed (the same draws for everyone); SIGINT/SIGTERM stop it all."""
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    results = []
    with Stopper() as stopper:
        for path in paths:
            result = grade_file(path, seed=seed, limits=limits, exercise=exercise, stopper=stopper,
                                run_kernel=run_kernel)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results
