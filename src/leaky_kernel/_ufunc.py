"""The ufunc route: calls that NumPy's ufunc machinery serves best.

Containers that dispatch (pandas, xarray, Dask, masked arrays, ndarray
subclasses), slopes that are arrays, where= and broadcasting all go through
two NumPy ufuncs whose inner loops are the kernels (_kernels.pxi.tp, "Ufunc
loops"). NumPy then does what it does for np.exp: a Series stays a Series
with its index, a DataArray keeps dims and coords, a Dask array stays lazy,
a masked array keeps the union of its inputs' masks, and out= may overlap
the inputs. Plain ndarray calls with one slope take the direct kernel route
(_execute.py) instead, which merges axes NumPy's iterator would visit one by one.

There is one ufunc per operation, made once, and each pickles by its plain
name as a global of this module, as NumPy's own ufuncs do: Dask ships its
tasks to other processes that way. The loops read the thread count when
they run: the count the call's plan resolved, or, for a call that does
not come through here (a Dask task computed later, ufunc.accumulate),
the count configured in the process that runs it.

The loops run in the compute dtype. The slope operand is always in it (a
NumPy scalar or array, never a Python float), which is what makes NumPy's
own loop search pick it: the first loop every input casts to safely.
Integers then go to float64 and float16 to float32, both exact, and a
float16 result is rounded once from float32, as on the direct path. No
`signature` is passed, because Dask's elemwise refuses keywords other than
out=, where=, dtype= and name=.
"""
import numpy as np

from ._dispatch import kernels
from ._validation import labelled
from ._warn import warn_user

leaky_relu = kernels.leaky_relu_ufunc
leaky_relu_backward = kernels.leaky_relu_backward_ufunc
# Pickles name a ufunc by its module and name. NumPy 2.0 has no writable
# __module__ on ufuncs; there pickles look the name up in the modules loaded.
for _ufunc in (leaky_relu, leaky_relu_backward):
    try:
        _ufunc.__module__ = __name__
    except AttributeError:
        pass
del _ufunc


def select(plan):
    """value where sign > 0, else slope * value, through the ufuncs; sign
    None is the forward (sign is value). The plan is checked already: order
    and subok are passed to NumPy as they are, and an out of another dtype
    gets the result rounded to the plan's dtype first."""
    _, value, sign, slope, dtype, compute, out, where, threads, order, subok, _ = plan
    if out is not None and out.dtype != dtype and dtype != compute:
        # NumPy would cast the compute dtype straight to out's dtype. The
        # result is computed everywhere; where= picks what reaches out.
        result = select(plan._replace(out=None, where=True))
        np.copyto(out, result, casting="unsafe", where=where)
        return out
    slope = slope if isinstance(slope, np.ndarray) else compute.type(slope)
    operands = (value, slope) if sign is None else (value, sign, slope)
    options = {}
    if out is not None:
        options["out"] = out
        if out.dtype != compute:
            options["casting"] = "unsafe"  # the call's own casting rule was checked
    if where is not True:
        options["where"] = where
        if out is None and not any(map(labelled, operands)):
            # NumPy would warn from the line below; the user's line gets the
            # warning instead. (pandas and xarray call the ufunc again
            # without out=, and NumPy warns there, as for np.exp.)
            options["out"] = None
            warn_user(
                "where= used without out=: the result is uninitialized memory where it is False",
                UserWarning,
            )
    if order != "K":
        options["order"] = order
    if not subok:
        options["subok"] = False
    ufunc = leaky_relu if sign is None else leaky_relu_backward
    previous = kernels.set_ufunc_call(threads, out is None)
    try:
        with np.errstate(over="ignore"):  # rounding to float16 may overflow to inf, by design
            result = ufunc(*operands, **options)
            if out is None and dtype != compute:
                result = result.astype(dtype)
    finally:
        kernels.restore_ufunc_call(previous)
    return result
