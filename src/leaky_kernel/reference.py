"""The NumPy oracle: what leaky_kernel computes, written to be obviously right.

Same signatures and dtype rules as the package's functions, without out= and
num_threads=. Every compiled path is tested against these bit for bit.
"""
import numpy as np

from ._validation import DEFAULT_SLOPE, backward_operands, compute_dtype, forward_operands

__all__ = ["leaky_relu", "leaky_relu_backward"]


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
    value = value.astype(compute)
    sign = sign.astype(compute)
    with np.errstate(all="ignore"):
        slope = compute.type(slope)
        result = np.where(sign > 0, value, slope * value).astype(dtype)
    return result[()] if result.ndim == 0 else result
