"""The grader decides what runs, cannot be fooled by the notebook, and always returns.

Each test writes a variant of the student notebook of Exercise 1.1 (two checks, fast) and
grades it the way ``python -m harl_mini grade`` does: the notebook runs in a fresh kernel,
then every registered check runs in a fresh process. Runaway solutions use short limits.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from harl_mini.grading import cli
from harl_mini.grading.runner import Limits, grade_file, grade_files

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ROOT / "exercises" / "ex01_1_returns.ipynb"


def _cell_index(prefix: str) -> int:
    """The index of the student notebook's cell whose source starts with ``prefix``."""
    cells = nbformat.read(STUDENT, as_version=4).cells
    return next(i for i, c in enumerate(cells) if c.source.startswith(prefix))


# Found by content, so that a cell added in front (the install cell) cannot shift them.
RETURNS_CELL, RETURNS_CHECK = _cell_index("def discounted_returns"), _cell_index("grading.ex01_1.check_discounted_returns")
BACKUP_CELL, BACKUP_CHECK = _cell_index("def bellman_backup"), _cell_index("grading.ex01_1.check_bellman_backup")
IMPORT_CELL = _cell_index("import torch")

RETURNS = '''def discounted_returns(rewards, gamma):
    G = torch.zeros_like(rewards)
    running = torch.zeros((), dtype=rewards.dtype)
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * running
        G[t] = running
    return G'''
BACKUP = '''def bellman_backup(P, R, gamma, pi, V):
    Q = R + gamma * torch.einsum("sat,t->sa", P, V)
    return (pi * Q).sum(dim=1)'''
FAST = Limits(check_timeout=15, notebook_timeout=60, memory_gib=1.0)


def notebook(tmp_path: Path, name: str, returns: str | None = RETURNS, backup: str | None = BACKUP,
             edit=None) -> Path:
    """The student notebook of Exercise 1.1 with its two functions replaced (None: keep the stub)."""
    nb = nbformat.read(STUDENT, as_version=4)
    if returns is not None:
        nb.cells[RETURNS_CELL].source = returns
    if backup is not None:
        nb.cells[BACKUP_CELL].source = backup
    if edit is not None:
        edit(nb)
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def add_cell(nb, index: int, source: str, tags=()):
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)} if tags else {})
    cell.id = f"added-{index}-{len(nb.cells)}"
    nb.cells.insert(index, cell)


def lines_of(result) -> list[str]:
    return [p.line() for c in result.checks for p in c.parts]


# --------------------------------------------------------------------------- one notebook


def test_a_correct_notebook_gets_full_marks_json_and_feedback(tmp_path, capsys):
    path = notebook(tmp_path, "alice.ipynb")
    rc = cli.main([str(path), "--json", "--seed", "42", "--out", str(tmp_path / "fb")])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["passed"], report
    (result,) = report["results"]
    assert result["exercise"] == "ex01_1" and result["seed"] == 42
    assert result["points"] == result["max_points"] == 6
    assert [c["check"] for c in result["checks"]] == ["check_discounted_returns", "check_bellman_backup"]
    feedback = (tmp_path / "fb" / "alice.ipynb.feedback.md").read_text()
    assert "6 of 6 points (PASS)" in feedback and "| `check_bellman_backup` | gamma = 0 | PASS | 1/1 |" in feedback


def _comment_out_checks(nb):
    for i in (RETURNS_CHECK, BACKUP_CHECK):
        nb.cells[i].source = "# " + nb.cells[i].source


def _patch_checks_early(nb):
    nb.cells[IMPORT_CELL].source += ("\ngrading.ex01_1.check_discounted_returns = lambda f, *a, **k: print('PASS')"
                           "\ngrading.ex01_1.check_bellman_backup = lambda f, *a, **k: print('PASS')")


def _remove_check_tags(nb):
    for i in (RETURNS_CHECK, BACKUP_CHECK):
        nb.cells[i].metadata = {}


def _redefine_print(nb):
    nb.cells[IMPORT_CELL].source += "\nimport builtins\nbuiltins.print = lambda *a, **k: None\nprint = lambda *a, **k: None"


