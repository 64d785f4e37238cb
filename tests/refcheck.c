/* Exact inputs and independent reference results (see refcheck.h).
 *
 * Value pattern, for n = nranks (1..64), element idx and salt; h(...) is a 64-bit hash:
 *   sum   rank r: h(r, idx) % (vmax + 1), vmax = min(127 / n, 15). Total <= 127.
 *   avg   total T = n * q, q = h(idx) % (qmax + 1), qmax = min(127 / n, 31). Ranks 2k and 2k+1
 *         get q + d and q - d with d = h(k, idx) in [-q, q]; a last odd rank gets q. Every value
 *         is >= 0, the total is a multiple of n, and integer and float division agree.
 *   prod  c = min(h(idx) % 7, n) consecutive ranks (cyclically from h(idx) % n) get 2, the rest
 *         1. Product 2^c <= 64.
 *   max,
 *   min   rank r: (r + off) % n + b with off = h(idx) % n, b = h(idx) % 64. Distinct per rank,
 *         <= 126; the extreme moves between ranks with idx.
 * All values are non-negative integers <= 127 and all partial results stay <= 127, so int8,
 * uint8, fp16 (exact to 2048) and bf16 (exact to 256) hold them exactly. */
#include "refcheck.h"

#include <math.h> /* NAN only: no libm needed */
#include <string.h>

enum { TAG_VAL = 1, TAG_Q, TAG_D, TAG_C, TAG_OFF, TAG_B };

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t h(unsigned tag, uint64_t a, size_t idx, uint64_t salt) {
    return mix(mix(mix(salt ^ ((uint64_t)tag << 56)) ^ a) ^ (uint64_t)idx);
}

static int clamp_n(int nranks) {
    return nranks < 1 ? 1 : (nranks > 64 ? 64 : nranks);
}
static int imin(int a, int b) {
    return a < b ? a : b;
}

static int avg_q(int n, size_t idx, uint64_t salt) {
    return (int)(h(TAG_Q, 0, idx, salt) % (uint64_t)(imin(127 / n, 31) + 1));
}

static int prod_count(int n, size_t idx, uint64_t salt) {
    return imin((int)(h(TAG_C, 0, idx, salt) % 7), n);
}

static int minmax_base(size_t idx, uint64_t salt) {
    return (int)(h(TAG_B, 0, idx, salt) % 64);
}

double rc_value(podcclRedOp_t op, int rank, int nranks, size_t idx, uint64_t salt) {
    int n = clamp_n(nranks);
    switch (op) {
    case podcclProd: {
        int c = prod_count(n, idx, salt);
        int off = (int)(h(TAG_OFF, 0, idx, salt) % (uint64_t)n);
        return ((rank - off + n) % n) < c ? 2.0 : 1.0;
    }
    case podcclMax:
    case podcclMin: {
        int off = (int)(h(TAG_OFF, 1, idx, salt) % (uint64_t)n);
        return (double)((rank + off) % n + minmax_base(idx, salt));
    }
    case podcclAvg: {
        int q = avg_q(n, idx, salt);
        if (rank / 2 * 2 + 1 >= n) return q; /* unpaired last rank */
        int d = (int)(h(TAG_D, (uint64_t)(rank / 2), idx, salt) % (uint64_t)(2 * q + 1)) - q;
        return rank % 2 == 0 ? q + d : q - d;
    }
    case podcclSum:
    default: {
        int vmax = imin(127 / n, 15);
        return (double)(h(TAG_VAL, (uint64_t)rank, idx, salt) % (uint64_t)(vmax + 1));
    }
    }
}

double rc_reduced(podcclRedOp_t op, int nranks, size_t idx, uint64_t salt) {
    int n = clamp_n(nranks);
    switch (op) {
    case podcclProd:
        return (double)(1u << prod_count(n, idx, salt));
    case podcclMax:
        return (double)(n - 1 + minmax_base(idx, salt));
    case podcclMin:
        return (double)minmax_base(idx, salt);
    case podcclAvg:
        return (double)avg_q(n, idx, salt);
    case podcclSum:
    default: {
        double s = 0;
        for (int r = 0; r < n; r++) s += rc_value(podcclSum, r, n, idx, salt);
        return s;
    }
    }
}

size_t rc_type_size(podcclDataType_t t) {
    switch (t) {
    case podcclInt8:
    case podcclUint8:
        return 1;
    case podcclFloat16:
    case podcclBfloat16:
        return 2;
    case podcclInt32:
    case podcclUint32:
    case podcclFloat32:
        return 4;
    case podcclInt64:
    case podcclUint64:
    case podcclFloat64:
        return 8;
    default:
        return 0;
    }
}

