"""python -m leaky_kernel: the build, the tuning and a self-check on this machine.

    python -m leaky_kernel          print the configuration, then check every
                                    kernel path against the oracle (exit 1 on
                                    any mismatch)
    python -m leaky_kernel tune     measure the tuning choices on this machine,
                                    check them and store them as wisdom
    python -m leaky_kernel tune --verify
                                    time the choices in force against every
                                    variant again and print the regret table
    python -m leaky_kernel --version
"""
import argparse
import os
import sys

import numpy as np

import leaky_kernel as lk
from leaky_kernel import _tuning, reference
from leaky_kernel._dispatch import LEVELS, kernels, load
from leaky_kernel._testing import bits_equal, kernel_choices, random_operand
from leaky_kernel._threads import THREAD_CAP

KERNEL_NAMES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

# Small arrays split into several spans, so that threads share the work.
SPLIT = {"min_thread_elements": 1024}
# The public API is checked with this machine's tuning, on arrays of a fixed
# size: the tuning may say "never parallel" with any number, which must not
# size an allocation. About 2^17 elements, which the default tuning splits
# over two threads.
API_CHECK_SHAPE = (301, (1 << 17) // 300)


def store_variants():
    """{name: kernel choices} forcing each store path this build has."""
    variants = {"ordinary stores": _tuning.STREAM_NEVER}
    if kernels.HAVE_STREAM:
        for kind in _tuning.PREFETCH_KINDS:
            variants[f"streaming stores, prefetch {kind}"] = {
                **_tuning.STREAM_ALWAYS, "prefetch": kind, "prefetch_bytes": 1024,
            }
        variants["streaming stores, four pages at once"] = _tuning.STREAM_PAGES
    return variants


def check_kernels(module, rng):
    """Every kernel entry point of one level's module against the oracle, on
    1 and 2 threads; returns the cases that differ, as "op dtype path ..."."""
    failures = []
    for dtype, name in KERNEL_NAMES.items():
        x = random_operand(rng, (7, 1571), dtype)
        g = random_operand(rng, x.shape, dtype)
        for threads in (1, 2):
            for slope in (0.01, -0.5, 3.0):

                def check(op, path, got, want):
                    if not bits_equal(got, want):
                        failures.append(f"{op} {dtype.name} {path} slope={slope} threads={threads}")

                for op, value in (("forward", x), ("backward", g)):
                    want = (reference.leaky_relu(x, slope) if op == "forward"
                            else reference.leaky_relu_backward(g, x, slope))
                    got = module.select_contiguous(value, x, slope, None, threads)
                    check(op, "contiguous allocating", got, want)
                    out = np.empty_like(x)
                    module.select_contiguous(value, x, slope, out, threads)
                    check(op, "contiguous out=", out, want)
                    for step in (2, 3):
                        out = np.empty((x.shape[0], -(-x.shape[1] // step)), dtype)
                        module.leaky_select[name](
                            value[:, ::step], x[:, ::step], out, slope, threads, True
                        )
                        check(op, f"strided step {step}", out, want[:, ::step])
                flat_x, flat_g = x.reshape(-1), g.reshape(-1)
                y = np.empty_like(flat_x)
                mask = np.empty((flat_x.size + 7) // 8, np.uint8)
                module.forward_mask[name](flat_x, y, mask, slope, threads, True)
                want_y, want_mask = reference.leaky_relu_forward_mask(flat_x, slope)
                check("forward", "to mask", y, want_y)
                check("forward", "mask bits", mask, want_mask)
                module.backward_mask[name](flat_g, want_mask, y, slope, threads, False)
                check("backward", "from mask", y,
                      reference.leaky_relu_backward(flat_g, flat_x, slope))
                check_ufunc_loops(module, x, g, slope, threads, check)
    return failures


def check_ufunc_loops(module, x, g, slope, threads, check):
    """The ufunc loops: one slope per loop (the kernel, contiguous and
    strided) and a slope per element (contiguous and strided)."""
    forward, backward = module.leaky_relu_ufunc, module.leaky_relu_backward_ufunc
    per_row = np.linspace(-1.0, 1.0, x.shape[0]).reshape(-1, 1)
    per_element = np.resize(np.array([slope, 0.25, -2.0]), x.shape)
    previous = module.set_ufunc_call(threads, True)
    try:
        for slopes, path in ((slope, "one slope"), (per_row, "slope per row"),
                             (per_element, "slope per element")):
            compute_slopes = np.asarray(slopes, x.dtype)
            for view, layout in ((lambda a: a, "contiguous"), (lambda a: a[:, ::2], "strided")):
                xv, gv = view(x), view(g)
                s = compute_slopes if compute_slopes.ndim < 2 else view(compute_slopes)
                check("forward", f"ufunc {path} {layout}", forward(xv, s),
                      reference.leaky_relu(xv, s))
                check("backward", f"ufunc {path} {layout}", backward(gv, xv, s),
                      reference.leaky_relu_backward(gv, xv, s))
    finally:
        module.restore_ufunc_call(previous)


def check_api(rng):
    """The public functions over dtypes, layouts, slopes and thread counts."""
    failures = []
    layouts = {
        "C": lambda a: a,
        "F": np.asfortranarray,
        "transposed": lambda a: a.T,
        "strided": lambda a: a[::2, ::-3],
    }
    for dtype in (np.float16, np.float32, np.float64):
        base_x = random_operand(rng, API_CHECK_SHAPE, dtype)
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


def self_check(seed=0, report=print):
    """Check every kernel path this machine has against the oracle: each
    instruction-set level it runs, each store and prefetch variant, serial
    and parallel, select and mask kernels; then the public API. Names each
    path as it is checked; returns the failures."""
    rng = np.random.default_rng(seed)
    failures = []
    threads = "1 and 2 threads" if lk.openmp_enabled() else "1 thread (serial build)"
    for level in LEVELS:
        module = load(level)
        for variant, choices in store_variants().items():
            with kernel_choices(module, **choices, **SPLIT):
                found = check_kernels(module, rng)
            status = "ok" if not found else f"{len(found)} mismatches"
            report(f"  {level:<8} {variant:<36} select, strided, mask, ufunc; {threads}: {status}")
            failures += [f"{case} ({level}, {variant})" for case in found]
    found = check_api(rng)
    report(f"  public API with this machine's tuning, 4 layouts, 3 dtypes: "
           f"{'ok' if not found else f'{len(found)} mismatches'}")
    return failures + found


def serial_below():
    """The size below which calls run serially, in words."""
    min_thread_elements = lk.get_tuning()["min_thread_elements"][0]
    if min_thread_elements == _tuning.NEVER:
        return "serial at every size"
    return f"serial below {2 * min_thread_elements} elements"


def wisdom_status():
    """Where the wisdom file is, and whether this process uses it."""
    path = _tuning.wisdom_path()
    if os.environ.get(_tuning.ENVIRONMENT_VARIABLE, "").strip() == "default":
        state = f"ignored: {_tuning.ENVIRONMENT_VARIABLE}=default"
    elif any(why.startswith("measured by") for why in _tuning.reasons()):
        state = "this machine's entry in use"
    elif os.path.exists(path):
        state = "present; no entry for this machine in use"
    else:
        state = "none yet: `python -m leaky_kernel tune` writes it"
    return f"{path} ({state})"


def print_configuration():
    print(f"leaky_kernel {lk.__version__}")
    print(f"  OpenMP:  {'enabled' if lk.openmp_enabled() else 'disabled (serial build)'}")
    print(f"  threads: {lk.get_num_threads()} ({serial_below()}; at most {THREAD_CAP})")
    print(f"  SIMD:    {kernels.SIMD} (this CPU runs: {', '.join(LEVELS)})")
    print(f"  CPU:     {_tuning.cpu_model()}")
    print(f"  numpy:   {np.__version__}")
    print(f"  wisdom:  {wisdom_status()}")
    print("  tuning:")
    print(describe_tuning())


def mib(nbytes):
    """Bytes as people read them: '1.5 MiB', '512 bytes', or 'never'."""
    if nbytes >= _tuning.NEVER:
        return "never"
    if nbytes < _tuning.MIB:
        return f"{nbytes} bytes"
    return f"{nbytes / _tuning.MIB:.4g} MiB"


def describe_plan(bands):
    return "; ".join(f"{variant} from {mib(start)} moved" if start else variant
                     for start, variant in bands)


def describe_tuning():
    tuning = lk.get_tuning()
    plans, reasons = tuning["plans"]
    lines = []
    for name in _tuning.ROUTES:
        lines.append(f"    {name}: {describe_plan(plans[name])}")
        lines.append(f"        ({reasons[name]})")
    lines.append(f"    threads: {serial_below()} ({tuning['min_thread_elements'][1]})")
    return "\n".join(lines)


def print_regret(table):
    """A regret table: {route: {bytes moved: plan time / fastest variant's}}."""
    for name, regrets in table.items():
        worst = max(regrets.values())
        cells = ", ".join(f"{mib(int(b))} {r:.2f}" for b, r in sorted(regrets.items(),
                                                                      key=lambda i: int(i[0])))
        print(f"  {name}: worst {worst:.2f}; by bytes moved: {cells}")


def check():
    print_configuration()
    print("self-check:")
    with _tuning.fitting_paused():
        failures = self_check()
    if failures:
        print(f"self-check FAILED: {len(failures)} mismatches with the oracle")
        for failure in failures:
            print("  " + failure)
        return 1
    print("self-check passed: every kernel path matches the oracle bit for bit")
    return 0


def tune(verify):
    print(f"{'verifying' if verify else 'tuning'} leaky_kernel {lk.__version__} for: "
          f"{_tuning.machine_key()}")
    try:
        if verify:
            table = _tuning.verify(progress=lambda line: print("  measuring " + line))
            print("regret (time with the plans in force / the fastest variant's):")
            print_regret(table)
            return 0
        entry = lk.tune(progress=lambda line: print("  measuring " + line))
    except (_tuning.MachineBusy, OSError) as exc:
        print(f"nothing stored: {exc}", file=sys.stderr)
        return 1
    print(f"wisdom written to {_tuning.wisdom_path()}")
    print(describe_tuning())
    print("regret (time with the plans / the fastest variant's), as measured:")
    print_regret(entry["regret"])
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m leaky_kernel",
        description="Print leaky_kernel's configuration and check every kernel path on "
        "this machine against the NumPy oracle (exit 1 on any mismatch).",
    )
    parser.add_argument("--version", action="version", version=f"leaky_kernel {lk.__version__}")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("check", help="the default: configuration and self-check")
    tune_parser = commands.add_parser(
        "tune",
        help=f"measure the tuning choices on this machine (several minutes, about "
        f"{_tuning.TUNE_MEMORY_MIB} MiB) and store them as wisdom in the user's cache directory",
    )
    tune_parser.add_argument("--verify", action="store_true",
                             help="time the plans in force against every variant again and "
                             "print the regret table; store nothing")
    arguments = parser.parse_args(argv)
    return tune(arguments.verify) if arguments.command == "tune" else check()


if __name__ == "__main__":
    sys.exit(main())
