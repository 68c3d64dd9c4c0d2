"""The book's Sphinx extension (``sphinx: extra_extensions`` in ``_config.yml``).

It does four things, each for one reason:

* **API reference.** The ``automodules`` directive (:class:`AutomodulesDirective`) documents
  a package and every public module under it with ``sphinx.ext.autodoc``, so a new module
  needs no new page. The docstrings are written as plain text for ``help()``;
  :func:`process_docstring` reads their Google-style ``Args:``/``Returns:`` sections with
  napoleon and keeps their plain-text maths (``|A(s, a)|``) and tables valid reST.
  :func:`resolve_python_reference` resolves the cross-references that ``-n`` would report: a
  re-exported name (``harl_mini.tabular.value``) links to where the object is documented
  (``harl_mini.tabular.mdp.value``), a short name that exactly one documented object has
  (``MARunner.step``) links to it, a name that exists but has no API entry (a private helper,
  ``torch.Tensor``) is shown as code without a link; an ambiguous name, or one that names
  nothing, is still reported.
* **Paired notebooks** (:mod:`harl_mini.launch`). ``x.ipynb`` next to a page ``x.md`` exists for
  Colab and Binder (the theme points their buttons at it); it is excluded from the Sphinx
  sources, where it would clash with ``x.md``.
* **Downloads.** The ``.ipynb`` download of a notebook page (the executed notebook) starts with
  the same install-if-missing cell as the paired notebook.
* **No button that points at nothing.** While ``repository.url`` is a placeholder
  (:func:`harl_mini.launch.is_placeholder`), the launch (Binder, Colab) and repository buttons
  are switched off and the build says so; with ``HARL_MINI_REQUIRE_REPOSITORY=1`` (a release
  build) a placeholder is an error instead.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from harl_mini import launch

__all__ = ["setup", "AutomodulesDirective", "public_modules", "process_docstring", "paired_notebooks_under",
           "resolve_python_reference", "lookup"]

logger = logging.getLogger(__name__)

#: Environment variable: when set to 1, a placeholder repository URL fails the build.
REQUIRE_REPOSITORY = "HARL_MINI_REQUIRE_REPOSITORY"
_LAUNCH_URL_KEYS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url")
_REPOSITORY_BUTTONS = ("use_repository_button", "use_issues_button", "use_edit_page_button", "use_source_button")


def paired_notebooks_under(srcdir: Path) -> list[str]:
    """Paths (relative to ``srcdir``) of every ``x.ipynb`` that has a MyST notebook ``x.md`` beside it.

    Folders whose name starts with ``.`` or ``_`` (the virtualenv, build output) are skipped.
    """
    srcdir = Path(srcdir)
    found = []
    for folder, dirs, files in os.walk(srcdir):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(files):
            if name.endswith(".ipynb"):
                md = Path(folder) / (name[: -len(".ipynb")] + ".md")
                if md.is_file() and launch._is_myst_notebook(md):
                    found.append((Path(folder) / name).relative_to(srcdir).as_posix())
    return found


def _configure(app: Sphinx, config) -> None:
    config.exclude_patterns = list(config.exclude_patterns) + paired_notebooks_under(Path(app.srcdir))
    # Every automodule lists its public members in source order. A module's __all__ is ignored
    # so that a package re-exporting its submodules' names (harl_mini.tabular) does not document
    # them twice: each object appears once, in the module that defines it.
    config.autodoc_member_order = "bysource"
    config.autodoc_inherit_docstrings = False  # torch's docstrings of overridden methods are not ours
    config.autodoc_default_options = {"members": True, "ignore-module-all": True, "show-inheritance": True,
                                      **(config.autodoc_default_options or {})}

    theme = config.html_theme_options
    url = str(theme.get("repository_url") or "")
    if launch.is_placeholder(url):
        if os.environ.get(REQUIRE_REPOSITORY) == "1":
            raise ExtensionError(f"repository.url in _config.yml is a placeholder ({url!r}); set it to the "
                                 f"book's GitHub repository (or unset {REQUIRE_REPOSITORY})")
        for key in _REPOSITORY_BUTTONS:
            theme[key] = False
        buttons = dict(theme.get("launch_buttons") or {})
        for key in _LAUNCH_URL_KEYS:
            buttons.pop(key, None)
        buttons["thebe"] = False
        theme["launch_buttons"] = buttons
        logger.info(f"[harl_mini] repository.url {url!r} is a placeholder: no launch or repository buttons")


def _is_notebook_page(app: Sphinx, pagename: str, context: dict) -> bool:
    metadata = app.env.metadata.get(pagename, {}) if app.env else {}
    return "kernelspec" in metadata and str(context.get("sourcename", "")).endswith((".md", ".md.txt"))


def _offer_notebook(app: Sphinx, pagename: str, templatename, context: dict, doctree) -> None:
    """Before the theme's buttons: every notebook page offers its ``.ipynb`` download."""
    if _is_notebook_page(app, pagename, context):
        context["ipynb_source"] = pagename + ".ipynb"


