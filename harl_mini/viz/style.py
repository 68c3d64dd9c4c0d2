"""The book's one figure style: text-column width, legible fonts, 2× PNG with its font size inside.

Every figure the book shows goes through :func:`use`, which ``import harl_mini.viz`` calls once:

* **Size.** The default figure is as wide as the theme's text column (:data:`COLUMN_PX` CSS px at
  a 1400 px window, :data:`COLUMN_IN` inches at :data:`CSS_DPI`); :func:`figure` makes a grid of
  panels at that width. A figure that is wider anyway is fitted to the column when it is shown
  and laid out again (:func:`prepare`: with one or two panels per row its text keeps its point
  size, so it does not shrink with the figure; a wider grid shrinks, text down to 7 pt).
* **Fonts.** Body text 10 pt, ticks and legends 9 pt; nothing smaller than :data:`MIN_FONT_PT`
  (7 pt) is drawn: smaller text is raised to it when the figure is shown. Shown at its
  natural size, 1 pt is 96/72 CSS px, so every label renders at >= 9.3 CSS px in the column.
* **Pixels.** Figures are PNG at 2× (:data:`RETINA`) with their display size in the output's
  metadata, so they are sharp on high-density screens and take the column width elsewhere.
* **Measured, not assumed.** Each PNG carries its smallest font size and its resolution as
  text chunks (:data:`FONT_KEY`, :data:`DPI_KEY`; :func:`png_text` reads them back). The browser
  test (``tests/browser``) multiplies them by the scale at which the page shows the image and
  fails any figure whose smallest text renders below 9 CSS px.

Multi-panel figures: at most :data:`MAX_NCOLS` panels per row (two is better). A 2×4 grid is
two figures, or a 4×2 grid, not a row of eight thumbnails; see ``CONTRIBUTING.md``, "Writing a
chapter page".
"""

from __future__ import annotations

import io
import json
import math
import struct
import warnings
import zlib

from harl_mini.errors import HarlMiniError, check_positive_int

__all__ = ["COLUMN_PX", "CSS_DPI", "COLUMN_IN", "RETINA", "MIN_FONT_PT", "MAX_NCOLS", "RC", "FONT_KEY",
           "DPI_KEY", "PARAMS_KEY", "use", "figure", "prepare", "png_bytes", "png_text"]

#: Width in CSS px of the theme's text column at a 1400 px window (sphinx-book-theme 1.3,
#: measured by ``tests/browser/test_book_layout.py``, which fails if the theme changes it).
COLUMN_PX = 784
#: CSS px per inch: a figure of w inches shown at its natural size is ``w * CSS_DPI`` px wide.
CSS_DPI = 96
#: The column width in inches (8.17 in).
COLUMN_IN = COLUMN_PX / CSS_DPI
#: Static figures are saved at this multiple of :data:`CSS_DPI` and shown at 1/RETINA of their pixels.
RETINA = 2
#: Smallest font size drawn, in points: 7 pt × 96/72 = 9.33 CSS px at the natural size.
MIN_FONT_PT = 7.0
#: Most panels per row of :func:`figure` (a 4.1 in panel per column at two; 2.7 in at three).
MAX_NCOLS = 3

#: PNG text chunk written by :func:`png_bytes`: the smallest font size drawn (pt).
FONT_KEY = "harl_mini:min_font_pt"
#: PNG text chunk: the resolution the figure was saved at (dots per inch).
DPI_KEY = "harl_mini:dpi"
#: PNG text chunk of an explorer frame: ``{control: [label shown, value]}`` it was drawn with (JSON).
PARAMS_KEY = "harl_mini:params"

#: The rcParams :func:`use` sets: sizes and fonts only (colours and line styles are left alone).
RC = {
    "figure.figsize": (COLUMN_IN, 3.2),
    "figure.dpi": CSS_DPI,
    "savefig.dpi": CSS_DPI * RETINA,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "font.size": 10.0,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10.0,
    "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0,
    "legend.fontsize": 9.0,
    "legend.title_fontsize": 9.0,
    "figure.titlesize": 11.0,
}

def use() -> None:
    """Apply the book's figure style: :data:`RC`, and in IPython a PNG formatter for figures.

    The formatter shows every matplotlib figure as :func:`png_bytes` at 2× with its display
    width in the output metadata, after :func:`prepare` (fit to the column, font floor).
    Calling it again is harmless. Outside IPython only the rcParams change.
    """
    import matplotlib

    matplotlib.rcParams.update(RC)
    _install_formatter()


