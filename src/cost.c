/* Cost models (cost.h). */
#include "src/cost.h"

#include <math.h>

#include "src/core.h"

double cost_bytes(const pc_levels *lv, const pc_args *a) {
    double es = (double)pc_type_size(a->dtype), n = lv->nranks;
    switch (a->coll) {
    case PC_ALLGATHER:
    case PC_REDUCESCATTER:
    case PC_ALLTOALL:
        return (double)a->count * es * n;
    case PC_ALLTOALLV:
    case PC_BARRIER:
        return 0;
    default:
        return (double)a->count * es;
    }
}

/* The time each algorithm took at n = 2 on the reference machine (docs/performance.md: AMD
 * EPYC, 2 cores, 32 MiB L3; ccl-bench -np 2 -A ALGO, pinned), at whole-buffer sizes 1 KiB ..
 * 16 MiB. Between points the model interpolates log-log; past the last point time grows
 * linearly. Other rank counts scale by the busbw factor and add a step latency per extra rank.
 * 0 = not measured. Single-copy all-reduce and reduce have no row: between runs they ranged
 * from 47 to 115 us at 1 MiB, while the ring stayed at 54-70 us; forced, they still run. */
#define NPTS 8
static const double pts[NPTS] = {1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216};
static const struct {
    int coll;
    const char *algo;
    double us[NPTS];
} cal[] = {
    {PC_ALLREDUCE, "direct", {0.18, 0.32, 0.95, 3.75, 15.17, 69.95, 0, 0}},
    {PC_ALLREDUCE, "ring", {0.66, 0.83, 1.10, 2.96, 9.44, 54.20, 213.80, 1209.40}},
    {PC_ALLGATHER, "direct", {0.14, 0.20, 0.46, 1.64, 6.80, 27.65, 129.70, 0}},
    {PC_ALLGATHER, "ring", {0.44, 0.49, 0.67, 1.61, 4.89, 24.61, 118.30, 677.30}},
    {PC_ALLGATHER, "cma", {0.60, 0.56, 0.74, 1.45, 4.37, 23.96, 95.85, 841.30}},
    {PC_REDUCESCATTER, "direct", {0.13, 0.20, 0.45, 2.00, 7.65, 35.24, 0, 0}},
    {PC_REDUCESCATTER, "ring", {0.43, 0.47, 0.65, 1.79, 5.79, 31.27, 133.30, 759.70}},
    {PC_REDUCESCATTER, "cma", {0.65, 0.66, 0.87, 1.96, 5.49, 27.11, 114.50, 991.50}},
    {PC_BROADCAST, "direct", {0.11, 0.19, 0.45, 2.26, 8.99, 46.26, 0, 0}},
    {PC_BROADCAST, "ring", {0.35, 0.42, 0.58, 1.57, 5.36, 34.05, 141.90, 801.90}},
    {PC_BROADCAST, "cma", {0.47, 0.45, 0.71, 1.70, 5.71, 28.96, 111.50, 1170.30}},
    {PC_REDUCE, "direct", {0.10, 0.17, 0.54, 2.47, 10.60, 48.89, 0, 0}},
    {PC_REDUCE, "ring", {0.37, 0.40, 0.65, 2.38, 8.86, 45.33, 178.50, 1061.30}},
    {PC_ALLTOALL, "direct", {0.12, 0.20, 0.45, 2.08, 9.52, 36.90, 0, 0}},
    {PC_ALLTOALL, "pairwise", {0.41, 0.44, 0.62, 1.51, 7.05, 27.27, 114.40, 907.30}},
    {PC_ALLTOALL, "cma", {0.60, 0.56, 0.73, 1.43, 4.10, 23.64, 106.10, 1086.80}},
    {PC_ALLTOALLV, "pairwise", {0.43, 0.44, 0.65, 1.60, 6.14, 27.63, 114.20, 818.50}},
    {PC_ALLTOALLV, "cma", {0.63, 0.59, 0.79, 1.54, 4.92, 27.65, 107.50, 1109.70}},
    {PC_BARRIER, "direct", {0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10}},
};

static double busbw_factor(int coll, double n) {
    if (coll == PC_ALLREDUCE) return 2 * (n - 1) / n;
    if (coll == PC_BROADCAST || coll == PC_REDUCE) return 1;
    return (n - 1) / n;
}

static double interp(const double *us, double S) {
    int last = NPTS - 1;
    while (last > 0 && us[last] == 0) last--;
    if (S <= pts[0]) return us[0];
    if (S >= pts[last]) {
        if (last == 0) return us[0];
        double slope = (us[last] - us[last - 1]) / (pts[last] - pts[last - 1]);
        return us[last] + slope * (S - pts[last]);
    }
    int i = 0;
    while (pts[i + 1] < S) i++;
    double f = log(S / pts[i]) / log(pts[i + 1] / pts[i]);
    return exp(log(us[i]) + f * (log(us[i + 1]) - log(us[i])));
}

