"""Compiled Leaky ReLU kernels.

Design
------
Forward and backward are one operation, a select scaled by the slope::

    out = value             where sign > 0
    out = slope * value     elsewhere (x == 0, x == -0.0 and NaN included)

Forward is (value=x, sign=x); backward is (value=grad_output, sign=x).

Every call is a `Select`: three 2-D operands of one shape, given as a data
pointer and byte strides, already in the compute dtype (float32 or float64),
native byte order and aligned. The iteration space is the flattened
rows x cols range. Threads take contiguous, cache-line-aligned spans of it
(``schedule='static'`` over span indices), and every element goes through the
same per-element code whatever the span, so results never depend on the
thread count. Below PARALLEL_MIN_SIZE elements no OpenMP region is entered.

One row function holds the loops. Its unit-stride loops are what the compiler
vectorises; they need ``-O3 -fno-trapping-math`` (bench/NOTES.md). A separate
output (not in place) of at least the stream cutoff is written with
non-temporal stores (_stream.h), which skip reading the output's cache lines
before writing them; _dispatch.py sets the cutoff from this machine's cache.

Two entry points fill a `Select`:

- ``leaky_select``: typed memoryviews with any 2-D strides, the general path
  (the Python layer has already turned any layout into 2-D views);
- ``select_contiguous``: the common case, contiguous ndarrays, read through
  NumPy's C API so that small calls do not pay for acquiring memoryviews. It
  returns None whenever its case does not apply, and then changes nothing.

This file is compiled once per instruction-set level: each
``_kernels_<level>.pyx`` includes it (see _dispatch.py).
"""
cimport numpy as cnp
from cpython.pystate cimport PyThreadState
from cython cimport floating
from cython.parallel cimport prange
from libc.limits cimport INT_MAX
from libc.math cimport isfinite

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    object PyArray_NewLikeArray(cnp.ndarray prototype, cnp.NPY_ORDER order, void* descr, int subok)

cdef extern from "_stream.h":
    bint LK_HAVE_STREAM
    void lk_stream_select_float(const float*, const float*, float*, Py_ssize_t, float) noexcept nogil
    void lk_stream_select_double(const double*, const double*, double*, Py_ssize_t, double) noexcept nogil
    void lk_stream_select_evens_float(const float*, const float*, float*, Py_ssize_t, float) noexcept nogil
    void lk_stream_select_evens_double(const double*, const double*, double*, Py_ssize_t, double) noexcept nogil
    void lk_stream_fence() noexcept nogil

cdef extern from "_cpu.h":
    const char* LEAKY_KERNEL_SIMD
    bint LEAKY_KERNEL_CPU_HAS_AVX2()

# The instruction set this module was compiled for.
SIMD = LEAKY_KERNEL_SIMD.decode()

# Below this many elements a call runs serially: starting a parallel region
# costs more than it saves (measured, bench/NOTES.md).
PARALLEL_MIN_SIZE = 1 << 15
cdef Py_ssize_t parallel_min_size = PARALLEL_MIN_SIZE

# Separate outputs at least this large are streamed past the cache: four
# times the last-level cache, where streaming won in every run (bench/NOTES.md).
cdef Py_ssize_t stream_min_bytes = 32 << 20

# Calls on fewer elements keep the GIL. Releasing and taking it back (_gil.h)
# costs a call 0.1-0.2 us, and two Python threads calling at 2^12 elements or
# fewer gained nothing reliable from it; at 2^13 they gained 1.5x but a lone
# thread lost 4-11%; from 2^14 releasing won in every run (bench/NOTES.md,
# sections 16 and 18).
GIL_RELEASE_MIN_SIZE = 1 << 14
cdef Py_ssize_t gil_release_min_size = GIL_RELEASE_MIN_SIZE


cdef extern from "_gil.h":
    PyThreadState* lk_release_gil()
    void lk_reacquire_gil(PyThreadState*)


