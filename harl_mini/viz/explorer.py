"""Explorers: one display object that is a live ``ipywidgets`` view in a kernel and a working
static widget in the HTML book.

An explorer is a drawing function and a few controls, each stepping through a fixed list of
values (:class:`Slider`, :class:`Menu`). :func:`explore` returns an :class:`Explorer`, an
``ipywidgets.interactive`` whose display bundle carries two views of the same frames:

* ``application/vnd.jupyter.widget-view+json``: the live widget (JupyterLab, Colab). Its
  sliders are ``SelectionSlider`` s over the same lists, so it can only show the frames the
  book shows.
* ``text/html``: every frame of the grid drawn when the cell runs, as small PNGs (1×,
  256 colours) with a few lines of inline JavaScript that swap them as the reader moves the
  controls. No kernel, no CDN, no widget library. The book prefers this view
  (``nb_mime_priority_overrides`` in ``_config.yml``).

Both views call the same ``draw(**values)`` through :meth:`Explorer.frame`, which draws each
point of the grid once, so a live slider that goes back to a value shows the cached frame.
Each frame PNG records the values it was drawn with (:data:`~harl_mini.viz.style.PARAMS_KEY`):
the browser test moves every control and checks that the picture changed and that the values
inside it are the values the page shows.

Grid sizes: every frame costs one draw when the cell runs (a two-panel figure takes about
0.1–0.3 s of CPU) and 7–15 kB of PNG (a third more as base64 in the page). Keep a grid at 40
frames or fewer and its precomputation under ~5 s (:data:`MAX_FRAMES` is a hard limit);
``tests/test_viz.py`` prints both numbers for every explorer of the book.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets
from PIL import Image as PILImage

from harl_mini.errors import HarlMiniError
from harl_mini.viz import style

__all__ = ["Slider", "Menu", "explore", "Explorer", "MAX_FRAMES", "FRAME_DPI"]

#: Most frames an explorer may precompute (product of its controls' lengths).
MAX_FRAMES = 100
#: Resolution of an explorer frame: 1× (1 pt = 96/72 CSS px at the natural size).
FRAME_DPI = style.CSS_DPI


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


class _Control:
    """A named control stepping through ``values``, shown as ``labels``; ``index`` is the start."""

    kind = ""

    def __init__(self, name: str, label: str, values: Sequence, labels: Sequence[str], index: int):
        if not isinstance(name, str) or not name.isidentifier():
            raise HarlMiniError(f"name: expected a Python identifier (the keyword of draw), got {name!r}")
        if len(values) < 1:
            raise HarlMiniError(f"{name}: expected at least one value")
        if len(set(labels)) != len(labels):
            raise HarlMiniError(f"{name}: two values have the same label ({list(labels)}); use a finer format")
        self.name, self.label = name, str(label)
        self.values, self.labels, self.index = tuple(values), tuple(labels), int(index)

    def __len__(self) -> int:
        return len(self.values)

    def position(self, value) -> int:
        """Index of ``value`` among :attr:`values` (numbers compare with a relative tolerance)."""
        for i, v in enumerate(self.values):
            if v == value or (isinstance(v, numbers.Real) and isinstance(value, numbers.Real)
                              and not isinstance(v, bool)
                              and math.isclose(float(v), float(value), rel_tol=1e-9, abs_tol=1e-12)):
                return i
        raise HarlMiniError(f"{self.name}: {value!r} is not one of {list(self.labels)}")

    def widget(self):
        raise NotImplementedError


class Slider(_Control):
    """A slider over a fixed, ordered list of numbers.

    Args:
        name: keyword argument of ``draw`` that receives the value.
        label: text shown next to the slider (e.g. ``"γ"``).
        values: the grid, in slider order (uneven steps and log grids are fine).
        value: the start; added to the grid (in order) if it is not on it.
        fmt: how a value is shown (``str.format``; default ``"{:g}"``).
    """

    kind = "slider"

    def __init__(self, name: str, label: str, values: Sequence[float], value: float, fmt: str = "{:g}"):
        vals = [v for v in values]
        if not vals or any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v)
                           for v in vals):
            raise HarlMiniError(f"{name}: expected a list of finite numbers, got {values!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise HarlMiniError(f"{name}: expected a finite number, got {value!r}")
        if not any(math.isclose(float(v), float(value), rel_tol=1e-9, abs_tol=1e-12) for v in vals):
            vals.append(value)
            increasing = len(vals) < 3 or vals[0] <= vals[-2]
            vals.sort(reverse=not increasing)
        super().__init__(name, label, vals, [fmt.format(v) for v in vals], 0)
        self.index = self.position(value)

    def widget(self):
        return widgets.SelectionSlider(options=list(zip(self.labels, self.values)), value=self.values[self.index],
                                       description=self.label, continuous_update=False)


class Menu(_Control):
    """A drop-down menu.

    Args:
        name: keyword argument of ``draw`` that receives the value.
        label: text shown next to the menu.
        options: ``{shown text: value}``, or a list of values (each shown as ``str(value)``).
        value: the start (default: the first option).
    """

    kind = "menu"

    def __init__(self, name: str, label: str, options: Mapping | Sequence, value=None):
        if isinstance(options, Mapping):
            labels, values = [str(k) for k in options], list(options.values())
        elif isinstance(options, Sequence) and not isinstance(options, (str, bytes)):
            values = list(options)
            labels = [str(v) for v in values]
        else:
            raise HarlMiniError(f"{name}: expected a dict or a list of options, got {options!r}")
        super().__init__(name, label, values, labels, 0)
        if value is not None:
            self.index = self.position(value)

    def widget(self):
        return widgets.Dropdown(options=list(zip(self.labels, self.values)), value=self.values[self.index],
                                description=self.label)


class Explorer(widgets.interactive):
    """The live widget of :func:`explore` (an ``ipywidgets.interactive``) with a static HTML view.

    Args:
        draw: ``draw(**values) -> Figure``.
        controls: the :class:`Slider` and :class:`Menu` objects.
        alt: text alternative of the picture.
    """

    def __init__(self, draw: Callable, controls: Sequence[_Control], alt: str = ""):
        self._draw, self._controls, self._alt = draw, tuple(controls), str(alt)
        self._frames: dict[tuple[int, ...], bytes] = {}
        self._html: str | None = None
        super().__init__(self._show, **{c.name: c.widget() for c in self._controls})

    def frame(self, **values) -> bytes:
        """The PNG of the grid point ``values`` (one entry per control), drawn once and cached."""
        key = tuple(c.position(values[c.name]) for c in self._controls)
        if key not in self._frames:
            import matplotlib.pyplot as plt

            point = {c.name: c.values[i] for c, i in zip(self._controls, key)}
            fig = self._draw(**point)
            try:
                params = {c.name: [c.labels[i], _jsonable(c.values[i])] for c, i in zip(self._controls, key)}
                self._frames[key] = style.png_bytes(fig, dpi=FRAME_DPI, params=params, palette=True)
            finally:
                plt.close(fig)
        return self._frames[key]

    def _show(self, **values) -> None:
        from IPython.display import Image, display

        display(Image(data=self.frame(**values), format="png"))

    def frames(self) -> list[bytes]:
        """Every frame of the grid, row-major in the order of the controls (draws what is missing)."""
        grid = itertools.product(*(range(len(c)) for c in self._controls))
        return [self.frame(**{c.name: c.values[i] for c, i in zip(self._controls, key)}) for key in grid]

    def static_html(self) -> str:
        """The ``text/html`` view: controls, the start frame, every frame, and the JavaScript that swaps them."""
        if self._html is None:
            frames = self.frames()
            shape = [len(c) for c in self._controls]
            start = 0
            for c in self._controls:
                start = start * len(c) + c.index
            data = {"shape": shape, "labels": [list(c.labels) for c in self._controls],
                    "frames": [base64.b64encode(f).decode("ascii") for f in frames]}
            controls = []
            for axis, c in enumerate(self._controls):
                label = html.escape(c.label)
                if c.kind == "slider":
                    field = (f'<input type="range" min="0" max="{len(c) - 1}" step="1" value="{c.index}" '
                             f'data-axis="{axis}" aria-label="{label}" '
                             f'aria-valuetext="{html.escape(c.labels[c.index])}">'
                             f'<output>{html.escape(c.labels[c.index])}</output>')
                else:
                    options = "".join(f'<option value="{i}"{" selected" if i == c.index else ""}>'
                                      f'{html.escape(t)}</option>' for i, t in enumerate(c.labels))
                    field = f'<select data-axis="{axis}" aria-label="{label}">{options}</select>'
                controls.append(f'<label class="harl-explorer-control"><span>{label}</span>{field}</label>')
            with PILImage.open(io.BytesIO(frames[start])) as im:
                width = im.size[0]
            payload = json.dumps(data, separators=(",", ":"), ensure_ascii=True).replace("</", "<\\/")
            self._html = (
                f'<div class="harl-explorer" data-frames="{len(frames)}">'
                f'<div class="harl-explorer-controls">{"".join(controls)}</div>'
                f'<img class="harl-explorer-frame" width="{width}" alt="{html.escape(self._alt)}" '
                f'src="data:image/png;base64,{data["frames"][start]}">'
                f'<script type="application/json" class="harl-explorer-data">'
                f"{payload}</script>"
                f"<script>{_SCRIPT}</script></div>"
            )
        return self._html

    def _repr_mimebundle_(self, **kwargs):
        """The widget's bundle plus ``text/html``: :meth:`static_html`."""
        data = super()._repr_mimebundle_(**kwargs) or {}
        data["text/html"] = self.static_html()
        return data


