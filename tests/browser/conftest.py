"""Fixtures of the browser check: the served book, one Chromium, the :class:`bookcheck.Book` that
visits pages; after the run, the page table (also written to ``$HARL_MINI_SCREENSHOTS/pages.md``)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from bookcheck import ARGS, CHROMIUM, HTML, SHOTS, Book


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def base_url():
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book in {HTML}: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


_BOOK: dict[str, Book] = {}


@pytest.fixture(scope="session")
def book(browser, base_url) -> Book:
    _BOOK["book"] = Book(browser, base_url)
    return _BOOK["book"]


# --------------------------------------------------------------------------------------------
# The page table (printed after the tests; written to $HARL_MINI_SCREENSHOTS/pages.md)
# --------------------------------------------------------------------------------------------


def page_table(results: dict[str, dict]) -> str:
    head = ("| page | height 1400 px | height 400 px | visible code | code + output | longest visible cell "
            "| smallest figure text 1400 px (400 px) | display maths that scroll at 1400 / 400 px |")
    rows = [head, "|" + "---|" * 8]
    for page, r in sorted(results.items()):
        w, n = r["wide"], r["narrow"]
        fig = "–" if w["figure_px"] is None else f"{w['figure_px']:.1f} px ({n['figure_px']:.1f} px)"
        scrolls = [sum(m["content"] > m["box"] + 1 for m in v["maths"]) for v in (w, n)]
        rows.append(f"| {page} | {w['height']:,} | {n['height']:,} | {w['code'] / w['height']:.0%} | "
                    f"{(w['code'] + w['output']) / w['height']:.0%} | {w['longest']} lines | {fig} | "
                    f"{scrolls[0]} / {scrolls[1]} of {len(w['maths'])} |")
    return "\n".join(rows)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    book = _BOOK.get("book")
    if not book or not book.results:
        return
    table = page_table(book.results)
    terminalreporter.write_sep("=", "pages of the built book (tests/browser)")
    terminalreporter.write_line(table)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        (Path(SHOTS) / "pages.md").write_text(table + "\n", encoding="utf-8")
        terminalreporter.write_line(f"screenshots and pages.md in {SHOTS}")
