"""Every compiled path agrees with the oracle bit for bit.

Hypothesis explores dtypes (including byte-swapped, integer and bool), shapes
from 0-d to 4-d with empty and size-1 axes, memory layouts, slopes and special
values on small arrays, which run serially. Parametrised tests then cover sizes
on both sides of PARALLEL_MIN_SIZE, where OpenMP splits the work into spans,
and large arrays in each layout the kernel handles differently.
"""

import re

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._dispatch import kernels
from leaky_kernel._testing import (
    STREAM_ALWAYS,
    STREAM_PAGES,
    bits_equal,
    bits_identical,
    kernel_choices,
    put_quiet_nans,
    random_operand,
)

# Arrays below this many elements run serially.
PARALLEL_MIN_SIZE = kernels.PARALLEL_MIN_SIZE

FLOAT_DTYPES = [np.float16, np.float32, np.float64]
OPERAND_DTYPES = [
    np.dtype(name) for name in ("float16", "float32", "float64", ">f4", ">f8", "int32", "bool")
]

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
slopes = st.one_of(
    # Zero and negative zero, the default, inexact in float32 (0.1),
    # negative, above one, a float32 subnormal, a float64 subnormal (0 in
    # float32) and one that overflows float32 (a ValueError in float32 and
    # float16, as in the oracle).
    st.sampled_from([0.0, -0.0, 0.01, 0.1, -0.5, 3.0, 1e-42, 5e-324, 1e39]),
    st.floats(allow_nan=False, allow_infinity=False),
)
nonnegative_slopes = st.one_of(
    st.sampled_from([0.0, -0.0, 0.01, 0.1, 3.0, 1e-42]),
    st.floats(min_value=0.0, allow_infinity=False),
)
thread_counts = st.sampled_from([None, 1, 2, 3])


@st.composite
def operands(draw, shape, dtype):
    """A C-ordered array; hypothesis's float elements favour NaN, infinities,
    signed zeros, subnormals and the largest finite values."""
    return draw(hnp.arrays(dtype.newbyteorder("="), shape)).astype(dtype)


# What each input layout must be for the tests below to reach the code
# paths they aim at, checked on a 3-d array.
LAYOUT_PROPERTIES = {
    "C": lambda a: a.flags.c_contiguous,
    "F": lambda a: a.flags.f_contiguous and not a.flags.c_contiguous,
    "permuted": lambda a: (
        not (a.flags.c_contiguous or a.flags.f_contiguous) and a.base.flags.c_contiguous
    ),
    "stepped": lambda a: not (a.flags.c_contiguous or a.flags.f_contiguous),
    "reversed": lambda a: all(stride < 0 for stride in a.strides),
    "misaligned": lambda a: not a.flags.aligned,
    "read_only": lambda a: not a.flags.writeable,
}


def test_layouts_keep_dtype_and_values_in_another_memory_layout(layout):
    a = np.arange(-30, 30, dtype=">f8").reshape(3, 4, 5)
    laid_out = layout(a)
    assert laid_out.dtype == a.dtype
    assert bits_equal(laid_out, a)
    assert LAYOUT_PROPERTIES[layout.name](laid_out)


def assert_same_outcome(compiled, oracle):
    """The compiled call gives the oracle's result bit for bit, or the oracle's
    ValueError (a slope that overflows the compute dtype)."""
    try:
        expected = oracle()
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            compiled()
        return
    result = compiled()
    assert type(result) is type(expected)
    assert bits_equal(result, expected)


def slope_kwargs(slope, use_alpha):
    return {"alpha": slope} if use_alpha else {"negative_slope": slope}


@given(
    data=st.data(),
    shape=shapes,
    dtype=st.sampled_from(OPERAND_DTYPES),
    slope=slopes,
    use_alpha=st.booleans(),
    n_threads=thread_counts,
)
def test_forward_matches_reference(data, layouts, shape, dtype, slope, use_alpha, n_threads):
    x = data.draw(operands(shape, dtype), label="x")
    x_layout = data.draw(st.sampled_from(layouts), label="x layout")
    kwargs = slope_kwargs(slope, use_alpha)
    assert_same_outcome(
        lambda: lk.leaky_relu(x_layout(x), num_threads=n_threads, **kwargs),
        lambda: reference.leaky_relu(x, **kwargs),
    )


