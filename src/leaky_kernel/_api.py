"""leaky_relu and leaky_relu_backward: the front door.

A call first tries the C fast path (select_contiguous), an executor that
takes contiguous float32 and float64 ndarrays with one float slope after its
one precondition check, and otherwise declines, having written nothing.
A call it declines is checked once, against the rules, into a plan
(_execute.Plan), which the one executor runs.
"""
import inspect
import math

import numpy as np

from ._dispatch import kernels
from ._execute import KERNEL, UFUNC, Plan, execute
from ._layout import writes_a_place_twice
from ._rules import DEFAULT_SLOPE, compute_dtype
from ._threads import call_threads
from ._tuning import fit_before
from ._validation import (
    UFUNC_KEYWORDS,
    backward_operands,
    broadcast_shape,
    check_num_threads,
    check_out,
    check_ufunc_keywords,
    check_where,
    dtype_of,
    forward_operands,
)

_SELECT_CONTIGUOUS = kernels.select_contiguous


def leaky_relu(
    x,
    negative_slope=DEFAULT_SLOPE,
    *,
    alpha=None,
    out=None,
    where=True,
    num_threads=None,
    **ufunc_keywords,
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
        Result array of the result's shape, of any dtype the result casts to
        under `casting`. May be `x` itself, or overlap it.
    where : array_like of bool, optional
        As for NumPy ufuncs: the result is computed where True; elsewhere
        `out` keeps its values (without `out`, those elements are undefined).
    dtype : float16, float32 or float64, optional
        Compute and return in this dtype: x is cast to it first (under
        `casting`), as ``np.exp(x, dtype=...)`` does.
    casting : {"same_kind", "no", "equiv", "safe", "unsafe"}, optional
        NumPy's rule for casting x to the dtype of the result and the result
        to `out`. The slope is a parameter, rounded to the compute dtype.
    order : {"K", "C", "F", "A"}, optional
        Memory layout of a new result, as for NumPy ufuncs.
    subok : bool, optional
        False returns a plain ndarray for an ndarray subclass, as for NumPy ufuncs.
    num_threads : int, optional
        OpenMP threads for this call; default `get_num_threads()`. A lazy
        container (Dask) computes later, on the count configured where it runs.

    Returns
    -------
    y : ndarray
        The result, of x's shape and memory order; x's own type for a
        container (a pandas Series stays a Series); a NumPy scalar for 0-d
        input; `out` when given.

    Raises
    ------
    TypeError
        For an unsupported dtype (complex, object, strings), both
        `negative_slope` and `alpha` given, or an `out` of another dtype.
    ValueError
        For a slope that is not finite in the compute dtype, a slope array
        or `where` that does not broadcast, an `out` of another shape or
        read-only, or a thread count below 1. The message names the
        argument; nothing is written.

    See Also
    --------
    leaky_relu_backward : The gradient.
    leaky_relu_forward_mask : The forward and a 1-bit sign mask for the backward.
    LeakyReLU : The activation as a layer with forward and backward.
    leaky_kernel.reference.leaky_relu : The NumPy oracle it matches bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> import leaky_kernel as lk
    >>> x = np.array([-2.0, 0.0, 1.5, -3.0], dtype=np.float32)
    >>> lk.leaky_relu(x, 0.1)
    array([-0.2,  0. ,  1.5, -0.3], dtype=float32)

    In place, and with a slope per row (PReLU-style):

    >>> lk.leaky_relu(x, 0.5, out=x) is x
    True
    >>> x
    array([-1. ,  0. ,  1.5, -1.5], dtype=float32)
    >>> lk.leaky_relu(np.array([[-1.0, 2.0], [-1.0, 2.0]]), np.array([[0.1], [0.2]]))
    array([[-0.1,  2. ],
           [-0.2,  2. ]])

    Integers compute in float64; a scalar gives a NumPy scalar:

    >>> lk.leaky_relu(-4, 0.25)
    np.float64(-1.0)
    """
    slope = negative_slope if alpha is None else _slope_as_given(negative_slope, alpha)
    if slope is not None and where is True and not ufunc_keywords:
        result = _SELECT_CONTIGUOUS(x, x, slope, out, num_threads)
        if result is not None:
            return result
    threads = check_num_threads(num_threads)
    keywords = check_ufunc_keywords("leaky_relu", ufunc_keywords)
    requested, casting = keywords[:2]
    x, slope, dtype = forward_operands(x, negative_slope, alpha, requested, casting)
    return execute(_plan(x, None, slope, dtype, tuple(x.shape), out, where, threads, keywords))


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
    **ufunc_keywords,
):
    """Gradient of leaky_relu: grad_output where x > 0, else negative_slope * grad_output.

    At x == 0 the gradient is the slope, as in PyTorch, Keras 3 and JAX.
    grad_output and x promote together (``np.result_type``) and broadcast
    together; with `dtype`, both are cast to it. The other parameters are as
    for `leaky_relu`. The result keeps grad_output's layout unless `order`
    says otherwise.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to leaky_relu's output.
    x : array_like
        leaky_relu's input (or, with `x_is_output`, its output).
    negative_slope : float or array_like, default 0.01
        As for `leaky_relu`.
    alpha : float or array_like, optional
        Keyword alias of negative_slope; give one or the other.
    x_is_output : bool, default False
        `x` holds leaky_relu's output instead of its input (in-place
        training). Valid for slopes >= 0, where both give the same result.
    out : ndarray, optional
        As for `leaky_relu`; may be grad_output or x itself.
    where : array_like of bool, optional
        As for `leaky_relu`.
    dtype, casting, order, subok : optional
        As for `leaky_relu`: NumPy's ufunc keywords.
    num_threads : int, optional
        OpenMP threads for this call; default `get_num_threads()`.

    Returns
    -------
    grad_input : ndarray
        The gradient with respect to x, of the broadcast shape and the
        promoted dtype; a container type or a NumPy scalar as for
        `leaky_relu`; `out` when given.

    Raises
    ------
    TypeError
        As for `leaky_relu`, for either array.
    ValueError
        As for `leaky_relu`; also for shapes that do not broadcast, and for
        ``x_is_output=True`` with a negative slope.

    See Also
    --------
    leaky_relu : The forward.
    leaky_relu_backward_mask : The same gradient from a 1-bit sign mask of x.
    leaky_relu_slope_grad : The gradient with respect to a slope array.

    Examples
    --------
    >>> import numpy as np
    >>> import leaky_kernel as lk
    >>> x = np.array([-2.0, 0.0, 1.5])
    >>> lk.leaky_relu_backward(np.ones(3), x, 0.1)
    array([0.1, 0.1, 1. ])

    From the forward's output, as in-place training keeps it:

    >>> y = lk.leaky_relu(x, 0.1)
    >>> lk.leaky_relu_backward(np.ones(3), y, 0.1, x_is_output=True)
    array([0.1, 0.1, 1. ])
    """
    slope = negative_slope if alpha is None else _slope_as_given(negative_slope, alpha)
    # With x_is_output the slope must be >= 0; a NaN slope fails this and goes on to be reported.
    if slope is not None and where is True and not ufunc_keywords and (
        x_is_output is False or (x_is_output is True and isinstance(slope, float) and slope >= 0)
    ):
        result = _SELECT_CONTIGUOUS(grad_output, x, slope, out, num_threads)
        if result is not None:
            return result
    threads = check_num_threads(num_threads)
    keywords = check_ufunc_keywords("leaky_relu_backward", ufunc_keywords)
    requested, casting = keywords[:2]
    grad_output, x, slope, dtype = backward_operands(
        grad_output, x, negative_slope, alpha, x_is_output, requested, casting
    )
    return execute(_plan(grad_output, x, slope, dtype, broadcast_shape(grad_output, x), out,
                         where, threads, keywords))


def _plan(value, sign, slope, dtype, shape, out, where, threads, keywords):
    """The plan of a call whose operands and slope are checked: value and
    sign are grad_output and x for a backward, x and None for a forward;
    `keywords` are check_ufunc_keywords' (dtype, casting, order, subok).
    Checks out= and where= against the result's shape, fits the tuning to
    the call's size first if it must, casts the operands to a requested
    dtype, resolves the thread count and picks the route."""
    requested, casting, order, subok = keywords
    compute = compute_dtype(dtype)
    fit_before(math.prod(shape), compute.itemsize, threads)
    if out is not None:
        check_out(out, dtype, shape, casting)
    where = check_where(where, shape)
    if requested is not None:
        if sign is None:
            value = _cast(value, dtype, "x")
        else:
            value, sign = _cast(value, dtype, "grad_output"), _cast(sign, dtype, "x")
    # Operands that dispatch (containers, subclasses) were kept as they are;
    # the rest are ndarrays now.
    direct = (
        where is True
        and not isinstance(slope, np.ndarray)
        and type(value) is np.ndarray
        and value.shape == shape
        and (sign is None or (type(sign) is np.ndarray and sign.shape == shape))
        and not writes_a_place_twice(out)
    )
    return Plan(KERNEL if direct else UFUNC, value, sign, slope, dtype, compute, out, where,
                call_threads(threads), order, subok, None)


def _show_ufunc_keywords(function):
    """Give `function`'s signature the ufunc keywords it takes through
    **ufunc_keywords, before num_threads, as named keyword-only parameters.
    They come in as **ufunc_keywords because a call that passes none then
    costs less than one with four more named parameters."""
    signature = inspect.signature(function)
    *named, num_threads, _ = signature.parameters.values()
    keywords = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in UFUNC_KEYWORDS.items()
    ]
    function.__signature__ = signature.replace(parameters=[*named, *keywords, num_threads])


_show_ufunc_keywords(leaky_relu)
_show_ufunc_keywords(leaky_relu_backward)


def _cast(operand, dtype, name):
    """The operand in `dtype` (the call's requested dtype, whose cast the
    checks allowed), unless it casts there safely: the kernels and NumPy's
    loop search then convert it as a cast would, without a copy here."""
    if np.can_cast(dtype_of(operand, name), dtype, "safe"):
        return operand
    return operand.astype(dtype)


def _slope_as_given(negative_slope, alpha):
    """The slope argument the caller gave (either spelling), unchecked; None
    when both were given, which the general path reports."""
    if alpha is None:
        return negative_slope
    return alpha if negative_slope is DEFAULT_SLOPE else None
