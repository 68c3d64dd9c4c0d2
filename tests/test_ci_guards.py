"""The guards that make a broken notebook impossible to land, exercised on throwaway files:

* nbval (through harl_mini's MyST plugin) collects ``.md`` notebooks and fails on a cell
  that raises, while a ``raises-exception`` tag lets an intended error through;
* the Jupyter Book build, configured like ours, fails when a cell raises, on every rebuild.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HEADER = textwrap.dedent("""\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
        format_version: 0.13
        jupytext_version: 1.19.6
    kernelspec:
      display_name: Python 3 (ipykernel)
      language: python
      name: python3
    ---
    """)


def myst_notebook(*cells: str, tags: dict[int, str] | None = None) -> str:
    parts = [HEADER, "# A page\n"]
    for i, code in enumerate(cells):
        tag = f":tags: [{tags[i]}]\n\n" if tags and i in tags else ""
        parts.append(f"```{{code-cell}} ipython3\n{tag}{code}\n```\n")
    return "\n".join(parts)


def run_pytest(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "harl_mini.testing.pytest_myst",
                           "--nbval-lax", "--nbval-current-env", str(path)],
                          capture_output=True, text=True, cwd=path if path.is_dir() else path.parent, timeout=300)


@pytest.mark.slow
def test_nbval_collects_myst_and_fails_on_a_raising_cell(tmp_path):
    good = tmp_path / "good.md"
    good.write_text(myst_notebook("x = 1", "assert x == 1", "raise RuntimeError('intended')",
                                  tags={2: "raises-exception"}))
    bad = tmp_path / "bad.md"
    bad.write_text(myst_notebook("x = 1", "assert x == 2, 'wrong value'"))
    ok = run_pytest(good)
    assert ok.returncode == 0 and "3 passed" in ok.stdout, ok.stdout + ok.stderr
    failed = run_pytest(bad)
    assert failed.returncode == 1 and "1 failed, 1 passed" in failed.stdout, failed.stdout + failed.stderr
    assert "wrong value" in failed.stdout


def test_plain_markdown_is_not_collected(tmp_path):
    (tmp_path / "plain.md").write_text("# Just prose\n")
    result = run_pytest(tmp_path)
    assert result.returncode == 5, result.stdout  # "no tests ran": .ci/run treats this as a failure
    assert "no tests ran" in result.stdout


def _tiny_book(tmp_path: Path, cell: str) -> Path:
    """A two-page book whose _config.yml keeps our execution settings."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["exclude_patterns"] = ["_build"]
    config["bibtex_bibfiles"] = ["references.bib"]
    config["sphinx"]["config"].pop("html_static_path")
    config["sphinx"]["config"].pop("mathjax_path")
    config["sphinx"]["config"].pop("nb_ipywidgets_js")
    config["sphinx"]["config"].pop("html_css_files", None)
    config.get("html", {}).pop("favicon", None)
    # local extensions are found relative to the book: point them at the repository's
    config["sphinx"]["local_extensions"] = {name: str(ROOT / folder)
                                            for name, folder in config["sphinx"].get("local_extensions", {}).items()}
    book = tmp_path / "book"
    book.mkdir()
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: page\n")
    (book / "intro.md").write_text("# Intro\n")
    (book / "references.bib").write_text("@misc{none, title={None}, author={Nobody}, year={2026}}\n")
    (book / "page.md").write_text(myst_notebook("x = 1", cell))
    return book


def _build(book: Path) -> subprocess.CompletedProcess:
    jb = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run([str(jb), "build", str(book), "-W", "-n", "--keep-going"], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_book_build_fails_on_a_raising_cell_on_every_rebuild(tmp_path):
    book = _tiny_book(tmp_path, "raise RuntimeError('chapter is broken')")
    first, second = _build(book), _build(book)  # the second run is an incremental rebuild
    for run in (first, second):
        output = run.stdout + run.stderr
        assert run.returncode != 0, output[-3000:]
        assert "ExecutionError" in output and "page.md" in output, output[-3000:]
    (book / "page.md").write_text(myst_notebook("x = 1", "assert x == 1"))
    fixed = _build(book)
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-3000:]
