"""How many OpenMP threads a call uses.

The count is resolved once per call, in Python, and passed down as an int.
With no package default it follows omp_get_max_threads(), so OMP_NUM_THREADS
and threadpoolctl's threadpool_limits apply. A forked child always runs
serially: GNU libgomp hangs a forked child that enters a parallel region after
its parent used one, and the child cannot tell whether the parent did.
"""
import os

from . import _openmp
from ._dispatch import kernels
from ._validation import check_num_threads

_default = None
_in_forked_child = False


def _mark_forked_child():
    global _in_forked_child
    _in_forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked_child)


def set_num_threads(n):
    """Set the package's default thread count; None returns to OpenMP's default."""
    global _default
    _default = check_num_threads(n)


def get_num_threads():
    """The thread count that a call with num_threads=None uses for a large array."""
    if _in_forked_child or not _openmp.openmp_enabled():
        return 1
    if _default is not None:
        return _default
    return _openmp.max_threads()


def threads_for(size, num_threads):
    """Threads for one call over `size` elements; num_threads is already checked."""
    if size < kernels.PARALLEL_MIN_SIZE or _in_forked_child:
        return 1
    return get_num_threads() if num_threads is None else num_threads
