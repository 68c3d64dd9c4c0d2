"""A handed-in file: is it a notebook, of which exercise, and what does it define?

**What the grader grades** (the rule :func:`definitions` implements). From the notebook's
code cells, in order, the grader keeps only *definitions*:

* ``def`` and ``class`` statements (with their decorators),
* ``import`` statements, except one that binds the name of a graded function,
* assignments of literal constants to plain names (``EPS = 1e-8``, ``SIZES = (2, 3)``).

Everything else at the top level of a cell is not part of the submission and never runs
during grading: calls, prints, loops, assignments of computed values (``gae = lambda ...``,
``gae = wrapped(gae)``), attribute assignments (``torch.allclose = ...``,
``grading.ex02_1.check_gae = ...``), magics, and the check cells. If a name is defined twice,
the later definition counts, as after a top-to-bottom run. So "your function ``gae``" is the
last ``def gae`` in the notebook, with the imports, helper functions, classes and literal
constants it uses. A cell with a syntax error contributes nothing (a note says so).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Snippet", "Submission", "load", "definitions"]

_CHECK_CALL = re.compile(r"\bgrading\.(ex\d\d_\d+)\.check_\w+\s*\(")
_FILE_EXERCISE = re.compile(r"(ex\d\d_\d+)")


@dataclass
class Snippet:
    """The kept definitions of one code cell; line numbers match the cell's."""

    cell: int
    source: str

    @property
    def filename(self) -> str:
        return f"<notebook cell {self.cell}>"


@dataclass
class Submission:
    """A file handed in, loaded as far as possible; ``problem`` says why it cannot be graded."""

    path: Path
    nb: object = None
    exercise: str | None = None
    problem: str | None = None
    status: str = "ok"
    snippets: list[Snippet] = field(default_factory=list)
    defined: set[str] = field(default_factory=set)
    skipped: dict[str, int] = field(default_factory=dict)  # top-level names assigned by skipped statements -> cell
    notes: list[str] = field(default_factory=list)


def _read(path: Path):
    """The notebook in ``path``, or ``(status, problem)`` saying why it is not one."""
    import nbformat

    if path.suffix == ".md":
        head = path.read_text(encoding="utf-8", errors="replace")[:1000]
        if not (head.startswith("---") and "kernelspec:" in head):
            return "not-a-notebook", "not a notebook: a .md file without jupytext front matter"
        import jupytext

        return jupytext.read(str(path))
    if path.suffix != ".ipynb":
        return "not-a-notebook", f"not a notebook: expected a .ipynb file, got {path.suffix or 'no extension'}"
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        return "invalid-json", "not a notebook: the file is not UTF-8 text"
    except json.JSONDecodeError as exc:
        return "invalid-json", f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if not isinstance(raw, dict) or "cells" not in raw:
        return "not-a-notebook", "valid JSON but not a Jupyter notebook (no 'cells')"
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - any nbformat complaint is a "not a notebook" row
        return "not-a-notebook", f"not a valid Jupyter notebook: {' '.join(str(exc).split())[:200]}"
    return nb


def _identify(nb, path: Path, registered) -> tuple[str | None, str]:
    """The exercise id from the notebook's metadata, else its file name, else its check calls."""
    meta = nb.metadata.get("harl_mini", {}) if hasattr(nb, "metadata") else {}
    exercise = meta.get("exercise") if isinstance(meta, dict) else None
    if exercise in registered:
        return exercise, "metadata"
    match = _FILE_EXERCISE.search(path.stem)
    if match and match.group(1) in registered:
        return match.group(1), "file name"
    calls: dict[str, int] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for ex in _CHECK_CALL.findall(cell.source):
                calls[ex] = calls.get(ex, 0) + 1
    calls = {ex: n for ex, n in calls.items() if ex in registered}
    if calls:
        return max(calls, key=calls.get), "check calls"
    return None, ""


