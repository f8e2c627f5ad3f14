# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled Leaky ReLU kernels.

Design
------
Forward and backward are one operation, a select scaled by the slope::

    out = value             where sign > 0
    out = slope * value     elsewhere (x == 0, x == -0.0 and NaN included)

Forward is (value=x, sign=x); backward is (value=grad_output, sign=x).

The Python layer hands over every operand as a 2-D view of one shape whose
rows may be strided, already converted to the compute dtype (float32 or
float64), native byte order and aligned. The iteration space is the flattened
rows x cols range. Threads take contiguous, cache-line-rounded spans of it
(``schedule='static'`` over span indices), so results never depend on the
thread count: every element goes through the same per-element function.

One row function holds the loops. Its unit-stride loops are what the compiler
vectorises; they need ``-O3 -fno-trapping-math`` (see bench/NOTES.md: GCC
will not if-convert the select while FP multiplies may trap).
"""
from cython cimport floating
from cython.parallel cimport prange

cdef extern from *:
    """
    #if defined(__AVX2__)
    #define LEAKY_KERNEL_SIMD "AVX2"
    #elif defined(__SSE2__) || defined(_M_X64)
    #define LEAKY_KERNEL_SIMD "SSE2"
    #elif defined(__ARM_NEON)
    #define LEAKY_KERNEL_SIMD "NEON"
    #else
    #define LEAKY_KERNEL_SIMD "unknown"
    #endif
    """
    const char* LEAKY_KERNEL_SIMD

# The instruction set this module was compiled for.
SIMD = LEAKY_KERNEL_SIMD.decode()

# Threads start their spans on a cache-line boundary (64 bytes).
cdef Py_ssize_t SPAN_ALIGN_BYTES = 64


cdef inline floating select_one(floating value, floating sign, floating slope) noexcept nogil:
    return value if sign > 0 else slope * value


cdef void select_row(
    const floating* value, Py_ssize_t value_step,  # IN
    const floating* sign, Py_ssize_t sign_step,    # IN
    floating* out, Py_ssize_t out_step,            # OUT
    Py_ssize_t n,
    floating slope,
) noexcept nogil:
    cdef Py_ssize_t i
    if value_step == 1 and sign_step == 1 and out_step == 1:
        if value == sign:
            # Forward: one input stream; the compiler cannot know value == sign.
            for i in range(n):
                out[i] = select_one(value[i], value[i], slope)
        else:
            for i in range(n):
                out[i] = select_one(value[i], sign[i], slope)
    else:
        for i in range(n):
            out[i * out_step] = select_one(value[i * value_step], sign[i * sign_step], slope)


cdef void select_span(
    const floating[:, :] value,  # IN
    const floating[:, :] sign,   # IN
    floating[:, :] out,          # OUT
    Py_ssize_t start,
    Py_ssize_t stop,
    floating slope,
) noexcept nogil:
    """Elements [start, stop) of the flattened rows x cols iteration space."""
    cdef Py_ssize_t cols = out.shape[1]
    cdef Py_ssize_t row = start // cols
    cdef Py_ssize_t col = start - row * cols
    cdef Py_ssize_t n
    cdef Py_ssize_t item = sizeof(floating)
    while start < stop:
        n = min(cols - col, stop - start)
        select_row(
            &value[row, col], value.strides[1] // item,
            &sign[row, col], sign.strides[1] // item,
            &out[row, col], out.strides[1] // item,
            n, slope,
        )
        start += n
        row += 1
        col = 0


def leaky_select(
    const floating[:, :] value,  # IN
    const floating[:, :] sign,   # IN
    floating[:, :] out,          # OUT
    double negative_slope,
    int n_threads,
):
    """out = value where sign > 0, else negative_slope * value (rounded to the dtype).

    With n_threads == 1 no OpenMP region is entered.
    """
    cdef floating slope = <floating>negative_slope
    cdef Py_ssize_t total = out.shape[0] * out.shape[1]
    cdef Py_ssize_t align = SPAN_ALIGN_BYTES // sizeof(floating)
    cdef Py_ssize_t span, n_spans, s
    if total == 0:
        return
    if n_threads <= 1:
        with nogil:
            select_span(value, sign, out, 0, total, slope)
        return
    span = (total + n_threads - 1) // n_threads
    span = (span + align - 1) // align * align
    n_spans = (total + span - 1) // span
    for s in prange(n_spans, schedule='static', nogil=True, num_threads=n_threads):
        select_span(value, sign, out, s * span, min(total, (s + 1) * span), slope)