double cost_table(const pc_env *e, const pc_args *a, const char *algo) {
    const pc_levels *lv = e->lv;
    if (!cost_one_domain(lv)) return -1;
    double n = lv->nranks, S = cost_bytes(lv, a);
    for (size_t i = 0; i < sizeof(cal) / sizeof(cal[0]); i++) {
        if (cal[i].coll != a->coll || strcmp(cal[i].algo, algo) != 0) continue;
        double t = interp(cal[i].us, S) * busbw_factor(a->coll, n) / busbw_factor(a->coll, 2);
        double step = strcmp(algo, "ring") == 0 || strcmp(algo, "pairwise") == 0 ? 0.3 : 0.05;
        return t + (n > 2 ? (n - 2) * step : 0);
    }
    return -1;
}

int cost_one_domain(const pc_levels *lv) {
    return lv->memsem == lv->nlevels - 1;
}

int cost_level_of(const pc_levels *lv, int p, int q) {
    int a = lv->order[p], b = lv->order[q];
    for (int l = 0; l < lv->nlevels; l++)
        if (lv->lv[l].unit_of[a] == lv->lv[l].unit_of[b]) return l;
    return lv->nlevels - 1;
}

double cost_alpha(const pc_levels *lv, int l) {
    return lv->lv[l].link.lat_us;
}

double cost_beta(const pc_levels *lv, int l, int per_rank) {
    double b = lv->lv[l].link.bw_GBps * 1e3; /* GB/s -> bytes/us */
    if (l > 0 && !per_rank) b *= (double)lv->nranks / lv->lv[0].nunits;
    return b > 0 ? b : 1e-3;
}

double cost_gamma(const pc_env *e, const pc_args *a, double bytes) {
    if (a->coll != PC_ALLREDUCE && a->coll != PC_REDUCE && a->coll != PC_REDUCESCATTER) return 0;
    double g = e->reduce_GBps > 0 ? e->reduce_GBps : 5.0;
    return bytes / (g * 1e3);
}

void cost_ring_link(const pc_levels *lv, double *alpha, double *beta) {
    *alpha = cost_alpha(lv, 0), *beta = cost_beta(lv, 0, 0);
    for (int l = 1; l < lv->nlevels; l++) {
        if (lv->lv[l - 1].nunits <= 1) continue; /* nothing crosses this level */
        if (cost_alpha(lv, l) > *alpha) *alpha = cost_alpha(lv, l);
        if (cost_beta(lv, l, 0) < *beta) *beta = cost_beta(lv, l, 0);
    }
}

int cost_pow2_below(int n) {
    int p = 1;
    while (p * 2 <= n) p *= 2;
    return p;
}

double cost_rhd(const pc_env *e, const pc_args *a, double S, int halving) {
    const pc_levels *lv = e->lv;
    int n = lv->nranks, p = cost_pow2_below(n), me = 0; /* every rank must predict the same */
    double t = 0, bytes = halving ? S / 2 : S;
    for (int d = 1; d < p; d *= 2) {
        int l = cost_level_of(lv, me, me ^ d);
        double step = cost_alpha(lv, l) + bytes / cost_beta(lv, l, 1);
        t += halving ? 2 * step : step;
        t += cost_gamma(e, a, bytes);
        if (halving) bytes /= 2;
    }
    if (p < n) { /* fold: extra ranks hand their vector to a partner and get the result back */
        int l = cost_level_of(lv, p - 1, n - 1);
        t += 2 * (cost_alpha(lv, l) + S / cost_beta(lv, l, 1)) + cost_gamma(e, a, S);
    }
    return t;
}

double cost_chain(const pc_env *e, const pc_args *a) {
    int n = e->lv->nranks;
    double S = cost_bytes(e->lv, a), al, be, c = 131072;
    cost_ring_link(e->lv, &al, &be);
    double steps = n - 2 + (S > c ? S / c : 1);
    return steps * (al + (S < c ? S : c) / be);
}

double cost_tree(const pc_env *e, const pc_args *a, int *depth) {
    const pc_levels *lv = e->lv;
    int n = lv->nranks, d = 0, top = lv->nlevels - 1;
    while ((1 << d) < n) d++;
    double S = cost_bytes(lv, a), c = 131072, nc = S > c ? S / c : 1;
    *depth = d;
    return (d + nc - 1) * cost_alpha(lv, top) + d * S / cost_beta(lv, top, 0) +
           (d - 1) * (S < c ? S : c) / cost_beta(lv, top, 0);
}