def _write_download(app: Sphinx, pagename: str, templatename, context: dict, doctree) -> None:
    """After the theme's buttons: ``_sources/<page>.ipynb`` = the executed notebook + the install cell."""
    if not _is_notebook_page(app, pagename, context):
        return
    import nbformat

    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if executed.is_file():
        nb = nbformat.read(str(executed), as_version=4)
    else:  # execution switched off: the unexecuted page
        nb = launch.paired_notebook(Path(app.srcdir) / f"{pagename}.md", "", "main")
        nb.cells = nb.cells[1:]
    if not (nb.cells and launch.INSTALL_TAG in nb.cells[0].get("metadata", {}).get("tags", [])):
        theme = app.config.html_theme_options
        cell = launch.install_cell(str(theme.get("repository_url") or ""), str(theme.get("repository_branch") or "main"))
        if nb.nbformat_minor < 5:
            del cell["id"]
        nb.cells.insert(0, cell)
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(target))


def lookup(target: str, modname: str | None = None, clsname: str | None = None):
    """The object a Python cross-reference ``target`` names, seen from ``modname``/``clsname``; None if none.

    Tries ``target`` as a full dotted name, then relative to the class and to the module
    (``np.ndarray`` inside a module that imports numpy as np is found).
    """
    name = target.lstrip(".~")
    candidates = [name]
    if modname:
        candidates = ([f"{modname}.{clsname}.{name}"] if clsname else []) + [name, f"{modname}.{name}"]
    for name in candidates:
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except Exception:  # noqa: BLE001 - not a module (or not importable here)
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                break
            return obj
    return None


def _canonical(obj) -> str | None:
    if inspect.ismodule(obj):
        return obj.__name__
    obj = inspect.unwrap(obj) if callable(obj) else obj
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname and "<locals>" not in qualname else None


def _in_signature(node) -> bool:
    from sphinx import addnodes

    parent = node.parent
    while parent is not None:
        if isinstance(parent, addnodes.desc_signature):
            return True
        parent = parent.parent
    return False


def resolve_python_reference(app: Sphinx, env, node, contnode):
    """``missing-reference`` handler for the ``py`` domain (see the module docstring)."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    obj = lookup(target, node.get("py:module"), node.get("py:class"))
    if obj is None:
        # a short name documented elsewhere (``MARunner.step`` seen from harl_mini.marl.bench):
        # link it when exactly one documented object has that name
        domain = env.get_domain("py")
        matches = [name for name in domain.objects if name.endswith(f".{target}")]
        if len(matches) == 1:
            return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", matches[0], node, contnode)
        if _in_signature(node):
            return contnode  # an annotation of third-party code (an inherited __new__), shown as text
        return None  # a reference to nothing: keep the warning
    canonical = _canonical(obj)
    if canonical and canonical.startswith("harl_mini.") and canonical != target:
        domain = env.get_domain("py")
        for reftype in (node.get("reftype"), "obj"):
            resolved = domain.resolve_xref(env, node["refdoc"], app.builder, reftype, canonical, node, contnode)
            if resolved is not None:
                return resolved
    return contnode  # exists, but has no entry in the API reference: code without a link


_CODE_SPAN = re.compile(r"(``.+?``|`[^`]*`)")
_TABLE_BORDER = re.compile(r"^(\s*)(=+(?: +=+)+)\s*$")
_TITLE_UNDERLINE = re.compile(r"^\s*([-=~^\"'`#*+])\1{2,}\s*$")


def _escape_bars(line: str) -> str:
    """``|x|`` (an absolute value in a docstring) as text, not an RST substitution reference.

    Bars inside code spans and roles are left alone, and so are grid-table rows and line blocks
    (lines that start with ``"| "`` or ``"+-"``).
    """
    if line.strip() == "|" or line.lstrip().startswith(("| ", "+-", "+=")):
        return line
    parts = _CODE_SPAN.split(line)
    for i in range(0, len(parts), 2):
        for bar in reversed([m.start() for m in re.finditer(r"\|", parts[i])]):
            # keep later table columns aligned: one backslash in, one space out of the next gap
            gap = re.search(r"\S(  )", parts[i][bar:])
            if gap:
                cut = bar + gap.start(1)
                parts[i] = parts[i][:cut] + parts[i][cut + 1:]
            parts[i] = parts[i][:bar] + "\\" + parts[i][bar:]
    return "".join(parts)


def _widen_table_border(line: str) -> str:
    """A simple-table border with every gap narrowed to one space (each column widened to the
    right), so that a cell written one or two characters past its column, which reads fine in
    ``help()``, is not a malformed table."""
    match = _TABLE_BORDER.match(line)
    if not match:
        return line
    starts = [m.start() for m in re.finditer(r"=+", line)]
    last_end = len(line.rstrip())
    ends = [s - 1 for s in starts[1:]] + [last_end]
    out = [" "] * last_end
    for start, end in zip(starts, ends):
        out[start:end] = "=" * (end - start)
    return "".join(out)


def _titles_to_rubrics(lines: list[str]) -> list[str]:
    """Section titles inside a docstring (``Conventions`` over ``-----------``) as rubrics: a
    docstring cannot open sections of the page, and two modules' equal titles would clash."""
    out, i = [], 0
    while i < len(lines):
        title = lines[i].strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if (title and _TITLE_UNDERLINE.match(nxt) and len(nxt.strip()) >= len(title)
                and not _TITLE_UNDERLINE.match(lines[i]) and (i == 0 or not lines[i - 1].strip())):
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            out += [f"{indent}.. rubric:: {title}", ""]
            i += 2
            continue
        out.append(lines[i])
        i += 1
    return out


