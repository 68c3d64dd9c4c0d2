"""What the grader writes: a summary for the terminal, JSON, a Markdown feedback file per
notebook, and one CSV row per handed-in file (for an instructor's gradebook)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from harl_mini.grading.core import CheckResult
from harl_mini.grading.runner import NotebookResult

__all__ = ["summary", "as_json", "feedback_markdown", "write_feedback", "write_csv", "csv_columns"]


def _pts(x: float) -> str:
    return f"{x:g}"


def _lines(check: CheckResult) -> list[str]:
    """One line per part; parts that did not run after a failure are folded into the line before."""
    out, skipped = [], []
    for part in check.parts:
        if not part.ok and part.message.startswith("not run:"):
            skipped.append(part)
            continue
        if skipped:
            out[-1] += f" Not run after it: {', '.join(p.part for p in skipped)} (0/{_pts(sum(p.max_points for p in skipped))})."
            skipped = []
        out.append(part.line())
    if skipped:
        out[-1] += f" Not run after it: {', '.join(p.part for p in skipped)} (0/{_pts(sum(p.max_points for p in skipped))})."
    if check.warning:
        out.append(f"WARN {check.warning}")
    return out


def summary(result: NotebookResult) -> str:
    """The terminal text for one file."""
    head = f"{result.path}"
    if result.status != "graded":
        return f"{head}: {result.problem}\n  FAIL {result.status}: 0 points"
    lines = [f"{head}: {result.title} (seed {result.seed})"]
    lines += [f"  note: {note}" for note in result.notes]
    for check in result.checks:
        lines += [f"  {line}" for line in _lines(check)]
    verdict = "PASS" if result.passed else "FAIL"
    lines.append(f"  {verdict} {result.title}: {_pts(result.points)}/{_pts(result.max_points)} points "
                 f"in {result.seconds:.1f} s")
    if not result.passed and result.checks:
        first = next((c for c in result.checks if not c.ok), result.checks[0])
        lines.append(f"  replay a check in the notebook: grading.{result.exercise}.{first.check}"
                     f"(<your function>, seed={result.seed})")
    return "\n".join(lines)


def as_json(results: list[NotebookResult]) -> str:
    return json.dumps({"passed": all(r.passed for r in results), "results": [r.as_dict() for r in results]},
                      indent=2, ensure_ascii=False)


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def feedback_markdown(result: NotebookResult) -> str:
    """A Markdown page: the verdict, a table of every check and part, then each failure in detail."""
    lines = [f"# Feedback: {result.path.name}", ""]
    if result.status != "graded":
        lines += [f"**Not graded**: {result.problem}.", "", "Points: 0"]
        return "\n".join(lines) + "\n"
    lines += [f"**{result.title}**: {_pts(result.points)} of {_pts(result.max_points)} points "
              f"({'PASS' if result.passed else 'FAIL'}), graded in {result.seconds:.1f} s with seed {result.seed}.", ""]
    if result.notes:
        lines += ["Notes (they do not change the points):", ""] + [f"* {_cell(n)}" for n in result.notes] + [""]
    lines += ["| Check | Part | Verdict | Points |", "|:--|:--|:--|--:|"]
    for check in result.checks:
        for part in check.parts:
            lines.append(f"| `{check.check}` | {_cell(part.part)} | {'PASS' if part.ok else 'FAIL'} "
                         f"| {_pts(part.points)}/{_pts(part.max_points)} |")
    lines.append(f"| **Total** | | | **{_pts(result.points)}/{_pts(result.max_points)}** |")
    failures = [(c, p) for c in result.checks for p in c.parts if not p.ok]
    if failures:
        lines += ["", "## What failed", ""]
        for check, part in failures:
            lines += [f"### `{check.check}`: {part.part}", "", f"* **Why**: {part.message}"]
            if part.input:
                lines.append(f"* **Failing input**: {part.input}")
            if part.hint:
                lines.append(f"* **Hint**: {part.hint}")
            if part.reference:
                lines.append(f"* **In the book**: {part.reference}")
            lines.append("")
        lines.append(f"Replay a check in your notebook with the grader's draws: "
                     f"`grading.{result.exercise}.{failures[0][0].check}(<your function>, seed={result.seed})`.")
    warnings = [c.warning for c in result.checks if c.warning]
    if warnings:
        lines += ["", "## Warnings", ""] + [f"* {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def write_feedback(result: NotebookResult, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{result.path.name}.feedback.md"
    target.write_text(feedback_markdown(result), encoding="utf-8")
    return target


def csv_columns(results: list[NotebookResult]) -> list[str]:
    """file, exercise, status, seed, one column per registered check met, total, max, seconds, problem."""
    from harl_mini.grading import CHECKS

    checks = []
    for exercise in sorted({r.exercise for r in results if r.exercise in CHECKS and r.status == "graded"}):
        checks += [f"{exercise}.{name}" for name in CHECKS[exercise]]
    return ["file", "exercise", "status", "verdict", "seed", *checks, "total", "max_total", "seconds", "problem"]


def write_csv(results: list[NotebookResult], target: Path) -> Path:
    columns = csv_columns(results)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for r in results:
            row = {"file": r.path.name, "exercise": r.exercise or "", "status": r.status,
                   "verdict": "PASS" if r.passed else "FAIL",
                   "seed": "" if r.seed is None else r.seed, "total": _pts(r.points),
                   "max_total": _pts(r.max_points), "seconds": f"{r.seconds:.1f}", "problem": r.problem or ""}
            if r.status == "graded":
                for check in r.checks:
                    row[f"{r.exercise}.{check.check}"] = _pts(check.points)
                failed = [(c, p) for c in r.checks for p in c.parts if not p.ok]
                if failed:
                    check, part = failed[0]
                    more = f" (and {len(failed) - 1} more parts)" if len(failed) > 1 else ""
                    message = part.message if len(part.message) <= 110 else part.message[:109].rstrip() + "…"
                    row["problem"] = f"{check.check} [{part.part}]: {message}{more}"
            writer.writerow(row)
    return Path(target)
