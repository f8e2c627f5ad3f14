"""leaky_kernel's forward against the ways a user would write Leaky ReLU otherwise.

    python bench/compare.py            # about a minute on 2 cores
    python bench/compare.py --rounds 31 --sizes 16 20 24

Each contender computes a fresh float32 result of ``leaky_relu(x, 0.01)``
(allocating, as a user's expression does) on the same random input, and is
checked against leaky_kernel's result first. The calls are timed round-robin,
one contender after another in every round, and each contender's fastest
round (a loop of calls of about 5 ms) is kept: noise on a shared machine
only ever slows a call down, and short loops give it fewer chances. The
table gives each contender's time over leaky_kernel's (above 1: leaky_kernel
is faster). numba, numexpr and torch are optional: a missing one is a dash.
Threaded contenders (leaky_kernel, numba (prange), numexpr, torch) use
--threads threads, by default every CPU this process may run on; NumPy runs
on one.
"""

import argparse
import os
import platform
import time

import numpy as np

import leaky_kernel as lk
from leaky_kernel._tuning import cpu_model

SLOPE = 0.01
USABLE_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


numba = _optional("numba")
numexpr = _optional("numexpr")
torch = _optional("torch")


def _numba_leaky_relu(parallel):
    """The loop a numba user writes; prange splits it over threads when parallel."""

    @numba.njit(parallel=parallel, fastmath=False, cache=False)
    def leaky_relu(x, slope):
        y = np.empty_like(x)
        for i in numba.prange(x.size):
            y[i] = x[i] if x[i] > 0 else slope * x[i]
        return y

    return leaky_relu


def contenders(x, threads):
    """{name: zero-argument call returning a float32 array}, for input x."""
    slope = np.float32(SLOPE)
    calls = {
        "leaky_kernel": lambda: lk.leaky_relu(x, SLOPE, num_threads=threads),
        "np.where": lambda: np.where(x > 0, x, slope * x),
        "np.maximum": lambda: np.maximum(x, slope * x),  # right only for slopes in [0, 1]
    }
    if numba is not None:
        numba.set_num_threads(threads)
        kernel = _numba_leaky_relu(parallel=threads > 1)
        calls["numba"] = lambda: kernel(x, slope)
    if numexpr is not None:
        numexpr.set_num_threads(threads)
        calls["numexpr"] = lambda: numexpr.evaluate(
            "where(x > 0, x, slope * x)", local_dict={"x": x, "slope": slope}
        )
    if torch is not None:
        torch.set_num_threads(threads)
        tensor = torch.from_numpy(x)
        calls["torch"] = lambda: torch.nn.functional.leaky_relu(tensor, SLOPE)
    return calls


def fastest(calls, rounds, loop_seconds=0.005):
    """{name: fastest seconds per call}, the calls interleaved round by round."""
    loops = {}
    for name, call in calls.items():
        call()  # warm up: compilation, first-touch page faults, thread start
        start = time.perf_counter()
        call()
        loops[name] = max(1, int(loop_seconds / max(time.perf_counter() - start, 1e-9)))
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(loops[name]):
                call()
            best[name] = min(best[name], (time.perf_counter() - start) / loops[name])
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 16, 20, 24], metavar="LOG2")
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--threads", type=int, default=USABLE_CPUS,
                        help="threads of the threaded contenders (default: all usable CPUs)")
    args = parser.parse_args(argv)
    print(f"{cpu_model()}, {args.threads} threads, python {platform.python_version()}, "
          f"leaky_kernel {lk.__version__}, numpy {np.__version__}, "
          + ", ".join(f"{m.__name__} {m.__version__}" for m in (numba, numexpr, torch) if m))
    print(f"load average at start: {os.getloadavg()}")
    rows = []
    for log2_size in args.sizes:
        x = np.random.default_rng(0).standard_normal(1 << log2_size, dtype=np.float32)
        calls = contenders(x, args.threads)
        expected = calls["leaky_kernel"]()
        for name, call in calls.items():
            got = np.asarray(call())
            if not np.array_equal(got, expected):
                raise SystemExit(f"{name} disagrees with leaky_kernel at 2^{log2_size}")
        best = fastest(calls, args.rounds)
        rows.append((log2_size, best))
    names = list(rows[0][1])
    print(f"load average at end: {os.getloadavg()}")
    print("\nfloat32 forward, allocating; leaky_kernel's time, others' time / leaky_kernel's")
    print(f"{'elements':<10}" + "".join(f"{n:>14}" for n in names))
    for log2_size, best in rows:
        base = best["leaky_kernel"]
        cells = [f"{base * 1e6:11.1f} us"] + [
            f"{best[n] / base:13.2f}x" if n in best else f"{'-':>14}" for n in names[1:]
        ]
        print(f"{'2^' + str(log2_size):<10}" + "".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    main()
