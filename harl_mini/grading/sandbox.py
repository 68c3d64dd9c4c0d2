"""One registered check on the student's definitions, in a process of its own.

:func:`run_check` is the entry point of a check process. The grader
(:mod:`harl_mini.grading.runner`) starts one per registered check, forked from a server
that has imported ``harl_mini.grading`` and nothing of the student's, so every check
starts from the package's own, unpatched code. The process

1. limits itself: address space (``RLIMIT_AS``), one torch thread, stdin/stdout/stderr on
   ``/dev/null``, and on Linux death with its parent (``PR_SET_PDEATHSIG``);
2. takes a :func:`fingerprint` of the modules a check relies on (the grading package,
   the oracles, ``torch``, ``numpy``, ``math``, ``builtins``);
3. executes the student's kept definitions (see :mod:`harl_mini.grading.submission`) in a
   fresh namespace;
4. runs the check, and before reporting each part's verdict compares the fingerprint: if
   the student's code replaced anything there (``torch.allclose = ...``, a check function,
   a module global of the grader, ``builtins.print``), the part and all later parts fail.

Verdicts go to the grader as JSON lines over a pipe. The grader kills the process when
its time is up, and treats an exit without a final message (``os._exit``, a crash, the
memory limit) as a failure of the part that was running.
"""

from __future__ import annotations

import builtins
import json
import os
import signal
import sys
import types

__all__ = ["run_check", "fingerprint", "changed", "limit_memory", "die_with_parent"]

#: modules (and their submodules) whose globals a student's code must leave alone
_WATCHED_ROOTS = ("harl_mini",)
_WATCHED = ("builtins", "math", "torch", "torch.linalg", "torch.nn.functional", "torch.autograd", "torch.testing",
            "numpy", "numpy.linalg", "numpy.testing", "functools", "itertools", "operator")
#: entries that change in normal use
_VOLATILE = {("builtins", "_")}


def _watched_modules():
    for name, module in list(sys.modules.items()):
        if module is None:
            continue
        if name in _WATCHED or name.split(".")[0] in _WATCHED_ROOTS:
            yield name, module


def fingerprint() -> dict:
    """Identity of every global of the watched modules and of ``torch.Tensor``'s attributes.

    Values that are modules are marked, so that a lazily imported submodule does not count
    as a change. The grading package's container globals (lists, dicts of checks) are
    fingerprinted by value too, since a student's code could mutate them in place.
    """
    import torch

    fp = {}
    for name, module in _watched_modules():
        fp[("sys.modules", name)] = id(module)
        try:
            items = list(vars(module).items())
        except TypeError:
            continue
        for key, value in items:
            fp[(name, key)] = "module" if isinstance(value, types.ModuleType) else id(value)
            if name.startswith("harl_mini.grading") and isinstance(value, (list, dict, set, tuple)):
                try:
                    fp[(name, key, "value")] = hash(repr(value))
                except Exception:  # noqa: BLE001 - an unrepresentable global is covered by its id
                    pass
    for cls in (torch.Tensor,):
        for key, value in list(vars(cls).items()):
            fp[(cls.__qualname__, key)] = id(value)
    return fp


def changed(before: dict, after: dict) -> list[str]:
    """What the student's code replaced, removed or added (new submodules and modules excepted)."""
    out = []
    for key in set(before) | set(after):
        if key[:2] in _VOLATILE or (key[0] == "sys.modules" and key not in before):
            continue
        if key not in before and (after[key] == "module" or ("sys.modules", key[0]) not in before
                                  and key[0] != "Tensor"):
            continue  # a newly imported module, or a new submodule attribute
        if before.get(key) != after.get(key):
            out.append(".".join(str(k) for k in key[:2]) if key[0] != "sys.modules" else f"sys.modules[{key[1]!r}]")
    return sorted(set(out))


def limit_memory(extra_bytes: int) -> None:
    """Cap the address space at its current size plus ``extra_bytes`` (Linux; no-op elsewhere)."""
    try:
        import resource

        with open("/proc/self/status") as status:
            vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        limit = vm + int(extra_bytes)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, StopIteration, ValueError):
        pass


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no orphans after a crash)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _quiet() -> None:
    """Student output goes nowhere; verdicts travel over the pipe only."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def run_check(job_json: bytes, conn) -> None:
    """Entry point of a check process (see the module docstring). ``job_json`` holds:
    ``exercise``, ``check``, ``seed``, ``memory_bytes`` and ``snippets`` [{cell, source}]."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    die_with_parent()
    _quiet()
    job = json.loads(job_json)
    import torch

    torch.set_num_threads(1)
    limit_memory(job["memory_bytes"])
    from harl_mini.grading.core import CHECKS, GradingAborted

    def send(message: dict) -> None:
        conn.send_bytes(json.dumps(message).encode("utf-8"))

    check = CHECKS[job["exercise"]][job["check"]]
    evaluate = check.evaluate
    before = fingerprint()
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    for snippet in job["snippets"]:
        try:
            exec(compile(snippet["source"], f"<notebook cell {snippet['cell']}>", "exec"), namespace)  # noqa: S102
        except BaseException as exc:  # noqa: BLE001 - a definition that fails is reported, the rest still runs
            send({"note": f"cell {snippet['cell']}: defining it raised {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:200]}"})
    tampered = changed(before, fingerprint())
    if tampered:
        send({"abort": "defining your functions changed the grader's environment ("
                       + ", ".join(tampered[:5]) + "); the grader cannot trust any check of this notebook"})
        return
    student_fn = namespace.get(check.function)
    if student_fn is None:
        send({"abort": f"no function `{check.function}` after running your definitions"})
        return

    def on_part(result) -> None:
        tampered = changed(before, fingerprint())
        if tampered:
            raise GradingAborted("your code changed the grader's environment while it was checked ("
                                 + ", ".join(tampered[:5]) + "); the grader cannot trust this check")
        send({"part": result.as_dict()})

    try:
        result = evaluate(student_fn, seed=job["seed"], on_part=on_part)
    except GradingAborted as exc:
        send({"abort": str(exc)})
        return
    send({"done": True, "seconds": result.seconds, "warning": result.warning})
