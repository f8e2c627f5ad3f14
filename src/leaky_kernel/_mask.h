/* SIMD bodies of the sign-mask kernels (see the sign-mask section of
 * _kernels.pxi): a Leaky ReLU forward that also packs x > 0 into bits, and
 * a backward that reads those bits in place of x.
 *
 * Mask byte b holds elements 8b .. 8b+7, element 8b+j in bit j
 * (little-endian bit order). movemask packs comparison lanes into exactly
 * this bit order; the backward turns a byte back into lanes by testing, in
 * each lane, that lane's bit of the byte broadcast to all lanes.
 *
 * Why intrinsics: GCC 12 (-O3 -fno-trapping-math) vectorises the kernel's
 * portable per-byte loops except the float64 forward at the SSE2 baseline,
 * but the code it makes of the bit packing and unpacking ran 2 to 10 times
 * slower than this on 2^15 in-cache elements (measured on an AMD EPYC), and
 * plain loops never make streaming stores.
 *
 * Like _stream.h, the header takes the width of the module that includes
 * it: AVX2 in the AVX2 build, SSE2 in the x86-64 baseline build. Elsewhere
 * LK_HAVE_MASK_SIMD is 0 and the kernel's portable loops do all the work.
 *
 * `stream` writes `out` with non-temporal stores and prefetches the data
 * input ahead as the tuning chose, as _stream.h does for the select (why:
 * there). NumPy aligns its arrays to 16 bytes, not to a line: an `out` off
 * a line boundary is written in line-aligned groups whose bits are shifted
 * against the mask bytes (AVX2 and AVX-512, below), so that every store is
 * a whole vector; an `out` not 16-byte aligned gets ordinary stores. The mask keeps
 * ordinary stores: streaming it too (4 or 8 bytes at a time) gains little
 * into memory already faulted in, but loses much more into fresh memory (an
 * allocating call), where page faults flush the mask's long-open partial
 * write-combining lines.
 *
 * The math is the kernel's select: value where the element is positive
 * (false for NaN and both zeros), else slope * value; the blend keeps it
 * exact.
 */
#ifndef LEAKY_KERNEL_MASK_H
#define LEAKY_KERNEL_MASK_H

#include <stdint.h>
#include <string.h>
#include <Python.h>

#include "_stream.h"

/* The vector types and operations (lk_vec_*, LK_OP, LK_GT, LK_BLEND) are
 * _stream.h's, for the same instruction-set levels. */
#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__)
#  define LK_HAVE_MASK_SIMD 1
#  define LK_MASK_512 1

/* A 16-byte-aligned `out` streams 16 bytes at a time (mode 1); a 64-byte
 * aligned one a whole line per vector (mode 2). NumPy aligns to 16 only. */
#  define LK_STREAM_MODE(out) \
       ((uintptr_t)(out) % 64 == 0 ? 2 : (uintptr_t)(out) % 16 == 0 ? 1 : 0)

static inline void lk_put_ps(float *p, __m512 v, int stream)
{
    if (stream == 2) {
        _mm512_stream_ps(p, v);
    } else if (stream) {
        _mm_stream_ps(p, _mm512_castps512_ps128(v));
        _mm_stream_ps(p + 4, _mm512_extractf32x4_ps(v, 1));
        _mm_stream_ps(p + 8, _mm512_extractf32x4_ps(v, 2));
        _mm_stream_ps(p + 12, _mm512_extractf32x4_ps(v, 3));
    } else {
        _mm512_storeu_ps(p, v);
    }
}

/* Stores move bits: a float64 vector goes out as the float32 one it casts to. */
static inline void lk_put_pd(double *p, __m512d v, int stream)
{
    lk_put_ps((float *)p, _mm512_castpd_ps(v), stream);
}

#elif defined(__AVX2__)
#  define LK_HAVE_MASK_SIMD 1

/* A 32-byte-aligned `out` streams whole vectors (mode 2); a 16-byte aligned
 * one 16 bytes at a time (mode 1). */
#  define LK_STREAM_MODE(out) \
       ((uintptr_t)(out) % 32 == 0 ? 2 : (uintptr_t)(out) % 16 == 0 ? 1 : 0)

