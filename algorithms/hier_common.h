/* Layouts and cost of the hierarchical algorithms (allreduce_hier.c, allgather_hier.c,
 * reducescatter_hier.c); the schedules come from rails.c. */
#ifndef PODCCL_HIER_COMMON_H
#define PODCCL_HIER_COMMON_H

#include <stdlib.h>

#include "algorithms/flat.h"

/* A layout of `segs` segments x n blocks; per_rank: block d of segment j is segment j of
 * [d * count, (d + 1) * count) (all-gather, reduce-scatter); else segment j of the buffer split
 * over the ranks in topology order (all-reduce). */
static inline int hier_layout(pc_layout *L, const pc_levels *lv, int segs, size_t count,
                              int per_rank) {
    int n = lv->nranks;
    size_t *off = malloc(sizeof(size_t) * 2 * (size_t)segs * (size_t)n);
    if (!off) return -1;
    size_t *len = off + (size_t)segs * n;
    for (int j = 0; j < segs; j++)
        for (int d = 0; d < n; d++) {
            size_t i = (size_t)j * n + d;
            if (per_rank) {
                off[i] = (size_t)d * count + blk_off(count, segs, j);
                len[i] = blk_len(count, segs, j);
            } else {
                size_t so = blk_off(count, segs, j), sl = blk_len(count, segs, j);
                off[i] = so + blk_off(sl, n, lv->pos_of[d]);
                len[i] = blk_len(sl, n, lv->pos_of[d]);
            }
        }
    *L = (pc_layout){.lv = lv, .segs = segs, .off = off, .len = len};
    return 0;
}

static inline int *hier_last(const pc_layout *L, int init) {
    size_t k = (size_t)L->segs * (size_t)L->lv->nranks;
    int *last = malloc(sizeof(int) * (k ? k : 1));
    for (size_t i = 0; last && i < k; i++) last[i] = init;
    return last;
}

/* Predicted time of the up (reduce-scatter) or down (all-gather) half over the levels, for a
 * whole buffer of S bytes: at level l a ring over the rail of m_l members moves
 * (m_l - 1)/m_l of the bytes left at that level, on links every rank uses at once (per-rank
 * bandwidth); with k segments the levels overlap, so the total is the slowest level plus the
 * others' share of one segment. */
static inline double hier_cost_half(const pc_env *e, const pc_args *a, double S, int reduce) {
    const pc_levels *lv = e->lv;
    double left = S, sum = 0, worst = 0, lat = 0;
    int segs = hier_segments(lv, (size_t)S, 131072);
    for (int l = 0; l < lv->nlevels; l++) {
        const pc_level *v = &lv->lv[l];
        int m = 1;
        for (int u = 0; u < v->nunits; u++)
            if (v->child_start[u + 1] - v->child_start[u] > m)
                m = v->child_start[u + 1] - v->child_start[u];
        double t = (m - 1) * (left / m) / cost_beta(lv, l, 1);
        if (reduce) t += cost_gamma(e, a, (m - 1) * left / m);
        lat += (m - 1) * cost_alpha(lv, l) * segs;
        sum += t, worst = t > worst ? t : worst;
        left /= m;
    }
    return lat + worst + (sum - worst) / segs;
}

/* A scatter from (or gather to) the root through its host link, then one half over the levels:
 * hierarchical broadcast (reduce = 0) and reduce (reduce = 1). */
static inline double hier_cost_rooted(const pc_env *e, const pc_args *a, int reduce) {
    const pc_levels *lv = e->lv;
    int top = lv->nlevels - 1;
    double S = cost_bytes(lv, a);
    return lv->nranks * cost_alpha(lv, top) + S / cost_beta(lv, top, 0) +
           hier_cost_half(e, a, S, reduce);
}

#endif
