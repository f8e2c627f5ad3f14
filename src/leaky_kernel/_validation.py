"""Argument checks against the rules (_rules.py), shared by the compiled API and the oracle.

Everything here raises TypeError or ValueError naming the argument, and runs
before anything is written, so a bad call changes nothing.
"""
import math
import numbers
import re
import reprlib

import numpy as np

from ._rules import (
    DEFAULT_SLOPE,
    FLOAT64,
    FLOAT_RESULTS,
    MASK_DTYPE,
    MAX_THREADS,
    SUPPORTED_DTYPES,
    compute_dtype,
    mask_nbytes,
    result_dtype,
    slope_fits,
)


def describe(value):
    """An argument as error messages show it: never more than a short line,
    and for arrays and containers (a DataFrame has a shape but no one dtype)
    their type, shape and dtype instead of their elements."""
    if isinstance(value, np.ndarray) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    if hasattr(value, "shape"):
        return f"{type(value).__name__} of shape {tuple(value.shape)}"
    return f"{reprlib.repr(value)} of type {type(value).__name__}"


def _slope_name(alpha):
    """The name of the slope parameter the caller used."""
    return "negative_slope" if alpha is None else "alpha"


def _slope_argument(negative_slope, alpha):
    """(the slope the caller gave, its parameter's name); alpha is
    negative_slope's alias."""
    if alpha is not None and negative_slope is not DEFAULT_SLOPE:
        raise TypeError("give negative_slope or its alias alpha, not both")
    return (negative_slope if alpha is None else alpha), _slope_name(alpha)


def check_slopes(negative_slope, alpha):
    """The slope argument: a finite Python float, or an array of real numbers
    (one slope per element of the array it broadcasts against, as PReLU has).
    A masked array stays one, and a pandas or xarray slope stays labelled,
    for align_slopes to place by label."""
    value, name = _slope_argument(negative_slope, alpha)
    if isinstance(value, numbers.Real) or not _is_array_like(value):
        return _finite_real(value, name)
    _refuse_dataset(value, name)
    if np.ma.isMaskedArray(value) or labelled(value):
        slopes, dtype = value, np.asarray(value).dtype
    else:
        slopes = as_array(value, name)
        dtype = slopes.dtype
    if dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must be a real number or an array of them, got {describe(slopes)}"
        )
    return slopes


def labelled(value):
    """Whether `value` is a pandas Series or DataFrame, or an xarray DataArray
    or Dataset: an object whose labels give its elements their places."""
    library = type(value).__module__.partition(".")[0]
    return (library == "pandas" and hasattr(value, "axes")) or (
        library == "xarray" and hasattr(value, "coords")
    )


def align_slopes(slopes, target, alpha):
    """A slope argument placed as the operand `target` has it: a pandas
    slope by label (a Series along a DataFrame's columns, as ``frame * slope``
    aligns it), an xarray slope by dimension name and coordinates, as
    xarray's arithmetic aligns it; the result is an ndarray that broadcasts
    to `target` by position. Labels must match exactly: a slope missing for
    some element would be NaN, which no call accepts."""
    if type(slopes) is float or not labelled(slopes):  # check_slopes made numbers floats
        return slopes
    name = _slope_name(alpha)
    kind = type(slopes).__module__.partition(".")[0]
    if not labelled(target) or (
        type(target).__module__.partition(".")[0] != kind
    ):
        raise TypeError(
            f"{name} is a labelled {type(slopes).__name__} but x has no {kind} labels to align "
            f"it with; to apply it by position, pass {name}.to_numpy()"
        )
    if kind == "xarray":
        return _align_dims(slopes, target, name)
    if hasattr(target, "columns"):  # a DataFrame
        axes = (target.columns,) if slopes.ndim == 1 else (target.index, target.columns)
        places = "columns" if slopes.ndim == 1 else "index and columns"
    else:
        axes, places = (target.index,), "index"
    if slopes.ndim != len(axes):
        raise ValueError(
            f"{name} is a {type(slopes).__name__}, which does not align with x's {places}"
        )
    for axis, labels in zip(slopes.axes, axes):
        if not (labels.is_unique and axis.is_unique and labels.symmetric_difference(axis).empty):
            raise ValueError(
                f"{name}'s labels must match x's {places} exactly, once each "
                f"({len(labels)} labels in x, {len(axis)} in {name}, not the same)"
            )
    if slopes.ndim == 1:
        return slopes.reindex(axes[0]).to_numpy()
    return slopes.reindex(index=axes[0], columns=axes[1]).to_numpy()


