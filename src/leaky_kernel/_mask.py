"""leaky_relu_forward_mask and leaky_relu_backward_mask: Leaky ReLU that also
returns a 1-bit sign mask, and its gradient computed from that mask.

The mask format is described in _rules.py. The kernels take 1-d contiguous
operands in C order, the mask's order: inputs in any other layout are copied
to C order first, and results are C-ordered.
"""
from ._dispatch import kernels
from ._execute import BACKWARD_MASK, FORWARD_MASK, Plan, execute
from ._rules import DEFAULT_SLOPE, compute_dtype
from ._threads import call_threads
from ._tuning import fit_before
from ._validation import (
    backward_mask_operands,
    check_num_threads,
    check_out,
    forward_mask_operands,
)

# The C fast paths: executors that take contiguous float32 and float64
# ndarrays with one float slope after their one precondition check, and
# otherwise decline (return None), having written nothing.
_FORWARD_CONTIGUOUS = kernels.forward_mask_contiguous
_BACKWARD_CONTIGUOUS = kernels.backward_mask_contiguous


def leaky_relu_forward_mask(
    x, negative_slope=DEFAULT_SLOPE, *, alpha=None, out=None, num_threads=None
):
    """Leaky ReLU and the sign mask of x, in one pass over x.

    Pass the mask to `leaky_relu_backward_mask` in place of x: it is 1/32 of
    the bytes of float32 x. Dtypes and errors are as for `leaky_relu`.

    Parameters
    ----------
    x : array_like
        As for `leaky_relu`.
    negative_slope : float or array_like, default 0.01
        As for `leaky_relu` (a slope array included).
    alpha : float or array_like, optional
        Keyword alias of negative_slope; give one or the other.
    out : ndarray, optional
        As for `leaky_relu`; may be x itself.
    num_threads : int, optional
        OpenMP threads for this call; default `get_num_threads()`.

    Returns
    -------
    y : ndarray
        ``leaky_relu(x, negative_slope)``, C-ordered; a NumPy scalar for 0-d
        x; `out` when given.
    mask : ndarray of uint8
        ceil(x.size / 8) bytes,
        ``np.packbits((x > 0).reshape(-1), bitorder="little")``: bit i is
        set where ``x.flat[i] > 0`` in C order.

    Raises
    ------
    TypeError
        As for `leaky_relu`.
    ValueError
        As for `leaky_relu`.

    See Also
    --------
    leaky_relu_backward_mask : The gradient from this mask.
    LeakyReLU : A layer that keeps the mask between forward and backward.

    Examples
    --------
    >>> import numpy as np
    >>> import leaky_kernel as lk
    >>> x = np.array([-2.0, 0.0, 1.5, 4.0], dtype=np.float32)
    >>> y, mask = lk.leaky_relu_forward_mask(x, 0.1)
    >>> y
    array([-0.2,  0. ,  1.5,  4. ], dtype=float32)
    >>> mask
    array([12], dtype=uint8)
    >>> np.unpackbits(mask, count=x.size, bitorder="little")
    array([0, 0, 1, 1], dtype=uint8)
    """
    if alpha is None:
        done = _FORWARD_CONTIGUOUS(x, negative_slope, out, None, num_threads)
        if done is not None:
            return done
    return forward_mask_into(None, x, negative_slope, alpha, out, num_threads)


def forward_mask_into(mask, x, negative_slope, alpha, out, num_threads):
    """leaky_relu_forward_mask, writing the mask into `mask` when it is a mask
    of x's size (a 1-d uint8 array that the caller owns and no longer needs),
    else into a new array.

    For callers that run forward after forward on arrays of one size (the
    LeakyReLU layer): a new mask is fresh memory whose first writes fault in
    its pages, a few percent of a large forward's time.
    """
    if alpha is None and mask is not None:
        done = _FORWARD_CONTIGUOUS(x, negative_slope, out, mask, num_threads)
        if done is not None:
            return done
    threads = check_num_threads(num_threads)
    x, slope, dtype = forward_mask_operands(x, negative_slope, alpha)
    return execute(_plan(FORWARD_MASK, x, None, slope, dtype, out, threads, mask))


def leaky_relu_backward_mask(
    grad_output, mask, negative_slope=DEFAULT_SLOPE, *, alpha=None, out=None, num_threads=None
):
    """Gradient of leaky_relu from the sign mask of its input.

    ``grad_output`` where the mask bit is set (x > 0), else
    ``negative_slope * grad_output``: the result of
    ``leaky_relu_backward(grad_output, x, negative_slope)`` for the x whose
    mask `leaky_relu_forward_mask` returned.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to the forward's output, of
        x's shape.
    mask : ndarray of uint8
        1-d, ceil(grad_output.size / 8) bytes, as `leaky_relu_forward_mask`
        returns it.
    negative_slope : float or array_like, default 0.01
        The forward's slope.
    alpha : float or array_like, optional
        Keyword alias of negative_slope; give one or the other.
    out : ndarray, optional
        As for `leaky_relu`; may be grad_output itself.
    num_threads : int, optional
        OpenMP threads for this call; default `get_num_threads()`.

    Returns
    -------
    grad_input : ndarray
        grad_output's result dtype and shape, C-ordered; `out` when given.

    Raises
    ------
    TypeError
        For a mask that is not uint8, and as for `leaky_relu_backward`.
    ValueError
        For a mask of another shape or length, and as for
        `leaky_relu_backward`.

    See Also
    --------
    leaky_relu_forward_mask : The forward that returns the mask.
    leaky_relu_backward : The same gradient from x itself.

    Examples
    --------
    >>> import numpy as np
    >>> import leaky_kernel as lk
    >>> x = np.array([-2.0, 0.0, 1.5, 4.0])
    >>> y, mask = lk.leaky_relu_forward_mask(x, 0.1)
    >>> lk.leaky_relu_backward_mask(np.ones(4), mask, 0.1)
    array([0.1, 0.1, 1. , 1. ])
    """
    if alpha is None:
        done = _BACKWARD_CONTIGUOUS(grad_output, mask, negative_slope, out, num_threads)
        if done is not None:
            return done
    threads = check_num_threads(num_threads)
    grad_output, mask, slope, dtype = backward_mask_operands(
        grad_output, mask, negative_slope, alpha
    )
    return execute(_plan(BACKWARD_MASK, grad_output, mask, slope, dtype, out, threads))


def _plan(route, value, sign, slope, dtype, out, threads, mask=None):
    """The plan of a sign-mask call whose operands and slope are checked:
    checks out= against value's shape, fits the tuning to the call's size
    first if it must, and resolves the thread count."""
    compute = compute_dtype(dtype)
    fit_before(value.size, compute.itemsize, threads)
    if out is not None:
        check_out(out, dtype, value.shape)
    return Plan(route, value, sign, slope, dtype, compute, out, True, call_threads(threads), "K",
                True, mask)
