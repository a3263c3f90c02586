"""The inverse of many symmetric 3 x 3 matrices at once, by cofactors: the one place both the
matting Laplacian's windows (laplacian.py) and the LLE weights (flow_rules.py) invert their
colour matrices. Elementwise arithmetic only, so it runs on numpy arrays and torch tensors
alike, a batch at a time, with none of a per-matrix LAPACK call's overhead."""
from __future__ import annotations

from typing import Any, Tuple

#: an array of per-matrix values: a numpy array or a torch tensor (only + - * / and
#: ``clip(min=)`` are used)
Values = Any

#: the colour pairs (i, j), i <= j, of a symmetric 3 x 3 matrix's six entries, in this order
PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
#: the full 3 x 3 matrix's entries as indices into the six of PAIRS
FULL = ((0, 1, 2), (1, 3, 4), (2, 4, 5))


def inverse(a: Values, b: Values, c: Values, d: Values, e: Values, f: Values,
            floor: float = 1e-30) -> Tuple[Values, ...]:
    """The six entries (PAIRS order) of the inverse of [[a, b, c], [b, d, e], [c, e, f]] per
    matrix; the determinant is clipped at ``floor`` (the callers' matrices are positive
    definite: a ridge is added to each)."""
    i00, i01, i02 = d * f - e * e, c * e - b * f, b * e - c * d
    i11, i12, i22 = a * f - c * c, b * c - a * e, a * d - b * b
    det = (a * i00 + b * i01 + c * i02).clip(min=floor)
    return tuple(v / det for v in (i00, i01, i02, i11, i12, i22))


def apply(inv: Tuple[Values, ...], x: Values, y: Values, z: Values) -> Tuple[Values, Values, Values]:
    """``inv`` (six entries, PAIRS order) times the vector (x, y, z), per matrix."""
    i00, i01, i02, i11, i12, i22 = inv
    return (i00 * x + i01 * y + i02 * z, i01 * x + i11 * y + i12 * z, i02 * x + i12 * y + i22 * z)
