"""How many OpenMP threads a call may use: the one place that resolves and caps it.

The count is resolved once per call, in Python, and passed down as an int;
the kernel then starts no more threads than the call has spans of work for
(_kernels.pxi, `work_threads`). With no package default it follows
omp_get_max_threads(), so OMP_NUM_THREADS and threadpoolctl's
threadpool_limits apply.

Any count, requested or from the environment, is clamped to THREAD_CAP: the
CPUs this process may run on, and OpenMP's thread limit. A memory-bound
kernel gains nothing from more threads than cores, and a count such as
100,000 would make the OpenMP runtime fail to create its threads and end the
process. Clamping changes no result.

Two places always run serially. A forked child: GNU libgomp hangs a forked
child that enters a parallel region after its parent used one, and the child
cannot tell whether the parent did. A subinterpreter: CPython turns off its
GIL-state checks there, and Cython's parallel loops rely on them, so a
parallel region would abort the process.
"""
import os

from . import _openmp
from ._validation import check_num_threads


def _usable_cpus():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# The most threads any call starts.
THREAD_CAP = max(1, min(_usable_cpus(), _openmp.thread_limit()))

_default = None
_serial_only = not _openmp.in_main_interpreter()


def _mark_forked_child():
    global _serial_only
    _serial_only = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked_child)


def set_num_threads(n):
    """Set the package's default thread count; None returns to OpenMP's default.

    The count is clamped, when used, to the CPUs this process may run on and
    to OpenMP's thread limit. Results never depend on it.

    Parameters
    ----------
    n : int or None
        Threads for calls made with ``num_threads=None``; None follows
        OpenMP (``OMP_NUM_THREADS``, threadpoolctl).

    Returns
    -------
    None

    Raises
    ------
    TypeError
        When n is neither an int nor None.
    ValueError
        When n is below 1 or above 2**31 - 1.

    See Also
    --------
    get_num_threads : The count a call uses.

    Examples
    --------
    >>> import leaky_kernel as lk
    >>> lk.set_num_threads(1)
    >>> lk.get_num_threads()
    1
    >>> lk.set_num_threads(None)  # back to OpenMP's default
    """
    global _default
    _default = check_num_threads(n)


def get_num_threads():
    """The thread count that a call with num_threads=None uses for a large array.

    Returns
    -------
    n : int
        `set_num_threads`'s count if set, else OpenMP's
        ``omp_get_max_threads()``, clamped to the usable CPUs and OpenMP's
        thread limit; 1 in a serial build or a forked child.

    See Also
    --------
    set_num_threads : Set the default.
    openmp_enabled : Whether the build is parallel at all.

    Examples
    --------
    >>> import os
    >>> import leaky_kernel as lk
    >>> 1 <= lk.get_num_threads() <= os.cpu_count()
    True
    """
    if _serial_only or not _openmp.openmp_enabled():
        return 1
    requested = _openmp.max_threads() if _default is None else _default
    return min(requested, THREAD_CAP)


def call_threads(num_threads):
    """The threads one call may use; num_threads is already checked (None or >= 1)."""
    if num_threads is None or _serial_only:
        return get_num_threads()
    return min(num_threads, THREAD_CAP)
