"""The layout of every page at 1400 px (a laptop) and 400 px (a phone): maths that fits, figures
whose text is legible, and chapters that read like a book (issue 13's targets).

Measured by one visit per page (``bookcheck.py``). For every page:

* the theme's text column is :data:`harl_mini.viz.style.COLUMN_PX` wide at 1400 px (the figure
  style is sized for it);
* at 1400 px no display equation is wider than its box (it would scroll) and no equation number
  overlaps its equation; at 400 px display equations may scroll inside their own box, but the
  page itself never scrolls sideways and numbers still do not overlap;
* every figure's smallest text renders at >= 9 CSS px at 1400 px: font size and dpi are read from
  the PNG (written by :mod:`harl_mini.viz.style` when the figure was drawn) and multiplied by the
  scale at which the page shows the image; a figure without that record fails.

For every chapter page, issue 13's targets: height <= 15,000 px at 1400 px, visible code (code
cells that are not folded, and code blocks) <= 20 % of the page height, no visible code cell
longer than 25 lines. Pages that miss a target today are listed in :data:`KNOWN_OVER_TARGET` with
their measured number; a listed page is exempt from that target, and the test fails when it
meets the target (delete the entry then). Equations wider than the column at 1400 px today
are listed in :data:`KNOWN_WIDE_EQUATIONS`, and pages with figure text below 9 px in
:data:`KNOWN_SMALL_FIGURE_TEXT`, the same way.
"""

from __future__ import annotations

import pytest

from bookcheck import CHAPTERS, PAGES

from harl_mini.viz import style

MAX_HEIGHT_PX = 15_000  # at 1400 px
MAX_CODE_SHARE = 0.20  # of the page height at 1400 px
MAX_CELL_LINES = 25  # lines of one visible code cell
MIN_FIGURE_TEXT_PX = 9.0  # CSS px at 1400 px

#: Chapter pages that miss a target today: page -> {target: the number measured}. Delete an entry
#: when its chapter is restructured (the test fails and says so once the page meets the target).
#: Targets: "height" (px at 1400 px), "code_share" (fraction of the height), "longest_cell"
#: (lines). Measured on the book of commit 6d11d76 (before the reader-first restructuring).
KNOWN_OVER_TARGET: dict[str, dict[str, float]] = {
}

#: Display equations wider than their box at 1400 px today: (page, label or start of the TeX) ->
#: (width, box) in CSS px, as measured. Break them with aligned/split, then delete the entry.
KNOWN_WIDE_EQUATIONS: dict[tuple[str, str], tuple[int, int]] = {
}


#: Pages whose smallest figure text renders below 9 CSS px at 1400 px today -> that size. Ch. 8's
#: 2×4 results figure has a figure legend in 7 columns: fitted to the column, the legend alone is
#: wider than the column, so the page shrinks the whole image. Reflow the figure, then delete.
KNOWN_SMALL_FIGURE_TEXT: dict[str, float] = {
}


def _wide_key(page: str, m: dict) -> tuple[str, str]:
    return page, m["id"] or m["tex"][:40]


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith("chapters/")][:1])
def test_text_column_is_what_the_figure_style_assumes(page, book):
    width = book.visit(page)["wide"]["column"]
    assert abs(width - style.COLUMN_PX) <= 1, (
        f"the theme's text column is {width:.0f} px at 1400 px, harl_mini.viz.style.COLUMN_PX is "
        f"{style.COLUMN_PX}: update COLUMN_PX")


@pytest.mark.parametrize("page", PAGES)
def test_display_maths_fits(page, book):
    r = book.visit(page)
    problems = []
    for width, view in ((1400, r["wide"]), (400, r["narrow"])):
        for m in view["maths"]:
            name = m["id"] or m["tex"]
            if m["overlap"] > 1:
                problems.append(f"{width} px: the number of {name} overlaps it ({m['overlap']:.0f} px²)")
            if m["right"] > 1:
                problems.append(f"{width} px: {name} runs {m['right']:.0f} px past the column")
            if width == 1400 and m["content"] > m["box"] + 1:
                known = KNOWN_WIDE_EQUATIONS.get(_wide_key(page, m))
                if known is None:
                    problems.append(f"1400 px: {name} is {m['content']} px wide in a {m['box']} px box "
                                    f"(break it with aligned/split)")
    for (p, tex), _ in KNOWN_WIDE_EQUATIONS.items():
        if p == page:
            now = [m for m in r["wide"]["maths"] if _wide_key(page, m) == (p, tex)]
            if now and now[0]["content"] <= now[0]["box"] + 1:
                problems.append(f"{tex!r} fits now: delete it from KNOWN_WIDE_EQUATIONS")
    assert not problems, f"{page}: " + "; ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_no_sideways_scroll_on_a_phone(page, book):
    n = book.visit(page)["narrow"]
    assert n["scroll_width"] <= n["viewport"], (
        f"{page}: at {n['viewport']} px the page is {n['scroll_width']} px wide (it scrolls sideways)")


@pytest.mark.parametrize("page", PAGES)
def test_figure_text_is_legible(page, book):
    w = book.visit(page)["wide"]
    assert not w["unmeasured_figures"], (
        f"{page}: figures without the font record of harl_mini.viz.style (draw them after "
        f"`import harl_mini.viz`): {w['unmeasured_figures']}")
    if page in KNOWN_SMALL_FIGURE_TEXT:
        assert w["figure_px"] is not None and w["figure_px"] < MIN_FIGURE_TEXT_PX, (
            f"{page}: figure text is legible now: delete it from KNOWN_SMALL_FIGURE_TEXT")
    elif w["figure_px"] is not None:
        assert w["figure_px"] >= MIN_FIGURE_TEXT_PX, (
            f"{page}: the smallest figure text renders at {w['figure_px']:.1f} CSS px at 1400 px "
            f"(at least {MIN_FIGURE_TEXT_PX} needed)")


def _targets(page: str, book) -> dict[str, tuple[float, float, str]]:
    w = book.visit(page)["wide"]
    return {"height": (w["height"], MAX_HEIGHT_PX, "{:,.0f} px tall at 1400 px"),
            "code_share": (w["code"] / w["height"], MAX_CODE_SHARE, "visible code {:.0%} of the page"),
            "longest_cell": (w["longest"], MAX_CELL_LINES, "a visible code cell of {:.0f} lines")}


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_meets_the_page_targets(page, book):
    known = KNOWN_OVER_TARGET.get(page, {})
    problems = []
    for target, (value, limit, fmt) in _targets(page, book).items():
        if target in known:
            if value <= limit:
                problems.append(f"meets the {target} target now ({fmt.format(value)}): delete the entry "
                                f"from KNOWN_OVER_TARGET")
        elif value > limit:
            problems.append(f"{fmt.format(value)} (target {fmt.format(limit)})")
    assert not problems, f"{page}: " + "; ".join(problems)


def test_allow_lists_name_existing_pages():
    for page in KNOWN_OVER_TARGET:
        assert page in CHAPTERS, f"KNOWN_OVER_TARGET names {page}, which the book does not have"
    for page, _ in KNOWN_WIDE_EQUATIONS:
        assert page in PAGES, f"KNOWN_WIDE_EQUATIONS names {page}, which the book does not have"
    for page in KNOWN_SMALL_FIGURE_TEXT:
        assert page in PAGES, f"KNOWN_SMALL_FIGURE_TEXT names {page}, which the book does not have"
