"""Small helpers every plotting module shares: a fresh Axes, the image a widget shows, and
argument checks that raise :class:`~harl_mini.errors.HarlMiniError` with one clear message."""

from __future__ import annotations

import io
import math
import numbers

import numpy as np
import torch

from harl_mini.errors import HarlMiniError, as_float64


def new_axes(ax, figsize):
    """``ax`` itself, or a new Axes of ``figsize`` inches when ``ax`` is None."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


#: Resolution (dots per inch) of the image an ipywidgets explorer shows. Each redraw is a PNG
#: sent through the widget's Output; during the book build nbclient sometimes misses the
#: cell's execute reply when that image is larger than about 50-64 kB, waits the whole cell
#: timeout (300 s) and then goes on without an error. At 72 dpi, stored with a 256-colour
#: palette (:func:`widget_png`), every explorer's first image stays well below 40 kB
#: (tests/test_viz.py checks each one). Static figures keep matplotlib's defaults.
WIDGET_DPI = 72


def widget_png(fig) -> bytes:
    """``fig`` as the PNG an explorer shows: :data:`WIDGET_DPI`, tight bounding box, 256 colours.

    A line plot has few distinct colours, so the palette is almost lossless, and the file is
    about a third of the RGBA PNG the inline backend would write.
    """
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=WIDGET_DPI, bbox_inches="tight")
    buf.seek(0)
    with Image.open(buf) as im:
        pal = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    pal.save(out, format="png", optimize=True)
    return out.getvalue()


def show_widget_figure(fig=None) -> None:
    """Display ``fig`` (default: the current figure) as :func:`widget_png` and close it.

    An explorer's redraw calls this instead of ``plt.show()``: inside the widget's Output
    the image lands there, and since the figure is closed the inline backend adds no second,
    full-size copy.
    """
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    fig = plt.gcf() if fig is None else fig
    try:
        display(Image(data=widget_png(fig), format="png"))
    finally:
        plt.close(fig)


def f64(x, name: str) -> torch.Tensor:
    """``x`` as a detached float64 tensor (lists and arrays accepted; NaN/inf rejected)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
    elif x is not None and not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise HarlMiniError(f"{name}: cannot be read as a numeric array ({exc})") from None
    return as_float64(x, name)



def real(x, name: str, low: float | None = None, high: float | None = None) -> float:
    """A finite number in [low, high] (either bound may be None)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
        raise HarlMiniError(f"{name}: expected a finite number, got {x!r}")
    x = float(x)
    if (low is not None and x < low) or (high is not None and x > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise HarlMiniError(f"{name}: expected a number in [{lo}, {hi}], got {x!r}")
    return x


def game(game):
    """A MarkovGame, given one or a registered game name."""
    from harl_mini import tabular

    if isinstance(game, str):
        return tabular.make_game(game)
    if not isinstance(game, tabular.MarkovGame):
        raise HarlMiniError(f"game: expected a MarkovGame or a game name, got {type(game).__name__}")
    return game
