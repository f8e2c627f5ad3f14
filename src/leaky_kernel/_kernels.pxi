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
thread count. A call never starts more threads than it has spans of at least
`min_thread_elements` elements: below two such spans no OpenMP region is
entered, and an absurd thread count cannot start thousands of threads.

One row function holds the loops. Its unit-stride loops are what the compiler
vectorises; they need ``-O3 -fno-trapping-math`` (setup.py says why). A separate
output (not in place) large enough is written with non-temporal stores
(_stream.h), which skip reading the output's cache lines before writing them.

Every choice that depends on the machine is a field of `Tuning`, which
_tuning.py sets through `configure`: for each route (forward or backward,
into a caller's out= or a fresh result, serial or parallel), bands of bytes
moved, each with its stores (ordinary, streaming line by line, streaming
several pages at once) and software prefetch; and the elements a thread must
have. A call copies its band once, before it starts: changing the tuning
while another thread is inside a kernel only affects later calls. No choice
changes a computed bit.

The GIL is released in Cython-checked ``with nogil`` blocks, for calls large
enough to gain from it; _gil.h hands it between callers without sleeping.

The entry points fill a `Job` and `run` it:

- ``leaky_select``: typed memoryviews with any 2-D strides, the general path
  (the Python layer has already turned any layout into 2-D views);
- ``select_contiguous``: the common case, contiguous ndarrays, read through
  NumPy's C API so that small calls do not pay for acquiring memoryviews. It
  returns None whenever its case does not apply, and then changes nothing;
- ``forward_mask`` and ``backward_mask``: the sign-mask kernels (below).

This file is compiled once per instruction-set level: each
``_kernels_<level>.pyx`` includes it (see _dispatch.py).
"""
cimport numpy as cnp
from cpython.pyport cimport PY_SSIZE_T_MAX
from cython cimport floating
from cython.parallel cimport prange
from libc.limits cimport INT_MAX
from libc.math cimport isfinite, isinf
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    object PyArray_NewLikeArray(cnp.ndarray prototype, cnp.NPY_ORDER order, void* descr, int subok)

cdef extern from "_stream.h":
    bint LK_HAVE_STREAM
    enum:
        LK_PAGES
        LK_PREFETCH_NONE
        LK_PREFETCH_T0
        LK_PREFETCH_NTA
    # sign NULL: the forward of value; else the backward of grad_output value at x sign.
    void lk_stream_leaky_relu_float(
        const float*, const float*, float*, Py_ssize_t, float, int, Py_ssize_t) noexcept nogil
    void lk_stream_leaky_relu_double(
        const double*, const double*, double*, Py_ssize_t, double, int, Py_ssize_t) noexcept nogil
    void lk_stream_leaky_relu_evens_float(
        const float*, const float*, float*, Py_ssize_t, float, int, Py_ssize_t) noexcept nogil
    void lk_stream_leaky_relu_evens_double(
        const double*, const double*, double*, Py_ssize_t, double, int, Py_ssize_t) noexcept nogil
    void lk_stream_leaky_relu_pages_float(const float*, float*, Py_ssize_t, float) noexcept nogil
    void lk_stream_leaky_relu_pages_double(const double*, double*, Py_ssize_t, double) noexcept nogil
    void lk_stream_fence() noexcept nogil
    void lk_stream_move(const float*, const float*, float*, Py_ssize_t, int, int,
                        Py_ssize_t) noexcept nogil

cdef extern from "_gil.h":
    void lk_gil_released() noexcept nogil
    void lk_gil_wait_for_holder() noexcept nogil
    void lk_gil_reacquired() noexcept nogil

cdef extern from "_cpu.h":
    const char* LEAKY_KERNEL_SIMD

# The instruction set this module was compiled for.
SIMD = LEAKY_KERNEL_SIMD.decode()

# Whether this build has a streaming-store (and prefetch) loop at all.
HAVE_STREAM = bool(LK_HAVE_STREAM)


# ============================================================================
# Tuning
# ============================================================================

cdef enum Stores:
    ORDINARY_STORES
    STREAM_LINES  # streaming stores, line by line (with the band's prefetch)
    STREAM_PAGES  # streaming stores, LK_PAGES pages at a time: contiguous forward selects only

STORES = {"ordinary": ORDINARY_STORES, "lines": STREAM_LINES, "pages": STREAM_PAGES}
_STORES_NAMES = {code: name for name, code in STORES.items()}
PREFETCH_KINDS = {"none": LK_PREFETCH_NONE, "t0": LK_PREFETCH_T0, "nta": LK_PREFETCH_NTA}
_PREFETCH_NAMES = {code: name for name, code in PREFETCH_KINDS.items()}


cdef struct Band:
    Py_ssize_t min_bytes      # a call that moves at least this many bytes (inputs and output)
    Stores stores             # writes its output this way
    int prefetch              # LK_PREFETCH_* of the inputs, in the streaming loops
    Py_ssize_t prefetch_bytes # how far ahead, shared by the inputs


# A route is one kind of call: forward or backward (one input or two), into a
# caller's out= or into a fresh result, serial or parallel. Which stores win
# depends on all four, and on the bytes the call moves.
cdef enum:
    MAX_BANDS = 8
    N_ROUTES = 8

ROUTES = tuple(f"{op} {output} {threads}"
               for threads in ("serial", "parallel")
               for output in ("out", "fresh")
               for op in ("forward", "backward"))


cdef struct Tuning:
    # Each route's bands, by min_bytes: bands[0] starts at 0, and slots past
    # the last band repeat it with min_bytes PY_SSIZE_T_MAX, so that a copy
    # torn by a concurrent configure still holds valid bands.
    Band routes[N_ROUTES][MAX_BANDS]
    Py_ssize_t min_thread_elements  # a thread takes at least this many elements

cdef Tuning tuning

# Operands of this many bytes or more make the fast paths decline, in a
# thread mode (serial, parallel) that _tuning.py has yet to fit: the Python
# layer fits it first.
cdef Py_ssize_t fit_min_bytes[2]
fit_min_bytes[:] = [PY_SSIZE_T_MAX, PY_SSIZE_T_MAX]


cdef int route_index(bint backward, bint fresh_output, bint parallel) noexcept nogil:
    """Index into Tuning.routes, in the order of ROUTES."""
    return backward + 2 * fresh_output + 4 * parallel


cdef void install(Tuning new):
    global tuning, PARALLEL_MIN_SIZE
    tuning = new
    # The elements from which a call can use two threads (work_threads).
    PARALLEL_MIN_SIZE = 2 * new.min_thread_elements


cdef Tuning neutral_tuning():
    """Ordinary stores everywhere: until _tuning.py configures the module."""
    cdef Tuning t
    cdef int r, b
    for r in range(N_ROUTES):
        for b in range(MAX_BANDS):
            t.routes[r][b] = Band(0 if b == 0 else PY_SSIZE_T_MAX, ORDINARY_STORES,
                                  LK_PREFETCH_NONE, 0)
    t.min_thread_elements = 1 << 14
    return t


install(neutral_tuning())


def get_configuration():
    """This module's tuning, as a dict of configure's keywords: ``plans`` maps
    each route of ROUTES to its bands, (min_bytes, stores, prefetch,
    prefetch_bytes) tuples with names from STORES and PREFETCH_KINDS."""
    cdef int r, b
    plans = {}
    for r in range(N_ROUTES):
        bands = []
        for b in range(MAX_BANDS):
            band = tuning.routes[r][b]
            if b and band.min_bytes == PY_SSIZE_T_MAX:
                break
            bands.append((band.min_bytes, _STORES_NAMES[band.stores],
                          _PREFETCH_NAMES[band.prefetch], band.prefetch_bytes))
        plans[ROUTES[r]] = bands
    return {"plans": plans, "min_thread_elements": tuning.min_thread_elements,
            "fit_min_bytes": {"serial": fit_min_bytes[0], "parallel": fit_min_bytes[1]}}


def configure(**changes):
    """Change this module's tuning: ``plans`` (a dict of some routes' bands, as
    get_configuration gives them; the first band of each starts at 0, and
    min_bytes increase), ``min_thread_elements`` and ``fit_min_bytes``
    ({"serial": bytes, "parallel": bytes}). Values are checked by
    _tuning.py; unknown names are a TypeError. Returns the previous
    configuration, so that ``configure(**previous)`` restores it."""
    cdef Tuning new = tuning
    cdef int r, b
    previous = get_configuration()
    unknown = set(changes) - set(previous)
    if unknown:
        raise TypeError(f"unknown tuning fields: {sorted(unknown)}")
    for route, bands in changes.get("plans", {}).items():
        r = ROUTES.index(route)
        if not 1 <= len(bands) <= MAX_BANDS or bands[0][0] != 0:
            raise ValueError(f"{route}: 1 to {MAX_BANDS} bands, the first from 0 bytes")
        for b in range(MAX_BANDS):
            min_bytes, stores, prefetch, prefetch_bytes = bands[min(b, len(bands) - 1)]
            new.routes[r][b] = Band(min_bytes if b < len(bands) else PY_SSIZE_T_MAX,
                                    STORES[stores], PREFETCH_KINDS[prefetch], prefetch_bytes)
    new.min_thread_elements = max(1, changes.get("min_thread_elements",
                                                 tuning.min_thread_elements))
    fit = changes.get("fit_min_bytes", previous["fit_min_bytes"])
    fit_min_bytes[0], fit_min_bytes[1] = fit["serial"], fit["parallel"]
    install(new)
    return previous


# ============================================================================
# Threads: how many a call uses, from the state the Python layer configures
# ============================================================================
# _threads.py pushes the package's default count and the cap down here
# (configure_threads), so that a call resolves its count without calling back
# into Python. A forked child runs serially: GNU libgomp hangs a child that
# enters a parallel region after its parent used one, and the child cannot
# tell whether the parent did. The fork handler is the C library's, so that
# it also covers forks that bypass Python's os.register_at_fork.

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #endif
    static int lk_openmp_max_threads(void) {
    #ifdef _OPENMP
        return omp_get_max_threads();
    #else
        return 1;
    #endif
    }
    #if defined(_WIN32)
    static int lk_on_fork_child(void (*handler)(void)) { (void)handler; return 0; }
    #else
    #include <pthread.h>
    static int lk_on_fork_child(void (*handler)(void)) {
        return pthread_atfork(NULL, NULL, handler);
    }
    #endif
    """
    int lk_openmp_max_threads() noexcept nogil
    int lk_on_fork_child(void (*handler)() noexcept nogil) noexcept nogil