/* Lane j's sign bit is bit j of the low 8 (float32) or 4 (float64) bits: all
 * the AVX2 blend reads. One shift, where a test of each lane's bit took an
 * and and a compare: the backward from a mask is short of issue slots. */
static inline __m256 lk_bit_lanes_ps(unsigned bits)
{
    const __m256i to_sign = _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24);
    return _mm256_castsi256_ps(_mm256_sllv_epi32(_mm256_set1_epi32((int)bits), to_sign));
}

static inline __m256d lk_bit_lanes_pd(unsigned bits)
{
    const __m256i to_sign = _mm256_setr_epi64x(63, 62, 61, 60);
    return _mm256_castsi256_pd(_mm256_sllv_epi64(_mm256_set1_epi64x((long long)bits), to_sign));
}

static inline void lk_stream_ps(float *p, __m256 v)
{
    _mm_stream_ps(p, _mm256_castps256_ps128(v));
    _mm_stream_ps(p + 4, _mm256_extractf128_ps(v, 1));
}

static inline void lk_stream_pd(double *p, __m256d v)
{
    _mm_stream_pd(p, _mm256_castpd256_pd128(v));
    _mm_stream_pd(p + 2, _mm256_extractf128_pd(v, 1));
}

#elif defined(__SSE2__) || defined(_M_X64)
#  define LK_HAVE_MASK_SIMD 1

/* The lanes whose bit is set in the low 4 (float32) or 2 (float64) bits. */
static inline __m128 lk_bit_lanes_ps(unsigned bits)
{
    const __m128i lane_bits = _mm_setr_epi32(1, 2, 4, 8);
    __m128i set = _mm_and_si128(_mm_set1_epi32((int)bits), lane_bits);
    return _mm_castsi128_ps(_mm_cmpeq_epi32(set, lane_bits));
}

static inline __m128d lk_bit_lanes_pd(unsigned bits)
{
    /* SSE2 has no 64-bit compare: both halves of a lane test its bit. */
    const __m128i lane_bits = _mm_setr_epi32(1, 1, 2, 2);
    __m128i set = _mm_and_si128(_mm_set1_epi32((int)bits), lane_bits);
    return _mm_castsi128_pd(_mm_cmpeq_epi32(set, lane_bits));
}

#  define lk_stream_ps _mm_stream_ps
#  define lk_stream_pd _mm_stream_pd

#else
#  define LK_HAVE_MASK_SIMD 0
#endif

#if LK_HAVE_MASK_SIMD
#define LK_LANES(T) (LK_STREAM_BYTES / (int)sizeof(T))
#ifndef LK_STREAM_MODE
#  define LK_STREAM_MODE(out) ((uintptr_t)(out) % 16 == 0)
#endif

/* Prefetch the lines of p[0 .. bytes) `ahead` bytes ahead: p is the one
 * large array a mask kernel reads (the mask is 32 or 64 times smaller). */
static inline void lk_prefetch_ahead(const void *p, size_t bytes, int kind, Py_ssize_t ahead)
{
    if (kind == LK_PREFETCH_NONE)
        return;
    for (size_t i = 0; i < bytes; i += LK_LINE_BYTES)
        lk_prefetch((const char *)p + i + ahead, kind);
}

/* For each dtype T (vector suffix sfx):
 *
 * lk_mask_forward_T: for nbytes mask bytes, out[i] = select(x[i]) and
 *     mask[b] = the packed x > 0 of elements 8b .. 8b+7.
 * lk_mask_backward_T: for nbytes mask bytes, out[i] = g[i] where bit i of
 *     the mask is set, else slope * g[i].
 *
 * out may be x (or g) itself: each vector is loaded before it is stored.
 * The stream flag picks between two copies of the loop so that the store
 * kind is a constant inside each; a fence orders streamed stores for other
 * threads. Both work on 64 elements (a mask word) per iteration. The
 * forward stores the mask a word at a time: a store per mask byte made it
 * 1.7 times slower than leaky_relu in cache on an AMD EPYC, which issues one
 * store per cycle and splits a 256-bit store in two. */
