"""Argument rules shared by the compiled API and the oracle.

Everything here raises TypeError or ValueError naming the argument, and runs
before anything is written, so a bad call changes nothing.
"""
import math
import numbers
import reprlib

import numpy as np

SUPPORTED_DTYPES = "float16, float32, float64, bool and integers (computed in float64)"

# Result dtype by dtype.char; byte-swapped floats share the char of the native one.
_FLOAT_RESULTS = {
    "e": np.dtype(np.float16),
    "f": np.dtype(np.float32),
    "d": np.dtype(np.float64),
}
FLOAT64 = np.dtype(np.float64)
# float16 is computed in float32 and rounded once, as PyTorch's CPU kernel does.
_COMPUTE = {np.dtype(np.float16): np.dtype(np.float32)}


# Thread counts reach OpenMP as a C int.
MAX_THREADS = 2**31 - 1


class _DefaultSlope(float):
    """0.01, marked so that an explicit negative_slope can be told from the default."""


DEFAULT_SLOPE = _DefaultSlope(0.01)


def describe(value):
    """An argument as error messages show it: never more than a short line,
    and for arrays their type, shape and dtype instead of their elements."""
    if isinstance(value, np.ndarray) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"{reprlib.repr(value)} of type {type(value).__name__}"


def check_slope(negative_slope, alpha):
    """The slope as a finite Python float; alpha is negative_slope's alias."""
    if alpha is None:
        return _finite_real(negative_slope, "negative_slope")
    if negative_slope is not DEFAULT_SLOPE:
        raise TypeError("give negative_slope or its alias alpha, not both")
    return _finite_real(alpha, "alpha")


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


def check_slope_fits(slope, dtype, alpha):
    """The slope, checked to be finite once rounded to the compute dtype of a
    result of `dtype` (1e39 is a valid float64 slope but overflows float32)."""
    compute = compute_dtype(dtype)
    with np.errstate(over="ignore"):
        fits = math.isfinite(compute.type(slope))
    if not fits:
        name = "negative_slope" if alpha is None else "alpha"
        raise ValueError(
            f"{name} must be finite in {compute}, the dtype this call computes in; "
            f"{slope!r} overflows it"
        )
    return slope


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


def as_array(value, name):
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(
            f"{name} cannot be converted to an array: {reason}"
        ) from None


def result_dtype(dtype, name):
    """The dtype a call returns for an operand of this dtype."""
    if dtype.kind in "biu":
        return FLOAT64
    if dtype.kind == "f" and dtype.char in _FLOAT_RESULTS:
        return _FLOAT_RESULTS[dtype.char]
    raise TypeError(f"{name} has unsupported dtype {dtype}; supported: {SUPPORTED_DTYPES}")


def compute_dtype(dtype):
    """The dtype the kernel computes in for a result of this dtype."""
    return _COMPUTE.get(dtype, dtype)


def check_out(out, dtype, shape):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype} (the result dtype), got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"out must have shape {shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable, got a read-only array")


def forward_operands(x, negative_slope, alpha):
    """(x as an array, slope, result dtype) for a forward call."""
    slope = check_slope(negative_slope, alpha)
    x = as_array(x, "x")
    dtype = result_dtype(x.dtype, "x")
    return x, check_slope_fits(slope, dtype, alpha), dtype


def backward_operands(grad_output, x, negative_slope, alpha, x_is_output):
    """(grad_output and x as arrays, slope, result dtype) for a backward call."""
    slope = check_slope(negative_slope, alpha)
    if not isinstance(x_is_output, (bool, np.bool_)):
        raise TypeError(f"x_is_output must be a bool, got {describe(x_is_output)}")
    if x_is_output and slope < 0:
        raise ValueError(
            "x_is_output=True needs a slope >= 0 (the input's sign cannot be recovered "
            f"from the output otherwise), got {slope!r}"
        )
    grad_output = as_array(grad_output, "grad_output")
    x = as_array(x, "x")
    result_dtype(grad_output.dtype, "grad_output")
    result_dtype(x.dtype, "x")
    if grad_output.shape != x.shape:
        raise ValueError(
            f"grad_output and x must have the same shape, got {grad_output.shape} and {x.shape}"
        )
    dtype = result_dtype(np.result_type(grad_output.dtype, x.dtype), "grad_output and x")
    return grad_output, x, check_slope_fits(slope, dtype, alpha), dtype


# The sign mask of an array of n elements is n bits packed into ceil(n / 8)
# uint8 bytes: bit i is x.flat[i] > 0 in C order, little-endian bit order
# within each byte, i.e. np.packbits((x > 0).reshape(-1), bitorder="little").
MASK_DTYPE = np.dtype(np.uint8)


def mask_nbytes(size):
    """Bytes of the sign mask of `size` elements."""
    return (size + 7) // 8


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


def backward_mask_operands(grad_output, mask, negative_slope, alpha):
    """(grad_output and mask as arrays, slope, result dtype) for a backward from a mask."""
    slope = check_slope(negative_slope, alpha)
    grad_output = as_array(grad_output, "grad_output")
    dtype = result_dtype(grad_output.dtype, "grad_output")
    mask = as_array(mask, "mask")
    check_mask(mask, grad_output.size)
    return grad_output, mask, check_slope_fits(slope, dtype, alpha), dtype