def _align_dims(slopes, target, name):
    """An xarray slope as an ndarray that broadcasts to `target` (a
    DataArray) by position: its dimensions in x's order, size-1 axes for the
    dimensions it lacks, its coordinates checked to be x's."""
    import xarray

    extra = [dim for dim in slopes.dims if dim not in target.dims]
    if extra:
        raise ValueError(
            f"{name} has dimensions that x lacks, {tuple(extra)}; x's are {target.dims}"
        )
    try:  # the same labels, maybe in another order: the outer join adds none
        union, _ = xarray.align(target, slopes, join="outer", copy=False)
        matching = all(union.sizes[dim] == target.sizes[dim] == slopes.sizes[dim]
                       for dim in slopes.dims)
    except ValueError:  # sizes differ along a dimension without coordinates, or duplicates
        matching = False
    if not matching:
        raise ValueError(
            f"{name}'s coordinates or sizes differ from x's along {slopes.dims}; "
            "they must hold the same labels, once each"
        )
    _, slopes = xarray.align(target, slopes, join="left", copy=False)
    ordered = slopes.transpose(*[dim for dim in target.dims if dim in slopes.dims])
    shape = tuple(ordered.sizes[dim] if dim in slopes.dims else 1 for dim in target.dims)
    return np.asarray(ordered.data).reshape(shape)


def _is_array_like(value):
    return isinstance(value, (list, tuple)) or _has_array_interface(value)


def _has_array_interface(value):
    return hasattr(value, "__array__") or hasattr(value, "__array_interface__")


def one_slope(slopes):
    """The single slope of a slope argument, as a float, when it has one:
    a number, or an array of one element or with every stride 0 (a
    broadcast scalar); else None."""
    if not isinstance(slopes, np.ndarray):
        return slopes
    if np.ma.isMaskedArray(slopes):  # its mask must reach the result
        return None
    if slopes.size == 1 or (slopes.size and not any(slopes.strides)):
        return float(slopes.flat[0])
    return None


def check_slopes_fit(slopes, dtype, shape, alpha, x_is_output=False):
    """The slope argument ready for a call whose result has `dtype` and
    `shape`: a float that stays finite in the compute dtype, or an array in
    the compute dtype whose values are all finite there and whose shape
    broadcasts to `shape`; with x_is_output, every slope must be >= 0."""
    name = _slope_name(alpha)
    compute = compute_dtype(dtype)
    if isinstance(slopes, np.ndarray):
        if not broadcasts_to(slopes.shape, shape):
            raise ValueError(
                f"{name} of shape {slopes.shape} does not broadcast to the result's shape {shape}"
            )
        single = one_slope(slopes)
        if single is None:
            with np.errstate(over="ignore", invalid="ignore"):
                rounded = slopes.astype(compute)
                # Masked slopes: only those the mask leaves visible count.
                finite = np.ma.filled(np.isfinite(rounded), True).all()
            if not finite:
                raise ValueError(
                    f"{name} must be finite in {compute}, the dtype this call computes in; "
                    "some of its values are not"
                )
            if x_is_output and not np.ma.filled(rounded >= 0, True).all():
                raise ValueError(
                    "x_is_output=True needs every slope >= 0 (the input's sign cannot be "
                    "recovered from the output otherwise)"
                )
            return _mask_of_shape(rounded, shape) if np.ma.isMaskedArray(rounded) else rounded
        slopes = _finite_real(single, name)
    if x_is_output and slopes < 0:
        raise ValueError(
            "x_is_output=True needs a slope >= 0 (the input's sign cannot be recovered "
            f"from the output otherwise), got {slopes!r}"
        )
    if not slope_fits(slopes, compute):
        raise ValueError(
            f"{name} must be finite in {compute}, the dtype this call computes in; "
            f"{slopes!r} overflows it"
        )
    return slopes


def _mask_of_shape(slopes, shape):
    """A masked slope whose data and mask are broadcast to `shape` (views):
    np.ma joins the masks of a ufunc's inputs pairwise and drops a mask with
    nothing set, so a small slope mask after two unmasked inputs (the
    backward's) would otherwise stay small, unbroadcast."""
    if any(n != n for n in shape):  # Dask sizes not known yet
        return slopes
    return np.ma.masked_array(
        np.broadcast_to(slopes.data, shape), mask=np.broadcast_to(np.ma.getmaskarray(slopes), shape)
    )


