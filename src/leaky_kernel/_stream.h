/* Streaming (non-temporal) stores for the Leaky ReLU select.
 *
 * Ordinary stores to an output larger than the last-level cache first read
 * each output line from memory (read for ownership): a third of the traffic
 * of a forward pass. movntps/movntpd write whole lines without reading them.
 * Compilers do not emit them from plain loops, hence the intrinsics.
 *
 * This header takes the width of the module that includes it: AVX-512 in the
 * AVX-512 build, AVX2 in the AVX2 build, SSE2 in the x86-64 baseline build. Elsewhere LK_HAVE_STREAM is
 * 0 and the kernel keeps ordinary stores.
 *
 * The math is the kernel's select: value where sign > 0 (false for NaN),
 * else slope * value; the blend keeps it exact.
 */
#ifndef LEAKY_KERNEL_STREAM_H
#define LEAKY_KERNEL_STREAM_H

#include <stdint.h>
#include <Python.h>

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#  include <immintrin.h>
#  define LK_HAVE_STREAM 1
#  define LK_STREAM_BYTES 64
typedef __m512 lk_vec_ps;
typedef __m512d lk_vec_pd;
#  define LK_OP(op, sfx) _mm512_##op##_##sfx
/* Comparisons give a mask register, which the masked blend reads. */
#  define LK_GT(sfx, a, zero) _mm512_cmp_##sfx##_mask((a), (zero), _CMP_GT_OQ)
#  define LK_BLEND(sfx, no, yes, mask) _mm512_mask_blend_##sfx((mask), (no), (yes))
#  define LK_EVENS_ps(lo, hi) _mm512_permutex2var_ps((lo), _mm512_setr_epi32(                \
       0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), (hi))
#  define LK_EVENS_pd(lo, hi) \
       _mm512_permutex2var_pd((lo), _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), (hi))
#elif defined(__AVX2__)
#  include <immintrin.h>
#  define LK_HAVE_STREAM 1
#  define LK_STREAM_BYTES 32
typedef __m256 lk_vec_ps;
typedef __m256d lk_vec_pd;
#  define LK_OP(op, sfx) _mm256_##op##_##sfx
#  define LK_GT(sfx, a, zero) _mm256_cmp_##sfx((a), (zero), _CMP_GT_OQ)
#  define LK_BLEND(sfx, no, yes, mask) _mm256_blendv_##sfx((no), (yes), (mask))
/* The even-indexed elements of two adjacent vectors, in order: the shuffle
 * picks them within each 128-bit lane, the permute puts the lanes in order. */
#  define LK_EVENS_ps(lo, hi) _mm256_castpd_ps(_mm256_permute4x64_pd(             \
       _mm256_castps_pd(_mm256_shuffle_ps((lo), (hi), _MM_SHUFFLE(2, 0, 2, 0))),    \
       _MM_SHUFFLE(3, 1, 2, 0)))
#  define LK_EVENS_pd(lo, hi) \
       _mm256_permute4x64_pd(_mm256_unpacklo_pd((lo), (hi)), _MM_SHUFFLE(3, 1, 2, 0))
#elif defined(__SSE2__) || defined(_M_X64)
#  include <emmintrin.h>
#  include <xmmintrin.h>
#  define LK_HAVE_STREAM 1
#  define LK_STREAM_BYTES 16
typedef __m128 lk_vec_ps;
typedef __m128d lk_vec_pd;
#  define LK_OP(op, sfx) _mm_##op##_##sfx
#  define LK_GT(sfx, a, zero) _mm_cmpgt_##sfx((a), (zero))
#  define LK_BLEND(sfx, no, yes, mask) \
       _mm_or_##sfx(_mm_and_##sfx((mask), (yes)), _mm_andnot_##sfx((mask), (no)))
#  define LK_EVENS_ps(lo, hi) _mm_shuffle_ps((lo), (hi), _MM_SHUFFLE(2, 0, 2, 0))
#  define LK_EVENS_pd(lo, hi) _mm_unpacklo_pd((lo), (hi))
#else
#  define LK_HAVE_STREAM 0
#endif

#if LK_HAVE_STREAM
/* Bytes per cache line: each iteration streams one whole output line. */
#define LK_LINE_BYTES 64

/* Software prefetch of the inputs ahead of the reads, as the tuning chose it
 * for this machine (_tuning.py): none, or prefetcht0 or prefetchnta a given
 * number of bytes ahead in all, which the backward's two inputs share. Which
 * wins differs between CPUs by a factor, hence a run-time
 * choice. Prefetches are hints: past the end of the arrays they do nothing. */
enum { LK_PREFETCH_NONE = 0, LK_PREFETCH_T0 = 1, LK_PREFETCH_NTA = 2 };

static inline void lk_prefetch(const void *p, int kind)
{
    if (kind == LK_PREFETCH_T0)
        _mm_prefetch((const char *)p, _MM_HINT_T0);
    else if (kind == LK_PREFETCH_NTA)
        _mm_prefetch((const char *)p, _MM_HINT_NTA);
}

