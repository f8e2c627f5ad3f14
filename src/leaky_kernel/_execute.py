"""The plan of a call, and the one executor that runs it.

The public functions (_api.py, _mask.py) check their arguments once,
against the rules (_rules.py), into a `Plan`: operands ready to use, the
slope and dtypes resolved, the route chosen. `execute` runs a plan and
checks nothing: every value in it is already resolved.

Routes:

- KERNEL: plain ndarrays with one slope; the direct kernel over 2-D views
  (_layout.common_2d merges the axes NumPy's iterator would visit one by one);
- UFUNC: the rest of leaky_relu and leaky_relu_backward (containers, slope
  arrays, where=, broadcasting), through NumPy's ufunc machinery (_ufunc.py);
- FORWARD_MASK and BACKWARD_MASK: the sign-mask kernels, over 1-d C-order
  operands; with a slope array, the ufunc route plus NumPy's packbits.

The contiguous fast paths in C (select_contiguous, forward_mask_contiguous,
backward_mask_contiguous) are executors too, tried before any plan is made:
each takes only what its one precondition check accepts, and otherwise
returns None having written nothing.
"""
from typing import NamedTuple

import numpy as np

from . import _ufunc
from ._dispatch import by_dtype, kernels
from ._layout import (
    common_2d,
    copy_into,
    deliver_result,
    flat_operand,
    flat_target,
    kernel_operand,
    kernel_writes_directly,
    new_order,
)
from ._rules import MASK_DTYPE, mask_nbytes

KERNEL, UFUNC, FORWARD_MASK, BACKWARD_MASK = "kernel", "ufunc", "forward_mask", "backward_mask"


class Plan(NamedTuple):
    """A checked call: value where sign > 0, else slope * value."""

    route: str
    value: object  # ndarray, or a container that dispatches (UFUNC)
    sign: object  # None for a forward (sign is value); x, or the sign mask (BACKWARD_MASK)
    slope: object  # float, or an array in the compute dtype
    dtype: np.dtype  # the result's
    compute: np.dtype  # the kernel's
    out: object  # a checked ndarray, or None
    where: object  # True, or checked booleans (UFUNC)
    threads: int  # the call's threads, resolved (_threads.call_threads)
    order: str  # of a new result, as NumPy's ufuncs take it
    subok: bool
    mask: object  # FORWARD_MASK: an owned mask array to reuse, or None


def execute(plan):
    """Run a plan; what the public function returns."""
    return _ROUTES[plan.route](plan)


def _select(plan):
    """The direct kernel. A new result is laid out as plan.order says."""
    _, value, sign, slope, dtype, compute, out, _, threads, order, _, _ = plan
    value = kernel_operand(value, compute)
    sign = value if sign is None else kernel_operand(sign, compute)
    # An out of another dtype gets the result rounded to `dtype` first.
    fresh = out is None or out.dtype != dtype or not kernel_writes_directly(
        out, compute, (value, sign)
    )
    target = np.empty_like(value, order=new_order(order, (value, sign))) if fresh else out
    if target.size:
        views = common_2d([target, value, sign])
        if views is None:  # no common order merges the axes: copy into the target's layout
            forward = sign is value
            value = copy_into(np.empty_like(target), value)
            sign = value if forward else copy_into(np.empty_like(target), sign)
            if common_2d([target, value, sign]) is None:  # out's own axes do not merge
                target, fresh = np.empty_like(value), True
            views = common_2d([target, value, sign])
        target_2d, value_2d, sign_2d = views
        _SELECT[compute](value_2d, sign_2d, target_2d, slope, threads, fresh)
    return deliver_result(target, dtype, out)


def _forward_mask(plan):
    _, x, _, slope, dtype, compute, out, _, threads, _, _, mask = plan
    if isinstance(slope, np.ndarray):
        # With a slope per element the select runs through the ufuncs, and
        # NumPy packs the mask: two passes where one slope takes one.
        mask = np.packbits((x > 0).reshape(-1), bitorder="little")  # before out, maybe x, changes
        target = np.empty(x.shape, dtype) if out is None else out
        _ufunc.select(plan._replace(out=target))
        return target, mask
    x_flat = flat_operand(x, compute)
    nbytes = mask_nbytes(x.size)
    if mask is None or mask.shape != (nbytes,):
        mask = np.empty(nbytes, MASK_DTYPE)
    target, fresh = flat_target(out, dtype, compute, [x_flat])
    _FORWARD_MASK[compute](x_flat, target, mask, slope, threads, fresh)
    return deliver_result(target.reshape(x.shape), dtype, out), mask


def _backward_mask(plan):
    _, grad_output, mask, slope, dtype, compute, out, _, threads, _, _, _ = plan
    if isinstance(slope, np.ndarray):
        positive = np.unpackbits(mask, count=grad_output.size, bitorder="little")
        target = np.empty(grad_output.shape, dtype) if out is None else out
        _ufunc.select(plan._replace(sign=positive.reshape(grad_output.shape), out=target))
        return target
    grad_flat = flat_operand(grad_output, compute)
    mask = flat_operand(mask, MASK_DTYPE)
    target, fresh = flat_target(out, dtype, compute, [grad_flat, mask])
    _BACKWARD_MASK[compute](grad_flat, mask, target, slope, threads, fresh)
    return deliver_result(target.reshape(grad_output.shape), dtype, out)


_SELECT = by_dtype(kernels.leaky_select)
_FORWARD_MASK = by_dtype(kernels.forward_mask)
_BACKWARD_MASK = by_dtype(kernels.backward_mask)
_ROUTES = {
    KERNEL: _select,
    UFUNC: _ufunc.select,
    FORWARD_MASK: _forward_mask,
    BACKWARD_MASK: _backward_mask,
}
