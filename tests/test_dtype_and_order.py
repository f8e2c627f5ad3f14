"""What a call returns: its dtype, its type for scalars and lists, and its
memory order."""

import numpy as np
import pytest

import leaky_kernel as lk
from leaky_kernel import reference
from leaky_kernel._testing import bits_equal

IMPLEMENTATIONS = [pytest.param(reference, id="reference"), pytest.param(lk, id="compiled")]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "x_dtype, result_dtype",
    [
        ("float16", "float16"),
        ("float32", "float32"),
        ("float64", "float64"),
        # Byte-swapped input, native result.
        (">f2", "float16"),
        (">f4", "float32"),
        (">f8", "float64"),
        # As NumPy's float functions do: bool and integers give float64.
        ("bool", "float64"),
        ("int8", "float64"),
        ("uint8", "float64"),
        ("int32", "float64"),
        ("int64", "float64"),
        ("uint64", "float64"),
    ],
)
def test_forward_result_dtype(impl, x_dtype, result_dtype):
    x = np.array([[-2, 0], [1, 3]]).astype(x_dtype)
    result = impl.leaky_relu(x, 0.5)
    # dtype equality includes byte order: the result is native.
    assert result.dtype == np.dtype(result_dtype)
    x_compute = x.astype(result_dtype)
    assert bits_equal(result, np.where(x_compute > 0, x_compute, 0.5 * x_compute))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "grad_dtype, x_dtype, result_dtype",
    [
        ("float16", "float32", "float32"),
        ("float32", "float16", "float32"),
        ("float16", "float16", "float16"),
        ("float32", "float64", "float64"),
        # np.result_type: float16 holds int8 and bool, float32 does not hold int32.
        ("float16", "int8", "float16"),
        ("bool", "float16", "float16"),
        ("float32", "int32", "float64"),
        ("int32", "float32", "float64"),
        ("bool", "bool", "float64"),
        ("uint64", "int64", "float64"),
        (">f4", ">f4", "float32"),
        (">f4", "float64", "float64"),
    ],
)
def test_backward_promotes_grad_output_and_x_together(impl, grad_dtype, x_dtype, result_dtype):
    grad_output = np.array([1.5, -2.0, 3.0, -1.0]).astype(grad_dtype)
    x = np.array([-1.0, 0.0, 2.0, 5.0]).astype(x_dtype)
    result = impl.leaky_relu_backward(grad_output, x, 0.5)
    assert result.dtype == np.dtype(result_dtype)
    g, x_ = grad_output.astype(result_dtype), x.astype(result_dtype)
    assert bits_equal(result, np.where(x_ > 0, g, 0.5 * g))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_lists_and_python_scalars_are_accepted(impl):
    assert bits_equal(
        impl.leaky_relu([[-1, 2], [3, -4]], 0.5), np.array([[-0.5, 2.0], [3.0, -2.0]])
    )
    assert bits_equal(impl.leaky_relu([True, False]), np.array([1.0, 0.0]))
    assert bits_equal(impl.leaky_relu_backward([2.0, 2.0], [-1, 1], 0.5), np.array([1.0, 2.0]))
    grad = impl.leaky_relu_backward(2, -3.0, 0.5)
    assert type(grad) is np.float64
    assert grad == 1.0


@pytest.mark.parametrize("shape", [(37, 11), (5, 7, 9), (301, 219)], ids=["2d", "3d", "parallel"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
@pytest.mark.parametrize("order", ["C", "F"])
def test_result_keeps_the_memory_order_of_x(make_operand, order, dtype, shape):
    x = np.asarray(make_operand(shape, dtype), order=order)
    result = lk.leaky_relu(x)
    assert result.flags.c_contiguous == (order == "C")
    assert result.flags.f_contiguous == (order == "F")


@pytest.mark.parametrize("shape", [(37, 11), (301, 219)], ids=["serial", "parallel"])
@pytest.mark.parametrize("grad_order, x_order", [("C", "F"), ("F", "C")])
def test_backward_result_keeps_the_memory_order_of_grad_output(
    make_operand, grad_order, x_order, shape
):
    grad_output = np.asarray(make_operand(shape, np.float32), order=grad_order)
    x = np.asarray(make_operand(shape, np.float32), order=x_order)
    result = lk.leaky_relu_backward(grad_output, x)
    assert result.flags.c_contiguous == (grad_order == "C")
    assert result.flags.f_contiguous == (grad_order == "F")
    assert bits_equal(result, reference.leaky_relu_backward(grad_output, x))


# Layouts neither C nor F: the README promises the memory order np.empty_like gives.
OTHER_LAYOUTS = {
    "permuted_3d": lambda a: a.transpose(1, 2, 0),
    "stepped_2d": lambda a: a[::2, ::-3, 0],
    "unmergeable_3d": lambda a: a[::2, ::3, ::2],
    "unmergeable_3d_permuted": lambda a: a[::2, ::3, ::2].transpose(2, 0, 1),
}


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("view", OTHER_LAYOUTS.values(), ids=OTHER_LAYOUTS.keys())
def test_result_of_other_layouts_is_laid_out_as_empty_like(make_operand, view, direction):
    x = view(make_operand((12, 18, 10), np.float64))
    if direction == "forward":
        result = lk.leaky_relu(x)
    else:
        result = lk.leaky_relu_backward(x, np.ascontiguousarray(x))
    assert result.strides == np.empty_like(x).strides
