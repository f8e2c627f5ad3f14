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
    """The oracle of ``leaky_kernel.leaky_relu``: ``np.where(x > 0, x, slope * x)``
    in the compute dtype, rounded once to the result dtype.

    Parameters
    ----------
    x : array_like
        As for ``leaky_kernel.leaky_relu``.
    negative_slope : float or array_like, default 0.01
        As for ``leaky_kernel.leaky_relu``.
    alpha : float or array_like, optional
        Keyword alias of negative_slope.

    Returns
    -------
    y : ndarray
        A NumPy scalar for 0-d input.

    Raises
    ------
    TypeError
        As ``leaky_kernel.leaky_relu`` raises it.
    ValueError
        As ``leaky_kernel.leaky_relu`` raises it.

    See Also
    --------
    leaky_kernel.leaky_relu : The compiled function, equal bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> import leaky_kernel as lk
    >>> from leaky_kernel import reference
    >>> x = np.array([-0.0, -1e-45, np.nan, -np.inf], dtype=np.float32)
    >>> reference.leaky_relu(x, 0.1)
    array([ -0.,  -0.,  nan, -inf], dtype=float32)
    >>> np.array_equal(lk.leaky_relu(x, 0.1), reference.leaky_relu(x, 0.1), equal_nan=True)
    True
    """
    x, slope, dtype = forward_operands(x, negative_slope, alpha)
    return _where_positive(x, x, slope, dtype)


def leaky_relu_backward(grad_output, x, negative_slope=DEFAULT_SLOPE, *, alpha=None, x_is_output=False):
    """The oracle of ``leaky_kernel.leaky_relu_backward``:
    ``np.where(x > 0, grad_output, slope * grad_output)``.

    Parameters
    ----------
    grad_output, x : array_like
        As for ``leaky_kernel.leaky_relu_backward``.
    negative_slope : float or array_like, default 0.01
        As for ``leaky_kernel.leaky_relu_backward``.
    alpha : float or array_like, optional
        Keyword alias of negative_slope.
    x_is_output : bool, default False
        As for ``leaky_kernel.leaky_relu_backward``.

    Returns
    -------
    grad_input : ndarray
        A NumPy scalar for 0-d inputs.

    Raises
    ------
    TypeError
        As ``leaky_kernel.leaky_relu_backward`` raises it.
    ValueError
        As ``leaky_kernel.leaky_relu_backward`` raises it.

    See Also
    --------
    leaky_kernel.leaky_relu_backward : The compiled function, equal bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> from leaky_kernel import reference
    >>> reference.leaky_relu_backward(np.ones(3), np.array([-1.0, 0.0, 1.0]), 0.1)
    array([0.1, 0.1, 1. ])
    """
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
# bit order within each byte (format and rules: _rules.py).


def leaky_relu_forward_mask(x, negative_slope=DEFAULT_SLOPE, *, alpha=None):
    """The oracle of ``leaky_kernel.leaky_relu_forward_mask``.

    Parameters
    ----------
    x : array_like
        As for ``leaky_kernel.leaky_relu_forward_mask``.
    negative_slope : float or array_like, default 0.01
        As for ``leaky_kernel.leaky_relu_forward_mask``.
    alpha : float or array_like, optional
        Keyword alias of negative_slope.

    Returns
    -------
    y : ndarray
        ``leaky_relu(x, negative_slope)``.
    mask : ndarray of uint8
        ``np.packbits((x > 0).reshape(-1), bitorder="little")``.

    Raises
    ------
    TypeError
        As ``leaky_kernel.leaky_relu`` raises it.
    ValueError
        As ``leaky_kernel.leaky_relu`` raises it.

    See Also
    --------
    leaky_kernel.leaky_relu_forward_mask : The compiled function, equal bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> from leaky_kernel import reference
    >>> reference.leaky_relu_forward_mask(np.array([-1.0, 2.0, 3.0]), 0.5)
    (array([-0.5,  2. ,  3. ]), array([6], dtype=uint8))
    """
    x, slope, dtype = forward_operands(x, negative_slope, alpha)
    mask = np.packbits((np.asarray(x) > 0).reshape(-1), bitorder="little")
    return _where_positive(x, x, slope, dtype), mask


def leaky_relu_backward_mask(grad_output, mask, negative_slope=DEFAULT_SLOPE, *, alpha=None):
    """The oracle of ``leaky_kernel.leaky_relu_backward_mask``.

    Parameters
    ----------
    grad_output : array_like
        As for ``leaky_kernel.leaky_relu_backward_mask``.
    mask : ndarray of uint8
        As `leaky_relu_forward_mask` returns it.
    negative_slope : float or array_like, default 0.01
        The forward's slope.
    alpha : float or array_like, optional
        Keyword alias of negative_slope.

    Returns
    -------
    grad_input : ndarray
        Of grad_output's result dtype and shape.

    Raises
    ------
    TypeError
        For a mask that is not uint8, and as ``leaky_kernel.leaky_relu_backward`` raises it.
    ValueError
        For a mask of another length, and as ``leaky_kernel.leaky_relu_backward`` raises it.

    See Also
    --------
    leaky_kernel.leaky_relu_backward_mask : The compiled function, equal bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> from leaky_kernel import reference
    >>> mask = np.array([6], dtype=np.uint8)
    >>> reference.leaky_relu_backward_mask(np.ones(3), mask, 0.5)
    array([0.5, 1. , 1. ])
    """
    grad_output, mask, slope, dtype = backward_mask_operands(
        grad_output, mask, negative_slope, alpha
    )
    positive = np.unpackbits(mask, count=grad_output.size, bitorder="little")
    return _where_positive(grad_output, positive.reshape(grad_output.shape), slope, dtype)