/* The select of element j, for the heads and tails outside whole lines. */
#define LK_SELECT_AT(value, sign, slope, j) \
    ((sign)[j] > 0 ? (value)[j] : (slope) * (value)[j])

/* One vector of an operand with elements `step` apart: `width` contiguous
 * elements, or the even-indexed ones of the next 2 * width. */
#define LK_LOAD_STEP1(sfx, p, width) LK_OP(loadu, sfx)(p)
#define LK_LOAD_STEP2(sfx, p, width) \
    LK_EVENS_##sfx(LK_OP(loadu, sfx)(p), LK_OP(loadu, sfx)((p) + (width)))

/* out[i] = sign[s*i] > 0 ? value[s*i] : slope * value[s*i] for s = `step`,
 * streaming the line-aligned middle of out, which is contiguous. Step 2 is
 * every other column (m[:, ::2]): gathering the two input lines of each output
 * line in registers lets the strided reads be prefetched like contiguous ones.
 * Streaming stores are weakly ordered: a thread calls lk_stream_fence() once
 * it has written its share, before others read. */
#define LK_DEFINE_STREAM_SELECT(name, T, sfx, step)                                  \
static void name(const T *value, const T *sign, T *out, Py_ssize_t n, T slope,      \
                 int prefetch, Py_ssize_t prefetch_bytes)                            \
{                                                                                    \
    const Py_ssize_t width = LK_STREAM_BYTES / sizeof(T);                           \
    const Py_ssize_t line = LK_LINE_BYTES / sizeof(T);                              \
    const Py_ssize_t inputs = sign == value ? 1 : 2;                                \
    const Py_ssize_t ahead = prefetch_bytes / inputs / (Py_ssize_t)sizeof(T);       \
    const lk_vec_##sfx vslope = LK_OP(set1, sfx)(slope);                            \
    const lk_vec_##sfx zero = LK_OP(setzero, sfx)();                                \
    Py_ssize_t i = 0, k, p;                                                          \
    for (; i < n && ((uintptr_t)(out + i) % LK_LINE_BYTES) != 0; i++)               \
        out[i] = LK_SELECT_AT(value, sign, slope, (step) * i);                      \
    /* The last vector of a step-2 line also reads the element after its last \
     * even one: stop while that is still an operand element. */                  \
    for (; (step) * (i + line) <= (step) * (n - 1) + 1; i += line) {                 \
        for (p = (step) * i + ahead;                                                 \
             prefetch != LK_PREFETCH_NONE && p < (step) * (i + line) + ahead; p += line) { \
            lk_prefetch(value + p, prefetch);                                        \
            if (sign != value)                                                       \
                lk_prefetch(sign + p, prefetch);                                     \
        }                                                                            \
        for (k = i; k < i + line; k += width) {                                      \
            lk_vec_##sfx v = LK_LOAD_STEP##step(sfx, value + (step) * k, width);     \
            lk_vec_##sfx s = sign == value ? v                                       \
                           : LK_LOAD_STEP##step(sfx, sign + (step) * k, width);      \
            LK_OP(stream, sfx)(out + k, LK_BLEND(sfx, LK_OP(mul, sfx)(v, vslope), v, \
                                                 LK_GT(sfx, s, zero)));              \
        }                                                                            \
    }                                                                                \
    for (; i < n; i++)                                                               \
        out[i] = LK_SELECT_AT(value, sign, slope, (step) * i);                      \
}
LK_DEFINE_STREAM_SELECT(lk_stream_select_float, float, ps, 1)
LK_DEFINE_STREAM_SELECT(lk_stream_select_double, double, pd, 1)
LK_DEFINE_STREAM_SELECT(lk_stream_select_evens_float, float, ps, 2)
LK_DEFINE_STREAM_SELECT(lk_stream_select_evens_double, double, pd, 2)
#  define lk_stream_fence() _mm_sfence()

/* Bytes per page, and pages the paged loops below walk at once. */
#define LK_PAGE_BYTES 4096
#define LK_PAGES 4

/* The contiguous forward select above (sign == value), but walking LK_PAGES
 * pages of out at a time with their lines interleaved, as glibc's memcpy
 * does for large copies: the hardware prefetcher follows each page, so four
 * pages keep four streams of reads in flight where the line-by-line loop
 * keeps one. No software prefetch. Whether this beats the line-by-line loop,
 * and from which size, differs between CPUs (_tuning.py). An `out` off its
 * element alignment, which cannot reach a page boundary, goes line by line. */
