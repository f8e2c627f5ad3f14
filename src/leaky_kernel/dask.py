"""leaky_relu and leaky_relu_backward for Dask arrays: one kernel call per block.

    leaky_relu(x, negative_slope=0.01, *, alpha=None, num_threads=1)
    leaky_relu_backward(grad_output, x, negative_slope=0.01, *, alpha=None,
                        x_is_output=False, num_threads=1)

Both return lazy Dask arrays. Arguments are checked by the NumPy API's own
rules when the graph is built, as far as they are known then, so a bad call
fails at once with the NumPy API's error and computes nothing. Needs the
optional extra: pip install "leaky_kernel[dask]".
"""
import math
from functools import partial

import numpy as np

try:
    import dask.array as da
except ImportError as exc:
    raise ImportError(
        'leaky_kernel.dask needs Dask; install it with: pip install "leaky_kernel[dask]"'
    ) from exc

from . import _api
from ._rules import DEFAULT_SLOPE
from ._validation import backward_operands, check_num_threads, forward_operands

__all__ = ["leaky_relu", "leaky_relu_backward"]


def leaky_relu(x, negative_slope=DEFAULT_SLOPE, *, alpha=None, num_threads=1):
    """Leaky ReLU of a Dask array: x where x > 0, else negative_slope * x.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Anything else is wrapped with ``dask.array.asarray``. Dtypes as for
        ``leaky_kernel.leaky_relu``.
    negative_slope, alpha : float
        As for ``leaky_kernel.leaky_relu``.
    num_threads : int or None, default 1
        OpenMP threads of each block's kernel call. Dask already runs one task
        per core, so more would oversubscribe them; None means the worker's
        ``leaky_kernel.get_num_threads()``.

    Returns
    -------
    y : dask.array.Array
        Lazy, with x's shape and chunks and the NumPy API's result dtype.

    Raises
    ------
    TypeError
        As ``leaky_kernel.leaky_relu`` raises it, when the call is made; also
        for a slope array (``leaky_kernel.leaky_relu`` takes those and stays
        lazy).
    ValueError
        As ``leaky_kernel.leaky_relu`` raises it, when the call is made.

    See Also
    --------
    leaky_kernel.leaky_relu : The NumPy API, which also takes Dask arrays.
    leaky_relu_backward : The gradient.

    Examples
    --------
    >>> import dask.array as da
    >>> import leaky_kernel.dask as lkd
    >>> x = da.from_array([-2.0, 0.0, 1.5, -3.0], chunks=2)
    >>> y = lkd.leaky_relu(x, 0.1)  # lazy: nothing computed yet
    >>> y.chunks
    ((2, 2),)
    >>> y.compute()
    array([-0.2,  0. ,  1.5, -0.3])
    """
    num_threads = check_num_threads(num_threads)
    x = da.asarray(x)
    (x_stand_in,) = _stand_ins(x)
    _, slope, dtype = forward_operands(x_stand_in, negative_slope, alpha)
    _one_slope(slope)
    block_function = partial(_api.leaky_relu, negative_slope=slope, num_threads=num_threads)
    return _elementwise(block_function, dtype, x)


def leaky_relu_backward(
    grad_output,
    x,
    negative_slope=DEFAULT_SLOPE,
    *,
    alpha=None,
    x_is_output=False,
    num_threads=1,
):
    """Gradient of leaky_relu for Dask arrays: grad_output where x > 0, else
    negative_slope * grad_output.

    Parameters
    ----------
    grad_output, x : dask.array.Array or array_like
        Of one shape; where their chunks differ, Dask aligns them as for any
        elementwise operation.
    negative_slope, alpha : float
        As for ``leaky_kernel.leaky_relu_backward``.
    x_is_output : bool, default False
        As for ``leaky_kernel.leaky_relu_backward``.
    num_threads : int or None, default 1
        As for `leaky_relu`.

    Returns
    -------
    grad_input : dask.array.Array
        Lazy, with the NumPy API's result dtype.

    Raises
    ------
    TypeError
        As ``leaky_kernel.leaky_relu_backward`` raises it, when the call is made.
    ValueError
        As ``leaky_kernel.leaky_relu_backward`` raises it, and for
        grad_output and x of different shapes.

    See Also
    --------
    leaky_relu : The forward.
    leaky_kernel.leaky_relu_backward : The NumPy API, which broadcasts Dask arrays.

    Examples
    --------
    >>> import dask.array as da
    >>> import leaky_kernel.dask as lkd
    >>> x = da.from_array([-2.0, 0.0, 1.5, -3.0], chunks=2)
    >>> lkd.leaky_relu_backward(da.ones_like(x), x, 0.1).compute()
    array([0.1, 0.1, 1. , 0.1])
    """
    num_threads = check_num_threads(num_threads)
    grad_output, x = da.asarray(grad_output), da.asarray(x)
    grad_stand_in, x_stand_in = _stand_ins(grad_output, x)
    _, _, slope, dtype = backward_operands(
        grad_stand_in, x_stand_in, negative_slope, alpha, x_is_output
    )
    _one_slope(slope)
    if grad_stand_in.shape != x_stand_in.shape:
        raise ValueError(
            f"leaky_kernel.dask needs grad_output and x of one shape, got "
            f"{grad_stand_in.shape} and {x_stand_in.shape}; leaky_kernel.leaky_relu_backward "
            "broadcasts Dask arrays"
        )
    block_function = partial(
        _api.leaky_relu_backward,
        negative_slope=slope,
        x_is_output=bool(x_is_output),
        num_threads=num_threads,
    )
    return _elementwise(block_function, dtype, grad_output, x)


def _one_slope(slope):
    """This module's kernel calls take one slope, the same for every block."""
    if isinstance(slope, np.ndarray):
        raise TypeError(
            "leaky_kernel.dask takes one slope, not an array; leaky_kernel.leaky_relu "
            "takes a Dask array and a slope array and stays lazy"
        )


def _stand_ins(*arrays):
    """NumPy arrays with the dtypes and shapes of these Dask arrays, allocating
    nothing, for the NumPy API's checks.

    Where a size stays unknown (NaN) until computed, they are 0-d instead:
    dtypes and arguments are checked now, shapes by Dask when the blocks meet.
    """
    shapes_known = not any(math.isnan(n) for a in arrays for n in a.shape)
    return [
        np.broadcast_to(np.empty((), a.dtype), a.shape if shapes_known else ()) for a in arrays
    ]


def _elementwise(block_function, dtype, *arrays):
    """block_function over the blocks of same-shape arrays, which returns blocks
    of `dtype`. Chunks that differ are aligned as in Dask's own elementwise
    operations: each block of the result lies within one block of every input."""
    index = tuple(range(arrays[0].ndim))
    operands = [operand for array in arrays for operand in (array, index)]
    # meta tells Dask the blocks are ndarrays, without a trial call of block_function.
    meta = np.empty((0,) * len(index), dtype)
    return da.blockwise(block_function, index, *operands, dtype=dtype, meta=meta)
