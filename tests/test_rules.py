"""The rules' own arithmetic, checked against NumPy doing what they predict."""
import math
import warnings

import numpy as np
import pytest

from leaky_kernel._rules import slope_fits


def _stays_finite(slope, compute):
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        warnings.simplefilter("ignore")
        return math.isfinite(compute.type(slope))


@pytest.mark.parametrize("compute", [np.dtype(np.float32), np.dtype(np.float64)])
def test_a_slope_fits_exactly_when_its_rounding_stays_finite(compute):
    largest = float(np.finfo(compute).max)
    slopes = [0.0, 5e-324, 1.0, 1e38, 3.4028235e38, 3.4028236e38, 1e39, largest, 1e308,
              float(np.finfo(np.float64).max)]
    # Every float64 around float32's overflow point, where rounding decides.
    edge = 2.0**128 - 2.0**103
    for direction in (0.0, math.inf):
        value = edge
        for _ in range(200):
            slopes.append(value)
            value = math.nextafter(value, direction)
    for slope in slopes:
        for signed in (slope, -slope):
            assert slope_fits(signed, compute) == _stays_finite(signed, compute), signed
