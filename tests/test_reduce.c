/* Unit test of the reduction kernels (src/reduce.c) against reference loops written here
 * independently: integers in exact modular uint64 arithmetic, floats in double with one rounding
 * to float32 per step, and float16/bfloat16 encoded and decoded with frexp/ldexp rather than the
 * bit tricks the library uses. Float16 runs twice: F16C (where the CPU has it) and software. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core.h"

/* Test hook in reduce.c, not in core.h: 0 forces the software float16 conversions. */
int pc_reduce_use_f16c(int enable);

static const size_t counts[] = {0, 1, 7, 33, 1000, 4099};
#define NCOUNTS (sizeof counts / sizeof counts[0])
static const podcclRedOp_t ops[] = {podcclSum, podcclProd, podcclMax, podcclMin, podcclAvg};

/* ---- Independent reference conversions ----------------------------------------------------- */

/* Type classes, spelled out here rather than taken from the library under test. */
static int is_half(podcclDataType_t t) {
    return t == podcclFloat16 || t == podcclBfloat16;
}
static int is_float(podcclDataType_t t) {
    return is_half(t) || t == podcclFloat32 || t == podcclFloat64;
}
static int is_signed_int(podcclDataType_t t) {
    return t == podcclInt8 || t == podcclInt32 || t == podcclInt64;
}
/* Significand bits (with the implicit one) and minimum normal exponent of a half type. */
static int h_prec(podcclDataType_t t) {
    return t == podcclFloat16 ? 11 : 8;
}
static int h_emin(podcclDataType_t t) {
    return t == podcclFloat16 ? -14 : -126;
}
static int h_ebits(podcclDataType_t t) {
    return t == podcclFloat16 ? 5 : 8;
}

/* Exact value of a half-type bit pattern, built from its fields with ldexp. */
static double h_decode(podcclDataType_t t, uint16_t h) {
    int p = h_prec(t) - 1, emax = (1 << h_ebits(t)) - 1, bias = emax / 2;
    int e = (h >> p) & emax, m = h & ((1 << p) - 1);
    double v;
    if (e == emax)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, 1 - bias - p);
    else
        v = ldexp((1 << p) + m, e - bias - p);
    return (h & 0x8000) ? -v : v;
}

static unsigned long ties_up, ties_down; /* proof that rounding ties were exercised */

/* Round v (a float32 value held in a double) to the half type, to nearest-even, by scaling the
 * significand to an integer with frexp/ldexp and rounding that integer explicitly. */
static uint16_t h_encode(podcclDataType_t t, double v) {
    int p = h_prec(t), emin = h_emin(t), bias = -emin + 1, e;
    uint16_t sign = signbit(v) ? 0x8000 : 0, inf = (uint16_t)(((1 << h_ebits(t)) - 1) << (p - 1));
    if (isnan(v)) return (uint16_t)(sign | inf | (1 << (p - 2)));
    v = fabs(v);
    if (isinf(v)) return sign | inf;
    if (v == 0) return sign;
    double f = frexp(v, &e); /* v = f * 2^e, 0.5 <= f < 1: exponent e - 1 */
    int exp = e - 1;
    double q = exp >= emin ? ldexp(f, p) : ldexp(v, p - 1 - emin); /* integer part = encoding */
    double fl = (double)(uint32_t)q, frac = q - fl; /* 0 <= q < 2^p: truncation is floor */
    if (frac == 0.5) {
        if ((uint32_t)fl & 1)
            fl += 1, ties_up++;
        else
            ties_down++;
    } else if (frac > 0.5) {
        fl += 1;
    }
    if (exp < emin) return (uint16_t)(sign | (uint16_t)fl); /* may carry into the min normal */
    if (fl == ldexp(1, p)) fl /= 2, exp++;
    if (exp > bias) return sign | inf;
    return (uint16_t)(sign | ((exp + bias) << (p - 1)) | ((uint16_t)fl - (1 << (p - 1))));
}

/* NaN payloads may differ between paths; only NaN-ness is specified. */
static int h_isnan(podcclDataType_t t, uint16_t h) {
    return isnan(h_decode(t, h));
}

