"""python -m leaky_kernel: print the build configuration, then check the
compiled kernels against the oracle on random data on this machine.

Exits 1 on any mismatch.
"""
import sys

import numpy as np

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import LEVELS, kernels
from leaky_kernel._testing import bits_equal, random_operand


def self_check(seed=0):
    """Compare every dtype x layout x thread count with the oracle; return failures."""
    rng = np.random.default_rng(seed)
    failures = []
    layouts = {
        "C": lambda a: a,
        "F": np.asfortranarray,
        "transposed": lambda a: a.T,
        "strided": lambda a: a[::2, ::-3],
    }
    for dtype in (np.float16, np.float32, np.float64):
        base_x = random_operand(rng, (301, 2 * kernels.PARALLEL_MIN_SIZE // 300), dtype)
        base_g = random_operand(rng, base_x.shape, dtype)
        for layout, view in layouts.items():
            x, g = view(base_x), view(base_g)
            for slope in (0.01, 0.0, -0.5, 3.0):
                for threads in (1, 2, 3):
                    case = f"{np.dtype(dtype).name} {layout} slope={slope} threads={threads}"
                    got = lk.leaky_relu(x, slope, num_threads=threads)
                    if not bits_equal(got, reference.leaky_relu(x, slope)):
                        failures.append("forward " + case)
                    got = lk.leaky_relu_backward(g, x, slope, num_threads=threads)
                    if not bits_equal(got, reference.leaky_relu_backward(g, x, slope)):
                        failures.append("backward " + case)
    return failures


def main():
    print(f"leaky_kernel {lk.__version__}")
    print(f"  OpenMP:  {'enabled' if lk.openmp_enabled() else 'disabled (serial build)'}")
    print(f"  threads: {lk.get_num_threads()} (serial below {kernels.PARALLEL_MIN_SIZE} elements)")
    print(f"  SIMD:    {kernels.SIMD} (this CPU runs: {', '.join(LEVELS)})")
    print(f"  numpy:   {np.__version__}")
    failures = self_check()
    if failures:
        print(f"self-check FAILED: {len(failures)} mismatches with the oracle")
        for failure in failures:
            print("  " + failure)
        return 1
    print("self-check passed: every kernel path matches the oracle bit for bit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
