/* The vector primitives of each x86 instruction-set level, for the kernels'
 * hand-written SIMD loops (_ops.h.tp, _stream.h.tp, _mask.h.tp): the vector
 * types, and one-line macros naming an intrinsic by its dtype suffix (ps
 * for float, pd for double). They hold plumbing, never the math: that lives
 * in the point functions of _ops.h.tp.
 *
 * This header takes the width of the module that includes it: AVX-512 in the
 * AVX-512 build, AVX2 in the AVX2 build, SSE2 in the x86-64 baseline build.
 * Elsewhere LK_HAVE_SIMD is 0 and the kernels keep their portable loops.
 */
#ifndef LEAKY_KERNEL_SIMD_H
#define LEAKY_KERNEL_SIMD_H

#include <stdint.h>
#include <Python.h>

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#  include <immintrin.h>
#  define LK_HAVE_SIMD 1
#  define LK_STREAM_BYTES 64
typedef __m512 lk_vec_ps;
typedef __m512d lk_vec_pd;
/* A comparison's lanes: a mask register here, a vector of all-ones lanes below. */
typedef __mmask16 lk_pred_ps;
typedef __mmask8 lk_pred_pd;
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
#  define LK_HAVE_SIMD 1
#  define LK_STREAM_BYTES 32
typedef __m256 lk_vec_ps;
typedef __m256d lk_vec_pd;
typedef __m256 lk_pred_ps;
typedef __m256d lk_pred_pd;
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
#  define LK_HAVE_SIMD 1
#  define LK_STREAM_BYTES 16
typedef __m128 lk_vec_ps;
typedef __m128d lk_vec_pd;
typedef __m128 lk_pred_ps;
typedef __m128d lk_pred_pd;
#  define LK_OP(op, sfx) _mm_##op##_##sfx
#  define LK_GT(sfx, a, zero) _mm_cmpgt_##sfx((a), (zero))
#  define LK_BLEND(sfx, no, yes, mask) \
       _mm_or_##sfx(_mm_and_##sfx((mask), (yes)), _mm_andnot_##sfx((mask), (no)))
#  define LK_EVENS_ps(lo, hi) _mm_shuffle_ps((lo), (hi), _MM_SHUFFLE(2, 0, 2, 0))
#  define LK_EVENS_pd(lo, hi) _mm_unpacklo_pd((lo), (hi))
#else
#  define LK_HAVE_SIMD 0
#endif

/* Software prefetch kinds of the streaming loops' inputs (see lk_prefetch). */
enum { LK_PREFETCH_NONE = 0, LK_PREFETCH_T0 = 1, LK_PREFETCH_NTA = 2 };

#if LK_HAVE_SIMD
/* Bytes per cache line: each iteration of a streaming loop writes one whole
 * output line. */
#define LK_LINE_BYTES 64

/* Software prefetch of the inputs ahead of the reads, as the tuning chose it
 * for this machine (_tuning.py): none, or prefetcht0 or prefetchnta a given
 * number of bytes ahead in all, which the backward's two inputs share. Which
 * wins differs between CPUs by a factor, hence a run-time
 * choice. Prefetches are hints: past the end of the arrays they do nothing. */
static inline void lk_prefetch(const void *p, int kind)
{
    if (kind == LK_PREFETCH_T0)
        _mm_prefetch((const char *)p, _MM_HINT_T0);
    else if (kind == LK_PREFETCH_NTA)
        _mm_prefetch((const char *)p, _MM_HINT_NTA);
}
#endif

#endif /* LEAKY_KERNEL_SIMD_H */
