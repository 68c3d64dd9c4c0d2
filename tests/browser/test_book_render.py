"""Open every page of the built book in headless Chromium, offline, and check what a reader sees.

Run with ``make check-book`` after ``make book``. For each page it asserts:

* no request leaves the local server (MathJax, widgets and fonts are vendored);
* no request to the local server fails (missing image, script, stylesheet, font);
* MathJax reports no error and every math element of the page was typeset;
* every image loaded; widget views, where a page embeds them, were rendered;
* every internal link points to an existing page and, with a ``#fragment``, to an
  existing anchor on it.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("HARL_MINI_BOOK_HTML", ROOT / "_build" / "html"))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SKIP_PAGES = {"genindex.html", "search.html"}
REFRESH = re.compile(r'http-equiv="refresh"\s+content="\d+;\s*url=([^"]+)"', re.IGNORECASE)


def _pages() -> tuple[list[str], dict[str, str]]:
    """Content pages, and redirect pages (meta refresh) with their targets."""
    pages, redirects = [], {}
    for p in sorted(HTML.rglob("*.html")) if HTML.exists() else []:
        rel = p.relative_to(HTML)
        if rel.parts[0].startswith("_") or p.name in SKIP_PAGES:
            continue
        match = REFRESH.search(p.read_text(encoding="utf-8")[:2000])
        if match:
            redirects[rel.as_posix()] = match.group(1)
        else:
            pages.append(rel.as_posix())
    return pages, redirects


PAGES, REDIRECTS = _pages()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def base_url():
    if not (HTML / "index.html").exists():
        pytest.fail("no built book in _build/html: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_the_book_has_its_pages():
    names = set(PAGES)
    for page in ["book/intro.html", "book/how_to_use.html", "book/notation.html", "book/bibliography.html",
                 "book/glossary.html", "book/package.html", "chapters/ch01_mdp.html"]:
        assert page in names, f"{page} missing from the built book"
    assert any(p.startswith("exercises/ex") for p in names), "no exercise page in the built book"


def test_redirects_point_to_pages():
    for page, target in REDIRECTS.items():
        assert (HTML / page).parent.joinpath(target).resolve().is_file(), f"{page} redirects to missing {target}"


@functools.lru_cache(maxsize=None)
def _ids(page: Path) -> frozenset[str]:
    return frozenset(re.findall(r'\bid="([^"]+)"', page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(page, base_url, browser):
    context = browser.new_context()
    tab = context.new_page()
    outside, failed = [], []

    def on_request(request):
        url = request.url
        if not url.startswith(base_url) and not url.startswith(("data:", "blob:", "about:")):
            outside.append(url)

    def on_response(response):
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            failed.append(f"{response.status} {response.url}")

    tab.on("request", on_request)
    tab.on("response", on_response)
    tab.on("requestfailed", lambda r: failed.append(f"failed {r.url}") if r.url.startswith(base_url) else None)
    tab.goto(base_url + page, wait_until="load")
    has_mathjax = tab.evaluate("() => !!(window.MathJax && window.MathJax.startup)")
    if has_mathjax:
        tab.evaluate("() => window.MathJax.startup.promise")
    tab.wait_for_load_state("networkidle")

    assert not outside, f"{page}: requests left localhost: {outside}"
    assert not failed, f"{page}: failed requests: {failed}"

    n_math = tab.locator(".math").count()
    if n_math:
        assert has_mathjax, f"{page}: has math but MathJax was not loaded"
        untypeset = tab.evaluate("() => [...document.querySelectorAll('.math')]"
                                 ".filter(e => !e.querySelector('mjx-container')).length")
        assert untypeset == 0, f"{page}: {untypeset} of {n_math} math elements were not typeset"
    assert tab.locator("mjx-merror").count() == 0, f"{page}: MathJax reported an error"

    broken_images = tab.evaluate("() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
                                 ".map(i => i.src)")
    assert not broken_images, f"{page}: images did not load: {broken_images}"

    if tab.locator('script[type="application/vnd.jupyter.widget-view+json"]').count():
        tab.wait_for_selector(".jupyter-widgets", timeout=15000)

    links = tab.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
    context.close()
    broken = []
    for link in links:
        if not link.startswith(base_url):
            continue
        parts = urlsplit(link)
        target = HTML / unquote(parts.path.lstrip("/"))
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken.append(link)
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _ids(target):
            broken.append(link)
    assert not broken, f"{page}: broken internal links: {broken}"
