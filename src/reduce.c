/* Element types and reduction kernels. Every type x op kernel is instantiated by one macro from
 * the type table below; the half types (float16, bfloat16) reuse the float32 kernels on blocks
 * widened to float32, so their arithmetic is float32 arithmetic by construction. */
#include "core.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define PC_HAVE_X86 1
#endif

typedef void (*pc_kern_fn)(void *d, const void *a, const void *b, size_t n);
typedef void (*pc_avg_fn)(void *buf, size_t n, int nranks);

/* X(type enum, C type, unsigned twin for wrap-around, divisor type for avg, short name).
 * Signed integers add and multiply in their unsigned twin because signed overflow is undefined
 * behaviour while wrap-around is the documented result; floats use themselves. */
#define PC_NATIVE_TYPES(X)                                                                         \
    X(podcclInt8, int8_t, uint8_t, int64_t, i8)                                                    \
    X(podcclUint8, uint8_t, uint8_t, uint64_t, u8)                                                 \
    X(podcclInt32, int32_t, uint32_t, int64_t, i32)                                                \
    X(podcclUint32, uint32_t, uint32_t, uint64_t, u32)                                             \
    X(podcclInt64, int64_t, uint64_t, int64_t, i64)                                                \
    X(podcclUint64, uint64_t, uint64_t, uint64_t, u64)                                             \
    X(podcclFloat32, float, float, float, f32)                                                     \
    X(podcclFloat64, double, double, double, f64)

/* dst may be exactly a or b, which restrict would forbid, but that aliasing is a distance-0
 * dependence, not a loop-carried one, so "ivdep" is true and spares the runtime overlap check
 * that gcc's -O2 cost model refuses to emit. Partial overlap is not allowed by the callers.
 * Clang emits that check at -O2 by itself. */
#if defined(__GNUC__) && !defined(__clang__)
#define PC_IVDEP _Pragma("GCC ivdep")
#else
#define PC_IVDEP
#endif

/* for (i = 0; i < n; i++) BODY, split into 64-byte groups of constant trip count plus a scalar
 * tail: gcc 12's -O2 ("very-cheap") vectorizer rejects any loop that would need a scalar
 * epilogue, but takes a loop whose count is a known multiple of the vector length. */
#define PC_FOR(T, n, i, ...)                                                                       \
    do {                                                                                           \
        size_t g_ = 0;                                                                             \
        for (; g_ + 64 / sizeof(T) <= (n); g_ += 64 / sizeof(T)) {                                 \
            PC_IVDEP                                                                               \
            for (size_t k_ = 0; k_ < 64 / sizeof(T); k_++) {                                       \
                size_t i = g_ + k_;                                                                \
                __VA_ARGS__                                                                        \
            }                                                                                      \
        }                                                                                          \
        for (; g_ < (n); g_++) {                                                                   \
            size_t i = g_;                                                                         \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)

/* Each kernel is compiled for AVX-512, AVX2 and baseline x86-64; the loader picks the widest
 * the CPU has (an ifunc), so one binary runs everywhere at full vector width. */
/* Sanitizer builds go without: an ifunc resolver runs before the sanitizer runtime exists. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define PC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define PC_CLONES
#endif

/* Buffers come at any byte offset (a user's buffer plus an odd byte count, a slice of a packed
 * message), and a misaligned T* load is undefined behaviour (UBSan reports it), so elements are
 * loaded and stored through memcpy on byte addresses: C's defined unaligned access, which
 * compiles to the very same vector loads and stores as a plain dereference (measured: no change
 * in bandwidth, aligned or not). */
#define PC_LDST(T, N)                                                                              \
    static inline T ld_##N(const void *p, size_t i) {                                              \
        T v;                                                                                       \
        memcpy(&v, (const char *)p + i * sizeof(T), sizeof(T));                                    \
        return v;                                                                                  \
    }                                                                                              \
    static inline void st_##N(void *p, size_t i, T v) {                                            \
        memcpy((char *)p + i * sizeof(T), &v, sizeof(T));                                          \
    }