cdef int default_threads = 0  # the package default; 0 follows omp_get_max_threads()
cdef int thread_cap = 1       # no call uses more
cdef bint serial_only = False  # a forked child, or a subinterpreter


cdef void mark_forked_child() noexcept nogil:
    global serial_only
    serial_only = True


lk_on_fork_child(mark_forked_child)


cdef int resolve_threads(int requested) noexcept nogil:
    """The threads a call may use: `requested`, or the configured default for
    0, capped at thread_cap; 1 where only serial calls are safe."""
    cdef int n = requested
    if serial_only:
        return 1
    if n <= 0:
        n = default_threads if default_threads > 0 else lk_openmp_max_threads()
    return max(1, min(n, thread_cap))


def configure_threads(**changes):
    """Change the thread state calls resolve their count from: `default`
    (a positive int, or None to follow OpenMP), `cap` (a positive int) and
    `serial` (a bool). Values are checked by _threads.py. Returns the previous
    state, so that ``configure_threads(**previous)`` restores it."""
    global default_threads, thread_cap, serial_only
    previous = {"default": default_threads or None, "cap": thread_cap, "serial": serial_only}
    unknown = set(changes) - set(previous)
    if unknown:
        raise TypeError(f"unknown thread settings: {sorted(unknown)}")
    new = {**previous, **changes}
    default_threads = new["default"] or 0
    thread_cap = max(1, new["cap"])
    serial_only = new["serial"]
    return previous


def call_threads(num_threads):
    """The threads a call with this num_threads (None, or an already checked
    positive int) may use."""
    return resolve_threads(0 if num_threads is None else num_threads)


# Calls on fewer elements keep the GIL. Releasing and taking it back costs
# every call something, which small calls feel and which only pays when
# other Python threads have work to do meanwhile: below this size it did not
# pay reliably on the machines measured.
GIL_RELEASE_MIN_SIZE = 1 << 14
cdef Py_ssize_t gil_release_min_size = GIL_RELEASE_MIN_SIZE

# Bytes per cache line on x86-64 and most other CPUs.
cdef enum:
    LINE_BYTES = 64
# Threads start their spans on a cache-line boundary.
cdef Py_ssize_t SPAN_ALIGN_BYTES = LINE_BYTES


# ============================================================================
# Jobs: what a call asks for, and running it
# ============================================================================

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


cdef enum JobKind:
    SELECT
    FORWARD_MASK   # value is x, out the result, mask the sign bits written
    BACKWARD_MASK  # value is grad_output, mask the sign bits read


cdef struct Job:
    JobKind kind
    bint is_double
    Select op            # a mask job's operands are 1 x n and contiguous
    unsigned char* mask  # mask jobs
    double slope
    int n_threads        # from work_threads: at most one per span of work
    bint fresh_output    # out is a result just allocated, not the caller's memory
    Band band            # how this call writes its output and prefetches its inputs
    char* scratch        # SELECT with a strided operand: STRIDED_SCRATCH_BYTES a thread


cdef int work_threads(Py_ssize_t total, int requested, Py_ssize_t min_thread_elements) noexcept nogil:
    """The threads a call on `total` elements starts: at most `requested`,
    and no more than it has spans of at least min_thread_elements."""
    cdef Py_ssize_t most = total // min_thread_elements
    if most <= 1 or requested <= 1:
        return 1
    return <int>most if most < requested else requested