#define LK_DEFINE_MASK_BLOCKS(T, sfx)                                                 \
static inline void lk_put_##sfx(T *p, lk_vec_##sfx v, int stream)                     \
{                                                                                     \
    if (stream == 2)                                                                  \
        LK_OP(stream, sfx)(p, v);                                                     \
    else if (stream)                                                                  \
        lk_stream_##sfx(p, v);                                                        \
    else                                                                              \
        LK_OP(storeu, sfx)(p, v);                                                     \
}                                                                                     \
                                                                                      \
/* 8 elements: out = the select of x; returns their mask byte (in a word, for   */    \
/* lk_forward64's shifts).                                                       */   \
static inline uint64_t lk_forward8_##T(const T *x, T *out,                            \
                                       lk_vec_##sfx slope, int stream)                \
{                                                                                     \
    unsigned bits = 0;                                                                \
    for (int k = 0; k < 8; k += LK_LANES(T)) {                                        \
        lk_vec_##sfx v = LK_OP(loadu, sfx)(x + k);                                    \
        lk_vec_##sfx positive = LK_GT(sfx, v, LK_OP(setzero, sfx)());                 \
        lk_put_##sfx(out + k, LK_BLEND(sfx, LK_OP(mul, sfx)(v, slope), v, positive),  \
                     stream);                                                         \
        bits |= (unsigned)LK_OP(movemask, sfx)(positive) << k;                        \
    }                                                                                 \
    return bits;                                                                      \
}                                                                                     \
                                                                                      \
/* 64 elements: their 8 mask bytes as one little-endian word. */                      \
static inline uint64_t lk_forward_bits64_##T(const T *x, T *out, lk_vec_##sfx slope,  \
                                             int stream)                              \
{                                                                                     \
    uint64_t word = 0;                                                                \
    for (int k = 0; k < 8; k++)                                                       \
        word |= lk_forward8_##T(x + 8 * k, out + 8 * k, slope, stream) << (8 * k);    \
    return word;                                                                      \
}                                                                                     \
                                                                                      \
static inline void lk_backward8_##T(const T *g, unsigned bits, T *out,                \
                                    lk_vec_##sfx slope, int stream)                   \
{                                                                                     \
    for (int k = 0; k < 8; k += LK_LANES(T)) {                                        \
        lk_vec_##sfx v = LK_OP(loadu, sfx)(g + k);                                    \
        lk_vec_##sfx positive = lk_bit_lanes_##sfx(bits >> k);                        \
        lk_put_##sfx(out + k, LK_BLEND(sfx, LK_OP(mul, sfx)(v, slope), v, positive),  \
                     stream);                                                         \
    }                                                                                 \
}                                                                                     \
                                                                                      \
/* 64 elements, the bits of their 8 mask bytes as one word. */                       \
static inline void lk_backward_bits64_##T(const T *g, uint64_t bits, T *out,          \
                                          lk_vec_##sfx slope, int stream)             \
{                                                                                     \
    for (int k = 0; k < 8; k++)                                                       \
        lk_backward8_##T(g + 8 * k, (unsigned)(bits >> (8 * k)) & 0xFF, out + 8 * k,  \
                         slope, stream);                                              \
}

/* AVX-512: a compare gives the lanes' bits as a mask register and a masked
 * blend reads them back, so 64 elements are 4 (float32) or 8 (float64)
 * vectors with no packing or unpacking work. A single byte (the last, partial
 * mask word) goes through masked loads and stores of its 8 lanes, which
 * never touch memory past them. */
#define LK_DEFINE_MASK_BLOCKS_512(T, sfx)                                             \
static inline uint64_t lk_forward8_##T(const T *x, T *out, lk_vec_##sfx slope,        \
                                       int stream)                                    \
{                                                                                     \
    lk_vec_##sfx v = _mm512_maskz_loadu_##sfx(0xFF, x);                                \
    unsigned bits = _mm512_mask_cmp_##sfx##_mask(0xFF, v, LK_OP(setzero, sfx)(),       \
                                                 _CMP_GT_OQ);                         \
    (void)stream;                                                                     \
    _mm512_mask_storeu_##sfx(out, 0xFF, LK_BLEND(sfx, LK_OP(mul, sfx)(v, slope), v,   \
                                                 bits));                              \
    return bits;                                                                      \
}                                                                                     \
                                                                                      \
