"""The issue's performance targets, each measured side by side in this process.

Every target times its calls with harness.time_interleaved (warmed up,
round-robin, medians) and reports the measured ratio of medians against the
threshold; nothing is tuned to pass. Standalone: ``python bench/run.py --only-targets``.

64 MiB means 2^24 float32 or 2^23 float64 elements per array. Calls use all
threads (harness.ALL_THREADS) unless the target says one.
"""

from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Optional

import numpy as np

import harness
from harness import ALL_THREADS, COPY, LEAKY_KERNEL, SLOPE, Cell, Entry, Operands

SIXTY_FOUR_MIB = 64 << 20


@dataclass
class TargetResult:
    target: int  # the numbering
    name: str
    numerator: str
    denominator: str
    comparison: str  # "<=" or ">="
    threshold: float
    medians_s: dict  # median seconds per call, by what was timed
    ratio: Optional[float] = field(init=False, default=None)  # numerator / denominator
    skipped: Optional[str] = field(init=False, default=None)  # why there is no ratio

    def __post_init__(self):
        missing = [k for k in (self.numerator, self.denominator) if k not in self.medians_s]
        if missing:
            self.skipped = f"{' and '.join(missing)} not available"
        else:
            self.ratio = self.medians_s[self.numerator] / self.medians_s[self.denominator]

    @property
    def passed(self):
        if self.ratio is None:
            return None
        if self.comparison == "<=":
            return self.ratio <= self.threshold
        return self.ratio >= self.threshold

    def line(self):
        status = {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]
        what = f"{self.target}. {self.name}: time {self.numerator} / {self.denominator}"
        target = f"(target {self.comparison} {self.threshold:g})"
        if self.ratio is None:
            return f"{status}  {what} {target}: {self.skipped}"
        return f"{status}  {what} = {self.ratio:.2f} {target}"

    def to_json(self):
        return {**asdict(self), "passed": self.passed}


def _contender_entries(cell, operands, names, threads):
    """{contender name: Entry} for the available contenders in `names`."""
    contenders = [c for c in harness.available_contenders() if c.name in names]
    entries = harness.bind_cell(cell, operands, [threads], contenders)
    return {name: entry for (name, _), entry in entries.items()}


def _time_contenders(cell, names, settings, threads=ALL_THREADS):
    """{contender name: median seconds per call} on fresh random data for `cell`."""
    operands = harness.make_operands(cell, *harness.random_inputs(cell.size, cell.dtype))
    return harness.medians(_contender_entries(cell, operands, names, threads), settings)


def sixty_four_mib(settings):
    """Targets 1-3: out= and allocating calls on 64 MiB, both dtypes and ops."""
    results = []
    for dtype in harness.DTYPES:
        size = SIXTY_FOUR_MIB // np.dtype(dtype).itemsize
        for op in harness.OPS:
            name = f"64 MiB {dtype} {op}"
            out = _time_contenders(
                Cell(size, dtype, op, "out"), {LEAKY_KERNEL, "torch", COPY}, settings
            )
            if op == "forward":
                results += [
                    TargetResult(1, f"{name} out=", LEAKY_KERNEL, "torch", "<=", 0.6, out),
                    TargetResult(1, f"{name} out=", LEAKY_KERNEL, COPY, "<=", 1.10, out),
                ]
            else:
                results.append(
                    TargetResult(1, f"{name} out=", "torch", LEAKY_KERNEL, ">=", 1.25, out)
                )
            alloc = _time_contenders(
                Cell(size, dtype, op, "alloc"), {LEAKY_KERNEL, "torch", "np.where"}, settings
            )
            results += [
                TargetResult(2, f"{name} allocating", "torch", LEAKY_KERNEL, ">=", 2, alloc),
                TargetResult(3, f"{name} allocating", "np.where", LEAKY_KERNEL, ">=", 10, alloc),
            ]
    return results


def in_cache_out(settings):
    """Target 4: one thread, 2^15 float32, out=: within 10% of a copy."""
    medians = _time_contenders(
        Cell(1 << 15, "float32", "forward", "out"), {LEAKY_KERNEL, COPY}, settings, threads=1
    )
    return [
        TargetResult(4, "2^15 float32 out= one thread", LEAKY_KERNEL, COPY, "<=", 1.10, medians)
    ]


