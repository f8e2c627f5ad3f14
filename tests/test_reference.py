"""The oracle, and the compiled functions with it, pinned to worked examples.

Every other test compares the compiled kernels with `leaky_kernel.reference`,
so the oracle itself is pinned here to values worked out by hand (the examples
of the PyTorch and Keras documentation and of the README) and to the semantics
at the edges: zero and signed zero, NaN, infinities, slopes above one or below
zero, and rounding in float32 and float16.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._testing import bits_equal

IMPLEMENTATIONS = [pytest.param(reference, id="reference"), pytest.param(lk, id="compiled")]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]

# Every float16 bit pattern: zeros, subnormals, normals, infinities and NaNs
# (signalling NaNs among them, so NumPy arithmetic on it runs under errstate).
ALL_FLOAT16 = np.arange(2**16, dtype=np.uint16).view(np.float16)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "x, kwargs, expected",
    [
        (0, {}, 0.0),
        (1, {}, 1.0),
        (-1, {}, -0.01),
        (-2, {"alpha": 0.1}, -0.2),
        (-2.0, {"negative_slope": 0.1}, -0.2),
    ],
)
def test_scalar_worked_examples(impl, x, kwargs, expected):
    result = impl.leaky_relu(x, **kwargs)
    # Python scalars compute in float64 and give a NumPy scalar, as ufuncs do.
    assert type(result) is np.float64
    assert result == expected


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "x, expected_type",
    [
        (True, np.float64),
        (np.int8(-3), np.float64),
        (np.float16(-1), np.float16),
        (np.float32(-1), np.float32),
        (np.array(-1.0), np.float64),
        (np.array(-1.0, dtype=np.float32), np.float32),
    ],
)
def test_scalars_and_0d_arrays_give_numpy_scalars(impl, x, expected_type):
    assert type(impl.leaky_relu(x)) is expected_type
    assert type(impl.leaky_relu_backward(x, x)) is expected_type


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_default_slope_worked_example(impl):
    x = np.array([[-1.0, 2.0, -0.5, 3.0]])
    # Multiplying by -1 and -0.5 is exact, so the slope 0.01 shows up exactly.
    expected = np.array([[-0.01, 2.0, -0.005, 3.0]])
    assert_array_equal(impl.leaky_relu(x), expected, strict=True)
    expected_grad = np.array([[0.01, 1.0, 0.01, 1.0]])
    assert_array_equal(impl.leaky_relu_backward(np.ones_like(x), x), expected_grad, strict=True)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slope_point_one_worked_example(impl, dtype):
    # The README's example. 0.1 is inexact in binary, hence one ulp of slack.
    x = np.array([-2.0, 0.0, 1.5, -3.0], dtype=dtype)
    result = impl.leaky_relu(x, 0.1)
    assert result.dtype == dtype
    assert_allclose(result, [-0.2, 0.0, 1.5, -0.3], rtol=np.finfo(dtype).eps, atol=0)
    grad = impl.leaky_relu_backward(np.ones_like(x), x, alpha=0.1)
    assert_array_equal(grad, np.array([0.1, 0.1, 1.0, 0.1], dtype=dtype), strict=True)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("slope", [0.5, 0.0, -0.5])
@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_signed_zero_takes_the_slope_branch(impl, dtype, slope, zero):
    # slope * zero carries the XOR of the two signs (IEEE 754); keeping x
    # instead would keep zero's sign, which differs whenever slope < 0.
    x = np.array([zero], dtype=dtype)
    result = impl.leaky_relu(x, slope)
    assert result[0] == 0
    assert np.signbit(result[0]) == (np.signbit(zero) != np.signbit(slope))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_gradient_at_zero_is_the_slope(impl, dtype):
    # PyTorch, Keras 3 and JAX use the slope at 0 (TensorFlow 1 used 1).
    x = np.array([0.0, -0.0], dtype=dtype)
    grad = impl.leaky_relu_backward(np.ones_like(x), x, 0.25)
    assert_array_equal(grad, np.array([0.25, 0.25], dtype=dtype), strict=True)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_nan_stays_nan_and_takes_the_slope_in_the_gradient(impl, dtype):
    x = np.array([np.nan, -np.nan, 1.0], dtype=dtype)
    assert bits_equal(np.isnan(impl.leaky_relu(x, 0.3)), np.array([True, True, False]))
    # NaN is not > 0, so its gradient is slope * grad_output.
    grad = impl.leaky_relu_backward(np.full(3, 2.0, dtype=dtype), x, 0.25)
    assert_array_equal(grad, np.array([0.5, 0.5, 2.0], dtype=dtype), strict=True)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    "slope, expected",
    [
        (0.0, [np.inf, np.nan]),  # 0 * -inf is NaN, as in PyTorch and NumPy
        (0.5, [np.inf, -np.inf]),
        (-0.5, [np.inf, np.inf]),
    ],
)
def test_infinities(impl, dtype, slope, expected):
    x = np.array([np.inf, -np.inf], dtype=dtype)
    assert_array_equal(impl.leaky_relu(x, slope), np.array(expected, dtype=dtype), strict=True)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "slope, expected, expected_grad",
    [
        # max(x, slope * x) would give [-1, 6] for a slope above one.
        (3.0, [-3.0, 2.0], [3.0, 1.0]),
        # A negative slope reflects negative inputs; its gradient is negative.
        (-0.5, [0.5, 2.0], [-0.5, 1.0]),
    ],
)
def test_is_a_select_not_a_max(impl, slope, expected, expected_grad):
    x = np.array([-1.0, 2.0])
    assert_array_equal(impl.leaky_relu(x, slope), np.array(expected), strict=True)
    grad = impl.leaky_relu_backward(np.ones_like(x), x, slope)
    assert_array_equal(grad, np.array(expected_grad), strict=True)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_float32_rounds_the_slope_to_float32_once(impl):
    # The example: a float32 call multiplies by float32(slope).
    result = impl.leaky_relu(np.float32(-1), 0.1)
    assert type(result) is np.float32
    assert result == np.float32(-1) * np.float32(0.1)
    # At -9 (and at the subnormal) rounding slope * x from float64 instead
    # gives another float32, so this array tells the two roundings apart.
    x = np.array([-1.0, -9.0, -3e-39, 7.0], dtype=np.float32)
    once = np.where(x > 0, x, np.float32(0.1) * x)
    from_float64 = np.where(x > 0, x, 0.1 * x.astype(np.float64)).astype(np.float32)
    result = impl.leaky_relu(x, 0.1)
    assert bits_equal(result, once)
    assert not bits_equal(result, from_float64)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("slope", [0.01, 0.1, -0.3, 0.7, 1e-6])
def test_float16_is_computed_in_float32_and_rounded_once(impl, slope):
    x32 = ALL_FLOAT16.astype(np.float32)
    with np.errstate(all="ignore"):
        expected = np.where(x32 > 0, x32, np.float32(slope) * x32).astype(np.float16)
        # These slopes are inexact in float16, so computing in float16 (slope
        # rounded to float16) differs somewhere: the check below can tell.
        in_float16 = np.where(ALL_FLOAT16 > 0, ALL_FLOAT16, np.float16(slope) * ALL_FLOAT16)
    result = impl.leaky_relu(ALL_FLOAT16, slope)
    assert bits_equal(result, expected)
    assert not bits_equal(result, in_float16)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("slope", [0.01, -0.3])
def test_float16_gradient_is_computed_in_float32_and_rounded_once(impl, slope):
    grad_output, x = ALL_FLOAT16, ALL_FLOAT16[::-1]  # every value, both signs of x
    g32, x32 = grad_output.astype(np.float32), x.astype(np.float32)
    with np.errstate(all="ignore"):
        expected = np.where(x32 > 0, g32, np.float32(slope) * g32).astype(np.float16)
    assert bits_equal(impl.leaky_relu_backward(grad_output, x, slope), expected)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.int32, np.uint64])
def test_bool_and_integers_are_computed_in_float64(impl, dtype):
    x = np.array([-3, 0, 5, 1], dtype=np.int64).astype(dtype)
    x64 = x.astype(np.float64)
    # -3 * 0.1 is -0.30000000000000004 in float64, not float32(-0.3).
    expected = np.where(x64 > 0, x64, 0.1 * x64)
    assert bits_equal(impl.leaky_relu(x, 0.1), expected)
