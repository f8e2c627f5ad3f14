/* Handing the GIL between callers of the kernels without sleeping.

   The kernels release the GIL in Cython `with nogil` blocks. A thread whose
   kernel ends while another thread holds the GIL sleeps on CPython's
   condition variable until the holder lets go, then waits for a cross-CPU
   wake-up, which can take longer than a whole in-cache call. Meanwhile the
   holder may take the GIL again, and the sleeper sleeps again. Two Python
   threads calling the kernels in a loop then run slower than one.

   When several threads call in a loop, such a collision is mostly with
   another caller of these kernels that has just taken the GIL back and will
   release it on its next call, a microsecond or two later. So each caller
   records that it holds the GIL between two calls, and a thread whose kernel
   ends while another caller holds it spins, for at most LK_GIL_SPIN_NS, until
   that caller releases it; it then finds the GIL free and does not sleep. A
   spin that times out clears the record: a caller that has stopped calling
   costs one bounded spin, not one per call. The record is only a hint, never
   a cause of a wrong result or a hang; a caller alone pays two loads and two
   stores per call. None of these functions touches a Python object: they
   run inside the `with nogil` block, before the GIL is taken back, or
   just after.

   The spin needs GCC's atomic builtins (GCC, Clang), POSIX's monotonic clock
   (Linux, macOS) and a GIL; elsewhere (MSVC, Windows, free-threaded builds)
   the three hooks do nothing and calls release and take back the GIL
   plainly, as the README says. */
#ifndef LK_GIL_H
#define LK_GIL_H

#include <Python.h>

#if defined(__GNUC__) && !defined(Py_GIL_DISABLED) && (defined(__unix__) || defined(__APPLE__))
#include <time.h>

#define LK_GIL_SPIN_NS 10000

/* A thread's identity: the address of its own copy of a thread-local. */
static __thread char lk_this_thread;
#define LK_SELF ((const void *)&lk_this_thread)

/* The caller that holds the GIL between two calls, or NULL. One per kernel
   module: the package calls one level's module, so all callers share it. */
static const void *lk_gil_holder;

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

/* Just after the GIL is released. Cleared only once the GIL is free, so that
   a spinning thread that sees the record cleared finds the GIL free. */
static inline void lk_gil_released(void)
{
    if (__atomic_load_n(&lk_gil_holder, __ATOMIC_RELAXED) == LK_SELF)
        __atomic_store_n(&lk_gil_holder, (const void *)NULL, __ATOMIC_RELEASE);
}

/* Just before the GIL is taken back: wait, briefly, for another caller that
   holds it to release it. */
static inline void lk_gil_wait_for_holder(void)
{
    const void *holder = __atomic_load_n(&lk_gil_holder, __ATOMIC_ACQUIRE);
    if (holder == NULL || holder == LK_SELF)
        return;
    long long deadline = lk_now_ns() + LK_GIL_SPIN_NS;
    while (__atomic_load_n(&lk_gil_holder, __ATOMIC_ACQUIRE) == holder) {
        if (lk_now_ns() >= deadline) {
            __atomic_compare_exchange_n(&lk_gil_holder, &holder, (const void *)NULL, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            return;
        }
        lk_cpu_relax();
    }
}

/* Just after the GIL is taken back. */
static inline void lk_gil_reacquired(void)
{
    __atomic_store_n(&lk_gil_holder, LK_SELF, __ATOMIC_RELAXED);
}

#else

static inline void lk_gil_released(void) {}
static inline void lk_gil_wait_for_holder(void) {}
static inline void lk_gil_reacquired(void) {}

#endif
#endif