def broadcasts_to(shape, target):
    """Whether an array of `shape` broadcasts to `target` (sizes that Dask
    does not know yet, NaN, match anything)."""
    if len(shape) > len(target):
        return False
    return all(
        n == 1 or n == m or m != m for n, m in zip(shape[::-1], target[::-1])
    )


def _finite_real(value, name):
    if type(value) is not float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {describe(value)}")
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


CASTING_RULES = ("no", "equiv", "safe", "same_kind", "unsafe")
ORDERS = ("K", "A", "C", "F")


# The keywords of NumPy's ufuncs the public functions take, with their defaults.
UFUNC_KEYWORDS = {"dtype": None, "casting": "same_kind", "order": "K", "subok": True}
# What check_ufunc_keywords returns for them: the defaults are already in its form.
_DEFAULT_UFUNC_KEYWORDS = tuple(UFUNC_KEYWORDS.values())


def check_ufunc_keywords(function_name, keywords):
    """(dtype, casting, order, subok) from the ufunc keywords a call got, as
    NumPy's ufuncs take them: dtype None or float16, float32 or float64 (the
    dtype to compute and return in); a casting rule; order "K", "A", "C" or
    "F" (None is "K", lowercase is accepted); subok a bool."""
    if not keywords:
        return _DEFAULT_UFUNC_KEYWORDS
    for name in keywords:
        if name not in UFUNC_KEYWORDS:
            raise TypeError(f"{function_name}() got an unexpected keyword argument {name!r}")
    # In UFUNC_KEYWORDS' order: a dict keeps the place of a key it updates.
    dtype, casting, order, subok = {**UFUNC_KEYWORDS, **keywords}.values()
    if dtype is not None:
        try:
            requested = np.dtype(dtype)
        except TypeError:
            requested = None
        if requested is None or requested.char not in FLOAT_RESULTS or not requested.isnative:
            given = describe(dtype) if requested is None else requested
            raise TypeError(f"dtype must be float16, float32 or float64, got {given}")
        dtype = FLOAT_RESULTS[requested.char]
    if not isinstance(casting, str):
        raise TypeError(f"casting must be a str, got {describe(casting)}")
    if casting not in CASTING_RULES:
        raise ValueError(f"casting must be one of {', '.join(CASTING_RULES)}, got {casting!r}")
    if order is None:
        order = "K"
    if not isinstance(order, str):
        raise TypeError(f"order must be a str or None, got {describe(order)}")
    if order.upper() not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if not isinstance(subok, (bool, np.bool_)):
        raise TypeError(f"subok must be a bool, got {describe(subok)}")
    return dtype, casting, order.upper(), bool(subok)


def check_cast(dtype, to, casting, name):
    """An operand's dtype casts to the dtype a call computes in, under
    `casting`. Every operand casts to its own result dtype safely, up to byte
    order: only casting "no" and "equiv" can refuse it."""
    if dtype != to and not np.can_cast(dtype, to, casting):
        raise TypeError(f"{name} of dtype {dtype} cannot be cast to {to} under casting={casting!r}")


def check_num_threads(num_threads):
    if num_threads is None:
        return None
    if isinstance(num_threads, (bool, np.bool_)) or not isinstance(num_threads, numbers.Integral):
        raise TypeError(
            f"num_threads must be a positive int or None, got {describe(num_threads)}"
        )
    if num_threads < 1:
        raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
    if num_threads > MAX_THREADS:
        raise ValueError(f"num_threads must be at most {MAX_THREADS}, got {num_threads!r}")
    return int(num_threads)


def dispatches(value):
    """Whether `value` takes part in ufunc dispatch with its own type: an
    ndarray subclass, or a container with __array_ufunc__ (pandas, xarray,
    Dask). Such operands go to the ufuncs as they are, not as ndarrays."""
    kind = type(value)
    if kind is np.ndarray:
        return False
    return isinstance(value, np.ndarray) or getattr(kind, "__array_ufunc__", None) is not None


def operand(value, name):
    """An array operand as the call uses it: `value` itself when it
    dispatches, else `value` as an ndarray."""
    return value if dispatches(value) else as_array(value, name)