def small_call(settings):
    """Target 5: call overhead on 1000 float32 elements, allocating."""
    cell = Cell(1000, "float32", "forward", "alloc")
    operands = harness.make_operands(cell, *harness.random_inputs(cell.size, cell.dtype))
    entries = _contender_entries(cell, operands, {LEAKY_KERNEL, "torch"}, ALL_THREADS)
    x, a = operands.value, operands.value.dtype.type(SLOPE)
    entries["np.multiply"] = Entry(partial(np.multiply, x, a))
    medians = harness.medians(entries, settings)
    return [
        TargetResult(5, "1000 float32 allocating", LEAKY_KERNEL, "np.multiply", "<=", 1.0, medians),
        TargetResult(5, "1000 float32 allocating", LEAKY_KERNEL, "torch", "<=", 0.7, medians),
    ]


def strided_view(settings):
    """Target 6: m[:, ::2] of a 4096x4096 float32 array vs the same data contiguous."""
    strided = harness.random_array((4096, 4096), "float32")[:, ::2]
    contiguous = np.ascontiguousarray(strided)
    leaky_kernel = harness.CONTENDERS_BY_NAME[LEAKY_KERNEL]
    results = []
    for mode in ("alloc", "out"):
        cell = Cell(contiguous.size, "float32", "forward", mode)
        out = np.empty_like(contiguous)
        dest = out if mode == "out" else None
        entries = {
            name: Entry(leaky_kernel.bind(cell, Operands(x, x, out, dest), ALL_THREADS))
            for name, x in (("strided", strided), ("contiguous", contiguous))
        }
        into = "allocating" if mode == "alloc" else "out= a contiguous array"
        results.append(
            TargetResult(
                6,
                f"4096x4096 float32 [:, ::2], {into}",
                "strided",
                "contiguous",
                "<=",
                2,
                harness.medians(entries, settings),
            )
        )
    return results


def python_threads(settings, loop_seconds=0.05):
    """Target 7: two Python threads, num_threads=1 each, in-cache float32 out=.

    Two sizes: 2^15 (in L2; each call is a few microseconds, so handing the
    GIL between the threads weighs on it) and 2^17 (in L3). Both variants run
    their calls in new worker threads, so thread start-up costs both alike.
    Each thread has its own input and output. Loops last 50 ms: with 10 ms
    loops, consecutive runs read anywhere from 0.64 to 1.87 (NOTES.md).
    """
    results = []
    for log2_size in (15, 17):
        cell = Cell(1 << log2_size, "float32", "forward", "out")
        leaky_kernel = harness.CONTENDERS_BY_NAME[LEAKY_KERNEL]
        calls = []
        for stream in range(2):
            x = harness.random_array(cell.size, cell.dtype, stream)
            out = np.empty_like(x)
            calls.append(leaky_kernel.bind(cell, Operands(x, x, out, out), 1))
        per_thread, _ = harness.calibrate(calls[0], loop_seconds)
        entries = {
            "1 thread": Entry(partial(harness.run_in_threads, calls[:1], per_thread)),
            "2 threads": Entry(partial(harness.run_in_threads, calls, per_thread)),
        }
        medians = harness.medians(entries, settings)
        # Per-call time: the two-thread run makes twice the calls. The ratio of
        # per-call times is then the ratio of aggregate throughputs.
        per_call = {
            "1 thread": medians["1 thread"] / per_thread,
            "2 threads": medians["2 threads"] / (2 * per_thread),
        }
        name = f"2^{log2_size} float32 out=, num_threads=1 in each Python thread, per-call"
        results.append(TargetResult(7, name, "1 thread", "2 threads", ">=", 1.6, per_call))
    return results


ALL_TARGETS = (sixty_four_mib, in_cache_out, small_call, strided_view, python_threads)


def run_targets(settings, progress=None):
    """Every target's results: targets 1-3 per dtype and op, then 4-7."""
    results = []
    for measure in ALL_TARGETS:
        if progress is not None:
            progress(measure.__doc__.splitlines()[0])
        results += measure(settings)
    return results