def _python_source(cell_source: str) -> str:
    """The cell as plain Python: IPython magics become calls (which the rule then skips)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell_source)


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return False


def _bound_by_import(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [(alias.asname or alias.name).split(".")[0] for alias in node.names]


def definitions(nb, graded: set[str]) -> tuple[list[Snippet], set[str], dict[str, int], list[str]]:
    """Apply the rule of the module docstring to the code cells of ``nb``.

    Returns the kept snippets (one per cell that keeps something), the graded names that
    are defined by ``def``/``class``, the names assigned by skipped top-level statements
    (for a precise hint when a function uses one), and notes for the student.
    """
    snippets, defined, skipped, notes = [], set(), {}, []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        try:
            source = _python_source(cell.source)
            tree = ast.parse(source)
        except SyntaxError as exc:
            notes.append(f"cell {index} has a syntax error ({exc.msg}, line {exc.lineno}); none of its "
                         "definitions are graded")
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. a magic IPython cannot transform
            notes.append(f"cell {index} could not be read as Python ({type(exc).__name__}); none of its "
                         "definitions are graded")
            continue
        lines = source.splitlines()
        keep = [""] * len(lines)
        kept_any = False
        owners: dict[int, int] = {}  # line -> how many top-level statements touch it
        for node in tree.body:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            for i in range(first - 1, node.end_lineno):
                owners[i] = owners.get(i, 0) + 1
        for node in tree.body:
            kept: ast.AST | None = None
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kept = node
                if node.name in graded:
                    defined.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = _bound_by_import(node)
                clash = [n for n in names if n in graded]
                if clash:
                    notes.append(f"cell {index}: `{ast.unparse(node)}` binds {', '.join('`' + n + '`' for n in clash)}, "
                                 "the name of a graded function; the grader ignores this import and grades your `def`")
                    rest = [a for a in node.names if (a.asname or a.name).split(".")[0] not in graded]
                    if rest:
                        node.names = rest
                        kept = node
                        _write_over(keep, node, ast.unparse(node))
                        kept_any = True
                        continue
                else:
                    kept = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                simple = all(isinstance(t, ast.Name) for t in targets)
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if simple and node.value is not None and _is_literal(node.value) and not set(names) & graded:
                    kept = node
                else:
                    for t in targets:
                        for name in (n.id for n in ast.walk(t) if isinstance(n, ast.Name)):
                            skipped.setdefault(name, index)
                    if set(names) & graded:
                        notes.append(f"cell {index}: the assignment to {', '.join('`' + n + '`' for n in set(names) & graded)} "
                                     "is ignored; the grader grades the function you define with `def`")
            if kept is not None:
                start = min([kept.lineno] + [d.lineno for d in getattr(kept, "decorator_list", [])])
                if any(owners.get(i, 0) > 1 for i in range(start - 1, kept.end_lineno)):  # `a = 1; print(a)`
                    _write_over(keep, kept, ast.unparse(kept))
                else:
                    for i in range(start - 1, kept.end_lineno):
                        keep[i] = lines[i]
                kept_any = True
        if kept_any:
            snippets.append(Snippet(index, "\n".join(keep) + "\n"))
    return snippets, defined, skipped, notes


def _write_over(keep: list[str], node: ast.AST, text: str) -> None:
    """Put ``text`` (a statement rewritten by ast.unparse) on the node's first line."""
    for i in range(node.lineno - 1, node.end_lineno):
        keep[i] = ""
    keep[node.lineno - 1] = text


def load(path: Path, expect: str | None = None) -> Submission:
    """Load ``path`` and find its exercise and definitions; never raises on a bad file."""
    from harl_mini.grading import CHECKS

    path = Path(path)
    sub = Submission(path)
    if not path.is_file():
        sub.status, sub.problem = "missing", "no such notebook (file not found)"
        return sub
    try:
        nb = _read(path)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is a row, not a crash
        sub.status, sub.problem = "not-a-notebook", f"could not be read: {type(exc).__name__}: {exc}"[:300]
        return sub
    if isinstance(nb, tuple):
        sub.status, sub.problem = nb
        return sub
    sub.nb = nb
    exercise, how = _identify(nb, path, CHECKS)
    if exercise is None:
        if expect is None:
            sub.status = "unknown-exercise"
            sub.problem = ("cannot tell which exercise this notebook belongs to (no harl_mini metadata, exercise "
                           "name in the file name or check call); pass --exercise")
            return sub
        exercise = expect
    elif expect is not None and exercise != expect:
        sub.status = "wrong-exercise"
        sub.problem = f"this is the notebook of {_title(exercise)} (by its {how}), not of {_title(expect)}"
        sub.exercise = exercise
        return sub
    sub.exercise = exercise
    graded = {check.function for check in CHECKS[exercise].values()}
    sub.snippets, sub.defined, sub.skipped, sub.notes = definitions(nb, graded)
    return sub


def _title(exercise: str) -> str:
    chapter, number = exercise[2:].split("_")
    return f"Exercise {int(chapter)}.{int(number)}"
