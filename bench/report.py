"""Reporting for run.py: the results table, machine info, JSON and plots."""

import glob
import importlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

import harness
import leaky_kernel as lk
from leaky_kernel._tuning import cpu_model
from harness import LEAKY_KERNEL, ROOFLINE

MODE_LABELS = {"alloc": "allocating", "out": "out=", "inplace": "in place"}


@dataclass
class CellResult:
    """The timings of one cell: {(contender name, threads): harness.Timing}."""

    cell: harness.Cell
    timings: dict

    def timing(self, contender, threads):
        """The contender's timing at `threads`, or None if it sat this cell out."""
        return self.timings.get((contender.name, threads if contender.threaded else 1))

    def gbps(self, contender, threads):
        return contender.bytes_moved(self.cell) / self.timing(contender, threads).median / 1e9


def format_seconds(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


# ----------------------------------------------------------------- the table


def _sections(results, thread_counts):
    """{(dtype, op, mode, threads): [CellResult by size]}, in sweep order."""
    sections = {}
    for result in results:
        cell = result.cell
        for threads in thread_counts:
            sections.setdefault((cell.dtype, cell.op, cell.mode, threads), []).append(result)
    return sections


def format_table(results, thread_counts, contenders):
    """Median time per call for each cell; leaky_kernel's GB/s; its speed-up
    over every other contender (their time / leaky_kernel's time)."""
    leaky_kernel = harness.CONTENDERS_BY_NAME[LEAKY_KERNEL]
    others = [c for c in contenders if c.name != LEAKY_KERNEL]
    lines = [
        "Median time per call. leaky_kernel: time and GB/s (bytes read + written / time);",
        "others: time and leaky_kernel's speed-up (their time / leaky_kernel's time).",
    ]
    for (dtype, op, mode, threads), section in _sections(results, thread_counts).items():
        present = [c for c in others if any(r.timing(c, threads) is not None for r in section)]
        lines += ["", f"{dtype} {op} {MODE_LABELS[mode]}, threads={threads}"]
        header = f"  {'size':<6} {LEAKY_KERNEL:<20}" + "".join(f"{c.name:<20}" for c in present)
        lines.append(header.rstrip())
        for result in section:
            base = result.timing(leaky_kernel, threads).median
            row = f"  {'2^' + str(result.cell.log2_size):<6} "
            row += f"{format_seconds(base):>9} {result.gbps(leaky_kernel, threads):5.1f} GB/s "
            for contender in present:
                timing = result.timing(contender, threads)
                text = (
                    "-"
                    if timing is None
                    else (f"{format_seconds(timing.median):>9} {timing.median / base:6.2f}x")
                )
                row += f"{text:<20}"
            lines.append(row.rstrip())
    return "\n".join(lines)


# ------------------------------------------------------------- machine info


def _simd_level():
    """The instruction set of the kernels in use, from whichever module reports it.

    Builds with runtime dispatch choose a kernel module in _dispatch; older
    builds have one _kernels module (a stale copy of which may linger).
    """
    for module_name in ("leaky_kernel._dispatch", "leaky_kernel._kernels"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        module = getattr(module, "kernels", module)  # _dispatch.kernels: the chosen build
        if hasattr(module, "SIMD"):
            return module.SIMD
    return None


def load_average():
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def _version(module):
    return None if module is None else module.__version__


def machine_info():
    return {
        "cpu_model": cpu_model(),
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": _version(harness.torch),
        "torch_threads_at_start": (
            None if harness.torch is None else harness.torch.get_num_threads()
        ),
        "numexpr": _version(harness.numexpr),
        "leaky_kernel": lk.__version__,
        "leaky_kernel_simd": _simd_level(),
        "leaky_kernel_openmp": lk.openmp_enabled(),
        "leaky_kernel_all_threads": harness.ALL_THREADS,
        # Each tuning choice in force, and why (leaky_kernel._tuning).
        "leaky_kernel_tuning": {name: list(pair) for name, pair in lk.get_tuning().items()},
        # The machine may be shared: other users' load skews every number.
        "load_average_at_start": load_average(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# --------------------------------------------------------------- JSON, plot


def _cell_json(result, threads, contenders):
    cell = result.cell
    entries = {}
    for contender in contenders:
        timing = result.timing(contender, threads)
        if timing is None:
            continue
        entries[contender.name] = {
            "threads": threads if contender.threaded else 1,
            "median_s": timing.median,
            "gbps": result.gbps(contender, threads),
            "bytes_per_call": contender.bytes_moved(cell),
            "calls_per_loop": timing.calls_per_loop,
            "samples_s": timing.samples,
        }
    base = entries[LEAKY_KERNEL]["median_s"]
    for entry in entries.values():
        entry["leaky_kernel_speedup"] = entry["median_s"] / base
    return {
        **asdict(cell),
        "log2_size": cell.log2_size,
        "threads": threads,
        "op_bytes": cell.op_bytes,
        "results": entries,
    }


def write_json(path, info, settings, results, thread_counts, contenders, targets):
    document = {
        "machine": info,
        "settings": settings,
        "slope": harness.SLOPE,
        "bytes_counted": harness.BYTES_COUNTED,
        "cells": [
            _cell_json(result, threads, contenders)
            for result in results
            for threads in thread_counts
        ],
        "targets": [target.to_json() for target in targets],
    }
    with open(path, "w") as f:
        json.dump(document, f, indent=1)


def last_level_cache_bytes():
    """The largest CPU cache Linux reports for CPU 0, in bytes, or None."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    sizes = []
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        with open(path) as f:
            text = f.read().strip()
        if text[-1:] in units and text[:-1].isdigit():
            sizes.append(int(text[:-1]) * units[text[-1]])
        elif text.isdigit():
            sizes.append(int(text))
    return max(sizes, default=None)


def out_of_cache(cell, cache_bytes):
    """Whether the cell's operands are far beyond the caches: twice the largest.

    Only there is the roofline a bound: in cache, ordinary stores beat the
    streaming copies it is made of. Unknown caches: nowhere.
    """
    return cache_bytes is not None and cell.op_bytes >= 2 * cache_bytes


def _others(contenders):
    return [c for c in contenders if c.name != LEAKY_KERNEL and not c.baseline]


def takeaway(panels, threads, contenders, cache_bytes):
    """One line on a plot's cells: leaky_kernel against the fastest other
    library in each cell, and against the roofline out of cache."""
    leaky_kernel = harness.CONTENDERS_BY_NAME[LEAKY_KERNEL]
    roofline = harness.CONTENDERS_BY_NAME[ROOFLINE]
    against_others, against_roofline = [], []
    for panel in panels:
        for result in panel:
            base = result.timing(leaky_kernel, threads).median
            times = [result.timing(c, threads) for c in _others(contenders)]
            times = [t.median for t in times if t is not None]
            if times:
                against_others.append(min(times) / base)
            line = result.timing(roofline, threads)
            if line is not None and out_of_cache(result.cell, cache_bytes):
                against_roofline.append(line.median / base)
    parts = []
    if against_others:
        parts.append(
            f"the fastest other library takes {min(against_others):.2f}-"
            f"{max(against_others):.2f}x leaky_kernel's time (above 1: leaky_kernel is faster)"
        )
    if against_roofline:
        parts.append(
            f"out of cache leaky_kernel reaches {min(against_roofline):.2f}-"
            f"{max(against_roofline):.2f} of the roofline's speed"
        )
    return "; ".join(parts).capitalize() + "." if parts else ""


def _provenance(info):
    """Where and when the figures were measured, for a plot's title."""
    versions = ", ".join(
        f"{name} {info[name]}" for name in ("numpy", "torch", "numexpr") if info.get(name)
    )
    load = info.get("load_average_at_start")
    load_text = "?" if load is None else f"{load[0]:.2f}"
    return (
        f"leaky_kernel {info['leaky_kernel']} ({info['leaky_kernel_simd']}), {versions}\n"
        f"{info['cpu_model']}, {info['nproc']} CPUs; {info['started_at'][:10]}; "
        f"load average {load_text}"
    )


def plot_throughput(directory, results, thread_counts, contenders, info):
    """One PNG per (mode, threads): GB/s against log2 size, a subplot per
    (dtype, op); the title names the machine, versions and date. Returns
    [(path, takeaway line)]."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    cache_bytes = last_level_cache_bytes()
    grids = {}  # {(mode, threads): {(dtype, op): [CellResult by size]}}
    for (dtype, op, mode, threads), section in _sections(results, thread_counts).items():
        grids.setdefault((mode, threads), {})[dtype, op] = section
    written = []
    for (mode, threads), grid in grids.items():
        rows = [dtype for dtype in harness.DTYPES if any(k[0] == dtype for k in grid)]
        cols = [op for op in harness.OPS if any(k[1] == op for k in grid)]
        figure, axes = plt.subplots(
            len(rows), len(cols), figsize=(6 * len(cols), 4 * len(rows) + 1.2), squeeze=False
        )
        for (dtype, op), panel in grid.items():
            axis = axes[rows.index(dtype)][cols.index(op)]
            _plot_panel(axis, panel, threads, contenders, cache_bytes)
            axis.set_title(f"{dtype} {op}, {MODE_LABELS[mode]}, threads={threads}")
        line = takeaway(grid.values(), threads, contenders, cache_bytes)
        figure.suptitle(_provenance(info), fontsize="medium")
        figure.text(0.5, 0.01, line, ha="center", va="bottom", fontsize="medium", wrap=True)
        figure.tight_layout(rect=(0, 0.05, 1, 1))
        path = os.path.join(directory, f"throughput_{mode}_threads{threads}.png")
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append((path, line))
    return written


def _plot_panel(axis, panel, threads, contenders, cache_bytes):
    """Each contender's median GB/s, with a band from its slowest to its
    fastest round; the roofline only out of cache."""
    for contender in contenders:
        cells = [r for r in panel if r.timing(contender, threads) is not None]
        if contender.name == ROOFLINE:
            cells = [r for r in cells if out_of_cache(r.cell, cache_bytes)]
        if not cells:
            continue
        sizes = [r.cell.log2_size for r in cells]
        medians = [r.gbps(contender, threads) for r in cells]
        moved = [contender.bytes_moved(r.cell) / 1e9 for r in cells]
        timings = [r.timing(contender, threads) for r in cells]
        slowest = [b / max(t.samples) for b, t in zip(moved, timings)]
        fastest = [b / min(t.samples) for b, t in zip(moved, timings)]
        if contender.name == ROOFLINE:
            color, style, label = "k", "--x", f"roofline ({threads} threads, out of cache)"
        else:
            # One colour per contender in every panel and plot.
            color = f"C{harness.CONTENDERS.index(contender)}"
            style, label = "-o", contender.name
        axis.plot(sizes, medians, style, color=color, label=label)
        axis.fill_between(sizes, slowest, fastest, color=color, alpha=0.2, linewidth=0)
    axis.legend(fontsize="small", title="median; band: slowest to fastest round",
                title_fontsize="x-small")
    axis.set_xticks([r.cell.log2_size for r in panel])
    axis.set_xlabel("log2(elements)")
    axis.set_ylabel("GB/s (bytes read + written / time)")
    axis.grid(True, alpha=0.3)
