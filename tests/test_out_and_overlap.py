"""out=: results written into a given array, in place, and into arrays that
overlap the inputs.

The README promises that out may be an input, and that any overlap with an
input gives the same result as no overlap.
"""

import numpy as np
import pytest

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import kernels
from leaky_kernel._testing import bits_equal

# Arrays below this many elements run serially.
PARALLEL_MIN_SIZE = kernels.PARALLEL_MIN_SIZE

FLOAT_DTYPES = [np.float16, np.float32, np.float64]
SENTINEL = 7.25
# Rows of 1201 elements: long strided rows of out are written in blocks.
SHAPES = [pytest.param((37, 11), id="serial"), pytest.param((29, 1201), id="parallel")]


def out_in_a_buffer(kind, shape, dtype):
    """(buffer, cut): an array filled with a sentinel, and the function that
    cuts an out of `shape` and `dtype` from it (or from a copy of it)."""
    dtype = np.dtype(dtype)
    if kind == "misaligned":
        buffer = np.full(dtype.itemsize * int(np.prod(shape)) + 1, 0xA5, np.uint8)
        return buffer, lambda b: b[1:].view(dtype).reshape(shape)
    if kind == "strided":
        buffer = np.full((2 * shape[0] + 1, 3 * shape[1]), SENTINEL, dtype)
        return buffer, lambda b: b[1::2, ::3]
    if kind == "reversed":
        return np.full(shape, SENTINEL, dtype), lambda b: b[::-1, ::-1]
    return np.full(shape, SENTINEL, dtype, order=kind), lambda b: b


OUT_KINDS = ["C", "F", "strided", "reversed", "misaligned"]


def check_written_into_out(call, expected, out_kind):
    """Call `call(out)` with an out of this kind: it must return out, hold
    `expected`, and leave the buffer around out alone."""
    buffer, cut = out_in_a_buffer(out_kind, expected.shape, expected.dtype)
    out = cut(buffer)
    expected_buffer = buffer.copy()
    cut(expected_buffer)[...] = expected
    result = call(out)
    assert result is out
    assert np.shares_memory(result, buffer)
    assert bits_equal(out, expected)
    assert bits_equal(buffer, expected_buffer)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("out_kind", OUT_KINDS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES + [np.int32])
def test_forward_into_out(make_operand, dtype, out_kind, shape, n_threads):
    x = make_operand(shape, dtype)
    expected = reference.leaky_relu(x, 0.1)
    check_written_into_out(
        lambda out: lk.leaky_relu(x, 0.1, out=out, num_threads=n_threads), expected, out_kind
    )


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("out_kind", OUT_KINDS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES + [np.int32])
def test_backward_into_out(make_operand, dtype, out_kind, shape, n_threads):
    grad_output, x = make_operand(shape, dtype), make_operand(shape, dtype)
    expected = reference.leaky_relu_backward(grad_output, x, -0.5)
    check_written_into_out(
        lambda out: lk.leaky_relu_backward(grad_output, x, -0.5, out=out, num_threads=n_threads),
        expected,
        out_kind,
    )


def test_out_for_0d_and_empty_results():
    out = np.full((), SENTINEL)
    result = lk.leaky_relu(-2.0, 0.5, out=out)
    assert result is out  # an array, not a scalar, as with ufuncs
    assert out[()] == -1.0
    out = np.full((0, 3), SENTINEL, dtype=np.float32)
    assert lk.leaky_relu(np.empty((0, 3), dtype=np.float32), out=out) is out
    assert lk.leaky_relu_backward(out, out, out=out) is out


# 3-d shapes: stepped 3-d layouts go through the C-order fallback.
IN_PLACE_SHAPES = [pytest.param((4, 5, 6), id="serial"), pytest.param((33, 34, 35), id="parallel")]


