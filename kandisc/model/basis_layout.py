"""The layout of the per-interval B-spline table, defined once for its builder and its readers.

:func:`kandisc.model.spline.basis_table` builds the table; the eager path in ``spline.py`` and the
C kernel (``_basis_native_impl.h``, through :mod:`kandisc.model.native`, which passes it
:func:`width`) read it. For every input ``i`` and interval row ``r`` (the number of knots <= x;
rows 0 and ``n_knots`` lie outside the extended grid and are all zero) the table holds one record
of :func:`width` numbers::

    [t_idx, 1/h, a[0][0..k], a[1][0..k], ..., a[k][0..k]]

``t_idx`` is the interval's left knot, ``h`` its length, and ``a[p][m]`` multiplies s^(k-p) in the
polynomial of local basis m (global basis ``idx - k + m``) in s = (x - t_idx)/h: highest power
first (Horner's order), coefficient-major so that one gather gives a contiguous plane per
coefficient. Only values are stored: the x-derivative of order d of basis m is

    sum_{p <= k-d} a[p][m] · (k-p)!/(k-p-d)! · s^(k-p-d) / h^d,

which the readers form on the fly (:func:`derivative_factors`), so any derivative costs no table.
"""

from __future__ import annotations

HEADER = 2  # t_idx and 1/h precede the coefficients; the C kernel checks this value at load
MAX_DERIVATIVE = 3  # the base functions' closed-form derivatives go this far (third: general separability)


def width(k: int) -> int:
    """Numbers per (input, interval) record for splines of order ``k``."""
    return HEADER + (k + 1) ** 2


def derivative_factors(k: int, order: int) -> list[float]:
    """(k-p)!/(k-p-order)! for p = 0..k-order: the factor of a[p] in the derivative of ``order``."""
    factors = []
    for p in range(k + 1 - order):
        value = 1.0
        for j in range(order):
            value *= k - p - j
        factors.append(value)
    return factors
