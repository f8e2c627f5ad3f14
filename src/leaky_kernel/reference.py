"""The NumPy oracle: what leaky_kernel computes, written to be obviously right.

Same signatures and dtype rules as the package's functions, without out=, where= and
num_threads=. Every compiled path is tested against these bit for bit.
"""
import numpy as np

from ._validation import (
    DEFAULT_SLOPE,
    backward_mask_operands,
    backward_operands,
    compute_dtype,
    forward_operands,
)

__all__ = [
    "leaky_relu",
    "leaky_relu_backward",
    "leaky_relu_forward_mask",
    "leaky_relu_backward_mask",
]


def leaky_relu(x, negative_slope=DEFAULT_SLOPE, *, alpha=None):
    x, slope, dtype = forward_operands(x, negative_slope, alpha)
    return _where_positive(x, x, slope, dtype)


def leaky_relu_backward(grad_output, x, negative_slope=DEFAULT_SLOPE, *, alpha=None, x_is_output=False):
    grad_output, x, slope, dtype = backward_operands(
        grad_output, x, negative_slope, alpha, x_is_output
    )
    return _where_positive(grad_output, x, slope, dtype)


def _where_positive(value, sign, slope, dtype):
    """value where sign > 0, else slope * value, computed in the compute dtype."""
    compute = compute_dtype(dtype)
    value = np.asarray(value).astype(compute)
    sign = np.asarray(sign).astype(compute)
    with np.errstate(all="ignore"):
        slope = np.asarray(slope).astype(compute)
        result = np.where(sign > 0, value, slope * value).astype(dtype)
    return result[()] if result.ndim == 0 else result


# Sign masks: the packed bits of x > 0, in C order, little-endian
# bit order within each byte (format and rules: _validation.py).


def leaky_relu_forward_mask(x, negative_slope=DEFAULT_SLOPE, *, alpha=None):
    x, slope, dtype = forward_operands(x, negative_slope, alpha)
    mask = np.packbits((np.asarray(x) > 0).reshape(-1), bitorder="little")
    return _where_positive(x, x, slope, dtype), mask


def leaky_relu_backward_mask(grad_output, mask, negative_slope=DEFAULT_SLOPE, *, alpha=None):
    grad_output, mask, slope, dtype = backward_mask_operands(
        grad_output, mask, negative_slope, alpha
    )
    positive = np.unpackbits(mask, count=grad_output.size, bitorder="little")
    return _where_positive(grad_output, positive.reshape(grad_output.shape), slope, dtype)
