/* membw: the memory-bandwidth ceiling that side-by-side.sh holds busbw against. For each size S
 * of the sweep (same -b -e -f syntax as ccl-bench), on one thread:
 *   memcpy: S bytes copied per second (src and dst of S bytes each);
 *   sum:    a[i] += b[i] over S/4 floats, reported as S / time (bytes of one operand per second).
 * Each figure is the best of 5 trials; a trial repeats the operation enough times to take at least
 * 20 ms. Buffers are touched beforehand. GB = 1e9 bytes. */
#include "bench_common.h"
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRIALS 5
#define MIN_TRIAL_S 0.020

/* Called through volatile pointers so that no repetition can be inlined, merged or dropped. */
static void *(*volatile copy_fn)(void *, const void *, size_t) = memcpy;
/* Blocks of 16 so that the loop is vectorized even at -O2 (whose cheap cost model skips loops
 * that need an epilogue): the ceiling is what the core can do. */
static void sum_floats(float *restrict a, const float *restrict b, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t k = 0; k < 16; k++) a[i + k] += b[i + k];
    for (; i < n; i++) a[i] += b[i];
}
static void (*volatile sum_fn)(float *restrict, const float *restrict, size_t) = sum_floats;
static volatile float sink;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run(int kind, void *dst, void *src, size_t bytes, unsigned long reps) {
    for (unsigned long r = 0; r < reps; r++) {
        if (kind == 0)
            copy_fn(dst, src, bytes);
        else
            sum_fn(dst, src, bytes / sizeof(float));
    }
    sink = ((volatile float *)dst)[0]; /* use the result */
}

/* Bytes per second of kind 0 (memcpy) or 1 (sum) at this size: best of TRIALS. */
static double bandwidth(int kind, void *dst, void *src, size_t bytes) {
    unsigned long reps = 1;
    double t;
    for (;;) { /* calibrate: double the repetitions until one trial takes MIN_TRIAL_S */
        double t0 = now();
        run(kind, dst, src, bytes, reps);
        t = now() - t0;
        if (t >= MIN_TRIAL_S) break;
        reps = t > MIN_TRIAL_S / 64 ? (unsigned long)((double)reps * 1.25 * MIN_TRIAL_S / t) + 1
                                    : reps * 2;
    }
    double best = t;
    for (int i = 1; i < TRIALS; i++) {
        double t0 = now();
        run(kind, dst, src, bytes, reps);
        t = now() - t0;
        if (t < best) best = t;
    }
    return (double)bytes * (double)reps / best;
}

static void usage(FILE *f, const char *prog) {
    fprintf(f,
            "usage: %s [-b min] [-e max] [-f factor]\n"
            "  sizes in bytes, K/M/G = 1024s; defaults -b 8 -e 64M -f 2\n"
            "  prints rows: size memcpy_GBps sum_GBps (one thread, best of %d trials >= %g ms)\n",
            prog, TRIALS, MIN_TRIAL_S * 1e3);
}

int main(int argc, char **argv) {
    size_t minb = 8, maxb = (size_t)64 << 20;
    double step = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout, argv[0]);
            return 0;
        }
        int bad = i + 1 >= argc;
        char *end = NULL;
        if (bad)
            ;
        else if (strcmp(argv[i], "-b") == 0)
            bad = bench_parse_size(argv[++i], &minb) != 0;
        else if (strcmp(argv[i], "-e") == 0)
            bad = bench_parse_size(argv[++i], &maxb) != 0;
        else if (strcmp(argv[i], "-f") == 0) {
            step = strtod(argv[++i], &end);
            bad = *end || !(step > 1.0);
        } else
            bad = 1;
        if (bad) {
            fprintf(stderr, "%s: bad or incomplete option '%s'\n", argv[0], argv[i]);
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (maxb < minb) maxb = minb;
    size_t cap = (maxb + 4095) / 4096 * 4096 + 4096;
    float *src = aligned_alloc(4096, cap), *dst = aligned_alloc(4096, cap);
    if (!src || !dst) {
        fprintf(stderr, "%s: cannot allocate 2 x %zu bytes\n", argv[0], cap);
        return 2;
    }
    for (size_t i = 0; i < cap / sizeof(float); i++) { /* touch every page; no denormals */
        src[i] = 1.0f;
        dst[i] = 0.0f;
    }
    printf("# membw: one thread; memcpy = S bytes copied / s (reads S, writes S);\n"
           "# sum = a[i] += b[i] over S/4 floats, S / s (reads 2S, writes S); GB = 1e9 bytes\n"
           "# best of %d trials, each >= %g ms\n"
           "# %10s  %12s  %12s\n",
           TRIALS, MIN_TRIAL_S * 1e3, "size(B)", "memcpy(GB/s)", "sum(GB/s)");
    for (size_t raw = minb;;) {
        if (raw > 0) {
            double cp = bandwidth(0, dst, src, raw);
            if (raw >= sizeof(float))
                printf("  %10zu  %12.2f  %12.2f\n", raw, cp * 1e-9,
                       bandwidth(1, dst, src, raw) * 1e-9);
            else
                printf("  %10zu  %12.2f  %12s\n", raw, cp * 1e-9, "-");
            fflush(stdout);
        }
        double next = (double)raw * step;
        if (next > (double)maxb) break;
        raw = (size_t)next > raw ? (size_t)next : raw + 1;
        if (raw > maxb) break;
    }
    free(src);
    free(dst);
    return 0;
}