cdef void fill_job(Job* job, JobKind kind, bint is_double, double slope, int requested,
                   bint fresh_output) noexcept nogil:
    """The fields every job has; op must be set already."""
    job.kind = kind
    job.is_double = is_double
    job.slope = slope
    job.n_threads = work_threads(job.op.rows * job.op.cols, requested,
                                 tuning.min_thread_elements)
    job.fresh_output = fresh_output
    job.band = choose_band(job)
    job.scratch = NULL


cdef Band choose_band(const Job* job) noexcept nogil:
    """The band of the job's route that its bytes moved fall in. A ufunc loop
    may read the tuning without the GIL: a band torn by a concurrent configure
    mixes valid choices, none of which changes a bit."""
    cdef bint two_inputs = job.kind == SELECT and job.op.sign.data != job.op.value.data
    cdef Py_ssize_t item = 8 if job.is_double else 4
    cdef Py_ssize_t moved = job.op.rows * job.op.cols * item * (3 if two_inputs else 2)
    cdef const Band* bands = tuning.routes[
        route_index(two_inputs, job.fresh_output, job.n_threads > 1)]
    cdef int b = 0
    while b + 1 < MAX_BANDS and bands[b + 1].min_bytes <= moved:
        b += 1
    return bands[b]


cdef bint give_scratch(Job* job) noexcept nogil:
    """Heap buffers for a SELECT job with a strided operand (none for others);
    False when there is no memory for them."""
    if job.kind == SELECT and has_strided_operand(&job.op, 8 if job.is_double else 4):
        job.scratch = <char*>malloc(job.n_threads * STRIDED_SCRATCH_BYTES)
        return job.scratch != NULL
    return True


cdef int run(Job* job) except -1:
    """Run a filled job, without the GIL for calls large enough to gain from it."""
    cdef Py_ssize_t size = job.op.rows * job.op.cols
    cdef bint release = size >= gil_release_min_size
    if not give_scratch(job):
        raise MemoryError("no memory for the strided rows' buffers")
    if release:
        with nogil:
            lk_gil_released()
            run_job(job)
            lk_gil_wait_for_holder()
        lk_gil_reacquired()
    else:
        run_job(job)
    free(job.scratch)
    job.scratch = NULL
    return 0


cdef void run_job(const Job* job) noexcept nogil:
    if job.is_double:
        run_typed(job, <double>job.slope)
    else:
        run_typed(job, <float>job.slope)


cdef void run_typed(const Job* job, floating slope) noexcept nogil:
    if job.kind == SELECT:
        run_select(job, slope)
    else:
        run_mask(job, slope)


cdef Stores streams(const Job* job) noexcept nogil:
    """How the job writes its output: as its band says, except in place,
    where ordinary stores cost no extra read (the line was just read), and
    pages only for forward selects."""
    if not LK_HAVE_STREAM or (
        job.op.out.data == job.op.value.data or job.op.out.data == job.op.sign.data
    ):
        return ORDINARY_STORES
    if job.band.stores == STREAM_PAGES and not (
        job.kind == SELECT and job.op.sign.data == job.op.value.data
    ):
        return STREAM_LINES
    return job.band.stores


cdef Py_ssize_t thread_span(Py_ssize_t n, int n_threads, Py_ssize_t multiple) noexcept nogil:
    """Elements per thread span: an even share of n, rounded up to `multiple`."""
    cdef Py_ssize_t span = (n + n_threads - 1) // n_threads
    return (span + multiple - 1) // multiple * multiple


# ============================================================================
# The select
# ============================================================================

cdef inline floating select_one(floating value, floating sign, floating slope) noexcept nogil:
    return value if sign > 0 else slope * value


cdef inline Py_ssize_t elements_to_line(const floating* p, Py_ssize_t n) noexcept nogil:
    """Elements from p to the next cache-line boundary, at most n (none when
    p is off its element alignment, and so never reaches one)."""
    cdef size_t offset = <size_t>p % LINE_BYTES
    if offset % sizeof(floating):
        return 0
    return min(n, <Py_ssize_t>(((LINE_BYTES - offset) % LINE_BYTES) // sizeof(floating)))


cdef void select_row(
    const floating* value, Py_ssize_t value_step,  # IN
    const floating* sign, Py_ssize_t sign_step,    # IN
    floating* out, Py_ssize_t out_step,            # OUT
    Py_ssize_t n,
    floating slope,
    Stores stream,
    const Band* t,
    floating* scratch,  # 3 * STRIDED_BLOCK elements, for strided rows
) noexcept nogil:
    cdef Py_ssize_t i, head
    if value_step == 1 and sign_step == 1 and out_step == 1:
        if stream == STREAM_PAGES and value == sign:
            if floating is float:
                lk_stream_leaky_relu_pages_float(value, out, n, slope)
            else:
                lk_stream_leaky_relu_pages_double(value, out, n, slope)
        elif stream != ORDINARY_STORES:
            if floating is float:
                lk_stream_leaky_relu_float(value, NULL if value == sign else sign, out, n, slope,
                                           t.prefetch, t.prefetch_bytes)
            else:
                lk_stream_leaky_relu_double(value, NULL if value == sign else sign, out, n, slope,
                                            t.prefetch, t.prefetch_bytes)
        else:
            # Elements one by one up to the output's first line boundary: the
            # vector loop then writes whole lines, and reads whole lines of
            # an input at the same offset within its line, as NumPy's arrays
            # usually are. Split stores and loads cost in-cache calls up to
            # a fifth of their time.
            head = elements_to_line(out, n)
            for i in range(head):
                out[i] = select_one(value[i], sign[i], slope)
            if value == sign:
                # Forward: one input stream; the compiler cannot know value == sign.
                for i in range(head, n):
                    out[i] = select_one(value[i], value[i], slope)
            else:
                for i in range(head, n):
                    out[i] = select_one(value[i], sign[i], slope)
    else:
        select_strided_row(
            value, value_step, sign, sign_step, out, out_step, n, slope, stream, t, scratch
        )


cdef enum:
    # Elements per block when a strided row goes through contiguous buffers.
    STRIDED_BLOCK = 4096
    # Bytes of the three buffers of one thread, for the widest dtype. They
    # live on the heap: on the stack (96 KiB) they overflowed small thread
    # stacks (64 KiB; musl's default is 128 KiB).
    STRIDED_SCRATCH_BYTES = 3 * STRIDED_BLOCK * 8


cdef bint has_strided_operand(const Select* op, Py_ssize_t item) noexcept nogil:
    """Whether some operand's columns are not `item` bytes apart."""
    return not (
        op.value.col_stride == item and op.sign.col_stride == item and op.out.col_stride == item
    )


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
    Stores stream,
    const Band* t,
    floating* scratch,
) noexcept nogil:
    """A strided row, copied block by block through contiguous buffers so that
    the select runs in the vectorised loop: a strided select compiles to a
    branch per element, mispredicted half the time on mixed signs. A
    contiguous output is written directly, streamed if `stream`; streamed
    step-2 rows (every other column) skip the buffers (_stream.h)."""
    cdef floating* value_buf = scratch
    cdef floating* sign_buf = scratch + STRIDED_BLOCK
    cdef floating* out_buf = scratch + 2 * STRIDED_BLOCK
    cdef bint forward = value == sign and value_step == sign_step
    cdef floating* sign_src = sign_buf
    cdef Py_ssize_t start = 0
    cdef Py_ssize_t m, i
    cdef floating* dest
    if stream and value_step == 2 and sign_step == 2 and out_step == 1:
        if floating is float:
            lk_stream_leaky_relu_evens_float(value, NULL if forward else sign, out, n, slope,
                                             t.prefetch, t.prefetch_bytes)
        else:
            lk_stream_leaky_relu_evens_double(value, NULL if forward else sign, out, n, slope,
                                              t.prefetch, t.prefetch_bytes)
        return
    if forward:
        sign_src = value_buf
    while start < n:
        m = min(<Py_ssize_t>STRIDED_BLOCK, n - start)
        gather(value + start * value_step, value_step, value_buf, m)
        if not forward:
            gather(sign + start * sign_step, sign_step, sign_buf, m)
        dest = out + start if out_step == 1 else out_buf
        select_row(value_buf, 1, sign_src, 1, dest, 1, m, slope,
                   STREAM_LINES if stream and out_step == 1 else ORDINARY_STORES, t, NULL)
        if out_step != 1:
            for i in range(m):
                out[(start + i) * out_step] = out_buf[i]
        start += m


cdef void select_span(
    const Job* job, Py_ssize_t start, Py_ssize_t stop, floating slope, Stores stream,
    floating* scratch,
) noexcept nogil:
    """Elements [start, stop) of the flattened rows x cols iteration space."""
    cdef const Select* op = &job.op
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
            n, slope, stream, &job.band, scratch,
        )
        start += n
        row += 1
        col = 0
    if stream:
        lk_stream_fence()