/* ---- Element access, wide representations --------------------------------------------------- */

/* Integers as uint64 (signed ones sign-extended), so sum and product are exact mod 2^64. */
static uint64_t get_int(podcclDataType_t t, const void *p, size_t i) {
    switch (t) {
    case podcclInt8:
        return (uint64_t)(int64_t)((const int8_t *)p)[i];
    case podcclUint8:
        return ((const uint8_t *)p)[i];
    case podcclInt32:
        return (uint64_t)(int64_t)((const int32_t *)p)[i];
    case podcclUint32:
        return ((const uint32_t *)p)[i];
    default:
        return ((const uint64_t *)p)[i];
    }
}
/* Truncating store: the low bits of the exact mod-2^64 result are the wrapped result. */
static void put_int(podcclDataType_t t, void *p, size_t i, uint64_t v) {
    switch (t) {
    case podcclInt8:
    case podcclUint8:
        ((uint8_t *)p)[i] = (uint8_t)v;
        break;
    case podcclInt32:
    case podcclUint32:
        ((uint32_t *)p)[i] = (uint32_t)v;
        break;
    default:
        ((uint64_t *)p)[i] = v;
    }
}
/* Every float-type value is exact in a double. */
static double get_f(podcclDataType_t t, const void *p, size_t i) {
    if (t == podcclFloat32) return ((const float *)p)[i];
    if (t == podcclFloat64) return ((const double *)p)[i];
    return h_decode(t, ((const uint16_t *)p)[i]);
}

/* One integer step; max/min must compare signed types as signed. */
static uint64_t int_step(podcclDataType_t t, podcclRedOp_t op, uint64_t x, uint64_t y) {
    int lt = is_signed_int(t) ? (int64_t)x < (int64_t)y : x < y;
    switch (op) {
    case podcclProd:
        return x * y;
    case podcclMax:
        return lt ? y : x;
    case podcclMin:
        return lt ? x : y;
    default:
        return x + y;
    }
}
/* Rounds an exact-in-double result to the accumulation precision: float32 for float32 and the
 * half types. One rounding from double is exact for + - * / of floats (53 >= 2 * 24 + 2). */
static double acc_round(podcclDataType_t t, double r) {
    return t == podcclFloat64 ? r : (double)(float)r;
}
/* One combining step; max/min follow the library's "x > y ? x : y" convention. */
static double f_step(podcclDataType_t t, podcclRedOp_t op, double x, double y) {
    return acc_round(t, op == podcclProd  ? x * y
                        : op == podcclMax ? (x > y ? x : y)
                        : op == podcclMin ? (x < y ? x : y)
                                          : x + y);
}

/* Compares element i of got with the expected value: ints exactly, floats bit for bit unless
 * both are NaN, halves against the reference encoding of the float32 value. */
static int check_elem(podcclDataType_t t, const void *got, size_t i, uint64_t ei, double ef,
                      const char *what, size_t count) {
    char g[64], e[64];
    if (!is_float(t)) {
        uint64_t want[1], gv = get_int(t, got, i);
        put_int(t, want, 0, ei);
        if (gv == get_int(t, want, 0)) return 0;
        snprintf(g, sizeof g, "%#llx", (unsigned long long)gv);
        snprintf(e, sizeof e, "%#llx", (unsigned long long)get_int(t, want, 0));
    } else if (is_half(t)) {
        uint16_t gv = ((const uint16_t *)got)[i], ev = h_encode(t, ef);
        if (gv == ev || (h_isnan(t, gv) && h_isnan(t, ev))) return 0;
        snprintf(g, sizeof g, "%#06x", gv);
        snprintf(e, sizeof e, "%#06x (%.9g)", ev, ef);
    } else {
        double gv = get_f(t, got, i);
        if ((isnan(gv) && isnan(ef)) || (!isnan(ef) && memcmp(&gv, &ef, sizeof gv) == 0)) return 0;
        snprintf(g, sizeof g, "%a", gv);
        snprintf(e, sizeof e, "%a", ef);
    }
    print_error("%s %s count %zu: element %zu is %s, expected %s\n", what, pc_type_name(t), count,
                i, g, e);
    return 1;
}