def dtype_of(value, name):
    """The dtype of an operand; a DataFrame's is its columns' common dtype
    (float64 for none, as NumPy's default), a pandas nullable Series' is its
    NumPy dtype: pandas keeps its NA through the ufuncs, as for np.exp."""
    _refuse_dataset(value, name)
    dtype = getattr(value, "dtype", None)
    if dtype is None and hasattr(value, "dtypes"):
        if not all(isinstance(column, np.dtype) for column in value.dtypes):
            raise TypeError(
                f"{name} has column dtypes that NumPy's ufuncs cannot keep (pandas' nullable "
                f"dtypes lose their NA over a DataFrame); supported: {SUPPORTED_DTYPES}"
            )
        try:
            dtype = np.result_type(*value.dtypes) if len(value.dtypes) else FLOAT64
        except TypeError:
            raise TypeError(
                f"{name} has column dtypes without a common dtype; supported: {SUPPORTED_DTYPES}"
            ) from None
    dtype = _nullable_numpy_dtype(dtype) or dtype
    if not isinstance(dtype, np.dtype):
        raise TypeError(f"{name} has unsupported dtype {dtype}; supported: {SUPPORTED_DTYPES}")
    return dtype


# pandas' nullable dtypes, whose arrays keep their NA through NumPy's ufuncs.
_NULLABLE_NAMES = re.compile(r"Float(32|64)|U?Int(8|16|32|64)|boolean")


def _nullable_numpy_dtype(dtype):
    """The NumPy dtype of a pandas nullable dtype (Float64, Int32, boolean, ...), else None."""
    if type(dtype).__module__.partition(".")[0] != "pandas" or not _NULLABLE_NAMES.fullmatch(
        str(dtype)
    ):
        return None
    return np.dtype(dtype.numpy_dtype)


def _refuse_dataset(value, name):
    """TypeError for an xarray Dataset: it has no one dtype or shape, and its
    variables would each need their own call."""
    if labelled(value) and hasattr(value, "data_vars"):
        raise TypeError(
            f"{name} is an xarray.Dataset, which has no one dtype or shape; call the function "
            "on each variable (Dataset.map), or on a DataArray"
        )


def check_where(where, shape):
    """where=: True, or booleans that broadcast to the result's `shape`. As
    for NumPy's ufuncs, an array (or container) must hold bools, and anything
    else (a list, a scalar) becomes bools by truth value."""
    if where is True:
        return True
    if dispatches(where):
        pass  # kept as it is, for NumPy's dispatch
    elif isinstance(where, np.ndarray) or _has_array_interface(where):
        where = as_array(where, "where")
    else:
        try:
            where = np.asarray(where, dtype=bool)
        except (TypeError, ValueError):
            raise TypeError(f"where must be True or array_like of bools, got {describe(where)}") from None
    dtype = getattr(where, "dtype", None)
    if dtype is None or dtype.kind != "b":
        raise TypeError(f"where must be True or an array of bools, got {describe(where)}")
    if not broadcasts_to(tuple(where.shape), shape):
        raise ValueError(
            f"where of shape {tuple(where.shape)} does not broadcast to the result's shape {shape}"
        )
    return where


def as_array(value, name):
    if getattr(value, "requires_grad", False) is True:
        raise TypeError(
            f"{name} is a tensor that requires grad, which NumPy cannot carry; use "
            f"leaky_kernel.torch for autograd, or pass {name}.detach()"
        )
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(
            f"{name} cannot be converted to an array: {reason}"
        ) from None


