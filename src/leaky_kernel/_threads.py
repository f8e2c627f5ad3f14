"""How many OpenMP threads a call may use: the package's settings, pushed
down to the kernels, which resolve each call's count from them.

A call's count is resolved once, in the kernel module (`call_threads`), from
the count the call asks for, else the package default, else
omp_get_max_threads(), so that OMP_NUM_THREADS and threadpoolctl's
threadpool_limits apply; the kernel then starts no more threads than the
call has spans of work for (_kernels.pxi.tp, `work_threads`).

Any count, requested or from the environment, is clamped to THREAD_CAP
(_rules.py). Clamping changes no result.

Two places always run serially. A forked child (the kernel modules mark it
themselves, see _kernels.pxi.tp): GNU libgomp hangs a forked child that enters
a parallel region after its parent used one. A subinterpreter: CPython turns
off its GIL-state checks there, and Cython's parallel loops rely on them, so
a parallel region would abort the process.
"""
from . import _openmp
from ._dispatch import LEVELS, kernels, load
from ._rules import THREAD_CAP
from ._validation import check_num_threads


def configure_kernels(**changes):
    """Push thread settings (`default`, `cap`, `serial`) down to every kernel
    module; the self-check and the tests call every level's module. Returns
    the previous settings of the chosen one."""
    previous = kernels.configure_threads()
    for level in LEVELS:
        load(level).configure_threads(**changes)
    return previous


configure_kernels(cap=THREAD_CAP, serial=not _openmp.in_main_interpreter())


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
    configure_kernels(default=check_num_threads(n))


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
    return kernels.call_threads(None)


# The threads one call may use, for num_threads already checked (None or >= 1).
call_threads = kernels.call_threads