cdef inline PyThreadState* release_gil_if_large(Py_ssize_t size) noexcept:
    """Release the GIL for a call on `size` elements if it is worth it; pass
    the result to reacquire_gil. Between the two, touch no Python object."""
    if size >= gil_release_min_size:
        return lk_release_gil()
    return NULL


cdef inline void reacquire_gil(PyThreadState* released) noexcept:
    if released != NULL:
        lk_reacquire_gil(released)


def get_stream_min_bytes():
    """The smallest separate output, in bytes, written with streaming stores."""
    return stream_min_bytes


def set_stream_min_bytes(nbytes):
    """Set the streaming cutoff of this module (bytes) and return the previous one."""
    global stream_min_bytes
    previous, stream_min_bytes = stream_min_bytes, nbytes
    return previous

# Threads start their spans on a cache-line boundary.
cdef Py_ssize_t SPAN_ALIGN_BYTES = 64


def cpu_has_avx2():
    """Whether this CPU (and OS) runs AVX2 code."""
    return LEAKY_KERNEL_CPU_HAS_AVX2()


cdef struct Operand:
    char* data
    Py_ssize_t row_stride  # bytes
    Py_ssize_t col_stride  # bytes


cdef struct Select:
    Operand value  # IN
    Operand sign   # IN
    Operand out    # OUT
    Py_ssize_t rows
    Py_ssize_t cols


cdef inline floating select_one(floating value, floating sign, floating slope) noexcept nogil:
    return value if sign > 0 else slope * value


cdef void select_row(
    const floating* value, Py_ssize_t value_step,  # IN
    const floating* sign, Py_ssize_t sign_step,    # IN
    floating* out, Py_ssize_t out_step,            # OUT
    Py_ssize_t n,
    floating slope,
    bint stream,
) noexcept nogil:
    cdef Py_ssize_t i
    if value_step == 1 and sign_step == 1 and out_step == 1:
        if stream and LK_HAVE_STREAM:
            if floating is float:
                lk_stream_select_float(value, sign, out, n, slope)
            else:
                lk_stream_select_double(value, sign, out, n, slope)
        elif value == sign:
            # Forward: one input stream; the compiler cannot know value == sign.
            for i in range(n):
                out[i] = select_one(value[i], value[i], slope)
        else:
            for i in range(n):
                out[i] = select_one(value[i], sign[i], slope)
    else:
        select_strided_row(value, value_step, sign, sign_step, out, out_step, n, slope, stream)


cdef enum:
    # Elements per block when a strided row goes through contiguous buffers.
    STRIDED_BLOCK = 4096


cdef inline void gather(
    const floating* src, Py_ssize_t step,  # IN
    floating* dst,                         # OUT
    Py_ssize_t n,
) noexcept nogil:
    """dst[i] = src[i * step]. Step 2 (every other column) gets its own loop:
    with a constant stride the compiler vectorises the loads with shuffles."""
    cdef Py_ssize_t i
    if step == 2:
        for i in range(n):
            dst[i] = src[2 * i]
    else:
        for i in range(n):
            dst[i] = src[i * step]


cdef void select_strided_row(
    const floating* value, Py_ssize_t value_step,  # IN
    const floating* sign, Py_ssize_t sign_step,    # IN
    floating* out, Py_ssize_t out_step,            # OUT
    Py_ssize_t n,
    floating slope,
    bint stream,
) noexcept nogil:
    """A strided row, copied block by block through contiguous buffers so that
    the select runs in the vectorised loop: a strided select compiles to a
    branch per element, mispredicted half the time on mixed signs. A
    contiguous output is written directly, streamed if `stream`; streamed
    step-2 rows (every other column) skip the buffers (_stream.h)."""
    cdef floating value_buf[STRIDED_BLOCK]
    cdef floating sign_buf[STRIDED_BLOCK]
    cdef floating out_buf[STRIDED_BLOCK]
    cdef bint forward = value == sign and value_step == sign_step
    cdef floating* sign_src = sign_buf
    cdef Py_ssize_t start = 0
    cdef Py_ssize_t m, i
    cdef floating* dest
    if stream and LK_HAVE_STREAM and value_step == 2 and sign_step == 2 and out_step == 1:
        if floating is float:
            lk_stream_select_evens_float(value, sign, out, n, slope)
        else:
            lk_stream_select_evens_double(value, sign, out, n, slope)
        return
    if forward:
        sign_src = value_buf
    while start < n:
        m = min(<Py_ssize_t>STRIDED_BLOCK, n - start)
        gather(value + start * value_step, value_step, value_buf, m)
        if not forward:
            gather(sign + start * sign_step, sign_step, sign_buf, m)
        dest = out + start if out_step == 1 else out_buf
        select_row(value_buf, 1, sign_src, 1, dest, 1, m, slope, stream and out_step == 1)
        if out_step != 1:
            for i in range(m):
                out[(start + i) * out_step] = out_buf[i]
        start += m


