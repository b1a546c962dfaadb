"""The figure machinery of :mod:`dgbench.report.plots`: a matplotlib ``Figure`` outside
pyplot, legends whose long labels wrap and whose size the figure makes room for, and PNG
output (a file's, or a data URI an HTML report inlines).

matplotlib is an optional extra (``pip install 'dgbench[plot]'``), imported when drawing.
"""

from __future__ import annotations

import base64
import io
import textwrap
from typing import Any

from dgbench.core.errors import ConfigError

DPI = 150  # of every raster figure (a file, or a report's inline PNG)
LEGEND_WIDTH = 34  # characters per line of a legend label; longer ones wrap


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure outside pyplot's registry (nothing to close, nothing leaks)."""
    try:
        import matplotlib  # lazy: matplotlib, an optional extra (plot)

        matplotlib.use("Agg")
        from matplotlib.figure import Figure  # lazy: matplotlib
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'dgbench[plot]'") from None
    return Figure(figsize=(width, height), layout="constrained")


def wrapped(label: Any) -> str:
    """A legend label wrapped at :data:`LEGEND_WIDTH` characters (at its spaces)."""
    return textwrap.fill(str(label), LEGEND_WIDTH, break_on_hyphens=False)


def legend_size(labels: list[Any], title: str = "") -> tuple[float, float]:
    """(width, height) in inches that a legend of ``labels`` at font size 8 takes, wrapped:
    what a figure adds beside its axes, so that long labels do not squeeze the axes."""
    lines = [wrapped(label).split("\n") for label in labels]
    chars = max([len(title)] + [len(line) for ls in lines for line in ls])
    return 0.075 * chars + 0.7, 0.16 * sum(len(ls) for ls in lines) + 0.2 * len(lines) + 0.6


def legend(ax: Any, handles: list[Any], labels: list[Any], title: str) -> None:
    """A legend beside ``ax`` (right of it, top-aligned), its labels wrapped."""
    ax.legend(handles, [wrapped(label) for label in labels], title=title, fontsize=8,
              loc="upper left", bbox_to_anchor=(1.02, 1.0))


def figure_png_bytes(fig: Any) -> bytes:
    """``fig`` rendered as PNG bytes, at :data:`DPI`."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of PNG bytes (from the IHDR chunk)."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def to_data_uri(fig: Any) -> str:
    """``fig`` as a base64 PNG ``data:`` URI, for an ``<img src=...>`` in an HTML report."""
    return png_data_uri(figure_png_bytes(fig))


def png_data_uri(png: bytes) -> str:
    """PNG bytes as a base64 ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
