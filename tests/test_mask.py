"""leaky_relu_forward_mask and leaky_relu_backward_mask: the oracle pinned to the
mask format, every compiled path bit for bit against the oracle (dtypes,
layouts, sizes around the parallel cutoff and every byte boundary, thread
counts, each instruction-set level, streaming stores), out= and in place,
and errors that change nothing."""
import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import LEVELS, kernels, load
from leaky_kernel._rules import MASK_DTYPE, mask_nbytes
from leaky_kernel._testing import (
    STREAM_ALWAYS,
    STREAM_NEVER,
    bits_equal,
    bits_identical,
    kernel_choices,
    put_quiet_nans,
    random_operand,
)

PARALLEL_MIN_SIZE = kernels.PARALLEL_MIN_SIZE
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
OPERAND_DTYPES = [
    np.dtype(name) for name in ("float16", "float32", "float64", ">f4", ">f8", "int32", "bool")
]
KERNEL_NAMES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)
slopes = st.one_of(
    st.sampled_from([0.0, -0.0, 0.01, 0.1, -0.5, 3.0, 1e-42, 5e-324]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)  # finite in float32, the gradients' dtype; overflowing slopes: test_hardening.py
thread_counts = st.sampled_from([None, 1, 2, 3])


def packed_signs(x):
    """The mask format, spelled out: bit i of the C-order flattening is x > 0."""
    return np.packbits((np.asarray(x) > 0).reshape(-1), bitorder="little")


# ------------------------------------------------------------------ the oracle


def test_oracle_mask_worked_example():
    # Elements 0..8: byte 0 holds elements 0-7 (element j in bit j), byte 1
    # holds element 8 in bit 0, its other bits zero.
    x = np.array([1.0, -1.0, 0.0, np.nan, 2.0, -0.0, np.inf, -np.inf, 5e-324])
    _, mask = reference.leaky_relu_forward_mask(x)
    assert mask.dtype == np.uint8
    assert mask.tolist() == [0b01010001, 0b00000001]


def test_oracle_mask_is_in_c_order_whatever_the_layout():
    x = np.array([[1.0, -1.0], [1.0, -1.0]])
    _, mask = reference.leaky_relu_forward_mask(np.asfortranarray(x))
    assert mask.tolist() == [0b0101]
    _, mask = reference.leaky_relu_forward_mask(x.T)  # [[1, 1], [-1, -1]]
    assert mask.tolist() == [0b0011]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + [np.int32, np.bool_])
def test_oracle_forward_is_leaky_relu_and_backward_is_leaky_relu_backward(make_operand, dtype):
    x, g = make_operand((5, 13), dtype), make_operand((5, 13), np.float32)
    y, mask = reference.leaky_relu_forward_mask(x, -0.5)
    assert bits_equal(y, reference.leaky_relu(x, -0.5))
    assert bits_equal(mask, packed_signs(x))
    # The mask carries no dtype: the gradient takes grad_output's. A float32
    # x of 1 where x > 0, else 0, has x's signs without promoting g.
    expected = reference.leaky_relu_backward(g, (x > 0).astype(np.float32), -0.5)
    assert bits_equal(reference.leaky_relu_backward_mask(g, mask, -0.5), expected)


@pytest.mark.parametrize("name", ["leaky_relu_forward_mask", "leaky_relu_backward_mask"])
def test_reference_has_the_signature_of_the_compiled_function(name):
    compiled = inspect.signature(getattr(lk, name)).parameters
    oracle = inspect.signature(getattr(reference, name)).parameters
    assert list(oracle) == [p for p in compiled if p not in ("out", "num_threads")]
    assert compiled["negative_slope"].default == 0.01


# ------------------------------------------------- compiled against the oracle


