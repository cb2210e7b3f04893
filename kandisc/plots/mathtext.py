"""LaTeX formulas as pictures, for documents that must stand alone (``report.html``).

matplotlib's mathtext typesets the LaTeX subset sympy writes (fractions, powers, ``\\sin{\\left(x
\\right)}``, Greek letters, ``\\text{...}``) without a TeX installation or a web font, so the picture
can be embedded in the file itself.
"""

from __future__ import annotations

import io

from kandisc.plots.style import style


def latex_svg(latex: str, fontsize: float = 12.0) -> bytes | None:
    """The formula ``latex`` (without ``$``) as SVG bytes; None when mathtext cannot read it."""
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    buffer = io.BytesIO()
    try:
        with style():
            mathtext.math_to_image(f"${latex}$", buffer, prop=FontProperties(size=fontsize), format="svg")
    except (ValueError, RuntimeError):  # a construct mathtext lacks: the caller shows the LaTeX text
        return None
    return buffer.getvalue()
