"""What the ufunc route costs: containers and slope arrays against plain ndarrays.

    python bench/ufunc_route.py [--rounds 15] [--log2-size 24] [--json PATH]

Every row is timed against the plain-ndarray call on the same data, in one
interleaved run (harness.time_interleaved; the fastest round of each is the
figure, as noise only slows a call down). float32, allocating results:

- pandas Series, xarray DataArray: the same call on the container (skipped
  when the package is missing);
- the ufunc route on an ndarray subclass (which dispatches like a
  container), with 1 and all threads: does a large loop still run on the
  threads;
- per-channel slopes, (64, 1) against (64, n/64): one slope per inner loop,
  the kernel runs per row; against np.where with the same slopes;
- per-feature slopes, (256,) against (n/256, 256): a slope per element of
  each inner loop; against np.where.

torch is left out on purpose: its own OpenMP threads keep spinning after
each call and slow every parallel region that follows (bench/NOTES.md,
section 24), which would time torch, not these calls.

Prints a table and writes JSON with the CPU model and SIMD level.
"""
import argparse
import json
import os
import sys
from functools import partial

import numpy as np

import harness
import leaky_kernel as lk
from harness import ALL_THREADS, Entry, TimingSettings
from leaky_kernel._dispatch import kernels
from leaky_kernel._testing import bits_equal
from leaky_kernel._tuning import cpu_model

PLAIN = "ndarray, one slope"


class Subclass(np.ndarray):
    """An ndarray subclass: it goes through the ufunc, as containers do."""


def entries(n):
    """{name: Entry}, each checked once against the plain call's result or its own oracle."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    calls = {PLAIN: partial(lk.leaky_relu, x, 0.1, num_threads=ALL_THREADS)}
    expected = {PLAIN: lk.reference.leaky_relu(x, 0.1)}
    subclass = x.view(Subclass)
    for threads in sorted({1, ALL_THREADS}):
        name = f"ndarray subclass (ufunc), {threads} thread(s)"
        calls[name] = partial(lk.leaky_relu, subclass, 0.1, num_threads=threads)
        expected[name] = expected[PLAIN]
    try:
        import pandas as pd

        series = pd.Series(x)
        calls["pandas Series"] = partial(lk.leaky_relu, series, 0.1, num_threads=ALL_THREADS)
        expected["pandas Series"] = expected[PLAIN]
    except ImportError:
        pass
    try:
        import xarray as xr

        array = xr.DataArray(x, dims=("i",))
        calls["xarray DataArray"] = partial(lk.leaky_relu, array, 0.1, num_threads=ALL_THREADS)
        expected["xarray DataArray"] = expected[PLAIN]
    except ImportError:
        pass
    slopes = {
        "per-channel (64, 1)": (x.reshape(64, -1), np.linspace(0.01, 0.3, 64).reshape(64, 1)),
        "per-feature (256,)": (x.reshape(-1, 256), np.linspace(0.01, 0.3, 256)),
    }
    for label, (shaped, slope) in slopes.items():
        oracle = lk.reference.leaky_relu(shaped, slope)
        calls[f"{label}: leaky_kernel"] = partial(
            lk.leaky_relu, shaped, slope, num_threads=ALL_THREADS
        )
        s32 = slope.astype(np.float32)
        calls[f"{label}: np.where"] = partial(
            lambda a, s: np.where(a > 0, a, s * a), shaped, s32
        )
        expected[f"{label}: leaky_kernel"] = expected[f"{label}: np.where"] = oracle
    for name, call in calls.items():
        got = call()
        if not bits_equal(np.asarray(got), expected[name]):
            raise AssertionError(f"{name} differs from its expected result")
    return {name: Entry(call) for name, call in calls.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--log2-size", type=int, default=24)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    n = 1 << args.log2_size
    settings = TimingSettings(loop_seconds=0.05, min_rounds=args.rounds, max_rounds=args.rounds)
    fastest = harness.fastest(entries(n), settings)
    info = {
        "cpu_model": cpu_model(),
        "simd": kernels.SIMD,
        "threads": ALL_THREADS,
        "elements": n,
        "dtype": "float32",
        "load_average": os.getloadavg(),
    }
    print(f"{info['cpu_model']}, {info['simd']}, {ALL_THREADS} threads, 2^{args.log2_size} "
          f"float32, allocating; fastest of {args.rounds} interleaved rounds")
    for name, seconds in fastest.items():
        print(f"  {name:44s} {seconds * 1e3:8.3f} ms   {seconds / fastest[PLAIN]:5.2f} x plain")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "fastest_seconds": fastest}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
