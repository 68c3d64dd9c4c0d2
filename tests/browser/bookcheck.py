"""The browser check's machinery (``make check-book``): the built book's pages, and one visit
per page in headless Chromium that records everything the tests in this folder assert.

Each page is visited once (:meth:`Book.visit`, cached) at a 1400 × 900 window and again, on the
same tab, at 400 × 900 (a phone). ``conftest.py`` serves the book and prints the page table.

Environment:

* ``HARL_MINI_BOOK_HTML``: the built book (default ``_build/html``).
* ``HARL_MINI_SCREENSHOTS``: a folder; full-page screenshots of Chapters 1, 4 and 8 (every page
  whose name starts with ``ch01``, ``ch04``, ``ch08``) at 1400 and 400 px are written there,
  with the page table as ``pages.md``.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit


ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("HARL_MINI_BOOK_HTML", ROOT / "_build" / "html"))
SHOTS = os.environ.get("HARL_MINI_SCREENSHOTS")
SHOT_PAGES = re.compile(r"^chapters/ch0[148]")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WIDE, NARROW, TALL = 1400, 400, 900
SKIP_PAGES = {"genindex.html", "search.html", "py-modindex.html"}
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
CHAPTERS = [p for p in PAGES if p.startswith("chapters/")]


# --------------------------------------------------------------------------------------------
# What a visit measures (JavaScript run in the page)
# --------------------------------------------------------------------------------------------

# The text column, code, outputs, display maths and figures of the page at the current width.
MEASURE = r"""() => {
  const art = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const cs = getComputedStyle(art), ar = art.getBoundingClientRect();
  const colLeft = ar.left + parseFloat(cs.paddingLeft), colRight = ar.right - parseFloat(cs.paddingRight);
  // Shown: laid out, not in a closed <details> (a folded cell: Chromium keeps its layout boxes
  // but skips painting them), and not hidden by CSS.
  const folded = e => { const d = e.closest('details:not([open])'); return !!d && !e.closest('summary'); };
  const shown = e => e.getClientRects().length > 0 && e.getBoundingClientRect().height > 0 && !folded(e)
                     && (!e.checkVisibility || e.checkVisibility({visibilityProperty: true}));
  const height = document.documentElement.scrollHeight;
  let code = 0, out = 0, longest = 0, cells = 0;
  for (const inp of art.querySelectorAll('div.cell_input')) {
    if (!shown(inp)) continue;
    cells += 1;
    code += inp.getBoundingClientRect().height;
    const pre = inp.querySelector('pre');
    if (pre) longest = Math.max(longest, pre.textContent.replace(/\n+$/, '').split('\n').length);
  }
  for (const blk of art.querySelectorAll('div[class*="highlight-"]')) {   // code blocks in the prose
    if (!blk.closest('div.cell') && shown(blk)) code += blk.getBoundingClientRect().height;
  }
  for (const o of art.querySelectorAll('div.cell_output')) if (shown(o)) out += o.getBoundingClientRect().height;
  const maths = [];
  for (const m of art.querySelectorAll('mjx-container[display="true"]')) {
    if (!shown(m)) continue;
    const r = m.getBoundingClientRect(), div = m.closest('div.math'), eq = div && div.querySelector('.eqno');
    const er = eq && shown(eq) ? eq.getBoundingClientRect() : null;
    const overlap = er ? Math.max(0, Math.min(r.right, er.right) - Math.max(r.left, er.left))
                         * Math.max(0, Math.min(r.bottom, er.bottom) - Math.max(r.top, er.top)) : 0;
    let tex = '';
    try { tex = MathJax.startup.document.getMathItemsWithin(m)[0].math; } catch (e) {}
    maths.push({id: (div && div.id) || '', tex: tex.trim().replace(/\s+/g, ' ').slice(0, 60),
                content: m.scrollWidth, box: m.clientWidth, right: r.right - colRight, overlap: overlap});
  }
  const images = [];
  for (const img of art.querySelectorAll('img')) {
    const r = img.getBoundingClientRect();
    if (!shown(img) || img.closest('.bd-header-article')) continue;
    images.push({src: img.currentSrc || img.src, natural: img.naturalWidth, width: r.width,
                 explorer: !!img.closest('.harl-explorer')});
  }
  return {column: colRight - colLeft, height: height, scroll_width: Math.max(document.documentElement.scrollWidth,
          document.body.scrollWidth), viewport: window.innerWidth, code: code, output: out, longest: longest,
          cells: cells, maths: maths, images: images};
}"""

# The static explorers of the page: their controls and what each shows.
EXPLORER_STATE = r"""(root) => ({
  src: root.querySelector('img.harl-explorer-frame').getAttribute('src'),
  fields: [...root.querySelectorAll('[data-axis]')].map(f => ({
    kind: f.tagName.toLowerCase(), axis: +f.getAttribute('data-axis'), n: f.tagName === 'SELECT' ? f.options.length : (+f.max + 1),
    index: +f.value, shown: f.tagName === 'SELECT' ? f.options[f.selectedIndex].text : f.parentNode.querySelector('output').textContent,
    label: f.getAttribute('aria-label')}))
})"""


def png_bytes_of(src: str, base_url: str) -> bytes | None:
    """The bytes of an image the page shows: a data URI, or a file of the built book."""
    if src.startswith("data:image/png;base64,"):
        return base64.b64decode(src.split(",", 1)[1])
    if src.startswith(base_url):
        path = HTML / unquote(urlsplit(src).path.lstrip("/"))
        return path.read_bytes() if path.is_file() else None
    return None


def png_info(data: bytes) -> dict[str, str]:
    from harl_mini.viz import style

    return style.png_text(data)


def pixels(data: bytes) -> bytes:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB").tobytes() + repr(im.size).encode()


def figure_text_px(images: list[dict], base_url: str) -> tuple[float | None, list[str]]:
    """Smallest rendered text (CSS px) over the figures, and the figures that cannot be measured.

    A figure's smallest text renders at ``font_pt × dpi / 72 × shown width / natural width`` CSS px:
    the font and dpi are those :mod:`harl_mini.viz.style` stored in the PNG when it drew it.
    """
    from harl_mini.viz import style

    smallest, unknown = None, []
    for img in images:
        data = png_bytes_of(img["src"], base_url)
        name = img["src"][:60] if img["src"].startswith("data:") else img["src"].rsplit("/", 1)[-1]
        info = png_info(data) if data and data.startswith(b"\x89PNG") else {}
        if style.FONT_KEY not in info or style.DPI_KEY not in info or not img["natural"]:
            unknown.append(name)
            continue
        px = float(info[style.FONT_KEY]) * float(info[style.DPI_KEY]) / 72.0 * img["width"] / img["natural"]
        smallest = px if smallest is None else min(smallest, px)
    return smallest, unknown


# --------------------------------------------------------------------------------------------
# The visit
# --------------------------------------------------------------------------------------------


class Book:
    """The served book and a browser; :meth:`visit` opens a page once and records its numbers."""

    def __init__(self, browser, base_url: str):
        self.browser, self.base_url = browser, base_url
        self.results: dict[str, dict] = {}

    def visit(self, page: str) -> dict:
        if page not in self.results:
            self.results[page] = self._visit(page)
        return self.results[page]

    def _visit(self, page: str) -> dict:
        base = self.base_url
        context = self.browser.new_context(viewport={"width": WIDE, "height": TALL})
        tab = context.new_page()
        rec = {"outside": [], "failed": [], "console": [], "warnings": []}

        def on_request(request):
            url = request.url
            if not url.startswith(base) and not url.startswith(("data:", "blob:", "about:")):
                rec["outside"].append(url)

        def on_console(msg):
            if msg.type == "error":
                rec["console"].append(msg.text[:300])
            elif msg.type == "warning":
                rec["warnings"].append(msg.text[:300])

        tab.on("request", on_request)
        tab.on("response", lambda r: rec["failed"].append(f"{r.status} {r.url}") if r.status >= 400 else None)
        tab.on("requestfailed", lambda r: rec["failed"].append(f"failed {r.url}") if r.url.startswith(base) else None)
        tab.on("console", on_console)
        tab.on("pageerror", lambda e: rec["console"].append(f"uncaught: {e}"[:300]))
        tab.goto(base + page, wait_until="load")
        rec["has_mathjax"] = tab.evaluate("() => !!(window.MathJax && window.MathJax.startup)")
        if rec["has_mathjax"]:
            tab.evaluate("() => window.MathJax.startup.promise")
        tab.wait_for_load_state("networkidle")

        rec["n_math"] = tab.locator(".math").count()
        rec["untypeset"] = tab.evaluate("() => [...document.querySelectorAll('.math')]"
                                        ".filter(e => !e.querySelector('mjx-container')).length")
        rec["merror"] = tab.locator("mjx-merror").count()
        rec["broken_images"] = tab.evaluate(
            "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        rec["widget_views"] = tab.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        rec["widget_views_rendered"] = tab.locator(".jupyter-widgets").count()
        rec["links"] = tab.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")

        rec["wide"] = tab.evaluate(MEASURE)
        rec["wide"]["figure_px"], rec["wide"]["unmeasured_figures"] = figure_text_px(rec["wide"]["images"], base)
        if SHOTS and SHOT_PAGES.match(page):
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            stem = Path(page).stem
            tab.screenshot(path=str(Path(SHOTS) / f"{stem}_{WIDE}.png"), full_page=True)
        tab.set_viewport_size({"width": NARROW, "height": TALL})
        tab.wait_for_timeout(300)
        rec["narrow"] = tab.evaluate(MEASURE)
        rec["narrow"]["figure_px"], _ = figure_text_px(rec["narrow"]["images"], base)
        if SHOTS and SHOT_PAGES.match(page):
            tab.screenshot(path=str(Path(SHOTS) / f"{Path(page).stem}_{NARROW}.png"), full_page=True)
        tab.set_viewport_size({"width": WIDE, "height": TALL})
        tab.wait_for_timeout(200)
        rec["explorers"] = self._explore(tab)
        context.close()
        return rec

    def _explore(self, tab) -> list[dict]:
        """Move every control of every static explorer through all its positions, with the keyboard
        (sliders) or a selection (menus). After each move, record whether the picture changed and
        whether the values drawn into it (the PNG's metadata, written when the frame was drawn)
        are the values the page shows next to every control."""
        from harl_mini.viz import style

        found = []
        roots = tab.locator("div.harl-explorer")
        for e in range(roots.count()):
            root = roots.nth(e)
            root.scroll_into_view_if_needed()
            problems, moves = [], 0

            def look():
                state = root.evaluate(EXPLORER_STATE)
                data = png_bytes_of(state["src"], "") or b""
                drawn = list(json.loads(png_info(data).get(style.PARAMS_KEY, "{}")).items())
                return state, data, drawn

            def compare(state, drawn, where):
                if len(drawn) != len(state["fields"]):
                    problems.append(f"{where}: the frame was drawn with {drawn}, the page has "
                                    f"{len(state['fields'])} controls")
                    return
                for field in state["fields"]:
                    name, (label, value) = drawn[field["axis"]]
                    if label != field["shown"]:
                        problems.append(f"{where}: {field['label']} shows {field['shown']!r}, the frame was drawn "
                                        f"with {name} = {label!r}")
                    elif field["kind"] == "input" and isinstance(value, (int, float)):
                        try:
                            ok = abs(float(field["shown"]) - value) <= 1e-9 * max(1.0, abs(value))
                        except ValueError:
                            ok = False
                        if not ok:
                            problems.append(f"{where}: {field['label']} shows {field['shown']!r}, drawn at {value}")

            state, data, drawn = look()
            compare(state, drawn, "start")
            for f, field in enumerate(state["fields"]):
                control = root.locator("[data-axis]").nth(f)
                for i in range(field["n"]):
                    before, was = data, state["fields"][f]["index"]
                    if field["kind"] == "select":
                        control.select_option(str(i))
                    else:
                        control.focus()
                        control.press("Home" if i == 0 else "ArrowRight")
                    state, data, drawn = look()
                    moves += 1
                    where = f"{field['label']} at position {i}"
                    if state["fields"][f]["index"] != i:
                        problems.append(f"{where}: the control did not move (it is at {state['fields'][f]['index']})")
                        continue
                    compare(state, drawn, where)
                    if was != i and (data == before or pixels(data) == pixels(before)):
                        problems.append(f"{where}: moving from position {was} did not change the picture")
            found.append({"controls": [fld["label"] for fld in state["fields"]], "moves": moves,
                          "problems": problems})
        return found

    def links_broken(self, page: str) -> list[str]:
        broken = []
        for link in self.visit(page)["links"]:
            if not link.startswith(self.base_url):
                continue
            parts = urlsplit(link)
            target = HTML / unquote(parts.path.lstrip("/"))
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(link)
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _ids(target):
                broken.append(link)
        return broken


@functools.lru_cache(maxsize=None)
def _ids(page: Path) -> frozenset[str]:
    return frozenset(re.findall(r'\bid="([^"]+)"', page.read_text(encoding="utf-8")))


