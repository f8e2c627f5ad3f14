"""Successful calls never write to their inputs, whatever their layout.

The whole memory an input lives in is compared, not just the input's own
elements, so a write into the gaps of a strided view is caught too.
"""

import numpy as np
import pytest

import leaky_kernel as lk
from leaky_kernel._testing import bits_equal

# 3-d, so that stepped layouts go through the C-order fallback.
SHAPES = [pytest.param((4, 5, 6), id="serial"), pytest.param((33, 34, 35), id="parallel")]
# input dtype: result dtype
RESULT_DTYPES = {
    np.dtype(np.float16): np.float16,
    np.dtype(np.float32): np.float32,
    np.dtype(">f8"): np.float64,
    np.dtype(np.int32): np.float64,
}
DTYPES = list(RESULT_DTYPES)


def owner_of(a):
    """The array that owns a's memory (the buffer a view was cut from)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


class Snapshot:
    """Copies of arrays and of the memory they live in."""

    def __init__(self, *arrays):
        self._arrays = arrays
        self._copies = [(a.copy(), owner_of(a).copy()) for a in arrays]

    def assert_unchanged(self):
        for a, (a_before, owner_before) in zip(self._arrays, self._copies):
            assert bits_equal(a, a_before)
            assert bits_equal(owner_of(a), owner_before)


@pytest.mark.parametrize("with_out", [False, True], ids=["new", "out"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_leaves_x_unchanged(make_operand, layout, dtype, shape, with_out):
    x = layout(make_operand(shape, dtype))
    snapshot = Snapshot(x)
    out = np.empty(shape, RESULT_DTYPES[dtype]) if with_out else None
    lk.leaky_relu(x, -0.3, out=out, num_threads=2)
    snapshot.assert_unchanged()


@pytest.mark.parametrize("x_is_output", [False, True])
@pytest.mark.parametrize("with_out", [False, True], ids=["new", "out"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_backward_leaves_grad_output_and_x_unchanged(
    make_operand, layout, dtype, shape, with_out, x_is_output
):
    grad_output = layout(make_operand(shape, dtype))
    x = layout(make_operand(shape, dtype))
    snapshot = Snapshot(grad_output, x)
    out = np.empty(shape, RESULT_DTYPES[dtype]) if with_out else None
    lk.leaky_relu_backward(grad_output, x, 0.3, x_is_output=x_is_output, out=out, num_threads=2)
    snapshot.assert_unchanged()