@given(
    data=st.data(),
    shape=shapes,
    grad_dtype=st.sampled_from(OPERAND_DTYPES),
    x_dtype=st.sampled_from(OPERAND_DTYPES),
    slope=slopes,
    use_alpha=st.booleans(),
    n_threads=thread_counts,
)
def test_backward_matches_reference(
    data, layouts, shape, grad_dtype, x_dtype, slope, use_alpha, n_threads
):
    grad_output = data.draw(operands(shape, grad_dtype), label="grad_output")
    x = data.draw(operands(shape, x_dtype), label="x")
    grad_layout = data.draw(st.sampled_from(layouts), label="grad_output layout")
    x_layout = data.draw(st.sampled_from(layouts), label="x layout")
    kwargs = slope_kwargs(slope, use_alpha)
    assert_same_outcome(
        lambda: lk.leaky_relu_backward(
            grad_layout(grad_output), x_layout(x), num_threads=n_threads, **kwargs
        ),
        lambda: reference.leaky_relu_backward(grad_output, x, **kwargs),
    )


@given(
    data=st.data(),
    shape=shapes,
    dtype=st.sampled_from([np.dtype(dtype) for dtype in FLOAT_DTYPES]),
    slope=nonnegative_slopes,
    n_threads=thread_counts,
)
def test_backward_from_output_equals_backward_from_input(
    data, layouts, shape, dtype, slope, n_threads
):
    # For slopes >= 0 the output is > 0 exactly where the input is, so the
    # in-place training idiom (x_is_output=True) loses nothing.
    grad_output = data.draw(operands(shape, dtype), label="grad_output")
    x = data.draw(operands(shape, dtype), label="x")
    layout = data.draw(st.sampled_from(layouts), label="layout")
    with np.errstate(over="ignore"):  # a slope that overflows is an error, tested elsewhere
        assume(dtype == np.float64 or np.isfinite(np.float32(slope)))
    y = reference.leaky_relu(x, slope)
    expected = reference.leaky_relu_backward(grad_output, x, slope)
    assert bits_equal(
        reference.leaky_relu_backward(grad_output, y, slope, x_is_output=True), expected
    )
    result = lk.leaky_relu_backward(
        layout(grad_output), layout(y), slope, x_is_output=True, num_threads=n_threads
    )
    assert bits_equal(result, expected)


# Either side of the serial cutoff; the odd sizes leave a ragged last span.
SIZES = [
    PARALLEL_MIN_SIZE - 1,
    PARALLEL_MIN_SIZE,
    PARALLEL_MIN_SIZE + 1,
    3 * PARALLEL_MIN_SIZE + 7,
    5 * PARALLEL_MIN_SIZE + 13,
]


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_forward_matches_reference_around_parallel_cutoff(make_operand, dtype, size, n_threads):
    x = make_operand(size, dtype)
    result = lk.leaky_relu(x, 0.1, num_threads=n_threads)
    assert bits_equal(result, reference.leaky_relu(x, 0.1))


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_backward_matches_reference_around_parallel_cutoff(make_operand, dtype, size, n_threads):
    grad_output, x = make_operand(size, dtype), make_operand(size, dtype)
    result = lk.leaky_relu_backward(grad_output, x, -0.5, num_threads=n_threads)
    assert bits_equal(result, reference.leaky_relu_backward(grad_output, x, -0.5))


# name: (shape of the base array, the view taken of it). Every view holds
# more than PARALLEL_MIN_SIZE elements, so threads share it.
LARGE_LAYOUTS = {
    "C": ((301, 219), lambda a: a),
    "F": ((301, 219), np.asfortranarray),
    "transposed": ((301, 219), lambda a: a.T),
    # Strided rows and columns, the columns walked backwards.
    "stepped_2d": ((1202, 331), lambda a: a[::2, ::-3]),
    # Rows of 7 with a row stride: thread spans start and end mid-row.
    "short_strided_rows": ((18732, 14), lambda a: a[::2, ::2]),
    # Rows of 1201 strided elements, each longer than a kernel block.
    "long_strided_rows": ((160, 2402), lambda a: a[::2, ::2]),
    # Three axes that no order merges into two: the C-order fallback.
    "unmergeable_3d": ((132, 99, 66), lambda a: a[::2, ::3, ::2]),
    "unmergeable_3d_permuted": ((132, 99, 66), lambda a: a[::2, ::3, ::2].transpose(2, 0, 1)),
    # A zero stride: one row read 301 times.
    "broadcast": ((1, 219), lambda a: np.broadcast_to(a, (301, 219))),
}


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("layout_name", list(LARGE_LAYOUTS))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_large_layouts_match_reference(make_operand, dtype, layout_name, n_threads):
    base_shape, view = LARGE_LAYOUTS[layout_name]
    x = view(make_operand(base_shape, dtype))
    grad_output = view(make_operand(base_shape, dtype))
    assert x.size > PARALLEL_MIN_SIZE  # else this would not test the parallel path
    contiguous_x = np.ascontiguousarray(x)
    for slope in (0.01, 3.0):
        assert bits_equal(
            lk.leaky_relu(x, slope, num_threads=n_threads), reference.leaky_relu(x, slope)
        )
        expected = reference.leaky_relu_backward(grad_output, x, slope)
        # The layouts of grad_output and x are merged together: try them
        # together and each against a C-ordered partner.
        for g, x_ in [
            (grad_output, x),
            (grad_output, contiguous_x),
            (np.ascontiguousarray(grad_output), x),
        ]:
            assert bits_equal(lk.leaky_relu_backward(g, x_, slope, num_threads=n_threads), expected)