cdef void select_span(
    const Select* op, Py_ssize_t start, Py_ssize_t stop, floating slope, bint stream
) noexcept nogil:
    """Elements [start, stop) of the flattened rows x cols iteration space."""
    cdef Py_ssize_t row = start // op.cols
    cdef Py_ssize_t col = start - row * op.cols
    cdef Py_ssize_t n
    cdef Py_ssize_t item = sizeof(floating)
    while start < stop:
        n = min(op.cols - col, stop - start)
        select_row(
            <const floating*>(op.value.data + row * op.value.row_stride + col * op.value.col_stride),
            op.value.col_stride // item,
            <const floating*>(op.sign.data + row * op.sign.row_stride + col * op.sign.col_stride),
            op.sign.col_stride // item,
            <floating*>(op.out.data + row * op.out.row_stride + col * op.out.col_stride),
            op.out.col_stride // item,
            n, slope, stream,
        )
        start += n
        row += 1
        col = 0
    if stream and LK_HAVE_STREAM:
        lk_stream_fence()


cdef Py_ssize_t thread_span(Py_ssize_t n, int n_threads, Py_ssize_t multiple) noexcept nogil:
    """Elements per thread span: an even share of n, rounded up to `multiple`."""
    cdef Py_ssize_t span = (n + n_threads - 1) // n_threads
    return (span + multiple - 1) // multiple * multiple