def check_out(out, dtype, shape, casting="same_kind"):
    """out=: an ndarray of `shape` that the result dtype casts to under `casting`."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype and not np.can_cast(dtype, out.dtype, casting):
        raise TypeError(
            f"out of dtype {out.dtype} cannot take the result's dtype {dtype} "
            f"under casting={casting!r}"
        )
    if out.shape != shape:
        raise ValueError(f"out must have shape {shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable, got a read-only array")


def forward_operands(x, negative_slope, alpha, dtype=None, casting="same_kind"):
    """(x, slope, result dtype) for a forward call: x as an ndarray, or the
    container itself when it dispatches; the slope a float or an array
    (check_slopes_fit). `dtype` (checked by check_ufunc_keywords) replaces
    the result dtype x gives, which x must cast to under `casting`."""
    slopes = check_slopes(negative_slope, alpha)
    x = operand(x, "x")
    x_dtype = dtype_of(x, "x")
    dtype = _requested_result(dtype, result_dtype(x_dtype, "x"))
    check_cast(x_dtype, dtype, casting, "x")
    slopes = align_slopes(slopes, x, alpha)
    return x, check_slopes_fit(slopes, dtype, tuple(x.shape), alpha), dtype


def backward_operands(grad_output, x, negative_slope, alpha, x_is_output, dtype=None,
                      casting="same_kind"):
    """(grad_output, x, slope, result dtype) for a backward call, as for
    forward_operands; grad_output and x broadcast together."""
    slopes = check_slopes(negative_slope, alpha)
    if not isinstance(x_is_output, (bool, np.bool_)):
        raise TypeError(f"x_is_output must be a bool, got {describe(x_is_output)}")
    grad_output = operand(grad_output, "grad_output")
    x = operand(x, "x")
    grad_dtype, x_dtype = dtype_of(grad_output, "grad_output"), dtype_of(x, "x")
    result_dtype(grad_dtype, "grad_output")
    result_dtype(x_dtype, "x")
    shape = broadcast_shape(grad_output, x)
    promoted = result_dtype(np.result_type(grad_dtype, x_dtype), "grad_output and x")
    dtype = _requested_result(dtype, promoted)
    check_cast(grad_dtype, dtype, casting, "grad_output")
    check_cast(x_dtype, dtype, casting, "x")
    slopes = align_slopes(slopes, x if labelled(x) else grad_output, alpha)
    slope = check_slopes_fit(slopes, dtype, shape, alpha, bool(x_is_output))
    return grad_output, x, slope, dtype


def _requested_result(requested, natural):
    return natural if requested is None else requested


def broadcast_shape(grad_output, x):
    """The shape grad_output and x broadcast to."""
    grad_shape, x_shape = tuple(grad_output.shape), tuple(x.shape)
    if grad_shape == x_shape:
        return x_shape
    if any(n != n for n in grad_shape + x_shape):  # Dask sizes not known yet
        return x_shape if len(x_shape) >= len(grad_shape) else grad_shape
    try:
        return np.broadcast_shapes(grad_shape, x_shape)
    except ValueError:
        raise ValueError(
            f"grad_output and x must have shapes that broadcast together, "
            f"got {grad_shape} and {x_shape}"
        ) from None


def check_mask(mask, size):
    """`mask` is the sign mask of `size` elements: 1-d uint8 of mask_nbytes(size)."""
    if mask.dtype != MASK_DTYPE:
        raise TypeError(f"mask must have dtype uint8 (packed sign bits), got {mask.dtype}")
    nbytes = mask_nbytes(size)
    if mask.shape != (nbytes,):
        raise ValueError(
            f"mask must be 1-d with {nbytes} bytes (the sign bits of grad_output's "
            f"{size} elements), got shape {mask.shape}"
        )


def forward_mask_operands(x, negative_slope, alpha):
    """(x as an array, slope, result dtype) for a forward to a sign mask."""
    _refuse_masked(x, "x")
    _refuse_masked(negative_slope if alpha is None else alpha, _slope_name(alpha))
    x, slope, dtype = forward_operands(x, negative_slope, alpha)
    return np.asarray(x), slope, dtype


def _refuse_masked(value, name):
    """TypeError for a masked array given to the sign-mask functions, whose
    plain results could not keep its mask."""
    if np.ma.isMaskedArray(value):
        raise TypeError(
            f"{name} is a masked array, whose mask the sign-mask functions cannot keep; "
            "use leaky_relu and leaky_relu_backward, which keep it"
        )


def backward_mask_operands(grad_output, mask, negative_slope, alpha):
    """(grad_output and mask as arrays, slope, result dtype) for a backward from a mask."""
    _refuse_masked(grad_output, "grad_output")
    _refuse_masked(negative_slope if alpha is None else alpha, _slope_name(alpha))
    slopes = check_slopes(negative_slope, alpha)
    grad_output = as_array(grad_output, "grad_output")
    dtype = result_dtype(grad_output.dtype, "grad_output")
    mask = as_array(mask, "mask")
    check_mask(mask, grad_output.size)
    return grad_output, mask, check_slopes_fit(slopes, dtype, grad_output.shape, alpha), dtype
