"""One exercise source, two versions: the solution (``exercises/src``) and the student notebook.

Sources live in ``exercises/src/exCC_K_topic.md`` (MyST-Markdown notebooks; CC the chapter,
K the exercise's number in it). They are the *solution* version: code between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` is the model answer, and cells tagged
``check`` call the registered checks of ``harl_mini.grading.exCC_K`` on the student's
function.

:func:`student_notebook` derives the *student* version: each solution region becomes
``raise NotImplementedError(...)`` (the signature and docstring above it stay), cells
tagged ``solution-only`` are dropped, a Markdown line ``<!-- grading-table -->`` becomes
the table of checks, parts, points and tolerances (from the registry, so it cannot drift),
outputs are empty, cell ids are fixed and the notebook's metadata names its exercise
(``metadata.harl_mini.exercise``), so that regenerating gives the committed
``exercises/exCC_K_topic.ipynb`` byte for byte. Grading lives in
:mod:`harl_mini.grading.runner`.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

__all__ = [
    "BEGIN",
    "END",
    "SOURCE_NAME",
    "read_notebook",
    "exercise_id",
    "exercise_title",
    "exercise_sources",
    "solution_regions",
    "grading_table",
    "student_notebook",
    "write_student_notebooks",
    "sync_problems",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CHECK_TAG = "check"
SOLUTION_ONLY_TAG = "solution-only"
TABLE_MARKER = "<!-- grading-table -->"
#: ``ex02_1_gae.md``: chapter 2, exercise 1, topic "gae"
SOURCE_NAME = re.compile(r"^ex(\d\d)_(\d+)_([a-z0-9_]+)$")
_DEF = re.compile(r"^\s*def\s+(\w+)\s*\(")


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a ``.ipynb`` or a MyST-Markdown ``.md`` notebook."""
    path = Path(path)
    if path.suffix == ".md":
        import jupytext

        return jupytext.read(str(path))
    return nbformat.read(str(path), as_version=4)


def _name_match(path: Path) -> re.Match:
    match = SOURCE_NAME.match(Path(path).stem)
    if not match:
        raise ValueError(f"{path}: exercise files are named exCC_K_topic (chapter CC, exercise K), "
                         "e.g. ex02_1_gae.md")
    return match


def exercise_id(path: Path) -> str:
    """``exercises/src/ex02_1_gae.md`` -> ``ex02_1`` (the checks module's name)."""
    match = _name_match(path)
    return f"ex{match.group(1)}_{match.group(2)}"


def exercise_title(path: Path) -> str:
    """``exercises/src/ex02_1_gae.md`` -> ``Exercise 2.1``."""
    match = _name_match(path)
    return f"Exercise {int(match.group(1))}.{int(match.group(2))}"


def exercise_sources(src_dir: Path) -> list[Path]:
    """The exercise sources in ``src_dir`` (``exCC_K_topic.md``), sorted."""
    return sorted(p for p in Path(src_dir).glob("ex*.md") if SOURCE_NAME.match(p.stem))


def solution_regions(source: str) -> list[str]:
    """The texts between solution markers in one cell's source (markers excluded)."""
    regions, current = [], None
    for line in source.splitlines():
        if line.strip() == BEGIN:
            if current is not None:
                raise ValueError(f"nested {BEGIN!r}")
            current = []
        elif line.strip() == END:
            if current is None:
                raise ValueError(f"{END!r} without {BEGIN!r}")
            regions.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:
        raise ValueError(f"{BEGIN!r} without {END!r}")
    return regions


def _stub_source(source: str, title: str) -> str:
    """Replace every solution region by an indented ``raise NotImplementedError``."""
    out, inside, function = [], False, None
    for line in source.splitlines():
        match = _DEF.match(line)
        if match and not inside:
            function = match.group(1)
        if line.strip() == BEGIN:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            what = f"implement `{function}`" if function else "fill in this cell"
            out.append(f'{indent}raise NotImplementedError("{title}: {what}")')
        elif line.strip() == END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def grading_table(exercise: str) -> str:
    """Markdown: every registered check of ``exercise`` with its parts, points and tolerance."""
    from harl_mini.grading import CHECKS

    checks = CHECKS.get(exercise, {})
    if not checks:
        raise ValueError(f"no checks registered for {exercise}: add harl_mini/grading/{exercise}.py")
    rows = ["| Check | Your function | Part | Points |", "|:--|:--|:--|--:|"]
    for check in checks.values():
        for i, (part, points) in enumerate(check.parts.items()):
            first = i == 0
            rows.append(f"| {'`' + check.name + '`' if first else ''} | {'`' + check.function + '`' if first else ''} "
                        f"| {part} | {points:g} |")
    total = sum(c.max_points for c in checks.values())
    rows.append(f"| **Total** | | | **{total:g}** |")
    lines = ["\n".join(rows), "", "Tolerances:", ""]
    lines += [f"* `{check.name}`: `{check.tolerance}`" for check in checks.values()]
    return "\n".join(lines)


