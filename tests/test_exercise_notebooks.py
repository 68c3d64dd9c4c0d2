"""The exercise pipeline: committed student notebooks match their sources, contain no
solution, and fail every check cell while all other cells run."""

import shutil
from pathlib import Path

import pytest

from harl_mini.grading.notebooks import (
    BEGIN,
    read_notebook,
    render,
    run_notebook,
    solution_regions,
    student_notebook,
    sync_problems,
    write_student_notebooks,
)

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "exercises" / "src"
OUT = ROOT / "exercises"
SOURCES = sorted(SRC.glob("ex*.md"))
STUDENTS = sorted(OUT.glob("ex*.ipynb"))


def test_there_are_exercises():
    assert SOURCES and len(SOURCES) == len(STUDENTS)


def test_committed_student_notebooks_are_in_sync_and_leak_nothing():
    assert sync_problems(SRC, OUT) == []


def test_regenerating_is_byte_identical(tmp_path):
    written = write_student_notebooks(SRC, tmp_path)
    assert [p.name for p in written] == [p.name for p in STUDENTS]
    for target in written:
        assert target.read_bytes() == (OUT / target.name).read_bytes(), target.name


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_student_version_has_one_stub_per_solution_and_no_outputs(src):
    regions = [r for c in read_notebook(src).cells if c.cell_type == "code" for r in solution_regions(c.source)]
    nb = student_notebook(src)
    text = "\n".join(c.source for c in nb.cells)
    assert regions and BEGIN not in text
    assert text.count("raise NotImplementedError") == len(regions)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_drift_and_leaks_are_detected(tmp_path):
    src_dir, out_dir = tmp_path / "src", tmp_path
    src_dir.mkdir()
    src = SOURCES[0]
    shutil.copy(src, src_dir / src.name)
    write_student_notebooks(src_dir, out_dir)
    target = out_dir / (src.stem + ".ipynb")
    assert sync_problems(src_dir, out_dir) == []

    # A hand edit to the committed notebook is drift.
    target.write_text(target.read_text().replace("Exercise", "Exercize", 1))
    assert any("differs" in p for p in sync_problems(src_dir, out_dir))

    # A solution pasted into the student notebook is drift and a leak.
    nb = student_notebook(src)
    solution = next(r for c in read_notebook(src).cells for r in solution_regions(c.source))
    nb.cells[-1].source += "\n" + solution
    target.write_text(render(nb))
    problems = sync_problems(src_dir, out_dir)
    assert any("leaked" in p for p in problems) and any("differs" in p for p in problems)

    # An edited source without regeneration is drift too.
    target.unlink()
    assert any("missing" in p for p in sync_problems(src_dir, out_dir))


@pytest.mark.slow
@pytest.mark.parametrize("student", STUDENTS, ids=lambda p: p.stem)
def test_student_version_fails_every_check_and_runs_everything_else(student):
    results = run_notebook(student)
    checks = [r for r in results if r.is_check]
    assert checks, f"{student.name}: no check cells"
    for r in checks:
        assert r.ename in {"CheckFailed", "NotImplementedError", "AssertionError"}, (r.check_name, r.ename, r.evalue)
        assert "not implemented yet" in r.evalue, r.evalue
    for r in results:
        if not r.is_check:
            assert r.ok, f"{student.name} cell {r.index} raised {r.ename}: {r.evalue}"