/* 64 elements: out = their select; returns their bits. */                            \
static inline uint64_t lk_forward_bits64_##T(const T *x, T *out, lk_vec_##sfx slope,  \
                                             int stream)                              \
{                                                                                     \
    uint64_t word = 0;                                                                \
    for (int k = 0; k < 64; k += LK_LANES(T)) {                                       \
        lk_vec_##sfx v = LK_OP(loadu, sfx)(x + k);                                    \
        uint64_t positive = LK_GT(sfx, v, LK_OP(setzero, sfx)());                     \
        lk_put_##sfx(out + k, LK_BLEND(sfx, LK_OP(mul, sfx)(v, slope), v, positive),  \
                     stream);                                                         \
        word |= positive << k;                                                        \
    }                                                                                 \
    return word;                                                                      \
}                                                                                     \
                                                                                      \
static inline void lk_backward8_##T(const T *g, unsigned bits, T *out,                \
                                    lk_vec_##sfx slope, int stream)                   \
{                                                                                     \
    lk_vec_##sfx v = _mm512_maskz_loadu_##sfx(0xFF, g);                                \
    (void)stream;                                                                     \
    _mm512_mask_storeu_##sfx(out, 0xFF, LK_BLEND(sfx, LK_OP(mul, sfx)(v, slope), v,   \
                                                 bits & 0xFF));                       \
}                                                                                     \
                                                                                      \
/* 64 elements: out = g where the element's bit of `bits` is set, else slope * g. */  \
static inline void lk_backward_bits64_##T(const T *g, uint64_t bits, T *out,          \
                                          lk_vec_##sfx slope, int stream)             \
{                                                                                     \
    for (int k = 0; k < 64; k += LK_LANES(T)) {                                       \
        lk_vec_##sfx v = LK_OP(loadu, sfx)(g + k);                                    \
        lk_put_##sfx(out + k, LK_BLEND(sfx, LK_OP(mul, sfx)(v, slope), v, bits >> k), \
                     stream);                                                         \
    }                                                                                 \
}

/* The forward's mask words, eight at a time (512 elements): one store where
 * eight held a store-buffer entry each while the vector stores wait for
 * their lines, a large share of an in-cache forward's time. */
static inline void lk_store_words8(unsigned char *mask, const uint64_t *w)
{
#if defined(LK_MASK_512)
    _mm512_storeu_si512((void *)mask, _mm512_set_epi64((long long)w[7], (long long)w[6],
        (long long)w[5], (long long)w[4], (long long)w[3], (long long)w[2], (long long)w[1],
        (long long)w[0]));
#elif defined(__AVX2__)
    _mm256_storeu_si256((__m256i *)mask, _mm256_set_epi64x((long long)w[3], (long long)w[2],
                                                           (long long)w[1], (long long)w[0]));
    _mm256_storeu_si256((__m256i *)(mask + 32), _mm256_set_epi64x(
        (long long)w[7], (long long)w[6], (long long)w[5], (long long)w[4]));
#else
    memcpy(mask, w, 64);
#endif
}

/* For both: whole mask words, and the groups of the line-aligned loops below,
 * whose 64 elements start on a line of out and stream whole vectors. */
#define LK_DEFINE_MASK_WORDS(T, sfx)                                                  \
static inline void lk_forward64_##T(const T *x, T *out, unsigned char *mask,          \
                                    lk_vec_##sfx slope, int stream)                   \
{                                                                                     \
    uint64_t word = lk_forward_bits64_##T(x, out, slope, stream);                     \
    memcpy(mask, &word, 8); /* one store, not one per byte */                   \
}                                                                                     \
                                                                                      \
static inline void lk_forward512_##T(const T *x, T *out, unsigned char *mask,         \
                                     lk_vec_##sfx slope, int stream)                  \
{                                                                                     \
    uint64_t words[8];                                                                \
    for (int k = 0; k < 8; k++)                                                       \
        words[k] = lk_forward_bits64_##T(x + 64 * k, out + 64 * k, slope, stream);    \
    lk_store_words8(mask, words);                                                     \
}                                                                                     \
                                                                                      \
static inline void lk_backward64_##T(const T *g, const unsigned char *mask, T *out,   \
                                     lk_vec_##sfx slope, int stream)                  \
{                                                                                     \
    uint64_t word;                                                                    \
    memcpy(&word, mask, 8);                                                           \
    lk_backward_bits64_##T(g, word, out, slope, stream);                              \
}                                                                                     \
                                                                                      \
