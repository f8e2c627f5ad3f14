"""Benchmark leaky_kernel against NumPy, PyTorch, numexpr and the machine's roofline.

    python -m pip install ".[bench]"
    python bench/run.py            # sweep + targets, about two minutes on an idle 2-core machine
    python bench/run.py --quick    # a short run, about 20 seconds

Sweeps array sizes, dtypes, forward/backward, allocating/out=/in place and
1/all threads; prints a table of medians and the issue's target ratios
(targets.py); writes results.json and throughput_*.png to bench/results/
(or --output). Timing method: harness.time_interleaved. torch and numexpr
are optional contenders.
"""

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Optional

import harness
import report
import targets
from harness import Cell, TimingSettings


@dataclass(frozen=True)
class Preset:
    log2_sizes: tuple
    # The largest float64 size (log2) in the preset grid; None: no cap.
    float64_max_log2: Optional[int]
    sweep: TimingSettings
    targets: TimingSettings


# Budgets measured on a shared 2-core AMD EPYC VM. Cells beyond the caches
# time one call per loop and get min_rounds rounds; there numexpr's where()
# (~10 ns per element here) and np.where dominate the run time. 2^26 float64
# (512 MiB per array) alone would take about as long as the rest of the
# default run, so the default grid stops float64 at 2^24 (128 MiB); ask for
# it with --sizes 26.
DEFAULT = Preset(
    log2_sizes=(10, 12, 15, 18, 20, 22, 24, 26),
    float64_max_log2=24,
    sweep=TimingSettings(loop_seconds=0.003, min_rounds=5, max_rounds=7, round_budget_seconds=0.15),
    # The targets are the figures quoted in README.md: enough rounds that one
    # disturbed sample on this shared 2-core machine does not move a median.
    targets=TimingSettings(
        loop_seconds=0.003, min_rounds=15, max_rounds=31, round_budget_seconds=1.0
    ),
)
QUICK = Preset(
    log2_sizes=(10, 15, 20),
    float64_max_log2=None,
    sweep=TimingSettings(loop_seconds=0.002, min_rounds=3, max_rounds=3),
    targets=TimingSettings(loop_seconds=0.002, min_rounds=3, max_rounds=3),
)
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def log(message):
    print(message, file=sys.stderr, flush=True)


def thread_count(text):
    return harness.ALL_THREADS if text == "all" else int(text)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: sizes 2^10, 2^15, 2^20 and 3 rounds everywhere",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=int,
        metavar="LOG2",
        help="array sizes as powers of two, e.g. --sizes 10 20 24 (default: %s; "
        "float64 up to 2^%d)" % (" ".join(map(str, DEFAULT.log2_sizes)), DEFAULT.float64_max_log2),
    )
    parser.add_argument("--dtypes", nargs="+", choices=harness.DTYPES, default=harness.DTYPES)
    parser.add_argument("--ops", nargs="+", choices=harness.OPS, default=harness.OPS)
    parser.add_argument("--modes", nargs="+", choices=harness.MODES, default=harness.MODES)
    parser.add_argument(
        "--threads",
        nargs="+",
        type=thread_count,
        metavar="N|all",
        help=f"thread counts (default: 1 all; all = {harness.ALL_THREADS} here)",
    )
    parser.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help="where results.json and the plots go (default: bench/results)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--only-targets", action="store_true", help="measure the targets only")
    which.add_argument("--no-targets", action="store_true", help="skip the targets")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target fails"
    )
    args = parser.parse_args(argv)
    if args.check and args.no_targets:
        parser.error("--check needs the targets; drop --no-targets")
    # dict.fromkeys drops repeats (1 and all coincide on a 1-CPU machine), keeping order.
    args.threads = list(dict.fromkeys(args.threads or [1, harness.ALL_THREADS]))
    args.preset = QUICK if args.quick else DEFAULT
    return args


def sweep_cells(args):
    """The cells to time, smallest first: the preset grid, or exactly --sizes."""
    log2_sizes = args.sizes or args.preset.log2_sizes
    float64_cap = None if args.sizes else args.preset.float64_max_log2
    return [
        Cell(1 << log2_size, dtype, op, mode)
        for log2_size in sorted(log2_sizes)
        for dtype in args.dtypes
        if not (dtype == "float64" and float64_cap is not None and log2_size > float64_cap)
        for op in args.ops
        for mode in args.modes
    ]


