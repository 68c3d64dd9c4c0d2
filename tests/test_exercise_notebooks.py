"""The exercise pipeline: committed student notebooks match their sources and leak no
solution; graded, the student versions fail every part while all their other cells run,
and the solutions get full marks."""

import shutil
from pathlib import Path

import pytest

from harl_mini.grading import CHECKS, EXERCISES
from harl_mini.grading.notebooks import (
    BEGIN,
    TABLE_MARKER,
    exercise_id,
    exercise_sources,
    exercise_title,
    read_notebook,
    render,
    solution_regions,
    student_notebook,
    sync_problems,
    write_student_notebooks,
)
from harl_mini.grading.runner import Limits, grade_files

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "exercises" / "src"
OUT = ROOT / "exercises"
SOURCES = exercise_sources(SRC)
STUDENTS = sorted(OUT.glob("ex*.ipynb"))


def test_there_are_exercises_and_each_has_its_checks_module():
    assert SOURCES and len(SOURCES) == len(STUDENTS)
    assert [exercise_id(s) for s in SOURCES] == list(EXERCISES)
    assert exercise_title(SRC / "ex02_1_gae.md") == "Exercise 2.1"


def test_committed_student_notebooks_are_in_sync_and_leak_nothing():
    assert sync_problems(SRC, OUT) == []


def test_regenerating_is_byte_identical(tmp_path):
    written = write_student_notebooks(SRC, tmp_path)
    assert [p.name for p in written] == [p.name for p in STUDENTS]
    for target in written:
        assert target.read_bytes() == (OUT / target.name).read_bytes(), target.name


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_student_version_has_one_stub_per_solution_its_table_and_no_outputs(src):
    regions = [r for c in read_notebook(src).cells if c.cell_type == "code" for r in solution_regions(c.source)]
    nb = student_notebook(src)
    text = "\n".join(c.source for c in nb.cells)
    assert regions and BEGIN not in text and TABLE_MARKER not in text
    assert text.count("raise NotImplementedError") == len(regions)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    exercise = exercise_id(src)
    assert nb.metadata["harl_mini"]["exercise"] == exercise
    for check in CHECKS[exercise].values():  # the table lists every check, part and tolerance
        assert f"`{check.name}`" in text and check.tolerance in text
        assert all(f"| {part} | {points:g} |" in text for part, points in check.parts.items())
        assert f"grading.{exercise}.{check.name}({check.function})" in text, f"{src.name}: no check cell for {check.name}"


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


def test_student_versions_fail_every_part_and_run_everything_else():
    """Graded as handed out, every part fails ("not implemented"), and no other cell raises."""
    results = grade_files(STUDENTS, seed=1, limits=Limits(check_timeout=30, notebook_timeout=120))
    for result in results:
        assert result.status == "graded" and result.points == 0, result.path.name
        assert [c.check for c in result.checks] == list(CHECKS[result.exercise]), result.path.name
        for check in result.checks:
            for part in check.parts:
                assert not part.ok and "is not implemented yet" in part.message, (result.path.name, part.line())
        assert result.notes == [], (result.path.name, result.notes)


def test_solutions_get_full_marks_from_the_grader():
    """The grader's verdict on each solution (the solutions' own run is nbval's job)."""
    results = grade_files(SOURCES, seed=2, run_kernel=False)
    for result in results:
        assert result.passed, (result.path.name, [p.line() for c in result.checks for p in c.parts if not p.ok])
        assert not any(c.warning for c in result.checks), result.path.name
    print({r.exercise: f"{r.seconds:.1f} s" for r in results})