/* ---- Input generation ------------------------------------------------------------------------ */

/* Fixed-seed splitmix64, so that a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Half values near 1 (so sums and products need rounding and ties are common), anything at all,
 * subnormals, and the specials. */
static uint16_t rnd_half(podcclDataType_t t) {
    uint64_t r = rnd();
    int p = h_prec(t) - 1, bias = (1 << (h_ebits(t) - 1)) - 1;
    uint16_t sign = (r >> 40) & 1 ? 0x8000 : 0, m = (uint16_t)(r >> 20) & ((1 << p) - 1);
    switch (r % 8) {
    case 0:
        return (uint16_t)(r >> 16);
    case 1:
        return sign | m; /* subnormal or zero */
    case 2: {
        static const uint16_t f16[] = {0x7c00, 0xfc00, 0x7e00, 0x7bff, 0x0001, 0x8000, 0x3c00};
        static const uint16_t bf16[] = {0x7f80, 0xff80, 0x7fc0, 0x7f7f, 0x0001, 0x8000, 0x3f80};
        return (t == podcclFloat16 ? f16 : bf16)[(r >> 8) % 7];
    }
    default:
        return (uint16_t)(sign | (bias - 3 + (int)((r >> 8) % 7)) << p | m);
    }
}

/* Inputs mixing small and negative values, full-width bit patterns (integer wrap-around), edge
 * values, and for floats wide exponents, overflow-prone magnitudes and the specials. */
static void fill(podcclDataType_t t, void *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rnd(), sel = r % 8;
        if (is_half(t)) {
            ((uint16_t *)p)[i] = rnd_half(t);
        } else if (!is_float(t)) {
            static const uint64_t edge[] = {
                0,    1,    ~0ull,      0x7fffffffffffffffull, 1ull << 63, 0x7f,
                0x80, 0xff, 0x7fffffff, 0x80000000u,           0xffffffffu};
            uint64_t v = sel < 3   ? (uint64_t)((int64_t)(r >> 32) % 41 - 20)
                         : sel < 6 ? rnd()
                         : sel < 7 ? edge[(r >> 16) % 11]
                                   : (uint64_t)((int64_t)(r >> 32) % 2001 - 1000);
            put_int(t, p, i, v);
        } else {
            double v;
            if (sel < 4)
                v = ldexp((double)((int64_t)(rnd() >> 11) - (1ll << 52)) / 0x1p52,
                          (int)((r >> 8) % 61) - 30);
            else if (sel < 5)
                v = (double)((int64_t)(r >> 32) % 41 - 20);
            else if (sel < 6)
                v = ldexp(1.5, t == podcclFloat32 ? 120 : 1000) * ((r >> 8) & 1 ? 1 : -1);
            else {
                static const double sp[] = {0.0,      -0.0,      INFINITY,  -INFINITY,     NAN,
                                            0x1p-149, -0x1p-140, 0x1p-1074, 0x1.fffffep127};
                v = sp[(r >> 8) % 9];
            }
            if (t == podcclFloat32)
                ((float *)p)[i] = (float)v;
            else
                ((double *)p)[i] = v;
        }
    }
}

/* Buffers are malloc'd one element larger and used from element 1, so that they are misaligned
 * with respect to any vector width. */
static void *alloc_off(podcclDataType_t t, size_t n, void **base) {
    size_t es = pc_type_size(t);
    *base = malloc((n + 1) * es);
    assert_non_null(*base);
    return (char *)*base + es;
}

/* ---- Parameterized tests --------------------------------------------------------------------- */

struct param {
    podcclDataType_t t;
    int f16c; /* for float16: 1 = hardware conversion if present, 0 = software */
};

/* Selects the float16 path the test asked for, and says which one actually runs. */
static void setup_mode(const struct param *pr) {
    int hw = pc_reduce_use_f16c(pr->f16c);
    if (pr->t == podcclFloat16 && pr->f16c)
        print_message("    float16 via %s\n", hw ? "F16C" : "software (no F16C)");
}