def _install_formatter() -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the book, not of the package
        return
    ip = get_ipython()
    if ip is None or not hasattr(ip, "display_formatter"):
        return
    import matplotlib
    from matplotlib.figure import Figure

    backend = str(matplotlib.rcParams._get("backend")).lower()
    if "inline" in backend:
        # Load the inline backend now: loading it later would reset the figure formatters.
        import matplotlib.pyplot as plt

        plt.switch_backend(matplotlib.rcParams._get("backend"))
    formatters = ip.display_formatter.formatters
    for mime, formatter in formatters.items():
        if mime != "image/png":
            formatter.pop(Figure, None)
    formatters["image/png"].for_type(Figure, _figure_png)


def _figure_png(fig):
    """IPython formatter: (PNG bytes, {"width", "height"} in CSS px) of a figure, or None if empty."""
    if not fig.axes and not fig.lines and not fig.texts:
        return None
    data = png_bytes(fig, dpi=CSS_DPI * RETINA)
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
    return data, {"width": round(w / RETINA), "height": round(h / RETINA)}


def figure(ncols: int = 1, nrows: int = 1, *, height: float | None = None, **subplot_kw):
    """A figure as wide as the text column with ``nrows × ncols`` panels (constrained layout).

    Args:
        ncols: panels per row, 1 to :data:`MAX_NCOLS`. Two side by side is the usual most.
        nrows: rows of panels.
        height: height of one row in inches; default: 0.75 of a panel's width, clipped to
            [2.2, 3.2] in (a 2.2 in row is 211 CSS px).
        **subplot_kw: passed to ``plt.subplots`` (``sharex``, ``gridspec_kw``, ...).

    Returns:
        ``(fig, axes)`` as ``plt.subplots`` returns them. Do not call ``tight_layout`` on it: the
        constrained layout already fits the labels.
    """
    import matplotlib.pyplot as plt

    ncols = check_positive_int(ncols, "ncols")
    nrows = check_positive_int(nrows, "nrows")
    if ncols > MAX_NCOLS:
        raise HarlMiniError(f"ncols: at most {MAX_NCOLS} panels fit side by side in the text column, got {ncols}; "
                            f"use more rows or split the figure")
    if height is None:
        height = min(max(0.75 * COLUMN_IN / ncols, 2.2), 3.2)
    elif not (isinstance(height, (int, float)) and math.isfinite(height) and height > 0):
        raise HarlMiniError(f"height: expected a positive number of inches, got {height!r}")
    return plt.subplots(nrows, ncols, figsize=(COLUMN_IN, float(height) * nrows), layout="constrained",
                        **subplot_kw)


def _visible_texts(fig):
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _layout_engine(fig):
    """The figure's active layout engine, or None. After ``fig.tight_layout()`` matplotlib leaves a
    ``PlaceHolderLayoutEngine``, which lays nothing out: that counts as none."""
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    engine = fig.get_layout_engine()
    return None if isinstance(engine, PlaceHolderLayoutEngine) else engine


def _grid_columns(fig) -> int:
    """Most panels side by side: the widest grid any of the figure's axes sits in (1 if none)."""
    cols = [ax.get_subplotspec().get_gridspec().ncols for ax in fig.axes if ax.get_subplotspec() is not None]
    return max(cols, default=1)


