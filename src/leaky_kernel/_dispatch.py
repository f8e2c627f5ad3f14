"""Fitting the kernels to this machine, once at import: the widest kernel
build this CPU runs, and the streaming-store cutoff from its cache size.

The same kernel source is compiled once per instruction-set level, as NumPy
does it: a portable baseline (SSE2 on x86-64, whatever the platform's default
elsewhere) and, on x86-64, AVX2. The build machine's CPU does not matter; this
one's does. Importing the AVX2 module on a CPU without AVX2 could fault, so the
CPU is asked first. LEAKY_KERNEL_SIMD=baseline (or avx2) picks a level, for
tests and comparisons.
"""
import glob
import importlib
import importlib.util
import os
import warnings

import numpy as np

from . import _kernels_baseline


def _built(level):
    return importlib.util.find_spec(f"{__package__}._kernels_{level}") is not None


def _runnable_levels():
    levels = ["baseline"]
    if _built("avx2") and _kernels_baseline.cpu_has_avx2():
        levels.append("avx2")
    return levels


def load(level):
    """The kernel module of `level`, one of LEVELS."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return importlib.import_module(f"{__package__}._kernels_{level}")


# Levels this build has and this CPU runs, narrowest first.
LEVELS = _runnable_levels()


def _chosen_level():
    requested = os.environ.get("LEAKY_KERNEL_SIMD", "")
    if requested and requested not in LEVELS:
        warnings.warn(
            f"LEAKY_KERNEL_SIMD={requested!r} is not available here (available: {LEVELS}); "
            f"using {LEVELS[-1]!r}",
            RuntimeWarning,
            stacklevel=2,
        )
        requested = ""
    return requested or LEVELS[-1]


def last_level_cache_bytes():
    """Size of the largest CPU cache, from Linux sysfs; None where unknown."""
    sizes = []
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        if text[-1:] in units and text[:-1].isdigit():
            sizes.append(int(text[:-1]) * units[text[-1]])
    return max(sizes, default=None)


kernels = load(_chosen_level())

# Streaming pays only when the output is well beyond the last-level cache
# (bench/NOTES.md); the kernels' own default stands where it is unknown.
_llc = last_level_cache_bytes()
if _llc:
    kernels.set_stream_min_bytes(4 * _llc)


def by_dtype(fused_kernel):
    """A fused kernel's specialisations, keyed by the NumPy compute dtype."""
    return {
        np.dtype(np.float32): fused_kernel["float"],
        np.dtype(np.float64): fused_kernel["double"],
    }
