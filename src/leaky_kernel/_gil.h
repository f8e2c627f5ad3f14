/* Releasing the GIL for a kernel call, and taking it back.

   A thread that finds the GIL taken when its kernel ends sleeps on CPython's
   condition variable until the holder lets go, then waits for a cross-CPU
   wake-up: about 7 us on the VM measured, more than a whole 2^15-element call.
   Meanwhile the holder may take the GIL again, and the sleeper sleeps again.
   Two Python threads calling the kernels in a loop then run slower than one
   (bench/NOTES.md, sections 15 and 18).

   When several threads call in a loop, such a collision is mostly with
   another caller of these kernels that has just taken the GIL back and will
   release it on its next call, a microsecond or two later. So each caller
   records that it holds the GIL between two calls, and a thread whose kernel
   ends while another caller holds it spins, for at most LK_GIL_SPIN_NS, until
   that caller releases the GIL; it then finds the GIL free and does not
   sleep. A spin that times out clears the record: a caller that has stopped
   calling costs one bounded spin, not one per call. The record is only a
   hint, never a cause of a wrong result or a hang; a caller alone pays two
   loads and two stores per call.

   The spin needs GCC's atomic builtins (GCC, Clang), POSIX's monotonic clock
   (Linux, macOS) and a GIL; elsewhere (MSVC, Windows, free-threaded builds)
   calls release and take back the GIL plainly, as the README says. */
#ifndef LK_GIL_H
#define LK_GIL_H

#include <Python.h>

#if defined(__GNUC__) && !defined(Py_GIL_DISABLED) && (defined(__unix__) || defined(__APPLE__))
#include <time.h>

#define LK_GIL_SPIN_NS 10000

/* The caller that holds the GIL between two calls, or NULL. One per kernel
   module: the package calls one level's module, so all callers share it. */
static PyThreadState *lk_gil_holder;

static inline long long lk_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static inline void lk_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline PyThreadState *lk_release_gil(void)
{
    PyThreadState *self = PyEval_SaveThread();
    /* Cleared only once the GIL is free, so that a spinning thread that sees
       it cleared finds the GIL free. */
    if (__atomic_load_n(&lk_gil_holder, __ATOMIC_RELAXED) == self)
        __atomic_store_n(&lk_gil_holder, (PyThreadState *)NULL, __ATOMIC_RELEASE);
    return self;
}

static inline void lk_wait_for_holder(PyThreadState *holder)
{
    long long deadline = lk_now_ns() + LK_GIL_SPIN_NS;
    while (__atomic_load_n(&lk_gil_holder, __ATOMIC_ACQUIRE) == holder) {
        if (lk_now_ns() >= deadline) {
            __atomic_compare_exchange_n(&lk_gil_holder, &holder, (PyThreadState *)NULL, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            return;
        }
        lk_cpu_relax();
    }
}

static inline void lk_reacquire_gil(PyThreadState *self)
{
    PyThreadState *holder = __atomic_load_n(&lk_gil_holder, __ATOMIC_ACQUIRE);
    if (holder != NULL && holder != self)
        lk_wait_for_holder(holder);
    PyEval_RestoreThread(self);
    __atomic_store_n(&lk_gil_holder, self, __ATOMIC_RELAXED);
}

#else

static inline PyThreadState *lk_release_gil(void) { return PyEval_SaveThread(); }
static inline void lk_reacquire_gil(PyThreadState *self) { PyEval_RestoreThread(self); }

#endif
#endif