def sweep(cells, thread_counts, contenders, settings):
    """A CellResult per cell; all thread counts of a cell are timed together."""
    results, inputs = [], {}
    for number, cell in enumerate(cells, 1):
        if (cell.size, cell.dtype) not in inputs:
            inputs.clear()  # free the previous size's arrays before making the next
            inputs[cell.size, cell.dtype] = harness.random_inputs(cell.size, cell.dtype)
        operands = harness.make_operands(cell, *inputs[cell.size, cell.dtype])
        entries = harness.bind_cell(cell, operands, thread_counts, contenders)
        started = time.perf_counter()
        result = report.CellResult(cell, harness.time_interleaved(entries, settings))
        results.append(result)
        log(
            f"[{number:>3}/{len(cells)}] {cell.label()} {time.perf_counter() - started:5.2f} s  "
            + _progress_summary(result, thread_counts)
        )
    return results


def _progress_summary(result, thread_counts):
    leaky_kernel = harness.CONTENDERS_BY_NAME[harness.LEAKY_KERNEL]
    speeds = (f"{result.gbps(leaky_kernel, t):.1f} GB/s at {t}" for t in thread_counts)
    return "leaky_kernel " + ", ".join(speeds) + " thread(s)"


def print_header(info):
    print(
        f"leaky_kernel {info['leaky_kernel']} (SIMD {info['leaky_kernel_simd']}), "
        f"numpy {info['numpy']}, torch {info['torch']}, numexpr {info['numexpr']}"
    )
    print(
        f"{info['cpu_model']}, {info['nproc']} CPUs, all threads = {harness.ALL_THREADS}, "
        f"load average {info['load_average_at_start']}"
    )


# Above this, other processes share the cores: figures come out slower and noisier.
QUIET_LOAD_AVERAGE = 0.5


def warn_if_loaded(load):
    if load is not None and load[0] > QUIET_LOAD_AVERAGE:
        log(
            f"warning: load average {load[0]:.2f} > {QUIET_LOAD_AVERAGE}: other processes are "
            "running, so times will be slower and noisier than on an idle machine"
        )


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    info = report.machine_info()
    print_header(info)
    warn_if_loaded(info["load_average_at_start"])
    for contender in harness.CONTENDERS:
        if contender.unavailable:
            log(f"skipping {contender.name}: {contender.unavailable}")
    contenders = harness.available_contenders()
    harness.check_contenders(contenders)

    results = []
    if not args.only_targets:
        results = sweep(sweep_cells(args), args.threads, contenders, args.preset.sweep)
        print()
        print(report.format_table(results, args.threads, contenders))

    target_results = []
    if not args.no_targets:
        target_results = targets.run_targets(
            args.preset.targets, progress=lambda m: log(f"target {m}")
        )
        print("\nTargets (ratios of the fastest rounds, interleaved in this process):")
        for target in target_results:
            print("  " + target.line())

    seconds = time.perf_counter() - started
    info["load_average_at_end"] = report.load_average()
    settings = {
        "preset": "quick" if args.quick else "default",
        "sweep": asdict(args.preset.sweep),
        "targets": asdict(args.preset.targets),
        "threads": args.threads,
        "seconds": seconds,
    }
    os.makedirs(args.output, exist_ok=True)
    json_path = os.path.join(args.output, "results.json")
    report.write_json(json_path, info, settings, results, args.threads, contenders, target_results)
    written = [json_path]
    takeaways = []
    if results:
        plots = report.plot_throughput(args.output, results, args.threads, contenders, info)
        written += [path for path, _ in plots]
        takeaways = [f"{os.path.basename(path)}: {line}" for path, line in plots if line]
    print(f"\nwrote {', '.join(written)}")
    for line in takeaways:
        print(line)
    print(f"took {seconds:.0f} s")
    failed = [t.name for t in target_results if t.passed is False]
    if args.check and failed:
        log(f"--check: {len(failed)} target(s) failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