/* Expected value of element i of op applied to srcs[0..nsrc), left to right. */
static void expect(podcclDataType_t t, podcclRedOp_t op, const void *const *srcs, int nsrc,
                   size_t i, uint64_t *ei, double *ef) {
    if (is_float(t)) {
        double acc = get_f(t, srcs[0], i);
        for (int s = 1; s < nsrc; s++) acc = f_step(t, op, acc, get_f(t, srcs[s], i));
        *ef = acc;
    } else {
        uint64_t acc = get_int(t, srcs[0], i);
        for (int s = 1; s < nsrc; s++) acc = int_step(t, op, acc, get_int(t, srcs[s], i));
        *ei = acc;
    }
}

/* Every op, count and aliasing layout of pc_reduce2 against the reference. */
static void test_reduce2(void **state) {
    const struct param *pr = *state;
    podcclDataType_t t = pr->t;
    size_t es = pc_type_size(t);
    unsigned long up0 = ties_up, down0 = ties_down;
    setup_mode(pr);
    pc_reduce2(NULL, NULL, NULL, 0, t, podcclSum); /* count 0 with NULL buffers is a no-op */
    for (size_t c = 0; c < NCOUNTS; c++) {
        size_t n = counts[c];
        for (size_t o = 0; o < 5; o++) {
            /* alias: 0 = distinct dst, 1 = dst is a, 2 = dst is b, 3 = a is b, distinct dst */
            for (int alias = 0; alias < 4; alias++) {
                void *ba, *bb, *bd, *bea, *beb;
                void *a = alloc_off(t, n, &ba), *b = alloc_off(t, n, &bb);
                void *d = alloc_off(t, n, &bd), *ea = alloc_off(t, n, &bea),
                     *eb = alloc_off(t, n, &beb);
                fill(t, a, n);
                fill(t, b, n);
                fill(t, d, n);
                if (alias == 3) memcpy(b, a, n * es);
                memcpy(ea, a, n * es); /* pristine copies for the reference */
                memcpy(eb, b, n * es);
                void *dst = alias == 1 ? a : alias == 2 ? b : d;
                pc_reduce2(dst, a, alias == 3 ? a : b, n, t, ops[o]);
                const void *src[2] = {ea, eb};
                int bad = 0;
                for (size_t i = 0; i < n && bad < 5; i++) {
                    uint64_t ei = 0;
                    double ef = 0;
                    expect(t, ops[o], src, 2, i, &ei, &ef);
                    bad += check_elem(t, dst, i, ei, ef, pc_op_name(ops[o]), n);
                }
                if (bad) print_error("(pc_reduce2, alias case %d)\n", alias);
                free(ba), free(bb), free(bd), free(bea), free(beb);
                assert_int_equal(bad, 0);
            }
        }
    }
    if (is_half(t)) { /* the sums must have hit round-half-to-even both ways */
        assert_true(ties_up > up0);
        assert_true(ties_down > down0);
    }
}

/* Every op, count, nsrc 1..5, out of place and in place (dst == srcs[0]). */
static void test_reduce_n(void **state) {
    const struct param *pr = *state;
    podcclDataType_t t = pr->t;
    size_t es = pc_type_size(t);
    setup_mode(pr);
    for (size_t c = 0; c < NCOUNTS; c++) {
        size_t n = counts[c];
        for (size_t o = 0; o < 5; o++) {
            for (int nsrc = 1; nsrc <= 5; nsrc++) {
                for (int inplace = 0; inplace < 2; inplace++) {
                    void *bases[6], *ebases[5], *srcs[5], *esrcs[5];
                    for (int s = 0; s < nsrc; s++) {
                        srcs[s] = alloc_off(t, n, &bases[s]);
                        esrcs[s] = alloc_off(t, n, &ebases[s]);
                        fill(t, srcs[s], n);
                        memcpy(esrcs[s], srcs[s], n * es);
                    }
                    void *d = alloc_off(t, n, &bases[5]);
                    fill(t, d, n);
                    void *dst = inplace ? srcs[0] : d;
                    pc_reduce_n(dst, (const void *const *)srcs, nsrc, n, t, ops[o]);
                    int bad = 0;
                    for (size_t i = 0; i < n && bad < 5; i++) {
                        uint64_t ei = 0;
                        double ef = 0;
                        expect(t, ops[o], (const void *const *)esrcs, nsrc, i, &ei, &ef);
                        bad += check_elem(t, dst, i, ei, ef, pc_op_name(ops[o]), n);
                    }
                    if (bad) print_error("(pc_reduce_n, nsrc %d, in place %d)\n", nsrc, inplace);
                    for (int s = 0; s < nsrc; s++) free(bases[s]), free(ebases[s]);
                    free(bases[5]);
                    assert_int_equal(bad, 0);
                }
            }
        }
    }
}