@pytest.mark.parametrize("n_threads", [1, 3])
@pytest.mark.parametrize("shape", IN_PLACE_SHAPES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
# out=x itself, or another array object viewing exactly x's memory.
@pytest.mark.parametrize("alias", [lambda x: x, lambda x: x[...]], ids=["x", "view_of_x"])
def test_forward_in_place(make_operand, writeable_layout, alias, dtype, shape, n_threads):
    x = writeable_layout(make_operand(shape, dtype))
    expected = reference.leaky_relu(x, -0.3)
    out = alias(x)
    result = lk.leaky_relu(x, -0.3, out=out, num_threads=n_threads)
    assert result is out
    assert bits_equal(x, expected)


@pytest.mark.parametrize("x_is_output", [False, True])
@pytest.mark.parametrize("overwritten", ["grad_output", "x"])
@pytest.mark.parametrize("n_threads", [1, 3])
@pytest.mark.parametrize("shape", IN_PLACE_SHAPES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_backward_in_place(
    make_operand, writeable_layout, dtype, shape, n_threads, overwritten, x_is_output
):
    grad_output = writeable_layout(make_operand(shape, dtype))
    x = writeable_layout(make_operand(shape, dtype))
    if x_is_output:  # the training idiom: x holds leaky_relu's output
        x[...] = reference.leaky_relu(x, 0.3)
    expected = reference.leaky_relu_backward(grad_output, x, 0.3)
    out, other = (grad_output, x) if overwritten == "grad_output" else (x, grad_output)
    other_before = other.copy()
    result = lk.leaky_relu_backward(
        grad_output, x, 0.3, x_is_output=x_is_output, out=out, num_threads=n_threads
    )
    assert result is out
    assert bits_equal(out, expected)
    assert bits_equal(other, other_before)


# Two views of one buffer of side**2 elements that overlap without being the
# same view: (input view, out view).
OVERLAPS = {
    "out_one_ahead": lambda b, side: (b[:-1], b[1:]),
    "out_one_behind": lambda b, side: (b[1:], b[:-1]),
    "out_reversed": lambda b, side: (b, b[::-1]),
    # Same first element, different steps.
    "same_start_other_step": lambda b, side: (b[: len(b) // 2 * 2 : 2], b[: len(b) // 2]),
    "out_transposed": lambda b, side: (b.reshape(side, side), b.reshape(side, side).T),
}
# 257**2 // 2 > PARALLEL_MIN_SIZE: every overlap also runs on threads.
SIDES = [pytest.param(17, id="serial"), pytest.param(257, id="parallel")]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("overlap", OVERLAPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_forward_into_out_overlapping_x(make_operand, dtype, overlap, side, n_threads):
    x, out = OVERLAPS[overlap](make_operand(side * side, dtype), side)
    expected = reference.leaky_relu(x, 0.1)  # computed before x is overwritten
    result = lk.leaky_relu(x, 0.1, out=out, num_threads=n_threads)
    assert result is out
    assert bits_equal(out, expected)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("overlapped", ["grad_output", "x", "both"])
@pytest.mark.parametrize("overlap", OVERLAPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_backward_into_out_overlapping_inputs(
    make_operand, dtype, overlap, overlapped, side, n_threads
):
    shared, out = OVERLAPS[overlap](make_operand(side * side, dtype), side)
    separate = make_operand(shared.shape, dtype)
    grad_output, x = {
        "grad_output": (shared, separate),
        "x": (separate, shared),
        # x is grad_output backwards: both inputs overlap out, differently.
        "both": (shared, shared[::-1]),
    }[overlapped]
    expected = reference.leaky_relu_backward(grad_output, x, -0.5)
    result = lk.leaky_relu_backward(grad_output, x, -0.5, out=out, num_threads=n_threads)
    assert result is out
    assert bits_equal(out, expected)


@pytest.mark.parametrize("size", [11, 3 * PARALLEL_MIN_SIZE + 1], ids=["serial", "parallel"])
def test_out_sharing_memory_with_an_integer_input(size):
    # out reinterprets x's bytes as float64: x is converted before anything
    # is written, so every element still reads its own integer.
    x = np.arange(-(size // 2), size - size // 2, dtype=np.int64)
    expected = reference.leaky_relu(x, 0.5)
    out = x.view(np.float64)
    assert lk.leaky_relu(x, 0.5, out=out, num_threads=2) is out
    assert bits_equal(out, expected)


# ------------------------------------------- overlap on the ufunc route, threads
# out shifted against an input by a few elements, on calls large enough for two
# threads: NumPy hands such overlaps to the inner loop uncopied when the input
# lies ahead of out, trusting the loop to run in order.

OVERLAP_SIZE = 2**17
SHIFTS = [1, 24, 1000]
# A race between threads shows up in some runs only.
ATTEMPTS = 5


def shifted_pair(rng, shift, out_first, dtype=np.float32):
    """(buffer, input view, out view): two views of one buffer of
    OVERLAP_SIZE elements each, `shift` elements apart, out before the input
    (out_first) or after it."""
    buffer = rng.standard_normal(OVERLAP_SIZE + shift).astype(dtype)
    early, late = buffer[:OVERLAP_SIZE], buffer[shift:]
    return (late, early) if out_first else (early, late)


def slope_array(rng, size=OVERLAP_SIZE):
    return rng.choice([0.01, 0.25, -0.5, 3.0], size=size).astype(np.float32)


def forward_with_slope_array(rng, x, out):
    slope = slope_array(rng)
    return reference.leaky_relu(x, slope), lambda: lk.leaky_relu(x, slope, out=out, num_threads=2)


def backward_with_slope_array(rng, grad, out):
    x = rng.standard_normal(OVERLAP_SIZE).astype(np.float32)
    slope = slope_array(rng)
    expected = reference.leaky_relu_backward(grad, x, slope)
    return expected, lambda: lk.leaky_relu_backward(grad, x, slope, out=out, num_threads=2)


def masked_x_with_one_slope(rng, x, out):
    masked = np.ma.masked_array(x, mask=rng.random(OVERLAP_SIZE) < 0.1)
    return reference.leaky_relu(x, 0.1), lambda: lk.leaky_relu(masked, 0.1, out=out, num_threads=2)


@pytest.mark.parametrize("case", [forward_with_slope_array, backward_with_slope_array,
                                  masked_x_with_one_slope], ids=lambda case: case.__name__)
@pytest.mark.parametrize("out_first", [True, False], ids=["out-before", "out-after"])
@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("attempt", range(ATTEMPTS))
def test_ufunc_route_into_out_shifted_over_its_input(rng, case, shift, out_first, attempt):
    """The operand that out overlaps is the first one: x, or grad_output."""
    first, out = shifted_pair(rng, shift, out_first)
    expected, call = case(rng, first, out)  # the expected result, before out changes anything
    call()
    assert bits_equal(out, expected)


@pytest.mark.parametrize("out_first", [True, False], ids=["out-before", "out-after"])
@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("attempt", range(ATTEMPTS))
def test_forward_mask_with_slope_array_into_shifted_out(rng, shift, out_first, attempt):
    x, out = shifted_pair(rng, shift, out_first)
    slope = slope_array(rng)
    expected = reference.leaky_relu(x.copy(), slope)
    expected_mask = np.packbits(x > 0, bitorder="little")
    y, mask = lk.leaky_relu_forward_mask(x, slope, out=out, num_threads=2)
    assert y is out
    assert bits_equal(out, expected)
    assert bits_equal(mask, expected_mask)


# ------------------------------------------------------ out with a zero stride


def zero_stride_out(dtype, size):
    """A writeable out whose every element is one memory location."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape=(size,), strides=(0,))


@pytest.mark.parametrize(
    "slope", [0.25, np.linspace(-1, 1, 3 * PARALLEL_MIN_SIZE)], ids=["one-slope", "slope-array"]
)
def test_zero_stride_out_gets_the_last_write_as_numpy_gives(rng, slope):
    x = rng.standard_normal(3 * PARALLEL_MIN_SIZE)
    numpy_out = zero_stride_out(np.float64, x.size)
    np.multiply(x, 1.0, out=numpy_out)
    assert numpy_out[0] == x[-1]  # NumPy's own rule: the last element's write stays
    expected = reference.leaky_relu(x, slope)[-1]
    for _ in range(10):  # a race shows up in some runs only
        out = zero_stride_out(np.float64, x.size)
        lk.leaky_relu(x, slope, out=out, num_threads=2)
        assert bits_equal(out[0], expected)