/* IEEE binary16 <-> float, written out here so the reference shares no code with podccl. */
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to inf */
    if (absx < 0x38800000u) { /* subnormal half or zero: round abs value * 2^24 */
        float a;
        memcpy(&a, &absx, 4);
        float s = a * 16777216.0f; /* exact; < 1024 */
        uint32_t r = (uint32_t)s;
        float frac = s - (float)r;
        if (frac > 0.5f || (frac == 0.5f && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t mant = absx & 0x7fffffu, exp = (absx >> 23) - 112;
    uint32_t r = (exp << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

static float f16_to_f32(uint16_t v) {
    uint32_t sign = (uint32_t)(v & 0x8000u) << 16, exp = (v >> 10) & 0x1fu, mant = v & 0x3ffu;
    float f;
    if (exp == 0) {
        f = (float)mant * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    uint32_t x = sign | (exp == 31 ? 0x7f800000u | (mant << 13) : ((exp + 112) << 23) | mant << 13);
    memcpy(&f, &x, 4);
    return f;
}

static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static float bf16_to_f32(uint16_t v) {
    uint32_t x = (uint32_t)v << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void rc_store(void *buf, size_t i, podcclDataType_t t, double v) {
    char *p = (char *)buf + i * rc_type_size(t);
    union {
        int8_t i8;
        uint8_t u8;
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
        uint16_t h;
        float f;
        double d;
    } u;
    switch (t) {
    case podcclInt8:
        u.i8 = (int8_t)v;
        break;
    case podcclUint8:
        u.u8 = (uint8_t)v;
        break;
    case podcclInt32:
        u.i32 = (int32_t)v;
        break;
    case podcclUint32:
        u.u32 = (uint32_t)v;
        break;
    case podcclInt64:
        u.i64 = (int64_t)v;
        break;
    case podcclUint64:
        u.u64 = (uint64_t)v;
        break;
    case podcclFloat16:
        u.h = f32_to_f16((float)v);
        break;
    case podcclBfloat16:
        u.h = f32_to_bf16((float)v);
        break;
    case podcclFloat32:
        u.f = (float)v;
        break;
    case podcclFloat64:
        u.d = v;
        break;
    default:
        return;
    }
    memcpy(p, &u, rc_type_size(t));
}

double rc_load(const void *buf, size_t i, podcclDataType_t t) {
    const char *p = (const char *)buf + i * rc_type_size(t);
    int8_t i8;
    uint8_t u8;
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    uint16_t hv;
    float f;
    double d;
    switch (t) {
    case podcclInt8:
        memcpy(&i8, p, 1);
        return i8;
    case podcclUint8:
        memcpy(&u8, p, 1);
        return u8;
    case podcclInt32:
        memcpy(&i32, p, 4);
        return i32;
    case podcclUint32:
        memcpy(&u32, p, 4);
        return u32;
    case podcclInt64:
        memcpy(&i64, p, 8);
        return (double)i64;
    case podcclUint64:
        memcpy(&u64, p, 8);
        return (double)u64;
    case podcclFloat16:
        memcpy(&hv, p, 2);
        return f16_to_f32(hv);
    case podcclBfloat16:
        memcpy(&hv, p, 2);
        return bf16_to_f32(hv);
    case podcclFloat32:
        memcpy(&f, p, 4);
        return f;
    case podcclFloat64:
        memcpy(&d, p, 8);
        return d;
    default:
        return NAN;
    }
}

void rc_fill(void *buf, size_t count, podcclDataType_t t, podcclRedOp_t op, int rank, int nranks,
             size_t first, uint64_t salt) {
    for (size_t i = 0; i < count; i++)
        rc_store(buf, i, t, rc_value(op, rank, nranks, first + i, salt));
}

/* 1 if element i of buf differs bit for bit from v converted to t. */
static int differs(const void *buf, size_t i, podcclDataType_t t, double v) {
    unsigned char want[8];
    size_t es = rc_type_size(t);
    rc_store(want, 0, t, v);
    return memcmp((const char *)buf + i * es, want, es) != 0;
}

size_t rc_check_reduced(const void *buf, size_t count, podcclDataType_t t, podcclRedOp_t op,
                        int nranks, size_t first, uint64_t salt) {
    size_t bad = 0;
    for (size_t i = 0; i < count; i++)
        bad += (size_t)differs(buf, i, t, rc_reduced(op, nranks, first + i, salt));
    return bad;
}

size_t rc_check_values(const void *buf, size_t count, podcclDataType_t t, podcclRedOp_t op,
                       int rank, int nranks, size_t first, uint64_t salt) {
    size_t bad = 0;
    for (size_t i = 0; i < count; i++)
        bad += (size_t)differs(buf, i, t, rc_value(op, rank, nranks, first + i, salt));
    return bad;
}

void rc_poison(void *buf, size_t count, podcclDataType_t t) {
    if (buf && count) memset(buf, 0xA5, count * rc_type_size(t));
}