/* Integer avg truncates toward zero; float avg rounds the float32 (or double) quotient once. */
static void test_avg_finish(void **state) {
    const struct param *pr = *state;
    podcclDataType_t t = pr->t;
    static const int nranks[] = {1, 2, 3, 7, 64, 1000};
    size_t es = pc_type_size(t);
    setup_mode(pr);
    pc_avg_finish(NULL, 0, t, 3);
    for (size_t c = 0; c < NCOUNTS; c++) {
        size_t n = counts[c];
        for (size_t r = 0; r < sizeof nranks / sizeof nranks[0]; r++) {
            void *bb, *be;
            void *b = alloc_off(t, n, &bb), *e = alloc_off(t, n, &be);
            fill(t, b, n);
            memcpy(e, b, n * es);
            pc_avg_finish(b, n, t, nranks[r]);
            int bad = 0;
            for (size_t i = 0; i < n && bad < 5; i++) {
                uint64_t ei = 0, x = is_float(t) ? 0 : get_int(t, e, i);
                double ef = is_float(t) ? acc_round(t, get_f(t, e, i) / nranks[r]) : 0;
                if (!is_float(t))
                    ei = is_signed_int(t) ? (uint64_t)((int64_t)x / nranks[r])
                                          : x / (uint64_t)nranks[r];
                bad += check_elem(t, b, i, ei, ef, "avg", n);
            }
            if (bad) print_error("(pc_avg_finish, nranks %d)\n", nranks[r]);
            free(bb), free(be);
            assert_int_equal(bad, 0);
        }
    }
}

/* ---- Conversion edge cases ------------------------------------------------------------------- */

/* Exhaustive: max(x, x) widens and narrows every 16-bit pattern; it must come back unchanged
 * (NaN only has to stay NaN with its sign). */
static void test_half_roundtrip(void **state) {
    const struct param *pr = *state;
    podcclDataType_t t = pr->t;
    setup_mode(pr);
    uint16_t *in = malloc(65536 * 2), *out = malloc(65536 * 2);
    assert_non_null(in);
    assert_non_null(out);
    for (unsigned i = 0; i < 65536; i++) in[i] = (uint16_t)i;
    pc_reduce2(out, in, in, 65536, t, podcclMax);
    int bad = 0;
    for (unsigned i = 0; i < 65536 && bad < 5; i++) {
        int ok = h_isnan(t, in[i]) ? h_isnan(t, out[i]) && (out[i] & 0x8000) == (in[i] & 0x8000)
                                   : out[i] == in[i];
        if (!ok) print_error("%s roundtrip %#06x -> %#06x\n", pc_type_name(t), in[i], out[i]);
        bad += !ok;
        /* the reference codec must agree with itself too */
        if (!h_isnan(t, in[i]) && h_encode(t, h_decode(t, in[i])) != in[i]) bad++;
    }
    free(in), free(out);
    assert_int_equal(bad, 0);
}

/* Hand-computed results: rounding at the overflow threshold, in the subnormal range, ties, and
 * NaN from inf arithmetic. Independent of both the library and the reference codec. */