static inline uint64_t lk_forward_group_##T(const T *x, T *out, lk_vec_##sfx slope,  \
                                             int stream)                              \
{                                                                                     \
    return lk_forward_bits64_##T(x, out, slope, stream ? 2 : 0);                      \
}                                                                                     \
                                                                                      \
static inline void lk_backward_group_##T(const T *g, uint64_t bits, T *out,           \
                                         lk_vec_##sfx slope, int stream)              \
{                                                                                     \
    lk_backward_bits64_##T(g, bits, out, slope, stream ? 2 : 0);                      \
}

/* AVX2 and AVX-512, into an `out` that does not start on a cache line
 * (NumPy aligns to 16 bytes only): streamed stores of less than a vector are
 * much slower than whole-line ones, and ordinary vector stores that straddle
 * two lines cost in-cache calls a good part of their time. So these loops
 * take 64-element groups that start `h` elements in, where out is
 * line-aligned, and shift the group's bits against the mask bytes, which
 * start at element 0: mask word j holds the previous group's top h bits and
 * this group's other bits. Elements before the first group and after the
 * last go through the byte loop with ordinary stores; the byte loop
 * recomputes the few elements both touch, so `out` must not overlap the
 * inputs (lk_mask_apart). */
/* Whether out's bytes lie apart from both inputs' (the second may be NULL). */
static inline int lk_mask_apart(const void *out, size_t out_bytes, const void *a,
                                size_t a_bytes, const void *b, size_t b_bytes)
{
    const char *o = (const char *)out, *pa = (const char *)a, *pb = (const char *)b;
    return (o + out_bytes <= pa || pa + a_bytes <= o)
        && (b == NULL || o + out_bytes <= pb || pb + b_bytes <= o);
}

/* Mask bytes byte .. byte+7 as a word, those past nbytes read as 0. */
static inline uint64_t lk_mask_word_at(const unsigned char *mask, Py_ssize_t nbytes,
                                       Py_ssize_t byte)
{
    uint64_t word = 0;
    if (byte + 8 <= nbytes)
        memcpy(&word, mask + byte, 8);
    else if (byte < nbytes)
        memcpy(&word, mask + byte, (size_t)(nbytes - byte));
    return word;
}

/* The line-aligned loops are compiled once per store kind: with the kind a
 * run-time value, every vector store tests it, which slows in-cache calls
 * into an out off a line. */
#if defined(__GNUC__)
#  define LK_ALWAYS_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#  define LK_ALWAYS_INLINE static __forceinline
#else
#  define LK_ALWAYS_INLINE static inline
#endif

#define LK_DEFINE_MASK_LINES(T, sfx)                                              \
LK_ALWAYS_INLINE Py_ssize_t lk_mask_forward_lines_##T(const T *x, T *out, unsigned char *mask,  \
                                            Py_ssize_t nbytes, lk_vec_##sfx slope,    \
                                            int stream, int prefetch,                 \
                                            Py_ssize_t prefetch_bytes)                \
{                                                                                     \
    const Py_ssize_t n = 8 * nbytes;                                                  \
    const int h = (int)(((64 - (uintptr_t)out % 64) % 64) / sizeof(T));               \
    uint64_t carry = 0; /* bits of the elements before this group, in this word */   \
    Py_ssize_t e, j = 0;                                                              \
    for (int i = 0; i < h && i < n; i++)                                              \
        carry |= (uint64_t)(x[i] > 0) << i;                                           \
    /* Streaming, the vector stores do not wait for their lines: one mask word   \
     * at a time runs steadier there. */                                          \
    for (e = h; !stream && e + 512 <= n; e += 512, j += 8) {                          \
        uint64_t words[8];                                                            \
        for (int k = 0; k < 8; k++) {                                                 \
            lk_prefetch_ahead(x + e + 64 * k, 64 * sizeof(T), prefetch, prefetch_bytes); \
            uint64_t word = lk_forward_group_##T(x + e + 64 * k, out + e + 64 * k,    \
                                                 slope, stream);                      \
            words[k] = carry | (word << h);                                           \
            carry = word >> (64 - h);                                                 \
        }                                                                             \
        lk_store_words8(mask + 8 * j, words);                                         \
    }                                                                                 \
    for (; e + 64 <= n; e += 64, j++) {                                               \
        lk_prefetch_ahead(x + e, 64 * sizeof(T), prefetch, prefetch_bytes);           \
        uint64_t word = lk_forward_group_##T(x + e, out + e, slope, stream);          \
        uint64_t mask_word = carry | (word << h);                                     \
        memcpy(mask + 8 * j, &mask_word, 8);                                          \
        carry = word >> (64 - h);                                                     \
    }                                                                                 \
    /* The head's values, and everything from byte 8j on, by the byte loop. */        \
    for (int b = 0; j > 0 && b * 8 < h; b++)                                          \
        (void)lk_forward8_##T(x + 8 * b, out + 8 * b, slope, 0);                      \
    return 8 * j;                                                                     \
}                                                                                     \
                                                                                      \