def _assign_reference_over_stub(nb):
    add_cell(nb, RETURNS_CHECK, "import harl_mini.advantages\n"
                                "discounted_returns = harl_mini.advantages.discounted_returns")
    add_cell(nb, BACKUP_CHECK + 1, "from harl_mini.tabular import bellman_expectation_backup as bellman_backup")


PATCH_ORACLE = '''def discounted_returns(rewards, gamma):
    import harl_mini.grading.ex01_1 as checks
    checks.discounted_returns = lambda r, g: torch.zeros_like(r)  # make the oracle agree with me
    return torch.zeros_like(rewards)'''
PATCH_TORCH = '''def bellman_backup(P, R, gamma, pi, V, _=setattr(torch.Tensor, "__sub__", lambda a, b: torch.zeros(()))):
    return V'''

TAMPERED = {
    # the three routes of the issue
    "check calls commented out": dict(returns=None, backup=None, edit=_comment_out_checks),
    "checks patched in an earlier cell": dict(returns=None, backup=None, edit=_patch_checks_early),
    "check tags removed": dict(returns=None, backup=None, edit=_remove_check_tags),
    # more routes
    "print redefined": dict(returns=None, backup=None, edit=_redefine_print),
    "the package's solution assigned over the stub": dict(returns=None, backup=None, edit=_assign_reference_over_stub),
    "grader's module global overwritten by the function": dict(returns=PATCH_ORACLE, backup=None),
    "torch patched while defining the function": dict(returns=None, backup=PATCH_TORCH),
}


#: routes that act on the notebook's kernel: graded with the kernel run, through the CLI
KERNEL_ROUTES = list(TAMPERED)[:4]


def test_every_tamper_route_fails_with_a_non_zero_exit(tmp_path, capsys):
    results = {}
    for i, (route, kw) in enumerate(TAMPERED.items()):
        path = notebook(tmp_path, f"tampered_{i}.ipynb", **kw)
        if route in KERNEL_ROUTES:
            rc = cli.main([str(path), "--json", "--seed", "5", "--timeout", "15", "--no-feedback"])
            (results[route],) = json.loads(capsys.readouterr().out)["results"]
        else:  # these act on the check process itself: the kernel run adds nothing
            result = grade_file(path, seed=5, limits=FAST, run_kernel=False)
            rc, results[route] = (0 if result.passed else 1), result.as_dict()
        assert rc == 1, route
        assert results[route]["points"] == 0 and not results[route]["passed"], (route, results[route])
    messages = {route: " ".join(p["message"] for c in r["checks"] for p in c["parts"]) for route, r in results.items()}
    for route in list(TAMPERED)[:5]:
        assert "not implemented yet" in messages[route], (route, messages[route])
    assert ("changed the grader's environment while it was checked (harl_mini.grading.ex01_1.discounted_returns)"
            in messages["grader's module global overwritten by the function"])
    assert ("defining your functions changed the grader's environment (Tensor.__sub__)"
            in messages["torch patched while defining the function"])
    notes = " ".join(results["the package's solution assigned over the stub"]["notes"])
    assert "the assignment to `discounted_returns` is ignored" in notes
    assert "binds `bellman_backup`, the name of a graded function" in notes


def test_the_last_def_is_graded_and_calling_the_package_from_it_is_allowed(tmp_path):
    """A later cell's def replaces an earlier one (as after a top-to-bottom run); a def that
    calls the package's own implementation is the student's function too (self-study book)."""
    def edit(nb):
        add_cell(nb, RETURNS_CHECK, RETURNS.replace("return G", "return G * gamma  # a later, wrong version"))
        add_cell(nb, BACKUP_CHECK + 1, "def bellman_backup(P, R, gamma, pi, V):\n"
                                       "    from harl_mini.tabular import FiniteMDP, bellman_expectation_backup\n"
                                       "    return bellman_expectation_backup(FiniteMDP(P, R, gamma), pi, V)")

    result = grade_file(notebook(tmp_path, "later.ipynb", backup=BACKUP.replace("gamma *", ""), edit=edit),
                        seed=3, limits=FAST, run_kernel=False)
    returns, backup = result.checks
    assert not returns.ok and "Hint: G_t starts with r_t itself" in " ".join(lines_of(result))
    assert backup.ok


