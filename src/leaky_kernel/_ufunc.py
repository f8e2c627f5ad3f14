"""The ufunc route: calls that NumPy's ufunc machinery serves best.

Containers that dispatch (pandas, xarray, Dask, masked arrays, ndarray
subclasses), slopes that are arrays, where= and broadcasting all go through
NumPy ufuncs whose inner loops are the kernels (_kernels.pxi, "Ufunc
loops"). NumPy then does what it does for np.exp: a Series stays a Series
with its index, a DataArray keeps dims and coords, a Dask array stays lazy,
a masked array keeps the union of its inputs' masks, and out= may overlap
the inputs. Plain ndarray calls with one slope take the direct path in
_api.py instead, which merges axes NumPy's iterator would visit one by one.

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
from ._threads import call_threads
from ._validation import compute_dtype, labelled
from ._warn import warn_user

# (threads, NumPy allocates the output) -> (forward ufunc, backward ufunc)
_UFUNCS: dict = {}

# A ufunc is pickled by name, as a global of its module (Dask ships its tasks
# to other processes that way), so each setting has its own name, which
# __getattr__ below turns back into the ufunc.
_KINDS = ("leaky_relu", "leaky_relu_backward")


def _name(kind, n_threads, fresh_output):
    return f"{kind}_on_{n_threads}_threads_into_{'new' if fresh_output else 'out'}"


def _setting(name):
    """(kind, n_threads, fresh_output) of a name that _name gives, else None."""
    kind, _, rest = name.partition("_on_")
    threads, _, into = rest.partition("_threads_into_")
    if kind in _KINDS and threads.isdigit():
        setting = (kind, int(threads), into == "new")
        if _name(*setting) == name:
            return setting
    return None


def ufuncs(n_threads, fresh_output):
    """The ufunc pair for calls on at most n_threads threads."""
    key = (n_threads, fresh_output)
    pair = _UFUNCS.get(key)
    if pair is None:
        names = [_name(kind, n_threads, fresh_output) for kind in _KINDS]
        pair = _UFUNCS[key] = kernels.ufuncs(n_threads, fresh_output, *names)
        for ufunc in pair:
            ufunc.__module__ = __name__
    return pair


def __getattr__(name):
    """The ufunc of a name that `ufuncs` gave, as unpickling asks for it; one
    made here takes this process's thread cap."""
    setting = _setting(name)
    if setting is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    kind, n_threads, fresh_output = setting
    pair = _UFUNCS.get((n_threads, fresh_output))
    if pair is None:
        pair = ufuncs(call_threads(n_threads), fresh_output)
    return pair[0] if kind == "leaky_relu" else pair[1]


def select(value, sign, slope, dtype, out, where, num_threads):
    """value where sign > 0, else slope * value, through the ufuncs; sign
    None is the forward (sign is value). Operands are checked already."""
    compute = compute_dtype(dtype)
    forward, backward = ufuncs(call_threads(num_threads), out is None)
    slope = slope if isinstance(slope, np.ndarray) else compute.type(slope)
    operands = (value, slope) if sign is None else (value, sign, slope)
    options = {}
    if out is not None:
        options["out"] = out
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
    ufunc = forward if sign is None else backward
    with np.errstate(over="ignore"):  # rounding to float16 may overflow to inf, by design
        result = ufunc(*operands, **options)
        if out is None and dtype != compute:
            result = result.astype(dtype)
    return result