def student_notebook(src: Path) -> nbformat.NotebookNode:
    """The student version of the exercise source ``src`` (see the module docstring)."""
    src = Path(src)
    title = exercise_title(src)
    exercise = exercise_id(src)
    source_nb = read_notebook(src)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "harl_mini": {"exercise": exercise},
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    # first cell: install harl_mini when the kernel lacks it (Colab, Binder, a fresh Jupyter),
    # from the repository named once in _config.yml; a no-op where the package is installed
    from harl_mini import launch

    root = src.resolve().parents[2]
    url, branch = launch.repository(root) if (root / "_config.yml").is_file() else ("", "main")
    install = launch.install_cell(url, branch)
    install.id = f"{src.stem}-install"
    nb.cells.append(install)
    for cell in source_nb.cells:
        tags = list(cell.get("metadata", {}).get("tags", []))
        if SOLUTION_ONLY_TAG in tags:
            continue
        metadata = {"tags": tags} if tags else {}
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(_stub_source(cell.source, title), metadata=metadata)
        elif cell.cell_type == "markdown":
            if BEGIN in cell.source:
                raise ValueError(f"{src}: solution markers belong in code cells only")
            text = cell.source
            if TABLE_MARKER in text:
                text = text.replace(TABLE_MARKER, grading_table(exercise))
            new = nbformat.v4.new_markdown_cell(text, metadata=metadata)
        else:
            continue
        new.id = f"{src.stem}-{len(nb.cells):02d}"
        nb.cells.append(new)
    nbformat.validate(nb)
    return nb


def student_path(src: Path, out_dir: Path) -> Path:
    return Path(out_dir) / (Path(src).stem + ".ipynb")


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text written to disk (deterministic: sorted keys, fixed ids, no outputs)."""
    return nbformat.writes(nb) + "\n"


def write_student_notebooks(src_dir: Path, out_dir: Path) -> list[Path]:
    """Regenerate every ``out_dir/exCC_K_*.ipynb`` from ``src_dir/exCC_K_*.md``."""
    written = []
    for src in exercise_sources(src_dir):
        target = student_path(src, out_dir)
        target.write_text(render(student_notebook(src)), encoding="utf-8")
        written.append(target)
    return written


def sync_problems(src_dir: Path, out_dir: Path) -> list[str]:
    """Why the committed student notebooks differ from their sources (empty list: in sync).

    Reports a missing or drifted notebook, a student notebook without a source, leftover
    solution markers, and any solution line (12+ characters) that leaked into it.
    """
    problems = []
    sources = exercise_sources(src_dir)
    if not sources:
        problems.append(f"no exercise sources in {src_dir}")
    expected_names = {student_path(s, out_dir).name for s in sources}
    for orphan in sorted(Path(out_dir).glob("ex*.ipynb")):
        if orphan.name not in expected_names:
            problems.append(f"{orphan}: no source {Path(src_dir) / (orphan.stem + '.md')}")
    for src in sources:
        target = student_path(src, out_dir)
        if not target.exists():
            problems.append(f"{target}: missing; run `make exercises`")
            continue
        committed = target.read_text(encoding="utf-8")
        if committed != render(student_notebook(src)):
            problems.append(f"{target}: differs from what {src} generates; run `make exercises`")
        if BEGIN in committed or END in committed:
            problems.append(f"{target}: contains solution markers")
        student_text = "\n".join(c.source for c in nbformat.reads(committed, as_version=4).cells)
        for cell in read_notebook(src).cells:
            for region in solution_regions(cell.source) if cell.cell_type == "code" else []:
                for line in region.splitlines():
                    if len(line.strip()) >= 12 and line.strip() in student_text:
                        problems.append(f"{target}: solution line leaked: {line.strip()!r}")
    return problems
