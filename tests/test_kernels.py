"""The compiled kernels below the public API: every instruction-set level this
machine runs, the streaming-store path on both sides of its cutoff, the
serial/parallel cutoff, and the cases around the contiguous fast path."""
import platform
import sys

import numpy as np
import pytest

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import LEVELS, kernels, load
from leaky_kernel._testing import (
    STREAM_ALWAYS,
    STREAM_NEVER,
    STREAM_PAGES,
    bits_equal,
    bits_identical,
    kernel_choices,
    put_quiet_nans,
    random_operand,
)

KERNEL_NAMES = {np.float32: "float", np.float64: "double"}


@pytest.fixture(params=LEVELS)
def level_kernels(request):
    return load(request.param)


@pytest.fixture
def streaming_always(level_kernels):
    """The level's kernels with streaming stores for every separate output."""
    with kernel_choices(level_kernels, **STREAM_ALWAYS):
        yield level_kernels


def run_general(module, value, sign, slope, n_threads):
    """Call the memoryview entry point on 2-D views, as the general path does."""
    value_2d, sign_2d = np.atleast_2d(value), np.atleast_2d(sign)
    out = np.empty_like(value_2d)
    module.leaky_select[KERNEL_NAMES[value.dtype.type]](
        value_2d, sign_2d, out, slope, n_threads, True
    )
    return out.reshape(value.shape)


def expected(value, sign, slope, forward):
    if forward:
        return reference.leaky_relu(value, slope)
    return reference.leaky_relu_backward(value, sign, slope)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
@pytest.mark.parametrize("size_offset", [-1, 0, 1, 12345])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_each_level_matches_oracle_around_parallel_cutoff(
    level_kernels, dtype, forward, size_offset, n_threads
):
    rng = np.random.default_rng(size_offset + 7)
    size = level_kernels.PARALLEL_MIN_SIZE + size_offset
    x = random_operand(rng, size, dtype)
    g = x if forward else random_operand(rng, size, dtype)
    for slope in (0.01, 0.0, -1.5, 7.0):
        want = expected(g, x, slope, forward)
        assert bits_equal(run_general(level_kernels, g, x, slope, n_threads), want)
        got = level_kernels.select_contiguous(g, x, slope, None, n_threads)
        assert bits_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("size", [1, 7, 8, 9, 63, 64, 65, 1000, 70001])
@pytest.mark.parametrize("offset", [0, 1, 3], ids=lambda o: f"out+{o}")
def test_streaming_stores_match_oracle(streaming_always, dtype, forward, n_threads, size, offset):
    """Streaming handles every head/tail/alignment of the output exactly."""
    rng = np.random.default_rng(size)
    x = random_operand(rng, size, dtype)
    g = x if forward else random_operand(rng, size, dtype)
    out = np.empty(size + offset, dtype)[offset:]  # shifts alignment by whole elements
    streaming_always.select_contiguous(g, x, 0.25, out, n_threads)
    assert bits_equal(out, expected(g, x, 0.25, forward))


PAGE_BYTES = 4096