cdef void run_select(const Select* op, floating slope, int n_threads) noexcept nogil:
    cdef Py_ssize_t total = op.rows * op.cols
    # In place, ordinary stores cost no extra read: the line was just read.
    cdef bint stream = (
        total * <Py_ssize_t>sizeof(floating) >= stream_min_bytes
        and op.out.data != op.value.data
        and op.out.data != op.sign.data
    )
    cdef Py_ssize_t span, n_spans, s
    if total == 0:
        return
    if n_threads <= 1:
        select_span(op, 0, total, slope, stream)
        return
    span = thread_span(total, n_threads, SPAN_ALIGN_BYTES // sizeof(floating))
    n_spans = (total + span - 1) // span
    for s in prange(n_spans, schedule='static', num_threads=n_threads):
        select_span(op, s * span, min(total, (s + 1) * span), slope, stream)


def leaky_select(
    const floating[:, :] value,  # IN
    const floating[:, :] sign,   # IN
    floating[:, :] out,          # OUT
    double negative_slope,
    int n_threads,
):
    """out = value where sign > 0, else negative_slope * value, for any 2-D strides."""
    cdef Select op
    cdef PyThreadState* released
    cdef floating slope = <floating>negative_slope
    if out.shape[0] == 0 or out.shape[1] == 0:
        return
    op.rows = out.shape[0]
    op.cols = out.shape[1]
    op.value = Operand(<char*>&value[0, 0], value.strides[0], value.strides[1])
    op.sign = Operand(<char*>&sign[0, 0], sign.strides[0], sign.strides[1])
    op.out = Operand(<char*>&out[0, 0], out.strides[0], out.strides[1])
    released = release_gil_if_large(op.rows * op.cols)
    run_select(&op, slope, n_threads)
    reacquire_gil(released)


cdef int contiguous_order(object a, int typenum):
    """1 if `a` is C-contiguous, 2 if F-contiguous, 0 if it is not an exact
    ndarray of `typenum`, native, aligned, at least 1-d and contiguous."""
    if not cnp.PyArray_CheckExact(a):
        return 0
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if (
        cnp.PyArray_TYPE(arr) != typenum
        or cnp.PyArray_NDIM(arr) == 0
        or not cnp.PyArray_ISNOTSWAPPED(arr)
        or not cnp.PyArray_ISALIGNED(arr)
    ):
        return 0
    if cnp.PyArray_IS_C_CONTIGUOUS(arr):
        return 1
    if cnp.PyArray_IS_F_CONTIGUOUS(arr):
        return 2
    return 0


cdef bint overlaps(cnp.ndarray a, cnp.ndarray b):
    """Whether the bytes of two contiguous arrays intersect."""
    cdef char* a0 = <char*>cnp.PyArray_DATA(a)
    cdef char* b0 = <char*>cnp.PyArray_DATA(b)
    return a0 < b0 + cnp.PyArray_NBYTES(b) and b0 < a0 + cnp.PyArray_NBYTES(a)


def select_contiguous(value, sign, negative_slope, out, num_threads, threads_for):
    """value where sign > 0, else slope * value, or None when this case does not apply.

    It applies when value and sign are exact ndarrays of one dtype (float32 or
    float64), native, aligned, at least 1-d, of one shape and contiguous in one
    order; out is None or such an array, writeable, that is value or overlaps
    neither input; negative_slope is a finite float; num_threads is None or a
    positive int. `threads_for(size, num_threads)` gives the thread count of a
    parallel-sized call. Returning None, it has checked nothing aloud and
    changed nothing: the general path checks and reports.
    """
    cdef int order, typenum
    cdef cnp.ndarray v, s, o
    cdef Select op
    cdef double slope
    cdef Py_ssize_t size, item
    cdef int n_threads = 1
    cdef PyThreadState* released
    if not isinstance(negative_slope, float):
        return None
    slope = negative_slope
    if not isfinite(slope):
        return None
    if num_threads is not None and not (type(num_threads) is int and 1 <= num_threads <= INT_MAX):
        return None
    if not cnp.PyArray_CheckExact(value):
        return None
    typenum = cnp.PyArray_TYPE(<cnp.ndarray>value)
    if typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE:
        return None
    order = contiguous_order(value, typenum)
    if order == 0:
        return None
    v = <cnp.ndarray>value
    if sign is not value:
        if contiguous_order(sign, typenum) != order or not cnp.PyArray_SAMESHAPE(v, <cnp.ndarray>sign):
            return None
    s = <cnp.ndarray>sign
    if out is None:
        o = <cnp.ndarray>PyArray_NewLikeArray(v, cnp.NPY_KEEPORDER, NULL, 0)
    else:
        if (
            contiguous_order(out, typenum) != order
            or not cnp.PyArray_SAMESHAPE(v, <cnp.ndarray>out)
            or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out)
        ):
            return None
        o = <cnp.ndarray>out
        if (o is not v and overlaps(o, v)) or (o is not s and s is not v and overlaps(o, s)):
            return None
    size = cnp.PyArray_SIZE(v)
    if size >= parallel_min_size:
        n_threads = threads_for(size, num_threads)
    item = cnp.PyArray_ITEMSIZE(v)
    op.rows = 1
    op.cols = size
    op.value = Operand(<char*>cnp.PyArray_DATA(v), 0, item)
    op.sign = Operand(<char*>cnp.PyArray_DATA(s), 0, item)
    op.out = Operand(<char*>cnp.PyArray_DATA(o), 0, item)
    released = release_gil_if_large(size)
    if typenum == cnp.NPY_FLOAT:
        run_select(&op, <float>slope, n_threads)
    else:
        run_select(&op, slope, n_threads)
    reacquire_gil(released)
    return o


