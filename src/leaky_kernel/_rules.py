"""The rules every call follows, in one table: the dtypes a call takes, and
the dtype it computes and returns in; what a slope may be; the size of a
sign mask; how many threads a call may use.

The checks (_validation), the plans (_api, _mask), the torch operators and
the oracle read these rules here; nothing else states them. The compiled
fast paths hold the same rules as their one precondition check (see
select_contiguous), and decline a call whenever they are in doubt.
"""
import math
import os

import numpy as np

from . import _openmp

# Dtypes -------------------------------------------------------------------

SUPPORTED_DTYPES = "float16, float32, float64, bool and integers (computed in float64)"

FLOAT64 = np.dtype(np.float64)

# Result dtype by dtype.char; byte-swapped floats share the char of the native one.
FLOAT_RESULTS = {
    "e": np.dtype(np.float16),
    "f": np.dtype(np.float32),
    "d": FLOAT64,
}

# float16 is computed in float32 and rounded once, as PyTorch's CPU kernel does.
_COMPUTE = {np.dtype(np.float16): np.dtype(np.float32)}


def result_dtype(dtype, name):
    """The dtype a call returns for an operand of this dtype: a float dtype
    its own (native), bool and integers float64; TypeError for the rest."""
    if dtype.kind in "biu":
        return FLOAT64
    if dtype.kind == "f" and dtype.char in FLOAT_RESULTS:
        return FLOAT_RESULTS[dtype.char]
    raise TypeError(f"{name} has unsupported dtype {dtype}; supported: {SUPPORTED_DTYPES}")


def compute_dtype(dtype):
    """The dtype the kernel computes in for a result of this dtype."""
    return _COMPUTE.get(dtype, dtype)


# Slopes -------------------------------------------------------------------


class _DefaultSlope(float):
    """0.01, marked so that an explicit negative_slope can be told from the default."""


DEFAULT_SLOPE = _DefaultSlope(0.01)


def _overflows_at(dtype):
    """The smallest magnitude that rounds to infinity in the float `dtype`:
    halfway from its largest finite value to the next power of two (the
    largest value's last bit is odd, so the tie rounds up, to infinity).
    For float64, which a Python float is, no finite float overflows."""
    info = np.finfo(dtype)
    try:
        return math.ldexp(1.0, info.maxexp) - math.ldexp(1.0, info.maxexp - info.nmant - 2)
    except OverflowError:
        return math.inf


_SLOPE_OVERFLOWS_AT = {
    compute: _overflows_at(compute) for compute in map(compute_dtype, FLOAT_RESULTS.values())
}


def slope_fits(slope, compute):
    """Whether a finite float slope stays finite once rounded to the compute
    dtype (1e39 is a valid float64 slope but overflows float32)."""
    return abs(slope) < _SLOPE_OVERFLOWS_AT[compute]


# Sign masks ---------------------------------------------------------------

# The sign mask of an array of n elements is n bits packed into ceil(n / 8)
# uint8 bytes: bit i is x.flat[i] > 0 in C order, little-endian bit order
# within each byte, i.e. np.packbits((x > 0).reshape(-1), bitorder="little").
MASK_DTYPE = np.dtype(np.uint8)


def mask_nbytes(size):
    """Bytes of the sign mask of `size` elements."""
    return (size + 7) // 8


# Threads ------------------------------------------------------------------

# The largest thread count a call may ask for: the OpenMP runtime's int.
MAX_THREADS = _openmp.MAX_THREADS


def _usable_cpus():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# The most threads any call starts: the CPUs this process may run on, and
# OpenMP's thread limit. A memory-bound kernel gains nothing from more
# threads than cores, and a count such as 100,000 would make the OpenMP
# runtime fail to create its threads and end the process.
THREAD_CAP = max(1, min(_usable_cpus(), _openmp.thread_limit()))
