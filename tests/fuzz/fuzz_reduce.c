/* Fuzz target: the reduction kernels of src/reduce.c (pc_reduce2, pc_reduce_n, pc_avg_finish)
 * on buffers at any byte offset, any count (across the 1024-element blocks), every type and op.
 * Integer and native float results are checked element by element against a scalar reference
 * (same operation order, so floats must match bit for bit; NaN matches any NaN); float16 and
 * bfloat16 against the same call on aligned buffers, and float16's F16C path against its
 * software path. Under UBSan a misaligned load or store in a kernel is a report.
 *
 * Input: [0] type, [1] op, [2] bits 0-1: sources - 1, bit 2: dst aliases source 0, bits 4-7:
 * ranks for avg - 1, [3..4] count (when the top two bits of [4] are set, 1000 + the other 14 bits
 * mod 1101, else [3] mod 130), [5..9] byte offsets (mod 8) of dst and sources 0..3, then
 * element bytes, repeated as often as the buffers need. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core.h"

#define MAX_SRC 4
#define MAX_COUNT 2100 /* past two 1024-element blocks */

typedef struct {
    podcclDataType_t t;
    podcclRedOp_t op;
    int nsrc, alias, nranks;
    size_t count, es;
    const uint8_t *data;
    size_t len;
} cfg_t;

/* Results of the three calls, each count * es bytes. */
typedef struct {
    uint8_t *r2, *rn, *avg;
} out_t;

/* The element bytes of the input from offset seed on, repeated to fill bytes. */
static void fill(uint8_t *p, size_t bytes, const cfg_t *c, size_t seed) {
    if (!c->len) {
        for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)(seed * 31 + i * 7);
        return;
    }
    for (size_t i = 0, at = seed % c->len; i < bytes; at = 0) {
        size_t n = c->len - at < bytes - i ? c->len - at : bytes - i;
        memcpy(p + i, c->data + at, n);
        i += n;
    }
}

/* Runs the three calls on buffers placed at off[0] (dst) and off[1 + s] (source s). */
static void run_calls(const cfg_t *c, const int off[1 + MAX_SRC], out_t *o) {
    size_t bytes = c->count * c->es;
    uint8_t *raw[1 + MAX_SRC] = {0}, *p[1 + MAX_SRC] = {0};
    for (int b = 0; b <= c->nsrc; b++) {
        raw[b] = malloc(bytes + 8);
        if (!raw[b]) abort();
        p[b] = raw[b] + off[b];
    }
    const void *srcs[MAX_SRC];
    for (int s = 0; s < c->nsrc; s++) {
        fill(p[1 + s], bytes, c, (size_t)s * 977);
        srcs[s] = p[1 + s];
    }
    void *dst = c->alias ? p[1] : p[0];
    if (c->nsrc >= 2) {
        pc_reduce2(dst, p[1], p[2], c->count, c->t, c->op);
        memcpy(o->r2, dst, bytes);
        fill(p[1], bytes, c, 0); /* source 0 again, in case dst was it */
    }
    pc_reduce_n(dst, srcs, c->nsrc, c->count, c->t, c->op);
    memcpy(o->rn, dst, bytes);
    pc_avg_finish(dst, c->count, c->t, c->nranks);
    memcpy(o->avg, dst, bytes);
    for (int b = 0; b <= c->nsrc; b++) free(raw[b]);
}

/* The scalar reference for one native type: T the type, UT its wrap-around twin, DT avg's
 * divisor type (as src/reduce.c defines them). */
#define REF_TYPE(E, T, UT, DT)                                                                     \
    case E: {                                                                                      \
        T acc, y;                                                                                  \
        memcpy(&acc, src[0], sizeof(T));                                                           \
        for (int s = 1; s < nsrc; s++) {                                                           \
            memcpy(&y, src[s], sizeof(T));                                                         \
            if (op == podcclSum || op == podcclAvg) acc = (T)((UT)acc + (UT)y);                    \
            if (op == podcclProd) acc = (T)((UT)acc * (UT)y);                                      \
            if (op == podcclMax) acc = acc > y ? acc : y;                                          \
            if (op == podcclMin) acc = acc < y ? acc : y;                                          \
        }                                                                                          \
        memcpy(r, &acc, sizeof(T));                                                                \
        if (nranks > 1) acc = (T)(acc / (DT)nranks);                                               \
        memcpy(avg, &acc, sizeof(T));                                                              \
        break;                                                                                     \
    }

/* r = op over the nsrc sources of one element; avg = r / nranks (when nranks > 1). */
static void ref_elem(podcclDataType_t t, podcclRedOp_t op, const uint8_t *const *src, int nsrc,
                     int nranks, uint8_t *r, uint8_t *avg) {
    switch (t) {
        REF_TYPE(podcclInt8, int8_t, uint8_t, int64_t)
        REF_TYPE(podcclUint8, uint8_t, uint8_t, uint64_t)
        REF_TYPE(podcclInt32, int32_t, uint32_t, int64_t)
        REF_TYPE(podcclUint32, uint32_t, uint32_t, uint64_t)
        REF_TYPE(podcclInt64, int64_t, uint64_t, int64_t)
        REF_TYPE(podcclUint64, uint64_t, uint64_t, uint64_t)
        REF_TYPE(podcclFloat32, float, float, float)
        REF_TYPE(podcclFloat64, double, double, double)
    default:
        abort();
    }
}

