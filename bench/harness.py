"""Shared benchmark machinery: cells, operands, contenders and interleaved timing.

Used by run.py (the sweep), targets.py (the issue's target ratios) and the
pytest-benchmark suite, so every number comes from the same call forms.

Vocabulary
----------
cell       one (size, dtype, op, mode) point of the sweep, timed at one or
           more thread counts.
op         "forward" (y = x where x > 0 else a*x) or "backward"
           (dx = g where x > 0 else a*g).
mode       "alloc" (the call returns a new array), "out" (writes into a
           separate preallocated array) or "inplace" (overwrites its value
           operand: x forward, grad_output backward).
contender  one implementation of an op, bound to a cell's operands and a
           thread count as a zero-argument callable.
entry      (contender name, threads): one timed callable. Single-threaded
           contenders (NumPy, the copy) have one entry per cell, with
           threads=1, shared by every thread count's comparison.

Every op is the select ``value where sign > 0 else slope * value``: forward is
(value=x, sign=x), backward is (value=grad_output, sign=x).

Bytes counted for GB/s: see BYTES_COUNTED.
"""

import gc
import statistics
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Callable, Optional

import numpy as np

import leaky_kernel as lk

try:
    import torch
    import torch.nn.functional as torch_functional
except ImportError:  # optional contender
    torch = None
try:
    import numexpr
except ImportError:  # optional contender
    numexpr = None

SLOPE = 0.01
BYTES_COUNTED = (
    "GB/s = bytes read + bytes written per call / median time per call, counting "
    "the bytes the op must move at least (no allocation or write-allocate traffic): "
    "forward reads n items and writes n, backward reads 2n and writes n. The "
    "roofline moves the same bytes the machine's fastest way on the same threads: "
    "forward, the fastest of glibc memcpy and streaming-store copies (with no, t0 or "
    "nta prefetch, or by pages), each split into one span per thread; backward, the "
    "fastest of such 2-in, 1-out loops."
)
SEED = 20240611
OPS = ("forward", "backward")
MODES = ("alloc", "out", "inplace")
DTYPES = ("float32", "float64")

# The thread count "all threads" means, read before anything changes OpenMP's
# default: torch.set_num_threads calls omp_set_num_threads, and torch and
# leaky_kernel share one libgomp, so it changes get_num_threads() too. Every
# leaky_kernel call here therefore passes num_threads explicitly.
ALL_THREADS = lk.get_num_threads()


@dataclass(frozen=True)
class Cell:
    size: int
    dtype: str
    op: str
    mode: str

    @property
    def log2_size(self):
        return self.size.bit_length() - 1

    @property
    def itemsize(self):
        return np.dtype(self.dtype).itemsize

    @property
    def op_bytes(self):
        """Bytes the op reads plus writes: forward 2n items, backward 3n."""
        arrays = 2 if self.op == "forward" else 3
        return arrays * self.size * self.itemsize

    def label(self):
        return f"2^{self.log2_size:<2} {self.dtype} {self.op:<8} {self.mode:<7}"


# Drawing 2 x 2^26 float64 normals takes seconds here, so larger arrays repeat
# one block. A period of 2^20 elements is far beyond what branch predictors or
# prefetchers could exploit.
RANDOM_BLOCK = 1 << 20


@lru_cache(maxsize=None)
def _random_block(dtype, stream):
    rng = np.random.default_rng([SEED, stream])
    block = rng.standard_normal(RANDOM_BLOCK, dtype=np.dtype(dtype))
    block.flags.writeable = False  # shared by every caller
    return block


def random_array(shape, dtype, stream=0):
    """Mixed-sign standard normal data (no zeros), fixed seed, a new array."""
    return np.resize(_random_block(dtype, stream), shape)


def random_inputs(size, dtype):
    """(x, grad_output) of `size` elements, independent of each other."""
    return random_array(size, dtype, stream=0), random_array(size, dtype, stream=1)


@dataclass
class Operands:
    """The arrays one cell's calls use.

    value, sign: the select's operands (the same array for forward).
    out: the destination for "out" mode and for the roofline.
    dest: where the result goes: None (allocate), out, or value (in place).
    """

    value: np.ndarray
    sign: np.ndarray
    out: Optional[np.ndarray]
    dest: Optional[np.ndarray]