/* One kernel per type x op; the body reads a[i] and b[i] before it writes d[i]. */
#define PC_KERNEL(T, UT, N, NAME, EXPR)                                                            \
    PC_CLONES static void NAME(void *d, const void *a, const void *b, size_t n) {                  \
        PC_FOR(T, n, i, T x = ld_##N(a, i), y = ld_##N(b, i); st_##N(d, i, (EXPR)););              \
    }

/* Instantiates the four kernels, the avg finisher and the table row of one native type. */
#define PC_DEFINE_TYPE(E, T, UT, DT, N)                                                            \
    PC_LDST(T, N)                                                                                  \
    PC_KERNEL(T, UT, N, sum_##N, (T)((UT)x + (UT)y))                                               \
    PC_KERNEL(T, UT, N, prod_##N, (T)((UT)x * (UT)y))                                              \
    PC_KERNEL(T, UT, N, max_##N, x > y ? x : y)                                                    \
    PC_KERNEL(T, UT, N, min_##N, x < y ? x : y)                                                    \
    static void avg_##N(void *b, size_t n, int nranks) {                                           \
        DT div = (DT)nranks;                                                                       \
        PC_FOR(T, n, i, st_##N(b, i, (T)(ld_##N(b, i) / div)););                                   \
    }
PC_NATIVE_TYPES(PC_DEFINE_TYPE)

#define PC_KERN_ROW(E, T, UT, DT, N) [E] = {sum_##N, prod_##N, max_##N, min_##N, sum_##N},
static const pc_kern_fn pc_kern[podcclNumTypes][podcclNumOps] = {PC_NATIVE_TYPES(PC_KERN_ROW)};
#define PC_AVG_ROW(E, T, UT, DT, N) [E] = avg_##N,
static const pc_avg_fn pc_avg[podcclNumTypes] = {PC_NATIVE_TYPES(PC_AVG_ROW)};

/* ---- Half-type conversions ----------------------------------------------------------------- */

/* memcpy is C's defined way to reinterpret bits (a pointer cast would break aliasing rules);
 * it compiles to a register move. */
static inline float pc_bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint32_t pc_f_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Placing the half's exponent and mantissa in a float and scaling by 2^112 rebiases the
 * exponent and normalizes subnormals in one exact multiply, with no branch but inf/NaN. */
static inline float pc_f16_to_f32_sw(uint16_t h) {
    uint32_t em = (uint32_t)(h & 0x7fff) << 13, sign = (uint32_t)(h & 0x8000) << 16;
    float mag = pc_bits_f(em) * 0x1p112f;
    uint32_t u = em >= (0x7c00u << 13) ? em | 0x7f800000u : pc_f_bits(mag);
    return pc_bits_f(u | sign);
}

/* Round to nearest-even by integer add (F. Giesen's float_to_half_fast3_rtne); the subnormal
 * range lets the FPU round by adding 0.5f, whose ulp equals the half subnormal step. NaN keeps
 * its top payload bits and becomes quiet, exactly as the F16C instruction does, so the two
 * paths give identical bits. */
static inline uint16_t pc_f32_to_f16_sw(float f) {
    uint32_t x = pc_f_bits(f), sign = (x >> 16) & 0x8000, r;
    x &= 0x7fffffffu;
    if (x > 0x7f800000u)
        r = 0x7e00 | ((x >> 13) & 0x3ff);
    else if (x >= 0x47800000u)
        r = 0x7c00; /* >= 65536, or inf */
    else if (x < 0x38800000u)
        r = pc_f_bits(pc_bits_f(x) + 0.5f) - 0x3f000000u;
    else
        r = (x + 0xc8000fffu + ((x >> 13) & 1)) >> 13; /* rebias by -112 and round */
    return (uint16_t)(sign | r);
}

/* bfloat16 is the top half of a float32, so widening is a shift and narrowing an integer
 * round-to-nearest-even on the dropped 16 bits (NaN forced quiet so rounding cannot make it
 * an infinity). */
static inline float pc_bf16_to_f32(uint16_t h) {
    return pc_bits_f((uint32_t)h << 16);
}
static inline uint16_t pc_f32_to_bf16(float f) {
    uint32_t x = pc_f_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* The half-type side (s of widen, d of narrow) is the user's buffer, at any byte offset: see
 * PC_LDST. The float side is an aligned staging block. */
typedef void (*pc_widen_fn)(float *d, const void *s, size_t n);
typedef void (*pc_narrow_fn)(void *d, const float *s, size_t n);
PC_LDST(uint16_t, u16)

/* Array forms so that the block loops below pay for one indirect call per block, not per
 * element. */
static void pc_widen_f16_sw(float *d, const void *s, size_t n) {
    PC_FOR(float, n, i, d[i] = pc_f16_to_f32_sw(ld_u16(s, i)););
}
static void pc_narrow_f16_sw(void *d, const float *s, size_t n) {
    PC_FOR(float, n, i, st_u16(d, i, pc_f32_to_f16_sw(s[i])););
}
static void pc_widen_bf16(float *d, const void *s, size_t n) {
    PC_FOR(float, n, i, d[i] = pc_bf16_to_f32(ld_u16(s, i)););
}
static void pc_narrow_bf16(void *d, const float *s, size_t n) {
    PC_FOR(float, n, i, st_u16(d, i, pc_f32_to_bf16(s[i])););
}

#ifdef PC_HAVE_X86
/* Hardware conversion, eight elements per instruction; compiled for F16C only here so that the
 * rest of the library runs on any x86-64, and called only after a run-time CPU check. */
__attribute__((target("avx,f16c"))) static void pc_widen_f16_hw(float *d, const void *s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) /* loadu: any alignment */
        _mm256_storeu_ps(d + i,
                         _mm256_cvtph_ps(_mm_loadu_si128((const void *)((const char *)s + 2 * i))));
    for (; i < n; i++) d[i] = _cvtsh_ss(ld_u16(s, i));
}
__attribute__((target("avx,f16c"))) static void pc_narrow_f16_hw(void *d, const float *s,
                                                                 size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((void *)((char *)d + 2 * i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) st_u16(d, i, _cvtss_sh(s[i], _MM_FROUND_TO_NEAREST_INT));
}
#endif

/* AVX must be usable too (the OS saves YMM state; __builtin_cpu_supports checks that). Clang
 * before 16 has no "f16c" name for the builtin, so it reads the CPUID bit itself, once: CPUID
 * traps to the hypervisor in a VM (microseconds), far too slow for every reduction call. The
 * cache is a relaxed atomic that every thread would set to the same value, so racing to fill
 * it is harmless. */
static int pc_cpu_f16c(void) {
#if defined(PC_HAVE_X86) && defined(__clang__)
    static atomic_int known; /* 0: not asked yet, 1: no F16C, 2: F16C */
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k == 0) {
        unsigned a, b, c, d;
        int has = __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
        k = has ? 2 : 1;
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k == 2;
#elif defined(PC_HAVE_X86)
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

/* Lets the unit test run the software float16 path on a machine that has F16C. Not in core.h
 * because nothing but tests should call it; returns whether F16C will be used from now on. */
int pc_reduce_use_f16c(int enable);
static atomic_int pc_f16c_disabled;
int pc_reduce_use_f16c(int enable) {
    atomic_store(&pc_f16c_disabled, !enable);
    return enable && pc_cpu_f16c();
}

/* Chooses the conversion pair for a half type; checked per call because it is a couple of
 * loads, which spares a racy lazy initialization. Returns 0 for a non-half type. */
static int pc_half_conv(podcclDataType_t t, pc_widen_fn *w, pc_narrow_fn *nw) {
    if (t == podcclBfloat16) {
        *w = pc_widen_bf16, *nw = pc_narrow_bf16;
        return 1;
    }
    if (t != podcclFloat16) return 0;
    *w = pc_widen_f16_sw, *nw = pc_narrow_f16_sw;
#ifdef PC_HAVE_X86
    if (!atomic_load_explicit(&pc_f16c_disabled, memory_order_relaxed) && pc_cpu_f16c())
        *w = pc_widen_f16_hw, *nw = pc_narrow_f16_hw;
#endif
    return 1;
}

/* Elements per block: the float32 staging buffers (and, for pc_reduce_n, the slice of dst that
 * is revisited once per source) stay in L1. */
#define PC_BLOCK 1024

/* ---- Public entry points ------------------------------------------------------------------- */

/* 0 for an unknown type, so that one call both validates a datatype and sizes a buffer. */
size_t pc_type_size(podcclDataType_t t) {
    static const unsigned char size[podcclNumTypes] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
    return (unsigned)t < podcclNumTypes ? size[t] : 0;
}

/* For log and error messages; never NULL so it can go straight into a format. */
const char *pc_type_name(podcclDataType_t t) {
    static const char *const name[podcclNumTypes] = {"int8",    "uint8",   "int32",   "uint32",
                                                     "int64",   "uint64",  "float16", "float32",
                                                     "float64", "bfloat16"};
    return (unsigned)t < podcclNumTypes ? name[t] : "unknown";
}

/* As pc_type_name, for ops. */
const char *pc_op_name(podcclRedOp_t op) {
    static const char *const name[podcclNumOps] = {"sum", "prod", "max", "min", "avg"};
    return (unsigned)op < podcclNumOps ? name[op] : "unknown";
}

/* Half types go through float32 blocks so that one set of float32 kernels defines their
 * arithmetic; a block is fully read before dst is written, which makes dst == a or b safe. */
void pc_reduce2(void *dst, const void *a, const void *b, size_t count, podcclDataType_t t,
                podcclRedOp_t op) {
    pc_widen_fn widen;
    pc_narrow_fn narrow;
    if (count == 0 || (unsigned)t >= podcclNumTypes || (unsigned)op >= podcclNumOps) return;
    if (!pc_half_conv(t, &widen, &narrow)) {
        pc_kern[t][op](dst, a, b, count);
        return;
    }
    pc_kern_fn k = pc_kern[podcclFloat32][op];
    float fa[PC_BLOCK], fb[PC_BLOCK];
    for (size_t i = 0; i < count; i += PC_BLOCK) {
        size_t n = count - i < PC_BLOCK ? count - i : PC_BLOCK;
        widen(fa, (const char *)a + 2 * i, n);
        widen(fb, (const char *)b + 2 * i, n);
        k(fa, fa, fb, n);
        narrow((char *)dst + 2 * i, fa, n);
    }
}

/* Combines the sources block by block so that the partial result stays in cache across
 * sources instead of streaming dst through memory nsrc-1 times; half types keep the partial
 * result in float32 and round once at the end, as the header promises. */
void pc_reduce_n(void *dst, const void *const *srcs, int nsrc, size_t count, podcclDataType_t t,
                 podcclRedOp_t op) {
    pc_widen_fn widen;
    pc_narrow_fn narrow;
    if (count == 0 || nsrc < 1 || (unsigned)t >= podcclNumTypes || (unsigned)op >= podcclNumOps)
        return;
    size_t es = pc_type_size(t);
    if (nsrc == 1) {
        if (dst != srcs[0]) memmove(dst, srcs[0], count * es);
        return;
    }
    int half = pc_half_conv(t, &widen, &narrow);
    pc_kern_fn k = pc_kern[half ? podcclFloat32 : t][op];
    float acc[PC_BLOCK], tmp[PC_BLOCK];
    for (size_t i = 0; i < count; i += PC_BLOCK) {
        size_t n = count - i < PC_BLOCK ? count - i : PC_BLOCK;
        if (half) {
            widen(acc, (const char *)srcs[0] + 2 * i, n);
            for (int s = 1; s < nsrc; s++) {
                widen(tmp, (const char *)srcs[s] + 2 * i, n);
                k(acc, acc, tmp, n);
            }
            narrow((char *)dst + 2 * i, acc, n);
        } else {
            char *d = (char *)dst + i * es;
            k(d, (const char *)srcs[0] + i * es, (const char *)srcs[1] + i * es, n);
            for (int s = 2; s < nsrc; s++) k(d, d, (const char *)srcs[s] + i * es, n);
        }
    }
}

/* Avg is a sum until every contribution has arrived; dividing once here rounds once (integers
 * truncate toward zero, as C divides) and costs one pass instead of one per step. */
void pc_avg_finish(void *buf, size_t count, podcclDataType_t t, int nranks) {
    pc_widen_fn widen;
    pc_narrow_fn narrow;
    if (count == 0 || nranks <= 1 || (unsigned)t >= podcclNumTypes) return;
    if (!pc_half_conv(t, &widen, &narrow)) {
        pc_avg[t](buf, count, nranks);
        return;
    }
    float f[PC_BLOCK];
    for (size_t i = 0; i < count; i += PC_BLOCK) {
        size_t n = count - i < PC_BLOCK ? count - i : PC_BLOCK;
        widen(f, (char *)buf + 2 * i, n);
        pc_avg[podcclFloat32](f, n, nranks);
        narrow((char *)buf + 2 * i, f, n);
    }
}