def test_a_global_the_grader_skips_gets_a_precise_hint(tmp_path):
    returns = "SCALE = torch.tensor(1.0).item()\n\n" + RETURNS.replace("return G", "return G * SCALE")
    result = grade_file(notebook(tmp_path, "global.ipynb", returns=returns), seed=3, limits=FAST, run_kernel=False)
    part = result.checks[0].parts[0]
    assert not part.ok and "NameError: name 'SCALE'" in part.message
    assert f"`SCALE` is set in cell {RETURNS_CELL} by a statement the grader does not run" in part.hint


RUNAWAY_A = dict(  # a busy loop and a sleep past the limit, each also called in a notebook cell
    returns="def discounted_returns(rewards, gamma):\n    while True:\n        pass",
    backup="import time\n\ndef bellman_backup(P, R, gamma, pi, V):\n    time.sleep(1000)",
    edit=lambda nb: add_cell(nb, RETURNS_CHECK, "discounted_returns(torch.ones(3), 0.9)"),
)
RUNAWAY_B = dict(  # a process exit and a 50 GB allocation, each also called in a notebook cell
    returns="import os\n\ndef discounted_returns(rewards, gamma):\n    os._exit(1)",
    backup="def bellman_backup(P, R, gamma, pi, V):\n    return torch.empty(50 * 2**30, dtype=torch.uint8)",
    edit=lambda nb: [add_cell(nb, len(nb.cells), "bellman_backup(None, None, 0.9, None, None)"),
                     add_cell(nb, len(nb.cells), "discounted_returns(torch.ones(3), 0.9)")],
)


def test_runaway_solutions_end_in_one_fail_line_within_their_limits(tmp_path):
    limits = Limits(check_timeout=3, notebook_timeout=12, memory_gib=1.0)
    budget = limits.notebook_timeout + 2 * limits.check_timeout + 10
    for name, kw in [("loop_and_sleep.ipynb", RUNAWAY_A), ("exit_and_oom.ipynb", RUNAWAY_B)]:
        start = time.monotonic()
        result = grade_file(notebook(tmp_path, name, **kw), seed=1, limits=limits)
        elapsed = time.monotonic() - start
        assert elapsed < budget, f"{name}: {elapsed:.1f} s > {budget} s"
        assert result.points == 0
        returns, backup = (c.parts[0] for c in result.checks)
        notes = " ".join(result.notes)
        if name.startswith("loop"):
            assert returns.message.startswith("time limit: the check did not finish within 3 s"), returns.message
            assert backup.message.startswith("time limit"), backup.message
            assert "the notebook ran longer than 12 s and was stopped" in notes, notes
        else:
            assert "exited with code 1 while running your function" in returns.message, returns.message
            assert "`bellman_backup` ran out of memory (it asked for 50 GiB)" in backup.message, backup.line()
            assert "the kernel died (exit code 1)" in notes and "ran out of memory (RuntimeError, asking for 50 GiB" in notes, notes
        stopped = result.checks if name.startswith("loop") else result.checks[:1]
        for check in stopped:  # one line says why; the parts after it did not run
            assert all(p.message.startswith("not run: the check stopped") for p in check.parts[1:]), check


@pytest.mark.parametrize("sig,phase", [(signal.SIGINT, "kernel"), (signal.SIGTERM, "check"), (signal.SIGKILL, "check")])
def test_a_signal_stops_grading_at_once_and_leaves_no_process(tmp_path, sig, phase):
    """Ctrl-C and SIGTERM stop grading at once; even after kill -9 of the grader, the kernel,
    the check server and the check processes die with it (no orphan keeps spinning)."""
    psutil = pytest.importorskip("psutil")
    if phase == "kernel":
        path = notebook(tmp_path, "hangs_in_kernel.ipynb", edit=lambda nb: add_cell(nb, 2, "while True:\n    pass"))
    else:
        path = notebook(tmp_path, "hangs_in_check.ipynb",
                        returns="def discounted_returns(rewards, gamma):\n    while True:\n        pass")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harl_mini", "grade", str(path), "--timeout", "120",
                             "--notebook-timeout", "120", "--no-feedback"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)

    def running() -> bool:
        kids = parent.children(recursive=True)
        if phase == "kernel":
            return any("ipykernel_launcher" in " ".join(k.cmdline()) for k in kids if k.is_running())
        return any(k.ppid() != proc.pid and "ipykernel" not in " ".join(k.cmdline()) for k in kids if k.is_running())

    deadline = time.monotonic() + 60
    while not running():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the grader never reached the hanging code"
        time.sleep(0.2)
    time.sleep(1.0)  # let it spin
    descendants = parent.children(recursive=True)
    start = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    assert time.monotonic() - start < 5, "grading did not stop at once"
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + sig, (proc.returncode, out, err)
        assert "every kernel and check process was killed" in err
    time.sleep(2.0)
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [" ".join(p.cmdline()) for p in alive]


