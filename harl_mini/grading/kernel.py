"""Run a notebook top to bottom in a fresh kernel, with limits that always fire.

The kernel is ipykernel from this very Python environment, started through
``_launch.py`` (address-space cap, killed when the grader dies), managed by an
*asynchronous* kernel manager, so that nbclient's cell timeout interrupts a runaway cell
(``interrupt_on_timeout``) and the whole run sits under one ``asyncio.wait_for``
deadline. A dead kernel (``os._exit``, the memory cap, a segfault) ends the run with one
note; on SIGINT/SIGTERM the caller's ``on_signal`` kills the kernel's process group at once.

The run informs the student (which cells raised, whether the notebook runs top to bottom)
but decides no points: :mod:`harl_mini.grading.runner` runs the registered checks itself.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["KernelRun", "run_in_kernel"]

_LAUNCH = str(Path(__file__).with_name("_launch.py"))


@dataclass
class KernelRun:
    """What happened in the kernel: notes for the student, and how it ended."""

    notes: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | timeout | dead | error
    seconds: float = 0.0


def _spec_manager(memory_bytes: int):
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    spec = get_kernel_dict()
    spec["argv"] = [sys.executable, _LAUNCH, str(int(memory_bytes)), "--", *spec["argv"]]

    class CurrentEnvironment(KernelSpecManager):
        """ipykernel of this Python, whatever kernel the notebook's metadata names."""

        def get_kernel_spec(self, kernel_name):
            return KernelSpec(resource_dir=RESOURCES, **spec)

    return CurrentEnvironment()


def _error_note(index: int, cell, timeout: int) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output.get("ename") in ("KeyboardInterrupt", "CellTimeout"):  # only the timeout interrupts
                return f"cell {index} ran longer than {timeout} s and was interrupted"
            evalue = " ".join(str(output.get("evalue", "")).split())
            if output.get("ename") == "MemoryError" or "allocate memory" in evalue or "not enough memory" in evalue:
                size = re.search(r"allocate (\d+) bytes", evalue)
                asked = f", asking for {int(size.group(1)) / 2**30:.3g} GiB" if size else ""
                return f"cell {index} ran out of memory ({output.get('ename')}{asked}; the grader caps memory)"
            evalue = evalue[:200]
            return f"cell {index} raised {output.get('ename')}: {evalue}"
    return None


async def _execute(nb, cwd: str, run: KernelRun, skip, cell_timeout: float, memory_bytes: int,
                   on_kernel: Callable[[int], None], on_signal: Callable[[int], None]) -> None:
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def handle(signum: int) -> None:
        on_signal(signum)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handle, sig)
        except (RuntimeError, NotImplementedError, ValueError):  # not the main thread, or Windows
            pass
    tmp = tempfile.mkdtemp(prefix="harl_mini_kernel_")
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=_spec_manager(memory_bytes),
                            transport="ipc", ip=os.path.join(tmp, "kernel"))
    timeout = max(1, int(round(cell_timeout)))
    client = NotebookClient(
        nb, km=km, timeout=timeout, startup_timeout=60, interrupt_on_timeout=True, allow_errors=True,
        error_on_timeout={"ename": "CellTimeout", "evalue": f"the cell ran longer than {timeout} s and was interrupted",
                          "traceback": []},
        record_timing=False, shutdown_kernel="immediate", resources={"metadata": {"path": cwd}})
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    try:
        client.reset_execution_trackers()
        await client.async_start_new_kernel(cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = getattr(km.provisioner, "pid", None)
        if pid is not None:
            on_kernel(pid)
        await client.async_start_new_kernel_client()
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not cell.source.strip() or skip(cell):
                continue
            try:
                await client.async_execute_cell(cell, index)
            except DeadKernelError:
                process = getattr(km.provisioner, "process", None)
                if process is not None and process.poll() is None or getattr(task, "cancelling", lambda: 0)():
                    # nbclient reports *our* cancellation (the notebook's deadline, a signal) as a dead kernel
                    raise asyncio.CancelledError from None
                code = process.poll() if process is not None else None
                how = f" (exit code {code})" if code is not None and code >= 0 else \
                    f" (killed by signal {-code})" if code is not None else ""
                run.notes.append(f"the kernel died{how} while running cell {index}: os._exit(), sys.exit() "
                                 "in a thread, a crash, or the memory limit; the cells after it did not run")
                run.status = "dead"
                return
            note = _error_note(index, cell, timeout)
            if note:
                run.notes.append(note)
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        process = getattr(km.provisioner, "process", None) if km.provisioner else None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()
        if process is not None:
            process.wait()
        try:
            await km.cleanup_resources()
        except Exception:  # noqa: BLE001 - best effort: the kernel is gone already
            pass
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (RuntimeError, NotImplementedError, ValueError):
                pass
        shutil.rmtree(tmp, ignore_errors=True)


def run_in_kernel(nb, cwd: Path, *, skip: Callable[[object], bool], cell_timeout: float, notebook_timeout: float,
                  memory_bytes: int, on_kernel: Callable[[int], None], on_signal: Callable[[int], None]) -> KernelRun:
    """Execute a copy of ``nb`` (cells for which ``skip`` is true are left out); never raises
    for what the notebook does. ``on_kernel(pid)`` gets the kernel's pid (its process group),
    ``on_signal(signum)`` is called on SIGINT/SIGTERM, after which the run is cancelled."""
    nb = copy.deepcopy(nb)
    run = KernelRun()
    start = time.perf_counter()

    async def main():
        try:
            await asyncio.wait_for(_execute(nb, str(cwd), run, skip, cell_timeout, memory_bytes, on_kernel, on_signal),
                                   notebook_timeout)
        except asyncio.TimeoutError:
            run.status = "timeout"
            run.notes.append(f"the notebook ran longer than {notebook_timeout:g} s and was stopped; the cells "
                             "after that point did not run")

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        run.status = "stopped"
    except Exception as exc:  # noqa: BLE001 - e.g. the kernel could not start: a note, not a crash
        run.status = "error"
        run.notes.append(f"the notebook could not be run in a kernel: {type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]}")
    run.seconds = time.perf_counter() - start
    return run
