"""One exercise source, two versions; and a runner that grades a notebook cell by cell.

Sources live in ``exercises/src/exNN_name.md`` (MyST-Markdown notebooks). They are the
*solution* version: code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is the
model answer, and cells tagged ``check`` call one graded check on the student's function.

:func:`student_notebook` derives the *student* version: each solution region becomes
``raise NotImplementedError(...)`` (the signature and docstring above it stay), cells
tagged ``solution-only`` are dropped, outputs are empty and cell ids are fixed, so that
regenerating gives the committed ``exercises/exNN_name.ipynb`` byte for byte.

:func:`run_notebook` executes any notebook in a fresh kernel of the current Python
environment and records every cell's error, and :func:`grade` prints the per-check
summary a student sees after ``make grade``.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = [
    "BEGIN",
    "END",
    "solution_regions",
    "student_notebook",
    "write_student_notebooks",
    "sync_problems",
    "CellResult",
    "run_notebook",
    "check_results",
    "grade",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CHECK_TAG = "check"
SOLUTION_ONLY_TAG = "solution-only"
_CHECK_CALL = re.compile(r"\b(check_\w+)\s*\(")
_DEF = re.compile(r"^\s*def\s+(\w+)\s*\(")


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a ``.ipynb`` or a MyST-Markdown ``.md`` notebook."""
    path = Path(path)
    if path.suffix == ".md":
        import jupytext

        return jupytext.read(str(path))
    return nbformat.read(str(path), as_version=4)


def exercise_title(path: Path) -> str:
    """``exercises/src/ex01_policy_evaluation.md`` -> ``Exercise 1``."""
    match = re.match(r"ex(\d+)_", Path(path).name)
    if not match:
        raise ValueError(f"{path}: exercise files are named exNN_topic.md")
    return f"Exercise {int(match.group(1))}"


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


def student_notebook(src: Path) -> nbformat.NotebookNode:
    """The student version of the exercise source ``src`` (see the module docstring)."""
    src = Path(src)
    title = exercise_title(src)
    source_nb = read_notebook(src)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
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
            new = nbformat.v4.new_markdown_cell(cell.source, metadata=metadata)
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
    """Regenerate every ``out_dir/exNN_*.ipynb`` from ``src_dir/exNN_*.md``."""
    written = []
    for src in sorted(Path(src_dir).glob("ex*.md")):
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
    sources = sorted(Path(src_dir).glob("ex*.md"))
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


# --------------------------------------------------------------------------- running


@dataclass
class CellResult:
    """What happened when one code cell ran."""

    index: int
    source: str
    tags: list[str]
    ename: str | None = None
    evalue: str | None = None

    @property
    def ok(self) -> bool:
        return self.ename is None

    @property
    def is_check(self) -> bool:
        return CHECK_TAG in self.tags

    @property
    def check_name(self) -> str:
        match = _CHECK_CALL.search(self.source)
        return match.group(1) if match else f"check in cell {self.index}"


def _kernel_manager():
    """A kernel manager that starts ipykernel with this very Python (the project's venv)."""
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class CurrentEnvironment(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())

    # IPC (Unix sockets) instead of TCP: no network ports, and no encryption warning.
    return KernelManager(kernel_name="python3", kernel_spec_manager=CurrentEnvironment(), transport="ipc",
                         ip=str(Path(tempfile.mkdtemp(prefix="harl_mini_kernel_")) / "kernel"))


def run_notebook(path: Path, timeout: int = 300) -> list[CellResult]:
    """Execute a notebook top to bottom in a fresh kernel, continuing past errors."""
    from nbclient import NotebookClient

    path = Path(path)
    nb = read_notebook(path)
    client = NotebookClient(nb, km=_kernel_manager(), timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    client.execute()
    results = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        result = CellResult(index, cell.source, list(cell.metadata.get("tags", [])))
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                result.ename, result.evalue = output.get("ename"), output.get("evalue")
                break
        results.append(result)
    return results


def check_results(results: list[CellResult]) -> list[CellResult]:
    return [r for r in results if r.is_check]


def grade(paths: list[Path], out=None) -> int:
    """Run each notebook in a fresh kernel and print a per-check summary; 0 iff all pass."""
    out = sys.stdout if out is None else out
    all_passed = True
    for path in paths:
        path = Path(path)
        if not path.exists():
            print(f"{path}: no such notebook", file=out)
            all_passed = False
            continue
        print(f"Grading {path} in a fresh kernel ...", file=out, flush=True)
        start = time.perf_counter()
        results = run_notebook(path)
        checks = check_results(results)
        for r in results:
            if not r.is_check and not r.ok:
                print(f"  note: cell {r.index} (not a check) raised {r.ename}: {r.evalue}", file=out)
        for r in checks:
            if r.ok:
                print(f"  PASS  {r.check_name}", file=out)
            else:
                message = r.evalue or ""
                if not message.startswith(r.check_name):
                    message = f"{r.check_name}: {r.ename}: {message}"
                print(f"  FAIL  {message}", file=out)
        passed = sum(r.ok for r in checks)
        if not checks:
            print("  (this notebook has no check cells)", file=out)
        print(f"{passed} of {len(checks)} checks passed in {path.name} "
              f"({time.perf_counter() - start:.1f} s)", file=out)
        all_passed &= bool(checks) and passed == len(checks)
    return 0 if all_passed else 1
