"""Where a label lives in the built book, and how the book renders it.

A check names the equation it tests by its MyST label (``eq-gae``); a student reads the
book, where that equation is "(21)" in §2.6 of Chapter 2. :func:`lookup` turns the label
into a :class:`BookRef` with the rendered number, the chapter and section titles and the
page anchor (``chapters/ch02_policy_gradient.html#equation-eq-gae``).

The numbers are derived from the sources in ``_toc.yml`` order, the way Sphinx assigns them
in this book: ``numfig`` is on and the table of contents is not numbered, so labelled
display equations get one running number through the whole book (not per chapter), and
each ``{prf:...}`` directive type (algorithm, lemma, theorem, ...) has its own running
number. ``tests/test_grading.py`` compares the result with a built book when one exists.
If the sources are missing (an installed package without the book), :func:`lookup` returns
``None`` and messages fall back to the bare label.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BookRef", "lookup", "cite", "book_root", "all_refs"]

_EQ_LABEL = re.compile(r"^\s*(?:\$\$.*)?\$\$\s*\(([\w.:-]+)\)\s*$")  # "$$ (label)" or "$$ x $$ (label)"
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\{([\w:-]+)\})?\s*(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_OPTION = re.compile(r"^\s*:([\w-]+):\s*(.*)$")
#: sphinx-proof directives without a number
_UNNUMBERED = {"proof"}


@dataclass(frozen=True)
class BookRef:
    """A labelled equation or ``{prf:...}`` block as the built book shows it."""

    label: str
    kind: str  # "equation", or the prf type: "algorithm", "lemma", "theorem", ...
    number: int | None
    doc: str  # "chapters/ch02_policy_gradient"
    chapter: str  # "2. Policy gradients and GAE"
    section: str  # "2.6 Generalised advantage estimation" ("" before the first section)
    title: str = ""  # the directive's title, e.g. "TRPO (one iteration)"

    @property
    def url(self) -> str:
        anchor = f"equation-{self.label}" if self.kind == "equation" else self.label
        return f"{self.doc}.html#{anchor}"

    @property
    def name(self) -> str:
        """``eq. (21)``, ``Algorithm 2 (TRPO (one iteration))``, ``Lemma 6``."""
        if self.kind == "equation":
            return f"eq. ({self.number})"
        kind = self.kind.capitalize()
        name = f"{kind} {self.number}" if self.number is not None else f"{kind} `{self.label}`"
        return f"{name} ({self.title})" if self.title else name

    def where(self) -> str:
        """``eq. (21) in §2.6 "Generalised advantage estimation" of Chapter 2 (<url>)``."""
        chapter = self.chapter.split(" ", 1)
        chapter_name = f"Chapter {chapter[0].rstrip('.')}" if chapter[0].rstrip(".").isdigit() else self.chapter
        section = self.section.split(" ", 1)
        if len(section) == 2 and re.fullmatch(r"[\d.]+", section[0]):
            place = f"§{section[0]} \u201c{section[1]}\u201d of {chapter_name}"
        elif self.section:
            place = f"\u201c{self.section}\u201d of {chapter_name}"
        else:
            place = chapter_name
        return f"{self.name} in {place} ({self.url})"


def book_root() -> Path | None:
    """The repository root holding ``_toc.yml`` next to the package, or None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "_toc.yml").is_file() else None


def _toc_docs(root: Path) -> list[str]:
    """Every document of ``_toc.yml`` in the order Sphinx walks the tree."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    docs = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                docs.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return docs


def _markdown_lines(root: Path, doc: str) -> list[str]:
    """The Markdown text of one document (code cells dropped), line by line."""
    md, ipynb = root / f"{doc}.md", root / f"{doc}.ipynb"
    if md.is_file():
        lines, out, code_fence = md.read_text(encoding="utf-8").splitlines(), [], None
        if lines and lines[0].strip() == "---":  # front matter
            end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
            lines = lines[end + 1:]
        for line in lines:
            fence = _FENCE.match(line)
            if code_fence is None and fence and fence.group(3) == "code-cell":
                code_fence = fence.group(1)
                continue
            if code_fence is not None:
                if line.strip() == code_fence:
                    code_fence = None
                continue
            out.append(line)
        return out
    if ipynb.is_file():
        import nbformat

        nb = nbformat.read(str(ipynb), as_version=4)
        return [line for cell in nb.cells if cell.cell_type == "markdown" for line in cell.source.splitlines()]
    return []


@functools.lru_cache(maxsize=4)
def _index(root: Path, stamp: tuple) -> dict[str, BookRef]:
    refs: dict[str, BookRef] = {}
    counters: dict[str, int] = {}
    for doc in _toc_docs(root):
        chapter, section = "", ""
        lines = _markdown_lines(root, doc)
        for i, line in enumerate(lines):
            heading = _HEADING.match(line)
            if heading and not line.startswith("    "):
                level, text = len(heading.group(1)), heading.group(2)
                if level == 1 and not chapter:
                    chapter = text
                elif level == 2:
                    section = text
                continue
            eq = _EQ_LABEL.match(line)
            if eq:
                counters["equation"] = counters.get("equation", 0) + 1
                refs.setdefault(eq.group(1), BookRef(eq.group(1), "equation", counters["equation"], doc,
                                                     chapter, section))
                continue
            fence = _FENCE.match(line)
            if fence and fence.group(3) and fence.group(3).startswith("prf:"):
                kind = fence.group(3)[4:]
                if kind == "ref":
                    continue
                options = {}
                for following in lines[i + 1:i + 12]:
                    opt = _OPTION.match(following)
                    if not opt:
                        break
                    options[opt.group(1)] = opt.group(2).strip()
                number = None
                if kind not in _UNNUMBERED and "nonumber" not in options:
                    counters[kind] = counters.get(kind, 0) + 1
                    number = counters[kind]
                if "label" in options:
                    label = options["label"]
                    refs.setdefault(label, BookRef(label, kind, number, doc, chapter, section,
                                                   fence.group(4).strip()))
    return refs


def all_refs(root: Path | None = None) -> dict[str, BookRef]:
    """Every labelled equation and prf block of the book (empty without the sources)."""
    root = book_root() if root is None else Path(root)
    if root is None:
        return {}
    docs = [root / "_toc.yml", *sorted(root.glob("chapters/*.md")), *sorted(root.glob("book/*.md"))]
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in docs if p.exists())
    return _index(root, stamp)


def lookup(label: str, root: Path | None = None) -> BookRef | None:
    """The :class:`BookRef` of ``label``, or None if the book sources are not available."""
    return all_refs(root).get(label)


def cite(label: str) -> str:
    """How a message names ``label``: the rendered form with a link, else the label."""
    ref = lookup(label)
    return ref.where() if ref is not None else f"`{label}` in the book"