def prepare(fig) -> None:
    """Make ``fig`` fit the book's style before it is saved.

    A figure wider than :data:`COLUMN_IN` is scaled to that width (height in proportion) and laid
    out again: by its own layout engine if it has one, otherwise by ``tight_layout`` (inside the
    area its axes used when it has figure-level legends or texts, so they keep their room).
    With at most two panels side by side its text keeps its point size (so it gets relatively
    larger and stays legible); a wider grid is shrunk like an image, text included, but no text
    below :data:`MIN_FONT_PT` (such a grid should be split or reflowed: see ``CONTRIBUTING.md``).
    Finally, any text smaller than :data:`MIN_FONT_PT` is raised to it.
    """
    from matplotlib.transforms import Bbox

    w, h = fig.get_size_inches()
    area = None
    if w > COLUMN_IN * 1.001:
        scale = COLUMN_IN / w
        if _layout_engine(fig) is None and fig.axes:
            area = (0.0, 0.0, 1.0, 1.0)
            figure_level = list(fig.legends) + list(fig.texts)
            figure_level += [a for a in (fig._suptitle, fig._supxlabel, fig._supylabel) if a is not None]
            if figure_level:  # keep their room: lay the axes out in the area they used
                fig.canvas.draw()
                renderer = fig.canvas.get_renderer()
                boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
                boxes = [b for b in boxes if b is not None]
                if boxes:
                    box = Bbox.union(boxes).transformed(fig.transFigure.inverted())
                    area = (max(box.x0, 0.0), max(box.y0, 0.0), min(box.x1, 1.0), min(box.y1, 1.0))
        if _grid_columns(fig) > 2:
            ticks = [(axis, axis.get_ticklabels()) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)]
            ticks = [(axis, labels[0].get_fontsize()) for axis, labels in ticks if labels]
            for t in _visible_texts(fig):
                t.set_fontsize(max(t.get_fontsize() * scale, MIN_FONT_PT))
            for axis, size in ticks:  # also for the ticks later draws make
                axis.set_tick_params(which="both", labelsize=max(size * scale, MIN_FONT_PT))
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for kw in (axis._major_tick_kw, axis._minor_tick_kw):
                size = kw.get("labelsize")
                if isinstance(size, (int, float)) and size < MIN_FONT_PT:
                    kw["labelsize"] = MIN_FONT_PT  # ticks made by later draws
    for t in _visible_texts(fig):
        if t.get_fontsize() < MIN_FONT_PT:
            t.set_fontsize(MIN_FONT_PT)
    if w > COLUMN_IN * 1.001:
        fig.set_size_inches(COLUMN_IN, h * COLUMN_IN / w)
        if area is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "not compatible with tight_layout" for odd axes
                fig.tight_layout(rect=area)


def png_bytes(fig, dpi: float, params: dict | None = None, palette: bool = False) -> bytes:
    """``fig`` as PNG after :func:`prepare`, with its font size and dpi inside.

    The bounding box is tight unless the figure has a layout engine (:func:`figure` uses the
    constrained layout), which already fits its labels. A palette image (explorer frames) is
    drawn once at ``dpi`` with the constrained layout and stored with 256 colours.

    Args:
        fig: a matplotlib Figure.
        dpi: pixels per inch (:data:`CSS_DPI` × :data:`RETINA` for a static figure).
        params: values of the controls an explorer frame was drawn with, stored as JSON.
        palette: store 256 colours (a line plot loses almost nothing; the file is ~3× smaller).
            The figure keeps ``dpi`` afterwards.

    Returns:
        The PNG file; :func:`png_text` reads :data:`FONT_KEY`, :data:`DPI_KEY` and
        :data:`PARAMS_KEY` back.
    """
    from PIL import Image

    prepare(fig)
    if palette:
        # Drawn once into the canvas and quantised: no second draw for a tight bounding box,
        # and the constrained layout keeps every label inside the figure instead.
        import numpy as np

        if _layout_engine(fig) is None:
            fig.set_layout_engine("constrained")
        fig.set_dpi(dpi)
        fig.canvas.draw()
        rgb = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")
        out = io.BytesIO()
        rgb.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
            out, format="png", compress_level=9)
        data = out.getvalue()
    else:
        out = io.BytesIO()
        # A layout engine already fits the labels; a tight bounding box would cost a second draw.
        bbox = None if _layout_engine(fig) is not None else "tight"
        fig.savefig(out, format="png", dpi=dpi, bbox_inches=bbox, facecolor="white")
        data = out.getvalue()
    # The smallest font among the texts this draw drew, not the style's promise.
    min_font = min((float(t.get_fontsize()) for t in _visible_texts(fig)), default=MIN_FONT_PT)
    info = {FONT_KEY: f"{min_font:g}", DPI_KEY: f"{float(dpi):g}"}
    if params is not None:
        info[PARAMS_KEY] = json.dumps(params, ensure_ascii=True)  # in the order of the controls
    return _with_text_chunks(data, info)


def _with_text_chunks(png: bytes, info: dict[str, str]) -> bytes:
    """``png`` with one tEXt chunk per entry of ``info``, inserted before IEND (no re-encoding)."""
    end = png.rindex(b"IEND") - 4  # the IEND chunk starts with its 4-byte length
    chunks = b""
    for key, value in info.items():
        body = key.encode("latin-1") + b"\0" + value.encode("latin-1")
        chunks += struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png[:end] + chunks + png[end:]


def png_text(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG file (``{}`` if it has none)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return dict(getattr(im, "text", {}) or {})
