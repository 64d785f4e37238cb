/* Reduce-scatter by ring (NCCL's ring): partial sums travel around the ring, each rank adding
 * its own contribution, so that after n-1 steps the block of rank r is complete at rank r.
 * Partial sums of other blocks live in a temporary of n blocks. */
#include <stdlib.h>

#include "algorithms/flat.h"

static size_t tmp_bytes(const pc_levels *lv, const pc_args *a) {
    return lv->nranks > 1 ? a->count * pc_type_size(a->dtype) * (size_t)lv->nranks : 0;
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_group *g = &ctx->lv->world;
    int n = g->n, self = g->rank[g->me];
    size_t B = a->count * pc_type_size(a->dtype);
    if (n == 1) {
        if (a->sendbuff != a->recvbuff)
            sched_add(s, PC_STEP_COPY, self, a->sendbuff, a->recvbuff, B, -1);
        return sched_status(s);
    }
    pc_blk *store = NULL;
    pc_blkset *set = rank_sets(g, a->count, &store);
    if (!set) return pc_err(NULL, podcclSystemError, "out of memory building a schedule");
    pc_stage st = flat_stage(ctx, a);
    ring_rs_sets_ex(s, &st, set, a->sendbuff, ctx->tmp, a->recvbuff, NULL);
    free(set), free(store);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    double t = cost_table(e, a, "ring");
    if (t >= 0) return t;
    int n = e->lv->nranks;
    double S = cost_bytes(e->lv, a), al, be;
    cost_ring_link(e->lv, &al, &be);
    return (n - 1) * (al + S / n / be) + cost_gamma(e, a, S * (n - 1) / n);
}

const pc_algo_desc pc_algo_reducescatter_ring = {
    .name = "ring",
    .coll = PC_REDUCESCATTER,
    .desc = "ring, pipelined in chunks (NCCL ring)",
    .can_run = can_always,
    .cost = cost,
    .tmp_bytes = tmp_bytes,
    .build = build,
};
