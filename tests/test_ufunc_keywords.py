"""dtype=, casting=, order=, subok=, out= of other dtypes and where= as any
array-like: each as NumPy's own ufuncs take it.

NumPy is the judge of what is accepted (np.exp, np.positive or
np.multiply, called with the same keywords); the oracle is the judge of the
values, computed in the dtype the call computes in.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._testing import bits_equal

FLOATS = [np.dtype(t) for t in (np.float16, np.float32, np.float64)]
INPUT_DTYPES = FLOATS + [np.dtype(t) for t in (np.int8, np.int32, np.int64, np.bool_)]
OUT_DTYPES = FLOATS + [np.dtype(t) for t in (np.complex64, np.int32, np.uint8)]
CASTINGS = ["no", "equiv", "safe", "same_kind", "unsafe"]
SLOPE = -0.375


def numpy_raises(call):
    """The exception type NumPy raises, or None."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the type is what is compared
        return type(error)
    return None


def operand(dtype, shape=(5, 7), seed=0):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * 40
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype)


def natural_result(dtype):
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


# -------------------------------------------------------------------- dtype=


@given(x_dtype=st.sampled_from(INPUT_DTYPES), dtype=st.sampled_from(FLOATS),
       casting=st.sampled_from(CASTINGS))
def test_dtype_computes_and_returns_in_that_dtype_under_numpys_casting(x_dtype, dtype, casting):
    x = operand(x_dtype)
    expected_error = numpy_raises(lambda: np.positive(x, dtype=dtype, casting=casting))
    if expected_error is not None:
        with pytest.raises(TypeError, match="x of dtype"):
            lk.leaky_relu(x, SLOPE, dtype=dtype, casting=casting)
        return
    result = lk.leaky_relu(x, SLOPE, dtype=dtype, casting=casting)
    assert result.dtype == np.positive(x, dtype=dtype, casting=casting).dtype == dtype
    with np.errstate(over="ignore"):
        assert bits_equal(result, reference.leaky_relu(x.astype(dtype), SLOPE))


@given(g_dtype=st.sampled_from(INPUT_DTYPES), x_dtype=st.sampled_from(INPUT_DTYPES),
       dtype=st.sampled_from(FLOATS), casting=st.sampled_from(CASTINGS),
       slope_array=st.booleans())
def test_backward_dtype_casts_both_operands(g_dtype, x_dtype, dtype, casting, slope_array):
    g, x = operand(g_dtype, seed=1), operand(x_dtype, seed=2)
    slope = np.linspace(-1, 1, 7) if slope_array else SLOPE
    expected_error = numpy_raises(lambda: np.multiply(g, x, dtype=dtype, casting=casting))
    if expected_error is not None:
        with pytest.raises(TypeError, match="cannot be cast"):
            lk.leaky_relu_backward(g, x, slope, dtype=dtype, casting=casting)
        return
    result = lk.leaky_relu_backward(g, x, slope, dtype=dtype, casting=casting)
    assert result.dtype == dtype
    with np.errstate(over="ignore"):
        expected = reference.leaky_relu_backward(g.astype(dtype), x.astype(dtype), slope)
    assert bits_equal(result, expected)


@pytest.mark.parametrize("dtype", [np.int32, "bogus", ">f4", np.complex128, np.longdouble, bool])
def test_dtypes_numpy_or_the_kernels_refuse_are_type_errors(dtype):
    x = operand(np.float32)
    error = numpy_raises(lambda: np.positive(x, dtype=dtype))
    assert error is None or issubclass(error, TypeError)
    with pytest.raises(TypeError, match="dtype must be float16, float32 or float64"):
        lk.leaky_relu(x, dtype=dtype)


def test_dtype_with_a_container_keeps_the_container():
    pd = pytest.importorskip("pandas")
    x = operand(np.float64)
    frame = pd.DataFrame(x)
    result = lk.leaky_relu(frame, SLOPE, dtype=np.float16)
    assert isinstance(result, pd.DataFrame) and (result.dtypes == np.float16).all()
    with np.errstate(over="ignore"):
        assert bits_equal(result.to_numpy(), reference.leaky_relu(x.astype(np.float16), SLOPE))


# ---------------------------------------------------------------------- out=


@given(x_dtype=st.sampled_from(FLOATS), out_dtype=st.sampled_from(OUT_DTYPES),
       casting=st.sampled_from(CASTINGS), slope_array=st.booleans(),
       where=st.sampled_from([True, [True, False] * 3 + [True]]))
def test_out_of_any_dtype_the_result_casts_to(x_dtype, out_dtype, casting, slope_array, where):
    x = operand(x_dtype)
    slope = np.linspace(-1, 1, 7) if slope_array else SLOPE
    out = np.full(x.shape, 3, out_dtype)
    if numpy_raises(lambda: np.positive(x, out=out.copy(), casting=casting)) is not None:
        with pytest.raises(TypeError, match="out of dtype"):
            lk.leaky_relu(x, slope, out=out, casting=casting, where=where)
        assert bits_equal(out, np.full(x.shape, 3, out_dtype))
        return
    assert lk.leaky_relu(x, slope, out=out, casting=casting, where=where) is out
    # The result is rounded to its own dtype first, then cast, as NumPy's output casts go.
    with np.errstate(over="ignore", invalid="ignore"):
        expected = reference.leaky_relu(x, slope).astype(out_dtype)
    expected = np.where(np.asarray(where), expected, np.full(x.shape, 3, out_dtype))
    assert bits_equal(out, expected)