LK_ALWAYS_INLINE Py_ssize_t lk_mask_backward_lines_##T(const T *g, const unsigned char *mask,   \
                                             T *out, Py_ssize_t nbytes,               \
                                             lk_vec_##sfx slope, int stream,          \
                                             int prefetch, Py_ssize_t prefetch_bytes) \
{                                                                                     \
    const Py_ssize_t n = 8 * nbytes;                                                  \
    const int h = (int)(((64 - (uintptr_t)out % 64) % 64) / sizeof(T));               \
    Py_ssize_t e, j = 0;                                                              \
    for (e = h; e + 64 <= n; e += 64, j++) {                                          \
        uint64_t bits = (lk_mask_word_at(mask, nbytes, 8 * j) >> h)                    \
                      | (lk_mask_word_at(mask, nbytes, 8 * j + 8) << (64 - h));        \
        lk_prefetch_ahead(g + e, 64 * sizeof(T), prefetch, prefetch_bytes);           \
        lk_backward_group_##T(g + e, bits, out + e, slope, stream);                   \
    }                                                                                 \
    for (int b = 0; j > 0 && b * 8 < h; b++)                                          \
        lk_backward8_##T(g + 8 * b, mask[b], out + 8 * b, slope, 0);                  \
    return 8 * j;                                                                     \
}

#define LK_DEFINE_MASK_LOOPS(T, sfx)                                                  \
static void lk_mask_forward_##T(const T *x, T *out, unsigned char *mask,              \
                                Py_ssize_t nbytes, T slope, int stream,               \
                                int prefetch, Py_ssize_t prefetch_bytes)              \
{                                                                                     \
    const lk_vec_##sfx vslope = LK_OP(set1, sfx)(slope);                              \
    const int streamed = stream ? LK_STREAM_MODE(out) : 0;                            \
    Py_ssize_t b = 0;                                                                 \
    if (LK_IN_LINES(out, 8 * nbytes * sizeof(T), x, 8 * nbytes * sizeof(T), mask,    \
                    (size_t)nbytes))                                                  \
        b = stream ? lk_mask_forward_lines_##T(x, out, mask, nbytes, vslope, 1,       \
                                               prefetch, prefetch_bytes)              \
                   : lk_mask_forward_lines_##T(x, out, mask, nbytes, vslope, 0,       \
                                               LK_PREFETCH_NONE, 0);                  \
    else if (streamed)                                                                \
        for (; b + 8 <= nbytes; b += 8) {                                             \
            lk_prefetch_ahead(x + 8 * b, 64 * sizeof(T), prefetch, prefetch_bytes);   \
            lk_forward64_##T(x + 8 * b, out + 8 * b, mask + b, vslope, streamed);     \
        }                                                                             \
    else {                                                                            \
        for (; b + 64 <= nbytes; b += 64)                                             \
            lk_forward512_##T(x + 8 * b, out + 8 * b, mask + b, vslope, 0);           \
        for (; b + 8 <= nbytes; b += 8)                                               \
            lk_forward64_##T(x + 8 * b, out + 8 * b, mask + b, vslope, 0);            \
    }                                                                                 \
    for (; b < nbytes; b++)                                                           \
        mask[b] = (unsigned char)lk_forward8_##T(x + 8 * b, out + 8 * b, vslope,      \
                                                 streamed);                           \
    if (stream)                                                                       \
        _mm_sfence();                                                                 \
}                                                                                     \
                                                                                      \