def page_aligned(n, dtype):
    """n uninitialised elements starting on a 4 KiB page boundary."""
    itemsize = np.dtype(dtype).itemsize
    buffer = np.empty(n + PAGE_BYTES // itemsize, dtype)
    start = -buffer.ctypes.data % PAGE_BYTES // itemsize
    return buffer[start:start + n]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
# Around one and several blocks of four pages, for both element sizes.
@pytest.mark.parametrize("size", [1, 2049, 4097, 5 * 4096 + 77])
@pytest.mark.parametrize("page_offset", [0, 1, 16, 1023], ids=lambda o: f"page+{o}")
def test_paged_streaming_forward_matches_oracle(level_kernels, dtype, n_threads, size, page_offset):
    """Streaming four pages at a time (the forward only): the output at every
    kind of position within a page (the loop starts at the next page
    boundary), heads and tails."""
    rng = np.random.default_rng(size + page_offset)
    x = random_operand(rng, size, dtype)
    out = page_aligned(size + page_offset, dtype)[page_offset:]
    with kernel_choices(level_kernels, **STREAM_PAGES, min_thread_elements=1024):
        level_kernels.select_contiguous(x, x, 0.25, out, n_threads)
    assert bits_equal(out, expected(x, x, 0.25, True))


@pytest.mark.parametrize("how", kernels.ROOFLINES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_every_roofline_moves_the_bytes(how, n_threads):
    """The benchmarks' rooflines are only a fair bound if they do the work:
    out = a, or a | b bitwise for the two-input ones."""
    if how != "memcpy" and not kernels.HAVE_STREAM:
        pytest.skip("no streaming stores in this build")
    rng = np.random.default_rng(n_threads)
    a, b = (random_operand(rng, 5 * 4096 + 77, np.float32) for _ in range(2))
    out = page_aligned(a.size + 3, np.float32)[3:]
    kernels.roofline(a, b, out, how, n_threads)
    want = a.view(np.uint32) | (b.view(np.uint32) if "2-in-1-out" in how else 0)
    assert np.array_equal(out.view(np.uint32), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("cols", [1, 7, 8, 9, 33, 64, 65, 1000])
@pytest.mark.parametrize("offset", [0, 1, 3], ids=lambda o: f"out+{o}")
def test_streaming_every_other_column_matches_oracle(
    streaming_always, dtype, forward, n_threads, cols, offset
):
    """Step-2 rows (m[:, ::2]) streamed from registers: heads, tails, alignments."""
    rng = np.random.default_rng(cols)
    x = random_operand(rng, (5, 2 * cols), dtype)[:, ::2]
    g = x if forward else random_operand(rng, (5, 2 * cols), dtype)[:, ::2]
    out = np.empty(x.size + offset, dtype)[offset:].reshape(x.shape)
    streaming_always.leaky_select[KERNEL_NAMES[dtype]](g, x, out, 0.25, n_threads, False)
    assert bits_equal(out, expected(g, x, 0.25, forward))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
@pytest.mark.parametrize("stores", [STREAM_NEVER, STREAM_ALWAYS, STREAM_PAGES],
                         ids=["stored", "streamed", "paged"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_quiet_nan_payloads_come_through_as_in_the_oracle(
    level_kernels, dtype, forward, stores, n_threads
):
    """bits_equal lets any NaN stand for another; here the payloads must match
    too. Signalling NaNs are left out: the oracle passes one in grad_output
    through unchanged, while LLVM may compute that `g` as `g * 1`, which quiets it."""
    size = level_kernels.PARALLEL_MIN_SIZE + 4321
    rng = np.random.default_rng(size)
    x = put_quiet_nans(rng, random_operand(rng, size, dtype))
    g = put_quiet_nans(rng, random_operand(rng, size, dtype))
    value = x if forward else g
    with kernel_choices(level_kernels, **stores):
        got = level_kernels.select_contiguous(value, x, 0.25, None, n_threads)
    assert bits_identical(got, expected(value, x, 0.25, forward))


GUARDED_READS = """
import ctypes, mmap, sys
import numpy as np
import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import LEVELS, load
from leaky_kernel._testing import STREAM_ALWAYS, bits_equal, kernel_configuration, random_operand

libc = ctypes.CDLL(None, use_errno=True)
PROT_NONE = 0
regions = []

def ending_at_unreadable_page(values):
    \"\"\"A copy of 1-D `values`, its last element just before a page that cannot be read.\"\"\"
    region = mmap.mmap(-1, 2 * mmap.PAGESIZE)
    start = ctypes.addressof(ctypes.c_char.from_buffer(region))
    if libc.mprotect(ctypes.c_void_p(start + mmap.PAGESIZE), mmap.PAGESIZE, PROT_NONE):
        sys.exit("mprotect failed")
    regions.append(region)
    page = np.frombuffer(region, values.dtype, count=mmap.PAGESIZE // values.itemsize)
    copy = page[page.size - values.size:]
    copy[:] = values
    return copy

rng = np.random.default_rng(0)
for level in LEVELS:
    # the streaming loops too, at every size
    load(level).configure(**kernel_configuration(STREAM_ALWAYS))
for dtype, name in ((np.float32, "float"), (np.float64, "double")):
    for n in range(1, 80):
        for step in (1, 2):
            x = ending_at_unreadable_page(random_operand(rng, step * (n - 1) + 1, dtype))[::step]
            g = ending_at_unreadable_page(random_operand(rng, step * (n - 1) + 1, dtype))[::step]
            for level in LEVELS:
                for value, want in ((x, reference.leaky_relu(x, 0.25)),
                                    (g, reference.leaky_relu_backward(g, x, 0.25))):
                    out = np.empty((1, n), dtype)
                    load(level).leaky_select[name](value[None], x[None], out, 0.25, 1, False)
                    assert bits_equal(out[0], want), (level, name, step, n)
        x = ending_at_unreadable_page(random_operand(rng, n, dtype))
        g = ending_at_unreadable_page(random_operand(rng, n, dtype))
        y, mask = lk.leaky_relu_forward_mask(x, 0.25)
        assert bits_equal(y, reference.leaky_relu(x, 0.25)), (name, n)
        dx = lk.leaky_relu_backward_mask(g, ending_at_unreadable_page(mask), 0.25)
        assert bits_equal(dx, reference.leaky_relu_backward(g, x, 0.25)), (name, n)
print("ok")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through ctypes")
def test_vector_reads_stay_inside_the_operands(run_python):
    """Vector loads never touch memory past an operand's last element: each
    operand ends just before an unreadable page (a stray read would crash).
    Select kernels at every level, streamed, step 1 and 2; the mask kernels."""
    result = run_python("-c", GUARDED_READS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fresh", [False, True], ids=["out", "allocating"])
def test_outputs_on_both_sides_of_the_stream_cutoffs(dtype, fresh):
    """Through the public API, with a cutoff set here (not the machine's, so
    the test's memory does not depend on the machine): out= and allocating
    calls each follow their own cutoff, which counts the bytes a call moves
    (twice the output's for the forward, three times for the backward)."""
    cutoff = 3 << 16
    name = "stream_fresh_min_bytes" if fresh else "stream_out_min_bytes"
    rng = np.random.default_rng(1)
    x = random_operand(rng, cutoff // np.dtype(dtype).itemsize, dtype)
    g = x[::-1].copy()
    with kernel_choices(kernels, **{**STREAM_NEVER, name: cutoff}):
        for operands in (1, 2):
            at_cutoff = cutoff // (operands + 1) // np.dtype(dtype).itemsize
            for size in (at_cutoff - 1, at_cutoff, at_cutoff + 1):
                out = None if fresh else np.empty(size, dtype)
                if operands == 1:
                    got = lk.leaky_relu(x[:size], 0.3, out=out)
                    want = reference.leaky_relu(x[:size], 0.3)
                else:
                    got = lk.leaky_relu_backward(g[:size], x[:size], 0.3, out=out)
                    want = reference.leaky_relu_backward(g[:size], x[:size], 0.3)
                assert bits_equal(got, want)


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return None


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 only")
def test_each_level_is_compiled_for_its_instruction_set():
    assert load("baseline").SIMD == "SSE2"
    if "avx2" in LEVELS:
        assert load("avx2").SIMD == "AVX2"
    if "avx512" in LEVELS:
        assert load("avx512").SIMD == "AVX512"


@pytest.mark.skipif(cpu_flags() is None, reason="needs /proc/cpuinfo")
def test_widest_level_this_cpu_runs_is_chosen_by_default(monkeypatch):
    """Told by the CPU's own flags, not by the package's detection."""
    monkeypatch.delenv("LEAKY_KERNEL_SIMD", raising=False)
    flags = set(cpu_flags())
    has_avx2 = "avx2" in flags
    has_avx512 = has_avx2 and {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= flags
    assert ("avx2" in LEVELS) == has_avx2
    assert ("avx512" in LEVELS) == has_avx512
    assert kernels is load(LEVELS[-1])
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert kernels.SIMD == ("AVX512" if has_avx512 else "AVX2" if has_avx2 else "SSE2")


class TestAroundTheCommonCase:
    """Contiguous float32 and float64 with one float slope, which a compiled
    fast path serves, and every case around it, through the public
    functions: the oracle's bits where a call is valid, and where it is
    not, an error with nothing written."""

    def setup_method(self):
        rng = np.random.default_rng(0)
        self.x = random_operand(rng, (40, 30), np.float32)
        self.g = random_operand(rng, (40, 30), np.float32)

    def test_contiguous_c_and_f(self):
        for layout in (np.ascontiguousarray, np.asfortranarray):
            x, g = layout(self.x), layout(self.g)
            y = lk.leaky_relu_backward(g, x, 0.5)
            assert bits_equal(y, reference.leaky_relu_backward(g, x, 0.5))
            assert y.flags.c_contiguous == x.flags.c_contiguous

    @pytest.mark.parametrize(
        "case",
        [
            "strided", "mixed_order", "float16", "int", "swapped", "list", "zero_d",
            "mixed_dtype", "subclass",
        ],
    )
    def test_other_operands(self, case):
        x = np.random.default_rng(0).standard_normal((40, 20)).astype(np.float32)  # castable
        value = {
            "strided": lambda: x[:, ::2],
            "mixed_order": lambda: np.asfortranarray(x),
            "float16": lambda: x.astype(np.float16),
            "int": lambda: x.astype(np.int32),
            "swapped": lambda: x.astype(">f4"),
            "list": lambda: x.tolist(),
            "zero_d": lambda: np.ones((), np.float32),
            "mixed_dtype": lambda: x.astype(np.float64),
            "subclass": lambda: x.view(np.recarray),
        }[case]()
        sign = value if case in ("strided", "float16", "int", "swapped", "list", "zero_d", "subclass") else x
        before = np.array(value, copy=True)
        got = lk.leaky_relu_backward(value, sign, 0.5)
        assert bits_equal(np.asarray(got), reference.leaky_relu_backward(value, sign, 0.5))
        assert bits_equal(np.asarray(value), before)

    @pytest.mark.parametrize("slope", [np.float32(0.5), 1, -0.5, 1e-42])
    def test_other_valid_slopes(self, slope):
        got = lk.leaky_relu(self.x, slope)
        assert bits_equal(got, reference.leaky_relu(self.x, slope))

    @pytest.mark.parametrize(
        "slope, error", [(float("nan"), ValueError), (float("inf"), ValueError),
                         (1e39, ValueError), ("0.5", TypeError)]
    )
    def test_invalid_slopes_write_nothing(self, slope, error):
        out = np.zeros_like(self.x)
        with pytest.raises(error, match="negative_slope"):
            lk.leaky_relu(self.x, slope, out=out)
        assert not out.any()

    @pytest.mark.parametrize(
        "num_threads, error",
        [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError), ("2", TypeError)],
    )
    def test_invalid_thread_counts_write_nothing(self, num_threads, error):
        out = np.zeros_like(self.x)
        with pytest.raises(error, match="num_threads"):
            lk.leaky_relu(self.x, 0.5, out=out, num_threads=num_threads)
        assert not out.any()

    def test_invalid_outs_write_nothing(self):
        readonly = np.zeros_like(self.x)
        readonly.flags.writeable = False
        for out, error in (
            (np.zeros((30, 40), np.float32), ValueError),   # shape
            (np.zeros_like(self.x, dtype=np.int32), TypeError),  # dtype of another kind
            (readonly, ValueError),
        ):
            before = out.copy()
            with pytest.raises(error, match="out"):
                lk.leaky_relu(self.x, 0.5, out=out)
            assert bits_equal(out, before)

    def test_other_valid_outs(self):
        base = np.zeros(self.x.size + 1, np.float32)
        base[:-1] = self.x.reshape(-1)
        want = reference.leaky_relu(self.x, 0.5)
        for out in (
            np.zeros_like(self.x, dtype=np.float64),      # a wider dtype
            np.asfortranarray(np.zeros_like(self.x)),     # another order
            base[1:].reshape(self.x.shape),               # overlaps x, not in place
        ):
            value = base[:-1].reshape(self.x.shape) if out.base is base else self.x
            assert lk.leaky_relu(value, 0.5, out=out) is out
            assert bits_equal(out, want.astype(out.dtype))

    def test_in_place(self):
        x = self.x.copy()
        assert lk.leaky_relu(x, 0.5, out=x) is x
        assert bits_equal(x, reference.leaky_relu(self.x, 0.5))