@given(
    data=st.data(),
    shape=shapes,
    dtype=st.sampled_from(OPERAND_DTYPES),
    slope=slopes,
    use_alpha=st.booleans(),
    n_threads=thread_counts,
)
def test_forward_and_backward_match_reference(
    data, layouts, shape, dtype, slope, use_alpha, n_threads
):
    x = data.draw(hnp.arrays(dtype.newbyteorder("="), shape), label="x").astype(dtype)
    g = data.draw(hnp.arrays(np.float32, shape), label="grad_output")
    x_layout = data.draw(st.sampled_from(layouts), label="x layout")
    g_layout = data.draw(st.sampled_from(layouts), label="grad_output layout")
    kwargs = {"alpha": slope} if use_alpha else {"negative_slope": slope}
    y, mask = lk.leaky_relu_forward_mask(x_layout(x), num_threads=n_threads, **kwargs)
    expected_y, expected_mask = reference.leaky_relu_forward_mask(x, **kwargs)
    assert type(y) is type(expected_y)
    assert bits_equal(y, expected_y)
    assert bits_equal(mask, expected_mask)
    grad = lk.leaky_relu_backward_mask(g_layout(g), mask, num_threads=n_threads, **kwargs)
    expected = reference.leaky_relu_backward_mask(g, expected_mask, **kwargs)
    assert type(grad) is type(expected)
    assert bits_equal(grad, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_quiet_nan_payloads_come_through(rng, dtype, n_threads):
    """As bits_equal, and the payload of each quiet NaN too (see test_kernels)."""
    size = PARALLEL_MIN_SIZE + 4321
    x = put_quiet_nans(rng, random_operand(rng, size, dtype))
    g = put_quiet_nans(rng, random_operand(rng, size, dtype))
    y, mask = lk.leaky_relu_forward_mask(x, 0.25, num_threads=n_threads)
    assert bits_identical(y, reference.leaky_relu(x, 0.25))
    grad = lk.leaky_relu_backward_mask(g, mask, 0.25, num_threads=n_threads)
    assert bits_identical(grad, reference.leaky_relu_backward(g, x, 0.25))


# Either side of the serial cutoff and of a mask byte; the odd sizes leave a
# ragged last span and a partial last byte.
SIZES = [1, 7, 8, 9, 64, 513, PARALLEL_MIN_SIZE - 1, PARALLEL_MIN_SIZE,
         PARALLEL_MIN_SIZE + 1, 3 * PARALLEL_MIN_SIZE + 7, 5 * PARALLEL_MIN_SIZE + 13]


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_sizes_around_byte_and_parallel_boundaries_match_reference(
    make_operand, dtype, size, n_threads
):
    x, g = make_operand(size, dtype), make_operand(size, dtype)
    y, mask = lk.leaky_relu_forward_mask(x, 0.1, num_threads=n_threads)
    expected_y, expected_mask = reference.leaky_relu_forward_mask(x, 0.1)
    assert bits_equal(y, expected_y)
    assert bits_equal(mask, expected_mask)
    grad = lk.leaky_relu_backward_mask(g, mask, 0.1, num_threads=n_threads)
    assert bits_equal(grad, reference.leaky_relu_backward(g, x, 0.1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_the_thread_count(make_operand, dtype):
    size = 7 * PARALLEL_MIN_SIZE + 3
    x, g = make_operand(size, dtype), make_operand(size, dtype)
    y1, mask1 = lk.leaky_relu_forward_mask(x, -0.3, num_threads=1)
    grad1 = lk.leaky_relu_backward_mask(g, mask1, -0.3, num_threads=1)
    for n_threads in (2, 3, 4, 7):
        y, mask = lk.leaky_relu_forward_mask(x, -0.3, num_threads=n_threads)
        assert bits_equal(y, y1) and bits_equal(mask, mask1)
        assert bits_equal(lk.leaky_relu_backward_mask(g, mask, -0.3, num_threads=n_threads), grad1)


@pytest.fixture(params=LEVELS)
def level_kernels(request):
    return load(request.param)


@pytest.mark.parametrize("stream", [False, True], ids=["cached", "streamed"])
@pytest.mark.parametrize("offset", [0, 1, 4], ids=lambda o: f"out+{o}")
@pytest.mark.parametrize("size", [5, 8, 77, 4096 + 3, 2 * PARALLEL_MIN_SIZE + 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_level_and_store_kind_matches_reference(level_kernels, dtype, size, offset, stream):
    # Outputs shifted by whole elements: 16-byte aligned (streamed when asked)
    # or not (ordinary stores); x and grad_output are shifted alike, and the
    # mask by `offset` bytes.
    rng = np.random.default_rng(size + offset)
    x = np.empty(size + offset, dtype)[offset:]
    g = np.empty(size + offset, dtype)[offset:]
    x[...], g[...] = random_operand(rng, size, dtype), random_operand(rng, size, dtype)
    out = np.empty(size + offset, dtype)[offset:]
    mask = np.empty(mask_nbytes(size) + offset, MASK_DTYPE)[offset:]
    name = KERNEL_NAMES[np.dtype(dtype)]
    with kernel_choices(level_kernels, **(STREAM_ALWAYS if stream else STREAM_NEVER)):
        for n_threads, fresh in ((1, False), (2, True)):
            level_kernels.forward_mask[name](x, out, mask, 2.5, n_threads, fresh)
            expected_y, expected_mask = reference.leaky_relu_forward_mask(x, 2.5)
            assert bits_equal(out, expected_y) and bits_equal(mask, expected_mask)
            level_kernels.backward_mask[name](g, mask, out, 2.5, n_threads, fresh)
            assert bits_equal(out, reference.leaky_relu_backward(g, x, 2.5))


def test_unused_bits_of_the_last_byte_are_zero():
    y, mask = lk.leaky_relu_forward_mask(np.ones(11, np.float32))
    assert mask.tolist() == [0xFF, 0b111]


# ----------------------------------------------------- dtypes, shapes, results


@pytest.mark.parametrize(
    "x_dtype, result_dtype",
    [("float16", "float16"), ("float32", "float32"), ("float64", "float64"), (">f4", "float32"),
     ("bool", "float64"), ("int8", "float64"), ("uint64", "float64")],
)
def test_result_dtypes_follow_leaky_relu(x_dtype, result_dtype):
    x = np.array([[-2, 0], [1, 3]]).astype(x_dtype)
    y, mask = lk.leaky_relu_forward_mask(x, 0.5)
    assert y.dtype == np.dtype(result_dtype)
    assert mask.dtype == np.uint8 and mask.shape == (1,)
    grad = lk.leaky_relu_backward_mask(np.ones(x.shape, x_dtype), mask, 0.5)
    assert grad.dtype == np.dtype(result_dtype)


@pytest.mark.parametrize("slope", [0.01, -0.3])
def test_float16_is_computed_in_float32_and_rounded_once(slope):
    every_float16 = np.arange(2**16, dtype=np.uint16).view(np.float16)
    y, mask = lk.leaky_relu_forward_mask(every_float16, slope)
    assert bits_equal(y, reference.leaky_relu(every_float16, slope))
    grad = lk.leaky_relu_backward_mask(every_float16[::-1], mask, slope)
    expected = reference.leaky_relu_backward(every_float16[::-1], every_float16, slope)
    assert bits_equal(grad, expected)


@pytest.mark.parametrize("impl", [reference, lk], ids=["reference", "compiled"])
def test_scalars_and_0d_arrays_give_numpy_scalars_and_a_one_byte_mask(impl):
    y, mask = impl.leaky_relu_forward_mask(np.float32(-2), 0.5)
    assert type(y) is np.float32 and y == -1
    assert mask.tolist() == [0]
    grad = impl.leaky_relu_backward_mask(3.0, mask, 0.5)
    assert type(grad) is np.float64 and grad == 1.5


@pytest.mark.parametrize("impl", [reference, lk], ids=["reference", "compiled"])
def test_empty_arrays_have_an_empty_mask(impl):
    y, mask = impl.leaky_relu_forward_mask(np.empty((3, 0), np.float32))
    assert y.shape == (3, 0) and mask.shape == (0,)
    assert impl.leaky_relu_backward_mask(np.empty((0, 2)), mask).shape == (0, 2)


@pytest.mark.parametrize("order", ["C", "F"])
def test_results_are_c_ordered(make_operand, order):
    x = np.asarray(make_operand((37, 11), np.float32), order=order)
    y, mask = lk.leaky_relu_forward_mask(x)
    assert y.flags.c_contiguous
    assert lk.leaky_relu_backward_mask(x, mask).flags.c_contiguous


def test_mask_is_one_bit_per_element():
    # What the backward reads in place of x: 1/32 of float32 x, 1/64 of float64.
    for dtype, ratio in ((np.float32, 32), (np.float64, 64)):
        x = np.ones(1 << 12, dtype)
        assert lk.leaky_relu_forward_mask(x)[1].nbytes * ratio == x.nbytes


# ------------------------------------------------------------ out= and in place


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_out_is_written_and_returned(writeable_layout, make_operand, dtype):
    x, g = make_operand((6, 7, 5), dtype), make_operand((6, 7, 5), dtype)
    out = writeable_layout(np.zeros(x.shape, dtype))
    y, mask = lk.leaky_relu_forward_mask(x, 0.2, out=out)
    assert y is out
    assert bits_equal(out, reference.leaky_relu(x, 0.2))
    out = writeable_layout(np.zeros(x.shape, dtype))
    assert lk.leaky_relu_backward_mask(g, mask, 0.2, out=out) is out
    assert bits_equal(out, reference.leaky_relu_backward(g, x, 0.2))


@pytest.mark.parametrize("size", [1001, 3 * PARALLEL_MIN_SIZE + 5])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_in_place(make_operand, dtype, size):
    x, g = make_operand(size, dtype), make_operand(size, dtype)
    expected_y, expected_mask = reference.leaky_relu_forward_mask(x, -2.0)
    expected_grad = reference.leaky_relu_backward(g, x, -2.0)
    y, mask = lk.leaky_relu_forward_mask(x, -2.0, out=x)
    assert y is x and bits_equal(x, expected_y) and bits_equal(mask, expected_mask)
    assert lk.leaky_relu_backward_mask(g, mask, -2.0, out=g) is g
    assert bits_equal(g, expected_grad)


@pytest.mark.parametrize("shift", [1, -1, 8])
def test_out_overlapping_an_input_gives_the_result_without_overlap(make_operand, shift):
    buffer = make_operand(3 * PARALLEL_MIN_SIZE, np.float32)
    n = buffer.size - abs(shift)
    x = buffer[max(shift, 0):][:n]
    out = buffer[max(-shift, 0):][:n]
    expected_y, expected_mask = reference.leaky_relu_forward_mask(x.copy(), 0.5)
    y, mask = lk.leaky_relu_forward_mask(x, 0.5, out=out)
    assert bits_equal(out, expected_y) and bits_equal(mask, expected_mask)
    buffer = make_operand(3 * PARALLEL_MIN_SIZE, np.float32)
    g, out = buffer[max(shift, 0):][:n], buffer[max(-shift, 0):][:n]
    expected = reference.leaky_relu_backward_mask(g.copy(), mask, 0.5)
    lk.leaky_relu_backward_mask(g, mask, 0.5, out=out)
    assert bits_equal(out, expected)


def test_out_overlapping_the_mask_gives_the_result_without_overlap():
    x = np.array([-1.0, 2.0, -3.0, 4.0] * 4, np.float32)
    g = np.arange(16, dtype=np.float32)
    memory = np.zeros(16, np.float32)
    mask = memory.view(np.uint8)[:2]
    mask[...] = lk.leaky_relu_forward_mask(x)[1]
    expected = reference.leaky_relu_backward(g, x, 0.5)
    assert bits_equal(lk.leaky_relu_backward_mask(g, mask, 0.5, out=memory), expected)


def test_mask_of_any_layout_is_read_as_its_values(make_operand):
    x, g = make_operand(100, np.float64), make_operand(100, np.float64)
    mask = lk.leaky_relu_forward_mask(x)[1]
    strided = np.zeros(2 * mask.size, np.uint8)[::2]
    strided[...] = mask
    strided.flags.writeable = False
    assert bits_equal(lk.leaky_relu_backward_mask(g, strided), reference.leaky_relu_backward(g, x))


def test_inputs_are_unchanged(make_operand):
    x, g = make_operand((50, 40), np.float32), make_operand((50, 40), np.float32)
    x_copy, g_copy = x.copy(), g.copy()
    _, mask = lk.leaky_relu_forward_mask(x)
    mask_copy = mask.copy()
    lk.leaky_relu_backward_mask(g, mask)
    assert bits_equal(x, x_copy) and bits_equal(g, g_copy) and bits_equal(mask, mask_copy)


# ---------------------------------------------------------------------- errors

X = np.array([-1.0, 2.0, 3.0], np.float32)
MASK = np.array([0b110], np.uint8)

FORWARD_ERRORS = [
    ((X,), {"negative_slope": "0.1"}, TypeError, "negative_slope"),
    ((X,), {"negative_slope": np.inf}, ValueError, "negative_slope"),
    ((X,), {"negative_slope": 0.1, "alpha": 0.2}, TypeError, "alpha"),
    ((X,), {"alpha": np.nan}, ValueError, "alpha"),
    ((X,), {"num_threads": 0}, ValueError, "num_threads"),
    ((X,), {"num_threads": 1.5}, TypeError, "num_threads"),
    ((X.astype(np.complex64),), {}, TypeError, "x"),
    ((["a"],), {}, TypeError, "x"),
    ((X,), {"out": np.zeros(3, np.int64)}, TypeError, "out"),
    ((X,), {"out": np.zeros(4, np.float32)}, ValueError, "out"),
    ((X,), {"out": [0.0, 0.0, 0.0]}, TypeError, "out"),
]
BACKWARD_ERRORS = [
    ((X, MASK.astype(np.int8)), {}, TypeError, "mask"),
    ((X, [6]), {}, TypeError, "mask"),
    ((X, np.zeros(2, np.uint8)), {}, ValueError, "mask"),
    ((X, MASK.reshape(1, 1)), {}, ValueError, "mask"),
    ((np.zeros(9, np.float32), MASK), {}, ValueError, "mask"),
    ((X.astype(np.complex64), MASK), {}, TypeError, "grad_output"),
    ((X, MASK), {"negative_slope": 0.1, "alpha": 0.2}, TypeError, "alpha"),
    ((X, MASK), {"negative_slope": None}, TypeError, "negative_slope"),
    ((X, MASK), {"num_threads": -1}, ValueError, "num_threads"),
    ((X, MASK), {"out": np.zeros(3, np.int16)}, TypeError, "out"),
    ((X, MASK), {"out": np.zeros((3, 1), np.float32)}, ValueError, "out"),
]


def _read_only_out():
    out = np.zeros(3, np.float32)
    out.flags.writeable = False
    return out


def with_implementations(cases):
    """Each case for the compiled function, and for the oracle unless it uses
    out= or num_threads=, which the oracle does not have."""
    return [
        pytest.param(impl, *case, id=f"{impl_id}-{case[-1]}-{i}")
        for impl, impl_id in ((reference, "reference"), (lk, "compiled"))
        for i, case in enumerate(cases)
        if impl is lk or not {"out", "num_threads"} & set(case[1])
    ]


@pytest.mark.parametrize("impl, args, kwargs, error, name", with_implementations(FORWARD_ERRORS))
def test_forward_errors_name_the_argument(impl, args, kwargs, error, name):
    with pytest.raises(error, match=name):
        impl.leaky_relu_forward_mask(*args, **kwargs)


@pytest.mark.parametrize("impl, args, kwargs, error, name", with_implementations(BACKWARD_ERRORS))
def test_backward_errors_name_the_argument(impl, args, kwargs, error, name):
    with pytest.raises(error, match=name):
        impl.leaky_relu_backward_mask(*args, **kwargs)


def test_bad_calls_change_nothing():
    x, mask = X.copy(), MASK.copy()
    with pytest.raises(ValueError, match="out must be writeable"):
        lk.leaky_relu_forward_mask(x, out=_read_only_out())
    with pytest.raises(ValueError, match="num_threads"):
        lk.leaky_relu_forward_mask(x, out=x, num_threads=0)
    with pytest.raises(ValueError, match="mask"):
        lk.leaky_relu_backward_mask(x, np.zeros(2, np.uint8), out=x)
    with pytest.raises(TypeError, match="alpha"):
        lk.leaky_relu_backward_mask(x, mask, 0.5, alpha=0.5, out=x)
    assert bits_equal(x, X) and bits_equal(mask, MASK)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [8, 65, 127, 200, 4096 + 13])
@pytest.mark.parametrize("stores", [STREAM_ALWAYS, STREAM_NEVER], ids=["streamed", "stored"])
def test_mask_kernels_at_every_offset_from_a_cache_line(level_kernels, dtype, n, stores):
    """An out that starts off a cache line, apart from the inputs, is written
    in line-aligned groups whose bits shift against the mask (_mask.h); in
    place it is not. Every offset, 1 and 2 threads, both store kinds."""
    name = KERNEL_NAMES[np.dtype(dtype)]
    itemsize = np.dtype(dtype).itemsize
    rng = np.random.default_rng(n)
    x, g = random_operand(rng, n, dtype), random_operand(rng, n, dtype)
    expected_y, expected_mask = reference.leaky_relu_forward_mask(x, 0.3)
    expected_grad = reference.leaky_relu_backward(g, x, 0.3)
    with kernel_choices(level_kernels, **stores, min_thread_elements=64):
        for offset in range(64 // itemsize):
            buffer = np.empty(n + 2 * 64 // itemsize, dtype)
            start = (-buffer.ctypes.data % 64) // itemsize + offset
            out = buffer[start:start + n]
            for n_threads in (1, 2):
                mask = np.empty(mask_nbytes(n), MASK_DTYPE)
                level_kernels.forward_mask[name](x, out, mask, 0.3, n_threads, False)
                assert bits_equal(out, expected_y) and bits_equal(mask, expected_mask), offset
                level_kernels.backward_mask[name](g, expected_mask, out, 0.3, n_threads, False)
                assert bits_equal(out, expected_grad), offset
                out[:] = x
                level_kernels.forward_mask[name](out, out, mask, 0.3, n_threads, False)
                assert bits_equal(out, expected_y) and bits_equal(mask, expected_mask), offset
                out[:] = g
                level_kernels.backward_mask[name](out, expected_mask, out, 0.3, n_threads, False)
                assert bits_equal(out, expected_grad), offset