static void test_half_cases(void **state) {
    const struct param *pr = *state;
    struct kase {
        podcclRedOp_t op;
        uint16_t a, b, want;
    };
    static const struct kase f16[] = {
        {podcclSum, 0x0001, 0x0001, 0x0002},  /* subnormal + subnormal */
        {podcclSum, 0x7bff, 0x4c00, 0x7c00},  /* 65504 + 16 = 65520: tie, rounds to even = inf */
        {podcclSum, 0x7bff, 0x4bff, 0x7bff},  /* 65504 + 15.99 stays finite */
        {podcclProd, 0x0001, 0x3800, 0x0000}, /* 2^-24 * 0.5: tie, rounds to even = 0 */
        {podcclProd, 0x0001, 0x3a00, 0x0001}, /* 2^-24 * 0.75 rounds up */
        {podcclProd, 0x0003, 0x3800, 0x0002}, /* 1.5 * 2^-24: tie, rounds to 2 */
        {podcclProd, 0x03ff, 0x4000, 0x07fe}, /* largest subnormal * 2 is normal */
        {podcclSum, 0x3c00, 0x1000, 0x3c00},  /* 1 + 2^-11: tie, rounds down to even 1 */
        {podcclSum, 0x3c01, 0x1000, 0x3c02},  /* (1 + 2^-10) + 2^-11: tie, rounds up to even */
        {podcclSum, 0x7c00, 0xfc00, 0x7e00},  /* inf - inf = NaN */
        {podcclProd, 0x7c00, 0x0000, 0x7e00}, /* inf * 0 = NaN */
        {podcclSum, 0x7c00, 0x3c00, 0x7c00},  /* inf + 1 = inf */
        {podcclSum, 0x8000, 0x8000, 0x8000},  /* -0 + -0 = -0 */
    };
    static const struct kase bf16[] = {
        {podcclSum, 0x0001, 0x0001, 0x0002},  /* subnormal */
        {podcclSum, 0x7f7f, 0x7f7f, 0x7f80},  /* max + max = inf */
        {podcclProd, 0x0001, 0x3f00, 0x0000}, /* min subnormal * 0.5: tie to even = 0 */
        {podcclProd, 0x0003, 0x3f00, 0x0002}, /* 1.5 min subnormal: tie to 2 */
        {podcclSum, 0x3f80, 0x3b80, 0x3f80},  /* 1 + 2^-8: tie, rounds down to even */
        {podcclSum, 0x3f81, 0x3b80, 0x3f82},  /* (1 + 2^-7) + 2^-8: tie, rounds up */
        {podcclSum, 0x3f80, 0x3b81, 0x3f81},  /* just above the tie rounds up */
        {podcclSum, 0x7f80, 0xff80, 0x7fc0},  /* inf - inf = NaN */
    };
    const struct kase *k = pr->t == podcclFloat16 ? f16 : bf16;
    size_t nk = pr->t == podcclFloat16 ? sizeof f16 / sizeof f16[0] : sizeof bf16 / sizeof bf16[0];
    setup_mode(pr);
    int bad = 0;
    for (size_t i = 0; i < nk; i++) {
        uint16_t a = k[i].a, b = k[i].b, d = 0;
        pc_reduce2(&d, &a, &b, 1, pr->t, k[i].op);
        int ok = h_isnan(pr->t, k[i].want) ? h_isnan(pr->t, d) : d == k[i].want;
        /* the reference codec must agree with the hand-computed value too */
        double ref = f_step(pr->t, k[i].op, h_decode(pr->t, a), h_decode(pr->t, b));
        ok = ok && (h_isnan(pr->t, k[i].want) ? isnan(ref) : h_encode(pr->t, ref) == k[i].want);
        if (!ok)
            print_error("%s %#06x %s %#06x = %#06x, expected %#06x\n", pc_type_name(pr->t), a,
                        pc_op_name(k[i].op), b, d, k[i].want);
        bad += !ok;
    }
    /* float16 avg: 0x3c01 / 2 is exact; 0x0001 / 2 is a tie that rounds to 0; 0x0003 / 2 to 2 */
    if (pr->t == podcclFloat16) {
        uint16_t v[3] = {0x3c01, 0x0001, 0x0003}, want[3] = {0x3801, 0x0000, 0x0002};
        pc_avg_finish(v, 3, podcclFloat16, 2);
        for (int i = 0; i < 3; i++) bad += v[i] != want[i];
    }
    assert_int_equal(bad, 0);
}