def make_operands(cell, x, grad):
    """Operands for `cell` from base data that no call modifies.

    In-place modes work on a private copy of the value operand; every call
    transforms it further (see time_interleaved).
    """
    value = x if cell.op == "forward" else grad
    if cell.mode == "inplace":
        value = value.copy()
    sign = value if cell.op == "forward" else x
    out = None if cell.mode == "alloc" else np.empty_like(value)
    dest = {"alloc": None, "out": out, "inplace": value}[cell.mode]
    return Operands(value, sign, out, dest)


def expected_result(operands):
    """np.where oracle, with the slope rounded to the dtype as every contender does."""
    value, a = operands.value, operands.value.dtype.type(SLOPE)
    return np.where(operands.sign > 0, value, a * value)


# ---------------------------------------------------------------- contenders


ALL_FORMS = frozenset((op, mode) for op in OPS for mode in MODES)


@dataclass(frozen=True)
class Contender:
    """One implementation; bind(cell, operands, threads) returns its callable.

    forms: the (op, mode) pairs it implements; it sits other cells out (e.g.
    np.where has no out=).
    threaded: it takes a thread count (leaky_kernel per call; torch and
    numexpr library-wide through set_threads, applied before each timed loop).
    """

    name: str
    bind: Callable[[Cell, Operands, int], Callable[[], object]]
    forms: frozenset = ALL_FORMS
    threaded: bool = False
    set_threads: Optional[Callable[[int], object]] = None
    baseline: bool = False  # a reference (the roofline), not an implementation of the op
    unavailable: Optional[str] = None  # why it cannot run here

    def bytes_moved(self, cell):
        return cell.op_bytes

    def supports(self, cell):
        return (cell.op, cell.mode) in self.forms

    def thread_counts(self, requested):
        return tuple(requested) if self.threaded else (1,)

    def use_threads(self, threads):
        """Apply a library-wide thread count, if this library has one."""
        if self.set_threads is not None:
            self.set_threads(threads)


def _bind_leaky_kernel(cell, ops, threads):
    if cell.op == "forward":
        return partial(lk.leaky_relu, ops.value, SLOPE, out=ops.dest, num_threads=threads)
    return partial(
        lk.leaky_relu_backward, ops.value, ops.sign, SLOPE, out=ops.dest, num_threads=threads
    )


def _bind_numpy_where(cell, ops, threads):
    value, sign, a = ops.value, ops.sign, ops.value.dtype.type(SLOPE)
    return lambda: np.where(sign > 0, value, a * value)


def _bind_numpy_maximum(cell, ops, threads):
    x, a, dest = ops.value, ops.value.dtype.type(SLOPE), ops.dest
    return lambda: np.maximum(x, a * x, out=dest)


def _bind_torch(cell, ops, threads):
    # torch.from_numpy shares memory, so torch reads and writes the same buffers.
    value, sign = torch.from_numpy(ops.value), torch.from_numpy(ops.sign)
    dest = None if ops.dest is None else torch.from_numpy(ops.dest)
    if cell.op == "forward":
        if cell.mode == "alloc":
            return partial(torch_functional.leaky_relu, value, SLOPE)
        if cell.mode == "inplace":
            return partial(torch_functional.leaky_relu_, value, SLOPE)
        return partial(torch._C._nn.leaky_relu, value, SLOPE, out=dest)
    # aten::leaky_relu_backward(grad_output, self, negative_slope, self_is_result);
    # its out= overload, .grad_input, names the destination grad_input.
    backward = torch.ops.aten.leaky_relu_backward
    if cell.mode == "alloc":
        return partial(backward.default, value, sign, SLOPE, False)
    return partial(backward.grad_input, value, sign, SLOPE, False, grad_input=dest)


def _bind_numexpr(cell, ops, threads):
    # The slope as a dtype scalar: a Python float makes numexpr compute
    # float32 data in float64.
    a = ops.value.dtype.type(SLOPE)
    if cell.op == "forward":
        expression, names = "where(x > 0, x, a * x)", {"x": ops.value, "a": a}
    else:
        expression, names = "where(x > 0, g, a * g)", {"x": ops.sign, "g": ops.value, "a": a}
    return partial(numexpr.evaluate, expression, local_dict=names, out=ops.dest)