@pytest.mark.parametrize("out_dtype", [np.float16, np.float64])
def test_mask_functions_take_an_out_of_another_float_dtype(out_dtype):
    x = operand(np.float32)
    out = np.zeros(x.shape, out_dtype)
    y, mask = lk.leaky_relu_forward_mask(x, SLOPE, out=out)
    assert y is out
    assert bits_equal(out, reference.leaky_relu(x, SLOPE).astype(out_dtype))
    grad = np.zeros(x.shape, out_dtype)
    assert lk.leaky_relu_backward_mask(x, mask, SLOPE, out=grad) is grad
    assert bits_equal(grad, reference.leaky_relu_backward(x, x, SLOPE).astype(out_dtype))


# -------------------------------------------------------------------- order=


LAYOUTS = {
    "C": lambda a: np.ascontiguousarray(a),
    "F": lambda a: np.asfortranarray(a),
    "strided": lambda a: np.repeat(a, 2, axis=1)[:, ::2],
    "transposed": lambda a: np.ascontiguousarray(a.T).T,
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("order", ["K", "A", "C", "F", None, "c"])
@pytest.mark.parametrize("slope", [SLOPE, np.linspace(-1, 1, 7)], ids=["one-slope", "array"])
def test_order_lays_out_a_new_result_as_numpy_does(layout, order, slope):
    x = LAYOUTS[layout](operand(np.float32))
    expected = np.exp(x, order=order)
    for result in (lk.leaky_relu(x, slope, order=order),
                   lk.leaky_relu_backward(x, x, slope, order=order)):
        assert result.flags.c_contiguous == expected.flags.c_contiguous
        assert result.flags.f_contiguous == expected.flags.f_contiguous
        assert bits_equal(result, reference.leaky_relu(x, slope))


# -------------------------------------------------------------------- subok=


class Tagged(np.ndarray):
    """An ndarray subclass."""


@pytest.mark.parametrize("subok", [True, False])
def test_subok_as_numpy_does(subok):
    x = operand(np.float64).view(Tagged)
    assert type(lk.leaky_relu(x, SLOPE, subok=subok)) is type(np.exp(x, subok=subok))
    assert type(lk.leaky_relu_backward(x, x, SLOPE, subok=subok)) is type(np.exp(x, subok=subok))


# -------------------------------------------------------------------- where=


@pytest.mark.parametrize(
    "where",
    [[1, 0, 1, 0, 1, 0, 1], [0.5, 0.0, 2.0, 0.0, 0.0, 1.0, 0.0], False, None, 1, np.True_],
    ids=repr,
)
def test_where_takes_what_numpy_takes(where):
    x = operand(np.float64)
    expected = np.full(x.shape, 9.0)
    np.positive(reference.leaky_relu(x, SLOPE), out=expected, where=where)
    out = np.full(x.shape, 9.0)
    assert lk.leaky_relu(x, SLOPE, out=out, where=where) is out
    assert bits_equal(out, expected)


# -------------------------------------------------- keywords with bad values


@pytest.mark.parametrize(
    "keywords, message",
    [
        ({"casting": "bogus"}, "casting must be one of"),
        ({"casting": None}, "casting must be a str"),
        ({"order": "X"}, "order must be one of"),
        ({"order": 1}, "order must be a str or None"),
        ({"subok": 1}, "subok must be a bool"),
        ({"subok": None}, "subok must be a bool"),
        ({"where": np.ones((5, 7), np.float32)}, "where must be True or an array of bools"),
    ],
    ids=repr,
)
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_bad_keywords_raise_numpys_error_type_and_change_nothing(keywords, message, direction):
    x = operand(np.float32)
    out = np.full(x.shape, 9.0, np.float32)
    expected_error = numpy_raises(lambda: np.exp(x, out=out.copy(), **keywords))
    assert expected_error is not None
    with pytest.raises(expected_error, match=message):
        if direction == "forward":
            lk.leaky_relu(x, SLOPE, out=out, **keywords)
        else:
            lk.leaky_relu_backward(x, x, SLOPE, out=out, **keywords)
    assert bits_equal(out, np.full(x.shape, 9.0, np.float32))


def test_no_keywords_are_the_defaults_checked():
    """A call without ufunc keywords skips their checks: it must get what
    the checks make of the defaults."""
    from leaky_kernel._validation import UFUNC_KEYWORDS, check_ufunc_keywords

    assert check_ufunc_keywords("f", {}) == check_ufunc_keywords("f", dict(UFUNC_KEYWORDS))