# ============================================================================
# Sign masks (issue 4)
# ============================================================================
# A forward that also writes a packed sign mask, and a backward that reads
# the mask in place of x. Mask byte b holds elements 8b .. 8b+7, element
# 8b+j in bit j (little-endian bit order):
# np.packbits((x > 0).reshape(-1), bitorder="little"). The backward then
# reads 1/32 (float32) or 1/64 (float64) of the bytes of x.
#
# Operands are 1-d, contiguous and in the compute dtype: the Python layer
# flattens in C order, the mask's order. The work is the same select as
# above, so results are exact; threads take spans of whole mask cache lines
# (schedule='static'), and the bytes of every span but the last are whole,
# so every element goes through the same code whatever the thread count.
# On x86-64 whole bytes run through the SIMD bodies of _mask.h, which pack
# and unpack bits several times faster than what GCC makes of the portable
# loops (see there) and can stream; the portable loops below do the last,
# partial byte, and everything on other platforms.

cdef extern from "_mask.h":
    bint LK_HAVE_MASK_SIMD
    void lk_mask_forward_float(
        const float*, float*, unsigned char*, Py_ssize_t, float, bint) noexcept nogil
    void lk_mask_forward_double(
        const double*, double*, unsigned char*, Py_ssize_t, double, bint) noexcept nogil
    void lk_mask_backward_float(
        const float*, const unsigned char*, float*, Py_ssize_t, float, bint) noexcept nogil
    void lk_mask_backward_double(
        const double*, const unsigned char*, double*, Py_ssize_t, double, bint) noexcept nogil

# A span is whole cache lines of the mask (64 bytes of bits): threads then
# share no line of the mask, and their data spans are whole lines long.
cdef Py_ssize_t MASK_SPAN_ELEMENTS = 64 * 8


cdef inline unsigned char positive_bit(floating x, int j) noexcept nogil:
    """Bit j set where x > 0."""
    return <unsigned char>(x > 0) << j


cdef inline int mask_bit(unsigned char bits, int j) noexcept nogil:
    """Bit j of a mask byte: 1 where that element was positive, else 0."""
    return (bits >> j) & 1


cdef inline unsigned char forward_byte(
    const floating* x,  # IN
    floating* out,      # OUT
    int n,              # at most 8
    floating slope,
) noexcept nogil:
    """out[:n] = select of x[:n]; returns their mask byte (unused bits 0)."""
    cdef unsigned char bits = 0
    cdef floating value
    cdef int j
    for j in range(n):
        value = x[j]  # read before out[j] is written: out may be x
        out[j] = select_one(value, value, slope)
        bits |= positive_bit(value, j)
    return bits


cdef inline void backward_byte(
    const floating* g,   # IN
    unsigned char bits,  # IN
    floating* out,       # OUT
    int n,               # at most 8
    floating slope,
) noexcept nogil:
    cdef int j
    for j in range(n):
        # The bit is a sign for select_one: 1 is positive, 0 is not.
        out[j] = select_one(g[j], <floating>mask_bit(bits, j), slope)


cdef void forward_mask_span(
    const floating* x,    # IN
    floating* out,        # OUT
    unsigned char* mask,  # OUT
    Py_ssize_t start, Py_ssize_t stop,  # start a multiple of 8
    floating slope,
    bint stream,
) noexcept nogil:
    cdef Py_ssize_t first = start // 8
    cdef Py_ssize_t whole = (stop - start) // 8
    cdef Py_ssize_t b, i
    if LK_HAVE_MASK_SIMD:
        if floating is float:
            lk_mask_forward_float(x + start, out + start, mask + first, whole, slope, stream)
        else:
            lk_mask_forward_double(x + start, out + start, mask + first, whole, slope, stream)
    else:
        for b in range(first, first + whole):
            mask[b] = forward_byte(x + 8 * b, out + 8 * b, 8, slope)
    i = start + 8 * whole
    if i < stop:
        mask[first + whole] = forward_byte(x + i, out + i, <int>(stop - i), slope)


