"""Comparison and data helpers shared by the self-check and the test suite."""
import contextlib

import numpy as np

# Rules that force each store path, for the tests' use.
from ._tuning import STREAM_ALWAYS, STREAM_NEVER, STREAM_PAGES, kernel_configuration  # noqa: F401


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


# Quiet NaNs of each float dtype: both signs, empty, small and full payloads.
QUIET_NANS = {
    np.dtype(np.float16): np.array([0x7E00, 0xFE00, 0x7E01, 0xFE55, 0x7FFF], np.uint16),
    np.dtype(np.float32): np.array(
        [0x7FC00000, 0xFFC00000, 0x7FC00001, 0xFFD2345F, 0x7FFFFFFF], np.uint32
    ),
    np.dtype(np.float64): np.array(
        [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF800000000ABCD, 0xFFFC000012345678,
         0x7FFFFFFFFFFFFFFF],
        np.uint64,
    ),
}


def put_quiet_nans(rng, a, fraction=0.2):
    """Overwrite about `fraction` of float array `a` with assorted quiet NaNs."""
    nan = rng.random(a.shape) < fraction
    a[nan] = np.resize(QUIET_NANS[a.dtype], int(nan.sum())).view(a.dtype)
    return a


def bits_identical(a, b):
    """Equal bit for bit, NaN payloads included."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    ints = np.dtype(f"u{a.dtype.itemsize}")
    return np.array_equal(np.ascontiguousarray(a).view(ints), np.ascontiguousarray(b).view(ints))




@contextlib.contextmanager
def kernel_choices(module, **choices):
    """A kernel module configured with these choices (in the simple form of
    the default rule), restored afterwards."""
    previous = module.configure(**kernel_configuration(choices))
    try:
        yield module
    finally:
        module.configure(**previous)
