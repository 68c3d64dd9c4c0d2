"""Open every page of the built book in headless Chromium, offline, and check what a reader sees.

Run with ``make check-book`` after ``make book`` (machinery: ``conftest.py``). For each page:

* no request leaves the local server (MathJax and fonts are vendored), and none to it fails;
* the browser console shows no error and no warning, and no script throws;
* MathJax reports no error and every math element of the page was typeset;
* every image loaded; there is no ipywidgets view left (the book loads no widget library: an
  interactive figure must be a :mod:`harl_mini.viz.explorer`, whose static view works offline);
* every internal link points to an existing page and, with a ``#fragment``, to an existing
  anchor on it.

Layout (maths, figures, page length) is checked in ``test_book_layout.py``, explorers in
``test_book_widgets.py``.
"""

from __future__ import annotations

import pytest

from bookcheck import HTML, PAGES, REDIRECTS


def test_the_book_has_its_pages():
    names = set(PAGES)
    for page in ["book/intro.html", "book/how_to_use.html", "book/notation.html", "book/bibliography.html",
                 "book/glossary.html", "book/package.html", "chapters/ch01_mdp.html"]:
        assert page in names, f"{page} missing from the built book"
    assert any(p.startswith("exercises/ex") for p in names), "no exercise page in the built book"


def test_redirects_point_to_pages():
    for page, target in REDIRECTS.items():
        assert (HTML / page).parent.joinpath(target).resolve().is_file(), f"{page} redirects to missing {target}"


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(page, book):
    r = book.visit(page)
    assert not r["outside"], f"{page}: requests left localhost: {r['outside']}"
    assert not r["failed"], f"{page}: failed requests: {r['failed']}"
    if r["n_math"]:
        assert r["has_mathjax"], f"{page}: has math but MathJax was not loaded"
        assert r["untypeset"] == 0, f"{page}: {r['untypeset']} of {r['n_math']} math elements were not typeset"
    assert r["merror"] == 0, f"{page}: MathJax reported an error"
    assert not r["broken_images"], f"{page}: images did not load: {r['broken_images']}"
    assert r["widget_views"] == 0, (
        f"{page}: {r['widget_views']} ipywidgets view(s) that need a kernel; make the figure a "
        f"harl_mini.viz.explorer (its HTML view works without one)")


@pytest.mark.parametrize("page", PAGES)
def test_console_is_clean(page, book):
    r = book.visit(page)
    assert not r["console"], f"{page}: console errors: {r['console']}"
    assert not r["warnings"], f"{page}: console warnings: {r['warnings']}"


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_resolve(page, book):
    broken = book.links_broken(page)
    assert not broken, f"{page}: broken internal links: {broken}"