/* Software and F16C must give identical bits for every product and sum of random half pairs,
 * NaN payloads included (pc_reduce2 on a million elements, both paths). */
static void test_f16_paths_agree(void **state) {
    (void)state;
    size_t n = 1 << 20;
    uint16_t *a = malloc(n * 2), *b = malloc(n * 2), *hw = malloc(n * 2), *sw = malloc(n * 2);
    assert_true(a && b && hw && sw);
    for (size_t i = 0; i < n; i++) a[i] = (uint16_t)rnd(), b[i] = rnd_half(podcclFloat16);
    if (!pc_reduce_use_f16c(1)) {
        free(a), free(b), free(hw), free(sw);
        skip();
    }
    size_t bad = 0;
    for (int o = 0; o < 4; o++) {
        pc_reduce_use_f16c(1);
        pc_reduce2(hw, a, b, n, podcclFloat16, ops[o]);
        pc_reduce_use_f16c(0);
        pc_reduce2(sw, a, b, n, podcclFloat16, ops[o]);
        for (size_t i = 0; i < n; i++) bad += hw[i] != sw[i];
    }
    pc_reduce_use_f16c(1);
    free(a), free(b), free(hw), free(sw);
    assert_int_equal(bad, 0);
}

/* Sizes and names are what the log and the argument checks rely on. */
static void test_names(void **state) {
    (void)state;
    static const size_t sizes[podcclNumTypes] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
    for (int t = 0; t < podcclNumTypes; t++) {
        assert_int_equal(pc_type_size((podcclDataType_t)t), sizes[t]);
        assert_string_not_equal(pc_type_name((podcclDataType_t)t), "unknown");
    }
    assert_int_equal(pc_type_size(podcclNumTypes), 0);
    assert_int_equal(pc_type_size((podcclDataType_t)-1), 0);
    assert_string_equal(pc_type_name(podcclBfloat16), "bfloat16");
    assert_string_equal(pc_type_name(podcclNumTypes), "unknown");
    assert_string_equal(pc_op_name(podcclAvg), "avg");
    assert_string_equal(pc_op_name(podcclNumOps), "unknown");
}

/* One parameter block per type, plus float16 on the software path. */
static struct param P[podcclNumTypes + 1];

int main(void) {
    for (int t = 0; t < podcclNumTypes; t++) P[t] = (struct param){(podcclDataType_t)t, 1};
    P[podcclNumTypes] = (struct param){podcclFloat16, 0}; /* float16, software path */
    struct param *sw = &P[podcclNumTypes];
#define PER_TYPE(f)                                                                                \
    cmocka_unit_test_prestate(f, &P[0]), cmocka_unit_test_prestate(f, &P[1]),                      \
        cmocka_unit_test_prestate(f, &P[2]), cmocka_unit_test_prestate(f, &P[3]),                  \
        cmocka_unit_test_prestate(f, &P[4]), cmocka_unit_test_prestate(f, &P[5]),                  \
        cmocka_unit_test_prestate(f, &P[6]), cmocka_unit_test_prestate(f, &P[7]),                  \
        cmocka_unit_test_prestate(f, &P[8]), cmocka_unit_test_prestate(f, &P[9]),                  \
        cmocka_unit_test_prestate(f, sw)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        PER_TYPE(test_reduce2),
        PER_TYPE(test_reduce_n),
        PER_TYPE(test_avg_finish),
        cmocka_unit_test_prestate(test_half_roundtrip, &P[podcclFloat16]),
        cmocka_unit_test_prestate(test_half_roundtrip, sw),
        cmocka_unit_test_prestate(test_half_roundtrip, &P[podcclBfloat16]),
        cmocka_unit_test_prestate(test_half_cases, &P[podcclFloat16]),
        cmocka_unit_test_prestate(test_half_cases, sw),
        cmocka_unit_test_prestate(test_half_cases, &P[podcclBfloat16]),
        cmocka_unit_test(test_f16_paths_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