# The static view's behaviour: read the grid, and on every change of a control show the frame of
# the current index (row-major over the controls) and the control's value. Plain ES5, no globals.
_SCRIPT = """(function (s) {
  var root = s.parentNode, d = JSON.parse(root.querySelector("script.harl-explorer-data").textContent);
  var img = root.querySelector("img.harl-explorer-frame"), fields = root.querySelectorAll("[data-axis]");
  function show() {
    var k = 0;
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i], a = +f.getAttribute("data-axis"), v = +f.value, out = f.parentNode.querySelector("output");
      k = k * d.shape[a] + v;
      if (out) { out.textContent = d.labels[a][v]; f.setAttribute("aria-valuetext", d.labels[a][v]); }
    }
    img.src = "data:image/png;base64," + d.frames[k];
    root.setAttribute("data-index", k);
  }
  for (var i = 0; i < fields.length; i++) {
    fields[i].addEventListener("input", show);
    fields[i].addEventListener("change", show);
  }
})(document.currentScript);"""


def explore(draw: Callable, *controls: _Control, alt: str = "") -> Explorer:
    """An explorer of ``draw`` over the grid of ``controls``.

    Args:
        draw: ``draw(**values) -> matplotlib Figure``; called with one keyword per control. It
            should make its figure with :func:`harl_mini.viz.style.figure` (column width); the
            explorer saves and closes it.
        *controls: :class:`Slider` and :class:`Menu` objects, in display order.
        alt: text alternative of the picture (what it shows, for screen readers).

    Returns:
        An ``ipywidgets.interactive`` (make it a cell's last line) whose static HTML view works
        without a kernel.
    """
    if not callable(draw):
        raise HarlMiniError(f"draw: expected a function returning a Figure, got {type(draw).__name__}")
    if not controls or not all(isinstance(c, _Control) for c in controls):
        raise HarlMiniError("controls: expected one or more Slider or Menu objects")
    names = [c.name for c in controls]
    if len(set(names)) != len(names):
        raise HarlMiniError(f"controls: two controls have the same name ({names})")
    n = math.prod(len(c) for c in controls)
    if n > MAX_FRAMES:
        raise HarlMiniError(f"controls: {n} frames ({' × '.join(str(len(c)) for c in controls)}) exceed "
                            f"MAX_FRAMES = {MAX_FRAMES}; use a coarser grid")
    return Explorer(draw, controls, alt=alt)
