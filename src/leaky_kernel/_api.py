"""leaky_relu and leaky_relu_backward: checks, dtype dispatch, one kernel call."""
import numpy as np

from . import _ufunc
from ._dispatch import by_dtype, kernels
from ._layout import common_2d, deliver_result, kernel_operand, kernel_writes_directly
from ._threads import call_threads
from ._validation import (
    DEFAULT_SLOPE,
    backward_operands,
    broadcast_shape,
    check_num_threads,
    check_out,
    check_where,
    compute_dtype,
    dispatches,
    forward_operands,
)

_KERNELS = by_dtype(kernels.leaky_select)


def leaky_relu(
    x, negative_slope=DEFAULT_SLOPE, *, alpha=None, out=None, where=True, num_threads=None
):
    """Leaky ReLU: x where x > 0, else negative_slope * x.

    Parameters
    ----------
    x : array_like
        float32 and float64 are computed natively; float16 in float32, rounded
        once; bool and integers in float64. pandas, xarray, Dask and masked
        arrays (anything that dispatches NumPy ufuncs) come back as their own
        type, as from ``np.exp``.
    negative_slope : float or array_like, default 0.01
        Any finite real number, rounded once to the compute dtype; or an
        array of them that broadcasts to x's shape (a slope per channel, as
        in PReLU).
    alpha : float or array_like, optional
        Keyword alias of negative_slope; give one or the other.
    out : ndarray, optional
        Result array of exactly the result dtype and shape. May be `x` itself,
        or overlap it.
    where : array_like of bool, optional
        As for NumPy ufuncs: the result is computed where True; elsewhere
        `out` keeps its values (without `out`, those elements are undefined).
    num_threads : int, optional
        OpenMP threads for this call; default `get_num_threads()`.

    Returns
    -------
    ndarray (or x's container type), or a NumPy scalar for 0-d input. `out`
    when given.
    """
    slope = _slope_as_given(negative_slope, alpha)
    if slope is not None and where is True:
        result = kernels.select_contiguous(x, x, slope, out, num_threads)
        if result is not None:
            return result
    num_threads = check_num_threads(num_threads)
    x, slope, dtype = forward_operands(x, negative_slope, alpha)
    shape = tuple(x.shape)
    if out is not None:
        check_out(out, dtype, shape)
    where = check_where(where, shape)
    if (
        where is not True
        or isinstance(slope, np.ndarray)
        or dispatches(x)
        or _writes_a_place_twice(out)
    ):
        return _ufunc.select(x, None, slope, dtype, out, where, num_threads)
    return _select(x, None, slope, dtype, out, num_threads)


def leaky_relu_backward(
    grad_output,
    x,
    negative_slope=DEFAULT_SLOPE,
    *,
    alpha=None,
    x_is_output=False,
    out=None,
    where=True,
    num_threads=None,
):
    """Gradient of leaky_relu: grad_output where x > 0, else negative_slope * grad_output.

    At x == 0 the gradient is the slope, as in PyTorch, Keras 3 and JAX.
    With ``x_is_output=True``, `x` holds leaky_relu's output instead of its
    input (valid for slopes >= 0, where both give the same result).
    grad_output and x promote together (``np.result_type``) and broadcast
    together; the other parameters are as for `leaky_relu`. The result keeps
    grad_output's layout.
    """
    slope = _slope_as_given(negative_slope, alpha)
    # With x_is_output the slope must be >= 0; a NaN slope fails this and goes on to be reported.
    if slope is not None and where is True and (
        x_is_output is False or (x_is_output is True and isinstance(slope, float) and slope >= 0)
    ):
        result = kernels.select_contiguous(grad_output, x, slope, out, num_threads)
        if result is not None:
            return result
    num_threads = check_num_threads(num_threads)
    grad_output, x, slope, dtype = backward_operands(
        grad_output, x, negative_slope, alpha, x_is_output
    )
    shape = broadcast_shape(grad_output, x)
    if out is not None:
        check_out(out, dtype, shape)
    where = check_where(where, shape)
    if (
        where is not True
        or isinstance(slope, np.ndarray)
        or dispatches(grad_output)
        or dispatches(x)
        or grad_output.shape != x.shape
        or _writes_a_place_twice(out)
    ):
        return _ufunc.select(grad_output, x, slope, dtype, out, where, num_threads)
    return _select(grad_output, x, slope, dtype, out, num_threads)


def _select(value, sign, slope, dtype, out, num_threads):
    """value where sign > 0, else slope * value; `sign=None` means sign is value."""
    compute = compute_dtype(dtype)
    value = kernel_operand(value, compute)
    sign = value if sign is None else kernel_operand(sign, compute)
    fresh = not kernel_writes_directly(out, compute, (value, sign))
    target = np.empty_like(value) if fresh else out
    if target.size:
        views = common_2d([target, value, sign])
        if views is None:  # no common order merges the axes: copy into the target's layout
            forward = sign is value
            value = _copy_into(np.empty_like(target), value)
            sign = value if forward else _copy_into(np.empty_like(target), sign)
            if common_2d([target, value, sign]) is None:  # out's own axes do not merge
                target, fresh = np.empty_like(value), True
            views = common_2d([target, value, sign])
        target_2d, value_2d, sign_2d = views
        _KERNELS[compute](value_2d, sign_2d, target_2d, slope, call_threads(num_threads), fresh)
    return deliver_result(target, dtype, out)


def _writes_a_place_twice(out):
    """Whether out has a zero stride along several elements. The ufunc route
    writes such an out in order, so that the last write stays, as in NumPy."""
    return out is not None and any(
        step == 0 and n > 1 for step, n in zip(out.strides, out.shape)
    )


def _slope_as_given(negative_slope, alpha):
    """The slope argument the caller gave (either spelling), unchecked; None
    when both were given, which the general path reports."""
    if alpha is None:
        return negative_slope
    return alpha if negative_slope is DEFAULT_SLOPE else None


def _copy_into(destination, source):
    np.copyto(destination, source)
    return destination