cdef void backward_mask_span(
    const floating* g,          # IN
    const unsigned char* mask,  # IN
    floating* out,              # OUT
    Py_ssize_t start, Py_ssize_t stop,  # start a multiple of 8
    floating slope,
    bint stream,
) noexcept nogil:
    cdef Py_ssize_t first = start // 8
    cdef Py_ssize_t whole = (stop - start) // 8
    cdef Py_ssize_t b, i
    if LK_HAVE_MASK_SIMD:
        if floating is float:
            lk_mask_backward_float(g + start, mask + first, out + start, whole, slope, stream)
        else:
            lk_mask_backward_double(g + start, mask + first, out + start, whole, slope, stream)
    else:
        for b in range(first, first + whole):
            backward_byte(g + 8 * b, mask[b], out + 8 * b, 8, slope)
    i = start + 8 * whole
    if i < stop:
        backward_byte(g + i, mask[first + whole], out + i, <int>(stop - i), slope)


cdef void run_forward_mask(
    const floating* x,    # IN
    floating* out,        # OUT
    unsigned char* mask,  # OUT
    Py_ssize_t n, floating slope, int n_threads,
) noexcept nogil:
    # In place, ordinary stores cost no extra read: the line was just read.
    cdef bint stream = n * <Py_ssize_t>sizeof(floating) >= stream_min_bytes and out != x
    cdef Py_ssize_t span, s
    if n_threads <= 1:
        forward_mask_span(x, out, mask, 0, n, slope, stream)
        return
    span = thread_span(n, n_threads, MASK_SPAN_ELEMENTS)
    for s in prange((n + span - 1) // span, schedule='static', num_threads=n_threads):
        forward_mask_span(x, out, mask, s * span, min(n, (s + 1) * span), slope, stream)


cdef void run_backward_mask(
    const floating* g,          # IN
    const unsigned char* mask,  # IN
    floating* out,              # OUT
    Py_ssize_t n, floating slope, int n_threads,
) noexcept nogil:
    cdef bint stream = n * <Py_ssize_t>sizeof(floating) >= stream_min_bytes and out != g
    cdef Py_ssize_t span, s
    if n_threads <= 1:
        backward_mask_span(g, mask, out, 0, n, slope, stream)
        return
    span = thread_span(n, n_threads, MASK_SPAN_ELEMENTS)
    for s in prange((n + span - 1) // span, schedule='static', num_threads=n_threads):
        backward_mask_span(g, mask, out, s * span, min(n, (s + 1) * span), slope, stream)


def forward_mask(
    const floating[::1] x,     # IN
    floating[::1] out,         # OUT
    unsigned char[::1] mask,   # OUT, (len(x) + 7) // 8 bytes
    double negative_slope,
    int n_threads,
):
    """out = x where x > 0, else negative_slope * x; mask = the packed bits of x > 0.

    out may be x itself, or must not overlap it.
    """
    cdef PyThreadState* released
    if x.shape[0] == 0:
        return
    released = release_gil_if_large(x.shape[0])
    run_forward_mask(&x[0], &out[0], &mask[0], x.shape[0], <floating>negative_slope, n_threads)
    reacquire_gil(released)


def backward_mask(
    const floating[::1] grad_output,  # IN
    const unsigned char[::1] mask,    # IN, (len(grad_output) + 7) // 8 bytes
    floating[::1] out,                # OUT
    double negative_slope,
    int n_threads,
):
    """out = grad_output where the mask bit is set, else negative_slope * grad_output.

    out may be grad_output itself, or must overlap neither input.
    """
    cdef PyThreadState* released
    if grad_output.shape[0] == 0:
        return
    released = release_gil_if_large(grad_output.shape[0])
    run_backward_mask(
        &grad_output[0], &mask[0], &out[0], grad_output.shape[0],
        <floating>negative_slope, n_threads,
    )
    reacquire_gil(released)