def roofline_calls(cell, ops, threads):
    """{how: call} moving a cell's bytes the machine's own ways (kernels.roofline)."""
    kernels = lk._dispatch.kernels
    as_float32 = [a.reshape(-1).view(np.float32) for a in (ops.value, ops.sign, ops.out)]
    stream = "stream copy" if cell.op == "forward" else "stream 2-in-1-out"
    calls = {}
    if cell.op == "forward":  # memcpy moves one input: the backward reads two
        calls["memcpy"] = partial(kernels.roofline, *as_float32, "memcpy", threads)
    if kernels.HAVE_STREAM:
        for prefetch in kernels.PREFETCH_KINDS:
            calls[f"{stream}, prefetch {prefetch}"] = partial(
                kernels.roofline, *as_float32, stream, threads, prefetch)
        calls[f"{stream}, pages"] = partial(kernels.roofline, *as_float32, f"{stream}, pages",
                                            threads)
    return calls


def _bind_roofline(cell, ops, threads):
    # The faster way, decided by the fastest of 5 interleaved rounds of each.
    calls = roofline_calls(cell, ops, threads)
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(5):
        for how, call in calls.items():
            best[how] = min(best[how], time_loop(call, 1))
    return calls[min(best, key=best.get)]


def _optional(module, name):
    """Contender keywords for a library that may be missing."""
    if module is None:
        return {"unavailable": f"{name} is not importable"}
    return {"threaded": True, "set_threads": module.set_num_threads}


LEAKY_KERNEL = "leaky_kernel"
ROOFLINE = "roofline"
CONTENDERS = (
    Contender(LEAKY_KERNEL, _bind_leaky_kernel, threaded=True),
    # np.where has no out=.
    Contender("np.where", _bind_numpy_where, forms=frozenset((op, "alloc") for op in OPS)),
    # max(x, a*x) is Leaky ReLU only forward and only for 0 <= a <= 1.
    Contender("np.maximum", _bind_numpy_maximum, forms=frozenset(("forward", m) for m in MODES)),
    Contender("torch", _bind_torch, **_optional(torch, "torch")),
    Contender("numexpr", _bind_numexpr, **_optional(numexpr, "numexpr")),
    # Into existing memory: an allocating call also pays for fresh pages.
    Contender(ROOFLINE, _bind_roofline, threaded=True, baseline=True,
              forms=frozenset((op, "out") for op in OPS)),
)
CONTENDERS_BY_NAME = {c.name: c for c in CONTENDERS}


def available_contenders():
    return [c for c in CONTENDERS if c.unavailable is None]


@dataclass
class Entry:
    """One timed callable and what must run before each of its loops."""

    call: Callable[[], object]
    before_loop: Optional[Callable[[], object]] = None


def bind_cell(cell, operands, thread_counts, contenders):
    """{(contender name, threads): Entry} for the contenders with a form for `cell`."""
    entries = {}
    for contender in contenders:
        if not contender.supports(cell):
            continue
        for threads in contender.thread_counts(thread_counts):
            call = contender.bind(cell, operands, threads)
            entries[(contender.name, threads)] = Entry(
                call, partial(contender.use_threads, threads)
            )
    return entries


def bind_checked(contender, cell, operands, threads):
    """The contender's callable, after checking its first call on fresh operands.

    Catches a call form that silently computes something else (an ignored
    out=, a wrong argument order) before any time is reported for it. The
    roofline must copy its input (forward), or OR its two inputs' bits.
    """
    if contender.baseline:
        expected, destination = operands.value.copy(), operands.out
        if cell.op == "backward":
            bits = np.dtype(f"u{expected.itemsize}")
            expected = (expected.view(bits) | operands.sign.view(bits)).view(expected.dtype)
    else:
        expected, destination = expected_result(operands), operands.dest
    contender.use_threads(threads)
    call = contender.bind(cell, operands, threads)
    returned = call()
    result = np.asarray(returned if destination is None else destination)
    if contender.baseline:  # OR-ed bits may be NaNs: compare the bits
        bits = np.dtype(f"u{expected.itemsize}")
        result, expected = result.view(bits), expected.view(bits)
    if result.dtype != expected.dtype or not np.array_equal(result, expected):
        raise AssertionError(f"{contender.name} computes a wrong result for {cell}")
    return call


