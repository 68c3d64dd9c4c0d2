"""Sphinx extension for the book's HTML: theme settings and clean pages (no console errors).

Loaded through ``sphinx: local_extensions`` in ``_config.yml``. Each part fixes one cause,
found with the browser test (``tests/browser``):

* **``Identifier 'THEBE_JS_URL' has already been declared``** (every page). sphinx-thebe adds an
  inline ``<script>const THEBE_JS_URL = ...</script>`` when the documents are read, after the HTML
  builder was set up. Sphinx 7.4 then lists that script twice (once from the builder, with
  file name ``None``, once from the registry, with file name ``""``), and a second ``const``
  declaration is a syntax error. :func:`_dedupe_scripts` drops the copy (sphinx-togglebutton's
  ``var togglebuttonSelector`` was doubled the same way, harmlessly).
* **``Got invalid theme mode: . Resetting to auto.``** (every page). The PyData theme writes
  ``localStorage.mode || "{{ default_mode }}"`` and ``default_mode`` comes from ``html_context``,
  which nothing set. It is now ``light`` unless ``_config.yml`` says otherwise (figures have
  white backgrounds; the reader can still switch).
* **Two search boxes.** PyData 0.17 shows a search field in a top navbar (``navbar_persistent``)
  that sphinx-book-theme 1.3 does not expect; the book theme already has one in its sidebar.
  ``navbar_persistent`` is now empty unless ``_config.yml`` sets it.
* **Dead widget state.** Explorers show their static HTML view (``nb_mime_priority_overrides``),
  and no page loads the ipywidgets embedder any more, so the widget-state JSON that myst-nb
  puts into the page head of an executed notebook (tens of kB: the first image again) is
  dropped from pages that show no widget view.
"""

from __future__ import annotations

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _configure(app, config) -> None:
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "light")
    config.html_context = context
    options = dict(config.html_theme_options or {})
    options.setdefault("navbar_persistent", [])
    config.html_theme_options = options


def _key(js) -> tuple:
    attributes = getattr(js, "attributes", {}) or {}
    return (getattr(js, "filename", js) or "", tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    body = context.get("body", "") or ""
    seen, kept = set(), []
    for js in scripts:
        key = _key(js)
        if key in seen:
            continue
        seen.add(key)
        attributes = getattr(js, "attributes", {}) or {}
        if attributes.get("type") == WIDGET_STATE and WIDGET_VIEW not in body:
            continue
        kept.append(js)
    scripts[:] = kept


def setup(app):
    app.connect("config-inited", _configure)
    # after myst-nb's handler (priority 500), which adds the page's notebook scripts
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
