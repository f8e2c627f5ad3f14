/* CPU features, asked at run time, and the instruction set a module was
 * compiled for. _openmp.pyx, built for the baseline, asks the CPU;
 * _kernels.pxi includes this for LEAKY_KERNEL_SIMD, so each kernel module
 * reports its own build.
 *
 * LEAKY_KERNEL_CPU_HAS_AVX2() is 1 when this CPU runs AVX2 code and the OS
 * saves the YMM registers across context switches; _dispatch.py imports the
 * AVX2 module only then, since running it elsewhere faults.
 * LEAKY_KERNEL_CPU_HAS_AVX512() likewise for AVX-512 F, DQ, BW and VL, with
 * the opmask and ZMM state saved.
 */
#ifndef LEAKY_KERNEL_CPU_H
#define LEAKY_KERNEL_CPU_H

#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__)
#define LEAKY_KERNEL_SIMD "AVX512"
#elif defined(__AVX2__)
#define LEAKY_KERNEL_SIMD "AVX2"
#elif defined(__SSE2__) || defined(_M_X64)
#define LEAKY_KERNEL_SIMD "SSE2"
#elif defined(__ARM_NEON)
#define LEAKY_KERNEL_SIMD "NEON"
#else
#define LEAKY_KERNEL_SIMD "unknown"
#endif

#if defined(_MSC_VER) && !defined(__clang__) && (defined(_M_X64) || defined(_M_IX86))
/* MSVC has no __builtin_cpu_supports: read CPUID and XCR0 ourselves.
 * Expected to work; not compiled with MSVC by this project's CI (README). */
#include <intrin.h>
#include <immintrin.h>

static int leaky_kernel_msvc_cpu_has_avx2(void)
{
    int regs[4]; /* EAX, EBX, ECX, EDX */
    __cpuidex(regs, 0, 0);
    if (regs[0] < 7)
        return 0; /* no leaf 7, where the AVX2 bit is */
    __cpuidex(regs, 1, 0);
    /* ECX bit 27 OSXSAVE: the OS uses XSAVE, so XGETBV may be executed;
     * ECX bit 28 AVX. */
    if ((regs[2] & (1 << 27)) == 0 || (regs[2] & (1 << 28)) == 0)
        return 0;
    /* XCR0 bits 1 (SSE) and 2 (AVX): the OS saves the XMM and YMM state.
     * Without them AVX instructions fault even on a CPU that has them. */
    if ((_xgetbv(0) & 0x6) != 0x6)
        return 0;
    __cpuidex(regs, 7, 0);
    return (regs[1] & (1 << 5)) != 0; /* EBX bit 5: AVX2 */
}
#define LEAKY_KERNEL_CPU_HAS_AVX2() leaky_kernel_msvc_cpu_has_avx2()

static int leaky_kernel_msvc_cpu_has_avx512(void)
{
    int regs[4];
    if (!leaky_kernel_msvc_cpu_has_avx2())
        return 0;
    /* XCR0 bits 5-7: the OS saves the opmask and all ZMM state. */
    if ((_xgetbv(0) & 0xE6) != 0xE6)
        return 0;
    __cpuidex(regs, 7, 0);
    /* EBX bits 16 F, 17 DQ, 30 BW, 31 VL. */
    return (regs[1] & 0xC0030000u) == 0xC0030000u;
}
#define LEAKY_KERNEL_CPU_HAS_AVX512() leaky_kernel_msvc_cpu_has_avx512()

#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
/* libgcc's and compiler-rt's check includes the OS's YMM state (XCR0). */
#define LEAKY_KERNEL_CPU_HAS_AVX2() __builtin_cpu_supports("avx2")
#define LEAKY_KERNEL_CPU_HAS_AVX512()                                           \
    (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && \
     __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))

#else
#define LEAKY_KERNEL_CPU_HAS_AVX2() 0
#define LEAKY_KERNEL_CPU_HAS_AVX512() 0
#endif

#endif /* LEAKY_KERNEL_CPU_H */