def check_contenders(contenders, size=1000):
    """bind_checked every contender's every form, on small data."""
    for dtype in DTYPES:
        x, grad = random_inputs(size, dtype)
        for op in OPS:
            for mode in MODES:
                cell = Cell(size, dtype, op, mode)
                for contender in contenders:
                    if contender.supports(cell):
                        bind_checked(contender, cell, make_operands(cell, x, grad), ALL_THREADS)


# -------------------------------------------------------------------- timing


@dataclass(frozen=True)
class TimingSettings:
    """How long and how often to time each entry.

    loop_seconds: a timed loop repeats the call to last about this long.
    rounds: as many as fit in round_budget_seconds, within [min_rounds, max_rounds].
    """

    loop_seconds: float = 0.003
    min_rounds: int = 3
    max_rounds: int = 9
    round_budget_seconds: float = 0.25


def time_loop(call, calls):
    """Seconds for `calls` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return time.perf_counter() - start


def calibrate(call, loop_seconds):
    """Warm `call` up; return (calls making a loop of ~loop_seconds, seconds per call)."""
    # The first call pays one-off costs (page faults in a fresh out buffer,
    # lazy initialisation), and any call can stall: the faster of the first two
    # decides whether one call is already enough. Deciding on the first alone
    # once set a 5 us cell to one call per loop, which then timed single cold
    # calls (40-70 us).
    single = min(time_loop(call, 1), time_loop(call, 1))
    if single >= 2 * loop_seconds:
        return 1, single
    calls = 1
    while (elapsed := time_loop(call, calls)) < loop_seconds / 2:
        calls *= 2
    return max(1, round(calls * loop_seconds / elapsed)), elapsed / calls


@dataclass
class Timing:
    """Per-call seconds of one entry, one sample per round."""

    calls_per_loop: int
    samples: list = field(default_factory=list)

    @property
    def median(self):
        return statistics.median(self.samples)

    @property
    def fastest(self):
        """Noise only ever slows a call down: the fastest round is the robust figure."""
        return min(self.samples)


def _timed_loop(entry, calls):
    if entry.before_loop is not None:
        entry.before_loop()
    return time_loop(entry.call, calls)


def time_interleaved(entries, settings):
    """{key: Timing} of each Entry, timed round-robin.

    Each entry is warmed up and calibrated to loops of ~loop_seconds; then
    every round times one loop of each, starting each round one entry later
    so none always follows the same neighbour. Load from other processes then
    hits all entries alike, and the median drops the rounds it hit hardest.
    All entries get the same number of rounds.

    In-place calls overwrite their operand, so later calls see transformed
    data: positives stay, negatives shrink by the slope each call (through
    subnormals on a few calls, which cost float64 multiplies ~20% here) down
    to -0.0. Signs stay mixed, and a select does the same work on any values.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside one loop would land on one entry
    try:
        timings, round_seconds = {}, 0.0
        for key, entry in entries.items():
            if entry.before_loop is not None:
                entry.before_loop()
            calls, seconds_per_call = calibrate(entry.call, settings.loop_seconds)
            timings[key] = Timing(calls)
            round_seconds += calls * seconds_per_call
        rounds = int(settings.round_budget_seconds / round_seconds)
        rounds = max(settings.min_rounds, min(settings.max_rounds, rounds))
        keys = list(entries)
        for r in range(rounds):
            shift = r % len(keys)
            for key in keys[shift:] + keys[:shift]:
                timing = timings[key]
                seconds = _timed_loop(entries[key], timing.calls_per_loop)
                timing.samples.append(seconds / timing.calls_per_loop)
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings


def medians(entries, settings):
    """{key: median seconds per call} of each Entry, timed by time_interleaved."""
    return {key: timing.median for key, timing in time_interleaved(entries, settings).items()}


def fastest(entries, settings):
    """{key: fastest seconds per call} of each Entry, timed by time_interleaved."""
    return {key: timing.fastest for key, timing in time_interleaved(entries, settings).items()}


def run_in_threads(calls, calls_per_thread):
    """Run each of `calls` calls_per_thread times, each in its own new Python thread."""
    start = threading.Barrier(len(calls))

    def work(call):
        start.wait()  # all threads start calling together
        for _ in range(calls_per_thread):
            call()

    threads = [threading.Thread(target=work, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