static int is_nan(podcclDataType_t t, const uint8_t *p) {
    float f;
    double d;
    uint16_t h;
    switch (t) {
    case podcclFloat32:
        return memcpy(&f, p, 4), isnan(f);
    case podcclFloat64:
        return memcpy(&d, p, 8), isnan(d);
    case podcclFloat16:
        return memcpy(&h, p, 2), (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    case podcclBfloat16:
        return memcpy(&h, p, 2), (h & 0x7f80) == 0x7f80 && (h & 0x7f);
    default:
        return 0;
    }
}

/* Aborts with a description at the first element where got differs from want. */
static void expect(const cfg_t *c, const char *what, const uint8_t *got, const uint8_t *want) {
    for (size_t i = 0; i < c->count; i++) {
        const uint8_t *g = got + i * c->es, *w = want + i * c->es;
        if (!memcmp(g, w, c->es) || (is_nan(c->t, g) && is_nan(c->t, w))) continue;
        fprintf(stderr,
                "fuzz_reduce: %s %s %s, %d sources, count %zu, alias %d, ranks %d: element "
                "%zu differs\n",
                what, pc_type_name(c->t), pc_op_name(c->op), c->nsrc, c->count, c->alias, c->nranks,
                i);
        abort();
    }
}

static void check_native(const cfg_t *c, const out_t *o) {
    size_t bytes = c->count * c->es;
    uint8_t *want2 = malloc(bytes + 1), *wantn = malloc(bytes + 1), *wavg = malloc(bytes + 1);
    uint8_t *src = malloc(MAX_SRC * bytes + 1), scratch[8];
    if (!want2 || !wantn || !wavg || !src) abort();
    for (int s = 0; s < c->nsrc; s++) fill(src + (size_t)s * bytes, bytes, c, (size_t)s * 977);
    for (size_t i = 0; i < c->count; i++) {
        const uint8_t *e[MAX_SRC];
        for (int s = 0; s < c->nsrc; s++) e[s] = src + (size_t)s * bytes + i * c->es;
        if (c->nsrc >= 2) ref_elem(c->t, c->op, e, 2, 1, want2 + i * c->es, scratch);
        ref_elem(c->t, c->op, e, c->nsrc, c->nranks, wantn + i * c->es, wavg + i * c->es);
    }
    if (c->nsrc >= 2) expect(c, "pc_reduce2", o->r2, want2);
    expect(c, "pc_reduce_n", o->rn, wantn);
    expect(c, "pc_avg_finish", o->avg, wavg);
    free(want2), free(wantn), free(wavg), free(src);
}

/* Mostly short vectors (fast), one input in four past the 1024-element blocks. */
static size_t count_of(uint8_t lo, uint8_t hi) {
    if ((hi & 0xc0) == 0xc0) return 1000 + (size_t)(lo | (hi & 0x3f) << 8) % (MAX_COUNT - 999);
    return lo % 130u;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 10) return 0;
    cfg_t c = {(podcclDataType_t)(data[0] % podcclNumTypes),
               (podcclRedOp_t)(data[1] % podcclNumOps),
               1 + (data[2] & 3),
               (data[2] >> 2) & 1,
               1 + (data[2] >> 4),
               count_of(data[3], data[4]),
               0,
               data + 10,
               size - 10};
    c.es = pc_type_size(c.t);
    int off[1 + MAX_SRC], zero[1 + MAX_SRC] = {0};
    for (int b = 0; b <= MAX_SRC; b++) off[b] = data[5 + b] % 8;
    if (c.count == 0) return 0;
    size_t bytes = c.count * c.es;
    out_t o = {malloc(bytes), malloc(bytes), malloc(bytes)},
          a = {malloc(bytes), malloc(bytes), malloc(bytes)};
    if (!o.r2 || !o.rn || !o.avg || !a.r2 || !a.rn || !a.avg) abort();
    run_calls(&c, off, &o);
    if (c.t != podcclFloat16 && c.t != podcclBfloat16) {
        check_native(&c, &o);
    } else { /* same calls on aligned buffers, then float16 through the other conversion path */
        run_calls(&c, zero, &a);
        if (c.nsrc >= 2) expect(&c, "misaligned vs aligned pc_reduce2", o.r2, a.r2);
        expect(&c, "misaligned vs aligned pc_reduce_n", o.rn, a.rn);
        expect(&c, "misaligned vs aligned pc_avg_finish", o.avg, a.avg);
        if (c.t == podcclFloat16 && pc_reduce_use_f16c(1)) { /* 1: this CPU has F16C */
            pc_reduce_use_f16c(0);
            run_calls(&c, off, &a);
            pc_reduce_use_f16c(1);
            if (c.nsrc >= 2) expect(&c, "software vs F16C pc_reduce2", a.r2, o.r2);
            expect(&c, "software vs F16C pc_reduce_n", a.rn, o.rn);
            expect(&c, "software vs F16C pc_avg_finish", a.avg, o.avg);
        }
    }
    free(o.r2), free(o.rn), free(o.avg), free(a.r2), free(a.rn), free(a.avg);
    return 0;
}
