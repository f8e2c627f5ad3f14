"""Choosing the kernel build, once at import: the widest one this CPU runs.

The same kernel source is compiled once per instruction-set level, as NumPy
does it: a portable baseline (SSE2 on x86-64, whatever the platform's default
elsewhere) and, on x86-64, AVX2 and AVX-512 (F, DQ, BW, VL). The build
machine's CPU does not matter; this one's does. Importing a module on a CPU
without its instructions could fault, so the CPU is asked first.
LEAKY_KERNEL_SIMD=baseline (or avx2, avx512) picks a level, for tests and
comparisons.
"""
import importlib
import importlib.util
import os

import numpy as np

from ._openmp import cpu_has_avx2, cpu_has_avx512
from ._warn import warn_user


def _built(level):
    return importlib.util.find_spec(f"{__package__}._kernels_{level}") is not None


def _runnable_levels():
    levels = ["baseline"]
    if _built("avx2") and cpu_has_avx2():
        levels.append("avx2")
        if _built("avx512") and cpu_has_avx512():
            levels.append("avx512")
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
        warn_user(
            f"LEAKY_KERNEL_SIMD={requested!r} is not available here (available: {LEVELS}); "
            f"using {LEVELS[-1]!r}",
            RuntimeWarning,
        )
        requested = ""
    return requested or LEVELS[-1]


kernels = load(_chosen_level())


def by_dtype(fused_kernel):
    """A fused kernel's specialisations, keyed by the NumPy compute dtype."""
    return {
        np.dtype(np.float32): fused_kernel["float"],
        np.dtype(np.float64): fused_kernel["double"],
    }
