"""Presenting operands to the kernels, and their result to the caller.

The select kernel takes 2-D views of one shape, in the compute dtype, native
byte order and aligned, whose elements it visits row by row. Any strided n-d
layout whose axes merge into at most two (C, F, step slices, transposes,
negative steps, most views) is handed over without a copy; the rest are
copied into the output's layout first. The sign-mask kernels take 1-d
operands in C order, the mask's order (flat_operand, flat_target).
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._dispatch import kernels


def kernel_operand(a, dtype):
    """`a` readable by the kernel: dtype `dtype`, native byte order, aligned."""
    if a.dtype == dtype and a.flags.aligned:
        return a
    return a.astype(dtype)


def kernel_writes_directly(out, dtype, inputs):
    """Whether the kernel can write its result straight into `out`: given, of
    the compute dtype, aligned, and either one of the inputs exactly or
    overlapping none of them (else it writes a new array, copied to out)."""
    return (
        out is not None
        and out.dtype == dtype
        and out.flags.aligned
        and not any(kernels.overlap_clobbers(out, a) for a in inputs)
    )


def flat_operand(a, dtype):
    """`a` flattened in C order as the mask kernels read it: 1-d, contiguous,
    `dtype`, native byte order and aligned; a view of `a` when it already is."""
    return np.require(a, dtype, ["C", "A"]).reshape(-1)


def flat_target(out, dtype, compute, inputs):
    """(the 1-d array a mask kernel writes, whether it is new): out's own
    memory where the kernel can write it directly (contiguous, the result
    dtype and the compute dtype, aligned, and either one of the inputs
    exactly or overlapping none), else a new array."""
    if out is not None and out.dtype == dtype and out.flags.c_contiguous:
        out_flat = out.reshape(-1)
        if kernel_writes_directly(out_flat, compute, inputs):
            return out_flat, False
    return np.empty(inputs[0].size, compute), True


def new_order(order, inputs):
    """The order np.empty_like takes for a ufunc's `order`: "A" is "F" when
    every input is F-contiguous, else "C"."""
    if order != "A":
        return order
    return "F" if all(a.flags.f_contiguous for a in inputs) else "C"


def writes_a_place_twice(out):
    """Whether out has a zero stride along several elements. The ufunc route
    writes such an out in order, so that the last write stays, as in NumPy."""
    return out is not None and any(
        step == 0 and n > 1 for step, n in zip(out.strides, out.shape)
    )


def copy_into(destination, source):
    np.copyto(destination, source)
    return destination


def common_2d(arrays):
    """2-D views of same-shape arrays visiting their elements in one order, or None.

    The order follows the first array's strides (the output, so writes run
    forward through memory); axes merge where every array allows it.
    """
    if all(a.flags.c_contiguous for a in arrays):
        return [a.reshape(1, -1) for a in arrays]
    if all(a.flags.f_contiguous for a in arrays):
        return [a.reshape(1, -1, order="F") for a in arrays]
    first = arrays[0]
    axes = sorted(
        (ax for ax in range(first.ndim) if first.shape[ax] != 1),
        key=lambda ax: -abs(first.strides[ax]),
    )
    dims = []  # [length, [stride of each array]], outermost first
    for ax in axes:
        length = first.shape[ax]
        strides = [a.strides[ax] for a in arrays]
        if dims and all(outer == s * length for outer, s in zip(dims[-1][1], strides)):
            dims[-1] = [dims[-1][0] * length, strides]
        else:
            dims.append([length, strides])
    if len(dims) > 2:
        return None
    while len(dims) < 2:
        dims.insert(0, [1, [0] * len(arrays)])
    (rows, row_strides), (cols, col_strides) = dims
    return [
        as_strided(a, shape=(rows, cols), strides=(row_strides[i], col_strides[i]))
        for i, a in enumerate(arrays)
    ]


def deliver_result(result, dtype, out):
    """What a call returns once the kernel has written `result` (the call's
    shape, compute dtype): a new array of `dtype` (a NumPy scalar for 0-d), or
    `out`, into which `result` is copied unless the kernel wrote out itself.
    The result is rounded to `dtype` before it goes into an out of another
    dtype (whose cast the caller has checked), as NumPy's output casts go."""
    if out is None and result.dtype == dtype:
        return result[()] if result.ndim == 0 else result
    with np.errstate(over="ignore"):  # rounding to float16 may overflow to inf, by design
        if out is None:
            result = result.astype(dtype, copy=False)
            return result[()] if result.ndim == 0 else result
        if not np.may_share_memory(result, out):
            if out.dtype != dtype:
                result = result.astype(dtype, copy=False)
            np.copyto(out, result, casting="unsafe")
        return out
