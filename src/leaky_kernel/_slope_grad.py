"""leaky_relu_slope_grad: the gradient with respect to a slope array (PReLU)."""
import numbers

import numpy as np

from ._rules import result_dtype
from ._validation import as_array, broadcast_shape, broadcasts_to, describe


def leaky_relu_slope_grad(grad_output, x, slope_shape):
    """Gradient of ``leaky_relu(x, slope)`` with respect to a slope of `slope_shape`.

    The sum of ``grad_output * x`` over the elements where x is not > 0 (the
    elements the slope scales, NaN included), over every axis along which
    the slope broadcasts. grad_output and x broadcast together, and
    `slope_shape` must broadcast to their shape. The products are formed in
    float64 (exact for float32 and float16 inputs) and summed in float64 by
    NumPy's pairwise summation, then rounded once to the result dtype of
    grad_output and x (the dtype rules of `leaky_relu_backward`). Against a
    float64 reference that sums the same products in another order, the
    float64 sums differ by at most about ``n * 2**-53 * sum(|terms|)`` for n
    terms per slope; after rounding to float32 they almost always agree
    exactly.

    Masked arrays: as ``np.ma.sum`` does, the masked elements add nothing,
    and the result is a masked array in which a slope none of whose terms is
    visible is masked.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to the forward's output.
    x : array_like
        The forward's input.
    slope_shape : tuple of int
        The slope array's shape; it must broadcast to the shape of
        grad_output and x.

    Returns
    -------
    grad_slope : ndarray
        Of `slope_shape`, in the result dtype of grad_output and x.

    Raises
    ------
    TypeError
        For an unsupported dtype, or a slope_shape that is not a tuple of ints.
    ValueError
        For shapes that do not broadcast.

    See Also
    --------
    PReLU : The layer that learns the slopes with it.
    leaky_relu_backward : The gradient with respect to x.

    Examples
    --------
    >>> import numpy as np
    >>> import leaky_kernel as lk
    >>> x = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]])
    >>> lk.leaky_relu_slope_grad(np.ones_like(x), x, (2, 1))  # one slope per row
    array([[-4.],
           [-5.]])
    """
    masks = [np.ma.getmask(a) for a in (grad_output, x)]
    grad_output = as_array(grad_output, "grad_output")  # a masked array's data
    x = as_array(x, "x")
    result_dtype(grad_output.dtype, "grad_output")
    result_dtype(x.dtype, "x")
    dtype = result_dtype(np.result_type(grad_output.dtype, x.dtype), "grad_output and x")
    shape = broadcast_shape(grad_output, x)
    slope_shape = _check_slope_shape(slope_shape, shape)
    terms = np.multiply(grad_output, x, dtype=np.float64)
    hidden = np.broadcast_to(np.logical_or(masks[0], masks[1]), shape)
    np.putmask(terms, np.broadcast_to(x > 0, terms.shape) | hidden, 0.0)
    lead = len(shape) - len(slope_shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(slope_shape) if n == 1 and shape[lead + i] != 1
    )
    with np.errstate(over="ignore"):  # a sum beyond float16 or float32 is inf, as for any sum
        grad = terms.sum(axis=axes).reshape(slope_shape).astype(dtype)
    if all(mask is np.ma.nomask for mask in masks):
        return grad
    return np.ma.masked_array(grad, mask=hidden.all(axis=axes).reshape(slope_shape))


def _check_slope_shape(slope_shape, shape):
    """slope_shape as a tuple of ints that broadcasts to `shape`."""
    if isinstance(slope_shape, numbers.Integral) and not isinstance(slope_shape, bool):
        slope_shape = (slope_shape,)
    if not isinstance(slope_shape, (tuple, list)) or not all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 0
        for n in slope_shape
    ):
        raise TypeError(
            f"slope_shape must be a tuple of non-negative ints, got {describe(slope_shape)}"
        )
    slope_shape = tuple(int(n) for n in slope_shape)
    if not broadcasts_to(slope_shape, shape):
        raise ValueError(
            f"slope_shape {slope_shape} does not broadcast to the shape of grad_output and x, "
            f"{shape}"
        )
    return slope_shape