@pytest.mark.parametrize("layout_name", list(LARGE_LAYOUTS))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_quiet_nan_payloads_come_through_in_every_layout(rng, dtype, layout_name):
    """As bits_equal, and the payload of each quiet NaN too (see test_kernels)."""
    base_shape, view = LARGE_LAYOUTS[layout_name]
    x = view(put_quiet_nans(rng, random_operand(rng, base_shape, dtype)))
    g = view(put_quiet_nans(rng, random_operand(rng, base_shape, dtype)))
    assert bits_identical(lk.leaky_relu(x, 0.25), reference.leaky_relu(x, 0.25))
    assert bits_identical(
        lk.leaky_relu_backward(g, x, 0.25), reference.leaky_relu_backward(g, x, 0.25)
    )


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_large_backward_from_output_equals_backward_from_input(make_operand, dtype, n_threads):
    grad_output, x = make_operand((301, 219), dtype), make_operand((301, 219), dtype)
    y = reference.leaky_relu(x, 0.2)
    result = lk.leaky_relu_backward(grad_output, y, 0.2, x_is_output=True, num_threads=n_threads)
    assert bits_equal(result, reference.leaky_relu_backward(grad_output, x, 0.2))


@pytest.mark.parametrize(
    "slope",
    [np.float32(0.1), np.float64(-0.5), 2, np.int64(-1), np.uint8(3)],
    ids=lambda slope: f"{type(slope).__name__}({slope})",
)
def test_slope_of_any_real_type_acts_as_its_float_value(make_operand, slope):
    x = make_operand(1000, np.float64)
    assert bits_equal(lk.leaky_relu(x, slope), lk.leaky_relu(x, float(slope)))
    assert bits_equal(lk.leaky_relu(x, slope), reference.leaky_relu(x, float(slope)))


@pytest.fixture(params=[STREAM_ALWAYS, STREAM_PAGES], ids=["lines", "pages"])
def streaming_stores(request):
    """Non-temporal stores for every separate output, however small, line by
    line or four pages at a time. By default only large outputs take that path."""
    with kernel_choices(kernels, **request.param):
        yield


@pytest.mark.parametrize("n_threads", [1, 3])
# Sizes with every remainder around the 16- and 32-byte store width.
@pytest.mark.parametrize("size", [1, 9, 1001, 3 * PARALLEL_MIN_SIZE + 7])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_streaming_stores_match_reference(streaming_stores, make_operand, dtype, size, n_threads):
    grad_output, x = make_operand(size, dtype), make_operand(size, dtype)
    expected = reference.leaky_relu(x, 0.1)
    assert bits_equal(lk.leaky_relu(x, 0.1, num_threads=n_threads), expected)
    # One element into a buffer: the output's alignment differs from the input's.
    out = np.empty(size + 1, dtype=dtype)[1:]
    result = lk.leaky_relu_backward(grad_output, x, 0.1, out=out, num_threads=n_threads)
    assert result is out
    assert bits_equal(out, reference.leaky_relu_backward(grad_output, x, 0.1))
    # In place never streams; it must be right all the same.
    assert bits_equal(lk.leaky_relu(x, 0.1, out=x, num_threads=n_threads), expected)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("with_out", [False, True], ids=["new", "out"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_overflow_to_infinity_is_silent_in_every_dtype(dtype, with_out):
    # A slope above one takes the most negative finite values past the
    # dtype's range: the result is -inf, as in the oracle. float32 and
    # float64 overflow inside the kernel without a word; float16's final
    # rounding must not warn either, or a valid call fails under -W error
    # or np.errstate(over="raise").
    x = np.array([np.finfo(dtype).min, -1.0, 2.0], dtype=dtype)
    out = np.empty_like(x) if with_out else None
    result = lk.leaky_relu(x, 3.0, out=out)
    assert bits_equal(result, np.array([-np.inf, -3.0, 2.0], dtype=dtype))
    grad = lk.leaky_relu_backward(x, np.full_like(x, -1.0), 3.0, out=out)
    assert bits_equal(grad, np.array([-np.inf, -3.0, 6.0], dtype=dtype))