cdef void run_select(const Job* job, floating slope) noexcept nogil:
    cdef Py_ssize_t total = job.op.rows * job.op.cols
    cdef Stores stream = streams(job)
    cdef floating* scratch = <floating*>job.scratch
    cdef Py_ssize_t per_thread = STRIDED_SCRATCH_BYTES // sizeof(floating)
    cdef Py_ssize_t span, n_spans, s
    if total == 0:
        return
    if job.n_threads <= 1:
        select_span(job, 0, total, slope, stream, scratch)
        return
    span = thread_span(total, job.n_threads, SPAN_ALIGN_BYTES // sizeof(floating))
    n_spans = (total + span - 1) // span
    for s in prange(n_spans, schedule='static', num_threads=n_spans):
        select_span(
            job, s * span, min(total, (s + 1) * span), slope, stream,
            scratch + s * per_thread if scratch != NULL else NULL,
        )


def leaky_select(
    const floating[:, :] value,  # IN
    const floating[:, :] sign,   # IN
    floating[:, :] out,          # OUT
    double negative_slope,
    int n_threads,
    bint fresh_output,
):
    """out = value where sign > 0, else negative_slope * value, for any 2-D
    strides, on at most n_threads threads. `fresh_output`: out was just
    allocated for this call (the tuning may then choose other stores)."""
    cdef Job job
    if out.shape[0] == 0 or out.shape[1] == 0:
        return
    job.op.rows = out.shape[0]
    job.op.cols = out.shape[1]
    job.op.value = Operand(<char*>&value[0, 0], value.strides[0], value.strides[1])
    job.op.sign = Operand(<char*>&sign[0, 0], sign.strides[0], sign.strides[1])
    job.op.out = Operand(<char*>&out[0, 0], out.strides[0], out.strides[1])
    fill_job(&job, SELECT, floating is double, negative_slope, n_threads, fresh_output)
    run(&job)


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


cdef bint byte_extent(cnp.ndarray a, char** low, char** high) noexcept:
    """The first and one-past-last byte `a` spans; False when it has no elements."""
    cdef int axis
    cdef Py_ssize_t step
    low[0] = high[0] = <char*>cnp.PyArray_DATA(a)
    for axis in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIM(a, axis) == 0:
            return False
        step = cnp.PyArray_STRIDE(a, axis) * (cnp.PyArray_DIM(a, axis) - 1)
        if step < 0:
            low[0] += step
        else:
            high[0] += step
    high[0] += cnp.PyArray_ITEMSIZE(a)
    return True


cdef bint clobbers(cnp.ndarray out, cnp.ndarray a) noexcept:
    """The overlap rule: whether writing `out` element by element could
    clobber elements of `a` not yet read. Only when they share bytes and are
    not the same view (same first element and strides, as in place)."""
    cdef char* out_low
    cdef char* out_high
    cdef char* a_low
    cdef char* a_high
    cdef int axis
    if out is a:
        return False
    if not byte_extent(out, &out_low, &out_high) or not byte_extent(a, &a_low, &a_high):
        return False
    if out_high <= a_low or a_high <= out_low:
        return False
    if (
        cnp.PyArray_DATA(out) != cnp.PyArray_DATA(a)
        or cnp.PyArray_NDIM(out) != cnp.PyArray_NDIM(a)
    ):
        return True
    for axis in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_STRIDE(out, axis) != cnp.PyArray_STRIDE(a, axis):
            return True
    return False


def overlap_clobbers(cnp.ndarray out, cnp.ndarray a):
    """Whether writing `out` element by element could clobber unread parts
    of `a` (arrays of one shape): the package's one overlap rule."""
    return clobbers(out, a)


cdef int fast_slope_and_type(object value, object negative_slope, object num_threads,
                             double* slope) except -2:
    """value's typenum when value is an exact float32 or float64 ndarray and
    the slope and thread count are ones the fast paths take, with the slope
    in `slope`; else -1. Layout is each fast path's own check."""
    cdef int typenum
    if not isinstance(negative_slope, float):
        return -1
    slope[0] = negative_slope
    if not isfinite(slope[0]):
        return -1
    if num_threads is not None and not (type(num_threads) is int and 1 <= num_threads <= INT_MAX):
        return -1
    if not cnp.PyArray_CheckExact(value):
        return -1
    typenum = cnp.PyArray_TYPE(<cnp.ndarray>value)
    if typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE:
        return -1
    if typenum == cnp.NPY_FLOAT and isinf(<float>slope[0]):
        return -1
    return typenum


cdef bint fit_first(Py_ssize_t size, Py_ssize_t item, int requested) noexcept:
    """Whether a fast path must decline a call of `size` elements of `item`
    bytes on `requested` threads, so that the tuning is fitted first."""
    return size * item >= fit_min_bytes[work_threads(size, requested,
                                                     tuning.min_thread_elements) > 1]


def waiting_mode(Py_ssize_t size, Py_ssize_t item, num_threads):
    """'serial' or 'parallel': the thread mode a call of `size` elements of
    `item` bytes on num_threads (None or a checked count) runs in, when that
    mode waits to be fitted first (the fast paths decline it); else None."""
    cdef int requested = fast_threads(size, num_threads)
    if not fit_first(size, item, requested):
        return None
    return "parallel" if work_threads(size, requested, tuning.min_thread_elements) > 1 else "serial"


cdef int fast_threads(Py_ssize_t size, object num_threads):
    """The threads a fast path asks for: resolved only when the call is large
    enough for two (fast_slope_and_type has checked num_threads)."""
    if work_threads(size, 2, tuning.min_thread_elements) > 1:  # else one thread, whatever asked
        return resolve_threads(0 if num_threads is None else num_threads)
    return 1


def select_contiguous(value, sign, negative_slope, out, num_threads):
    """value where sign > 0, else slope * value, or None when this case does not apply.

    It applies when value and sign are exact ndarrays of one dtype (float32 or
    float64), native, aligned, at least 1-d, of one shape and contiguous in one
    order; out is None or such an array, writeable, that is value or overlaps
    neither input; negative_slope is a float that is finite in that dtype;
    num_threads is None or a positive int, resolved (resolve_threads) only
    when the call is large enough for two. Returning None, it has checked
    nothing aloud and changed nothing: the general path checks and reports.
    """
    cdef int order
    cdef cnp.ndarray v, s, o
    cdef Job job
    cdef double slope
    cdef Py_ssize_t size, item
    cdef int requested
    cdef int typenum = fast_slope_and_type(value, negative_slope, num_threads, &slope)
    if typenum < 0:
        return None
    order = contiguous_order(value, typenum)
    if order == 0:
        return None
    v = <cnp.ndarray>value
    if sign is not value:
        if contiguous_order(sign, typenum) != order or not cnp.PyArray_SAMESHAPE(v, <cnp.ndarray>sign):
            return None
    s = <cnp.ndarray>sign
    size = cnp.PyArray_SIZE(v)
    item = cnp.PyArray_ITEMSIZE(v)
    requested = fast_threads(size, num_threads)
    if fit_first(size, item, requested):
        return None
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
        if clobbers(o, v) or (s is not v and clobbers(o, s)):
            return None
    job.op.rows = 1
    job.op.cols = size
    job.op.value = Operand(<char*>cnp.PyArray_DATA(v), 0, item)
    job.op.sign = Operand(<char*>cnp.PyArray_DATA(s), 0, item)
    job.op.out = Operand(<char*>cnp.PyArray_DATA(o), 0, item)
    fill_job(&job, SELECT, typenum == cnp.NPY_DOUBLE, slope, requested, out is None)
    run(&job)
    return o


# ============================================================================
# Ufunc loops
# ============================================================================
# The same select as NumPy ufunc inner loops, for what the Python layer sends
# through NumPy's own machinery: containers that dispatch with
# __array_ufunc__ (pandas, xarray, dask, masked arrays), slopes that are
# arrays, where=, and broadcasting. The slope is an input operand: a loop
# whose slope stride is 0 has one slope and runs the kernel above, threads
# included (NumPy hands a loop the whole array when it needs no buffering
# or casting); otherwise every element has its own slope.
#
# There is one ufunc per operation, made once, as NumPy's own are. A loop
# cannot take keywords, so it reads its settings when it runs: the thread
# count and whether NumPy allocated the output, which the Python layer sets
# for the calling thread around its ufunc call (set_ufunc_call); NumPy runs
# the loops in the thread that calls the ufunc. A call that did not come
# through the Python layer (a Dask task, ufunc.accumulate) has none set and
# runs on the configured default count. NumPy may call a loop with the GIL
# held or not; the loops only touch C.
#
# NumPy leaves an out that overlaps an input uncopied when an in-order loop
# computes it right (the input ahead of out), and repeats a loop over an out
# whose stride is 0, so that the last write stays. Threads would break both:
# such a loop runs serially, element after element.

cnp.import_ufunc()

cdef extern from *:
    """
    #if defined(_MSC_VER)
    #define LK_THREAD_LOCAL __declspec(thread)
    #else
    #define LK_THREAD_LOCAL __thread
    #endif
    /* The calling thread's settings for the ufunc loops: threads << 1 | fresh
       output; 0 when none are set. */
    static LK_THREAD_LOCAL int lk_ufunc_call = 0;
    static int lk_get_ufunc_call(void) { return lk_ufunc_call; }
    static void lk_set_ufunc_call(int settings) { lk_ufunc_call = settings; }
    """
    int lk_get_ufunc_call() noexcept nogil
    void lk_set_ufunc_call(int settings) noexcept nogil


def set_ufunc_call(int n_threads, bint fresh_output):
    """Settings for the ufunc loops this thread runs next: at most n_threads
    threads (already resolved by call_threads), and whether NumPy allocates
    the output. Returns the previous settings, for restore_ufunc_call, which
    the caller must call even when the ufunc call raises."""
    cdef int previous = lk_get_ufunc_call()
    lk_set_ufunc_call(max(1, n_threads) << 1 | fresh_output)
    return previous


def restore_ufunc_call(int previous):
    """Put back the settings set_ufunc_call returned."""
    lk_set_ufunc_call(previous)


cdef inline bint extents_overlap(const char* a, Py_ssize_t a_step, const char* b,
                                 Py_ssize_t b_step, Py_ssize_t n, Py_ssize_t item) noexcept nogil:
    """Whether the bytes of n elements from a and from b, `step` apart, meet."""
    cdef const char* a_low = a + min(0, a_step * (n - 1))
    cdef const char* a_high = a + max(0, a_step * (n - 1)) + item
    cdef const char* b_low = b + min(0, b_step * (n - 1))
    cdef const char* b_high = b + max(0, b_step * (n - 1)) + item
    return a_low < b_high and b_low < a_high


cdef inline bint reads_what_out_writes(const char* a, Py_ssize_t a_step, const char* out,
                                       Py_ssize_t out_step, Py_ssize_t n,
                                       Py_ssize_t item) noexcept nogil:
    """Whether writing out can reach elements of input `a` other than the one
    each element reads itself (in place, element by element, is safe)."""
    if a == out and a_step == out_step:
        return False
    return extents_overlap(a, a_step, out, out_step, n, item)


cdef bint runs_in_order(
    const char* value, Py_ssize_t value_step,
    const char* sign, Py_ssize_t sign_step,
    const char* slope, Py_ssize_t slope_step,
    const char* out, Py_ssize_t out_step,
    Py_ssize_t n, Py_ssize_t item,
) noexcept nogil:
    """Whether a loop call must run element after element in order, on one
    thread: out overlaps an input, or writes one place n times."""
    if out_step == 0:
        return n > 1
    return (
        reads_what_out_writes(value, value_step, out, out_step, n, item)
        or reads_what_out_writes(sign, sign_step, out, out_step, n, item)
        or reads_what_out_writes(slope, slope_step, out, out_step, n, item)
    )

cdef extern from "<fenv.h>":
    int FE_ALL_EXCEPT
    int feclearexcept(int) noexcept nogil


cdef void select_each_contiguous(
    const floating* value,  # IN
    const floating* sign,   # IN
    const floating* slope,  # IN
    floating* out,          # OUT
    Py_ssize_t n,
) noexcept nogil:
    """select_each on contiguous operands: a loop the compiler vectorises."""
    cdef Py_ssize_t i
    if value == sign:
        for i in range(n):
            out[i] = select_one(value[i], value[i], slope[i])
    else:
        for i in range(n):
            out[i] = select_one(value[i], sign[i], slope[i])


cdef inline void select_each(
    const char* value, Py_ssize_t value_step,  # IN
    const char* sign, Py_ssize_t sign_step,    # IN
    const char* slope, Py_ssize_t slope_step,  # IN
    char* out, Py_ssize_t out_step,            # OUT
    Py_ssize_t n,
    floating kind,  # selects the specialisation only
) noexcept nogil:
    """The select with a slope per element."""
    cdef Py_ssize_t i
    cdef Py_ssize_t item = sizeof(floating)
    if value_step == item and sign_step == item and slope_step == item and out_step == item:
        select_each_contiguous(<const floating*>value, <const floating*>sign,
                               <const floating*>slope, <floating*>out, n)
        return
    for i in range(n):
        (<floating*>(out + i * out_step))[0] = select_one(
            (<const floating*>(value + i * value_step))[0],
            (<const floating*>(sign + i * sign_step))[0],
            (<const floating*>(slope + i * slope_step))[0],
        )


cdef void select_each_spans(
    const char* value, Py_ssize_t value_step,  # IN
    const char* sign, Py_ssize_t sign_step,    # IN
    const char* slope, Py_ssize_t slope_step,  # IN
    char* out, Py_ssize_t out_step,            # OUT
    Py_ssize_t n,
    int n_threads,  # from work_threads
    floating kind,
) noexcept nogil:
    """select_each split into cache-line-aligned spans over n_threads threads."""
    cdef Py_ssize_t span, s, start
    if n_threads <= 1:
        select_each(value, value_step, sign, sign_step, slope, slope_step, out, out_step, n, kind)
        return
    span = thread_span(n, n_threads, SPAN_ALIGN_BYTES // sizeof(floating))
    for s in prange((n + span - 1) // span, schedule='static', num_threads=n_threads):
        start = s * span
        select_each(value + start * value_step, value_step, sign + start * sign_step, sign_step,
                    slope + start * slope_step, slope_step, out + start * out_step, out_step,
                    min(span, n - start), kind)


cdef void ufunc_select(
    char* value, Py_ssize_t value_step,
    char* sign, Py_ssize_t sign_step,
    char* slope, Py_ssize_t slope_step,
    char* out, Py_ssize_t out_step,
    Py_ssize_t n,
    floating kind,
) noexcept nogil:
    cdef Job job
    cdef int settings = lk_get_ufunc_call()
    cdef int n_threads = resolve_threads(settings >> 1)
    if n <= 0:
        return
    if runs_in_order(value, value_step, sign, sign_step, slope, slope_step, out, out_step, n,
                     sizeof(floating)):
        select_each(value, value_step, sign, sign_step, slope, slope_step, out, out_step, n, kind)
        return
    if slope_step != 0:
        select_each_spans(value, value_step, sign, sign_step, slope, slope_step, out, out_step,
                          n, work_threads(n, n_threads, tuning.min_thread_elements), kind)
        return
    job.op.rows = 1
    job.op.cols = n
    job.op.value = Operand(value, 0, value_step)
    job.op.sign = Operand(sign, 0, sign_step)
    job.op.out = Operand(out, 0, out_step)
    fill_job(&job, SELECT, floating is double, (<floating*>slope)[0], n_threads, settings & 1)
    if not give_scratch(&job):  # the plain loop needs no buffers
        select_each(value, value_step, sign, sign_step, slope, 0, out, out_step, n, kind)
        return
    run_job(&job)
    free(job.scratch)


cdef inline void no_floating_point_errors() noexcept nogil:
    """Clear the floating-point flags of this thread. NumPy turns flags raised
    in a ufunc call into warnings, but every result here is defined, NaN and
    infinity included (0 * inf is NaN by design), and the direct path warns
    of none. NumPy clears the flags before a call runs its loops, so this
    drops only flags raised within the call: by these loops, or by NumPy's
    casts of the inputs to the compute dtype, which are exact."""
    feclearexcept(FE_ALL_EXCEPT)


cdef void forward_loop(char** args, cnp.npy_intp* dims, cnp.npy_intp* steps,
                       floating kind) noexcept nogil:
    # Operands: x, slope -> out
    ufunc_select(args[0], steps[0], args[0], steps[0], args[1], steps[1], args[2], steps[2],
                 dims[0], kind)
    no_floating_point_errors()


cdef void backward_loop(char** args, cnp.npy_intp* dims, cnp.npy_intp* steps,
                        floating kind) noexcept nogil:
    # Operands: grad_output, x, slope -> out
    ufunc_select(args[0], steps[0], args[1], steps[1], args[2], steps[2], args[3], steps[3],
                 dims[0], kind)
    no_floating_point_errors()


cdef void forward_float(char** args, cnp.npy_intp* dims, cnp.npy_intp* steps,
                        void* data) noexcept nogil:
    forward_loop(args, dims, steps, <float>0)


cdef void forward_double(char** args, cnp.npy_intp* dims, cnp.npy_intp* steps,
                         void* data) noexcept nogil:
    forward_loop(args, dims, steps, <double>0)


cdef void backward_float(char** args, cnp.npy_intp* dims, cnp.npy_intp* steps,
                         void* data) noexcept nogil:
    backward_loop(args, dims, steps, <float>0)


cdef void backward_double(char** args, cnp.npy_intp* dims, cnp.npy_intp* steps,
                          void* data) noexcept nogil:
    backward_loop(args, dims, steps, <double>0)


cdef cnp.PyUFuncGenericFunction FORWARD_LOOPS[2]
cdef cnp.PyUFuncGenericFunction BACKWARD_LOOPS[2]
FORWARD_LOOPS[:] = [forward_float, forward_double]
BACKWARD_LOOPS[:] = [backward_float, backward_double]
cdef char FORWARD_TYPES[6]
cdef char BACKWARD_TYPES[8]
FORWARD_TYPES[:] = [cnp.NPY_FLOAT] * 3 + [cnp.NPY_DOUBLE] * 3
BACKWARD_TYPES[:] = [cnp.NPY_FLOAT] * 4 + [cnp.NPY_DOUBLE] * 4


# The loops take no data: they read their settings when they run.
cdef void* NO_LOOP_DATA[2]
NO_LOOP_DATA[:] = [NULL, NULL]

# leaky_relu(x, slope) and leaky_relu_backward(grad_output, x, slope), with
# float32 and float64 loops. _ufunc.py gives them to NumPy and pickle.
leaky_relu_ufunc = cnp.PyUFunc_FromFuncAndData(
    FORWARD_LOOPS, NO_LOOP_DATA, FORWARD_TYPES, 2, 2, 1, cnp.PyUFunc_None,
    b"leaky_relu", b"x where x > 0, else slope * x", 0,
)
leaky_relu_backward_ufunc = cnp.PyUFunc_FromFuncAndData(
    BACKWARD_LOOPS, NO_LOOP_DATA, BACKWARD_TYPES, 2, 3, 1, cnp.PyUFunc_None,
    b"leaky_relu_backward", b"grad_output where x > 0, else slope * grad_output", 0,
)


# ============================================================================
# The roofline, for benchmarks
# ============================================================================

ROOFLINES = ("memcpy", "stream copy", "stream 2-in-1-out", "stream copy, pages",
             "stream 2-in-1-out, pages")


def roofline(const float[::1] a, const float[::1] b, float[::1] out, how, int n_threads,
             prefetch="none", Py_ssize_t prefetch_bytes=1024):
    """Move the bytes of a call the machine's own fastest ways, on n_threads
    threads in contiguous spans, as the kernels split their work: "memcpy"
    (out = a, glibc's memcpy), "stream copy" (out = a, streaming stores) or
    "stream 2-in-1-out" (out = a | b bitwise: the backward's two inputs and
    one output), line by line with the software prefetch of PREFETCH_KINDS
    that the streaming selects have or, with ", pages", LK_PAGES pages at a
    time as the paged select goes. Not a kernel: what benchmarks compare the
    kernels with."""
    cdef int kind = ROOFLINES.index(how)
    cdef bint two_inputs = how.startswith("stream 2-in-1-out")
    cdef int pages = LK_PAGES if how.endswith(", pages") else 1
    cdef int hint = PREFETCH_KINDS[prefetch]
    cdef Py_ssize_t n = out.shape[0]
    cdef Py_ssize_t span, s, start, stop
    cdef int threads = max(1, n_threads)
    if n == 0:
        return
    if kind != 0 and not LK_HAVE_STREAM:
        raise ValueError(f"{how} needs streaming stores, which this build lacks")
    span = thread_span(n, threads, SPAN_ALIGN_BYTES // sizeof(float))
    with nogil:
        for s in prange((n + span - 1) // span, schedule='static', num_threads=threads):
            start = s * span
            stop = min(n, start + span)
            if kind == 0:
                memcpy(&out[start], &a[start], (stop - start) * sizeof(float))
            else:
                lk_stream_move(&a[start], &b[start] if two_inputs else NULL, &out[start],
                               stop - start, pages, hint, prefetch_bytes)
                lk_stream_fence()


# ============================================================================
# Sign masks
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
        const float*, float*, unsigned char*, Py_ssize_t, float, bint, int, Py_ssize_t
    ) noexcept nogil
    void lk_mask_forward_double(
        const double*, double*, unsigned char*, Py_ssize_t, double, bint, int, Py_ssize_t
    ) noexcept nogil
    void lk_mask_backward_float(
        const float*, const unsigned char*, float*, Py_ssize_t, float, bint, int, Py_ssize_t
    ) noexcept nogil
    void lk_mask_backward_double(
        const double*, const unsigned char*, double*, Py_ssize_t, double, bint, int, Py_ssize_t
    ) noexcept nogil

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
    const Band* t,
) noexcept nogil:
    cdef Py_ssize_t first = start // 8
    cdef Py_ssize_t whole = (stop - start) // 8
    cdef Py_ssize_t b, i
    if LK_HAVE_MASK_SIMD:
        if floating is float:
            lk_mask_forward_float(x + start, out + start, mask + first, whole, slope, stream,
                                  t.prefetch, t.prefetch_bytes)
        else:
            lk_mask_forward_double(x + start, out + start, mask + first, whole, slope, stream,
                                   t.prefetch, t.prefetch_bytes)
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
    const Band* t,
) noexcept nogil:
    cdef Py_ssize_t first = start // 8
    cdef Py_ssize_t whole = (stop - start) // 8
    cdef Py_ssize_t b, i
    if LK_HAVE_MASK_SIMD:
        if floating is float:
            lk_mask_backward_float(g + start, mask + first, out + start, whole, slope, stream,
                                   t.prefetch, t.prefetch_bytes)
        else:
            lk_mask_backward_double(g + start, mask + first, out + start, whole, slope, stream,
                                    t.prefetch, t.prefetch_bytes)
    else:
        for b in range(first, first + whole):
            backward_byte(g + 8 * b, mask[b], out + 8 * b, 8, slope)
    i = start + 8 * whole
    if i < stop:
        backward_byte(g + i, mask[first + whole], out + i, <int>(stop - i), slope)


cdef void mask_span(const Job* job, Py_ssize_t start, Py_ssize_t stop, floating slope,
                    bint stream) noexcept nogil:
    cdef const floating* data = <const floating*>job.op.value.data
    cdef floating* out = <floating*>job.op.out.data
    if job.kind == FORWARD_MASK:
        forward_mask_span(data, out, job.mask, start, stop, slope, stream, &job.band)
    else:
        backward_mask_span(data, job.mask, out, start, stop, slope, stream, &job.band)


cdef void run_mask(const Job* job, floating slope) noexcept nogil:
    cdef Py_ssize_t n = job.op.cols
    # The mask loops stream line by line at any size.
    cdef bint stream = streams(job) != ORDINARY_STORES
    cdef Py_ssize_t span, n_spans, s
    if job.n_threads <= 1:
        mask_span(job, 0, n, slope, stream)
        return
    span = thread_span(n, job.n_threads, MASK_SPAN_ELEMENTS)
    n_spans = (n + span - 1) // span
    for s in prange(n_spans, schedule='static', num_threads=n_spans):
        mask_span(job, s * span, min(n, (s + 1) * span), slope, stream)


cdef int run_mask_job(JobKind kind, floating* data, floating* out, unsigned char* mask,
                      Py_ssize_t n, double slope, int n_threads, bint fresh_output) except -1:
    cdef Job job
    job.op.rows = 1
    job.op.cols = n
    job.op.value = Operand(<char*>data, 0, sizeof(floating))
    job.op.sign = job.op.value
    job.op.out = Operand(<char*>out, 0, sizeof(floating))
    job.mask = mask
    fill_job(&job, kind, floating is double, slope, n_threads, fresh_output)
    return run(&job)


def forward_mask(
    const floating[::1] x,     # IN
    floating[::1] out,         # OUT
    unsigned char[::1] mask,   # OUT, (len(x) + 7) // 8 bytes
    double negative_slope,
    int n_threads,
    bint fresh_output,
):
    """out = x where x > 0, else negative_slope * x; mask = the packed bits of x > 0.

    out may be x itself, or must not overlap it. n_threads and fresh_output
    are as for leaky_select.
    """
    if x.shape[0] == 0:
        return
    run_mask_job(FORWARD_MASK, <floating*>&x[0], &out[0], &mask[0], x.shape[0],
                 negative_slope, n_threads, fresh_output)


def backward_mask(
    const floating[::1] grad_output,  # IN
    const unsigned char[::1] mask,    # IN, (len(grad_output) + 7) // 8 bytes
    floating[::1] out,                # OUT
    double negative_slope,
    int n_threads,
    bint fresh_output,
):
    """out = grad_output where the mask bit is set, else negative_slope * grad_output.

    out may be grad_output itself, or must overlap neither input. n_threads
    and fresh_output are as for leaky_select.
    """
    if grad_output.shape[0] == 0:
        return
    run_mask_job(BACKWARD_MASK, <floating*>&grad_output[0], &out[0], <unsigned char*>&mask[0],
                 grad_output.shape[0], negative_slope, n_threads, fresh_output)


# ============================================================================
# Contiguous fast paths for the mask kernels
# ============================================================================
# The public mask functions spend longer in Python (operand checks,
# np.require, deliver_result) than the kernel takes on a few thousand
# elements, and far longer when the caches are cold, as between the layers
# of a model. These take the common case straight from NumPy's C API and
# decline everything else, which the general path checks and reports.

cdef int c_contiguous_operand(object a, int typenum):
    """1 if `a` is an exact, non-empty ndarray of `typenum`, native, aligned,
    at least 1-d and C-contiguous (the mask's order), else 0."""
    if contiguous_order(a, typenum) == 0:
        return 0
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or cnp.PyArray_SIZE(arr) == 0:
        return 0
    return 1


cdef object fast_out(cnp.ndarray value, object out, int typenum):
    """The array a fast path writes: a new one like `value` for out None,
    `out` when it is C-contiguous like value, writeable, and value itself or
    clear of it; None when the fast path must decline."""
    if out is None:
        return PyArray_NewLikeArray(value, cnp.NPY_CORDER, NULL, 0)
    if (
        not c_contiguous_operand(out, typenum)
        or not cnp.PyArray_SAMESHAPE(value, <cnp.ndarray>out)
        or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out)
        or clobbers(<cnp.ndarray>out, value)
    ):
        return None
    return out


def forward_mask_contiguous(x, negative_slope, out, mask, num_threads):
    """leaky_relu_forward_mask's (result, mask), or None when this case does not apply.

    It applies when x is an exact ndarray, float32 or float64, native,
    aligned, at least 1-d, not empty and C-contiguous; out is None or such an
    array of x's dtype and shape, writeable, that is x or does not overlap
    it; negative_slope is a float finite in x's dtype; num_threads is None or
    a positive int; mask is None (a new mask) or an exact, writeable, 1-d
    uint8 ndarray of the mask's size, which the caller owns. Returning None,
    it has checked nothing aloud and changed nothing.
    """
    cdef double slope
    cdef int typenum = fast_slope_and_type(x, negative_slope, num_threads, &slope)
    if typenum < 0 or not c_contiguous_operand(x, typenum):
        return None
    cdef cnp.ndarray v = <cnp.ndarray>x
    cdef Py_ssize_t size = cnp.PyArray_SIZE(v)
    cdef cnp.npy_intp nbytes = (size + 7) // 8
    cdef int requested = fast_threads(size, num_threads)
    if fit_first(size, cnp.PyArray_ITEMSIZE(v), requested):
        return None
    if mask is not None and not (
        c_contiguous_operand(mask, cnp.NPY_UINT8)
        and cnp.PyArray_NDIM(<cnp.ndarray>mask) == 1
        and cnp.PyArray_DIM(<cnp.ndarray>mask, 0) == nbytes
        and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>mask)
    ):
        return None
    target = fast_out(v, out, typenum)
    if target is None:
        return None
    if mask is None:
        mask = cnp.PyArray_EMPTY(1, &nbytes, cnp.NPY_UINT8, 0)
    cdef cnp.ndarray o = <cnp.ndarray>target
    cdef unsigned char* bits = <unsigned char*>cnp.PyArray_DATA(<cnp.ndarray>mask)
    if typenum == cnp.NPY_DOUBLE:
        run_mask_job(FORWARD_MASK, <double*>cnp.PyArray_DATA(v), <double*>cnp.PyArray_DATA(o),
                     bits, size, slope, requested, out is None)
    else:
        run_mask_job(FORWARD_MASK, <float*>cnp.PyArray_DATA(v), <float*>cnp.PyArray_DATA(o),
                     bits, size, slope, requested, out is None)
    return target, mask