def _napoleon_class():
    from sphinx.ext.napoleon.docstring import GoogleDocstring

    class ProseGoogleDocstring(GoogleDocstring):
        """Google-style sections as this package writes them: ``Returns:`` is prose, never
        ``type: description`` (napoleon would otherwise cut it at its first colon)."""

        def _consume_returns_section(self, preprocess_types: bool = False):
            lines = self._dedent(self._consume_to_next_section())
            return [("", "", lines)] if lines else []

    return ProseGoogleDocstring


def process_docstring(app: Sphinx, what: str, name: str, obj, options, lines: list[str]) -> None:
    """``autodoc-process-docstring``: the package's plain-text docstrings as valid reST.

    Google sections become fields (not for data and attributes, whose ``#:`` comments are
    prose), section titles become rubrics, simple-table gaps are narrowed to one space, and
    bars are escaped. The docstrings themselves stay as they read in ``help()``.
    """
    if what not in ("data", "attribute", "property"):
        from sphinx.ext.napoleon import Config

        config = Config(napoleon_use_param=True, napoleon_use_rtype=False)
        lines[:] = _napoleon_class()(lines, config, None, what, name, obj, options).lines()
    lines[:] = [_escape_bars(_widen_table_border(line)) for line in _titles_to_rubrics(lines)]


def public_modules(name: str) -> list[str]:
    """``name`` and, for a package, every module under it whose dotted name has no ``_`` part."""
    import pkgutil

    module = importlib.import_module(name)
    names = [name]
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, f"{name}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return names


class AutomodulesDirective(SphinxDirective):
    """``automodules``: each named module and, for a package, every public module under it, each
    under its own heading with its :mod:`sphinx.ext.autodoc` documentation, in alphabetical order.

    A module added to the package appears in the API reference without editing a page.
    """

    required_arguments = 1
    optional_arguments = 50

    def run(self):
        from docutils import nodes
        from docutils.statemachine import StringList

        names = []
        for arg in self.arguments:
            try:
                names += public_modules(arg)
            except Exception as exc:  # noqa: BLE001 - reported, and autodoc reports it again
                logger.warning(f"automodules: cannot import {arg} ({type(exc).__name__}: {exc})",
                               location=self.get_location())
                names.append(arg)
        text = "".join(f"## `{m}`\n\n```{{eval-rst}}\n.. automodule:: {m}\n```\n\n" for m in names)
        holder = nodes.section()
        self.state.nested_parse(StringList(text.splitlines(), source=self.get_source_info()[0]), self.content_offset,
                                holder, match_titles=True)
        return holder.children


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx.ext.autodoc")
    app.add_directive("automodules", AutomodulesDirective)
    app.connect("autodoc-process-docstring", process_docstring)
    app.connect("config-inited", _configure)
    app.connect("html-page-context", _offer_notebook, priority=500)
    app.connect("html-page-context", _write_download, priority=502)
    app.connect("missing-reference", resolve_python_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