# --------------------------------------------------------------------------- a folder of submissions


def test_grading_a_folder_writes_one_csv_row_per_file(tmp_path, capsys):
    folder = tmp_path / "submissions"
    folder.mkdir()
    notebook(folder, "correct.ipynb")
    notebook(folder, "wrong.ipynb", returns=RETURNS.replace("return G", "return G * gamma"))
    notebook(folder, "infinite_loop.ipynb", returns="def discounted_returns(rewards, gamma):\n    while True:\n        pass")
    notebook(folder, "tampered.ipynb", returns=None, backup=None, edit=_patch_checks_early)
    notebook(folder, "missing_function.ipynb", edit=lambda nb: nb.cells.pop(BACKUP_CELL))
    (folder / "not_a_notebook.txt").write_text("I did the exercise on paper.\n")
    (folder / "invalid_json.ipynb").write_text('{"cells": [')
    other = nbformat.read(ROOT / "exercises" / "ex02_1_gae.ipynb", as_version=4)
    nbformat.write(other, str(folder / "other_exercise.ipynb"))

    start = time.monotonic()
    rc = cli.main([str(folder), "--exercise", "ex01_1", "--seed", "7", "--timeout", "4",
                   "--notebook-timeout", "40", "--memory", "1"])
    elapsed = time.monotonic() - start
    out = capsys.readouterr().out
    assert rc == 1
    table = (folder / "feedback" / "grades.csv").read_text()
    print(table)  # pasted into the report
    rows = {row["file"]: row for row in csv.DictReader(table.splitlines())}
    assert set(rows) == {"correct.ipynb", "wrong.ipynb", "infinite_loop.ipynb", "tampered.ipynb",
                         "missing_function.ipynb", "not_a_notebook.txt", "invalid_json.ipynb", "other_exercise.ipynb"}
    assert rows["correct.ipynb"]["verdict"] == "PASS" and rows["correct.ipynb"]["total"] == "6"
    assert rows["wrong.ipynb"]["ex01_1.check_discounted_returns"] == "0" and rows["wrong.ipynb"]["total"] == "3"
    assert "time limit" in rows["infinite_loop.ipynb"]["problem"] and rows["infinite_loop.ipynb"]["total"] == "3"
    assert rows["tampered.ipynb"]["total"] == "0" and "not implemented" in rows["tampered.ipynb"]["problem"]
    assert rows["missing_function.ipynb"]["total"] == "3"
    assert "defines no function `bellman_backup`" in rows["missing_function.ipynb"]["problem"]
    assert rows["not_a_notebook.txt"]["status"] == "not-a-notebook"
    assert rows["invalid_json.ipynb"]["status"] == "invalid-json"
    assert rows["other_exercise.ipynb"]["status"] == "wrong-exercise"
    assert "Exercise 2.1" in rows["other_exercise.ipynb"]["problem"]
    assert all(rows[f]["seed"] == "7" for f in rows if rows[f]["status"] == "graded")
    assert len(list((folder / "feedback").glob("*.feedback.md"))) == 8
    assert "1 of 8 files got full points" in out
    assert elapsed < 120


def test_unreadable_files_are_rows_not_crashes(tmp_path):
    (tmp_path / "binary.ipynb").write_bytes(b"\x80\x81\x82")
    (tmp_path / "list.ipynb").write_text("[1, 2, 3]")
    (tmp_path / "no_exercise.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    results = grade_files(sorted(tmp_path.iterdir()), seed=1, limits=FAST)
    assert [r.status for r in results] == ["invalid-json", "not-a-notebook", "unknown-exercise"]
    assert all(r.points == 0 and not r.passed for r in results)