#define LK_DEFINE_STREAM_SELECT_PAGES(name, line_loop, T, sfx)                       \
static void name(const T *x, T *out, Py_ssize_t n, T slope)                         \
{                                                                                    \
    const Py_ssize_t width = LK_STREAM_BYTES / sizeof(T);                           \
    const Py_ssize_t line = LK_LINE_BYTES / sizeof(T);                              \
    const Py_ssize_t page = LK_PAGE_BYTES / sizeof(T);                              \
    const lk_vec_##sfx vslope = LK_OP(set1, sfx)(slope);                            \
    const lk_vec_##sfx zero = LK_OP(setzero, sfx)();                                \
    Py_ssize_t i = 0, l, p, k;                                                       \
    if ((uintptr_t)out % sizeof(T) == 0) {                                           \
        i = (Py_ssize_t)((LK_PAGE_BYTES - (uintptr_t)out % LK_PAGE_BYTES)           \
                         % LK_PAGE_BYTES / sizeof(T));                               \
        i = i < n ? i : n;                                                           \
        line_loop(x, x, out, i, slope, LK_PREFETCH_NONE, 0);                         \
        for (; i + LK_PAGES * page <= n; i += LK_PAGES * page)                       \
            for (l = i; l < i + page; l += line)                                     \
                for (p = l; p < l + LK_PAGES * page; p += page)                      \
                    for (k = p; k < p + line; k += width) {                          \
                        lk_vec_##sfx v = LK_OP(loadu, sfx)(x + k);                   \
                        LK_OP(stream, sfx)(out + k, LK_BLEND(sfx, LK_OP(mul, sfx)(v, vslope), \
                                                             v, LK_GT(sfx, v, zero)));  \
                    }                                                                \
    }                                                                                \
    line_loop(x + i, x + i, out + i, n - i, slope, LK_PREFETCH_NONE, 0);             \
}
LK_DEFINE_STREAM_SELECT_PAGES(lk_stream_select_pages_float, lk_stream_select_float, float, ps)
LK_DEFINE_STREAM_SELECT_PAGES(lk_stream_select_pages_double, lk_stream_select_double, double, pd)

/* Not a kernel: the machine's own best way to move the bytes of a call, the
 * roofline that benchmarks measure the kernels against. out = a, or with b
 * out = a | b bitwise (two inputs, one output), the line-aligned middle
 * written with streaming stores, no prefetch: line by line, or with `pages`
 * > 1 that many pages at a time with their lines interleaved, as the paged
 * select goes. */
/* One line of the move from element k: out = a, or a | b. */
static inline void lk_move_line(const float *a, const float *b, float *out, Py_ssize_t k)
{
    for (Py_ssize_t j = k; j < k + LK_LINE_BYTES / (Py_ssize_t)sizeof(float);
         j += LK_STREAM_BYTES / (Py_ssize_t)sizeof(float)) {
        lk_vec_ps v = LK_OP(loadu, ps)(a + j);
        if (b)
            v = LK_OP(or, ps)(v, LK_OP(loadu, ps)(b + j));
        LK_OP(stream, ps)(out + j, v);
    }
}

static void lk_stream_move(const float *a, const float *b, float *out, Py_ssize_t n, int pages,
                           int prefetch, Py_ssize_t prefetch_bytes)
{
    const Py_ssize_t line = LK_LINE_BYTES / sizeof(float);
    const Py_ssize_t ahead = prefetch_bytes / (b ? 2 : 1) / (Py_ssize_t)sizeof(float);
    const Py_ssize_t page = LK_PAGE_BYTES / sizeof(float);
    const Py_ssize_t align = pages > 1 ? LK_PAGE_BYTES : LK_LINE_BYTES;
    const uint32_t *ia = (const uint32_t *)a, *ib = (const uint32_t *)b;
    uint32_t *iout = (uint32_t *)out;
    Py_ssize_t i = 0, l, p;
    for (; i < n && ((uintptr_t)(out + i) % align) != 0; i++)
        iout[i] = ia[i] | (b ? ib[i] : 0);
    for (; pages > 1 && i + pages * page <= n; i += pages * page)
        for (l = i; l < i + page; l += line)
            for (p = l; p < l + pages * page; p += page)
                lk_move_line(a, b, out, p);
    for (; i + line <= n; i += line) {
        if (prefetch != LK_PREFETCH_NONE) {
            lk_prefetch(a + i + ahead, prefetch);
            if (b)
                lk_prefetch(b + i + ahead, prefetch);
        }
        lk_move_line(a, b, out, i);
    }
    for (; i < n; i++)
        iout[i] = ia[i] | (b ? ib[i] : 0);
}
#else
/* Never called: the kernel tests LK_HAVE_STREAM first. */
#  define lk_stream_select_float(value, sign, out, n, slope, kind, bytes) ((void)0)
#  define lk_stream_select_double(value, sign, out, n, slope, kind, bytes) ((void)0)
#  define lk_stream_select_evens_float(value, sign, out, n, slope, kind, bytes) ((void)0)
#  define lk_stream_select_evens_double(value, sign, out, n, slope, kind, bytes) ((void)0)
#  define lk_stream_select_pages_float(x, out, n, slope) ((void)0)
#  define lk_stream_select_pages_double(x, out, n, slope) ((void)0)
#  define lk_stream_fence() ((void)0)
#  define lk_stream_move(a, b, out, n, pages, prefetch, bytes) ((void)0)
#endif

#endif /* LEAKY_KERNEL_STREAM_H */
