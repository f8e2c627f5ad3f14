"""Comparison and data helpers shared by the self-check and the test suite."""
import numpy as np


def bits_equal(a, b):
    """Equal bit for bit, NaNs equal wherever both are NaN."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    nan = np.isnan(a)
    if not np.array_equal(nan, np.isnan(b)):
        return False
    ints = np.dtype(f"u{a.dtype.itemsize}")
    return np.array_equal(a[~nan].view(ints), b[~nan].view(ints))


def random_operand(rng, shape, dtype):
    """Random values over many magnitudes, with about 5% special values:
    signed zeros, NaN, infinities, subnormals of `dtype` and huge values."""
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    special = np.array(
        [0.0, -0.0, np.nan, np.inf, -np.inf, info.smallest_subnormal, -3 * info.smallest_subnormal,
         info.tiny / 2, -info.tiny / 3, info.max, -info.max / 2],
        dtype=np.float64,
    )
    x = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, size=shape)
    mask = rng.random(shape) < 0.05
    x[mask] = rng.choice(special, size=int(mask.sum()))
    with np.errstate(all="ignore"):
        return x.astype(dtype)
