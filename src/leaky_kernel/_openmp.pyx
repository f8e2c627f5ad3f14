# cython: language_level=3
"""The one place that talks to the OpenMP runtime, and asks the CPU what it runs.

Built with the same OpenMP flags as the kernels, so it reports on the build
the kernels got, and it reads the same runtime state that OMP_NUM_THREADS and
threadpoolctl set. It is compiled for the baseline instruction set, so it
loads on any CPU and can say which kernel modules this one runs
(_dispatch.py).
"""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define LEAKY_KERNEL_OPENMP 1
    #else
    #define LEAKY_KERNEL_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_thread_limit(void) { return 1; }
    #endif
    """
    bint LEAKY_KERNEL_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_limit() noexcept nogil


from libc.limits cimport INT_MAX

# Thread counts reach OpenMP as a C int.
MAX_THREADS = INT_MAX


def openmp_enabled():
    """True when the compiled kernels were built with OpenMP.

    A build without OpenMP (``LEAKY_KERNEL_NO_OPENMP=1``, or a compiler
    without it) runs every call on one thread, with the same results.

    Returns
    -------
    enabled : bool

    See Also
    --------
    get_num_threads : The thread count a call uses.

    Examples
    --------
    >>> import leaky_kernel as lk
    >>> lk.openmp_enabled() in (True, False)
    True
    """
    return LEAKY_KERNEL_OPENMP


def max_threads():
    """OpenMP's current omp_get_max_threads() (1 in a serial build)."""
    return omp_get_max_threads()


def thread_limit():
    """OpenMP's omp_get_thread_limit() (OMP_THREAD_LIMIT; 1 in a serial build)."""
    return omp_get_thread_limit()


cdef extern from "Python.h":
    ctypedef struct PyInterpreterState:
        pass
    PyInterpreterState* PyInterpreterState_Get()
    PyInterpreterState* PyInterpreterState_Main()


def in_main_interpreter():
    """Whether this code runs in the main interpreter, not a subinterpreter."""
    return PyInterpreterState_Get() == PyInterpreterState_Main()


cdef extern from "_cpu.h":
    bint LEAKY_KERNEL_CPU_HAS_AVX2()
    bint LEAKY_KERNEL_CPU_HAS_AVX512()


def cpu_has_avx2():
    """Whether this CPU (and OS) runs AVX2 code."""
    return LEAKY_KERNEL_CPU_HAS_AVX2()


def cpu_has_avx512():
    """Whether this CPU (and OS) runs AVX-512 F, DQ, BW and VL code."""
    return LEAKY_KERNEL_CPU_HAS_AVX512()
