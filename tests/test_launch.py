"""Launching the book elsewhere: the paired ``.ipynb`` of every page, its install cell, the buttons.

* the committed ``chapters/x.ipynb`` (Colab and Binder open these) are exactly what the pages
  generate, and drift, hand edits and orphans are detected;
* the install cell installs harl_mini only when it is missing, from the configured repository;
* a placeholder repository URL switches the launch and repository buttons off (a real one
  points them at the paired ``.ipynb``), and the ``.ipynb`` download starts with the install cell.
"""

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import yaml
from sphinx.errors import ExtensionError

from harl_mini import launch, sphinxext

ROOT = Path(__file__).resolve().parents[1]
REAL = "https://github.com/someone/trust-regions"
PAGE = textwrap.dedent("""\
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

    # A page

    Some text.

    ```{code-cell} ipython3
    :tags: [hide-input]

    x = 1 + 1
    assert x == 2
    ```
    """)


def tiny_book(tmp_path: Path, url: str) -> Path:
    """A book configured like ours (our _config.yml, trimmed) with one notebook page."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["exclude_patterns"] = ["_build"]
    config["bibtex_bibfiles"] = ["references.bib"]
    # the paths of our config, made absolute so that they work from the tiny book's folder
    sphinx = config["sphinx"]
    sphinx["local_extensions"] = {name: str(ROOT / path) for name, path in (sphinx.get("local_extensions") or {}).items()}
    sphinx["config"]["html_static_path"] = [str(ROOT / p) for p in sphinx["config"].get("html_static_path", [])]
    if config.get("html", {}).get("favicon"):
        config["html"]["favicon"] = str(ROOT / config["html"]["favicon"])
    config["repository"]["url"] = url
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/page\n")
    (book / "intro.md").write_text("# Intro\n")
    (book / "references.bib").write_text("@misc{none, title={None}, author={Nobody}, year={2026}}\n")
    (book / "chapters" / "page.md").write_text(PAGE)
    return book


# --------------------------------------------------------------------------- paired notebooks


def test_the_committed_paired_notebooks_are_in_sync():
    problems = launch.sync_problems(ROOT)
    assert not problems, "\n".join(problems) + "\nregenerate with: python -m harl_mini.launch"
    pages = launch.notebook_pages(ROOT)
    assert Path("book/package.md") in pages and sum(p.parts[0] == "chapters" for p in pages) >= 9


def test_drift_hand_edits_and_orphans_are_detected(tmp_path):
    book = tiny_book(tmp_path, REAL)
    assert launch.sync_problems(book) == [f"{Path('chapters/page.ipynb')}: missing; run `python -m harl_mini.launch`"]
    assert launch.main(["--root", str(book)]) == 0
    assert launch.sync_problems(book) == [] and launch.main(["--root", str(book), "--check"]) == 0
    first = (book / "chapters" / "page.ipynb").read_text()
    launch.write_paired_notebooks(book)
    assert (book / "chapters" / "page.ipynb").read_text() == first  # regenerating is byte-identical
    page = book / "chapters" / "page.md"
    page.write_text(page.read_text().replace("1 + 1", "2"))  # an edited page, not regenerated
    assert ["differs from what" in p for p in launch.sync_problems(book)] == [True]
    assert launch.main(["--root", str(book), "--check"]) == 1
    launch.write_paired_notebooks(book)
    nb = book / "chapters" / "page.ipynb"
    nb.write_text(nb.read_text().replace("Some text.", "Some text, edited by hand."))
    assert ["differs from what" in p for p in launch.sync_problems(book)] == [True]
    launch.write_paired_notebooks(book)
    (book / "chapters" / "old.md").write_text(PAGE)  # a page dropped from the toc keeps its twin
    (book / "chapters" / "old.ipynb").write_text(nb.read_text())
    assert ["not a notebook page of the book" in p for p in launch.sync_problems(book)] == [True]


def test_a_paired_notebook_is_the_page_plus_the_install_cell(tmp_path):
    book = tiny_book(tmp_path, REAL)
    nb = launch.paired_notebook(book / "chapters" / "page.md", REAL, "main")
    first, *rest = nb.cells
    assert launch.INSTALL_TAG in first.metadata["tags"] and "remove-cell" in first.metadata["tags"]
    assert first.metadata["jupyter"]["source_hidden"] is True
    assert [c.cell_type for c in rest] == ["markdown", "code"]
    assert rest[1].source == "x = 1 + 1\nassert x == 2" and rest[1].metadata["tags"] == ["hide-input"]
    assert all(c.get("outputs", []) == [] for c in nb.cells) and "jupytext" not in nb.metadata


# --------------------------------------------------------------------------- the install cell


@pytest.mark.parametrize("url, placeholder", [
    ("https://github.com/OWNER/REPO", True), ("https://github.com/someone/REPO", True), ("", True),
    ("https://github.com/executablebooks/jupyter-book", True), ("https://gitlab.com/a/b", True),
    (REAL, False), (REAL + ".git", False), (REAL + "/", False)])
def test_placeholders(url, placeholder):
    assert launch.is_placeholder(url) is placeholder


def run_install_cell(url, monkeypatch, missing: bool):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(cmd))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if missing and name == "harl_mini" else real_find_spec(name, *a))
    exec(launch.install_cell(url, "main").source, {})
    return calls


def test_the_install_cell_installs_only_when_harl_mini_is_missing(monkeypatch):
    assert run_install_cell(REAL, monkeypatch, missing=False) == []
    (cmd,) = run_install_cell(REAL, monkeypatch, missing=True)
    assert cmd == [sys.executable, "-m", "pip", "install", "--quiet", f"harl_mini @ git+{REAL}.git@main"]


def test_with_a_placeholder_url_the_install_cell_says_what_to_do(monkeypatch):
    assert run_install_cell("https://github.com/OWNER/REPO", monkeypatch, missing=False) == []
    with pytest.raises(ModuleNotFoundError, match="pip install"):
        run_install_cell("https://github.com/OWNER/REPO", monkeypatch, missing=True)


# --------------------------------------------------------------------------- the buttons


class Config:
    def __init__(self, url):
        self.exclude_patterns = []
        self.autodoc_default_options = {}
        self.html_theme_options = {"repository_url": url, "use_repository_button": True,
                                   "launch_buttons": {"binderhub_url": "https://mybinder.org",
                                                      "colab_url": "https://colab.research.google.com"}}


class App:
    srcdir = ROOT


def test_a_placeholder_url_switches_the_buttons_off(monkeypatch):
    monkeypatch.delenv(sphinxext.REQUIRE_REPOSITORY, raising=False)
    config = Config("https://github.com/OWNER/REPO")
    sphinxext._configure(App(), config)
    theme = config.html_theme_options
    assert theme["use_repository_button"] is False and "colab_url" not in theme["launch_buttons"]
    assert "binderhub_url" not in theme["launch_buttons"]
    assert "chapters/ch01_mdp.ipynb" in config.exclude_patterns  # the twins never reach Sphinx
    config = Config(REAL)
    sphinxext._configure(App(), config)
    assert config.html_theme_options["use_repository_button"] is True
    assert config.html_theme_options["launch_buttons"]["colab_url"]
    monkeypatch.setenv(sphinxext.REQUIRE_REPOSITORY, "1")
    with pytest.raises(ExtensionError, match="placeholder"):
        sphinxext._configure(App(), Config("https://github.com/OWNER/REPO"))


def build(book: Path) -> subprocess.CompletedProcess:
    jb = Path(sys.executable).with_name("jupyter-book")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(sphinxext.REQUIRE_REPOSITORY, None)
    return subprocess.run([str(jb), "build", str(book), "-W", "-n", "--keep-going"], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("url", [REAL, "https://github.com/OWNER/REPO"])
def test_the_built_page_launches_its_paired_notebook(tmp_path, url):
    book = tiny_book(tmp_path, url)
    launch.write_paired_notebooks(book)
    result = build(book)  # -W: the .md and its .ipynb twin must not clash
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = (book / "_build" / "html" / "chapters" / "page.html").read_text()
    colab = f"https://colab.research.google.com/github/someone/trust-regions/blob/main/chapters/page.ipynb"
    binder = "https://mybinder.org/v2/gh/someone/trust-regions/main?urlpath=lab/tree/chapters/page.ipynb"
    if url == REAL:
        assert colab in html and binder in html and f'href="{REAL}"' in html
    else:
        assert "colab.research.google.com" not in html and "mybinder.org" not in html
        assert "OWNER/REPO" not in html  # no button points at the placeholder
    assert "_sources/chapters/page.ipynb" in html  # the .ipynb download is offered either way
    download = json.loads((book / "_build" / "html" / "_sources" / "chapters" / "page.ipynb").read_text())
    assert launch.INSTALL_TAG in download["cells"][0]["metadata"]["tags"]
    executed = [c for c in download["cells"] if c["cell_type"] == "code"][1]
    assert executed["execution_count"] == 1  # the download is the executed page, install cell first
    nbformat.validate(nbformat.reads(json.dumps(download), as_version=4))
