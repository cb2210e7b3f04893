"""Shared figure helpers: headless figures, common style, atomic and deterministic saving.

Figures are plain ``matplotlib.figure.Figure`` objects drawn by the Agg canvas: pyplot is never
imported, so no GUI backend is touched, no global figure registry grows, and a notebook's own
backend stays as it was. matplotlib itself is imported only when a figure is made.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kandisc.io.atomic import atomic_target

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = ("png", "pdf", "svg")
PNG_DPI = 150
MIN_FONT = 6.0

# Fixed so SVG element ids, and hence the bytes, do not change from one run to the next.
_STYLE = {
    "svg.hashsalt": "kandisc",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "text.usetex": False,
}
# Dates would make every save differ; the producer strings stay (they name the matplotlib version).
_METADATA = {"png": {}, "pdf": {"CreationDate": None}, "svg": {"Date": None}}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Temporarily apply kandisc's rcParams (restored afterwards; the user's settings are kept)."""
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` × ``height`` inches bound to an Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(value: float) -> str:
    """``value`` as 10⁻³ or 2×10⁻³ in plain text (superscript digits, no mathtext)."""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = value / 10.0**exponent
    power = "10" + str(exponent).translate(_SUPERSCRIPT)
    return power if abs(mantissa - 1) < 1e-6 else f"{mantissa:.2g}×{power}"


def log_axis(axis) -> None:
    """Log-scale tick labels as plain text on ``axis`` (an x or y axis already on a log scale).

    matplotlib's default labels are mathtext, which it parses for every label each time the
    figure is laid out and drawn: on a loss curve that is most of the figure's cost. Decades are
    labelled; the minor ticks only when the axis spans at most a decade (else the decades suffice),
    then only at 2 and 5 unless it spans under half a decade.
    """
    from matplotlib.ticker import FuncFormatter

    def major(value, _pos=None):
        return power_of_ten(value) if value > 0 else ""

    def minor(value, _pos=None):
        low, high = sorted(axis.get_view_interval())
        if value <= 0 or low <= 0:
            return ""
        decades = math.log10(high / low)
        mantissa = round(value / 10.0 ** math.floor(math.log10(value) + 1e-9), 6)
        return power_of_ten(value) if decades <= 1 and (decades < 0.5 or mantissa in (2, 5)) else ""

    axis.set_major_formatter(FuncFormatter(major))
    axis.set_minor_formatter(FuncFormatter(minor))


def check_formats(formats: Iterable[str]) -> list[str]:
    """Lower-cased, de-duplicated formats in order; an unknown one raises ``ValueError``."""
    if isinstance(formats, str):
        formats = [formats]
    result: list[str] = []
    for fmt in formats:
        name = str(fmt).lower().lstrip(".")
        if name not in FORMATS:
            raise ValueError(f"unknown figure format {fmt!r}; choose from {', '.join(FORMATS)}")
        if name not in result:
            result.append(name)
    if not result:
        raise ValueError(f"no figure format given; choose from {', '.join(FORMATS)}")
    return result


def save_figure(
    fig: Figure, path_stem: Path | str, formats: Iterable[str] = ("png",), dpi: int = PNG_DPI
) -> list[Path]:
    """Write ``fig`` as ``path_stem.<fmt>`` for each format, atomically; return the written paths.

    Each file is rendered into a temporary file next to its target and renamed over it, so a
    reader (or a crash) never sees a half-written figure.
    """
    fmts = check_formats(formats)
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in fmts:
        target = stem.parent / f"{stem.name}.{fmt}"
        with style(), atomic_target(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
        written.append(target)
    return written


def fit_fontsize(text_width_chars: int, room_inches: float, largest: float = 9.0, smallest: float = MIN_FONT) -> float:
    """Largest font size (pt) at which ``text_width_chars`` characters fit into ``room_inches``.

    Uses an average glyph width of 0.6 em (DejaVu Sans); never below ``smallest``.
    """
    if text_width_chars <= 0:
        return largest
    size = room_inches * 72.0 / (0.6 * text_width_chars)
    return float(max(smallest, min(largest, size)))


def text_width(chars: int, fontsize: float) -> float:
    """Approximate width in inches of ``chars`` characters at ``fontsize`` points."""
    return 0.6 * chars * fontsize / 72.0