def backward_mask_contiguous(grad_output, mask, negative_slope, out, num_threads):
    """leaky_relu_backward_mask's result, or None when this case does not apply.

    It applies when grad_output and out are as x and out for
    forward_mask_contiguous (out may be grad_output, or overlap neither
    input), and mask is an exact 1-d uint8 ndarray of grad_output's mask
    size, contiguous. Returning None, it has checked nothing aloud and
    changed nothing.
    """
    cdef double slope
    cdef int typenum = fast_slope_and_type(grad_output, negative_slope, num_threads, &slope)
    if typenum < 0 or not c_contiguous_operand(grad_output, typenum):
        return None
    cdef cnp.ndarray g = <cnp.ndarray>grad_output
    cdef Py_ssize_t size = cnp.PyArray_SIZE(g)
    cdef int requested = fast_threads(size, num_threads)
    if fit_first(size, cnp.PyArray_ITEMSIZE(g), requested):
        return None
    if not (
        c_contiguous_operand(mask, cnp.NPY_UINT8)
        and cnp.PyArray_NDIM(<cnp.ndarray>mask) == 1
        and cnp.PyArray_DIM(<cnp.ndarray>mask, 0) == (size + 7) // 8
    ):
        return None
    cdef cnp.ndarray m = <cnp.ndarray>mask
    target = fast_out(g, out, typenum)
    if target is None or (out is not None and clobbers(<cnp.ndarray>target, m)):
        return None
    cdef cnp.ndarray o = <cnp.ndarray>target
    cdef unsigned char* bits = <unsigned char*>cnp.PyArray_DATA(m)
    if typenum == cnp.NPY_DOUBLE:
        run_mask_job(BACKWARD_MASK, <double*>cnp.PyArray_DATA(g), <double*>cnp.PyArray_DATA(o),
                     bits, size, slope, requested, out is None)
    else:
        run_mask_job(BACKWARD_MASK, <float*>cnp.PyArray_DATA(g), <float*>cnp.PyArray_DATA(o),
                     bits, size, slope, requested, out is None)
    return target
