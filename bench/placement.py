"""Where the store variants' speed depends on more than the size: a prototype.

For one route and size, each store variant is timed in its own steady state
(a warm-up call, then a loop), interleaved, on several allocations of the
operands, and on each allocation several times in turn. It separates two
things the regret target and fitting meet:

- a state that belongs to the allocation (it holds on every repeat of one
  allocation and differs between allocations: where the pages landed);
- a state that belongs to the time (it changes between repeats on one
  allocation: what else uses the shared last-level cache or memory).

A fixed plan cannot be within a few percent of the best variant where the
best variant changes with either. Prints the CPU, the kernels' level, the
huge pages each allocation got (Linux), and per allocation and repeat the
time of each variant in ms.

    python bench/placement.py --op forward --log2 22 --allocations 4 --repeats 5
"""
import argparse
import json
import re
import time

import numpy as np

import leaky_kernel as lk
import report
from leaky_kernel import _tuning

SLOPE = 0.01


def huge_page_bytes():
    """AnonHugePages of this process in bytes (Linux), or None."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            return int(re.search(r"AnonHugePages:\s+(\d+)", f.read()).group(1)) * 1024
    except (OSError, AttributeError):
        return None


def variant_times(call, route, variants, rounds, loop_seconds):
    """{variant: fastest seconds per call over `rounds` interleaved rounds},
    measured as fitting measures (_tuning._measure)."""
    cells = {v: (_tuning._route_configuration(route, v), call) for v in variants}
    times = _tuning._measure(cells, rounds, _tuning._kernel_timer(loop_seconds))
    return {v: min(t) for v, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", choices=("forward", "backward"), default="forward")
    parser.add_argument("--log2", type=int, default=22, help="float32 elements per operand")
    parser.add_argument("--threads", type=int, default=lk.get_num_threads())
    parser.add_argument("--allocations", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop-seconds", type=float, default=0.02)
    parser.add_argument("--variants", default=",".join(_tuning.VARIANTS),
                        help="comma-separated, of: " + ", ".join(_tuning.VARIANTS))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    route = _tuning.route(args.op, "out", "serial" if args.threads == 1 else "parallel")
    variants = [v for v in args.variants.split(",") if v in _tuning.variants_of(route)]
    n = 1 << args.log2
    moved = _tuning.moved_bytes(route, n)
    info = report.machine_info()
    print(f"{info['cpu_model']} | {info['leaky_kernel_simd']} | {route}, 2^{args.log2} float32,"
          f" {moved / 2**20:.0f} MiB moved | {args.threads} threads | ms per call")
    print("allocation  huge pages  " + "  ".join(f"{v:>10}" for v in variants) + "  fastest")
    results = []
    for allocation in range(args.allocations):
        huge = huge_page_bytes()
        rng = np.random.default_rng(allocation)
        x = rng.standard_normal(n, np.float32)
        g = rng.standard_normal(n, np.float32)
        out = np.ones_like(x)
        if huge is not None:
            huge = huge_page_bytes() - huge
        value = x if args.op == "forward" else g
        call = lambda: lk._dispatch.kernels.select_contiguous(value, x, SLOPE, out, args.threads)
        for repeat in range(args.repeats):
            best = variant_times(call, route, variants, args.rounds, args.loop_seconds)
            fastest = min(best, key=best.get)
            pages = "?" if huge is None else f"{huge / 2**20:.0f} MiB"
            print(f"{allocation:>10}  {pages:>10}  "
                  + "  ".join(f"{best[v] * 1e3:10.3f}" for v in variants) + f"  {fastest}",
                  flush=True)
            results.append({"allocation": allocation, "repeat": repeat, "huge_page_bytes": huge,
                            "seconds": best, "time": time.time()})
        del x, g, out, value
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "route": route, "log2": args.log2, "results": results},
                      f, indent=1)


if __name__ == "__main__":
    main()
