"""pytest plugin: let nbval collect MyST-Markdown notebooks (jupytext ``.md`` files).

nbval only collects ``*.ipynb``. The book's chapters and exercise sources are MyST
Markdown notebooks, and a directory run would silently skip them (pytest then reports
"no tests ran"). With this plugin, ``pytest --nbval-lax chapters/`` reads each ``.md``
whose front matter declares ``format_name: myst`` and a ``kernelspec`` in memory: no
converted copies are written and the kernel's working directory stays the file's own.

Enabled for the whole repository through ``addopts`` in ``pyproject.toml``.
The plugin relies on nbval reading notebooks through ``nbformat.read``; pin nbval.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def is_myst_notebook(path: Path) -> bool:
    """True if ``path`` is a MyST-Markdown notebook (jupytext front matter with a kernelspec)."""
    if path.suffix != ".md" or not path.is_file():
        return False
    head = path.read_text(encoding="utf-8")[:1000]
    return head.startswith("---") and "format_name: myst" in head and "kernelspec:" in head


def _nbval_active(config: pytest.Config) -> bool:
    opt = config.option
    return bool(getattr(opt, "nbval", False) or getattr(opt, "nbval_lax", False))


def pytest_collect_file(file_path: Path, parent):
    if not (_nbval_active(parent.config) and is_myst_notebook(file_path)):
        return None
    from nbval.plugin import IPyNbFile

    class MystNotebookFile(IPyNbFile):
        """An nbval notebook item whose source is a MyST-Markdown file."""

        def collect(self):
            import jupytext
            import nbformat

            notebook = jupytext.read(str(self.path))
            original = nbformat.read
            nbformat.read = lambda *args, **kwargs: notebook
            try:
                items = list(super().collect())
            finally:
                nbformat.read = original
            yield from items

    return MystNotebookFile.from_parent(parent, path=file_path)


# ----------------------------------------------------------------- per-notebook time budget
#
# Every chapter must execute in at most 90 s on a laptop CPU. nbval reports one test per
# cell; the hooks below add the cells' durations per notebook (also under xdist, whose
# reports reach the controller) and fail the session when a notebook is over budget.

_NOTEBOOK_SECONDS: dict[str, float] = {}


def pytest_addoption(parser):
    parser.addoption("--notebook-budget", type=float, default=90.0,
                     help="fail if a notebook's cells take longer than this in total (seconds; 0 = off)")


def pytest_runtest_logreport(report):
    if "::Cell " in report.nodeid:
        notebook = report.nodeid.split("::", 1)[0]
        _NOTEBOOK_SECONDS[notebook] = _NOTEBOOK_SECONDS.get(notebook, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    budget = config.getoption("notebook_budget")
    if not _NOTEBOOK_SECONDS:
        return
    terminalreporter.section("notebook execution times")
    for notebook, seconds in sorted(_NOTEBOOK_SECONDS.items(), key=lambda kv: -kv[1]):
        flag = "  OVER BUDGET" if budget and seconds > budget else ""
        terminalreporter.write_line(f"{seconds:7.1f} s  {notebook}{flag}")


def pytest_sessionfinish(session, exitstatus):
    budget = session.config.getoption("notebook_budget")
    if hasattr(session.config, "workerinput"):
        return  # xdist workers: the controller sums every worker's reports
    over = {nb: s for nb, s in _NOTEBOOK_SECONDS.items() if budget and s > budget}
    if over and session.exitstatus == 0:
        session.exitstatus = 1