static void lk_mask_backward_##T(const T *g, const unsigned char *mask, T *out,       \
                                 Py_ssize_t nbytes, T slope, int stream,              \
                                 int prefetch, Py_ssize_t prefetch_bytes)             \
{                                                                                     \
    const lk_vec_##sfx vslope = LK_OP(set1, sfx)(slope);                              \
    const int streamed = stream ? LK_STREAM_MODE(out) : 0;                            \
    Py_ssize_t b = 0;                                                                 \
    /* With ordinary stores the backward's line-aligned loop, which reads each  \
     * mask word twice to shift it, loses to straddling stores. */              \
    if (stream && LK_IN_LINES(out, 8 * nbytes * sizeof(T), g, 8 * nbytes * sizeof(T),   \
                              mask, (size_t)nbytes))                                  \
        b = lk_mask_backward_lines_##T(g, mask, out, nbytes, vslope, 1, prefetch,     \
                                       prefetch_bytes);                               \
    else if (streamed)                                                                \
        for (; b + 8 <= nbytes; b += 8) {                                             \
            lk_prefetch_ahead(g + 8 * b, 64 * sizeof(T), prefetch, prefetch_bytes);   \
            lk_backward64_##T(g + 8 * b, mask + b, out + 8 * b, vslope, streamed);    \
        }                                                                             \
    else                                                                              \
        for (; b + 8 <= nbytes; b += 8)                                               \
            lk_backward64_##T(g + 8 * b, mask + b, out + 8 * b, vslope, 0);           \
    for (; b < nbytes; b++)                                                           \
        lk_backward8_##T(g + 8 * b, mask[b], out + 8 * b, vslope, streamed);          \
    if (stream)                                                                       \
        _mm_sfence();                                                                 \
}
#if defined(LK_MASK_512)
LK_DEFINE_MASK_BLOCKS_512(float, ps)
LK_DEFINE_MASK_BLOCKS_512(double, pd)
#else
LK_DEFINE_MASK_BLOCKS(float, ps)
LK_DEFINE_MASK_BLOCKS(double, pd)
#endif
LK_DEFINE_MASK_WORDS(float, ps)
LK_DEFINE_MASK_WORDS(double, pd)
#if defined(LK_MASK_512) || defined(__AVX2__)
LK_DEFINE_MASK_LINES(float, ps)
LK_DEFINE_MASK_LINES(double, pd)
/* An out off a line boundary, apart from the inputs: the line-aligned loops above. */
#  define LK_IN_LINES(out, out_bytes, a, a_bytes, b, b_bytes) \
       ((uintptr_t)(out) % 64 != 0 && lk_mask_apart(out, out_bytes, a, a_bytes, b, b_bytes))
#else
/* SSE2's 16-byte vectors are whole at any 16-byte boundary. */
#  define LK_IN_LINES(out, out_bytes, a, a_bytes, b, b_bytes) 0
#  define lk_mask_forward_lines_float(x, out, mask, nbytes, slope, stream, kind, bytes) 0
#  define lk_mask_forward_lines_double(x, out, mask, nbytes, slope, stream, kind, bytes) 0
#  define lk_mask_backward_lines_float(g, mask, out, nbytes, slope, stream, kind, bytes) 0
#  define lk_mask_backward_lines_double(g, mask, out, nbytes, slope, stream, kind, bytes) 0
#endif
LK_DEFINE_MASK_LOOPS(float, ps)
LK_DEFINE_MASK_LOOPS(double, pd)
#else
/* Never called: the kernel tests LK_HAVE_MASK_SIMD first. */
#  define lk_mask_forward_float(x, out, mask, nbytes, slope, stream, kind, bytes) ((void)0)
#  define lk_mask_forward_double(x, out, mask, nbytes, slope, stream, kind, bytes) ((void)0)
#  define lk_mask_backward_float(g, mask, out, nbytes, slope, stream, kind, bytes) ((void)0)
#  define lk_mask_backward_double(g, mask, out, nbytes, slope, stream, kind, bytes) ((void)0)
#endif

#endif /* LEAKY_KERNEL_MASK_H */
